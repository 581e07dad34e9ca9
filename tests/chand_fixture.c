/*
 * chand_fixture.c - run chand for integration tests (see chand_fixture.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "chan/chan.h"
#include "chand_fixture.h"

void chand_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

chan_client_t *chand_dial(const chand_proc_t *d)
{
    chan_client_t *cl = chan_connect(d->addr, NULL, chan_now() + 5000);
    ck_assert_msg(cl, "connect %s: %s", d->addr, strerror(errno));
    return cl;
}

chan_t *chand_open_ch(chan_client_t *cl, const char *name, long cap)
{
    chan_t *ch = chan_open(cl, name, cap, 0, chan_now() + 5000);
    ck_assert_msg(ch, "open %s: %s", name, strerror(errno));
    return ch;
}

static const char *tmp_root = "/tmp";

void chand_set_tmp_root(const char *dir)
{
    tmp_root = dir ? dir : "/tmp";
}

static void rm_dir(const char *dir)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fixture: could not remove %s\n", dir);
}

/* ---- starting ---- */

static int make_dir(chand_proc_t *d)
{
    memset(d, 0, sizeof *d);
    int n = snprintf(d->dir, sizeof d->dir, "%s/chand-test-XXXXXX", tmp_root);
    if (n < 0 || (size_t)n >= sizeof d->dir || !mkdtemp(d->dir)) {
        perror("fixture: mkdtemp");
        d->dir[0] = 0;
        return -1;
    }
    return 0;
}

/* Start chand in d->dir, listening on d->port (0: any), and return at
 * once; a restart appends to the log of the earlier runs. */
static int spawn(chand_proc_t *d, const char *const *extra, long long fsize_limit, bool restart)
{
    const char *bin = getenv("CHAND");
    if (!bin) {
        fprintf(stderr, "fixture: $CHAND is not set (run through make check)\n");
        return -1;
    }
    char portfile[128], logfile[128], listen[64];
    snprintf(portfile, sizeof portfile, "%s/port", d->dir);
    snprintf(logfile, sizeof logfile, "%s/chand.log", d->dir);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", d->port);
    unlink(portfile);   /* a restart must not read the last run's */
    const char *argv[40] = { bin, "--listen", listen, "--port-file", portfile,
                             "--log-level", "info" };
    int argc = 7;
    if (d->durable) {
        argv[argc++] = "--data-dir";
        argv[argc++] = d->data;
    }
    for (int i = 0; extra && extra[i] && argc < 39; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fixture: fork");
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | (restart ? 0 : O_TRUNC), 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        if (fsize_limit > 0) {
            struct rlimit rl = { (rlim_t)fsize_limit, (rlim_t)fsize_limit };
            if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
                _exit(126);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    d->pid = pid;
    return 0;
}

/* spawn, then wait for the port file. */
static int launch(chand_proc_t *d, const char *const *extra, long long fsize_limit, bool restart)
{
    if (spawn(d, extra, fsize_limit, restart) < 0)
        return -1;
    char portfile[128];
    snprintf(portfile, sizeof portfile, "%s/port", d->dir);
    pid_t pid = d->pid;
    for (int i = 0; i < 1000; i++) {   /* up to 10 s */
        FILE *f = fopen(portfile, "r");
        if (f) {
            int port = 0;
            int ok = fscanf(f, "%d", &port);
            fclose(f);
            if (ok == 1 && port > 0) {
                d->port = port;
                snprintf(d->addr, sizeof d->addr, "127.0.0.1:%d", d->port);
                return 0;
            }
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "fixture: chand exited before listening\n");
            d->pid = 0;
            chand_dump_log(d);
            return -1;
        }
        chand_sleep_ms(10);
    }
    fprintf(stderr, "fixture: chand did not write its port file in 10 s\n");
    if (restart)
        chand_signal(d, SIGKILL);   /* its data dir stays, for a look */
    else
        chand_stop(d);
    return -1;
}

int chand_start(chand_proc_t *d, const char *const *extra)
{
    if (make_dir(d) < 0)
        return -1;
    return launch(d, extra, 0, false);
}

int chand_spawn(chand_proc_t *d, const char *const *extra)
{
    if (d->pid > 0) {
        fprintf(stderr, "fixture: chand_spawn: chand is running\n");
        return -1;
    }
    bool again = d->dir[0] != 0;
    if (!again && make_dir(d) < 0)
        return -1;
    return spawn(d, extra, 0, again);
}

int chand_start_data(chand_proc_t *d, const char *const *extra, long long fsize_limit)
{
    if (make_dir(d) < 0)
        return -1;
    snprintf(d->data, sizeof d->data, "%s/data", d->dir);
    d->durable = 1;
    return launch(d, extra, fsize_limit, false);
}

int chand_start_again_once(chand_proc_t *d, const char *const *extra, long long fsize_limit)
{
    if (d->pid > 0 || !d->dir[0] || !d->port) {
        fprintf(stderr, "fixture: starting chand again needs one stopped by chand_kill\n");
        return -1;
    }
    return launch(d, extra, fsize_limit, true);
}

int chand_start_again(chand_proc_t *d, const char *const *extra)
{
    /* The port is free once the old daemon is dead (chand binds with
     * SO_REUSEADDR, so its connections in TIME_WAIT do not hold it); a
     * start that fails is tried again, briefly, all the same. */
    for (int i = 0; i < 20; i++) {
        if (chand_start_again_once(d, extra, 0) == 0)
            return 0;
        chand_sleep_ms(50);
    }
    fprintf(stderr, "fixture: could not start chand again on port %d\n", d->port);
    return -1;
}

int chand_restart(chand_proc_t *d, const char *const *extra)
{
    chand_kill(d);
    return chand_start_again(d, extra);
}

/* The --metrics port, from d's log line "metrics on http://127.0.0.1:PORT"
 * (waited for, 5 s at most): the port, or -1. */
static int metrics_port(const chand_proc_t *d)
{
    char path[128], line[512];
    snprintf(path, sizeof path, "%s/chand.log", d->dir);
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(path, "r");
        int port = 0;
        while (f && fgets(line, sizeof line, f)) {
            char *p = strstr(line, "metrics on http://127.0.0.1:");
            if (p)
                port = atoi(p + strlen("metrics on http://127.0.0.1:"));
        }
        if (f)
            fclose(f);
        if (port > 0)
            return port;
        chand_sleep_ms(10);
    }
    return -1;
}

const char *chand_http_get(const chand_proc_t *d, const char *path)
{
    int port = metrics_port(d);
    ck_assert_msg(port > 0, "no metrics port in %s/chand.log", d->dir);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
    ck_assert_int_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    static char body[65536];
    size_t got = 0;
    for (;;) {
        struct pollfd p = { fd, POLLIN, 0 };
        ck_assert_int_eq(poll(&p, 1, 5000), 1);
        ssize_t r = recv(fd, body + got, sizeof body - 1 - got, 0);
        ck_assert_int_ge(r, 0);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    body[got] = 0;
    close(fd);
    return body;
}

/* The text format's rules: every sample's family is announced by one HELP
 * and one TYPE line before it, and a family's samples come together. */
void chand_assert_exposition(const char *body)
{
    const char *p = strstr(body, "\r\n\r\n");
    ck_assert(p);
    p += 4;
    char cur[128] = "", seen[8192] = " ";
    while (*p) {
        const char *eol = strchr(p, '\n');
        ck_assert_msg(eol, "an unterminated line: %s", p);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(eol - p), p);
        char name[128];
        if (sscanf(line, "# TYPE %127s", name) == 1) {
            char key[132];
            snprintf(key, sizeof key, " %s ", name);
            ck_assert_msg(!strstr(seen, key), "family %s announced twice", name);
            ck_assert_msg(strlen(seen) + strlen(key) < sizeof seen, "too many families");
            strcat(seen, key + 1);
            snprintf(cur, sizeof cur, "%s", name);
        } else if (line[0] != '#') {
            size_t n = strcspn(line, "{ ");
            snprintf(name, sizeof name, "%.*s", (int)n, line);
            size_t cl = strlen(cur);
            bool ok = !strcmp(name, cur) ||
                      (!strncmp(name, cur, cl) && (!strcmp(name + cl, "_bucket") ||
                                                   !strcmp(name + cl, "_sum") ||
                                                   !strcmp(name + cl, "_count")));
            ck_assert_msg(ok, "sample %s outside its family (the last TYPE was %s)", line, cur);
        } else {
            ck_assert_msg(!strncmp(line, "# HELP ", 7), "a comment that is not HELP: %s", line);
        }
        p = eol + 1;
    }
}

void chand_dump_log(const chand_proc_t *d)
{
    char path[128], line[512];
    snprintf(path, sizeof path, "%s/chand.log", d->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f))
        fprintf(stderr, "  chand: %s", line);
    fclose(f);
}

/* ---- stopping ---- */

enum { RUNNING = -1, GONE = -2 };

/* Wait up to ms for child pid: its wait status, RUNNING, or GONE (not
 * our child, or already waited for: never signal that pid again). */
static int wait_exit(pid_t pid, long ms)
{
    int st = 0;
    for (long i = 0; i <= ms / 10; i++) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return st;
        if (w < 0)
            return GONE;
        chand_sleep_ms(10);
    }
    return RUNNING;
}

int chand_signal(chand_proc_t *d, int sig)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, sig);
    int st = wait_exit(d->pid, 10000);
    if (st == RUNNING) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, &st, 0);
    }
    d->pid = 0;
    return st == GONE ? -1 : st;
}

int chand_kill(chand_proc_t *d)
{
    return chand_signal(d, SIGKILL) == -1 ? -1 : 0;
}

int chand_stop(chand_proc_t *d)
{
    int rc = -1;
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        int st = wait_exit(d->pid, 5000);
        if (st == RUNNING) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &st, 0);
        } else if (st != GONE && WIFEXITED(st)) {
            rc = WEXITSTATUS(st);
        }
        d->pid = 0;
    }
    if (d->dir[0]) {
        rm_dir(d->dir);
        d->dir[0] = 0;
    }
    return rc;
}

int chand_run(const char *const *args, char *out, size_t size, long timeout_ms)
{
    const char *bin = getenv("CHAND");
    int p[2];
    if (!bin || size == 0 || pipe(p) < 0)
        return -1;
    const char *argv[40] = { bin };
    int argc = 1;
    for (int i = 0; args && args[i] && argc < 39; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t got = 0;
    int64_t until = chan_now() + timeout_ms;
    for (;;) {
        int64_t left = until - chan_now();
        struct pollfd pf = { p[0], POLLIN, 0 };
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
            break;
        char buf[512];
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n <= 0)
            break;   /* it closed its output: it has ended */
        size_t take = (size_t)n < size - 1 - got ? (size_t)n : size - 1 - got;
        memcpy(out + got, buf, take);
        got += take;
    }
    out[got] = 0;
    close(p[0]);
    int64_t left = until - chan_now();
    int st = wait_exit(pid, left > 0 ? (long)left : 0);
    if (st == RUNNING) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return st < 0 ? -1 : st;
}

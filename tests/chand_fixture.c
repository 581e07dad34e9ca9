/*
 * chand_fixture.c - run chand for integration tests (see chand_fixture.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

/* Start chand listening on `listen` (and no other address). */
static int start_on(chand_proc_t *d, const char *listen, const char *const *extra)
{
    memset(d, 0, sizeof *d);
    const char *bin = getenv("CHAND");
    if (!bin) {
        fprintf(stderr, "fixture: $CHAND is not set (run through make check)\n");
        return -1;
    }
    strcpy(d->dir, "/tmp/chand-test-XXXXXX");
    if (!mkdtemp(d->dir)) {
        perror("fixture: mkdtemp");
        return -1;
    }
    char portfile[128], logfile[128];
    snprintf(portfile, sizeof portfile, "%s/port", d->dir);
    snprintf(logfile, sizeof logfile, "%s/chand.log", d->dir);
    const char *argv[32] = { bin, "--listen", listen, "--port-file", portfile,
                             "--log-level", "info" };
    int argc = 7;
    for (int i = 0; extra && extra[i] && argc < 31; i++)
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
        int fd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    d->pid = pid;
    for (int i = 0; i < 1000; i++) {   /* up to 10 s */
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", &d->port);
            fclose(f);
            if (ok == 1 && d->port > 0) {
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
    chand_stop(d);
    return -1;
}

int chand_start(chand_proc_t *d, const char *const *extra)
{
    return start_on(d, "127.0.0.1:0", extra);
}

/* Remove the daemon's directory (its port file and log). */
static void remove_dir(chand_proc_t *d)
{
    if (!d->dir[0])
        return;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fixture: could not remove %s\n", d->dir);
    d->dir[0] = 0;
}

int chand_kill(chand_proc_t *d)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
    return 0;
}

int chand_start_again(chand_proc_t *d, const char *const *extra)
{
    int port = d->port;
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    remove_dir(d);
    /* The port is free once the old daemon is dead (chand binds with
     * SO_REUSEADDR, so its connections in TIME_WAIT do not hold it); a
     * start that fails is tried again, briefly, all the same. */
    for (int i = 0; i < 20; i++) {
        if (start_on(d, listen, extra) == 0 && d->port == port)
            return 0;
        chand_stop(d);   /* and its directory */
        chand_sleep_ms(50);
    }
    fprintf(stderr, "fixture: could not start chand again on port %d\n", port);
    return -1;
}

int chand_restart(chand_proc_t *d, const char *const *extra)
{
    chand_kill(d);
    return chand_start_again(d, extra);
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

int chand_stop(chand_proc_t *d)
{
    int rc = -1;
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        int st = 0;
        pid_t w = 0;
        for (int i = 0; i < 500 && w == 0; i++) {   /* up to 5 s */
            w = waitpid(d->pid, &st, WNOHANG);
            if (w == 0)
                chand_sleep_ms(10);
        }
        if (w == 0) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &st, 0);
        } else if (w == d->pid && WIFEXITED(st)) {
            rc = WEXITSTATUS(st);
        }
        d->pid = 0;
    }
    remove_dir(d);
    return rc;
}

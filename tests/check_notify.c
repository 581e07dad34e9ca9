/*
 * check_notify.c - chand tells a service manager how it is doing
 * (systemd's sd_notify protocol, daemon/chand_notify.c).
 *
 * The test plays systemd: it binds an AF_UNIX datagram socket, starts
 * chand with $NOTIFY_SOCKET naming it (an abstract "@name" or a path), and
 * reads what arrives.  chand is started with chand_spawn, which does not
 * wait for the port file: READY=1 must come once the port accepts
 * connections, so the port is looked at only when READY=1 is in.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chan/chan.h"
#include "chand_fixture.h"

#define WAIT_MS 5000

/* The service manager's socket, bound to name ("@abstract" or a path). */
static int notify_socket(const char *name)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    size_t n = strlen(name);
    ck_assert_uint_lt(n, sizeof sun.sun_path);
    memcpy(sun.sun_path, name, n);
    if (name[0] == '@')
        sun.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    ck_assert_msg(bind(fd, (struct sockaddr *)&sun, len) == 0, "bind %s: %s", name,
                  strerror(errno));
    return fd;
}

/* The next message, NUL-terminated, within ms: its length, or -1. */
static int next_msg(int fd, char *buf, size_t size, int ms)
{
    struct pollfd pf = { fd, POLLIN, 0 };
    if (poll(&pf, 1, ms) != 1)
        return -1;
    ssize_t n = recv(fd, buf, size - 1, 0);
    if (n < 0)
        return -1;
    buf[n] = 0;
    return (int)n;
}

static void expect_msg(int fd, chand_proc_t *d, const char *want)
{
    char msg[512];
    if (next_msg(fd, msg, sizeof msg, WAIT_MS) < 0) {
        chand_dump_log(d);
        ck_abort_msg("no message from chand in %d ms (waiting for %s)", WAIT_MS, want);
    }
    ck_assert_str_eq(msg, want);
}

static void expect_none(int fd, int ms)
{
    char msg[512];
    if (next_msg(fd, msg, sizeof msg, ms) >= 0)
        ck_abort_msg("unexpected message from chand: \"%s\"", msg);
}

/* Start chand as chand_spawn does (on 127.0.0.1:0 with a port file; in
 * d->dir if set, else in a new directory), with $NOTIFY_SOCKET set to
 * notify, and return at once without waiting for anything. */
static void start(chand_proc_t *d, const char *notify, const char *const *extra)
{
    setenv("NOTIFY_SOCKET", notify, 1);   /* this test's process only (Check forks) */
    d->port = 0;
    ck_assert_int_eq(chand_spawn(d, extra), 0);
}

/* chand said READY=1: its port file is there and the port takes a TCP
 * connection at once (no retries), then a Hello and a ping. */
static void check_serving(chand_proc_t *d)
{
    char portfile[128];
    snprintf(portfile, sizeof portfile, "%s/port", d->dir);
    FILE *f = fopen(portfile, "r");
    ck_assert_msg(f != NULL, "READY=1 came before the port file %s", portfile);
    ck_assert_int_eq(fscanf(f, "%d", &d->port), 1);
    fclose(f);
    snprintf(d->addr, sizeof d->addr, "127.0.0.1:%d", d->port);
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t)d->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_msg(connect(fd, (struct sockaddr *)&in, sizeof in) == 0,
                  "READY=1 came before 127.0.0.1:%d took connections: %s", d->port,
                  strerror(errno));
    close(fd);
    chan_client_t *cl = chand_dial(d);
    ck_assert_int_eq(chan_ping(cl, chan_now() + WAIT_MS), 0);
    chan_disconnect(cl);
}

static void stop_clean(chand_proc_t *d)
{
    int st = chand_signal(d, SIGTERM);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        chand_dump_log(d);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "chand did not exit 0 on SIGTERM");
}

static void abstract_name(char *buf, size_t size)
{
    snprintf(buf, size, "@chand-notify-test-%d-%ld", (int)getpid(), (long)time(NULL));
}

/* An abstract socket: READY=1 once serving, nothing more while it runs,
 * STOPPING=1 on SIGTERM, and a clean exit. */
START_TEST(test_ready_then_stopping)
{
    char name[108];
    abstract_name(name, sizeof name);
    int fd = notify_socket(name);
    chand_proc_t d = { 0 };
    start(&d, name, NULL);
    expect_msg(fd, &d, "READY=1");
    check_serving(&d);
    expect_none(fd, 200);
    stop_clean(&d);
    expect_msg(fd, &d, "STOPPING=1");
    expect_none(fd, 0);
    chand_stop(&d);
    close(fd);
}
END_TEST

static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* SIGHUP: RELOADING=1 with the time on the monotonic clock, then READY=1;
 * chand goes on serving. */
START_TEST(test_reload)
{
    char name[108];
    abstract_name(name, sizeof name);
    int fd = notify_socket(name);
    chand_proc_t d = { 0 };
    start(&d, name, NULL);
    expect_msg(fd, &d, "READY=1");
    check_serving(&d);
    long long before = mono_us();
    kill(d.pid, SIGHUP);
    char msg[512];
    ck_assert_int_gt(next_msg(fd, msg, sizeof msg, WAIT_MS), 0);
    long long at = 0;
    ck_assert_msg(sscanf(msg, "RELOADING=1\nMONOTONIC_USEC=%lld", &at) == 1,
                  "not RELOADING=1 with MONOTONIC_USEC: \"%s\"", msg);
    ck_assert_msg(at >= before && at <= mono_us(), "MONOTONIC_USEC=%lld not in [%lld, now]", at,
                  before);
    expect_msg(fd, &d, "READY=1");
    check_serving(&d);
    stop_clean(&d);
    expect_msg(fd, &d, "STOPPING=1");
    chand_stop(&d);
    close(fd);
}
END_TEST

/* A socket file, and a --data-dir: READY=1 comes with the channels of the
 * last run loaded. */
START_TEST(test_path_and_data_dir)
{
    chand_proc_t d = { 0 };
    snprintf(d.dir, sizeof d.dir, "/tmp/chand-notify-XXXXXX");   /* for the socket's path */
    ck_assert_ptr_nonnull(mkdtemp(d.dir));
    char data[96], sock[96];
    snprintf(data, sizeof data, "%s/data", d.dir);
    snprintf(sock, sizeof sock, "%s/notify", d.dir);
    int fd = notify_socket(sock);
    const char *const extra[] = { "--data-dir", data, NULL };

    start(&d, sock, extra);
    expect_msg(fd, &d, "READY=1");
    check_serving(&d);
    chan_client_t *cl = chand_dial(&d);
    chan_t *ch = chand_open_ch(cl, "kept", 4);
    ck_assert_int_eq(chan_send(ch, "v1", 2, chan_now() + WAIT_MS), 0);
    chan_release(ch);
    chan_disconnect(cl);
    stop_clean(&d);
    expect_msg(fd, &d, "STOPPING=1");

    start(&d, sock, extra);   /* again, in the same directory */
    expect_msg(fd, &d, "READY=1");
    check_serving(&d);
    cl = chand_dial(&d);
    ch = chand_open_ch(cl, "kept", 4);
    ck_assert_int_eq(chan_len(ch), 1);
    chan_release(ch);
    chan_disconnect(cl);
    stop_clean(&d);
    expect_msg(fd, &d, "STOPPING=1");
    chand_stop(&d);
    close(fd);
}
END_TEST

/* $NOTIFY_SOCKET that names nothing usable: a warning in the log, and
 * chand serves and stops as ever. */
START_TEST(test_bad_socket)
{
    static const char *const bad[] = { "relative/notify", "@", "/nonexistent-dir/notify" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        chand_proc_t d = { 0 };
        start(&d, bad[i], NULL);
        for (int t = 0; t < 1000; t++) {   /* no READY=1 to wait for: the port file */
            char portfile[128];
            snprintf(portfile, sizeof portfile, "%s/port", d.dir);
            if (access(portfile, F_OK) == 0)
                break;
            chand_sleep_ms(10);
        }
        check_serving(&d);
        stop_clean(&d);
        char log[128], line[512];
        snprintf(log, sizeof log, "%s/chand.log", d.dir);
        FILE *f = fopen(log, "r");
        ck_assert_ptr_nonnull(f);
        int warned = 0;
        while (fgets(line, sizeof line, f))
            warned += strstr(line, "NOTIFY_SOCKET=") != NULL && strstr(line, bad[i]) != NULL;
        fclose(f);
        ck_assert_msg(warned >= 2, "NOTIFY_SOCKET=%s: %d warnings in the log, expected one "
                      "for READY=1 and one for STOPPING=1", bad[i], warned);
        chand_stop(&d);
    }
}
END_TEST

static Suite *notify_suite(void)
{
    Suite *s = suite_create("notify");
    TCase *tc = tcase_create("sd_notify");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_ready_then_stopping);
    tcase_add_test(tc, test_reload);
    tcase_add_test(tc, test_path_and_data_dir);
    tcase_add_test(tc, test_bad_socket);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(notify_suite());
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}

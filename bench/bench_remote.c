/*
 * bench_remote.c - remote channels from goroutines, against the floor.
 *
 *   bench_remote ADDR ROUNDS
 *
 * measures, in interleaved rounds so that a busy machine slows every line
 * alike:
 *   raw     a TCP round trip between two processes (a minimal echo): the
 *           floor any request/reply over loopback pays
 *   thread  one remote operation (chan_ping: a request to chand and its
 *           reply) from a plain thread
 *   gorout  the same from a goroutine
 *   pp      ping-pong between goroutines in two processes over two remote
 *           unbuffered channels: one round = ping sent, received, pong sent,
 *           received (each send completes when the other side has the value)
 *   tput    64 goroutines sending and 64 receiving 64-byte values through one
 *           unbuffered channel, one connection per side: values per second
 * and prints the median over rounds of each line's p50 and p99 (latencies in
 * microseconds), one `key=value` line per result.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chan/chan.h"
#include "chan_clock.h"

enum { SAMPLES = 5000, PP_ROUNDS = 2000, TPUT_G = 64, TPUT_N = 100000 };

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* p50 and p99 of n samples (sorted in place), in microseconds */
static void percentiles(int64_t *v, int n, double *p50, double *p99)
{
    qsort(v, (size_t)n, sizeof *v, cmp64);
    *p50 = (double)v[n / 2] / 1000.0;
    *p99 = (double)v[(n * 99) / 100] / 1000.0;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_remote: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- raw TCP: the floor ---- */

static void echo_forever(int lfd)
{
    int c = accept(lfd, NULL, NULL);
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b[64];
    for (;;) {
        ssize_t n = read(c, b, sizeof b);
        if (n <= 0 || write(c, b, (size_t)n) != n)
            _exit(0);
    }
}

static void raw_round(int64_t *lat)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) < 0)
        die("listen");
    pid_t pid = fork();
    if (pid == 0)
        echo_forever(lfd);
    close(lfd);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b[32] = { 0 };
    for (int i = 0; i < SAMPLES; i++) {
        int64_t t = chan_mono_ns();
        if (write(s, b, sizeof b) != sizeof b || read(s, b, sizeof b) != sizeof b)
            die("echo");
        lat[i] = chan_mono_ns() - t;
    }
    close(s);
    waitpid(pid, NULL, 0);
}

/* ---- one remote operation ---- */

static chan_client_t *cl;
static int64_t *glat;
static chan_wg_t *wg;

static void ping_samples(int64_t *lat)
{
    for (int i = 0; i < SAMPLES; i++) {
        int64_t t = chan_mono_ns();
        if (chan_ping(cl, -1) < 0)
            die("ping");
        lat[i] = chan_mono_ns() - t;
    }
}

static void ping_goroutine(void *arg)
{
    (void)arg;
    ping_samples(glat);
    chan_wg_done(wg);
}

static void goroutine_round(int64_t *lat)
{
    glat = lat;
    chan_wg_add(wg, 1);
    if (chan_go(ping_goroutine, NULL) < 0)
        die("chan_go");
    chan_wg_wait(wg, -1);
}

/* ---- ping-pong across processes ---- */

static void ponger(void *arg)
{
    chan_t **ch = arg;
    char v[16];
    for (;;) {
        ssize_t n = chan_recv(ch[0], v, sizeof v, -1);
        if (n < 0 || chan_send(ch[1], v, (size_t)n, -1) < 0)
            break;
    }
    chan_wg_done(wg);
}

/* The other process (this program run again: a process that has started
 * the runtime's threads cannot fork one that uses it): a goroutine
 * answering pings with pongs. */
static int pong_process(const char *addr, const char *ping, const char *pong)
{
    chan_client_t *c = chan_connect(addr, NULL, chan_now() + 5000);
    if (!c)
        die("connect");
    chan_t *ch[2] = { chan_open(c, ping, 0, 0, -1), chan_open(c, pong, 0, 0, -1) };
    if (!ch[0] || !ch[1])
        die("open");
    wg = chan_wg_make();
    chan_wg_add(wg, 1);
    chan_go(ponger, ch);
    chan_wg_wait(wg, -1);
    chan_disconnect(c);
    return 0;
}

static const char *self_path;

static int pp_seq;

struct pp_arg {
    chan_t *ping, *pong;
    int64_t *lat;
};

static void pinger(void *arg)
{
    struct pp_arg *p = arg;
    char v[16] = "ping";
    for (int i = 0; i < PP_ROUNDS; i++) {
        int64_t t = chan_mono_ns();
        if (chan_send(p->ping, v, 4, -1) < 0 || chan_recv(p->pong, v, sizeof v, -1) < 0)
            die("ping-pong");
        p->lat[i] = chan_mono_ns() - t;
    }
    chan_wg_done(wg);
}

static void pingpong_round(const char *addr, int64_t *lat)
{
    char ping[64], pong[64];
    snprintf(ping, sizeof ping, "bench.ping.%d.%d", (int)getpid(), pp_seq);
    snprintf(pong, sizeof pong, "bench.pong.%d.%d", (int)getpid(), pp_seq++);
    pid_t pid = fork();
    if (pid == 0) {
        execl(self_path, self_path, "--pong", addr, ping, pong, (char *)NULL);
        _exit(127);
    }
    struct pp_arg p = { chan_open(cl, ping, 0, 0, -1), chan_open(cl, pong, 0, 0, -1), lat };
    if (!p.ping || !p.pong)
        die("open");
    chan_wg_add(wg, 1);
    chan_go(pinger, &p);
    chan_wg_wait(wg, -1);
    chan_close(p.ping);   /* the ponger's receive fails: it ends */
    waitpid(pid, NULL, 0);
    chan_release(p.ping);
    chan_release(p.pong);
}

/* ---- throughput: 64 senders, 64 receivers ---- */

static atomic_long tput_left;

static void tput_send(void *arg)
{
    chan_t *ch = arg;
    char v[64] = { 0 };
    for (int i = 0; i < TPUT_N / TPUT_G; i++)
        if (chan_send(ch, v, sizeof v, -1) < 0)
            die("send");
    chan_wg_done(wg);
}

static void tput_recv(void *arg)
{
    chan_t *ch = arg;
    char v[64];
    while (atomic_fetch_sub(&tput_left, 1) > 0)
        if (chan_recv(ch, v, sizeof v, -1) < 0)
            die("recv");
    chan_wg_done(wg);
}

static double throughput_round(const char *addr)
{
    char name[64];
    snprintf(name, sizeof name, "bench.tput.%d.%d", (int)getpid(), pp_seq++);
    chan_client_t *rc = chan_connect(addr, NULL, chan_now() + 5000);
    if (!rc)
        die("connect");
    chan_t *in = chan_open(cl, name, 0, 0, -1), *out = chan_open(rc, name, 0, 0, -1);
    atomic_store(&tput_left, (TPUT_N / TPUT_G) * TPUT_G);
    int64_t t = chan_mono_ns();
    chan_wg_add(wg, 2 * TPUT_G);
    for (int i = 0; i < TPUT_G; i++) {
        chan_go(tput_recv, out);
        chan_go(tput_send, in);
    }
    chan_wg_wait(wg, -1);
    double secs = (double)(chan_mono_ns() - t) / 1e9;
    chan_release(in);
    chan_release(out);
    chan_disconnect(rc);
    return (TPUT_N / TPUT_G) * TPUT_G / secs;
}

/* ---- main ---- */

struct line {
    const char *name;
    double *p50, *p99;
};

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)   /* insertion sort: a handful of rounds */
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

int main(int argc, char **argv)
{
    self_path = argv[0];
    if (argc == 5 && strcmp(argv[1], "--pong") == 0)
        return pong_process(argv[2], argv[3], argv[4]);
    if (argc != 3) {
        fprintf(stderr, "usage: bench_remote ADDR ROUNDS\n");
        return 2;
    }
    const char *addr = argv[1];
    int rounds = atoi(argv[2]);
    if (rounds < 1 || rounds > 100)
        rounds = 5;
    signal(SIGPIPE, SIG_IGN);
    cl = chan_connect(addr, NULL, chan_now() + 5000);
    if (!cl)
        die("connect");
    wg = chan_wg_make();
    int64_t *lat = malloc(SAMPLES * sizeof *lat);
    double raw50[100], raw99[100], th50[100], th99[100], go50[100], go99[100];
    double pp50[100], pp99[100], tput[100];
    for (int r = 0; r < rounds; r++) {
        raw_round(lat);
        percentiles(lat, SAMPLES, &raw50[r], &raw99[r]);
        ping_samples(lat);
        percentiles(lat, SAMPLES, &th50[r], &th99[r]);
        goroutine_round(lat);
        percentiles(lat, SAMPLES, &go50[r], &go99[r]);
        pingpong_round(addr, lat);
        percentiles(lat, PP_ROUNDS, &pp50[r], &pp99[r]);
        tput[r] = throughput_round(addr);
    }
    double raw = median(raw50, rounds), go = median(go50, rounds);
    printf("raw_tcp_rtt_p50_us=%.1f raw_tcp_rtt_p99_us=%.1f\n", raw, median(raw99, rounds));
    printf("thread_op_p50_us=%.1f thread_op_p99_us=%.1f\n", median(th50, rounds),
           median(th99, rounds));
    printf("goroutine_op_p50_us=%.1f goroutine_op_p99_us=%.1f\n", go, median(go99, rounds));
    printf("goroutine_op_vs_raw=%.2f\n", go / raw);
    printf("pingpong_p50_us=%.1f pingpong_p99_us=%.1f\n", median(pp50, rounds),
           median(pp99, rounds));
    printf("tput_64x64_values_per_s=%.0f\n", median(tput, rounds));
    chan_disconnect(cl);
    free(lat);
    return 0;
}

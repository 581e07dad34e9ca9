/*
 * bench_runtime.c - the runtime's workloads, one per command, timed the
 * same way as bench_runtime.go does them in Go (bench/runtime.sh runs both
 * and prints the table).  Each command runs inside a goroutine, as a Go
 * program's main does, and prints one line: "<name> <value> <unit>".
 *
 *   pingpong N     unbuffered ping-pong between two goroutines, ns/handoff
 *   buffered N     one producer, one consumer, cap 1024, ns/value
 *   select2 N      select over 2 buffered channels (cap 1024) fed by 2
 *                  producers, ns/select: mostly ready cases
 *   select4 N      the same over 4 channels
 *   select2u N     select over 2 unbuffered channels: every select waits
 *   select4u N     the same over 4 channels
 *   spawn N        goroutine start + exit (joined by a wait group), ns
 *   daisy N        Pike's daisy chain of N goroutines: wall s, peak RSS MB
 *   fanin N        fan-in of 4 generators, N values in all, ns/value
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "chan/chan.h"
#include "chan_clock.h"

static double now_s(void)
{
    return (double)chan_mono_ns() * 1e-9;
}

static long n_arg;

/* ---- ping-pong ---------------------------------------------------------- */

struct pp {
    chan_t *ping, *pong;
    chan_wg_t *wg;
};

static void ponger(void *p)
{
    struct pp *pp = p;
    long v;
    for (long i = 0; i < n_arg; i++) {
        chan_recv(pp->ping, &v, sizeof v, -1);
        chan_send(pp->pong, &v, sizeof v, -1);
    }
    chan_wg_done(pp->wg);
}

static void bench_pingpong(void)
{
    struct pp pp = { chan_make(0), chan_make(0), chan_wg_make() };
    chan_wg_add(pp.wg, 1);
    chan_go(ponger, &pp);
    double t0 = now_s();
    long v;
    for (long i = 0; i < n_arg; i++) {
        chan_send(pp.ping, &i, sizeof i, -1);
        chan_recv(pp.pong, &v, sizeof v, -1);
    }
    double t = now_s() - t0;
    chan_wg_wait(pp.wg, -1);
    printf("pingpong %.1f ns/handoff\n", t / (2.0 * (double)n_arg) * 1e9);
}

/* ---- buffered ------------------------------------------------------------ */

struct prod {
    chan_t *c;
    long n;
};

static void producer(void *p)
{
    struct prod *pr = p;
    for (long i = 0; i < pr->n; i++)
        chan_send(pr->c, &i, sizeof i, -1);
}

static void bench_buffered(void)
{
    struct prod pr = { chan_make(1024), n_arg };
    double t0 = now_s();
    chan_go(producer, &pr);
    long v;
    for (long i = 0; i < n_arg; i++)
        chan_recv(pr.c, &v, sizeof v, -1);
    double t = now_s() - t0;
    printf("buffered %.1f ns/value\n", t / (double)n_arg * 1e9);
}

/* ---- select ---------------------------------------------------------------- */

static void bench_select(int k, size_t cap)
{
    struct prod pr[4];
    chan_case_t cs[4];
    long v;
    for (int i = 0; i < k; i++) {
        pr[i] = (struct prod){ chan_make(cap), n_arg / k };
        cs[i] = (chan_case_t)CHAN_CASE_RECV(pr[i].c, &v, sizeof v);
    }
    double t0 = now_s();
    for (int i = 0; i < k; i++)
        chan_go(producer, &pr[i]);
    long total = (n_arg / k) * k;
    for (long i = 0; i < total; i++)
        chan_select(cs, (size_t)k, -1);
    double t = now_s() - t0;
    printf("select%d%s %.1f ns/select\n", k, cap ? "" : "u", t / (double)total * 1e9);
}

/* ---- spawn ---------------------------------------------------------------- */

static void done(void *p)
{
    chan_wg_done(p);
}

static void bench_spawn(void)
{
    chan_wg_t *wg = chan_wg_make();
    double t0 = now_s();
    for (long i = 0; i < n_arg; i++) {
        chan_wg_add(wg, 1);
        chan_go(done, wg);
    }
    chan_wg_wait(wg, -1);
    double t = now_s() - t0;
    printf("spawn %.1f ns\n", t / (double)n_arg * 1e9);
}

/* ---- daisy chain ---------------------------------------------------------- */

struct whisper {
    chan_t *left, *right;
};

static void whisper(void *p)
{
    struct whisper *w = p;
    long v;
    chan_recv(w->right, &v, sizeof v, -1);
    v++;
    chan_send(w->left, &v, sizeof v, -1);
}

static void bench_daisy(void)
{
    /* One allocation for the records, as Go's closures would share the
     * heap; the channels stay referenced until the end like Go's. */
    struct whisper *ws = malloc(sizeof *ws * (size_t)n_arg);
    chan_t **chans = malloc(sizeof *chans * (size_t)(n_arg + 1));
    double t0 = now_s();
    chan_t *leftmost = chans[0] = chan_make(0), *left = leftmost, *right = leftmost;
    for (long i = 0; i < n_arg; i++) {
        right = chans[i + 1] = chan_make(0);
        ws[i] = (struct whisper){ left, right };
        chan_go(whisper, &ws[i]);
        left = right;
    }
    long v = 1;
    chan_send(right, &v, sizeof v, -1);
    chan_recv(leftmost, &v, sizeof v, -1);
    double t = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("daisy %ld %.3f s %.1f MB\n", v, t, (double)ru.ru_maxrss / 1024.0);
}

/* ---- fan-in ------------------------------------------------------------------ */

static void gen(chan_t *out, void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++)
        chan_send(out, &i, sizeof i, -1);
}

static void bench_fanin(void)
{
    long per = n_arg / 4;
    double t0 = now_s();
    chan_t *in[4];
    for (int i = 0; i < 4; i++)
        in[i] = chan_generator(gen, &per, 0);
    chan_t *out = chan_fanin(in, 4);
    long v, count = 0;
    while (chan_recv(out, &v, sizeof v, -1) >= 0)
        count++;
    double t = now_s() - t0;
    printf("fanin %.1f ns/value\n", t / (double)count * 1e9);
}

/* ---- main ------------------------------------------------------------------- */

static const char *cmd;

static void run(void *p)
{
    chan_wg_t *wg = p;
    if (!strcmp(cmd, "pingpong"))
        bench_pingpong();
    else if (!strcmp(cmd, "buffered"))
        bench_buffered();
    else if (!strcmp(cmd, "select2"))
        bench_select(2, 1024);
    else if (!strcmp(cmd, "select4"))
        bench_select(4, 1024);
    else if (!strcmp(cmd, "select2u"))
        bench_select(2, 0);
    else if (!strcmp(cmd, "select4u"))
        bench_select(4, 0);
    else if (!strcmp(cmd, "spawn"))
        bench_spawn();
    else if (!strcmp(cmd, "daisy"))
        bench_daisy();
    else if (!strcmp(cmd, "fanin"))
        bench_fanin();
    else
        fprintf(stderr, "unknown benchmark %s\n", cmd);
    fflush(stdout);
    chan_wg_done(wg);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s pingpong|buffered|select2|select4|select2u|select4u|spawn|daisy|fanin N\n",
                argv[0]);
        return 2;
    }
    cmd = argv[1];
    n_arg = atol(argv[2]);
    chan_wg_t *wg = chan_wg_make();
    chan_wg_add(wg, 1);
    if (chan_go(run, wg) < 0) {
        perror("chan_go");
        return 1;
    }
    chan_wg_wait(wg, -1);
    return 0;
}

/*
 * bench_stall.c - does any one request stall chand for everyone else?
 *
 * chand runs every request on one thread, so a request whose work grows
 * with the data (listing every channel, deleting a channel that holds a
 * million values, closing a channel a thousand receivers wait on, a select
 * over a thousand channels) delays every other client by that much.  This
 * program makes such data, then:
 *
 *   1. pings chand once a millisecond on a connection of its own, alone and
 *      then while another connection lists every channel in a loop
 *      (chan_list: Stat{all} a page at a time), and reports the pings'
 *      percentiles: the latency an innocent client sees;
 *   2. runs each heavy request once and reports the longest event-loop
 *      callback it caused, from chand's own loop-stall histogram (the
 *      counts of Stat{} before and after: the highest bucket that grew).
 *
 * Usage: bench_stall ADDR [CHANNELS [SECONDS]]   (default 1000000, 10)
 * Prints a markdown table on stdout; bench/stall.sh runs it (make
 * bench-stall) against a fresh chand.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan/chan.h"
#include "chan_clock.h"

#define OPENERS 32          /* threads making channels, pipelined */
#define PING_EVERY_US 1000

static const char *addr;

static uint64_t now_us(void)
{
    return (uint64_t)chan_mono_ns() / 1000;
}

static chan_client_t *dial(void)
{
    chan_client_t *cl = chan_connect(addr, NULL, chan_now() + 10000);
    if (!cl) {
        fprintf(stderr, "bench_stall: cannot connect to %s: %s\n", addr, strerror(errno));
        exit(1);
    }
    return cl;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_stall: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- making channels ---- */

struct opener {
    chan_client_t *cl;
    long from, to;
};

static void *open_range(void *arg)
{
    struct opener *o = arg;
    char name[32];
    for (long i = o->from; i < o->to; i++) {
        snprintf(name, sizeof name, "s.%07ld", i);
        chan_t *ch = chan_open(o->cl, name, 0, 0, chan_now() + 60000);
        if (!ch)
            die("open");
        chan_release(ch);
    }
    return NULL;
}

static void make_channels(chan_client_t *cl, long n)
{
    pthread_t t[OPENERS];
    struct opener o[OPENERS];
    for (int i = 0; i < OPENERS; i++) {
        o[i] = (struct opener){ cl, n * i / OPENERS, n * (i + 1) / OPENERS };
        pthread_create(&t[i], NULL, open_range, &o[i]);
    }
    for (int i = 0; i < OPENERS; i++)
        pthread_join(t[i], NULL);
}

/* ---- pings, and a lister ---- */

static atomic_bool stop;

struct pinger {
    uint64_t *rtt;
    size_t n, cap;
};

static void *ping_loop(void *arg)
{
    struct pinger *p = arg;
    chan_client_t *cl = dial();
    while (!atomic_load(&stop) && p->n < p->cap) {
        uint64_t t0 = now_us();
        if (chan_ping(cl, chan_now() + 10000) < 0)
            die("ping");
        uint64_t t1 = now_us();
        p->rtt[p->n++] = t1 - t0;
        if (t1 - t0 < PING_EVERY_US) {
            struct timespec ts = { 0, (long)(PING_EVERY_US - (t1 - t0)) * 1000 };
            nanosleep(&ts, NULL);
        }
    }
    chan_disconnect(cl);
    return NULL;
}

struct lister {
    long listings, last_count;
    uint64_t total_us;
};

static void *list_loop(void *arg)
{
    struct lister *l = arg;
    chan_client_t *cl = dial();
    while (!atomic_load(&stop)) {
        chan_stat_t *v;
        uint64_t t0 = now_us();
        ssize_t n = chan_list(cl, &v, chan_now() + 600000);
        if (n < 0)
            die("list");
        l->total_us += now_us() - t0;
        free(v);
        l->listings++;
        l->last_count = (long)n;
    }
    chan_disconnect(cl);
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double pct(const uint64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

/* Ping for secs seconds, listing meanwhile if list; one table row. */
static void ping_phase(const char *label, int secs, bool list)
{
    struct pinger p = { NULL, 0, (size_t)secs * (1000000 / PING_EVERY_US) + 16 };
    p.rtt = calloc(p.cap, sizeof *p.rtt);
    struct lister l = { 0, 0, 0 };
    pthread_t pt, lt;
    atomic_store(&stop, false);
    pthread_create(&pt, NULL, ping_loop, &p);
    if (list)
        pthread_create(&lt, NULL, list_loop, &l);
    struct timespec ts = { secs, 0 };
    nanosleep(&ts, NULL);
    atomic_store(&stop, true);
    pthread_join(pt, NULL);
    if (list)
        pthread_join(lt, NULL);
    qsort(p.rtt, p.n, sizeof *p.rtt, by_value);
    printf("| ping, %s | %zu | %.3f | %.3f | %.3f | %.3f |", label, p.n, pct(p.rtt, p.n, 0.5),
           pct(p.rtt, p.n, 0.99), pct(p.rtt, p.n, 0.999), pct(p.rtt, p.n, 1.0));
    if (list)
        printf(" %ld listings of %ld channels, %.2f s each |\n", l.listings, l.last_count,
               l.listings ? (double)l.total_us / 1e6 / (double)l.listings : 0.0);
    else
        printf(" |\n");
    free(p.rtt);
}

/* ---- heavy requests, measured by chand's loop-stall histogram ---- */

static chan_server_stat_t stat_now(chan_client_t *cl)
{
    chan_server_stat_t s;
    if (chan_server_stat(cl, &s, chan_now() + 10000) < 0)
        die("stat");
    return s;
}

/* The bound of the highest bucket that grew between a and b. */
static void worst_between(const chan_server_stat_t *a, const chan_server_stat_t *b, char *out,
                          size_t size)
{
    snprintf(out, size, "-");
    for (size_t i = b->loop_buckets; i-- > 0;) {
        if (b->loop_counts[i] == a->loop_counts[i])
            continue;
        if (b->loop_bounds_us[i] == UINT64_MAX)
            snprintf(out, size, "over %.0f ms", (double)b->loop_bounds_us[i - 1] / 1000.0);
        else if (i == 0)
            snprintf(out, size, "under %.2f ms", (double)b->loop_bounds_us[0] / 1000.0);
        else
            snprintf(out, size, "%.2f to %.2f ms", (double)b->loop_bounds_us[i - 1] / 1000.0,
                     (double)b->loop_bounds_us[i] / 1000.0);
        return;
    }
}

static void probe_row(const char *what, const chan_server_stat_t *a, const chan_server_stat_t *b,
                      uint64_t rtt_us)
{
    char worst[64];
    worst_between(a, b, worst, sizeof worst);
    if (rtt_us)
        printf("| %s | %s | %.3f ms |\n", what, worst, (double)rtt_us / 1000.0);
    else
        printf("| %s | %s | - |\n", what, worst);
}

static void probe_delete_full(chan_client_t *cl, long values)
{
    chan_server_stat_t f0 = stat_now(cl);
    chan_t *ch = chan_open(cl, "big", values, 0, chan_now() + 10000);
    if (!ch)
        die("open big");
    enum { BATCH = 4096 };
    static chan_val_t v[BATCH];
    static long seq[BATCH];
    for (long sent = 0; sent < values;) {
        size_t n = values - sent < BATCH ? (size_t)(values - sent) : BATCH;
        for (size_t i = 0; i < n; i++) {
            seq[i] = sent + (long)i;
            v[i] = (chan_val_t){ &seq[i], sizeof seq[i], 0 };
        }
        if (chan_send_many(ch, v, n, chan_now() + 60000) != (ssize_t)n)
            die("send big");
        sent += (long)n;
    }
    chan_release(ch);
    chan_server_stat_t a = stat_now(cl);
    char fill[96];
    snprintf(fill, sizeof fill, "fill a channel with %ld values, 4096 a request", values);
    probe_row(fill, &f0, &a, 0);
    uint64_t t0 = now_us();
    if (chan_delete(cl, "big", chan_now() + 60000) < 0)
        die("delete big");
    uint64_t rtt = now_us() - t0;
    chan_server_stat_t b;
    do   /* until its values are freed too (chand does it in slices) */
        b = stat_now(cl);
    while (b.value_bytes > 0);
    char what[96];
    snprintf(what, sizeof what, "delete a channel holding %ld values, and free them", values);
    probe_row(what, &a, &b, rtt);
}

struct waiter {
    chan_t *ch;
    chan_wg_t *wg;
};

static void wait_recv(void *arg)
{
    struct waiter *w = arg;
    char b[8];
    chan_recv(w->ch, b, sizeof b, -1);   /* ends with EPIPE: closed */
    chan_wg_done(w->wg);
}

static void probe_close_waited(chan_client_t *cl, int waiters)
{
    chan_t *ch = chan_open(cl, "waited", 0, 0, chan_now() + 10000);
    if (!ch)
        die("open waited");
    struct waiter w = { ch, chan_wg_make() };
    chan_wg_add(w.wg, waiters);
    for (int i = 0; i < waiters; i++)
        if (chan_go(wait_recv, &w) < 0)
            die("go");
    chan_stat_t st;
    do {
        if (chan_stat(cl, "waited", &st, chan_now() + 10000) < 0)
            die("stat waited");
    } while (st.receivers < (uint64_t)waiters);
    chan_server_stat_t a = stat_now(cl);
    uint64_t t0 = now_us();
    if (chan_close(ch) < 0)
        die("close waited");
    uint64_t rtt = now_us() - t0;
    chan_wg_wait(w.wg, -1);
    chan_server_stat_t b = stat_now(cl);
    chan_wg_free(w.wg);
    chan_release(ch);
    char what[96];
    snprintf(what, sizeof what, "close a channel %d receivers wait on", waiters);
    probe_row(what, &a, &b, rtt);
}

static void probe_wide_select(chan_client_t *cl, int ncases)
{
    chan_t **chs = calloc((size_t)ncases, sizeof *chs);
    chan_case_t *cs = calloc((size_t)ncases, sizeof *cs);
    char name[32], b[8];
    for (int i = 0; i < ncases; i++) {
        snprintf(name, sizeof name, "wide.%d", i);
        if (!(chs[i] = chan_open(cl, name, 1, 0, chan_now() + 10000)))
            die("open wide");
        cs[i] = (chan_case_t)CHAN_CASE_RECV(chs[i], b, sizeof b);
    }
    chan_server_stat_t a = stat_now(cl);
    uint64_t t0 = now_us();
    int k = chan_select(cs, (size_t)ncases, 0);   /* nothing ready: default */
    uint64_t rtt = now_us() - t0;
    if (k >= 0 || errno != ETIMEDOUT)
        die("wide select");
    chan_server_stat_t s = stat_now(cl);
    char what[96];
    snprintf(what, sizeof what, "select over %d channels, none ready", ncases);
    probe_row(what, &a, &s, rtt);
    for (int i = 0; i < ncases; i++)
        chan_release(chs[i]);
    free(chs);
    free(cs);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_stall ADDR [CHANNELS [SECONDS]]\n");
        return 2;
    }
    addr = argv[1];
    long channels = argc > 2 ? atol(argv[2]) : 1000000;
    int secs = argc > 3 ? atoi(argv[3]) : 10;
    chan_client_t *cl = dial();
    uint64_t t0 = now_us();
    make_channels(cl, channels);
    chan_server_stat_t made = stat_now(cl);
    printf("Made %ld channels in %.1f s (the longest loop callback so far: %.2f ms).\n\n",
           channels, (double)(now_us() - t0) / 1e6, (double)made.loop_max_us / 1000.0);
    printf("| client | pings | p50 ms | p99 ms | p99.9 ms | max ms | meanwhile |\n");
    printf("|---|---|---|---|---|---|---|\n");
    ping_phase("alone", secs / 3 > 0 ? secs / 3 : 1, false);
    ping_phase("while another client lists every channel", secs, true);
    printf("\n| heavy request | longest loop callback it caused | its round trip |\n");
    printf("|---|---|---|\n");
    probe_wide_select(cl, 1024);
    probe_close_waited(cl, 1000);
    probe_delete_full(cl, 1000000);
    chan_server_stat_t end = stat_now(cl);
    printf("\nLongest loop callback of the whole run: %.2f ms.\n", (double)end.loop_max_us / 1000.0);
    chan_disconnect(cl);
    return 0;
}

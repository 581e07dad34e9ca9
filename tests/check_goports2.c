/*
 * check_goports2.c - more of Go's own channel tests rewritten in C on
 * libchan: from the runtime's chan_test.go TestChan, TestNonblockRecvRace,
 * TestNonblockSelectRace2, TestSelectStress, TestSelectDuplicateChannel,
 * TestMultiConsumer and TestChanSendBarrier, races of close (the race
 * detector's close tests, as behaviour); from golang/go test/chan/ select,
 * select2, select4, select5 (its generated permutations, enumerated here
 * by a loop), select7, sendstmt, zerosize and goroutines.  Where Go panics
 * (send on or close of a closed channel) libchan fails with EPIPE, as
 * chan.h says; a receive from a closed and drained channel is -1 with
 * EPIPE where Go gives the zero value and ok == false.
 *
 * Channels come from rt_make(): make check runs this binary with local
 * channels, with every channel on one chand, and split over two daemons
 * and local channels (RT_CHANNELS, rt_test.h).  Loops are shorter with
 * remote channels (rt_count: a round trip per operation); the checks stay.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_test.h"
#include "test_size.h"

/* Deadline of an operation that must not block for long: a deadlock check,
 * not a speed check. */
static int64_t soon(void)
{
    return chan_now() + test_wait_ms(10000);
}

/* ---- TestChan: Go's rules, capacity by capacity -------------------------- */

struct peer {
    chan_t *c;
    long v;             /* send: the value; recv: what came */
    ssize_t r;          /* the call's result */
    int err;            /* its errno when it failed */
    bool by_select;     /* receive through a one-case select */
    atomic_int done;
};

static void peer_recv(void *p)
{
    struct peer *x = p;
    x->v = -1;
    if (x->by_select) {
        chan_case_t c = CHAN_CASE_RECV(x->c, &x->v, sizeof x->v);
        int k = chan_select(&c, 1, -1);
        x->r = k < 0 ? -1 : c.err ? -1 : (ssize_t)c.n;
        x->err = k < 0 ? errno : c.err;
    } else {
        x->r = chan_recv(x->c, &x->v, sizeof x->v, -1);
        x->err = x->r < 0 ? errno : 0;
    }
    atomic_store(&x->done, 1);
}

static void peer_send(void *p)
{
    struct peer *x = p;
    x->r = chan_send(x->c, &x->v, sizeof x->v, -1);
    x->err = x->r < 0 ? errno : 0;
    atomic_store(&x->done, 1);
}

static void expect_fail(ssize_t r, int err, const char *what)
{
    int e = errno;
    ck_assert_msg(r == -1 && e == err, "%s: got %zd (%s), want -1 (%s)", what, r, strerror(e),
                  strerror(err));
}

/* receive from an empty channel blocks, a non-blocking one does not */
static void tc_recv_blocks(int mode, size_t cap)
{
    chan_t *c = rt_make(cap);
    struct peer a = { .c = c }, b = { .c = c, .by_select = true };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, peer_recv, &a);
    rt_spawn(&g, mode, peer_recv, &b);
    rt_wait_receivers(c, 2);
    ck_assert_msg(!atomic_load(&a.done) && !atomic_load(&b.done), "chan[%zu]: receive from empty chan",
                  cap);
    long v;
    expect_fail(chan_recv(c, &v, sizeof v, 0), ETIMEDOUT, "non-blocking recv of empty chan");
    chan_case_t cs = CHAN_CASE_RECV(c, &v, sizeof v);
    expect_fail(chan_select(&cs, 1, 0), ETIMEDOUT, "select recv with default, empty chan");
    long zero = 0;
    ck_assert_int_eq(chan_send(c, &zero, sizeof zero, soon()), 0);
    ck_assert_int_eq(chan_send(c, &zero, sizeof zero, soon()), 0);
    rt_join(&g);
    ck_assert_int_eq(a.r, sizeof(long));
    ck_assert_int_eq(a.v, 0);
    ck_assert_int_eq(b.r, sizeof(long));
    ck_assert_int_eq(b.v, 0);
    chan_release(c);
}

/* send to a full channel blocks, a non-blocking one does not; the blocked
 * sender's value queues behind the buffered ones */
static void tc_send_blocks(int mode, size_t cap)
{
    chan_t *c = rt_make(cap);
    for (size_t i = 0; i < cap; i++)
        rt_send_long(c, (long)i);
    struct peer s = { .c = c, .v = 1000 };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, peer_send, &s);
    rt_wait_senders(c, 1);
    ck_assert_msg(!atomic_load(&s.done), "chan[%zu]: send to full chan", cap);
    long v = 7;
    expect_fail(chan_send(c, &v, sizeof v, 0), ETIMEDOUT, "non-blocking send to full chan");
    chan_case_t cs = CHAN_CASE_SEND(c, &v, sizeof v);
    expect_fail(chan_select(&cs, 1, 0), ETIMEDOUT, "select send with default, full chan");
    ck_assert_int_eq(chan_len(c), (ssize_t)cap);
    ck_assert_int_eq(rt_recv_long(c), cap ? 0 : 1000);
    rt_join(&g);
    ck_assert_int_eq(s.r, 0);
    for (size_t i = 1; i < cap; i++)
        ck_assert_int_eq(rt_recv_long(c), (long)i);
    if (cap)
        ck_assert_int_eq(rt_recv_long(c), 1000);
    ck_assert_int_eq(chan_len(c), 0);
    chan_release(c);
}

/* a closed channel gives its queued values, then fails at once, forever;
 * sending to it and closing it again fail (Go panics) */
static void tc_closed(size_t cap)
{
    chan_t *c = rt_make(cap);
    for (size_t i = 0; i < cap; i++)
        rt_send_long(c, (long)i);
    ck_assert_int_eq(chan_close(c), 0);
    ck_assert_int_eq(chan_len(c), (ssize_t)cap);
    ck_assert_int_eq(chan_cap(c), (ssize_t)cap);
    for (size_t i = 0; i < cap; i++) {
        ck_assert_int_eq(rt_recv_long(c), (long)i);
        ck_assert_int_eq(chan_len(c), (ssize_t)(cap - i - 1));
    }
    long v = 5;
    expect_fail(chan_recv(c, &v, sizeof v, -1), EPIPE, "recv of closed chan");
    expect_fail(chan_recv(c, &v, sizeof v, -1), EPIPE, "second recv of closed chan");
    expect_fail(chan_recv(c, &v, sizeof v, 0), EPIPE, "non-blocking recv of closed chan");
    void *val = &v;
    expect_fail(chan_recv_alloc(c, &val, 0), EPIPE, "recv_alloc of closed chan");
    ck_assert_ptr_null(val);
    ck_assert_int_eq(v, 5);   /* nothing written */
    chan_case_t r = CHAN_CASE_RECV(c, &v, sizeof v);
    ck_assert_int_eq(chan_select(&r, 1, 0), 0);
    ck_assert_int_eq(r.err, EPIPE);
    chan_t *idle = rt_make(0);   /* split: elsewhere than c */
    chan_case_t two[2] = { CHAN_CASE_RECV(idle, &v, sizeof v), CHAN_CASE_RECV(c, &v, sizeof v) };
    ck_assert_int_eq(chan_select(two, 2, 0), 1);   /* closed is ready: never default */
    ck_assert_int_eq(two[1].err, EPIPE);
    chan_release(idle);
    expect_fail(chan_send(c, &v, sizeof v, -1), EPIPE, "send to closed chan");
    expect_fail(chan_send(c, &v, sizeof v, 0), EPIPE, "non-blocking send to closed chan");
    chan_case_t s = CHAN_CASE_SEND(c, &v, sizeof v);
    ck_assert_int_eq(chan_select(&s, 1, 0), 0);
    ck_assert_int_eq(s.err, EPIPE);
    expect_fail(chan_close(c), EPIPE, "close of closed chan");
    ck_assert_int_eq(chan_len(c), 0);
    chan_release(c);
}

/* close wakes a blocked receiver (EPIPE) and a blocked sender (EPIPE, its
 * value dropped, the buffered ones kept) */
static void tc_close_wakes(int mode, size_t cap)
{
    chan_t *c = rt_make(cap);
    struct peer r = { .c = c };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, peer_recv, &r);
    rt_wait_receivers(c, 1);
    ck_assert_int_eq(chan_close(c), 0);
    rt_join(&g);
    ck_assert_int_eq(r.r, -1);
    ck_assert_int_eq(r.err, EPIPE);
    chan_release(c);

    c = rt_make(cap);
    for (size_t i = 0; i < cap; i++)
        rt_send_long(c, (long)i);
    struct peer s = { .c = c, .v = 1000 };
    rt_group_init(&g);
    rt_spawn(&g, mode, peer_send, &s);
    rt_wait_senders(c, 1);
    ck_assert_int_eq(chan_close(c), 0);
    rt_join(&g);
    ck_assert_int_eq(s.r, -1);
    ck_assert_int_eq(s.err, EPIPE);
    for (size_t i = 0; i < cap; i++)
        ck_assert_int_eq(rt_recv_long(c), (long)i);
    long v;
    expect_fail(chan_recv(c, &v, sizeof v, 0), EPIPE, "recv after the dropped send");
    chan_release(c);
}

struct seq_sender {
    chan_t *c;
    long n;
};

static void send_seq(void *p)
{
    struct seq_sender *s = p;
    for (long i = 0; i < s->n; i++)
        rt_send_long(s->c, i);
}

/* P senders of 0..n-1, as values of `words` longs all equal (one word
 * lives inside a channel's slot, five take the heap copy) */
struct counted {
    chan_t *c;
    long n;
    int words;
    atomic_int *seen;
};

enum { MAX_WORDS = 5 };

static void send_counted(void *p)
{
    struct counted *x = p;
    for (long i = 0; i < x->n; i++) {
        long w[MAX_WORDS];
        for (int k = 0; k < x->words; k++)
            w[k] = i;
        ck_assert_int_eq(chan_send(x->c, w, x->words * sizeof(long), -1), 0);
    }
}

static void recv_counted(void *p)
{
    struct counted *x = p;
    for (long i = 0; i < x->n; i++) {
        long w[MAX_WORDS];
        ck_assert_int_eq(chan_recv(x->c, w, sizeof w, -1), (ssize_t)(x->words * sizeof(long)));
        ck_assert(w[0] >= 0 && w[0] < x->n);
        for (int k = 1; k < x->words; k++)
            ck_assert_int_eq(w[k], w[0]);
        atomic_fetch_add(&x->seen[w[0]], 1);
    }
}

/* values arrive uncorrupted and in order; with P senders and P receivers,
 * each value exactly P times */
static void tc_fifo(int mode, size_t cap)
{
    chan_t *c = rt_make(cap);
    struct seq_sender one = { c, rt_count(100, 100) };
    for (int round = 0; round < 2; round++) {
        rt_group_t g;
        rt_group_init(&g);
        rt_spawn(&g, mode, send_seq, &one);
        for (long i = 0; i < one.n; i++) {
            if (round == 0) {
                ck_assert_int_eq(rt_recv_long(c), i);
            } else {   /* Go's v, ok := <-c; here the allocating receive */
                void *val = NULL;
                ck_assert_int_eq(chan_recv_alloc(c, &val, -1), sizeof(long));
                long v;
                memcpy(&v, val, sizeof v);
                free(val);
                ck_assert_int_eq(v, i);
            }
        }
        rt_join(&g);
    }

    enum { P = 4 };
    const long L = rt_count(300, 100);
    atomic_int *seen = calloc((size_t)L, sizeof *seen);
    struct counted r = { c, L, cap % 2 ? MAX_WORDS : 1, seen };
    rt_group_t g;
    rt_group_init(&g);
    for (int p = 0; p < P; p++) {
        rt_spawn(&g, mode, send_counted, &r);
        rt_spawn(&g, mode, recv_counted, &r);
    }
    rt_join(&g);
    for (long i = 0; i < L; i++)
        ck_assert_msg(seen[i] == P, "chan[%zu]: value %ld received %d times, want %d", cap, i,
                      (int)seen[i], P);
    free(seen);
    chan_release(c);
}

static void tc_len_cap(size_t cap)
{
    chan_t *c = rt_make(cap);
    ck_assert_int_eq(chan_len(c), 0);
    ck_assert_int_eq(chan_cap(c), (ssize_t)cap);
    for (size_t i = 0; i < cap; i++)
        rt_send_long(c, (long)i);
    ck_assert_int_eq(chan_len(c), (ssize_t)cap);
    ck_assert_int_eq(chan_cap(c), (ssize_t)cap);
    chan_release(c);
}

RT_TEST(go_chan)
{
    const size_t caps = (size_t)rt_count(20, 8);
    for (size_t cap = 0; cap < caps; cap++) {
        tc_recv_blocks(mode, cap);
        tc_send_blocks(mode, cap);
        tc_closed(cap);
        tc_close_wakes(mode, cap);
        tc_fifo(mode, cap);
        tc_len_cap(cap);
    }
}

/* ---- TestNonblockRecvRace: a value and then close: always ready ------------ */

struct nbrr {
    chan_t *c;
    bool by_select;
    atomic_long defaults;
};

static void nbrr_poll(void *p)
{
    struct nbrr *x = p;
    long v;
    if (x->by_select) {
        chan_case_t cs = CHAN_CASE_RECV(x->c, &v, sizeof v);
        int k = chan_select(&cs, 1, 0);
        if (k < 0) {
            ck_assert_msg(errno == ETIMEDOUT, "select: %s", strerror(errno));
            atomic_fetch_add(&x->defaults, 1);
        } else {
            ck_assert(cs.err == 0 || cs.err == EPIPE);
        }
    } else {
        ssize_t r = chan_recv(x->c, &v, sizeof v, 0);
        if (r < 0) {
            ck_assert_msg(errno == ETIMEDOUT || errno == EPIPE, "recv: %s", strerror(errno));
            if (errno == ETIMEDOUT)
                atomic_fetch_add(&x->defaults, 1);
        }
    }
}

RT_TEST(nonblock_recv_race)
{
    const long n = rt_count(test_size("nonblock_recv_race rounds, local", 2000, 300),
                            test_size("nonblock_recv_race rounds, remote", 400, 100));
    struct nbrr x = { .defaults = 0 };
    for (long i = 0; i < n; i++) {
        x.c = rt_make(1);
        x.by_select = i % 2;
        rt_send_long(x.c, 1);
        rt_group_t g;
        rt_group_init(&g);
        rt_spawn(&g, mode, nbrr_poll, &x);
        ck_assert_int_eq(chan_close(x.c), 0);
        long v;
        ssize_t r = chan_recv(x.c, &v, sizeof v, -1);
        ck_assert(r == sizeof v || (r == -1 && errno == EPIPE));
        rt_join(&g);
        chan_release(x.c);
    }
    ck_assert_msg(x.defaults == 0, "%ld of %ld non-blocking receives found a ready chan not ready",
                  (long)x.defaults, n);
}

/* ---- TestNonblockSelectRace2: c1 holds a value, c2 is closed meanwhile -- */

struct nbsr {
    chan_t *c1, *c2;
    int k;
};

static void nbsr_poll(void *p)
{
    struct nbsr *x = p;
    long v;
    chan_case_t cs[2] = { CHAN_CASE_RECV(x->c1, &v, sizeof v), CHAN_CASE_RECV(x->c2, &v, sizeof v) };
    x->k = chan_select(cs, 2, 0);
    if (x->k < 0)
        ck_assert_msg(errno == ETIMEDOUT, "select: %s", strerror(errno));
}

RT_TEST(nonblock_select_race2)
{
    const long n = rt_count(test_size("nonblock_select_race2 rounds, local", 2000, 300),
                            test_size("nonblock_select_race2 rounds, remote", 400, 100));
    long defaults = 0;
    for (long i = 0; i < n; i++) {
        struct nbsr x = { rt_make(1), rt_make(0), 0 };
        rt_send_long(x.c1, 1);
        rt_group_t g;
        rt_group_init(&g);
        rt_spawn(&g, mode, nbsr_poll, &x);
        ck_assert_int_eq(chan_close(x.c2), 0);
        long v;
        chan_recv(x.c1, &v, sizeof v, 0);
        rt_join(&g);
        defaults += x.k < 0;
        chan_release(x.c1);
        chan_release(x.c2);
    }
    ck_assert_msg(defaults == 0, "%ld of %ld selects took default while a case was ready", defaults, n);
}

/* ---- TestSelectStress: plain and select senders and receivers at once ----- */

struct stress {
    chan_t *c[4];
    long n;
    atomic_long bad;     /* values that came through the wrong channel */
};

struct stress_one {
    struct stress *s;
    int k;
};

static void stress_send(void *p)
{
    struct stress_one *o = p;
    long v = o->k + 1;
    for (long i = 0; i < o->s->n; i++)
        ck_assert_int_eq(chan_send(o->s->c[o->k], &v, sizeof v, -1), 0);
}

static void stress_recv(void *p)
{
    struct stress_one *o = p;
    for (long i = 0; i < o->s->n; i++)
        if (rt_recv_long(o->s->c[o->k]) != o->k + 1)
            atomic_fetch_add(&o->s->bad, 1);
}

static void stress_select_send(void *p)
{
    struct stress *s = p;
    static const int order[4] = { 3, 2, 0, 1 };
    chan_t *c[4];
    long n[4] = { 0 }, v[4] = { 1, 2, 3, 4 };
    memcpy(c, s->c, sizeof c);
    for (long i = 0; i < 4 * s->n; i++) {
        chan_case_t cs[4];
        for (int j = 0; j < 4; j++)
            cs[j] = (chan_case_t)CHAN_CASE_SEND(c[order[j]], &v[order[j]], sizeof(long));
        int j = chan_select(cs, 4, -1);
        ck_assert_int_ge(j, 0);
        ck_assert_int_eq(cs[j].err, 0);
        int k = order[j];
        if (++n[k] == s->n)
            c[k] = NULL;
    }
}

static void stress_select_recv(void *p)
{
    struct stress *s = p;
    chan_t *c[4];
    long n[4] = { 0 }, v[4];
    memcpy(c, s->c, sizeof c);
    for (long i = 0; i < 4 * s->n; i++) {
        chan_case_t cs[4];
        for (int k = 0; k < 4; k++)
            cs[k] = (chan_case_t)CHAN_CASE_RECV(c[k], &v[k], sizeof(long));
        int k = chan_select(cs, 4, -1);
        ck_assert_int_ge(k, 0);
        ck_assert_int_eq(cs[k].err, 0);
        if (v[k] != k + 1)
            atomic_fetch_add(&s->bad, 1);
        if (++n[k] == s->n)
            c[k] = NULL;
    }
}

RT_TEST(select_stress)
{
    struct stress s = { { rt_make(0), rt_make(0), rt_make(2), rt_make(3) },
                        rt_count(test_size("select_stress values, local", 2000, 1000),
                                 test_size("select_stress values, remote", 400, 100)),
                        0 };
    struct stress_one one[4];
    rt_group_t g;
    rt_group_init(&g);
    for (int k = 0; k < 4; k++) {
        one[k] = (struct stress_one){ &s, k };
        rt_spawn(&g, mode, stress_send, &one[k]);
        rt_spawn(&g, mode, stress_recv, &one[k]);
    }
    rt_spawn(&g, mode, stress_select_send, &s);
    rt_spawn(&g, mode, stress_select_recv, &s);
    rt_join(&g);
    ck_assert_int_eq(s.bad, 0);
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(chan_len(s.c[k]), 0);
        chan_release(s.c[k]);
    }
}

/* ---- TestSelectDuplicateChannel: one select queued twice on a channel ----- */

struct dup {
    chan_t *c, *d, *e;
    long got_b;
};

static void dup_a(void *p)
{
    struct dup *x = p;
    long v;
    chan_case_t cs[3] = { CHAN_CASE_RECV(x->c, &v, sizeof v), CHAN_CASE_RECV(x->c, &v, sizeof v),
                          CHAN_CASE_RECV(x->d, &v, sizeof v) };
    ck_assert_int_eq(chan_select(cs, 3, -1), 2);
    ck_assert_int_eq(v, 7);
    rt_send_long(x->e, 9);
}

static void dup_b(void *p)
{
    struct dup *x = p;
    x->got_b = rt_recv_long(x->c);
}

RT_TEST(select_duplicate_channel)
{
    struct dup x = { rt_make(0), rt_make(0), rt_make(0), 0 };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, dup_a, &x);
    rt_wait_receivers(x.d, 1);           /* A queued (Go sleeps instead) */
    size_t on_c = rt_receivers(x.c);
    ck_assert(on_c >= 1);
    rt_spawn(&g, mode, dup_b, &x);
    rt_wait_receivers(x.c, on_c + 1);    /* B queued behind A */
    rt_send_long(x.d, 7);                /* A wakes and leaves c's queue */
    ck_assert_int_eq(rt_recv_long(x.e), 9);
    long v = 8;
    ck_assert_int_eq(chan_send(x.c, &v, sizeof v, soon()), 0);   /* to B */
    rt_join(&g);
    ck_assert_int_eq(x.got_b, 8);
    ck_assert_int_eq(rt_receivers(x.c), 0);

    /* a value ready for two cases of one select goes to one of them */
    chan_t *b = rt_make(1);
    for (int i = 0; i < 20; i++) {
        rt_send_long(b, 30 + i);
        long one = -1, two = -1;
        chan_case_t cs[2] = { CHAN_CASE_RECV(b, &one, sizeof one), CHAN_CASE_RECV(b, &two, sizeof two) };
        int k = chan_select(cs, 2, i % 2 ? 0 : -1);
        ck_assert(k == 0 || k == 1);
        ck_assert_int_eq(k == 0 ? one : two, 30 + i);
        ck_assert_int_eq(k == 0 ? two : one, -1);
        ck_assert_int_eq(chan_len(b), 0);
    }
    chan_release(b);
    chan_release(x.c);
    chan_release(x.d);
    chan_release(x.e);
}

/* ---- TestMultiConsumer: a work queue, workers, a results queue ------------- */

static const long pn[] = { 2, 3, 7, 11, 13, 17, 19, 23, 27, 31 };
enum { NPN = sizeof pn / sizeof *pn, NWORK = 23 };

struct mc {
    chan_t *q, *r;
    chan_wg_t *wg;
    long niter, expect;
};

struct mc_worker {
    struct mc *m;
    int w;
};

static void mc_work(void *p)
{
    struct mc_worker *x = p;
    long v;
    ssize_t n;
    while ((n = chan_recv(x->m->q, &v, sizeof v, -1)) == sizeof v) {
        if (pn[x->w % NPN] == v)
            chan_yield();   /* upsets the queue's order a little */
        rt_send_long(x->m->r, v);
    }
    ck_assert_int_eq(n, -1);
    ck_assert_int_eq(errno, EPIPE);
    chan_wg_done(x->m->wg);
}

static void mc_feed(void *p)
{
    struct mc *m = p;
    for (long i = 0; i < m->niter; i++) {
        long v = pn[i % NPN];
        m->expect += v;
        rt_send_long(m->q, v);
    }
    ck_assert_int_eq(chan_close(m->q), 0);   /* no more work */
    ck_assert_int_eq(chan_wg_wait(m->wg, -1), 0);
    ck_assert_int_eq(chan_close(m->r), 0);   /* so no more results */
}

RT_TEST(multi_consumer)
{
    struct mc m = { rt_make(NWORK * 3), rt_make(NWORK * 3), chan_wg_make(),
                    rt_count(test_size("multi_consumer values, local", 27183, 5000),
                             test_size("multi_consumer values, remote", 1500, 300)),
                    0 };
    struct mc_worker w[NWORK];
    chan_wg_add(m.wg, NWORK);
    rt_group_t g;
    rt_group_init(&g);
    for (int i = 0; i < NWORK; i++) {
        w[i] = (struct mc_worker){ &m, i };
        rt_spawn(&g, mode, mc_work, &w[i]);
    }
    rt_spawn(&g, mode, mc_feed, &m);
    long n = 0, s = 0, v;
    while (chan_recv(m.r, &v, sizeof v, -1) == sizeof v) {
        n++;
        s += v;
    }
    ck_assert_int_eq(errno, EPIPE);
    rt_join(&g);
    ck_assert_msg(n == m.niter && s == m.expect, "expected sum %ld (got %ld) from %ld values (saw %ld)",
                  m.expect, s, m.niter, n);
    chan_release(m.q);
    chan_release(m.r);
    chan_wg_free(m.wg);
}

/* ---- TestChanSendBarrier: a request handed over by a context that ends ---- */

/* The request: 16 bytes (kept inside the channel) or 40 (a heap copy). */
struct request {
    uint64_t magic;
    uint64_t seq;
    char pad[24];
};

enum { REQ_MAGIC = 0x6d794572726f72 };

struct barrier_req {
    chan_t *ch, *done;   /* the sender's own references */
    bool by_select;
    size_t len;
    uint64_t seq;
};

static void barrier_send(void *p)
{
    struct barrier_req *b = p;
    struct request rq = { REQ_MAGIC, b->seq, "padding, larger value" };
    if (b->by_select) {
        long d;
        chan_case_t cs[2] = { CHAN_CASE_SEND(b->ch, &rq, b->len), CHAN_CASE_RECV(b->done, &d, sizeof d) };
        ck_assert_int_eq(chan_select(cs, 2, -1), 0);
        ck_assert_int_eq(cs[0].err, 0);
    } else {
        ck_assert_int_eq(chan_send(b->ch, &rq, b->len, -1), 0);
    }
    chan_release(b->ch);     /* right after the handoff, racing the receiver's */
    chan_release(b->done);
    free(b);
}

struct barrier_worker {
    int mode;
    bool by_select;
    long inner;
};

static void barrier_work(void *p)
{
    struct barrier_worker *w = p;
    rt_group_t g;
    rt_group_init(&g);
    for (long j = 0; j < w->inner; j++) {
        chan_t *ch = rt_make(0), *done = rt_make(0);
        struct barrier_req *b = malloc(sizeof *b);
        ck_assert_ptr_nonnull(b);
        size_t len = j % 2 ? sizeof(struct request) : 16;
        *b = (struct barrier_req){ chan_retain(ch), chan_retain(done), w->by_select, len, (uint64_t)j };
        rt_spawn(&g, w->mode, barrier_send, b);
        struct request rq;
        memset(&rq, 0, sizeof rq);
        ck_assert_int_eq(chan_recv(ch, &rq, sizeof rq, -1), (ssize_t)len);
        chan_yield();
        ck_assert_uint_eq(rq.magic, REQ_MAGIC);
        ck_assert_uint_eq(rq.seq, (uint64_t)j);
        if (len > 16)
            ck_assert_str_eq(rq.pad, "padding, larger value");
        chan_release(ch);
        chan_release(done);
    }
    rt_join(&g);
}

RT_TEST(chan_send_barrier)
{
    const int outer = (int)rt_count(10, 4);
    for (int sel = 0; sel < 2; sel++) {
        struct barrier_worker w = { mode, sel, rt_count(200, 25) };
        rt_group_t g;
        rt_group_init(&g);
        for (int i = 0; i < outer; i++)
            rt_spawn(&g, mode, barrier_work, &w);
        rt_join(&g);
    }
}

/* ---- close races: close against close, send and receive -------------------- */

struct closer {
    chan_t *c;
    atomic_int ok, epipe;
};

static void close_once(void *p)
{
    struct closer *x = p;
    if (chan_close(x->c) == 0)
        atomic_fetch_add(&x->ok, 1);
    else if (errno == EPIPE)
        atomic_fetch_add(&x->epipe, 1);
}

/* three contexts close one channel at once: exactly one succeeds */
RT_TEST(close_close_race)
{
    const long n = rt_count(200, 60);
    for (long i = 0; i < n; i++) {
        struct closer x = { .c = rt_make((size_t)(i % 2)) };
        rt_group_t g;
        rt_group_init(&g);
        rt_spawn(&g, mode, close_once, &x);
        rt_spawn(&g, mode, close_once, &x);
        close_once(&x);
        rt_join(&g);
        ck_assert_int_eq(x.ok, 1);
        ck_assert_int_eq(x.epipe, 2);
        chan_release(x.c);
    }
}

/* How a racer sends or receives: blocking; non-blocking (deadline 0); a
 * select with default whose other case is never ready; with a deadline
 * 1 ms away; that select with a deadline 1 ms away (split over places, the
 * select blocks on two of them and gives back what it does not take).  A
 * call that timed out must have taken no effect. */
enum { FLOW_BLOCK, FLOW_NONBLOCK, FLOW_SELECT, FLOW_SHORT, FLOW_SELECT_SHORT, FLOW_STYLES };

struct flow {
    chan_t *c, *never;
    int style;
    long base;              /* senders: values base, base + 1, ... */
    long count, sum;        /* successful sends or receives */
    long timeouts;
};

static int64_t flow_deadline(int style)
{
    if (style == FLOW_BLOCK)
        return -1;
    return style == FLOW_SHORT || style == FLOW_SELECT_SHORT ? chan_now() + 1 : 0;
}

/* 0: done; 1: timed out; -1: closed */
static int flow_op(struct flow *f, bool send, long *v)
{
    int64_t dl = flow_deadline(f->style);
    int err = 0;
    if (f->style == FLOW_SELECT || f->style == FLOW_SELECT_SHORT) {
        long other = 0;
        chan_case_t cs[2] = { send ? CHAN_CASE_SEND(f->c, v, sizeof *v) : CHAN_CASE_RECV(f->c, v, sizeof *v),
                              CHAN_CASE_RECV(f->never, &other, sizeof other) };
        int k = chan_select(cs, 2, dl);
        if (k < 0)
            err = errno;
        else {
            ck_assert_int_eq(k, 0);
            err = cs[0].err;
            if (!err && !send)
                ck_assert_int_eq(cs[0].n, sizeof *v);
        }
    } else if (send) {
        if (chan_send(f->c, v, sizeof *v, dl) < 0)
            err = errno;
    } else {
        ssize_t r = chan_recv(f->c, v, sizeof *v, dl);
        if (r < 0)
            err = errno;
        else
            ck_assert_int_eq(r, sizeof *v);
    }
    if (!err)
        return 0;
    if (err == ETIMEDOUT) {
        ck_assert_int_ne(f->style, FLOW_BLOCK);
        f->timeouts++;
        if (dl == 0)
            chan_yield();   /* a polling loop lets the others run */
        return 1;
    }
    ck_assert_msg(err == EPIPE, "%s: %s", send ? "send" : "recv", strerror(err));
    return -1;
}

static void flow_send(void *p)
{
    struct flow *f = p;
    for (long v = f->base;; v++) {   /* a value that timed out is never sent again */
        long w = v;
        int r = flow_op(f, true, &w);
        if (r < 0)
            return;
        if (r == 0) {
            f->count++;
            f->sum += v;
        }
    }
}

static void flow_recv(void *p)
{
    struct flow *f = p;
    for (;;) {
        long v = -1;
        int r = flow_op(f, false, &v);
        if (r < 0)
            return;
        if (r == 0) {
            f->count++;
            f->sum += v;
        }
    }
}

/* senders and receivers, blocking and not, race a close: every send that
 * returned 0 is received exactly once (none lost with the close or a
 * timeout, none invented by a call that reported a timeout), and everyone
 * ends with EPIPE */
RT_TEST(close_send_recv_race)
{
    const int rounds = (int)rt_count(40, 30);
    long timeouts = 0;
    for (int round = 0; round < rounds; round++) {
        static const size_t caps[3] = { 0, 1, 5 };
        chan_t *c = rt_make(caps[round % 3]), *never = rt_make(0);
        struct flow s[2], r[2];
        rt_group_t g;
        rt_group_init(&g);
        for (int i = 0; i < 2; i++) {
            s[i] = (struct flow){ .c = c, .never = never, .style = (round + i) % FLOW_STYLES,
                                  .base = (i + 1) * 1000000L };
            r[i] = (struct flow){ .c = c, .never = never, .style = (round / FLOW_STYLES + i) % FLOW_STYLES };
            rt_spawn(&g, (mode + i) % 2, flow_send, &s[i]);
            rt_spawn(&g, (mode + i) % 2, flow_recv, &r[i]);
        }
        chan_sleep(chan_now() + 2 + round % 3);
        ck_assert_int_eq(chan_close(c), 0);
        rt_join(&g);
        long sent = s[0].count + s[1].count, sum_s = s[0].sum + s[1].sum;
        long got = r[0].count + r[1].count, sum_r = r[0].sum + r[1].sum;
        ck_assert_msg(got == sent && sum_r == sum_s,
                      "round %d (cap %zu, senders %d/%d, receivers %d/%d): sent %ld (sum %ld), "
                      "received %ld (sum %ld)",
                      round, caps[round % 3], s[0].style, s[1].style, r[0].style, r[1].style, sent,
                      sum_s, got, sum_r);
        for (int i = 0; i < 2; i++)
            timeouts += s[i].timeouts + r[i].timeouts;
        long v;
        expect_fail(chan_recv(c, &v, sizeof v, 0), EPIPE, "recv after the race");
        ck_assert_int_eq(rt_receivers(never), 0);
        chan_release(c);
        chan_release(never);
    }
    ck_assert_int_gt(timeouts, 0);   /* the timeout paths ran */
}

/* ---- blocked senders and receivers are served first come, first served ---- */
/* Not one of Go's tests, but Go's queues (and chan.h's table) promise it:
 * waiters queued one after the other are served in that order. */

struct waiter {
    chan_t *c;
    long v;         /* send: the value; recv: what came */
    chan_t *alt;    /* not NULL: wait in a select with a case on alt too */
};

static void waiter_send(void *p)
{
    struct waiter *w = p;
    if (!w->alt) {
        rt_send_long(w->c, w->v);
        return;
    }
    chan_case_t cs[2] = { CHAN_CASE_SEND(w->alt, &w->v, sizeof w->v), CHAN_CASE_SEND(w->c, &w->v, sizeof w->v) };
    ck_assert_int_eq(chan_select(cs, 2, -1), 1);
    ck_assert_int_eq(cs[1].err, 0);
}

static void waiter_recv(void *p)
{
    struct waiter *w = p;
    if (!w->alt) {
        w->v = rt_recv_long(w->c);
        return;
    }
    long never = -1;
    chan_case_t cs[2] = { CHAN_CASE_RECV(w->alt, &never, sizeof never), CHAN_CASE_RECV(w->c, &w->v, sizeof w->v) };
    ck_assert_int_eq(chan_select(cs, 2, -1), 1);
    ck_assert_int_eq(cs[1].err, 0);
    ck_assert_int_eq(never, -1);
}

RT_TEST(waiters_fifo)
{
    enum { W = 5 };
    for (size_t cap = 0; cap < 3; cap += 2) {
        /* senders queue behind a full buffer */
        chan_t *c = rt_make(cap);
        for (size_t i = 0; i < cap; i++)
            rt_send_long(c, -1 - (long)i);
        struct waiter w[W];
        rt_group_t g;
        rt_group_init(&g);
        for (int i = 0; i < W; i++) {
            w[i] = (struct waiter){ c, 100 + i, NULL };
            rt_spawn(&g, mode, waiter_send, &w[i]);
            rt_wait_senders(c, (size_t)i + 1);
        }
        for (size_t i = 0; i < cap; i++)
            ck_assert_int_eq(rt_recv_long(c), -1 - (long)i);
        for (int i = 0; i < W; i++)
            ck_assert_msg(rt_recv_long(c) == 100 + i, "chan[%zu]: senders served out of order", cap);
        rt_join(&g);
        /* receivers queue on an empty channel */
        rt_group_init(&g);
        for (int i = 0; i < W; i++) {
            w[i] = (struct waiter){ c, -1, NULL };
            rt_spawn(&g, mode, waiter_recv, &w[i]);
            rt_wait_receivers(c, (size_t)i + 1);
        }
        for (int i = 0; i < W; i++)
            rt_send_long(c, 200 + i);
        rt_join(&g);
        for (int i = 0; i < W; i++)
            ck_assert_msg(w[i].v == 200 + i, "chan[%zu]: receiver %d got %ld", cap, i, w[i].v);
        chan_release(c);
    }
}

/* ---- a non-blocking operation meets a partner already blocked ------------- */
/* Go's select with default proceeds when the other end waits: on an
 * unbuffered channel a blocked receiver makes a non-blocking send succeed
 * (at the first try, not eventually), and a blocked sender a non-blocking
 * receive, also when the one waiting is a select with a case elsewhere
 * (split: on another daemon or local) that must give that case up. */

RT_TEST(nonblock_meets_waiter)
{
    const long rounds = rt_count(60, 40);
    for (long i = 0; i < rounds; i++) {
        chan_t *c = rt_make(0), *other = rt_make(0), *alt = i % 4 >= 2 ? rt_make(0) : NULL;
        struct waiter w = { c, -1, alt };
        rt_group_t g;
        rt_group_init(&g);
        rt_spawn(&g, mode, waiter_recv, &w);
        rt_wait_receivers(c, 1);
        long v = i, got = -1;
        if (i % 2) {
            ck_assert_msg(chan_send(c, &v, sizeof v, 0) == 0, "non-blocking send: %s", strerror(errno));
        } else {
            chan_case_t cs[2] = { CHAN_CASE_RECV(other, &got, sizeof got), CHAN_CASE_SEND(c, &v, sizeof v) };
            ck_assert_msg(chan_select(cs, 2, 0) == 1,
                          "round %ld: select send with default (c at %d, other at %d; the receiver "
                          "waits in %s): %s",
                          i, rt_place(c), rt_place(other), alt ? "a select" : "a recv",
                          strerror(errno));
        }
        rt_join(&g);
        ck_assert_int_eq(w.v, i);

        w = (struct waiter){ c, 1000 + i, alt };
        rt_group_init(&g);
        rt_spawn(&g, mode, waiter_send, &w);
        rt_wait_senders(c, 1);
        if (i % 2) {
            ck_assert_msg(chan_recv(c, &got, sizeof got, 0) == sizeof got, "non-blocking recv: %s",
                          strerror(errno));
        } else {
            long x = 5;
            chan_case_t cs[2] = { CHAN_CASE_SEND(other, &x, sizeof x), CHAN_CASE_RECV(c, &got, sizeof got) };
            ck_assert_msg(chan_select(cs, 2, 0) == 1,
                          "round %ld: select recv with default (c at %d, other at %d; the sender "
                          "waits in %s, its other case at %d): %s",
                          i, rt_place(c), rt_place(other), alt ? "a select" : "a send",
                          alt ? rt_place(alt) : 9, strerror(errno));
        }
        ck_assert_int_eq(got, 1000 + i);
        rt_join(&g);
        chan_release(c);
        chan_release(other);
        chan_release(alt);
    }
}

/* ---- a closed channel's case is as ready as a value's ---------------------- */
/* Go's select picks uniformly among ready cases, and a closed channel's
 * receive is ready.  Binomial(n, 1/2), bound 6.5 sd, as check_select's. */

RT_TEST(select_closed_vs_value)
{
    (void)mode;
    const long n = rt_count(400, 200);
    chan_t *closed = rt_make(0), *full = rt_make(1);
    ck_assert_int_eq(chan_close(closed), 0);
    long took_closed = 0;
    for (long i = 0; i < n; i++) {
        if (chan_len(full) == 0)
            rt_send_long(full, i);
        long a = -1, b = -1;
        chan_case_t cs[2] = { CHAN_CASE_RECV(closed, &a, sizeof a), CHAN_CASE_RECV(full, &b, sizeof b) };
        int k = chan_select(cs, 2, i % 2 ? 0 : -1);
        ck_assert(k == 0 || k == 1);
        if (k == 0) {
            ck_assert_int_eq(cs[0].err, EPIPE);
            ck_assert_int_eq(a, -1);
            took_closed++;
        } else {
            ck_assert_int_eq(cs[1].err, 0);
        }
    }
    double bound = 6.5 * sqrt((double)n) / 2;
    ck_assert_msg(fabs(took_closed - n / 2.0) <= bound, "closed case chosen %ld of %ld", took_closed, n);
    chan_release(closed);
    chan_release(full);
}

/* ---- timeouts: a timer channel next to a channel that gets a value -------- */
/* Go's select with time.After: whichever comes first wins, and the other
 * is not lost (the value stays in its channel, the timer still fires).
 * The margins are wide (10 ms against 300 ms, stretched under the
 * sanitizers with Check's timeouts): an order check, not a clock check;
 * a loaded machine must not turn the late one into the first. */

struct later {
    chan_t *c;
    int64_t delay;
    long v;
};

static void send_later(void *p)
{
    struct later *l = p;
    chan_sleep(chan_now() + l->delay);
    rt_send_long(l->c, l->v);
}

RT_TEST(select_timeouts)
{
    chan_t *c = rt_make(1);
    for (int first = 0; first < 2; first++) {   /* 0: the timer, 1: the value */
        int64_t late = test_wait_ms(300);
        chan_t *t = chan_after(first ? late : 10);
        ck_assert_ptr_nonnull(t);
        struct later l = { c, first ? 10 : late, 7 + first };
        rt_group_t g;
        rt_group_init(&g);
        rt_spawn(&g, mode, send_later, &l);
        long v = -1;
        int64_t fired = 0;
        chan_case_t cs[2] = { CHAN_CASE_RECV(c, &v, sizeof v), CHAN_CASE_RECV(t, &fired, sizeof fired) };
        int k = chan_select(cs, 2, soon());
        ck_assert_msg(k == first ? 0 : 1, "%s should have come first, select chose %d",
                      first ? "the value" : "the timer", k);
        rt_join(&g);
        if (first) {
            ck_assert_int_eq(v, 8);
            ck_assert_int_eq(chan_recv(t, &fired, sizeof fired, soon()), sizeof fired);
        } else {
            ck_assert_int_eq(cs[1].n, sizeof fired);
            ck_assert_int_eq(v, -1);
            ck_assert_int_eq(rt_recv_long(c), 7);
        }
        ck_assert_int_gt(fired, 0);
        chan_release(t);
    }
    ck_assert_int_eq(rt_receivers(c), 0);
    chan_release(c);
}

/* ---- send and receive cases on one buffered channel ---------------------- */
/* A select never pairs with itself, but on a buffered channel its own send
 * and receive cases are ready by the buffer alone: room makes the send
 * ready, a value the receive, and with both, each is chosen about half of
 * the time (Binomial(n, 1/2), bound 6.5 sd). */

RT_TEST(select_self_buffered)
{
    (void)mode;
    const long n = rt_count(400, 200);
    chan_t *c = rt_make(2);
    long eleven = 11, got = -1;
    chan_case_t cs[2] = { CHAN_CASE_SEND(c, &eleven, sizeof eleven), CHAN_CASE_RECV(c, &got, sizeof got) };
    for (int dl = 0; dl < 2; dl++) {
        ck_assert_int_eq(chan_select(cs, 2, dl ? -1 : 0), 0);   /* empty: only the send */
        ck_assert_int_eq(rt_recv_long(c), 11);
    }
    rt_send_long(c, 11);
    for (int dl = 0; dl < 2; dl++) {
        rt_send_long(c, 11);
        got = -1;
        ck_assert_int_eq(chan_select(cs, 2, dl ? -1 : 0), 1);   /* full: only the receive */
        ck_assert_int_eq(got, 11);
    }
    long sends = 0;
    for (long i = 0; i < n; i++) {   /* one value of two: both ready */
        got = -1;
        int k = chan_select(cs, 2, i % 2 ? 0 : -1);
        ck_assert(k == 0 || k == 1);
        ck_assert_int_eq(cs[k].err, 0);
        if (k == 0) {
            sends++;
            ck_assert_int_eq(rt_recv_long(c), 11);
        } else {
            ck_assert_int_eq(got, 11);
            rt_send_long(c, 11);
        }
        ck_assert_int_eq(chan_len(c), 1);
    }
    double bound = 6.5 * sqrt((double)n) / 2;
    ck_assert_msg(fabs(sends - n / 2.0) <= bound, "send case chosen %ld of %ld", sends, n);
    chan_release(c);
}

/* ---- a buffered channel as a counting semaphore --------------------------- */
/* Go's memory model: the k-th receive from a channel of capacity C happens
 * before the (k+C)-th send completes, so a buffered channel limits how
 * many hold it at once.  A send that returned is a slot taken. */

struct sem {
    chan_t *slots;
    long rounds;
    atomic_int active, most;
};

static void sem_worker(void *p)
{
    struct sem *x = p;
    for (long i = 0; i < x->rounds; i++) {
        rt_send_long(x->slots, i);
        int now = atomic_fetch_add(&x->active, 1) + 1;
        int most = atomic_load(&x->most);
        while (now > most && !atomic_compare_exchange_weak(&x->most, &most, now))
            ;
        chan_yield();
        atomic_fetch_sub(&x->active, 1);
        (void)rt_recv_long(x->slots);
    }
}

RT_TEST(semaphore)
{
    enum { C = 3, WORKERS = 8 };
    struct sem x = { rt_make(C), rt_count(300, 40), 0, 0 };
    rt_group_t g;
    rt_group_init(&g);
    for (int i = 0; i < WORKERS; i++)
        rt_spawn(&g, mode, sem_worker, &x);
    rt_join(&g);
    ck_assert_msg(x.most <= C, "%d held a semaphore of %d at once", (int)x.most, C);
    ck_assert_int_ge(x.most, 1);
    ck_assert_int_eq(chan_len(x.slots), 0);
    chan_release(x.slots);
}

/* ---- close wakes every waiter at once ------------------------------------- */

struct woken {
    chan_t *c;
    int how;            /* 0 recv, 1 select recv, 2 send, 3 select send */
    atomic_int *epipe;
};

static void wait_for_close(void *p)
{
    struct woken *w = p;
    long v = 1;
    int err = 0;
    if (w->how == 0 || w->how == 2) {
        ssize_t r = w->how == 0 ? chan_recv(w->c, &v, sizeof v, -1) : chan_send(w->c, &v, sizeof v, -1);
        ck_assert_int_eq(r, -1);
        err = errno;
    } else {
        chan_case_t cs = w->how == 1 ? CHAN_CASE_RECV(w->c, &v, sizeof v) : CHAN_CASE_SEND(w->c, &v, sizeof v);
        ck_assert_int_eq(chan_select(&cs, 1, -1), 0);
        err = cs.err;
    }
    ck_assert_int_eq(err, EPIPE);
    atomic_fetch_add(w->epipe, 1);
}

RT_TEST(close_wakes_all)
{
    const int n = (int)(mode == MODE_GOROUTINE ? rt_count(400, 200) : rt_count(60, 40));
    for (int sending = 0; sending < 2; sending++) {
        chan_t *c = rt_make(0);
        atomic_int epipe = 0;
        struct woken *w = calloc((size_t)n, sizeof *w);
        rt_group_t g;
        rt_group_init(&g);
        for (int i = 0; i < n; i++) {
            w[i] = (struct woken){ c, 2 * sending + i % 2, &epipe };
            rt_spawn(&g, mode, wait_for_close, &w[i]);
        }
        if (sending)
            rt_wait_senders(c, (size_t)n);
        else
            rt_wait_receivers(c, (size_t)n);
        ck_assert_int_eq(chan_close(c), 0);
        rt_join(&g);
        ck_assert_int_eq(epipe, n);
        free(w);
        chan_release(c);
    }
}

/* ---- select.go: sends through a select with default until none is ready -- */

static int send_until_full(chan_t *a, chan_t *b)
{
    int sent = 0;
    for (unsigned shift = 0;; shift++) {
        unsigned long v = 1UL << shift;
        chan_case_t cs[2] = { CHAN_CASE_SEND(a, &v, sizeof v), CHAN_CASE_SEND(b, &v, sizeof v) };
        int k = chan_select(cs, 2, 0);
        if (k < 0) {
            ck_assert_int_eq(errno, ETIMEDOUT);
            return sent;
        }
        ck_assert_int_eq(cs[k].err, 0);
        sent++;
        if (k == 0)
            a = NULL;
        else
            b = NULL;
    }
}

RT_TEST(select_default_send)
{
    (void)mode;
    chan_t *a = rt_make(1), *b = rt_make(1);
    ck_assert_int_eq(send_until_full(a, b), 2);
    unsigned long av = 0, bv = 0;
    ck_assert_int_eq(chan_recv(a, &av, sizeof av, 0), sizeof av);
    ck_assert_int_eq(chan_recv(b, &bv, sizeof bv, 0), sizeof bv);
    ck_assert_uint_eq(av | bv, 3);
    ck_assert_int_eq(send_until_full(a, NULL), 1);
    ck_assert_int_eq(chan_len(a), 1);
    chan_release(a);
    chan_release(b);
}

/* ---- select2: a long run of selects does not grow memory -------------- */

struct s2 {
    chan_t *c, *dummy;
    long n;
};

static void s2_sender(void *p)
{
    struct s2 *x = p;
    long one = 1;
    for (long i = 0; i < x->n; i++)
        ck_assert_int_eq(chan_send(x->c, &one, sizeof one, -1), 0);
}

static void s2_round(int mode, struct s2 *x)
{
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, s2_sender, x);
    for (long i = 0; i < x->n; i++) {
        long v = 0;
        chan_case_t cs[2] = { CHAN_CASE_RECV(x->c, &v, sizeof v), CHAN_CASE_RECV(x->dummy, &v, sizeof v) };
        ck_assert_int_eq(chan_select(cs, 2, -1), 0);
        ck_assert_int_eq(v, 1);
    }
    rt_join(&g);
}

static size_t heap_in_use(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    return mallinfo2().uordblks;   /* 0 under a sanitizer's own allocator */
#else
    return 0;
#endif
}

RT_TEST(select2_no_leak)
{
    struct s2 x = { rt_make(0), rt_make(0),
                    rt_count(test_size("select2 selects, local", 3000, 1500),
                             test_size("select2 selects, remote", 300, 100)) };
    s2_round(mode, &x);   /* warm up: stacks, caches, the client's buffers */
    size_t before = heap_in_use();
    s2_round(mode, &x);
    size_t after = heap_in_use();
    ck_assert_msg(after <= before || after - before <= 110000,
                  "%zu bytes more in use after %ld selects", after - before, x.n);
    /* no select left a waiter behind on the channel never used */
    ck_assert_int_eq(rt_receivers(x.dummy), 0);
    ck_assert_int_eq(rt_receivers(x.c), 0);
    chan_release(x.c);
    chan_release(x.dummy);
}

/* ---- select4: only the chosen case's buffer is written ---------------- */

RT_TEST(select4)
{
    (void)mode;
    for (int order = 0; order < 2; order++) {
        for (int nonblock = 0; nonblock < 2; nonblock++) {
            chan_t *c = rt_make(1), *c1 = rt_make(0);
            rt_send_long(c, 42);
            long x = 0, untouched = -77;
            chan_case_t cs[2];
            cs[order] = (chan_case_t)CHAN_CASE_RECV(c1, &untouched, sizeof untouched);
            cs[1 - order] = (chan_case_t)CHAN_CASE_RECV(c, &x, sizeof x);
            ck_assert_int_eq(chan_select(cs, 2, nonblock ? 0 : -1), 1 - order);
            ck_assert_int_eq(x, 42);
            ck_assert_int_eq(untouched, -77);
            chan_release(c);
            chan_release(c1);
        }
    }
}

/* ---- select5: every shape of a select around one real operation ---------- */
/* Go generates a program of selects from templates; this enumerates the same
 * shapes directly.  One real case (a receive from, or a send to, c, which
 * holds one value or has room for one) sits at every position among any
 * subset of distractors that are never ready (sends to and receives from
 * an unbuffered channel nobody uses, and nil cases, receives into a buffer
 * or allocating), with and without default.  The real case must be the one
 * chosen, with the right value; the distractors' buffers stay untouched. */

enum { DISTRACTORS = 6 };

static chan_case_t distractor(int i, chan_t *dummy, long *buf, long *one)
{
    switch (i) {
    case 0: return (chan_case_t)CHAN_CASE_SEND(dummy, one, sizeof *one);
    case 1: return (chan_case_t)CHAN_CASE_RECV(dummy, buf, sizeof *buf);
    case 2: return (chan_case_t)CHAN_CASE_RECV(dummy, NULL, 0);
    case 3: return (chan_case_t)CHAN_CASE_SEND(NULL, one, sizeof *one);
    case 4: return (chan_case_t)CHAN_CASE_RECV(NULL, buf, sizeof *buf);
    default: return (chan_case_t)CHAN_CASE_RECV(NULL, NULL, 0);
    }
}

/* kind 0: receive n; 1: send n; 2: nothing real, default only */
static long select5_kind(int kind, chan_t *c, chan_t *dummy, long *n, long stride)
{
    long shapes = 0, combo = 0;
    for (unsigned mask = 0; mask < 1u << DISTRACTORS; mask++) {
        int nd = __builtin_popcount(mask);
        int positions = kind == 2 ? 1 : nd + 1;
        for (int at = 0; at < positions; at++) {
            for (int def = 0; def < 2; def++) {
                if (kind == 2 && !def)
                    continue;   /* nothing could ever be ready */
                for (int variant = 0; variant < (kind == 0 ? 3 : 1); variant++) {
                    if (combo++ % stride)
                        continue;
                    shapes++;
                    long one = 1, bufs[DISTRACTORS], x = -1;
                    chan_case_t cs[DISTRACTORS + 1];
                    int k = 0, real = -1;
                    for (int i = 0; i < DISTRACTORS; i++) {
                        if (!(mask & (1u << i)))
                            continue;
                        if (k == at && kind != 2)
                            real = k++;
                        bufs[i] = -99;
                        cs[k++] = distractor(i, dummy, &bufs[i], &one);
                    }
                    if (real < 0 && kind != 2)
                        real = k++;
                    if (kind == 0) {
                        rt_send_long(c, *n);
                        long big[4];
                        cs[real] = variant == 0   ? (chan_case_t)CHAN_CASE_RECV(c, &x, sizeof x)
                                   : variant == 1 ? (chan_case_t)CHAN_CASE_RECV(c, big, sizeof big)
                                                  : (chan_case_t)CHAN_CASE_RECV(c, NULL, 0);
                        int got = chan_select(cs, (size_t)k, def ? 0 : -1);
                        ck_assert_msg(got == real, "recv shape %#x/%d/%d/%d: chose %d, want %d", mask,
                                      at, def, variant, got, real);
                        ck_assert_int_eq(cs[real].err, 0);
                        ck_assert_int_eq(cs[real].n, sizeof x);
                        if (variant == 1)
                            x = big[0];
                        if (variant == 2) {
                            ck_assert_ptr_nonnull(cs[real].val);
                            memcpy(&x, cs[real].val, sizeof x);
                            free(cs[real].val);
                        }
                        ck_assert_int_eq(x, *n);
                    } else if (kind == 1) {
                        cs[real] = (chan_case_t)CHAN_CASE_SEND(c, n, sizeof *n);
                        int got = chan_select(cs, (size_t)k, def ? 0 : -1);
                        ck_assert_msg(got == real, "send shape %#x/%d/%d: chose %d, want %d", mask, at,
                                      def, got, real);
                        ck_assert_int_eq(cs[real].err, 0);
                        ck_assert_int_eq(rt_recv_long(c), *n);
                    } else {
                        ck_assert_int_eq(chan_select(cs, (size_t)k, 0), -1);
                        ck_assert_int_eq(errno, ETIMEDOUT);
                    }
                    for (int i = 0; i < DISTRACTORS; i++)
                        if (mask & (1u << i))
                            ck_assert_int_eq(bufs[i], -99);
                    for (int i = 0; i < k; i++)
                        if (i != real && cs[i].op == CHAN_RECV && !cs[i].buf)
                            ck_assert_ptr_null(cs[i].val);
                    (*n)++;
                }
            }
        }
    }
    return shapes;
}

RT_TEST(select5)
{
    (void)mode;
    chan_t *c = rt_make(1), *dummy = rt_make(0);
    long n = 1, stride = rt_count(1, 2), shapes = 0;
    for (int kind = 0; kind < 3; kind++)
        shapes += select5_kind(kind, c, dummy, &n, stride);
    ck_assert_int_gt(shapes, 100);
    ck_assert_int_eq(chan_len(c), 0);
    ck_assert_int_eq(rt_receivers(dummy), 0);
    ck_assert_int_eq(rt_senders(dummy), 0);
    chan_release(c);
    chan_release(dummy);
}

/* ---- select7: receive and send, each plain or through a select ---------- */

struct s7 {
    chan_t *c;
    int how;
    long got;
};

static void s7_recv(void *p)
{
    struct s7 *x = p;
    x->got = 0;
    if (x->how == 0) {
        x->got = rt_recv_long(x->c);
    } else if (x->how == 1) {
        chan_case_t cs = CHAN_CASE_RECV(x->c, &x->got, sizeof x->got);
        ck_assert_int_eq(chan_select(&cs, 1, -1), 0);
        ck_assert_int_eq(cs.err, 0);
    } else {
        chan_t *c2 = rt_make(0);
        long other;
        chan_case_t cs[2] = { CHAN_CASE_RECV(x->c, &x->got, sizeof x->got),
                              CHAN_CASE_RECV(c2, &other, sizeof other) };
        ck_assert_int_eq(chan_select(cs, 2, -1), 0);
        ck_assert_int_eq(cs[0].err, 0);
        chan_release(c2);
    }
}

static void s7_send(chan_t *c, int how)
{
    long one = 1;
    if (how == 0) {
        rt_send_long(c, one);
    } else if (how == 1) {
        chan_case_t cs = CHAN_CASE_SEND(c, &one, sizeof one);
        ck_assert_int_eq(chan_select(&cs, 1, -1), 0);
        ck_assert_int_eq(cs.err, 0);
    } else {
        chan_t *c2 = rt_make(0);
        chan_case_t cs[2] = { CHAN_CASE_SEND(c, &one, sizeof one), CHAN_CASE_SEND(c2, &one, sizeof one) };
        ck_assert_int_eq(chan_select(cs, 2, -1), 0);
        ck_assert_int_eq(cs[0].err, 0);
        chan_release(c2);
    }
}

RT_TEST(select7)
{
    const long reps = rt_count(20, 5);
    for (long rep = 0; rep < reps; rep++) {
        for (int r = 0; r < 3; r++) {
            for (int s = 0; s < 3; s++) {
                struct s7 x = { rt_make(0), r, 0 };
                rt_group_t g;
                rt_group_init(&g);
                rt_spawn(&g, mode, s7_recv, &x);
                chan_yield();
                s7_send(x.c, s);
                rt_join(&g);
                ck_assert_int_eq(x.got, 1);
                chan_release(x.c);
            }
        }
    }
}

/* ---- sendstmt: a channel sent over a channel, then sent to ----------------- */

RT_TEST(sendstmt_chanchan)
{
    (void)mode;
    chan_t *cc = rt_make(1), *c = rt_make(1);
    /* a local channel travels as its (retained) pointer, a remote one as its
     * reference, which the receiver opens */
    char msg[CHAN_REF_MAX];
    size_t len;
    if (chan_name(c)) {
        ssize_t n = chan_ref(c, msg, sizeof msg);
        ck_assert_int_gt(n, 0);
        len = (size_t)n;
    } else {
        chan_t *mine = chan_retain(c);
        memcpy(msg, &mine, sizeof mine);
        len = sizeof mine;
    }
    ck_assert_int_eq(chan_send(cc, msg, len, 0), 0);
    char got[CHAN_REF_MAX];
    ssize_t n = chan_recv(cc, got, sizeof got, 0);
    ck_assert_int_eq(n, (ssize_t)len);
    chan_t *inner;
    if (chan_name(c)) {
        inner = chan_open_ref(NULL, got, (size_t)n, soon());
        ck_assert_msg(inner, "open_ref: %s", strerror(errno));
    } else {
        memcpy(&inner, got, sizeof inner);
    }
    long two = 2;
    chan_case_t cs = CHAN_CASE_SEND(inner, &two, sizeof two);
    ck_assert_msg(chan_select(&cs, 1, 0) == 0, "nonblock send to the received chan");
    ck_assert_int_eq(rt_recv_long(c), 2);
    chan_release(inner);
    chan_release(c);
    chan_release(cc);
}

/* ---- zerosize: empty values are values, not a closed channel --------------- */

static void send_empty(void *p)
{
    ck_assert_int_eq(chan_send(p, NULL, 0, -1), 0);
}

RT_TEST(zerosize)
{
    for (size_t cap = 0; cap < 2; cap++) {
        chan_t *c = rt_make(cap);
        rt_group_t g;
        rt_group_init(&g);
        for (int i = 0; i < 4; i++)
            rt_spawn(&g, mode, send_empty, c);
        ck_assert_int_eq(chan_recv(c, NULL, 0, soon()), 0);
        void *val = NULL;
        ck_assert_int_eq(chan_recv_alloc(c, &val, soon()), 0);
        ck_assert_ptr_nonnull(val);
        free(val);
        chan_case_t r = CHAN_CASE_RECV(c, NULL, 0);
        ck_assert_int_eq(chan_select(&r, 1, soon()), 0);
        ck_assert_int_eq(r.err, 0);
        ck_assert_int_eq(r.n, 0);
        ck_assert_ptr_nonnull(r.val);
        free(r.val);
        char buf[8];
        chan_case_t rb = CHAN_CASE_RECV(c, buf, sizeof buf);
        ck_assert_int_eq(chan_select(&rb, 1, soon()), 0);
        ck_assert_int_eq(rb.err, 0);
        ck_assert_int_eq(rb.n, 0);
        rt_join(&g);
        if (cap) {   /* an empty value fills a slot */
            ck_assert_int_eq(chan_send(c, NULL, 0, 0), 0);
            ck_assert_int_eq(chan_len(c), 1);
            expect_fail(chan_send(c, NULL, 0, 0), ETIMEDOUT, "empty value into a full chan");
        }
        ck_assert_int_eq(chan_close(c), 0);
        if (cap)
            ck_assert_int_eq(chan_recv(c, NULL, 0, 0), 0);
        expect_fail(chan_recv(c, NULL, 0, 0), EPIPE, "recv of closed chan after empty values");
        chan_release(c);
    }
}

/* ---- goroutines: a long chain, each link passing one value on ---------- */

struct link {
    chan_t *left, *right;
};

static void pass_on(void *p)
{
    struct link *l = p;
    rt_send_long(l->left, rt_recv_long(l->right) + 1);
}

RT_TEST(goroutines_chain)
{
    const long n = mode == MODE_GOROUTINE
                       ? rt_count(test_size("goroutines chain, local", 10000, 2000), 500)
                       : rt_count(300, 100);
    struct link *links = calloc((size_t)n, sizeof *links);
    chan_t *leftmost = rt_make(0), *left = leftmost;
    rt_group_t g;
    rt_group_init(&g);
    for (long i = 0; i < n; i++) {
        links[i] = (struct link){ left, rt_make(0) };
        rt_spawn(&g, mode, pass_on, &links[i]);
        left = links[i].right;
    }
    rt_send_long(left, 1);
    ck_assert_int_eq(rt_recv_long(leftmost), n + 1);
    rt_join(&g);
    chan_release(leftmost);
    for (long i = 0; i < n; i++)
        chan_release(links[i].right);
    free(links);
}

/* ---- split placement only ------------------------------------------------ */

/* A sender waits on the unbuffered remote channel c in a select that has a
 * case in another place too (daemon A, or a local channel): chand holds
 * such a sender as a reserving select (two-phase).  A plain chan_recv(c, 0)
 * and a select with default whose cases are all on c's daemon must take
 * its value, as Go's receive with default takes a waiting sender's: chand
 * holds the receive until the sender decides (before, both failed with
 * ETIMEDOUT every time). */
START_TEST(nonblock_recv_select_sender)
{
    long failed[2] = { 0, 0 };
    for (int r = 0; r < 10; r++) {
        chan_t *c = rt_make_at(1, 0), *alt = rt_make_at(r / 2 % 2 ? 0 : -1, 0);
        struct waiter w = { c, 1000 + r, alt };
        rt_group_t g;
        rt_group_init(&g);
        rt_spawn(&g, MODE_GOROUTINE, waiter_send, &w);
        rt_wait_senders(c, 1);
        long got = -1;
        int how = r % 2;   /* 0: chan_recv, 1: a one-case select */
        bool ok;
        if (how == 0) {
            ok = chan_recv(c, &got, sizeof got, 0) == sizeof got;
        } else {
            chan_case_t cs = CHAN_CASE_RECV(c, &got, sizeof got);
            ok = chan_select(&cs, 1, 0) == 0 && cs.err == 0;
        }
        if (!ok) {
            failed[how]++;
            got = rt_recv_long(c);   /* let the sender go */
        }
        ck_assert_int_eq(got, 1000 + r);
        rt_join(&g);
        chan_release(c);
        chan_release(alt);
    }
    ck_assert_msg(failed[0] + failed[1] == 0,
                  "a non-blocking receive missed a sender waiting in a select: chan_recv %ld of 5, "
                  "select with default %ld of 5",
                  failed[0], failed[1]);
}
END_TEST

/* One case per test, named as the test: CK_RUN_CASE=select5 runs one. */
static void add(Suite *s, const char *name, const TTest *test, int modes)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test, 0, modes);
    suite_add_tcase(s, tc);
}

static Suite *goports2_suite(void)
{
    Suite *s = suite_create("goports2");
    add(s, "go_chan", go_chan, MODES);
    add(s, "nonblock_recv_race", nonblock_recv_race, MODES);
    add(s, "nonblock_select_race2", nonblock_select_race2, MODES);
    add(s, "select_stress", select_stress, MODES);
    add(s, "select_duplicate_channel", select_duplicate_channel, MODES);
    add(s, "multi_consumer", multi_consumer, MODES);
    add(s, "chan_send_barrier", chan_send_barrier, MODES);
    add(s, "close_close_race", close_close_race, MODES);
    add(s, "close_send_recv_race", close_send_recv_race, MODES);
    add(s, "waiters_fifo", waiters_fifo, MODES);
    add(s, "nonblock_meets_waiter", nonblock_meets_waiter, MODES);
    add(s, "select_closed_vs_value", select_closed_vs_value, 1);
    add(s, "close_wakes_all", close_wakes_all, MODES);
    add(s, "select_timeouts", select_timeouts, MODES);
    add(s, "select_self_buffered", select_self_buffered, 1);
    add(s, "semaphore", semaphore, MODES);
    add(s, "select_default_send", select_default_send, 1);
    add(s, "select2_no_leak", select2_no_leak, MODES);
    add(s, "select4", select4, 1);
    add(s, "select5", select5, 1);
    add(s, "select7", select7, MODES);
    add(s, "sendstmt_chanchan", sendstmt_chanchan, 1);
    add(s, "zerosize", zerosize, MODES);
    add(s, "goroutines_chain", goroutines_chain, MODES);
    if (rt_channels() == RT_SPLIT)
        add(s, "nonblock_recv_select_sender", nonblock_recv_select_sender, 1);
    return s;
}

int main(void)
{
    return rt_main(goports2_suite);
}

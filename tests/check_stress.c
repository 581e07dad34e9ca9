/*
 * check_stress.c - the runtime under load: a million values through a
 * multi-stage pipeline with checksums, the talk's daisy chain of 100,000
 * goroutines, close racing with blocked senders and receivers, generators,
 * fan-in, and timers as channels.
 *
 * The pipeline, the daisy chain, the close races, fan-in over made channels
 * and time.After in a select take their channels from rt_make(): make check
 * reruns them with remote and split channels (RT_CHANNELS, rt_test.h), with
 * counts scaled down there (a round trip per operation).  Local-only, and
 * not run in those modes: the generator and fan-in of generators (the
 * library makes their channels with chan_make) and the timers' own
 * behaviour (timer channels are local by nature).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rt_test.h"
#include "test_size.h"

/* ---- pipeline ------------------------------------------------------------ */

enum { STAGES = 4 };

/* A million values through goroutines; a tenth of that through plain
 * threads, whose every hand-off is a futex sleep and wake.  Sanitizer
 * builds run five times fewer (test_size.h). */
static long pipe_n(int mode)
{
    if (mode == MODE_GOROUTINE)
        return test_size("pipeline values", rt_count(1000000, 5000), rt_count(200000, 5000));
    return test_size("pipeline values", rt_count(100000, 2000), rt_count(20000, 2000));
}

struct stage {
    chan_t *in, *out;
    long k;                 /* this stage adds k */
    long n;                 /* values the source sends */
};

static void source(void *p)
{
    struct stage *s = p;
    for (long i = 0; i < s->n; i++)
        rt_send_long(s->out, i);
    chan_close(s->out);
}

static void add_stage(void *p)
{
    struct stage *s = p;
    long v;
    while (chan_recv(s->in, &v, sizeof v, -1) == sizeof v)
        rt_send_long(s->out, v + s->k);
    ck_assert_int_eq(errno, EPIPE);
    chan_close(s->out);
}

/* 10^6 values, mixed buffered and unbuffered stages; the sink checks the
 * count, the order and the sum (a checksum of every value) */
RT_TEST(pipeline_million)
{
    size_t caps[STAGES + 1] = { 0, 16, 0, 128, 1 };
    chan_t *ch[STAGES + 1];
    for (int i = 0; i <= STAGES; i++)
        ch[i] = rt_make(caps[i]);
    struct stage st[STAGES + 1];
    rt_group_t g;
    rt_group_init(&g);
    st[0] = (struct stage){ NULL, ch[0], 0, pipe_n(mode) };
    rt_spawn(&g, mode, source, &st[0]);
    for (int i = 1; i <= STAGES; i++) {
        st[i] = (struct stage){ ch[i - 1], ch[i], i, 0 };
        rt_spawn(&g, mode, add_stage, &st[i]);
    }
    long add = STAGES * (STAGES + 1) / 2, count = 0, v;
    unsigned long long sum = 0, want = 0;
    while (chan_recv(ch[STAGES], &v, sizeof v, -1) == sizeof v) {
        ck_assert_int_eq(v, count + add);     /* FIFO through every stage */
        sum += (unsigned long long)v;
        want += (unsigned long long)(count + add);
        count++;
    }
    ck_assert_int_eq(count, st[0].n);
    ck_assert(sum == want);
    rt_join(&g);
    for (int i = 0; i <= STAGES; i++)
        chan_release(ch[i]);
}

/* ---- daisy chain ------------------------------------------------------------ */

struct whisper {
    chan_t *left, *right;
};

static void whisper(void *p)
{
    struct whisper w = *(struct whisper *)p;
    free(p);
    long v = rt_recv_long(w.right);
    rt_send_long(w.left, v + 1);
    chan_release(w.left);
    chan_release(w.right);
}

static void daisy(void *p)
{
    long n = (long)p;
    chan_t *leftmost = rt_make(0), *left = chan_retain(leftmost), *right = left;
    for (long i = 0; i < n; i++) {
        right = rt_make(0);
        struct whisper *w = malloc(sizeof *w);
        *w = (struct whisper){ left, chan_retain(right) };
        ck_assert_int_eq(chan_go(whisper, w), 0);
        left = right;
    }
    rt_send_long(right, 1);
    chan_release(right);
    ck_assert_int_eq(rt_recv_long(leftmost), n + 1);
    chan_release(leftmost);
}

/* Rob Pike's daisy chain: 100,000 goroutines pass a value along, each adding
 * one; the leftmost channel yields 100001.  Under ASan each goroutine's
 * stack costs ~150 KB of shadow and bookkeeping: 10,000 there
 * (test_size.h); remotely each link is an open, so 10,000 as well. */
RT_TEST(daisy_chain_100k)
{
    long n = test_size("daisy chain links", rt_count(100000, 10000), 10000);
    rt_run(mode, daisy, (void *)n);
}

/* ---- close races with blocked senders and receivers ---------------------- */

struct racer {
    chan_t *c;
    long ok;                /* successful operations */
    long sum;
};

static void race_send(void *p)
{
    struct racer *r = p;
    for (long i = 1;; i++) {
        if (chan_send(r->c, &i, sizeof i, -1) < 0) {
            ck_assert_int_eq(errno, EPIPE);
            return;
        }
        r->ok++;
        r->sum += i;
    }
}

static void race_recv(void *p)
{
    struct racer *r = p;
    for (;;) {
        long v;
        if (chan_recv(r->c, &v, sizeof v, -1) < 0) {
            ck_assert_int_eq(errno, EPIPE);
            return;
        }
        r->ok++;
        r->sum += v;
    }
}

/* close lands while senders and receivers are blocked or running: every
 * value a sender saw succeed is received exactly once, and all of them
 * finish with EPIPE */
RT_TEST(close_races_senders_and_receivers)
{
    for (int round = 0; round < 30; round++) {
        chan_t *c = rt_make((size_t)(round % 4));
        struct racer s[4], r[4];
        rt_group_t g;
        rt_group_init(&g);
        for (int i = 0; i < 4; i++) {
            s[i] = (struct racer){ .c = c };
            r[i] = (struct racer){ .c = c };
            rt_spawn(&g, (mode + i) % 2, race_send, &s[i]);
            rt_spawn(&g, (mode + i + 1) % 2, race_recv, &r[i]);
        }
        chan_sleep(chan_now() + round % 3);
        ck_assert_int_eq(chan_close(c), 0);
        rt_join(&g);
        long sent = 0, got = 0, ssum = 0, rsum = 0;
        for (int i = 0; i < 4; i++) {
            sent += s[i].ok;
            ssum += s[i].sum;
            got += r[i].ok;
            rsum += r[i].sum;
        }
        ck_assert_int_eq(sent, got);
        ck_assert_int_eq(ssum, rsum);
        chan_release(c);
    }
}

/* ---- generator and fan-in ------------------------------------------------------ */

struct gen_arg {
    long base, n;
};

static void count_gen(chan_t *out, void *arg)
{
    struct gen_arg *a = arg;
    for (long i = 0; i < a->n; i++)
        if (chan_send(out, &(long){ a->base + i }, sizeof(long), -1) < 0)
            return;
}

/* a generator feeds its channel and closes it when done */
RT_TEST(generator)
{
    struct gen_arg a = { 100, 1000 };
    chan_t *c = chan_generator(count_gen, &a, (size_t)mode * 8);
    ck_assert_ptr_nonnull(c);
    for (long i = 0; i < 1000; i++)
        ck_assert_int_eq(rt_recv_long(c), 100 + i);
    long v;
    ck_assert_int_eq(chan_recv(c, &v, sizeof v, -1), -1);
    ck_assert_int_eq(errno, EPIPE);
    chan_release(c);
    ck_assert_ptr_null(chan_generator(NULL, NULL, 0));
    ck_assert_int_eq(errno, EINVAL);
}

static void big_gen(chan_t *out, void *arg)
{
    (void)arg;
    char big[1000];
    memset(big, 'b', sizeof big);
    chan_send(out, big, sizeof big, -1);
}

/* fan-in: every value of every input comes out once, in each input's order;
 * the output closes when all inputs have; large values pass too */
RT_TEST(fanin)
{
    enum { IN = 4, PER = 20000 };
    struct gen_arg a[IN];
    chan_t *in[IN + 1];
    for (int i = 0; i < IN; i++) {
        a[i] = (struct gen_arg){ (long)i * 1000000, PER };
        in[i] = chan_generator(count_gen, &a[i], (size_t)i);
    }
    in[IN] = chan_generator(big_gen, NULL, 0);
    chan_t *out = chan_fanin(in, IN + 1);
    ck_assert_ptr_nonnull(out);
    for (int i = 0; i <= IN; i++)
        chan_release(in[i]);            /* the fan-in holds its own */
    long next[IN] = { 0 }, total = 0;
    int bigs = 0;
    for (;;) {
        void *val;
        ssize_t n = chan_recv_alloc(out, &val, chan_now() + 10000);
        if (n < 0) {
            ck_assert_int_eq(errno, EPIPE);
            break;
        }
        if (n == 1000) {
            bigs++;
        } else {
            ck_assert_int_eq(n, sizeof(long));
            long v = *(long *)val;
            int k = (int)(v / 1000000);
            ck_assert(k >= 0 && k < IN);
            ck_assert_int_eq(v % 1000000, next[k]);   /* per-input order */
            next[k]++;
            total++;
        }
        free(val);
    }
    ck_assert_int_eq(total, IN * PER);
    ck_assert_int_eq(bigs, 1);
    chan_release(out);
    ck_assert_ptr_null(chan_fanin(in, 0));
    ck_assert_int_eq(errno, EINVAL);
}

struct feed {
    chan_t *ch;
    struct gen_arg arg;
};

static void feed_and_close(void *p)
{
    struct feed *f = p;
    count_gen(f->ch, &f->arg);
    chan_close(f->ch);
}

/* fan-in over channels made by rt_make (remote ones too, when rerun so):
 * every value once, in each input's order, and the output closes */
RT_TEST(fanin_of_channels)
{
    enum { IN = 4 };
    const long per = rt_count(20000, 2000);
    struct feed f[IN];
    chan_t *in[IN];
    rt_group_t g;
    rt_group_init(&g);
    for (int i = 0; i < IN; i++) {
        in[i] = rt_make((size_t)i);
        f[i] = (struct feed){ in[i], { (long)i * 1000000, per } };
        rt_spawn(&g, mode, feed_and_close, &f[i]);
    }
    chan_t *out = chan_fanin(in, IN);
    ck_assert_ptr_nonnull(out);
    long next[IN] = { 0 }, total = 0, v;
    ssize_t n;
    while ((n = chan_recv(out, &v, sizeof v, chan_now() + 60000)) == sizeof v) {
        int k = (int)(v / 1000000);
        ck_assert(k >= 0 && k < IN);
        ck_assert_int_eq(v % 1000000, next[k]);   /* per-input order */
        next[k]++;
        total++;
    }
    ck_assert_int_eq(n, -1);
    ck_assert_int_eq(errno, EPIPE);
    ck_assert_int_eq(total, IN * per);
    rt_join(&g);
    for (int i = 0; i < IN; i++)
        chan_release(in[i]);
    chan_release(out);
}

/* ---- timers as channels ------------------------------------------------------- */

/* chan_after fires once, ms later, with chan_now() as the value */
RT_TEST(after_fires_once)
{
    int64_t t0 = chan_now();
    chan_t *t = chan_after(30);
    ck_assert_ptr_nonnull(t);
    int64_t when = 0;
    ck_assert_int_eq(chan_recv(t, &when, sizeof when, t0 + 5000), sizeof when);
    ck_assert_int_ge(when, t0 + 30);
    ck_assert_int_ge(chan_now(), when);
    ck_assert_int_eq(chan_recv(t, &when, sizeof when, chan_now() + 50), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_eq(chan_timer_stop(t), 0);        /* already fired */
    chan_release(t);
}

/* time.After in a select: the timeout case wins when nothing else comes */
RT_TEST(after_in_select)
{
    chan_t *c = rt_make(0), *t = chan_after(20);
    long v;
    int64_t when;
    chan_case_t cs[2] = { CHAN_CASE_RECV(c, &v, sizeof v), CHAN_CASE_RECV(t, &when, sizeof when) };
    ck_assert_int_eq(chan_select(cs, 2, chan_now() + 5000), 1);
    chan_release(t);
    chan_release(c);
}

/* a stopped timer never fires; stop says whether it prevented a firing */
RT_TEST(after_stopped)
{
    chan_t *t = chan_after(20);
    ck_assert_int_eq(chan_timer_stop(t), 1);
    ck_assert_int_eq(chan_timer_stop(t), 0);
    int64_t when;
    ck_assert_int_eq(chan_recv(t, &when, sizeof when, chan_now() + 60), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    chan_release(t);
    chan_t *c = chan_make(0);
    ck_assert_int_eq(chan_timer_stop(c), -1);
    ck_assert_int_eq(errno, EINVAL);
    chan_release(c);
    ck_assert_ptr_null(chan_tick(0));
    ck_assert_int_eq(errno, EINVAL);
}

/* a ticker ticks at its period; a slow receiver loses ticks instead of
 * queueing them (buffer of one) */
RT_TEST(tick)
{
    /* t0 before the ticker starts: its grid begins at or after t0 */
    int64_t t0 = chan_now(), prev = 0, when;
    chan_t *t = chan_tick(10);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(chan_recv(t, &when, sizeof when, chan_now() + 5000), sizeof when);
        /* the i-th tick received is at best the i-th on the period's grid */
        ck_assert_int_ge(when, t0 + 10 * (i + 1));
        ck_assert_int_gt(when, prev);
        prev = when;
    }
    chan_sleep(chan_now() + 60);
    ck_assert_int_le(chan_len(t), 1);
    ck_assert_int_eq(chan_timer_stop(t), 1);
    chan_release(t);
}

/* releasing timer handles stops and frees them, also while they fire:
 * ASan and Valgrind would see a use after free or a leak */
RT_TEST(release_stops_timers)
{
    for (int i = 0; i < 200; i++) {
        chan_t *t = i % 2 ? chan_tick(1) : chan_after(i % 3);
        ck_assert_ptr_nonnull(t);
        if (i % 5 == 0)
            chan_sleep(chan_now() + 1);
        chan_release(t);
    }
}

static Suite *stress_suite(void)
{
    bool local = rt_channels() == RT_LOCAL;   /* else skip the local-only tests */
    Suite *s = suite_create("stress");
    TCase *tc = tcase_create("load");
    tcase_set_timeout(tc, 180);
    tcase_add_loop_test(tc, pipeline_million, 0, MODES);
    tcase_add_loop_test(tc, daisy_chain_100k, 0, MODES);
    tcase_add_loop_test(tc, close_races_senders_and_receivers, 0, MODES);
    suite_add_tcase(s, tc);

    tc = tcase_create("patterns");
    tcase_set_timeout(tc, 30);
    if (local) {
        tcase_add_loop_test(tc, generator, 0, MODES);
        tcase_add_loop_test(tc, fanin, 0, MODES);
    }
    tcase_add_loop_test(tc, fanin_of_channels, 0, MODES);
    suite_add_tcase(s, tc);

    tc = tcase_create("timers");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, after_in_select, 0, MODES);
    if (local) {
        tcase_add_loop_test(tc, after_fires_once, 0, MODES);
        tcase_add_loop_test(tc, after_stopped, 0, MODES);
        tcase_add_loop_test(tc, tick, 0, MODES);
        tcase_add_loop_test(tc, release_stops_timers, 0, MODES);
    }
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return rt_main(stress_suite);
}

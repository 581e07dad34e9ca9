/*
 * check_select.c - select: readiness, default, deadlines, closed and nil
 * channels, EMSGSIZE, exactly-once under races with close, and ports of Go's
 * runtime tests TestSelectFairness, TestSelfSelect, TestPseudoRandomSend and
 * TestNonblockSelectRace.
 *
 * Channels come from rt_make(): make check runs this binary with local
 * channels, with every channel on one chand (each select one request,
 * decided by chand), and split over two daemons and local channels (the
 * two-phase select across sources).  See RT_CHANNELS in rt_test.h.
 * Every test holds in every placement, the fairness ones included.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_test.h"
#include "test_size.h"

/* a ready receive and a ready send are taken without blocking */
RT_TEST(ready_cases)
{
    chan_t *a = rt_make(1), *b = rt_make(1);
    long v = 5, got = 0;
    rt_send_long(a, 9);
    chan_case_t cs[2] = { CHAN_CASE_RECV(a, &got, sizeof got), CHAN_CASE_SEND(b, &v, sizeof v) };
    int seen[2] = { 0, 0 };
    for (int i = 0; i < 2; i++) {
        int k = chan_select(cs, 2, 0);
        ck_assert(k == 0 || k == 1);
        ck_assert_int_eq(cs[k].err, 0);
        seen[k]++;
        if (k == 0) {
            ck_assert_int_eq(got, 9);
            ck_assert_int_eq(cs[0].n, sizeof got);
        }
    }
    ck_assert_int_eq(seen[0], 1);   /* after one is taken only the other is ready */
    ck_assert_int_eq(seen[1], 1);
    ck_assert_int_eq(rt_recv_long(b), 5);
    /* nothing ready: default (deadline 0) */
    ck_assert_int_eq(chan_select(cs, 1, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    chan_release(a);
    chan_release(b);
}

/* with nothing ready, select blocks until the deadline */
RT_TEST(deadline)
{
    chan_t *a = rt_make(0);
    long got;
    chan_case_t cs[2] = { CHAN_CASE_RECV(a, &got, sizeof got), CHAN_CASE_SEND(a, &got, sizeof got) };
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_select(cs, 1, t0 + 30), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(rt_ms_since(t0), 30);
    ck_assert_int_eq(rt_receivers(a), 0);     /* dequeued again */
    ck_assert_int_eq(rt_senders(a), 0);
    chan_release(a);
}

/* nil (NULL) cases are never ready: alone they block like select {} until
 * the deadline; with a default they take the default */
RT_TEST(nil_cases)
{
    long v = 1;
    chan_case_t cs[2] = { CHAN_CASE_RECV(NULL, &v, sizeof v), CHAN_CASE_SEND(NULL, &v, sizeof v) };
    ck_assert_int_eq(chan_select(cs, 2, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_select(cs, 2, t0 + 20), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(rt_ms_since(t0), 20);
    ck_assert_int_eq(chan_select(NULL, 0, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    /* a nil case next to a ready one: the ready one */
    chan_t *a = rt_make(1);
    cs[1] = CHAN_CASE_SEND(a, &v, sizeof v);
    ck_assert_int_eq(chan_select(cs, 2, -1), 1);
    chan_release(a);
}

/* a closed channel makes its case ready with EPIPE (recv after draining;
 * send at once) */
RT_TEST(closed_cases)
{
    chan_t *a = rt_make(2);
    rt_send_long(a, 3);
    chan_close(a);
    long got = 0;
    chan_case_t r = CHAN_CASE_RECV(a, &got, sizeof got);
    ck_assert_int_eq(chan_select(&r, 1, -1), 0);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(got, 3);
    ck_assert_int_eq(chan_select(&r, 1, -1), 0);
    ck_assert_int_eq(r.err, EPIPE);
    chan_case_t s = CHAN_CASE_SEND(a, &got, sizeof got);
    ck_assert_int_eq(chan_select(&s, 1, -1), 0);
    ck_assert_int_eq(s.err, EPIPE);
    chan_release(a);
}

struct closer {
    chan_t *ch;
    int64_t delay;
};

static void close_later(void *p)
{
    struct closer *c = p;
    chan_sleep(chan_now() + c->delay);
    chan_close(c->ch);
}

/* a select blocked on a channel that gets closed wakes with EPIPE */
RT_TEST(close_wakes_select)
{
    chan_t *a = rt_make(0), *b = rt_make(0);
    long got, v = 1;
    chan_case_t cs[2] = { CHAN_CASE_RECV(a, &got, sizeof got), CHAN_CASE_SEND(b, &v, sizeof v) };
    struct closer cl = { b, 20 };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, close_later, &cl);
    ck_assert_int_eq(chan_select(cs, 2, chan_now() + 5000), 1);
    ck_assert_int_eq(cs[1].err, EPIPE);
    rt_join(&g);
    ck_assert_int_eq(rt_receivers(a), 0);
    chan_release(a);
    chan_release(b);
}

/* receive cases with buf NULL allocate; a too-small buffer gives EMSGSIZE
 * and leaves the value */
RT_TEST(alloc_and_emsgsize)
{
    chan_t *a = rt_make(1);
    char msg[40] = "a value longer than four bytes";
    ck_assert_int_eq(chan_send(a, msg, sizeof msg, 0), 0);
    char small[4];
    chan_case_t c = CHAN_CASE_RECV(a, small, sizeof small);
    ck_assert_int_eq(chan_select(&c, 1, 0), 0);
    ck_assert_int_eq(c.err, EMSGSIZE);
    ck_assert_int_eq(c.n, sizeof msg);
    ck_assert_ptr_null(c.val);
    ck_assert_int_eq(chan_len(a), 1);
    c = (chan_case_t)CHAN_CASE_RECV(a, NULL, 0);
    ck_assert_int_eq(chan_select(&c, 1, 0), 0);
    ck_assert_int_eq(c.err, 0);
    ck_assert_int_eq(c.n, sizeof msg);
    ck_assert_ptr_nonnull(c.val);
    ck_assert_int_eq(memcmp(c.val, msg, sizeof msg), 0);
    free(c.val);
    chan_release(a);
}

struct offer {
    chan_t *ch;
    long v;
    int rc;
};

static void offer_send(void *p)
{
    struct offer *o = p;
    o->rc = chan_send(o->ch, &o->v, sizeof o->v, chan_now() + 5000);
}

/* a blocked select receives from whichever peer comes, and only once */
RT_TEST(blocked_select_woken_once)
{
    chan_t *a = rt_make(0), *b = rt_make(0);
    long x = 0, y = 0;
    chan_case_t cs[2] = { CHAN_CASE_RECV(a, &x, sizeof x), CHAN_CASE_RECV(b, &y, sizeof y) };
    struct offer oa = { .ch = a, .v = 1 }, ob = { .ch = b, .v = 2 };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, offer_send, &oa);
    rt_spawn(&g, mode, offer_send, &ob);
    int k = chan_select(cs, 2, chan_now() + 5000);
    ck_assert(k == 0 || k == 1);
    ck_assert_int_eq(k == 0 ? x : y, k + 1);
    /* the other sender is still waiting with its value */
    long rest = rt_recv_long(k == 0 ? b : a);
    ck_assert_int_eq(rest, k == 0 ? 2 : 1);
    rt_join(&g);
    ck_assert_int_eq(oa.rc, 0);
    ck_assert_int_eq(ob.rc, 0);
    chan_release(a);
    chan_release(b);
}

/* ---- TestSelectFairness (Go runtime chan_test.go) ----------------------- */

struct fair {
    chan_t *c1, *c2, *c3, *c4, *out, *done;
};

static void fair_selector(void *p)
{
    struct fair *f = p;
    for (;;) {
        unsigned char b = 0, d;
        chan_case_t in[4] = {
            CHAN_CASE_RECV(f->c3, &b, 1), CHAN_CASE_RECV(f->c4, &b, 1),
            CHAN_CASE_RECV(f->c1, &b, 1), CHAN_CASE_RECV(f->c2, &b, 1),
        };
        ck_assert_int_ge(chan_select(in, 4, -1), 0);
        chan_case_t out[2] = { CHAN_CASE_SEND(f->out, &b, 1), CHAN_CASE_RECV(f->done, &d, 1) };
        if (chan_select(out, 2, -1) == 1)
            return;
    }
}

/* Go's TestNonblockSelectRace: c1 holds a value; while a select polls
 * c1 and c2 with default, the main context puts a value in c2 and then
 * takes c1's.  At every instant one of them holds a value, so default is
 * wrong every time.  Split over places the select polls them one after
 * the other (the value could move behind its back): it must look again
 * before it takes default (20 to 600 of 10,000 took it before). */
struct nbr {
    chan_t *c1, *c2, *done;
};

static void nbr_selector(void *p)
{
    struct nbr *x = p;
    long v;
    chan_case_t cs[2] = { CHAN_CASE_RECV(x->c1, &v, sizeof v), CHAN_CASE_RECV(x->c2, &v, sizeof v) };
    int k = chan_select(cs, 2, 0);
    ck_assert_msg(k >= 0 || errno == ETIMEDOUT, "select: %s", strerror(errno));
    rt_send_long(x->done, k >= 0);
}

RT_TEST(nonblock_select_race)
{
    /* under sanitizers every round trip is several times slower: fewer
     * rounds there (the plain build is the one that catches the race) */
    const long n = rt_count(test_size("nonblock_select_race rounds, local", 5000, 500),
                            test_size("nonblock_select_race rounds, remote", 2000, 200));
    long defaults = 0;
    struct nbr x = { NULL, NULL, chan_make(1) };
    for (long i = 0; i < n; i++) {
        x.c1 = rt_make(1);
        x.c2 = rt_make(1);
        rt_send_long(x.c1, 1);
        rt_group_t g;
        rt_group_init(&g);
        rt_spawn(&g, mode, nbr_selector, &x);
        rt_send_long(x.c2, 1);
        long v;
        chan_recv(x.c1, &v, sizeof v, 0);
        defaults += rt_recv_long(x.done) == 0;
        rt_join(&g);
        chan_release(x.c1);
        chan_release(x.c2);
    }
    chan_release(x.done);
    ck_assert_msg(defaults == 0, "%ld of %ld selects took default while a case was ready", defaults, n);
}

/* Go's TestPseudoRandomSend, made sharp: a select with two cases on one
 * channel c (and one on d, which never proceeds: split, that puts the
 * select across two places) blocks; only then does a partner come to c.
 * Each of the two cases must win about half the time: Binomial(n, 1/2),
 * bound 6.5 sd.  (Queued in case order, case 0 won every time.) */
struct prs {
    chan_t *c, *d;
    long rounds;
    bool recv;               /* the select's two cases receive (else send) */
    atomic_long zero;        /* receive cases: rounds case 0 won */
};

static void prs_selector(void *p)
{
    struct prs *x = p;
    for (long r = 0; r < x->rounds; r++) {
        long zero = 0, one = 1, got = -1, never = 0;
        chan_case_t cs[3];
        if (x->recv) {
            cs[0] = (chan_case_t)CHAN_CASE_RECV(x->c, &got, sizeof got);
            cs[1] = (chan_case_t)CHAN_CASE_RECV(x->c, &got, sizeof got);
        } else {
            cs[0] = (chan_case_t)CHAN_CASE_SEND(x->c, &zero, sizeof zero);
            cs[1] = (chan_case_t)CHAN_CASE_SEND(x->c, &one, sizeof one);
        }
        cs[2] = (chan_case_t)CHAN_CASE_RECV(x->d, &never, sizeof never);
        int k = chan_select(cs, 3, -1);
        ck_assert_msg(k == 0 || k == 1, "select: %d", k);
        if (x->recv) {
            ck_assert_int_eq(got, r);
            if (k == 0)
                atomic_fetch_add(&x->zero, 1);
        }
    }
}

static void pseudo_random(int mode, bool recv)
{
    long rounds = rt_count(test_size("pseudo_random rounds, local", 400, 100),
                           test_size("pseudo_random rounds, remote", 200, 100));
    struct prs x = { rt_make(0), rt_make(0), rounds, recv, 0 };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, prs_selector, &x);
    long zeros = 0;
    for (long r = 0; r < x.rounds; r++) {
        if (recv) {
            rt_wait_receivers(x.c, 2);
            rt_send_long(x.c, r);
        } else {
            rt_wait_senders(x.c, 2);
            zeros += rt_recv_long(x.c) == 0;
        }
    }
    rt_join(&g);
    if (recv)
        zeros = atomic_load(&x.zero);
    double bound = 6.5 * sqrt((double)x.rounds) / 2;
    ck_assert_msg(fabs(zeros - x.rounds / 2.0) <= bound, "case 0 won %ld of %ld", zeros, x.rounds);
    chan_release(x.c);
    chan_release(x.d);
}

RT_TEST(pseudo_random_send)
{
    pseudo_random(mode, false);
}

RT_TEST(pseudo_random_recv)
{
    pseudo_random(mode, true);
}

/* With two always-ready cases, each is chosen with probability 1/2; over
 * n trials the count of one is Binomial(n, 1/2), sd = sqrt(n)/2.  The bound
 * is 6.5 sd: a fair select fails it with probability below 1e-10. */
RT_TEST(select_fairness)
{
    const long TRIALS = rt_count(10000, 3000);   /* remotely: 3 round trips a trial */
    struct fair f = {
        rt_make(TRIALS + 1), rt_make(TRIALS + 1), rt_make(0), rt_make(0),
        rt_make(0), rt_make(0),
    };
    for (int i = 0; i < TRIALS + 1; i++) {
        unsigned char one = 1, two = 2;
        chan_send(f.c1, &one, 1, 0);
        chan_send(f.c2, &two, 1, 0);
    }
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, fair_selector, &f);
    long cnt1 = 0, cnt2 = 0;
    for (int i = 0; i < TRIALS; i++) {
        unsigned char b;
        ck_assert_int_eq(chan_recv(f.out, &b, 1, -1), 1);
        ck_assert(b == 1 || b == 2);
        if (b == 1)
            cnt1++;
        else
            cnt2++;
    }
    chan_close(f.done);
    rt_join(&g);
    double bound = 6.5 * sqrt(TRIALS) / 2;
    ck_assert_msg(fabs(cnt1 - TRIALS / 2.0) <= bound, "unfair: %ld vs %ld", cnt1, cnt2);
    chan_release(f.c1);
    chan_release(f.c2);
    chan_release(f.c3);
    chan_release(f.c4);
    chan_release(f.out);
    chan_release(f.done);
}

/* Four ready cases: each count is Binomial(n, 1/4), sd = sqrt(n * 3/16);
 * 6.5 sd per count, four counts: false alarm below 4e-10.  Split, the four
 * live on A, B and here: Go's poll order holds across places. */
RT_TEST(select_uniform_among_four)
{
    (void)mode;
    const long TRIALS = rt_count(20000, 5000);   /* remotely: 2 round trips a trial */
    chan_t *c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = rt_make(1);
        unsigned char b = (unsigned char)i;
        ck_assert_int_eq(chan_send(c[i], &b, 1, 0), 0);
    }
    long count[4] = { 0 };
    for (long t = 0; t < TRIALS; t++) {
        unsigned char b = 0xff;
        chan_case_t cs[4];
        for (int i = 0; i < 4; i++)
            cs[i] = (chan_case_t)CHAN_CASE_RECV(c[i], &b, 1);
        int k = chan_select(cs, 4, 0);
        ck_assert(k >= 0 && k < 4);
        ck_assert_int_eq(b, k);
        count[k]++;
        ck_assert_int_eq(chan_send(c[k], &b, 1, 0), 0);   /* the others are still full */
    }
    double sd = sqrt(TRIALS * 3.0 / 16.0);
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(fabs(count[i] - TRIALS / 4.0) <= 6.5 * sd,
                      "case %d chosen %ld times of %ld", i, count[i], TRIALS);
        ck_assert_int_eq(chan_len(c[i]), 1);           /* exactly one case took effect */
    }
    for (int i = 0; i < 4; i++)
        chan_release(c[i]);
}

/* ---- TestSelfSelect (Go runtime chan_test.go) ---------------------------- */

struct selfsel {
    chan_t *c;
    long p;
    size_t cap;
    bool self_receive;
};

/* Send and receive on the same channel in one select: it must neither
 * deadlock nor (unbuffered) receive its own value. */
static void self_selector(void *arg)
{
    struct selfsel *s = arg;
    for (int i = 0; i < 1000; i++) {
        long v = -1;
        chan_case_t cs[2];
        int recv_at;
        if (s->p == 0 || i % 2 == 0) {
            cs[0] = (chan_case_t)CHAN_CASE_SEND(s->c, &s->p, sizeof s->p);
            cs[1] = (chan_case_t)CHAN_CASE_RECV(s->c, &v, sizeof v);
            recv_at = 1;
        } else {
            cs[0] = (chan_case_t)CHAN_CASE_RECV(s->c, &v, sizeof v);
            cs[1] = (chan_case_t)CHAN_CASE_SEND(s->c, &s->p, sizeof s->p);
            recv_at = 0;
        }
        int k = chan_select(cs, 2, chan_now() + 10000);
        ck_assert_int_ge(k, 0);
        if (k == recv_at && s->cap == 0 && v == s->p)
            s->self_receive = true;
    }
}

RT_TEST(self_select)
{
    for (size_t cap = 0; cap <= 10; cap += 10) {
        chan_t *c = rt_make(cap);
        struct selfsel s[2] = { { c, 0, cap, false }, { c, 1, cap, false } };
        rt_group_t g;
        rt_group_init(&g);
        rt_spawn(&g, mode, self_selector, &s[0]);
        rt_spawn(&g, mode, self_selector, &s[1]);
        rt_join(&g);
        ck_assert(!s[0].self_receive && !s[1].self_receive);
        chan_release(c);
    }
}

/* ---- close racing with blocked selects --------------------------------- */

struct racer {
    chan_t *c;
    chan_t *other;
    long sent;              /* successful sends */
    long received;          /* successful receives */
    long sum_sent, sum_received;
};

static void race_sender(void *p)
{
    struct racer *r = p;
    for (long i = 1;; i++) {
        long got;
        chan_case_t cs[2] = { CHAN_CASE_SEND(r->c, &i, sizeof i), CHAN_CASE_RECV(r->other, &got, sizeof got) };
        int k = chan_select(cs, 2, -1);
        if (k != 0 || cs[0].err == EPIPE)
            return;
        r->sent++;
        r->sum_sent += i;
    }
}

static void race_receiver(void *p)
{
    struct racer *r = p;
    for (;;) {
        long got = 0, v = 0;
        chan_case_t cs[2] = { CHAN_CASE_RECV(r->c, &got, sizeof got), CHAN_CASE_SEND(r->other, &v, sizeof v) };
        int k = chan_select(cs, 2, -1);
        if (k != 0 || cs[0].err == EPIPE)
            return;
        r->received++;
        r->sum_received += got;
    }
}

/* Where other goes for a round.  Split: always somewhere else than c (A,
 * B, local, in turn), so that selects over c and other cross places, the
 * hardest case for a two-phase select: both ends of an unbuffered remote
 * channel may be selects, each deciding elsewhere at the same moment. */
static chan_t *make_other(chan_t *c)
{
    if (rt_channels() != RT_SPLIT)
        return rt_make(0);
    int next = rt_place(c) + 1;   /* -1 local, 0 A, 1 B */
    return rt_make_at(next > 1 ? -1 : next, 0);
}

/* selects blocked on both ends race a close: every value a send reported
 * as sent is received exactly once, and everyone wakes with EPIPE */
RT_TEST(close_races_selects)
{
    for (int round = 0; round < 20; round++) {
        /* split: c goes to A, B and local in turn, each with every capacity */
        size_t cap = (size_t)((round / 3) % 3);
        chan_t *c = rt_make(cap), *other = make_other(c);
        struct racer s[3], r[3];
        rt_group_t g;
        rt_group_init(&g);
        for (int i = 0; i < 3; i++) {
            s[i] = (struct racer){ .c = c, .other = other };
            r[i] = (struct racer){ .c = c, .other = other };
            rt_spawn(&g, (mode + i) % 2, race_sender, &s[i]);
            rt_spawn(&g, (mode + i + 1) % 2, race_receiver, &r[i]);
        }
        chan_sleep(chan_now() + 1 + round % 3);
        chan_close(c);
        rt_join(&g);
        long sent = 0, received = 0, sum_s = 0, sum_r = 0;
        for (int i = 0; i < 3; i++) {
            sent += s[i].sent;
            sum_s += s[i].sum_sent;
            received += r[i].received;
            sum_r += r[i].sum_received;
        }
        /* whatever was buffered at close and not yet drained */
        long got;
        while (chan_recv(c, &got, sizeof got, 0) == sizeof got) {
            received++;
            sum_r += got;
        }
        ck_assert_int_eq(sent, received);
        ck_assert_int_eq(sum_s, sum_r);
        chan_release(c);
        chan_release(other);
    }
}

static Suite *select_suite(void)
{
    Suite *s = suite_create("select");
    TCase *tc = tcase_create("select");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, ready_cases, 0, MODES);
    tcase_add_loop_test(tc, deadline, 0, MODES);
    tcase_add_loop_test(tc, nil_cases, 0, MODES);
    tcase_add_loop_test(tc, closed_cases, 0, MODES);
    tcase_add_loop_test(tc, close_wakes_select, 0, MODES);
    tcase_add_loop_test(tc, alloc_and_emsgsize, 0, MODES);
    tcase_add_loop_test(tc, blocked_select_woken_once, 0, MODES);
    tcase_add_loop_test(tc, select_fairness, 0, MODES);
    tcase_add_loop_test(tc, select_uniform_among_four, 0, MODES);
    tcase_add_loop_test(tc, pseudo_random_send, 0, MODES);
    tcase_add_loop_test(tc, pseudo_random_recv, 0, MODES);
    tcase_add_loop_test(tc, nonblock_select_race, 0, MODES);
    tcase_add_loop_test(tc, self_select, 0, MODES);
    tcase_add_loop_test(tc, close_races_selects, 0, MODES);
    suite_add_tcase(s, tc);

    /* Known bugs, reproduced; run only by their XFAIL wrappers. */
    return s;
}

int main(void)
{
    return rt_main(select_suite);
}

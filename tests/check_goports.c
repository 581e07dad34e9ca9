/*
 * check_goports.c - Go's own channel tests (golang/go test/chan/), rewritten
 * in C on libchan: doubleselect, fifo, nonblock, select3, select6, sieve1
 * and powser1.  Each keeps the Go test's idea and its checks; goroutines
 * that Go leaves blocked at exit are left blocked here too (the test
 * process ends with them).
 *
 * Channels come from rt_make(): make check runs this binary with local
 * channels, with every channel on one chand, and split over two daemons and
 * local channels (RT_CHANNELS, rt_test.h).  doubleselect sends fewer
 * values there (rt_count: a round trip per operation); powser1 runs whole
 * (a few thousand remote operations take well under a second).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rt_test.h"

/* ---- doubleselect: no value is taken by two cases of a select ----------- */

/* Values sent; remotely each costs a select and three more operations. */
static long ds_n(void)
{
    return rt_count(50000, 10000);
}

struct ds {
    chan_t *c[4];
    chan_t *cmux;
    chan_wg_t *muxes;
    long n;
};

/* Sends 0..n-1, each through whichever of four channels is ready. */
static void ds_sender(void *p)
{
    struct ds *d = p;
    for (long i = 0; i < d->n; i++) {
        chan_case_t cs[4];
        for (int k = 0; k < 4; k++)
            cs[k] = (chan_case_t)CHAN_CASE_SEND(d->c[k], &i, sizeof i);
        ck_assert_int_ge(chan_select(cs, 4, -1), 0);
    }
    for (int k = 0; k < 4; k++)
        chan_close(d->c[k]);
}

struct ds_mux {
    struct ds *d;
    int k;
};

static void ds_mux(void *p)
{
    struct ds_mux *m = p;
    long v;
    while (chan_recv(m->d->c[m->k], &v, sizeof v, -1) == sizeof v)
        rt_send_long(m->d->cmux, v);
    chan_wg_done(m->d->muxes);
}

static void ds_closer(void *p)
{
    struct ds *d = p;
    chan_wg_wait(d->muxes, -1);
    chan_close(d->cmux);
}

START_TEST(doubleselect)
{
    struct ds d = { .cmux = rt_make(0), .muxes = chan_wg_make(), .n = ds_n() };
    for (int k = 0; k < 4; k++)
        d.c[k] = rt_make(0);
    struct ds_mux m[4];
    chan_wg_add(d.muxes, 4);
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, MODE_GOROUTINE, ds_sender, &d);
    for (int k = 0; k < 4; k++) {
        m[k] = (struct ds_mux){ &d, k };
        rt_spawn(&g, MODE_GOROUTINE, ds_mux, &m[k]);
    }
    rt_spawn(&g, MODE_GOROUTINE, ds_closer, &d);
    unsigned char *seen = calloc((size_t)d.n, 1);
    long v, count = 0;
    while (chan_recv(d.cmux, &v, sizeof v, -1) == sizeof v) {
        ck_assert(v >= 0 && v < d.n);
        ck_assert_msg(!seen[v], "got duplicate value %ld", v);
        seen[v] = 1;
        count++;
    }
    ck_assert_int_eq(count, d.n);        /* and none lost */
    rt_join(&g);
    free(seen);
    for (int k = 0; k < 4; k++)
        chan_release(d.c[k]);
    chan_release(d.cmux);
    chan_wg_free(d.muxes);
}
END_TEST

/* ---- fifo: buffered and synchronous channels keep order ------------------- */

enum { FIFO_N = 10 };

START_TEST(fifo_async)
{
    chan_t *ch = rt_make(FIFO_N);
    for (long i = 0; i < FIFO_N; i++)
        rt_send_long(ch, i);
    for (long i = 0; i < FIFO_N; i++)
        ck_assert_int_eq(rt_recv_long(ch), i);
    chan_release(ch);
}
END_TEST

struct link {
    chan_t *ch, *in, *out;
    long val;
};

/* Waits for its turn on in, then must read exactly val from ch. */
static void chain(void *p)
{
    struct link *l = p;
    (void)rt_recv_long(l->in);
    ck_assert_int_eq(rt_recv_long(l->ch), l->val);
    rt_send_long(l->out, 1);
}

/* a daisy chain of goroutines reads the elements in sequence */
RT_TEST(fifo_sync)
{
    chan_t *ch = rt_make(0), *start = rt_make(0), *in = start;
    struct link l[FIFO_N];
    rt_group_t g;
    rt_group_init(&g);
    for (long i = 0; i < FIFO_N; i++) {
        chan_t *out = rt_make(0);
        l[i] = (struct link){ ch, in, out, i };
        rt_spawn(&g, mode, chain, &l[i]);
        in = out;
    }
    rt_send_long(start, 0);
    for (long i = 0; i < FIFO_N; i++)
        rt_send_long(ch, i);
    (void)rt_recv_long(in);
    rt_join(&g);
    chan_release(ch);
    chan_release(start);
    for (int i = 0; i < FIFO_N; i++)
        chan_release(l[i].out);
}

/* ---- nonblock: non-blocking operations of several sizes ----------------- */

struct nb {
    chan_t *c, *strobe;
    const void *val;
    size_t len;
};

static void nb_receiver(void *p)
{
    struct nb *n = p;
    char buf[64];
    ck_assert_int_eq(chan_recv(n->c, buf, sizeof buf, -1), (ssize_t)n->len);
    ck_assert_int_eq(memcmp(buf, n->val, n->len), 0);
    rt_send_long(n->strobe, 1);
}

static void nb_sender(void *p)
{
    struct nb *n = p;
    ck_assert_int_eq(chan_send(n->c, n->val, n->len, -1), 0);
    rt_send_long(n->strobe, 1);
}

/* Go's sleep(): a couple of yields and a short nap. */
static void nb_sleep(void)
{
    chan_yield();
    chan_sleep(chan_now() + 1);
    chan_yield();
}

enum { MAX_TRIES = 10000 };

static void nb_case(int mode, size_t buffer, const void *val, size_t len)
{
    chan_t *c = rt_make(buffer), *strobe = rt_make(0);
    char buf[64];
    /* nothing there: a non-blocking receive fails */
    ck_assert_int_eq(chan_recv(c, buf, sizeof buf, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);

    /* a receiver comes: a non-blocking send succeeds within MAX_TRIES */
    struct nb n = { c, strobe, val, len };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, nb_receiver, &n);
    int i;
    for (i = 0; i < MAX_TRIES; i++) {
        if (chan_send(c, val, len, 0) == 0)
            break;
        nb_sleep();
    }
    ck_assert_int_lt(i, MAX_TRIES);
    (void)rt_recv_long(strobe);
    rt_join(&g);

    /* a sender comes: a non-blocking receive succeeds within MAX_TRIES */
    rt_group_init(&g);
    rt_spawn(&g, mode, nb_sender, &n);
    if (buffer > 0)
        (void)rt_recv_long(strobe);
    for (i = 0; i < MAX_TRIES; i++) {
        ssize_t r = chan_recv(c, buf, sizeof buf, 0);
        if (r >= 0) {
            ck_assert_int_eq(r, (ssize_t)len);
            ck_assert_int_eq(memcmp(buf, val, len), 0);
            break;
        }
        nb_sleep();
    }
    ck_assert_int_lt(i, MAX_TRIES);
    if (buffer == 0)
        (void)rt_recv_long(strobe);
    rt_join(&g);
    chan_release(c);
    chan_release(strobe);
}

RT_TEST(nonblock)
{
    int32_t i32 = 123;
    int64_t i64 = 123456;
    bool b = true;
    const char s[] = "hello again";
    for (size_t buffer = 0; buffer < 2; buffer++) {
        nb_case(mode, buffer, &i32, sizeof i32);
        nb_case(mode, buffer, &i64, sizeof i64);
        nb_case(mode, buffer, &b, sizeof b);
        nb_case(mode, buffer, s, sizeof s);
    }
}

/* ---- select3: what blocks and what does not -------------------------------- */

struct blocker {
    void (*fn)(chan_t *closed);
    chan_t *closed;
    chan_t *result;
};

static void run_blocker(void *p)
{
    struct blocker *b = p;
    b->fn(b->closed);
    long never = 0;
    chan_send(b->result, &never, sizeof never, -1);   /* fn returned */
    chan_release(b->result);
    free(b);
}

/* Go's testBlock: fn(closed) runs in a goroutine; "always" means it is
 * still blocked after 100 ms.  A blocked fn is left blocked (as in Go).
 * One that must not block gets a generous 10 s to finish (a loaded machine,
 * round trips to chand): still a deadlock check, never a speed check. */
static void test_block(bool always, void (*fn)(chan_t *), chan_t *closed)
{
    chan_t *result = chan_make(1);   /* the test's own signal, not under test */
    struct blocker *b = malloc(sizeof *b);
    *b = (struct blocker){ fn, closed, chan_retain(result) };
    ck_assert_int_eq(chan_go(run_blocker, b), 0);
    long v;
    ssize_t r = chan_recv(result, &v, sizeof v, chan_now() + (always ? 100 : 10000));
    ck_assert_msg((r < 0) == always, always ? "function did not block" : "function blocked");
    chan_release(result);
}

static void nil_send(chan_t *closed)
{
    (void)closed;
    long v = 7;
    chan_case_t c = CHAN_CASE_SEND(NULL, &v, sizeof v);
    chan_select(&c, 1, -1);
}

static void nil_recv(chan_t *closed)
{
    (void)closed;
    long v;
    chan_case_t c = CHAN_CASE_RECV(NULL, &v, sizeof v);
    chan_select(&c, 1, -1);
}

static void async_send_with_room(chan_t *closed)
{
    (void)closed;
    chan_t *ch = rt_make(1);
    long v = 7;
    ck_assert_int_eq(chan_send(ch, &v, sizeof v, -1), 0);
    chan_release(ch);
}

static void recv_closed_ten_times(chan_t *closed)
{
    for (int i = 0; i < 10; i++) {
        long v;
        ck_assert_int_eq(chan_recv(closed, &v, sizeof v, -1), -1);
        ck_assert_int_eq(errno, EPIPE);
    }
}

static void recv_not_ready(chan_t *closed)
{
    (void)closed;
    chan_t *ch = rt_make(0);
    long v;
    chan_recv(ch, &v, sizeof v, -1);
}

static void empty_select(chan_t *closed)
{
    (void)closed;
    chan_select(NULL, 0, -1);
}

static void nil_select_both(chan_t *closed)
{
    (void)closed;
    long v = 7;
    chan_case_t c[2] = { CHAN_CASE_RECV(NULL, &v, sizeof v), CHAN_CASE_SEND(NULL, &v, sizeof v) };
    chan_select(c, 2, -1);
}

static void select_not_ready(chan_t *closed)
{
    (void)closed;
    chan_t *ch = rt_make(0);
    long v;
    chan_case_t c = CHAN_CASE_RECV(ch, &v, sizeof v);
    chan_select(&c, 1, -1);
}

static void select_default_only(chan_t *closed)
{
    (void)closed;
    ck_assert_int_eq(chan_select(NULL, 0, 0), -1);
}

static void select_nil_with_default(chan_t *closed)
{
    (void)closed;
    long v = 7;
    chan_case_t c[2] = { CHAN_CASE_RECV(NULL, &v, sizeof v), CHAN_CASE_SEND(NULL, &v, sizeof v) };
    ck_assert_int_eq(chan_select(c, 2, 0), -1);
}

static void select_ready_send(chan_t *closed)
{
    (void)closed;
    chan_t *ch = rt_make(1);
    long v = 7;
    chan_case_t c = CHAN_CASE_SEND(ch, &v, sizeof v);
    ck_assert_int_eq(chan_select(&c, 1, 0), 0);
    chan_release(ch);
}

static void select_ready_recv(chan_t *closed)
{
    (void)closed;
    chan_t *ch = rt_make(1);
    long v = 7;
    chan_send(ch, &v, sizeof v, 0);
    chan_case_t c = CHAN_CASE_RECV(ch, &v, sizeof v);
    ck_assert_int_eq(chan_select(&c, 1, 0), 0);
    chan_release(ch);
}

static void select_closed_recv(chan_t *closed)
{
    long v;
    chan_case_t c = CHAN_CASE_RECV(closed, &v, sizeof v);
    ck_assert_int_eq(chan_select(&c, 1, -1), 0);
    ck_assert_int_eq(c.err, EPIPE);
}

static void select_sees_itself(chan_t *closed)
{
    (void)closed;
    chan_t *ch = rt_make(0);
    long a = 1, b;
    chan_case_t c[2] = { CHAN_CASE_SEND(ch, &a, sizeof a), CHAN_CASE_RECV(ch, &b, sizeof b) };
    chan_select(c, 2, -1);
}

START_TEST(select3)
{
    chan_t *closed = rt_make(0);
    chan_close(closed);
    test_block(true, nil_send, closed);
    test_block(true, nil_recv, closed);
    test_block(false, async_send_with_room, closed);
    test_block(false, recv_closed_ten_times, closed);
    long v = 7;
    ck_assert_int_eq(chan_send(closed, &v, sizeof v, -1), -1);   /* Go panics */
    ck_assert_int_eq(errno, EPIPE);
    test_block(true, recv_not_ready, closed);
    test_block(true, empty_select, closed);
    test_block(true, nil_select_both, closed);
    test_block(true, select_not_ready, closed);
    test_block(false, select_default_only, closed);
    test_block(false, select_nil_with_default, closed);
    test_block(false, select_ready_send, closed);
    test_block(false, select_ready_recv, closed);
    test_block(false, select_closed_recv, closed);
    chan_case_t c = CHAN_CASE_SEND(closed, &v, sizeof v);
    ck_assert_int_eq(chan_select(&c, 1, -1), 0);
    ck_assert_int_eq(c.err, EPIPE);                               /* Go panics */
    test_block(true, select_sees_itself, closed);
    /* closed stays referenced by the goroutines left blocked */
}
END_TEST

/* ---- select6: a failed select leaves other waiters intact (Go issue 2075) -- */

struct s6 {
    chan_t *c1, *c2, *c3;
};

static void s6_recv_c1(void *p)
{
    struct s6 *s = p;
    bool b;
    ck_assert_int_eq(chan_recv(s->c1, &b, sizeof b, -1), sizeof b);
}

static void s6_select(void *p)
{
    struct s6 *s = p;
    bool b, t = true;
    chan_case_t cs[2] = { CHAN_CASE_RECV(s->c1, &b, sizeof b), CHAN_CASE_RECV(s->c2, &b, sizeof b) };
    int k = chan_select(cs, 2, -1);
    ck_assert_msg(k == 1, "select took c1");
    ck_assert_int_eq(chan_send(s->c3, &t, sizeof t, -1), 0);
    ck_assert_int_eq(chan_recv(s->c1, &b, sizeof b, -1), sizeof b);
}

static void s6_send_c2(void *p)
{
    struct s6 *s = p;
    bool t = true;
    ck_assert_int_eq(chan_send(s->c2, &t, sizeof t, -1), 0);
}

RT_TEST(select6)
{
    struct s6 s = { rt_make(0), rt_make(0), rt_make(0) };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, s6_recv_c1, &s);
    rt_wait_receivers(s.c1, 1);                 /* Go relies on timing here */
    rt_spawn(&g, mode, s6_select, &s);
    rt_wait_receivers(s.c1, 2);
    rt_spawn(&g, mode, s6_send_c2, &s);
    bool b, t = true;
    ck_assert_int_eq(chan_recv(s.c3, &b, sizeof b, -1), sizeof b);
    ck_assert_int_eq(chan_send(s.c1, &t, sizeof t, chan_now() + 5000), 0);
    ck_assert_int_eq(chan_send(s.c1, &t, sizeof t, chan_now() + 5000), 0);
    rt_join(&g);
    chan_release(s.c1);
    chan_release(s.c2);
    chan_release(s.c3);
}

/* ---- sieve1: the prime sieve of chained filter goroutines ----------------- */

static void generate(void *p)
{
    chan_t *ch = p;
    for (long i = 2;; i++)
        if (chan_send(ch, &i, sizeof i, -1) < 0)
            return;
}

struct filter {
    chan_t *in, *out;
    long prime;
};

static void filter(void *p)
{
    struct filter *f = p;
    for (;;) {
        long i;
        if (chan_recv(f->in, &i, sizeof i, -1) < 0)
            break;
        if (i % f->prime != 0 && chan_send(f->out, &i, sizeof i, -1) < 0)
            break;
    }
    chan_close(f->in);      /* stop the stage before us, stage by stage */
}

RT_TEST(sieve1)
{
    static const long first[] = {
        2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83,
        89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167, 173, 179,
        181, 191, 193, 197, 199, 211, 223, 227, 229,
    };
    enum { N = sizeof first / sizeof *first };
    chan_t *chans[N + 1];
    struct filter f[N];
    chan_t *ch = chans[0] = rt_make(0);
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, generate, ch);
    for (int i = 0; i < N; i++) {
        long prime = rt_recv_long(ch);
        ck_assert_int_eq(prime, first[i]);
        chan_t *ch1 = chans[i + 1] = rt_make(0);
        f[i] = (struct filter){ ch, ch1, prime };
        rt_spawn(&g, mode, filter, &f[i]);
        ch = ch1;
    }
    /* Go leaves the sieve running; here closing the end unwinds it. */
    chan_close(ch);
    rt_join(&g);
    for (int i = 0; i <= N; i++)
        chan_release(chans[i]);
}

/* ---- powser1: McIlroy's power series on demand channels -------------------- */
/* A power series is a pair of channels: a request channel on which the
 * consumer asks for the next coefficient and a data channel on which the
 * producer answers.  Coefficients are rationals; den == 0 marks the end. */

typedef struct rat {
    int64_t num, den;
} rat;

typedef struct ps {
    chan_t *req, *dat;
} ps;

static rat zero_r = { 0, 1 }, one_r = { 1, 1 }, finis = { 1, 0 };

static int64_t gcd(int64_t u, int64_t v)
{
    if (u < 0)
        return gcd(-u, v);
    if (u == 0)
        return v;
    return gcd(v % u, u);
}

static rat i2tor(int64_t u, int64_t v)
{
    int64_t g = gcd(u, v);
    return v > 0 ? (rat){ u / g, v / g } : (rat){ -u / g, -v / g };
}

static rat itor(int64_t u)
{
    return i2tor(u, 1);
}

static bool end_r(rat u)
{
    return u.den == 0;
}

static rat add_r(rat u, rat v)
{
    int64_t g = gcd(u.den, v.den);
    return i2tor(u.num * (v.den / g) + v.num * (u.den / g), u.den * (v.den / g));
}

static rat mul_r(rat u, rat v)
{
    int64_t g1 = gcd(u.num, v.den), g2 = gcd(u.den, v.num);
    return (rat){ (u.num / g1) * (v.num / g2), (u.den / g2) * (v.den / g1) };
}

static rat neg_r(rat u)
{
    return i2tor(-u.num, u.den);
}

/* Go's garbage collector owns the series' channels and records; here they
 * live until the test process ends, listed in `kept` so that a leak
 * checker sees them referenced (operators park for good, as in Go). */
static void *kept[1 << 14];
static _Atomic size_t nkept;

static void *keep(void *p)
{
    size_t i = atomic_fetch_add(&nkept, 1);
    ck_assert_uint_lt(i, sizeof kept / sizeof *kept);
    kept[i] = p;
    return p;
}

static ps mkps(void)
{
    return (ps){ keep(rt_make(0)), keep(rt_make(0)) };
}

static void put(rat r, ps out)
{
    long seq;
    chan_recv(out.req, &seq, sizeof seq, -1);
    chan_send(out.dat, &r, sizeof r, -1);
}

static _Atomic long seqno;

static rat get(ps in)
{
    long s = atomic_fetch_add(&seqno, 1);
    rat r;
    chan_send(in.req, &s, sizeof s, -1);
    chan_recv(in.dat, &r, sizeof r, -1);
    return r;
}

/* One coefficient from each of two series, asking and reading in whatever
 * order they become ready: a select over four cases, two of them nil. */
static void get2(ps u, ps v, rat out[2])
{
    ps in[2] = { u, v };
    chan_t *req[2] = { u.req, v.req }, *dat[2] = { NULL, NULL };
    rat it[2];
    for (int n = 4; n > 0; n--) {
        long s = atomic_fetch_add(&seqno, 1);
        chan_case_t cs[4] = {
            CHAN_CASE_SEND(req[0], &s, sizeof s), CHAN_CASE_SEND(req[1], &s, sizeof s),
            CHAN_CASE_RECV(dat[0], &it[0], sizeof(rat)), CHAN_CASE_RECV(dat[1], &it[1], sizeof(rat)),
        };
        int k = chan_select(cs, 4, -1);
        ck_assert_int_ge(k, 0);
        if (k < 2) {
            dat[k] = in[k].dat;
            req[k] = NULL;
        } else {
            out[k - 2] = it[k - 2];
            dat[k - 2] = NULL;
        }
    }
}

static void copy_ps(ps in, ps out)
{
    for (;;) {
        long seq;
        chan_recv(out.req, &seq, sizeof seq, -1);
        rat r = get(in);
        chan_send(out.dat, &r, sizeof r, -1);
    }
}

/* Goroutine plumbing: each operator is a function of a small record. */
struct op {
    ps u, v, z;
    rat c;
    int n;
    chan_t *wait;
};

static struct op *op_new(ps u, ps v, ps z, rat c, int n)
{
    struct op *o = keep(malloc(sizeof *o));
    *o = (struct op){ u, v, z, c, n, NULL };
    return o;
}

static void go_op(void (*fn)(void *), struct op *o)
{
    ck_assert_int_eq(chan_go(fn, o), 0);
}

/* split: replicate one series onto two, read at different rates.  Each
 * generation serves one demand; see Go's dosplit for the dance. */
struct split {
    ps in;
    ps out[2];
    chan_t *wait;
};

static void dosplit(void *p)
{
    struct split *s = p;
    bool both = false;
    long seq, zero = 0;
    chan_case_t first[2] = { CHAN_CASE_RECV(s->out[0].req, &seq, sizeof seq),
                             CHAN_CASE_RECV(s->wait, &zero, sizeof zero) };
    if (chan_select(first, 2, -1) == 1) {
        both = true;
        chan_case_t second[2] = { CHAN_CASE_RECV(s->out[0].req, &seq, sizeof seq),
                                  CHAN_CASE_RECV(s->out[1].req, &seq, sizeof seq) };
        if (chan_select(second, 2, -1) == 1) {
            ps t = s->out[0];
            s->out[0] = s->out[1];
            s->out[1] = t;
        }
    }
    long sq = atomic_fetch_add(&seqno, 1);
    chan_send(s->in.req, &sq, sizeof sq, -1);
    struct split *next = keep(malloc(sizeof *next));
    *next = (struct split){ s->in, { s->out[0], s->out[1] }, keep(rt_make(0)) };
    chan_t *release = next->wait;
    ck_assert_int_eq(chan_go(dosplit, next), 0);
    rat dat;
    chan_recv(s->in.dat, &dat, sizeof dat, -1);
    chan_send(s->out[0].dat, &dat, sizeof dat, -1);
    if (!both)
        chan_recv(s->wait, &zero, sizeof zero, -1);
    chan_recv(s->out[1].req, &seq, sizeof seq, -1);
    chan_send(s->out[1].dat, &dat, sizeof dat, -1);
    chan_send(release, &zero, sizeof zero, -1);
}

static void split(ps in, ps out[2])
{
    struct split *s = keep(malloc(sizeof *s));
    *s = (struct split){ in, { out[0], out[1] }, keep(rt_make(0)) };
    chan_t *release = s->wait;
    ck_assert_int_eq(chan_go(dosplit, s), 0);
    long zero = 0;
    chan_send(release, &zero, sizeof zero, -1);
}

static void split_ps(ps u, ps out[2])
{
    out[0] = mkps();
    out[1] = mkps();
    split(u, out);
}

static void rep_main(void *p)
{
    struct op *o = p;
    for (;;)
        put(o->c, o->z);
}

static ps rep(rat c)
{
    ps z = mkps();
    go_op(rep_main, op_new(z, z, z, c, 0));
    return z;
}

static void add_main(void *p)
{
    struct op *o = p;
    for (;;) {
        long seq;
        rat uv[2];
        chan_recv(o->z.req, &seq, sizeof seq, -1);
        get2(o->u, o->v, uv);
        switch (end_r(uv[0]) + 2 * end_r(uv[1])) {
        case 0: {
            rat s = add_r(uv[0], uv[1]);
            chan_send(o->z.dat, &s, sizeof s, -1);
            break;
        }
        case 1:
            chan_send(o->z.dat, &uv[1], sizeof(rat), -1);
            copy_ps(o->v, o->z);
            break;
        case 2:
            chan_send(o->z.dat, &uv[0], sizeof(rat), -1);
            copy_ps(o->u, o->z);
            break;
        case 3:
            chan_send(o->z.dat, &finis, sizeof finis, -1);
            break;
        }
    }
}

static ps add_ps(ps u, ps v)
{
    ps z = mkps();
    go_op(add_main, op_new(u, v, z, zero_r, 0));
    return z;
}

static void cmul_main(void *p)
{
    struct op *o = p;
    for (;;) {
        long seq;
        chan_recv(o->z.req, &seq, sizeof seq, -1);
        rat u = get(o->u);
        if (end_r(u))
            break;
        rat m = mul_r(o->c, u);
        chan_send(o->z.dat, &m, sizeof m, -1);
    }
    chan_send(o->z.dat, &finis, sizeof finis, -1);
}

static ps cmul_ps(rat c, ps u)
{
    ps z = mkps();
    go_op(cmul_main, op_new(u, u, z, c, 0));
    return z;
}

static ps sub_ps(ps u, ps v)
{
    return add_ps(u, cmul_ps(neg_r(one_r), v));
}

/* U*V = u*v + x*(u*VV + v*UU) + x*x*UU*VV */
static ps mul_ps(ps u, ps v);

static void mul_main(void *p)
{
    struct op *o = p;
    long seq;
    rat uv[2];
    chan_recv(o->z.req, &seq, sizeof seq, -1);
    get2(o->u, o->v, uv);
    if (end_r(uv[0]) || end_r(uv[1])) {
        chan_send(o->z.dat, &finis, sizeof finis, -1);
        return;
    }
    rat m = mul_r(uv[0], uv[1]);
    chan_send(o->z.dat, &m, sizeof m, -1);
    ps uu[2], vv[2];
    split_ps(o->u, uu);
    split_ps(o->v, vv);
    ps w = add_ps(cmul_ps(uv[0], vv[0]), cmul_ps(uv[1], uu[0]));
    chan_recv(o->z.req, &seq, sizeof seq, -1);
    rat r = get(w);
    chan_send(o->z.dat, &r, sizeof r, -1);
    copy_ps(add_ps(w, mul_ps(uu[1], vv[1])), o->z);
}

static ps mul_ps(ps u, ps v)
{
    ps z = mkps();
    go_op(mul_main, op_new(u, v, z, zero_r, 0));
    return z;
}

static void diff_main(void *p)
{
    struct op *o = p;
    long seq;
    chan_recv(o->z.req, &seq, sizeof seq, -1);
    rat u = get(o->u);
    if (!end_r(u)) {
        for (int64_t i = 1;; i++) {
            u = get(o->u);
            if (end_r(u))
                break;
            rat m = mul_r(itor(i), u);
            chan_send(o->z.dat, &m, sizeof m, -1);
            chan_recv(o->z.req, &seq, sizeof seq, -1);
        }
    }
    chan_send(o->z.dat, &finis, sizeof finis, -1);
}

static ps diff_ps(ps u)
{
    ps z = mkps();
    go_op(diff_main, op_new(u, u, z, zero_r, 0));
    return z;
}

static void integ_main(void *p)
{
    struct op *o = p;
    put(o->c, o->z);
    for (int64_t i = 1;; i++) {
        long seq;
        chan_recv(o->z.req, &seq, sizeof seq, -1);
        rat u = get(o->u);
        if (end_r(u))
            break;
        rat m = mul_r(i2tor(1, i), u);
        chan_send(o->z.dat, &m, sizeof m, -1);
    }
    chan_send(o->z.dat, &finis, sizeof finis, -1);
}

static ps integ_ps(rat c, ps u)
{
    ps z = mkps();
    go_op(integ_main, op_new(u, u, z, c, 0));
    return z;
}

/* exp(U): Z = integral of Z * U', with Z(0) = 1 */
static ps exp_ps(ps u)
{
    ps zz[2] = { mkps(), mkps() };
    split(integ_ps(one_r, mul_ps(zz[0], diff_ps(u))), zz);
    return zz[1];
}

/* U(c x^n): each coefficient times c^i, followed by n-1 zeros */
static void monsubst_main(void *p)
{
    struct op *o = p;
    rat c = one_r;
    for (;;) {
        long seq;
        chan_recv(o->z.req, &seq, sizeof seq, -1);
        rat u = get(o->u);
        rat m = mul_r(u, c);
        chan_send(o->z.dat, &m, sizeof m, -1);
        c = mul_r(c, o->c);
        if (end_r(u)) {
            chan_send(o->z.dat, &finis, sizeof finis, -1);
            return;
        }
        for (int i = 1; i < o->n; i++) {
            chan_recv(o->z.req, &seq, sizeof seq, -1);
            chan_send(o->z.dat, &zero_r, sizeof zero_r, -1);
        }
    }
}

static ps monsubst_ps(ps u, rat c0, int n)
{
    ps z = mkps();
    go_op(monsubst_main, op_new(u, u, z, c0, n));
    return z;
}

static void check_ps(ps u, rat c, int count, const char *what)
{
    for (int i = 0; i < count; i++) {
        rat r = get(u);
        ck_assert_msg(r.num == c.num && r.den == c.den, "%s: got %lld/%lld, want %lld/%lld", what,
                      (long long)r.num, (long long)r.den, (long long)c.num, (long long)c.den);
    }
}

static void checka(ps u, const rat *a, const char *what)
{
    for (int i = 0; i < 10; i++)
        check_ps(u, a[i], 1, what);
}

static void powser_main(void *p)
{
    (void)p;
    ps ones = rep(one_r), twos = rep(itor(2));
    rat a[10];
    check_ps(ones, one_r, 5, "Ones");
    check_ps(add_ps(ones, ones), itor(2), 10, "Add Ones Ones");
    check_ps(add_ps(ones, twos), itor(3), 10, "Add Ones Twos");
    for (int i = 0; i < 10; i++)
        a[i] = itor(i + 1);
    checka(diff_ps(ones), a, "Diff");
    a[0] = zero_r;
    for (int i = 1; i < 10; i++)
        a[i] = i2tor(1, i);
    checka(integ_ps(zero_r, ones), a, "Integ");
    check_ps(cmul_ps(neg_r(one_r), twos), itor(-2), 10, "CMul");
    check_ps(sub_ps(ones, twos), itor(-1), 10, "Sub Ones Twos");
    for (int i = 0; i < 10; i++)
        a[i] = itor(i + 1);
    checka(mul_ps(ones, ones), a, "Mul");
    rat e[10] = { itor(1), itor(1), i2tor(3, 2), i2tor(13, 6), i2tor(73, 24), i2tor(167, 40),
                  i2tor(4051, 720), i2tor(37633, 5040), i2tor(43817, 4480),
                  i2tor(4596553, 362880) };
    checka(exp_ps(ones), e, "Exp");
    for (int c = 1, i = 0; i < 10; i++) {
        if (i % 2 == 0) {
            a[i] = zero_r;
        } else {
            a[i] = i2tor(c, i);
            c = -c;
        }
    }
    checka(integ_ps(zero_r, monsubst_ps(ones, neg_r(one_r), 2)), a, "ATan");
}

START_TEST(powser1)
{
    rt_run(MODE_GOROUTINE, powser_main, NULL);
}
END_TEST

static Suite *goports_suite(void)
{
    Suite *s = suite_create("goports");
    TCase *tc = tcase_create("test/chan");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, doubleselect);
    tcase_add_test(tc, fifo_async);
    tcase_add_loop_test(tc, fifo_sync, 0, MODES);
    tcase_add_loop_test(tc, nonblock, 0, MODES);
    tcase_add_test(tc, select3);
    tcase_add_loop_test(tc, select6, 0, MODES);
    tcase_add_loop_test(tc, sieve1, 0, MODES);
    tcase_add_test(tc, powser1);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return rt_main(goports_suite);
}

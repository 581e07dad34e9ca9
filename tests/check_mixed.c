/*
 * check_mixed.c - one channel API for local and remote: selects across two
 * daemons and local channels, goroutines on remote channels, connection
 * loss and reconnection.  Real chand processes on ephemeral ports.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chan/chan.h"
#include "chand_fixture.h"

static chand_proc_t DA, DB;

static void daemons_up(void)
{
    if (chand_start(&DA, NULL) < 0 || chand_start(&DB, NULL) < 0)
        abort();
}

static void daemons_down(void)
{
    chand_stop(&DA);
    chand_stop(&DB);
}

static chan_client_t *dial(const chand_proc_t *d)
{
    chan_client_t *cl = chan_connect(d->addr, NULL, chan_now() + 5000);
    ck_assert_msg(cl, "connect %s: %s", d->addr, strerror(errno));
    return cl;
}

static chan_t *open_ch(chan_client_t *cl, const char *name, long cap)
{
    chan_t *ch = chan_open(cl, name, cap, 0, chan_now() + 5000);
    ck_assert_msg(ch, "open %s: %s", name, strerror(errno));
    return ch;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

struct delayed {
    chan_t *ch;
    const char *val;
    long ms;
};

static void *send_later(void *arg)
{
    struct delayed *d = arg;
    sleep_ms(d->ms);
    ck_assert_int_eq(chan_send(d->ch, d->val, strlen(d->val), -1), 0);
    return NULL;
}

/* ---- receive cases on a local channel and on two daemons ---- */

START_TEST(t_mixed_recv)
{
    chan_client_t *a = dial(&DA), *b = dial(&DB);
    chan_t *ra = open_ch(a, "mr-a", 0), *rb = open_ch(b, "mr-b", 0), *loc = chan_make(0);
    char ba[16], bb[16], bl[16];
    chan_case_t cs[3] = { CHAN_CASE_RECV(ra, ba, sizeof ba), CHAN_CASE_RECV(rb, bb, sizeof bb),
                          CHAN_CASE_RECV(loc, bl, sizeof bl) };
    ck_assert_int_eq(chan_select(cs, 3, 0), -1);              /* default: nothing ready */
    ck_assert_int_eq(errno, ETIMEDOUT);
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_select(cs, 3, t0 + 100), -1);       /* deadline */
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(chan_now() - t0, 100);
    chan_t *targets[3] = { ra, rb, loc };
    const char *vals[3] = { "from-a", "from-b", "local" };
    for (int round = 0; round < 6; round++) {
        int k = round % 3;
        struct delayed d = { targets[k], vals[k], 30 };
        pthread_t t;
        pthread_create(&t, NULL, send_later, &d);
        int i = chan_select(cs, 3, chan_now() + 5000);
        ck_assert_int_eq(i, k);
        ck_assert_int_eq(cs[i].err, 0);
        ck_assert_uint_eq(cs[i].n, strlen(vals[k]));
        ck_assert(memcmp(cs[i].buf, vals[k], cs[i].n) == 0);
        pthread_join(t, NULL);                               /* the sender returned: taken */
    }
    /* nothing was left behind on the losing daemons */
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(a, "mr-a", &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.receivers + st.senders + st.inflight, 0);
    ck_assert_int_eq(chan_stat(b, "mr-b", &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.receivers + st.senders + st.inflight, 0);
    chan_release(ra);
    chan_release(rb);
    chan_release(loc);
    chan_disconnect(a);
    chan_disconnect(b);
}
END_TEST

/* ---- send cases: the one that proceeds takes effect, the others not ---- */

struct recv8 {
    chan_t *ch;
    char *buf;
    ssize_t n;
};

static void *recv8(void *arg)
{
    struct recv8 *r = arg;
    r->n = chan_recv(r->ch, r->buf, 8, chan_now() + 5000);
    return NULL;
}

START_TEST(t_mixed_send)
{
    chan_client_t *a = dial(&DA), *b = dial(&DB);
    chan_t *sa = open_ch(a, "ms-a", 1), *sb = open_ch(b, "ms-b", 0), *loc = chan_make(0);
    chan_case_t cs[3] = { CHAN_CASE_SEND(sa, "to-a", 4), CHAN_CASE_SEND(sb, "to-b", 4),
                          CHAN_CASE_SEND(loc, "to-l", 4) };
    /* only a has room: it wins, at once */
    ck_assert_int_eq(chan_select(cs, 3, -1), 0);
    /* now nothing has room or a receiver */
    ck_assert_int_eq(chan_select(cs, 3, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(b, "ms-b", &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.senders, 0);                          /* released, not left waiting */
    /* a receiver on b: the select sends there */
    char buf[8];
    struct recv8 r = { sb, buf, 0 };
    pthread_t t;
    pthread_create(&t, NULL, recv8, &r);
    ck_assert_int_eq(chan_select(cs, 3, chan_now() + 5000), 1);
    pthread_join(t, NULL);
    ck_assert_int_eq(r.n, 4);
    ck_assert(memcmp(buf, "to-b", 4) == 0);
    /* exactly one: a still holds only its first value */
    ck_assert_int_eq(chan_stat(a, "ms-a", &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.len, 1);
    ck_assert_int_eq(chan_recv(sa, buf, sizeof buf, 0), 4);
    ck_assert_int_eq(chan_recv(loc, buf, sizeof buf, 0), -1);   /* nothing went local */
    chan_release(sa);
    chan_release(sb);
    chan_release(loc);
    chan_disconnect(a);
    chan_disconnect(b);
}
END_TEST

/* ---- a timer in the same select ---- */

START_TEST(t_mixed_timer)
{
    chan_client_t *a = dial(&DA);
    chan_t *ra = open_ch(a, "mt-a", 0);
    chan_t *timer = chan_after(50);
    char buf[16];
    int64_t fired;
    chan_case_t cs[2] = { CHAN_CASE_RECV(ra, buf, sizeof buf), CHAN_CASE_RECV(timer, &fired, sizeof fired) };
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_select(cs, 2, -1), 1);               /* time.After wins */
    ck_assert_int_ge(chan_now() - t0, 50);
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(a, "mt-a", &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.receivers, 0);                         /* the remote case was cancelled */
    chan_release(timer);
    chan_release(ra);
    chan_disconnect(a);
}
END_TEST

/* ---- released reservations keep FIFO order ---- */

struct feeder {
    chan_t *ch;
    atomic_int stop;
};

static void *feed_noise(void *arg)
{
    struct feeder *f = arg;
    while (!atomic_load(&f->stop))
        chan_send(f->ch, "noise", 5, chan_now() + 100);
    return NULL;
}

START_TEST(t_release_keeps_fifo)
{
    /* Values 0..N-1 wait in channels on both daemons; a local channel is
     * kept busy by a feeder.  Every select reserves on both daemons and
     * keeps one; the released values go back to their heads.  A single
     * reader must see each daemon's values in order, every one once. */
    enum { N = 400 };
    chan_client_t *a = dial(&DA), *b = dial(&DB);
    chan_t *qa = open_ch(a, "fifo-a", N), *qb = open_ch(b, "fifo-b", N), *noise = chan_make(0);
    for (uint32_t i = 0; i < N; i++) {
        ck_assert_int_eq(chan_send(qa, &i, sizeof i, -1), 0);
        ck_assert_int_eq(chan_send(qb, &i, sizeof i, -1), 0);
    }
    struct feeder f = { noise, 0 };
    pthread_t t;
    pthread_create(&t, NULL, feed_noise, &f);
    uint32_t next[2] = { 0, 0 }, va, vb;
    char nb[8];
    int noise_wins = 0;
    while (next[0] < N || next[1] < N) {
        chan_case_t cs[3] = { CHAN_CASE_RECV(next[0] < N ? qa : NULL, &va, sizeof va),
                              CHAN_CASE_RECV(next[1] < N ? qb : NULL, &vb, sizeof vb),
                              CHAN_CASE_RECV(noise, nb, sizeof nb) };
        int i = chan_select(cs, 3, chan_now() + 5000);
        ck_assert_int_ge(i, 0);
        if (i == 2) {
            noise_wins++;
            continue;
        }
        uint32_t v = i == 0 ? va : vb;
        ck_assert_msg(v == next[i], "daemon %c: got %u, expected %u", 'a' + i, v, next[i]);
        next[i]++;
    }
    atomic_store(&f.stop, 1);
    pthread_join(t, NULL);
    ck_assert_int_gt(noise_wins, 0);
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(a, "fifo-a", &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.len + st.inflight + st.receivers, 0);
    ck_assert_int_eq(chan_stat(b, "fifo-b", &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.len + st.inflight + st.receivers, 0);
    chan_release(qa);
    chan_release(qb);
    chan_release(noise);
    chan_disconnect(a);
    chan_disconnect(b);
}
END_TEST

/* ---- conservation: selects over two daemons and a local channel ---- */

enum { SELECTORS = 8, PRODUCERS = 8, VALUES = 100000 };

struct cons {
    chan_t *in[3];            /* daemon a, daemon b, local */
    chan_t *out[3];
    _Atomic unsigned char seen[VALUES];
    atomic_long got;
    atomic_int errors;
    chan_wg_t *wg;
};

struct cons_arg {
    struct cons *c;
    int id;
};

static void cons_producer(void *arg)
{
    struct cons_arg *p = arg;
    struct cons *c = p->c;
    for (uint32_t v = (uint32_t)p->id; v < VALUES; v += PRODUCERS) {
        chan_t *to = c->in[v % 3];
        if (chan_send(to, &v, sizeof v, -1) < 0)
            atomic_fetch_add(&c->errors, 1);
    }
    chan_wg_done(c->wg);
}

static void cons_selector(void *arg)
{
    struct cons_arg *p = arg;
    struct cons *c = p->c;
    while (atomic_load(&c->got) < VALUES) {
        uint32_t v[3];
        chan_case_t cs[3];
        for (int k = 0; k < 3; k++)
            cs[k] = CHAN_CASE_RECV(c->out[k], &v[k], sizeof v[k]);
        int i = chan_select(cs, 3, chan_now() + 200);
        if (i < 0) {
            if (errno != ETIMEDOUT)
                atomic_fetch_add(&c->errors, 1);
            continue;
        }
        if (cs[i].err || cs[i].n != sizeof(uint32_t) || v[i] >= VALUES) {
            atomic_fetch_add(&c->errors, 1);
            continue;
        }
        atomic_fetch_add(&c->seen[v[i]], 1);
        atomic_fetch_add(&c->got, 1);
    }
    chan_wg_done(c->wg);
}

START_TEST(t_conservation_goroutines)
{
    chan_client_t *pa = dial(&DA), *pb = dial(&DB), *ca = dial(&DA), *cb = dial(&DB);
    struct cons *c = calloc(1, sizeof *c);
    chan_t *loc = chan_make(16);
    c->in[0] = open_ch(pa, "cons-a", 16);
    c->in[1] = open_ch(pb, "cons-b", 0);
    c->in[2] = loc;
    c->out[0] = open_ch(ca, "cons-a", 16);
    c->out[1] = open_ch(cb, "cons-b", 0);
    c->out[2] = chan_retain(loc);
    c->wg = chan_wg_make();
    struct cons_arg args[SELECTORS + PRODUCERS];
    chan_wg_add(c->wg, SELECTORS + PRODUCERS);
    for (int i = 0; i < SELECTORS; i++) {
        args[i] = (struct cons_arg){ c, i };
        ck_assert_int_eq(chan_go(cons_selector, &args[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        args[SELECTORS + i] = (struct cons_arg){ c, i };
        ck_assert_int_eq(chan_go(cons_producer, &args[SELECTORS + i]), 0);
    }
    ck_assert_int_eq(chan_wg_wait(c->wg, chan_now() + 120000), 0);
    ck_assert_int_eq(atomic_load(&c->errors), 0);
    ck_assert_int_eq(atomic_load(&c->got), VALUES);
    for (long i = 0; i < VALUES; i++)
        ck_assert_msg(atomic_load(&c->seen[i]) == 1, "value %ld seen %d times", i,
                      atomic_load(&c->seen[i]));
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(ca, "cons-a", &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.len + st.inflight + st.senders, 0);
    ck_assert_int_eq(chan_stat(cb, "cons-b", &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.len + st.inflight + st.senders, 0);
    for (int k = 0; k < 3; k++) {
        chan_release(c->in[k]);
        chan_release(c->out[k]);
    }
    chan_wg_free(c->wg);
    free(c);
    chan_disconnect(pa);
    chan_disconnect(pb);
    chan_disconnect(ca);
    chan_disconnect(cb);
}
END_TEST

/* ---- 10,000 goroutines blocked on remote receives, one connection ---- */

enum { BLOCKED = 10000 };

struct blocked {
    chan_t *ch;
    _Atomic unsigned char seen[BLOCKED];
    atomic_int errors;
    chan_wg_t *wg;
};

static void blocked_recv(void *arg)
{
    struct blocked *b = arg;
    uint32_t v;
    if (chan_recv(b->ch, &v, sizeof v, chan_now() + 60000) != sizeof v || v >= BLOCKED)
        atomic_fetch_add(&b->errors, 1);
    else
        atomic_fetch_add(&b->seen[v], 1);
    chan_wg_done(b->wg);
}

START_TEST(t_ten_thousand_goroutines)
{
    chan_client_t *rc = dial(&DA), *sc = dial(&DA);
    struct blocked *b = calloc(1, sizeof *b);
    b->ch = open_ch(rc, "ten-k", 0);
    b->wg = chan_wg_make();
    chan_wg_add(b->wg, BLOCKED);
    for (int i = 0; i < BLOCKED; i++)
        ck_assert_int_eq(chan_go(blocked_recv, b), 0);
    /* all of them blocked in chand at once, no thread each */
    chan_stat_t st = { 0 };
    for (int i = 0; i < 1000 && st.receivers < BLOCKED; i++) {
        ck_assert_int_eq(chan_stat(sc, "ten-k", &st, chan_now() + 5000), 0);
        if (st.receivers < BLOCKED)
            sleep_ms(10);
    }
    ck_assert_uint_eq(st.receivers, BLOCKED);
    chan_t *out = open_ch(sc, "ten-k", 0);
    chan_val_t v[BLOCKED];
    static uint32_t nums[BLOCKED];
    for (uint32_t i = 0; i < BLOCKED; i++) {
        nums[i] = i;
        v[i] = (chan_val_t){ .data = &nums[i], .len = sizeof nums[i] };
    }
    ck_assert_int_eq(chan_send_many(out, v, BLOCKED, chan_now() + 60000), BLOCKED);
    ck_assert_int_eq(chan_wg_wait(b->wg, chan_now() + 60000), 0);
    ck_assert_int_eq(atomic_load(&b->errors), 0);
    for (int i = 0; i < BLOCKED; i++)
        ck_assert_int_eq(atomic_load(&b->seen[i]), 1);
    chan_release(out);
    chan_release(b->ch);
    chan_wg_free(b->wg);
    free(b);
    chan_disconnect(rc);
    chan_disconnect(sc);
}
END_TEST

/* ---- connection loss ---- */

struct pending_recv {
    chan_t *ch;
    ssize_t rc;
    int err;
};

static void *recv_forever(void *arg)
{
    struct pending_recv *p = arg;
    char buf[16];
    p->rc = chan_recv(p->ch, buf, sizeof buf, -1);
    p->err = errno;
    return NULL;
}

START_TEST(t_connection_loss_and_reconnect)
{
    chand_proc_t d;
    ck_assert_int_eq(chand_start(&d, NULL), 0);
    chan_client_t *cl = dial(&d);
    chan_t *ch = open_ch(cl, "lossy", 4);
    struct pending_recv p = { ch, 0, 0 };
    pthread_t t;
    pthread_create(&t, NULL, recv_forever, &p);
    chan_stat_t st = { 0 };
    for (int i = 0; i < 500 && !st.receivers; i++) {
        chan_stat(cl, "lossy", &st, chan_now() + 5000);
        if (!st.receivers)
            sleep_ms(10);
    }
    kill(d.pid, SIGKILL);                                     /* the daemon dies */
    pthread_join(t, NULL);
    ck_assert_int_eq(p.rc, -1);
    ck_assert_int_eq(p.err, ECONNRESET);                      /* in flight: ECONNRESET */
    ck_assert_int_eq(chan_send(ch, "x", 1, chan_now() + 1000), -1);
    ck_assert_int_eq(errno, ECONNRESET);                      /* nobody to dial */
    /* a new daemon on the same port: the next operation reconnects (after
     * the backoff, which a failed dial has started) */
    char listen[64], port[16];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", d.port);
    snprintf(port, sizeof port, "%d", d.port);
    waitpid(d.pid, NULL, 0);
    d.pid = 0;
    chand_stop(&d);
    chand_proc_t d2;
    const char *args[] = { "--listen", listen, NULL };
    ck_assert_int_eq(chand_start(&d2, args), 0);
    int ok = -1;
    for (int i = 0; i < 100 && ok < 0; i++) {
        ok = chan_ping(cl, chan_now() + 1000);
        if (ok < 0)
            sleep_ms(50);
    }
    ck_assert_int_eq(ok, 0);
    /* the channel is gone with the old daemon: the handle's name makes it anew */
    chan_t *again = open_ch(cl, "lossy", 4);
    ck_assert_int_eq(chan_send(again, "y", 1, -1), 0);
    char buf[4];
    ck_assert_int_eq(chan_recv(ch, buf, sizeof buf, chan_now() + 5000), 1);
    chan_release(again);
    chan_release(ch);
    chan_disconnect(cl);
    chand_stop(&d2);
}
END_TEST

START_TEST(t_select_survives_a_lost_daemon)
{
    chand_proc_t d;
    ck_assert_int_eq(chand_start(&d, NULL), 0);
    chan_client_t *doomed = dial(&d), *live = dial(&DA);
    chan_t *x = open_ch(doomed, "goner", 0), *y = open_ch(live, "survivor", 0);
    char bx[8], by[8];
    struct delayed dl = { y, "alive", 300 };
    pthread_t t;
    pthread_create(&t, NULL, send_later, &dl);
    sleep_ms(50);
    kill(d.pid, SIGKILL);                                     /* mid-select, one side dies */
    chan_case_t cs[2] = { CHAN_CASE_RECV(x, bx, sizeof bx), CHAN_CASE_RECV(y, by, sizeof by) };
    int i = chan_select(cs, 2, chan_now() + 5000);
    ck_assert_int_eq(i, 1);
    ck_assert(memcmp(by, "alive", 5) == 0);
    pthread_join(t, NULL);
    /* with no live source left, the select says why */
    chan_case_t only[1] = { CHAN_CASE_RECV(x, bx, sizeof bx) };
    chan_t *loc = chan_make(0);
    chan_case_t two[2] = { CHAN_CASE_RECV(x, bx, sizeof bx), CHAN_CASE_RECV(loc, by, sizeof by) };
    ck_assert_int_eq(chan_select(two, 2, chan_now() + 100), -1);  /* local still waits: timeout */
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_eq(chan_select(only, 1, chan_now() + 5000), -1);
    ck_assert_int_eq(errno, ECONNRESET);
    chan_release(loc);
    chan_release(x);
    chan_release(y);
    chan_disconnect(doomed);
    chan_disconnect(live);
    waitpid(d.pid, NULL, 0);
    d.pid = 0;
    chand_stop(&d);
}
END_TEST

static Suite *mixed_suite(void)
{
    Suite *s = suite_create("mixed");
    TCase *tc = tcase_create("select");
    tcase_add_unchecked_fixture(tc, daemons_up, daemons_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_mixed_recv);
    tcase_add_test(tc, t_mixed_send);
    tcase_add_test(tc, t_mixed_timer);
    tcase_add_test(tc, t_release_keeps_fifo);
    tcase_add_test(tc, t_conservation_goroutines);
    tcase_add_test(tc, t_ten_thousand_goroutines);
    tcase_add_test(tc, t_select_survives_a_lost_daemon);
    tcase_add_test(tc, t_connection_loss_and_reconnect);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(mixed_suite());
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}

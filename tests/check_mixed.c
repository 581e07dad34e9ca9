/*
 * check_mixed.c - one channel API for local and remote: selects across two
 * daemons and local channels, goroutines on remote channels, connection
 * loss and reconnection.  Real chand processes on ephemeral ports.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
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
#include "test_size.h"

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

struct delayed {
    chan_t *ch;
    const char *val;
    long ms;
};

static void *send_later(void *arg)
{
    struct delayed *d = arg;
    chand_sleep_ms(d->ms);
    ck_assert_int_eq(chan_send(d->ch, d->val, strlen(d->val), -1), 0);
    return NULL;
}

/* ---- receive cases on a local channel and on two daemons ---- */

START_TEST(t_mixed_recv)
{
    chan_client_t *a = chand_dial(&DA), *b = chand_dial(&DB);
    chan_t *ra = chand_open_ch(a, "mr-a", 0), *rb = chand_open_ch(b, "mr-b", 0), *loc = chan_make(0);
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
    chan_client_t *a = chand_dial(&DA), *b = chand_dial(&DB);
    chan_t *sa = chand_open_ch(a, "ms-a", 1), *sb = chand_open_ch(b, "ms-b", 0), *loc = chan_make(0);
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

/* ---- EMSGSIZE in a select across sources: the value's length ---- */

START_TEST(t_mixed_emsgsize_gives_length)
{
    chan_client_t *a = chand_dial(&DA), *b = chand_dial(&DB);
    chan_t *big = chand_open_ch(a, "me-big", 1), *none = chand_open_ch(b, "me-none", 0), *loc = chan_make(0);
    char msg[40] = "a value longer than four bytes", small[4], buf[64];
    ck_assert_int_eq(chan_send(big, msg, sizeof msg, 0), 0);
    chan_case_t cs[3] = { CHAN_CASE_RECV(loc, buf, sizeof buf), CHAN_CASE_RECV(none, buf, sizeof buf),
                          CHAN_CASE_RECV(big, small, sizeof small) };
    ck_assert_int_eq(chan_select(cs, 3, chan_now() + 5000), 2);
    ck_assert_int_eq(cs[2].err, EMSGSIZE);
    ck_assert_uint_eq(cs[2].n, sizeof msg);
    ck_assert_int_eq(chan_recv(big, buf, cs[2].n, 0), (ssize_t)sizeof msg);
    ck_assert_str_eq(buf, msg);
    chan_release(big);
    chan_release(none);
    chan_release(loc);
    chan_disconnect(a);
    chan_disconnect(b);
}
END_TEST

/* ---- two selects that cross over two daemons ---- */

/* S offers on c and waits on o; R offers on o and waits on c, with c on
 * daemon A and o on daemon B.  S waits on both daemons when R comes.  R
 * names o first, so its request reaches B before its request to A has
 * made anything happen for S. */
struct crossed {
    chan_t *c, *o;
    bool sender;             /* S: send c, recv o; R: send o, recv c */
    int64_t deadline;
    chan_wg_t *wg;           /* crossed_go: done when it returns */
    int rc, err;
    long got;
};

static void *crossed_select(void *arg)
{
    struct crossed *x = arg;
    long mine = x->sender ? 1 : 2;
    chan_case_t cs[2];
    if (x->sender) {
        cs[0] = (chan_case_t)CHAN_CASE_SEND(x->c, &mine, sizeof mine);
        cs[1] = (chan_case_t)CHAN_CASE_RECV(x->o, &x->got, sizeof x->got);
    } else {
        cs[0] = (chan_case_t)CHAN_CASE_SEND(x->o, &mine, sizeof mine);
        cs[1] = (chan_case_t)CHAN_CASE_RECV(x->c, &x->got, sizeof x->got);
    }
    x->rc = chan_select(cs, 2, x->deadline);
    x->err = errno;
    return NULL;
}

static void wait_blocked(chan_client_t *cl, const char *name, bool sender)
{
    chan_stat_t st = { 0 };
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(chan_stat(cl, name, &st, chan_now() + 5000), 0);
        if ((sender ? st.senders : st.receivers) == 1)
            return;
        chand_sleep_ms(5);
    }
    ck_abort_msg("%s: no blocked %s", name, sender ? "sender" : "receiver");
}

/* Run S and R with deadline `ms` from now; both must have returned within
 * a generous guard past it.  Afterwards nothing is left behind in chand. */
static void crossed_run(const char *cname, const char *oname, long ms, struct crossed *s,
                        struct crossed *r)
{
    chan_client_t *a = chand_dial(&DA), *b = chand_dial(&DB);
    chan_t *c = chand_open_ch(a, cname, 0), *o = chand_open_ch(b, oname, 0);
    int64_t deadline = chan_now() + ms;
    *s = (struct crossed){ .c = c, .o = o, .sender = true, .deadline = deadline };
    *r = (struct crossed){ .c = c, .o = o, .sender = false, .deadline = deadline };
    pthread_t ts, tr;
    pthread_create(&ts, NULL, crossed_select, s);
    wait_blocked(a, cname, true);
    wait_blocked(b, oname, false);
    pthread_create(&tr, NULL, crossed_select, r);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000 + 20;
    ck_assert_msg(pthread_timedjoin_np(ts, NULL, &until) == 0, "the sending select hangs");
    ck_assert_msg(pthread_timedjoin_np(tr, NULL, &until) == 0, "the receiving select hangs");
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(a, cname, &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.len + st.senders + st.receivers + st.inflight, 0);
    ck_assert_int_eq(chan_stat(b, oname, &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.len + st.senders + st.receivers + st.inflight, 0);
    chan_release(c);
    chan_release(o);
    chan_disconnect(a);
    chan_disconnect(b);
}

/* One rendezvous: on c (S's case 0, R's case 1, R gets 1) or on o (S's
 * case 1, R's case 0, S gets 2). */
static void assert_rendezvous(const struct crossed *s, const struct crossed *r)
{
    ck_assert_msg(s->rc >= 0 && r->rc >= 0 && s->rc + r->rc == 1, "S chose %d (%s), R chose %d (%s)",
                  s->rc, s->rc < 0 ? strerror(s->err) : "ok", r->rc,
                  r->rc < 0 ? strerror(r->err) : "ok");
    if (s->rc == 0)
        ck_assert_int_eq(r->got, 1);
    else
        ck_assert_int_eq(s->got, 2);
}

/* Go makes one of the two rendezvous happen at once, and so must we.
 * Each daemon sees a different pair of the two selects meet (A: S's send
 * and R's receive; B: R's send and S's receive).  Before priorities, each
 * daemon asked its sender first, S and R each won their own reservation,
 * and each commit found its receiver gone: both timed out. */
START_TEST(t_crossed_selects_rendezvous)
{
    struct crossed s, r;
    crossed_run("xcross-c", "xcross-o", 10000, &s, &r);
    assert_rendezvous(&s, &r);
}
END_TEST

/* The same crossing with no staging, many times: S and R start together,
 * from goroutines or threads, and every round makes exactly one rendezvous
 * well before the deadline. */
static void crossed_go(void *arg)
{
    crossed_select(arg);
    chan_wg_done(((struct crossed *)arg)->wg);
}

START_TEST(t_crossed_selects_race)
{
    chan_client_t *a = chand_dial(&DA), *b = chand_dial(&DB);
    chan_t *c = chand_open_ch(a, "race-c", 0), *o = chand_open_ch(b, "race-o", 0);
    for (int round = 0; round < 200; round++) {
        int64_t deadline = chan_now() + 30000;
        chan_wg_t *wg = chan_wg_make();
        struct crossed s = { .c = c, .o = o, .sender = true, .deadline = deadline, .wg = wg };
        struct crossed r = { .c = c, .o = o, .sender = false, .deadline = deadline, .wg = wg };
        if (round % 2) {
            chan_wg_add(wg, 2);
            ck_assert_int_eq(chan_go(crossed_go, &s), 0);
            ck_assert_int_eq(chan_go(crossed_go, &r), 0);
        } else {
            pthread_t ts, tr;
            pthread_create(&ts, NULL, crossed_select, &s);
            pthread_create(&tr, NULL, crossed_select, &r);
            pthread_join(ts, NULL);
            pthread_join(tr, NULL);
        }
        ck_assert_int_eq(chan_wg_wait(wg, -1), 0);
        chan_wg_free(wg);
        assert_rendezvous(&s, &r);
    }
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(a, "race-c", &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.len + st.senders + st.receivers + st.inflight, 0);
    ck_assert_int_eq(chan_stat(b, "race-o", &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.len + st.senders + st.receivers + st.inflight, 0);
    chan_release(c);
    chan_release(o);
    chan_disconnect(a);
    chan_disconnect(b);
}
END_TEST

/* Processes forked from one draw their priorities from copies of one
 * generator.  Each priority must still be its select's own: two selects
 * with one priority would be taken for one select and never meet.  S runs
 * in a child, R in the parent, right after the fork. */
static int crossed_in_process(struct crossed *x, bool sender)
{
    chan_client_t *a = chan_connect(DA.addr, NULL, chan_now() + 5000);
    chan_client_t *b = chan_connect(DB.addr, NULL, chan_now() + 5000);
    if (!a || !b)
        return 1;
    chan_t *c = chan_open(a, "fork-c", 0, 0, chan_now() + 5000);
    chan_t *o = chan_open(b, "fork-o", 0, 0, chan_now() + 5000);
    if (!c || !o)
        return 1;
    *x = (struct crossed){ .c = c, .o = o, .sender = sender, .deadline = chan_now() + 10000 };
    crossed_select(x);
    chan_release(c);
    chan_release(o);
    chan_disconnect(a);
    chan_disconnect(b);
    return 0;
}

START_TEST(t_crossed_selects_after_fork)
{
    chan_t *l1 = chan_make(1), *l2 = chan_make(1);
    chan_case_t warm[2] = { CHAN_CASE_SEND(l1, "x", 1), CHAN_CASE_SEND(l2, "y", 1) };
    ck_assert_int_ge(chan_select(warm, 2, 0), 0);   /* this thread's generator is seeded */
    chan_release(l1);
    chan_release(l2);
    struct crossed *sh = mmap(NULL, 2 * sizeof *sh, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(sh, MAP_FAILED);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(crossed_in_process(&sh[0], true));
    ck_assert_int_eq(crossed_in_process(&sh[1], false), 0);
    int st;
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    assert_rendezvous(&sh[0], &sh[1]);
    munmap(sh, 2 * sizeof *sh);
}
END_TEST

/* A select whose other case is always ready still receives from a sender
 * that is itself blocked in a select across places (Go: each ready case is
 * equally likely).  The sender's select holds no value anyone could see
 * until it commits, so the look must lead it; before, it never did. */
struct blocked_sender {
    chan_t *x, *never;
    atomic_int stop;
    long sent;
};

static void *select_sender(void *arg)
{
    struct blocked_sender *b = arg;
    while (!atomic_load(&b->stop)) {
        long v = b->sent + 1, dummy;
        chan_case_t cs[2] = { CHAN_CASE_SEND(b->x, &v, sizeof v),
                              CHAN_CASE_RECV(b->never, &dummy, sizeof dummy) };
        int k = chan_select(cs, 2, chan_now() + 200);
        if (k == 0)
            b->sent++;
    }
    return NULL;
}

START_TEST(t_look_meets_a_selecting_sender)
{
    chan_client_t *a = chand_dial(&DA);
    chan_t *x = chand_open_ch(a, "look-x", 0);
    struct blocked_sender b = { .x = x, .never = chan_make(0) };
    chan_t *ready = chan_make(1);
    pthread_t t;
    pthread_create(&t, NULL, select_sender, &b);
    long from_x = 0, got = 0;
    for (int trial = 0; trial < 400 && from_x < 20; trial++) {
        long one = 1, v = 0;
        chan_send(ready, &one, sizeof one, 0);             /* always ready */
        chan_case_t cs[2] = { CHAN_CASE_RECV(x, &v, sizeof v),
                              CHAN_CASE_RECV(ready, &got, sizeof got) };
        int k = chan_select(cs, 2, chan_now() + 5000);
        ck_assert(k == 0 || k == 1);
        if (k == 0) {
            from_x++;
            ck_assert_int_eq(v, from_x);                   /* in order, none lost */
        }
        chand_sleep_ms(1);                                       /* let the sender wait again */
    }
    atomic_store(&b.stop, 1);
    pthread_join(t, NULL);
    ck_assert_msg(from_x >= 20, "the selecting sender was heard %ld times", from_x);
    ck_assert_int_eq(b.sent, from_x);                     /* exactly once each */
    chan_release(ready);
    chan_release(b.never);
    chan_release(x);
    chan_disconnect(a);
}
END_TEST

/* ---- a timer in the same select ---- */

START_TEST(t_mixed_timer)
{
    chan_client_t *a = chand_dial(&DA);
    chan_t *ra = chand_open_ch(a, "mt-a", 0);
    int64_t t0 = chan_now();   /* before the timer starts: it fires 50 ms after that */
    chan_t *timer = chan_after(50);
    char buf[16];
    int64_t fired;
    chan_case_t cs[2] = { CHAN_CASE_RECV(ra, buf, sizeof buf), CHAN_CASE_RECV(timer, &fired, sizeof fired) };
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
    chan_client_t *a = chand_dial(&DA), *b = chand_dial(&DB);
    chan_t *qa = chand_open_ch(a, "fifo-a", N), *qb = chand_open_ch(b, "fifo-b", N), *noise = chan_make(0);
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

/* ---- a late answer to a look keeps FIFO order ---- */

struct delayed_signal {
    pid_t pid;
    int sig;
    long ms;
};

static void *signal_later(void *arg)
{
    struct delayed_signal *d = arg;
    chand_sleep_ms(d->ms);
    kill(d->pid, d->sig);
    return NULL;
}

/* A select's look asks each daemon with timeout 0 and waits for its answer
 * until the select's deadline.  A daemon that answers later still hands
 * its value to that request; the value must be back at the head of its
 * channel before any later request of the connection is served, else the
 * receiver's next select takes the value behind it first (and the given
 * back one after it, not marked redelivered).  Daemon a is stopped
 * (SIGSTOP) for longer than the selects' deadline, a few times, while
 * threads sharing one connection to each daemon select over a full
 * channel on a and an idle one on b: each must get its channel's values
 * in order. */
enum { LATE_LANES = 4, LATE_FILL = 20000, LATE_STOPS = 3 };

struct late_lane {
    chan_t *q, *idle;
    atomic_int *stop;
    uint32_t got;               /* values received, in order: 0 .. got-1 */
    uint32_t bad, bad_after;    /* the first value out of order + 1 (0:
                                   none), and the value due instead */
    uint32_t redelivered;       /* values marked redelivered */
    int errors;                 /* selects that failed other than by time */
};

static void *late_receiver(void *arg)
{
    struct late_lane *l = arg;
    while (!atomic_load(l->stop) && !l->bad) {
        uint32_t v, idle;
        chan_case_t cs[2] = { CHAN_CASE_RECV(l->idle, &idle, sizeof idle),
                              CHAN_CASE_RECV(l->q, &v, sizeof v) };
        int i = chan_select(cs, 2, chan_now() + 50);
        if (i < 0) {
            l->errors += errno != ETIMEDOUT;
            continue;
        }
        if (i != 1 || cs[1].n != sizeof v) {
            l->errors++;
            continue;
        }
        if (cs[1].redelivered)
            l->redelivered++;
        else if (v != l->got)
            l->bad = v + 1, l->bad_after = l->got;
        else
            l->got++;
    }
    return NULL;
}

START_TEST(t_late_look_answer_keeps_fifo)
{
    chan_client_t *a = chand_dial(&DA), *b = chand_dial(&DB);
    atomic_int stop = 0;
    struct late_lane lanes[LATE_LANES];
    static uint32_t vals[LATE_FILL];
    static chan_val_t cv[LATE_FILL];
    for (uint32_t k = 0; k < LATE_FILL; k++) {
        vals[k] = k;
        cv[k] = (chan_val_t){ &vals[k], sizeof vals[k], 0 };
    }
    for (int i = 0; i < LATE_LANES; i++) {
        char name[32];
        snprintf(name, sizeof name, "late-q%d", i);
        lanes[i] = (struct late_lane){ .q = chand_open_ch(a, name, LATE_FILL), .stop = &stop };
        snprintf(name, sizeof name, "late-idle%d", i);
        lanes[i].idle = chand_open_ch(b, name, 1);
        ck_assert_int_eq(chan_send_many(lanes[i].q, cv, LATE_FILL, chan_now() + 5000), LATE_FILL);
    }
    pthread_t t[LATE_LANES];
    for (int i = 0; i < LATE_LANES; i++)
        pthread_create(&t[i], NULL, late_receiver, &lanes[i]);
    /* Each stop outlasts the deadline of the selects it catches. */
    for (int k = 0; k < LATE_STOPS; k++) {
        chand_sleep_ms(30);
        ck_assert_int_eq(kill(DA.pid, SIGSTOP), 0);
        chand_sleep_ms(250);
        ck_assert_int_eq(kill(DA.pid, SIGCONT), 0);
    }
    chand_sleep_ms(30);
    atomic_store(&stop, 1);
    for (int i = 0; i < LATE_LANES; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < LATE_LANES; i++) {
        struct late_lane *l = &lanes[i];
        ck_assert_msg(!l->bad, "lane %d: got value %u where %u was due", i, l->bad - 1,
                      l->bad_after);
        ck_assert_int_eq(l->redelivered, 0);   /* no connection was lost */
        ck_assert_int_eq(l->errors, 0);
        ck_assert_uint_gt(l->got, 0);
        ck_assert_uint_lt(l->got, LATE_FILL);   /* it never ran dry */
        chan_release(l->q);
        chan_release(l->idle);
    }
    chan_disconnect(a);
    chan_disconnect(b);
}
END_TEST

/* A daemon that answers neither a look nor its cancel (stopped for longer
 * than the grace libchan gives it) is hung up on: it takes back the value
 * it handed to the look, marked redelivered, instead of having it given
 * back behind the values that later requests take.  Every value arrives;
 * those not marked redelivered arrive in order. */
START_TEST(t_stuck_daemon_is_hung_up)
{
    enum { N = 3 };
    chan_client_t *a = chand_dial(&DA), *b = chand_dial(&DB);
    chan_t *q = chand_open_ch(a, "stuck-q", N), *idle = chand_open_ch(b, "stuck-idle", 1);
    for (uint32_t k = 0; k < N; k++)
        ck_assert_int_eq(chan_send(q, &k, sizeof k, chan_now() + 5000), 0);
    ck_assert_int_eq(kill(DA.pid, SIGSTOP), 0);
    struct delayed_signal ds = { DA.pid, SIGCONT, 3000 };   /* past 100 ms + 2 s of grace */
    pthread_t t;
    pthread_create(&t, NULL, signal_later, &ds);
    uint32_t seen = 0, redelivered = 0, last = 0;
    bool any = false;
    int64_t until = chan_now() + test_wait_ms(15000);
    while (seen != (1u << N) - 1 && chan_now() < until) {
        uint32_t v, x;
        chan_case_t cs[2] = { CHAN_CASE_RECV(idle, &x, sizeof x), CHAN_CASE_RECV(q, &v, sizeof v) };
        int i = chan_select(cs, 2, chan_now() + 100);
        if (i < 0) {
            ck_assert_msg(errno == ETIMEDOUT || errno == ECONNRESET, "select: %s", strerror(errno));
            continue;
        }
        ck_assert_int_eq(i, 1);
        ck_assert_uint_lt(v, N);
        seen |= 1u << v;
        if (cs[1].redelivered) {
            redelivered |= 1u << v;
            continue;
        }
        ck_assert_msg(!any || v > last, "value %u came after %u, not marked redelivered", v, last);
        any = true;
        last = v;
    }
    pthread_join(t, NULL);
    ck_assert_uint_eq(seen, (1u << N) - 1);
    ck_assert_uint_eq(redelivered, 1u);   /* value 0, which the look was handed */
    chan_release(q);
    chan_release(idle);
    chan_disconnect(a);
    chan_disconnect(b);
}
END_TEST

/* ---- conservation: selects over two daemons and a local channel ---- */

enum { SELECTORS = 8, PRODUCERS = 8 };

struct cons {
    chan_t *in[3];            /* daemon a, daemon b, local */
    chan_t *out[3];
    uint32_t values;          /* sent in all, 0 .. values-1 */
    atomic_long got;
    atomic_int errors;
    chan_wg_t *wg;
    _Atomic unsigned char seen[];   /* [values] */
};

struct cons_arg {
    struct cons *c;
    int id;
};

static void cons_producer(void *arg)
{
    struct cons_arg *p = arg;
    struct cons *c = p->c;
    for (uint32_t v = (uint32_t)p->id; v < c->values; v += PRODUCERS) {
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
    while (atomic_load(&c->got) < c->values) {
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
        if (cs[i].err || cs[i].n != sizeof(uint32_t) || v[i] >= c->values) {
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
    chan_client_t *pa = chand_dial(&DA), *pb = chand_dial(&DB), *ca = chand_dial(&DA), *cb = chand_dial(&DB);
    uint32_t values = (uint32_t)test_size("values through the selectors", 100000, 20000);
    struct cons *c = calloc(1, sizeof *c + values);
    ck_assert_ptr_nonnull(c);
    c->values = values;
    chan_t *loc = chan_make(16);
    c->in[0] = chand_open_ch(pa, "cons-a", 16);
    c->in[1] = chand_open_ch(pb, "cons-b", 0);
    c->in[2] = loc;
    c->out[0] = chand_open_ch(ca, "cons-a", 16);
    c->out[1] = chand_open_ch(cb, "cons-b", 0);
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
    ck_assert_int_eq(chan_wg_wait(c->wg, chan_now() + test_wait_ms(120000)), 0);
    ck_assert_int_eq(atomic_load(&c->errors), 0);
    ck_assert_int_eq(atomic_load(&c->got), c->values);
    for (long i = 0; i < c->values; i++)
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
    chan_client_t *rc = chand_dial(&DA), *sc = chand_dial(&DA);
    struct blocked *b = calloc(1, sizeof *b);
    b->ch = chand_open_ch(rc, "ten-k", 0);
    b->wg = chan_wg_make();
    chan_wg_add(b->wg, BLOCKED);
    for (int i = 0; i < BLOCKED; i++)
        ck_assert_int_eq(chan_go(blocked_recv, b), 0);
    /* all of them blocked in chand at once, no thread each */
    chan_stat_t st = { 0 };
    for (int i = 0; i < 1000 && st.receivers < BLOCKED; i++) {
        ck_assert_int_eq(chan_stat(sc, "ten-k", &st, chan_now() + 5000), 0);
        if (st.receivers < BLOCKED)
            chand_sleep_ms(10);
    }
    ck_assert_uint_eq(st.receivers, BLOCKED);
    chan_t *out = chand_open_ch(sc, "ten-k", 0);
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
    chan_client_t *cl = chand_dial(&d);
    chan_t *ch = chand_open_ch(cl, "lossy", 4);
    struct pending_recv p = { ch, 0, 0 };
    pthread_t t;
    pthread_create(&t, NULL, recv_forever, &p);
    chan_stat_t st = { 0 };
    for (int i = 0; i < 500 && !st.receivers; i++) {
        chan_stat(cl, "lossy", &st, chan_now() + 5000);
        if (!st.receivers)
            chand_sleep_ms(10);
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
            chand_sleep_ms(50);
    }
    ck_assert_int_eq(ok, 0);
    /* the channel is gone with the old daemon: the handle's name makes it anew */
    chan_t *again = chand_open_ch(cl, "lossy", 4);
    ck_assert_int_eq(chan_send(again, "y", 1, -1), 0);
    char buf[4];
    ck_assert_int_eq(chan_recv(ch, buf, sizeof buf, chan_now() + 5000), 1);
    chan_release(again);
    chan_release(ch);
    chan_disconnect(cl);
    chand_stop(&d2);
}
END_TEST

/* chan_disconnect while calls wait on the connection: a plain thread (which
 * may be reading the socket itself, as the client's reader) and goroutines
 * (whose worker may be the reader instead) all fail with ECONNRESET, and
 * nothing hangs on a socket closed under it.  Round 0 starts the thread
 * first, round 1 the goroutines, so that each kind gets to hold the role. */
struct inflight {
    chan_t *ch;
    chan_wg_t *wg;
    atomic_int reset, other;
};

static void recv_inflight(void *arg)
{
    struct inflight *x = arg;
    char buf[16];
    if (chan_recv(x->ch, buf, sizeof buf, -1) < 0 && errno == ECONNRESET)
        atomic_fetch_add(&x->reset, 1);
    else
        atomic_fetch_add(&x->other, 1);
    chan_wg_done(x->wg);
}

static void wait_receivers(chan_client_t *cl, const char *name, uint64_t n)
{
    chan_stat_t st = { 0 };
    st.receivers = n + 1;
    for (int i = 0; i < 1000 && st.receivers != n; i++) {
        ck_assert_int_eq(chan_stat(cl, name, &st, chan_now() + 5000), 0);
        if (st.receivers != n)
            chand_sleep_ms(10);
    }
    ck_assert_uint_eq(st.receivers, n);
}

START_TEST(t_disconnect_with_calls_in_flight)
{
    for (int round = 0; round < 2; round++) {
        chan_client_t *cl = chand_dial(&DA), *watch = chand_dial(&DA);
        char name[32];
        snprintf(name, sizeof name, "inflight-%d", round);
        chan_t *ch = chand_open_ch(cl, name, 0);
        struct pending_recv p = { ch, 0, 0 };
        struct inflight g = { .ch = ch, .wg = chan_wg_make() };
        pthread_t t;
        if (round == 0) {
            pthread_create(&t, NULL, recv_forever, &p);
            wait_receivers(watch, name, 1);
        }
        chan_wg_add(g.wg, 4);
        for (int i = 0; i < 4; i++)
            ck_assert_int_eq(chan_go(recv_inflight, &g), 0);
        if (round == 1) {
            wait_receivers(watch, name, 4);
            pthread_create(&t, NULL, recv_forever, &p);
        }
        wait_receivers(watch, name, 5);
        chan_disconnect(cl);                                  /* calls in flight */
        pthread_join(t, NULL);
        ck_assert_int_eq(p.rc, -1);
        ck_assert_int_eq(p.err, ECONNRESET);
        ck_assert_int_eq(chan_wg_wait(g.wg, chan_now() + 10000), 0);
        ck_assert_int_eq(atomic_load(&g.reset), 4);
        ck_assert_int_eq(atomic_load(&g.other), 0);
        wait_receivers(watch, name, 0);                       /* chand let go of them */
        chan_release(ch);
        chan_wg_free(g.wg);
        chan_disconnect(watch);
    }
}
END_TEST

/* A worker whose goroutine waits on a remote reply may wait on the socket
 * itself, but it must still take work a busy worker cannot get to.  G and
 * H run on the two workers; H starts F while both are busy (so nobody is
 * woken for it) and computes until F has run; G then parks on a remote
 * receive with no deadline, and its worker waits on the socket.  Before
 * the fix that worker slept there and F waited until H gave up; stealing
 * lets F run in milliseconds.  The bound only catches the stall. */
struct steal_test {
    chan_t *ch;
    chan_wg_t *wg;
    atomic_int started, spawned, f_ran;
};

static void steal_g(void *arg)
{
    struct steal_test *x = arg;
    atomic_fetch_add(&x->started, 1);
    while (!atomic_load(&x->spawned))
        ;                                /* busy while F is started */
    char buf[8];
    chan_recv(x->ch, buf, sizeof buf, -1);
    chan_wg_done(x->wg);
}

static void steal_f(void *arg)
{
    struct steal_test *x = arg;
    atomic_store(&x->f_ran, 1);
    chan_wg_done(x->wg);
}

static void steal_h(void *arg)
{
    struct steal_test *x = arg;
    atomic_fetch_add(&x->started, 1);
    int64_t end = chan_now() + 20000;
    while (atomic_load(&x->started) < 2 && chan_now() < end)
        ;                                /* G runs on the other worker */
    chan_go(steal_f, x);
    atomic_store(&x->spawned, 1);
    while (!atomic_load(&x->f_ran) && chan_now() < end)
        ;                                /* busy: never yields to F */
    chan_wg_done(x->wg);
}

static long workers(void)
{
    const char *e = getenv("CHAN_PROCS");
    return e && *e ? strtol(e, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
}

START_TEST(t_socket_waiting_worker_still_steals)
{
    if (workers() < 2)
        return;   /* one worker: H alone runs, by design */
    chan_client_t *cl = chand_dial(&DA);
    chan_t *ch = chand_open_ch(cl, "steal", 0);
    for (int trial = 0; trial < 5; trial++) {
        struct steal_test x = { .ch = ch, .wg = chan_wg_make() };
        chan_wg_add(x.wg, 3);
        ck_assert_int_eq(chan_go(steal_g, &x), 0);
        ck_assert_int_eq(chan_go(steal_h, &x), 0);
        int64_t end = chan_now() + 30000;
        while (!atomic_load(&x.f_ran) && chan_now() < end)
            chand_sleep_ms(1);
        ck_assert_msg(atomic_load(&x.f_ran), "F never ran while H computed");
        ck_assert_int_eq(chan_send(ch, "x", 1, chan_now() + 5000), 0);   /* G ends */
        ck_assert_int_eq(chan_wg_wait(x.wg, chan_now() + 30000), 0);
        chan_wg_free(x.wg);
    }
    chan_release(ch);
    chan_disconnect(cl);
}
END_TEST

START_TEST(t_select_survives_a_lost_daemon)
{
    chand_proc_t d;
    ck_assert_int_eq(chand_start(&d, NULL), 0);
    chan_client_t *doomed = chand_dial(&d), *live = chand_dial(&DA);
    chan_t *x = chand_open_ch(doomed, "goner", 0), *y = chand_open_ch(live, "survivor", 0);
    char bx[8], by[8];
    struct delayed dl = { y, "alive", 300 };
    pthread_t t;
    pthread_create(&t, NULL, send_later, &dl);
    chand_sleep_ms(50);
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

/* ---- fan-in and generators over remote and local channels ---- */

struct feed {
    chan_t *ch;
    uint32_t base, n;
};

static void *feed_and_close(void *arg)
{
    struct feed *f = arg;
    for (uint32_t i = 0; i < f->n; i++) {
        uint32_t v = f->base + i;
        ck_assert_int_eq(chan_send(f->ch, &v, sizeof v, -1), 0);
    }
    ck_assert_int_eq(chan_close(f->ch), 0);
    return NULL;
}

static void count_gen(chan_t *out, void *arg)
{
    uint32_t n = *(uint32_t *)arg;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = 3000 + i;
        if (chan_send(out, &v, sizeof v, -1) < 0)
            return;
    }
}

START_TEST(t_fanin_and_generator_over_remote)
{
    enum { PER = 300 };
    chan_client_t *a = chand_dial(&DA), *b = chand_dial(&DB);
    chan_t *in[3] = { chand_open_ch(a, "fan-a", 0), chand_open_ch(b, "fan-b", 8), chan_make(0) };
    chan_t *out = chan_fanin(in, 3);
    ck_assert_ptr_nonnull(out);
    struct feed f[3] = { { in[0], 0, PER }, { in[1], 1000, PER }, { in[2], 2000, PER } };
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, feed_and_close, &f[i]);
    static unsigned char seen[3000];
    uint32_t next[3] = { 0, 1000, 2000 }, v;
    int got = 0;
    ssize_t n;
    while ((n = chan_recv(out, &v, sizeof v, chan_now() + 20000)) == sizeof v) {
        ck_assert_uint_lt(v, 3000);
        ck_assert(!seen[v]);
        seen[v] = 1;
        ck_assert_uint_eq(v, next[v / 1000]++);              /* each input keeps its order */
        got++;
    }
    ck_assert_int_eq(n, -1);
    ck_assert_int_eq(errno, EPIPE);                          /* closed after all inputs closed */
    ck_assert_int_eq(got, 3 * PER);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    /* a generator (local) goes through the same API: receive until closed */
    uint32_t count = 50;
    chan_t *gen = chan_generator(count_gen, &count, 4);
    ck_assert_ptr_nonnull(gen);
    for (uint32_t i = 0; i < count; i++) {
        ck_assert_int_eq(chan_recv(gen, &v, sizeof v, chan_now() + 10000), sizeof v);
        ck_assert_uint_eq(v, 3000 + i);
    }
    ck_assert_int_eq(chan_recv(gen, &v, sizeof v, chan_now() + 10000), -1);
    ck_assert_int_eq(errno, EPIPE);
    chan_release(gen);
    chan_release(out);
    for (int i = 0; i < 3; i++)
        chan_release(in[i]);
    chan_disconnect(a);
    chan_disconnect(b);
}
END_TEST

/* ---- channels over channels, across processes ---- */

/* A server process: each request is "<reply-ref>\n<payload>"; it answers
 * "echo:<payload>" on the reply channel the request names. */
static int serve_requests(const char *addr)
{
    chan_client_t *cl = chan_connect(addr, NULL, chan_now() + 5000);
    if (!cl)
        return 3;
    chan_t *req = chan_open(cl, "rr-requests", 0, 0, chan_now() + 5000);
    if (!req)
        return 4;
    for (;;) {
        void *msg;
        ssize_t n = chan_recv_alloc(req, &msg, -1);
        if (n < 0)
            return errno == EPIPE ? 0 : 5;
        char *nl = memchr(msg, '\n', (size_t)n);
        if (!nl)
            return 6;
        chan_t *reply = chan_open_ref(cl, msg, (size_t)(nl - (char *)msg), chan_now() + 5000);
        if (!reply)
            return 7;
        char out[256];
        int len = snprintf(out, sizeof out, "echo:%.*s", (int)(n - (nl + 1 - (char *)msg)), nl + 1);
        if (chan_send(reply, out, (size_t)len, chan_now() + 5000) < 0)
            return 8;
        chan_release(reply);
        free(msg);
    }
}

struct rr_client {
    int id;
    atomic_int errors;
};

static void *rr_client(void *arg)
{
    struct rr_client *c = arg;
    chan_client_t *cl = chand_dial(&DA);
    chan_t *req = chand_open_ch(cl, "rr-requests", 0);
    chan_t *mine = chan_open_temp(cl, 0, chan_now() + 5000);   /* my reply channel */
    char ref[CHAN_REF_MAX];
    ck_assert_int_gt(chan_ref(mine, ref, sizeof ref), 0);
    for (int i = 0; i < 50; i++) {
        char msg[CHAN_REF_MAX + 64], want[64], got[128];
        int n = snprintf(msg, sizeof msg, "%s\n%d/%d", ref, c->id, i);
        snprintf(want, sizeof want, "echo:%d/%d", c->id, i);
        ssize_t k;
        if (chan_send(req, msg, (size_t)n, chan_now() + 10000) < 0 ||
            (k = chan_recv(mine, got, sizeof got, chan_now() + 10000)) < 0 ||
            (size_t)k != strlen(want) || memcmp(got, want, (size_t)k) != 0)
            atomic_fetch_add(&c->errors, 1);
    }
    chan_release(mine);
    chan_release(req);
    chan_disconnect(cl);
    return NULL;
}

START_TEST(t_request_reply_across_processes)
{
    pid_t server = fork();
    ck_assert_int_ge(server, 0);
    if (server == 0)
        _exit(serve_requests(DA.addr));
    pthread_t t[4];
    struct rr_client c[4];
    for (int i = 0; i < 4; i++) {
        c[i].id = i;
        atomic_init(&c[i].errors, 0);
        pthread_create(&t[i], NULL, rr_client, &c[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(atomic_load(&c[i].errors), 0);
    }
    chan_client_t *cl = chand_dial(&DA);
    chan_t *req = chand_open_ch(cl, "rr-requests", 0);
    ck_assert_int_eq(chan_close(req), 0);                 /* the server ends */
    int st;
    ck_assert_int_eq(waitpid(server, &st, 0), server);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    /* a reference to a temporary channel whose owner has gone */
    chan_t *tmp = chan_open_temp(cl, 0, chan_now() + 5000);
    char ref[CHAN_REF_MAX];
    ck_assert_int_gt(chan_ref(tmp, ref, sizeof ref), 0);
    chan_release(tmp);
    chan_release(req);
    chan_disconnect(cl);
    chan_client_t *other = chand_dial(&DA);
    ck_assert_ptr_null(chan_open_ref(other, ref, strlen(ref), chan_now() + 5000));
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_ptr_null(chan_open_ref(other, "no-at-sign", 10, chan_now() + 5000));
    ck_assert_int_eq(errno, EINVAL);
    chan_t *loc = chan_make(0);
    ck_assert_int_eq(chan_ref(loc, ref, sizeof ref), -1);
    ck_assert_int_eq(errno, EINVAL);
    chan_release(loc);
    chan_disconnect(other);
}
END_TEST

/* The talk's "restoring sequence": each talker sends a message carrying
 * its own wait channel, then waits on it; main lets both go on after it
 * has one message from each.  Talkers are separate processes here. */
static int talker(const char *addr, const char *name, int rounds)
{
    chan_client_t *cl = chan_connect(addr, NULL, chan_now() + 5000);
    if (!cl)
        return 3;
    chan_t *c = chan_open(cl, "seq-talk", 0, 0, chan_now() + 5000);
    chan_t *wait = chan_open_temp(cl, 0, chan_now() + 5000);
    if (!c || !wait)
        return 4;
    char ref[CHAN_REF_MAX];
    chan_ref(wait, ref, sizeof ref);
    for (int i = 0; i < rounds; i++) {
        char msg[CHAN_REF_MAX + 64];
        int n = snprintf(msg, sizeof msg, "%s %d\n%s", name, i, ref);
        if (chan_send(c, msg, (size_t)n, chan_now() + 10000) < 0)
            return 5;
        char ok;
        if (chan_recv(wait, &ok, 1, chan_now() + 10000) != 1)   /* <-waitForIt */
            return 6;
    }
    chan_release(wait);
    chan_release(c);
    chan_disconnect(cl);
    return 0;
}

START_TEST(t_sequencing_across_processes)
{
    enum { ROUNDS = 20 };
    pid_t joe = fork();
    if (joe == 0)
        _exit(talker(DA.addr, "Joe", ROUNDS));
    pid_t ann = fork();
    if (ann == 0)
        _exit(talker(DA.addr, "Ann", ROUNDS));
    chan_client_t *cl = chand_dial(&DA);
    chan_t *c = chand_open_ch(cl, "seq-talk", 0);
    for (int i = 0; i < ROUNDS; i++) {
        char msg[2][CHAN_REF_MAX + 64];
        ssize_t n[2];
        for (int k = 0; k < 2; k++) {
            n[k] = chan_recv(c, msg[k], sizeof msg[k] - 1, chan_now() + 10000);
            ck_assert_int_gt(n[k], 0);
            msg[k][n[k]] = 0;
        }
        /* strict alternation: one message from each talker, both of round i */
        char who[2][8];
        int round[2];
        for (int k = 0; k < 2; k++)
            ck_assert_int_eq(sscanf(msg[k], "%7s %d", who[k], &round[k]), 2);
        ck_assert_str_ne(who[0], who[1]);
        ck_assert_int_eq(round[0], i);
        ck_assert_int_eq(round[1], i);
        for (int k = 0; k < 2; k++) {                     /* msg.wait <- true */
            chan_t *wait = chan_open_ref(cl, strchr(msg[k], '\n') + 1,
                                         strlen(strchr(msg[k], '\n') + 1), chan_now() + 5000);
            ck_assert_ptr_nonnull(wait);
            ck_assert_int_eq(chan_send(wait, "y", 1, chan_now() + 10000), 0);
            chan_release(wait);
        }
    }
    int st;
    ck_assert_int_eq(waitpid(joe, &st, 0), joe);
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    ck_assert_int_eq(waitpid(ann, &st, 0), ann);
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    chan_release(c);
    chan_disconnect(cl);
}
END_TEST

/* ---- conservation with a selecting process killed mid-run ---- */

enum { KV = 20000 };

struct killshare {
    _Atomic unsigned char seen[KV];
    atomic_long count;
};

/* Selectors over a channel on each daemon and a local one; what they take
 * is recorded in shared memory before the next select acknowledges it. */
static void select_consumer(struct killshare *sh, chan_t *a, chan_t *b, chan_t *loc,
                            atomic_long *total, _Atomic unsigned char *seen)
{
    while (atomic_load(total) < KV) {
        uint32_t v[3];
        chan_case_t cs[3] = { CHAN_CASE_RECV(a, &v[0], 4), CHAN_CASE_RECV(b, &v[1], 4),
                              CHAN_CASE_RECV(loc, &v[2], 4) };
        int i = chan_select(cs, 3, chan_now() + 200);
        if (i < 0 || i == 2 || cs[i].err || v[i] >= KV)
            continue;
        atomic_fetch_add(&seen[v[i]], 1);
        atomic_fetch_add(total, 1);
        (void)sh;
    }
}

static int killed_selector(struct killshare *sh, const char *addr_a, const char *addr_b)
{
    setenv("CHAN_ACK_DELAY_MS", "600000", 1);   /* acks only ride on the next select */
    chan_client_t *ca = chan_connect(addr_a, NULL, chan_now() + 5000);
    chan_client_t *cb = chan_connect(addr_b, NULL, chan_now() + 5000);
    if (!ca || !cb)
        return 3;
    chan_t *a = chan_open(ca, "kill-a", 16, 0, -1), *b = chan_open(cb, "kill-b", 0, 0, -1);
    chan_t *loc = chan_make(0);
    atomic_long forever;
    atomic_init(&forever, LONG_MIN);
    select_consumer(sh, a, b, loc, &forever, sh->seen);   /* until killed */
    (void)sh->count;
    return 0;
}

struct kprod {
    chan_t *a, *b;
    int rc;
};

static void *kill_producer(void *arg)
{
    struct kprod *p = arg;
    for (uint32_t v = 0; v < KV; v++)
        if (chan_send(v % 2 ? p->b : p->a, &v, sizeof v, -1) < 0)
            p->rc = -1;
    return NULL;
}

struct kcons {
    chan_t *a, *b, *loc;
    atomic_long *total;
    _Atomic unsigned char *seen;
};

static void *kill_consumer(void *arg)
{
    struct kcons *k = arg;
    select_consumer(NULL, k->a, k->b, k->loc, k->total, k->seen);
    return NULL;
}

START_TEST(t_conservation_with_a_killed_selector)
{
    struct killshare *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(sh, MAP_FAILED);
    memset(sh, 0, sizeof *sh);
    chan_client_t *pa = chand_dial(&DA), *pb = chand_dial(&DB);
    struct kprod p = { chand_open_ch(pa, "kill-a", 16), chand_open_ch(pb, "kill-b", 0), 0 };
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(killed_selector(sh, DA.addr, DB.addr));
    pthread_t pt;
    pthread_create(&pt, NULL, kill_producer, &p);
    long child_seen = 0;
    for (int i = 0; i < 3000 && child_seen < KV / 4; i++) {
        child_seen = 0;
        for (long v = 0; v < KV; v += 97)
            child_seen += atomic_load(&sh->seen[v]) > 0;
        child_seen *= 97;
        chand_sleep_ms(5);
    }
    kill(child, SIGKILL);                                   /* mid-stream */
    waitpid(child, NULL, 0);
    /* the survivors take the rest: every value must be seen */
    static _Atomic unsigned char mine[KV];
    memset((void *)mine, 0, sizeof mine);
    atomic_long total;
    long before = 0;
    for (long v = 0; v < KV; v++)
        before += atomic_load(&sh->seen[v]) > 0;
    atomic_init(&total, before);
    chan_client_t *ca = chand_dial(&DA), *cb = chand_dial(&DB);
    chan_t *loc = chan_make(0);
    struct kcons k = { chand_open_ch(ca, "kill-a", 16), chand_open_ch(cb, "kill-b", 0), loc, &total, mine };
    pthread_t ct[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&ct[i], NULL, kill_consumer, &k);
    /* count distinct values until all are there */
    int64_t give_up = chan_now() + test_wait_ms(60000);
    long distinct = 0;
    while (chan_now() < give_up) {
        distinct = 0;
        for (long v = 0; v < KV; v++)
            distinct += atomic_load(&sh->seen[v]) || atomic_load(&mine[v]);
        if (distinct == KV)
            break;
        atomic_store(&total, distinct);   /* consumers stop when all are in */
        chand_sleep_ms(20);
    }
    atomic_store(&total, KV);
    for (int i = 0; i < 3; i++)
        pthread_join(ct[i], NULL);
    /* before joining the producer, which waits forever on a value nobody
     * takes if one was lost: a loss is reported, not a timeout */
    ck_assert_msg(distinct == KV, "%ld of %d values seen after %lld ms: lost", distinct, KV,
                  (long long)test_wait_ms(60000));
    pthread_join(pt, NULL);
    ck_assert_int_eq(p.rc, 0);
    long twice = 0;
    for (long v = 0; v < KV; v++) {
        ck_assert_int_le(atomic_load(&mine[v]), 1);           /* survivors: never twice */
        ck_assert_int_le(atomic_load(&sh->seen[v]), 1);
        twice += atomic_load(&mine[v]) && atomic_load(&sh->seen[v]);
    }
    /* a value may come twice only if the killed process had it unacknowledged:
     * at most what it could hold (one select's value per connection) */
    ck_assert_int_le(twice, 2);
    chan_release(p.a);
    chan_release(p.b);
    chan_release(k.a);
    chan_release(k.b);
    chan_release(loc);
    chan_disconnect(pa);
    chan_disconnect(pb);
    chan_disconnect(ca);
    chan_disconnect(cb);
    munmap(sh, sizeof *sh);
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
    tcase_add_test(tc, t_mixed_emsgsize_gives_length);
    tcase_add_test(tc, t_crossed_selects_rendezvous);
    tcase_add_test(tc, t_crossed_selects_race);
    tcase_add_test(tc, t_look_meets_a_selecting_sender);
    tcase_add_test(tc, t_fanin_and_generator_over_remote);
    tcase_add_test(tc, t_release_keeps_fifo);
    tcase_add_test(tc, t_conservation_goroutines);
    tcase_add_test(tc, t_ten_thousand_goroutines);
    tcase_add_test(tc, t_select_survives_a_lost_daemon);
    tcase_add_test(tc, t_connection_loss_and_reconnect);
    tcase_add_test(tc, t_disconnect_with_calls_in_flight);
    tcase_add_test(tc, t_socket_waiting_worker_still_steals);
    suite_add_tcase(s, tc);

    /* daemon a is stopped now and then: daemons of its own */
    tc = tcase_create("late");
    tcase_add_unchecked_fixture(tc, daemons_up, daemons_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_late_look_answer_keeps_fifo);
    tcase_add_test(tc, t_stuck_daemon_is_hung_up);
    suite_add_tcase(s, tc);

    tc = tcase_create("processes");
    tcase_add_unchecked_fixture(tc, daemons_up, daemons_down);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_request_reply_across_processes);
    tcase_add_test(tc, t_sequencing_across_processes);
    tcase_add_test(tc, t_conservation_with_a_killed_selector);
    tcase_add_test(tc, t_crossed_selects_after_fork);
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

/*
 * check_remote.c - integration tests: real chand processes on ephemeral
 * ports, driven by libchan's remote client from several threads and
 * processes, and by raw sockets speaking (and breaking) the protocol.
 * A few reach into the client (remote/chan_client_int.h) to hold back or
 * queue the delivery ids it owes chand.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chan/chan.h"
#include "chan_frame.h"
#include "chand_fixture.h"
#include "raw_proto.h"
#include "remote/chan_client_int.h"
#include "test_size.h"

static chand_proc_t D;   /* the daemon shared by a test case */

static void daemon_up(void)
{
    if (chand_start(&D, NULL) < 0)
        abort();
}

static void daemon_down(void)
{
    chand_stop(&D);
}

/* The channel's stat must show nothing left waiting. */
static void assert_quiet(chan_client_t *cl, const char *name)
{
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(cl, name, &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.senders, 0);
    ck_assert_uint_eq(st.receivers, 0);
    ck_assert_uint_eq(st.inflight, 0);
}

/* ---- basics and errors ---- */

START_TEST(t_basic_ops)
{
    chan_client_t *cl = chand_dial(&D);
    ck_assert_int_eq(chan_ping(cl, chan_now() + 5000), 0);
    chan_t *b = chand_open_ch(cl, "basic", 2);
    ck_assert_str_eq(chan_name(b), "basic");
    ck_assert_int_eq(chan_cap(b), 2);
    ck_assert_int_eq(chan_send(b, "hello", 5, -1), 0);
    ck_assert_int_eq(chan_send(b, "", 0, -1), 0);             /* empty values are values */
    char buf[16];
    ck_assert_int_eq(chan_recv(b, buf, sizeof buf, -1), 5);
    ck_assert(memcmp(buf, "hello", 5) == 0);
    void *v;
    ck_assert_int_eq(chan_recv_alloc(b, &v, -1), 0);
    ck_assert_ptr_nonnull(v);
    free(v);
    /* deadlines: 0 does not block, a deadline passes */
    ck_assert_int_eq(chan_recv(b, buf, sizeof buf, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_recv(b, buf, sizeof buf, t0 + 50), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(chan_now() - t0, 50);
    /* a value too long for the buffer stays where it is */
    ck_assert_int_eq(chan_send(b, "0123456789", 10, -1), 0);
    ck_assert_int_eq(chan_recv(b, buf, 4, -1), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    ck_assert_int_eq(chan_recv(b, buf, sizeof buf, -1), 10);
    /* open rules */
    ck_assert_ptr_null(chan_open(cl, "basic", 3, 0, -1));
    ck_assert_int_eq(errno, EEXIST);
    chan_t *same = chan_open(cl, "basic", CHAN_CAP_ANY, 0, -1);
    ck_assert_ptr_nonnull(same);
    ck_assert_int_eq(chan_cap(same), 2);
    chan_release(same);
    ck_assert_ptr_null(chan_open(cl, "missing", CHAN_CAP_ANY, CHAN_NOCREATE, -1));
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_ptr_null(chan_open(cl, "bad name", 0, 0, -1));
    ck_assert_int_eq(errno, EINVAL);
    /* close: queued values first, then EPIPE forever; twice is EPIPE */
    ck_assert_int_eq(chan_send(b, "last", 4, -1), 0);
    ck_assert_int_eq(chan_close(b), 0);
    ck_assert_int_eq(chan_close(b), -1);
    ck_assert_int_eq(errno, EPIPE);
    ck_assert_int_eq(chan_send(b, "x", 1, -1), -1);
    ck_assert_int_eq(errno, EPIPE);
    ck_assert_int_eq(chan_recv(b, buf, sizeof buf, -1), 4);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(chan_recv(b, buf, sizeof buf, -1), -1);
        ck_assert_int_eq(errno, EPIPE);
    }
    assert_quiet(cl, "basic");
    chan_release(b);
    chan_disconnect(cl);
}
END_TEST

START_TEST(t_batches)
{
    chan_client_t *cl = chand_dial(&D);
    chan_t *b = chand_open_ch(cl, "batch", 10000);
    enum { N = 9000 };
    static chan_val_t vals[N];
    static uint32_t nums[N];
    for (uint32_t i = 0; i < N; i++) {
        nums[i] = i;
        vals[i] = (chan_val_t){ .data = &nums[i], .len = sizeof nums[i] };
    }
    ck_assert_int_eq(chan_send_many(b, vals, N, -1), N);   /* more than max_batch: split */
    uint32_t next = 0;
    while (next < N) {
        chan_val_t got[1000];
        ssize_t n = chan_recv_many(b, got, 1000, chan_now() + 5000);
        ck_assert_int_ge(n, 1);
        for (ssize_t i = 0; i < n; i++) {
            ck_assert_uint_eq(got[i].len, 4);
            ck_assert_uint_eq(*(uint32_t *)got[i].data, next);   /* FIFO */
            ck_assert_uint_eq(got[i].redelivered, 0);
            next++;
            free(got[i].data);
        }
    }
    assert_quiet(cl, "batch");
    chan_release(b);
    chan_disconnect(cl);
}
END_TEST

/* ---- an unbuffered send is a rendezvous ---- */

struct sender {
    chan_t *ch;
    atomic_int done;
    int rc;
};

static void *send_one(void *arg)
{
    struct sender *s = arg;
    s->rc = chan_send(s->ch, "ping", 4, -1);
    atomic_store(&s->done, 1);
    return NULL;
}

START_TEST(t_unbuffered_blocks_until_received)
{
    chan_client_t *cl = chand_dial(&D);
    chan_t *u = chand_open_ch(cl, "rendezvous", 0);
    struct sender s = { .ch = u };
    pthread_t t;
    pthread_create(&t, NULL, send_one, &s);
    /* wait until chand holds the send as blocked */
    chan_stat_t st = { 0 };
    for (int i = 0; i < 500 && st.senders == 0; i++) {
        ck_assert_int_eq(chan_stat(cl, "rendezvous", &st, chan_now() + 5000), 0);
        if (!st.senders)
            chand_sleep_ms(10);
    }
    ck_assert_uint_eq(st.senders, 1);
    /* a full round trip later, it still has not returned */
    ck_assert_int_eq(chan_ping(cl, chan_now() + 5000), 0);
    ck_assert_int_eq(atomic_load(&s.done), 0);
    char buf[8];
    ck_assert_int_eq(chan_recv(u, buf, sizeof buf, -1), 4);
    pthread_join(t, NULL);
    ck_assert_int_eq(s.rc, 0);
    assert_quiet(cl, "rendezvous");
    chan_release(u);
    chan_disconnect(cl);
}
END_TEST

/* An acknowledgement that no request can carry travels alone, however late
 * the receiving caller gets to queue it: with an ack delay of 0 the client's
 * I/O thread is done waiting before the caller has run, and used to sleep
 * on with the ack queued, leaving an unbuffered sender of the same client
 * blocked until some other request went out.  Loop 1 and 2: a delay of 1 ms,
 * the sender on the same client and on another one.  Alone on its client,
 * the receiving thread reads its reply itself, and the I/O thread, which
 * then has read nothing, used to sleep on with no timer for the ack. */
START_TEST(t_lone_ack_is_sent)
{
    setenv("CHAN_ACK_DELAY_MS", _i ? "1" : "0", 1);
    chan_client_t *cl = chand_dial(&D);
    unsetenv("CHAN_ACK_DELAY_MS");
    chan_client_t *sc = _i == 2 ? chand_dial(&D) : cl;
    chan_t *u = chand_open_ch(cl, "lone-ack", 0);
    chan_t *su = sc == cl ? u : chand_open_ch(sc, "lone-ack", 0);
    for (int i = 0; i < 20; i++) {
        struct sender s = { .ch = su };
        pthread_t t;
        pthread_create(&t, NULL, send_one, &s);
        char buf[8];
        ck_assert_int_eq(chan_recv(u, buf, sizeof buf, chan_now() + 5000), 4);
        /* nothing else goes out now: the ack must, on its own */
        for (int ms = 0; ms < 5000 && !atomic_load(&s.done); ms++)
            chand_sleep_ms(1);
        ck_assert_msg(atomic_load(&s.done), "round %d: the send never saw its ack", i);
        pthread_join(t, NULL);
        ck_assert_int_eq(s.rc, 0);
    }
    assert_quiet(cl, "lone-ack");
    if (su != u)
        chan_release(su);
    chan_release(u);
    if (sc != cl)
        chan_disconnect(sc);
    chan_disconnect(cl);
}
END_TEST

/* ---- a goroutine's request waiting for its worker's loop ---- */

/* One worker runs G1 and then G2.  G1 sends "x" into a buffered channel:
 * its frame waits in the client's output buffer for the worker's loop, and
 * G1 parks.  The worker switches straight to G2, which blocks its thread
 * (as a goroutine in a system call does) until the test lets it go.  A
 * plain thread holds the reader role meanwhile (blocked in a receive), so
 * the I/O thread is not woken by the send either. */
struct parked_send {
    chan_t *q;
    chan_wg_t *wg;
    int pipe[2];
    atomic_int blocking, sent;
    int send_rc;
};

static void parked_send_g1(void *arg)
{
    struct parked_send *x = arg;
    x->send_rc = chan_send(x->q, "x", 1, chan_now() + 20000);
    atomic_store(&x->sent, 1);
    chan_wg_done(x->wg);
}

static void parked_send_g2(void *arg)
{
    struct parked_send *x = arg;
    atomic_store(&x->blocking, 1);
    struct pollfd p = { x->pipe[0], POLLIN, 0 };
    poll(&p, 1, 15000);   /* the worker's thread, blocked */
    chan_wg_done(x->wg);
}

static void parked_send_launch(void *arg)
{
    /* Both start on this worker; G1 runs first (fresh goroutines in order) */
    chan_go(parked_send_g1, arg);
    chan_go(parked_send_g2, arg);
}

struct blocked_recv {
    chan_t *e;
    int rc;
};

static void *blocked_recv_thread(void *arg)
{
    struct blocked_recv *b = arg;
    char buf[8];
    b->rc = (int)chan_recv(b->e, buf, sizeof buf, chan_now() + 30000);
    return NULL;
}

/* Loop 0: a plain thread's own request on the same client must go out at
 * once, not wait behind G1's frame for a worker that is not coming back to
 * its loop.  Loop 1: G1's send must reach chand all the same (another
 * connection receives it): a parked goroutine's request is as good as
 * sent, whatever its worker's thread does next. */
START_TEST(t_deferred_frame_not_stuck_behind_blocked_worker)
{
    setenv("CHAN_PROCS", "1", 1);   /* G1 and G2 on one worker (a fresh process per test) */
    chan_client_t *cl = chand_dial(&D);
    char qname[32], ename[32];
    snprintf(qname, sizeof qname, "stuck-q%d", _i);
    snprintf(ename, sizeof ename, "stuck-e%d", _i);
    chan_t *q = chand_open_ch(cl, qname, 1);
    chan_t *e = chand_open_ch(cl, ename, 1);
    struct blocked_recv b = { .e = e };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, blocked_recv_thread, &b), 0);
    chan_stat_t st = { 0 };
    for (int i = 0; i < 500 && st.receivers == 0; i++) {
        ck_assert_int_eq(chan_stat(cl, ename, &st, chan_now() + 5000), 0);
        if (!st.receivers)
            chand_sleep_ms(10);
    }
    ck_assert_uint_eq(st.receivers, 1);   /* t reads the replies now */

    struct parked_send x = { .q = q, .wg = chan_wg_make() };
    ck_assert_int_eq(pipe(x.pipe), 0);
    chan_wg_add(x.wg, 2);
    ck_assert_int_eq(chan_go(parked_send_launch, &x), 0);
    for (int i = 0; i < 5000 && !atomic_load(&x.blocking); i++)
        chand_sleep_ms(1);
    ck_assert(atomic_load(&x.blocking));

    int rc;
    if (_i == 0) {
        rc = chan_ping(cl, chan_now() + 3000);
    } else {
        chan_client_t *other = chand_dial(&D);
        chan_t *oq = chand_open_ch(other, qname, 1);
        char buf[8];
        rc = (int)chan_recv(oq, buf, sizeof buf, chan_now() + 3000);
        chan_release(oq);
        chan_disconnect(other);
    }
    int err = errno;
    ck_assert_int_eq(write(x.pipe[1], "g", 1), 1);   /* G2 goes on */
    ck_assert_int_eq(chan_wg_wait(x.wg, chan_now() + 20000), 0);
    ck_assert_msg(rc == (_i ? 1 : 0), "%s: %s", _i ? "G1's send never reached chand" :
                  "the thread's ping never went out", strerror(err));
    ck_assert_int_eq(x.send_rc, 0);
    ck_assert_int_eq(chan_send(e, "z", 1, chan_now() + 5000), 0);   /* t's receive ends */
    pthread_join(t, NULL);
    ck_assert_int_eq(b.rc, 1);
    close(x.pipe[0]);
    close(x.pipe[1]);
    chan_wg_free(x.wg);
    chan_release(q);
    chan_release(e);
    chan_disconnect(cl);
    unsetenv("CHAN_PROCS");
}
END_TEST

/* ---- select on one daemon ---- */

struct delayed {
    chan_t *ch;
    const char *val;
};

static void *send_later(void *arg)
{
    struct delayed *d = arg;
    chand_sleep_ms(50);
    chan_send(d->ch, d->val, strlen(d->val), -1);
    return NULL;
}

START_TEST(t_select_remote)
{
    chan_client_t *cl = chand_dial(&D);
    chan_t *x = chand_open_ch(cl, "sel-x", 0), *y = chand_open_ch(cl, "sel-y", 0);
    char bx[8], by[8];
    chan_case_t cs[3] = { CHAN_CASE_RECV(x, bx, sizeof bx), CHAN_CASE_RECV(y, by, sizeof by),
                          CHAN_CASE_RECV(NULL, NULL, 0) };
    ck_assert_int_eq(chan_select(cs, 3, 0), -1);                /* default */
    ck_assert_int_eq(errno, ETIMEDOUT);
    struct delayed d = { y, "yes" };
    pthread_t t;
    pthread_create(&t, NULL, send_later, &d);
    ck_assert_int_eq(chan_select(cs, 3, chan_now() + 5000), 1);
    ck_assert_uint_eq(cs[1].n, 3);
    ck_assert(memcmp(by, "yes", 3) == 0);
    pthread_join(t, NULL);
    /* a send case, then a closed case */
    chan_t *b = chand_open_ch(cl, "sel-b", 1);
    chan_case_t snd[2] = { CHAN_CASE_SEND(x, "no", 2), CHAN_CASE_SEND(b, "ok", 2) };
    ck_assert_int_eq(chan_select(snd, 2, -1), 1);
    ck_assert_int_eq(chan_close(x), 0);
    ck_assert_int_eq(chan_select(cs, 2, -1), 0);
    ck_assert_int_eq(cs[0].err, EPIPE);
    ssize_t got = chan_recv(b, bx, sizeof bx, 0);
    ck_assert_msg(got == 2, "recv from sel-b: %zd (%s)", got, strerror(errno));
    assert_quiet(cl, "sel-x");
    assert_quiet(cl, "sel-y");
    chan_release(x);
    chan_release(y);
    chan_release(b);
    chan_disconnect(cl);
}
END_TEST

/* A receive case whose buffer is too small: chosen with EMSGSIZE and n the
 * value's length (chan.h), the value left at the head for a bigger buffer. */
START_TEST(t_select_emsgsize_gives_length)
{
    chan_client_t *cl = chand_dial(&D);
    chan_t *b = chand_open_ch(cl, "sel-big", 1), *x = chand_open_ch(cl, "sel-none", 0);
    char msg[40] = "a value longer than four bytes", small[4], big[64];
    ck_assert_int_eq(chan_send(b, msg, sizeof msg, 0), 0);
    chan_case_t cs[2] = { CHAN_CASE_RECV(x, big, sizeof big), CHAN_CASE_RECV(b, small, sizeof small) };
    for (int deadline = 0; deadline < 2; deadline++) {
        ck_assert_int_eq(chan_select(cs, 2, deadline ? -1 : 0), 1);
        ck_assert_int_eq(cs[1].err, EMSGSIZE);
        ck_assert_uint_eq(cs[1].n, sizeof msg);
    }
    ck_assert_int_eq(chan_recv(b, big, cs[1].n, 0), (ssize_t)sizeof msg);
    ck_assert_str_eq(big, msg);
    assert_quiet(cl, "sel-big");
    assert_quiet(cl, "sel-none");
    chan_release(b);
    chan_release(x);
    chan_disconnect(cl);
}
END_TEST

/* ---- temporary channels ---- */

struct receiver {
    chan_t *ch;
    ssize_t rc;
    int err;
};

static void *recv_one(void *arg)
{
    struct receiver *r = arg;
    char buf[64];
    r->rc = chan_recv(r->ch, buf, sizeof buf, chan_now() + 10000);
    r->err = errno;
    return NULL;
}

START_TEST(t_temp_channels)
{
    chan_client_t *owner = chand_dial(&D), *peer = chand_dial(&D);
    chan_t *tmp = chan_open_temp(owner, 0, chan_now() + 5000);
    ck_assert_ptr_nonnull(tmp);
    char name[256];
    snprintf(name, sizeof name, "%s", chan_name(tmp));
    ck_assert(strncmp(name, "tmp.", 4) == 0);
    chan_t *other = chan_open_temp(owner, 0, chan_now() + 5000);
    ck_assert_str_ne(chan_name(other), name);                   /* unique */
    chan_t *p = chand_open_ch(peer, name, CHAN_CAP_ANY);
    struct receiver r = { .ch = p };
    pthread_t t;
    pthread_create(&t, NULL, recv_one, &r);
    chan_stat_t st = { 0 };
    for (int i = 0; i < 500 && st.receivers == 0; i++) {
        chan_stat(peer, name, &st, chan_now() + 5000);
        if (!st.receivers)
            chand_sleep_ms(10);
    }
    ck_assert(st.temp);
    chan_release(tmp);
    chan_release(other);
    chan_disconnect(owner);                                      /* the owner goes */
    pthread_join(t, NULL);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_int_eq(r.err, EPIPE);                              /* peers see it closed */
    ck_assert_ptr_null(chan_open(peer, name, CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + 5000));
    ck_assert_int_eq(errno, ENOENT);                             /* and then gone */
    chan_release(p);
    /* a temporary channel also goes when its maker releases it: a client
     * making one per request does not grow chand's table */
    chan_server_stat_t ss;
    ck_assert_int_eq(chan_server_stat(peer, &ss, chan_now() + 5000), 0);
    uint64_t before = ss.channels;
    for (int i = 0; i < 200; i++) {
        chan_t *t2 = chan_open_temp(peer, 1, chan_now() + 5000);
        ck_assert_ptr_nonnull(t2);
        chan_t *again = chan_retain(t2);
        chan_release(t2);
        chan_release(again);                                    /* the last handle */
    }
    ck_assert_int_eq(chan_server_stat(peer, &ss, chan_now() + 5000), 0);
    ck_assert_uint_eq(ss.channels, before);
    /* and a named channel goes with chan_delete */
    chan_t *named = chan_open(peer, "to-delete", 2, 0, chan_now() + 5000);
    ck_assert_int_eq(chan_send(named, "v", 1, -1), 0);
    ck_assert_int_eq(chan_delete(peer, "to-delete", chan_now() + 5000), 0);
    ck_assert_int_eq(chan_delete(peer, "to-delete", chan_now() + 5000), -1);
    ck_assert_int_eq(errno, ENOENT);
    char b1[4];
    ck_assert_int_eq(chan_recv(named, b1, sizeof b1, 0), -1);   /* the handle names nothing */
    ck_assert_int_eq(errno, ENOENT);
    chan_release(named);
    chan_disconnect(peer);
}
END_TEST

/* ---- many threads, one connection each side: exactly once ---- */

enum { PRODUCERS = 8, CONSUMERS = 8 };

struct mesh {
    chan_t *in, *out;
    uint32_t per;            /* values each producer sends */
    uint32_t total;
    atomic_long received;
    atomic_int errors;
    _Atomic unsigned char seen[];   /* [total] */
};

struct worker {
    struct mesh *m;
    int id;
};

static void *producer(void *arg)
{
    struct worker *w = arg;
    for (uint32_t i = 0; i < w->m->per; i++) {
        uint32_t v = (uint32_t)w->id * w->m->per + i;
        if (chan_send(w->m->in, &v, sizeof v, -1) < 0) {
            atomic_fetch_add(&w->m->errors, 1);
            break;
        }
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct worker *w = arg;
    for (;;) {
        uint32_t v;
        ssize_t n = chan_recv(w->m->out, &v, sizeof v, -1);
        if (n < 0) {
            if (errno != EPIPE)
                atomic_fetch_add(&w->m->errors, 1);
            return NULL;
        }
        if (n != sizeof v || v >= w->m->total) {
            atomic_fetch_add(&w->m->errors, 1);
            continue;
        }
        atomic_fetch_add(&w->m->seen[v], 1);
        atomic_fetch_add(&w->m->received, 1);
    }
}

static void mesh_run(const char *name, long cap)
{
    chan_client_t *pc = chand_dial(&D), *cc = chand_dial(&D);
    uint32_t per = (uint32_t)test_size("mesh values per producer", 20000, 2000);
    struct mesh *m = calloc(1, sizeof *m + (size_t)PRODUCERS * per);
    ck_assert_ptr_nonnull(m);
    m->per = per;
    m->total = PRODUCERS * per;
    m->in = chand_open_ch(pc, name, cap);
    m->out = chand_open_ch(cc, name, cap);
    pthread_t pt[PRODUCERS], ct[CONSUMERS];
    struct worker pw[PRODUCERS], cw[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++) {
        cw[i] = (struct worker){ m, i };
        pthread_create(&ct[i], NULL, consumer, &cw[i]);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pw[i] = (struct worker){ m, i };
        pthread_create(&pt[i], NULL, producer, &pw[i]);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(pt[i], NULL);
    /* every send returned: buffered values are queued, unbuffered ones taken */
    ck_assert_int_eq(chan_close(m->in), 0);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(ct[i], NULL);
    ck_assert_int_eq(atomic_load(&m->errors), 0);
    ck_assert_int_eq(atomic_load(&m->received), m->total);
    for (long i = 0; i < m->total; i++)
        ck_assert_msg(atomic_load(&m->seen[i]) == 1, "value %ld seen %d times", i,
                      atomic_load(&m->seen[i]));
    assert_quiet(cc, name);
    chan_release(m->in);
    chan_release(m->out);
    free(m);
    chan_disconnect(pc);
    chan_disconnect(cc);
}

START_TEST(t_mesh_buffered)
{
    mesh_run("mesh-buffered", 64);
}
END_TEST

START_TEST(t_mesh_unbuffered)
{
    mesh_run("mesh-unbuffered", 0);
}
END_TEST

/* ---- a receiver killed mid-stream loses nothing ---- */

enum { KN = 20000 };

struct killshare {
    _Atomic unsigned char child_seen[KN];
    atomic_long child_count;
    atomic_int holding;      /* the child stopped with a batch unacknowledged */
};

static void killed_child(struct killshare *sh, const char *addr)
{
    /* Acknowledge only on the next request: whatever chand counts as taken
     * by this process has been recorded in shared memory first. */
    setenv("CHAN_ACK_DELAY_MS", "600000", 1);
    chan_client_t *cl = chan_connect(addr, NULL, chan_now() + 5000);
    if (!cl)
        _exit(3);
    chan_t *ch = chan_open(cl, "killme", 100, 0, chan_now() + 5000);
    if (!ch)
        _exit(4);
    for (;;) {
        chan_val_t v[16];
        ssize_t n = chan_recv_many(ch, v, 16, -1);
        if (n < 0)
            _exit(5);
        for (ssize_t i = 0; i < n; i++) {
            uint32_t x;
            memcpy(&x, v[i].data, sizeof x);
            if (x < KN)
                atomic_fetch_add(&sh->child_seen[x], 1);
            atomic_fetch_add(&sh->child_count, 1);
            free(v[i].data);
        }
        /* Past a quarter of the stream, stop before the next request: the
         * batch just taken is then certainly unacknowledged when the kill
         * comes (waiting for the kill at a random moment, the child was
         * sometimes blocked on an empty channel with everything acked). */
        if (atomic_load(&sh->child_count) >= KN / 4) {
            atomic_store(&sh->holding, 1);
            for (;;)
                pause();
        }
    }
}

struct kproducer {
    chan_t *ch;
    int rc;
};

static void *kill_producer(void *arg)
{
    struct kproducer *p = arg;
    for (uint32_t i = 0; i < KN; i += 100) {
        uint32_t nums[100];
        chan_val_t v[100];
        for (uint32_t k = 0; k < 100; k++) {
            nums[k] = i + k;
            v[k] = (chan_val_t){ .data = &nums[k], .len = sizeof nums[k] };
        }
        if (chan_send_many(p->ch, v, 100, -1) != 100) {
            p->rc = -1;
            return NULL;
        }
    }
    return NULL;
}

START_TEST(t_sigkill_receiver_loses_nothing)
{
    struct killshare *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(sh, MAP_FAILED);
    memset(sh, 0, sizeof *sh);
    chan_client_t *pc = chand_dial(&D);
    chan_t *in = chand_open_ch(pc, "killme", 100);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        killed_child(sh, D.addr);
    struct kproducer p = { in, 0 };
    pthread_t t;
    pthread_create(&t, NULL, kill_producer, &p);
    /* let the child take a good part of the stream, then kill it */
    for (int i = 0; i < 2000 && !atomic_load(&sh->holding); i++)
        chand_sleep_ms(5);
    ck_assert_int_ge(atomic_load(&sh->child_count), KN / 4);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    /* the survivor takes everything else */
    chan_client_t *cc = chand_dial(&D);
    chan_t *out = chand_open_ch(cc, "killme", 100);
    static unsigned char seen[KN];
    static unsigned char marked[KN];
    memset(seen, 0, sizeof seen);
    memset(marked, 0, sizeof marked);
    long distinct = 0;
    for (long i = 0; i < KN; i++)
        distinct += atomic_load(&sh->child_seen[i]) > 0;
    int64_t give_up = chan_now() + 30000;
    while (distinct < KN && chan_now() < give_up) {
        chan_val_t v[64];
        ssize_t n = chan_recv_many(out, v, 64, chan_now() + 2000);
        if (n < 0)
            continue;
        for (ssize_t i = 0; i < n; i++) {
            uint32_t x;
            memcpy(&x, v[i].data, sizeof x);
            free(v[i].data);
            ck_assert_uint_lt(x, KN);
            ck_assert_msg(!seen[x], "value %u received twice by the survivor", x);
            seen[x] = 1;
            marked[x] = v[i].redelivered > 0;
            if (!atomic_load(&sh->child_seen[x]))
                distinct++;
        }
    }
    pthread_join(t, NULL);
    ck_assert_int_eq(p.rc, 0);
    ck_assert_int_eq(distinct, KN);                              /* nothing lost */
    long dup = 0, redelivered = 0;
    for (long i = 0; i < KN; i++) {
        ck_assert_int_le(atomic_load(&sh->child_seen[i]), 1);
        redelivered += marked[i];
        if (seen[i] && atomic_load(&sh->child_seen[i])) {
            dup++;
            ck_assert_msg(marked[i], "value %ld came twice without a redelivery mark", i);
        }
    }
    /* the child had values in flight when it died: some came back */
    ck_assert_int_gt(redelivered, 0);
    ck_assert_int_le(dup, redelivered);
    assert_quiet(cc, "killme");
    chan_release(in);
    chan_release(out);
    chan_disconnect(pc);
    chan_disconnect(cc);
    munmap(sh, sizeof *sh);
}
END_TEST

/* ---- raw sockets: bad input of every kind ---- */

/* After an error reply the daemon closes the connection. */
static void raw_expect_closed(int fd)
{
    char c;
    struct pollfd p = { fd, POLLIN, 0 };
    ck_assert_int_eq(poll(&p, 1, 5000), 1);
    ck_assert_int_eq(recv(fd, &c, 1, 0), 0);
    close(fd);
}

/* The daemon still serves everyone else. */
static void assert_daemon_fine(void)
{
    chan_client_t *cl = chand_dial(&D);
    ck_assert_int_eq(chan_ping(cl, chan_now() + 5000), 0);
    chan_disconnect(cl);
}

static void expect_error(int fd, Chan__Status want, const char *needle)
{
    char msg[256];
    Chan__Status st = raw_reply(fd, msg, sizeof msg);
    ck_assert_msg(st == want, "status %d, expected %d (%s)", st, want, msg);
    ck_assert_msg(strstr(msg, needle), "message '%s' lacks '%s'", msg, needle);
    raw_expect_closed(fd);
    assert_daemon_fine();
}

START_TEST(t_bad_garbage)
{
    int fd = raw_connect(D.port, 0);
    uint8_t junk[12];
    memset(junk, 0xff, sizeof junk);
    raw_write(fd, junk, sizeof junk);
    expect_error(fd, CHAN__STATUS__BAD_REQUEST, "varint");
}
END_TEST

START_TEST(t_bad_oversized)
{
    int fd = raw_connect(D.port, 0);
    uint8_t hdr[CHAN_FRAME_HDR_MAX];
    size_t n = chan_frame_put_len(hdr, (1u << 20) + 1);   /* over the default 1 MiB */
    raw_write(fd, hdr, n);
    expect_error(fd, CHAN__STATUS__TOO_LARGE, "max_frame");
}
END_TEST

START_TEST(t_bad_truncated_message)
{
    int fd = raw_connect(D.port, 0);
    /* a whole frame whose protobuf claims a field longer than the frame */
    uint8_t frame[] = { 3, 0x52, 0x05, 'a' };
    raw_write(fd, frame, sizeof frame);
    expect_error(fd, CHAN__STATUS__BAD_REQUEST, "not a valid Request");
}
END_TEST

START_TEST(t_bad_truncated_frame_then_eof)
{
    int fd = raw_connect(D.port, 0);
    uint8_t frame[11] = { 100 };   /* says 100 bytes, brings 10 */
    raw_write(fd, frame, sizeof frame);
    close(fd);
    assert_daemon_fine();
}
END_TEST

START_TEST(t_bad_before_hello)
{
    int fd = raw_connect(D.port, 0);
    Chan__Ping p = CHAN__PING__INIT;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = 7;
    rq.op_case = CHAN__REQUEST__OP_PING;
    rq.ping = &p;
    raw_request(fd, &rq);
    expect_error(fd, CHAN__STATUS__BAD_REQUEST, "first request must be Hello");
}
END_TEST

/* Before the Hello, a frame with no operation is a violation like any
 * other: acks only (the bytes of PROTOCOL.md's example), and a frame of
 * length 0.  A Hello without a version is version 0. */
START_TEST(t_bad_no_op_before_hello)
{
    int fd = raw_connect(D.port, 0);
    static const uint8_t ack_only[] = { 0x03, 0x12, 0x01, 0x01 }, empty[] = { 0x00 };
    if (_i == 2) {
        uint8_t hello[] = { 0x04, 0x08, 0x01, 0x52, 0x00 };   /* Hello{} */
        raw_write(fd, hello, sizeof hello);
        expect_error(fd, CHAN__STATUS__BAD_REQUEST, "version 0");
        return;
    }
    if (_i == 0)
        raw_write(fd, ack_only, sizeof ack_only);
    else
        raw_write(fd, empty, sizeof empty);
    expect_error(fd, CHAN__STATUS__BAD_REQUEST, "first request must be Hello");
}
END_TEST

/* A Ping of id with a payload of n bytes (filled with 'p'). */
static void raw_ping(int fd, uint64_t id, size_t n)
{
    static uint8_t payload[4096];
    ck_assert_uint_le(n, sizeof payload);
    memset(payload, 'p', n);
    Chan__Ping p = CHAN__PING__INIT;
    p.has_payload = true;
    p.payload.data = payload;
    p.payload.len = n;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = id;
    rq.op_case = CHAN__REQUEST__OP_PING;
    rq.ping = &p;
    raw_request(fd, &rq);
}

/* A Recv of id on channel name that will wait (timeout_ms absent). */
static void raw_blocking_recv(int fd, uint64_t id, const char *name)
{
    Chan__Recv r = CHAN__RECV__INIT;
    r.has_name = true;
    r.name.data = (uint8_t *)name;
    r.name.len = strlen(name);
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = id;
    rq.op_case = CHAN__REQUEST__OP_RECV;
    rq.recv = &r;
    raw_request(fd, &rq);
}

START_TEST(t_bad_reused_id)
{
    /* the id of a request still waiting, on any request: one answer for
     * that id (the error), and the connection closes */
    chan_client_t *cl = chand_dial(&D);
    chan_release(chand_open_ch(cl, "reuse", 0));
    chan_disconnect(cl);
    int fd = raw_session(&D);
    raw_blocking_recv(fd, 9, "reuse");
    switch (_i) {
    case 0: raw_ping(fd, 9, 0); break;
    case 1: raw_blocking_recv(fd, 9, "reuse"); break;
    default: {
        Chan__Stat st = CHAN__STAT__INIT;
        Chan__Request rq = CHAN__REQUEST__INIT;
        rq.has_id = true;
        rq.id = 9;
        rq.op_case = CHAN__REQUEST__OP_STAT;
        rq.stat = &st;
        raw_request(fd, &rq);
    }
    }
    expect_error(fd, CHAN__STATUS__BAD_REQUEST, "still waiting");
}
END_TEST

START_TEST(t_bad_id_zero)
{
    int fd = raw_session(&D);
    raw_ping(fd, 0, 1);
    expect_error(fd, CHAN__STATUS__BAD_REQUEST, "without an id");
}
END_TEST

START_TEST(t_no_op_frame_gets_no_reply)
{
    /* a frame with an id and no op carries acks only: no reply; the next
     * request is answered first */
    int fd = raw_session(&D);
    uint8_t frame[] = { 2, 0x08, 0x05 };   /* Request{id: 5} */
    raw_write(fd, frame, sizeof frame);
    uint8_t empty[] = { 0 };   /* length 0: nothing set, no op either */
    raw_write(fd, empty, sizeof empty);
    raw_ping(fd, 6, 3);
    static uint8_t buf[4096];
    chan_arena_t a;
    chan_arena_init(&a);
    Chan__Reply *r = raw_reply_decode(fd, buf, sizeof buf, &a);
    ck_assert_uint_eq(r->id, 6);
    ck_assert_int_eq(r->result_case, CHAN__REPLY__RESULT_PONG);
    chan_arena_free(&a);
    close(fd);
}
END_TEST

START_TEST(t_ping_payload_limit)
{
    /* max_value = max_frame - 512: a payload of max_value is echoed whole,
     * one byte more is TOO_LARGE (it was echoed as an empty Pong) */
    chand_proc_t E;
    const char *const extra[] = { "--max-frame", "2048", "--max-output", "65536", NULL };
    ck_assert_int_eq(chand_start(&E, extra), 0);
    int fd = raw_session(&E);
    static uint8_t buf[4096];
    chan_arena_t a;
    chan_arena_init(&a);
    raw_ping(fd, 2, 2048 - 512);
    Chan__Reply *r = raw_reply_decode(fd, buf, sizeof buf, &a);
    ck_assert_int_eq(r->status, CHAN__STATUS__OK);
    ck_assert_int_eq(r->result_case, CHAN__REPLY__RESULT_PONG);
    ck_assert_uint_eq(r->pong->payload.len, 2048 - 512);
    chan_arena_free(&a);
    raw_ping(fd, 3, 2048 - 511);
    char msg[256];
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__TOO_LARGE);
    raw_ping(fd, 4, 0);   /* the connection stays */
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__OK);
    close(fd);
    ck_assert_int_eq(chand_stop(&E), 0);
}
END_TEST

/* Acknowledgements ride on the next request unless the frame would then be
 * over the server's limit: a receiver holding many, sending the largest
 * value the limit allows, sends it without them, and they go with the next
 * request (loop 0: a ping, the ack delay being long) or alone (loop 1). */
START_TEST(t_acks_that_do_not_fit_wait)
{
    enum { N = 600, MAX_VALUE = (1 << 20) - 512 };   /* chand's --max-frame 1m */
    setenv("CHAN_ACK_DELAY_MS", _i ? "1" : "600000", 1);
    chan_client_t *cl = chand_dial(&D);
    unsetenv("CHAN_ACK_DELAY_MS");
    chan_t *q = chand_open_ch(cl, "many-acks", N), *big = chand_open_ch(cl, "big-value", 4);
    char v[16];
    for (int i = 0; i < N; i++) {
        int n = snprintf(v, sizeof v, "v%d", i);
        ck_assert_int_eq(chan_send(q, v, (size_t)n, chan_now() + 5000), 0);
    }
    chan_val_t vals[N];
    ssize_t got = 0;   /* one or two receives: 600 ids of 2 bytes to acknowledge */
    while (got < N) {
        ssize_t n = chan_recv_many(q, vals + got, N - (size_t)got, chan_now() + 5000);
        ck_assert_int_gt(n, 0);
        got += n;
    }
    for (int i = 0; i < N; i++)
        free(vals[i].data);
    char *value = malloc(MAX_VALUE);
    memset(value, 'b', MAX_VALUE);
    ck_assert_int_eq(chan_send(big, value, MAX_VALUE, chan_now() + 5000), 0);
    chan_stat_t st;
    for (int ms = 0; ms < 5000; ms += 10) {
        if (!_i)
            ck_assert_int_eq(chan_ping(cl, chan_now() + 5000), 0);
        ck_assert_int_eq(chan_stat(cl, "many-acks", &st, chan_now() + 5000), 0);
        if (!st.inflight)
            break;
        chand_sleep_ms(10);
    }
    ck_assert_msg(st.inflight == 0, "%llu values still unacknowledged",
                  (unsigned long long)st.inflight);
    ck_assert_int_eq(chan_recv(big, value, MAX_VALUE, chan_now() + 5000), MAX_VALUE);
    free(value);
    chan_release(big);
    chan_release(q);
    chan_disconnect(cl);
}
END_TEST

/* Delivery ids the client owes chand, taken off its queue as each
 * receive leaves them there (the ack delay being long): the values stay
 * in flight until the test acks or nacks them itself. */
static size_t recv_withholding(chan_client_t *cl, chan_t *q, uint64_t *ids, size_t n,
                               chan_val_t *vals)
{
    size_t got = 0, nids = 0;
    while (got < n) {
        ssize_t k = chan_recv_many(q, vals + got, n - got, chan_now() + 5000);
        ck_assert_int_gt(k, 0);
        got += (size_t)k;
        pthread_mutex_lock(&cl->lock);
        ck_assert_uint_le(nids + cl->acks.n, n);
        for (size_t i = 0; i < cl->acks.n; i++)
            ids[nids++] = cl->acks.v[i];
        cl->acks.n = 0;
        pthread_mutex_unlock(&cl->lock);
    }
    return nids;
}

static uint64_t conn_gen(chan_client_t *cl)
{
    pthread_mutex_lock(&cl->lock);
    uint64_t g = cl->gen;
    pthread_mutex_unlock(&cl->lock);
    return g;
}

/* Acknowledgements and ids given back that together are over the server's
 * --max-frame go in several frames: one too big would be a protocol error
 * and cost the connection.  Given back in several frames, each channel
 * still gets its values back in their order. */
START_TEST(t_id_lists_split_to_fit)
{
    enum { N = 700 };   /* ids of two bytes: 1,400 bytes, over 1,024 */
    chand_proc_t E;
    const char *const extra[] = { "--max-frame", "1024", NULL };
    ck_assert_int_eq(chand_start(&E, extra), 0);
    setenv("CHAN_ACK_DELAY_MS", "600000", 1);
    chan_client_t *cl = chand_dial(&E);
    unsetenv("CHAN_ACK_DELAY_MS");
    chan_t *q = chand_open_ch(cl, "split", N);
    char v[16];
    for (int i = 0; i < N; i++) {
        int n = snprintf(v, sizeof v, "v%d", i);
        ck_assert_int_eq(chan_send(q, v, (size_t)n, chan_now() + 5000), 0);
    }
    uint64_t gen = conn_gen(cl);
    static uint64_t ids[N];
    static chan_val_t vals[N];

    /* given back: all N in one list */
    ck_assert_uint_eq(recv_withholding(cl, q, ids, N, vals), N);
    for (int i = 0; i < N; i++)
        free(vals[i].data);
    pthread_mutex_lock(&cl->lock);
    for (int i = N - 1; i >= 0; i--)   /* any order: one list */
        ck_assert_int_eq(chani_idlist_add(&cl->nacks, ids[i]), 0);
    chani_flush_nacks_locked(cl);
    ck_assert_uint_eq(cl->nacks.n, 0);
    pthread_mutex_unlock(&cl->lock);
    ck_assert_int_eq(chan_ping(cl, chan_now() + 5000), 0);
    ck_assert_uint_eq(conn_gen(cl), gen);   /* the same connection */

    /* back in order, not marked (never used); then acknowledged, all N */
    ck_assert_uint_eq(recv_withholding(cl, q, ids, N, vals), N);
    for (int i = 0; i < N; i++) {
        int n = snprintf(v, sizeof v, "v%d", i);
        ck_assert_msg(vals[i].len == (size_t)n && !memcmp(vals[i].data, v, (size_t)n),
                      "value %d is '%.*s'", i, (int)vals[i].len, (char *)vals[i].data);
        ck_assert_uint_eq(vals[i].redelivered, 0);
        free(vals[i].data);
    }
    pthread_mutex_lock(&cl->lock);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(chani_idlist_add(&cl->acks, ids[i]), 0);
    ck_assert(chani_send_ids_locked(cl, &cl->acks, NULL));
    ck_assert_uint_eq(cl->acks.n, 0);
    pthread_mutex_unlock(&cl->lock);
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(cl, "split", &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(conn_gen(cl), gen);
    ck_assert_uint_eq(st.inflight, 0);
    ck_assert_uint_eq(st.len, 0);
    chan_release(q);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&E), 0);
}
END_TEST

START_TEST(t_hello_deadline)
{
    /* a socket that never says Hello hears why and is closed when
     * --hello-timeout passes, not seconds later */
    chand_proc_t E;
    const char *const extra[] = { "--hello-timeout", "300ms", NULL };
    ck_assert_int_eq(chand_start(&E, extra), 0);
    int fd = raw_connect(E.port, 0);
    int64_t t0 = chan_now();
    char msg[256];
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__BAD_REQUEST);
    ck_assert_msg(strstr(msg, "no Hello within 300 ms"), "message '%s'", msg);
    raw_expect_closed(fd);
    int64_t took = chan_now() - t0;
    ck_assert_msg(took >= 250 && took < 3000, "closed after %lld ms", (long long)took);
    /* one that said Hello stays past it */
    fd = raw_session(&E);
    chand_sleep_ms(600);
    raw_ping(fd, 2, 0);
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__OK);
    close(fd);
    ck_assert_int_eq(chand_stop(&E), 0);
}
END_TEST

START_TEST(t_bad_version)
{
    int fd = raw_connect(D.port, 0);
    raw_hello(fd, 99, NULL);
    expect_error(fd, CHAN__STATUS__BAD_REQUEST, "version");
}
END_TEST

START_TEST(t_bad_unknown_request)
{
    int fd = raw_connect(D.port, 0);
    raw_hello(fd, 1, NULL);
    char msg[256];
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__OK);
    /* id 5, then field 99 (a varint): an op from a future protocol */
    uint8_t frame[] = { 5, 0x08, 0x05, 0x98, 0x06, 0x01 };
    raw_write(fd, frame, sizeof frame);
    expect_error(fd, CHAN__STATUS__BAD_REQUEST, "unknown request");
}
END_TEST

START_TEST(t_bad_names)
{
    static const struct {
        const char *name;
        size_t len;
    } bad[] = { { "", 0 }, { "with space", 10 }, { "nul\0inside", 10 }, { "caf\xc3\xa9", 5 }, { NULL, 256 } };
    char longname[256];
    memset(longname, 'a', sizeof longname);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = raw_connect(D.port, 0);
        raw_hello(fd, 1, NULL);
        char msg[256];
        ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__OK);
        Chan__Open o = CHAN__OPEN__INIT;
        o.has_name = true;
        o.name.data = (uint8_t *)(bad[i].name ? bad[i].name : longname);
        o.name.len = bad[i].len;
        Chan__Request rq = CHAN__REQUEST__INIT;
        rq.has_id = true;
        rq.id = 2;
        rq.op_case = CHAN__REQUEST__OP_OPEN;
        rq.open = &o;
        raw_request(fd, &rq);
        expect_error(fd, CHAN__STATUS__BAD_REQUEST, "bad channel name");
    }
}
END_TEST

START_TEST(t_bad_select_case)
{
    int fd = raw_connect(D.port, 0);
    raw_hello(fd, 1, NULL);
    char msg[256];
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__OK);
    Chan__Case k = CHAN__CASE__INIT;
    k.has_name = true;
    k.name.data = (uint8_t *)"x";
    k.name.len = 1;
    Chan__Case *kp = &k;
    Chan__Select s = CHAN__SELECT__INIT;
    s.n_cases = 1;
    s.cases = &kp;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = 3;
    rq.op_case = CHAN__REQUEST__OP_SELECT;
    rq.select = &s;
    raw_request(fd, &rq);
    expect_error(fd, CHAN__STATUS__BAD_REQUEST, "op");
}
END_TEST

/* The two-phase fields take any value without harm: a priority of all
 * ones, in_order, and Commit timeouts at the int64 extremes (under UBSan an
 * overflowing deadline would abort chand).  A commit of nothing, or twice,
 * is NOT_FOUND and the connection goes on. */
static void raw_commit(int fd, uint64_t id, uint64_t target, int64_t timeout_ms)
{
    Chan__Commit m = CHAN__COMMIT__INIT;
    m.has_target = true;
    m.target = target;
    m.has_timeout_ms = true;
    m.timeout_ms = timeout_ms;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = id;
    rq.op_case = CHAN__REQUEST__OP_COMMIT;
    rq.commit = &m;
    raw_request(fd, &rq);
}

/* One Stat{all} page over a raw connection: the names in it (counted in
 * seen by their number) and the next cursor. */
static uint64_t raw_stat_page(int fd, uint64_t id, uint64_t cursor, uint32_t limit,
                              int *seen, int nseen, size_t *npage)
{
    Chan__Stat m = CHAN__STAT__INIT;
    m.has_all = m.all = true;
    m.has_cursor = true;
    m.cursor = cursor;
    m.has_limit = limit != 0;
    m.limit = limit;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = id;
    rq.op_case = CHAN__REQUEST__OP_STAT;
    rq.stat = &m;
    raw_request(fd, &rq);
    static uint8_t buf[2048];   /* the daemon's --max-frame: a bigger page fails */
    chan_arena_t a;
    chan_arena_init(&a);
    Chan__Reply *r = raw_reply_decode(fd, buf, sizeof buf, &a);
    ck_assert_int_eq(r->status, CHAN__STATUS__OK);
    ck_assert_ptr_null(r->message);
    ck_assert_int_eq(r->result_case, CHAN__REPLY__RESULT_STAT);
    ck_assert(r->stat->has_next_cursor);
    for (size_t i = 0; i < r->stat->n_channels; i++) {
        const ProtobufCBinaryData *nm = &r->stat->channels[i]->name;
        int k;
        if (nm->len > 3 && memcmp(nm->data, "pg.", 3) == 0 && sscanf((const char *)nm->data + 3, "%d", &k) == 1 &&
            k >= 0 && k < nseen)
            seen[k]++;
    }
    *npage = r->stat->n_channels;
    uint64_t next = r->stat->next_cursor;
    chan_arena_free(&a);
    return next;
}

START_TEST(t_stat_pages)
{
    /* a daemon of its own with small frames: pages must fit them */
    chand_proc_t E;
    const char *const extra[] = { "--max-frame", "2048", "--max-output", "65536", NULL };
    ck_assert_int_eq(chand_start(&E, extra), 0);
    int fd = raw_connect(E.port, 0);
    raw_hello(fd, 1, NULL);
    char msg[256];
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__OK);
    enum { N = 600 };
    int seen[N] = { 0 };
    size_t npage;
    /* no channel at all: one empty page, the last */
    ck_assert_uint_eq(raw_stat_page(fd, 2, 0, 0, seen, N, &npage), 0);
    ck_assert_uint_eq(npage, 0);
    chan_client_t *cl = chand_dial(&E);
    char name[256];
    for (int i = 0; i < N; i++) {
        /* every tenth name is long: a page of 7 of them is over 1 KiB */
        snprintf(name, sizeof name, "pg.%04d%s", i, i % 10 ? "" : "-" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        chan_release(chand_open_ch(cl, name, 1));
    }
    /* page by 7 while channels come and go: each of the 600 once */
    uint64_t cur = 0, id = 3;
    int pages = 0, added = 0;
    do {
        cur = raw_stat_page(fd, id++, cur, 7, seen, N, &npage);
        ck_assert_uint_le(npage, 7 + 8);   /* whole buckets: rarely more than one extra */
        snprintf(name, sizeof name, "new.%d", added++);
        chan_release(chand_open_ch(cl, name, 0));
        if (added % 2 == 0)
            ck_assert_int_eq(chan_delete(cl, name, chan_now() + 5000), 0);
        pages++;
    } while (cur && pages < 10000);
    ck_assert_uint_eq(cur, 0);
    ck_assert_int_ge(pages, N / 15);
    for (int i = 0; i < N; i++)
        ck_assert_msg(seen[i] == 1, "pg.%04d listed %d times", i, seen[i]);
    /* an invented cursor is no error, and the listing from it ends */
    cur = 0xdeadbeefcafef00dull;
    for (pages = 0; cur && pages < 10000; pages++)
        cur = raw_stat_page(fd, id++, cur, 0, seen, 0, &npage);
    ck_assert_uint_eq(cur, 0);
    /* chan_list: all of them, in name order, each once */
    chan_stat_t *list;
    ssize_t n = chan_list(cl, &list, chan_now() + 10000);
    ck_assert_int_eq(n, N + added / 2 + added % 2);
    for (ssize_t i = 1; i < n; i++)
        ck_assert_msg(strcmp(list[i - 1].name, list[i].name) < 0, "%s before %s", list[i - 1].name,
                      list[i].name);
    ck_assert_str_eq(list[n - 1].name, "pg.0599");
    free(list);
    chan_disconnect(cl);
    close(fd);
    ck_assert_int_eq(chand_stop(&E), 0);
}
END_TEST

START_TEST(t_two_phase_fields_any_value)
{
    chan_client_t *cl = chand_dial(&D);
    chan_t *ch = chand_open_ch(cl, "tp-fields", 1);
    int fd = raw_connect(D.port, 0);
    raw_hello(fd, 1, NULL);
    char msg[256];
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__OK);
    Chan__Case k = CHAN__CASE__INIT;
    k.has_name = true;
    k.name.data = (uint8_t *)"tp-fields";
    k.name.len = strlen("tp-fields");
    k.has_op = true;
    k.op = CHAN__OP__SEND;
    k.has_value = true;
    k.value.data = (uint8_t *)"v";
    k.value.len = 1;
    Chan__Case *kp = &k;
    Chan__Select sel = CHAN__SELECT__INIT;
    sel.n_cases = 1;
    sel.cases = &kp;
    sel.has_reserve = sel.reserve = true;
    sel.has_priority = true;
    sel.priority = UINT64_MAX;
    sel.has_in_order = sel.in_order = true;
    sel.has_timeout_ms = true;
    sel.timeout_ms = 0;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = 2;
    rq.op_case = CHAN__REQUEST__OP_SELECT;
    rq.select = &sel;
    raw_request(fd, &rq);
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__RESERVED);
    raw_commit(fd, 3, 2, INT64_MAX);
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__OK);
    raw_commit(fd, 4, 2, INT64_MIN);                       /* twice */
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__NOT_FOUND);
    raw_commit(fd, 5, 999, -1);                            /* nothing */
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__NOT_FOUND);
    char v[4];
    ck_assert_int_eq(chan_recv(ch, v, sizeof v, chan_now() + 5000), 1);
    ck_assert_int_eq(v[0], 'v');
    close(fd);
    chan_release(ch);
    chan_disconnect(cl);
    assert_daemon_fine();
}
END_TEST

/* ---- what PROTOCOL.md promises a client written from it alone ---- */

/* A reserving select of id on name with one case (SEND of value, or RECV),
 * timeout_ms 0. */
static void raw_reserve(int fd, uint64_t id, const char *name, const char *value)
{
    Chan__Case k = CHAN__CASE__INIT;
    k.has_name = true;
    k.name.data = (uint8_t *)name;
    k.name.len = strlen(name);
    k.has_op = true;
    k.op = value ? CHAN__OP__SEND : CHAN__OP__RECV;
    if (value) {
        k.has_value = true;
        k.value.data = (uint8_t *)value;
        k.value.len = strlen(value);
    }
    Chan__Case *kp = &k;
    Chan__Select sel = CHAN__SELECT__INIT;
    sel.n_cases = 1;
    sel.cases = &kp;
    sel.has_reserve = sel.reserve = true;
    sel.has_priority = true;
    sel.priority = 7;
    sel.has_timeout_ms = true;
    sel.timeout_ms = 0;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = id;
    rq.op_case = CHAN__REQUEST__OP_SELECT;
    rq.select = &sel;
    raw_request(fd, &rq);
}

static void raw_target(int fd, uint64_t id, Chan__Request__OpCase op, uint64_t target)
{
    Chan__Cancel c = CHAN__CANCEL__INIT;
    Chan__Release r = CHAN__RELEASE__INIT;
    c.has_target = r.has_target = true;
    c.target = r.target = target;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = id;
    rq.op_case = op;
    if (op == CHAN__REQUEST__OP_CANCEL)
        rq.cancel = &c;
    else
        rq.release = &r;
    raw_request(fd, &rq);
}

/* A select answered RESERVED no longer waits: Cancel is NOT_FOUND and
 * leaves the reservation (the buffer slot stays taken); Release ends it.
 * A committed send case is answered with a status alone. */
START_TEST(t_doc_reserved_select_not_cancelled)
{
    chan_client_t *cl = chand_dial(&D);
    chan_t *ch = chand_open_ch(cl, "doc-reserved", 1);
    int fd = raw_session(&D);
    char msg[256];
    raw_reserve(fd, 2, "doc-reserved", "v");
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__RESERVED);
    raw_target(fd, 3, CHAN__REQUEST__OP_CANCEL, 2);
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__NOT_FOUND);
    ck_assert_int_eq(raw_send(fd, 4, "doc-reserved", "w", 1, msg, sizeof msg), CHAN__STATUS__TIMEOUT);
    raw_target(fd, 5, CHAN__REQUEST__OP_RELEASE, 2);
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__OK);
    ck_assert_int_eq(raw_send(fd, 6, "doc-reserved", "w", 1, msg, sizeof msg), CHAN__STATUS__OK);
    char v[4];
    ck_assert_int_eq(chan_recv(ch, v, sizeof v, chan_now() + 5000), 1);
    ck_assert_int_eq(v[0], 'w');
    /* reserved again and committed: OK, no SendReply, no SelectReply */
    raw_reserve(fd, 7, "doc-reserved", "x");
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__RESERVED);
    raw_commit(fd, 8, 7, -1);
    static uint8_t buf[4096];
    chan_arena_t a;
    chan_arena_init(&a);
    Chan__Reply *r = raw_reply_decode(fd, buf, sizeof buf, &a);
    ck_assert_uint_eq(r->id, 8);
    ck_assert_int_eq(r->has_status ? r->status : CHAN__STATUS__OK, CHAN__STATUS__OK);
    ck_assert_int_eq(r->result_case, CHAN__REPLY__RESULT__NOT_SET);
    chan_arena_free(&a);
    ck_assert_int_eq(chan_recv(ch, v, sizeof v, chan_now() + 5000), 1);
    ck_assert_int_eq(v[0], 'x');
    close(fd);
    chan_release(ch);
    chan_disconnect(cl);
}
END_TEST

/* A Recv of id on name: max values, max_bytes (-1: absent), timeout 0. */
static Chan__Reply *raw_recv_now(int fd, uint64_t id, const char *name, uint32_t max,
                                 int64_t max_bytes, uint8_t *buf, size_t size, chan_arena_t *a)
{
    Chan__Recv m = CHAN__RECV__INIT;
    m.has_name = true;
    m.name.data = (uint8_t *)name;
    m.name.len = strlen(name);
    m.has_max = true;
    m.max = max;
    m.has_max_bytes = max_bytes >= 0;
    m.max_bytes = max_bytes >= 0 ? (uint64_t)max_bytes : 0;
    m.has_timeout_ms = true;
    m.timeout_ms = 0;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = id;
    rq.op_case = CHAN__REQUEST__OP_RECV;
    rq.recv = &m;
    raw_request(fd, &rq);
    return raw_reply_decode(fd, buf, size, a);
}

/* max_bytes present and 0 allows empty values only; with max above 1 the
 * reply stops before a longer value, which stays first in line. */
START_TEST(t_doc_max_bytes)
{
    chan_client_t *cl = chand_dial(&D);
    chan_t *ch = chand_open_ch(cl, "doc-maxbytes", 8);
    const char *vals[] = { "", "a", "b", "cc", "d" };
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(chan_send(ch, vals[i], strlen(vals[i]), chan_now() + 5000), 0);
    int fd = raw_session(&D);
    static uint8_t buf[4096];
    chan_arena_t a;
    chan_arena_init(&a);
    Chan__Reply *r = raw_recv_now(fd, 2, "doc-maxbytes", 1, 0, buf, sizeof buf, &a);
    ck_assert_int_eq(r->status, CHAN__STATUS__OK);   /* "" fits max_bytes 0 */
    ck_assert_uint_eq(r->recv->n_deliveries, 1);
    ck_assert_uint_eq(r->recv->deliveries[0]->value.len, 0);
    chan_arena_reset(&a);
    r = raw_recv_now(fd, 3, "doc-maxbytes", 1, 0, buf, sizeof buf, &a);
    ck_assert_int_eq(r->status, CHAN__STATUS__TOO_LARGE);   /* "a" does not */
    chan_arena_reset(&a);
    r = raw_recv_now(fd, 4, "doc-maxbytes", 4, 1, buf, sizeof buf, &a);
    ck_assert_int_eq(r->status, CHAN__STATUS__OK);   /* a, b: then cc stops it */
    ck_assert_uint_eq(r->recv->n_deliveries, 2);
    ck_assert_uint_eq(r->recv->deliveries[1]->value.len, 1);
    ck_assert_int_eq(r->recv->deliveries[1]->value.data[0], 'b');
    chan_arena_reset(&a);
    r = raw_recv_now(fd, 5, "doc-maxbytes", 4, -1, buf, sizeof buf, &a);
    ck_assert_int_eq(r->status, CHAN__STATUS__OK);   /* absent: any length */
    ck_assert_uint_eq(r->recv->n_deliveries, 2);
    ck_assert_uint_eq(r->recv->deliveries[0]->value.len, 2);
    chan_arena_free(&a);
    close(fd);
    chan_release(ch);
    chan_disconnect(cl);
}
END_TEST

/* While max_pending requests wait, a further Recv is BUSY even with
 * timeout_ms 0; a Ping is served. */
START_TEST(t_doc_max_pending_refuses_any_wait)
{
    chand_proc_t E;
    const char *const extra[] = { "--max-pending", "2", NULL };
    ck_assert_int_eq(chand_start(&E, extra), 0);
    chan_client_t *cl = chand_dial(&E);
    chan_release(chand_open_ch(cl, "doc-pending", 1));
    chan_disconnect(cl);
    int fd = raw_session(&E);
    raw_blocking_recv(fd, 2, "doc-pending");
    raw_blocking_recv(fd, 3, "doc-pending");
    static uint8_t buf[4096];
    chan_arena_t a;
    chan_arena_init(&a);
    Chan__Reply *r = raw_recv_now(fd, 4, "doc-pending", 1, -1, buf, sizeof buf, &a);
    ck_assert_uint_eq(r->id, 4);
    ck_assert_int_eq(r->status, CHAN__STATUS__BUSY);
    chan_arena_free(&a);
    raw_ping(fd, 5, 1);
    char msg[256];
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__OK);
    close(fd);
    ck_assert_int_eq(chand_stop(&E), 0);
}
END_TEST

/* ---- a redial while other threads call ---- */

/* Two threads send and receive batches on one client while the daemon is
 * replaced by one with other limits.  The reconnection (made by whichever
 * caller comes first) installs the new daemon's limits while the others
 * size their batches by them: under ThreadSanitizer that was a data race
 * (the limits were plain fields, read without the client's lock). */
struct redial_caller {
    chan_t *ch;
    atomic_bool stop;
    atomic_long ok;        /* batches sent and received back */
    atomic_long bad;       /* values that came back wrong */
};

static void *redial_call(void *arg)
{
    struct redial_caller *c = arg;
    static const uint32_t nums[4] = { 7, 7, 7, 7 };
    chan_val_t vals[4];
    for (int i = 0; i < 4; i++)
        vals[i] = (chan_val_t){ .data = (void *)&nums[i], .len = sizeof nums[i] };
    while (!atomic_load(&c->stop)) {
        if (chan_send_many(c->ch, vals, 4, chan_now() + 500) != 4) {
            chand_sleep_ms(5);   /* the daemon is down: calls fail at once */
            continue;
        }
        chan_val_t got[4];
        ssize_t n = chan_recv_many(c->ch, got, 4, chan_now() + 500);
        for (ssize_t i = 0; i < n; i++) {
            if (got[i].len != 4 || *(uint32_t *)got[i].data != 7)
                atomic_fetch_add(&c->bad, 1);
            free(got[i].data);
        }
        if (n > 0)
            atomic_fetch_add(&c->ok, 1);
    }
    return NULL;
}

static void wait_calls(struct redial_caller *c, long more)
{
    long want = atomic_load(&c[0].ok) + atomic_load(&c[1].ok) + more;
    for (int i = 0; i < 1000 && atomic_load(&c[0].ok) + atomic_load(&c[1].ok) < want; i++)
        chand_sleep_ms(10);
    ck_assert_int_ge(atomic_load(&c[0].ok) + atomic_load(&c[1].ok), want);
}

START_TEST(t_redial_under_callers)
{
    chand_proc_t d;
    const char *args1[] = { "--max-batch", "64", NULL };
    ck_assert_int_eq(chand_start(&d, args1), 0);
    chan_client_t *cl = chand_dial(&d);
    chan_t *ch = chand_open_ch(cl, "redial", 1000);
    struct redial_caller c[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        c[i].ch = ch;
        atomic_init(&c[i].stop, false);
        atomic_init(&c[i].ok, 0);
        atomic_init(&c[i].bad, 0);
        ck_assert_int_eq(pthread_create(&t[i], NULL, redial_call, &c[i]), 0);
    }
    wait_calls(c, 20);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", d.port);
    kill(d.pid, SIGKILL);
    waitpid(d.pid, NULL, 0);
    d.pid = 0;
    chand_stop(&d);
    chand_proc_t d2;
    const char *args2[] = { "--listen", listen, "--max-batch", "3", NULL };
    ck_assert_int_eq(chand_start(&d2, args2), 0);
    /* the channel went with the old daemon: make it anew (reconnecting,
     * after the backoff, unless a caller has); then the callers go on,
     * in batches of 3 */
    chan_t *again = NULL;
    for (int i = 0; i < 200 && !again; i++)
        if (!(again = chan_open(cl, "redial", 1000, 0, chan_now() + 1000)))
            chand_sleep_ms(50);
    ck_assert_ptr_nonnull(again);
    wait_calls(c, 20);
    for (int i = 0; i < 2; i++) {
        atomic_store(&c[i].stop, true);
        pthread_join(t[i], NULL);
        ck_assert_int_eq(atomic_load(&c[i].bad), 0);
    }
    chan_release(again);
    chan_release(ch);
    chan_disconnect(cl);
    chand_stop(&d2);
}
END_TEST

/* ---- a consumer that stops reading is cut off; its values come back ---- */

START_TEST(t_slow_consumer_disconnected)
{
    chand_proc_t d2;
    const char *args[] = { "--max-frame", "16k", "--max-output", "64k", NULL };
    ck_assert_int_eq(chand_start(&d2, args), 0);
    chan_client_t *cl = chan_connect(d2.addr, NULL, chan_now() + 5000);
    ck_assert_ptr_nonnull(cl);
    enum { VALS = 3000, SIZE = 8000 };
    chan_t *ch = chan_open(cl, "flood", VALS, 0, chan_now() + 5000);
    ck_assert_ptr_nonnull(ch);
    static char val[SIZE];
    for (uint32_t i = 0; i < VALS; i++) {
        memcpy(val, &i, sizeof i);
        ck_assert_int_eq(chan_send(ch, val, SIZE, -1), 0);
    }
    /* a raw client asks for everything and never reads */
    int fd = raw_connect(d2.port, 4096);
    raw_hello(fd, 1, NULL);
    for (uint32_t i = 0; i < VALS; i++) {
        Chan__Recv r = CHAN__RECV__INIT;
        r.has_name = true;
        r.name.data = (uint8_t *)"flood";
        r.name.len = 5;
        Chan__Request rq = CHAN__REQUEST__INIT;
        rq.has_id = true;
        rq.id = 10 + i;
        rq.op_case = CHAN__REQUEST__OP_RECV;
        rq.recv = &r;
        uint8_t buf[256];
        size_t n = chan_frame_encode_request(&rq, buf);
        if (send(fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n)
            break;   /* already cut off */
    }
    /* every value is still received, exactly once, by a reader */
    static unsigned char seen[VALS];
    memset(seen, 0, sizeof seen);
    long got = 0, again = 0;
    int64_t give_up = chan_now() + 30000;
    while (got < VALS && chan_now() < give_up) {
        chan_val_t v[32];
        ssize_t n = chan_recv_many(ch, v, 32, chan_now() + 2000);
        for (ssize_t i = 0; i < n; i++) {
            uint32_t x;
            memcpy(&x, v[i].data, sizeof x);
            ck_assert_uint_eq(v[i].len, SIZE);
            ck_assert_uint_lt(x, VALS);
            ck_assert(!seen[x]);
            seen[x] = 1;
            got++;
            again += v[i].redelivered > 0;
            free(v[i].data);
        }
    }
    ck_assert_int_eq(got, VALS);
    ck_assert_int_gt(again, 0);   /* some had been handed to the slow one */
    close(fd);
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d2), 0);
}
END_TEST

/* ---- the session in PROTOCOL.md, replayed ---- */

/* Read exactly one frame (5 s at most) into buf; its whole length. */
static size_t raw_read_frame(int fd, uint8_t *buf, size_t size)
{
    size_t got = 0;
    uint64_t body;
    size_t hdr;
    for (;;) {
        int h = chan_frame_header(buf, got, size, &body, &hdr);
        ck_assert_int_ge(h, 0);
        if (h == CHAN_FRAME_OK && got == hdr + body)
            return got;
        size_t want = h == CHAN_FRAME_OK ? hdr + body - got : 1;
        struct pollfd p = { fd, POLLIN, 0 };
        ck_assert_int_eq(poll(&p, 1, 5000), 1);
        ssize_t n = recv(fd, buf + got, want, 0);
        ck_assert_msg(n > 0, "connection closed before a reply");
        got += (size_t)n;
    }
}

/* The trailing run of two-digit hex tokens of a line, into out; their
 * count. */
static size_t doc_hex(const char *line, uint8_t *out, size_t max)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", line);
    char *tok[128];
    size_t nt = 0;
    for (char *t = strtok(copy, " \t\n"); t && nt < 128; t = strtok(NULL, " \t\n"))
        tok[nt++] = t;
    size_t first = nt;
    while (first > 0 && strlen(tok[first - 1]) == 2 && isxdigit((unsigned char)tok[first - 1][0]) &&
           isxdigit((unsigned char)tok[first - 1][1]))
        first--;
    ck_assert_uint_le(nt - first, max);
    for (size_t i = first; i < nt; i++)
        out[i - first] = (uint8_t)strtoul(tok[i], NULL, 16);
    return nt - first;
}

static void hex_of(const uint8_t *p, size_t n, char *out, size_t size)
{
    out[0] = 0;
    for (size_t i = 0; i < n && 3 * i + 3 <= size; i++)
        sprintf(out + (i ? 3 * i - 1 : 0), i ? " %02x" : "%02x", p[i]);
}

/* One line of the documented session: who sends, and the bytes (none:
 * bytes the document does not fix). */
struct doc_step {
    bool to_server;
    char text[128];
    uint8_t hex[256];
    size_t n;
};

/* The session block of PROTOCOL.md, parsed into steps; their count.  A
 * line that begins with blanks continues the previous step's bytes. */
static int doc_session(struct doc_step *st, int max)
{
    char path[512];
    const char *top = getenv("top_srcdir");
    snprintf(path, sizeof path, "%s/docs/PROTOCOL.md", top ? top : "..");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    char line[512];
    bool in_block = false, seen = false;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!seen) {
            seen = strstr(line, "Example: the bytes of a whole session") != NULL;
            continue;
        }
        if (strncmp(line, "```", 3) == 0) {
            if (in_block)
                break;
            in_block = true;
            continue;
        }
        if (!in_block)
            continue;
        if (line[0] == ' ') {
            ck_assert_int_gt(n, 0);
            struct doc_step *d = &st[n - 1];
            d->n += doc_hex(line, d->hex + d->n, sizeof d->hex - d->n);
            continue;
        }
        ck_assert_int_lt(n, max);
        struct doc_step *d = &st[n++];
        if (strncmp(line, "C→S", strlen("C→S")) == 0)
            d->to_server = true;
        else if (strncmp(line, "S→C", strlen("S→C")) == 0)
            d->to_server = false;
        else
            ck_abort_msg("a line of the session is neither C→S nor S→C: %s", line);
        snprintf(d->text, sizeof d->text, "%.127s", line);
        d->n = doc_hex(line, d->hex, sizeof d->hex);
    }
    fclose(f);
    return n;
}

START_TEST(t_protocol_doc_session)
{
    static struct doc_step st[32];
    int n = doc_session(st, 32);
    ck_assert_int_ge(n, 8);
    chand_proc_t E;
    ck_assert_int_eq(chand_start(&E, NULL), 0);
    int fd = raw_connect(E.port, 0);
    for (int i = 0; i < n; i++) {
        if (st[i].to_server) {
            ck_assert_uint_gt(st[i].n, 0);
            raw_write(fd, st[i].hex, st[i].n);
            continue;
        }
        uint8_t got[4096];
        size_t len = raw_read_frame(fd, got, sizeof got);
        char hex[3 * sizeof got];
        hex_of(got, len, hex, sizeof hex);
        if (st[i].n)   /* else: bytes the document does not fix */
            ck_assert_msg(len == st[i].n && memcmp(got, st[i].hex, len) == 0, "%s: chand sent %s",
                          st[i].text, hex);
    }
    /* nothing more came: the session is answered as written */
    struct pollfd p = { fd, POLLIN, 0 };
    ck_assert_int_eq(poll(&p, 1, 200), 0);
    close(fd);
    ck_assert_int_eq(chand_stop(&E), 0);
}
END_TEST

/* ---- a select says when its value is a redelivery ---- */

/* A raw client takes the head of name (waiting for it); its socket. */
static int raw_take(const char *name)
{
    int fd = raw_session(&D);
    raw_blocking_recv(fd, 2, name);
    char msg[256];
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__OK);
    return fd;
}

/* ... and dies without acknowledging it: the value goes back, redelivered
 * once. */
static void take_and_die(chan_client_t *cl, const char *name)
{
    close(raw_take(name));
    chan_stat_t st;
    int64_t until = chan_now() + 5000;
    do {
        ck_assert_int_eq(chan_stat(cl, name, &st, chan_now() + 5000), 0);
    } while (st.inflight && chan_now() < until);
    ck_assert_uint_eq(st.inflight, 0);
}

/* Takes the value of rd-late, holds it 300 ms, dies. */
static void *take_hold_die(void *arg)
{
    (void)arg;
    int fd = raw_take("rd-late");
    chand_sleep_ms(300);
    close(fd);
    return NULL;
}

START_TEST(t_select_reports_redelivery)
{
    chan_client_t *cl = chand_dial(&D);
    chan_t *r = chand_open_ch(cl, "rd", 4), *late = chand_open_ch(cl, "rd-late", 0);
    chan_t *local = chan_make(0);
    char buf[8];
    /* one daemon: the select is one request */
    ck_assert_int_eq(chan_send(r, "a", 1, -1), 0);
    take_and_die(cl, "rd");
    chan_case_t one[1] = { CHAN_CASE_RECV(r, buf, sizeof buf) };
    ck_assert_int_eq(chan_select(one, 1, chan_now() + 5000), 0);
    ck_assert_uint_eq(one[0].redelivered, 1);
    ck_assert_int_eq(chan_send(r, "b", 1, -1), 0);   /* a fresh one */
    ck_assert_int_eq(chan_select(one, 1, chan_now() + 5000), 0);
    ck_assert_uint_eq(one[0].redelivered, 0);
    /* with a local case: the first look finds it ready */
    ck_assert_int_eq(chan_send(r, "c", 1, -1), 0);
    take_and_die(cl, "rd");
    chan_case_t mixed[2] = { CHAN_CASE_RECV(local, buf, sizeof buf), CHAN_CASE_RECV(r, buf, sizeof buf) };
    ck_assert_int_eq(chan_select(mixed, 2, chan_now() + 5000), 1);
    ck_assert_uint_eq(mixed[1].redelivered, 1);
    /* with a local case, blocked: the value comes back while it waits (an
     * unbuffered sender offers it, a raw receiver dies holding it) */
    struct delayed d = { late, "d" };
    pthread_t s, t;
    pthread_create(&t, NULL, take_hold_die, NULL);
    pthread_create(&s, NULL, send_later, &d);
    chand_sleep_ms(150);   /* the raw receiver holds it now */
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(cl, "rd-late", &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.inflight, 1);
    chan_case_t blocked[2] = { CHAN_CASE_RECV(local, buf, sizeof buf), CHAN_CASE_RECV(late, buf, sizeof buf) };
    ck_assert_int_eq(chan_select(blocked, 2, chan_now() + 5000), 1);
    ck_assert_uint_eq(blocked[1].redelivered, 1);
    pthread_join(t, NULL);
    pthread_join(s, NULL);
    chan_release(r);
    chan_release(late);
    chan_release(local);
    chan_disconnect(cl);
}
END_TEST

/* ---- --ack-wait ---- */

START_TEST(t_ack_wait)
{
    chand_proc_t E;
    const char *const extra[] = { "--ack-wait", "300ms", NULL };
    ck_assert_int_eq(chand_start(&E, extra), 0);
    unsetenv("CHAN_ACK_DELAY_MS");
    chan_client_t *cl = chand_dial(&E);
    chan_t *ch = chand_open_ch(cl, "aw", 4);
    ck_assert_int_eq(chan_send(ch, "v", 1, -1), 0);
    /* a raw receiver takes it and never acknowledges, reading on */
    int fd = raw_session(&E);
    raw_blocking_recv(fd, 2, "aw");
    char msg[256];
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__OK);
    int64_t t0 = chan_now();
    chan_val_t v[1] = { { NULL, 0, 0 } };
    char buf[8];
    ck_assert_int_eq(chan_recv_many(ch, v, 1, chan_now() + 5000), 1);
    int64_t took = chan_now() - t0;
    ck_assert_msg(took >= 250 && took < 3000, "back after %lld ms", (long long)took);
    ck_assert_uint_eq(v[0].redelivered, 1);
    free(v[0].data);
    /* its late ack is of nothing: the connection goes on */
    uint8_t ack[] = { 3, 0x12, 0x01, 0x01 };
    raw_write(fd, ack, sizeof ack);
    raw_ping(fd, 3, 0);
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__OK);
    close(fd);
    chan_server_stat_t ss;
    ck_assert_int_eq(chan_server_stat(cl, &ss, chan_now() + 5000), 0);
    ck_assert_uint_eq(ss.ack_expired, 1);
    chan_release(ch);
    chan_disconnect(cl);
    /* libchan holds acks for at most a tenth of the daemon's ack wait,
     * whatever CHAN_ACK_DELAY_MS says: what it took stays taken */
    setenv("CHAN_ACK_DELAY_MS", "5000", 1);
    cl = chand_dial(&E);
    unsetenv("CHAN_ACK_DELAY_MS");
    ch = chand_open_ch(cl, "aw", 4);
    ck_assert_int_eq(chan_send(ch, "w", 1, -1), 0);
    ck_assert_int_eq(chan_recv(ch, buf, sizeof buf, chan_now() + 5000), 1);
    chand_sleep_ms(600);
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(cl, "aw", &st, chan_now() + 5000), 0);
    ck_assert_uint_eq(st.len, 0);
    ck_assert_uint_eq(st.inflight, 0);
    ck_assert_int_eq(chan_server_stat(cl, &ss, chan_now() + 5000), 0);
    ck_assert_uint_eq(ss.ack_expired, 1);
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&E), 0);
}
END_TEST

/* ---- --max-memory counts replies queued to clients ---- */

START_TEST(t_max_memory_counts_queued_replies)
{
    /* a client that asks and never reads makes chand hold its replies:
     * they count against --max-memory like values, so sends are refused
     * (BUSY) until it goes (chand held 314 MB under --max-memory 200m) */
    chand_proc_t E;
    const char *const extra[] = { "--max-memory", "1m", NULL };
    ck_assert_int_eq(chand_start(&E, extra), 0);
    chan_client_t *cl = chand_dial(&E);
    chan_t *ch = chand_open_ch(cl, "mm", 100);
    char v[1000] = { 0 };
    ck_assert_int_eq(chan_send(ch, v, sizeof v, chan_now() + 5000), 0);
    int fd = raw_connect(E.port, 4096);
    raw_hello(fd, 1, NULL);
    for (uint64_t id = 2; id < 2 + 2000; id++)   /* 8 MB of Pongs asked for */
        raw_ping(fd, id, 4000);
    chan_server_stat_t ss;
    int64_t until = chan_now() + 5000;
    do {
        ck_assert_int_eq(chan_server_stat(cl, &ss, chan_now() + 5000), 0);
    } while (ss.output_bytes < (2u << 20) && chan_now() < until);
    ck_assert_uint_ge(ss.output_bytes, 2u << 20);
    ck_assert_int_eq(chan_send(ch, v, sizeof v, chan_now() + 5000), -1);
    ck_assert_int_eq(errno, EBUSY);
    close(fd);   /* its replies go with it */
    until = chan_now() + 5000;
    do {
        ck_assert_int_eq(chan_server_stat(cl, &ss, chan_now() + 5000), 0);
    } while (ss.output_bytes > 0 && chan_now() < until);
    ck_assert_uint_eq(ss.output_bytes, 0);
    ck_assert_int_eq(chan_send(ch, v, sizeof v, chan_now() + 5000), 0);
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&E), 0);
}
END_TEST

/* ---- tokens ---- */

START_TEST(t_auth_token)
{
    chand_proc_t d2;
    char tokfile[] = "/tmp/chand-token-XXXXXX";
    int tfd = mkstemp(tokfile);
    ck_assert_int_ge(tfd, 0);
    ck_assert_int_eq(write(tfd, "s3cret\n", 7), 7);
    close(tfd);
    const char *args[] = { "--auth-file", tokfile, NULL };
    ck_assert_int_eq(chand_start(&d2, args), 0);
    ck_assert_ptr_null(chan_connect(d2.addr, "wrong", chan_now() + 5000));
    ck_assert_int_eq(errno, EACCES);
    unsetenv("CHAN_TOKEN");
    ck_assert_ptr_null(chan_connect(d2.addr, NULL, chan_now() + 5000));
    ck_assert_int_eq(errno, EACCES);
    /* before Hello, a server with a token answers as any other */
    int fd = raw_connect(d2.port, 0);
    raw_ping(fd, 3, 0);
    char msg[256];
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__BAD_REQUEST);
    raw_expect_closed(fd);
    fd = raw_connect(d2.port, 0);
    raw_hello(fd, 1, "s3cre");   /* a prefix is not the token */
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__UNAUTHORIZED);
    raw_expect_closed(fd);
    chan_client_t *cl = chan_connect(d2.addr, "s3cret", chan_now() + 5000);
    ck_assert_ptr_nonnull(cl);
    ck_assert_int_eq(chan_ping(cl, chan_now() + 5000), 0);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d2), 0);
    unlink(tokfile);
}
END_TEST

/* ---- SIGTERM: blocked requests hear "shutting down", exit 0 ---- */

START_TEST(t_sigterm)
{
    chand_proc_t d2;
    ck_assert_int_eq(chand_start(&d2, NULL), 0);
    chan_client_t *cl = chan_connect(d2.addr, NULL, chan_now() + 5000);
    ck_assert_ptr_nonnull(cl);
    chan_t *ch = chan_open(cl, "never", 0, 0, chan_now() + 5000);
    struct receiver r = { .ch = ch };
    pthread_t t;
    pthread_create(&t, NULL, recv_one, &r);
    chan_stat_t st = { 0 };
    for (int i = 0; i < 500 && st.receivers == 0; i++) {
        chan_stat(cl, "never", &st, chan_now() + 5000);
        if (!st.receivers)
            chand_sleep_ms(10);
    }
    ck_assert_int_eq(chand_stop(&d2), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_int_eq(r.err, ESHUTDOWN);
    ck_assert_int_eq(chan_ping(cl, chan_now() + 1000), -1);      /* and the link is gone */
    chan_release(ch);
    chan_disconnect(cl);
}
END_TEST

START_TEST(t_unix_listener)
{
    chand_proc_t d2;
    char sock[64], listen_unix[80];
    snprintf(sock, sizeof sock, "/tmp/chand-sock-%d", (int)getpid());
    snprintf(listen_unix, sizeof listen_unix, "unix:%s", sock);
    const char *args[] = { "--listen", listen_unix, NULL };
    ck_assert_int_eq(chand_start(&d2, args), 0);
    chan_client_t *cl = chan_connect(listen_unix, NULL, chan_now() + 5000);
    ck_assert_ptr_nonnull(cl);
    ck_assert_int_eq(chan_ping(cl, chan_now() + 5000), 0);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d2), 0);
    ck_assert_int_ne(access(sock, F_OK), 0);                     /* removed on exit */
}
END_TEST

/* ---- Prometheus metrics over HTTP ---- */

static const char *scrape(const chand_proc_t *d)
{
    const char *body = chand_http_get(d, "/metrics");
    ck_assert_msg(strstr(body, "200 OK"), "%s", body);
    chand_assert_exposition(body);
    return body;
}

START_TEST(t_metrics)
{
    chand_proc_t d2;
    const char *args[] = { "--metrics", "127.0.0.1:0", NULL };
    ck_assert_int_eq(chand_start(&d2, args), 0);
    chan_client_t *cl = chan_connect(d2.addr, NULL, chan_now() + 5000);
    chan_t *ch = chan_open(cl, "measured", 5, 0, chan_now() + 5000);
    chan_t *other = chan_open(cl, "second", 3, 0, chan_now() + 5000);
    chan_t *tmp = chan_open_temp(cl, 1, chan_now() + 5000);
    ck_assert_ptr_nonnull(tmp);
    ck_assert_int_eq(chan_send(ch, "x", 1, -1), 0);
    ck_assert_int_eq(chan_send(ch, "y", 1, -1), 0);
    const char *body = scrape(&d2);
    /* a temporary channel is never a series */
    ck_assert_msg(!strstr(body, chan_name(tmp)), "%s", body);
    ck_assert_msg(strstr(body, "chand_channel_capacity{channel=\"second\"} 3\n"), "%s", body);
    ck_assert_msg(strstr(body, "# HELP chand_channels "), "%s", body);
    ck_assert_msg(strstr(body, "chand_build_info{version=\""), "%s", body);
    ck_assert_msg(strstr(body, "\nprocess_open_fds "), "%s", body);
    ck_assert_msg(strstr(body, "\nprocess_start_time_seconds "), "%s", body);
    ck_assert_msg(strstr(chand_http_get(&d2, "/healthz"), "200 OK"), "healthz");
    const char *ready = chand_http_get(&d2, "/readyz");
    ck_assert_msg(strstr(ready, "200 OK") && strstr(ready, "ready"), "%s", ready);
    ck_assert_msg(strstr(chand_http_get(&d2, "/nothing"), "404"), "an unknown path");
    body = scrape(&d2);
    ck_assert_msg(!strstr(body, "chand_journal"), "a memory-only chand has no journal: %s", body);
    ck_assert_msg(strstr(body, "chand_channels 3\n"), "%.2000s", body);   /* temp counted */
    ck_assert_msg(strstr(body, "chand_connections 1\n"), "%s", body);
    ck_assert_msg(strstr(body, "chand_channel_len{channel=\"measured\"} 2\n"), "%s", body);
    ck_assert_msg(strstr(body, "chand_channel_capacity{channel=\"measured\"} 5\n"), "%s", body);
    ck_assert_msg(strstr(body, "chand_values_sent_total 2\n"), "%s", body);
    /* the loop-stall histogram: cumulative buckets ending in +Inf = count */
    ck_assert_msg(strstr(body, "chand_loop_callback_seconds_bucket{le=\"0.0001\"} "), "%s", body);
    const char *inf = strstr(body, "chand_loop_callback_seconds_bucket{le=\"+Inf\"} ");
    const char *cnt = strstr(body, "chand_loop_callback_seconds_count ");
    ck_assert_msg(inf && cnt, "%s", body);
    long ninf = strtol(inf + strlen("chand_loop_callback_seconds_bucket{le=\"+Inf\"} "), NULL, 10);
    ck_assert_int_gt(ninf, 3);   /* the connection's requests at least */
    ck_assert_int_eq(ninf, strtol(cnt + strlen("chand_loop_callback_seconds_count "), NULL, 10));
    /* and through Stat: the same buckets, the counts adding up */
    chan_server_stat_t ss;
    ck_assert_int_eq(chan_server_stat(cl, &ss, chan_now() + 5000), 0);
    ck_assert_uint_eq(ss.loop_buckets, 14);
    ck_assert_uint_eq(ss.loop_bounds_us[0], 100);
    ck_assert_uint_eq(ss.loop_bounds_us[12], 1000000);
    ck_assert_uint_eq(ss.loop_bounds_us[13], UINT64_MAX);
    uint64_t sum = 0;
    for (size_t i = 0; i < ss.loop_buckets; i++)
        sum += ss.loop_counts[i];
    ck_assert_uint_ge(sum, (uint64_t)ninf);
    ck_assert_uint_gt(ss.loop_max_us, 0);
    ck_assert_int_eq(ss.durable, 0);
    chan_release(tmp);
    chan_release(other);
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d2), 0);
}
END_TEST

/* A durable chand's journal, in Stat and in /metrics. */
START_TEST(t_metrics_durable)
{
    chand_proc_t d2;
    const char *args[] = { "--metrics", "127.0.0.1:0", "--fsync", "always", NULL };
    ck_assert_int_eq(chand_start_data(&d2, args, 0), 0);
    chan_client_t *cl = chan_connect(d2.addr, NULL, chan_now() + 5000);
    chan_t *ch = chan_open(cl, "kept", 5, 0, chan_now() + 5000);
    ck_assert_int_eq(chan_send(ch, "x", 1, -1), 0);
    chan_server_stat_t ss;
    ck_assert_int_eq(chan_server_stat(cl, &ss, chan_now() + 5000), 0);
    ck_assert_int_eq(ss.durable, 1);
    ck_assert_str_eq(ss.fsync, "always");
    ck_assert_uint_ge(ss.journal_records, 2);   /* the channel made, the value put */
    ck_assert_uint_ge(ss.fsyncs, 2);            /* before each of their replies */
    ck_assert_uint_gt(ss.disk_bytes, 0);
    ck_assert_int_eq(ss.refusing_sends, 0);
    const char *body = scrape(&d2);
    ck_assert_msg(strstr(body, "chand_journal_records_total "), "%s", body);
    ck_assert_msg(strstr(body, "chand_journal_fsyncs_total "), "%s", body);
    ck_assert_msg(strstr(body, "chand_journal_refusing_sends 0\n"), "%s", body);
    ck_assert_msg(strstr(body, "chand_recovery_seconds "), "%s", body);
    const char *db = strstr(body, "\nchand_data_dir_bytes ");
    ck_assert_msg(db && strtoull(db + strlen("\nchand_data_dir_bytes "), NULL, 10) > 0, "%s", body);
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d2), 0);
}
END_TEST

static void *errmsg_other_thread(void *arg)
{
    chan_client_t *cl = arg;
    chan_stat_t st;
    if (chan_stat(cl, "other", &st, chan_now() + 5000) == 0 ||
        strcmp(chan_errmsg(), "no such channel 'other'") != 0)
        abort();
    return NULL;
}

START_TEST(t_errmsg)
{
    /* chan_errmsg(): chand's words for a refusal, naming the channel and
     * the limit; the library's for what it refuses itself; empty for a
     * failure nobody explained, and after a call that did not fail */
    chand_proc_t E;
    const char *const extra[] = { "--max-channels", "2", "--max-frame", "2048",
                                  "--max-conns", "1", NULL };
    ck_assert_int_eq(chand_start(&E, extra), 0);
    chan_client_t *cl = chand_dial(&E);
    ck_assert_str_eq(chan_errmsg(), "");
    /* ENOENT, from three calls */
    ck_assert_ptr_null(chan_open(cl, "nosuch", CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + 5000));
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_str_eq(chan_errmsg(), "no such channel 'nosuch'");
    ck_assert_int_eq(chan_ping(cl, chan_now() + 5000), 0);
    ck_assert_str_eq(chan_errmsg(), "");
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(cl, "gone", &st, chan_now() + 5000), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_str_eq(chan_errmsg(), "no such channel 'gone'");
    ck_assert_int_eq(chan_delete(cl, "gone.too", chan_now() + 5000), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_str_eq(chan_errmsg(), "no such channel 'gone.too'");
    /* EEXIST */
    chan_t *a = chand_open_ch(cl, "a", 1);
    ck_assert_ptr_null(chan_open(cl, "a", 4, 0, chan_now() + 5000));
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_str_eq(chan_errmsg(), "channel 'a' exists with capacity 1, not 4");
    /* EBUSY: the limit, and the option that sets it */
    chan_t *b = chand_open_ch(cl, "b", 0);
    ck_assert_ptr_null(chan_open(cl, "c", 0, 0, chan_now() + 5000));
    ck_assert_int_eq(errno, EBUSY);
    ck_assert_str_eq(chan_errmsg(), "too many channels (--max-channels 2)");
    /* EMSGSIZE from chand: longer than the receiver's buffer */
    ck_assert_int_eq(chan_send(a, "0123456789", 10, -1), 0);
    char buf[4];
    ck_assert_int_eq(chan_recv(a, buf, sizeof buf, -1), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    ck_assert_str_eq(chan_errmsg(), "value of 10 bytes larger than the receiver's buffer of 4 bytes");
    /* EMSGSIZE found by the library: over chand's limit (max_frame - 512) */
    static char big[2048];
    ck_assert_int_eq(chan_send(b, big, 1537, -1), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    ck_assert_str_eq(chan_errmsg(), "value of 1537 bytes over chand's limit of 1536 bytes");
    /* EINVAL: the library names the bad name */
    ck_assert_ptr_null(chan_open(cl, "no spaces", 0, 0, chan_now() + 5000));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_msg(strstr(chan_errmsg(), "'no spaces' is not a channel name"), "'%s'", chan_errmsg());
    /* a local failure has no words: the message is cleared, not kept */
    chan_t *l = chan_make(0);
    ck_assert_int_eq(chan_recv(l, buf, sizeof buf, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_str_eq(chan_errmsg(), "");
    chan_release(l);
    /* EBUSY at connect: chand says which limit */
    ck_assert_ptr_null(chan_connect(E.addr, NULL, chan_now() + 5000));
    ck_assert_int_eq(errno, EBUSY);
    ck_assert_str_eq(chan_errmsg(), "too many connections (--max-conns 1)");
    /* per thread: another thread's failure leaves this one's alone */
    ck_assert_ptr_null(chan_open(cl, "nosuch", CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + 5000));
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, errmsg_other_thread, cl), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_str_eq(chan_errmsg(), "no such channel 'nosuch'");
    chan_release(a);
    chan_release(b);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&E), 0);
}
END_TEST

static Suite *remote_suite(void)
{
    Suite *s = suite_create("remote");
    TCase *tc = tcase_create("client");
    tcase_add_unchecked_fixture(tc, daemon_up, daemon_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_basic_ops);
    tcase_add_test(tc, t_batches);
    tcase_add_test(tc, t_unbuffered_blocks_until_received);
    tcase_add_loop_test(tc, t_lone_ack_is_sent, 0, 3);
    tcase_add_loop_test(tc, t_deferred_frame_not_stuck_behind_blocked_worker, 0, 2);
    tcase_add_test(tc, t_select_remote);
    tcase_add_test(tc, t_select_emsgsize_gives_length);
    tcase_add_test(tc, t_temp_channels);
    tcase_add_test(tc, t_mesh_buffered);
    tcase_add_test(tc, t_mesh_unbuffered);
    tcase_add_test(tc, t_sigkill_receiver_loses_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad-input");
    tcase_add_unchecked_fixture(tc, daemon_up, daemon_down);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, t_bad_garbage);
    tcase_add_test(tc, t_bad_oversized);
    tcase_add_test(tc, t_bad_truncated_message);
    tcase_add_test(tc, t_bad_truncated_frame_then_eof);
    tcase_add_test(tc, t_bad_before_hello);
    tcase_add_test(tc, t_bad_version);
    tcase_add_test(tc, t_bad_unknown_request);
    tcase_add_test(tc, t_stat_pages);
    tcase_add_loop_test(tc, t_bad_reused_id, 0, 3);
    tcase_add_test(tc, t_bad_id_zero);
    tcase_add_test(tc, t_no_op_frame_gets_no_reply);
    tcase_add_loop_test(tc, t_bad_no_op_before_hello, 0, 3);
    tcase_add_test(tc, t_doc_reserved_select_not_cancelled);
    tcase_add_test(tc, t_doc_max_bytes);
    tcase_add_test(tc, t_doc_max_pending_refuses_any_wait);
    tcase_add_test(tc, t_ping_payload_limit);
    tcase_add_loop_test(tc, t_acks_that_do_not_fit_wait, 0, 2);
    tcase_add_test(tc, t_id_lists_split_to_fit);
    tcase_add_test(tc, t_hello_deadline);
    tcase_add_test(tc, t_protocol_doc_session);
    tcase_add_test(tc, t_select_reports_redelivery);
    tcase_add_test(tc, t_ack_wait);
    tcase_add_test(tc, t_max_memory_counts_queued_replies);
    tcase_add_test(tc, t_bad_names);
    tcase_add_test(tc, t_bad_select_case);
    tcase_add_test(tc, t_two_phase_fields_any_value);
    suite_add_tcase(s, tc);

    tc = tcase_create("daemon");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_slow_consumer_disconnected);
    tcase_add_test(tc, t_redial_under_callers);
    tcase_add_test(tc, t_auth_token);
    tcase_add_test(tc, t_sigterm);
    tcase_add_test(tc, t_unix_listener);
    tcase_add_test(tc, t_metrics);
    tcase_add_test(tc, t_metrics_durable);
    tcase_add_test(tc, t_errmsg);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(remote_suite());
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}

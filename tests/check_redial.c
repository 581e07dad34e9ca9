/*
 * check_redial.c - remote channel handles across a restart of chand.
 *
 * chand is killed by its PID and started again on the same port; the
 * client's handles must work on the new daemon as they did on the old one
 * (chan_reopen.c re-opens them as the client redials), except those whose
 * channel cannot be the same one: a temporary channel's, which died with
 * the connection, and one whose name now holds a channel of another
 * capacity.  A scripted fake daemon shows what goes over the wire.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <check.h>
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
#include <sys/socket.h>
#include <unistd.h>

#include "chan/chan.h"
#include "chan_frame.h"
#include "chand_fixture.h"

#define WAIT_MS 5000

/* After a restart, calls fail with ECONNRESET until the client has dialled
 * the new daemon: a call that raced the hang-up, or the backoff after a
 * dial that found no daemon.  These try again, for up to WAIT_MS. */
static bool again(int64_t end)
{
    if (errno != ECONNRESET || chan_now() > end)
        return false;
    chan_sleep(chan_now() + 20);
    return true;
}

static int send_retry(chan_t *ch, const char *v)
{
    int64_t end = chan_now() + WAIT_MS;
    while (chan_send(ch, v, strlen(v), chan_now() + WAIT_MS) < 0)
        if (!again(end))
            return -1;
    return 0;
}

static ssize_t recv_retry(chan_t *ch, char *buf, size_t size)
{
    int64_t end = chan_now() + WAIT_MS;
    ssize_t n;
    while ((n = chan_recv(ch, buf, size, chan_now() + WAIT_MS)) < 0)
        if (!again(end))
            return -1;
    return n;
}

static void ping_retry(chan_client_t *cl)
{
    int64_t end = chan_now() + WAIT_MS;
    int rc;
    while ((rc = chan_ping(cl, chan_now() + WAIT_MS)) < 0 && again(end))
        ;
    ck_assert_msg(rc == 0, "ping after the restart: %s", strerror(errno));
}

/* Receive one value into a NUL-terminated string (recv_retry). */
static void expect_value(chan_t *ch, const char *want)
{
    char buf[32];
    ssize_t n = recv_retry(ch, buf, sizeof buf - 1);
    ck_assert_msg(n >= 0, "recv: %s", strerror(errno));
    buf[n] = 0;
    ck_assert_str_eq(buf, want);
}

#define ASSERT_FAILS(call, err)                                                     \
    do {                                                                            \
        errno = 0;                                                                  \
        long rc_ = (long)(call);                                                    \
        int e_ = errno;                                                             \
        ck_assert_msg(rc_ == -1 && e_ == (err), "%s: %ld, errno %s (want %s)", #call, \
                      rc_, strerror(e_), strerror(err));                            \
    } while (0)

/* ---- a handle made with a capacity ---- */

START_TEST(t_capacity_kept)
{
    chand_proc_t d;
    ck_assert_int_eq(chand_start(&d, NULL), 0);
    chan_client_t *cl = chand_dial(&d);
    chan_t *ch = chand_open_ch(cl, "kept", 4);
    ck_assert_int_eq(chan_send(ch, "old", 3, chan_now() + WAIT_MS), 0);   /* dies with chand */
    ck_assert_int_eq(chand_restart(&d, NULL), 0);
    /* the new chand never heard of "kept": the redial made it again */
    ck_assert_msg(send_retry(ch, "v0") == 0, "send after the restart: %s", strerror(errno));
    ck_assert_int_eq(chan_send(ch, "v1", 2, chan_now() + WAIT_MS), 0);
    ck_assert_int_eq(chan_send(ch, "v2", 2, chan_now() + WAIT_MS), 0);
    ck_assert_int_eq(chan_send(ch, "v3", 2, chan_now() + WAIT_MS), 0);
    ASSERT_FAILS(chan_send(ch, "v4", 2, 0), ETIMEDOUT);   /* full at 4, as before */
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(cl, "kept", &st, chan_now() + WAIT_MS), 0);
    ck_assert_uint_eq(st.cap, 4);
    ck_assert_uint_eq(st.len, 4);
    ck_assert_int_eq(chan_cap(ch), 4);
    expect_value(ch, "v0");
    expect_value(ch, "v1");
    expect_value(ch, "v2");
    expect_value(ch, "v3");
    chan_release(ch);
    chan_disconnect(cl);
    chand_stop(&d);
}
END_TEST

/* A durable chand has the channel back, values and all: the redial's Open
 * only confirms it, for the handle made with a capacity and for one opened
 * with CHAN_NOCREATE alike.  (The code before re-opening passes this too:
 * it guards against a re-open that would disturb a recovered channel.) */
START_TEST(t_durable_confirmed)
{
    char dir[] = "/tmp/chand-redial-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const char *args[] = { "--data-dir", dir, "--fsync", "always", NULL };
    chand_proc_t d;
    ck_assert_int_eq(chand_start(&d, args), 0);
    chan_client_t *cl = chand_dial(&d);
    chan_t *ch = chand_open_ch(cl, "dur", 4);
    chan_t *nc = chan_open(cl, "dur", CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + WAIT_MS);
    ck_assert_ptr_nonnull(nc);
    ck_assert_int_eq(chan_send(ch, "a", 1, chan_now() + WAIT_MS), 0);
    ck_assert_int_eq(chan_send(ch, "b", 1, chan_now() + WAIT_MS), 0);
    ck_assert_int_eq(chand_restart(&d, args), 0);
    ck_assert_msg(send_retry(ch, "c") == 0, "send after the restart: %s", strerror(errno));
    expect_value(nc, "a");
    expect_value(ch, "b");
    expect_value(nc, "c");
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(cl, "dur", &st, chan_now() + WAIT_MS), 0);
    ck_assert_uint_eq(st.cap, 4);
    chan_release(ch);
    chan_release(nc);
    chan_disconnect(cl);
    chand_stop(&d);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- callers blocked when chand dies ---- */

struct blocked {
    chan_t *ch;
    atomic_bool woken;       /* the first receive returned */
    int first_err;           /* its errno */
    char got[16];            /* what the receive after the restart got */
    ssize_t n;
    int err;
    chan_wg_t *wg;           /* the goroutine's: done */
};

static void receive_twice(struct blocked *b)
{
    char buf[16];
    ssize_t n = chan_recv(b->ch, buf, sizeof buf, chan_now() + 3 * WAIT_MS);
    b->first_err = n < 0 ? errno : 0;
    atomic_store(&b->woken, true);
    int64_t end = chan_now() + 2 * WAIT_MS;   /* chand is restarted meanwhile */
    while ((n = chan_recv(b->ch, b->got, sizeof b->got - 1, chan_now() + WAIT_MS)) < 0 &&
           again(end))
        ;
    b->n = n;
    b->err = n < 0 ? errno : 0;
}

static void *receive_thread(void *arg)
{
    receive_twice(arg);
    return NULL;
}

static void receive_goroutine(void *arg)
{
    struct blocked *b = arg;
    receive_twice(b);
    chan_wg_done(b->wg);
}

static void wait_woken(struct blocked *b)
{
    for (int i = 0; i < WAIT_MS / 10 && !atomic_load(&b->woken); i++)
        chand_sleep_ms(10);
    ck_assert_msg(atomic_load(&b->woken), "a receiver still blocked after chand died");
}

START_TEST(t_blocked_receivers_reset)
{
    chand_proc_t d;
    ck_assert_int_eq(chand_start(&d, NULL), 0);
    chan_client_t *cl = chand_dial(&d);
    chan_t *ch = chand_open_ch(cl, "blocked", 4);
    struct blocked b[2];
    memset(b, 0, sizeof b);
    for (int i = 0; i < 2; i++)
        b[i].ch = ch;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, receive_thread, &b[0]), 0);
    b[1].wg = chan_wg_make();
    chan_wg_add(b[1].wg, 1);
    ck_assert_int_eq(chan_go(receive_goroutine, &b[1]), 0);
    chan_stat_t st = { .receivers = 0 };
    for (int i = 0; i < WAIT_MS / 10 && st.receivers < 2; i++) {
        ck_assert_int_eq(chan_stat(cl, "blocked", &st, chan_now() + WAIT_MS), 0);
        chand_sleep_ms(10);
    }
    ck_assert_uint_eq(st.receivers, 2);
    ck_assert_int_eq(chand_kill(&d), 0);
    wait_woken(&b[0]);
    wait_woken(&b[1]);
    ck_assert_msg(b[0].first_err == ECONNRESET, "thread: %s", strerror(b[0].first_err));
    ck_assert_msg(b[1].first_err == ECONNRESET, "goroutine: %s", strerror(b[1].first_err));
    ck_assert_int_eq(chand_start_again(&d, NULL), 0);
    ck_assert_msg(send_retry(ch, "a") == 0, "send after the restart: %s", strerror(errno));
    ck_assert_int_eq(send_retry(ch, "b"), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(chan_wg_wait(b[1].wg, chan_now() + 2 * WAIT_MS), 0);
    chan_wg_free(b[1].wg);
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(b[i].n == 1, "receiver %d after the restart: %s", i, strerror(b[i].err));
        b[i].got[1] = 0;
    }
    ck_assert_msg((b[0].got[0] == 'a' && b[1].got[0] == 'b') ||
                  (b[0].got[0] == 'b' && b[1].got[0] == 'a'), "got %s and %s", b[0].got,
                  b[1].got);
    chan_release(ch);
    chan_disconnect(cl);
    chand_stop(&d);
}
END_TEST

/* ---- a temporary channel's handle ---- */

START_TEST(t_temp_handle_gone)
{
    chand_proc_t d;
    ck_assert_int_eq(chand_start(&d, NULL), 0);
    chan_client_t *cl = chand_dial(&d);
    chan_t *t = chan_open_temp(cl, 1, chan_now() + WAIT_MS);
    ck_assert_ptr_nonnull(t);
    char name[256];
    snprintf(name, sizeof name, "%s", chan_name(t));
    ck_assert_int_eq(chan_send(t, "x", 1, chan_now() + WAIT_MS), 0);
    expect_value(t, "x");
    ck_assert_int_eq(chand_kill(&d), 0);
    /* Once the client knows its connection is gone, so is the channel:
     * no need to wait for a daemon to say so. */
    int64_t end = chan_now() + WAIT_MS;
    while (chan_send(t, "x", 1, chan_now() + WAIT_MS) < 0 && again(end))
        ;
    ck_assert_msg(errno == ENOENT, "send with chand down: %s", strerror(errno));
    ck_assert_int_eq(chand_start_again(&d, NULL), 0);
    /* Another channel takes the name on the new daemon; nothing done with
     * the old handle may reach it. */
    chan_client_t *other = chand_dial(&d);
    chan_t *same = chand_open_ch(other, name, 1);
    ping_retry(cl);
    char buf[8];
    ASSERT_FAILS(chan_send(t, "y", 1, chan_now() + WAIT_MS), ENOENT);
    ASSERT_FAILS(chan_recv(t, buf, sizeof buf, 0), ENOENT);
    ASSERT_FAILS(chan_len(t), ENOENT);
    ASSERT_FAILS(chan_close(t), ENOENT);
    chan_case_t one[1] = { CHAN_CASE_RECV(t, buf, sizeof buf) };
    ASSERT_FAILS(chan_select(one, 1, 0), ENOENT);
    chan_t *local = chan_make(1);
    chan_case_t mixed[2] = { CHAN_CASE_RECV(local, buf, sizeof buf), CHAN_CASE_SEND(t, "z", 1) };
    ASSERT_FAILS(chan_select(mixed, 2, 0), ENOENT);
    chan_release(local);
    chan_release(t);   /* must not delete the other channel of that name */
    ck_assert_int_eq(chan_ping(cl, chan_now() + WAIT_MS), 0);
    chan_stat_t st;
    ck_assert_msg(chan_stat(other, name, &st, chan_now() + WAIT_MS) == 0, "stat: %s",
                  strerror(errno));
    ck_assert_uint_eq(st.len, 0);
    ck_assert_int_eq(st.closed, 0);
    chan_release(same);
    chan_disconnect(other);
    chan_disconnect(cl);
    chand_stop(&d);
}
END_TEST

/* ---- a handle opened with CHAN_NOCREATE ---- */

START_TEST(t_nocreate_not_made)
{
    chand_proc_t d;
    ck_assert_int_eq(chand_start(&d, NULL), 0);
    chan_client_t *cl = chand_dial(&d), *other = chand_dial(&d);
    chan_release(chand_open_ch(other, "nc.gone", 2));   /* made by another client */
    chan_t *nc = chan_open(cl, "nc.gone", CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + WAIT_MS);
    ck_assert_ptr_nonnull(nc);
    chan_t *kept = chand_open_ch(cl, "nc.kept", 2);
    chan_disconnect(other);
    ck_assert_int_eq(chand_restart(&d, NULL), 0);
    /* the redial makes the channel of the handle made with a capacity
     * again, not the one the client only opened */
    ck_assert_msg(send_retry(kept, "k") == 0, "send after the restart: %s", strerror(errno));
    char buf[8];
    ASSERT_FAILS(chan_send(nc, "x", 1, 0), ENOENT);
    ASSERT_FAILS(chan_recv(nc, buf, sizeof buf, 0), ENOENT);
    chan_stat_t st;
    ASSERT_FAILS(chan_stat(cl, "nc.gone", &st, chan_now() + WAIT_MS), ENOENT);
    /* The handle still names the channel: made again, it works. */
    other = chand_dial(&d);
    chan_release(chand_open_ch(other, "nc.gone", 2));
    ck_assert_int_eq(chan_send(nc, "x", 1, chan_now() + WAIT_MS), 0);
    expect_value(nc, "x");
    expect_value(kept, "k");
    chan_release(nc);
    chan_release(kept);
    chan_disconnect(other);
    chan_disconnect(cl);
    chand_stop(&d);
}
END_TEST

/* ---- the name holds a channel of another capacity ---- */

START_TEST(t_other_capacity_exists)
{
    chand_proc_t d;
    ck_assert_int_eq(chand_start(&d, NULL), 0);
    chan_client_t *cl = chand_dial(&d);
    chan_t *a = chand_open_ch(cl, "ex.a", 4), *b = chand_open_ch(cl, "ex.b", 2);
    ck_assert_int_eq(chand_restart(&d, NULL), 0);
    /* another client makes "ex.a" first, with capacity 1 */
    chan_client_t *other = chand_dial(&d);
    chan_t *a1 = chand_open_ch(other, "ex.a", 1);
    ping_retry(cl);
    char buf[8];
    ASSERT_FAILS(chan_send(a, "x", 1, chan_now() + WAIT_MS), EEXIST);
    ASSERT_FAILS(chan_recv(a, buf, sizeof buf, 0), EEXIST);
    ASSERT_FAILS(chan_len(a), EEXIST);
    ASSERT_FAILS(chan_close(a), EEXIST);
    /* only that handle: the other one of the client works */
    ck_assert_int_eq(chan_send(b, "b", 1, chan_now() + WAIT_MS), 0);
    expect_value(b, "b");
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(other, "ex.a", &st, chan_now() + WAIT_MS), 0);
    ck_assert_uint_eq(st.len, 0);
    ck_assert_uint_eq(st.cap, 1);
    ck_assert_int_eq(st.closed, 0);
    chan_release(a);
    chan_release(b);
    chan_release(a1);
    chan_disconnect(other);
    chan_disconnect(cl);
    chand_stop(&d);
}
END_TEST

/* ---- many handles: the Opens take many writes and reads ---- */

START_TEST(t_many_handles)
{
    enum { N = 2000 };
    chand_proc_t d;
    ck_assert_int_eq(chand_start(&d, NULL), 0);
    chan_client_t *cl = chand_dial(&d);
    static chan_t *chs[N];
    char name[256];
    for (int i = 0; i < N; i++) {
        /* long names: some 60 KiB of Opens */
        snprintf(name, sizeof name, "many.%0200d", i);
        chs[i] = chand_open_ch(cl, name, i % 5);
    }
    ck_assert_int_eq(chand_restart(&d, NULL), 0);
    ping_retry(cl);
    chan_stat_t *list;
    ssize_t n = chan_list(cl, &list, chan_now() + WAIT_MS);
    ck_assert_int_eq(n, N);
    for (int i = 0; i < N; i++) {   /* name order is number order */
        snprintf(name, sizeof name, "many.%0200d", i);
        ck_assert_str_eq(list[i].name, name);
        ck_assert_uint_eq(list[i].cap, (uint64_t)(i % 5));
    }
    free(list);
    for (int i = 0; i < N; i++)
        chan_release(chs[i]);
    chan_disconnect(cl);
    chand_stop(&d);
}
END_TEST

/* ---- on the wire: a fake daemon ---- */

/* A scripted daemon on 127.0.0.1, one connection at a time: the first is
 * served until the test drops it; on the second it holds every reply back
 * until it has seen the re-opens it expects (or a second passed), so only
 * a client that sends them all before waiting for an answer gets through. */
struct fake {
    int lfd, port;
    pthread_t thread;
    atomic_bool drop;        /* the test asks: end the first connection */
    atomic_bool dropped;     /* and it has ended */
    int nreopen;             /* the Opens to wait for on the second */
    /* What the second connection brought, in order: */
    int nopen;
    struct {
        char name[64];
        bool has_cap, no_create, temp;
        uint64_t cap;
    } open[8];
    bool early;              /* another request came before the re-opens */
    int after;               /* the op of the first request after them */
    char error[128];
    int late;                /* fake_late_send: how a Send is answered */
    bool hung_up;            /* fake_late_send: the client closed */
    int nmaps;               /* fake_lost_move: the Maps asked */
};

struct conn {
    int fd;
    uint8_t buf[65536];
    size_t len;
    size_t used;             /* the last request's frame, still pointed into */
    chan_arena_t arena;
    uint64_t max_frame;      /* announced in the Hello reply; 0: 1 MiB */
    bool eof;                /* conn_read: the client closed (or sent garbage) */
};

/* The next request, waiting up to ms; NULL on timeout or end.  It lives
 * until the next call. */
static Chan__Request *conn_read(struct conn *c, int ms)
{
    chan_arena_reset(&c->arena);
    memmove(c->buf, c->buf + c->used, c->len - c->used);
    c->len -= c->used;
    c->used = 0;
    for (;;) {
        uint64_t body;
        size_t hdr;
        int h = chan_frame_header(c->buf, c->len, sizeof c->buf, &body, &hdr);
        if (h == CHAN_FRAME_OK && c->len >= hdr + body) {
            c->used = hdr + body;
            return chan_frame_decode_request(&c->arena, c->buf + hdr, body);
        }
        if (h < 0) {
            c->eof = true;
            return NULL;
        }
        struct pollfd p = { c->fd, POLLIN, 0 };
        if (poll(&p, 1, ms) <= 0)
            return NULL;
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (n <= 0) {
            c->eof = true;
            return NULL;
        }
        c->len += (size_t)n;
    }
}

static void conn_reply(struct conn *c, Chan__Reply *r)
{
    uint8_t out[1024];
    size_t n = chan_frame_encode_reply(r, out);
    ck_assert_int_eq(send(c->fd, out, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void answer_open(struct conn *c, uint64_t id, const char *name, bool has_cap,
                        uint64_t cap, bool temp)
{
    Chan__OpenReply o = CHAN__OPEN_REPLY__INIT;
    o.has_name = true;
    o.name = (ProtobufCBinaryData){ strlen(name), (uint8_t *)name };
    o.has_capacity = true;
    o.capacity = has_cap ? cap : 7;   /* a channel opened as it is has 7 here */
    o.has_temp = true;
    o.temp = temp;
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = true;
    r.id = id;
    r.result_case = CHAN__REPLY__RESULT_OPEN;
    r.open = &o;
    conn_reply(c, &r);
}

/* Answer as chand would; every Open succeeds (this daemon never forgets a
 * channel). */
static void answer(struct conn *c, const Chan__Request *rq)
{
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = true;
    r.id = rq->id;
    Chan__HelloReply h = CHAN__HELLO_REPLY__INIT;
    Chan__Limits l = CHAN__LIMITS__INIT;
    Chan__Pong p = CHAN__PONG__INIT;
    const Chan__Open *o = rq->open;
    char name[256];
    switch (rq->op_case) {
    case CHAN__REQUEST__OP_HELLO:
        l.has_max_frame = l.has_max_value = l.has_max_batch = l.has_max_cases = true;
        l.max_frame = c->max_frame ? c->max_frame : 1u << 20;
        l.max_value = 1u << 19;
        l.max_batch = 64;
        l.max_cases = 64;
        h.has_version = true;
        h.version = CHAN_PROTOCOL_VERSION;
        h.server = "fake";
        h.limits = &l;
        r.result_case = CHAN__REPLY__RESULT_HELLO;
        r.hello = &h;
        break;
    case CHAN__REQUEST__OP_OPEN:
        snprintf(name, sizeof name, "%.*s", (int)o->name.len, (const char *)o->name.data);
        answer_open(c, rq->id, o->has_name ? name : "tmp.fake1", o->has_capacity, o->capacity,
                    o->has_temp && o->temp);
        return;
    case CHAN__REQUEST__OP_PING:
        r.result_case = CHAN__REPLY__RESULT_PONG;
        r.pong = &p;
        break;
    default:
        return;   /* acknowledgements alone: no reply */
    }
    conn_reply(c, &r);
}

static int fake_accept(struct fake *f)
{
    struct pollfd p = { f->lfd, POLLIN, 0 };
    if (poll(&p, 1, WAIT_MS) <= 0)
        return -1;
    return accept(f->lfd, NULL, NULL);
}

/* The second connection: Hello, then the re-opens with no reply until they
 * are all in, then what follows. */
static void fake_second(struct fake *f, struct conn *c)
{
    Chan__Request *rq = conn_read(c, WAIT_MS);
    if (!rq || rq->op_case != CHAN__REQUEST__OP_HELLO) {
        snprintf(f->error, sizeof f->error, "no Hello on the new connection");
        return;
    }
    answer(c, rq);
    uint64_t ids[8];
    while (f->nopen < f->nreopen) {
        rq = conn_read(c, 1000);
        if (!rq || rq->op_case != CHAN__REQUEST__OP_OPEN)
            break;
        const Chan__Open *m = rq->open;
        int k = f->nopen++;
        snprintf(f->open[k].name, sizeof f->open[k].name, "%.*s", (int)m->name.len,
                 (const char *)m->name.data);
        f->open[k].has_cap = m->has_capacity;
        f->open[k].cap = m->capacity;
        f->open[k].no_create = m->has_no_create && m->no_create;
        f->open[k].temp = m->has_temp && m->temp;
        ids[k] = rq->id;
    }
    if (rq && rq->op_case != CHAN__REQUEST__OP_OPEN) {
        f->after = (int)rq->op_case;   /* something else came first */
        f->early = true;
        answer(c, rq);
        return;
    }
    for (int k = 0; k < f->nopen; k++)
        answer_open(c, ids[k], f->open[k].name, f->open[k].has_cap, f->open[k].cap, false);
    while ((rq = conn_read(c, WAIT_MS)) && rq->op_case == CHAN__REQUEST__OP__NOT_SET)
        ;   /* acknowledgements */
    f->after = rq ? (int)rq->op_case : -1;
    if (rq)
        answer(c, rq);
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    struct conn *c = calloc(1, sizeof *c);
    chan_arena_init(&c->arena);
    c->fd = fake_accept(f);
    while (c->fd >= 0 && !atomic_load(&f->drop)) {
        Chan__Request *rq = conn_read(c, 10);
        if (rq)
            answer(c, rq);
    }
    if (c->fd >= 0)
        close(c->fd);
    atomic_store(&f->dropped, true);
    c->len = c->used = 0;
    c->fd = fake_accept(f);
    if (c->fd >= 0) {
        fake_second(f, c);
        chand_sleep_ms(100);   /* let the client read the last answer */
        close(c->fd);
    } else {
        snprintf(f->error, sizeof f->error, "the client did not dial again");
    }
    chan_arena_free(&c->arena);
    free(c);
    return NULL;
}

static void *fake_small_frames(void *arg)
{
    struct fake *f = arg;
    struct conn *c = calloc(1, sizeof *c);
    chan_arena_init(&c->arena);
    c->max_frame = 100;
    c->fd = fake_accept(f);
    Chan__Request *rq;
    while (c->fd >= 0 && (rq = conn_read(c, WAIT_MS)))
        answer(c, rq);
    if (c->fd >= 0)
        close(c->fd);
    chan_arena_free(&c->arena);
    free(c);
    return NULL;
}

/* A Send (or Close) held without an answer until its Cancel comes, as if
 * the answer were stuck on its way (f->late): 0, then answered OK, the
 * value taken; 1, answered CANCELED, nothing taken; 2, never answered (nor
 * the Cancel), until the client hangs up. */
static void *fake_late_send(void *arg)
{
    struct fake *f = arg;
    struct conn *c = calloc(1, sizeof *c);
    chan_arena_init(&c->arena);
    c->fd = fake_accept(f);
    uint64_t send_id = 0;
    Chan__Request *rq;
    /* (a Close is given up on after 5 s, and its Cancel after 2 more) */
    while (c->fd >= 0 && (rq = conn_read(c, 3 * WAIT_MS))) {
        if (rq->op_case == CHAN__REQUEST__OP_SEND || rq->op_case == CHAN__REQUEST__OP_CLOSE) {
            send_id = rq->id;   /* held */
        } else if (rq->op_case == CHAN__REQUEST__OP_CANCEL && f->late < 2) {
            Chan__SendReply sr = CHAN__SEND_REPLY__INIT;
            sr.has_accepted = true;
            sr.accepted = f->late == 0 ? 1 : 0;
            Chan__Reply r = CHAN__REPLY__INIT;
            r.has_id = r.has_status = true;
            r.id = send_id;
            r.status = f->late == 0 ? CHAN__STATUS__OK : CHAN__STATUS__CANCELED;
            r.result_case = CHAN__REPLY__RESULT_SEND;
            r.send = &sr;
            conn_reply(c, &r);
        } else if (rq->op_case != CHAN__REQUEST__OP_CANCEL) {
            answer(c, rq);
        }
    }
    /* conn_read ends on the client's hang-up or after 3 * WAIT_MS of silence */
    if (c->fd >= 0) {
        char b;
        struct pollfd p = { c->fd, POLLIN, 0 };
        f->hung_up = poll(&p, 1, 0) == 1 && recv(c->fd, &b, 1, MSG_PEEK) <= 0;
        close(c->fd);
    }
    chan_arena_free(&c->arena);
    free(c);
    return NULL;
}

/* A move whose answer is lost: the first connection takes MoveSlots 0-511
 * to g2 and hangs up without answering, as a node dying right after it
 * recorded the move; the next ones answer each Map with slots 0-511 of g1
 * moving to g2 (f->late 0: the move was recorded) or not moving (1). */
static void *fake_lost_move(void *arg)
{
    struct fake *f = arg;
    struct conn *c = calloc(1, sizeof *c);
    chan_arena_init(&c->arena);
    c->fd = fake_accept(f);
    Chan__Request *rq;
    while (c->fd >= 0 && (rq = conn_read(c, WAIT_MS)) &&
           rq->op_case != CHAN__REQUEST__OP_MOVE_SLOTS)
        answer(c, rq);
    if (c->fd >= 0)
        close(c->fd);
    Chan__SlotRange whole = CHAN__SLOT_RANGE__INIT, moving = CHAN__SLOT_RANGE__INIT;
    whole.has_lo = whole.has_hi = moving.has_lo = moving.has_hi = true;
    whole.lo = 0;
    whole.hi = CHAN_SLOTS - 1;
    whole.group = "g1";
    moving.lo = 0;
    moving.hi = 511;
    moving.group = "g2";
    Chan__SlotRange *ranges[1] = { &whole };
    Chan__SlotMap m = CHAN__SLOT_MAP__INIT;
    m.has_version = true;
    m.version = 7;
    m.n_ranges = 1;
    m.ranges = ranges;
    m.moving = f->late == 0 ? &moving : NULL;
    while ((c->fd = fake_accept(f)) >= 0) {
        c->len = c->used = 0;
        while ((rq = conn_read(c, WAIT_MS))) {
            if (rq->op_case != CHAN__REQUEST__OP_MAP) {
                answer(c, rq);
                continue;
            }
            f->nmaps++;
            Chan__Reply r = CHAN__REPLY__INIT;
            r.has_id = r.has_status = true;
            r.id = rq->id;
            r.result_case = CHAN__REPLY__RESULT_MAP;
            r.map = &m;
            conn_reply(c, &r);
        }
        close(c->fd);
        if (atomic_load(&f->drop))
            break;
    }
    chan_arena_free(&c->arena);
    free(c);
    return NULL;
}

/* Two one-node groups of a cluster, for a call answered MOVED whose new
 * group's connection is lost on the way (a failover there).  g1 (the fake
 * with late == 1) serves every slot until it answers a Send MOVED; its Maps
 * then give every slot to g2 (f->nmaps counts them).  g2 (late == 2)
 * hangs up its first connection at the first Open, then serves: f->nopen
 * counts its Opens answered, f->after its Sends taken. */
static char moved_addr[2][32];
static atomic_bool moved_answered;

static void cluster_hello(struct conn *c, uint64_t id, const char *group)
{
    Chan__Limits l = CHAN__LIMITS__INIT;
    l.has_max_frame = l.has_max_value = l.has_max_batch = l.has_max_cases = true;
    l.max_frame = 1u << 20;
    l.max_value = 1u << 19;
    l.max_batch = 64;
    l.max_cases = 64;
    Chan__HelloReply h = CHAN__HELLO_REPLY__INIT;
    h.has_version = true;
    h.version = CHAN_PROTOCOL_VERSION;
    h.server = "fake";
    h.limits = &l;
    h.role = "primary";
    h.group = (char *)group;
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = true;
    r.id = id;
    r.result_case = CHAN__REPLY__RESULT_HELLO;
    r.hello = &h;
    conn_reply(c, &r);
}

static void cluster_map(struct conn *c, uint64_t id)
{
    bool moved = atomic_load(&moved_answered);
    Chan__SlotRange whole = CHAN__SLOT_RANGE__INIT;
    whole.has_lo = whole.has_hi = true;
    whole.lo = 0;
    whole.hi = CHAN_SLOTS - 1;
    whole.group = moved ? "g2" : "g1";
    Chan__SlotRange *ranges[1] = { &whole };
    Chan__GroupInfo gi[2] = { CHAN__GROUP_INFO__INIT, CHAN__GROUP_INFO__INIT };
    Chan__GroupInfo *groups[2] = { &gi[0], &gi[1] };
    char *nodes[2] = { moved_addr[0], moved_addr[1] };
    for (int g = 0; g < 2; g++) {
        gi[g].group = g ? "g2" : "g1";
        gi[g].primary = nodes[g];
        gi[g].n_nodes = 1;
        gi[g].nodes = &nodes[g];
    }
    Chan__SlotMap m = CHAN__SLOT_MAP__INIT;
    m.has_slots = m.has_version = true;
    m.slots = CHAN_SLOTS;
    m.version = moved ? 2 : 1;
    m.n_ranges = 1;
    m.ranges = ranges;
    m.n_groups = 2;
    m.groups = groups;
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = true;
    r.id = id;
    r.result_case = CHAN__REPLY__RESULT_MAP;
    r.map = &m;
    conn_reply(c, &r);
}

static void answer_send(struct conn *c, const Chan__Request *rq, bool moved)
{
    Chan__SendReply sr = CHAN__SEND_REPLY__INIT;
    sr.has_accepted = true;
    sr.accepted = moved ? 0 : (uint32_t)rq->send->n_values;
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = true;
    r.id = rq->id;
    r.status = moved ? CHAN__STATUS__MOVED : CHAN__STATUS__OK;
    r.message = moved ? "the channel's slot is served by group g2" : NULL;
    r.result_case = CHAN__REPLY__RESULT_SEND;
    r.send = &sr;
    conn_reply(c, &r);
}

static void *fake_moved_group(void *arg)
{
    struct fake *f = arg;
    bool g2 = f->late == 2;
    struct conn *c = calloc(1, sizeof *c);
    chan_arena_init(&c->arena);
    for (int n = 1; !atomic_load(&f->drop) && (c->fd = fake_accept(f)) >= 0; n++) {
        c->len = c->used = 0;
        c->eof = false;
        Chan__Request *rq;
        while ((rq = conn_read(c, 100)) || (!c->eof && !atomic_load(&f->drop))) {
            if (!rq) {
                continue;
            } else if (rq->op_case == CHAN__REQUEST__OP_HELLO) {
                cluster_hello(c, rq->id, g2 ? "g2" : "g1");
            } else if (rq->op_case == CHAN__REQUEST__OP_MAP) {
                f->nmaps++;
                cluster_map(c, rq->id);
            } else if (rq->op_case == CHAN__REQUEST__OP_SEND) {
                if (!g2)
                    atomic_store(&moved_answered, true);
                else
                    f->after++;
                answer_send(c, rq, !g2);
            } else if (rq->op_case == CHAN__REQUEST__OP_OPEN && g2 && n == 1) {
                break;   /* the failover: the connection is lost */
            } else {
                f->nopen += rq->op_case == CHAN__REQUEST__OP_OPEN && g2;
                answer(c, rq);
            }
        }
        close(c->fd);
    }
    chan_arena_free(&c->arena);
    free(c);
    return NULL;
}

/* Start serve(f) in a thread of its own; late is set before it starts
 * (the thread may read it at once). */
static void fake_start_with(struct fake *f, int nreopen, int late, void *(*serve)(void *))
{
    memset(f, 0, sizeof *f);
    f->nreopen = nreopen;
    f->late = late;
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&a, len), 0);
    ck_assert_int_eq(listen(f->lfd, 4), 0);
    ck_assert_int_eq(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&f->thread, NULL, serve, f), 0);
}

static void fake_start(struct fake *f, int nreopen)
{
    fake_start_with(f, nreopen, 0, fake_main);
}

/* A send whose answer has not come by its deadline (and chand's grace) is
 * cancelled, and its answer, when it comes, is what the call reports: the
 * value taken (0: no "timed out" for a value that went, which a caller
 * would send again), or nothing taken (ETIMEDOUT).  With no answer at all
 * the connection is hung up and the call cannot know: ECONNRESET. */
START_TEST(t_late_send_answer)
{
    struct fake f;
    fake_start_with(&f, 0, _i, fake_late_send);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f.port);
    chan_client_t *cl = chan_connect(addr, NULL, chan_now() + WAIT_MS);
    ck_assert_ptr_nonnull(cl);
    chan_t *ch = chan_open(cl, "late", 4, 0, chan_now() + WAIT_MS);
    ck_assert_ptr_nonnull(ch);
    int rc = chan_send(ch, "v", 1, chan_now() + 100);
    int err = errno;
    switch (_i) {
    case 0: ck_assert_msg(rc == 0, "send: -1, %s", strerror(err)); break;
    case 1: ck_assert_int_eq(rc, -1); ck_assert_int_eq(err, ETIMEDOUT); break;
    default: ck_assert_int_eq(rc, -1); ck_assert_int_eq(err, ECONNRESET); break;
    }
    chan_release(ch);
    chan_disconnect(cl);
    pthread_join(f.thread, NULL);
    close(f.lfd);
    if (_i == 2)
        ck_assert(f.hung_up);
}
END_TEST

/* A move whose answer was lost with the connection is not reported failed
 * when the map shows it under way (the node asked recorded it and died: a
 * retry would be refused as a second move); when the map does not show it,
 * it is ECONNRESET after the look. */
START_TEST(t_move_answer_lost)
{
    struct fake f;
    fake_start_with(&f, 0, _i, fake_lost_move);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f.port);
    chan_client_t *cl = chan_connect(addr, NULL, chan_now() + WAIT_MS);
    ck_assert_ptr_nonnull(cl);
    int64_t t0 = chan_now();
    int rc = chan_cluster_move(cl, 0, 511, "g2", chan_now() + 10000);
    int err = errno;
    if (_i == 0) {
        ck_assert_msg(rc == 0, "move: -1, %s (%s)", strerror(err), chan_errmsg());
    } else {
        ck_assert_int_eq(rc, -1);
        ck_assert_int_eq(err, ECONNRESET);
        ck_assert_msg(strstr(chan_errmsg(), "does not show"), "%s", chan_errmsg());
        ck_assert_int_ge(chan_now() - t0, 4000);   /* it looked, several times */
        ck_assert_int_gt(f.nmaps, 2);
    }
    atomic_store(&f.drop, true);
    chan_disconnect(cl);
    pthread_join(f.thread, NULL);
    close(f.lfd);
}
END_TEST

/* A call answered MOVED took no effect: when the connection to the slot's
 * new group is lost before the call gets there (its primary failing over),
 * the call waits and goes again within its deadline, and is not failed
 * with ECONNRESET, which would say it may have taken effect. */
START_TEST(t_moved_then_lost)
{
    struct fake g[2];
    atomic_store(&moved_answered, false);
    for (int i = 0; i < 2; i++) {
        fake_start_with(&g[i], 0, i + 1, fake_moved_group);
        snprintf(moved_addr[i], sizeof moved_addr[i], "127.0.0.1:%d", g[i].port);
    }
    chan_client_t *cl = chan_connect(moved_addr[0], NULL, chan_now() + WAIT_MS);
    ck_assert_ptr_nonnull(cl);
    chan_t *ch = chan_open(cl, "moving", 4, 0, chan_now() + WAIT_MS);
    ck_assert_msg(ch, "open: %s (%s)", strerror(errno), chan_errmsg());
    int rc = chan_send(ch, "v", 1, chan_now() + WAIT_MS);
    int err = errno;
    ck_assert_msg(rc == 0, "send: -1, %s (%s)", strerror(err), chan_errmsg());
    ck_assert(atomic_load(&moved_answered));
    ck_assert_int_eq(g[1].after, 1);   /* the value went to g2, once */
    ck_assert_int_ge(g[1].nopen, 1);
    chan_release(ch);
    for (int i = 0; i < 2; i++)
        atomic_store(&g[i].drop, true);
    chan_disconnect(cl);
    for (int i = 0; i < 2; i++) {
        pthread_join(g[i].thread, NULL);
        close(g[i].lfd);
    }
}
END_TEST

/* chan_close on a connection that stopped answering gives up (a Close
 * carries no deadline to chand, so the library bounds its wait), with
 * ECONNRESET: the close may have been done. */
START_TEST(t_close_on_stuck_connection)
{
    struct fake f;
    fake_start_with(&f, 0, 2, fake_late_send);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f.port);
    chan_client_t *cl = chan_connect(addr, NULL, chan_now() + WAIT_MS);
    ck_assert_ptr_nonnull(cl);
    chan_t *ch = chan_open(cl, "stuck", 4, 0, chan_now() + WAIT_MS);
    ck_assert_ptr_nonnull(ch);
    ck_assert_int_eq(chan_close(ch), -1);
    ck_assert_int_eq(errno, ECONNRESET);
    chan_release(ch);
    chan_disconnect(cl);
    pthread_join(f.thread, NULL);
    close(f.lfd);
    ck_assert(f.hung_up);
}
END_TEST

/* A server announcing a max_frame too small to hold a request is refused
 * at the dial: every size the client derives from it would wrap. */
START_TEST(t_tiny_max_frame_refused)
{
    struct fake f;
    fake_start_with(&f, 0, 0, fake_small_frames);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f.port);
    chan_client_t *cl = chan_connect(addr, NULL, chan_now() + WAIT_MS);
    ck_assert_ptr_null(cl);
    ck_assert_int_eq(errno, EPROTO);
    ck_assert_msg(strstr(chan_errmsg(), "max_frame (100 bytes) is under 1024"), "errmsg '%s'",
                  chan_errmsg());
    pthread_join(f.thread, NULL);
    close(f.lfd);
}
END_TEST

START_TEST(t_reopen_on_the_wire)
{
    struct fake f;
    fake_start(&f, 3);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f.port);
    chan_client_t *cl = chan_connect(addr, NULL, chan_now() + WAIT_MS);
    ck_assert_ptr_nonnull(cl);
    int64_t dl = chan_now() + WAIT_MS;
    chan_t *made = chan_open(cl, "w.made", 3, 0, dl);
    chan_t *any = chan_open(cl, "w.any", CHAN_CAP_ANY, 0, dl);
    chan_t *nc = chan_open(cl, "w.nc", CHAN_CAP_ANY, CHAN_NOCREATE, dl);
    chan_t *tmp = chan_open_temp(cl, 1, dl);
    chan_t *gone = chan_open(cl, "w.gone", 1, 0, dl);
    ck_assert(made && any && nc && tmp && gone);
    ck_assert_int_eq(chan_cap(any), 7);
    chan_release(gone);   /* released: not re-opened */
    atomic_store(&f.drop, true);
    for (int i = 0; i < WAIT_MS / 10 && !atomic_load(&f.dropped); i++)
        chand_sleep_ms(10);
    ping_retry(cl);
    pthread_join(f.thread, NULL);
    close(f.lfd);
    ck_assert_msg(!f.error[0], "%s", f.error);
    ck_assert_msg(!f.early, "request %d came before the re-opens (%d of 3)", f.after,
                  f.nopen);
    /* one Open per live handle, none for the temporary channel, in one go */
    ck_assert_int_eq(f.nopen, 3);
    ck_assert_int_eq(f.after, CHAN__REQUEST__OP_PING);
    bool seen[3] = { false, false, false };
    for (int k = 0; k < f.nopen; k++) {
        ck_assert(!f.open[k].temp);
        if (strcmp(f.open[k].name, "w.made") == 0) {
            seen[0] = true;   /* with its capacity, made again if missing */
            ck_assert(f.open[k].has_cap && f.open[k].cap == 3 && !f.open[k].no_create);
        } else if (strcmp(f.open[k].name, "w.any") == 0) {
            seen[1] = true;   /* with the capacity it was found with */
            ck_assert(f.open[k].has_cap && f.open[k].cap == 7 && !f.open[k].no_create);
        } else if (strcmp(f.open[k].name, "w.nc") == 0) {
            seen[2] = true;   /* never made */
            ck_assert(!f.open[k].has_cap && f.open[k].no_create);
        } else {
            ck_abort_msg("re-opened %s", f.open[k].name);
        }
    }
    ck_assert(seen[0] && seen[1] && seen[2]);
    chan_release(made);
    chan_release(any);
    chan_release(nc);
    chan_release(tmp);
    chan_disconnect(cl);
}
END_TEST

static Suite *redial_suite(void)
{
    Suite *s = suite_create("redial");
    TCase *tc = tcase_create("restart");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, t_capacity_kept);
    tcase_add_test(tc, t_durable_confirmed);
    tcase_add_test(tc, t_blocked_receivers_reset);
    tcase_add_test(tc, t_temp_handle_gone);
    tcase_add_test(tc, t_nocreate_not_made);
    tcase_add_test(tc, t_other_capacity_exists);
    tcase_add_test(tc, t_many_handles);
    tcase_add_test(tc, t_reopen_on_the_wire);
    tcase_add_test(tc, t_tiny_max_frame_refused);
    tcase_add_loop_test(tc, t_late_send_answer, 0, 3);
    tcase_add_loop_test(tc, t_move_answer_lost, 0, 2);
    tcase_add_test(tc, t_moved_then_lost);
    tcase_add_test(tc, t_close_on_stuck_connection);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(redial_suite());
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}

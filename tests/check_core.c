/*
 * check_core.c - unit tests of chand's channel core (daemon/chand_core*.c),
 * with no sockets: each test plays a few sessions and inspects what the core
 * answered to each of them.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand_core.h"
#include "chand_hash.h"
#include "chand_idwin.h"

/* ---- a session that records its replies ---- */

#define MAXREC 512
#define MAXDLV 64

typedef struct rec {
    uint64_t id;
    core_status_t st;
    enum core_reply_kind kind;
    uint32_t accepted;
    int index;
    uint64_t value_len;
    bool created;
    uint64_t cap;
    size_t ndlv;
    uint64_t dlv[MAXDLV];
    char val[MAXDLV][32];
    uint32_t redelivered[MAXDLV];
    size_t nver;
    uint64_t ver[16];
} rec_t;

typedef struct tsess {
    core_sess_t *s;
    rec_t *recs;
    size_t n;
} tsess_t;

static core_t *core;
static tsess_t sess[4];

static void on_reply(void *ctx, const core_reply_t *r)
{
    tsess_t *t = ctx;
    ck_assert_uint_lt(t->n, MAXREC);
    rec_t *x = &t->recs[t->n++];
    memset(x, 0, sizeof *x);
    x->id = r->id;
    x->st = r->status;
    x->kind = r->kind;
    x->accepted = r->accepted;
    x->index = r->index;
    x->value_len = r->value_len;
    x->created = r->created;
    ck_assert_uint_le(r->nversions, 16);
    x->nver = r->nversions;
    for (size_t i = 0; i < r->nversions; i++)
        x->ver[i] = r->versions[i];
    if (r->kind == CORE_R_OPEN) {
        core_chan_info_t info;
        core_chan_info(r->chan, &info);
        x->cap = info.cap;
    }
    ck_assert_uint_le(r->ndlv, MAXDLV);
    x->ndlv = r->ndlv;
    for (size_t i = 0; i < r->ndlv; i++) {
        x->dlv[i] = r->dlv[i].id;
        size_t len = r->dlv[i].val->len < 31 ? r->dlv[i].val->len : 31;
        memcpy(x->val[i], r->dlv[i].val->data, len);
        x->val[i][len] = 0;
        x->redelivered[i] = r->dlv[i].val->redelivered;
    }
}

static const core_limits_t limits = {
    .max_value = 1024, .max_reply = 4096, .max_batch = 64, .max_pending = 100, .max_cases = 16,
    .max_channels = 100, .max_cap = 1000000,
};

static void setup(void)
{
    core = core_new(&limits, on_reply);
    core_seed(core, 12345);
    for (int i = 0; i < 4; i++) {
        sess[i].recs = calloc(MAXREC, sizeof(rec_t));
        sess[i].n = 0;
        sess[i].s = core_sess_new(core, &sess[i]);
    }
}

static void teardown(void)
{
    /* whatever a test did, the core's invariants hold at its end */
    const char *bad = core_audit(core, NULL, NULL);
    ck_assert_msg(!bad, "core_audit: %s", bad ? bad : "");
    for (int i = 0; i < 4; i++) {
        if (sess[i].s)
            core_sess_drop(sess[i].s);
        free(sess[i].recs);
    }
    core_free(core);
}

static core_bytes_t B(const char *s)
{
    return (core_bytes_t){ (const uint8_t *)s, strlen(s) };
}

/* The reply to request id, or NULL if none came (yet). */
static rec_t *reply_to(tsess_t *t, uint64_t id)
{
    rec_t *found = NULL;
    for (size_t i = 0; i < t->n; i++)
        if (t->recs[i].id == id) {
            ck_assert_msg(!found, "request %llu answered twice", (unsigned long long)id);
            found = &t->recs[i];
        }
    return found;
}

static rec_t *must_reply(tsess_t *t, uint64_t id, core_status_t st)
{
    rec_t *r = reply_to(t, id);
    ck_assert_msg(r, "no reply to %llu", (unsigned long long)id);
    ck_assert_msg(r->st == st, "reply to %llu: status %d, expected %d",
                  (unsigned long long)id, r->st, st);
    return r;
}

static void mk(tsess_t *t, uint64_t id, const char *name, long cap)
{
    core_open(t->s, id, B(name), cap >= 0, cap >= 0 ? (uint64_t)cap : 0, false, false);
    must_reply(t, id, CORE_ST_OK);
}

static void send1(tsess_t *t, uint64_t id, const char *name, const char *v, int64_t timeout)
{
    core_bytes_t b = B(v);
    core_send(t->s, id, B(name), &b, 1, timeout, 0);
}

static void recvn(tsess_t *t, uint64_t id, const char *name, uint32_t max, int64_t timeout)
{
    core_recv(t->s, id, B(name), max, UINT64_MAX, timeout, 0);
}

static void ack_all(tsess_t *t, rec_t *r)
{
    for (size_t i = 0; i < r->ndlv; i++)
        ck_assert(core_ack(t->s, r->dlv[i]));
}

/* Receive one value now and acknowledge it; returns it (static buffer). */
static const char *take(tsess_t *t, uint64_t id, const char *name)
{
    static char v[32];
    recvn(t, id, name, 1, 0);
    rec_t *r = must_reply(t, id, CORE_ST_OK);
    ck_assert_uint_eq(r->ndlv, 1);
    ack_all(t, r);
    strcpy(v, r->val[0]);
    return v;
}

static core_chan_info_t info_of(const char *name)
{
    core_chan_info_t info;
    const core_chan_t *ch = core_find(core, B(name));
    ck_assert_ptr_nonnull(ch);
    core_chan_info(ch, &info);
    return info;
}

#define A (&sess[0])
#define Bs (&sess[1])
#define C (&sess[2])

/* ---- open ---- */

START_TEST(t_open_rules)
{
    core_open(A->s, 1, B("jobs"), true, 4, false, false);
    rec_t *r = must_reply(A, 1, CORE_ST_OK);
    ck_assert(r->created);
    ck_assert_uint_eq(r->cap, 4);
    core_open(A->s, 2, B("jobs"), true, 4, false, false);
    ck_assert(!must_reply(A, 2, CORE_ST_OK)->created);
    core_open(A->s, 3, B("jobs"), true, 5, false, false);
    must_reply(A, 3, CORE_ST_EXISTS);
    core_open(A->s, 4, B("jobs"), false, 0, false, false);   /* as it is */
    ck_assert_uint_eq(must_reply(A, 4, CORE_ST_OK)->cap, 4);
    core_open(A->s, 5, B("nope"), false, 0, false, true);
    must_reply(A, 5, CORE_ST_NOT_FOUND);
    core_open(A->s, 6, B("fresh"), false, 0, false, false);  /* unbuffered */
    ck_assert_uint_eq(must_reply(A, 6, CORE_ST_OK)->cap, 0);
    core_open(A->s, 7, B("big"), true, 2000000, false, false);
    must_reply(A, 7, CORE_ST_BAD_REQUEST);
    send1(A, 8, "nope", "x", -1);
    must_reply(A, 8, CORE_ST_NOT_FOUND);
    /* a temporary channel is always new */
    core_open(A->s, 9, B("jobs"), false, 0, true, false);
    must_reply(A, 9, CORE_ST_EXISTS);
}
END_TEST

START_TEST(t_select_without_cases)
{
    /* nothing can proceed: TIMEOUT at once, or at its deadline */
    core_select(A->s, 1, NULL, 0, false, 0, false, 0, 1000);
    must_reply(A, 1, CORE_ST_TIMEOUT);
    core_select(A->s, 2, NULL, 0, false, 0, false, 50, 1000);
    ck_assert_int_eq(core_next_deadline(core), 1050);
    core_expire(core, 1049);
    ck_assert_ptr_null(reply_to(A, 2));
    core_expire(core, 1050);
    must_reply(A, 2, CORE_ST_TIMEOUT);
}
END_TEST

START_TEST(t_max_channels)
{
    char name[16];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "c%d", i);
        mk(A, (uint64_t)i + 1, name, 0);
    }
    core_open(A->s, 500, B("one-too-many"), false, 0, false, false);
    must_reply(A, 500, CORE_ST_BUSY);
}
END_TEST

/* ---- unbuffered ---- */

START_TEST(t_unbuffered_send_blocks_until_received_and_acked)
{
    mk(A, 1, "u", 0);
    send1(A, 2, "u", "hello", -1);
    ck_assert_ptr_null(reply_to(A, 2));          /* no receiver yet */
    ck_assert_uint_eq(info_of("u").senders, 1);
    recvn(Bs, 3, "u", 1, -1);
    rec_t *r = must_reply(Bs, 3, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "hello");
    ck_assert_ptr_null(reply_to(A, 2));          /* delivered, not yet acknowledged */
    ck_assert_uint_eq(info_of("u").inflight, 1);
    ack_all(Bs, r);
    ck_assert_uint_eq(must_reply(A, 2, CORE_ST_OK)->accepted, 1);
    core_chan_info_t i = info_of("u");
    ck_assert_uint_eq(i.inflight, 0);
    ck_assert_uint_eq(i.sent, 1);
    ck_assert_uint_eq(i.received, 1);
    ck_assert_uint_eq(i.senders + i.receivers, 0);
}
END_TEST

START_TEST(t_unbuffered_recv_blocks_until_sender)
{
    mk(A, 1, "u", 0);
    recvn(Bs, 2, "u", 1, -1);
    ck_assert_ptr_null(reply_to(Bs, 2));
    ck_assert_uint_eq(info_of("u").receivers, 1);
    send1(A, 3, "u", "v", -1);
    rec_t *r = must_reply(Bs, 2, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "v");
    ck_assert_ptr_null(reply_to(A, 3));
    ack_all(Bs, r);
    must_reply(A, 3, CORE_ST_OK);
}
END_TEST

START_TEST(t_unbuffered_nonblocking)
{
    mk(A, 1, "u", 0);
    send1(A, 2, "u", "v", 0);
    ck_assert_uint_eq(must_reply(A, 2, CORE_ST_TIMEOUT)->accepted, 0);
    recvn(A, 3, "u", 1, 0);
    must_reply(A, 3, CORE_ST_TIMEOUT);
    ck_assert_uint_eq(info_of("u").senders + info_of("u").receivers, 0);
}
END_TEST

/* ---- buffered ---- */

START_TEST(t_buffered_backpressure)
{
    mk(A, 1, "b", 2);
    send1(A, 2, "b", "1", -1);
    send1(A, 3, "b", "2", -1);
    must_reply(A, 2, CORE_ST_OK);
    must_reply(A, 3, CORE_ST_OK);
    send1(A, 4, "b", "3", -1);                  /* full: blocks */
    ck_assert_ptr_null(reply_to(A, 4));
    ck_assert_uint_eq(info_of("b").len, 2);
    send1(A, 5, "b", "x", 0);                   /* full: would block */
    must_reply(A, 5, CORE_ST_TIMEOUT);
    ck_assert_str_eq(take(Bs, 6, "b"), "1");
    must_reply(A, 4, CORE_ST_OK);          /* room made: it went in */
    ck_assert_str_eq(take(Bs, 7, "b"), "2");
    ck_assert_str_eq(take(Bs, 8, "b"), "3");
    recvn(Bs, 9, "b", 1, 0);
    must_reply(Bs, 9, CORE_ST_TIMEOUT);
}
END_TEST

START_TEST(t_buffered_recv_blocks_while_empty)
{
    mk(A, 1, "b", 3);
    recvn(Bs, 2, "b", 1, -1);
    ck_assert_ptr_null(reply_to(Bs, 2));
    send1(A, 3, "b", "v", -1);
    must_reply(A, 3, CORE_ST_OK);          /* buffered: done at once */
    rec_t *r = must_reply(Bs, 2, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "v");
    ack_all(Bs, r);
}
END_TEST

START_TEST(t_batches)
{
    mk(A, 1, "b", 10);
    core_bytes_t v[5] = { B("a"), B("b"), B("c"), B("d"), B("e") };
    core_send(A->s, 2, B("b"), v, 5, -1, 0);
    ck_assert_uint_eq(must_reply(A, 2, CORE_ST_OK)->accepted, 5);
    recvn(Bs, 3, "b", 3, -1);
    rec_t *r = must_reply(Bs, 3, CORE_ST_OK);
    ck_assert_uint_eq(r->ndlv, 3);
    ck_assert_str_eq(r->val[0], "a");
    ck_assert_str_eq(r->val[2], "c");
    ack_all(Bs, r);
    recvn(Bs, 4, "b", 10, -1);                    /* at most what is there */
    r = must_reply(Bs, 4, CORE_ST_OK);
    ck_assert_uint_eq(r->ndlv, 2);
    ack_all(Bs, r);
    /* unbuffered batch: one receiver takes a batch, acks complete the send */
    mk(A, 5, "u", 0);
    core_send(A->s, 6, B("u"), v, 5, -1, 0);
    recvn(Bs, 7, "u", 2, -1);
    r = must_reply(Bs, 7, CORE_ST_OK);
    ck_assert_uint_eq(r->ndlv, 2);
    ack_all(Bs, r);
    ck_assert_ptr_null(reply_to(A, 6));
    recvn(Bs, 8, "u", 64, -1);
    r = must_reply(Bs, 8, CORE_ST_OK);
    ck_assert_uint_eq(r->ndlv, 3);
    ck_assert_str_eq(r->val[0], "c");
    ack_all(Bs, r);
    ck_assert_uint_eq(must_reply(A, 6, CORE_ST_OK)->accepted, 5);
    core_send(A->s, 9, B("u"), v, 0, -1, 0);
    must_reply(A, 9, CORE_ST_BAD_REQUEST);
}
END_TEST

START_TEST(t_batch_fits_a_frame)
{
    /* 1000-byte values, replies of at most 4096 bytes of values: a receive
     * asking for 10 gets 3 (each counts 32 bytes of framing too) */
    mk(A, 1, "big", 10);
    static char v[1001];
    memset(v, 'v', 1000);
    for (uint64_t id = 2; id < 7; id++)
        send1(A, id, "big", v, -1);
    recvn(Bs, 10, "big", 10, -1);
    rec_t *r = must_reply(Bs, 10, CORE_ST_OK);
    ck_assert_uint_eq(r->ndlv, 3);
    ack_all(Bs, r);
    recvn(Bs, 11, "big", 10, -1);
    ck_assert_uint_eq(must_reply(Bs, 11, CORE_ST_OK)->ndlv, 2);
}
END_TEST

/* ---- close ---- */

START_TEST(t_close_semantics)
{
    mk(A, 1, "b", 3);
    send1(A, 2, "b", "1", -1);
    send1(A, 3, "b", "2", -1);
    core_close(A->s, 4, B("b"));
    must_reply(A, 4, CORE_ST_OK);
    core_close(A->s, 5, B("b"));
    must_reply(A, 5, CORE_ST_CLOSED);      /* twice: an error, not a crash */
    send1(A, 6, "b", "3", -1);
    must_reply(A, 6, CORE_ST_CLOSED);      /* send on closed fails at once */
    ck_assert_str_eq(take(Bs, 7, "b"), "1");     /* queued values first */
    ck_assert_str_eq(take(Bs, 8, "b"), "2");
    for (uint64_t id = 9; id < 12; id++) {      /* then closed, forever */
        recvn(Bs, id, "b", 1, -1);
        must_reply(Bs, id, CORE_ST_CLOSED);
    }
}
END_TEST

START_TEST(t_close_wakes_everyone)
{
    mk(A, 1, "u", 0);
    mk(A, 2, "f", 1);
    recvn(Bs, 3, "u", 1, -1);
    recvn(C, 4, "u", 1, -1);
    send1(A, 5, "f", "x", -1);
    send1(Bs, 6, "f", "blocked", -1);
    ck_assert_ptr_null(reply_to(Bs, 6));
    core_close(A->s, 7, B("u"));
    core_close(A->s, 8, B("f"));
    must_reply(Bs, 3, CORE_ST_CLOSED);
    must_reply(C, 4, CORE_ST_CLOSED);
    ck_assert_uint_eq(must_reply(Bs, 6, CORE_ST_CLOSED)->accepted, 0);
    ck_assert_str_eq(take(C, 9, "f"), "x");
    core_info_t ci;
    core_info(core, &ci);
    ck_assert_uint_eq(ci.pending, 0);
}
END_TEST

START_TEST(t_close_with_unbuffered_send_in_flight)
{
    mk(A, 1, "u", 0);
    send1(A, 2, "u", "v", -1);
    recvn(Bs, 3, "u", 1, -1);
    rec_t *r = must_reply(Bs, 3, CORE_ST_OK);
    core_close(C->s, 4, B("u"));
    ck_assert_ptr_null(reply_to(A, 2));          /* matched before the close */
    ack_all(Bs, r);
    must_reply(A, 2, CORE_ST_OK);
}
END_TEST

START_TEST(t_delete)
{
    mk(A, 1, "d", 4);
    send1(A, 2, "d", "dropped", -1);
    mk(A, 3, "u", 0);
    recvn(Bs, 4, "u", 1, -1);
    core_delete(C->s, 5, B("d"));
    must_reply(C, 5, CORE_ST_OK);
    core_delete(C->s, 6, B("u"));
    must_reply(Bs, 4, CORE_ST_CLOSED);           /* waiters see it closed */
    ck_assert_ptr_null(core_find(core, B("d")));
    send1(A, 7, "d", "x", -1);
    must_reply(A, 7, CORE_ST_NOT_FOUND);
    core_delete(C->s, 8, B("d"));
    must_reply(C, 8, CORE_ST_NOT_FOUND);
    mk(A, 9, "d", 0);                                  /* the name is free again */
    ck_assert_uint_eq(info_of("d").len, 0);
    core_info_t ci;
    core_info(core, &ci);
    ck_assert_uint_eq(ci.value_bytes, 0);              /* its value was dropped */
}
END_TEST

/* ---- FIFO ---- */

START_TEST(t_fifo_values_and_waiters)
{
    mk(A, 1, "u", 0);
    /* senders queue in order; values leave in order */
    send1(A, 10, "u", "a", -1);
    send1(Bs, 11, "u", "b", -1);
    send1(C, 12, "u", "c", -1);
    ck_assert_str_eq(take(&sess[3], 13, "u"), "a");
    ck_assert_str_eq(take(&sess[3], 14, "u"), "b");
    ck_assert_str_eq(take(&sess[3], 15, "u"), "c");
    /* receivers queue in order; served first come first served */
    recvn(C, 20, "u", 1, -1);
    recvn(A, 21, "u", 1, -1);
    recvn(Bs, 22, "u", 1, -1);
    send1(&sess[3], 23, "u", "1", -1);
    ck_assert_str_eq(must_reply(C, 20, CORE_ST_OK)->val[0], "1");
    ck_assert_ptr_null(reply_to(A, 21));
    send1(&sess[3], 24, "u", "2", -1);
    ck_assert_str_eq(must_reply(A, 21, CORE_ST_OK)->val[0], "2");
    send1(&sess[3], 25, "u", "3", -1);
    ck_assert_str_eq(must_reply(Bs, 22, CORE_ST_OK)->val[0], "3");
}
END_TEST

START_TEST(t_fifo_buffered_many)
{
    mk(A, 1, "b", 5);
    char v[16];
    uint64_t id = 100;
    for (int i = 0; i < 20; i++) {              /* 5 buffered, 15 blocked */
        snprintf(v, sizeof v, "%d", i);
        send1(A, id++, "b", v, -1);
    }
    ck_assert_uint_eq(info_of("b").len, 5);
    ck_assert_uint_eq(info_of("b").senders, 15);
    for (int i = 0; i < 20; i++) {
        snprintf(v, sizeof v, "%d", i);
        ck_assert_str_eq(take(Bs, id++, "b"), v);
    }
    for (uint64_t k = 100; k < 120; k++)
        must_reply(A, k, CORE_ST_OK);
}
END_TEST

/* ---- deadlines and cancel ---- */

START_TEST(t_deadlines)
{
    mk(A, 1, "u", 0);
    core_recv(A->s, 2, B("u"), 1, UINT64_MAX, 100, 1000);
    core_send(Bs->s, 3, B("nope"), NULL, 0, 50, 1000);  /* bad: answered at once */
    core_bytes_t v = B("x");
    mk(A, 9, "w", 0);
    core_send(Bs->s, 4, B("w"), &v, 1, 50, 1000);
    ck_assert_int_eq(core_next_deadline(core), 1050);
    core_expire(core, 1049);
    ck_assert_ptr_null(reply_to(Bs, 4));
    core_expire(core, 1050);
    ck_assert_uint_eq(must_reply(Bs, 4, CORE_ST_TIMEOUT)->accepted, 0);
    ck_assert_int_eq(core_next_deadline(core), 1100);
    core_expire(core, 1100);
    must_reply(A, 2, CORE_ST_TIMEOUT);
    ck_assert_int_eq(core_next_deadline(core), -1);
    ck_assert_uint_eq(info_of("u").receivers, 0);
    /* a value matched before the deadline still completes the send */
    core_send(Bs->s, 5, B("u"), &v, 1, 10, 2000);
    recvn(C, 6, "u", 1, -1);
    rec_t *r = must_reply(C, 6, CORE_ST_OK);
    core_expire(core, 3000);
    ck_assert_ptr_null(reply_to(Bs, 5));
    ack_all(C, r);
    must_reply(Bs, 5, CORE_ST_OK);
}
END_TEST

START_TEST(t_cancel)
{
    mk(A, 1, "u", 0);
    recvn(A, 2, "u", 1, -1);
    core_cancel(A->s, 3, 2);
    must_reply(A, 3, CORE_ST_OK);
    must_reply(A, 2, CORE_ST_CANCELED);
    core_cancel(A->s, 4, 2);                    /* nothing pending now */
    must_reply(A, 4, CORE_ST_NOT_FOUND);
    send1(Bs, 5, "u", "v", 0);
    must_reply(Bs, 5, CORE_ST_TIMEOUT);   /* the receiver is gone */
}
END_TEST

START_TEST(t_pending_limit_and_duplicate_id)
{
    mk(A, 1, "u", 0);
    recvn(A, 2, "u", 1, -1);
    recvn(A, 2, "u", 1, -1);
    ck_assert_uint_eq(A->n, 2);
    ck_assert_int_eq(A->recs[1].st, CORE_ST_BAD_REQUEST);
    for (uint64_t id = 3; id < 103; id++)       /* 2..101 fill the 100 places */
        recvn(A, id, "u", 1, -1);
    ck_assert_ptr_null(reply_to(A, 101));
    must_reply(A, 102, CORE_ST_BUSY);
    ck_assert_uint_eq(core_sess_pending(A->s), 100);
}
END_TEST

START_TEST(t_too_large)
{
    mk(A, 1, "b", 4);
    send1(A, 2, "b", "0123456789", -1);
    core_recv(Bs->s, 3, B("b"), 1, 4, -1, 0);
    must_reply(Bs, 3, CORE_ST_TOO_LARGE);
    ck_assert_uint_eq(info_of("b").len, 1);      /* it stays */
    ck_assert_str_eq(take(Bs, 4, "b"), "0123456789");
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    send1(A, 5, "b", big, -1);
    must_reply(A, 5, CORE_ST_TOO_LARGE);
}
END_TEST

/* ---- delivery: acknowledgements and requeue ---- */

START_TEST(t_requeue_buffered_on_disconnect)
{
    mk(A, 1, "b", 10);
    core_bytes_t v[3] = { B("v1"), B("v2"), B("v3") };
    core_send(A->s, 2, B("b"), v, 3, -1, 0);
    recvn(Bs, 3, "b", 2, -1);
    rec_t *r = must_reply(Bs, 3, CORE_ST_OK);
    ck_assert_uint_eq(r->ndlv, 2);
    ck_assert_uint_eq(info_of("b").inflight, 2);
    core_sess_drop(Bs->s);                         /* without acknowledging */
    Bs->s = NULL;
    ck_assert_uint_eq(info_of("b").len, 3);
    recvn(C, 4, "b", 10, -1);
    r = must_reply(C, 4, CORE_ST_OK);
    ck_assert_uint_eq(r->ndlv, 3);
    ck_assert_str_eq(r->val[0], "v1");
    ck_assert_uint_eq(r->redelivered[0], 1);
    ck_assert_str_eq(r->val[1], "v2");
    ck_assert_uint_eq(r->redelivered[1], 1);
    ck_assert_str_eq(r->val[2], "v3");
    ck_assert_uint_eq(r->redelivered[2], 0);
    ack_all(C, r);
    ck_assert_uint_eq(info_of("b").inflight, 0);
}
END_TEST

START_TEST(t_requeue_unbuffered_on_disconnect)
{
    mk(A, 1, "u", 0);
    send1(A, 2, "u", "v", -1);
    recvn(Bs, 3, "u", 1, -1);
    must_reply(Bs, 3, CORE_ST_OK);
    core_sess_drop(Bs->s);
    Bs->s = NULL;
    ck_assert_ptr_null(reply_to(A, 2));          /* not taken: still sending */
    ck_assert_uint_eq(info_of("u").senders, 1);
    recvn(C, 4, "u", 1, -1);
    rec_t *r = must_reply(C, 4, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "v");
    ck_assert_uint_eq(r->redelivered[0], 1);
    ack_all(C, r);
    must_reply(A, 2, CORE_ST_OK);
}
END_TEST

START_TEST(t_nack_returns_to_head)
{
    mk(A, 1, "b", 10);
    core_bytes_t v[2] = { B("first"), B("second") };
    core_send(A->s, 2, B("b"), v, 2, -1, 0);
    recvn(Bs, 3, "b", 1, -1);
    rec_t *r = must_reply(Bs, 3, CORE_ST_OK);
    ck_assert(core_nack(Bs->s, r->dlv[0]));
    ck_assert(!core_nack(Bs->s, r->dlv[0]));       /* once only */
    ck_assert(!core_ack(Bs->s, 999));
    recvn(C, 4, "b", 2, -1);
    r = must_reply(C, 4, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "first");
    ck_assert_uint_eq(r->redelivered[0], 0);      /* given back, not lost */
    ck_assert_str_eq(r->val[1], "second");
    ack_all(C, r);
}
END_TEST

/* Bs takes [1, 2, 3] from buffered channel name (made by A). */
static rec_t *take_three(const char *name, uint64_t id)
{
    mk(A, id, name, 10);
    core_bytes_t v[3] = { B("1"), B("2"), B("3") };
    core_send(A->s, id + 1, B(name), v, 3, -1, 0);
    recvn(Bs, id + 2, name, 3, -1);
    rec_t *r = must_reply(Bs, id + 2, CORE_ST_OK);
    ck_assert_uint_eq(r->ndlv, 3);
    return r;
}

static void expect_next(tsess_t *t, uint64_t id, const char *name, const char *want)
{
    ck_assert_str_eq(take(t, id, name), want);
}

START_TEST(t_nack_batch_keeps_order)
{
    /* one nack list, in any order: the values are back as they were sent */
    rec_t *r = take_three("b1", 10);
    uint64_t ids[4] = { r->dlv[0], r->dlv[1], r->dlv[2], r->dlv[1] };
    ck_assert_uint_eq(core_nack_all(Bs->s, ids, 3), 3);
    expect_next(C, 20, "b1", "1");
    expect_next(C, 21, "b1", "2");
    expect_next(C, 22, "b1", "3");
    r = take_three("b2", 30);
    uint64_t mixed[4] = { r->dlv[2], r->dlv[0], r->dlv[1], r->dlv[0] };
    ck_assert_uint_eq(core_nack_all(Bs->s, mixed, 4), 4);   /* a duplicate counts, goes once */
    expect_next(C, 40, "b2", "1");
    expect_next(C, 41, "b2", "2");
    expect_next(C, 42, "b2", "3");
    recvn(C, 43, "b2", 1, 0);
    must_reply(C, 43, CORE_ST_TIMEOUT);
    /* a receiver already waiting gets the oldest, not the first given back */
    r = take_three("b3", 50);
    recvn(C, 60, "b3", 1, -1);
    uint64_t all[3] = { r->dlv[0], r->dlv[1], r->dlv[2] };
    core_nack_all(Bs->s, all, 3);
    ck_assert_str_eq(must_reply(C, 60, CORE_ST_OK)->val[0], "1");
    ack_all(C, reply_to(C, 60));
    expect_next(C, 61, "b3", "2");
    expect_next(C, 62, "b3", "3");
    /* unbuffered: the sender first in line keeps its place */
    tsess_t *D = &sess[3];
    mk(A, 70, "u", 0);
    send1(A, 71, "u", "a", -1);
    send1(D, 72, "u", "d", -1);
    recvn(Bs, 73, "u", 2, -1);
    r = must_reply(Bs, 73, CORE_ST_OK);
    ck_assert_uint_eq(r->ndlv, 2);
    ck_assert_str_eq(r->val[0], "a");
    uint64_t two[2] = { r->dlv[0], r->dlv[1] };
    core_nack_all(Bs->s, two, 2);
    expect_next(C, 74, "u", "a");
    must_reply(A, 71, CORE_ST_OK);
    expect_next(C, 75, "u", "d");
    must_reply(D, 72, CORE_ST_OK);
}
END_TEST

START_TEST(t_disconnect_keeps_order_for_a_waiting_receiver)
{
    /* the receiver dies holding [1, 2, 3] while another waits: the waiting
     * one gets 1 (it once got 3: the newest went back and was served
     * before the others were back) */
    take_three("b", 10);
    recvn(C, 20, "b", 1, -1);
    core_sess_drop(Bs->s);
    Bs->s = NULL;
    rec_t *r = must_reply(C, 20, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "1");
    ck_assert_uint_eq(r->redelivered[0], 1);
    ack_all(C, r);
    expect_next(C, 21, "b", "2");
    expect_next(C, 22, "b", "3");
}
END_TEST

START_TEST(t_sender_gone_before_ack)
{
    mk(A, 1, "u", 0);
    send1(A, 2, "u", "v", -1);
    recvn(Bs, 3, "u", 1, -1);
    rec_t *r = must_reply(Bs, 3, CORE_ST_OK);
    core_sess_drop(A->s);
    A->s = NULL;
    ack_all(Bs, r);                               /* no crash, no reply */
    core_info_t ci;
    core_info(core, &ci);
    ck_assert_uint_eq(ci.pending, 0);
    ck_assert_uint_eq(ci.inflight, 0);
}
END_TEST

/* ---- temporary channels ---- */

struct temps {
    int n;
    const core_chan_t *last;
};

static void find_temps(const core_chan_t *ch, void *arg)
{
    struct temps *t = arg;
    core_chan_info_t i;
    core_chan_info(ch, &i);
    if (i.temp) {
        t->last = ch;
        t->n++;
    }
}

START_TEST(t_temp_channel_cleanup)
{
    core_open(A->s, 1, (core_bytes_t){ NULL, 0 }, false, 0, true, false);
    rec_t *r = must_reply(A, 1, CORE_ST_OK);
    ck_assert(r->created);
    core_chan_info_t info;
    struct temps t = { 0, NULL };
    core_each_chan(core, find_temps, &t);
    ck_assert_int_eq(t.n, 1);
    core_chan_info(t.last, &info);
    char name[64];
    memcpy(name, info.name.data, info.name.len);
    name[info.name.len] = 0;
    ck_assert(strncmp(name, "tmp.", 4) == 0);
    recvn(Bs, 2, name, 1, -1);                   /* blocked peer */
    send1(C, 3, name, "x", -1);
    rec_t *got = must_reply(Bs, 2, CORE_ST_OK);
    (void)got;                                   /* left unacknowledged */
    recvn(Bs, 4, name, 1, -1);
    core_sess_drop(A->s);
    A->s = NULL;
    must_reply(Bs, 4, CORE_ST_CLOSED);     /* sees it closed */
    ck_assert_ptr_null(core_find(core, B(name)));
    send1(C, 5, name, "y", -1);
    must_reply(C, 5, CORE_ST_NOT_FOUND);
    ck_assert(core_ack(Bs->s, got->dlv[0]));     /* late ack: harmless */
    must_reply(C, 3, CORE_ST_OK);
}
END_TEST

/* ---- select ---- */

static core_case_req_t RC(const char *name)
{
    return (core_case_req_t){ .name = B(name), .send = false, .max_bytes = UINT64_MAX };
}

static core_case_req_t SC(const char *name, const char *v)
{
    return (core_case_req_t){ .name = B(name), .send = true, .value = B(v) };
}

START_TEST(t_select_default_and_block)
{
    mk(A, 1, "x", 0);
    mk(A, 2, "y", 0);
    core_case_req_t cs[2] = { RC("x"), RC("y") };
    core_select(A->s, 3, cs, 2, false, 0, false, 0, 0);
    must_reply(A, 3, CORE_ST_TIMEOUT);       /* default */
    core_select(A->s, 4, cs, 2, false, 0, false, -1, 0);
    ck_assert_ptr_null(reply_to(A, 4));
    ck_assert_uint_eq(info_of("x").receivers, 1);
    ck_assert_uint_eq(info_of("y").receivers, 1);
    send1(Bs, 5, "y", "vy", -1);
    rec_t *r = must_reply(A, 4, CORE_ST_OK);
    ck_assert_int_eq(r->index, 1);
    ck_assert_str_eq(r->val[0], "vy");
    ck_assert_uint_eq(info_of("x").receivers, 0);  /* loser dequeued */
    ack_all(A, r);
    must_reply(Bs, 5, CORE_ST_OK);
    send1(Bs, 6, "x", "vx", 0);                    /* nobody waits on x now */
    must_reply(Bs, 6, CORE_ST_TIMEOUT);
}
END_TEST

START_TEST(t_select_send_case)
{
    mk(A, 1, "u", 0);
    mk(A, 2, "b", 1);
    send1(A, 3, "b", "fill", -1);
    core_case_req_t cs[2] = { SC("u", "to-u"), SC("b", "to-b") };
    core_select(Bs->s, 4, cs, 2, false, 0, false, -1, 0);
    ck_assert_ptr_null(reply_to(Bs, 4));
    ck_assert_str_eq(take(C, 5, "b"), "fill");   /* room in b: select proceeds there */
    ck_assert_int_eq(must_reply(Bs, 4, CORE_ST_OK)->index, 1);
    ck_assert_uint_eq(info_of("u").senders, 0);
    ck_assert_str_eq(take(C, 6, "b"), "to-b");
}
END_TEST

START_TEST(t_select_exactly_one)
{
    /* both cases ready: exactly one value is taken */
    mk(A, 1, "x", 1);
    mk(A, 2, "y", 1);
    send1(A, 3, "x", "vx", -1);
    send1(A, 4, "y", "vy", -1);
    core_case_req_t cs[2] = { RC("x"), RC("y") };
    core_select(Bs->s, 5, cs, 2, false, 0, false, -1, 0);
    rec_t *r = must_reply(Bs, 5, CORE_ST_OK);
    ck_assert_uint_eq(r->ndlv, 1);
    ack_all(Bs, r);
    ck_assert_uint_eq(info_of("x").len + info_of("y").len, 1);
}
END_TEST

START_TEST(t_select_random_choice)
{
    /* With both cases always ready, each should win about half the time.
     * N = 20000 trials: mean 10000, sigma = sqrt(N/4) ~ 70.7; the bounds
     * below are 8 sigma, a false failure has probability < 1e-14. */
    mk(A, 1, "x", 1);
    mk(A, 2, "y", 1);
    core_case_req_t cs[2] = { RC("x"), RC("y") };
    int wins[2] = { 0, 0 };
    uint64_t id = 10;
    const int N = 20000;
    for (int i = 0; i < N; i++) {
        if (info_of("x").len == 0)
            send1(A, id++, "x", "x", 0);
        if (info_of("y").len == 0)
            send1(A, id++, "y", "y", 0);
        sess[1].n = 0;
        core_select(Bs->s, id, cs, 2, false, 0, false, 0, 0);
        rec_t *r = must_reply(Bs, id, CORE_ST_OK);
        id++;
        ack_all(Bs, r);
        wins[r->index]++;
        A->n = 0;
    }
    int lo = N / 2 - 8 * 71, hi = N / 2 + 8 * 71;
    ck_assert_int_ge(wins[0], lo);
    ck_assert_int_le(wins[0], hi);
    ck_assert_int_eq(wins[0] + wins[1], N);
}
END_TEST

START_TEST(t_select_closed_case)
{
    mk(A, 1, "x", 0);
    mk(A, 2, "y", 0);
    core_case_req_t cs[2] = { RC("x"), SC("y", "v") };
    core_select(Bs->s, 3, cs, 2, false, 0, false, -1, 0);
    core_close(A->s, 4, B("y"));
    rec_t *r = must_reply(Bs, 3, CORE_ST_CLOSED);
    ck_assert_int_eq(r->index, 1);
    ck_assert_uint_eq(info_of("x").receivers, 0);
    /* already closed: chosen at once */
    core_select(Bs->s, 5, cs, 2, false, 0, false, -1, 0);
    ck_assert_int_eq(must_reply(Bs, 5, CORE_ST_CLOSED)->index, 1);
}
END_TEST

START_TEST(t_select_self)
{
    /* a select never meets itself (Go's TestSelfSelect) */
    mk(A, 1, "u", 0);
    core_case_req_t cs[2] = { SC("u", "me"), RC("u") };
    core_select(A->s, 2, cs, 2, false, 0, false, 0, 0);
    must_reply(A, 2, CORE_ST_TIMEOUT);
    core_select(A->s, 3, cs, 2, false, 0, false, -1, 0);
    ck_assert_ptr_null(reply_to(A, 3));
    recvn(Bs, 4, "u", 1, -1);                     /* another receiver: takes the send */
    rec_t *r = must_reply(Bs, 4, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "me");
    ack_all(Bs, r);
    ck_assert_int_eq(must_reply(A, 3, CORE_ST_OK)->index, 0);
    ck_assert_uint_eq(info_of("u").receivers, 0);
}
END_TEST

START_TEST(t_select_sequence)
{
    mk(A, 1, "x", 0);
    mk(A, 2, "y", 0);
    mk(A, 3, "b", 1);
    core_case_req_t rc[2] = { RC("x"), RC("y") };
    core_select(A->s, 4, rc, 2, false, 0, false, 0, 0);
    must_reply(A, 4, CORE_ST_TIMEOUT);
    core_select(A->s, 5, rc, 2, false, 0, false, 5000, 0);
    send1(Bs, 6, "y", "yes", -1);
    rec_t *r = must_reply(A, 5, CORE_ST_OK);
    ack_all(A, r);
    core_case_req_t sc[2] = { SC("x", "no"), SC("b", "ok") };
    core_select(A->s, 7, sc, 2, false, 0, false, -1, 0);
    ck_assert_int_eq(must_reply(A, 7, CORE_ST_OK)->index, 1);
    core_close(A->s, 8, B("x"));
    core_select(A->s, 9, rc, 2, false, 0, false, -1, 0);
    ck_assert_int_eq(must_reply(A, 9, CORE_ST_CLOSED)->index, 0);
    ck_assert_str_eq(take(A, 10, "b"), "ok");
}
END_TEST

START_TEST(t_select_timeout)
{
    mk(A, 1, "x", 0);
    core_case_req_t cs[1] = { RC("x") };
    core_select(A->s, 2, cs, 1, false, 0, false, 30, 500);
    core_expire(core, 529);
    ck_assert_ptr_null(reply_to(A, 2));
    core_expire(core, 530);
    must_reply(A, 2, CORE_ST_TIMEOUT);
    ck_assert_uint_eq(info_of("x").receivers, 0);
    core_select(A->s, 3, NULL, 0, false, 0, false, 10, 0);   /* select {} with a deadline */
    core_expire(core, 10);
    must_reply(A, 3, CORE_ST_TIMEOUT);
}
END_TEST

/* ---- reservations (two-phase select) ---- */

START_TEST(t_reserve_buffered_commit_release)
{
    mk(A, 1, "b", 1);
    core_case_req_t cs[1] = { SC("b", "r1") };
    core_select(A->s, 2, cs, 1, true, 0, false, -1, 0);
    rec_t *r = must_reply(A, 2, CORE_ST_RESERVED);
    ck_assert_int_eq(r->index, 0);
    send1(Bs, 3, "b", "other", 0);                /* the slot is held */
    must_reply(Bs, 3, CORE_ST_TIMEOUT);
    core_release(A->s, 4, 2);
    must_reply(A, 4, CORE_ST_OK);
    send1(Bs, 5, "b", "other", 0);
    must_reply(Bs, 5, CORE_ST_OK);
    ck_assert_str_eq(take(C, 6, "b"), "other");
    core_select(A->s, 7, cs, 1, true, 0, false, -1, 0);
    must_reply(A, 7, CORE_ST_RESERVED);
    core_commit(A->s, 8, 7, false, 0, 0);
    must_reply(A, 8, CORE_ST_OK);
    ck_assert_str_eq(take(C, 9, "b"), "r1");
    core_commit(A->s, 10, 7, false, 0, 0);
    must_reply(A, 10, CORE_ST_NOT_FOUND);
}
END_TEST

START_TEST(t_reserve_unbuffered_holds_receiver)
{
    mk(A, 1, "u", 0);
    recvn(Bs, 2, "u", 1, -1);
    core_case_req_t cs[1] = { SC("u", "reserved") };
    core_select(A->s, 3, cs, 1, true, 0, false, -1, 0);
    must_reply(A, 3, CORE_ST_RESERVED);
    send1(C, 4, "u", "plain", -1);                /* cannot take the held receiver */
    ck_assert_ptr_null(reply_to(Bs, 2));
    core_release(A->s, 5, 3);
    rec_t *r = must_reply(Bs, 2, CORE_ST_OK);   /* released: next sender's value */
    ck_assert_str_eq(r->val[0], "plain");
    ack_all(Bs, r);
    must_reply(C, 4, CORE_ST_OK);
    /* commit: the held receiver gets the value; answered on acknowledgement */
    recvn(Bs, 6, "u", 1, -1);
    core_select(A->s, 7, cs, 1, true, 0, false, -1, 0);
    must_reply(A, 7, CORE_ST_RESERVED);
    core_commit(A->s, 8, 7, false, 0, 0);
    r = must_reply(Bs, 6, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "reserved");
    ck_assert_ptr_null(reply_to(A, 8));
    ack_all(Bs, r);
    must_reply(A, 8, CORE_ST_OK);
}
END_TEST

START_TEST(t_reserve_dropped_session_releases)
{
    mk(A, 1, "b", 1);
    core_case_req_t cs[1] = { SC("b", "r") };
    core_select(A->s, 2, cs, 1, true, 0, false, -1, 0);
    must_reply(A, 2, CORE_ST_RESERVED);
    send1(Bs, 3, "b", "waiting", -1);
    ck_assert_ptr_null(reply_to(Bs, 3));
    core_sess_drop(A->s);
    A->s = NULL;
    must_reply(Bs, 3, CORE_ST_OK);           /* the slot came free */
    ck_assert_str_eq(take(C, 4, "b"), "waiting");
}
END_TEST

START_TEST(t_reserve_recv_case_is_a_delivery)
{
    mk(A, 1, "b", 2);
    send1(A, 2, "b", "v1", -1);
    send1(A, 3, "b", "v2", -1);
    core_case_req_t cs[1] = { RC("b") };
    core_select(Bs->s, 4, cs, 1, true, 0, false, -1, 0);
    rec_t *r = must_reply(Bs, 4, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "v1");
    ck_assert(core_nack(Bs->s, r->dlv[0]));        /* release: back at the head */
    ck_assert_str_eq(take(C, 5, "b"), "v1");
    ck_assert_str_eq(take(C, 6, "b"), "v2");
}
END_TEST

/* ---- edges found in review: each failed before its fix ---- */

START_TEST(t_select_recv_closed_with_values)
{
    /* Go: a receive from a closed channel still gets what is buffered */
    mk(A, 1, "b", 2);
    send1(A, 2, "b", "v1", -1);
    core_close(A->s, 3, B("b"));
    core_case_req_t cs[1] = { RC("b") };
    core_select(Bs->s, 4, cs, 1, false, 0, false, -1, 0);
    rec_t *r = must_reply(Bs, 4, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "v1");
    ack_all(Bs, r);
    core_select(Bs->s, 5, cs, 1, false, 0, false, -1, 0);
    must_reply(Bs, 5, CORE_ST_CLOSED);
}
END_TEST

START_TEST(t_select_recv_meets_reserving_sender)
{
    mk(A, 1, "u", 0);
    core_case_req_t sc[1] = { SC("u", "r") };
    core_select(A->s, 2, sc, 1, true, 0, false, -1, 0);       /* a reserving sender waits */
    ck_assert_ptr_null(reply_to(A, 2));
    core_case_req_t rc[1] = { RC("u") };
    core_select(Bs->s, 3, rc, 1, false, 0, false, -1, 0);      /* a select receiver comes */
    must_reply(A, 2, CORE_ST_RESERVED);        /* it is held for the sender */
    core_commit(A->s, 4, 2, false, 0, 0);
    rec_t *r = must_reply(Bs, 3, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "r");
    ack_all(Bs, r);
    must_reply(A, 4, CORE_ST_OK);
}
END_TEST

/* A receive case refusing a value too long for it: the select proceeds with
 * TOO_LARGE, says which case and how long the value is (chan_select's
 * EMSGSIZE with n), and the value stays at the head. */
START_TEST(t_select_too_large_says_length)
{
    mk(A, 1, "b", 2);
    send1(A, 2, "b", "0123456789", -1);
    mk(A, 3, "x", 0);
    core_case_req_t cs[2] = { RC("x"), RC("b") };
    cs[1].max_bytes = 4;
    for (int reserve = 0; reserve < 2; reserve++) {
        core_select(Bs->s, 4 + (uint64_t)reserve, cs, 2, reserve, 0, false, -1, 0);
        rec_t *r = must_reply(Bs, 4 + (uint64_t)reserve, CORE_ST_TOO_LARGE);
        ck_assert_int_eq(r->index, 1);
        ck_assert_uint_eq(r->value_len, 10);
        ck_assert_uint_eq(r->ndlv, 0);
        ck_assert_uint_eq(info_of("b").len, 1);     /* it stays */
        ck_assert_uint_eq(info_of("x").receivers, 0);
    }
    ck_assert_str_eq(take(C, 6, "b"), "0123456789");
}
END_TEST

/* A committed send reservation whose held receiver went away meanwhile (its
 * own select was cancelled: it chose another case elsewhere) sends nothing:
 * the commit is answered RETRY at once, so that the select chooses again
 * among all its cases instead of waiting on this one alone. */
START_TEST(t_commit_without_receiver_retries)
{
    mk(A, 1, "u", 0);
    core_case_req_t rc[1] = { RC("u") }, sc[1] = { SC("u", "r") };
    core_select(Bs->s, 2, rc, 1, true, 0, false, -1, 0);       /* a two-phase receiver */
    core_select(A->s, 3, sc, 1, true, 0, false, 100, 0);       /* a two-phase sender */
    must_reply(A, 3, CORE_ST_RESERVED);        /* holds the receiver */
    core_cancel(Bs->s, 4, 2);                        /* which goes elsewhere */
    core_commit(A->s, 5, 3, false, 0, 0);
    must_reply(Bs, 2, CORE_ST_CANCELED);
    must_reply(A, 5, CORE_ST_RETRY);
    ck_assert_uint_eq(info_of("u").senders, 0);
    recvn(C, 6, "u", 1, 0);                          /* nothing was sent */
    must_reply(C, 6, CORE_ST_TIMEOUT);
}
END_TEST

/* ---- two reserving selects that meet: the higher priority is asked first ---- */

/* R (receive, priority 9) waits; S (send, priority 5) comes.  R is asked
 * first (RESERVED for its receive case, no value) while S is held; R's
 * commit asks S; S's commit gives R the value in R's commit's answer. */
START_TEST(t_higher_priority_receiver_leads)
{
    mk(A, 1, "u", 0);
    core_case_req_t rc[1] = { RC("u") }, sc[1] = { SC("u", "v") };
    core_select(Bs->s, 2, rc, 1, true, 9, false, -1, 0);
    core_select(A->s, 3, sc, 1, true, 5, false, -1, 0);
    ck_assert_int_eq(must_reply(Bs, 2, CORE_ST_RESERVED)->index, 0);
    ck_assert_uint_eq(reply_to(Bs, 2)->ndlv, 0);          /* no value yet */
    ck_assert_ptr_null(reply_to(A, 3));                   /* S is held */
    core_commit(Bs->s, 4, 2, false, 0, 0);
    ck_assert_ptr_null(reply_to(Bs, 4));
    must_reply(A, 3, CORE_ST_RESERVED);             /* S's turn */
    core_commit(A->s, 5, 3, false, 0, 0);
    rec_t *r = must_reply(Bs, 4, CORE_ST_OK);
    ck_assert_int_eq(r->kind, CORE_R_SELECT);
    ck_assert_int_eq(r->index, 0);
    ck_assert_uint_eq(r->ndlv, 1);
    ck_assert_str_eq(r->val[0], "v");
    ck_assert_ptr_null(reply_to(A, 5));                   /* unbuffered: the ack */
    ack_all(Bs, r);
    must_reply(A, 5, CORE_ST_OK);
    core_chan_info_t i = info_of("u");
    ck_assert_uint_eq(i.len + i.senders + i.receivers + i.inflight, 0);
}
END_TEST

/* A receiver of lower priority, or no priorities at all (0, an old
 * client): the sender is asked first, as before. */
START_TEST(t_higher_priority_sender_leads)
{
    mk(A, 1, "u", 0);
    core_case_req_t rc[1] = { RC("u") }, sc[1] = { SC("u", "v") };
    core_select(Bs->s, 2, rc, 1, true, _i ? 0 : 4, false, -1, 0);
    core_select(A->s, 3, sc, 1, true, _i ? 0 : 5, false, -1, 0);
    must_reply(A, 3, CORE_ST_RESERVED);
    ck_assert_ptr_null(reply_to(Bs, 2));
    core_commit(A->s, 4, 3, false, 0, 0);
    rec_t *r = must_reply(Bs, 2, CORE_ST_OK);       /* a delivery */
    ck_assert_str_eq(r->val[0], "v");
    ack_all(Bs, r);
    must_reply(A, 4, CORE_ST_OK);
}
END_TEST

/* The follower declines in every way it can; the leader's commit is
 * answered RETRY and nothing moves: 0 S releases when asked, 1 S was
 * cancelled while held, 2 S's connection went away while
 * held, 3 S's connection went away once asked. */
START_TEST(t_receiver_leads_then_sender_declines)
{
    tsess_t *t = &sess[3];
    mk(A, 1, "u", 0);
    core_case_req_t rc[1] = { RC("u") }, sc[1] = { SC("u", "v") };
    core_select(Bs->s, 2, rc, 1, true, 9, false, -1, 0);
    core_select(t->s, 3, sc, 1, true, 5, false, -1, 0);
    must_reply(Bs, 2, CORE_ST_RESERVED);
    if (_i == 1) {
        core_cancel(t->s, 4, 3);
        must_reply(t, 4, CORE_ST_OK);
    } else if (_i == 2) {
        core_sess_drop(t->s);
        t->s = NULL;
    }
    core_commit(Bs->s, 5, 2, false, 0, 0);
    if (_i == 0 || _i == 3) {
        must_reply(t, 3, CORE_ST_RESERVED);
        ck_assert_ptr_null(reply_to(Bs, 5));
        if (_i == 0) {
            core_release(t->s, 6, 3);
            must_reply(t, 6, CORE_ST_OK);
        } else {
            core_sess_drop(t->s);
            t->s = NULL;
        }
    }
    if (_i == 1)
        must_reply(t, 3, CORE_ST_CANCELED);
    rec_t *r = must_reply(Bs, 5, CORE_ST_RETRY);
    ck_assert_uint_eq(r->ndlv, 0);
    core_chan_info_t i = info_of("u");
    ck_assert_uint_eq(i.len + i.senders + i.receivers + i.inflight, 0);
    if (!t->s)
        t->s = core_sess_new(core, t);
}
END_TEST

/* The leading receiver releases: the held sender is free again and meets
 * the next receiver. */
START_TEST(t_receiver_leads_and_releases)
{
    mk(A, 1, "u", 0);
    core_case_req_t rc[1] = { RC("u") }, sc[1] = { SC("u", "v") };
    core_select(Bs->s, 2, rc, 1, true, 9, false, -1, 0);
    core_select(A->s, 3, sc, 1, true, 5, false, -1, 0);
    must_reply(Bs, 2, CORE_ST_RESERVED);
    core_release(Bs->s, 4, 2);
    must_reply(Bs, 4, CORE_ST_OK);
    ck_assert_ptr_null(reply_to(A, 3));
    ck_assert_uint_eq(info_of("u").senders, 1);
    recvn(C, 5, "u", 1, -1);                              /* a plain receiver */
    must_reply(A, 3, CORE_ST_RESERVED);
    core_commit(A->s, 6, 3, false, 0, 0);
    rec_t *r = must_reply(C, 5, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "v");
    ack_all(C, r);
    must_reply(A, 6, CORE_ST_OK);
}
END_TEST

/* A leading sender commits; the reserving receiver it held gives the value
 * back (it chose another case meanwhile): RETRY, and the value is not left
 * in the channel for anyone else (the sender still has it). */
START_TEST(t_sender_commit_refused_retries)
{
    mk(A, 1, "u", 0);
    core_case_req_t rc[1] = { RC("u") }, sc[1] = { SC("u", "v") };
    core_select(Bs->s, 2, rc, 1, true, 1, false, -1, 0);
    core_select(A->s, 3, sc, 1, true, 9, false, -1, 0);
    must_reply(A, 3, CORE_ST_RESERVED);
    core_commit(A->s, 4, 3, false, 0, 0);
    rec_t *r = must_reply(Bs, 2, CORE_ST_OK);
    ck_assert(core_nack(Bs->s, r->dlv[0]));
    must_reply(A, 4, CORE_ST_RETRY);
    recvn(C, 5, "u", 1, 0);
    must_reply(C, 5, CORE_ST_TIMEOUT);
    core_chan_info_t i = info_of("u");
    ck_assert_uint_eq(i.len + i.senders + i.receivers + i.inflight, 0);
}
END_TEST

/* The leading receiver's buffer is too small for the value: it learns the
 * length (TOO_LARGE, value_len), the sender must choose again (RETRY). */
START_TEST(t_receiver_leads_value_too_large)
{
    mk(A, 1, "u", 0);
    core_case_req_t rc[1] = { RC("u") }, sc[1] = { SC("u", "0123456789") };
    rc[0].max_bytes = 4;
    core_select(Bs->s, 2, rc, 1, true, 9, false, -1, 0);
    core_select(A->s, 3, sc, 1, true, 5, false, -1, 0);
    must_reply(Bs, 2, CORE_ST_RESERVED);
    core_commit(Bs->s, 4, 2, false, 0, 0);
    must_reply(A, 3, CORE_ST_RESERVED);
    core_commit(A->s, 5, 3, false, 0, 0);
    rec_t *r = must_reply(Bs, 4, CORE_ST_TOO_LARGE);
    ck_assert_uint_eq(r->value_len, 10);
    must_reply(A, 5, CORE_ST_RETRY);
    core_chan_info_t i = info_of("u");
    ck_assert_uint_eq(i.len + i.senders + i.receivers + i.inflight, 0);
}
END_TEST

/* The crossing of tests/check_mixed.c in one core: S {send c, recv o} and
 * R {send o, recv c}, both reserving, S of higher priority.  S is asked
 * first on whichever pair meets, R second; one rendezvous happens.  R's
 * send case finds S's receive ready at once but must not lead it. */
START_TEST(t_crossing_selects_meet_in_priority_order)
{
    mk(A, 1, "c", 0);
    mk(A, 2, "o", 0);
    core_case_req_t scs[2] = { SC("c", "from-S"), RC("o") };
    core_case_req_t rcs[2] = { SC("o", "from-R"), RC("c") };
    core_select(A->s, 3, scs, 2, true, 9, false, -1, 0);
    core_select(Bs->s, 4, rcs, 2, true, 5, false, -1, 0);
    rec_t *s = must_reply(A, 3, CORE_ST_RESERVED);  /* S first */
    ck_assert_ptr_null(reply_to(Bs, 4));
    int si = s->index;
    core_commit(A->s, 5, 3, false, 0, 0);
    rec_t *r = must_reply(Bs, 4, si == 0 ? CORE_ST_OK : CORE_ST_RESERVED);
    ck_assert_int_eq(r->index, si == 0 ? 1 : 0);
    if (si == 0) {                                        /* S sends on c */
        ck_assert_str_eq(r->val[0], "from-S");
        ack_all(Bs, r);
        must_reply(A, 5, CORE_ST_OK);
    } else {                                              /* S receives on o */
        core_commit(Bs->s, 6, 4, false, 0, 0);
        rec_t *v = must_reply(A, 5, CORE_ST_OK);
        ck_assert_str_eq(v->val[0], "from-R");
        ack_all(A, v);
        must_reply(Bs, 6, CORE_ST_OK);
    }
    core_chan_info_t i = info_of("c"), j = info_of("o");
    ck_assert_uint_eq(i.len + i.senders + i.receivers + i.inflight, 0);
    ck_assert_uint_eq(j.len + j.senders + j.receivers + j.inflight, 0);
}
END_TEST

/* A committed send hands its value to the receiver it held at once, even
 * if another of that receiver's channels got a partner while it was held
 * (0: an atomic select, 1: a reserving one of lower priority).  Before, the
 * receiver took the other partner and the commit waited for a new one. */
START_TEST(t_held_receiver_served_first)
{
    mk(A, 1, "u", 0);
    mk(A, 2, "d", 0);
    core_case_req_t rcs[2] = { RC("d"), RC("u") };
    core_select(Bs->s, 3, rcs, 2, _i == 1, 1, false, -1, 0);
    core_case_req_t sc[1] = { SC("u", "from-S") };
    core_select(A->s, 4, sc, 1, true, 9, false, -1, 0);
    must_reply(A, 4, CORE_ST_RESERVED);            /* S holds R */
    send1(C, 5, "d", "from-P", -1);                      /* R is frozen: P waits */
    ck_assert_ptr_null(reply_to(C, 5));
    core_commit(A->s, 6, 4, false, 0, 0);
    rec_t *r = must_reply(Bs, 3, CORE_ST_OK);
    ck_assert_int_eq(r->index, 1);
    ck_assert_str_eq(r->val[0], "from-S");
    ack_all(Bs, r);
    must_reply(A, 6, CORE_ST_OK);
    ck_assert_uint_eq(info_of("d").senders, 1);          /* P still waits */
    ck_assert_str_eq(take(Bs, 7, "d"), "from-P");
}
END_TEST

/* The receiver of a committed send dies holding the value, unacknowledged:
 * it may have used it, so the value goes back marked redelivered (as for
 * any send) and the commit waits for the next receiver, not RETRY: a fresh
 * send of it would not be marked. */
START_TEST(t_committed_send_receiver_dies)
{
    tsess_t *t = &sess[3];
    mk(A, 1, "u", 0);
    core_case_req_t rc[1] = { RC("u") }, sc[1] = { SC("u", "v") };
    core_select(t->s, 2, rc, 1, true, 1, false, -1, 0);
    core_select(A->s, 3, sc, 1, true, 9, false, -1, 0);
    must_reply(A, 3, CORE_ST_RESERVED);
    core_commit(A->s, 4, 3, false, 0, 0);
    must_reply(t, 2, CORE_ST_OK);
    core_sess_drop(t->s);
    t->s = core_sess_new(core, t);
    ck_assert_ptr_null(reply_to(A, 4));
    recvn(C, 5, "u", 1, 0);
    rec_t *r = must_reply(C, 5, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "v");
    ck_assert_uint_eq(r->redelivered[0], 1);
    ack_all(C, r);
    must_reply(A, 4, CORE_ST_OK);
}
END_TEST

/* Two crossing selects without priorities (0: old clients; each daemon lets
 * its sender lead) cost a retry, never a stall: the frozen receive each one
 * cancels is answered at once, and both commits say RETRY. */
START_TEST(t_tie_costs_a_retry)
{
    core_t *cb = core_new(&limits, on_reply);
    tsess_t sb[2] = { { 0 }, { 0 } };
    for (int i = 0; i < 2; i++) {
        sb[i].recs = calloc(MAXREC, sizeof(rec_t));
        sb[i].s = core_sess_new(cb, &sb[i]);
    }
    mk(A, 1, "c", 0);                                      /* c on daemon A */
    core_open(sb[0].s, 1, B("o"), true, 0, false, false);  /* o on daemon B */
    core_case_req_t s_a[1] = { SC("c", "S") }, r_a[1] = { RC("c") };
    core_case_req_t s_b[1] = { RC("o") }, r_b[1] = { SC("o", "R") };
    core_select(Bs->s, 10, r_a, 1, true, 0, false, -1, 0);        /* R's receive on A */
    core_select(sb[1].s, 10, s_b, 1, true, 0, false, -1, 0);      /* S's receive on B */
    core_select(A->s, 11, s_a, 1, true, 0, false, -1, 0);         /* S's send on A */
    core_select(sb[0].s, 11, r_b, 1, true, 0, false, -1, 0);      /* R's send on B */
    must_reply(A, 11, CORE_ST_RESERVED);
    must_reply(&sb[0], 11, CORE_ST_RESERVED);
    core_cancel(Bs->s, 12, 10);                            /* R chose B */
    core_cancel(sb[1].s, 12, 10);                          /* S chose A */
    must_reply(Bs, 10, CORE_ST_CANCELED);            /* at once */
    must_reply(&sb[1], 10, CORE_ST_CANCELED);
    core_commit(A->s, 13, 11, false, 0, 0);
    core_commit(sb[0].s, 13, 11, false, 0, 0);
    must_reply(A, 13, CORE_ST_RETRY);
    must_reply(&sb[0], 13, CORE_ST_RETRY);
    for (int i = 0; i < 2; i++) {
        core_sess_drop(sb[i].s);
        free(sb[i].recs);
    }
    core_free(cb);
}
END_TEST

/* A committed receive keeps its select's deadline while its sender
 * decides: TIMEOUT then, and the sender's commit finds it gone. */
START_TEST(t_committed_recv_keeps_deadline)
{
    mk(A, 1, "u", 0);
    core_case_req_t rc[1] = { RC("u") }, sc[1] = { SC("u", "v") };
    core_select(Bs->s, 2, rc, 1, true, 9, false, 100, 0);
    core_select(A->s, 3, sc, 1, true, 5, false, -1, 0);
    must_reply(Bs, 2, CORE_ST_RESERVED);
    core_commit(Bs->s, 4, 2, false, 0, 0);
    must_reply(A, 3, CORE_ST_RESERVED);              /* S's client is slow */
    core_expire(core, 100);
    must_reply(Bs, 4, CORE_ST_TIMEOUT);
    core_commit(A->s, 5, 3, false, 0, 0);
    must_reply(A, 5, CORE_ST_RETRY);
    core_chan_info_t i = info_of("u");
    ck_assert_uint_eq(i.len + i.senders + i.receivers + i.inflight, 0);
}
END_TEST

/* Two reserving ops of one select (the same priority, over two
 * connections to one daemon) never meet each other, as a select never
 * meets itself; others still meet them. */
START_TEST(t_select_never_meets_itself_across_connections)
{
    mk(A, 1, "u", 0);
    core_case_req_t rc[1] = { RC("u") }, sc[1] = { SC("u", "v") };
    core_select(A->s, 2, sc, 1, true, 42, false, -1, 0);
    core_select(Bs->s, 3, rc, 1, true, 42, false, -1, 0);
    ck_assert_ptr_null(reply_to(A, 2));
    ck_assert_ptr_null(reply_to(Bs, 3));
    recvn(C, 4, "u", 1, -1);                               /* another receiver */
    must_reply(A, 2, CORE_ST_RESERVED);
    core_commit(A->s, 5, 2, false, 0, 0);
    rec_t *r = must_reply(C, 4, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "v");
    ack_all(C, r);
    must_reply(A, 5, CORE_ST_OK);
    ck_assert_uint_eq(info_of("u").receivers, 1);          /* the other op waits on */
}
END_TEST

/* A buffered channel whose only slot is reserved, with a receiver waiting:
 * a second reserving send holds that receiver, not a slot that is not
 * there; the buffer never holds more than its capacity. */
START_TEST(t_no_reservation_past_capacity)
{
    mk(A, 1, "b", 1);
    core_case_req_t t1[1] = { SC("b", "t") }, s1[1] = { SC("b", "s") };
    core_select(A->s, 2, t1, 1, true, 0, false, -1, 0);
    must_reply(A, 2, CORE_ST_RESERVED);              /* the only slot */
    recvn(C, 3, "b", 1, 50);                               /* a receiver waits */
    core_select(Bs->s, 4, s1, 1, true, 0, false, -1, 0);
    must_reply(Bs, 4, CORE_ST_RESERVED);             /* holds the receiver */
    core_expire(core, 50);                                 /* which leaves */
    must_reply(C, 3, CORE_ST_TIMEOUT);
    core_commit(A->s, 5, 2, false, 0, 0);
    must_reply(A, 5, CORE_ST_OK);
    core_commit(Bs->s, 6, 4, false, 0, 0);
    must_reply(Bs, 6, CORE_ST_RETRY);
    ck_assert_uint_eq(info_of("b").len, 1);
}
END_TEST

/* Channel r of capacity 1, its free slot held by A's two-phase select
 * (request 2): a send to r now hands its values straight to receivers. */
static void reserve_only_slot(void)
{
    mk(A, 1, "r", 1);
    core_case_req_t s1[1] = { SC("r", "s1") };
    core_select(A->s, 2, s1, 1, true, 0, false, -1, 0);
    must_reply(A, 2, CORE_ST_RESERVED);
}

/* A buffered channel whose free slots are all reserved hands a waiting
 * sender's values straight to a receiver.  Given back, they are the
 * channel's oldest: they must come again before a value of the same batch
 * that was buffered meanwhile (they went back behind it, to their sender,
 * as on an unbuffered channel). */
START_TEST(t_given_back_ahead_of_buffered_when_slots_reserved)
{
    mk(A, 1, "r", 2);
    core_case_req_t s1[1] = { SC("r", "s1") }, s2[1] = { SC("r", "s2") };
    core_select(A->s, 2, s1, 1, true, 0, false, -1, 0);
    must_reply(A, 2, CORE_ST_RESERVED);
    core_select(A->s, 3, s2, 1, true, 0, false, -1, 0);
    must_reply(A, 3, CORE_ST_RESERVED);                 /* both slots held */
    core_bytes_t vals[3] = { B("x"), B("y"), B("z") };
    core_send(Bs->s, 4, B("r"), vals, 3, -1, 0);               /* waits */
    recvn(C, 5, "r", 2, 0);
    rec_t *r = must_reply(C, 5, CORE_ST_OK);            /* x, y from the sender */
    ck_assert_uint_eq(r->ndlv, 2);
    core_release(A->s, 6, 2);
    core_release(A->s, 7, 3);                                 /* z goes into the buffer */
    uint64_t back[2] = { r->dlv[0], r->dlv[1] };
    ck_assert_uint_eq(core_nack_all(C->s, back, 2), 2);
    recvn(&sess[3], 8, "r", 3, 0);
    r = must_reply(&sess[3], 8, CORE_ST_OK);
    ck_assert_uint_eq(r->ndlv, 3);
    ck_assert_str_eq(r->val[0], "x");
    ck_assert_str_eq(r->val[1], "y");
    ck_assert_str_eq(r->val[2], "z");
    ack_all(&sess[3], r);
    must_reply(Bs, 4, CORE_ST_OK);
    ck_assert_uint_eq(must_reply(Bs, 4, CORE_ST_OK)->accepted, 3);
}
END_TEST

START_TEST(t_handed_value_back_to_a_closed_buffer)
{
    /* The only free slot of r is reserved: a waiting sender hands [x, y]
     * straight to two receivers.  y comes back first (to the buffer: the
     * send has it), then r is closed and x comes back: a buffered channel
     * keeps it too (PROTOCOL.md, Close), at the head.  Dropped as unsent,
     * the send would be told that nothing was taken (the prefix ends before
     * x) while y stays buffered, and a client resending both would repeat y. */
    reserve_only_slot();
    core_bytes_t vals[2] = { B("x"), B("y") };
    core_send(Bs->s, 3, B("r"), vals, 2, -1, 0);
    recvn(C, 4, "r", 1, -1);
    rec_t *rx = must_reply(C, 4, CORE_ST_OK);
    ck_assert_str_eq(rx->val[0], "x");
    recvn(&sess[3], 5, "r", 1, -1);
    rec_t *ry = must_reply(&sess[3], 5, CORE_ST_OK);
    ck_assert_str_eq(ry->val[0], "y");
    ck_assert(core_nack(sess[3].s, ry->dlv[0]));
    core_close(A->s, 6, B("r"));
    must_reply(A, 6, CORE_ST_OK);
    ck_assert_ptr_null(reply_to(Bs, 3));
    ck_assert(core_nack(C->s, rx->dlv[0]));
    ck_assert_uint_eq(must_reply(Bs, 3, CORE_ST_OK)->accepted, 2);
    ck_assert_str_eq(take(C, 7, "r"), "x");
    ck_assert_str_eq(take(C, 8, "r"), "y");
    recvn(C, 9, "r", 1, 0);
    must_reply(C, 9, CORE_ST_CLOSED);
}
END_TEST

START_TEST(t_handed_value_back_to_a_deleted_buffer)
{
    /* As above, but y is taken from the buffer by another receiver, and r
     * is deleted before x comes back: x is dropped with r, as its buffer
     * was, and the send had it.  Reported unsent, the answer's prefix would
     * end before x, leaving out y, which is still out and may be acked. */
    reserve_only_slot();
    core_bytes_t vals[2] = { B("x"), B("y") };
    core_send(Bs->s, 3, B("r"), vals, 2, -1, 0);
    recvn(C, 4, "r", 2, -1);
    rec_t *r = must_reply(C, 4, CORE_ST_OK);
    ck_assert_uint_eq(r->ndlv, 2);
    ck_assert(core_nack(C->s, r->dlv[1]));               /* y: to the buffer */
    recvn(&sess[3], 5, "r", 1, 0);
    rec_t *ry = must_reply(&sess[3], 5, CORE_ST_OK);
    ck_assert_str_eq(ry->val[0], "y");
    core_delete(A->s, 6, B("r"));
    must_reply(A, 6, CORE_ST_OK);
    ck_assert_ptr_null(reply_to(Bs, 3));
    ck_assert(core_nack(C->s, r->dlv[0]));               /* x: dropped with r */
    ck_assert_uint_eq(must_reply(Bs, 3, CORE_ST_OK)->accepted, 2);
    ack_all(&sess[3], ry);
}
END_TEST

START_TEST(t_move_waits_for_a_value_handed_from_its_sender)
{
    /* x goes straight from its sender to a receiver while a reservation
     * holds r's free slot; the reservation goes.  Until x is acknowledged
     * or given back r is not settled: a move that copied x now, then
     * dropped r, would deliver the copy while x's sender, when x comes back
     * to the dropped channel, hears that x was not sent. */
    reserve_only_slot();
    send1(Bs, 3, "r", "x", -1);
    recvn(C, 4, "r", 1, -1);
    rec_t *r = must_reply(C, 4, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "x");
    core_release(A->s, 5, 2);
    must_reply(A, 5, CORE_ST_OK);
    ck_assert_uint_eq(core_evict(core, B("r"), CORE_ST_MOVED), 0);
    const core_chan_t *ch = core_find(core, B("r"));
    ck_assert(!core_chan_settled(ch));
    ck_assert(core_nack(C->s, r->dlv[0]));   /* back to the buffer: the send has it */
    ck_assert_uint_eq(must_reply(Bs, 3, CORE_ST_OK)->accepted, 1);
    ck_assert(core_chan_settled(ch));
    /* the same with an unbuffered channel: the send waits for the ack */
    mk(A, 6, "u", 0);
    send1(Bs, 7, "u", "z", -1);
    recvn(C, 8, "u", 1, -1);
    r = must_reply(C, 8, CORE_ST_OK);
    ck_assert(!core_chan_settled(core_find(core, B("u"))));
    ack_all(C, r);
    must_reply(Bs, 7, CORE_ST_OK);
    ck_assert(core_chan_settled(core_find(core, B("u"))));
}
END_TEST

/* in_order: of the ready cases, the first in the order given is taken,
 * every time (the client shuffled them); without it, any of them. */
START_TEST(t_blocked_select_is_queued_in_random_order)
{
    /* Go's TestPseudoRandomSend: a select with two cases on one unbuffered
     * channel blocks, then a partner comes.  Either case may win, about
     * equally often (case 0 won every time when cases were queued in
     * index order).  300 rounds: mean 150, sigma 8.7; 5 sigma either way. */
    enum { ROUNDS = 300 };
    mk(A, 1, "u", 0);
    int zero = 0;
    for (uint64_t k = 0; k < ROUNDS; k++) {
        uint64_t id = 10 + k;
        if (_i == 0) {
            core_case_req_t cs[2] = { SC("u", "0"), SC("u", "1") };
            core_select(A->s, id, cs, 2, false, 0, false, -1, 0);
            ck_assert_ptr_null(reply_to(A, id));
            const char *v = take(Bs, id, "u");
            ck_assert_int_eq(must_reply(A, id, CORE_ST_OK)->index, v[0] - '0');
            zero += v[0] == '0';
        } else {
            core_case_req_t cs[2] = { RC("u"), RC("u") };
            core_select(A->s, id, cs, 2, false, 0, false, -1, 0);
            ck_assert_ptr_null(reply_to(A, id));
            send1(Bs, id, "u", "v", -1);
            rec_t *r = must_reply(A, id, CORE_ST_OK);
            ack_all(A, r);
            must_reply(Bs, id, CORE_ST_OK);
            zero += r->index == 0;
        }
    }
    ck_assert_msg(zero >= 150 - 44 && zero <= 150 + 44, "case 0 won %d of %d", zero, ROUNDS);
    /* with in_order the client's order stands: case 0 is queued first */
    core_case_req_t cs[2] = { RC("u"), RC("u") };
    core_select(A->s, 500, cs, 2, false, 0, true, -1, 0);
    send1(Bs, 500, "u", "v", -1);
    ck_assert_int_eq(must_reply(A, 500, CORE_ST_OK)->index, 0);
}
END_TEST

START_TEST(t_look_reports_versions)
{
    /* a select with timeout 0 that finds nothing gives each case's channel
     * version; any change that could make a case ready moves it, even if
     * the channel ends as it was; a look that waits, or finds a case,
     * gives none */
    mk(A, 1, "x", 1);
    mk(A, 2, "y", 0);
    core_case_req_t cs[3] = { RC("x"), RC("y"), RC("x") };
    core_select(A->s, 3, cs, 3, false, 0, false, 0, 0);
    rec_t *r = must_reply(A, 3, CORE_ST_TIMEOUT);
    ck_assert_uint_eq(r->nver, 3);
    ck_assert_uint_eq(r->ver[0], r->ver[2]);
    uint64_t x0 = r->ver[0], y0 = r->ver[1];
    core_select(A->s, 4, cs, 3, false, 0, false, 0, 0);   /* nothing changed */
    r = must_reply(A, 4, CORE_ST_TIMEOUT);
    ck_assert_uint_eq(r->ver[0], x0);
    ck_assert_uint_eq(r->ver[1], y0);
    send1(Bs, 5, "x", "v", -1);   /* a value comes and goes */
    ck_assert_str_eq(take(C, 6, "x"), "v");
    recvn(C, 7, "y", 1, 50);      /* a receiver waits on y, then gives up */
    core_expire(core, 50);
    must_reply(C, 7, CORE_ST_TIMEOUT);
    core_select(A->s, 8, cs, 3, false, 0, false, 0, 0);
    r = must_reply(A, 8, CORE_ST_TIMEOUT);
    ck_assert_uint_ne(r->ver[0], x0);
    ck_assert_uint_ne(r->ver[1], y0);
    send1(Bs, 9, "x", "w", -1);
    core_select(A->s, 10, cs, 3, false, 0, false, 0, 0);
    r = must_reply(A, 10, CORE_ST_OK);
    ck_assert_uint_eq(r->nver, 0);
    ack_all(A, r);
    core_select(A->s, 11, cs, 3, false, 0, false, 20, 100);
    core_expire(core, 120);
    ck_assert_uint_eq(must_reply(A, 11, CORE_ST_TIMEOUT)->nver, 0);
}
END_TEST

START_TEST(t_select_in_order)
{
    const char *names[3] = { "o0", "o1", "o2" };
    for (int i = 0; i < 3; i++) {
        mk(A, 1 + (uint64_t)i, names[i], 4);
        send1(A, 10 + (uint64_t)i, names[i], names[i], 0);
    }
    core_case_req_t cs[4] = { RC("empty"), RC("o2"), RC("o0"), RC("o1") };
    mk(A, 20, "empty", 4);
    for (uint64_t t = 0; t < 20; t++) {
        core_select(Bs->s, 100 + t, cs, 4, t % 2 == 0, 0, true, 0, 0);
        rec_t *r = must_reply(Bs, 100 + t, CORE_ST_OK);
        ck_assert_int_eq(r->index, 1);                 /* o2: the first ready */
        ck_assert_str_eq(r->val[0], "o2");
        ck_assert(core_nack(Bs->s, r->dlv[0]));        /* back at the head */
    }
}
END_TEST

/* A first look (reserving, timeout 0) that reserved a send commits with
 * the time its caller has left: if the receiver dies holding the value, the
 * commit waits for the next receiver under that deadline (none here), not
 * under the look's deadline of 0, which has passed. */
START_TEST(t_commit_takes_the_callers_deadline)
{
    tsess_t *t = &sess[3];
    mk(A, 1, "u", 0);
    core_case_req_t rc[1] = { RC("u") }, sc[1] = { SC("u", "v") };
    core_select(t->s, 2, rc, 1, true, 1, false, -1, 0);  /* a waiting select */
    core_select(A->s, 3, sc, 1, true, 9, true, 0, 0);    /* a look: timeout 0 */
    must_reply(A, 3, CORE_ST_RESERVED);
    core_commit(A->s, 4, 3, true, -1, 0);                  /* the caller: no deadline */
    must_reply(t, 2, CORE_ST_OK);
    core_sess_drop(t->s);                                  /* dies holding it */
    t->s = core_sess_new(core, t);
    core_expire(core, 100000);
    ck_assert_ptr_null(reply_to(A, 4));                    /* still waiting */
    recvn(C, 5, "u", 1, 0);
    rec_t *r = must_reply(C, 5, CORE_ST_OK);
    ck_assert_uint_eq(r->redelivered[0], 1);
    ack_all(C, r);
    must_reply(A, 4, CORE_ST_OK);
}
END_TEST

/* A look's receive (reserving, timeout 0) sees a waiting reserving sender
 * as ready and leads it, whatever the priorities: it cannot wait.  Its
 * commit asks the sender, and keeps the caller's deadline meanwhile. */
START_TEST(t_look_receive_leads_a_reserving_sender)
{
    mk(A, 1, "u", 0);
    core_case_req_t rc[1] = { RC("u") }, sc[1] = { SC("u", "v") };
    core_select(A->s, 2, sc, 1, true, 9, false, -1, 0);    /* a waiting select */
    core_select(Bs->s, 3, rc, 1, true, 1, true, 0, 0);     /* a look */
    ck_assert_int_eq(must_reply(Bs, 3, CORE_ST_RESERVED)->index, 0);
    ck_assert_ptr_null(reply_to(A, 2));
    core_commit(Bs->s, 4, 3, true, 100, 0);
    must_reply(A, 2, CORE_ST_RESERVED);              /* the sender's turn */
    if (_i == 0) {
        core_commit(A->s, 5, 2, false, 0, 0);
        rec_t *r = must_reply(Bs, 4, CORE_ST_OK);
        ck_assert_str_eq(r->val[0], "v");
        ack_all(Bs, r);
        must_reply(A, 5, CORE_ST_OK);
    } else {                                               /* the sender is slow */
        core_expire(core, 100);
        must_reply(Bs, 4, CORE_ST_TIMEOUT);
        core_commit(A->s, 5, 2, false, 0, 0);
        must_reply(A, 5, CORE_ST_RETRY);
    }
    core_chan_info_t i = info_of("u");
    ck_assert_uint_eq(i.len + i.senders + i.receivers + i.inflight, 0);
}
END_TEST

START_TEST(t_select_send_refused_keeps_deadline)
{
    /* the receiver that made the send case ready refuses the value */
    mk(A, 1, "u", 0);
    core_recv(Bs->s, 2, B("u"), 1, 1, -1, 0);         /* takes 1 byte at most */
    core_case_req_t sc[1] = { SC("u", "too-long") };
    core_select(A->s, 3, sc, 1, false, 0, false, 100, 0);
    must_reply(Bs, 2, CORE_ST_TOO_LARGE);
    ck_assert_ptr_null(reply_to(A, 3));               /* still waiting ... */
    core_expire(core, 100);
    must_reply(A, 3, CORE_ST_TIMEOUT);          /* ... until its deadline */
    ck_assert_uint_eq(info_of("u").senders, 0);
}
END_TEST

START_TEST(t_dropped_reservations_leave_no_trace)
{
    for (int k = 0; k < 20; k++) {                     /* hash orders vary */
        char name[16];
        snprintf(name, sizeof name, "b%d", k);
        tsess_t *t = &sess[3];
        if (t->s)
            core_sess_drop(t->s);
        t->s = core_sess_new(core, t);
        t->n = 0;
        mk(A, 1000 + (uint64_t)k, name, 1);
        core_case_req_t c1[1] = { SC(name, "1") }, c2[1] = { SC(name, "2") };
        core_select(t->s, 10, c1, 1, true, 0, false, -1, 0);
        must_reply(t, 10, CORE_ST_RESERVED);
        core_select(t->s, 11, c2, 1, true, 0, false, -1, 0);     /* waits for the slot */
        core_sess_drop(t->s);
        t->s = NULL;
        send1(C, 5000 + (uint64_t)k, name, "x", 0);    /* the only slot is free */
        must_reply(C, 5000 + (uint64_t)k, CORE_ST_OK);
        ck_assert_uint_eq(info_of(name).len, 1);
    }
    for (int k = 0; k < 20; k++) {
        char name[16];
        snprintf(name, sizeof name, "u%d", k);
        tsess_t *t = &sess[3];
        t->s = core_sess_new(core, t);
        t->n = 0;
        A->n = Bs->n = C->n = 0;
        mk(A, 2000 + (uint64_t)k, name, 0);
        recvn(Bs, 100, name, 1, -1);                   /* a receiver */
        core_case_req_t c1[1] = { SC(name, "1") }, c2[1] = { SC(name, "2") };
        core_select(t->s, 10, c1, 1, true, 0, false, -1, 0);     /* holds it */
        must_reply(t, 10, CORE_ST_RESERVED);
        core_select(t->s, 11, c2, 1, true, 0, false, -1, 0);
        send1(C, 200, name, "plain", -1);              /* waits behind */
        core_sess_drop(t->s);
        t->s = NULL;
        rec_t *r = must_reply(Bs, 100, CORE_ST_OK);   /* the plain value */
        ck_assert_str_eq(r->val[0], "plain");
        ck_assert_uint_eq(r->redelivered[0], 0);
        ack_all(Bs, r);
        must_reply(C, 200, CORE_ST_OK);
    }
}
END_TEST

START_TEST(t_partial_batch_reports_a_prefix)
{
    /* [a, b] on an unbuffered channel, both out before the deadline: the
     * deadline no longer applies to them.  b is taken, a's receiver dies
     * after the deadline: a comes back and is offered again (a value matched
     * before the deadline still completes the send), and the send completes
     * with both. */
    mk(A, 1, "u", 0);
    core_bytes_t v[2] = { B("a"), B("b") };
    core_send(A->s, 2, B("u"), v, 2, 100, 0);
    recvn(Bs, 3, "u", 1, -1);
    rec_t *rb = must_reply(Bs, 3, CORE_ST_OK);
    ck_assert_str_eq(rb->val[0], "a");
    recvn(C, 4, "u", 1, -1);
    rec_t *rc = must_reply(C, 4, CORE_ST_OK);
    ck_assert_str_eq(rc->val[0], "b");
    ack_all(C, rc);
    core_expire(core, 200);                           /* the deadline passes */
    core_sess_drop(Bs->s);                            /* a comes back */
    Bs->s = NULL;
    ck_assert_ptr_null(reply_to(A, 2));
    ck_assert_str_eq(take(C, 5, "u"), "a");
    ck_assert_uint_eq(must_reply(A, 2, CORE_ST_OK)->accepted, 2);
    /* a plain tail is still dropped at the deadline: [x, y], nothing taken */
    core_bytes_t w[2] = { B("x"), B("y") };
    core_send(A->s, 6, B("u"), w, 2, 10, 1000);
    core_expire(core, 1010);
    ck_assert_uint_eq(must_reply(A, 6, CORE_ST_TIMEOUT)->accepted, 0);
}
END_TEST

START_TEST(t_same_prio_sender_not_stranded)
{
    /* A reserving sender (prio 7) waits on a full buffer; a reserving
     * select of another client with the same prio receives: refill() takes
     * the two for one select's twins and skips the sender while serving
     * it.  Afterwards the buffer has room: the sender must get its slot,
     * not wait until something else pumps the channel. */
    mk(A, 1, "b", 1);
    send1(C, 2, "b", "x", 0);
    must_reply(C, 2, CORE_ST_OK);
    core_case_req_t sc[1] = { SC("b", "y") };
    core_select(Bs->s, 3, sc, 1, true, 7, false, -1, 0);
    ck_assert_ptr_null(reply_to(Bs, 3));
    core_case_req_t rc[1] = { RC("b") };
    core_select(A->s, 4, rc, 1, true, 7, false, -1, 0);
    ck_assert_str_eq(must_reply(A, 4, CORE_ST_OK)->val[0], "x");
    must_reply(Bs, 3, CORE_ST_RESERVED);
}
END_TEST

START_TEST(t_timed_out_batch_with_a_hole_is_answered)
{
    /* [a, b, c] unbuffered: a out to Bs, b taken by C, c still waiting when
     * the deadline passes.  Then a comes back (Bs dies): the send may hand on
     * nothing more, so a is dropped and the send is answered TIMEOUT with the
     * prefix that is certain: none (b went too, out of order).  It once kept
     * a as a "hole" to fill and was never answered. */
    mk(A, 1, "u", 0);
    core_bytes_t v[3] = { B("a"), B("b"), B("c") };
    core_send(A->s, 2, B("u"), v, 3, 100, 0);
    recvn(Bs, 3, "u", 1, -1);
    ck_assert_str_eq(must_reply(Bs, 3, CORE_ST_OK)->val[0], "a");
    recvn(C, 4, "u", 1, -1);
    rec_t *rc = must_reply(C, 4, CORE_ST_OK);
    ck_assert_str_eq(rc->val[0], "b");
    ack_all(C, rc);
    core_expire(core, 200);
    ck_assert_ptr_null(reply_to(A, 2));               /* a is still out */
    core_sess_drop(Bs->s);
    Bs->s = NULL;
    ck_assert_uint_eq(must_reply(A, 2, CORE_ST_TIMEOUT)->accepted, 0);
    core_info_t ci;
    core_info(core, &ci);
    ck_assert_uint_eq(ci.pending, 0);
    ck_assert_uint_eq(ci.value_bytes, 0);
}
END_TEST

START_TEST(t_accepted_is_a_prefix_when_closed)
{
    /* Send[v0, v1] unbuffered: receiver Bs takes v0, C takes v1 and acks,
     * the channel is closed, Bs dies.  v0 is dropped (closed) and v1 was
     * consumed: `accepted` is the certain prefix, 0, not the count of
     * acknowledgements (1), which told the sender v0 went. */
    mk(A, 1, "u", 0);
    core_bytes_t v[2] = { B("v0"), B("v1") };
    core_send(A->s, 2, B("u"), v, 2, -1, 0);
    recvn(Bs, 3, "u", 1, -1);
    ck_assert_str_eq(must_reply(Bs, 3, CORE_ST_OK)->val[0], "v0");
    recvn(C, 4, "u", 1, -1);
    rec_t *rc = must_reply(C, 4, CORE_ST_OK);
    ck_assert_str_eq(rc->val[0], "v1");
    ack_all(C, rc);
    core_close(C->s, 5, B("u"));
    must_reply(C, 5, CORE_ST_OK);
    ck_assert_ptr_null(reply_to(A, 2));
    core_sess_drop(Bs->s);
    Bs->s = NULL;
    ck_assert_uint_eq(must_reply(A, 2, CORE_ST_CLOSED)->accepted, 0);
    /* in order, the prefix is the count: [w0, w1], w0 taken, then closed */
    mk(A, 6, "u2", 0);
    core_bytes_t w[2] = { B("w0"), B("w1") };
    core_send(A->s, 7, B("u2"), w, 2, -1, 0);
    ck_assert_str_eq(take(C, 8, "u2"), "w0");
    core_close(C->s, 9, B("u2"));
    ck_assert_uint_eq(must_reply(A, 7, CORE_ST_CLOSED)->accepted, 1);
}
END_TEST

/* A receive that cannot wait (timeout 0) meets a sender waiting in a
 * two-phase select, as Go's receive with default takes a waiting sender's
 * value: held by the sender, it waits for its decision only.  _i 0: the
 * sender commits, the receive gets the value; 1: it releases (it took
 * another case), the receive is answered TIMEOUT at the next expiry; 2:
 * the same with a one-case select with timeout 0 (not a reserving one). */
START_TEST(t_nonblocking_recv_holds_a_reserving_sender)
{
    mk(A, 1, "u", 0);
    core_case_req_t sc[1] = { SC("u", "r") };
    core_select(A->s, 2, sc, 1, true, 0, false, -1, 0);          /* reserving sender waits */
    if (_i == 2) {
        core_case_req_t rc[1] = { RC("u") };
        core_select(Bs->s, 3, rc, 1, false, 0, false, 0, 0);     /* default */
    } else {
        recvn(Bs, 3, "u", 1, 0);                                /* default */
    }
    must_reply(A, 2, CORE_ST_RESERVED);                          /* asked to decide */
    ck_assert_ptr_null(reply_to(Bs, 3));                         /* held meanwhile */
    core_expire(core, 1000);
    ck_assert_ptr_null(reply_to(Bs, 3));                         /* no deadline runs */
    if (_i == 0) {
        core_commit(A->s, 4, 2, false, 0, 0);
        rec_t *r = must_reply(Bs, 3, CORE_ST_OK);
        ck_assert_uint_eq(r->ndlv, 1);
        ck_assert_str_eq(r->val[0], "r");
        ack_all(Bs, r);
        must_reply(A, 4, CORE_ST_OK);
    } else {
        core_release(A->s, 4, 2);
        must_reply(A, 4, CORE_ST_OK);
        core_expire(core, 1001);
        must_reply(Bs, 3, CORE_ST_TIMEOUT);
        ck_assert_uint_eq(info_of("u").receivers, 0);            /* nothing left queued */
    }
}
END_TEST

/* A select with timeout 0 whose receive case meets a reserving sender is
 * held by it only when nothing else is ready: a ready case is taken at once,
 * and with no partner at all it is answered TIMEOUT at once. */
START_TEST(t_nonblocking_select_prefers_a_ready_case)
{
    mk(A, 1, "u", 0);
    mk(A, 2, "b", 1);
    send1(A, 3, "b", "ready", -1);
    core_case_req_t sc[1] = { SC("u", "r") };
    core_select(A->s, 4, sc, 1, true, 0, false, -1, 0);          /* reserving sender on u */
    core_case_req_t rc[2] = { RC("u"), RC("b") };
    core_select(Bs->s, 5, rc, 2, false, 0, true, 0, 0);          /* in order: u first */
    rec_t *r = must_reply(Bs, 5, CORE_ST_OK);
    ck_assert_int_eq(r->index, 1);                               /* b was ready */
    ack_all(Bs, r);
    ck_assert_ptr_null(reply_to(A, 4));                          /* the sender still waits */
    core_case_req_t none[1] = { RC("b") };
    core_select(Bs->s, 6, none, 1, false, 0, false, 0, 0);
    must_reply(Bs, 6, CORE_ST_TIMEOUT);
    ck_assert_uint_eq(info_of("b").receivers, 0);
}
END_TEST

START_TEST(t_no_send_after_close_through_a_freeze)
{
    mk(A, 1, "u", 0);
    mk(A, 2, "b", 1);
    send1(A, 3, "b", "f", -1);
    core_case_req_t bc[2] = { RC("u"), SC("b", "x") };
    core_select(Bs->s, 4, bc, 2, false, 0, false, -1, 0);         /* u empty, b full: waits */
    core_case_req_t ac[1] = { SC("u", "r") };
    core_select(A->s, 5, ac, 1, true, 0, false, -1, 0);           /* holds B's receive case */
    must_reply(A, 5, CORE_ST_RESERVED);
    ck_assert_str_eq(take(C, 6, "b"), "f");             /* room in b ... */
    core_close(C->s, 7, B("b"));                         /* ... but b closes */
    core_release(A->s, 8, 5);                            /* B lets go */
    rec_t *r = must_reply(Bs, 4, CORE_ST_CLOSED);
    ck_assert_int_eq(r->index, 1);
    ck_assert_uint_eq(info_of("b").len, 0);             /* nothing slipped in */
}
END_TEST

START_TEST(t_dropping_a_reserving_session_marks_nothing)
{
    mk(A, 1, "u", 0);
    mk(A, 2, "v", 0);
    core_case_req_t bc[2] = { RC("u"), SC("v", "y") };
    core_select(Bs->s, 3, bc, 2, false, 0, false, -1, 0);
    tsess_t *t = &sess[3];
    core_case_req_t tc[1] = { SC("u", "r") };
    core_select(t->s, 4, tc, 1, true, 0, false, -1, 0);            /* freezes B */
    must_reply(t, 4, CORE_ST_RESERVED);
    recvn(t, 5, "v", 1, -1);                             /* t also waits on v */
    core_sess_drop(t->s);
    t->s = NULL;
    recvn(C, 6, "v", 1, -1);
    rec_t *r = must_reply(C, 6, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "y");
    ck_assert_uint_eq(r->redelivered[0], 0);            /* never seen by anyone */
}
END_TEST

/* Start again with a core whose limits are l (the sessions too). */
static void remake_core(const core_limits_t *l)
{
    for (int i = 0; i < 4; i++) {
        core_sess_drop(sess[i].s);
        sess[i].n = 0;
    }
    core_free(core);
    core = core_new(l, on_reply);
    core_seed(core, 12345);
    for (int i = 0; i < 4; i++)
        sess[i].s = core_sess_new(core, &sess[i]);
}

static void remake_with_ack_wait(int64_t ms)
{
    core_limits_t l = limits;
    l.ack_wait = ms;
    remake_core(&l);
}

static uint64_t ack_expired(void)
{
    core_info_t i;
    core_info(core, &i);
    return i.ack_expired;
}

START_TEST(t_ack_wait_buffered)
{
    /* a receiver that never acknowledges: at its deadline the values go
     * back, in order and marked, to a receiver already waiting; its late
     * ack is of an unknown delivery */
    remake_with_ack_wait(100);
    core_set_now(core, 1000);
    mk(A, 1, "b", 10);
    core_bytes_t v[3] = { B("1"), B("2"), B("3") };
    core_send(A->s, 2, B("b"), v, 3, -1, 1000);
    recvn(Bs, 3, "b", 3, -1);
    rec_t *held = must_reply(Bs, 3, CORE_ST_OK);
    ck_assert_uint_eq(held->ndlv, 3);
    recvn(C, 4, "b", 1, -1);
    ck_assert_int_eq(core_next_deadline(core), 1100);
    core_expire(core, 1099);
    ck_assert_ptr_null(reply_to(C, 4));
    core_expire(core, 1100);
    rec_t *r = must_reply(C, 4, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "1");
    ck_assert_uint_eq(r->redelivered[0], 1);
    ck_assert(!core_ack(Bs->s, held->dlv[0]));   /* too late: ignored */
    ack_all(C, r);
    expect_next(C, 5, "b", "2");
    expect_next(C, 6, "b", "3");
    ck_assert_uint_eq(ack_expired(), 3);
    ck_assert_int_eq(core_next_deadline(core), -1);
}
END_TEST

START_TEST(t_ack_wait_unbuffered)
{
    /* the sender of an unbuffered value waits on: the value goes back to
     * it, and the next receiver's ack completes the send */
    remake_with_ack_wait(100);
    mk(A, 1, "u", 0);
    send1(A, 2, "u", "x", -1);
    core_set_now(core, 2000);
    recvn(Bs, 3, "u", 1, -1);
    ck_assert_uint_eq(must_reply(Bs, 3, CORE_ST_OK)->ndlv, 1);
    core_expire(core, 2100);
    ck_assert_ptr_null(reply_to(A, 2));
    recvn(C, 4, "u", 1, 0);
    rec_t *r = must_reply(C, 4, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "x");
    ck_assert_uint_eq(r->redelivered[0], 1);
    ack_all(C, r);
    ck_assert_uint_eq(must_reply(A, 2, CORE_ST_OK)->accepted, 1);
}
END_TEST

START_TEST(t_ack_wait_only_the_late)
{
    /* deadlines run from each delivery: an acknowledged value never comes
     * back, and a later delivery waits for its own deadline */
    remake_with_ack_wait(100);
    mk(A, 1, "b", 10);
    core_bytes_t v[3] = { B("1"), B("2"), B("3") };
    core_send(A->s, 2, B("b"), v, 3, -1, 1000);
    core_set_now(core, 1000);
    recvn(Bs, 3, "b", 1, -1);
    ack_all(Bs, must_reply(Bs, 3, CORE_ST_OK));
    core_set_now(core, 1010);
    recvn(Bs, 4, "b", 1, -1);
    must_reply(Bs, 4, CORE_ST_OK);
    core_set_now(core, 1050);
    recvn(C, 5, "b", 1, -1);
    rec_t *c = must_reply(C, 5, CORE_ST_OK);
    ck_assert_int_eq(core_next_deadline(core), 1110);
    core_expire(core, 1110);
    ck_assert_uint_eq(ack_expired(), 1);
    ck_assert_int_eq(core_next_deadline(core), 1150);
    ack_all(C, c);   /* in time */
    ck_assert_int_eq(core_next_deadline(core), -1);
    core_set_now(core, 900);   /* time never goes back */
    expect_next(C, 6, "b", "2");
    ck_assert_uint_eq(ack_expired(), 1);
}
END_TEST

START_TEST(t_delete_frees_a_slice_at_a_time)
{
    /* a large buffer outlives its channel's delete, freed by core_reclaim
     * in slices; a small one goes at once */
    core_limits_t l = limits;
    l.max_batch = 4096;
    l.max_cap = 10000;
    remake_core(&l);
    mk(A, 1, "big", 5000);
    mk(A, 2, "small", 10);
    static core_bytes_t v[5000];
    for (int i = 0; i < 5000; i++)
        v[i] = B("v");
    core_send(A->s, 3, B("big"), v, 4096, -1, 0);
    core_send(A->s, 4, B("big"), v, 904, -1, 0);
    core_send(A->s, 5, B("small"), v, 10, -1, 0);
    core_info_t before, after;
    core_info(core, &before);
    core_delete(A->s, 6, B("small"));
    must_reply(A, 6, CORE_ST_OK);
    ck_assert_uint_eq(core_reclaim(core, 0), 0);
    core_delete(A->s, 7, B("big"));
    must_reply(A, 7, CORE_ST_OK);
    ck_assert_ptr_null(core_find(core, B("big")));
    ck_assert_uint_eq(core_reclaim(core, 0), 5000);
    ck_assert_uint_eq(core_reclaim(core, 1500), 3500);
    ck_assert_uint_eq(core_reclaim(core, 3000), 500);
    core_info(core, &after);
    ck_assert_uint_lt(after.value_bytes, before.value_bytes);
    ck_assert_uint_gt(after.value_bytes, 0);   /* the last 500 still count */
    ck_assert_uint_eq(core_reclaim(core, SIZE_MAX), 0);
    core_info(core, &after);
    ck_assert_uint_eq(after.value_bytes, 0);
    /* the teardown frees what a core still buries */
    mk(A, 8, "big", 5000);
    core_send(A->s, 9, B("big"), v, 2000, -1, 0);
    core_delete(A->s, 10, B("big"));
    ck_assert_uint_eq(core_reclaim(core, 0), 2000);
}
END_TEST

START_TEST(t_memory_limit)
{
    /* a core whose values may hold about four 1000-byte values */
    core_limits_t l = limits;
    l.max_memory = 4 * (1000 + sizeof(core_val_t));
    remake_core(&l);
    mk(A, 1, "m", 100);
    static char v[1001];
    memset(v, 'm', 1000);
    for (uint64_t id = 2; id < 6; id++) {
        send1(A, id, "m", v, -1);
        must_reply(A, id, CORE_ST_OK);
    }
    send1(A, 6, "m", v, -1);
    must_reply(A, 6, CORE_ST_BUSY);              /* refused, nothing taken */
    ck_assert_uint_eq(info_of("m").len, 4);
    take(Bs, 7, "m");                                  /* room again */
    send1(A, 8, "m", v, -1);
    must_reply(A, 8, CORE_ST_OK);
    core_case_req_t sc[1] = { SC("m", v) };
    core_select(A->s, 9, sc, 1, false, 0, false, 0, 0);
    must_reply(A, 9, CORE_ST_BUSY);              /* selects too */
    for (uint64_t id = 10; id < 14; id++)
        take(Bs, id, "m");
    core_info_t ci;
    core_info(core, &ci);
    ck_assert_uint_eq(ci.value_bytes, 0);              /* every byte accounted */
}
END_TEST

START_TEST(t_detached_sender_freed_at_shutdown)
{
    /* a sender gone while its value is out; shutdown must free it (the
     * fixture's teardown runs under LeakSanitizer/valgrind) */
    mk(A, 1, "u", 0);
    send1(A, 2, "u", "v", -1);
    recvn(Bs, 3, "u", 1, -1);
    must_reply(Bs, 3, CORE_ST_OK);
    core_sess_drop(A->s);
    A->s = NULL;
    core_shutdown(core);
    core_info_t ci;
    core_info(core, &ci);
    ck_assert_uint_eq(ci.pending, 0);
}
END_TEST

/* ---- shutdown ---- */

START_TEST(t_shutdown_answers_everyone)
{
    mk(A, 1, "u", 0);
    recvn(A, 2, "u", 1, -1);
    mk(A, 3, "v", 0);
    send1(Bs, 4, "v", "x", -1);
    core_shutdown(core);
    must_reply(A, 2, CORE_ST_SHUTTING_DOWN);
    must_reply(Bs, 4, CORE_ST_SHUTTING_DOWN);
    core_info_t ci;
    core_info(core, &ci);
    ck_assert_uint_eq(ci.pending, 0);
}
END_TEST

START_TEST(t_shutdown_with_a_reserved_slot)
{
    /* a reserving select holds a buffer slot when chand stops: the op is
     * failed (no case chosen) and then freed, which once looked up the slot's
     * channel through the chosen case, cases[-1] by then: SIGSEGV */
    mk(A, 1, "b", 1);
    core_case_req_t cs[1] = { SC("b", "r") };
    core_select(A->s, 2, cs, 1, true, 0, false, -1, 0);
    must_reply(A, 2, CORE_ST_RESERVED);
    core_shutdown(core);
    core_info_t ci;
    core_info(core, &ci);
    ck_assert_uint_eq(ci.pending, 0);
    send1(Bs, 3, "b", "after", 0);                 /* the slot is free again */
    must_reply(Bs, 3, CORE_ST_OK);
}
END_TEST

/* ---- a randomised conservation check ---- */

START_TEST(t_random_conservation)
{
    /* Random sends, receives, acks, nacks, drops and closes over a few
     * channels; at the end every value sent was acknowledged exactly once
     * or is still in a channel. */
    enum { NCH = 3, ROUNDS = 4000 };
    const char *names[NCH] = { "r0", "r1", "r2" };
    long caps[NCH] = { 0, 1, 4 };
    for (int i = 0; i < NCH; i++)
        mk(A, 1000 + (uint64_t)i, names[i], caps[i]);
    static int seen[ROUNDS + 1];
    memset(seen, 0, sizeof seen);
    uint64_t id = 2000, rnd = 99;
    int sent_ok = 0;
    for (int round = 0; round < ROUNDS; round++) {
        rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
        int who = 1 + (int)((rnd >> 33) % 3), what = (int)((rnd >> 40) % 10);
        int ch = (int)((rnd >> 50) % NCH);
        tsess_t *t = &sess[who];
        if (!t->s) {
            t->s = core_sess_new(core, t);
            t->n = 0;
        }
        char v[16];
        snprintf(v, sizeof v, "%d", round);
        if (what < 4) {
            send1(t, id++, names[ch], v, (rnd >> 20) % 2 ? -1 : 0);
        } else if (what < 8) {
            recvn(t, id++, names[ch], 1 + (uint32_t)((rnd >> 24) % 3), (rnd >> 21) % 2 ? -1 : 0);
        } else if (what < 9 && t->s) {
            core_sess_drop(t->s);
            t->s = NULL;
        }
        /* acknowledge (or now and then give back) everything received */
        for (int k = 1; k < 4; k++) {
            tsess_t *u = &sess[k];
            if (!u->s)
                continue;
            for (size_t i = 0; i < u->n; i++) {
                rec_t *r = &u->recs[i];
                if (r->kind == CORE_R_RECV && r->st == CORE_ST_OK) {
                    for (size_t j = 0; j < r->ndlv; j++) {
                        if ((rnd >> (j + 5)) % 7 == 0) {
                            core_nack(u->s, r->dlv[j]);
                        } else if (core_ack(u->s, r->dlv[j])) {
                            seen[atoi(r->val[j])]++;
                        }
                    }
                }
                if (r->kind == CORE_R_SEND)
                    sent_ok += (int)r->accepted;
            }
            u->n = 0;
        }
    }
    /* drain: everything left in buffers */
    for (int k = 1; k < 4; k++)
        if (sess[k].s) {
            core_sess_drop(sess[k].s);
            sess[k].s = NULL;
        }
    for (int i = 0; i < NCH; i++) {
        core_chan_info_t info = info_of(names[i]);
        ck_assert_uint_eq(info.inflight, 0);
        for (uint64_t k = 0; k < info.len; k++) {
            recvn(A, id, names[i], 1, 0);
            rec_t *r = must_reply(A, id, CORE_ST_OK);
            id++;
            ck_assert(core_ack(A->s, r->dlv[0]));
            seen[atoi(r->val[0])]++;
            A->n = 0;
        }
    }
    int total = 0;
    for (int i = 0; i <= ROUNDS; i++) {
        ck_assert_int_le(seen[i], 1);              /* never twice */
        total += seen[i];
    }
    /* every acknowledged send was received (buffered ones may also have been
     * received without their sender hearing back: dropped sender sessions) */
    ck_assert_int_ge(total, sent_ok);
    core_info_t ci;
    core_info(core, &ci);
    ck_assert_uint_eq(ci.inflight, 0);
    ck_assert_uint_eq(ci.value_bytes, 0);   /* drained: nothing held, nothing leaked */
}
END_TEST

/* ---- the hash table's resumable scan ---- */

typedef struct scan_node {
    hnode_t h;   /* first: a node's address is the object's */
    int seen;
    bool gone;   /* removed */
} scan_node_t;

static void scan_mark(hnode_t *n, void *arg)
{
    (void)arg;
    ((scan_node_t *)n)->seen++;
}

static bool scan_node_is(const hnode_t *n, const void *key)
{
    return n == key;
}

START_TEST(t_scan_sees_each_once_while_growing)
{
    /* 100 nodes there throughout; between steps the table grows from 128
     * to 16384 buckets (a bucket at a time: most steps see it half moved),
     * and nodes come and go: each of the 100 is seen exactly once */
    enum { OLD = 100, NEW = 10000 };
    static const int per_step[] = { 40, 7, 1 };
    scan_node_t *nodes = calloc(OLD + NEW, sizeof *nodes);
    htable_t t;
    htable_init(&t);
    for (int i = 0; i < OLD; i++) {
        nodes[i].h.hash = chand_hash_u64((uint64_t)i);
        htable_insert(&t, &nodes[i].h);
    }
    uint64_t cur = 0;
    int steps = 0, added = OLD;
    size_t removed = 0;
    bool saw_growing = false;
    do {
        cur = htable_scan(&t, cur, scan_mark, NULL);
        saw_growing |= t.old != NULL;
        for (int k = 0; k < per_step[_i] && added < OLD + NEW; k++, added++) {
            nodes[added].h.hash = chand_hash_u64((uint64_t)added);
            htable_insert(&t, &nodes[added].h);
        }
        if (added % 3 == 0 && added > OLD) {
            htable_remove(&t, &nodes[added - 1].h);
            nodes[added - 1].gone = true;
            removed++;
        }
        steps++;
    } while (cur && steps < 1000000);
    ck_assert_uint_eq(cur, 0);
    ck_assert(saw_growing);
    ck_assert_uint_ge(t.nbuckets, _i == 0 ? 8192 : 256);
    /* every node present is found, every one removed is not; the count */
    ck_assert_uint_eq(t.count, (size_t)added - removed);
    for (int i = 0; i < added; i++) {
        uint64_t h = chand_hash_u64((uint64_t)i);
        hnode_t *f = htable_find(&t, h, scan_node_is, &nodes[i].h);
        ck_assert_msg((f != NULL) == !nodes[i].gone, "node %d", i);
    }
    for (int i = 0; i < OLD; i++)
        ck_assert_msg(nodes[i].seen == 1, "node %d seen %d times", i, nodes[i].seen);
    /* an empty table, and an invented cursor, end at once or in time */
    htable_t e;
    htable_init(&e);
    ck_assert_uint_eq(htable_scan(&e, 12345, scan_mark, NULL), 0);
    cur = 0x5a5a5a5a5a5a5a5aull;
    for (steps = 0; cur && steps <= (int)t.nbuckets; steps++)
        cur = htable_scan(&t, cur, scan_mark, NULL);
    ck_assert_uint_eq(cur, 0);
    htable_free(&t);
    free(nodes);
}
END_TEST

/* ---- the index of deliveries by id (chand_idwin.c) ---- */

typedef struct win_node {
    hnode_t h;
    uint64_t id;
} win_node_t;

static bool win_id_is(const hnode_t *n, const void *key)
{
    return ((const win_node_t *)n)->id == *(const uint64_t *)key;
}

/* Every id of ids[1..n] is found exactly when live[id] (the model). */
static void win_check(const idwin_t *w, const win_node_t *ids, const bool *live, uint64_t n)
{
    size_t count = 0;
    for (uint64_t id = 1; id <= n; id++) {
        const hnode_t *f = idwin_find(w, id, win_id_is);
        ck_assert_msg(live[id] ? f == &ids[id].h : f == NULL, "id %llu: %p, live %d",
                      (unsigned long long)id, (const void *)f, live[id]);
        count += live[id];
    }
    ck_assert_uint_eq(idwin_count(w), count);
    ck_assert_ptr_null(idwin_find(w, n + 1, win_id_is));
    ck_assert_ptr_null(idwin_find(w, 0, win_id_is));
}

START_TEST(t_idwin_matches_a_model)
{
    /* ids added in order and removed in every pattern the sessions make:
     * in order, in batches out of order, a few held for long while many
     * newer ones come and go; checked against a plain array throughout */
    enum { N = 60000 };
    win_node_t *ids = calloc(N + 1, sizeof *ids);
    bool *live = calloc(N + 1, sizeof *live);
    idwin_t w;
    idwin_init(&w);
    uint64_t rng = 88172645463325252ull, next = 1;
    size_t held_max_cap = 0;
    while (next <= N) {
        /* add a batch of 1-300 */
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        uint64_t batch = 1 + rng % 300;
        for (uint64_t k = 0; k < batch && next <= N; k++, next++) {
            ids[next].id = next;
            idwin_add(&w, next, &ids[next].h);
            live[next] = true;
        }
        /* remove most live ids of the last thousand, in a scrambled order,
         * except every 997th id, which stays until the end */
        uint64_t lo = next > 1000 ? next - 1000 : 1;
        for (uint64_t k = 0; k < 1000; k++) {
            uint64_t id = lo + (k * 7919) % (next - lo);
            if (!live[id] || id % 997 == 0)
                continue;
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            if (rng % 4 == 0)
                continue;   /* not this time */
            idwin_remove(&w, id, &ids[id].h);
            live[id] = false;
        }
        if (next % 64 == 1 || next > N)
            win_check(&w, ids, live, next - 1);
        if (w.cap > held_max_cap)
            held_max_cap = w.cap;
    }
    win_check(&w, ids, live, N);
    /* the stragglers (every 997th id, about 60) sit in the hash table; the
     * ring stayed the size of the window, not of every id since the oldest */
    ck_assert_uint_gt(w.old.count, 40);
    ck_assert_uint_le(held_max_cap, 8192);
    for (uint64_t id = 1; id <= N; id++)
        if (live[id]) {
            idwin_remove(&w, id, &ids[id].h);
            live[id] = false;
        }
    win_check(&w, ids, live, N);
    ck_assert_uint_eq(idwin_count(&w), 0);
    /* empty, it starts again at the next id without a wide window */
    win_node_t late = { .id = N + 5 };
    idwin_add(&w, N + 5, &late.h);
    ck_assert_ptr_eq(idwin_find(&w, N + 5, win_id_is), &late.h);
    ck_assert_uint_eq(w.base, N + 5);
    idwin_remove(&w, N + 5, &late.h);
    ck_assert_ptr_null(idwin_find(&w, N + 5, win_id_is));
    idwin_free(&w);
    free(ids);
    free(live);
}
END_TEST

START_TEST(t_idwin_bounded_by_live_ids)
{
    /* one id held while a million newer ones are added and removed one at
     * a time: the ring stays small and the held one is found throughout */
    enum { N = 1000000 };
    idwin_t w;
    idwin_init(&w);
    win_node_t held = { .id = 1 }, *cur = calloc(1, sizeof *cur);
    idwin_add(&w, 1, &held.h);
    for (uint64_t id = 2; id <= N; id++) {
        cur->id = id;
        idwin_add(&w, id, &cur->h);
        ck_assert_ptr_eq(idwin_find(&w, id, win_id_is), &cur->h);
        idwin_remove(&w, id, &cur->h);
        if (id % 4096 == 0)
            ck_assert_ptr_eq(idwin_find(&w, 1, win_id_is), &held.h);
    }
    ck_assert_uint_le(w.cap, 64);
    ck_assert_uint_eq(idwin_count(&w), 1);
    idwin_remove(&w, 1, &held.h);
    ck_assert_uint_eq(idwin_count(&w), 0);
    ck_assert_ptr_null(idwin_find(&w, 1, win_id_is));
    idwin_free(&w);
    free(cur);
}
END_TEST


/* ---- a receive with timeout 0 held by a reserving sender: every way the
 * hold ends, and a second sender after the first released ---- */

/* After the first holder released Bs's timeout-0 receive (request rid) and
 * an expiry ran: either the second sender (request sid of session t) was
 * not asked and the receive got TIMEOUT, or it was asked and its commit
 * (request cid) is not answered RETRY, as it would be had the receive timed
 * out under it. */
static void second_sender_after_release(tsess_t *t, uint64_t sid, uint64_t cid, uint64_t rid)
{
    rec_t *asked = reply_to(t, sid);
    if (!asked) {
        must_reply(Bs, rid, CORE_ST_TIMEOUT);
        return;
    }
    ck_assert_int_eq(asked->st, CORE_ST_RESERVED);
    core_commit(t->s, cid, sid, true, -1, 1000);
    rec_t *cm = reply_to(t, cid);
    ck_assert_msg(!cm || cm->st != CORE_ST_RETRY,
                  "a sender asked to decide for a receive that then timed out got RETRY "
                  "(receive answered %d)", reply_to(Bs, rid) ? (int)reply_to(Bs, rid)->st : -1);
}

/* Two reserving senders wait on u.  A timeout-0 Recv is held by the first;
 * it releases.  The receive must not then ask the second sender to decide
 * and time out under it: either the second is not asked (the receive gets
 * TIMEOUT), or it is asked and its commit hands its value over. */
START_TEST(t_hold0_second_reserving_sender_after_release)
{
    mk(A, 1, "u", 0);
    core_case_req_t s1[1] = { SC("u", "one") };
    core_select(A->s, 2, s1, 1, true, 0, false, -1, 0);
    core_case_req_t s2[1] = { SC("u", "two") };
    core_select(C->s, 3, s2, 1, true, 0, false, -1, 0);
    if (_i == 0) {
        recvn(Bs, 4, "u", 1, 0);
    } else {
        core_case_req_t rc[1] = { RC("u") };
        core_select(Bs->s, 4, rc, 1, false, 0, false, 0, 0);
    }
    must_reply(A, 2, CORE_ST_RESERVED);
    ck_assert_ptr_null(reply_to(C, 3));
    core_release(A->s, 5, 2);
    must_reply(A, 5, CORE_ST_OK);
    core_expire(core, 1000);   /* the daemon's next turn */
    second_sender_after_release(C, 3, 6, 4);
}
END_TEST

/* A timeout-0 select with two receive cases, each facing its own reserving
 * sender.  Held by one, which releases: same question as above. */
START_TEST(t_hold0_two_cases_two_reserving_senders)
{
    mk(A, 1, "u1", 0);
    mk(A, 2, "u2", 0);
    core_case_req_t s1[1] = { SC("u1", "one") };
    core_select(A->s, 3, s1, 1, true, 0, false, -1, 0);
    core_case_req_t s2[1] = { SC("u2", "two") };
    core_select(C->s, 4, s2, 1, true, 0, false, -1, 0);
    core_case_req_t rc[2] = { RC("u1"), RC("u2") };
    core_select(Bs->s, 5, rc, 2, false, 0, true, 0, 0);
    rec_t *a = reply_to(A, 3), *c = reply_to(C, 4);
    ck_assert_msg((a != NULL) != (c != NULL), "exactly one sender asked");
    tsess_t *first = a ? A : C, *second = a ? C : A;
    uint64_t fid = a ? 3 : 4, sid = a ? 4 : 3;
    ck_assert_ptr_null(reply_to(Bs, 5));
    core_release(first->s, 10, fid);
    must_reply(first, 10, CORE_ST_OK);
    core_expire(core, 1000);
    second_sender_after_release(second, sid, 11, 5);
}
END_TEST

/* A timeout-0 select with a send case and a receive case, held on the
 * receive case; a receiver comes to the send case's channel meanwhile. */
START_TEST(t_hold0_send_case_while_held)
{
    mk(A, 1, "u", 0);
    mk(A, 2, "x", 0);
    core_case_req_t s1[1] = { SC("u", "one") };
    core_select(A->s, 3, s1, 1, true, 0, false, -1, 0);
    core_case_req_t cs[2] = { SC("x", "v"), RC("u") };
    core_select(Bs->s, 4, cs, 2, false, 0, true, 0, 0);
    must_reply(A, 3, CORE_ST_RESERVED);
    ck_assert_ptr_null(reply_to(Bs, 4));
    recvn(C, 5, "x", 1, -1);          /* the held select's send case must not match */
    ck_assert_ptr_null(reply_to(C, 5));
    if (_i == 0) {
        core_commit(A->s, 6, 3, true, -1, 0);
        rec_t *r = must_reply(Bs, 4, CORE_ST_OK);
        ck_assert_int_eq(r->index, 1);
        ck_assert_str_eq(r->val[0], "one");
        ack_all(Bs, r);
        must_reply(A, 6, CORE_ST_OK);
        ck_assert_ptr_null(reply_to(C, 5));
    } else {
        core_release(A->s, 6, 3);
        /* let go: its send case meets C's receiver, or it times out */
        core_expire(core, 1000);
        rec_t *r = reply_to(Bs, 4);
        rec_t *rc = reply_to(C, 5);
        if (rc) {
            ck_assert_int_eq(rc->st, CORE_ST_OK);
            ck_assert_str_eq(rc->val[0], "v");
            ack_all(C, rc);
            r = must_reply(Bs, 4, CORE_ST_OK);
            ck_assert_int_eq(r->index, 0);
        } else {
            ck_assert_ptr_nonnull(r);
            ck_assert_int_eq(r->st, CORE_ST_TIMEOUT);
        }
    }
    core_expire(core, 2000);
}
END_TEST

/* Whatever ends the hold, the held timeout-0 receive is answered once:
 * 0 close, 1 delete, 2 cancel, 3 its session goes, 4 the holder's session
 * goes, 5 shutdown, 6 evict (moving slot). */
START_TEST(t_hold0_every_end_of_a_hold)
{
    mk(A, 1, "u", 0);
    core_case_req_t s1[1] = { SC("u", "one") };
    core_select(A->s, 2, s1, 1, true, 0, false, -1, 0);
    recvn(Bs, 3, "u", 1, 0);
    must_reply(A, 2, CORE_ST_RESERVED);
    ck_assert_ptr_null(reply_to(Bs, 3));
    switch (_i) {
    case 0:
        core_close(C->s, 4, B("u"));
        must_reply(C, 4, CORE_ST_OK);
        core_release(A->s, 5, 2);
        must_reply(Bs, 3, CORE_ST_CLOSED);
        break;
    case 1:
        core_delete(C->s, 4, B("u"));
        must_reply(C, 4, CORE_ST_OK);
        core_commit(A->s, 5, 2, true, -1, 0);
        must_reply(A, 5, CORE_ST_CLOSED);
        must_reply(Bs, 3, CORE_ST_CLOSED);
        break;
    case 2:
        core_cancel(Bs->s, 4, 3);
        must_reply(Bs, 4, CORE_ST_OK);
        must_reply(Bs, 3, CORE_ST_CANCELED);
        core_commit(A->s, 5, 2, true, -1, 0);
        must_reply(A, 5, CORE_ST_RETRY);
        break;
    case 3:
        core_sess_drop(Bs->s);
        Bs->s = NULL;
        core_commit(A->s, 5, 2, true, -1, 0);
        must_reply(A, 5, CORE_ST_RETRY);
        break;
    case 4:
        core_sess_drop(A->s);
        A->s = NULL;
        ck_assert_ptr_null(reply_to(Bs, 3));
        core_expire(core, 1000);
        must_reply(Bs, 3, CORE_ST_TIMEOUT);
        break;
    case 5:
        core_shutdown(core);
        must_reply(Bs, 3, CORE_ST_SHUTTING_DOWN);
        break;
    case 6:
        core_evict(core, B("u"), CORE_ST_MOVED);
        must_reply(Bs, 3, CORE_ST_MOVED);
        core_commit(A->s, 5, 2, true, -1, 0);
        must_reply(A, 5, CORE_ST_RETRY);
        break;
    }
    core_expire(core, 5000);
    if (Bs->s)
        reply_to(Bs, 3);   /* asserts it was not answered twice */
}
END_TEST

/* Let go by a release, the receive waits under its past deadline; a plain
 * sender that comes before the expiry serves it, and the expiry then
 * answers nothing more.  Again after being held a second time. */
START_TEST(t_hold0_thawed_then_served)
{
    mk(A, 1, "u", 0);
    core_case_req_t s1[1] = { SC("u", "one") };
    core_select(A->s, 2, s1, 1, true, 0, false, -1, 0);
    recvn(Bs, 3, "u", 1, 0);
    must_reply(A, 2, CORE_ST_RESERVED);
    core_release(A->s, 4, 2);
    ck_assert_ptr_null(reply_to(Bs, 3));
    send1(C, 5, "u", "late", -1);
    rec_t *r = reply_to(Bs, 3);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->st, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "late");
    ack_all(Bs, r);
    must_reply(C, 5, CORE_ST_OK);
    core_expire(core, 1000);
    reply_to(Bs, 3);
}
END_TEST

/* A timeout-0 receive on a buffered channel whose slots are all reserved,
 * held by a reserving sender waiting there. */
START_TEST(t_hold0_buffered_slots_reserved)
{
    mk(A, 1, "b", 1);
    core_case_req_t s1[1] = { SC("b", "slot") };
    core_select(A->s, 2, s1, 1, true, 0, false, -1, 0);
    must_reply(A, 2, CORE_ST_RESERVED);                 /* holds the slot */
    core_case_req_t s2[1] = { SC("b", "held") };
    core_select(C->s, 3, s2, 1, true, 0, false, -1, 0);
    ck_assert_ptr_null(reply_to(C, 3));
    recvn(Bs, 4, "b", 1, 0);
    rec_t *c = reply_to(C, 3);
    if (!c) {
        must_reply(Bs, 4, CORE_ST_TIMEOUT);
        return;
    }
    ck_assert_int_eq(c->st, CORE_ST_RESERVED);
    core_commit(A->s, 5, 2, true, -1, 0);
    must_reply(A, 5, CORE_ST_OK);                       /* "slot" is buffered */
    core_commit(C->s, 6, 3, true, -1, 0);
    rec_t *r = must_reply(Bs, 4, CORE_ST_OK);
    ck_assert_str_eq(r->val[0], "slot");                /* the oldest first */
    ack_all(Bs, r);
    must_reply(C, 6, CORE_ST_OK);                       /* "held" buffered */
    ck_assert_str_eq(take(Bs, 7, "b"), "held");
}
END_TEST

static void hold0_tests(Suite *s)
{
    TCase *tc = tcase_create("hold0");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, t_hold0_second_reserving_sender_after_release, 0, 2);
    tcase_add_test(tc, t_hold0_two_cases_two_reserving_senders);
    tcase_add_loop_test(tc, t_hold0_send_case_while_held, 0, 2);
    tcase_add_loop_test(tc, t_hold0_every_end_of_a_hold, 0, 7);
    tcase_add_test(tc, t_hold0_thawed_then_served);
    tcase_add_test(tc, t_hold0_buffered_slots_reserved);
    suite_add_tcase(s, tc);
}

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("semantics");
    tcase_set_timeout(tc, 30);   /* catches hangs: the slowest test takes < 1 s */
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t_open_rules);
    tcase_add_test(tc, t_max_channels);
    tcase_add_test(tc, t_unbuffered_send_blocks_until_received_and_acked);
    tcase_add_test(tc, t_unbuffered_recv_blocks_until_sender);
    tcase_add_test(tc, t_unbuffered_nonblocking);
    tcase_add_test(tc, t_buffered_backpressure);
    tcase_add_test(tc, t_buffered_recv_blocks_while_empty);
    tcase_add_test(tc, t_batches);
    tcase_add_test(tc, t_batch_fits_a_frame);
    tcase_add_test(tc, t_close_semantics);
    tcase_add_test(tc, t_close_wakes_everyone);
    tcase_add_test(tc, t_close_with_unbuffered_send_in_flight);
    tcase_add_test(tc, t_delete);
    tcase_add_test(tc, t_fifo_values_and_waiters);
    tcase_add_test(tc, t_fifo_buffered_many);
    tcase_add_test(tc, t_deadlines);
    tcase_add_test(tc, t_cancel);
    tcase_add_test(tc, t_pending_limit_and_duplicate_id);
    tcase_add_test(tc, t_too_large);
    suite_add_tcase(s, tc);

    tc = tcase_create("delivery");
    tcase_set_timeout(tc, 30);   /* catches hangs: the slowest test takes < 1 s */
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t_requeue_buffered_on_disconnect);
    tcase_add_test(tc, t_requeue_unbuffered_on_disconnect);
    tcase_add_test(tc, t_nack_returns_to_head);
    tcase_add_test(tc, t_nack_batch_keeps_order);
    tcase_add_test(tc, t_disconnect_keeps_order_for_a_waiting_receiver);
    tcase_add_test(tc, t_sender_gone_before_ack);
    tcase_add_test(tc, t_temp_channel_cleanup);
    tcase_add_test(tc, t_shutdown_answers_everyone);
    tcase_add_test(tc, t_shutdown_with_a_reserved_slot);
    tcase_add_test(tc, t_random_conservation);
    suite_add_tcase(s, tc);

    tc = tcase_create("select");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, t_select_default_and_block);
    tcase_add_test(tc, t_select_send_case);
    tcase_add_test(tc, t_select_exactly_one);
    tcase_add_test(tc, t_select_random_choice);
    tcase_add_test(tc, t_select_closed_case);
    tcase_add_test(tc, t_select_self);
    tcase_add_test(tc, t_select_timeout);
    tcase_add_test(tc, t_select_sequence);
    tcase_add_test(tc, t_reserve_buffered_commit_release);
    tcase_add_test(tc, t_reserve_unbuffered_holds_receiver);
    tcase_add_test(tc, t_reserve_dropped_session_releases);
    tcase_add_test(tc, t_reserve_recv_case_is_a_delivery);
    suite_add_tcase(s, tc);

    tc = tcase_create("edges");
    tcase_set_timeout(tc, 30);   /* catches hangs: the slowest test takes < 1 s */
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t_select_recv_closed_with_values);
    tcase_add_test(tc, t_select_recv_meets_reserving_sender);
    tcase_add_test(tc, t_select_send_refused_keeps_deadline);
    tcase_add_test(tc, t_select_too_large_says_length);
    tcase_add_test(tc, t_commit_without_receiver_retries);
    tcase_add_test(tc, t_higher_priority_receiver_leads);
    tcase_add_loop_test(tc, t_higher_priority_sender_leads, 0, 2);
    tcase_add_loop_test(tc, t_receiver_leads_then_sender_declines, 0, 4);
    tcase_add_test(tc, t_receiver_leads_and_releases);
    tcase_add_test(tc, t_sender_commit_refused_retries);
    tcase_add_test(tc, t_receiver_leads_value_too_large);
    tcase_add_test(tc, t_crossing_selects_meet_in_priority_order);
    tcase_add_loop_test(tc, t_held_receiver_served_first, 0, 2);
    tcase_add_test(tc, t_committed_send_receiver_dies);
    tcase_add_test(tc, t_tie_costs_a_retry);
    tcase_add_test(tc, t_committed_recv_keeps_deadline);
    tcase_add_test(tc, t_select_never_meets_itself_across_connections);
    tcase_add_test(tc, t_no_reservation_past_capacity);
    tcase_add_test(tc, t_select_in_order);
    tcase_add_test(tc, t_given_back_ahead_of_buffered_when_slots_reserved);
    tcase_add_test(tc, t_handed_value_back_to_a_closed_buffer);
    tcase_add_test(tc, t_handed_value_back_to_a_deleted_buffer);
    tcase_add_test(tc, t_move_waits_for_a_value_handed_from_its_sender);
    tcase_add_test(tc, t_look_reports_versions);
    tcase_add_loop_test(tc, t_blocked_select_is_queued_in_random_order, 0, 2);
    tcase_add_test(tc, t_commit_takes_the_callers_deadline);
    tcase_add_loop_test(tc, t_look_receive_leads_a_reserving_sender, 0, 2);
    tcase_add_test(tc, t_dropped_reservations_leave_no_trace);
    tcase_add_test(tc, t_partial_batch_reports_a_prefix);
    tcase_add_test(tc, t_timed_out_batch_with_a_hole_is_answered);
    tcase_add_test(tc, t_same_prio_sender_not_stranded);
    tcase_add_test(tc, t_accepted_is_a_prefix_when_closed);
    tcase_add_loop_test(tc, t_nonblocking_recv_holds_a_reserving_sender, 0, 3);
    tcase_add_test(tc, t_nonblocking_select_prefers_a_ready_case);
    tcase_add_test(tc, t_no_send_after_close_through_a_freeze);
    tcase_add_test(tc, t_dropping_a_reserving_session_marks_nothing);
    tcase_add_test(tc, t_detached_sender_freed_at_shutdown);
    tcase_add_test(tc, t_memory_limit);
    tcase_add_loop_test(tc, t_scan_sees_each_once_while_growing, 0, 3);
    tcase_add_test(tc, t_idwin_matches_a_model);
    tcase_add_test(tc, t_idwin_bounded_by_live_ids);
    tcase_add_test(tc, t_select_without_cases);
    tcase_add_test(tc, t_ack_wait_buffered);
    tcase_add_test(tc, t_ack_wait_unbuffered);
    tcase_add_test(tc, t_ack_wait_only_the_late);
    tcase_add_test(tc, t_delete_frees_a_slice_at_a_time);
    suite_add_tcase(s, tc);
    hold0_tests(s);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(core_suite());
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}

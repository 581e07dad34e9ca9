/*
 * fuzz_core.c - the channel core (daemon/chand_core*.c) driven by scripts of
 * operations from four sessions, with every value accounted for after
 * every step.
 *
 * Input: a script of steps.  Each step is one byte (bits 0-1 the session,
 * the rest the operation: open, send, recv, select, close, delete, ack,
 * nack, cancel, commit, release, disconnect, time, and the cluster's move
 * of a channel to another group: evict, move, adopt) and the bytes its
 * arguments need.  The script ends with a shutdown: core_shutdown, every
 * session dropped, core_free (LeakSanitizer checks that nothing is left).
 *
 * Every value the script makes is unique (its first 4 bytes are a serial).
 * After each step core_audit() must find the core consistent, and its walk
 * says where each value is; the harness checks that against what the
 * replies told it, and keeps this ledger:
 *
 *   sent + adopted + copied = at a sender (not accepted yet) + buffered
 *                           + delivered + acknowledged + dropped
 *
 * where a value may leave the core only for a documented reason:
 *   - acknowledged: its receiver acked its delivery in this step;
 *   - dropped unsent: it had not left its sender when the send failed
 *     (timeout, cancel, close, delete, disconnect, a select's other case
 *     won, a two-phase send declined, MOVED); the send's answer must then
 *     not count it (accepted <= its place in the batch, and no OK);
 *   - dropped with its channel: it was buffered in a channel deleted or
 *     dropped in this step (PROTOCOL.md: Delete, temporary channels; a
 *     move's core_drop);
 *   - dropped when given back: its receiver gave it back in this step (nack,
 *     disconnect, or its ack deadline passed) to a deleted channel or to a
 *     sender that can take no more (PROTOCOL.md section 6), which must then
 *     not count it either.
 * A value never comes back once gone, is never in two places, is only ever
 * delivered from the channel it is in, carries the redelivered count it
 * should wherever it is (the disconnects and ack deadlines it went through,
 * or what it was adopted with), and a batch is first delivered in order;
 * values given back together lead their queue (buffer or sender) in the
 * order they were delivered.  Once a send is answered, no value after the
 * prefix it counts is left in the core (PROTOCOL.md, Send: of the rest none
 * was taken).
 *
 * Moving channels (chand_slots.c, PROTOCOL.md section 12.1) adds three
 * steps on the API the old and new groups' primaries use:
 *   - evict: core_evict(MOVED) on a fixed channel.  Every op waiting on it
 *     (blocked sends and receives, selects, committed two-phase exchanges
 *     through their Commit) is answered MOVED exactly once, and nothing else
 *     is answered; nothing waits on the channel after.  A send so answered
 *     counts only what was accepted, its other values dropped unsent; a
 *     receive gets no value; nothing buffered or out to a receiver moves.
 *   - move: a channel out and back, as from one group to the other: its
 *     ops evicted first or not; if core_chan_settled(), nothing waits on
 *     it (a two-phase send whose partner was evicted keeps only its own
 *     value, to be answered RETRY or CLOSED at its commit), and an
 *     unbuffered one has no value out; else something must hold it (an op,
 *     a reservation, a value out whose send is not answered
 *     yet).  core_chan_values must list exactly what the audit finds on it:
 *     its deliveries in the order they were made, counted one more
 *     redelivery, then its buffer in order.  It is dropped (core_drop), and
 *     core_adopt_chan of its name and capacity makes a new channel that
 *     core_adopt_val and core_adopt_end fill: in one part, or in two
 *     (core_adopt_chan of the adopted name again returns the same channel,
 *     keeping its capacity and values; the first part leaves it open),
 *     after a failed attempt dropped (core_drop of an adopted channel: its
 *     values are dropped with it), and perhaps dropped for good.  The
 *     buffered values are then the new channel's own (same serials), a
 *     delivered one stays out on the old channel (acknowledged, or dropped
 *     when given back) and its copy, a value of its own, is adopted: the
 *     new buffer is exactly the listed values, in order, with their
 *     counts.  A sender is never told that a value a move took along was
 *     not sent.  A temporary channel's name is refused by core_drop and
 *     core_adopt_chan.
 *   - adopt: new values adopted into a channel (made if absent, its capacity
 *     kept if present; none into an unbuffered one, as chand_slots.c
 *     refuses), then closed or not: accepted at once, like buffered values,
 *     behind what the channel had, and handed to its waiting receivers.
 *
 * Replies are checked too: each request is answered exactly once (besides
 * a reservation's RESERVED), a receive never carries more than it asked
 * for nor a value over its max_bytes, a send's accepted never exceeds its
 * batch, a reservation never vanishes unanswered.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand_core.h"
#include "fz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSESS 4
#define MAXVALS 1024        /* values one script may send */
#define MAXIDS 256          /* requests per session (per connection) */
#define MAXREPLIES 256      /* replies in one step */
#define MAXDLV 16           /* deliveries in one reply (> max_batch) */
#define NFIXED 3            /* channel names "a", "b", "c" */
#define NTEMPS 3            /* temporary channels remembered */
#define MAXCASES 5          /* one more than max_cases */

static const core_limits_t fz_limits = {
    .max_value = 48, .max_reply = 160, .max_batch = 6, .max_pending = 6, .max_cases = 4,
    .max_channels = 6, .max_cap = 3, .max_memory = 1200, .ack_wait = 200,
};

/* FUZZ_TRACE=1 in the environment: each step and reply on stderr, to
 * read a reproducer by. */
static int trace = -1;

static bool tracing(void)
{
    if (trace < 0)
        trace = getenv("FUZZ_TRACE") != NULL;
    return trace;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_core: %s\n", what);
    abort();
}

static void must(bool ok, const char *what)
{
    if (!ok)
        fail(what);
}

/* ---- what the harness knows ---- */

enum rq_state { RQ_FREE, RQ_OUT, RQ_RESERVED, RQ_DONE };

typedef struct fz_req {
    enum rq_state state;
    int kind;                    /* STEP_SEND, STEP_RECV, STEP_SELECT, ... */
    uint32_t n;                  /* send: values, then the prefix it claims */
    uint32_t lowest_lost;        /* lowest batch place dropped unsent */
    uint32_t max;                /* recv */
    uint64_t max_bytes[MAXCASES];
    const core_chan_t *chan[MAXCASES];
    bool send_case[MAXCASES];
    uint32_t serial[MAXCASES];   /* select: the value of each send case */
    size_t ncases;
    int ok_send;                 /* select: the send case answered OK, or -1 */
    int reserved_index;          /* select: the case it was RESERVED on */
    uint64_t target;             /* commit/release: the reservation */
    bool held;                   /* commit: its target was reserved */
    uint32_t first, nvals;       /* send: its values' serials */
} fz_req_t;

typedef struct fz_sess {
    core_sess_t *s;
    int slot;
    uint64_t next_id;
    fz_req_t req[MAXIDS];
} fz_sess_t;

enum { AT_NONE = -1 };

/* Why a value left the core (the ledger's columns). */
enum gone_how { KEPT, ACKED, NOT_TAKEN, WITH_CHAN, GIVEN_BACK };

/* How a value came into the core: sent by a session, adopted as a new
 * value, or adopted by a move as the copy of a value out to a receiver. */
enum made_how { MADE_SENT, MADE_ADOPTED, MADE_COPY };

typedef struct fz_val {
    bool made, gone;
    enum gone_how how;
    enum made_how made_by;
    bool moved;                  /* a move adopted a copy of it elsewhere:
                                    its sender must not hear it was not sent */
    int place;                   /* enum core_place, or AT_NONE */
    const core_chan_t *chan;     /* where it was sent */
    int sess;                    /* sender's session slot */
    uint64_t req;                /* its send's request id */
    uint32_t seq;                /* its place in the batch */
    uint32_t batch;              /* the serial of its batch's first value */
    bool delivered;              /* delivered at least once */
    int64_t dlv_at;              /* when it was last delivered */
    uint64_t dlv_seq;            /* the core-wide order of that delivery */
    bool expired;                /* its ack deadline passed in this step */
    uint32_t len;
    uint32_t redelivered;        /* expected */
    /* where the audit found it last: */
    int at_sess;
    uint64_t at_id;
    const core_chan_t *at_chan;
    /* this step's audit */
    int now_place, now_sess;
    uint32_t now_pos, now_head;  /* buffered or at a sender: its place in
                                    the walk, and where its queue starts */
    uint32_t now_queue;          /* which queue (a buffer, a case's values) */
    uint64_t now_id;
    const core_chan_t *now_chan;
} fz_val_t;

typedef struct fz_reply {
    int sess;
    core_reply_t r;
    size_t ndlv;
    uint64_t dlv[MAXDLV];
    uint32_t serial[MAXDLV];
    uint32_t len[MAXDLV];
    uint32_t redelivered[MAXDLV];
} fz_reply_t;

static struct {
    core_t *core;
    fz_sess_t sess[NSESS];
    fz_val_t val[MAXVALS];
    uint32_t nval;
    uint32_t live[MAXVALS];      /* serials not gone (as of the last audit) */
    uint32_t nlive;
    /* the audit's walk of the queues: each is walked head first, whole */
    core_value_at_t walk_last;
    uint32_t walk_pos, walk_head, walk_queue;
    /* values given back in this step that are buffered again */
    uint32_t back[MAXVALS];
    uint64_t back_dlv[MAXVALS];  /* their delivery order */
    uint64_t dlv_seq;            /* deliveries so far */
    uint32_t nback;
    fz_reply_t replies[MAXREPLIES];
    size_t nreplies;
    char temps[NTEMPS][64];
    size_t ntemps;
    int64_t now;
    /* the ledger */
    uint64_t ledger[GIVEN_BACK + 1];   /* values gone, by enum gone_how */
    uint64_t made[MADE_COPY + 1];      /* values made, by enum made_how */
    /* this step */
    int step_sess;
    bool step_dropped;           /* step_sess disconnected */
    uint64_t step_acked[MAXDLV], step_given[MAXDLV];
    size_t nstep_acked, nstep_given;
    const core_chan_t *live_before[16], *live_chans[16];   /* channels named */
    size_t nlive_before, nlive_chans;
    /* sends answered in this step: the rest of their batch must be gone */
    uint64_t step_sends[MAXREPLIES];
    int step_sends_sess[MAXREPLIES];
    size_t nstep_sends;
    /* channels this step dropped with core_drop (a move's or an attempt's) */
    const core_chan_t *dropped[8];
    size_t ndropped;
    /* the move of this step: the values its new channel must hold, in order */
    const core_chan_t *move_to;
    uint32_t moved[MAXVALS];
    size_t nmoved;
    bool move_dropped_again;     /* the new channel was dropped too */
    bool step_moves;             /* evict or move: every answer is MOVED */
    const core_chan_t *evicted;  /* the channel the answers wait on */
} fz;

/* ---- values ---- */

static size_t value_make(uint32_t serial, uint32_t len, uint8_t *out)
{
    for (uint32_t i = 0; i < len; i++)
        out[i] = i < 4 ? (uint8_t)(serial >> (8 * i)) : (uint8_t)(serial * 31 + i);
    return len;
}

/* The serial of a value the core shows us, checked against what was sent. */
static uint32_t bytes_serial(const uint8_t *data, size_t len)
{
    must(len >= 4, "a value shorter than any sent");
    uint32_t serial = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                      (uint32_t)data[3] << 24;
    must(serial < fz.nval && fz.val[serial].made, "a value that was never sent");
    must(fz.val[serial].len == len, "a value changed length");
    uint8_t expect[64];
    value_make(serial, (uint32_t)len, expect);
    must(memcmp(expect, data, len) == 0, "a value's bytes changed");
    return serial;
}

static uint32_t value_serial(const core_val_t *v)
{
    return bytes_serial(v->data, v->len);
}

/* ---- replies ---- */

static void on_reply(void *ctx, const core_reply_t *r)
{
    fz_sess_t *t = ctx;
    must(fz.nreplies < MAXREPLIES, "too many replies in one step");
    must(r->ndlv <= MAXDLV && r->ndlv <= fz_limits.max_batch, "a reply with too many deliveries");
    if (tracing())
        fprintf(stderr, "  reply to s%d id %llu: status %d kind %d accepted %u index %d ndlv %zu\n",
                t->slot, (unsigned long long)r->id, r->status, r->kind, r->accepted, r->index,
                r->ndlv);
    fz_reply_t *x = &fz.replies[fz.nreplies++];
    x->sess = t->slot;
    x->r = *r;
    x->r.dlv = NULL;
    x->r.message = NULL;
    x->ndlv = r->ndlv;
    for (size_t i = 0; i < r->ndlv; i++) {
        x->dlv[i] = r->dlv[i].id;
        x->serial[i] = value_serial(r->dlv[i].val);
        x->len[i] = r->dlv[i].val->len;
        x->redelivered[i] = r->dlv[i].val->redelivered;
        if (tracing())
            fprintf(stderr, "    delivery %llu: value %u (%u bytes, redelivered %u)\n",
                    (unsigned long long)x->dlv[i], x->serial[i], x->len[i], x->redelivered[i]);
    }
    if (r->kind == CORE_R_OPEN && r->status == CORE_ST_OK) {
        core_chan_info_t info;
        core_chan_info(r->chan, &info);
        if (info.temp && info.name.len < sizeof fz.temps[0]) {
            char *slot = fz.temps[fz.ntemps++ % NTEMPS];
            memcpy(slot, info.name.data, info.name.len);
            slot[info.name.len] = 0;
        }
    }
}

enum step_kind {
    STEP_OPEN, STEP_SEND, STEP_RECV, STEP_SELECT, STEP_CLOSE, STEP_DELETE, STEP_ACK,
    STEP_NACK, STEP_CANCEL, STEP_COMMIT, STEP_RELEASE, STEP_DROP, STEP_TIME,
    STEP_EVICT, STEP_MOVE, STEP_ADOPT, STEP_KINDS
};

static fz_req_t *req_of(int sess, uint64_t id)
{
    return id && id < fz.sess[sess].next_id ? &fz.sess[sess].req[id] : NULL;
}

/* The checks on a delivery a reply announced. */
/* A channel is FIFO: a value of a batch is first delivered once every
 * earlier value of its batch was delivered or is gone (values given back
 * return to the head, in their order: they were delivered already). */
static void check_first_delivery(fz_val_t *v, uint32_t serial)
{
    if (v->delivered)
        return;
    v->delivered = true;
    for (uint32_t j = v->batch; j < serial; j++)
        must(fz.val[j].delivered || fz.val[j].gone, "a batch delivered out of order");
}

static void check_delivery(fz_reply_t *x, size_t i, const fz_req_t *q, int ci)
{
    fz_val_t *v = &fz.val[x->serial[i]];
    must(!v->gone, "a value delivered after it was gone");
    check_first_delivery(v, x->serial[i]);
    v->dlv_at = fz.now;   /* its ack deadline is ack_wait from now */
    v->dlv_seq = ++fz.dlv_seq;
    must(v->chan == q->chan[ci], "a value delivered from another channel than it was sent to");
    must(v->len <= q->max_bytes[ci], "a value over the receiver's max_bytes");
    must(x->redelivered[i] == v->redelivered, "a redelivered count that is not the disconnects");
}

static void check_recv_reply(fz_reply_t *x, const fz_req_t *q)
{
    const core_reply_t *r = &x->r;
    if (r->kind == CORE_R_PLAIN)
        return;   /* refused before it waited */
    must(r->kind == CORE_R_RECV, "a receive answered with another kind");
    must(x->ndlv <= (q->max ? q->max : 1), "a receive got more values than its max");
    must((r->status == CORE_ST_OK) == (x->ndlv > 0),
         "a receive answered OK without a value, or with values and an error");
    uint64_t bytes = 0;
    for (size_t i = 0; i < x->ndlv; i++) {
        check_delivery(x, i, q, 0);
        bytes += x->len[i] + 32;
    }
    must(x->ndlv <= 1 || bytes <= fz_limits.max_reply, "a receive's batch over max_reply");
}

/* A sender was told value serial was not taken: a move must not have
 * taken it along (PROTOCOL.md, Send: of the values after `accepted`, none
 * was taken; a client resends them). */
static void told_unsent(uint32_t serial)
{
    must(!fz.val[serial].moved, "a sender told a value was not sent, yet a move took it along");
}

static void check_send_reply(fz_reply_t *x, fz_req_t *q)
{
    const core_reply_t *r = &x->r;
    if (r->kind == CORE_R_PLAIN) {
        must(r->status != CORE_ST_OK, "a send answered OK without a count");
        q->n = 0;   /* refused: nothing taken */
        return;
    }
    must(r->kind == CORE_R_SEND, "a send answered with another kind");
    must(r->accepted <= q->n, "a send accepted more than it carried");
    must(r->status != CORE_ST_OK || r->accepted == q->n, "a send OK without all accepted");
    q->n = r->accepted;   /* from now on: the prefix it claims */
    must(q->lowest_lost >= q->n, "a send claims a value that was dropped");
    for (uint32_t i = q->n; i < q->nvals; i++)
        told_unsent(q->first + i);
}

static void check_select_reply(fz_reply_t *x, const fz_req_t *q)
{
    const core_reply_t *r = &x->r;
    if (r->kind == CORE_R_PLAIN)
        return;
    must(r->kind == CORE_R_SELECT, "a select answered with another kind");
    must(x->ndlv <= 1, "a select with more than one delivery");
    for (size_t i = 0; i < q->ncases; i++)
        if (q->send_case[i] && (r->status != CORE_ST_OK || r->index != (int)i))
            told_unsent(q->serial[i]);
    if (r->index < 0) {
        must(x->ndlv == 0 && r->status != CORE_ST_OK, "no case chosen, yet an answer");
        return;
    }
    must((size_t)r->index < q->ncases, "a select chose a case it does not have");
    if (x->ndlv) {
        must(!q->send_case[r->index] && r->status == CORE_ST_OK,
             "a delivery for a send case, or with an error");
        check_delivery(x, 0, q, r->index);
    } else {
        must(q->send_case[r->index] || r->status != CORE_ST_OK,
             "a receive case chosen OK without a value");
    }
}

/* A send case told OK: its value must not have been dropped unsent
 * (lost_unsent checks what is dropped later). */
static void claim_select_send(fz_req_t *q, int index)
{
    q->ok_send = index;
    const fz_val_t *v = &fz.val[q->serial[index]];
    must(!v->gone || (v->how != NOT_TAKEN && v->how != GIVEN_BACK),
         "a select's send case answered OK, its value dropped");
}

static void note_select_send(const fz_reply_t *x, fz_req_t *q)
{
    if (x->r.kind == CORE_R_SELECT && x->r.status == CORE_ST_OK && x->r.index >= 0 &&
        (size_t)x->r.index < q->ncases && q->send_case[x->r.index])
        claim_select_send(q, x->r.index);
}

static void reply_final(fz_reply_t *x, fz_req_t *q)
{
    switch (q->kind) {
    case STEP_SEND:
        check_send_reply(x, q);
        fz.step_sends_sess[fz.nstep_sends] = x->sess;
        fz.step_sends[fz.nstep_sends++] = x->r.id;
        break;
    case STEP_RECV: check_recv_reply(x, q); break;
    case STEP_SELECT: check_select_reply(x, q); note_select_send(x, q); break;
    default: must(x->ndlv == 0, "deliveries in a plain reply"); break;
    }
    q->state = RQ_DONE;
}

/* A commit's answer is its reservation's: check it as the select's. */
static void reply_to_commit(fz_reply_t *x, fz_req_t *q)
{
    fz_req_t *sel = req_of(x->sess, q->target);
    if (sel && sel->state == RQ_DONE && sel->kind == STEP_SELECT && x->r.kind == CORE_R_SELECT) {
        check_select_reply(x, sel);
    } else if (sel && sel->kind == STEP_SELECT && x->r.kind == CORE_R_PLAIN &&
               x->r.status == CORE_ST_OK) {
        /* a send reservation committed: its value went */
        if (sel->reserved_index >= 0 && sel->send_case[sel->reserved_index])
            claim_select_send(sel, sel->reserved_index);
        must(x->ndlv == 0, "deliveries in a commit's plain answer");
    } else {
        if (q->held && sel->reserved_index >= 0 && sel->send_case[sel->reserved_index])
            told_unsent(sel->serial[sel->reserved_index]);   /* the two-phase send failed */
        must(x->ndlv == 0, "deliveries in a commit's plain answer");
    }
    q->state = RQ_DONE;
}

static void reply_seen(fz_reply_t *x)
{
    fz_req_t *q = req_of(x->sess, x->r.id);
    must(q && q->state != RQ_FREE, "an answer to a request never made");
    if (x->r.status == CORE_ST_RESERVED) {
        must(q->kind == STEP_SELECT && q->state == RQ_OUT, "RESERVED for no waiting select");
        must(x->r.kind == CORE_R_SELECT && x->r.index >= 0 && (size_t)x->r.index < q->ncases,
             "RESERVED without a case");
        q->state = RQ_RESERVED;
        q->reserved_index = x->r.index;
        return;
    }
    must(q->state == RQ_OUT, "a request answered twice, or a reservation answered unasked");
    if (q->kind == STEP_COMMIT)
        reply_to_commit(x, q);
    else
        reply_final(x, q);
}

/* ---- the audit: where every value is ---- */

static void on_value(const core_value_at_t *at, void *arg)
{
    (void)arg;
    uint32_t serial = value_serial(at->val);
    fz_val_t *v = &fz.val[serial];
    if (at->place == CORE_IN_GRAVE)
        return;   /* dropped with its channel (left a buffer): gone already */
    must(v->now_place == AT_NONE, "a value in two places at once");
    must(!v->gone, "a value came back after it was gone");
    must(at->chan == v->chan, "a value in another channel than it was sent to");
    v->now_place = (int)at->place;
    v->now_chan = at->chan;
    v->now_id = at->id;
    v->now_sess = at->sess_ctx ? ((fz_sess_t *)at->sess_ctx)->slot : -1;
    if (at->place != CORE_IN_DELIVERY) {
        const core_value_at_t *l = &fz.walk_last;
        if (at->place != l->place || at->chan != l->chan || at->sess_ctx != l->sess_ctx ||
            at->id != l->id || at->index != l->index) {
            fz.walk_head = fz.walk_pos;   /* a new queue */
            fz.walk_queue++;
        }
        fz.walk_last = *at;
        v->now_pos = fz.walk_pos++;
        v->now_head = fz.walk_head;
        v->now_queue = fz.walk_queue;
    }
    must(at->val->redelivered == v->redelivered, "a redelivered count changed");
}

static bool in_list(const uint64_t *l, size_t n, uint64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (l[i] == x)
            return true;
    return false;
}

static bool chan_in(const core_chan_t *const *l, size_t n, const core_chan_t *ch)
{
    for (size_t i = 0; i < n; i++)
        if (l[i] == ch)
            return true;
    return false;
}

static bool chan_gone(const core_chan_t *ch)
{
    return !chan_in(fz.live_chans, fz.nlive_chans, ch);
}

/* Was ch deleted in this step? */
static bool chan_deleted_now(const core_chan_t *ch)
{
    return ch && chan_in(fz.live_before, fz.nlive_before, ch) && chan_gone(ch);
}

/* The send v came from was told it was not taken: the prefix ends before. */
static void lost_unsent(fz_val_t *v)
{
    fz_req_t *q = req_of(v->sess, v->req);
    if (!q || (q->kind != STEP_SEND && q->kind != STEP_SELECT))
        return;   /* its session went: nobody was told anything */
    told_unsent((uint32_t)(v - fz.val));
    if (v->seq < q->lowest_lost)
        q->lowest_lost = v->seq;
    if (q->state != RQ_DONE)
        return;   /* its answer is checked when it comes */
    if (q->kind == STEP_SEND)
        must(v->seq >= q->n, "a send claims a value that was dropped");
    else
        must(q->ok_send < 0 || &fz.val[q->serial[q->ok_send]] != v,
             "a select's send case answered OK, its value dropped");
}

/* Was v, delivered before this step, given back in it? */
static bool given_back_now(const fz_val_t *v)
{
    return v->place == CORE_IN_DELIVERY &&
           (v->expired || (v->at_sess == fz.step_sess &&
                            (fz.step_dropped || in_list(fz.step_given, fz.nstep_given, v->at_id))));
}

/* v was somewhere after the last step and is nowhere now: why? */
static enum gone_how value_left(fz_val_t *v)
{
    if (v->place == AT_NONE && v->made_by != MADE_SENT) {
        /* adopted in this step: accepted at once, gone only with a
         * channel this step dropped */
        must(chan_in(fz.dropped, fz.ndropped, v->chan), "an adopted value vanished");
        return WITH_CHAN;
    }
    switch (v->place) {
    case AT_NONE:      /* refused at the door, or dropped before it left */
    case CORE_IN_SENDER:
        if (chan_deleted_now(v->chan))
            return WITH_CHAN;   /* unsent, or buffered and then dropped */
        lost_unsent(v);
        return NOT_TAKEN;
    case CORE_IN_BUFFER:
        must(chan_gone(v->at_chan), "a buffered value vanished from a channel still there");
        return WITH_CHAN;
    case CORE_IN_DELIVERY:
        if (v->at_sess == fz.step_sess && in_list(fz.step_acked, fz.nstep_acked, v->at_id))
            return ACKED;
        must(given_back_now(v), "a delivered value vanished: neither acknowledged nor given back");
        if (chan_gone(v->at_chan))
            return WITH_CHAN;
        lost_unsent(v);   /* its sender could take it back no more */
        return GIVEN_BACK;
    }
    return KEPT;
}

/* Values given back together go back to the head of their channel (its
 * buffer, or their sender's queue), in the order they were delivered
 * (PROTOCOL.md section 6): those still there after the step lead their
 * queue, in delivery order. */
static void check_given_back_order(void)
{
    for (uint32_t i = 0; i < fz.nback; i++) {
        const fz_val_t *a = &fz.val[fz.back[i]];
        uint32_t ahead = 0;
        for (uint32_t j = 0; j < fz.nback; j++) {
            const fz_val_t *b = &fz.val[fz.back[j]];
            if (j == i || b->now_queue != a->now_queue)
                continue;
            must((fz.back_dlv[j] < fz.back_dlv[i]) == (b->now_pos < a->now_pos),
                 "values given back together are not in their delivery order");
            ahead += b->now_pos < a->now_pos;
        }
        must(a->now_pos - a->now_head == ahead, "values given back are not at the head");
    }
}

static void audit(void)
{
    memset(&fz.walk_last, 0, sizeof fz.walk_last);
    fz.walk_last.place = CORE_IN_DELIVERY;
    fz.walk_pos = fz.walk_head = fz.walk_queue = 0;
    fz.nback = 0;
    for (uint32_t k = 0; k < fz.nlive; k++)
        fz.val[fz.live[k]].now_place = AT_NONE;
    const char *bad = core_audit(fz.core, on_value, NULL);
    if (bad)
        fail(bad);
    uint32_t live = 0;
    for (uint32_t k = 0; k < fz.nlive; k++) {
        fz_val_t *v = &fz.val[fz.live[k]];
        if (v->now_place == AT_NONE) {
            v->how = value_left(v);
            v->gone = true;
            fz.ledger[v->how]++;
            continue;
        }
        if (v->now_place == CORE_IN_SENDER)
            must(v->place == AT_NONE || v->place == CORE_IN_SENDER || v->place == CORE_IN_DELIVERY,
                 "a value went back to its sender from a buffer");
        if (v->now_place != CORE_IN_DELIVERY && given_back_now(v)) {
            fz.back[fz.nback] = fz.live[k];
            fz.back_dlv[fz.nback++] = v->dlv_seq;
        }
        v->place = v->now_place;
        v->at_chan = v->now_chan;
        v->at_id = v->now_id;
        v->at_sess = v->now_sess;
        fz.live[live++] = fz.live[k];
    }
    fz.nlive = live;
    check_given_back_order();
    for (uint32_t k = 0; k < fz.nlive; k++)
        fz.val[fz.live[k]].expired = false;
    must(fz.nval == live + fz.ledger[ACKED] + fz.ledger[NOT_TAKEN] + fz.ledger[WITH_CHAN] +
                        fz.ledger[GIVEN_BACK],
         "the ledger does not balance");
    must(fz.nval == fz.made[MADE_SENT] + fz.made[MADE_ADOPTED] + fz.made[MADE_COPY],
         "values made that the ledger does not know");
}

/* A send's answer counts a prefix of its batch; of the rest none was taken
 * (PROTOCOL.md, Send; the one exception, a later value acknowledged, is
 * gone too): once answered, no value after the prefix is left in the core. */
static void check_sends_answered(void)
{
    for (size_t k = 0; k < fz.nstep_sends; k++) {
        const fz_req_t *q = req_of(fz.step_sends_sess[k], fz.step_sends[k]);
        for (uint32_t i = q->n; i < q->nvals; i++)
            must(fz.val[q->first + i].gone, "a send answered without a value that stays taken");
    }
}

/* A move put these values into its new channel: they are its whole
 * buffer, in the order listed, with the counts listed (the audit checked
 * each count against the ledger's). */
static void check_moved(void)
{
    if (!fz.move_to)
        return;
    for (size_t k = 0; k < fz.nmoved; k++) {
        const fz_val_t *v = &fz.val[fz.moved[k]];
        if (fz.move_dropped_again) {
            must(v->gone && v->how == WITH_CHAN, "a value outlived the adopted channel dropped");
            continue;
        }
        must(!v->gone && v->place == CORE_IN_BUFFER && v->at_chan == fz.move_to,
             "a moved value is not in the new channel's buffer");
        must(v->now_pos == v->now_head + k, "moved values are not in the order listed");
    }
    if (!fz.move_dropped_again) {
        core_chan_info_t info;
        core_chan_info(fz.move_to, &info);
        must(info.len == fz.nmoved, "a moved channel holds values that were not moved");
    }
}

/* Every delivery announced in this step is where the reply said. */
static void check_deliveries_placed(void)
{
    for (size_t k = 0; k < fz.nreplies; k++) {
        fz_reply_t *x = &fz.replies[k];
        for (size_t i = 0; i < x->ndlv; i++) {
            fz_val_t *v = &fz.val[x->serial[i]];
            if (x->sess == fz.step_sess && (fz.step_dropped || fz.nstep_given))
                continue;   /* it may have been given back since */
            must(v->place == CORE_IN_DELIVERY && v->at_sess == x->sess && v->at_id == x->dlv[i],
                 "a delivery is not where its reply said");
        }
    }
}

/* ---- steps ---- */

static const char *const fixed_names[NFIXED] = { "a", "b", "c" };

static core_bytes_t name_pick(fz_in_t *in)
{
    uint8_t b = fz_u8(in);
    size_t n = NFIXED + (fz.ntemps < NTEMPS ? fz.ntemps : NTEMPS);
    const char *s = b % n < NFIXED ? fixed_names[b % n] : fz.temps[b % n - NFIXED];
    return (core_bytes_t){ (const uint8_t *)s, strlen(s) };
}

static int64_t timeout_pick(fz_in_t *in)
{
    uint8_t b = fz_u8(in);
    if (b < 64)
        return 0;
    if (b < 128)
        return -1;
    return (int64_t)(b & 63) * 10;
}

static fz_req_t *req_new(fz_sess_t *t, int kind, uint64_t *id)
{
    if (t->next_id >= MAXIDS)
        return NULL;
    *id = t->next_id++;
    fz_req_t *q = &t->req[*id];
    memset(q, 0, sizeof *q);
    q->state = RQ_OUT;
    q->kind = kind;
    q->lowest_lost = UINT32_MAX;
    q->ok_send = -1;
    return q;
}

/* A new live value of channel ch, made `how`: its serial (the rest of its
 * record zeroed, for the caller to fill in). */
static uint32_t val_make(const core_chan_t *ch, uint32_t len, enum made_how how)
{
    uint32_t serial = fz.nval++;
    fz_val_t *v = &fz.val[serial];
    memset(v, 0, sizeof *v);
    v->made = true;
    v->made_by = how;
    v->place = AT_NONE;
    v->chan = ch;
    v->len = len;
    fz.made[how]++;
    fz.live[fz.nlive++] = serial;
    return serial;
}

static uint32_t val_new(fz_sess_t *t, uint64_t id, uint32_t seq, const core_chan_t *ch,
                        uint32_t len)
{
    uint32_t serial = val_make(ch, len, MADE_SENT);
    fz_val_t *v = &fz.val[serial];
    v->sess = t->slot;
    v->req = id;
    v->seq = seq;
    v->batch = serial - seq;
    return serial;
}

static void step_open(fz_sess_t *t, fz_in_t *in)
{
    uint64_t id;
    core_bytes_t name = name_pick(in);
    uint8_t f = fz_u8(in);
    if (!req_new(t, STEP_OPEN, &id))
        return;
    bool temp = f & 8;
    if (temp && (f & 16))
        name.len = 0;   /* the core picks a name */
    core_open(t->s, id, name, f & 4, f & 3, temp, f & 32);
}

static void step_send(fz_sess_t *t, fz_in_t *in)
{
    uint64_t id;
    core_bytes_t name = name_pick(in);
    uint8_t b = fz_u8(in);
    size_t n = b % 8;   /* 0 and 7 are refused */
    int64_t timeout = timeout_pick(in);
    if (fz.nval + n > MAXVALS)
        return;
    fz_req_t *q = req_new(t, STEP_SEND, &id);
    if (!q)
        return;
    const core_chan_t *ch = core_find(fz.core, name);
    core_bytes_t vals[8];
    uint8_t bytes[8][64];
    q->n = q->nvals = (uint32_t)n;
    q->first = fz.nval;
    q->chan[0] = ch;
    for (size_t i = 0; i < n; i++) {
        uint32_t len = 4 + fz_u8(in) % 48;   /* 51 > max_value: refused */
        uint32_t serial = val_new(t, id, (uint32_t)i, ch, len);
        vals[i] = (core_bytes_t){ bytes[i], value_make(serial, len, bytes[i]) };
    }
    core_send(t->s, id, name, vals, n, timeout, fz.now);
}

static void step_recv(fz_sess_t *t, fz_in_t *in)
{
    uint64_t id;
    core_bytes_t name = name_pick(in);
    uint8_t m = fz_u8(in), mb = fz_u8(in);
    int64_t timeout = timeout_pick(in);
    fz_req_t *q = req_new(t, STEP_RECV, &id);
    if (!q)
        return;
    q->max = m % 8;   /* 7 is over max_batch */
    q->max_bytes[0] = mb >= 128 ? UINT64_MAX : mb % 64;
    q->chan[0] = core_find(fz.core, name);
    q->ncases = 1;
    core_recv(t->s, id, name, q->max, q->max_bytes[0], timeout, fz.now);
}

static void step_select(fz_sess_t *t, fz_in_t *in)
{
    uint64_t id;
    uint8_t b = fz_u8(in);
    size_t n = b % MAXCASES;
    if (fz.nval + n > MAXVALS)
        return;
    fz_req_t *q = req_new(t, STEP_SELECT, &id);
    if (!q)
        return;
    core_case_req_t cases[MAXCASES];
    uint8_t bytes[MAXCASES][64];
    q->ncases = n;
    for (size_t i = 0; i < n; i++) {
        core_case_req_t *c = &cases[i];
        memset(c, 0, sizeof *c);
        c->name = name_pick(in);
        uint8_t k = fz_u8(in);
        c->send = k & 1;
        q->chan[i] = core_find(fz.core, c->name);
        q->send_case[i] = c->send;
        q->max_bytes[i] = c->max_bytes = k & 2 ? UINT64_MAX : (k >> 2) % 64;
        if (c->send) {
            uint32_t len = 4 + (k >> 2) % 48;
            q->serial[i] = val_new(t, id, 0, q->chan[i], len);
            c->value = (core_bytes_t){ bytes[i], value_make(q->serial[i], len, bytes[i]) };
        }
    }
    bool reserve = b & 8, in_order = b & 16;
    uint64_t prio = (b >> 5) & 3;
    core_select(t->s, id, cases, n, reserve, prio, in_order, timeout_pick(in), fz.now);
}

static void step_named(fz_sess_t *t, fz_in_t *in, int kind)
{
    uint64_t id;
    core_bytes_t name = name_pick(in);
    if (!req_new(t, kind, &id))
        return;
    if (kind == STEP_CLOSE)
        core_close(t->s, id, name);
    else
        core_delete(t->s, id, name);
}

/* A delivery id of this session from the audit's view, or a stray one. */
static uint64_t dlv_pick(fz_sess_t *t, uint8_t b)
{
    uint64_t ids[MAXVALS];
    size_t n = 0;
    for (uint32_t k = 0; k < fz.nlive; k++) {
        fz_val_t *v = &fz.val[fz.live[k]];
        if (v->place == CORE_IN_DELIVERY && v->at_sess == t->slot)
            ids[n++] = v->at_id;
    }
    if ((b & 0x80) || n == 0)
        return b & 0x7f;   /* perhaps unknown */
    return ids[b % n];
}

static void step_ack(fz_sess_t *t, fz_in_t *in)
{
    uint64_t d = dlv_pick(t, fz_u8(in));
    bool known = core_ack(t->s, d);
    if (known)
        fz.step_acked[fz.nstep_acked++] = d;
    if (tracing())
        fprintf(stderr, "  ack delivery %llu%s\n", (unsigned long long)d, known ? "" : " (unknown)");
}

static void step_nack(fz_sess_t *t, fz_in_t *in)
{
    size_t n = fz_u8(in) % 5;
    for (size_t i = 0; i < n; i++)
        fz.step_given[fz.nstep_given++] = dlv_pick(t, fz_u8(in));
    size_t named = core_nack_all(t->s, fz.step_given, n);
    if (tracing()) {
        fprintf(stderr, "  nack");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %llu", (unsigned long long)fz.step_given[i]);
        fprintf(stderr, ": %zu known\n", named);
    }
}

/* A target request id: one of ours in the wanted state, or any id. */
static uint64_t target_pick(fz_sess_t *t, uint8_t b, enum rq_state want)
{
    uint64_t ids[MAXIDS];
    size_t n = 0;
    for (uint64_t id = 1; id < t->next_id; id++)
        if (t->req[id].state == want)
            ids[n++] = id;
    if ((b & 0x80) || n == 0)
        return b & 0x7f;
    return ids[b % n];
}

static void step_target(fz_sess_t *t, fz_in_t *in, int kind)
{
    uint64_t id;
    uint8_t b = fz_u8(in), tb = fz_u8(in);
    uint64_t target = target_pick(t, b, kind == STEP_CANCEL ? RQ_OUT : RQ_RESERVED);
    fz_req_t *q = req_new(t, kind, &id);
    if (!q)
        return;
    q->target = target;
    fz_req_t *tq = req_of(t->slot, target);
    bool reserved = tq && tq->state == RQ_RESERVED;
    q->held = reserved;
    if (kind == STEP_CANCEL) {
        core_cancel(t->s, id, target);
        return;
    }
    size_t before = fz.nreplies;
    if (reserved)
        tq->state = RQ_DONE;   /* answered through the commit, or gone by release */
    if (kind == STEP_COMMIT)
        core_commit(t->s, id, target, tb & 1, (int64_t)(tb >> 1) * 10 - 100, fz.now);
    else
        core_release(t->s, id, target);
    for (size_t k = before; k < fz.nreplies; k++) {
        const core_reply_t *r = &fz.replies[k].r;
        if (fz.replies[k].sess == t->slot && r->id == id && r->status == CORE_ST_NOT_FOUND)
            must(!reserved, "a reservation the core had answered RESERVED is not found");
    }
}

static void sess_open(int slot)
{
    fz_sess_t *t = &fz.sess[slot];
    t->slot = slot;
    t->next_id = 1;   /* req[id] is set by req_new before any use */
    t->s = core_sess_new(fz.core, t);
}

static void step_drop(fz_sess_t *t)
{
    /* values it held come back redelivered */
    for (uint32_t k = 0; k < fz.nlive; k++) {
        fz_val_t *v = &fz.val[fz.live[k]];
        if (v->place == CORE_IN_DELIVERY && v->at_sess == t->slot)
            v->redelivered++;
        if (v->sess == t->slot)
            v->req = 0;   /* what it sent is nobody's now: no answer judges it */
    }
    fz.step_dropped = true;
    core_sess_drop(t->s);
    sess_open(t->slot);
}

/* Time passes: deadlines expire, and deliveries unacknowledged for
 * ack_wait go back, marked redelivered, as if their receivers had gone. */
static void step_time(fz_in_t *in)
{
    uint8_t b = fz_u8(in);
    fz.now += b < 128 ? b : (int64_t)(b - 127) * 100;
    for (uint32_t k = 0; k < fz.nlive; k++) {
        fz_val_t *v = &fz.val[fz.live[k]];
        if (v->place == CORE_IN_DELIVERY && v->dlv_at + fz_limits.ack_wait <= fz.now) {
            v->expired = true;
            v->redelivered++;
        }
    }
    core_expire(fz.core, fz.now);
}

/* ---- moving channels (chand_slots.c) ---- */

static core_bytes_t fixed_pick(fz_in_t *in)
{
    const char *s = fixed_names[fz_u8(in) % NFIXED];
    return (core_bytes_t){ (const uint8_t *)s, strlen(s) };
}

/* A value the harness adopts: made, accepted at once into ch. */
static uint32_t val_adopted(const core_chan_t *ch, uint32_t batch, uint32_t len,
                            uint32_t redelivered, enum made_how how)
{
    uint32_t serial = val_make(ch, len, how);
    fz_val_t *v = &fz.val[serial];
    v->sess = -1;   /* nobody's: no answer judges it */
    v->seq = serial - batch;
    v->batch = batch;   /* adopted together: delivered first in order */
    v->redelivered = redelivered;
    return serial;
}

static void adopt_val(core_chan_t *ch, uint32_t serial)
{
    uint8_t bytes[64];
    const fz_val_t *v = &fz.val[serial];
    core_adopt_val(ch, (core_bytes_t){ bytes, value_make(serial, v->len, bytes) }, v->redelivered);
}

static void note_dropped(const core_chan_t *ch)
{
    if (fz.ndropped < sizeof fz.dropped / sizeof fz.dropped[0])
        fz.dropped[fz.ndropped++] = ch;
}

/* core_evict: every op waiting on the channel is answered MOVED (step_end
 * checks the answers), nothing is left waiting, and the count returned is
 * at least the answers given now (a send with values out to receivers is
 * answered once they are settled). */
static void evict(core_bytes_t name)
{
    const core_chan_t *ch = core_find(fz.core, name);
    size_t before = fz.nreplies;
    fz.step_moves = true;
    fz.evicted = ch;
    size_t n = core_evict(fz.core, name, CORE_ST_MOVED);
    if (tracing())
        fprintf(stderr, "  evicted %zu ops\n", n);
    must(fz.nreplies - before <= n, "core_evict answered more ops than it counts");
    if (!ch) {
        must(n == 0, "core_evict found ops on no channel");
        return;
    }
    core_chan_info_t info;
    core_chan_info(ch, &info);
    must(!info.senders && !info.receivers, "an op still waits on a channel after core_evict");
}

static void step_evict(fz_in_t *in)
{
    evict(fixed_pick(in));
}

/* What waits on the moved channel answers MOVED, and nothing else answers:
 * blocked sends and receives, selects, and commits (a committed two-phase
 * exchange waiting for its partner, or whose value came back to its
 * sender's queue, is answered through its Commit). */
static void check_moved_reply(const fz_reply_t *x)
{
    must(x->r.status == CORE_ST_MOVED, "a move answered something else than MOVED");
    const fz_req_t *q = req_of(x->sess, x->r.id);
    if (q && q->kind == STEP_COMMIT && q->state == RQ_OUT)
        q = req_of(x->sess, q->target);
    must(q && (q->kind == STEP_SEND || q->kind == STEP_RECV || q->kind == STEP_SELECT),
         "MOVED to a request that was not waiting");
    bool on = false;
    for (size_t i = 0; i < (q->kind == STEP_SELECT ? q->ncases : 1); i++)
        on |= q->chan[i] == fz.evicted;
    must(on, "MOVED to a request that waits on another channel");
}

/* The core's walk of the values of one channel, as a move lists them. */
struct chan_walk {
    const core_chan_t *ch;
    uint32_t dlv[MAXVALS], buf[MAXVALS];
    size_t ndlv, nbuf;
};

static void on_chan_value(const core_value_at_t *at, void *arg)
{
    struct chan_walk *w = arg;
    if (at->chan != w->ch || at->place == CORE_IN_GRAVE)
        return;
    uint32_t serial = value_serial(at->val);
    if (at->place == CORE_IN_SENDER) {
        /* only a two-phase send whose partner was evicted: its commit is
         * answered RETRY or CLOSED, nothing is sent */
        const fz_req_t *q = at->sess_ctx ? req_of(((fz_sess_t *)at->sess_ctx)->slot, at->id) : NULL;
        must(q && q->state == RQ_RESERVED, "a sender waits on a settled channel");
        return;
    }
    if (at->place == CORE_IN_BUFFER) {
        w->buf[w->nbuf++] = serial;
        return;
    }
    /* deliveries, oldest first */
    size_t i = w->ndlv++;
    while (i && fz.val[w->dlv[i - 1]].dlv_seq > fz.val[serial].dlv_seq) {
        w->dlv[i] = w->dlv[i - 1];
        i--;
    }
    w->dlv[i] = serial;
}

struct listing {
    uint32_t serial[MAXVALS], redelivered[MAXVALS];
    size_t n;
};

static void on_listed(void *arg, core_bytes_t data, uint32_t redelivered)
{
    struct listing *l = arg;
    must(l->n < MAXVALS, "core_chan_values lists more values than were made");
    l->serial[l->n] = bytes_serial(data.data, data.len);
    l->redelivered[l->n++] = redelivered;
}

/* A settled channel holds nothing but its buffer and its deliveries (none
 * if unbuffered); core_chan_values lists them, deliveries first in the
 * order they were made and counted one more redelivery, then the buffer. */
static void check_listing(const core_chan_t *ch, const struct listing *l, uint64_t cap)
{
    static struct chan_walk w;
    w.ch = ch;
    w.ndlv = w.nbuf = 0;
    const char *bad = core_audit(fz.core, on_chan_value, &w);
    if (bad)
        fail(bad);
    must(cap || !w.ndlv, "an unbuffered channel settled with a value out");
    must(l->n == w.ndlv + w.nbuf, "core_chan_values lists another number of values");
    for (size_t k = 0; k < l->n; k++) {
        uint32_t serial = k < w.ndlv ? w.dlv[k] : w.buf[k - w.ndlv];
        must(l->serial[k] == serial, "core_chan_values lists the values in another order");
        must(l->redelivered[k] == fz.val[serial].redelivered + (k < w.ndlv),
             "core_chan_values lists a wrong redelivered count");
    }
}

/* Not settled: something must hold the channel (an op waiting, a
 * reservation, a value out whose sender waits for its ack: its send is not
 * answered yet, or its session went), or a move would wait forever. */
static void check_unsettled(const core_chan_t *ch)
{
    core_chan_info_t info;
    core_chan_info(ch, &info);
    if (info.senders || info.receivers)
        return;
    for (int s = 0; s < NSESS; s++)
        for (uint64_t id = 1; id < fz.sess[s].next_id; id++) {
            const fz_req_t *q = &fz.sess[s].req[id];
            if (q->state == RQ_RESERVED && q->chan[q->reserved_index] == ch)
                return;
        }
    for (uint32_t k = 0; k < fz.nlive; k++) {
        const fz_val_t *v = &fz.val[fz.live[k]];
        const fz_req_t *q = v->made_by == MADE_SENT ? req_of(v->sess, v->req) : NULL;
        if (v->place == CORE_IN_DELIVERY && v->at_chan == ch && v->made_by == MADE_SENT &&
            (!q || q->state != RQ_DONE || q->kind == STEP_SELECT))
            return;
    }
    fail("a channel is not settled, with nothing on it to wait for");
}

/* Adopt the listed values into channel name (capacity cap), as one part
 * or as two (the second adopts the channel again: the core appends), the
 * way the new group's primary does. */
static core_chan_t *adopt_all(core_bytes_t name, uint64_t cap, bool closed, bool split)
{
    core_chan_t *ch = core_adopt_chan(fz.core, name, cap);
    must(ch != NULL, "core_adopt_chan refused a free name");
    must(core_find(fz.core, name) == ch, "an adopted channel is not found by its name");
    core_chan_info_t info;
    core_chan_info(ch, &info);
    must(info.cap == cap && !info.closed && !info.temp && !info.len && !info.senders &&
         !info.receivers && !info.inflight, "core_adopt_chan made a channel not new");
    size_t half = split ? fz.nmoved / 2 : fz.nmoved;
    for (size_t k = 0; k < half; k++)
        adopt_val(ch, fz.moved[k]);
    if (split) {
        /* the part ends with the channel open; the next part names it
         * again (with another capacity here: the channel keeps its own) */
        core_adopt_end(ch, false);
        core_chan_t *again = core_adopt_chan(fz.core, name, cap + 1);
        must(again == ch, "core_adopt_chan of an adopted channel's name made another");
        core_chan_info(ch, &info);
        must(info.cap == cap && !info.closed && info.len == half,
             "core_adopt_chan changed a channel it was given again");
        for (size_t k = half; k < fz.nmoved; k++)
            adopt_val(ch, fz.moved[k]);
    }
    core_adopt_end(ch, closed);
    core_chan_info(ch, &info);
    must(info.len == fz.nmoved && info.closed == closed && !info.inflight,
         "an adopted channel holds another number of values, or is not closed as asked");
    return ch;
}

/* A move of one channel out and back in: with f & 1 its ops are evicted
 * first; if it is settled its values are listed, it is dropped, and a
 * channel of the same name and capacity adopts them (f & 2: in two parts;
 * f & 4: after an attempt dropped again; f & 8: and that one is dropped
 * too, as when the move fails for good).  What was buffered is the new
 * channel's; what was out to a receiver stays out (on the old channel, to
 * be acknowledged or dropped) and its copy, one more redelivery, leads the
 * new buffer as a value of its own. */
static void step_move(fz_in_t *in)
{
    core_bytes_t name = name_pick(in);
    uint8_t f = fz_u8(in);
    const core_chan_t *ch = core_find(fz.core, name);
    if (!ch) {
        must(!core_drop(fz.core, name, CORE_ST_MOVED), "core_drop of no channel");
        return;
    }
    core_chan_info_t info;
    core_chan_info(ch, &info);
    if (info.temp) {
        /* temporary channels never move */
        must(!core_drop(fz.core, name, CORE_ST_MOVED), "core_drop of a temporary channel");
        must(!core_adopt_chan(fz.core, name, info.cap), "core_adopt_chan of a temporary name");
        must(core_find(fz.core, name) == ch, "a temporary channel went in a move");
        return;
    }
    if (f & 1) {
        evict(name);
        core_chan_info(ch, &info);
    }
    if (!core_chan_settled(ch)) {
        check_unsettled(ch);
        return;
    }
    must(!info.senders && !info.receivers, "a channel settled with ops waiting");
    static struct listing l;
    l.n = 0;
    core_chan_values(ch, on_listed, &l);
    check_listing(ch, &l, info.cap);
    size_t copies = 0;
    for (size_t k = 0; k < l.n; k++)
        copies += fz.val[l.serial[k]].place == CORE_IN_DELIVERY;
    if (fz.nval + copies > MAXVALS)
        return;
    /* the new channel's values: the buffered ones themselves, a copy of
     * each one out */
    uint32_t batch = fz.nval;
    fz.nmoved = 0;
    for (size_t k = 0; k < l.n; k++) {
        fz_val_t *v = &fz.val[l.serial[k]];
        uint32_t serial = l.serial[k];
        if (v->place == CORE_IN_DELIVERY)
            serial = val_adopted(NULL, batch, v->len, l.redelivered[k], MADE_COPY);
        fz.moved[fz.nmoved++] = serial;
    }
    fz.step_moves = true;
    fz.evicted = ch;
    must(core_drop(fz.core, name, CORE_ST_MOVED), "core_drop of a channel there");
    note_dropped(ch);
    must(!core_find(fz.core, name), "a channel dropped is still found");
    core_chan_t *to = adopt_all(name, info.cap, info.closed, f & 2);
    if (f & 4) {
        /* that attempt failed: the next one drops what it left first */
        must(core_drop(fz.core, name, CORE_ST_MOVED), "core_drop of an adopted channel");
        note_dropped(to);
        to = adopt_all(name, info.cap, info.closed, f & 2);
    }
    if (f & 8) {
        must(core_drop(fz.core, name, CORE_ST_MOVED), "core_drop of an adopted channel");
        note_dropped(to);
        fz.move_dropped_again = true;
    }
    if (tracing())
        fprintf(stderr, "  moved %zu values (%zu copies)%s\n", fz.nmoved, copies,
                fz.move_dropped_again ? ", dropped again" : "");
    fz.move_to = to;
    for (size_t k = 0; k < fz.nmoved; k++)
        fz.val[fz.moved[k]].chan = to;
    for (size_t k = 0; k < l.n && !fz.move_dropped_again; k++)
        if (fz.val[l.serial[k]].place == CORE_IN_DELIVERY)
            fz.val[l.serial[k]].moved = true;   /* its copy lives on */
}

/* New values adopted into a channel (made with the capacity f asks if
 * absent; a temporary channel's name is refused, and values never go into
 * an unbuffered channel, as chand_slots.c checks), and closed if f asks:
 * they are the channel's, behind what it had, handed to its waiting
 * receivers at once. */
static void step_adopt(fz_in_t *in)
{
    core_bytes_t name = name_pick(in);
    uint8_t f = fz_u8(in);
    size_t n = f & 7;
    uint64_t cap = 1 + (f >> 3 & 3) % fz_limits.max_cap;
    bool closed = f & 0x80;
    uint8_t lens[8];
    for (size_t i = 0; i < n; i++)
        lens[i] = fz_u8(in);
    if (fz.nval + n > MAXVALS)
        return;
    const core_chan_t *old = core_find(fz.core, name);
    core_chan_info_t info;
    if (old)
        core_chan_info(old, &info);
    core_chan_t *ch = core_adopt_chan(fz.core, name, cap);
    if (old && info.temp) {
        must(!ch, "core_adopt_chan of a temporary name");
        return;
    }
    must(ch && (!old || ch == old), "core_adopt_chan made another channel for a name taken");
    bool was_closed = old && info.closed;
    if (old)
        cap = info.cap;
    core_chan_info(ch, &info);
    must(info.cap == cap, "core_adopt_chan changed a channel's capacity");
    if (!cap)
        n = 0;
    uint32_t batch = fz.nval;
    for (size_t i = 0; i < n; i++) {
        uint32_t len = 4 + (lens[i] & 63) % 45;
        adopt_val(ch, val_adopted(ch, batch, len, lens[i] >> 6, MADE_ADOPTED));
    }
    core_adopt_end(ch, closed);
    core_chan_info(ch, &info);
    must(info.closed == (closed || was_closed), "core_adopt_end closed a channel or did not");
}

static void note_live_chans(const core_chan_t *ch, void *arg)
{
    (void)arg;
    if (fz.nlive_chans < sizeof fz.live_chans / sizeof fz.live_chans[0])
        fz.live_chans[fz.nlive_chans++] = ch;
}

static void note_live_before(const core_chan_t *ch, void *arg)
{
    (void)arg;
    if (fz.nlive_before < sizeof fz.live_before / sizeof fz.live_before[0])
        fz.live_before[fz.nlive_before++] = ch;
}

/* After the step: its replies, then the audit. */
static void step_end(void)
{
    fz.nlive_chans = 0;
    core_each_chan(fz.core, note_live_chans, NULL);
    for (size_t k = 0; k < fz.nreplies; k++) {
        if (fz.step_moves)
            check_moved_reply(&fz.replies[k]);
        reply_seen(&fz.replies[k]);
    }
    audit();
    check_deliveries_placed();
    check_sends_answered();
    check_moved();
}

static void step_begin(int slot)
{
    fz.nreplies = 0;
    fz.step_sess = slot;
    fz.step_dropped = false;
    fz.nstep_acked = fz.nstep_given = 0;
    fz.nstep_sends = 0;
    fz.ndropped = 0;
    fz.move_to = NULL;
    fz.nmoved = 0;
    fz.move_dropped_again = false;
    fz.step_moves = false;
    fz.evicted = NULL;
    fz.nlive_before = 0;
    core_each_chan(fz.core, note_live_before, NULL);
}

static void step(fz_in_t *in)
{
    uint8_t b = fz_u8(in);
    fz_sess_t *t = &fz.sess[b & 3];
    step_begin(b & 3);
    if (tracing())
        fprintf(stderr, "step: session %d, kind %d, next id %llu, now %lld\n", b & 3,
                (b >> 2) % STEP_KINDS, (unsigned long long)t->next_id, (long long)fz.now);
    switch ((b >> 2) % STEP_KINDS) {
    case STEP_OPEN: step_open(t, in); break;
    case STEP_SEND: step_send(t, in); break;
    case STEP_RECV: step_recv(t, in); break;
    case STEP_SELECT: step_select(t, in); break;
    case STEP_CLOSE: step_named(t, in, STEP_CLOSE); break;
    case STEP_DELETE: step_named(t, in, STEP_DELETE); break;
    case STEP_ACK: step_ack(t, in); break;
    case STEP_NACK: step_nack(t, in); break;
    case STEP_CANCEL: step_target(t, in, STEP_CANCEL); break;
    case STEP_COMMIT: step_target(t, in, STEP_COMMIT); break;
    case STEP_RELEASE: step_target(t, in, STEP_RELEASE); break;
    case STEP_DROP: step_drop(t); break;
    case STEP_TIME: step_time(in); break;
    case STEP_EVICT: step_evict(in); break;
    case STEP_MOVE: step_move(in); break;
    case STEP_ADOPT: step_adopt(in); break;
    }
    step_end();
}

/* The end: every blocked request answered SHUTTING_DOWN, then everything
 * freed; what the sessions held may be dropped from now on. */
static void shutdown_all(void)
{
    step_begin(-1);
    for (int s = 0; s < NSESS; s++)
        for (uint64_t id = 1; id < fz.sess[s].next_id; id++)
            if (fz.sess[s].req[id].state == RQ_RESERVED)
                fz.sess[s].req[id].state = RQ_OUT;   /* answered now */
    core_shutdown(fz.core);
    for (size_t k = 0; k < fz.nreplies; k++) {
        must(fz.replies[k].ndlv == 0, "a shutdown answer carries values");
        reply_seen(&fz.replies[k]);
    }
    fz.nreplies = 0;
    const char *bad = core_audit(fz.core, NULL, NULL);
    if (bad)
        fail(bad);
    for (int s = 0; s < NSESS; s++)
        core_sess_drop(fz.sess[s].s);
    bad = core_audit(fz.core, NULL, NULL);
    if (bad)
        fail(bad);
    core_free(fz.core);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the big tables are set entry by entry as they are used */
    fz.nval = fz.nlive = 0;
    fz.dlv_seq = 0;
    fz.ntemps = 0;
    fz.now = 0;
    memset(fz.ledger, 0, sizeof fz.ledger);
    memset(fz.made, 0, sizeof fz.made);
    fz_in_t in = fz_in(data, size);
    fz.core = core_new(&fz_limits, on_reply);
    core_seed(fz.core, fz_uint(&in, 2) + 1);
    for (int s = 0; s < NSESS; s++)
        sess_open(s);
    while (fz_left(&in))
        step(&in);
    shutdown_all();
    return 0;
}

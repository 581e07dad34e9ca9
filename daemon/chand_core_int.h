/*
 * chand_core_int.h - the inside of chand's channel core, shared by its
 * files and by nothing else (the API is chand_core.h): the data structures,
 * and the helpers more than one of the core's files calls.
 *
 *   chand_core.c          the core's life, channels, sessions, the requests,
 *                         time and shutdown
 *   chand_core_match.c    the exchange: ops and their cases, deliveries and
 *                         their acknowledgements, corei_pump() and
 *                         reservations; the invariants are stated at its top
 *   chand_core_state.c    the journaled state (reported, restored, dumped)
 *                         and channels moving to another group of a cluster
 *   chand_core_inspect.c  stats, scans, and the audit of the invariants
 *
 * Shared functions are named corei_*.  The small ones are static inline
 * here, so that the requests in one file inline them as the exchange in
 * another does; the others are defined in the file named above their
 * declarations, with hidden visibility (never exported, and the compiler
 * may still inline them within their file under -fPIC).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_CORE_INT_H
#define CHAND_CORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chan_heap.h"
#include "chand_alloc.h"
#include "chand_core.h"
#include "chand_hash.h"
#include "chand_idwin.h"
#include "chand_list.h"

/* ------------------------------------------------------------------------
 * Data
 * ------------------------------------------------------------------------ */

typedef struct core_op core_op_t;
typedef struct core_case core_case_t;
typedef struct core_dlv core_dlv_t;

struct core_chan {
    hnode_t node;            /* core->chans, by name, while not deleted */
    core_t *core;
    uint8_t *name;
    size_t name_len;
    uint64_t cap;
    bool closed, temp, deleted;
    qlink_t owner_link;      /* the owner session's temps */
    core_sess_t *owner;      /* temporary: the session that made it */
    pdeque_t buf;            /* core_val_t *, oldest first */
    uint64_t reserved;       /* buffer slots held by reservations */
    qlink_t sendq, recvq;    /* waiting cases, FIFO */
    uint64_t nsend, nrecv;   /* cases in those queues */
    uint64_t inflight;       /* deliveries not yet acknowledged */
    uint64_t handed;         /* of them, values handed straight from a
                                sender that waits for their ack (owner) */
    uint64_t sent, received;
    uint64_t refs;           /* the name table + cases + deliveries */
    uint64_t no;             /* its journal number; 0: not journaled */
    uint64_t version;        /* bumped by every change that can make a
                                case on it ready or not (corei_chan_touch) */
};

enum op_kind { OP_SEND, OP_RECV, OP_SELECT };

enum op_state {
    OP_WAITING,     /* not answered; cases may be queued */
    OP_RESERVED,    /* a reserving select holds a send slot or receiver */
};

struct core_case {
    qlink_t link;            /* in ch->sendq or ch->recvq while queued */
    bool queued;
    bool send;
    int index;
    core_op_t *op;
    core_chan_t *ch;
    /* send: values not yet handed on, oldest first */
    pdeque_t vals;
    /* recv */
    uint32_t max;
    uint64_t max_bytes;      /* longest value it takes */
    core_out_dlv_t *out;     /* deliveries collected for the reply */
    size_t nout, outcap;
};

struct core_op {
    hnode_t node;            /* sess->ops, by request id */
    qlink_t dlink;           /* core->detached, once its session is gone */
    core_t *core;
    core_sess_t *sess;       /* NULL once detached: answers nobody */
    uint64_t id;
    uint64_t reply_id;       /* id the answer goes to (a Commit's id) */
    enum op_kind kind;
    enum op_state state;
    struct chan_heap_node dl;  /* key: absolute deadline (ms), -1 for none;
                                  in core->deadlines while it counts */
    core_status_t fail;       /* OK, or why no further value is accepted */
    int chosen;              /* select: the decided case, or -1 */
    uint32_t total;          /* send: values to send */
    bool nonblocking;        /* timeout 0: frozen only by a reserving
                                sender it waits on, never in the heap then */
    uint32_t accepted;       /* send: values taken for good */
    uint32_t first_lost;     /* send: the lowest batch place of a value that
                                will not be taken (total while none); the
                                answer's `accepted` is this prefix */
    uint32_t inflight;       /* send: deliveries awaiting acknowledgement */
    bool reserve;            /* select: two-phase */
    bool in_order;           /* select: the cases' order is the client's
                                choice (else the core draws one) */
    uint64_t prio;           /* reserve: who of two reserving ops leads */
    bool committed;          /* a receive reservation committed: its sender
                                is asked next (RETRY if it went) */
    bool frozen;             /* held by another op's reservation */
    core_op_t *holder;       /* frozen: the reservation holding us */
    core_case_t *held;       /* reserved on an unbuffered channel: the
                                partner case we hold (a receiver for a
                                send reservation, a sender for a receive
                                reservation), or NULL */
    core_chan_t *slot;       /* the channel whose buffer slot we reserved,
                                or NULL (kept here, not found through
                                chosen: shutdown fails the op first) */
    uint64_t refused_len;    /* TOO_LARGE: the length of the value refused */
    size_t ncase;
    core_case_t cases[];
};

struct core_dlv {
    hnode_t node;            /* sess->dlvs, by delivery id (chand_idwin.h) */
    qlink_t order;           /* sess->dlv_order, oldest first */
    qlink_t by_time;         /* core->dlv_all, oldest first */
    uint64_t seq;            /* core-wide delivery order */
    int64_t expires;         /* ack deadline (ms), if lim.ack_wait */
    uint64_t id;
    core_sess_t *sess;
    core_chan_t *ch;
    core_val_t *val;
    core_op_t *owner;        /* unbuffered: the send waiting for our ack */
    int owner_case;
};

struct core_sess {
    core_t *core;
    void *ctx;
    qlink_t all;             /* core->sessions */
    uint64_t next_dlv;
    htable_t ops;
    idwin_t dlvs;            /* deliveries by id */
    qlink_t dlv_order;
    qlink_t temps;
    size_t pending;
};

struct core {
    core_limits_t lim;
    core_reply_fn reply;
    htable_t chans;
    qlink_t sessions;
    uint64_t nsessions;
    qlink_t detached;        /* ops finishing without a session */
    struct chan_heap deadlines;  /* blocked ops, by deadline (op->dl) */
    uint64_t rng;
    uint64_t temp_seq;
    bool (*temp_ok)(void *ctx, const char *name, size_t len);   /* temporary names */
    void *temp_ctx;
    uint64_t pending, inflight, values_sent, values_received;
    uint64_t value_bytes;    /* held in values, against lim.max_memory */
    int64_t now;             /* the latest time the core was given */
    uint64_t dlv_seq;
    qlink_t dlv_all;         /* every delivery, oldest first: with one
                                ack_wait for all, also by ack deadline */
    uint64_t ack_expired;    /* deliveries given back at their deadline */
    pdeque_t graves;         /* buffers of deleted channels, freed a
                                slice at a time (core_reclaim) */
    size_t graves_vals;      /* values in them */
    const uint64_t *outside; /* bytes held for clients outside the core
                                (queued replies), against lim.max_memory */
    const core_journal_t *jr;/* told every change a restart restores */
    void *jr_ctx;
    uint64_t last_no, last_vid;
    const char *refuse_puts; /* why sends to journaled channels are refused */
    xbulk_t bulk;            /* values being restored are carved from it */
};

/* ------------------------------------------------------------------------
 * Functions shared between the core's files
 * ------------------------------------------------------------------------ */

/* Grouped by the file that defines them, where each is described. */
#pragma GCC visibility push(hidden)

/* chand_core.c */
void corei_vals_free(core_t *c, pdeque_t *d);
core_chan_t *corei_chan_create(core_t *c, core_bytes_t name, uint64_t cap);
void corei_chan_delete(core_chan_t *ch);
void corei_collect_node(hnode_t *n, void *arg);
void corei_heap_add(core_t *c, core_op_t *op);

/* chand_core_state.c: the journal */
void corei_jr_put(core_chan_t *ch, core_val_t *v);
void corei_jr_made(core_chan_t *ch);

/* chand_core_match.c */
void corei_op_finish(core_op_t *op, core_status_t st, const char *msg);
void corei_op_fail(core_op_t *op, core_status_t st);
void corei_dlv_return_all(core_dlv_t **ds, size_t n, bool redelivered);
core_case_t *corei_first_active(qlink_t *q, const core_op_t *not);
void corei_reserve_slot(core_case_t *s);
void corei_reserve_partner(core_case_t *lead, core_case_t *partner);
void corei_serve_receiver(core_case_t *r);
void corei_pump(core_chan_t *ch);
void corei_reservation_resolve(core_op_t *op, bool commit);

#pragma GCC visibility pop

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

/* Values are counted against --max-memory from birth to free. */
static inline core_val_t *corei_val_new(core_t *c, core_bytes_t b)
{
    core_val_t *v = xsmall_alloc(sizeof *v + b.len);
    c->value_bytes += sizeof *v + b.len;
    v->vid = 0;
    v->bulk = 0;
    v->redelivered = 0;
    v->seq = 0;
    v->len = (uint32_t)b.len;
    if (b.len)
        memcpy(v->data, b.data, b.len);
    return v;
}

static inline void corei_val_free(core_t *c, core_val_t *v)
{
    if (!v)
        return;
    c->value_bytes -= sizeof *v + v->len;
    if (v->bulk)
        xbulk_free(v);
    else
        xsmall_free(v, sizeof *v + v->len);
}

/* The journal (chand_core_state.c reports the rest). */

static inline bool corei_journaled_values(const core_chan_t *ch)
{
    return ch->no && ch->cap && ch->core->jr;
}

static inline void corei_jr_delivered(core_t *c, const core_val_t *v)
{
    if (v->vid && c->jr)
        c->jr->delivered(c->jr_ctx, v->vid);
}

static inline void corei_jr_acked(core_t *c, const core_val_t *v)
{
    if (v->vid && c->jr)
        c->jr->acked(c->jr_ctx, v->vid);
}

/* Channels */

static inline bool corei_chan_name_eq(const hnode_t *n, const void *key)
{
    const core_chan_t *ch = (const core_chan_t *)n;
    const core_bytes_t *k = key;
    return ch->name_len == k->len && memcmp(ch->name, k->data, k->len) == 0;
}

static inline core_chan_t *corei_chan_lookup(const core_t *c, core_bytes_t name)
{
    return (core_chan_t *)htable_find(&c->chans, chand_hash_bytes(name.data, name.len),
                                      corei_chan_name_eq, &name);
}

static inline void corei_chan_unref(core_chan_t *ch)
{
    if (--ch->refs)
        return;
    corei_vals_free(ch->core, &ch->buf);
    free(ch->name);
    free(ch);
}

static inline uint64_t corei_chan_space(const core_chan_t *ch)
{
    uint64_t used = ch->buf.len + ch->reserved;
    return used < ch->cap ? ch->cap - used : 0;
}

/* Its buffer, its queues, its reserved slots, its closing, or the freezing
 * of an op waiting on it changed: a non-blocking select that saw it not
 * ready must not take that for still true (see the versions of a
 * SelectReply). */
static inline void corei_chan_touch(core_chan_t *ch)
{
    ch->version++;
}

/* Ops and cases */

static inline void corei_op_touch(core_op_t *op)
{
    for (size_t i = 0; i < op->ncase; i++)
        if (op->cases[i].queued)
            corei_chan_touch(op->cases[i].ch);
}

static inline void corei_heap_del(core_t *c, core_op_t *op)
{
    chan_heap_remove(&c->deadlines, &op->dl);
}

static inline void corei_case_enqueue(core_case_t *cs, bool front)
{
    if (cs->queued)
        return;
    qlink_t *q = cs->send ? &cs->ch->sendq : &cs->ch->recvq;
    if (front)
        qlist_push_front(q, &cs->link);
    else
        qlist_push_back(q, &cs->link);
    cs->queued = true;
    corei_chan_touch(cs->ch);
    if (cs->send)
        cs->ch->nsend++;
    else
        cs->ch->nrecv++;
}

static inline void corei_case_dequeue(core_case_t *cs)
{
    if (!cs->queued)
        return;
    qlist_remove(&cs->link);
    cs->queued = false;
    corei_chan_touch(cs->ch);
    if (cs->send)
        cs->ch->nsend--;
    else
        cs->ch->nrecv--;
}

/* A frozen op that fails (cancelled, timed out, its session gone) leaves
 * at once: it does not wait for the reservation holding it, which finds
 * its partner gone when it commits (RETRY).  Nothing then ever waits on a
 * frozen op. */
static inline void corei_unhold(core_op_t *op)
{
    if (op->frozen && op->holder)
        op->holder->held = NULL;
    op->holder = NULL;
    if (op->frozen)
        corei_op_touch(op);
    op->frozen = false;
}

/* Put a send whose value came back under its deadline again. */
static inline void corei_op_rearm(core_op_t *op)
{
    if (op->dl.key >= 0 && !chan_heap_linked(&op->dl))
        corei_heap_add(op->core, op);
}

/* A frozen op is let go (its holder decided, or went).  One that cannot
 * wait (timeout 0) waited only for that decision: it goes under its
 * deadline, long past, and core_expire answers it TIMEOUT at the next
 * turn unless a pump serves it first. */
static inline void corei_thaw(core_op_t *op)
{
    op->frozen = false;
    corei_op_touch(op);
    op->holder = NULL;
    if (op->nonblocking)
        corei_op_rearm(op);
}

/* Select: the chosen case is decided, take the others out of their queues. */
static inline void corei_op_decide(core_op_t *op, int index)
{
    op->chosen = index;
    for (size_t i = 0; i < op->ncase; i++) {
        if ((int)i == index)
            continue;
        corei_case_dequeue(&op->cases[i]);
        corei_vals_free(op->core, &op->cases[i].vals);
    }
}

/* Matching */

static inline bool corei_case_active(const core_case_t *cs)
{
    return !cs->op->frozen;
}

static inline bool corei_reserving(const core_case_t *s)
{
    return s->op->reserve && s->op->chosen < 0;
}

/* Reserving send s meets receiver r: is r asked first?  Only another
 * reserving select of higher priority is; a send that cannot wait (timeout
 * 0) always leads, since it cannot be frozen. */
static inline bool corei_receiver_leads(const core_case_t *s, const core_case_t *r)
{
    return corei_reserving(r) && !s->op->nonblocking && r->op->prio > s->op->prio;
}

#endif /* CHAND_CORE_INT_H */

/*
 * chand_core_match.c - the exchange at the heart of chand's channel core:
 * ops and their cases, deliveries and their acknowledgements (core_ack,
 * core_nack), corei_pump(), which makes every exchange a channel allows,
 * and the resolution of reservations (two-phase select).  The requests
 * that start ops are in chand_core.c.
 *
 * Invariants, after every public call returns:
 *   - A channel never has both an active waiting receiver and something that
 *     receiver could take (a buffered value, or an active sender of another
 *     op).  corei_pump() restores this after every change.
 *   - A buffered channel with free space (len + reserved < cap) has no
 *     active waiting sender.
 *   - A closed channel has no active waiting sender, and no active waiting
 *     receiver unless values are still buffered... which corei_pump hands out.
 *   - Every value is in exactly one place: a channel buffer, a sender's
 *     queue of values (its case's `vals`), a delivery, or a reservation.
 *   - An op is answered exactly once (or never, once its session is gone).
 *
 * "Active" excludes cases of frozen ops: an op held by a reservation
 * (two-phase select across daemons) keeps its place but cannot be matched
 * until the reservation is committed or released.
 *
 * Two reserving selects that meet on an unbuffered channel must both agree,
 * and each may be winning elsewhere at the same moment.  The one with the
 * higher priority (a random number its client draws per attempt) is asked
 * first and the other is frozen meanwhile; once the first commits, the
 * other is asked.  A frozen op that fails (cancelled, timed out, session
 * gone) leaves at once, and a commit whose partner left is answered RETRY:
 * nothing ever waits on a frozen op, and since every pairing is decided in
 * the order of the priorities on every daemon, two selects that cross over
 * two daemons cannot each win their own reservation and miss the other.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand_core_int.h"

/* ------------------------------------------------------------------------
 * Ops and cases
 * ------------------------------------------------------------------------ */

/* Forget an op: no longer pending anywhere.  Its values are dropped (they
 * were never accepted) and its channels unreferenced. */
static void op_free(core_op_t *op)
{
    core_t *c = op->core;
    if (op->slot) {   /* only at shutdown: reservations are resolved first */
        op->slot->reserved--;
        corei_chan_touch(op->slot);
        op->slot = NULL;
    }
    for (size_t i = 0; i < op->ncase; i++) {
        core_case_t *cs = &op->cases[i];
        corei_case_dequeue(cs);
        corei_vals_free(cs->ch->core, &cs->vals);
        free(cs->out);
        corei_chan_unref(cs->ch);
    }
    if (op->holder)
        op->holder->held = NULL;
    if (op->held)
        corei_thaw(op->held->op);
    corei_heap_del(c, op);
    qlist_remove(&op->dlink);
    if (op->sess) {
        htable_remove(&op->sess->ops, &op->node);
        op->sess->pending--;
    }
    c->pending--;
    free(op);
}

/* Answer a finished op and free it. */
void corei_op_finish(core_op_t *op, core_status_t st, const char *msg)
{
    core_sess_t *s = op->sess;
    if (s) {
        core_reply_t r = { .id = op->reply_id, .status = st, .message = msg };
        core_case_t *cs = op->chosen >= 0 ? &op->cases[op->chosen] : NULL;
        switch (op->kind) {
        case OP_SEND:
            r.kind = CORE_R_SEND;
            r.accepted = op->accepted == op->total ? op->total : op->first_lost;
            break;
        case OP_RECV:
            r.kind = CORE_R_RECV;
            r.ndlv = op->cases[0].nout;
            r.dlv = op->cases[0].out;
            break;
        case OP_SELECT:
            /* a send's Commit gets a plain answer, a receive's Commit the
             * select's (with the value) */
            r.kind = op->reply_id != op->id && (!cs || cs->send) ? CORE_R_PLAIN : CORE_R_SELECT;
            r.index = op->chosen;
            r.value_len = op->refused_len;
            if (cs && !cs->send) {
                r.ndlv = cs->nout;
                r.dlv = cs->out;
            }
            break;
        }
        /* a look that found nothing says what it saw, for the client to
         * check that nothing changed when it looks again */
        uint64_t versions[op->kind == OP_SELECT && op->ncase ? op->ncase : 1];
        if (op->kind == OP_SELECT && op->nonblocking && st == CORE_ST_TIMEOUT) {
            for (size_t i = 0; i < op->ncase; i++)
                versions[i] = op->cases[i].ch->version;
            r.nversions = op->ncase;
            r.versions = versions;
        }
        s->core->reply(s->ctx, &r);
    }
    op_free(op);
}

/* A send op is done when nothing is left to hand on (or it may hand on no
 * more) and no delivery of its values awaits an acknowledgement. */
static bool send_done(const core_op_t *op)
{
    if (op->inflight || op->state != OP_WAITING)
        return false;
    int i = op->kind == OP_SELECT ? op->chosen : 0;
    if (op->fail != CORE_ST_OK)
        return true;   /* what it had not handed on was dropped */
    return i >= 0 && op->cases[i].vals.len == 0;
}

static const char *status_text(core_status_t st)
{
    switch (st) {
    case CORE_ST_CLOSED: return "channel closed";
    case CORE_ST_TIMEOUT: return "deadline passed";
    case CORE_ST_CANCELED: return "canceled";
    case CORE_ST_SHUTTING_DOWN: return "server shutting down";
    case CORE_ST_RETRY: return "the other side went away: select again";
    case CORE_ST_MOVED: return "the channel's slot is moving to another group";
    default: return NULL;
    }
}

static void send_maybe_finish(core_op_t *op)
{
    if (!send_done(op))
        return;
    /* every value taken: a success, even if the deadline passed meanwhile */
    core_status_t st = op->accepted == op->total ? CORE_ST_OK : op->fail;
    if (op->kind == OP_SELECT && st != CORE_ST_OK && st != CORE_ST_CLOSED)
        op->chosen = -1;   /* no case took effect */
    corei_op_finish(op, st, status_text(st));
}

/* A committed two-phase send (a reserving select's) lost its receiver
 * before its value was taken: nothing was sent, and the select must be
 * free to choose again rather than wait on this one case.  RETRY. */
static void send_retry(core_op_t *op)
{
    core_case_t *cs = &op->cases[op->chosen];
    corei_case_dequeue(cs);
    corei_vals_free(op->core, &cs->vals);
    if (op->fail == CORE_ST_OK)
        op->fail = CORE_ST_RETRY;
    send_maybe_finish(op);
}

static bool two_phase_send(const core_op_t *op)
{
    return op->kind == OP_SELECT && op->reserve && op->chosen >= 0 && op->cases[op->chosen].send;
}

/* Values of send op that will never be taken: dropped, and the answer's
 * prefix (`accepted`) ends before the first of them.  Values of a batch may
 * be taken out of order (several receivers share it and one gives its value
 * back), so the prefix is the lowest place lost, not a count. */
static void send_lose(core_op_t *op, core_val_t *v)
{
    if (v->seq < op->first_lost)
        op->first_lost = v->seq;
    corei_val_free(op->core, v);
}

static void send_lose_all(core_op_t *op, core_case_t *cs)
{
    core_val_t *v;
    while ((v = pdeque_pop_front(&cs->vals)))
        send_lose(op, v);
    pdeque_free(&cs->vals);
}

/* The op can accept no more values (timeout, cancel, close, shutdown, or its
 * session went away): take it out of every queue, drop what it had not
 * handed on, and answer now or once its deliveries are resolved (a value out
 * to a receiver before the deadline may still be taken after it). */
void corei_op_fail(core_op_t *op, core_status_t st)
{
    if (op->fail == CORE_ST_OK)
        op->fail = st;
    corei_heap_del(op->core, op);
    for (size_t i = 0; i < op->ncase; i++) {
        core_case_t *cs = &op->cases[i];
        corei_case_dequeue(cs);
        send_lose_all(op, cs);
    }
    if (op->inflight)
        return;   /* answered when the last delivery is resolved */
    if (op->kind == OP_SELECT && op->fail != CORE_ST_CLOSED)
        op->chosen = -1;
    if (op->kind == OP_SEND || (op->kind == OP_SELECT && op->chosen >= 0 && op->cases[op->chosen].send))
        send_maybe_finish(op);
    else
        corei_op_finish(op, op->fail, status_text(op->fail));
}

/* ------------------------------------------------------------------------
 * Deliveries
 * ------------------------------------------------------------------------ */

/* Bytes a delivery adds to a reply besides its value: tags, lengths, id. */
#define DLV_OVERHEAD 32

static bool dlv_id_eq(const hnode_t *n, const void *key)
{
    return ((const core_dlv_t *)n)->id == *(const uint64_t *)key;
}

/* Room for n more deliveries in r->out. */
static void case_reserve(core_case_t *r, size_t n)
{
    if (r->nout + n <= r->outcap)
        return;
    size_t cap = r->outcap ? r->outcap : 1;
    while (cap < r->nout + n)
        cap *= 2;
    r->out = xrealloc(r->out, cap * sizeof *r->out);
    r->outcap = cap;
}

static void case_collect(core_case_t *r, uint64_t id, const core_val_t *v)
{
    case_reserve(r, 1);
    r->out[r->nout].id = id;
    r->out[r->nout].val = v;
    r->nout++;
}

/* Hand value v of channel ch to receiving case r.  owner is the unbuffered
 * send that waits for the acknowledgement, or NULL for a buffered value. */
static void deliver(core_case_t *r, core_val_t *v, core_op_t *owner, int owner_case)
{
    core_sess_t *s = r->op->sess;
    core_chan_t *ch = r->ch;
    core_dlv_t *d = xsmall_alloc(sizeof *d);
    d->id = ++s->next_dlv;
    d->seq = ++s->core->dlv_seq;
    d->expires = s->core->now + s->core->lim.ack_wait;
    qlist_push_back(&s->core->dlv_all, &d->by_time);
    d->sess = s;
    d->ch = ch;
    d->val = v;
    d->owner = owner;
    d->owner_case = owner_case;
    idwin_add(&s->dlvs, d->id, &d->node);
    qlist_push_back(&s->dlv_order, &d->order);
    ch->refs++;
    ch->inflight++;
    ch->core->inflight++;
    if (owner) {
        owner->inflight++;
        ch->handed++;
    }
    corei_jr_delivered(ch->core, v);
    case_collect(r, d->id, v);
}

static void dlv_free(core_dlv_t *d)
{
    idwin_remove(&d->sess->dlvs, d->id, &d->node);
    qlist_remove(&d->order);
    qlist_remove(&d->by_time);
    d->ch->inflight--;
    d->ch->core->inflight--;
    if (d->owner)
        d->ch->handed--;
    corei_chan_unref(d->ch);
    xsmall_free(d, sizeof *d);
}

/* The value of d was taken for good. */
static void dlv_ack(core_dlv_t *d)
{
    core_chan_t *ch = d->ch;
    core_op_t *owner = d->owner;
    ch->received++;
    ch->core->values_received++;
    corei_jr_acked(ch->core, d->val);
    corei_val_free(ch->core, d->val);
    if (owner) {
        ch->sent++;
        ch->core->values_sent++;
        owner->inflight--;
        owner->accepted++;
    }
    dlv_free(d);
    if (owner)
        send_maybe_finish(owner);
}

/* The value of d comes back: to the head of its sender's values (unbuffered)
 * or of the channel's buffer.  The caller then pumps the channel (after
 * returning the rest of a batch: see corei_dlv_return_all). */
static void dlv_return(core_dlv_t *d, bool redelivered)
{
    core_chan_t *ch = d->ch;
    core_op_t *owner = d->owner;
    core_val_t *v = d->val;
    int owner_case = d->owner_case;
    if (redelivered)
        v->redelivered++;
    ch->refs++;
    dlv_free(d);
    corei_chan_touch(ch);   /* a value is back, to its buffer or its sender */
    if (owner) {
        owner->inflight--;
        core_case_t *cs = &owner->cases[owner_case];
        if (!redelivered && two_phase_send(owner) && owner->fail == CORE_ST_OK &&
            !ch->closed) {
            /* its receiver gave the value back: it chose another case */
            corei_val_free(ch->core, v);
            send_retry(owner);
        } else if (ch->cap) {
            /* a buffered channel hands values straight from a sender only
             * while reservations hold its free slots; back, the value is
             * the channel's oldest: it goes to the head of the buffer, ahead
             * of what was buffered meanwhile (its sender's queue is behind
             * that), and the send has it there.  So too once the send can
             * take no more, the channel is closed, or deleted (dropped then,
             * as its buffer was): later values of the batch may have been
             * buffered already, and the send's answer counts a prefix */
            if (ch->deleted) {
                corei_val_free(ch->core, v);
            } else {
                pdeque_push_front(&ch->buf, v);
                corei_jr_put(ch, v);
            }
            ch->sent++;
            ch->core->values_sent++;
            owner->accepted++;
            send_maybe_finish(owner);
        } else if (owner->fail != CORE_ST_OK || ch->closed) {
            /* the sender can take no more: the value is reported unsent */
            send_lose(owner, v);
            if (owner->fail == CORE_ST_OK)
                owner->fail = CORE_ST_CLOSED;
            send_maybe_finish(owner);
        } else {
            pdeque_push_front(&cs->vals, v);
            corei_case_enqueue(cs, true);   /* it was first in line */
            corei_op_rearm(owner);
        }
    } else if (ch->deleted) {
        corei_val_free(ch->core, v);
    } else {
        pdeque_push_front(&ch->buf, v);
        corei_chan_touch(ch);
    }
    corei_chan_unref(ch);
}

static int dlv_newest_first(const void *a, const void *b)
{
    uint64_t x = (*(core_dlv_t *const *)a)->seq, y = (*(core_dlv_t *const *)b)->seq;
    return (x < y) - (x > y);
}

/* Give back deliveries ds[0..n), each to the head of its channel (or
 * sender), so that they are in their channel in the order they were
 * delivered: newest first, and no channel is pumped before all are back,
 * else a waiting receiver would get the newest first.  Sorts ds. */
void corei_dlv_return_all(core_dlv_t **ds, size_t n, bool redelivered)
{
    qsort(ds, n, sizeof *ds, dlv_newest_first);
    core_chan_t **chans = xmalloc((n ? n : 1) * sizeof *chans);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && ds[i] == ds[i - 1])
            continue;   /* named twice: given back once */
        chans[k] = ds[i]->ch;
        chans[k++]->refs++;
        dlv_return(ds[i], redelivered);
    }
    for (size_t i = 0; i < k; i++) {
        if (!i || chans[i] != chans[i - 1])
            corei_pump(chans[i]);
        corei_chan_unref(chans[i]);
    }
    free(chans);
}

static core_dlv_t *dlv_lookup(core_sess_t *s, uint64_t id)
{
    return (core_dlv_t *)idwin_find(&s->dlvs, id, dlv_id_eq);
}

bool core_ack(core_sess_t *s, uint64_t delivery)
{
    core_dlv_t *d = dlv_lookup(s, delivery);
    if (!d)
        return false;
    dlv_ack(d);
    return true;
}

size_t core_nack_all(core_sess_t *s, const uint64_t *deliveries, size_t n)
{
    core_dlv_t **ds = xmalloc((n ? n : 1) * sizeof *ds);
    size_t found = 0;
    for (size_t i = 0; i < n; i++)
        if ((ds[found] = dlv_lookup(s, deliveries[i])))
            found++;
    corei_dlv_return_all(ds, found, false);
    free(ds);
    return found;
}

bool core_nack(core_sess_t *s, uint64_t delivery)
{
    return core_nack_all(s, &delivery, 1) == 1;
}

/* ------------------------------------------------------------------------
 * Matching: corei_pump() makes every possible exchange on one channel
 * ------------------------------------------------------------------------ */

/* Are a and b the same select?  One op, or two reserving ops of one
 * select that came over two connections (they share its priority).  A
 * select never meets itself. */
static bool same_select(const core_op_t *a, const core_op_t *b)
{
    return a == b || (a->reserve && b->reserve && a->prio && a->prio == b->prio);
}

/* The first active case of queue q whose op is not (of the select of) `not`. */
core_case_t *corei_first_active(qlink_t *q, const core_op_t *not)
{
    for (qlink_t *l = q->next; l != q; l = l->next) {
        core_case_t *cs = QLIST_ENTRY(l, core_case_t, link);
        if (corei_case_active(cs) && (!not || !same_select(cs->op, not)))
            return cs;
    }
    return NULL;
}

/* The receive case r got what it will get: answer it. */
static void recv_finish(core_case_t *r, core_status_t st, const char *msg)
{
    core_op_t *op = r->op;
    if (op->kind == OP_SELECT)
        corei_op_decide(op, r->index);
    else
        op->chosen = 0;
    corei_op_finish(op, st, msg);
}

/* A send case has handed on its last value. */
static void send_case_empty(core_case_t *s)
{
    core_op_t *op = s->op;
    corei_case_dequeue(s);
    if (op->kind == OP_SELECT && op->chosen < 0) {
        corei_heap_del(s->ch->core, op);
        corei_op_decide(op, s->index);
    }
    if (op->kind == OP_SEND || op->chosen >= 0)
        corei_heap_del(s->ch->core, op);
    send_maybe_finish(op);
}

/* Reserving select: hold a buffer slot for send case s. */
void corei_reserve_slot(core_case_t *s)
{
    core_op_t *op = s->op;
    core_t *c = s->ch->core;
    corei_heap_del(c, op);
    corei_op_decide(op, s->index);
    corei_case_dequeue(s);
    s->ch->reserved++;
    corei_chan_touch(s->ch);
    op->slot = s->ch;
    op->state = OP_RESERVED;
    core_reply_t r = { .id = op->id, .status = CORE_ST_RESERVED,
                       .kind = CORE_R_SELECT, .index = s->index };
    c->reply(op->sess->ctx, &r);
}

/* Reserving select: case `lead` (unbuffered) may meet `partner`, of
 * another op: hold the partner, frozen, and ask lead's client to commit. */
void corei_reserve_partner(core_case_t *lead, core_case_t *partner)
{
    core_op_t *op = lead->op;
    core_t *c = lead->ch->core;
    corei_heap_del(c, op);
    corei_op_decide(op, lead->index);
    corei_case_dequeue(lead);
    op->held = partner;
    op->state = OP_RESERVED;
    if (partner->op->nonblocking)
        corei_heap_del(c, partner->op);   /* it waits for this decision too */
    partner->op->frozen = true;
    corei_op_touch(partner->op);
    partner->op->holder = op;
    core_reply_t rep = { .id = op->id, .status = CORE_ST_RESERVED,
                         .kind = CORE_R_SELECT, .index = lead->index };
    c->reply(op->sess->ctx, &rep);
}

/* Reserving send s and receiver r meet on an unbuffered channel. */
static void reserve_pair(core_case_t *s, core_case_t *r)
{
    if (corei_receiver_leads(s, r))
        corei_reserve_partner(r, s);
    else
        corei_reserve_partner(s, r);
}

/* Move the head value of sender s into the buffer (space is known free). */
static void buffer_from_sender(core_case_t *s)
{
    core_chan_t *ch = s->ch;
    core_val_t *v = pdeque_pop_front(&s->vals);
    pdeque_push_back(&ch->buf, v);
    corei_jr_put(ch, v);
    corei_chan_touch(ch);
    ch->sent++;
    ch->core->values_sent++;
    s->op->accepted++;
    if (!s->vals.len)
        send_case_empty(s);
}

/* Fill free buffer space from waiting senders (not of op `not`), in order. */
static bool refill(core_chan_t *ch, const core_op_t *not)
{
    bool moved = false;
    core_case_t *s;
    while (corei_chan_space(ch) && (s = corei_first_active(&ch->sendq, not))) {
        if (corei_reserving(s))
            corei_reserve_slot(s);
        else
            buffer_from_sender(s);
        moved = true;
    }
    return moved;
}

/* The value receiver r would take next, and from whom (sender NULL: the
 * buffer).  NULL if nothing is available to r. */
static core_val_t *next_for(core_chan_t *ch, core_case_t *r, core_case_t **sender)
{
    *sender = NULL;
    if (ch->buf.len)
        return pdeque_front(&ch->buf);
    core_case_t *s = corei_first_active(&ch->sendq, r->op);
    if (!s || corei_reserving(s))
        return NULL;
    *sender = s;
    return pdeque_front(&s->vals);
}

/* Give receiver r everything available, up to its max, and answer it. */
void corei_serve_receiver(core_case_t *r)
{
    core_chan_t *ch = r->ch;
    core_case_t *s;
    core_val_t *v;
    uint64_t bytes = 0;
    /* room for the buffered values it will take, at once rather than by
     * doubling from one */
    case_reserve(r, ch->buf.len < r->max ? ch->buf.len : r->max);
    while (r->nout < r->max && (v = next_for(ch, r, &s))) {
        if (v->len > r->max_bytes) {
            if (r->nout)
                break;
            r->op->refused_len = v->len;   /* a select reports it (EMSGSIZE's n) */
            char msg[128];   /* the reply goes out before recv_finish returns */
            snprintf(msg, sizeof msg,
                     "value of %u bytes larger than the receiver's buffer of %llu bytes",
                     (unsigned)v->len, (unsigned long long)r->max_bytes);
            recv_finish(r, CORE_ST_TOO_LARGE, msg);
            if (s && two_phase_send(s->op))
                send_retry(s->op);
            return;
        }
        /* a batch must fit in one reply frame */
        bytes += v->len + DLV_OVERHEAD;
        if (r->nout && bytes > ch->core->lim.max_reply)
            break;
        if (!s) {
            pdeque_pop_front(&ch->buf);
            corei_chan_touch(ch);
            deliver(r, v, NULL, -1);
            refill(ch, r->op);
        } else {
            pdeque_pop_front(&s->vals);
            deliver(r, v, s->op, s->index);
            if (!s->vals.len)
                send_case_empty(s);
        }
    }
    recv_finish(r, CORE_ST_OK, NULL);
}

/* Find a receiver and a sender (of different ops) that can meet now. */
static bool find_pair(core_chan_t *ch, core_case_t **rp, core_case_t **sp)
{
    core_case_t *s0 = corei_first_active(&ch->sendq, NULL);
    if (!s0)
        return false;
    for (qlink_t *l = ch->recvq.next; l != &ch->recvq; l = l->next) {
        core_case_t *r = QLIST_ENTRY(l, core_case_t, link);
        if (!corei_case_active(r))
            continue;
        core_case_t *s = !same_select(s0->op, r->op) ? s0 : corei_first_active(&ch->sendq, r->op);
        /* (a receive that cannot wait meets a reserving sender too: it
         * waits for that sender's decision only, held, as Go's receive
         * with default takes a waiting sender's value) */
        if (s) {
            *rp = r;
            *sp = s;
            return true;
        }
    }
    return false;
}

/* The channel is closed: fail what waits on it. */
static bool pump_closed(core_chan_t *ch)
{
    core_case_t *cs = corei_first_active(&ch->sendq, NULL);
    if (cs) {
        if (cs->op->kind == OP_SELECT && cs->op->chosen < 0) {
            corei_heap_del(ch->core, cs->op);
            corei_op_decide(cs->op, cs->index);
            corei_case_dequeue(cs);
            corei_vals_free(cs->ch->core, &cs->vals);
            corei_op_finish(cs->op, CORE_ST_CLOSED, "channel closed");
        } else {
            corei_op_fail(cs->op, CORE_ST_CLOSED);
        }
        return true;
    }
    if (ch->buf.len)
        return false;
    cs = corei_first_active(&ch->recvq, NULL);
    if (cs) {
        recv_finish(cs, CORE_ST_CLOSED, "channel closed");
        return true;
    }
    return false;
}

static bool pump_once(core_chan_t *ch)
{
    core_case_t *r, *s;
    /* closed: no send may go through (not even into free buffer space) */
    if (ch->closed && corei_first_active(&ch->sendq, NULL))
        return pump_closed(ch);
    if (ch->buf.len && (r = corei_first_active(&ch->recvq, NULL))) {
        corei_serve_receiver(r);
        return true;
    }
    if (refill(ch, NULL))
        return true;
    if (find_pair(ch, &r, &s)) {
        if (corei_reserving(s))
            reserve_pair(s, r);
        else
            corei_serve_receiver(r);
        return true;
    }
    return ch->closed && pump_closed(ch);
}

/* Make every possible exchange on ch. */
void corei_pump(core_chan_t *ch)
{
    ch->refs++;   /* answering may drop the last other reference */
    while (pump_once(ch))
        ;
    corei_chan_unref(ch);
}

/* ------------------------------------------------------------------------
 * Reservations: a reserving select's hold, committed or released
 * ------------------------------------------------------------------------ */

/* Let go of the frozen op of case r; returns it. */
static core_op_t *unfreeze(core_case_t *r)
{
    core_op_t *rop = r->op;
    corei_thaw(rop);
    return rop;
}

/* Pump every channel op waits on: after it was frozen, they may have
 * something for it. */
static void pump_op_chans(core_op_t *op)
{
    size_t n = op->ncase;
    core_chan_t *chans[n ? n : 1];
    for (size_t i = 0; i < n; i++) {
        chans[i] = op->cases[i].ch;
        chans[i]->refs++;
    }
    for (size_t i = 0; i < n; i++) {
        corei_pump(chans[i]);
        corei_chan_unref(chans[i]);
    }
}

/* A send reservation is committed or released. */
static void send_resolve(core_op_t *op, bool commit)
{
    core_case_t *cs = &op->cases[op->chosen];
    core_chan_t *ch = cs->ch;
    core_case_t *r = op->held;
    core_op_t *rop = r ? unfreeze(r) : NULL;
    bool had_slot = op->slot != NULL;
    op->held = NULL;
    op->state = OP_WAITING;
    if (op->slot) {
        op->slot = NULL;
        ch->reserved--;
        corei_chan_touch(ch);
    }
    if (rop && rop->committed && !commit && !ch->closed) {
        /* a receive reservation that committed to us: nothing will come */
        corei_op_finish(rop, CORE_ST_RETRY, status_text(CORE_ST_RETRY));
        rop = NULL;
    } else if (rop && commit && !ch->closed) {
        corei_case_dequeue(r);
        corei_case_enqueue(r, true);   /* first in line: it gets our value */
    }
    ch->refs++;
    if (!commit || ch->closed) {
        corei_vals_free(cs->ch->core, &cs->vals);
        if (commit)
            corei_op_finish(op, CORE_ST_CLOSED, "channel closed");
        else
            op_free(op);
    } else if (had_slot) {
        buffer_from_sender(cs);   /* answers the commit */
    } else if (!rop) {
        send_retry(op);   /* the held receiver went away meanwhile */
    } else {
        /* The held receiver gets it now, before its other channels are
         * pumped (one may have a partner for it by now); the commit is
         * answered when it acknowledges (RETRY if it gives it back). */
        corei_case_enqueue(cs, true);
        corei_op_rearm(op);
        corei_serve_receiver(r);
        rop = NULL;   /* answered, perhaps freed */
    }
    if (rop)
        pump_op_chans(rop);
    corei_pump(ch);
    corei_chan_unref(ch);
}

/* A receive reservation (its select led a meeting with a reserving send)
 * is committed or released.  On commit the sender, frozen until now, is
 * asked in turn; the commit is answered with the value once it commits
 * too, or RETRY if it went away or releases. */
static void recv_resolve(core_op_t *op, bool commit)
{
    core_case_t *rc = &op->cases[op->chosen];
    core_chan_t *ch = rc->ch;
    core_case_t *s = op->held;
    core_op_t *sop = s ? unfreeze(s) : NULL;
    op->held = NULL;
    op->state = OP_WAITING;
    ch->refs++;
    if (!commit) {
        op_free(op);
    } else if (ch->closed) {
        corei_case_enqueue(rc, true);   /* pump answers it: what is buffered, or CLOSED */
    } else if (!sop) {
        corei_op_finish(op, CORE_ST_RETRY, status_text(CORE_ST_RETRY));
    } else {
        op->committed = true;
        corei_case_enqueue(rc, true);   /* first in line for the sender's value */
        corei_op_rearm(op);             /* its deadline holds while the sender decides */
        corei_reserve_partner(s, rc);   /* the sender's turn */
        sop = NULL;
    }
    if (sop)
        pump_op_chans(sop);
    corei_pump(ch);
    corei_chan_unref(ch);
}

/* Resolve a reservation held by op: commit (true) or release (false). */
void corei_reservation_resolve(core_op_t *op, bool commit)
{
    if (op->cases[op->chosen].send)
        send_resolve(op, commit);
    else
        recv_resolve(op, commit);
}

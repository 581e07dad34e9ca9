/*
 * chand_core_inspect.c - chand's channel core seen from outside: a channel
 * by name, its counts, scans over every channel and the core's totals (for
 * the dispatcher's checks, chan stat, metrics and slot moves); and
 * core_audit, a walk of everything that checks the invariants stated at the
 * top of chand_core_match.c (for tests and fuzzers).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include "chand_core_int.h"

/* ------------------------------------------------------------------------
 * Inspection
 * ------------------------------------------------------------------------ */

void *core_chan_owner(const core_chan_t *ch)
{
    return ch->temp && ch->owner && !ch->deleted ? ch->owner->ctx : NULL;
}

const core_chan_t *core_find(const core_t *c, core_bytes_t name)
{
    return corei_chan_lookup(c, name);
}

void core_chan_info(const core_chan_t *ch, core_chan_info_t *out)
{
    out->name.data = ch->name;
    out->name.len = ch->name_len;
    out->len = ch->buf.len;
    out->cap = ch->cap;
    out->senders = ch->nsend;
    out->receivers = ch->nrecv;
    out->inflight = ch->inflight;
    out->sent = ch->sent;
    out->received = ch->received;
    out->closed = ch->closed;
    out->temp = ch->temp;
}

struct each_arg {
    void (*fn)(const core_chan_t *, void *);
    void *arg;
};

static void each_chan(hnode_t *n, void *arg)
{
    struct each_arg *a = arg;
    a->fn((const core_chan_t *)n, a->arg);
}

void core_each_chan(const core_t *c, void (*fn)(const core_chan_t *ch, void *arg), void *arg)
{
    struct each_arg a = { fn, arg };
    htable_each(&c->chans, each_chan, &a);
}

uint64_t core_scan_chans(const core_t *c, uint64_t cursor,
                         void (*fn)(const core_chan_t *ch, void *arg), void *arg)
{
    struct each_arg a = { fn, arg };
    return htable_scan(&c->chans, cursor, each_chan, &a);
}

void core_info(const core_t *c, core_info_t *out)
{
    out->channels = c->chans.count;
    out->sessions = c->nsessions;
    out->pending = c->pending;
    out->inflight = c->inflight;
    out->values_sent = c->values_sent;
    out->values_received = c->values_received;
    out->value_bytes = c->value_bytes;
    out->ack_expired = c->ack_expired;
}

/* ------------------------------------------------------------------------
 * Audit: the invariants at the top of chand_core_match.c, checked by a walk
 * of everything (tests and fuzzers call it after each step)
 * ------------------------------------------------------------------------ */

struct audit {
    const core_t *c;
    void (*fn)(const core_value_at_t *at, void *arg);
    void *arg;
    const char *bad;         /* the first invariant found broken */
    pdeque_t ops, dlvs;      /* every op and delivery */
    uint64_t bytes;          /* of the values found */
    uint64_t queued;         /* cases queued on named channels, as the ops
                                count them less as the channels do: 0 */
};

static void audit_check(struct audit *a, bool ok, const char *what)
{
    if (!ok && !a->bad)
        a->bad = what;
}

static void audit_value(struct audit *a, const core_val_t *v, enum core_place place,
                        const core_chan_t *ch, void *ctx, uint64_t id, int index)
{
    a->bytes += sizeof *v + v->len;
    if (a->fn) {
        core_value_at_t at = { v, place, ch, ctx, id, index };
        a->fn(&at, a->arg);
    }
}

static bool audit_has(const pdeque_t *d, const void *p)
{
    for (size_t i = 0; i < d->len; i++)
        if (d->buf[i] == p)
            return true;
    return false;
}

/* The cases of queue q: all queued, of this channel, of known ops. */
static uint64_t audit_queue(struct audit *a, const core_chan_t *ch, const qlink_t *q, bool send)
{
    uint64_t n = 0;
    for (const qlink_t *l = q->next; l != q; l = l->next, n++) {
        const core_case_t *cs = QLIST_ENTRY(l, core_case_t, link);
        audit_check(a, cs->queued && cs->send == send && cs->ch == ch,
                    "a queue holds a case that is not queued there");
        audit_check(a, audit_has(&a->ops, cs->op), "a queue holds a case of an unknown op");
    }
    return n;
}

/* corei_pump()'s promise: no active waiting receiver has a partner on ch. */
static void audit_no_partner(struct audit *a, core_chan_t *ch)
{
    core_case_t *s = corei_first_active(&ch->sendq, NULL);
    audit_check(a, !s || !corei_chan_space(ch), "a sender waits while the buffer has room");
    audit_check(a, !s || !ch->closed, "a sender waits on a closed channel");
    for (qlink_t *l = ch->recvq.next; l != &ch->recvq; l = l->next) {
        core_case_t *r = QLIST_ENTRY(l, core_case_t, link);
        if (!corei_case_active(r))
            continue;
        audit_check(a, !ch->buf.len, "a receiver waits while values are buffered");
        audit_check(a, !ch->closed, "a receiver waits on a closed, drained channel");
        core_case_t *p = corei_first_active(&ch->sendq, r->op);
        audit_check(a, !p, "a receiver waits while a sender of another op waits");
    }
}

static void audit_chan(hnode_t *n, void *arg)
{
    struct audit *a = arg;
    core_chan_t *ch = (core_chan_t *)n;
    audit_check(a, !ch->deleted && ch->refs >= 1, "a deleted channel is still named");
    audit_check(a, audit_queue(a, ch, &ch->sendq, true) == ch->nsend &&
                   audit_queue(a, ch, &ch->recvq, false) == ch->nrecv,
                "a queue's length differs from its count");
    a->queued -= ch->nsend + ch->nrecv;   /* counted up from the ops' side */
    for (size_t i = 0; i < ch->buf.len; i++)
        audit_value(a, pdeque_at(&ch->buf, i), CORE_IN_BUFFER, ch, NULL,
                    0, -1);
    uint64_t inflight = 0, handed = 0, reserved = 0;
    for (size_t i = 0; i < a->dlvs.len; i++) {
        const core_dlv_t *d = a->dlvs.buf[i];
        inflight += d->ch == ch;
        handed += d->ch == ch && d->owner;
    }
    for (size_t i = 0; i < a->ops.len; i++)
        reserved += ((core_op_t *)a->ops.buf[i])->slot == ch;
    audit_check(a, inflight == ch->inflight, "a channel's inflight differs from its deliveries");
    audit_check(a, handed == ch->handed, "a channel's handed differs from its deliveries");
    audit_check(a, reserved == ch->reserved, "a channel's reserved slots differ from its holders");
    audit_no_partner(a, ch);
}

static void audit_op(struct audit *a, core_op_t *op)
{
    const core_t *c = a->c;
    audit_check(a, !chan_heap_linked(&op->dl) ||
                       (op->dl.idx < c->deadlines.len && c->deadlines.v[op->dl.idx] == &op->dl),
                "an op's place in the deadline heap is wrong");
    audit_check(a, op->state != OP_RESERVED || (!chan_heap_linked(&op->dl) && op->chosen >= 0),
                "a reservation is in the deadline heap, or has no case");
    audit_check(a, !op->slot || op->state == OP_RESERVED, "an op holds a slot, not reserved");
    audit_check(a, op->frozen == (op->holder != NULL), "a freeze without a holder");
    audit_check(a, !op->holder || (op->holder->held && op->holder->held->op == op),
                "a frozen op's holder does not hold it");
    audit_check(a, !op->held || op->held->op->holder == op, "a held op is not frozen by us");
    uint64_t inflight = 0;
    for (size_t i = 0; i < a->dlvs.len; i++)
        inflight += ((core_dlv_t *)a->dlvs.buf[i])->owner == op;
    audit_check(a, inflight == op->inflight, "an op's inflight differs from its deliveries");
    audit_check(a, op->sess || op->inflight, "a detached op lives on with nothing out");
    void *ctx = op->sess ? op->sess->ctx : NULL;
    for (size_t i = 0; i < op->ncase; i++) {
        core_case_t *cs = &op->cases[i];
        audit_check(a, cs->op == op && cs->index == (int)i, "a case does not know its op");
        audit_check(a, cs->send || !cs->vals.len, "a receive case holds values");
        audit_check(a, op->sess || !cs->queued, "a detached op still waits");
        if (cs->queued && cs->ch->deleted)
            audit_check(a, op->frozen, "an active case waits on a deleted channel");
        else if (cs->queued)
            a->queued++;
        for (size_t k = 0; k < cs->vals.len; k++)
            audit_value(a, pdeque_at(&cs->vals, k), CORE_IN_SENDER,
                        cs->ch, ctx, op->id, (int)i);
    }
}

static void audit_sess(struct audit *a, const core_sess_t *s)
{
    size_t nops = a->ops.len;
    htable_each(&s->ops, corei_collect_node, &a->ops);
    audit_check(a, a->ops.len - nops == s->pending, "a session's pending differs from its ops");
    size_t n = 0;
    for (const qlink_t *l = s->dlv_order.next; l != &s->dlv_order; l = l->next, n++) {
        core_dlv_t *d = QLIST_ENTRY(l, core_dlv_t, order);
        audit_check(a, d->sess == s && d->id <= s->next_dlv, "a delivery of another session");
        pdeque_push_back(&a->dlvs, d);
    }
    audit_check(a, n == idwin_count(&s->dlvs), "a session's deliveries differ from its list");
}

/* Every delivery is on the core's list, oldest first (ack deadlines). */
static void audit_dlv_all(struct audit *a)
{
    size_t n = 0;
    const core_dlv_t *prev = NULL;
    for (const qlink_t *l = a->c->dlv_all.next; l != &a->c->dlv_all; l = l->next, n++) {
        const core_dlv_t *d = QLIST_ENTRY(l, core_dlv_t, by_time);
        audit_check(a, !prev || (prev->seq < d->seq && prev->expires <= d->expires),
                    "the deliveries are not in the order they were made");
        prev = d;
    }
    audit_check(a, n == a->dlvs.len, "the list of all deliveries differs from the sessions'");
}

/* Buffers of deleted channels not freed yet. */
static void audit_graves(struct audit *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->c->graves.len; i++) {
        const pdeque_t *g = pdeque_at(&a->c->graves, i);
        for (size_t k = 0; k < g->len; k++, n++)
            audit_value(a, pdeque_at(g, k), CORE_IN_GRAVE, NULL, NULL, 0, -1);
    }
    audit_check(a, n == a->c->graves_vals, "graves_vals differs from the values buried");
}

const char *core_audit(const core_t *c, void (*fn)(const core_value_at_t *at, void *arg),
                       void *arg)
{
    struct audit a = { .c = c, .fn = fn, .arg = arg };
    pdeque_init(&a.ops);
    pdeque_init(&a.dlvs);
    uint64_t nsess = 0;
    for (const qlink_t *l = c->sessions.next; l != &c->sessions; l = l->next, nsess++)
        audit_sess(&a, QLIST_ENTRY(l, core_sess_t, all));
    for (const qlink_t *l = c->detached.next; l != &c->detached; l = l->next)
        pdeque_push_back(&a.ops, QLIST_ENTRY(l, core_op_t, dlink));
    audit_check(&a, nsess == c->nsessions, "the session count is wrong");
    audit_check(&a, a.ops.len == c->pending, "the pending count differs from the ops");
    audit_check(&a, a.dlvs.len == c->inflight, "the inflight count differs from the deliveries");
    audit_dlv_all(&a);
    audit_graves(&a);
    for (size_t i = 0; i < a.ops.len; i++)
        audit_op(&a, a.ops.buf[i]);
    for (size_t i = 0; i < a.dlvs.len; i++) {
        core_dlv_t *d = a.dlvs.buf[i];
        audit_check(&a, !d->owner || audit_has(&a.ops, d->owner), "a delivery of an unknown op");
        audit_value(&a, d->val, CORE_IN_DELIVERY, d->ch, d->sess->ctx, d->id, -1);
    }
    htable_each(&c->chans, audit_chan, &a);
    audit_check(&a, a.queued == 0, "queued cases differ from the channels' queues");
    audit_check(&a, chan_heap_valid(&c->deadlines), "the deadline heap is broken");
    for (size_t i = 0; i < c->deadlines.len; i++)
        audit_check(&a, audit_has(&a.ops, chan_heap_entry(c->deadlines.v[i], core_op_t, dl)),
                    "the deadline heap holds an unknown op");
    audit_check(&a, a.bytes == c->value_bytes, "value_bytes differs from the values held");
    pdeque_free(&a.ops);
    pdeque_free(&a.dlvs);
    return a.bad;
}

/*
 * chand_core.c - named channels with Go's semantics, as pure logic (the
 * design is explained in chand_core.h; read it first).  This file has the
 * core's entry points: making and freeing the core, channels, sessions,
 * the requests (open, send, receive, close, delete, select, cancel, commit,
 * release), time and shutdown.
 *
 * The rest of the core: chand_core_match.c makes the exchanges the
 * requests ask for (and states the invariants every call keeps), with the
 * acknowledgements; chand_core_state.c keeps the journaled state and moves
 * channels to another group; chand_core_inspect.c shows what is there and
 * audits it.  chand_core_int.h holds what they share.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chand_core_int.h"

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static uint64_t rng_next(core_t *c)
{
    /* xorshift64*: select only needs fair, fast choices */
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void corei_vals_free(core_t *c, pdeque_t *d)
{
    core_val_t *v;
    while ((v = pdeque_pop_front(d)))
        corei_val_free(c, v);
    pdeque_free(d);
}

/* A deleted channel's buffer: freed now if small, else later, a slice at a
 * time (a million values take milliseconds to free, and every other
 * client would wait). */
#define FREE_AT_ONCE 1024

static void vals_bury(core_t *c, pdeque_t *d)
{
    if (d->len <= FREE_AT_ONCE) {
        corei_vals_free(c, d);
        return;
    }
    pdeque_t *g = xmalloc(sizeof *g);
    *g = *d;
    pdeque_init(d);
    pdeque_push_back(&c->graves, g);
    c->graves_vals += g->len;
}

size_t core_reclaim(core_t *c, size_t budget)
{
    while (c->graves.len) {
        pdeque_t *g = pdeque_front(&c->graves);
        core_val_t *v;
        while (budget && (v = pdeque_pop_front(g))) {
            corei_val_free(c, v);
            c->graves_vals--;
            budget--;
        }
        if (g->len)
            break;
        pdeque_free(g);
        free(pdeque_pop_front(&c->graves));
    }
    return c->graves_vals;
}

static void reply_plain(core_sess_t *s, uint64_t id, core_status_t st, const char *msg)
{
    core_reply_t r = { .id = id, .status = st, .message = msg, .kind = CORE_R_PLAIN };
    s->core->reply(s->ctx, &r);
}

/* reply_plain with a message that names what it is about (the channel,
 * the limit and its option): clients show it to people as it is. */
__attribute__((format(printf, 4, 5)))
static void reply_fmt(core_sess_t *s, uint64_t id, core_status_t st, const char *fmt, ...)
{
    char msg[384];   /* a 255-byte name and the words around it */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_plain(s, id, st, msg);
}

/* ------------------------------------------------------------------------
 * Channels
 * ------------------------------------------------------------------------ */

core_chan_t *corei_chan_create(core_t *c, core_bytes_t name, uint64_t cap)
{
    core_chan_t *ch = xcalloc(1, sizeof *ch);
    ch->core = c;
    ch->name = xmalloc(name.len + 1);
    memcpy(ch->name, name.data, name.len);
    ch->name[name.len] = 0;
    ch->name_len = name.len;
    ch->cap = cap;
    pdeque_init(&ch->buf);
    qlist_init(&ch->sendq);
    qlist_init(&ch->recvq);
    qlist_init(&ch->owner_link);
    ch->refs = 1;   /* the name table */
    ch->node.hash = chand_hash_bytes(name.data, name.len);
    htable_insert(&c->chans, &ch->node);
    return ch;
}

/* Delete a channel: its name is free again, its buffered values dropped,
 * and everyone waiting on it sees it closed. */
void corei_chan_delete(core_chan_t *ch)
{
    if (ch->deleted)
        return;
    if (ch->no && ch->core->jr)
        ch->core->jr->deleted(ch->core->jr_ctx, ch->no);
    ch->deleted = true;
    ch->closed = true;
    corei_chan_touch(ch);
    htable_remove(&ch->core->chans, &ch->node);
    qlist_remove(&ch->owner_link);
    ch->owner = NULL;
    vals_bury(ch->core, &ch->buf);
    corei_pump(ch);
    corei_chan_unref(ch);   /* the name table's reference */
}

/* ------------------------------------------------------------------------
 * Ops: made by the requests, found by their ids
 * ------------------------------------------------------------------------ */

static bool op_id_eq(const hnode_t *n, const void *key)
{
    return ((const core_op_t *)n)->id == *(const uint64_t *)key;
}

static core_op_t *op_lookup(const core_sess_t *s, uint64_t id)
{
    return (core_op_t *)htable_find(&s->ops, chand_hash_u64(id), op_id_eq, &id);
}

static core_op_t *op_new(core_sess_t *s, uint64_t id, enum op_kind kind, size_t ncase,
                         int64_t timeout_ms, int64_t now)
{
    core_set_now(s->core, now);
    core_op_t *op = xcalloc(1, sizeof *op + ncase * sizeof(core_case_t));
    op->core = s->core;
    op->sess = s;
    op->id = op->reply_id = id;
    op->kind = kind;
    op->state = OP_WAITING;
    op->dl.key = timeout_ms < 0 ? -1 : now + timeout_ms;
    chan_heap_node_init(&op->dl);
    op->fail = CORE_ST_OK;
    op->chosen = -1;
    op->nonblocking = timeout_ms == 0;
    qlist_init(&op->dlink);
    op->ncase = ncase;
    op->node.hash = chand_hash_u64(id);
    htable_insert(&s->ops, &op->node);
    s->pending++;
    s->core->pending++;
    return op;
}

static void case_init(core_case_t *cs, core_op_t *op, int index, core_chan_t *ch, bool send)
{
    qlist_init(&cs->link);
    cs->op = op;
    cs->index = index;
    cs->ch = ch;
    cs->send = send;
    cs->max = 1;
    cs->max_bytes = UINT64_MAX;
    pdeque_init(&cs->vals);
    ch->refs++;
}

/* ------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------ */

core_t *core_new(const core_limits_t *lim, core_reply_fn reply)
{
    core_t *c = xcalloc(1, sizeof *c);
    c->lim = *lim;
    c->reply = reply;
    htable_init(&c->chans);
    qlist_init(&c->sessions);
    qlist_init(&c->detached);
    qlist_init(&c->dlv_all);
    c->rng = 0x9E3779B97F4A7C15ULL;
    return c;
}

void core_count_outside(core_t *c, const uint64_t *bytes)
{
    c->outside = bytes;
}

void core_seed(core_t *c, uint64_t seed)
{
    c->rng = seed ? seed : 1;
}

core_sess_t *core_sess_new(core_t *c, void *ctx)
{
    core_sess_t *s = xcalloc(1, sizeof *s);
    s->core = c;
    s->ctx = ctx;
    htable_init(&s->ops);
    idwin_init(&s->dlvs);
    qlist_init(&s->dlv_order);
    qlist_init(&s->temps);
    qlist_push_back(&c->sessions, &s->all);
    c->nsessions++;
    return s;
}

size_t core_sess_pending(const core_sess_t *s) { return s->pending; }

bool core_sess_waiting(const core_sess_t *s, uint64_t id) { return op_lookup(s, id) != NULL; }
size_t core_sess_inflight(const core_sess_t *s) { return idwin_count(&s->dlvs); }

/* An htable_each callback: push each node onto the pdeque_t arg. */
void corei_collect_node(hnode_t *n, void *arg)
{
    pdeque_push_back(arg, n);
}

/* Detach an op from its session: it finishes its work (a send waiting for
 * acknowledgements) but answers nobody. */
static void op_detach(core_op_t *op)
{
    core_sess_t *s = op->sess;
    if (!s)
        return;
    htable_remove(&s->ops, &op->node);
    s->pending--;
    op->sess = NULL;
    qlist_push_back(&op->core->detached, &op->dlink);
}

void core_sess_drop(core_sess_t *s)
{
    core_t *c = s->core;
    pdeque_t ops;
    pdeque_init(&ops);
    htable_each(&s->ops, corei_collect_node, &ops);
    /* 1. Every op that waits answers nobody now.  This comes first, so that
     *    releasing the session's reservations (2) cannot hand anything to the
     *    session's own waiting ops.  A send whose values are out lives on,
     *    detached, until they are acknowledged or come back (then they are
     *    dropped: the sender never heard that they were taken). */
    for (size_t i = 0; i < ops.len; i++) {
        core_op_t *op = ops.buf[i];
        if (op->state == OP_RESERVED)
            continue;
        corei_unhold(op);
        op_detach(op);
        corei_op_fail(op, CORE_ST_CANCELED);
    }
    pdeque_free(&ops);
    /* 2. Reservations go back: slots freed, held receivers let go. */
    htable_each(&s->ops, corei_collect_node, &ops);
    for (size_t i = 0; i < ops.len; i++)
        corei_reservation_resolve(ops.buf[i], false);
    pdeque_free(&ops);
    /* 3. Unacknowledged values go back to the heads of their channels, in
     *    the order they were delivered. */
    size_t nd = idwin_count(&s->dlvs);
    core_dlv_t **ds = xmalloc((nd ? nd : 1) * sizeof *ds);
    size_t n = 0;
    for (qlink_t *l = s->dlv_order.next; l != &s->dlv_order; l = l->next)
        ds[n++] = QLIST_ENTRY(l, core_dlv_t, order);
    corei_dlv_return_all(ds, n, true);
    free(ds);
    /* 4. Temporary channels go. */
    while (!qlist_empty(&s->temps)) {
        core_chan_t *ch = QLIST_ENTRY(s->temps.next, core_chan_t, owner_link);
        corei_chan_delete(ch);
    }
    htable_free(&s->ops);
    idwin_free(&s->dlvs);
    qlist_remove(&s->all);
    c->nsessions--;
    free(s);
}

/* ------------------------------------------------------------------------
 * Requests (acknowledgements are with the deliveries, in chand_core_match.c)
 * ------------------------------------------------------------------------ */

/* A send to ch cannot be made durable now: answered BUSY. */
static bool puts_refused(core_sess_t *s, uint64_t id, const core_chan_t *ch)
{
    if (!s->core->refuse_puts || !corei_journaled_values(ch))
        return false;
    reply_plain(s, id, CORE_ST_BUSY, s->core->refuse_puts);
    return true;
}

/* Checks common to blocking requests; false if already answered. */
static bool admit(core_sess_t *s, uint64_t id)
{
    if (op_lookup(s, id)) {
        reply_plain(s, id, CORE_ST_BAD_REQUEST, "request id already pending");
        return false;
    }
    if (s->pending >= s->core->lim.max_pending) {
        reply_plain(s, id, CORE_ST_BUSY, "too many pending requests on this connection");
        return false;
    }
    return true;
}

/* Values may hold at most lim.max_memory bytes: past it, new values are
 * refused (Redis's maxmemory with noeviction) instead of the daemon
 * running out of memory. */
static bool memory_ok(core_sess_t *s, uint64_t id, uint64_t bytes)
{
    core_t *c = s->core;
    uint64_t held = c->value_bytes + (c->outside ? *c->outside : 0);
    if (c->lim.max_memory && held + bytes > c->lim.max_memory) {
        reply_plain(s, id, CORE_ST_BUSY, "memory limit reached (--max-memory)");
        return false;
    }
    return true;
}

static core_chan_t *find_or_answer(core_sess_t *s, uint64_t id, core_bytes_t name)
{
    core_chan_t *ch = corei_chan_lookup(s->core, name);
    if (!ch)
        reply_fmt(s, id, CORE_ST_NOT_FOUND, "no such channel '%.*s'", (int)name.len,
                  (const char *)name.data);
    return ch;
}

static void temp_name(core_t *c, core_sess_t *s, char *out, size_t size)
{
    for (int tries = 0;; tries++) {
        /* unguessable enough that only those told the name use it */
        uint64_t r = rng_next(c) ^ chand_hash_u64((uintptr_t)s ^ ++c->temp_seq);
        snprintf(out, size, "tmp.%016llx.%llu", (unsigned long long)r,
                 (unsigned long long)c->temp_seq);
        if (!c->temp_ok || tries == 1 << 16 || c->temp_ok(c->temp_ctx, out, strlen(out)))
            return;
    }
}

void core_set_temp_filter(core_t *c, bool (*ok)(void *ctx, const char *name, size_t len),
                          void *ctx)
{
    c->temp_ok = ok;
    c->temp_ctx = ctx;
}

void core_open(core_sess_t *s, uint64_t id, core_bytes_t name, bool has_cap,
               uint64_t cap, bool temp, bool no_create)
{
    core_t *c = s->core;
    char tname[64];
    if (temp && !name.len) {
        temp_name(c, s, tname, sizeof tname);
        name.data = (const uint8_t *)tname;
        name.len = strlen(tname);
    }
    if (has_cap && cap > c->lim.max_cap) {
        reply_fmt(s, id, CORE_ST_BAD_REQUEST, "capacity %llu over the limit of %llu",
                  (unsigned long long)cap, (unsigned long long)c->lim.max_cap);
        return;
    }
    core_chan_t *ch = corei_chan_lookup(c, name);
    bool created = false;
    if (ch) {
        if (temp) {
            reply_plain(s, id, CORE_ST_EXISTS, "a channel with that name exists");
            return;
        }
        if (has_cap && cap != ch->cap) {
            reply_fmt(s, id, CORE_ST_EXISTS,
                      "channel '%.*s' exists with capacity %llu, not %llu", (int)name.len,
                      (const char *)name.data, (unsigned long long)ch->cap,
                      (unsigned long long)cap);
            return;
        }
    } else {
        if (no_create) {
            reply_fmt(s, id, CORE_ST_NOT_FOUND, "no such channel '%.*s'", (int)name.len,
                      (const char *)name.data);
            return;
        }
        if (c->chans.count >= c->lim.max_channels) {
            reply_fmt(s, id, CORE_ST_BUSY, "too many channels (--max-channels %llu)",
                      (unsigned long long)c->lim.max_channels);
            return;
        }
        ch = corei_chan_create(c, name, has_cap ? cap : 0);
        created = true;
        if (temp) {
            ch->temp = true;
            ch->owner = s;
            qlist_push_back(&s->temps, &ch->owner_link);
        }
        corei_jr_made(ch);
    }
    core_reply_t r = { .id = id, .status = CORE_ST_OK, .kind = CORE_R_OPEN,
                       .chan = ch, .created = created };
    c->reply(s->ctx, &r);
}

/* Could a receive case of op meet a sender waiting in a two-phase select
 * (case_ready does not count one ready for a receive that cannot wait)? */
static bool meets_reserving_sender(core_op_t *op)
{
    for (size_t i = 0; i < op->ncase; i++) {
        core_case_t *cs = &op->cases[i];
        core_case_t *s = cs->send || cs->ch->buf.len ? NULL : corei_first_active(&cs->ch->sendq, op);
        if (s && corei_reserving(s))
            return true;
    }
    return false;
}

/* Queue a blocking op, or answer TIMEOUT now for a non-blocking one.  Then
 * pump its channels: a partner the poll did not count as ready (a reserving
 * sender) can still meet it.  A non-blocking select (not a reserving one,
 * which leads such a meeting itself) is queued too when one of its receive
 * cases has such a sender: held by it, it waits for its decision only, as
 * a plain Recv does; met by nobody, it is answered TIMEOUT at once. */
static void op_wait(core_op_t *op, int64_t timeout_ms)
{
    if (timeout_ms == 0 && (op->reserve || !meets_reserving_sender(op))) {
        corei_op_fail(op, CORE_ST_TIMEOUT);
        return;
    }
    core_sess_t *s = op->sess;
    uint64_t id = op->id;
    size_t n = op->ncase;
    /* Queue the cases in a random order, as Go's select does: of two cases
     * on one channel, the one queued first is served first, and that must
     * not always be case 0. */
    size_t order[n ? n : 1];
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        if (!op->in_order) {
            size_t j = (size_t)(rng_next(op->core) % (i + 1));
            order[i] = order[j];
            order[j] = i;
        }
    }
    core_chan_t *chans[n ? n : 1];
    for (size_t k = 0; k < n; k++) {
        corei_case_enqueue(&op->cases[order[k]], false);
        chans[k] = op->cases[order[k]].ch;
        chans[k]->refs++;
    }
    if (op->dl.key >= 0 && timeout_ms != 0)
        corei_heap_add(op->core, op);
    for (size_t i = 0; i < n; i++) {
        if (op_lookup(s, id) == op && op->state == OP_WAITING && op->chosen < 0)
            corei_pump(chans[i]);
    }
    if (timeout_ms == 0 && op_lookup(s, id) == op && op->state == OP_WAITING && op->chosen < 0 &&
        !op->frozen)
        corei_op_fail(op, CORE_ST_TIMEOUT);
    for (size_t i = 0; i < n; i++)
        corei_chan_unref(chans[i]);
}

void core_send(core_sess_t *s, uint64_t id, core_bytes_t name,
               const core_bytes_t *vals, size_t n, int64_t timeout_ms, int64_t now)
{
    core_t *c = s->core;
    if (n == 0 || n > c->lim.max_batch) {
        reply_plain(s, id, CORE_ST_BAD_REQUEST, "a send carries 1 to max_batch values");
        return;
    }
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (vals[i].len > c->lim.max_value) {
            reply_fmt(s, id, CORE_ST_TOO_LARGE,
                      "value of %zu bytes over the limit of %llu bytes", vals[i].len,
                      (unsigned long long)c->lim.max_value);
            return;
        }
        bytes += vals[i].len + sizeof(core_val_t);
    }
    if (!admit(s, id) || !memory_ok(s, id, bytes))
        return;
    core_chan_t *ch = find_or_answer(s, id, name);
    if (!ch)
        return;
    if (ch->closed) {
        core_reply_t r = { .id = id, .status = CORE_ST_CLOSED, .message = "channel closed",
                           .kind = CORE_R_SEND };
        c->reply(s->ctx, &r);
        return;
    }
    if (puts_refused(s, id, ch))
        return;
    core_op_t *op = op_new(s, id, OP_SEND, 1, timeout_ms, now);
    op->total = op->first_lost = (uint32_t)n;
    core_case_t *cs = &op->cases[0];
    case_init(cs, op, 0, ch, true);
    pdeque_reserve(&cs->vals, n);
    for (size_t i = 0; i < n; i++) {
        core_val_t *v = corei_val_new(c, vals[i]);
        v->seq = (uint32_t)i;
        pdeque_push_back(&cs->vals, v);
    }
    /* FIFO: join the tail, then let the channel match whatever it can */
    corei_case_enqueue(cs, false);
    corei_pump(ch);
    /* still here with values left: it blocks (or, timeout 0, gives up) */
    op = op_lookup(s, id);
    if (op && op->state == OP_WAITING && op->fail == CORE_ST_OK && op->cases[0].vals.len) {
        if (timeout_ms == 0)
            corei_op_fail(op, CORE_ST_TIMEOUT);
        else
            corei_op_rearm(op);
    }
}

void core_recv(core_sess_t *s, uint64_t id, core_bytes_t name, uint32_t max,
               uint64_t max_bytes, int64_t timeout_ms, int64_t now)
{
    core_t *c = s->core;
    if (max == 0)
        max = 1;
    if (max > c->lim.max_batch) {
        reply_plain(s, id, CORE_ST_BAD_REQUEST, "max over max_batch");
        return;
    }
    if (!admit(s, id))
        return;
    core_chan_t *ch = find_or_answer(s, id, name);
    if (!ch)
        return;
    core_op_t *op = op_new(s, id, OP_RECV, 1, timeout_ms, now);
    core_case_t *cs = &op->cases[0];
    case_init(cs, op, 0, ch, false);
    cs->max = max;
    cs->max_bytes = max_bytes;
    corei_case_enqueue(cs, false);
    corei_pump(ch);
    op = op_lookup(s, id);
    if (op) {
        if (timeout_ms != 0)
            corei_op_rearm(op);
        else if (!op->frozen)
            corei_op_fail(op, CORE_ST_TIMEOUT);
        /* else held by a sender in a two-phase select: its decision
         * answers it (corei_thaw) */
    }
}

void core_close(core_sess_t *s, uint64_t id, core_bytes_t name)
{
    core_chan_t *ch = find_or_answer(s, id, name);
    if (!ch)
        return;
    if (ch->closed) {
        reply_plain(s, id, CORE_ST_CLOSED, "channel already closed");
        return;
    }
    ch->closed = true;
    if (ch->no && ch->core->jr)
        ch->core->jr->closed(ch->core->jr_ctx, ch->no);
    corei_chan_touch(ch);
    corei_pump(ch);
    reply_plain(s, id, CORE_ST_OK, NULL);
}

void core_delete(core_sess_t *s, uint64_t id, core_bytes_t name)
{
    core_chan_t *ch = find_or_answer(s, id, name);
    if (!ch)
        return;
    corei_chan_delete(ch);
    reply_plain(s, id, CORE_ST_OK, NULL);
}

/* Could case cs proceed now? (Go's select poll.) */
static bool case_ready(core_case_t *cs)
{
    core_chan_t *ch = cs->ch;
    if (ch->closed)
        return true;
    if (cs->send)
        return corei_chan_space(ch) || corei_first_active(&ch->recvq, cs->op);
    if (ch->buf.len)
        return true;
    core_case_t *s = corei_first_active(&ch->sendq, cs->op);
    /* a reserving sender can only meet a receive that can wait for it to
     * commit, or one of a reserving select that cannot wait (it leads) */
    return s && (!corei_reserving(s) || (cs->op->reserve && cs->op->nonblocking));
}

/* Run the chosen, ready case of a select now. */
static void select_run(core_op_t *op, core_case_t *cs, int64_t timeout_ms)
{
    core_chan_t *ch = cs->ch;
    if (ch->closed && (cs->send || !ch->buf.len)) {
        corei_op_decide(op, cs->index);
        corei_vals_free(cs->ch->core, &cs->vals);
        corei_op_finish(op, CORE_ST_CLOSED, "channel closed");
        return;
    }
    if (!cs->send) {
        core_case_t *s = ch->buf.len ? NULL : corei_first_active(&ch->sendq, op);
        if (s && corei_reserving(s)) {
            corei_reserve_partner(cs, s);   /* it cannot wait: it leads (case_ready) */
            return;
        }
        /* refill() skips senders of this select (and of its twins over
         * other connections, same prio) while it is served; once it is
         * answered they may go */
        corei_case_enqueue(cs, true);
        ch->refs++;
        corei_serve_receiver(cs);
        corei_pump(ch);
        corei_chan_unref(ch);
        return;
    }
    if (op->reserve) {
        core_case_t *r = corei_first_active(&ch->recvq, op);
        if (corei_chan_space(ch) || !r)
            corei_reserve_slot(cs);
        else if (!corei_receiver_leads(cs, r))
            corei_reserve_partner(cs, r);
        else
            op_wait(op, timeout_ms);   /* corei_pump pairs them, r asked first */
        return;
    }
    /* Decided only when the value moves (send_case_empty): the receiver
     * that made it ready may still refuse it (max_bytes). */
    core_sess_t *s = op->sess;
    uint64_t id = op->id;
    corei_case_enqueue(cs, true);
    corei_pump(ch);
    if (op_lookup(s, id) == op && op->chosen < 0) {
        corei_case_dequeue(cs);
        op_wait(op, timeout_ms);
    }
}

void core_select(core_sess_t *s, uint64_t id, const core_case_req_t *cases, size_t n,
                 bool reserve, uint64_t prio, bool in_order, int64_t timeout_ms, int64_t now)
{
    core_t *c = s->core;
    if (n > c->lim.max_cases) {
        reply_plain(s, id, CORE_ST_BAD_REQUEST, "too many cases");
        return;
    }
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (cases[i].send && cases[i].value.len > c->lim.max_value) {
            reply_fmt(s, id, CORE_ST_TOO_LARGE,
                      "value of %zu bytes over the limit of %llu bytes", cases[i].value.len,
                      (unsigned long long)c->lim.max_value);
            return;
        }
        if (cases[i].send)
            bytes += cases[i].value.len + sizeof(core_val_t);
    }
    if (!admit(s, id) || !memory_ok(s, id, bytes))
        return;
    for (size_t i = 0; i < n; i++) {
        const core_chan_t *ch = find_or_answer(s, id, cases[i].name);
        if (!ch || (cases[i].send && puts_refused(s, id, ch)))
            return;
    }
    core_op_t *op = op_new(s, id, OP_SELECT, n, timeout_ms, now);
    op->reserve = reserve;
    op->in_order = in_order;
    op->prio = prio;
    op->total = 1;
    for (size_t i = 0; i < n; i++) {
        core_case_t *cs = &op->cases[i];
        case_init(cs, op, (int)i, corei_chan_lookup(c, cases[i].name), cases[i].send);
        cs->max_bytes = cases[i].max_bytes;
        if (cs->send)
            pdeque_push_back(&cs->vals, corei_val_new(c, cases[i].value));
    }
    /* uniform among the ready cases, or the first ready one in order */
    size_t start = n && !in_order ? rng_next(c) % n : 0;
    size_t ready = 0;
    core_case_t *pick = NULL;
    for (size_t k = 0; k < n && !(in_order && pick); k++) {
        core_case_t *cs = &op->cases[(start + k) % n];
        if (case_ready(cs) && (in_order || rng_next(c) % ++ready == 0))
            pick = cs;   /* reservoir sampling: uniform among the ready */
    }
    if (pick)
        select_run(op, pick, timeout_ms);
    else
        op_wait(op, timeout_ms);
}

void core_cancel(core_sess_t *s, uint64_t id, uint64_t target)
{
    core_op_t *op = op_lookup(s, target);
    if (!op || op->state != OP_WAITING || op->fail != CORE_ST_OK) {
        reply_plain(s, id, CORE_ST_NOT_FOUND, "no such pending request");
        return;
    }
    corei_unhold(op);   /* its holder's commit will be answered RETRY */
    corei_op_fail(op, CORE_ST_CANCELED);
    reply_plain(s, id, CORE_ST_OK, NULL);
}

static core_op_t *reservation_find(core_sess_t *s, uint64_t id, uint64_t target)
{
    core_op_t *op = op_lookup(s, target);
    if (!op || op->state != OP_RESERVED) {
        reply_plain(s, id, CORE_ST_NOT_FOUND, "no such reservation");
        return NULL;
    }
    return op;
}

void core_commit(core_sess_t *s, uint64_t id, uint64_t target, bool has_timeout,
                 int64_t timeout_ms, int64_t now)
{
    core_set_now(s->core, now);
    core_op_t *op = reservation_find(s, id, target);
    if (!op)
        return;
    op->reply_id = id;
    if (has_timeout) {   /* not in the heap while reserved */
        op->dl.key = timeout_ms < 0 ? -1 : now + timeout_ms;
        op->nonblocking = false;
    }
    corei_reservation_resolve(op, true);
}

void core_release(core_sess_t *s, uint64_t id, uint64_t target)
{
    core_op_t *op = reservation_find(s, id, target);
    if (!op)
        return;
    corei_reservation_resolve(op, false);
    reply_plain(s, id, CORE_ST_OK, NULL);
}

/* ------------------------------------------------------------------------
 * Time and shutdown
 * ------------------------------------------------------------------------ */

/* An op with a deadline waits in the heap of deadlines until it is
 * answered or core_expire answers it TIMEOUT. */
void corei_heap_add(core_t *c, core_op_t *op)
{
    if (chan_heap_push(&c->deadlines, &op->dl) < 0)
        xoom((c->deadlines.cap ? 2 * c->deadlines.cap : 64) * sizeof *c->deadlines.v);
}

void core_set_now(core_t *c, int64_t now)
{
    if (now > c->now)
        c->now = now;
}

int64_t core_next_deadline(const core_t *c)
{
    const struct chan_heap_node *top = chan_heap_top(&c->deadlines);
    int64_t op = top ? top->key : -1;
    if (!c->lim.ack_wait || qlist_empty(&c->dlv_all))
        return op;
    int64_t ack = QLIST_ENTRY(c->dlv_all.next, core_dlv_t, by_time)->expires;
    return op < 0 || ack < op ? ack : op;
}

/* Deliveries unacknowledged past their deadline go back, as if their
 * receivers had gone: all of one expiry together, so that their channels
 * keep the order. */
static void acks_expire(core_t *c, int64_t now)
{
    size_t n = 0;
    for (qlink_t *l = c->dlv_all.next; l != &c->dlv_all; l = l->next, n++)
        if (QLIST_ENTRY(l, core_dlv_t, by_time)->expires > now)
            break;
    if (!n)
        return;
    core_dlv_t **ds = xmalloc(n * sizeof *ds);
    for (size_t i = 0; i < n; i++)
        ds[i] = QLIST_ENTRY(i ? ds[i - 1]->by_time.next : c->dlv_all.next, core_dlv_t, by_time);
    c->ack_expired += n;
    corei_dlv_return_all(ds, n, true);
    free(ds);
}

void core_expire(core_t *c, int64_t now)
{
    core_set_now(c, now);
    struct chan_heap_node *top;
    while ((top = chan_heap_top(&c->deadlines)) && top->key <= now) {
        core_op_t *op = chan_heap_entry(top, core_op_t, dl);
        corei_heap_del(c, op);
        corei_unhold(op);   /* its holder's commit will be answered RETRY */
        corei_op_fail(op, CORE_ST_TIMEOUT);
    }
    if (c->lim.ack_wait)
        acks_expire(c, now);
}

void core_shutdown(core_t *c)
{
    pdeque_t ops;
    pdeque_init(&ops);
    for (qlink_t *l = c->sessions.next; l != &c->sessions; l = l->next) {
        core_sess_t *s = QLIST_ENTRY(l, core_sess_t, all);
        htable_each(&s->ops, corei_collect_node, &ops);
        /* nobody will acknowledge now: values out are the channels' */
        for (qlink_t *dl = s->dlv_order.next; dl != &s->dlv_order; dl = dl->next) {
            core_dlv_t *d = QLIST_ENTRY(dl, core_dlv_t, order);
            if (d->owner)
                d->ch->handed--;
            d->owner = NULL;
        }
    }
    for (qlink_t *l = c->detached.next; l != &c->detached; l = l->next)
        pdeque_push_back(&ops, QLIST_ENTRY(l, core_op_t, dlink));
    for (size_t i = 0; i < ops.len; i++) {
        core_op_t *op = ops.buf[i];
        if (op->held) {
            op->held->op->frozen = false;
            op->held->op->holder = NULL;
            op->held = NULL;
        }
        op->holder = NULL;
        op->frozen = false;
        op->state = OP_WAITING;
        op->inflight = 0;
    }
    for (size_t i = 0; i < ops.len; i++)
        corei_op_fail(ops.buf[i], CORE_ST_SHUTTING_DOWN);
    pdeque_free(&ops);
}

void core_free(core_t *c)
{
    c->jr = NULL;   /* the daemon stops: nothing is deleted for good */
    xbulk_done(&c->bulk);   /* a restore that failed half-way */
    while (!qlist_empty(&c->sessions))
        core_sess_drop(QLIST_ENTRY(c->sessions.next, core_sess_t, all));
    pdeque_t chans;
    pdeque_init(&chans);
    htable_each(&c->chans, corei_collect_node, &chans);
    for (size_t i = 0; i < chans.len; i++)
        corei_chan_delete(chans.buf[i]);
    pdeque_free(&chans);
    core_reclaim(c, SIZE_MAX);
    pdeque_free(&c->graves);
    htable_free(&c->chans);
    chan_heap_free(&c->deadlines);
    free(c);
}

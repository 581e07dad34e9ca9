/*
 * chand_core_state.c - the state of chand's channel core that outlives the
 * daemon: every change a restart must restore, reported to the journal as
 * it happens (chand_journal.c writes it); the channels and values restored
 * from a journal (chand_recover.c) and dumped into a snapshot of it; and
 * channels that move whole to another group of a cluster (chand_slots.c):
 * evicted, copied, adopted there and dropped here.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <string.h>

#include "chand_core_int.h"

/* ------------------------------------------------------------------------
 * The journal: what a restart must restore, reported as it happens
 * ------------------------------------------------------------------------ */

/* v is now channel ch's: buffered (or back in the buffer) for good. */
void corei_jr_put(core_chan_t *ch, core_val_t *v)
{
    core_t *c = ch->core;
    if (!corei_journaled_values(ch) || v->vid)
        return;
    v->vid = ++c->last_vid;
    c->jr->put(c->jr_ctx, ch->no, v);
}

void corei_jr_made(core_chan_t *ch)
{
    core_t *c = ch->core;
    if (!c->jr || ch->temp)
        return;
    ch->no = ++c->last_no;
    c->jr->made(c->jr_ctx, ch->no, (core_bytes_t){ ch->name, ch->name_len }, ch->cap);
}

void core_set_journal(core_t *c, const core_journal_t *j, void *ctx)
{
    c->jr = j;
    c->jr_ctx = ctx;
}

void core_refuse_puts(core_t *c, const char *why)
{
    c->refuse_puts = why;
}

/* ------------------------------------------------------------------------
 * Restoring and dumping the journaled state
 * ------------------------------------------------------------------------ */

core_chan_t *core_restore_chan(core_t *c, core_bytes_t name, uint64_t no, uint64_t cap,
                               bool closed)
{
    if (!no || corei_chan_lookup(c, name))
        return NULL;
    core_chan_t *ch = corei_chan_create(c, name, cap);
    ch->no = no;
    ch->closed = closed;
    if (no > c->last_no)
        c->last_no = no;
    return ch;
}

void core_restore_val(core_chan_t *ch, uint64_t vid, uint32_t redelivered, core_bytes_t data)
{
    core_t *c = ch->core;
    core_val_t *v = xbulk_alloc(&c->bulk, sizeof *v + data.len);
    if (v) {
        c->value_bytes += sizeof *v + data.len;
        v->len = (uint32_t)data.len;
        v->seq = 0;
        if (data.len)
            memcpy(v->data, data.data, data.len);
        v->bulk = 1;
    } else {
        v = corei_val_new(c, data);
    }
    v->vid = vid;
    v->redelivered = redelivered;
    pdeque_push_back(&ch->buf, v);
    if (vid > ch->core->last_vid)
        ch->core->last_vid = vid;
}

void core_restore_done(core_t *c, uint64_t last_no, uint64_t last_vid)
{
    xbulk_done(&c->bulk);
    if (last_no > c->last_no)
        c->last_no = last_no;
    if (last_vid > c->last_vid)
        c->last_vid = last_vid;
}

struct dump_arg {
    void (*fn_chan)(void *, uint64_t, core_bytes_t, uint64_t, bool);
    void (*fn_val)(void *, uint64_t, uint64_t, uint32_t, core_bytes_t);
    void *arg;
};

static void dump_chan(hnode_t *n, void *arg)
{
    const struct dump_arg *a = arg;
    const core_chan_t *ch = (const core_chan_t *)n;
    if (ch->no)
        a->fn_chan(a->arg, ch->no, (core_bytes_t){ ch->name, ch->name_len }, ch->cap, ch->closed);
}

static void dump_buffer(hnode_t *n, void *arg)
{
    const struct dump_arg *a = arg;
    const core_chan_t *ch = (const core_chan_t *)n;
    if (!ch->no)
        return;
    for (size_t i = 0; i < ch->buf.len; i++) {
        const core_val_t *v = pdeque_at(&ch->buf, i);
        if (v->vid)
            a->fn_val(a->arg, ch->no, v->vid, v->redelivered, (core_bytes_t){ v->data, v->len });
    }
}

void core_dump(const core_t *c,
               void (*fn_chan)(void *arg, uint64_t no, core_bytes_t name, uint64_t cap, bool closed),
               void (*fn_val)(void *arg, uint64_t no, uint64_t vid, uint32_t redelivered,
                              core_bytes_t data),
               void *arg, uint64_t *last_no, uint64_t *last_vid)
{
    struct dump_arg a = { fn_chan, fn_val, arg };
    htable_each(&c->chans, dump_chan, &a);
    htable_each(&c->chans, dump_buffer, &a);
    for (const qlink_t *l = c->dlv_all.next; l != &c->dlv_all; l = l->next) {
        const core_dlv_t *d = QLIST_ENTRY(l, core_dlv_t, by_time);
        const core_val_t *v = d->val;
        if (v->vid && d->ch->no && !d->ch->deleted)
            fn_val(arg, d->ch->no, v->vid, v->redelivered + 1, (core_bytes_t){ v->data, v->len });
    }
    *last_no = c->last_no;
    *last_vid = c->last_vid;
}

/* ------------------------------------------------------------------------
 * Moving channels to another group of a cluster (chand_slots.c)
 * ------------------------------------------------------------------------ */

/* The first op waiting on ch (not reserved, not failing already), or NULL. */
static core_op_t *first_waiting(const qlink_t *q)
{
    for (const qlink_t *l = q->next; l != q; l = l->next) {
        core_op_t *op = QLIST_ENTRY(l, core_case_t, link)->op;
        if (op->state == OP_WAITING && op->fail == CORE_ST_OK)
            return op;
    }
    return NULL;
}

size_t core_evict(core_t *c, core_bytes_t name, core_status_t st)
{
    core_chan_t *ch = corei_chan_lookup(c, name);
    size_t n = 0;
    if (!ch)
        return 0;
    /* one at a time: failing an op may settle others on the channel */
    for (;;) {
        core_op_t *op = first_waiting(&ch->sendq);
        if (!op)
            op = first_waiting(&ch->recvq);
        if (!op)
            return n;
        corei_unhold(op);   /* its holder's commit will be answered RETRY */
        corei_op_fail(op, st);
        n++;
    }
}

bool core_chan_settled(const core_chan_t *ch)
{
    /* a value handed straight from its sender (unbuffered, or buffered
     * while reservations held the free slots) decides the send's answer
     * when its receiver acks or gives it back: a copy moved before would
     * be delivered even if the sender hears it was not sent */
    return !ch->reserved && !ch->nsend && !ch->nrecv && !ch->handed &&
           (ch->cap || !ch->inflight);
}

void core_chan_values(const core_chan_t *ch,
                      void (*fn)(void *arg, core_bytes_t data, uint32_t redelivered), void *arg)
{
    const core_t *c = ch->core;
    if (ch->inflight) {
        for (const qlink_t *l = c->dlv_all.next; l != &c->dlv_all; l = l->next) {
            const core_dlv_t *d = QLIST_ENTRY(l, core_dlv_t, by_time);
            if (d->ch == ch)
                fn(arg, (core_bytes_t){ d->val->data, d->val->len }, d->val->redelivered + 1);
        }
    }
    for (size_t i = 0; i < ch->buf.len; i++) {
        const core_val_t *v = pdeque_at(&ch->buf, i);
        fn(arg, (core_bytes_t){ v->data, v->len }, v->redelivered);
    }
}

core_chan_t *core_adopt_chan(core_t *c, core_bytes_t name, uint64_t cap)
{
    core_chan_t *ch = corei_chan_lookup(c, name);
    if (ch)
        return ch->temp ? NULL : ch;
    ch = corei_chan_create(c, name, cap);
    corei_jr_made(ch);
    return ch;
}

void core_adopt_val(core_chan_t *ch, core_bytes_t data, uint32_t redelivered)
{
    core_val_t *v = corei_val_new(ch->core, data);
    v->redelivered = redelivered;
    pdeque_push_back(&ch->buf, v);
    corei_jr_put(ch, v);
    corei_chan_touch(ch);
}

void core_adopt_end(core_chan_t *ch, bool closed)
{
    if (closed && !ch->closed) {
        ch->closed = true;
        if (ch->no && ch->core->jr)
            ch->core->jr->closed(ch->core->jr_ctx, ch->no);
        corei_chan_touch(ch);
    }
    corei_pump(ch);
}

bool core_drop(core_t *c, core_bytes_t name, core_status_t st)
{
    core_chan_t *ch = corei_chan_lookup(c, name);
    if (!ch || ch->temp)
        return false;
    core_evict(c, name, st);
    corei_chan_delete(ch);
    return true;
}

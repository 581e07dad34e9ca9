/*
 * chan_remote.c - channels that live in chand: open, send, receive, close,
 * select and stat, each one request and one reply over the shared client
 * connection (chan_call.c).
 *
 * Deadlines travel to chand as the time left; chand enforces them.  The
 * caller also waits locally, a little longer (chani_grace), so a connection
 * that stops answering cannot block it forever.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan_errmsg.h"
#include "remote/chan_client.h"
#include "remote/chan_route.h"

/* The wait for an answer chand gives at once (Close, chan_len's Stat): a
 * round trip, or a connection that stopped answering. */
#define ROUND_TRIP_WAIT_MS 5000

static chan_remote_t *remote_of(chan_t *ch)
{
    return (chan_remote_t *)ch;
}

static void set_name(ProtobufCBinaryData *b, protobuf_c_boolean *has, const chan_remote_t *r)
{
    *has = true;
    b->data = (uint8_t *)r->name;
    b->len = r->name_len;
}

/* ---- open ---- */

struct open_ctx {
    char name[CHAN_NAME_MAX + 1];
    size_t name_len;
    uint64_t cap;
    bool temp;
};

static bool open_reply(chan_rpc_t *rpc, const Chan__Reply *r)
{
    struct open_ctx *o = rpc->ctx;
    if (r->result_case != CHAN__REPLY__RESULT_OPEN)
        return true;
    const Chan__OpenReply *m = r->open;
    if (m->has_name && m->name.len <= CHAN_NAME_MAX) {
        memcpy(o->name, m->name.data, m->name.len);
        o->name[m->name.len] = 0;
        o->name_len = m->name.len;
    }
    o->cap = m->capacity;
    o->temp = m->has_temp && m->temp;
    return true;
}

static void fill_delete(Chan__Delete *m, Chan__Request *rq, const char *name, size_t len)
{
    m->has_name = true;
    m->name.data = (uint8_t *)name;
    m->name.len = len;
    rq->op_case = CHAN__REQUEST__OP_DELETE;
    rq->delete_ = m;
}

/* One Open round trip: *o gets chand's answer, *gen the connection it came
 * on.  0, or -1 with errno. */
static int open_call(chan_client_t *cl, Chan__Open *m, struct open_ctx *o, uint64_t *gen,
                     int64_t deadline)
{
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_OPEN;
    rq.open = m;
    *o = (struct open_ctx){ .name_len = 0 };
    chan_rpc_t rpc = { .on_reply = open_reply, .ctx = o };
    if (chani_client_call(cl, &rq, &rpc, deadline) < 0)
        return -1;
    if (rpc.status != CHAN__STATUS__OK) {
        chani_rpc_fail(&rpc);
        return -1;
    }
    if (!o->name_len) {
        errno = EPROTO;
        return -1;
    }
    *gen = rpc.gen;
    return 0;
}

/* Delete the temporary channel r made, if the connection it lives on is
 * still up: once that is gone, so is the channel, and its name may be
 * another channel's. */
static void delete_temp(chan_remote_t *r)
{
    Chan__Delete m = CHAN__DELETE__INIT;
    Chan__Request rq = CHAN__REQUEST__INIT;
    fill_delete(&m, &rq, r->name, r->name_len);
    chani_client_oneway(r->cl, r->gen, &rq);
}

/* Whether name (len bytes) is a channel name; if not, says why in
 * chan_errmsg(). */
static bool name_ok(const char *name, size_t len)
{
    if (chan_name_valid((const uint8_t *)name, len))
        return true;
    chani_errmsg_set("'%.*s' is not a channel name: 1 to 255 bytes of [A-Za-z0-9._:/-]",
                     len > 300 ? 300 : (int)len, name);
    return false;
}

/* The Open of r's channel as r was opened, on cl. */
static void fill_open(Chan__Open *m, const char *name, size_t name_len, long cap, bool temp,
                      bool no_create)
{
    if (name) {
        m->has_name = true;
        m->name.data = (uint8_t *)name;
        m->name.len = name_len;
    }
    if (cap != CHAN_CAP_ANY) {
        m->has_capacity = true;
        m->capacity = (uint64_t)cap;
    }
    m->has_temp = temp;
    m->temp = temp;
    m->has_no_create = no_create;
    m->no_create = no_create;
}

/* Open r's channel on cl and register r there; r->cl is cl once this
 * returns 0.  A redial between the Open's reply and the registration did
 * not open it on the new connection: open it there now (a temporary
 * channel died with the old one: this makes a new one).  -1 with errno. */
static int open_on(chan_client_t *cl, chan_remote_t *r, Chan__Open *m, int64_t deadline)
{
    for (;;) {
        struct open_ctx o;
        uint64_t gen;
        if (open_call(cl, m, &o, &gen, deadline) < 0)
            return -1;
        r->cap = o.cap;
        r->temp = o.temp;
        r->name_len = o.name_len;
        memcpy(r->name, o.name, o.name_len + 1);
        r->cl = cl;
        if (chani_client_track(cl, r, gen) == 0)
            return 0;
        if (errno != ESTALE) {
            int err = errno;
            r->gen = gen;
            if (r->owned)
                delete_temp(r);
            errno = err;
            return -1;
        }
    }
}

/* top: the application's client.  In a cluster a named channel's requests
 * go to its group's connection (chan_route.c); a temporary channel is made
 * on the connection of the group serving the empty name's slot (a group
 * with slots: chand names it in one of them, so that a client routing its
 * reference by slot finds it), and stays there. */
static chan_t *open_common(chan_client_t *top, const char *name, size_t name_len, long cap,
                           bool temp, int flags, int64_t deadline)
{
    if (!top || cap < CHAN_CAP_ANY || (flags & ~CHAN_NOCREATE) ||
        (name && !name_ok(name, name_len))) {
        errno = EINVAL;
        return NULL;
    }
    Chan__Open m = CHAN__OPEN__INIT;
    fill_open(&m, name, name_len, cap, temp, (flags & CHAN_NOCREATE) != 0);
    chan_remote_t *r = calloc(1, sizeof *r);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&r->hdr.refs, 1);
    r->hdr.kind = CHAN_KIND_REMOTE;
    r->top = top;
    r->owned = temp;
    r->want_cap = cap;
    r->no_create = m.no_create;
    chani_moves_t moves = { 0 };
    for (;;) {
        chan_client_t *cl =
            chani_route(top, temp ? "" : name, temp ? 0 : name_len, &moves, deadline);
        if (cl && open_on(cl, r, &m, deadline) == 0) {
            r->routed = !temp && chani_routed(top);   /* follows its slot */
            atomic_fetch_add(&cl->refs, 1);
            atomic_fetch_add(&top->refs, 1);
            return &r->hdr;
        }
        if (!cl || errno != EREMCHG || chani_route_moved_name(top, &moves, deadline) < 0)
            break;
    }
    int err = errno;
    free(r);
    errno = err;
    return NULL;
}

int chani_remote_rehome(chan_remote_t *r, chan_client_t *to, int64_t deadline)
{
    chan_client_t *from = r->cl;
    Chan__Open m = CHAN__OPEN__INIT;
    fill_open(&m, r->name, r->name_len, r->want_cap, false, r->no_create);
    for (;;) {
        struct open_ctx o;
        uint64_t gen;
        if (open_call(to, &m, &o, &gen, deadline) < 0)
            return -1;
        /* the registration moves with the handle, under both locks (taken
         * in address order), so that a call on either connection sees it
         * in one place */
        int err = 0;
        pthread_mutex_t *first = from < to ? &from->lock : &to->lock;
        pthread_mutex_t *second = from < to ? &to->lock : &from->lock;
        pthread_mutex_lock(first);
        pthread_mutex_lock(second);
        bool fresh = to->gen == gen;   /* else a redial came between: again */
        if (fresh) {
            uint64_t serial = to->handle_serial + 1;
            if (idmap_put(&to->handles, serial, r) < 0) {
                err = ENOMEM;
            } else {
                to->handle_serial = serial;
                if (r->serial)
                    idmap_del(&from->handles, r->serial);
                r->serial = serial;
                r->gen = gen;
                r->err = 0;
                r->cap = o.cap;
            }
        }
        pthread_mutex_unlock(second);
        pthread_mutex_unlock(first);
        if (err) {
            errno = err;
            return -1;
        }
        if (fresh)
            break;
    }
    atomic_fetch_add(&to->refs, 1);
    r->cl = to;
    chani_client_unref(from);
    return 0;
}

chan_t *chan_open(chan_client_t *cl, const char *name, long cap, int flags, int64_t deadline)
{
    chani_errmsg_clear();
    if (!name) {
        errno = EINVAL;
        return NULL;
    }
    return open_common(cl, name, strlen(name), cap, false, flags, deadline);
}

chan_t *chan_open_temp(chan_client_t *cl, long cap, int64_t deadline)
{
    chani_errmsg_clear();
    chan_t *ch = open_common(cl, NULL, 0, cap == CHAN_CAP_ANY ? 0 : cap, true, 0, deadline);
    if (ch)
        ((chan_remote_t *)ch)->owned = true;
    return ch;
}

int chan_delete(chan_client_t *cl, const char *name, int64_t deadline)
{
    chani_errmsg_clear();
    if (!cl || !name || !name_ok(name, strlen(name))) {
        errno = EINVAL;
        return -1;
    }
    Chan__Delete m = CHAN__DELETE__INIT;
    Chan__Request rq = CHAN__REQUEST__INIT;
    fill_delete(&m, &rq, name, strlen(name));
    chani_moves_t moves = { 0 };
    for (;;) {
        chan_client_t *c = chani_route(cl, name, strlen(name), &moves, deadline);
        chan_rpc_t rpc = { 0 };
        if (!c || chani_client_call(c, &rq, &rpc, deadline) < 0)
            return -1;
        if (rpc.status == CHAN__STATUS__OK)
            return 0;
        chani_rpc_fail(&rpc);
        if (errno != EREMCHG || chani_route_moved_name(cl, &moves, deadline) < 0)
            return -1;
    }
}

/* ---- channels over channels ---- */

ssize_t chan_ref(const chan_t *ch, char *buf, size_t size)
{
    chani_errmsg_clear();
    if (!ch || ch->kind != CHAN_KIND_REMOTE || !buf) {
        errno = EINVAL;
        return -1;
    }
    const chan_remote_t *r = (const chan_remote_t *)ch;
    int n = snprintf(buf, size, "%s@%s", r->name, r->top->addr);
    if (n < 0 || (size_t)n >= size) {
        errno = ENOSPC;
        return -1;
    }
    return n;
}

chan_t *chan_open_ref(chan_client_t *cl, const void *ref, size_t len, int64_t deadline)
{
    chani_errmsg_clear();
    const char *p = ref;
    if (!p) {
        errno = EINVAL;
        return NULL;
    }
    if (len && p[len - 1] == 0)
        len--;
    const char *at = memchr(p, '@', len);
    size_t addr_len = at ? len - (size_t)(at - p) - 1 : 0;
    if (!at || at == p || addr_len == 0 || addr_len >= 256) {
        errno = EINVAL;
        return NULL;
    }
    char addr[256];
    memcpy(addr, at + 1, addr_len);
    addr[addr_len] = 0;
    if (memchr(addr, 0, addr_len)) {
        errno = EINVAL;
        return NULL;
    }
    size_t name_len = (size_t)(at - p);
    if (cl && strcmp(cl->addr, addr) == 0)
        return open_common(cl, p, name_len, CHAN_CAP_ANY, false, CHAN_NOCREATE, deadline);
    /* another daemon: a connection of the handle's own */
    chan_client_t *own = chani_client_connect_like(cl, addr, deadline);
    if (!own)
        return NULL;
    chan_t *ch = open_common(own, p, name_len, CHAN_CAP_ANY, false, CHAN_NOCREATE, deadline);
    int saved = errno;
    chani_client_unref(own);   /* the handle holds it now (or nothing does) */
    errno = saved;
    return ch;
}

const char *chan_name(const chan_t *ch)
{
    if (!ch || ch->kind != CHAN_KIND_REMOTE)
        return NULL;
    return ((const chan_remote_t *)ch)->name;
}

void chani_remote_free(chan_t *ch)
{
    chan_remote_t *r = remote_of(ch);
    chani_client_untrack(r->cl, r);
    /* a temporary channel lives while its maker holds it: the last handle
     * going deletes it (peers waiting on it see it closed) */
    if (r->owned)
        delete_temp(r);
    chani_client_unref(r->cl);
    chani_client_unref(r->top);
    free(r);
}

ssize_t chani_remote_cap(chan_t *ch)
{
    return (ssize_t)remote_of(ch)->cap;
}

/* ---- send ---- */

static bool send_reply(chan_rpc_t *rpc, const Chan__Reply *r)
{
    uint32_t *accepted = rpc->ctx;
    if (r->result_case == CHAN__REPLY__RESULT_SEND && r->send->has_accepted)
        *accepted = r->send->accepted;
    return true;
}

/* How many of vals[0..n) fit in one Send frame, and at most batch. */
static size_t chunk_of(chan_client_t *cl, const chan_remote_t *r, const chan_val_t *vals,
                       size_t n, size_t batch)
{
    size_t budget = chani_client_max_frame(cl) - 64 - r->name_len, used = 0, k = 0;
    while (k < n && k < batch) {
        size_t cost = vals[k].len + 11;   /* tag + length varint, at most */
        if (k > 0 && used + cost > budget)
            break;
        used += cost;
        k++;
    }
    return k;
}

int chani_remote_send_many(chan_t *ch, const chan_val_t *vals, size_t n, size_t *sent,
                           int64_t deadline)
{
    chan_remote_t *r = remote_of(ch);
    chan_client_t *cl = r->cl;
    uint64_t max_value = chani_client_max_value(cl);
    for (size_t i = 0; i < n; i++) {
        if (vals[i].len > max_value) {
            chani_errmsg_set("value of %zu bytes over chand's limit of %llu bytes",
                             vals[i].len, (unsigned long long)max_value);
            errno = EMSGSIZE;
            return -1;
        }
    }
    /* One batch size for the array and every chunk: a reconnection
     * between chunks may bring a server with a larger one. */
    size_t batch = chani_client_max_batch(cl);
    if (batch > n)
        batch = n;
    ProtobufCBinaryData *bin = malloc(batch * sizeof *bin);
    if (!bin) {
        errno = ENOMEM;
        return -1;
    }
    int rc = 0;
    while (*sent < n) {
        size_t k = chunk_of(cl, r, vals + *sent, n - *sent, batch);
        for (size_t i = 0; i < k; i++) {
            bin[i].data = vals[*sent + i].data;
            bin[i].len = vals[*sent + i].len;
        }
        Chan__Send m = CHAN__SEND__INIT;
        set_name(&m.name, &m.has_name, r);
        m.n_values = k;
        m.values = bin;
        chani_set_timeout(&m.has_timeout_ms, &m.timeout_ms, deadline);
        Chan__Request rq = CHAN__REQUEST__INIT;
        rq.op_case = CHAN__REQUEST__OP_SEND;
        rq.send = &m;
        uint32_t accepted = 0;
        chan_rpc_t rpc = { .on_reply = send_reply, .ctx = &accepted, .handles = &r,
                           .nhandles = 1 };
        if (chani_client_call(cl, &rq, &rpc, chani_grace(deadline)) < 0) {
            rc = -1;
            break;
        }
        *sent += accepted < k ? accepted : k;
        if (rpc.status != CHAN__STATUS__OK) {
            rc = chani_rpc_fail(&rpc);
            break;
        }
    }
    free(bin);
    return rc;
}

/* ---- receive ---- */

struct recv_ctx {
    void *buf;            /* copy into this ... */
    size_t size;
    void **alloc;         /* ... or hand over a malloc()ed copy here */
    chan_val_t *vals;     /* recv_many */
    size_t max;
    size_t n;             /* values taken */
    size_t len;           /* length of the single value */
    int err;              /* ENOMEM or EPROTO while copying */
};

static void *dup_bytes(const ProtobufCBinaryData *b)
{
    void *p = malloc(b->len ? b->len : 1);
    if (p && b->len)
        memcpy(p, b->data, b->len);
    return p;
}

/* Take one value into the caller's buffer or a new allocation. */
static bool take_one(struct recv_ctx *x, const Chan__Delivery *d)
{
    if (x->buf || !x->alloc) {
        if (d->value.len > x->size) {
            x->err = EPROTO;   /* chand ignored max_bytes */
            return false;
        }
        if (d->value.len)
            memcpy(x->buf, d->value.data, d->value.len);
    } else if (!(*x->alloc = dup_bytes(&d->value))) {
        x->err = ENOMEM;
        return false;
    }
    x->len = d->value.len;
    x->n = 1;
    return true;
}

static bool recv_reply(chan_rpc_t *rpc, const Chan__Reply *r)
{
    struct recv_ctx *x = rpc->ctx;
    if (r->result_case != CHAN__REPLY__RESULT_RECV || r->recv->n_deliveries == 0)
        return true;
    if (r->recv->n_deliveries != 1) {
        x->err = EPROTO;
        return false;
    }
    return take_one(x, r->recv->deliveries[0]);
}

static bool recv_many_reply(chan_rpc_t *rpc, const Chan__Reply *r)
{
    struct recv_ctx *x = rpc->ctx;
    if (r->result_case != CHAN__REPLY__RESULT_RECV)
        return true;
    size_t n = r->recv->n_deliveries;
    if (n > x->max) {
        x->err = EPROTO;
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const Chan__Delivery *d = r->recv->deliveries[i];
        x->vals[i].data = dup_bytes(&d->value);
        x->vals[i].len = d->value.len;
        x->vals[i].redelivered = d->has_redelivered ? d->redelivered : 0;
        if (!x->vals[i].data) {
            for (size_t j = 0; j < i; j++)
                free(x->vals[j].data);
            x->err = ENOMEM;
            return false;
        }
    }
    x->n = n;
    return true;
}

static int recv_call(chan_remote_t *r, uint32_t max, uint64_t max_bytes, struct recv_ctx *x,
                     bool (*on_reply)(chan_rpc_t *, const Chan__Reply *), int64_t deadline,
                     uint64_t *ids)
{
    Chan__Recv m = CHAN__RECV__INIT;
    set_name(&m.name, &m.has_name, r);
    m.has_max = true;
    m.max = max;
    m.has_max_bytes = true;
    m.max_bytes = max_bytes;
    chani_set_timeout(&m.has_timeout_ms, &m.timeout_ms, deadline);
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_RECV;
    rq.recv = &m;
    chan_rpc_t rpc = { .on_reply = on_reply, .ctx = x, .dlv = ids, .dlv_cap = ids ? max : 0,
                       .handles = &r, .nhandles = 1 };
    if (chani_client_call(r->cl, &rq, &rpc, chani_grace(deadline)) < 0)
        return -1;
    if (x->err) {
        errno = x->err;
        return -1;
    }
    if (rpc.status != CHAN__STATUS__OK)
        return chani_rpc_fail(&rpc);
    if (x->n == 0) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

ssize_t chani_remote_recv(chan_t *ch, void *buf, size_t size, void **alloc, int64_t deadline)
{
    chan_remote_t *r = remote_of(ch);
    struct recv_ctx x = { .buf = buf, .size = size, .alloc = alloc };
    uint64_t max_bytes = alloc ? chani_client_max_value(r->cl) : size;
    if (recv_call(r, 1, max_bytes, &x, recv_reply, deadline, NULL) < 0)
        return -1;
    return (ssize_t)x.len;
}

ssize_t chani_remote_recv_many(chan_t *ch, chan_val_t *vals, size_t max, int64_t deadline)
{
    chan_remote_t *r = remote_of(ch);
    uint32_t batch = chani_client_max_batch(r->cl);
    if (max > batch)
        max = batch;
    struct recv_ctx x = { .vals = vals, .max = max };
    uint64_t *ids = malloc(max * sizeof *ids);
    if (!ids) {
        errno = ENOMEM;
        return -1;
    }
    int rc = recv_call(r, (uint32_t)max, chani_client_max_value(r->cl), &x, recv_many_reply,
                       deadline, ids);
    free(ids);
    return rc < 0 ? -1 : (ssize_t)x.n;
}

/* ---- close ---- */

int chani_remote_close(chan_t *ch)
{
    chan_remote_t *r = remote_of(ch);
    Chan__Close m = CHAN__CLOSE__INIT;
    set_name(&m.name, &m.has_name, r);
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_CLOSE;
    rq.close = &m;
    chan_rpc_t rpc = { .handles = &r, .nhandles = 1 };
    /* chand answers at once: 5 s of silence is a connection that stopped
     * answering (then ECONNRESET: the close may have been done) */
    if (chani_client_call(r->cl, &rq, &rpc, chan_now() + ROUND_TRIP_WAIT_MS) < 0)
        return -1;
    return rpc.status == CHAN__STATUS__OK ? 0 : chani_rpc_fail(&rpc);
}

/* ---- select, every case on one daemon ---- */

struct select_ctx {
    chan_case_t *cases;
    size_t n;
    int err;
};

static bool select_reply(chan_rpc_t *rpc, const Chan__Reply *r)
{
    struct select_ctx *x = rpc->ctx;
    if (r->result_case != CHAN__REPLY__RESULT_SELECT || !r->select->has_index) {
        rpc->index = -1;
        return true;
    }
    uint32_t i = r->select->index;
    if (i >= x->n) {
        x->err = EPROTO;
        rpc->index = -1;
        return false;
    }
    rpc->index = (int)i;
    chan_case_t *c = &x->cases[i];
    if (rpc->status == CHAN__STATUS__CLOSED) {
        c->err = EPIPE;
    } else if (rpc->status == CHAN__STATUS__TOO_LARGE) {
        c->err = EMSGSIZE;
        c->n = r->select->has_value_len ? (size_t)r->select->value_len : 0;
    } else if (c->op == CHAN_RECV && r->select->delivery) {
        const ProtobufCBinaryData *v = &r->select->delivery->value;
        c->redelivered = r->select->delivery->has_redelivered ? r->select->delivery->redelivered : 0;
        if (c->buf) {
            if (v->len > c->len) {
                x->err = EPROTO;
                return false;
            }
            if (v->len)
                memcpy(c->buf, v->data, v->len);
        } else if (!(c->val = dup_bytes(v))) {
            x->err = ENOMEM;
            return false;
        }
        c->n = v->len;
    }
    return true;
}

int chani_remote_select(chan_case_t *cases, size_t n, int64_t deadline)
{
    chan_client_t *cl = NULL;
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cases[i].ch)
            continue;
        chan_client_t *c = remote_of(cases[i].ch)->cl;
        if (cl && c != cl)
            return chani_mixed_select(cases, n, deadline);   /* several daemons */
        cl = c;
        live++;
    }
    if (!cl)
        return chani_local_select(cases, n, deadline);   /* only nil cases */
    Chan__Case *pc = calloc(live, sizeof *pc);
    Chan__Case **pp = calloc(live, sizeof *pp);
    size_t *map = calloc(live, sizeof *map);   /* wire case -> caller's case */
    chan_remote_t **hs = calloc(live, sizeof *hs);
    if (!pc || !pp || !map || !hs) {
        free(pc);
        free(pp);
        free(map);
        free(hs);
        errno = ENOMEM;
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cases[i].ch)
            continue;
        chan_remote_t *r = remote_of(cases[i].ch);
        chan__case__init(&pc[k]);
        set_name(&pc[k].name, &pc[k].has_name, r);
        pc[k].has_op = true;
        pc[k].op = cases[i].op == CHAN_SEND ? CHAN__OP__SEND : CHAN__OP__RECV;
        if (cases[i].op == CHAN_SEND) {
            pc[k].has_value = true;
            pc[k].value.data = cases[i].buf;
            pc[k].value.len = cases[i].len;
        } else {
            pc[k].has_max_bytes = true;
            pc[k].max_bytes = cases[i].buf ? cases[i].len : chani_client_max_value(cl);
        }
        pp[k] = &pc[k];
        hs[k] = r;
        map[k++] = i;
    }
    /* The reply's index names a wire case; the ctx sees the wire order. */
    chan_case_t *wire = calloc(live, sizeof *wire);
    if (!wire) {
        free(pc);
        free(pp);
        free(map);
        free(hs);
        errno = ENOMEM;
        return -1;
    }
    for (size_t j = 0; j < live; j++)
        wire[j] = cases[map[j]];
    Chan__Select m = CHAN__SELECT__INIT;
    m.n_cases = live;
    m.cases = pp;
    chani_set_timeout(&m.has_timeout_ms, &m.timeout_ms, deadline);
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_SELECT;
    rq.select = &m;
    struct select_ctx x = { wire, live, 0 };
    chan_rpc_t rpc = { .on_reply = select_reply, .ctx = &x, .index = -1, .handles = hs,
                       .nhandles = live };
    int rc = chani_client_call(cl, &rq, &rpc, chani_grace(deadline));
    if (rc == 0 && x.err) {
        errno = x.err;
        rc = -1;
    } else if (rc == 0 && rpc.index < 0) {
        if (rpc.status == CHAN__STATUS__OK)
            rpc.status = CHAN__STATUS__BAD_REQUEST;
        rc = chani_rpc_fail(&rpc);
    } else if (rc == 0) {
        size_t i = map[rpc.index];
        cases[i].err = wire[rpc.index].err;
        cases[i].n = wire[rpc.index].n;
        cases[i].val = wire[rpc.index].val;
        cases[i].redelivered = wire[rpc.index].redelivered;
        rc = (int)i;
    }
    free(wire);
    free(pc);
    free(pp);
    free(map);
    free(hs);
    return rc;
}

/* ---- stat ---- */

struct stat_ctx {
    chan_stat_t *one;
    chan_stat_t *list;   /* chan_list: the pages so far */
    size_t n, cap;
    uint64_t next_cursor;
    chan_server_stat_t *server;
    chan_cluster_stat_t *cluster;
    int err;
};

#define COPY_STR(dst, src) snprintf((dst), sizeof(dst), "%s", (src) ? (src) : "")

static void copy_cluster(chan_cluster_stat_t *o, const Chan__ClusterStat *c)
{
    memset(o, 0, sizeof *o);
    o->member = 1;
    COPY_STR(o->cluster, c->cluster);
    COPY_STR(o->group, c->group);
    COPY_STR(o->node, c->node);
    COPY_STR(o->role, c->role);
    COPY_STR(o->primary, c->primary);
    COPY_STR(o->etcd, c->etcd);
    COPY_STR(o->replication, c->replication);
    o->term = c->term;
    o->etcd_ok = c->etcd_ok;
    o->lease_left_ms = c->lease_left_ms;
    o->elections_won = c->elections_won;
    o->fences = c->fences;
    o->etcd_errors = c->etcd_errors;
    o->replicas = c->replicas;
    o->replica_lag_bytes = c->replica_lag_bytes;
    for (size_t i = 0; i < c->n_nodes && o->nnodes < CHAN_CLUSTER_MAX_NODES; i++) {
        chan_cluster_node_t *n = &o->nodes[o->nnodes++];
        COPY_STR(n->node, c->nodes[i]->node);
        COPY_STR(n->group, c->nodes[i]->group);
        COPY_STR(n->addr, c->nodes[i]->addr);
        COPY_STR(n->role, c->nodes[i]->role);
        n->gen = c->nodes[i]->gen;
        n->off = c->nodes[i]->off;
    }
}

static void copy_durability(chan_server_stat_t *o, const Chan__Durability *d)
{
    o->durable = 1;
    snprintf(o->fsync, sizeof o->fsync, "%s", d->fsync ? d->fsync : "");
    o->disk_bytes = d->disk_bytes;
    o->journal_records = d->records;
    o->journal_bytes = d->bytes_written;
    o->fsyncs = d->fsyncs;
    o->fsync_us_total = d->fsync_us_total;
    o->fsync_us_max = d->fsync_us_max;
    o->rewrites = d->rewrites;
    o->rewrite_failures = d->rewrite_failures;
    o->last_rewrite_unix = d->last_rewrite_unix;
    o->last_rewrite_us = d->last_rewrite_us;
    o->last_rewrite_stall_us = d->last_rewrite_stall_us;
    o->refusing_sends = d->refusing_sends;
    o->recovery_us = d->recovery_us;
    o->recovered_channels = d->recovered_channels;
    o->recovered_values = d->recovered_values;
}

static void copy_stat(chan_stat_t *out, const Chan__ChannelStat *s)
{
    memset(out, 0, sizeof *out);
    size_t n = s->name.len < sizeof out->name ? s->name.len : sizeof out->name - 1;
    memcpy(out->name, s->name.data, n);
    out->name[n] = 0;
    out->len = s->len;
    out->cap = s->capacity;
    out->senders = s->senders;
    out->receivers = s->receivers;
    out->inflight = s->inflight;
    out->sent = s->sent;
    out->received = s->received;
    out->closed = s->closed;
    out->temp = s->temp;
}

static bool stat_reply(chan_rpc_t *rpc, const Chan__Reply *r)
{
    struct stat_ctx *x = rpc->ctx;
    if (r->result_case != CHAN__REPLY__RESULT_STAT)
        return true;
    const Chan__StatReply *m = r->stat;
    if (x->one && m->n_channels == 1) {
        copy_stat(x->one, m->channels[0]);
        x->n = 1;
    } else if (!x->one && !x->server) {
        if (x->n + m->n_channels > x->cap) {
            size_t cap = x->cap ? x->cap : 64;
            while (cap < x->n + m->n_channels)
                cap *= 2;
            chan_stat_t *l = realloc(x->list, cap * sizeof *l);
            if (!l) {
                x->err = ENOMEM;
                return true;
            }
            x->list = l;
            x->cap = cap;
        }
        for (size_t i = 0; i < m->n_channels; i++)
            copy_stat(&x->list[x->n++], m->channels[i]);
        x->next_cursor = m->has_next_cursor ? m->next_cursor : 0;
    } else if (x->server && m->server) {
        const Chan__ServerStat *s = m->server;
        chan_server_stat_t *o = x->server;
        memset(o, 0, sizeof *o);
        o->uptime_ms = s->uptime_ms;
        o->connections = s->connections;
        o->channels = s->channels;
        o->pending = s->pending;
        o->inflight = s->inflight;
        o->values_sent = s->values_sent;
        o->values_received = s->values_received;
        o->value_bytes = s->value_bytes;
        o->ack_expired = s->ack_expired;
        o->output_bytes = s->output_bytes;
        o->loop_max_us = s->loop_max_us;
        size_t nb = s->n_loop_counts;
        if (nb > CHAN_LOOP_BUCKETS || (nb && s->n_loop_bounds_us + 1 != nb)) {
            x->err = EPROTO;
            return true;
        }
        o->loop_buckets = nb;
        for (size_t i = 0; i < nb; i++) {
            o->loop_bounds_us[i] = i + 1 < nb ? s->loop_bounds_us[i] : UINT64_MAX;
            o->loop_counts[i] = s->loop_counts[i];
        }
        if (s->limits) {
            o->max_frame = s->limits->max_frame;
            o->max_value = s->limits->max_value;
        }
        if (s->durability)
            copy_durability(o, s->durability);
        if (s->tls) {
            o->tls = 1;
            o->tls_handshakes = s->tls->handshakes;
            o->tls_handshake_failures = s->tls->handshake_failures;
            o->tls_reloads = s->tls->reloads;
            o->tls_reload_failures = s->tls->reload_failures;
            o->tls_not_after = s->tls->not_after;
        }
        if (x->cluster) {
            if (s->cluster)
                copy_cluster(x->cluster, s->cluster);
            else
                memset(x->cluster, 0, sizeof *x->cluster);
        }
        x->n = 1;
    }
    return true;
}

/* h: the handle whose channel m names, or NULL. */
static int stat_call(chan_client_t *cl, Chan__Stat *m, struct stat_ctx *x,
                     chan_remote_t *const *h, int64_t deadline)
{
    if (!cl) {
        errno = EINVAL;
        return -1;
    }
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_STAT;
    rq.stat = m;
    chan_rpc_t rpc = { .on_reply = stat_reply, .ctx = x, .handles = h, .nhandles = h ? 1 : 0 };
    int rc = chani_client_call(cl, &rq, &rpc, deadline);
    if (rc == 0 && rpc.status != CHAN__STATUS__OK)
        rc = chani_rpc_fail(&rpc);
    else if (rc == 0 && x->err) {
        errno = x->err;
        rc = -1;
    }
    if (rc < 0) {
        int e = errno;
        free(x->list);   /* a chan_list's pages so far */
        x->list = NULL;
        errno = e;
    }
    return rc;
}

int chan_stat(chan_client_t *cl, const char *name, chan_stat_t *st, int64_t deadline)
{
    chani_errmsg_clear();
    if (!cl || !name || !st || !name_ok(name, strlen(name))) {
        errno = EINVAL;
        return -1;
    }
    Chan__Stat m = CHAN__STAT__INIT;
    m.has_name = true;
    m.name.data = (uint8_t *)name;
    m.name.len = strlen(name);
    struct stat_ctx x = { .one = st };
    chani_moves_t moves = { 0 };
    for (;;) {
        chan_client_t *c = cl ? chani_route(cl, name, m.name.len, &moves, deadline) : NULL;
        if (c && stat_call(c, &m, &x, NULL, deadline) == 0)
            break;
        if (!c || errno != EREMCHG || chani_route_moved_name(cl, &moves, deadline) < 0)
            return -1;
    }
    if (x.n != 1) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

ssize_t chani_remote_len(chan_t *ch)
{
    chan_remote_t *r = remote_of(ch);
    Chan__Stat m = CHAN__STAT__INIT;
    set_name(&m.name, &m.has_name, r);
    chan_stat_t st;
    struct stat_ctx x = { .one = &st };
    if (stat_call(r->cl, &m, &x, &r, chan_now() + ROUND_TRIP_WAIT_MS) < 0)
        return -1;
    if (x.n != 1) {
        errno = EPROTO;
        return -1;
    }
    return (ssize_t)st.len;
}

static int stat_by_name(const void *a, const void *b)
{
    return strcmp(((const chan_stat_t *)a)->name, ((const chan_stat_t *)b)->name);
}

ssize_t chan_list(chan_client_t *cl, chan_stat_t **out, int64_t deadline)
{
    chani_errmsg_clear();
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    /* Page through the daemon's table (each page is one bounded piece of
     * its work), then sort: pages come in hash order. */
    Chan__Stat m = CHAN__STAT__INIT;
    m.has_all = m.all = true;
    m.has_cursor = true;
    struct stat_ctx x = { 0 };
    /* in a cluster, every group's primary in turn */
    chan_client_t *conns[64];
    ssize_t nconns = cl ? chani_route_all(cl, conns, 64, deadline) : 1;
    if (nconns < 0)
        return -1;
    for (ssize_t i = 0; i < nconns; i++) {
        x.next_cursor = 0;
        do {
            m.cursor = x.next_cursor;
            if (stat_call(cl ? conns[i] : NULL, &m, &x, NULL, deadline) < 0)
                return -1;   /* stat_call freed x.list */
        } while (x.next_cursor);
    }
    qsort(x.list, x.n, sizeof *x.list, stat_by_name);
    /* A channel deleted and made again during the listing may come
     * twice: list it once. */
    size_t k = 0;
    for (size_t i = 0; i < x.n; i++)
        if (!k || strcmp(x.list[k - 1].name, x.list[i].name) != 0)
            x.list[k++] = x.list[i];
    if (!k) {
        free(x.list);
        x.list = NULL;
    }
    *out = x.list;
    return (ssize_t)k;
}

int chan_server_stat(chan_client_t *cl, chan_server_stat_t *st, int64_t deadline)
{
    chani_errmsg_clear();
    if (!st) {
        errno = EINVAL;
        return -1;
    }
    Chan__Stat m = CHAN__STAT__INIT;
    struct stat_ctx x = { .server = st };
    if (stat_call(cl, &m, &x, NULL, deadline) < 0)
        return -1;
    if (x.n != 1) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

int chan_cluster_stat(chan_client_t *cl, chan_cluster_stat_t *st, int64_t deadline)
{
    chani_errmsg_clear();
    chan_server_stat_t *server = st ? malloc(sizeof *server) : NULL;
    if (!server) {
        errno = st ? ENOMEM : EINVAL;
        return -1;
    }
    Chan__Stat m = CHAN__STAT__INIT;
    struct stat_ctx x = { .server = server, .cluster = st };
    int rc = stat_call(cl, &m, &x, NULL, deadline);
    free(server);
    if (rc < 0)
        return -1;
    if (x.n != 1) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

/*
 * chand_dispatch.c - from decoded Request frames to the channel core, and
 * from the core's answers to Reply frames.
 *
 * Every field that comes from the network is checked here before the core
 * sees it: names, op kinds, required fields.  A request that breaks the
 * protocol gets an error reply naming what was wrong, and its connection is
 * closed; a request that is valid but cannot be served (no such channel, a
 * value over the limit) gets an error reply and the connection goes on.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "chand_alloc.h"
#include "chand_log.h"
#include "chand_server.h"
#include "chand_slots.h"

/* A timeout longer than this (about 100 years) is "forever". */
#define TIMEOUT_MAX_MS INT64_C(3153600000000)

/* Bytes a frame needs around one value: tags, lengths, a 255-byte name, a
 * timeout, piggybacked ids.  max_value = max_frame - this, so that a value
 * of max_value always fits in a Send and in a Recv reply. */
#define FRAME_OVERHEAD 512

/* Cases in one Select: fixed, not a flag; the core holds requests to it and
 * Hello tells clients. */
#define MAX_CASES 1024

uint64_t chand_max_value(const chand_opts_t *o)
{
    return o->max_frame - FRAME_OVERHEAD;
}

core_limits_t chand_core_limits(const chand_opts_t *o)
{
    core_limits_t l = {
        .max_value = chand_max_value(o),
        .max_reply = o->max_frame - FRAME_OVERHEAD,
        .max_batch = (uint32_t)o->max_batch,
        .max_pending = (uint32_t)o->max_pending,
        .max_cases = MAX_CASES,
        .max_channels = o->max_channels,
        .max_cap = UINT64_C(1) << 32,
        .max_memory = o->max_memory,
        .ack_wait = (int64_t)o->ack_wait_ms,
    };
    return l;
}

static void fill_limits(const chand_server_t *s, Chan__Limits *l)
{
    l->has_max_frame = l->has_max_value = l->has_max_batch = true;
    l->has_max_pending = l->has_max_cases = l->has_ack_wait_ms = true;
    l->max_frame = s->opts.max_frame;
    l->ack_wait_ms = s->opts.ack_wait_ms;
    l->max_value = chand_max_value(&s->opts);
    l->max_batch = (uint32_t)s->opts.max_batch;
    l->max_pending = (uint32_t)s->opts.max_pending;
    l->max_cases = MAX_CASES;
}

static int64_t timeout_of(bool has, int64_t ms)
{
    if (!has || ms < 0 || ms > TIMEOUT_MAX_MS)
        return -1;
    return ms;
}

/* A channel name from the wire, or false (and the connection failed). */
static bool name_of(chand_conn_t *c, uint64_t id, bool has, ProtobufCBinaryData b, core_bytes_t *out)
{
    if (!has || !chan_name_valid(b.data, b.len)) {
        chand_conn_fail(c, id, CHAN__STATUS__BAD_REQUEST,
                        "bad channel name: 1-255 bytes of [A-Za-z0-9._:/-]");
        return false;
    }
    out->data = b.data;
    out->len = b.len;
    return true;
}

/* ---- users and permissions (--acl-file) ---- */

/* c's user as of the ACL in force: after a SIGHUP loaded another, found
 * again by name.  False if the user is gone from the file: the connection
 * is then closed (its next request is the first to learn of it). */
static bool user_current(chand_conn_t *c, uint64_t id)
{
    chand_server_t *s = c->srv;
    if (!c->user_name[0] || c->user_gen == s->acl_gen)
        return true;
    c->user = chand_acl_find(s->acl, c->user_name);
    c->user_gen = s->acl_gen;
    if (c->user)
        return true;
    char msg[160];
    snprintf(msg, sizeof msg, "user %s is no longer in the --acl-file", c->user_name);
    chand_conn_fail(c, id, CHAN__STATUS__UNAUTHORIZED, msg);
    return false;
}

/* Whether the owner of temporary channel ch said Hello as the same user as
 * c: a temporary channel is its maker's user's, whatever the patterns. */
static bool owns_temp(const chand_conn_t *c, const core_chan_t *ch)
{
    const chand_conn_t *owner = ch ? core_chan_owner(ch) : NULL;
    return owner && !strcmp(owner->user_name, c->user_name);
}

static void deny(chand_conn_t *c, uint64_t id, const char *what, core_bytes_t name)
{
    char msg[400];
    if (name.len)
        snprintf(msg, sizeof msg, "user %s may not %s '%.*s'", c->user_name, what,
                 (int)name.len, (const char *)name.data);
    else
        snprintf(msg, sizeof msg, "user %s may not %s", c->user_name, what);
    log_debug("conn %llu (%s): %s", (unsigned long long)c->num, c->peer, msg);
    chand_conn_answer(c, id, CHAN__STATUS__UNAUTHORIZED, msg);
}

/* Whether c may do one of ops on channel name.  No user: every permission
 * (no ACL, or the --auth-file token). */
static bool allowed(const chand_conn_t *c, unsigned ops, core_bytes_t name)
{
    if (!c->user_name[0])
        return true;
    if (chand_acl_allows(c->user, ops, name.data, name.len))
        return true;
    return owns_temp(c, core_find(c->srv->core, name));
}

/* allowed, or a refusal answered (the connection stays). */
static bool may(chand_conn_t *c, uint64_t id, unsigned ops, const char *what, core_bytes_t name)
{
    if (allowed(c, ops, name))
        return true;
    deny(c, id, what, name);
    return false;
}

static bool may_flag(chand_conn_t *c, uint64_t id, unsigned flag, const char *what)
{
    if (!c->user_name[0] || (c->user->flags & flag))
        return true;
    core_bytes_t none = { NULL, 0 };
    deny(c, id, what, none);
    return false;
}

/* ---- handlers, one per request kind ---- */

static bool token_ok(const chand_server_t *s, const Chan__Hello *h)
{
    if (!s->token)
        return !s->acl;   /* with users, a Hello must name one */
    if (!h->has_token)
        return false;
    /* constant time in the token's contents: no early exit */
    size_t n = h->token.len > s->token_len ? h->token.len : s->token_len;
    unsigned diff = (unsigned)(h->token.len ^ s->token_len);
    for (size_t i = 0; i < n; i++) {
        uint8_t a = i < h->token.len ? h->token.data[i] : 0;
        uint8_t b = i < s->token_len ? s->token[i] : 0;
        diff |= (unsigned)(a ^ b);
    }
    return diff == 0;
}

/* A refused Hello: its answer waits, longer after each failure from its
 * address (chand_guard.h); the log line is rate-limited. */
static void refuse_hello(chand_conn_t *c, uint64_t id, const char *why, const char *msg)
{
    chand_server_t *s = c->srv;
    uint64_t delay = c->addr ? chand_guard_failed(c->addr, chand_now()) : 0;
    chand_log_peer(s, "conn %llu (%s): Hello refused: %s (failure %u from %s; answered in "
                   "%llu ms)", (unsigned long long)c->num, c->peer, why,
                   c->addr ? c->addr->fails : 0, c->addr ? c->addr->key : "?",
                   (unsigned long long)delay);
    chand_conn_refuse(c, id, msg, delay);
}

/* Who the Hello says it is: a user of the --acl-file with its secret, or
 * the --auth-file token (every permission), or anyone if chand has
 * neither.  A user name given to a chand without an ACL is ignored. */
static bool hello_auth(chand_conn_t *c, uint64_t id, const Chan__Hello *h)
{
    chand_server_t *s = c->srv;
    size_t ulen = h->user ? strlen(h->user) : 0;
    if (!s->acl || !ulen) {
        if (token_ok(s, h))
            return true;
        if (s->acl && !s->token)
            refuse_hello(c, id, "no user name", "this chand needs a user name (and its secret)");
        else
            refuse_hello(c, id, "bad or missing token", "bad or missing token");
        return false;
    }
    if (!chand_acl_user_valid(h->user, ulen)) {
        refuse_hello(c, id, "an invalid user name", "bad user name or secret");
        return false;
    }
    const acl_user_t *u = chand_acl_check(s->acl, h->user, h->has_token ? h->token.data : NULL,
                                          h->has_token ? h->token.len : 0);
    if (!u) {
        char why[120];
        snprintf(why, sizeof why, "user %s: %s", h->user,
                 chand_acl_find(s->acl, h->user) ? "wrong secret" : "no such user");
        refuse_hello(c, id, why, "bad user name or secret");
        return false;
    }
    memcpy(c->user_name, h->user, ulen + 1);
    c->user = u;
    c->user_gen = s->acl_gen;
    return true;
}

static void h_hello(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    const Chan__Hello *h = rq->hello;
    if (c->hello) {
        chand_conn_fail(c, id, CHAN__STATUS__BAD_REQUEST, "Hello sent twice");
        return;
    }
    if (!h->has_version || h->version != CHAN_PROTOCOL_VERSION) {
        char msg[96];
        snprintf(msg, sizeof msg, "unsupported protocol version %u (this server speaks %u)",
                 h->has_version ? h->version : 0, CHAN_PROTOCOL_VERSION);
        chand_conn_fail(c, id, CHAN__STATUS__BAD_REQUEST, msg);
        return;
    }
    if (!hello_auth(c, id, h))
        return;
    chand_conn_hello_done(c);
    Chan__Limits lim = CHAN__LIMITS__INIT;
    fill_limits(c->srv, &lim);
    Chan__HelloReply hr = CHAN__HELLO_REPLY__INIT;
    hr.has_version = true;
    hr.version = CHAN_PROTOCOL_VERSION;
    hr.server = "chand " PACKAGE_VERSION;
    hr.limits = &lim;
    if (c->srv->cluster) {
        enum cl_role role = chand_cluster_role(c->srv->cluster);
        hr.role = (char *)chand_cluster_role_name(role);
        hr.group = (char *)c->srv->opts.group;
        if (!chand_server_may_serve(c->srv))
            hr.primary = (char *)chand_cluster_primary(c->srv->cluster);
    }
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = true;
    r.id = id;
    r.status = CHAN__STATUS__OK;
    r.result_case = CHAN__REPLY__RESULT_HELLO;
    r.hello = &hr;
    chand_conn_reply(c, &r);
    log_debug("conn %llu: hello from %s%s%s", (unsigned long long)c->num,
              h->client_name ? h->client_name : "?", c->user_name[0] ? " as user " : "",
              c->user_name);
}

static void h_open(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    const Chan__Open *o = rq->open;
    core_bytes_t name = { NULL, 0 };
    bool temp = o->has_temp && o->temp;
    if (!(temp && !o->has_name) && !name_of(c, id, o->has_name, o->name, &name))
        return;
    /* a temporary channel with a name chand picks is every user's right:
     * it is private to the user and dies with the connection.  Else:
     * making one needs make; opening one that exists (or asking only if
     * it does) needs some permission on it. */
    bool no_create = o->has_no_create && o->no_create;
    if (name.len) {
        bool makes = temp || (!no_create && !core_find(c->srv->core, name));
        if (makes ? !may(c, id, ACL_MAKE, "make", name)
                  : !may(c, id, ACL_CHAN_OPS, "open", name))
            return;
    }
    core_open(c->sess, id, name, o->has_capacity, o->capacity, temp,
              o->has_no_create && o->no_create);
}

static void h_send(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    const Chan__Send *m = rq->send;
    core_bytes_t name;
    if (!name_of(c, id, m->has_name, m->name, &name) ||
        !may(c, id, ACL_SEND, "send to", name))
        return;
    size_t n = m->n_values;
    core_bytes_t *vals = chan_arena_alloc(&c->srv->arena, (n ? n : 1) * sizeof *vals);
    if (!vals) {
        chand_conn_answer(c, id, CHAN__STATUS__BUSY, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        vals[i].data = m->values[i].data;
        vals[i].len = m->values[i].len;
    }
    core_send(c->sess, id, name, vals, n, timeout_of(m->has_timeout_ms, m->timeout_ms),
              (int64_t)chand_now());
}

static void h_recv(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    const Chan__Recv *m = rq->recv;
    core_bytes_t name;
    if (!name_of(c, id, m->has_name, m->name, &name) ||
        !may(c, id, ACL_RECV, "receive from", name))
        return;
    core_recv(c->sess, id, name, m->has_max ? m->max : 1,
              m->has_max_bytes ? m->max_bytes : UINT64_MAX,
              timeout_of(m->has_timeout_ms, m->timeout_ms), (int64_t)chand_now());
}

static void h_close(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    core_bytes_t name;
    if (name_of(c, id, rq->close->has_name, rq->close->name, &name) &&
        may(c, id, ACL_CLOSE, "close", name))
        core_close(c->sess, id, name);
}

static void h_delete(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    core_bytes_t name;
    if (name_of(c, id, rq->delete_->has_name, rq->delete_->name, &name) &&
        may(c, id, ACL_DELETE, "delete", name))
        core_delete(c->sess, id, name);
}

static void h_select(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    const Chan__Select *m = rq->select;
    size_t n = m->n_cases;
    core_case_req_t *cases = chan_arena_alloc(&c->srv->arena, (n ? n : 1) * sizeof *cases);
    if (!cases) {
        chand_conn_answer(c, id, CHAN__STATUS__BUSY, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const Chan__Case *k = m->cases[i];
        if (!name_of(c, id, k->has_name, k->name, &cases[i].name))
            return;
        if (!k->has_op || (k->op != CHAN__OP__SEND && k->op != CHAN__OP__RECV)) {
            chand_conn_fail(c, id, CHAN__STATUS__BAD_REQUEST, "select case without a valid op");
            return;
        }
        cases[i].send = k->op == CHAN__OP__SEND;
        cases[i].value.data = k->value.data;
        cases[i].value.len = k->has_value ? k->value.len : 0;
        cases[i].max_bytes = k->has_max_bytes ? k->max_bytes : UINT64_MAX;
    }
    /* a forbidden case refuses the whole select: none of it may happen */
    for (size_t i = 0; i < n; i++)
        if (!may(c, id, cases[i].send ? ACL_SEND : ACL_RECV,
                 cases[i].send ? "send to" : "receive from", cases[i].name))
            return;
    core_select(c->sess, id, cases, n, m->has_reserve && m->reserve,
                m->has_priority ? m->priority : 0, m->has_in_order && m->in_order, timeout_of(m->has_timeout_ms, m->timeout_ms), (int64_t)chand_now());
}

static bool target_of(chand_conn_t *c, uint64_t id, bool has, uint64_t *out, uint64_t v)
{
    if (!has) {
        chand_conn_fail(c, id, CHAN__STATUS__BAD_REQUEST, "target request id missing");
        return false;
    }
    *out = v;
    return true;
}

static void h_cancel(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    uint64_t t;
    if (target_of(c, id, rq->cancel->has_target, &t, rq->cancel->target))
        core_cancel(c->sess, id, t);
}

static void h_commit(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    uint64_t t;
    if (target_of(c, id, rq->commit->has_target, &t, rq->commit->target))
        core_commit(c->sess, id, t, rq->commit->has_timeout_ms,
                    timeout_of(rq->commit->has_timeout_ms, rq->commit->timeout_ms),
                    (int64_t)chand_now());
}

static void h_release(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    uint64_t t;
    if (target_of(c, id, rq->release->has_target, &t, rq->release->target))
        core_release(c->sess, id, t);
}

static void h_ping(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    Chan__Pong p = CHAN__PONG__INIT;
    /* the echo must fit in a frame, as a value does */
    if (rq->ping->has_payload && rq->ping->payload.len > chand_max_value(&c->srv->opts)) {
        chand_conn_answer(c, id, CHAN__STATUS__TOO_LARGE, "ping payload over max_value");
        return;
    }
    p.has_payload = rq->ping->has_payload;
    p.payload = rq->ping->payload;
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = true;
    r.id = id;
    r.status = CHAN__STATUS__OK;
    r.result_case = CHAN__REPLY__RESULT_PONG;
    r.pong = &p;
    chand_conn_reply(c, &r);
}

/* ---- stat ---- */

static void fill_chan_stat(const core_chan_t *ch, Chan__ChannelStat *st)
{
    core_chan_info_t i;
    core_chan_info(ch, &i);
    chan__channel_stat__init(st);
    st->has_name = st->has_len = st->has_capacity = st->has_senders = st->has_receivers = true;
    st->has_inflight = st->has_sent = st->has_received = st->has_closed = st->has_temp = true;
    st->name.data = (uint8_t *)i.name.data;
    st->name.len = i.name.len;
    st->len = i.len;
    st->capacity = i.cap;
    st->senders = i.senders;
    st->receivers = i.receivers;
    st->inflight = i.inflight;
    st->sent = i.sent;
    st->received = i.received;
    st->closed = i.closed;
    st->temp = i.temp;
}

struct chan_list {
    const core_chan_t **v;
    size_t n, cap;
};

static void collect_chan(const core_chan_t *ch, void *arg)
{
    struct chan_list *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = ch;
}

/* Stat{all} pages: about limit channels each (whole hash buckets, so a
 * few more or fewer), never more than a frame holds, and never more than
 * STAT_VISITS_PER_CHAN empty buckets per channel wanted, so that a
 * request's work stays bounded however large or sparse the table. */
enum { STAT_PAGE_DEFAULT = 1000, STAT_PAGE_MAX = 10000, STAT_VISITS_PER_CHAN = 10 };

static size_t chan_stat_size(const core_chan_t *ch)
{
    Chan__ChannelStat st;
    fill_chan_stat(ch, &st);
    size_t n = chan__channel_stat__get_packed_size(&st);
    return n + 1 + 5;   /* its tag and length prefix, at most */
}

/* Collect one page of the channels from cursor on into l; returns the
 * next page's cursor (0: no more).  *cut is set if a single bucket was
 * more than a frame, which only a --max-frame near its minimum allows. */
static uint64_t stat_page(chand_server_t *s, uint64_t cursor, uint32_t limit,
                          struct chan_list *l, bool *cut)
{
    size_t want = limit ? (limit < STAT_PAGE_MAX ? limit : STAT_PAGE_MAX) : STAT_PAGE_DEFAULT;
    size_t room = s->opts.max_frame - 256, used = 0, visits = 0;
    *cut = false;
    do {
        size_t before = l->n, bucket = 0;
        uint64_t next = core_scan_chans(s->core, cursor, collect_chan, l);
        for (size_t i = before; i < l->n; i++)
            bucket += chan_stat_size(l->v[i]);
        if (used + bucket > room) {
            if (before) {
                l->n = before;   /* the next page starts with this bucket */
                return cursor;
            }
            size_t got = l->n;
            for (l->n = 0; l->n < got && used + chan_stat_size(l->v[l->n]) <= room; l->n++)
                used += chan_stat_size(l->v[l->n]);
            *cut = true;
            return next;
        }
        used += bucket;
        cursor = next;
    } while (cursor && l->n < want && ++visits < want * STAT_VISITS_PER_CHAN);
    return cursor;
}

static void fill_durability(chand_server_t *s, Chan__Durability *d)
{
    jr_stats_t js;
    chand_journal_stats(s->journal, &js);
    chan__durability__init(d);
    d->fsync = (char *)s->opts.fsync;
    d->has_disk_bytes = d->has_records = d->has_bytes_written = d->has_fsyncs = true;
    d->has_fsync_us_total = d->has_fsync_us_max = d->has_rewrites = true;
    d->has_rewrite_failures = d->has_last_rewrite_unix = d->has_last_rewrite_us = true;
    d->has_last_rewrite_stall_us = d->has_refusing_sends = d->has_recovery_us = true;
    d->has_recovered_channels = d->has_recovered_values = true;
    d->disk_bytes = js.disk_bytes;
    d->records = js.records;
    d->bytes_written = js.bytes_written;
    d->fsyncs = js.fsyncs;
    d->fsync_us_total = js.fsync_us_total;
    d->fsync_us_max = js.fsync_us_max;
    d->rewrites = js.rewrites;
    d->rewrite_failures = js.rewrite_failures;
    d->last_rewrite_unix = js.last_rewrite_unix;
    d->last_rewrite_us = js.last_rewrite_us;
    d->last_rewrite_stall_us = js.last_rewrite_stall_us;
    d->refusing_sends = js.refusing;
    d->recovery_us = js.recovery.us;
    d->recovered_channels = js.recovery.channels;
    d->recovered_values = js.recovery.values;
}

/* The cluster part of the server's Stat: this node, and every node as it
 * last read them from etcd (static: chand answers one request at a time). */
static void fill_cluster(chand_server_t *s, Chan__ClusterStat *cs)
{
    static Chan__ClusterNode nodes[CL_MAX_NODES];
    static Chan__ClusterNode *nodep[CL_MAX_NODES];
    static char role[16];
    cl_stats_t st;
    chand_cluster_stats(s->cluster, &st);
    chan__cluster_stat__init(cs);
    snprintf(role, sizeof role, "%s", chand_cluster_role_name(st.role));
    cs->cluster = (char *)s->opts.cluster;
    cs->group = (char *)s->opts.group;
    cs->node = (char *)s->opts.node;
    cs->role = role;
    cs->replication = (char *)s->opts.replication;
    cs->has_term = cs->has_etcd_ok = cs->has_lease_left_ms = cs->has_elections_won = true;
    cs->has_fences = cs->has_etcd_errors = cs->has_replicas = cs->has_replica_lag_bytes = true;
    cs->term = st.term;
    cs->primary = (char *)chand_cluster_primary(s->cluster);
    static char etcd[sizeof st.etcd];
    memcpy(etcd, st.etcd, sizeof etcd);
    cs->etcd = etcd;
    cs->etcd_ok = st.etcd_ok;
    cs->lease_left_ms = st.lease_left_ms;
    cs->elections_won = st.elections_won;
    cs->fences = st.fences;
    cs->etcd_errors = st.etcd_errors;
    cs->replicas = chand_repl_replicas(s);
    cs->replica_lag_bytes = chand_repl_lag_max(s);
    const cl_node_t *ns;
    size_t n = chand_cluster_nodes(s->cluster, &ns);
    for (size_t i = 0; i < n; i++) {
        Chan__ClusterNode *o = &nodes[i];
        chan__cluster_node__init(o);
        o->node = (char *)ns[i].node;
        o->group = (char *)ns[i].group;
        o->addr = (char *)ns[i].addr;
        o->role = (char *)ns[i].role;
        o->has_gen = o->has_off = true;
        o->gen = ns[i].gen;
        o->off = ns[i].off;
        nodep[i] = o;
    }
    cs->n_nodes = n;
    cs->nodes = nodep;
}

static void fill_server_stat(chand_server_t *s, Chan__ServerStat *ss, Chan__Limits *lim,
                             Chan__Durability *dur)
{
    core_info_t ci;
    core_info(s->core, &ci);
    chan__server_stat__init(ss);
    ss->has_uptime_ms = ss->has_connections = ss->has_channels = ss->has_pending = true;
    ss->has_inflight = ss->has_values_sent = ss->has_values_received = true;
    ss->uptime_ms = chand_now() - s->started_ms;
    ss->connections = s->nconns;
    ss->channels = ci.channels;
    ss->pending = ci.pending;
    ss->inflight = ci.inflight;
    ss->values_sent = ci.values_sent;
    ss->values_received = ci.values_received;
    ss->has_value_bytes = ss->has_ack_expired = true;
    ss->value_bytes = ci.value_bytes;
    ss->ack_expired = ci.ack_expired;
    ss->n_loop_bounds_us = CHAND_STALL_BUCKETS - 1;
    ss->loop_bounds_us = (uint64_t *)chand_stall_bounds_us;
    ss->n_loop_counts = CHAND_STALL_BUCKETS;
    ss->loop_counts = s->stall.count;
    ss->has_loop_max_us = ss->has_output_bytes = true;
    ss->loop_max_us = s->stall.max_us;
    ss->output_bytes = s->out_bytes;
    fill_limits(s, lim);
    ss->limits = lim;
    if (s->journal) {
        fill_durability(s, dur);
        ss->durability = dur;
    }
    static Chan__ClusterStat cs;
    if (s->cluster) {
        fill_cluster(s, &cs);
        ss->cluster = &cs;
    }
    static Chan__TlsStat ts;
    if (s->tls_ctx) {
        chan__tls_stat__init(&ts);
        ts.has_handshakes = ts.has_handshake_failures = ts.has_reloads = true;
        ts.has_reload_failures = ts.has_not_after = true;
        ts.handshakes = s->tls.handshakes;
        ts.handshake_failures = s->tls.failures;
        ts.reloads = s->tls.reloads;
        ts.reload_failures = s->tls.reload_failures;
        ts.not_after = s->tls.not_after;
        ss->tls = &ts;
    }
}

static void h_stat(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    chand_server_t *s = c->srv;
    const Chan__Stat *m = rq->stat;
    Chan__StatReply sr = CHAN__STAT_REPLY__INIT;
    Chan__ServerStat ss;
    Chan__Limits lim = CHAN__LIMITS__INIT;
    Chan__Durability dur;
    Chan__ChannelStat one;
    Chan__ChannelStat *onep = &one;
    Chan__ChannelStat *stats = NULL, **ptrs = NULL;
    struct chan_list l = { NULL, 0, 0 };
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = true;
    r.id = id;
    r.status = CHAN__STATUS__OK;
    r.result_case = CHAN__REPLY__RESULT_STAT;
    r.stat = &sr;
    if (m->has_name) {
        core_bytes_t name;
        if (!name_of(c, id, true, m->name, &name) ||
            !may(c, id, ACL_SEND | ACL_RECV, "stat", name))
            return;
        const core_chan_t *ch = core_find(s->core, name);
        if (!ch) {
            char msg[300];
            snprintf(msg, sizeof msg, "no such channel '%.*s'", (int)name.len,
                     (const char *)name.data);
            chand_conn_answer(c, id, CHAN__STATUS__NOT_FOUND, msg);
            return;
        }
        fill_chan_stat(ch, &one);
        sr.n_channels = 1;
        sr.channels = &onep;
    } else if (m->has_all && m->all) {
        if (!may_flag(c, id, ACL_LIST, "list the channels"))
            return;
        bool cut;
        sr.has_next_cursor = true;
        sr.next_cursor = stat_page(s, m->has_cursor ? m->cursor : 0, m->has_limit ? m->limit : 0,
                                   &l, &cut);
        if (cut)
            r.message = "a hash bucket did not fit one frame: some channels were left out";
        stats = xmalloc((l.n ? l.n : 1) * sizeof *stats);
        ptrs = xmalloc((l.n ? l.n : 1) * sizeof *ptrs);
        for (size_t i = 0; i < l.n; i++) {
            fill_chan_stat(l.v[i], &stats[i]);
            ptrs[i] = &stats[i];
        }
        sr.n_channels = l.n;
        sr.channels = ptrs;
    } else {
        if (!may_flag(c, id, ACL_STAT, "stat the server"))
            return;
        fill_server_stat(s, &ss, &lim, &dur);
        sr.server = &ss;
    }
    chand_conn_reply(c, &r);
    free(stats);
    free(ptrs);
    free(l.v);
}

static void h_replicate(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    if (!may_flag(c, id, ACL_CLUSTER, "replicate"))
        return;
    chand_repl_feed_start(c, id, rq->replicate);
}

static void h_repl_ack(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    (void)id;
    chand_repl_ack(c, rq->repl_ack);   /* no reply: acknowledgements flow one way */
}

static void h_map(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    (void)rq;
    chand_slots_map(c, id);   /* what a client needs to route: any user's */
}

static void h_move_slots(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    if (may_flag(c, id, ACL_CLUSTER, "move slots"))
        chand_slots_move(c, id, rq->move_slots);
}

static void h_adopt(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    if (may_flag(c, id, ACL_CLUSTER, "adopt channels"))
        chand_slots_adopt(c, id, rq->adopt);
}

/* A cluster node that is not its group's primary serves nothing but Hello,
 * Ping, the server's Stat, the slot map and a move's record, and says
 * where the primary is. */
static bool served_anywhere(const Chan__Request *rq)
{
    switch (rq->op_case) {
    case CHAN__REQUEST__OP_PING:
    case CHAN__REQUEST__OP_REPLICATE:
    case CHAN__REQUEST__OP_REPL_ACK:
    case CHAN__REQUEST__OP_MAP:
    case CHAN__REQUEST__OP_MOVE_SLOTS:
        return true;
    case CHAN__REQUEST__OP_STAT:
        return !rq->stat->has_name && !(rq->stat->has_all && rq->stat->all);
    default:
        return false;
    }
}

static void not_primary(chand_conn_t *c, uint64_t id)
{
    const char *p = chand_cluster_primary(c->srv->cluster);
    char msg[200];
    snprintf(msg, sizeof msg, "not the primary of group %s; %s%s", c->srv->opts.group,
             *p ? "the primary is at " : "no primary is elected yet", p);
    chand_conn_redirect(c, id, CHAN__STATUS__NOT_PRIMARY, msg, p);
}

/* ---- dispatch ---- */

typedef void (*handler_fn)(chand_conn_t *c, uint64_t id, const Chan__Request *rq);

static const handler_fn handlers[] = {
    [CHAN__REQUEST__OP_HELLO] = h_hello,
    [CHAN__REQUEST__OP_OPEN] = h_open,
    [CHAN__REQUEST__OP_SEND] = h_send,
    [CHAN__REQUEST__OP_RECV] = h_recv,
    [CHAN__REQUEST__OP_CLOSE] = h_close,
    [CHAN__REQUEST__OP_SELECT] = h_select,
    [CHAN__REQUEST__OP_CANCEL] = h_cancel,
    [CHAN__REQUEST__OP_STAT] = h_stat,
    [CHAN__REQUEST__OP_PING] = h_ping,
    [CHAN__REQUEST__OP_COMMIT] = h_commit,
    [CHAN__REQUEST__OP_RELEASE] = h_release,
    [CHAN__REQUEST__OP_DELETE] = h_delete,
    [CHAN__REQUEST__OP_REPLICATE] = h_replicate,
    [CHAN__REQUEST__OP_REPL_ACK] = h_repl_ack,
    [CHAN__REQUEST__OP_MAP] = h_map,
    [CHAN__REQUEST__OP_MOVE_SLOTS] = h_move_slots,
    [CHAN__REQUEST__OP_ADOPT] = h_adopt,
};

void chand_dispatch(chand_conn_t *c, const Chan__Request *rq)
{
    uint64_t id = rq->has_id ? rq->id : 0;
    int op = rq->op_case;
    if (!c->hello && op != CHAN__REQUEST__OP_HELLO) {
        chand_conn_fail(c, id, CHAN__STATUS__BAD_REQUEST, "the first request must be Hello");
        return;
    }
    for (size_t i = 0; i < rq->n_ack; i++)
        if (!core_ack(c->sess, rq->ack[i]))
            log_debug("conn %llu: ack of unknown delivery %llu", (unsigned long long)c->num,
                      (unsigned long long)rq->ack[i]);
    if (rq->n_nack)
        core_nack_all(c->sess, rq->nack, rq->n_nack);
    if (op == CHAN__REQUEST__OP__NOT_SET) {
        if (rq->base.n_unknown_fields)
            chand_conn_fail(c, id, CHAN__STATUS__BAD_REQUEST, "unknown request");
        return;   /* acknowledgements only */
    }
    if (op < 0 || (size_t)op >= sizeof handlers / sizeof handlers[0] || !handlers[op]) {
        chand_conn_fail(c, id, CHAN__STATUS__BAD_REQUEST, "unknown request");
        return;
    }
    if (!rq->has_id || id == 0) {
        chand_conn_fail(c, 0, CHAN__STATUS__BAD_REQUEST, "request without an id (ids are not 0)");
        return;
    }
    if (core_sess_waiting(c->sess, id)) {
        /* answering it would give the client two replies with one id */
        chand_conn_fail(c, id, CHAN__STATUS__BAD_REQUEST, "request id still waiting for its answer");
        return;
    }
    log_debug("conn %llu: request %llu op %d", (unsigned long long)c->num,
              (unsigned long long)id, op);
    if (op != CHAN__REQUEST__OP_HELLO && !user_current(c, id))
        return;
    if (op != CHAN__REQUEST__OP_HELLO && !chand_server_may_serve(c->srv) &&
        !served_anywhere(rq)) {
        not_primary(c, id);
        return;
    }
    if (c->srv->cluster && !chand_slots_gate(c, id, rq))
        return;
    handlers[op](c, id, rq);
}

/* ---- the core's answers ---- */

/* The Delivery messages of one reply, reused from reply to reply: a batch
 * of 256 needs 16 KiB, and a large malloc per reply makes glibc
 * consolidate the small chunks that values and deliveries churn through.
 * (Replies are built one at a time: chand has one thread.) */
static Chan__Delivery *reply_dv;
static Chan__Delivery **reply_dp;
static size_t reply_cap;

static void reply_room(size_t n)
{
    if (n <= reply_cap)
        return;
    size_t cap = reply_cap ? reply_cap : 64;
    while (cap < n)
        cap *= 2;
    reply_dv = xrealloc(reply_dv, cap * sizeof *reply_dv);
    reply_dp = xrealloc(reply_dp, cap * sizeof *reply_dp);
    reply_cap = cap;
}

/* The core's statuses travel as the protocol's, number for number. */
#define SAME_STATUS(x) _Static_assert((int)CORE_ST_##x == (int)CHAN__STATUS__##x, #x)
SAME_STATUS(OK);
SAME_STATUS(CLOSED);
SAME_STATUS(TIMEOUT);
SAME_STATUS(NOT_FOUND);
SAME_STATUS(EXISTS);
SAME_STATUS(TOO_LARGE);
SAME_STATUS(BAD_REQUEST);
SAME_STATUS(BUSY);
SAME_STATUS(SHUTTING_DOWN);
SAME_STATUS(CANCELED);
SAME_STATUS(RESERVED);
SAME_STATUS(RETRY);
SAME_STATUS(MOVED);

void chand_core_reply(void *ctx, const core_reply_t *cr)
{
    chand_conn_t *c = ctx;
    if (c->doomed)
        return;
    log_debug("conn %llu: reply %llu status %d", (unsigned long long)c->num,
              (unsigned long long)cr->id, cr->status);
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = true;
    r.id = cr->id;
    r.status = (Chan__Status)cr->status;   /* the same numbers: see below */
    r.message = (char *)cr->message;
    Chan__OpenReply open = CHAN__OPEN_REPLY__INIT;
    Chan__SendReply send = CHAN__SEND_REPLY__INIT;
    Chan__RecvReply recv = CHAN__RECV_REPLY__INIT;
    Chan__SelectReply sel = CHAN__SELECT_REPLY__INIT;
    Chan__Delivery *dv = NULL, **dp = NULL;
    core_chan_info_t info;
    if (cr->ndlv) {
        reply_room(cr->ndlv);
        dv = reply_dv;
        dp = reply_dp;
        for (size_t i = 0; i < cr->ndlv; i++) {
            chan__delivery__init(&dv[i]);
            dv[i].has_id = dv[i].has_value = true;
            dv[i].id = cr->dlv[i].id;
            dv[i].value.data = (uint8_t *)cr->dlv[i].val->data;
            dv[i].value.len = cr->dlv[i].val->len;
            if (cr->dlv[i].val->redelivered) {
                dv[i].has_redelivered = true;
                dv[i].redelivered = cr->dlv[i].val->redelivered;
            }
            dp[i] = &dv[i];
        }
    }
    switch (cr->kind) {
    case CORE_R_PLAIN:
        break;
    case CORE_R_OPEN:
        core_chan_info(cr->chan, &info);
        open.has_name = open.has_capacity = open.has_temp = open.has_created = true;
        open.name.data = (uint8_t *)info.name.data;
        open.name.len = info.name.len;
        open.capacity = info.cap;
        open.temp = info.temp;
        open.created = cr->created;
        r.result_case = CHAN__REPLY__RESULT_OPEN;
        r.open = &open;
        break;
    case CORE_R_SEND:
        send.has_accepted = true;
        send.accepted = cr->accepted;
        r.result_case = CHAN__REPLY__RESULT_SEND;
        r.send = &send;
        break;
    case CORE_R_RECV:
        recv.n_deliveries = cr->ndlv;
        recv.deliveries = dp;
        r.result_case = CHAN__REPLY__RESULT_RECV;
        r.recv = &recv;
        break;
    case CORE_R_SELECT:
        if (cr->index >= 0) {
            sel.has_index = true;
            sel.index = (uint32_t)cr->index;
        }
        sel.delivery = cr->ndlv ? dp[0] : NULL;
        if (cr->status == CORE_ST_TOO_LARGE && cr->index >= 0) {
            sel.has_value_len = true;
            sel.value_len = cr->value_len;
        }
        sel.n_versions = cr->nversions;
        sel.versions = (uint64_t *)cr->versions;
        r.result_case = CHAN__REPLY__RESULT_SELECT;
        r.select = &sel;
        break;
    }
    chand_conn_reply(c, &r);
}

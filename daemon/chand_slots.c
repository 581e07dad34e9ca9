/*
 * chand_slots.c - placement in a cluster: the gate, Map, MoveSlots and
 * Adopt, and the move of slots (design in chand_slots.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "chan_frame.h"
#include "chand_alloc.h"
#include "chand_cluster.h"
#include "chand_log.h"
#include "chand_peer.h"
#include "chand_server.h"
#include "chand_slotmap.h"
#include "chand_slots.h"

/* A move's steps are taken on a timer this often. */
#define STEP_MS 10
/* After a failed attempt (the new primary unreachable, etcd down). */
#define RETRY_MS 300
/* Bytes of values per Adopt request. */
#define PART_BYTES (256u << 10)
/* Replies from the new group's primary are small. */
#define PEER_MAX_FRAME (64u << 10)

enum mv_state { MV_IDLE, MV_SETTLE, MV_SEND, MV_WAIT, MV_FLIP };

struct names {
    core_bytes_t *v;
    size_t n, cap;
    uint32_t lo, hi;
};

typedef struct slots_mover {
    chand_server_t *s;
    enum mv_state state;
    uint64_t version;          /* the map whose move this is */
    uint32_t lo, hi;
    char to[SM_GROUP_MAX + 1];
    char to_addr[128];         /* the new group's primary, as dialled */
    chand_peer_t *peer;
    uint64_t last_id;          /* the Adopt whose OK ends step 3 */
    uint64_t attempt;          /* this attempt's Adopt.attempt */
    uint64_t done_version;     /* the map of the last move ended here: a
                                  read of it that comes late starts nothing */
    struct names ns;           /* the channels of the slots, listed once at
                                  the start: none is made or deleted while
                                  the slots take no requests */
    struct event *timer;
    uint64_t started_us, retry_at_us, said_us;
    uint64_t channels, values;     /* of the attempt under way */
    uint64_t moves, moved_channels, moved_values;   /* since start */
} slots_mover_t;

/* ---- the gate ---- */

static bool temp_here(chand_server_t *s, core_bytes_t name)
{
    const core_chan_t *ch = core_find(s->core, name);
    if (!ch)
        return false;
    core_chan_info_t info;
    core_chan_info(ch, &info);
    return info.temp;
}

/* Whether this node serves name; if not, *primary and msg say where to go. */
static bool serves(chand_server_t *s, core_bytes_t name, const char **primary, char *msg,
                   size_t msglen)
{
    if (temp_here(s, name))
        return true;   /* served where it was made, whatever its slot */
    const slot_map_t *m = chand_cluster_map(s->cluster);
    *primary = "";
    if (!m) {
        snprintf(msg, msglen, "the cluster's slot map is not read yet: ask again");
        return false;
    }
    uint32_t slot = chan_slot(name.data, name.len);
    const char *owner = slotmap_owner(m, slot);
    if (strcmp(owner, s->opts.group)) {
        *primary = chand_cluster_group_primary(s->cluster, owner);
        snprintf(msg, msglen, "channel '%.*s' is in slot %u, served by group %s%s%s",
                 (int)(name.len > 200 ? 200 : name.len), (const char *)name.data, slot, owner,
                 **primary ? ", whose primary is at " : ", which has no primary now", *primary);
        return false;
    }
    if (slotmap_moving(m, slot)) {
        snprintf(msg, msglen, "channel '%.*s' is in slot %u, which is moving to group %s: ask "
                 "again", (int)(name.len > 200 ? 200 : name.len), (const char *)name.data, slot,
                 slotmap_moving_to(m));
        return false;
    }
    return true;
}

static void moved(chand_conn_t *c, uint64_t id, const char *primary, const char *msg)
{
    chand_conn_redirect(c, id, CHAN__STATUS__MOVED, msg, primary);
}

static core_bytes_t bytes_of(ProtobufCBinaryData b)
{
    return (core_bytes_t){ b.data, b.len };
}

bool chand_slots_gate(chand_conn_t *c, uint64_t id, const Chan__Request *rq)
{
    chand_server_t *s = c->srv;
    core_bytes_t names[1];
    const core_bytes_t *list = names;
    size_t n = 0;
    switch (rq->op_case) {
    case CHAN__REQUEST__OP_OPEN:
        if (rq->open->has_name)
            names[n++] = bytes_of(rq->open->name);
        break;
    case CHAN__REQUEST__OP_SEND:
        names[n++] = bytes_of(rq->send->name);
        break;
    case CHAN__REQUEST__OP_RECV:
        names[n++] = bytes_of(rq->recv->name);
        break;
    case CHAN__REQUEST__OP_CLOSE:
        names[n++] = bytes_of(rq->close->name);
        break;
    case CHAN__REQUEST__OP_DELETE:
        names[n++] = bytes_of(rq->delete_->name);
        break;
    case CHAN__REQUEST__OP_STAT:
        if (rq->stat->has_name)
            names[n++] = bytes_of(rq->stat->name);
        break;
    case CHAN__REQUEST__OP_SELECT:
        for (size_t i = 0; i < rq->select->n_cases; i++) {
            const char *primary;
            char msg[400];
            if (!serves(s, bytes_of(rq->select->cases[i]->name), &primary, msg, sizeof msg)) {
                moved(c, id, primary, msg);
                return false;
            }
        }
        return true;
    default:
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        const char *primary;
        char msg[400];
        if (!serves(s, list[i], &primary, msg, sizeof msg)) {
            moved(c, id, primary, msg);
            return false;
        }
    }
    return true;
}

/* ---- Map ---- */

static void add_group(Chan__SlotMap *sm, chand_server_t *s, const char *g)
{
    for (size_t i = 0; i < sm->n_groups; i++)
        if (!strcmp(sm->groups[i]->group, g))
            return;
    Chan__GroupInfo *gi = xcalloc(1, sizeof *gi);
    chan__group_info__init(gi);
    gi->group = xstrdup(g);
    gi->primary = xstrdup(chand_cluster_group_primary(s->cluster, g));
    const cl_node_t *ns;
    size_t nn = chand_cluster_nodes(s->cluster, &ns);
    gi->nodes = xcalloc(nn + 1, sizeof *gi->nodes);
    if (*gi->primary)
        gi->nodes[gi->n_nodes++] = xstrdup(gi->primary);
    for (size_t i = 0; i < nn; i++)
        if (!strcmp(ns[i].group, g) && *ns[i].addr && strcmp(ns[i].addr, gi->primary))
            gi->nodes[gi->n_nodes++] = xstrdup(ns[i].addr);
    sm->groups = xrealloc(sm->groups, (sm->n_groups + 1) * sizeof *sm->groups);
    sm->groups[sm->n_groups++] = gi;
}

static void free_slot_map(Chan__SlotMap *sm)
{
    for (size_t i = 0; i < sm->n_ranges; i++)
        free(sm->ranges[i]);
    free(sm->ranges);
    for (size_t i = 0; i < sm->n_groups; i++) {
        Chan__GroupInfo *gi = sm->groups[i];
        for (size_t k = 0; k < gi->n_nodes; k++)
            free(gi->nodes[k]);
        free(gi->nodes);
        free(gi->group);
        free(gi->primary);
        free(gi);
    }
    free(sm->groups);
}

void chand_slots_map(chand_conn_t *c, uint64_t id)
{
    chand_server_t *s = c->srv;
    if (!s->cluster) {
        chand_conn_inform(c, id, CHAN__STATUS__BAD_REQUEST, "not a cluster node: no slot map");
        return;
    }
    const slot_map_t *m = chand_cluster_map(s->cluster);
    Chan__SlotMap sm = CHAN__SLOT_MAP__INIT;
    Chan__SlotRange moving = CHAN__SLOT_RANGE__INIT;
    sm.has_slots = sm.has_version = true;
    sm.slots = CHAN_SLOTS;
    sm.version = m ? m->version : 0;
    if (m) {
        uint32_t slot = 0, lo, hi;
        const char *g;
        while (slotmap_next_range(m, &slot, &lo, &hi, &g)) {
            Chan__SlotRange *r = xcalloc(1, sizeof *r);
            chan__slot_range__init(r);
            r->has_lo = r->has_hi = true;
            r->lo = lo;
            r->hi = hi;
            r->group = (char *)g;
            sm.ranges = xrealloc(sm.ranges, (sm.n_ranges + 1) * sizeof *sm.ranges);
            sm.ranges[sm.n_ranges++] = r;
            add_group(&sm, s, g);
        }
        if (m->moving) {
            moving.has_lo = moving.has_hi = true;
            moving.lo = m->mlo;
            moving.hi = m->mhi;
            moving.group = (char *)slotmap_moving_to(m);
            sm.moving = &moving;
            sm.moving_from = (char *)slotmap_owner(m, m->mlo);
            add_group(&sm, s, moving.group);
        }
    }
    const cl_node_t *ns;
    size_t nn = chand_cluster_nodes(s->cluster, &ns);
    for (size_t i = 0; i < nn; i++)
        if (*ns[i].group)
            add_group(&sm, s, ns[i].group);
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = true;
    r.id = id;
    r.status = CHAN__STATUS__OK;
    r.result_case = CHAN__REPLY__RESULT_MAP;
    r.map = &sm;
    chand_conn_reply(c, &r);
    free_slot_map(&sm);
}

/* ---- MoveSlots ---- */

struct move_req {
    chand_server_t *s;
    uint64_t conn, id;
    uint32_t lo, hi;
    char group[SM_GROUP_MAX + 1];
};

static chand_conn_t *conn_by_num(chand_server_t *s, uint64_t num)
{
    for (qlink_t *l = s->conns.next; l != &s->conns; l = l->next) {
        chand_conn_t *c = QLIST_ENTRY(l, chand_conn_t, link);
        if (c->num == num)
            return c->doomed ? NULL : c;
    }
    return NULL;
}

static void move_recorded(void *arg, int result, const char *msg)
{
    struct move_req *mr = arg;
    chand_server_t *s = mr->s;
    uint64_t t0 = chand_busy_begin(s);
    chand_conn_t *c = conn_by_num(s, mr->conn);
    if (result == 0)
        log_info("cluster %s: slots %u-%u move to group %s", s->opts.cluster, mr->lo, mr->hi,
                 mr->group);
    if (c) {
        /* what it promises is in etcd, not in the journal: never held */
        char why[300];
        snprintf(why, sizeof why, "the move was not recorded: %s", msg ? msg : "?");
        if (result == 0)
            chand_conn_inform(c, mr->id, CHAN__STATUS__OK, NULL);
        else
            chand_conn_inform(c, mr->id, CHAN__STATUS__BUSY, why);
        chand_conn_flush_pending(s);
    }
    free(mr);
    chand_busy_end(s, t0);
}

void chand_slots_move(chand_conn_t *c, uint64_t id, const Chan__MoveSlots *mv)
{
    chand_server_t *s = c->srv;
    if (!s->cluster) {
        chand_conn_inform(c, id, CHAN__STATUS__BAD_REQUEST, "not a cluster node: no slots");
        return;
    }
    const slot_map_t *cur = chand_cluster_map(s->cluster);
    if (!cur) {
        chand_conn_inform(c, id, CHAN__STATUS__BUSY, "the slot map is not read yet: try again");
        return;
    }
    if (!mv->has_lo || !mv->has_hi || !mv->group) {
        chand_conn_inform(c, id, CHAN__STATUS__BAD_REQUEST, "MoveSlots needs lo, hi and group");
        return;
    }
    if (!*chand_cluster_group_primary(s->cluster, mv->group)) {
        char msg[200];
        snprintf(msg, sizeof msg, "group %.100s has no primary now: start its nodes first",
                 mv->group);
        chand_conn_inform(c, id, CHAN__STATUS__BAD_REQUEST, msg);
        return;
    }
    slot_map_t *next = xmalloc(sizeof *next);
    *next = *cur;
    char err[300];
    if (slotmap_start_move(next, mv->lo, mv->hi, mv->group, err, sizeof err) < 0) {
        free(next);
        chand_conn_inform(c, id, CHAN__STATUS__BAD_REQUEST, err);
        return;
    }
    struct move_req *mr = xcalloc(1, sizeof *mr);
    mr->s = s;
    mr->conn = c->num;
    mr->id = id;
    mr->lo = mv->lo;
    mr->hi = mv->hi;
    snprintf(mr->group, sizeof mr->group, "%s", mv->group);
    if (chand_cluster_put_map(s->cluster, next, move_recorded, mr) < 0) {
        free(mr);
        chand_conn_inform(c, id, CHAN__STATUS__BUSY, "another change of the slot map is under way: "
                        "try again");
    }
    free(next);
}

/* ---- Adopt: the new group's side ---- */


static void collect_in_range(const core_chan_t *ch, void *arg)
{
    struct names *ns = arg;
    core_chan_info_t info;
    core_chan_info(ch, &info);
    if (info.temp)
        return;
    uint32_t slot = chan_slot(info.name.data, info.name.len);
    if (slot < ns->lo || slot > ns->hi)
        return;
    if (ns->n == ns->cap) {
        ns->cap = ns->cap ? ns->cap * 2 : 16;
        ns->v = xrealloc(ns->v, ns->cap * sizeof *ns->v);
    }
    uint8_t *copy = xmalloc(info.name.len ? info.name.len : 1);
    memcpy(copy, info.name.data, info.name.len);
    ns->v[ns->n++] = (core_bytes_t){ copy, info.name.len };
}

/* The names of the channels (not temporary) of slots lo..hi. */
static void names_in(chand_server_t *s, uint32_t lo, uint32_t hi, struct names *ns)
{
    *ns = (struct names){ .lo = lo, .hi = hi };
    core_each_chan(s->core, collect_in_range, ns);
}

static void names_free(struct names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free((void *)ns->v[i].data);
    free(ns->v);
    *ns = (struct names){ 0 };
}

static const char *adopt_check(chand_server_t *s, const Chan__Adopt *a)
{
    const slot_map_t *m = chand_cluster_map(s->cluster);
    if (!a->has_lo || !a->has_hi || !a->has_map_version)
        return "Adopt needs lo, hi and map_version";
    /* a part of an older move (its sender since superseded, the part late)
     * must not touch this move's channels: a first part drops them all */
    if (m && a->map_version < m->version)
        return "an Adopt of a move the slot map has since replaced";
    if (!m || a->map_version > m->version || !m->moving || m->mlo != a->lo || m->mhi != a->hi ||
        strcmp(slotmap_moving_to(m), s->opts.group))
        return NULL;   /* not seen yet: RETRY */
    for (size_t i = 0; i < a->n_channels; i++) {
        const Chan__AdoptChannel *ac = a->channels[i];
        if (!ac->has_name || !chan_name_valid(ac->name.data, ac->name.len) || !ac->has_capacity)
            return "an adopted channel without a valid name or a capacity";
        if (ac->capacity > chand_core_limits(&s->opts).max_cap)
            return "an adopted channel's capacity is over the limit";
        for (size_t k = 0; k < ac->n_values; k++)
            if (ac->values[k].len > chand_max_value(&s->opts))
                return "an adopted value is over the limit of one value";
        uint32_t slot = chan_slot(ac->name.data, ac->name.len);
        if (slot < a->lo || slot > a->hi)
            return "an adopted channel outside the moving slots";
        if (!ac->capacity && ac->n_values)
            return "values for an unbuffered channel";
        if (ac->n_redelivered && ac->n_redelivered != ac->n_values)
            return "redelivered counts do not match the values";
        if (temp_here(s, bytes_of(ac->name)))
            return "a temporary channel here has an adopted channel's name";
    }
    return "";
}

void chand_slots_adopt(chand_conn_t *c, uint64_t id, const Chan__Adopt *a)
{
    chand_server_t *s = c->srv;
    if (!s->cluster) {
        chand_conn_inform(c, id, CHAN__STATUS__BAD_REQUEST, "not a cluster node");
        return;
    }
    const char *bad = adopt_check(s, a);
    if (!bad) {
        chand_conn_inform(c, id, CHAN__STATUS__RETRY,
                        "this node has not read that move of slots to its group yet");
        return;
    }
    if (*bad) {
        chand_conn_inform(c, id, CHAN__STATUS__BAD_REQUEST, bad);
        return;
    }
    if (a->map_version != s->adopt_version) {
        s->adopt_version = a->map_version;
        s->adopt_term = 0;
    }
    if (a->has_term && a->term < s->adopt_term) {
        /* a part its sender sent before it was superseded, come late: the
         * primary after it has taken over this move (terms grow) */
        chand_conn_inform(c, id, CHAN__STATUS__BAD_REQUEST,
                          "an Adopt from a primary since superseded");
        return;
    }
    if (a->has_term)
        s->adopt_term = a->term;
    if (!a->has_attempt || (!(a->has_first && a->first) && a->attempt != s->adopt_attempt)) {
        /* a part of an attempt given up (its connection closed, a new one
         * began): what it brings is in the new attempt's parts */
        chand_conn_inform(c, id, CHAN__STATUS__BAD_REQUEST, "an Adopt of an attempt given up");
        return;
    }
    if (a->has_first && a->first) {
        s->adopt_attempt = a->attempt;
        /* what an earlier attempt left goes: this one brings it all */
        struct names ns;
        names_in(s, a->lo, a->hi, &ns);
        for (size_t i = 0; i < ns.n; i++)
            core_drop(s->core, ns.v[i], CORE_ST_MOVED);
        if (ns.n)
            log_info("slots %u-%u: dropped %zu channels an earlier attempt to move them left",
                     a->lo, a->hi, ns.n);
        names_free(&ns);
    }
    for (size_t i = 0; i < a->n_channels; i++) {
        const Chan__AdoptChannel *ac = a->channels[i];
        core_chan_t *ch = core_adopt_chan(s->core, bytes_of(ac->name), ac->capacity);
        for (size_t k = 0; ch && k < ac->n_values; k++)
            core_adopt_val(ch, bytes_of(ac->values[k]), ac->n_redelivered ? ac->redelivered[k] : 0);
        if (ch)
            core_adopt_end(ch, ac->has_closed && ac->closed);
    }
    if (a->has_last && a->last)
        log_info("slots %u-%u: adopted from their old group", a->lo, a->hi);
    /* the answer waits, as any other, until what it promises is durable */
    chand_conn_answer(c, id, CHAN__STATUS__OK, NULL);
}

/* ---- the move: the old group's side ---- */

static void mover_arm(slots_mover_t *mv, unsigned ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(mv->timer, &tv);
}

/* Step 3 failed: again after a pause, on a new connection (the caller
 * closes this one, or has the link close it). */
static void mover_retry(slots_mover_t *mv, const char *why)
{
    uint64_t t = chand_now_us();
    if (t - mv->said_us > 2000000) {
        log_warn("moving slots %u-%u to group %s: %s; trying again", mv->lo, mv->hi, mv->to, why);
        mv->said_us = t;
    }
    mv->state = MV_SEND;
    mv->retry_at_us = t + RETRY_MS * 1000;
    mover_arm(mv, RETRY_MS);
}

static bool mover_reply(void *arg, const Chan__Reply *r)
{
    slots_mover_t *mv = arg;
    if (mv->state != MV_WAIT)
        return true;
    if (!r->has_status || r->status != CHAN__STATUS__OK) {
        char why[400];
        snprintf(why, sizeof why, "%s at %s answered: %s", mv->to, mv->to_addr,
                 r->message ? r->message : "not OK");
        mover_retry(mv, why);
        return false;   /* the link closes itself */
    }
    if (r->id == mv->last_id) {
        mv->state = MV_FLIP;
        mover_arm(mv, 0);
    }
    return true;
}

static void mover_down(void *arg, const char *why)
{
    slots_mover_t *mv = arg;
    if (why && (mv->state == MV_WAIT || mv->state == MV_SEND))
        mover_retry(mv, why);
}

static void mover_connected(void *arg)
{
    slots_mover_t *mv = arg;
    mover_arm(mv, 0);   /* the parts go out on the next step */
}

static const peer_cbs_t mover_cbs = { mover_connected, mover_reply, NULL, mover_down };

/* The Adopt requests of one attempt, sent as they fill up. */
struct adopt_out {
    slots_mover_t *mv;
    Chan__Adopt a;
    Chan__AdoptChannel **chans;
    size_t cap;
    ProtobufCBinaryData *vals;   /* of the channel being filled */
    uint32_t *redel;
    size_t nvals, valcap, bytes;
    bool first;
};

static void out_flush_chan(struct adopt_out *o)
{
    if (!o->a.n_channels)
        return;
    Chan__AdoptChannel *ac = o->chans[o->a.n_channels - 1];
    ac->values = o->vals;
    ac->n_values = o->nvals;
    ac->redelivered = o->redel;
    ac->n_redelivered = o->nvals;
}

static void out_send(struct adopt_out *o, bool last)
{
    out_flush_chan(o);
    o->a.has_lo = o->a.has_hi = o->a.has_map_version = o->a.has_first = o->a.has_last = true;
    o->a.has_attempt = o->a.has_term = true;
    o->a.attempt = o->mv->attempt;
    o->a.term = chand_cluster_term(o->mv->s->cluster);
    o->a.lo = o->mv->lo;
    o->a.hi = o->mv->hi;
    o->a.map_version = o->mv->version;
    o->a.first = o->first;
    o->a.last = last;
    o->a.channels = o->chans;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_ADOPT;
    rq.adopt = &o->a;
    o->mv->last_id = chand_peer_send(o->mv->peer, &rq);
    o->first = false;
    for (size_t i = 0; i < o->a.n_channels; i++) {
        free(o->chans[i]->values);
        free(o->chans[i]->redelivered);
        free(o->chans[i]);
    }
    o->a.n_channels = 0;
    o->vals = NULL;
    o->redel = NULL;
    o->nvals = o->valcap = o->bytes = 0;
}

static void out_chan(struct adopt_out *o, core_bytes_t name, uint64_t cap, bool closed)
{
    out_flush_chan(o);   /* the previous channel's values are its own now */
    o->vals = NULL;
    o->redel = NULL;
    o->nvals = o->valcap = 0;
    if (o->a.n_channels == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 16;
        o->chans = xrealloc(o->chans, o->cap * sizeof *o->chans);
    }
    Chan__AdoptChannel *ac = xcalloc(1, sizeof *ac);
    chan__adopt_channel__init(ac);
    ac->has_name = ac->has_capacity = ac->has_closed = true;
    ac->name.data = (uint8_t *)name.data;
    ac->name.len = name.len;
    ac->capacity = cap;
    ac->closed = closed;
    o->chans[o->a.n_channels++] = ac;
    o->bytes += name.len + 16;
}

static void out_val(void *arg, core_bytes_t data, uint32_t redelivered)
{
    struct adopt_out *o = arg;
    if (o->bytes + data.len > PART_BYTES && o->bytes > 0) {
        /* the part is full (or this value is large: it goes alone, so that
         * no part is much over PART_BYTES, and every part fits a frame):
         * the channel goes on in the next one (its values are appended
         * there) */
        Chan__AdoptChannel *cur = o->chans[o->a.n_channels - 1];
        core_bytes_t name = { cur->name.data, cur->name.len };
        uint64_t cap = cur->capacity;
        bool closed = cur->closed;
        cur->closed = false;   /* closed once its last values are in */
        out_send(o, false);
        out_chan(o, name, cap, closed);
    }
    if (o->nvals == o->valcap) {
        o->valcap = o->valcap ? o->valcap * 2 : 64;
        o->vals = xrealloc(o->vals, o->valcap * sizeof *o->vals);
        o->redel = xrealloc(o->redel, o->valcap * sizeof *o->redel);
    }
    o->vals[o->nvals].data = (uint8_t *)data.data;
    o->vals[o->nvals].len = data.len;
    o->redel[o->nvals++] = redelivered;
    o->bytes += data.len + 8;
    o->mv->values++;
}

/* Step 3: every channel of the slots, in Adopt requests. */
static void mover_send(slots_mover_t *mv)
{
    chand_server_t *s = mv->s;
    const struct names *ns = &mv->ns;
    struct adopt_out o = { .mv = mv, .first = true };
    chan__adopt__init(&o.a);
    mv->channels = 0;
    mv->values = 0;
    mv->attempt++;
    for (size_t i = 0; i < ns->n; i++) {
        const core_chan_t *ch = core_find(s->core, ns->v[i]);
        if (!ch)
            continue;
        core_chan_info_t info;
        core_chan_info(ch, &info);
        if (o.bytes > PART_BYTES)
            out_send(&o, false);
        out_chan(&o, ns->v[i], info.cap, info.closed);
        core_chan_values(ch, out_val, &o);
        mv->channels++;
    }
    out_send(&o, true);
    free(o.chans);
    mv->state = MV_WAIT;
}

static void flipped(void *arg, int result, const char *msg)
{
    slots_mover_t *mv = arg;
    chand_server_t *s = mv->s;
    uint64_t t0 = chand_busy_begin(s);
    if (mv->state != MV_FLIP) {
        chand_busy_end(s, t0);
        return;
    }
    if (result != 0) {
        /* a change of the map meanwhile is read on the next tick and
         * decides; etcd down: the same map again later */
        mv->state = MV_SEND;
        mv->retry_at_us = chand_now_us() + RETRY_MS * 1000;
        log_warn("moving slots %u-%u to group %s: ending the move in etcd failed: %s",
                 mv->lo, mv->hi, mv->to, msg ? msg : "?");
        mover_arm(mv, RETRY_MS);
        chand_busy_end(s, t0);
        return;
    }
    /* step 5: the slots are the new group's: our copies go */
    for (size_t i = 0; i < mv->ns.n; i++)
        core_drop(s->core, mv->ns.v[i], CORE_ST_MOVED);
    names_free(&mv->ns);
    mv->done_version = mv->version;
    mv->moves++;
    mv->moved_channels += mv->channels;
    mv->moved_values += mv->values;
    log_info("moved slots %u-%u to group %s: %" PRIu64 " channels, %" PRIu64 " values in %" PRIu64
             " ms", mv->lo, mv->hi, mv->to, mv->channels, mv->values,
             (chand_now_us() - mv->started_us) / 1000);
    mv->state = MV_IDLE;
    chand_peer_close(mv->peer);
    chand_conn_flush_pending(s);
    chand_server_rearm(s);
    chand_busy_end(s, t0);
}

static void mover_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    slots_mover_t *mv = arg;
    chand_server_t *s = mv->s;
    uint64_t t0 = chand_busy_begin(s);
    uint64_t t = t0;
    switch (mv->state) {
    case MV_IDLE:
    case MV_WAIT:
        break;
    case MV_SETTLE: {
        /* step 1 and 2: evict what waits, until nothing is held */
        size_t unsettled = 0;
        for (size_t i = 0; i < mv->ns.n; i++) {
            core_evict(s->core, mv->ns.v[i], CORE_ST_MOVED);
            const core_chan_t *ch = core_find(s->core, mv->ns.v[i]);
            if (ch && !core_chan_settled(ch))
                unsettled++;
        }
        if (!unsettled) {
            mv->state = MV_SEND;
        } else if (t - mv->said_us > 5000000) {
            log_info("moving slots %u-%u: waiting for %zu channels to settle (reservations, "
                     "unacknowledged unbuffered values)", mv->lo, mv->hi, unsettled);
            mv->said_us = t;
        }
        mover_arm(mv, STEP_MS);
        break;
    }
    case MV_SEND: {
        if (t < mv->retry_at_us) {
            mover_arm(mv, (unsigned)((mv->retry_at_us - t) / 1000) + 1);
            break;
        }
        const char *addr = chand_cluster_group_primary(s->cluster, mv->to);
        if (!*addr) {
            mv->retry_at_us = t + RETRY_MS * 1000;
            mover_arm(mv, RETRY_MS);
            break;
        }
        if (!chand_peer_up(mv->peer) || strcmp(addr, mv->to_addr)) {
            snprintf(mv->to_addr, sizeof mv->to_addr, "%s", addr);
            /* connected: it steps again; else this bounds the dial */
            mover_arm(mv, 2000);
            chand_peer_connect(mv->peer, addr);
            break;
        }
        mover_send(mv);
        break;
    }
    case MV_FLIP: {
        const slot_map_t *m = chand_cluster_map(s->cluster);
        slot_map_t *next = xmalloc(sizeof *next);
        *next = *m;
        slotmap_end_move(next);
        if (chand_cluster_put_map(s->cluster, next, flipped, mv) < 0)
            mover_arm(mv, STEP_MS);   /* another change in flight: again soon */
        free(next);
        break;
    }
    }
    chand_conn_flush_pending(s);
    chand_server_rearm(s);
    chand_busy_end(s, t0);
}

static slots_mover_t *mover_get(chand_server_t *s)
{
    if (!s->mover) {
        slots_mover_t *mv = xcalloc(1, sizeof *mv);
        mv->s = s;
        mv->timer = evtimer_new(s->base, mover_step, mv);
        mv->peer = chand_peer_new(s, "slot move", PEER_MAX_FRAME, &mover_cbs, mv);
        if (!mv->peer) {
            event_free(mv->timer);
            free(mv);
            return NULL;
        }
        s->mover = mv;
    }
    return s->mover;
}

/* Temporary channels get names in a slot this group serves. */
static bool temp_ok(void *ctx, const char *name, size_t len)
{
    chand_server_t *s = ctx;
    const slot_map_t *m = chand_cluster_map(s->cluster);
    uint32_t slot = chan_slot(name, len);
    return !m || (!strcmp(slotmap_owner(m, slot), s->opts.group) && !slotmap_moving(m, slot));
}

void chand_slots_update(chand_server_t *s)
{
    if (!s->cluster)
        return;
    core_set_temp_filter(s->core, temp_ok, s);
    const slot_map_t *m = chand_cluster_map(s->cluster);
    bool ours = m && m->moving && chand_server_may_serve(s) &&
                !strcmp(slotmap_owner(m, m->mlo), s->opts.group);
    slots_mover_t *mv = s->mover;
    if (!ours) {
        if (mv && mv->state != MV_IDLE && mv->state != MV_FLIP) {
            chand_peer_close(mv->peer);
            evtimer_del(mv->timer);
            names_free(&mv->ns);
            mv->state = MV_IDLE;
        }
        return;
    }
    if (mv && mv->state != MV_IDLE && mv->lo == m->mlo && mv->hi == m->mhi &&
        !strcmp(mv->to, slotmap_moving_to(m))) {
        mv->version = m->version;
        return;   /* under way */
    }
    if (mv && m->version <= mv->done_version)
        return;   /* a read from before the move ended here */
    if (!(mv = mover_get(s)))
        return;
    mv->version = m->version;
    mv->attempt = chand_now_us() << 8;   /* distinct from any earlier run's */
    mv->lo = m->mlo;
    mv->hi = m->mhi;
    snprintf(mv->to, sizeof mv->to, "%s", slotmap_moving_to(m));
    names_free(&mv->ns);
    names_in(s, mv->lo, mv->hi, &mv->ns);
    mv->state = MV_SETTLE;
    mv->started_us = chand_now_us();
    mv->retry_at_us = 0;
    mv->said_us = mv->started_us;
    log_info("moving slots %u-%u to group %s: their channels take no requests until the move "
             "ends", mv->lo, mv->hi, mv->to);
    mover_arm(mv, 0);
}

void chand_slots_free(chand_server_t *s)
{
    slots_mover_t *mv = s->mover;
    if (!mv)
        return;
    chand_peer_free(mv->peer);
    event_free(mv->timer);
    names_free(&mv->ns);
    free(mv);
    s->mover = NULL;
}

void chand_slots_stats(const chand_server_t *s, slots_stats_t *out)
{
    memset(out, 0, sizeof *out);
    const slot_map_t *m = s->cluster ? chand_cluster_map(s->cluster) : NULL;
    for (uint32_t slot = 0; m && slot < CHAN_SLOTS; slot++)
        out->served += !strcmp(slotmap_owner(m, slot), s->opts.group);
    const slots_mover_t *mv = s->mover;
    if (mv) {
        out->moving = mv->state != MV_IDLE;
        out->moves = mv->moves;
        out->channels = mv->moved_channels;
        out->values = mv->moved_values;
    }
}

/*
 * chan_route.c - which connection a channel's requests go on, in a cluster
 * (see chan_route.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan_errmsg.h"
#include "chan_slot.h"
#include "remote/chan_client.h"
#include "remote/chan_route.h"

#define MAX_GROUPS 64
/* A call with no deadline waits this long for a slot's move to end. */
#define MOVE_WAIT_MS 30000

typedef struct route_group {
    char name[104];
    char *seeds;                /* its nodes, primary first: a sub's addr */
    chan_client_t *conn;        /* made at first use; lives as long as the client */
} route_group_t;

struct chani_route {
    pthread_mutex_t lock;       /* everything below; held across dials */
    uint64_t version;           /* of the map; 0: none read */
    uint8_t owner[CHAN_SLOTS];  /* index into group */
    route_group_t group[MAX_GROUPS];
    size_t ngroups;
};

bool chani_routed(const chan_client_t *cl)
{
    return !cl->direct && atomic_load_explicit(&cl->cluster, memory_order_relaxed);
}

/* The route of cl, made at first use. */
static struct chani_route *route_of(chan_client_t *cl)
{
    pthread_mutex_lock(&cl->lock);
    struct chani_route *rt = cl->route;
    if (!rt && (rt = calloc(1, sizeof *rt)) != NULL) {
        pthread_mutex_init(&rt->lock, NULL);
        cl->route = rt;
    }
    pthread_mutex_unlock(&cl->lock);
    if (!rt)
        errno = ENOMEM;
    return rt;
}

static int group_index(struct chani_route *rt, const char *name)
{
    for (size_t i = 0; i < rt->ngroups; i++)
        if (!strcmp(rt->group[i].name, name))
            return (int)i;
    if (rt->ngroups == MAX_GROUPS)
        return -1;
    snprintf(rt->group[rt->ngroups].name, sizeof rt->group[0].name, "%s", name);
    return (int)rt->ngroups++;
}

struct map_ctx {
    struct chani_route *rt;
    bool ok;
};

/* The Map reply, taken into the route (under rt->lock, held by the
 * caller of the rpc). */
static bool map_reply(chan_rpc_t *rpc, const Chan__Reply *r)
{
    struct map_ctx *m = rpc->ctx;
    struct chani_route *rt = m->rt;
    if (r->result_case != CHAN__REPLY__RESULT_MAP)
        return true;
    const Chan__SlotMap *sm = r->map;
    if (!sm->has_version || !sm->version || sm->slots != CHAN_SLOTS)
        return true;   /* no map yet (or another slot count: not ours) */
    uint8_t owner[CHAN_SLOTS];
    uint32_t next = 0;
    for (size_t i = 0; i < sm->n_ranges; i++) {
        const Chan__SlotRange *x = sm->ranges[i];
        if (!x->group || x->lo != next || x->hi < x->lo || x->hi >= CHAN_SLOTS)
            return true;
        int g = group_index(rt, x->group);
        if (g < 0)
            return true;
        memset(owner + x->lo, g, x->hi - x->lo + 1);
        next = x->hi + 1;
    }
    if (next != CHAN_SLOTS)
        return true;
    for (size_t i = 0; i < sm->n_groups; i++) {
        const Chan__GroupInfo *gi = sm->groups[i];
        int g = gi->group ? group_index(rt, gi->group) : -1;
        if (g < 0)
            continue;
        if (!gi->n_nodes) {   /* none up: no dialling the last ones known */
            free(rt->group[g].seeds);
            rt->group[g].seeds = NULL;
            continue;
        }
        size_t len = 1;
        for (size_t k = 0; k < gi->n_nodes; k++)
            len += strlen(gi->nodes[k]) + 1;
        char *seeds = malloc(len);
        if (!seeds)
            continue;
        seeds[0] = 0;
        for (size_t k = 0; k < gi->n_nodes; k++) {
            if (k)
                strcat(seeds, ",");
            strcat(seeds, gi->nodes[k]);
        }
        free(rt->group[g].seeds);
        rt->group[g].seeds = seeds;
    }
    memcpy(rt->owner, owner, sizeof owner);
    rt->version = sm->version;
    m->ok = true;
    return true;
}

/* Read the map from cl's node.  Under rt->lock.  0, or -1 with errno. */
static int refresh_locked(chan_client_t *cl, struct chani_route *rt, int64_t deadline)
{
    Chan__Map mq = CHAN__MAP__INIT;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_MAP;
    rq.map = &mq;
    struct map_ctx m = { rt, false };
    chan_rpc_t rpc = { .on_reply = map_reply, .ctx = &m };
    if (chani_client_call(cl, &rq, &rpc, deadline) < 0)
        return -1;
    if (rpc.status != CHAN__STATUS__OK)
        return chani_rpc_fail(&rpc);
    if (!m.ok) {
        chani_errmsg_set("the cluster has no slot map yet");
        errno = EAGAIN;
        return -1;
    }
    return 0;
}

/* The connection of group g: cl itself if cl is connected to that group's
 * primary (the address the application gave, and one connection fewer),
 * else one of its own, dialled if need be.  Under rt->lock. */
static chan_client_t *group_conn_locked(chan_client_t *cl, struct chani_route *rt, int g,
                                        int64_t deadline)
{
    route_group_t *gr = &rt->group[g];
    pthread_mutex_lock(&cl->lock);
    bool own = !strcmp(cl->group, gr->name);
    pthread_mutex_unlock(&cl->lock);
    if (own)
        return cl;
    if (gr->conn)
        return gr->conn;
    if (!gr->seeds) {
        chani_errmsg_set("group %s of the cluster has no node", gr->name);
        errno = EAGAIN;
        return NULL;
    }
    chan_client_t *c = chani_client_connect_like(cl, gr->seeds, deadline);
    if (!c)
        return NULL;
    c->direct = true;   /* set before anyone else can see it */
    gr->conn = c;
    return c;
}

static int pause_for(chani_moves_t *mv, int64_t deadline);

chan_client_t *chani_route(chan_client_t *cl, const char *name, size_t len, chani_moves_t *mv,
                           int64_t deadline)
{
    if (!chani_routed(cl))
        return cl;
    struct chani_route *rt = route_of(cl);
    if (!rt)
        return NULL;
    /* A cluster on its way up (no primary has written the map yet) or a
     * group whose nodes are all down (the map says so, or they refuse
     * connections until it does) is waited for as a slot on the move,
     * reading the map again at each try. */
    int first = mv->tries;
    for (;;) {
        pthread_mutex_lock(&rt->lock);
        chan_client_t *c = NULL;
        bool wait;
        if ((rt->version && mv->tries == first) || refresh_locked(cl, rt, deadline) == 0) {
            c = group_conn_locked(cl, rt, rt->owner[chan_slot(name, len)], deadline);
            wait = !c && (errno == EAGAIN || errno == ECONNREFUSED);
        } else {
            wait = errno == EAGAIN;   /* no map yet */
        }
        pthread_mutex_unlock(&rt->lock);
        if (!wait) {
            if (c && mv->tries != first)
                chani_errmsg_clear();   /* (a wait's message is no longer true) */
            return c;
        }
        int err = errno;
        char why[160];
        snprintf(why, sizeof why, "%s", chan_errmsg());
        if (deadline == 0) {   /* "do not wait" */
            chani_errmsg_set("%s", why);
            errno = err;
            return NULL;
        }
        if (pause_for(mv, deadline) < 0 || (deadline >= 0 && chan_now() >= deadline)) {
            chani_errmsg_set("%s (waited until the deadline)", why);
            errno = ETIMEDOUT;
            return NULL;
        }
    }
}

/* A connection lost or refused: a node failing over, or down. */
static bool conn_lost(int err)
{
    return err == ECONNRESET || err == ECONNREFUSED || err == EPIPE;
}

/* A try of the call could not reach the slot's group (a connection lost or
 * refused, no node up yet): why is kept for the message of a timeout. */
static void lost_note(chani_moves_t *mv)
{
    snprintf(mv->lost, sizeof mv->lost, "%s", *chan_errmsg() ? chan_errmsg() : strerror(errno));
}

/* Pause before the next try: 5 ms, doubling to 200.  -1 with ETIMEDOUT
 * once deadline has passed (30 s after the first try without one). */
static int pause_for(chani_moves_t *mv, int64_t deadline)
{
    int64_t now = chan_now();
    if (!mv->tries && !mv->started)
        mv->started = now;
    int64_t until = deadline >= 0 ? deadline : mv->started + MOVE_WAIT_MS;
    if (now >= until) {
        if (mv->lost[0])
            chani_errmsg_set("the channel's slot moved to another group, which did not answer "
                             "(the call was not made): %s", mv->lost);
        else
            chani_errmsg_set("the channel's slot is still moving to another group");
        errno = ETIMEDOUT;
        return -1;
    }
    int shift = mv->tries < 6 ? mv->tries : 6;
    int64_t ms = 5 << shift;
    if (ms > 200)
        ms = 200;
    if (now + ms > until)
        ms = until - now;
    mv->tries++;
    chan_sleep(now + ms);
    return 0;
}

int chani_route_moved_name(chan_client_t *cl, chani_moves_t *mv, int64_t deadline)
{
    if (!chani_routed(cl)) {
        errno = EREMCHG;   /* a daemon that is not a cluster's: never */
        return -1;
    }
    struct chani_route *rt = route_of(cl);
    if (!rt)
        return -1;
    mv->lost[0] = 0;
    pthread_mutex_lock(&rt->lock);
    int rc = refresh_locked(cl, rt, deadline);
    pthread_mutex_unlock(&rt->lock);
    if (rc < 0 && errno != EAGAIN && !conn_lost(errno))
        return -1;
    if (rc < 0 && conn_lost(errno))
        lost_note(mv);
    return pause_for(mv, deadline);
}

int chani_route_moved(chan_remote_t *const *hs, size_t n, chani_moves_t *mv, int64_t deadline)
{
    bool any = false, moved = false;
    mv->lost[0] = 0;   /* (what a timeout reports is this try's) */
    for (size_t i = 0; i < n; i++) {
        chan_remote_t *r = hs[i];
        if (!r->routed)
            continue;
        any = true;
        struct chani_route *rt = route_of(r->top);
        if (!rt)
            return -1;
        pthread_mutex_lock(&rt->lock);
        int rc = refresh_locked(r->top, rt, deadline);
        chan_client_t *to = NULL;
        if (rc == 0)
            to = group_conn_locked(r->top, rt, rt->owner[chan_slot(r->name, r->name_len)],
                                   deadline);
        if (rc == 0 && !to)
            lost_note(mv);   /* the group cannot be reached yet: pause */
        if (to && to != r->cl) {
            rc = chani_remote_rehome(r, to, deadline);
            moved = moved || rc == 0;
        }
        pthread_mutex_unlock(&rt->lock);
        /* no map yet, or the new group has not read it yet (MOVED): pause.
         * So too when the new group's connection was lost (its primary
         * failing over): the call was refused, so it took no effect, and
         * must not fail with ECONNRESET, which says it may have. */
        if (rc < 0 && errno != EAGAIN && errno != EREMCHG && !conn_lost(errno))
            return -1;
        if (rc < 0 && conn_lost(errno))
            lost_note(mv);
    }
    if (!any) {
        errno = EREMCHG;
        return -1;
    }
    if (moved)
        return 0;
    return pause_for(mv, deadline);
}

ssize_t chani_route_all(chan_client_t *cl, chan_client_t **out, size_t max, int64_t deadline)
{
    if (!chani_routed(cl)) {
        out[0] = cl;
        return 1;
    }
    struct chani_route *rt = route_of(cl);
    if (!rt)
        return -1;
    pthread_mutex_lock(&rt->lock);
    ssize_t n = 0;
    if (refresh_locked(cl, rt, deadline) < 0)
        n = -1;
    bool serves[MAX_GROUPS] = { false };
    for (size_t s = 0; n >= 0 && s < CHAN_SLOTS; s++)
        serves[rt->owner[s]] = true;
    for (size_t g = 0; n >= 0 && g < rt->ngroups && (size_t)n < max; g++) {
        if (!serves[g])
            continue;
        chan_client_t *c = group_conn_locked(cl, rt, (int)g, deadline);
        if (!c)
            n = -1;
        else
            out[n++] = c;
    }
    pthread_mutex_unlock(&rt->lock);
    return n;
}

void chani_route_free(chan_client_t *cl)
{
    struct chani_route *rt = cl->route;
    if (!rt)
        return;
    for (size_t i = 0; i < rt->ngroups; i++) {
        if (rt->group[i].conn)
            chan_disconnect(rt->group[i].conn);
        free(rt->group[i].seeds);
    }
    pthread_mutex_destroy(&rt->lock);
    free(rt);
    cl->route = NULL;
}

/* ---- the map and its moves, for the application ---- */

unsigned chan_slot_of(const char *name)
{
    return name ? chan_slot(name, strlen(name)) : 0;
}

struct slots_ctx {
    chan_slot_range_t *v;
    size_t n;
    bool none, bad;
};

static bool push_range(struct slots_ctx *x, unsigned lo, unsigned hi, const char *group,
                       const char *primary, const char *to)
{
    chan_slot_range_t *v = realloc(x->v, (x->n + 1) * sizeof *v);
    if (!v)
        return false;
    x->v = v;
    chan_slot_range_t *r = &v[x->n++];
    memset(r, 0, sizeof *r);
    r->lo = lo;
    r->hi = hi;
    snprintf(r->group, sizeof r->group, "%s", group);
    snprintf(r->primary, sizeof r->primary, "%s", primary);
    r->moving = to != NULL;
    snprintf(r->to, sizeof r->to, "%s", to ? to : "");
    return true;
}

static bool slots_reply(chan_rpc_t *rpc, const Chan__Reply *r)
{
    struct slots_ctx *x = rpc->ctx;
    if (r->result_case != CHAN__REPLY__RESULT_MAP) {
        x->bad = true;
        return true;
    }
    const Chan__SlotMap *sm = r->map;
    if (!sm->version || !sm->n_ranges) {
        x->none = true;
        return true;
    }
    const Chan__SlotRange *mv = sm->moving;
    for (size_t i = 0; i < sm->n_ranges; i++) {
        const Chan__SlotRange *g = sm->ranges[i];
        const char *primary = "";
        for (size_t k = 0; g->group && k < sm->n_groups; k++)
            if (sm->groups[k]->group && !strcmp(sm->groups[k]->group, g->group))
                primary = sm->groups[k]->primary ? sm->groups[k]->primary : "";
        const char *grp = g->group ? g->group : "";
        /* the moving run, if inside this one, is a run of its own */
        if (mv && mv->group && mv->lo >= g->lo && mv->hi <= g->hi) {
            if ((mv->lo > g->lo && !push_range(x, g->lo, mv->lo - 1, grp, primary, NULL)) ||
                !push_range(x, mv->lo, mv->hi, grp, primary, mv->group) ||
                (mv->hi < g->hi && !push_range(x, mv->hi + 1, g->hi, grp, primary, NULL))) {
                x->bad = true;
                return true;
            }
        } else if (!push_range(x, g->lo, g->hi, grp, primary, NULL)) {
            x->bad = true;
            return true;
        }
    }
    return true;
}

ssize_t chan_cluster_slots(chan_client_t *cl, chan_slot_range_t **out, int64_t deadline)
{
    chani_errmsg_clear();
    if (!cl || !out) {
        errno = EINVAL;
        return -1;
    }
    *out = NULL;
    Chan__Map mq = CHAN__MAP__INIT;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_MAP;
    rq.map = &mq;
    struct slots_ctx x = { 0 };
    chan_rpc_t rpc = { .on_reply = slots_reply, .ctx = &x };
    int rc = chani_client_call(cl, &rq, &rpc, deadline);
    if (rc == 0 && rpc.status != CHAN__STATUS__OK)
        rc = chani_rpc_fail(&rpc);
    else if (rc == 0 && x.bad)
        rc = -1, errno = x.v ? ENOMEM : EPROTO;
    else if (rc == 0 && x.none)
        rc = -1, errno = EAGAIN, chani_errmsg_set("the cluster has no slot map yet");
    if (rc < 0) {
        int e = errno;
        free(x.v);
        errno = e;
        return -1;
    }
    *out = x.v;
    return (ssize_t)x.n;
}

/* How long a move whose answer was lost looks for itself in the map: the
 * nodes read the map from etcd a few times a second, and a failover
 * (the node asked died) takes a redial. */
#define MOVE_LOOK_MS 5000

/* The map shows lo..hi moving to group, or served by it: 1; not: 0; the map
 * could not be read: -1. */
static int move_shown(chan_client_t *cl, unsigned lo, unsigned hi, const char *group,
                      int64_t deadline)
{
    chan_slot_range_t *v;
    ssize_t n = chan_cluster_slots(cl, &v, deadline);
    if (n < 0)
        return -1;
    int shown = 1;
    for (ssize_t i = 0; i < n; i++)
        if (v[i].lo <= hi && v[i].hi >= lo && strcmp(v[i].moving ? v[i].to : v[i].group, group))
            shown = 0;
    free(v);
    return shown;
}

/* The connection was lost before the answer to a move: the node asked may
 * have recorded it in etcd and gone away (the group's next primary carries
 * it on).  0 if the map shows it, else -1 with ECONNRESET. */
static int move_after_loss(chan_client_t *cl, unsigned lo, unsigned hi, const char *group,
                           int64_t deadline)
{
    int64_t until = chan_now() + MOVE_LOOK_MS;
    if (deadline >= 0 && deadline < until)
        until = deadline;
    for (;;) {
        if (move_shown(cl, lo, hi, group, until) == 1)
            return 0;
        if (chan_now() + 100 >= until)
            break;
        chan_sleep(chan_now() + 100);
    }
    chani_errmsg_set("the connection was lost before the answer, and the slot map does not show "
                     "slots %u-%u moving to %s", lo, hi, group);
    errno = ECONNRESET;
    return -1;
}

int chan_cluster_move(chan_client_t *cl, unsigned lo, unsigned hi, const char *group,
                      int64_t deadline)
{
    chani_errmsg_clear();
    if (!cl || !group || !*group || lo > hi || hi >= CHAN_SLOTS) {
        errno = EINVAL;
        return -1;
    }
    Chan__MoveSlots m = CHAN__MOVE_SLOTS__INIT;
    m.has_lo = m.has_hi = true;
    m.lo = lo;
    m.hi = hi;
    m.group = (char *)group;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_MOVE_SLOTS;
    rq.move_slots = &m;
    chan_rpc_t rpc = { 0 };
    if (chani_client_call(cl, &rq, &rpc, deadline) < 0)
        return errno == ECONNRESET ? move_after_loss(cl, lo, hi, group, deadline) : -1;
    return rpc.status == CHAN__STATUS__OK ? 0 : chani_rpc_fail(&rpc);
}

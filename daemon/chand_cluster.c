/*
 * chand_cluster.c - lease, election and fence (design in chand_cluster.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand_alloc.h"
#include "chand_cluster.h"
#include "chand_etcd.h"
#include "chand_log.h"
#include "chand_slotmap.h"
#include "chand_stall.h"

/* How often the cluster's keys are read (and the lease looked after). */
#define TICK_MS 100
/* Reads with the group's primary key gone before the best node campaigns. */
#define QUIET_TICKS 2
#define MAX_KEY 512
#define MAX_VALUE (64u << 10)   /* the slot map's JSON, at its longest, fits */

struct chand_cluster {
    cl_opts_t o;
    cl_hooks_t h;
    void *ctx;
    struct event_base *base;
    struct event *tick;
    chand_etcd_t *etcd;
    char prefix[128];         /* /chand/NAME/ (names are at most 100 bytes) */
    char node_key[MAX_KEY], primary_key[MAX_KEY], acked_key[MAX_KEY], slots_key[MAX_KEY];
    int64_t ttl_ms;           /* as etcd granted it */
    uint64_t lease;           /* 0: none */
    uint64_t lease_until_us;  /* our lease is good until then, on our clock */
    uint64_t next_keepalive_us;
    bool granting, renewing, reading, putting, campaigning;
    char published[MAX_VALUE];/* the node key's value as last put */
    enum cl_role role;
    uint64_t term;
    char primary[128];
    int quiet;                /* reads in a row without a primary */
    bool etcd_ok;
    uint64_t won, lost, fences, errors;
    uint64_t last_err_log_us;
    cl_node_t nodes[CL_MAX_NODES];
    size_t nnodes;
    uint64_t floor_gen, floor_off;   /* the group's acknowledged floor (etcd) */
    uint64_t put_gen, put_off;       /* ... as this primary last put it */
    bool putting_floor;
    bool said_floor;                 /* logged that our copy is below it */
    /* placement */
    slot_map_t map;                  /* map.version 0: none read yet */
    bool making_map, putting_map;
    uint64_t bad_map_version;        /* a map that did not parse, logged once */
    cl_gprim_t gprim[CL_MAX_NODES];  /* each group's primary, from etcd */
    size_t ngprim;
};

const char *chand_cluster_role_name(enum cl_role r)
{
    return r == CL_PRIMARY ? "primary" : r == CL_REPLICA ? "replica" : "candidate";
}

static uint64_t now_us(void)
{
    return chand_now_us();
}

/* The fence's margin: a renewal is trusted for the TTL less this. */
static uint64_t margin_us(const chand_cluster_t *c)
{
    return (uint64_t)c->ttl_ms * 1000 / 5 + 100000;
}

static void etcd_failed(chand_cluster_t *c, const char *what, const char *msg)
{
    c->etcd_ok = false;
    c->errors++;
    uint64_t t = now_us();
    if (t - c->last_err_log_us >= 5000000) {   /* once in 5 s: etcd may be down for long */
        log_warn("cluster: %s: %s", what, msg ? msg : "failed");
        c->last_err_log_us = t;
    }
}

static json_object *kv_body(const char *key, const char *value, uint64_t lease)
{
    json_object *b = json_object_new_object();
    char *k = etcd_b64(key, strlen(key));
    json_object_object_add(b, "key", json_object_new_string(k));
    free(k);
    if (value) {
        char *v = etcd_b64(value, strlen(value));
        json_object_object_add(b, "value", json_object_new_string(v));
        free(v);
    }
    if (lease) {
        char id[32];
        snprintf(id, sizeof id, "%" PRIu64, lease);
        json_object_object_add(b, "lease", json_object_new_string(id));
    }
    return b;
}

static void fence(chand_cluster_t *c, const char *why)
{
    if (c->role != CL_PRIMARY)
        return;
    c->fences++;
    c->role = CL_CANDIDATE;
    c->h.fence(c->ctx, why);   /* does not return when it restarts chand */
}

bool chand_cluster_may_answer(chand_cluster_t *c)
{
    if (c->role != CL_PRIMARY)
        return true;
    if (now_us() + margin_us(c) < c->lease_until_us)
        return true;
    return false;
}

void chand_cluster_check(chand_cluster_t *c)
{
    if (!chand_cluster_may_answer(c))
        fence(c, "the lease could not be renewed in time");
}

/* ---- the lease ---- */

static void granted(void *arg, int err, const char *msg, json_object *r)
{
    chand_cluster_t *c = arg;
    c->granting = false;
    if (err) {
        etcd_failed(c, "lease grant", msg);
        return;
    }
    int64_t id = etcd_int(r, "ID", 0), ttl = etcd_int(r, "TTL", 0);
    if (id <= 0 || ttl <= 0) {
        etcd_failed(c, "lease grant", "no lease in the answer");
        return;
    }
    c->etcd_ok = true;
    c->lease = (uint64_t)id;
    c->ttl_ms = ttl * 1000;
    c->published[0] = 0;   /* register again, with the new lease */
    log_info("cluster %s: lease %" PRIx64 " granted (TTL %" PRId64 " s) by etcd %s", c->o.cluster,
             c->lease, ttl, etcd_endpoint(c->etcd));
}

struct renewal {
    chand_cluster_t *c;
    uint64_t sent_us;
    uint64_t lease;
};

static void renewed(void *arg, int err, const char *msg, json_object *r)
{
    struct renewal *rn = arg;
    chand_cluster_t *c = rn->c;
    uint64_t sent = rn->sent_us, lease = rn->lease;
    free(rn);
    if (!c)
        return;
    c->renewing = false;
    if (err) {
        etcd_failed(c, "lease keepalive", msg);
        c->next_keepalive_us = now_us() + TICK_MS * 1000;
        return;
    }
    json_object *res = json_object_object_get(r, "result");
    int64_t ttl = etcd_int(res, "TTL", 0);
    if (lease != c->lease)
        return;
    if (ttl <= 0) {
        log_warn("cluster %s: lease %" PRIx64 " expired on etcd's side", c->o.cluster, lease);
        c->lease = 0;
        fence(c, "the lease expired");
        return;
    }
    c->etcd_ok = true;
    /* the lease lives at least ttl from when etcd renewed it, which is after
     * we sent the request: count from the sending */
    c->lease_until_us = sent + (uint64_t)ttl * 1000000;
    c->next_keepalive_us = sent + (uint64_t)ttl * 1000000 / 4;
}

static void renew(chand_cluster_t *c)
{
    struct renewal *rn = xmalloc(sizeof *rn);
    *rn = (struct renewal){ c, now_us(), c->lease };
    json_object *b = json_object_new_object();
    char id[32];
    snprintf(id, sizeof id, "%" PRIu64, c->lease);
    json_object_object_add(b, "ID", json_object_new_string(id));
    c->renewing = true;
    /* a short timeout: a renewal stuck on a hung etcd member is tried on the
     * next one well before the fence */
    etcd_call(c->etcd, ETCD_LANE_LEASE, "/v3/lease/keepalive", b, (int)(c->ttl_ms / 8), renewed,
              rn);
}

/* ---- our node key ---- */

static void published(void *arg, int err, const char *msg, json_object *r)
{
    (void)r;
    chand_cluster_t *c = arg;
    c->putting = false;
    if (err) {
        c->published[0] = 0;
        etcd_failed(c, "registering the node", msg);
    }
}

static void publish(chand_cluster_t *c)
{
    uint64_t gen = 0, off = 0;
    bool consistent = true;
    c->h.position(c->ctx, &gen, &off, &consistent);
    if (!consistent)
        gen = off = 0;
    char v[MAX_VALUE];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "group", json_object_new_string(c->o.group));
    json_object_object_add(o, "addr", json_object_new_string(c->o.advertise));
    json_object_object_add(o, "role", json_object_new_string(chand_cluster_role_name(c->role)));
    json_object_object_add(o, "gen", json_object_new_int64((int64_t)gen));
    json_object_object_add(o, "off", json_object_new_int64((int64_t)off));
    snprintf(v, sizeof v, "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    if (!strcmp(v, c->published))
        return;
    snprintf(c->published, sizeof c->published, "%s", v);
    c->putting = true;
    etcd_call(c->etcd, ETCD_LANE_KV, "/v3/kv/put", kv_body(c->node_key, v, c->lease), 2000,
              published, c);
}

/* ---- the group's acknowledged floor ---- */

static void floor_put(void *arg, int err, const char *msg, json_object *r)
{
    (void)r;
    chand_cluster_t *c = arg;
    c->putting_floor = false;
    if (err) {
        c->put_gen = c->put_off = 0;   /* again at the next tick */
        etcd_failed(c, "recording the acknowledged position", msg);
    }
}

static void put_floor(chand_cluster_t *c)
{
    uint64_t gen = 0, off = 0;
    c->h.acked(c->ctx, &gen, &off);
    if (!gen || (gen == c->put_gen && off == c->put_off))
        return;
    c->put_gen = gen;
    c->put_off = off;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "gen", json_object_new_int64((int64_t)gen));
    json_object_object_add(o, "off", json_object_new_int64((int64_t)off));
    char v[128];
    snprintf(v, sizeof v, "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    c->putting_floor = true;
    etcd_call(c->etcd, ETCD_LANE_KV, "/v3/kv/put", kv_body(c->acked_key, v, 0), 2000, floor_put,
              c);
}

/* ---- the election ---- */

static void campaigned(void *arg, int err, const char *msg, json_object *r)
{
    chand_cluster_t *c = arg;
    c->campaigning = false;
    if (err) {
        etcd_failed(c, "campaign", msg);
        return;
    }
    if (!json_object_get_boolean(json_object_object_get(r, "succeeded"))) {
        c->lost++;
        return;   /* someone else won: the next read shows whom */
    }
    int64_t rev = etcd_int(json_object_object_get(r, "header"), "revision", 0);
    if (rev <= 0 || !c->lease) {
        etcd_failed(c, "campaign", "no revision in the answer");
        return;
    }
    c->won++;
    c->role = CL_PRIMARY;
    c->term = (uint64_t)rev;
    c->primary[0] = 0;
    c->published[0] = 0;
    log_info("cluster %s: elected primary of group %s, term %" PRIu64, c->o.cluster, c->o.group,
             c->term);
    c->h.promote(c->ctx, c->term);
}

/* A txn body: put key = value (bound to lease, 0: none) if the key's
 * `field` (create_revision or mod_revision) equals rev. */
static json_object *put_if(const char *key, const char *field, uint64_t rev, const char *value,
                           uint64_t lease)
{
    json_object *b = json_object_new_object();
    json_object *cmp = json_object_new_object();
    char *k = etcd_b64(key, strlen(key));
    json_object_object_add(cmp, "key", json_object_new_string(k));
    free(k);
    char r[32];
    snprintf(r, sizeof r, "%" PRIu64, rev);
    json_object_object_add(cmp, "target",
                           json_object_new_string(!strcmp(field, "mod_revision") ? "MOD" : "CREATE"));
    json_object_object_add(cmp, field, json_object_new_string(r));
    json_object *cmps = json_object_new_array();
    json_object_array_add(cmps, cmp);
    json_object_object_add(b, "compare", cmps);
    json_object *put = json_object_new_object();
    json_object_object_add(put, "request_put", kv_body(key, value, lease));
    json_object *succ = json_object_new_array();
    json_object_array_add(succ, put);
    json_object_object_add(b, "success", succ);
    return b;
}

static void campaign(chand_cluster_t *c)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "node", json_object_new_string(c->o.node));
    json_object_object_add(o, "addr", json_object_new_string(c->o.advertise));
    char v[MAX_VALUE];
    snprintf(v, sizeof v, "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    json_object *b = put_if(c->primary_key, "create_revision", 0, v, c->lease);
    c->campaigning = true;
    etcd_call(c->etcd, ETCD_LANE_KV, "/v3/kv/txn", b, 2000, campaigned, c);
}

/* A node's published position, read back from its key. */
typedef struct cl_peer {
    char node[104];   /* names are at most 100 bytes */
    uint64_t gen, off;
} cl_peer_t;

static bool better(const cl_peer_t *a, const cl_peer_t *b)
{
    if (a->gen != b->gen)
        return a->gen > b->gen;
    if (a->off != b->off)
        return a->off > b->off;
    return strcmp(a->node, b->node) < 0;
}

static json_object *kv_json(json_object *kv, char *key, size_t keylen)
{
    const char *k = json_object_get_string(json_object_object_get(kv, "key"));
    const char *v = json_object_get_string(json_object_object_get(kv, "value"));
    long n = k ? etcd_unb64(k, key, keylen - 1) : -1;
    if (n < 0)
        return NULL;
    key[n] = 0;
    char *val = xmalloc(MAX_VALUE);
    long m = v ? etcd_unb64(v, val, MAX_VALUE - 1) : -1;
    json_object *o = NULL;
    if (m >= 0) {
        val[m] = 0;
        o = json_tokener_parse(val);
    }
    free(val);
    return o;
}

/* The slot map's key, read: keep it if it parses (a bad one is logged
 * once and the last good one kept). */
static void take_map(chand_cluster_t *c, json_object *kv, json_object *v)
{
    uint64_t ver = (uint64_t)etcd_int(kv, "mod_revision", 0);
    if (ver == c->map.version || ver == c->bad_map_version)
        return;
    const char *js = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    slot_map_t m;
    char err[256];
    if (slotmap_parse(&m, js, strlen(js), err, sizeof err) < 0) {
        log_err("cluster %s: the slot map in etcd (%s, revision %" PRIu64 ") is not valid: %s; "
                "keeping the last good one", c->o.cluster, c->slots_key, ver, err);
        c->bad_map_version = ver;
        return;
    }
    m.version = ver;
    c->map = m;
    c->h.map_changed(c->ctx);
}

static void map_made(void *arg, int err, const char *msg, json_object *r)
{
    chand_cluster_t *c = arg;
    c->making_map = false;
    if (err)
        etcd_failed(c, "making the slot map", msg);
    else if (json_object_get_boolean(json_object_object_get(r, "succeeded")))
        log_info("cluster %s: made the slot map: every slot to group %s", c->o.cluster,
                 c->o.group);
}

/* The first primary of a cluster without a slot map makes one: every slot
 * its own group's, if the key is still absent. */
static void make_map(chand_cluster_t *c)
{
    slot_map_t m;
    slotmap_all(&m, c->o.group);
    char *js = slotmap_format(&m);
    json_object *b = put_if(c->slots_key, "create_revision", 0, js, 0);
    free(js);
    c->making_map = true;
    etcd_call(c->etcd, ETCD_LANE_KV, "/v3/kv/txn", b, 2000, map_made, c);
}

struct map_put {
    chand_cluster_t *c;
    void (*done)(void *arg, int result, const char *msg);
    void *arg;
};

static void map_put_done(void *arg, int err, const char *msg, json_object *r)
{
    struct map_put *mp = arg;
    mp->c->putting_map = false;
    if (err) {
        etcd_failed(mp->c, "changing the slot map", msg);
        mp->done(mp->arg, -1, msg ? msg : "etcd failed");
    } else if (!json_object_get_boolean(json_object_object_get(r, "succeeded"))) {
        mp->done(mp->arg, 1, "the slot map changed meanwhile");
    } else {
        mp->done(mp->arg, 0, NULL);
    }
    free(mp);
}

int chand_cluster_put_map(chand_cluster_t *c, const slot_map_t *m,
                          void (*done)(void *arg, int result, const char *msg), void *arg)
{
    if (c->putting_map || !c->map.version)
        return -1;
    char *js = slotmap_format(m);
    json_object *b = put_if(c->slots_key, "mod_revision", m->version, js, 0);
    free(js);
    struct map_put *mp = xcalloc(1, sizeof *mp);
    mp->c = c;
    mp->done = done;
    mp->arg = arg;
    c->putting_map = true;
    etcd_call(c->etcd, ETCD_LANE_KV, "/v3/kv/txn", b, 2000, map_put_done, mp);
    return 0;
}

const slot_map_t *chand_cluster_map(const chand_cluster_t *c)
{
    return c->map.version ? &c->map : NULL;
}

const char *chand_cluster_group_primary(const chand_cluster_t *c, const char *group)
{
    if (!strcmp(group, c->o.group) && c->role == CL_PRIMARY)
        return c->o.advertise;
    for (size_t i = 0; i < c->ngprim; i++)
        if (!strcmp(c->gprim[i].group, group))
            return c->gprim[i].addr;
    return "";
}

size_t chand_cluster_group_primaries(const chand_cluster_t *c, const cl_gprim_t **out)
{
    *out = c->gprim;
    return c->ngprim;
}

static const char *jstr(json_object *o, const char *f)
{
    const char *s = json_object_get_string(json_object_object_get(o, f));
    return s ? s : "";
}

static void read_done(void *arg, int err, const char *msg, json_object *r)
{
    chand_cluster_t *c = arg;
    c->reading = false;
    if (err) {
        etcd_failed(c, "reading the cluster's keys", msg);
        return;
    }
    c->etcd_ok = true;
    json_object *kvs = json_object_object_get(r, "kvs");
    size_t n = kvs ? json_object_array_length(kvs) : 0;
    bool have_primary = false;
    char pnode[128] = "", paddr[128] = "";
    uint64_t pterm = 0;
    cl_peer_t best = { "", 0, 0 };
    bool any = false;
    c->nnodes = 0;
    c->ngprim = 0;
    bool have_map = false;
    size_t nodes_len = strlen(c->prefix) + 6;   /* "nodes/" */
    size_t groups_len = strlen(c->prefix) + 7;  /* "groups/" */
    for (size_t i = 0; i < n; i++) {
        json_object *kv = json_object_array_get_idx(kvs, i);
        char key[MAX_KEY];
        json_object *v = kv_json(kv, key, sizeof key);
        if (!v)
            continue;
        size_t plen = strlen(c->prefix);
        bool is_node = !strncmp(key, c->prefix, plen) && !strncmp(key + plen, "nodes/", 6);
        bool is_group = !strncmp(key, c->prefix, plen) && !strncmp(key + plen, "groups/", 7);
        size_t klen = strlen(key);
        if (is_group && klen > groups_len + 8 && !strcmp(key + klen - 8, "/primary") &&
            c->ngprim < CL_MAX_NODES) {
            cl_gprim_t *g = &c->gprim[c->ngprim++];
            snprintf(g->group, sizeof g->group, "%.*s", (int)(klen - groups_len - 8),
                     key + groups_len);
            snprintf(g->addr, sizeof g->addr, "%s", jstr(v, "addr"));
        }
        if (!strcmp(key, c->slots_key)) {
            have_map = true;
            take_map(c, kv, v);
        } else if (!strcmp(key, c->acked_key)) {
            c->floor_gen = (uint64_t)etcd_int(v, "gen", 0);
            c->floor_off = (uint64_t)etcd_int(v, "off", 0);
        } else if (!strcmp(key, c->primary_key)) {
            have_primary = true;
            snprintf(pnode, sizeof pnode, "%s", jstr(v, "node"));
            snprintf(paddr, sizeof paddr, "%s", jstr(v, "addr"));
            pterm = (uint64_t)etcd_int(kv, "create_revision", 0);
        } else if (is_node) {
            cl_peer_t p;
            snprintf(p.node, sizeof p.node, "%s", key + nodes_len);
            p.gen = (uint64_t)etcd_int(v, "gen", 0);
            p.off = (uint64_t)etcd_int(v, "off", 0);
            if (c->nnodes < CL_MAX_NODES) {   /* etcd returns keys sorted */
                cl_node_t *nd = &c->nodes[c->nnodes++];
                snprintf(nd->node, sizeof nd->node, "%s", p.node);
                snprintf(nd->group, sizeof nd->group, "%s", jstr(v, "group"));
                snprintf(nd->addr, sizeof nd->addr, "%s", jstr(v, "addr"));
                snprintf(nd->role, sizeof nd->role, "%s", jstr(v, "role"));
                nd->gen = p.gen;
                nd->off = p.off;
            }
            if (!strcmp(jstr(v, "group"), c->o.group) && (!any || better(&p, &best))) {
                best = p;
                any = true;
            }
        }
        json_object_put(v);
    }
    if (!have_map && c->role == CL_PRIMARY && !c->making_map)
        make_map(c);
    if (have_primary) {
        c->quiet = 0;
        if (!strcmp(pnode, c->o.node)) {
            /* ours: as primary, or a key our previous run left (its lease
             * expires; nobody can follow it meanwhile) */
            return;
        }
        if (c->role == CL_PRIMARY) {
            fence(c, "another node holds the primary key");
            return;
        }
        if (c->role != CL_REPLICA || c->term != pterm || strcmp(c->primary, paddr)) {
            c->role = CL_REPLICA;
            c->term = pterm;
            snprintf(c->primary, sizeof c->primary, "%s", paddr);
            log_info("cluster %s: following %s (%s), term %" PRIu64, c->o.cluster, pnode, paddr,
                     pterm);
            c->h.follow(c->ctx, paddr, pterm);
        }
        return;
    }
    /* no primary */
    if (c->role == CL_PRIMARY) {
        fence(c, "the primary key is gone");
        return;
    }
    if (c->role == CL_REPLICA) {
        log_info("cluster %s: group %s has no primary; electing", c->o.cluster, c->o.group);
        c->role = CL_CANDIDATE;
        c->primary[0] = 0;
        c->h.unfollow(c->ctx);
    }
    if (++c->quiet <= QUIET_TICKS || !c->lease || c->campaigning)
        return;
    /* our own key may not be published yet: it counts too */
    cl_peer_t me;
    snprintf(me.node, sizeof me.node, "%s", c->o.node);
    bool consistent = true;
    c->h.position(c->ctx, &me.gen, &me.off, &consistent);
    if (!consistent)
        return;   /* half a copy: the group waits for a node with a whole one */
    if (me.gen < c->floor_gen || (me.gen == c->floor_gen && me.off < c->floor_off)) {
        if (!c->said_floor)
            log_warn("cluster %s: this node's copy (log %" PRIu64 " at %" PRIu64 ") falls short "
                     "of what group %s acknowledged (log %" PRIu64 " at %" PRIu64 "): waiting for "
                     "a node that has it", c->o.cluster, me.gen, me.off, c->o.group,
                     c->floor_gen, c->floor_off);
        c->said_floor = true;
        return;
    }
    if (any && strcmp(best.node, me.node) && better(&best, &me))
        return;   /* a node with more of the journal lives: it campaigns */
    campaign(c);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chand_cluster_t *c = arg;
    uint64_t t = now_us();
    if (c->role == CL_PRIMARY && !chand_cluster_may_answer(c)) {
        chand_cluster_check(c);
        return;
    }
    if (!c->lease) {
        if (!c->granting) {
            json_object *b = json_object_new_object();
            json_object_object_add(b, "TTL",
                                   json_object_new_int64((int64_t)(c->o.lease_ttl_ms + 999) / 1000));
            c->granting = true;
            /* counted from before the call, as renewals are */
            c->lease_until_us = t + c->o.lease_ttl_ms * 1000;
            c->next_keepalive_us = t + c->o.lease_ttl_ms * 1000 / 4;
            etcd_call(c->etcd, ETCD_LANE_LEASE, "/v3/lease/grant", b, 2000, granted, c);
        }
        return;
    }
    if (!c->renewing && t >= c->next_keepalive_us)
        renew(c);
    if (!c->putting)
        publish(c);
    if (c->role == CL_PRIMARY && !c->putting_floor)
        put_floor(c);
    if (!c->reading) {
        json_object *b = kv_body(c->prefix, NULL, 0);
        char end[MAX_KEY];
        snprintf(end, sizeof end, "%s", c->prefix);
        end[strlen(end) - 1]++;   /* the keys that start with the prefix */
        char *e = etcd_b64(end, strlen(end));
        json_object_object_add(b, "range_end", json_object_new_string(e));
        free(e);
        c->reading = true;
        etcd_call(c->etcd, ETCD_LANE_KV, "/v3/kv/range", b, 1000, read_done, c);
    }
}

chand_cluster_t *chand_cluster_new(struct event_base *base, const cl_opts_t *o,
                                   const cl_hooks_t *hooks, void *ctx)
{
    chand_cluster_t *c = xcalloc(1, sizeof *c);
    c->o = *o;
    c->h = *hooks;
    c->ctx = ctx;
    c->base = base;
    c->ttl_ms = (int64_t)o->lease_ttl_ms;
    char err[256];
    c->etcd = etcd_new(base, o->etcd, err, sizeof err);
    if (!c->etcd) {
        log_err("--etcd: %s", err);
        free(c);
        return NULL;
    }
    snprintf(c->prefix, sizeof c->prefix, "/chand/%s/", o->cluster);
    snprintf(c->node_key, sizeof c->node_key, "%snodes/%s", c->prefix, o->node);
    snprintf(c->primary_key, sizeof c->primary_key, "%sgroups/%s/primary", c->prefix, o->group);
    snprintf(c->acked_key, sizeof c->acked_key, "%sgroups/%s/acked", c->prefix, o->group);
    snprintf(c->slots_key, sizeof c->slots_key, "%sslots", c->prefix);
    c->tick = event_new(base, -1, EV_PERSIST, tick_cb, c);
    struct timeval tv = { 0, TICK_MS * 1000 };
    event_add(c->tick, &tv);
    event_active(c->tick, EV_TIMEOUT, 1);
    log_info("cluster %s: node %s of group %s at %s; etcd %s", o->cluster, o->node, o->group,
             o->advertise, o->etcd);
    return c;
}

static void revoked(void *arg, int err, const char *msg, json_object *r)
{
    (void)r;
    chand_cluster_t *c = arg;
    if (err)
        log_warn("cluster %s: revoking the lease: %s (it expires in its TTL)", c->o.cluster, msg);
    else
        log_info("cluster %s: left: lease revoked, another node can be elected at once",
                 c->o.cluster);
    event_base_loopbreak(c->base);
}

void chand_cluster_leave(chand_cluster_t *c)
{
    if (!c || !c->lease)
        return;
    event_del(c->tick);
    json_object *b = json_object_new_object();
    char id[32];
    snprintf(id, sizeof id, "%" PRIu64, c->lease);
    json_object_object_add(b, "ID", json_object_new_string(id));
    c->lease = 0;
    etcd_call(c->etcd, ETCD_LANE_LEASE, "/v3/lease/revoke", b, 1000, revoked, c);
    /* the server's loop has ended: run it for this one call */
    struct timeval tv = { 1, 500000 };
    event_base_loopexit(c->base, &tv);
    event_base_dispatch(c->base);
}

void chand_cluster_free(chand_cluster_t *c)
{
    if (!c)
        return;
    event_free(c->tick);
    etcd_free(c->etcd);   /* answers calls in flight: renewals' c is gone then */
    free(c);
}

size_t chand_cluster_nodes(const chand_cluster_t *c, const cl_node_t **out)
{
    *out = c->nodes;
    return c->nnodes;
}

enum cl_role chand_cluster_role(const chand_cluster_t *c)
{
    return c->role;
}

const char *chand_cluster_primary(const chand_cluster_t *c)
{
    return c->primary;
}

uint64_t chand_cluster_term(const chand_cluster_t *c)
{
    return c->term;
}

void chand_cluster_stats(const chand_cluster_t *c, cl_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->role = c->role;
    out->term = c->term;
    snprintf(out->primary, sizeof out->primary, "%s", c->primary);
    snprintf(out->etcd, sizeof out->etcd, "%s", etcd_endpoint(c->etcd));
    out->etcd_ok = c->etcd_ok;
    out->lease_id = c->lease;
    out->lease_left_ms = c->lease ? ((int64_t)c->lease_until_us - (int64_t)now_us()) / 1000 : 0;
    out->elections_won = c->won;
    out->elections_lost = c->lost;
    out->fences = c->fences;
    out->etcd_errors = c->errors;
}

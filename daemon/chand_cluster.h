/*
 * chand_cluster.h - a chand as a member of a cluster: its etcd lease, its
 * group's election, and the fence that keeps a primary that lost its lease
 * from answering.
 *
 * Agreement is etcd's, never ours.  Under /chand/CLUSTER/ each node keeps
 *     nodes/NODE            {"group","addr","role","gen","off"}  (its lease)
 *     groups/GROUP/primary  {"node","addr"}                      (its lease)
 * The primary key is created by a transaction that succeeds only if the key
 * does not exist, bound to the winner's lease: at most one holder while the
 * lease lives.  The etcd revision of that creation is the term.  A primary
 * renews its lease every quarter of the TTL (a renewal that takes more than
 * an eighth is tried again on the next etcd member) and stops answering (and restarts
 * itself as a replica: chand_server_fence) once a renewal has not succeeded
 * for TTL minus a margin, measured from when the last successful renewal was
 * sent - before etcd can expire the lease and let another node win.
 *
 * Every node reads the cluster's keys a few times a second.  When its
 * group's primary key is gone, the nodes wait two reads (so that each has
 * published its final position), and the one whose journal reaches furthest
 * (log generation, then offset; then the smallest node name) campaigns: a
 * node that would lose acknowledged writes never wins while a better one
 * lives.  Nor when none does: under --replication sync the primary keeps
 *     groups/GROUP/acked    {"gen","off"}                        (no lease)
 * at what its replicas acknowledged (a put a read at most), and a node
 * whose copy falls short of it does not campaign - a replaced disk, or a
 * node that was down, is not elected while the node with the data is away.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_CLUSTER_H
#define CHAND_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

enum cl_role { CL_CANDIDATE = 0, CL_REPLICA = 1, CL_PRIMARY = 2 };

typedef struct cl_opts {
    const char *cluster;      /* the cluster's name: etcd keys under /chand/NAME/ */
    const char *etcd;         /* endpoints, comma-separated */
    const char *group;        /* this node's shard group */
    const char *node;         /* this node's name, unique in the cluster */
    const char *advertise;    /* HOST:PORT clients and peers reach it at */
    uint64_t lease_ttl_ms;
} cl_opts_t;

/* What the cluster tells the server (chand_server.c implements them). */
typedef struct cl_hooks {
    /* this node won the election of term; it serves from now on */
    void (*promote)(void *ctx, uint64_t term);
    /* another node (addr) is primary in term: copy its journal */
    void (*follow)(void *ctx, const char *addr, uint64_t term);
    /* the group has no primary: stop copying (the position is final) */
    void (*unfollow)(void *ctx);
    /* the lease is lost while primary: stop answering at once */
    void (*fence)(void *ctx, const char *why);
    /* how far this node's journal reaches; consistent: false while a full
     * copy from a primary is under way (such a node must not win) */
    void (*position)(void *ctx, uint64_t *gen, uint64_t *off, bool *consistent);
    /* as primary under --replication sync: how far a replica has
     * acknowledged the journal (0, 0: nothing yet) */
    void (*acked)(void *ctx, uint64_t *gen, uint64_t *off);
    /* a new slot map was read (chand_cluster_map) */
    void (*map_changed)(void *ctx);
} cl_hooks_t;

typedef struct chand_cluster chand_cluster_t;

/* A node of the cluster, as last read from etcd. */
#define CL_MAX_NODES 64
typedef struct cl_node {
    char node[104], group[104], addr[128], role[16];
    uint64_t gen, off;
} cl_node_t;

/* A group's primary, as its key in etcd names it. */
typedef struct cl_gprim {
    char group[104], addr[128];
} cl_gprim_t;

typedef struct cl_stats {
    enum cl_role role;
    uint64_t term;            /* of the primary we are or follow; 0: none */
    char primary[128];        /* its address, "" when none */
    char etcd[272];           /* the endpoint in use */
    bool etcd_ok;             /* the last call to etcd succeeded */
    uint64_t lease_id;
    int64_t lease_left_ms;    /* until our view of the lease ends */
    uint64_t elections_won, elections_lost, fences, etcd_errors;
} cl_stats_t;

/* chand_cluster_new - join: grant a lease and start the election loop.
 * NULL (logged) if the options are bad. */
chand_cluster_t *chand_cluster_new(struct event_base *base, const cl_opts_t *o,
                                   const cl_hooks_t *hooks, void *ctx);
void chand_cluster_free(chand_cluster_t *c);
/* chand_cluster_leave - at shutdown, once every connection is closed:
 * revoke the lease (its keys go with it), so that a replica is elected at
 * once rather than after the TTL.  Runs base (whose loop has ended) until
 * etcd answers, 1.5 s at most. */
void chand_cluster_leave(chand_cluster_t *c);

enum cl_role chand_cluster_role(const chand_cluster_t *c);
/* The primary's address while this node is not it ("" when none). */
const char *chand_cluster_primary(const chand_cluster_t *c);
uint64_t chand_cluster_term(const chand_cluster_t *c);
/* chand_cluster_may_answer - false once a primary's lease can no longer be
 * trusted (the caller fences); true for every other role. */
bool chand_cluster_may_answer(chand_cluster_t *c);
/* chand_cluster_check - before a turn's replies go out: a primary whose
 * lease can no longer be trusted is fenced now (hooks->fence). */
void chand_cluster_check(chand_cluster_t *c);
void chand_cluster_stats(const chand_cluster_t *c, cl_stats_t *out);

const char *chand_cluster_role_name(enum cl_role r);
/* chand_cluster_nodes - the nodes of the last read of etcd (*out, the
 * count returned), sorted by name; valid until the next loop turn. */
size_t chand_cluster_nodes(const chand_cluster_t *c, const cl_node_t **out);

/* ---- placement (chand_slotmap.h) ----
 *     slots                 the slot map (no lease)
 * The first primary elected in a cluster without one makes it: every slot
 * its own group's. */
struct slot_map;
/* chand_cluster_map - the slot map as last read (NULL: none yet). */
const struct slot_map *chand_cluster_map(const chand_cluster_t *c);
/* chand_cluster_put_map - replace the map with m if etcd's is still of
 * version m->version; done(arg, 0) when it is, (arg, 1, why) if the map
 * changed meanwhile, (arg, -1, why) if etcd failed.  -1 (nothing done) if
 * a change is under way already or no map was read yet. */
int chand_cluster_put_map(chand_cluster_t *c, const struct slot_map *m,
                          void (*done)(void *arg, int result, const char *msg), void *arg);
/* chand_cluster_group_primary - the address of group's primary ("":
 * none now); chand_cluster_group_primaries - every group's. */
const char *chand_cluster_group_primary(const chand_cluster_t *c, const char *group);
size_t chand_cluster_group_primaries(const chand_cluster_t *c, const cl_gprim_t **out);

#endif /* CHAND_CLUSTER_H */

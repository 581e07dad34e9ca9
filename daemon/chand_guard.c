/*
 * chand_guard.c - per-address connection counts and failed Hellos (see
 * chand_guard.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand_alloc.h"
#include "chand_guard.h"

void chand_guard_init(chand_guard_t *g)
{
    htable_init(&g->addrs);
    g->sweep_at = 1024;
}

static void collect(hnode_t *n, void *arg)
{
    guard_addr_t ***v = arg;
    *(*v)++ = (guard_addr_t *)n;
}

/* Every record, for freeing or sweeping (htable_each forbids removal). */
static guard_addr_t **all_records(chand_guard_t *g)
{
    guard_addr_t **v = xmalloc((g->addrs.count + 1) * sizeof *v), **end = v;
    htable_each(&g->addrs, collect, &end);
    *end = NULL;
    return v;
}

void chand_guard_free(chand_guard_t *g)
{
    guard_addr_t **v = all_records(g);
    for (guard_addr_t **p = v; *p; p++)
        free(*p);
    free(v);
    htable_free(&g->addrs);
}

static bool forgettable(const guard_addr_t *a, uint64_t now)
{
    return a->conns == 0 && (a->fails == 0 || now - a->last_fail_ms >= GUARD_FORGET_MS);
}

/* Drop the records with nothing left to remember; look again once the
 * table has doubled, so that the sweeps cost O(1) per record made. */
static void sweep(chand_guard_t *g, uint64_t now)
{
    guard_addr_t **v = all_records(g);
    for (guard_addr_t **p = v; *p; p++) {
        if (forgettable(*p, now)) {
            htable_remove(&g->addrs, &(*p)->node);
            free(*p);
        }
    }
    free(v);
    g->sweep_at = g->addrs.count * 2 > 1024 ? g->addrs.count * 2 : 1024;
}

static void key_of(const struct sockaddr *sa, char *key, size_t size, bool *unix_socket)
{
    *unix_socket = false;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, key, (socklen_t)size);
    } else if (sa->sa_family == AF_INET6) {
        struct in6_addr a = ((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a)) {
            inet_ntop(AF_INET, &a.s6_addr[12], key, (socklen_t)size);
            return;
        }
        memset(&a.s6_addr[8], 0, 8);
        char host[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &a, host, sizeof host);
        snprintf(key, size, "%s/64", host);
    } else {
        snprintf(key, size, "unix");
        *unix_socket = true;
    }
}

static bool key_eq(const hnode_t *n, const void *key)
{
    return !strcmp(((const guard_addr_t *)n)->key, key);
}

guard_addr_t *chand_guard_conn(chand_guard_t *g, const struct sockaddr *sa, uint64_t now)
{
    char key[56];
    bool unix_socket;
    key_of(sa, key, sizeof key, &unix_socket);
    uint64_t h = chand_hash_bytes(key, strlen(key));
    guard_addr_t *a = (guard_addr_t *)htable_find(&g->addrs, h, key_eq, key);
    if (!a) {
        if (g->addrs.count >= g->sweep_at)
            sweep(g, now);
        a = xcalloc(1, sizeof *a);
        memcpy(a->key, key, sizeof a->key);
        a->unix_socket = unix_socket;
        a->node.hash = h;
        htable_insert(&g->addrs, &a->node);
    }
    a->conns++;
    return a;
}

void chand_guard_conn_gone(chand_guard_t *g, guard_addr_t *a, uint64_t now)
{
    if (!a)
        return;
    a->conns--;
    if (forgettable(a, now)) {
        htable_remove(&g->addrs, &a->node);
        free(a);
    }
}

uint64_t chand_guard_failed(guard_addr_t *a, uint64_t now)
{
    if (a->fails && now - a->last_fail_ms >= GUARD_FORGET_MS)
        a->fails = 0;
    if (a->fails < UINT32_MAX)
        a->fails++;
    a->last_fail_ms = now;
    unsigned shift = a->fails - 1 < 16 ? a->fails - 1 : 16;
    uint64_t delay = (uint64_t)GUARD_DELAY_MS << shift;
    return delay < GUARD_DELAY_MAX_MS ? delay : GUARD_DELAY_MAX_MS;
}

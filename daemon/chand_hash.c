/*
 * chand_hash.c - intrusive chained hash table and SipHash-2-4 (see
 * chand_hash.h).  The table doubles when the load factor reaches 1 and never
 * shrinks: the daemon's tables grow to their working size and stay there.
 * It doubles incrementally, as Redis's dict does: the old bucket array is
 * emptied into the new one a few buckets per insert or remove, so that no
 * single request pays for moving a million channels (tens of milliseconds
 * during which every other client would wait).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "chand_alloc.h"
#include "chand_hash.h"

/* Old buckets moved per insert or remove while the table grows: the move
 * is over long before the new table fills (it takes nold / STEP inserts). */
#define REHASH_STEP 8

void htable_init(htable_t *t)
{
    t->buckets = NULL;
    t->nbuckets = 0;
    t->old = NULL;
    t->nold = 0;
    t->moved = 0;
    t->count = 0;
}

void htable_free(htable_t *t)
{
    free(t->buckets);
    free(t->old);
    htable_init(t);
}

/* Move up to n buckets of the old table into the new one. */
static void rehash_step(htable_t *t, size_t n)
{
    size_t mask = t->nbuckets - 1;
    while (t->old && n--) {
        hnode_t *node = t->old[t->moved];
        while (node) {
            hnode_t *next = node->next;
            size_t j = node->hash & mask;
            node->next = t->buckets[j];
            t->buckets[j] = node;
            node = next;
        }
        t->old[t->moved++] = NULL;
        if (t->moved == t->nold) {
            free(t->old);
            t->old = NULL;
            t->nold = t->moved = 0;
        }
    }
}

static void htable_grow(htable_t *t)
{
    if (t->old)
        rehash_step(t, t->nold);   /* never two moves at once (barely happens) */
    size_t n = t->nbuckets ? t->nbuckets * 2 : 16;
    hnode_t **b = xcalloc(n, sizeof *b);
    if (t->nbuckets) {
        t->old = t->buckets;
        t->nold = t->nbuckets;
        t->moved = 0;
    }
    t->buckets = b;
    t->nbuckets = n;
}

/* Where a node with this hash lives now: its old bucket if that one has
 * not moved yet, else its bucket of the new table. */
static hnode_t **bucket_of(const htable_t *t, uint64_t hash)
{
    if (t->old) {
        size_t i = hash & (t->nold - 1);
        if (i >= t->moved)
            return &t->old[i];
    }
    return &t->buckets[hash & (t->nbuckets - 1)];
}

void htable_insert(htable_t *t, hnode_t *node)
{
    rehash_step(t, REHASH_STEP);
    if (t->count >= t->nbuckets)
        htable_grow(t);
    hnode_t **b = bucket_of(t, node->hash);
    node->next = *b;
    *b = node;
    t->count++;
}

hnode_t *htable_find(const htable_t *t, uint64_t hash, hnode_eq_fn eq, const void *key)
{
    if (!t->nbuckets)
        return NULL;
    for (hnode_t *n = *bucket_of(t, hash); n; n = n->next)
        if (n->hash == hash && eq(n, key))
            return n;
    return NULL;
}

void htable_remove(htable_t *t, hnode_t *node)
{
    hnode_t **p = bucket_of(t, node->hash);
    while (*p && *p != node)
        p = &(*p)->next;
    if (*p) {
        *p = node->next;
        t->count--;
    }
    rehash_step(t, REHASH_STEP);
}

static void each_in(hnode_t **b, size_t from, size_t to, void (*fn)(hnode_t *node, void *arg),
                    void *arg)
{
    for (size_t i = from; i < to; i++)
        for (hnode_t *n = b[i]; n; n = n->next)
            fn(n, arg);
}

void htable_each(const htable_t *t, void (*fn)(hnode_t *node, void *arg), void *arg)
{
    if (t->old)
        each_in(t->old, t->moved, t->nold, fn, arg);
    each_in(t->buckets, 0, t->nbuckets, fn, arg);
}

static uint64_t bit_reverse(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0f0f0f0f0f0f0f0full) | ((v & 0x0f0f0f0f0f0f0f0full) << 4);
    return __builtin_bswap64(v);
}

uint64_t htable_scan(const htable_t *t, uint64_t cursor, void (*fn)(hnode_t *node, void *arg),
                     void *arg)
{
    if (!t->nbuckets)
        return 0;
    uint64_t mask = t->nbuckets - 1;
    if (!t->old) {
        each_in(t->buckets, cursor & mask, (cursor & mask) + 1, fn, arg);
    } else {
        /* Growing: the cursor names a bucket of the old (smaller) table;
         * visit it and every bucket of the new table its nodes can move
         * to (same low bits), so that each node is seen wherever it is. */
        uint64_t small = t->nold - 1, v = cursor & small;
        each_in(t->old, v, v + 1, fn, arg);   /* empty if moved already */
        for (uint64_t hi = 0; hi <= (mask & ~small); hi += small + 1)
            each_in(t->buckets, v | hi, (v | hi) + 1, fn, arg);
        mask = small;
    }
    /* Add one to the reversed index: set the bits above the mask so that
     * the carry runs off the top when every bucket has been seen. */
    cursor |= ~mask;
    return bit_reverse(bit_reverse(cursor) + 1);
}

/* ---- SipHash-2-4 ---- */

static uint8_t sip_key[16] = "chand-default-k";

void chand_hash_seed(const uint8_t key[16])
{
    memcpy(sip_key, key, sizeof sip_key);
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static inline void sip_round(uint64_t v[4])
{
    v[0] += v[1]; v[1] = ROTL(v[1], 13); v[1] ^= v[0]; v[0] = ROTL(v[0], 32);
    v[2] += v[3]; v[3] = ROTL(v[3], 16); v[3] ^= v[2];
    v[0] += v[3]; v[3] = ROTL(v[3], 21); v[3] ^= v[0];
    v[2] += v[1]; v[1] = ROTL(v[1], 17); v[1] ^= v[2]; v[2] = ROTL(v[2], 32);
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;   /* little-endian hosts; the hash only has to be consistent */
}

uint64_t chand_hash_bytes(const void *data, size_t len)
{
    const uint8_t *in = data;
    uint64_t k0 = load64(sip_key), k1 = load64(sip_key + 8);
    uint64_t v[4] = {
        0x736f6d6570736575ULL ^ k0, 0x646f72616e646f6dULL ^ k1,
        0x6c7967656e657261ULL ^ k0, 0x7465646279746573ULL ^ k1,
    };
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load64(in + i);
        v[3] ^= m;
        sip_round(v);
        sip_round(v);
        v[0] ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)in[whole + i] << (8 * i);
    v[3] ^= b;
    sip_round(v);
    sip_round(v);
    v[0] ^= b;
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

uint64_t chand_hash_u64(uint64_t v)
{
    /* ids are chosen by clients too, but a per-connection table of ids
     * only hurts the connection that chose them: a fast mixer suffices. */
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    v *= 0xc4ceb9fe1a85ec53ULL;
    v ^= v >> 33;
    return v;
}

/*
 * chand_hash.c - intrusive chained hash table and SipHash-2-4 (see
 * chand_hash.h).  The table doubles when the load factor reaches 1 and never
 * shrinks: the daemon's tables grow to their working size and stay there.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "chand_alloc.h"
#include "chand_hash.h"

void htable_init(htable_t *t)
{
    t->buckets = NULL;
    t->nbuckets = 0;
    t->count = 0;
}

void htable_free(htable_t *t)
{
    free(t->buckets);
    htable_init(t);
}

static void htable_grow(htable_t *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : 16;
    hnode_t **b = xcalloc(n, sizeof *b);
    for (size_t i = 0; i < t->nbuckets; i++) {
        hnode_t *node = t->buckets[i];
        while (node) {
            hnode_t *next = node->next;
            size_t j = node->hash & (n - 1);
            node->next = b[j];
            b[j] = node;
            node = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

void htable_insert(htable_t *t, hnode_t *node)
{
    if (t->count >= t->nbuckets)
        htable_grow(t);
    size_t i = node->hash & (t->nbuckets - 1);
    node->next = t->buckets[i];
    t->buckets[i] = node;
    t->count++;
}

hnode_t *htable_find(const htable_t *t, uint64_t hash, hnode_eq_fn eq, const void *key)
{
    if (!t->nbuckets)
        return NULL;
    for (hnode_t *n = t->buckets[hash & (t->nbuckets - 1)]; n; n = n->next)
        if (n->hash == hash && eq(n, key))
            return n;
    return NULL;
}

void htable_remove(htable_t *t, hnode_t *node)
{
    hnode_t **p = &t->buckets[node->hash & (t->nbuckets - 1)];
    while (*p && *p != node)
        p = &(*p)->next;
    if (*p) {
        *p = node->next;
        t->count--;
    }
}

void htable_each(const htable_t *t, void (*fn)(hnode_t *node, void *arg), void *arg)
{
    for (size_t i = 0; i < t->nbuckets; i++)
        for (hnode_t *n = t->buckets[i]; n; n = n->next)
            fn(n, arg);
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
    for (hnode_t *n = t->buckets[cursor & mask]; n; n = n->next)
        fn(n, arg);
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

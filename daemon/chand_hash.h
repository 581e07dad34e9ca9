/*
 * chand_hash.h - an intrusive chained hash table, and SipHash for keys that
 * come from the network.
 *
 * Nodes live inside the objects they index (a channel, a pending request, a
 * delivery), so inserting allocates nothing but the bucket array, and removal
 * is O(1) given the node.  Keys are hashed with a per-process random SipHash
 * key so a client cannot choose names that collide.
 */
#ifndef CHAND_HASH_H
#define CHAND_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hnode {
    struct hnode *next;
    uint64_t hash;
} hnode_t;

typedef struct htable {
    hnode_t **buckets;
    size_t nbuckets;   /* a power of two, or 0 before the first insert */
    size_t count;
} htable_t;

/* Equality test between a node and the key being looked up. */
typedef bool (*hnode_eq_fn)(const hnode_t *node, const void *key);

void htable_init(htable_t *t);
void htable_free(htable_t *t);   /* the bucket array only */

/* Insert node (whose hash the caller set). */
void htable_insert(htable_t *t, hnode_t *node);
hnode_t *htable_find(const htable_t *t, uint64_t hash, hnode_eq_fn eq, const void *key);
void htable_remove(htable_t *t, hnode_t *node);

/* Iterate: call fn on every node; fn must not insert or remove. */
void htable_each(const htable_t *t, void (*fn)(hnode_t *node, void *arg), void *arg);

/* Hash functions.  chand_hash_seed() sets the SipHash key (once, at start). */
void chand_hash_seed(const uint8_t key[16]);
uint64_t chand_hash_bytes(const void *data, size_t len);
uint64_t chand_hash_u64(uint64_t v);

#endif /* CHAND_HASH_H */

/*
 * chand_hash.h - an intrusive chained hash table, and SipHash for keys that
 * come from the network.
 *
 * Nodes live inside the objects they index (a channel, a pending request, a
 * delivery), so inserting allocates nothing but the bucket array, and removal
 * is O(1) given the node.  Keys are hashed with a per-process random SipHash
 * key so a client cannot choose names that collide.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
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
    hnode_t **old;     /* while doubling: the previous buckets, emptied into
                          the new ones a few at a time; else NULL */
    size_t nold;
    size_t moved;      /* old buckets [0, moved) are empty */
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

/* htable_scan - iterate a bucket at a time, with the table changing between
 * calls.  Call fn on every node of the bucket cursor names (fn must not
 * insert or remove) and return the cursor of the next bucket: 0 when the
 * scan is over.  Start at 0.  The cursor counts bucket indexes in
 * bit-reversed order, so when the table doubles between two calls the
 * buckets already visited are exactly the ones whose nodes went to buckets
 * the cursor has passed: a node present from the first call to the last
 * is visited once, never twice, however the table grows (it never
 * shrinks), and also while it is doubling (a step then covers a bucket of
 * the old table and every new bucket its nodes can move to).  Any cursor
 * value is safe; an unknown one just starts somewhere in the middle. */
uint64_t htable_scan(const htable_t *t, uint64_t cursor, void (*fn)(hnode_t *node, void *arg),
                     void *arg);

/* Hash functions.  chand_hash_seed() sets the SipHash key (once, at start). */
void chand_hash_seed(const uint8_t key[16]);
uint64_t chand_hash_bytes(const void *data, size_t len);
uint64_t chand_hash_u64(uint64_t v);

#endif /* CHAND_HASH_H */

/*
 * chand_idwin.h - an index of objects by ids that only grow, such as a
 * session's deliveries (numbered 1, 2, 3, ... as they are made).
 *
 * The live ids of such a set mostly sit in a short window behind the newest
 * one, so they are kept in a ring of slots indexed by id: finding, adding
 * and removing are one array access, with no hashing and no chain to walk.
 * An id that stays live while many newer ones come and go would stretch the
 * window without bound; once the window is more than twice as wide as what
 * it holds, its oldest ids move to a hash table (each at most once), so the
 * ring's size stays proportional to the live ids, whatever the pattern.
 *
 * Objects embed an hnode_t (chand_hash.h), used only while they are in the
 * hash table.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_IDWIN_H
#define CHAND_IDWIN_H

#include <stddef.h>
#include <stdint.h>

#include "chand_hash.h"

typedef struct idwin {
    hnode_t **slot;    /* cap slots; id i lives at slot[i & (cap - 1)] */
    size_t cap;        /* a power of two, or 0 before the first add */
    uint64_t base;     /* ids in [base, end) are in the ring or gone; */
    uint64_t end;      /* ids below base are in old or gone */
    size_t live;       /* ids in the ring */
    htable_t old;      /* the stragglers, hashed by chand_hash_u64(id) */
} idwin_t;

void idwin_init(idwin_t *w);
void idwin_free(idwin_t *w);   /* the index only, not the objects */

/* idwin_add - index n under id, which must be above every id added
 * before. */
void idwin_add(idwin_t *w, uint64_t id, hnode_t *n);

/* idwin_find - the object indexed under id, or NULL.  eq(node, &id) tells
 * whether a node of the hash table is id's. */
hnode_t *idwin_find(const idwin_t *w, uint64_t id, hnode_eq_fn eq);

/* idwin_remove - forget n, indexed under id. */
void idwin_remove(idwin_t *w, uint64_t id, hnode_t *n);

static inline size_t idwin_count(const idwin_t *w)
{
    return w->live + w->old.count;
}

#endif /* CHAND_IDWIN_H */

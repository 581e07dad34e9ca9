/*
 * chand_idwin.c - an index of objects by ids that only grow: a ring over
 * the window of live ids, stragglers in a hash table (see chand_idwin.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdlib.h>

#include "chand_alloc.h"
#include "chand_idwin.h"

#define FIRST_CAP 16

void idwin_init(idwin_t *w)
{
    w->slot = NULL;
    w->cap = 0;
    w->base = w->end = 0;
    w->live = 0;
    htable_init(&w->old);
}

void idwin_free(idwin_t *w)
{
    free(w->slot);
    w->slot = NULL;
    w->cap = 0;
    htable_free(&w->old);
}

/* Twice the slots, each live id moved to its place in them. */
static void grow(idwin_t *w)
{
    size_t cap = w->cap * 2;
    hnode_t **slot = xcalloc(cap, sizeof *slot);
    for (uint64_t i = w->base; i < w->end; i++)
        slot[i & (cap - 1)] = w->slot[i & (w->cap - 1)];
    free(w->slot);
    w->slot = slot;
    w->cap = cap;
}

/* Move the ids below `to` to the hash table, so that the window starts
 * there. */
static void evict_below(idwin_t *w, uint64_t to)
{
    uint64_t stop = to < w->end ? to : w->end;
    for (uint64_t i = w->base; i < stop; i++) {
        hnode_t **s = &w->slot[i & (w->cap - 1)];
        if (!*s)
            continue;
        (*s)->hash = chand_hash_u64(i);
        htable_insert(&w->old, *s);
        *s = NULL;
        w->live--;
    }
    w->base = to;
    if (w->end < to)
        w->end = to;
}

void idwin_add(idwin_t *w, uint64_t id, hnode_t *n)
{
    if (!w->live)
        w->base = w->end = id;   /* every slot is empty: start the window here */
    if (!w->cap)
        w->slot = xcalloc(w->cap = FIRST_CAP, sizeof *w->slot);
    while (id - w->base >= w->cap) {
        if (w->live * 2 >= w->cap && id - w->base < 2 * (uint64_t)w->cap)
            grow(w);   /* dense enough: the window gets wider */
        else
            evict_below(w, id + 1 - w->cap / 2);   /* sparse: the oldest move out */
    }
    w->slot[id & (w->cap - 1)] = n;
    w->live++;
    w->end = id + 1;
}

hnode_t *idwin_find(const idwin_t *w, uint64_t id, hnode_eq_fn eq)
{
    if (id >= w->base && id < w->end)
        return w->slot[id & (w->cap - 1)];
    if (id < w->base && w->old.count)
        return htable_find(&w->old, chand_hash_u64(id), eq, &id);
    return NULL;
}

void idwin_remove(idwin_t *w, uint64_t id, hnode_t *n)
{
    if (id < w->base) {
        htable_remove(&w->old, n);
        return;
    }
    w->slot[id & (w->cap - 1)] = NULL;
    w->live--;
    while (w->base < w->end && !w->slot[w->base & (w->cap - 1)])
        w->base++;
}

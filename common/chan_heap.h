/*
 * chan_heap.h - the binary min-heap behind every deadline: a worker's parked
 * goroutines (client/runtime/chan_sched.c), the timer thread's timers
 * (client/runtime/chan_timer.c) and chand's blocked requests
 * (daemon/chand_core.c).
 *
 * Intrusive: the caller's struct holds a struct chan_heap_node, whose key
 * orders the heap (smallest on top) and whose idx is its place in the array,
 * so that taking any node out is O(log n) with no search.  The heap holds
 * pointers to nodes and nothing else; it does no locking (each user has its
 * own rule: an owner thread, a mutex, chand's one thread).  Equal keys come
 * out in no promised order.
 *
 * Header-only (static inline): libchan and chand share no library but
 * proto's, and the scheduler's park and wake paths want it inlined.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_HEAP_H
#define CHAN_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define CHAN_HEAP_NONE SIZE_MAX

struct chan_heap_node {
    int64_t key;        /* set before chan_heap_push; not changed while in */
    size_t idx;         /* place in the heap, CHAN_HEAP_NONE when in none */
};

struct chan_heap {
    struct chan_heap_node **v;
    size_t len, cap;
};

#define CHAN_HEAP_INIT { NULL, 0, 0 }

/* chan_heap_entry - the struct of type `type` whose member `member` is node. */
#define chan_heap_entry(node, type, member) \
    ((type *)((char *)(node) - offsetof(type, member)))

/* chan_heap_node_init - mark n as in no heap (chan_heap_linked false). */
static inline void chan_heap_node_init(struct chan_heap_node *n)
{
    n->idx = CHAN_HEAP_NONE;
}

/* chan_heap_linked - whether n is in a heap. */
static inline bool chan_heap_linked(const struct chan_heap_node *n)
{
    return n->idx != CHAN_HEAP_NONE;
}

/* chan_heap_top - the node with the smallest key, NULL if h is empty. */
static inline struct chan_heap_node *chan_heap_top(const struct chan_heap *h)
{
    return h->len ? h->v[0] : NULL;
}

static inline void chan_heap_place_(struct chan_heap *h, size_t i, struct chan_heap_node *n)
{
    h->v[i] = n;
    n->idx = i;
}

/* Move h->v[i] towards the top while its parent's key is larger. */
static inline void chan_heap_up_(struct chan_heap *h, size_t i)
{
    struct chan_heap_node *n = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p]->key <= n->key)
            break;
        chan_heap_place_(h, i, h->v[p]);
        i = p;
    }
    chan_heap_place_(h, i, n);
}

/* Move h->v[i] towards the leaves while a child's key is smaller (the
 * smaller child's; the left one of two equal). */
static inline void chan_heap_down_(struct chan_heap *h, size_t i)
{
    struct chan_heap_node *n = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->len)
            break;
        if (c + 1 < h->len && h->v[c + 1]->key < h->v[c]->key)
            c++;
        if (n->key <= h->v[c]->key)
            break;
        chan_heap_place_(h, i, h->v[c]);
        i = c;
    }
    chan_heap_place_(h, i, n);
}

/* chan_heap_push - put n (in no heap, its key set) into h.  0, or -1 with
 * errno ENOMEM when the array cannot grow: then h and n are unchanged. */
static inline int chan_heap_push(struct chan_heap *h, struct chan_heap_node *n)
{
    if (h->len == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        struct chan_heap_node **v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    chan_heap_place_(h, h->len++, n);
    chan_heap_up_(h, n->idx);
    return 0;
}

/* chan_heap_remove - take n out of h, wherever it is; nothing if n is in no
 * heap.  The last node fills its place and moves up or down from there. */
static inline void chan_heap_remove(struct chan_heap *h, struct chan_heap_node *n)
{
    size_t i = n->idx;
    if (i == CHAN_HEAP_NONE)
        return;
    n->idx = CHAN_HEAP_NONE;
    struct chan_heap_node *last = h->v[--h->len];
    if (i == h->len)
        return;
    chan_heap_place_(h, i, last);
    chan_heap_up_(h, i);
    chan_heap_down_(h, last->idx);
}

/* chan_heap_pop - take the top node out of h and return it; NULL if empty. */
static inline struct chan_heap_node *chan_heap_pop(struct chan_heap *h)
{
    struct chan_heap_node *n = chan_heap_top(h);
    if (n)
        chan_heap_remove(h, n);
    return n;
}

/* chan_heap_free - free h's array; its nodes are the caller's.  h is left
 * empty and usable. */
static inline void chan_heap_free(struct chan_heap *h)
{
    free(h->v);
    h->v = NULL;
    h->len = h->cap = 0;
}

/* chan_heap_valid - whether every node knows its place and no parent's key
 * is larger than its child's (for audits and tests; O(n)). */
static inline bool chan_heap_valid(const struct chan_heap *h)
{
    for (size_t i = 0; i < h->len; i++)
        if (h->v[i]->idx != i || (i > 0 && h->v[(i - 1) / 2]->key > h->v[i]->key))
            return false;
    return true;
}

#endif /* CHAN_HEAP_H */

/*
 * chand_list.h - intrusive circular doubly linked lists and a deque of
 * value pointers: the two containers of the channel core.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_LIST_H
#define CHAND_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "chand_alloc.h"

typedef struct qlink {
    struct qlink *prev, *next;
} qlink_t;

static inline void qlist_init(qlink_t *head) { head->prev = head->next = head; }
static inline bool qlist_empty(const qlink_t *head) { return head->next == head; }

static inline void qlist_insert_after(qlink_t *pos, qlink_t *l)
{
    l->prev = pos;
    l->next = pos->next;
    pos->next->prev = l;
    pos->next = l;
}

static inline void qlist_push_back(qlink_t *head, qlink_t *l) { qlist_insert_after(head->prev, l); }
static inline void qlist_push_front(qlink_t *head, qlink_t *l) { qlist_insert_after(head, l); }

static inline void qlist_remove(qlink_t *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

#define QLIST_ENTRY(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* A growable ring of pointers: push and pop at both ends in O(1).  Its
 * capacity is a power of two, so a place in the ring is a mask away (no
 * division per push or pop).  It grows with xgrow, which moves a large
 * ring's pages (mremap) instead of copying them, and then moves only the
 * part that had wrapped around. */
typedef struct pdeque {
    void **buf;
    size_t cap, head, len;
} pdeque_t;

static inline void pdeque_init(pdeque_t *d) { d->buf = NULL; d->cap = d->head = d->len = 0; }

static inline void pdeque_reserve(pdeque_t *d, size_t want)
{
    if (want <= d->cap)
        return;
    size_t ncap = d->cap ? d->cap : 4;
    while (ncap < want)
        ncap *= 2;
    size_t ocap = d->cap;
    d->buf = xgrow(d->buf, ocap * sizeof *d->buf, ncap * sizeof *d->buf);
    d->cap = ncap;
    if (d->head + d->len > ocap) {
        /* the wrapped part, [0, head + len - ocap), now goes after the old end */
        size_t wrapped = d->head + d->len - ocap;
        memcpy(d->buf + ocap, d->buf, wrapped * sizeof *d->buf);
    }
}

static inline void *pdeque_front(const pdeque_t *d) { return d->len ? d->buf[d->head] : NULL; }
/* The i-th pointer from the front (i < len). */
static inline void *pdeque_at(const pdeque_t *d, size_t i) { return d->buf[(d->head + i) & (d->cap - 1)]; }

static inline void *pdeque_pop_front(pdeque_t *d)
{
    if (!d->len)
        return NULL;
    void *p = d->buf[d->head];
    d->head = (d->head + 1) & (d->cap - 1);
    d->len--;
    return p;
}

static inline void pdeque_push_back(pdeque_t *d, void *p)
{
    pdeque_reserve(d, d->len + 1);
    d->buf[(d->head + d->len) & (d->cap - 1)] = p;
    d->len++;
}

static inline void pdeque_push_front(pdeque_t *d, void *p)
{
    pdeque_reserve(d, d->len + 1);
    d->head = (d->head + d->cap - 1) & (d->cap - 1);
    d->buf[d->head] = p;
    d->len++;
}

/* Free the ring (not what its pointers point to). */
static inline void pdeque_free(pdeque_t *d)
{
    xgrow_free(d->buf, d->cap * sizeof *d->buf);
    pdeque_init(d);
}

#endif /* CHAND_LIST_H */

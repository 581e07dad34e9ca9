/*
 * chan_idmap.h - a map from request ids (non-zero uint64) to pointers:
 * open addressing with linear probing and backward-shift deletion, so there
 * are no tombstones and lookups stay short however many requests come and go.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_IDMAP_H
#define CHAN_IDMAP_H

#include <stdint.h>
#include <stdlib.h>

typedef struct chan_idmap {
    uint64_t *keys;     /* 0: empty slot */
    void **vals;
    size_t cap;         /* a power of two */
    size_t count;
} chan_idmap_t;

static inline size_t idmap_slot(uint64_t k, size_t cap)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k & (cap - 1);
}

static inline void idmap_free(chan_idmap_t *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->count = 0;
}

static inline int idmap_put(chan_idmap_t *m, uint64_t k, void *v);

static inline int idmap_grow(chan_idmap_t *m)
{
    chan_idmap_t n = { NULL, NULL, m->cap ? m->cap * 2 : 64, 0 };
    n.keys = calloc(n.cap, sizeof *n.keys);
    n.vals = calloc(n.cap, sizeof *n.vals);
    if (!n.keys || !n.vals) {
        idmap_free(&n);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            idmap_put(&n, m->keys[i], m->vals[i]);
    idmap_free(m);
    *m = n;
    return 0;
}

/* Insert or replace.  0, or -1 when out of memory. */
static inline int idmap_put(chan_idmap_t *m, uint64_t k, void *v)
{
    if ((m->count + 1) * 2 > m->cap && idmap_grow(m) < 0)
        return -1;
    size_t i = idmap_slot(k, m->cap);
    while (m->keys[i] && m->keys[i] != k)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->count++;
    m->keys[i] = k;
    m->vals[i] = v;
    return 0;
}

static inline void *idmap_get(const chan_idmap_t *m, uint64_t k)
{
    if (!m->cap)
        return NULL;
    for (size_t i = idmap_slot(k, m->cap); m->keys[i]; i = (i + 1) & (m->cap - 1))
        if (m->keys[i] == k)
            return m->vals[i];
    return NULL;
}

/* Remove k; returns its value, or NULL if absent. */
static inline void *idmap_del(chan_idmap_t *m, uint64_t k)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1, i = idmap_slot(k, m->cap);
    while (m->keys[i] && m->keys[i] != k)
        i = (i + 1) & mask;
    if (!m->keys[i])
        return NULL;
    void *v = m->vals[i];
    /* shift later members of the probe run back into the hole */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->keys[j])
            break;
        size_t home = idmap_slot(m->keys[j], m->cap);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = 0;
    m->vals[i] = NULL;
    m->count--;
    return v;
}

#endif /* CHAN_IDMAP_H */

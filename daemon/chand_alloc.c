/*
 * chand_alloc.c - allocation that aborts when memory runs out (see
 * chand_alloc.h for why), and free lists of small blocks.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "chand_alloc.h"

void xoom(size_t size)
{
    char msg[96];
    int n = snprintf(msg, sizeof msg, "chand: out of memory allocating %zu bytes\n", size);
    if (n > 0)
        (void)!write(2, msg, (size_t)n);
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        xoom(size);
    return p;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        xoom(n * size);
    return p;
}

void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        xoom(size);
    return q;
}

/* ---- small blocks ---- */

#define XSMALL_STEP 16
#define XSMALL_CLASSES (XSMALL_MAX / XSMALL_STEP)
/* Blocks kept per class, at most.  Sanitizer builds keep none: exact
 * sizes, and every free a real one, so that misuse is still caught. */
#ifdef CHAN_SANITIZERS
static const size_t xsmall_keep = 0;
#else
static const size_t xsmall_keep = 4096;
#endif

struct xsmall_block {
    struct xsmall_block *next;
};

static struct {
    struct xsmall_block *head;
    size_t n;
} xsmall[XSMALL_CLASSES];

/* The class of a size in 1..XSMALL_MAX: its blocks are (class + 1) * XSMALL_STEP bytes. */
static size_t xsmall_class(size_t size)
{
    return (size + XSMALL_STEP - 1) / XSMALL_STEP - 1;
}

void *xsmall_alloc(size_t size)
{
    if (size == 0)
        size = 1;
    if (size > XSMALL_MAX)
        return xmalloc(size);
    size_t c = xsmall_class(size);
    struct xsmall_block *b = xsmall[c].head;
    if (b) {
        xsmall[c].head = b->next;
        xsmall[c].n--;
        return b;
    }
    return xmalloc(xsmall_keep ? (c + 1) * XSMALL_STEP : size);
}

void xsmall_free(void *p, size_t size)
{
    if (!p)
        return;
    if (size == 0)
        size = 1;
    if (size <= XSMALL_MAX) {
        size_t c = xsmall_class(size);
        if (xsmall[c].n < xsmall_keep) {
            struct xsmall_block *b = p;
            b->next = xsmall[c].head;
            xsmall[c].head = b;
            xsmall[c].n++;
            return;
        }
    }
    free(p);
}

/* ---- bulk blocks ---- */

#define XBULK_RUN ((size_t)2 << 20)
#define XBULK_MAX (XBULK_RUN / 64)

struct xbulk_run {
    size_t used;     /* bytes carved, this header included */
    size_t live;     /* blocks not yet freed */
    bool open;       /* still being carved: not freed at live 0 */
};

#define XBULK_HDR ((sizeof(struct xbulk_run) + 15) & ~(size_t)15)

void *xbulk_alloc(xbulk_t *b, size_t size)
{
#ifdef CHAN_SANITIZERS
    (void)b;
    (void)size;
    return NULL;
#else
    size = (size + 15) & ~(size_t)15;
    if (size == 0 || size > XBULK_MAX)
        return NULL;
    struct xbulk_run *r = b->cur;
    if (!r || r->used + size > XBULK_RUN) {
        xbulk_done(b);
        void *m = NULL;
        if (posix_memalign(&m, XBULK_RUN, XBULK_RUN) != 0)
            xoom(XBULK_RUN);
        madvise(m, XBULK_RUN, MADV_HUGEPAGE);   /* a hint: fewer page faults */
        r = m;
        r->used = XBULK_HDR;
        r->live = 0;
        r->open = true;
        b->cur = r;
    }
    void *p = (char *)r + r->used;
    r->used += size;
    r->live++;
    return p;
#endif
}

void xbulk_done(xbulk_t *b)
{
    struct xbulk_run *r = b->cur;
    b->cur = NULL;
    if (!r)
        return;
    r->open = false;
    if (!r->live)
        free(r);
}

void xbulk_free(void *p)
{
    struct xbulk_run *r = (struct xbulk_run *)((uintptr_t)p & ~(uintptr_t)(XBULK_RUN - 1));
    if (--r->live == 0 && !r->open)
        free(r);
}

/* ---- arrays that grow ---- */

void *xgrow(void *p, size_t old_size, size_t new_size)
{
    if (new_size < XGROW_MAP)
        return xrealloc(p, new_size);
    void *q;
    if (old_size >= XGROW_MAP) {
        q = mremap(p, old_size, new_size, MREMAP_MAYMOVE);
    } else {
        q = mmap(NULL, new_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (q != MAP_FAILED && old_size) {
            memcpy(q, p, old_size);
        }
        if (q != MAP_FAILED)
            free(p);
    }
    if (q == MAP_FAILED)
        xoom(new_size);
    return q;
}

void xgrow_free(void *p, size_t size)
{
    if (size >= XGROW_MAP)
        munmap(p, size);
    else
        free(p);
}

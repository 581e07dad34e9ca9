/*
 * chand_alloc.c - allocation that aborts when memory runs out (see
 * chand_alloc.h for why), and free lists of small blocks.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "chand_alloc.h"

static void oom(size_t size)
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
        oom(size);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        oom(size);
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

/*
 * chand_alloc.c - allocation that aborts when memory runs out (see
 * chand_alloc.h for why).
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

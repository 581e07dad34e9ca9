/*
 * chand_alloc.h - allocation that never returns NULL.
 *
 * Like Redis's zmalloc, chand treats running out of memory as fatal: a
 * daemon that half-applies a state change (a value taken from one queue
 * but not put on the next) would lose values, which is worse than exiting.
 * Memory that a client can make us use is bounded by the limits instead
 * (frame size, pending requests, channels).
 */
#ifndef CHAND_ALLOC_H
#define CHAND_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);

#endif /* CHAND_ALLOC_H */

/*
 * chand_alloc.h - allocation that never returns NULL.
 *
 * Like Redis's zmalloc, chand treats running out of memory as fatal: a
 * daemon that half-applies a state change (a value taken from one queue
 * but not put on the next) would lose values, which is worse than exiting.
 * Memory that a client can make us use is bounded by the limits instead
 * (frame size, pending requests, channels).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_ALLOC_H
#define CHAND_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
/* xoom - say that size bytes could not be had, and abort: for allocations
 * made elsewhere (chan_heap_push) that failed. */
void xoom(size_t size) __attribute__((noreturn));

/* Small blocks, for the values and deliveries the channel core makes and
 * frees by the hundred per request.  Each size class (16-byte steps up to
 * XSMALL_MAX bytes) keeps a free list of up to a few thousand blocks, so a
 * busy channel reuses its blocks instead of going through malloc, whose
 * fast bins glibc consolidates at every large allocation (libevent's
 * buffers make one per request).  A block is an ordinary malloc() block
 * of its class's size, so free() on it is fine too; larger sizes are plain
 * xmalloc().  Sanitizer builds skip the lists, so that a use after free is
 * still caught.  One thread only (chand has one). */
#define XSMALL_MAX 256
void *xsmall_alloc(size_t size);
/* size: the size it was allocated with. */
void xsmall_free(void *p, size_t size);

/* Arrays that grow by doubling (a channel's ring of values): from
 * XGROW_MAP bytes up they are pages mapped for them alone, grown with
 * mremap, which moves pages instead of copying them.  (Left to malloc, a
 * ring of a million pointers doubling in a heap that large chunks had
 * fragmented meant 16 MiB of memcpy and page faults in one request: 10 ms
 * of a stalled loop.)  Sizes past XGROW_MAP are multiples of the page size
 * (powers of two).  xgrow(NULL, 0, n) allocates; the caller remembers the
 * size, for xgrow and xgrow_free. */
#define XGROW_MAP ((size_t)1 << 20)
void *xgrow(void *p, size_t old_size, size_t new_size);
void xgrow_free(void *p, size_t size);

/* Bulk blocks, for a million small allocations made at once and freed one
 * by one over time (the values loaded from a data dir at start): carved in
 * order from 2 MiB runs (one huge page where the kernel gives them), each
 * run freed when the last of its blocks is.  Saves a malloc and several
 * page faults per block.  Sanitizer builds do not carve (xbulk_alloc gives
 * NULL: use xsmall_alloc), so that misuse is still caught.  One thread. */
typedef struct xbulk {
    struct xbulk_run *cur;   /* the run being carved, or NULL */
} xbulk_t;

/* xbulk_alloc - size bytes (16-byte aligned) from b's current run, or
 * NULL if size is too large to carve or carving is off: allocate it
 * another way then. */
void *xbulk_alloc(xbulk_t *b, size_t size);
/* xbulk_done - no more carving from b: its last run is freed as soon as
 * its blocks all are. */
void xbulk_done(xbulk_t *b);
/* xbulk_free - free a block xbulk_alloc gave. */
void xbulk_free(void *p);

#endif /* CHAND_ALLOC_H */

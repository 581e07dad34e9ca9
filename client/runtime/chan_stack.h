/*
 * chan_stack.h - goroutine stacks: mmap()ed, guarded, cached.
 *
 * Memory layout of one stack (addresses grow upwards):
 *
 *     base                lo                                    lo + size
 *     | guard page(s)     | usable stack, grows down  ...  | chan_stack_t |
 *     +-------------------+--------------------------------+--------------+
 *
 * The chan_stack_t header sits at the very top, in the same page as the
 * goroutine's first frames (the scheduler puts its chan_g right below it),
 * so starting a goroutine on a fresh stack touches one page.  The guard
 * below lo is PROT_NONE-like: a stack overflow faults there instead of
 * running into other memory.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_STACK_H
#define CHAN_STACK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct chan_stack {
    struct chan_stack *next;   /* link in a cache list */
    void *lo;                  /* lowest usable byte; the guard is below */
    size_t size;               /* usable bytes from lo, this header included */
    unsigned vg_id;            /* Valgrind's stack id (0 without Valgrind) */
    unsigned nbatch;           /* first of a batch in the shared cache: its length */
    struct chan_stack *batch;  /* ... and the next batch */
} chan_stack_t;

/* chani_stack_default_size - the default usable size: CHAN_STACK from the
 * environment (bytes, or with a k/m/g suffix), else 64 KiB; at least 16 KiB. */
size_t chani_stack_default_size(void);

/* chani_stack_batches - the calling thread lives as long as the process (a
 * worker): its cache takes stacks from the shared one a batch at a time. */
void chani_stack_batches(void);

/* chani_stack_get - a stack of at least size usable bytes (rounded up to
 * pages), from this thread's cache when it has one of that size.
 * NULL with ENOMEM. */
chan_stack_t *chani_stack_get(size_t size);

/* chani_stack_put - give a stack back (to the calling thread's cache, then
 * a shared one, then the kernel). */
void chani_stack_put(chan_stack_t *s);

/* chani_stack_guard_hit - true if addr lies in the guard area of s (or so
 * close below it that an overflow is the only sane reading). */
bool chani_stack_guard_hit(const chan_stack_t *s, const void *addr);

#endif /* CHAN_STACK_H */

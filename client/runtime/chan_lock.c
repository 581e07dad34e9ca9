/*
 * chan_lock.c - the contended path of chan_mutex (see chan_lock.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include "runtime/chan_lock.h"

#define SPIN 100

void chani_mutex_lock_slow(chan_mutex_t *m)
{
    /* The holder is most likely running on another core and about to let
     * go: a bounded spin saves two system calls. */
    for (int i = 0; i < SPIN; i++) {
        chani_cpu_relax();
        uint32_t expect = 0;
        if (atomic_load_explicit(&m->v, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&m->v, &expect, 1,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return;
    }
    /* Mark the lock "maybe waited on" and sleep until it is free; whoever
     * takes it this way keeps the 2, so its unlock wakes the next sleeper. */
    while (atomic_exchange_explicit(&m->v, 2, memory_order_acquire) != 0)
        chani_futex_wait(&m->v, 2, NULL);
}

void chani_mutex_unlock_cb(void *m)
{
    chani_mutex_unlock(m);
}

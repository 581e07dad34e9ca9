/*
 * chan_lock.h - the runtime's small mutex and futex helpers.
 *
 * Channel locks are held for a few dozen instructions, by goroutines and
 * plain threads alike, so the lock is one futex word (Drepper's "Futexes
 * Are Tricky", mutex 2): 0 free, 1 locked, 2 locked and someone may sleep.
 * Uncontended it costs one compare-and-swap to lock and one exchange to
 * unlock; contended, a short spin, then the kernel.  It has no owner, so a
 * goroutine may lock it and the next context on the same worker may unlock
 * it (that is how park releases a channel lock after switching away).
 *
 * Under ThreadSanitizer (CHAN_TSAN) the lock tells TSan it is a mutex.  TSan
 * sees the atomics anyway, and with them the order a lock gives; as a mutex
 * it also checks lock order across all of the runtime's locks and the
 * pthread ones (an inversion is a deadlock waiting for its schedule), and
 * unlocks of a lock not held.  For park's deferred unlock the scheduler runs
 * the unlock callback as the parked goroutine (chan_sched.c, run_after), so
 * TSan sees one owner lock and unlock.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_LOCK_H
#define CHAN_LOCK_H

#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef CHAN_TSAN
#include <sanitizer/tsan_interface.h>
#define CHAN_TSAN_MUTEX(call) call
#else
#define CHAN_TSAN_MUTEX(call) ((void)0)
#endif

static inline int chani_futex_wait(_Atomic uint32_t *word, uint32_t val,
                                   const struct timespec *rel)
{
    return (int)syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, rel, NULL, 0);
}

static inline void chani_futex_wake(_Atomic uint32_t *word, int n)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static inline void chani_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

typedef struct chan_mutex {
    _Atomic uint32_t v;
} chan_mutex_t;

#define CHAN_MUTEX_INIT { 0 }

void chani_mutex_lock_slow(chan_mutex_t *m);

static inline void chani_mutex_init(chan_mutex_t *m)
{
    atomic_init(&m->v, 0);
    CHAN_TSAN_MUTEX(__tsan_mutex_create(m, 0));
}

static inline void chani_mutex_lock(chan_mutex_t *m)
{
    uint32_t expect = 0;
    CHAN_TSAN_MUTEX(__tsan_mutex_pre_lock(m, 0));
    if (!__builtin_expect(atomic_compare_exchange_strong_explicit(
            &m->v, &expect, 1, memory_order_acquire, memory_order_relaxed), 1))
        chani_mutex_lock_slow(m);
    CHAN_TSAN_MUTEX(__tsan_mutex_post_lock(m, 0, 0));
}

static inline void chani_mutex_unlock(chan_mutex_t *m)
{
    CHAN_TSAN_MUTEX(__tsan_mutex_pre_unlock(m, 0));
    if (__builtin_expect(atomic_exchange_explicit(&m->v, 0, memory_order_release) == 2, 0))
        chani_futex_wake(&m->v, 1);
    CHAN_TSAN_MUTEX(__tsan_mutex_post_unlock(m, 0));
}

/* For park's unlock callback. */
void chani_mutex_unlock_cb(void *m);

#endif /* CHAN_LOCK_H */

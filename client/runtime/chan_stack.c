/*
 * chan_stack.c - allocating, guarding and caching goroutine stacks.
 *
 * Stacks come from mmap(MAP_NORESERVE): a 64 KiB stack costs only the pages
 * a goroutine touches, usually one.  The guard uses MADV_GUARD_INSTALL
 * where the kernel has it (Linux 6.13+), which marks the pages without
 * splitting the mapping, so a million goroutines stay far below
 * vm.max_map_count (65530 by default).  Older kernels get
 * mprotect(PROT_NONE), two VMAs per stack.
 *
 * Stacks of the default size are mapped a slab at a time (about 4 MiB),
 * their guards installed by one vectored process_madvise() where the
 * kernel allows it (6.13+), and handed out one by one: a program that
 * starts goroutines faster than they end pays two system calls per slab
 * instead of two per goroutine (an mmap alone costs about 1.5 us here,
 * as much as the first touch of the stack's page).
 *
 * A fresh page costs a fault (several microseconds on a VM), and an munmap
 * costs a TLB shootdown on every worker, so stacks of the default size are
 * cached: first in a per-thread list (no locking; a goroutine's stack is
 * freed on the worker it ran on and that worker's next chan_go reuses it,
 * still hot), then in a bounded list shared under a lock.  Stacks go
 * between a worker's list and the shared one a batch at a time, so that a
 * goroutine started on one worker and ended on another (a spawning loop
 * whose children are stolen) costs the lock once a batch, not twice a
 * goroutine.  Other sizes are unmapped on release.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif
#ifdef CHAN_SANITIZERS
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif

#include "chan_units.h"
#include "runtime/chan_lock.h"
#include "runtime/chan_stack.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef PIDFD_SELF
#define PIDFD_SELF -10000         /* process_madvise's "this process" */
#endif

#define GUARD_PAGES 1
#define THREAD_CACHE_MAX 256      /* stacks kept per thread */
#define BATCH 64                  /* stacks moved to or from the shared cache at once */
#define SLAB_BYTES (4u << 20)     /* one mapping of default-size stacks */
#define SLAB_MAX 256              /* most stacks in one slab */
/* Stacks kept for every thread.  Generous: a stack that is cached costs
 * only the pages it had touched (usually one), while an munmap costs a TLB
 * shootdown on every worker, several microseconds; a daisy chain of
 * 100,000 goroutines would spend a third of its time unmapping. */
#define SHARED_CACHE_MAX (1u << 20)

static size_t page_size;
static size_t default_size;
static pthread_once_t size_once = PTHREAD_ONCE_INIT;

static __thread chan_stack_t *thread_cache;
static __thread size_t thread_cached;
static __thread bool thread_batches;   /* chani_stack_batches was called */

/* The shared cache (a list of batches, each linked through next, the
 * batches through their first stack's batch) and the slab are read and
 * written under shared_lock. */
static chan_mutex_t shared_lock;
static chan_stack_t *shared_cache;
static size_t shared_cached;          /* stacks in all its batches */
static char *slab_next;           /* under shared_lock: the slab's next stack */
static size_t slab_left;          /* stacks left in it */

static _Atomic int guard_madvise_ok = 1;   /* cleared if the kernel says no */
static bool guard_vector_ok = true;        /* process_madvise: under shared_lock */

/* CHAN_STACK's size, or 0 (the default) if it is not one or over 4 GiB.
 * errno is left as it was: this runs inside whichever call came first. */
static size_t parse_size(const char *s)
{
    int saved = errno;
    uint64_t v;
    if (chan_parse_size(s, &v) < 0 || v > (UINT64_C(1) << 32))
        v = 0;
    errno = saved;
    return (size_t)v;
}

static size_t round_pages(size_t n)
{
    return (n + page_size - 1) & ~(page_size - 1);
}

static void size_init(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
#if defined(CHAN_SANITIZERS)
    size_t dflt = 256 * 1024;   /* ASan's redzones make frames several times larger */
#elif defined(CHAN_TSAN)
    /* TSan's frames are near normal, but its reports (and the symbolizer
     * they run) are printed on the goroutine's stack. */
    size_t dflt = 256 * 1024;
#else
    size_t dflt = 64 * 1024;
#endif
    size_t env = parse_size(getenv("CHAN_STACK"));
    default_size = round_pages(env >= 16 * 1024 ? env : dflt);
}

size_t chani_stack_default_size(void)
{
    pthread_once(&size_once, size_init);
    return default_size;
}

static void install_guard(char *base, size_t len)
{
    if (atomic_load_explicit(&guard_madvise_ok, memory_order_relaxed)) {
        if (madvise(base, len, MADV_GUARD_INSTALL) == 0)
            return;
        atomic_store_explicit(&guard_madvise_ok, 0, memory_order_relaxed);
    }
    mprotect(base, len, PROT_NONE);
}

/* A stack in the shared cache holds nothing live, and LeakSanitizer reads
 * every page of every root region at each exit check (at 10,000 cached
 * stacks of 256 KiB, gigabytes of page faults per exit): only stacks in use
 * or in a thread's small cache stay registered. */
static void lsan_root(chan_stack_t *s, bool on)
{
#ifdef CHAN_SANITIZERS
    if (on)
        __lsan_register_root_region(s->lo, s->size);
    else
        __lsan_unregister_root_region(s->lo, s->size);
#else
    (void)s;
    (void)on;
#endif
}

/* lsan_root for every stack of a list (without the sanitizers, not even
 * the walk). */
static void lsan_roots(chan_stack_t *list, bool on)
{
#ifdef CHAN_SANITIZERS
    for (chan_stack_t *c = list; c; c = c->next)
        lsan_root(c, on);
#else
    (void)list;
    (void)on;
#endif
}

/* The stack whose guard starts at base: its header written (the first
 * touch of its top page) and its region registered with Valgrind. */
static chan_stack_t *stack_init(char *base, size_t size)
{
    char *lo = base + GUARD_PAGES * page_size;
    chan_stack_t *s = (chan_stack_t *)(lo + size - sizeof(chan_stack_t));
    s->next = NULL;
    s->lo = lo;
    s->size = size;
    s->vg_id = 0;
#ifdef HAVE_VALGRIND_VALGRIND_H
    s->vg_id = VALGRIND_STACK_REGISTER(lo, lo + size);
#endif
    return s;
}

static chan_stack_t *stack_map(size_t size)
{
    size_t guard = GUARD_PAGES * page_size;
    char *base = mmap(NULL, guard + size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    install_guard(base, guard);
    chan_stack_t *s = stack_init(base, size);
    lsan_root(s, true);
    return s;
}

/* Map a slab of n stacks of `size` usable bytes and guard each: in one
 * call where process_madvise() takes MADV_GUARD_INSTALL for this process,
 * else one by one (install_guard).  Returns the first stack's base, or
 * NULL.  shared_lock held (it guards the vector, kept off the caller's
 * stack, which may be a small goroutine stack, and guard_vector_ok). */
static char *slab_map(size_t size, size_t n)
{
    size_t guard = GUARD_PAGES * page_size, step = guard + size;
    char *base = mmap(NULL, n * step, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    bool guarded = false;
#ifdef SYS_process_madvise
    if (guard_vector_ok && atomic_load_explicit(&guard_madvise_ok, memory_order_relaxed)) {
        static struct iovec iov[SLAB_MAX];
        for (size_t i = 0; i < n; i++)
            iov[i] = (struct iovec){ base + i * step, guard };
        long r = syscall(SYS_process_madvise, PIDFD_SELF, iov, n, MADV_GUARD_INSTALL, 0);
        guarded = r == (long)(n * guard);
        guard_vector_ok = r >= 0;   /* refused (old kernel, seccomp): not again */
    }
#endif
    /* (an install that stopped part way is repeated whole: installing a
     * guard twice is harmless) */
    for (size_t i = 0; !guarded && i < n; i++)
        install_guard(base + i * step, guard);
    return base;
}

/* The base of a default-size stack cut from the current slab, a new slab
 * mapped when it is used up; NULL if no slab can be mapped (the caller
 * maps the stack alone).  shared_lock held. */
static char *slab_take(size_t size)
{
    size_t step = GUARD_PAGES * page_size + size;
    if (!slab_left) {
        size_t n = SLAB_BYTES / step;
        n = n < 1 ? 1 : n > SLAB_MAX ? SLAB_MAX : n;
        char *base = slab_map(size, n);
        if (!base)
            return NULL;
        slab_next = base;
        slab_left = n;
    }
    char *base = slab_next;
    slab_next += step;
    slab_left--;
    return base;
}

static void stack_unmap(chan_stack_t *s)
{
    size_t guard = GUARD_PAGES * page_size;
    char *lo = s->lo;
    size_t size = s->size;
#ifdef HAVE_VALGRIND_VALGRIND_H
    VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
#ifdef CHAN_SANITIZERS
    ASAN_UNPOISON_MEMORY_REGION(lo, size);
    __lsan_unregister_root_region(lo, size);
#endif
    munmap(lo - guard, guard + size);
}

void chani_stack_batches(void)
{
    thread_batches = true;
}

/* Take one stack from the shared cache, or (batch) a whole batch, whose
 * first is returned and the rest become this thread's cache (empty before).
 * shared_lock held.  NULL if the shared cache is empty. */
static chan_stack_t *shared_take(bool batch)
{
    chan_stack_t *s = shared_cache;
    if (!s)
        return NULL;
    if (batch || s->nbatch == 1) {
        shared_cache = s->batch;
        shared_cached -= s->nbatch;
        if (batch) {
            thread_cache = s->next;
            thread_cached = s->nbatch - 1;
        }
    } else {
        chan_stack_t *rest = s->next;   /* the batch goes on without s */
        rest->nbatch = s->nbatch - 1;
        rest->batch = s->batch;
        shared_cache = rest;
        shared_cached--;
    }
    s->next = NULL;
    return s;
}

chan_stack_t *chani_stack_get(size_t size)
{
    size_t dflt = chani_stack_default_size();
    size = size ? round_pages(size) : dflt;
    if (size != dflt)
        return stack_map(size);
    chan_stack_t *s = thread_cache;
    if (s) {
        thread_cache = s->next;
        thread_cached--;
        return s;
    }
    char *base = NULL;
    int saved = errno;   /* a failed process_madvise is no failure of ours */
    chani_mutex_lock(&shared_lock);
    s = shared_take(thread_batches);
    if (!s)
        base = slab_take(size);
    chani_mutex_unlock(&shared_lock);
    errno = saved;
    if (!s && !base)
        return stack_map(size);   /* no room for a slab (ulimit -v): one alone */
    if (base)
        s = stack_init(base, size);   /* its page faults outside the lock */
    lsan_root(s, true);
    lsan_roots(thread_cache, true);   /* (empty unless a batch came) */
    return s;
}

/* This thread's cache is full: give the shared cache a batch of it, or
 * unmap the batch if the shared one is full too. */
static void give_batch(void)
{
    chan_stack_t *head = thread_cache, *tail = head;
    for (unsigned i = 1; i < BATCH; i++)
        tail = tail->next;
    thread_cache = tail->next;
    thread_cached -= BATCH;
    tail->next = NULL;
    lsan_roots(head, false);
    head->nbatch = BATCH;
    chani_mutex_lock(&shared_lock);
    if (shared_cached + BATCH <= SHARED_CACHE_MAX) {
        head->batch = shared_cache;
        shared_cache = head;
        shared_cached += BATCH;
        head = NULL;
    }
    chani_mutex_unlock(&shared_lock);
    while (head) {
        chan_stack_t *next = head->next;
        lsan_root(head, true);   /* stack_unmap unregisters it */
        stack_unmap(head);
        head = next;
    }
}

void chani_stack_put(chan_stack_t *s)
{
#ifdef CHAN_SANITIZERS
    /* The goroutine's last frames never returned: clear their redzones so
     * the next goroutine on this stack does not trip over them. */
    ASAN_UNPOISON_MEMORY_REGION(s->lo, s->size);
#endif
    if (s->size != default_size) {
        stack_unmap(s);
        return;
    }
    s->next = thread_cache;
    thread_cache = s;
    if (++thread_cached >= THREAD_CACHE_MAX)
        give_batch();
}

bool chani_stack_guard_hit(const chan_stack_t *s, const void *addr)
{
    uintptr_t a = (uintptr_t)addr, lo = (uintptr_t)s->lo;
    /* A frame larger than the guard page can fault below it (in another
     * mapping's guard); a fault within 64 KiB below lo is read as an
     * overflow of this stack. */
    return a < lo && a + 65536 >= lo;
}

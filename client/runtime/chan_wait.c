/*
 * chan_wait.c - parking and waking a waiter (see chan_wait.h).
 *
 * A thread parks on a futex (the waiter's `woken` word).  A goroutine parks
 * through the scheduler (chani_sched_park): it switches away, and the unlock
 * callback runs on the next context of its worker.  Its deadline goes into
 * the worker's timer heap, whose expiry self-claims the waiter.  Waking a
 * goroutine makes it ready on its own worker, from whatever thread the
 * winning source runs on.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <time.h>

#include "chan/chan.h"
#include "chan_clock.h"
#include "runtime/chan_lock.h"
#include "runtime/chan_sched.h"
#include "runtime/chan_wait.h"

void chani_waiter_init(chan_waiter_t *w)
{
    atomic_store_explicit(&w->claimed, 0, memory_order_relaxed);
    atomic_store_explicit(&w->woken, 0, memory_order_relaxed);
    w->index = CHAN_WAIT_TIMEOUT;
    w->err = 0;
    w->data = NULL;
    w->len = 0;
    w->g = chani_sched_self();
    w->far = false;
}

/* The waiter whose replies this thread reads itself, if any. */
static __thread chan_waiter_t *tls_reading;

void chani_waiter_reading(chan_waiter_t *w)
{
    tls_reading = w;
}

void chani_waiter_wake(chan_waiter_t *w)
{
    struct chan_g *g = w->g;
    if (!g && w == tls_reading) {
        /* Woken by its own thread, which is not asleep. */
        atomic_store_explicit(&w->woken, 1, memory_order_release);
        return;
    }
    atomic_store_explicit(&w->woken, 1, memory_order_release);
    if (g) {
        /* The goroutine cannot run (and end w's life) before this. */
        chani_sched_ready(g);
        return;
    }
    /* The thread may return as soon as it sees woken; futex_wake on the
     * address afterwards is harmless even if the memory is reused. */
    chani_futex_wake(&w->woken, INT_MAX);
}

/* Polls of `woken` before a thread goes to the kernel: a wake from a
 * thread running on another core usually arrives within a few
 * microseconds, and catching it here saves a futex sleep and wake. */
#define THREAD_SPIN 1000

/* How long a far waiter (a reply from chand) polls `woken` between
 * sched_yield()s before it sleeps.  A loopback round trip takes 20-30 us,
 * so most replies land within this and cost no futex sleep and wake; and
 * unlike a spin, a yield hands the core to whoever needs it (the client's
 * I/O thread, chand, the peer), which on a machine with few cores is what
 * the reply is waiting for. */
#define FAR_POLL_NS 50000

/* Poll `woken` before sleeping; true if the wake came meanwhile. */
static bool thread_poll(chan_waiter_t *w)
{
    if (!w->far) {
        for (int i = 0; i < THREAD_SPIN; i++) {
            if (atomic_load_explicit(&w->woken, memory_order_acquire))
                return true;
            chani_cpu_relax();
        }
        return false;
    }
    int64_t end = chan_mono_ns() + FAR_POLL_NS;
    do {
        if (atomic_load_explicit(&w->woken, memory_order_acquire))
            return true;
        sched_yield();
    } while (chan_mono_ns() < end);
    return false;
}

/* Sleep until woken or until the deadline; true if woken. */
static bool thread_sleep(chan_waiter_t *w, int64_t deadline)
{
    if (thread_poll(w))
        return true;
    for (;;) {
        if (atomic_load_explicit(&w->woken, memory_order_acquire))
            return true;
        if (deadline < 0) {
            chani_futex_wait(&w->woken, 0, NULL);
            continue;
        }
        int64_t left = deadline - chan_now();
        if (left <= 0)
            return false;
        struct timespec rel = { .tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000L };
        chani_futex_wait(&w->woken, 0, &rel);
    }
}

static int thread_park(chan_waiter_t *w, int64_t deadline,
                       void (*unlock)(void *arg), void *arg)
{
    if (unlock)
        unlock(arg);
    if (!thread_sleep(w, deadline)) {
        if (chani_waiter_claim(w)) {
            w->index = CHAN_WAIT_TIMEOUT;
            return CHAN_WAIT_TIMEOUT;
        }
        /* A source claimed w as the deadline passed: its wake is coming. */
        thread_sleep(w, -1);
    }
    return w->index;
}

static int goroutine_park(chan_waiter_t *w, int64_t deadline,
                          void (*unlock)(void *arg), void *arg)
{
    chan_deadline_t d;
    if (deadline >= 0) {
        d.node.key = deadline;
        d.w = w;
        chani_sched_deadline_add(&d);
    }
    chani_sched_park(unlock, arg);
    if (deadline >= 0)
        chani_sched_deadline_del(&d);
    /* Pairs with the waker's release store: the results are visible.  (A
     * deadline that fired leaves `woken` at 0, but its worker, which is
     * ours, wrote the result.)  An acquire load, not a fence: it costs the
     * same, and ThreadSanitizer, which does not model fences, sees it. */
    (void)atomic_load_explicit(&w->woken, memory_order_acquire);
    return w->index;
}

int chani_waiter_park(chan_waiter_t *w, int64_t deadline,
                      void (*unlock)(void *arg), void *arg)
{
    int saved = errno;
    int rc = w->g ? goroutine_park(w, deadline, unlock, arg)
                  : thread_park(w, deadline, unlock, arg);
    errno = saved;
    return rc;
}

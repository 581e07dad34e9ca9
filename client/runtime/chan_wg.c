/*
 * chan_wg.c - wait groups (Go's sync.WaitGroup).
 *
 * A count and a list of blocked waiters under one lock.  chan_wg_wait
 * parks like a channel receive (waiter on the list, unlock after the
 * switch); the add that brings the count to zero claims and wakes every
 * waiter after unlocking.  A waiter whose deadline fires takes itself off
 * the list if nobody has yet.
 *
 * An add that leaves the count above zero changes it with one
 * compare-and-swap and no lock (a goroutine's start and exit each make
 * one).  Only an add to zero takes the lock, so a waiter that found the
 * count above zero under the lock is queued before the count can reach
 * zero, and is woken by that add.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "chan/chan.h"
#include "chan_errmsg.h"
#include "runtime/chan_lock.h"
#include "runtime/chan_wait.h"

struct wg_waiter {
    struct wg_waiter *next, *prev;
    chan_waiter_t w;
    bool queued;
};

struct chan_wg {
    chan_mutex_t lock;
    _Atomic long count;         /* reaches zero only under the lock */
    struct wg_waiter *head;
};

chan_wg_t *chan_wg_make(void)
{
    chani_errmsg_clear();
    chan_wg_t *wg = calloc(1, sizeof *wg);
    if (!wg)
        errno = ENOMEM;
    return wg;
}

void chan_wg_free(chan_wg_t *wg)
{
    free(wg);
}

static void unlink_waiter(chan_wg_t *wg, struct wg_waiter *ww)
{
    if (ww->prev)
        ww->prev->next = ww->next;
    else
        wg->head = ww->next;
    if (ww->next)
        ww->next->prev = ww->prev;
    ww->queued = false;
}

/* Would adding n to c leave the range [0, LONG_MAX]? */
static bool out_of_range(long c, long n)
{
    return (n < 0 && c < -n) || (n > 0 && c > __LONG_MAX__ - n);
}

/* Add n to the count with a compare-and-swap, unless that is out of range
 * (-1) or (unless locked) would make it zero (0).  1: added.  Release and
 * acquire: what a goroutine did before its chan_wg_done is seen by whoever
 * sees the count it left. */
static int cas_add(chan_wg_t *wg, long n, bool locked, long *was)
{
    long c = atomic_load_explicit(&wg->count, memory_order_relaxed);
    for (;;) {
        if (out_of_range(c, n))
            return -1;
        if (!locked && c + n == 0)
            return 0;
        if (atomic_compare_exchange_weak_explicit(&wg->count, &c, c + n, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            *was = c;
            return 1;
        }
    }
}

int chan_wg_add(chan_wg_t *wg, long n)
{
    chani_errmsg_clear();
    if (!wg) {
        errno = EINVAL;
        return -1;
    }
    long was;
    int rc = cas_add(wg, n, false, &was);
    if (rc == 1)
        return 0;
    if (rc < 0) {
        errno = EINVAL;
        return -1;
    }
    /* to zero: under the lock, with the waiters' wake (another add may
     * have come first: then this one is a plain add after all) */
    chani_mutex_lock(&wg->lock);
    if (cas_add(wg, n, true, &was) < 0) {
        chani_mutex_unlock(&wg->lock);
        errno = EINVAL;
        return -1;
    }
    struct wg_waiter *wake = NULL;
    if (was + n == 0) {
        struct wg_waiter *ww;
        while ((ww = wg->head)) {
            unlink_waiter(wg, ww);
            if (chani_waiter_claim(&ww->w)) {
                ww->w.index = 0;
                ww->next = wake;
                wake = ww;
            }
        }
    }
    chani_mutex_unlock(&wg->lock);
    while (wake) {
        struct wg_waiter *next = wake->next;   /* before the owner returns */
        chani_waiter_wake(&wake->w);
        wake = next;
    }
    return 0;
}

int chan_wg_done(chan_wg_t *wg)
{
    return chan_wg_add(wg, -1);
}

int chan_wg_wait(chan_wg_t *wg, int64_t deadline)
{
    chani_errmsg_clear();
    if (!wg) {
        errno = EINVAL;
        return -1;
    }
    chani_mutex_lock(&wg->lock);
    if (atomic_load_explicit(&wg->count, memory_order_acquire) == 0) {
        chani_mutex_unlock(&wg->lock);
        return 0;
    }
    if (deadline == 0) {
        chani_mutex_unlock(&wg->lock);
        errno = ETIMEDOUT;
        return -1;
    }
    struct wg_waiter ww = { .next = wg->head, .queued = true };
    chani_waiter_init(&ww.w);
    if (wg->head)
        wg->head->prev = &ww;
    wg->head = &ww;
    if (chani_waiter_park(&ww.w, deadline, chani_mutex_unlock_cb, &wg->lock) == CHAN_WAIT_TIMEOUT) {
        chani_mutex_lock(&wg->lock);
        if (ww.queued)
            unlink_waiter(wg, &ww);
        chani_mutex_unlock(&wg->lock);
        errno = ETIMEDOUT;
        return -1;
    }
    return 0;
}

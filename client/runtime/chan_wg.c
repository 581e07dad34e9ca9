/*
 * chan_wg.c - wait groups (Go's sync.WaitGroup).
 *
 * A count and a list of blocked waiters under one lock.  chan_wg_wait
 * parks like a channel receive (waiter on the list, unlock after the
 * switch); the add that brings the count to zero claims and wakes every
 * waiter after unlocking.  A waiter whose deadline fires takes itself off
 * the list if nobody has yet.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
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
    long count;
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

int chan_wg_add(chan_wg_t *wg, long n)
{
    chani_errmsg_clear();
    if (!wg) {
        errno = EINVAL;
        return -1;
    }
    chani_mutex_lock(&wg->lock);
    if ((n < 0 && wg->count < -n) || (n > 0 && wg->count > __LONG_MAX__ - n)) {
        chani_mutex_unlock(&wg->lock);
        errno = EINVAL;
        return -1;
    }
    wg->count += n;
    struct wg_waiter *wake = NULL;
    if (wg->count == 0) {
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
    if (wg->count == 0) {
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

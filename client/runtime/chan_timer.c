/*
 * chan_timer.c - sleeping, and timers as channels (chan_after, chan_tick).
 *
 * chan_sleep parks on a waiter that no source will ever claim: only its
 * deadline fires it, so a goroutine sleeps without blocking its worker.
 *
 * Timer channels are ordinary local channels of capacity 1 with a
 * struct chan_timer attached.  One timer thread, started on first use,
 * keeps every armed timer in a heap under timers_lock and, when one is due,
 * sends chan_now() on its channel without blocking (deadline 0: a tick
 * that finds the buffer full is dropped, as in Go).
 *
 * The timer holds no reference on its channel: then the user's last
 * chan_release() reaches chani_local_free(), which calls chani_timer_detach()
 * to disarm the timer and free it.  The one race left is a firing already
 * in progress (the thread has popped the timer and is sending, without the
 * lock): `firing` marks it, and detach waits on `fired` until it is over,
 * so the channel is never freed under the sender's feet (Linux's
 * del_timer_sync).  The send never blocks, so that wait is short.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "chan_errmsg.h"
#include "chan_heap.h"
#include "runtime/chan_local.h"

struct chan_timer {
    struct chan_heap_node node; /* key: next firing, chan_now() ms; in
                                   `timers` while armed */
    int64_t period;             /* 0 for chan_after */
    bool firing;                /* the timer thread is sending right now */
    bool stopped;               /* chan_timer_stop() or detached */
    struct chan_local *c;
};

static pthread_mutex_t timers_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t timers_cond;     /* the heap's top changed */
static pthread_cond_t fired;           /* a firing has finished */
static struct chan_heap timers;       /* armed timers, by next firing */
static pthread_once_t thread_once = PTHREAD_ONCE_INIT;
static int thread_errno;

/* ------------------------------------------------------------------------
 * Sleeping */

int chan_sleep(int64_t deadline)
{
    if (deadline == 0)
        return 0;
    if (deadline > 0 && deadline <= chan_now()) {
        chan_yield();   /* a past deadline still lets others run */
        return 0;
    }
    chan_waiter_t w;
    chani_waiter_init(&w);
    chani_waiter_park(&w, deadline, NULL, NULL);
    return 0;
}

/* ------------------------------------------------------------------------
 * The timer thread */

static void fire(struct chan_timer *t)
{
    int64_t now = chan_now();
    struct chan_value v;
    chani_value_make(&v, &now, sizeof now);   /* inline: cannot fail */
    struct chan_sudog *wake = NULL;
    chani_mutex_lock(&t->c->lock);
    int rc = chani_local_try_send(t->c, &v, &wake);
    chani_mutex_unlock(&t->c->lock);
    chani_local_wake(wake);
    (void)rc;   /* full (a slow ticker's receiver) or closed: dropped */
}

static void *timer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&timers_lock);
    for (;;) {
        struct chan_heap_node *top = chan_heap_top(&timers);
        if (!top) {
            pthread_cond_wait(&timers_cond, &timers_lock);
            continue;
        }
        struct chan_timer *t = chan_heap_entry(top, struct chan_timer, node);
        int64_t now = chan_now();
        if (t->node.key > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t left = t->node.key - now;
            ts.tv_sec += left / 1000;
            ts.tv_nsec += (left % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&timers_cond, &timers_lock, &ts);
            continue;
        }
        chan_heap_remove(&timers, &t->node);
        t->firing = true;
        pthread_mutex_unlock(&timers_lock);
        fire(t);
        pthread_mutex_lock(&timers_lock);
        t->firing = false;
        if (t->period && !t->stopped) {
            /* Next tick on the period's grid, skipping those missed. */
            now = chan_now();
            t->node.key += t->period * (1 + (now - t->node.key) / t->period);
            if (chan_heap_push(&timers, &t->node) < 0)
                t->stopped = true;
        }
        pthread_cond_broadcast(&fired);
    }
    return NULL;
}

static void timer_thread_start(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&timers_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&fired, NULL);

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* no application signals */
    pthread_t th;
    int rc = pthread_create(&th, NULL, timer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        thread_errno = EAGAIN;
    else
        pthread_detach(th);
}

/* ------------------------------------------------------------------------
 * Timer channels */

static chan_t *timer_make(int64_t ms, int64_t period)
{
    pthread_once(&thread_once, timer_thread_start);
    if (thread_errno) {
        errno = thread_errno;
        return NULL;
    }
    chan_t *ch = chan_make(1);
    if (!ch)
        return NULL;
    struct chan_timer *t = calloc(1, sizeof *t);
    if (!t) {
        chan_release(ch);
        errno = ENOMEM;
        return NULL;
    }
    struct chan_local *c = chani_local_of(ch);
    t->c = c;
    chan_heap_node_init(&t->node);
    t->period = period;
    t->node.key = chan_now() + (ms > 0 ? ms : 0);
    c->timer = t;
    pthread_mutex_lock(&timers_lock);
    int rc = chan_heap_push(&timers, &t->node);
    if (rc == 0 && chan_heap_top(&timers) == &t->node)
        pthread_cond_signal(&timers_cond);
    pthread_mutex_unlock(&timers_lock);
    if (rc < 0) {
        chan_release(ch);   /* detaches the unarmed timer */
        errno = ENOMEM;
        return NULL;
    }
    return ch;
}

chan_t *chan_after(int64_t ms)
{
    chani_errmsg_clear();
    return timer_make(ms, 0);
}

chan_t *chan_tick(int64_t ms)
{
    chani_errmsg_clear();
    if (ms <= 0) {
        errno = EINVAL;
        return NULL;
    }
    return timer_make(ms, ms);
}

int chan_timer_stop(chan_t *ch)
{
    chani_errmsg_clear();
    if (!ch || ch->kind != CHAN_KIND_LOCAL || !chani_local_of(ch)->timer) {
        errno = EINVAL;
        return -1;
    }
    struct chan_timer *t = chani_local_of(ch)->timer;
    pthread_mutex_lock(&timers_lock);
    /* Armed: this stop prevents a firing.  A ticker being fired right now
     * would have been re-armed: stopping it prevents the next one. */
    int prevented = !t->stopped && (chan_heap_linked(&t->node) || (t->firing && t->period));
    chan_heap_remove(&timers, &t->node);
    t->stopped = true;
    pthread_mutex_unlock(&timers_lock);
    return prevented;
}

void chani_timer_detach(struct chan_timer *t)
{
    pthread_mutex_lock(&timers_lock);
    t->stopped = true;
    chan_heap_remove(&timers, &t->node);
    while (t->firing)
        pthread_cond_wait(&fired, &timers_lock);
    pthread_mutex_unlock(&timers_lock);
    free(t);
}

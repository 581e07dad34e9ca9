/*
 * chan_wait.h - the waiter: one blocked call of a goroutine or of a thread.
 *
 * Every blocking operation in libchan has the same shape (libdill's): make a
 * waiter, register it wherever an event may come from (the queues of local
 * channels, the pending-request table of a remote connection, a timer), park,
 * and be woken by whoever fires first.  Several sources may race to fire the
 * same waiter (the cases of a select, a deadline, a reply from chand), so the
 * first thing a source does is *claim* the waiter with one compare-and-swap;
 * exactly one claim succeeds (Go's selectDone).  The winner writes the result
 * into the waiter, then wakes it.  A loser leaves it alone and undoes whatever
 * it had prepared (a remote reply that loses is released back to chand).
 *
 * The waiter does not care whether it is a goroutine or a thread: parking a
 * goroutine switches to its worker's scheduler, parking a thread sleeps on a
 * futex.  Channels and the remote client use only this interface.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_WAIT_H
#define CHAN_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct chan_g;   /* a goroutine (chan_sched.h) */

/* Result index of a waiter whose deadline passed. */
#define CHAN_WAIT_TIMEOUT (-1)

typedef struct chan_waiter {
    _Atomic uint32_t claimed;   /* 0 until one source claims the waiter */
    _Atomic uint32_t woken;     /* futex word: 1 once the winner has woken it */
    int index;                  /* which source won (a case index), or
                                   CHAN_WAIT_TIMEOUT; written by the winner */
    int err;                    /* errno-style result, written by the winner */
    void *data;                 /* result payload, meaning set by the caller */
    size_t len;
    struct chan_g *g;           /* the parked goroutine, NULL for a thread */
    bool far;                   /* the wake is a network round trip away
                                   (a reply from chand); see thread_sleep */
} chan_waiter_t;

/* chani_waiter_init - prepare w for one wait by the calling goroutine or
 * thread.  A waiter is used once.  A caller whose wake comes from the
 * network sets w->far afterwards: a waiting thread then polls by giving its
 * core away instead of spinning on it (goroutines are not affected). */
void chani_waiter_init(chan_waiter_t *w);

/* chani_waiter_claim - try to become the one source that fires w.
 * True for exactly one caller over the waiter's life. */
static inline bool chani_waiter_claim(chan_waiter_t *w)
{
    uint32_t expect = 0;
    return atomic_compare_exchange_strong_explicit(&w->claimed, &expect, 1,
                                                   memory_order_acq_rel,
                                                   memory_order_acquire);
}

/* chani_waiter_wake - called once, by the source whose claim succeeded, after
 * it has written the result: make the waiter's owner run again.  Never call
 * it while holding a lock the owner may take when it resumes. */
void chani_waiter_wake(chan_waiter_t *w);

/* chani_waiter_reading - the calling thread reads the replies for w itself
 * (the remote client's leader, chan_reader.c): its own wake then only sets
 * `woken`, without the futex call a sleeping thread would need.  NULL when
 * it stops.  Plain threads only. */
void chani_waiter_reading(chan_waiter_t *w);

/* chani_waiter_park - block the calling goroutine or thread until a source has
 * claimed and woken w, or until the deadline.  unlock(arg), if not NULL, is
 * called once the caller is safely parked (for a goroutine: after its
 * registers are saved), never before: it releases the lock that guarded the
 * decision to sleep, so no source can wake a half-parked waiter.
 * At the deadline the waiter tries to claim itself; if that succeeds the
 * result is CHAN_WAIT_TIMEOUT, otherwise a source won the race and park
 * waits for its wake.  Returns w->index. */
int chani_waiter_park(chan_waiter_t *w, int64_t deadline,
                      void (*unlock)(void *arg), void *arg);

#endif /* CHAN_WAIT_H */

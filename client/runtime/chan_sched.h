/*
 * chan_sched.h - goroutines and the worker threads that run them (inside
 * libchan; the public part is in chan.h).
 *
 * A goroutine's memory is one stack (chan_stack.h).  Its chan_g sits right
 * below the stack's header, at the top, in the page its first frames use:
 *
 *     lo                                                        lo + size
 *     | ... frames grow down <- initial sp | chan_g | chan_stack_t |
 *
 * so starting a goroutine on a fresh stack touches one page and needs no
 * other allocation.  The scheduler is in chan_sched.c; parking and waking
 * are reached through the waiter (chan_wait.h), never directly by channels.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_SCHED_H
#define CHAN_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan_heap.h"
#include "runtime/chan_ctx.h"
#include "runtime/chan_stack.h"
#include "runtime/chan_wait.h"

struct chan_worker;

/* A context the worker can switch to: a goroutine or the scheduler loop
 * (which runs on the worker thread's own stack).  lo/size/fake are what
 * AddressSanitizer needs to follow the switch, tsan what ThreadSanitizer
 * needs: its own record of the context (its "fiber"), or TSan would take
 * all goroutines of a worker for one thread and miss every race between
 * them. */
struct chan_fiber {
    chan_ctx_t ctx;
    const void *lo;        /* lowest address of the stack */
    size_t size;           /* its size */
    void *fake;            /* ASan's fake stack while switched out */
#ifdef CHAN_TSAN
    void *tsan;            /* TSan's fiber for this context */
#endif
};

typedef struct chan_g {
    struct chan_fiber f;         /* first: saved context and stack bounds */
    struct chan_g *next;         /* link in exactly one queue at a time */
    struct chan_worker *w;       /* the worker it runs on, fixed at start */
    void (*fn)(void *);          /* what it runs */
    void *arg;
    chan_stack_t *stack;         /* its stack (the chan_g lives in it) */
    bool started;                /* has run: fixed to w, never stolen */
} chan_g;

/* A deadline of a parked goroutine, kept in its worker's timer heap.  It
 * lives on the goroutine's stack for the duration of the park. */
typedef struct chan_deadline {
    struct chan_heap_node node;  /* key: chan_now() at which it fires */
    chan_waiter_t *w;            /* claimed with CHAN_WAIT_TIMEOUT on expiry */
} chan_deadline_t;

/* chani_sched_self - the calling goroutine, or NULL on a plain thread. */
chan_g *chani_sched_self(void);

/* chani_sched_park - suspend the calling goroutine until chani_sched_ready().
 * unlock(arg), if set, runs on the next context this worker switches to,
 * after this goroutine's registers are saved.  Goroutines only. */
void chani_sched_park(void (*unlock)(void *), void *arg);

/* chani_sched_ready - make a parked goroutine runnable again, from any
 * thread.  Exactly once per park (the waiter's claim guarantees it).  It
 * may also come before the goroutine has finished parking: the goroutine
 * can only run on its own worker, which is busy parking it. */
void chani_sched_ready(chan_g *g);

/* chani_sched_can_poll - true if the calling goroutine's worker could wait on
 * a socket for it when it parks: a goroutine, whose worker holds no socket
 * yet and has nothing else to run.
 * chani_sched_set_poll - then hand the worker the socket (the remote client's,
 * whose reader role the caller has taken).  When the goroutine parks and
 * nothing else is ready, the worker sleeps in poll() on fd and its own
 * eventfd instead of its futex (after polling it for spin_ns()), calling
 * read(ctx) when it is readable.  Before the worker runs any goroutine it
 * calls read(ctx) once more and then done(ctx), which gives the role up.
 * Both run on the worker's own stack, never a goroutine's.
 * Replies for goroutines of this worker are readied with no cross-thread
 * wake-up. */
typedef struct chan_poll_ops {
    bool (*read)(void *ctx);     /* read without waiting; true if any came */
    void (*done)(void *ctx);     /* give the role up: called exactly once */
    int64_t (*spin_ns)(void);    /* how long to poll before sleeping */
} chan_poll_ops_t;
bool chani_sched_can_poll(void);
void chani_sched_set_poll(int fd, const chan_poll_ops_t *ops, void *ctx);

/* chani_sched_defer - run fn(arg) on the calling goroutine's worker the
 * next time it goes through its loop: before it waits for anything, and
 * at least every few switches (POLL_EVERY) while goroutines keep it busy.
 * The remote client puts a goroutine's request frames off until then, so
 * that the requests of every goroutine that runs meanwhile leave in one
 * write.  1: registered; 0: fn(arg) is registered on this worker already;
 * -1: not on a goroutine, or the worker's list is full (do it now).
 * fn runs on the worker's own stack, never a goroutine's. */
int chani_sched_defer(void (*fn)(void *), void *arg);

/* chani_sched_deadline_add/del - arm and disarm a deadline for the calling
 * goroutine's next park; del is a no-op if the deadline has fired. */
void chani_sched_deadline_add(chan_deadline_t *d);
void chani_sched_deadline_del(chan_deadline_t *d);

/* chani_rand - a fast per-thread pseudo-random number (wyrand). */
uint64_t chani_rand(void);

/* chani_rand_below - exactly uniform in [0, n) for 0 < n < 2^32 (Lemire's
 * multiply-shift with rejection of the few biased values). */
static inline uint32_t chani_rand_below(uint32_t n)
{
    uint64_t m = (chani_rand() & 0xffffffffu) * (uint64_t)n;
    if ((uint32_t)m < n) {
        uint32_t t = (uint32_t)-n % n;
        while ((uint32_t)m < t)
            m = (chani_rand() & 0xffffffffu) * (uint64_t)n;
    }
    return (uint32_t)(m >> 32);
}

#endif /* CHAN_SCHED_H */

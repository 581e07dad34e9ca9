/*
 * chan_local.h - the local channel's structure and the locked operations
 * that chan_local.c (single operations) and chan_select.c share.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_LOCAL_H
#define CHAN_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan_handle.h"
#include "runtime/chan_lock.h"
#include "runtime/chan_wait.h"

/* Values up to this many bytes live inside the ring slot or the sender's
 * record: a small value costs no malloc on its way through the channel. */
#define CHAN_INLINE 16

/* One value: inline bytes, or a malloc()ed buffer owned by the record. */
struct chan_value {
    size_t len;
    union {
        unsigned char bytes[CHAN_INLINE];
        void *ptr;              /* len > CHAN_INLINE; NULL once handed over */
    } u;
};

/* One blocked call on one channel's queue (Go's sudog).  It lives on the
 * blocked caller's stack; a select has one per case, all sharing a waiter.
 * Only code holding the channel's lock reads or changes it, until the
 * caller's waiter has been claimed: then the claimer owns it until it has
 * written the results and called chani_waiter_wake(). */
struct chan_sudog {
    struct chan_sudog *next, *prev;   /* queue links; `next` also links a
                                         wake list once dequeued */
    chan_waiter_t *w;
    int index;                  /* the case index, 0 for a plain call */
    bool queued;                /* on a queue (cleared when removed) */
    struct chan_value *val;       /* send: the value, owned by the sender */
    void *buf;                  /* recv: copy the value here ... */
    size_t size;                /*       ... if it fits, or */
    void **alloc;               /*       store a malloc()ed copy here */
};

struct chan_waitq {
    struct chan_sudog *head, *tail;
};

struct chan_timer;

/*
 * Invariants (under lock), as in Go's chan.go:
 *  - count <= cap; the values are ring[(head + i) % cap], oldest first.
 *  - If count > 0, recvq holds no live receiver; if count < cap, sendq holds
 *    no live sender.  (For cap 0 both can be non-empty only when one select
 *    waits on both ends of the same channel.)  "Live": a sudog whose waiter
 *    is still unclaimed.  Claimed ones (a select won elsewhere, a deadline)
 *    may linger until their owner or the next scan removes them.
 *  - Once closed, never reopened; recvq and sendq are empty from then on.
 */
struct chan_local {
    struct chan hdr;            /* first: refs, kind == CHAN_KIND_LOCAL */
    chan_mutex_t lock;
    bool closed;
    size_t cap;
    size_t count;
    size_t head;
    struct chan_value *ring;      /* cap slots (NULL for cap 0) */
    struct chan_waitq recvq;    /* blocked receivers, FIFO */
    struct chan_waitq sendq;    /* blocked senders, FIFO */
    struct chan_timer *timer;   /* set for chan_after()/chan_tick() */
    uint64_t version;           /* bumped (locked) by every change that can
                                   make a case on it ready: a value in, room
                                   made, a waiter queued, the close */
};

/* Stores to the words a select peeks at without the lock (count, closed,
 * the queues' heads: chan_select.c's looks_ready).  They are made under the
 * lock like every other change, but as relaxed atomics, so that the peek's
 * load races with nothing; on the machines we run on they cost what a
 * plain store does. */
#define CHANI_PEEK_SET(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)
#define CHANI_PEEK_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

static inline struct chan_local *chani_local_of(chan_t *ch)
{
    return (struct chan_local *)ch;
}

/* chani_value_make - copy len bytes into v.  -1 with ENOMEM. */
int chani_value_make(struct chan_value *v, const void *data, size_t len);
/* chani_value_free - free what v still owns. */
void chani_value_free(struct chan_value *v);

void chani_waitq_push(struct chan_waitq *q, struct chan_sudog *s);
void chani_waitq_remove(struct chan_waitq *q, struct chan_sudog *s);

/* chani_local_try_send - with c locked, send *v without blocking.
 * Returns 1 if sent (to a waiting receiver or into the buffer), 0 if it
 * would block, -EPIPE if closed, -ENOMEM.  Receivers whose waiters were
 * claimed (the one served, and any that failed with EMSGSIZE on the way)
 * are pushed on *wake: call chani_local_wake() after unlocking. */
int chani_local_try_send(struct chan_local *c, struct chan_value *v,
                         struct chan_sudog **wake);

/* chani_local_try_recv - with c locked, receive without blocking, into
 * buf/size, or as a malloc()ed copy in *alloc if alloc is set.
 * Returns 1 with the length in *len, 0 if it would block, -EPIPE if closed
 * and drained, -EMSGSIZE (length in *len, the value stays), -ENOMEM.
 * A sender served or moved into the buffer goes on *wake. */
int chani_local_try_recv(struct chan_local *c, void *buf, size_t size, void **alloc,
                         size_t *len, struct chan_sudog **wake);

/* chani_local_wake - wake every waiter on a wake list (no lock held). */
void chani_local_wake(struct chan_sudog *wake);

/* The local half of a select that also names remote channels
 * (chan_select_mixed.c).  chani_lsel_start polls the local cases of `cases`
 * (others are skipped) in random order and runs one that is ready (its
 * index in *chosen, results in the case); otherwise, if w is set, it queues
 * w on every local channel, so that a peer claims it.  NULL with errno
 * (ENOMEM) on failure.  If none is ready and versions is set, versions[i]
 * is the version of local case i's channel, read under the same locks as
 * the poll (see chan_select_mixed.c's look).  chani_lsel_finish dequeues
 * what is still queued, copies the results of case idx from w if idx is a
 * local case, and frees. */
typedef struct chan_lsel chan_lsel_t;
chan_lsel_t *chani_lsel_start(chan_case_t *cases, size_t n, chan_waiter_t *w, int *chosen,
                              uint64_t *versions);
void chani_lsel_finish(chan_lsel_t *ls, chan_case_t *cases, chan_waiter_t *w, int idx);

/* For chan_timer.c: called by chani_local_free() for a timer channel. */
void chani_timer_detach(struct chan_timer *t);

#endif /* CHAN_LOCAL_H */

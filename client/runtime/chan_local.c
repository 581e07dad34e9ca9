/*
 * chan_local.c - local channels: Go's channel semantics inside the process.
 *
 * A channel is a lock, a ring of `cap` buffered values and two FIFO queues
 * of blocked callers (struct chan_sudog, one per blocked call, on the
 * caller's stack).  Every operation has the same shape (libdill's, Go's):
 * lock; try to complete at once (chani_local_try_send/try_recv, shared with
 * select); otherwise, unless the deadline is 0, enqueue a sudog and park on
 * its waiter, whose unlock callback releases the channel lock and wakes
 * whoever the attempt served.  A party that completes a blocked call claims
 * its waiter first (one compare-and-swap: a select or a deadline may race
 * for the same waiter), writes the results, and wakes it after unlocking.
 *
 * Values are byte strings, copied at send (chani_value_make) into the sender's
 * record, which then moves unchanged into the ring or to a receiver: small
 * values inline, larger ones as one malloc()ed buffer that a receiver using
 * chan_recv_alloc() simply takes over.  A receiver with a buffer too small
 * for the value at the head fails with EMSGSIZE and leaves the value there;
 * a blocked receiver offered a value it cannot hold fails the same way and
 * the sender moves on to the next receiver.  See chan_local.h for the
 * invariants.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chan_errmsg.h"
#include "runtime/chan_local.h"

/* ------------------------------------------------------------------------
 * Values */

int chani_value_make(struct chan_value *v, const void *data, size_t len)
{
    v->len = len;
    if (len <= CHAN_INLINE) {
        if (len)
            memcpy(v->u.bytes, data, len);
        return 0;
    }
    v->u.ptr = malloc(len);
    if (!v->u.ptr) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(v->u.ptr, data, len);
    return 0;
}

void chani_value_free(struct chan_value *v)
{
    if (v->len > CHAN_INLINE)
        free(v->u.ptr);
}

static const void *val_data(const struct chan_value *v)
{
    return v->len > CHAN_INLINE ? v->u.ptr : v->u.bytes;
}

/* A buffer for a receiver that wants its own copy of a small value; large
 * values are handed over instead (see take_value). */
static int alloc_for(const struct chan_value *v, void **alloc, void **p)
{
    *p = NULL;
    if (!alloc || v->len > CHAN_INLINE)
        return 0;
    *p = malloc(v->len ? v->len : 1);
    return *p ? 0 : -ENOMEM;
}

/* Deliver v to a receiver: copy into buf, or store in *alloc either p
 * (from alloc_for) or v's own buffer, which v then no longer owns. */
static void take_value(struct chan_value *v, void *buf, void **alloc, void *p)
{
    if (alloc) {
        if (v->len > CHAN_INLINE) {
            p = v->u.ptr;
            v->u.ptr = NULL;
        } else if (v->len) {
            memcpy(p, v->u.bytes, v->len);
        }
        *alloc = p;
    } else if (v->len) {
        memcpy(buf, val_data(v), v->len);
    }
}

/* ------------------------------------------------------------------------
 * Queues */

void chani_waitq_push(struct chan_waitq *q, struct chan_sudog *s)
{
    s->next = NULL;
    s->prev = q->tail;
    if (q->tail)
        q->tail->next = s;
    else
        CHANI_PEEK_SET(q->head, s);
    q->tail = s;
    s->queued = true;
}

void chani_waitq_remove(struct chan_waitq *q, struct chan_sudog *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        CHANI_PEEK_SET(q->head, s->next);
    if (s->next)
        s->next->prev = s->prev;
    else
        q->tail = s->prev;
    s->next = s->prev = NULL;
    s->queued = false;
}

static bool stale(const struct chan_sudog *s)
{
    return atomic_load_explicit(&s->w->claimed, memory_order_acquire) != 0;
}

static void finish(struct chan_sudog *s, int err, size_t len, struct chan_sudog **wake)
{
    s->w->err = err;
    s->w->len = len;
    s->w->index = s->index;
    s->next = *wake;
    *wake = s;
}

void chani_local_wake(struct chan_sudog *wake)
{
    while (wake) {
        /* Read the link first: once woken, the sudog's owner may return. */
        struct chan_sudog *next = wake->next;
        chani_waiter_wake(wake->w);
        wake = next;
    }
}

/* Move a sender's value into the ring's free slot. */
static void ring_put(struct chan_local *c, struct chan_value *v)
{
    size_t i = c->head + c->count;
    if (i >= c->cap)
        i -= c->cap;
    c->ring[i] = *v;
    if (v->len > CHAN_INLINE)
        v->u.ptr = NULL;
    CHANI_PEEK_SET(c->count, c->count + 1);
    c->version++;
}

/* ------------------------------------------------------------------------
 * Non-blocking attempts (channel locked) */

int chani_local_try_send(struct chan_local *c, struct chan_value *v,
                         struct chan_sudog **wake)
{
    if (c->closed)
        return -EPIPE;
    struct chan_sudog *r;
    while ((r = c->recvq.head)) {
        if (stale(r)) {
            chani_waitq_remove(&c->recvq, r);
            continue;
        }
        if (!r->alloc && v->len > r->size) {
            chani_waitq_remove(&c->recvq, r);
            if (chani_waiter_claim(r->w))
                finish(r, EMSGSIZE, v->len, wake);
            continue;
        }
        void *p;
        if (alloc_for(v, r->alloc, &p) < 0)
            return -ENOMEM;
        chani_waitq_remove(&c->recvq, r);
        if (!chani_waiter_claim(r->w)) {
            free(p);
            continue;
        }
        take_value(v, r->buf, r->alloc, p);
        finish(r, 0, v->len, wake);
        return 1;
    }
    if (c->count < c->cap) {
        ring_put(c, v);
        return 1;
    }
    return 0;
}

/* The buffer's head has just been taken: let the first live blocked
 * sender move its value into the free slot and go. */
static void refill(struct chan_local *c, struct chan_sudog **wake)
{
    struct chan_sudog *s;
    while ((s = c->sendq.head)) {
        chani_waitq_remove(&c->sendq, s);
        if (!chani_waiter_claim(s->w))
            continue;
        ring_put(c, s->val);
        finish(s, 0, 0, wake);
        return;
    }
}

static int recv_buffered(struct chan_local *c, void *buf, size_t size, void **alloc,
                         size_t *len, struct chan_sudog **wake)
{
    struct chan_value *h = &c->ring[c->head];
    *len = h->len;
    if (!alloc && h->len > size)
        return -EMSGSIZE;
    void *p;
    if (alloc_for(h, alloc, &p) < 0)
        return -ENOMEM;
    take_value(h, buf, alloc, p);
    chani_value_free(h);
    c->head = c->head + 1 == c->cap ? 0 : c->head + 1;
    CHANI_PEEK_SET(c->count, c->count - 1);
    c->version++;
    refill(c, wake);
    return 1;
}

int chani_local_try_recv(struct chan_local *c, void *buf, size_t size, void **alloc,
                         size_t *len, struct chan_sudog **wake)
{
    if (c->count)
        return recv_buffered(c, buf, size, alloc, len, wake);
    struct chan_sudog *s;
    while ((s = c->sendq.head)) {
        if (stale(s)) {
            chani_waitq_remove(&c->sendq, s);
            continue;
        }
        *len = s->val->len;
        if (!alloc && s->val->len > size)
            return -EMSGSIZE;   /* the sender stays, its value at the head */
        void *p;
        if (alloc_for(s->val, alloc, &p) < 0)
            return -ENOMEM;
        chani_waitq_remove(&c->sendq, s);
        if (!chani_waiter_claim(s->w)) {
            free(p);
            continue;
        }
        take_value(s->val, buf, alloc, p);
        finish(s, 0, 0, wake);
        return 1;
    }
    return c->closed ? -EPIPE : 0;
}

/* ------------------------------------------------------------------------
 * Blocking operations */

/* Park's unlock callback: release the channel, then wake whoever the
 * failed attempt claimed (receivers that got EMSGSIZE). */
struct unlock_arg {
    chan_mutex_t *lock;
    struct chan_sudog *wake;
};

static void unlock_and_wake(void *arg)
{
    struct unlock_arg *a = arg;
    struct chan_sudog *wake = a->wake;
    chani_mutex_unlock(a->lock);
    chani_local_wake(wake);
}

static int fail(int err)
{
    errno = err;
    return -1;
}

/* Wait on c (locked) with sudog s on queue q; returns the waiter's index. */
static int wait_on(struct chan_local *c, struct chan_waitq *q, struct chan_sudog *s,
                   struct chan_sudog *wake, int64_t deadline)
{
    chani_waitq_push(q, s);
    c->version++;
    struct unlock_arg ua = { &c->lock, wake };
    int idx = chani_waiter_park(s->w, deadline, unlock_and_wake, &ua);
    if (idx == CHAN_WAIT_TIMEOUT) {
        chani_mutex_lock(&c->lock);
        if (s->queued)
            chani_waitq_remove(q, s);
        chani_mutex_unlock(&c->lock);
    }
    return idx;
}

static int send_one(struct chan_local *c, const void *data, size_t len, int64_t deadline)
{
    struct chan_value v;
    if (chani_value_make(&v, data, len) < 0)
        return -1;
    struct chan_sudog *wake = NULL;
    chani_mutex_lock(&c->lock);
    int rc = chani_local_try_send(c, &v, &wake);
    if (rc != 0 || deadline == 0) {
        chani_mutex_unlock(&c->lock);
        chani_local_wake(wake);
        chani_value_free(&v);
        return rc > 0 ? 0 : fail(rc == 0 ? ETIMEDOUT : -rc);
    }
    chan_waiter_t w;
    chani_waiter_init(&w);
    struct chan_sudog s = { .w = &w, .val = &v };
    int idx = wait_on(c, &c->sendq, &s, wake, deadline);
    chani_value_free(&v);
    if (idx == CHAN_WAIT_TIMEOUT)
        return fail(ETIMEDOUT);
    return w.err ? fail(w.err) : 0;
}

int chani_local_send_many(chan_t *ch, const chan_val_t *vals, size_t n,
                          size_t *sent, int64_t deadline)
{
    struct chan_local *c = chani_local_of(ch);
    for (size_t i = 0; i < n; i++) {
        if (send_one(c, vals[i].data, vals[i].len, deadline) < 0) {
            *sent = i;
            return -1;
        }
    }
    *sent = n;
    return 0;
}

ssize_t chani_local_recv(chan_t *ch, void *buf, size_t size, void **alloc,
                         int64_t deadline)
{
    struct chan_local *c = chani_local_of(ch);
    struct chan_sudog *wake = NULL;
    size_t len = 0;
    chani_mutex_lock(&c->lock);
    int rc = chani_local_try_recv(c, buf, size, alloc, &len, &wake);
    if (rc != 0 || deadline == 0) {
        chani_mutex_unlock(&c->lock);
        chani_local_wake(wake);
        return rc > 0 ? (ssize_t)len : fail(rc == 0 ? ETIMEDOUT : -rc);
    }
    chan_waiter_t w;
    chani_waiter_init(&w);
    struct chan_sudog s = { .w = &w, .buf = buf, .size = size, .alloc = alloc };
    if (wait_on(c, &c->recvq, &s, wake, deadline) == CHAN_WAIT_TIMEOUT)
        return fail(ETIMEDOUT);
    return w.err ? fail(w.err) : (ssize_t)w.len;
}

ssize_t chani_local_recv_many(chan_t *ch, chan_val_t *vals, size_t max, int64_t deadline)
{
    struct chan_local *c = chani_local_of(ch);
    ssize_t len = chani_local_recv(ch, NULL, 0, &vals[0].data, deadline);
    if (len < 0)
        return -1;
    vals[0].len = (size_t)len;
    vals[0].redelivered = 0;   /* local values never go back */
    size_t n = 1;
    if (n < max) {
        struct chan_sudog *wake = NULL;
        chani_mutex_lock(&c->lock);
        while (n < max) {
            size_t l;
            if (chani_local_try_recv(c, NULL, 0, &vals[n].data, &l, &wake) <= 0)
                break;
            vals[n].redelivered = 0;
            vals[n++].len = l;
        }
        chani_mutex_unlock(&c->lock);
        chani_local_wake(wake);
    }
    return (ssize_t)n;
}

/* Fail every blocked call on q with EPIPE. */
static void fail_all(struct chan_waitq *q, struct chan_sudog **wake)
{
    struct chan_sudog *s;
    while ((s = q->head)) {
        chani_waitq_remove(q, s);
        if (chani_waiter_claim(s->w))
            finish(s, EPIPE, 0, wake);
    }
}

int chani_local_close(chan_t *ch)
{
    struct chan_local *c = chani_local_of(ch);
    struct chan_sudog *wake = NULL;
    chani_mutex_lock(&c->lock);
    if (c->closed) {
        chani_mutex_unlock(&c->lock);
        return fail(EPIPE);
    }
    CHANI_PEEK_SET(c->closed, true);
    c->version++;
    fail_all(&c->recvq, &wake);
    fail_all(&c->sendq, &wake);
    chani_mutex_unlock(&c->lock);
    chani_local_wake(wake);
    return 0;
}

/* ------------------------------------------------------------------------
 * Life cycle */

chan_t *chan_make(size_t cap)
{
    chani_errmsg_clear();
    if (cap > SIZE_MAX / sizeof(struct chan_value) / 2) {
        errno = ENOMEM;
        return NULL;
    }
    struct chan_local *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (cap) {
        c->ring = malloc(cap * sizeof *c->ring);
        if (!c->ring) {
            free(c);
            errno = ENOMEM;
            return NULL;
        }
    }
    atomic_init(&c->hdr.refs, 1);
    c->hdr.kind = CHAN_KIND_LOCAL;
    chani_mutex_init(&c->lock);
    c->cap = cap;
    return &c->hdr;
}

void chani_local_free(chan_t *ch)
{
    struct chan_local *c = chani_local_of(ch);
    if (c->timer)
        chani_timer_detach(c->timer);   /* waits out a firing in progress */
    for (size_t i = 0; i < c->count; i++) {
        size_t j = c->head + i;
        chani_value_free(&c->ring[j >= c->cap ? j - c->cap : j]);
    }
    free(c->ring);
    free(c);
}

ssize_t chani_local_len(chan_t *ch)
{
    struct chan_local *c = chani_local_of(ch);
    chani_mutex_lock(&c->lock);
    size_t n = c->count;
    chani_mutex_unlock(&c->lock);
    return (ssize_t)n;
}

ssize_t chani_local_cap(chan_t *ch)
{
    return (ssize_t)chani_local_of(ch)->cap;
}

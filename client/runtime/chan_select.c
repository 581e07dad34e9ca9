/*
 * chan_select.c - select over local channels, Go's algorithm, with one
 * shortcut in front of it (step 0).
 *
 *  0. With the orders of step 1 made, before its locking: peek at the
 *     channels without their locks, in poll order; lock the first one
 *     whose case looks ready and try that case alone.  If it
 *     proceeds, that is the select's result: it was ready when tried, and
 *     the first ready case of a random order is a fair pick.  A wrong guess
 *     costs that one lock, then:
 *  1. Put the cases in a random order (the poll order) and, separately, the
 *     channels in address order (the lock order; a channel named by several
 *     cases is locked once).  Lock every channel.
 *  2. Look for a case that can proceed, in poll order, with the same
 *     non-blocking attempts as the single operations.  The first one found
 *     is a uniformly random choice among the ready cases, because the first
 *     ready case of a uniformly random permutation is uniformly distributed.
 *     A closed channel makes its case ready (err EPIPE).
 *  3. If none is ready and the deadline is 0, unlock and fail: Go's default.
 *  4. Otherwise enqueue one sudog per case, in poll order, all sharing one
 *     waiter, and park.
 *     The park callback unlocks every channel after the switch.  Whichever
 *     source claims the waiter first (a peer on one of the channels, or the
 *     deadline) wins; every other source finds the waiter claimed and
 *     skips the stale sudog, so exactly one case takes effect.
 *  5. Awake: take each channel's lock in turn and dequeue the sudogs still
 *     queued (the losers).  The winner's results are already in the waiter.
 *
 * A select that also names remote channels (chan_select_mixed.c) runs steps
 * 1-4 here with chani_lsel_start(), minus the park: the waiter it enqueues is
 * shared with the remote cases' requests, and the first source to claim it
 * wins, local or remote.  chani_lsel_finish() is step 5.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "runtime/chan_local.h"
#include "runtime/chan_sched.h"

#define SMALL 8   /* cases handled without malloc */

struct sel {
    size_t n;                   /* cases with a channel */
    size_t *poll;               /* indices into the cases, random order */
    size_t *lock;               /* indices into the cases, by channel address */
    size_t nsend;               /* send cases among the n */
    struct chan_sudog *sg;      /* per case (by case index) */
    struct chan_value *vals;      /* per case: the value of a send case */
    struct chan_sudog *wake;    /* waiters to wake after unlocking */
};

static struct chan_local *chan_at(const chan_case_t *cases, size_t i)
{
    return chani_local_of(cases[i].ch);
}

/* The cases this file handles: local channels (NULL and remote ones are
 * skipped; remote cases belong to chan_select_mixed.c). */
static bool is_local(const chan_case_t *cs)
{
    return cs->ch && cs->ch->kind == CHAN_KIND_LOCAL;
}

static void lock_all(const chan_case_t *cases, const struct sel *s)
{
    struct chan_local *prev = NULL;
    for (size_t k = 0; k < s->n; k++) {
        struct chan_local *c = chan_at(cases, s->lock[k]);
        if (c != prev)
            chani_mutex_lock(&c->lock);
        prev = c;
    }
}

static void unlock_all(const chan_case_t *cases, const struct sel *s)
{
    struct chan_local *prev = NULL;
    for (size_t k = 0; k < s->n; k++) {
        struct chan_local *c = chan_at(cases, s->lock[k]);
        if (c != prev)
            chani_mutex_unlock(&c->lock);
        prev = c;
    }
}

struct park_arg {
    const chan_case_t *cases;
    struct sel *sel;
};

static void unlock_all_cb(void *arg)
{
    struct park_arg *a = arg;
    struct chan_sudog *wake = a->sel->wake;
    unlock_all(a->cases, a->sel);
    chani_local_wake(wake);
}

/* Step 1's poll order: an inside-out Fisher-Yates shuffle of the local
 * cases.  The draws share random words: a draw in [0, b) is the high half
 * of the word times b, and the low half is the next draw's word (Lemire's
 * batched draws), until the bounds' product would pass 2^32; each draw is
 * then uniform within 2^-32.  A select of up to 8 cases costs one
 * chani_rand() where it cost one per case. */
static void make_poll_order(const chan_case_t *cases, size_t ncases, struct sel *s)
{
    size_t n = 0;
    uint64_t r = 0, product = 0;   /* 0: no word drawn yet */
    s->nsend = 0;
    for (size_t i = 0; i < ncases; i++) {
        if (!is_local(&cases[i]))
            continue;
        s->nsend += cases[i].op == CHAN_SEND;
        uint64_t b = n + 1;   /* below 2^32 (chani_local_select checks) */
        product *= b;         /* (no overflow: both at most 2^32) */
        if (!product || product > (UINT64_C(1) << 32)) {
            r = chani_rand();
            product = b;
        }
        __uint128_t m = (__uint128_t)r * b;
        size_t j = (size_t)(m >> 64);
        r = (uint64_t)m;
        s->poll[n] = s->poll[j];
        s->poll[j] = i;
        n++;
    }
    s->n = n;
}

/* Step 1's lock order: the local cases by channel address, insertion sort
 * (selects are small).  Made only by a select that goes past step 0. */
static void make_lock_order(const chan_case_t *cases, struct sel *s)
{
    for (size_t n = 0; n < s->n; n++) {
        size_t i = s->poll[n];
        uintptr_t a = (uintptr_t)cases[i].ch;
        size_t k = n;
        while (k > 0 && (uintptr_t)cases[s->lock[k - 1]].ch > a) {
            s->lock[k] = s->lock[k - 1];
            k--;
        }
        s->lock[k] = i;
    }
}

/* Try case i (its channel locked).  1: done, with results in the case;
 * 0: not ready; -ENOMEM: give up the whole select. */
static int try_case(chan_case_t *cases, size_t i, struct sel *s)
{
    chan_case_t *cs = &cases[i];
    struct chan_local *c = chan_at(cases, i);
    int rc;
    if (cs->op == CHAN_SEND) {
        rc = chani_local_try_send(c, &s->vals[i], &s->wake);
    } else {
        size_t len = 0;
        rc = chani_local_try_recv(c, cs->buf, cs->len, cs->buf ? NULL : &cs->val, &len, &s->wake);
        cs->n = len;
    }
    if (rc == 0 || rc == -ENOMEM)
        return rc;
    cs->err = rc < 0 ? -rc : 0;
    if (cs->err)
        cs->val = NULL;
    return 1;
}

static int make_vals(const chan_case_t *cases, size_t ncases, struct sel *s)
{
    if (!s->nsend)
        return 0;
    for (size_t i = 0; i < ncases; i++) {
        if (is_local(&cases[i]) && cases[i].op == CHAN_SEND &&
            chani_value_make(&s->vals[i], cases[i].buf, cases[i].len) < 0) {
            while (i-- > 0)
                if (is_local(&cases[i]) && cases[i].op == CHAN_SEND)
                    chani_value_free(&s->vals[i]);
            return -1;
        }
    }
    return 0;
}

static void free_vals(const chan_case_t *cases, size_t ncases, struct sel *s)
{
    if (!s->nsend)
        return;
    for (size_t i = 0; i < ncases; i++)
        if (is_local(&cases[i]) && cases[i].op == CHAN_SEND)
            chani_value_free(&s->vals[i]);
}

/* Step 4 without the park: one sudog per case, all sharing w (channels
 * locked).  In poll order: of two cases on one channel, the one queued
 * first is served first, and that must be either, as in Go. */
static void enqueue_all(chan_case_t *cases, struct sel *s, chan_waiter_t *w)
{
    for (size_t k = 0; k < s->n; k++) {
        size_t i = s->poll[k];
        struct chan_sudog *sg = &s->sg[i];
        *sg = (struct chan_sudog){ .w = w, .index = (int)i };
        struct chan_local *c = chan_at(cases, i);
        c->version++;
        if (cases[i].op == CHAN_SEND) {
            sg->val = &s->vals[i];
            chani_waitq_push(&c->sendq, sg);
        } else {
            sg->buf = cases[i].buf;
            sg->size = cases[i].len;
            sg->alloc = cases[i].buf ? NULL : &cases[i].val;
            chani_waitq_push(&c->recvq, sg);
        }
    }
}

/* Step 5: dequeue the losers; the winner's results, if it is one of ours,
 * go from the waiter into its case. */
static void dequeue_all(chan_case_t *cases, struct sel *s, chan_waiter_t *w, int idx)
{
    for (size_t k = 0; k < s->n; k++) {
        size_t i = s->lock[k];
        struct chan_sudog *sg = &s->sg[i];
        struct chan_local *c = chan_at(cases, i);
        /* queued is only ever cleared under c's lock, and only the winner
         * and this loop touch a sudog whose waiter is claimed: if it reads
         * false here it stays false. */
        chani_mutex_lock(&c->lock);
        if (sg->queued)
            chani_waitq_remove(cases[i].op == CHAN_SEND ? &c->sendq : &c->recvq, sg);
        chani_mutex_unlock(&c->lock);
    }
    if (idx < 0 || !is_local(&cases[idx]))
        return;
    chan_case_t *cs = &cases[idx];
    cs->err = w->err;
    if (cs->op == CHAN_RECV) {
        cs->n = w->len;
        if (w->err)
            cs->val = NULL;
    }
}

/* Steps 4 and 5: wait for one case.  Returns its index or -1 (timeout). */
static int wait_cases(chan_case_t *cases, struct sel *s, int64_t deadline)
{
    chan_waiter_t w;
    chani_waiter_init(&w);
    enqueue_all(cases, s, &w);
    struct park_arg pa = { cases, s };
    int idx = chani_waiter_park(&w, deadline, unlock_all_cb, &pa);
    dequeue_all(cases, s, &w, idx);
    return idx == CHAN_WAIT_TIMEOUT ? -1 : idx;
}

/* A select with no channel: Go's `select {}` (forever) or a plain sleep
 * until the deadline. */
static int select_nothing(int64_t deadline)
{
    if (deadline != 0) {
        chan_waiter_t w;
        chani_waiter_init(&w);
        chani_waiter_park(&w, deadline, NULL, NULL);
    }
    errno = ETIMEDOUT;
    return -1;
}

/* Might case i proceed now?  A guess, made without the lock from words
 * that change under it (CHANI_PEEK_GET): wrong either way at times, so it
 * only decides which case to try first, never a result. */
static bool looks_ready(const chan_case_t *cases, size_t i)
{
    struct chan_local *c = chan_at(cases, i);
    if (CHANI_PEEK_GET(c->closed))
        return true;
    if (cases[i].op == CHAN_SEND)
        return CHANI_PEEK_GET(c->recvq.head) != NULL || CHANI_PEEK_GET(c->count) < c->cap;
    return CHANI_PEEK_GET(c->count) > 0 || CHANI_PEEK_GET(c->sendq.head) != NULL;
}

/* Before step 1's locking of every channel: the first case in poll order
 * that looks ready is tried with its channel alone locked.  Most selects
 * that find a case ready (a busy buffered channel) end here, having
 * touched one channel instead of all of them; the choice is still the
 * first ready case of a random order, ready at the moment of its lock.
 * Returns the case's index, -1 to go on with the full poll (no case looked
 * ready, or the one that did was not), or -2 on failure (*err set). */
static int poll_one(chan_case_t *cases, struct sel *s, int *err)
{
    for (size_t k = 0; k < s->n; k++) {
        size_t i = s->poll[k];
        if (!looks_ready(cases, i))
            continue;
        struct chan_local *c = chan_at(cases, i);
        chani_mutex_lock(&c->lock);
        int rc = try_case(cases, i, s);
        chani_mutex_unlock(&c->lock);
        chani_local_wake(s->wake);
        s->wake = NULL;
        if (rc < 0) {
            *err = -rc;
            return -2;
        }
        return rc == 1 ? (int)i : -1;
    }
    return -1;
}

/* Steps 1-2 with the channels locked: run a ready case.  Returns its index,
 * -1 if none is ready (*err ETIMEDOUT) or on failure (*err set). */
static int poll_locked(chan_case_t *cases, struct sel *s, int *err)
{
    int chosen = -1;
    *err = ETIMEDOUT;
    for (size_t k = 0; k < s->n; k++) {
        int rc = try_case(cases, s->poll[k], s);
        if (rc == 1) {
            chosen = (int)s->poll[k];
            break;
        }
        if (rc < 0) {
            *err = -rc;
            break;
        }
    }
    return chosen;
}

static int run_select(chan_case_t *cases, size_t ncases, struct sel *s, int64_t deadline)
{
    make_poll_order(cases, ncases, s);
    if (s->n == 0)
        return select_nothing(deadline);
    if (make_vals(cases, ncases, s) < 0)
        return -1;
    s->wake = NULL;
    int err = ETIMEDOUT;
    int chosen = poll_one(cases, s, &err);
    if (chosen != -1) {
        free_vals(cases, ncases, s);
        if (chosen < 0)
            errno = err;
        return chosen < 0 ? -1 : chosen;
    }
    make_lock_order(cases, s);
    lock_all(cases, s);
    chosen = poll_locked(cases, s, &err);
    if (chosen >= 0 || err != ETIMEDOUT || deadline == 0) {
        unlock_all(cases, s);
        chani_local_wake(s->wake);
    } else {
        chosen = wait_cases(cases, s, deadline);
    }
    free_vals(cases, ncases, s);
    if (chosen < 0)
        errno = err;
    return chosen;
}

int chani_local_select(chan_case_t *cases, size_t n, int64_t deadline)
{
    if (n > UINT32_MAX) {
        errno = EINVAL;
        return -1;
    }
    size_t poll[SMALL], lock[SMALL];
    struct chan_sudog sg[SMALL];
    struct chan_value vals[SMALL];
    struct sel s = { .poll = poll, .lock = lock, .sg = sg, .vals = vals };
    void *mem = NULL;
    if (n > SMALL) {
        /* One block for the four arrays: sudogs and values first (their
         * alignment is the strictest), then the two index arrays. */
        mem = malloc(n * (sizeof *sg + sizeof *vals + 2 * sizeof *poll));
        if (!mem) {
            errno = ENOMEM;
            return -1;
        }
        s.sg = mem;
        s.vals = (struct chan_value *)(s.sg + n);
        s.poll = (size_t *)(s.vals + n);
        s.lock = s.poll + n;
    }
    int rc = run_select(cases, n, &s, deadline);
    if (mem) {
        int saved = errno;
        free(mem);
        errno = saved;
    }
    return rc;
}

/* ---- the local half of a mixed select ---- */

struct chan_lsel {
    struct sel s;
    size_t ncases;
    bool enqueued;              /* sudogs wait on the channels */
};

chan_lsel_t *chani_lsel_start(chan_case_t *cases, size_t ncases, chan_waiter_t *w, int *chosen,
                              uint64_t *versions)
{
    *chosen = -1;
    chan_lsel_t *ls = calloc(1, sizeof *ls);
    void *mem = malloc((ncases ? ncases : 1) *
                       (sizeof(struct chan_sudog) + sizeof(struct chan_value) + 2 * sizeof(size_t)));
    if (!ls || !mem) {
        free(ls);
        free(mem);
        errno = ENOMEM;
        return NULL;
    }
    struct sel *s = &ls->s;
    ls->ncases = ncases;
    s->sg = mem;
    s->vals = (struct chan_value *)(s->sg + ncases);
    s->poll = (size_t *)(s->vals + ncases);
    s->lock = s->poll + ncases;
    make_poll_order(cases, ncases, s);
    make_lock_order(cases, s);
    if (make_vals(cases, ncases, s) < 0) {
        free(mem);
        free(ls);
        errno = ENOMEM;
        return NULL;
    }
    if (s->n == 0)
        return ls;
    s->wake = NULL;
    lock_all(cases, s);
    int err;
    *chosen = poll_locked(cases, s, &err);
    if (*chosen < 0 && err != ETIMEDOUT) {
        unlock_all(cases, s);
        chani_local_wake(s->wake);
        chani_lsel_finish(ls, cases, NULL, -1);
        errno = err;
        return NULL;
    }
    if (*chosen < 0 && versions)
        for (size_t k = 0; k < s->n; k++)
            versions[s->poll[k]] = chan_at(cases, s->poll[k])->version;
    if (*chosen < 0 && w) {
        enqueue_all(cases, s, w);
        ls->enqueued = true;
    }
    unlock_all(cases, s);
    chani_local_wake(s->wake);
    return ls;
}

void chani_lsel_finish(chan_lsel_t *ls, chan_case_t *cases, chan_waiter_t *w, int idx)
{
    if (!ls)
        return;
    struct sel *s = &ls->s;
    if (w && ls->enqueued)
        dequeue_all(cases, s, w, idx);
    free_vals(cases, ls->ncases, s);
    free(s->sg);
    free(ls);
}

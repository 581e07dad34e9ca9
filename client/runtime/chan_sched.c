/*
 * chan_sched.c - the goroutine scheduler: worker threads, run queues,
 * parking, waking, work stealing, deadlines, stack-overflow reports.
 *
 * The pool starts on first use (pthread_once): CHAN_PROCS workers, default
 * one per available CPU.  Each worker runs a loop on its thread's own stack
 * (the "scheduler context") and switches into goroutines from there.
 *
 * Invariants:
 *  - A goroutine runs only on g->w once it has started (g->started).  C
 *    code caches thread-local addresses (errno's is a const function), so a
 *    started goroutine never moves.  Only goroutines that have not started
 *    are placed or stolen.
 *  - Every worker has three queues of goroutines, each g in at most one:
 *      rq     ready goroutines; touched by the owner thread only, no lock.
 *      inbox  ready goroutines pushed by other threads (a lock-free stack,
 *             reversed into rq in FIFO order when the owner drains it).
 *      fresh  goroutines not started yet, under fresh_lock; other workers
 *             steal from it.
 *  - A parked goroutine is in no queue; whoever claims its waiter readies
 *    it, exactly once (chan_wait.h).  Readying before the goroutine has
 *    finished parking is harmless: only its own worker can resume it, and
 *    that worker is busy parking it.
 *  - Park follows Go: the goroutine switches away first and the context
 *    switched to runs the unlock callback (w->after), so the lock that
 *    guarded the decision to sleep is released only once the goroutine's
 *    registers are saved.  The next context is the next ready goroutine
 *    (one switch, not two) or the scheduler loop; both run w->after first.
 *  - A worker sleeps on its `sleeping` futex word only after announcing it
 *    (sleeping = 1, nidle++) and checking every queue again; a waker pushes
 *    first and then looks at `sleeping`.  All four accesses are seq_cst,
 *    so one side always sees the other: no lost wakeup.
 *  - Deadlines of parked goroutines live in their worker's binary heap
 *    (owner only).  Expiry claims the waiter; a failed claim means a source
 *    won and will ready the goroutine, which removes nothing itself.
 *  - A worker may hold a remote client's reader role (chani_sched_set_poll):
 *    then it waits on that socket and its eventfd instead of the futex
 *    (sleeping = 2), and a waker writes the eventfd.  The role is given up
 *    (the `done` callback) in the scheduler loop before any goroutine runs,
 *    so a goroutine that computes for long never keeps replies unread.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#ifdef CHAN_SANITIZERS
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef CHAN_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#include "chan/chan.h"
#include "chan_clock.h"
#include "chan_errmsg.h"
#include "runtime/chan_lock.h"
#include "runtime/chan_sched.h"

#define MAX_PROCS 1024
#define PLACE_SLACK 64       /* stay local unless this much busier */
#define SPIN_ROUNDS 64       /* most idle polls before sleeping (about 20 us) */
#define SPIN_ROUNDS_MIN 4    /* fewest (see idle) */
#define STEAL_GRACE 32        /* polls before stealing (a few us) */
_Static_assert(STEAL_GRACE <= SPIN_ROUNDS, "idle() must be able to count STEAL_GRACE polls");
#define STEAL_RECHECK_MS 1   /* nap when busy workers are progressing */
#define SPAWN_BACKLOG 256    /* fresh goroutines a spawner may pile up */
#define POLL_EVERY 32        /* every Nth switch goes through the loop */
#define FRESH_EVERY 8        /* every Nth pick prefers a fresh goroutine */
#define DEFER_MAX 16         /* chani_sched_defer's calls a worker holds */

struct chan_worker {
    /* Owner thread only. */
    struct chan_fiber sched;     /* the scheduler loop's context */
    chan_g *cur;                 /* running goroutine, NULL in the loop */
    chan_g *rq_head, *rq_tail;
    unsigned picks;              /* counts picks, for FRESH_EVERY */
    unsigned switches;           /* counts switches, for POLL_EVERY */
    void (*after)(void *);       /* to run on the next context: see park */
    void *after_arg;
#ifdef CHAN_TSAN
    void *after_tsan;            /* TSan fiber to run `after` as, or NULL */
#endif
    struct chan_heap deadlines;  /* of parked goroutines (chan_deadline_t) */
    void *altstack;              /* for the SIGSEGV handler */
    int id;
    _Atomic size_t rq_len;       /* written by the owner, read as load */
    _Atomic unsigned long progress;  /* switches made; read by stealers */
    unsigned long *seen;         /* others' progress when we saw their
                                    fresh goroutines (see idle) */
    /* A socket to wait on when idle, set by a goroutine that parks on a
     * reply from it (chani_sched_set_poll); done is NULL when none. */
    int poll_fd;
    const chan_poll_ops_t *poll_ops;
    void *poll_ctx;
    /* Calls put off until the loop (chani_sched_defer). */
    struct chan_deferred {
        void (*fn)(void *);
        void *arg;
    } deferred[DEFER_MAX];
    int ndeferred;
    int spin_rounds;             /* idle polls before sleeping, adapted */

    /* Shared with other threads, on their own cache lines. */
    _Alignas(64) _Atomic(chan_g *) inbox;
    _Atomic uint32_t sleeping;   /* futex word: 1 while asleep on it, 2
                                    while in poll() on the eventfd below */
    int evfd;                    /* eventfd: wakes a worker in poll() */
    _Alignas(64) chan_mutex_t fresh_lock;
    chan_g *fresh_head, *fresh_tail;
    _Atomic size_t nfresh;
    pthread_t thread;
};

static struct chan_worker *workers;
/* Set before the workers start, and lowered after if some could not be
 * started (they have nothing, so a worker that saw the old count loses
 * nothing): atomic, as running workers read it meanwhile. */
static _Atomic int nworkers;
static int start_errno;
static pthread_once_t start_once = PTHREAD_ONCE_INIT;
static _Atomic int nidle;        /* workers asleep or about to be */
static _Atomic int nspinning;    /* workers polling before sleeping */
static _Atomic unsigned place_rr;
static struct sigaction old_segv;

static __thread struct chan_worker *tls_worker
    __attribute__((tls_model("initial-exec")));

static inline int procs(void)
{
    return atomic_load_explicit(&nworkers, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * Random numbers: wyrand, seeded per thread from the clock and the address
 * of its state (distinct per thread). */

static __thread uint64_t rng_state __attribute__((tls_model("initial-exec")));

uint64_t chani_rand(void)
{
    if (__builtin_expect(rng_state == 0, 0)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rng_state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&rng_state ^ 1;
    }
    rng_state += 0xa0761d6478bd642fULL;
    __uint128_t m = (__uint128_t)rng_state * (rng_state ^ 0xe7037ed1a0b428dbULL);
    return (uint64_t)(m >> 64) ^ (uint64_t)m;
}

/* ------------------------------------------------------------------------
 * Queues */

static void rq_push(struct chan_worker *w, chan_g *g)
{
    g->next = NULL;
    if (w->rq_tail)
        w->rq_tail->next = g;
    else
        w->rq_head = g;
    w->rq_tail = g;
    atomic_store_explicit(&w->rq_len, atomic_load_explicit(&w->rq_len, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static chan_g *rq_pop(struct chan_worker *w)
{
    chan_g *g = w->rq_head;
    if (g) {
        w->rq_head = g->next;
        if (!w->rq_head)
            w->rq_tail = NULL;
        atomic_store_explicit(&w->rq_len, atomic_load_explicit(&w->rq_len, memory_order_relaxed) - 1,
                              memory_order_relaxed);
    }
    return g;
}

static void inbox_push(struct chan_worker *w, chan_g *g)
{
    chan_g *old = atomic_load_explicit(&w->inbox, memory_order_relaxed);
    do
        g->next = old;
    while (!atomic_compare_exchange_weak_explicit(&w->inbox, &old, g, memory_order_seq_cst,
                                                  memory_order_relaxed));
}

/* Move everything in the inbox to the run queue, oldest first. */
static void inbox_drain(struct chan_worker *w)
{
    if (!atomic_load_explicit(&w->inbox, memory_order_relaxed))
        return;
    chan_g *g = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
    chan_g *rev = NULL;
    while (g) {
        chan_g *next = g->next;
        g->next = rev;
        rev = g;
        g = next;
    }
    while (rev) {
        chan_g *next = rev->next;
        rq_push(w, rev);
        rev = next;
    }
}

static void fresh_push(struct chan_worker *w, chan_g *g)
{
    g->next = NULL;
    chani_mutex_lock(&w->fresh_lock);
    if (w->fresh_tail)
        w->fresh_tail->next = g;
    else
        w->fresh_head = g;
    w->fresh_tail = g;
    atomic_fetch_add_explicit(&w->nfresh, 1, memory_order_seq_cst);
    chani_mutex_unlock(&w->fresh_lock);
}

static chan_g *fresh_pop(struct chan_worker *w)
{
    if (!atomic_load_explicit(&w->nfresh, memory_order_relaxed))
        return NULL;
    chani_mutex_lock(&w->fresh_lock);
    chan_g *g = w->fresh_head;
    if (g) {
        w->fresh_head = g->next;
        if (!w->fresh_head)
            w->fresh_tail = NULL;
        atomic_fetch_sub_explicit(&w->nfresh, 1, memory_order_relaxed);
    }
    chani_mutex_unlock(&w->fresh_lock);
    return g;
}

/* Take half (rounded up) of v's fresh goroutines: run the first, queue the
 * rest as our own fresh ones (still stealable). */
static chan_g *steal_from(struct chan_worker *w, struct chan_worker *v)
{
    if (!atomic_load_explicit(&v->nfresh, memory_order_relaxed))
        return NULL;
    chani_mutex_lock(&v->fresh_lock);
    size_t n = atomic_load_explicit(&v->nfresh, memory_order_relaxed);
    size_t take = (n + 1) / 2;
    chan_g *first = v->fresh_head, *last = first;
    if (!first) {
        chani_mutex_unlock(&v->fresh_lock);
        return NULL;
    }
    for (size_t i = 1; i < take; i++)
        last = last->next;
    v->fresh_head = last->next;
    if (!v->fresh_head)
        v->fresh_tail = NULL;
    atomic_fetch_sub_explicit(&v->nfresh, take, memory_order_relaxed);
    chani_mutex_unlock(&v->fresh_lock);
    last->next = NULL;
    chan_g *g = first->next;
    while (g) {
        chan_g *next = g->next;
        fresh_push(w, g);
        g = next;
    }
    return first;
}

/* Steal from a worker that has not switched since idle() saw its fresh
 * goroutines: one goroutine is holding it, so its queue is not moving.  A
 * worker that keeps switching runs its fresh goroutines soon enough, and
 * they are most likely talking to the goroutines already there. */
static chan_g *steal(struct chan_worker *w)
{
    int n = procs();
    if (n < 2)
        return NULL;
    int start = (int)chani_rand_below((uint32_t)n);
    for (int i = 0; i < n; i++) {
        int k = (start + i) % n;
        struct chan_worker *v = &workers[k];
        if (v == w || atomic_load_explicit(&v->progress, memory_order_relaxed) != w->seen[k])
            continue;
        chan_g *g = steal_from(w, v);
        if (g)
            return g;
    }
    return NULL;
}

/* The next goroutine to run from this worker's own queues.  Ready ones
 * first (they are likely to hold a value someone waits for), but every
 * FRESH_EVERY picks a fresh one first, so a busy pair of ping-ponging
 * goroutines cannot starve new ones on a single worker. */
static chan_g *pick(struct chan_worker *w)
{
    chan_g *g;
    if ((++w->picks % FRESH_EVERY) == 0 && (g = fresh_pop(w)))
        return g;
    if ((g = rq_pop(w)))
        return g;
    return fresh_pop(w);
}

/* ------------------------------------------------------------------------
 * Waking idle workers */

/* w was asleep in the way `how` says (its old `sleeping`): wake it. */
static void wake_sleeper(struct chan_worker *w, uint32_t how)
{
    if (how == 2) {
        uint64_t one = 1;
        (void)!write(w->evfd, &one, sizeof one);
    } else {
        chani_futex_wake(&w->sleeping, 1);
    }
}

/* Wake w if it sleeps; true if it did. */
static bool worker_wake(struct chan_worker *w)
{
    uint32_t how;
    if (atomic_load_explicit(&w->sleeping, memory_order_seq_cst) &&
        (how = atomic_exchange_explicit(&w->sleeping, 0, memory_order_seq_cst)) != 0) {
        wake_sleeper(w, how);
        return true;
    }
    return false;
}

/* New fresh work on our queue: if some worker sleeps and none is already
 * looking for work, wake one to steal it (Go's wakep). */
static void wake_idle_for(struct chan_worker *self)
{
    if (atomic_load_explicit(&nidle, memory_order_seq_cst) == 0 ||
        atomic_load_explicit(&nspinning, memory_order_seq_cst) != 0)
        return;
    for (int i = 0, n = procs(); i < n; i++) {
        struct chan_worker *v = &workers[i];
        uint32_t how;
        if (v != self && atomic_load_explicit(&v->sleeping, memory_order_relaxed) &&
            (how = atomic_exchange_explicit(&v->sleeping, 0, memory_order_seq_cst)) != 0) {
            wake_sleeper(v, how);
            return;
        }
    }
}

/* ------------------------------------------------------------------------
 * Deadlines: a binary min-heap per worker (chan_heap.h), keyed by the
 * chan_now() at which each fires. */

void chani_sched_deadline_add(chan_deadline_t *d)
{
    struct chan_worker *w = tls_worker;
    if (chan_heap_push(&w->deadlines, &d->node) < 0) {
        /* No memory for the heap: fire at once rather than never;
         * callers treat an early timeout like any other. */
        chan_heap_node_init(&d->node);
        if (chani_waiter_claim(d->w)) {
            d->w->index = CHAN_WAIT_TIMEOUT;
            rq_push(w, w->cur);
        }
    }
}

void chani_sched_deadline_del(chan_deadline_t *d)
{
    chan_heap_remove(&tls_worker->deadlines, &d->node);
}

/* Milliseconds until w's next deadline: 0 if it has passed, -1 if none. */
static int64_t next_deadline_ms(struct chan_worker *w)
{
    struct chan_heap_node *top = chan_heap_top(&w->deadlines);
    if (!top)
        return -1;
    int64_t left = top->key - chan_now();
    return left < 0 ? 0 : left;
}

/* Fire every deadline that has passed. */
static void timers_run(struct chan_worker *w)
{
    if (!chan_heap_top(&w->deadlines))
        return;
    int64_t now = chan_now();
    struct chan_heap_node *top;
    while ((top = chan_heap_top(&w->deadlines)) && top->key <= now) {
        chan_deadline_t *d = chan_heap_entry(top, chan_deadline_t, node);
        chan_heap_remove(&w->deadlines, top);
        if (chani_waiter_claim(d->w)) {
            d->w->index = CHAN_WAIT_TIMEOUT;
            rq_push(w, d->w->g);
        }
    }
}

/* ------------------------------------------------------------------------
 * ThreadSanitizer's view of goroutines.  TSan keeps a vector clock per
 * thread; a goroutine that did not have its own would share its worker's,
 * and TSan would see neither the races between the goroutines of one
 * worker nor the true order of a goroutine's accesses.  So each goroutine
 * is a TSan "fiber", made with it and destroyed with its stack, and the
 * scheduler loop is the fiber TSan made for the worker thread.  Switches
 * synchronise (flag 0): what a goroutine did before it switched away does
 * happen before what the next context on its worker does. */

#ifdef CHAN_TSAN
static void tsan_fiber_make(struct chan_fiber *f)
{
    f->tsan = __tsan_create_fiber(0);
}

static void tsan_fiber_thread(struct chan_fiber *f)
{
    f->tsan = __tsan_get_current_fiber();
}

static void tsan_fiber_enter(struct chan_fiber *to)
{
    __tsan_switch_to_fiber(to->tsan, 0);
}

static void tsan_fiber_free(struct chan_fiber *f)
{
    __tsan_destroy_fiber(f->tsan);
}

/* The unlock callback of a park ends that park: it releases the locks the
 * parked goroutine took.  TSan checks that a mutex is unlocked by its
 * owner, so the callback runs as the parked goroutine's fiber (a switch
 * of TSan's bookkeeping only: the stack stays the next context's).  The
 * callback that frees a finished goroutine's stack (g_free) runs as the
 * next context, which is the one that destroys the goroutine's fiber. */
static void tsan_after_owner(struct chan_worker *w, bool as_current)
{
    w->after_tsan = as_current ? __tsan_get_current_fiber() : NULL;
}

static void tsan_after_call(struct chan_worker *w, void (*fn)(void *), void *arg)
{
    void *owner = w->after_tsan, *self = __tsan_get_current_fiber();
    if (!owner || owner == self) {
        fn(arg);
        return;
    }
    __tsan_switch_to_fiber(owner, 0);
    fn(arg);
    __tsan_switch_to_fiber(self, 0);
}
#else
static inline void tsan_fiber_make(struct chan_fiber *f) { (void)f; }
static inline void tsan_fiber_thread(struct chan_fiber *f) { (void)f; }
static inline void tsan_fiber_enter(struct chan_fiber *to) { (void)to; }
static inline void tsan_fiber_free(struct chan_fiber *f) { (void)f; }
static inline void tsan_after_owner(struct chan_worker *w, bool as_current)
{
    (void)w;
    (void)as_current;
}
static inline void tsan_after_call(struct chan_worker *w, void (*fn)(void *), void *arg)
{
    (void)w;
    fn(arg);
}
#endif

/* ------------------------------------------------------------------------
 * Switching */

static void run_after(struct chan_worker *w)
{
    void (*fn)(void *) = w->after;
    if (fn) {
        w->after = NULL;
        tsan_after_call(w, fn, w->after_arg);
    }
}

/* Switch from one context to another on worker w; `dying` means `from`
 * will never run again (ASan then frees its fake stack).  When `from` is
 * resumed, it first runs whatever the context that left asked for. */
static void fiber_switch(struct chan_worker *w, struct chan_fiber *from,
                         struct chan_fiber *to, bool dying)
{
    atomic_store_explicit(&w->progress,
                          atomic_load_explicit(&w->progress, memory_order_relaxed) + 1,
                          memory_order_relaxed);
#ifdef CHAN_SANITIZERS
    __sanitizer_start_switch_fiber(dying ? NULL : &from->fake, to->lo, to->size);
#else
    (void)dying;
#endif
    tsan_fiber_enter(to);
    chani_ctx_switch(&from->ctx, &to->ctx);
#ifdef CHAN_SANITIZERS
    __sanitizer_finish_switch_fiber(from->fake, NULL, NULL);
#endif
    run_after(w);
}

static void g_main(void *arg);

/* A fresh goroutine is about to run for the first time, on w: from now on
 * it belongs to w. */
static void g_prepare(struct chan_worker *w, chan_g *g)
{
    if (g->started)
        return;
    g->started = true;
    g->w = w;
}

/* Leave goroutine g for the next ready one, or for the scheduler loop when
 * there is none or when it is time to look at the inbox and the timers. */
static void switch_away(struct chan_worker *w, chan_g *g, bool dying)
{
    chan_g *next = NULL;
    /* With a socket to wait on, go through the loop: it gives the socket
     * up before running anything, or waits on it. */
    if ((++w->switches % POLL_EVERY) != 0 && !w->poll_ops &&
        !atomic_load_explicit(&w->inbox, memory_order_relaxed))
        next = pick(w);
    if (next == g) {            /* readied before it finished parking */
        w->cur = g;
        run_after(w);
        return;
    }
    if (next) {
        g_prepare(w, next);
        w->cur = next;
        fiber_switch(w, &g->f, &next->f, dying);
    } else {
        w->cur = NULL;
        fiber_switch(w, &g->f, &w->sched, dying);
    }
}

/* errno is per thread, and a worker's goroutines share their thread: each
 * keeps its own errno across the switches it makes. */
void chani_sched_park(void (*unlock)(void *), void *arg)
{
    struct chan_worker *w = tls_worker;
    int saved = errno;
    w->after = unlock;
    w->after_arg = arg;
    tsan_after_owner(w, true);
    switch_away(w, w->cur, false);
    errno = saved;
}

void chani_sched_ready(chan_g *g)
{
    struct chan_worker *w = g->w;
    if (w == tls_worker) {
        rq_push(w, g);
        return;
    }
    inbox_push(w, g);
    worker_wake(w);
}

chan_g *chani_sched_self(void)
{
    struct chan_worker *w = tls_worker;
    return w ? w->cur : NULL;
}

bool chani_sched_can_poll(void)
{
    struct chan_worker *w = tls_worker;
    return w && w->cur && !w->poll_ops && w->evfd >= 0 && !w->rq_head &&
           !atomic_load_explicit(&w->inbox, memory_order_relaxed) &&
           !atomic_load_explicit(&w->nfresh, memory_order_relaxed);
}

void chani_sched_set_poll(int fd, const chan_poll_ops_t *ops, void *ctx)
{
    struct chan_worker *w = tls_worker;
    w->poll_fd = fd;
    w->poll_ops = ops;
    w->poll_ctx = ctx;
}

int chani_sched_defer(void (*fn)(void *), void *arg)
{
    struct chan_worker *w = tls_worker;
    if (!w || !w->cur)
        return -1;
    for (int i = 0; i < w->ndeferred; i++)
        if (w->deferred[i].fn == fn && w->deferred[i].arg == arg)
            return 0;
    if (w->ndeferred == DEFER_MAX)
        return -1;
    w->deferred[w->ndeferred++] = (struct chan_deferred){ fn, arg };
    return 1;
}

static void run_deferred(struct chan_worker *w)
{
    while (w->ndeferred) {
        struct chan_deferred d = w->deferred[--w->ndeferred];
        d.fn(d.arg);
    }
}

/* Give the socket up: read what is there (a reply may have come since the
 * last look) and let go of the reader role.  On the worker's own stack. */
static void poll_finish(struct chan_worker *w, bool read)
{
    const chan_poll_ops_t *ops = w->poll_ops;
    w->poll_ops = NULL;
    if (read)
        ops->read(w->poll_ctx);
    ops->done(w->poll_ctx);
}

/* Nothing to run and a socket to wait on: sleep in poll() on it and on the
 * eventfd, until a reply comes, a waker writes the eventfd, or the next
 * deadline.  The reply is read right here, on the worker's stack, and the
 * goroutine it readies goes on this worker's run queue: one wake-up per
 * reply.  No spinning first: the reply is a network round trip away, and
 * a spin would take the core from the process that has to answer. */
static bool others_have_fresh(struct chan_worker *w);
static bool has_work(struct chan_worker *w);

static void idle_poll(struct chan_worker *w)
{
    /* First poll without sleeping (see the client's read_spin_ns), giving
     * the core to whoever wants it between looks. */
    int64_t end = chan_mono_ns() + w->poll_ops->spin_ns();
    do {
        /* Other workers' fresh goroutines too: idle() steals them if their
         * worker stays busy, and a worker asleep on a socket would not. */
        if (atomic_load_explicit(&w->inbox, memory_order_relaxed) ||
            atomic_load_explicit(&w->nfresh, memory_order_relaxed) || others_have_fresh(w) ||
            w->poll_ops->read(w->poll_ctx)) {
            poll_finish(w, false);
            return;
        }
        sched_yield();
    } while (chan_mono_ns() < end);
    struct pollfd p[2] = { { w->poll_fd, POLLIN, 0 }, { w->evfd, POLLIN, 0 } };
    atomic_store_explicit(&w->sleeping, 2, memory_order_seq_cst);
    atomic_fetch_add_explicit(&nidle, 1, memory_order_seq_cst);
    if (!has_work(w)) {
        int64_t left = next_deadline_ms(w);
        int ms = left > 1000000 ? 1000000 : (int)left;
        if (poll(p, 2, ms) < 0)
            p[0].revents = p[1].revents = 0;
    }
    atomic_store_explicit(&w->sleeping, 0, memory_order_seq_cst);
    atomic_fetch_sub_explicit(&nidle, 1, memory_order_seq_cst);
    if (p[1].revents) {
        /* A waker that saw sleeping == 2 may write after this read: the
         * count left over costs one early return from a later poll. */
        uint64_t v;
        (void)!read(w->evfd, &v, sizeof v);
    }
    poll_finish(w, true);
}

static void g_free(void *arg)
{
    chan_g *g = arg;
    tsan_fiber_free(&g->f);
    chani_stack_put(g->stack);
}

static void g_main(void *arg)
{
    chan_g *g = arg;
#ifdef CHAN_SANITIZERS
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    struct chan_worker *w = g->w;
    run_after(w);
    g->fn(g->arg);
    /* The stack cannot be freed while we run on it: the next context does
     * it, like an unlock after a park. */
    w->after = g_free;
    w->after_arg = g;
    tsan_after_owner(w, false);
    switch_away(w, g, true);
    abort();   /* never resumed */
}

/* ------------------------------------------------------------------------
 * The worker loop */

static bool others_have_fresh(struct chan_worker *w)
{
    for (int i = 0, n = procs(); i < n; i++)
        if (&workers[i] != w && atomic_load_explicit(&workers[i].nfresh, memory_order_seq_cst))
            return true;
    return false;
}

static bool has_work(struct chan_worker *w)
{
    return atomic_load_explicit(&w->inbox, memory_order_seq_cst) ||
           atomic_load_explicit(&w->nfresh, memory_order_seq_cst) || others_have_fresh(w);
}

/* Nothing to run: poll a little (a wake-up from a goroutine on another
 * worker usually comes within microseconds, and catching it here saves two
 * system calls), then sleep until woken or until the next deadline.
 *
 * Returns true when the caller should steal: another worker's fresh
 * goroutines have stayed unclaimed for STEAL_GRACE polls.  Stealing at once
 * would take the goroutine that a busy worker's running goroutine has just
 * started and is about to talk to (Go keeps it in runnext for the same
 * reason): the pair would then ping-pong across threads for good, since a
 * started goroutine never moves.  A worker that stays busy for a few
 * microseconds does lose its fresh goroutines. */
static void snapshot_progress(struct chan_worker *w)
{
    for (int i = 0, n = procs(); i < n; i++)
        w->seen[i] = atomic_load_explicit(&workers[i].progress, memory_order_relaxed);
}

static bool idle(struct chan_worker *w, bool steal_failed)
{
    int seen = 0;
    /* After a steal found every busy worker making progress, sleep a
     * little instead of spinning again: their queues will move, and if
     * one gets stuck we look again within STEAL_RECHECK_MS. */
    bool recheck = steal_failed;
    atomic_fetch_add_explicit(&nspinning, 1, memory_order_seq_cst);
    /* Once another worker's fresh goroutines are in sight, polls go on
     * (up to SPIN_ROUNDS) until STEAL_GRACE of them: however short the
     * polling has become, a goroutine left behind a busy one is taken. */
    for (int i = 0; i < (seen ? SPIN_ROUNDS : w->spin_rounds) && !steal_failed; i++) {
        if (atomic_load_explicit(&w->inbox, memory_order_relaxed) ||
            atomic_load_explicit(&w->nfresh, memory_order_relaxed)) {
            atomic_fetch_sub_explicit(&nspinning, 1, memory_order_seq_cst);
            if (w->spin_rounds < SPIN_ROUNDS)
                w->spin_rounds *= 2;   /* polling paid: poll as long next time */
            return false;
        }
        if (others_have_fresh(w)) {
            if (seen == 0)
                snapshot_progress(w);
            if (++seen >= STEAL_GRACE) {
                atomic_fetch_sub_explicit(&nspinning, 1, memory_order_seq_cst);
                return true;
            }
        }
        for (int j = 0; j < 16; j++)
            chani_cpu_relax();
    }
    atomic_fetch_sub_explicit(&nspinning, 1, memory_order_seq_cst);
    /* Polling found nothing: poll less next time.  Where wake-ups come late
     * (goroutines waiting on a daemon that shares these CPUs), the polls
     * only take CPU time from the threads that would bring the work. */
    if (!steal_failed && w->spin_rounds > SPIN_ROUNDS_MIN)
        w->spin_rounds /= 2;

    atomic_store_explicit(&w->sleeping, 1, memory_order_seq_cst);
    atomic_fetch_add_explicit(&nidle, 1, memory_order_seq_cst);
    bool work = recheck ? atomic_load_explicit(&w->inbox, memory_order_seq_cst) ||
                          atomic_load_explicit(&w->nfresh, memory_order_seq_cst)
                        : has_work(w);
    if (!work) {
        int64_t left = next_deadline_ms(w);
        if (recheck && (left < 0 || left > STEAL_RECHECK_MS))
            left = STEAL_RECHECK_MS;
        struct timespec rel = { .tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000L };
        if (left != 0)
            chani_futex_wait(&w->sleeping, 1, left < 0 ? NULL : &rel);
    }
    atomic_store_explicit(&w->sleeping, 0, memory_order_seq_cst);
    atomic_fetch_sub_explicit(&nidle, 1, memory_order_seq_cst);
    return false;
}

static void sched_loop(struct chan_worker *w)
{
    bool may_steal = false, steal_failed = false;
    for (;;) {
        run_after(w);
        run_deferred(w);
        inbox_drain(w);
        timers_run(w);
        chan_g *g = pick(w);
        if (w->poll_ops) {
            if (!g) {
                idle_poll(w);
                continue;
            }
            poll_finish(w, true);
        }
        if (!g && may_steal) {
            g = steal(w);
            steal_failed = !g;
        }
        may_steal = false;
        if (!g) {
            may_steal = idle(w, steal_failed);
            steal_failed = false;
            continue;
        }
        g_prepare(w, g);
        w->cur = g;
        fiber_switch(w, &w->sched, &g->f, false);
    }
}

/* A goroutine ran into its guard page: say so and abort.  Anything else
 * goes to the handler that was there before ours. */
static void segv_handler(int sig, siginfo_t *si, void *uctx)
{
    struct chan_worker *w = tls_worker;
    chan_g *g = w ? w->cur : NULL;
    if (g && chani_stack_guard_hit(g->stack, si->si_addr)) {
        static const char msg[] = "goroutine stack overflow\n";
        ssize_t rc = write(2, msg, sizeof msg - 1);
        (void)rc;
        signal(SIGABRT, SIG_DFL);
        abort();
    }
    if (old_segv.sa_flags & SA_SIGINFO) {
        old_segv.sa_sigaction(sig, si, uctx);
    } else if (old_segv.sa_handler != SIG_DFL && old_segv.sa_handler != SIG_IGN) {
        old_segv.sa_handler(sig);
    } else {
        /* Restore the default and return: the fault happens again and
         * kills the process as it would have without us. */
        sigaction(SIGSEGV, &old_segv, NULL);
    }
}

static void *worker_main(void *arg)
{
    struct chan_worker *w = arg;
    tls_worker = w;
    chani_stack_batches();   /* a worker's stack cache lives as long as the process */
    tsan_fiber_thread(&w->sched);
    stack_t ss = { .ss_sp = w->altstack, .ss_size = 64 * 1024, .ss_flags = 0 };
    sigaltstack(&ss, NULL);
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *lo;
        size_t size;
        pthread_attr_getstack(&attr, &lo, &size);
        w->sched.lo = lo;
        w->sched.size = size;
        pthread_attr_destroy(&attr);
    }
    char name[16];
    snprintf(name, sizeof name, "chan-w%d", w->id);
    pthread_setname_np(pthread_self(), name);
    sched_loop(w);
    return NULL;
}

static int procs_wanted(void)
{
    const char *env = getenv("CHAN_PROCS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (!*end && n >= 1)
            return n > MAX_PROCS ? MAX_PROCS : (int)n;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set) > MAX_PROCS ? MAX_PROCS : CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_PROCS ? MAX_PROCS : (int)n;
}

static void sched_start(void)
{
    int n = procs_wanted();
    workers = aligned_alloc(64, sizeof *workers * (size_t)n);
    if (!workers) {
        start_errno = EAGAIN;
        return;
    }
    memset(workers, 0, sizeof *workers * (size_t)n);
    for (int i = 0; i < n; i++) {
        workers[i].id = i;
        workers[i].spin_rounds = SPIN_ROUNDS;
        /* Without one the worker just never waits on a socket. */
        workers[i].evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        workers[i].altstack = malloc(64 * 1024);
        workers[i].seen = calloc((size_t)n, sizeof *workers[i].seen);
        if (!workers[i].altstack || !workers[i].seen) {
            start_errno = EAGAIN;
            return;
        }
    }
    chani_stack_default_size();

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);

    /* Workers take no asynchronous signals: those are the application's,
     * for its own threads.  Faults still reach the faulting thread. */
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGTRAP);
    sigdelset(&all, SIGABRT);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    atomic_store_explicit(&nworkers, n, memory_order_relaxed);
    int started = 0;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
            break;
        pthread_detach(workers[i].thread);
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started < n) {
        /* Goroutines already placed on a worker that never started would
         * never run; none exist yet, so a smaller pool is still correct. */
        atomic_store_explicit(&nworkers, started, memory_order_relaxed);
        if (started == 0)
            start_errno = EAGAIN;
    }
}

static int sched_ensure(void)
{
    pthread_once(&start_once, sched_start);
    if (start_errno) {
        errno = start_errno;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Placement: least busy of this worker and one other chosen at random
 * (two choices balance nearly as well as looking at all, at O(1) cost),
 * preferring this worker unless it is clearly busier: a local start needs
 * no cross-thread wake-up and keeps related goroutines together.  From a
 * plain thread: the least busy worker, ties round-robin. */

static size_t worker_load(struct chan_worker *w)
{
    return atomic_load_explicit(&w->nfresh, memory_order_relaxed) +
           atomic_load_explicit(&w->rq_len, memory_order_relaxed);
}

static struct chan_worker *place(struct chan_worker *self)
{
    int n = procs();
    if (n == 1)
        return &workers[0];
    if (self) {
        uint32_t r = chani_rand_below((uint32_t)n - 1);
        struct chan_worker *other = &workers[r >= (uint32_t)self->id ? r + 1 : r];
        return worker_load(self) <= worker_load(other) + PLACE_SLACK ? self : other;
    }
    unsigned start = atomic_fetch_add_explicit(&place_rr, 1, memory_order_relaxed);
    struct chan_worker *best = NULL;
    size_t best_load = SIZE_MAX;
    for (int i = 0; i < n; i++) {
        struct chan_worker *v = &workers[(start + (unsigned)i) % (unsigned)n];
        size_t l = worker_load(v);
        if (l < best_load) {
            best = v;
            best_load = l;
        }
    }
    return best;
}

/* A goroutine that starts goroutines faster than they run (a loop of
 * chan_go) lets one of them run before going on, so the backlog, and the
 * fresh stacks it holds, stay bounded and exited stacks are reused hot. */
static void run_fresh(struct chan_worker *w)
{
    chan_g *g = w->cur, *next = fresh_pop(w);
    if (!next)
        return;
    int saved = errno;
    rq_push(w, g);
    g_prepare(w, next);
    w->cur = next;
    fiber_switch(w, &g->f, &next->f, false);
    errno = saved;
}

int chan_go_stack(void (*fn)(void *arg), void *arg, size_t stack_size)
{
    chani_errmsg_clear();
    if (!fn || (stack_size && stack_size < 16 * 1024)) {
        errno = EINVAL;
        return -1;
    }
    if (sched_ensure() < 0)
        return -1;
    chan_stack_t *s = chani_stack_get(stack_size);
    if (!s)
        return -1;
    uintptr_t top = ((uintptr_t)s - sizeof(chan_g)) & ~(uintptr_t)63;
    chan_g *g = (chan_g *)top;
    g->next = NULL;
    g->w = NULL;
    g->fn = fn;
    g->arg = arg;
    g->stack = s;
    g->started = false;
    g->f.lo = s->lo;
    g->f.size = top - (uintptr_t)s->lo;
    g->f.fake = NULL;
    tsan_fiber_make(&g->f);
    /* Made here, so that the goroutine starts with the floating-point
     * environment of its creator, as a thread from pthread_create does. */
    chani_ctx_make(&g->f.ctx, s->lo, g->f.size, g_main, g);

    struct chan_worker *self = tls_worker;
    struct chan_worker *target = place(self);
    fresh_push(target, g);
    /* Someone must get to it soon: the target if it sleeps, else an idle
     * worker that will steal it if the target stays busy. */
    if (target == self || !worker_wake(target))
        wake_idle_for(target);
    if (target == self && self->cur &&
        atomic_load_explicit(&self->nfresh, memory_order_relaxed) > SPAWN_BACKLOG)
        run_fresh(self);
    return 0;
}

int chan_go(void (*fn)(void *arg), void *arg)
{
    return chan_go_stack(fn, arg, 0);
}

void chan_yield(void)
{
    struct chan_worker *w = tls_worker;
    chan_g *g = w ? w->cur : NULL;
    if (!g) {
        sched_yield();
        return;
    }
    int saved = errno;
    rq_push(w, g);
    w->after = NULL;
    switch_away(w, g, false);
    errno = saved;
}

int chan_procs(void)
{
    chani_errmsg_clear();
    if (sched_ensure() < 0)
        return -1;
    return procs();
}

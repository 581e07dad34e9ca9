/*
 * check_sched.c - goroutines, the scheduler and the waiter: starting,
 * yielding, sleeping, never migrating, FP state, stacks and their overflow,
 * wait groups, load balancing, and the waiter contract used by the remote
 * client (claim/wake from any thread, early wakes, deadlines, unlock order).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <fenv.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rt_test.h"
#include "runtime/chan_stack.h"
#include "runtime/chan_wait.h"

static _Atomic long counter;

static void count_up(void *p)
{
    (void)p;
    atomic_fetch_add(&counter, 1);
}

/* many goroutines run, from a thread or a goroutine, and a wait group sees
 * them all finish */
RT_TEST(goroutines_run)
{
    atomic_store(&counter, 0);
    rt_group_t g;
    rt_group_init(&g);
    for (int i = 0; i < 5000; i++)
        rt_spawn(&g, MODE_GOROUTINE, count_up, NULL);
    rt_join(&g);
    ck_assert_int_eq(atomic_load(&counter), 5000);
}

static void spawn_tree(void *p)
{
    long depth = (long)p;
    atomic_fetch_add(&counter, 1);
    if (depth == 0)
        return;
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, MODE_GOROUTINE, spawn_tree, (void *)(depth - 1));
    rt_spawn(&g, MODE_GOROUTINE, spawn_tree, (void *)(depth - 1));
    rt_join(&g);
}

/* goroutines start goroutines and wait for them */
START_TEST(goroutine_tree)
{
    atomic_store(&counter, 0);
    rt_run(MODE_GOROUTINE, spawn_tree, (void *)10L);
    ck_assert_int_eq(atomic_load(&counter), 2047);
}
END_TEST

static _Atomic int flag;

static void set_flag(void *p)
{
    (void)p;
    atomic_store(&flag, 1);
}

static void yield_until_flag(void *p)
{
    (void)p;
    int64_t end = chan_now() + 5000;
    while (!atomic_load(&flag) && chan_now() < end)
        chan_yield();
    ck_assert_int_eq(atomic_load(&flag), 1);
}

/* chan_yield lets the other goroutines of the worker run (with one worker
 * the spinning goroutine would otherwise starve the one that sets the flag) */
START_TEST(yield_lets_others_run)
{
    atomic_store(&flag, 0);
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, MODE_GOROUTINE, yield_until_flag, NULL);
    rt_spawn(&g, MODE_GOROUTINE, set_flag, NULL);
    rt_join(&g);
}
END_TEST

static void sleeper(void *p)
{
    (void)p;
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_sleep(t0 + 50), 0);
    ck_assert_int_ge(rt_ms_since(t0), 50);
    /* with one worker the flag can only have been set if sleeping parked
     * just this goroutine */
    ck_assert_int_eq(atomic_load(&flag), 1);
}

static void set_flag_soon(void *p)
{
    (void)p;
    chan_sleep(chan_now() + 5);
    atomic_store(&flag, 1);
}

/* chan_sleep parks the goroutine, not its worker */
START_TEST(sleep_parks_only_the_goroutine)
{
    atomic_store(&flag, 0);
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, MODE_GOROUTINE, sleeper, NULL);
    rt_spawn(&g, MODE_GOROUTINE, set_flag_soon, NULL);
    rt_join(&g);
}
END_TEST

/* chan_sleep from a thread sleeps until the deadline; past deadlines and 0
 * return at once */
RT_TEST(sleep_deadlines)
{
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_sleep(t0 + 20), 0);
    ck_assert_int_ge(rt_ms_since(t0), 20);
    t0 = chan_now();
    ck_assert_int_eq(chan_sleep(0), 0);
    ck_assert_int_eq(chan_sleep(t0 - 100), 0);
    ck_assert_int_lt(rt_ms_since(t0), 1000);
}

struct stay {
    chan_t *in, *out;
    int id;
    bool ok;
};

/* Park in every way there is, checking the thread and errno stay ours. */
static void stay_put(void *p)
{
    struct stay *s = p;
    pthread_t self = pthread_self();
    int *errno_addr = &errno;
    s->ok = true;
    for (int i = 0; i < 200; i++) {
        errno = 1000 + s->id;
        switch (i % 4) {
        case 0:
            chan_yield();
            break;
        case 1:
            chan_sleep(chan_now() + 1);
            break;
        default:
            rt_send_long(s->out, i);
            (void)rt_recv_long(s->in);
            errno = 1000 + s->id;
            chan_yield();
            break;
        }
        if (!pthread_equal(self, pthread_self()) || &errno != errno_addr ||
            errno != 1000 + s->id)
            s->ok = false;
    }
}

static void echo(void *p)
{
    struct stay *s = p;
    for (int i = 0; i < 100; i++)
        rt_send_long(s->in, rt_recv_long(s->out));
}

/* a goroutine never migrates: its thread and errno survive every park */
START_TEST(no_migration)
{
    struct stay s[6];
    rt_group_t g;
    rt_group_init(&g);
    for (int i = 0; i < 6; i++) {
        s[i] = (struct stay){ .in = chan_make(0), .out = chan_make(0), .id = i };
        rt_spawn(&g, MODE_GOROUTINE, stay_put, &s[i]);
        rt_spawn(&g, MODE_GOROUTINE, echo, &s[i]);
    }
    rt_join(&g);
    for (int i = 0; i < 6; i++) {
        ck_assert_msg(s[i].ok, "goroutine %d moved or lost errno", i);
        chan_release(s[i].in);
        chan_release(s[i].out);
    }
}
END_TEST

static void round_down_and_yield(void *p)
{
    bool *ok = p;
    fesetround(FE_DOWNWARD);
    *ok = true;
    for (int i = 0; i < 100; i++) {
        chan_yield();
        volatile double x = 1.0, y = 3.0;
        if (fegetround() != FE_DOWNWARD || x / y > 0.3333333333333333)
            *ok = false;
    }
}

static void check_nearest(void *p)
{
    bool *ok = p;
    *ok = true;
    for (int i = 0; i < 100; i++) {
        chan_yield();
        if (fegetround() != FE_TONEAREST)
            *ok = false;
    }
}

/* the floating-point control state belongs to the goroutine */
START_TEST(fp_state_per_goroutine)
{
    bool a = false, b = false;
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, MODE_GOROUTINE, round_down_and_yield, &a);
    rt_spawn(&g, MODE_GOROUTINE, check_nearest, &b);
    rt_join(&g);
    ck_assert(a);
    ck_assert(b);
}
END_TEST

static void noop(void *p)
{
    (void)p;
}

static size_t use_stack(size_t depth)
{
    volatile char frame[1024];
    frame[0] = (char)depth;
    frame[1023] = 1;
    if (depth == 0)
        return frame[0];
    return use_stack(depth - 1) + frame[1023];
}

struct deep_arg {
    size_t depth;
    chan_wg_t *wg;
};

static void deep(void *p)
{
    struct deep_arg *a = p;
    a->depth = use_stack(a->depth);
    chan_wg_done(a->wg);
}

/* stack sizes: below 16 KiB is EINVAL; a big stack holds deep recursion */
START_TEST(stack_sizes)
{
    errno = 0;
    ck_assert_int_eq(chan_go_stack(noop, NULL, 8192), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(chan_go(NULL, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    struct deep_arg a = { .depth = 1500, .wg = chan_wg_make() };   /* ~1.5 MiB */
    chan_wg_add(a.wg, 1);
    ck_assert_int_eq(chan_go_stack(deep, &a, 4 << 20), 0);
    ck_assert_int_eq(chan_wg_wait(a.wg, chan_now() + 5000), 0);
    ck_assert_int_eq(a.depth, 1500);
    chan_wg_free(a.wg);
}
END_TEST

static volatile size_t no_limit = SIZE_MAX;

static size_t recurse_forever(size_t n)
{
    volatile char frame[256];
    frame[0] = (char)n;
    if (n == no_limit)
        return 0;
    return recurse_forever(n + 1) + frame[0];
}

static void overflow(void *p)
{
    (void)p;
    recurse_forever(0);
}

/* running off the stack prints "goroutine stack overflow" and aborts */
START_TEST(stack_overflow_reported)
{
    int pipefd[2];
    ck_assert_int_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        chan_go(overflow, NULL);
        sleep(10);
        _exit(0);
    }
    close(pipefd[1]);
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(pipefd[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(pipefd[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "child did not abort (status %d)", status);
    ck_assert_msg(strstr(buf, "goroutine stack overflow"), "stderr was: %s", buf);
}
END_TEST

/* How a child that touches *p dies: 0 if it does not. */
static int touch_in_child(volatile char *p, bool write)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        if (write)
            *p = 1;
        else
            (void)*p;
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    return WIFSIGNALED(status) ? WTERMSIG(status) : -1;
}

/* Default-size stacks are mapped many at a time (a slab) and guarded by one
 * call: every stack of several slabs is writable down to its lowest byte,
 * and the byte below it faults. */
START_TEST(every_stack_of_a_slab_is_guarded)
{
    enum { N = 130 };   /* over two slabs of 64 KiB stacks, eight of 256 KiB */
    chan_stack_t *s[N];
    for (int i = 0; i < N; i++) {
        s[i] = chani_stack_get(0);
        ck_assert_ptr_nonnull(s[i]);
    }
    for (int i = 0; i < N; i++) {
        char *lo = s[i]->lo;
        ck_assert_msg(touch_in_child(lo, true) == 0, "stack %d: its lowest byte faults", i);
        int sig = touch_in_child(lo - 1, false);
        ck_assert_msg(sig == SIGSEGV || sig == SIGBUS,
                      "stack %d: the byte below it does not fault (%d)", i, sig);
    }
    for (int i = 0; i < N; i++)
        chani_stack_put(s[i]);
}
END_TEST

/* A thread that takes n stacks (with the caches of a worker if `batches`),
 * writes its id at each one's lowest and highest byte, and keeps them. */
struct stack_taker {
    bool batches;
    int n, id;
    chan_stack_t *s[600];
};

static void *take_stacks(void *arg)
{
    struct stack_taker *t = arg;
    if (t->batches)
        chani_stack_batches();
    for (int i = 0; i < t->n; i++) {
        t->s[i] = chani_stack_get(0);
        if (!t->s[i])
            return NULL;
        char *lo = t->s[i]->lo;
        lo[0] = (char)t->id;
        lo[t->s[i]->size - sizeof(chan_stack_t) - 1] = (char)t->id;
    }
    return t;
}

static void *put_stacks(void *arg)
{
    struct stack_taker *t = arg;
    if (t->batches)
        chani_stack_batches();
    for (int i = 0; i < t->n; i++)
        chani_stack_put(t->s[i]);
    return t;
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return (x > y) - (x < y);
}

/* Stacks go between threads' caches and the shared one a batch at a time:
 * after one worker-like thread has given back 600 (over two cacheloads),
 * two others take them again, one in batches, one singly, while the first
 * takes more: no stack is handed out twice, and each keeps what its taker
 * wrote. */
START_TEST(stack_batches_hand_each_stack_out_once)
{
    static struct stack_taker a = { .batches = true, .n = 600, .id = 1 };
    static struct stack_taker b = { .batches = true, .n = 600, .id = 2 };
    static struct stack_taker c = { .batches = false, .n = 300, .id = 3 };
    static struct stack_taker d = { .batches = true, .n = 300, .id = 4 };
    pthread_t th, tb, tc, td;
    void *r;
    ck_assert_int_eq(pthread_create(&th, NULL, take_stacks, &a), 0);
    pthread_join(th, &r);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(pthread_create(&th, NULL, put_stacks, &a), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(pthread_create(&tb, NULL, take_stacks, &b), 0);
    ck_assert_int_eq(pthread_create(&tc, NULL, take_stacks, &c), 0);
    ck_assert_int_eq(pthread_create(&td, NULL, take_stacks, &d), 0);
    void *rb, *rc, *rd;
    pthread_join(tb, &rb);
    pthread_join(tc, &rc);
    pthread_join(td, &rd);
    ck_assert_ptr_nonnull(rb);
    ck_assert_ptr_nonnull(rc);
    ck_assert_ptr_nonnull(rd);
    static chan_stack_t *all[1200];
    size_t n = 0;
    struct stack_taker *ts[] = { &b, &c, &d };
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < ts[k]->n; i++) {
            char *lo = ts[k]->s[i]->lo;
            ck_assert_int_eq(lo[0], ts[k]->id);
            ck_assert_int_eq(lo[ts[k]->s[i]->size - sizeof(chan_stack_t) - 1], ts[k]->id);
            all[n++] = ts[k]->s[i];
        }
    qsort(all, n, sizeof all[0], cmp_ptr);
    for (size_t i = 1; i < n; i++)
        ck_assert_msg(all[i] != all[i - 1], "stack %p handed out twice", (void *)all[i]);
}
END_TEST

/* A goroutine on the smallest stack chan_go_stack allows starts goroutines
 * from 12,000 bytes down its stack, enough of them that new slabs of
 * stacks are mapped meanwhile: mapping one must not need more of the
 * caller's stack than an ordinary call (it used to put a 4 KiB vector
 * there, and this goroutine ran into its guard). */
static void park_forever(void *arg)
{
    char c;
    chan_recv(arg, &c, 1, -1);
}

struct deep {
    chan_t *never, *done;
    int started;
};

static __attribute__((noinline)) void start_from_deep(struct deep *d)
{
    volatile char burn[12000];
    burn[0] = 1;
    burn[sizeof burn - 1] = 1;
    for (int i = 0; i < 200; i++)
        d->started += chan_go(park_forever, d->never) == 0;
    (void)burn[0];
}

static void deep_starter(void *arg)
{
    struct deep *d = arg;
    start_from_deep(d);
    char one = 1;
    chan_send(d->done, &one, 1, -1);
}

START_TEST(goroutine_on_a_small_stack_starts_goroutines)
{
#if defined(CHAN_SANITIZERS) || defined(CHAN_TSAN)
    /* (their instrumented frames are several times larger: 16 KiB is not
     * a stack this test can measure them on) */
    return;
#endif
    struct deep d = { chan_make(0), chan_make(1), 0 };
    ck_assert_int_eq(chan_go_stack(deep_starter, &d, 16 * 1024), 0);
    char c;
    ck_assert_int_eq(chan_recv(d.done, &c, 1, chan_now() + 10000), 1);
    ck_assert_int_eq(d.started, 200);
}
END_TEST

/* chan_procs is CHAN_PROCS */
START_TEST(procs_from_environment)
{
    ck_assert_int_eq(chan_procs(), atoi(getenv("CHAN_PROCS")));
}
END_TEST

static _Atomic int started;

static void spin_until_both(void *p)
{
    bool *ok = p;
    atomic_fetch_add(&started, 1);
    int64_t end = chan_now() + 3000;
    /* never yields: the other can only start on another worker */
    while (atomic_load(&started) < 2 && chan_now() < end)
        ;
    *ok = atomic_load(&started) == 2;
}

/* with two workers, two goroutines that never yield run side by side, from
 * a thread and from a goroutine (placement or stealing spreads them) */
RT_TEST(busy_goroutines_spread)
{
    if (chan_procs() < 2)
        return;
    atomic_store(&started, 0);
    bool a = false, b = false;
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, MODE_GOROUTINE, spin_until_both, &a);
    rt_spawn(&g, MODE_GOROUTINE, spin_until_both, &b);
    rt_join(&g);
    ck_assert(a && b);
}

static _Atomic int behind_ran;
static _Atomic long behind_waited;

static void sleep_late(void *p)
{
    for (int i = 0; i < 20; i++)
        chan_sleep(chan_now() + 1);
    chan_wg_done(p);
}

static void left_behind(void *p)
{
    (void)p;
    atomic_store(&behind_ran, 1);
}

static void start_and_spin(void *p)
{
    int64_t t0 = chan_now();
    chan_go(left_behind, NULL);
    while (!atomic_load(&behind_ran) && chan_now() - t0 < 3000)
        ;   /* no switch point: the other can only run on another worker */
    atomic_store(&behind_waited, (long)(chan_now() - t0));
    chan_wg_done(p);
}

/* After a quiet spell (goroutines sleeping, every wake-up later than an
 * idle worker polls for, so that the workers poll less and less), a
 * goroutine started by one that then runs without a switch point is still
 * taken by the idle worker.  Idle workers whose polling had shrunk below
 * the steal grace once never stole at all. */
START_TEST(left_behind_goroutine_taken_after_quiet_spell)
{
    if (chan_procs() < 2)
        return;
    chan_wg_t *wg = chan_wg_make();
    chan_wg_add(wg, 8);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(chan_go(sleep_late, wg), 0);
    ck_assert_int_eq(chan_wg_wait(wg, chan_now() + 10000), 0);
    usleep(20000);   /* every worker asleep, its polling shrunk */
    atomic_store(&behind_ran, 0);
    chan_wg_add(wg, 1);
    ck_assert_int_eq(chan_go(start_and_spin, wg), 0);
    ck_assert_int_eq(chan_wg_wait(wg, chan_now() + 10000), 0);
    ck_assert_msg(atomic_load(&behind_ran) && atomic_load(&behind_waited) < 1000,
                  "the goroutine left behind ran: %d, after %ld ms", atomic_load(&behind_ran),
                  atomic_load(&behind_waited));
    chan_wg_free(wg);
}
END_TEST

static void churn(void *p)
{
    chan_t *c = p;
    (void)rt_recv_long(c);
}

/* thousands of goroutines parked at once, then released; stacks are
 * reused round after round */
START_TEST(many_parked)
{
    for (int round = 0; round < 3; round++) {
        chan_t *c = chan_make(0);
        rt_group_t g;
        rt_group_init(&g);
        for (int i = 0; i < 3000; i++)
            rt_spawn(&g, MODE_GOROUTINE, churn, c);
        for (int i = 0; i < 3000; i++)
            rt_send_long(c, i);
        rt_join(&g);
        chan_release(c);
    }
}
END_TEST

/* ---- wait groups --------------------------------------------------------- */

RT_TEST(wait_group_rules)
{
    chan_wg_t *wg = chan_wg_make();
    ck_assert_int_eq(chan_wg_wait(wg, 0), 0);          /* zero: at once */
    ck_assert_int_eq(chan_wg_add(wg, 2), 0);
    errno = 0;
    ck_assert_int_eq(chan_wg_add(wg, -3), -1);         /* below zero */
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(chan_wg_wait(wg, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_wg_wait(wg, t0 + 20), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(rt_ms_since(t0), 20);
    ck_assert_int_eq(chan_wg_done(wg), 0);
    ck_assert_int_eq(chan_wg_done(wg), 0);             /* count was 2 */
    ck_assert_int_eq(chan_wg_done(wg), -1);
    ck_assert_int_eq(chan_wg_wait(wg, 0), 0);
    ck_assert_int_eq(chan_wg_add(NULL, 1), -1);
    chan_wg_free(wg);
}

static void wg_waiter(void *p)
{
    ck_assert_int_eq(chan_wg_wait(p, chan_now() + 5000), 0);
    atomic_fetch_add(&counter, 1);
}

/* every waiter, thread or goroutine, is released when the count hits 0 */
RT_TEST(wait_group_releases_all)
{
    atomic_store(&counter, 0);
    chan_wg_t *wg = chan_wg_make();
    chan_wg_add(wg, 1);
    rt_group_t g;
    rt_group_init(&g);
    for (int i = 0; i < 6; i++)
        rt_spawn(&g, i % 2, wg_waiter, wg);
    chan_sleep(chan_now() + 10);
    ck_assert_int_eq(atomic_load(&counter), 0);
    chan_wg_done(wg);
    rt_join(&g);
    ck_assert_int_eq(atomic_load(&counter), 6);
    chan_wg_free(wg);
}

static _Atomic unsigned wg_flip;

static void wg_done_later(void *p)
{
    if (atomic_fetch_add(&wg_flip, 1) & 1)
        chan_yield();
    ck_assert_int_eq(chan_wg_done(p), 0);
}

/* Adds that stay above zero take no lock, only the add to zero does: round
 * after round, dones race with waiters arriving, and every waiter returns
 * (a waiter that saw the count above zero must be queued before it can
 * reach zero, else its wake is lost and it waits out its deadline). */
RT_TEST(wait_group_rounds_race_waiters)
{
    for (int round = 0; round < 2000; round++) {
        chan_wg_t *wg = chan_wg_make();
        ck_assert_int_eq(chan_wg_add(wg, 4), 0);
        rt_group_t g;
        rt_group_init(&g);
        for (int i = 0; i < 4; i++)
            rt_spawn(&g, (round + i) % 2 ? mode : MODE_GOROUTINE, wg_done_later, wg);
        atomic_store(&counter, 0);
        rt_spawn(&g, mode, wg_waiter, wg);
        ck_assert_int_eq(chan_wg_wait(wg, chan_now() + 5000), 0);
        rt_join(&g);
        ck_assert_int_eq(atomic_load(&counter), 1);
        ck_assert_int_eq(chan_wg_wait(wg, 0), 0);
        chan_wg_free(wg);
    }
}

/* ---- the waiter contract ---------------------------------------------------- */

struct waitbox {
    chan_waiter_t *_Atomic w;
    _Atomic int unlocked;
    int64_t deadline;
    int result;
    int early;              /* claim and wake before parking */
};

static void box_unlock(void *p)
{
    struct waitbox *b = p;
    atomic_fetch_add(&b->unlocked, 1);
}

static void box_park(void *p)
{
    struct waitbox *b = p;
    chan_waiter_t w;
    chani_waiter_init(&w);
    if (b->early) {
        ck_assert(chani_waiter_claim(&w));
        w.index = 7;
        chani_waiter_wake(&w);
    } else {
        atomic_store(&b->w, &w);
    }
    b->result = chani_waiter_park(&w, b->deadline, box_unlock, b);
    ck_assert_int_eq(atomic_load(&b->unlocked), 1);
}

static void *waker_thread(void *p)
{
    struct waitbox *b = p;
    chan_waiter_t *w;
    while (!(w = atomic_load(&b->w)) || !atomic_load(&b->unlocked))
        usleep(100);
    /* a plain thread (not a worker) fires the waiter */
    if (chani_waiter_claim(w)) {
        w->index = 3;
        chani_waiter_wake(w);
    }
    return NULL;
}

/* a waiter is woken from a thread that is not a worker, once parked (the
 * unlock callback has run); an early wake makes park return at once; a
 * deadline self-claims as CHAN_WAIT_TIMEOUT */
RT_TEST(waiter_contract)
{
    struct waitbox b = { .deadline = -1 };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, waker_thread, &b), 0);
    rt_run(mode, box_park, &b);
    pthread_join(th, NULL);
    ck_assert_int_eq(b.result, 3);

    struct waitbox e = { .deadline = -1, .early = 1 };
    rt_run(mode, box_park, &e);
    ck_assert_int_eq(e.result, 7);

    struct waitbox t = { .deadline = chan_now() + 20 };
    int64_t t0 = chan_now();
    rt_run(mode, box_park, &t);
    ck_assert_int_eq(t.result, CHAN_WAIT_TIMEOUT);
    ck_assert_int_ge(rt_ms_since(t0), 20);
}

static Suite *sched_suite(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("goroutines");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, goroutines_run, 0, MODES);
    tcase_add_test(tc, goroutine_tree);
    tcase_add_test(tc, yield_lets_others_run);
    tcase_add_test(tc, sleep_parks_only_the_goroutine);
    tcase_add_loop_test(tc, sleep_deadlines, 0, MODES);
    tcase_add_test(tc, no_migration);
    tcase_add_test(tc, fp_state_per_goroutine);
    tcase_add_test(tc, stack_sizes);
    tcase_add_test(tc, stack_overflow_reported);
    tcase_add_test(tc, every_stack_of_a_slab_is_guarded);
    tcase_add_test(tc, stack_batches_hand_each_stack_out_once);
    tcase_add_test(tc, goroutine_on_a_small_stack_starts_goroutines);
    tcase_add_test(tc, procs_from_environment);
    tcase_add_loop_test(tc, busy_goroutines_spread, 0, MODES);
    tcase_add_test(tc, many_parked);
    tcase_add_test(tc, left_behind_goroutine_taken_after_quiet_spell);
    suite_add_tcase(s, tc);

    tc = tcase_create("waiting");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, wait_group_rules, 0, MODES);
    tcase_add_loop_test(tc, wait_group_releases_all, 0, MODES);
    tcase_add_loop_test(tc, wait_group_rounds_race_waiters, 0, MODES);
    tcase_add_loop_test(tc, waiter_contract, 0, MODES);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return rt_main(sched_suite);
}

/*
 * rt_test.h - helpers shared by the runtime's Check tests.
 *
 * Most tests run their body twice: in plain threads (MODE_THREAD) and in
 * goroutines (MODE_GOROUTINE), through rt_spawn()/rt_run(), as loop tests
 * whose index is the mode.  rt_main() runs a test binary's suite twice,
 * with CHAN_PROCS=1 and CHAN_PROCS=2: Check forks a child per test and the
 * runtime starts inside it, so each child reads the variable afresh.
 *
 * Where channels live: tests that are about Go's semantics make their
 * channels with rt_make(), which reads RT_CHANNELS from the environment:
 *   local   (the default) chan_make();
 *   remote  every channel a new, uniquely named channel ("rt.<pid>.<n>") on
 *           one chand (daemon A);
 *   split   round robin over daemon A, daemon B and local channels, so that
 *           selects span two daemons and mix local and remote cases.
 * rt_main() starts the daemons once per run of the binary (before Check
 * forks any test) and always stops them.  Each test process connects to
 * them lazily, on its first rt_make(), with one client per daemon shared
 * by all of its threads and goroutines (never in the parent: a client does
 * not survive fork).  make check runs the semantics binaries in all three
 * modes (tests/rt_remote_*.sh, tests/rt_split_*.sh).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef RT_TEST_H
#define RT_TEST_H

#include <check.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "chan/chan.h"

enum { MODE_THREAD = 0, MODE_GOROUTINE = 1, MODES = 2 };

/* A group of spawned contexts to join. */
typedef struct rt_group {
    chan_wg_t *wg;
} rt_group_t;

void rt_group_init(rt_group_t *g);
/* rt_spawn - run fn(arg) in a new plain thread or goroutine (by mode). */
void rt_spawn(rt_group_t *g, int mode, void (*fn)(void *), void *arg);
/* rt_join - wait (at most 10 s, else fail) for everything spawned. */
void rt_join(rt_group_t *g);
/* rt_run - run fn(arg) in a new context of the given mode and wait. */
void rt_run(int mode, void (*fn)(void *), void *arg);

/* Wait until cond(arg) holds, polling every millisecond; fail after 5 s. */
void rt_wait_until(bool (*cond)(void *), void *arg, const char *what);

/* Where rt_make() puts channels (RT_CHANNELS). */
enum rt_where { RT_LOCAL = 0, RT_REMOTE = 1, RT_SPLIT = 2 };
enum rt_where rt_channels(void);

/* rt_make - a channel of capacity cap, local or remote as RT_CHANNELS says
 * (fails the test if it cannot be made).  The caller owns the handle. */
chan_t *rt_make(size_t cap);

/* rt_make_at - a channel of capacity cap in the place rt_place() names
 * (-1 local, 0 daemon A, 1 daemon B; the daemon must be running). */
chan_t *rt_make_at(int place, size_t cap);

/* rt_place - where ch lives: -1 in this process, 0 on daemon A, 1 on B. */
int rt_place(chan_t *ch);

/* rt_count - a loop count: n with local channels, remote_n when rt_make()
 * makes remote channels (every operation on them is a round trip to chand,
 * so long loops are scaled down; the checks inside stay the same). */
long rt_count(long n, long remote_n);

/* Blocked senders/receivers on a channel (test introspection): for a local
 * channel from its wait queues, for a remote one from chand (chan_stat). */
size_t rt_senders(chan_t *ch);
size_t rt_receivers(chan_t *ch);
/* Wait until ch has exactly n blocked senders / receivers. */
void rt_wait_senders(chan_t *ch, size_t n);
void rt_wait_receivers(chan_t *ch, size_t n);

int64_t rt_ms_since(int64_t start);

/* Send/receive a long, failing the test on error. */
void rt_send_long(chan_t *ch, long v);
long rt_recv_long(chan_t *ch);

int rt_main(Suite *(*make_suite)(void));

/* RT_TEST(name) { body } - a Check loop test whose body runs inside a plain
 * thread (index 0) or a goroutine (index 1); `mode` names that index, for
 * the body to spawn its peers alike.  Add it with tcase_add_loop_test(tc,
 * name, 0, MODES). */
#define RT_TEST(name)                                                   \
    static void name##_body(int mode);                                  \
    static void name##_tramp(void *p) { name##_body(*(int *)p); }       \
    START_TEST(name)                                                    \
    {                                                                   \
        int m = _i;                                                     \
        rt_run(_i, name##_tramp, &m);                                   \
    }                                                                   \
    END_TEST                                                            \
    static void name##_body(int mode)

#endif /* RT_TEST_H */

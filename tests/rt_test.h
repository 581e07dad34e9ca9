/*
 * rt_test.h - helpers shared by the runtime's Check tests.
 *
 * Most tests run their body twice: in plain threads (MODE_THREAD) and in
 * goroutines (MODE_GOROUTINE), through rt_spawn()/rt_run(), as loop tests
 * whose index is the mode.  rt_main() runs a test binary's suite twice,
 * with CHAN_PROCS=1 and CHAN_PROCS=2: Check forks a child per test and the
 * runtime starts inside it, so each child reads the variable afresh.
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

/* Blocked senders/receivers on a local channel (test introspection). */
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

/*
 * chan_wait.c - parking and waking a waiter (see chan_wait.h).
 *
 * A thread parks on a futex (the waiter's `woken` word).  Goroutines park
 * through the scheduler; until the scheduler exists every caller is a thread.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "chan/chan.h"
#include "chan_wait.h"

static int futex_wait(_Atomic uint32_t *word, uint32_t val, const struct timespec *rel)
{
    return (int)syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, rel, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void chan_waiter_init(chan_waiter_t *w)
{
    atomic_store_explicit(&w->claimed, 0, memory_order_relaxed);
    atomic_store_explicit(&w->woken, 0, memory_order_relaxed);
    w->index = CHAN_WAIT_TIMEOUT;
    w->err = 0;
    w->data = NULL;
    w->len = 0;
    w->g = NULL;
}

void chan_waiter_wake(chan_waiter_t *w)
{
    atomic_store_explicit(&w->woken, 1, memory_order_release);
    futex_wake_all(&w->woken);
}

/* Sleep until woken or until the deadline; true if woken. */
static bool thread_sleep(chan_waiter_t *w, int64_t deadline)
{
    for (;;) {
        if (atomic_load_explicit(&w->woken, memory_order_acquire))
            return true;
        if (deadline < 0) {
            futex_wait(&w->woken, 0, NULL);
            continue;
        }
        int64_t left = deadline - chan_now();
        if (left <= 0)
            return false;
        struct timespec rel = { .tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000L };
        futex_wait(&w->woken, 0, &rel);
    }
}

int chan_waiter_park(chan_waiter_t *w, int64_t deadline,
                     void (*unlock)(void *arg), void *arg)
{
    int saved = errno;
    if (unlock)
        unlock(arg);
    if (!thread_sleep(w, deadline)) {
        if (chan_waiter_claim(w)) {
            w->index = CHAN_WAIT_TIMEOUT;
            errno = saved;
            return CHAN_WAIT_TIMEOUT;
        }
        /* A source claimed w as the deadline passed: its wake is coming. */
        thread_sleep(w, -1);
    }
    errno = saved;
    return w->index;
}

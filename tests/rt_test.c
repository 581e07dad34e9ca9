/*
 * rt_test.c - helpers shared by the runtime's Check tests (see rt_test.h).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "chan_local.h"
#include "rt_test.h"

struct spawn {
    void (*fn)(void *);
    void *arg;
    chan_wg_t *wg;
};

static void spawn_body(void *p)
{
    struct spawn s = *(struct spawn *)p;
    free(p);
    s.fn(s.arg);
    chan_wg_done(s.wg);
}

static void *thread_body(void *p)
{
    spawn_body(p);
    return NULL;
}

void rt_group_init(rt_group_t *g)
{
    g->wg = chan_wg_make();
    ck_assert_ptr_nonnull(g->wg);
}

void rt_spawn(rt_group_t *g, int mode, void (*fn)(void *), void *arg)
{
    struct spawn *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    s->fn = fn;
    s->arg = arg;
    s->wg = g->wg;
    ck_assert_int_eq(chan_wg_add(g->wg, 1), 0);
    if (mode == MODE_GOROUTINE) {
        ck_assert_int_eq(chan_go(spawn_body, s), 0);
    } else {
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, thread_body, s), 0);
        pthread_detach(th);
    }
}

void rt_join(rt_group_t *g)
{
    /* generous: this catches deadlocks, never slowness (CI machines are shared) */
    ck_assert_msg(chan_wg_wait(g->wg, chan_now() + 120000) == 0, "join timed out");
    chan_wg_free(g->wg);
    g->wg = NULL;
}

void rt_run(int mode, void (*fn)(void *), void *arg)
{
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, fn, arg);
    rt_join(&g);
}

void rt_wait_until(bool (*cond)(void *), void *arg, const char *what)
{
    int64_t end = chan_now() + 5000;
    while (!cond(arg)) {
        ck_assert_msg(chan_now() < end, "timed out waiting for %s", what);
        chan_sleep(chan_now() + 1);
    }
}

static size_t count_live(struct chan_waitq *q)
{
    size_t n = 0;
    for (struct chan_sudog *s = q->head; s; s = s->next)
        if (!atomic_load(&s->w->claimed))
            n++;
    return n;
}

size_t rt_senders(chan_t *ch)
{
    struct chan_local *c = chan_local_of(ch);
    chan_mutex_lock(&c->lock);
    size_t n = count_live(&c->sendq);
    chan_mutex_unlock(&c->lock);
    return n;
}

size_t rt_receivers(chan_t *ch)
{
    struct chan_local *c = chan_local_of(ch);
    chan_mutex_lock(&c->lock);
    size_t n = count_live(&c->recvq);
    chan_mutex_unlock(&c->lock);
    return n;
}

struct waitn {
    chan_t *ch;
    size_t n;
};

static bool senders_are(void *p)
{
    struct waitn *w = p;
    return rt_senders(w->ch) == w->n;
}

static bool receivers_are(void *p)
{
    struct waitn *w = p;
    return rt_receivers(w->ch) == w->n;
}

void rt_wait_senders(chan_t *ch, size_t n)
{
    struct waitn w = { ch, n };
    rt_wait_until(senders_are, &w, "blocked senders");
}

void rt_wait_receivers(chan_t *ch, size_t n)
{
    struct waitn w = { ch, n };
    rt_wait_until(receivers_are, &w, "blocked receivers");
}

int64_t rt_ms_since(int64_t start)
{
    return chan_now() - start;
}

void rt_send_long(chan_t *ch, long v)
{
    ck_assert_int_eq(chan_send(ch, &v, sizeof v, -1), 0);
}

long rt_recv_long(chan_t *ch)
{
    long v = 0;
    ck_assert_int_eq(chan_recv(ch, &v, sizeof v, -1), (ssize_t)sizeof v);
    return v;
}

int rt_main(Suite *(*make_suite)(void))
{
    static const char *procs[] = { "1", "2" };
    int failed = 0;
    for (size_t i = 0; i < sizeof procs / sizeof *procs; i++) {
        setenv("CHAN_PROCS", procs[i], 1);
        printf("CHAN_PROCS=%s\n", procs[i]);
        fflush(stdout);
        SRunner *sr = srunner_create(make_suite());
        srunner_run_all(sr, CK_ENV);
        failed += srunner_ntests_failed(sr);
        srunner_free(sr);
    }
    return failed ? 1 : 0;
}

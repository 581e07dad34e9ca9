/*
 * rt_test.c - helpers shared by the runtime's Check tests (see rt_test.h),
 * and the channel factory that reruns them on remote channels.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chand_fixture.h"
#include "rt_test.h"
#include "runtime/chan_local.h"
#include "test_size.h"

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
    ck_assert_msg(chan_wg_wait(g->wg, chan_now() + test_wait_ms(120000)) == 0, "join timed out");
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

/* ---- the channel factory -------------------------------------------------- */

enum { DAEMONS = 2 };

/* Set by rt_main() in the parent before any test is forked. */
static chand_proc_t daemons[DAEMONS];

/* One client per daemon and process, made on first use in that process: a
 * test child inherits the parent's memory but must not inherit (or share)
 * a connection, so a client records the process that made it. */
static struct {
    pid_t pid;
    chan_client_t *cl;
} clients[DAEMONS];
static pthread_mutex_t clients_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic unsigned long made;   /* channels made by this process */

enum rt_where rt_channels(void)
{
    const char *m = getenv("RT_CHANNELS");
    if (!m || !*m || strcmp(m, "local") == 0)
        return RT_LOCAL;
    if (strcmp(m, "remote") == 0)
        return RT_REMOTE;
    if (strcmp(m, "split") == 0)
        return RT_SPLIT;
    fprintf(stderr, "RT_CHANNELS=%s: expected local, remote or split\n", m);
    abort();
}

long rt_count(long n, long remote_n)
{
    return rt_channels() == RT_LOCAL ? n : remote_n;
}

static chan_client_t *client_of_daemon(int d)
{
    ck_assert_msg(daemons[d].addr[0], "no daemon %c (rt_main starts them)", 'A' + d);
    int err = 0;
    pthread_mutex_lock(&clients_lock);
    if (clients[d].pid != getpid()) {
        clients[d].cl = chan_connect(daemons[d].addr, NULL, chan_now() + 30000);
        err = errno;
        if (clients[d].cl)
            clients[d].pid = getpid();
    }
    chan_client_t *cl = clients[d].cl;
    pthread_mutex_unlock(&clients_lock);   /* before a failing assertion leaves */
    ck_assert_msg(cl, "connect %s: %s", daemons[d].addr, strerror(err));
    return cl;
}

static chan_t *make_at(int d, unsigned long n, size_t cap)
{
    if (d < 0) {
        chan_t *ch = chan_make(cap);
        ck_assert_ptr_nonnull(ch);
        return ch;
    }
    char name[64];
    snprintf(name, sizeof name, "rt.%ld.%lu", (long)getpid(), n);
    chan_t *ch = chan_open(client_of_daemon(d), name, (long)cap, 0, chan_now() + 30000);
    ck_assert_msg(ch, "open %s on %s: %s", name, daemons[d].addr, strerror(errno));
    return ch;
}

chan_t *rt_make(size_t cap)
{
    enum rt_where where = rt_channels();
    unsigned long n = atomic_fetch_add(&made, 1);
    /* split: A, B, local, A, B, local, ... */
    int d = where == RT_REMOTE ? 0 : where == RT_SPLIT ? (n % 3 == 2 ? -1 : (int)(n % 3)) : -1;
    return make_at(d, n, cap);
}

chan_t *rt_make_at(int place, size_t cap)
{
    ck_assert(place >= -1 && place < DAEMONS);
    return make_at(place, atomic_fetch_add(&made, 1), cap);
}

int rt_place(chan_t *ch)
{
    if (!chan_name(ch))
        return -1;
    char ref[CHAN_REF_MAX];
    ck_assert_int_gt(chan_ref(ch, ref, sizeof ref), 0);
    const char *at = strchr(ref, '@');
    ck_assert_ptr_nonnull(at);
    int d = 0;
    while (d < DAEMONS && strcmp(at + 1, daemons[d].addr) != 0)
        d++;
    ck_assert_msg(d < DAEMONS, "%s: not a channel of rt_make()", ref);
    return d;
}

/* chand's view of a remote channel made by rt_make(). */
static chan_stat_t remote_stat(chan_t *ch)
{
    chan_stat_t st;
    int d = rt_place(ch);
    ck_assert_int_eq(chan_stat(client_of_daemon(d), chan_name(ch), &st, chan_now() + 30000), 0);
    return st;
}

/* Start the daemons RT_CHANNELS needs; false (and why, on stderr) if one
 * would not start. */
static bool daemons_up(void)
{
    enum rt_where where = rt_channels();
    int need = where == RT_REMOTE ? 1 : where == RT_SPLIT ? 2 : 0;
    for (int d = 0; d < need; d++)
        if (chand_start(&daemons[d], NULL) < 0)
            return false;
    return true;
}

/* Stop the daemons; with `dump`, print their logs first (a test failed). */
static void daemons_down(bool dump)
{
    for (int d = 0; d < DAEMONS; d++) {
        if (daemons[d].pid <= 0 && !daemons[d].dir[0])
            continue;
        if (dump) {
            fprintf(stderr, "---- chand %c (%s) log\n", 'A' + d, daemons[d].addr);
            chand_dump_log(&daemons[d]);
        }
        if (chand_stop(&daemons[d]) != 0)
            fprintf(stderr, "chand %c did not exit cleanly\n", 'A' + d);
    }
}

/* ---- blocked senders and receivers ---------------------------------------- */

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
    if (chan_name(ch))
        return (size_t)remote_stat(ch).senders;
    struct chan_local *c = chani_local_of(ch);
    chani_mutex_lock(&c->lock);
    size_t n = count_live(&c->sendq);
    chani_mutex_unlock(&c->lock);
    return n;
}

size_t rt_receivers(chan_t *ch)
{
    if (chan_name(ch))
        return (size_t)remote_stat(ch).receivers;
    struct chan_local *c = chani_local_of(ch);
    chani_mutex_lock(&c->lock);
    size_t n = count_live(&c->recvq);
    chani_mutex_unlock(&c->lock);
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
    static const char *where[] = { "local", "remote", "split" };
    signal(SIGPIPE, SIG_IGN);
    if (!daemons_up()) {
        daemons_down(true);
        return 99;   /* a hard error for automake, not a test failure */
    }
    int failed = 0;
    for (size_t i = 0; i < sizeof procs / sizeof *procs; i++) {
        setenv("CHAN_PROCS", procs[i], 1);
        printf("CHAN_PROCS=%s RT_CHANNELS=%s\n", procs[i], where[rt_channels()]);
        fflush(stdout);
        SRunner *sr = srunner_create(make_suite());
        srunner_run_all(sr, CK_ENV);
        failed += srunner_ntests_failed(sr);
        srunner_free(sr);
    }
    daemons_down(failed > 0);
    return failed ? 1 : 0;
}

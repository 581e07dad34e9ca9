/*
 * google.c - Example 8, "Google Search: a fake framework", versions 1.0 to 3.0.
 *
 * Web, Image and Video searches each take a random time up to 100 ms.
 *   1.0  calls them one after another: their latencies add up.
 *   2.0  runs them concurrently and fans the results in: as slow as the
 *        slowest.
 *   2.1  stops waiting after 80 ms: results that come later are dropped.
 *   3.0  asks two replicas of each backend and takes the first reply:
 *        usually complete, and never over 80 ms.
 * Each search prints its results and the time it took, as in the talk,
 * then a line counting the results that arrived.
 *
 * With --remote every channel lives in chand.  With --services as well, the
 * backends are search-replica processes serving the chand channels
 * search.web1, search.web2, search.image1, ...: each request carries a
 * reference to a reply channel made for it, and a replica that dies
 * mid-request costs only its own answer.
 *
 * Notice: no locks, no condition variables, no callbacks.  A timeout is one
 * more select case, and replication is three lines (first()).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

static const char usage[] =
    "usage: google [--version V] [-n N] [--replicas N] [--query Q] [--services]\n"
    "              [--remote [ADDR]] [--scale F]\n"
    "Google Search 1.0, 2.0, 2.1 and 3.0 over fake Web, Image and Video searches.\n"
    "  --version V    run only 1.0, 2.0, 2.1 or 3.0 (default: all, in order)\n"
    "  -n N           searches per version (default 1)\n"
    "  --replicas N   replicas per backend in 3.0 (default 2)\n"
    "  --services     the backends are search-replica processes (needs --remote)\n";

enum { WEB, IMAGE, VIDEO, KINDS, MAX_REPLICAS = 9, RESULT_MAX = 256 };
static const char *const kinds[KINDS] = { "web", "image", "video" };

enum {
    LATENCY_MS = 100,       /* a fake search takes up to this long */
    BUDGET_MS = 80,         /* 2.1 and 3.0 wait this long for results */
    PATIENCE_MS = 10000,    /* 1.0 and 2.0 wait this long for a replica process */
};

/* One backend: Web, or one of its replicas Web1, Web2, ... */
struct backend {
    char name[16];          /* "web", "web1", ... (the result says who answered) */
    chan_t *requests;       /* --services: the replica's request channel */
};

static struct backend primary[KINDS];                   /* 1.0 to 2.1 */
static struct backend replicas[KINDS][MAX_REPLICAS];    /* 3.0 */
static int nreplicas = 2;

/* Searches still running: a search that lost (or missed the deadline)
 * finishes in the background, and main waits for those before it releases
 * the backends they use. */
static chan_wg_t *running;

static void go_counted(void (*fn)(void *arg), void *arg)
{
    chan_wg_add(running, 1);
    ex_go(fn, arg);
}

/* ---- a search: a fake one here, or a request to a replica process ---- */

/* Send "query\n<reply ref>" to the replica, wait for its answer. */
static ssize_t ask_replica(const struct backend *b, const char *query, char *out, size_t size,
                           int64_t deadline)
{
    chan_t *reply = ex_make(1);         /* room for the answer: the replica never waits */
    char ref[CHAN_REF_MAX], req[RESULT_MAX + CHAN_REF_MAX];
    ex_ref(reply, ref, sizeof ref);
    int n = snprintf(req, sizeof req, "%s\n%s", query, ref);
    ssize_t got = -1;
    if (chan_send(b->requests, req, (size_t)n, deadline) == 0)
        got = chan_recv(reply, out, size, deadline);
    chan_release(reply);
    return got;
}

/* Search: the result of backend b for query, in out; its length, or -1
 * (a replica that did not answer by the deadline). */
static ssize_t search(const struct backend *b, const char *query, char *out, size_t size,
                      int64_t deadline)
{
    if (b->requests)
        return ask_replica(b, query, out, size, deadline);
    ex_pause(LATENCY_MS);               /* fakeSearch: time.Sleep(rand.Intn(100) ms) */
    return snprintf(out, size, "%s result for \"%s\"", b->name, query);
}

/* go func() { c <- search(query) }() */
struct job {
    const struct backend *b;
    const char *query;
    chan_t *c;
    int64_t deadline;
};

static void search_into(void *arg)
{
    struct job *j = arg;
    char r[RESULT_MAX];
    ssize_t n = search(j->b, j->query, r, sizeof r, j->deadline);
    if (n >= 0)
        chan_send(j->c, r, (size_t)n, 0);   /* c has room for every job: never blocks */
    chan_release(j->c);
    free(j);
    chan_wg_done(running);
}

static void go_search(const struct backend *b, const char *query, chan_t *c, int64_t deadline)
{
    struct job *j = ex_alloc(sizeof *j);
    j->b = b;
    j->query = query;
    j->c = chan_retain(c);
    j->deadline = deadline;
    go_counted(search_into, j);
}

/* go func() { c <- First(query, replicas...) }(): ask every replica, pass
 * on the first answer. */
struct first {
    const struct backend *replicas;
    const char *query;
    chan_t *c;
    int64_t deadline;
};

static void first(void *arg)
{
    struct first *f = arg;
    chan_t *answers = ex_make(nreplicas);   /* room for all: the losers never block */
    for (int i = 0; i < nreplicas; i++)
        go_search(&f->replicas[i], f->query, answers, f->deadline);
    char r[RESULT_MAX];
    ssize_t n = chan_recv(answers, r, sizeof r, f->deadline);
    if (n >= 0)
        chan_send(f->c, r, (size_t)n, 0);
    chan_release(answers);
    chan_release(f->c);
    free(f);
    chan_wg_done(running);
}

/* ---- the four versions ---- */

struct results {
    int n;
    char text[KINDS][RESULT_MAX];
};

static void add(struct results *res, const char *text, size_t len)
{
    if (res->n < KINDS)
        snprintf(res->text[res->n++], RESULT_MAX, "%.*s", (int)len, text);
}

/* Receive up to KINDS results from c, at most until deadline. */
static void gather(chan_t *c, struct results *res, int64_t deadline)
{
    for (int i = 0; i < KINDS; i++) {
        char r[RESULT_MAX];
        ssize_t n = chan_recv(c, r, sizeof r, deadline);
        if (n < 0) {
            printf("no answer: %s\n", strerror(errno));
            return;
        }
        add(res, r, (size_t)n);
    }
}

/* The same in a select with time.After(80 ms): "timed out". */
static void gather_until_timeout(chan_t *c, struct results *res)
{
    chan_t *timeout = ex_after(BUDGET_MS);
    for (int i = 0; i < KINDS; i++) {
        char r[RESULT_MAX];
        int64_t fired;
        chan_case_t cs[2] = { CHAN_CASE_RECV(c, r, sizeof r),
                              CHAN_CASE_RECV(timeout, &fired, sizeof fired) };
        int k = chan_select(cs, 2, -1);
        if (k != 0 || cs[0].err) {
            printf("timed out\n");
            break;
        }
        add(res, r, cs[0].n);
    }
    chan_release(timeout);
}

static void google10(const char *query, struct results *res)
{
    for (int k = 0; k < KINDS; k++) {
        char r[RESULT_MAX];
        ssize_t n = search(&primary[k], query, r, sizeof r, chan_now() + PATIENCE_MS);
        if (n >= 0)
            add(res, r, (size_t)n);
    }
}

static void google20(const char *query, struct results *res)
{
    int64_t deadline = chan_now() + PATIENCE_MS;
    chan_t *c = ex_make(KINDS);
    for (int k = 0; k < KINDS; k++)
        go_search(&primary[k], query, c, deadline);
    gather(c, res, deadline);
    chan_release(c);
}

static void google21(const char *query, struct results *res)
{
    int64_t deadline = chan_now() + ex_ms(BUDGET_MS);
    chan_t *c = ex_make(KINDS);
    for (int k = 0; k < KINDS; k++)
        go_search(&primary[k], query, c, deadline);
    gather_until_timeout(c, res);
    chan_release(c);
}

static void google30(const char *query, struct results *res)
{
    int64_t deadline = chan_now() + ex_ms(BUDGET_MS);
    chan_t *c = ex_make(KINDS);
    for (int k = 0; k < KINDS; k++) {
        struct first *f = ex_alloc(sizeof *f);
        f->replicas = replicas[k];
        f->query = query;
        f->c = chan_retain(c);
        f->deadline = deadline;
        go_counted(first, f);
    }
    gather_until_timeout(c, res);
    chan_release(c);
}

static const struct version {
    const char *name, *what;
    void (*run)(const char *query, struct results *res);
    int timed;
} versions[] = {
    { "1.0", "one search after another", google10, 0 },
    { "2.0", "concurrent searches, fan-in", google20, 0 },
    { "2.1", "concurrent searches, 80 ms timeout", google21, 1 },
    { "3.0", "replicated backends, first reply wins, 80 ms timeout", google30, 1 },
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One search, printed as the talk does (results, then elapsed time), and
 * a summary line that names the kinds that arrived. */
static void run(const struct version *v, const char *query)
{
    struct results res = { 0 };
    printf("Google Search %s (%s):\n", v->name, v->what);
    double start = now_ms();
    v->run(query, &res);
    double elapsed = now_ms() - start;
    char got[64] = "";
    for (int k = 0; k < KINDS; k++)
        for (int i = 0; i < res.n; i++)
            if (strncmp(res.text[i], kinds[k], strlen(kinds[k])) == 0) {
                strcat(got, got[0] ? " " : "");
                strcat(got, kinds[k]);
                break;
            }
    for (int i = 0; i < res.n; i++)
        printf("  %s\n", res.text[i]);
    printf("%.3fms\n", elapsed);
    if (v->timed)
        printf("%s: %d of 3 results (%s) before the %lld ms deadline\n", v->name, res.n, got,
               (long long)ex_ms(BUDGET_MS));
    else
        printf("%s: %d of 3 results (%s)\n", v->name, res.n, got);
}

/* ---- setup ---- */

static void name_backend(struct backend *b, const char *kind, int replica, int services)
{
    snprintf(b->name, sizeof b->name, replica ? "%s%d" : "%s", kind, replica);
    if (!services)
        return;
    char channel[64];
    snprintf(channel, sizeof channel, "search.%s", b->name);
    b->requests = ex_open(channel, 0);
    chan_stat_t st;
    if (chan_stat(ex_client, channel, &st, chan_now() + EX_SETUP_MS) == 0 && st.receivers == 0)
        fprintf(stderr, "%s: nobody serves %s yet (start: search-replica --remote %s)\n",
                ex_prog, channel, b->name);
}

/* Locally Web, Image and Video are fakes of their own; as services they
 * are the first replica of each. */
static void setup_backends(int services)
{
    for (int k = 0; k < KINDS; k++) {
        for (int i = 0; i < nreplicas; i++)
            name_backend(&replicas[k][i], kinds[k], i + 1, services);
        if (services) {
            primary[k] = replicas[k][0];
            chan_retain(primary[k].requests);
        } else {
            name_backend(&primary[k], kinds[k], 0, 0);
        }
    }
}

static void release_backends(void)
{
    for (int k = 0; k < KINDS; k++) {
        chan_release(primary[k].requests);
        for (int i = 0; i < nreplicas; i++)
            chan_release(replicas[k][i].requests);
    }
}

int main(int argc, char **argv)
{
    ex_init(&argc, argv, usage);
    const char *only = ex_option(&argc, argv, "--version", NULL);
    long searches = ex_number(&argc, argv, "-n", 1, 1, 1000);
    nreplicas = (int)ex_number(&argc, argv, "--replicas", 2, 1, MAX_REPLICAS);
    const char *query = ex_option(&argc, argv, "--query", "golang");
    int services = ex_flag(&argc, argv, "--services");
    ex_no_more_args(argc, argv);
    if (services && !ex_client) {
        fprintf(stderr, "%s: --services needs --remote\n", ex_prog);
        ex_usage();
    }
    if (strlen(query) > RESULT_MAX / 2 || strchr(query, '\n')) {
        fprintf(stderr, "%s: the query is one line of at most %d bytes\n", ex_prog,
                RESULT_MAX / 2);
        ex_usage();
    }
    size_t nversions = sizeof versions / sizeof versions[0], ran = 0;
    if (!(running = chan_wg_make()))
        ex_die("chan_wg_make");
    setup_backends(services);
    for (size_t i = 0; i < nversions; i++) {
        if (only && strcmp(only, versions[i].name) != 0)
            continue;
        for (long s = 0; s < searches; s++)
            run(&versions[i], query);
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "%s: no version '%s' (1.0, 2.0, 2.1 or 3.0)\n", ex_prog, only);
        ex_usage();
    }
    chan_wg_wait(running, -1);  /* soon: fakes after their latency, replica calls by their deadline */
    chan_wg_free(running);
    release_backends();
    ex_finish();
    return 0;
}

/*
 * daisy.c - Example 7, "Daisy-chain": Chinese whispers, gopher style.
 *
 * 100,000 goroutines stand in a line, each between two channels: it
 * receives a number from its right, adds one, and passes it left.  main
 * puts 1 in at the right end and reads 100001 at the left.
 *
 * Notice: goroutines are cheap, 100,000 of them block at once, each on its
 * own channel, and the first send ripples through the whole chain.  With
 * --remote each of the 100,001 channels is a temporary channel in chand
 * and every goroutine waits in chand; the chain is spread over enough
 * connections to stay under chand's limit of blocked requests per
 * connection (--max-pending, 65536 by default).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "common.h"

static const char usage[] =
    "usage: daisy [-n N] [--remote [ADDR]] [--scale F]\n"
    "A chain of N goroutines (default 100000) passing a number along: prints N+1.\n";

/* Blocked requests one connection carries at most (chand's default
 * --max-pending is 65536; leave room for the rest). */
enum { PER_CONNECTION = 50000 };

struct whisper {
    chan_t *left, *right;
};

/* f(left, right): left <- 1 + <-right */
static void whisper(void *arg)
{
    struct whisper *w = arg;
    int64_t v;
    if (chan_recv(w->right, &v, sizeof v, -1) == sizeof v) {
        v++;
        chan_send(w->left, &v, sizeof v, -1);
    }
    chan_release(w->left);
    chan_release(w->right);
    free(w);
}

static void first_whisper(void *arg)
{
    chan_t *right = arg;
    int64_t one = 1;
    chan_send(right, &one, sizeof one, -1);
    chan_release(right);
}

/* With --remote every channel is a round trip to chand: MAKERS goroutines
 * make the links at once, their requests pipelined on the connections,
 * instead of the main thread making them one after another (100,000
 * round trips in a row take seconds; at once, a fraction of one). */
enum { MAKERS = 64 };

struct links {
    chan_t **link;              /* link[0..n] */
    long n;
    chan_client_t **conn;       /* conn[i / PER_CONNECTION] makes link[i] */
    chan_wg_t *done;
};

struct maker {
    struct links *ls;
    long first;                 /* makes link[first], link[first + MAKERS]... */
};

static void make_links(void *arg)
{
    struct maker *m = arg;
    struct links *ls = m->ls;
    for (long i = m->first; i <= ls->n; i += MAKERS) {
        ls->link[i] = chan_open_temp(ls->conn[i / PER_CONNECTION], 0, chan_now() + EX_SETUP_MS);
        if (!ls->link[i])
            ex_die("making a channel in chand");
    }
    chan_wg_done(ls->done);
    free(m);
}

/* The n + 1 channels of the chain: local ones, or temporary channels in
 * chand spread over enough connections (*conns, *nconns: the caller
 * disconnects the extra ones). */
static chan_t **make_chain(long n, chan_client_t ***conns, size_t *nconns)
{
    chan_t **link = ex_alloc(sizeof *link * (size_t)(n + 1));
    *nconns = ex_client ? (size_t)(n / PER_CONNECTION + 1) : 0;
    *conns = ex_alloc(sizeof **conns * (*nconns + 1));
    if (!ex_client) {
        for (long i = 0; i <= n; i++)
            link[i] = ex_make(0);
        return link;
    }
    (*conns)[0] = ex_client;
    for (size_t k = 1; k < *nconns; k++)
        if (!((*conns)[k] = chan_connect(ex_addr, NULL, chan_now() + EX_SETUP_MS)))
            ex_die("connecting to chand");
    struct links ls = { link, n, *conns, chan_wg_make() };
    if (!ls.done)
        ex_die("making a wait group");
    chan_wg_add(ls.done, MAKERS);
    for (long j = 0; j < MAKERS; j++) {
        struct maker *m = ex_alloc(sizeof *m);
        m->ls = &ls;
        m->first = j;
        ex_go(make_links, m);
    }
    chan_wg_wait(ls.done, -1);
    chan_wg_free(ls.done);
    return link;
}

int main(int argc, char **argv)
{
    ex_init(&argc, argv, usage);
    long n = ex_number(&argc, argv, "-n", 100000, 0, 10000000);
    ex_no_more_args(argc, argv);
    chan_client_t **conns;
    size_t nconns;
    chan_t **link = make_chain(n, &conns, &nconns);

    chan_t *leftmost = link[0];
    chan_t *left = chan_retain(leftmost), *right = left;
    for (long i = 0; i < n; i++) {
        right = link[i + 1];
        struct whisper *w = ex_alloc(sizeof *w);
        w->left = left;                 /* the goroutine takes over both references */
        w->right = chan_retain(right);
        ex_go(whisper, w);
        left = right;
    }
    free(link);
    ex_go(first_whisper, right);        /* go func(c chan int) { c <- 1 }(right) */
    int64_t v;
    if (chan_recv(leftmost, &v, sizeof v, -1) != sizeof v)
        ex_die("receive");
    printf("%lld\n", (long long)v);

    chan_release(leftmost);
    for (size_t k = 1; k < nconns; k++)
        chan_disconnect(conns[k]);
    free(conns);
    ex_finish();
    return 0;
}

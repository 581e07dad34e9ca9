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

/* With --remote, a new connection for every PER_CONNECTION channels. */
static chan_t *make_link(long i, chan_client_t **extra, size_t *nextra)
{
    if (!ex_client)
        return ex_make(0);
    chan_client_t *cl = ex_client;
    if (i / PER_CONNECTION > 0) {
        size_t k = (size_t)(i / PER_CONNECTION) - 1;
        if (k == *nextra) {
            extra[k] = chan_connect(ex_addr, NULL, chan_now() + EX_SETUP_MS);
            if (!extra[k])
                ex_die("connecting to chand");
            (*nextra)++;
        }
        cl = extra[k];
    }
    chan_t *ch = chan_open_temp(cl, 0, chan_now() + EX_SETUP_MS);
    if (!ch)
        ex_die("making a channel in chand");
    return ch;
}

int main(int argc, char **argv)
{
    ex_init(&argc, argv, usage);
    long n = ex_number(&argc, argv, "-n", 100000, 0, 10000000);
    ex_no_more_args(argc, argv);
    size_t nextra = 0;
    chan_client_t **extra = ex_alloc(sizeof *extra * (size_t)(n / PER_CONNECTION + 1));

    chan_t *leftmost = make_link(0, extra, &nextra);
    chan_t *left = chan_retain(leftmost), *right = left;
    for (long i = 0; i < n; i++) {
        right = make_link(i + 1, extra, &nextra);
        struct whisper *w = ex_alloc(sizeof *w);
        w->left = left;                 /* the goroutine takes over both references */
        w->right = chan_retain(right);
        ex_go(whisper, w);
        left = right;
    }
    ex_go(first_whisper, right);        /* go func(c chan int) { c <- 1 }(right) */
    int64_t v;
    if (chan_recv(leftmost, &v, sizeof v, -1) != sizeof v)
        ex_die("receive");
    printf("%lld\n", (long long)v);

    chan_release(leftmost);
    for (size_t k = 0; k < nextra; k++)
        chan_disconnect(extra[k]);
    free(extra);
    ex_finish();
    return 0;
}

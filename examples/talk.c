/*
 * talk.c - the generator and fan-in of "Go Concurrency Patterns", in C.
 *
 * Each is a function that makes a channel, starts goroutines that hold
 * their own references to the channels they use, and returns the channel.
 * Nothing here knows whether a channel is local or lives in chand.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "talk.h"

/* ---- generator ---- */

struct talker {
    const char *msg;
    int64_t max_pause;
    chan_t *c;
};

static void boring_loop(void *arg)
{
    struct talker *t = arg;
    for (int i = 0;; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "%s %d", t->msg, i);
        if (chan_send(t->c, line, (size_t)n, -1) < 0)
            break;              /* closed: nobody is listening any more */
        ex_pause(t->max_pause);
    }
    chan_release(t->c);
    free(t);
}

chan_t *boring(const char *msg, int64_t max_pause_ms)
{
    chan_t *c = ex_make(0);
    struct talker *t = ex_alloc(sizeof *t);
    t->msg = msg;
    t->max_pause = max_pause_ms;
    t->c = chan_retain(c);      /* the goroutine's own reference */
    ex_go(boring_loop, t);
    return c;                   /* return the channel to the caller */
}

/* ---- fan-in, a goroutine per input ---- */

struct forward {
    chan_t *in, *out;
};

/* Go's `go func() { for { c <- <-input } }()`. */
static void forward_loop(void *arg)
{
    struct forward *f = arg;
    void *val;
    ssize_t n;
    while ((n = chan_recv_alloc(f->in, &val, -1)) >= 0) {
        int rc = chan_send(f->out, val, (size_t)n, -1);
        free(val);
        if (rc < 0)
            break;              /* the output was closed */
    }
    chan_release(f->in);
    chan_release(f->out);
    free(f);
}

chan_t *fanin(chan_t *const *inputs, size_t n)
{
    chan_t *c = ex_make(0);
    for (size_t i = 0; i < n; i++) {
        struct forward *f = ex_alloc(sizeof *f);
        f->in = chan_retain(inputs[i]);
        f->out = chan_retain(c);
        ex_go(forward_loop, f);
    }
    return c;
}

/* ---- fan-in, one select loop ---- */

struct merge {
    chan_t *in[2], *out;
};

static void select_loop(void *arg)
{
    struct merge *m = arg;
    chan_t *in[2] = { m->in[0], m->in[1] };
    while (in[0] || in[1]) {
        /* buf NULL: the select hands over a malloc()ed copy of the value */
        chan_case_t cs[2] = { CHAN_CASE_RECV(in[0], NULL, 0), CHAN_CASE_RECV(in[1], NULL, 0) };
        int i = chan_select(cs, 2, -1);
        if (i < 0)
            break;
        if (cs[i].err) {
            in[i] = NULL;       /* closed: a NULL case is never ready (Go's nil channel) */
            continue;
        }
        int rc = chan_send(m->out, cs[i].val, cs[i].n, -1);
        free(cs[i].val);
        if (rc < 0)
            break;
    }
    chan_release(m->in[0]);
    chan_release(m->in[1]);
    chan_release(m->out);
    free(m);
}

chan_t *fanin_select(chan_t *input1, chan_t *input2)
{
    chan_t *c = ex_make(0);
    struct merge *m = ex_alloc(sizeof *m);
    m->in[0] = chan_retain(input1);
    m->in[1] = chan_retain(input2);
    m->out = chan_retain(c);
    ex_go(select_loop, m);
    return c;
}

/*
 * chan_patterns.c - helpers from "Go Concurrency Patterns": generators and
 * fan-in.
 *
 * Both use only the public API, so they work the same on remote channels.
 * Fan-in runs one forwarding goroutine per input (the talk's first version:
 * `go func() { for { c <- <-input } }()`), which costs no select per value;
 * the last forwarder to see its input closed closes the output.  A
 * forwarder also stops when the output is closed under it (its send fails),
 * which gives the consumer a way to stop a fan-in early.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "chan/chan.h"
#include "chan_errmsg.h"

struct gen {
    void (*fn)(chan_t *out, void *arg);
    void *arg;
    chan_t *out;
};

static void gen_main(void *arg)
{
    struct gen g = *(struct gen *)arg;
    free(arg);
    g.fn(g.out, g.arg);
    chan_close(g.out);      /* EPIPE if fn closed it itself: fine */
    chan_release(g.out);
}

chan_t *chan_generator(void (*fn)(chan_t *out, void *arg), void *arg, size_t cap)
{
    chani_errmsg_clear();
    if (!fn) {
        errno = EINVAL;
        return NULL;
    }
    struct gen *g = malloc(sizeof *g);
    chan_t *out = chan_make(cap);
    if (!g || !out) {
        free(g);
        chan_release(out);
        errno = ENOMEM;
        return NULL;
    }
    g->fn = fn;
    g->arg = arg;
    g->out = chan_retain(out);      /* the goroutine's reference */
    if (chan_go(gen_main, g) < 0) {
        int err = errno;
        free(g);
        chan_release(out);
        chan_release(out);
        errno = err;
        return NULL;
    }
    return out;
}

struct fanin {
    _Atomic size_t live;    /* forwarders still running */
    chan_t *out;
};

struct fwd {
    struct fanin *f;
    chan_t *in;
};

/* Values up to this size travel through a stack buffer; larger ones are
 * received with chan_recv_alloc() after chan_recv() said EMSGSIZE. */
#define FWD_BUF 256

static void fwd_main(void *arg)
{
    struct fwd fw = *(struct fwd *)arg;
    free(arg);
    unsigned char buf[FWD_BUF];
    for (;;) {
        ssize_t n = chan_recv(fw.in, buf, sizeof buf, -1);
        int rc;
        if (n >= 0) {
            rc = chan_send(fw.f->out, buf, (size_t)n, -1);
        } else if (errno == EMSGSIZE) {
            void *big;
            n = chan_recv_alloc(fw.in, &big, -1);
            if (n < 0)
                break;
            rc = chan_send(fw.f->out, big, (size_t)n, -1);
            free(big);
        } else {
            break;              /* closed (or lost): this input is done */
        }
        if (rc < 0)
            break;              /* the output was closed: stop */
    }
    chan_release(fw.in);
    if (atomic_fetch_sub(&fw.f->live, 1) == 1) {
        chan_close(fw.f->out);
        chan_release(fw.f->out);
        free(fw.f);
    }
}

/* A forwarder that never started: account for it as if it had finished.
 * The started ones see the output closed at their next value and exit. */
static void fanin_abort(struct fanin *f, size_t missing)
{
    chan_close(f->out);
    if (atomic_fetch_sub(&f->live, missing) == missing) {
        chan_release(f->out);
        free(f);
    }
}

chan_t *chan_fanin(chan_t *const *inputs, size_t n)
{
    chani_errmsg_clear();
    if (!inputs || n == 0) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!inputs[i]) {
            errno = EINVAL;
            return NULL;
        }
    }
    struct fanin *f = malloc(sizeof *f);
    chan_t *out = chan_make(0);
    struct fwd **fw = calloc(n, sizeof *fw);
    if (!f || !out || !fw)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        if (!(fw[i] = malloc(sizeof **fw)))
            goto nomem;
    atomic_init(&f->live, n);
    f->out = chan_retain(out);      /* the forwarders' shared reference */
    for (size_t i = 0; i < n; i++) {
        fw[i]->f = f;
        fw[i]->in = chan_retain(inputs[i]);
        if (chan_go(fwd_main, fw[i]) < 0) {
            int err = errno;
            for (size_t j = i; j < n; j++) {
                if (j == i)
                    chan_release(fw[j]->in);
                free(fw[j]);
            }
            free(fw);
            fanin_abort(f, n - i);
            chan_release(out);
            errno = err;
            return NULL;
        }
    }
    free(fw);
    return out;
nomem:
    if (fw)
        for (size_t i = 0; i < n; i++)
            free(fw[i]);
    free(fw);
    free(f);
    chan_release(out);
    errno = ENOMEM;
    return NULL;
}

/*
 * chanbench.c - load generator for chand, through libchan's public API only
 * (chan.h): the workloads are loadgen.c's, this file says how a value moves.
 *
 * A connection is one chan_client_t, shared by the threads given to it (the
 * client is thread-safe: their requests travel together on one socket).
 * A batch is one chan_send_many() request; a receive is one
 * chan_recv_many() request for up to --recv-max values (chan_send and
 * chan_recv for single values, as an application would write a ping-pong).
 * A channel's length (drain --await-len) is chan_stat()'s.
 * Acknowledgements are libchan's own: they ride on the next request, or go
 * alone after CHAN_ACK_DELAY_MS (1 ms by default).
 *
 *   chanbench -a 127.0.0.1:7070 -p 1 -m 1 -P 256 -s 64 -n 2000000
 *   chanbench -a 127.0.0.1:7070 --mode ping-pong --cap 0
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan/chan.h"
#include "loadgen.h"

#define CALL_MS 10000   /* deadline of set-up calls */

/* A channel as one thread sees it. */
struct handle {
    chan_t *ch;
    size_t size;        /* single receives copy into buf */
    uint8_t *buf;
    bool allocated;     /* the last receive returned malloc()ed values */
    const int *quiet;   /* say nothing on failure (lg_opts_t.quiet) */
};

/* A connection: tls://host:port speaks TLS, checked against --tls-ca (else
 * $CHAN_TLS_CA, else the system's store). */
static chan_client_t *dial(const lg_opts_t *o)
{
    chan_connect_opts_t co = { .addr = o->addr, .tls_ca = o->tls_ca };
    return chan_connect_opts(&co, chan_now() + CALL_MS);
}

static void *cb_connect(const lg_opts_t *o)
{
    chan_client_t *cl = dial(o);
    if (!cl && !o->quiet)
        fprintf(stderr, "chanbench: connect %s: %s%s%s%s\n", o->addr ? o->addr : "(default)",
                strerror(errno), *chan_errmsg() ? " (" : "", chan_errmsg(),
                *chan_errmsg() ? ")" : "");
    return cl;
}

static void cb_disconnect(void *conn)
{
    chan_disconnect(conn);
}

static int cb_setup(const lg_opts_t *o, const char *const *names, size_t n)
{
    chan_client_t *cl = cb_connect(o);
    if (!cl)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        chan_t *ch = chan_open(cl, names[i], o->cap, 0, chan_now() + CALL_MS);
        if (!ch) {
            fprintf(stderr, "chanbench: open %s (cap %ld): %s\n", names[i], o->cap,
                    strerror(errno));
            rc = -1;
        }
        chan_release(ch);
    }
    chan_disconnect(cl);
    return rc;
}

/* Close the run's channels: they stay in chand (there is no delete), but
 * closed and empty. */
static void cb_teardown(const lg_opts_t *o, const char *const *names, size_t n)
{
    chan_client_t *cl = dial(o);
    for (size_t i = 0; cl && i < n; i++) {
        chan_t *ch = chan_open(cl, names[i], CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + CALL_MS);
        if (ch)
            chan_close(ch);
        chan_release(ch);
    }
    chan_disconnect(cl);
}

static void *cb_attach(void *conn, const char *name, enum lg_use use, const lg_opts_t *o)
{
    (void)use;   /* a channel handle both sends and receives */
    struct handle *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->size = o->size;
    h->quiet = &o->quiet;
    h->buf = malloc(o->size);
    h->ch = chan_open(conn, name, CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + CALL_MS);
    if (!h->ch || !h->buf) {
        if (!o->quiet)
            fprintf(stderr, "chanbench: open %s: %s\n", name, strerror(errno));
        chan_release(h->ch);
        free(h->buf);
        free(h);
        return NULL;
    }
    return h;
}

static void cb_detach(void *hp)
{
    struct handle *h = hp;
    chan_release(h->ch);
    free(h->buf);
    free(h);
}

static int cb_send(void *hp, const lg_val_t *vals, size_t n)
{
    struct handle *h = hp;
    if (n == 1) {
        if (chan_send(h->ch, vals[0].data, vals[0].len, -1) == 0)
            return 0;
        fprintf(stderr, "chanbench: chan_send: %s\n", strerror(errno));
        return -1;
    }
    /* lg_val_t and chan_val_t differ: pass a chan_val_t array */
    chan_val_t stack[256], *cv = n <= 256 ? stack : malloc(n * sizeof *cv);
    if (!cv)
        return -1;
    for (size_t i = 0; i < n; i++)
        cv[i] = (chan_val_t){ .data = vals[i].data, .len = vals[i].len };
    size_t done = 0;
    int rc = 0;
    while (done < n) {
        ssize_t k = chan_send_many(h->ch, cv + done, n - done, -1);
        if (k < 0) {
            fprintf(stderr, "chanbench: chan_send_many: %s\n", strerror(errno));
            rc = -1;
            break;
        }
        done += (size_t)k;
    }
    if (cv != stack)
        free(cv);
    return rc;
}

static ssize_t cb_recv(void *hp, lg_val_t *vals, size_t max, int timeout_ms)
{
    struct handle *h = hp;
    int64_t deadline = chan_now() + timeout_ms;
    if (max == 1) {
        ssize_t n = chan_recv(h->ch, h->buf, h->size, deadline);
        if (n < 0)
            goto fail;
        h->allocated = false;
        vals[0] = (lg_val_t){ h->buf, (size_t)n };
        return 1;
    }
    chan_val_t stack[256], *cv = max <= 256 ? stack : malloc(max * sizeof *cv);
    if (!cv)
        return -1;
    ssize_t n = chan_recv_many(h->ch, cv, max, deadline);
    for (ssize_t i = 0; i < n; i++)
        vals[i] = (lg_val_t){ cv[i].data, cv[i].len };
    if (cv != stack)
        free(cv);
    if (n < 0)
        goto fail;
    h->allocated = true;
    return n;
fail:
    if (errno == ETIMEDOUT)
        return 0;
    if (!*h->quiet)
        fprintf(stderr, "chanbench: receive: %s\n", strerror(errno));
    return -1;
}

static void cb_release(void *hp, lg_val_t *vals, size_t n)
{
    struct handle *h = hp;
    if (h->allocated)
        for (size_t i = 0; i < n; i++)
            free(vals[i].data);
}

static int cb_ping(void *conn)
{
    return chan_ping(conn, chan_now() + CALL_MS);
}

static void cb_fields(const lg_opts_t *o)
{
    printf(" cap=%ld", o->cap);
}

static int64_t cb_length(void *conn, const char *name)
{
    chan_stat_t st;
    if (chan_stat(conn, name, &st, chan_now() + CALL_MS) < 0)
        return -1;
    return (int64_t)st.len;
}

int main(int argc, char **argv)
{
    static const lg_backend_t chand = {
        .name = "chand",
        .setup = cb_setup,
        .teardown = cb_teardown,
        .connect = cb_connect,
        .disconnect = cb_disconnect,
        .attach = cb_attach,
        .detach = cb_detach,
        .send = cb_send,
        .recv = cb_recv,
        .release = cb_release,
        .ping = cb_ping,
        .length = cb_length,
        .fields = cb_fields,
        .shared_conns = 1,
    };
    lg_opts_t o;
    lg_parse(&o, argc, argv, &chand);
    return lg_run(&o, &chand);
}

/*
 * chan_client.c - the client object: a connection to chand made
 * (chan_connect), lost (every call in flight fails; the next one dials
 * again), and closed (chan_disconnect, or the last reference); and
 * chan_ping.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 *
 * The idea is in chan_client.h; how its files share the work, and the
 * rules they keep (threads, the lock, TLS), in chan_client_int.h.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan_clock.h"
#include "chan_errmsg.h"
#include "remote/chan_client_int.h"
#include "remote/chan_route.h"

#define READ_CHUNK (64 * 1024)
/* Default CHAN_ACK_DELAY_MS: acks wait up to 1 ms for a request to ride on
 * (see chan_client.h).  A receiving loop's next receive, or the reply a
 * server sends, then carries them: half the frames of a loop of receives,
 * and an unbuffered request/reply round trip one frame shorter. */
#define ACK_DELAY_MS 1

/* ---- making one ---- */

/* An option, else the environment variable, else NULL ("" counts as unset). */
static const char *opt_env(const char *v, const char *env)
{
    if (!v || !*v)
        v = getenv(env);
    return v && *v ? v : NULL;
}

/* Free everything a client holds: its connection (closed already, or never
 * made: chan_connect_opts() frees a half-made client so) and its memory. */
static void client_free(chan_client_t *cl)
{
    chani_route_free(cl);
    chani_tls_free_ssl(cl->ssl);
    chani_tls_free(cl->tls);
    if (cl->fd >= 0)
        close(cl->fd);
    if (cl->zombie_fd >= 0)
        close(cl->zombie_fd);
    free(cl->rbuf);
    chan_arena_free(&cl->arena);
    if (cl->wake_fd >= 0)
        close(cl->wake_fd);
    idmap_free(&cl->rpcs);
    idmap_free(&cl->handles);   /* empty: each handle holds a reference */
    free(cl->obuf);
    free(cl->acks.v);
    free(cl->nacks.v);
    free(cl->addr);
    free(cl->token);
    free(cl->user);
    pthread_mutex_destroy(&cl->lock);
    pthread_cond_destroy(&cl->drained);
    free(cl);
}

chan_client_t *chan_connect_opts(const chan_connect_opts_t *o, int64_t deadline)
{
    static const chan_connect_opts_t none;
    chani_errmsg_clear();
    if (!o)
        o = &none;
    const char *addr = o->addr ? o->addr : getenv("CHAN_ADDR");
    if (!addr || !*addr)
        addr = CHAN_DEFAULT_ADDR;
    const char *token = o->token ? o->token : getenv("CHAN_TOKEN");
    if (token && !*token)
        token = NULL;
    const char *user = opt_env(o->user, "CHAN_USER");
    chan_client_t *cl = calloc(1, sizeof *cl);
    if (!cl) {
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&cl->refs, 1);
    pthread_mutex_init(&cl->lock, NULL);
    pthread_cond_init(&cl->drained, NULL);
    cl->wake_fd = -1;
    cl->fd = -1;
    cl->zombie_fd = -1;
    cl->reader = RD_FREE;
    chan_arena_init(&cl->arena);
    cl->rcap = READ_CHUNK;
    cl->rbuf = malloc(cl->rcap);
    cl->ack_delay = cl->ack_delay_wanted = ACK_DELAY_MS;
    const char *delay = getenv("CHAN_ACK_DELAY_MS");
    if (delay && *delay)
        cl->ack_delay = cl->ack_delay_wanted = strtol(delay, NULL, 10) > 0 ? strtol(delay, NULL, 10) : 0;
    cl->addr = strdup(addr);
    cl->token = token ? strdup(token) : NULL;
    cl->user = user ? strdup(user) : NULL;
    cl->gen = 1;
    struct chani_hello hi;
    int err = 0;
    if (!cl->addr || (token && !cl->token) || (user && !cl->user) || !cl->rbuf) {
        err = ENOMEM;
    } else {
        cl->tls_all = o->tls;
        if ((o->tls || strstr(cl->addr, "tls://")) &&
            !(cl->tls = chani_tls_new(opt_env(o->tls_ca, "CHAN_TLS_CA"),
                                     opt_env(o->tls_cert, "CHAN_TLS_CERT"),
                                     opt_env(o->tls_key, "CHAN_TLS_KEY"),
                                     opt_env(o->tls_servername, "CHAN_TLS_SERVERNAME"))))
            err = errno;
        else if ((cl->fd = chani_dial(cl, deadline, &cl->ssl, &hi)) < 0)
            err = errno;
        else if ((cl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
            err = errno;
    }
    if (!err) {
        chani_apply_hello(cl, &hi);   /* before the I/O thread reads frames */
        err = chani_io_start(cl);
    }
    if (err) {
        client_free(cl);
        errno = err;
        return NULL;
    }
    return cl;
}

chan_client_t *chan_connect(const char *addr, const char *token, int64_t deadline)
{
    chan_connect_opts_t o = { .addr = addr, .token = token };
    return chan_connect_opts(&o, deadline);
}

chan_client_t *chani_client_connect_like(chan_client_t *cl, const char *addr, int64_t deadline)
{
    chan_connect_opts_t o = { .addr = addr };
    if (cl && cl->tls) {
        o.tls = cl->tls_all;
        o.tls_ca = cl->tls->ca;
        o.tls_cert = cl->tls->cert;
        o.tls_key = cl->tls->key;
    }
    return chan_connect_opts(&o, deadline);
}

/* ---- losing the connection ---- */

void chani_client_fail_all(chan_client_t *cl, int err, uint64_t gen, bool reading)
{
    pthread_mutex_lock(&cl->lock);
    if (cl->gen != gen) {
        pthread_mutex_unlock(&cl->lock);
        return;
    }
    if (!cl->dead) {
        cl->dead = true;
        cl->dead_err = err;
    }
    /* a reader of this connection checks for it under the lock before
     * each SSL_read (chan_reader.c's conn_recv): it finds it gone */
    chani_tls_free_ssl(cl->ssl);
    cl->ssl = NULL;
    if (cl->fd >= 0) {
        if (!reading && cl->reader == RD_CALLER && cl->reader_gen == gen) {
            /* A caller waits on this socket: closing it would not wake it
             * (its poll holds the file) and the number could be reused
             * under it.  Shut it down (that wakes it) and let it close it. */
            shutdown(cl->fd, SHUT_RDWR);
            cl->zombie_fd = cl->fd;
        } else {
            close(cl->fd);
        }
        cl->fd = -1;
    }
    if (cl->reader == RD_IO)
        cl->reader = RD_FREE;   /* the I/O thread is the caller, or gone */
    cl->outstanding = 0;
    chani_wake_io(cl);   /* it stops watching the socket */
    cl->olen = 0;
    cl->odeferred = false;
    size_t n = 0;
    chan_waiter_t **wake = malloc((cl->rpcs.count ? cl->rpcs.count : 1) * sizeof *wake);
    for (size_t i = 0; i < cl->rpcs.cap && wake; i++) {
        chan_rpc_t *rpc = cl->rpcs.vals[i];
        if (!cl->rpcs.keys[i])
            continue;
        if (rpc->settled) {
            if (chani_waiter_claim(rpc->settled))
                wake[n++] = rpc->settled;
        } else if (rpc->multi) {
            /* one source of a select is lost: the others go on */
            chan_waiter_t *w = chani_multi_pass(rpc->multi, cl->dead_err);
            if (w)
                wake[n++] = w;
        } else if (chani_waiter_claim(rpc->w)) {
            rpc->err = cl->dead_err;
            rpc->w->index = 0;
            wake[n++] = rpc->w;
        }
    }
    idmap_free(&cl->rpcs);
    pthread_cond_broadcast(&cl->drained);
    pthread_mutex_unlock(&cl->lock);
    for (size_t i = 0; i < n; i++)
        chani_waiter_wake(wake[i]);
    free(wake);
}

/* ---- closing ---- */

/* Write out what is queued, for up to a second: the last acknowledgements
 * matter (without them chand would redeliver values we took). */
static void drain_out(chan_client_t *cl)
{
    int64_t deadline = chan_now() + 1000;
    pthread_mutex_lock(&cl->lock);
    while (cl->olen && !cl->dead && cl->fd >= 0) {
        /* A reader may fail the connection (and close the socket) while we
         * wait, which would not wake a poll: wait in short slices. */
        int fd = cl->fd;
        pthread_mutex_unlock(&cl->lock);
        int64_t now = chan_now();
        int ready = now >= deadline ? 0 : chani_wait_fd(fd, POLLOUT, now + 10 < deadline ? now + 10 : deadline);
        pthread_mutex_lock(&cl->lock);
        if (cl->dead || cl->fd != fd)
            break;
        if (ready < 0 || (ready == 0 && chan_now() >= deadline))
            break;
        if (ready == 0)
            continue;
        ssize_t w = chani_io_send(cl->fd, cl->ssl, cl->obuf, cl->olen);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            break;
        if (w > 0) {
            memmove(cl->obuf, cl->obuf + w, cl->olen - (size_t)w);
            cl->olen -= (size_t)w;
        }
    }
    pthread_mutex_unlock(&cl->lock);
}

/* Stop the I/O thread, send what is queued, fail what is in flight.  Once. */
static void client_close(chan_client_t *cl)
{
    pthread_mutex_lock(&cl->lock);
    bool first = !cl->closing;
    cl->closing = true;
    pthread_mutex_unlock(&cl->lock);
    if (!first)
        return;
    if (cl->io_started) {
        chani_io_stop(cl);
        drain_out(cl);
    }
    chani_client_fail_all(cl, ECONNRESET, cl->gen, false);   /* closes the socket */
}

void chan_disconnect(chan_client_t *cl)
{
    if (!cl)
        return;
    client_close(cl);
    chani_client_unref(cl);
}

/* The last reference closes the connection if chan_disconnect() did not
 * (a connection made by chan_open_ref() for its handle). */
void chani_client_unref(chan_client_t *cl)
{
    if (!cl || atomic_fetch_sub_explicit(&cl->refs, 1, memory_order_acq_rel) != 1)
        return;
    client_close(cl);
    client_free(cl);
}

/* ---- ping ---- */

int chan_ping(chan_client_t *cl, int64_t deadline)
{
    chani_errmsg_clear();
    if (!cl) {
        errno = EINVAL;
        return -1;
    }
    Chan__Ping p = CHAN__PING__INIT;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_PING;
    rq.ping = &p;
    chan_rpc_t rpc = { 0 };
    if (chani_client_call(cl, &rq, &rpc, deadline) < 0)
        return -1;
    if (rpc.status != CHAN__STATUS__OK)
        return chani_rpc_fail(&rpc);
    return 0;
}

/*
 * chan_iothread.c - the client's I/O thread: it flushes output the kernel
 * did not take at once, sends delayed acknowledgements and the values given
 * back, watches for a hang-up, and reads replies when no caller does.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 *
 * Callers write and read for themselves (chan_client_int.h), so this
 * thread costs a call nothing when all goes well: while someone else holds
 * the reader role it waits only for POLLRDHUP, which data does not wake,
 * and POLLOUT when output is queued.  Callers wake it through cl->wake_fd
 * (chani_wake_io) when they queue output, hand it the role, or queue an
 * acknowledgement while it sleeps with no timer.  Output that goroutines
 * put off for their workers' loops is not its to write, unless it waits
 * too long: it wakes every CHANI_DEFER_GRACE_MS to look while goroutines
 * put output off (the first such bytes after a rest wake it).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>

#include "chan_clock.h"
#include "remote/chan_client_int.h"

#define RETRY_MS 10   /* ids that could not go (out of memory) try again */

/* Bytes goroutines put off for their workers' loops (chan_call.c): write
 * them once they have waited CHANI_DEFER_GRACE_MS (a worker's thread is
 * blocked), and keep looking while goroutines put bytes off; then rest.
 * Lock held.  True if obuf is ours to flush; *timeout shortened to the
 * next look. */
static bool watch_deferred_locked(chan_client_t *cl, int *timeout)
{
    if (!cl->io_watch)
        return cl->olen && !cl->odeferred;
    int64_t now = chan_now(), left = cl->odeferred_at + CHANI_DEFER_GRACE_MS - now;
    if (left <= 0) {
        cl->odeferred = false;   /* late: ours now */
        cl->io_watch = false;    /* the next bytes put off wake us */
    } else if (*timeout < 0 || left < *timeout) {
        *timeout = (int)left;
    }
    return cl->olen && !cl->odeferred;
}

/* Send what must go now: every nack, and the acks if they have waited
 * ack_delay for a request to ride on (or `all`).  Returns the poll timeout
 * until the next check, -1 for none. */
static int flush_acks(chan_client_t *cl, bool all)
{
    pthread_mutex_lock(&cl->lock);
    int64_t now = chan_now();
    bool acks_due = cl->acks.n && (all || now - cl->ack_oldest >= cl->ack_delay);
    bool failed = (acks_due || cl->nacks.n) && !cl->dead &&
                  !chani_send_ids_locked(cl, acks_due ? &cl->acks : NULL, &cl->nacks) &&
                  !cl->dead;
    int timeout = -1;
    if (cl->acks.n)
        timeout = (int)(cl->ack_oldest + cl->ack_delay - now);
    else if (atomic_load_explicit(&cl->handed, memory_order_relaxed))
        timeout = (int)cl->ack_delay;   /* the caller is about to queue them */
    if (failed && timeout < RETRY_MS)
        timeout = RETRY_MS;   /* out of memory: what is left goes later */
    atomic_store_explicit(&cl->handed, false, memory_order_relaxed);
    cl->io_idle = timeout == -1;       /* chani_client_ack must wake us */
    pthread_mutex_unlock(&cl->lock);
    return timeout < 0 ? (timeout == -1 ? -1 : 0) : timeout;
}

static void flush_out(chan_client_t *cl)
{
    pthread_mutex_lock(&cl->lock);
    while (cl->olen && cl->fd >= 0) {
        ssize_t w = chani_io_send(cl->fd, cl->ssl, cl->obuf, cl->olen);
        if (w <= 0)
            break;
        memmove(cl->obuf, cl->obuf + w, cl->olen - (size_t)w);
        cl->olen -= (size_t)w;
    }
    cl->odeferred = false;   /* what is left is ours: we poll for POLLOUT */
    pthread_cond_broadcast(&cl->drained);
    pthread_mutex_unlock(&cl->lock);
}

static void *io_main(void *arg)
{
    chan_client_t *cl = arg;
    uint64_t gen = 0;
    for (;;) {
        /* Every turn, right before sleeping: send what is due and set the
         * timer for delayed acknowledgements (io_idle tells a caller that
         * queues one whether it must wake us).  Doing it only after reading
         * replies would leave a delayed ack unsent forever whenever callers
         * do the reading. */
        int timeout = flush_acks(cl, false);
        pthread_mutex_lock(&cl->lock);
        bool want_out = watch_deferred_locked(cl, &timeout);
        bool closing = cl->closing, dead = cl->dead;
        int fd = cl->fd;
        uint64_t g = cl->gen;
        bool reading = cl->reader == RD_IO && cl->reader_gen == g;
        bool hup = cl->io_hup;
        pthread_mutex_unlock(&cl->lock);
        if (closing)
            break;
        gen = g;
        /* Reading: wait for replies.  Not reading: wait only for a hang-up,
         * which data does not wake (POLLRDHUP is not in the key of a data
         * wake-up), so the reader's replies cost this thread nothing.  A
         * hang-up seen already waits for the reader to let go. */
        short ev = 0;
        if (!dead && !(hup && !reading))
            ev = (short)((reading ? POLLIN : POLLRDHUP) | (want_out ? POLLOUT : 0));
        struct pollfd p[2] = {
            { ev ? fd : -1, ev, 0 },
            { cl->wake_fd, POLLIN, 0 },
        };
        int np = poll(p, 2, dead ? -1 : timeout);
        if (np < 0 && errno != EINTR)
            break;
        if (np <= 0)
            continue;
        if (p[1].revents) {
            uint64_t v;
            (void)!read(cl->wake_fd, &v, sizeof v);
        }
        if (dead || !ev)
            continue;
        if (p[0].revents & POLLOUT)
            flush_out(cl);
        if (reading && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            int err = chani_reader_pump(cl, fd, gen);
            if (err) {
                chani_reader_failed(cl, err, gen);
                continue;
            }
            /* Nothing more awaited: the next caller may read for itself. */
            pthread_mutex_lock(&cl->lock);
            if (cl->reader == RD_IO && !cl->outstanding)
                cl->reader = RD_FREE;
            pthread_mutex_unlock(&cl->lock);
        } else if (!reading && (p[0].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
            /* The peer hung up: read what is left and the end, as the
             * reader, or have the reader hand the role over when it is done
             * (it may see the end itself first). */
            pthread_mutex_lock(&cl->lock);
            if (cl->reader == RD_FREE && cl->gen == gen && !cl->dead) {
                cl->reader = RD_IO;
                cl->reader_gen = gen;
                cl->reader_fd = cl->fd;
            } else if (cl->gen == gen && !cl->dead) {
                cl->io_hup = true;   /* not a connection failed (and
                                        perhaps redialled) meanwhile */
            }
            pthread_mutex_unlock(&cl->lock);
        }
    }
    pthread_mutex_lock(&cl->lock);
    if (cl->reader == RD_IO)
        cl->reader = RD_FREE;
    pthread_mutex_unlock(&cl->lock);
    flush_acks(cl, true);   /* closing: what the caller has is taken */
    return NULL;
}

int chani_io_start(chan_client_t *cl)
{
    int err = pthread_create(&cl->io, NULL, io_main, cl);
    if (err == 0)
        cl->io_started = true;
    return err;
}

void chani_io_stop(chan_client_t *cl)
{
    chani_wake_io(cl);
    pthread_join(cl->io, NULL);
}

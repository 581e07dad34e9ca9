/*
 * chan_redial.c - replacing a lost connection: the next call dials again.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 *
 * No thread watches for a dead daemon to come back: the first call after
 * the loss dials (chan_call.c, as it starts), and the calls that come
 * while it does fail at once with ECONNRESET, as do those within a backoff
 * after a failed dial, which doubles per failure up to a bound.  So a dead
 * daemon costs callers nothing, and one that is back is found by the next
 * call.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>

#include "chan_clock.h"
#include "remote/chan_client_int.h"

#define DIAL_TIMEOUT_MS 5000      /* a reconnection attempt */
#define BACKOFF_MIN_MS 50         /* first wait after a failed reconnection */
#define BACKOFF_MAX_MS 5000

/* The connection is gone: dial again, unless a dial failed less than the
 * backoff ago (then fail at once: a dead daemon costs callers nothing).
 * Called and returns with cl->lock held; released while dialling.  The new
 * connection starts clean: calls in flight on the old one have failed,
 * unacknowledged values there are chand's to redeliver, and temporary
 * channels made on it are gone.  Its first requests open the handles'
 * channels again (chan_reopen.c): the daemon may have restarted without
 * them, and the handles must go on naming the same channels.  0, or -1
 * with errno ECONNRESET. */
int chani_redial_locked(chan_client_t *cl)
{
    int64_t now = chan_now();
    if (cl->closing || cl->reconnecting || now < cl->retry_at) {
        errno = ECONNRESET;
        return -1;
    }
    cl->reconnecting = true;
    pthread_mutex_unlock(&cl->lock);
    struct chani_hello hi;
    SSL *ssl = NULL;
    int fd = chani_dial(cl, now + DIAL_TIMEOUT_MS, &ssl, &hi);
    pthread_mutex_lock(&cl->lock);
    if (fd >= 0 && !cl->closing && chani_reopen_locked(cl, fd, ssl, hi.max_frame) < 0) {
        chani_tls_free_ssl(ssl);
        ssl = NULL;
        close(fd);
        fd = -1;
    }
    cl->reconnecting = false;
    if (fd < 0 || cl->closing) {
        chani_tls_free_ssl(ssl);
        if (fd >= 0)
            close(fd);
        cl->backoff = cl->backoff ? cl->backoff * 2 : BACKOFF_MIN_MS;
        if (cl->backoff > BACKOFF_MAX_MS)
            cl->backoff = BACKOFF_MAX_MS;
        cl->retry_at = chan_now() + cl->backoff;
        errno = ECONNRESET;
        return -1;
    }
    chani_apply_hello(cl, &hi);
    cl->fd = fd;
    cl->ssl = ssl;
    cl->gen++;
    cl->dead = false;
    cl->dead_err = 0;
    cl->backoff = 0;
    cl->olen = 0;
    cl->odeferred = false;
    cl->outstanding = 0;
    cl->io_hup = false;
    cl->acks.n = cl->nacks.n = 0;   /* delivery ids of the old connection */
    chani_wake_io(cl);
    return 0;
}

/*
 * chan_reopen.c - a client's remote channel handles, and opening them all
 * again when the client redials.
 *
 * A handle names its channel, and chand knows channels by name only.  The
 * daemon a redial reaches may have restarted: one that kept its channels in
 * memory has lost them, one that recovers them has them back.  So before
 * the new connection carries anything else, each live handle's channel is
 * opened again the way the handle was opened (Open, PROTOCOL.md 5):
 *
 *   - made, or opened with creation allowed: Open{name, capacity}, with the
 *     capacity asked for (for CHAN_CAP_ANY, the one chand reported, which
 *     chan_cap() tells the application): a daemon that lost the channel
 *     makes it again as it was, one that has it confirms it.  EXISTS means
 *     the name now holds a channel of another capacity, not this handle's:
 *     its calls fail with EEXIST from then on.
 *   - opened with CHAN_NOCREATE: Open{name, no_create}, never made here.
 *     NOT_FOUND leaves its calls to find the channel missing (ENOENT) until
 *     someone makes it, as for a channel deleted under a handle.
 *   - a temporary channel this client made died with the connection that
 *     made it (chand deletes it): not opened; its calls fail with ENOENT
 *     (chani_client_handles_err_locked), and its name never goes out again,
 *     since another channel may take it.
 *   - a temporary channel of another client (chan_open_ref): opened with
 *     no_create; gone, or the name now holding a channel that is not
 *     temporary, it is not this one any more: ENOENT from then on.
 *
 * The Opens are pipelined, written while their answers are read: one round
 * trip for all of them, and neither side's buffers fill up however many
 * handles there are.  The connection is published only after the last
 * answer, so nothing else reaches the daemon before them.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "remote/chan_client.h"
#include "remote/chan_tls.h"

#define REOPEN_IDLE_MS 5000       /* give up after this long without progress */
#define REOPEN_CHUNK (64 * 1024)  /* Opens encoded at a time */
#define REOPEN_FIRST_ID 2         /* the Hello was request 1 */

/* ---- the registry ---- */

int chani_client_track(chan_client_t *cl, chan_remote_t *r, uint64_t gen)
{
    int err = 0;
    pthread_mutex_lock(&cl->lock);
    if (cl->gen != gen) {
        err = ESTALE;
    } else {
        r->serial = ++cl->handle_serial;
        r->gen = gen;
        r->err = 0;
        if (idmap_put(&cl->handles, r->serial, r) < 0)
            err = ENOMEM;
    }
    pthread_mutex_unlock(&cl->lock);
    if (err) {
        r->serial = 0;
        errno = err;
        return -1;
    }
    return 0;
}

void chani_client_untrack(chan_client_t *cl, chan_remote_t *r)
{
    if (!r->serial)
        return;
    pthread_mutex_lock(&cl->lock);
    idmap_del(&cl->handles, r->serial);
    pthread_mutex_unlock(&cl->lock);
}

int chani_client_handles_err_locked(chan_client_t *cl, chan_remote_t *const *hs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const chan_remote_t *r = hs[i];
        if (!r)
            continue;
        if (r->err)
            return r->err;
        /* chand deletes a temporary channel with the connection that made
         * it: once that is lost, the channel is (a closing client's calls
         * fail with ECONNRESET, as chan_disconnect() says) */
        if (r->owned && !cl->closing && (cl->dead || r->gen != cl->gen))
            return ENOENT;
    }
    return 0;
}

int chani_client_handles_err(chan_client_t *cl, chan_remote_t *const *hs, size_t n)
{
    pthread_mutex_lock(&cl->lock);
    int err = chani_client_handles_err_locked(cl, hs, n);
    pthread_mutex_unlock(&cl->lock);
    return err;
}

/* ---- opening them again ---- */

struct reopen {
    chan_client_t *cl;
    int fd;
    SSL *ssl;                /* TLS, or NULL: the connection is not yet
                                published, so only this thread uses it */
    uint64_t max_frame;
    uint64_t *serials;       /* request REOPEN_FIRST_ID + i opens serials[i] */
    size_t n;
    size_t next;             /* the next to encode */
    size_t asked, answered;  /* Opens encoded, answers read */
    uint8_t *out;            /* encoded, written up to ooff */
    size_t olen, ooff;
    uint8_t *in;             /* read, not yet decoded */
    size_t ilen, icap;
    chan_arena_t arena;
};

/* The handles registered after serial `after` that need opening, into
 * ro->serials (lock held).  0, or -1 with ENOMEM. */
static int snapshot_locked(chan_client_t *cl, uint64_t after, struct reopen *ro)
{
    const chan_idmap_t *m = &cl->handles;
    ro->serials = malloc((m->count ? m->count : 1) * sizeof *ro->serials);
    if (!ro->serials) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        const chan_remote_t *r = m->vals[i];
        if (m->keys[i] > after && !r->err && !r->owned)
            ro->serials[ro->n++] = m->keys[i];
    }
    return 0;
}

/* The Open that opens r's channel again as r was opened (see the top). */
static void open_of(const chan_remote_t *r, Chan__Open *m)
{
    m->has_name = true;
    m->name.data = (uint8_t *)r->name;
    m->name.len = r->name_len;
    if (r->no_create || r->temp) {
        m->has_no_create = m->no_create = true;
        m->has_capacity = r->want_cap != CHAN_CAP_ANY;
        m->capacity = m->has_capacity ? (uint64_t)r->want_cap : 0;
    } else {
        m->has_capacity = true;
        m->capacity = r->want_cap != CHAN_CAP_ANY ? (uint64_t)r->want_cap : r->cap;
    }
}

/* Encode the next Opens, up to a chunk, into ro->out.  Handles released
 * meanwhile are skipped.  0, or -1 with ENOMEM. */
static int fill_out(struct reopen *ro)
{
    if (!ro->out && !(ro->out = malloc(REOPEN_CHUNK)))
        return errno = ENOMEM, -1;
    ro->olen = ro->ooff = 0;
    pthread_mutex_lock(&ro->cl->lock);
    for (; ro->next < ro->n; ro->next++) {
        const chan_remote_t *r = idmap_get(&ro->cl->handles, ro->serials[ro->next]);
        if (!r)
            continue;
        Chan__Open m = CHAN__OPEN__INIT;
        open_of(r, &m);
        Chan__Request rq = CHAN__REQUEST__INIT;
        rq.has_id = true;
        rq.id = REOPEN_FIRST_ID + ro->next;
        rq.op_case = CHAN__REQUEST__OP_OPEN;
        rq.open = &m;
        size_t size = chan_frame_size_request(&rq);   /* a few hundred bytes */
        if (ro->olen + size > REOPEN_CHUNK)
            break;
        ro->olen += chan_frame_encode_request_sized(&rq, size, ro->out + ro->olen);
        ro->asked++;
    }
    pthread_mutex_unlock(&ro->cl->lock);
    return 0;
}

/* What chand answered about handle `serial` (lock held). */
static void apply_locked(chan_client_t *cl, uint64_t serial, const Chan__Reply *rp)
{
    chan_remote_t *r = idmap_get(&cl->handles, serial);
    if (!r)
        return;   /* released meanwhile */
    Chan__Status st = rp->has_status ? rp->status : CHAN__STATUS__OK;
    bool temp = st == CHAN__STATUS__OK && rp->result_case == CHAN__REPLY__RESULT_OPEN &&
                rp->open->has_temp && rp->open->temp;
    if (st == CHAN__STATUS__EXISTS)
        r->err = EEXIST;
    else if (r->temp && (st == CHAN__STATUS__NOT_FOUND || (st == CHAN__STATUS__OK && !temp)))
        r->err = ENOENT;
    /* Anything else (BUSY: too many channels, ...) is not settled for
     * good: calls go to chand and get its answer, and the next redial
     * tries again. */
}

/* Decode the whole answers in ro->in and note them.  0, or -1 with errno
 * (EPROTO, or chand's reason for ending the connection). */
static int take_answers(struct reopen *ro)
{
    size_t off = 0;
    int rc = 0;
    pthread_mutex_lock(&ro->cl->lock);
    while (off < ro->ilen) {
        uint64_t body;
        size_t hdr;
        int h = chan_frame_header(ro->in + off, ro->ilen - off, ro->max_frame, &body, &hdr);
        if (h == CHAN_FRAME_MORE || (h == CHAN_FRAME_OK && ro->ilen - off < hdr + body))
            break;
        const Chan__Reply *rp = h == CHAN_FRAME_OK
                              ? chan_frame_decode_reply(&ro->arena, ro->in + off + hdr, body)
                              : NULL;
        off += h == CHAN_FRAME_OK ? hdr + body : 0;
        uint64_t i = rp && rp->has_id ? rp->id - REOPEN_FIRST_ID : UINT64_MAX;
        if (!rp || !rp->has_id || rp->id < REOPEN_FIRST_ID || i >= ro->next) {
            /* id 0: about the connection, which chand closes next */
            bool why = rp && rp->has_status && rp->status != CHAN__STATUS__OK;
            errno = why ? chani_status_errno(rp->status) : EPROTO;
            rc = -1;
            break;
        }
        apply_locked(ro->cl, ro->serials[i], rp);
        ro->answered++;
        chan_arena_reset(&ro->arena);
    }
    pthread_mutex_unlock(&ro->cl->lock);
    memmove(ro->in, ro->in + off, ro->ilen - off);
    ro->ilen -= off;
    return rc;
}

/* One read: 1 if bytes came, 0 if none, or -1 with errno. */
static int read_more(struct reopen *ro)
{
    if (ro->ilen == ro->icap) {
        size_t ncap = ro->icap ? ro->icap * 2 : 16384;
        if (ncap > ro->max_frame + CHAN_FRAME_HDR_MAX)
            ncap = ro->max_frame + CHAN_FRAME_HDR_MAX;
        uint8_t *b = ncap > ro->icap ? realloc(ro->in, ncap) : NULL;
        if (!b)
            return errno = EPROTO, -1;   /* a frame over the limit */
        ro->in = b;
        ro->icap = ncap;
    }
    ssize_t n = chani_io_recv(ro->fd, ro->ssl, ro->in + ro->ilen, ro->icap - ro->ilen);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        return errno = ECONNRESET, -1;
    if (n < 0)
        return 0;
    ro->ilen += (size_t)n;
    return take_answers(ro) < 0 ? -1 : 1;
}

/* Read what the socket has (TLS: and what OpenSSL holds of it, which
 * poll() does not see).  0, or -1 with errno. */
static int read_answers(struct reopen *ro)
{
    int rc;
    do
        rc = read_more(ro);
    while (rc > 0 && chani_io_pending(ro->ssl));
    return rc < 0 ? -1 : 0;
}

static int write_opens(struct reopen *ro)
{
    ssize_t w = chani_io_send(ro->fd, ro->ssl, ro->out + ro->ooff, ro->olen - ro->ooff);
    if (w < 0 && errno != EAGAIN && errno != EINTR)
        return errno = ECONNRESET, -1;
    if (w > 0)
        ro->ooff += (size_t)w;
    return 0;
}

/* Send every Open of ro and read every answer, at once.  0, or -1 with
 * errno. */
static int exchange(struct reopen *ro)
{
    int64_t idle_end = chan_now() + REOPEN_IDLE_MS;
    while (ro->next < ro->n || ro->ooff < ro->olen || ro->answered < ro->asked) {
        if (ro->ooff == ro->olen && ro->next < ro->n && fill_out(ro) < 0)
            return -1;
        int64_t left = idle_end - chan_now();
        if (left <= 0)
            return errno = ETIMEDOUT, -1;
        struct pollfd p = { ro->fd, (short)(POLLIN | (ro->ooff < ro->olen ? POLLOUT : 0)), 0 };
        int np = poll(&p, 1, (int)left);
        if (np < 0 && errno != EINTR)
            return -1;
        if (np <= 0)
            continue;
        size_t before = ro->ooff + ro->answered;
        if ((p.revents & POLLOUT) && write_opens(ro) < 0)
            return -1;
        if ((p.revents & (POLLIN | POLLHUP | POLLERR)) && read_answers(ro) < 0)
            return -1;
        if (ro->ooff + ro->answered != before)
            idle_end = chan_now() + REOPEN_IDLE_MS;
    }
    return 0;
}

int chani_reopen_locked(chan_client_t *cl, int fd, SSL *ssl, uint64_t max_frame)
{
    /* Handles registered while the Opens were out (their Open's reply came
     * on the lost connection) are opened in another round. */
    uint64_t done = 0;
    while (done < cl->handle_serial) {
        struct reopen ro = { .cl = cl, .fd = fd, .ssl = ssl, .max_frame = max_frame };
        if (snapshot_locked(cl, done, &ro) < 0)
            return -1;
        done = cl->handle_serial;
        int rc = 0, err = 0;
        if (ro.n) {
            chan_arena_init(&ro.arena);
            pthread_mutex_unlock(&cl->lock);
            rc = exchange(&ro);
            err = errno;
            pthread_mutex_lock(&cl->lock);
            chan_arena_free(&ro.arena);
        }
        free(ro.serials);
        free(ro.out);
        free(ro.in);
        if (rc < 0) {
            errno = err;
            return -1;
        }
    }
    return 0;
}

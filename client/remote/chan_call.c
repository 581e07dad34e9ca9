/*
 * chan_call.c - a call to chand: start it (an id, the registration, the
 * write), wait for its reply, or give up on it; and the small frames that
 * go with calls: acknowledgements, values given back, cancels, releases.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 *
 * A caller writes its own request, under cl->lock, on the non-blocking
 * socket; what the kernel does not take waits in cl->obuf for the I/O
 * thread.  Acknowledgements waiting to go out ride on the next request.
 * Values given back (nacks) go out ahead of every request, so that chand
 * returns them to their channels before it serves anything the caller
 * asks next.  The rules shared with the reader and the I/O thread are in
 * chan_client_int.h.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "chan_clock.h"
#include "chan_errmsg.h"
#include "remote/chan_client_int.h"
#include "runtime/chan_sched.h"

#define OBUF_MAX (64u << 20)      /* callers wait while more is unwritten */
#define GRACE_MS 2000             /* for chand to answer its own timeout */

int chani_status_errno(Chan__Status st)
{
    switch (st) {
    case CHAN__STATUS__OK: return 0;
    case CHAN__STATUS__CLOSED: return EPIPE;
    case CHAN__STATUS__TIMEOUT: return ETIMEDOUT;
    case CHAN__STATUS__NOT_FOUND: return ENOENT;
    case CHAN__STATUS__EXISTS: return EEXIST;
    case CHAN__STATUS__TOO_LARGE: return EMSGSIZE;
    case CHAN__STATUS__BAD_REQUEST: return EINVAL;
    case CHAN__STATUS__UNAUTHORIZED: return EACCES;
    case CHAN__STATUS__BUSY: return EBUSY;
    case CHAN__STATUS__SHUTTING_DOWN: return ESHUTDOWN;
    case CHAN__STATUS__CANCELED: return ECANCELED;
    case CHAN__STATUS__RETRY: return EAGAIN;
    case CHAN__STATUS__NOT_PRIMARY: return ECONNRESET;   /* a failover: dial again */
    case CHAN__STATUS__MOVED: return EREMCHG;   /* chan_route.c: ask the map, go there */
    default: return EPROTO;
    }
}

int chani_rpc_fail(const chan_rpc_t *rpc)
{
    if (rpc->message[0])
        chani_errmsg_set("%s", rpc->message);
    errno = chani_status_errno(rpc->status);
    return -1;
}

/* ---- the write path ---- */

/* A goroutine's frame no larger than this waits in obuf for its worker's
 * loop (defer_write); a larger one goes at once. */
#define DEFER_FRAME_MAX (16u << 10)

/* Write as much of obuf as the socket takes; cl->lock held.  What it does
 * not take waits for the I/O thread, woken to poll for POLLOUT. */
static void send_pending_locked(chan_client_t *cl)
{
    size_t sent = 0;
    while (sent < cl->olen && !cl->dead && cl->fd >= 0) {
        ssize_t w = chani_io_send(cl->fd, cl->ssl, cl->obuf + sent, cl->olen - sent);
        if (w <= 0)
            break;   /* EAGAIN, or an error the I/O thread will see */
        sent += (size_t)w;
    }
    if (sent) {
        memmove(cl->obuf, cl->obuf + sent, cl->olen - sent);
        cl->olen -= sent;
        pthread_cond_broadcast(&cl->drained);
    }
    cl->odeferred = false;   /* gone, or the I/O thread's from now on */
    if (cl->olen)
        chani_wake_io(cl);
}

/* The worker's write of what its goroutines put off (chani_sched_defer
 * holds a reference to cl until then). */
static void deferred_flush(void *arg)
{
    chan_client_t *cl = arg;
    pthread_mutex_lock(&cl->lock);
    if (cl->odeferred)   /* else written already, or the I/O thread's */
        send_pending_locked(cl);
    pthread_mutex_unlock(&cl->lock);
    chani_client_unref(cl);
}

/* Put a goroutine's frame off until its worker goes through its loop, so
 * that the requests of the goroutines it runs until then leave in one
 * write: 64 goroutines sending on one connection made a system call each,
 * and each woke chand.  The worker goes through its loop before it waits
 * for anything, a reply included, and every POLL_EVERY switches; should
 * its thread block first, the I/O thread writes them (chan_client_int.h).
 * false: write it now. */
static bool defer_write(chan_client_t *cl, size_t n)
{
    if (n > DEFER_FRAME_MAX || !chani_sched_self())
        return false;
    int r = chani_sched_defer(deferred_flush, cl);
    if (r == 1)
        atomic_fetch_add_explicit(&cl->refs, 1, memory_order_relaxed);
    return r >= 0;
}

/* Have the I/O thread watch the bytes put off, unless it does already
 * (lock held).  Needless when the goroutine that began them took the
 * reader role: nothing else runs on its worker, which goes through its
 * loop as soon as the goroutine parks, a few lines on. */
static void deferred_watch_locked(chan_client_t *cl)
{
    if (!cl->io_watch) {
        cl->io_watch = true;
        chani_wake_io(cl);
    }
}

/* Write (or queue) bytes; cl->lock held.  A caller's request (gen: the
 * connection it was made for) waits while too much is queued, and fails
 * with ESTALE if the connection was replaced meanwhile (its id and the
 * acknowledgements in it were the old connection's).  The I/O thread's
 * frames (gen 0: acks, nacks, releases, cancels) never wait, since only
 * it drains the queue; they are small and go regardless.
 *
 * A goroutine's request into an empty obuf is put off (defer_write), and
 * so is any goroutine's frame behind bytes put off: they leave together
 * when the worker passes its loop (*began: this frame came first; the
 * caller has them watched, deferred_watch_locked).  Any other frame behind
 * such bytes takes them along now: nobody else would write them soon. */
static int write_locked(chan_client_t *cl, const uint8_t *p, size_t n, uint64_t gen, bool *began)
{
    bool wait = gen != 0;
    while (wait && !cl->dead && cl->olen > OBUF_MAX) {
        /* what this thread's goroutines put off goes first: this thread
         * would otherwise wait for its own flush */
        send_pending_locked(cl);
        if (cl->olen > OBUF_MAX)
            pthread_cond_wait(&cl->drained, &cl->lock);
    }
    if (cl->dead) {
        errno = cl->dead_err;
        return -1;
    }
    if (wait && cl->gen != gen) {
        errno = ESTALE;
        return -1;
    }
    bool deferred = (cl->olen == 0 ? wait : cl->odeferred) && defer_write(cl, n);
    if (cl->olen == 0 && !deferred) {
        /* TLS: bytes SSL_write() did not take (EAGAIN) go to obuf's head,
         * from where send_pending_locked or the I/O thread's flush_out
         * offers them again, as OpenSSL requires */
        ssize_t w = chani_io_send(cl->fd, cl->ssl, p, n);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            errno = ECONNRESET;   /* the I/O thread sees it too and fails everyone */
            return -1;
        }
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        }
        if (n == 0)
            return 0;
    }
    if (cl->olen + n > cl->ocap) {
        size_t ncap = cl->ocap ? cl->ocap : 4096;
        while (ncap < cl->olen + n)
            ncap *= 2;
        uint8_t *b = realloc(cl->obuf, ncap);
        if (!b) {
            errno = ENOMEM;
            return -1;
        }
        cl->obuf = b;
        cl->ocap = ncap;
    }
    bool was_empty = cl->olen == 0;
    memcpy(cl->obuf + cl->olen, p, n);
    cl->olen += n;
    if (deferred) {
        if (was_empty) {
            cl->odeferred = true;
            cl->odeferred_at = chan_now();
            if (began)
                *began = true;
        }
    } else if (cl->odeferred) {
        send_pending_locked(cl);   /* ours and the bytes put off ahead of it */
    } else if (was_empty) {
        chani_wake_io(cl);   /* so it polls for POLLOUT */
    }
    return 0;
}

/* Pack rq, whose frame is `size` bytes (chan_frame_size_request), into
 * stack space if it fits, else a malloc()ed buffer. */
static uint8_t *pack(const Chan__Request *rq, size_t size, uint8_t *stack, size_t stack_size,
                     size_t *len)
{
    uint8_t *buf = size <= stack_size ? stack : malloc(size);
    if (!buf)
        return NULL;
    *len = chan_frame_encode_request_sized(rq, size, buf);
    return buf;
}

bool chani_send_locked(chan_client_t *cl, Chan__Request *rq)
{
    uint8_t stack[512];
    size_t len;
    uint8_t *buf = pack(rq, chan_frame_size_request(rq), stack, sizeof stack, &len);
    if (!buf)
        return false;
    bool ok = write_locked(cl, buf, len, 0, NULL) == 0;
    if (buf != stack)
        free(buf);
    if (ok && rq->op_case != CHAN__REQUEST__OP__NOT_SET)
        chani_expect_reply_locked(cl, false);   /* acknowledgements alone get none */
    return ok;
}

/* Ask chand to cancel request target (lock held).  The Cancel's own reply
 * finds no rpc and is dropped. */
static void cancel_locked(chan_client_t *cl, uint64_t target)
{
    Chan__Cancel c = CHAN__CANCEL__INIT;
    c.has_target = true;
    c.target = target;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = ++cl->next_id;
    rq.op_case = CHAN__REQUEST__OP_CANCEL;
    rq.cancel = &c;
    chani_send_locked(cl, &rq);
}

void chani_release_locked(chan_client_t *cl, uint64_t target)
{
    Chan__Release m = CHAN__RELEASE__INIT;
    m.has_target = true;
    m.target = target;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = ++cl->next_id;   /* its reply finds no rpc and is dropped */
    rq.op_case = CHAN__REQUEST__OP_RELEASE;
    rq.release = &m;
    chani_send_locked(cl, &rq);
}

/* How many delivery ids a frame with no operation may carry: at most ten
 * bytes each, and two list headers of at most six (the dial made sure
 * max_frame is at least CHAN_MIN_MAX_FRAME). */
static size_t ids_per_frame(chan_client_t *cl)
{
    return (size_t)(chani_client_max_frame(cl) - 12) / 10;
}

static bool send_ids_frame_locked(chan_client_t *cl, uint64_t *acks, size_t na, uint64_t *nacks,
                                  size_t nn)
{
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.n_ack = na;
    rq.ack = acks;
    rq.n_nack = nn;
    rq.nack = nacks;
    return chani_send_locked(cl, &rq);
}

static int id_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Acknowledgements in as many frames as the server's limit needs; what did
 * not go stays in the list, in order. */
static bool send_acks_split_locked(chan_client_t *cl, chan_idlist_t *l)
{
    size_t per = ids_per_frame(cl);
    for (size_t at = 0; at < l->n; at += per) {
        size_t k = l->n - at < per ? l->n - at : per;
        if (!send_ids_frame_locked(cl, l->v + at, k, NULL, 0)) {
            memmove(l->v, l->v + at, (l->n - at) * sizeof *l->v);
            l->n -= at;
            return false;
        }
    }
    l->n = 0;
    return true;
}

/* Ids given back, in as many frames as the limit needs.  One nack list
 * goes back as a whole, each channel's values in delivery order; separate
 * frames each go to the head in turn.  Sorted (ids grow with delivery
 * order) and sent last chunk first, the chunks rebuild that order (a
 * receiver already waiting may be served between them: lists over a
 * frame, 100,000 ids at the default limit, are that rare).  What did not
 * go stays in the list. */
static bool send_nacks_split_locked(chan_client_t *cl, chan_idlist_t *l)
{
    size_t per = ids_per_frame(cl);
    qsort(l->v, l->n, sizeof *l->v, id_cmp);
    while (l->n) {
        size_t from = l->n > per ? l->n - per : 0;
        if (!send_ids_frame_locked(cl, NULL, 0, l->v + from, l->n - from))
            return false;
        l->n = from;
    }
    return true;
}

bool chani_send_ids_locked(chan_client_t *cl, chan_idlist_t *acks, chan_idlist_t *nacks)
{
    size_t na = acks ? acks->n : 0, nn = nacks ? nacks->n : 0;
    if (!na && !nn)
        return true;
    if (na + nn <= ids_per_frame(cl)) {   /* nearly always: one frame */
        if (!send_ids_frame_locked(cl, na ? acks->v : NULL, na, nn ? nacks->v : NULL, nn))
            return false;
        if (acks)
            acks->n = 0;
        if (nacks)
            nacks->n = 0;
        return true;
    }
    return (!na || send_acks_split_locked(cl, acks)) && (!nn || send_nacks_split_locked(cl, nacks));
}

void chani_flush_nacks_locked(chan_client_t *cl)
{
    if (!cl->dead)
        chani_send_ids_locked(cl, NULL, &cl->nacks);
}

/* ---- starting a call ---- */

/* Put back ids that did not get sent (lock held). */
static void ids_restore(chan_idlist_t *l, chan_idlist_t *mine)
{
    for (size_t i = 0; i < mine->n; i++)
        chani_idlist_add(l, mine->v[i]);
    free(mine->v);
}

/* Keep a sent list's buffer for the next ids (lock held). */
static void ids_recycle(chan_idlist_t *l, chan_idlist_t *mine)
{
    if (!l->v) {
        l->v = mine->v;
        l->cap = mine->cap;
        l->n = 0;
    } else {
        free(mine->v);
    }
}

/* Acknowledgements taken for a request of connection gen that did not go
 * out on it: back to the queue, to ride on a later request (lock held).
 * The I/O thread may have looked while they were out, seen none, and gone
 * to sleep without a timer: woken, it sends them if no request does, else
 * an unbuffered sender waiting for one of them could wait for good. */
static void acks_back_locked(chan_client_t *cl, uint64_t gen, chan_idlist_t *mine)
{
    if (cl->gen != gen) {
        free(mine->v);   /* the old connection's: void */
        return;
    }
    ids_restore(&cl->acks, mine);
    if (cl->acks.n && cl->io_idle) {
        cl->io_idle = false;
        chani_wake_io(cl);
    }
}

/* The results of a call about to start, cleared. */
static void rpc_reset(chan_rpc_t *rpc)
{
    rpc->err = 0;
    rpc->status = CHAN__STATUS__OK;
    rpc->message[0] = 0;
    rpc->ndlv = 0;
    if (!rpc->dlv) {
        rpc->dlv = &rpc->dlv_one;
        rpc->dlv_cap = 1;
    }
    rpc->handle_failed = false;
}

/* May rpc go out on the connection now?  Dials again if the connection is
 * lost (the lock is released meanwhile).  0, or an errno (ESTALE: not the
 * connection rpc->need_gen names; rpc->handle_failed: a handle is
 * unusable).  Lock held. */
static int check_connection_locked(chan_client_t *cl, chan_rpc_t *rpc)
{
    if (rpc->need_gen && (cl->dead || cl->gen != rpc->need_gen))
        return ESTALE;
    /* A handle known to be unusable fails without dialling; one that the
     * redial finds unusable fails after it. */
    int herr = chani_client_handles_err_locked(cl, rpc->handles, rpc->nhandles);
    if (!herr && cl->dead && chani_redial_locked(cl) < 0)
        return errno;
    if (!herr)
        herr = chani_client_handles_err_locked(cl, rpc->handles, rpc->nhandles);
    if (herr)
        rpc->handle_failed = true;
    return herr;
}

/* Give the request its id, send the values given back ahead of it, and
 * take the acknowledgements that will ride on it (*mine).  Returns the
 * connection all this belongs to.  Lock held. */
static uint64_t assign_locked(chan_client_t *cl, Chan__Request *rq, chan_rpc_t *rpc,
                              chan_idlist_t *mine)
{
    rpc->id = ++cl->next_id;
    rq->has_id = true;
    rq->id = rpc->id;
    /* Values given back go out now, ahead of anything this or another thread
     * sends next: chand must return them to their channels before it serves
     * another request (that keeps a channel's order for a select that lost). */
    chani_flush_nacks_locked(cl);
    /* pending acknowledgements ride on this request */
    *mine = cl->acks;
    cl->acks = (chan_idlist_t){ NULL, 0, 0 };
    return cl->gen;
}

/* Pack the request with the acknowledgements *mine (of connection gen),
 * into stack or a malloc()ed *bufp.  Without the lock, but for the rare
 * frame too big with the ids: they go back to wait for a later request.
 * 0, or EMSGSIZE (over the server's limit) or ENOMEM. */
static int pack_rpc(chan_client_t *cl, Chan__Request *rq, uint64_t gen, chan_idlist_t *mine,
                    uint8_t *stack, size_t stack_size, uint8_t **bufp, size_t *len)
{
    rq->n_ack = mine->n;
    rq->ack = mine->v;
    int err = 0;
    size_t size = chan_frame_size_request(rq);
    if (size > chani_client_max_frame(cl)) {
        /* too big with the ids: send them later, alone */
        rq->n_ack = 0;
        pthread_mutex_lock(&cl->lock);
        acks_back_locked(cl, gen, mine);
        pthread_mutex_unlock(&cl->lock);
        *mine = (chan_idlist_t){ NULL, 0, 0 };
        size = chan_frame_size_request(rq);
        if (size > chani_client_max_frame(cl))
            err = EMSGSIZE;
    }
    if (!err && !(*bufp = pack(rq, size, stack, stack_size, len)))
        err = ENOMEM;
    rq->n_ack = 0;
    rq->ack = NULL;
    return err;
}

/* Register rpc and write its frame, made for connection gen (lock held;
 * the write may wait for output room, the lock released).  *wrote: the
 * frame went out (or is queued), whatever the result; *began: as
 * write_locked says.  0 or an errno (ESTALE: the connection was replaced
 * while the write waited). */
static int register_and_write_locked(chan_client_t *cl, chan_rpc_t *rpc, const uint8_t *buf,
                                     size_t len, uint64_t gen, bool *wrote, bool *began)
{
    /* Room in the table first (failing is harmless before the write), the
     * write (which may wait for output room, the lock released), and only
     * then the registration: the reply cannot be read before we unlock, and
     * an rpc is never registered while its caller might still give up. */
    if (idmap_put(&cl->rpcs, rpc->id, rpc) < 0)
        return ENOMEM;
    idmap_del(&cl->rpcs, rpc->id);
    if (write_locked(cl, buf, len, gen, began) < 0)
        return errno;
    *wrote = true;
    if (idmap_put(&cl->rpcs, rpc->id, rpc) < 0)
        return ENOMEM;   /* only if memory ran out while the write waited for
                            room and others grew the table: the request went
                            out, its answer will be dropped (values given back) */
    return 0;
}

/* chani_client_start, and with `want_role` also take the reader role if
 * nobody holds it (*took says whether it did).  Each turn of the loop takes
 * the lock twice (three times for a frame too big with its acks, and a
 * redial releases it meanwhile); it turns again only if the connection
 * changed while the frame was packed. */
static int start_rpc(chan_client_t *cl, Chan__Request *rq, chan_rpc_t *rpc, bool want_role,
                     bool *took)
{
    *took = false;
    rpc_reset(rpc);
    uint8_t stack[1024];
    for (;;) {
        chan_idlist_t mine;
        pthread_mutex_lock(&cl->lock);
        int err = check_connection_locked(cl, rpc);
        if (err) {
            pthread_mutex_unlock(&cl->lock);
            errno = err;
            return -1;
        }
        uint64_t gen = assign_locked(cl, rq, rpc, &mine);
        pthread_mutex_unlock(&cl->lock);

        uint8_t *buf = NULL;
        size_t len = 0;
        err = pack_rpc(cl, rq, gen, &mine, stack, sizeof stack, &buf, &len);

        pthread_mutex_lock(&cl->lock);
        if (!err && cl->gen != gen) {
            /* The connection changed while we packed: the acknowledgements in
             * the frame were the old one's (their ids mean other values now),
             * and a need_gen request must not go out at all. */
            pthread_mutex_unlock(&cl->lock);
            if (buf != stack)
                free(buf);
            free(mine.v);
            if (rpc->need_gen) {
                errno = ESTALE;
                return -1;
            }
            continue;
        }
        bool wrote = false, began = false;
        if (!err)
            err = register_and_write_locked(cl, rpc, buf, len, gen, &wrote, &began);
        if (err == ESTALE && !rpc->need_gen) {
            /* replaced while the write waited for room: as above */
            pthread_mutex_unlock(&cl->lock);
            if (buf != stack)
                free(buf);
            free(mine.v);
            continue;
        }
        if (wrote) {
            /* The reply will come: the caller reads it itself if it may and
             * nobody else reads, else the holder of the role or the I/O
             * thread. */
            *took = !err && want_role && chani_role_take_locked(cl);
            chani_expect_reply_locked(cl, *took);
            if (began && !*took)
                deferred_watch_locked(cl);
        }
        if (err)
            acks_back_locked(cl, gen, &mine);
        else
            ids_recycle(&cl->acks, &mine);
        pthread_mutex_unlock(&cl->lock);
        if (buf != stack)
            free(buf);
        if (err) {
            errno = err;
            return -1;
        }
        return 0;
    }
}

int chani_client_start(chan_client_t *cl, Chan__Request *rq, chan_rpc_t *rpc)
{
    bool took;
    return start_rpc(cl, rq, rpc, false, &took);
}

/* ---- waiting for the reply ---- */

/* Whether rq, unanswered, may have taken effect: a value sent, a channel
 * closed or deleted. */
static bool may_take_effect(const Chan__Request *rq)
{
    switch (rq->op_case) {
    case CHAN__REQUEST__OP_SEND:
    case CHAN__REQUEST__OP_CLOSE:
    case CHAN__REQUEST__OP_DELETE:
    case CHAN__REQUEST__OP_COMMIT:
        return true;
    case CHAN__REQUEST__OP_SELECT:
        for (size_t i = 0; i < rq->select->n_cases; i++)
            if (rq->select->cases[i]->has_op && rq->select->cases[i]->op == CHAN__OP__SEND)
                return true;
        return false;
    default:
        return false;
    }
}

/* Whether a caller whose wait for rq's answer ends first must settle it
 * (chani_client_cancel) before it returns.  An answer that may hand over
 * a value or hold a place (Recv, Select, Commit): chand serves a
 * connection's requests in order, so a late answer has the head of the
 * channel, and any request the caller sends next would be given the value
 * behind it; given back only after that, the head value would reach the
 * caller after its successor, not marked redelivered.  And an answer that
 * says whether something was done (Send, Close, Delete): "the deadline
 * passed" must mean that it was not. */
static bool settle_on_timeout(const Chan__Request *rq)
{
    return rq->op_case == CHAN__REQUEST__OP_RECV || rq->op_case == CHAN__REQUEST__OP_SELECT ||
           may_take_effect(rq);
}

/* The caller's wait for rpc ended first: settle it.  0 with the late
 * answer as rpc's result, or -1 with errno as chani_client_call says. */
static int settle_late(chan_client_t *cl, const Chan__Request *rq, chan_rpc_t *rpc)
{
    chani_client_cancel(cl, rpc);
    pthread_mutex_lock(&cl->lock);
    uint8_t late = rpc->late;
    pthread_mutex_unlock(&cl->lock);
    if (late == CHANI_LATE_KEPT) {
        if (rpc->status == CHAN__STATUS__CANCELED)
            rpc->status = CHAN__STATUS__TIMEOUT;   /* our Cancel: the deadline's */
        return 0;
    }
    errno = late == CHANI_LATE_NONE && may_take_effect(rq) ? ECONNRESET : ETIMEDOUT;
    return -1;
}

int chani_client_call(chan_client_t *cl, Chan__Request *rq, chan_rpc_t *rpc, int64_t local)
{
    chan_waiter_t w;
    chani_waiter_init(&w);
    w.far = true;   /* the reply is a network round trip away */
    rpc->w = &w;
    /* A look of a select across daemons (keep) or one part of it (multi)
     * has its own way with a late answer: undone, the daemon passed over. */
    bool settle = settle_on_timeout(rq);
    rpc->wants_late = settle && !rpc->keep && !rpc->multi;
    rpc->late = CHANI_LATE_NONE;
    /* A thread may always read for itself; a goroutine's worker only if it
     * would otherwise have nothing to do. */
    bool took;
    if (start_rpc(cl, rq, rpc, !w.g || chani_sched_can_poll(), &took) < 0)
        return -1;
    if (took && !w.g)
        chani_reader_lead(cl, &w, local);
    else if (took)
        chani_reader_hand_to_worker(cl);
    if (chani_waiter_park(&w, local, NULL, NULL) == CHAN_WAIT_TIMEOUT) {
        if (rpc->wants_late)
            return settle_late(cl, rq, rpc);
        if (settle)
            chani_client_cancel(cl, rpc);
        else
            chani_client_abandon(cl, rpc);
        errno = ETIMEDOUT;
        return -1;
    }
    if (rpc->err) {
        errno = rpc->err;
        return -1;
    }
    if (!rpc->keep)
        chani_client_ack(cl, rpc->gen, rpc->dlv, rpc->ndlv);   /* the caller has them now */
    return 0;
}

int64_t chani_grace(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t now = chan_now();
    return (deadline > now ? deadline : now) + GRACE_MS;   /* 0: "now" */
}

/* ---- giving up on a call ---- */

void chani_client_abandon(chan_client_t *cl, chan_rpc_t *rpc)
{
    pthread_mutex_lock(&cl->lock);
    if (idmap_del(&cl->rpcs, rpc->id) && !cl->dead)
        cancel_locked(cl, rpc->id);
    pthread_mutex_unlock(&cl->lock);
}

/* If rpc still waits for its answer, have `settled` woken once the answer
 * (or the connection's end) has been dealt with, and either cancel it or
 * hang up (lock held).  False if there is nothing to wait for. */
static bool settle_locked(chan_client_t *cl, chan_rpc_t *rpc, chan_waiter_t *settled, bool hang_up)
{
    chani_waiter_init(settled);
    if (idmap_get(&cl->rpcs, rpc->id) != rpc || cl->dead)
        return false;   /* answered and dealt with (or failed) already */
    rpc->settled = settled;
    if (!hang_up)
        cancel_locked(cl, rpc->id);
    else if (cl->fd >= 0)
        shutdown(cl->fd, SHUT_RDWR);   /* the reader sees the end, fails the
                                          connection and wakes `settled` */
    return true;
}

void chani_client_cancel(chan_client_t *cl, chan_rpc_t *rpc)
{
    chan_waiter_t answered, ended;
    pthread_mutex_lock(&cl->lock);
    bool pending = settle_locked(cl, rpc, &answered, false);
    pthread_mutex_unlock(&cl->lock);
    /* chand answers the request before the cancel (or instead of it) */
    if (!pending || chani_waiter_park(&answered, chani_grace(0), NULL, NULL) != CHAN_WAIT_TIMEOUT)
        return;
    /* A stuck connection.  Its answer may yet come with a value, and giving
     * that back then would put it behind values that our later requests
     * take meanwhile.  Hang up instead: chand takes back what it handed
     * out, marked redelivered, and nothing more of ours reaches it on this
     * connection. */
    pthread_mutex_lock(&cl->lock);
    pending = settle_locked(cl, rpc, &ended, true);
    pthread_mutex_unlock(&cl->lock);
    if (pending && chani_waiter_park(&ended, chani_grace(0), NULL, NULL) == CHAN_WAIT_TIMEOUT)
        chani_client_abandon(cl, rpc);   /* (the reader is stuck too) */
}

/* ---- frames nobody waits on ---- */

void chani_client_oneway(chan_client_t *cl, uint64_t gen, Chan__Request *rq)
{
    pthread_mutex_lock(&cl->lock);
    if (!cl->dead && (!gen || cl->gen == gen)) {
        rq->has_id = true;
        rq->id = ++cl->next_id;
        chani_send_locked(cl, rq);
    }
    pthread_mutex_unlock(&cl->lock);
}

void chani_client_nack(chan_client_t *cl, uint64_t gen, const uint64_t *ids, size_t n)
{
    if (!n)
        return;
    pthread_mutex_lock(&cl->lock);
    if (!cl->dead && cl->gen == gen) {
        /* its own list, after any queued: separate lists go back in turn */
        chani_flush_nacks_locked(cl);
        for (size_t i = 0; i < n; i++)
            chani_idlist_add(&cl->nacks, ids[i]);
        chani_flush_nacks_locked(cl);
    }
    pthread_mutex_unlock(&cl->lock);
}

void chani_client_ack(chan_client_t *cl, uint64_t gen, const uint64_t *ids, size_t n)
{
    if (!n)
        return;
    pthread_mutex_lock(&cl->lock);
    if (cl->dead || cl->gen != gen) {
        pthread_mutex_unlock(&cl->lock);
        return;   /* chand has taken them back already */
    }
    if (!cl->acks.n)
        cl->ack_oldest = chan_now();
    for (size_t i = 0; i < n; i++)
        chani_idlist_add(&cl->acks, ids[i]);
    if (cl->ack_delay == 0 && !cl->dead && chani_send_ids_locked(cl, &cl->acks, NULL)) {
        /* At once, from the caller: an unbuffered sender completes as soon
         * as we have its value, as in Go, and the sender's next step
         * overlaps with ours.  (What could not go waits for the I/O
         * thread.) */
        pthread_mutex_unlock(&cl->lock);
        return;
    }
    /* The I/O thread gave up waiting for these (this caller ran later than
     * the ack delay after its wake): without a wake they would wait for
     * the next request, and an unbuffered sender for them, forever. */
    bool wake = cl->io_idle;
    cl->io_idle = false;
    pthread_mutex_unlock(&cl->lock);
    if (wake)
        chani_wake_io(cl);
}

void chani_client_release(chan_client_t *cl, uint64_t gen, uint64_t target)
{
    pthread_mutex_lock(&cl->lock);
    if (!cl->dead && cl->gen == gen)
        chani_release_locked(cl, target);
    pthread_mutex_unlock(&cl->lock);
}

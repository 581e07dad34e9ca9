/*
 * chan_reader.c - the reader role: who reads the socket (a waiting thread,
 * a goroutine's idle worker, or the I/O thread), reading its frames, and
 * handing each reply to the call it answers.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 *
 * One party at a time holds the role (cl->reader, chan_client.h says who
 * may): it alone reads the socket or waits for it to be readable, without
 * cl->lock, in a buffer and arena of the client's that outlive a change of
 * reader.  A reply finds its rpc by id and claims the rpc's waiter (the
 * reply may lose to a deadline, or to another case of a select); the
 * winner's values are copied out, a loser's are queued to go back to chand
 * before anything else the client sends.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "chan_clock.h"
#include "remote/chan_client_int.h"
#include "runtime/chan_sched.h"

#define READ_SPIN_NS 50000        /* see read_spin_ns */

/* ---- taking and letting go of the role ---- */

void chani_expect_reply_locked(chan_client_t *cl, bool writer_reads)
{
    cl->outstanding++;
    if (!writer_reads && cl->reader == RD_FREE) {
        cl->reader = RD_IO;
        cl->reader_gen = cl->gen;
        cl->reader_fd = cl->fd;
        chani_wake_io(cl);
    }
}

bool chani_role_take_locked(chan_client_t *cl)
{
    if (cl->reader != RD_FREE || cl->dead || cl->closing || cl->fd < 0)
        return false;
    cl->reader = RD_CALLER;
    cl->reader_gen = cl->gen;
    cl->reader_fd = cl->fd;
    atomic_fetch_add_explicit(&cl->refs, 1, memory_order_relaxed);
    return true;
}

/* A caller (thread or worker) lets go of the role: to the I/O thread if
 * replies are still awaited (another caller's, a cancel's) or a hang-up is
 * unread, else free for the next caller. */
static void role_release(chan_client_t *cl)
{
    pthread_mutex_lock(&cl->lock);
    if (cl->zombie_fd >= 0) {
        close(cl->zombie_fd);
        cl->zombie_fd = -1;
    }
    if (!cl->dead && !cl->closing && (cl->outstanding || cl->io_hup)) {
        cl->reader = RD_IO;
        cl->reader_gen = cl->gen;
        cl->reader_fd = cl->fd;
        cl->io_hup = false;
        chani_wake_io(cl);
    } else {
        cl->reader = RD_FREE;
    }
    pthread_mutex_unlock(&cl->lock);
    chani_client_unref(cl);
}

/* ---- handing a reply to its call ---- */

chan_waiter_t *chani_multi_pass(chan_multi_t *m, int err)
{
    if (err)
        atomic_store(&m->lost, err);
    if (atomic_fetch_sub(&m->left, 1) != 1 || !m->give_up_at_zero || !chani_waiter_claim(m->w))
        return NULL;
    m->w->index = CHAN_WAIT_TIMEOUT;
    m->w->err = atomic_load(&m->lost);
    return m->w;
}

/* The values a reply carries. */
static size_t reply_deliveries(const Chan__Reply *r, Chan__Delivery *const **dv)
{
    if (r->result_case == CHAN__REPLY__RESULT_RECV && r->recv) {
        *dv = r->recv->deliveries;
        return r->recv->n_deliveries;
    }
    if (r->result_case == CHAN__REPLY__RESULT_SELECT && r->select && r->select->delivery) {
        *dv = &r->select->delivery;
        return 1;
    }
    return 0;
}

/* Give values back to chand (sent after this read batch). */
static void give_back(chan_client_t *cl, Chan__Delivery *const *dv, size_t n)
{
    if (!n)
        return;
    pthread_mutex_lock(&cl->lock);
    for (size_t i = 0; i < n; i++)
        chani_idlist_add(&cl->nacks, dv[i]->id);
    pthread_mutex_unlock(&cl->lock);
}

/* A reply that came after its caller stopped waiting (lock held).  One
 * that hands values or a reservation over is undone by the reader; one
 * that hands nothing over is still what happened (a send, close or delete
 * done), kept for the caller. */
static void late_answer_locked(chan_rpc_t *rpc, uint64_t gen, const Chan__Reply *r,
                               Chan__Status st, size_t ndv)
{
    if (ndv || st == CHAN__STATUS__RESERVED) {
        rpc->late = CHANI_LATE_UNDONE;
        return;
    }
    rpc->err = 0;
    rpc->status = st;
    rpc->gen = gen;
    if (r->message)
        snprintf(rpc->message, sizeof rpc->message, "%s", r->message);
    if (rpc->on_reply)
        rpc->on_reply(rpc, r);
    rpc->late = CHANI_LATE_KEPT;
}

static void handle_reply(chan_client_t *cl, uint64_t gen, const Chan__Reply *r)
{
    Chan__Status st = r->has_status ? r->status : CHAN__STATUS__OK;
    if (!r->has_id || r->id == 0) {
        /* about the connection itself; chand closes it next */
        if (st != CHAN__STATUS__OK) {
            pthread_mutex_lock(&cl->lock);
            if (!cl->dead && cl->gen == gen)
                cl->dead_err = chani_status_errno(st);
            pthread_mutex_unlock(&cl->lock);
        }
        return;
    }
    Chan__Delivery *const *dv = NULL;
    size_t ndv = reply_deliveries(r, &dv);
    pthread_mutex_lock(&cl->lock);
    if (cl->gen != gen || cl->dead) {
        /* a failed connection's: its calls have failed, its values are
         * chand's to requeue */
        pthread_mutex_unlock(&cl->lock);
        return;
    }
    if (cl->outstanding)
        cl->outstanding--;
    chan_rpc_t *rpc = idmap_del(&cl->rpcs, r->id);
    if (rpc && rpc->settled) {
        /* cancelled by its owner: undo it, then tell the owner */
        if (rpc->wants_late)
            late_answer_locked(rpc, gen, r, st, ndv);
        if (st == CHAN__STATUS__RESERVED)
            chani_release_locked(cl, r->id);
        for (size_t i = 0; i < ndv; i++)
            chani_idlist_add(&cl->nacks, dv[i]->id);
        chan_waiter_t *w = chani_waiter_claim(rpc->settled) ? rpc->settled : NULL;
        pthread_mutex_unlock(&cl->lock);
        if (w)
            chani_waiter_wake(w);
        return;
    }
    if (rpc && rpc->multi && st == CHAN__STATUS__TIMEOUT) {
        chan_waiter_t *w = chani_multi_pass(rpc->multi, 0);
        pthread_mutex_unlock(&cl->lock);
        if (w)
            chani_waiter_wake(w);
        return;
    }
    bool won = rpc && chani_waiter_claim(rpc->w);
    if (!won) {
        /* Nobody takes them.  Queue them for return before letting go of the
         * lock: the loser's owner, seeing its request gone, may send its
         * next request at once, and it must carry these back first.  (An
         * rpc of its own whose wait has just ended is still its owner's:
         * it settles next, under this lock.) */
        if (rpc && rpc->wants_late && !rpc->multi)
            late_answer_locked(rpc, gen, r, st, ndv);
        if (st == CHAN__STATUS__RESERVED)
            chani_release_locked(cl, r->id);
        for (size_t i = 0; i < ndv; i++)
            chani_idlist_add(&cl->nacks, dv[i]->id);
        pthread_mutex_unlock(&cl->lock);
        return;
    }
    pthread_mutex_unlock(&cl->lock);
    rpc->err = 0;
    rpc->status = st;
    rpc->gen = gen;
    if (r->message)
        snprintf(rpc->message, sizeof rpc->message, "%s", r->message);
    bool taken = rpc->on_reply ? rpc->on_reply(rpc, r) : true;
    if (taken && ndv <= rpc->dlv_cap) {
        for (size_t i = 0; i < ndv; i++)
            rpc->dlv[i] = dv[i]->id;
        rpc->ndlv = ndv;
        if (ndv)
            atomic_store_explicit(&cl->handed, true, memory_order_relaxed);
    } else {
        give_back(cl, dv, ndv);
    }
    chan_waiter_t *w = rpc->w;
    w->index = rpc->multi ? rpc->index : 0;   /* not CHAN_WAIT_TIMEOUT: a reply came */
    chani_waiter_wake(w);
}

/* ---- reading frames ---- */

/* Handle every complete frame in buf[0..*len); keep the partial rest.
 * -1 on a protocol error. */
static int read_frames(chan_client_t *cl, uint64_t gen, chan_arena_t *arena, uint8_t *buf,
                       size_t *len)
{
    size_t off = 0;
    int rc = 0;
    while (off < *len) {
        uint64_t body;
        size_t hdr;
        int h = chan_frame_header(buf + off, *len - off, chani_client_max_frame(cl), &body, &hdr);
        if (h == CHAN_FRAME_MORE)
            break;
        if (h < 0) {
            rc = -1;
            break;
        }
        if (*len - off < hdr + body)
            break;
        Chan__Reply *r = chan_frame_decode_reply(arena, buf + off + hdr, body);
        off += hdr + body;
        if (!r) {
            rc = -1;
            break;
        }
        handle_reply(cl, gen, r);
        chan_arena_reset(arena);
    }
    memmove(buf, buf + off, *len - off);
    *len -= off;
    return rc;
}

/* recv() for the reader of connection gen on fd; TLS under the lock, on
 * the SSL object of that connection if it is still the live one (see
 * chan_client_int.h). */
static ssize_t conn_recv(chan_client_t *cl, int fd, uint64_t gen, void *p, size_t n)
{
    if (!cl->tls)
        return recv(fd, p, n, 0);
    pthread_mutex_lock(&cl->lock);
    ssize_t r;
    if (cl->gen != gen || !cl->ssl) {
        errno = ECONNRESET;
        r = -1;
    } else {
        r = chani_io_recv(fd, cl->ssl, p, n);
    }
    int e = errno;
    pthread_mutex_unlock(&cl->lock);
    errno = e;
    return r;
}

/* Read what the socket has and handle every whole frame.  0, or an errno
 * that ends the connection. */
static int read_some(chan_client_t *cl, int fd, uint64_t gen, chan_arena_t *arena,
                     uint8_t **bufp, size_t *cap, size_t *len, bool *got)
{
    for (;;) {
        if (*len == *cap) {
            /* a frame bigger than the buffer: grow, up to the limit */
            size_t ncap = *cap * 2, most = chani_client_max_frame(cl) + CHAN_FRAME_HDR_MAX;
            if (ncap > most)
                ncap = most;
            uint8_t *nb = ncap > *cap ? realloc(*bufp, ncap) : NULL;
            if (!nb)
                return EPROTO;
            *bufp = nb;
            *cap = ncap;
        }
        ssize_t n = conn_recv(cl, fd, gen, *bufp + *len, *cap - *len);
        if (n == 0)
            return ECONNRESET;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            return ECONNRESET;
        }
        /* (TLS: a record at a time, never "drained": read to EAGAIN) */
        bool drained = !cl->tls && (size_t)n < *cap - *len;
        *got = true;
        *len += (size_t)n;
        if (read_frames(cl, gen, arena, *bufp, len) < 0)
            return EPROTO;
        /* A short read emptied the socket: skip the recv that would say
         * EAGAIN (the reader polls again before reading more). */
        if (drained)
            return 0;
    }
}

/* The role's holder reads what the socket of connection gen has, handles
 * every whole frame, and sends the values nobody took back at once.  0, or
 * an errno that ends the connection. */
static int pump_got(chan_client_t *cl, int fd, uint64_t gen, bool *got)
{
    if (cl->rgen != gen) {   /* a new connection: no partial frame carries over */
        cl->rgen = gen;
        cl->rlen = 0;
    }
    *got = false;
    int err = read_some(cl, fd, gen, &cl->arena, &cl->rbuf, &cl->rcap, &cl->rlen, got);
    if (*got) {
        pthread_mutex_lock(&cl->lock);
        if (cl->gen == gen)
            chani_flush_nacks_locked(cl);
        pthread_mutex_unlock(&cl->lock);
    }
    return err;
}

int chani_reader_pump(chan_client_t *cl, int fd, uint64_t gen)
{
    bool got;
    return pump_got(cl, fd, gen, &got);
}

void chani_reader_failed(chan_client_t *cl, int err, uint64_t gen)
{
    pthread_mutex_lock(&cl->lock);
    if (cl->dead_err && cl->gen == gen)
        err = cl->dead_err;   /* chand said why before closing */
    pthread_mutex_unlock(&cl->lock);
    chani_client_fail_all(cl, err, gen, true);
}

/* ---- the role's holders: a waiting thread, a goroutine's worker ---- */

/* How long a reader polls the socket without blocking (giving its core
 * away between polls) before it sleeps in poll(): CHAN_READ_SPIN_US, 50 by
 * default (the old waiter's figure; 20 and 100 measured alike, 0 clearly
 * worse).  On these virtual machines a sleeping vCPU takes 10-20 us to
 * wake: a reply caught while polling skips that, and a busy core loses
 * little, since sched_yield() hands it to whoever is runnable (chand, the
 * peer). */
static int64_t read_spin_ns(void)
{
    static _Atomic int64_t ns = -1;
    int64_t v = atomic_load_explicit(&ns, memory_order_relaxed);
    if (v < 0) {
        const char *e = getenv("CHAN_READ_SPIN_US");
        v = e && *e ? strtol(e, NULL, 10) * 1000 : READ_SPIN_NS;
        if (v < 0)
            v = 0;
        atomic_store_explicit(&ns, v, memory_order_relaxed);
    }
    return v;
}

/* A plain thread holds the role: read replies, its own and any other, until
 * its own has come or its deadline passes, then let the role go.  Blocking
 * in poll() on the socket is what a hiredis caller does: the reply wakes
 * this thread and nobody else. */
void chani_reader_lead(chan_client_t *cl, chan_waiter_t *w, int64_t deadline)
{
    int fd = cl->reader_fd;
    uint64_t gen = cl->reader_gen;
    /* poll() and recv() are cancellation points, the futex wait of a
     * follower is not: a thread cancelled here would keep the role (and its
     * rpc registered) for good. */
    int cancel_state;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    chani_waiter_reading(w);   /* our own wake needs no futex call */
    int64_t spin_end = chan_mono_ns() + read_spin_ns();
    while (!atomic_load_explicit(&w->woken, memory_order_acquire)) {
        if (spin_end) {
            if (deadline >= 0 && chan_now() >= deadline)
                break;   /* others' replies may keep coming: look every turn */
            bool got;
            int err = pump_got(cl, fd, gen, &got);
            if (err) {
                chani_reader_failed(cl, err, gen);
                break;
            }
            if (got)
                continue;
            if (chan_mono_ns() < spin_end) {
                sched_yield();
                continue;
            }
            spin_end = 0;
        }
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - chan_now();
            if (left <= 0)
                break;
            ms = left > 1000000 ? 1000000 : (int)left;
        }
        struct pollfd p = { fd, POLLIN, 0 };
        int n = poll(&p, 1, ms);
        if (n < 0 && errno != EINTR)
            break;   /* cannot happen with a valid fd; the I/O thread takes over */
        if (n <= 0)
            continue;
        int err = chani_reader_pump(cl, fd, gen);
        if (err) {
            chani_reader_failed(cl, err, gen);
            break;
        }
    }
    chani_waiter_reading(NULL);
    role_release(cl);
    pthread_setcancelstate(cancel_state, NULL);
}

/* The worker of a goroutine that holds the role calls these from its
 * scheduler loop, on its own stack (see chani_sched_set_poll): read what the
 * socket has without waiting (true if anything came), and let the role go. */
static bool worker_read(void *ctx)
{
    chan_client_t *cl = ctx;
    uint64_t gen = cl->reader_gen;
    bool got;
    int err = pump_got(cl, cl->reader_fd, gen, &got);
    if (err) {
        chani_reader_failed(cl, err, gen);
        return true;
    }
    return got;
}

static void worker_done(void *ctx)
{
    role_release(ctx);
}

static const chan_poll_ops_t worker_poll = { worker_read, worker_done, read_spin_ns };

void chani_reader_hand_to_worker(chan_client_t *cl)
{
    chani_sched_set_poll(cl->reader_fd, &worker_poll, cl);
}

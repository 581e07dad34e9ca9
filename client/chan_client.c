/*
 * chan_client.c - the connection to chand (see chan_client.h for the idea).
 *
 * Threads:
 *   - Callers (any thread or goroutine) pack their request, register it and
 *     write it themselves: a call costs no thread switch on the way out.  The
 *     socket is non-blocking; what the kernel does not take waits in `obuf`
 *     for the I/O thread to flush.
 *   - One I/O thread per client reads replies, hands them to their waiters,
 *     and acknowledges the values it handed over, one frame per read batch.
 *     Decoding happens there, on a full-size thread stack, never on a small
 *     goroutine stack.
 *
 * Lock order: cl->lock is the only lock here; a waiter is woken only after
 * it is released.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan_addr.h"
#include "chan_client.h"

#define DEFAULT_ADDR "127.0.0.1:7070"
#define READ_CHUNK (64 * 1024)
#define OBUF_MAX (64u << 20)      /* callers wait while more is unwritten */
#define GRACE_MS 2000             /* for chand to answer its own timeout */
#define ACK_DELAY_MS 0            /* default CHAN_ACK_DELAY_MS: at once */
#define DIAL_TIMEOUT_MS 5000      /* a reconnection attempt */
#define BACKOFF_MIN_MS 50         /* first wait after a failed reconnection */
#define BACKOFF_MAX_MS 5000

/* What a server says about itself in its Hello reply. */
struct hello_info {
    uint64_t max_frame, max_value;
    uint32_t max_batch, max_cases;
    char server[64];
};

static int connect_fd(const char *addr, int64_t deadline);
static int handshake(int fd, const char *token, int64_t deadline, struct hello_info *hi);

int chan_status_errno(Chan__Status st)
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
    default: return EPROTO;
    }
}

/* ---- small helpers ---- */

static int idlist_add(chan_idlist_t *l, uint64_t id)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        uint64_t *v = realloc(l->v, ncap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = ncap;
    }
    l->v[l->n++] = id;
    return 0;
}

static void wake_io(chan_client_t *cl)
{
    uint64_t one = 1;
    (void)!write(cl->wake_fd, &one, sizeof one);
}

/* Wait for fd to be ready for events until the deadline. 1 ready, 0 timeout. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - chan_now();
            if (left <= 0)
                return 0;
            ms = left > 1000000 ? 1000000 : (int)left;
        }
        struct pollfd p = { fd, events, 0 };
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* ---- the write path ---- */

/* Write (or queue) bytes; cl->lock held.  A caller (wait) waits while too
 * much is queued; the I/O thread never does, since only it drains the queue:
 * its frames (acks, nacks, releases, cancels) are small and go regardless. */
static int write_locked(chan_client_t *cl, const uint8_t *p, size_t n, bool wait)
{
    while (wait && !cl->dead && cl->olen > OBUF_MAX)
        pthread_cond_wait(&cl->drained, &cl->lock);
    if (cl->dead) {
        errno = cl->dead_err;
        return -1;
    }
    if (cl->olen == 0) {
        ssize_t w = send(cl->fd, p, n, MSG_NOSIGNAL);
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
    if (was_empty)
        wake_io(cl);   /* so it polls for POLLOUT */
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

/* Send a request nobody waits on (cancel, acknowledgements); lock held. */
static void send_locked(chan_client_t *cl, Chan__Request *rq)
{
    uint8_t stack[512];
    size_t len;
    uint8_t *buf = pack(rq, chan_frame_size_request(rq), stack, sizeof stack, &len);
    if (!buf)
        return;
    write_locked(cl, buf, len, false);
    if (buf != stack)
        free(buf);
}

/* ---- reconnecting ---- */

static void apply_hello(chan_client_t *cl, const struct hello_info *hi)
{
    cl->max_frame = hi->max_frame;
    cl->max_value = hi->max_value;
    cl->max_batch = hi->max_batch;
    cl->max_cases = hi->max_cases;
    memcpy(cl->server, hi->server, sizeof cl->server);
}

/* The connection is gone: dial again, unless a dial failed less than the
 * backoff ago (then fail at once: a dead daemon costs callers nothing).
 * Called and returns with cl->lock held; released while dialling.  The new
 * connection starts clean: calls in flight on the old one have failed,
 * unacknowledged values there are chand's to redeliver, and temporary
 * channels made on it are gone.  0, or -1 with errno ECONNRESET. */
static int redial_locked(chan_client_t *cl)
{
    int64_t now = chan_now();
    if (cl->closing || cl->reconnecting || now < cl->retry_at) {
        errno = ECONNRESET;
        return -1;
    }
    cl->reconnecting = true;
    pthread_mutex_unlock(&cl->lock);
    struct hello_info hi;
    int fd = connect_fd(cl->addr, now + DIAL_TIMEOUT_MS);
    if (fd >= 0 && handshake(fd, cl->token, now + DIAL_TIMEOUT_MS, &hi) < 0) {
        close(fd);
        fd = -1;
    }
    pthread_mutex_lock(&cl->lock);
    cl->reconnecting = false;
    if (fd < 0 || cl->closing) {
        if (fd >= 0)
            close(fd);
        cl->backoff = cl->backoff ? cl->backoff * 2 : BACKOFF_MIN_MS;
        if (cl->backoff > BACKOFF_MAX_MS)
            cl->backoff = BACKOFF_MAX_MS;
        cl->retry_at = chan_now() + cl->backoff;
        errno = ECONNRESET;
        return -1;
    }
    apply_hello(cl, &hi);
    cl->fd = fd;
    cl->gen++;
    cl->dead = false;
    cl->dead_err = 0;
    cl->backoff = 0;
    cl->olen = 0;
    cl->acks.n = cl->nacks.n = 0;   /* delivery ids of the old connection */
    wake_io(cl);
    return 0;
}

/* ---- calls ---- */

/* Send the values given back, alone, now (lock held). */
static void flush_nacks_locked(chan_client_t *cl)
{
    if (!cl->nacks.n || cl->dead)
        return;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.n_nack = cl->nacks.n;
    rq.nack = cl->nacks.v;
    send_locked(cl, &rq);
    cl->nacks.n = 0;
}

/* Put back ids that did not get sent (lock held). */
static void ids_restore(chan_idlist_t *l, chan_idlist_t *mine)
{
    for (size_t i = 0; i < mine->n; i++)
        idlist_add(l, mine->v[i]);
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

int chan_client_start(chan_client_t *cl, Chan__Request *rq, chan_rpc_t *rpc)
{
    rpc->err = 0;
    rpc->status = CHAN__STATUS__OK;
    rpc->message[0] = 0;
    rpc->ndlv = 0;
    if (!rpc->dlv) {
        rpc->dlv = &rpc->dlv_one;
        rpc->dlv_cap = 1;
    }
    uint8_t stack[1024];
    size_t len;
    pthread_mutex_lock(&cl->lock);
    if (cl->dead && redial_locked(cl) < 0) {
        pthread_mutex_unlock(&cl->lock);
        return -1;
    }
    rpc->id = ++cl->next_id;
    rq->has_id = true;
    rq->id = rpc->id;
    /* Values given back go out now, ahead of anything this or another thread
     * sends next: chand must return them to their channels before it serves
     * another request (that keeps a channel's order for a select that lost). */
    flush_nacks_locked(cl);
    /* pending acknowledgements ride on this request */
    chan_idlist_t mine = cl->acks;
    cl->acks = (chan_idlist_t){ NULL, 0, 0 };
    pthread_mutex_unlock(&cl->lock);
    rq->n_ack = mine.n;
    rq->ack = mine.v;
    uint8_t *buf = NULL;
    int err = 0;
    size_t size = chan_frame_size_request(rq);
    if (size > cl->max_frame) {
        /* too big with the ids: send them later, alone */
        rq->n_ack = 0;
        pthread_mutex_lock(&cl->lock);
        ids_restore(&cl->acks, &mine);
        pthread_mutex_unlock(&cl->lock);
        mine = (chan_idlist_t){ NULL, 0, 0 };
        size = chan_frame_size_request(rq);
        if (size > cl->max_frame)
            err = EMSGSIZE;
    }
    if (!err && !(buf = pack(rq, size, stack, sizeof stack, &len)))
        err = ENOMEM;
    rq->n_ack = 0;
    rq->ack = NULL;
    pthread_mutex_lock(&cl->lock);
    /* Room in the table first (failing is harmless before the write), the
     * write (which may wait for output room, the lock released), and only
     * then the registration: the reply cannot be read before we unlock, and
     * an rpc is never registered while its caller might still give up. */
    if (!err && idmap_put(&cl->rpcs, rpc->id, rpc) < 0)
        err = ENOMEM;
    if (!err)
        idmap_del(&cl->rpcs, rpc->id);
    if (!err && write_locked(cl, buf, len, true) < 0)
        err = errno;
    if (!err && idmap_put(&cl->rpcs, rpc->id, rpc) < 0)
        err = ENOMEM;   /* only if memory ran out while the write waited for
                           room and others grew the table: the request went
                           out, its answer will be dropped (values given back) */
    if (err)
        ids_restore(&cl->acks, &mine);
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

void chan_client_oneway(chan_client_t *cl, Chan__Request *rq)
{
    pthread_mutex_lock(&cl->lock);
    if (!cl->dead) {
        rq->has_id = true;
        rq->id = ++cl->next_id;
        send_locked(cl, rq);
    }
    pthread_mutex_unlock(&cl->lock);
}

void chan_client_ack(chan_client_t *cl, const uint64_t *ids, size_t n)
{
    if (!n)
        return;
    pthread_mutex_lock(&cl->lock);
    if (!cl->acks.n)
        cl->ack_oldest = chan_now();
    for (size_t i = 0; i < n; i++)
        idlist_add(&cl->acks, ids[i]);
    if (cl->ack_delay == 0 && !cl->dead) {
        /* At once, from the caller: an unbuffered sender completes as soon
         * as we have its value, as in Go, and the sender's next step
         * overlaps with ours. */
        Chan__Request rq = CHAN__REQUEST__INIT;
        rq.n_ack = cl->acks.n;
        rq.ack = cl->acks.v;
        send_locked(cl, &rq);
        cl->acks.n = 0;
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
        wake_io(cl);
}

void chan_client_abandon(chan_client_t *cl, chan_rpc_t *rpc)
{
    pthread_mutex_lock(&cl->lock);
    if (idmap_del(&cl->rpcs, rpc->id) && !cl->dead) {
        Chan__Cancel c = CHAN__CANCEL__INIT;
        c.has_target = true;
        c.target = rpc->id;
        Chan__Request rq = CHAN__REQUEST__INIT;
        rq.has_id = true;
        rq.id = ++cl->next_id;   /* its reply finds no rpc and is dropped */
        rq.op_case = CHAN__REQUEST__OP_CANCEL;
        rq.cancel = &c;
        send_locked(cl, &rq);
    }
    pthread_mutex_unlock(&cl->lock);
}

void chan_client_cancel(chan_client_t *cl, chan_rpc_t *rpc)
{
    chan_waiter_t settled;
    chan_waiter_init(&settled);
    pthread_mutex_lock(&cl->lock);
    bool pending = idmap_get(&cl->rpcs, rpc->id) == rpc && !cl->dead;
    if (pending) {
        rpc->settled = &settled;
        Chan__Cancel c = CHAN__CANCEL__INIT;
        c.has_target = true;
        c.target = rpc->id;
        Chan__Request rq = CHAN__REQUEST__INIT;
        rq.has_id = true;
        rq.id = ++cl->next_id;   /* its own reply finds no rpc and is dropped */
        rq.op_case = CHAN__REQUEST__OP_CANCEL;
        rq.cancel = &c;
        send_locked(cl, &rq);
    }
    pthread_mutex_unlock(&cl->lock);
    if (!pending)
        return;
    /* chand answers the request before the cancel (or instead of it) */
    if (chan_waiter_park(&settled, chan_grace(0), NULL, NULL) == CHAN_WAIT_TIMEOUT)
        chan_client_abandon(cl, rpc);   /* a stuck connection: stop waiting */
}

int64_t chan_grace(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t now = chan_now();
    return (deadline > now ? deadline : now) + GRACE_MS;   /* 0: "now" */
}

int chan_client_call(chan_client_t *cl, Chan__Request *rq, chan_rpc_t *rpc, int64_t local)
{
    chan_waiter_t w;
    chan_waiter_init(&w);
    w.far = true;   /* the reply is a network round trip away */
    rpc->w = &w;
    if (chan_client_start(cl, rq, rpc) < 0)
        return -1;
    if (chan_waiter_park(&w, local, NULL, NULL) == CHAN_WAIT_TIMEOUT) {
        chan_client_abandon(cl, rpc);
        errno = ETIMEDOUT;
        return -1;
    }
    if (rpc->err) {
        errno = rpc->err;
        return -1;
    }
    chan_client_ack(cl, rpc->dlv, rpc->ndlv);   /* the caller has them now */
    return 0;
}

/* ---- the I/O thread ---- */

/* A request of a select across sources ends without winning (cl->lock
 * held).  Returns the waiter to wake if it was the last one and nothing
 * else can win; the caller wakes it after unlocking and touches neither the
 * rpc nor the multi afterwards. */
static chan_waiter_t *multi_pass(chan_multi_t *m, int err)
{
    if (err)
        atomic_store(&m->lost, err);
    if (atomic_fetch_sub(&m->left, 1) != 1 || !m->give_up_at_zero || !chan_waiter_claim(m->w))
        return NULL;
    m->w->index = CHAN_WAIT_TIMEOUT;
    m->w->err = atomic_load(&m->lost);
    return m->w;
}

/* Connection number gen is gone: close it and fail every call in flight
 * with err.  The next call dials again. */
static void fail_all(chan_client_t *cl, int err, uint64_t gen)
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
    if (cl->fd >= 0) {
        close(cl->fd);
        cl->fd = -1;
    }
    cl->olen = 0;
    size_t n = 0;
    chan_waiter_t **wake = malloc((cl->rpcs.count ? cl->rpcs.count : 1) * sizeof *wake);
    for (size_t i = 0; i < cl->rpcs.cap && wake; i++) {
        chan_rpc_t *rpc = cl->rpcs.vals[i];
        if (!cl->rpcs.keys[i])
            continue;
        if (rpc->settled) {
            if (chan_waiter_claim(rpc->settled))
                wake[n++] = rpc->settled;
        } else if (rpc->multi) {
            /* one source of a select is lost: the others go on */
            chan_waiter_t *w = multi_pass(rpc->multi, cl->dead_err);
            if (w)
                wake[n++] = w;
        } else if (chan_waiter_claim(rpc->w)) {
            rpc->err = cl->dead_err;
            rpc->w->index = 0;
            wake[n++] = rpc->w;
        }
    }
    idmap_free(&cl->rpcs);
    pthread_cond_broadcast(&cl->drained);
    pthread_mutex_unlock(&cl->lock);
    for (size_t i = 0; i < n; i++)
        chan_waiter_wake(wake[i]);
    free(wake);
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

/* Give back a reservation nobody will commit (lock held). */
static void release_locked(chan_client_t *cl, uint64_t target)
{
    Chan__Release m = CHAN__RELEASE__INIT;
    m.has_target = true;
    m.target = target;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = ++cl->next_id;   /* its reply finds no rpc and is dropped */
    rq.op_case = CHAN__REQUEST__OP_RELEASE;
    rq.release = &m;
    send_locked(cl, &rq);
}

/* Give values back to chand (sent after this read batch). */
static void give_back(chan_client_t *cl, Chan__Delivery *const *dv, size_t n)
{
    if (!n)
        return;
    pthread_mutex_lock(&cl->lock);
    for (size_t i = 0; i < n; i++)
        idlist_add(&cl->nacks, dv[i]->id);
    pthread_mutex_unlock(&cl->lock);
}

static void handle_reply(chan_client_t *cl, const Chan__Reply *r)
{
    Chan__Status st = r->has_status ? r->status : CHAN__STATUS__OK;
    if (!r->has_id || r->id == 0) {
        /* about the connection itself; chand closes it next */
        if (st != CHAN__STATUS__OK) {
            pthread_mutex_lock(&cl->lock);
            if (!cl->dead)
                cl->dead_err = chan_status_errno(st);
            pthread_mutex_unlock(&cl->lock);
        }
        return;
    }
    Chan__Delivery *const *dv = NULL;
    size_t ndv = reply_deliveries(r, &dv);
    pthread_mutex_lock(&cl->lock);
    chan_rpc_t *rpc = idmap_del(&cl->rpcs, r->id);
    if (rpc && rpc->settled) {
        /* cancelled by its owner: undo it, then tell the owner */
        if (st == CHAN__STATUS__RESERVED)
            release_locked(cl, r->id);
        for (size_t i = 0; i < ndv; i++)
            idlist_add(&cl->nacks, dv[i]->id);
        chan_waiter_t *w = chan_waiter_claim(rpc->settled) ? rpc->settled : NULL;
        pthread_mutex_unlock(&cl->lock);
        if (w)
            chan_waiter_wake(w);
        return;
    }
    if (rpc && rpc->multi && st == CHAN__STATUS__TIMEOUT) {
        chan_waiter_t *w = multi_pass(rpc->multi, 0);
        pthread_mutex_unlock(&cl->lock);
        if (w)
            chan_waiter_wake(w);
        return;
    }
    bool won = rpc && chan_waiter_claim(rpc->w);
    if (!won) {
        /* Nobody takes them.  Queue them for return before letting go of the
         * lock: the loser's owner, seeing its request gone, may send its
         * next request at once, and it must carry these back first. */
        if (st == CHAN__STATUS__RESERVED)
            release_locked(cl, r->id);
        for (size_t i = 0; i < ndv; i++)
            idlist_add(&cl->nacks, dv[i]->id);
        pthread_mutex_unlock(&cl->lock);
        return;
    }
    pthread_mutex_unlock(&cl->lock);
    rpc->err = 0;
    rpc->status = st;
    if (r->message)
        snprintf(rpc->message, sizeof rpc->message, "%s", r->message);
    bool taken = rpc->on_reply ? rpc->on_reply(rpc, r) : true;
    if (taken && ndv <= rpc->dlv_cap) {
        for (size_t i = 0; i < ndv; i++)
            rpc->dlv[i] = dv[i]->id;
        rpc->ndlv = ndv;
        if (ndv)
            cl->handed = true;   /* a later reply of the batch must not clear it */
    } else {
        give_back(cl, dv, ndv);
    }
    chan_waiter_t *w = rpc->w;
    w->index = rpc->multi ? rpc->index : 0;   /* not CHAN_WAIT_TIMEOUT: a reply came */
    chan_waiter_wake(w);
}

/* Send what must go now: every nack, and the acks if they have waited
 * ack_delay for a request to ride on (or `all`).  Returns the poll timeout
 * until the next check, -1 for none. */
static int flush_acks(chan_client_t *cl, bool all)
{
    pthread_mutex_lock(&cl->lock);
    int64_t now = chan_now();
    bool acks_due = cl->acks.n && (all || now - cl->ack_oldest >= cl->ack_delay);
    if ((acks_due || cl->nacks.n) && !cl->dead) {
        Chan__Request rq = CHAN__REQUEST__INIT;
        rq.n_ack = acks_due ? cl->acks.n : 0;
        rq.ack = cl->acks.v;
        rq.n_nack = cl->nacks.n;
        rq.nack = cl->nacks.v;
        send_locked(cl, &rq);
    }
    if (acks_due)
        cl->acks.n = 0;
    cl->nacks.n = 0;
    int timeout = -1;
    if (cl->acks.n)
        timeout = (int)(cl->ack_oldest + cl->ack_delay - now);
    else if (cl->handed)
        timeout = (int)cl->ack_delay;   /* the caller is about to queue them */
    cl->handed = false;
    cl->io_idle = timeout == -1;       /* chan_client_ack must wake us */
    pthread_mutex_unlock(&cl->lock);
    return timeout < 0 ? (timeout == -1 ? -1 : 0) : timeout;
}

static void flush_out(chan_client_t *cl)
{
    pthread_mutex_lock(&cl->lock);
    while (cl->olen) {
        ssize_t w = send(cl->fd, cl->obuf, cl->olen, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        memmove(cl->obuf, cl->obuf + w, cl->olen - (size_t)w);
        cl->olen -= (size_t)w;
    }
    pthread_cond_broadcast(&cl->drained);
    pthread_mutex_unlock(&cl->lock);
}

/* Handle every complete frame in buf[0..*len); keep the partial rest.
 * -1 on a protocol error. */
static int read_frames(chan_client_t *cl, chan_arena_t *arena, uint8_t *buf, size_t *len)
{
    size_t off = 0;
    int rc = 0;
    while (off < *len) {
        uint64_t body;
        size_t hdr;
        int h = chan_frame_header(buf + off, *len - off, cl->max_frame, &body, &hdr);
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
        handle_reply(cl, r);
        chan_arena_reset(arena);
    }
    memmove(buf, buf + off, *len - off);
    *len -= off;
    return rc;
}

/* Read what the socket has and handle every whole frame.  0, or an errno
 * that ends the connection. */
static int read_some(chan_client_t *cl, int fd, chan_arena_t *arena, uint8_t **bufp,
                     size_t *cap, size_t *len)
{
    for (;;) {
        if (*len == *cap) {
            /* a frame bigger than the buffer: grow, up to the limit */
            size_t ncap = *cap * 2;
            if (ncap > cl->max_frame + CHAN_FRAME_HDR_MAX)
                ncap = cl->max_frame + CHAN_FRAME_HDR_MAX;
            uint8_t *nb = ncap > *cap ? realloc(*bufp, ncap) : NULL;
            if (!nb)
                return EPROTO;
            *bufp = nb;
            *cap = ncap;
        }
        ssize_t n = recv(fd, *bufp + *len, *cap - *len, 0);
        if (n == 0)
            return ECONNRESET;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            return ECONNRESET;
        }
        *len += (size_t)n;
        if (read_frames(cl, arena, *bufp, len) < 0)
            return EPROTO;
    }
}

static void *io_main(void *arg)
{
    chan_client_t *cl = arg;
    chan_arena_t arena;
    chan_arena_init(&arena);
    size_t cap = READ_CHUNK, len = 0;
    uint8_t *buf = malloc(cap);
    int timeout = -1;
    uint64_t gen = 0;
    while (buf) {
        pthread_mutex_lock(&cl->lock);
        bool closing = cl->closing, dead = cl->dead, want_out = cl->olen > 0;
        int fd = cl->fd;
        uint64_t g = cl->gen;
        pthread_mutex_unlock(&cl->lock);
        if (closing)
            break;
        if (g != gen) {   /* a new connection: nothing carries over */
            gen = g;
            len = 0;
            timeout = -1;
        }
        struct pollfd p[2] = {
            { dead ? -1 : fd, (short)(POLLIN | (want_out ? POLLOUT : 0)), 0 },
            { cl->wake_fd, POLLIN, 0 },
        };
        int np = poll(p, 2, dead ? -1 : timeout);
        if (np < 0 && errno != EINTR)
            break;
        if (np <= 0) {
            if (np == 0)
                timeout = flush_acks(cl, false);
            continue;
        }
        if (p[1].revents) {
            uint64_t v;
            (void)!read(cl->wake_fd, &v, sizeof v);
        }
        if (dead)
            continue;
        if (p[0].revents & POLLOUT)
            flush_out(cl);
        int err = 0;
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
            err = read_some(cl, fd, &arena, &buf, &cap, &len);
        if (err) {
            pthread_mutex_lock(&cl->lock);
            if (cl->dead_err)
                err = cl->dead_err;   /* chand said why before closing */
            pthread_mutex_unlock(&cl->lock);
            fail_all(cl, err, gen);
            continue;
        }
        timeout = flush_acks(cl, false);
    }
    flush_acks(cl, true);   /* closing: what the caller has is taken */
    free(buf);
    chan_arena_free(&arena);
    return NULL;
}

/* ---- connecting ---- */

static int connect_fd(const char *addr, int64_t deadline)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (chan_addr_parse(addr, 0, &ss, &len) < 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        int ready = wait_fd(fd, POLLOUT, deadline);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (ready <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            close(fd);
            errno = ready == 0 ? ETIMEDOUT : soerr ? soerr : ECONNREFUSED;
            return -1;
        }
    }
    if (ss.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* Exchange Hellos on a fresh connection, before the I/O thread uses it. */
static int handshake(int fd, const char *token, int64_t deadline, struct hello_info *hi)
{
    Chan__Hello h = CHAN__HELLO__INIT;
    h.has_version = true;
    h.version = CHAN_PROTOCOL_VERSION;
    if (token) {
        h.has_token = true;
        h.token.data = (uint8_t *)token;
        h.token.len = strlen(token);
    }
    h.client_name = "libchan " CHAN_VERSION;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = 1;   /* the first request of every connection */
    rq.op_case = CHAN__REQUEST__OP_HELLO;
    rq.hello = &h;
    uint8_t out[2048];
    if (chan_frame_size_request(&rq) > sizeof out) {
        errno = EINVAL;   /* a token over 2 KiB */
        return -1;
    }
    size_t n = chan_frame_encode_request(&rq, out), off = 0;
    while (off < n) {
        ssize_t w = send(fd, out + off, n - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        } else if (wait_fd(fd, POLLOUT, deadline) <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
    uint8_t in[4096];
    size_t got = 0;
    for (;;) {
        uint64_t body;
        size_t hdr;
        int rc = chan_frame_header(in, got, sizeof in - CHAN_FRAME_HDR_MAX, &body, &hdr);
        if (rc < 0) {
            errno = EPROTO;
            return -1;
        }
        if (rc == CHAN_FRAME_OK && got >= hdr + body) {
            chan_arena_t a;
            chan_arena_init(&a);
            Chan__Reply *r = chan_frame_decode_reply(&a, in + hdr, body);
            int err = 0;
            if (!r)
                err = EPROTO;
            else if (r->has_status && r->status != CHAN__STATUS__OK)
                err = r->status == CHAN__STATUS__BAD_REQUEST ? EPROTO : chan_status_errno(r->status);
            else if (r->result_case != CHAN__REPLY__RESULT_HELLO || !r->hello->limits)
                err = EPROTO;
            if (!err) {
                const Chan__Limits *l = r->hello->limits;
                hi->max_frame = l->has_max_frame ? l->max_frame : 1u << 20;
                hi->max_value = l->has_max_value ? l->max_value : hi->max_frame - 64;
                hi->max_batch = l->has_max_batch && l->max_batch ? l->max_batch : 1;
                hi->max_cases = l->has_max_cases ? l->max_cases : 64;
                snprintf(hi->server, sizeof hi->server, "%s",
                         r->hello->server ? r->hello->server : "?");
            }
            chan_arena_free(&a);
            if (err) {
                errno = err;
                return -1;
            }
            /* anything after the Hello reply would be a reply to nothing */
            return got == hdr + body ? 0 : (errno = EPROTO, -1);
        }
        if (wait_fd(fd, POLLIN, deadline) <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        ssize_t r = recv(fd, in + got, sizeof in - got, 0);
        if (r == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (r < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (r > 0)
            got += (size_t)r;
    }
}

static void client_free(chan_client_t *cl)
{
    if (cl->fd >= 0)
        close(cl->fd);
    if (cl->wake_fd >= 0)
        close(cl->wake_fd);
    idmap_free(&cl->rpcs);
    free(cl->obuf);
    free(cl->acks.v);
    free(cl->nacks.v);
    free(cl->addr);
    free(cl->token);
    pthread_mutex_destroy(&cl->lock);
    pthread_cond_destroy(&cl->drained);
    free(cl);
}

static void client_close(chan_client_t *cl);

/* The last reference closes the connection if chan_disconnect() did not
 * (a connection made by chan_open_ref() for its handle). */
void chan_client_unref(chan_client_t *cl)
{
    if (!cl || atomic_fetch_sub_explicit(&cl->refs, 1, memory_order_acq_rel) != 1)
        return;
    client_close(cl);
    client_free(cl);
}

chan_client_t *chan_connect(const char *addr, const char *token, int64_t deadline)
{
    if (!addr)
        addr = getenv("CHAN_ADDR");
    if (!addr || !*addr)
        addr = DEFAULT_ADDR;
    if (!token)
        token = getenv("CHAN_TOKEN");
    if (token && !*token)
        token = NULL;
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
    cl->ack_delay = ACK_DELAY_MS;
    const char *delay = getenv("CHAN_ACK_DELAY_MS");
    if (delay && *delay)
        cl->ack_delay = strtol(delay, NULL, 10) > 0 ? strtol(delay, NULL, 10) : 0;
    cl->addr = strdup(addr);
    cl->token = token ? strdup(token) : NULL;
    cl->gen = 1;
    struct hello_info hi;
    int err = 0;
    if (!cl->addr || (token && !cl->token))
        err = ENOMEM;
    else if ((cl->fd = connect_fd(addr, deadline)) < 0)
        err = errno;
    else if (handshake(cl->fd, token, deadline, &hi) < 0)
        err = errno;
    else if ((cl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        err = errno;
    if (!err) {
        apply_hello(cl, &hi);   /* before the I/O thread reads frames */
        if ((err = pthread_create(&cl->io, NULL, io_main, cl)) == 0)
            cl->io_started = true;
    }
    if (err) {
        client_free(cl);
        errno = err;
        return NULL;
    }
    return cl;
}

/* Write out what is queued, for up to a second: the last acknowledgements
 * matter (without them chand would redeliver values we took). */
static void drain_out(chan_client_t *cl)
{
    int64_t deadline = chan_now() + 1000;
    pthread_mutex_lock(&cl->lock);
    while (cl->olen && !cl->dead) {
        pthread_mutex_unlock(&cl->lock);
        int ready = wait_fd(cl->fd, POLLOUT, deadline);
        pthread_mutex_lock(&cl->lock);
        if (ready <= 0)
            break;
        ssize_t w = send(cl->fd, cl->obuf, cl->olen, MSG_NOSIGNAL);
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
        wake_io(cl);
        pthread_join(cl->io, NULL);
        drain_out(cl);
    }
    fail_all(cl, ECONNRESET, cl->gen);   /* closes the socket */
}

void chan_disconnect(chan_client_t *cl)
{
    if (!cl)
        return;
    client_close(cl);
    chan_client_unref(cl);
}

/* ---- ping ---- */

int chan_ping(chan_client_t *cl, int64_t deadline)
{
    if (!cl) {
        errno = EINVAL;
        return -1;
    }
    Chan__Ping p = CHAN__PING__INIT;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_PING;
    rq.ping = &p;
    chan_rpc_t rpc = { 0 };
    if (chan_client_call(cl, &rq, &rpc, deadline) < 0)
        return -1;
    if (rpc.status != CHAN__STATUS__OK) {
        errno = chan_status_errno(rpc.status);
        return -1;
    }
    return 0;
}

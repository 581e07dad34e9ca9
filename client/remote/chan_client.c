/*
 * chan_client.c - the connection to chand (see chan_client.h for the idea).
 *
 * Threads:
 *   - Callers (any thread or goroutine) pack their request, register it and
 *     write it themselves: a call costs no thread switch on the way out.  The
 *     socket is non-blocking; what the kernel does not take waits in `obuf`
 *     for the I/O thread to flush.
 *   - Replies are read by whoever holds the reader role (chan_client.h): a
 *     calling thread waiting for its own reply, a worker whose goroutine
 *     waits for one, or the I/O thread.  Before this, the I/O thread read
 *     every reply and woke its waiter: two wake-ups per reply (measured:
 *     12 context switches per round trip against hiredis's 4).  Decoding
 *     happens on a thread's own stack, never on a small goroutine stack.
 *   - One I/O thread per client flushes queued output, notices a hang-up,
 *     sends delayed acknowledgements, and reads when nobody else does.
 *
 * Lock order: cl->lock is the only lock here; a waiter is woken only after
 * it is released.  The role's holder reads without the lock.
 *
 * TLS (tls://, chan_tls.c): an SSL object must not see SSL_read() and
 * SSL_write() from two threads at once (both change its state: sequence
 * numbers, buffers, alerts), and here writers and the reader are different
 * threads by design.  So every call on cl->ssl is made under cl->lock:
 * writers hold it already (write_locked, flush_out, drain_out), and the
 * role's holder takes it around each SSL_read() only (conn_recv), never
 * while it decodes or dispatches.  That costs the reader one uncontended
 * lock per read of up to a record, and keeps the reader role as it is.
 * The reader also checks, under the lock, that the connection it reads is
 * still the live one: fail_all frees the SSL object under the lock, so a
 * reader woken from poll() on a failed connection finds it gone instead of
 * using freed memory.  A record holds at most 16 KiB, so one SSL_read()
 * does not empty the socket as one recv() may: a TLS reader reads until
 * OpenSSL says it wants more (nothing is left inside it unseen by poll).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "chan_addr.h"
#include "chan_clock.h"
#include "chan_errmsg.h"
#include "remote/chan_client.h"
#include "remote/chan_route.h"
#include "remote/chan_tls.h"
#include "runtime/chan_sched.h"

/* A dial through a cluster's seeds gives each seed this long. */
#define SEED_TIMEOUT_MS 1000
#define READ_CHUNK (64 * 1024)
#define OBUF_MAX (64u << 20)      /* callers wait while more is unwritten */
#define GRACE_MS 2000             /* for chand to answer its own timeout */
#define ACK_DELAY_MS 0            /* default CHAN_ACK_DELAY_MS: at once */
#define DIAL_TIMEOUT_MS 5000      /* a reconnection attempt */
#define BACKOFF_MIN_MS 50         /* first wait after a failed reconnection */
#define BACKOFF_MAX_MS 5000
#define READ_SPIN_NS 50000        /* see read_spin_ns */

/* Who holds the reader role (cl->reader). */
enum { RD_FREE, RD_IO, RD_CALLER };

/* What a server says about itself in its Hello reply. */
struct hello_info {
    uint64_t max_frame, max_value;
    uint32_t max_batch, max_cases;
    uint64_t ack_wait_ms;
    char server[64];
    bool cluster;              /* a cluster node (its Hello has a role) */
    char group[104];           /* ... and its group */
    bool not_primary;          /* a cluster node that is not its group's primary */
    char primary[128];         /* ... and where the primary is ("": none yet) */
};

static int connect_fd(const char *addr, int64_t deadline);
static int dial(chan_client_t *cl, int64_t deadline, SSL **sslp, struct hello_info *hi);
static void fail_all(chan_client_t *cl, int err, uint64_t gen, bool reading);

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
int chani_wait_fd(int fd, short events, int64_t deadline)
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
        /* TLS: bytes SSL_write() did not take (EAGAIN) go to obuf's head,
         * from where flush_out offers them again, as OpenSSL requires */
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

/* ---- the reader role ---- */

/* A request that chand will answer went out (lock held).  Someone must read
 * the answer: if nobody holds the role and the writer will not take it,
 * the I/O thread does. */
static void expect_reply_locked(chan_client_t *cl, bool writer_reads)
{
    cl->outstanding++;
    if (!writer_reads && cl->reader == RD_FREE) {
        cl->reader = RD_IO;
        cl->reader_gen = cl->gen;
        cl->reader_fd = cl->fd;
        wake_io(cl);
    }
}

/* Take the role for a caller (lock held); true if it did.  The holder
 * keeps a reference: the client outlives its reading. */
static bool role_take_locked(chan_client_t *cl)
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
        wake_io(cl);
    } else {
        cl->reader = RD_FREE;
    }
    pthread_mutex_unlock(&cl->lock);
    chani_client_unref(cl);
}

/* Send a request nobody waits on (cancel, acknowledgements); lock held.
 * True if it went out (or is queued). */
static bool send_locked(chan_client_t *cl, Chan__Request *rq)
{
    uint8_t stack[512];
    size_t len;
    uint8_t *buf = pack(rq, chan_frame_size_request(rq), stack, sizeof stack, &len);
    if (!buf)
        return false;
    bool ok = write_locked(cl, buf, len, false) == 0;
    if (buf != stack)
        free(buf);
    if (ok && rq->op_case != CHAN__REQUEST__OP__NOT_SET)
        expect_reply_locked(cl, false);   /* acknowledgements alone get none */
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
    send_locked(cl, &rq);
}

/* ---- reconnecting ---- */

static void apply_hello(chan_client_t *cl, const struct hello_info *hi)
{
    atomic_store_explicit(&cl->max_frame, hi->max_frame, memory_order_relaxed);
    atomic_store_explicit(&cl->max_value, hi->max_value, memory_order_relaxed);
    atomic_store_explicit(&cl->max_batch, hi->max_batch, memory_order_relaxed);
    atomic_store_explicit(&cl->max_cases, hi->max_cases, memory_order_relaxed);
    memcpy(cl->server, hi->server, sizeof cl->server);
    atomic_store_explicit(&cl->cluster, hi->cluster, memory_order_relaxed);
    memcpy(cl->group, hi->group, sizeof cl->group);
    /* Held acks must never come near the daemon's ack deadline, else it
     * would give back values the application has taken. */
    cl->ack_delay = cl->ack_delay_wanted;
    if (hi->ack_wait_ms && cl->ack_delay > (int64_t)(hi->ack_wait_ms / 10))
        cl->ack_delay = (int64_t)(hi->ack_wait_ms / 10);
}

/* The connection is gone: dial again, unless a dial failed less than the
 * backoff ago (then fail at once: a dead daemon costs callers nothing).
 * Called and returns with cl->lock held; released while dialling.  The new
 * connection starts clean: calls in flight on the old one have failed,
 * unacknowledged values there are chand's to redeliver, and temporary
 * channels made on it are gone.  Its first requests open the handles'
 * channels again (chan_reopen.c): the daemon may have restarted without
 * them, and the handles must go on naming the same channels.  0, or -1
 * with errno ECONNRESET. */
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
    SSL *ssl = NULL;
    int fd = dial(cl, now + DIAL_TIMEOUT_MS, &ssl, &hi);
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
    apply_hello(cl, &hi);
    cl->fd = fd;
    cl->ssl = ssl;
    cl->gen++;
    cl->dead = false;
    cl->dead_err = 0;
    cl->backoff = 0;
    cl->olen = 0;
    cl->outstanding = 0;
    cl->io_hup = false;
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

/* chani_client_start, and with `want_role` also take the reader role if
 * nobody holds it (*took says whether it did). */
static int start_rpc(chan_client_t *cl, Chan__Request *rq, chan_rpc_t *rpc, bool want_role,
                     bool *took)
{
    *took = false;
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
    rpc->handle_failed = false;
    pthread_mutex_lock(&cl->lock);
    if (rpc->need_gen && (cl->dead || cl->gen != rpc->need_gen)) {
        pthread_mutex_unlock(&cl->lock);
        errno = ESTALE;
        return -1;
    }
    /* A handle known to be unusable fails without dialling; one that the
     * redial finds unusable fails after it. */
    int herr = chani_client_handles_err_locked(cl, rpc->handles, rpc->nhandles);
    if (!herr && cl->dead && redial_locked(cl) < 0) {
        pthread_mutex_unlock(&cl->lock);
        return -1;
    }
    if (!herr)
        herr = chani_client_handles_err_locked(cl, rpc->handles, rpc->nhandles);
    if (herr) {
        rpc->handle_failed = true;
        pthread_mutex_unlock(&cl->lock);
        errno = herr;
        return -1;
    }
    uint64_t gen = cl->gen;
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
    if (size > chani_client_max_frame(cl)) {
        /* too big with the ids: send them later, alone */
        rq->n_ack = 0;
        pthread_mutex_lock(&cl->lock);
        if (cl->gen == gen)
            ids_restore(&cl->acks, &mine);
        else
            free(mine.v);   /* the old connection's: void */
        pthread_mutex_unlock(&cl->lock);
        mine = (chan_idlist_t){ NULL, 0, 0 };
        size = chan_frame_size_request(rq);
        if (size > chani_client_max_frame(cl))
            err = EMSGSIZE;
    }
    if (!err && !(buf = pack(rq, size, stack, sizeof stack, &len)))
        err = ENOMEM;
    rq->n_ack = 0;
    rq->ack = NULL;
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
        return start_rpc(cl, rq, rpc, want_role, took);
    }
    /* Room in the table first (failing is harmless before the write), the
     * write (which may wait for output room, the lock released), and only
     * then the registration: the reply cannot be read before we unlock, and
     * an rpc is never registered while its caller might still give up. */
    if (!err && idmap_put(&cl->rpcs, rpc->id, rpc) < 0)
        err = ENOMEM;
    if (!err)
        idmap_del(&cl->rpcs, rpc->id);
    bool wrote = false;
    if (!err && write_locked(cl, buf, len, true) < 0)
        err = errno;
    else if (!err)
        wrote = true;
    if (!err && idmap_put(&cl->rpcs, rpc->id, rpc) < 0)
        err = ENOMEM;   /* only if memory ran out while the write waited for
                           room and others grew the table: the request went
                           out, its answer will be dropped (values given back) */
    if (wrote) {
        /* The reply will come: the caller reads it itself if it may and
         * nobody else reads, else the holder of the role or the I/O thread. */
        *took = !err && want_role && role_take_locked(cl);
        expect_reply_locked(cl, *took);
    }
    if (err && cl->gen == gen)
        ids_restore(&cl->acks, &mine);
    else if (err)
        free(mine.v);   /* the old connection's: void */
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

int chani_client_start(chan_client_t *cl, Chan__Request *rq, chan_rpc_t *rpc)
{
    bool took;
    return start_rpc(cl, rq, rpc, false, &took);
}

void chani_client_oneway(chan_client_t *cl, uint64_t gen, Chan__Request *rq)
{
    pthread_mutex_lock(&cl->lock);
    if (!cl->dead && (!gen || cl->gen == gen)) {
        rq->has_id = true;
        rq->id = ++cl->next_id;
        send_locked(cl, rq);
    }
    pthread_mutex_unlock(&cl->lock);
}

void chani_client_nack(chan_client_t *cl, uint64_t gen, const uint64_t *ids, size_t n)
{
    if (!n)
        return;
    pthread_mutex_lock(&cl->lock);
    if (!cl->dead && cl->gen == gen) {
        Chan__Request rq = CHAN__REQUEST__INIT;
        rq.n_nack = n;
        rq.nack = (uint64_t *)ids;
        send_locked(cl, &rq);
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

int64_t chani_grace(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t now = chan_now();
    return (deadline > now ? deadline : now) + GRACE_MS;   /* 0: "now" */
}

static int pump(chan_client_t *cl, int fd, uint64_t gen);
static int pump_got(chan_client_t *cl, int fd, uint64_t gen, bool *got);

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

/* The connection the reader reads ended with err (a read error, EOF, a
 * protocol error): fail everything in flight on it. */
static void reader_failed(chan_client_t *cl, int err, uint64_t gen)
{
    pthread_mutex_lock(&cl->lock);
    if (cl->dead_err && cl->gen == gen)
        err = cl->dead_err;   /* chand said why before closing */
    pthread_mutex_unlock(&cl->lock);
    fail_all(cl, err, gen, true);
}

/* A plain thread holds the role: read replies, its own and any other, until
 * its own has come or its deadline passes, then let the role go.  Blocking
 * in poll() on the socket is what a hiredis caller does: the reply wakes
 * this thread and nobody else. */
static void lead(chan_client_t *cl, chan_waiter_t *w, int64_t deadline)
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
                reader_failed(cl, err, gen);
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
        int err = pump(cl, fd, gen);
        if (err) {
            reader_failed(cl, err, gen);
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
        reader_failed(cl, err, gen);
        return true;
    }
    return got;
}

static void worker_done(void *ctx)
{
    role_release(ctx);
}

static const chan_poll_ops_t worker_poll = { worker_read, worker_done, read_spin_ns };

/* Whether chand's answer to rq may hand over a value or hold a place (a
 * reservation).  A caller whose deadline passes before such an answer
 * comes must not leave until the answer has come and its value is queued
 * for return: chand serves a connection's requests in order, so a late
 * answer has the head of the channel, and any request the caller sends
 * next would be given the value behind it.  Given back only after that,
 * the head value would reach the caller after its successor, not marked
 * redelivered. */
static bool answer_may_hand_over(const Chan__Request *rq)
{
    return rq->op_case == CHAN__REQUEST__OP_RECV || rq->op_case == CHAN__REQUEST__OP_SELECT ||
           rq->op_case == CHAN__REQUEST__OP_COMMIT;
}

int chani_client_call(chan_client_t *cl, Chan__Request *rq, chan_rpc_t *rpc, int64_t local)
{
    chan_waiter_t w;
    chani_waiter_init(&w);
    w.far = true;   /* the reply is a network round trip away */
    rpc->w = &w;
    /* A thread may always read for itself; a goroutine's worker only if it
     * would otherwise have nothing to do. */
    bool took;
    if (start_rpc(cl, rq, rpc, !w.g || chani_sched_can_poll(), &took) < 0)
        return -1;
    if (took && !w.g)
        lead(cl, &w, local);
    else if (took)
        chani_sched_set_poll(cl->reader_fd, &worker_poll, cl);
    if (chani_waiter_park(&w, local, NULL, NULL) == CHAN_WAIT_TIMEOUT) {
        if (answer_may_hand_over(rq))
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

/* ---- the I/O thread ---- */

/* A request of a select across sources ends without winning (cl->lock
 * held).  Returns the waiter to wake if it was the last one and nothing
 * else can win; the caller wakes it after unlocking and touches neither the
 * rpc nor the multi afterwards. */
static chan_waiter_t *multi_pass(chan_multi_t *m, int err)
{
    if (err)
        atomic_store(&m->lost, err);
    if (atomic_fetch_sub(&m->left, 1) != 1 || !m->give_up_at_zero || !chani_waiter_claim(m->w))
        return NULL;
    m->w->index = CHAN_WAIT_TIMEOUT;
    m->w->err = atomic_load(&m->lost);
    return m->w;
}

/* Connection number gen is gone: close it and fail every call in flight
 * with err.  The next call dials again.  `reading`: the caller holds the
 * reader role (or no one can: the I/O thread has stopped). */
static void fail_all(chan_client_t *cl, int err, uint64_t gen, bool reading)
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
     * each SSL_read (conn_recv): it finds it gone */
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
    wake_io(cl);   /* it stops watching the socket */
    cl->olen = 0;
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
            chan_waiter_t *w = multi_pass(rpc->multi, cl->dead_err);
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

void chani_client_release(chan_client_t *cl, uint64_t gen, uint64_t target)
{
    pthread_mutex_lock(&cl->lock);
    if (!cl->dead && cl->gen == gen)
        release_locked(cl, target);
    pthread_mutex_unlock(&cl->lock);
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
        if (st == CHAN__STATUS__RESERVED)
            release_locked(cl, r->id);
        for (size_t i = 0; i < ndv; i++)
            idlist_add(&cl->nacks, dv[i]->id);
        chan_waiter_t *w = chani_waiter_claim(rpc->settled) ? rpc->settled : NULL;
        pthread_mutex_unlock(&cl->lock);
        if (w)
            chani_waiter_wake(w);
        return;
    }
    if (rpc && rpc->multi && st == CHAN__STATUS__TIMEOUT) {
        chan_waiter_t *w = multi_pass(rpc->multi, 0);
        pthread_mutex_unlock(&cl->lock);
        if (w)
            chani_waiter_wake(w);
        return;
    }
    bool won = rpc && chani_waiter_claim(rpc->w);
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
    else if (atomic_load_explicit(&cl->handed, memory_order_relaxed))
        timeout = (int)cl->ack_delay;   /* the caller is about to queue them */
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
    pthread_cond_broadcast(&cl->drained);
    pthread_mutex_unlock(&cl->lock);
}

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
 * the SSL object of that connection if it is still the live one (see the
 * top of this file). */
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
            flush_nacks_locked(cl);
        pthread_mutex_unlock(&cl->lock);
    }
    return err;
}

static int pump(chan_client_t *cl, int fd, uint64_t gen)
{
    bool got;
    return pump_got(cl, fd, gen, &got);
}

static void *io_main(void *arg)
{
    chan_client_t *cl = arg;
    uint64_t gen = 0;
    for (;;) {
        /* Every turn, right before sleeping: send what is due and set the
         * timer for delayed acknowledgements (io_idle tells a caller that
         * queues one whether it must wake us).  Doing it only after reading
         * replies, as when this thread read them all, left a delayed ack
         * unsent forever once callers did the reading. */
        int timeout = flush_acks(cl, false);
        pthread_mutex_lock(&cl->lock);
        bool closing = cl->closing, dead = cl->dead, want_out = cl->olen > 0;
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
            int err = pump(cl, fd, gen);
            if (err) {
                reader_failed(cl, err, gen);
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
        int ready = chani_wait_fd(fd, POLLOUT, deadline);
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

/* Exchange Hellos on a fresh connection (through ssl, if not NULL),
 * before the I/O thread uses it. */
static int handshake(int fd, SSL *ssl, const char *user, const char *token, int64_t deadline,
                     struct hello_info *hi)
{
    Chan__Hello h = CHAN__HELLO__INIT;
    h.has_version = true;
    h.version = CHAN_PROTOCOL_VERSION;
    h.user = (char *)user;
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
        errno = EINVAL;   /* a token (and user name) over 2 KiB */
        return -1;
    }
    size_t n = chan_frame_encode_request(&rq, out), off = 0;
    while (off < n) {
        ssize_t w = chani_io_send(fd, ssl, out + off, n - off);
        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            int e = errno;
            chani_errmsg_set("sending the Hello: %s", strerror(e));
            /* TLS: the server may have said why before it closed (an alert
             * still readable after the reset): that is the reason */
            uint8_t why[512];
            if (ssl && chani_io_recv(fd, ssl, why, sizeof why) < 0 && errno == EPROTO)
                return -1;
            errno = e;
            return -1;
        } else if (chani_wait_fd(fd, POLLOUT, deadline) <= 0) {
            chani_errmsg_set("sending the Hello: timed out");
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
            else if (r->has_status && r->status != CHAN__STATUS__OK) {
                err = r->status == CHAN__STATUS__BAD_REQUEST ? EPROTO : chani_status_errno(r->status);
                if (r->message && *r->message)
                    chani_errmsg_set("%s", r->message);   /* "too many connections (...)" */
            } else if (r->result_case != CHAN__REPLY__RESULT_HELLO || !r->hello->limits)
                err = EPROTO;
            if (err == EPROTO && !(r && r->message && *r->message))
                chani_errmsg_set("the server's answer to Hello is not chand's");
            if (!err) {
                const Chan__Limits *l = r->hello->limits;
                hi->max_frame = l->has_max_frame ? l->max_frame : 1u << 20;
                hi->max_value = l->has_max_value ? l->max_value : hi->max_frame - 64;
                hi->max_batch = l->has_max_batch && l->max_batch ? l->max_batch : 1;
                hi->max_cases = l->has_max_cases ? l->max_cases : 64;
                hi->ack_wait_ms = l->has_ack_wait_ms ? l->ack_wait_ms : 0;
                snprintf(hi->server, sizeof hi->server, "%s",
                         r->hello->server ? r->hello->server : "?");
                hi->cluster = r->hello->role != NULL;
                snprintf(hi->group, sizeof hi->group, "%s",
                         r->hello->group ? r->hello->group : "");
                hi->not_primary = r->hello->role && strcmp(r->hello->role, "primary") != 0;
                snprintf(hi->primary, sizeof hi->primary, "%s",
                         r->hello->primary ? r->hello->primary : "");
            }
            chan_arena_free(&a);
            if (err) {
                errno = err;
                return -1;
            }
            /* anything after the Hello reply would be a reply to nothing */
            if (got != hdr + body || chani_io_pending(ssl)) {
                chani_errmsg_set("the server sent more than its Hello reply");
                errno = EPROTO;
                return -1;
            }
            return 0;
        }
        /* (TLS: a record may wait inside OpenSSL, unseen by poll) */
        if (!chani_io_pending(ssl) && chani_wait_fd(fd, POLLIN, deadline) <= 0) {
            chani_errmsg_set("no Hello reply: timed out");
            errno = ETIMEDOUT;
            return -1;
        }
        ssize_t r = chani_io_recv(fd, ssl, in + got, sizeof in - got);
        if (r == 0) {
            chani_errmsg_set("the server closed the connection before its Hello reply");
            errno = ECONNRESET;
            return -1;
        }
        if (r < 0 && errno != EAGAIN && errno != EINTR) {
            if (errno != EPROTO)   /* (a TLS error is described already) */
                chani_errmsg_set("no Hello reply: %s", strerror(errno));
            return -1;
        }
        if (r > 0)
            got += (size_t)r;
    }
}

/* The host of "host:port" or "[v6]:port", malloc()ed; NULL with EINVAL. */
static char *host_of(const char *addr)
{
    const char *b = addr, *e;
    if (*addr == '[') {
        b = addr + 1;
        e = strchr(b, ']');
    } else {
        e = strrchr(addr, ':');
    }
    if (!e || e == b || strncmp(addr, "unix:", 5) == 0) {
        errno = EINVAL;
        return NULL;
    }
    char *h = strndup(b, (size_t)(e - b));
    if (!h)
        errno = ENOMEM;
    return h;
}

/* One address (no scheme): connect, TLS if tls, Hello.  The socket, or
 * -1 with errno (and chan_errmsg() says why, when errno cannot). */
static int dial_one(chan_client_t *cl, const char *a, bool tls, int64_t deadline, SSL **sslp,
                    struct hello_info *hi)
{
    chani_errmsg_clear();   /* (what an earlier seed said is not about this one) */
    int fd = connect_fd(a, deadline);
    if (fd < 0) {
        int e = errno;
        if (e == EINVAL || e == ENOENT)
            chani_errmsg_set("%s", e == EINVAL ? "not HOST:PORT, [IPV6]:PORT or unix:/PATH"
                                               : "no such host");
        errno = e;
        return -1;
    }
    SSL *ssl = NULL;
    if (tls) {
        char *host = host_of(a);
        if (!host) {
            int e = errno;
            chani_errmsg_set("TLS needs HOST:PORT or [IPV6]:PORT");
            close(fd);
            errno = e;
            return -1;
        }
        ssl = chani_tls_connect(cl->tls, fd, host, deadline);
        int e = errno;
        free(host);
        if (!ssl) {
            close(fd);
            errno = e;
            return -1;
        }
    }
    if (handshake(fd, ssl, cl->user, cl->token, deadline, hi) < 0) {
        int e = errno;
        chani_tls_free_ssl(ssl);
        close(fd);
        errno = e;
        return -1;
    }
    *sslp = ssl;
    return fd;
}

/* Dial cl->addr - one address, or a cluster's seeds separated by commas - and
 * say Hello.  A cluster node that is not its group's primary names the
 * primary in its Hello reply: the dial goes there instead; while no primary
 * is elected (a failover), the seeds are tried again until the deadline.
 * An address with tls:// (every one, with chan_connect_opts()'s tls) speaks
 * TLS, and so does the primary it names.  The socket and *sslp (TLS, else
 * NULL), or -1 with errno. */
static int dial(chan_client_t *cl, int64_t deadline, SSL **sslp, struct hello_info *hi)
{
    const char *addrs = cl->addr;
    bool many = strchr(addrs, ',') != NULL;
    int err = ECONNREFUSED;
    *sslp = NULL;
    for (;;) {
        bool electing = false;
        const char *p = addrs;
        char target[256] = "";
        bool target_tls = false;
        int hops = 0;
        for (;;) {
            char a[256];
            bool tls = cl->tls_all;
            bool named = *target != 0;   /* a primary some node named */
            if (named) {
                snprintf(a, sizeof a, "%s", target);
                target[0] = 0;
                tls = tls || target_tls;
            } else {
                if (!*p)
                    break;
                size_t n = strcspn(p, ",");
                snprintf(a, sizeof a, "%.*s", (int)(n < sizeof a ? n : sizeof a - 1), p);
                p += n + (p[n] == ',');
                if (!n)
                    continue;
            }
            const char *hp = a;
            if (strncmp(a, "tls://", 6) == 0) {
                tls = true;
                hp = a + 6;
            }
            /* one stuck node (stopped, partitioned) must not use up the
             * whole deadline: each of several gets a second */
            int64_t until = deadline;
            if (many && (until < 0 || until > chan_now() + SEED_TIMEOUT_MS))
                until = chan_now() + SEED_TIMEOUT_MS;
            SSL *ssl = NULL;
            int fd = dial_one(cl, hp, tls, until, &ssl, hi);
            if (fd < 0) {
                err = errno;
                /* a primary that died is named until its lease runs out and
                 * another is elected: wait for that, as for an election */
                if (named)
                    electing = true;
                if (many) {
                    char why[256];
                    snprintf(why, sizeof why, "%s", *chan_errmsg() ? chan_errmsg() : strerror(err));
                    chani_errmsg_set("%s: %s", hp, why);
                }
                continue;
            }
            if (!hi->not_primary) {
                *sslp = ssl;
                return fd;
            }
            chani_tls_free_ssl(ssl);
            close(fd);
            err = ECONNREFUSED;
            chani_errmsg_set("%s is not its group's primary%s%s", hp,
                             *hi->primary ? ", which is " : ", and none is elected yet",
                             hi->primary);
            if (!*hi->primary)
                electing = true;
            if (*hi->primary && hops++ < 4) {
                snprintf(target, sizeof target, "%s", hi->primary);
                target_tls = tls;
            }
        }
        /* nodes that do not answer: say so at once; nodes that answer
         * while their group elects: wait for the election */
        if (!electing || (deadline >= 0 && chan_now() + 100 >= deadline))
            break;
        usleep(100000);
    }
    errno = err;
    return -1;
}

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

static void client_close(chan_client_t *cl);

/* The last reference closes the connection if chan_disconnect() did not
 * (a connection made by chan_open_ref() for its handle). */
void chani_client_unref(chan_client_t *cl)
{
    if (!cl || atomic_fetch_sub_explicit(&cl->refs, 1, memory_order_acq_rel) != 1)
        return;
    client_close(cl);
    client_free(cl);
}

/* An option, else the environment variable, else NULL ("" counts as unset). */
static const char *opt_env(const char *v, const char *env)
{
    if (!v || !*v)
        v = getenv(env);
    return v && *v ? v : NULL;
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
    struct hello_info hi;
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
        else if ((cl->fd = dial(cl, deadline, &cl->ssl, &hi)) < 0)
            err = errno;
        else if ((cl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
            err = errno;
    }
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
        wake_io(cl);
        pthread_join(cl->io, NULL);
        drain_out(cl);
    }
    fail_all(cl, ECONNRESET, cl->gen, false);   /* closes the socket */
}

void chan_disconnect(chan_client_t *cl)
{
    if (!cl)
        return;
    client_close(cl);
    chani_client_unref(cl);
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

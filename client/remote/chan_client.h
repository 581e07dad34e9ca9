/*
 * chan_client.h - one connection to chand, shared by every thread and
 * goroutine of the process (chan_client.c and its companions, listed in
 * chan_client_int.h), and the remote channel handle built on it
 * (chan_remote.c).
 *
 * A call is an rpc: the caller builds a Request, the client gives it an id,
 * registers it, writes the frame and parks the caller's waiter.  The reader
 * of the socket reads Reply frames, finds the rpc by id, claims its waiter
 * (one compare-and-swap: the reply may lose to a deadline or, in a select,
 * to another case), lets the rpc copy out what it needs, and wakes the
 * waiter.  Values in a reply whose rpc lost are given back to chand at once
 * (nack): nothing is lost.  They go back ahead of any later request of the
 * connection, and a caller that stops waiting for an answer that may carry
 * values waits for it to come (chani_client_cancel), so a channel's values
 * reach the caller's next requests in order.
 *
 * The reader: one party at a time holds the reader role (cl->reader) and is
 * the only one to read the socket or wait for it to be readable:
 *   - a plain thread waiting for its own reply, when nobody else reads: it
 *     reads the socket itself and dispatches every reply that comes until
 *     its own has (leader/follower; one wake-up per reply, as with hiredis);
 *   - a worker whose goroutine parks on a reply and that has nothing else
 *     to run: it waits on the socket instead of sleeping, and readies the
 *     goroutine on its own run queue (chani_sched_set_poll);
 *   - else the client's I/O thread, the fallback: whenever a reply is
 *     awaited (cl->outstanding) and the role is free, the one who lets go
 *     of the role, or writes a request it will not read the answer of,
 *     hands the role to it.
 * The I/O thread watches the socket for a hang-up (POLLRDHUP, which data
 * does not wake) while someone else reads, and flushes queued output.
 * Decoding always runs on a thread's own stack, never a goroutine's.
 *
 * Acknowledgements: a value is acknowledged once the application has it,
 * that is as the call that received it returns.  The ids wait for the next
 * request any thread of the process writes and ride on it - the receiver's
 * next receive, or the reply it sends - or go alone after CHAN_ACK_DELAY_MS
 * (1 by default): fewer frames for a receiver that goes on receiving, and
 * an unbuffered sender completes at most that long after the receiver has
 * its value, at once when the receiver calls again.  With 0 they go at once,
 * in a frame of their own.  A crash can only make chand redeliver values
 * the application had not been given, or had been given just before
 * (marked redelivered).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_CLIENT_H
#define CHAN_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "chan.pb-c.h"
#include "chan_frame.h"
#include "chan_handle.h"
#include "remote/chan_idmap.h"
#include "runtime/chan_wait.h"

typedef struct chan_rpc chan_rpc_t;
typedef struct chan_remote chan_remote_t;
struct chan_tls;     /* chan_tls.h */
struct ssl_st;       /* OpenSSL's SSL */

/* One select spanning several sources (chan_select_mixed.c): requests to
 * several daemons and local channels share one waiter.  A request that ends
 * without winning anything (its daemon answered TIMEOUT, or its connection
 * was lost) "passes"; when every request has passed and nothing else can
 * win (give_up_at_zero), the last pass ends the wait. */
typedef struct chan_multi {
    chan_waiter_t *w;
    atomic_int left;             /* requests not yet won, passed or failed */
    bool give_up_at_zero;
    atomic_int lost;             /* errno of a lost connection, or 0 */
} chan_multi_t;

typedef struct chan_idlist {
    uint64_t *v;
    size_t n, cap;
} chan_idlist_t;

enum { CHANI_LATE_NONE, CHANI_LATE_KEPT, CHANI_LATE_UNDONE };

struct chan_rpc {
    uint64_t id;                 /* set by chani_client_start */
    chan_waiter_t *w;            /* claimed and woken by the reply */
    int index;                   /* stored in w->index when the reply wins */
    /* Called on the I/O thread once the reply has won the waiter: copy out
     * what the caller needs (the reply's memory is gone afterwards).
     * Returns false if it could not take the values (they are nacked). */
    bool (*on_reply)(chan_rpc_t *rpc, const Chan__Reply *r);
    void *ctx;
    /* Delivery ids of the values taken, acknowledged when the call returns.
     * dlv NULL: room for one in dlv_one. */
    uint64_t *dlv;
    size_t dlv_cap, ndlv;
    uint64_t dlv_one;
    bool keep;                   /* chani_client_call leaves them unacknowledged:
                                    the caller acks or nacks them */
    uint64_t gen;                /* the connection the reply came on: delivery
                                    ids and reservations mean nothing on
                                    another (ids restart with each one) */
    uint64_t need_gen;           /* chani_client_start: fail with ESTALE rather
                                    than send on any other connection (a
                                    Commit of that connection's reservation) */
    chan_multi_t *multi;         /* part of a select across sources */
    chan_waiter_t *settled;      /* chani_client_cancel: woken once the
                                    reply (or the connection's end) is dealt
                                    with */
    bool wants_late;             /* chani_client_call settles it if its wait
                                    ends first: a late reply is kept */
    uint8_t late;                /* a reply that came after the caller's
                                    wait ended (lock): CHANI_LATE_KEPT, it
                                    handed nothing over and status and
                                    on_reply's results are its; or
                                    CHANI_LATE_UNDONE, its values were
                                    given back, its reservation released */
    /* The handles whose channels the request names: checked under the
     * lock as it goes out, so that it never reaches another channel of the
     * name (a temporary channel's handle once its connection is gone, a
     * handle that a redial found unusable: see chan_remote_t). */
    chan_remote_t *const *handles;
    size_t nhandles;
    bool handle_failed;          /* a handle was unusable (errno says why):
                                    nothing went out */
    /* Results */
    int err;                     /* 0: a reply came; else ECONNRESET etc. */
    Chan__Status status;
    char message[384];           /* chand's words (the reply's message) */
};

struct chan_client {
    _Atomic long refs;           /* the user's, plus one per channel handle */
    pthread_mutex_t lock;        /* everything below */
    pthread_cond_t drained;      /* output buffer shrank */
    int fd;                      /* -1 while disconnected */
    uint64_t gen;                /* connection number: 1, 2, ... */
    int wake_fd;                 /* eventfd: wakes the I/O thread */
    pthread_t io;
    bool io_started;
    bool dead;                   /* connection lost or closed */
    int dead_err;
    bool closing;                /* chan_disconnect called */
    bool reconnecting;           /* a caller is dialling */
    int64_t retry_at;            /* no dialling before (backoff) */
    int64_t backoff;             /* ms, doubles per failure up to a bound */
    char *addr;                  /* as given (chan_ref() writes it): one
                                    address, or a cluster's seeds */
    struct chan_tls *tls;        /* TLS settings each dial uses, if any
                                    address has tls:// (or tls_all) */
    bool tls_all;                /* chan_connect_opts()'s tls: every address */
    struct ssl_st *ssl;          /* the connection's TLS, or NULL; every call
                                    on it under lock (chan_client_int.h) */
    char *token;
    char *user;                  /* chand's --acl-file user, or NULL */
    uint64_t next_id;
    chan_idmap_t rpcs;
    uint8_t *obuf;               /* bytes not yet written */
    size_t olen, ocap;
    bool odeferred;              /* obuf's bytes wait for the loops of the
                                    workers whose goroutines put them off,
                                    not for the I/O thread (chan_call.c) */
    int64_t odeferred_at;        /* chan_now() when the last such wait began */
    bool io_watch;               /* the I/O thread looks at put-off bytes
                                    within CHANI_DEFER_GRACE_MS */
    chan_idlist_t acks, nacks;   /* delivery ids to report to chand */
    int64_t ack_oldest;          /* chan_now() when acks was last empty */
    int64_t ack_delay;           /* CHAN_ACK_DELAY_MS, at most a tenth of
                                    the daemon's ack_wait_ms */
    int64_t ack_delay_wanted;    /* CHAN_ACK_DELAY_MS as given */
    atomic_bool handed;          /* values handed since the last ack flush
                                    (set by the reader without the lock) */
    bool io_idle;                /* the I/O thread sleeps with no timer: an
                                    ack queued now must wake it */
    /* Who reads replies (see above); under lock. */
    int reader;                  /* RD_FREE, RD_IO or RD_CALLER */
    uint64_t reader_gen;         /* the connection the role is for */
    int reader_fd;               /* and its socket */
    uint64_t outstanding;        /* requests written on this connection
                                    whose replies have not been read */
    int zombie_fd;               /* a failed connection's socket that a
                                    reader may still wait on: closed when
                                    it lets go (never under its feet) */
    bool io_hup;                 /* the I/O thread saw a hang-up while
                                    someone else read: hand it the role */
    /* The reader's buffer and decoding arena: only the role's holder
     * touches them, so a frame split across reads survives a change of
     * reader. */
    uint8_t *rbuf;
    size_t rcap, rlen;
    uint64_t rgen;               /* the connection rbuf's bytes came from */
    chan_arena_t arena;
    /* The server's limits, from its Hello: each connection sets them under
     * the lock, while callers on other threads size their requests by them
     * without it; atomic for that (read them with the functions below).
     * A request sized by an old connection's limits is at worst refused by
     * the new one (EMSGSIZE); a caller that sizes a buffer by a limit
     * reads it once. */
    _Atomic uint64_t max_frame, max_value;
    _Atomic uint32_t max_batch, max_cases;
    char server[64];             /* under lock */
    /* The live remote handles of this client, by serial number (1, 2,
     * ...: registration order), under lock: a redial opens them all again
     * (chan_reopen.c). */
    chan_idmap_t handles;
    uint64_t handle_serial;      /* the last one given */
    /* A cluster (chan_route.c): the node answered Hello with a role.  The
     * application's client routes each channel to its group's primary, on
     * a connection per group (its own connection serves the rest); those
     * connections are `direct`: they route nothing themselves. */
    atomic_bool cluster;
    char group[104];             /* the group of the primary it is connected
                                    to (under lock): its channels go on this
                                    connection itself */
    bool direct;
    struct chani_route *route;   /* made at the first routed call */
};

static inline uint64_t chani_client_max_frame(chan_client_t *cl)
{
    return atomic_load_explicit(&cl->max_frame, memory_order_relaxed);
}

static inline uint64_t chani_client_max_value(chan_client_t *cl)
{
    return atomic_load_explicit(&cl->max_value, memory_order_relaxed);
}

static inline uint32_t chani_client_max_batch(chan_client_t *cl)
{
    return atomic_load_explicit(&cl->max_batch, memory_order_relaxed);
}

/* Start an rpc: id, register, write.  0, or -1 with errno (ECONNRESET,
 * EMSGSIZE if the frame is over the server's limit, ENOMEM). */
int chani_client_start(chan_client_t *cl, Chan__Request *rq, chan_rpc_t *rpc);
/* Stop waiting for rpc (its waiter was claimed elsewhere): forget it and ask
 * chand to cancel it.  A reply that still comes is discarded: its values
 * are given back (nack), its reservation released. */
void chani_client_abandon(chan_client_t *cl, chan_rpc_t *rpc);
/* Cancel rpc, whose waiter was claimed elsewhere, and wait until chand's
 * answer to it has been dealt with: its values given back, its reservation
 * released, before the caller's next request.  That keeps a channel's order
 * for a caller that goes on receiving from it (a select that lost there).
 * If chand answers neither the request nor the cancel within the grace
 * (chani_grace), the connection is stuck: it is hung up, so that chand
 * takes back what it handed out (marked redelivered) rather than have it
 * given back behind values taken later. */
void chani_client_cancel(chan_client_t *cl, chan_rpc_t *rpc);
/* start + park until the reply or the local deadline, then queue the
 * acknowledgements of the values taken.  0 with rpc->status set, or -1 with
 * errno.  A Recv, Select, Commit, Send, Close or Delete with no reply by
 * the local deadline is cancelled as by chani_client_cancel, and the call
 * returns once its late answer has been dealt with: an answer that handed
 * nothing over is the call's result (CANCELED read as TIMEOUT: the
 * caller's deadline passed); one that handed values over has them given
 * back, ETIMEDOUT.  With no answer at all (the connection was hung up),
 * ETIMEDOUT if nothing can have happened, ECONNRESET if the request may
 * have taken effect (a send, a close, a delete, a commit, a select with a
 * send case): the caller cannot know.  Any other request is abandoned,
 * ETIMEDOUT. */
int chani_client_call(chan_client_t *cl, Chan__Request *rq, chan_rpc_t *rpc, int64_t local);
/* The local deadline of a request that carries `deadline` to chand: a little
 * later, so that chand's own TIMEOUT answer (which may carry values taken
 * just in time) normally arrives first. */
int64_t chani_grace(int64_t deadline);

void chani_client_unref(chan_client_t *cl);

/* Send a request whose answer nobody waits for (it is dropped), on
 * connection gen only (0: whichever is up; a name that lived on gen alone
 * must not reach a channel of the same name on the next). */
void chani_client_oneway(chan_client_t *cl, uint64_t gen, Chan__Request *rq);

/* The application has these values, delivered on connection gen (an
 * rpc's gen): acknowledge them (soon).  Nothing if that connection is gone:
 * chand has taken them back. */
void chani_client_ack(chan_client_t *cl, uint64_t gen, const uint64_t *ids, size_t n);
/* Give these values back at once (they return to the heads of their
 * channels before any later request of this client is seen); as above for
 * gen. */
void chani_client_nack(chan_client_t *cl, uint64_t gen, const uint64_t *ids, size_t n);
/* Release the reservation of request target, made on connection gen. */
void chani_client_release(chan_client_t *cl, uint64_t gen, uint64_t target);

/* Map a reply status to an errno (0 for OK). */
int chani_status_errno(Chan__Status st);

/* A call that chand answered with a status other than OK: set errno from
 * the status and this thread's chan_errmsg() to chand's message (if it
 * sent one).  Only on the caller's thread, after the call.  Returns -1. */
int chani_rpc_fail(const chan_rpc_t *rpc);

/* The relative timeout a request carries for an absolute deadline. */
static inline void chani_set_timeout(protobuf_c_boolean *has, int64_t *ms, int64_t deadline)
{
    if (deadline < 0) {
        *has = false;
        return;
    }
    int64_t left = deadline - chan_now();
    *has = true;
    *ms = left > 0 ? left : 0;
}

/* The remote channel handle.  It names its channel: after a redial the
 * same name must mean the same channel, which chan_reopen.c sees to. */
struct chan_remote {
    struct chan hdr;
    /* The connection its requests go on: in a cluster, its group's (a move
     * of its slot changes it: chan_route.c), so read it once per call. */
    chan_client_t *_Atomic cl;
    /* The application's client it was opened with (its ref names that
     * client's address); a reference is held.  routed: in a cluster, a
     * named channel that follows its slot. */
    chan_client_t *top;
    bool routed;
    uint64_t cap;                /* as chand reported it */
    bool temp;                   /* chand reported a temporary channel */
    bool owned;                  /* made by chan_open_temp on this client */
    size_t name_len;
    char name[CHAN_NAME_MAX + 1];
    /* How it was opened, to open it again the same way after a redial. */
    long want_cap;               /* the capacity asked for, or CHAN_CAP_ANY */
    bool no_create;              /* CHAN_NOCREATE */
    /* Under cl->lock: */
    uint64_t serial;             /* its key in cl->handles */
    uint64_t gen;                /* the connection it was opened on: an owned
                                    temporary channel dies with it */
    int err;                     /* set by a redial that found the name taken
                                    by another channel (EEXIST, or ENOENT for
                                    a temporary one): every call fails so */
};

/* Register a handle opened on connection gen, for redials to open again
 * (chan_reopen.c).  0, or -1 with ESTALE (a redial came between the Open's
 * reply and this, and did not open the handle: open it again) or ENOMEM. */
int chani_client_track(chan_client_t *cl, chan_remote_t *r, uint64_t gen);
/* Forget a handle that is being freed. */
void chani_client_untrack(chan_client_t *cl, chan_remote_t *r);
/* Why the handles cannot be used now (errno), or 0.  Under cl->lock. */
int chani_client_handles_err_locked(chan_client_t *cl, chan_remote_t *const *hs, size_t n);
/* The same, taking the lock. */
int chani_client_handles_err(chan_client_t *cl, chan_remote_t *const *hs, size_t n);
/* Open every registered handle again on a fresh connection fd (Hello done,
 * not yet in use), in one pipelined round trip, before it carries anything
 * else; note in each handle what chand answered.  Called with cl->lock held
 * and returns with it held; released meanwhile.  0, or -1 with errno (the
 * connection is unusable). */
int chani_reopen_locked(chan_client_t *cl, int fd, struct ssl_st *ssl, uint64_t max_frame);

/* A connection to addr for a handle of another daemon (chan_open_ref),
 * with cl's TLS files if cl has any (the name checked is addr's host). */
chan_client_t *chani_client_connect_like(chan_client_t *cl, const char *addr, int64_t deadline);

/* chani_wait_fd - poll fd for events until deadline (chan_now() ms, -1:
 * none): 1 ready, 0 timed out, -1 error. */
int chani_wait_fd(int fd, short events, int64_t deadline);

#endif /* CHAN_CLIENT_H */

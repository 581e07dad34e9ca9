/*
 * chan_client_int.h - what the files of the client connection share among
 * themselves, and the rules they keep together.  The rest of libchan sees
 * the client through chan_client.h only.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 *
 * The files (the idea is in chan_client.h):
 *   chan_client.c    the client object: connecting, losing the connection,
 *                    closing, ping
 *   chan_call.c      a call: start (id, register, write), wait, cancel; the
 *                    frames that go with calls (acks, nacks, releases)
 *   chan_dial.c      making one connection: dial (seeds, TLS, following a
 *                    cluster's primary) and the Hello
 *   chan_redial.c    a lost connection replaced by a fresh one
 *   chan_reader.c    the reader role: who reads the socket, reading frames,
 *                    handing each reply to its call
 *   chan_iothread.c  the client's I/O thread
 *
 * Threads:
 *   - Callers (any thread or goroutine) pack their request, register it and
 *     write it themselves: a call costs no thread switch on the way out.  The
 *     socket is non-blocking; what the kernel does not take waits in `obuf`
 *     for the I/O thread to flush.
 *   - Replies are read by whoever holds the reader role (chan_client.h): a
 *     calling thread waiting for its own reply, a worker whose goroutine
 *     waits for one, or the I/O thread.  Were the I/O thread to read every
 *     reply and wake its waiter, each reply would cost two wake-ups
 *     (measured: 12 context switches per round trip against hiredis's 4).
 *     Decoding happens on a thread's own stack, never on a small goroutine
 *     stack.
 *   - One I/O thread per client flushes queued output, notices a hang-up,
 *     sends delayed acknowledgements, and reads when nobody else does.
 *   - A goroutine's request waits in `obuf` for its worker's scheduler loop
 *     (chan_call.c), so that the requests of every goroutine the worker runs
 *     meanwhile leave in one write.  Such bytes (cl->odeferred) are no one
 *     else's to write: the I/O thread is not polling for them.  So a writer
 *     whose frame is not put off with them (a plain thread, the I/O thread,
 *     a worker's loop reading replies, a frame too big to wait) and finds
 *     them ahead of its frame writes them too, at once, rather than leave
 *     its frame behind them;
 *     and since a worker's thread may block (a goroutine in a system call,
 *     a dial) before it gets to its loop, the I/O thread writes them itself
 *     once they have waited CHANI_DEFER_GRACE_MS.
 *
 * Lock order: cl->lock is the only lock here; a waiter is woken only after
 * it is released.  The role's holder reads without the lock.
 *
 * TLS (tls://, chan_tls.c): an SSL object must not see SSL_read() and
 * SSL_write() from two threads at once (both change its state: sequence
 * numbers, buffers, alerts), and here writers and the reader are different
 * threads by design.  So every call on cl->ssl is made under cl->lock:
 * writers hold it already (chan_call.c's write_locked, chan_iothread.c's
 * flush_out, chan_client.c's drain_out), and the role's holder takes it
 * around each SSL_read() only (chan_reader.c's conn_recv), never while it
 * decodes or dispatches.  That costs the reader one uncontended lock per
 * read of up to a record, and keeps the reader role as it is.  The reader
 * also checks, under the lock, that the connection it reads is still the
 * live one: chani_client_fail_all frees the SSL object under the lock, so a
 * reader woken from poll() on a failed connection finds it gone instead of
 * using freed memory.  A record holds at most 16 KiB, so one SSL_read()
 * does not empty the socket as one recv() may: a TLS reader reads until
 * OpenSSL says it wants more (nothing is left inside it unseen by poll).
 */
#ifndef CHAN_CLIENT_INT_H
#define CHAN_CLIENT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "remote/chan_client.h"
#include "remote/chan_tls.h"

/* The longest a goroutine's request waits in obuf for its worker's loop
 * before the I/O thread writes it (see Threads above): a bound for a worker
 * whose thread blocks, far above a loop pass (microseconds).  While
 * goroutines put requests off, the I/O thread wakes this often. */
#define CHANI_DEFER_GRACE_MS 2

/* Who holds the reader role (cl->reader). */
enum { RD_FREE, RD_IO, RD_CALLER };

/* What a server says about itself in its Hello reply. */
struct chani_hello {
    uint64_t max_frame, max_value;
    uint32_t max_batch, max_cases;
    uint64_t ack_wait_ms;
    char server[64];
    bool cluster;              /* a cluster node (its Hello has a role) */
    char group[104];           /* ... and its group */
    bool not_primary;          /* a cluster node that is not its group's primary */
    char primary[128];         /* ... and where the primary is ("": none yet) */
};

/* Wake the I/O thread (it polls again: for output, a new socket, a timer). */
static inline void chani_wake_io(chan_client_t *cl)
{
    uint64_t one = 1;
    (void)!write(cl->wake_fd, &one, sizeof one);
}

/* Append id to l; -1 if memory ran out (the id is dropped). */
static inline int chani_idlist_add(chan_idlist_t *l, uint64_t id)
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

/* ---- chan_client.c ---- */

/* Connection number gen is gone: close it and fail every call in flight
 * with err.  The next call dials again.  `reading`: the caller holds the
 * reader role (or no one can: the I/O thread has stopped). */
void chani_client_fail_all(chan_client_t *cl, int err, uint64_t gen, bool reading);

/* ---- chan_call.c ---- */

/* Send a request nobody waits on (cancel, acknowledgements); lock held.
 * True if it went out (or is queued). */
bool chani_send_locked(chan_client_t *cl, Chan__Request *rq);
/* Give back a reservation nobody will commit (lock held). */
void chani_release_locked(chan_client_t *cl, uint64_t target);
/* Send acknowledgements and ids given back (either list may be NULL) in
 * frames with no operation, as many as the server's max_frame needs (lock
 * held).  Each list keeps what could not go (out of memory, or the
 * connection failed) and is empty after a true return. */
bool chani_send_ids_locked(chan_client_t *cl, chan_idlist_t *acks, chan_idlist_t *nacks);
/* Send the values given back, alone, now (lock held). */
void chani_flush_nacks_locked(chan_client_t *cl);

/* ---- chan_dial.c ---- */

/* Dial cl->addr (one address, or a cluster's seeds) and say Hello.  The
 * socket and *sslp (TLS, else NULL), or -1 with errno. */
int chani_dial(chan_client_t *cl, int64_t deadline, SSL **sslp, struct chani_hello *hi);
/* Take on what the server said in its Hello (lock held, or before the I/O
 * thread starts). */
void chani_apply_hello(chan_client_t *cl, const struct chani_hello *hi);

/* ---- chan_redial.c ---- */

/* The connection is gone: dial again, unless a dial failed less than the
 * backoff ago.  Called and returns with cl->lock held; released while
 * dialling.  0, or -1 with errno ECONNRESET. */
int chani_redial_locked(chan_client_t *cl);

/* ---- chan_reader.c ---- */

/* A request that chand will answer went out (lock held).  Someone must read
 * the answer: if nobody holds the role and the writer will not take it,
 * the I/O thread does. */
void chani_expect_reply_locked(chan_client_t *cl, bool writer_reads);
/* Take the role for a caller (lock held); true if it did.  The holder
 * keeps a reference: the client outlives its reading. */
bool chani_role_take_locked(chan_client_t *cl);
/* A plain thread that took the role reads replies until w is woken or the
 * deadline passes, then lets the role go. */
void chani_reader_lead(chan_client_t *cl, chan_waiter_t *w, int64_t deadline);
/* A goroutine took the role: its worker reads for it when it has nothing
 * else to run, and lets the role go when the goroutine runs again. */
void chani_reader_hand_to_worker(chan_client_t *cl);
/* The role's holder reads what the socket of connection gen has and handles
 * every whole frame.  0, or an errno that ends the connection. */
int chani_reader_pump(chan_client_t *cl, int fd, uint64_t gen);
/* The connection the reader reads ended with err: fail everything in flight
 * on it. */
void chani_reader_failed(chan_client_t *cl, int err, uint64_t gen);
/* A request of a select across sources ends without winning (lock held).
 * Returns the waiter to wake if it was the last one and nothing else can
 * win; the caller wakes it after unlocking and touches neither the rpc nor
 * the multi afterwards. */
chan_waiter_t *chani_multi_pass(chan_multi_t *m, int err);

/* ---- chan_iothread.c ---- */

/* Start the client's I/O thread: 0 or an errno. */
int chani_io_start(chan_client_t *cl);
/* Stop it (cl->closing is set) and wait for it to end. */
void chani_io_stop(chan_client_t *cl);

#endif /* CHAN_CLIENT_INT_H */

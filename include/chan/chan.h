/*
 * chan.h - Go-style concurrency for C: goroutines, channels, select, timers,
 * and the same channels living in a chand daemon, reachable from any process.
 *
 * This header is libchan's documentation.  Conventions that hold everywhere:
 *
 *   Errors     Functions that can fail return -1 (or NULL) and set errno.
 *              Nothing aborts on bad input.  The errno values used are:
 *                EPIPE       the channel is closed
 *                ETIMEDOUT   the deadline passed (for deadline 0: "not ready")
 *                ECANCELED   the operation was cancelled
 *                EMSGSIZE    a value is larger than the buffer or the limit;
 *                            the value stays in the channel
 *                ECONNRESET  the connection to chand was lost
 *                ENOENT      no such remote channel (also: a temporary
 *                            channel whose connection was lost)
 *                EEXIST      the remote channel exists with another capacity
 *                            (also: found so when the client reconnected)
 *                EINVAL      a bad argument (bad name, NULL channel, ...)
 *                EACCES      chand refused the auth token (or user and
 *                            secret); or, for a call on a channel, the
 *                            user may not do that there (chand's
 *                            --acl-file; the connection stays)
 *                EBUSY       chand hit a limit (connections, channels, ...),
 *                            or its disk is full (a send to a buffered
 *                            channel of a chand --data-dir)
 *                ESHUTDOWN   chand is shutting down
 *                EPROTO      chand sent something this library cannot read,
 *                            or a TLS handshake failed (chan_errmsg() says
 *                            why)
 *                ENOMEM      out of memory
 *              chan_errmsg() words the failure when chand said why (or
 *              the library can add what errno cannot: sizes, names).
 *
 *   Deadlines  Every call that can block takes an absolute deadline in
 *              milliseconds on the monotonic clock of chan_now():
 *              chan_now() + 250 means "give up in 250 ms", -1 means wait
 *              forever and 0 means "do not block" (Go's select default).
 *
 *   Values     A channel carries byte strings of 0 bytes or more.  Sending
 *              copies the bytes: the caller keeps its buffer.  Receiving
 *              either copies into the caller's buffer (chan_recv) or hands
 *              over a malloc()ed buffer the caller must free()
 *              (chan_recv_alloc).  A value too large for the caller's buffer
 *              is never truncated and never lost: the call fails with
 *              EMSGSIZE and the value stays at the head of the channel.
 *
 *   Callers    Any thread may call any function here.  Called from a
 *              goroutine, a blocking call parks only that goroutine and its
 *              worker thread runs others; called from an ordinary thread
 *              (main, or one made with pthread_create), it blocks the thread.
 *
 *   Handles    chan_t handles are reference counted: every function that
 *              returns a chan_t * returns a reference the caller owns and
 *              must drop with chan_release().  chan_retain() adds one, e.g.
 *              before handing a channel to a goroutine that releases it.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_CHAN_H
#define CHAN_CHAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CHAN_VERSION "0.1.0"

/* CHAN_API marks the functions libchan.so exports.  The library is built
 * with -fvisibility=hidden, so its internals (and the protocol code it
 * carries) stay out of the applications' symbol namespace. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define CHAN_API __attribute__((visibility("default")))
#else
#define CHAN_API
#endif

/* ------------------------------------------------------------------------
 * Error messages
 * ------------------------------------------------------------------------ */

/* chan_errmsg - what went wrong in this thread's last failed call, in words.
 *
 * When chand refuses a request it says why, and a call failing on that
 * answer keeps chand's message here: "no such channel 'jobs'", "too many
 * channels (--max-channels 10)", "channel 'jobs' exists with capacity 4,
 * not 8", "too many connections (--max-conns 100)".  A few failures the
 * library finds itself have a message of its own: a value over chand's
 * size limit ("value of 2000000 bytes over chand's limit of 1048064
 * bytes"), a bad channel name.  Otherwise (a closed channel, a deadline,
 * a lost connection, ...) there is nothing to add to errno, and the
 * message is empty.
 *
 * Lifetime: every libchan function that can fail clears the message as it
 * starts, so read it right after the call that failed, as errno.  The
 * string belongs to the calling thread and stays valid and unchanged until
 * that thread's next libchan call.  A goroutine owns it the same way until
 * its own next libchan call: no other goroutine of its worker runs before.
 *
 * Returns the message, never NULL: the empty string when there is none.
 * The words are for people and may change between versions; programs
 * decide on errno.  Never fails, and does not clear the message. */
CHAN_API const char *chan_errmsg(void);

/* ------------------------------------------------------------------------
 * Time
 * ------------------------------------------------------------------------ */

/* chan_now - the monotonic clock in milliseconds.
 * The origin is arbitrary (boot time); only differences and deadlines built
 * from it (chan_now() + ms) mean anything.  Never fails. */
CHAN_API int64_t chan_now(void);

/* ------------------------------------------------------------------------
 * Goroutines
 *
 * A goroutine is a stackful coroutine run by a pool of worker threads
 * (one per core by default; the CHAN_PROCS environment variable overrides,
 * like GOMAXPROCS).  The runtime starts on first use.  Goroutines switch
 * only at channel operations, chan_sleep(), chan_yield() and remote calls:
 * a goroutine that makes a blocking system call (read(2), sleep(3), ...)
 * blocks its worker thread until the call returns; other workers go on,
 * and the remote requests of the goroutines parked on it still reach chand.
 * A goroutine stays on the worker thread it started on.
 *
 * Stacks are mmap()ed with a guard page below them and reused.  Their size
 * is CHAN_STACK bytes from the environment (default 64 KiB; a k, m or g
 * suffix is accepted; at least 16 KiB), or per call with chan_go_stack().
 * Running off the end of a stack prints "goroutine stack overflow" and
 * aborts the process instead of corrupting memory.  A frame larger than the
 * guard can jump over it: keep big arrays off goroutine stacks, or give
 * those goroutines big stacks.  Only the pages a goroutine touches use
 * memory.
 *
 * Each goroutine keeps its own errno across the switches it makes, and
 * starts with the floating-point environment (rounding mode, exception
 * masks) of the thread or goroutine that started it, as a thread made with
 * pthread_create() does; the environment is saved and restored at every
 * switch.  Worker threads block the application's asynchronous signals;
 * faults (SIGSEGV, SIGBUS, SIGFPE, ...) are delivered as usual.
 *
 * Where a goroutine runs: a goroutine started from a goroutine is queued on
 * the same worker (so goroutines that talk to each other share a thread and
 * hand values over without waking another one) unless that worker is
 * clearly busier than another; a goroutine started from a plain thread goes
 * to the least busy worker.  An idle worker steals goroutines that have not
 * started yet from a worker that has stopped switching (one goroutine is
 * holding it).  Once started, a goroutine never moves.
 * ------------------------------------------------------------------------ */

/* chan_go - start fn(arg) as a goroutine; it ends when fn returns.  arg
 * belongs to the caller and must stay valid as long as fn uses it.  The
 * first call starts the runtime.  A goroutine that starts many goroutines
 * in a row may let one of them run first (chan_go is then a switch point),
 * which keeps the backlog of not yet started goroutines bounded.
 * Returns 0, or -1 with errno EINVAL (fn is NULL), ENOMEM (no memory for a
 * stack) or EAGAIN (the runtime could not start its worker threads). */
CHAN_API int chan_go(void (*fn)(void *arg), void *arg);

/* chan_go_stack - chan_go() with a stack of at least stack_size bytes
 * (rounded up to whole pages; 0 means the default).  EINVAL if stack_size
 * is below 16 KiB, or as chan_go().  Stacks of the default size are reused;
 * others are unmapped when their goroutine ends. */
CHAN_API int chan_go_stack(void (*fn)(void *arg), void *arg, size_t stack_size);

/* chan_yield - let the other goroutines of this worker run, then go on.
 * From an ordinary thread it is sched_yield().  A goroutine that computes
 * for long without a channel operation should call it now and then: the
 * scheduler never preempts. */
CHAN_API void chan_yield(void);

/* chan_sleep - sleep until the deadline; a goroutine parks (its worker runs
 * others), a thread sleeps.  -1 sleeps forever.  A deadline already past
 * yields (chan_yield()) and returns.  Always returns 0. */
CHAN_API int chan_sleep(int64_t deadline);

/* chan_procs - the number of worker threads (starts the runtime), or -1
 * with EAGAIN if it could not be started. */
CHAN_API int chan_procs(void);

/* Wait groups: Go's sync.WaitGroup.  Add before starting the goroutines,
 * each calls chan_wg_done() when finished, and chan_wg_wait() returns when
 * the count is back to zero. */
typedef struct chan_wg chan_wg_t;

/* chan_wg_make - a new wait group with count 0, or NULL (ENOMEM).  Free it
 * with chan_wg_free(). */
CHAN_API chan_wg_t *chan_wg_make(void);
/* chan_wg_add - add n (may be negative) to the count; reaching zero wakes
 * every waiter.  0, or -1 with EINVAL if wg is NULL or the count would go
 * below zero or overflow (the count is left unchanged). */
CHAN_API int chan_wg_add(chan_wg_t *wg, long n);
/* chan_wg_done - chan_wg_add(wg, -1). */
CHAN_API int chan_wg_done(chan_wg_t *wg);
/* chan_wg_wait - block until the count is zero (at once if it is).
 * 0, or -1 with ETIMEDOUT (deadline; 0 means "do not wait") or EINVAL. */
CHAN_API int chan_wg_wait(chan_wg_t *wg, int64_t deadline);
/* chan_wg_free - free a wait group nobody uses any more (a waiter that has
 * returned from chan_wg_wait no longer uses it).  NULL is ignored. */
CHAN_API void chan_wg_free(chan_wg_t *wg);

/* ------------------------------------------------------------------------
 * Channels
 *
 * Go's rules, for local and remote channels alike:
 *
 *   operation  open, unbuffered      open, buffered (cap n)     closed
 *   send       blocks until a        blocks while n values      fails at once with EPIPE; a
 *              receiver takes it     are queued                 sender blocked at close fails too
 *   recv       blocks until a        blocks while empty         returns queued values first,
 *              sender offers one                                then EPIPE at once, forever
 *   close      wakes every blocked receiver and sender          EPIPE: closing twice is an error
 *
 * Values leave in the order they entered; blocked senders and receivers
 * are served first come, first served.
 *
 * A handle must stay referenced (chan_retain) while any call on it runs,
 * in any thread or goroutine: the last chan_release() frees a local
 * channel at once.  Values are copied: small ones (up to 16 bytes) live
 * inside the channel, larger ones in one malloc()ed copy that a receiver
 * using chan_recv_alloc() takes over without another copy.
 * ------------------------------------------------------------------------ */

/* A channel handle, local or remote. */
typedef struct chan chan_t;

/* chan_make - a new local channel holding up to cap values (0: unbuffered,
 * a rendezvous).  Memory for cap slots of 24 bytes is allocated at once.
 * Returns a handle the caller owns, or NULL with ENOMEM. */
CHAN_API chan_t *chan_make(size_t cap);

/* chan_send - send len bytes from val (copied; val may be NULL if len is 0).
 * Blocks as the table above says, until the deadline.  A blocked receiver
 * whose buffer is too small for the value fails with EMSGSIZE and the value
 * goes to the next receiver (or waits).
 * Returns 0, or -1 with EPIPE (closed, or closed while blocked), ETIMEDOUT,
 * EMSGSIZE (over the daemon's value limit), EINVAL, ENOMEM, ECONNRESET, and
 * for a remote channel ENOENT (it does not exist: deleted, gone with a
 * restart of chand and opened with CHAN_NOCREATE, or a temporary channel
 * whose connection was lost) or EEXIST (the name holds a channel of another
 * capacity since the client reconnected); see "Losing the connection" at
 * chan_connect(). */
CHAN_API int chan_send(chan_t *ch, const void *val, size_t len, int64_t deadline);

/* chan_recv - receive one value into buf (size bytes; buf may be NULL if
 * size is 0).  Returns the value's length (0 is a valid, empty value), or
 * -1 with EPIPE (closed and drained), ETIMEDOUT, EMSGSIZE (the value at the
 * head is longer than size: it stays there, untouched; a blocked call fails
 * the same way when a sender offers it such a value), EINVAL, ECONNRESET,
 * and for a remote channel ENOENT or EEXIST as chan_send(). */
CHAN_API ssize_t chan_recv(chan_t *ch, void *buf, size_t size, int64_t deadline);

/* chan_recv_alloc - receive one value of any size into a new malloc()ed
 * buffer stored in *val (never NULL on success, even for an empty value;
 * the caller frees it; *val is NULL on failure).  Returns the length, or -1
 * as chan_recv(), or with ENOMEM (the value stays in the channel). */
CHAN_API ssize_t chan_recv_alloc(chan_t *ch, void **val, int64_t deadline);

/* A value as a (pointer, length) pair, for the batch calls. */
typedef struct chan_val {
    void *data;
    size_t len;
    /* chan_recv_many: how many times this value went back to its remote
     * channel unacknowledged (a receiver's connection died with it) before
     * this delivery: non-zero means another receiver may have seen it.
     * Always 0 for local channels.  Ignored by chan_send_many. */
    uint32_t redelivered;
} chan_val_t;

/* chan_send_many - send n values in order, as n chan_send() calls would,
 * but in one request to chand for a remote channel.
 * Returns the number of values sent: n, or fewer if the deadline passed or
 * the channel was closed part way (call again to learn why); -1 with errno
 * as chan_send() if none was sent. */
CHAN_API ssize_t chan_send_many(chan_t *ch, const chan_val_t *vals, size_t n, int64_t deadline);

/* chan_recv_many - receive at least one and at most max values: it blocks
 * until one is available, then takes whatever else is available at once.
 * Each vals[i].data is a malloc()ed buffer the caller frees.
 * Returns the count (an error after the first value ends the batch early;
 * the next call reports it), or -1 with errno as chan_recv_alloc() or
 * EINVAL (vals NULL or max 0). */
CHAN_API ssize_t chan_recv_many(chan_t *ch, chan_val_t *vals, size_t max, int64_t deadline);

/* chan_close - close the channel (Go's close).  Blocked receivers get
 * EPIPE once the queued values are gone, blocked senders get EPIPE and
 * their values are dropped; so do blocked select cases on the channel.
 * Returns 0, or -1 with EPIPE if it was already closed (for a remote
 * channel also ECONNRESET, ENOENT, EEXIST as chan_send()).  Does not release
 * the handle. */
CHAN_API int chan_close(chan_t *ch);

/* chan_retain - add a reference to ch; returns ch. */
CHAN_API chan_t *chan_retain(chan_t *ch);

/* chan_release - drop a reference; the last one frees the handle (for a
 * local channel: the channel and any values still queued).  A remote
 * channel lives on in chand.  NULL is ignored. */
CHAN_API void chan_release(chan_t *ch);

/* chan_len, chan_cap - the number of queued values and the capacity of a
 * channel, as Go's len() and cap().  For a remote channel chan_cap() is the
 * capacity chand reported when it was opened, and chan_len() asks chand (a
 * round trip, at most 5 s; -1 with ETIMEDOUT, ECONNRESET, ENOENT, EEXIST as
 * chan_send()). */
CHAN_API ssize_t chan_len(chan_t *ch);
CHAN_API ssize_t chan_cap(chan_t *ch);

/* ------------------------------------------------------------------------
 * Select
 * ------------------------------------------------------------------------ */

enum chan_op {
    CHAN_SEND = 1,
    CHAN_RECV = 2,
};

/* One case of a select.  Fill in ch, op, buf and len (the CHAN_CASE_*
 * macros do); the select fills in the results of the case it chooses. */
typedef struct chan_case {
    chan_t *ch;     /* NULL: the case is never ready (Go's nil channel) */
    int op;         /* CHAN_SEND or CHAN_RECV */
    void *buf;      /* send: the value (not modified);
                       recv: where to copy the value, or NULL to allocate */
    size_t len;     /* send: the value's length; recv: the size of buf */
    /* Results, set for the chosen case only: */
    int err;        /* 0, or EPIPE (closed: a recv got no value, a send
                       failed), or EMSGSIZE (recv: value longer than len,
                       left in the channel) */
    size_t n;       /* recv: the value's length */
    void *val;      /* recv with buf == NULL: the malloc()ed value, the
                       caller frees it */
    uint32_t redelivered;   /* recv: as chan_val_t's: how many times the
                               value went back to its remote channel
                               unacknowledged before; 0 for local ones */
} chan_case_t;

#define CHAN_CASE_SEND(c, v, l) \
    ((chan_case_t){ .ch = (c), .op = CHAN_SEND, .buf = (void *)(v), .len = (l) })
#define CHAN_CASE_RECV(c, b, s) \
    ((chan_case_t){ .ch = (c), .op = CHAN_RECV, .buf = (b), .len = (s) })

/* chan_select - wait until one of n cases can proceed, do it, and return
 * its index.  If several are ready, one is chosen uniformly at random.
 * Exactly one case takes effect: never two, never a value lost.
 * A closed channel makes its case ready: the index is returned with the
 * case's err set to EPIPE.  With deadline 0 it never blocks (Go's default).
 * A receive case whose buffer is too small for the value at the head is
 * chosen with err EMSGSIZE and n the value's length; the value stays.
 * Cases whose ch is NULL are never ready: with only such cases (or n 0),
 * select waits for the deadline (-1: forever, like Go's select {}).
 * The same channel may appear in several cases, even as send and receive:
 * a select never pairs with itself.
 *
 * Cases may mix local channels, timers and remote channels on any number of
 * daemons.  Cases on one daemon are decided there, atomically, in one
 * request.  Across daemons (or with local cases) the choice among the
 * cases ready when select is called is still uniform, as Go's random poll
 * order makes it: local cases ahead of every remote one in that order are
 * polled first, then each daemon in turn is asked for its first ready case
 * in that order (a round trip each, fewer when an early offer cannot be
 * beaten), and the first in the order wins.  With deadline 0 it takes
 * default only if at one instant no case was ready, as Go promises: when
 * a look finds nothing it looks again, one more round trip per daemon, and
 * gives up only if no channel changed in between (after 8 looks that all
 * saw change, it gives up all the same).  A sender waiting on a remote
 * channel in such a select of another process counts as ready for a
 * receive with deadline 0 (chan_recv too): the call waits for that sender
 * to decide, a round trip to its process, and takes its value or, if it
 * chose another case, default.  If nothing is ready, each
 * daemon reserves the first case that becomes ready and the first
 * reservation to arrive wins.  Offers not taken are given back as
 * they were (a value returns to the head of its channel, in order).  Two
 * such selects on the two ends of a channel always meet, even when they
 * also cross on other daemons: if the other side chose another case just
 * then, the select starts over by itself (PROTOCOL.md section 9).  A daemon
 * whose connection is lost drops out; the others go on.
 *
 * Returns the chosen index, or -1 with ETIMEDOUT (no case in time), EINVAL
 * (bad case), ENOMEM (nothing happened), ECONNRESET (every remote case's
 * connection was lost and no other case could proceed; or a committed send
 * whose connection dropped: it may or may not have happened), ENOENT (a
 * remote channel no longer exists, as for chan_send(): a temporary channel
 * whose connection was lost is one), EEXIST (a remote case's handle found
 * its name holding a channel of another capacity, as for chan_send()). */
CHAN_API int chan_select(chan_case_t *cases, size_t n, int64_t deadline);

/* ------------------------------------------------------------------------
 * Timers as channels (Go's time.After and time.Tick)
 * ------------------------------------------------------------------------ */

/* chan_after - a channel (capacity 1) that receives one value, the int64_t
 * chan_now() at which it fired, ms milliseconds from now (ms <= 0: at
 * once).  Timers run on one internal thread started on first use; firing
 * never blocks.  Releasing the last reference stops the timer and frees it,
 * also while it is firing (the release waits for that firing to finish).
 * NULL with ENOMEM, or EAGAIN (no timer thread). */
CHAN_API chan_t *chan_after(int64_t ms);

/* chan_tick - a channel that receives chan_now() every ms milliseconds
 * (buffer of one: ticks are dropped for a slow receiver, as in Go; ticks
 * stay on the grid start + k * ms, skipping missed ones).
 * Stop it with chan_timer_stop() or by releasing the handle.
 * NULL with EINVAL (ms <= 0), ENOMEM or EAGAIN. */
CHAN_API chan_t *chan_tick(int64_t ms);

/* chan_timer_stop - stop a chan_after()/chan_tick() channel.  Returns 1 if
 * that prevented a timer from firing, 0 if it had fired (chan_after) or was
 * already stopped, -1 with EINVAL if ch is not a timer channel. */
CHAN_API int chan_timer_stop(chan_t *ch);

/* ------------------------------------------------------------------------
 * Patterns from "Go Concurrency Patterns"
 * ------------------------------------------------------------------------ */

/* chan_generator - start fn(out, arg) as a goroutine and return out, a
 * channel with capacity cap that fn sends to.  The channel is closed when
 * fn returns (fn may close it itself).  The caller owns the returned
 * handle; the goroutine holds its own reference.  A consumer that wants to
 * stop early closes out: fn's next send fails with EPIPE.
 * NULL with EINVAL (fn NULL), ENOMEM, or errno as chan_go(). */
CHAN_API chan_t *chan_generator(void (*fn)(chan_t *out, void *arg), void *arg, size_t cap);

/* chan_fanin - one unbuffered channel fed by every input until all of them
 * are closed; then it is closed.  Inputs may be local or remote; the fan-in
 * holds its own references, the caller keeps its own.  Each input has a
 * goroutine forwarding its values in order (values of different inputs
 * interleave).  Closing the output stops the forwarders at their next
 * value.  NULL with ENOMEM, EINVAL (inputs NULL, n == 0 or an input NULL),
 * or errno as chan_go(). */
CHAN_API chan_t *chan_fanin(chan_t *const *inputs, size_t n);

/* ------------------------------------------------------------------------
 * Remote channels in chand
 * ------------------------------------------------------------------------ */

/* A connection to one chand.  Thread-safe: every thread and goroutine of a
 * process may share one client; their requests travel together and their
 * replies come back in any order. */
typedef struct chan_client chan_client_t;

/* Where chand listens and chan_connect() connects when told nothing else:
 * local clients only. */
#define CHAN_DEFAULT_ADDR "127.0.0.1:7070"

/* chan_connect - connect to chand at addr: "host:port", "[v6addr]:port"
 * or "unix:/path", or over TLS: "tls://host:port", "tls://[v6addr]:port".
 * addr NULL means $CHAN_ADDR, then CHAN_DEFAULT_ADDR ("127.0.0.1:7070").
 * token NULL means $CHAN_TOKEN, then no token.  With $CHAN_USER set, the
 * client says Hello as that user of chand's --acl-file, and the token is
 * its secret (chan_connect_opts() sets the user per client).
 * Returns a client, or NULL with ECONNREFUSED (or another connect errno),
 * ETIMEDOUT, EACCES (bad token, or user and secret), EBUSY (too many connections), EINVAL (bad
 * address, or a TLS file that does not load), EPROTO (not chand, or the
 * TLS handshake failed), ENOMEM.  chan_errmsg() says why in words when
 * errno cannot: "TLS: the server's certificate is not trusted: certificate
 * has expired", "TLS: the server requires a client certificate ...", chand's
 * reason for refusing the connection; after a failed redial, the calls
 * failing with ECONNRESET leave it there too.
 *
 * TLS (tls://): the server's certificate must chain to a CA of $CHAN_TLS_CA
 * (a PEM file; unset: the system's trust store), be valid now, and name
 * the host of the address (a DNS name, or an IP address among its IP
 * addresses), or $CHAN_TLS_SERVERNAME if set, which is also sent as SNI
 * (an IP address is not).  $CHAN_TLS_CERT and $CHAN_TLS_KEY (PEM; the key
 * defaults to the certificate's file) present a client certificate, for a
 * chand run with --tls-ca.  TLS 1.2 or later; ALPN "chan/1".  Every
 * redial checks the same way.  chan_connect_opts() sets these per client.
 *
 * Losing the connection: calls in flight, blocked ones included (in threads
 * and goroutines alike), fail with ECONNRESET, unless their answer came
 * first; the next call dials again (at most 5 s).  A connection that stops
 * answering without closing counts as lost: chand answers a call with a
 * deadline by that deadline, so 2 s after it the library asks chand to
 * cancel the call, and 2 s after that hangs up.  An answer that comes
 * meanwhile is the call's result (a send that went returns 0, not
 * ETIMEDOUT).  Without one, a call that may have taken effect (a send, a
 * close, a select with a send case) fails with ECONNRESET, having taken
 * up to 4 s past its deadline (chan_close: about 7 s after the call); one
 * that cannot have (a receive: a value chand handed out goes back to its
 * channel) fails with ETIMEDOUT.  After a failed dial,
 * calls fail at once with ECONNRESET until a backoff has passed (50 ms,
 * doubling to 5 s).  Values this process had received but not yet
 * acknowledged go to other receivers (marked redelivered).
 *
 * Channel handles stay valid across a reconnection, to the same daemon or
 * to one restarted on that address: before anything else goes out on the
 * new connection, the client opens each live handle's channel again, by
 * name, all in one round trip (the dial fails, with ECONNRESET, if that
 * does):
 *   - a handle from chan_open() without CHAN_NOCREATE: with the capacity it
 *     was opened with (for CHAN_CAP_ANY, its chan_cap()).  A daemon that
 *     lost the channel makes it again, empty; one that has it keeps it as
 *     it is.  If the name holds a channel of another capacity, that is not
 *     the handle's channel: every call on the handle fails with EEXIST from
 *     then on (release it; the client's other handles are not affected).
 *   - a handle opened with CHAN_NOCREATE (and chan_open_ref()): opened with
 *     CHAN_NOCREATE again, never made.  If the channel is gone, calls on
 *     the handle fail with ENOENT until someone makes it again.
 *   - a handle from chan_open_temp(): its channel died with the connection
 *     that made it.  Every call on it fails with ENOENT, at once, from the
 *     moment the client knows that connection is lost (even before a
 *     redial, and for good; chan_release() still frees it): its name is
 *     never used again, since another channel may have it by then.  A
 *     handle from chan_open_ref() to another client's temporary channel
 *     fails so too, for good, once a reconnection finds that channel gone
 *     (or its name held by a channel that is not temporary).
 * chand refusing to make a channel again (EBUSY: too many channels) is not
 * for good: calls on the handle get chand's answers (ENOENT), and the next
 * reconnection tries again.
 *
 * A cluster (chand --cluster): addr may list several nodes, the seeds,
 * separated by commas ("h1:7071,h2:7072"; a seed with tls:// speaks TLS,
 * and so does the primary it names).  The client dials them in order,
 * giving each at most a second, and settles on its group's primary: a node
 * that is not names the primary in its Hello reply and the client connects
 * there; while the group elects one (or the primary named does not
 * answer: it died, and its lease has not run out yet), the client tries
 * the seeds again every 100 ms until the deadline.  Every redial (after a failover: the
 * old primary's connections are closed) goes through the seeds again, and
 * handles are opened again as above.  A call answered by a node that is no
 * longer primary fails with ECONNRESET.  A call refused because its slot
 * moved to another group (chan_cluster_move) took no effect: it goes again
 * there, and if that group's connection is lost or refused on the way, it
 * waits and tries again until its deadline (30 s without one), failing
 * then with ETIMEDOUT, not ECONNRESET. */
CHAN_API chan_client_t *chan_connect(const char *addr, const char *token, int64_t deadline);

/* chan_connect_opts - chan_connect() with its settings in a struct.  A
 * field left NULL (or 0) means what chan_connect() does without it: the
 * environment variable, then the default.  Zero the struct first (= { 0 }
 * or a designated initializer), so that the code stays right when fields
 * are added. */
typedef struct chan_connect_opts {
    const char *addr;           /* as chan_connect(); NULL: $CHAN_ADDR */
    const char *token;          /* NULL: $CHAN_TOKEN */
    const char *tls_ca;         /* CA file; NULL: $CHAN_TLS_CA, then the
                                   system's store */
    const char *tls_cert;       /* client certificate; NULL: $CHAN_TLS_CERT */
    const char *tls_key;        /* its key; NULL: $CHAN_TLS_KEY, then the
                                   certificate's file */
    const char *tls_servername; /* name to check and send as SNI; NULL:
                                   $CHAN_TLS_SERVERNAME, then addr's host */
    int tls;                    /* nonzero: TLS even without tls:// */
    const char *user;           /* the user of chand's --acl-file to say
                                   Hello as, token being its secret;
                                   NULL: $CHAN_USER, then none */
} chan_connect_opts_t;

/* opts NULL: as chan_connect(NULL, NULL, deadline).  Returns as
 * chan_connect(). */
CHAN_API chan_client_t *chan_connect_opts(const chan_connect_opts_t *opts, int64_t deadline);

/* chan_disconnect - close the connection.  Calls blocked on it fail with
 * ECONNRESET; channel handles opened through it stay valid until released
 * but their operations fail with ECONNRESET.  NULL is ignored.  It first
 * sends the acknowledgements still waiting for a request to ride on (up to
 * CHAN_ACK_DELAY_MS old): a process that exits without it may drop them,
 * and chand then counts those values as never received (they go to other
 * receivers, marked redelivered, and an unbuffered sender's call fails,
 * though the value was used).  Disconnect before exit. */
CHAN_API void chan_disconnect(chan_client_t *cl);

/* Flags for chan_open(). */
enum chan_open_flags {
    CHAN_NOCREATE = 1 << 0,   /* fail with ENOENT if the channel is missing */
};

/* Capacity argument of chan_open() that takes an existing channel as it is
 * (and makes a missing one unbuffered). */
#define CHAN_CAP_ANY (-1L)

/* chan_open - make the channel called name with capacity cap (Go's make)
 * if it is missing, or open it if it exists with the same capacity.
 * Names are 1 to 255 bytes of [A-Za-z0-9._:/-].  The handle keeps working
 * when the client reconnects, to chand restarted too: it opens the channel
 * again the same way (see chan_connect()).
 * Returns a handle the caller owns, or NULL with EINVAL (bad name or cap),
 * EEXIST (exists with another capacity), ENOENT (CHAN_NOCREATE), EBUSY
 * (too many channels), ETIMEDOUT, ECONNRESET, ENOMEM. */
CHAN_API chan_t *chan_open(chan_client_t *cl, const char *name, long cap, int flags,
                           int64_t deadline);

/* chan_open_temp - make a temporary channel with capacity cap and a unique,
 * unguessable name chosen by chand (read it with chan_name()).  It is
 * deleted when the returned handle is released for the last time (even if
 * chan_retain()ed copies were handed around), or when this client's
 * connection goes away; its blocked peers then see it closed, and its name
 * is unknown from then on.  Send chan_ref() of it in a message to give
 * another process a reply channel.
 * Once that connection is lost (chand restarted, the network failed, ...),
 * every call on the handle fails with ENOENT, even after the client has
 * connected again: the channel is gone, and its name is never sent again
 * (see chan_connect()).  Make a new one.
 * Returns a handle, or NULL with errno as chan_open(). */
CHAN_API chan_t *chan_open_temp(chan_client_t *cl, long cap, int64_t deadline);

/* chan_delete - delete the channel called name from chand: its buffered
 * values are dropped, every sender and receiver blocked on it is answered as
 * if it were closed (EPIPE), and the name is free again.  Any client may
 * delete any channel (unless chand's --acl-file says otherwise).  0, or -1
 * with ENOENT, EINVAL, ETIMEDOUT, ECONNRESET,
 * EACCES (chand's --acl-file: the user may not delete it). */
CHAN_API int chan_delete(chan_client_t *cl, const char *name, int64_t deadline);

/* Longest reference chan_ref() writes, with its NUL. */
#define CHAN_REF_MAX 512

/* chan_ref - write a reference to the remote channel ch into buf: its name
 * and its daemon's address as "name@address", NUL-terminated, at most size
 * bytes (CHAN_REF_MAX always suffices).  Send it in a message, and the
 * receiving process, wherever it runs, opens the very channel with
 * chan_open_ref(): this is how a request carries its reply channel.
 * Returns the length (without the NUL), or -1 with EINVAL (ch is local: in
 * one process, send the chan_t pointer itself, retained) or ENOSPC. */
CHAN_API ssize_t chan_ref(const chan_t *ch, char *buf, size_t size);

/* chan_open_ref - open the channel a reference names (ref: len bytes, as
 * received; a trailing NUL is allowed).  The channel must exist.  If the
 * reference names the daemon cl is connected to (the same address string),
 * cl is used; otherwise (or if cl is NULL) a connection to that daemon is
 * made for the handle, with $CHAN_USER and $CHAN_TOKEN (and cl's TLS CA and client
 * certificate files, if cl has them; the name checked is the reference's
 * host), and closed when the handle is released.  Returns a handle the caller owns, or NULL with EINVAL (not a
 * reference), ENOENT (no such channel: a temporary channel whose owner has
 * gone), or the errors of chan_connect() and chan_open(). */
CHAN_API chan_t *chan_open_ref(chan_client_t *cl, const void *ref, size_t len, int64_t deadline);

/* chan_name - the name of a remote channel, or NULL for a local one.  The
 * string lives as long as the handle. */
CHAN_API const char *chan_name(const chan_t *ch);

/* chan_ping - one round trip to chand.  0, or -1 with ETIMEDOUT, ECONNRESET. */
CHAN_API int chan_ping(chan_client_t *cl, int64_t deadline);

/* What chand reports about one channel. */
typedef struct chan_stat {
    char name[256];         /* NUL-terminated */
    uint64_t len;           /* values queued */
    uint64_t cap;           /* capacity */
    uint64_t senders;       /* blocked send requests */
    uint64_t receivers;     /* blocked receive requests */
    uint64_t inflight;      /* values delivered, not yet acknowledged */
    uint64_t sent;          /* values ever accepted */
    uint64_t received;      /* values ever acknowledged by a receiver */
    int closed;             /* 1 once closed */
    int temp;               /* 1 for a temporary channel */
} chan_stat_t;

/* chan_stat - fill *st with chand's view of the channel called name.
 * 0, or -1 with ENOENT, EINVAL, ETIMEDOUT, ECONNRESET, EACCES (chand's
 * --acl-file: the user may neither send to nor receive from it). */
CHAN_API int chan_stat(chan_client_t *cl, const char *name, chan_stat_t *st, int64_t deadline);

/* chan_list - every channel of the daemon, in name order (bytewise), as a
 * malloc()ed array in *out (the caller frees it; NULL when there are
 * none).  It asks a page at a time, so a daemon with millions of
 * channels keeps serving everyone else meanwhile; the list is therefore
 * not one snapshot: a channel that exists throughout is there once, and
 * one made or deleted during the call may or may not be.  deadline bounds
 * the whole listing.  Returns the count, or -1 with ETIMEDOUT,
 * ECONNRESET, ENOMEM, EACCES (chand's --acl-file: the user lacks the list
 * permission) (*out is then untouched). */
CHAN_API ssize_t chan_list(chan_client_t *cl, chan_stat_t **out, int64_t deadline);

/* What chand reports about itself. */
#define CHAN_LOOP_BUCKETS 32
typedef struct chan_server_stat {
    uint64_t uptime_ms;
    uint64_t connections;
    uint64_t channels;
    uint64_t pending;         /* blocked requests, all connections */
    uint64_t inflight;        /* unacknowledged deliveries */
    uint64_t values_sent;     /* since start */
    uint64_t values_received;
    uint64_t value_bytes;     /* memory values hold now (--max-memory) */
    uint64_t output_bytes;    /* replies queued to clients (--max-memory) */
    uint64_t max_frame;       /* the daemon's limits */
    uint64_t max_value;
    uint64_t ack_expired;     /* values given back unacknowledged after
                                 --ack-wait, since start */
    /* How long the daemon's loop was busy with one callback (a batch of a
     * connection's requests, a timer), since start: loop_counts[i]
     * callbacks took up to loop_bounds_us[i] µs (and more than the bound
     * before); the last of the loop_buckets has bound UINT64_MAX. */
    uint64_t loop_max_us;
    size_t loop_buckets;
    uint64_t loop_bounds_us[CHAN_LOOP_BUCKETS];
    uint64_t loop_counts[CHAN_LOOP_BUCKETS];
    /* The daemon's journal (chand --data-dir); durable is false for a
     * daemon that keeps memory only, and the rest is then 0. */
    int durable;                /* 1 or 0 */
    char fsync[16];            /* "always", "everysec" or "no" */
    uint64_t disk_bytes;       /* the data dir's snapshot and logs */
    uint64_t journal_records, journal_bytes;   /* written since start */
    uint64_t fsyncs, fsync_us_total, fsync_us_max;
    uint64_t rewrites, rewrite_failures;
    uint64_t last_rewrite_unix;   /* when the last one ended; 0: none */
    uint64_t last_rewrite_us, last_rewrite_stall_us;
    int refusing_sends;        /* 1: the disk is full, sends answered EBUSY */
    uint64_t recovery_us, recovered_channels, recovered_values;
    /* TLS on the daemon's TCP listeners (chand --tls-cert); tls is 0
     * without, and the rest 0. */
    int tls;                   /* 1 or 0 */
    uint64_t tls_handshakes;   /* completed since start */
    uint64_t tls_handshake_failures;   /* refused or broken off, plain
                                  frames on the TLS port, or no handshake
                                  before the Hello deadline */
    uint64_t tls_reloads, tls_reload_failures;   /* SIGHUP loads of the
                                  TLS files (a failed one changed nothing) */
    int64_t tls_not_after;     /* when the certificate new connections get
                                  expires (Unix time) */
} chan_server_stat_t;

/* chan_server_stat - fill *st.  0, or -1 with ETIMEDOUT, ECONNRESET, EACCES
 * (chand's --acl-file: the user lacks the stat permission). */
CHAN_API int chan_server_stat(chan_client_t *cl, chan_server_stat_t *st, int64_t deadline);

/* ---- A cluster (chand --cluster) ---- */

#define CHAN_CLUSTER_MAX_NODES 64

/* A node of the cluster, as the answering node last read it from etcd
 * (a few times a second). */
typedef struct chan_cluster_node {
    char node[104], group[104], addr[128];
    char role[16];            /* "primary", "replica" or "candidate" */
    uint64_t gen, off;        /* how far its journal reaches (log generation,
                                 length): a replica's lag to its primary */
} chan_cluster_node_t;

typedef struct chan_cluster_stat {
    int member;               /* 1: a cluster node; 0: a single chand (the rest
                                 is then empty) */
    char cluster[104], group[104], node[104];
    char role[16];            /* this node's */
    uint64_t term;            /* of the primary it is or follows; 0: none */
    char primary[128];        /* the primary's address, when not this node */
    char etcd[272];           /* the etcd endpoint it uses */
    int etcd_ok;              /* 1: its last call to etcd succeeded */
    int64_t lease_left_ms;    /* until its view of its etcd lease ends */
    char replication[8];      /* "sync" or "async" */
    uint64_t elections_won, fences, etcd_errors;
    uint32_t replicas;        /* connected to it, as primary */
    uint64_t replica_lag_bytes; /* as primary: log bytes the furthest-behind
                                   replica has not acknowledged */
    size_t nnodes;
    chan_cluster_node_t nodes[CHAN_CLUSTER_MAX_NODES];
} chan_cluster_stat_t;

/* chan_cluster_stat - fill *st from the node cl is connected to (through
 * a list of seeds: the primary).  0, or -1 with ETIMEDOUT, ECONNRESET. */
CHAN_API int chan_cluster_stat(chan_client_t *cl, chan_cluster_stat_t *st, int64_t deadline);

/* Placement: a channel's name belongs to one of CHAN_SLOTS hash slots
 * (the 32-bit FNV-1a hash of the name, modulo CHAN_SLOTS), and each slot
 * to one group of the cluster; libchan sends each channel's requests to the
 * primary of its group (docs/PROTOCOL.md, Cluster). */
#define CHAN_SLOTS 1024

/* chan_slot_of - the slot of channel name.  Needs no daemon. */
CHAN_API unsigned chan_slot_of(const char *name);

/* A run of slots lo..hi served by one group. */
typedef struct chan_slot_range {
    unsigned lo, hi;
    char group[104];
    char primary[128];        /* its primary's HOST:PORT, "" while none */
    int moving;               /* 1: these slots are moving to group `to` */
    char to[104];
} chan_slot_range_t;

/* chan_cluster_slots - the slot map, as the node cl is connected to last
 * read it: *out gets a malloc'd array (the caller frees it) of the runs,
 * in order, covering every slot; a run that is moving is one of its own.
 * Returns the count, or -1 with ETIMEDOUT, ECONNRESET, EINVAL (not a
 * cluster), EAGAIN (the cluster has no map yet). */
CHAN_API ssize_t chan_cluster_slots(chan_client_t *cl, chan_slot_range_t **out, int64_t deadline);

/* chan_cluster_move - give slots lo..hi (served by one group now) to
 * group: their channels, with their values, move there while clients go on
 * (a request for them waits meanwhile and then goes to the new group).
 * Returns 0 once the move is recorded in etcd (chan_cluster_slots shows it
 * under way, and its end); -1 with EINVAL (a range of several groups, a
 * group without a primary, a move already under way: chan_errmsg() says
 * which), EBUSY (etcd did not take it), EACCES (the user lacks the cluster
 * permission), ETIMEDOUT, ECONNRESET.  A connection lost before the answer
 * is not taken for a failure at once: the node may have recorded the move
 * and died.  The call then reads the map (through a redial) for up to 5 s
 * within its deadline: 0 if it shows lo..hi moving to group or served by
 * it, else ECONNRESET. */
CHAN_API int chan_cluster_move(chan_client_t *cl, unsigned lo, unsigned hi, const char *group,
                               int64_t deadline);

#ifdef __cplusplus
}
#endif

#endif /* CHAN_CHAN_H */

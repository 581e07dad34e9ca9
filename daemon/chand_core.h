/*
 * chand_core.h - the channel core of chand: named channels with Go's
 * semantics, as pure logic.  No sockets, no clock, no libevent: the server
 * feeds it requests and the time, and it answers through a callback.  That
 * makes every rule checkable by unit tests alone (tests/check_core.c).
 *
 * Vocabulary
 *   session   one client connection as the core sees it.  It owns its
 *             pending requests, its unacknowledged deliveries, its
 *             reservations and its temporary channels.
 *   op        one request that could not be answered at once (a blocked
 *             send, receive or select), or that waits for acknowledgements.
 *             An op has cases: plain sends and receives have one, a select
 *             has one per channel it names.  Each waiting case sits in the
 *             FIFO queue of its channel (senders or receivers).
 *   delivery  a value handed to a receiving session, with an id.  It stays
 *             the session's until acknowledged (gone for good) or given back
 *             (nack, or the session goes away): then the value returns to
 *             the head of its channel, in order, and nothing is lost.
 *
 * How a request proceeds (the idea of Redis's blocked.c, with Go's rules):
 *   1. Look for a partner now: a send looks at the channel's waiting
 *      receivers, then at free buffer space; a receive looks at the buffer,
 *      then at waiting senders; a select polls its cases in random order.
 *   2. If nothing is ready: with timeout 0 answer TIMEOUT at once, else
 *      queue the op's cases at the tails of their channels' queues and put
 *      the op in the deadline heap.
 *   3. Whoever arrives later and finds the op at the head of a queue
 *      completes it: removes all of its cases from all queues and answers.
 *
 * Unbuffered channels are a rendezvous even across the network: a value sent
 * on one is delivered to a receiver, and the send completes only when that
 * receiver acknowledges it.  If the receiver goes away first, the value goes
 * back to the head of its sender's queue and the next receiver gets it.  A
 * buffered send completes when its value is in the buffer; values given back
 * return to the head of the buffer (which may then briefly hold more than
 * its capacity: nothing is dropped to make room).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_CORE_H
#define CHAND_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>


/* What the core answers a request.  The numbers are the wire protocol's
 * Status codes (chand_dispatch.c checks that when it compiles), so that a
 * reply carries them as they are; the core itself knows nothing of the
 * protocol's messages. */
typedef enum core_status {
    CORE_ST_OK = 0,
    CORE_ST_CLOSED = 1,        /* the channel is closed (and drained) */
    CORE_ST_TIMEOUT = 2,       /* the deadline passed, or nothing was ready */
    CORE_ST_NOT_FOUND = 3,     /* no such channel, or pending request */
    CORE_ST_EXISTS = 4,        /* the channel exists with another capacity */
    CORE_ST_TOO_LARGE = 5,     /* a value over a limit */
    CORE_ST_BAD_REQUEST = 6,   /* invalid (the message says why) */
    CORE_ST_BUSY = 8,          /* a limit was reached */
    CORE_ST_SHUTTING_DOWN = 9, /* core_shutdown */
    CORE_ST_CANCELED = 10,     /* core_cancel */
    CORE_ST_RESERVED = 11,     /* a reserving select holds its case */
    CORE_ST_RETRY = 12,        /* a commit whose partner went away */
    CORE_ST_MOVED = 14,        /* core_evict, core_drop: the channel's slot moves */
} core_status_t;

typedef struct core core_t;
typedef struct core_sess core_sess_t;
typedef struct core_chan core_chan_t;

/* A value: a byte string with its redelivery count. */
typedef struct core_val {
    uint64_t vid;                /* its number in the journal; 0: not
                                    journaled (temporary or unbuffered
                                    channel, or not yet accepted) */
    uint32_t redelivered;
    uint32_t len;
    uint32_t seq;                /* its place in its send's batch */
    uint8_t bulk;                /* allocated with xbulk_alloc (loaded) */
    uint8_t data[];
} core_val_t;

/* A byte string the caller owns. */
typedef struct core_bytes {
    const uint8_t *data;
    size_t len;
} core_bytes_t;

/* One value handed to a receiver, as it appears in a reply. */
typedef struct core_out_dlv {
    uint64_t id;
    const core_val_t *val;
} core_out_dlv_t;

enum core_reply_kind {
    CORE_R_PLAIN,    /* status only: close, cancel, commit, release, errors */
    CORE_R_OPEN,
    CORE_R_SEND,
    CORE_R_RECV,
    CORE_R_SELECT,
};

/* What the core answers; the server turns it into a Reply frame at once
 * (every pointer is valid only during the callback). */
typedef struct core_reply {
    uint64_t id;
    core_status_t status;
    const char *message;             /* NULL for OK */
    enum core_reply_kind kind;
    /* CORE_R_OPEN */
    const core_chan_t *chan;
    bool created;
    /* CORE_R_SEND */
    uint32_t accepted;
    /* CORE_R_RECV (ndlv >= 0) and CORE_R_SELECT (index; ndlv 0 or 1) */
    int index;
    /* CORE_R_SELECT, TOO_LARGE: the length of the value the case refused */
    uint64_t value_len;
    size_t ndlv;
    const core_out_dlv_t *dlv;
    /* CORE_R_SELECT with timeout 0 answered TIMEOUT: each case's channel's
     * version (in case order) when nothing was found ready */
    size_t nversions;
    const uint64_t *versions;
} core_reply_t;

typedef void (*core_reply_fn)(void *sess_ctx, const core_reply_t *r);

typedef struct core_limits {
    uint64_t max_value;        /* bytes in one value */
    uint64_t max_reply;        /* bytes of values in one receive's answer
                                  (the first value always goes) */
    uint32_t max_batch;        /* values in one send or receive */
    uint32_t max_pending;      /* ops per session */
    uint32_t max_cases;        /* cases in one select */
    uint64_t max_channels;
    uint64_t max_cap;          /* largest capacity one may ask for */
    uint64_t max_memory;       /* bytes all values may hold; 0: no limit */
    int64_t ack_wait;          /* ms a delivery may wait for its ack before
                                  it goes back to its channel; 0: forever */
} core_limits_t;

/* ---- the core ---- */

/* core_new - an empty core.  reply is called for every answer. */
core_t *core_new(const core_limits_t *lim, core_reply_fn reply);
/* core_free - free everything (sessions must have been dropped first). */
void core_free(core_t *c);
/* core_count_outside - *bytes (read at each send, may be NULL) is memory
 * held for clients outside the core, such as replies queued to them: it
 * counts against lim.max_memory with the values. */
void core_count_outside(core_t *c, const uint64_t *bytes);
/* core_seed - seed the core's random choices (select), for tests. */
void core_seed(core_t *c, uint64_t seed);
/* core_reclaim - free up to budget values of deleted channels (a large
 * buffer is freed a slice at a time, between other work, rather than in
 * the request that deleted it).  Returns how many still wait: call again
 * soon while it is not 0. */
size_t core_reclaim(core_t *c, size_t budget);

/* ---- the journal (durability: chand_journal.c) ----
 * With a journal set, the core reports every change a restart must
 * restore, as it happens, so that the records of one loop turn can be made
 * durable before its replies go out.  Channels that are not temporary get
 * a number (`no`, never reused); a value gets a number (`vid`, never
 * reused) when a buffered channel accepts it.  Values of unbuffered
 * channels are never journaled: their sends complete only on the
 * receiver's acknowledgement. */
typedef struct core_journal {
    void (*made)(void *ctx, uint64_t no, core_bytes_t name, uint64_t cap);
    void (*closed)(void *ctx, uint64_t no);
    void (*deleted)(void *ctx, uint64_t no);
    /* v was accepted by channel no (v->vid is set) */
    void (*put)(void *ctx, uint64_t no, const core_val_t *v);
    /* the value numbered vid was handed to a receiver / acknowledged */
    void (*delivered)(void *ctx, uint64_t vid);
    void (*acked)(void *ctx, uint64_t vid);
} core_journal_t;

/* core_set_journal - report to j (NULL: stop reporting).  j must outlive
 * the core or the next call. */
void core_set_journal(core_t *c, const core_journal_t *j, void *ctx);
/* core_refuse_puts - while why is not NULL, a send or a select's send case
 * to a journaled buffered channel is answered BUSY with why as its message
 * (the journal cannot take more: the disk is full).  Receives, acks and
 * sends on unbuffered channels go on.  why must stay valid until the next
 * call. */
void core_refuse_puts(core_t *c, const char *why);
/* Restoring what the journal holds, before any session exists: */
/* core_restore_chan - make channel `name` with number no (not temporary);
 * NULL if the name is taken or the number is 0. */
core_chan_t *core_restore_chan(core_t *c, core_bytes_t name, uint64_t no, uint64_t cap,
                               bool closed);
/* core_restore_val - append a value to ch's buffer, as journaled. */
void core_restore_val(core_chan_t *ch, uint64_t vid, uint32_t redelivered, core_bytes_t data);
/* core_restore_done - the last call of a restore: the next channel and
 * value numbers will be above these. */
void core_restore_done(core_t *c, uint64_t last_no, uint64_t last_vid);
/* core_dump - what a snapshot of the journal holds: fn_chan once for every
 * journaled channel, then fn_val for every journaled value (buffered, or
 * delivered and not yet acknowledged: those count one more redelivery,
 * since they come back redelivered if the daemon stops now), in no
 * particular order; then *last_no and *last_vid. */
void core_dump(const core_t *c,
               void (*fn_chan)(void *arg, uint64_t no, core_bytes_t name, uint64_t cap, bool closed),
               void (*fn_val)(void *arg, uint64_t no, uint64_t vid, uint32_t redelivered,
                              core_bytes_t data),
               void *arg, uint64_t *last_no, uint64_t *last_vid);

/* ---- moving channels to another group of a cluster ----
 * A group's primary hands the channels of moving slots to the next group
 * (chand_slots.c): it stops taking requests for them, evicts what waits on
 * them, waits until they are settled, copies their values and finally
 * drops them; the next group adopts them. */

/* core_evict - answer st to every op waiting on channel name (blocked
 * sends and receives, select cases); reservations and deliveries stay, to
 * be resolved by their clients.  Returns how many ops were answered. */
size_t core_evict(core_t *c, core_bytes_t name, core_status_t st);
/* core_chan_settled - nothing waits on ch, no reservation holds a slot or a
 * partner on it, and no value is out whose sender awaits its ack (any on
 * an unbuffered channel; on a buffered one, a value handed straight from
 * its sender while reservations held the free slots): its whole state is
 * its buffer and its unacknowledged deliveries. */
bool core_chan_settled(const core_chan_t *ch);
/* core_chan_values - fn for every value of ch, in the order a receiver
 * would get them: deliveries not yet acknowledged first (with one more
 * redelivery: they come back if their receiver never acks), then the
 * buffer. */
void core_chan_values(const core_chan_t *ch,
                      void (*fn)(void *arg, core_bytes_t data, uint32_t redelivered), void *arg);
/* core_adopt_chan - the channel name, made now (journaled) with capacity
 * cap if absent; NULL if a temporary channel has the name. */
core_chan_t *core_adopt_chan(core_t *c, core_bytes_t name, uint64_t cap);
/* core_adopt_val - append a value to ch's buffer (journaled), whatever its
 * capacity: a moved channel keeps every value it had. */
void core_adopt_val(core_chan_t *ch, core_bytes_t data, uint32_t redelivered);
/* core_adopt_end - the values of ch are in: close it if closed. */
void core_adopt_end(core_chan_t *ch, bool closed);
/* core_drop - delete channel name (not temporary; journaled), answering
 * st to what waits on it.  false if there is no such channel. */
bool core_drop(core_t *c, core_bytes_t name, core_status_t st);

/* core_set_temp_filter - the names chand picks for temporary channels
 * pass ok (in a cluster: a slot of this node's group, so that clients
 * routing by slot find them here); NULL: any. */
void core_set_temp_filter(core_t *c, bool (*ok)(void *ctx, const char *name, size_t len),
                          void *ctx);

/* ---- sessions ---- */

core_sess_t *core_sess_new(core_t *c, void *ctx);
/* core_sess_drop - the connection went away: its blocked requests are
 * removed, its unacknowledged deliveries go back to their channels (marked
 * redelivered), its reservations are released, its temporary channels
 * deleted (their blocked peers see them closed).  Frees the session. */
void core_sess_drop(core_sess_t *s);
/* Counts for limits and stats. */
size_t core_sess_pending(const core_sess_t *s);
size_t core_sess_inflight(const core_sess_t *s);
/* core_sess_waiting - true while request id of s is still to be answered
 * for good (blocked, or holding a reservation). */
bool core_sess_waiting(const core_sess_t *s, uint64_t id);

/* ---- requests ----
 * Each answers through the reply callback, now or later (blocked ops).
 * timeout_ms is relative to `now` (the server's monotonic clock, in ms):
 * < 0 forever, 0 don't block.  Names were validated by the caller. */

void core_open(core_sess_t *s, uint64_t id, core_bytes_t name, bool has_cap,
               uint64_t cap, bool temp, bool no_create);
void core_send(core_sess_t *s, uint64_t id, core_bytes_t name,
               const core_bytes_t *vals, size_t n, int64_t timeout_ms, int64_t now);
/* max_bytes: a head value longer than this is refused (TOO_LARGE) and stays;
 * UINT64_MAX takes any. */
void core_recv(core_sess_t *s, uint64_t id, core_bytes_t name, uint32_t max,
               uint64_t max_bytes, int64_t timeout_ms, int64_t now);
void core_close(core_sess_t *s, uint64_t id, core_bytes_t name);
/* Delete the channel: its name is free, its buffered values dropped, and
 * everyone waiting on it answered CLOSED. */
void core_delete(core_sess_t *s, uint64_t id, core_bytes_t name);

typedef struct core_case_req {
    core_bytes_t name;
    bool send;
    core_bytes_t value;      /* send */
    uint64_t max_bytes;      /* recv: longest value taken (UINT64_MAX: any) */
} core_case_req_t;

/* reserve: two-phase (PROTOCOL.md section 9); the chosen case is answered
 * RESERVED (a send, or a receive that meets another reserving select of
 * lower prio) or delivered unacknowledged (a receive), and waits for
 * core_commit or core_release.  A commit may be answered RETRY: the other
 * side went away, nothing happened.  prio: of two reserving selects that
 * meet, the higher is asked first (0 for both: the sender); two reserving
 * ops with the same non-zero prio are one select's and never meet.
 * in_order: of the cases ready now, the first in the given order is taken
 * (the caller shuffled them: Go's poll order, kept across daemons). */
void core_select(core_sess_t *s, uint64_t id, const core_case_req_t *cases, size_t n,
                 bool reserve, uint64_t prio, bool in_order, int64_t timeout_ms, int64_t now);
void core_cancel(core_sess_t *s, uint64_t id, uint64_t target);
/* has_timeout: the reservation's op gets a new deadline, timeout_ms from
 * now (< 0: none), for what the commit may still wait for (a receiver's
 * acknowledgement, a held sender's decision): a select that polled with
 * timeout 0 commits with the time its caller has left. */
void core_commit(core_sess_t *s, uint64_t id, uint64_t target, bool has_timeout,
                 int64_t timeout_ms, int64_t now);
void core_release(core_sess_t *s, uint64_t id, uint64_t target);

/* Acknowledge (taken for good) or give back (to the head of its channel)
 * one delivery.  Unknown ids are ignored and counted: false. */
bool core_ack(core_sess_t *s, uint64_t delivery);
bool core_nack(core_sess_t *s, uint64_t delivery);
/* core_nack_all - give back the deliveries of one request's nack list
 * together: they return to their channels in the order they were
 * delivered (whatever the order of the list; an id named twice goes
 * back once), before any waiting receiver is served.  Returns how many
 * entries of the list named a delivery of s. */
size_t core_nack_all(core_sess_t *s, const uint64_t *deliveries, size_t n);

/* ---- time ---- */

/* core_set_now - the time (ms, monotonic) for what the core does next
 * without being given it: a delivery's ack deadline starts then.  Every
 * call that takes a now also sets it; the caller sets it once per batch of
 * events, before handing them over.  Time never goes back: an earlier now
 * is ignored. */
void core_set_now(core_t *c, int64_t now);
/* core_next_deadline - the earliest deadline of a blocked op or of an
 * acknowledgement, or -1. */
int64_t core_next_deadline(const core_t *c);
/* core_expire - answer TIMEOUT to every op whose deadline is <= now, and
 * give back (marked redelivered, as if its receiver had gone) every
 * delivery unacknowledged for lim.ack_wait ms; a late ack of it is an
 * unknown id. */
void core_expire(core_t *c, int64_t now);

/* core_shutdown - answer every blocked op SHUTTING_DOWN. */
void core_shutdown(core_t *c);

/* ---- inspection ---- */

typedef struct core_chan_info {
    core_bytes_t name;
    uint64_t len, cap, senders, receivers, inflight, sent, received;
    bool closed, temp;
} core_chan_info_t;

const core_chan_t *core_find(const core_t *c, core_bytes_t name);
/* core_chan_owner - a temporary channel's maker: its session's ctx (NULL
 * for a channel that is not temporary). */
void *core_chan_owner(const core_chan_t *ch);
void core_chan_info(const core_chan_t *ch, core_chan_info_t *out);
/* core_each_chan - call fn for every channel (any order). */
void core_each_chan(const core_t *c, void (*fn)(const core_chan_t *ch, void *arg), void *arg);
/* core_scan_chans - call fn for the channels of one step of a scan that
 * may span many requests, and return the cursor of the next step (0: the
 * scan is over).  Start at 0.  A channel that exists from the first step
 * to the last is seen exactly once; one made or deleted meanwhile may or
 * may not be.  A step is one hash bucket: usually zero, one or two
 * channels (see htable_scan). */
uint64_t core_scan_chans(const core_t *c, uint64_t cursor,
                         void (*fn)(const core_chan_t *ch, void *arg), void *arg);

typedef struct core_info {
    uint64_t channels, sessions, pending, inflight, values_sent, values_received;
    uint64_t value_bytes;
    uint64_t ack_expired;      /* deliveries given back at their ack deadline */
} core_info_t;
void core_info(const core_t *c, core_info_t *out);

/* ---- checking (tests and fuzzers) ---- */

/* Where a value is: every value the core holds is in exactly one place. */
enum core_place {
    CORE_IN_BUFFER,      /* a channel's buffer */
    CORE_IN_SENDER,      /* a send or select case that has not handed it on
                            (waiting, or held by a reservation) */
    CORE_IN_DELIVERY,    /* handed to a receiver, not yet acknowledged */
    CORE_IN_GRAVE,       /* dropped with its deleted channel, waiting for
                            core_reclaim to free it (chan is NULL) */
};

typedef struct core_value_at {
    const core_val_t *val;
    enum core_place place;
    const core_chan_t *chan;     /* its channel (perhaps deleted) */
    void *sess_ctx;              /* the sender's or receiver's session ctx;
                                    NULL for a buffer or a detached op */
    uint64_t id;                 /* SENDER: the op's request id;
                                    DELIVERY: the delivery id */
    int index;                   /* SENDER: its case's index */
} core_value_at_t;

/* core_audit - walk every channel, session, op and delivery, and check the
 * core's invariants (chand_core_match.c states them): every count agrees
 * with what is there (pending ops, deliveries in flight per channel,
 * session and op, reserved slots, queue lengths, value bytes), the deadline
 * heap is a heap of the ops it names, freezes pair a holder with what it
 * holds, and no channel is left with a partner for a waiting case.  fn, if
 * not NULL, is called for each value with where it is.  Returns NULL if
 * everything holds, else a description of the first thing that does not.
 * Costs a walk of everything (quadratic in places): for tests only. */
const char *core_audit(const core_t *c, void (*fn)(const core_value_at_t *at, void *arg),
                       void *arg);

#endif /* CHAND_CORE_H */

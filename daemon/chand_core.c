/*
 * chand_core.c - named channels with Go's semantics, as pure logic (the
 * design is explained in chand_core.h; read it first).
 *
 * Invariants, after every public call returns:
 *   - A channel never has both an active waiting receiver and something that
 *     receiver could take (a buffered value, or an active sender of another
 *     op).  pump() restores this after every change.
 *   - A buffered channel with free space (len + reserved < cap) has no
 *     active waiting sender.
 *   - A closed channel has no active waiting sender, and no active waiting
 *     receiver unless values are still buffered... which pump hands out.
 *   - Every value is in exactly one place: a channel buffer, a sender's
 *     queue of values (its case's `vals`), a delivery, or a reservation.
 *   - An op is answered exactly once (or never, once its session is gone).
 *
 * "Active" excludes cases of frozen ops: an op held by a reservation
 * (two-phase select across daemons) keeps its place but cannot be matched
 * until the reservation is committed or released.
 *
 * Two reserving selects that meet on an unbuffered channel must both agree,
 * and each may be winning elsewhere at the same moment.  The one with the
 * higher priority (a random number its client draws per attempt) is asked
 * first and the other is frozen meanwhile; once the first commits, the
 * other is asked.  A frozen op that fails (cancelled, timed out, session
 * gone) leaves at once, and a commit whose partner left is answered RETRY:
 * nothing ever waits on a frozen op, and since every pairing is decided in
 * the order of the priorities on every daemon, two selects that cross over
 * two daemons cannot each win their own reservation and miss the other.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chan_heap.h"
#include "chand_alloc.h"
#include "chand_core.h"
#include "chand_hash.h"
#include "chand_list.h"

/* ------------------------------------------------------------------------
 * Data
 * ------------------------------------------------------------------------ */

typedef struct core_op core_op_t;
typedef struct core_case core_case_t;
typedef struct core_dlv core_dlv_t;

struct core_chan {
    hnode_t node;            /* core->chans, by name, while not deleted */
    core_t *core;
    uint8_t *name;
    size_t name_len;
    uint64_t cap;
    bool closed, temp, deleted;
    qlink_t owner_link;      /* the owner session's temps */
    core_sess_t *owner;      /* temporary: the session that made it */
    pdeque_t buf;            /* core_val_t *, oldest first */
    uint64_t reserved;       /* buffer slots held by reservations */
    qlink_t sendq, recvq;    /* waiting cases, FIFO */
    uint64_t nsend, nrecv;   /* cases in those queues */
    uint64_t inflight;       /* deliveries not yet acknowledged */
    uint64_t sent, received;
    uint64_t refs;           /* the name table + cases + deliveries */
    uint64_t no;             /* its journal number; 0: not journaled */
    uint64_t version;        /* bumped by every change that can make a
                                case on it ready or not (chan_touch) */
};

enum op_kind { OP_SEND, OP_RECV, OP_SELECT };

enum op_state {
    OP_WAITING,     /* not answered; cases may be queued */
    OP_RESERVED,    /* a reserving select holds a send slot or receiver */
};

struct core_case {
    qlink_t link;            /* in ch->sendq or ch->recvq while queued */
    bool queued;
    bool send;
    int index;
    core_op_t *op;
    core_chan_t *ch;
    /* send: values not yet handed on, oldest first */
    pdeque_t vals;
    /* recv */
    uint32_t max;
    uint64_t max_bytes;      /* longest value it takes */
    core_out_dlv_t *out;     /* deliveries collected for the reply */
    size_t nout, outcap;
};

struct core_op {
    hnode_t node;            /* sess->ops, by request id */
    qlink_t dlink;           /* core->detached, once its session is gone */
    core_t *core;
    core_sess_t *sess;       /* NULL once detached: answers nobody */
    uint64_t id;
    uint64_t reply_id;       /* id the answer goes to (a Commit's id) */
    enum op_kind kind;
    enum op_state state;
    struct chan_heap_node dl;  /* key: absolute deadline (ms), -1 for none;
                                  in core->deadlines while it counts */
    core_status_t fail;       /* OK, or why no further value is accepted */
    int chosen;              /* select: the decided case, or -1 */
    uint32_t total;          /* send: values to send */
    bool nonblocking;        /* timeout 0: never frozen by a reservation */
    uint32_t accepted;       /* send: values taken for good */
    uint32_t first_lost;     /* send: the lowest batch place of a value that
                                will not be taken (total while none); the
                                answer's `accepted` is this prefix */
    uint32_t inflight;       /* send: deliveries awaiting acknowledgement */
    bool reserve;            /* select: two-phase */
    bool in_order;           /* select: the cases' order is the client's
                                choice (else the core draws one) */
    uint64_t prio;           /* reserve: who of two reserving ops leads */
    bool committed;          /* a receive reservation committed: its sender
                                is asked next (RETRY if it went) */
    bool frozen;             /* held by another op's reservation */
    core_op_t *holder;       /* frozen: the reservation holding us */
    core_case_t *held;       /* reserved on an unbuffered channel: the
                                partner case we hold (a receiver for a
                                send reservation, a sender for a receive
                                reservation), or NULL */
    core_chan_t *slot;       /* the channel whose buffer slot we reserved,
                                or NULL (kept here, not found through
                                chosen: shutdown fails the op first) */
    uint64_t refused_len;    /* TOO_LARGE: the length of the value refused */
    size_t ncase;
    core_case_t cases[];
};

struct core_dlv {
    hnode_t node;            /* sess->dlvs, by delivery id */
    qlink_t order;           /* sess->dlv_order, oldest first */
    qlink_t by_time;         /* core->dlv_all, oldest first */
    uint64_t seq;            /* core-wide delivery order */
    int64_t expires;         /* ack deadline (ms), if lim.ack_wait */
    uint64_t id;
    core_sess_t *sess;
    core_chan_t *ch;
    core_val_t *val;
    core_op_t *owner;        /* unbuffered: the send waiting for our ack */
    int owner_case;
};

struct core_sess {
    core_t *core;
    void *ctx;
    qlink_t all;             /* core->sessions */
    uint64_t next_dlv;
    htable_t ops;
    htable_t dlvs;
    qlink_t dlv_order;
    qlink_t temps;
    size_t pending;
};

/* Bytes a delivery adds to a reply besides its value: tags, lengths, id. */
#define DLV_OVERHEAD 32

struct core {
    core_limits_t lim;
    core_reply_fn reply;
    htable_t chans;
    qlink_t sessions;
    uint64_t nsessions;
    qlink_t detached;        /* ops finishing without a session */
    struct chan_heap deadlines;  /* blocked ops, by deadline (op->dl) */
    uint64_t rng;
    uint64_t temp_seq;
    bool (*temp_ok)(void *ctx, const char *name, size_t len);   /* temporary names */
    void *temp_ctx;
    uint64_t pending, inflight, values_sent, values_received;
    uint64_t value_bytes;    /* held in values, against lim.max_memory */
    int64_t now;             /* the latest time the core was given */
    uint64_t dlv_seq;
    qlink_t dlv_all;         /* every delivery, oldest first: with one
                                ack_wait for all, also by ack deadline */
    uint64_t ack_expired;    /* deliveries given back at their deadline */
    pdeque_t graves;         /* buffers of deleted channels, freed a
                                slice at a time (core_reclaim) */
    size_t graves_vals;      /* values in them */
    const uint64_t *outside; /* bytes held for clients outside the core
                                (queued replies), against lim.max_memory */
    const core_journal_t *jr;/* told every change a restart restores */
    void *jr_ctx;
    uint64_t last_no, last_vid;
    const char *refuse_puts; /* why sends to journaled channels are refused */
    xbulk_t bulk;            /* values being restored are carved from it */
};

static void pump(core_chan_t *ch);

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static uint64_t rng_next(core_t *c)
{
    /* xorshift64*: select only needs fair, fast choices */
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Values are counted against --max-memory from birth to free. */
static core_val_t *val_new(core_t *c, core_bytes_t b)
{
    core_val_t *v = xsmall_alloc(sizeof *v + b.len);
    c->value_bytes += sizeof *v + b.len;
    v->vid = 0;
    v->bulk = 0;
    v->redelivered = 0;
    v->seq = 0;
    v->len = (uint32_t)b.len;
    if (b.len)
        memcpy(v->data, b.data, b.len);
    return v;
}

static void val_free(core_t *c, core_val_t *v)
{
    if (!v)
        return;
    c->value_bytes -= sizeof *v + v->len;
    if (v->bulk)
        xbulk_free(v);
    else
        xsmall_free(v, sizeof *v + v->len);
}

static void vals_free(core_t *c, pdeque_t *d)
{
    core_val_t *v;
    while ((v = pdeque_pop_front(d)))
        val_free(c, v);
    pdeque_free(d);
}

/* A deleted channel's buffer: freed now if small, else later, a slice at a
 * time (a million values take milliseconds to free, and every other
 * client would wait). */
#define FREE_AT_ONCE 1024

static void vals_bury(core_t *c, pdeque_t *d)
{
    if (d->len <= FREE_AT_ONCE) {
        vals_free(c, d);
        return;
    }
    pdeque_t *g = xmalloc(sizeof *g);
    *g = *d;
    pdeque_init(d);
    pdeque_push_back(&c->graves, g);
    c->graves_vals += g->len;
}

size_t core_reclaim(core_t *c, size_t budget)
{
    while (c->graves.len) {
        pdeque_t *g = pdeque_front(&c->graves);
        core_val_t *v;
        while (budget && (v = pdeque_pop_front(g))) {
            val_free(c, v);
            c->graves_vals--;
            budget--;
        }
        if (g->len)
            break;
        pdeque_free(g);
        free(pdeque_pop_front(&c->graves));
    }
    return c->graves_vals;
}

static void reply_plain(core_sess_t *s, uint64_t id, core_status_t st, const char *msg)
{
    core_reply_t r = { .id = id, .status = st, .message = msg, .kind = CORE_R_PLAIN };
    s->core->reply(s->ctx, &r);
}

/* reply_plain with a message that names what it is about (the channel,
 * the limit and its option): clients show it to people as it is. */
__attribute__((format(printf, 4, 5)))
static void reply_fmt(core_sess_t *s, uint64_t id, core_status_t st, const char *fmt, ...)
{
    char msg[384];   /* a 255-byte name and the words around it */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_plain(s, id, st, msg);
}

/* ------------------------------------------------------------------------
 * The journal: what a restart must restore, reported as it happens
 * ------------------------------------------------------------------------ */

static bool journaled_values(const core_chan_t *ch)
{
    return ch->no && ch->cap && ch->core->jr;
}

/* v is now channel ch's: buffered (or back in the buffer) for good. */
static void jr_put(core_chan_t *ch, core_val_t *v)
{
    core_t *c = ch->core;
    if (!journaled_values(ch) || v->vid)
        return;
    v->vid = ++c->last_vid;
    c->jr->put(c->jr_ctx, ch->no, v);
}

static void jr_delivered(core_t *c, const core_val_t *v)
{
    if (v->vid && c->jr)
        c->jr->delivered(c->jr_ctx, v->vid);
}

static void jr_acked(core_t *c, const core_val_t *v)
{
    if (v->vid && c->jr)
        c->jr->acked(c->jr_ctx, v->vid);
}

static void jr_made(core_chan_t *ch)
{
    core_t *c = ch->core;
    if (!c->jr || ch->temp)
        return;
    ch->no = ++c->last_no;
    c->jr->made(c->jr_ctx, ch->no, (core_bytes_t){ ch->name, ch->name_len }, ch->cap);
}

/* A send to ch cannot be made durable now: answered BUSY. */
static bool puts_refused(core_sess_t *s, uint64_t id, const core_chan_t *ch)
{
    if (!s->core->refuse_puts || !journaled_values(ch))
        return false;
    reply_plain(s, id, CORE_ST_BUSY, s->core->refuse_puts);
    return true;
}

void core_set_journal(core_t *c, const core_journal_t *j, void *ctx)
{
    c->jr = j;
    c->jr_ctx = ctx;
}

void core_refuse_puts(core_t *c, const char *why)
{
    c->refuse_puts = why;
}

/* ------------------------------------------------------------------------
 * Channels
 * ------------------------------------------------------------------------ */

static bool chan_name_eq(const hnode_t *n, const void *key)
{
    const core_chan_t *ch = (const core_chan_t *)n;
    const core_bytes_t *k = key;
    return ch->name_len == k->len && memcmp(ch->name, k->data, k->len) == 0;
}

static core_chan_t *chan_lookup(const core_t *c, core_bytes_t name)
{
    return (core_chan_t *)htable_find(&c->chans, chand_hash_bytes(name.data, name.len),
                                      chan_name_eq, &name);
}

static core_chan_t *chan_create(core_t *c, core_bytes_t name, uint64_t cap)
{
    core_chan_t *ch = xcalloc(1, sizeof *ch);
    ch->core = c;
    ch->name = xmalloc(name.len + 1);
    memcpy(ch->name, name.data, name.len);
    ch->name[name.len] = 0;
    ch->name_len = name.len;
    ch->cap = cap;
    pdeque_init(&ch->buf);
    qlist_init(&ch->sendq);
    qlist_init(&ch->recvq);
    qlist_init(&ch->owner_link);
    ch->refs = 1;   /* the name table */
    ch->node.hash = chand_hash_bytes(name.data, name.len);
    htable_insert(&c->chans, &ch->node);
    return ch;
}

static void chan_unref(core_chan_t *ch)
{
    if (--ch->refs)
        return;
    vals_free(ch->core, &ch->buf);
    free(ch->name);
    free(ch);
}

static uint64_t chan_space(const core_chan_t *ch)
{
    uint64_t used = ch->buf.len + ch->reserved;
    return used < ch->cap ? ch->cap - used : 0;
}

/* Its buffer, its queues, its reserved slots, its closing, or the freezing
 * of an op waiting on it changed: a non-blocking select that saw it not
 * ready must not take that for still true (see the versions of a
 * SelectReply). */
static inline void chan_touch(core_chan_t *ch)
{
    ch->version++;
}

static void op_touch(core_op_t *op)
{
    for (size_t i = 0; i < op->ncase; i++)
        if (op->cases[i].queued)
            chan_touch(op->cases[i].ch);
}

/* ------------------------------------------------------------------------
 * The deadline heap
 * ------------------------------------------------------------------------ */

static void heap_add(core_t *c, core_op_t *op)
{
    if (chan_heap_push(&c->deadlines, &op->dl) < 0)
        xoom((c->deadlines.cap ? 2 * c->deadlines.cap : 64) * sizeof *c->deadlines.v);
}

static void heap_del(core_t *c, core_op_t *op)
{
    chan_heap_remove(&c->deadlines, &op->dl);
}

/* ------------------------------------------------------------------------
 * Ops and cases
 * ------------------------------------------------------------------------ */

static bool op_id_eq(const hnode_t *n, const void *key)
{
    return ((const core_op_t *)n)->id == *(const uint64_t *)key;
}

static core_op_t *op_lookup(const core_sess_t *s, uint64_t id)
{
    return (core_op_t *)htable_find(&s->ops, chand_hash_u64(id), op_id_eq, &id);
}

static core_op_t *op_new(core_sess_t *s, uint64_t id, enum op_kind kind, size_t ncase,
                         int64_t timeout_ms, int64_t now)
{
    core_set_now(s->core, now);
    core_op_t *op = xcalloc(1, sizeof *op + ncase * sizeof(core_case_t));
    op->core = s->core;
    op->sess = s;
    op->id = op->reply_id = id;
    op->kind = kind;
    op->state = OP_WAITING;
    op->dl.key = timeout_ms < 0 ? -1 : now + timeout_ms;
    chan_heap_node_init(&op->dl);
    op->fail = CORE_ST_OK;
    op->chosen = -1;
    op->nonblocking = timeout_ms == 0;
    qlist_init(&op->dlink);
    op->ncase = ncase;
    op->node.hash = chand_hash_u64(id);
    htable_insert(&s->ops, &op->node);
    s->pending++;
    s->core->pending++;
    return op;
}

static void case_init(core_case_t *cs, core_op_t *op, int index, core_chan_t *ch, bool send)
{
    qlist_init(&cs->link);
    cs->op = op;
    cs->index = index;
    cs->ch = ch;
    cs->send = send;
    cs->max = 1;
    cs->max_bytes = UINT64_MAX;
    pdeque_init(&cs->vals);
    ch->refs++;
}

static void case_enqueue(core_case_t *cs, bool front)
{
    if (cs->queued)
        return;
    qlink_t *q = cs->send ? &cs->ch->sendq : &cs->ch->recvq;
    if (front)
        qlist_push_front(q, &cs->link);
    else
        qlist_push_back(q, &cs->link);
    cs->queued = true;
    chan_touch(cs->ch);
    if (cs->send)
        cs->ch->nsend++;
    else
        cs->ch->nrecv++;
}

static void case_dequeue(core_case_t *cs)
{
    if (!cs->queued)
        return;
    qlist_remove(&cs->link);
    cs->queued = false;
    chan_touch(cs->ch);
    if (cs->send)
        cs->ch->nsend--;
    else
        cs->ch->nrecv--;
}

/* Forget an op: no longer pending anywhere.  Its values are dropped (they
 * were never accepted) and its channels unreferenced. */
static void op_free(core_op_t *op)
{
    core_t *c = op->core;
    if (op->slot) {   /* only at shutdown: reservations are resolved first */
        op->slot->reserved--;
        chan_touch(op->slot);
        op->slot = NULL;
    }
    for (size_t i = 0; i < op->ncase; i++) {
        core_case_t *cs = &op->cases[i];
        case_dequeue(cs);
        vals_free(cs->ch->core, &cs->vals);
        free(cs->out);
        chan_unref(cs->ch);
    }
    if (op->holder)
        op->holder->held = NULL;
    if (op->held) {
        op->held->op->frozen = false;
        op_touch(op->held->op);
        op->held->op->holder = NULL;
    }
    heap_del(c, op);
    qlist_remove(&op->dlink);
    if (op->sess) {
        htable_remove(&op->sess->ops, &op->node);
        op->sess->pending--;
    }
    c->pending--;
    free(op);
}

/* A frozen op that fails (cancelled, timed out, its session gone) leaves
 * at once: it does not wait for the reservation holding it, which finds
 * its partner gone when it commits (RETRY).  Nothing then ever waits on a
 * frozen op. */
static void unhold(core_op_t *op)
{
    if (op->frozen && op->holder)
        op->holder->held = NULL;
    op->holder = NULL;
    if (op->frozen)
        op_touch(op);
    op->frozen = false;
}

/* Detach an op from its session: it finishes its work (a send waiting for
 * acknowledgements) but answers nobody. */
static void op_detach(core_op_t *op)
{
    core_sess_t *s = op->sess;
    if (!s)
        return;
    htable_remove(&s->ops, &op->node);
    s->pending--;
    op->sess = NULL;
    qlist_push_back(&op->core->detached, &op->dlink);
}

/* Put a send whose value came back under its deadline again. */
static void op_rearm(core_op_t *op)
{
    if (op->dl.key >= 0 && !chan_heap_linked(&op->dl))
        heap_add(op->core, op);
}

/* Select: the chosen case is decided, take the others out of their queues. */
static void op_decide(core_op_t *op, int index)
{
    op->chosen = index;
    for (size_t i = 0; i < op->ncase; i++) {
        if ((int)i == index)
            continue;
        case_dequeue(&op->cases[i]);
        vals_free(op->core, &op->cases[i].vals);
    }
}

/* Answer a finished op and free it. */
static void op_finish(core_op_t *op, core_status_t st, const char *msg)
{
    core_sess_t *s = op->sess;
    if (s) {
        core_reply_t r = { .id = op->reply_id, .status = st, .message = msg };
        core_case_t *cs = op->chosen >= 0 ? &op->cases[op->chosen] : NULL;
        switch (op->kind) {
        case OP_SEND:
            r.kind = CORE_R_SEND;
            r.accepted = op->accepted == op->total ? op->total : op->first_lost;
            break;
        case OP_RECV:
            r.kind = CORE_R_RECV;
            r.ndlv = op->cases[0].nout;
            r.dlv = op->cases[0].out;
            break;
        case OP_SELECT:
            /* a send's Commit gets a plain answer, a receive's Commit the
             * select's (with the value) */
            r.kind = op->reply_id != op->id && (!cs || cs->send) ? CORE_R_PLAIN : CORE_R_SELECT;
            r.index = op->chosen;
            r.value_len = op->refused_len;
            if (cs && !cs->send) {
                r.ndlv = cs->nout;
                r.dlv = cs->out;
            }
            break;
        }
        /* a look that found nothing says what it saw, for the client to
         * check that nothing changed when it looks again */
        uint64_t versions[op->kind == OP_SELECT && op->ncase ? op->ncase : 1];
        if (op->kind == OP_SELECT && op->nonblocking && st == CORE_ST_TIMEOUT) {
            for (size_t i = 0; i < op->ncase; i++)
                versions[i] = op->cases[i].ch->version;
            r.nversions = op->ncase;
            r.versions = versions;
        }
        s->core->reply(s->ctx, &r);
    }
    op_free(op);
}

/* A send op is done when nothing is left to hand on (or it may hand on no
 * more) and no delivery of its values awaits an acknowledgement. */
static bool send_done(const core_op_t *op)
{
    if (op->inflight || op->state != OP_WAITING)
        return false;
    int i = op->kind == OP_SELECT ? op->chosen : 0;
    if (op->fail != CORE_ST_OK)
        return true;   /* what it had not handed on was dropped */
    return i >= 0 && op->cases[i].vals.len == 0;
}

static const char *status_text(core_status_t st)
{
    switch (st) {
    case CORE_ST_CLOSED: return "channel closed";
    case CORE_ST_TIMEOUT: return "deadline passed";
    case CORE_ST_CANCELED: return "canceled";
    case CORE_ST_SHUTTING_DOWN: return "server shutting down";
    case CORE_ST_RETRY: return "the other side went away: select again";
    case CORE_ST_MOVED: return "the channel's slot is moving to another group";
    default: return NULL;
    }
}

static void send_maybe_finish(core_op_t *op)
{
    if (!send_done(op))
        return;
    /* every value taken: a success, even if the deadline passed meanwhile */
    core_status_t st = op->accepted == op->total ? CORE_ST_OK : op->fail;
    if (op->kind == OP_SELECT && st != CORE_ST_OK && st != CORE_ST_CLOSED)
        op->chosen = -1;   /* no case took effect */
    op_finish(op, st, status_text(st));
}

/* A committed two-phase send (a reserving select's) lost its receiver
 * before its value was taken: nothing was sent, and the select must be
 * free to choose again rather than wait on this one case.  RETRY. */
static void send_retry(core_op_t *op)
{
    core_case_t *cs = &op->cases[op->chosen];
    case_dequeue(cs);
    vals_free(op->core, &cs->vals);
    if (op->fail == CORE_ST_OK)
        op->fail = CORE_ST_RETRY;
    send_maybe_finish(op);
}

static bool two_phase_send(const core_op_t *op)
{
    return op->kind == OP_SELECT && op->reserve && op->chosen >= 0 && op->cases[op->chosen].send;
}

/* Values of send op that will never be taken: dropped, and the answer's
 * prefix (`accepted`) ends before the first of them.  Values of a batch may
 * be taken out of order (several receivers share it and one gives its value
 * back), so the prefix is the lowest place lost, not a count. */
static void send_lose(core_op_t *op, core_val_t *v)
{
    if (v->seq < op->first_lost)
        op->first_lost = v->seq;
    val_free(op->core, v);
}

static void send_lose_all(core_op_t *op, core_case_t *cs)
{
    core_val_t *v;
    while ((v = pdeque_pop_front(&cs->vals)))
        send_lose(op, v);
    pdeque_free(&cs->vals);
}

/* The op can accept no more values (timeout, cancel, close, shutdown, or its
 * session went away): take it out of every queue, drop what it had not
 * handed on, and answer now or once its deliveries are resolved (a value out
 * to a receiver before the deadline may still be taken after it). */
static void op_fail(core_op_t *op, core_status_t st)
{
    if (op->fail == CORE_ST_OK)
        op->fail = st;
    heap_del(op->core, op);
    for (size_t i = 0; i < op->ncase; i++) {
        core_case_t *cs = &op->cases[i];
        case_dequeue(cs);
        send_lose_all(op, cs);
    }
    if (op->inflight)
        return;   /* answered when the last delivery is resolved */
    if (op->kind == OP_SELECT && op->fail != CORE_ST_CLOSED)
        op->chosen = -1;
    if (op->kind == OP_SEND || (op->kind == OP_SELECT && op->chosen >= 0 && op->cases[op->chosen].send))
        send_maybe_finish(op);
    else
        op_finish(op, op->fail, status_text(op->fail));
}

/* ------------------------------------------------------------------------
 * Deliveries
 * ------------------------------------------------------------------------ */

static bool dlv_id_eq(const hnode_t *n, const void *key)
{
    return ((const core_dlv_t *)n)->id == *(const uint64_t *)key;
}

/* Room for n more deliveries in r->out. */
static void case_reserve(core_case_t *r, size_t n)
{
    if (r->nout + n <= r->outcap)
        return;
    size_t cap = r->outcap ? r->outcap : 1;
    while (cap < r->nout + n)
        cap *= 2;
    r->out = xrealloc(r->out, cap * sizeof *r->out);
    r->outcap = cap;
}

static void case_collect(core_case_t *r, uint64_t id, const core_val_t *v)
{
    case_reserve(r, 1);
    r->out[r->nout].id = id;
    r->out[r->nout].val = v;
    r->nout++;
}

/* Hand value v of channel ch to receiving case r.  owner is the unbuffered
 * send that waits for the acknowledgement, or NULL for a buffered value. */
static void deliver(core_case_t *r, core_val_t *v, core_op_t *owner, int owner_case)
{
    core_sess_t *s = r->op->sess;
    core_chan_t *ch = r->ch;
    core_dlv_t *d = xsmall_alloc(sizeof *d);
    d->id = ++s->next_dlv;
    d->seq = ++s->core->dlv_seq;
    d->expires = s->core->now + s->core->lim.ack_wait;
    qlist_push_back(&s->core->dlv_all, &d->by_time);
    d->sess = s;
    d->ch = ch;
    d->val = v;
    d->owner = owner;
    d->owner_case = owner_case;
    d->node.hash = chand_hash_u64(d->id);
    htable_insert(&s->dlvs, &d->node);
    qlist_push_back(&s->dlv_order, &d->order);
    ch->refs++;
    ch->inflight++;
    ch->core->inflight++;
    if (owner)
        owner->inflight++;
    jr_delivered(ch->core, v);
    case_collect(r, d->id, v);
}

static void dlv_free(core_dlv_t *d)
{
    htable_remove(&d->sess->dlvs, &d->node);
    qlist_remove(&d->order);
    qlist_remove(&d->by_time);
    d->ch->inflight--;
    d->ch->core->inflight--;
    chan_unref(d->ch);
    xsmall_free(d, sizeof *d);
}

/* The value of d was taken for good. */
static void dlv_ack(core_dlv_t *d)
{
    core_chan_t *ch = d->ch;
    core_op_t *owner = d->owner;
    ch->received++;
    ch->core->values_received++;
    jr_acked(ch->core, d->val);
    val_free(ch->core, d->val);
    if (owner) {
        ch->sent++;
        ch->core->values_sent++;
        owner->inflight--;
        owner->accepted++;
    }
    dlv_free(d);
    if (owner)
        send_maybe_finish(owner);
}

/* The value of d comes back: to the head of its sender's values (unbuffered)
 * or of the channel's buffer.  The caller then pumps the channel (after
 * returning the rest of a batch: see dlv_return_all). */
static void dlv_return(core_dlv_t *d, bool redelivered)
{
    core_chan_t *ch = d->ch;
    core_op_t *owner = d->owner;
    core_val_t *v = d->val;
    int owner_case = d->owner_case;
    if (redelivered)
        v->redelivered++;
    ch->refs++;
    dlv_free(d);
    chan_touch(ch);   /* a value is back, to its buffer or its sender */
    if (owner) {
        owner->inflight--;
        core_case_t *cs = &owner->cases[owner_case];
        if (!redelivered && two_phase_send(owner) && owner->fail == CORE_ST_OK &&
            !ch->closed) {
            /* its receiver gave the value back: it chose another case */
            val_free(ch->core, v);
            send_retry(owner);
        } else if (owner->fail != CORE_ST_OK || ch->closed) {
            /* the sender can take no more: the value is reported unsent */
            send_lose(owner, v);
            if (owner->fail == CORE_ST_OK)
                owner->fail = CORE_ST_CLOSED;
            send_maybe_finish(owner);
        } else if (ch->cap) {
            /* a buffered channel hands values straight from a sender only
             * while reservations hold its free slots; back, the value is
             * the channel's oldest: it goes to the head of the buffer, ahead
             * of what was buffered meanwhile (its sender's queue is behind
             * that), and the send has it there */
            pdeque_push_front(&ch->buf, v);
            jr_put(ch, v);
            ch->sent++;
            ch->core->values_sent++;
            owner->accepted++;
            send_maybe_finish(owner);
        } else {
            pdeque_push_front(&cs->vals, v);
            case_enqueue(cs, true);   /* it was first in line */
            op_rearm(owner);
        }
    } else if (ch->deleted) {
        val_free(ch->core, v);
    } else {
        pdeque_push_front(&ch->buf, v);
        chan_touch(ch);
    }
    chan_unref(ch);
}

static int dlv_newest_first(const void *a, const void *b)
{
    uint64_t x = (*(core_dlv_t *const *)a)->seq, y = (*(core_dlv_t *const *)b)->seq;
    return (x < y) - (x > y);
}

/* Give back deliveries ds[0..n), each to the head of its channel (or
 * sender), so that they are in their channel in the order they were
 * delivered: newest first, and no channel is pumped before all are back,
 * else a waiting receiver would get the newest first.  Sorts ds. */
static void dlv_return_all(core_dlv_t **ds, size_t n, bool redelivered)
{
    qsort(ds, n, sizeof *ds, dlv_newest_first);
    core_chan_t **chans = xmalloc((n ? n : 1) * sizeof *chans);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && ds[i] == ds[i - 1])
            continue;   /* named twice: given back once */
        chans[k] = ds[i]->ch;
        chans[k++]->refs++;
        dlv_return(ds[i], redelivered);
    }
    for (size_t i = 0; i < k; i++) {
        if (!i || chans[i] != chans[i - 1])
            pump(chans[i]);
        chan_unref(chans[i]);
    }
    free(chans);
}

/* ------------------------------------------------------------------------
 * Matching: pump() makes every possible exchange on one channel
 * ------------------------------------------------------------------------ */

static bool case_active(const core_case_t *cs)
{
    return !cs->op->frozen;
}

/* Are a and b the same select?  One op, or two reserving ops of one
 * select that came over two connections (they share its priority).  A
 * select never meets itself. */
static bool same_select(const core_op_t *a, const core_op_t *b)
{
    return a == b || (a->reserve && b->reserve && a->prio && a->prio == b->prio);
}

/* The first active case of queue q whose op is not (of the select of) `not`. */
static core_case_t *first_active(qlink_t *q, const core_op_t *not)
{
    for (qlink_t *l = q->next; l != q; l = l->next) {
        core_case_t *cs = QLIST_ENTRY(l, core_case_t, link);
        if (case_active(cs) && (!not || !same_select(cs->op, not)))
            return cs;
    }
    return NULL;
}

static bool reserving(const core_case_t *s)
{
    return s->op->reserve && s->op->chosen < 0;
}

/* The receive case r got what it will get: answer it. */
static void recv_finish(core_case_t *r, core_status_t st, const char *msg)
{
    core_op_t *op = r->op;
    if (op->kind == OP_SELECT)
        op_decide(op, r->index);
    else
        op->chosen = 0;
    op_finish(op, st, msg);
}

/* A send case has handed on its last value. */
static void send_case_empty(core_case_t *s)
{
    core_op_t *op = s->op;
    case_dequeue(s);
    if (op->kind == OP_SELECT && op->chosen < 0) {
        heap_del(s->ch->core, op);
        op_decide(op, s->index);
    }
    if (op->kind == OP_SEND || op->chosen >= 0)
        heap_del(s->ch->core, op);
    send_maybe_finish(op);
}

/* Reserving select: hold a buffer slot for send case s. */
static void reserve_slot(core_case_t *s)
{
    core_op_t *op = s->op;
    core_t *c = s->ch->core;
    heap_del(c, op);
    op_decide(op, s->index);
    case_dequeue(s);
    s->ch->reserved++;
    chan_touch(s->ch);
    op->slot = s->ch;
    op->state = OP_RESERVED;
    core_reply_t r = { .id = op->id, .status = CORE_ST_RESERVED,
                       .kind = CORE_R_SELECT, .index = s->index };
    c->reply(op->sess->ctx, &r);
}

/* Reserving select: case `lead` (unbuffered) may meet `partner`, of
 * another op: hold the partner, frozen, and ask lead's client to commit. */
static void reserve_partner(core_case_t *lead, core_case_t *partner)
{
    core_op_t *op = lead->op;
    core_t *c = lead->ch->core;
    heap_del(c, op);
    op_decide(op, lead->index);
    case_dequeue(lead);
    op->held = partner;
    op->state = OP_RESERVED;
    partner->op->frozen = true;
    op_touch(partner->op);
    partner->op->holder = op;
    core_reply_t rep = { .id = op->id, .status = CORE_ST_RESERVED,
                         .kind = CORE_R_SELECT, .index = lead->index };
    c->reply(op->sess->ctx, &rep);
}

/* Reserving send s meets receiver r: is r asked first?  Only another
 * reserving select of higher priority is; a send that cannot wait (timeout
 * 0) always leads, since it cannot be frozen. */
static bool receiver_leads(const core_case_t *s, const core_case_t *r)
{
    return reserving(r) && !s->op->nonblocking && r->op->prio > s->op->prio;
}

/* Reserving send s and receiver r meet on an unbuffered channel. */
static void reserve_pair(core_case_t *s, core_case_t *r)
{
    if (receiver_leads(s, r))
        reserve_partner(r, s);
    else
        reserve_partner(s, r);
}

/* Move the head value of sender s into the buffer (space is known free). */
static void buffer_from_sender(core_case_t *s)
{
    core_chan_t *ch = s->ch;
    core_val_t *v = pdeque_pop_front(&s->vals);
    pdeque_push_back(&ch->buf, v);
    jr_put(ch, v);
    chan_touch(ch);
    ch->sent++;
    ch->core->values_sent++;
    s->op->accepted++;
    if (!s->vals.len)
        send_case_empty(s);
}

/* Fill free buffer space from waiting senders (not of op `not`), in order. */
static bool refill(core_chan_t *ch, const core_op_t *not)
{
    bool moved = false;
    core_case_t *s;
    while (chan_space(ch) && (s = first_active(&ch->sendq, not))) {
        if (reserving(s))
            reserve_slot(s);
        else
            buffer_from_sender(s);
        moved = true;
    }
    return moved;
}

/* The value receiver r would take next, and from whom (sender NULL: the
 * buffer).  NULL if nothing is available to r. */
static core_val_t *next_for(core_chan_t *ch, core_case_t *r, core_case_t **sender)
{
    *sender = NULL;
    if (ch->buf.len)
        return pdeque_front(&ch->buf);
    core_case_t *s = first_active(&ch->sendq, r->op);
    if (!s || reserving(s))
        return NULL;
    *sender = s;
    return pdeque_front(&s->vals);
}

/* Give receiver r everything available, up to its max, and answer it. */
static void serve_receiver(core_case_t *r)
{
    core_chan_t *ch = r->ch;
    core_case_t *s;
    core_val_t *v;
    uint64_t bytes = 0;
    /* room for the buffered values it will take, at once rather than by
     * doubling from one */
    case_reserve(r, ch->buf.len < r->max ? ch->buf.len : r->max);
    while (r->nout < r->max && (v = next_for(ch, r, &s))) {
        if (v->len > r->max_bytes) {
            if (r->nout)
                break;
            r->op->refused_len = v->len;   /* a select reports it (EMSGSIZE's n) */
            char msg[128];   /* the reply goes out before recv_finish returns */
            snprintf(msg, sizeof msg,
                     "value of %u bytes larger than the receiver's buffer of %llu bytes",
                     (unsigned)v->len, (unsigned long long)r->max_bytes);
            recv_finish(r, CORE_ST_TOO_LARGE, msg);
            if (s && two_phase_send(s->op))
                send_retry(s->op);
            return;
        }
        /* a batch must fit in one reply frame */
        bytes += v->len + DLV_OVERHEAD;
        if (r->nout && bytes > ch->core->lim.max_reply)
            break;
        if (!s) {
            pdeque_pop_front(&ch->buf);
            chan_touch(ch);
            deliver(r, v, NULL, -1);
            refill(ch, r->op);
        } else {
            pdeque_pop_front(&s->vals);
            deliver(r, v, s->op, s->index);
            if (!s->vals.len)
                send_case_empty(s);
        }
    }
    recv_finish(r, CORE_ST_OK, NULL);
}

/* Find a receiver and a sender (of different ops) that can meet now. */
static bool find_pair(core_chan_t *ch, core_case_t **rp, core_case_t **sp)
{
    core_case_t *s0 = first_active(&ch->sendq, NULL);
    if (!s0)
        return false;
    for (qlink_t *l = ch->recvq.next; l != &ch->recvq; l = l->next) {
        core_case_t *r = QLIST_ENTRY(l, core_case_t, link);
        if (!case_active(r))
            continue;
        core_case_t *s = !same_select(s0->op, r->op) ? s0 : first_active(&ch->sendq, r->op);
        if (s && reserving(s) && r->op->nonblocking)
            continue;   /* it cannot wait for a commit: not ready for it */
        if (s) {
            *rp = r;
            *sp = s;
            return true;
        }
    }
    return false;
}

/* The channel is closed: fail what waits on it. */
static bool pump_closed(core_chan_t *ch)
{
    core_case_t *cs = first_active(&ch->sendq, NULL);
    if (cs) {
        if (cs->op->kind == OP_SELECT && cs->op->chosen < 0) {
            heap_del(ch->core, cs->op);
            op_decide(cs->op, cs->index);
            case_dequeue(cs);
            vals_free(cs->ch->core, &cs->vals);
            op_finish(cs->op, CORE_ST_CLOSED, "channel closed");
        } else {
            op_fail(cs->op, CORE_ST_CLOSED);
        }
        return true;
    }
    if (ch->buf.len)
        return false;
    cs = first_active(&ch->recvq, NULL);
    if (cs) {
        recv_finish(cs, CORE_ST_CLOSED, "channel closed");
        return true;
    }
    return false;
}

static bool pump_once(core_chan_t *ch)
{
    core_case_t *r, *s;
    /* closed: no send may go through (not even into free buffer space) */
    if (ch->closed && first_active(&ch->sendq, NULL))
        return pump_closed(ch);
    if (ch->buf.len && (r = first_active(&ch->recvq, NULL))) {
        serve_receiver(r);
        return true;
    }
    if (refill(ch, NULL))
        return true;
    if (find_pair(ch, &r, &s)) {
        if (reserving(s))
            reserve_pair(s, r);
        else
            serve_receiver(r);
        return true;
    }
    return ch->closed && pump_closed(ch);
}

static void pump(core_chan_t *ch)
{
    ch->refs++;   /* answering may drop the last other reference */
    while (pump_once(ch))
        ;
    chan_unref(ch);
}

/* ------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------ */

core_t *core_new(const core_limits_t *lim, core_reply_fn reply)
{
    core_t *c = xcalloc(1, sizeof *c);
    c->lim = *lim;
    c->reply = reply;
    htable_init(&c->chans);
    qlist_init(&c->sessions);
    qlist_init(&c->detached);
    qlist_init(&c->dlv_all);
    c->rng = 0x9E3779B97F4A7C15ULL;
    return c;
}

void core_count_outside(core_t *c, const uint64_t *bytes)
{
    c->outside = bytes;
}

void core_seed(core_t *c, uint64_t seed)
{
    c->rng = seed ? seed : 1;
}

core_sess_t *core_sess_new(core_t *c, void *ctx)
{
    core_sess_t *s = xcalloc(1, sizeof *s);
    s->core = c;
    s->ctx = ctx;
    htable_init(&s->ops);
    htable_init(&s->dlvs);
    qlist_init(&s->dlv_order);
    qlist_init(&s->temps);
    qlist_push_back(&c->sessions, &s->all);
    c->nsessions++;
    return s;
}

size_t core_sess_pending(const core_sess_t *s) { return s->pending; }

bool core_sess_waiting(const core_sess_t *s, uint64_t id) { return op_lookup(s, id) != NULL; }
size_t core_sess_inflight(const core_sess_t *s) { return s->dlvs.count; }

static void collect_node(hnode_t *n, void *arg)
{
    pdeque_push_back(arg, n);
}

/* Delete a channel: its name is free again, its buffered values dropped,
 * and everyone waiting on it sees it closed. */
static void chan_delete(core_chan_t *ch)
{
    if (ch->deleted)
        return;
    if (ch->no && ch->core->jr)
        ch->core->jr->deleted(ch->core->jr_ctx, ch->no);
    ch->deleted = true;
    ch->closed = true;
    chan_touch(ch);
    htable_remove(&ch->core->chans, &ch->node);
    qlist_remove(&ch->owner_link);
    ch->owner = NULL;
    vals_bury(ch->core, &ch->buf);
    pump(ch);
    chan_unref(ch);   /* the name table's reference */
}

/* Resolve a reservation held by op: commit (true) or release (false). */
static void reservation_resolve(core_op_t *op, bool commit);

void core_sess_drop(core_sess_t *s)
{
    core_t *c = s->core;
    pdeque_t ops;
    pdeque_init(&ops);
    htable_each(&s->ops, collect_node, &ops);
    /* 1. Every op that waits answers nobody now.  This comes first, so that
     *    releasing the session's reservations (2) cannot hand anything to the
     *    session's own waiting ops.  A send whose values are out lives on,
     *    detached, until they are acknowledged or come back (then they are
     *    dropped: the sender never heard that they were taken). */
    for (size_t i = 0; i < ops.len; i++) {
        core_op_t *op = ops.buf[i];
        if (op->state == OP_RESERVED)
            continue;
        unhold(op);
        op_detach(op);
        op_fail(op, CORE_ST_CANCELED);
    }
    pdeque_free(&ops);
    /* 2. Reservations go back: slots freed, held receivers let go. */
    htable_each(&s->ops, collect_node, &ops);
    for (size_t i = 0; i < ops.len; i++)
        reservation_resolve(ops.buf[i], false);
    pdeque_free(&ops);
    /* 3. Unacknowledged values go back to the heads of their channels, in
     *    the order they were delivered. */
    core_dlv_t **ds = xmalloc((s->dlvs.count ? s->dlvs.count : 1) * sizeof *ds);
    size_t n = 0;
    for (qlink_t *l = s->dlv_order.next; l != &s->dlv_order; l = l->next)
        ds[n++] = QLIST_ENTRY(l, core_dlv_t, order);
    dlv_return_all(ds, n, true);
    free(ds);
    /* 4. Temporary channels go. */
    while (!qlist_empty(&s->temps)) {
        core_chan_t *ch = QLIST_ENTRY(s->temps.next, core_chan_t, owner_link);
        chan_delete(ch);
    }
    htable_free(&s->ops);
    htable_free(&s->dlvs);
    qlist_remove(&s->all);
    c->nsessions--;
    free(s);
}

/* ------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------ */

/* Checks common to blocking requests; false if already answered. */
static bool admit(core_sess_t *s, uint64_t id)
{
    if (op_lookup(s, id)) {
        reply_plain(s, id, CORE_ST_BAD_REQUEST, "request id already pending");
        return false;
    }
    if (s->pending >= s->core->lim.max_pending) {
        reply_plain(s, id, CORE_ST_BUSY, "too many pending requests on this connection");
        return false;
    }
    return true;
}

/* Values may hold at most lim.max_memory bytes: past it, new values are
 * refused (Redis's maxmemory with noeviction) instead of the daemon
 * running out of memory. */
static bool memory_ok(core_sess_t *s, uint64_t id, uint64_t bytes)
{
    core_t *c = s->core;
    uint64_t held = c->value_bytes + (c->outside ? *c->outside : 0);
    if (c->lim.max_memory && held + bytes > c->lim.max_memory) {
        reply_plain(s, id, CORE_ST_BUSY, "memory limit reached (--max-memory)");
        return false;
    }
    return true;
}

static core_chan_t *find_or_answer(core_sess_t *s, uint64_t id, core_bytes_t name)
{
    core_chan_t *ch = chan_lookup(s->core, name);
    if (!ch)
        reply_fmt(s, id, CORE_ST_NOT_FOUND, "no such channel '%.*s'", (int)name.len,
                  (const char *)name.data);
    return ch;
}

static void temp_name(core_t *c, core_sess_t *s, char *out, size_t size)
{
    for (int tries = 0;; tries++) {
        /* unguessable enough that only those told the name use it */
        uint64_t r = rng_next(c) ^ chand_hash_u64((uintptr_t)s ^ ++c->temp_seq);
        snprintf(out, size, "tmp.%016llx.%llu", (unsigned long long)r,
                 (unsigned long long)c->temp_seq);
        if (!c->temp_ok || tries == 1 << 16 || c->temp_ok(c->temp_ctx, out, strlen(out)))
            return;
    }
}

void core_set_temp_filter(core_t *c, bool (*ok)(void *ctx, const char *name, size_t len),
                          void *ctx)
{
    c->temp_ok = ok;
    c->temp_ctx = ctx;
}

void core_open(core_sess_t *s, uint64_t id, core_bytes_t name, bool has_cap,
               uint64_t cap, bool temp, bool no_create)
{
    core_t *c = s->core;
    char tname[64];
    if (temp && !name.len) {
        temp_name(c, s, tname, sizeof tname);
        name.data = (const uint8_t *)tname;
        name.len = strlen(tname);
    }
    if (has_cap && cap > c->lim.max_cap) {
        reply_fmt(s, id, CORE_ST_BAD_REQUEST, "capacity %llu over the limit of %llu",
                  (unsigned long long)cap, (unsigned long long)c->lim.max_cap);
        return;
    }
    core_chan_t *ch = chan_lookup(c, name);
    bool created = false;
    if (ch) {
        if (temp) {
            reply_plain(s, id, CORE_ST_EXISTS, "a channel with that name exists");
            return;
        }
        if (has_cap && cap != ch->cap) {
            reply_fmt(s, id, CORE_ST_EXISTS,
                      "channel '%.*s' exists with capacity %llu, not %llu", (int)name.len,
                      (const char *)name.data, (unsigned long long)ch->cap,
                      (unsigned long long)cap);
            return;
        }
    } else {
        if (no_create) {
            reply_fmt(s, id, CORE_ST_NOT_FOUND, "no such channel '%.*s'", (int)name.len,
                      (const char *)name.data);
            return;
        }
        if (c->chans.count >= c->lim.max_channels) {
            reply_fmt(s, id, CORE_ST_BUSY, "too many channels (--max-channels %llu)",
                      (unsigned long long)c->lim.max_channels);
            return;
        }
        ch = chan_create(c, name, has_cap ? cap : 0);
        created = true;
        if (temp) {
            ch->temp = true;
            ch->owner = s;
            qlist_push_back(&s->temps, &ch->owner_link);
        }
        jr_made(ch);
    }
    core_reply_t r = { .id = id, .status = CORE_ST_OK, .kind = CORE_R_OPEN,
                       .chan = ch, .created = created };
    c->reply(s->ctx, &r);
}

/* Queue a blocking op, or answer TIMEOUT now for a non-blocking one.  Then
 * pump its channels: a partner the poll did not count as ready (a reserving
 * sender) can still meet it. */
static void op_wait(core_op_t *op, int64_t timeout_ms)
{
    if (timeout_ms == 0) {
        op_fail(op, CORE_ST_TIMEOUT);
        return;
    }
    core_sess_t *s = op->sess;
    uint64_t id = op->id;
    size_t n = op->ncase;
    /* Queue the cases in a random order, as Go's select does: of two cases
     * on one channel, the one queued first is served first, and that must
     * not always be case 0. */
    size_t order[n ? n : 1];
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        if (!op->in_order) {
            size_t j = (size_t)(rng_next(op->core) % (i + 1));
            order[i] = order[j];
            order[j] = i;
        }
    }
    core_chan_t *chans[n ? n : 1];
    for (size_t k = 0; k < n; k++) {
        case_enqueue(&op->cases[order[k]], false);
        chans[k] = op->cases[order[k]].ch;
        chans[k]->refs++;
    }
    if (op->dl.key >= 0)
        heap_add(op->core, op);
    for (size_t i = 0; i < n; i++) {
        if (op_lookup(s, id) == op && op->state == OP_WAITING && op->chosen < 0)
            pump(chans[i]);
    }
    for (size_t i = 0; i < n; i++)
        chan_unref(chans[i]);
}

void core_send(core_sess_t *s, uint64_t id, core_bytes_t name,
               const core_bytes_t *vals, size_t n, int64_t timeout_ms, int64_t now)
{
    core_t *c = s->core;
    if (n == 0 || n > c->lim.max_batch) {
        reply_plain(s, id, CORE_ST_BAD_REQUEST, "a send carries 1 to max_batch values");
        return;
    }
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (vals[i].len > c->lim.max_value) {
            reply_fmt(s, id, CORE_ST_TOO_LARGE,
                      "value of %zu bytes over the limit of %llu bytes", vals[i].len,
                      (unsigned long long)c->lim.max_value);
            return;
        }
        bytes += vals[i].len + sizeof(core_val_t);
    }
    if (!admit(s, id) || !memory_ok(s, id, bytes))
        return;
    core_chan_t *ch = find_or_answer(s, id, name);
    if (!ch)
        return;
    if (ch->closed) {
        core_reply_t r = { .id = id, .status = CORE_ST_CLOSED, .message = "channel closed",
                           .kind = CORE_R_SEND };
        c->reply(s->ctx, &r);
        return;
    }
    if (puts_refused(s, id, ch))
        return;
    core_op_t *op = op_new(s, id, OP_SEND, 1, timeout_ms, now);
    op->total = op->first_lost = (uint32_t)n;
    core_case_t *cs = &op->cases[0];
    case_init(cs, op, 0, ch, true);
    pdeque_reserve(&cs->vals, n);
    for (size_t i = 0; i < n; i++) {
        core_val_t *v = val_new(c, vals[i]);
        v->seq = (uint32_t)i;
        pdeque_push_back(&cs->vals, v);
    }
    /* FIFO: join the tail, then let the channel match whatever it can */
    case_enqueue(cs, false);
    pump(ch);
    /* still here with values left: it blocks (or, timeout 0, gives up) */
    op = op_lookup(s, id);
    if (op && op->state == OP_WAITING && op->fail == CORE_ST_OK && op->cases[0].vals.len) {
        if (timeout_ms == 0)
            op_fail(op, CORE_ST_TIMEOUT);
        else
            op_rearm(op);
    }
}

void core_recv(core_sess_t *s, uint64_t id, core_bytes_t name, uint32_t max,
               uint64_t max_bytes, int64_t timeout_ms, int64_t now)
{
    core_t *c = s->core;
    if (max == 0)
        max = 1;
    if (max > c->lim.max_batch) {
        reply_plain(s, id, CORE_ST_BAD_REQUEST, "max over max_batch");
        return;
    }
    if (!admit(s, id))
        return;
    core_chan_t *ch = find_or_answer(s, id, name);
    if (!ch)
        return;
    core_op_t *op = op_new(s, id, OP_RECV, 1, timeout_ms, now);
    core_case_t *cs = &op->cases[0];
    case_init(cs, op, 0, ch, false);
    cs->max = max;
    cs->max_bytes = max_bytes;
    case_enqueue(cs, false);
    pump(ch);
    op = op_lookup(s, id);
    if (op) {
        if (timeout_ms == 0)
            op_fail(op, CORE_ST_TIMEOUT);
        else
            op_rearm(op);
    }
}

void core_close(core_sess_t *s, uint64_t id, core_bytes_t name)
{
    core_chan_t *ch = find_or_answer(s, id, name);
    if (!ch)
        return;
    if (ch->closed) {
        reply_plain(s, id, CORE_ST_CLOSED, "channel already closed");
        return;
    }
    ch->closed = true;
    if (ch->no && ch->core->jr)
        ch->core->jr->closed(ch->core->jr_ctx, ch->no);
    chan_touch(ch);
    pump(ch);
    reply_plain(s, id, CORE_ST_OK, NULL);
}

void core_delete(core_sess_t *s, uint64_t id, core_bytes_t name)
{
    core_chan_t *ch = find_or_answer(s, id, name);
    if (!ch)
        return;
    chan_delete(ch);
    reply_plain(s, id, CORE_ST_OK, NULL);
}

/* Could case cs proceed now? (Go's select poll.) */
static bool case_ready(core_case_t *cs)
{
    core_chan_t *ch = cs->ch;
    if (ch->closed)
        return true;
    if (cs->send)
        return chan_space(ch) || first_active(&ch->recvq, cs->op);
    if (ch->buf.len)
        return true;
    core_case_t *s = first_active(&ch->sendq, cs->op);
    /* a reserving sender can only meet a receive that can wait for it to
     * commit, or one of a reserving select that cannot wait (it leads) */
    return s && (!reserving(s) || (cs->op->reserve && cs->op->nonblocking));
}

/* Run the chosen, ready case of a select now. */
static void select_run(core_op_t *op, core_case_t *cs, int64_t timeout_ms)
{
    core_chan_t *ch = cs->ch;
    if (ch->closed && (cs->send || !ch->buf.len)) {
        op_decide(op, cs->index);
        vals_free(cs->ch->core, &cs->vals);
        op_finish(op, CORE_ST_CLOSED, "channel closed");
        return;
    }
    if (!cs->send) {
        core_case_t *s = ch->buf.len ? NULL : first_active(&ch->sendq, op);
        if (s && reserving(s)) {
            reserve_partner(cs, s);   /* it cannot wait: it leads (case_ready) */
            return;
        }
        /* refill() skips senders of this select (and of its twins over
         * other connections, same prio) while it is served; once it is
         * answered they may go */
        case_enqueue(cs, true);
        ch->refs++;
        serve_receiver(cs);
        pump(ch);
        chan_unref(ch);
        return;
    }
    if (op->reserve) {
        core_case_t *r = first_active(&ch->recvq, op);
        if (chan_space(ch) || !r)
            reserve_slot(cs);
        else if (!receiver_leads(cs, r))
            reserve_partner(cs, r);
        else
            op_wait(op, timeout_ms);   /* pump pairs them, r asked first */
        return;
    }
    /* Decided only when the value moves (send_case_empty): the receiver
     * that made it ready may still refuse it (max_bytes). */
    core_sess_t *s = op->sess;
    uint64_t id = op->id;
    case_enqueue(cs, true);
    pump(ch);
    if (op_lookup(s, id) == op && op->chosen < 0) {
        case_dequeue(cs);
        op_wait(op, timeout_ms);
    }
}

void core_select(core_sess_t *s, uint64_t id, const core_case_req_t *cases, size_t n,
                 bool reserve, uint64_t prio, bool in_order, int64_t timeout_ms, int64_t now)
{
    core_t *c = s->core;
    if (n > c->lim.max_cases) {
        reply_plain(s, id, CORE_ST_BAD_REQUEST, "too many cases");
        return;
    }
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (cases[i].send && cases[i].value.len > c->lim.max_value) {
            reply_fmt(s, id, CORE_ST_TOO_LARGE,
                      "value of %zu bytes over the limit of %llu bytes", cases[i].value.len,
                      (unsigned long long)c->lim.max_value);
            return;
        }
        if (cases[i].send)
            bytes += cases[i].value.len + sizeof(core_val_t);
    }
    if (!admit(s, id) || !memory_ok(s, id, bytes))
        return;
    for (size_t i = 0; i < n; i++) {
        const core_chan_t *ch = find_or_answer(s, id, cases[i].name);
        if (!ch || (cases[i].send && puts_refused(s, id, ch)))
            return;
    }
    core_op_t *op = op_new(s, id, OP_SELECT, n, timeout_ms, now);
    op->reserve = reserve;
    op->in_order = in_order;
    op->prio = prio;
    op->total = 1;
    for (size_t i = 0; i < n; i++) {
        core_case_t *cs = &op->cases[i];
        case_init(cs, op, (int)i, chan_lookup(c, cases[i].name), cases[i].send);
        cs->max_bytes = cases[i].max_bytes;
        if (cs->send)
            pdeque_push_back(&cs->vals, val_new(c, cases[i].value));
    }
    /* uniform among the ready cases, or the first ready one in order */
    size_t start = n && !in_order ? rng_next(c) % n : 0;
    size_t ready = 0;
    core_case_t *pick = NULL;
    for (size_t k = 0; k < n && !(in_order && pick); k++) {
        core_case_t *cs = &op->cases[(start + k) % n];
        if (case_ready(cs) && (in_order || rng_next(c) % ++ready == 0))
            pick = cs;   /* reservoir sampling: uniform among the ready */
    }
    if (pick)
        select_run(op, pick, timeout_ms);
    else
        op_wait(op, timeout_ms);
}

void core_cancel(core_sess_t *s, uint64_t id, uint64_t target)
{
    core_op_t *op = op_lookup(s, target);
    if (!op || op->state != OP_WAITING || op->fail != CORE_ST_OK) {
        reply_plain(s, id, CORE_ST_NOT_FOUND, "no such pending request");
        return;
    }
    unhold(op);   /* its holder's commit will be answered RETRY */
    op_fail(op, CORE_ST_CANCELED);
    reply_plain(s, id, CORE_ST_OK, NULL);
}

/* Let go of the frozen op of case r; returns it. */
static core_op_t *unfreeze(core_case_t *r)
{
    core_op_t *rop = r->op;
    rop->frozen = false;
    op_touch(rop);
    rop->holder = NULL;
    return rop;
}

/* Pump every channel op waits on: after it was frozen, they may have
 * something for it. */
static void pump_op_chans(core_op_t *op)
{
    size_t n = op->ncase;
    core_chan_t *chans[n ? n : 1];
    for (size_t i = 0; i < n; i++) {
        chans[i] = op->cases[i].ch;
        chans[i]->refs++;
    }
    for (size_t i = 0; i < n; i++) {
        pump(chans[i]);
        chan_unref(chans[i]);
    }
}

/* A send reservation is committed or released. */
static void send_resolve(core_op_t *op, bool commit)
{
    core_case_t *cs = &op->cases[op->chosen];
    core_chan_t *ch = cs->ch;
    core_case_t *r = op->held;
    core_op_t *rop = r ? unfreeze(r) : NULL;
    bool had_slot = op->slot != NULL;
    op->held = NULL;
    op->state = OP_WAITING;
    if (op->slot) {
        op->slot = NULL;
        ch->reserved--;
        chan_touch(ch);
    }
    if (rop && rop->committed && !commit && !ch->closed) {
        /* a receive reservation that committed to us: nothing will come */
        op_finish(rop, CORE_ST_RETRY, status_text(CORE_ST_RETRY));
        rop = NULL;
    } else if (rop && commit && !ch->closed) {
        case_dequeue(r);
        case_enqueue(r, true);   /* first in line: it gets our value */
    }
    ch->refs++;
    if (!commit || ch->closed) {
        vals_free(cs->ch->core, &cs->vals);
        if (commit)
            op_finish(op, CORE_ST_CLOSED, "channel closed");
        else
            op_free(op);
    } else if (had_slot) {
        buffer_from_sender(cs);   /* answers the commit */
    } else if (!rop) {
        send_retry(op);   /* the held receiver went away meanwhile */
    } else {
        /* The held receiver gets it now, before its other channels are
         * pumped (one may have a partner for it by now); the commit is
         * answered when it acknowledges (RETRY if it gives it back). */
        case_enqueue(cs, true);
        op_rearm(op);
        serve_receiver(r);
        rop = NULL;   /* answered, perhaps freed */
    }
    if (rop)
        pump_op_chans(rop);
    pump(ch);
    chan_unref(ch);
}

/* A receive reservation (its select led a meeting with a reserving send)
 * is committed or released.  On commit the sender, frozen until now, is
 * asked in turn; the commit is answered with the value once it commits
 * too, or RETRY if it went away or releases. */
static void recv_resolve(core_op_t *op, bool commit)
{
    core_case_t *rc = &op->cases[op->chosen];
    core_chan_t *ch = rc->ch;
    core_case_t *s = op->held;
    core_op_t *sop = s ? unfreeze(s) : NULL;
    op->held = NULL;
    op->state = OP_WAITING;
    ch->refs++;
    if (!commit) {
        op_free(op);
    } else if (ch->closed) {
        case_enqueue(rc, true);   /* pump answers it: what is buffered, or CLOSED */
    } else if (!sop) {
        op_finish(op, CORE_ST_RETRY, status_text(CORE_ST_RETRY));
    } else {
        op->committed = true;
        case_enqueue(rc, true);   /* first in line for the sender's value */
        op_rearm(op);             /* its deadline holds while the sender decides */
        reserve_partner(s, rc);   /* the sender's turn */
        sop = NULL;
    }
    if (sop)
        pump_op_chans(sop);
    pump(ch);
    chan_unref(ch);
}

static void reservation_resolve(core_op_t *op, bool commit)
{
    if (op->cases[op->chosen].send)
        send_resolve(op, commit);
    else
        recv_resolve(op, commit);
}

static core_op_t *reservation_find(core_sess_t *s, uint64_t id, uint64_t target)
{
    core_op_t *op = op_lookup(s, target);
    if (!op || op->state != OP_RESERVED) {
        reply_plain(s, id, CORE_ST_NOT_FOUND, "no such reservation");
        return NULL;
    }
    return op;
}

void core_commit(core_sess_t *s, uint64_t id, uint64_t target, bool has_timeout,
                 int64_t timeout_ms, int64_t now)
{
    core_set_now(s->core, now);
    core_op_t *op = reservation_find(s, id, target);
    if (!op)
        return;
    op->reply_id = id;
    if (has_timeout) {   /* not in the heap while reserved */
        op->dl.key = timeout_ms < 0 ? -1 : now + timeout_ms;
        op->nonblocking = false;
    }
    reservation_resolve(op, true);
}

void core_release(core_sess_t *s, uint64_t id, uint64_t target)
{
    core_op_t *op = reservation_find(s, id, target);
    if (!op)
        return;
    reservation_resolve(op, false);
    reply_plain(s, id, CORE_ST_OK, NULL);
}

static core_dlv_t *dlv_lookup(core_sess_t *s, uint64_t id)
{
    return (core_dlv_t *)htable_find(&s->dlvs, chand_hash_u64(id), dlv_id_eq, &id);
}

bool core_ack(core_sess_t *s, uint64_t delivery)
{
    core_dlv_t *d = dlv_lookup(s, delivery);
    if (!d)
        return false;
    dlv_ack(d);
    return true;
}

size_t core_nack_all(core_sess_t *s, const uint64_t *deliveries, size_t n)
{
    core_dlv_t **ds = xmalloc((n ? n : 1) * sizeof *ds);
    size_t found = 0;
    for (size_t i = 0; i < n; i++)
        if ((ds[found] = dlv_lookup(s, deliveries[i])))
            found++;
    dlv_return_all(ds, found, false);
    free(ds);
    return found;
}

bool core_nack(core_sess_t *s, uint64_t delivery)
{
    return core_nack_all(s, &delivery, 1) == 1;
}

/* ------------------------------------------------------------------------
 * Time and shutdown
 * ------------------------------------------------------------------------ */

void core_set_now(core_t *c, int64_t now)
{
    if (now > c->now)
        c->now = now;
}

int64_t core_next_deadline(const core_t *c)
{
    const struct chan_heap_node *top = chan_heap_top(&c->deadlines);
    int64_t op = top ? top->key : -1;
    if (!c->lim.ack_wait || qlist_empty(&c->dlv_all))
        return op;
    int64_t ack = QLIST_ENTRY(c->dlv_all.next, core_dlv_t, by_time)->expires;
    return op < 0 || ack < op ? ack : op;
}

/* Deliveries unacknowledged past their deadline go back, as if their
 * receivers had gone: all of one expiry together, so that their channels
 * keep the order. */
static void acks_expire(core_t *c, int64_t now)
{
    size_t n = 0;
    for (qlink_t *l = c->dlv_all.next; l != &c->dlv_all; l = l->next, n++)
        if (QLIST_ENTRY(l, core_dlv_t, by_time)->expires > now)
            break;
    if (!n)
        return;
    core_dlv_t **ds = xmalloc(n * sizeof *ds);
    for (size_t i = 0; i < n; i++)
        ds[i] = QLIST_ENTRY(i ? ds[i - 1]->by_time.next : c->dlv_all.next, core_dlv_t, by_time);
    c->ack_expired += n;
    dlv_return_all(ds, n, true);
    free(ds);
}

void core_expire(core_t *c, int64_t now)
{
    core_set_now(c, now);
    struct chan_heap_node *top;
    while ((top = chan_heap_top(&c->deadlines)) && top->key <= now) {
        core_op_t *op = chan_heap_entry(top, core_op_t, dl);
        heap_del(c, op);
        unhold(op);   /* its holder's commit will be answered RETRY */
        op_fail(op, CORE_ST_TIMEOUT);
    }
    if (c->lim.ack_wait)
        acks_expire(c, now);
}

void core_shutdown(core_t *c)
{
    pdeque_t ops;
    pdeque_init(&ops);
    for (qlink_t *l = c->sessions.next; l != &c->sessions; l = l->next) {
        core_sess_t *s = QLIST_ENTRY(l, core_sess_t, all);
        htable_each(&s->ops, collect_node, &ops);
        /* nobody will acknowledge now: values out are the channels' */
        for (qlink_t *d = s->dlv_order.next; d != &s->dlv_order; d = d->next)
            QLIST_ENTRY(d, core_dlv_t, order)->owner = NULL;
    }
    for (qlink_t *l = c->detached.next; l != &c->detached; l = l->next)
        pdeque_push_back(&ops, QLIST_ENTRY(l, core_op_t, dlink));
    for (size_t i = 0; i < ops.len; i++) {
        core_op_t *op = ops.buf[i];
        if (op->held) {
            op->held->op->frozen = false;
            op->held->op->holder = NULL;
            op->held = NULL;
        }
        op->holder = NULL;
        op->frozen = false;
        op->state = OP_WAITING;
        op->inflight = 0;
    }
    for (size_t i = 0; i < ops.len; i++)
        op_fail(ops.buf[i], CORE_ST_SHUTTING_DOWN);
    pdeque_free(&ops);
}

void core_free(core_t *c)
{
    c->jr = NULL;   /* the daemon stops: nothing is deleted for good */
    xbulk_done(&c->bulk);   /* a restore that failed half-way */
    while (!qlist_empty(&c->sessions))
        core_sess_drop(QLIST_ENTRY(c->sessions.next, core_sess_t, all));
    pdeque_t chans;
    pdeque_init(&chans);
    htable_each(&c->chans, collect_node, &chans);
    for (size_t i = 0; i < chans.len; i++)
        chan_delete(chans.buf[i]);
    pdeque_free(&chans);
    core_reclaim(c, SIZE_MAX);
    pdeque_free(&c->graves);
    htable_free(&c->chans);
    chan_heap_free(&c->deadlines);
    free(c);
}

/* ------------------------------------------------------------------------
 * Restoring and dumping the journaled state
 * ------------------------------------------------------------------------ */

core_chan_t *core_restore_chan(core_t *c, core_bytes_t name, uint64_t no, uint64_t cap,
                               bool closed)
{
    if (!no || chan_lookup(c, name))
        return NULL;
    core_chan_t *ch = chan_create(c, name, cap);
    ch->no = no;
    ch->closed = closed;
    if (no > c->last_no)
        c->last_no = no;
    return ch;
}

void core_restore_val(core_chan_t *ch, uint64_t vid, uint32_t redelivered, core_bytes_t data)
{
    core_t *c = ch->core;
    core_val_t *v = xbulk_alloc(&c->bulk, sizeof *v + data.len);
    if (v) {
        c->value_bytes += sizeof *v + data.len;
        v->len = (uint32_t)data.len;
        v->seq = 0;
        if (data.len)
            memcpy(v->data, data.data, data.len);
        v->bulk = 1;
    } else {
        v = val_new(c, data);
    }
    v->vid = vid;
    v->redelivered = redelivered;
    pdeque_push_back(&ch->buf, v);
    if (vid > ch->core->last_vid)
        ch->core->last_vid = vid;
}

void core_restore_done(core_t *c, uint64_t last_no, uint64_t last_vid)
{
    xbulk_done(&c->bulk);
    if (last_no > c->last_no)
        c->last_no = last_no;
    if (last_vid > c->last_vid)
        c->last_vid = last_vid;
}

struct dump_arg {
    void (*fn_chan)(void *, uint64_t, core_bytes_t, uint64_t, bool);
    void (*fn_val)(void *, uint64_t, uint64_t, uint32_t, core_bytes_t);
    void *arg;
};

static void dump_chan(hnode_t *n, void *arg)
{
    const struct dump_arg *a = arg;
    const core_chan_t *ch = (const core_chan_t *)n;
    if (ch->no)
        a->fn_chan(a->arg, ch->no, (core_bytes_t){ ch->name, ch->name_len }, ch->cap, ch->closed);
}

static void dump_buffer(hnode_t *n, void *arg)
{
    const struct dump_arg *a = arg;
    const core_chan_t *ch = (const core_chan_t *)n;
    if (!ch->no)
        return;
    for (size_t i = 0; i < ch->buf.len; i++) {
        const core_val_t *v = pdeque_at(&ch->buf, i);
        if (v->vid)
            a->fn_val(a->arg, ch->no, v->vid, v->redelivered, (core_bytes_t){ v->data, v->len });
    }
}

void core_dump(const core_t *c,
               void (*fn_chan)(void *arg, uint64_t no, core_bytes_t name, uint64_t cap, bool closed),
               void (*fn_val)(void *arg, uint64_t no, uint64_t vid, uint32_t redelivered,
                              core_bytes_t data),
               void *arg, uint64_t *last_no, uint64_t *last_vid)
{
    struct dump_arg a = { fn_chan, fn_val, arg };
    htable_each(&c->chans, dump_chan, &a);
    htable_each(&c->chans, dump_buffer, &a);
    for (const qlink_t *l = c->dlv_all.next; l != &c->dlv_all; l = l->next) {
        const core_dlv_t *d = QLIST_ENTRY(l, core_dlv_t, by_time);
        const core_val_t *v = d->val;
        if (v->vid && d->ch->no && !d->ch->deleted)
            fn_val(arg, d->ch->no, v->vid, v->redelivered + 1, (core_bytes_t){ v->data, v->len });
    }
    *last_no = c->last_no;
    *last_vid = c->last_vid;
}

/* ------------------------------------------------------------------------
 * Moving channels to another group of a cluster (chand_slots.c)
 * ------------------------------------------------------------------------ */

/* The first op waiting on ch (not reserved, not failing already), or NULL. */
static core_op_t *first_waiting(const qlink_t *q)
{
    for (const qlink_t *l = q->next; l != q; l = l->next) {
        core_op_t *op = QLIST_ENTRY(l, core_case_t, link)->op;
        if (op->state == OP_WAITING && op->fail == CORE_ST_OK)
            return op;
    }
    return NULL;
}

size_t core_evict(core_t *c, core_bytes_t name, core_status_t st)
{
    core_chan_t *ch = chan_lookup(c, name);
    size_t n = 0;
    if (!ch)
        return 0;
    /* one at a time: failing an op may settle others on the channel */
    for (;;) {
        core_op_t *op = first_waiting(&ch->sendq);
        if (!op)
            op = first_waiting(&ch->recvq);
        if (!op)
            return n;
        unhold(op);   /* its holder's commit will be answered RETRY */
        op_fail(op, st);
        n++;
    }
}

bool core_chan_settled(const core_chan_t *ch)
{
    return !ch->reserved && !ch->nsend && !ch->nrecv && (ch->cap || !ch->inflight);
}

void core_chan_values(const core_chan_t *ch,
                      void (*fn)(void *arg, core_bytes_t data, uint32_t redelivered), void *arg)
{
    const core_t *c = ch->core;
    if (ch->inflight) {
        for (const qlink_t *l = c->dlv_all.next; l != &c->dlv_all; l = l->next) {
            const core_dlv_t *d = QLIST_ENTRY(l, core_dlv_t, by_time);
            if (d->ch == ch)
                fn(arg, (core_bytes_t){ d->val->data, d->val->len }, d->val->redelivered + 1);
        }
    }
    for (size_t i = 0; i < ch->buf.len; i++) {
        const core_val_t *v = pdeque_at(&ch->buf, i);
        fn(arg, (core_bytes_t){ v->data, v->len }, v->redelivered);
    }
}

core_chan_t *core_adopt_chan(core_t *c, core_bytes_t name, uint64_t cap)
{
    core_chan_t *ch = chan_lookup(c, name);
    if (ch)
        return ch->temp ? NULL : ch;
    ch = chan_create(c, name, cap);
    jr_made(ch);
    return ch;
}

void core_adopt_val(core_chan_t *ch, core_bytes_t data, uint32_t redelivered)
{
    core_val_t *v = val_new(ch->core, data);
    v->redelivered = redelivered;
    pdeque_push_back(&ch->buf, v);
    jr_put(ch, v);
    chan_touch(ch);
}

void core_adopt_end(core_chan_t *ch, bool closed)
{
    if (closed && !ch->closed) {
        ch->closed = true;
        if (ch->no && ch->core->jr)
            ch->core->jr->closed(ch->core->jr_ctx, ch->no);
        chan_touch(ch);
    }
    pump(ch);
}

bool core_drop(core_t *c, core_bytes_t name, core_status_t st)
{
    core_chan_t *ch = chan_lookup(c, name);
    if (!ch || ch->temp)
        return false;
    core_evict(c, name, st);
    chan_delete(ch);
    return true;
}

/* ------------------------------------------------------------------------
 * Inspection
 * ------------------------------------------------------------------------ */

void *core_chan_owner(const core_chan_t *ch)
{
    return ch->temp && ch->owner && !ch->deleted ? ch->owner->ctx : NULL;
}

const core_chan_t *core_find(const core_t *c, core_bytes_t name)
{
    return chan_lookup(c, name);
}

void core_chan_info(const core_chan_t *ch, core_chan_info_t *out)
{
    out->name.data = ch->name;
    out->name.len = ch->name_len;
    out->len = ch->buf.len;
    out->cap = ch->cap;
    out->senders = ch->nsend;
    out->receivers = ch->nrecv;
    out->inflight = ch->inflight;
    out->sent = ch->sent;
    out->received = ch->received;
    out->closed = ch->closed;
    out->temp = ch->temp;
}

struct each_arg {
    void (*fn)(const core_chan_t *, void *);
    void *arg;
};

static void each_chan(hnode_t *n, void *arg)
{
    struct each_arg *a = arg;
    a->fn((const core_chan_t *)n, a->arg);
}

void core_each_chan(const core_t *c, void (*fn)(const core_chan_t *ch, void *arg), void *arg)
{
    struct each_arg a = { fn, arg };
    htable_each(&c->chans, each_chan, &a);
}

uint64_t core_scan_chans(const core_t *c, uint64_t cursor,
                         void (*fn)(const core_chan_t *ch, void *arg), void *arg)
{
    struct each_arg a = { fn, arg };
    return htable_scan(&c->chans, cursor, each_chan, &a);
}

void core_info(const core_t *c, core_info_t *out)
{
    out->channels = c->chans.count;
    out->sessions = c->nsessions;
    out->pending = c->pending;
    out->inflight = c->inflight;
    out->values_sent = c->values_sent;
    out->values_received = c->values_received;
    out->value_bytes = c->value_bytes;
    out->ack_expired = c->ack_expired;
}

/* ------------------------------------------------------------------------
 * Audit: the invariants at the top of this file, checked by a walk of
 * everything (tests and fuzzers call it after each step)
 * ------------------------------------------------------------------------ */

struct audit {
    const core_t *c;
    void (*fn)(const core_value_at_t *at, void *arg);
    void *arg;
    const char *bad;         /* the first invariant found broken */
    pdeque_t ops, dlvs;      /* every op and delivery */
    uint64_t bytes;          /* of the values found */
    uint64_t queued;         /* cases queued on named channels, as the ops
                                count them less as the channels do: 0 */
};

static void audit_check(struct audit *a, bool ok, const char *what)
{
    if (!ok && !a->bad)
        a->bad = what;
}

static void audit_value(struct audit *a, const core_val_t *v, enum core_place place,
                        const core_chan_t *ch, void *ctx, uint64_t id, int index)
{
    a->bytes += sizeof *v + v->len;
    if (a->fn) {
        core_value_at_t at = { v, place, ch, ctx, id, index };
        a->fn(&at, a->arg);
    }
}

static bool audit_has(const pdeque_t *d, const void *p)
{
    for (size_t i = 0; i < d->len; i++)
        if (d->buf[i] == p)
            return true;
    return false;
}

/* The cases of queue q: all queued, of this channel, of known ops. */
static uint64_t audit_queue(struct audit *a, const core_chan_t *ch, const qlink_t *q, bool send)
{
    uint64_t n = 0;
    for (const qlink_t *l = q->next; l != q; l = l->next, n++) {
        const core_case_t *cs = QLIST_ENTRY(l, core_case_t, link);
        audit_check(a, cs->queued && cs->send == send && cs->ch == ch,
                    "a queue holds a case that is not queued there");
        audit_check(a, audit_has(&a->ops, cs->op), "a queue holds a case of an unknown op");
    }
    return n;
}

/* pump()'s promise: no active waiting receiver has a partner on ch. */
static void audit_no_partner(struct audit *a, core_chan_t *ch)
{
    core_case_t *s = first_active(&ch->sendq, NULL);
    audit_check(a, !s || !chan_space(ch), "a sender waits while the buffer has room");
    audit_check(a, !s || !ch->closed, "a sender waits on a closed channel");
    for (qlink_t *l = ch->recvq.next; l != &ch->recvq; l = l->next) {
        core_case_t *r = QLIST_ENTRY(l, core_case_t, link);
        if (!case_active(r))
            continue;
        audit_check(a, !ch->buf.len, "a receiver waits while values are buffered");
        audit_check(a, !ch->closed, "a receiver waits on a closed, drained channel");
        core_case_t *p = first_active(&ch->sendq, r->op);
        audit_check(a, !p || (reserving(p) && r->op->nonblocking),
                    "a receiver waits while a sender of another op waits");
    }
}

static void audit_chan(hnode_t *n, void *arg)
{
    struct audit *a = arg;
    core_chan_t *ch = (core_chan_t *)n;
    audit_check(a, !ch->deleted && ch->refs >= 1, "a deleted channel is still named");
    audit_check(a, audit_queue(a, ch, &ch->sendq, true) == ch->nsend &&
                   audit_queue(a, ch, &ch->recvq, false) == ch->nrecv,
                "a queue's length differs from its count");
    a->queued -= ch->nsend + ch->nrecv;   /* counted up from the ops' side */
    for (size_t i = 0; i < ch->buf.len; i++)
        audit_value(a, pdeque_at(&ch->buf, i), CORE_IN_BUFFER, ch, NULL,
                    0, -1);
    uint64_t inflight = 0, reserved = 0;
    for (size_t i = 0; i < a->dlvs.len; i++)
        inflight += ((core_dlv_t *)a->dlvs.buf[i])->ch == ch;
    for (size_t i = 0; i < a->ops.len; i++)
        reserved += ((core_op_t *)a->ops.buf[i])->slot == ch;
    audit_check(a, inflight == ch->inflight, "a channel's inflight differs from its deliveries");
    audit_check(a, reserved == ch->reserved, "a channel's reserved slots differ from its holders");
    audit_no_partner(a, ch);
}

static void audit_op(struct audit *a, core_op_t *op)
{
    const core_t *c = a->c;
    audit_check(a, !chan_heap_linked(&op->dl) ||
                       (op->dl.idx < c->deadlines.len && c->deadlines.v[op->dl.idx] == &op->dl),
                "an op's place in the deadline heap is wrong");
    audit_check(a, op->state != OP_RESERVED || (!chan_heap_linked(&op->dl) && op->chosen >= 0),
                "a reservation is in the deadline heap, or has no case");
    audit_check(a, !op->slot || op->state == OP_RESERVED, "an op holds a slot, not reserved");
    audit_check(a, op->frozen == (op->holder != NULL), "a freeze without a holder");
    audit_check(a, !op->holder || (op->holder->held && op->holder->held->op == op),
                "a frozen op's holder does not hold it");
    audit_check(a, !op->held || op->held->op->holder == op, "a held op is not frozen by us");
    uint64_t inflight = 0;
    for (size_t i = 0; i < a->dlvs.len; i++)
        inflight += ((core_dlv_t *)a->dlvs.buf[i])->owner == op;
    audit_check(a, inflight == op->inflight, "an op's inflight differs from its deliveries");
    audit_check(a, op->sess || op->inflight, "a detached op lives on with nothing out");
    void *ctx = op->sess ? op->sess->ctx : NULL;
    for (size_t i = 0; i < op->ncase; i++) {
        core_case_t *cs = &op->cases[i];
        audit_check(a, cs->op == op && cs->index == (int)i, "a case does not know its op");
        audit_check(a, cs->send || !cs->vals.len, "a receive case holds values");
        audit_check(a, op->sess || !cs->queued, "a detached op still waits");
        if (cs->queued && cs->ch->deleted)
            audit_check(a, op->frozen, "an active case waits on a deleted channel");
        else if (cs->queued)
            a->queued++;
        for (size_t k = 0; k < cs->vals.len; k++)
            audit_value(a, pdeque_at(&cs->vals, k), CORE_IN_SENDER,
                        cs->ch, ctx, op->id, (int)i);
    }
}

static void audit_sess(struct audit *a, const core_sess_t *s)
{
    size_t nops = a->ops.len;
    htable_each(&s->ops, collect_node, &a->ops);
    audit_check(a, a->ops.len - nops == s->pending, "a session's pending differs from its ops");
    size_t n = 0;
    for (const qlink_t *l = s->dlv_order.next; l != &s->dlv_order; l = l->next, n++) {
        core_dlv_t *d = QLIST_ENTRY(l, core_dlv_t, order);
        audit_check(a, d->sess == s && d->id <= s->next_dlv, "a delivery of another session");
        pdeque_push_back(&a->dlvs, d);
    }
    audit_check(a, n == s->dlvs.count, "a session's deliveries differ from its list");
}

/* Every delivery is on the core's list, oldest first (ack deadlines). */
static void audit_dlv_all(struct audit *a)
{
    size_t n = 0;
    const core_dlv_t *prev = NULL;
    for (const qlink_t *l = a->c->dlv_all.next; l != &a->c->dlv_all; l = l->next, n++) {
        const core_dlv_t *d = QLIST_ENTRY(l, core_dlv_t, by_time);
        audit_check(a, !prev || (prev->seq < d->seq && prev->expires <= d->expires),
                    "the deliveries are not in the order they were made");
        prev = d;
    }
    audit_check(a, n == a->dlvs.len, "the list of all deliveries differs from the sessions'");
}

/* Buffers of deleted channels not freed yet. */
static void audit_graves(struct audit *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->c->graves.len; i++) {
        const pdeque_t *g = pdeque_at(&a->c->graves, i);
        for (size_t k = 0; k < g->len; k++, n++)
            audit_value(a, pdeque_at(g, k), CORE_IN_GRAVE, NULL, NULL, 0, -1);
    }
    audit_check(a, n == a->c->graves_vals, "graves_vals differs from the values buried");
}

const char *core_audit(const core_t *c, void (*fn)(const core_value_at_t *at, void *arg),
                       void *arg)
{
    struct audit a = { .c = c, .fn = fn, .arg = arg };
    pdeque_init(&a.ops);
    pdeque_init(&a.dlvs);
    uint64_t nsess = 0;
    for (const qlink_t *l = c->sessions.next; l != &c->sessions; l = l->next, nsess++)
        audit_sess(&a, QLIST_ENTRY(l, core_sess_t, all));
    for (const qlink_t *l = c->detached.next; l != &c->detached; l = l->next)
        pdeque_push_back(&a.ops, QLIST_ENTRY(l, core_op_t, dlink));
    audit_check(&a, nsess == c->nsessions, "the session count is wrong");
    audit_check(&a, a.ops.len == c->pending, "the pending count differs from the ops");
    audit_check(&a, a.dlvs.len == c->inflight, "the inflight count differs from the deliveries");
    audit_dlv_all(&a);
    audit_graves(&a);
    for (size_t i = 0; i < a.ops.len; i++)
        audit_op(&a, a.ops.buf[i]);
    for (size_t i = 0; i < a.dlvs.len; i++) {
        core_dlv_t *d = a.dlvs.buf[i];
        audit_check(&a, !d->owner || audit_has(&a.ops, d->owner), "a delivery of an unknown op");
        audit_value(&a, d->val, CORE_IN_DELIVERY, d->ch, d->sess->ctx, d->id, -1);
    }
    htable_each(&c->chans, audit_chan, &a);
    audit_check(&a, a.queued == 0, "queued cases differ from the channels' queues");
    audit_check(&a, chan_heap_valid(&c->deadlines), "the deadline heap is broken");
    for (size_t i = 0; i < c->deadlines.len; i++)
        audit_check(&a, audit_has(&a.ops, chan_heap_entry(c->deadlines.v[i], core_op_t, dl)),
                    "the deadline heap holds an unknown op");
    audit_check(&a, a.bytes == c->value_bytes, "value_bytes differs from the values held");
    pdeque_free(&a.ops);
    pdeque_free(&a.dlvs);
    return a.bad;
}

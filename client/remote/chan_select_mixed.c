/*
 * chan_select_mixed.c - select over cases that live in different places:
 * local channels, and channels of one or more chand daemons.
 *
 * First a look, as Go's select polls (see look() below): the cases are
 * shuffled once, and of those ready now the first in that order wins, local
 * or on any daemon, each daemon answering at once what it has.  If nothing
 * is ready, no single lock or server sees every case, so the choice is made
 * by the one thing all sources share: the caller's waiter.  Whoever claims
 * it first wins, and every other source undoes what it had prepared:
 *
 *   1. Local cases are polled again, under their locks (chani_lsel_start).
 *      A ready one is done at once and the select is over.  Otherwise the
 *      waiter is queued on every local channel.
 *   2. Each daemon gets one Select request with its cases and reserve set.
 *      The daemon answers when one of them can proceed, having *reserved*
 *      it: a value for a receive case is delivered but not yet taken; a
 *      send case holds a buffer slot or a waiting receiver.
 *   3. The first answer (or local peer, or the deadline) to claim the waiter
 *      wins.  A daemon answer that loses is undone by the client's I/O
 *      thread: its value is given back (nack, to the head of its channel)
 *      or its reservation released.  The other daemons' requests are
 *      cancelled, local queues left.
 *   4. A winning reservation is committed: a send happens then; a receive
 *      that the daemon reserved (rather than delivered) gets its value in
 *      the commit's answer.  A delivered receive is acknowledged when the
 *      select returns.
 *   5. A commit answered RETRY (the other side of the exchange, itself a
 *      select, chose another case meanwhile) means nothing happened: the
 *      select starts over, same deadline.
 *
 * Two such selects can meet on a daemon, each possibly winning elsewhere
 * at that moment: the daemon asks the one with the higher priority first,
 * a random number drawn per attempt and sent with every request of it.
 * With one order across all daemons, two selects crossing over two of them
 * cannot stall each other (PROTOCOL.md section 9).
 *
 * Exactly one case takes effect; nothing is lost or delivered twice.  A
 * daemon whose connection drops drops out of the select ("passes"); the
 * select completes on the others, and fails with ECONNRESET only if no
 * source is left.  With deadline 0, the daemons answer at once (TIMEOUT if
 * nothing is ready), and the select gives up once all have answered.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan_errmsg.h"
#include "remote/chan_client.h"
#include "runtime/chan_local.h"
#include "runtime/chan_sched.h"

/* One daemon's share of the cases. */
struct group {
    chan_client_t *cl;
    size_t n;                    /* its cases */
    size_t *map;                 /* wire case -> caller's case index */
    Chan__Case *wire;
    Chan__Case **ptrs;
    chan_remote_t **handles;     /* wire case -> its handle */
    chan_rpc_t rpc;
    bool started;                /* the request went out */
    bool reserved;               /* it won with a send reservation */
    int err;                     /* it won with an error status */
    chan_case_t *cases;          /* the caller's cases */
    /* The first look (look_at): what the daemon had ready at once. */
    int lidx;                    /* the caller's case it took, or -1 */
    Chan__Status lst;            /* and how */
    void *lval;                  /* a value received, kept until chosen */
    size_t llen;
    uint32_t lredelivered;
    uint64_t lvlen;              /* TOO_LARGE: the value's length */
    int lerr;                    /* an error status it answered */
    bool lost;                   /* it did not answer (connection, time) */
    bool asked;
    uint64_t *vers;              /* a look's versions, by the caller's case
                                    index (NULL: not wanted) */
    bool vers_missing;           /* it answered TIMEOUT without them */
};

static chan_client_t *client_of(const chan_case_t *cs)
{
    return ((const chan_remote_t *)cs->ch)->cl;
}

/* ---- on the I/O thread, for the winning answer ---- */

/* Copy a received value into its case. */
static bool take_value(chan_case_t *c, const Chan__Delivery *d, int *err)
{
    const ProtobufCBinaryData *v = &d->value;
    c->redelivered = d->has_redelivered ? d->redelivered : 0;
    if (c->buf) {
        if (v->len > c->len) {
            *err = EPROTO;   /* chand ignored max_bytes */
            return false;
        }
        if (v->len)
            memcpy(c->buf, v->data, v->len);
    } else {
        c->val = malloc(v->len ? v->len : 1);
        if (!c->val) {
            *err = ENOMEM;
            return false;
        }
        if (v->len)
            memcpy(c->val, v->data, v->len);
    }
    c->n = v->len;
    return true;
}

static bool group_reply(chan_rpc_t *rpc, const Chan__Reply *r)
{
    struct group *g = rpc->ctx;
    if (r->result_case != CHAN__REPLY__RESULT_SELECT || !r->select->has_index ||
        r->select->index >= g->n) {
        g->err = rpc->status ? chani_status_errno(rpc->status) : EPROTO;
        rpc->index = -2;   /* won with an error: the select fails */
        return false;
    }
    size_t i = g->map[r->select->index];
    chan_case_t *c = &g->cases[i];
    rpc->index = (int)i;
    switch (rpc->status) {
    case CHAN__STATUS__RESERVED:
        g->reserved = true;
        return true;
    case CHAN__STATUS__CLOSED:
        c->err = EPIPE;
        return true;
    case CHAN__STATUS__TOO_LARGE:
        c->err = EMSGSIZE;
        c->n = r->select->has_value_len ? (size_t)r->select->value_len : 0;
        return true;
    case CHAN__STATUS__OK:
        if (c->op == CHAN_RECV && r->select->delivery)
            return take_value(c, r->select->delivery, &g->err) ||
                   (rpc->index = -2, false);
        return true;
    default:
        g->err = chani_status_errno(rpc->status);
        rpc->index = -2;
        return false;
    }
}

/* ---- building the groups ---- */

static void groups_free(struct group *gs, size_t ng)
{
    for (size_t k = 0; k < ng; k++) {
        free(gs[k].map);
        free(gs[k].wire);
        free(gs[k].ptrs);
        free(gs[k].handles);
    }
    free(gs);
}

/* Sort the remote cases by daemon, each daemon's in the poll order given
 * (order[k]: the case polled k-th).  Returns the groups (*ng of them), or
 * NULL with errno (ENOMEM; *ng 0 and NULL: no remote case). */
static struct group *groups_make(chan_case_t *cases, size_t n, const size_t *order, size_t *ng)
{
    *ng = 0;
    struct group *gs = calloc(n ? n : 1, sizeof *gs);
    if (!gs) {
        errno = ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!cases[i].ch || cases[i].ch->kind != CHAN_KIND_REMOTE)
            continue;
        chan_client_t *cl = client_of(&cases[i]);
        size_t k = 0;
        while (k < *ng && gs[k].cl != cl)
            k++;
        if (k == *ng) {
            gs[k].cl = cl;
            gs[k].cases = cases;
            (*ng)++;
        }
        gs[k].n++;
    }
    for (size_t k = 0; k < *ng; k++) {
        struct group *g = &gs[k];
        g->map = calloc(g->n, sizeof *g->map);
        g->wire = calloc(g->n, sizeof *g->wire);
        g->ptrs = calloc(g->n, sizeof *g->ptrs);
        g->handles = calloc(g->n, sizeof *g->handles);
        if (!g->map || !g->wire || !g->ptrs || !g->handles) {
            groups_free(gs, *ng);
            *ng = 0;
            errno = ENOMEM;
            return NULL;
        }
        g->n = 0;
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        if (!cases[i].ch || cases[i].ch->kind != CHAN_KIND_REMOTE)
            continue;
        chan_client_t *cl = client_of(&cases[i]);
        struct group *g = gs;
        while (g->cl != cl)
            g++;
        chan_remote_t *r = (chan_remote_t *)cases[i].ch;
        g->handles[g->n] = r;
        Chan__Case *w = &g->wire[g->n];
        chan__case__init(w);
        w->has_name = true;
        w->name.data = (uint8_t *)r->name;
        w->name.len = r->name_len;
        w->has_op = true;
        w->op = cases[i].op == CHAN_SEND ? CHAN__OP__SEND : CHAN__OP__RECV;
        if (cases[i].op == CHAN_SEND) {
            w->has_value = true;
            w->value.data = cases[i].buf;
            w->value.len = cases[i].len;
        } else {
            w->has_max_bytes = true;
            w->max_bytes = cases[i].buf ? cases[i].len : chani_client_max_value(cl);
        }
        g->ptrs[g->n] = w;
        g->map[g->n++] = i;
    }
    return gs;
}

/* A group's reserving Select, cases in poll order, into *sel and *rq.
 * Deadline 0 is a look: answered at once, with the first ready case in
 * that order (in_order), as Go's poll takes it. */
static void group_select(const struct group *g, int64_t deadline, uint64_t prio,
                         Chan__Select *sel, Chan__Request *rq)
{
    *sel = (Chan__Select)CHAN__SELECT__INIT;
    sel->n_cases = g->n;
    sel->cases = g->ptrs;
    sel->has_reserve = sel->reserve = true;
    sel->has_priority = true;
    sel->priority = prio;
    sel->has_in_order = sel->in_order = deadline == 0;
    chani_set_timeout(&sel->has_timeout_ms, &sel->timeout_ms, deadline);
    *rq = (Chan__Request)CHAN__REQUEST__INIT;
    rq->op_case = CHAN__REQUEST__OP_SELECT;
    rq->select = sel;
}

/* Send a group's reserving Select.  0, or -1 with errno. */
static int group_start(struct group *g, chan_waiter_t *w, chan_multi_t *m, int64_t deadline,
                       uint64_t prio)
{
    g->rpc = (chan_rpc_t){ .w = w, .index = -2, .on_reply = group_reply, .ctx = g, .multi = m,
                           .handles = g->handles, .nhandles = g->n };
    Chan__Select sel;
    Chan__Request rq;
    group_select(g, deadline, prio, &sel, &rq);
    if (chani_client_start(g->cl, &rq, &g->rpc) < 0)
        return -1;
    g->started = true;
    return 0;
}

/* The answer to a receive reservation's commit brings the value. */
struct commit_ctx {
    chan_case_t *c;
    int err;
};

static bool commit_reply(chan_rpc_t *rpc, const Chan__Reply *r)
{
    struct commit_ctx *x = rpc->ctx;
    const Chan__SelectReply *sr = r->result_case == CHAN__REPLY__RESULT_SELECT ? r->select : NULL;
    if (rpc->status == CHAN__STATUS__TOO_LARGE && sr && sr->has_value_len)
        x->c->n = (size_t)sr->value_len;
    if (rpc->status != CHAN__STATUS__OK || x->c->op != CHAN_RECV)
        return true;
    if (!sr || !sr->delivery) {
        x->err = EPROTO;
        return false;
    }
    return take_value(x->c, sr->delivery, &x->err);
}

#define SELECT_AGAIN (-3)   /* a commit was answered RETRY */

/* Carry out a won reservation.  Returns 0 (the case's err says how it went:
 * 0 done, EPIPE closed, EMSGSIZE too long for the buffer), SELECT_AGAIN
 * (nothing happened: select again), or -1 with errno (ETIMEDOUT: the
 * deadline passed while the commit waited for its receiver's
 * acknowledgement or its held sender; ECONNRESET: a send's connection
 * dropped, it may or may not have happened). */
static int commit(struct group *g, chan_case_t *c, int64_t deadline)
{
    Chan__Commit m = CHAN__COMMIT__INIT;
    m.has_target = true;
    m.target = g->rpc.id;
    /* What the commit may still wait for keeps the caller's deadline, not
     * that of the request that reserved (0 for a first look). */
    m.has_timeout_ms = true;
    m.timeout_ms = -1;
    /* A receive reserved against a held sender (a select waiting elsewhere
     * too) waits only for that sender's decision, one round trip away: Go's
     * default must not be taken while a sender waits, so a select with
     * deadline 0 lets its commit wait for it.  (A send's commit keeps 0: it
     * may wait for a next receiver.) */
    if (deadline >= 0 && !(deadline == 0 && c->op == CHAN_RECV)) {
        int64_t left = deadline - chan_now();
        m.timeout_ms = left > 0 ? left : 0;
    }
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_COMMIT;
    rq.commit = &m;
    struct commit_ctx x = { c, 0 };
    /* need_gen: the reservation lives on that connection only */
    chan_rpc_t rpc = { .on_reply = commit_reply, .ctx = &x, .need_gen = g->rpc.gen };
    if (chani_client_call(g->cl, &rq, &rpc, chani_grace(deadline)) < 0) {
        /* Not sent, or a receive lost with its connection (chand gives the
         * value back): nothing happened.  A send may have: say so. */
        if (errno == ESTALE || (errno == ECONNRESET && c->op == CHAN_RECV))
            return SELECT_AGAIN;
        return -1;
    }
    if (x.err) {
        errno = x.err;
        return -1;
    }
    switch (rpc.status) {
    case CHAN__STATUS__OK:
        return 0;
    case CHAN__STATUS__CLOSED:
        c->err = EPIPE;
        return 0;
    case CHAN__STATUS__TOO_LARGE:
        c->err = EMSGSIZE;
        return 0;
    case CHAN__STATUS__RETRY:
    case CHAN__STATUS__NOT_FOUND:   /* the reservation is gone with its session */
        return SELECT_AGAIN;
    default:
        return chani_rpc_fail(&rpc);
    }
}

/* ---- the select ---- */

/* After the wait: stop every other source and settle the winner. */
static int settle(chan_case_t *cases, struct group *gs, size_t ng, chan_waiter_t *w, int idx,
                  int64_t deadline)
{
    for (size_t k = 0; k < ng; k++)
        if (gs[k].started)
            chani_client_cancel(gs[k].cl, &gs[k].rpc);   /* no-op for one that answered */
    if (idx == -2) {   /* a daemon answered with an error */
        for (size_t k = 0; k < ng; k++)
            if (gs[k].err) {
                if (gs[k].rpc.message[0])
                    chani_errmsg_set("%s", gs[k].rpc.message);
                errno = gs[k].err;
                return -1;
            }
        errno = EPROTO;
        return -1;
    }
    if (idx == CHAN_WAIT_TIMEOUT) {
        errno = w->err;
        return -1;
    }
    if (!cases[idx].ch || cases[idx].ch->kind != CHAN_KIND_REMOTE)
        return idx;   /* a local case won; its results are in place */
    struct group *won = NULL;
    for (size_t k = 0; k < ng && !won; k++)
        for (size_t j = 0; j < gs[k].n; j++)
            if (gs[k].map[j] == (size_t)idx)
                won = &gs[k];
    if (won->reserved) {
        int rc = commit(won, &cases[idx], deadline);
        if (rc < 0)
            return rc;
    }
    chani_client_ack(won->cl, won->rpc.gen, won->rpc.dlv, won->rpc.ndlv);   /* the caller has it now */
    return idx;
}

/* A priority for one attempt, sent the same to every daemon.  It must
 * differ from every other select's: two selects with one priority are taken
 * for one (they never meet), and the per-thread generator is copied by
 * fork(), so the process id and a counter go in too.  Never 0 (no priority). */
static uint64_t select_priority(void)
{
    static _Atomic uint64_t seq;
    uint64_t x = chani_rand() ^ ((uint64_t)getpid() << 40) ^
                 (atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed) * 0x9E3779B97F4A7C15ULL);
    x ^= x >> 31;   /* a splitmix64 finish, so that the parts mix */
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    return x | 1;
}

/* ---- the first look: Go's poll, across places ---- */

/* A daemon's answer to the first look (on the thread that reads it): keep
 * what it offers, a received value in a copy of our own, since only one
 * case of the select will be taken. */
static bool look_reply(chan_rpc_t *rpc, const Chan__Reply *r)
{
    struct group *g = rpc->ctx;
    g->lidx = -1;
    const Chan__SelectReply *sr = r->result_case == CHAN__REPLY__RESULT_SELECT ? r->select : NULL;
    if (rpc->status == CHAN__STATUS__TIMEOUT) {   /* nothing ready there */
        if (g->vers && sr && sr->n_versions == g->n)
            for (size_t j = 0; j < g->n; j++)
                g->vers[g->map[j]] = sr->versions[j];
        else if (g->vers)
            g->vers_missing = true;   /* an older chand */
        return true;
    }
    if (!sr || !sr->has_index || sr->index >= g->n) {
        g->lerr = rpc->status ? chani_status_errno(rpc->status) : EPROTO;
        return false;
    }
    size_t i = g->map[sr->index];
    switch (rpc->status) {
    case CHAN__STATUS__RESERVED:
    case CHAN__STATUS__CLOSED:
        break;
    case CHAN__STATUS__TOO_LARGE:
        g->lvlen = sr->has_value_len ? sr->value_len : 0;
        break;
    case CHAN__STATUS__OK:
        if (g->cases[i].op == CHAN_RECV && sr->delivery) {
            const ProtobufCBinaryData *v = &sr->delivery->value;
            g->lval = malloc(v->len ? v->len : 1);
            if (!g->lval) {
                g->lerr = ENOMEM;
                return false;   /* given back */
            }
            if (v->len)
                memcpy(g->lval, v->data, v->len);
            g->llen = v->len;
            g->lredelivered = sr->delivery->has_redelivered ? sr->delivery->redelivered : 0;
        }
        break;
    default:
        g->lerr = chani_status_errno(rpc->status);
        return false;
    }
    g->lidx = (int)i;
    g->lst = rpc->status;
    return true;
}

/* Ask one daemon, without waiting there, for the first of its cases (in
 * poll order) that can proceed now: g->lidx, or -1 (nothing ready; g->lerr
 * if it refused, g->lost if it did not answer). */
static void look_at(struct group *g, uint64_t prio, int64_t deadline)
{
    g->lidx = -1;
    g->lval = NULL;
    g->lerr = 0;
    g->lost = false;
    Chan__Select sel;
    Chan__Request rq;
    group_select(g, 0, prio, &sel, &rq);
    g->rpc = (chan_rpc_t){ .on_reply = look_reply, .ctx = g, .keep = true,
                           .handles = g->handles, .nhandles = g->n };
    /* chand answers at once; a daemon that does not is passed over, at the
     * caller's deadline if that is still ahead (a poll, deadline 0 or past,
     * still waits for the answers).  Passed over only once its answer has
     * come all the same and any value in it is queued for return
     * (chani_client_call): the select's next request there must not be
     * given the value behind it. */
    int64_t local = chani_grace(0);
    if (deadline > chan_now() && deadline < local)
        local = deadline;
    if (chani_client_call(g->cl, &rq, &g->rpc, local) < 0) {
        if (g->rpc.handle_failed)
            g->lerr = errno;   /* a case's channel is not there (as NOT_FOUND) */
        else
            g->lost = true;    /* no answer: out of this look */
        g->lidx = -1;
    }
}

/* A daemon's offer that is not taken goes back as it was. */
static void look_undo(struct group *g)
{
    if (g->lidx < 0)
        return;
    if (g->lst == CHAN__STATUS__RESERVED)
        chani_client_release(g->cl, g->rpc.gen, g->rpc.id);
    chani_client_nack(g->cl, g->rpc.gen, g->rpc.dlv, g->rpc.ndlv);
    free(g->lval);
    g->lval = NULL;
    g->lidx = -1;
}

/* Take the offer of g: its case's index, -1 with errno, or SELECT_AGAIN. */
static int look_take(struct group *g, int64_t deadline)
{
    int idx = g->lidx;
    chan_case_t *c = &g->cases[idx];
    switch (g->lst) {
    case CHAN__STATUS__RESERVED: {
        g->lidx = -1;
        int rc = commit(g, c, deadline);
        return rc < 0 ? rc : idx;
    }
    case CHAN__STATUS__CLOSED:
        c->err = EPIPE;
        break;
    case CHAN__STATUS__TOO_LARGE:
        c->err = EMSGSIZE;
        c->n = (size_t)g->lvlen;
        break;
    default:
        if (c->op == CHAN_RECV && g->lval) {
            if (c->buf && g->llen > c->len) {   /* chand ignored max_bytes */
                look_undo(g);
                errno = EPROTO;
                return -1;
            }
            if (c->buf) {
                memcpy(c->buf, g->lval, g->llen);
                free(g->lval);
            } else {
                c->val = g->lval;
            }
            c->n = g->llen;
            c->redelivered = g->lredelivered;
            g->lval = NULL;
        }
        chani_client_ack(g->cl, g->rpc.gen, g->rpc.dlv, g->rpc.ndlv);
        break;
    }
    g->lidx = -1;
    return idx;
}

/* Poll the local cases whose place in the poll order is in [lo, hi) and
 * run one that is ready.  Its index, -1 if none (then, with vers, their
 * channels' versions are in vers), -2 with errno. */
static int poll_local(chan_case_t *cases, size_t n, const size_t *rank, size_t lo, size_t hi,
                      uint64_t *vers)
{
    chan_case_t *sub = malloc((n ? n : 1) * sizeof *sub);
    if (!sub) {
        errno = ENOMEM;
        return -2;
    }
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        sub[i] = cases[i];
        if (!cases[i].ch || cases[i].ch->kind != CHAN_KIND_LOCAL || rank[i] < lo || rank[i] >= hi)
            sub[i].ch = NULL;   /* skipped */
        else
            any = true;
    }
    int chosen = -1;
    if (any) {
        chan_lsel_t *ls = chani_lsel_start(sub, n, NULL, &chosen, vers);
        if (!ls) {
            free(sub);
            return -2;
        }
        chani_lsel_finish(ls, sub, NULL, chosen);
        if (chosen >= 0)
            cases[chosen] = sub[chosen];   /* its results */
    }
    free(sub);
    return chosen;
}

/* Go's select polls its cases in a random order and takes the first that
 * is ready, so each ready case is equally likely.  Across places: the local
 * cases ahead of every remote one are polled first; then each daemon is
 * asked, at once and without waiting, for its first ready case in that
 * order (it holds it); then the local cases ahead of the best daemon offer.
 * The first in the order wins; every other offer goes back.  Costs a
 * round trip per daemon asked when no local case ahead of the remote ones
 * is ready (a select that then waits pays them on top).  With vers, a look
 * that finds nothing leaves there every case's channel version (0 for a
 * nil case), and *known false if a daemon did not give them.
 * Returns the index, -1 with errno, SELECT_AGAIN, or LOOK_NOTHING. */
#define LOOK_NOTHING (-4)

static int look(chan_case_t *cases, size_t n, const size_t *rank, struct group *gs, size_t ng,
                uint64_t prio, int64_t deadline, int *lost, uint64_t *vers, bool *known)
{
    size_t first_remote = n;
    for (size_t i = 0; i < n; i++)
        if (cases[i].ch && cases[i].ch->kind == CHAN_KIND_REMOTE && rank[i] < first_remote)
            first_remote = rank[i];
    for (size_t k = 0; k < ng; k++)
        gs[k].vers = vers, gs[k].vers_missing = false;
    int idx = poll_local(cases, n, rank, 0, first_remote, vers);
    if (idx != -1)
        return idx == -2 ? -1 : idx;
    /* One daemon after the other, the one whose first case comes first in
     * the order first: once an offer comes before every case of the daemons
     * not yet asked, they cannot beat it. */
    struct group *best = NULL;
    int fail = 0, nlost = 0;
    for (size_t k = 0; k < ng; k++)
        gs[k].lidx = -1, gs[k].lerr = 0, gs[k].lval = NULL, gs[k].lost = gs[k].asked = false;
    for (;;) {
        struct group *next = NULL;
        size_t next_rank = n;
        for (size_t k = 0; k < ng; k++) {
            size_t r0 = rank[gs[k].map[0]];   /* map is in poll order */
            if (!gs[k].asked && r0 < next_rank)
                next = &gs[k], next_rank = r0;
        }
        if (!next || fail || (best && rank[best->lidx] < next_rank))
            break;
        next->asked = true;
        look_at(next, prio, deadline);
        if (next->lost) {
            *lost = ECONNRESET;
            nlost++;
        } else if (next->lerr) {
            fail = next->lerr;   /* chand said no (a channel deleted, ...) */
            if (next->rpc.message[0])
                chani_errmsg_set("%s", next->rpc.message);
        }
        if (next->lidx >= 0 && (!best || rank[next->lidx] < rank[best->lidx]))
            best = next;
    }
    if (!fail)
        idx = poll_local(cases, n, rank, first_remote, best ? rank[best->lidx] : n, vers);
    int saved = idx == -2 ? errno : fail;
    for (size_t k = 0; k < ng; k++)
        if (&gs[k] != best || fail || idx != -1)
            look_undo(&gs[k]);
    if (fail || idx == -2) {
        errno = saved;
        return -1;
    }
    if (idx != -1)
        return idx;
    if (best)
        return look_take(best, deadline);
    if (nlost < (int)ng)
        *lost = 0;   /* a daemon had nothing ready, or was not asked */
    *known = true;
    for (size_t k = 0; k < ng; k++)
        *known &= !gs[k].vers_missing;
    return LOOK_NOTHING;
}

/* Go takes default only if at some instant no case was ready.  One look
 * polls the places one after another, so a value that moves from a channel
 * not yet polled to one already polled escapes it.  So a look that finds
 * nothing is followed by another: if no channel's version changed between
 * the two, then at the end of the first look every channel was as both saw
 * it, and default is right; else look again (at most LOOK_ROUNDS times,
 * then default all the same: the channels never held still).  Costs one
 * more round trip per daemon, only when nothing is ready. */
#define LOOK_ROUNDS 8

static int look_for_default(chan_case_t *cases, size_t n, const size_t *rank, struct group *gs,
                            size_t ng, uint64_t prio, int *lost)
{
    uint64_t *vers = calloc(2 * (n ? n : 1), sizeof *vers);
    if (!vers) {
        errno = ENOMEM;
        return -1;
    }
    uint64_t *prev = vers, *cur = vers + n;
    bool known = false, known_now = false;
    int rc = look(cases, n, rank, gs, ng, prio, 0, lost, prev, &known);
    for (int round = 0; rc == LOOK_NOTHING && known && round < LOOK_ROUNDS; round++) {
        memset(cur, 0, n * sizeof *cur);
        rc = look(cases, n, rank, gs, ng, prio, 0, lost, cur, &known_now);
        if (rc != LOOK_NOTHING || (known_now && memcmp(prev, cur, n * sizeof *cur) == 0))
            break;
        uint64_t *t = prev;
        prev = cur;
        cur = t;
        known = known_now;
    }
    for (size_t k = 0; k < ng; k++)
        gs[k].vers = NULL;
    free(vers);
    return rc;
}

/* ---- waiting ---- */

/* Nothing was ready: wait for the first source to offer a case. */
static int wait_once(chan_case_t *cases, size_t n, int64_t deadline, struct group *gs, size_t ng,
                     uint64_t prio)
{
    chan_waiter_t w;
    chani_waiter_init(&w);
    int chosen;
    chan_lsel_t *ls = chani_lsel_start(cases, n, &w, &chosen, NULL);
    if (!ls)
        return -1;
    if (chosen >= 0) {   /* a local case became ready meanwhile */
        chani_lsel_finish(ls, cases, &w, chosen);
        return chosen;
    }
    bool locals = false;
    for (size_t i = 0; i < n; i++)
        locals |= cases[i].ch && cases[i].ch->kind == CHAN_KIND_LOCAL;
    chan_multi_t m = { .w = &w, .give_up_at_zero = !locals || deadline == 0 };
    atomic_init(&m.left, (int)ng + 1);   /* +1: ours, until every request is out */
    atomic_init(&m.lost, 0);
    for (size_t k = 0; k < ng; k++) {
        if (group_start(&gs[k], &w, &m, deadline, prio) < 0) {
            atomic_store(&m.lost, errno);
            atomic_fetch_sub(&m.left, 1);   /* this daemon is out of the select */
        }
    }
    /* Drop our own count; if every request has already passed (or none went
     * out) and nothing else can win, the wait ends now. */
    if (atomic_fetch_sub(&m.left, 1) == 1 && m.give_up_at_zero && chani_waiter_claim(&w)) {
        w.index = CHAN_WAIT_TIMEOUT;
        w.err = atomic_load(&m.lost);
        chani_waiter_wake(&w);
    }
    /* Without local cases, the daemons' own timeouts end the wait; the local
     * deadline is only a safety net.  With local cases it is exact. */
    int64_t local = deadline == 0 ? chani_grace(0) : locals ? deadline : chani_grace(deadline);
    int idx = chani_waiter_park(&w, local, NULL, NULL);
    if (idx == CHAN_WAIT_TIMEOUT && !w.err)
        w.err = ETIMEDOUT;
    chani_lsel_finish(ls, cases, &w, idx);   /* leave the local queues first */
    return settle(cases, gs, ng, &w, idx, deadline);
}

/* One attempt: the chosen case's index, -1 with errno, or SELECT_AGAIN. */
static int select_once(chan_case_t *cases, size_t n, int64_t deadline)
{
    size_t *order = malloc(2 * (n ? n : 1) * sizeof *order), *rank = order + n;
    if (!order) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t k = 0; k < n; k++)   /* a random poll order (Fisher-Yates) */
        order[k] = k;
    for (size_t k = n; k > 1; k--) {
        size_t j = chani_rand_below((uint32_t)k), t = order[k - 1];
        order[k - 1] = order[j];
        order[j] = t;
    }
    for (size_t k = 0; k < n; k++)
        rank[order[k]] = k;
    size_t ng;
    struct group *gs = groups_make(cases, n, order, &ng);
    if (!gs) {
        free(order);
        return -1;
    }
    uint64_t prio = select_priority();
    int lost = 0;
    bool known;
    int rc = deadline == 0 ? look_for_default(cases, n, rank, gs, ng, prio, &lost)
                           : look(cases, n, rank, gs, ng, prio, deadline, &lost, NULL, &known);
    if (rc == LOOK_NOTHING && deadline == 0) {
        errno = lost ? lost : ETIMEDOUT;   /* lost: no daemon could be asked */
        rc = -1;
    } else if (rc == LOOK_NOTHING) {
        rc = wait_once(cases, n, deadline, gs, ng, prio);
    }
    int saved = errno;
    groups_free(gs, ng);
    free(order);
    errno = saved;
    return rc;
}

/* Why a remote case's handle cannot be used (see chan_reopen.c), or 0.  A
 * look might not ask its daemon, and a select must not succeed elsewhere
 * while one of its channels is not there (one daemon would answer
 * NOT_FOUND for the whole select). */
static int handles_err(chan_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!cases[i].ch || cases[i].ch->kind != CHAN_KIND_REMOTE)
            continue;
        chan_remote_t *r = (chan_remote_t *)cases[i].ch;
        int err = chani_client_handles_err(r->cl, &r, 1);
        if (err)
            return err;
    }
    return 0;
}

int chani_mixed_select(chan_case_t *cases, size_t n, int64_t deadline)
{
    int rc = handles_err(cases, n);
    if (rc) {
        errno = rc;
        return -1;
    }
    /* A RETRY means the other side of an exchange left it (it chose another
     * case, timed out or went away): something happened elsewhere. */
    while ((rc = select_once(cases, n, deadline)) == SELECT_AGAIN)
        ;
    return rc;
}

/*
 * chan_select_mixed.c - select over cases that live in different places:
 * local channels, and channels of one or more chand daemons.
 *
 * No single lock or server sees every case, so the choice is made by the
 * one thing all sources share: the caller's waiter.  Whoever claims it
 * first wins, and every other source undoes what it had prepared:
 *
 *   1. Local cases are polled first, in random order, under their locks
 *      (chan_lsel_start).  A ready one is done at once and the select is
 *      over.  Otherwise the waiter is queued on every local channel.
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
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan_client.h"
#include "chan_local.h"
#include "chan_sched.h"

/* One daemon's share of the cases. */
struct group {
    chan_client_t *cl;
    size_t n;                    /* its cases */
    size_t *map;                 /* wire case -> caller's case index */
    Chan__Case *wire;
    Chan__Case **ptrs;
    chan_rpc_t rpc;
    bool started;                /* the request went out */
    bool reserved;               /* it won with a send reservation */
    int err;                     /* it won with an error status */
    chan_case_t *cases;          /* the caller's cases */
};

static chan_client_t *client_of(const chan_case_t *cs)
{
    return ((const chan_remote_t *)cs->ch)->cl;
}

/* ---- on the I/O thread, for the winning answer ---- */

/* Copy a received value into its case. */
static bool take_value(chan_case_t *c, const ProtobufCBinaryData *v, int *err)
{
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
        g->err = rpc->status ? chan_status_errno(rpc->status) : EPROTO;
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
            return take_value(c, &r->select->delivery->value, &g->err) ||
                   (rpc->index = -2, false);
        return true;
    default:
        g->err = chan_status_errno(rpc->status);
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
    }
    free(gs);
}

/* Sort the remote cases by daemon.  Returns the groups (*ng of them), or
 * NULL with errno (ENOMEM; *ng 0 and NULL: no remote case). */
static struct group *groups_make(chan_case_t *cases, size_t n, size_t *ng)
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
        if (!g->map || !g->wire || !g->ptrs) {
            groups_free(gs, *ng);
            *ng = 0;
            errno = ENOMEM;
            return NULL;
        }
        g->n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!cases[i].ch || cases[i].ch->kind != CHAN_KIND_REMOTE)
            continue;
        chan_client_t *cl = client_of(&cases[i]);
        struct group *g = gs;
        while (g->cl != cl)
            g++;
        const chan_remote_t *r = (const chan_remote_t *)cases[i].ch;
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
            w->max_bytes = cases[i].buf ? cases[i].len : cl->max_value;
        }
        g->ptrs[g->n] = w;
        g->map[g->n++] = i;
    }
    return gs;
}

/* Send a group's reserving Select.  0, or -1 with errno. */
static int group_start(struct group *g, chan_waiter_t *w, chan_multi_t *m, int64_t deadline,
                       uint64_t prio)
{
    Chan__Select sel = CHAN__SELECT__INIT;
    sel.n_cases = g->n;
    sel.cases = g->ptrs;
    sel.has_reserve = sel.reserve = true;
    sel.has_priority = true;
    sel.priority = prio;
    chan_set_timeout(&sel.has_timeout_ms, &sel.timeout_ms, deadline);
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_SELECT;
    rq.select = &sel;
    g->rpc = (chan_rpc_t){ .w = w, .index = -2, .on_reply = group_reply, .ctx = g, .multi = m };
    if (chan_client_start(g->cl, &rq, &g->rpc) < 0)
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
    return take_value(x->c, &sr->delivery->value, &x->err);
}

#define SELECT_AGAIN (-3)   /* a commit was answered RETRY */

/* Carry out a won reservation.  Returns 0 (the case's err says how it went:
 * 0 done, EPIPE closed, EMSGSIZE too long for the buffer), SELECT_AGAIN,
 * or -1 with errno (the connection dropped). */
static int commit(struct group *g, chan_case_t *c)
{
    Chan__Commit m = CHAN__COMMIT__INIT;
    m.has_target = true;
    m.target = g->rpc.id;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_COMMIT;
    rq.commit = &m;
    struct commit_ctx x = { c, 0 };
    chan_rpc_t rpc = { .on_reply = commit_reply, .ctx = &x };
    /* No deadline: the daemon answers as soon as the other side has
     * decided, which never waits on us. */
    if (chan_client_call(g->cl, &rq, &rpc, -1) < 0)
        return -1;
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
        return SELECT_AGAIN;
    default:
        errno = chan_status_errno(rpc.status);
        return -1;
    }
}

/* ---- the select ---- */

/* After the wait: stop every other source and settle the winner. */
static int settle(chan_case_t *cases, struct group *gs, size_t ng, chan_waiter_t *w, int idx)
{
    for (size_t k = 0; k < ng; k++)
        if (gs[k].started)
            chan_client_cancel(gs[k].cl, &gs[k].rpc);   /* no-op for one that answered */
    if (idx == -2) {   /* a daemon answered with an error */
        for (size_t k = 0; k < ng; k++)
            if (gs[k].err) {
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
        int rc = commit(won, &cases[idx]);
        /* A receive lost with its connection took nothing (chand gives the
         * value back): choose again.  A send may have happened: say so. */
        if (rc == -1 && errno == ECONNRESET && cases[idx].op == CHAN_RECV)
            return SELECT_AGAIN;
        if (rc < 0)
            return rc;
    }
    chan_client_ack(won->cl, won->rpc.dlv, won->rpc.ndlv);   /* the caller has it now */
    return idx;
}

/* A priority for one attempt, sent the same to every daemon.  It must
 * differ from every other select's: two selects with one priority are taken
 * for one (they never meet), and the per-thread generator is copied by
 * fork(), so the process id and a counter go in too.  Never 0 (no priority). */
static uint64_t select_priority(void)
{
    static _Atomic uint64_t seq;
    uint64_t x = chan_rand() ^ ((uint64_t)getpid() << 40) ^
                 (atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed) * 0x9E3779B97F4A7C15ULL);
    x ^= x >> 31;   /* a splitmix64 finish, so that the parts mix */
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    return x | 1;
}

/* One attempt: the chosen case's index, -1 with errno, or SELECT_AGAIN. */
static int select_once(chan_case_t *cases, size_t n, int64_t deadline)
{
    size_t ng;
    struct group *gs = groups_make(cases, n, &ng);
    if (!gs)
        return -1;
    chan_waiter_t w;
    chan_waiter_init(&w);
    int chosen;
    chan_lsel_t *ls = chan_lsel_start(cases, n, &w, &chosen);
    if (!ls) {
        groups_free(gs, ng);
        return -1;
    }
    if (chosen >= 0) {   /* a local case was ready: done */
        chan_lsel_finish(ls, cases, &w, chosen);
        groups_free(gs, ng);
        return chosen;
    }
    bool locals = false;
    for (size_t i = 0; i < n; i++)
        locals |= cases[i].ch && cases[i].ch->kind == CHAN_KIND_LOCAL;
    chan_multi_t m = { .w = &w, .give_up_at_zero = !locals || deadline == 0 };
    atomic_init(&m.left, (int)ng + 1);   /* +1: ours, until every request is out */
    atomic_init(&m.lost, 0);
    uint64_t prio = select_priority();
    for (size_t k = 0; k < ng; k++) {
        if (group_start(&gs[k], &w, &m, deadline, prio) < 0) {
            atomic_store(&m.lost, errno);
            atomic_fetch_sub(&m.left, 1);   /* this daemon is out of the select */
        }
    }
    /* Drop our own count; if every request has already passed (or none went
     * out) and nothing else can win, the wait ends now. */
    if (atomic_fetch_sub(&m.left, 1) == 1 && m.give_up_at_zero && chan_waiter_claim(&w)) {
        w.index = CHAN_WAIT_TIMEOUT;
        w.err = atomic_load(&m.lost);
        chan_waiter_wake(&w);
    }
    /* Without local cases, the daemons' own timeouts end the wait; the local
     * deadline is only a safety net.  With local cases it is exact. */
    int64_t local = deadline == 0 ? chan_grace(0) : locals ? deadline : chan_grace(deadline);
    int idx = chan_waiter_park(&w, local, NULL, NULL);
    if (idx == CHAN_WAIT_TIMEOUT && !w.err)
        w.err = ETIMEDOUT;
    chan_lsel_finish(ls, cases, &w, idx);   /* leave the local queues first */
    int rc = settle(cases, gs, ng, &w, idx);
    int saved = errno;
    groups_free(gs, ng);
    errno = saved;
    return rc;
}

int chan_mixed_select(chan_case_t *cases, size_t n, int64_t deadline)
{
    int rc;
    /* A RETRY means the other side of an exchange left it (it chose another
     * case, timed out or went away): something happened elsewhere. */
    while ((rc = select_once(cases, n, deadline)) == SELECT_AGAIN)
        ;
    return rc;
}

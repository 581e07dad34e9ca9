/*
 * chan_api.c - the public channel functions: argument checks, reference
 * counting, and dispatch to the local or remote implementation.
 *
 * Keeping the dispatch here lets chan_local.c and chan_remote.c each stay
 * about one kind of channel, while callers see one chan_t.  In a cluster, a
 * remote call answered MOVED (EREMCHG) took no effect: it is made again
 * where the slot map says (chan_route.c), here, once for every kind of call.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "chan_errmsg.h"
#include "chan_handle.h"
#include "remote/chan_client.h"
#include "remote/chan_route.h"

static bool chan_ok(const chan_t *ch)
{
    return ch && (ch->kind == CHAN_KIND_LOCAL || ch->kind == CHAN_KIND_REMOTE);
}

#define CHECK_CHAN(ch, fail) do { if (!chan_ok(ch)) { errno = EINVAL; return (fail); } } while (0)

/* A remote call on ch failed (rc < 0): true if it was MOVED and ch now
 * names its channel where the call should be made again. */
static bool again(chan_t *ch, ssize_t rc, chani_moves_t *mv, int64_t deadline)
{
    if (rc >= 0 || errno != EREMCHG)
        return false;
    chan_remote_t *r = (chan_remote_t *)ch;
    return chani_route_moved(&r, 1, mv, deadline) == 0;
}

ssize_t chan_send_many(chan_t *ch, const chan_val_t *vals, size_t n, int64_t deadline)
{
    chani_errmsg_clear();
    CHECK_CHAN(ch, -1);
    if (n == 0)
        return 0;
    if (!vals) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!vals[i].data && vals[i].len) {
            errno = EINVAL;
            return -1;
        }
    }
    size_t sent = 0;
    int rc;
    if (ch->kind == CHAN_KIND_LOCAL) {
        rc = chani_local_send_many(ch, vals, n, &sent, deadline);
    } else {
        chani_moves_t mv = { 0 };
        size_t k;
        do {   /* values taken before a MOVED stay taken: the rest go again */
            k = 0;
            rc = chani_remote_send_many(ch, vals + sent, n - sent, &k, deadline);
            sent += k;
        } while (sent < n && again(ch, rc, &mv, deadline));
    }
    if (sent > 0)
        return (ssize_t)sent;
    return rc < 0 ? -1 : 0;
}

int chan_send(chan_t *ch, const void *val, size_t len, int64_t deadline)
{
    chan_val_t v = { .data = (void *)val, .len = len };
    return chan_send_many(ch, &v, 1, deadline) == 1 ? 0 : -1;
}

ssize_t chan_recv(chan_t *ch, void *buf, size_t size, int64_t deadline)
{
    chani_errmsg_clear();
    CHECK_CHAN(ch, -1);
    if (!buf && size) {
        errno = EINVAL;
        return -1;
    }
    if (ch->kind == CHAN_KIND_LOCAL)
        return chani_local_recv(ch, buf, size, NULL, deadline);
    chani_moves_t mv = { 0 };
    ssize_t rc;
    do
        rc = chani_remote_recv(ch, buf, size, NULL, deadline);
    while (again(ch, rc, &mv, deadline));
    return rc;
}

ssize_t chan_recv_alloc(chan_t *ch, void **val, int64_t deadline)
{
    chani_errmsg_clear();
    CHECK_CHAN(ch, -1);
    if (!val) {
        errno = EINVAL;
        return -1;
    }
    *val = NULL;
    if (ch->kind == CHAN_KIND_LOCAL)
        return chani_local_recv(ch, NULL, 0, val, deadline);
    chani_moves_t mv = { 0 };
    ssize_t rc;
    do
        rc = chani_remote_recv(ch, NULL, 0, val, deadline);
    while (again(ch, rc, &mv, deadline));
    return rc;
}

ssize_t chan_recv_many(chan_t *ch, chan_val_t *vals, size_t max, int64_t deadline)
{
    chani_errmsg_clear();
    CHECK_CHAN(ch, -1);
    if (!vals || max == 0) {
        errno = EINVAL;
        return -1;
    }
    if (ch->kind == CHAN_KIND_LOCAL)
        return chani_local_recv_many(ch, vals, max, deadline);
    chani_moves_t mv = { 0 };
    ssize_t rc;
    do
        rc = chani_remote_recv_many(ch, vals, max, deadline);
    while (again(ch, rc, &mv, deadline));
    return rc;
}

int chan_close(chan_t *ch)
{
    chani_errmsg_clear();
    CHECK_CHAN(ch, -1);
    if (ch->kind == CHAN_KIND_LOCAL)
        return chani_local_close(ch);
    chani_moves_t mv = { 0 };
    int rc;
    do
        rc = chani_remote_close(ch);
    while (again(ch, rc, &mv, -1));
    return rc;
}

chan_t *chan_retain(chan_t *ch)
{
    if (ch)
        atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
    return ch;
}

void chan_release(chan_t *ch)
{
    if (!ch)
        return;
    if (atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (ch->kind == CHAN_KIND_LOCAL)
        chani_local_free(ch);
    else
        chani_remote_free(ch);
}

ssize_t chan_len(chan_t *ch)
{
    chani_errmsg_clear();
    CHECK_CHAN(ch, -1);
    if (ch->kind == CHAN_KIND_LOCAL)
        return chani_local_len(ch);
    chani_moves_t mv = { 0 };
    ssize_t rc;
    do
        rc = chani_remote_len(ch);
    while (again(ch, rc, &mv, chan_now() + 5000));
    return rc;
}

ssize_t chan_cap(chan_t *ch)
{
    chani_errmsg_clear();
    CHECK_CHAN(ch, -1);
    return ch->kind == CHAN_KIND_LOCAL ? chani_local_cap(ch) : chani_remote_cap(ch);
}

/* Which implementations a select's cases need. */
static int select_kinds(const chan_case_t *cases, size_t n)
{
    int kinds = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cases[i].ch)
            continue;
        if (!chan_ok(cases[i].ch) ||
            (cases[i].op != CHAN_SEND && cases[i].op != CHAN_RECV) ||
            (cases[i].op == CHAN_SEND && !cases[i].buf && cases[i].len))
            return -1;
        kinds |= cases[i].ch->kind;
    }
    return kinds;
}

/* A select whose cases' daemons answered MOVED: move the handles. */
static int select_moved(chan_case_t *cases, size_t n, chani_moves_t *mv, int64_t deadline)
{
    chan_remote_t *stack[16], **hs = n <= 16 ? stack : malloc(n * sizeof *hs);
    if (!hs) {
        errno = ENOMEM;
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (cases[i].ch && cases[i].ch->kind == CHAN_KIND_REMOTE)
            hs[k++] = (chan_remote_t *)cases[i].ch;
    int rc = chani_route_moved(hs, k, mv, deadline);
    if (hs != stack) {
        int e = errno;
        free(hs);
        errno = e;
    }
    return rc;
}

int chan_select(chan_case_t *cases, size_t n, int64_t deadline)
{
    chani_errmsg_clear();
    if (!cases && n) {
        errno = EINVAL;
        return -1;
    }
    int kinds = select_kinds(cases, n);
    if (kinds < 0) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        cases[i].err = 0;
        cases[i].n = 0;
        cases[i].val = NULL;
        cases[i].redelivered = 0;
    }
    if (!(kinds & CHAN_KIND_REMOTE))   /* local, or only nil cases */
        return chani_local_select(cases, n, deadline);
    chani_moves_t mv = { 0 };
    int rc;
    for (;;) {
        rc = kinds == CHAN_KIND_REMOTE ? chani_remote_select(cases, n, deadline)   /* one daemon, or several */
                                       : chani_mixed_select(cases, n, deadline);
        if (rc >= 0 || errno != EREMCHG || select_moved(cases, n, &mv, deadline) < 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            cases[i].err = 0;
            cases[i].n = 0;
            cases[i].val = NULL;
            cases[i].redelivered = 0;
        }
    }
}

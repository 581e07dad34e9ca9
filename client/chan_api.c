/*
 * chan_api.c - the public channel functions: argument checks, reference
 * counting, and dispatch to the local or remote implementation.
 *
 * Keeping the dispatch here lets chan_local.c and chan_remote.c each stay
 * about one kind of channel, while callers see one chan_t.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "chan_errmsg.h"
#include "chan_handle.h"

static bool chan_ok(const chan_t *ch)
{
    return ch && (ch->kind == CHAN_KIND_LOCAL || ch->kind == CHAN_KIND_REMOTE);
}

#define CHECK_CHAN(ch, fail) do { if (!chan_ok(ch)) { errno = EINVAL; return (fail); } } while (0)

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
    int rc = ch->kind == CHAN_KIND_LOCAL
           ? chani_local_send_many(ch, vals, n, &sent, deadline)
           : chani_remote_send_many(ch, vals, n, &sent, deadline);
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
    return ch->kind == CHAN_KIND_LOCAL ? chani_local_recv(ch, buf, size, NULL, deadline)
                                       : chani_remote_recv(ch, buf, size, NULL, deadline);
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
    return ch->kind == CHAN_KIND_LOCAL ? chani_local_recv(ch, NULL, 0, val, deadline)
                                       : chani_remote_recv(ch, NULL, 0, val, deadline);
}

ssize_t chan_recv_many(chan_t *ch, chan_val_t *vals, size_t max, int64_t deadline)
{
    chani_errmsg_clear();
    CHECK_CHAN(ch, -1);
    if (!vals || max == 0) {
        errno = EINVAL;
        return -1;
    }
    return ch->kind == CHAN_KIND_LOCAL ? chani_local_recv_many(ch, vals, max, deadline)
                                       : chani_remote_recv_many(ch, vals, max, deadline);
}

int chan_close(chan_t *ch)
{
    chani_errmsg_clear();
    CHECK_CHAN(ch, -1);
    return ch->kind == CHAN_KIND_LOCAL ? chani_local_close(ch) : chani_remote_close(ch);
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
    return ch->kind == CHAN_KIND_LOCAL ? chani_local_len(ch) : chani_remote_len(ch);
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
    if (kinds == CHAN_KIND_REMOTE)
        return chani_remote_select(cases, n, deadline);   /* one daemon, or several */
    if (kinds == (CHAN_KIND_LOCAL | CHAN_KIND_REMOTE))
        return chani_mixed_select(cases, n, deadline);
    return chani_local_select(cases, n, deadline);
}

/*
 * chand_recover.c - load a data dir at start (or check one: --check).
 *
 * The state is the newest snapshot (snap.G: every channel and value as they
 * were when log.G was started) plus the logs log.G, log.G+1, ... replayed
 * in order.  With no snapshot the logs start at log.1.  Every record is
 * checked; the only damage tolerated is a torn tail of the newest log (what
 * a crash in the middle of a write leaves), which is reported and cut off.
 * Anything else that does not check stops the start with the file and the
 * offset: loading garbage as values would be worse than not starting.
 *
 * Values are gathered first and handed to the core at the end, per channel:
 * those delivered and not acknowledged (redelivered > 0) first, then the
 * others, each group by value number - the order they had, with the ones
 * a receiver held back at the head, as when a receiver goes away.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chan_frame.h"
#include "chand_alloc.h"
#include "chand_hash.h"
#include "chand_list.h"
#include "chand_log.h"
#include "chand_record.h"
#include "chand_recover.h"
#include "chand_stall.h"

typedef struct rchan {
    hnode_t node;            /* by no */
    hnode_t by_name;         /* in names, while not deleted */
    uint64_t no, cap;
    const uint8_t *name;     /* in a mapped file */
    size_t name_len;
    bool closed, deleted;
    core_chan_t *ch;         /* once restored */
} rchan_t;

typedef struct rval {
    uint64_t vid;
    rchan_t *chan;
    const uint8_t *data;     /* in a mapped file */
    uint32_t len, redelivered;
    bool live;
} rval_t;

/* Values are kept in one array in the order of their numbers (a snapshot's
 * part is sorted once it is read; logs put them in that order), so that a
 * delivery or an acknowledgement finds its value by binary search - most
 * often at once, next to the last one found - with no per-value index. */
typedef struct rstate {
    htable_t chans, names;
    rval_t *vals;
    size_t nvals, capvals;
    size_t finger;           /* where the last value was found */
    struct { void *p; size_t len; } *maps;
    size_t nmaps;
    jr_recovery_t *out;
    char *err;
    size_t errlen;
    const char *file;        /* being read */
    uint64_t off;            /* of the record being applied */
    bool ended;              /* a snapshot's END was read */
    bool tail_zeros;         /* the file read last ended in zero bytes only */
} rstate_t;

static int fail(rstate_t *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(rstate_t *st, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(st->err, st->errlen, "%s at offset %" PRIu64 ": %s", st->file, st->off, what);
    return -1;
}

static bool no_eq(const hnode_t *n, const void *key)
{
    return ((const rchan_t *)n)->no == *(const uint64_t *)key;
}

static bool name_eq(const hnode_t *n, const void *key)
{
    const rchan_t *c = QLIST_ENTRY(n, rchan_t, by_name);
    const core_bytes_t *k = key;
    return c->name_len == k->len && memcmp(c->name, k->data, k->len) == 0;
}

static rchan_t *chan_named(rstate_t *st, core_bytes_t name)
{
    hnode_t *n = htable_find(&st->names, chand_hash_bytes(name.data, name.len), name_eq, &name);
    return n ? QLIST_ENTRY(n, rchan_t, by_name) : NULL;
}

static rchan_t *chan_find(rstate_t *st, uint64_t no)
{
    return (rchan_t *)htable_find(&st->chans, chand_hash_u64(no), no_eq, &no);
}

static rval_t *val_find(rstate_t *st, uint64_t vid)
{
    size_t f = st->finger;
    if (f < st->nvals && st->vals[f].vid == vid)
        return &st->vals[f];
    if (f + 1 < st->nvals && st->vals[f + 1].vid == vid)
        return &st->vals[st->finger = f + 1];
    size_t lo = 0, hi = st->nvals;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->vals[mid].vid < vid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < st->nvals && st->vals[lo].vid == vid)
        return &st->vals[st->finger = lo];
    return NULL;
}

static rval_t *val_add(rstate_t *st)
{
    if (st->nvals == st->capvals) {
        st->capvals = st->capvals ? st->capvals * 2 : 4096;
        st->vals = xrealloc(st->vals, st->capvals * sizeof *st->vals);
    }
    return &st->vals[st->nvals++];
}

static int by_vid(const void *a, const void *b)
{
    uint64_t x = ((const rval_t *)a)->vid, y = ((const rval_t *)b)->vid;
    return (x > y) - (x < y);
}

/* A snapshot lists values channel by channel: put them in number order. */
static int sort_vals(rstate_t *st)
{
    size_t i = 1;
    while (i < st->nvals && st->vals[i].vid > st->vals[i - 1].vid)
        i++;
    if (i >= st->nvals)
        return 0;   /* one channel, nothing held back: sorted already */
    qsort(st->vals, st->nvals, sizeof *st->vals, by_vid);
    for (i = 1; i < st->nvals; i++)
        if (st->vals[i].vid == st->vals[i - 1].vid)
            return fail(st, "value %" PRIu64 " appears twice", st->vals[i].vid);
    return 0;
}

/* ---- one record ---- */

static int apply_make(rstate_t *st, const uint8_t *p, const uint8_t *end)
{
    uint64_t no, cap;
    if (!rec_get_varint(&p, end, &no) || !rec_get_varint(&p, end, &cap) || !no)
        return fail(st, "malformed MAKE record");
    if (!chan_name_valid(p, (size_t)(end - p)))
        return fail(st, "MAKE record with an invalid channel name");
    if (chan_find(st, no))
        return fail(st, "channel %" PRIu64 " made twice", no);
    core_bytes_t name = { p, (size_t)(end - p) };
    rchan_t *other = chan_named(st, name);
    if (other)
        return fail(st, "channel %" PRIu64 " takes the name of live channel %" PRIu64, no,
                    other->no);
    rchan_t *c = xcalloc(1, sizeof *c);
    c->no = no;
    c->cap = cap;
    c->name = p;
    c->name_len = (size_t)(end - p);
    c->node.hash = chand_hash_u64(no);
    htable_insert(&st->chans, &c->node);
    c->by_name.hash = chand_hash_bytes(name.data, name.len);
    htable_insert(&st->names, &c->by_name);
    if (no > st->out->last_no)
        st->out->last_no = no;
    return 0;
}

static rchan_t *live_chan(rstate_t *st, const uint8_t **p, const uint8_t *end, const char *what)
{
    uint64_t no;
    if (!rec_get_varint(p, end, &no)) {
        fail(st, "malformed %s record", what);
        return NULL;
    }
    rchan_t *c = chan_find(st, no);
    if (!c || c->deleted) {
        fail(st, "%s record for channel %" PRIu64 ", which %s", what, no,
             c ? "was deleted" : "was never made");
        return NULL;
    }
    return c;
}

static int apply_put(rstate_t *st, const uint8_t *p, const uint8_t *end, bool snap)
{
    rchan_t *c = live_chan(st, &p, end, "PUT");
    if (!c)
        return -1;
    while (p < end) {
        uint64_t vid, redelivered, len;
        if (!rec_get_varint(&p, end, &vid) || !rec_get_varint(&p, end, &redelivered) ||
            !rec_get_varint(&p, end, &len) || len > (uint64_t)(end - p) || !vid ||
            redelivered > UINT32_MAX || len > UINT32_MAX)
            return fail(st, "malformed PUT record");
        /* numbers only grow along a log (a snapshot is sorted after) */
        if (!snap && vid <= st->out->last_vid)
            return fail(st, "value %" PRIu64 " is not numbered after value %" PRIu64, vid,
                        st->out->last_vid);
        rval_t *v = val_add(st);
        v->vid = vid;
        v->chan = c;
        v->data = p;
        v->len = (uint32_t)len;
        v->redelivered = (uint32_t)redelivered;
        v->live = true;
        if (vid > st->out->last_vid)
            st->out->last_vid = vid;
        p += len;
    }
    return 0;
}

/* DLV (ack false) or ACK (true): a list of value numbers. */
static int apply_ids(rstate_t *st, const uint8_t *p, const uint8_t *end, bool ack)
{
    while (p < end) {
        uint64_t vid;
        if (!rec_get_varint(&p, end, &vid))
            return fail(st, "malformed %s record", ack ? "ACK" : "DLV");
        rval_t *v = val_find(st, vid);
        if (!v || !v->live) {
            /* its channel was deleted, or it was acknowledged before a
             * snapshot that kept its delivery's record's log */
            st->out->unknown_ids++;
        } else if (ack) {
            v->live = false;
        } else if (v->redelivered < UINT32_MAX) {
            v->redelivered++;
        }
    }
    return 0;
}

static int apply(rstate_t *st, uint8_t type, const uint8_t *p, size_t len, bool snap)
{
    const uint8_t *end = p + len;
    rchan_t *c;
    uint64_t a, b;
    switch (type) {
    case REC_MAKE:
        return apply_make(st, p, end);
    case REC_CLOSE:
    case REC_DELETE:
        if (!(c = live_chan(st, &p, end, type == REC_CLOSE ? "CLOSE" : "DELETE")))
            return -1;
        if (type == REC_CLOSE)
            c->closed = true;
        else {
            c->deleted = true;   /* its values are dropped at the end */
            htable_remove(&st->names, &c->by_name);
        }
        return 0;
    case REC_PUT:
        return apply_put(st, p, end, snap);
    case REC_DLV:
    case REC_ACK:
        return apply_ids(st, p, end, type == REC_ACK);
    case REC_END:
        if (!snap || !rec_get_varint(&p, end, &a) || !rec_get_varint(&p, end, &b))
            return fail(st, "misplaced or malformed END record");
        if (a > st->out->last_no)
            st->out->last_no = a;
        if (b > st->out->last_vid)
            st->out->last_vid = b;
        st->ended = true;
        return 0;
    default:
        return fail(st, "unknown record type %u", type);
    }
}

/* ---- one file ---- */

static int map_file(rstate_t *st, int dir_fd, const char *name, const uint8_t **p, size_t *len)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return fail(st, "cannot open: %s", strerror(e));
    }
    *len = (size_t)sb.st_size;
    *p = NULL;
    if (*len) {
        void *m = mmap(NULL, *len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return fail(st, "cannot map: %s", strerror(e));
        }
        st->maps = xrealloc(st->maps, (st->nmaps + 1) * sizeof *st->maps);
        st->maps[st->nmaps].p = m;
        st->maps[st->nmaps++].len = *len;
        *p = m;
    }
    close(fd);
    return 0;
}

/* Read file `name` of generation gen.  last: the newest log, where a torn
 * tail is allowed (*good gets where whole records end).  *headed: whether
 * it had its header (a newest log may not: made, and cut short before its
 * header was written), which alone tells *prev. */
static int read_file(rstate_t *st, int dir_fd, const char *name, uint64_t gen, bool snap,
                     bool last, uint64_t *good, uint64_t *size, uint64_t *prev, bool *headed)
{
    *prev = gen - 1;   /* files written before logs named the one before them */
    *headed = false;
    const uint8_t *p = NULL;
    size_t len = 0;
    st->file = name;
    st->off = 0;
    if (map_file(st, dir_fd, name, &p, &len) < 0)
        return -1;
    *size = len;
    rec_reader_t r = { p, len, 0 };
    uint8_t type;
    const uint8_t *body;
    size_t blen;
    bool first = true;
    st->ended = false;
    for (;;) {
        st->off = r.off;
        enum rec_rc rc = rec_next(&r, &type, &body, &blen);
        if (rc == REC_EOF)
            break;
        if (rc == REC_TORN && last) {
            st->tail_zeros = rec_all_zero(p + st->off, len - (size_t)st->off);
            if (st->tail_zeros)   /* chand_journal.c's write_ahead */
                log_info("%s: ends at offset %" PRIu64 "; the %zu zero bytes after it (written "
                         "ahead of the log) are cut off", name, st->off, len - (size_t)st->off);
            else
                log_warn("%s: torn tail at offset %" PRIu64 " (%zu bytes of an unfinished "
                         "write): cut off", name, st->off, len - (size_t)st->off);
            break;
        }
        if (rc != REC_OK)
            return fail(st, "corrupt record (checksum or length does not match)");
        st->out->records++;
        if (first) {
            rec_file_hdr_t h;
            if (!rec_file_header(type, body, blen, &h))
                return fail(st, "not a chand journal file (no header record)");
            if (h.version != REC_VERSION)
                return fail(st, "journal format %" PRIu64 ", this chand reads %d", h.version,
                            REC_VERSION);
            if (h.kind != (snap ? REC_KIND_SNAP : REC_KIND_LOG) || h.gen != gen)
                return fail(st, "header names another file (kind %" PRIu64 ", generation %"
                            PRIu64 ")", h.kind, h.gen);
            if (h.has_prev && h.prev >= gen)
                return fail(st, "header names a bad previous generation");
            if (h.has_prev)
                *prev = h.prev;
            *headed = true;
            first = false;
            continue;
        }
        if (apply(st, type, body, blen, snap) < 0)
            return -1;
    }
    if (first && !(last && r.off == 0))
        return fail(st, "no header record");   /* (a newest log may be torn before it) */
    if (snap && !st->ended)
        return fail(st, "snapshot has no END record (written only in part)");
    *good = r.off;
    return 0;
}

/* ---- the directory ---- */

typedef struct gens {
    uint64_t *v;
    size_t n;
} gens_t;

static void gens_add(gens_t *g, uint64_t x)
{
    g->v = xrealloc(g->v, (g->n + 1) * sizeof *g->v);
    g->v[g->n++] = x;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* "prefix" followed by exactly 20 digits (and suffix): *gen. */
static bool parse_name(const char *name, const char *prefix, const char *suffix, uint64_t *gen)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(name);
    if (n != pl + 20 + sl || strncmp(name, prefix, pl) || strcmp(name + pl + 20, suffix))
        return false;
    uint64_t v = 0;
    for (size_t i = pl; i < pl + 20; i++) {
        uint64_t d = (uint64_t)(name[i] - '0');
        if (name[i] < '0' || name[i] > '9' || v > (UINT64_MAX - d) / 10)
            return false;   /* (past 2^64 - 1: not a name of ours) */
        v = v * 10 + d;
    }
    *gen = v;
    return true;
}

static int list_dir(rstate_t *st, int dir_fd, const char *dir, bool cleanup, gens_t *logs,
                    gens_t *snaps)
{
    int fd = dup(dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        snprintf(st->err, st->errlen, "%s: cannot list: %s", dir, strerror(errno));
        return -1;
    }
    rewinddir(d);   /* the dup shares dir_fd's offset: a listing before left it at the end */
    struct dirent *e;
    uint64_t g;
    while ((e = readdir(d))) {
        if (parse_name(e->d_name, "log.", "", &g))
            gens_add(logs, g);
        else if (parse_name(e->d_name, "snap.", "", &g))
            gens_add(snaps, g);
        else if (cleanup && parse_name(e->d_name, "snap.", ".tmp", &g))
            unlinkat(dir_fd, e->d_name, 0);   /* a rewrite that did not finish */
    }
    closedir(d);
    if (logs->n)
        qsort(logs->v, logs->n, sizeof *logs->v, cmp_u64);
    if (snaps->n)
        qsort(snaps->v, snaps->n, sizeof *snaps->v, cmp_u64);
    return 0;
}

int chand_recover_list(int dir_fd, uint64_t **logs, size_t *nlogs, uint64_t **snaps,
                       size_t *nsnaps)
{
    gens_t l = { 0 }, sn = { 0 };
    char err[256];
    rstate_t st = { .err = err, .errlen = sizeof err };
    int rc = list_dir(&st, dir_fd, ".", false, &l, &sn);
    *logs = l.v;
    *nlogs = l.n;
    *snaps = sn.v;
    *nsnaps = sn.n;
    return rc;
}

/* ---- handing the state to the core ---- */

static int held_back_first(const void *a, const void *b)
{
    const rval_t *x = *(rval_t *const *)a, *y = *(rval_t *const *)b;
    if (x->chan->no != y->chan->no)
        return x->chan->no < y->chan->no ? -1 : 1;
    bool xr = x->redelivered > 0, yr = y->redelivered > 0;
    if (xr != yr)
        return xr ? -1 : 1;
    return (x->vid > y->vid) - (x->vid < y->vid);
}

static void collect_chan(hnode_t *n, void *arg)
{
    pdeque_push_back(arg, n);
}

static int by_no(const void *a, const void *b)
{
    uint64_t x = (*(rchan_t *const *)a)->no, y = (*(rchan_t *const *)b)->no;
    return (x > y) - (x < y);
}

static int restore(rstate_t *st, core_t *core)
{
    pdeque_t chans;
    pdeque_init(&chans);
    htable_each(&st->chans, collect_chan, &chans);
    if (chans.len)
        qsort(chans.buf, chans.len, sizeof *chans.buf, by_no);
    int rc = 0;
    for (size_t i = 0; i < chans.len && rc == 0; i++) {
        rchan_t *c = chans.buf[i];
        if (c->deleted)
            continue;
        st->out->channels++;
        if (!core)
            continue;
        c->ch = core_restore_chan(core, (core_bytes_t){ c->name, c->name_len }, c->no, c->cap,
                                  c->closed);
        if (!c->ch) {
            snprintf(st->err, st->errlen, "two live channels named %.*s in the journal",
                     (int)c->name_len, c->name);
            rc = -1;
        }
    }
    pdeque_free(&chans);
    if (rc < 0)
        return -1;
    rval_t **live = xmalloc((st->nvals ? st->nvals : 1) * sizeof *live);
    size_t n = 0;
    for (size_t i = 0; i < st->nvals; i++) {
        rval_t *v = &st->vals[i];
        if (v->live && !v->chan->deleted)
            live[n++] = v;
    }
    size_t sorted = 1;
    while (sorted < n && held_back_first(&live[sorted - 1], &live[sorted]) < 0)
        sorted++;
    if (sorted < n)
        qsort(live, n, sizeof *live, held_back_first);
    /* a million values are a million small allocations: let the heap grow
     * in large steps meanwhile, not 128 KiB at a time (measured: about a
     * third of the load time went to growing it) */
    if (core && n > 65536)
        mallopt(M_TOP_PAD, 64 << 20);
    for (size_t i = 0; i < n; i++) {
        st->out->values++;
        st->out->value_bytes += live[i]->len;
        if (core)
            core_restore_val(live[i]->chan->ch, live[i]->vid, live[i]->redelivered,
                             (core_bytes_t){ live[i]->data, live[i]->len });
    }
    free(live);
    if (core && n > 65536)
        mallopt(M_TOP_PAD, 128 * 1024);   /* glibc's default */
    if (core)
        core_restore_done(core, st->out->last_no, st->out->last_vid);
    return 0;
}

static void state_free(rstate_t *st)
{
    pdeque_t chans;   /* freed after the walk: it reads each node's next */
    pdeque_init(&chans);
    htable_each(&st->chans, collect_chan, &chans);
    for (size_t i = 0; i < chans.len; i++)
        free(chans.buf[i]);
    pdeque_free(&chans);
    htable_free(&st->chans);
    htable_free(&st->names);
    free(st->vals);
    for (size_t i = 0; i < st->nmaps; i++)
        munmap(st->maps[i].p, st->maps[i].len);
    free(st->maps);
}

/* Remove files the state no longer needs: older than the snapshot. */
static void remove_old(int dir_fd, const gens_t *logs, const gens_t *snaps, uint64_t from)
{
    char name[JR_NAME_MAX];
    for (size_t i = 0; i < logs->n; i++)
        if (logs->v[i] < from) {
            snprintf(name, sizeof name, JR_LOG_FMT, (unsigned long long)logs->v[i]);
            unlinkat(dir_fd, name, 0);
        }
    for (size_t i = 0; i < snaps->n; i++)
        if (snaps->v[i] < from) {
            snprintf(name, sizeof name, JR_SNAP_FMT, (unsigned long long)snaps->v[i]);
            unlinkat(dir_fd, name, 0);
        }
}

static int cut_tail(int dir_fd, const char *name, uint64_t len, char *err, size_t errlen)
{
    int fd = openat(dir_fd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)len) < 0 || fsync(fd) < 0) {
        snprintf(err, errlen, "%s: cannot cut its torn tail: %s", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int recover_files(rstate_t *st, int dir_fd, const char *dir, bool cleanup, core_t *core)
{
    gens_t logs = { 0 }, snaps = { 0 };
    jr_recovery_t *out = st->out;
    char name[JR_NAME_MAX];
    int rc = list_dir(st, dir_fd, dir, cleanup, &logs, &snaps);
    uint64_t from = 1;
    if (rc == 0 && snaps.n) {
        out->snap_gen = from = snaps.v[snaps.n - 1];
        snprintf(name, sizeof name, JR_SNAP_FMT, (unsigned long long)from);
        uint64_t good;
        uint64_t prev;
        bool headed;
        rc = read_file(st, dir_fd, name, from, true, false, &good, &out->snap_bytes, &prev,
                       &headed);
        if (rc == 0)
            rc = sort_vals(st);
        out->files++;
    }
    /* The logs form a chain: each names the one before it (a cluster's
     * new primary starts its log at a generation of its term, far from the
     * last), and the first is the snapshot's or generation 1. */
    uint64_t before = 0;
    for (size_t i = 0; rc == 0 && i < logs.n; i++) {
        uint64_t g = logs.v[i];
        if (g < from)
            continue;   /* the snapshot holds it */
        snprintf(name, sizeof name, JR_LOG_FMT, (unsigned long long)g);
        if (!before && g != from) {
            snprintf(st->err, st->errlen, "%s/%s: the log of generation %llu is missing", dir,
                     name, (unsigned long long)from);
            rc = -1;
            break;
        }
        bool last = i == logs.n - 1;
        uint64_t good, size, prev;
        bool headed;
        rc = read_file(st, dir_fd, name, g, false, last, &good, &size, &prev, &headed);
        if (rc == 0 && !headed)
            prev = before;   /* nothing to check: it follows whatever came before */
        if (rc == 0 && before && prev != before) {
            snprintf(st->err, st->errlen, "%s/%s: follows the log of generation %llu, which is "
                     "missing", dir, name, (unsigned long long)prev);
            rc = -1;
            break;
        }
        before = g;
        out->files++;
        out->log_bytes += good;
        if (last) {
            out->last_gen = g;
            out->last_prev = prev;
            out->last_len = good;
            out->last_size = size;
            out->last_zeros = good < size && st->tail_zeros;
        }
    }
    if (rc == 0 && out->snap_gen && !before) {
        /* a rewrite makes log.S before snap.S: without it, what came after
         * the snapshot is lost, and loading the snapshot alone would hide it */
        snprintf(name, sizeof name, JR_LOG_FMT, (unsigned long long)from);
        snprintf(st->err, st->errlen, "%s/%s: the log of generation %llu is missing", dir, name,
                 (unsigned long long)from);
        rc = -1;
    }
    if (rc == 0)
        rc = restore(st, core);
    if (rc == 0 && cleanup) {
        remove_old(dir_fd, &logs, &snaps, from);
        if (out->last_size > out->last_len) {
            snprintf(name, sizeof name, JR_LOG_FMT, (unsigned long long)out->last_gen);
            rc = cut_tail(dir_fd, name, out->last_len, st->err, st->errlen);
        }
    }
    free(logs.v);
    free(snaps.v);
    return rc;
}

int chand_recover(int dir_fd, const char *dir, core_t *core, bool cleanup, jr_recovery_t *out,
                  char *err, size_t errlen)
{
    uint64_t t0 = chand_now_us();
    memset(out, 0, sizeof *out);
    rstate_t st = { .out = out, .err = err, .errlen = errlen };
    htable_init(&st.chans);
    htable_init(&st.names);
    int rc = recover_files(&st, dir_fd, dir, cleanup, core);
    if (rc < 0 && st.file && strncmp(err, dir, strlen(dir)) != 0) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s/%s", dir, err);
        snprintf(err, errlen, "%s", tmp);
    }
    state_free(&st);
    out->us = chand_now_us() - t0;
    return rc;
}

/*
 * chand_repl.c - a primary's feeds to its replicas, and a replica's copy of
 * its primary's journal (design in chand_repl.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "chan_addr.h"
#include "chand_alloc.h"
#include "chand_log.h"
#include "chand_peer.h"
#include "chand_record.h"
#include "chand_recover.h"
#include "chand_repl.h"
#include "chand_server.h"

/* Bytes of file in one ReplData frame. */
#define CHUNK (256u << 10)
/* A feed fills its connection's output up to this much per turn. */
#define FEED_HIGH (1u << 20)
/* A replica reconnects to its primary after this long. */
#define RETRY_MS 300
/* Frames from a primary are at most a chunk and a little. */
#define FOLLOW_MAX_FRAME (CHUNK + 4096)

/* ========================================================================
 * The primary's side
 * ======================================================================== */

struct repl_feed {
    qlink_t link;             /* s->feeds */
    chand_conn_t *conn;
    uint64_t id, term;
    bool reset;               /* the first frame tells the replica to start afresh */
    bool has_trunc;
    uint64_t trunc;           /* ... or to cut its newest log to this length */
    bool snap;                /* the cursor is in a snapshot */
    uint64_t gen, off;        /* the cursor */
    int fd;                   /* its file, or -1 */
    uint64_t log_gen, log_off;/* where the log cursor resumes after a snapshot */
    uint64_t rsnap;           /* the replica's snapshot */
    uint64_t acked;           /* position the replica has */
    uint64_t until_gen, until_off;  /* a full copy: our log's end when it began */
};

static void feed_close_file(repl_feed_t *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

static int feed_open(repl_feed_t *f, chand_journal_t *j)
{
    char name[JR_NAME_MAX];
    snprintf(name, sizeof name, f->snap ? JR_SNAP_FMT : JR_LOG_FMT, (unsigned long long)f->gen);
    feed_close_file(f);
    f->fd = openat(chand_journal_dir_fd(j), name, O_RDONLY | O_CLOEXEC);
    return f->fd < 0 ? -1 : 0;
}

static uint64_t file_size(int fd)
{
    struct stat sb;
    return fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* The logs of the primary's dir, sorted; the snapshot's generation. */
typedef struct files {
    uint64_t *logs, *snaps;
    size_t nlogs, nsnaps;
} files_t;

static void files_free(files_t *fs)
{
    free(fs->logs);
    free(fs->snaps);
}

static bool has_log(const files_t *fs, uint64_t gen)
{
    for (size_t i = 0; i < fs->nlogs; i++)
        if (fs->logs[i] == gen)
            return true;
    return false;
}

/* The first log after gen, or 0. */
static uint64_t next_log(const files_t *fs, uint64_t gen)
{
    for (size_t i = 0; i < fs->nlogs; i++)
        if (fs->logs[i] > gen)
            return fs->logs[i];
    return 0;
}

/* Whether log gen of the primary's dir names prev as the log before it (a
 * log without that field follows gen - 1). */
static bool log_follows(chand_journal_t *j, uint64_t gen, uint64_t prev)
{
    char name[JR_NAME_MAX];
    snprintf(name, sizeof name, JR_LOG_FMT, (unsigned long long)gen);
    int fd = openat(chand_journal_dir_fd(j), name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    uint8_t buf[128];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    close(fd);
    rec_file_hdr_t h;
    if (!rec_first_header(buf, n > 0 ? (size_t)n : 0, &h))
        return false;
    return (h.has_prev ? h.prev : h.gen - 1) == prev;
}

/* Where a full copy starts: the snapshot, then the logs from it on. */
static void feed_full(repl_feed_t *f, chand_journal_t *j, const files_t *fs, uint64_t snap_gen)
{
    uint64_t jsnap;
    chand_journal_where(j, &f->until_gen, &f->until_off, &jsnap);
    f->reset = true;
    f->has_trunc = false;
    f->rsnap = 0;
    if (snap_gen) {
        f->snap = true;
        f->gen = snap_gen;
        f->log_gen = snap_gen;
    } else {
        f->snap = false;
        f->gen = fs->nlogs ? fs->logs[0] : 1;
        f->log_gen = f->gen;
    }
    f->off = f->log_off = 0;
}

/* Decide where the copy starts from what the replica holds. */
static void feed_place(repl_feed_t *f, chand_journal_t *j, const Chan__Replicate *rq)
{
    uint64_t gen, off, snap_gen;
    chand_journal_where(j, &gen, &off, &snap_gen);
    files_t fs = { 0 };
    chand_recover_list(chand_journal_dir_fd(j), &fs.logs, &fs.nlogs, &fs.snaps, &fs.nsnaps);
    uint64_t rg = rq->has_log_gen ? rq->log_gen : 0, rl = rq->has_log_len ? rq->log_len : 0;
    f->rsnap = rq->has_snap_gen ? rq->snap_gen : 0;
    f->snap = false;
    bool partial = false;
    if (rg && rg >= snap_gen && rg <= gen && has_log(&fs, rg)) {
        f->gen = rg;
        uint64_t size = off;
        if (rg != gen) {
            f->snap = false;
            size = feed_open(f, j) == 0 ? file_size(f->fd) : 0;
            feed_close_file(f);
        }
        if (rl <= size) {
            f->off = rl;
            partial = true;
        } else if (rg < gen && size) {
            f->has_trunc = true;   /* the replica wrote past our history */
            f->trunc = f->off = size;
            partial = true;
        }
    }
    if (!partial)
        feed_full(f, j, &fs, snap_gen);
    files_free(&fs);
}

static void feed_send(repl_feed_t *f, const uint8_t *data, size_t n, bool done)
{
    Chan__ReplData d = CHAN__REPL_DATA__INIT;
    d.has_term = true;
    d.term = f->term;
    if (f->reset) {
        d.has_reset = d.reset = true;
        d.has_until_gen = d.has_until_off = true;
        d.until_gen = f->until_gen;
        d.until_off = f->until_off;
        f->reset = false;
    }
    if (f->has_trunc && !f->snap) {
        d.has_truncate = true;
        d.truncate = f->trunc;
        f->has_trunc = false;
    }
    d.has_snap = true;
    d.snap = f->snap;
    d.has_gen = d.has_offset = true;
    d.gen = f->gen;
    d.offset = f->off;
    d.has_data = n > 0;
    d.data.data = (uint8_t *)data;
    d.data.len = n;
    if (done)
        d.has_done = d.done = true;
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = true;
    r.id = f->id;
    r.status = CHAN__STATUS__OK;
    r.result_case = CHAN__REPLY__RESULT_REPL;
    r.repl = &d;
    chand_conn_reply(f->conn, &r);
}

/* Start over with a full copy (a file the cursor needs is gone). */
static void feed_restart(repl_feed_t *f, chand_journal_t *j)
{
    log_warn("replica %s: the files its copy needs are gone (a rewrite removed them); "
             "sending a full copy", f->conn->peer);
    uint64_t gen, off, snap_gen;
    chand_journal_where(j, &gen, &off, &snap_gen);
    files_t fs = { 0 };
    chand_recover_list(chand_journal_dir_fd(j), &fs.logs, &fs.nlogs, &fs.snaps, &fs.nsnaps);
    feed_close_file(f);
    feed_full(f, j, &fs, snap_gen);
    files_free(&fs);
}

/* Send f what it lacks while its connection takes it; true if more waits. */
static bool feed_pump(repl_feed_t *f, chand_journal_t *j, uint8_t *buf)
{
    uint64_t jgen, joff, jsnap;
    chand_journal_where(j, &jgen, &joff, &jsnap);
    for (int guard = 0; guard < 64; guard++) {
        if (f->conn->doomed)
            return false;
        if (evbuffer_get_length(f->conn->out) >= FEED_HIGH)
            return true;
        if (f->fd < 0 && feed_open(f, j) < 0) {
            feed_restart(f, j);
            continue;
        }
        uint64_t end = !f->snap && f->gen == jgen ? joff : file_size(f->fd);
        if (f->off < end) {
            size_t want = end - f->off < CHUNK ? (size_t)(end - f->off) : CHUNK;
            ssize_t n = pread(f->fd, buf, want, (off_t)f->off);
            if (n <= 0) {
                feed_restart(f, j);
                continue;
            }
            feed_send(f, buf, (size_t)n, false);
            f->off += (uint64_t)n;
            continue;
        }
        if (f->snap) {   /* whole: the replica renames it into place */
            feed_send(f, NULL, 0, true);
            f->rsnap = f->gen;
            f->snap = false;
            f->gen = f->log_gen;
            f->off = f->log_off;
            feed_close_file(f);
            continue;
        }
        if (f->reset || f->has_trunc) {
            /* say it even with nothing (more) of this log to send: a cut
             * belongs to this log, and the next log's bytes must not carry
             * it (the replica would take it for a cut of that log) */
            feed_send(f, NULL, 0, false);
            continue;
        }
        if (f->gen == jgen) {
            if (jsnap > f->rsnap && f->gen >= jsnap) {
                /* a rewrite made a snapshot: the replica can drop its old
                 * logs once it has it */
                f->log_gen = f->gen;
                f->log_off = f->off;
                f->snap = true;
                f->gen = jsnap;
                f->off = 0;
                feed_close_file(f);
                continue;
            }
            return false;   /* caught up */
        }
        files_t fs = { 0 };
        chand_recover_list(chand_journal_dir_fd(j), &fs.logs, &fs.nlogs, &fs.snaps, &fs.nsnaps);
        uint64_t next = next_log(&fs, f->gen);
        files_free(&fs);
        feed_close_file(f);
        if (next && !log_follows(j, next, f->gen)) {
            /* rewrites removed the logs between: a copy must never skip
             * one.  The newest snapshot holds them all, and its log
             * follows it. */
            if (jsnap > f->gen && jsnap > f->rsnap) {
                f->snap = true;
                f->gen = f->log_gen = jsnap;
                f->off = f->log_off = 0;
                continue;
            }
            next = 0;
        }
        if (!next) {
            feed_restart(f, j);
            continue;
        }
        f->gen = next;
        f->off = 0;
    }
    return true;
}

static void feed_acked(chand_server_t *s, repl_feed_t *f, uint64_t gen, uint64_t off);

void chand_repl_feed_start(chand_conn_t *c, uint64_t id, const Chan__Replicate *rq)
{
    chand_server_t *s = c->srv;
    if (c->feed) {
        chand_conn_fail(c, id, CHAN__STATUS__BAD_REQUEST, "Replicate sent twice");
        return;
    }
    uint64_t term = s->cluster ? chand_cluster_term(s->cluster) : 0;
    if (!s->journal || !s->cluster || chand_cluster_role(s->cluster) != CL_PRIMARY ||
        !rq->has_term || rq->term != term) {
        char msg[160];
        snprintf(msg, sizeof msg, "not the primary of term %" PRIu64 " (this node's term is %"
                 PRIu64 ")", rq->has_term ? rq->term : 0, term);
        Chan__Reply r = CHAN__REPLY__INIT;
        r.has_id = r.has_status = true;
        r.id = id;
        r.status = CHAN__STATUS__NOT_PRIMARY;
        r.message = msg;
        r.primary = (char *)(s->cluster ? chand_cluster_primary(s->cluster) : "");
        chand_conn_reply(c, &r);
        return;
    }
    repl_feed_t *f = xcalloc(1, sizeof *f);
    f->conn = c;
    f->id = id;
    f->term = term;
    f->fd = -1;
    feed_place(f, s->journal, rq);
    c->feed = f;
    qlist_push_back(&s->feeds, &f->link);
    if (!f->reset && !f->has_trunc && !f->snap)
        /* it holds our log up to where the copy resumes (durably: it syncs
         * before it asks).  Its acknowledgement of that may have been lost
         * with its last connection, and a replica with nothing new to write
         * sends none: what waits for it would wait forever. */
        feed_acked(s, f, f->gen, f->off);
    log_info("replica %s (%s) joined: %s from %s %" PRIu64 " at %" PRIu64, rq->node ? rq->node : "?",
             c->peer, f->reset ? "a full copy" : f->has_trunc ? "a cut, then the logs" : "the logs",
             f->snap ? "snapshot" : "log", f->gen, f->off);
    chand_repl_pump(s);
}

/* f's replica has our log gen up to off. */
static void feed_acked(chand_server_t *s, repl_feed_t *f, uint64_t gen, uint64_t off)
{
    uint64_t pos = chand_journal_pos_of(s->journal, gen, off);
    if (pos <= f->acked)
        return;
    f->acked = pos;
    if (pos > s->repl_acked) {
        s->repl_acked = pos;
        s->repl_acked_gen = gen;   /* the cluster records it in etcd */
        s->repl_acked_off = off;
        chand_server_release(s);
    }
}

void chand_repl_ack(chand_conn_t *c, const Chan__ReplAck *a)
{
    chand_server_t *s = c->srv;
    repl_feed_t *f = c->feed;
    if (!f || !s->journal || !a->has_gen || !a->has_off)
        return;
    feed_acked(s, f, a->gen, a->off);
}

void chand_repl_pump(chand_server_t *s)
{
    if (!s->journal || qlist_empty(&s->feeds))
        return;
    static uint8_t *buf;
    if (!buf)
        buf = xmalloc(CHUNK);
    bool more = false;
    for (qlink_t *l = s->feeds.next; l != &s->feeds; l = l->next) {
        repl_feed_t *f = QLIST_ENTRY(l, repl_feed_t, link);
        if (feed_pump(f, s->journal, buf) && evbuffer_get_length(f->conn->out) < FEED_HIGH)
            more = true;
    }
    if (more)   /* the socket took it all at once: come back next turn */
        event_active(s->pump_ev, EV_TIMEOUT, 1);
}

void chand_repl_feed_free(repl_feed_t *f)
{
    if (!f)
        return;
    log_info("replica %s left", f->conn->peer);
    qlist_remove(&f->link);
    feed_close_file(f);
    free(f);
}

uint64_t chand_repl_acked(const chand_server_t *s)
{
    return s->repl_acked;
}

uint64_t chand_repl_lag_max(const chand_server_t *s)
{
    uint64_t written = s->journal ? chand_journal_written(s->journal) : 0, lag = 0;
    for (const qlink_t *l = s->feeds.next; l != &s->feeds; l = l->next) {
        const repl_feed_t *f = QLIST_ENTRY(l, repl_feed_t, link);
        if (written > f->acked && written - f->acked > lag)
            lag = written - f->acked;
    }
    return lag;
}

bool chand_repl_caught_up(const chand_server_t *s)
{
    uint64_t written = s->journal ? chand_journal_written(s->journal) : 0;
    for (const qlink_t *l = s->feeds.next; l != &s->feeds; l = l->next)
        if (QLIST_ENTRY(l, repl_feed_t, link)->acked < written)
            return false;
    return true;
}

unsigned chand_repl_replicas(const chand_server_t *s)
{
    unsigned n = 0;
    for (const qlink_t *l = s->feeds.next; l != &s->feeds; l = l->next)
        n++;
    return n;
}

/* ========================================================================
 * The replica's side
 * ======================================================================== */

struct repl_follower {
    chand_server_t *s;
    int dir_fd;
    char addr[128];
    uint64_t term;
    bool following;
    chand_peer_t *peer;        /* the connection to the primary */
    bool connected;
    struct event *retry;
    uint64_t replicate_id;
    /* the copy */
    int log_fd;
    uint64_t log_gen, log_len;
    uint64_t snap_gen;
    int snap_fd;               /* a snapshot being received, as snap.G.tmp */
    uint64_t snap_tmp_gen, snap_tmp_len;
    bool consistent;
    /* a full copy not yet whole (JR_COPYING says so across restarts): it
     * lacks what the primary had when it began, until_gen/until_off, even
     * once it is consistent (a snapshot, the logs after it still coming) */
    bool copying;
    uint64_t until_gen, until_off;
    rec_buf_t pend;            /* the start of a record not yet whole */
    bool dirty;                /* written since the last acknowledgement */
    repl_stats_t st;
    uint64_t last_log_us;
};

static void follower_disconnect(repl_follower_t *f, bool retry);

static void file_sync_close(int *fd)
{
    if (*fd >= 0) {
        fdatasync(*fd);
        close(*fd);
    }
    *fd = -1;
}

static void fol_ack(repl_follower_t *f)
{
    if (!f->dirty || !chand_peer_up(f->peer))
        return;
    f->dirty = false;
    if (f->s->journal_always && f->log_fd >= 0 && fdatasync(f->log_fd) < 0) {
        log_err("replica: fdatasync of log %" PRIu64 ": %s; stopping", f->log_gen,
                strerror(errno));
        _exit(1);
    }
    Chan__ReplAck a = CHAN__REPL_ACK__INIT;
    a.has_gen = a.has_off = true;
    a.gen = f->log_gen;
    a.off = f->log_len;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_REPL_ACK;
    rq.repl_ack = &a;
    chand_peer_send(f->peer, &rq);
}

static int fail_copy(repl_follower_t *f, const char *what)
{
    uint64_t t = chand_now_us();
    if (t - f->last_log_us > 2000000) {
        log_warn("replica: %s; reconnecting to %s", what, f->addr);
        f->last_log_us = t;
    }
    return -1;
}

/* Take data for the file fd (of kind snap, generation gen) whose whole
 * records end at *len: write the records it completes, keep the rest. */
static int take_records(repl_follower_t *f, int fd, bool snap, uint64_t gen, uint64_t *len,
                        const uint8_t *data, size_t n)
{
    rec_buf_reserve(&f->pend, n);
    memcpy(f->pend.p + f->pend.len, data, n);
    f->pend.len += n;
    rec_reader_t r = { f->pend.p, f->pend.len, 0 };
    for (;;) {
        size_t at = r.off;
        uint8_t type;
        const uint8_t *body;
        size_t blen;
        enum rec_rc rc = rec_next(&r, &type, &body, &blen);
        if (rc == REC_EOF || rc == REC_TORN) {
            r.off = at;
            break;
        }
        if (rc == REC_BAD)
            return fail_copy(f, "a record from the primary fails its checksum");
        rec_file_hdr_t h;
        if (*len == 0 && at == 0 &&   /* a file begins with its header */
            (!rec_file_header(type, body, blen, &h) || h.version != REC_VERSION ||
             h.kind != (snap ? REC_KIND_SNAP : REC_KIND_LOG) || h.gen != gen))
            return fail_copy(f, "a file from the primary does not start with its header");
    }
    if (r.off) {
        if (rec_write_all(fd, f->pend.p, r.off, -1) < 0) {
            log_err("replica: writing %s %" PRIu64 ": %s; stopping", snap ? "snapshot" : "log",
                    gen, strerror(errno));
            _exit(1);   /* as the journal: the kernel's view of the file is lost */
        }
        *len += r.off;
        f->st.bytes += r.off;
        memmove(f->pend.p, f->pend.p + r.off, f->pend.len - r.off);
        f->pend.len -= r.off;
        f->dirty = true;
    }
    return 0;
}

/* While a full copy is under way the dir holds the start of one: a
 * marker file says so, across a crash too, and such a node never runs for
 * primary (chand_cluster.c) nor starts as a single chand (the journal
 * refuses the dir). */
static void set_consistent(repl_follower_t *f, bool yes)
{
    if (yes == f->consistent)
        return;
    f->consistent = yes;
    if (yes || f->copying)
        return;   /* the marker goes once the copy is whole (copy_check) */
    int fd = openat(f->dir_fd, JR_COPYING, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || fsync(f->dir_fd) < 0) {
        log_err("replica: cannot create %s: %s; stopping", JR_COPYING, strerror(errno));
        _exit(1);
    }
    close(fd);
    f->copying = true;
}

/* A full copy that reached where the primary was when it began holds
 * every value answered OK then: whole, its node may be elected. */
static void copy_check(repl_follower_t *f)
{
    if (!f->copying || !f->consistent || f->log_gen < f->until_gen ||
        (f->log_gen == f->until_gen && f->log_len < f->until_off))
        return;
    if ((f->log_fd >= 0 && fdatasync(f->log_fd) < 0) || unlinkat(f->dir_fd, JR_COPYING, 0) < 0 ||
        fsync(f->dir_fd) < 0) {
        log_err("replica: removing %s: %s; stopping", JR_COPYING, strerror(errno));
        _exit(1);
    }
    f->copying = false;
    log_info("replica: the full copy is whole (log %" PRIu64 " at %" PRIu64 ")", f->log_gen,
             f->log_len);
}

static void reset_copy(repl_follower_t *f, const Chan__ReplData *d)
{
    /* the marker before the files go: a crash in between must not leave
     * an empty dir that could be elected */
    set_consistent(f, false);
    f->until_gen = d->has_until_gen ? d->until_gen : 0;
    f->until_off = d->has_until_off ? d->until_off : 0;
    file_sync_close(&f->log_fd);
    if (f->snap_fd >= 0) {
        close(f->snap_fd);
        f->snap_fd = -1;
    }
    chand_journal_remove_before(f->dir_fd, UINT64_MAX);
    f->log_gen = f->log_len = f->snap_gen = 0;
    f->snap_tmp_gen = f->snap_tmp_len = 0;
    f->pend.len = 0;
    f->st.full_copies++;
    log_info("replica: taking a full copy from %s", f->addr);
}

/* Close and remove the snapshot being received, if any. */
static void drop_snap_tmp(repl_follower_t *f)
{
    if (f->snap_fd < 0)
        return;
    close(f->snap_fd);
    f->snap_fd = -1;
    char tmp[JR_NAME_MAX];
    snprintf(tmp, sizeof tmp, JR_SNAP_FMT ".tmp", (unsigned long long)f->snap_tmp_gen);
    unlinkat(f->dir_fd, tmp, 0);
    f->snap_tmp_gen = f->snap_tmp_len = 0;
}

static int apply_snap(repl_follower_t *f, const Chan__ReplData *d)
{
    char tmp[JR_NAME_MAX], name[JR_NAME_MAX];
    snprintf(tmp, sizeof tmp, JR_SNAP_FMT ".tmp", (unsigned long long)d->gen);
    if (d->offset == 0) {
        /* a snapshot always comes whole from its start, also the one a
         * lost connection cut short: what was written of it goes */
        drop_snap_tmp(f);
        f->snap_fd = openat(f->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (f->snap_fd < 0)
            return fail_copy(f, "cannot create a snapshot file");
        f->snap_tmp_gen = d->gen;
        f->snap_tmp_len = 0;
        f->pend.len = 0;
    }
    if (f->snap_fd < 0 || d->gen != f->snap_tmp_gen || d->offset != f->snap_tmp_len + f->pend.len)
        return fail_copy(f, "snapshot bytes out of order");
    if (d->has_data && take_records(f, f->snap_fd, true, d->gen, &f->snap_tmp_len, d->data.data,
                                    d->data.len) < 0)
        return -1;
    if (!d->done)
        return 0;
    if (f->pend.len)
        return fail_copy(f, "a snapshot ends inside a record");
    snprintf(name, sizeof name, JR_SNAP_FMT, (unsigned long long)d->gen);
    if (fsync(f->snap_fd) < 0 || close(f->snap_fd) < 0 ||
        renameat(f->dir_fd, tmp, f->dir_fd, name) < 0 || fsync(f->dir_fd) < 0) {
        log_err("replica: keeping snapshot %" PRIu64 ": %s; stopping", d->gen, strerror(errno));
        _exit(1);
    }
    f->snap_fd = -1;
    f->snap_gen = d->gen;
    if (f->log_gen < d->gen) {   /* a full copy: its logs come next */
        file_sync_close(&f->log_fd);
        f->log_gen = f->log_len = 0;
    }
    chand_journal_remove_before(f->dir_fd, d->gen);
    set_consistent(f, true);
    return 0;
}

/* Whether the log that d starts names prev as the log before it (its
 * header: FILE, version, kind, generation, previous generation).  A header
 * without that field, or not whole in d, is given the benefit of the doubt:
 * the chain is checked again when the copy is loaded. */
static bool follows(const Chan__ReplData *d, uint64_t prev)
{
    rec_file_hdr_t h;
    if (!d->has_data || !rec_first_header(d->data.data, d->data.len, &h) || !h.has_prev)
        return true;
    return h.prev == prev;
}

static int apply_log(repl_follower_t *f, const Chan__ReplData *d)
{
    if (d->has_truncate) {
        if (d->gen != f->log_gen || f->log_fd < 0 || d->truncate > f->log_len)
            return fail_copy(f, "a cut of a log we do not hold");
        if (ftruncate(f->log_fd, (off_t)d->truncate) < 0 || fdatasync(f->log_fd) < 0) {
            log_err("replica: cutting log %" PRIu64 ": %s; stopping", d->gen, strerror(errno));
            _exit(1);
        }
        log_warn("replica: cut log %" PRIu64 " from %" PRIu64 " to %" PRIu64 " bytes: records "
                 "this node wrote as primary that the new primary never had", d->gen, f->log_len,
                 d->truncate);
        f->log_len = d->truncate;
        f->pend.len = 0;
    }
    if (d->gen != f->log_gen) {
        if (d->offset != 0 || f->pend.len || d->gen < f->log_gen)
            return fail_copy(f, "log bytes out of order");
        if (f->log_gen && !follows(d, f->log_gen))
            return fail_copy(f, "a log that does not follow the one this copy ends with");
        file_sync_close(&f->log_fd);
        char name[JR_NAME_MAX];
        snprintf(name, sizeof name, JR_LOG_FMT, (unsigned long long)d->gen);
        f->log_fd = openat(f->dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
                           0600);
        if (f->log_fd < 0)
            return fail_copy(f, "cannot create a log file");
        fsync(f->dir_fd);
        f->log_gen = d->gen;
        f->log_len = 0;
        if (!f->consistent && !f->snap_gen)
            set_consistent(f, true);   /* a copy of every log from the first */
    }
    if (d->offset != f->log_len + f->pend.len)
        return fail_copy(f, "log bytes out of order");
    if (d->has_data &&
        take_records(f, f->log_fd, false, d->gen, &f->log_len, d->data.data, d->data.len) < 0)
        return -1;
    return 0;
}

static int apply_data(repl_follower_t *f, const Chan__ReplData *d)
{
    if (!d->has_term || d->term != f->term)
        return fail_copy(f, "data of another term");
    if (!d->has_gen || !d->has_offset)
        return fail_copy(f, "data without a place");
    if (d->has_reset && d->reset)
        reset_copy(f, d);
    return d->has_snap && d->snap ? apply_snap(f, d) : apply_log(f, d);
}

/* A reply from the primary: the data of the copy. */
static bool fol_reply(void *arg, const Chan__Reply *r)
{
    repl_follower_t *f = arg;
    if (!r->has_status || r->status != CHAN__STATUS__OK) {
        char why[320];
        snprintf(why, sizeof why, "the primary refused: %s", r->message ? r->message : "?");
        return fail_copy(f, why) == 0;
    }
    if (r->id != f->replicate_id)
        return true;   /* Hello's answer */
    if (r->result_case != CHAN__REPLY__RESULT_REPL)
        return fail_copy(f, "an answer to Replicate without data") == 0;
    return apply_data(f, r->repl) == 0;
}

static void fol_read_done(void *arg)
{
    repl_follower_t *f = arg;
    copy_check(f);
    fol_ack(f);
}

static void fol_connected(void *arg)
{
    repl_follower_t *f = arg;
    f->connected = true;
    Chan__Replicate rp = CHAN__REPLICATE__INIT;
    rp.node = (char *)f->s->opts.node;
    rp.has_term = rp.has_snap_gen = rp.has_log_gen = rp.has_log_len = true;
    rp.term = f->term;
    rp.snap_gen = f->consistent ? f->snap_gen : 0;
    rp.log_gen = f->consistent ? f->log_gen : 0;
    rp.log_len = f->log_len;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.op_case = CHAN__REQUEST__OP_REPLICATE;
    rq.replicate = &rp;
    f->replicate_id = chand_peer_send(f->peer, &rq);
    f->pend.len = 0;
}

static void fol_down(void *arg, const char *why)
{
    repl_follower_t *f = arg;
    if (why)
        fail_copy(f, why);
    follower_disconnect(f, true);
}

static const peer_cbs_t fol_cbs = { fol_connected, fol_reply, fol_read_done, fol_down };

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    repl_follower_t *f = arg;
    if (f->following && !chand_peer_up(f->peer)) {
        f->st.reconnects++;
        chand_peer_connect(f->peer, f->addr);
    }
}

static void follower_disconnect(repl_follower_t *f, bool retry)
{
    chand_peer_close(f->peer);
    f->connected = false;
    f->pend.len = 0;   /* a record cut by the end of a connection comes again */
    drop_snap_tmp(f);  /* ... and a snapshot, from its start */
    if (f->log_fd >= 0)
        fdatasync(f->log_fd);
    if (retry && f->following) {
        struct timeval tv = { 0, RETRY_MS * 1000 };
        evtimer_add(f->retry, &tv);
    }
}

repl_follower_t *chand_repl_follower_new(chand_server_t *s, int dir_fd)
{
    jr_recovery_t r;
    char err[512];
    bool copying = faccessat(dir_fd, JR_COPYING, F_OK, 0) == 0;
    if (copying) {
        /* a full copy was cut short (a crash): what it left is no state at
         * all; the primary sends it all again */
        log_warn("data dir %s: an unfinished copy from a primary; removing it, a full copy "
                 "follows", s->opts.data_dir);
        chand_journal_remove_before(dir_fd, UINT64_MAX);
    }
    if (chand_recover(dir_fd, s->opts.data_dir, NULL, true, &r, err, sizeof err) < 0) {
        log_err("cannot load the data dir: %s", err);
        return NULL;
    }
    repl_follower_t *f = xcalloc(1, sizeof *f);
    f->s = s;
    f->dir_fd = dir_fd;
    f->log_fd = f->snap_fd = -1;
    f->snap_gen = r.snap_gen;
    f->log_gen = r.last_gen;
    f->log_len = r.last_len;
    f->consistent = !copying;
    f->copying = copying;
    if (!(f->peer = chand_peer_new(s, "replica", FOLLOW_MAX_FRAME, &fol_cbs, f))) {
        free(f);
        return NULL;
    }
    f->retry = evtimer_new(s->base, retry_cb, f);
    if (f->log_gen) {
        char name[JR_NAME_MAX];
        snprintf(name, sizeof name, JR_LOG_FMT, (unsigned long long)f->log_gen);
        f->log_fd = openat(dir_fd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
        /* what it holds counts as acknowledged once a primary hears of
         * it: on disk first (a previous run may have been killed before
         * its sync) */
        if (f->log_fd < 0 || (s->journal_always && fdatasync(f->log_fd) < 0)) {
            log_err("%s/%s: %s", s->opts.data_dir, name, strerror(errno));
            chand_repl_follower_free(f);
            return NULL;
        }
    }
    log_info("data dir %s: %" PRIu64 " channels and %" PRIu64 " values; log %" PRIu64
             " at %" PRIu64 " (a replica until elected)", s->opts.data_dir, r.channels, r.values,
             f->log_gen, f->log_len);
    return f;
}

void chand_repl_follow(repl_follower_t *f, const char *addr, uint64_t term)
{
    chand_repl_unfollow(f);
    snprintf(f->addr, sizeof f->addr, "%s", addr);
    f->term = term;
    f->following = true;
    chand_peer_connect(f->peer, f->addr);
}

void chand_repl_unfollow(repl_follower_t *f)
{
    f->following = false;
    evtimer_del(f->retry);
    follower_disconnect(f, false);
}

void chand_repl_follower_where(const repl_follower_t *f, uint64_t *gen, uint64_t *off,
                               bool *consistent)
{
    *gen = f->log_gen;
    *off = f->log_len;
    *consistent = f->consistent && !f->copying;
}

void chand_repl_follower_stats(const repl_follower_t *f, repl_stats_t *out)
{
    *out = f->st;
    out->following = f->following;
    out->connected = f->connected;
    out->gen = f->log_gen;
    out->off = f->log_len;
}

void chand_repl_follower_free(repl_follower_t *f)
{
    if (!f)
        return;
    chand_repl_unfollow(f);
    event_free(f->retry);
    file_sync_close(&f->log_fd);
    if (f->snap_fd >= 0)
        close(f->snap_fd);
    rec_buf_free(&f->pend);
    chand_peer_free(f->peer);
    free(f);
}

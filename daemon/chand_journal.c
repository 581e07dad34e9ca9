/*
 * chand_journal.c - the append-only log of --data-dir (design in
 * chand_journal.h; the record format in chand_record.h; reading it back in
 * chand_recover.c).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chand_alloc.h"
#include "chand_journal.h"
#include "chand_log.h"
#include "chand_record.h"
#include "chand_stall.h"

/* --fsync everysec and no: start the kernel's writeback of every this many
 * bytes, so that syncing the log when a rewrite closes it (the loop waits
 * for that) has little left to do: a second of unsynced writes was a 40-50
 * ms stall at a million values a second. */
#define KICK_BYTES (4u << 20)
/* The log writes zeros this far ahead of its end, in pieces this large
 * (see write_ahead). */
#define AHEAD_BYTES (2u << 20)
#define AHEAD_CHUNK (256u << 10)
/* A record still growing is closed past this many bytes. */
#define OPEN_MAX (1u << 20)
#define NONE ((size_t)-1)

/* Records being built, with the last one left open so that a run of puts
 * to one channel (or of deliveries, or of acks) is one record. */
typedef struct jr_writer {
    rec_buf_t buf;
    size_t open;             /* where the open record starts, or NONE */
    uint8_t type;            /* its type */
    uint64_t no;             /* a PUT's channel */
    uint64_t records;
} jr_writer_t;

struct chand_journal {
    jr_opts_t o;
    int dir_fd, lock_fd;
    core_t *core;
    jr_writer_t w;
    /* the log being appended */
    int fd;
    uint64_t gen, off;
    uint64_t alloc_end;      /* disk space reserved up to here */
    bool can_alloc;
    uint64_t kicked;         /* --fsync no: writeback started up to here */
    uint64_t ahead;          /* zeros written ahead of off up to here */
    /* since the snapshot */
    uint64_t snap_gen, snap_bytes, log_bytes;
    /* --fsync everysec: the thread and what it shares with the loop */
    pthread_t thr;
    bool thr_on;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, syncing;
    uint64_t unsynced;       /* everysec: bytes written since the last fdatasync */
    uint64_t want, synced;   /* always: positions (bytes written since start)
                                asked to be on disk, and on disk */
    bool turn_must;          /* this turn wrote a record replies wait for */
    uint64_t must;           /* the position after the last such turn */
    int notify;              /* always: an eventfd the thread bumps after each sync */
    int sync_err;            /* errno of a failed fdatasync, else 0 */
    /* a rewrite in progress */
    pid_t child;
    uint64_t child_gen, child_t0;
    uint64_t next_try_us;
    char why[256];           /* sends are refused for this, when refusing */
    /* Where each log started in positions (bytes written since start), for
     * replicas' acknowledgements of (generation, offset): the newest few. */
    struct jr_hist { uint64_t gen, off, pos; } hist[8];
    size_t nhist;
    jr_stats_t st;           /* fsync figures under mu */
};

/* ------------------------------------------------------------------------
 * Building records
 * ------------------------------------------------------------------------ */

static void w_close(jr_writer_t *w)
{
    if (w->open == NONE)
        return;
    rec_finish(&w->buf, w->open);
    w->open = NONE;
    w->type = 0;
    w->records++;
}

static void w_open(jr_writer_t *w, enum rec_type t)
{
    w_close(w);
    w->open = rec_begin(&w->buf, t);
    w->type = (uint8_t)t;
}

static void w_chan(jr_writer_t *w, enum rec_type t, uint64_t no)
{
    w_open(w, t);
    rec_put_varint(&w->buf, no);
    w_close(w);
}

static void w_make(jr_writer_t *w, uint64_t no, core_bytes_t name, uint64_t cap)
{
    w_open(w, REC_MAKE);
    rec_put_varint(&w->buf, no);
    rec_put_varint(&w->buf, cap);
    rec_put_bytes(&w->buf, name.data, name.len);
    w_close(w);
}

static void w_put(jr_writer_t *w, uint64_t no, uint64_t vid, uint32_t redelivered,
                  core_bytes_t data)
{
    if (w->type != REC_PUT || w->no != no || w->buf.len - w->open > OPEN_MAX) {
        w_open(w, REC_PUT);
        rec_put_varint(&w->buf, no);
        w->no = no;
    }
    /* one reservation for the value's fields and bytes */
    uint8_t *p = rec_room(&w->buf, 3 * CHAN_FRAME_HDR_MAX + data.len);
    uint8_t *start = p;
    p += chan_frame_put_len(p, vid);
    p += chan_frame_put_len(p, redelivered);
    p += chan_frame_put_len(p, data.len);
    if (data.len)
        memcpy(p, data.data, data.len);
    w->buf.len += (size_t)(p - start) + data.len;
}

static void w_id(jr_writer_t *w, enum rec_type t, uint64_t vid)
{
    if (w->type != t || w->buf.len - w->open > OPEN_MAX)
        w_open(w, t);
    rec_put_varint(&w->buf, vid);
}

/* A log names the log before it (prev): generations need not be
 * consecutive (chand_recover.c checks the chain). */
static void w_file(jr_writer_t *w, enum rec_file_kind kind, uint64_t gen, uint64_t prev)
{
    w_open(w, REC_FILE);
    rec_put_varint(&w->buf, REC_VERSION);
    rec_put_varint(&w->buf, kind);
    rec_put_varint(&w->buf, gen);
    if (kind == REC_KIND_LOG)
        rec_put_varint(&w->buf, prev);
    w_close(w);
}

/* ------------------------------------------------------------------------
 * What the core reports
 * ------------------------------------------------------------------------ */

/* Channels made, closed and deleted, and values put, are what replies
 * promise (OK to a send means on disk under --fsync always); deliveries and
 * acknowledgements only keep the redelivered marks exact, and ride with the
 * next sync (see chand_journal_commit). */
static void on_made(void *ctx, uint64_t no, core_bytes_t name, uint64_t cap)
{
    chand_journal_t *j = ctx;
    j->turn_must = true;
    w_make(&j->w, no, name, cap);
}

static void on_closed(void *ctx, uint64_t no)
{
    chand_journal_t *j = ctx;
    j->turn_must = true;
    w_chan(&j->w, REC_CLOSE, no);
}

static void on_deleted(void *ctx, uint64_t no)
{
    chand_journal_t *j = ctx;
    j->turn_must = true;
    w_chan(&j->w, REC_DELETE, no);
}

static void on_put(void *ctx, uint64_t no, const core_val_t *v)
{
    chand_journal_t *j = ctx;
    j->turn_must = true;
    w_put(&j->w, no, v->vid, v->redelivered, (core_bytes_t){ v->data, v->len });
}

static void on_delivered(void *ctx, uint64_t vid)
{
    w_id(&((chand_journal_t *)ctx)->w, REC_DLV, vid);
}

static void on_acked(void *ctx, uint64_t vid)
{
    w_id(&((chand_journal_t *)ctx)->w, REC_ACK, vid);
}

static const core_journal_t journal_ops = {
    on_made, on_closed, on_deleted, on_put, on_delivered, on_acked,
};

/* ------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------ */

static void file_name(char *out, bool snap, uint64_t gen, const char *suffix)
{
    snprintf(out, JR_NAME_MAX, snap ? JR_SNAP_FMT "%s" : JR_LOG_FMT "%s",
             (unsigned long long)gen, suffix);
}

/* An I/O error on the log: the replies of this turn have not gone out, and
 * the kernel's view of the file after a failed write or fsync cannot be
 * trusted (what PostgreSQL learned in 2018): stop, and let the restart
 * read what is on disk. */
static void die(const chand_journal_t *j, const char *what, int err)
{
    log_err("%s: %s of log." "%020" PRIu64 " failed: %s; stopping (no reply of this turn was "
            "sent; a restart recovers what is on disk)", j->o.dir, what, j->gen, strerror(err));
    _exit(1);
}

static void refuse(chand_journal_t *j, int err)
{
    if (j->st.refusing)
        return;
    snprintf(j->why, sizeof j->why, "the disk is full: %s in %s (sends to buffered channels "
             "are refused until there is space)", strerror(err), j->o.dir);
    log_warn("%s", j->why);
    j->st.refusing = true;
    core_refuse_puts(j->core, j->why);
}

/* Keep o.prealloc bytes reserved ahead of the log's end, so that a full disk
 * shows up here - sends refused while acknowledgements still have room -
 * and not in the middle of a turn's write. */
static void reserve_space(chand_journal_t *j)
{
    if (!j->can_alloc || j->alloc_end >= j->off + j->o.prealloc / 2)
        return;
    uint64_t from = j->alloc_end > j->off ? j->alloc_end : j->off;
    /* fallocate with KEEP_SIZE does not check RLIMIT_FSIZE (the size does
     * not change), yet every write past it fails with EFBIG: the limit is
     * where this file's disk ends */
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        from + j->o.prealloc > (uint64_t)rl.rlim_cur) {
        refuse(j, EFBIG);
        return;
    }
    if (fallocate(j->fd, FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)j->o.prealloc) == 0) {
        j->alloc_end = from + j->o.prealloc;
        if (j->st.refusing) {
            log_info("%s: disk space is back; sends are accepted again", j->o.dir);
            j->st.refusing = false;
            core_refuse_puts(j->core, NULL);
        }
        return;
    }
    if (errno == EOPNOTSUPP || errno == ENOSYS) {
        log_info("%s: the file system cannot reserve space (fallocate); a full disk will stop "
                 "chand instead of refusing sends", j->o.dir);
        j->can_alloc = false;
        return;
    }
    refuse(j, errno);
}

/* Write zeros ahead of the log's end, a large aligned piece at a time, so
 * that each turn's write lands in page-cache pages that exist already.
 * Measured here (ext4, 18 KB appends, as a batch of 256 values makes): an
 * append that must create its pages as it goes (a 4 KiB folio each, its
 * memory-cgroup charge, the file system's delayed-allocation bookkeeping)
 * costs about twice the CPU of one that overwrites, and that cost is the
 * event loop's; a 256 KiB write of zeros gets large folios and costs less
 * per byte than the two together save.  The zeros read as what the
 * reserved space reads as anyway: a log that ends in zeros ends at the
 * first of them (chand_recover.c), and it is cut to its real end when it
 * stops being the newest and when chand stops.  Only inside the space
 * reserve_space() holds, so that neither a full disk nor RLIMIT_FSIZE ever
 * meets these writes; a failed one only stops the writing ahead. */
static void write_ahead(chand_journal_t *j)
{
    static const uint8_t zeros[AHEAD_CHUNK];
    if (!j->can_alloc || j->ahead >= j->off + AHEAD_BYTES / 2)
        return;
    uint64_t from = j->ahead > j->off ? j->ahead : j->off;
    from = (from + AHEAD_CHUNK - 1) / AHEAD_CHUNK * AHEAD_CHUNK;   /* never over records */
    uint64_t to = j->off + AHEAD_BYTES < j->alloc_end ? j->off + AHEAD_BYTES : j->alloc_end;
    to = to / AHEAD_CHUNK * AHEAD_CHUNK;
    while (from < to && pwrite(j->fd, zeros, AHEAD_CHUNK, (off_t)from) == AHEAD_CHUNK)
        from += AHEAD_CHUNK;
    if (from > j->ahead)
        j->ahead = from;
}

/* Cut the log to its records' end when zeros were written past it: only
 * the newest log may end in anything but whole records. */
static void cut_ahead(chand_journal_t *j)
{
    if (j->ahead > j->off) {
        if (ftruncate(j->fd, (off_t)j->off) < 0)
            die(j, "ftruncate", errno);
        /* the cut gave back the space reserved past it too */
        j->alloc_end = j->off;
    }
    j->ahead = 0;
}

static void fsync_stats(chand_journal_t *j, uint64_t us)
{
    j->st.fsyncs++;
    j->st.fsync_us_total += us;
    if (us > j->st.fsync_us_max)
        j->st.fsync_us_max = us;
}

bool chand_journal_holds(const chand_journal_t *j)
{
    return j->o.fsync == JR_FSYNC_ALWAYS;
}

uint64_t chand_journal_needed(const chand_journal_t *j)
{
    return j->must;
}

uint64_t chand_journal_synced(chand_journal_t *j)
{
    pthread_mutex_lock(&j->mu);
    uint64_t s = j->synced;
    pthread_mutex_unlock(&j->mu);
    return s;
}

void chand_journal_sync_to(chand_journal_t *j, uint64_t pos)
{
    pthread_mutex_lock(&j->mu);
    if (pos > j->want) {
        j->want = pos;
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
}

int chand_journal_notify_fd(const chand_journal_t *j)
{
    return j->notify;
}

void chand_journal_commit(chand_journal_t *j, bool answered)
{
    w_close(&j->w);
    size_t n = j->w.buf.len;
    if (n) {
        if (rec_write_all(j->fd, j->w.buf.p, n, (int64_t)j->off) < 0)
            die(j, "write", errno);
        j->w.buf.len = 0;
        j->off += n;
        j->log_bytes += n;
        j->st.bytes_written += n;
        j->st.writes++;
        if (j->o.fsync == JR_FSYNC_EVERYSEC) {
            pthread_mutex_lock(&j->mu);
            j->unsynced += n;
            pthread_mutex_unlock(&j->mu);
        }
        if (j->o.fsync != JR_FSYNC_ALWAYS && j->off - j->kicked >= KICK_BYTES) {
            sync_file_range(j->fd, (off_t)j->kicked, (off_t)(j->off - j->kicked),
                            SYNC_FILE_RANGE_WRITE);
            j->kicked = j->off;
        }
        reserve_space(j);
        write_ahead(j);
    }
    if (j->turn_must) {
        j->must = j->st.bytes_written;
        j->turn_must = false;
    }
    if (answered && j->o.fsync == JR_FSYNC_ALWAYS)
        chand_journal_sync_to(j, j->must);
}

bool chand_journal_pending(const chand_journal_t *j)
{
    return j->w.buf.len > 0 || j->w.open != NONE;
}

/* With j->mu held: fdatasync the log with the lock let go meanwhile (the
 * loop's swap_fd waits while syncing), and record how it went.  0 or -1. */
static int sync_log_locked(chand_journal_t *j)
{
    j->syncing = true;
    int fd = j->fd;
    pthread_mutex_unlock(&j->mu);
    uint64_t t0 = chand_now_us();
    int rc = fdatasync(fd);
    int err = errno;
    uint64_t us = chand_now_us() - t0;
    pthread_mutex_lock(&j->mu);
    j->syncing = false;
    fsync_stats(j, us);
    if (rc < 0 && !j->sync_err)
        j->sync_err = err;
    pthread_cond_broadcast(&j->cv);
    return rc;
}

/* --fsync always: tell the loop the log is durable further (or that a sync
 * failed): it releases the replies that waited. */
static void notify_loop(const chand_journal_t *j)
{
    uint64_t one = 1;
    (void)!write(j->notify, &one, sizeof one);
}

/* --fsync everysec: once a second, fdatasync what was written. */
static void *sync_main(void *arg)
{
    chand_journal_t *j = arg;
    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        while (!j->stop && pthread_cond_timedwait(&j->cv, &j->mu, &until) == 0)
            ;
        if (j->stop || !j->unsynced)
            continue;
        j->unsynced = 0;
        sync_log_locked(j);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* --fsync always: fdatasync whenever the loop asks for more than is on
 * disk, taking in one go everything written by then (group commit across
 * turns: what the loop writes while a sync runs waits for the next). */
static void *sync_always_main(void *arg)
{
    chand_journal_t *j = arg;
    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        if (j->want <= j->synced) {
            pthread_cond_wait(&j->cv, &j->mu);
            continue;
        }
        uint64_t target = j->want;
        int rc = sync_log_locked(j);
        if (rc == 0 && target > j->synced)
            j->synced = target;
        notify_loop(j);
        if (rc < 0)
            break;   /* nothing is released any more: the loop stops */
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* Append from now on to fd (the loop's fd swap waits for a running
 * fdatasync of the old one). */
static int swap_fd(chand_journal_t *j, int fd)
{
    pthread_mutex_lock(&j->mu);
    while (j->syncing)
        pthread_cond_wait(&j->cv, &j->mu);
    int old = j->fd;
    j->fd = fd;
    j->unsynced = 0;
    pthread_mutex_unlock(&j->mu);
    return old;
}

/* ------------------------------------------------------------------------
 * Opening a log file
 * ------------------------------------------------------------------------ */

/* Remove a log just made and given up, for good: back after a power cut,
 * it would be the newest, and the one before it (appended to since) could
 * end in zeros or a torn write, which only the newest may. */
static void drop_new_log(chand_journal_t *j, const char *name)
{
    if (unlinkat(j->dir_fd, name, 0) == 0 && fsync(j->dir_fd) < 0)
        die(j, "fsync of the directory", errno);
}

static int open_log(chand_journal_t *j, uint64_t gen, uint64_t len, bool create, uint64_t prev)
{
    char name[JR_NAME_MAX];
    file_name(name, false, gen, "");
    /* no O_APPEND: records are written at the log's end, j->off, which
     * zeros written ahead lie beyond (write_ahead) */
    int flags = O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
    int fd = openat(j->dir_fd, name, flags, 0600);
    if (fd < 0) {
        log_err("%s/%s: %s", j->o.dir, name, strerror(errno));
        return -1;
    }
    if (len == 0) {
        jr_writer_t w = { .open = NONE };
        w_file(&w, REC_KIND_LOG, gen, prev);
        int rc = rec_write_all(fd, w.buf.p, w.buf.len, -1);
        if (rc == 0 && (fdatasync(fd) < 0 || fsync(j->dir_fd) < 0))
            rc = -1;
        len = w.buf.len;
        rec_buf_free(&w.buf);
        if (rc < 0) {
            log_err("%s/%s: %s", j->o.dir, name, strerror(errno));
            close(fd);
            if (create)
                drop_new_log(j, name);
            return -1;
        }
    }
    return fd;
}

/* ------------------------------------------------------------------------
 * Rewriting: a child writes the live state; the loop goes on
 * ------------------------------------------------------------------------ */

static void snap_chan(void *arg, uint64_t no, core_bytes_t name, uint64_t cap, bool closed)
{
    jr_writer_t *w = arg;
    w_make(w, no, name, cap);
    if (closed)
        w_chan(w, REC_CLOSE, no);
}

struct snap_out {
    jr_writer_t w;
    int fd;
    bool failed;
};

static void snap_flush(struct snap_out *s)
{
    if (!s->failed && rec_write_all(s->fd, s->w.buf.p, s->w.buf.len, -1) < 0)
        s->failed = true;
    s->w.buf.len = 0;
}

static void snap_val(void *arg, uint64_t no, uint64_t vid, uint32_t redelivered, core_bytes_t data)
{
    struct snap_out *s = arg;
    w_put(&s->w, no, vid, redelivered, data);
    if (s->w.buf.len >= OPEN_MAX) {
        w_close(&s->w);
        snap_flush(s);
    }
}

static void snap_chan_out(void *arg, uint64_t no, core_bytes_t name, uint64_t cap, bool closed)
{
    struct snap_out *s = arg;
    snap_chan(&s->w, no, name, cap, closed);
    if (s->w.buf.len >= OPEN_MAX)
        snap_flush(s);
}

/* In the child: write snap.gen from the memory fork() gave us. */
static void __attribute__((noreturn)) snapshot_child(chand_journal_t *j, uint64_t gen,
                                                       pid_t parent)
{
    /* die with the daemon: a rewrite must not outlive it and race the
     * next chand on the same dir */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(2);
    /* hold nothing of the daemon's: sockets, its log, its lock */
    if (dup2(j->dir_fd, 3) < 0)
        _exit(3);
    close_range(4, ~0u, 0);
    char tmp[JR_NAME_MAX], name[JR_NAME_MAX];
    file_name(tmp, true, gen, ".tmp");
    file_name(name, true, gen, "");
    struct snap_out s = { .w = { .open = NONE } };
    s.fd = openat(3, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (s.fd < 0)
        _exit(4);
    w_file(&s.w, REC_KIND_SNAP, gen, 0);
    uint64_t last_no, last_vid;
    core_dump(j->core, snap_chan_out, snap_val, &s, &last_no, &last_vid);
    w_open(&s.w, REC_END);
    rec_put_varint(&s.w.buf, last_no);
    rec_put_varint(&s.w.buf, last_vid);
    w_close(&s.w);
    snap_flush(&s);
    if (s.failed || fsync(s.fd) < 0 || close(s.fd) < 0 || renameat(3, tmp, 3, name) < 0 ||
        fsync(3) < 0) {
        int err = errno;
        unlinkat(3, tmp, 0);
        fprintf(stderr, "chand: writing the snapshot %s failed: %s\n", name, strerror(err));
        _exit(5);
    }
    _exit(0);
}

static void hist_add(chand_journal_t *j)
{
    size_t n = sizeof j->hist / sizeof j->hist[0];
    if (j->nhist == n) {
        memmove(j->hist, j->hist + 1, (n - 1) * sizeof j->hist[0]);
        j->nhist--;
    }
    j->hist[j->nhist++] = (struct jr_hist){ j->gen, j->off, j->st.bytes_written };
}

/* Before the log after the current one is made: only the newest log may
 * end in anything but whole records (zeros written ahead, a torn write),
 * so the current one is cut to its records and made durable while it is
 * still the newest.  Were the next log made first, a crash between the two
 * would leave a dir that recovery refuses.  The caller writes nothing more
 * to it before switch_log. */
static void seal_log(chand_journal_t *j)
{
    cut_ahead(j);
    if (fdatasync(j->fd) < 0)
        die(j, "fdatasync", errno);
}

/* Append from now on to log fd, generation gen, which follows the current
 * one, sealed (seal_log) before fd was made. */
static void switch_log(chand_journal_t *j, int fd, uint64_t gen)
{
    close(swap_fd(j, fd));
    pthread_mutex_lock(&j->mu);
    j->synced = j->st.bytes_written;   /* all of it, with the old log */
    pthread_mutex_unlock(&j->mu);
    if (j->notify >= 0)
        notify_loop(j);
    j->gen = gen;
    j->off = 0;
    j->kicked = 0;
    j->alloc_end = 0;
    struct stat sb;
    if (fstat(fd, &sb) == 0)
        j->off = (uint64_t)sb.st_size;
    j->log_bytes += j->off;
    hist_add(j);
    reserve_space(j);
}

static void rewrite_start(chand_journal_t *j)
{
    uint64_t t0 = chand_now_us();
    chand_journal_commit(j, false);
    seal_log(j);
    uint64_t gen = j->gen + 1;
    int fd = open_log(j, gen, 0, true, j->gen);
    if (fd < 0) {
        reserve_space(j);   /* still the newest: what the seal gave back */
        j->next_try_us = chand_now_us() + 10000000;
        return;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        snapshot_child(j, gen, parent);
    if (pid < 0) {
        log_warn("%s: cannot start a rewrite: fork: %s", j->o.dir, strerror(errno));
        char name[JR_NAME_MAX];
        file_name(name, false, gen, "");
        close(fd);
        drop_new_log(j, name);
        reserve_space(j);
        j->next_try_us = chand_now_us() + 10000000;
        return;
    }
    /* what the child dumps is everything up to here: the rest goes to the
     * new log */
    switch_log(j, fd, gen);
    j->st.last_rewrite_stall_us = chand_now_us() - t0;
    j->child = pid;
    j->child_gen = gen;
    j->child_t0 = t0;
    log_info("%s: rewriting the log (snapshot %" PRIu64 ", child %d; the loop paused %" PRIu64
             " us)",
             j->o.dir, gen, (int)pid, j->st.last_rewrite_stall_us);
}

/* Files removed while still open, whose last close frees their blocks and
 * drops their cached pages: about 20 ms for a 64 MiB log on ext4, a stall
 * of the loop if the loop did it.  A thread of their own closes them. */
typedef struct {
    size_t n;
    int fd[];
} closing_t;

static void *close_main(void *arg)
{
    closing_t *c = arg;
    for (size_t i = 0; i < c->n; i++)
        close(c->fd[i]);
    free(c);
    return NULL;
}

static void close_in_background(closing_t *c)
{
    pthread_attr_t a;
    pthread_t t;
    bool started = false;
    if (c->n && pthread_attr_init(&a) == 0) {
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&t, &a, close_main, c) == 0;
        pthread_attr_destroy(&a);
    }
    if (!started)
        close_main(c);   /* nothing to close, or no thread: here, then */
}

/* Unlink name, keeping it open in c (when there is room) so that the
 * unlink only removes the name. */
static void remove_file(int dir_fd, const char *name, closing_t *c, size_t room)
{
    int fd = c && c->n < room ? openat(dir_fd, name, O_RDONLY | O_CLOEXEC) : -1;
    if (unlinkat(dir_fd, name, 0) == 0 && fd >= 0)
        c->fd[c->n++] = fd;
    else if (fd >= 0)
        close(fd);
}

void chand_journal_remove_before(int dir_fd, uint64_t gen)
{
    uint64_t *logs, *snaps;
    size_t nlogs, nsnaps;
    char name[JR_NAME_MAX];
    if (chand_recover_list(dir_fd, &logs, &nlogs, &snaps, &nsnaps) == 0) {
        size_t room = nlogs + nsnaps;
        closing_t *c = malloc(sizeof *c + room * sizeof c->fd[0]);
        if (c)
            c->n = 0;
        for (size_t i = 0; i < nlogs && logs[i] < gen; i++) {
            file_name(name, false, logs[i], "");
            remove_file(dir_fd, name, c, room);
        }
        for (size_t i = 0; i < nsnaps && snaps[i] < gen; i++) {
            file_name(name, true, snaps[i], "");
            remove_file(dir_fd, name, c, room);
        }
        /* the names first: a directory sync while the blocks are being
         * freed waits for that (15 ms on ext4) */
        fsync(dir_fd);
        if (c)
            close_in_background(c);
    } else {
        fsync(dir_fd);
    }
    free(logs);
    free(snaps);
}

static void rewrite_finish(chand_journal_t *j, int status)
{
    pid_t pid = j->child;
    j->child = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        j->st.rewrite_failures++;
        log_warn("%s: the rewrite (child %d) failed (%s %d); the log is kept, retrying in 10 s",
                 j->o.dir, (int)pid, WIFEXITED(status) ? "exit" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        char tmp[JR_NAME_MAX];
        file_name(tmp, true, j->child_gen, ".tmp");
        unlinkat(j->dir_fd, tmp, 0);
        j->next_try_us = chand_now_us() + 10000000;
        return;
    }
    char name[JR_NAME_MAX];
    file_name(name, true, j->child_gen, "");
    struct stat sb;
    uint64_t size = fstatat(j->dir_fd, name, &sb, 0) == 0 ? (uint64_t)sb.st_size : 0;
    chand_journal_remove_before(j->dir_fd, j->child_gen);
    j->snap_gen = j->child_gen;
    j->snap_bytes = size;
    j->log_bytes = j->off;
    j->st.rewrites++;
    j->st.last_rewrite_unix = (uint64_t)time(NULL);
    j->st.last_rewrite_us = chand_now_us() - j->child_t0;
    log_info("%s: rewrite done: snapshot %" PRIu64 " holds %" PRIu64 " bytes (%" PRIu64 " ms)",
             j->o.dir, j->snap_gen, size, j->st.last_rewrite_us / 1000);
}

int chand_journal_rotate(chand_journal_t *j, uint64_t gen)
{
    if (gen <= j->gen)
        gen = j->gen + 1;
    chand_journal_commit(j, false);
    seal_log(j);
    int fd = open_log(j, gen, 0, true, j->gen);
    if (fd < 0) {
        reserve_space(j);   /* still the newest: what the seal gave back */
        return -1;
    }
    switch_log(j, fd, gen);
    log_info("%s: appending to log %" PRIu64 " from now on", j->o.dir, gen);
    return 0;
}

void chand_journal_where(const chand_journal_t *j, uint64_t *gen, uint64_t *off,
                         uint64_t *snap_gen)
{
    *gen = j->gen;
    *off = j->off;
    *snap_gen = j->snap_gen;
}

int chand_journal_dir_fd(const chand_journal_t *j)
{
    return j->dir_fd;
}

uint64_t chand_journal_pos_of(const chand_journal_t *j, uint64_t gen, uint64_t off)
{
    for (size_t i = j->nhist; i-- > 0;) {
        const struct jr_hist *h = &j->hist[i];
        if (h->gen == gen)
            return off > h->off ? h->pos + (off - h->off) : h->pos;
        if (h->gen < gen)
            return i + 1 < j->nhist ? j->hist[i + 1].pos : h->pos;   /* a gap: all before */
    }
    return 0;
}

uint64_t chand_journal_written(const chand_journal_t *j)
{
    return j->st.bytes_written;
}

void chand_journal_tick(chand_journal_t *j)
{
    pthread_mutex_lock(&j->mu);
    int err = j->sync_err;
    pthread_mutex_unlock(&j->mu);
    if (err)
        die(j, "fdatasync", err);
    if (j->o.fsync == JR_FSYNC_ALWAYS)
        chand_journal_sync_to(j, j->st.bytes_written);   /* acks no reply waited for */
    if (j->child) {
        int status;
        if (waitpid(j->child, &status, WNOHANG) == j->child)
            rewrite_finish(j, status);
    } else if (j->log_bytes >= j->o.rewrite_size && j->log_bytes >= j->snap_bytes &&
               chand_now_us() >= j->next_try_us) {
        rewrite_start(j);
    }
    if (j->st.refusing)
        reserve_space(j);
}

/* ------------------------------------------------------------------------
 * Open, close, inspect
 * ------------------------------------------------------------------------ */

/* Hold dir (open as dir_fd) for this chand: the lock's descriptor, or -1
 * (logged). */
static int lock_dir_fd(int dir_fd, const char *dir)
{
    int lock_fd = openat(dir_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) {
        log_err("%s/LOCK: %s", dir, strerror(errno));
        return -1;
    }
    /* A chand killed just after forking a rewrite leaves the lock (and its
     * listeners) with the child until the child runs: it holds copies of
     * every descriptor from fork to its first lines, and dies with its
     * parent.  A restart at once finds the lock held and the chand named
     * in LOCK gone: wait for the child (it goes as soon as it is
     * scheduled; 5 s at most); a chand that is alive is refused at once. */
    for (int tries = 0; flock(lock_fd, LOCK_EX | LOCK_NB) < 0; tries++) {
        int err = errno;
        char pid[32] = "?";
        ssize_t n = pread(lock_fd, pid, sizeof pid - 1, 0);
        if (n > 0) {
            pid[n] = 0;
            pid[strcspn(pid, "\n")] = 0;
        }
        long owner = strtol(pid, NULL, 10);
        if (err == EWOULDBLOCK && owner > 0 && kill((pid_t)owner, 0) < 0 && errno == ESRCH &&
            tries < 500) {
            if (!tries)
                log_info("data dir %s: locked, and chand %s is gone: waiting for its rewrite "
                         "child to exit", dir, pid);
            usleep(10000);
            continue;
        }
        log_err("data dir %s is in use by another chand (pid %s)", dir, pid);
        close(lock_fd);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(lock_fd, 0) < 0 || pwrite(lock_fd, pid, (size_t)n, 0) != n)
        log_warn("%s/LOCK: cannot write our pid: %s", dir, strerror(errno));
    return lock_fd;
}

static int lock_dir(chand_journal_t *j)
{
    j->lock_fd = j->o.locked ? j->o.lock_fd : lock_dir_fd(j->dir_fd, j->o.dir);
    return j->lock_fd < 0 ? -1 : 0;
}

static int open_dir_path(const char *dir)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        log_err("--data-dir %s: %s", dir, strerror(errno));
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        log_err("--data-dir %s: %s", dir, strerror(errno));
    return fd;
}

static int open_dir(chand_journal_t *j)
{
    j->dir_fd = open_dir_path(j->o.dir);
    return j->dir_fd < 0 ? -1 : 0;
}

int chand_journal_lock(const char *dir, int *dir_fd)
{
    *dir_fd = open_dir_path(dir);
    if (*dir_fd < 0)
        return -1;
    int fd = lock_dir_fd(*dir_fd, dir);
    if (fd < 0) {
        close(*dir_fd);
        *dir_fd = -1;
    }
    return fd;
}

static void journal_free(chand_journal_t *j)
{
    if (j->fd >= 0)
        close(j->fd);
    if (j->lock_fd >= 0)
        close(j->lock_fd);   /* and the lock with it */
    if (j->dir_fd >= 0)
        close(j->dir_fd);
    if (j->notify >= 0)
        close(j->notify);
    rec_buf_free(&j->w.buf);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

chand_journal_t *chand_journal_open(const jr_opts_t *o, core_t *core)
{
    chand_journal_t *j = xcalloc(1, sizeof *j);
    j->o = *o;
    j->core = core;
    j->dir_fd = j->lock_fd = j->fd = j->notify = -1;
    j->w.open = NONE;
    j->can_alloc = true;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    if (open_dir(j) < 0 || lock_dir(j) < 0)
        goto fail;
    if (faccessat(j->dir_fd, JR_COPYING, F_OK, 0) == 0) {
        log_err("data dir %s holds an unfinished copy from a cluster primary (%s/%s): it "
                "is not a whole journal; start it as a cluster node to finish the copy",
                o->dir, o->dir, JR_COPYING);
        goto fail;
    }
    char err[512];
    jr_recovery_t *r = &j->st.recovery;
    if (chand_recover(j->dir_fd, o->dir, core, true, r, err, sizeof err) < 0) {
        log_err("cannot load the data dir: %s", err);
        goto fail;
    }
    j->snap_gen = r->snap_gen;
    j->snap_bytes = r->snap_bytes;
    j->log_bytes = r->log_bytes;
    j->gen = r->last_gen ? r->last_gen : r->snap_gen ? r->snap_gen : 1;
    j->off = r->last_gen ? r->last_len : 0;
    /* a newest log without its header gets one naming the log before it,
     * as a rewrite would have: the next start checks the chain */
    j->fd = open_log(j, j->gen, j->off, r->last_gen == 0, r->last_gen ? r->last_prev : 0);
    if (j->fd < 0)
        goto fail;
    if (!j->off) {
        struct stat sb;
        fstat(j->fd, &sb);
        j->off = (uint64_t)sb.st_size;
        j->log_bytes += j->off;
    }
    hist_add(j);
    log_info("data dir %s: %" PRIu64 " channels and %" PRIu64 " values (%" PRIu64 " bytes) "
             "loaded in %" PRIu64 " ms from %" PRIu64 " files; fsync %s",
             o->dir, r->channels, r->values, r->value_bytes, r->us / 1000, r->files,
             o->fsync == JR_FSYNC_ALWAYS ? "always" : o->fsync == JR_FSYNC_EVERYSEC ? "everysec"
                                                                                   : "no");
    if (o->fsync == JR_FSYNC_ALWAYS &&
        (j->notify = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        log_err("eventfd: %s", strerror(errno));
        goto fail;
    }
    if (o->fsync != JR_FSYNC_NO) {
        if (pthread_create(&j->thr, NULL, o->fsync == JR_FSYNC_ALWAYS ? sync_always_main
                                                                    : sync_main, j) != 0) {
            log_err("cannot start the fsync thread");
            goto fail;
        }
        j->thr_on = true;
    }
    reserve_space(j);
    core_set_journal(core, &journal_ops, j);
    return j;
fail:
    journal_free(j);
    return NULL;
}

void chand_journal_close(chand_journal_t *j)
{
    if (!j)
        return;
    core_set_journal(j->core, NULL, NULL);
    core_refuse_puts(j->core, NULL);
    chand_journal_commit(j, false);
    if (j->child) {
        /* a rewrite in progress is abandoned: the logs still hold it all */
        kill(j->child, SIGKILL);
        waitpid(j->child, NULL, 0);
        char tmp[JR_NAME_MAX];
        file_name(tmp, true, j->child_gen, ".tmp");
        unlinkat(j->dir_fd, tmp, 0);
    }
    if (j->thr_on) {
        pthread_mutex_lock(&j->mu);
        j->stop = true;
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->thr, NULL);
    }
    cut_ahead(j);
    if (fdatasync(j->fd) < 0)
        log_err("%s: fdatasync at shutdown: %s", j->o.dir, strerror(errno));
    journal_free(j);
}

void chand_journal_stats(const chand_journal_t *j, jr_stats_t *out)
{
    chand_journal_t *m = (chand_journal_t *)j;
    pthread_mutex_lock(&m->mu);
    *out = j->st;
    pthread_mutex_unlock(&m->mu);
    out->records = j->w.records;
    out->disk_bytes = j->snap_bytes + j->log_bytes;
}

int chand_journal_check(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "chand --check: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    jr_recovery_t r;
    char err[512];
    int rc = chand_recover(fd, dir, NULL, false, &r, err, sizeof err);
    close(fd);
    if (rc < 0) {
        printf("%s: CORRUPT: %s\n", dir, err);
        return 1;
    }
    printf("%s: ok: %" PRIu64 " files, %" PRIu64 " records; snapshot %" PRIu64
           ", logs up to %" PRIu64 "; %" PRIu64 " channels, %" PRIu64 " values (%" PRIu64
           " bytes); checked in %" PRIu64 " ms\n",
           dir, r.files, r.records, r.snap_gen, r.last_gen, r.channels, r.values, r.value_bytes,
           r.us / 1000);
    if (r.last_zeros)
        printf("%s: the newest log ends at offset %" PRIu64 ", followed by %" PRIu64
               " zero bytes written ahead of it; chand cuts them off at start\n",
               dir, r.last_len, r.last_size - r.last_len);
    else if (r.last_size > r.last_len)
        printf("%s: the newest log has a torn tail of %" PRIu64 " bytes at offset %" PRIu64
               " (a crash mid-write); chand cuts it off at start\n",
               dir, r.last_size - r.last_len, r.last_len);
    return 0;
}

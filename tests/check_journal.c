/*
 * check_journal.c - unit tests of chand's journal (daemon/chand_journal.c,
 * chand_recover.c, chand_record.c), in-process: a core is driven through
 * its API with a journal attached, the journal is closed, and the data dir
 * is loaded into a fresh core and compared - whole, cut at every byte of
 * its tail, with bits flipped, after a rewrite.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>   /* before chand_log.h: its levels must not clash with syslog's */
#include <unistd.h>

#include "chand_core.h"
#include "chand_crc32c.h"
#include "chand_journal.h"
#include "chand_log.h"
#include "chand_record.h"
#include "chand_recover.h"

/* ---- a core with one session that remembers its last answer ---- */

typedef struct tsess {
    core_sess_t *s;
    core_status_t st;
    size_t ndlv;
    uint64_t dlv[64];
    char val[64][16];
    uint32_t red[64];
} tsess_t;

static void on_reply(void *ctx, const core_reply_t *r)
{
    tsess_t *t = ctx;
    t->st = r->status;
    t->ndlv = r->ndlv < 64 ? r->ndlv : 64;
    for (size_t i = 0; i < t->ndlv; i++) {
        t->dlv[i] = r->dlv[i].id;
        snprintf(t->val[i], sizeof t->val[i], "%.*s", (int)r->dlv[i].val->len,
                 r->dlv[i].val->data);
        t->red[i] = r->dlv[i].val->redelivered;
    }
}

static const core_limits_t limits = {
    .max_value = 1024, .max_reply = 1 << 20, .max_batch = 64, .max_pending = 100,
    .max_cases = 16, .max_channels = 1000, .max_cap = 1000000,
};

static core_bytes_t B(const char *s)
{
    return (core_bytes_t){ (const uint8_t *)s, strlen(s) };
}

static uint64_t next_id;

static void mk(tsess_t *t, const char *name, uint64_t cap)
{
    core_open(t->s, ++next_id, B(name), true, cap, false, false);
    ck_assert_int_eq(t->st, CORE_ST_OK);
}

static void snd(tsess_t *t, const char *name, const char *v)
{
    core_bytes_t b = B(v);
    core_send(t->s, ++next_id, B(name), &b, 1, 0, 0);
}

static size_t rcv(tsess_t *t, const char *name, uint32_t max)
{
    core_recv(t->s, ++next_id, B(name), max, UINT64_MAX, 0, 0);
    return t->st == CORE_ST_OK ? t->ndlv : 0;
}

/* ---- data dirs ---- */

static char dir[64], dir2[64];

static void rm_dir(const char *d)
{
    DIR *dp = opendir(d);
    if (!dp)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(dp)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", d, e->d_name);
            unlink(p);
        }
    closedir(dp);
    rmdir(d);
}

static void setup(void)
{
    chand_log_level = CHAND_LOG_ERR;
    next_id = 0;
    strcpy(dir, "/tmp/check_journal.XXXXXX");
    strcpy(dir2, "/tmp/check_journal.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_ptr_nonnull(mkdtemp(dir2));
}

static void teardown(void)
{
    rm_dir(dir);
    rm_dir(dir2);
}

/* A journal on d for core c: fsync policy, space reserved ahead, and the
 * log size that starts a rewrite (0: never). */
static chand_journal_t *jopen_with(const char *d, core_t *c, enum jr_fsync fsync,
                                   uint64_t prealloc, uint64_t rewrite)
{
    jr_opts_t o = { .dir = d, .fsync = fsync, .prealloc = prealloc,
                    .rewrite_size = rewrite ? rewrite : UINT64_C(1) << 40 };
    return chand_journal_open(&o, c);
}

static chand_journal_t *jopen(const char *d, core_t *c, uint64_t rewrite)
{
    return jopen_with(d, c, JR_FSYNC_NO, 1 << 16, rewrite);
}

static void log_path(char *out, const char *d, uint64_t gen)
{
    char name[JR_NAME_MAX];
    snprintf(name, sizeof name, JR_LOG_FMT, (unsigned long long)gen);
    snprintf(out, 512, "%s/%s", d, name);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(*len ? *len : 1);
    ck_assert_uint_eq(fread(p, 1, *len, f), *len);
    fclose(f);
    return p;
}

static void spill(const char *path, const uint8_t *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, len, f), len);
    fclose(f);
}

/* ---- the state of a core, as one canonical string ---- */

typedef struct dstate {
    char chans[64][128];
    size_t nchans;
    struct { uint64_t no, vid; uint32_t red; char data[40]; } vals[65536];
    size_t nvals;
} dstate_t;

static void d_chan(void *arg, uint64_t no, core_bytes_t name, uint64_t cap, bool closed)
{
    dstate_t *d = arg;
    ck_assert_uint_lt(d->nchans, 64);
    snprintf(d->chans[d->nchans++], 128, "%03llu %.*s cap=%llu%s", (unsigned long long)no,
             (int)name.len, name.data, (unsigned long long)cap, closed ? " closed" : "");
}

static void d_val(void *arg, uint64_t no, uint64_t vid, uint32_t red, core_bytes_t data)
{
    dstate_t *d = arg;
    ck_assert_uint_lt(d->nvals, 65536);
    d->vals[d->nvals].no = no;
    d->vals[d->nvals].vid = vid;
    d->vals[d->nvals].red = red;
    snprintf(d->vals[d->nvals].data, 40, "%.*s", (int)data.len, data.data);
    d->nvals++;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* A value as a restart restores it: the held-back ones first. */
static int cmp_val(const void *a, const void *b)
{
    const typeof(((dstate_t *)0)->vals[0]) *x = a, *y = b;
    if (x->no != y->no)
        return x->no < y->no ? -1 : 1;
    if ((x->red > 0) != (y->red > 0))
        return x->red > 0 ? -1 : 1;
    return (x->vid > y->vid) - (x->vid < y->vid);
}

/* Every channel and value of c in a string; sorted: the order of values
 * in a channel is checked by the tests that receive them. */
static char *state_of(const core_t *c)
{
    static dstate_t d;
    memset(&d, 0, sizeof d);
    uint64_t ln, lv;
    core_dump(c, d_chan, d_val, &d, &ln, &lv);
    qsort(d.chans, d.nchans, sizeof d.chans[0], cmp_str);
    qsort(d.vals, d.nvals, sizeof d.vals[0], cmp_val);
    size_t cap = 256 + d.nchans * 130 + d.nvals * 80, n = 0;
    char *s = malloc(cap);
    s[0] = 0;
    for (size_t i = 0; i < d.nchans; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s\n", d.chans[i]);
    for (size_t i = 0; i < d.nvals; i++)
        n += (size_t)snprintf(s + n, cap - n, "%llu:%llu r%u %s\n",
                              (unsigned long long)d.vals[i].no,
                              (unsigned long long)d.vals[i].vid, d.vals[i].red, d.vals[i].data);
    return s;
}

/* Load data dir d into a fresh core: its state, or NULL (err filled). */
static char *load(const char *d, bool cleanup, char *err, size_t errlen)
{
    core_t *c = core_new(&limits, on_reply);
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(fd, 0);
    jr_recovery_t r;
    int rc = chand_recover(fd, d, c, cleanup, &r, err, errlen);
    close(fd);
    char *s = rc == 0 ? state_of(c) : NULL;
    core_free(c);
    return s;
}

/* ---- a workload: every kind of record, a commit (one write) each ---- */

static char *workload(const char *d, bool ack_all)
{
    core_t *c = core_new(&limits, on_reply);
    tsess_t t = { 0 };
    t.s = core_sess_new(c, &t);
    chand_journal_t *j = jopen(d, c, 0);
    ck_assert_ptr_nonnull(j);
    mk(&t, "a", 10);
    chand_journal_commit(j, true);
    mk(&t, "rendezvous", 0);
    mk(&t, "c", 5);
    mk(&t, "gone", 5);
    core_open(t.s, ++next_id, B(""), false, 0, true, false);   /* temporary: never written */
    chand_journal_commit(j, true);
    char v[16];
    for (int i = 0; i < 8; i++) {
        snprintf(v, sizeof v, "a%d", i);
        snd(&t, "a", v);
        chand_journal_commit(j, true);
    }
    snd(&t, "c", "c0");
    snd(&t, "c", "c1");
    snd(&t, "gone", "g0");
    chand_journal_commit(j, true);
    ck_assert_uint_eq(rcv(&t, "a", 3), 3);   /* a0 a1 a2 delivered */
    chand_journal_commit(j, true);
    core_ack(t.s, t.dlv[0]);                  /* a0 gone; a1, a2 held back */
    if (ack_all) {
        core_ack(t.s, t.dlv[1]);
        core_ack(t.s, t.dlv[2]);
    }
    chand_journal_commit(j, true);
    core_close(t.s, ++next_id, B("c"));
    chand_journal_commit(j, true);
    core_delete(t.s, ++next_id, B("gone"));
    chand_journal_commit(j, true);
    snd(&t, "a", "a8");
    chand_journal_commit(j, true);
    char *s = state_of(c);
    chand_journal_close(j);
    core_sess_drop(t.s);
    core_free(c);
    return s;
}

START_TEST(t_round_trip)
{
    char *before = workload(dir, false);
    char err[512];
    char *after = load(dir, true, err, sizeof err);
    ck_assert_msg(after, "%s", err);
    ck_assert_str_eq(after, before);
    /* the contents, by hand: temporary and deleted channels gone, the
     * closed one closed, a1 and a2 back at the head marked redelivered */
    ck_assert_ptr_nonnull(strstr(after, "001 a cap=10\n"));
    ck_assert_ptr_nonnull(strstr(after, "002 rendezvous cap=0\n"));
    ck_assert_ptr_nonnull(strstr(after, "003 c cap=5 closed\n"));
    ck_assert_ptr_null(strstr(after, "gone"));
    ck_assert_ptr_null(strstr(after, "tmp."));
    ck_assert_ptr_null(strstr(after, " a0\n"));
    ck_assert_ptr_nonnull(strstr(after, "r1 a1\n1:3 r1 a2\n1:4 r0 a3\n"));
    free(before);
    free(after);

    /* and served in that order by a core that loaded it */
    core_t *c = core_new(&limits, on_reply);
    tsess_t t = { 0 };
    t.s = core_sess_new(c, &t);
    chand_journal_t *j = jopen(dir, c, 0);
    ck_assert_ptr_nonnull(j);
    core_recv(t.s, ++next_id, B("a"), 64, UINT64_MAX, 0, 0);
    ck_assert_uint_eq(t.ndlv, 8);
    for (int i = 0; i < 8; i++) {
        char want[16];
        snprintf(want, sizeof want, "a%d", i + 1);
        ck_assert_str_eq(t.val[i], want);
        ck_assert_uint_eq(t.red[i], i < 2 ? 1 : 0);
    }
    core_sess_drop(t.s);
    chand_journal_close(j);
    core_free(c);
}
END_TEST

/* Where the records of a file end. */
static size_t record_ends(const uint8_t *p, size_t len, size_t *ends, size_t max)
{
    rec_reader_t r = { p, len, 0 };
    uint8_t type;
    const uint8_t *body;
    size_t blen, n = 0;
    while (rec_next(&r, &type, &body, &blen) == REC_OK) {
        ck_assert_uint_lt(n, max);
        ends[n++] = r.off;
    }
    ck_assert_uint_eq(r.off, len);
    return n;
}

START_TEST(t_torn_tail_every_offset)
{
    free(workload(dir, true));
    char path[512], path2[512], err[512];
    log_path(path, dir, 1);
    log_path(path2, dir2, 1);
    size_t len;
    uint8_t *log = slurp(path, &len);
    size_t ends[256];
    size_t n = record_ends(log, len, ends, 256);
    ck_assert_uint_ge(n, 12);
    /* the state at each whole-record boundary of the last six records */
    size_t first = ends[n - 7];
    char *at[8];
    for (size_t k = 0; k < 7; k++) {
        spill(path2, log, ends[n - 7 + k]);
        at[k] = load(dir2, false, err, sizeof err);
        ck_assert_msg(at[k], "%s", err);
        if (k)
            ck_assert_str_ne(at[k], at[k - 1]);   /* each record changes something */
    }
    for (size_t cut = first; cut < len; cut++) {
        size_t k = 0;
        while (k + 1 < 7 && ends[n - 7 + k + 1] <= cut)
            k++;
        spill(path2, log, cut);
        char *s = load(dir2, true, err, sizeof err);
        ck_assert_msg(s, "cut at %zu: %s", cut, err);
        ck_assert_msg(!strcmp(s, at[k]), "cut at %zu: state differs from the last whole record's", cut);
        struct stat sb;
        ck_assert_int_eq(stat(path2, &sb), 0);
        ck_assert_uint_eq((size_t)sb.st_size, ends[n - 7 + k]);   /* the torn tail is cut off */
        free(s);
    }
    for (size_t k = 0; k < 7; k++)
        free(at[k]);
    free(log);
}
END_TEST

START_TEST(t_flipped_bit_is_refused)
{
    free(workload(dir, true));
    char path[512], path2[512], err[512];
    log_path(path, dir, 1);
    log_path(path2, dir2, 1);
    size_t len;
    uint8_t *log = slurp(path, &len);
    size_t ends[256];
    size_t n = record_ends(log, len, ends, 256);
    uint8_t *bad = malloc(len);
    /* every byte of every record but the last (whose damage is a torn tail) */
    for (size_t off = 0; off < ends[n - 2]; off++) {
        size_t start = 0;
        for (size_t k = 0; k < n && ends[k] <= off; k++)
            start = ends[k];
        memcpy(bad, log, len);
        bad[off] ^= (uint8_t)(1u << (off % 8));
        spill(path2, bad, len);
        char *s = load(dir2, true, err, sizeof err);
        ck_assert_msg(!s, "a flipped bit at %zu was loaded", off);
        char want[64];
        snprintf(want, sizeof want, "at offset %zu:", start);
        ck_assert_msg(strstr(err, want) && strstr(err, "log.00000000000000000001"),
                      "flip at %zu: '%s' does not name the file and offset %zu", off, err, start);
        struct stat sb;
        ck_assert_int_eq(stat(path2, &sb), 0);
        ck_assert_uint_eq((size_t)sb.st_size, len);   /* nothing was cut */
    }
    free(bad);
    free(log);
}
END_TEST

START_TEST(t_zero_tail_is_torn)
{
    char *before = workload(dir, false);
    char path[512], err[512];
    log_path(path, dir, 1);
    size_t len;
    uint8_t *log = slurp(path, &len);
    uint8_t *z = calloc(1, len + 4096);
    memcpy(z, log, len);
    spill(path, z, len + 4096);   /* a crash after the size grew, before the data */
    char *after = load(dir, true, err, sizeof err);
    ck_assert_msg(after, "%s", err);
    ck_assert_str_eq(after, before);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_uint_eq((size_t)sb.st_size, len);
    free(z);
    free(log);
    free(before);
    free(after);
}
END_TEST

static off_t size_of(const char *path)
{
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    return sb.st_size;
}

/* A write killed part way (SIGKILL between two pages of one pwrite) stops
 * at a page boundary, and the newest log has zeros written ahead: the
 * bytes after the tear are zeros, not the end of the file.  Torn at every
 * 512-byte boundary, with zeros after it, the log loads as the same log
 * cut there (whole records only) and is cut back to them. */
START_TEST(t_torn_write_into_zeros)
{
    free(workload(dir, true));
    char path[512], path2[512], err[512];
    log_path(path, dir, 1);
    log_path(path2, dir2, 1);
    size_t len;
    uint8_t *log = slurp(path, &len);
    size_t ahead = len + 64 * 1024;
    uint8_t *z = calloc(1, ahead);
    for (size_t tear = REC_SECTOR; tear < len; tear += REC_SECTOR) {
        spill(path2, log, tear);
        char *want = load(dir2, true, err, sizeof err);
        ck_assert_msg(want, "cut at %zu: %s", tear, err);
        off_t want_size = size_of(path2);
        memcpy(z, log, tear);
        memset(z + tear, 0, ahead - tear);
        spill(path2, z, ahead);
        char *got = load(dir2, true, err, sizeof err);
        ck_assert_msg(got, "torn at %zu, zeros after: %s", tear, err);
        ck_assert_msg(!strcmp(got, want), "torn at %zu: not the state of the whole records", tear);
        ck_assert_int_eq(size_of(path2), want_size);
        free(want);
        free(got);
    }
    free(z);
    free(log);
}
END_TEST

/* The log writes zeros ahead of its records (page-cache pages made in
 * large pieces rather than by each append); a log that stops being the
 * newest, and the newest when the journal closes, are cut to where their
 * records end, since only the newest log may end in anything else.  The
 * cut comes before the next log is made: a rotation that cannot make it
 * (a file of that name is in the way) has cut and synced the current one
 * already, so a crash at that point leaves a dir that loads; it goes on
 * with the space the cut gave back reserved again. */
START_TEST(t_zeros_ahead_are_cut)
{
    char probe[512];
    snprintf(probe, sizeof probe, "%s/probe", dir);
    int pfd = open(probe, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(pfd, 0);
    int can = fallocate(pfd, FALLOC_FL_KEEP_SIZE, 0, 4096) == 0;
    close(pfd);
    unlink(probe);
    if (!can)
        return;   /* nothing is reserved, so nothing is written ahead */
    core_t *c = core_new(&limits, on_reply);
    tsess_t t = { 0 };
    t.s = core_sess_new(c, &t);
    chand_journal_t *j = jopen_with(dir, c, JR_FSYNC_NO, 8 << 20, 0);
    ck_assert_ptr_nonnull(j);
    mk(&t, "z", 1000);
    char v[16];
    for (int i = 0; i < 100; i++) {
        snprintf(v, sizeof v, "z%d", i);
        snd(&t, "z", v);
        chand_journal_commit(j, true);
    }
    uint64_t gen, off, gen2, off2, snap;
    chand_journal_where(j, &gen, &off, &snap);
    char path[512], path2[512];
    log_path(path, dir, gen);
    size_t len;
    uint8_t *p = slurp(path, &len);
    ck_assert_uint_gt(len, off);   /* zeros written ahead */
    ck_assert(rec_all_zero(p + off, len - off));
    free(p);
    char next[512];
    log_path(next, dir, gen + 1);
    spill(next, (const uint8_t *)"x", 1);
    ck_assert_int_eq(chand_journal_rotate(j, gen + 1), -1);   /* (logs an error) */
    ck_assert_int_eq(size_of(path), (off_t)off);   /* cut before the next was tried */
    struct stat sb;   /* and its disk space reserved again, as the cut gave it back */
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_ge((off_t)sb.st_blocks * 512, (off_t)off + (4 << 20));
    ck_assert_int_eq(unlink(next), 0);
    for (int i = 100; i < 110; i++) {   /* still the newest: appended to, zeros ahead */
        snprintf(v, sizeof v, "z%d", i);
        snd(&t, "z", v);
        chand_journal_commit(j, true);
    }
    chand_journal_where(j, &gen2, &off, &snap);
    ck_assert_uint_eq(gen2, gen);
    ck_assert_int_gt(size_of(path), (off_t)off);
    ck_assert_int_eq(chand_journal_rotate(j, 0), 0);
    ck_assert_int_eq(size_of(path), (off_t)off);   /* no longer the newest: cut */
    for (int i = 110; i < 150; i++) {
        snprintf(v, sizeof v, "z%d", i);
        snd(&t, "z", v);
        chand_journal_commit(j, true);
    }
    chand_journal_where(j, &gen2, &off2, &snap);
    ck_assert_uint_gt(gen2, gen);
    log_path(path2, dir, gen2);
    ck_assert_int_gt(size_of(path2), (off_t)off2);
    char *before = state_of(c);
    chand_journal_close(j);
    core_sess_drop(t.s);
    core_free(c);
    ck_assert_int_eq(size_of(path2), (off_t)off2);   /* closed: cut */
    char err[512];
    char *after = load(dir, false, err, sizeof err);
    ck_assert_msg(after, "%s", err);
    ck_assert_str_eq(after, before);
    ck_assert_ptr_nonnull(strstr(after, " z149\n"));
    free(before);
    free(after);
}
END_TEST

/* Open descriptors of this process. */
static int open_fds(void)
{
    DIR *dp = opendir("/proc/self/fd");
    int n = 0;
    while (dp && readdir(dp))
        n++;
    if (dp)
        closedir(dp);
    return n;
}

START_TEST(t_rewrite_keeps_state)
{
    int fds0 = open_fds();
    core_t *c = core_new(&limits, on_reply);
    tsess_t t = { 0 };
    t.s = core_sess_new(c, &t);
    chand_journal_t *j = jopen(dir, c, 4096);
    ck_assert_ptr_nonnull(j);
    mk(&t, "q", 100000);
    mk(&t, "r", 3);
    char v[32];
    jr_stats_t js;
    int i = 0;
    /* produce and consume until two rewrites are done */
    for (chand_journal_stats(j, &js); js.rewrites < 2; chand_journal_stats(j, &js), i++) {
        ck_assert_int_lt(i, 200000);
        snprintf(v, sizeof v, "value-%d", i);
        snd(&t, "q", v);
        if (i % 3 == 0 && rcv(&t, "q", 2) == 2)
            core_ack(t.s, t.dlv[0]);   /* the other stays held back */
        chand_journal_commit(j, true);
        chand_journal_tick(j);
        if (i % 64 == 0)
            usleep(1000);
    }
    snd(&t, "r", "after");
    core_close(t.s, ++next_id, B("r"));
    chand_journal_commit(j, true);
    ck_assert_uint_eq(js.rewrite_failures, 0);
    char *before = state_of(c);
    chand_journal_close(j);
    core_sess_drop(t.s);
    core_free(c);
    /* a snapshot, and no log older than it */
    DIR *dp = opendir(dir);
    struct dirent *e;
    int snaps = 0, logs = 0;
    while ((e = readdir(dp))) {
        snaps += !strncmp(e->d_name, "snap.", 5);
        logs += !strncmp(e->d_name, "log.", 4);
    }
    closedir(dp);
    ck_assert_int_eq(snaps, 1);
    ck_assert_int_le(logs, 2);
    /* the files removed were closed too, off the caller's thread */
    for (int ms = 0; ms < 5000 && open_fds() != fds0; ms += 10)
        usleep(10000);
    ck_assert_int_eq(open_fds(), fds0);
    char err[512];
    char *after = load(dir, true, err, sizeof err);
    ck_assert_msg(after, "%s", err);
    ck_assert_str_eq(after, before);
    free(before);
    free(after);
}
END_TEST

/* The newest log made and cut short before its header was written (a
 * crash between creating it and writing the header, or a power cut before
 * the header reached the disk): the start that finds it writes the header,
 * and that header must name the log before it, or the next start refuses
 * the dir as a broken chain. */
START_TEST(t_headerless_newest_log)
{
    for (int torn = 0; torn < 2; torn++) {
        rm_dir(dir);
        ck_assert_int_eq(mkdir(dir, 0700), 0);
        free(workload(dir, false));
        char path[512];
        log_path(path, dir, 2);
        /* empty, or the first 5 bytes of a header */
        const uint8_t part[5] = { 9, 0, 0, 0, 0x5a };
        spill(path, part, torn ? sizeof part : 0);
        for (int life = 0; life < 2; life++) {
            core_t *c = core_new(&limits, on_reply);
            tsess_t t = { 0 };
            t.s = core_sess_new(c, &t);
            chand_journal_t *j = jopen(dir, c, 0);
            ck_assert_msg(j, "start %d after a headerless log.2 (%s) refused", life + 1,
                          torn ? "torn header" : "empty");
            snd(&t, "a", life ? "second" : "first");
            chand_journal_commit(j, true);
            chand_journal_close(j);
            core_sess_drop(t.s);
            core_free(c);
        }
        char err[512];
        char *after = load(dir, false, err, sizeof err);
        ck_assert_msg(after, "%s", err);
        ck_assert_ptr_nonnull(strstr(after, " first\n"));
        ck_assert_ptr_nonnull(strstr(after, " second\n"));
        ck_assert_ptr_nonnull(strstr(after, " a8\n"));
        free(after);
    }
}
END_TEST

/* A file named as a log whose number is past 2^64 - 1 is nobody's log:
 * it is left alone, not read as the newest log under a number wrapped
 * around. */
START_TEST(t_log_name_past_the_largest_number)
{
    char *before = workload(dir, false);
    char path[512];
    snprintf(path, sizeof path, "%s/log.99999999999999999999", dir);
    spill(path, (const uint8_t *)"", 0);
    char err[512];
    char *after = load(dir, false, err, sizeof err);
    ck_assert_msg(after, "%s", err);
    ck_assert_str_eq(after, before);
    core_t *c = core_new(&limits, on_reply);
    chand_journal_t *j = jopen(dir, c, 0);
    ck_assert_ptr_nonnull(j);
    chand_journal_close(j);
    core_free(c);
    ck_assert_int_eq(access(path, F_OK), 0);   /* still there, untouched */
    free(before);
    free(after);
}
END_TEST

/* A snapshot whose log is gone (log.S is made before snap.S, so no crash
 * leaves this): what was written after the snapshot is lost, and the dir
 * is refused, naming the missing log, not loaded as the snapshot alone. */
START_TEST(t_snapshot_without_its_log)
{
    core_t *c = core_new(&limits, on_reply);
    tsess_t t = { 0 };
    t.s = core_sess_new(c, &t);
    chand_journal_t *j = jopen(dir, c, 4096);
    ck_assert_ptr_nonnull(j);
    mk(&t, "q", 100000);
    char v[32];
    jr_stats_t js;
    int i = 0;
    for (chand_journal_stats(j, &js); js.rewrites < 1; chand_journal_stats(j, &js), i++) {
        ck_assert_int_lt(i, 200000);
        snprintf(v, sizeof v, "value-%d", i);
        snd(&t, "q", v);
        chand_journal_commit(j, true);
        chand_journal_tick(j);
        if (i % 64 == 0)
            usleep(1000);
    }
    snd(&t, "q", "after-the-snapshot");
    chand_journal_commit(j, true);
    uint64_t gen, off, snap_gen;
    chand_journal_where(j, &gen, &off, &snap_gen);
    chand_journal_close(j);
    core_sess_drop(t.s);
    core_free(c);
    ck_assert_uint_gt(snap_gen, 0);
    ck_assert_uint_eq(gen, snap_gen);
    char path[512], err[512], name[64];
    log_path(path, dir, gen);
    ck_assert_int_eq(unlink(path), 0);
    char *s = load(dir, false, err, sizeof err);
    ck_assert_msg(!s, "a snapshot without its log was loaded");
    snprintf(name, sizeof name, JR_LOG_FMT ": the log of generation %llu is missing",
             (unsigned long long)gen, (unsigned long long)gen);
    ck_assert_msg(strstr(err, name), "'%s' does not name the missing log", err);
}
END_TEST

/* A log written by hand: a header, then records. */
static void write_log(const char *d, uint64_t gen, void (*body)(rec_buf_t *b))
{
    rec_buf_t b = { 0 };
    size_t s = rec_begin(&b, REC_FILE);
    rec_put_varint(&b, REC_VERSION);
    rec_put_varint(&b, REC_KIND_LOG);
    rec_put_varint(&b, gen);
    rec_finish(&b, s);
    if (body)
        body(&b);
    char path[512];
    log_path(path, d, gen);
    spill(path, b.p, b.len);
    rec_buf_free(&b);
}

static void put_to_unknown(rec_buf_t *b)
{
    size_t s = rec_begin(b, REC_PUT);
    rec_put_varint(b, 7);   /* never made */
    rec_put_varint(b, 1);
    rec_put_varint(b, 0);
    rec_put_varint(b, 1);
    rec_put_bytes(b, "x", 1);
    rec_finish(b, s);
}

/* Two MAKE records that end 3 bytes before a 512-byte boundary, then a
 * third whose header straddles it. */
static void make_rec(rec_buf_t *b, uint64_t no, size_t name_len)
{
    char name[256];
    memset(name, 'a' + (int)no, name_len);
    size_t s = rec_begin(b, REC_MAKE);
    rec_put_varint(b, no);
    rec_put_varint(b, 4);
    rec_put_bytes(b, name, name_len);
    rec_finish(b, s);
}

static void header_across_a_sector(rec_buf_t *b)
{
    make_rec(b, 1, 239);
    make_rec(b, 2, 224);
    ck_assert_uint_eq(b->len, REC_SECTOR - 3);
    make_rec(b, 3, 1);
}

/* A write killed 3 bytes into a record's header (the crash test found
 * one): the header's first bytes, then zeros from the page boundary on.
 * A torn tail, not corruption: the records before it load. */
START_TEST(t_header_torn_at_a_boundary)
{
    char path[512], err[512];
    write_log(dir2, 1, header_across_a_sector);
    log_path(path, dir2, 1);
    size_t len;
    uint8_t *log = slurp(path, &len);
    ck_assert_uint_gt(len, REC_SECTOR);
    uint8_t *z = calloc(1, REC_SECTOR + 65536);
    memcpy(z, log, REC_SECTOR);
    spill(path, z, REC_SECTOR + 65536);
    char *s = load(dir2, true, err, sizeof err);
    ck_assert_msg(s, "%s", err);
    ck_assert_int_eq(size_of(path), REC_SECTOR - 3);
    free(s);
    free(z);
    free(log);
}
END_TEST

START_TEST(t_bad_contents_are_refused)
{
    char err[512];
    write_log(dir, 1, put_to_unknown);
    write_log(dir, 2, NULL);
    ck_assert_ptr_null(load(dir, true, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "channel 7, which was never made"));
    /* a generation missing in the middle */
    rm_dir(dir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    write_log(dir, 1, NULL);
    write_log(dir, 3, NULL);
    ck_assert_ptr_null(load(dir, true, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "missing"));
    /* a log that says it is another generation */
    rm_dir(dir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    write_log(dir, 1, NULL);
    char a[512], b[512];
    log_path(a, dir, 1);
    log_path(b, dir, 2);
    ck_assert_int_eq(rename(a, b), 0);
    write_log(dir, 1, NULL);
    ck_assert_ptr_null(load(dir, true, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "another file"));
}
END_TEST

START_TEST(t_one_daemon_per_dir)
{
    core_t *c1 = core_new(&limits, on_reply), *c2 = core_new(&limits, on_reply);
    chand_journal_t *j1 = jopen(dir, c1, 0);
    ck_assert_ptr_nonnull(j1);
    ck_assert_ptr_null(jopen(dir, c2, 0));
    chand_journal_close(j1);
    chand_journal_t *j2 = jopen(dir, c2, 0);   /* free again */
    ck_assert_ptr_nonnull(j2);
    chand_journal_close(j2);
    core_free(c1);
    core_free(c2);
}
END_TEST

START_TEST(t_refused_puts)
{
    core_t *c = core_new(&limits, on_reply);
    tsess_t t = { 0 }, u = { 0 };
    t.s = core_sess_new(c, &t);
    u.s = core_sess_new(c, &u);
    chand_journal_t *j = jopen(dir, c, 0);
    ck_assert_ptr_nonnull(j);
    mk(&t, "buf", 4);
    mk(&t, "rv", 0);
    snd(&t, "buf", "kept");
    ck_assert_int_eq(t.st, CORE_ST_OK);
    core_refuse_puts(c, "the disk is full");
    snd(&t, "buf", "refused");
    ck_assert_int_eq(t.st, CORE_ST_BUSY);
    core_case_req_t cs = { .name = B("buf"), .send = true, .value = B("x"),
                           .max_bytes = UINT64_MAX };
    core_select(t.s, ++next_id, &cs, 1, false, 0, false, 0, 0);
    ck_assert_int_eq(t.st, CORE_ST_BUSY);
    /* receives and acks go on, and unbuffered sends store nothing */
    ck_assert_uint_eq(rcv(&u, "buf", 4), 1);
    ck_assert(core_ack(u.s, u.dlv[0]));
    core_recv(u.s, ++next_id, B("rv"), 1, UINT64_MAX, -1, 0);
    snd(&t, "rv", "direct");
    ck_assert_uint_eq(u.ndlv, 1);
    core_refuse_puts(c, NULL);
    snd(&t, "buf", "again");
    ck_assert_int_eq(t.st, CORE_ST_OK);
    core_sess_drop(t.s);
    core_sess_drop(u.s);
    chand_journal_close(j);
    core_free(c);
}
END_TEST

/* Wait until the sync thread has the log on disk up to pos. */
static void wait_synced(chand_journal_t *j, uint64_t pos)
{
    for (int i = 0; i < 5000 && chand_journal_synced(j) < pos; i++)
        usleep(1000);
    ck_assert_uint_ge(chand_journal_synced(j), pos);
}

/* --fsync always: a sync is asked for when replies wait on what they
 * promise (a value put); deliveries and acks alone ask none, and ride with
 * the next sync or tick; the thread tells the loop through its eventfd. */
START_TEST(t_always_syncs_what_replies_promise)
{
    core_t *c = core_new(&limits, on_reply);
    tsess_t t = { 0 };
    t.s = core_sess_new(c, &t);
    chand_journal_t *j = jopen_with(dir, c, JR_FSYNC_ALWAYS, 1 << 16, 0);
    ck_assert_ptr_nonnull(j);
    ck_assert(chand_journal_holds(j));
    jr_stats_t js;
    mk(&t, "q", 10);
    snd(&t, "q", "v");
    chand_journal_commit(j, true);
    uint64_t need = chand_journal_needed(j);
    ck_assert_uint_gt(need, 0);
    wait_synced(j, need);
    uint64_t n;
    ck_assert_int_eq(read(chand_journal_notify_fd(j), &n, sizeof n), (ssize_t)sizeof n);
    chand_journal_stats(j, &js);
    ck_assert_uint_eq(js.fsyncs, 1);
    /* a delivery and its ack promise nothing: no sync asked, none needed */
    ck_assert_uint_eq(rcv(&t, "q", 1), 1);
    chand_journal_commit(j, true);
    ck_assert(core_ack(t.s, t.dlv[0]));
    chand_journal_commit(j, false);
    ck_assert_uint_eq(chand_journal_needed(j), need);
    usleep(20000);
    chand_journal_stats(j, &js);
    ck_assert_uint_eq(js.fsyncs, 1);
    ck_assert_uint_eq(js.writes, 3);
    /* the tick syncs them */
    chand_journal_tick(j);
    wait_synced(j, js.bytes_written);
    chand_journal_stats(j, &js);
    ck_assert_uint_eq(js.fsyncs, 2);
    core_sess_drop(t.s);
    chand_journal_close(j);
    core_free(c);
}
END_TEST

START_TEST(t_everysec_syncs)
{
    core_t *c = core_new(&limits, on_reply);
    tsess_t t = { 0 };
    t.s = core_sess_new(c, &t);
    chand_journal_t *j = jopen_with(dir, c, JR_FSYNC_EVERYSEC, 1 << 16, 0);
    ck_assert_ptr_nonnull(j);
    mk(&t, "q", 10);
    jr_stats_t js;
    /* the thread syncs what the loop wrote, once a second, while the loop
     * goes on writing */
    for (int i = 0; i < 300; i++) {
        snd(&t, "q", "v");
        if (rcv(&t, "q", 1))
            core_ack(t.s, t.dlv[0]);
        chand_journal_commit(j, true);
        chand_journal_tick(j);
        usleep(5000);
    }
    chand_journal_stats(j, &js);
    ck_assert_uint_ge(js.fsyncs, 1);
    ck_assert_uint_ge(js.writes, 300);
    core_sess_drop(t.s);
    chand_journal_close(j);
    core_free(c);
}
END_TEST

/* A buffer past a million bytes of pointers (the size where its ring moves
 * to pages of its own, grown with mremap) keeps every value in order,
 * also when it grows while wrapped around - as a big restore fills one. */
START_TEST(t_large_ring_keeps_order)
{
    core_t *c = core_new(&limits, on_reply);
    tsess_t t = { 0 };
    t.s = core_sess_new(c, &t);
    mk(&t, "big", 1000000);
    char v[16];
    int sent = 0, got = 0;
    /* fill, take part of it (the ring's head moves on), fill past two
     * doublings, then take everything */
    int plan[][2] = { { 200000, 0 }, { 0, 150000 }, { 400000, 0 }, { 0, 450000 } };
    for (size_t k = 0; k < 4; k++) {
        for (int i = 0; i < plan[k][0]; i++) {
            snprintf(v, sizeof v, "%d", sent++);
            snd(&t, "big", v);
            ck_assert_int_eq(t.st, CORE_ST_OK);
        }
        while (got < sent && plan[k][1]) {
            size_t n = rcv(&t, "big", 64);
            ck_assert_uint_gt(n, 0);
            for (size_t i = 0; i < n; i++) {
                snprintf(v, sizeof v, "%d", got++);
                ck_assert_str_eq(t.val[i], v);
                ck_assert(core_ack(t.s, t.dlv[i]));
            }
            if (k == 1 && got >= 150000)
                break;
        }
    }
    ck_assert_int_eq(got, sent);
    core_sess_drop(t.s);
    core_free(c);
}
END_TEST

/* The checksum against its definition, one bit at a time. */
static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    return ~c;
}

START_TEST(t_crc32c)
{
    ck_assert_uint_eq(chand_crc32c(0, "123456789", 9), 0xe3069283u);
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 37 + 11);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += 7) {
            ck_assert_uint_eq(chand_crc32c(0, buf + off, n), crc_bitwise(buf + off, n));
            /* in two pieces, as a running checksum */
            uint32_t c = chand_crc32c(chand_crc32c(0, buf + off, n / 3), buf + off + n / 3,
                                      n - n / 3);
            ck_assert_uint_eq(c, crc_bitwise(buf + off, n));
        }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("journal");
    TCase *tc = tcase_create("journal");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_crc32c);
    tcase_add_test(tc, t_large_ring_keeps_order);
    tcase_add_test(tc, t_round_trip);
    tcase_add_test(tc, t_torn_tail_every_offset);
    tcase_add_test(tc, t_flipped_bit_is_refused);
    tcase_add_test(tc, t_zero_tail_is_torn);
    tcase_add_test(tc, t_torn_write_into_zeros);
    tcase_add_test(tc, t_header_torn_at_a_boundary);
    tcase_add_test(tc, t_headerless_newest_log);
    tcase_add_test(tc, t_log_name_past_the_largest_number);
    tcase_add_test(tc, t_snapshot_without_its_log);
    tcase_add_test(tc, t_rewrite_keeps_state);
    tcase_add_test(tc, t_zeros_ahead_are_cut);
    tcase_add_test(tc, t_bad_contents_are_refused);
    tcase_add_test(tc, t_one_daemon_per_dir);
    tcase_add_test(tc, t_refused_puts);
    tcase_add_test(tc, t_everysec_syncs);
    tcase_add_test(tc, t_always_syncs_what_replies_promise);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

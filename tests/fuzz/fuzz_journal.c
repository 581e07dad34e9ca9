/*
 * fuzz_journal.c - loading a data dir (daemon/chand_recover.c) from logs
 * the fuzzer writes: what comes from the disk is as untrusted as what comes
 * from the network.
 *
 * Input: one byte of flags, four bytes of damage positions, then records,
 * each [u8 type][u8 length][length bytes of body].  The harness frames the
 * records with good checksums (a fuzzer would never find a CRC by
 * mutation), so the records' contents reach the loader; then, by the flags:
 *   bit 0  no FILE header record first (else a good one is written)
 *   bit 1  flip the bit the first two position bytes name
 *   bit 2  cut the file at the offset the next two position bytes name
 *   bit 3  split the records over two generations (log.1 and log.2)
 *   bit 4  append 64 zero bytes (a tail a crash can leave)
 * Then it checks:
 *   - chand_recover answers 0 or -1 (with a message) and never crashes,
 *     leaks (LeakSanitizer) or reads outside the files (ASan);
 *   - checking alone (no core) gives the same answer;
 *   - when it loads, core_audit finds the core consistent, and loading the
 *     dir again - after the first load cut any torn tail - gives the same
 *     channels and values.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chand_core.h"
#include "chand_log.h"
#include "chand_record.h"
#include "chand_recover.h"
#include "fz_input.h"

static char dir[64];
static int dir_fd = -1;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_journal: %s\n", what);
    abort();
}

static void on_reply(void *ctx, const core_reply_t *r)
{
    (void)ctx;
    (void)r;
}

static const core_limits_t limits = {
    .max_value = 1 << 20, .max_reply = 1 << 20, .max_batch = 64, .max_pending = 16,
    .max_cases = 16, .max_channels = 1 << 20, .max_cap = UINT64_MAX,
};

static void clear_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            unlinkat(dir_fd, e->d_name, 0);
    if (d)
        closedir(d);
}

/* At exit: the scratch dir goes too (one per process otherwise stays in
 * /tmp after every replay and every fuzzing run). */
static void remove_dir(void)
{
    clear_dir();
    close(dir_fd);
    rmdir(dir);
}

static void write_file(uint64_t gen, const uint8_t *p, size_t len)
{
    char name[JR_NAME_MAX];
    snprintf(name, sizeof name, JR_LOG_FMT, (unsigned long long)gen);
    int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (len && write(fd, p, len) != (ssize_t)len) || close(fd) < 0)
        fail("cannot write the log");
}

static void header(rec_buf_t *b, uint64_t gen)
{
    size_t s = rec_begin(b, REC_FILE);
    rec_put_varint(b, REC_VERSION);
    rec_put_varint(b, REC_KIND_LOG);
    rec_put_varint(b, gen);
    rec_finish(b, s);
}

/* What a loaded core holds, as text (channels and values in dump order). */
static void dump_chan(void *arg, uint64_t no, core_bytes_t name, uint64_t cap, bool closed)
{
    rec_buf_t *b = arg;
    char line[64];
    int n = snprintf(line, sizeof line, "chan %llu cap %llu %d ", (unsigned long long)no,
                     (unsigned long long)cap, closed);
    rec_put_bytes(b, line, (size_t)n);
    rec_put_bytes(b, name.data, name.len);
}

static void dump_val(void *arg, uint64_t no, uint64_t vid, uint32_t red, core_bytes_t data)
{
    rec_buf_t *b = arg;
    char line[80];
    int n = snprintf(line, sizeof line, "val %llu %llu %u ", (unsigned long long)no,
                     (unsigned long long)vid, red);
    rec_put_bytes(b, line, (size_t)n);
    rec_put_bytes(b, data.data, data.len);
}

/* Load the dir into a fresh core: rc, and its state into *state. */
static int load(bool cleanup, rec_buf_t *state)
{
    core_t *c = core_new(&limits, on_reply);
    jr_recovery_t r;
    char err[512] = "";
    int rc = chand_recover(dir_fd, dir, c, cleanup, &r, err, sizeof err);
    if (rc < 0 && !err[0])
        fail("refused without a message");
    const char *bad = core_audit(c, NULL, NULL);
    if (bad)
        fail(bad);
    if (rc == 0) {
        uint64_t ln, lv;
        core_dump(c, dump_chan, dump_val, state, &ln, &lv);
        if (ln < r.last_no || lv < r.last_vid)
            fail("the core's numbers are behind the journal's");
    }
    core_free(c);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dir_fd < 0) {
        chand_log_level = -1;   /* quiet: torn tails are logged */
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/fuzz_journal.XXXXXX",
                 tmp && *tmp && strlen(tmp) < sizeof dir - 24 ? tmp : "/tmp");
        if (!mkdtemp(dir) || (dir_fd = open(dir, O_RDONLY | O_DIRECTORY)) < 0)
            fail("no scratch dir");
        atexit(remove_dir);
    }
    clear_dir();
    fz_in_t in = fz_in(data, size);
    uint8_t flags = fz_u8(&in);
    uint16_t flip = (uint16_t)fz_uint(&in, 2), cut = (uint16_t)fz_uint(&in, 2);
    rec_buf_t b = { 0 };
    size_t split = 0;
    if (!(flags & 1))
        header(&b, 1);
    int nrec = 0;
    while (fz_left(&in)) {
        uint8_t type = fz_u8(&in);
        size_t len;
        const uint8_t *body = fz_bytes(&in, fz_u8(&in), &len);
        size_t s = rec_begin(&b, (enum rec_type)type);
        rec_put_bytes(&b, body, len);
        rec_finish(&b, s);
        if (++nrec == 2)
            split = b.len;
    }
    if ((flags & 2) && b.len)
        b.p[flip % b.len] ^= (uint8_t)(1u << (flip % 8));
    if ((flags & 4) && cut < b.len)
        b.len = cut;
    if (flags & 16) {
        rec_buf_reserve(&b, 64);
        memset(b.p + b.len, 0, 64);
        b.len += 64;
    }
    if ((flags & 8) && split && split < b.len) {
        write_file(1, b.p, split);
        rec_buf_t h = { 0 };
        header(&h, 2);
        rec_put_bytes(&h, b.p + split, b.len - split);
        write_file(2, h.p, h.len);
        rec_buf_free(&h);
    } else {
        write_file(1, b.p, b.len);
    }
    rec_buf_free(&b);

    jr_recovery_t r;
    char err[512];
    int checked = chand_recover(dir_fd, dir, NULL, false, &r, err, sizeof err);
    rec_buf_t s1 = { 0 }, s2 = { 0 };
    int rc = load(true, &s1);
    if (rc != checked)
        { fprintf(stderr, "check %d load %d: %s\n", checked, rc, err); fail("--check and loading disagree"); }
    if (rc == 0) {
        if (load(true, &s2) != 0)
            fail("a dir that loaded once does not load again");
        if (s1.len != s2.len || (s1.len && memcmp(s1.p, s2.p, s1.len)))
            fail("loading again gives another state");
    }
    rec_buf_free(&s1);
    rec_buf_free(&s2);
    return 0;
}

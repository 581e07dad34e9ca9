/*
 * mkcorpus.c - writes the seed corpus of the fuzz targets (make
 * fuzz-corpus; the result is committed under tests/fuzz/corpus/).
 *
 * Seeds are small, valid inputs that reach each part of a target at once,
 * from which the fuzzer mutates: every kind of Request and Reply frame for
 * fuzz_frame, short sessions of requests for fuzz_dispatch, and scripts of
 * core operations for fuzz_core.  The byte formats are the targets' own
 * (described at the top of each target).
 *
 * Usage: mkcorpus DIR   (writes DIR/fuzz_frame/seed-*, ...)
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chan_frame.h"

static const char *outdir;

static void write_seed(const char *target, const char *name, const uint8_t *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", outdir, target);
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/seed-%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* ---- messages ---- */

static ProtobufCBinaryData bin(const char *s)
{
    ProtobufCBinaryData b = { strlen(s), (uint8_t *)s };
    return b;
}

/* A request with id and op set by the caller; packed body into out. */
static size_t pack_request(Chan__Request *rq, uint8_t *out)
{
    return chan__request__pack(rq, out);
}

/* Every kind of request, one each: fills rqs, returns how many. */
enum { NREQ = 16 };

static Chan__Hello hello = CHAN__HELLO__INIT;
static Chan__Open open_jobs = CHAN__OPEN__INIT, open_temp = CHAN__OPEN__INIT;
static Chan__Send send_jobs = CHAN__SEND__INIT;
static Chan__Recv recv_jobs = CHAN__RECV__INIT;
static Chan__Close close_jobs = CHAN__CLOSE__INIT;
static Chan__Case case_s = CHAN__CASE__INIT, case_r = CHAN__CASE__INIT;
static Chan__Case *cases[2] = { &case_s, &case_r };
static Chan__Select sel = CHAN__SELECT__INIT;
static Chan__Cancel cancel = CHAN__CANCEL__INIT;
static Chan__Stat stat_one = CHAN__STAT__INIT, stat_all = CHAN__STAT__INIT;
static Chan__Ping ping = CHAN__PING__INIT;
static Chan__Commit commit = CHAN__COMMIT__INIT;
static Chan__Release release = CHAN__RELEASE__INIT;
static Chan__Delete del = CHAN__DELETE__INIT;
static ProtobufCBinaryData values[3];
static uint64_t acks[3] = { 1, 2, 300 };

static void fill_messages(void)
{
    hello.has_version = 1;
    hello.version = CHAN_PROTOCOL_VERSION;
    hello.client_name = "seed";
    open_jobs.has_name = open_jobs.has_capacity = 1;
    open_jobs.name = bin("jobs");
    open_jobs.capacity = 2;
    open_temp.has_temp = open_temp.temp = 1;
    send_jobs.has_name = 1;
    send_jobs.name = bin("jobs");
    values[0] = bin("a");
    values[1] = bin("");
    values[2] = bin("ccc");
    send_jobs.n_values = 3;
    send_jobs.values = values;
    send_jobs.has_timeout_ms = 1;
    send_jobs.timeout_ms = 100;
    recv_jobs.has_name = recv_jobs.has_max = recv_jobs.has_timeout_ms = 1;
    recv_jobs.name = bin("jobs");
    recv_jobs.max = 2;
    recv_jobs.timeout_ms = 50;
    recv_jobs.has_max_bytes = 1;
    recv_jobs.max_bytes = 1000;
    close_jobs.has_name = 1;
    close_jobs.name = bin("jobs");
    case_s.has_name = case_s.has_op = case_s.has_value = 1;
    case_s.name = bin("jobs");
    case_s.op = CHAN__OP__SEND;
    case_s.value = bin("v");
    case_r.has_name = case_r.has_op = case_r.has_max_bytes = 1;
    case_r.name = bin("jobs");
    case_r.op = CHAN__OP__RECV;
    case_r.max_bytes = 10;
    sel.n_cases = 2;
    sel.cases = cases;
    sel.has_timeout_ms = sel.has_reserve = sel.has_priority = sel.has_in_order = 1;
    sel.timeout_ms = 10;
    sel.reserve = 1;
    sel.priority = 7;
    cancel.has_target = 1;
    cancel.target = 3;
    stat_one.has_name = 1;
    stat_one.name = bin("jobs");
    stat_all.has_all = stat_all.all = 1;
    stat_all.has_limit = 1;
    stat_all.limit = 2;
    ping.has_payload = 1;
    ping.payload = bin("ping");
    commit.has_target = commit.has_timeout_ms = 1;
    commit.target = 5;
    commit.timeout_ms = 20;
    release.has_target = 1;
    release.target = 5;
    del.has_name = 1;
    del.name = bin("jobs");
}

static size_t all_requests(Chan__Request *rqs)
{
    size_t n = 0;
#define RQ(field, op, msg)                                                     \
    do {                                                                       \
        Chan__Request r = CHAN__REQUEST__INIT;                                 \
        r.has_id = 1;                                                          \
        r.id = n + 1;                                                          \
        r.op_case = CHAN__REQUEST__OP_##op;                                    \
        r.field = msg;                                                         \
        rqs[n++] = r;                                                          \
    } while (0)
    RQ(hello, HELLO, &hello);
    RQ(open, OPEN, &open_jobs);
    RQ(open, OPEN, &open_temp);
    RQ(send, SEND, &send_jobs);
    RQ(recv, RECV, &recv_jobs);
    RQ(select, SELECT, &sel);
    RQ(cancel, CANCEL, &cancel);
    RQ(stat, STAT, &stat_one);
    RQ(stat, STAT, &stat_all);
    RQ(ping, PING, &ping);
    RQ(commit, COMMIT, &commit);
    RQ(release, RELEASE, &release);
    RQ(close, CLOSE, &close_jobs);
    RQ(delete_, DELETE, &del);
#undef RQ
    /* acknowledgements alone, and riding on a receive */
    Chan__Request a = CHAN__REQUEST__INIT;
    a.n_ack = 3;
    a.ack = acks;
    a.n_nack = 1;
    a.nack = acks + 2;
    rqs[n++] = a;
    Chan__Request b = rqs[4];
    b.n_ack = 2;
    b.ack = acks;
    rqs[n++] = b;
    return n;
}

/* ---- fuzz_frame: request and reply bodies ---- */

static void frame_seeds(void)
{
    Chan__Request rqs[NREQ];
    size_t n = all_requests(rqs);
    uint8_t buf[4096];
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "request-%02zu", i);
        write_seed("fuzz_frame", name, buf, pack_request(&rqs[i], buf));
    }
    /* replies: a receive's deliveries (the fast path), and a few others */
    Chan__Delivery d[2] = { CHAN__DELIVERY__INIT, CHAN__DELIVERY__INIT };
    Chan__Delivery *dp[2] = { &d[0], &d[1] };
    d[0].has_id = d[0].has_value = 1;
    d[0].id = 1;
    d[0].value = bin("hello");
    d[1].has_id = d[1].has_value = d[1].has_redelivered = 1;
    d[1].id = 200;
    d[1].value = bin("");
    d[1].redelivered = 2;
    Chan__RecvReply rr = CHAN__RECV_REPLY__INIT;
    rr.n_deliveries = 2;
    rr.deliveries = dp;
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = 1;
    r.id = 9;
    r.result_case = CHAN__REPLY__RESULT_RECV;
    r.recv = &rr;
    write_seed("fuzz_frame", "reply-recv", buf, chan__reply__pack(&r, buf));
    Chan__SelectReply sr = CHAN__SELECT_REPLY__INIT;
    sr.has_index = 1;
    sr.index = 1;
    sr.delivery = &d[0];
    r.result_case = CHAN__REPLY__RESULT_SELECT;
    r.select = &sr;
    write_seed("fuzz_frame", "reply-select", buf, chan__reply__pack(&r, buf));
    Chan__SendReply snd = CHAN__SEND_REPLY__INIT;
    snd.has_accepted = 1;
    snd.accepted = 2;
    r.status = CHAN__STATUS__TIMEOUT;
    r.message = "deadline passed";
    r.result_case = CHAN__REPLY__RESULT_SEND;
    r.send = &snd;
    write_seed("fuzz_frame", "reply-send", buf, chan__reply__pack(&r, buf));
    Chan__Limits lim = CHAN__LIMITS__INIT;
    lim.has_max_frame = 1;
    lim.max_frame = 1 << 20;
    Chan__HelloReply hr = CHAN__HELLO_REPLY__INIT;
    hr.has_version = 1;
    hr.version = 1;
    hr.server = "chand";
    hr.limits = &lim;
    r = (Chan__Reply)CHAN__REPLY__INIT;
    r.result_case = CHAN__REPLY__RESULT_HELLO;
    r.hello = &hr;
    write_seed("fuzz_frame", "reply-hello", buf, chan__reply__pack(&r, buf));
}

/* ---- fuzz_core: scripts of steps ----
 * A step is a byte, session | kind << 2, and its arguments (fuzz_core.c). */

enum { C_OPEN, C_SEND, C_RECV, C_SELECT, C_CLOSE, C_DELETE, C_ACK, C_NACK, C_CANCEL,
       C_COMMIT, C_RELEASE, C_DROP, C_TIME, C_EVICT, C_MOVE, C_ADOPT };
#define STEP(sess, kind) (uint8_t)((sess) | (kind) << 2)
/* OPEN flags */
#define O_CAP(n) (4 | (n))
#define O_TEMP 8
#define O_NONAME 16
/* timeouts */
#define T_NOW 0
#define T_EVER 64
#define T_MS(n) (128 | ((n) / 10))
/* SELECT's first byte: cases (the byte modulo 5), 8 reserve, 16 in order,
 * priority << 5 */
/* MOVE flags */
#define M_EVICT 1
#define M_SPLIT 2
#define M_RETRY 4
#define M_FAIL 8
/* ADOPT: values | capacity - 1 << 3 | closed; then a byte per value:
 * length - 4 | redelivered << 6 */
#define A_CAP(n) (((n) - 1) << 3)
#define A_CLOSED 128

static void core_seeds(void)
{
    static const uint8_t buffered[] = {
        0, 1,
        STEP(0, C_OPEN), 0, O_CAP(2),                       /* a, capacity 2 */
        STEP(0, C_SEND), 0, 3, T_EVER, 4, 10, 20,           /* 3 values: 2 fit */
        STEP(1, C_RECV), 0, 2, 200, T_EVER,                 /* takes 2 */
        STEP(1, C_ACK), 0,
        STEP(1, C_RECV), 0, 1, 200, T_MS(50),
        STEP(1, C_NACK), 2, 0, 1,
        STEP(1, C_DROP),
        STEP(2, C_RECV), 0, 3, 200, T_NOW,
        STEP(0, C_TIME), 200,
    };
    static const uint8_t unbuffered[] = {
        0, 2,
        STEP(0, C_OPEN), 1, 0,                              /* b, unbuffered */
        STEP(1, C_RECV), 1, 1, 200, T_EVER,
        STEP(0, C_SEND), 1, 2, T_MS(100), 8, 9,
        STEP(1, C_ACK), 0,
        STEP(2, C_RECV), 1, 1, 5, T_EVER,                   /* max_bytes 5 */
        STEP(3, C_CLOSE), 1,
        STEP(0, C_TIME), 150,
    };
    static const uint8_t reserving[] = {
        0, 3,
        STEP(0, C_OPEN), 0, 0,
        STEP(0, C_OPEN), 1, O_CAP(1),
        /* a reserving select: send on a, receive on b, priority 1 */
        STEP(0, C_SELECT), 2 | 8 | 1 << 5, 0, 1 | 4 << 2, 1, 2, T_EVER,   /* 42: 2 cases */
        STEP(1, C_RECV), 0, 1, 200, T_EVER,
        STEP(0, C_COMMIT), 0, 1,
        STEP(1, C_ACK), 0,
        STEP(2, C_SELECT), 8 | 2 << 5, 0, 0, 1, 3 | 8 << 2, T_MS(30),     /* 72: 2 cases */
        STEP(3, C_SELECT), 2 | 8 | 3 << 5, 0, 2, T_EVER,                  /* 106: 1 case */
        STEP(2, C_RELEASE), 0, 0,
        STEP(3, C_CANCEL), 0, 0,
        STEP(0, C_TIME), 130,
    };
    static const uint8_t temps[] = {
        0, 4,
        STEP(0, C_OPEN), 0, O_TEMP | O_NONAME | O_CAP(3),
        STEP(0, C_SEND), 3, 2, T_EVER, 4, 4,
        STEP(1, C_RECV), 3, 1, 200, T_EVER,
        STEP(0, C_DROP),                                    /* the temp goes */
        STEP(1, C_NACK), 1, 0,
        STEP(2, C_OPEN), 2, O_CAP(1),
        STEP(2, C_SEND), 2, 1, T_EVER, 40,
        STEP(3, C_SEND), 2, 1, T_MS(10), 5,
        STEP(2, C_DELETE), 2,
        STEP(3, C_TIME), 20,
    };
    /* cluster moves (chand_slots.c): ops evicted with MOVED */
    static const uint8_t evict[] = {
        0, 5,
        STEP(0, C_OPEN), 0, O_CAP(1),
        STEP(0, C_SEND), 0, 3, T_EVER, 4, 10, 20,           /* 1 buffered, 2 wait */
        STEP(1, C_OPEN), 1, 0,
        STEP(1, C_RECV), 1, 1, 200, T_EVER,
        STEP(2, C_OPEN), 2, 0,
        STEP(2, C_SELECT), 2, 2, 2, 1, 2, T_EVER,           /* receive on c or b */
        STEP(3, C_EVICT), 0,                                /* the send: accepted 1 */
        STEP(3, C_EVICT), 1,                                /* the receive, the select */
        STEP(3, C_EVICT), 2,
        STEP(1, C_RECV), 0, 1, 200, T_NOW,                  /* the buffered value stays */
    };
    /* a channel moved out and back: buffered values move, one out to a
     * receiver stays out and its copy leads the new buffer */
    static const uint8_t move[] = {
        0, 6,
        STEP(0, C_OPEN), 0, O_CAP(3),
        STEP(0, C_SEND), 0, 3, T_EVER, 4, 10, 20,
        STEP(1, C_RECV), 0, 1, 200, T_EVER,                 /* one out */
        STEP(2, C_RECV), 0, 1, 200, T_EVER,                 /* and one more */
        STEP(3, C_MOVE), 0, M_EVICT,
        STEP(1, C_ACK), 0,                                  /* the old channel's */
        STEP(2, C_NACK), 1, 0,                              /* dropped with it */
        STEP(3, C_MOVE), 0, M_SPLIT | M_RETRY,
        STEP(1, C_RECV), 0, 2, 200, T_EVER,
        STEP(3, C_MOVE), 0, M_EVICT,
        STEP(1, C_DROP),                                    /* they come back */
        STEP(0, C_CLOSE), 0,
        STEP(3, C_MOVE), 0, M_SPLIT,                        /* closed moves closed */
        STEP(2, C_RECV), 0, 2, 200, T_NOW,
        STEP(0, C_OPEN), 1, 0,
        STEP(0, C_SEND), 1, 1, T_EVER, 9,
        STEP(3, C_MOVE), 1, 0,                              /* not settled */
        STEP(3, C_MOVE), 1, M_EVICT,
        STEP(3, C_MOVE), 0, M_RETRY | M_FAIL,               /* dropped for good */
    };
    /* new values adopted: into a channel made for them, one with a
     * waiting receiver, a closed one; a temporary channel refuses */
    static const uint8_t adopt[] = {
        0, 7,
        STEP(0, C_ADOPT), 0, 3 | A_CAP(2), 0, 10 | 1 << 6, 40,
        STEP(1, C_OPEN), 2, O_CAP(1),
        STEP(1, C_RECV), 2, 2, 200, T_EVER,
        STEP(0, C_ADOPT), 2, 2, 5, 6,                       /* the receiver takes them */
        STEP(2, C_SEND), 2, 2, T_EVER, 4, 4,
        STEP(0, C_ADOPT), 2, 1 | A_CLOSED, 7,               /* the sender is refused */
        STEP(1, C_OPEN), 1, 0,
        STEP(0, C_ADOPT), 1, 2, 5, 5,                       /* unbuffered: no values */
        STEP(3, C_OPEN), 0, O_TEMP | O_NONAME,
        STEP(3, C_ADOPT), 3, 1, 8,
        STEP(3, C_MOVE), 3, M_EVICT,
        STEP(1, C_RECV), 0, 4, 200, T_NOW,
        STEP(3, C_MOVE), 0, M_EVICT,
        STEP(1, C_DROP),
        STEP(3, C_MOVE), 0, M_SPLIT,
    };
    write_seed("fuzz_core", "buffered", buffered, sizeof buffered);
    write_seed("fuzz_core", "evict", evict, sizeof evict);
    write_seed("fuzz_core", "move", move, sizeof move);
    write_seed("fuzz_core", "adopt", adopt, sizeof adopt);
    write_seed("fuzz_core", "unbuffered", unbuffered, sizeof unbuffered);
    write_seed("fuzz_core", "reserving", reserving, sizeof reserving);
    write_seed("fuzz_core", "temps", temps, sizeof temps);
}

/* ---- fuzz_dispatch: records of connections' byte streams ----
 * seed (2 bytes), flags, then records: control byte (connection | action
 * << 2) and its bytes (fuzz_dispatch.c). */

enum { D_RAW = 0, D_FRAME = 3, D_BIG_FRAME = 5, D_TIME = 6, D_HANGUP = 7 };

struct script {
    uint8_t buf[8192];
    size_t len;
};

static void put(struct script *sc, const void *p, size_t n)
{
    if (sc->len + n > sizeof sc->buf) {
        fprintf(stderr, "mkcorpus: script too long\n");
        exit(1);
    }
    memcpy(sc->buf + sc->len, p, n);
    sc->len += n;
}

static void put_byte(struct script *sc, uint8_t b)
{
    put(sc, &b, 1);
}

/* A request as one frame record on connection conn. */
static void put_request(struct script *sc, int conn, uint64_t id, Chan__Request *rq)
{
    uint8_t body[1024];
    rq->has_id = 1;
    rq->id = id;
    size_t n = chan__request__pack(rq, body);
    if (n > 255) {
        fprintf(stderr, "mkcorpus: request too long\n");
        exit(1);
    }
    put_byte(sc, (uint8_t)(conn | D_FRAME << 2));
    put_byte(sc, (uint8_t)n);
    put(sc, body, n);
}

static void dispatch_seeds(void)
{
    Chan__Request rqs[NREQ];
    size_t n = all_requests(rqs);
    /* every request after the automatic Hello, over two connections */
    struct script sc = { .len = 0 };
    put(&sc, "\x01\x00\x00", 3);
    for (size_t i = 1; i < n; i++) {
        put_request(&sc, (int)(i % 2), 10 + i, &rqs[i]);
        if (i % 5 == 0) {
            put_byte(&sc, D_TIME << 2);
            put_byte(&sc, 60);
        }
    }
    put_byte(&sc, 1 | D_HANGUP << 2);
    write_seed("fuzz_dispatch", "every-request", sc.buf, sc.len);

    /* a producer and a consumer that acknowledges on its next receive */
    sc.len = 0;
    put(&sc, "\x02\x00\x06", 3);   /* --max-frame 64k */
    put_request(&sc, 0, 2, &rqs[1]);   /* open jobs, capacity 2 */
    put_request(&sc, 0, 3, &rqs[3]);   /* send 3 values */
    put_request(&sc, 1, 2, &rqs[4]);   /* recv 2 */
    put_request(&sc, 1, 3, &rqs[15]);  /* recv with acks 1, 2 */
    put_request(&sc, 2, 2, &rqs[8]);   /* stat all */
    put_request(&sc, 2, 3, &rqs[5]);   /* a reserving select */
    put_request(&sc, 2, 4, &rqs[10]);  /* commit */
    put_request(&sc, 1, 4, &rqs[14]);  /* acks and a nack alone */
    put_byte(&sc, D_TIME << 2);
    put_byte(&sc, 200);
    write_seed("fuzz_dispatch", "producer-consumer", sc.buf, sc.len);

    /* protocol errors: no Hello, a frame over the limit, garbage */
    sc.len = 0;
    put(&sc, "\x03\x00\x01", 3);   /* no automatic Hello, --max-frame 1k */
    put_request(&sc, 0, 1, &rqs[3]);   /* a send before Hello */
    put_request(&sc, 1, 1, &rqs[0]);   /* Hello */
    put_byte(&sc, 1 | D_BIG_FRAME << 2);   /* a 2000-byte frame */
    put_byte(&sc, 2000 & 255);
    put_byte(&sc, 2000 >> 8);
    for (int i = 0; i < 2000; i++)
        put_byte(&sc, 0x0a);
    put_byte(&sc, 2 | D_RAW << 2);
    put(&sc, "\x0b\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12);
    write_seed("fuzz_dispatch", "errors", sc.buf, sc.len);
}

/* ---- fuzz_journal: logs as records ----
 * flags, two 2-byte damage positions, then [type][len][body] records
 * (fuzz_journal.c).  Bodies are varints (all below 128 here) and bytes. */
static void journal_seeds(void)
{
    static const uint8_t make_a[] = { 2, 4, 1, 10, 'a', 'b' };                 /* MAKE 1 cap 10 "ab" */
    static const uint8_t put_a[] = { 5, 9, 1, 1, 0, 2, 'v', '1', 2, 1, 0 };    /* PUT 1: v1, then an empty value */
    static const uint8_t dlv[] = { 6, 1, 1 };                                  /* DLV 1 */
    static const uint8_t ack[] = { 7, 1, 2 };                                  /* ACK 2 */
    static const uint8_t close_a[] = { 3, 1, 1 };                              /* CLOSE 1 */
    static const uint8_t del_a[] = { 4, 1, 1 };                                /* DELETE 1 */
    static const uint8_t make_b[] = { 2, 4, 2, 0, 'a', 'b' };                  /* MAKE 2 cap 0 "ab" */
    static const uint8_t end[] = { 8, 2, 2, 9 };                               /* END (not in a log) */
    const struct { const char *name; uint8_t flags; uint16_t flip, cut; const uint8_t *r[6];
                   size_t n[6]; } seeds[] = {
        { "basic", 0, 0, 0, { make_a, put_a, dlv, ack, close_a }, { 6, 11, 3, 3, 3 } },
        { "reuse-name", 0, 0, 0, { make_a, put_a, del_a, make_b, ack }, { 6, 11, 3, 6, 3 } },
        { "torn", 4, 0, 70, { make_a, put_a, dlv, ack, close_a }, { 6, 11, 3, 3, 3 } },
        { "flipped", 2, 300, 0, { make_a, put_a, dlv, ack, close_a }, { 6, 11, 3, 3, 3 } },
        { "two-logs", 8, 0, 0, { make_a, put_a, dlv, ack, close_a }, { 6, 11, 3, 3, 3 } },
        { "zero-tail", 16, 0, 0, { make_a, put_a, dlv }, { 6, 11, 3 } },
        { "no-header", 1, 0, 0, { make_a, put_a }, { 6, 11 } },
        { "misplaced-end", 0, 0, 0, { make_a, end }, { 6, 4 } },
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        uint8_t buf[256];
        size_t n = 0;
        buf[n++] = seeds[i].flags;
        buf[n++] = (uint8_t)seeds[i].flip;
        buf[n++] = (uint8_t)(seeds[i].flip >> 8);
        buf[n++] = (uint8_t)seeds[i].cut;
        buf[n++] = (uint8_t)(seeds[i].cut >> 8);
        for (size_t k = 0; k < 6 && seeds[i].r[k]; k++) {
            memcpy(buf + n, seeds[i].r[k], seeds[i].n[k]);
            n += seeds[i].n[k];
        }
        write_seed("fuzz_journal", seeds[i].name, buf, n);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mkcorpus DIR\n");
        return 2;
    }
    outdir = argv[1];
    fill_messages();
    frame_seeds();
    core_seeds();
    dispatch_seeds();
    journal_seeds();
    return 0;
}

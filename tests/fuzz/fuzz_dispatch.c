/*
 * fuzz_dispatch.c - the daemon's request path in-process: byte streams of
 * a few connections, interleaved, through the real frame reading
 * (chand_conn.c), dispatch (chand_dispatch.c) and channel core, with no
 * sockets and no event loop (chand_conn_new with fd -1).
 *
 * Input: two bytes seed the core, one byte of flags (bit 0: no automatic
 * Hello on a new connection; bits 1-2: --max-frame 1k, 2k, 4k or 64k), then
 * records of a control byte (bits 0-1: the connection; the rest: what to do)
 * and its bytes:
 *   raw bytes     feed N (next byte) bytes as they are to the connection
 *   a frame       feed a length prefix and N bytes of body (N: one byte, or
 *                 two for frames past the limit): a frame the fuzzer does
 *                 not have to measure
 *   time          move the clock on, as the loop's timers do: deadlines and
 *                 ack deadlines expire, deleted channels' values are freed
 *   hang up       the peer closes: the connection is doomed and reaped
 * A connection is opened when a record first names it (and greeted with a
 * Hello frame unless flag bit 0 says not to).
 *
 * Checks after every record: no crash, leak or undefined behaviour (ASan,
 * LeakSanitizer, UBSan); core_audit finds the core consistent; every reply
 * is a whole frame no larger than --max-frame that decodes, the same with
 * the fast decoder as with protobuf-c, with an id and a known status.  At
 * the end the server stops as on SIGTERM, every connection drains and is
 * reaped, and chand_server_free leaves nothing behind.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "chan_frame.h"
#include "chand_hash.h"
#include "chand_log.h"
#include "chand_server.h"
#include "fz_input.h"
#include "fz_pb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCONN 4

/* The daemon's clock, moved by the input (chand_clock.c is not linked). */
static uint64_t fz_now_us = 1000000000;

uint64_t chand_now_us(void)
{
    return fz_now_us;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_dispatch: %s\n", what);
    abort();
}

static void must(bool ok, const char *what)
{
    if (!ok)
        fail(what);
}

/* What the harness saw of a connection's requests: the ids a reply may
 * carry (besides 0, for errors that cannot name one). */
#define MAXIDS 512
typedef struct fz_stream {
    uint8_t *buf;                /* every byte fed, for framing */
    size_t len, off, cap;        /* off: the start of the next frame */
    uint64_t ids[MAXIDS];
    size_t nids;
    bool lost;                   /* too many ids, or framing gave up */
} fz_stream_t;

static struct {
    chand_server_t *srv;
    chand_conn_t *conn[NCONN];
    fz_stream_t stream[NCONN];
    struct evbuffer *out;
    chan_arena_t arena;          /* for decoding replies */
    bool no_hello;
} fz;

/* ---- replies ---- */

static bool id_sent(const fz_stream_t *st, uint64_t id);

static void check_reply(const uint8_t *body, size_t len, const fz_stream_t *st)
{
    chan_arena_t *a = &fz.arena;
    Chan__Reply *fast = chan_frame_decode_reply(a, body, len);
    Chan__Reply *ref = chan__reply__unpack(NULL, len, body);
    must(fast && ref, "a reply frame that does not decode");
    char why[512];
    if (!fz_pb_equal(&ref->base, &fast->base, why, sizeof why))
        fail(why);
    must(ref->has_id && ref->has_status, "a reply without an id or a status");
    must(ref->status >= CHAN__STATUS__OK && ref->status <= CHAN__STATUS__RETRY,
         "a reply with an unknown status");
    must(id_sent(st, ref->id), "a reply to a request this connection never sent");
    chan__reply__free_unpacked(ref, NULL);
    chan_arena_reset(a);
}

static bool id_sent(const fz_stream_t *st, uint64_t id)
{
    if (st->lost || id == 0)
        return true;
    for (size_t i = 0; i < st->nids; i++)
        if (st->ids[i] == id)
            return true;
    return false;
}

/* Every reply a connection wrote since last time: whole, sized, valid,
 * and to a request of that connection. */
static void check_output(chand_conn_t *c, const fz_stream_t *st)
{
    chand_conn_take_output(c, fz.out);
    size_t len = evbuffer_get_length(fz.out);
    if (!len)
        return;
    const uint8_t *p = evbuffer_pullup(fz.out, -1);
    size_t off = 0;
    while (off < len) {
        uint64_t body;
        size_t hdr;
        int rc = chan_frame_header(p + off, len - off, UINT64_MAX, &body, &hdr);
        must(rc == CHAN_FRAME_OK && body <= len - off - hdr, "a reply that is not a whole frame");
        must(hdr + body <= fz.srv->opts.max_frame, "a reply frame over --max-frame");
        check_reply(p + off + hdr, (size_t)body, st);
        off += hdr + (size_t)body;
    }
    evbuffer_drain(fz.out, len);
}

static bool conn_alive(const chand_conn_t *c)
{
    for (const qlink_t *l = fz.srv->conns.next; l != &fz.srv->conns; l = l->next)
        if (QLIST_ENTRY(l, chand_conn_t, link) == c)
            return true;
    return false;
}

/* Read every connection's replies, then free the doomed ones (the reaper's
 * work; freeing may answer, and doom, others: until none is left). */
static void settle(void)
{
    for (int round = 0; round < 2 * NCONN + 2; round++) {
        for (int i = 0; i < NCONN; i++)
            if (fz.conn[i])
                check_output(fz.conn[i], &fz.stream[i]);
        if (qlist_empty(&fz.srv->doomed))
            break;
        chand_conn_reap(fz.srv);
        for (int i = 0; i < NCONN; i++)
            if (fz.conn[i] && !conn_alive(fz.conn[i]))
                fz.conn[i] = NULL;
    }
    const char *bad = core_audit(fz.srv->core, NULL, NULL);
    if (bad)
        fail(bad);
}

/* ---- input ---- */

/* Frame what a connection was fed, as the daemon does, and note the id of
 * every request in it. */
static void stream_frames(fz_stream_t *st)
{
    while (!st->lost && st->off < st->len) {
        uint64_t body;
        size_t hdr;
        int rc = chan_frame_header(st->buf + st->off, st->len - st->off, fz.srv->opts.max_frame,
                                   &body, &hdr);
        if (rc == CHAN_FRAME_MORE || (rc == CHAN_FRAME_OK && body > st->len - st->off - hdr))
            return;
        if (rc != CHAN_FRAME_OK) {
            st->lost = true;   /* the daemon gives up on it too */
            return;
        }
        Chan__Request *rq = chan__request__unpack(NULL, (size_t)body, st->buf + st->off + hdr);
        if (rq && rq->has_id) {
            if (st->nids == MAXIDS)
                st->lost = true;
            else
                st->ids[st->nids++] = rq->id;
        }
        if (rq)
            chan__request__free_unpacked(rq, NULL);
        st->off += hdr + (size_t)body;
    }
}

static void conn_feed(int i, const uint8_t *p, size_t len)
{
    fz_stream_t *st = &fz.stream[i];
    if (len == 0) {
        chand_conn_feed(fz.conn[i], p, 0);
        return;
    }
    if (st->len + len > st->cap) {
        st->cap = (st->len + len) * 2;
        st->buf = realloc(st->buf, st->cap);
        must(st->buf != NULL, "out of memory");
    }
    memcpy(st->buf + st->len, p, len);
    st->len += len;
    stream_frames(st);
    chand_conn_feed(fz.conn[i], p, len);
}

static void feed_frame(int i, const uint8_t *body, size_t len)
{
    static uint8_t frame[CHAN_FRAME_HDR_MAX + 65536];
    size_t n = chan_frame_put_len(frame, len);
    memcpy(frame + n, body, len);
    conn_feed(i, frame, n + len);
}

static void greet(int i)
{
    Chan__Hello h = CHAN__HELLO__INIT;
    h.has_version = 1;
    h.version = CHAN_PROTOCOL_VERSION;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = 1;
    rq.op_case = CHAN__REQUEST__OP_HELLO;
    rq.hello = &h;
    uint8_t body[64];
    feed_frame(i, body, chan__request__pack(&rq, body));
}

/* Connection i, opened (and greeted) if it is not. */
static void conn_get(int i)
{
    if (!fz.conn[i]) {
        fz_stream_t *st = &fz.stream[i];
        st->len = st->off = st->nids = 0;
        st->lost = false;
        char peer[16];
        snprintf(peer, sizeof peer, "fuzz-%d", i);
        fz.conn[i] = chand_conn_new(fz.srv, -1, peer);
        must(fz.conn[i] != NULL, "an in-process connection could not be made");
        if (!fz.no_hello)
            greet(i);
    }
}

/* What the loop's timers do when time has passed: deadlines and ack
 * deadlines expire (deadline_cb), deleted channels' values are freed a
 * slice at a time (reclaim_cb). */
static void time_passes(chand_server_t *s)
{
    uint64_t t0 = chand_busy_begin(s);
    core_expire(s->core, (int64_t)(t0 / 1000));
    core_reclaim(s->core, 64);
    chand_conn_flush_pending(s);
    chand_server_rearm(s);
    chand_busy_end(s, t0);
}

enum { ACT_RAW, ACT_FRAME = 3, ACT_BIG_FRAME = 5, ACT_TIME = 6, ACT_HANGUP = 7, ACT_KINDS = 8 };

static void record(fz_in_t *in)
{
    uint8_t ctl = fz_u8(in);
    int i = ctl & 3, act = (ctl >> 2) % ACT_KINDS;
    size_t n, got;
    const uint8_t *p;
    if (act < ACT_FRAME) {
        n = fz_u8(in);
        p = fz_bytes(in, n, &got);
        conn_get(i);
        conn_feed(i, p, got);
    } else if (act <= ACT_BIG_FRAME) {
        n = fz_u8(in);
        if (act == ACT_BIG_FRAME)
            n |= (size_t)fz_u8(in) << 8;
        p = fz_bytes(in, n, &got);
        conn_get(i);
        feed_frame(i, p, got);
    } else if (act == ACT_TIME) {
        uint8_t b = fz_u8(in);
        fz_now_us += (b < 128 ? b : (uint64_t)(b - 127) * 100) * 1000;
        time_passes(fz.srv);
    } else if (fz.conn[i]) {
        chand_conn_doom(fz.conn[i], NULL);   /* the peer hung up */
    }
    settle();
}

static chand_opts_t opts_for(uint8_t flags)
{
    static const uint64_t frames[4] = { 1024, 2048, 4096, 65536 };
    chand_opts_t o;
    memset(&o, 0, sizeof o);   /* no listener, no files, no metrics */
    o.max_frame = frames[(flags >> 1) & 3];
    o.max_conns = NCONN;
    o.max_channels = 8;
    o.max_pending = 8;
    o.max_output = 64 * 1024;
    o.max_batch = 8;
    o.max_memory = 4096;
    o.hello_timeout_ms = 10000;
    o.ack_wait_ms = 500;
    o.log_level = -1;
    return o;
}

/* Stop as on SIGTERM: every connection drains its replies and goes. */
static void stop(void)
{
    chand_server_stop(fz.srv);
    settle();
    must(fz.srv->nconns == 0, "a connection did not go at shutdown");
    chand_server_free(fz.srv);
    evbuffer_free(fz.out);
    chan_arena_free(&fz.arena);
    for (int i = 0; i < NCONN; i++)
        free(fz.stream[i].buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[16] = "fuzz_dispatch!!";
    fz_in_t in = fz_in(data, size);
    uint64_t seed = fz_uint(&in, 2);
    uint8_t flags = fz_u8(&in);
    chand_opts_t o = opts_for(flags);
    chand_log_level = -1;   /* every bad frame would log a line */
    memset(&fz, 0, sizeof fz);
    fz.no_hello = flags & 1;
    fz.srv = chand_server_new(&o);
    must(fz.srv != NULL, "the server could not be made");
    chand_hash_seed(key);   /* the same run for the same input */
    core_seed(fz.srv->core, seed + 1);
    fz.out = evbuffer_new();
    chan_arena_init(&fz.arena);
    while (fz_left(&in))
        record(&in);
    stop();
    return 0;
}

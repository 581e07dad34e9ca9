/*
 * fuzz_frame.c - the framing codec (proto/chan_frame.c) on arbitrary bytes.
 *
 * Checks, for every input:
 *   - chan_frame_header agrees with a plain reference reading of a varint
 *     (OK / MORE / BAD / TOO_BIG, length and prefix size), and a length
 *     written by chan_frame_put_len reads back;
 *   - chan_frame_decode_request and chan_frame_decode_reply, whose fast
 *     paths promise protobuf-c's answer, accept exactly what protobuf-c's
 *     own unpack accepts and decode the same fields (differential);
 *   - whatever decodes survives encode -> frame header -> decode unchanged,
 *     the frame is exactly the size chan_frame_size_* announced, and the
 *     fast reply encoder writes the very bytes protobuf-c writes;
 *   - chan_name_valid agrees with the rule it documents.
 * Any disagreement aborts with the path of the differing field.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan_frame.h"
#include "fz_input.h"
#include "fz_pb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *why)
{
    fprintf(stderr, "fuzz_frame: %s: %s\n", what, why);
    abort();
}

/* ---- the length prefix ---- */

/* A varint read the plain way, as chan_frame.h describes the header. */
static int ref_header(const uint8_t *buf, size_t avail, uint64_t max, uint64_t *len, size_t *hdr)
{
    uint64_t v = 0;
    for (size_t i = 0; i < CHAN_FRAME_HDR_MAX; i++) {
        if (i == avail)
            return CHAN_FRAME_MORE;
        if (i == CHAN_FRAME_HDR_MAX - 1 && buf[i] > 1)
            return CHAN_FRAME_BAD;
        v += (uint64_t)(buf[i] & 0x7f) << (7 * i);
        if (buf[i] < 0x80) {
            if (v > max)
                return CHAN_FRAME_TOO_BIG;
            *len = v;
            *hdr = i + 1;
            return CHAN_FRAME_OK;
        }
    }
    return CHAN_FRAME_BAD;
}

static void check_header(const uint8_t *data, size_t size)
{
    fz_in_t in = fz_in(data, size);
    uint64_t max = fz_uint(&in, 8);
    size_t avail;
    const uint8_t *buf = fz_bytes(&in, CHAN_FRAME_HDR_MAX + 2, &avail);
    uint64_t len = 0, rlen = 0;
    size_t hdr = 0, rhdr = 0;
    int rc = chan_frame_header(buf, avail, max, &len, &hdr);
    int rrc = ref_header(buf, avail, max, &rlen, &rhdr);
    if (rc != rrc)
        fail("chan_frame_header", "result differs from a plain varint reading");
    if (rc == CHAN_FRAME_OK && (len != rlen || hdr != rhdr))
        fail("chan_frame_header", "length or prefix size differs");
    uint8_t out[CHAN_FRAME_HDR_MAX];
    size_t n = chan_frame_put_len(out, max);
    if (n > CHAN_FRAME_HDR_MAX || chan_frame_header(out, n, UINT64_MAX, &len, &hdr) != CHAN_FRAME_OK ||
        len != max || hdr != n)
        fail("chan_frame_put_len", "a written length does not read back");
}

/* ---- whole messages ---- */

static void must_equal(const char *what, const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    char why[512];
    if (!fz_pb_equal(a, b, why, sizeof why))
        fail(what, why);
}

/* The body of a whole frame of frame_len bytes, checked against its header. */
static const uint8_t *frame_body(const uint8_t *frame, size_t frame_len, size_t *body_len)
{
    uint64_t len;
    size_t hdr;
    if (chan_frame_header(frame, frame_len, UINT64_MAX, &len, &hdr) != CHAN_FRAME_OK ||
        hdr + len != frame_len)
        fail("encode", "the frame's length prefix does not match its size");
    *body_len = (size_t)len;
    return frame + hdr;
}

static void request_round_trip(const Chan__Request *rq)
{
    size_t size = chan_frame_size_request(rq);
    uint8_t *frame = malloc(size);
    if (chan_frame_encode_request(rq, frame) != size)
        fail("chan_frame_encode_request", "wrote another size than it announced");
    size_t blen;
    const uint8_t *body = frame_body(frame, size, &blen);
    chan_arena_t a;
    chan_arena_init(&a);
    Chan__Request *back = chan_frame_decode_request(&a, body, blen);
    if (!back)
        fail("request round trip", "an encoded request does not decode");
    must_equal("request round trip", &rq->base, &back->base);
    chan_arena_free(&a);
    free(frame);
}

static void reply_round_trip(const Chan__Reply *r)
{
    size_t size = chan_frame_size_reply(r);
    uint8_t *frame = malloc(size);
    if (chan_frame_encode_reply(r, frame) != size)
        fail("chan_frame_encode_reply", "wrote another size than it announced");
    size_t blen;
    const uint8_t *body = frame_body(frame, size, &blen);
    size_t plen = chan__reply__get_packed_size(r);
    uint8_t *pb = malloc(plen ? plen : 1);
    if (chan__reply__pack(r, pb) != plen || plen != blen || memcmp(pb, body, blen) != 0)
        fail("chan_frame_encode_reply", "bytes differ from protobuf-c's");
    chan_arena_t a;
    chan_arena_init(&a);
    Chan__Reply *back = chan_frame_decode_reply(&a, body, blen);
    if (!back)
        fail("reply round trip", "an encoded reply does not decode");
    must_equal("reply round trip", &r->base, &back->base);
    chan_arena_free(&a);
    free(pb);
    free(frame);
}

static void check_request(chan_arena_t *a, const uint8_t *data, size_t size)
{
    Chan__Request *fast = chan_frame_decode_request(a, data, size);
    Chan__Request *ref = chan__request__unpack(NULL, size, data);
    if (!fast != !ref)
        fail("chan_frame_decode_request", fast ? "accepts what protobuf-c refuses"
                                               : "refuses what protobuf-c accepts");
    if (ref) {
        must_equal("chan_frame_decode_request", &ref->base, &fast->base);
        if (!fz_pb_has_field0(&ref->base))
            request_round_trip(ref);
        chan__request__free_unpacked(ref, NULL);
    }
}

static void check_reply(chan_arena_t *a, const uint8_t *data, size_t size)
{
    Chan__Reply *fast = chan_frame_decode_reply(a, data, size);
    Chan__Reply *ref = chan__reply__unpack(NULL, size, data);
    if (!fast != !ref)
        fail("chan_frame_decode_reply", fast ? "accepts what protobuf-c refuses"
                                             : "refuses what protobuf-c accepts");
    if (ref) {
        must_equal("chan_frame_decode_reply", &ref->base, &fast->base);
        if (!fz_pb_has_field0(&ref->base)) {
            reply_round_trip(ref);
            reply_round_trip(fast);
        }
        chan__reply__free_unpacked(ref, NULL);
    }
}

/* ---- names ---- */

static void check_name(const uint8_t *data, size_t size)
{
    bool ok = size >= 1 && size <= CHAN_NAME_MAX;
    for (size_t i = 0; i < size && ok; i++)
        ok = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/-",
                    data[i]) && data[i];
    if (!chan_name_valid(data, size) != !ok)
        fail("chan_name_valid", "disagrees with [A-Za-z0-9._:/-]{1,255}");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_header(data, size);
    check_name(data, size);
    /* one arena for both decodes and no reset between them: the second
     * decode must not disturb the first's results, nor need a fresh arena */
    chan_arena_t a;
    chan_arena_init(&a);
    check_request(&a, data, size);
    check_reply(&a, data, size);
    chan_arena_reset(&a);
    check_request(&a, data, size);
    chan_arena_free(&a);
    return 0;
}

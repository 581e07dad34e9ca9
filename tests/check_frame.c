/*
 * check_frame.c - unit tests of the framing codec shared by chand and
 * libchan (proto/chan_frame.c) and of the address parser (proto/chan_addr.c).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "chan_addr.h"
#include "chan_frame.h"
#include "chan_slot.h"

/* ---- length prefix ---- */

START_TEST(t_varint_round_trip)
{
    const uint64_t lens[] = { 0, 1, 127, 128, 300, 16383, 16384, 1u << 20, UINT64_C(1) << 35,
                              UINT64_MAX };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t buf[CHAN_FRAME_HDR_MAX];
        size_t n = chan_frame_put_len(buf, lens[i]);
        ck_assert_uint_le(n, CHAN_FRAME_HDR_MAX);
        uint64_t got;
        size_t hdr;
        ck_assert_int_eq(chan_frame_header(buf, n, UINT64_MAX, &got, &hdr), CHAN_FRAME_OK);
        ck_assert_uint_eq(got, lens[i]);
        ck_assert_uint_eq(hdr, n);
        /* every proper prefix asks for more */
        for (size_t k = 0; k < n; k++)
            ck_assert_int_eq(chan_frame_header(buf, k, UINT64_MAX, &got, &hdr), CHAN_FRAME_MORE);
    }
}
END_TEST

START_TEST(t_header_limits_and_garbage)
{
    uint8_t buf[16];
    uint64_t len;
    size_t hdr;
    size_t n = chan_frame_put_len(buf, 1001);
    ck_assert_int_eq(chan_frame_header(buf, n, 1000, &len, &hdr), CHAN_FRAME_TOO_BIG);
    ck_assert_int_eq(chan_frame_header(buf, n, 1001, &len, &hdr), CHAN_FRAME_OK);
    /* eleven continuation bytes: not a varint */
    memset(buf, 0x80, sizeof buf);
    ck_assert_int_eq(chan_frame_header(buf, sizeof buf, UINT64_MAX, &len, &hdr), CHAN_FRAME_BAD);
    /* a tenth byte with more than bit 63 overflows 64 bits */
    memset(buf, 0xff, 9);
    buf[9] = 0x02;
    ck_assert_int_eq(chan_frame_header(buf, 10, UINT64_MAX, &len, &hdr), CHAN_FRAME_BAD);
    /* the limit is checked before the body is there */
    n = chan_frame_put_len(buf, UINT64_C(1) << 40);
    ck_assert_int_eq(chan_frame_header(buf, n, 1u << 20, &len, &hdr), CHAN_FRAME_TOO_BIG);
}
END_TEST

/* ---- whole messages ---- */

static uint8_t *encode_send(const char *name, const ProtobufCBinaryData *vals, size_t n,
                            size_t *len)
{
    Chan__Send s = CHAN__SEND__INIT;
    s.has_name = 1;
    s.name.data = (uint8_t *)name;
    s.name.len = strlen(name);
    s.n_values = n;
    s.values = (ProtobufCBinaryData *)vals;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = 1;
    rq.id = 42;
    rq.op_case = CHAN__REQUEST__OP_SEND;
    rq.send = &s;
    uint64_t acks[2] = { 7, 9 };
    rq.n_ack = 2;
    rq.ack = acks;
    size_t size = chan_frame_size_request(&rq);
    uint8_t *buf = malloc(size);
    *len = chan_frame_encode_request(&rq, buf);
    ck_assert_uint_eq(*len, size);
    return buf;
}

START_TEST(t_request_round_trip_with_empty_values)
{
    ProtobufCBinaryData vals[3] = { { 0, NULL }, { 5, (uint8_t *)"hello" }, { 0, NULL } };
    size_t len;
    uint8_t *buf = encode_send("jobs", vals, 3, &len);
    uint64_t body;
    size_t hdr;
    ck_assert_int_eq(chan_frame_header(buf, len, 1u << 20, &body, &hdr), CHAN_FRAME_OK);
    ck_assert_uint_eq(hdr + body, len);
    chan_arena_t a;
    chan_arena_init(&a);
    Chan__Request *rq = chan_frame_decode_request(&a, buf + hdr, body);
    ck_assert_ptr_nonnull(rq);
    ck_assert_uint_eq(rq->id, 42);
    ck_assert_int_eq(rq->op_case, CHAN__REQUEST__OP_SEND);
    ck_assert_uint_eq(rq->n_ack, 2);
    ck_assert_uint_eq(rq->ack[1], 9);
    ck_assert_uint_eq(rq->send->n_values, 3);       /* zero-length values survive */
    ck_assert_uint_eq(rq->send->values[0].len, 0);
    ck_assert_uint_eq(rq->send->values[1].len, 5);
    ck_assert(memcmp(rq->send->values[1].data, "hello", 5) == 0);
    ck_assert_uint_eq(rq->send->values[2].len, 0);
    chan_arena_reset(&a);
    /* the arena is reusable after a reset */
    rq = chan_frame_decode_request(&a, buf + hdr, body);
    ck_assert_ptr_nonnull(rq);
    chan_arena_free(&a);
    free(buf);
}
END_TEST

START_TEST(t_truncated_and_garbage_bodies)
{
    ProtobufCBinaryData v = { 5, (uint8_t *)"hello" };
    size_t len;
    uint8_t *buf = encode_send("jobs", &v, 1, &len);
    uint64_t body;
    size_t hdr;
    ck_assert_int_eq(chan_frame_header(buf, len, 1u << 20, &body, &hdr), CHAN_FRAME_OK);
    chan_arena_t a;
    chan_arena_init(&a);
    /* every truncation of the body is either a valid shorter message or
     * rejected, and never crashes: the ones that cut a field are rejected */
    int rejected = 0;
    for (size_t cut = 0; cut < body; cut++) {
        Chan__Request *rq = chan_frame_decode_request(&a, buf + hdr, cut);
        rejected += rq == NULL;
        chan_arena_reset(&a);
    }
    ck_assert_int_gt(rejected, 0);
    /* a field claiming more bytes than there are */
    const uint8_t bad[] = { 0x62, 0x10, 'a' };
    ck_assert_ptr_null(chan_frame_decode_request(&a, bad, sizeof bad));
    chan_arena_reset(&a);
    /* random bytes never crash the decoder */
    srand(1);
    uint8_t junk[256];
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)rand() % sizeof junk;
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rand();
        (void)chan_frame_decode_request(&a, junk, n);
        (void)chan_frame_decode_reply(&a, junk, n);
        chan_arena_reset(&a);
    }
    chan_arena_free(&a);
    free(buf);
}
END_TEST

/* ---- receive replies: chan_frame_decode_reply's fast path ---- */

/* Encode a reply with protobuf-c; the caller frees it. */
static uint8_t *encode_reply(const Chan__Reply *r, size_t *body_len, size_t *hdr_len)
{
    size_t size = chan_frame_size_reply(r);
    uint8_t *buf = malloc(size);
    size_t len = chan_frame_encode_reply(r, buf);
    uint64_t body;
    ck_assert_int_eq(chan_frame_header(buf, len, 1u << 20, &body, hdr_len), CHAN_FRAME_OK);
    *body_len = (size_t)body;
    return buf;
}

static void assert_same_delivery(const Chan__Delivery *x, const Chan__Delivery *y)
{
    ck_assert_int_eq(x->has_id, y->has_id);
    ck_assert_uint_eq(x->id, y->id);
    ck_assert_int_eq(x->has_value, y->has_value);
    ck_assert_uint_eq(x->value.len, y->value.len);
    ck_assert((x->value.data == NULL) == (y->value.data == NULL));
    if (x->value.len)
        ck_assert(memcmp(x->value.data, y->value.data, x->value.len) == 0);
    ck_assert_int_eq(x->has_redelivered, y->has_redelivered);
    ck_assert_uint_eq(x->redelivered, y->redelivered);
}

/* chan_frame_decode_reply gives what protobuf-c's own unpack gives. */
static void assert_decodes_as_protobuf_c(const uint8_t *body, size_t len)
{
    chan_arena_t a, b;
    chan_arena_init(&a);
    chan_arena_init(&b);
    Chan__Reply *x = chan_frame_decode_reply(&a, body, len);
    Chan__Reply *y = chan__reply__unpack(&b.pb, len, body);
    ck_assert((x == NULL) == (y == NULL));
    if (x) {
        ck_assert_int_eq(x->has_id, y->has_id);
        ck_assert_uint_eq(x->id, y->id);
        ck_assert_int_eq(x->has_status, y->has_status);
        ck_assert_int_eq(x->status, y->status);
        ck_assert((x->message == NULL) == (y->message == NULL));
        if (x->message)
            ck_assert_str_eq(x->message, y->message);
        ck_assert_int_eq(x->result_case, y->result_case);
        if (x->result_case == CHAN__REPLY__RESULT_RECV) {
            ck_assert_uint_eq(x->recv->n_deliveries, y->recv->n_deliveries);
            for (size_t i = 0; i < x->recv->n_deliveries; i++)
                assert_same_delivery(x->recv->deliveries[i], y->recv->deliveries[i]);
        }
    }
    chan_arena_free(&a);
    chan_arena_free(&b);
}

START_TEST(t_recv_reply_decodes_as_protobuf_c)
{
    Chan__Delivery d[3] = { CHAN__DELIVERY__INIT, CHAN__DELIVERY__INIT, CHAN__DELIVERY__INIT };
    Chan__Delivery *dp[3] = { &d[0], &d[1], &d[2] };
    const char *vals[3] = { "hello", "", "a longer value, still in one frame" };
    for (int i = 0; i < 3; i++) {
        d[i].has_id = d[i].has_value = 1;
        d[i].id = 1000 + (uint64_t)i * 300;   /* multi-byte varints */
        d[i].value.data = (uint8_t *)vals[i];
        d[i].value.len = strlen(vals[i]);
    }
    d[2].has_redelivered = 1;
    d[2].redelivered = 2;
    Chan__RecvReply rr = CHAN__RECV_REPLY__INIT;
    rr.n_deliveries = 3;
    rr.deliveries = dp;
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = 1;
    r.id = UINT64_C(1) << 40;
    r.status = CHAN__STATUS__OK;
    r.result_case = CHAN__REPLY__RESULT_RECV;
    r.recv = &rr;

    size_t body, hdr;
    uint8_t *buf = encode_reply(&r, &body, &hdr);
    /* the whole reply, and every cut of it */
    for (size_t cut = 0; cut <= body; cut++)
        assert_decodes_as_protobuf_c(buf + hdr, cut);
    /* the values are there, empty ones included */
    chan_arena_t a;
    chan_arena_init(&a);
    Chan__Reply *got = chan_frame_decode_reply(&a, buf + hdr, body);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(got->recv->n_deliveries, 3);
    ck_assert_uint_eq(got->recv->deliveries[1]->value.len, 0);
    ck_assert(memcmp(got->recv->deliveries[2]->value.data, vals[2], strlen(vals[2])) == 0);
    ck_assert_uint_eq(got->recv->deliveries[2]->redelivered, 2);
    chan_arena_free(&a);
    free(buf);

    /* shapes left to protobuf-c: a message, no deliveries, another result */
    r.has_status = 1;
    r.status = CHAN__STATUS__TIMEOUT;
    r.message = "deadline passed";
    rr.n_deliveries = 0;
    buf = encode_reply(&r, &body, &hdr);
    assert_decodes_as_protobuf_c(buf + hdr, body);
    free(buf);
    r.message = NULL;
    buf = encode_reply(&r, &body, &hdr);
    assert_decodes_as_protobuf_c(buf + hdr, body);
    free(buf);
    Chan__SendReply sr = CHAN__SEND_REPLY__INIT;
    sr.has_accepted = 1;
    sr.accepted = 7;
    r.result_case = CHAN__REPLY__RESULT_SEND;
    r.send = &sr;
    buf = encode_reply(&r, &body, &hdr);
    assert_decodes_as_protobuf_c(buf + hdr, body);
    free(buf);

    /* a field twice, an unknown field, a status out of range */
    const uint8_t twice[] = { 0x08, 0x01, 0x08, 0x02, 0x6a, 0x00 };
    const uint8_t unknown[] = { 0x08, 0x01, 0x6a, 0x04, 0x0a, 0x02, 0x20, 0x01 };
    const uint8_t status[] = { 0x10, 0x63, 0x6a, 0x00 };
    assert_decodes_as_protobuf_c(twice, sizeof twice);
    assert_decodes_as_protobuf_c(unknown, sizeof unknown);
    assert_decodes_as_protobuf_c(status, sizeof status);
    /* random bytes behind a receive-reply tag */
    srand(2);
    uint8_t junk[64];
    for (int round = 0; round < 5000; round++) {
        size_t n = 2 + (size_t)rand() % (sizeof junk - 2);
        junk[0] = 0x6a;
        junk[1] = (uint8_t)(n - 2);
        for (size_t i = 2; i < n; i++)
            junk[i] = (uint8_t)(rand() % 4 ? rand() % 0x20 : rand());
        assert_decodes_as_protobuf_c(junk, n);
    }
}
END_TEST

/* chan_frame_encode_reply writes the bytes protobuf-c would write. */
static void assert_encodes_as_protobuf_c(const Chan__Reply *r)
{
    size_t size = chan_frame_size_reply(r);
    uint8_t *ours = malloc(size);
    ck_assert_uint_eq(chan_frame_encode_reply(r, ours), size);
    size_t body = chan__reply__get_packed_size(r);
    uint8_t *theirs = malloc(body);
    ck_assert_uint_eq(chan__reply__pack(r, theirs), body);
    uint64_t len;
    size_t hdr;
    ck_assert_int_eq(chan_frame_header(ours, size, 1u << 20, &len, &hdr), CHAN_FRAME_OK);
    ck_assert_uint_eq(len, body);
    ck_assert_uint_eq(hdr + len, size);
    ck_assert(memcmp(ours + hdr, theirs, body) == 0);
    free(ours);
    free(theirs);
}

START_TEST(t_recv_reply_encodes_as_protobuf_c)
{
    enum { N = 300 };   /* lengths past one varint byte */
    static Chan__Delivery d[N];
    static Chan__Delivery *dp[N];
    static uint8_t data[200];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)i;
    for (int i = 0; i < N; i++) {
        d[i] = (Chan__Delivery)CHAN__DELIVERY__INIT;
        d[i].has_id = i % 7 != 3;
        d[i].id = (uint64_t)i << (i % 60);
        d[i].has_value = i % 5 != 4;
        d[i].value.data = i % 3 ? data : NULL;
        d[i].value.len = i % 3 ? (size_t)(i * 37) % sizeof data : 0;
        d[i].has_redelivered = i % 4 == 1;
        d[i].redelivered = (uint32_t)i * 1000;
        dp[i] = &d[i];
    }
    Chan__RecvReply rr = CHAN__RECV_REPLY__INIT;
    rr.deliveries = dp;
    Chan__Reply r = CHAN__REPLY__INIT;
    r.result_case = CHAN__REPLY__RESULT_RECV;
    r.recv = &rr;
    size_t counts[] = { 0, 1, 2, 17, N };
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        rr.n_deliveries = counts[c];
        for (int flags = 0; flags < 4; flags++) {
            r.has_id = flags & 1;
            r.id = UINT64_MAX - (uint64_t)c;
            r.has_status = (flags & 2) != 0;
            r.status = c % 2 ? CHAN__STATUS__TIMEOUT : CHAN__STATUS__OK;
            assert_encodes_as_protobuf_c(&r);
        }
    }
    /* a message, a primary's address, or another result: protobuf-c's own
     * path */
    r.message = "why";
    assert_encodes_as_protobuf_c(&r);
    r.message = NULL;
    r.primary = "127.0.0.1:7071";
    assert_encodes_as_protobuf_c(&r);
    r.primary = NULL;
    Chan__SendReply sr = CHAN__SEND_REPLY__INIT;
    sr.has_accepted = 1;
    r.result_case = CHAN__REPLY__RESULT_SEND;
    r.send = &sr;
    assert_encodes_as_protobuf_c(&r);
}
END_TEST

/* ---- requests: chan_frame_decode_request's fast path ---- */

static void assert_same_bytes(const ProtobufCBinaryData *x, const ProtobufCBinaryData *y)
{
    ck_assert_uint_eq(x->len, y->len);
    ck_assert((x->data == NULL) == (y->data == NULL));
    if (x->len)
        ck_assert(memcmp(x->data, y->data, x->len) == 0);
}

/* chan_frame_decode_request gives what protobuf-c's own unpack gives. */
static void assert_request_decodes_as_protobuf_c(const uint8_t *body, size_t len)
{
    chan_arena_t a, b;
    chan_arena_init(&a);
    chan_arena_init(&b);
    Chan__Request *x = chan_frame_decode_request(&a, body, len);
    Chan__Request *y = chan__request__unpack(&b.pb, len, body);
    ck_assert((x == NULL) == (y == NULL));
    if (x) {
        ck_assert_int_eq(x->has_id, y->has_id);
        ck_assert_uint_eq(x->id, y->id);
        ck_assert_uint_eq(x->n_ack, y->n_ack);
        for (size_t i = 0; i < x->n_ack; i++)
            ck_assert_uint_eq(x->ack[i], y->ack[i]);
        ck_assert_uint_eq(x->n_nack, y->n_nack);
        for (size_t i = 0; i < x->n_nack; i++)
            ck_assert_uint_eq(x->nack[i], y->nack[i]);
        ck_assert_int_eq(x->op_case, y->op_case);
        ck_assert_uint_eq(x->base.n_unknown_fields, y->base.n_unknown_fields);
        if (x->op_case == CHAN__REQUEST__OP_SEND) {
            const Chan__Send *p = x->send, *q = y->send;
            ck_assert_int_eq(p->has_name, q->has_name);
            assert_same_bytes(&p->name, &q->name);
            ck_assert_uint_eq(p->n_values, q->n_values);
            for (size_t i = 0; i < p->n_values; i++)
                assert_same_bytes(&p->values[i], &q->values[i]);
            ck_assert_int_eq(p->has_timeout_ms, q->has_timeout_ms);
            ck_assert_int_eq(p->timeout_ms, q->timeout_ms);
        } else if (x->op_case == CHAN__REQUEST__OP_RECV) {
            const Chan__Recv *p = x->recv, *q = y->recv;
            ck_assert_int_eq(p->has_name, q->has_name);
            assert_same_bytes(&p->name, &q->name);
            ck_assert_int_eq(p->has_max, q->has_max);
            ck_assert_uint_eq(p->max, q->max);
            ck_assert_int_eq(p->has_timeout_ms, q->has_timeout_ms);
            ck_assert_int_eq(p->timeout_ms, q->timeout_ms);
            ck_assert_int_eq(p->has_max_bytes, q->has_max_bytes);
            ck_assert_uint_eq(p->max_bytes, q->max_bytes);
        }
    }
    chan_arena_free(&a);
    chan_arena_free(&b);
}

/* Encode rq as protobuf-c would and check every cut of it. */
static void check_request_and_cuts(const Chan__Request *rq)
{
    size_t size = chan_frame_size_request(rq);
    uint8_t *buf = malloc(size);
    size_t len = chan_frame_encode_request(rq, buf);
    uint64_t body;
    size_t hdr;
    ck_assert_int_eq(chan_frame_header(buf, len, 1u << 20, &body, &hdr), CHAN_FRAME_OK);
    for (size_t cut = 0; cut <= body; cut++)
        assert_request_decodes_as_protobuf_c(buf + hdr, cut);
    free(buf);
}

START_TEST(t_requests_decode_as_protobuf_c)
{
    enum { N = 300 };
    static ProtobufCBinaryData vals[N];
    static uint64_t acks[N];
    static uint8_t data[100];
    memset(data, 'v', sizeof data);
    for (int i = 0; i < N; i++) {
        vals[i].len = (size_t)(i * 7) % sizeof data;   /* some empty */
        vals[i].data = vals[i].len ? data : NULL;
        acks[i] = (uint64_t)i << (i % 64);
    }
    Chan__Send s = CHAN__SEND__INIT;
    s.has_name = 1;
    s.name.data = (uint8_t *)"jobs";
    s.name.len = 4;
    s.values = vals;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = 1;
    rq.op_case = CHAN__REQUEST__OP_SEND;
    rq.send = &s;
    int64_t timeouts[] = { 0, 250, -1 };   /* -1: a ten-byte varint */
    for (int t = 0; t < 3; t++) {
        rq.id = (uint64_t)t * 1000003;
        s.n_values = (size_t)t * 3;
        s.has_timeout_ms = t != 1;
        s.timeout_ms = timeouts[t];
        rq.n_ack = t == 2 ? N : (size_t)t;
        rq.ack = acks;
        rq.n_nack = t == 1 ? 2 : 0;
        rq.nack = acks + 5;
        check_request_and_cuts(&rq);
    }
    assert_request_decodes_as_protobuf_c(NULL, 0);   /* an empty body */
    rq.n_ack = 0;
    rq.n_nack = 0;
    s.n_values = N;
    s.timeout_ms = INT64_MAX;
    {
        size_t size = chan_frame_size_request(&rq);
        uint8_t *buf = malloc(size);
        size_t len = chan_frame_encode_request(&rq, buf);
        uint64_t body;
        size_t hdr;
        ck_assert_int_eq(chan_frame_header(buf, len, 1u << 20, &body, &hdr), CHAN_FRAME_OK);
        assert_request_decodes_as_protobuf_c(buf + hdr, body);   /* 300 values, whole */
        free(buf);
    }
    Chan__Recv r = CHAN__RECV__INIT;
    r.has_name = 1;
    r.name = s.name;
    r.has_max = r.has_max_bytes = r.has_timeout_ms = 1;
    r.max = 256;
    r.max_bytes = UINT64_C(1) << 20;
    r.timeout_ms = 100;
    rq.op_case = CHAN__REQUEST__OP_RECV;
    rq.recv = &r;
    rq.n_ack = 40;
    check_request_and_cuts(&rq);
    r.has_max = 0;
    r.timeout_ms = -5;
    rq.n_ack = 0;
    check_request_and_cuts(&rq);
    /* other requests, and acks alone: protobuf-c's own path */
    Chan__Ping ping = CHAN__PING__INIT;
    rq.op_case = CHAN__REQUEST__OP_PING;
    rq.ping = &ping;
    check_request_and_cuts(&rq);
    rq.op_case = CHAN__REQUEST__OP__NOT_SET;
    rq.n_ack = 3;
    check_request_and_cuts(&rq);
    /* unpacked acks, a list twice, a field twice, two ops, an unknown field */
    const uint8_t unpacked[] = { 0x08, 0x01, 0x10, 0x05, 0x6a, 0x00 };
    const uint8_t acks_twice[] = { 0x12, 0x01, 0x05, 0x12, 0x01, 0x06, 0x6a, 0x00 };
    const uint8_t name_twice[] = { 0x62, 0x06, 0x0a, 0x01, 'a', 0x0a, 0x01, 'b' };
    const uint8_t two_ops[] = { 0x62, 0x00, 0x6a, 0x00 };
    const uint8_t unknown[] = { 0x62, 0x02, 0x20, 0x01 };
    assert_request_decodes_as_protobuf_c(unpacked, sizeof unpacked);
    assert_request_decodes_as_protobuf_c(acks_twice, sizeof acks_twice);
    assert_request_decodes_as_protobuf_c(name_twice, sizeof name_twice);
    assert_request_decodes_as_protobuf_c(two_ops, sizeof two_ops);
    assert_request_decodes_as_protobuf_c(unknown, sizeof unknown);
    /* random bytes behind a Send or Recv tag */
    srand(3);
    uint8_t junk[64];
    for (int round = 0; round < 5000; round++) {
        size_t n = 2 + (size_t)rand() % (sizeof junk - 2);
        junk[0] = round % 2 ? 0x62 : 0x6a;
        junk[1] = (uint8_t)(n - 2);
        for (size_t i = 2; i < n; i++)
            junk[i] = (uint8_t)(rand() % 4 ? rand() % 0x20 : rand());
        assert_request_decodes_as_protobuf_c(junk, n);
    }
}
END_TEST

/* v as a varint of exactly n bytes (n >= its minimal length), padded
 * with continuation bytes, as a hostile or odd encoder may send it. */
static size_t put_padded(uint8_t *out, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = (uint8_t)(v & 0x7f) | (i + 1 < n ? 0x80 : 0);
        v >>= 7;
    }
    return n;
}

START_TEST(t_long_varints_decode_as_protobuf_c)
{
    /* Tags and length prefixes padded to 1..11 bytes, in each place the
     * fast decoders read one: they must accept exactly what protobuf-c
     * accepts (it takes at most 5 bytes there; it once took 10 here). */
    for (size_t n = 1; n <= 11; n++) {
        uint8_t b[64];
        size_t k;
        /* Request{id: 7 (tag padded), recv: Recv{name: "q"} (tag padded)} */
        k = put_padded(b, 0x08, n);
        b[k++] = 7;
        k += put_padded(b + k, 0x6a, n);
        b[k++] = 3;
        b[k++] = 0x0a, b[k++] = 1, b[k++] = 'q';
        assert_request_decodes_as_protobuf_c(b, k);
        /* the Recv's length prefix padded */
        k = 0;
        b[k++] = 0x6a;
        k += put_padded(b + k, 3, n);
        b[k++] = 0x0a, b[k++] = 1, b[k++] = 'q';
        assert_request_decodes_as_protobuf_c(b, k);
        /* the name's tag and length padded inside a Send */
        k = 0;
        b[k++] = 0x62;
        b[k++] = (uint8_t)(n + n + 1);
        k += put_padded(b + k, 0x0a, n);
        k += put_padded(b + k, 1, n);
        b[k++] = 'q';
        assert_request_decodes_as_protobuf_c(b, k);
        /* an ack list's length padded */
        k = 0;
        b[k++] = 0x12;
        k += put_padded(b + k, 1, n);
        b[k++] = 5;
        b[k++] = 0x6a, b[k++] = 0;
        assert_request_decodes_as_protobuf_c(b, k);
        /* the id's value padded: values may take up to 10 bytes */
        k = 0;
        b[k++] = 0x08;
        k += put_padded(b + k, 7, n);
        b[k++] = 0x6a, b[k++] = 0;
        assert_request_decodes_as_protobuf_c(b, k);
        /* Reply{id (tag padded), recv{Delivery{id: 1}} (tags and lengths padded)} */
        k = put_padded(b, 0x08, n);
        b[k++] = 9;
        k += put_padded(b + k, 0x6a, n);
        k += put_padded(b + k, (uint64_t)(n + n + 2), 1);
        k += put_padded(b + k, 0x0a, n);
        k += put_padded(b + k, 2, n);
        b[k++] = 0x08, b[k++] = 1;
        assert_decodes_as_protobuf_c(b, k);
    }
}
END_TEST

START_TEST(t_big_value_in_arena)
{
    size_t big = 3u << 20;
    uint8_t *data = malloc(big);
    memset(data, 0xab, big);
    ProtobufCBinaryData v = { big, data };
    size_t len;
    uint8_t *buf = encode_send("big", &v, 1, &len);
    uint64_t body;
    size_t hdr;
    ck_assert_int_eq(chan_frame_header(buf, len, 4u << 20, &body, &hdr), CHAN_FRAME_OK);
    ck_assert_int_eq(chan_frame_header(buf, len, 1u << 20, &body, &hdr), CHAN_FRAME_TOO_BIG);
    ck_assert_int_eq(chan_frame_header(buf, len, 4u << 20, &body, &hdr), CHAN_FRAME_OK);
    chan_arena_t a;
    chan_arena_init(&a);
    Chan__Request *rq = chan_frame_decode_request(&a, buf + hdr, body);
    ck_assert_ptr_nonnull(rq);
    ck_assert_uint_eq(rq->send->values[0].len, big);
    ck_assert_int_eq(rq->send->values[0].data[big - 1], 0xab);
    chan_arena_free(&a);
    free(buf);
    free(data);
}
END_TEST

/* ---- names and addresses ---- */

START_TEST(t_names)
{
    const char *good[] = { "a", "jobs", "tmp.0123", "a/b:c-d_e.f", "Z9" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert(chan_name_valid((const uint8_t *)good[i], strlen(good[i])));
    ck_assert(!chan_name_valid((const uint8_t *)"", 0));
    ck_assert(!chan_name_valid(NULL, 3));
    ck_assert(!chan_name_valid((const uint8_t *)"a b", 3));
    ck_assert(!chan_name_valid((const uint8_t *)"a\0b", 3));
    ck_assert(!chan_name_valid((const uint8_t *)"caf\xc3\xa9", 5));
    uint8_t longname[CHAN_NAME_MAX + 1];
    memset(longname, 'n', sizeof longname);
    ck_assert(chan_name_valid(longname, CHAN_NAME_MAX));
    ck_assert(!chan_name_valid(longname, CHAN_NAME_MAX + 1));
}
END_TEST

/* The slot function is part of the protocol: PROTOCOL.md's vectors, and
 * every slot reachable. */
START_TEST(t_slots)
{
    ck_assert_uint_eq(chan_slot("jobs", 4), 125);
    ck_assert_uint_eq(chan_slot("a", 1), 300);
    ck_assert_uint_eq(chan_slot("pre.0", 5), 568);
    ck_assert_uint_eq(chan_slot("load.7", 6), 886);
    static unsigned hits[CHAN_SLOTS];
    char name[32];
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(name, sizeof name, "c.%d", i);
        unsigned s = chan_slot(name, (size_t)n);
        ck_assert_uint_lt(s, CHAN_SLOTS);
        hits[s]++;
    }
    for (unsigned s = 0; s < CHAN_SLOTS; s++)
        ck_assert_uint_gt(hits[s], 30);   /* about 98 each: spread */
}
END_TEST

START_TEST(t_addresses)
{
    struct sockaddr_storage ss;
    socklen_t len;
    ck_assert_int_eq(chan_addr_parse("127.0.0.1:7070", 0, &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 7070);
    ck_assert_int_eq(chan_addr_parse("[::1]:80", 0, &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    ck_assert_int_eq(chan_addr_parse("unix:/tmp/x.sock", 0, &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_UNIX);
    ck_assert_str_eq(((struct sockaddr_un *)&ss)->sun_path, "/tmp/x.sock");
    ck_assert_int_eq(chan_addr_parse("127.0.0.1:0", 1, &ss, &len), 0);   /* bind: any port */
    const char *bad[] = { "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", ":80", "1.2.3.4:99999",
                          "host:12x", "::1:80", "[::1]80", "unix:", NULL };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        ck_assert_msg(chan_addr_parse(bad[i], 0, &ss, &len) < 0, "accepted '%s'", bad[i]);
        ck_assert_int_eq(errno, EINVAL);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("frame");
    TCase *tc = tcase_create("codec");
    tcase_set_timeout(tc, 30);   /* catches hangs: the slowest test takes < 1 s */
    tcase_add_test(tc, t_varint_round_trip);
    tcase_add_test(tc, t_header_limits_and_garbage);
    tcase_add_test(tc, t_request_round_trip_with_empty_values);
    tcase_add_test(tc, t_truncated_and_garbage_bodies);
    tcase_add_test(tc, t_recv_reply_decodes_as_protobuf_c);
    tcase_add_test(tc, t_recv_reply_encodes_as_protobuf_c);
    tcase_add_test(tc, t_requests_decode_as_protobuf_c);
    tcase_add_test(tc, t_long_varints_decode_as_protobuf_c);
    tcase_add_test(tc, t_big_value_in_arena);
    suite_add_tcase(s, tc);
    tc = tcase_create("names");
    tcase_set_timeout(tc, 30);   /* catches hangs: the slowest test takes < 1 s */
    tcase_add_test(tc, t_names);
    tcase_add_test(tc, t_slots);
    tcase_add_test(tc, t_addresses);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}

/*
 * chan_frame.c - varint-delimited protobuf frames, the decoding arena, and
 * channel-name validation (see chan_frame.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "chan_frame.h"

int chan_frame_header(const uint8_t *buf, size_t avail, uint64_t max_frame,
                      uint64_t *body_len, size_t *hdr_len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < CHAN_FRAME_HDR_MAX; i++) {
        if (i == avail)
            return CHAN_FRAME_MORE;
        uint8_t b = buf[i];
        if (i == 9 && b > 1)   /* the tenth byte holds only bit 63 */
            return CHAN_FRAME_BAD;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (v > max_frame)
                return CHAN_FRAME_TOO_BIG;
            *body_len = v;
            *hdr_len = i + 1;
            return CHAN_FRAME_OK;
        }
    }
    return CHAN_FRAME_BAD;
}

/* ---- arena ---- */

struct chan_arena_chunk {
    struct chan_arena_chunk *next;
    size_t size, used;
    max_align_t data[];
};

/* Chunks start at ARENA_CHUNK_MIN and double as a frame needs more; a reset
 * keeps the largest chunk up to ARENA_KEEP_MAX, so a stream of similar
 * frames soon decodes into one reused chunk with no malloc or free at all
 * (freeing a chunk per frame also made glibc consolidate its fast bins on
 * every next large request). */
#define ARENA_CHUNK_MIN 8192
#define ARENA_KEEP_MAX (1u << 20)

static void *arena_pb_alloc(void *data, size_t size)
{
    return chan_arena_alloc(data, size);
}

static void arena_pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;   /* everything goes at the next reset */
}

void chan_arena_init(chan_arena_t *a)
{
    a->head = NULL;
    a->pb.alloc = arena_pb_alloc;
    a->pb.free = arena_pb_free;
    a->pb.allocator_data = a;
}

void *chan_arena_alloc(chan_arena_t *a, size_t size)
{
    const size_t align = sizeof(max_align_t);
    size = (size + align - 1) & ~(align - 1);
    struct chan_arena_chunk *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t csize = c && c->size < ARENA_KEEP_MAX ? 2 * c->size : ARENA_CHUNK_MIN;
        if (csize < size)
            csize = size;
        c = malloc(sizeof *c + csize);
        if (!c)
            return NULL;
        c->size = csize;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    return p;
}

void chan_arena_reset(chan_arena_t *a)
{
    struct chan_arena_chunk *keep = NULL, *c = a->head;
    for (; c; c = c->next)   /* the largest chunk up to the bound stays */
        if (c->size <= ARENA_KEEP_MAX && (!keep || c->size > keep->size))
            keep = c;
    c = a->head;
    while (c) {
        struct chan_arena_chunk *next = c->next;
        if (c != keep)
            free(c);
        c = next;
    }
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->head = keep;
}

void chan_arena_free(chan_arena_t *a)
{
    chan_arena_reset(a);
    free(a->head);
    a->head = NULL;
}

/* ---- messages ---- */


/* ---- the reply that carries values, without protobuf-c ----
 *
 * protobuf-c's generic unpack spent about 800 instructions on each
 * Delivery of a receive reply: most of a client's time when it takes
 * values in batches.  That one reply, Reply{id, status, recv{deliveries:
 * id, value, redelivered}}, is decoded here into the same protobuf-c
 * structs, with each value pointing into the frame instead of copied.
 * Anything else (another field, a field twice, a number out of range, a
 * cut) is left to protobuf-c, so this path only ever gives the answer
 * protobuf-c would give. */

struct rd {
    const uint8_t *p, *end;
};

/* A varint of at most max_bytes bytes.  protobuf-c takes values of up to
 * 10 bytes but tags and length prefixes of at most 5: longer ones here must
 * fail as they fail there. */
static inline bool rd_varint_max(struct rd *r, uint64_t *v, unsigned max_bytes)
{
    if (r->p < r->end && *r->p < 0x80) {   /* tags and small numbers */
        *v = *r->p++;
        return true;
    }
    uint64_t x = 0;
    for (unsigned i = 0; i < max_bytes && r->p < r->end; i++) {
        uint8_t b = *r->p++;
        if (i == 9 && b > 1)
            return false;   /* past 64 bits: protobuf-c decides */
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

static inline bool rd_varint(struct rd *r, uint64_t *v)
{
    return rd_varint_max(r, v, 10);
}

static inline bool rd_tag(struct rd *r, uint64_t *v)
{
    return rd_varint_max(r, v, 5);
}

static bool rd_bytes(struct rd *r, const uint8_t **data, size_t *len)
{
    uint64_t n;
    if (!rd_varint_max(r, &n, 5) || n > (uint64_t)(r->end - r->p))
        return false;
    *data = r->p;
    *len = (size_t)n;
    r->p += n;
    return true;
}

/* Tags: field number << 3 | wire type (0 varint, 2 length-delimited). */
enum {
    TAG_REPLY_ID = 1 << 3, TAG_REPLY_STATUS = 2 << 3, TAG_REPLY_RECV = 13 << 3 | 2,
    TAG_RECV_DELIVERY = 1 << 3 | 2,
    TAG_DLV_ID = 1 << 3, TAG_DLV_VALUE = 2 << 3 | 2, TAG_DLV_REDELIVERED = 3 << 3,
};

static bool fast_delivery(const uint8_t *p, size_t len, Chan__Delivery *d)
{
    *d = (Chan__Delivery)CHAN__DELIVERY__INIT;
    struct rd r = { p, p + len };
    while (r.p < r.end) {
        uint64_t tag, v;
        const uint8_t *b;
        size_t n;
        if (!rd_tag(&r, &tag))
            return false;
        switch (tag) {
        case TAG_DLV_ID:
            if (d->has_id || !rd_varint(&r, &v))
                return false;
            d->has_id = 1;
            d->id = v;
            break;
        case TAG_DLV_VALUE:
            if (d->has_value || !rd_bytes(&r, &b, &n))
                return false;
            d->has_value = 1;
            d->value.data = n ? (uint8_t *)b : NULL;   /* as protobuf-c */
            d->value.len = n;
            break;
        case TAG_DLV_REDELIVERED:
            if (d->has_redelivered || !rd_varint(&r, &v) || v > UINT32_MAX)
                return false;
            d->has_redelivered = 1;
            d->redelivered = (uint32_t)v;
            break;
        default:
            return false;
        }
    }
    return true;
}

/* The fast path: a reply, or NULL for "ask protobuf-c". */
static Chan__Reply *fast_reply(chan_arena_t *a, const uint8_t *body, size_t len)
{
    struct rd r = { body, body + len };
    uint64_t id = 0, st = 0;
    bool has_id = false, has_st = false, has_recv = false;
    const uint8_t *recv = NULL;
    size_t recv_len = 0;
    while (r.p < r.end) {
        uint64_t tag;
        if (!rd_tag(&r, &tag))
            return NULL;
        switch (tag) {
        case TAG_REPLY_ID:
            if (has_id || !rd_varint(&r, &id))
                return NULL;
            has_id = true;
            break;
        case TAG_REPLY_STATUS:
            if (has_st || !rd_varint(&r, &st) || st > CHAN__STATUS__RESERVED)
                return NULL;
            has_st = true;
            break;
        case TAG_REPLY_RECV:
            if (has_recv || !rd_bytes(&r, &recv, &recv_len))
                return NULL;
            has_recv = true;
            break;
        default:
            return NULL;
        }
    }
    if (!has_recv)
        return NULL;
    size_t n = 0;
    struct rd c = { recv, recv + recv_len };
    while (c.p < c.end) {
        uint64_t tag;
        const uint8_t *b;
        size_t bl;
        if (!rd_tag(&c, &tag) || tag != TAG_RECV_DELIVERY || !rd_bytes(&c, &b, &bl))
            return NULL;
        n++;
    }
    Chan__Reply *rep = chan_arena_alloc(a, sizeof *rep);
    Chan__RecvReply *rr = chan_arena_alloc(a, sizeof *rr);
    Chan__Delivery *dv = n ? chan_arena_alloc(a, n * sizeof *dv) : NULL;
    Chan__Delivery **dp = n ? chan_arena_alloc(a, n * sizeof *dp) : NULL;
    if (!rep || !rr || (n && (!dv || !dp)))
        return NULL;
    c = (struct rd){ recv, recv + recv_len };
    for (size_t i = 0; i < n; i++) {
        uint64_t tag;
        const uint8_t *b = NULL;
        size_t bl = 0;
        if (!rd_tag(&c, &tag) || !rd_bytes(&c, &b, &bl) || !fast_delivery(b, bl, &dv[i]))
            return NULL;   /* a Delivery of another shape: protobuf-c decides */
        dp[i] = &dv[i];
    }
    *rr = (Chan__RecvReply)CHAN__RECV_REPLY__INIT;
    rr->n_deliveries = n;
    rr->deliveries = dp;
    *rep = (Chan__Reply)CHAN__REPLY__INIT;
    rep->has_id = has_id;
    rep->id = id;
    rep->has_status = has_st;
    rep->status = (Chan__Status)st;
    rep->result_case = CHAN__REPLY__RESULT_RECV;
    rep->recv = rr;
    return rep;
}

Chan__Reply *chan_frame_decode_reply(chan_arena_t *a, const uint8_t *body, size_t len)
{
    Chan__Reply *r = fast_reply(a, body, len);
    return r ? r : chan__reply__unpack(&a->pb, len, body);
}

/* ---- the requests that move values, without protobuf-c ----
 *
 * On chand's side the hot requests are a producer's Send (a batch of
 * values) and a consumer's Recv (carrying the acknowledgements of the
 * previous batch).  They are decoded here the same way: into protobuf-c's
 * structs, values and names pointing into the frame (chand copies what it
 * keeps), and anything unexpected is left to protobuf-c.  The packed ack
 * and nack lists are accepted in packed form only, as libchan sends them. */

enum {
    TAG_RQ_ID = 1 << 3, TAG_RQ_ACK = 2 << 3 | 2, TAG_RQ_NACK = 3 << 3 | 2,
    TAG_RQ_SEND = 12 << 3 | 2, TAG_RQ_RECV = 13 << 3 | 2,
    TAG_NAME = 1 << 3 | 2,   /* field 1 of Send and of Recv */
    TAG_SEND_VALUE = 2 << 3 | 2, TAG_SEND_TIMEOUT = 3 << 3,
    TAG_RECV_MAX = 2 << 3, TAG_RECV_TIMEOUT = 3 << 3, TAG_RECV_MAX_BYTES = 4 << 3,
};

/* A non-empty packed list of varints, into an arena array. */
static bool fast_packed(chan_arena_t *a, const uint8_t *p, size_t len, uint64_t **out, size_t *n)
{
    if (len == 0 || p[len - 1] & 0x80)
        return false;
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        count += p[i] < 0x80;
    uint64_t *v = chan_arena_alloc(a, count * sizeof *v);
    if (!v)
        return false;
    struct rd r = { p, p + len };
    for (size_t i = 0; i < count; i++)
        if (!rd_varint(&r, &v[i]))
            return false;
    *out = v;
    *n = count;
    return r.p == r.end;
}

static bool fast_send(chan_arena_t *a, const uint8_t *p, size_t len, Chan__Send *m)
{
    *m = (Chan__Send)CHAN__SEND__INIT;
    size_t n = 0;
    struct rd r = { p, p + len };
    while (r.p < r.end) {   /* check the shape, count the values */
        uint64_t tag, v;
        const uint8_t *b;
        size_t bl;
        if (!rd_tag(&r, &tag))
            return false;
        if (tag == TAG_NAME || tag == TAG_SEND_VALUE) {
            if (!rd_bytes(&r, &b, &bl))
                return false;
            n += tag == TAG_SEND_VALUE;
        } else if (tag != TAG_SEND_TIMEOUT || !rd_varint(&r, &v)) {
            return false;
        }
    }
    if (n && !(m->values = chan_arena_alloc(a, n * sizeof *m->values)))
        return false;
    r = (struct rd){ p, p + len };
    while (r.p < r.end) {   /* the same fields again, now kept */
        uint64_t tag, v;
        const uint8_t *b = NULL;
        size_t bl = 0;
        if (!rd_tag(&r, &tag))
            return false;
        if (tag == TAG_SEND_TIMEOUT) {
            if (m->has_timeout_ms || !rd_varint(&r, &v))
                return false;
            m->has_timeout_ms = 1;
            m->timeout_ms = (int64_t)v;
            continue;
        }
        if (!rd_bytes(&r, &b, &bl))
            return false;
        ProtobufCBinaryData d = { bl, bl ? (uint8_t *)b : NULL };
        if (tag == TAG_SEND_VALUE) {
            m->values[m->n_values++] = d;
        } else {
            if (m->has_name)
                return false;
            m->has_name = 1;
            m->name = d;
        }
    }
    return true;
}

static bool fast_recv(const uint8_t *p, size_t len, Chan__Recv *m)
{
    *m = (Chan__Recv)CHAN__RECV__INIT;
    struct rd r = { p, p + len };
    while (r.p < r.end) {
        uint64_t tag, v;
        const uint8_t *b;
        size_t bl;
        if (!rd_tag(&r, &tag))
            return false;
        if (tag == TAG_NAME) {
            if (m->has_name || !rd_bytes(&r, &b, &bl))
                return false;
            m->has_name = 1;
            m->name = (ProtobufCBinaryData){ bl, bl ? (uint8_t *)b : NULL };
            continue;
        }
        if (!rd_varint(&r, &v))
            return false;
        if (tag == TAG_RECV_MAX && !m->has_max && v <= UINT32_MAX) {
            m->has_max = 1;
            m->max = (uint32_t)v;
        } else if (tag == TAG_RECV_TIMEOUT && !m->has_timeout_ms) {
            m->has_timeout_ms = 1;
            m->timeout_ms = (int64_t)v;
        } else if (tag == TAG_RECV_MAX_BYTES && !m->has_max_bytes) {
            m->has_max_bytes = 1;
            m->max_bytes = v;
        } else {
            return false;
        }
    }
    return true;
}

/* The fast path: a Send or Recv request, or NULL for "ask protobuf-c". */
static Chan__Request *fast_request(chan_arena_t *a, const uint8_t *body, size_t len)
{
    Chan__Request *rq = chan_arena_alloc(a, sizeof *rq);
    if (!rq)
        return NULL;
    *rq = (Chan__Request)CHAN__REQUEST__INIT;
    struct rd r = { body, body + len };
    while (r.p < r.end) {
        uint64_t tag, v;
        const uint8_t *b;
        size_t bl;
        if (!rd_tag(&r, &tag))
            return NULL;
        if (tag == TAG_RQ_ID) {
            if (rq->has_id || !rd_varint(&r, &v))
                return NULL;
            rq->has_id = 1;
            rq->id = v;
            continue;
        }
        if (!rd_bytes(&r, &b, &bl))
            return NULL;
        if (tag == TAG_RQ_ACK && !rq->n_ack) {
            if (!fast_packed(a, b, bl, &rq->ack, &rq->n_ack))
                return NULL;
        } else if (tag == TAG_RQ_NACK && !rq->n_nack) {
            if (!fast_packed(a, b, bl, &rq->nack, &rq->n_nack))
                return NULL;
        } else if (tag == TAG_RQ_SEND && rq->op_case == CHAN__REQUEST__OP__NOT_SET) {
            if (!(rq->send = chan_arena_alloc(a, sizeof *rq->send)) || !fast_send(a, b, bl, rq->send))
                return NULL;
            rq->op_case = CHAN__REQUEST__OP_SEND;
        } else if (tag == TAG_RQ_RECV && rq->op_case == CHAN__REQUEST__OP__NOT_SET) {
            if (!(rq->recv = chan_arena_alloc(a, sizeof *rq->recv)) || !fast_recv(b, bl, rq->recv))
                return NULL;
            rq->op_case = CHAN__REQUEST__OP_RECV;
        } else {
            return NULL;
        }
    }
    return rq->op_case == CHAN__REQUEST__OP__NOT_SET ? NULL : rq;
}

Chan__Request *chan_frame_decode_request(chan_arena_t *a, const uint8_t *body, size_t len)
{
    Chan__Request *rq = fast_request(a, body, len);
    return rq ? rq : chan__request__unpack(&a->pb, len, body);
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* The body size of a frame of frame_size bytes: body + varint_size(body)
 * grows strictly with body, so exactly one prefix length fits. */
static size_t body_of(size_t frame_size)
{
    size_t hdr = 1;
    while (hdr < CHAN_FRAME_HDR_MAX && varint_size(frame_size - hdr) != hdr)
        hdr++;
    return frame_size - hdr;
}

size_t chan_frame_size_request(const Chan__Request *m)
{
    size_t body = chan__request__get_packed_size(m);
    return varint_size(body) + body;
}

size_t chan_frame_encode_request_sized(const Chan__Request *m, size_t frame_size, uint8_t *out)
{
    size_t hdr = chan_frame_put_len(out, body_of(frame_size));
    return hdr + chan__request__pack(m, out + hdr);
}

size_t chan_frame_encode_request(const Chan__Request *m, uint8_t *out)
{
    return chan_frame_encode_request_sized(m, chan_frame_size_request(m), out);
}

/* ---- the same reply, encoded without protobuf-c ----
 *
 * protobuf-c sizes each Delivery again at every level it packs before it
 * writes it; for a batch that was most of chand's encoding time.  For this
 * one shape the bytes are written here directly: the very bytes protobuf-c
 * writes (fields in number order, proto2 presence flags honoured), which
 * check_frame verifies.  Every other reply goes to protobuf-c. */

static bool fast_encodable(const Chan__Reply *m)
{
    if (m->result_case != CHAN__REPLY__RESULT_RECV || !m->recv || m->message || m->primary ||
        m->base.n_unknown_fields || m->recv->base.n_unknown_fields ||
        (m->has_status && (int)m->status < 0))
        return false;
    for (size_t i = 0; i < m->recv->n_deliveries; i++)
        if (m->recv->deliveries[i]->base.n_unknown_fields)
            return false;
    return true;
}

static size_t fast_delivery_size(const Chan__Delivery *d)
{
    return (d->has_id ? 1 + varint_size(d->id) : 0) +
           (d->has_value ? 1 + varint_size(d->value.len) + d->value.len : 0) +
           (d->has_redelivered ? 1 + varint_size(d->redelivered) : 0);
}

static size_t fast_recv_size(const Chan__RecvReply *rr)
{
    size_t n = 0;
    for (size_t i = 0; i < rr->n_deliveries; i++) {
        size_t d = fast_delivery_size(rr->deliveries[i]);
        n += 1 + varint_size(d) + d;
    }
    return n;
}

/* The reply's fields before its RecvReply. */
static size_t fast_head_size(const Chan__Reply *m)
{
    return (m->has_id ? 1 + varint_size(m->id) : 0) +
           (m->has_status ? 1 + varint_size((uint64_t)m->status) : 0);
}

static size_t fast_reply_size(const Chan__Reply *m, size_t recv_len)
{
    return fast_head_size(m) + 1 + varint_size(recv_len) + recv_len;
}

static uint8_t *put_field(uint8_t *p, uint8_t tag, uint64_t v)
{
    *p++ = tag;
    return p + chan_frame_put_len(p, v);
}

static size_t fast_reply_pack(const Chan__Reply *m, size_t recv_len, uint8_t *out)
{
    uint8_t *p = out;
    if (m->has_id)
        p = put_field(p, TAG_REPLY_ID, m->id);
    if (m->has_status)
        p = put_field(p, TAG_REPLY_STATUS, (uint64_t)m->status);
    p = put_field(p, TAG_REPLY_RECV, recv_len);
    for (size_t i = 0; i < m->recv->n_deliveries; i++) {
        const Chan__Delivery *d = m->recv->deliveries[i];
        p = put_field(p, TAG_RECV_DELIVERY, fast_delivery_size(d));
        if (d->has_id)
            p = put_field(p, TAG_DLV_ID, d->id);
        if (d->has_value) {
            p = put_field(p, TAG_DLV_VALUE, d->value.len);
            if (d->value.len)
                memcpy(p, d->value.data, d->value.len);
            p += d->value.len;
        }
        if (d->has_redelivered)
            p = put_field(p, TAG_DLV_REDELIVERED, d->redelivered);
    }
    return (size_t)(p - out);
}

size_t chan_frame_size_reply(const Chan__Reply *m)
{
    size_t body = fast_encodable(m) ? fast_reply_size(m, fast_recv_size(m->recv))
                                    : chan__reply__get_packed_size(m);
    return varint_size(body) + body;
}

size_t chan_frame_encode_reply_sized(const Chan__Reply *m, size_t frame_size, uint8_t *out)
{
    size_t body = body_of(frame_size);
    size_t hdr = chan_frame_put_len(out, body);
    if (fast_encodable(m)) {
        /* the RecvReply's length follows from the body's, without sizing
         * every delivery again: the body is the head, the RecvReply's tag,
         * its length's varint and its bytes */
        size_t recv_len = body_of(body - fast_head_size(m) - 1);
        return hdr + fast_reply_pack(m, recv_len, out + hdr);
    }
    return hdr + chan__reply__pack(m, out + hdr);
}

size_t chan_frame_encode_reply(const Chan__Reply *m, uint8_t *out)
{
    return chan_frame_encode_reply_sized(m, chan_frame_size_reply(m), out);
}

int chan_name_valid(const uint8_t *name, size_t len)
{
    if (!name || len == 0 || len > CHAN_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '/' || c == '-'))
            return 0;
    }
    return 1;
}

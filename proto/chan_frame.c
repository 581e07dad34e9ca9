/*
 * chan_frame.c - varint-delimited protobuf frames, the decoding arena, and
 * channel-name validation (see chan_frame.h).
 */
#include "config.h"

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

size_t chan_frame_put_len(uint8_t *out, uint64_t len)
{
    size_t n = 0;
    while (len >= 0x80) {
        out[n++] = (uint8_t)(len | 0x80);
        len >>= 7;
    }
    out[n++] = (uint8_t)len;
    return n;
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

Chan__Request *chan_frame_decode_request(chan_arena_t *a, const uint8_t *body, size_t len)
{
    return chan__request__unpack(&a->pb, len, body);
}

Chan__Reply *chan_frame_decode_reply(chan_arena_t *a, const uint8_t *body, size_t len)
{
    return chan__reply__unpack(&a->pb, len, body);
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

size_t chan_frame_size_reply(const Chan__Reply *m)
{
    size_t body = chan__reply__get_packed_size(m);
    return varint_size(body) + body;
}

size_t chan_frame_encode_reply_sized(const Chan__Reply *m, size_t frame_size, uint8_t *out)
{
    size_t hdr = chan_frame_put_len(out, body_of(frame_size));
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

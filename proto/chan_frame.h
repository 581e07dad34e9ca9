/*
 * chan_frame.h - the framing codec shared by chand and libchan.
 *
 * A frame is a varint length followed by that many bytes of protobuf.
 * The reader checks the length against the limit *before* it buffers the
 * body, so a peer cannot make us allocate more than max_frame.  Decoding
 * allocates from a per-frame arena (protobuf-c copies every bytes field),
 * so freeing a decoded frame is one arena reset.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_FRAME_H
#define CHAN_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "chan.pb-c.h"

#define CHAN_PROTOCOL_VERSION 1u

/* Longest varint length prefix we accept (enough for any 64-bit value). */
#define CHAN_FRAME_HDR_MAX 10

/* The smallest max_frame a server may announce (chand's --max-frame too):
 * room for a request's fixed fields and a channel name beside a value. */
#define CHAN_MIN_MAX_FRAME 1024u

enum chan_frame_rc {
    CHAN_FRAME_OK = 1,        /* a whole header was read */
    CHAN_FRAME_MORE = 0,      /* not enough bytes yet */
    CHAN_FRAME_BAD = -1,      /* not a varint: garbage */
    CHAN_FRAME_TOO_BIG = -2,  /* length over the limit */
};

/* chan_frame_header - read a frame's length prefix from buf[0..avail).
 * On CHAN_FRAME_OK sets *body_len and *hdr_len (bytes of prefix). */
int chan_frame_header(const uint8_t *buf, size_t avail, uint64_t max_frame,
                      uint64_t *body_len, size_t *hdr_len);

/* chan_frame_put_len - write len as a varint into out (CHAN_FRAME_HDR_MAX
 * bytes of room); returns the bytes written.  Inline: the journal writes a
 * few for every value it logs. */
static inline size_t chan_frame_put_len(uint8_t *out, uint64_t len)
{
    size_t n = 0;
    while (len >= 0x80) {
        out[n++] = (uint8_t)(len | 0x80);
        len >>= 7;
    }
    out[n++] = (uint8_t)len;
    return n;
}

/* An arena for decoding: bump allocation, freed all at once. */
typedef struct chan_arena {
    struct chan_arena_chunk *head;
    ProtobufCAllocator pb;     /* hands protobuf-c our alloc/free */
} chan_arena_t;

void chan_arena_init(chan_arena_t *a);
void *chan_arena_alloc(chan_arena_t *a, size_t size);
/* chan_arena_reset - forget every allocation; keeps one chunk for reuse. */
void chan_arena_reset(chan_arena_t *a);
void chan_arena_free(chan_arena_t *a);

/* Decode a frame body; NULL if it is not a valid message.  The result
 * lives in the arena until the next reset.  Its values and names may point
 * into body: keep body until done with the message. */
Chan__Request *chan_frame_decode_request(chan_arena_t *a, const uint8_t *body, size_t len);
Chan__Reply *chan_frame_decode_reply(chan_arena_t *a, const uint8_t *body, size_t len);

/* Encode a message as a whole frame (prefix + body) into out, which has
 * room for chan_frame_size(); returns the bytes written. */
size_t chan_frame_size_request(const Chan__Request *m);
size_t chan_frame_encode_request(const Chan__Request *m, uint8_t *out);
size_t chan_frame_size_reply(const Chan__Reply *m);
size_t chan_frame_encode_reply(const Chan__Reply *m, uint8_t *out);

/* The same, given the frame size chan_frame_size_*() returned for m.
 * Sizing walks the whole message (every value, every delivery), and
 * protobuf-c walks the nested messages again as it packs them: a caller
 * that sized the frame to make room for it should not pay a third time. */
size_t chan_frame_encode_request_sized(const Chan__Request *m, size_t frame_size, uint8_t *out);
size_t chan_frame_encode_reply_sized(const Chan__Reply *m, size_t frame_size, uint8_t *out);

/* Channel names: 1-255 bytes of [A-Za-z0-9._:/-].  True if valid. */
#define CHAN_NAME_MAX 255
int chan_name_valid(const uint8_t *name, size_t len);

#endif /* CHAN_FRAME_H */

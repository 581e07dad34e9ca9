/*
 * chand_record.h - the records of chand's journal (chand_journal.c writes
 * them, chand_recover.c reads them), and the byte buffer they are built in.
 *
 * A record is a 12-byte header and a body:
 *     u32 len     body length (little-endian)
 *     u32 hcrc    CRC-32C of the 4 bytes of len
 *     u32 bcrc    CRC-32C of the body
 *     body        u8 type, then the type's fields (varints, bytes)
 * The header has its own checksum so that a flipped bit in a length cannot
 * pass for a record cut short by a crash (which would discard the good
 * records after it as a torn tail): a torn tail is a record whose header
 * is whole and good and whose body runs past the end of the file, or a
 * tail of zero bytes, or a last record that fails its checksum, or a
 * header that fails its own with only zeros from the next sector boundary
 * on (a write killed in the middle stops at a page boundary, and the log
 * has zeros written ahead).  Anything else that does not check is
 * corruption.  docs/DURABILITY.md has the format of each type.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_RECORD_H
#define CHAND_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "chan_frame.h"

#define REC_HDR 12
/* The smallest unit a write lands in whole (a disk sector; pages are
 * multiples of it). */
#define REC_SECTOR 512
/* No record is longer (a PUT holds one batch of values, bounded by the
 * frame limit, itself bounded at 1 GiB). */
#define REC_MAX_BODY (1u << 30)
#define REC_VERSION 1

enum rec_type {
    REC_FILE = 1,     /* first in every file: version, kind, generation */
    REC_MAKE = 2,     /* no, cap, name */
    REC_CLOSE = 3,    /* no */
    REC_DELETE = 4,   /* no */
    REC_PUT = 5,      /* no, then (vid, redelivered, len, bytes)... */
    REC_DLV = 6,      /* vid... : handed to a receiver */
    REC_ACK = 7,      /* vid... : acknowledged, gone */
    REC_END = 8,      /* last in a snapshot: last_no, last_vid */
};

enum rec_file_kind { REC_KIND_LOG = 0, REC_KIND_SNAP = 1 };

/* A growable byte buffer. */
typedef struct rec_buf {
    uint8_t *p;
    size_t len, cap;
} rec_buf_t;

void rec_buf_reserve(rec_buf_t *b, size_t more);
void rec_buf_free(rec_buf_t *b);

/* rec_room - make room for more bytes at the end of b; returns where they
 * go (the caller then adds what it wrote to b->len).  The journal writes a
 * few fields for every value it logs, so the common case stays inline. */
static inline uint8_t *rec_room(rec_buf_t *b, size_t more)
{
    if (b->cap - b->len < more)
        rec_buf_reserve(b, more);
    return b->p + b->len;
}

static inline void rec_put_varint(rec_buf_t *b, uint64_t v)
{
    uint8_t *p = rec_room(b, CHAN_FRAME_HDR_MAX);
    b->len += chan_frame_put_len(p, v);
}

static inline void rec_put_bytes(rec_buf_t *b, const void *p, size_t n)
{
    uint8_t *to = rec_room(b, n);
    if (n)
        memcpy(to, p, n);
    b->len += n;
}

/* rec_begin - start a record of type t at the end of b; returns where it
 * starts, for rec_finish (which fills in its header). */
size_t rec_begin(rec_buf_t *b, enum rec_type t);
void rec_finish(rec_buf_t *b, size_t start);

/* Reading: walk the records of one file's bytes. */
enum rec_rc {
    REC_OK = 0,      /* *type, *body, *blen set; off advanced */
    REC_EOF = 1,     /* off is at the end */
    REC_TORN = 2,    /* from off on: what a crash leaves (see above) */
    REC_BAD = 3,     /* the record at off is corrupt */
};

typedef struct rec_reader {
    const uint8_t *p;
    size_t len, off;
} rec_reader_t;

enum rec_rc rec_next(rec_reader_t *r, uint8_t *type, const uint8_t **body, size_t *blen);
/* rec_all_zero - whether the n bytes at p are all zero (a log's tail that
 * was reserved or written ahead and never reached). */
bool rec_all_zero(const uint8_t *p, size_t n);

/* Decoding a body's fields; false if they run past end. */
bool rec_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v);

/* A file's header: the body of its first record, of type FILE. */
typedef struct rec_file_hdr {
    uint64_t version, kind, gen;
    bool has_prev;           /* a log naming the log before it */
    uint64_t prev;
} rec_file_hdr_t;
/* rec_file_header - decode a FILE record's body into *h; false if the
 * record is not one or its fields do not decode. */
bool rec_file_header(uint8_t type, const uint8_t *body, size_t blen, rec_file_hdr_t *h);
/* rec_first_header - the header of the file whose first n bytes are p;
 * false if they do not start with a whole, good FILE record. */
bool rec_first_header(const uint8_t *p, size_t n, rec_file_hdr_t *h);

/* rec_write_all - write all n bytes to fd at offset at, or at its file
 * position if at is negative (retrying short writes and EINTR).  0, or -1
 * with errno. */
int rec_write_all(int fd, const void *p, size_t n, int64_t at);

#endif /* CHAND_RECORD_H */

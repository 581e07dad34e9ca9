/*
 * chand_record.c - building and checking journal records (the format is in
 * chand_record.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan_frame.h"
#include "chand_alloc.h"
#include "chand_crc32c.h"
#include "chand_record.h"

void rec_buf_reserve(rec_buf_t *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

void rec_buf_free(rec_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

size_t rec_begin(rec_buf_t *b, enum rec_type t)
{
    size_t start = b->len;
    rec_buf_reserve(b, REC_HDR + 1);
    b->len += REC_HDR;
    b->p[b->len++] = (uint8_t)t;
    return start;
}

void rec_finish(rec_buf_t *b, size_t start)
{
    uint8_t *h = b->p + start;
    uint32_t len = (uint32_t)(b->len - start - REC_HDR);
    put_u32(h, len);
    put_u32(h + 4, chand_crc32c(0, h, 4));
    put_u32(h + 8, chand_crc32c(0, h + REC_HDR, len));
}

bool rec_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

enum rec_rc rec_next(rec_reader_t *r, uint8_t *type, const uint8_t **body, size_t *blen)
{
    size_t left = r->len - r->off;
    if (!left)
        return REC_EOF;   /* (an empty file has no mapping: p is NULL) */
    const uint8_t *h = r->p + r->off;
    if (left < REC_HDR)
        return REC_TORN;   /* a header cut short */
    uint32_t len = get_u32(h);
    if (get_u32(h + 4) != chand_crc32c(0, h, 4) || len == 0 || len > REC_MAX_BODY) {
        /* A write killed part way stops at a page boundary, and into a log
         * written ahead with zeros: a header cut there has zeros from the
         * next sector boundary on, to the end. */
        size_t torn = REC_SECTOR - r->off % REC_SECTOR;
        return rec_all_zero(h, left) || (torn < left && rec_all_zero(h + torn, left - torn))
                   ? REC_TORN
                   : REC_BAD;
    }
    if (len > left - REC_HDR)
        return REC_TORN;   /* the body cut short */
    if (get_u32(h + 8) != chand_crc32c(0, h + REC_HDR, len)) {
        /* the last record of the file, or one followed by zeros only, was
         * being written when the machine stopped */
        size_t end = REC_HDR + len;
        return rec_all_zero(h + end, left - end) ? REC_TORN : REC_BAD;
    }
    *type = h[REC_HDR];
    *body = h + REC_HDR + 1;
    *blen = len - 1;
    r->off += REC_HDR + len;
    return REC_OK;
}

bool rec_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    size_t n;
    if (chan_frame_header(*p, (size_t)(end - *p), UINT64_MAX, v, &n) != CHAN_FRAME_OK)
        return false;
    *p += n;
    return true;
}

bool rec_file_header(uint8_t type, const uint8_t *body, size_t blen, rec_file_hdr_t *h)
{
    const uint8_t *q = body, *end = body + blen;
    if (type != REC_FILE || !rec_get_varint(&q, end, &h->version) ||
        !rec_get_varint(&q, end, &h->kind) || !rec_get_varint(&q, end, &h->gen))
        return false;
    h->has_prev = q < end;
    h->prev = 0;
    return !h->has_prev || rec_get_varint(&q, end, &h->prev);
}

bool rec_first_header(const uint8_t *p, size_t n, rec_file_hdr_t *h)
{
    rec_reader_t r = { p, n, 0 };
    uint8_t type;
    const uint8_t *body;
    size_t blen;
    return rec_next(&r, &type, &body, &blen) == REC_OK && rec_file_header(type, body, blen, h);
}

int rec_write_all(int fd, const void *p, size_t n, int64_t at)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = at < 0 ? write(fd, b, n) : pwrite(fd, b, n, (off_t)at);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += k;
        n -= (size_t)k;
        if (at >= 0)
            at += k;
    }
    return 0;
}

/*
 * fz_input.h - reading a fuzzer's input as a stream of small decisions.
 *
 * A target takes bytes off the front of its input to choose what to do
 * next; once the input runs out every read gives 0, so any input, even an
 * empty one, is a complete script.  Small reads keep the mapping from bytes
 * to actions simple, which lets the fuzzer's mutations stay meaningful.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef FZ_INPUT_H
#define FZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

typedef struct fz_in {
    const uint8_t *p, *end;
} fz_in_t;

static inline fz_in_t fz_in(const uint8_t *data, size_t size)
{
    fz_in_t in = { data, data + size };
    return in;
}

static inline size_t fz_left(const fz_in_t *in)
{
    return (size_t)(in->end - in->p);
}

static inline uint8_t fz_u8(fz_in_t *in)
{
    return in->p < in->end ? *in->p++ : 0;
}

/* n little-endian bytes (n <= 8). */
static inline uint64_t fz_uint(fz_in_t *in, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)fz_u8(in) << (8 * i);
    return v;
}

/* Up to n bytes, in place: *len is how many there were. */
static inline const uint8_t *fz_bytes(fz_in_t *in, size_t n, size_t *len)
{
    const uint8_t *p = in->p;
    if (n > fz_left(in))
        n = fz_left(in);
    in->p += n;
    *len = n;
    return p;
}

#endif /* FZ_INPUT_H */

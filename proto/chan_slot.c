/*
 * chan_slot.c - a channel name's hash slot (see chan_slot.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include "chan_slot.h"

uint32_t chan_slot(const void *name, size_t len)
{
    const unsigned char *p = name;
    uint32_t h = 2166136261u;   /* FNV-1a, 32 bits */
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h % CHAN_SLOTS;
}

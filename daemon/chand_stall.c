/*
 * chand_stall.c - the loop-stall histogram (see chand_stall.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stddef.h>

#include "chand_stall.h"

/* From a tenth of a millisecond, where a callback is plainly fine, to a
 * second, where every client has noticed. */
const uint64_t chand_stall_bounds_us[CHAND_STALL_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
};

void chand_stall_record(chand_stall_t *h, uint64_t us)
{
    size_t i = 0;
    while (i < CHAND_STALL_BUCKETS - 1 && us > chand_stall_bounds_us[i])
        i++;
    h->count[i]++;
    h->total++;
    h->sum_us += us;
    if (us > h->max_us)
        h->max_us = us;
}

void chand_stall_since(chand_stall_t *h, uint64_t t0)
{
    chand_stall_record(h, chand_now_us() - t0);
}

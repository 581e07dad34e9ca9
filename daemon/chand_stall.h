/*
 * chand_stall.h - how long the event loop is busy with one callback.
 *
 * chand has one thread: while a callback runs (a connection's requests, the
 * deadline timer, closing connections), every other client waits.  Each
 * callback's duration goes into a histogram with fixed bucket bounds, so
 * that an operator sees whether any request costs the others (a ping's
 * latency can be no better than the longest callback before it), and
 * which size of stall: Stat and the Prometheus endpoint report it.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_STALL_H
#define CHAND_STALL_H

#include <stdint.h>

/* Upper bounds (µs) of the buckets but the last, which has no bound. */
#define CHAND_STALL_BUCKETS 14
extern const uint64_t chand_stall_bounds_us[CHAND_STALL_BUCKETS - 1];

typedef struct chand_stall {
    uint64_t count[CHAND_STALL_BUCKETS];   /* callbacks per bucket */
    uint64_t total;                        /* callbacks */
    uint64_t sum_us;
    uint64_t max_us;
} chand_stall_t;

/* chand_now_us - a monotonic clock in microseconds: chand's only clock
 * (chand_clock.c). */
uint64_t chand_now_us(void);
/* chand_stall_record - one callback took us microseconds. */
void chand_stall_record(chand_stall_t *h, uint64_t us);
/* chand_stall_since - record the callback that began at t0 (chand_now_us). */
void chand_stall_since(chand_stall_t *h, uint64_t t0);

#endif /* CHAND_STALL_H */

/*
 * chan_clock.h - the monotonic clock, in nanoseconds: the one reading of
 * CLOCK_MONOTONIC that libchan's chan_now(), chand's chand_now_us(), the
 * spin loops, the chan CLI, the benchmarks and the test helpers build on.
 *
 * Header-only, so that programs linking neither libchan nor chand
 * (redisbench, fsync_lat, tcp_relay) read the same clock the same way.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_CLOCK_H
#define CHAN_CLOCK_H

#include <stdint.h>
#include <time.h>

/* chan_mono_ns - nanoseconds on CLOCK_MONOTONIC (since boot on Linux). */
static inline int64_t chan_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif /* CHAN_CLOCK_H */

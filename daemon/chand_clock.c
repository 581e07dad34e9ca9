/*
 * chand_clock.c - chand's only clock: microseconds of CLOCK_MONOTONIC
 * (chand_now, in ms, and the loop-stall histogram read it).
 *
 * It is a file of its own so that a program linking the rest of the
 * daemon in-process (the fuzz target tests/fuzz/fuzz_dispatch.c) can link
 * a clock of its own instead and move time as it pleases.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include "chan_clock.h"
#include "chand_stall.h"

uint64_t chand_now_us(void)
{
    return (uint64_t)chan_mono_ns() / 1000;
}

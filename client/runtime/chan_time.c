/*
 * chan_time.c - the monotonic millisecond clock every deadline is built on
 * (chan_clock.h's, in milliseconds).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include "chan/chan.h"
#include "chan_clock.h"

int64_t chan_now(void)
{
    return chan_mono_ns() / 1000000;
}

/*
 * chan_time.c - the monotonic millisecond clock every deadline is built on.
 */
#include "config.h"

#include <time.h>

#include "chan/chan.h"

int64_t chan_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * chand_clock.c - chand's only clock: milliseconds of CLOCK_MONOTONIC.
 *
 * It is a file of its own so that a program linking the rest of the
 * daemon in-process (the fuzz target tests/fuzz/fuzz_dispatch.c) can link
 * a clock of its own instead and move time as it pleases.
 */
#include "config.h"

#include <time.h>

#include "chand_server.h"

uint64_t chand_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

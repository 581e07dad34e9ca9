/*
 * test_size.h - how big the heavy tests run in this build.
 *
 * A heavy test (a million values, 100,000 goroutines, 8x8 threads) runs at
 * its full size in the plain build.  Under AddressSanitizer every
 * operation is several times slower and every goroutine stack costs far
 * more memory, so the sanitizer build runs the same test, with the same
 * checks, at a size that fits: its point there is memory safety, which
 * the smaller run shows as well.  ThreadSanitizer (configure --enable-tsan)
 * is slower still (5 to 15 times) and gives every goroutine its own
 * shadow stack and event trace (about 1 MiB of mappings), so a TSan build
 * runs the same smaller sizes: races show in a thousand rounds as well as
 * in a million.  CHAN_TEST_FULL=1 in the environment (or
 * `make check-full`) runs full sizes in any build.  The size that ran is
 * printed, so a log says what was tested.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef TEST_SIZE_H
#define TEST_SIZE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static inline long test_size(const char *what, long full, long sanitized)
{
    long n = full;
    const char *why = "full size";
#if defined(CHAN_SANITIZERS) || defined(CHAN_TSAN)
    const char *f = getenv("CHAN_TEST_FULL");
    if (!(f && *f && strcmp(f, "0") != 0)) {
        n = sanitized;
        why = "sanitizer build; CHAN_TEST_FULL=1 for full size";
    }
#endif
    (void)sanitized;
    printf("size: %s = %ld (%s)\n", what, n, why);
    fflush(stdout);
    return n;
}

/* test_wait_ms - a guard against hangs inside a test (a join, a wait for
 * all values), stretched as Check's own timeouts are: by
 * CK_TIMEOUT_MULTIPLIER, which make check sets for sanitizer builds. */
static inline int64_t test_wait_ms(int64_t ms)
{
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    long k = m ? strtol(m, NULL, 10) : 1;
    return ms * (k > 1 ? k : 1);
}

#endif /* TEST_SIZE_H */

/*
 * chan_units.c - sizes and durations with suffixes (see chan_units.h):
 * one parser for chand's flags and libchan's environment alike.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chan_units.h"

/* The decimal number s starts with (no sign, no blanks), and where it
 * ends.  0, or -1 with errno set if s does not start with one or it does
 * not fit in 64 bits. */
static int leading_number(const char *s, unsigned long long *v, char **end)
{
    if (!s || *s < '0' || *s > '9') {
        errno = EINVAL;
        return -1;
    }
    errno = 0;
    *v = strtoull(s, end, 10);
    return errno ? -1 : 0;   /* ERANGE */
}

int chan_parse_size(const char *s, uint64_t *out)
{
    unsigned long long v;
    char *end;
    if (leading_number(s, &v, &end) < 0)
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case 0: break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: errno = EINVAL; return -1;
    }
    if (*end) {
        errno = EINVAL;
        return -1;
    }
    if (v > (UINT64_C(1) << (62 - shift))) {
        errno = ERANGE;
        return -1;
    }
    *out = (uint64_t)v << shift;
    return 0;
}

int chan_parse_duration(const char *s, uint64_t *out)
{
    unsigned long long v;
    char *end;
    if (leading_number(s, &v, &end) < 0)
        return -1;
    static const struct { const char *suffix; uint64_t ms; } units[] = {
        { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) != 0)
            continue;
        if (v > UINT64_MAX / 4 / units[i].ms) {
            errno = ERANGE;
            return -1;
        }
        *out = v * units[i].ms;
        return 0;
    }
    errno = EINVAL;
    return -1;
}

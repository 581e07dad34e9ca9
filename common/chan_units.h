/*
 * chan_units.h - numbers with units, as chand's flags and libchan's
 * environment take them: sizes ("64k", "1m") and durations ("250ms", "5s").
 *
 * Strict: decimal digits (no sign, no blanks, not empty), then at most one
 * suffix the parser knows, then nothing.  A number too large is refused,
 * never wrapped.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_UNITS_H
#define CHAN_UNITS_H

#include <stdint.h>

/* chan_parse_size - "64", "16k", "1m", "2g" (k, m, g: powers of 1024, in
 * either case) into *out.  0, or -1 with errno EINVAL (s is NULL or not
 * such a size) or ERANGE (over 2^62); *out is untouched then. */
int chan_parse_size(const char *s, uint64_t *out);

/* chan_parse_duration - "250" or "250ms", "30s", "5m", "1h" into *out, in
 * milliseconds.  0, or -1 with errno EINVAL (s is NULL or not such a
 * duration) or ERANGE (2^62 ms or more); *out is untouched then. */
int chan_parse_duration(const char *s, uint64_t *out);

#endif /* CHAN_UNITS_H */

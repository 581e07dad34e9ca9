/*
 * talk.h - the talk's building blocks, shared by the examples that build on
 * them: the boring() generator and fan-in, written once with ex_make() so
 * that with --remote their channels live in chand too.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef EXAMPLES_TALK_H
#define EXAMPLES_TALK_H

#include <stdint.h>

#include "chan/chan.h"

/* boring - a generator: returns a channel on which a goroutine says
 * "<msg> 0", "<msg> 1", ... pausing a random time up to max_pause_ms
 * between messages.  The goroutine ends when its send fails: close the
 * channel (ex_close) to stop it.  The caller owns the handle. */
chan_t *boring(const char *msg, int64_t max_pause_ms);

/* fanin - one channel fed by all the inputs, a goroutine per input
 * forwarding its values.  The forwarders end when their input or the
 * output is closed.  The caller keeps its references to the inputs and
 * owns the returned handle. */
chan_t *fanin(chan_t *const *inputs, size_t n);

/* fanin_select - the same with a single goroutine and a select over two
 * inputs; it ends when the output is closed or both inputs are. */
chan_t *fanin_select(chan_t *input1, chan_t *input2);

#endif /* EXAMPLES_TALK_H */

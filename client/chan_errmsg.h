/*
 * chan_errmsg.h - the text behind chan_errmsg(), one per thread.
 *
 * Every public function that can fail clears it as it starts; a failure
 * that has words for it (chand's message, or one of the library's) sets
 * it.  Clearing is one store to a thread-local pointer, so the hot local
 * channel operations can afford it: the text itself lives in a buffer
 * that only a failure touches.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_ERRMSG_H
#define CHAN_ERRMSG_H

/* NULL: no message; else this thread's buffer (chan_errmsg.c). */
extern __thread const char *chani_errmsg_cur __attribute__((tls_model("initial-exec")));

static inline void chani_errmsg_clear(void)
{
    chani_errmsg_cur = NULL;
}

/* Set this thread's message (printf-style; cut at 511 bytes). */
void chani_errmsg_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* CHAN_ERRMSG_H */

/*
 * chan_handle.h - what every chan_t starts with, inside libchan.
 *
 * One handle type serves local channels (chan_local.c) and remote ones
 * (chan_remote.c): the public functions in chan_api.c look at `kind` and
 * call the matching implementation, so a remote channel goes wherever a
 * local one goes.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_HANDLE_H
#define CHAN_HANDLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "chan/chan.h"

enum chan_kind {
    CHAN_KIND_LOCAL = 1,
    CHAN_KIND_REMOTE = 2,
};

struct chan {
    _Atomic long refs;
    enum chan_kind kind;
};

/* Local channels (chan_local.c): the implementation behind chan_api.c. */
int chani_local_send_many(chan_t *ch, const chan_val_t *vals, size_t n,
                          size_t *sent, int64_t deadline);
ssize_t chani_local_recv(chan_t *ch, void *buf, size_t size, void **alloc,
                         int64_t deadline);
ssize_t chani_local_recv_many(chan_t *ch, chan_val_t *vals, size_t max, int64_t deadline);
int chani_local_close(chan_t *ch);
void chani_local_free(chan_t *ch);
ssize_t chani_local_len(chan_t *ch);
ssize_t chani_local_cap(chan_t *ch);
int chani_local_select(chan_case_t *cases, size_t n, int64_t deadline);

/* Remote channels (chan_remote.c). */
int chani_remote_send_many(chan_t *ch, const chan_val_t *vals, size_t n,
                           size_t *sent, int64_t deadline);
ssize_t chani_remote_recv(chan_t *ch, void *buf, size_t size, void **alloc,
                          int64_t deadline);
ssize_t chani_remote_recv_many(chan_t *ch, chan_val_t *vals, size_t max, int64_t deadline);
int chani_remote_close(chan_t *ch);
void chani_remote_free(chan_t *ch);
ssize_t chani_remote_cap(chan_t *ch);
ssize_t chani_remote_len(chan_t *ch);
int chani_remote_select(chan_case_t *cases, size_t n, int64_t deadline);

/* Cases on several daemons, or local and remote together
 * (chan_select_mixed.c). */
int chani_mixed_select(chan_case_t *cases, size_t n, int64_t deadline);

#endif /* CHAN_HANDLE_H */

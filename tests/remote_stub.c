/*
 * remote_stub.c - stand-ins for the remote client (chan_remote.c), which
 * is built on another branch: chan_api.c dispatches to these for remote
 * handles, and a runtime-only build has none.  Linked into the runtime's
 * tests and benchmarks only; drop it (RUNTIME_STUBS in Makefile.am) once
 * client/chan_remote.c is in libchan_core.
 */
#include "config.h"

#include <errno.h>

#include "chan_handle.h"

int chan_remote_send_many(chan_t *ch, const chan_val_t *vals, size_t n,
                          size_t *sent, int64_t deadline)
{
    (void)ch, (void)vals, (void)n, (void)deadline;
    *sent = 0;
    errno = ENOSYS;
    return -1;
}

ssize_t chan_remote_recv(chan_t *ch, void *buf, size_t size, void **alloc,
                         int64_t deadline)
{
    (void)ch, (void)buf, (void)size, (void)alloc, (void)deadline;
    errno = ENOSYS;
    return -1;
}

ssize_t chan_remote_recv_many(chan_t *ch, chan_val_t *vals, size_t max, int64_t deadline)
{
    (void)ch, (void)vals, (void)max, (void)deadline;
    errno = ENOSYS;
    return -1;
}

int chan_remote_close(chan_t *ch)
{
    (void)ch;
    errno = ENOSYS;
    return -1;
}

void chan_remote_free(chan_t *ch)
{
    (void)ch;
}

ssize_t chan_remote_cap(chan_t *ch)
{
    (void)ch;
    errno = ENOSYS;
    return -1;
}

int chan_remote_select(chan_case_t *cases, size_t n, int64_t deadline)
{
    (void)cases, (void)n, (void)deadline;
    errno = ENOSYS;
    return -1;
}

/*
 * chan_local.c - local channels.  PLACEHOLDER until the runtime lands:
 * every operation fails with ENOSYS.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "chan_handle.h"

chan_t *chan_make(size_t cap) { (void)cap; errno = ENOSYS; return NULL; }
int chan_local_send_many(chan_t *ch, const chan_val_t *vals, size_t n, size_t *sent, int64_t deadline)
{ (void)ch; (void)vals; (void)n; (void)sent; (void)deadline; errno = ENOSYS; return -1; }
ssize_t chan_local_recv(chan_t *ch, void *buf, size_t size, void **alloc, int64_t deadline)
{ (void)ch; (void)buf; (void)size; (void)alloc; (void)deadline; errno = ENOSYS; return -1; }
ssize_t chan_local_recv_many(chan_t *ch, chan_val_t *vals, size_t max, int64_t deadline)
{ (void)ch; (void)vals; (void)max; (void)deadline; errno = ENOSYS; return -1; }
int chan_local_close(chan_t *ch) { (void)ch; errno = ENOSYS; return -1; }
void chan_local_free(chan_t *ch) { free(ch); }
ssize_t chan_local_len(chan_t *ch) { (void)ch; errno = ENOSYS; return -1; }
ssize_t chan_local_cap(chan_t *ch) { (void)ch; errno = ENOSYS; return -1; }
int chan_local_select(chan_case_t *cases, size_t n, int64_t deadline)
{ (void)cases; (void)n; (void)deadline; errno = ENOSYS; return -1; }

/*
 * chan_addr.h - the address syntax shared by chand (--listen) and libchan
 * (chan_connect): "host:port", "[ipv6]:port" or "unix:/path".
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_ADDR_H
#define CHAN_ADDR_H

#include <sys/socket.h>

#include "chan/chan.h"   /* CHAN_DEFAULT_ADDR */

/* chan_addr_parse - resolve addr into *ss and *len.  passive: for bind
 * (port 0 allowed).  Returns 0, or -1 with errno EINVAL (bad syntax) or
 * ENOENT (host not found). */
int chan_addr_parse(const char *addr, int passive, struct sockaddr_storage *ss, socklen_t *len);

#endif /* CHAN_ADDR_H */

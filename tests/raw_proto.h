/*
 * raw_proto.h - the wire protocol by hand, for tests that must see what
 * libchan does not show (a reply's message, a frame out of order, a
 * delivery never acknowledged): connect, write frames, read replies.
 * Every function asserts (Check) that the step worked.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef RAW_PROTO_H
#define RAW_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "chan_frame.h"
#include "chand_fixture.h"

/* A TCP connection to 127.0.0.1:port; rcvbuf > 0 sets SO_RCVBUF first. */
int raw_connect(int port, int rcvbuf);
/* Write n bytes, all of them. */
void raw_write(int fd, const void *p, size_t n);
/* Write rq as one frame. */
void raw_request(int fd, Chan__Request *rq);
/* Read one reply frame (5 s at most, stretched under sanitizers) into buf
 * and decode it in a; the reply may point into buf. */
Chan__Reply *raw_reply_decode(int fd, uint8_t *buf, size_t size, chan_arena_t *a);
/* Read one reply frame: its status, and its message into msg. */
Chan__Status raw_reply(int fd, char *msg, size_t msgsize);
/* Send Hello{version, token?} as request 1. */
void raw_hello(int fd, uint32_t version, const char *token);
/* A connection to d that said Hello and was answered OK. */
int raw_session(const chand_proc_t *d);
/* Send one value of len bytes to name as request id, timeout_ms 0; the
 * reply's status, and its message into msg. */
Chan__Status raw_send(int fd, uint64_t id, const char *name, const void *val, size_t len,
                      char *msg, size_t msgsize);

#endif

/*
 * raw_proto.c - the wire protocol by hand, for tests (raw_proto.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "raw_proto.h"
#include "test_size.h"

int raw_connect(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

void raw_write(int fd, const void *p, size_t n)
{
    ck_assert_int_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

void raw_request(int fd, Chan__Request *rq)
{
    uint8_t stack[8192];
    size_t size = chan_frame_size_request(rq);
    uint8_t *buf = size <= sizeof stack ? stack : malloc(size);
    ck_assert_ptr_nonnull(buf);
    raw_write(fd, buf, chan_frame_encode_request(rq, buf));
    if (buf != stack)
        free(buf);
}

Chan__Reply *raw_reply_decode(int fd, uint8_t *buf, size_t size, chan_arena_t *a)
{
    size_t got = 0;
    for (;;) {
        uint64_t body;
        size_t hdr;
        int h = chan_frame_header(buf, got, size, &body, &hdr);
        ck_assert_int_ge(h, 0);
        if (h == CHAN_FRAME_OK && got >= hdr + body) {
            Chan__Reply *r = chan_frame_decode_reply(a, buf + hdr, body);
            ck_assert_ptr_nonnull(r);
            return r;
        }
        struct pollfd p = { fd, POLLIN, 0 };
        ck_assert_int_eq(poll(&p, 1, (int)test_wait_ms(5000)), 1);
        ssize_t n = recv(fd, buf + got, size - got, 0);
        ck_assert_msg(n > 0, "connection closed before a reply");
        got += (size_t)n;
    }
}

Chan__Status raw_reply(int fd, char *msg, size_t msgsize)
{
    static uint8_t buf[65536];
    chan_arena_t a;
    chan_arena_init(&a);
    Chan__Reply *r = raw_reply_decode(fd, buf, sizeof buf, &a);
    Chan__Status st = r->has_status ? r->status : CHAN__STATUS__OK;
    snprintf(msg, msgsize, "%s", r->message ? r->message : "");
    chan_arena_free(&a);
    return st;
}

void raw_hello(int fd, uint32_t version, const char *token)
{
    Chan__Hello h = CHAN__HELLO__INIT;
    h.has_version = true;
    h.version = version;
    if (token) {
        h.has_token = true;
        h.token.data = (uint8_t *)token;
        h.token.len = strlen(token);
    }
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = 1;
    rq.op_case = CHAN__REQUEST__OP_HELLO;
    rq.hello = &h;
    raw_request(fd, &rq);
}

int raw_session(const chand_proc_t *d)
{
    int fd = raw_connect(d->port, 0);
    raw_hello(fd, CHAN_PROTOCOL_VERSION, NULL);
    char msg[256];
    ck_assert_int_eq(raw_reply(fd, msg, sizeof msg), CHAN__STATUS__OK);
    return fd;
}

Chan__Status raw_send(int fd, uint64_t id, const char *name, const void *val, size_t len,
                      char *msg, size_t msgsize)
{
    ProtobufCBinaryData value = { len, (uint8_t *)val };
    Chan__Send s = CHAN__SEND__INIT;
    s.has_name = true;
    s.name.data = (uint8_t *)name;
    s.name.len = strlen(name);
    s.n_values = 1;
    s.values = &value;
    s.has_timeout_ms = true;
    s.timeout_ms = 0;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = id;
    rq.op_case = CHAN__REQUEST__OP_SEND;
    rq.send = &s;
    raw_request(fd, &rq);
    static uint8_t buf[65536];
    chan_arena_t a;
    chan_arena_init(&a);
    Chan__Reply *r = raw_reply_decode(fd, buf, sizeof buf, &a);
    ck_assert_uint_eq(r->id, id);
    Chan__Status st = r->has_status ? r->status : CHAN__STATUS__OK;
    snprintf(msg, msgsize, "%s", r->message ? r->message : "");
    chan_arena_free(&a);
    return st;
}

/*
 * chan_dial.c - making one connection to chand: the socket, TLS if asked,
 * and the Hello each way; through a cluster's seeds to its primary.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 *
 * A dial runs on the caller's thread, before the connection is published:
 * nothing else uses the socket or its SSL object yet, so none of this
 * takes cl->lock.  chan_connect_opts() dials the first connection
 * (chan_client.c), chani_redial_locked() each later one (chan_redial.c).
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan_addr.h"
#include "chan_clock.h"
#include "chan_errmsg.h"
#include "remote/chan_client_int.h"

/* A dial through a cluster's seeds gives each seed this long. */
#define SEED_TIMEOUT_MS 1000

/* Wait for fd to be ready for events until the deadline. 1 ready, 0 timeout. */
int chani_wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - chan_now();
            if (left <= 0)
                return 0;
            ms = left > 1000000 ? 1000000 : (int)left;
        }
        struct pollfd p = { fd, events, 0 };
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int connect_fd(const char *addr, int64_t deadline)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (chan_addr_parse(addr, 0, &ss, &len) < 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        int ready = chani_wait_fd(fd, POLLOUT, deadline);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (ready <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            close(fd);
            errno = ready == 0 ? ETIMEDOUT : soerr ? soerr : ECONNREFUSED;
            return -1;
        }
    }
    if (ss.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* Exchange Hellos on a fresh connection (through ssl, if not NULL),
 * before the I/O thread uses it. */
static int handshake(int fd, SSL *ssl, const char *user, const char *token, int64_t deadline,
                     struct chani_hello *hi)
{
    Chan__Hello h = CHAN__HELLO__INIT;
    h.has_version = true;
    h.version = CHAN_PROTOCOL_VERSION;
    h.user = (char *)user;
    if (token) {
        h.has_token = true;
        h.token.data = (uint8_t *)token;
        h.token.len = strlen(token);
    }
    h.client_name = "libchan " CHAN_VERSION;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = 1;   /* the first request of every connection */
    rq.op_case = CHAN__REQUEST__OP_HELLO;
    rq.hello = &h;
    uint8_t out[2048];
    if (chan_frame_size_request(&rq) > sizeof out) {
        errno = EINVAL;   /* a token (and user name) over 2 KiB */
        return -1;
    }
    size_t n = chan_frame_encode_request(&rq, out), off = 0;
    while (off < n) {
        ssize_t w = chani_io_send(fd, ssl, out + off, n - off);
        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            int e = errno;
            chani_errmsg_set("sending the Hello: %s", strerror(e));
            /* TLS: the server may have said why before it closed (an alert
             * still readable after the reset): that is the reason */
            uint8_t why[512];
            if (ssl && chani_io_recv(fd, ssl, why, sizeof why) < 0 && errno == EPROTO)
                return -1;
            errno = e;
            return -1;
        } else if (chani_wait_fd(fd, POLLOUT, deadline) <= 0) {
            chani_errmsg_set("sending the Hello: timed out");
            errno = ETIMEDOUT;
            return -1;
        }
    }
    uint8_t in[4096];
    size_t got = 0;
    for (;;) {
        uint64_t body;
        size_t hdr;
        int rc = chan_frame_header(in, got, sizeof in - CHAN_FRAME_HDR_MAX, &body, &hdr);
        if (rc < 0) {
            errno = EPROTO;
            return -1;
        }
        if (rc == CHAN_FRAME_OK && got >= hdr + body) {
            chan_arena_t a;
            chan_arena_init(&a);
            Chan__Reply *r = chan_frame_decode_reply(&a, in + hdr, body);
            int err = 0;
            if (!r)
                err = EPROTO;
            else if (r->has_status && r->status != CHAN__STATUS__OK) {
                err = r->status == CHAN__STATUS__BAD_REQUEST ? EPROTO : chani_status_errno(r->status);
                if (r->message && *r->message)
                    chani_errmsg_set("%s", r->message);   /* "too many connections (...)" */
            } else if (r->result_case != CHAN__REPLY__RESULT_HELLO || !r->hello->limits) {
                err = EPROTO;
            }
            if (err == EPROTO && !(r && r->message && *r->message))
                chani_errmsg_set("the server's answer to Hello is not chand's");
            if (!err && r->hello->limits->has_max_frame &&
                r->hello->limits->max_frame < CHAN_MIN_MAX_FRAME) {
                err = EPROTO;   /* the sizes we derive from it would wrap */
                chani_errmsg_set("the server's max_frame (%llu bytes) is under %u",
                                 (unsigned long long)r->hello->limits->max_frame,
                                 CHAN_MIN_MAX_FRAME);
            }
            if (!err) {
                const Chan__Limits *l = r->hello->limits;
                hi->max_frame = l->has_max_frame ? l->max_frame : 1u << 20;
                hi->max_value = l->has_max_value ? l->max_value : hi->max_frame - 64;
                hi->max_batch = l->has_max_batch && l->max_batch ? l->max_batch : 1;
                hi->max_cases = l->has_max_cases ? l->max_cases : 64;
                hi->ack_wait_ms = l->has_ack_wait_ms ? l->ack_wait_ms : 0;
                snprintf(hi->server, sizeof hi->server, "%s",
                         r->hello->server ? r->hello->server : "?");
                hi->cluster = r->hello->role != NULL;
                snprintf(hi->group, sizeof hi->group, "%s",
                         r->hello->group ? r->hello->group : "");
                hi->not_primary = r->hello->role && strcmp(r->hello->role, "primary") != 0;
                snprintf(hi->primary, sizeof hi->primary, "%s",
                         r->hello->primary ? r->hello->primary : "");
            }
            chan_arena_free(&a);
            if (err) {
                errno = err;
                return -1;
            }
            /* anything after the Hello reply would be a reply to nothing */
            if (got != hdr + body || chani_io_pending(ssl)) {
                chani_errmsg_set("the server sent more than its Hello reply");
                errno = EPROTO;
                return -1;
            }
            return 0;
        }
        /* (TLS: a record may wait inside OpenSSL, unseen by poll) */
        if (!chani_io_pending(ssl) && chani_wait_fd(fd, POLLIN, deadline) <= 0) {
            chani_errmsg_set("no Hello reply: timed out");
            errno = ETIMEDOUT;
            return -1;
        }
        ssize_t r = chani_io_recv(fd, ssl, in + got, sizeof in - got);
        if (r == 0) {
            chani_errmsg_set("the server closed the connection before its Hello reply");
            errno = ECONNRESET;
            return -1;
        }
        if (r < 0 && errno != EAGAIN && errno != EINTR) {
            if (errno != EPROTO)   /* (a TLS error is described already) */
                chani_errmsg_set("no Hello reply: %s", strerror(errno));
            return -1;
        }
        if (r > 0)
            got += (size_t)r;
    }
}

/* The host of "host:port" or "[v6]:port", malloc()ed; NULL with EINVAL. */
static char *host_of(const char *addr)
{
    const char *b = addr, *e;
    if (*addr == '[') {
        b = addr + 1;
        e = strchr(b, ']');
    } else {
        e = strrchr(addr, ':');
    }
    if (!e || e == b || strncmp(addr, "unix:", 5) == 0) {
        errno = EINVAL;
        return NULL;
    }
    char *h = strndup(b, (size_t)(e - b));
    if (!h)
        errno = ENOMEM;
    return h;
}

/* One address (no scheme): connect, TLS if tls, Hello.  The socket, or
 * -1 with errno (and chan_errmsg() says why, when errno cannot). */
static int dial_one(chan_client_t *cl, const char *a, bool tls, int64_t deadline, SSL **sslp,
                    struct chani_hello *hi)
{
    chani_errmsg_clear();   /* (what an earlier seed said is not about this one) */
    int fd = connect_fd(a, deadline);
    if (fd < 0) {
        int e = errno;
        if (e == EINVAL || e == ENOENT)
            chani_errmsg_set("%s", e == EINVAL ? "not HOST:PORT, [IPV6]:PORT or unix:/PATH"
                                               : "no such host");
        errno = e;
        return -1;
    }
    SSL *ssl = NULL;
    if (tls) {
        char *host = host_of(a);
        if (!host) {
            int e = errno;
            chani_errmsg_set("TLS needs HOST:PORT or [IPV6]:PORT");
            close(fd);
            errno = e;
            return -1;
        }
        ssl = chani_tls_connect(cl->tls, fd, host, deadline);
        int e = errno;
        free(host);
        if (!ssl) {
            close(fd);
            errno = e;
            return -1;
        }
    }
    if (handshake(fd, ssl, cl->user, cl->token, deadline, hi) < 0) {
        int e = errno;
        chani_tls_free_ssl(ssl);
        close(fd);
        errno = e;
        return -1;
    }
    *sslp = ssl;
    return fd;
}

/* Dial cl->addr - one address, or a cluster's seeds separated by commas - and
 * say Hello.  A cluster node that is not its group's primary names the
 * primary in its Hello reply: the dial goes there instead; while no primary
 * is elected (a failover), the seeds are tried again until the deadline.
 * An address with tls:// (every one, with chan_connect_opts()'s tls) speaks
 * TLS, and so does the primary it names.  The socket and *sslp (TLS, else
 * NULL), or -1 with errno. */
int chani_dial(chan_client_t *cl, int64_t deadline, SSL **sslp, struct chani_hello *hi)
{
    const char *addrs = cl->addr;
    bool many = strchr(addrs, ',') != NULL;
    int err = ECONNREFUSED;
    *sslp = NULL;
    for (;;) {
        bool electing = false;
        const char *p = addrs;
        char target[256] = "";
        bool target_tls = false;
        int hops = 0;
        for (;;) {
            char a[256];
            bool tls = cl->tls_all;
            bool named = *target != 0;   /* a primary some node named */
            if (named) {
                snprintf(a, sizeof a, "%s", target);
                target[0] = 0;
                tls = tls || target_tls;
            } else {
                if (!*p)
                    break;
                size_t n = strcspn(p, ",");
                snprintf(a, sizeof a, "%.*s", (int)(n < sizeof a ? n : sizeof a - 1), p);
                p += n + (p[n] == ',');
                if (!n)
                    continue;
            }
            const char *hp = a;
            if (strncmp(a, "tls://", 6) == 0) {
                tls = true;
                hp = a + 6;
            }
            /* one stuck node (stopped, partitioned) must not use up the
             * whole deadline: each of several gets a second */
            int64_t until = deadline;
            if (many && (until < 0 || until > chan_now() + SEED_TIMEOUT_MS))
                until = chan_now() + SEED_TIMEOUT_MS;
            SSL *ssl = NULL;
            int fd = dial_one(cl, hp, tls, until, &ssl, hi);
            if (fd < 0) {
                err = errno;
                /* a primary that died is named until its lease runs out and
                 * another is elected: wait for that, as for an election */
                if (named)
                    electing = true;
                if (many) {
                    char why[256];
                    snprintf(why, sizeof why, "%s", *chan_errmsg() ? chan_errmsg() : strerror(err));
                    chani_errmsg_set("%s: %s", hp, why);
                }
                continue;
            }
            if (!hi->not_primary) {
                *sslp = ssl;
                return fd;
            }
            chani_tls_free_ssl(ssl);
            close(fd);
            err = ECONNREFUSED;
            chani_errmsg_set("%s is not its group's primary%s%s", hp,
                             *hi->primary ? ", which is " : ", and none is elected yet",
                             hi->primary);
            if (!*hi->primary)
                electing = true;
            if (*hi->primary && hops++ < 4) {
                snprintf(target, sizeof target, "%s", hi->primary);
                target_tls = tls;
            }
        }
        /* nodes that do not answer: say so at once; nodes that answer
         * while their group elects: wait for the election */
        if (!electing || (deadline >= 0 && chan_now() + 100 >= deadline))
            break;
        usleep(100000);
    }
    errno = err;
    return -1;
}

void chani_apply_hello(chan_client_t *cl, const struct chani_hello *hi)
{
    atomic_store_explicit(&cl->max_frame, hi->max_frame, memory_order_relaxed);
    atomic_store_explicit(&cl->max_value, hi->max_value, memory_order_relaxed);
    atomic_store_explicit(&cl->max_batch, hi->max_batch, memory_order_relaxed);
    atomic_store_explicit(&cl->max_cases, hi->max_cases, memory_order_relaxed);
    memcpy(cl->server, hi->server, sizeof cl->server);
    atomic_store_explicit(&cl->cluster, hi->cluster, memory_order_relaxed);
    memcpy(cl->group, hi->group, sizeof cl->group);
    /* Held acks must never come near the daemon's ack deadline, else it
     * would give back values the application has taken. */
    cl->ack_delay = cl->ack_delay_wanted;
    if (hi->ack_wait_ms && cl->ack_delay > (int64_t)(hi->ack_wait_ms / 10))
        cl->ack_delay = (int64_t)(hi->ack_wait_ms / 10);
}

/*
 * redisbench.c - the same workloads as chanbench (loadgen.c), against Redis
 * through hiredis, so chand can be compared with the usual way of moving
 * values between processes.
 *
 * A channel is a list.  A batch of --pipeline values is a pipeline of
 * single-value RPUSHes, written at once and then answered (redis-benchmark's
 * -P); with --multi-push it is one variadic RPUSH.  A consumer pops up to
 * --recv-max values with LPOP key COUNT and, when the list is empty, blocks
 * in BLPOP for one.  A single receive (ping-pong) is BLPOP.  A channel's
 * length (drain --await-len) is LLEN, which Redis refuses with LOADING
 * until it has loaded its AOF.  hiredis contexts are not thread-safe: one
 * connection per thread.
 *
 * TLS (tls://host:port, redis-server --tls-port): Debian's hiredis 0.14 has
 * no TLS of its own, so such a connection is an OpenSSL session on a
 * blocking socket, with hiredis's reply reader (redisReaderFeed) fed from
 * SSL_read and commands formatted by hiredis as over TCP: the same bytes
 * in the same batches as hiredis's own plain connection, which writes its
 * queued commands at once before reading and reads 16 KiB at a time
 * (struct rconn below).  The server's certificate is checked against
 * --tls-ca (else the system's store) and the address's host.
 *
 *   redisbench -a 127.0.0.1:6379 -p 1 -m 1 -P 256 -r 256 -s 64 -n 2000000
 *   redisbench -a 127.0.0.1:6379 --mode ping-pong
 *   redisbench -a tls://127.0.0.1:6380 --tls-ca ca.crt --mode ping-pong
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "loadgen.h"

#define DEFAULT_ADDR "127.0.0.1:6379"

/* ------------------------------------------------------------------------
 * One connection: hiredis's own over TCP, or TLS with hiredis's reader
 * ------------------------------------------------------------------------ */

typedef struct rconn {
    redisContext *c;          /* plain TCP: hiredis does the I/O */
    SSL_CTX *ctx;             /* TLS: ours */
    SSL *ssl;
    int fd;
    redisReader *reader;      /* replies parsed from what SSL_read gave */
    char *out;                /* commands queued, written before a read */
    size_t out_len, out_cap;
    char err[256];
} rconn_t;

/* What went wrong last on r, in words. */
static const char *rc_err(const rconn_t *r)
{
    return r->c ? r->c->errstr : r->err;
}

static void tls_fail(rconn_t *r, const char *what)
{
    unsigned long e = ERR_get_error();
    char why[200] = "the connection ended";
    if (e)
        ERR_error_string_n(e, why, sizeof why);
    else if (errno)
        snprintf(why, sizeof why, "%s", strerror(errno));
    snprintf(r->err, sizeof r->err, "%s: %s", what, why);
    ERR_clear_error();
}

/* Queue one formatted command (RESP bytes). 0, or -1. */
static int rc_append(rconn_t *r, const char *cmd, size_t len)
{
    if (r->c)
        return redisAppendFormattedCommand(r->c, cmd, len) == REDIS_OK ? 0 : -1;
    if (r->out_len + len > r->out_cap) {
        size_t cap = r->out_cap ? r->out_cap : 16384;
        while (cap < r->out_len + len)
            cap *= 2;
        char *o = realloc(r->out, cap);
        if (!o) {
            snprintf(r->err, sizeof r->err, "out of memory");
            return -1;
        }
        r->out = o;
        r->out_cap = cap;
    }
    memcpy(r->out + r->out_len, cmd, len);
    r->out_len += len;
    return 0;
}

/* The next reply (the caller frees it with freeReplyObject), after writing
 * what is queued: 0, or -1. */
static int rc_reply(rconn_t *r, redisReply **reply)
{
    *reply = NULL;
    if (r->c)
        return redisGetReply(r->c, (void **)reply) == REDIS_OK ? 0 : -1;
    for (size_t done = 0; done < r->out_len;) {
        size_t n = r->out_len - done < INT_MAX ? r->out_len - done : INT_MAX;
        int w = SSL_write(r->ssl, r->out + done, (int)n);
        if (w <= 0) {
            tls_fail(r, "SSL_write");
            return -1;
        }
        done += (size_t)w;
    }
    r->out_len = 0;
    for (;;) {
        void *rp = NULL;
        if (redisReaderGetReply(r->reader, &rp) != REDIS_OK) {
            snprintf(r->err, sizeof r->err, "protocol error: %s", r->reader->errstr);
            return -1;
        }
        if (rp) {
            *reply = rp;
            return 0;
        }
        char buf[16384];   /* as hiredis reads */
        int n = SSL_read(r->ssl, buf, sizeof buf);
        if (n <= 0) {
            tls_fail(r, "SSL_read");
            return -1;
        }
        if (redisReaderFeed(r->reader, buf, (size_t)n) != REDIS_OK) {
            snprintf(r->err, sizeof r->err, "protocol error: %s", r->reader->errstr);
            return -1;
        }
    }
}

/* A command, formatted by hiredis, and its reply (NULL on failure). */
static redisReply *rc_command(rconn_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rp = NULL;
    if (r->c) {
        rp = redisvCommand(r->c, fmt, ap);
    } else {
        char *cmd;
        int len = redisvFormatCommand(&cmd, fmt, ap);
        if (len < 0)
            snprintf(r->err, sizeof r->err, "cannot format %s", fmt);
        else if (rc_append(r, cmd, (size_t)len) == 0)
            rc_reply(r, &rp);
        if (len >= 0)
            redisFreeCommand(cmd);
    }
    va_end(ap);
    return rp;
}

static void rc_free(rconn_t *r)
{
    if (!r)
        return;
    if (r->c)
        redisFree(r->c);
    if (r->ssl) {
        SSL_shutdown(r->ssl);
        SSL_free(r->ssl);
    }
    SSL_CTX_free(r->ctx);
    if (r->fd >= 0)
        close(r->fd);
    if (r->reader)
        redisReaderFree(r->reader);
    free(r->out);
    free(r);
}

/* A TCP connection to host:port with a 10 s limit: the fd, or -1 with
 * r->err set. */
static int tcp_dial(rconn_t *r, const char *host, const char *port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    int e = getaddrinfo(host, port, &hints, &ai);
    if (e) {
        snprintf(r->err, sizeof r->err, "%s: %s", host, gai_strerror(e));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *p = ai; p && fd < 0; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = { 10, 0 };
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, p->ai_addr, p->ai_addrlen) < 0) {
            snprintf(r->err, sizeof r->err, "connect: %s", strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        int one = 1;   /* as hiredis */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* A TLS connection to host:port, its certificate checked against ca_file
 * (NULL: the system's store) and host: 0, or -1 with r->err set. */
static int tls_dial(rconn_t *r, const char *host, const char *port, const char *ca_file)
{
    if ((r->fd = tcp_dial(r, host, port)) < 0)
        return -1;
    r->ctx = SSL_CTX_new(TLS_client_method());
    if (!r->ctx) {
        tls_fail(r, "SSL_CTX_new");
        return -1;
    }
    SSL_CTX_set_min_proto_version(r->ctx, TLS1_2_VERSION);
    if ((ca_file ? SSL_CTX_load_verify_locations(r->ctx, ca_file, NULL)
                 : SSL_CTX_set_default_verify_paths(r->ctx)) != 1) {
        tls_fail(r, ca_file ? ca_file : "the system's CA store");
        return -1;
    }
    SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
    if (!(r->ssl = SSL_new(r->ctx)) || SSL_set_fd(r->ssl, r->fd) != 1) {
        tls_fail(r, "SSL_new");
        return -1;
    }
    X509_VERIFY_PARAM *vp = SSL_get0_param(r->ssl);
    struct in6_addr ip;
    if (inet_pton(AF_INET, host, &ip) == 1 || inet_pton(AF_INET6, host, &ip) == 1)
        X509_VERIFY_PARAM_set1_ip_asc(vp, host);
    else if (SSL_set1_host(r->ssl, host) != 1 || SSL_set_tlsext_host_name(r->ssl, host) != 1) {
        tls_fail(r, "SSL_set1_host");
        return -1;
    }
    if (SSL_connect(r->ssl) != 1) {
        long v = SSL_get_verify_result(r->ssl);
        if (v != X509_V_OK) {
            snprintf(r->err, sizeof r->err, "TLS: the server's certificate: %s",
                     X509_verify_cert_error_string(v));
            ERR_clear_error();
        } else {
            tls_fail(r, "TLS handshake");
        }
        return -1;
    }
    if (!(r->reader = redisReaderCreate())) {
        snprintf(r->err, sizeof r->err, "out of memory");
        return -1;
    }
    return 0;
}

struct handle {
    rconn_t *c;
    char key[128];
    redisReply *held;    /* the reply whose strings recv handed out */
    const int *quiet;    /* say nothing on failure (lg_opts_t.quiet) */
};

static void *rb_connect(const lg_opts_t *o)
{
    const char *addr = o->addr ? o->addr : DEFAULT_ADDR;
    bool tls = !strncmp(addr, "tls://", 6);
    const char *hp = tls ? addr + 6 : addr;
    const char *colon = strrchr(hp, ':');
    char host[128], port[16];
    if (!colon || (size_t)(colon - hp) >= sizeof host || strlen(colon + 1) >= sizeof port) {
        fprintf(stderr, "redisbench: address must be host:port or tls://host:port: %s\n", addr);
        return NULL;
    }
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = 0;
    snprintf(port, sizeof port, "%s", colon + 1);
    rconn_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->fd = -1;
    int rc;
    if (tls) {
        rc = tls_dial(r, host, port, o->tls_ca);
    } else {
        struct timeval tv = { 10, 0 };
        r->c = redisConnectWithTimeout(host, atoi(port), tv);
        rc = r->c && !r->c->err ? 0 : -1;
        if (!r->c)
            snprintf(r->err, sizeof r->err, "out of memory");
    }
    if (rc < 0) {
        if (!o->quiet)
            fprintf(stderr, "redisbench: connect %s: %s\n", addr, rc_err(r));
        rc_free(r);
        return NULL;
    }
    return r;
}

static void rb_disconnect(void *conn)
{
    rc_free(conn);
}

/* Check that a command's reply is not an error, and free it: 0, or -1
 * (said on stderr unless quiet). */
static int checked(rconn_t *c, const char *what, redisReply *rp, int quiet)
{
    int ok = rp && rp->type != REDIS_REPLY_ERROR;
    if (!ok && !quiet)
        fprintf(stderr, "redisbench: %s: %s\n", what, rp ? rp->str : rc_err(c));
    if (rp)
        freeReplyObject(rp);
    return ok ? 0 : -1;
}

static int simple(rconn_t *c, const char *what, redisReply *rp)
{
    return checked(c, what, rp, 0);
}

static int rb_setup(const lg_opts_t *o, const char *const *names, size_t n)
{
    rconn_t *c = rb_connect(o);
    if (!c)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = simple(c, "DEL", rc_command(c, "DEL %s", names[i]));
    rc_free(c);
    return rc;
}

static void rb_teardown(const lg_opts_t *o, const char *const *names, size_t n)
{
    rb_setup(o, names, n);   /* delete the lists again */
}

static void *rb_attach(void *conn, const char *name, enum lg_use use, const lg_opts_t *o)
{
    (void)use;   /* a list needs no subscription: each command names its key */
    struct handle *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->c = conn;
    h->quiet = &o->quiet;
    snprintf(h->key, sizeof h->key, "%s", name);
    return h;
}

static void rb_detach(void *hp)
{
    struct handle *h = hp;
    if (h->held)
        freeReplyObject(h->held);
    free(h);
}

/* Append a RESP header, kind ('$' bulk length, '*' array count), number,
 * "\r\n", at p. */
static char *put_hdr(char *p, char kind, size_t len)
{
    char digits[24];
    int nd = 0;
    do
        digits[nd++] = (char)('0' + len % 10);
    while ((len /= 10) > 0);
    *p++ = kind;
    while (nd > 0)
        *p++ = digits[--nd];
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* Append the bulk string's bytes and its "\r\n". */
static char *put_bytes(char *p, const void *data, size_t len)
{
    memcpy(p, data, len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* Format the batch as RESP ourselves and hand hiredis the raw bytes:
 * hiredis's printf-style formatting would cost more CPU than Redis spends
 * on the commands (redis-benchmark also builds its commands once).
 * Variadic: one RPUSH key v1 .. vn; else n commands RPUSH key v.  Written
 * at once, then the replies read. */
static int push(struct handle *h, const lg_val_t *vals, size_t n, bool variadic)
{
    if (n == 0)
        return 0;
    size_t klen = strlen(h->key), size = 64 + klen;
    for (size_t i = 0; i < n; i++)
        size += vals[i].len + 64 + (variadic ? 0 : 32 + klen);
    char *buf = malloc(size), *p = buf;
    if (!buf)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || !variadic) {
            p = put_hdr(p, '*', variadic ? n + 2 : 3);
            p = put_bytes(put_hdr(p, '$', 5), "RPUSH", 5);
            p = put_bytes(put_hdr(p, '$', klen), h->key, klen);
        }
        p = put_bytes(put_hdr(p, '$', vals[i].len), vals[i].data, vals[i].len);
    }
    int rc = rc_append(h->c, buf, (size_t)(p - buf));
    free(buf);
    if (rc < 0)
        return simple(h->c, "RPUSH", NULL);
    size_t replies = variadic ? 1 : n;
    for (size_t i = 0; i < replies; i++) {
        redisReply *rp = NULL;
        if (rc_reply(h->c, &rp) < 0)
            return simple(h->c, "RPUSH", NULL);
        if (simple(h->c, "RPUSH", rp) < 0)
            rc = -1;
    }
    return rc;
}

static int multi_push;

static int rb_send(void *hp, const lg_val_t *vals, size_t n)
{
    struct handle *h = hp;
    return push(h, vals, n, multi_push && n > 1);
}

/* BLPOP for one value: 1, 0 (timed out), or -1. */
static ssize_t blpop(struct handle *h, lg_val_t *vals, int timeout_ms)
{
    char secs[32];
    snprintf(secs, sizeof secs, "%.3f", timeout_ms / 1000.0);
    redisReply *rp = rc_command(h->c, "BLPOP %s %s", h->key, secs);
    if (rp && rp->type == REDIS_REPLY_NIL) {
        freeReplyObject(rp);
        return 0;
    }
    if (!rp || rp->type != REDIS_REPLY_ARRAY || rp->elements != 2) {
        checked(h->c, "BLPOP", rp, *h->quiet);
        return -1;
    }
    h->held = rp;
    vals[0] = (lg_val_t){ rp->element[1]->str, rp->element[1]->len };
    return 1;
}

static ssize_t rb_recv(void *hp, lg_val_t *vals, size_t max, int timeout_ms)
{
    struct handle *h = hp;
    if (max == 1)
        return blpop(h, vals, timeout_ms);
    char count[24];   /* hiredis formats no size_t */
    snprintf(count, sizeof count, "%zu", max);
    redisReply *rp = rc_command(h->c, "LPOP %s %s", h->key, count);
    if (rp && rp->type == REDIS_REPLY_NIL) {
        freeReplyObject(rp);
        return blpop(h, vals, timeout_ms);   /* empty: wait for one */
    }
    if (!rp || rp->type != REDIS_REPLY_ARRAY || rp->elements == 0 || rp->elements > max) {
        checked(h->c, "LPOP", rp, *h->quiet);
        return -1;
    }
    h->held = rp;
    for (size_t i = 0; i < rp->elements; i++)
        vals[i] = (lg_val_t){ rp->element[i]->str, rp->element[i]->len };
    return (ssize_t)rp->elements;
}

static void rb_release(void *hp, lg_val_t *vals, size_t n)
{
    (void)vals;
    (void)n;
    struct handle *h = hp;
    if (h->held)
        freeReplyObject(h->held);
    h->held = NULL;
}

static int rb_ping(void *conn)
{
    return simple(conn, "PING", rc_command(conn, "PING"));
}

static int64_t rb_length(void *conn, const char *name)
{
    redisReply *rp = rc_command(conn, "LLEN %s", name);
    int64_t len = rp && rp->type == REDIS_REPLY_INTEGER ? (int64_t)rp->integer : -1;
    if (rp)
        freeReplyObject(rp);
    return len;
}

/* How a batch was pushed (values moved one way only, not round trips). */
static void rb_fields(const lg_opts_t *o)
{
    if (o->mode != LG_PING_PONG)
        printf(" push=%s", o->multi_push ? "variadic" : "pipelined");
}

int main(int argc, char **argv)
{
    static const lg_backend_t redis = {
        .name = "redis",
        .setup = rb_setup,
        .teardown = rb_teardown,
        .connect = rb_connect,
        .disconnect = rb_disconnect,
        .attach = rb_attach,
        .detach = rb_detach,
        .send = rb_send,
        .recv = rb_recv,
        .release = rb_release,
        .ping = rb_ping,
        .length = rb_length,
        .fields = rb_fields,
        .shared_conns = 0,
    };
    lg_opts_t o;
    lg_parse(&o, argc, argv, &redis);
    multi_push = o.multi_push;
    return lg_run(&o, &redis);
}

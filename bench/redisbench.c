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
 *   redisbench -a 127.0.0.1:6379 -p 1 -m 1 -P 256 -r 256 -s 64 -n 2000000
 *   redisbench -a 127.0.0.1:6379 --mode ping-pong
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "loadgen.h"

#define DEFAULT_ADDR "127.0.0.1:6379"

struct handle {
    redisContext *c;
    char key[128];
    redisReply *held;    /* the reply whose strings recv handed out */
    const int *quiet;    /* say nothing on failure (lg_opts_t.quiet) */
};

static void *rb_connect(const lg_opts_t *o)
{
    const char *addr = o->addr ? o->addr : DEFAULT_ADDR;
    const char *colon = strrchr(addr, ':');
    char host[128];
    if (!colon || (size_t)(colon - addr) >= sizeof host) {
        fprintf(stderr, "redisbench: address must be host:port: %s\n", addr);
        return NULL;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    struct timeval tv = { 10, 0 };
    redisContext *c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    if (!c || c->err) {
        if (!o->quiet)
            fprintf(stderr, "redisbench: connect %s: %s\n", addr,
                    c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    return c;
}

static void rb_disconnect(void *conn)
{
    redisFree(conn);
}

/* Check that a command's reply is not an error, and free it: 0, or -1
 * (said on stderr unless quiet). */
static int checked(redisContext *c, const char *what, redisReply *rp, int quiet)
{
    int ok = rp && rp->type != REDIS_REPLY_ERROR;
    if (!ok && !quiet)
        fprintf(stderr, "redisbench: %s: %s\n", what, rp ? rp->str : c->errstr);
    if (rp)
        freeReplyObject(rp);
    return ok ? 0 : -1;
}

static int simple(redisContext *c, const char *what, redisReply *rp)
{
    return checked(c, what, rp, 0);
}

static int rb_setup(const lg_opts_t *o, const char *const *names, size_t n)
{
    redisContext *c = rb_connect(o);
    if (!c)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = simple(c, "DEL", redisCommand(c, "DEL %s", names[i]));
    redisFree(c);
    return rc;
}

static void rb_teardown(const lg_opts_t *o, const char *const *names, size_t n)
{
    rb_setup(o, names, n);   /* delete the lists again */
}

static void *rb_attach(void *conn, const char *name, const lg_opts_t *o)
{
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
 * Variadic: one RPUSH key v1 .. vn; else n commands RPUSH key v. */
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
    int rc = redisAppendFormattedCommand(h->c, buf, (size_t)(p - buf));
    free(buf);
    if (rc != REDIS_OK)
        return simple(h->c, "RPUSH", NULL);
    size_t replies = variadic ? 1 : n;
    for (size_t i = 0; i < replies; i++) {
        void *rp = NULL;
        if (redisGetReply(h->c, &rp) != REDIS_OK)
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
    redisReply *rp = redisCommand(h->c, "BLPOP %s %s", h->key, secs);
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
    redisReply *rp = redisCommand(h->c, "LPOP %s %s", h->key, count);
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
    return simple(conn, "PING", redisCommand(conn, "PING"));
}

static int64_t rb_length(void *conn, const char *name)
{
    redisReply *rp = redisCommand(conn, "LLEN %s", name);
    int64_t len = rp && rp->type == REDIS_REPLY_INTEGER ? (int64_t)rp->integer : -1;
    if (rp)
        freeReplyObject(rp);
    return len;
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
        .shared_conns = 0,
    };
    lg_opts_t o;
    lg_parse(&o, argc, argv, &redis);
    multi_push = o.multi_push;
    return lg_run(&o, &redis);
}

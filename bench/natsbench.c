/*
 * natsbench.c - the same workloads as chanbench (loadgen.c), against a NATS
 * server (nats-server), speaking the NATS core text protocol on a TCP
 * socket itself: no client library stands between the load and the server.
 *
 * A channel is a subject.  A receiving handle subscribes to it in the
 * queue group "lg", so that each message goes to exactly one receiver, as
 * a value leaves a channel once, and confirms the SUB with a PING: the
 * server handles a connection's commands in order, so once the PONG is
 * back no message published later is missed.  A sending handle subscribes
 * to nothing (it would take messages from the group).
 *
 * NATS core has no acknowledgement and no backpressure: a PUB is fire and
 * forget.  When values go one way (producer-consumer) a batch is its
 * --pipeline PUBs and a PING in one write, and the send returns when the
 * PONG comes back: the server has then handled every PUB before it, the
 * nearest thing to an ack and NATS's only flow control.  A consumer that
 * falls behind is cut off by the server (a "slow consumer": too much
 * waiting for it); its receive then fails and the run with it (exit 1), so
 * a lost value is never a quiet one.  In ping-pong the reply is the
 * acknowledgement: a request or a reply is one PUB, without a PING.
 *
 * A receive parses MSG frames out of a buffered reader (a frame may come in
 * pieces), up to --recv-max at a time, handing out pointers into the buffer
 * until release; the server's PINGs are answered as they come.  ping is
 * PING/PONG.  NATS core keeps no messages and knows no lengths: fill and
 * drain are refused.  One connection per thread, as with redisbench.
 *
 *   natsbench -a 127.0.0.1:4222 -p 1 -m 1 -P 256 -s 64 -n 2000000
 *   natsbench -a 127.0.0.1:4222 --mode ping-pong
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "loadgen.h"

#define DEFAULT_ADDR "127.0.0.1:4222"
#define QUEUE_GROUP "lg"
#define BUF_INIT (256 * 1024)    /* read buffer to start with */
#define READ_MIN (64 * 1024)     /* free room for each read */
#define CONNECT_MS 10000         /* INFO and the first PONG come within this */

/* One connection, used by one thread. */
typedef struct nconn {
    int fd;
    char *buf;            /* bytes read; buf[head..tail) not parsed yet */
    size_t cap, head, tail;
    size_t want;          /* the frame at head needs this many bytes (0: a line) */
    bool held;            /* recv's values point into buf until release */
    char **retired;       /* buffers replaced while values pointed into them */
    size_t nretired;
    char *out;            /* a send's bytes */
    size_t out_cap;
    uint64_t pongs;       /* PONGs received */
    bool info;            /* the server's INFO came */
    size_t max_payload;   /* from INFO */
    unsigned sid;         /* the receiving subscription (0: none) */
    bool flush;           /* a send waits for the PONG after it */
    int wait_ms;          /* longest wait for a PONG (--timeout) */
    const int *quiet;     /* say nothing on failure (lg_opts_t.quiet) */
} nconn_t;

/* A subject as one thread sees it. */
struct handle {
    nconn_t *c;
    enum lg_use use;
    size_t subj_len;
    char subj[128];
};

static void say(const nconn_t *c, const char *fmt, ...)
{
    if (c && c->quiet && *c->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("natsbench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------------------------------
 * Bytes in and out
 * ------------------------------------------------------------------------ */

static int write_all(nconn_t *c, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            say(c, "write: %s", strerror(errno));
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* At least `need` free bytes after tail: 0, or -1.  Unparsed bytes move to
 * the front; while recv's values point into the buffer it is not moved but
 * replaced, and kept until release. */
static int make_room(nconn_t *c, size_t need)
{
    if (c->cap - c->tail >= need)
        return 0;
    size_t used = c->tail - c->head;
    if (!c->held && c->head > 0) {
        memmove(c->buf, c->buf + c->head, used);
        c->head = 0;
        c->tail = used;
        if (c->cap - c->tail >= need)
            return 0;
    }
    size_t cap = c->cap * 2 > used + need ? c->cap * 2 : used + need;
    char *nb = malloc(cap);
    char **r = c->held ? realloc(c->retired, (c->nretired + 1) * sizeof *r) : NULL;
    if (!nb || (c->held && !r)) {
        free(nb);
        say(c, "out of memory");
        return -1;
    }
    memcpy(nb, c->buf + c->head, used);
    if (c->held) {
        c->retired = r;
        c->retired[c->nretired++] = c->buf;
    } else {
        free(c->buf);
    }
    c->buf = nb;
    c->cap = cap;
    c->head = 0;
    c->tail = used;
    return 0;
}

/* Read what the socket has, waiting up to timeout_ms for something: the
 * bytes read, 0 (nothing came), or -1 (an error, or the server closed). */
static ssize_t fill(nconn_t *c, int timeout_ms)
{
    if (make_room(c, c->want > READ_MIN ? c->want : READ_MIN) < 0)
        return -1;
    for (bool waited = false;;) {
        ssize_t k = recv(c->fd, c->buf + c->tail, c->cap - c->tail, MSG_DONTWAIT);
        if (k > 0) {
            c->tail += (size_t)k;
            return k;
        }
        if (k == 0) {
            say(c, "the server closed the connection (it cuts off a consumer that falls"
                   " behind, a \"slow consumer\"; or it stopped)");
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            say(c, "read: %s", strerror(errno));
            return -1;
        }
        if (waited)
            return 0;
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno != EINTR) {
            say(c, "poll: %s", strerror(errno));
            return -1;
        }
        waited = r == 0;   /* timed out: one last look, then 0 */
    }
}

/* ------------------------------------------------------------------------
 * Frames from the server
 * ------------------------------------------------------------------------ */

enum { F_NEED = 0, F_MSG = 1, F_OTHER = 2, F_ERR = -1 };

/* Split s[0..n) at blanks into at most max tokens: their count. */
static int tokens(char *s, size_t n, char **tok, size_t *len, int max)
{
    int nt = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i == n)
            break;
        if (nt == max)
            return max + 1;
        tok[nt] = s + i;
        while (i < n && s[i] != ' ' && s[i] != '\t')
            i++;
        len[nt] = (size_t)(s + i - tok[nt]);
        nt++;
    }
    return nt;
}

/* The decimal s[0..n): 0, or -1 if it is not one. */
static int number(const char *s, size_t n, size_t *v)
{
    *v = 0;
    if (n == 0 || n > 18)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        *v = *v * 10 + (size_t)(s[i] - '0');
    }
    return 0;
}

/* INFO {...}: what it says of max_payload (the whole line is JSON we need
 * one number of). */
static void take_info(nconn_t *c, const char *line, size_t n)
{
    c->info = true;
    static const char key[] = "\"max_payload\":";
    const char *end = line + n;
    for (const char *p = line; p + sizeof key - 1 < end; p++)
        if (!memcmp(p, key, sizeof key - 1)) {
            c->max_payload = (size_t)strtoull(p + sizeof key - 1, NULL, 10);
            return;
        }
}

/* The frame at head: F_MSG (*v its payload, *sid its subscription),
 * F_OTHER (a PING answered, a PONG counted, INFO or +OK), F_NEED (not all
 * here yet; c->want says how much room it needs) or F_ERR (said). */
static int parse(nconn_t *c, lg_val_t *v, unsigned *sid)
{
    char *p = c->buf + c->head;
    size_t avail = c->tail - c->head;
    char *nl = memchr(p, '\n', avail);
    if (!nl) {
        c->want = 0;
        return F_NEED;
    }
    size_t line = (size_t)(nl - p) + 1, n = line - 1;
    if (n && p[n - 1] == '\r')
        n--;
    if (n > 4 && !memcmp(p, "MSG ", 4)) {
        char *tok[4];
        size_t len[4], bytes, id;
        int nt = tokens(p + 4, n - 4, tok, len, 4);
        if (nt < 3 || nt > 4 || number(tok[nt - 1], len[nt - 1], &bytes) < 0 ||
            number(tok[1], len[1], &id) < 0) {
            say(c, "protocol error: %.*s", (int)(n < 200 ? n : 200), p);
            return F_ERR;
        }
        if (avail < line + bytes + 2) {
            c->want = line + bytes + 2;
            return F_NEED;
        }
        if (memcmp(p + line + bytes, "\r\n", 2)) {
            say(c, "protocol error: a payload of %zu bytes does not end in CRLF", bytes);
            return F_ERR;
        }
        *v = (lg_val_t){ p + line, bytes };
        *sid = (unsigned)id;
        c->head += line + bytes + 2;
        c->want = 0;
        return F_MSG;
    }
    c->head += line;
    c->want = 0;
    if (n == 4 && !memcmp(p, "PING", 4))
        return write_all(c, "PONG\r\n", 6) < 0 ? F_ERR : F_OTHER;
    if (n == 4 && !memcmp(p, "PONG", 4)) {
        c->pongs++;
        return F_OTHER;
    }
    if (n >= 5 && !memcmp(p, "INFO ", 5)) {
        take_info(c, p, n);
        return F_OTHER;
    }
    if (n == 3 && !memcmp(p, "+OK", 3))
        return F_OTHER;
    if (n >= 4 && !memcmp(p, "-ERR", 4))
        say(c, "the server says %.*s", (int)n, p);
    else
        say(c, "protocol error: %.*s", (int)(n < 200 ? n : 200), p);
    return F_ERR;
}

/* Read until `ready` holds, handling frames on the way: 0, or -1 (an
 * error, a message nobody waits for here, or timeout_ms passed). */
static int await(nconn_t *c, bool (*ready)(const nconn_t *, uint64_t), uint64_t arg,
                 int timeout_ms, const char *what)
{
    int64_t deadline = chan_mono_ns() + (int64_t)timeout_ms * 1000000;
    while (!ready(c, arg)) {
        lg_val_t v;
        unsigned sid;
        int f = parse(c, &v, &sid);
        if (f == F_ERR)
            return -1;
        if (f == F_MSG) {
            say(c, "a message came while waiting for %s", what);
            return -1;
        }
        if (f == F_OTHER)
            continue;
        int64_t now = chan_mono_ns();
        ssize_t k = now < deadline ? fill(c, (int)((deadline - now + 999999) / 1000000)) : 0;
        if (k < 0)
            return -1;
        if (k == 0 && chan_mono_ns() >= deadline) {
            say(c, "no %s within %d ms", what, timeout_ms);
            return -1;
        }
    }
    return 0;
}

static bool pongs_reach(const nconn_t *c, uint64_t n)
{
    return c->pongs >= n;
}

static bool info_came(const nconn_t *c, uint64_t unused)
{
    (void)unused;
    return c->info;
}

/* Write bytes that end in a PING and wait for its PONG: 0, or -1. */
static int write_ping(nconn_t *c, const char *p, size_t n, int timeout_ms)
{
    uint64_t target = c->pongs + 1;
    if (write_all(c, p, n) < 0)
        return -1;
    return await(c, pongs_reach, target, timeout_ms, "PONG");
}

/* ------------------------------------------------------------------------
 * The backend
 * ------------------------------------------------------------------------ */

static void nc_free(nconn_t *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    for (size_t i = 0; i < c->nretired; i++)
        free(c->retired[i]);
    free(c->retired);
    free(c->buf);
    free(c->out);
    free(c);
}

/* A TCP connection to host:port: the fd, or -1 (said). */
static int dial(nconn_t *c, const char *host, const char *port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    int e = getaddrinfo(host, port, &hints, &ai);
    if (e) {
        say(c, "%s: %s", host, gai_strerror(e));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *p = ai; p && fd < 0; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        struct timeval tv = { CONNECT_MS / 1000, 0 };
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, p->ai_addr, p->ai_addrlen) < 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        say(c, "connect %s:%s: %s", host, port, strerror(err));
        return -1;
    }
    struct timeval none = { 0, 0 };   /* the connect's bound only: writes may wait */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
    int one = 1;   /* every batch is one write, and round trips must not wait */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void *nb_connect(const lg_opts_t *o)
{
    const char *addr = o->addr ? o->addr : DEFAULT_ADDR;
    nconn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = -1;
    c->quiet = &o->quiet;
    c->wait_ms = o->timeout_s * 1000;
    c->flush = o->mode != LG_PING_PONG;
    const char *colon = strrchr(addr, ':');
    char host[128], port[16];
    if (!strncmp(addr, "tls://", 6) || !colon || (size_t)(colon - addr) >= sizeof host ||
        strlen(colon + 1) >= sizeof port) {
        say(c, "the address must be host:port (no TLS here): %s", addr);
        goto fail;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    snprintf(port, sizeof port, "%s", colon + 1);
    if (!(c->buf = malloc(BUF_INIT))) {
        say(c, "out of memory");
        goto fail;
    }
    c->cap = BUF_INIT;
    if ((c->fd = dial(c, host, port)) < 0 ||
        await(c, info_came, 0, CONNECT_MS, "the server's INFO") < 0)
        goto fail;
    if (c->max_payload && o->size > c->max_payload) {
        say(c, "--size %zu is over the server's max_payload %zu", o->size, c->max_payload);
        goto fail;
    }
    static const char hello[] = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n";
    if (write_ping(c, hello, sizeof hello - 1, CONNECT_MS) < 0)
        goto fail;
    return c;
fail:
    if (!o->quiet)
        fprintf(stderr, "natsbench: cannot connect to %s\n", addr);
    nc_free(c);
    return NULL;
}

static void nb_disconnect(void *conn)
{
    nc_free(conn);
}

/* Subjects need no making: they exist while someone subscribes. */
static int nb_setup(const lg_opts_t *o, const char *const *names, size_t n)
{
    (void)o;
    (void)names;
    (void)n;
    return 0;
}

static void nb_teardown(const lg_opts_t *o, const char *const *names, size_t n)
{
    (void)o;
    (void)names;
    (void)n;
}

static void *nb_attach(void *conn, const char *name, enum lg_use use, const lg_opts_t *o)
{
    (void)o;
    nconn_t *c = conn;
    struct handle *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->c = c;
    h->use = use;
    h->subj_len = strlen(name);
    if (h->subj_len >= sizeof h->subj || strpbrk(name, " \t\r\n")) {
        say(c, "bad subject: %s", name);
        free(h);
        return NULL;
    }
    memcpy(h->subj, name, h->subj_len + 1);
    if (use != LG_RECV)
        return h;
    if (c->sid) {
        say(c, "one receiving handle per connection");
        free(h);
        return NULL;
    }
    char sub[sizeof h->subj + 64];
    int n = snprintf(sub, sizeof sub, "SUB %s " QUEUE_GROUP " 1\r\nPING\r\n", name);
    if (write_ping(c, sub, (size_t)n, CONNECT_MS) < 0) {
        free(h);
        return NULL;
    }
    c->sid = 1;
    return h;
}

static void nb_detach(void *hp)
{
    struct handle *h = hp;
    if (h->use == LG_RECV)
        h->c->sid = 0;   /* the subscription ends with the connection */
    free(h);
}

/* Append the decimal n at p. */
static char *put_num(char *p, size_t n)
{
    char d[24];
    int nd = 0;
    do
        d[nd++] = (char)('0' + n % 10);
    while ((n /= 10) > 0);
    while (nd > 0)
        *p++ = d[--nd];
    return p;
}

/* PUB subject n\r\n<payload>\r\n for each value, in one write; when values
 * go one way, a PING after them and the wait for its PONG. */
static int nb_send(void *hp, const lg_val_t *vals, size_t n)
{
    struct handle *h = hp;
    nconn_t *c = h->c;
    size_t size = 8;
    for (size_t i = 0; i < n; i++)
        size += 4 + h->subj_len + 1 + 20 + 2 + vals[i].len + 2;
    if (size > c->out_cap) {
        char *o = realloc(c->out, size);
        if (!o) {
            say(c, "out of memory");
            return -1;
        }
        c->out = o;
        c->out_cap = size;
    }
    char *p = c->out;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, "PUB ", 4);
        memcpy(p + 4, h->subj, h->subj_len);
        p += 4 + h->subj_len;
        *p++ = ' ';
        p = put_num(p, vals[i].len);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, vals[i].data, vals[i].len);
        p += vals[i].len;
        *p++ = '\r';
        *p++ = '\n';
    }
    if (!c->flush)
        return write_all(c, c->out, (size_t)(p - c->out));
    memcpy(p, "PING\r\n", 6);
    p += 6;
    return write_ping(c, c->out, (size_t)(p - c->out), c->wait_ms);
}

/* Up to max MSGs of this handle's subscription; waits up to timeout_ms
 * only when none is buffered. */
static ssize_t nb_recv(void *hp, lg_val_t *vals, size_t max, int timeout_ms)
{
    struct handle *h = hp;
    nconn_t *c = h->c;
    if (h->use != LG_RECV) {
        say(c, "receive on a sending handle");
        return -1;
    }
    int64_t deadline = chan_mono_ns() + (int64_t)timeout_ms * 1000000;
    size_t n = 0;
    for (;;) {
        while (n < max) {
            unsigned sid;
            int f = parse(c, &vals[n], &sid);
            if (f == F_ERR)
                return -1;
            if (f == F_NEED)
                break;
            if (f == F_MSG) {
                if (sid != c->sid) {
                    say(c, "a message for subscription %u, not ours", sid);
                    return -1;
                }
                c->held = true;
                n++;
            }
        }
        if (n > 0)
            return (ssize_t)n;
        int64_t now = chan_mono_ns();
        if (now >= deadline)
            return 0;
        ssize_t k = fill(c, (int)((deadline - now + 999999) / 1000000));
        if (k < 0)
            return -1;
        if (k == 0)
            return 0;
    }
}

static void nb_release(void *hp, lg_val_t *vals, size_t n)
{
    (void)vals;
    (void)n;
    nconn_t *c = ((struct handle *)hp)->c;
    c->held = false;
    for (size_t i = 0; i < c->nretired; i++)
        free(c->retired[i]);
    c->nretired = 0;
}

static int nb_ping(void *conn)
{
    nconn_t *c = conn;
    return write_ping(c, "PING\r\n", 6, c->wait_ms);
}

int main(int argc, char **argv)
{
    static const lg_backend_t nats = {
        .name = "nats",
        .setup = nb_setup,
        .teardown = nb_teardown,
        .connect = nb_connect,
        .disconnect = nb_disconnect,
        .attach = nb_attach,
        .detach = nb_detach,
        .send = nb_send,
        .recv = nb_recv,
        .release = nb_release,
        .ping = nb_ping,
        .length = NULL,
        .shared_conns = 0,
        .no_modes = 1u << LG_FILL | 1u << LG_DRAIN,
        .usage_notes =
            "NATS core, its text protocol on a TCP socket (default " DEFAULT_ADDR "): a\n"
            "channel is a subject, receivers share the queue group \"" QUEUE_GROUP "\" (each message\n"
            "goes to one of them).  A batch of values sent one way is its PUBs and a\n"
            "PING, and waits for the PONG (the server has handled them); in ping-pong\n"
            "the reply is the acknowledgement.  NATS core keeps no messages and knows\n"
            "no lengths, so --mode fill and drain are not supported (exit 64);\n"
            "--cap, --multi-push, --await-len and tls:// do not apply.",
    };
    lg_opts_t o;
    lg_parse(&o, argc, argv, &nats);
    return lg_run(&o, &nats);
}

/*
 * chand_peer.c - a chand's client connection to another node (see
 * chand_peer.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "chan_addr.h"
#include "chan_frame.h"
#include "chand_alloc.h"
#include "chand_log.h"
#include "chand_peer.h"
#include "chand_server.h"
#include "chand_tls.h"

struct chand_peer {
    chand_server_t *s;
    char who[32];
    char addr[128];
    uint64_t max_frame;
    peer_cbs_t cb;
    void *arg;
    struct bufferevent *bev;
    bool connected;
    uint64_t next_id;
    chan_arena_t arena;
    bool tls;                  /* the node's listeners speak TLS: so does its dial */
};

/* The SSL object for a dial to addr (host:port, [v6]:port): host checked. */
static SSL *tls_ssl(SSL_CTX *ctx, const char *addr)
{
    char host[128];
    const char *colon = strrchr(addr, ':');
    size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
    if (n && addr[0] == '[' && addr[n - 1] == ']') {
        addr++;
        n -= 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)n, addr);
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1 ||
             (SSL_set1_host(ssl, host) == 1 && SSL_set_tlsext_host_name(ssl, host) == 1);
    if (!ok) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

chand_peer_t *chand_peer_new(chand_server_t *s, const char *who, uint64_t max_frame,
                             const peer_cbs_t *cbs, void *arg)
{
    chand_peer_t *p = xcalloc(1, sizeof *p);
    p->s = s;
    snprintf(p->who, sizeof p->who, "%s", who);
    p->max_frame = max_frame;
    p->cb = *cbs;
    p->arg = arg;
    /* the context is the server's (chand_tls.c), made now so that files
     * that do not load are said at once; each dial takes the one in force,
     * which a SIGHUP may have loaded again */
    p->tls = s->opts.tls_cert != NULL;
    if (p->tls && !chand_tls_peer_ctx(s, who)) {
        free(p);
        return NULL;
    }
    chan_arena_init(&p->arena);
    return p;
}

void chand_peer_close(chand_peer_t *p)
{
    if (p->bev) {
        bufferevent_free(p->bev);
        p->bev = NULL;
    }
    p->connected = false;
}

static void down(chand_peer_t *p, const char *why)
{
    chand_peer_close(p);
    p->cb.down(p->arg, why);
}

uint64_t chand_peer_send(chand_peer_t *p, Chan__Request *rq)
{
    if (!p->bev)
        return 0;
    rq->has_id = true;
    rq->id = ++p->next_id;
    size_t n = chan_frame_size_request(rq);
    uint8_t *buf = xmalloc(n);
    n = chan_frame_encode_request(rq, buf);
    bufferevent_write(p->bev, buf, n);
    free(buf);
    return rq->id;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    chand_peer_t *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    uint64_t t0 = chand_busy_begin(p->s);
    for (;;) {
        uint8_t hdr[CHAN_FRAME_HDR_MAX];
        ev_ssize_t got = evbuffer_copyout(in, hdr, sizeof hdr);
        if (got <= 0)
            break;
        uint64_t blen;
        size_t hlen;
        int rc = chan_frame_header(hdr, (size_t)got, p->max_frame, &blen, &hlen);
        if (rc == CHAN_FRAME_MORE)
            break;
        if (rc != CHAN_FRAME_OK) {
            down(p, "a frame that does not parse (or is over the limit)");
            goto out;
        }
        if (evbuffer_get_length(in) < hlen + blen)
            break;
        evbuffer_drain(in, hlen);
        Chan__Reply *r = chan_frame_decode_reply(&p->arena, evbuffer_pullup(in, (ev_ssize_t)blen),
                                                 blen);
        bool ok = r && r->has_id;
        bool keep = ok && p->cb.reply(p->arg, r);
        chan_arena_reset(&p->arena);
        if (!ok) {
            down(p, "a frame that is not a Reply");
            goto out;
        }
        if (!keep) {
            down(p, NULL);
            goto out;
        }
        evbuffer_drain(in, blen);
    }
    if (p->cb.read_done)
        p->cb.read_done(p->arg);
out:
    chand_busy_end(p->s, t0);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    chand_peer_t *p = arg;
    if (what & BEV_EVENT_CONNECTED) {
        p->connected = true;
        /* requests and acknowledgements are small, and the other side may
         * hold its answers until they come: never let Nagle sit on one */
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        Chan__Hello h = CHAN__HELLO__INIT;
        h.has_version = true;
        h.version = CHAN_PROTOCOL_VERSION;
        if (p->s->token) {
            h.has_token = true;
            h.token.data = p->s->token;
            h.token.len = p->s->token_len;
        }
        char name[64];
        snprintf(name, sizeof name, "chand %s", p->who);
        h.client_name = name;
        Chan__Request rq = CHAN__REQUEST__INIT;
        rq.op_case = CHAN__REQUEST__OP_HELLO;
        rq.hello = &h;
        chand_peer_send(p, &rq);
        p->cb.connected(p->arg);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        unsigned long e = p->tls ? bufferevent_get_openssl_error(bev) : 0;
        char msg[512];
        if (e) {
            char why[256];
            ERR_error_string_n(e, why, sizeof why);
            snprintf(msg, sizeof msg, "TLS to %s failed: %s", p->addr, why);
        } else {
            snprintf(msg, sizeof msg, "%s %s", p->addr,
                     p->connected ? "closed the connection" : "cannot be reached");
        }
        down(p, msg);
    }
}

int chand_peer_connect(chand_peer_t *p, const char *addr)
{
    chand_peer_close(p);
    if (!strncmp(addr, "tls://", 6))
        addr += 6;
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    struct sockaddr_storage ss;
    socklen_t len;
    if (chan_addr_parse(p->addr, 0, &ss, &len) < 0) {
        down(p, "the address does not parse");
        return -1;
    }
    if (p->tls) {
        SSL_CTX *ctx = chand_tls_peer_ctx(p->s, p->who);
        SSL *ssl = ctx ? tls_ssl(ctx, p->addr) : NULL;
        p->bev = ssl ? bufferevent_openssl_socket_new(p->s->base, -1, ssl,
                                                      BUFFEREVENT_SSL_CONNECTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        if (!p->bev) {
            if (ssl)
                SSL_free(ssl);
            down(p, "cannot set up TLS");
            return -1;
        }
    } else {
        p->bev = bufferevent_socket_new(p->s->base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    bufferevent_setcb(p->bev, read_cb, NULL, event_cb, p);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    p->connected = false;
    if (bufferevent_socket_connect(p->bev, (struct sockaddr *)&ss, (int)len) < 0) {
        down(p, "cannot connect");
        return -1;
    }
    return 0;
}

bool chand_peer_up(const chand_peer_t *p)
{
    return p->bev && p->connected;
}

size_t chand_peer_pending(const chand_peer_t *p)
{
    return p->bev ? evbuffer_get_length(bufferevent_get_output(p->bev)) : 0;
}

void chand_peer_free(chand_peer_t *p)
{
    if (!p)
        return;
    chand_peer_close(p);
    chan_arena_free(&p->arena);
    free(p);
}

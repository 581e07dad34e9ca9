/*
 * chand_etcd.c - etcd v3 through its JSON gateway (why: chand_etcd.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "chand_alloc.h"
#include "chand_etcd.h"
#include "chand_list.h"

#define MAX_ENDPOINTS 16
/* A reply larger than this is not one chand asked for. */
#define MAX_REPLY (4u << 20)

typedef struct etcd_endpoint {
    char host[256];
    uint16_t port;
    char shown[272];
    struct evhttp_connection *conn[ETCD_LANES];
} etcd_endpoint_t;

typedef struct etcd_call {
    qlink_t link;            /* e->calls */
    chand_etcd_t *e;
    etcd_cb cb;              /* NULL once answered */
    void *arg;
    size_t ep;               /* where it went */
    int http_err;            /* from the error callback, if one came */
} etcd_call_t;

struct chand_etcd {
    struct event_base *base;
    etcd_endpoint_t eps[MAX_ENDPOINTS];
    size_t neps, cur;
    qlink_t calls;
};

static int parse_endpoint(etcd_endpoint_t *ep, const char *s, size_t n)
{
    if (n > 7 && !strncmp(s, "http://", 7)) {
        s += 7;
        n -= 7;
    }
    while (n && s[n - 1] == '/')
        n--;
    const char *colon = memrchr(s, ':', n);
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof ep->host)
        return -1;
    char port[8];
    size_t plen = n - (size_t)(colon + 1 - s);
    if (plen == 0 || plen >= sizeof port)
        return -1;
    memcpy(port, colon + 1, plen);
    port[plen] = 0;
    char *end;
    long p = strtol(port, &end, 10);
    if (*end || p <= 0 || p > 65535)
        return -1;
    size_t hlen = (size_t)(colon - s);
    if (s[0] == '[' && hlen >= 2 && s[hlen - 1] == ']') {   /* [::1]:2379 */
        s++;
        hlen -= 2;
    }
    memcpy(ep->host, s, hlen);
    ep->host[hlen] = 0;
    ep->port = (uint16_t)p;
    char shown[sizeof ep->shown];
    snprintf(shown, sizeof shown, strchr(ep->host, ':') ? "[%s]:%u" : "%s:%u", ep->host,
             (unsigned)ep->port);
    memcpy(ep->shown, shown, sizeof shown);
    return 0;
}

chand_etcd_t *etcd_new(struct event_base *base, const char *endpoints, char *err, size_t errlen)
{
    chand_etcd_t *e = xcalloc(1, sizeof *e);
    e->base = base;
    qlist_init(&e->calls);
    const char *p = endpoints;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n) {
            if (e->neps == MAX_ENDPOINTS) {
                snprintf(err, errlen, "more than %d etcd endpoints", MAX_ENDPOINTS);
                goto fail;
            }
            if (parse_endpoint(&e->eps[e->neps], p, n) < 0) {
                snprintf(err, errlen, "'%.*s' is not HOST:PORT or http://HOST:PORT", (int)n, p);
                goto fail;
            }
            e->neps++;
        }
        p += n + (p[n] == ',');
    }
    if (!e->neps) {
        snprintf(err, errlen, "no etcd endpoint given");
        goto fail;
    }
    return e;
fail:
    free(e);
    return NULL;
}

static void call_answer(etcd_call_t *c, int err, const char *msg, json_object *reply)
{
    etcd_cb cb = c->cb;
    c->cb = NULL;
    if (cb)
        cb(c->arg, err, msg, reply);
}

void etcd_free(chand_etcd_t *e)
{
    if (!e)
        return;
    /* answer first: the callbacks may look at nothing of ours after this */
    for (qlink_t *l = e->calls.next; l != &e->calls; l = l->next)
        call_answer(QLIST_ENTRY(l, etcd_call_t, link), ECANCELED, "shutting down", NULL);
    for (size_t i = 0; i < e->neps; i++)
        for (int k = 0; k < ETCD_LANES; k++)
            if (e->eps[i].conn[k])
                evhttp_connection_free(e->eps[i].conn[k]);   /* may finish calls: answered */
    while (!qlist_empty(&e->calls)) {
        etcd_call_t *c = QLIST_ENTRY(e->calls.next, etcd_call_t, link);
        qlist_remove(&c->link);
        free(c);
    }
    free(e);
}

const char *etcd_endpoint(const chand_etcd_t *e)
{
    return e->eps[e->cur].shown;
}

static void error_cb(enum evhttp_request_error what, void *arg)
{
    etcd_call_t *c = arg;
    c->http_err = (int)what + 1;
}

static void done_cb(struct evhttp_request *req, void *arg)
{
    etcd_call_t *c = arg;
    chand_etcd_t *e = c->e;
    qlist_remove(&c->link);
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code == 0) {
        /* no answer: try the next endpoint next time */
        int err = c->http_err == EVREQ_HTTP_TIMEOUT + 1 ? ETIMEDOUT : ECONNREFUSED;
        char msg[320];
        snprintf(msg, sizeof msg, "etcd %s: %s", e->eps[c->ep].shown,
                 err == ETIMEDOUT ? "timed out" : "cannot connect or connection lost");
        if (e->cur == c->ep)
            e->cur = (e->cur + 1) % e->neps;
        call_answer(c, err, msg, NULL);
        free(c);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_object *reply = NULL;
    if (len && len <= MAX_REPLY) {
        json_tokener *tok = json_tokener_new();
        reply = json_tokener_parse_ex(tok, (const char *)evbuffer_pullup(in, -1), (int)len);
        json_tokener_free(tok);
    }
    if (code != 200 || !reply || !json_object_is_type(reply, json_type_object)) {
        char msg[512];
        const char *detail = reply ? json_object_get_string(json_object_object_get(reply, "error"))
                                   : NULL;
        snprintf(msg, sizeof msg, "etcd %s: HTTP %d%s%s", e->eps[c->ep].shown, code,
                 detail ? ": " : "", detail ? detail : (reply ? "" : " (not JSON)"));
        call_answer(c, EPROTO, msg, reply);
    } else {
        call_answer(c, 0, NULL, reply);
    }
    json_object_put(reply);
    free(c);
}

void etcd_call(chand_etcd_t *e, int lane, const char *path, json_object *body, int timeout_ms,
               etcd_cb cb, void *arg)
{
    etcd_call_t *c = xcalloc(1, sizeof *c);
    c->e = e;
    c->cb = cb;
    c->arg = arg;
    c->ep = e->cur;
    qlist_push_back(&e->calls, &c->link);
    etcd_endpoint_t *ep = &e->eps[e->cur];
    struct evhttp_connection **conn = &ep->conn[lane == ETCD_LANE_LEASE ? 0 : 1];
    if (!*conn) {
        *conn = evhttp_connection_base_new(e->base, NULL, ep->host, ep->port);
        if (*conn)
            evhttp_connection_set_retries(*conn, 0);
    }
    struct evhttp_request *req = *conn ? evhttp_request_new(done_cb, c) : NULL;
    if (!req) {
        json_object_put(body);
        qlist_remove(&c->link);
        call_answer(c, ENOMEM, "out of memory for an etcd call", NULL);
        free(c);
        return;
    }
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    evhttp_connection_set_timeout_tv(*conn, &tv);
    evhttp_request_set_error_cb(req, error_cb);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", ep->shown);
    evhttp_add_header(h, "Content-Type", "application/json");
    size_t n;
    const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &n);
    evbuffer_add(evhttp_request_get_output_buffer(req), text, n);
    json_object_put(body);
    if (evhttp_make_request(*conn, req, EVHTTP_REQ_POST, path) < 0) {
        /* evhttp freed req and did not call done_cb */
        qlist_remove(&c->link);
        call_answer(c, ECONNREFUSED, "etcd: cannot send the request", NULL);
        free(c);
    }
}

/* ---- base64 (RFC 4648, with padding) ---- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64(const void *p, size_t n)
{
    const uint8_t *s = p;
    char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = B64[(v >> 6) & 63];
        *o++ = B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = B64[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = 0;
    return out;
}

static int b64_val(char c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

long etcd_unb64(const char *s, void *out, size_t outlen)
{
    uint8_t *o = out;
    size_t n = strlen(s), len = 0;
    if (n % 4)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64_val(s[i + k])) < 0) {
                return -1;
            }
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        int bytes = 3 - pad;
        if (len + (size_t)bytes > outlen)
            return -1;
        for (int k = 0; k < bytes; k++)
            o[len++] = (uint8_t)(x >> (16 - 8 * k));
    }
    return (long)len;
}

int64_t etcd_int(json_object *o, const char *field, int64_t def)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, field, &v))
        return def;
    if (json_object_is_type(v, json_type_int))
        return json_object_get_int64(v);
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (*s && !*end && !errno)
            return x;
    }
    return def;
}

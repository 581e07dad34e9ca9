/*
 * chand_etcd.h - the little of etcd's v3 API that the cluster needs, spoken
 * through etcd's JSON gateway (POST /v3/... over HTTP/1.1) on chand's own
 * event loop.
 *
 * Why the gateway and not gRPC: it is part of every etcd 3.x server, it
 * needs nothing beyond libevent (already chand's loop) and a JSON parser
 * (json-c), and chand makes a handful of small calls a second - a lease
 * keepalive, a range read of the cluster's keys, an election transaction -
 * where HTTP's cost does not show.  A gRPC client would bring C++ or a
 * hand-rolled HTTP/2 stack for no gain here.
 *
 * Keys and values travel base64-encoded (the gateway's JSON mapping of
 * bytes); int64 fields arrive as JSON strings.  Callers build requests and
 * read replies with json-c; etcd_b64 and etcd_unb64 do the encoding.
 *
 * Endpoints: a list; a call goes to the current one, and a call that fails
 * to connect or times out moves the next call to the next endpoint.  Calls
 * are never retried here: the cluster's tick makes the next one.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_ETCD_H
#define CHAND_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <json-c/json.h>

typedef struct chand_etcd chand_etcd_t;

/* A call's answer: err 0 and the decoded reply (borrowed: valid during the
 * callback), or err an errno (ECONNREFUSED, ETIMEDOUT, EPROTO for an HTTP
 * error or a reply that is not JSON: msg says what) and reply NULL. */
typedef void (*etcd_cb)(void *arg, int err, const char *msg, json_object *reply);

/* etcd_new - endpoints: "host:port" or "http://host:port", separated by
 * commas.  NULL (and a message in err) if the list is not such. */
chand_etcd_t *etcd_new(struct event_base *base, const char *endpoints, char *err, size_t errlen);
void etcd_free(chand_etcd_t *e);

/* Calls go over one of two HTTP/1.1 connections per endpoint (HTTP/1.1
 * answers one request at a time): the lease's renewals never wait behind a
 * read that a slow etcd member holds up. */
enum { ETCD_LANE_LEASE = 0, ETCD_LANE_KV = 1, ETCD_LANES = 2 };

/* etcd_call - POST body (taken: freed here) to path ("/v3/kv/range", ...)
 * over lane's connection, and call cb(arg, ...) once with the answer,
 * within timeout_ms.  Calls in flight when etcd_free runs are answered
 * ECANCELED. */
void etcd_call(chand_etcd_t *e, int lane, const char *path, json_object *body, int timeout_ms,
               etcd_cb cb, void *arg);

/* The endpoint calls go to now, for logs and the stat ("host:port"). */
const char *etcd_endpoint(const chand_etcd_t *e);

/* Base64 of the gateway's bytes fields.  etcd_b64 returns a new string
 * (free it); etcd_unb64 decodes into out (at most outlen bytes) and returns
 * the length, or -1 if s is not base64 or does not fit. */
char *etcd_b64(const void *p, size_t n);
long etcd_unb64(const char *s, void *out, size_t outlen);

/* Reading replies: a field that is a decimal string or a number (the
 * gateway writes int64 as strings) as an integer, default def. */
int64_t etcd_int(json_object *o, const char *field, int64_t def);

#endif /* CHAND_ETCD_H */

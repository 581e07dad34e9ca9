/*
 * loadgen.h - the load generator shared by chanbench (chand, through
 * libchan), redisbench (Redis, through hiredis) and natsbench (NATS, its
 * text protocol on a socket), in the manner of redis-benchmark: the
 * options, the workloads, the clock and the one result line live here, so
 * every program does exactly the same work; a backend only says how to
 * move values (struct lg_backend).
 *
 * Workloads (--mode):
 *   producer-consumer  P producer threads send `count` values, in batches of
 *                      --pipeline, to one channel (one Redis list); M
 *                      consumer threads receive up to --recv-max at a time.
 *                      Measured from the start barrier until the last value
 *                      is received: values/s.  Every value carries a
 *                      sequence number (its first 8 bytes; the rest are
 *                      pseudo-random, which no log or snapshot compresses);
 *                      the consumers check the total count and the sum
 *                      (check=ok: each value exactly once).
 *   ping-pong          two clients on their own connections: the requester
 *                      sends one value on "req" and waits for the answer on
 *                      "rep"; the responder echoes.  Round-trip percentiles;
 *                      --samples FILE writes every timed round trip (µs, one
 *                      a line, in the order they ran) for a latency CDF.
 *   ping               one client: the server's own ping (chan_ping, PING).
 *                      (--samples works here and for tcp too.)
 *   tcp                no server: a TCP echo over loopback between two
 *                      threads of this process (blocking sockets, 1 byte
 *                      header + payload), the floor for any round trip.
 *   fill               the producers of producer-consumer alone: `count`
 *                      values are left buffered in the channel (the list)
 *                      named by --prefix, for a later drain.
 *   drain              one consumer takes `count` values from the channel
 *                      a fill left, through a server that may still be
 *                      starting: it connects, (with --await-len) waits until
 *                      the channel's length is `count`, opens the channel
 *                      and receives, retrying quietly until the first value
 *                      comes.  Times are from --since (a CLOCK_REALTIME
 *                      instant in ns, e.g. `date +%s%N` taken just before
 *                      the server was started), else from its own start.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef BENCH_LOADGEN_H
#define BENCH_LOADGEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "chan_clock.h"   /* chan_mono_ns: the clock every figure is timed on */

enum lg_mode { LG_PRODUCER_CONSUMER, LG_PING_PONG, LG_PING, LG_TCP, LG_FILL, LG_DRAIN };

typedef struct lg_opts {
    const char *addr;         /* server address (backend's syntax; tls://host:port
                                 for TLS) */
    const char *tls_ca;       /* --tls-ca: the CA that vouches for the server */
    enum lg_mode mode;
    int producers, consumers; /* producer-consumer threads */
    int connections;          /* 0: one per thread */
    size_t pipeline;          /* values per send batch */
    size_t recv_max;          /* most values per receive (0: = pipeline) */
    size_t size;              /* bytes per value */
    uint64_t count;           /* values (producer-consumer) or round trips */
    long cap;                 /* channel capacity (chand; Redis lists are unbounded) */
    int multi_push;           /* Redis: one variadic RPUSH per batch, not a pipeline */
    int timeout_s;            /* give up (exit 2) after this long */
    char prefix[96];          /* channel / key names of this run */
    int prefix_given;         /* --prefix was given (fill and drain need it) */
    int64_t since_ns;         /* drain: times from this CLOCK_REALTIME ns (0: start) */
    int await_len;            /* drain: wait until the length is count first */
    int quiet;                /* backends: say nothing on failure (the caller retries) */
    const char *samples;      /* round trips: write each one's µs to this file */
} lg_opts_t;

/* What a handle from attach is for.  A backend with subscriptions (NATS)
 * subscribes only a receiving handle: a sending one that subscribed would
 * take values meant for the receivers. */
enum lg_use { LG_SEND = 1, LG_RECV = 2 };

/* A value handed over by a backend's recv: valid until its release. */
typedef struct lg_val {
    void *data;
    size_t len;
} lg_val_t;

typedef struct lg_backend {
    const char *name;                        /* "chand", "redis", "nats" */
    /* Make the channels (keys) names[0..n) fresh for this run. */
    int (*setup)(const lg_opts_t *o, const char *const *names, size_t n);
    void (*teardown)(const lg_opts_t *o, const char *const *names, size_t n);
    /* One connection; NULL (and a message on stderr) on failure. */
    void *(*connect)(const lg_opts_t *o);
    void (*disconnect)(void *conn);
    /* The channel `name` seen through conn, for one thread, to send on or
     * to receive from (use); a receiving handle is ready to receive when
     * attach returns (no value sent after that is missed). */
    void *(*attach)(void *conn, const char *name, enum lg_use use, const lg_opts_t *o);
    void (*detach)(void *h);
    /* Send vals[0..n) in order, all of them: 0, or -1. */
    int (*send)(void *h, const lg_val_t *vals, size_t n);
    /* Receive 1..max values (0 if none came within timeout_ms), or -1. */
    ssize_t (*recv)(void *h, lg_val_t *vals, size_t max, int timeout_ms);
    /* Free what recv returned. */
    void (*release)(void *h, lg_val_t *vals, size_t n);
    /* One round trip to the server: 0, or -1. */
    int (*ping)(void *conn);
    /* Values buffered in the channel `name`, or -1 (not known yet: the
     * server is loading, the channel is missing); quiet. */
    int64_t (*length)(void *conn, const char *name);
    /* Print the backend's own key=value pairs of a result line (" cap=1"),
     * after the common ones; NULL: none. */
    void (*fields)(const lg_opts_t *o);
    /* Connections may be shared by threads (chand's client is thread-safe). */
    int shared_conns;
    /* Modes the backend cannot run (bits 1u << LG_FILL ...): lg_parse
     * refuses them (exit 64). */
    unsigned no_modes;
    /* Said at the end of --help: what this backend leaves out, and why. */
    const char *usage_notes;
} lg_backend_t;

/* Parse argv into *o (defaults first); exit 64 with usage on bad input. */
void lg_parse(lg_opts_t *o, int argc, char **argv, const lg_backend_t *b);

/* Run the workload and print its result line.  Returns the exit status:
 * 0, 1 (an error or a failed check). */
int lg_run(const lg_opts_t *o, const lg_backend_t *b);

/* Sort v[0..n) in place, ascending: once, before lg_pct_us. */
void lg_sort_u64(uint64_t *v, uint64_t n);

/* The nearest-rank percentile p (0..1] of sorted nanoseconds v[0..n), in µs. */
double lg_pct_us(const uint64_t *v, uint64_t n, double p);

/* The integer value s of option opt, at least min; exit 64 with a message
 * naming prog and opt if it is not one. */
long long lg_num_arg(const char *prog, const char *opt, const char *s, long long min);

#endif /* BENCH_LOADGEN_H */

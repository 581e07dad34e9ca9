/*
 * chand_server.h - the pieces of chand around the channel core: the event
 * loop and listeners (chand_server.c), connections and framing
 * (chand_conn.c), request handling (chand_dispatch.c) and the metrics
 * endpoint (chand_metrics.c).
 *
 * One libevent loop runs everything, as in Redis: no locks anywhere.  A
 * connection reads every complete frame it has, hands each request to the
 * core, and the core's answers are encoded straight into the connection's
 * output buffer, written at the end of the loop turn.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_SERVER_H
#define CHAND_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "chan_frame.h"
#include "chand_acl.h"
#include "chand_cluster.h"
#include "chand_core.h"
#include "chand_guard.h"
#include "chand_journal.h"
#include "chand_list.h"
#include "chand_opts.h"
#include "chand_repl.h"
#include "chand_stall.h"

typedef struct chand_server chand_server_t;
typedef struct chand_conn chand_conn_t;
struct ssl_st;       /* OpenSSL's SSL and SSL_CTX (chand_tls.c) */
struct ssl_ctx_st;

struct chand_conn {
    chand_server_t *srv;
    evutil_socket_t fd;
    struct evbuffer *in, *out;
    struct event *ev_read, *ev_write;
    struct event *ev_timer;  /* the Hello deadline, then the last flush's */
    core_sess_t *sess;
    qlink_t link;            /* srv->conns */
    qlink_t doomed_link;     /* srv->doomed, once it must go */
    qlink_t pending_link;    /* srv->pending: replies to write this turn */
    uint64_t num;            /* for log lines */
    char peer[80];
    bool hello;              /* Hello received and accepted */
    bool doomed;             /* closing: no more input, drop further replies */
    bool flushing;           /* closing after the output drains */
    uint64_t frames_in, frames_out;
    /* --fsync always: replies wait until the records before them are on
     * disk.  Counts of reply bytes since the connection began: made, sent,
     * and free to send; holds lists what the rest waits for, oldest first:
     * up to `end`, the log up to `pos` must be synced. */
    uint64_t out_total, out_sent, out_free, out_marked;
    bool turn_informs_only;  /* the replies since the last mark are Hello,
                                Pong and Stat answers only */
    struct chand_hold { uint64_t pos, end; } *holds;
    size_t hold_head, nholds, capholds;
    qlink_t held_link;       /* srv->held, while it holds replies */
    repl_feed_t *feed;       /* a replica's connection: its feed */
    /* TLS (chand_tls.c): NULL for a plain connection */
    struct ssl_st *ssl;
    bool tls_ready;          /* handshake done: frames flow */
    bool tls_failed;         /* a fatal TLS error: no close_notify */
    bool tls_read_wants_write; /* SSL_read must write first: the write
                                  event reads again */
    /* --acl-file: the user this connection said Hello as ("" for the
     * --auth-file token, or without an ACL: every permission), and its
     * record in the ACL of generation user_gen (found again by name when
     * a SIGHUP loaded another) */
    char user_name[ACL_USER_MAX + 1];
    const acl_user_t *user;
    uint64_t user_gen;
    guard_addr_t *addr;      /* its address's record (NULL: in-process) */
    uint64_t active_ms;      /* --idle-timeout: its last traffic */
    /* a refused Hello, answered once its delay has passed (ev_timer) */
    bool refusing;
    uint64_t refuse_id;
    char refuse_msg[128];
};

struct chand_server {
    chand_opts_t opts;
    struct event_base *base;
    struct evconnlistener *listeners[CHAND_MAX_LISTEN];
    size_t nlisteners;
    struct event *sig_term, *sig_int;
    struct event *deadline_timer;
    struct event *reclaim_timer; /* frees deleted channels' values a slice a turn */
    struct event *reaper;        /* closes doomed connections after callbacks */
    struct event *accept_resume; /* re-enables accepting after EMFILE */
    struct event *stop_timer;    /* bounds the shutdown drain */
    struct event *sig_hup;
    struct event *journal_timer; /* the journal's housekeeping */
    chand_journal_t *journal;    /* --data-dir, or NULL: memory only */
    struct evhttp *http;
    core_t *core;
    chan_arena_t arena;          /* per-frame decoding */
    uint8_t *token;              /* --auth-file contents, or NULL */
    size_t token_len;
    acl_t *acl;                  /* --acl-file, or NULL: no users */
    uint64_t acl_gen;            /* loads of it so far (SIGHUP) */
    chand_guard_t guard;         /* per client address */
    qlink_t conns;
    qlink_t doomed;
    qlink_t pending;             /* connections with replies not yet written */
    qlink_t held;                /* connections with replies waiting for a sync */
    struct event *journal_notify;/* --fsync always: a sync finished */
    uint64_t nconns;
    uint64_t next_conn;
    uint64_t started_ms;
    uint64_t started_unix;       /* wall clock at start (process_start_time_seconds) */
    chand_stall_t stall;         /* how long each loop callback took */
    uint64_t out_bytes;          /* replies queued to every client (counted
                                    against --max-memory with the values) */
    uint64_t replies;            /* encoded since start */
    uint64_t replies_committed;  /* ... as of the journal's last commit */
    bool stopping;
    /* replies wait for what they promise to be durable (chand_conn.c's
     * holds): under --fsync always, and on a primary under --replication
     * sync */
    bool holds;
    bool journal_always;         /* --fsync always */
    /* --cluster */
    chand_cluster_t *cluster;
    repl_follower_t *follower;   /* while not primary */
    int dir_fd, lock_fd;         /* the data dir, held from start */
    qlink_t feeds;               /* replicas' feeds, as primary */
    uint64_t repl_acked;         /* the furthest position a replica has */
    uint64_t repl_acked_gen, repl_acked_off;   /* ... as (log, offset) */
    bool repl_sync;              /* --replication sync */
    struct event *pump_ev;       /* feeds that still have more to send */
    struct ssl_ctx_st *tls_ctx;  /* --tls-cert: TCP connections speak TLS
                                    (a SIGHUP may load another: each SSL
                                    holds a reference to the one it began
                                    with) */
    struct ssl_ctx_st *tls_peer_ctx; /* ... and its dials to other nodes
                                    (chand_tls_peer_ctx) */
    struct chand_tls_stats {     /* since start (chand_tls.c) */
        uint64_t handshakes;     /* completed */
        uint64_t failures;       /* failed, timed out, or plain frames */
        uint64_t reloads;        /* SIGHUP loads of the files */
        uint64_t reload_failures;/* ... that failed (the context stayed) */
        int64_t not_after;       /* the certificate's end (Unix time) */
    } tls;
    struct slots_mover *mover;   /* moving slots to another group (chand_slots.c) */
    uint64_t adopt_attempt;      /* the attempt of the last first Adopt taken */
    uint64_t adopt_version;      /* the map of the move Adopts were taken for */
    uint64_t adopt_term;         /* the highest sender's term taken for it */
    uint64_t peer_log_ms;        /* chand_log_peer's last line, */
    uint64_t peer_log_dropped;   /* and how many it left out since */
};

/* chand_server.c */
/* chand_server_new - a server for *o, which it copies, taking the strings
 * *o owns (chand_server_free frees them); NULL if it cannot start (logged,
 * and *o's strings freed). */
chand_server_t *chand_server_new(const chand_opts_t *o);
int chand_server_run(chand_server_t *s);
void chand_server_free(chand_server_t *s);
/* chand_now - the monotonic clock in ms (chand_now_us, chand_clock.c) */
uint64_t chand_now(void);
/* chand_server_release - what the journal (--fsync always) and the
 * replicas (--replication sync) hold durable grew: send the replies that
 * waited for it. */
void chand_server_release(chand_server_t *s);
/* chand_server_durable - the position up to which replies may go. */
uint64_t chand_server_durable(chand_server_t *s);
/* chand_server_may_serve - false on a cluster node that is not primary:
 * channel operations are answered NOT_PRIMARY. */
bool chand_server_may_serve(const chand_server_t *s);

/* chand_log_peer - log a warning about a peer (a failed TLS handshake, a
 * refused Hello) at most once a second, counting the ones left out: a port
 * scanner, a password guesser or a misconfigured fleet must not flood the
 * log. */
void chand_log_peer(chand_server_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* chand_server_stop_check - while stopping: once only replicas' feeds are
 * left and each has acknowledged everything, close them too. */
void chand_server_stop_check(chand_server_t *s);
/* chand_server_stop - begin an orderly shutdown (what SIGTERM does): no new
 * connections, every blocked request answered SHUTTING_DOWN, every
 * connection closed once its output drains; the loop then exits. */
void chand_server_stop(chand_server_t *s);
/* Every event-loop callback begins with chand_busy_begin (the core learns
 * the time) and ends with chand_busy_end (its duration goes into the
 * loop-stall histogram). */
uint64_t chand_busy_begin(chand_server_t *s);
void chand_busy_end(chand_server_t *s, uint64_t t0);
/* Arm the deadline timer for the core's next deadline. */
void chand_server_rearm(chand_server_t *s);
/* chand_listen - listen on addr, in --listen's syntax (chan_addr_parse;
 * tcp_only: no unix:/PATH), with cb (NULL: for evhttp_bind_listener).  A
 * Unix socket file left by an earlier run is replaced.  shown gets the
 * address as bound (port 0: the port picked).  NULL, logged with flag's
 * name, if addr is not such an address or cannot be listened on. */
struct evconnlistener *chand_listen(chand_server_t *s, const char *flag, const char *addr,
                                    bool tcp_only, evconnlistener_cb cb, char *shown,
                                    size_t shown_size);

/* chand_conn.c */
void chand_conn_accept(chand_server_t *s, int fd, const struct sockaddr *addr, int len);
/* chand_conn_new - a connection on socket fd (non-blocking), its session
 * open; NULL if it could not be set up (fd is then closed).  fd -1 makes an
 * in-process connection, with no socket: its owner feeds it input with
 * chand_conn_feed and takes its replies with chand_conn_take_output (the
 * fuzz target tests/fuzz/fuzz_dispatch.c drives the daemon this way). */
chand_conn_t *chand_conn_new(chand_server_t *s, int fd, const char *peer);
/* chand_conn_feed - bytes from the peer: handled as read_cb handles what it
 * reads (every whole frame, then this turn's replies are flushed). */
void chand_conn_feed(chand_conn_t *c, const void *data, size_t len);
/* chand_conn_take_output - move the replies written so far to `to`; a
 * connection closing once its output drains is then doomed (reap it). */
void chand_conn_take_output(chand_conn_t *c, struct evbuffer *to);
/* Encode a reply into the connection's output buffer. */
void chand_conn_reply(chand_conn_t *c, const Chan__Reply *r);
/* chand_conn_answer - a reply of status st (and msg, if not NULL) to
 * request id, without a result; chand_conn_redirect - the same naming
 * where to go instead (NOT_PRIMARY, MOVED: Reply.primary). */
void chand_conn_answer(chand_conn_t *c, uint64_t id, Chan__Status st, const char *msg);
/* chand_conn_inform - the same for an answer that promises nothing of the
 * journal (it never waits for a sync: see chand_conn.c's holds). */
void chand_conn_inform(chand_conn_t *c, uint64_t id, Chan__Status st, const char *msg);
void chand_conn_redirect(chand_conn_t *c, uint64_t id, Chan__Status st, const char *msg,
                         const char *primary);
/* Send an error reply and close once it is flushed (one log line). */
void chand_conn_fail(chand_conn_t *c, uint64_t id, Chan__Status st, const char *msg);
/* The connection said Hello: it may stay (its Hello deadline is off; its
 * --idle-timeout starts). */
void chand_conn_hello_done(chand_conn_t *c);
/* chand_conn_refuse - a Hello that failed to authenticate: answer it
 * UNAUTHORIZED with msg after delay_ms (reading nothing more meanwhile),
 * then close. */
void chand_conn_refuse(chand_conn_t *c, uint64_t id, const char *msg, uint64_t delay_ms);
/* Close now (the peer is gone or too slow). */
void chand_conn_doom(chand_conn_t *c, const char *why);
void chand_conn_reap(chand_server_t *s);
/* The end of a callback: write the replies it made now (Redis's
 * beforeSleep), so that a reply does not wait for another turn of the
 * loop.  With a journal, replies wait for the end of the loop's turn
 * instead (chand_conn_flush_turn), when the turn's records are written. */
void chand_conn_flush_pending(chand_server_t *s);
/* The end of the loop's turn: the journal's records first, then every
 * reply (under --fsync always, each once its records are on disk). */
void chand_conn_flush_turn(chand_server_t *s);
/* --fsync always: the log is on disk up to synced: send what waited. */
void chand_conn_release_held(chand_server_t *s, uint64_t synced);
void chand_conn_free(chand_conn_t *c);
/* Shut down gracefully: no more input; close once output drains. */
void chand_conn_drain(chand_conn_t *c);

/* chand_dispatch.c */
void chand_dispatch(chand_conn_t *c, const Chan__Request *rq);
void chand_core_reply(void *ctx, const core_reply_t *r);
core_limits_t chand_core_limits(const chand_opts_t *o);
uint64_t chand_max_value(const chand_opts_t *o);

/* chand_metrics.c */
int chand_metrics_start(chand_server_t *s, const char *addr);

#endif /* CHAND_SERVER_H */

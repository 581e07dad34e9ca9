/*
 * chand_tls.h - TLS on chand's TCP listeners (--tls-cert, --tls-key,
 * --tls-ca, --tls-client-auth): the server's SSL_CTX, and the non-blocking
 * handshake, reads and writes of one connection (chand_tls.c).
 *
 * chand_conn.c reads and writes its sockets itself (into and out of its
 * evbuffers, a turn's replies in one write): a TLS connection does the
 * same through these calls instead of recv() and writev(), so the per-turn
 * flush, the read budget and the replies held for --fsync always work
 * unchanged on it.  The handshake is driven by the connection's read and
 * write events; its Hello deadline covers the handshake too.
 *
 * A SIGHUP makes a new context from the same files (chand_tls_reload): a
 * renewed certificate, or a new CA for client certificates, takes effect
 * for new connections without a restart, and for this node's next dial to
 * another node (chand_tls_peer_ctx).  s->tls counts handshakes and
 * reloads for Stat and /metrics.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_TLS_H
#define CHAND_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "chand_server.h"

/* chand_tls_setup - the server's TLS context from its options (nothing
 * without --tls-cert).  0, or -1 after logging why (a file that does not
 * load, a key that is not the certificate's). */
int chand_tls_setup(chand_server_t *s);
void chand_tls_teardown(chand_server_t *s);

/* chand_tls_reload - SIGHUP: read --tls-cert, --tls-key and --tls-ca again
 * into a new context for the connections accepted from now on; those open
 * keep the one they began with.  0 (or nothing to do without TLS), or -1
 * after logging why: the context loaded before stays in use. */
int chand_tls_reload(chand_server_t *s);

/* chand_tls_peer_ctx - the client context of this node's dials to other
 * nodes of its cluster (chand_peer.c), made at the first call (who names
 * the caller in the log line if the files do not load: NULL then).  A
 * SIGHUP that loads the files again replaces it: each SSL made from it
 * keeps the one it began with.  Owned by s. */
struct ssl_ctx_st *chand_tls_peer_ctx(chand_server_t *s, const char *who);

/* chand_tls_attach - make c, just accepted on a TCP listener, a TLS
 * connection (its handshake not begun).  0, or -1 (out of memory). */
int chand_tls_attach(chand_conn_t *c);

/* What a step of the handshake came to. */
enum chand_tls_step {
    TLS_STEP_DONE,      /* the handshake is over: application data follows */
    TLS_STEP_WAIT,      /* wait for the socket (the write event is armed if
                           it must become writable) */
    TLS_STEP_PLAIN,     /* the peer speaks plain chand frames, not TLS: the
                           SSL object is gone, the connection is plain */
    TLS_STEP_CLOSED,    /* the peer went away before its first byte */
    TLS_STEP_FAILED,    /* the handshake failed (logged, rate-limited) */
};
/* chand_tls_handshake - go on with c's handshake as far as the socket lets
 * it. */
int chand_tls_handshake(chand_conn_t *c);

/* chand_tls_read - up to n bytes of c's plaintext: > 0, 0 at the peer's
 * end (close_notify or EOF), or -1 with errno EAGAIN (nothing now; if the
 * read must write first, c->tls_read_wants_write is set and the write
 * event armed) or EPROTO/ECONNRESET (the connection is unusable). */
ssize_t chand_tls_read(chand_conn_t *c, void *buf, size_t n);
/* chand_tls_pending - plaintext (or a whole record) waits inside OpenSSL,
 * which the socket's read event will not report. */
bool chand_tls_pending(const chand_conn_t *c);

/* chand_tls_write - write up to `most` bytes from the head of c->out and
 * drain what went: bytes written, or -1 with errno EAGAIN or EPIPE. */
int chand_tls_write(chand_conn_t *c, size_t most);

/* chand_tls_close - a best-effort close_notify (never waits), then free
 * c's SSL object. */
void chand_tls_close(chand_conn_t *c);

#endif /* CHAND_TLS_H */

/*
 * chand_tls.c - TLS for chand's TCP connections (see chand_tls.h).
 *
 * Settings: TLS 1.2 or later, OpenSSL's default ciphers and groups, no
 * renegotiation (a client could make us redo handshakes at will), no
 * compression (CRIME), no session tickets or cache (clients dial rarely:
 * a connection lives long).  ALPN "chan/1" is chosen when a client offers
 * it; a client offering only other protocols is refused, one offering
 * none is served (openssl s_client, or a client built without ALPN).
 *
 * A client that speaks plain frames to a TLS port gets one plain error
 * frame saying so, before the close: its first byte is not a TLS
 * handshake record's (22) followed by a TLS version's major byte (3).
 * A chand frame cannot look like that: its second byte is a protobuf tag,
 * and 3 would be field 0, which does not exist.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "chand_log.h"
#include "chand_tls.h"

/* Bytes OpenSSL reads from the socket at once (read ahead; see below). */
#define TLS_READ_AHEAD (64 * 1024)

#define ALPN "chan/1"

/* OpenSSL's first queued error, in words, and the queue emptied. */
static const char *ssl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_get_error();
    if (!e)
        snprintf(buf, size, "%s", "no reason given");
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

/* ---- the context ---- */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char ours[] = "\x06" ALPN;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof ours - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;   /* it wants some other protocol */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static void log_cert(const char *what, X509 *x)
{
    char subject[256] = "?";
    if (!x)
        return;
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0)
        log_warn("%s %s has expired: clients will refuse it", what, subject);
    else if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0)
        log_warn("%s %s is not valid yet: clients will refuse it", what, subject);
    else
        log_info("%s: %s", what, subject);
}

/* The certificate's end, in Unix time (0 if it cannot be read). */
static int64_t not_after(X509 *x)
{
    struct tm tm;
    if (!x || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

/* A server context from the files o names, or NULL after logging why (a
 * file that does not load, a key that is not the certificate's).  The
 * start and every SIGHUP make one the same way. */
static SSL_CTX *server_ctx(const chand_opts_t *o)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        log_err("TLS: cannot make a context: %s", ssl_reason(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* Partial writes: chand_tls_write hands OpenSSL the head of the output
     * buffer, which may have moved (evbuffer realigns) when a write that
     * could not finish is retried; released buffers: 10,000 idle
     * connections do not keep 34 KiB of record buffers each. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Read ahead: one read(2) takes whatever the socket holds, several
     * records, instead of a record's 5-byte header and then its body.
     * What it holds beyond the record returned stays in OpenSSL, which
     * chand_tls_pending reports so that it is read before the loop waits. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, TLS_READ_AHEAD);
    if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) != 1) {
        log_err("--tls-cert %s: %s", o->tls_cert, ssl_reason(why, sizeof why));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o->tls_key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH)
            log_err("--tls-key %s is not the key of --tls-cert %s", o->tls_key, o->tls_cert);
        else
            log_err("--tls-key %s: %s", o->tls_key, ssl_reason(why, sizeof why));
        ERR_clear_error();
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        log_err("--tls-key %s is not the key of --tls-cert %s: %s", o->tls_key, o->tls_cert,
                ssl_reason(why, sizeof why));
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (o->tls_ca) {
        if (SSL_CTX_load_verify_locations(ctx, o->tls_ca, NULL) != 1) {
            log_err("--tls-ca %s: %s", o->tls_ca, ssl_reason(why, sizeof why));
            goto fail;
        }
        /* the CAs we accept, named in the CertificateRequest */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->tls_ca);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
        ERR_clear_error();
    }
    int mode = SSL_VERIFY_NONE;
    if (o->tls_client_auth == CHAND_TLS_AUTH_OPTIONAL)
        mode = SSL_VERIFY_PEER;
    else if (o->tls_client_auth == CHAND_TLS_AUTH_REQUIRE)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* A client context for this node's dials to other nodes (chand_peer.c):
 * nodes of one cluster share their TLS settings, so it shows this node's
 * certificate and checks the peer's against --tls-ca (the system's CAs
 * without one).  NULL after logging why. */
static SSL_CTX *peer_ctx(const chand_opts_t *o, const char *who)
{
    char why[256];
    static const unsigned char alpn[] = "\x06" ALPN;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        log_err("%s: cannot make a TLS context: %s", who, ssl_reason(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ca = o->tls_ca ? SSL_CTX_load_verify_locations(ctx, o->tls_ca, NULL)
                       : SSL_CTX_set_default_verify_paths(ctx);
    if (ca != 1 || SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0) {
        log_err("%s: cannot set up TLS to other nodes: %s", who, ssl_reason(why, sizeof why));
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL_CTX *chand_tls_peer_ctx(chand_server_t *s, const char *who)
{
    if (!s->tls_peer_ctx && s->opts.tls_cert)
        s->tls_peer_ctx = peer_ctx(&s->opts, who);
    return s->tls_peer_ctx;
}

int chand_tls_setup(chand_server_t *s)
{
    const chand_opts_t *o = &s->opts;
    if (!o->tls_cert)
        return 0;
    if (!(s->tls_ctx = server_ctx(o)))
        return -1;
    X509 *x = SSL_CTX_get0_certificate(s->tls_ctx);
    log_cert("TLS certificate", x);
    s->tls.not_after = not_after(x);
    static const char *const auth[] = { "none", "optional", "require" };
    log_info("TLS on TCP listeners (1.2 or later; client certificates: %s); Unix sockets "
             "and --metrics stay plain", auth[o->tls_client_auth]);
    return 0;
}

int chand_tls_reload(chand_server_t *s)
{
    const chand_opts_t *o = &s->opts;
    if (!s->tls_ctx)
        return 0;
    SSL_CTX *ctx = server_ctx(o);
    if (!ctx) {
        s->tls.reload_failures++;
        log_err("SIGHUP: the TLS files (--tls-cert %s, --tls-key %s%s%s) did not load; new "
                "connections keep the certificate loaded before", o->tls_cert, o->tls_key,
                o->tls_ca ? ", --tls-ca " : "", o->tls_ca ? o->tls_ca : "");
        return -1;
    }
    /* connections open keep theirs: each SSL holds its context */
    SSL_CTX_free(s->tls_ctx);
    s->tls_ctx = ctx;
    /* the same for this node's dials to other nodes: the next one (a
     * replica's redial, a slot move) shows the new certificate */
    if (s->tls_peer_ctx) {
        SSL_CTX *peer = peer_ctx(o, "SIGHUP");
        if (peer) {
            SSL_CTX_free(s->tls_peer_ctx);
            s->tls_peer_ctx = peer;
        } else {
            s->tls.reload_failures++;
            log_err("SIGHUP: dials to other nodes keep the TLS files loaded before");
        }
    }
    s->tls.reloads++;
    X509 *x = SSL_CTX_get0_certificate(ctx);
    log_cert("SIGHUP: TLS certificate for new connections", x);
    s->tls.not_after = not_after(x);
    if (o->tls_ca)
        log_info("SIGHUP: client certificates are checked against --tls-ca %s as read now",
                 o->tls_ca);
    return 0;
}

void chand_tls_teardown(chand_server_t *s)
{
    SSL_CTX_free(s->tls_ctx);
    s->tls_ctx = NULL;
    SSL_CTX_free(s->tls_peer_ctx);
    s->tls_peer_ctx = NULL;
}

/* ---- one connection ---- */

int chand_tls_attach(chand_conn_t *c)
{
    SSL *ssl = SSL_new(c->srv->tls_ctx);
    if (!ssl || SSL_set_fd(ssl, c->fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return -1;
    }
    SSL_set_accept_state(ssl);
    c->ssl = ssl;
    return 0;
}

/* Whether the peer's first bytes are a TLS ClientHello's: 1 yes, 0 no
 * (plain frames), -1 not known yet (nothing came), -2 the peer closed. */
static int sniff(int fd)
{
    unsigned char b[2];
    ssize_t n = recv(fd, b, sizeof b, MSG_PEEK);
    if (n == 0)
        return -2;
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
    if (b[0] != 22)
        return 0;
    return n < 2 || b[1] == 3 ? 1 : 0;
}

/* Why a handshake failed, in words. */
static void handshake_failure(chand_conn_t *c, int rc)
{
    char why[256];
    int err = SSL_get_error(c->ssl, rc);
    long v = SSL_get_verify_result(c->ssl);
    if (v != X509_V_OK) {
        snprintf(why, sizeof why, "client certificate refused: %s",
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
    } else if (err == SSL_ERROR_SYSCALL && !ERR_peek_error()) {
        snprintf(why, sizeof why, "%s", errno ? strerror(errno) : "the peer hung up");
    } else {
        ssl_reason(why, sizeof why);
    }
    chand_log_peer(c->srv, "conn %llu (%s): TLS handshake failed: %s; closing",
                   (unsigned long long)c->num, c->peer, why);
}

int chand_tls_handshake(chand_conn_t *c)
{
    if (SSL_in_before(c->ssl)) {   /* nothing read yet: look at the first bytes */
        int kind = sniff(c->fd);
        if (kind == -1)
            return TLS_STEP_WAIT;
        if (kind == -2)
            return TLS_STEP_CLOSED;
        if (kind == 0) {
            SSL_free(c->ssl);
            c->ssl = NULL;
            chand_log_peer(c->srv, "conn %llu (%s): plain frames on a TLS port; closing",
                           (unsigned long long)c->num, c->peer);
            c->srv->tls.failures++;
            return TLS_STEP_PLAIN;
        }
    }
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        event_del(c->ev_write);
        c->tls_ready = true;
        c->srv->tls.handshakes++;
        if (chand_log_level >= CHAND_LOG_DEBUG) {
            X509 *peer = SSL_get0_peer_certificate(c->ssl);
            char subject[256] = "none";
            if (peer)
                X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof subject);
            log_debug("conn %llu (%s): %s %s, client certificate %s", (unsigned long long)c->num,
                      c->peer, SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl), subject);
        }
        return TLS_STEP_DONE;
    }
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        event_del(c->ev_write);
        return TLS_STEP_WAIT;
    case SSL_ERROR_WANT_WRITE:
        event_add(c->ev_write, NULL);
        return TLS_STEP_WAIT;
    default:
        handshake_failure(c, rc);
        c->tls_failed = true;
        c->srv->tls.failures++;
        return TLS_STEP_FAILED;
    }
}

ssize_t chand_tls_read(chand_conn_t *c, void *buf, size_t n)
{
    if (n > INT_MAX)
        n = INT_MAX;
    ERR_clear_error();
    int rc = SSL_read(c->ssl, buf, (int)n);
    if (rc > 0)
        return rc;
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_ZERO_RETURN:
        return 0;   /* close_notify: the normal end */
    case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        c->tls_read_wants_write = true;
        event_add(c->ev_write, NULL);
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_SYSCALL:
        c->tls_failed = true;
        if (!ERR_peek_error() && errno == 0)
            return 0;   /* EOF without close_notify: the peer is gone all the same */
        ERR_clear_error();
        errno = ECONNRESET;
        return -1;
    default: {
        char why[256];
        c->tls_failed = true;
        chand_log_peer(c->srv, "conn %llu (%s): TLS error: %s; closing",
                       (unsigned long long)c->num, c->peer, ssl_reason(why, sizeof why));
        errno = EPROTO;
        return -1;
    }
    }
}

bool chand_tls_pending(const chand_conn_t *c)
{
    return c->ssl && c->tls_ready && SSL_has_pending(c->ssl);
}

int chand_tls_write(chand_conn_t *c, size_t most)
{
    /* The head of the buffer only: a retry after WANT_WRITE must offer
     * at least the bytes offered before, which the head chain always has
     * (nothing is drained until written, chains only grow). */
    struct evbuffer_iovec v;
    if (evbuffer_peek(c->out, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
        return 0;
    size_t n = v.iov_len < most ? v.iov_len : most;
    if (n > INT_MAX)
        n = INT_MAX;
    ERR_clear_error();
    int rc = SSL_write(c->ssl, v.iov_base, (int)n);
    if (rc > 0) {
        evbuffer_drain(c->out, (size_t)rc);
        return rc;
    }
    int err = SSL_get_error(c->ssl, rc);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
        errno = EAGAIN;
        return -1;
    }
    c->tls_failed = true;
    if (err == SSL_ERROR_SSL) {
        char why[256];
        chand_log_peer(c->srv, "conn %llu (%s): TLS write failed: %s; closing",
                       (unsigned long long)c->num, c->peer, ssl_reason(why, sizeof why));
    }
    ERR_clear_error();
    errno = EPIPE;
    return -1;
}

void chand_tls_close(chand_conn_t *c)
{
    if (!c->ssl)
        return;
    if (c->tls_ready && !c->tls_failed) {
        SSL_shutdown(c->ssl);   /* queues close_notify; never waits for the peer's */
    }
    ERR_clear_error();
    SSL_free(c->ssl);
    c->ssl = NULL;
}

/*
 * chan_tls.c - TLS for libchan's connections (see chan_tls.h).
 *
 * What a client checks: the server's certificate chains to a CA of
 * $CHAN_TLS_CA (or the system's store), is valid now, and names the host
 * dialled (or $CHAN_TLS_SERVERNAME): a DNS name against its DNS names, an
 * IP address against its IP addresses.  TLS 1.2 or later, no
 * renegotiation, no compression; ALPN offers "chan/1".
 *
 * The sockets go through a BIO of ours rather than OpenSSL's socket BIO:
 * that one writes with write(2), and a peer gone away would kill the
 * application with SIGPIPE; ours sends with MSG_NOSIGNAL, as the plain
 * path does.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "chan/chan.h"
#include "chan_errmsg.h"
#include "remote/chan_client.h"
#include "remote/chan_tls.h"

/* Bytes OpenSSL reads from the socket at once (read ahead; see below). */
#define TLS_READ_AHEAD (64 * 1024)

static const unsigned char alpn[] = "\x06" "chan/1";

/* ---- the socket BIO ---- */

static BIO_METHOD *sock_method;
static pthread_once_t sock_once = PTHREAD_ONCE_INIT;

static int sock_write(BIO *b, const char *p, int n)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t w;
    do
        w = send(fd, p, (size_t)n, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_write(b);
    return (int)w;
}

static int sock_read(BIO *b, char *p, int n)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t r;
    do
        r = recv(fd, p, (size_t)n, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_read(b);
    return (int)r;
}

static long sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;   /* nothing is buffered here */
    case BIO_C_GET_FD:
        if (ptr)
            *(int *)ptr = (int)(intptr_t)BIO_get_data(b);
        return (int)(intptr_t)BIO_get_data(b);
    default:
        return 0;
    }
}

static int sock_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void make_sock_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "libchan socket");
    if (m && BIO_meth_set_write(m, sock_write) && BIO_meth_set_read(m, sock_read) &&
        BIO_meth_set_ctrl(m, sock_ctrl) && BIO_meth_set_create(m, sock_create))
        sock_method = m;
    else
        BIO_meth_free(m);
}

static BIO *sock_bio(int fd)
{
    pthread_once(&sock_once, make_sock_method);
    BIO *b = sock_method ? BIO_new(sock_method) : NULL;
    if (b)
        BIO_set_data(b, (void *)(intptr_t)fd);
    return b;
}

/* ---- settings ---- */

static char *dup_or_null(const char *s, int *oom)
{
    if (!s || !*s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

/* OpenSSL's first queued error in words (the queue emptied). */
static const char *ssl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    if (r)
        snprintf(buf, size, "%s", r);
    else if (e)
        ERR_error_string_n(e, buf, size);
    else
        snprintf(buf, size, "%s", "no reason given");
    ERR_clear_error();
    return buf;
}

void chani_tls_free(chan_tls_t *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t->servername);
    free(t->ca);
    free(t->cert);
    free(t->key);
    free(t);
}

chan_tls_t *chani_tls_new(const char *ca, const char *cert, const char *key,
                         const char *servername)
{
    chan_tls_t *t = calloc(1, sizeof *t);
    int oom = !t;
    if (t) {
        t->ca = dup_or_null(ca, &oom);
        t->cert = dup_or_null(cert, &oom);
        t->key = dup_or_null(key, &oom);
        t->servername = dup_or_null(servername, &oom);
        t->ctx = oom ? NULL : SSL_CTX_new(TLS_client_method());
        oom = oom || !t->ctx;
    }
    if (oom) {
        chani_tls_free(t);
        ERR_clear_error();
        chani_errmsg_set("out of memory for the TLS settings");
        errno = ENOMEM;
        return NULL;
    }
    SSL_CTX *ctx = t->ctx;
    char why[200];
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* The output buffer is written from its head, retried after
     * WANT_WRITE from wherever realloc() moved it. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read ahead: one read(2) takes several records, not a record's header
     * and then its body; the reader asks chani_io_pending before it waits
     * on the socket, so nothing read ahead waits for more bytes to come. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, TLS_READ_AHEAD);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = t->ca ? SSL_CTX_load_verify_locations(ctx, t->ca, NULL)
                   : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        chani_errmsg_set("TLS CA file %s: %s", t->ca ? t->ca : "(the system's)",
                         ssl_reason(why, sizeof why));
        goto bad;
    }
    if (t->cert) {
        const char *k = t->key ? t->key : t->cert;
        if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
            chani_errmsg_set("TLS client certificate %s: %s", t->cert, ssl_reason(why, sizeof why));
            goto bad;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, k, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            chani_errmsg_set("TLS client key %s: %s", k, ssl_reason(why, sizeof why));
            goto bad;
        }
    } else if (t->key) {
        chani_errmsg_set("a TLS client key (%s) without its certificate", t->key);
        goto bad;
    }
    return t;
bad:
    chani_tls_free(t);
    errno = EINVAL;
    return NULL;
}

/* ---- a connection ---- */

static int is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* Why the handshake failed, for chan_errmsg(). */
static void handshake_failed(SSL *ssl, int rc, const char *name)
{
    char why[200];
    long v = SSL_get_verify_result(ssl);
    int err = SSL_get_error(ssl, rc);
    unsigned long e = ERR_peek_error();
    int reason = ERR_GET_REASON(e);
    if (v != X509_V_OK) {
        ERR_clear_error();
        bool name_wrong = v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH;
        chani_errmsg_set("TLS: the server's certificate is not trusted: %s%s%s",
                         X509_verify_cert_error_string(v), name_wrong ? ": it is not for " : "",
                         name_wrong ? name : "");
        return;
    }
    if ((err == SSL_ERROR_SYSCALL && !e) || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        chani_errmsg_set("TLS: the server closed the connection during the handshake "
                         "(does it speak TLS on this port? chand needs --tls-cert)");
        return;
    }
    ssl_reason(why, sizeof why);
    if (reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE || reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA ||
        reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE)
        chani_errmsg_set("TLS handshake failed: %s (does the server want a client certificate "
                         "it trusts? CHAN_TLS_CERT, CHAN_TLS_KEY)", why);
    else if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
        reason == SSL_R_UNEXPECTED_RECORD)
        chani_errmsg_set("TLS handshake failed: %s (the server does not seem to speak TLS on "
                         "this port)", why);
    else
        chani_errmsg_set("TLS handshake failed: %s", why);
}

SSL *chani_tls_connect(chan_tls_t *t, int fd, const char *host, int64_t deadline)
{
    const char *name = t->servername ? t->servername : host;
    ERR_clear_error();
    SSL *ssl = SSL_new(t->ctx);
    BIO *b = ssl ? sock_bio(fd) : NULL;
    if (!b) {
        SSL_free(ssl);
        ERR_clear_error();
        chani_errmsg_set("out of memory for a TLS connection");
        errno = ENOMEM;
        return NULL;
    }
    SSL_set_bio(ssl, b, b);
    int ok;
    if (is_ip(name)) {
        /* no SNI for an address (RFC 6066); its certificate names it */
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
    } else {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set_tlsext_host_name(ssl, name) == 1 && SSL_set1_host(ssl, name) == 1;
    }
    if (ok != 1 || SSL_set_alpn_protos(ssl, alpn, sizeof alpn - 1) != 0) {
        SSL_free(ssl);
        ERR_clear_error();
        chani_errmsg_set("TLS: '%s' is not a name to check a certificate against", name);
        errno = EINVAL;
        return NULL;
    }
    SSL_set_connect_state(ssl);
    for (;;) {
        ERR_clear_error();
        int rc = SSL_do_handshake(ssl);
        if (rc == 1)
            return ssl;
        int err = SSL_get_error(ssl, rc);
        short ev = err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev) {
            handshake_failed(ssl, rc, name);
            SSL_free(ssl);
            errno = EPROTO;
            return NULL;
        }
        int ready = chani_wait_fd(fd, ev, deadline);
        if (ready <= 0) {
            int e = ready == 0 ? ETIMEDOUT : errno;
            SSL_free(ssl);
            ERR_clear_error();
            chani_errmsg_set("TLS: no handshake with the server before the deadline");
            errno = e;
            return NULL;
        }
    }
}

void chani_tls_free_ssl(SSL *ssl)
{
    if (!ssl)
        return;
    if (SSL_is_init_finished(ssl))
        SSL_shutdown(ssl);   /* queues close_notify; fails quietly on a dead socket */
    ERR_clear_error();
    SSL_free(ssl);
}

ssize_t chani_io_send(int fd, SSL *ssl, const void *p, size_t n)
{
    if (!ssl) {
        ssize_t w;
        do
            w = send(fd, p, n, MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        return w;
    }
    if (n > INT_MAX)
        n = INT_MAX;
    /* With partial writes SSL_write() returns after each record (16 KiB):
     * go on while the socket takes them, as one send() would.  Bytes a
     * WANT_WRITE left inside OpenSSL are not counted: the caller offers
     * them again, first, on its next call. */
    size_t done = 0;
    while (done < n) {
        ERR_clear_error();
        int rc = SSL_write(ssl, (const char *)p + done, (int)(n - done));
        if (rc > 0) {
            done += (size_t)rc;
            continue;
        }
        int err = SSL_get_error(ssl, rc);
        ERR_clear_error();
        if (done)
            break;   /* what went; the error (if lasting) comes again */
        errno = err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ ? EAGAIN : ECONNRESET;
        return -1;
    }
    return (ssize_t)done;
}

ssize_t chani_io_recv(int fd, SSL *ssl, void *p, size_t n)
{
    if (!ssl) {
        ssize_t r;
        do
            r = recv(fd, p, n, 0);
        while (r < 0 && errno == EINTR);
        return r;
    }
    if (n > INT_MAX)
        n = INT_MAX;
    ERR_clear_error();
    int rc = SSL_read(ssl, p, (int)n);
    if (rc > 0)
        return rc;
    int err = SSL_get_error(ssl, rc);
    unsigned long e = ERR_peek_error();
    switch (err) {
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        /* WANT_WRITE: a read that must write first (a KeyUpdate's
         * answer, which chand never asks for) is retried when the socket
         * is readable again, as chan_reader.c polls only for that */
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (!e && errno == 0)
            return 0;
        errno = ECONNRESET;
        return -1;
    default: {
        int reason = ERR_GET_REASON(e);
        if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            return 0;   /* the end, without close_notify */
        }
        char why[200];
        ssl_reason(why, sizeof why);
        /* TLS 1.3 refuses a client certificate after the client's side of
         * the handshake is done: the alert comes with the first read */
        if (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED)
            chani_errmsg_set("TLS: the server requires a client certificate (%s): set "
                             "CHAN_TLS_CERT and CHAN_TLS_KEY", why);
        else if (reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA || reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
                 reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED ||
                 reason == SSL_R_TLSV1_ALERT_DECRYPT_ERROR)
            chani_errmsg_set("TLS: the server refused our client certificate (%s)", why);
        else
            chani_errmsg_set("TLS: %s", why);
        errno = EPROTO;
        return -1;
    }
    }
}

int chani_io_pending(SSL *ssl)
{
    return ssl && SSL_has_pending(ssl);
}

/*
 * chan_tls.h - libchan's TLS (tls://HOST:PORT): the settings of a client,
 * the handshake of each connection it dials, and the socket I/O that
 * the client (chan_client_int.h) and chan_reopen.c do through it (plain or
 * TLS alike).
 *
 * Who may call what, when (chan_client_int.h says why): an SSL object is used
 * by one thread at a time.  Before a connection is published (the dial,
 * the Hello, the re-opening of handles) only the dialling thread has it;
 * afterwards every call on it is made under the client's lock.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_TLS_H
#define CHAN_TLS_H

#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

/* The TLS settings of a client: what every dial (the first and each
 * redial) uses. */
typedef struct chan_tls {
    SSL_CTX *ctx;
    char *servername;       /* the name to check and send (SNI), or NULL:
                               the host of the address dialled */
    char *ca, *cert, *key;  /* the files, as given (NULL: none) */
} chan_tls_t;

/* chani_tls_new - a context that verifies the server against the CAs in
 * ca (NULL: the system's trust store), presents the client certificate
 * cert with its key (NULL: none; key NULL: in the cert file), and checks
 * servername (NULL: the address's host).  NULL with errno EINVAL (a file
 * that does not load; chan_errmsg() says which) or ENOMEM. */
chan_tls_t *chani_tls_new(const char *ca, const char *cert, const char *key,
                         const char *servername);
void chani_tls_free(chan_tls_t *t);

/* chani_tls_connect - the TLS handshake on the connected, non-blocking
 * socket fd, checking the certificate's chain and its name against the
 * servername, else host (a DNS name, or an IP address).  The SSL object,
 * or NULL with errno ETIMEDOUT (deadline), EPROTO (the handshake failed:
 * chan_errmsg() says why) or ENOMEM; fd stays open either way. */
SSL *chani_tls_connect(chan_tls_t *t, int fd, const char *host, int64_t deadline);

/* chani_tls_free_ssl - a best-effort close_notify (never waits), then free
 * the object.  NULL is ignored. */
void chani_tls_free_ssl(SSL *ssl);

/* Socket I/O through ssl, or on fd directly when ssl is NULL, as send()
 * (never SIGPIPE) and recv() do it: bytes moved, 0 at the end of the
 * stream (recv), or -1 with errno EAGAIN (try again when the socket is
 * ready), ECONNRESET or EPROTO (a TLS error: chan_errmsg() says which;
 * the connection is unusable). */
ssize_t chani_io_send(int fd, SSL *ssl, const void *p, size_t n);
ssize_t chani_io_recv(int fd, SSL *ssl, void *p, size_t n);
/* Whether ssl holds bytes already read from the socket (a poll on the
 * socket would not report them): read again before waiting. */
int chani_io_pending(SSL *ssl);

#endif /* CHAN_TLS_H */

/*
 * chand_notify.h - tell a service manager how chand is doing: systemd's
 * sd_notify protocol, without libsystemd.
 *
 * When $NOTIFY_SOCKET is set (systemd sets it for a Type=notify service),
 * each state change is one datagram of "KEY=VALUE" lines sent to that
 * AF_UNIX socket: a path ("/run/systemd/notify") or an abstract name
 * ("@name": the '@' stands for the leading NUL byte).  Without it, nothing
 * is sent.  chand says:
 *   READY=1      once its listeners are up and its --data-dir is recovered
 *   RELOADING=1  (with MONOTONIC_USEC) when a SIGHUP begins, READY=1 after
 *   STOPPING=1   when its orderly shutdown begins (SIGTERM, SIGINT)
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_NOTIFY_H
#define CHAND_NOTIFY_H

/* chand_notify - send the state (printf-style; lines separated by '\n') to
 * $NOTIFY_SOCKET.  1 sent, 0 no $NOTIFY_SOCKET, -1 it could not be sent
 * (logged as a warning: chand runs on all the same). */
int chand_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "RELOADING=1" with the monotonic clock's time, as systemd asks for. */
int chand_notify_reloading(void);

#endif /* CHAND_NOTIFY_H */

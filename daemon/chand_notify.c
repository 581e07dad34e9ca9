/*
 * chand_notify.c - systemd's sd_notify protocol in a few lines (see
 * chand_notify.h): a datagram to $NOTIFY_SOCKET per change of state.
 *
 * A socket is opened for each message and closed after it: the messages
 * are a handful in chand's life, and nothing stays open across a fork or
 * the re-exec of a fenced cluster node (which says READY=1 again).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "chand_log.h"
#include "chand_notify.h"
#include "chand_stall.h"

/* $NOTIFY_SOCKET as an address: "/path" or "@abstract".  -1 if it is
 * neither, or too long. */
static int notify_addr(const char *name, struct sockaddr_un *sun, socklen_t *len)
{
    size_t n = strlen(name);
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (name[0] == '/' && n < sizeof sun->sun_path) {
        memcpy(sun->sun_path, name, n);   /* NUL-terminated by the memset */
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
    }
    if (name[0] == '@' && n >= 2 && n <= sizeof sun->sun_path) {
        memcpy(sun->sun_path + 1, name + 1, n - 1);   /* sun_path[0] stays NUL */
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
    }
    return -1;
}

int chand_notify(const char *fmt, ...)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (!name || !name[0])
        return 0;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof msg)
        return -1;
    struct sockaddr_un sun;
    socklen_t len;
    if (notify_addr(name, &sun, &len) < 0) {
        log_warn("NOTIFY_SOCKET=%s: not an absolute path or an @abstract name of at most %zu "
                 "bytes; not telling the service manager", name, sizeof sun.sun_path - 1);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sun, len) != n) {
        int err = errno;
        log_warn("NOTIFY_SOCKET=%s: %s; not telling the service manager", name, strerror(err));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    log_debug("told the service manager %.*s", (int)strcspn(msg, "\n"), msg);
    return 1;
}

int chand_notify_reloading(void)
{
    return chand_notify("RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)chand_now_us());
}

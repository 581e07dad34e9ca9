/*
 * chan_errmsg.c - chan_errmsg(): the words for this thread's last failure.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "chan/chan.h"
#include "chan_errmsg.h"

/* The pointer is initial-exec (read and cleared on every call, it must
 * not cost a __tls_get_addr in libchan.so); the buffer is not, so that
 * loading libchan.so late (dlopen) needs only a pointer of static TLS. */
__thread const char *chani_errmsg_cur __attribute__((tls_model("initial-exec")));
static __thread char errmsg_buf[512];

void chani_errmsg_set(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg_buf, sizeof errmsg_buf, fmt, ap);
    va_end(ap);
    chani_errmsg_cur = errmsg_buf;
}

const char *chan_errmsg(void)
{
    return chani_errmsg_cur ? chani_errmsg_cur : "";
}

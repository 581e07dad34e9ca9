/*
 * chand_log.c - log lines, each written with one write(2) so that lines
 * from a crash are never torn, in the shape --log-format asks for:
 *
 *   text     2026-11-29T21:30:00.123Z chand[42] info: listening on ...
 *   journal  <6>listening on ...      (stderr under systemd: journald reads
 *                                      the priority, adds time and pid)
 *   json     {"ts":"2026-11-29T21:30:00.123Z","level":"info",
 *             "msg":"listening on ...","pid":42}
 *   syslog   syslog(3), facility daemon, ident chand, with the pid
 *
 * The destination is standard error, or --log-file.  SIGHUP opens the file
 * again (logrotate) by dup2'ing the new file onto the descriptor in use:
 * the fsync thread may log at any moment, and always writes to one file or
 * the other, never to a descriptor closed or reused meanwhile.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "chand_log.h"

int chand_log_level = CHAND_LOG_INFO;

const char *const chand_log_level_names[] = { "error", "warn", "info", "debug", NULL };
const char *const chand_log_format_names[] = { "text", "journal", "json", "syslog", NULL };

/* syslog(3) priorities, which journald's <N> prefixes are too */
static const int level_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

static int log_format = CHAND_LOG_TEXT;
static int log_fd = -1;   /* --log-file's descriptor, once there was one; -1: stderr */

int chand_log_parse(const char *name)
{
    for (int i = 0; chand_log_level_names[i]; i++)
        if (strcmp(name, chand_log_level_names[i]) == 0)
            return i;
    return -1;
}

/* Make log_fd write to path (or to stderr, for NULL): the first file gets
 * a descriptor of its own, later ones are dup2'd onto it. */
static int point_fd(const char *path, char *err, size_t errlen)
{
    int fd = STDERR_FILENO;
    if (path) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0) {
            snprintf(err, errlen, "--log-file %s: %s", path, strerror(errno));
            return -1;
        }
    }
    int cur = __atomic_load_n(&log_fd, __ATOMIC_ACQUIRE);
    if (cur < 0) {
        if (path)
            __atomic_store_n(&log_fd, fd, __ATOMIC_RELEASE);
        return 0;
    }
    if (dup3(fd, cur, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "--log-file %s: %s", path ? path : "(stderr)", strerror(errno));
        if (path)
            close(fd);
        return -1;
    }
    if (path)
        close(fd);
    return 0;
}

int chand_log_setup(int level, int format, const char *path, char *err, size_t errlen)
{
    if (format == CHAND_LOG_SYSLOG && path) {
        snprintf(err, errlen, "--log-file %s: --log-format syslog writes to no file", path);
        return -1;
    }
    if (format != CHAND_LOG_SYSLOG && point_fd(path, err, errlen) < 0)
        return -1;
    int was = __atomic_exchange_n(&log_format, format, __ATOMIC_ACQ_REL);
    if (format == CHAND_LOG_SYSLOG && was != CHAND_LOG_SYSLOG)
        openlog("chand", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    else if (format != CHAND_LOG_SYSLOG && was == CHAND_LOG_SYSLOG)
        closelog();
    __atomic_store_n(&chand_log_level, level, __ATOMIC_RELAXED);
    return 0;
}

/* The length of the UTF-8 sequence at p, or 0 if it is not one (overlong
 * forms and surrogates included). */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        if (p[0] == 0xe0)
            lo = 0xa0;
        if (p[0] == 0xed)
            hi = 0x9f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        if (p[0] == 0xf0)
            lo = 0x90;
        if (p[0] == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* s as the inside of a JSON string, into out (at most cap bytes; a
 * sequence that does not fit whole is left out, with the rest): quotes,
 * backslashes and control bytes escaped, and a byte that is not UTF-8 as
 * U+FFFD, so that every line parses.  Returns the length written. */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        char esc[8];
        const char *add = (const char *)p;
        size_t len = 1, step = 1;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            add = esc;
            len = 2;
        } else if (*p < 0x20) {
            len = (size_t)snprintf(esc, sizeof esc, *p == '\n' ? "\\n" : *p == '\t' ? "\\t"
                                   : *p == '\r' ? "\\r" : "\\u%04x", *p);
            add = esc;
        } else if (*p >= 0x80) {
            step = len = utf8_len(p);
            if (!len) {
                add = "\\ufffd";
                len = 6;
                step = 1;
            }
        }
        if (n + len > cap)
            break;
        memcpy(out + n, add, len);
        n += len;
        p += step;
    }
    return n;
}

void chand_log(int level, const char *fmt, ...)
{
    if (level > __atomic_load_n(&chand_log_level, __ATOMIC_RELAXED) || level < 0 || level > 3)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0)
        msg[0] = 0;
    int format = __atomic_load_n(&log_format, __ATOMIC_ACQUIRE);
    if (format == CHAND_LOG_SYSLOG) {
        syslog(level_prio[level], "%s", msg);
        return;
    }
    char line[sizeof msg * 6 + 128];   /* room for msg escaped in JSON */
    size_t n = 0;
    if (format == CHAND_LOG_JOURNAL) {
        n = (size_t)snprintf(line, sizeof line, "<%d>%s", level_prio[level], msg);
    } else {
        char ts[40];
        struct timeval tv;
        struct tm tm;
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        size_t t = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts + t, sizeof ts - t, ".%03ldZ", (long)(tv.tv_usec / 1000));
        const char *name = chand_log_level_names[level];
        if (format == CHAND_LOG_JSON) {
            n = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                                 name);
            n += json_escape(line + n, sizeof line - n - 64, msg);
            n += (size_t)snprintf(line + n, sizeof line - n, "\",\"pid\":%d}", (int)getpid());
        } else {
            n = (size_t)snprintf(line, sizeof line, "%s chand[%d] %s: %s", ts, (int)getpid(), name,
                                 msg);
        }
    }
    if (n > sizeof line - 1)
        n = sizeof line - 1;
    line[n++] = '\n';
    int fd = __atomic_load_n(&log_fd, __ATOMIC_ACQUIRE);
    (void)!write(fd < 0 ? STDERR_FILENO : fd, line, n);
}

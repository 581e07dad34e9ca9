/*
 * chand_log.h - one-line log messages, filtered by level, in one of four
 * shapes (--log-format): text lines, journald's <N> priority prefixes, JSON
 * objects, or syslog(3).  Lines go to standard error or to --log-file.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_LOG_H
#define CHAND_LOG_H

#include <stddef.h>

enum chand_log_level {
    CHAND_LOG_ERR = 0,
    CHAND_LOG_WARN = 1,
    CHAND_LOG_INFO = 2,
    CHAND_LOG_DEBUG = 3,
};

/* --log-format, in the order of chand_log_format_names */
enum chand_log_format {
    CHAND_LOG_TEXT = 0,      /* 2026-11-29T21:30:00.123Z chand[42] info: text */
    CHAND_LOG_JOURNAL = 1,   /* <6>text: sd-daemon(3)'s priority prefix */
    CHAND_LOG_JSON = 2,      /* {"ts":"...","level":"info","msg":"text","pid":42} */
    CHAND_LOG_SYSLOG = 3,    /* syslog(3), facility daemon, ident chand */
};

/* Lines above this level are dropped (-1: every line is). */
extern int chand_log_level;

/* The names of the levels and of the formats, NULL-terminated, in the
 * order of the enums above: what --log-level and --log-format accept. */
extern const char *const chand_log_level_names[];
extern const char *const chand_log_format_names[];

/* Parse "error", "warn", "info" or "debug"; -1 if none of them. */
int chand_log_parse(const char *name);

/* chand_log_setup - log lines at or below level, in format, to the file
 * path (appended to, made 0640 if missing) or, if path is NULL, to standard
 * error (syslog(3) for CHAND_LOG_SYSLOG, which takes no path).  Called again
 * (SIGHUP) it opens path afresh, so a file that logrotate moved away is
 * made again; threads logging meanwhile write to the old file or the new,
 * never to a closed descriptor.  0, or -1 with the reason in err (the
 * settings in force stay). */
int chand_log_setup(int level, int format, const char *path, char *err, size_t errlen);

void chand_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) chand_log(CHAND_LOG_ERR, __VA_ARGS__)
#define log_warn(...) chand_log(CHAND_LOG_WARN, __VA_ARGS__)
#define log_info(...) chand_log(CHAND_LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (chand_log_level >= CHAND_LOG_DEBUG) chand_log(CHAND_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif /* CHAND_LOG_H */

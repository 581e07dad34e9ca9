/*
 * chand_log.h - one-line log messages on stderr, filtered by level.
 */
#ifndef CHAND_LOG_H
#define CHAND_LOG_H

enum chand_log_level {
    CHAND_LOG_ERR = 0,
    CHAND_LOG_WARN = 1,
    CHAND_LOG_INFO = 2,
    CHAND_LOG_DEBUG = 3,
};

extern int chand_log_level;

/* Parse "error", "warn", "info" or "debug"; -1 if none of them. */
int chand_log_parse(const char *name);

void chand_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) chand_log(CHAND_LOG_ERR, __VA_ARGS__)
#define log_warn(...) chand_log(CHAND_LOG_WARN, __VA_ARGS__)
#define log_info(...) chand_log(CHAND_LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (chand_log_level >= CHAND_LOG_DEBUG) chand_log(CHAND_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif /* CHAND_LOG_H */

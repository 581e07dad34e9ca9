/*
 * common.h - what the examples share, so each one shows only its pattern.
 *
 *   --remote [ADDR]  every channel the example makes lives in chand at ADDR
 *                    ($CHAN_ADDR, then 127.0.0.1:7070): ex_make() returns a
 *                    temporary channel there instead of chan_make()'s local
 *                    one.  The code that uses the channels does not change:
 *                    a chan_t is a chan_t.
 *   --scale F        multiply every pause and timeout of the story by F
 *                    (also $CHAN_EXAMPLES_SCALE; default 1).  The tests run
 *                    the talk at a fraction of its speed; the logic is the same.
 *
 * Setup failures (no chand, no memory) end the program with a message: an
 * example has nothing sensible to fall back on.  Failures that are part of
 * a pattern (a closed channel, a deadline) are handled where they happen.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef EXAMPLES_COMMON_H
#define EXAMPLES_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "chan/chan.h"

/* Deadline for setup round trips to chand (open, connect). */
#define EX_SETUP_MS 5000

/* Set by ex_init(). */
extern const char *ex_prog;             /* program name, for messages */
extern chan_client_t *ex_client;        /* the connection, NULL when local */
extern const char *ex_addr;             /* --remote ADDR, or NULL (default) */
extern double ex_scale;                 /* --scale */

/* ex_init - handle the common options (--remote, --scale, --help) and
 * remove them from argv; *argc is updated.  usage is printed for --help
 * (exit 0) and by ex_usage().  Connects to chand with --remote. */
void ex_init(int *argc, char **argv, const char *usage);

/* ex_flag - 1 if the flag is on the command line (and remove it), else 0. */
int ex_flag(int *argc, char **argv, const char *flag);

/* ex_option - the value after the option ("-n 5" or "-n=5"; removed), or
 * def if the option is absent.  A missing value is a usage error. */
const char *ex_option(int *argc, char **argv, const char *opt, const char *def);

/* ex_number - ex_option() read as a whole number in [min, max]. */
long ex_number(int *argc, char **argv, const char *opt, long def, long min, long max);

/* ex_no_more_args - a usage error if anything but the program name is left
 * (call after taking every option and argument). */
void ex_no_more_args(int argc, char **argv);

/* ex_usage - print the usage to stderr and exit 2. */
void ex_usage(void);

/* ex_die - print "prog: what: strerror(errno)" and exit 1. */
void ex_die(const char *what) __attribute__((noreturn));

/* ex_finish - release what ex_init() made (the connection to chand). */
void ex_finish(void);

/* ---- channels, local or in chand ---- */

/* ex_make - a new channel with capacity cap: chan_make(cap) locally, or a
 * temporary channel in chand with --remote (deleted when this program's
 * connection goes away, so nothing is left behind).  Never NULL. */
chan_t *ex_make(long cap);

/* ex_open - the named channel in chand (made unless it exists; with --remote
 * only).  Never NULL. */
chan_t *ex_open(const char *name, long cap);

/* ex_ref - write a reference to ch into buf (size >= CHAN_REF_MAX), to be
 * carried in a message and opened with ex_open_ref() by whoever receives
 * it.  A remote channel's reference is chan_ref()'s "name@address", good
 * in any process.  A local channel's is "local:<address>" with one
 * reference retained for the receiver: in one process the handle itself
 * travels.  Returns the length. */
size_t ex_ref(chan_t *ch, char *buf, size_t size);

/* ex_unref - give back a reference that was never delivered (a send of
 * the message carrying it failed): a local one holds a retained handle. */
void ex_unref(const char *ref, size_t len);

/* ex_open_ref - open the channel a reference names; the caller owns the
 * handle.  NULL with errno (e.g. ENOENT: a temporary channel whose owner
 * has gone). */
chan_t *ex_open_ref(const char *ref, size_t len);

/* ex_split - a message "text\nref" split at its first newline: *text_len
 * is the text's length and the reference follows.  NULL if there is no
 * newline. */
const char *ex_split(const char *msg, size_t len, size_t *text_len);

/* ex_close - close ch and drop the caller's reference: the goroutines still
 * using it see it closed (EPIPE) at their next operation and end. */
void ex_close(chan_t *ch);

/* ---- time and chance ---- */

/* ex_ms - a duration of the story, scaled by --scale (at least 0). */
int64_t ex_ms(int64_t ms);

/* ex_rand - a uniformly random number in [0, n); thread-safe. */
int64_t ex_rand(int64_t n);

/* ex_pause - sleep up to max_ms (scaled), a random time: "work". */
void ex_pause(int64_t max_ms);

/* ex_after - chan_after(ex_ms(ms)), never NULL. */
chan_t *ex_after(int64_t ms);

/* ex_go - chan_go(), ending the program if the goroutine cannot start. */
void ex_go(void (*fn)(void *arg), void *arg);

/* ex_alloc - calloc() of one zeroed object, never NULL. */
void *ex_alloc(size_t size);

/* ---- helper processes (the cross-process variants) ---- */

/* ex_spawn - start this same program (/proc/self/exe) with args (NULL
 * terminated; argv[0] is supplied) plus --remote ADDR and --scale F, so the
 * child talks to the same chand at the same speed.  It gets SIGTERM if this
 * process dies.  Returns its pid. */
pid_t ex_spawn(const char *const *args);

/* ex_stop - SIGTERM a helper process and reap it. */
void ex_stop(pid_t pid);

#endif /* EXAMPLES_COMMON_H */

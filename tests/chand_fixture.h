/*
 * chand_fixture.h - start a real chand on an ephemeral loopback port for a
 * test, and always stop it.
 *
 * The daemon is $CHAND (set by make check), listening on 127.0.0.1:0; its
 * port comes back through --port-file.  It dies with the thread that
 * started it (PR_SET_PDEATHSIG), so a crashed test leaves nothing running.
 * Its directory is made under /tmp, or under the directory given to
 * chand_set_tmp_root: a program whose failing tests leave data dirs
 * behind (Check ends a failed test's process at once) removes that one
 * directory at its end.
 *
 * A daemon can be killed (chand_kill, chand_signal) and started again in
 * its directory and on its port (chand_start_again), so that clients dial
 * the same address.  Durability tests start chand with a data dir inside
 * that directory (chand_start_data), which the new daemon loads.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_FIXTURE_H
#define CHAND_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>

#include "chan/chan.h"

typedef struct chand_proc {
    pid_t pid;
    int port;
    char addr[64];      /* "127.0.0.1:PORT" */
    char dir[64];       /* temporary directory: port file, log, sockets */
    char data[96];      /* dir/data: the --data-dir of chand_start_data */
    int durable;        /* started with --data-dir data */
} chand_proc_t;

/* chand_set_tmp_root - make the daemons' directories in dir from now on
 * (NULL: /tmp again).  dir must stay valid meanwhile, and be short: a
 * directory's path is at most 63 bytes. */
void chand_set_tmp_root(const char *dir);

/* Start chand with extra arguments (NULL-terminated, may be NULL).
 * 0, or -1 (and the reason on stderr). */
int chand_start(chand_proc_t *d, const char *const *extra);

/* chand_spawn - start chand as chand_start does but return at once, before
 * it listens (d->port stays as it was: read the port file, d->dir/port,
 * when it is there).  With d->dir set (a daemon stopped by chand_signal),
 * in that directory again, its log going on.  0, or -1. */
int chand_spawn(chand_proc_t *d, const char *const *extra);

/* chand_start with --data-dir d->data ahead of extra.  fsize_limit > 0:
 * the daemon runs under RLIMIT_FSIZE of that many bytes (set in the child
 * before exec), which its files meet as a full disk would. */
int chand_start_data(chand_proc_t *d, const char *const *extra, long long fsize_limit);

/* chand_kill - kill chand by its PID with SIGKILL (a crash: it says nothing
 * to its clients, whose connections just end) and reap it.  d->port,
 * d->addr and the directory stay, for chand_start_again().  0, or -1 if it
 * was not running. */
int chand_kill(chand_proc_t *d);

/* chand_signal - send sig to chand and reap it (10 s, then SIGKILL); the
 * rest as chand_kill.  Returns the wait status (WIFEXITED, WTERMSIG...),
 * or -1 if it was not running. */
int chand_signal(chand_proc_t *d, int sig);

/* chand_start_again - start chand again, with extra arguments, in its
 * directory (its log goes on; a chand_start_data daemon gets its data dir
 * back) and on the port it had (after chand_kill): clients that dial
 * d->addr again reach the new daemon.  A start that fails is tried again
 * for a second.  0, or -1 (and the reason on stderr). */
int chand_start_again(chand_proc_t *d, const char *const *extra);

/* chand_start_again_once - chand_start_again, tried once (a durability
 * test holds chand to starting at once after a kill), and with
 * fsize_limit as for chand_start_data. */
int chand_start_again_once(chand_proc_t *d, const char *const *extra, long long fsize_limit);

/* chand_restart - chand_kill(), then chand_start_again(). */
int chand_restart(chand_proc_t *d, const char *const *extra);

/* SIGTERM, wait up to 5 s, then SIGKILL.  Returns the exit status, or -1 if
 * it had to be killed or was already gone.  Removes the directory. */
int chand_stop(chand_proc_t *d);

/* chand_run - run $CHAND with args (NULL-terminated, without argv[0]) to
 * its end (at most timeout_ms, then SIGKILL), its stdout and stderr in out
 * (NUL-terminated, cut to size).  Returns the wait status, or -1. */
int chand_run(const char *const *args, char *out, size_t size, long timeout_ms);

/* chand_http_get - GET path (/metrics, /healthz, ...) from the --metrics
 * endpoint of d, started with --metrics 127.0.0.1:0 (its port comes from
 * d's log): the whole response, headers too, in a static buffer.  Fails
 * the Check test if it cannot. */
const char *chand_http_get(const chand_proc_t *d, const char *path);

/* chand_assert_exposition - check a /metrics response against the
 * Prometheus text format's rules: every sample's family announced by one
 * HELP and one TYPE line before it, a family's samples together. */
void chand_assert_exposition(const char *response);

/* Print the daemon's log (for a failing test). */
void chand_dump_log(const chand_proc_t *d);

/* Helpers for tests that use the daemon, failing the Check test on error:
 * connect to it, open (or make) a channel of capacity cap, sleep. */
chan_client_t *chand_dial(const chand_proc_t *d);
chan_t *chand_open_ch(chan_client_t *cl, const char *name, long cap);
void chand_sleep_ms(long ms);

#endif /* CHAND_FIXTURE_H */

/*
 * chand_fixture.h - start a real chand on an ephemeral loopback port for a
 * test, and always stop it.
 *
 * The daemon is $CHAND (set by make check), listening on 127.0.0.1:0; its
 * port comes back through --port-file.  It dies with the test process
 * (PR_SET_PDEATHSIG), so a crashed test leaves nothing running.
 */
#ifndef CHAND_FIXTURE_H
#define CHAND_FIXTURE_H

#include <sys/types.h>

#include "chan/chan.h"

typedef struct chand_proc {
    pid_t pid;
    int port;
    char addr[64];      /* "127.0.0.1:PORT" */
    char dir[64];       /* temporary directory: port file, log, sockets */
} chand_proc_t;

/* Start chand with extra arguments (NULL-terminated, may be NULL).
 * 0, or -1 (and the reason on stderr). */
int chand_start(chand_proc_t *d, const char *const *extra);

/* SIGTERM, wait up to 5 s, then SIGKILL.  Returns the exit status, or -1 if
 * it had to be killed or was already gone.  Removes the directory. */
int chand_stop(chand_proc_t *d);

/* chand_kill - kill chand by its PID with SIGKILL (a crash: it says nothing
 * to its clients, whose connections just end) and reap it.  d->port and
 * d->addr stay, for chand_start_again().  0, or -1 if it was not running. */
int chand_kill(chand_proc_t *d);

/* chand_start_again - start chand again, with extra arguments, on the port
 * it had (after chand_kill): clients that dial d->addr again reach the new
 * daemon.  0, or -1 (and the reason on stderr). */
int chand_start_again(chand_proc_t *d, const char *const *extra);

/* chand_restart - chand_kill(), then chand_start_again(). */
int chand_restart(chand_proc_t *d, const char *const *extra);

/* Print the daemon's log (for a failing test). */
void chand_dump_log(const chand_proc_t *d);

/* Helpers for tests that use the daemon, failing the Check test on error:
 * connect to it, open (or make) a channel of capacity cap, sleep. */
chan_client_t *chand_dial(const chand_proc_t *d);
chan_t *chand_open_ch(chan_client_t *cl, const char *name, long cap);
void chand_sleep_ms(long ms);

#endif /* CHAND_FIXTURE_H */

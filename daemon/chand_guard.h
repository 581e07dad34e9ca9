/*
 * chand_guard.h - what chand remembers per client address against cheap
 * attacks: connections open from it (--max-conns-per-ip) and failed
 * Hellos (each answered later than the one before, so that guessing
 * secrets is slow).
 *
 * An address is an IPv4 address, an IPv6 address's /64 (one host often
 * has a whole /64 to pick from), or "unix" for every Unix-socket client.
 * A record lives while a connection from its address is open, or while
 * its failures are remembered (GUARD_FORGET_MS after the last one).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_GUARD_H
#define CHAND_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "chand_hash.h"

/* The answer to a failed Hello waits GUARD_DELAY_MS, doubling with each
 * failure from the same address up to GUARD_DELAY_MAX_MS (below libchan's
 * 5 s connect deadline: a client told "unauthorized" learns why). */
#define GUARD_DELAY_MS 100
#define GUARD_DELAY_MAX_MS 3000
/* Failures are forgotten after this long without another. */
#define GUARD_FORGET_MS 60000

typedef struct guard_addr {
    hnode_t node;
    char key[56];          /* "192.0.2.1", "2001:db8::/64", "unix" */
    bool unix_socket;
    uint32_t conns;        /* open connections from it */
    uint32_t fails;        /* failed Hellos, since the last pause of
                              GUARD_FORGET_MS */
    uint64_t last_fail_ms;
} guard_addr_t;

typedef struct chand_guard {
    htable_t addrs;
    size_t sweep_at;       /* look for records to forget past this count */
} chand_guard_t;

void chand_guard_init(chand_guard_t *g);
void chand_guard_free(chand_guard_t *g);

/* chand_guard_conn - a connection from sa: its address's record, its
 * count of connections one more. */
guard_addr_t *chand_guard_conn(chand_guard_t *g, const struct sockaddr *sa, uint64_t now);
/* chand_guard_conn_gone - that connection closed (a NULL a is nothing). */
void chand_guard_conn_gone(chand_guard_t *g, guard_addr_t *a, uint64_t now);

/* chand_guard_failed - a failed Hello from a: how long to wait before
 * answering it, in ms. */
uint64_t chand_guard_failed(guard_addr_t *a, uint64_t now);

#endif /* CHAND_GUARD_H */

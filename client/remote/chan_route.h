/*
 * chan_route.h - libchan in a cluster: which connection a channel's
 * requests go on.
 *
 * A client whose daemon answered Hello with a role is a cluster's.  It asks
 * its node for the slot map (the Map request) and sends each channel's
 * requests to the primary of the group serving the channel's slot
 * (chan_slot.h), on a connection per group, made at first use.  A
 * temporary channel is made on the connection of the group serving the
 * empty name's slot (a group that has slots: chand names the channel in
 * one of its own) and stays there.  A request answered MOVED (errno EREMCHG inside
 * the library) took no effect: the map is read again, the handles whose
 * slot went to another group are opened there, and the call is made again;
 * while a slot is moving, after a pause.  The application never sees
 * EREMCHG, only how long a call took.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_ROUTE_H
#define CHAN_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct chan_client chan_client_t;
typedef struct chan_remote chan_remote_t;

/* The tries of one call (zero it before the first). */
typedef struct chani_moves {
    int tries;
    int64_t started;
    char lost[160];   /* why a try's connection was lost, if one was */
} chani_moves_t;

/* chani_routed - whether cl is an application's client of a cluster (its
 * calls follow the slot map). */
bool chani_routed(const chan_client_t *cl);
/* chani_route - the connection for channel name (len bytes) of the
 * application's client cl: cl itself unless cl is a cluster's.  It lives
 * as long as cl.  A cluster without a map yet, or a channel's group with
 * no node up, is waited for as a slot on the move, the tries counted in
 * the call's *mv (chani_route_moved).  NULL with errno if the map cannot
 * be read or the group's primary cannot be reached (ETIMEDOUT when the
 * deadline passed while it waited). */
chan_client_t *chani_route(chan_client_t *cl, const char *name, size_t len, chani_moves_t *mv,
                           int64_t deadline);
/* chani_route_moved - a call on handles hs[0..n) was answered MOVED (errno
 * EREMCHG): read the map again and move to their group's connection the
 * handles whose slot changed hands; pause if none did (the slot is still
 * moving), or if the connection to the new group was lost or refused on
 * the way (the call took no effect: it waits and goes again).  *mv counts
 * the tries of the call.  0: make the call again; -1 with errno (ETIMEDOUT
 * once deadline has passed, or after 30 s without one; or why a handle
 * cannot be moved). */
int chani_route_moved(chan_remote_t *const *hs, size_t n, chani_moves_t *mv, int64_t deadline);
/* The same for a call by name on cl (Open, Delete, Stat). */
int chani_route_moved_name(chan_client_t *cl, chani_moves_t *mv, int64_t deadline);
/* chani_remote_rehome - open handle r's channel on connection to and make
 * it r's (chan_remote.c).  0, or -1 with errno. */
int chani_remote_rehome(chan_remote_t *r, chan_client_t *to, int64_t deadline);
/* chani_route_all - the connections of every group that serves slots
 * (just cl, unless cl is a cluster's), at most max of them, in out.  The
 * count, or -1 with errno. */
ssize_t chani_route_all(chan_client_t *cl, chan_client_t **out, size_t max, int64_t deadline);
void chani_route_free(chan_client_t *cl);

#endif /* CHAN_ROUTE_H */

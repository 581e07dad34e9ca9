/*
 * chand_slots.h - placement in a cluster: which requests this node serves
 * by the slot map, the Map, MoveSlots and Adopt requests, and moving the
 * channels of slots to another group.
 *
 * A group's primary serves a channel when the slot map gives the name's
 * slot (chan_slot.h) to its group; a temporary channel is served where it
 * was made.  Anything else is answered MOVED, naming the primary of the
 * group that serves the slot, and takes no effect.
 *
 * A move (MoveSlots, recorded in etcd as the map's "moving") is carried out
 * by the old group's primary, which alone may end it:
 *   1. from the moment it reads the move, it answers every request naming
 *      a channel of those slots MOVED (with no primary: ask again soon),
 *      and answers MOVED to whatever waits on them (a send waiting for room,
 *      a receive, a select case); a client sends them again where the map
 *      says, once the move is over;
 *   2. it waits until the channels are settled: reservations committed or
 *      released, an unbuffered value that is out acknowledged;
 *   3. it sends their state (capacity, closed, values; a value delivered
 *      and not yet acknowledged counts one more redelivery, as after a
 *      disconnect) to the new group's primary in Adopt requests, which that
 *      primary makes durable (and replicates, under --replication sync)
 *      before it answers;
 *   4. it changes the map in etcd - the slots are the new group's, the move
 *      is over - by a transaction on the version it read;
 *   5. and deletes its copies.
 * A crash or failover of either primary before step 4 leaves the move
 * recorded: the old group's next primary starts it again from step 1, and
 * the first Adopt of an attempt replaces what an earlier one left.  After
 * step 4, copies the old group kept (a crash before step 5) are never
 * served: they are not its slots.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_SLOTS_H
#define CHAND_SLOTS_H

#include <stdbool.h>
#include <stdint.h>

#include "chan.pb-c.h"

typedef struct chand_server chand_server_t;
typedef struct chand_conn chand_conn_t;

/* chand_slots_gate - whether request rq of c names only channels this
 * node serves; if not, it is answered MOVED and false returned. */
bool chand_slots_gate(chand_conn_t *c, uint64_t id, const Chan__Request *rq);
/* The requests. */
void chand_slots_map(chand_conn_t *c, uint64_t id);
void chand_slots_move(chand_conn_t *c, uint64_t id, const Chan__MoveSlots *m);
void chand_slots_adopt(chand_conn_t *c, uint64_t id, const Chan__Adopt *a);
/* chand_slots_update - the map changed, or this node's role did: start,
 * go on with or stop a move. */
void chand_slots_update(chand_server_t *s);
void chand_slots_free(chand_server_t *s);

typedef struct slots_stats {
    uint64_t served;           /* slots the map gives this node's group */
    bool moving;               /* a move of them is under way here */
    uint64_t moves, channels, values;   /* moves this node ended, and what they carried */
} slots_stats_t;
void chand_slots_stats(const chand_server_t *s, slots_stats_t *out);

#endif /* CHAND_SLOTS_H */

/*
 * chand_slotmap.h - the cluster's slot map as data: which group serves
 * each of the CHAN_SLOTS hash slots (chan_slot.h), and the move under way,
 * if any; and its form in etcd.
 *
 * etcd holds it in one key, /chand/CLUSTER/slots, as JSON:
 *     {"ranges":[[0,511,"g1"],[512,1023,"g2"]],"moving":[256,511,"g2"]}
 * ranges: runs of slots lo..hi (inclusive) and their group, in order and
 * covering every slot once; moving (absent when none): slots lo..hi, all
 * of one group now, are moving to the group named.  Every change is a
 * transaction on the key's mod revision, which is the map's version: two
 * nodes never both change the map from one version.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_SLOTMAP_H
#define CHAND_SLOTMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan_slot.h"

#define SM_MAX_GROUPS 64
#define SM_GROUP_MAX 100    /* bytes in a group's name */

typedef struct slot_map {
    uint64_t version;                 /* the key's mod revision; 0: no map */
    uint8_t owner[CHAN_SLOTS];        /* index into group[] */
    char group[SM_MAX_GROUPS][SM_GROUP_MAX + 1];
    size_t ngroups;
    bool moving;
    uint32_t mlo, mhi;                /* moving slots (owner[] keeps the old group) */
    uint8_t mto;                      /* where they go: index into group[] */
} slot_map_t;

/* slotmap_all - a map giving every slot to group (version 0). */
void slotmap_all(slot_map_t *m, const char *group);
/* slotmap_parse - read the JSON form (len bytes); version is set by the
 * caller.  0, or -1 with why in err. */
int slotmap_parse(slot_map_t *m, const char *json, size_t len, char *err, size_t errlen);
/* slotmap_format - the JSON form (malloc'd). */
char *slotmap_format(const slot_map_t *m);
/* The group serving slot now (a moving slot: the old group, until the
 * move ends). */
const char *slotmap_owner(const slot_map_t *m, uint32_t slot);
/* Whether slot is moving, and where to. */
bool slotmap_moving(const slot_map_t *m, uint32_t slot);
const char *slotmap_moving_to(const slot_map_t *m);
/* slotmap_start_move - record that lo..hi move to group.  -1 with why in
 * err if lo..hi is not within range, not served by one group now, already
 * that group's, or a move is under way. */
int slotmap_start_move(slot_map_t *m, uint32_t lo, uint32_t hi, const char *group, char *err,
                       size_t errlen);
/* slotmap_end_move - the moving slots are the new group's now. */
void slotmap_end_move(slot_map_t *m);

/* The runs of one owner, in order: call with *slot 0, then again while it
 * returns true. */
bool slotmap_next_range(const slot_map_t *m, uint32_t *slot, uint32_t *lo, uint32_t *hi,
                        const char **group);

#endif /* CHAND_SLOTMAP_H */

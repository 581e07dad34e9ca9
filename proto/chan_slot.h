/*
 * chan_slot.h - which hash slot a channel name belongs to, in a cluster.
 *
 * A cluster splits channel names into CHAN_SLOTS slots and gives each slot
 * to one group.  The slot of a name is the 32-bit FNV-1a hash of its bytes,
 * modulo CHAN_SLOTS: simple enough for a client in any language to compute
 * the same (docs/PROTOCOL.md gives test vectors).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_SLOT_H
#define CHAN_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define CHAN_SLOTS 1024   /* as chan.h says */

/* chan_slot - the slot (0 .. CHAN_SLOTS-1) of name[0..len). */
uint32_t chan_slot(const void *name, size_t len);

#endif /* CHAN_SLOT_H */

/*
 * fz_pb.h - deep comparison of two protobuf-c messages, for the fuzz
 * targets' differential checks.
 *
 * It walks the message descriptor, so it covers every field of every
 * message in chan.proto, including ones added later, without a line per
 * field.  Presence counts (has_ flags, oneof cases, repeated counts, NULL
 * submessages), and so does the shape protobuf-c gives an empty bytes
 * field (data NULL iff len 0): the fast decoders promise to answer exactly
 * as protobuf-c would.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef FZ_PB_H
#define FZ_PB_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/* fz_pb_equal - true if a and b (of one descriptor) hold the same fields.
 * Otherwise false, with the path of the first difference in why. */
bool fz_pb_equal(const ProtobufCMessage *a, const ProtobufCMessage *b, char *why, size_t whysize);

/* fz_pb_has_field0 - true if m or a message inside it kept an unknown
 * field numbered 0.  protobuf-c reads one from a padded tag (0x80 0x00)
 * but refuses the one-byte tag it writes for it, so such a message cannot
 * survive a round trip: a quirk of protobuf-c, not of chan_frame. */
bool fz_pb_has_field0(const ProtobufCMessage *m);

#endif /* FZ_PB_H */

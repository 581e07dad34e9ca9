/*
 * chand_repl.h - replication by shipping the journal's files.
 *
 * A replica holds a copy of its primary's data dir, file for file and byte
 * for byte: the newest snapshot and the chain of logs after it.  It asks
 * with Replicate (what it holds: its snapshot, its newest log and that
 * log's length), and the primary answers with ReplData frames, in order:
 *
 *   - partial: the replica's newest log is one of the primary's, and no
 *     longer (the bytes before are the same: one primary wrote both): the
 *     rest of that log, then the logs after it, then what is appended live;
 *   - cut, then partial: the replica's log is longer than the primary's
 *     copy of it, and the primary has gone on in a later log - the replica
 *     was the primary of an earlier term and wrote records no replica got
 *     (acknowledged under async replication only): they leave the history;
 *   - full: anything else: every file is removed, and the primary's
 *     snapshot and logs follow.
 *
 * A replica writes only whole records that pass their checksums, and a new
 * file only after its header, so its dir is at every moment a data dir a
 * chand can start from: promotion is the recovery of a restart
 * (chand_recover.c), the one code path that reads a journal.  Each new term
 * starts a log of its own generation (the term shifted left 24 bits, with
 * room for 16 M rewrites a term), so two primaries never write two
 * different logs of one name.
 *
 * The replica acknowledges (log generation, length) once written - and
 * fdatasync'd under --fsync always.  Under --replication sync the primary
 * holds each reply that promises something until one replica acknowledged
 * the records it depends on (chand_conn.c's holds, as for --fsync always).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_REPL_H
#define CHAND_REPL_H

#include <stdbool.h>
#include <stdint.h>

#include "chan_frame.h"

typedef struct chand_server chand_server_t;
typedef struct chand_conn chand_conn_t;
typedef struct repl_feed repl_feed_t;
typedef struct repl_follower repl_follower_t;

/* ---- the primary's side ---- */

/* chand_repl_feed_start - c asked to replicate (rq): start its feed, or
 * answer it why not. */
void chand_repl_feed_start(chand_conn_t *c, uint64_t id, const Chan__Replicate *rq);
/* chand_repl_ack - c's replica has log gen up to off. */
void chand_repl_ack(chand_conn_t *c, const Chan__ReplAck *a);
/* chand_repl_pump - after each turn: send each feed what it lacks, as far
 * as its socket takes it. */
void chand_repl_pump(chand_server_t *s);
/* chand_repl_feed_free - c goes away. */
void chand_repl_feed_free(repl_feed_t *f);
/* chand_repl_acked - the furthest position (as chand_journal_needed) a
 * replica acknowledged; chand_repl_replicas - how many are connected. */
uint64_t chand_repl_acked(const chand_server_t *s);
unsigned chand_repl_replicas(const chand_server_t *s);
/* chand_repl_caught_up - every replica acknowledged all that was written. */
bool chand_repl_caught_up(const chand_server_t *s);
/* chand_repl_lag_max - bytes of log the furthest-behind replica has not
 * acknowledged (0: none connected, or all caught up). */
uint64_t chand_repl_lag_max(const chand_server_t *s);

/* ---- the replica's side ---- */

/* chand_repl_follower_new - for data dir dir_fd (LOCK held): read what it
 * holds.  NULL (logged) if it does not load. */
repl_follower_t *chand_repl_follower_new(chand_server_t *s, int dir_fd);
/* chand_repl_follow - copy from the primary at addr, in term; the
 * connection is made again until chand_repl_unfollow. */
void chand_repl_follow(repl_follower_t *f, const char *addr, uint64_t term);
void chand_repl_unfollow(repl_follower_t *f);
/* chand_repl_follower_where - how far the copy reaches; consistent: false
 * during a full copy, before its snapshot is whole. */
void chand_repl_follower_where(const repl_follower_t *f, uint64_t *gen, uint64_t *off,
                               bool *consistent);
/* chand_repl_follower_free - stop, make what was written durable. */
void chand_repl_follower_free(repl_follower_t *f);

typedef struct repl_stats {
    bool following;
    bool connected;
    uint64_t gen, off;        /* the copy's newest log and its length */
    uint64_t bytes, full_copies, reconnects;
} repl_stats_t;
void chand_repl_follower_stats(const repl_follower_t *f, repl_stats_t *out);

#endif /* CHAND_REPL_H */

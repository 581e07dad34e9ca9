/*
 * chand_journal.h - durability: chand's append-only log in --data-dir.
 *
 * The core reports every change a restart must restore (channels made,
 * closed, deleted; values put, delivered, acknowledged: core_journal_t).
 * The journal encodes them into one buffer per loop turn, and at the end of
 * the turn - before any reply of that turn is written to a socket - writes
 * the buffer with one write(2).  Under --fsync always a thread then runs
 * fdatasync, and the replies that depend on the turn's records wait for it
 * (chand_conn.c holds them) while the loop serves everyone else; what is
 * written while a sync runs goes with the next one: a group commit across
 * turns and connections.  Under everysec a thread runs fdatasync once a
 * second; under no, the kernel writes back when it likes.  Since the write
 * comes before the replies, a client that heard OK has its value in the
 * kernel at least: kill -9 loses nothing under any policy; a power cut
 * loses at most the last second under everysec.
 *
 * The log does not grow forever: past --rewrite-size, and once it has
 * grown as large as the last snapshot, a child process (fork, as Redis's
 * BGREWRITEAOF) writes the live state to a new snapshot while the loop
 * appends to a new log; then the old files are removed.
 *
 * Files (chand_recover.c reads them): log.G and snap.G, G a generation of
 * 20 digits; LOCK holds the data dir for one chand.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_JOURNAL_H
#define CHAND_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "chand_core.h"
#include "chand_recover.h"

enum jr_fsync { JR_FSYNC_ALWAYS, JR_FSYNC_EVERYSEC, JR_FSYNC_NO };

typedef struct jr_opts {
    const char *dir;
    enum jr_fsync fsync;
    uint64_t prealloc;         /* bytes reserved ahead on disk (fallocate) */
    uint64_t rewrite_size;     /* the log is rewritten past this size */
    bool locked;               /* the caller holds the dir's LOCK as lock_fd
                                  (the cluster takes it at start) */
    int lock_fd;
} jr_opts_t;

typedef struct jr_stats {
    uint64_t disk_bytes;       /* the data dir's snapshot and logs */
    uint64_t records, bytes_written, writes;
    uint64_t fsyncs, fsync_us_total, fsync_us_max;
    uint64_t rewrites, rewrite_failures;
    uint64_t last_rewrite_unix;   /* seconds since 1970 of the last one, 0: none */
    uint64_t last_rewrite_us;     /* how long it took, fork to files removed */
    uint64_t last_rewrite_stall_us; /* how long starting it held the loop: fork,
                                       and syncing the log it closes */
    bool refusing;                /* sends refused: the disk is full */
    jr_recovery_t recovery;       /* what the start found */
} jr_stats_t;

typedef struct chand_journal chand_journal_t;

/* chand_journal_open - lock dir (a second chand on it is refused), load it
 * into core, and report to it from now on.  NULL on error (logged). */
chand_journal_t *chand_journal_open(const jr_opts_t *o, core_t *core);
/* chand_journal_commit - the end of a loop turn: write this turn's records,
 * and under --fsync always, if replies wait (answered), ask the sync thread
 * to make durable everything up to the last record a reply promises:
 * channels made, closed, deleted, values put.  Deliveries and
 * acknowledgements promise nobody anything and are synced with the next
 * such record, or at the next tick (100 ms): a power cut (not a crash of
 * chand, which loses nothing written) may lose a value's redelivered mark
 * or its acknowledgement in that window - the value comes back, unmarked.
 * On a write error it logs and exits: no reply of the turn has gone out,
 * and what is on disk is whole records up to the last good write (a torn
 * tail at worst). */
void chand_journal_commit(chand_journal_t *j, bool answered);

/* --fsync always: replies wait for the sync that covers what they promise,
 * and the loop goes on meanwhile.  A position is a count of bytes written
 * to the log since start.  holds: true under --fsync always.  needed: the
 * position replies made so far wait for.  synced: everything before it is
 * on disk.  sync_to: have everything before pos synced (the thread does
 * it).  notify_fd: readable (an eventfd: read 8 bytes to clear) after each
 * sync the thread finishes - or fails: then synced stops moving and the
 * next tick stops chand. */
bool chand_journal_holds(const chand_journal_t *j);
uint64_t chand_journal_needed(const chand_journal_t *j);
uint64_t chand_journal_synced(chand_journal_t *j);
void chand_journal_sync_to(chand_journal_t *j, uint64_t pos);
int chand_journal_notify_fd(const chand_journal_t *j);
/* chand_journal_pending - records wait for the end of the turn. */
bool chand_journal_pending(const chand_journal_t *j);
/* chand_journal_tick - housekeeping, a few times a second: start or finish
 * a rewrite, retry reserving disk space, pick up the fsync thread's
 * failure. */
void chand_journal_tick(chand_journal_t *j);
/* chand_journal_close - commit, fdatasync, stop the fsync thread, wait
 * for a rewrite in progress, unlock, free. */
void chand_journal_close(chand_journal_t *j);
void chand_journal_stats(const chand_journal_t *j, jr_stats_t *out);

/* For replication (chand_repl.c): the log being appended (generation,
 * length) and the newest snapshot's generation (0: none); the data dir. */
void chand_journal_where(const chand_journal_t *j, uint64_t *gen, uint64_t *off,
                         uint64_t *snap_gen);
int chand_journal_dir_fd(const chand_journal_t *j);
/* chand_journal_rotate - append to a new log from now on, of generation
 * gen (or the next one, if gen is not past the current): a cluster's new
 * primary starts its term in a log no other node has written. */
int chand_journal_rotate(chand_journal_t *j, uint64_t gen);
/* chand_journal_pos_of - the position (as chand_journal_needed) of offset
 * off in log gen: what a replica acknowledging (gen, off) has. */
uint64_t chand_journal_pos_of(const chand_journal_t *j, uint64_t gen, uint64_t off);
/* chand_journal_written - the position after the last record written. */
uint64_t chand_journal_written(const chand_journal_t *j);
/* chand_journal_lock - create dir if need be, open it (*dir_fd) and take
 * its LOCK: the lock's descriptor (pass it in jr_opts_t), or -1 (logged:
 * another chand holds it, or an I/O error). */
int chand_journal_lock(const char *dir, int *dir_fd);
/* chand_journal_remove_before - remove the logs and snapshots of dir_fd
 * older than generation gen. */
void chand_journal_remove_before(int dir_fd, uint64_t gen);

/* chand_journal_check - --check: verify dir, print what it holds; the
 * exit status (0 whole, or with a torn tail a restart cuts; 1 corrupt). */
int chand_journal_check(const char *dir);

#endif /* CHAND_JOURNAL_H */

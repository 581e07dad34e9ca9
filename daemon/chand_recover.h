/*
 * chand_recover.h - reading a data dir back at start: the newest snapshot,
 * then every log after it, checked record by record, into the core.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_RECOVER_H
#define CHAND_RECOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chand_core.h"

typedef struct jr_recovery {
    uint64_t snap_gen;       /* the snapshot the state starts from (0: none) */
    uint64_t snap_bytes;
    uint64_t last_gen;       /* the newest log (0: none) */
    uint64_t last_len;       /* its whole records end here: appending goes on */
    uint64_t last_size;      /* its size on disk (more than last_len: a torn
                                tail, cut off when cleanup is asked) */
    bool last_zeros;         /* that tail is zero bytes only: space the log
                                wrote ahead of its end, not a torn write */
    uint64_t last_prev;      /* the log before the newest in the chain (0:
                                none): what a header written again names */
    uint64_t log_bytes;      /* good bytes of every log since the snapshot */
    uint64_t files, records;
    uint64_t channels, values, value_bytes;
    uint64_t unknown_ids;    /* DLV/ACK records naming no live value */
    uint64_t last_no, last_vid;
    uint64_t us;             /* how long it took */
} jr_recovery_t;

/* chand_recover - read data dir `dir` (open as dir_fd) into core (NULL:
 * only check).  cleanup: also remove what the state no longer needs (files
 * older than the newest snapshot, a snapshot left half-written) and cut a
 * torn tail off the newest log.  Returns 0, or -1 with a message naming
 * the file and offset in err (corruption, a missing file, an I/O error):
 * nothing is loaded into core then... except what was already (the caller
 * exits). */
int chand_recover(int dir_fd, const char *dir, core_t *core, bool cleanup, jr_recovery_t *out,
                  char *err, size_t errlen);

/* chand_recover_list - the generations of the logs and snapshots in the
 * dir, each sorted (free both).  0, or -1 if it cannot be listed. */
int chand_recover_list(int dir_fd, uint64_t **logs, size_t *nlogs, uint64_t **snaps,
                       size_t *nsnaps);

/* File names in a data dir. */
#define JR_LOG_FMT "log.%020llu"
#define JR_SNAP_FMT "snap.%020llu"
#define JR_NAME_MAX 64
/* Present while a cluster replica's full copy is unfinished. */
#define JR_COPYING "COPYING"

#endif /* CHAND_RECOVER_H */

/*
 * fsync_gate.c - an LD_PRELOAD shim for tests: fdatasync() waits while the
 * file named by $CHAND_TEST_FSYNC_GATE exists, then syncs.  It stands for a
 * disk that takes its time, so that a test can see what chand does (and
 * does not send) while a sync is outstanding.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    const char *gate = getenv("CHAND_TEST_FSYNC_GATE");
    while (gate && access(gate, F_OK) == 0)
        usleep(1000);
    return real(fd);
}

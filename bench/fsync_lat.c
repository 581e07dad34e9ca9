/*
 * fsync_lat.c - the bound of a fully synchronous log on this disk: append
 * SIZE bytes to a file with write() and make them durable with
 * fdatasync(), COUNT times, timing each pair; print the percentiles and the
 * rate.  The file grows with every write (no preallocation), so each
 * fdatasync also commits the new file size, as an append-only log's does.
 *
 *   fsync_lat [-d DIR] [-s SIZE] [-n COUNT] [--timeout S]
 *
 * The file lives in a fresh directory made inside DIR (default: the
 * current directory) and is removed at the end.  A DIR on tmpfs or ramfs is
 * refused: fdatasync does nothing there, so the figures would say nothing
 * about a disk.  One result line of key=value pairs goes to stdout, in the
 * manner of chanbench and redisbench (percentiles: bench/loadgen.c).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "loadgen.h"

#define WARMUP_MAX 100   /* untimed appends first: the file and journal settle */

/* The file system type's usual name, from statfs's f_type. */
static const char *fs_name(long type)
{
    switch ((unsigned long)type) {
    case 0xEF53: return "ext4";   /* ext2/3/4 share the magic */
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794C7630: return "overlay";
    case 0x2FC12FC1: return "zfs";
    case 0xF2F52010: return "f2fs";
    case 0x6969: return "nfs";
    case 0x01021994: return "tmpfs";
    case 0x858458F6: return "ramfs";
    default: return "other";
    }
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "fsync_lat: timed out; giving up\n";
    ssize_t k = write(2, msg, sizeof msg - 1);
    (void)k;
    _exit(2);
}

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
"Usage: %s [-d DIR] [-s SIZE] [-n COUNT] [--timeout S]\n"
"Time write(SIZE bytes, appended) + fdatasync() on a file in DIR.\n"
"\n"
"  -d, --dir DIR      where to make the scratch directory (default: .); not tmpfs\n"
"  -s, --size BYTES   bytes per append (default 64)\n"
"  -n, --count N      timed appends (default 1000), after up to %d untimed\n"
"      --timeout S    give up after S seconds (default 120; exit 2), leaving\n"
"                     the scratch directory behind\n"
"  -h, --help         this help\n"
"\n"
"One result line of key=value pairs goes to stdout.  Exit status: 0 done,\n"
"1 error, 2 timeout, 64 usage.\n",
            prog, WARMUP_MAX);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "size", required_argument, NULL, 's' },
        { "count", required_argument, NULL, 'n' },
        { "timeout", required_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *prog = argv[0], *dir = ".";
    size_t size = 64;
    uint64_t count = 1000;
    unsigned timeout_s = 120;
    int c;
    while ((c = getopt_long(argc, argv, "d:s:n:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 's': size = (size_t)lg_num_arg(prog, "--size", optarg, 1); break;
        case 'n': count = (uint64_t)lg_num_arg(prog, "--count", optarg, 1); break;
        case 'T': timeout_s = (unsigned)lg_num_arg(prog, "--timeout", optarg, 1); break;
        case 'h': usage(stdout, prog); return 0;
        default: usage(stderr, prog); return 64;
        }
    }
    if (optind < argc) {
        usage(stderr, prog);
        return 64;
    }

    signal(SIGALRM, on_alarm);
    alarm(timeout_s);

    struct statfs sf;
    if (statfs(dir, &sf) < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
        return 1;
    }
    const char *fs = fs_name((long)sf.f_type);
    if (!strcmp(fs, "tmpfs") || !strcmp(fs, "ramfs")) {
        fprintf(stderr, "%s: %s is on %s, where fdatasync does nothing: give a directory on "
                "the disk (-d)\n", prog, dir, fs);
        return 1;
    }

    char tmp[PATH_MAX], file[PATH_MAX + 16];
    if (snprintf(tmp, sizeof tmp, "%s/fsync_lat.XXXXXX", dir) >= (int)sizeof tmp ||
        !mkdtemp(tmp)) {
        fprintf(stderr, "%s: cannot make a directory in %s: %s\n", prog, dir, strerror(errno));
        return 1;
    }
    snprintf(file, sizeof file, "%s/log", tmp);
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    uint8_t *buf = malloc(size);
    uint64_t warm = count / 10 < WARMUP_MAX ? count / 10 : WARMUP_MAX;
    uint64_t *lat = calloc(count, sizeof *lat);
    int rc = 1;
    if (fd < 0 || !buf || !lat) {
        fprintf(stderr, "%s: %s: %s\n", prog, file, strerror(errno));
        goto out;
    }
    memset(buf, 'v', size);
    uint64_t t_start = 0;
    for (uint64_t i = 0; i < warm + count; i++) {
        if (i == warm)
            t_start = chan_mono_ns();
        uint64_t t0 = chan_mono_ns();
        ssize_t k = write(fd, buf, size);
        if (k != (ssize_t)size) {
            fprintf(stderr, "%s: write %s: %s\n", prog, file, k < 0 ? strerror(errno) : "short");
            goto out;
        }
        if (fdatasync(fd) < 0) {
            fprintf(stderr, "%s: fdatasync %s: %s\n", prog, file, strerror(errno));
            goto out;
        }
        if (i >= warm)
            lat[i - warm] = chan_mono_ns() - t0;
    }
    double secs = (double)(chan_mono_ns() - t_start) / 1e9;
    lg_sort_u64(lat, count);
    double sum = 0;
    for (uint64_t i = 0; i < count; i++)
        sum += (double)lat[i];
    printf("fsync_lat dir=%s fs=%s size=%zu count=%llu secs=%.3f mean_us=%.1f p50_us=%.1f"
           " p99_us=%.1f max_us=%.1f syncs_per_s=%.0f\n",
           dir, fs, size, (unsigned long long)count, secs, sum / (double)count / 1000.0,
           lg_pct_us(lat, count, 0.50), lg_pct_us(lat, count, 0.99),
           (double)lat[count - 1] / 1000.0, (double)count / secs);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    unlink(file);
    rmdir(tmp);
    free(buf);
    free(lat);
    return rc;
}

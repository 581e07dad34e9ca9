/*
 * jobs.c - libchan on one page: main sends three jobs on a channel, a worker
 * goroutine receives them until the channel is closed, and main waits for
 * the worker with a wait group.  The channel is local, or with --remote
 * [ADDR] the channel "jobs" in chand ($CHAN_ADDR, then 127.0.0.1:7070);
 * the code that uses it is the same.  Exits 1 if anything fails.
 *
 *   cc jobs.c $(pkg-config --cflags --libs libchan) -o jobs && ./jobs
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <chan/chan.h>

struct worker {
    chan_t *jobs;
    chan_wg_t *done;
    int count, failed;
};

/* Why the last call failed: chand's words if it refused, else errno's. */
static const char *why(void)
{
    return *chan_errmsg() ? chan_errmsg() : strerror(errno);
}

static void die(const char *what)
{
    fprintf(stderr, "jobs: %s: %s\n", what, why());
    exit(1);
}

static void work(void *arg)
{
    struct worker *w = arg;
    char buf[64];
    ssize_t n;
    while ((n = chan_recv(w->jobs, buf, sizeof buf, -1)) >= 0) {   /* -1: no deadline */
        printf("got %.*s\n", (int)n, buf);
        w->count++;
    }
    if (errno != EPIPE) {               /* EPIPE: closed, and every job taken */
        fprintf(stderr, "jobs: receive: %s\n", why());
        w->failed = 1;
    }
    chan_wg_done(w->done);
}

int main(int argc, char **argv)
{
    int remote = argc > 1 && strcmp(argv[1], "--remote") == 0;
    if (argc > (remote ? 3 : 1)) {
        fprintf(stderr, "usage: jobs [--remote [ADDR]]\n");
        return 2;
    }
    chan_client_t *cl = NULL;
    if (remote && !(cl = chan_connect(argc > 2 ? argv[2] : NULL, NULL, chan_now() + 5000)))
        die("connect");
    chan_t *jobs = remote ? chan_open(cl, "jobs", 16, 0, chan_now() + 5000) : chan_make(16);
    if (!jobs)
        die("open jobs");

    struct worker w = { .jobs = jobs, .done = chan_wg_make() };
    if (!w.done || chan_wg_add(w.done, 1) < 0 || chan_go(work, &w) < 0)
        die("start the worker");
    for (int i = 1; i <= 3; i++) {
        char job[16];
        int len = snprintf(job, sizeof job, "job %d", i);
        if (chan_send(jobs, job, (size_t)len, -1) < 0)
            die("send");
    }
    if (chan_close(jobs) < 0)           /* no more jobs: the worker's loop ends */
        die("close");
    if (chan_wg_wait(w.done, -1) < 0)
        die("wait for the worker");
    printf("%d jobs done\n", w.count);

    chan_wg_free(w.done);
    chan_release(jobs);
    if (cl && chan_delete(cl, "jobs", chan_now() + 5000) < 0)   /* leave nothing behind */
        die("delete jobs");
    chan_disconnect(cl);
    return w.failed || w.count != 3;
}

/*
 * search_replica.c - Example 8's backends as services: one replica of a
 * fake search, in a process of its own.
 *
 * "search-replica --remote web1" serves the chand channel search.web1.  A
 * request is "query\n<reference to a reply channel>"; the replica works a
 * random time up to 100 ms and answers "web1 result for "query"" on the
 * reply channel.  Each request gets its own goroutine, so a slow search
 * never holds up the next request.  Run google --remote --services against
 * a set of them (web1, web2, image1, image2, video1, video2).
 *
 * Notice: the replica knows nothing about who asks; the reference in the
 * request is all it needs to answer, from any process, on any machine that
 * reaches chand.  If the asker has given up and gone, its temporary reply
 * channel is gone too and the answer is simply dropped.
 *
 * --crash-after N makes the replica kill itself (SIGKILL) once it has taken
 * its Nth request: a replica dying mid-request, with earlier requests
 * perhaps unanswered too, for the test that shows the search carrying on
 * with the other replica.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static const char usage[] =
    "usage: search-replica --remote [ADDR] [--crash-after N] [--scale F] NAME\n"
    "Serve the fake search NAME (web1, image2, ...) on the chand channel search.NAME.\n"
    "  --crash-after N   die (SIGKILL) on taking the Nth request, for tests\n";

enum { LATENCY_MS = 100 };

static const char *name;
static chan_wg_t *answering;    /* requests being worked on */

struct request {
    char *msg;
    size_t len;
};

static void answer(void *arg)
{
    struct request *r = arg;
    size_t qlen;
    const char *ref = ex_split(r->msg, r->len, &qlen);
    if (!ref) {
        fprintf(stderr, "%s: a request without a reply channel: dropped\n", name);
    } else {
        ex_pause(LATENCY_MS);                       /* the search itself */
        chan_t *reply = ex_open_ref(ref, (size_t)(r->msg + r->len - ref));
        char out[512];
        int n = snprintf(out, sizeof out, "%s result for \"%.*s\"", name, (int)qlen, r->msg);
        if (!reply || chan_send(reply, out, (size_t)n, chan_now() + EX_SETUP_MS) < 0)
            printf("%s: nobody waits for \"%.*s\" any more (%s)\n", name, (int)qlen, r->msg,
                   strerror(errno));
        chan_release(reply);
    }
    free(r->msg);
    free(r);
    chan_wg_done(answering);
}

/* Die holding a request: long enough after taking it that the asker knows
 * it was taken (libchan acknowledges within a millisecond or so), then
 * SIGKILL, which nothing can catch. */
static void crash(void)
{
    printf("%s: killed mid-request\n", name);
    chan_sleep(chan_now() + 20);
    raise(SIGKILL);
}

int main(int argc, char **argv)
{
    ex_init(&argc, argv, usage);
    long crash_after = ex_number(&argc, argv, "--crash-after", 0, 0, 1000000);
    if (!ex_client) {
        fprintf(stderr, "%s: a replica serves a channel in chand: use --remote\n", ex_prog);
        ex_usage();
    }
    if (argc != 2)
        ex_usage();
    name = argv[1];
    char channel[64];
    snprintf(channel, sizeof channel, "search.%s", name);
    chan_t *requests = ex_open(channel, 0);
    if (!(answering = chan_wg_make()))
        ex_die("chan_wg_make");
    printf("%s: serving %s\n", name, channel);

    for (long served = 1;; served++) {
        struct request *r = ex_alloc(sizeof *r);
        ssize_t n = chan_recv_alloc(requests, (void **)&r->msg, -1);
        if (n < 0) {
            free(r);
            if (errno == EPIPE)
                break;                              /* the channel was closed: done */
            ex_die("receive");
        }
        r->len = (size_t)n;
        const char *nl = memchr(r->msg, '\n', r->len);
        printf("%s: request %ld: %.*s\n", name, served, (int)(nl ? nl - r->msg : n), r->msg);
        if (served == crash_after)
            crash();
        chan_wg_add(answering, 1);
        ex_go(answer, r);
    }
    printf("%s: %s closed, stopping\n", name, channel);
    chan_wg_wait(answering, -1);        /* answer what was taken */
    chan_wg_free(answering);
    chan_release(requests);
    ex_finish();
    return 0;
}

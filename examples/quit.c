/*
 * quit.c - Example 6, "Quit channel", then "Receive on quit channel".
 *
 * Joe talks until told to stop: each message is a select between sending
 * it and receiving on a quit channel.  main listens to a random number of
 * messages (1 to 10), then sends on quit.  With --reply the quit channel
 * goes both ways: Joe cleans up and answers "See you!" before main exits,
 * so main knows Joe has finished.
 *
 * Notice: the same select that sends also listens, so Joe never blocks
 * where main cannot reach him.  Without --reply, main cannot tell whether
 * Joe is done when it exits; with it, the answer is the proof.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

static const char usage[] =
    "usage: quit [--reply] [--remote [ADDR]] [--scale F]\n"
    "Stop a generator with a quit channel; with --reply it cleans up and answers.\n";

struct joe {
    const char *msg;
    chan_t *c, *quit;
    int reply;
};

static void cleanup(const struct joe *j)
{
    printf("%s: cleaning up\n", j->msg);
}

static void joe_loop(void *arg)
{
    struct joe *j = arg;
    for (int i = 0;; i++) {
        ex_pause(1000);
        char line[64], bye[64];
        int n = snprintf(line, sizeof line, "%s %d", j->msg, i);
        chan_case_t cs[2] = { CHAN_CASE_SEND(j->c, line, (size_t)n),
                              CHAN_CASE_RECV(j->quit, bye, sizeof bye) };
        int k = chan_select(cs, 2, -1);
        if (k == 0 && !cs[0].err)
            continue;           /* said it; do nothing else */
        if (k == 1 && !cs[1].err && j->reply) {
            cleanup(j);
            chan_send(j->quit, "See you!", 8, -1);
        }
        break;                  /* quit (or a channel went away) */
    }
    chan_release(j->c);
    chan_release(j->quit);
    free(j);
}

static chan_t *boring(const char *msg, chan_t *quit, int reply)
{
    chan_t *c = ex_make(0);
    struct joe *j = ex_alloc(sizeof *j);
    j->msg = msg;
    j->c = chan_retain(c);
    j->quit = chan_retain(quit);
    j->reply = reply;
    ex_go(joe_loop, j);
    return c;
}

int main(int argc, char **argv)
{
    ex_init(&argc, argv, usage);
    int reply = ex_flag(&argc, argv, "--reply");
    ex_no_more_args(argc, argv);

    chan_t *quit = ex_make(0);
    chan_t *c = boring("Joe", quit, reply);
    for (int64_t i = ex_rand(10); i >= 0; i--) {
        char msg[64];
        ssize_t n = chan_recv(c, msg, sizeof msg, -1);
        if (n < 0)
            ex_die("receive");
        printf("%.*s\n", (int)n, msg);
    }
    if (!reply) {
        if (chan_send(quit, "true", 4, -1) < 0)        /* quit <- true */
            ex_die("send on quit");
        printf("Told Joe to quit.\n");
    } else {
        if (chan_send(quit, "Bye!", 4, -1) < 0)        /* quit <- "Bye!" */
            ex_die("send on quit");
        char answer[64];
        ssize_t n = chan_recv(quit, answer, sizeof answer, -1);
        if (n < 0)
            ex_die("receive on quit");
        printf("Joe says: \"%.*s\"\n", (int)n, answer);
    }

    chan_release(c);
    chan_release(quit);
    ex_finish();
    return 0;
}

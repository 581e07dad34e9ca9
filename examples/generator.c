/*
 * generator.c - Example 1, "Generator: a function that returns a channel".
 *
 * boring("boring!") (talk.c) makes a channel, starts a goroutine that talks
 * on it, and returns the channel.  main receives five messages and leaves.
 *
 * Notice: main and the goroutine share nothing but the channel, and each
 * receive waits until the talker has something to say: an unbuffered
 * channel synchronizes as well as communicates.  With --remote the channel
 * lives in chand and not one line of this file changes.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdio.h>

#include "common.h"
#include "talk.h"

static const char usage[] =
    "usage: generator [--remote [ADDR]] [--scale F]\n"
    "The talk's generator: five messages from boring(\"boring!\"), then main leaves.\n";

int main(int argc, char **argv)
{
    ex_init(&argc, argv, usage);
    ex_no_more_args(argc, argv);

    chan_t *c = boring("boring!", 1000);
    for (int i = 0; i < 5; i++) {
        char msg[64];
        ssize_t n = chan_recv(c, msg, sizeof msg, -1);
        if (n < 0)
            ex_die("receive");
        printf("You say: \"%.*s\"\n", (int)n, msg);
    }
    printf("You're boring; I'm leaving.\n");

    ex_close(c);        /* Go's main just returns; closing lets the talker end too */
    ex_finish();
    return 0;
}

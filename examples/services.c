/*
 * services.c - Example 2, "Channels as a handle on a service".
 *
 * boring() returns a channel that lets us talk to the service it started.
 * Two instances, Joe and Ann, are received from in lockstep: a message from
 * Joe, then one from Ann, five times.
 *
 * Notice: the lockstep is the price of reading the channels in a fixed
 * order.  Ann may be ready first, yet waits for Joe; example 3 (fan-in)
 * lets whoever is ready speak.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdio.h>

#include "common.h"
#include "talk.h"

static const char usage[] =
    "usage: services [--remote [ADDR]] [--scale F]\n"
    "Two generators as services, Joe and Ann, received from in lockstep.\n";

static void say(chan_t *c)
{
    char msg[64];
    ssize_t n = chan_recv(c, msg, sizeof msg, -1);
    if (n < 0)
        ex_die("receive");
    printf("%.*s\n", (int)n, msg);
}

int main(int argc, char **argv)
{
    ex_init(&argc, argv, usage);
    ex_no_more_args(argc, argv);

    chan_t *joe = boring("Joe", 1000);
    chan_t *ann = boring("Ann", 1000);
    for (int i = 0; i < 5; i++) {
        say(joe);       /* Joe first, always: */
        say(ann);       /* Ann waits her turn even if she is ready */
    }
    printf("You're both boring; I'm leaving.\n");

    ex_close(joe);
    ex_close(ann);
    ex_finish();
    return 0;
}

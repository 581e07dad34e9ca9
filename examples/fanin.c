/*
 * fanin.c - Example 3, "Multiplexing": fan-in.
 *
 * fanin(joe, ann) (talk.c) merges two channels into one, with a goroutine
 * per input; fanin_select(joe, ann) does the same with a single goroutine
 * and a select (run with --select).  main receives ten messages from the
 * merged channel.
 *
 * Notice: unlike example 2, whoever is ready speaks first, so Joe and Ann
 * interleave in any order; each one's own messages stay in order.  In the
 * select version a closed input is set to NULL, Go's nil channel: its case
 * is never ready again.  The library's chan_fanin() is the first version.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdio.h>

#include "common.h"
#include "talk.h"

static const char usage[] =
    "usage: fanin [--select] [--remote [ADDR]] [--scale F]\n"
    "Joe and Ann merged into one channel: a goroutine per input, or one select\n"
    "loop with --select.\n";

int main(int argc, char **argv)
{
    ex_init(&argc, argv, usage);
    int use_select = ex_flag(&argc, argv, "--select");
    ex_no_more_args(argc, argv);

    chan_t *joe = boring("Joe", 1000);
    chan_t *ann = boring("Ann", 1000);
    chan_t *inputs[2] = { joe, ann };
    chan_t *c = use_select ? fanin_select(joe, ann) : fanin(inputs, 2);
    for (int i = 0; i < 10; i++) {
        char msg[64];
        ssize_t n = chan_recv(c, msg, sizeof msg, -1);
        if (n < 0)
            ex_die("receive");
        printf("%.*s\n", (int)n, msg);
    }
    printf("You're both boring; I'm leaving.\n");

    ex_close(c);        /* the forwarders' sends fail, */
    ex_close(joe);      /* so do Joe's and Ann's: every goroutine ends */
    ex_close(ann);
    ex_finish();
    return 0;
}

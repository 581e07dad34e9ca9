/*
 * timeout.c - Example 5, "Timeout using select".
 *
 * Joe pauses up to 1.5 s between messages.  By default each receive is a
 * select between Joe and a fresh chan_after(1 s), Go's time.After: a pause
 * over a second ends the conversation, "You're too slow."  With --whole a
 * single timer made before the loop bounds the whole conversation to 5 s:
 * "You talk too much."
 *
 * Notice: a timer is just a channel, so a timeout is one more select case,
 * and with --remote the select mixes Joe's channel in chand with a local
 * timer.  Where the timer is made decides what it times: once per message,
 * or once for the whole loop.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "common.h"
#include "talk.h"

static const char usage[] =
    "usage: timeout [--whole] [--remote [ADDR]] [--scale F]\n"
    "Select with a timeout per message (1 s), or for the whole conversation\n"
    "(5 s) with --whole.\n";

int main(int argc, char **argv)
{
    ex_init(&argc, argv, usage);
    int whole = ex_flag(&argc, argv, "--whole");
    ex_no_more_args(argc, argv);

    chan_t *c = boring("Joe", 1500);
    chan_t *conversation = whole ? ex_after(5000) : NULL;
    for (;;) {
        chan_t *timeout = whole ? chan_retain(conversation) : ex_after(1000);
        char msg[64];
        int64_t fired;
        chan_case_t cs[2] = { CHAN_CASE_RECV(c, msg, sizeof msg),
                              CHAN_CASE_RECV(timeout, &fired, sizeof fired) };
        int i = chan_select(cs, 2, -1);
        chan_release(timeout);              /* a per-message timer is dropped, fired or not */
        if (i >= 0 && cs[i].err)
            errno = cs[i].err, i = -1;      /* Joe's channel closed under us */
        if (i < 0)
            ex_die("select");
        if (i == 1)
            break;
        printf("%.*s\n", (int)cs[0].n, msg);
    }
    printf(whole ? "You talk too much.\n" : "You're too slow.\n");

    chan_release(conversation);
    ex_close(c);
    ex_finish();
    return 0;
}

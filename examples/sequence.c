/*
 * sequence.c - Example 4, "Restoring sequencing".
 *
 * Joe and Ann are fanned in as in example 3, but each message carries a
 * "wait" channel: after sending, a talker blocks on it until main says go.
 * main takes two messages, then lets both talkers go on: they strictly
 * alternate, one Joe and one Ann per round (in either order), each still
 * talking at its own pace.
 *
 * A message is bytes: "Joe 3\n<reference to Joe's wait channel>".  With
 * --remote the reference names a temporary channel in chand, and anyone
 * who can reach chand can answer on it: with --procs as well, Joe and Ann
 * are separate processes (this program, started with --talker) and the
 * waits cross process boundaries.
 *
 * Notice: the wait channel travels inside the message, like a
 * self-addressed envelope; each talker makes one and encloses it in every
 * message.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "talk.h"

static const char usage[] =
    "usage: sequence [--procs] [--remote [ADDR]] [--scale F]\n"
    "Joe and Ann fanned in, each message carrying a wait channel: they alternate.\n"
    "  --procs            Joe and Ann are separate processes (needs --remote)\n"
    "  --talker NAME --to REF   be one such talker, sending to the channel REF\n";

/* One talker: send a message with the wait channel enclosed, pause, and
 * wait to be told to go on.  Ends when its channel is closed or gone. */
static void talk_in_turn(const char *name, chan_t *c)
{
    chan_t *wait = ex_make(0);      /* waitForIt: shared by all this talker's messages */
    for (int i = 0;; i++) {
        char ref[CHAN_REF_MAX], msg[64 + CHAN_REF_MAX];
        size_t len = ex_ref(wait, ref, sizeof ref);
        int n = snprintf(msg, sizeof msg, "%s %d\n%s", name, i, ref);
        if (chan_send(c, msg, (size_t)n, -1) < 0) {
            ex_unref(ref, len);     /* the message was never delivered */
            break;
        }
        ex_pause(2000);
        if (chan_recv(wait, NULL, 0, -1) < 0)   /* <-waitForIt */
            break;
    }
    chan_release(wait);
}

struct talker {
    const char *name;
    chan_t *c;
};

static void talker_goroutine(void *arg)
{
    struct talker *t = arg;
    talk_in_turn(t->name, t->c);
    chan_release(t->c);
    free(t);
}

/* Like boring(): a channel the talker sends to.  With --procs the talker is
 * a child process, given a reference to the channel on its command line. */
static chan_t *talker(const char *name, pid_t *pid)
{
    chan_t *c = ex_make(0);
    if (pid) {
        char ref[CHAN_REF_MAX];
        ex_ref(c, ref, sizeof ref);
        const char *args[] = { "--talker", name, "--to", ref, NULL };
        *pid = ex_spawn(args);
    } else {
        struct talker *t = ex_alloc(sizeof *t);
        t->name = name;
        t->c = chan_retain(c);
        ex_go(talker_goroutine, t);
    }
    return c;
}

/* Receive one message, print its text, and return its wait channel. */
static chan_t *receive(chan_t *c)
{
    char *msg;
    ssize_t n = chan_recv_alloc(c, (void **)&msg, -1);
    if (n < 0)
        ex_die("receive");
    size_t text_len;
    const char *ref = ex_split(msg, (size_t)n, &text_len);
    if (!ref) {
        errno = EPROTO;
        ex_die("a message without a wait channel");
    }
    printf("%.*s\n", (int)text_len, msg);
    chan_t *wait = ex_open_ref(ref, (size_t)(msg + n - ref));
    if (!wait)
        ex_die("opening a wait channel");
    free(msg);
    return wait;
}

/* msg.wait <- true: an empty value is signal enough. */
static void go_on(chan_t *wait)
{
    if (chan_send(wait, NULL, 0, -1) < 0)
        ex_die("send on a wait channel");
    chan_release(wait);
}

static int be_a_talker(const char *name, const char *to)
{
    chan_t *c = ex_open_ref(to, strlen(to));
    if (!c)
        ex_die(to);
    talk_in_turn(name, c);
    chan_release(c);
    ex_finish();
    return 0;
}

int main(int argc, char **argv)
{
    ex_init(&argc, argv, usage);
    int procs = ex_flag(&argc, argv, "--procs");
    const char *name = ex_option(&argc, argv, "--talker", NULL);
    const char *to = ex_option(&argc, argv, "--to", NULL);
    ex_no_more_args(argc, argv);
    if ((procs || name) && !ex_client) {
        fprintf(stderr, "%s: --procs and --talker need --remote\n", ex_prog);
        ex_usage();
    }
    if (name && !to)
        ex_usage();
    if (name)
        return be_a_talker(name, to);

    pid_t pids[2];
    chan_t *inputs[2] = { talker("Joe", procs ? &pids[0] : NULL),
                          talker("Ann", procs ? &pids[1] : NULL) };
    chan_t *c = fanin(inputs, 2);
    for (int i = 0; i < 5; i++) {
        chan_t *wait1 = receive(c);
        chan_t *wait2 = receive(c);
        go_on(wait1);
        go_on(wait2);
    }
    printf("You're all boring; I'm leaving.\n");

    ex_close(c);
    ex_close(inputs[0]);
    ex_close(inputs[1]);
    if (procs) {
        /* A talker may be waiting on a wait channel whose message a
         * forwarder took and dropped: main leaving ends them, as it ends
         * goroutines in Go. */
        ex_stop(pids[0]);
        ex_stop(pids[1]);
    }
    ex_finish();
    return 0;
}

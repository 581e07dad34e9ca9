/*
 * tcp_relay - a TCP relay for the cluster tests: it stands between a chand
 * and the nodes that replicate from it, so that a test can slow the
 * stream down (a copy that takes long enough to act in the middle of it),
 * hold back what the nodes send it (SIGUSR2: replicas' acknowledgements
 * wait in the relay) and cut it (SIGUSR1 closes every connection it
 * relays, dropping what it held back, and holds nothing back from then on).
 *
 *   tcp_relay LISTEN_PORT TARGET_PORT [BYTES_PER_SECOND]
 *
 * Loopback only.  The rate limits what the target sends back, per
 * connection.  Stopped by SIGTERM.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "chan_clock.h"

#define MAX_PAIRS 64
#define BUF 16384

static volatile sig_atomic_t cut, hold;

static void on_usr1(int sig)
{
    (void)sig;
    cut = 1;
}

static void on_usr2(int sig)
{
    (void)sig;
    hold = 1;
}

static double now_s(void)
{
    return (double)chan_mono_ns() / 1e9;
}

struct pair {
    int c, s;           /* client side, target side; -1: free */
    double t0;          /* when it started */
    double down;        /* bytes sent target -> client */
};

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) {
        perror("tcp_relay: listen");
        exit(1);
    }
    return fd;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void pair_close(struct pair *p)
{
    if (p->c >= 0)
        close(p->c);
    if (p->s >= 0)
        close(p->s);
    p->c = p->s = -1;
}

/* Copy what one read gives from -> to (blocking write); -1 at the end. */
static int copy(int from, int to, double *count)
{
    char buf[BUF];
    ssize_t n = read(from, buf, sizeof buf);
    if (n <= 0)
        return -1;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, (size_t)(n - off));
        if (w < 0)
            return -1;
        off += w;
    }
    if (count)
        *count += (double)n;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tcp_relay LISTEN_PORT TARGET_PORT [BYTES_PER_SECOND]\n");
        return 2;
    }
    int lport = atoi(argv[1]), tport = atoi(argv[2]);
    double rate = argc > 3 ? atof(argv[3]) : 0;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = { .sa_handler = on_usr1 };
    sigaction(SIGUSR1, &sa, NULL);
    struct sigaction sa2 = { .sa_handler = on_usr2 };
    sigaction(SIGUSR2, &sa2, NULL);
    int lfd = listen_on(lport);
    struct pair pairs[MAX_PAIRS];
    for (int i = 0; i < MAX_PAIRS; i++)
        pairs[i].c = pairs[i].s = -1;
    for (;;) {
        if (cut) {
            cut = 0;
            hold = 0;
            for (int i = 0; i < MAX_PAIRS; i++)
                pair_close(&pairs[i]);
        }
        struct pollfd pfd[1 + 2 * MAX_PAIRS];
        int idx[1 + 2 * MAX_PAIRS];
        int n = 0;
        pfd[n].fd = lfd;
        pfd[n].events = POLLIN;
        idx[n++] = -1;
        double t = now_s();
        for (int i = 0; i < MAX_PAIRS; i++) {
            struct pair *p = &pairs[i];
            if (p->c < 0)
                continue;
            pfd[n].fd = hold ? -1 : p->c;
            pfd[n].events = POLLIN;
            idx[n++] = i;
            /* the target's side is read only while under the rate */
            int slow = rate > 0 && p->down > rate * (t - p->t0);
            pfd[n].fd = slow ? -1 : p->s;
            pfd[n].events = POLLIN;
            idx[n++] = i;
        }
        if (poll(pfd, (nfds_t)n, 10) < 0) {
            if (errno == EINTR)
                continue;
            perror("tcp_relay: poll");
            return 1;
        }
        if (pfd[0].revents & POLLIN) {
            int c = accept(lfd, NULL, NULL);
            if (c >= 0) {
                int s = dial(tport), i = 0;
                while (i < MAX_PAIRS && pairs[i].c >= 0)
                    i++;
                if (s < 0 || i == MAX_PAIRS) {
                    close(c);
                    if (s >= 0)
                        close(s);
                } else {
                    pairs[i] = (struct pair){ c, s, now_s(), 0 };
                }
            }
        }
        for (int k = 1; k < n; k++) {
            struct pair *p = &pairs[idx[k]];
            if (!pfd[k].revents || p->c < 0 || pfd[k].fd < 0 || (p->c != pfd[k].fd && p->s != pfd[k].fd))
                continue;
            int rc = pfd[k].fd == p->c ? copy(p->c, p->s, NULL) : copy(p->s, p->c, &p->down);
            if (rc < 0)
                pair_close(p);
        }
    }
}

/*
 * loadgen.c - the workloads of chanbench, redisbench and natsbench (see
 * loadgen.h): option parsing, threads, the clock, percentiles and the
 * result line.
 *
 * Every thread connects and attaches before a start barrier, so connection
 * set-up is never timed.  A producer-consumer run is timed from the barrier
 * to the moment the last value is received (by whichever consumer takes
 * it); a round-trip run times each round trip separately, after a warm-up.
 * A watchdog ends a run that makes no progress for --timeout seconds
 * (exit 2), so a scripted comparison never hangs.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#define RECV_POLL_MS 100         /* consumers look at `done` this often */
#define WARMUP_MAX 1000          /* untimed round trips before a latency run */
#define RETRY_US 2000            /* drain: a server still starting is asked this often */

/* ------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------ */

static const char *const mode_names[] = {
    [LG_PRODUCER_CONSUMER] = "producer-consumer",
    [LG_PING_PONG] = "ping-pong",
    [LG_PING] = "ping",
    [LG_TCP] = "tcp",
    [LG_FILL] = "fill",
    [LG_DRAIN] = "drain",
};

static void usage(FILE *f, const char *prog, const lg_backend_t *b)
{
    fprintf(f,
"Usage: %s [OPTION]...\n"
"Load generator for %s, in the style of redis-benchmark.\n"
"\n"
"  -a, --addr ADDR        server address (%s, or\n"
"                         tls://host:port)\n"
"      --tls-ca FILE      with tls://: the CA certificate(s) the server's\n"
"                         certificate must chain to (default: %s)\n"
"      --mode MODE        producer-consumer (default), ping-pong, ping, tcp,\n"
"                         fill (leave the values buffered) or drain (take\n"
"                         what a fill left, from a server still starting)\n"
"  -p, --producers N      producer threads (default 1)\n"
"  -m, --consumers N      consumer threads (default 1)\n"
"  -c, --connections N    connections, threads take them round robin\n"
"                         (default: one per thread%s)\n"
"  -P, --pipeline N       values per send batch (default 256)\n"
"  -r, --recv-max N       most values per receive (default: --pipeline)\n"
"  -s, --size BYTES       bytes per value (default 64)\n"
"  -n, --count N          values to move, or round trips to time\n"
"                         (default 2000000, or 20000 for round trips)\n"
"  -C, --cap N            channel capacity (chand; default 65536, or 1 for\n"
"                         ping-pong; 0 is unbuffered)\n"
"      --multi-push       Redis: push a batch with one variadic RPUSH instead\n"
"                         of a pipeline of single-value RPUSHes\n"
"      --prefix NAME      channel/key names start with NAME (default: unique;\n"
"                         fill and drain need it)\n"
"      --since NS         drain: report times from this CLOCK_REALTIME instant\n"
"                         in ns (`date +%%s%%N` before the server started)\n"
"      --await-len        drain: first wait until the channel holds N values\n"
"      --timeout S        give up after S seconds (default 120; exit 2)\n"
"      --samples FILE     ping-pong, ping, tcp: write every timed round trip\n"
"                         to FILE, in µs, one a line, in the order they ran\n"
"  -h, --help             this help\n"
"\n"
"One result line of key=value pairs goes to stdout.  Exit status: 0 done,\n"
"1 error or failed check, 2 timeout, 64 usage.\n",
            prog, b->name,
            b->shared_conns ? "host:port or unix:/path" : "host:port",
            b->shared_conns ? "$CHAN_TLS_CA, then the system's" : "the system's",
            b->shared_conns ? "" : "; must be one per thread");
    if (b->usage_notes)
        fprintf(f, "\n%s\n", b->usage_notes);
}

long long lg_num_arg(const char *prog, const char *opt, const char *s, long long min)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min) {
        fprintf(stderr, "%s: bad value for %s: %s\n", prog, opt, s);
        exit(64);
    }
    return v;
}

void lg_parse(lg_opts_t *o, int argc, char **argv, const lg_backend_t *b)
{
    static const struct option longopts[] = {
        { "addr", required_argument, NULL, 'a' },
        { "mode", required_argument, NULL, 'M' },
        { "producers", required_argument, NULL, 'p' },
        { "consumers", required_argument, NULL, 'm' },
        { "connections", required_argument, NULL, 'c' },
        { "pipeline", required_argument, NULL, 'P' },
        { "recv-max", required_argument, NULL, 'r' },
        { "size", required_argument, NULL, 's' },
        { "count", required_argument, NULL, 'n' },
        { "cap", required_argument, NULL, 'C' },
        { "multi-push", no_argument, NULL, 'U' },
        { "prefix", required_argument, NULL, 'X' },
        { "timeout", required_argument, NULL, 'T' },
        { "since", required_argument, NULL, 'S' },
        { "await-len", no_argument, NULL, 'L' },
        { "tls-ca", required_argument, NULL, 'A' },
        { "samples", required_argument, NULL, 'W' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *prog = argv[0];
    memset(o, 0, sizeof *o);
    o->mode = LG_PRODUCER_CONSUMER;
    o->producers = o->consumers = 1;
    o->pipeline = 256;
    o->size = 64;
    o->cap = -2;   /* not given */
    o->timeout_s = 120;
    long long count = 0;
    int c;
    while ((c = getopt_long(argc, argv, "a:p:m:c:P:r:s:n:C:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a': o->addr = optarg; break;
        case 'M': {
            size_t i;
            for (i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++)
                if (!strcmp(optarg, mode_names[i]))
                    break;
            if (i == sizeof mode_names / sizeof mode_names[0]) {
                fprintf(stderr, "%s: unknown mode %s\n", prog, optarg);
                exit(64);
            }
            o->mode = (enum lg_mode)i;
            break;
        }
        case 'p': o->producers = (int)lg_num_arg(prog, "--producers", optarg, 1); break;
        case 'm': o->consumers = (int)lg_num_arg(prog, "--consumers", optarg, 1); break;
        case 'c': o->connections = (int)lg_num_arg(prog, "--connections", optarg, 1); break;
        case 'P': o->pipeline = (size_t)lg_num_arg(prog, "--pipeline", optarg, 1); break;
        case 'r': o->recv_max = (size_t)lg_num_arg(prog, "--recv-max", optarg, 1); break;
        case 's': o->size = (size_t)lg_num_arg(prog, "--size", optarg, 1); break;
        case 'n': count = lg_num_arg(prog, "--count", optarg, 1); break;
        case 'C': o->cap = (long)lg_num_arg(prog, "--cap", optarg, 0); break;
        case 'U': o->multi_push = 1; break;
        case 'X':
            snprintf(o->prefix, sizeof o->prefix, "%s", optarg);
            o->prefix_given = 1;
            break;
        case 'T': o->timeout_s = (int)lg_num_arg(prog, "--timeout", optarg, 1); break;
        case 'S': o->since_ns = (int64_t)lg_num_arg(prog, "--since", optarg, 1); break;
        case 'L': o->await_len = 1; break;
        case 'A': o->tls_ca = optarg; break;
        case 'W': o->samples = optarg; break;
        case 'h': usage(stdout, prog, b); exit(0);
        default: usage(stderr, prog, b); exit(64);
        }
    }
    if (optind < argc) {
        usage(stderr, prog, b);
        exit(64);
    }
    if (b->no_modes & (1u << o->mode)) {
        fprintf(stderr, "%s: --mode %s is not supported by %s (see --help)\n", prog,
                mode_names[o->mode], b->name);
        exit(64);
    }
    if ((o->mode == LG_FILL || o->mode == LG_DRAIN) && !o->prefix_given) {
        fprintf(stderr, "%s: --mode %s needs --prefix (the same for the fill and the drain)\n",
                prog, mode_names[o->mode]);
        exit(64);
    }
    if (o->mode == LG_DRAIN)
        o->consumers = 1;
    bool round_trips = o->mode == LG_PING_PONG || o->mode == LG_PING || o->mode == LG_TCP;
    if (o->samples && !round_trips) {
        fprintf(stderr, "%s: --samples is for round trips (ping-pong, ping, tcp)\n", prog);
        exit(64);
    }
    o->count = count ? (uint64_t)count : round_trips ? 20000 : 2000000;
    if (!o->recv_max)
        o->recv_max = o->pipeline;
    if (o->cap == -2)
        o->cap = o->mode == LG_PING_PONG ? 1 : 65536;
    if (!o->prefix[0])
        snprintf(o->prefix, sizeof o->prefix, "bench.%ld.%llu", (long)getpid(),
                 (unsigned long long)(chan_mono_ns() / 1000));
}

/* ------------------------------------------------------------------------
 * Shared run state
 * ------------------------------------------------------------------------ */

typedef struct run {
    const lg_opts_t *o;
    const lg_backend_t *b;
    pthread_barrier_t start;
    _Atomic uint64_t received;    /* values taken by all consumers */
    _Atomic uint64_t seq_sum;     /* sum of their sequence numbers */
    _Atomic int done;             /* stop: the work is done or failed */
    _Atomic int failed;
    _Atomic uint64_t progress;    /* bumped by every operation (watchdog) */
    uint64_t t_end;               /* ns, set by the consumer of the last value */
    _Atomic uint64_t sent;        /* values the producers have sent */
    _Atomic int producers_left;   /* fill: the last one to finish sets t_end */
    _Atomic uint64_t t_first;     /* ns, when the first value was received */
    int *quiet;                   /* drain: the backends' quiet flag, cleared by
                                     the consumer once the first value is in */
    _Atomic int drain_step;       /* drain: what it waits for (drain_steps) */
} run_t;

static const char *const drain_steps[] = {
    "", "connecting", "waiting for the channel's length", "opening the channel",
    "receiving",
};

typedef struct worker {
    run_t *run;
    pthread_t tid;
    void *conn;
    void *h, *h2;                 /* attached channels */
    uint64_t first, n;            /* producer: sequence numbers [first, first+n) */
    uint64_t *lat;                /* round trips: latencies in ns */
} worker_t;

static void fail(run_t *r, const char *what)
{
    fprintf(stderr, "%s: %s failed\n", r->b->name, what);
    atomic_store(&r->failed, 1);
    atomic_store(&r->done, 1);
}

/* Exit 2 if the run stops moving for the timeout. */
static void *watchdog_main(void *arg)
{
    run_t *r = arg;
    uint64_t last = UINT64_MAX;
    for (;;) {
        sleep((unsigned)r->o->timeout_s);
        uint64_t now = atomic_load(&r->progress);
        if (now == last) {
            int step = atomic_load(&r->drain_step);
            fprintf(stderr, "%s: no progress for %d s%s%s; giving up\n", r->b->name,
                    r->o->timeout_s, step ? " while " : "", drain_steps[step]);
            fflush(stderr);
            _exit(2);
        }
        last = now;
    }
    return NULL;
}

/* ------------------------------------------------------------------------
 * producer-consumer
 * ------------------------------------------------------------------------ */

static void *producer_main(void *arg)
{
    worker_t *w = arg;
    run_t *r = w->run;
    size_t batch = r->o->pipeline, size = r->o->size;
    uint8_t *mem = calloc(batch, size);
    lg_val_t *vals = calloc(batch, sizeof *vals);
    if (!mem || !vals) {
        fail(r, "malloc");
        pthread_barrier_wait(&r->start);
        free(mem);
        free(vals);
        return NULL;
    }
    /* pseudo-random bytes (xorshift64), so that no log or snapshot can
     * compress the values; the sequence number goes over the first 8 */
    uint64_t x = 0x9E3779B97F4A7C15u + w->first;
    for (size_t j = 0; j < batch * size; j++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        mem[j] = (uint8_t)(x >> 24);
    }
    for (size_t i = 0; i < batch; i++) {
        vals[i].data = mem + i * size;
        vals[i].len = size;
    }
    pthread_barrier_wait(&r->start);
    uint64_t seq = w->first, end = w->first + w->n;
    while (seq < end && !atomic_load_explicit(&r->done, memory_order_relaxed)) {
        size_t k = end - seq < batch ? (size_t)(end - seq) : batch;
        if (size >= sizeof seq)
            for (size_t i = 0; i < k; i++) {
                uint64_t s = seq + i;
                memcpy(vals[i].data, &s, sizeof s);
            }
        if (r->b->send(w->h, vals, k) < 0) {
            fail(r, "send");
            break;
        }
        seq += k;
        atomic_fetch_add(&r->sent, (uint64_t)k);
        atomic_fetch_add_explicit(&r->progress, 1, memory_order_relaxed);
    }
    if (r->o->mode == LG_FILL && atomic_fetch_sub(&r->producers_left, 1) == 1)
        r->t_end = chan_mono_ns();
    free(mem);
    free(vals);
    return NULL;
}

static void *consumer_main(void *arg)
{
    worker_t *w = arg;
    run_t *r = w->run;
    const lg_opts_t *o = r->o;
    lg_val_t *vals = calloc(o->recv_max, sizeof *vals);
    if (!vals)
        fail(r, "malloc");
    pthread_barrier_wait(&r->start);
    uint64_t sum = 0;
    while (vals && !atomic_load_explicit(&r->done, memory_order_relaxed)) {
        ssize_t n = r->b->recv(w->h, vals, o->recv_max, RECV_POLL_MS);
        if (n < 0 && r->quiet && *r->quiet) {
            usleep(RETRY_US);   /* drain: the server may not serve yet */
            continue;
        }
        if (n < 0) {
            fail(r, "receive");
            break;
        }
        if (n == 0)
            continue;
        if (atomic_load_explicit(&r->t_first, memory_order_relaxed) == 0) {
            uint64_t zero = 0;
            atomic_compare_exchange_strong(&r->t_first, &zero, chan_mono_ns());
            if (r->quiet)
                *r->quiet = 0;   /* from now on a failure is one */
        }
        for (ssize_t i = 0; i < n; i++) {
            uint64_t s = 0;
            if (vals[i].len >= sizeof s)
                memcpy(&s, vals[i].data, sizeof s);
            sum += s;
        }
        r->b->release(w->h, vals, (size_t)n);
        uint64_t total = atomic_fetch_add(&r->received, (uint64_t)n) + (uint64_t)n;
        atomic_fetch_add_explicit(&r->progress, 1, memory_order_relaxed);
        if (total >= o->count && total - (uint64_t)n < o->count) {
            r->t_end = chan_mono_ns();
            atomic_store(&r->done, 1);
        }
    }
    atomic_fetch_add(&r->seq_sum, sum);
    free(vals);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Round trips: ping-pong between two clients, ping, raw TCP
 * ------------------------------------------------------------------------ */

static void *requester_main(void *arg)
{
    worker_t *w = arg;
    run_t *r = w->run;
    const lg_opts_t *o = r->o;
    uint8_t *buf = calloc(1, o->size);
    lg_val_t out = { buf, o->size }, in;
    uint64_t warm = o->count / 10 < WARMUP_MAX ? o->count / 10 : WARMUP_MAX;
    pthread_barrier_wait(&r->start);
    for (uint64_t i = 0; buf && i < warm + o->count && !atomic_load(&r->done); i++) {
        uint64_t t0 = chan_mono_ns();
        if (o->size >= sizeof i)
            memcpy(buf, &i, sizeof i);
        if (r->b->send(w->h, &out, 1) < 0) {
            fail(r, "request send");
            break;
        }
        ssize_t n;
        while ((n = r->b->recv(w->h2, &in, 1, 1000)) == 0)
            ;
        if (n < 0 || in.len != o->size || memcmp(in.data, buf, o->size)) {
            if (n > 0)
                r->b->release(w->h2, &in, 1);
            fail(r, n < 0 ? "reply receive" : "reply check");
            break;
        }
        r->b->release(w->h2, &in, 1);
        uint64_t t1 = chan_mono_ns();
        if (i >= warm)
            w->lat[i - warm] = t1 - t0;
        atomic_fetch_add_explicit(&r->progress, 1, memory_order_relaxed);
    }
    r->t_end = chan_mono_ns();
    lg_val_t stop = { buf, 0 };   /* an empty request ends the responder */
    if (!atomic_load(&r->failed) && r->b->send(w->h, &stop, 1) < 0)
        fail(r, "stop send");
    atomic_store(&r->done, 1);
    free(buf);
    return NULL;
}

static void *responder_main(void *arg)
{
    worker_t *w = arg;
    run_t *r = w->run;
    lg_val_t v;
    pthread_barrier_wait(&r->start);
    for (;;) {
        ssize_t n = r->b->recv(w->h, &v, 1, 1000);
        if (n < 0) {
            fail(r, "request receive");
            break;
        }
        if (n == 0) {
            if (atomic_load(&r->failed))
                break;
            continue;
        }
        bool stop = v.len == 0;
        int rc = stop ? 0 : r->b->send(w->h2, &v, 1);
        r->b->release(w->h, &v, 1);
        if (stop)
            break;
        if (rc < 0) {
            fail(r, "reply send");
            break;
        }
    }
    return NULL;
}

static void *pinger_main(void *arg)
{
    worker_t *w = arg;
    run_t *r = w->run;
    uint64_t warm = r->o->count / 10 < WARMUP_MAX ? r->o->count / 10 : WARMUP_MAX;
    pthread_barrier_wait(&r->start);
    for (uint64_t i = 0; i < warm + r->o->count; i++) {
        uint64_t t0 = chan_mono_ns();
        if (r->b->ping(w->conn) < 0) {
            fail(r, "ping");
            break;
        }
        if (i >= warm)
            w->lat[i - warm] = chan_mono_ns() - t0;
        atomic_fetch_add_explicit(&r->progress, 1, memory_order_relaxed);
    }
    r->t_end = chan_mono_ns();
    return NULL;
}

/* Read or write exactly n bytes on a blocking socket: 0, or -1. */
static int full_io(int fd, void *buf, size_t n, bool out)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t k = out ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

struct echo {
    int fd;
    size_t size;
};

static void *echo_main(void *arg)
{
    struct echo *e = arg;
    uint8_t *buf = malloc(e->size);
    while (buf && full_io(e->fd, buf, e->size, false) == 0 &&
           full_io(e->fd, buf, e->size, true) == 0)
        ;
    free(buf);
    return NULL;
}

/* A connected pair of loopback TCP sockets: 0, or -1. */
static int tcp_pair(int fds[2])
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&sa, &len) < 0)
        goto fail;
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&sa, sizeof sa) < 0)
        goto fail;
    fds[1] = accept(l, NULL, NULL);
    if (fds[1] < 0)
        goto fail;
    close(l);
    setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
fail:
    perror("tcp loopback pair");
    if (l >= 0)
        close(l);
    return -1;
}

static void *tcp_client_main(void *arg)
{
    worker_t *w = arg;
    run_t *r = w->run;
    int fd = *(int *)w->conn;
    uint8_t *buf = calloc(1, r->o->size);
    uint64_t warm = r->o->count / 10 < WARMUP_MAX ? r->o->count / 10 : WARMUP_MAX;
    pthread_barrier_wait(&r->start);
    for (uint64_t i = 0; buf && i < warm + r->o->count; i++) {
        uint64_t t0 = chan_mono_ns();
        if (full_io(fd, buf, r->o->size, true) < 0 || full_io(fd, buf, r->o->size, false) < 0) {
            fail(r, "tcp echo");
            break;
        }
        if (i >= warm)
            w->lat[i - warm] = chan_mono_ns() - t0;
        atomic_fetch_add_explicit(&r->progress, 1, memory_order_relaxed);
    }
    r->t_end = chan_mono_ns();
    shutdown(fd, SHUT_WR);   /* the echo thread sees EOF */
    free(buf);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Results
 * ------------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void lg_sort_u64(uint64_t *v, uint64_t n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
}

double lg_pct_us(const uint64_t *v, uint64_t n, double p)
{
    uint64_t rank = (uint64_t)(p * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)v[rank - 1] / 1000.0;
}

/* " tls=yes" in the result line of a run over TLS (a tls:// address). */
static const char *tls_tag(const lg_opts_t *o)
{
    return o->addr && !strncmp(o->addr, "tls://", 6) ? " tls=yes" : "";
}

/* --samples: every timed round trip, in µs, one a line, in the order they
 * ran (before print_latency sorts them): 0, or -1 (said on stderr). */
static int write_samples(const lg_opts_t *o, const lg_backend_t *b, const uint64_t *lat)
{
    FILE *f = fopen(o->samples, "w");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", b->name, o->samples, strerror(errno));
        return -1;
    }
    for (uint64_t i = 0; i < o->count; i++)
        fprintf(f, "%.3f\n", (double)lat[i] / 1000.0);
    if (ferror(f) | fclose(f)) {
        fprintf(stderr, "%s: writing %s failed\n", b->name, o->samples);
        return -1;
    }
    return 0;
}

static void print_latency(const lg_opts_t *o, const lg_backend_t *b, uint64_t *lat, int conns,
                          double secs)
{
    lg_sort_u64(lat, o->count);
    double sum = 0;
    for (uint64_t i = 0; i < o->count; i++)
        sum += (double)lat[i];
    printf("backend=%s%s mode=%s connections=%d size=%zu", b->name, tls_tag(o),
           mode_names[o->mode], conns, o->size);
    if (o->mode == LG_PING_PONG && b->fields)
        b->fields(o);
    printf(" count=%llu secs=%.3f rtt_mean_us=%.1f rtt_p50_us=%.1f rtt_p99_us=%.1f"
           " rtt_p999_us=%.1f rtt_max_us=%.1f\n",
           (unsigned long long)o->count, secs, sum / (double)o->count / 1000.0,
           lg_pct_us(lat, o->count, 0.50), lg_pct_us(lat, o->count, 0.99),
           lg_pct_us(lat, o->count, 0.999),
           (double)lat[o->count - 1] / 1000.0);
}

static void print_throughput(const lg_opts_t *o, const lg_backend_t *b, run_t *r, int conns,
                             double secs)
{
    bool fill = o->mode == LG_FILL;
    uint64_t got = fill ? atomic_load(&r->sent) : atomic_load(&r->received);
    bool exact = got == o->count;
    bool sums = fill || o->size < 8 ||
                atomic_load(&r->seq_sum) == (o->count * (o->count - 1)) / 2;
    printf("backend=%s%s mode=%s producers=%d consumers=%d connections=%d pipeline=%zu"
           " recv_max=%zu size=%zu", b->name, tls_tag(o), mode_names[o->mode], o->producers,
           fill ? 0 : o->consumers, conns, o->pipeline, o->recv_max, o->size);
    if (b->fields)
        b->fields(o);
    printf(" count=%llu %s=%llu secs=%.3f values_per_s=%.0f check=%s\n",
           (unsigned long long)o->count, fill ? "sent" : "received", (unsigned long long)got,
           secs, (double)got / secs, exact && sums ? "ok" : "FAILED");
}

/* drain: milliseconds from the origin (--since, or the start) to each step. */
static void print_drain(const lg_opts_t *o, const lg_backend_t *b, run_t *r, uint64_t origin,
                        uint64_t t_conn, uint64_t t_len)
{
    uint64_t got = atomic_load(&r->received);
    bool sums = o->size < 8 || atomic_load(&r->seq_sum) == (o->count * (o->count - 1)) / 2;
#define MS(t) ((double)((t) - origin) / 1e6)
    printf("backend=%s mode=drain size=%zu recv_max=%zu count=%llu received=%llu from=%s"
           " connect_ms=%.1f", b->name, o->size, o->recv_max, (unsigned long long)o->count,
           (unsigned long long)got, o->since_ns ? "since" : "start", MS(t_conn));
    if (o->await_len)
        printf(" len_ms=%.1f", MS(t_len));
    printf(" first_ms=%.1f all_ms=%.1f values_per_s=%.0f check=%s\n",
           MS(atomic_load(&r->t_first)), MS(r->t_end),
           (double)got / ((double)(r->t_end - atomic_load(&r->t_first)) / 1e9),
           got == o->count && sums ? "ok" : "FAILED");
#undef MS
}

/* ------------------------------------------------------------------------
 * The run
 * ------------------------------------------------------------------------ */

/* The instant --since names, on the monotonic clock (now if none). */
static uint64_t origin_ns(const lg_opts_t *o)
{
    uint64_t mono = chan_mono_ns();
    if (!o->since_ns)
        return mono;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ago = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - o->since_ns;
    return ago > 0 && (uint64_t)ago < mono ? mono - (uint64_t)ago : mono;
}

/* drain: connect to a server that may still be starting, then wait until
 * the channel holds o->count values (--await-len), then open it; each step
 * retried quietly (the watchdog ends a server that never comes).  Sets
 * *conn, *h, *t_conn, *t_len. */
static void drain_open(const lg_opts_t *quiet, const lg_backend_t *b, run_t *r, const char *name,
                       void **conn, void **h, uint64_t *t_conn, uint64_t *t_len)
{
    atomic_store(&r->drain_step, 1);
    while (!(*conn = b->connect(quiet)))
        usleep(RETRY_US);
    *t_conn = *t_len = chan_mono_ns();
    if (quiet->await_len) {
        atomic_store(&r->drain_step, 2);
        int64_t len;
        while ((len = b->length(*conn, name)) < (int64_t)quiet->count)
            usleep(RETRY_US);
        *t_len = chan_mono_ns();
    }
    atomic_fetch_add(&r->progress, 1);
    atomic_store(&r->drain_step, 3);
    while (!(*h = b->attach(*conn, name, LG_RECV, quiet)))
        usleep(RETRY_US);
    atomic_store(&r->drain_step, 4);
}

/* Connect `n` connections into conns[]; 0, or -1 (the made ones closed). */
static int connect_all(const lg_opts_t *o, const lg_backend_t *b, void **conns, int n)
{
    for (int i = 0; i < n; i++) {
        if (!(conns[i] = b->connect(o))) {
            while (i-- > 0)
                b->disconnect(conns[i]);
            return -1;
        }
    }
    return 0;
}

static int run_tcp(const lg_opts_t *o, const lg_backend_t *b, run_t *r)
{
    int fds[2];
    if (tcp_pair(fds) < 0)
        return 1;
    struct echo e = { fds[1], o->size };
    worker_t w = { .run = r, .conn = &fds[0] };
    w.lat = calloc(o->count, sizeof *w.lat);
    pthread_t echo;
    pthread_create(&echo, NULL, echo_main, &e);
    pthread_create(&w.tid, NULL, tcp_client_main, &w);
    pthread_barrier_wait(&r->start);
    uint64_t t0 = chan_mono_ns();
    pthread_join(w.tid, NULL);
    pthread_join(echo, NULL);
    close(fds[0]);
    close(fds[1]);
    int rc = atomic_load(&r->failed);
    if (!rc && o->samples)
        rc = write_samples(o, b, w.lat) < 0;
    if (!rc)
        print_latency(o, b, w.lat, 1, (double)(r->t_end - t0) / 1e9);
    free(w.lat);
    return rc;
}

int lg_run(const lg_opts_t *o, const lg_backend_t *b)
{
    uint64_t origin = origin_ns(o);
    run_t r = { .o = o, .b = b };
    pthread_t dog;
    pthread_create(&dog, NULL, watchdog_main, &r);
    pthread_detach(dog);

    bool fill = o->mode == LG_FILL, drain = o->mode == LG_DRAIN;
    bool values = o->mode == LG_PRODUCER_CONSUMER || fill || drain;
    int nprod = o->mode == LG_PRODUCER_CONSUMER || fill ? o->producers : 0;
    int ncons = o->mode == LG_PRODUCER_CONSUMER || drain ? o->consumers : 0;
    int nthreads = values ? nprod + ncons : o->mode == LG_PING_PONG ? 2 : 1;
    atomic_store(&r.producers_left, nprod);
    pthread_barrier_init(&r.start, NULL, (unsigned)nthreads + 1);
    if (o->mode == LG_TCP)
        return run_tcp(o, b, &r);

    int nconns = o->connections ? o->connections : nthreads;
    if (nconns > nthreads)
        nconns = nthreads;
    if (nconns < nthreads && !b->shared_conns) {
        fprintf(stderr, "%s: one connection per thread (%d) is needed\n", b->name, nthreads);
        return 1;
    }
    char q[128], req[128], rep[128];
    snprintf(q, sizeof q, "%s.q", o->prefix);
    snprintf(req, sizeof req, "%s.req", o->prefix);
    snprintf(rep, sizeof rep, "%s.rep", o->prefix);
    const char *pc_names[] = { q }, *pp_names[] = { req, rep };
    const char *const *names = o->mode == LG_PING_PONG ? pp_names : pc_names;
    size_t nnames = o->mode == LG_PING_PONG ? 2 : o->mode == LG_PING ? 0 : 1;

    /* a drain takes the channel a fill made and left */
    if (nnames && !drain && b->setup(o, names, nnames) < 0)
        return 1;
    void **conns = calloc((size_t)nconns, sizeof *conns);
    worker_t *w = calloc((size_t)nthreads, sizeof *w);
    lg_opts_t quiet = *o;   /* drain: the backends' options while the server starts */
    quiet.quiet = 1;
    uint64_t t_conn = 0, t_len = 0;
    int rc = 1;
    if (!conns || !w)
        goto out;
    if (drain) {
        r.quiet = &quiet.quiet;
        drain_open(&quiet, b, &r, q, &conns[0], &w[0].h, &t_conn, &t_len);
    } else if (connect_all(o, b, conns, nconns) < 0) {
        goto out;
    }
    for (int i = 0; i < nthreads; i++) {
        w[i].run = &r;
        w[i].conn = conns[i % nconns];
    }

    void *(*fn[2])(void *) = { NULL, NULL };
    bool ok = true;
    if (values) {
        fn[0] = producer_main;
        fn[1] = consumer_main;
        uint64_t per = nprod ? o->count / (uint64_t)nprod : 0;
        uint64_t extra = nprod ? o->count % (uint64_t)nprod : 0;
        uint64_t next = 0;
        for (int i = 0; i < nthreads && ok; i++) {
            if (!w[i].h)
                ok = (w[i].h = b->attach(w[i].conn, q, i < nprod ? LG_SEND : LG_RECV, o)) != NULL;
            if (i < nprod) {
                w[i].first = next;
                w[i].n = per + ((uint64_t)i < extra);
                next += w[i].n;
            }
        }
    } else if (o->mode == LG_PING_PONG) {
        fn[0] = requester_main;
        fn[1] = responder_main;
        /* requester: sends req, receives rep; responder the other way */
        ok = (w[0].h = b->attach(w[0].conn, req, LG_SEND, o)) &&
             (w[0].h2 = b->attach(w[0].conn, rep, LG_RECV, o)) &&
             (w[1].h = b->attach(w[1].conn, req, LG_RECV, o)) &&
             (w[1].h2 = b->attach(w[1].conn, rep, LG_SEND, o));
        w[0].lat = calloc(o->count, sizeof *w[0].lat);
        ok = ok && w[0].lat;
    } else {
        fn[0] = pinger_main;
        w[0].lat = calloc(o->count, sizeof *w[0].lat);
        ok = w[0].lat != NULL;
    }
    if (!ok) {
        fprintf(stderr, "%s: cannot attach to the channels\n", b->name);
        goto detach;
    }
    int first_kind1 = values ? nprod : 1;
    for (int i = 0; i < nthreads; i++)
        pthread_create(&w[i].tid, NULL, fn[i >= first_kind1], &w[i]);
    pthread_barrier_wait(&r.start);
    uint64_t t0 = chan_mono_ns();
    for (int i = 0; i < nthreads; i++)
        pthread_join(w[i].tid, NULL);
    double secs = (double)(r.t_end - t0) / 1e9;
    rc = atomic_load(&r.failed);
    if (!rc && drain) {
        print_drain(o, b, &r, origin, t_conn, t_len);
        rc = atomic_load(&r.received) != o->count;
    } else if (!rc && values) {
        print_throughput(o, b, &r, nconns, secs);
        rc = (fill ? atomic_load(&r.sent) : atomic_load(&r.received)) != o->count;
    } else if (!rc) {
        rc = o->samples && write_samples(o, b, w[0].lat) < 0;
        if (!rc)
            print_latency(o, b, w[0].lat, nconns, secs);
    }
detach:
    for (int i = 0; i < nthreads; i++) {
        if (w[i].h)
            b->detach(w[i].h);
        if (w[i].h2)
            b->detach(w[i].h2);
        free(w[i].lat);
    }
    for (int i = 0; i < nconns; i++)
        if (conns[i])
            b->disconnect(conns[i]);
out:
    /* a fill leaves its values for the drain */
    if (nnames && !fill)
        b->teardown(o, names, nnames);
    free(conns);
    free(w);
    fflush(stdout);
    return rc ? 1 : 0;
}

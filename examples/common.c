/*
 * common.c - the examples' shared plumbing: options, channels made locally
 * or in chand, references to channels inside messages, scaled time, and
 * helper processes.  See common.h.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

const char *ex_prog = "example";
chan_client_t *ex_client;
const char *ex_addr;
double ex_scale = 1.0;

static const char *usage_text;
static int want_remote;
static _Atomic uint64_t rng_state;

/* ---- options ---- */

void ex_usage(void)
{
    fputs(usage_text, stderr);
    fputs("common options:\n"
          "  --remote [ADDR]  channels live in chand at ADDR ($CHAN_ADDR, then " CHAN_DEFAULT_ADDR ")\n"
          "  --scale F        multiply every pause and timeout by F ($CHAN_EXAMPLES_SCALE)\n",
          stderr);
    exit(2);
}

static void drop_args(int *argc, char **argv, int at, int count)
{
    for (int i = at; i + count <= *argc; i++)
        argv[i] = argv[i + count];
    *argc -= count;
}

int ex_flag(int *argc, char **argv, const char *flag)
{
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], flag) == 0) {
            drop_args(argc, argv, i, 1);
            return 1;
        }
    }
    return 0;
}

const char *ex_option(int *argc, char **argv, const char *opt, const char *def)
{
    size_t len = strlen(opt);
    for (int i = 1; i < *argc; i++) {
        if (strncmp(argv[i], opt, len) != 0)
            continue;
        if (argv[i][len] == '=') {
            const char *v = argv[i] + len + 1;
            drop_args(argc, argv, i, 1);
            return v;
        }
        if (argv[i][len] != 0)
            continue;
        if (i + 1 >= *argc) {
            fprintf(stderr, "%s: %s needs a value\n", ex_prog, opt);
            ex_usage();
        }
        const char *v = argv[i + 1];
        drop_args(argc, argv, i, 2);
        return v;
    }
    return def;
}

long ex_number(int *argc, char **argv, const char *opt, long def, long min, long max)
{
    const char *s = ex_option(argc, argv, opt, NULL);
    if (!s)
        return def;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "%s: %s wants a number from %ld to %ld, not '%s'\n", ex_prog, opt, min,
                max, s);
        ex_usage();
    }
    return v;
}

void ex_no_more_args(int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", ex_prog, argv[1]);
        ex_usage();
    }
}

/* --remote takes the next argument as its address only if it looks like
 * one (host:port, [v6]:port, unix:/path), so "--remote web1" stays a flag
 * followed by an argument. */
static void take_remote(int *argc, char **argv)
{
    for (int i = 1; i < *argc; i++) {
        if (strncmp(argv[i], "--remote=", 9) == 0) {
            ex_addr = argv[i] + 9;
            drop_args(argc, argv, i, 1);
        } else if (strcmp(argv[i], "--remote") == 0) {
            int has_addr = i + 1 < *argc && strchr(argv[i + 1], ':') && argv[i + 1][0] != '-';
            if (has_addr)
                ex_addr = argv[i + 1];
            drop_args(argc, argv, i, has_addr ? 2 : 1);
        } else {
            continue;
        }
        want_remote = 1;
        i--;
    }
}

static double parse_scale(const char *s)
{
    char *end;
    double f = strtod(s, &end);
    if (end == s || *end || !(f >= 0 && f <= 1000)) {
        fprintf(stderr, "%s: the scale is a number from 0 to 1000, not '%s'\n", ex_prog, s);
        ex_usage();
    }
    return f;
}

void ex_init(int *argc, char **argv, const char *usage)
{
    const char *slash = strrchr(argv[0], '/');
    ex_prog = slash ? slash + 1 : argv[0];
    usage_text = usage;
    setvbuf(stdout, NULL, _IOLBF, 0);       /* lines appear as they happen, in pipes too */
    if (ex_flag(argc, argv, "--help") || ex_flag(argc, argv, "-h")) {
        fputs(usage, stdout);
        exit(0);
    }
    const char *env = getenv("CHAN_EXAMPLES_SCALE");
    const char *scale = ex_option(argc, argv, "--scale", env && *env ? env : NULL);
    if (scale)
        ex_scale = parse_scale(scale);
    take_remote(argc, argv);
    if (want_remote) {
        ex_client = chan_connect(ex_addr, NULL, chan_now() + EX_SETUP_MS);
        if (!ex_client)
            ex_die(ex_addr ? ex_addr : "connecting to chand");
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    atomic_store(&rng_state, (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                                 ((uint64_t)getpid() << 40));
}

void ex_die(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", ex_prog, what, strerror(errno));
    exit(1);
}

void ex_finish(void)
{
    chan_disconnect(ex_client);
    ex_client = NULL;
}

/* ---- channels ---- */

chan_t *ex_make(long cap)
{
    chan_t *ch = ex_client ? chan_open_temp(ex_client, cap, chan_now() + EX_SETUP_MS)
                           : chan_make((size_t)cap);
    if (!ch)
        ex_die(ex_client ? "making a channel in chand" : "making a channel");
    return ch;
}

chan_t *ex_open(const char *name, long cap)
{
    if (!ex_client) {
        fprintf(stderr, "%s: named channels live in chand: use --remote\n", ex_prog);
        ex_usage();
    }
    chan_t *ch = chan_open(ex_client, name, cap, 0, chan_now() + EX_SETUP_MS);
    if (!ch)
        ex_die(name);
    return ch;
}

#define LOCAL_REF "local:"

size_t ex_ref(chan_t *ch, char *buf, size_t size)
{
    ssize_t n;
    if (chan_name(ch))
        n = chan_ref(ch, buf, size);
    else
        n = snprintf(buf, size, LOCAL_REF "%p", (void *)chan_retain(ch));
    if (n < 0 || (size_t)n >= size)
        ex_die("writing a channel reference");
    return (size_t)n;
}

chan_t *ex_open_ref(const char *ref, size_t len)
{
    size_t plen = strlen(LOCAL_REF);
    if (len > plen && len < 64 && memcmp(ref, LOCAL_REF, plen) == 0) {
        char text[64];
        void *p = NULL;
        memcpy(text, ref + plen, len - plen);
        text[len - plen] = 0;
        if (sscanf(text, "%p", &p) != 1 || !p) {
            errno = EINVAL;
            return NULL;
        }
        return p;               /* the reference ex_ref() retained is now the caller's */
    }
    if (!ex_client) {
        errno = EINVAL;
        return NULL;
    }
    return chan_open_ref(ex_client, ref, len, chan_now() + EX_SETUP_MS);
}

void ex_unref(const char *ref, size_t len)
{
    if (len > strlen(LOCAL_REF) && memcmp(ref, LOCAL_REF, strlen(LOCAL_REF)) == 0)
        chan_release(ex_open_ref(ref, len));
}

void ex_close(chan_t *ch)
{
    chan_close(ch);             /* EPIPE if someone closed it first: fine */
    chan_release(ch);
}

const char *ex_split(const char *msg, size_t len, size_t *text_len)
{
    const char *nl = memchr(msg, '\n', len);
    if (!nl)
        return NULL;
    *text_len = (size_t)(nl - msg);
    return nl + 1;
}

/* ---- time and chance ---- */

int64_t ex_ms(int64_t ms)
{
    double v = (double)ms * ex_scale + 0.5;
    return v < 1 ? 0 : (int64_t)v;
}

/* splitmix64 over one atomic counter: every call, from any goroutine or
 * thread, gets its own number without a lock. */
int64_t ex_rand(int64_t n)
{
    const uint64_t gamma = 0x9e3779b97f4a7c15u;
    uint64_t z = atomic_fetch_add(&rng_state, gamma) + gamma;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return n > 0 ? (int64_t)(z % (uint64_t)n) : 0;
}

void ex_pause(int64_t max_ms)
{
    chan_sleep(chan_now() + ex_ms(ex_rand(max_ms)));
}

chan_t *ex_after(int64_t ms)
{
    chan_t *t = chan_after(ex_ms(ms));
    if (!t)
        ex_die("chan_after");
    return t;
}

void ex_go(void (*fn)(void *arg), void *arg)
{
    if (chan_go(fn, arg) < 0)
        ex_die("starting a goroutine");
}

void *ex_alloc(size_t size)
{
    void *p = calloc(1, size);
    if (!p)
        ex_die("calloc");
    return p;
}

/* ---- helper processes ---- */

pid_t ex_spawn(const char *const *args)
{
    enum { MAX_ARGS = 32 };
    const char *argv[MAX_ARGS];
    char scale[32];
    size_t n = 0;
    argv[n++] = ex_prog;
    while (*args && n < MAX_ARGS - 6)
        argv[n++] = *args++;
    argv[n++] = "--remote";
    if (ex_addr)
        argv[n++] = ex_addr;
    snprintf(scale, sizeof scale, "%g", ex_scale);
    argv[n++] = "--scale";
    argv[n++] = scale;
    argv[n] = NULL;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        ex_die("fork");
    if (pid == 0) {
        /* Only async-signal-safe calls until exec: the parent has threads. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        execv("/proc/self/exe", (char *const *)argv);
        _exit(127);
    }
    return pid;
}

void ex_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, NULL, WNOHANG) != 0)
            return;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

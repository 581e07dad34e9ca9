/*
 * chand_opts.c - chand's options: one table (below) says, for each, its
 * name (--NAME on the command line, NAME in the config file, CHAND_NAME in
 * the environment), what its value is, its default, its one line of help
 * and the field of chand_opts_t it sets.  Parsing, --help, --print-config
 * and SIGHUP's reload all walk that table; nothing else lists options.
 *
 * Where values come from, each layer winning over the ones before it:
 *
 *   the table's defaults < the config file < CHAND_* variables < flags
 *
 * The config file is --config FILE, else $CHAND_CONFIG, else
 * CHAND_CONFIG_FILE (the sysconfdir chand was built for) only if it
 * exists: a packaged chand reads /etc/chand/chand.conf, and a chand built
 * in a work tree reads no file it was not told of.  chand logs which file
 * it read.  A repeatable option (--listen) given in a layer replaces what
 * the layers below gave, rather than adding to it.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan_addr.h"
#include "chan_frame.h"
#include "chan_units.h"
#include "chand_log.h"
#include "chand_opts.h"

/* What an option's value is, and so how it is parsed, compared and shown. */
typedef enum {
    K_HEADING,   /* not an option: a heading of --help */
    K_TEXT,      /* a string (a path, an address, a name): const char * */
    K_LIST,      /* repeatable strings: const char *[max], count at .count */
    K_SIZE,      /* a number, with k, m or g (chan_parse_size): uint64_t */
    K_TIME,      /* milliseconds, or with ms, s, m or h (chan_parse_duration): uint64_t */
    K_WORD,      /* one of .words, kept as that word: const char * */
    K_ENUM,      /* one of .words, kept as its index: int */
    K_FLAG,      /* no value; the command line only: int */
    K_CONFIG,    /* --config: chooses the file, before any layer is read */
    K_ACTION,    /* --help, --version, --print-config: print and exit */
} kind_t;

enum {
    F_LIVE = 1,     /* a SIGHUP applies a change of it; others need a restart */
    F_NOFILE = 2,   /* not a key of the config file */
    F_NOENV = 4,    /* no CHAND_ variable */
};

typedef struct optdef {
    const char *name;
    char letter;                /* the short option, or 0 */
    kind_t kind;
    const char *arg;            /* what --help calls the value (choices: a|b|c) */
    const char *def;            /* the default, written as a user would: parsed at start */
    const char *help;           /* one line of --help (wrapped there) */
    size_t off;                 /* the field of chand_opts_t */
    size_t count;               /* K_LIST: the field counting it */
    uint64_t min, max;          /* K_SIZE, K_TIME: bounds; K_LIST: most values */
    const char *const *words;   /* K_WORD, K_ENUM: the values allowed */
    const char *zero;           /* K_SIZE, K_TIME: what 0 means, if it is allowed */
    unsigned flags;             /* F_* */
} optdef_t;

#define FIELD(f) offsetof(chand_opts_t, f)
#define HEADING(text) { .kind = K_HEADING, .help = text }
#define TEXT(n, l, a, d, f, fl, h) \
    { .name = n, .letter = l, .kind = K_TEXT, .arg = a, .def = d, .off = FIELD(f), .flags = fl, .help = h }
#define SIZE(n, d, lo, hi, f, h) \
    { .name = n, .kind = K_SIZE, .arg = "N", .def = d, .min = lo, .max = hi, .off = FIELD(f), .help = h }
#define TIME(n, d, lo, hi, f, h) \
    { .name = n, .kind = K_TIME, .arg = "T", .def = d, .min = lo, .max = hi, .off = FIELD(f), .help = h }
/* ... where 0 turns the limit off */
#define SIZE0(n, d, hi, f, z, h) \
    { .name = n, .kind = K_SIZE, .arg = "N", .def = d, .max = hi, .zero = z, .off = FIELD(f), .help = h }
#define TIME0(n, d, hi, f, z, h) \
    { .name = n, .kind = K_TIME, .arg = "T", .def = d, .max = hi, .zero = z, .off = FIELD(f), .help = h }
#define CHOICE(n, k, w, d, f, fl, h) \
    { .name = n, .kind = k, .words = w, .def = d, .off = FIELD(f), .flags = fl, .help = h }
#define FLAG(n, f, h) { .name = n, .kind = K_FLAG, .off = FIELD(f), .flags = F_NOFILE | F_NOENV, .help = h }
#define ACTION(n, l, h) { .name = n, .letter = l, .kind = K_ACTION, .flags = F_NOFILE | F_NOENV, .help = h }

#define MS_WEEK (UINT64_C(7) * 24 * 3600000)

static const char *const fsync_words[] = { "always", "everysec", "no", NULL };
static const char *const replication_words[] = { "sync", "async", NULL };
/* in the order of CHAND_TLS_AUTH_* */
static const char *const client_auth_words[] = { "none", "optional", "require", NULL };

static const optdef_t table[] = {
    HEADING("Listening and clients"),
    { .name = "listen", .letter = 'l', .kind = K_LIST, .arg = "ADDR", .def = CHAN_DEFAULT_ADDR,
      .off = FIELD(listen), .count = FIELD(nlisten), .max = CHAND_MAX_LISTEN,
      .help = "listen on HOST:PORT, [IPV6]:PORT or unix:/PATH; repeatable; port 0 picks a free "
              "port" },
    TEXT("port-file", 'p', "FILE", NULL, port_file, 0,
         "once listening, write the first TCP port to FILE (written aside, then renamed)"),
    TEXT("auth-file", 'a', "FILE", NULL, auth_file, 0,
         "require clients to present the token on FILE's first line; SIGHUP reads FILE again"),
    TEXT("acl-file", 0, "FILE", NULL, acl_file, 0,
         "users, their secrets' hashes and what each may do on which channels (see chand(8)); "
         "SIGHUP reads FILE again"),
    TEXT("metrics", 'm', "ADDR", NULL, metrics, 0,
         "serve Prometheus metrics over HTTP on HOST:PORT or [IPV6]:PORT"),

    HEADING("Limits"),
    SIZE("max-frame", "1m", CHAN_MIN_MAX_FRAME, 256u << 20, max_frame, "largest frame either way, in bytes"),
    SIZE("max-conns", "10000", 1, 1000000, max_conns, "most connections at once"),
    SIZE0("max-conns-per-ip", "0", 1000000, max_conns_per_ip, "no limit",
          "most connections at once from one address (an IPv6 address's /64)"),
    SIZE("max-channels", "1000000", 1, UINT64_C(1) << 40, max_channels, "most channels at once"),
    SIZE("max-pending", "65536", 1, UINT64_C(1) << 24, max_pending,
         "most blocked requests per connection"),
    SIZE("max-output", "64m", 64 * 1024, UINT64_C(1) << 40, max_output,
         "bytes queued to a client that is not reading before it is disconnected and its "
         "unacknowledged values returned; at least twice --max-frame"),
    SIZE("max-batch", "4096", 1, 1u << 20, max_batch, "most values in one send or receive"),
    SIZE0("max-memory", "1g", UINT64_C(1) << 50, max_memory, "no limit",
          "bytes all values and queued replies may hold; past it sends get BUSY"),
    TIME("hello-timeout", "10s", 10, 3600000, hello_timeout_ms,
         "close a connection that has not said Hello within T"),
    TIME0("idle-timeout", "0", MS_WEEK, idle_timeout_ms, "never",
          "close a connection with no request waiting, no value unacknowledged and no traffic "
          "for T"),
    TIME0("ack-wait", "60s", MS_WEEK, ack_wait_ms, "never",
          "a value delivered and not acknowledged within T goes back to its channel, marked "
          "redelivered"),

    HEADING("Durability"),
    TEXT("data-dir", 0, "DIR", NULL, data_dir, 0,
         "keep channels and buffered values in an append-only log in DIR, loaded at start; "
         "without it everything is in memory only"),
    CHOICE("fsync", K_WORD, fsync_words, "everysec", fsync, 0,
           "with --data-dir: sync the log before answering (always), once a second, or when "
           "the kernel does (no)"),
    SIZE("rewrite-size", "64m", 4096, UINT64_C(1) << 40, rewrite_size,
         "rewrite the log into a snapshot once it is this large and has doubled since the last"),
    SIZE("prealloc", "8m", 64 * 1024, UINT64_C(1) << 34, prealloc,
         "disk space reserved ahead of the log; when it cannot be, sends get BUSY"),
    FLAG("check", check,
         "with --data-dir: check the data dir, print what it holds and exit (0 good, 1 corrupt)"),

    HEADING("Cluster"),
    TEXT("cluster", 0, "NAME", NULL, cluster, 0,
         "join cluster NAME (needs --data-dir and --etcd): etcd elects each group's primary, "
         "which streams its log to the group's replicas"),
    TEXT("etcd", 0, "URLS", NULL, etcd, 0,
         "etcd endpoints, HOST:PORT or http://HOST:PORT, comma-separated"),
    TEXT("group", 0, "G", "g1", group, 0, "this node's shard group"),
    TEXT("advertise", 0, "HOST:PORT", NULL, advertise, 0,
         "the address clients and other nodes reach this node at (default: the first TCP "
         "--listen, if not a wildcard)"),
    TEXT("node", 0, "NAME", NULL, node, 0, "this node's name in the cluster (default: --advertise)"),
    TIME("lease-ttl", "5s", 2000, 3600000, lease_ttl_ms,
         "the etcd lease's time to live: a replica takes over about this long after its "
         "primary dies"),
    CHOICE("replication", K_WORD, replication_words, "sync", replication, 0,
           "answer a send once a replica has it (sync), or on the primary's own durability "
           "(async)"),

    HEADING("TLS"),
    TEXT("tls-cert", 0, "FILE", NULL, tls_cert, 0,
         "speak TLS on every TCP listener, with the certificate chain in FILE (PEM); needs "
         "--tls-key"),
    TEXT("tls-key", 0, "FILE", NULL, tls_key, 0, "the private key of --tls-cert (PEM)"),
    TEXT("tls-ca", 0, "FILE", NULL, tls_ca, 0,
         "CA certificates (PEM) that client certificates must chain to"),
    CHOICE("tls-client-auth", K_ENUM, client_auth_words, "none", tls_client_auth, 0,
           "whether clients must present a certificate that --tls-ca vouches for; require "
           "when --tls-ca is given and this is not"),

    HEADING("Logging (SIGHUP applies changes)"),
    CHOICE("log-level", K_ENUM, chand_log_level_names, "info", log_level, F_LIVE,
           "log lines up to this level"),
    CHOICE("log-format", K_ENUM, chand_log_format_names, "text", log_format, F_LIVE,
           "text lines, journald's <N> priority prefixes, one JSON object a line, or syslog(3)"),
    TEXT("log-file", 0, "FILE", NULL, log_file, F_LIVE,
         "append log lines to FILE instead of standard error; SIGHUP opens it again"),

    HEADING("Configuration"),
    { .name = "config", .kind = K_CONFIG, .arg = "FILE", .off = FIELD(config), .flags = F_NOFILE,
      .help = "read options from FILE, one `name value` a line (default " CHAND_CONFIG_FILE
              ", if it exists; /dev/null: none)" },
    ACTION("print-config", 0,
           "print the configuration the file, the environment and the flags make, and exit"),
    ACTION("help", 'h', "print this help and exit"),
    ACTION("version", 'V', "print the version and exit"),
};

#define NOPT (sizeof table / sizeof table[0])

/* After the options (print_help says which are not config file keys). */
static const char epilogue[] =
"is also a line `NAME VALUE` of the config file and a variable CHAND_NAME (upper "
"case, '_' for '-'; --config is CHAND_CONFIG too).  Flags win over the environment, "
"which wins over the file.  Sizes take k, m or g (powers of 1024); times are "
"milliseconds, or take ms, s, m or h.  SIGTERM or SIGINT stops chand: it stops "
"accepting, answers pending requests \"shutting down\", writes and syncs its log "
"(--data-dir) and exits 0.  SIGHUP reads the configuration again (the log's settings "
"change; others need a restart), opens --log-file again, and reads --acl-file, "
"--auth-file and the --tls-* files again (new TLS connections get the new certificate, "
"open ones keep theirs).  See chand(8).";

/* ---- parsing ---- */

/* The layers, lowest first: a value set in one replaces the value of a
 * lower one. */
enum { L_DEFAULT, L_FILE, L_ENV, L_ARGV };

typedef struct parse {
    chand_opts_t *o;
    int layer;                  /* the one being read */
    const char *file;           /* L_FILE: its path and the line being read */
    unsigned line;
    bool quiet;                 /* SIGHUP: getopt prints nothing (it was fine at start) */
    uint8_t layer_of[NOPT];     /* where each option's value came from */
    unsigned line_of[NOPT];     /* and, from the file, on which line */
    unsigned list_line[CHAND_MAX_LISTEN];   /* the lines of --listen's values */
    char err[600];
} parse_t;

struct chand_opts_str {
    struct chand_opts_str *next;
    char s[];
};

/* A copy of s that lives as long as *o. */
static const char *own(chand_opts_t *o, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    struct chand_opts_str *c = malloc(sizeof *c + n);
    if (!c) {
        fputs("chand: out of memory\n", stderr);
        exit(1);
    }
    memcpy(c->s, s, n);
    c->next = o->owned;
    o->owned = c;
    return c->s;
}

void chand_opts_free(chand_opts_t *o)
{
    while (o->owned) {
        struct chand_opts_str *c = o->owned;
        o->owned = c->next;
        free(c);
    }
}

static const optdef_t *opt_named(const char *name)
{
    for (size_t i = 0; i < NOPT; i++)
        if (table[i].name && strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

/* "CHAND_MAX_FRAME" for max-frame. */
static void env_name(const optdef_t *d, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "CHAND_");
    for (const char *p = d->name; *p && k + 1 < n; p++)
        buf[k++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    buf[k] = 0;
}

/* Where a value of d came from: "FILE:LINE", "CHAND_NAME", "--NAME" or
 * "default". */
static const char *origin(const optdef_t *d, int layer, const char *file, unsigned line, char *buf,
                          size_t n)
{
    switch (layer) {
    case L_FILE:
        snprintf(buf, n, "%s:%u", file, line);
        break;
    case L_ENV:
        env_name(d, buf, n);
        break;
    case L_ARGV:
        snprintf(buf, n, "--%s", d->name);
        break;
    default:
        snprintf(buf, n, "default");
    }
    return buf;
}

/* Record an error about d's value, saying where the value came from:
 * "FILE:LINE: NAME: ...", "CHAND_NAME: ..." or "--NAME: ...".  -1. */
static int bad(parse_t *p, const optdef_t *d, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(parse_t *p, const optdef_t *d, const char *fmt, ...)
{
    char where[300];
    size_t n = (size_t)snprintf(p->err, sizeof p->err, "%s%s%s: ",
                                origin(d, p->layer, p->file, p->line, where, sizeof where),
                                p->layer == L_FILE ? ": " : "", p->layer == L_FILE ? d->name : "");
    va_list ap;
    va_start(ap, fmt);
    if (n < sizeof p->err)
        vsnprintf(p->err + n, sizeof p->err - n, fmt, ap);
    va_end(ap);
    return -1;
}

/* An error that is no option's; -1. */
static int fail(parse_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parse_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    return -1;
}

#define AT(o, off, type) ((type *)(void *)((char *)(o) + (off)))

/* "a, b or c": the words an option takes, for its error message. */
static const char *word_list(const char *const *w, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; w[i] && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i == 0 ? "" : w[i + 1] ? ", " : " or ", w[i]);
    return buf;
}

/* ---- the value setters, one per kind ---- */

/* A string of argv or of the table lives as long as chand; one read from
 * a file or the environment is copied. */
static const char *keep(parse_t *p, const char *v)
{
    return p->layer == L_FILE || p->layer == L_ENV ? own(p->o, v) : v;
}

static int set_text(parse_t *p, const optdef_t *d, const char *v)
{
    *AT(p->o, d->off, const char *) = keep(p, v);
    return 0;
}

static int set_list(parse_t *p, const optdef_t *d, const char *v)
{
    size_t *n = AT(p->o, d->count, size_t);
    if (*n == d->max)
        return bad(p, d, "at most %llu of them", (unsigned long long)d->max);
    AT(p->o, d->off, const char *)[(*n)++] = keep(p, v);
    return 0;
}

static int set_number(parse_t *p, const optdef_t *d, const char *v)
{
    uint64_t x;
    bool time = d->kind == K_TIME;
    int rc = time ? chan_parse_duration(v, &x) : chan_parse_size(v, &x);
    if (rc < 0 || x < d->min || x > d->max)
        return bad(p, d, "'%s' is not a %s from %llu to %llu%s", v, time ? "time" : "number",
                   (unsigned long long)d->min, (unsigned long long)d->max, time ? " ms" : "");
    *AT(p->o, d->off, uint64_t) = x;
    return 0;
}

static int set_choice(parse_t *p, const optdef_t *d, const char *v)
{
    for (int i = 0; d->words[i]; i++) {
        if (strcmp(v, d->words[i]) != 0)
            continue;
        if (d->kind == K_ENUM)
            *AT(p->o, d->off, int) = i;
        else
            *AT(p->o, d->off, const char *) = d->words[i];
        return 0;
    }
    char words[200];
    return bad(p, d, "'%s' is not %s", v, word_list(d->words, words, sizeof words));
}

static int set_flag(parse_t *p, const optdef_t *d, const char *v)
{
    (void)v;
    *AT(p->o, d->off, int) = 1;
    return 0;
}

static int set_nothing(parse_t *p, const optdef_t *d, const char *v)
{
    (void)p;
    (void)d;
    (void)v;
    return 0;
}

static int (*const setters[])(parse_t *, const optdef_t *, const char *) = {
    [K_HEADING] = set_nothing, [K_TEXT] = set_text, [K_LIST] = set_list,
    [K_SIZE] = set_number, [K_TIME] = set_number, [K_WORD] = set_choice,
    [K_ENUM] = set_choice, [K_FLAG] = set_flag, [K_CONFIG] = set_nothing,
    [K_ACTION] = set_nothing,
};

/* Set d from v in the layer being read.  A repeatable option's values of
 * a lower layer go; twice in one file is an error (in argv, the last one
 * wins, as getopt programs do). */
static int set(parse_t *p, const optdef_t *d, const char *v)
{
    size_t i = (size_t)(d - table);
    if (d->kind == K_LIST && p->layer_of[i] < p->layer)
        *AT(p->o, d->count, size_t) = 0;
    else if (d->kind != K_LIST && p->layer == L_FILE && p->layer_of[i] == L_FILE)
        return bad(p, d, "set before, on line %u", p->line_of[i]);
    if (setters[d->kind](p, d, v) < 0)
        return -1;
    if (d->kind == K_LIST)   /* (--listen is the only list) */
        p->list_line[*AT(p->o, d->count, size_t) - 1] = p->line;
    p->layer_of[i] = (uint8_t)p->layer;
    p->line_of[i] = p->line;
    return 0;
}

/* A value of the file or the environment: a repeatable option's may hold
 * several, separated by blanks. */
static int set_words(parse_t *p, const optdef_t *d, char *v)
{
    if (d->kind != K_LIST)
        return set(p, d, v);
    char *save = NULL;
    for (char *w = strtok_r(v, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
        if (set(p, d, w) < 0)
            return -1;
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && strchr(" \t\r\n", s[n - 1]))
        s[--n] = 0;
    return s;
}

/* The config file: `name value` a line; blank lines and # comments
 * (at the start of a line, or after a blank) are skipped.  named says who
 * named it ("--config ", "CHAND_CONFIG: " or ""), for an error. */
static int read_file(parse_t *p, const char *path, const char *named)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(p, "%s%s: %s", named, path, strerror(errno));
    p->layer = L_FILE;
    p->file = path;
    p->line = 0;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&buf, &cap, f)) >= 0) {
        p->line++;
        if (memchr(buf, 0, (size_t)len)) {
            rc = fail(p, "%s:%u: a NUL byte (is this a config file?)", path, p->line);
            break;
        }
        for (char *h = strchr(buf, '#'); h; h = strchr(h + 1, '#'))
            if (h == buf || h[-1] == ' ' || h[-1] == '\t') {
                *h = 0;
                break;
            }
        char *key = trim(buf);
        if (!*key)
            continue;
        char *val = key + strcspn(key, " \t");
        if (*val)
            *val++ = 0;
        val = trim(val);
        const optdef_t *d = opt_named(key);
        if (!d)
            rc = fail(p, "%s:%u: unknown option '%s'%s", path, p->line, key,
                      key[0] == '-' ? " (a name is written without its dashes)" : "");
        else if (d->flags & F_NOFILE)
            rc = fail(p, "%s:%u: %s cannot be set in a config file", path, p->line, key);
        else if (!*val)
            rc = fail(p, "%s:%u: %s needs a value", path, p->line, key);
        else
            rc = set_words(p, d, val);
    }
    if (rc == 0 && ferror(f))
        rc = fail(p, "%s%s: %s", named, path, strerror(errno));
    free(buf);
    fclose(f);
    p->line = 0;
    return rc;
}

static int read_env(parse_t *p)
{
    p->layer = L_ENV;
    for (size_t i = 0; i < NOPT; i++) {
        const optdef_t *d = &table[i];
        if (!d->name || (d->flags & F_NOENV) || d->kind == K_CONFIG)
            continue;
        char name[80];
        env_name(d, name, sizeof name);
        const char *v = getenv(name);
        if (!v || !*v)
            continue;
        char *copy = strdup(v);
        int rc = copy ? set_words(p, d, copy) : fail(p, "out of memory");
        free(copy);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- what the table prints ---- */

/* "--fsync always|everysec|no", "-l, --listen ADDR" */
static void option_head(const optdef_t *d, char *buf, size_t n)
{
    size_t k = d->letter ? (size_t)snprintf(buf, n, "  -%c, --%s", d->letter, d->name)
                         : (size_t)snprintf(buf, n, "      --%s", d->name);
    if (d->words)
        for (size_t i = 0; d->words[i] && k < n; i++)
            k += (size_t)snprintf(buf + k, n - k, "%c%s", i ? '|' : ' ', d->words[i]);
    else if (d->arg)
        snprintf(buf + k, n - k, " %s", d->arg);
}

/* text, from column col (the cursor's) up to width, words moved whole to
 * lines indented to col. */
static void wrap(FILE *out, const char *text, int col, int width)
{
    int pos = col;
    for (const char *w = text; *w;) {
        w += strspn(w, " ");
        int len = (int)strcspn(w, " ");
        if (!len)
            break;
        if (pos > col && pos + 1 + len > width) {
            fprintf(out, "\n%*s", col, "");
            pos = col;
        } else if (pos > col) {
            fputc(' ', out);
            pos++;
        }
        fwrite(w, 1, (size_t)len, out);
        pos += len;
        w += len;
    }
    fputc('\n', out);
}

static void print_help(FILE *out)
{
    fputs("Usage: chand [OPTION]...\n"
          "Host named Go-style channels; clients send and receive over TCP or Unix sockets.\n",
          out);
    for (size_t i = 0; i < NOPT; i++) {
        const optdef_t *d = &table[i];
        if (d->kind == K_HEADING) {
            fprintf(out, "\n%s:\n", d->help);
            continue;
        }
        char head[120], text[600];
        option_head(d, head, sizeof head);
        size_t k = (size_t)snprintf(text, sizeof text, "%s", d->help);
        if (d->def && d->zero)
            snprintf(text + k, sizeof text - k, " (default %s%s0: %s)",
                     strcmp(d->def, "0") ? d->def : "", strcmp(d->def, "0") ? "; " : "", d->zero);
        else if (d->def)
            snprintf(text + k, sizeof text - k, " (default %s)", d->def);
        fputs(head, out);
        if (strlen(head) <= 22)
            fprintf(out, "%*s", 24 - (int)strlen(head), "");
        else
            fprintf(out, "\n%24s", "");
        wrap(out, text, 24, 79);
    }
    size_t nofile[NOPT], n = 0;   /* the options that are no config file keys */
    for (size_t i = 0; i < NOPT; i++)
        if (table[i].name && (table[i].flags & F_NOFILE))
            nofile[n++] = i;
    char text[1500];
    size_t k = (size_t)snprintf(text, sizeof text, "Every option but");
    for (size_t j = 0; j < n && k < sizeof text; j++)
        k += (size_t)snprintf(text + k, sizeof text - k, "%s--%s",
                              j == 0 ? " " : j + 1 == n ? " and " : ", ", table[nofile[j]].name);
    if (k < sizeof text)
        snprintf(text + k, sizeof text - k, " %s", epilogue);
    fputc('\n', out);
    wrap(out, text, 0, 79);
}

/* d's value in *o as the config file would say it (a list's i-th value). */
static const char *show(const chand_opts_t *o, const optdef_t *d, size_t i, char *buf, size_t n)
{
    static const struct { const char *suffix; uint64_t unit; } sizes[] = {
        { "g", 1u << 30 }, { "m", 1u << 20 }, { "k", 1u << 10 },
    }, times[] = {
        { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
    };
    const char *s = NULL;
    switch (d->kind) {
    case K_TEXT:
    case K_WORD:
        s = *AT(o, d->off, const char *const);
        return s ? s : "(none)";
    case K_LIST:
        return AT(o, d->off, const char *const)[i];
    case K_ENUM:
        return d->words[*AT(o, d->off, const int)];
    case K_SIZE:
    case K_TIME: {
        uint64_t v = *AT(o, d->off, const uint64_t);
        const char *suffix = d->kind == K_TIME ? "ms" : "";
        for (size_t k = 0; v && k < 3; k++) {
            uint64_t unit = d->kind == K_TIME ? times[k].unit : sizes[k].unit;
            if (v % unit == 0) {
                v /= unit;
                suffix = d->kind == K_TIME ? times[k].suffix : sizes[k].suffix;
                break;
            }
        }
        snprintf(buf, n, "%llu%s", (unsigned long long)v, v ? suffix : "");
        return buf;
    }
    default:
        return "";
    }
}

/* How many values d has in *o (a list's count; 0 for a string not set). */
static size_t nvalues(const chand_opts_t *o, const optdef_t *d)
{
    if (d->kind == K_LIST)
        return *AT(o, d->count, const size_t);
    if (d->kind == K_TEXT)
        return *AT(o, d->off, const char *const) != NULL;
    return 1;
}

/* --print-config: every option the file may hold, set, as a config file
 * (it reads back the same), each saying where its value came from. */
static void print_config(const parse_t *p, FILE *out)
{
    const chand_opts_t *o = p->o;
    fprintf(out, "# chand %s: defaults, then %s, then CHAND_* variables, then flags\n",
            PACKAGE_VERSION, o->config ? o->config : "no config file");
    for (size_t i = 0; i < NOPT; i++) {
        const optdef_t *d = &table[i];
        if (!d->name || (d->flags & F_NOFILE))
            continue;
        char from[300], val[40], line[600];
        origin(d, p->layer_of[i], o->config, p->line_of[i], from, sizeof from);
        for (size_t k = 0; k < nvalues(o, d); k++) {
            if (d->kind == K_LIST)
                origin(d, p->layer_of[i], o->config, p->list_line[k], from, sizeof from);
            snprintf(line, sizeof line, "%s %s", d->name, show(o, d, k, val, sizeof val));
            fprintf(out, "%-39s # %s\n", line, from);
        }
    }
}

/* ---- the checks across options ---- */

/* A cluster name, group or node: used in etcd keys, so no '/'. */
static bool cluster_word(parse_t *p, const char *flag, const char *v)
{
    size_t n = strlen(v);
    bool ok = n >= 1 && n <= 100;
    for (size_t i = 0; ok && i < n; i++)
        ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
             (v[i] >= '0' && v[i] <= '9') || strchr("._:-[]", v[i]);
    if (!ok)
        fail(p, "%s: '%s' must be 1-100 of [A-Za-z0-9._:-[]]", flag, v);
    return ok;
}

static int finish(parse_t *p)
{
    chand_opts_t *o = p->o;
    bool client_auth = p->layer_of[opt_named("tls-client-auth") - table] != L_DEFAULT;
    if (o->check && !o->data_dir)
        return fail(p, "--check needs --data-dir");
    if (o->cluster) {
        if (!o->data_dir || !o->etcd)
            return fail(p, "--cluster needs --data-dir and --etcd");
        if (!o->advertise) {
            const char *l = o->listen[0];
            if (!strncmp(l, "unix:", 5) || !strncmp(l, "0.0.0.0:", 8) || !strncmp(l, "[::]:", 5) ||
                !strcmp(l + strlen(l) - 2, ":0"))
                return fail(p, "--cluster needs --advertise HOST:PORT (the first --listen is %s)", l);
            o->advertise = l;
        }
        if (!o->node)
            o->node = o->advertise;
        if (!cluster_word(p, "--cluster", o->cluster) || !cluster_word(p, "--group", o->group) ||
            !cluster_word(p, "--node", o->node))
            return -1;
    }
    if (!o->tls_cert != !o->tls_key)
        return fail(p, "--tls-cert and --tls-key go together");
    if (!o->tls_cert && (o->tls_ca || o->tls_client_auth != CHAND_TLS_AUTH_NONE))
        return fail(p, "--tls-ca and --tls-client-auth need --tls-cert and --tls-key");
    if (o->tls_ca && !client_auth)
        o->tls_client_auth = CHAND_TLS_AUTH_REQUIRE;   /* a CA given is meant to be used */
    if (!o->tls_ca && o->tls_client_auth != CHAND_TLS_AUTH_NONE)
        return fail(p, "--tls-client-auth %s needs --tls-ca", client_auth_words[o->tls_client_auth]);
    if (o->tls_cert && o->cluster && !o->tls_ca)
        /* a replica dials its primary over TLS and must check whom it reached */
        return fail(p, "--tls-cert with --cluster needs --tls-ca (the CA that vouches for the "
                    "other nodes)");
    if (o->max_output < o->max_frame * 2)
        return fail(p, "--max-output must be at least twice --max-frame");
    if (o->log_file && o->log_format == CHAND_LOG_SYSLOG)
        return fail(p, "--log-file and --log-format syslog exclude each other");
    return 0;
}

/* ---- the layers, in order ---- */

static struct option longopts[NOPT + 1];
static char shortopts[2 * NOPT + 1];

static void getopt_tables(void)
{
    if (longopts[0].name)
        return;
    size_t n = 0, k = 0;
    for (size_t i = 0; i < NOPT; i++) {
        const optdef_t *d = &table[i];
        if (!d->name)
            continue;
        bool arg = d->kind != K_FLAG && d->kind != K_ACTION;
        longopts[n++] = (struct option){ d->name, arg ? required_argument : no_argument, NULL,
                                         256 + (int)i };
        if (d->letter) {
            shortopts[k++] = d->letter;
            if (arg)
                shortopts[k++] = ':';
        }
    }
}

static const optdef_t *opt_of(int c)
{
    if (c >= 256 && c < 256 + (int)NOPT)
        return &table[c - 256];
    for (size_t i = 0; i < NOPT; i++)
        if (table[i].letter && table[i].letter == c)
            return &table[i];
    return NULL;
}

enum { ACT_NONE, ACT_HELP, ACT_VERSION, ACT_PRINT };

/* Parse into *p->o; OPTS_RUN with *act saying what to print instead of
 * running, or OPTS_USAGE with the reason in p->err (empty if getopt
 * printed it). */
static int parse(parse_t *p, int argc, char **argv, int *act)
{
    chand_opts_t *o = p->o;
    memset(o, 0, sizeof *o);
    o->argv = argv;
    *act = ACT_NONE;
    p->layer = L_DEFAULT;
    for (size_t i = 0; i < NOPT; i++)
        if (table[i].def && set(p, &table[i], table[i].def) < 0)
            return OPTS_USAGE;   /* the table is wrong: a test catches it */

    /* the command line first, to find --config and what to print */
    getopt_tables();
    struct { const optdef_t *d; const char *arg; } *flags = calloc((size_t)argc + 1, sizeof *flags);
    if (!flags) {
        fail(p, "out of memory");
        return OPTS_USAGE;
    }
    size_t nflags = 0;
    const char *config = NULL;
    int c, rc = OPTS_RUN;
    optind = 0;
    opterr = !p->quiet;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        const optdef_t *d = opt_of(c);
        if (!d) {
            p->err[0] = 0;
            if (p->quiet)
                fail(p, "the command line does not parse");
            free(flags);
            return OPTS_USAGE;
        }
        if (d->kind == K_CONFIG)
            config = optarg;
        else if (d->kind == K_ACTION)
            *act = !strcmp(d->name, "help") ? ACT_HELP : !strcmp(d->name, "version") ? ACT_VERSION
                                                                                      : ACT_PRINT;
        else {
            flags[nflags].d = d;
            flags[nflags++].arg = optarg;
        }
    }
    if (optind < argc) {
        fail(p, "unexpected argument '%s'", argv[optind]);
        rc = OPTS_USAGE;
    }
    if (rc != OPTS_RUN || *act == ACT_HELP || *act == ACT_VERSION) {
        free(flags);
        return rc;
    }

    const char *named = "--config ";
    if (!config && getenv("CHAND_CONFIG") && *getenv("CHAND_CONFIG")) {
        config = getenv("CHAND_CONFIG");
        named = "CHAND_CONFIG: ";
    }
    if (!config && access(CHAND_CONFIG_FILE, F_OK) == 0) {
        config = CHAND_CONFIG_FILE;
        named = "";
    }
    if (config) {
        o->config = own(o, config);
        if (read_file(p, o->config, named) < 0)
            rc = OPTS_USAGE;
    }
    if (rc == OPTS_RUN && read_env(p) < 0)
        rc = OPTS_USAGE;
    p->layer = L_ARGV;
    for (size_t i = 0; rc == OPTS_RUN && i < nflags; i++)
        if (set(p, flags[i].d, flags[i].arg) < 0)
            rc = OPTS_USAGE;
    free(flags);
    if (rc == OPTS_RUN && finish(p) < 0)
        rc = OPTS_USAGE;
    return rc;
}

int chand_opts_parse(int argc, char **argv, chand_opts_t *o)
{
    parse_t p = { .o = o };
    int act;
    int rc = parse(&p, argc, argv, &act);
    if (rc == OPTS_USAGE) {
        if (p.err[0])
            fprintf(stderr, "chand: %s\n", p.err);
        fprintf(stderr, "Try 'chand --help'.\n");
    } else if (act == ACT_HELP) {
        print_help(stdout);
    } else if (act == ACT_VERSION) {
        printf("chand %s (protocol 1)\n", PACKAGE_VERSION);
    } else if (act == ACT_PRINT) {
        print_config(&p, stdout);
    }
    if (rc == OPTS_RUN && act == ACT_NONE)
        return OPTS_RUN;
    chand_opts_free(o);
    return rc == OPTS_RUN ? OPTS_EXIT_OK : rc;
}

void chand_opts_log_sources(const chand_opts_t *o)
{
    char envs[600] = "";
    size_t k = 0;
    for (size_t i = 0; i < NOPT && k < sizeof envs; i++) {
        char name[80];
        if (!table[i].name || (table[i].flags & F_NOENV))
            continue;
        env_name(&table[i], name, sizeof name);
        if (getenv(name) && *getenv(name))
            k += (size_t)snprintf(envs + k, sizeof envs - k, " %s", name);
    }
    if (o->config)
        log_info("configuration: %s%s%s", o->config, k ? "; environment:" : "", envs);
    else
        log_info("configuration: no file (%s does not exist)%s%s", CHAND_CONFIG_FILE,
                 k ? "; environment:" : "", envs);
}

/* ---- SIGHUP ---- */

static bool text_same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same(const chand_opts_t *a, const chand_opts_t *b, const optdef_t *d)
{
    switch (d->kind) {
    case K_TEXT:
    case K_WORD:
        return text_same(*AT(a, d->off, const char *const), *AT(b, d->off, const char *const));
    case K_LIST:
        if (nvalues(a, d) != nvalues(b, d))
            return false;
        for (size_t i = 0; i < nvalues(a, d); i++)
            if (!text_same(AT(a, d->off, const char *const)[i], AT(b, d->off, const char *const)[i]))
                return false;
        return true;
    case K_SIZE:
    case K_TIME:
        return *AT(a, d->off, const uint64_t) == *AT(b, d->off, const uint64_t);
    case K_ENUM:
    case K_FLAG:
        return *AT(a, d->off, const int) == *AT(b, d->off, const int);
    default:
        return true;
    }
}

/* d's value as a log line shows it: a list's values joined by blanks. */
static const char *shown(const chand_opts_t *o, const optdef_t *d, char *buf, size_t n)
{
    if (d->kind != K_LIST)
        return show(o, d, 0, buf, n);
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < nvalues(o, d) && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? " " : "", show(o, d, i, NULL, 0));
    return buf;
}

/* Set d in *o to its value in *n, copying strings (n's go with n). */
static void copy(chand_opts_t *o, const chand_opts_t *n, const optdef_t *d)
{
    switch (d->kind) {
    case K_TEXT:
        *AT(o, d->off, const char *) = own(o, *AT(n, d->off, const char *const));
        break;
    case K_LIST:
        *AT(o, d->count, size_t) = nvalues(n, d);
        for (size_t i = 0; i < nvalues(n, d); i++)
            AT(o, d->off, const char *)[i] = own(o, AT(n, d->off, const char *const)[i]);
        break;
    case K_WORD:   /* one of d->words */
        *AT(o, d->off, const char *) = *AT(n, d->off, const char *const);
        break;
    case K_SIZE:
    case K_TIME:
        *AT(o, d->off, uint64_t) = *AT(n, d->off, const uint64_t);
        break;
    case K_ENUM:
    case K_FLAG:
        *AT(o, d->off, int) = *AT(n, d->off, const int);
        break;
    default:
        break;
    }
}

int chand_opts_reload(chand_opts_t *o)
{
    int argc = 0;
    while (o->argv[argc])
        argc++;
    chand_opts_t n;
    parse_t p = { .o = &n, .quiet = true };
    int act;
    if (parse(&p, argc, o->argv, &act) != OPTS_RUN) {
        log_err("SIGHUP: %s; the configuration in force stays", p.err);
        chand_opts_free(&n);
        return -1;
    }
    for (size_t i = 0; i < NOPT; i++) {
        const optdef_t *d = &table[i];
        char nbuf[300], wbuf[300];
        if (!d->name || d->kind == K_CONFIG || same(o, &n, d))
            continue;
        const char *now = shown(&n, d, nbuf, sizeof nbuf), *was = shown(o, d, wbuf, sizeof wbuf);
        if (!(d->flags & F_LIVE)) {
            log_warn("SIGHUP: %s is %s in the configuration and %s in force: that needs a restart",
                     d->name, now, was);
            continue;
        }
        log_info("SIGHUP: %s is now %s (was %s)", d->name, now, was);
        copy(o, &n, d);
    }
    if (!text_same(o->config, n.config)) {
        log_info("SIGHUP: the config file is now %s (was %s)", n.config ? n.config : "none",
                 o->config ? o->config : "none");
        o->config = own(o, n.config);
    }
    chand_opts_free(&n);
    return 0;
}

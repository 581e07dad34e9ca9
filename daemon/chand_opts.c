/*
 * chand_opts.c - parse chand's flags (see chand_opts.h).  The usage text and
 * the defaults live next to each other so they cannot drift apart.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand_log.h"
#include "chand_opts.h"

static const char usage[] =
"Usage: chand [OPTION]...\n"
"Host named Go-style channels; clients send and receive over TCP or Unix sockets.\n"
"\n"
"  -l, --listen ADDR     listen on ADDR: HOST:PORT, [IPV6]:PORT or unix:/PATH;\n"
"                        repeatable; PORT 0 picks a free port (default "
CHAND_DEFAULT_LISTEN ")\n"
"  -p, --port-file FILE  once listening, write the first TCP port to FILE\n"
"                        (atomically: written aside, then renamed)\n"
"  -a, --auth-file FILE  require clients to present the token in FILE\n"
"                        (first line; compared in constant time); a client\n"
"                        presenting it may do everything\n"
"      --acl-file FILE   users, their secrets' hashes and what each may do on\n"
"                        which channels (see chand(8)); a Hello must name a\n"
"                        user of FILE (or bring the --auth-file token).\n"
"                        SIGHUP reads FILE again\n"
"  -m, --metrics ADDR    serve Prometheus metrics over HTTP on HOST:PORT\n"
"      --max-frame N     largest frame either way, bytes (default 1m)\n"
"      --max-conns N     most connections at once (default 10000)\n"
"      --max-conns-per-ip N\n"
"                        most connections at once from one address (an IPv6\n"
"                        address's /64) (default 0: no limit)\n"
"      --max-channels N  most channels at once (default 1000000)\n"
"      --max-pending N   most blocked requests per connection (default 65536)\n"
"      --max-output N    bytes queued to a client that is not reading before it\n"
"                        is disconnected and its unacknowledged values returned\n"
"                        (default 64m)\n"
"      --max-batch N     most values in one send or receive (default 4096)\n"
"      --max-memory N    bytes all values and queued replies may hold; past it\n"
"                        sends are refused with BUSY (default 1g; 0: no limit)\n"
"      --hello-timeout T a connection that has not said Hello after T is closed\n"
"                        (default 10s)\n"
"      --idle-timeout T  close a connection with no request waiting, no value\n"
"                        unacknowledged and no traffic either way for T\n"
"                        (default 0: never)\n"
"      --ack-wait T      a value delivered and not acknowledged within T goes\n"
"                        back to its channel, marked redelivered (default 60s;\n"
"                        0: never)\n"
"      --data-dir DIR    keep channels and buffered values in an append-only\n"
"                        log in DIR, loaded at start: they survive a restart,\n"
"                        a crash and kill -9.  Without it chand keeps\n"
"                        everything in memory only: a restart loses it all\n"
"      --fsync WHEN      with --data-dir: always (a send is answered once on\n"
"                        disk), everysec (fdatasync once a second: a power\n"
"                        cut loses at most a second) or no (default everysec)\n"
"      --rewrite-size N  rewrite the log into a snapshot once it is this large\n"
"                        and has doubled since the last one (default 64m)\n"
"      --prealloc N      disk space reserved ahead of the log; when it cannot\n"
"                        be reserved, sends are refused BUSY (default 8m)\n"
"      --check           with --data-dir: check the data dir, print what it\n"
"                        holds and exit (0 good, 1 corrupt)\n"
"      --cluster NAME    join cluster NAME (needs --data-dir, --etcd and\n"
"                        --advertise): etcd elects each group's primary, which\n"
"                        streams its log to the group's replicas\n"
"      --etcd URLS       etcd endpoints, HOST:PORT or http://HOST:PORT, comma-\n"
"                        separated\n"
"      --group G         this node's shard group (default g1)\n"
"      --advertise H:P   the address clients and other nodes reach this node at\n"
"                        (default: the first TCP --listen, if not a wildcard)\n"
"      --node NAME       this node's name in the cluster (default: --advertise)\n"
"      --lease-ttl T     the etcd lease's time to live: a primary that cannot\n"
"                        renew it stops answering well before, and a replica\n"
"                        takes over after it (default 5s, at least 2s)\n"
"      --replication M   sync (a send is answered once a replica has it, per\n"
"                        the replica's --fsync) or async (on the primary's own\n"
"                        durability) (default sync)\n"
"      --tls-cert FILE   speak TLS (1.2 or later) on every TCP listener, with\n"
"                        the certificate chain in FILE (PEM, the server's own\n"
"                        first); Unix sockets stay plain.  Needs --tls-key\n"
"      --tls-key FILE    the private key of --tls-cert (PEM)\n"
"      --tls-ca FILE     CA certificates (PEM) that client certificates must\n"
"                        chain to; implies --tls-client-auth require\n"
"      --tls-client-auth none|optional|require\n"
"                        ask clients for a certificate: none (default without\n"
"                        --tls-ca), optional (one presented must verify) or\n"
"                        require (a client without one is refused)\n"
"      --log-level L     error, warn, info or debug (default info)\n"
"  -h, --help            print this help and exit\n"
"  -V, --version         print the version and exit\n"
"\n"
"Sizes take k, m or g suffixes (powers of 1024); times are milliseconds, or\n"
"take ms, s, m or h.  SIGTERM or SIGINT stops\n"
"chand: it stops accepting, answers pending requests \"shutting down\", writes\n"
"and syncs its log (--data-dir) and exits 0.  SIGHUP reads --acl-file,\n"
"--auth-file and the --tls-* files again (new TLS connections get the new\n"
"certificate, open ones keep theirs; a file that does not load is logged,\n"
"and the old one stays).  See chand(8).\n";

enum {
    OPT_MAX_FRAME = 256, OPT_MAX_CONNS, OPT_MAX_CHANNELS, OPT_MAX_PENDING,
    OPT_MAX_OUTPUT, OPT_MAX_BATCH, OPT_MAX_MEMORY, OPT_HELLO_TIMEOUT, OPT_ACK_WAIT,
    OPT_LOG_LEVEL, OPT_DATA_DIR, OPT_FSYNC, OPT_REWRITE_SIZE, OPT_PREALLOC, OPT_CHECK,
    OPT_CLUSTER, OPT_ETCD, OPT_GROUP, OPT_ADVERTISE, OPT_NODE, OPT_LEASE_TTL, OPT_REPLICATION,
    OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA, OPT_TLS_CLIENT_AUTH,
    OPT_ACL_FILE, OPT_MAX_CONNS_PER_IP, OPT_IDLE_TIMEOUT,
};

static const struct option longopts[] = {
    { "listen", required_argument, NULL, 'l' },
    { "port-file", required_argument, NULL, 'p' },
    { "auth-file", required_argument, NULL, 'a' },
    { "metrics", required_argument, NULL, 'm' },
    { "max-frame", required_argument, NULL, OPT_MAX_FRAME },
    { "max-conns", required_argument, NULL, OPT_MAX_CONNS },
    { "max-channels", required_argument, NULL, OPT_MAX_CHANNELS },
    { "max-pending", required_argument, NULL, OPT_MAX_PENDING },
    { "max-output", required_argument, NULL, OPT_MAX_OUTPUT },
    { "max-batch", required_argument, NULL, OPT_MAX_BATCH },
    { "max-memory", required_argument, NULL, OPT_MAX_MEMORY },
    { "hello-timeout", required_argument, NULL, OPT_HELLO_TIMEOUT },
    { "ack-wait", required_argument, NULL, OPT_ACK_WAIT },
    { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
    { "data-dir", required_argument, NULL, OPT_DATA_DIR },
    { "fsync", required_argument, NULL, OPT_FSYNC },
    { "rewrite-size", required_argument, NULL, OPT_REWRITE_SIZE },
    { "prealloc", required_argument, NULL, OPT_PREALLOC },
    { "check", no_argument, NULL, OPT_CHECK },
    { "cluster", required_argument, NULL, OPT_CLUSTER },
    { "etcd", required_argument, NULL, OPT_ETCD },
    { "group", required_argument, NULL, OPT_GROUP },
    { "advertise", required_argument, NULL, OPT_ADVERTISE },
    { "node", required_argument, NULL, OPT_NODE },
    { "lease-ttl", required_argument, NULL, OPT_LEASE_TTL },
    { "replication", required_argument, NULL, OPT_REPLICATION },
    { "tls-cert", required_argument, NULL, OPT_TLS_CERT },
    { "tls-key", required_argument, NULL, OPT_TLS_KEY },
    { "tls-ca", required_argument, NULL, OPT_TLS_CA },
    { "tls-client-auth", required_argument, NULL, OPT_TLS_CLIENT_AUTH },
    { "acl-file", required_argument, NULL, OPT_ACL_FILE },
    { "max-conns-per-ip", required_argument, NULL, OPT_MAX_CONNS_PER_IP },
    { "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
};

/* Bounds of each numeric flag: a size, or a duration in milliseconds. */
static const struct {
    int opt;
    const char *name;
    uint64_t min, max;
    size_t offset;
    bool duration;
} numeric[] = {
    { OPT_MAX_FRAME, "--max-frame", 1024, 256u << 20, offsetof(chand_opts_t, max_frame), false },
    { OPT_MAX_CONNS, "--max-conns", 1, 1000000, offsetof(chand_opts_t, max_conns), false },
    { OPT_MAX_CONNS_PER_IP, "--max-conns-per-ip", 0, 1000000,
      offsetof(chand_opts_t, max_conns_per_ip), false },
    { OPT_IDLE_TIMEOUT, "--idle-timeout", 0, UINT64_C(7) * 24 * 3600000,
      offsetof(chand_opts_t, idle_timeout_ms), true },
    { OPT_MAX_CHANNELS, "--max-channels", 1, UINT64_C(1) << 40, offsetof(chand_opts_t, max_channels), false },
    { OPT_MAX_PENDING, "--max-pending", 1, UINT64_C(1) << 24, offsetof(chand_opts_t, max_pending), false },
    { OPT_MAX_OUTPUT, "--max-output", 64 * 1024, UINT64_C(1) << 40, offsetof(chand_opts_t, max_output), false },
    { OPT_MAX_BATCH, "--max-batch", 1, 1u << 20, offsetof(chand_opts_t, max_batch), false },
    { OPT_MAX_MEMORY, "--max-memory", 0, UINT64_C(1) << 50, offsetof(chand_opts_t, max_memory), false },
    { OPT_HELLO_TIMEOUT, "--hello-timeout", 10, 3600000, offsetof(chand_opts_t, hello_timeout_ms),
      true },
    { OPT_ACK_WAIT, "--ack-wait", 0, UINT64_C(7) * 24 * 3600000, offsetof(chand_opts_t, ack_wait_ms),
      true },
    { OPT_REWRITE_SIZE, "--rewrite-size", 4096, UINT64_C(1) << 40, offsetof(chand_opts_t, rewrite_size),
      false },
    { OPT_PREALLOC, "--prealloc", 64 * 1024, UINT64_C(1) << 34, offsetof(chand_opts_t, prealloc),
      false },
    { OPT_LEASE_TTL, "--lease-ttl", 2000, 3600000, offsetof(chand_opts_t, lease_ttl_ms), true },
};

/* The decimal number s starts with (no sign, no blanks), and where it
 * ends.  0, or -1 if s does not start with one or it is too large. */
static int leading_number(const char *s, unsigned long long *v, char **end)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    *v = strtoull(s, end, 10);
    return errno ? -1 : 0;
}

int chand_parse_size(const char *s, uint64_t *out)
{
    unsigned long long v;
    char *end;
    if (leading_number(s, &v, &end) < 0)
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case 0: break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: return -1;
    }
    if (*end || v > (UINT64_C(1) << (62 - shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int chand_parse_duration(const char *s, uint64_t *out)
{
    unsigned long long v;
    char *end;
    if (leading_number(s, &v, &end) < 0)
        return -1;
    static const struct { const char *suffix; uint64_t ms; } units[] = {
        { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) != 0)
            continue;
        if (v > UINT64_MAX / 4 / units[i].ms)
            return -1;
        *out = v * units[i].ms;
        return 0;
    }
    return -1;
}

static void defaults(chand_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->max_frame = 1u << 20;
    o->max_conns = 10000;
    o->max_channels = 1000000;
    o->max_pending = 65536;
    o->max_output = 64u << 20;
    o->max_batch = 4096;
    o->max_memory = 1u << 30;
    o->hello_timeout_ms = 10000;
    o->ack_wait_ms = 60000;
    o->log_level = CHAND_LOG_INFO;
    o->fsync = "everysec";
    o->rewrite_size = 64u << 20;
    o->prealloc = 8u << 20;
    o->group = "g1";
    o->lease_ttl_ms = 5000;
    o->replication = "sync";
}

/* A cluster name, group or node: used in etcd keys, so no '/'. */
static bool cluster_word(const char *flag, const char *v)
{
    size_t n = strlen(v);
    bool ok = n >= 1 && n <= 100;
    for (size_t i = 0; ok && i < n; i++)
        ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
             (v[i] >= '0' && v[i] <= '9') || strchr("._:-[]", v[i]);
    if (!ok)
        fprintf(stderr, "chand: %s: '%s' must be 1-100 of [A-Za-z0-9._:-[]]\n", flag, v);
    return ok;
}

static int set_numeric(chand_opts_t *o, int opt, const char *arg)
{
    for (size_t i = 0; i < sizeof numeric / sizeof numeric[0]; i++) {
        if (numeric[i].opt != opt)
            continue;
        uint64_t v;
        int rc = numeric[i].duration ? chand_parse_duration(arg, &v) : chand_parse_size(arg, &v);
        if (rc < 0 || v < numeric[i].min || v > numeric[i].max) {
            fprintf(stderr, "chand: %s: '%s' is not a %s from %llu to %llu%s\n", numeric[i].name, arg,
                    numeric[i].duration ? "time" : "number", (unsigned long long)numeric[i].min,
                    (unsigned long long)numeric[i].max, numeric[i].duration ? " ms" : "");
            return -1;
        }
        *(uint64_t *)((char *)o + numeric[i].offset) = v;
        return 0;
    }
    return -1;
}

int chand_opts_parse(int argc, char **argv, chand_opts_t *o)
{
    defaults(o);
    o->argv = argv;
    optind = 1;
    int c;
    const char *client_auth = NULL;
    while ((c = getopt_long(argc, argv, "l:p:a:m:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (o->nlisten == CHAND_MAX_LISTEN) {
                fprintf(stderr, "chand: at most %d --listen addresses\n", CHAND_MAX_LISTEN);
                return OPTS_USAGE;
            }
            o->listen[o->nlisten++] = optarg;
            break;
        case 'p': o->port_file = optarg; break;
        case 'a': o->auth_file = optarg; break;
        case OPT_ACL_FILE: o->acl_file = optarg; break;
        case 'm': o->metrics = optarg; break;
        case OPT_LOG_LEVEL:
            if ((o->log_level = chand_log_parse(optarg)) < 0) {
                fprintf(stderr, "chand: --log-level: '%s' is not error, warn, info or debug\n", optarg);
                return OPTS_USAGE;
            }
            break;
        case OPT_DATA_DIR: o->data_dir = optarg; break;
        case OPT_CLUSTER: o->cluster = optarg; break;
        case OPT_ETCD: o->etcd = optarg; break;
        case OPT_GROUP: o->group = optarg; break;
        case OPT_ADVERTISE: o->advertise = optarg; break;
        case OPT_NODE: o->node = optarg; break;
        case OPT_REPLICATION:
            if (strcmp(optarg, "sync") && strcmp(optarg, "async")) {
                fprintf(stderr, "chand: --replication: '%s' is not sync or async\n", optarg);
                return OPTS_USAGE;
            }
            o->replication = optarg;
            break;
        case OPT_CHECK: o->check = true; break;
        case OPT_TLS_CERT: o->tls_cert = optarg; break;
        case OPT_TLS_KEY: o->tls_key = optarg; break;
        case OPT_TLS_CA: o->tls_ca = optarg; break;
        case OPT_TLS_CLIENT_AUTH:
            if (!strcmp(optarg, "none"))
                o->tls_client_auth = CHAND_TLS_AUTH_NONE;
            else if (!strcmp(optarg, "optional"))
                o->tls_client_auth = CHAND_TLS_AUTH_OPTIONAL;
            else if (!strcmp(optarg, "require"))
                o->tls_client_auth = CHAND_TLS_AUTH_REQUIRE;
            else {
                fprintf(stderr, "chand: --tls-client-auth: '%s' is not none, optional or require\n",
                        optarg);
                return OPTS_USAGE;
            }
            client_auth = optarg;
            break;
        case OPT_FSYNC:
            if (strcmp(optarg, "always") && strcmp(optarg, "everysec") && strcmp(optarg, "no")) {
                fprintf(stderr, "chand: --fsync: '%s' is not always, everysec or no\n", optarg);
                return OPTS_USAGE;
            }
            o->fsync = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return OPTS_EXIT_OK;
        case 'V':
            printf("chand %s (protocol 1)\n", PACKAGE_VERSION);
            return OPTS_EXIT_OK;
        case '?':
            fprintf(stderr, "Try 'chand --help'.\n");
            return OPTS_USAGE;
        default:
            if (set_numeric(o, c, optarg) < 0)
                return OPTS_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "chand: unexpected argument '%s'\nTry 'chand --help'.\n", argv[optind]);
        return OPTS_USAGE;
    }
    if (o->nlisten == 0)
        o->listen[o->nlisten++] = CHAND_DEFAULT_LISTEN;
    if (o->check && !o->data_dir) {
        fprintf(stderr, "chand: --check needs --data-dir\n");
        return OPTS_USAGE;
    }
    if (o->cluster) {
        if (!o->data_dir || !o->etcd) {
            fprintf(stderr, "chand: --cluster needs --data-dir and --etcd\n");
            return OPTS_USAGE;
        }
        if (!o->advertise) {
            const char *l = o->listen[0];
            if (!strncmp(l, "unix:", 5) || !strncmp(l, "0.0.0.0:", 8) || !strncmp(l, "[::]:", 5) ||
                !strcmp(l + strlen(l) - 2, ":0")) {
                fprintf(stderr, "chand: --cluster needs --advertise HOST:PORT (the first --listen "
                        "is %s)\n", l);
                return OPTS_USAGE;
            }
            o->advertise = l;
        }
        if (!o->node)
            o->node = o->advertise;
        if (!cluster_word("--cluster", o->cluster) || !cluster_word("--group", o->group) ||
            !cluster_word("--node", o->node))
            return OPTS_USAGE;
    }
    if (!o->tls_cert != !o->tls_key) {
        fprintf(stderr, "chand: --tls-cert and --tls-key go together\n");
        return OPTS_USAGE;
    }
    if (!o->tls_cert && (o->tls_ca || client_auth)) {
        fprintf(stderr, "chand: --tls-ca and --tls-client-auth need --tls-cert and --tls-key\n");
        return OPTS_USAGE;
    }
    if (o->tls_ca && !client_auth)
        o->tls_client_auth = CHAND_TLS_AUTH_REQUIRE;   /* a CA given is meant to be used */
    if (!o->tls_ca && o->tls_client_auth != CHAND_TLS_AUTH_NONE) {
        fprintf(stderr, "chand: --tls-client-auth %s needs --tls-ca\n", client_auth);
        return OPTS_USAGE;
    }
    if (o->tls_cert && o->cluster && !o->tls_ca) {
        /* a replica dials its primary over TLS and must check whom it reached */
        fprintf(stderr, "chand: --tls-cert with --cluster needs --tls-ca (the CA that vouches "
                "for the other nodes)\n");
        return OPTS_USAGE;
    }
    if (o->max_output < o->max_frame * 2) {
        fprintf(stderr, "chand: --max-output must be at least twice --max-frame\n");
        return OPTS_USAGE;
    }
    return OPTS_RUN;
}

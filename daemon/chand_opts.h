/*
 * chand_opts.h - chand's configuration: every option, its default, its
 * bounds and its help, in one table (chand_opts.c) that parses the command
 * line, the config file and the CHAND_* environment, prints --help and
 * --print-config, and tells a SIGHUP what may change live.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_OPTS_H
#define CHAND_OPTS_H

#include <stddef.h>
#include <stdint.h>

#define CHAND_MAX_LISTEN 16

typedef struct chand_opts {
    const char *listen[CHAND_MAX_LISTEN];
    size_t nlisten;
    const char *port_file;
    const char *auth_file;
    const char *acl_file;       /* users and permissions, or NULL */
    const char *metrics;        /* host:port of the Prometheus endpoint, or NULL */
    uint64_t max_frame;
    uint64_t max_conns;
    uint64_t max_conns_per_ip;  /* 0: no limit */
    uint64_t max_channels;
    uint64_t max_pending;
    uint64_t max_output;
    uint64_t max_batch;
    uint64_t max_memory;
    uint64_t hello_timeout_ms;  /* a connection must say Hello within this */
    uint64_t idle_timeout_ms;   /* close idle connections after this; 0: never */
    uint64_t ack_wait_ms;       /* a delivery's ack deadline; 0: none */
    int log_level;
    int log_format;             /* CHAND_LOG_TEXT, _JOURNAL, _JSON or _SYSLOG */
    const char *log_file;       /* or NULL: standard error */
    const char *config;         /* the config file read, or NULL: none */
    const char *data_dir;       /* durability on, or NULL: memory only */
    const char *fsync;          /* "always", "everysec" or "no" */
    uint64_t rewrite_size;
    uint64_t prealloc;
    int check;                  /* --check: verify data_dir and exit */
    const char *cluster;        /* the cluster's name, or NULL: a single chand */
    const char *etcd, *group, *advertise, *node;
    uint64_t lease_ttl_ms;
    const char *replication;    /* "sync" or "async" */
    char **argv;                /* as started: a fenced primary starts again */
    const char *tls_cert;       /* TLS on the TCP listeners, or NULL: plain */
    const char *tls_key;
    const char *tls_ca;         /* CA file for client certificates, or NULL */
    int tls_client_auth;        /* CHAND_TLS_AUTH_* */
    struct chand_opts_str *owned; /* copies of the strings the file and the
                                     environment gave (chand_opts_free) */
} chand_opts_t;

/* --tls-client-auth: whether a client must present a certificate that
 * --tls-ca vouches for. */
enum { CHAND_TLS_AUTH_NONE, CHAND_TLS_AUTH_OPTIONAL, CHAND_TLS_AUTH_REQUIRE };

enum { OPTS_RUN = 0, OPTS_EXIT_OK = 1, OPTS_USAGE = 2 };

/* chand_opts_parse - fill *o from the defaults, then the config file
 * (--config, else $CHAND_CONFIG, else CHAND_CONFIG_FILE if it exists), then
 * the CHAND_* environment, then argv: each wins over the ones before.
 * Returns OPTS_RUN, OPTS_EXIT_OK (--help, --version or --print-config was
 * printed) or OPTS_USAGE (an error was printed on stderr, naming the file
 * and line, the variable or the flag).  With OPTS_RUN, chand_opts_free
 * releases *o's strings (chand_server_free does, for the server's copy). */
int chand_opts_parse(int argc, char **argv, chand_opts_t *o);

/* chand_opts_free - free the strings *o owns (a zeroed *o owns none). */
void chand_opts_free(chand_opts_t *o);

/* chand_opts_log_sources - log where *o came from: the config file read
 * (or that there was none) and the CHAND_* variables set. */
void chand_opts_log_sources(const chand_opts_t *o);

/* chand_opts_reload - on SIGHUP: read the configuration again as at start
 * (o->argv, the same file, the environment) and put into *o the options
 * that may change while chand runs (the log's level, format and file),
 * logging each change; every other option that changed is logged as
 * needing a restart and keeps its value.  0, or -1 if the configuration no
 * longer parses (logged, with the file and line; *o is unchanged). */
int chand_opts_reload(chand_opts_t *o);

/* The config file chand reads when neither --config nor $CHAND_CONFIG
 * names one, if it exists: $(sysconfdir)/chand/chand.conf. */
#ifndef CHAND_CONFIG_FILE
#define CHAND_CONFIG_FILE "/etc/chand/chand.conf"
#endif

#endif /* CHAND_OPTS_H */

/*
 * chand_opts.h - chand's command line: every flag, its default and its
 * bounds, in one table (chand_opts.c) that also prints --help.
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
} chand_opts_t;

/* --tls-client-auth: whether a client must present a certificate that
 * --tls-ca vouches for. */
enum { CHAND_TLS_AUTH_NONE, CHAND_TLS_AUTH_OPTIONAL, CHAND_TLS_AUTH_REQUIRE };

enum { OPTS_RUN = 0, OPTS_EXIT_OK = 1, OPTS_USAGE = 2 };

/* chand_opts_parse - fill *o from argv.  Returns OPTS_RUN, OPTS_EXIT_OK
 * (--help or --version was printed) or OPTS_USAGE (an error was printed). */
int chand_opts_parse(int argc, char **argv, chand_opts_t *o);

#endif /* CHAND_OPTS_H */

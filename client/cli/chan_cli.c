/*
 * chan_cli.c - `chan`, the shell's way into chand: send, receive, make,
 * close, stat, ls, ping.
 *
 * It pipes: `seq 100000 | chan send jobs` sends each line as one value, in
 * batches of whatever stdin has ready, and `chan recv jobs -n 100000` prints
 * one value per line.  Exit codes are part of the interface (see usage).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "chan/chan.h"
#include "chan_addr.h"
#include "chan_clock.h"

enum exit_code {
    EXIT_OK = 0,
    EXIT_ERROR = 1,
    EXIT_USAGE = 2,
    EXIT_TIMEOUT = 3,
    EXIT_CLOSED = 4,
    EXIT_NOCHAN = 5,
};

static const char usage[] =
"Usage: chan [--addr ADDR] [--user NAME] [--token-file FILE] COMMAND [ARGS]\n"
"Send to, receive from and inspect the channels of a chand daemon.\n"
"\n"
"Commands:\n"
"  send NAME [MSG...]  send each MSG as one value; with no MSG, each line of\n"
"                      standard input is one value (--null: each string\n"
"                      ended by a NUL; --raw: all of it is one).\n"
"                      Returns once chand has taken every value: for an\n"
"                      unbuffered channel, once receivers have them.\n"
"  recv NAME           receive values and print one per line (--null: each\n"
"                      ended by a NUL; --raw: the bytes as they are, nothing\n"
"                      added)\n"
"      -n, --count N     how many values (default 1; 0: until closed)\n"
"      --redelivered     print before each value how many times chand had\n"
"                        handed it out before (0: never; more: receivers\n"
"                        that took it went away, or let its acknowledgement\n"
"                        time out), and a tab\n"
"  make NAME           make the channel (unbuffered unless --cap)\n"
"  close NAME          close the channel\n"
"  rm NAME             delete the channel: waiters see it closed, its values\n"
"                      are dropped, the name is free again\n"
"  stat [NAME]         show one channel, or the daemon\n"
"  ls                  list every channel\n"
"  ping                one round trip to chand\n"
"  cluster status      the cluster as the primary sees it: every node, its\n"
"                      group, role and journal position; this node's term,\n"
"                      lease, etcd and replicas; the slot map (--addr: the\n"
"                      seeds)\n"
"  cluster slots       the slot map: each run of slots, its group and the\n"
"                      group's primary, and a move under way\n"
"  cluster move LO[-HI] GROUP\n"
"                      give slots LO..HI to GROUP, with their channels and\n"
"                      values, and wait until the move is over\n"
"  cluster slot NAME   the slot of channel NAME (connects to nothing)\n"
"  acl hash [NAME]     read a secret from standard input (not echoed on a\n"
"                      terminal) and print its hash for chand's --acl-file:\n"
"                      with NAME, the whole `user NAME HASH` line.  Connects\n"
"                      to nothing\n"
"      --iterations N    PBKDF2 iterations (default 10000, 1000 to 1000000)\n"
"\n"
"Options:\n"
"  -a, --addr ADDR       chand's address: HOST:PORT, [IPV6]:PORT or unix:/PATH,\n"
"                        or tls://HOST:PORT over TLS (default $CHAN_ADDR,\n"
"                        then " CHAN_DEFAULT_ADDR ")\n"
"      --token-file FILE present the token in FILE (default $CHAN_TOKEN); with\n"
"                        --user, that user's secret\n"
"  -u, --user NAME       say Hello as user NAME of chand's --acl-file (default\n"
"                        $CHAN_USER)\n"
"      --tls-ca FILE     TLS: CA certificates (PEM) the server's certificate\n"
"                        must chain to (default $CHAN_TLS_CA, then the\n"
"                        system's store); TLS also without tls://\n"
"      --tls-cert FILE   TLS: present this client certificate (PEM; default\n"
"                        $CHAN_TLS_CERT)\n"
"      --tls-key FILE    its private key (default $CHAN_TLS_KEY, then the\n"
"                        --tls-cert file)\n"
"      --tls-servername NAME\n"
"                        the name the server's certificate must have (and\n"
"                        SNI; default $CHAN_TLS_SERVERNAME, then the host)\n"
"  -c, --cap N           capacity when send, recv or make creates the channel;\n"
"                        an existing channel must have this capacity.  Without\n"
"                        it an existing channel is used as it is.\n"
"      --no-create       send, recv: the channel must exist (exit 5 if not)\n"
"  -t, --timeout MS      give up after MS milliseconds: for recv, waiting for\n"
"                        each value; for send, the whole send\n"
"  -r, --raw             see send and recv\n"
"  -0, --null            values are separated by NUL bytes, not newlines, on\n"
"                        send's input and recv's output (for values that\n"
"                        hold newlines; xargs -0, find -print0)\n"
"      --json            stat, ls, cluster status and slots print one JSON\n"
"                        object per line (a channel, the daemon, a node, a\n"
"                        run of slots)\n"
"  -h, --help            print this help\n"
"  -V, --version         print the version\n"
"\n"
"Exit status: 0 success, 1 error, 2 usage, 3 timeout, 4 channel closed,\n"
"5 no such channel.  Errors are chand's own words where it gave any.\n";

struct cli {
    const char *addr;
    char *token;
    chan_connect_opts_t tls;    /* its tls_* fields and tls */
    long cap;
    long timeout;
    long count;
    bool raw;
    bool redelivered; /* recv: each value's count of earlier deliveries first */
    bool no_create;   /* send, recv: CHAN_NOCREATE */
    char sep;         /* what ends a value on send's stdin and recv's stdout */
    bool json;        /* stat, ls, cluster status: one JSON object per line */
    chan_client_t *cl;
};

static int code_of(int err)
{
    switch (err) {
    case ETIMEDOUT: return EXIT_TIMEOUT;
    case EPIPE: return EXIT_CLOSED;
    case ENOENT: return EXIT_NOCHAN;
    default: return EXIT_ERROR;
    }
}

/* Report a failed libchan call: chand's message (or libchan's) when there
 * is one, else what errno says; for a closed channel and a deadline ours
 * say as much, with what failed.  Call it right after the failure, before
 * another libchan call clears the message. */
static int fail(const char *what, int err)
{
    const char *msg = chan_errmsg();
    if (*msg && err != EPIPE && err != ETIMEDOUT) {
        fprintf(stderr, "chan: %s\n", msg);
        return code_of(err);
    }
    const char *why = err == EPIPE ? "channel closed" : err == ETIMEDOUT ? "timed out" : strerror(err);
    fprintf(stderr, "chan: %s: %s\n", what, why);
    return code_of(err);
}

static int64_t deadline_of(const struct cli *c)
{
    return c->timeout < 0 ? -1 : chan_now() + c->timeout;
}

/* Open (or make) the channel; NULL with the exit code in *rc. */
static chan_t *open_named(struct cli *c, const char *name, int *rc)
{
    chan_t *ch = chan_open(c->cl, name, c->cap, c->no_create ? CHAN_NOCREATE : 0,
                           chan_now() + 10000);
    if (!ch) {
        int e = errno;
        if (e == EEXIST && !*chan_errmsg())
            fprintf(stderr, "chan: %s exists with another capacity\n", name);
        else if (e == EINVAL && !*chan_errmsg())
            fprintf(stderr, "chan: '%s' is not a channel name: 1-255 bytes of [A-Za-z0-9._:/-]\n", name);
        else
            fail(name, e);
        *rc = code_of(e);
    }
    return ch;
}

/* ---- send ---- */

static int send_vals(chan_t *ch, chan_val_t *v, size_t n, int64_t deadline)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = chan_send_many(ch, v + done, n - done, deadline);
        if (k < 0)
            return fail("send", errno);
        done += (size_t)k;
    }
    return EXIT_OK;
}

/* Read all of stdin into one value. */
static int send_raw(chan_t *ch, int64_t deadline)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            return fail("stdin", ENOMEM);
        if (len == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return fail("stdin", ENOMEM);
            }
            buf = nb;
        }
        ssize_t n = read(STDIN_FILENO, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            return fail("stdin", e);
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    chan_val_t v = { .data = buf, .len = len };
    int rc = send_vals(ch, &v, 1, deadline);
    free(buf);
    return rc;
}

/* Each line of stdin (each string ended by sep) is one value; send
 * whatever lines each read brings as one batch, so a pipe moves thousands
 * of values per round trip. */
static int send_lines(chan_t *ch, char sep, int64_t deadline)
{
    size_t cap = 1 << 20, len = 0, vcap = 4096;
    char *buf = malloc(cap);
    chan_val_t *v = malloc(vcap * sizeof *v);
    int rc = EXIT_OK;
    bool eof = false;
    if (!buf || !v) {
        free(buf);
        free(v);
        return fail("stdin", ENOMEM);
    }
    while (rc == EXIT_OK && !eof) {
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                rc = fail("stdin", ENOMEM);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(STDIN_FILENO, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = fail("stdin", errno);
            break;
        }
        if (n == 0) {
            eof = true;
            if (len && buf[len - 1] != sep)
                buf[len++] = sep;   /* a last line without its end (room: len < cap) */
        }
        len += (size_t)(n > 0 ? n : 0);
        size_t nv = 0, start = 0;
        for (size_t i = 0; i < len; i++) {
            if (buf[i] != sep)
                continue;
            if (nv == vcap) {
                chan_val_t *nvp = realloc(v, (vcap *= 2) * sizeof *v);
                if (!nvp) {
                    rc = fail("stdin", ENOMEM);
                    break;
                }
                v = nvp;
            }
            v[nv].data = buf + start;
            v[nv].len = i - start;
            nv++;
            start = i + 1;
        }
        if (rc == EXIT_OK && nv)
            rc = send_vals(ch, v, nv, deadline);
        memmove(buf, buf + start, len - start);
        len -= start;
    }
    free(buf);
    free(v);
    return rc;
}

static int cmd_send(struct cli *c, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "chan: send needs a channel name\n");
        return EXIT_USAGE;
    }
    int rc;
    chan_t *ch = open_named(c, argv[0], &rc);
    if (!ch)
        return rc;
    int64_t deadline = deadline_of(c);
    if (argc > 1) {
        chan_val_t *v = calloc((size_t)argc - 1, sizeof *v);
        if (!v) {
            chan_release(ch);
            return fail("send", ENOMEM);
        }
        for (int i = 1; i < argc; i++) {
            v[i - 1].data = argv[i];
            v[i - 1].len = strlen(argv[i]);
        }
        rc = send_vals(ch, v, (size_t)argc - 1, deadline);
        free(v);
    } else {
        rc = c->raw ? send_raw(ch, deadline) : send_lines(ch, c->sep, deadline);
    }
    chan_release(ch);
    return rc;
}

/* ---- recv ---- */

static int cmd_recv(struct cli *c, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "chan: recv needs exactly one channel name\n");
        return EXIT_USAGE;
    }
    int rc;
    chan_t *ch = open_named(c, argv[0], &rc);
    if (!ch)
        return rc;
    enum { BATCH = 4096 };
    chan_val_t v[BATCH];
    long got = 0;
    rc = EXIT_OK;
    while (c->count == 0 || got < c->count) {
        size_t want = BATCH;
        if (c->count && (size_t)(c->count - got) < want)
            want = (size_t)(c->count - got);
        ssize_t n = chan_recv_many(ch, v, want, deadline_of(c));
        if (n < 0) {
            if (errno == EPIPE && c->count == 0)
                break;   /* until closed: done */
            rc = fail("recv", errno);
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (c->redelivered)
                printf("%" PRIu32 "\t", v[i].redelivered);
            fwrite(v[i].data, 1, v[i].len, stdout);
            if (!c->raw)
                putchar(c->sep);
            free(v[i].data);
        }
        got += n;
        if (fflush(stdout) != 0) {
            /* Leave without acknowledging this batch (main set acks to ride
             * on the next request only): chand gives it to someone else. */
            fail("stdout", errno);
            _exit(EXIT_ERROR);
        }
    }
    chan_release(ch);
    return rc;
}

/* ---- make, close, stat, ls, ping ---- */

static int cmd_make(struct cli *c, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "chan: make needs exactly one channel name\n");
        return EXIT_USAGE;
    }
    int rc;
    chan_t *ch = open_named(c, argv[0], &rc);
    if (!ch)
        return rc;
    chan_release(ch);
    return EXIT_OK;
}

static int cmd_close(struct cli *c, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "chan: close needs exactly one channel name\n");
        return EXIT_USAGE;
    }
    c->cap = CHAN_CAP_ANY;
    chan_t *ch = chan_open(c->cl, argv[0], CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + 10000);
    if (!ch)
        return fail(argv[0], errno);
    int rc = chan_close(ch) < 0 ? fail("close", errno) : EXIT_OK;
    chan_release(ch);
    return rc;
}

static int cmd_rm(struct cli *c, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "chan: rm needs exactly one channel name\n");
        return EXIT_USAGE;
    }
    if (chan_delete(c->cl, argv[0], chan_now() + 10000) < 0)
        return fail(argv[0], errno);
    return EXIT_OK;
}

/* ---- --json: one object per line ---- */

/* s as a JSON string: quoted, with quotes, backslashes and control bytes
 * escaped (names are plain, but a daemon's messages and addresses are not
 * ours to trust). */
static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void json_key(bool *first, const char *key)
{
    printf("%s\"%s\":", *first ? "{" : ",", key);
    *first = false;
}

static void json_u64(bool *first, const char *key, unsigned long long v)
{
    json_key(first, key);
    printf("%llu", v);
}

static void json_i64(bool *first, const char *key, long long v)
{
    json_key(first, key);
    printf("%lld", v);
}

static void json_bool(bool *first, const char *key, bool v)
{
    json_key(first, key);
    fputs(v ? "true" : "false", stdout);
}

static void json_text(bool *first, const char *key, const char *v)
{
    json_key(first, key);
    json_str(v);
}

static void json_end(bool first)
{
    puts(first ? "{}" : "}");
}

static void json_stat(const chan_stat_t *s)
{
    bool f = true;
    json_text(&f, "name", s->name);
    json_u64(&f, "len", s->len);
    json_u64(&f, "cap", s->cap);
    json_u64(&f, "blocked_senders", s->senders);
    json_u64(&f, "blocked_receivers", s->receivers);
    json_u64(&f, "inflight", s->inflight);
    json_u64(&f, "sent", s->sent);
    json_u64(&f, "received", s->received);
    json_bool(&f, "closed", s->closed);
    json_bool(&f, "temp", s->temp);
    json_end(f);
}

static void json_server(const chan_server_stat_t *s)
{
    bool f = true;
    json_u64(&f, "uptime_ms", s->uptime_ms);
    json_u64(&f, "connections", s->connections);
    json_u64(&f, "channels", s->channels);
    json_u64(&f, "pending", s->pending);
    json_u64(&f, "inflight", s->inflight);
    json_u64(&f, "values_sent", s->values_sent);
    json_u64(&f, "values_received", s->values_received);
    json_u64(&f, "value_bytes", s->value_bytes);
    json_u64(&f, "output_bytes", s->output_bytes);
    json_u64(&f, "max_frame", s->max_frame);
    json_u64(&f, "max_value", s->max_value);
    json_u64(&f, "ack_expired", s->ack_expired);
    json_u64(&f, "loop_max_us", s->loop_max_us);
    /* [[bound in us (null: the last, unbounded), callbacks], ...] */
    json_key(&f, "loop_callbacks");
    putchar('[');
    for (size_t i = 0; i < s->loop_buckets; i++) {
        if (s->loop_bounds_us[i] == UINT64_MAX)
            printf("%s[null,%llu]", i ? "," : "", (unsigned long long)s->loop_counts[i]);
        else
            printf("%s[%llu,%llu]", i ? "," : "", (unsigned long long)s->loop_bounds_us[i],
                   (unsigned long long)s->loop_counts[i]);
    }
    putchar(']');
    json_bool(&f, "durable", s->durable);
    if (s->durable) {
        json_text(&f, "fsync", s->fsync);
        json_u64(&f, "disk_bytes", s->disk_bytes);
        json_u64(&f, "journal_records", s->journal_records);
        json_u64(&f, "journal_bytes", s->journal_bytes);
        json_u64(&f, "fsyncs", s->fsyncs);
        json_u64(&f, "fsync_us_total", s->fsync_us_total);
        json_u64(&f, "fsync_us_max", s->fsync_us_max);
        json_u64(&f, "rewrites", s->rewrites);
        json_u64(&f, "rewrite_failures", s->rewrite_failures);
        json_u64(&f, "last_rewrite_unix", s->last_rewrite_unix);
        json_u64(&f, "last_rewrite_us", s->last_rewrite_us);
        json_u64(&f, "last_rewrite_stall_us", s->last_rewrite_stall_us);
        json_bool(&f, "refusing_sends", s->refusing_sends);
        json_u64(&f, "recovery_us", s->recovery_us);
        json_u64(&f, "recovered_channels", s->recovered_channels);
        json_u64(&f, "recovered_values", s->recovered_values);
    }
    json_bool(&f, "tls", s->tls);
    if (s->tls) {
        json_u64(&f, "tls_handshakes", s->tls_handshakes);
        json_u64(&f, "tls_handshake_failures", s->tls_handshake_failures);
        json_u64(&f, "tls_reloads", s->tls_reloads);
        json_u64(&f, "tls_reload_failures", s->tls_reload_failures);
        json_u64(&f, "tls_not_after", (uint64_t)s->tls_not_after);
    }
    json_end(f);
}

static void print_stat(const chan_stat_t *s)
{
    printf("name: %s\nlen: %llu\ncap: %llu\nblocked_senders: %llu\nblocked_receivers: %llu\n"
           "inflight: %llu\nsent: %llu\nreceived: %llu\nclosed: %s\ntemp: %s\n",
           s->name, (unsigned long long)s->len, (unsigned long long)s->cap,
           (unsigned long long)s->senders, (unsigned long long)s->receivers,
           (unsigned long long)s->inflight, (unsigned long long)s->sent,
           (unsigned long long)s->received, s->closed ? "yes" : "no", s->temp ? "yes" : "no");
}

static void print_durability(const chan_server_stat_t *s)
{
    if (!s->durable) {
        printf("durable: no (memory only: a restart loses every value)\n");
        return;
    }
    printf("durable: yes\nfsync: %s\ndisk_bytes: %llu\njournal_records: %llu\n"
           "journal_bytes: %llu\nfsyncs: %llu\nfsync_us_total: %llu\nfsync_us_max: %llu\n"
           "rewrites: %llu\nrewrite_failures: %llu\nlast_rewrite_unix: %llu\n"
           "last_rewrite_us: %llu\nlast_rewrite_stall_us: %llu\nrefusing_sends: %s\n"
           "recovery_us: %llu\nrecovered_channels: %llu\nrecovered_values: %llu\n",
           s->fsync, (unsigned long long)s->disk_bytes, (unsigned long long)s->journal_records,
           (unsigned long long)s->journal_bytes, (unsigned long long)s->fsyncs,
           (unsigned long long)s->fsync_us_total, (unsigned long long)s->fsync_us_max,
           (unsigned long long)s->rewrites, (unsigned long long)s->rewrite_failures,
           (unsigned long long)s->last_rewrite_unix, (unsigned long long)s->last_rewrite_us,
           (unsigned long long)s->last_rewrite_stall_us, s->refusing_sends ? "yes" : "no",
           (unsigned long long)s->recovery_us, (unsigned long long)s->recovered_channels,
           (unsigned long long)s->recovered_values);
}

static void print_tls(const chan_server_stat_t *s)
{
    if (!s->tls) {
        printf("tls: no\n");
        return;
    }
    printf("tls: yes\ntls_handshakes: %llu\ntls_handshake_failures: %llu\ntls_reloads: %llu\n"
           "tls_reload_failures: %llu\ntls_not_after: %lld\n",
           (unsigned long long)s->tls_handshakes, (unsigned long long)s->tls_handshake_failures,
           (unsigned long long)s->tls_reloads, (unsigned long long)s->tls_reload_failures,
           (long long)s->tls_not_after);
}

static int cmd_stat(struct cli *c, int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "chan: stat takes at most one channel name\n");
        return EXIT_USAGE;
    }
    if (argc == 1) {
        chan_stat_t s;
        if (chan_stat(c->cl, argv[0], &s, chan_now() + 10000) < 0)
            return fail(argv[0], errno == ENOENT ? ENOENT : errno);
        if (c->json)
            json_stat(&s);
        else
            print_stat(&s);
        return EXIT_OK;
    }
    chan_server_stat_t s;
    if (chan_server_stat(c->cl, &s, chan_now() + 10000) < 0)
        return fail("stat", errno);
    if (c->json) {
        json_server(&s);
        return EXIT_OK;
    }
    printf("uptime_ms: %llu\nconnections: %llu\nchannels: %llu\npending: %llu\n"
           "inflight: %llu\nvalues_sent: %llu\nvalues_received: %llu\n"
           "value_bytes: %llu\noutput_bytes: %llu\nmax_frame: %llu\nmax_value: %llu\n"
           "ack_expired: %llu\n",
           (unsigned long long)s.uptime_ms, (unsigned long long)s.connections,
           (unsigned long long)s.channels, (unsigned long long)s.pending,
           (unsigned long long)s.inflight, (unsigned long long)s.values_sent,
           (unsigned long long)s.values_received, (unsigned long long)s.value_bytes,
           (unsigned long long)s.output_bytes,
           (unsigned long long)s.max_frame,
           (unsigned long long)s.max_value, (unsigned long long)s.ack_expired);
    printf("loop_max_us: %llu\nloop_callbacks:", (unsigned long long)s.loop_max_us);
    for (size_t i = 0; i < s.loop_buckets; i++) {
        if (s.loop_bounds_us[i] == UINT64_MAX)
            printf(" more:%llu", (unsigned long long)s.loop_counts[i]);
        else
            printf(" le%lluus:%llu", (unsigned long long)s.loop_bounds_us[i],
                   (unsigned long long)s.loop_counts[i]);
    }
    printf("\n");
    print_durability(&s);
    print_tls(&s);
    return EXIT_OK;
}

static int cmd_ls(struct cli *c, int argc, char **argv)
{
    (void)argv;
    if (argc) {
        fprintf(stderr, "chan: ls takes no arguments\n");
        return EXIT_USAGE;
    }
    chan_stat_t *list;
    ssize_t n = chan_list(c->cl, &list, chan_now() + 10000);
    if (n < 0)
        return fail("ls", errno);
    if (c->json) {
        for (ssize_t i = 0; i < n; i++)
            json_stat(&list[i]);
        free(list);
        return EXIT_OK;
    }
    printf("%-32s %10s %10s %8s %8s %8s %s\n", "NAME", "LEN", "CAP", "SENDERS", "RECVRS",
           "INFLIGHT", "FLAGS");
    for (ssize_t i = 0; i < n; i++)
        printf("%-32s %10llu %10llu %8llu %8llu %8llu %s%s\n", list[i].name,
               (unsigned long long)list[i].len, (unsigned long long)list[i].cap,
               (unsigned long long)list[i].senders, (unsigned long long)list[i].receivers,
               (unsigned long long)list[i].inflight, list[i].closed ? "closed " : "",
               list[i].temp ? "temp" : "");
    free(list);
    return EXIT_OK;
}

static int cmd_ping(struct cli *c, int argc, char **argv)
{
    (void)argv;
    if (argc) {
        fprintf(stderr, "chan: ping takes no arguments\n");
        return EXIT_USAGE;
    }
    int64_t t0 = chan_mono_ns();
    if (chan_ping(c->cl, c->timeout < 0 ? chan_now() + 10000 : deadline_of(c)) < 0)
        return fail("ping", errno);
    printf("PONG %ld us\n", (long)((chan_mono_ns() - t0) / 1000));
    return EXIT_OK;
}

/* How far node n is behind its group's primary, in bytes, when both are in
 * one log (-1: unknown, or n is the primary). */
static long long cluster_lag(const chan_cluster_stat_t *s, const chan_cluster_node_t *n)
{
    const chan_cluster_node_t *p = NULL;
    for (size_t k = 0; k < s->nnodes; k++)
        if (!strcmp(s->nodes[k].group, n->group) && !strcmp(s->nodes[k].role, "primary"))
            p = &s->nodes[k];
    if (p && p != n && p->gen == n->gen && p->off >= n->off)
        return (long long)(p->off - n->off);
    return -1;
}

/* The node asked, then each node of the cluster, an object a line. */
static void json_cluster(const chan_cluster_stat_t *s)
{
    bool f = true;
    json_text(&f, "cluster", s->cluster);
    json_text(&f, "node", s->node);
    json_text(&f, "group", s->group);
    json_text(&f, "role", s->role);
    json_u64(&f, "term", s->term);
    json_text(&f, "primary", s->primary);
    json_text(&f, "replication", s->replication);
    json_text(&f, "etcd", s->etcd);
    json_bool(&f, "etcd_ok", s->etcd_ok);
    json_i64(&f, "lease_left_ms", s->lease_left_ms);
    json_u64(&f, "replicas", s->replicas);
    json_u64(&f, "replica_lag_bytes", s->replica_lag_bytes);
    json_u64(&f, "elections_won", s->elections_won);
    json_u64(&f, "etcd_errors", s->etcd_errors);
    json_end(f);
    for (size_t i = 0; i < s->nnodes; i++) {
        const chan_cluster_node_t *n = &s->nodes[i];
        f = true;
        json_text(&f, "member", n->node);
        json_text(&f, "group", n->group);
        json_text(&f, "addr", n->addr);
        json_text(&f, "role", n->role);
        json_u64(&f, "log", n->gen);
        json_u64(&f, "length", n->off);
        long long lag = cluster_lag(s, n);
        json_key(&f, "lag_bytes");
        if (lag < 0)
            fputs("null", stdout);
        else
            printf("%lld", lag);
        json_end(f);
    }
}

static void print_ranges(const struct cli *c, const chan_slot_range_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c->json) {
            bool f = true;
            json_u64(&f, "lo", v[i].lo);
            json_u64(&f, "hi", v[i].hi);
            json_text(&f, "group", v[i].group);
            json_text(&f, "primary", v[i].primary);
            if (v[i].moving)
                json_text(&f, "moving_to", v[i].to);
            json_end(f);
        } else {
            printf("%u-%u %s %s%s%s\n", v[i].lo, v[i].hi, v[i].group,
                   *v[i].primary ? v[i].primary : "(no primary)",
                   v[i].moving ? " moving to " : "", v[i].moving ? v[i].to : "");
        }
    }
}

static int cluster_slots(struct cli *c)
{
    chan_slot_range_t *v;
    ssize_t n = chan_cluster_slots(c->cl, &v, chan_now() + 10000);
    if (n < 0)
        return fail("cluster slots", errno);
    print_ranges(c, v, (size_t)n);
    free(v);
    return EXIT_OK;
}

/* Whether the map does not yet give slots lo..hi to group, done (the node
 * asked reads etcd a few times a second: right after the move is recorded
 * it may not show it yet); -1: cannot tell. */
static int still_moving(struct cli *c, unsigned lo, unsigned hi, const char *group)
{
    chan_slot_range_t *v;
    ssize_t n = chan_cluster_slots(c->cl, &v, chan_now() + 10000);
    if (n < 0)
        return -1;
    int moving = 0;
    for (ssize_t i = 0; i < n; i++)
        if (v[i].lo <= hi && v[i].hi >= lo && (v[i].moving || strcmp(v[i].group, group)))
            moving = 1;
    free(v);
    return moving;
}

static int cluster_move(struct cli *c, const char *range, const char *group)
{
    char *end;
    errno = 0;
    unsigned long lo = strtoul(range, &end, 10), hi = lo;
    if (!errno && *end == '-' && end[1])
        hi = strtoul(end + 1, &end, 10);
    if (errno || end == range || *end || lo > hi || hi >= CHAN_SLOTS) {
        fprintf(stderr, "chan: cluster move: '%s' is not LO or LO-HI with 0 <= LO <= HI < %d\n",
                range, CHAN_SLOTS);
        return EXIT_USAGE;
    }
    int64_t t0 = chan_now();
    int64_t deadline = c->timeout < 0 ? -1 : t0 + c->timeout;
    if (chan_cluster_move(c->cl, (unsigned)lo, (unsigned)hi, group, chan_now() + 10000) < 0)
        return fail("cluster move", errno);
    for (;;) {
        int m = still_moving(c, (unsigned)lo, (unsigned)hi, group);
        if (m < 0 && errno != ECONNRESET && errno != ECONNREFUSED && errno != EAGAIN)
            return fail("cluster move", errno);
        /* the node asked went away (a failover): the next call redials */
        if (m == 0)
            break;
        if (deadline >= 0 && chan_now() >= deadline) {
            fprintf(stderr, "chan: cluster move: slots %lu-%lu are still moving to %s\n", lo, hi,
                    group);
            return code_of(ETIMEDOUT);
        }
        chan_sleep(chan_now() + 50);
    }
    printf("moved slots %lu-%lu to group %s in %lld ms\n", lo, hi, group,
           (long long)(chan_now() - t0));
    return EXIT_OK;
}

static int cmd_cluster(struct cli *c, int argc, char **argv)
{
    if (argc == 1 && !strcmp(argv[0], "slots"))
        return cluster_slots(c);
    if (argc == 3 && !strcmp(argv[0], "move"))
        return cluster_move(c, argv[1], argv[2]);
    if (argc != 1 || strcmp(argv[0], "status")) {
        fprintf(stderr, "chan: cluster takes a subcommand: status, slots, move LO[-HI] GROUP, "
                "slot NAME\n");
        return EXIT_USAGE;
    }
    chan_cluster_stat_t *s = malloc(sizeof *s);
    if (!s)
        return fail("cluster", ENOMEM);
    if (chan_cluster_stat(c->cl, s, chan_now() + 10000) < 0) {
        free(s);
        return fail("cluster", errno);
    }
    if (!s->member) {
        free(s);
        fprintf(stderr, "chan: this chand is not a cluster node (no --cluster)\n");
        return EXIT_ERROR;
    }
    if (c->json) {
        json_cluster(s);
        free(s);
        chan_slot_range_t *v;
        ssize_t nr = chan_cluster_slots(c->cl, &v, chan_now() + 10000);
        if (nr > 0) {
            print_ranges(c, v, (size_t)nr);
            free(v);
        }
        return EXIT_OK;
    }
    printf("cluster: %s\nnode: %s\ngroup: %s\nrole: %s\nterm: %llu\n", s->cluster, s->node,
           s->group, s->role, (unsigned long long)s->term);
    if (*s->primary)
        printf("primary: %s\n", s->primary);
    printf("replication: %s\netcd: %s (%s)\nlease_left_ms: %lld\nreplicas: %u\n"
           "replica_lag_bytes: %llu\nelections_won: %llu\netcd_errors: %llu\n",
           s->replication, s->etcd, s->etcd_ok ? "ok" : "failing", (long long)s->lease_left_ms,
           s->replicas, (unsigned long long)s->replica_lag_bytes,
           (unsigned long long)s->elections_won, (unsigned long long)s->etcd_errors);
    printf("%-24s %-12s %-24s %-10s %22s %12s %s\n", "NODE", "GROUP", "ADDRESS", "ROLE", "LOG",
           "LENGTH", "LAG");
    for (size_t i = 0; i < s->nnodes; i++) {
        const chan_cluster_node_t *n = &s->nodes[i];
        /* lag: bytes behind its group's primary, when both are in one log */
        char lag[32] = "-";
        long long l = cluster_lag(s, n);
        if (l >= 0)
            snprintf(lag, sizeof lag, "%lld", l);
        else if (strcmp(n->role, "primary"))
            snprintf(lag, sizeof lag, "?");
        printf("%-24s %-12s %-24s %-10s %22llu %12llu %s\n", n->node, n->group, n->addr, n->role,
               (unsigned long long)n->gen, (unsigned long long)n->off, lag);
    }
    free(s);
    chan_slot_range_t *v;
    ssize_t nr = chan_cluster_slots(c->cl, &v, chan_now() + 10000);
    if (nr > 0) {
        printf("SLOTS\n");
        print_ranges(c, v, (size_t)nr);
        free(v);
    }
    return EXIT_OK;
}

/* ---- main ---- */

static const struct {
    const char *name;
    int (*fn)(struct cli *c, int argc, char **argv);
} commands[] = {
    { "send", cmd_send }, { "recv", cmd_recv }, { "make", cmd_make }, { "close", cmd_close },
    { "stat", cmd_stat }, { "ls", cmd_ls }, { "ping", cmd_ping }, { "rm", cmd_rm },
    { "cluster", cmd_cluster },
};

static int parse_long(const char *s, long min, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min)
        return -1;
    *out = v;
    return 0;
}

/* ---- chan acl hash: the format of chand's --acl-file (chand_acl.h) ---- */

#define ACL_SALT_BYTES 16
#define ACL_HASH_BYTES 32

/* One line of standard input, without its newline; not echoed if it is a
 * terminal.  NULL if there is none. */
static char *read_secret(void)
{
    struct termios old, quiet;
    bool tty = isatty(0) && tcgetattr(0, &old) == 0;
    if (tty) {
        fputs("Secret: ", stderr);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(0, TCSAFLUSH, &quiet);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (tty) {
        tcsetattr(0, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (n < 0) {
        free(line);
        return NULL;
    }
    line[strcspn(line, "\r\n")] = 0;
    return line;
}

static void put_hex(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

static int cmd_acl(int argc, char **argv, long iterations)
{
    if (argc < 1 || strcmp(argv[0], "hash") || argc > 2) {
        fprintf(stderr, "chan: acl: expected `chan acl hash [NAME]`\n");
        return EXIT_USAGE;
    }
    const char *name = argc == 2 ? argv[1] : NULL;
    if (name) {
        size_t n = strlen(name);
        bool ok = n >= 1 && n <= 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
                 (name[i] >= '0' && name[i] <= '9') || strchr("._@-", name[i]);
        if (!ok) {
            fprintf(stderr, "chan: acl hash: a user name is 1 to 64 of [A-Za-z0-9._@-]\n");
            return EXIT_USAGE;
        }
    }
    char *secret = read_secret();
    if (!secret || !*secret) {
        fprintf(stderr, "chan: acl hash: no secret on standard input\n");
        free(secret);
        return EXIT_ERROR;
    }
    unsigned char salt[ACL_SALT_BYTES], hash[ACL_HASH_BYTES];
    int ok = RAND_bytes(salt, sizeof salt) == 1 &&
             PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), salt, sizeof salt, (int)iterations,
                               EVP_sha256(), sizeof hash, hash) == 1;
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    if (!ok) {
        fprintf(stderr, "chan: acl hash: OpenSSL failed\n");
        return EXIT_ERROR;
    }
    if (name)
        printf("user %s ", name);
    printf("pbkdf2-sha256$%ld$", iterations);
    put_hex(salt, sizeof salt);
    putchar('$');
    put_hex(hash, sizeof hash);
    putchar('\n');
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_ERROR;
}

static char *read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char line[1024];
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    if (!ok)
        return NULL;
    line[strcspn(line, "\r\n")] = 0;
    return strdup(line);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "addr", required_argument, NULL, 'a' },
        { "token-file", required_argument, NULL, 'T' },
        { "user", required_argument, NULL, 'u' },
        { "iterations", required_argument, NULL, 'I' },
        { "tls-ca", required_argument, NULL, 'C' },
        { "tls-cert", required_argument, NULL, 'E' },
        { "tls-key", required_argument, NULL, 'K' },
        { "tls-servername", required_argument, NULL, 'S' },
        { "cap", required_argument, NULL, 'c' },
        { "count", required_argument, NULL, 'n' },
        { "timeout", required_argument, NULL, 't' },
        { "raw", no_argument, NULL, 'r' },
        { "null", no_argument, NULL, '0' },
        { "no-create", no_argument, NULL, 'N' },
        { "redelivered", no_argument, NULL, 'R' },
        { "json", no_argument, NULL, 'J' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct cli c = { .cap = CHAN_CAP_ANY, .timeout = -1, .count = 1, .sep = '\n' };
    const char *user = NULL;
    long iterations = 10000;
    int o;
    /* options may come before or after the command and its arguments */
    while ((o = getopt_long(argc, argv, "a:c:n:t:u:r0hV", opts, NULL)) != -1) {
        switch (o) {
        case 'a': c.addr = optarg; break;
        case 'u': user = optarg; break;
        case 'I':
            if (parse_long(optarg, 1000, &iterations) < 0 || iterations > 1000000) {
                fprintf(stderr, "chan: --iterations: '%s' is not from 1000 to 1000000\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'T':
            if (!(c.token = read_token(optarg))) {
                fprintf(stderr, "chan: --token-file %s: cannot read a token\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'c':
            if (parse_long(optarg, 0, &c.cap) < 0) {
                fprintf(stderr, "chan: --cap: '%s' is not a capacity (0 or more)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'n':
            if (parse_long(optarg, 0, &c.count) < 0) {
                fprintf(stderr, "chan: --count: '%s' is not a count (0 or more)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 't':
            if (parse_long(optarg, 0, &c.timeout) < 0) {
                fprintf(stderr, "chan: --timeout: '%s' is not milliseconds (0 or more)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'r': c.raw = true; break;
        case '0': c.sep = '\0'; break;
        case 'N': c.no_create = true; break;
        case 'R': c.redelivered = true; break;
        case 'J': c.json = true; break;
        case 'C': c.tls.tls_ca = optarg; c.tls.tls = 1; break;
        case 'E': c.tls.tls_cert = optarg; c.tls.tls = 1; break;
        case 'K': c.tls.tls_key = optarg; c.tls.tls = 1; break;
        case 'S': c.tls.tls_servername = optarg; c.tls.tls = 1; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        case 'V': printf("chan %s\n", PACKAGE_VERSION); return EXIT_OK;
        default:
            fprintf(stderr, "Try 'chan --help'.\n");
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[optind];
    if (!strcmp(cmd, "acl")) {
        free(c.token);
        return cmd_acl(argc - optind - 1, argv + optind + 1, iterations);
    }
    if (!strcmp(cmd, "cluster") && argc - optind == 3 && !strcmp(argv[optind + 1], "slot")) {
        free(c.token);   /* the slot of a name: no daemon needed */
        printf("%u\n", chan_slot_of(argv[optind + 2]));
        return EXIT_OK;
    }
    if (c.raw && c.sep != '\n') {
        fprintf(stderr, "chan: --raw and --null exclude each other\n");
        return EXIT_USAGE;
    }
    if (c.redelivered && (strcmp(cmd, "recv") != 0 || c.raw)) {
        fprintf(stderr, "chan: --redelivered is for recv, and not with --raw\n");
        return EXIT_USAGE;
    }
    if (c.no_create && strcmp(cmd, "send") != 0 && strcmp(cmd, "recv") != 0) {
        fprintf(stderr, "chan: --no-create is for send and recv\n");
        return EXIT_USAGE;
    }
    /* A value counts as received once it is printed: acknowledgements wait
     * for the next request (or the final disconnect), never a timer, so
     * values lost with a broken stdout go back to their channel. */
    signal(SIGPIPE, SIG_IGN);
    setenv("CHAN_ACK_DELAY_MS", "86400000", 0);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) != 0)
            continue;
        chan_connect_opts_t co = c.tls;
        co.addr = c.addr;
        co.token = c.token;
        co.user = user;
        c.cl = chan_connect_opts(&co, chan_now() + 10000);
        if (!c.cl) {
            int e = errno;
            fprintf(stderr, "chan: cannot connect to %s: %s\n",
                    c.addr ? c.addr : getenv("CHAN_ADDR") ? getenv("CHAN_ADDR") : CHAN_DEFAULT_ADDR,
                    *chan_errmsg() ? chan_errmsg() : e == EACCES ? "token (or user and secret) refused" : strerror(e));
            free(c.token);
            return EXIT_ERROR;
        }
        int rc = commands[i].fn(&c, argc - optind - 1, argv + optind + 1);
        chan_disconnect(c.cl);
        free(c.token);
        return rc;
    }
    fprintf(stderr, "chan: unknown command '%s'\nTry 'chan --help'.\n", cmd);
    return EXIT_USAGE;
}

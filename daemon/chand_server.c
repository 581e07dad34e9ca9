/*
 * chand_server.c - chand's event loop: listeners, signals, the deadline
 * timer, and an orderly shutdown.
 *
 * Time: the core has no clock.  Each blocked request with a deadline sits in
 * the core's heap; one libevent timer is kept armed for the earliest one and
 * re-armed after every batch of work (Redis's beforeSleep idea).
 *
 * Shutdown (SIGTERM/SIGINT): close the listeners, let the core answer every
 * blocked request "shutting down", stop reading, and exit once every
 * connection has flushed its output (or after a bound, for stuck peers);
 * then the journal, if any, is written and fdatasync'd.
 *
 * With --data-dir the loop runs a turn at a time (EVLOOP_ONCE): after each
 * turn the journal writes the turn's records, and only then do the turn's
 * replies go out (chand_conn_flush_turn).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/listener.h>
#include <event2/http.h>
#include <event2/util.h>
#include <openssl/crypto.h>

#include "chan_addr.h"
#include "chand_alloc.h"
#include "chand_hash.h"
#include "chand_log.h"
#include "chand_notify.h"
#include "chand_server.h"
#include "chand_slots.h"
#include "chand_tls.h"

#define STOP_TIMEOUT_S 3
#define PEER_LOG_EVERY_MS 1000

uint64_t chand_now(void)
{
    return chand_now_us() / 1000;
}

void chand_log_peer(chand_server_t *s, const char *fmt, ...)
{
    uint64_t now = chand_now();
    if (s->peer_log_ms && now - s->peer_log_ms < PEER_LOG_EVERY_MS) {
        s->peer_log_dropped++;
        return;
    }
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (s->peer_log_dropped)
        log_warn("%s (and %llu like it in the last %llu ms, not logged)", line,
                 (unsigned long long)s->peer_log_dropped,
                 (unsigned long long)(now - s->peer_log_ms));
    else
        log_warn("%s", line);
    s->peer_log_ms = now ? now : 1;
    s->peer_log_dropped = 0;
}

uint64_t chand_busy_begin(chand_server_t *s)
{
    uint64_t t0 = chand_now_us();
    core_set_now(s->core, (int64_t)(t0 / 1000));   /* deliveries' ack deadlines */
    return t0;
}

void chand_busy_end(chand_server_t *s, uint64_t t0)
{
    chand_stall_since(&s->stall, t0);
}

/* Values of deleted channels freed per turn of the loop: well under a
 * millisecond's work, so that a huge delete never stalls the others. */
#define RECLAIM_SLICE 16384

void chand_server_rearm(chand_server_t *s)
{
    static const struct timeval now = { 0, 0 };
    if (core_reclaim(s->core, 0) && !evtimer_pending(s->reclaim_timer, NULL))
        evtimer_add(s->reclaim_timer, &now);   /* after the sockets are polled */
    int64_t next = core_next_deadline(s->core);
    if (next < 0) {
        evtimer_del(s->deadline_timer);
        return;
    }
    int64_t left = next - (int64_t)chand_now();
    if (left < 0)
        left = 0;
    struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
    evtimer_add(s->deadline_timer, &tv);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chand_server_t *s = arg;
    uint64_t t0 = chand_busy_begin(s);
    core_expire(s->core, (int64_t)(t0 / 1000));
    chand_conn_flush_pending(s);
    chand_server_rearm(s);
    chand_busy_end(s, t0);
}

static void reclaim_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chand_server_t *s = arg;
    uint64_t t0 = chand_busy_begin(s);
    core_reclaim(s->core, RECLAIM_SLICE);
    chand_server_rearm(s);
    chand_busy_end(s, t0);
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chand_server_t *s = arg;
    uint64_t t0 = chand_busy_begin(s);
    chand_conn_reap(s);
    chand_conn_flush_pending(s);
    chand_server_rearm(s);   /* its temporary channels may have gone */
    chand_busy_end(s, t0);
    if (s->stopping && s->nconns == 0)
        event_base_loopexit(s->base, NULL);
}

static void journal_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chand_server_t *s = arg;
    uint64_t t0 = chand_busy_begin(s);
    chand_journal_tick(s->journal);
    chand_busy_end(s, t0);
}

/* --fsync always: the sync thread finished one: send what waited for it. */
static void synced_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    chand_server_t *s = arg;
    uint64_t t0 = chand_busy_begin(s);
    uint64_t n;
    (void)!read(fd, &n, sizeof n);
    chand_server_release(s);
    chand_busy_end(s, t0);
}

uint64_t chand_server_durable(chand_server_t *s)
{
    uint64_t pos = UINT64_MAX;
    if (s->journal && s->journal_always)
        pos = chand_journal_synced(s->journal);
    if (s->cluster && s->repl_sync && s->repl_acked < pos)
        pos = s->repl_acked;
    return pos;
}

void chand_server_release(chand_server_t *s)
{
    chand_conn_release_held(s, chand_server_durable(s));
}

bool chand_server_may_serve(const chand_server_t *s)
{
    return !s->cluster || (chand_cluster_role(s->cluster) == CL_PRIMARY && s->journal);
}

/* Feeds with more to send than their sockets took: another turn. */
static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chand_server_t *s = arg;
    uint64_t t0 = chand_busy_begin(s);
    chand_repl_pump(s);
    chand_busy_end(s, t0);
}

static int load_token(chand_server_t *s, const char *path);
static int load_acl(chand_server_t *s, const char *path);

/* Open the log file again (logrotate moved it away), then read the
 * configuration again and apply what changed of the log's settings; the
 * other options that changed are logged as needing a restart
 * (chand_opts_reload). */
static void chand_server_reconfigure(chand_server_t *s)
{
    chand_opts_t *o = &s->opts;
    char err[512];
    if (chand_log_setup(chand_log_level, o->log_format, o->log_file, err, sizeof err) < 0)
        log_err("SIGHUP: %s; logging on as before", err);
    int format = o->log_format;
    const char *file = o->log_file;
    if (chand_opts_reload(o) < 0)
        return;
    if (o->log_level == chand_log_level && o->log_format == format && o->log_file == file)
        return;
    if (chand_log_setup(o->log_level, o->log_format, o->log_file, err, sizeof err) < 0) {
        log_err("SIGHUP: %s; logging on as before", err);
        o->log_format = format;
        o->log_file = file;
        chand_log_setup(o->log_level, format, file, err, sizeof err);   /* the level, at least */
    }
}

/* SIGHUP: the configuration again (chand_server_reconfigure), then the
 * --acl-file, the --auth-file and the TLS files again.  Connections stay;
 * each finds its user again in the new ACL at its next request
 * (chand_dispatch.c), and keeps the TLS context it began with
 * (chand_tls_reload).  A file that does not load changes nothing. */
static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    chand_server_t *s = arg;
    uint64_t t0 = chand_busy_begin(s);
    chand_notify_reloading();
    chand_server_reconfigure(s);
    if (!s->opts.acl_file && !s->opts.auth_file && !s->tls_ctx)
        log_info("SIGHUP: no --acl-file, --auth-file or --tls-cert to read again");
    if (s->opts.acl_file && load_acl(s, s->opts.acl_file) == 0)
        log_info("SIGHUP: read --acl-file %s again: %zu users", s->opts.acl_file,
                 s->acl->nusers);
    else if (s->opts.acl_file)
        log_err("SIGHUP: --acl-file %s did not load; the users and permissions loaded before "
                "stay in force", s->opts.acl_file);
    if (s->opts.auth_file && load_token(s, s->opts.auth_file) == 0)
        log_info("SIGHUP: read --auth-file %s again", s->opts.auth_file);
    else if (s->opts.auth_file)
        log_err("SIGHUP: --auth-file %s did not load; the token loaded before stays",
                s->opts.auth_file);
    chand_tls_reload(s);   /* (logs either way) */
    chand_notify("READY=1");
    chand_busy_end(s, t0);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
                      int len, void *arg)
{
    (void)l;
    chand_server_t *s = arg;
    chand_conn_accept(s, fd, addr, len);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chand_server_t *s = arg;
    for (size_t i = 0; i < s->nlisteners; i++)
        evconnlistener_enable(s->listeners[i]);
}

/* accept() failed: out of descriptors, most likely.  Stop accepting for a
 * moment instead of spinning on a listener that stays readable. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l;
    chand_server_t *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    log_warn("accept: %s; pausing accepts for 100 ms", evutil_socket_error_to_string(err));
    for (size_t i = 0; i < s->nlisteners; i++)
        evconnlistener_disable(s->listeners[i]);
    struct timeval tv = { 0, 100000 };
    evtimer_add(s->accept_resume, &tv);
}

static void stop_now_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chand_server_t *s = arg;
    log_warn("shutdown: %llu connection(s) did not drain in %d s; closing them",
             (unsigned long long)s->nconns, STOP_TIMEOUT_S);
    event_base_loopexit(s->base, NULL);
}

static void close_listeners(chand_server_t *s)
{
    for (size_t i = 0; i < s->nlisteners; i++) {
        evutil_socket_t fd = evconnlistener_get_fd(s->listeners[i]);
        struct sockaddr_un sun;
        socklen_t len = sizeof sun;
        if (getsockname(fd, (struct sockaddr *)&sun, &len) == 0 && sun.sun_family == AF_UNIX &&
            sun.sun_path[0])
            unlink(sun.sun_path);
        evconnlistener_free(s->listeners[i]);
    }
    s->nlisteners = 0;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    chand_server_t *s = arg;
    if (s->stopping)
        return;
    log_info("%s: shutting down (%llu connections)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
             (unsigned long long)s->nconns);
    chand_server_stop(s);
}

void chand_server_stop(chand_server_t *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    chand_notify("STOPPING=1");
    close_listeners(s);
    core_shutdown(s->core);
    chand_conn_flush_pending(s);
    /* replicas stay until they have everything (chand_server_stop_check):
     * a clean stop of a primary loses nothing it answered, under async
     * replication too */
    for (qlink_t *l = s->conns.next; l != &s->conns; l = l->next) {
        chand_conn_t *c = QLIST_ENTRY(l, chand_conn_t, link);
        if (!c->feed)
            chand_conn_drain(c);
    }
    struct timeval tv = { STOP_TIMEOUT_S, 0 };
    evtimer_add(s->stop_timer, &tv);
    event_active(s->reaper, EV_TIMEOUT, 1);
}

void chand_server_stop_check(chand_server_t *s)
{
    if (!s->stopping || qlist_empty(&s->feeds))
        return;
    uint64_t feeds = chand_repl_replicas(s);
    if (s->nconns > feeds || !chand_repl_caught_up(s))
        return;
    for (qlink_t *l = s->conns.next; l != &s->conns; l = l->next)
        chand_conn_drain(QLIST_ENTRY(l, chand_conn_t, link));
}

/* ---- setup ---- */

static int load_token(chand_server_t *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        log_err("--auth-file %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t len = 0;
    while (len < n && buf[len] != '\n' && buf[len] != '\r')
        len++;
    if (len == 0 || len == sizeof buf) {
        log_err("--auth-file %s: the first line must hold a token of 1 to 1023 bytes", path);
        return -1;
    }
    if (s->token) {
        OPENSSL_cleanse(s->token, s->token_len);
        free(s->token);
    }
    s->token = xmalloc(len);
    memcpy(s->token, buf, len);
    s->token_len = len;
    OPENSSL_cleanse(buf, sizeof buf);
    return 0;
}

/* Load the ACL in place of the one in force; connections holding users of
 * the old one find them again by name (their user_gen is behind). */
static int load_acl(chand_server_t *s, const char *path)
{
    char err[700];
    acl_t *a = chand_acl_load(path, err, sizeof err);
    if (!a) {
        log_err("--acl-file %s", err);
        return -1;
    }
    chand_acl_free(s->acl);
    s->acl = a;
    s->acl_gen++;
    return 0;
}

struct evconnlistener *chand_listen(chand_server_t *s, const char *flag, const char *addr,
                                    bool tcp_only, evconnlistener_cb cb, char *shown,
                                    size_t shown_size)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (chan_addr_parse(addr, 1, &ss, &len) < 0 || (tcp_only && ss.ss_family == AF_UNIX)) {
        log_err("%s %s: not HOST:PORT, [IPV6]:PORT%s", flag, addr,
                tcp_only ? " (TCP only)" : " or unix:/PATH");
        return NULL;
    }
    if (ss.ss_family == AF_UNIX) {
        /* a socket file left by a previous run would make bind fail */
        struct stat st;
        const char *path = ((struct sockaddr_un *)&ss)->sun_path;
        if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(path);
    }
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
    struct evconnlistener *l = evconnlistener_new_bind(s->base, cb, s, flags, 511,
                                                       (struct sockaddr *)&ss, (int)len);
    if (!l) {
        log_err("%s %s: %s", flag, addr, strerror(errno));
        return NULL;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &blen);
    if (bound.ss_family == AF_INET || bound.ss_family == AF_INET6) {
        char host[64];
        uint16_t port;
        if (bound.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&bound;
            evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
            snprintf(shown, shown_size, "%s:%u", host, port);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&bound;
            evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = ntohs(in6->sin6_port);
            snprintf(shown, shown_size, "[%s]:%u", host, port);
        }
    } else {
        snprintf(shown, shown_size, "%s", addr);
    }
    return l;
}

static int open_listener(chand_server_t *s, const char *addr)
{
    char shown[128];
    struct evconnlistener *l = chand_listen(s, "--listen", addr, false, accept_cb, shown, sizeof shown);
    if (!l)
        return -1;
    evconnlistener_set_error_cb(l, accept_error_cb);
    s->listeners[s->nlisteners++] = l;
    log_info("listening on %s", shown);
    return 0;
}

/* The first TCP listener's port, written aside and renamed into place so
 * that a reader never sees a partial file. */
static int write_port_file(chand_server_t *s, const char *path)
{
    int port = -1;
    for (size_t i = 0; i < s->nlisteners && port < 0; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        getsockname(evconnlistener_get_fd(s->listeners[i]), (struct sockaddr *)&ss, &len);
        if (ss.ss_family == AF_INET)
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    if (port < 0) {
        log_err("--port-file: no TCP listener");
        return -1;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        log_err("--port-file %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int open_journal(chand_server_t *s)
{
    const chand_opts_t *o = &s->opts;
    jr_opts_t jo = {
        .dir = o->data_dir,
        .fsync = !strcmp(o->fsync, "always") ? JR_FSYNC_ALWAYS
                 : !strcmp(o->fsync, "no")   ? JR_FSYNC_NO
                                             : JR_FSYNC_EVERYSEC,
        .prealloc = o->prealloc,
        .rewrite_size = o->rewrite_size,
        .locked = s->cluster != NULL,
        .lock_fd = s->lock_fd,
    };
    s->journal = chand_journal_open(&jo, s->core);
    if (!s->journal)
        return -1;
    s->lock_fd = -1;   /* the journal's now */
    s->journal_always = jo.fsync == JR_FSYNC_ALWAYS;
    s->holds = chand_journal_holds(s->journal) || (s->cluster && s->repl_sync);
    s->journal_timer = event_new(s->base, -1, EV_PERSIST, journal_cb, s);
    struct timeval tv = { 0, 100000 };
    event_add(s->journal_timer, &tv);
    if (chand_journal_holds(s->journal)) {
        s->journal_notify = event_new(s->base, chand_journal_notify_fd(s->journal),
                                      EV_READ | EV_PERSIST, synced_cb, s);
        event_add(s->journal_notify, NULL);
    }
    return 0;
}

/* ---- the cluster's decisions ---- */

static void cl_promote(void *ctx, uint64_t term)
{
    chand_server_t *s = ctx;
    chand_repl_follower_free(s->follower);
    s->follower = NULL;
    if (open_journal(s) < 0) {
        log_err("cannot load the data dir to serve as primary; stopping");
        exit(1);
    }
    /* a log of our own for the term: no other node ever wrote one of
     * this generation (chand_repl.h) */
    if (chand_journal_rotate(s->journal, term << 24) < 0) {
        log_err("cannot start the term's log; stopping");
        exit(1);
    }
    s->repl_acked = chand_journal_written(s->journal);   /* nothing waits yet */
    log_info("serving as primary of group %s (term %llu)", s->opts.group,
             (unsigned long long)term);
    chand_slots_update(s);   /* a move its group had under way goes on here */
}

static void cl_follow(void *ctx, const char *addr, uint64_t term)
{
    chand_server_t *s = ctx;
    if (s->follower)
        chand_repl_follow(s->follower, addr, term);
}

static void cl_unfollow(void *ctx)
{
    chand_server_t *s = ctx;
    if (s->follower)
        chand_repl_unfollow(s->follower);
}

/* A primary that lost its lease answers nothing more: it starts again,
 * as a replica, from what its data dir holds (a new primary cuts what it
 * wrote that no replica had).  exec keeps the pid a supervisor knows. */
static void cl_fence(void *ctx, const char *why)
{
    chand_server_t *s = ctx;
    log_err("no longer primary: %s; restarting as a replica (no reply of this turn was sent)",
            why);
    if (s->journal) {
        chand_journal_close(s->journal);
        s->journal = NULL;
    }
    close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
    execv("/proc/self/exe", s->opts.argv);
    log_err("exec: %s; exiting", strerror(errno));
    _exit(1);
}

static void cl_position(void *ctx, uint64_t *gen, uint64_t *off, bool *consistent)
{
    chand_server_t *s = ctx;
    uint64_t snap;
    *gen = *off = 0;
    *consistent = true;
    if (s->journal)
        chand_journal_where(s->journal, gen, off, &snap);
    else if (s->follower)
        chand_repl_follower_where(s->follower, gen, off, consistent);
}

static void cl_acked(void *ctx, uint64_t *gen, uint64_t *off)
{
    chand_server_t *s = ctx;
    *gen = *off = 0;
    if (s->repl_sync && s->journal) {   /* async promises nothing of replicas */
        *gen = s->repl_acked_gen;
        *off = s->repl_acked_off;
    }
}

static void cl_map_changed(void *ctx)
{
    chand_slots_update(ctx);
}

static const cl_hooks_t cl_hooks = { cl_promote, cl_follow, cl_unfollow, cl_fence, cl_position,
                                     cl_acked, cl_map_changed };

static int join_cluster(chand_server_t *s)
{
    const chand_opts_t *o = &s->opts;
    s->repl_sync = !strcmp(o->replication, "sync");
    s->journal_always = !strcmp(o->fsync, "always");   /* the replica's acks wait for fdatasync */
    s->lock_fd = chand_journal_lock(o->data_dir, &s->dir_fd);
    if (s->lock_fd < 0)
        return -1;
    s->follower = chand_repl_follower_new(s, s->dir_fd);
    if (!s->follower)
        return -1;
    cl_opts_t co = {
        .cluster = o->cluster, .etcd = o->etcd, .group = o->group, .node = o->node,
        .advertise = o->advertise, .lease_ttl_ms = o->lease_ttl_ms,
    };
    s->cluster = chand_cluster_new(s->base, &co, &cl_hooks, s);
    return s->cluster ? 0 : -1;
}

static void seed_hashes(chand_server_t *s)
{
    uint8_t key[16];
    uint64_t seed;
    if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key ||
        getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
        seed = chand_now() ^ ((uint64_t)getpid() << 32);
        memcpy(key, &seed, sizeof seed);
        memcpy(key + 8, &seed, sizeof seed);
    }
    chand_hash_seed(key);
    core_seed(s->core, seed);
}

chand_server_t *chand_server_new(const chand_opts_t *o)
{
    chand_server_t *s = xcalloc(1, sizeof *s);
    s->opts = *o;
    qlist_init(&s->conns);
    qlist_init(&s->doomed);
    qlist_init(&s->pending);
    qlist_init(&s->held);
    qlist_init(&s->feeds);
    chand_guard_init(&s->guard);
    s->dir_fd = s->lock_fd = -1;
    chan_arena_init(&s->arena);
    s->started_ms = chand_now();
    s->started_unix = (uint64_t)time(NULL);
    s->base = event_base_new();
    if (!s->base) {
        log_err("cannot create the event loop");
        chand_opts_free(&s->opts);
        free(s);
        return NULL;
    }
    core_limits_t lim = chand_core_limits(o);
    s->core = core_new(&lim, chand_core_reply);
    core_count_outside(s->core, &s->out_bytes);
    seed_hashes(s);
    s->deadline_timer = evtimer_new(s->base, deadline_cb, s);
    s->reclaim_timer = evtimer_new(s->base, reclaim_cb, s);
    s->reaper = event_new(s->base, -1, 0, reaper_cb, s);
    s->accept_resume = evtimer_new(s->base, resume_cb, s);
    s->stop_timer = evtimer_new(s->base, stop_now_cb, s);
    s->pump_ev = event_new(s->base, -1, 0, pump_cb, s);
    s->sig_term = evsignal_new(s->base, SIGTERM, signal_cb, s);
    s->sig_int = evsignal_new(s->base, SIGINT, signal_cb, s);
    s->sig_hup = evsignal_new(s->base, SIGHUP, hup_cb, s);
    event_add(s->sig_term, NULL);
    event_add(s->sig_int, NULL);
    event_add(s->sig_hup, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);   /* a file size limit is an error to report (EFBIG) */
    if (o->auth_file && load_token(s, o->auth_file) < 0)
        goto fail;
    if (o->acl_file && load_acl(s, o->acl_file) < 0)
        goto fail;
    if (chand_tls_setup(s) < 0)
        goto fail;
    if (o->cluster) {
        if (join_cluster(s) < 0)
            goto fail;
    } else if (o->data_dir) {
        if (open_journal(s) < 0)
            goto fail;
    } else {
        log_info("no --data-dir: channels and values are kept in memory only; a restart "
                 "loses them");
    }
    for (size_t i = 0; i < o->nlisten; i++)
        if (open_listener(s, o->listen[i]) < 0)
            goto fail;
    if (o->metrics && chand_metrics_start(s, o->metrics) < 0)
        goto fail;
    if (o->port_file && write_port_file(s, o->port_file) < 0)
        goto fail;
    return s;
fail:
    chand_server_free(s);
    return NULL;
}

int chand_server_run(chand_server_t *s)
{
    log_info("chand %s ready (pid %d)", PACKAGE_VERSION, (int)getpid());
    int rc;
    if (!s->journal && !s->cluster) {
        rc = event_base_dispatch(s->base);
    } else {
        do {
            rc = event_base_loop(s->base, EVLOOP_ONCE);
            uint64_t t0 = chand_busy_begin(s);
            chand_conn_flush_turn(s);
            chand_busy_end(s, t0);
        } while (rc == 0 && !event_base_got_exit(s->base) && !event_base_got_break(s->base));
    }
    /* A second SIGTERM (process managers and timeout(1) send one to the
     * whole group) must not kill us while we tear down: block them (freeing
     * the signal events puts the default action back). */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    if (rc < 0) {
        log_err("event loop failed");
        return 1;
    }
    if (s->cluster && s->stopping) {
        /* replies held for replicas are out, connections closed: hand
         * over now (a journal's last records are synced at free) */
        if (s->journal)
            chand_journal_commit(s->journal, false);
        chand_cluster_leave(s->cluster);
    }
    log_info("stopped");
    return 0;
}

void chand_server_free(chand_server_t *s)
{
    if (!s)
        return;
    close_listeners(s);
    while (!qlist_empty(&s->conns)) {
        chand_conn_t *c = QLIST_ENTRY(s->conns.next, chand_conn_t, link);
        c->doomed = true;
        qlist_remove(&c->doomed_link);
        chand_conn_free(c);
    }
    if (s->http)
        evhttp_free(s->http);
    chand_slots_free(s);
    chand_cluster_free(s->cluster);
    chand_repl_follower_free(s->follower);
    if (s->pump_ev)
        event_free(s->pump_ev);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    if (s->journal_notify)
        event_free(s->journal_notify);
    chand_journal_close(s->journal);   /* written and on disk before exit */
    if (s->journal_timer)
        event_free(s->journal_timer);
    event_free(s->deadline_timer);
    event_free(s->reclaim_timer);
    event_free(s->reaper);
    event_free(s->accept_resume);
    event_free(s->stop_timer);
    event_free(s->sig_term);
    event_free(s->sig_int);
    event_free(s->sig_hup);
    chand_tls_teardown(s);
    core_free(s->core);
    chan_arena_free(&s->arena);
    if (s->token)
        OPENSSL_cleanse(s->token, s->token_len);
    free(s->token);
    chand_acl_free(s->acl);
    chand_guard_free(&s->guard);
    event_base_free(s->base);
    chand_opts_free(&s->opts);
    free(s);
}

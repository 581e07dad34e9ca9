/*
 * chand_metrics.c - Prometheus text exposition over HTTP (libevent's evhttp)
 * on the --metrics address: the daemon's totals, the process's, per-channel
 * gauges; /healthz and /readyz for supervisors and load balancers.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "chand_log.h"
#include "chand_server.h"
#include "chand_slots.h"

/* Per-channel series stop here: a scrape must stay small. */
#define METRICS_MAX_CHANNELS 10000

/* Every family is announced once, with its help and type, and its samples
 * follow together (the text format's rule). */
static void fam(struct evbuffer *o, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void fam_u(struct evbuffer *o, const char *name, const char *type, const char *help,
                  unsigned long long v)
{
    fam(o, name, type, help);
    evbuffer_add_printf(o, "%s %llu\n", name, v);
}

static void fam_f(struct evbuffer *o, const char *name, const char *type, const char *help,
                  double v)
{
    fam(o, name, type, help);
    evbuffer_add_printf(o, "%s %.6f\n", name, v);
}

/* The per-channel families: one buffer each, filled in one walk over the
 * channels, then written one after the other. */
enum { CM_LEN, CM_CAP, CM_SENDERS, CM_RECEIVERS, CM_INFLIGHT, CM_SENT, CM_RECEIVED, CM_N };
static const struct {
    const char *name, *type, *help;
} chan_fams[CM_N] = {
    { "chand_channel_len", "gauge", "Values buffered in the channel." },
    { "chand_channel_capacity", "gauge", "The channel's capacity (0: unbuffered)." },
    { "chand_channel_blocked_senders", "gauge", "Sends waiting on the channel." },
    { "chand_channel_blocked_receivers", "gauge", "Receives waiting on the channel." },
    { "chand_channel_inflight", "gauge", "Values delivered from the channel, not yet acknowledged." },
    { "chand_channel_sent_total", "counter", "Values sent to the channel." },
    { "chand_channel_received_total", "counter", "Values received from the channel." },
};

struct scrape {
    struct evbuffer *fam[CM_N];
    size_t n;
};

static void chan_metrics(const core_chan_t *ch, void *arg)
{
    struct scrape *sc = arg;
    core_chan_info_t i;
    core_chan_info(ch, &i);
    /* temporary channels come and go with connections: as series they would
     * grow the scrape (and the time-series database) without bound */
    if (i.temp || sc->n >= METRICS_MAX_CHANNELS)
        return;
    sc->n++;
    const uint64_t v[CM_N] = { i.len, i.cap, i.senders, i.receivers, i.inflight, i.sent,
                               i.received };
    /* names are [A-Za-z0-9._:/-]: nothing to escape in a label value */
    for (int k = 0; k < CM_N; k++)
        evbuffer_add_printf(sc->fam[k], "%s{channel=\"%.*s\"} %llu\n", chan_fams[k].name,
                            (int)i.name.len, (const char *)i.name.data, (unsigned long long)v[k]);
}

static void channel_metrics(struct evbuffer *out, const core_t *core)
{
    struct scrape sc = { { NULL }, 0 };
    for (int k = 0; k < CM_N; k++)
        sc.fam[k] = evbuffer_new();
    core_each_chan(core, chan_metrics, &sc);
    for (int k = 0; k < CM_N; k++) {
        if (sc.n)
            fam(out, chan_fams[k].name, chan_fams[k].type, chan_fams[k].help);
        evbuffer_add_buffer(out, sc.fam[k]);
        evbuffer_free(sc.fam[k]);
    }
}

/* The loop-stall histogram, as a Prometheus histogram (cumulative). */
static void stall_metrics(struct evbuffer *out, const chand_stall_t *h)
{
    fam(out, "chand_loop_callback_seconds", "histogram",
        "How long each event-loop callback held the loop.");
    uint64_t cum = 0;
    for (size_t i = 0; i < CHAND_STALL_BUCKETS - 1; i++) {
        cum += h->count[i];
        evbuffer_add_printf(out, "chand_loop_callback_seconds_bucket{le=\"%g\"} %llu\n",
                            (double)chand_stall_bounds_us[i] / 1e6, (unsigned long long)cum);
    }
    evbuffer_add_printf(out,
        "chand_loop_callback_seconds_bucket{le=\"+Inf\"} %llu\n"
        "chand_loop_callback_seconds_sum %.6f\nchand_loop_callback_seconds_count %llu\n",
        (unsigned long long)h->total, (double)h->sum_us / 1e6, (unsigned long long)h->total);
    fam_f(out, "chand_loop_callback_max_seconds", "gauge", "The longest callback since start.",
          (double)h->max_us / 1e6);
}

static void journal_metrics(struct evbuffer *o, const chand_journal_t *j)
{
    jr_stats_t js;
    chand_journal_stats(j, &js);
    fam_u(o, "chand_data_dir_bytes", "gauge", "Bytes of the data dir's snapshot and logs.",
          js.disk_bytes);
    fam_u(o, "chand_journal_records_total", "counter", "Journal records written.", js.records);
    fam_u(o, "chand_journal_bytes_total", "counter", "Journal bytes written.", js.bytes_written);
    fam_u(o, "chand_journal_fsyncs_total", "counter", "fdatasync calls on the log.", js.fsyncs);
    fam_f(o, "chand_journal_fsync_seconds_total", "counter", "Time spent in fdatasync.",
          (double)js.fsync_us_total / 1e6);
    fam_f(o, "chand_journal_fsync_max_seconds", "gauge", "The longest fdatasync.",
          (double)js.fsync_us_max / 1e6);
    fam_u(o, "chand_journal_rewrites_total", "counter", "Log rewrites into a snapshot.",
          js.rewrites);
    fam_u(o, "chand_journal_rewrite_failures_total", "counter", "Rewrites that failed.",
          js.rewrite_failures);
    fam_u(o, "chand_journal_last_rewrite_timestamp_seconds", "gauge",
          "When the last rewrite ended (Unix time; 0: none).", js.last_rewrite_unix);
    fam_f(o, "chand_journal_last_rewrite_seconds", "gauge", "How long the last rewrite took.",
          (double)js.last_rewrite_us / 1e6);
    fam_f(o, "chand_journal_last_rewrite_stall_seconds", "gauge",
          "How long starting the last rewrite held the loop.",
          (double)js.last_rewrite_stall_us / 1e6);
    fam_u(o, "chand_journal_refusing_sends", "gauge", "1 while the disk is full: sends refused.",
          js.refusing ? 1 : 0);
    fam_f(o, "chand_recovery_seconds", "gauge", "Loading the data dir at start.",
          (double)js.recovery.us / 1e6);
    fam_u(o, "chand_recovered_values", "gauge", "Values loaded from the data dir at start.",
          js.recovery.values);
}

static void cluster_metrics(struct evbuffer *o, chand_server_t *s)
{
    cl_stats_t st;
    chand_cluster_stats(s->cluster, &st);
    fam(o, "chand_cluster_role", "gauge", "This node's role in its group (the label).");
    evbuffer_add_printf(o, "chand_cluster_role{role=\"%s\"} 1\n", chand_cluster_role_name(st.role));
    fam_u(o, "chand_cluster_term", "gauge", "The term of the primary it is or follows.", st.term);
    fam_u(o, "chand_cluster_etcd_up", "gauge", "1 if the last call to etcd succeeded.",
          st.etcd_ok ? 1 : 0);
    fam_u(o, "chand_cluster_etcd_errors_total", "counter", "Calls to etcd that failed.",
          st.etcd_errors);
    fam_f(o, "chand_cluster_lease_left_seconds", "gauge", "Until this node's view of its lease ends.",
          (double)st.lease_left_ms / 1000.0);
    fam_u(o, "chand_cluster_elections_won_total", "counter", "Elections this node won.",
          st.elections_won);
    fam_u(o, "chand_cluster_replicas", "gauge", "Replicas connected, as primary.",
          chand_repl_replicas(s));
    fam_u(o, "chand_cluster_replica_lag_bytes", "gauge",
          "Log bytes the furthest-behind replica has not acknowledged.", chand_repl_lag_max(s));
    slots_stats_t ss;
    chand_slots_stats(s, &ss);
    fam_u(o, "chand_cluster_slots", "gauge", "Hash slots the slot map gives this node's group.",
          ss.served);
    fam_u(o, "chand_cluster_slots_moving", "gauge",
          "1 while this node moves slots of its group to another.", ss.moving ? 1 : 0);
    fam_u(o, "chand_cluster_slot_moves_total", "counter", "Moves of slots this node ended.",
          ss.moves);
    fam_u(o, "chand_cluster_slot_moved_values_total", "counter",
          "Values those moves carried to other groups.", ss.values);
}

/* TLS on the listeners (--tls-cert): handshakes, and the certificate in
 * use for new connections (a SIGHUP may have loaded another). */
static void tls_metrics(struct evbuffer *o, const chand_server_t *s)
{
    fam_u(o, "chand_tls_handshakes_total", "counter", "TLS handshakes completed.",
          s->tls.handshakes);
    fam_u(o, "chand_tls_handshake_failures_total", "counter",
          "TLS handshakes that failed: refused, broken off, plain frames on the TLS port, "
          "or none before the Hello deadline.",
          s->tls.failures);
    fam_u(o, "chand_tls_reloads_total", "counter",
          "SIGHUP loads of the TLS files that took effect.", s->tls.reloads);
    fam_u(o, "chand_tls_reload_failures_total", "counter",
          "SIGHUP loads of the TLS files that failed (the certificate before stayed).",
          s->tls.reload_failures);
    fam(o, "chand_tls_certificate_expiry_timestamp_seconds", "gauge",
        "When the certificate new connections get expires (Unix time).");
    evbuffer_add_printf(o, "chand_tls_certificate_expiry_timestamp_seconds %lld\n",
                        (long long)s->tls.not_after);
}

/* The process_* families every Prometheus client library exports. */
static void process_metrics(struct evbuffer *o, const chand_server_t *s)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fam_f(o, "process_cpu_seconds_total", "counter", "User and system CPU time.",
          (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
              (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    unsigned long long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%*u %llu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    fam_u(o, "process_resident_memory_bytes", "gauge", "Resident memory.",
          pages * (unsigned long long)sysconf(_SC_PAGESIZE));
    unsigned long long fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        for (struct dirent *e; (e = readdir(d));)
            fds += e->d_name[0] != '.';
        closedir(d);
        fds--;   /* the listing's own */
    }
    fam_u(o, "process_open_fds", "gauge", "Open file descriptors.", fds);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    fam_u(o, "process_max_fds", "gauge", "The limit on open file descriptors.",
          (unsigned long long)rl.rlim_cur);
    fam_u(o, "process_start_time_seconds", "gauge", "When the process started (Unix time).",
          (unsigned long long)s->started_unix);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evbuffer_add_printf(out, "%s\n", text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evhttp_send_reply(req, code, reason, out);
    evbuffer_free(out);
}

/* /healthz: the loop answers.  /readyz: this chand serves channels now (a
 * cluster node that is not its group's primary, or one stopping, is not
 * ready: 503 and why). */
static bool health(chand_server_t *s, struct evhttp_request *req, const char *uri)
{
    if (!strcmp(uri, "/healthz")) {
        reply_text(req, HTTP_OK, "OK", "ok");
        return true;
    }
    if (strcmp(uri, "/readyz"))
        return false;
    if (s->stopping)
        reply_text(req, 503, "Service Unavailable", "stopping");
    else if (!chand_server_may_serve(s))
        reply_text(req, 503, "Service Unavailable", "not the primary of its group");
    else
        reply_text(req, HTTP_OK, "OK", "ready");
    return true;
}

static void metrics_cb(struct evhttp_request *req, void *arg)
{
    chand_server_t *s = arg;
    uint64_t t0 = chand_busy_begin(s);
    const char *uri = evhttp_request_get_uri(req);
    if (health(s, req, uri)) {
        chand_busy_end(s, t0);
        return;
    }
    if (strcmp(uri, "/metrics") != 0) {
        evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics, /healthz or /readyz");
        chand_busy_end(s, t0);
        return;
    }
    core_info_t ci;
    core_info(s->core, &ci);
    struct evbuffer *o = evbuffer_new();
    if (!o) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        chand_busy_end(s, t0);
        return;
    }
    fam(o, "chand_build_info", "gauge", "chand's version (the label); always 1.");
    evbuffer_add_printf(o, "chand_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
    fam_f(o, "chand_uptime_seconds", "gauge", "Since start.",
          (double)(chand_now() - s->started_ms) / 1000.0);
    fam_u(o, "chand_connections", "gauge", "Client connections.", s->nconns);
    fam_u(o, "chand_channels", "gauge", "Channels.", ci.channels);
    fam_u(o, "chand_pending_requests", "gauge", "Blocked requests, all connections.", ci.pending);
    fam_u(o, "chand_inflight", "gauge", "Deliveries not yet acknowledged.", ci.inflight);
    fam_u(o, "chand_values_sent_total", "counter", "Values taken by sends.", ci.values_sent);
    fam_u(o, "chand_values_received_total", "counter", "Values handed to receivers.",
          ci.values_received);
    fam_u(o, "chand_value_bytes", "gauge", "Bytes values hold (see --max-memory).",
          ci.value_bytes);
    fam_u(o, "chand_ack_expired_total", "counter",
          "Deliveries given back unacknowledged after --ack-wait.", ci.ack_expired);
    fam_u(o, "chand_output_bytes", "gauge", "Replies queued to clients (see --max-memory).",
          s->out_bytes);
    stall_metrics(o, &s->stall);
    if (s->tls_ctx)
        tls_metrics(o, s);
    process_metrics(o, s);
    if (s->journal)
        journal_metrics(o, s->journal);
    if (s->cluster)
        cluster_metrics(o, s);
    channel_metrics(o, s->core);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, HTTP_OK, "OK", o);
    evbuffer_free(o);
    chand_busy_end(s, t0);
}

int chand_metrics_start(chand_server_t *s, const char *addr)
{
    char shown[128];
    struct evconnlistener *l = chand_listen(s, "--metrics", addr, true, NULL, shown, sizeof shown);
    if (!l)
        return -1;
    s->http = evhttp_new(s->base);
    if (!s->http || !evhttp_bind_listener(s->http, l)) {
        evconnlistener_free(l);
        log_err("--metrics %s: cannot listen", addr);
        return -1;
    }
    evhttp_set_gencb(s->http, metrics_cb, s);
    log_info("metrics on http://%s/metrics", shown);
    return 0;
}

/*
 * chand_metrics.c - Prometheus text exposition over HTTP (libevent's evhttp)
 * on the --metrics address: the daemon's totals, and per-channel gauges.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "chand_log.h"
#include "chand_server.h"

/* Per-channel series stop here: a scrape must stay small. */
#define METRICS_MAX_CHANNELS 10000

struct scrape {
    struct evbuffer *out;
    size_t n;
};

static void chan_metrics(const core_chan_t *ch, void *arg)
{
    struct scrape *sc = arg;
    if (sc->n++ >= METRICS_MAX_CHANNELS)
        return;
    core_chan_info_t i;
    core_chan_info(ch, &i);
    /* names are [A-Za-z0-9._:/-]: nothing to escape in a label value */
    int nl = (int)i.name.len;
    const char *nm = (const char *)i.name.data;
    evbuffer_add_printf(sc->out, "chand_channel_len{channel=\"%.*s\"} %llu\n", nl, nm,
                        (unsigned long long)i.len);
    evbuffer_add_printf(sc->out, "chand_channel_capacity{channel=\"%.*s\"} %llu\n", nl, nm,
                        (unsigned long long)i.cap);
    evbuffer_add_printf(sc->out, "chand_channel_blocked_senders{channel=\"%.*s\"} %llu\n", nl, nm,
                        (unsigned long long)i.senders);
    evbuffer_add_printf(sc->out, "chand_channel_blocked_receivers{channel=\"%.*s\"} %llu\n", nl,
                        nm, (unsigned long long)i.receivers);
    evbuffer_add_printf(sc->out, "chand_channel_inflight{channel=\"%.*s\"} %llu\n", nl, nm,
                        (unsigned long long)i.inflight);
    evbuffer_add_printf(sc->out, "chand_channel_sent_total{channel=\"%.*s\"} %llu\n", nl, nm,
                        (unsigned long long)i.sent);
    evbuffer_add_printf(sc->out, "chand_channel_received_total{channel=\"%.*s\"} %llu\n", nl, nm,
                        (unsigned long long)i.received);
}

/* The loop-stall histogram, as a Prometheus histogram (cumulative). */
static void stall_metrics(struct evbuffer *out, const chand_stall_t *h)
{
    evbuffer_add_printf(out, "# TYPE chand_loop_callback_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < CHAND_STALL_BUCKETS - 1; i++) {
        cum += h->count[i];
        evbuffer_add_printf(out, "chand_loop_callback_seconds_bucket{le=\"%g\"} %llu\n",
                            (double)chand_stall_bounds_us[i] / 1e6, (unsigned long long)cum);
    }
    evbuffer_add_printf(out,
        "chand_loop_callback_seconds_bucket{le=\"+Inf\"} %llu\n"
        "chand_loop_callback_seconds_sum %.6f\nchand_loop_callback_seconds_count %llu\n"
        "# TYPE chand_loop_callback_max_seconds gauge\nchand_loop_callback_max_seconds %.6f\n",
        (unsigned long long)h->total, (double)h->sum_us / 1e6, (unsigned long long)h->total,
        (double)h->max_us / 1e6);
}

static void journal_metrics(struct evbuffer *out, const chand_journal_t *j)
{
    jr_stats_t js;
    chand_journal_stats(j, &js);
    evbuffer_add_printf(out,
        "# TYPE chand_data_dir_bytes gauge\nchand_data_dir_bytes %llu\n"
        "# TYPE chand_journal_records_total counter\nchand_journal_records_total %llu\n"
        "# TYPE chand_journal_bytes_total counter\nchand_journal_bytes_total %llu\n"
        "# TYPE chand_journal_fsyncs_total counter\nchand_journal_fsyncs_total %llu\n"
        "# TYPE chand_journal_fsync_seconds_total counter\nchand_journal_fsync_seconds_total %.6f\n"
        "# TYPE chand_journal_fsync_max_seconds gauge\nchand_journal_fsync_max_seconds %.6f\n"
        "# TYPE chand_journal_rewrites_total counter\nchand_journal_rewrites_total %llu\n"
        "# TYPE chand_journal_rewrite_failures_total counter\n"
        "chand_journal_rewrite_failures_total %llu\n"
        "# TYPE chand_journal_last_rewrite_timestamp_seconds gauge\n"
        "chand_journal_last_rewrite_timestamp_seconds %llu\n"
        "# TYPE chand_journal_last_rewrite_seconds gauge\nchand_journal_last_rewrite_seconds %.6f\n"
        "# TYPE chand_journal_last_rewrite_stall_seconds gauge\nchand_journal_last_rewrite_stall_seconds %.6f\n"
        "# TYPE chand_journal_refusing_sends gauge\nchand_journal_refusing_sends %d\n"
        "# TYPE chand_recovery_seconds gauge\nchand_recovery_seconds %.6f\n"
        "# TYPE chand_recovered_values gauge\nchand_recovered_values %llu\n",
        (unsigned long long)js.disk_bytes, (unsigned long long)js.records,
        (unsigned long long)js.bytes_written, (unsigned long long)js.fsyncs,
        (double)js.fsync_us_total / 1e6, (double)js.fsync_us_max / 1e6,
        (unsigned long long)js.rewrites, (unsigned long long)js.rewrite_failures,
        (unsigned long long)js.last_rewrite_unix, (double)js.last_rewrite_us / 1e6,
        (double)js.last_rewrite_stall_us / 1e6, js.refusing ? 1 : 0, (double)js.recovery.us / 1e6,
        (unsigned long long)js.recovery.values);
}

static void cluster_metrics(struct evbuffer *out, chand_server_t *s)
{
    cl_stats_t st;
    chand_cluster_stats(s->cluster, &st);
    evbuffer_add_printf(out,
        "# TYPE chand_cluster_role gauge\nchand_cluster_role{role=\"%s\"} 1\n"
        "# TYPE chand_cluster_term gauge\nchand_cluster_term %llu\n"
        "# TYPE chand_cluster_etcd_up gauge\nchand_cluster_etcd_up %d\n"
        "# TYPE chand_cluster_etcd_errors_total counter\nchand_cluster_etcd_errors_total %llu\n"
        "# TYPE chand_cluster_lease_left_seconds gauge\nchand_cluster_lease_left_seconds %.3f\n"
        "# TYPE chand_cluster_elections_won_total counter\n"
        "chand_cluster_elections_won_total %llu\n"
        "# TYPE chand_cluster_replicas gauge\nchand_cluster_replicas %u\n"
        "# TYPE chand_cluster_replica_lag_bytes gauge\nchand_cluster_replica_lag_bytes %llu\n",
        chand_cluster_role_name(st.role), (unsigned long long)st.term, st.etcd_ok ? 1 : 0,
        (unsigned long long)st.etcd_errors, (double)st.lease_left_ms / 1000.0,
        (unsigned long long)st.elections_won, chand_repl_replicas(s),
        (unsigned long long)chand_repl_lag_max(s));
}

static void metrics_cb(struct evhttp_request *req, void *arg)
{
    chand_server_t *s = arg;
    uint64_t t0 = chand_busy_begin(s);
    if (strcmp(evhttp_request_get_uri(req), "/metrics") != 0) {
        evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
        return;
    }
    core_info_t ci;
    core_info(s->core, &ci);
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evbuffer_add_printf(out,
        "# TYPE chand_uptime_seconds gauge\nchand_uptime_seconds %.3f\n"
        "# TYPE chand_connections gauge\nchand_connections %llu\n"
        "# TYPE chand_channels gauge\nchand_channels %llu\n"
        "# TYPE chand_pending_requests gauge\nchand_pending_requests %llu\n"
        "# TYPE chand_inflight gauge\nchand_inflight %llu\n"
        "# TYPE chand_values_sent_total counter\nchand_values_sent_total %llu\n"
        "# TYPE chand_values_received_total counter\nchand_values_received_total %llu\n"
        "# TYPE chand_value_bytes gauge\nchand_value_bytes %llu\n"
        "# TYPE chand_ack_expired_total counter\nchand_ack_expired_total %llu\n"
        "# TYPE chand_output_bytes gauge\nchand_output_bytes %llu\n",
        (double)(chand_now() - s->started_ms) / 1000.0, (unsigned long long)s->nconns,
        (unsigned long long)ci.channels, (unsigned long long)ci.pending,
        (unsigned long long)ci.inflight, (unsigned long long)ci.values_sent,
        (unsigned long long)ci.values_received, (unsigned long long)ci.value_bytes,
        (unsigned long long)ci.ack_expired, (unsigned long long)s->out_bytes);
    stall_metrics(out, &s->stall);
    if (s->journal)
        journal_metrics(out, s->journal);
    if (s->cluster)
        cluster_metrics(out, s);
    struct scrape sc = { out, 0 };
    core_each_chan(s->core, chan_metrics, &sc);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, HTTP_OK, "OK", out);
    evbuffer_free(out);
    chand_busy_end(s, t0);
}

int chand_metrics_start(chand_server_t *s, const char *addr)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr) {
        log_err("--metrics %s: not HOST:PORT", addr);
        return -1;
    }
    char host[256];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host)
        return -1;
    memcpy(host, addr, hl);
    host[hl] = 0;
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {   /* [::1]:9090 */
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        log_err("--metrics %s: not HOST:PORT", addr);
        return -1;
    }
    s->http = evhttp_new(s->base);
    struct evhttp_bound_socket *bs =
        s->http ? evhttp_bind_socket_with_handle(s->http, host, (ev_uint16_t)port) : NULL;
    if (!bs) {
        log_err("--metrics %s: cannot listen", addr);
        return -1;
    }
    evhttp_set_gencb(s->http, metrics_cb, s);
    /* port 0 picks one: say which */
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int bound = (int)port;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &len) == 0)
        bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    log_info("metrics on http://%s%s%s:%d/metrics", strchr(host, ':') ? "[" : "", host,
             strchr(host, ':') ? "]" : "", bound);
    return 0;
}

/*
 * chand_conn.c - one client connection: frames in, replies out, limits, and
 * an orderly end.
 *
 * Reading: every complete frame in the input buffer is decoded and handled
 * in one callback.  The length prefix is checked against --max-frame before
 * the body is buffered, so a peer can never make us hold more than that.
 *
 * Writing (Redis's model): replies are encoded into the output buffer, and
 * every connection that got some is written to directly at the end of the
 * loop turn (chand_conn_flush_pending), a burst of replies in one system
 * call.  Only when the socket cannot take everything is a write event
 * armed.  If the buffer grows past --max-output the client is not reading:
 * it is disconnected and its unacknowledged values go back to their
 * channels (Redis's client-output-buffer-limit).
 *
 * TLS (chand_tls.c): a connection on a TCP listener of a chand with
 * --tls-cert first runs its handshake from its read and write events (its
 * Hello deadline covers it), then reads and writes exactly as above, each
 * recv() and write an SSL_read() and SSL_write() instead.  One difference:
 * OpenSSL may hold a decrypted record the socket no longer shows as
 * readable, so a read turn cut short by its budget activates the read
 * event itself.
 *
 * Ending: a connection is never freed in the middle of a callback, because
 * the core may be answering it from inside another connection's request.
 * It is marked doomed instead, and the reaper event frees it once the
 * current callbacks are done.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <errno.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "chand_alloc.h"
#include "chand_log.h"
#include "chand_server.h"
#include "chand_tls.h"

/* Seconds a stalled peer gets to take its final error reply. */
#define FLUSH_TIMEOUT_S 5
/* Bytes one read takes at most; a callback reads until the socket is empty
 * or this many reads were done (then the loop lets others have a turn). */
#define READ_CHUNK 65536
#define READS_PER_TURN 16
/* ... or until this much time went into them: sixteen chunks of pipelined
 * requests could otherwise hold the loop for ~10 ms; the rest of the input
 * waits in the socket for the next turn (the read event is level-triggered). */
#define READ_BUDGET_US 1000

static void conn_release(chand_conn_t *c);
static void conn_write(chand_conn_t *c);

static void describe_peer(char *out, size_t size, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN] = "?";
    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(out, size, "%s:%u", host, ntohs(in->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(out, size, "[%s]:%u", host, ntohs(in6->sin6_port));
        break;
    }
    default:
        snprintf(out, size, "unix");
    }
}

/* Refuse a connection over --max-conns with an error frame, best effort. */
static void refuse(int fd, const char *msg)
{
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = true;
    r.has_status = true;
    r.status = CHAN__STATUS__BUSY;
    r.message = (char *)msg;
    uint8_t buf[256];
    if (chan_frame_size_reply(&r) <= sizeof buf) {
        size_t n = chan_frame_encode_reply(&r, buf);
        (void)!write(fd, buf, n);
    }
    close(fd);
}

static void flush_all(chand_server_t *s)
{
    while (!qlist_empty(&s->pending)) {
        chand_conn_t *c = QLIST_ENTRY(s->pending.next, chand_conn_t, pending_link);
        qlist_remove(&c->pending_link);
        if (!c->doomed)
            conn_write(c);   /* what the socket does not take, the write event sends */
    }
}

void chand_conn_flush_pending(chand_server_t *s)
{
    if (!s->journal)
        flush_all(s);
}

/* The turn's records go to the journal; synced (--fsync always) if a reply
 * was made since the last commit: it may depend on them. */
static void journal_commit(chand_server_t *s)
{
    bool answered = s->replies != s->replies_committed;
    s->replies_committed = s->replies;
    chand_journal_commit(s->journal, answered);
}

/* The replies c made up to now need the log synced up to pos. */
static void hold_mark(chand_conn_t *c, uint64_t pos, uint64_t synced)
{
    if (c->out_total == c->out_marked)
        return;
    c->out_marked = c->out_total;
    bool informs = c->turn_informs_only;
    c->turn_informs_only = true;
    if ((pos <= synced || informs) && c->hold_head == c->nholds) {
        /* nothing it depends on waits, or it said only Hello, Pong and Stat,
         * which promise nothing: an operator's `chan stat` must answer while
         * a replica or the disk is slow */
        c->out_free = c->out_total;
        return;
    }
    if (c->nholds == c->capholds) {
        c->capholds = c->capholds ? c->capholds * 2 : 4;
        c->holds = xrealloc(c->holds, c->capholds * sizeof *c->holds);
    }
    c->holds[c->nholds].pos = pos;
    c->holds[c->nholds++].end = c->out_total;
    if (qlist_empty(&c->held_link))
        qlist_push_back(&c->srv->held, &c->held_link);
}

/* The log is on disk up to synced: what c held for it may go. */
static void hold_release(chand_conn_t *c, uint64_t synced)
{
    while (c->hold_head < c->nholds && c->holds[c->hold_head].pos <= synced)
        c->out_free = c->holds[c->hold_head++].end;
    if (c->hold_head == c->nholds) {
        c->hold_head = c->nholds = 0;
        qlist_remove(&c->held_link);
    }
}

void chand_conn_flush_turn(chand_server_t *s)
{
    if (s->journal) {
        journal_commit(s);
        if (s->holds) {
            uint64_t pos = chand_journal_needed(s->journal);
            uint64_t durable = chand_server_durable(s);
            for (qlink_t *l = s->pending.next; l != &s->pending; l = l->next) {
                chand_conn_t *c = QLIST_ENTRY(l, chand_conn_t, pending_link);
                if (!c->feed)   /* a replica takes the log as it is written */
                    hold_mark(c, pos, durable);
            }
        }
    }
    if (s->cluster)
        chand_cluster_check(s->cluster);   /* a primary whose lease lapsed says nothing */
    chand_repl_pump(s);
    flush_all(s);
    chand_server_stop_check(s);
}

void chand_conn_release_held(chand_server_t *s, uint64_t synced)
{
    for (qlink_t *l = s->held.next, *next; l != &s->held; l = next) {
        next = l->next;
        chand_conn_t *c = QLIST_ENTRY(l, chand_conn_t, held_link);
        hold_release(c, synced);
        if (!c->doomed)
            conn_write(c);
    }
}

/* Bytes of c's output that may be written now. */
static uint64_t conn_sendable(const chand_conn_t *c)
{
    if (!c->srv->holds || c->feed)
        return UINT64_MAX;
    return c->out_free - c->out_sent;
}


static void after_io(chand_server_t *s)
{
    chand_conn_flush_pending(s);
    chand_server_rearm(s);
    if (!qlist_empty(&s->doomed))
        event_active(s->reaper, EV_TIMEOUT, 1);
}

/* A TLS ClientHello's first bytes (chand_tls.c says why no frame starts
 * so), as a first frame: a TLS client on a plain port. */
static bool tls_on_plain(chand_conn_t *c)
{
    uint8_t b[2];
    return !c->hello && c->frames_in == 0 && evbuffer_copyout(c->in, b, 2) == 2 && b[0] == 22 &&
           b[1] == 3;
}

static void conn_read(chand_conn_t *c)
{
    chand_server_t *s = c->srv;
    struct evbuffer *in = c->in;
    static const uint8_t empty[1];
    if (tls_on_plain(c)) {
        /* no reply: it could not read one; the close fails its handshake */
        chand_log_peer(s, "conn %llu (%s): a TLS handshake on a plain port; closing",
                       (unsigned long long)c->num, c->peer);
        chand_conn_doom(c, NULL);
        return;
    }
    if (s->opts.idle_timeout_ms)
        c->active_ms = chand_now();
    while (!c->doomed && !c->flushing && !c->refusing) {
        uint8_t hdr[CHAN_FRAME_HDR_MAX];
        ev_ssize_t got = evbuffer_copyout(in, hdr, sizeof hdr);
        if (got <= 0)
            break;
        uint64_t body_len;
        size_t hdr_len;
        int rc = chan_frame_header(hdr, (size_t)got, s->opts.max_frame, &body_len, &hdr_len);
        if (rc == CHAN_FRAME_MORE)
            break;
        if (rc == CHAN_FRAME_BAD) {
            chand_conn_fail(c, 0, CHAN__STATUS__BAD_REQUEST, "garbage: a frame must start with a varint length");
            break;
        }
        if (rc == CHAN_FRAME_TOO_BIG) {
            chand_conn_fail(c, 0, CHAN__STATUS__TOO_LARGE, "frame larger than max_frame");
            break;
        }
        if (evbuffer_get_length(in) < hdr_len + body_len)
            break;
        evbuffer_drain(in, hdr_len);
        const uint8_t *body = body_len ? evbuffer_pullup(in, (ev_ssize_t)body_len) : empty;
        Chan__Request *rq = chan_frame_decode_request(&s->arena, body, body_len);
        c->frames_in++;
        if (!rq)
            chand_conn_fail(c, 0, CHAN__STATUS__BAD_REQUEST, "frame is not a valid Request message");
        else
            chand_dispatch(c, rq);
        chan_arena_reset(&s->arena);
        evbuffer_drain(in, body_len);
    }
}

/* Read and drop what the peer sent: closing a socket with unread input
 * resets the connection, and what we sent last (a reply, a TLS alert)
 * could be lost with it. */
static void drop_input(chand_conn_t *c)
{
    char junk[4096];
    while (recv(c->fd, junk, sizeof junk, 0) == (ssize_t)sizeof junk)
        ;
}

/* A plain client on a TLS port: tell it so in a frame it can read. */
static void tls_tell_plain(chand_conn_t *c)
{
    drop_input(c);
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = true;
    r.has_status = true;
    r.status = CHAN__STATUS__BAD_REQUEST;
    r.message = "this chand port speaks TLS: connect with tls://HOST:PORT";
    chand_conn_reply(c, &r);
    chand_conn_drain(c);
}

/* read_cb for a TLS connection: the handshake, then plaintext as read_cb
 * reads the socket, a chunk filled by as many records as it takes. */
static void tls_read(chand_conn_t *c)
{
    if (!c->tls_ready) {
        switch (chand_tls_handshake(c)) {
        case TLS_STEP_DONE:
            break;   /* a first request may have come with the last flight */
        case TLS_STEP_WAIT:
            return;
        case TLS_STEP_PLAIN:
            tls_tell_plain(c);
            return;
        case TLS_STEP_FAILED:
            /* (logged) its alert must not be lost to a reset: a close
             * with unread input resets the connection */
            drop_input(c);
            chand_conn_doom(c, NULL);
            return;
        default:   /* closed before a byte */
            chand_conn_doom(c, NULL);
            return;
        }
    }
    uint64_t t0 = chand_now_us();
    for (int i = 0; i < READS_PER_TURN && !c->doomed && !c->flushing; i++) {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(c->in, READ_CHUNK, &v, 1) < 1) {
            chand_conn_doom(c, "out of memory for its input");
            break;
        }
        size_t got = 0;
        ssize_t n = 0;
        while (got < READ_CHUNK &&
               (n = chand_tls_read(c, (uint8_t *)v.iov_base + got, READ_CHUNK - got)) > 0)
            got += (size_t)n;
        bool full = got == READ_CHUNK;
        int err = n < 0 ? errno : 0;
        if (got) {
            v.iov_len = got;
            evbuffer_commit_space(c->in, &v, 1);
            conn_read(c);
        }
        if (!full) {
            if (n == 0)
                chand_conn_doom(c, NULL);   /* closed by the peer: the normal end */
            else if (err != EAGAIN)
                chand_conn_doom(c, err == EPROTO ? "TLS error" : strerror(err));
            break;   /* else OpenSSL has read all the socket had */
        }
        if (chand_now_us() - t0 > READ_BUDGET_US)
            break;
    }
    if (!c->doomed && !c->flushing && chand_tls_pending(c))
        event_active(c->ev_read, EV_READ, 1);   /* no socket event would say so */
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    chand_conn_t *c = arg;
    chand_server_t *s = c->srv;
    uint64_t t0 = chand_busy_begin(s);
    if (c->ssl) {
        tls_read(c);
        after_io(s);
        chand_busy_end(s, t0);
        return;
    }
    for (int i = 0; i < READS_PER_TURN && !c->doomed && !c->flushing; i++) {
        /* read into reserved space: evbuffer_read would ask the kernel how
         * much is there first, one more system call per request */
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(c->in, READ_CHUNK, &v, 1) < 1) {
            chand_conn_doom(c, "out of memory for its input");
            break;
        }
        ssize_t n = recv(fd, v.iov_base, READ_CHUNK, 0);
        if (n > 0) {
            v.iov_len = (size_t)n;
            evbuffer_commit_space(c->in, &v, 1);
        }
        if (n == 0) {
            chand_conn_doom(c, NULL);   /* closed by the peer: the normal end */
            break;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                chand_conn_doom(c, "socket error");
            break;
        }
        conn_read(c);
        if (n < READ_CHUNK || chand_now_us() - t0 > READ_BUDGET_US)
            break;   /* the socket is empty for now, or others get a turn */
    }
    after_io(s);
    chand_busy_end(s, t0);
}

/* Write what the socket takes; arm the write event for the rest. */
static void conn_write(chand_conn_t *c)
{
    if (c->fd < 0)
        return;   /* in-process: its owner takes the output */
    if (c->ssl && !c->tls_ready)
        return;   /* nothing goes out before the handshake is done */
    /* nothing leaves before the records it depends on are written (a
     * reply made in this turn for a connection whose socket became
     * writable in this turn too); under --fsync always, before they are
     * synced (conn_sendable) */
    chand_journal_t *j = c->srv->journal;
    if (j && !c->srv->holds &&
        (chand_journal_pending(j) || c->srv->replies != c->srv->replies_committed))
        journal_commit(c->srv);
    uint64_t may = conn_sendable(c);
    while (evbuffer_get_length(c->out) && may) {
        int n = c->ssl ? chand_tls_write(c, may < (uint64_t)INT32_MAX ? (size_t)may : INT32_MAX)
                       : evbuffer_write_atmost(c->out, c->fd,
                                               may < (uint64_t)INT32_MAX ? (ev_ssize_t)may : -1);
        if (n > 0) {
            c->srv->out_bytes -= (uint64_t)n;
            c->out_sent += (uint64_t)n;
            if (may != UINT64_MAX)
                may -= (uint64_t)n;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                chand_conn_doom(c, "socket error");
            break;
        }
    }
    if (c->doomed)
        return;
    if (evbuffer_get_length(c->out)) {
        if (may)
            event_add(c->ev_write, NULL);   /* the socket is full */
        else
            event_del(c->ev_write);         /* the rest waits for a sync */
    } else {
        event_del(c->ev_write);
        if (c->flushing)
            chand_conn_doom(c, NULL);   /* the last reply is out */
    }
    if (c->tls_read_wants_write && !c->doomed)
        event_add(c->ev_write, NULL);   /* write_cb reads again */
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chand_conn_t *c = arg;
    chand_server_t *s = c->srv;
    uint64_t t0 = chand_busy_begin(s);
    if (c->ssl && (!c->tls_ready || c->tls_read_wants_write)) {
        c->tls_read_wants_write = false;
        tls_read(c);   /* the handshake, or a read, waited to write */
    }
    if (!c->doomed)
        conn_write(c);
    after_io(s);
    chand_busy_end(s, t0);
}

static void timer_in(chand_conn_t *c, uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    evtimer_add(c->ev_timer, &tv);
}

/* --idle-timeout: close c if nothing is going on, else look again when it
 * could be idle long enough.  A blocked request or a value not yet
 * acknowledged is something going on, however quiet the socket. */
static void idle_check(chand_conn_t *c)
{
    uint64_t limit = c->srv->opts.idle_timeout_ms, now = chand_now();
    uint64_t quiet = now - c->active_ms;
    bool busy = core_sess_pending(c->sess) || core_sess_inflight(c->sess) ||
                evbuffer_get_length(c->out) || c->feed;
    if (busy || quiet < limit) {
        timer_in(c, busy ? limit : limit - quiet);
        return;
    }
    log_info("conn %llu (%s): idle for %llu ms (--idle-timeout); closing",
             (unsigned long long)c->num, c->peer, (unsigned long long)quiet);
    /* a frame saying why, for the client's error message; it cannot be
     * waiting for any other answer */
    char msg[80];
    snprintf(msg, sizeof msg, "idle for %llu ms (--idle-timeout): closed",
             (unsigned long long)quiet);
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = true;
    r.status = CHAN__STATUS__TIMEOUT;
    r.message = msg;
    chand_conn_reply(c, &r);
    chand_conn_drain(c);
}

/* A connection's one timer: first the Hello deadline (a socket that never
 * says Hello is not held forever), or the delay of its refused Hello's
 * answer; then its --idle-timeout; then, once it is closing, the time its
 * last replies have to drain. */
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chand_conn_t *c = arg;
    chand_server_t *s = c->srv;
    uint64_t t0 = chand_busy_begin(s);
    if (c->refusing) {
        c->refusing = false;
        Chan__Reply r = CHAN__REPLY__INIT;
        r.has_id = r.has_status = true;
        r.id = c->refuse_id;
        r.status = CHAN__STATUS__UNAUTHORIZED;
        r.message = c->refuse_msg;
        chand_conn_reply(c, &r);
        chand_conn_drain(c);
    } else if (c->flushing) {
        chand_conn_doom(c, "timed out flushing its last replies");
    } else if (c->ssl && !c->tls_ready) {
        s->tls.failures++;
        chand_log_peer(s, "conn %llu (%s): no TLS handshake within %llu ms; closing",
                       (unsigned long long)c->num, c->peer,
                       (unsigned long long)s->opts.hello_timeout_ms);
        chand_conn_doom(c, NULL);
    } else if (!c->hello) {
        char msg[64];
        snprintf(msg, sizeof msg, "no Hello within %llu ms",
                 (unsigned long long)c->srv->opts.hello_timeout_ms);
        chand_conn_fail(c, 0, CHAN__STATUS__BAD_REQUEST, msg);
    } else if (s->opts.idle_timeout_ms) {
        idle_check(c);
    }
    after_io(s);
    chand_busy_end(s, t0);
}

void chand_conn_hello_done(chand_conn_t *c)
{
    c->hello = true;
    evtimer_del(c->ev_timer);
    if (c->srv->opts.idle_timeout_ms) {
        c->active_ms = chand_now();
        timer_in(c, c->srv->opts.idle_timeout_ms);
    }
}

void chand_conn_refuse(chand_conn_t *c, uint64_t id, const char *msg, uint64_t delay_ms)
{
    if (c->doomed || c->flushing || c->refusing)
        return;
    if (!delay_ms) {
        chand_conn_fail(c, id, CHAN__STATUS__UNAUTHORIZED, msg);
        return;
    }
    c->refusing = true;
    c->refuse_id = id;
    snprintf(c->refuse_msg, sizeof c->refuse_msg, "%s", msg);
    /* nothing more is read: what else it sent is dropped with the close */
    event_del(c->ev_read);
    timer_in(c, delay_ms);   /* in place of the Hello deadline */
}

void chand_conn_accept(chand_server_t *s, int fd, const struct sockaddr *addr, int len)
{
    (void)len;
    char peer[80];
    describe_peer(peer, sizeof peer, addr);
    if (s->stopping) {
        close(fd);
        return;
    }
    bool tls = s->tls_ctx && addr->sa_family != AF_UNIX;
    guard_addr_t *ga = chand_guard_conn(&s->guard, addr, chand_now());
    if (s->opts.max_conns_per_ip && !ga->unix_socket && ga->conns > s->opts.max_conns_per_ip) {
        chand_log_peer(s, "refused %s: too many connections from %s (--max-conns-per-ip %llu)",
                       peer, ga->key, (unsigned long long)s->opts.max_conns_per_ip);
        chand_guard_conn_gone(&s->guard, ga, chand_now());
        if (tls) {
            close(fd);
        } else {
            char msg[96];
            snprintf(msg, sizeof msg, "too many connections from your address "
                     "(--max-conns-per-ip %llu)", (unsigned long long)s->opts.max_conns_per_ip);
            refuse(fd, msg);
        }
        return;
    }
    if (s->nconns >= s->opts.max_conns) {
        chand_guard_conn_gone(&s->guard, ga, chand_now());
        log_warn("refused %s: too many connections (--max-conns %llu)", peer,
                 (unsigned long long)s->opts.max_conns);
        if (tls) {
            close(fd);   /* a plain frame would only garble its handshake */
        } else {
            char msg[64];
            snprintf(msg, sizeof msg, "too many connections (--max-conns %llu)",
                     (unsigned long long)s->opts.max_conns);
            refuse(fd, msg);
        }
        return;
    }
    if (addr->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    evutil_make_socket_nonblocking(fd);
    chand_conn_t *c = chand_conn_new(s, fd, peer);
    if (!c) {
        chand_guard_conn_gone(&s->guard, ga, chand_now());
        return;
    }
    c->addr = ga;
    if (tls && chand_tls_attach(c) < 0)
        chand_conn_doom(c, "out of memory for its TLS state");
}

chand_conn_t *chand_conn_new(chand_server_t *s, int fd, const char *peer)
{
    chand_conn_t *c = xcalloc(1, sizeof *c);
    c->srv = s;
    c->fd = fd;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->ev_read = event_new(s->base, fd, EV_READ | EV_PERSIST, read_cb, c);
    c->ev_write = event_new(s->base, fd, EV_WRITE | EV_PERSIST, write_cb, c);
    c->ev_timer = evtimer_new(s->base, conn_timer_cb, c);
    if (!c->in || !c->out || !c->ev_read || !c->ev_write || !c->ev_timer) {
        log_err("cannot set up connection from %s", peer);
        conn_release(c);
        return NULL;
    }
    c->num = ++s->next_conn;
    c->turn_informs_only = true;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    c->sess = core_sess_new(s->core, c);
    qlist_init(&c->doomed_link);
    qlist_init(&c->pending_link);
    qlist_init(&c->held_link);
    qlist_push_back(&s->conns, &c->link);
    s->nconns++;
    if (fd >= 0)
        event_add(c->ev_read, NULL);
    uint64_t ms = s->opts.hello_timeout_ms;
    struct timeval hello = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    evtimer_add(c->ev_timer, &hello);
    log_debug("conn %llu from %s", (unsigned long long)c->num, c->peer);
    return c;
}

void chand_conn_feed(chand_conn_t *c, const void *data, size_t len)
{
    chand_server_t *s = c->srv;
    if (c->doomed || c->flushing)
        return;   /* as read_cb: no more input */
    uint64_t t0 = chand_busy_begin(s);
    if (evbuffer_add(c->in, data, len) != 0)
        chand_conn_doom(c, "out of memory for its input");
    else
        conn_read(c);
    after_io(s);
    chand_busy_end(s, t0);
}

void chand_conn_take_output(chand_conn_t *c, struct evbuffer *to)
{
    c->srv->out_bytes -= evbuffer_get_length(c->out);   /* as if written */
    evbuffer_add_buffer(to, c->out);
    if (c->flushing && !c->doomed)
        chand_conn_doom(c, NULL);   /* as conn_write: the last reply is out */
}

/* Whether reply r promises nothing a crash could take back: an answer
 * about the server, or a redirection (MOVED from the gate, NOT_PRIMARY:
 * nothing took effect, so they carry no result).  Such replies never wait
 * for a sync: clients must find the primary and the map while a replica
 * or the disk is slow. */
static bool informs(const Chan__Reply *r)
{
    switch (r->result_case) {
    case CHAN__REPLY__RESULT_HELLO:
    case CHAN__REPLY__RESULT_PONG:
    case CHAN__REPLY__RESULT_STAT:
    case CHAN__REPLY__RESULT_MAP:
        return true;
    case CHAN__REPLY__RESULT__NOT_SET:
        return r->status == CHAN__STATUS__MOVED || r->status == CHAN__STATUS__NOT_PRIMARY;
    default:
        return false;
    }
}

static void conn_reply(chand_conn_t *c, const Chan__Reply *r, bool promises);

void chand_conn_reply(chand_conn_t *c, const Chan__Reply *r)
{
    conn_reply(c, r, !informs(r));
}

void chand_conn_inform(chand_conn_t *c, uint64_t id, Chan__Status st, const char *msg)
{
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = true;
    r.id = id;
    r.status = st;
    r.message = (char *)msg;
    conn_reply(c, &r, false);
}

static void conn_reply(chand_conn_t *c, const Chan__Reply *r, bool promises)
{
    if (c->doomed)
        return;
    struct evbuffer *out = c->out;
    size_t size = chan_frame_size_reply(r);
    struct evbuffer_iovec iov;
    if (evbuffer_reserve_space(out, (ev_ssize_t)size, &iov, 1) < 1) {
        chand_conn_doom(c, "out of memory for its replies");
        return;
    }
    iov.iov_len = chan_frame_encode_reply_sized(r, size, iov.iov_base);
    evbuffer_commit_space(out, &iov, 1);
    c->srv->out_bytes += iov.iov_len;
    c->frames_out++;
    c->out_total += iov.iov_len;
    c->srv->replies++;
    if (promises)
        c->turn_informs_only = false;
    if (c->srv->opts.idle_timeout_ms)
        c->active_ms = chand_now();
    if (qlist_empty(&c->pending_link))
        qlist_push_back(&c->srv->pending, &c->pending_link);
    if (evbuffer_get_length(out) > c->srv->opts.max_output)
        chand_conn_doom(c, "output over --max-output: the client is not reading");
}

void chand_conn_redirect(chand_conn_t *c, uint64_t id, Chan__Status st, const char *msg,
                         const char *primary)
{
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = r.has_status = true;
    r.id = id;
    r.status = st;
    r.message = (char *)msg;
    r.primary = (char *)primary;
    chand_conn_reply(c, &r);
}

void chand_conn_answer(chand_conn_t *c, uint64_t id, Chan__Status st, const char *msg)
{
    chand_conn_redirect(c, id, st, msg, NULL);
}

void chand_conn_fail(chand_conn_t *c, uint64_t id, Chan__Status st, const char *msg)
{
    if (c->doomed || c->flushing)
        return;
    log_warn("conn %llu (%s): %s; closing", (unsigned long long)c->num, c->peer, msg);
    Chan__Reply r = CHAN__REPLY__INIT;
    r.has_id = true;
    r.id = id;
    r.has_status = true;
    r.status = st;
    r.message = (char *)msg;
    chand_conn_reply(c, &r);
    chand_conn_drain(c);
}

void chand_conn_drain(chand_conn_t *c)
{
    if (c->doomed || c->flushing)
        return;
    c->flushing = true;
    event_del(c->ev_read);
    struct timeval tv = { FLUSH_TIMEOUT_S, 0 };
    evtimer_add(c->ev_timer, &tv);
    if (evbuffer_get_length(c->out) == 0)
        chand_conn_doom(c, NULL);
}

void chand_conn_doom(chand_conn_t *c, const char *why)
{
    if (c->doomed)
        return;
    c->doomed = true;
    if (why && !c->flushing)
        log_info("conn %llu (%s): %s", (unsigned long long)c->num, c->peer, why);
    event_del(c->ev_read);
    event_del(c->ev_write);
    event_del(c->ev_timer);
    qlist_push_back(&c->srv->doomed, &c->doomed_link);
    event_active(c->srv->reaper, EV_TIMEOUT, 1);
}

/* Free a connection's I/O resources and the connection. */
static void conn_release(chand_conn_t *c)
{
    if (c->ev_read)
        event_free(c->ev_read);
    if (c->ev_write)
        event_free(c->ev_write);
    if (c->ev_timer)
        event_free(c->ev_timer);
    if (c->in)
        evbuffer_free(c->in);
    if (c->out) {
        c->srv->out_bytes -= evbuffer_get_length(c->out);
        evbuffer_free(c->out);
    }
    chand_tls_close(c);
    if (c->fd >= 0)
        evutil_closesocket(c->fd);
    free(c->holds);
    free(c);
}

void chand_conn_free(chand_conn_t *c)
{
    chand_server_t *s = c->srv;
    core_sess_drop(c->sess);   /* may answer (and doom) other connections */
    qlist_remove(&c->link);
    qlist_remove(&c->doomed_link);
    qlist_remove(&c->pending_link);
    qlist_remove(&c->held_link);
    chand_repl_feed_free(c->feed);
    chand_guard_conn_gone(&s->guard, c->addr, chand_now());
    s->nconns--;
    log_debug("conn %llu closed (%llu frames in, %llu out)", (unsigned long long)c->num,
              (unsigned long long)c->frames_in, (unsigned long long)c->frames_out);
    conn_release(c);
}

void chand_conn_reap(chand_server_t *s)
{
    while (!qlist_empty(&s->doomed)) {
        chand_conn_t *c = QLIST_ENTRY(s->doomed.next, chand_conn_t, doomed_link);
        chand_conn_free(c);
    }
    chand_server_rearm(s);
}

/*
 * chand_conn.c - one client connection: frames in, replies out, limits, and
 * an orderly end.
 *
 * Reading: every complete frame in the input buffer is decoded and handled
 * in one callback.  The length prefix is checked against --max-frame before
 * the body is buffered, so a peer can never make us hold more than that.
 *
 * Writing: replies are encoded straight into the output buffer and the
 * connection joins the server's pending list; when the batch of work that
 * made them is done (chand_conn_flush_pending, Redis's beforeSleep) each
 * pending connection's output is written at once, one system call for a
 * burst of replies.  Only if the socket does not take it all is libevent's
 * write event enabled, until the buffer drains: registering and dropping
 * the event for every reply cost two epoll_ctl calls and a loop turn.  If
 * the buffer grows past --max-output the client is not reading: it is
 * disconnected and its unacknowledged values go back to their channels
 * (Redis's client-output-buffer-limit).
 *
 * Ending: a connection is never freed in the middle of a callback, because
 * the core may be answering it from inside another connection's request.
 * It is marked doomed instead, and the reaper event frees it once the
 * current callbacks are done.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "chand_alloc.h"
#include "chand_log.h"
#include "chand_server.h"

/* Seconds a stalled peer gets to take its final error reply. */
#define FLUSH_TIMEOUT_S 5

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

static void after_io(chand_server_t *s)
{
    chand_conn_flush_pending(s);
    chand_server_rearm(s);
    if (!qlist_empty(&s->doomed))
        event_active(s->reaper, EV_TIMEOUT, 1);
}

static void conn_read(chand_conn_t *c)
{
    chand_server_t *s = c->srv;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    static const uint8_t empty[1];
    while (!c->doomed && !c->flushing) {
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

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    chand_conn_t *c = arg;
    chand_server_t *s = c->srv;
    conn_read(c);
    after_io(s);
}

/* The output drained after the socket had refused some of it. */
static void write_cb(struct bufferevent *bev, void *arg)
{
    chand_conn_t *c = arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return;
    if (c->flushing) {
        chand_conn_doom(c, NULL);
        after_io(c->srv);
    } else {
        bufferevent_disable(bev, EV_WRITE);
    }
}

void chand_conn_flush_pending(chand_server_t *s)
{
    while (!qlist_empty(&s->pending)) {
        chand_conn_t *c = QLIST_ENTRY(s->pending.next, chand_conn_t, pending_link);
        qlist_remove(&c->pending_link);
        if (c->doomed)
            continue;
        struct evbuffer *out = bufferevent_get_output(c->bev);
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        /* A socket bufferevent freezes the drain end of its output buffer
         * except while it writes itself; this is such a write. */
        evbuffer_unfreeze(out, 1);
        while (evbuffer_get_length(out) > 0 && evbuffer_write(out, fd) > 0)
            ;
        evbuffer_freeze(out, 1);
        if (evbuffer_get_length(out) > 0)
            bufferevent_enable(c->bev, EV_WRITE);   /* the rest (or the error) when writable */
        else if (c->flushing)
            chand_conn_doom(c, NULL);
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    chand_conn_t *c = arg;
    if (what & BEV_EVENT_EOF)
        chand_conn_doom(c, NULL);   /* the normal end: logged at debug level */
    else if (what & BEV_EVENT_TIMEOUT)
        chand_conn_doom(c, "timed out flushing its last replies");
    else if (what & BEV_EVENT_ERROR)
        chand_conn_doom(c, "socket error");
    after_io(c->srv);
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
    if (s->nconns >= s->opts.max_conns) {
        log_warn("refused %s: too many connections (--max-conns %llu)", peer,
                 (unsigned long long)s->opts.max_conns);
        refuse(fd, "too many connections");
        return;
    }
    if (addr->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    struct bufferevent *bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        log_err("cannot set up connection from %s", peer);
        close(fd);
        return;
    }
    chand_conn_t *c = xcalloc(1, sizeof *c);
    c->srv = s;
    c->bev = bev;
    c->num = ++s->next_conn;
    c->accepted_ms = chand_now();
    memcpy(c->peer, peer, sizeof c->peer);
    c->sess = core_sess_new(s->core, c);
    qlist_init(&c->doomed_link);
    qlist_init(&c->pending_link);
    qlist_push_back(&s->conns, &c->link);
    s->nconns++;
    bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(bev, EV_READ);
    bufferevent_disable(bev, EV_WRITE);   /* on by default; only while output waits */
    log_debug("conn %llu from %s", (unsigned long long)c->num, c->peer);
}

void chand_conn_reply(chand_conn_t *c, const Chan__Reply *r)
{
    if (c->doomed)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t size = chan_frame_size_reply(r);
    struct evbuffer_iovec iov;
    if (evbuffer_reserve_space(out, (ev_ssize_t)size, &iov, 1) < 1) {
        chand_conn_doom(c, "out of memory for its replies");
        return;
    }
    iov.iov_len = chan_frame_encode_reply_sized(r, size, iov.iov_base);
    evbuffer_commit_space(out, &iov, 1);
    c->frames_out++;
    if (c->pending_link.next == &c->pending_link)
        qlist_push_back(&c->srv->pending, &c->pending_link);
    if (evbuffer_get_length(out) > c->srv->opts.max_output)
        chand_conn_doom(c, "output over --max-output: the client is not reading");
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
    if (c->doomed)
        return;
    c->flushing = true;
    bufferevent_disable(c->bev, EV_READ);
    struct timeval tv = { FLUSH_TIMEOUT_S, 0 };
    bufferevent_set_timeouts(c->bev, NULL, &tv);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        chand_conn_doom(c, NULL);
    else
        bufferevent_enable(c->bev, EV_WRITE);   /* drain it, within the timeout */
}

void chand_conn_doom(chand_conn_t *c, const char *why)
{
    if (c->doomed)
        return;
    c->doomed = true;
    if (why && !c->flushing)
        log_info("conn %llu (%s): %s", (unsigned long long)c->num, c->peer, why);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    qlist_push_back(&c->srv->doomed, &c->doomed_link);
    event_active(c->srv->reaper, EV_TIMEOUT, 1);
}

void chand_conn_free(chand_conn_t *c)
{
    chand_server_t *s = c->srv;
    core_sess_drop(c->sess);   /* may answer (and doom) other connections */
    bufferevent_free(c->bev);
    qlist_remove(&c->link);
    qlist_remove(&c->doomed_link);
    qlist_remove(&c->pending_link);
    s->nconns--;
    log_debug("conn %llu closed (%llu frames in, %llu out)", (unsigned long long)c->num,
              (unsigned long long)c->frames_in, (unsigned long long)c->frames_out);
    free(c);
}

void chand_conn_reap(chand_server_t *s)
{
    while (!qlist_empty(&s->doomed)) {
        chand_conn_t *c = QLIST_ENTRY(s->doomed.next, chand_conn_t, doomed_link);
        chand_conn_free(c);
    }
    chand_conn_flush_pending(s);   /* what the frees answered others */
    chand_server_rearm(s);
}

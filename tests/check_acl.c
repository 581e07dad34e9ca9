/*
 * check_acl.c - users and permissions (chand --acl-file), and the
 * protections against cheap attacks: delayed answers to failed Hellos,
 * --max-conns-per-ip, --hello-timeout against a trickle, --idle-timeout.
 *
 * Every daemon here also has an --auth-file token: the "admin" client
 * that presents it may do everything, and sets channels up.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "chan/chan.h"
#include "chan_frame.h"
#include "chand_fixture.h"
#include "test_size.h"

#define ADMIN_TOKEN "admin-token"

static chand_proc_t D;
static char acl_path[128], token_path[128];

/* The line `user NAME HASH` for secret: PBKDF2 with few iterations (the
 * fewest chand takes), so that tests stay quick. */
static void user_line(char *out, size_t size, const char *name, const char *secret)
{
    static const unsigned char salt[16] = "0123456789abcdef";
    unsigned char h[32];
    ck_assert_int_eq(PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), salt, sizeof salt, 1000,
                                       EVP_sha256(), sizeof h, h), 1);
    int n = snprintf(out, size, "user %s pbkdf2-sha256$1000$", name);
    for (size_t i = 0; i < sizeof salt; i++)
        n += snprintf(out + n, size - (size_t)n, "%02x", salt[i]);
    n += snprintf(out + n, size - (size_t)n, "$");
    for (size_t i = 0; i < sizeof h; i++)
        n += snprintf(out + n, size - (size_t)n, "%02x", h[i]);
    snprintf(out + n, size - (size_t)n, "\n");
}

/* Write the ACL: alice, bob and carol (secrets NAME-pw) and the allow
 * lines given. */
static void write_acl(const char *allow)
{
    char text[4096] = "# users of the tests\n", line[256];
    const char *users[] = { "alice", "bob", "carol" };
    for (size_t i = 0; i < 3; i++) {
        char pw[32];
        snprintf(pw, sizeof pw, "%s-pw", users[i]);
        user_line(line, sizeof line, users[i], pw);
        strcat(text, line);
    }
    strcat(text, allow);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.new", acl_path);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, acl_path), 0);
}

static void start(const char *allow, const char *const *more)
{
    snprintf(acl_path, sizeof acl_path, "/tmp/chand-acl-%d", (int)getpid());
    snprintf(token_path, sizeof token_path, "/tmp/chand-acl-token-%d", (int)getpid());
    FILE *f = fopen(token_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(ADMIN_TOKEN "\n", f);
    fclose(f);
    write_acl(allow);
    const char *args[20] = { "--acl-file", acl_path, "--auth-file", token_path };
    size_t n = 4;
    for (size_t i = 0; more && more[i] && n < 19; i++)
        args[n++] = more[i];
    args[n] = NULL;
    ck_assert_int_eq(chand_start(&D, args), 0);
}

static void stop(void)
{
    ck_assert_int_eq(chand_stop(&D), 0);
    unlink(acl_path);
    unlink(token_path);
}

static chan_client_t *dial_as(const char *user, const char *secret)
{
    chan_connect_opts_t o = { .addr = D.addr, .user = user, .token = secret };
    return chan_connect_opts(&o, chan_now() + 5000);
}

static chan_client_t *user_client(const char *user)
{
    char pw[32];
    snprintf(pw, sizeof pw, "%s-pw", user);
    chan_client_t *cl = dial_as(user, pw);
    ck_assert_msg(cl, "connect as %s: %s (%s)", user, strerror(errno), chan_errmsg());
    return cl;
}

static chan_client_t *admin(void)
{
    chan_client_t *cl = dial_as(NULL, ADMIN_TOKEN);
    ck_assert_msg(cl, "connect with the token: %s (%s)", strerror(errno), chan_errmsg());
    return cl;
}

/* The last call failed with EACCES, and chand said exactly want. */
static void assert_denied(int rc, const char *want)
{
    int e = errno;
    ck_assert_msg(rc < 0, "allowed, expected \"%s\"", want);
    ck_assert_msg(e == EACCES, "errno %d (%s), expected EACCES for \"%s\"", e, strerror(e), want);
    ck_assert_msg(!strcmp(chan_errmsg(), want), "message \"%s\", expected \"%s\"", chan_errmsg(),
                  want);
}

static void make_chan(chan_client_t *cl, const char *name, long cap)
{
    chan_release(chand_open_ch(cl, name, cap));
}

static uint64_t chan_len_of(chan_client_t *cl, const char *name)
{
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(cl, name, &st, chan_now() + 5000), 0);
    return st.len;
}

/* ---- each operation, allowed and denied by pattern ---- */

static const char ops_acl[] =
    "allow alice send jobs.*\n"
    "allow alice recv results.?\n"
    "allow alice make jobs.* scratch.*\n"
    "allow alice close,delete scratch.*\n";

START_TEST(t_ops_by_pattern)
{
    start(ops_acl, NULL);
    chan_client_t *ad = admin();
    make_chan(ad, "jobs.a", 10);
    make_chan(ad, "results.1", 10);
    make_chan(ad, "results.12", 10);
    make_chan(ad, "other", 10);
    chan_t *r1 = chand_open_ch(ad, "results.1", 10);
    ck_assert_int_eq(chan_send(r1, "r", 1, chan_now() + 5000), 0);

    chan_client_t *cl = user_client("alice");
    /* a temporary channel: it would die with a lost connection, so its
     * handle working at the end shows that no refusal closed it */
    chan_t *tmp = chan_open_temp(cl, 4, chan_now() + 5000);
    ck_assert_ptr_nonnull(tmp);

    /* open: an existing channel needs some permission on it */
    chan_t *jobs = chan_open(cl, "jobs.a", CHAN_CAP_ANY, 0, chan_now() + 5000);
    ck_assert_ptr_nonnull(jobs);
    chan_t *res = chan_open(cl, "results.1", CHAN_CAP_ANY, 0, chan_now() + 5000);
    ck_assert_ptr_nonnull(res);
    chan_t *no = chan_open(cl, "other", CHAN_CAP_ANY, 0, chan_now() + 5000);
    ck_assert_ptr_null(no);
    assert_denied(-1, "user alice may not open 'other'");
    /* '?' is one byte: results.12 is not alice's */
    no = chan_open(cl, "results.12", CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + 5000);
    ck_assert_ptr_null(no);
    assert_denied(-1, "user alice may not open 'results.12'");

    /* send */
    ck_assert_int_eq(chan_send(jobs, "j", 1, chan_now() + 5000), 0);
    assert_denied(chan_send(res, "x", 1, chan_now() + 5000), "user alice may not send to 'results.1'");
    ck_assert_uint_eq(chan_len_of(ad, "results.1"), 1);

    /* recv */
    char buf[8];
    ck_assert_int_eq(chan_recv(res, buf, sizeof buf, chan_now() + 5000), 1);
    assert_denied((int)chan_recv(jobs, buf, sizeof buf, chan_now() + 5000),
                  "user alice may not receive from 'jobs.a'");
    ck_assert_uint_eq(chan_len_of(ad, "jobs.a"), 1);

    /* make */
    chan_t *made = chan_open(cl, "jobs.new", 2, 0, chan_now() + 5000);
    ck_assert_ptr_nonnull(made);
    no = chan_open(cl, "results.2", 2, 0, chan_now() + 5000);
    ck_assert_ptr_null(no);
    assert_denied(-1, "user alice may not make 'results.2'");
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(ad, "results.2", &st, chan_now() + 5000), -1);
    ck_assert_int_eq(errno, ENOENT);
    chan_t *scratch = chan_open(cl, "scratch.x", 2, 0, chan_now() + 5000);
    ck_assert_ptr_nonnull(scratch);

    /* close */
    assert_denied(chan_close(jobs), "user alice may not close 'jobs.a'");
    ck_assert_int_eq(chan_stat(ad, "jobs.a", &st, chan_now() + 5000), 0);
    ck_assert_int_eq(st.closed, 0);
    ck_assert_int_eq(chan_close(scratch), 0);

    /* delete */
    assert_denied(chan_delete(cl, "jobs.a", chan_now() + 5000), "user alice may not delete 'jobs.a'");
    ck_assert_int_eq(chan_stat(ad, "jobs.a", &st, chan_now() + 5000), 0);
    ck_assert_int_eq(chan_delete(cl, "scratch.x", chan_now() + 5000), 0);
    ck_assert_int_eq(chan_stat(ad, "scratch.x", &st, chan_now() + 5000), -1);
    ck_assert_int_eq(errno, ENOENT);

    /* the connection stayed through every refusal */
    ck_assert_int_eq(chan_send(tmp, "t", 1, chan_now() + 5000), 0);
    ck_assert_int_eq(chan_recv(tmp, buf, sizeof buf, chan_now() + 5000), 1);

    /* a user with no allow line may only ping */
    chan_client_t *bob = user_client("bob");
    ck_assert_int_eq(chan_ping(bob, chan_now() + 5000), 0);
    ck_assert_ptr_null(chan_open(bob, "jobs.a", CHAN_CAP_ANY, 0, chan_now() + 5000));
    assert_denied(-1, "user bob may not open 'jobs.a'");
    chan_disconnect(bob);

    chan_release(tmp);
    chan_release(jobs);
    chan_release(res);
    chan_release(made);
    chan_release(scratch);
    chan_release(r1);
    chan_disconnect(cl);
    chan_disconnect(ad);
    stop();
}
END_TEST

/* ---- select: one forbidden case refuses the whole select ---- */

START_TEST(t_select_refused_whole)
{
    start(ops_acl, NULL);
    chan_client_t *ad = admin();
    make_chan(ad, "jobs.a", 10);
    make_chan(ad, "results.1", 10);
    chan_client_t *cl = user_client("alice");
    chan_t *jobs = chand_open_ch(cl, "jobs.a", CHAN_CAP_ANY);
    chan_t *res = chand_open_ch(cl, "results.1", CHAN_CAP_ANY);
    char buf[8];
    /* the send case is allowed and ready at once (room in the buffer):
     * had the select not been refused as a whole, it would have sent */
    chan_case_t cases[2] = { CHAN_CASE_SEND(jobs, "v", 1), CHAN_CASE_SEND(res, "w", 1) };
    assert_denied(chan_select(cases, 2, chan_now() + 5000),
                  "user alice may not send to 'results.1'");
    ck_assert_uint_eq(chan_len_of(ad, "jobs.a"), 0);
    ck_assert_uint_eq(chan_len_of(ad, "results.1"), 0);
    chan_case_t recv_case[2] = { CHAN_CASE_RECV(res, buf, sizeof buf),
                                 CHAN_CASE_RECV(jobs, buf, sizeof buf) };
    assert_denied(chan_select(recv_case, 2, chan_now() + 5000),
                  "user alice may not receive from 'jobs.a'");
    /* allowed cases only: it goes */
    chan_case_t ok[2] = { CHAN_CASE_SEND(jobs, "v", 1), CHAN_CASE_RECV(res, buf, sizeof buf) };
    ck_assert_int_eq(chan_select(ok, 2, chan_now() + 5000), 0);
    ck_assert_uint_eq(chan_len_of(ad, "jobs.a"), 1);
    chan_release(jobs);
    chan_release(res);
    chan_disconnect(cl);
    chan_disconnect(ad);
    stop();
}
END_TEST

/* ---- temporary channels are their maker's user's ---- */

START_TEST(t_temp_channels)
{
    start("allow carol recv tmp.*\n", NULL);
    chan_client_t *a1 = user_client("alice");
    chan_t *t = chan_open_temp(a1, 4, chan_now() + 5000);
    ck_assert_ptr_nonnull(t);
    const char *name = chan_name(t);
    char want[300];
    /* another connection of alice's: hers too, though no pattern says so */
    chan_client_t *a2 = user_client("alice");
    chan_t *t2 = chan_open(a2, name, CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + 5000);
    ck_assert_msg(t2, "alice's second connection: %s", chan_errmsg());
    ck_assert_int_eq(chan_send(t2, "x", 1, chan_now() + 5000), 0);
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(a2, name, &st, chan_now() + 5000), 0);
    ck_assert_int_eq(st.temp, 1);
    /* bob: not his */
    chan_client_t *b = user_client("bob");
    ck_assert_ptr_null(chan_open(b, name, CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + 5000));
    snprintf(want, sizeof want, "user bob may not open '%s'", name);
    assert_denied(-1, want);
    snprintf(want, sizeof want, "user bob may not delete '%s'", name);
    assert_denied(chan_delete(b, name, chan_now() + 5000), want);
    /* carol: a pattern lets her receive, and only that */
    chan_client_t *c = user_client("carol");
    chan_t *tc = chan_open(c, name, CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + 5000);
    ck_assert_ptr_nonnull(tc);
    char buf[8];
    ck_assert_int_eq(chan_recv(tc, buf, sizeof buf, chan_now() + 5000), 1);
    snprintf(want, sizeof want, "user carol may not send to '%s'", name);
    assert_denied(chan_send(tc, "y", 1, chan_now() + 5000), want);
    /* alice's second connection may close it */
    ck_assert_int_eq(chan_close(t2), 0);
    chan_release(tc);
    chan_release(t2);
    chan_release(t);
    chan_disconnect(c);
    chan_disconnect(b);
    chan_disconnect(a2);
    chan_disconnect(a1);
    stop();
}
END_TEST

/* ---- stat and listing ---- */

START_TEST(t_stat_and_list)
{
    start("allow alice send jobs.*\nallow alice stat\nallow bob list\n", NULL);
    chan_client_t *ad = admin();
    make_chan(ad, "jobs.a", 1);
    make_chan(ad, "other", 1);
    chan_client_t *a = user_client("alice"), *b = user_client("bob");
    chan_stat_t st, *all = NULL;
    chan_server_stat_t ss;
    ck_assert_int_eq(chan_stat(a, "jobs.a", &st, chan_now() + 5000), 0);
    assert_denied(chan_stat(a, "other", &st, chan_now() + 5000), "user alice may not stat 'other'");
    ck_assert_int_eq(chan_server_stat(a, &ss, chan_now() + 5000), 0);
    assert_denied((int)chan_list(a, &all, chan_now() + 5000), "user alice may not list the channels");
    assert_denied(chan_server_stat(b, &ss, chan_now() + 5000), "user bob may not stat the server");
    assert_denied(chan_stat(b, "jobs.a", &st, chan_now() + 5000), "user bob may not stat 'jobs.a'");
    ssize_t n = chan_list(b, &all, chan_now() + 5000);
    ck_assert_int_eq(n, 2);
    free(all);
    chan_disconnect(a);
    chan_disconnect(b);
    chan_disconnect(ad);
    stop();
}
END_TEST

/* ---- SIGHUP: the file again, applied to open connections ---- */

/* Poll (up to 5 s) until alice's `open NAME` is allowed (or refused). */
static chan_t *open_when(chan_client_t *cl, const char *name, bool allowed)
{
    for (int i = 0; i < 500; i++) {
        chan_t *ch = chan_open(cl, name, 1, 0, chan_now() + 5000);
        if ((ch != NULL) == allowed)
            return ch;
        chan_release(ch);
        chand_sleep_ms(10);
    }
    ck_abort_msg("open %s: still %s after SIGHUP", name, allowed ? "refused" : "allowed");
    return NULL;
}

START_TEST(t_reload)
{
    start("allow alice send,make jobs.*\n", NULL);
    chan_client_t *cl = user_client("alice");
    chan_t *tmp = chan_open_temp(cl, 4, chan_now() + 5000);
    ck_assert_ptr_nonnull(tmp);
    ck_assert_ptr_null(chan_open(cl, "extra.1", 1, 0, chan_now() + 5000));
    assert_denied(-1, "user alice may not make 'extra.1'");

    /* a permission added applies to the open connection */
    write_acl("allow alice send,make jobs.* extra.*\n");
    ck_assert_int_eq(kill(D.pid, SIGHUP), 0);
    chan_t *x = open_when(cl, "extra.1", true);
    ck_assert_int_eq(chan_send(x, "v", 1, chan_now() + 5000), 0);

    /* a file that does not load changes nothing */
    FILE *f = fopen(acl_path, "a");
    fputs("allow alice fly extra.*\n", f);
    fclose(f);
    ck_assert_int_eq(kill(D.pid, SIGHUP), 0);
    chand_sleep_ms(300);
    /* still allowed: it waits for room (cap 1, full), it is not refused */
    ck_assert_int_eq(chan_send(x, "v", 1, chan_now() + 200), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    chan_t *y = chan_open(cl, "extra.2", 1, 0, chan_now() + 5000);
    ck_assert_ptr_nonnull(y);

    /* a permission removed applies to its next request */
    write_acl("allow alice send,make jobs.*\n");
    ck_assert_int_eq(kill(D.pid, SIGHUP), 0);
    open_when(cl, "extra.3", false);
    assert_denied(chan_send(y, "v", 1, chan_now() + 5000), "user alice may not send to 'extra.2'");
    /* the connection stayed throughout */
    ck_assert_int_eq(chan_send(tmp, "t", 1, chan_now() + 5000), 0);

    /* a user removed: its connection's next request is refused and the
     * connection closed */
    FILE *g = fopen(acl_path, "w");
    char line[256];
    user_line(line, sizeof line, "bob", "bob-pw");
    fputs(line, g);
    fclose(g);
    ck_assert_int_eq(kill(D.pid, SIGHUP), 0);
    int rc = 0;
    for (int i = 0; i < 500 && (rc = chan_ping(cl, chan_now() + 5000)) == 0; i++)
        chand_sleep_ms(10);
    ck_assert_int_eq(rc, -1);
    /* its temporary channel went with the connection */
    ck_assert_int_eq(chan_send(tmp, "t", 1, chan_now() + 5000), -1);
    char log[8192];
    snprintf(log, sizeof log, "%s/chand.log", D.dir);
    FILE *lf = fopen(log, "r");
    ck_assert_ptr_nonnull(lf);
    size_t got = fread(log, 1, sizeof log - 1, lf);
    log[got] = 0;
    fclose(lf);
    ck_assert_msg(strstr(log, "did not load"), "no reload failure in the log:\n%s", log);
    ck_assert_msg(strstr(log, ":6: 'fly' is not send"), "no line number in the log:\n%s", log);
    ck_assert_msg(strstr(log, "user alice is no longer in the --acl-file"), "log:\n%s", log);
    chan_release(x);
    chan_release(y);
    chan_release(tmp);
    chan_disconnect(cl);
    stop();
}
END_TEST

/* ---- the --auth-file token, and Hellos without a user ---- */

START_TEST(t_auth_file_token)
{
    start("allow alice send jobs.*\n", NULL);
    chan_client_t *ad = admin();
    chan_t *ch = chand_open_ch(ad, "anything", 1);
    chan_stat_t *all = NULL;
    chan_server_stat_t ss;
    ck_assert_int_eq(chan_server_stat(ad, &ss, chan_now() + 5000), 0);
    ssize_t n = chan_list(ad, &all, chan_now() + 5000);
    ck_assert_int_eq(n, 1);
    free(all);
    ck_assert_int_eq(chan_delete(ad, "anything", chan_now() + 5000), 0);
    chan_release(ch);
    chan_disconnect(ad);
    /* the token is not a user's secret, nor a user's secret the token */
    ck_assert_ptr_null(dial_as("alice", ADMIN_TOKEN));
    ck_assert_int_eq(errno, EACCES);
    ck_assert_ptr_null(dial_as(NULL, "alice-pw"));
    ck_assert_int_eq(errno, EACCES);
    stop();
    /* without --auth-file, a Hello must name a user */
    snprintf(acl_path, sizeof acl_path, "/tmp/chand-acl-%d", (int)getpid());
    write_acl("");
    const char *args[] = { "--acl-file", acl_path, NULL };
    ck_assert_int_eq(chand_start(&D, args), 0);
    unsetenv("CHAN_USER");
    unsetenv("CHAN_TOKEN");
    ck_assert_ptr_null(chan_connect(D.addr, NULL, chan_now() + 5000));
    ck_assert_int_eq(errno, EACCES);
    ck_assert_str_eq(chan_errmsg(), "this chand needs a user name (and its secret)");
    /* $CHAN_USER and $CHAN_TOKEN name the user */
    setenv("CHAN_USER", "carol", 1);
    setenv("CHAN_TOKEN", "carol-pw", 1);
    chan_client_t *cl = chan_connect(D.addr, NULL, chan_now() + 5000);
    ck_assert_ptr_nonnull(cl);
    ck_assert_int_eq(chan_ping(cl, chan_now() + 5000), 0);
    chan_disconnect(cl);
    unsetenv("CHAN_USER");
    unsetenv("CHAN_TOKEN");
    ck_assert_int_eq(chand_stop(&D), 0);
    unlink(acl_path);
}
END_TEST

/* ---- raw sockets ---- */

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void raw_request(int fd, Chan__Request *rq)
{
    uint8_t buf[4096];
    ck_assert_uint_le(chan_frame_size_request(rq), sizeof buf);
    size_t n = chan_frame_encode_request(rq, buf);
    ck_assert_int_eq(send(fd, buf, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void raw_hello(int fd, const char *user, const char *secret)
{
    Chan__Hello h = CHAN__HELLO__INIT;
    h.has_version = true;
    h.version = 1;
    h.user = (char *)user;
    if (secret) {
        h.has_token = true;
        h.token.data = (uint8_t *)secret;
        h.token.len = strlen(secret);
    }
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = 1;
    rq.op_case = CHAN__REQUEST__OP_HELLO;
    rq.hello = &h;
    raw_request(fd, &rq);
}

/* One reply frame within ms (its status, message and id), or -1 if the
 * connection closed first. */
static int raw_reply(int fd, long ms, char *msg, size_t msgsize, uint64_t *id)
{
    static uint8_t buf[65536];
    size_t got = 0;
    int64_t until = chan_now() + ms;
    for (;;) {
        uint64_t body;
        size_t hdr;
        int h = chan_frame_header(buf, got, sizeof buf, &body, &hdr);
        ck_assert_int_ge(h, 0);
        if (h == CHAN_FRAME_OK && got >= hdr + body) {
            chan_arena_t a;
            chan_arena_init(&a);
            Chan__Reply *r = chan_frame_decode_reply(&a, buf + hdr, body);
            ck_assert_ptr_nonnull(r);
            int st = r->has_status ? (int)r->status : 0;
            snprintf(msg, msgsize, "%s", r->message ? r->message : "");
            if (id)
                *id = r->id;
            chan_arena_free(&a);
            return st;
        }
        int64_t left = until - chan_now();
        struct pollfd p = { fd, POLLIN, 0 };
        ck_assert_msg(left > 0 && poll(&p, 1, (int)left) == 1, "no reply within %ld ms", ms);
        ssize_t n = recv(fd, buf + got, sizeof buf - got, 0);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
}

static bool raw_closed_within(int fd, long ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    char c;
    return poll(&p, 1, (int)ms) == 1 && recv(fd, &c, 1, 0) == 0;
}

/* ---- a wrong secret: refused, late, without holding up the others ---- */

START_TEST(t_wrong_secret_delayed)
{
    start("allow alice send jobs.*\n", NULL);
    long prev = 0;
    for (int i = 0; i < 3; i++) {
        int fd = raw_connect(D.port);
        int64_t t0 = chan_now();
        raw_hello(fd, i == 2 ? "nobody" : "alice", "not-the-pw");
        /* meanwhile chand serves everyone else: the answer waits on a
         * timer, not on chand's one thread */
        int64_t t1 = chan_now();
        chan_client_t *cl = user_client("bob");
        ck_assert_int_eq(chan_ping(cl, chan_now() + 5000), 0);
        if (i == 2)
            ck_assert_int_lt(chan_now() - t1, 300);
        chan_disconnect(cl);
        char msg[256];
        ck_assert_int_eq(raw_reply(fd, 5000, msg, sizeof msg, NULL), 7 /* UNAUTHORIZED */);
        long took = (long)(chan_now() - t0);
        ck_assert_str_eq(msg, "bad user name or secret");
        ck_assert_msg(raw_closed_within(fd, 2000), "still open after a refused Hello");
        close(fd);
        /* 100 ms, then 200, then 400: each failure from the address waits longer */
        long want = 100L << i;
        ck_assert_msg(took >= want - 10, "failure %d answered after %ld ms, expected %ld", i + 1,
                      took, want);
        ck_assert_msg(took > prev, "failure %d: %ld ms, not longer than %ld", i + 1, took, prev);
        prev = took;
    }
    /* libchan says EACCES */
    ck_assert_ptr_null(dial_as("alice", "wrong"));
    ck_assert_int_eq(errno, EACCES);
    /* the right secret still gets in, at once (the next failure would
     * wait 1.6 s) */
    int64_t t0 = chan_now();
    chan_client_t *cl = user_client("alice");
    ck_assert_int_lt(chan_now() - t0, 800);
    chan_disconnect(cl);
    stop();
}
END_TEST

/* ---- 10,000 wrong secrets from one address ---- */

/* Lines of the daemon's log holding `what`. */
static int log_lines(const char *what)
{
    char path[128], line[1024];
    snprintf(path, sizeof path, "%s/chand.log", D.dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, what) != NULL;
    fclose(f);
    return n;
}

/* An attacker sends 10,000 Hellos with wrong secrets (closing each
 * connection without waiting, as a guesser would, and waiting on a few):
 * those it waits on are answered late, the log holds a few lines with
 * counts, and a legitimate client's pings go on answering promptly. */
START_TEST(t_ten_thousand_wrong_secrets)
{
    enum { ATTEMPTS = 10000, WATCHED = 8 };
    start("allow alice send jobs.*\n", NULL);
    chan_client_t *ok = user_client("bob");
    int watched[WATCHED];
    int64_t sent_at[WATCHED];
    int64_t worst_ping = 0, t_start = chan_now();
    for (int i = 0; i < ATTEMPTS; i++) {
        int fd = raw_connect(D.port);
        raw_hello(fd, i % 2 ? "alice" : "mallory", "guess");
        if (i >= ATTEMPTS - WATCHED) {
            watched[i - (ATTEMPTS - WATCHED)] = fd;
            sent_at[i - (ATTEMPTS - WATCHED)] = chan_now();
        } else {
            close(fd);
        }
        if (i % 250 == 0) {
            int64_t t0 = chan_now();
            ck_assert_int_eq(chan_ping(ok, chan_now() + 5000), 0);
            if (chan_now() - t0 > worst_ping)
                worst_ping = chan_now() - t0;
        }
    }
    /* the last guesses are answered only after the longest delay (3 s):
     * at most one guess per few seconds can learn its answer */
    for (int k = 0; k < WATCHED; k++) {
        char msg[256];
        ck_assert_int_eq(raw_reply(watched[k], 10000, msg, sizeof msg, NULL), 7);
        long took = (long)(chan_now() - sent_at[k]);
        ck_assert_msg(took >= 2000, "guess %d answered after %ld ms", k, took);
        close(watched[k]);
    }
    /* the legitimate client: every ping during the attack, and one after
     * (bounds stretched like every wait in a sanitizer build, where chand
     * is several times slower and shares the cores with other suites) */
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_ping(ok, chan_now() + 5000), 0);
    ck_assert_msg(chan_now() - t0 < test_wait_ms(200), "a ping after the attack took %lld ms",
                  (long long)(chan_now() - t0));
    ck_assert_msg(worst_ping < test_wait_ms(1000), "a ping during the attack took %lld ms",
                  (long long)worst_ping);
    /* a few lines, each with a count of those not logged: about one a
     * second of the attack */
    long secs = (long)((chan_now() - t_start) / 1000) + 2;
    int lines = log_lines("Hello refused");
    ck_assert_msg(lines >= 1 && lines <= secs, "%d log lines about refused Hellos in %ld s", lines,
                  secs);
    ck_assert_msg(log_lines("not logged") >= 1, "no line counts the refusals it left out");
    chan_disconnect(ok);
    stop();
}
END_TEST

/* ---- --max-conns-per-ip ---- */

START_TEST(t_max_conns_per_ip)
{
    const char *more[] = { "--max-conns-per-ip", "2", NULL };
    start("", more);
    chan_client_t *a = admin(), *b = admin();
    ck_assert_ptr_null(dial_as(NULL, ADMIN_TOKEN));
    ck_assert_int_eq(errno, EBUSY);
    ck_assert_msg(strstr(chan_errmsg(), "--max-conns-per-ip 2"), "message '%s'", chan_errmsg());
    chan_disconnect(a);
    /* a slot is free again once chand has seen the close */
    chan_client_t *c = NULL;
    for (int i = 0; i < 200 && !c; i++)
        if (!(c = dial_as(NULL, ADMIN_TOKEN)))
            chand_sleep_ms(10);
    ck_assert_ptr_nonnull(c);
    chan_disconnect(b);
    chan_disconnect(c);
    stop();
}
END_TEST

/* ---- --hello-timeout against a Hello that trickles in ---- */

START_TEST(t_hello_timeout_trickle)
{
    const char *more[] = { "--hello-timeout", "300ms", NULL };
    start("", more);
    int fd = raw_connect(D.port);
    int64_t t0 = chan_now();
    /* a frame's length, then a byte at a time: never a whole Hello */
    uint8_t len = 100;
    ck_assert_int_eq(send(fd, &len, 1, MSG_NOSIGNAL), 1);
    int closed = 0;
    for (int i = 0; i < 40 && !closed; i++) {
        uint8_t b = 0x52;
        if (send(fd, &b, 1, MSG_NOSIGNAL) != 1)
            break;
        struct pollfd p = { fd, POLLIN, 0 };
        closed = poll(&p, 1, 50);
    }
    char msg[256];
    ck_assert_int_eq(raw_reply(fd, 3000, msg, sizeof msg, NULL), 6 /* BAD_REQUEST */);
    ck_assert_msg(strstr(msg, "no Hello within 300 ms"), "message '%s'", msg);
    long took = (long)(chan_now() - t0);
    ck_assert_msg(took >= 290 && took < 1500, "closed after %ld ms", took);
    close(fd);
    stop();
}
END_TEST

/* ---- --idle-timeout ---- */

START_TEST(t_idle_timeout)
{
    const char *more[] = { "--idle-timeout", "300ms", NULL };
    start("", more);
    /* idle: closed, with a reason */
    int fd = raw_connect(D.port);
    raw_hello(fd, NULL, ADMIN_TOKEN);
    char msg[256];
    ck_assert_int_eq(raw_reply(fd, 3000, msg, sizeof msg, NULL), 0);
    int64_t t0 = chan_now();
    uint64_t id = 99;
    ck_assert_int_eq(raw_reply(fd, 3000, msg, sizeof msg, &id), 2 /* TIMEOUT */);
    ck_assert_uint_eq(id, 0);
    ck_assert_msg(strstr(msg, "--idle-timeout"), "message '%s'", msg);
    long took = (long)(chan_now() - t0);
    ck_assert_msg(took >= 250 && took < 2000, "closed after %ld ms", took);
    ck_assert(raw_closed_within(fd, 2000));
    close(fd);

    /* traffic keeps a connection: pings every 100 ms for a second */
    chan_client_t *cl = admin();
    chan_t *ch = chand_open_ch(cl, "later", 1);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(chan_ping(cl, chan_now() + 5000), 0);
        chand_sleep_ms(100);
    }
    /* a blocked receive keeps it, however quiet: it waits, it is not idle */
    fd = raw_connect(D.port);
    raw_hello(fd, NULL, ADMIN_TOKEN);
    ck_assert_int_eq(raw_reply(fd, 3000, msg, sizeof msg, NULL), 0);
    Chan__Recv rv = CHAN__RECV__INIT;
    rv.has_name = true;
    rv.name.data = (uint8_t *)"later";
    rv.name.len = 5;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = 2;
    rq.op_case = CHAN__REQUEST__OP_RECV;
    rq.recv = &rv;
    raw_request(fd, &rq);
    struct pollfd p = { fd, POLLIN, 0 };
    ck_assert_int_eq(poll(&p, 1, 900), 0);   /* nothing: not closed */
    ck_assert_int_eq(chan_send(ch, "v", 1, chan_now() + 5000), 0);
    ck_assert_int_eq(raw_reply(fd, 3000, msg, sizeof msg, &id), 0);
    ck_assert_uint_eq(id, 2);
    close(fd);
    ck_assert_int_eq(chan_ping(cl, chan_now() + 1000), 0);
    chan_release(ch);
    chan_disconnect(cl);
    stop();
}
END_TEST

/* ---- bad ACL files: chand does not start, and says where ---- */

static void expect_bad_file(const char *text, const char *needle)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/chand-badacl-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    const char *args[] = { "--listen", "127.0.0.1:0", "--acl-file", path, NULL };
    char out[4096];
    int st = chand_run(args, out, sizeof out, 5000);
    unlink(path);
    ck_assert_msg(st != 0 && st != -1, "chand started with a bad ACL:\n%s", text);
    ck_assert_msg(strstr(out, needle), "output lacks '%s':\n%s", needle, out);
}

START_TEST(t_bad_files)
{
    char good[256];
    user_line(good, sizeof good, "alice", "pw");
    char text[1024];
    expect_bad_file("", "no users");
    expect_bad_file("bogus line\n", ":1: 'bogus'");
    snprintf(text, sizeof text, "# c\n%sallow bob send x\n", good);
    expect_bad_file(text, ":3: allow: no user bob");
    snprintf(text, sizeof text, "%sallow alice send\n", good);
    expect_bad_file(text, ":2: allow: send, recv, make, close and delete need");
    snprintf(text, sizeof text, "%sallow alice stat x.*\n", good);
    expect_bad_file(text, ":2: pattern 'x.*': stat, list and cluster take none");
    snprintf(text, sizeof text, "%sallow alice send a[b]\n", good);
    expect_bad_file(text, ":2: pattern 'a[b]'");
    snprintf(text, sizeof text, "%s%s", good, good);
    expect_bad_file(text, ":2: user alice is defined twice");
    expect_bad_file("user alice md5$1$2\n", ":1: the secret's hash must be");
    expect_bad_file("user alice pbkdf2-sha256$10$00112233445566778899aabbccddeeff$00\n",
                    ":1: 10 iterations");
    expect_bad_file("user alice pbkdf2-sha256$1000$0011$00\n", ":1: the salt must be");
    expect_bad_file("user alice pbkdf2-sha256$1000$00112233445566778899aabbccddeeff$00\n",
                    ":1: the hash must be 32 bytes");
    expect_bad_file("user al/ice pbkdf2-sha256$1000$00$00\n", ":1: user name 'al/ice'");
    /* a good file starts */
    snprintf(text, sizeof text, "%sallow alice send,recv jobs.* a?c\nallow alice stat,list\n", good);
    char path[64];
    snprintf(path, sizeof path, "/tmp/chand-goodacl-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chand_proc_t d;
    const char *args[] = { "--acl-file", path, NULL };
    ck_assert_int_eq(chand_start(&d, args), 0);
    ck_assert_int_eq(chand_stop(&d), 0);
    unlink(path);
}
END_TEST

static Suite *acl_suite(void)
{
    Suite *s = suite_create("acl");
    TCase *tc = tcase_create("permissions");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, t_ops_by_pattern);
    tcase_add_test(tc, t_select_refused_whole);
    tcase_add_test(tc, t_temp_channels);
    tcase_add_test(tc, t_stat_and_list);
    tcase_add_test(tc, t_reload);
    tcase_add_test(tc, t_auth_file_token);
    tcase_add_test(tc, t_bad_files);
    suite_add_tcase(s, tc);
    tc = tcase_create("attacks");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, t_wrong_secret_delayed);
    tcase_add_test(tc, t_ten_thousand_wrong_secrets);
    tcase_add_test(tc, t_max_conns_per_ip);
    tcase_add_test(tc, t_hello_timeout_trickle);
    tcase_add_test(tc, t_idle_timeout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(acl_suite());
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}

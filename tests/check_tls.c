/*
 * check_tls.c - chand's TLS listeners, and libchan and the chan CLI over
 * TLS, against a real chand on an ephemeral loopback port.
 *
 * The certificates are made at the start by the openssl command ($OPENSSL
 * from configure, else openssl on the PATH) in a temporary directory,
 * removed at the end: a CA, a second CA nobody trusts, a server
 * certificate for 127.0.0.1 and localhost, one for another name, one that
 * expired in 2020 (openssl ca, which takes explicit dates), client
 * certificates from each CA, and a second server certificate from the
 * other CA (what a SIGHUP swaps in).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "chan/chan.h"
#include "chan_frame.h"
#include "chand_fixture.h"
#include "test_size.h"

#define WAIT_MS 5000

static char certs[64];   /* the certificates' directory */

/* The path of certificate file `name` (ca.crt, server.key, ...). */
static const char *cert(const char *name)
{
    static char paths[8][128];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", certs, name);
    return p;
}

static const char gen_script[] =
"set -e\n"
"O=${OPENSSL:-openssl}\n"
"[ -n \"$O\" ] && [ \"$O\" != no ] || O=openssl\n"
"cd \"$1\"\n"
"cat > ca.cnf <<CNF\n"
"[ ca ]\n"
"default_ca = test_ca\n"
"[ test_ca ]\n"
"dir = .\n"
"database = index.txt\n"
"new_certs_dir = .\n"
"serial = serial\n"
"default_md = sha256\n"
"policy = pol\n"
"unique_subject = no\n"
"[ pol ]\n"
"commonName = supplied\n"
"[ server ]\n"
"basicConstraints = CA:FALSE\n"
"extendedKeyUsage = serverAuth\n"
"subjectAltName = IP:127.0.0.1,DNS:localhost\n"
"[ wrongname ]\n"
"basicConstraints = CA:FALSE\n"
"extendedKeyUsage = serverAuth\n"
"subjectAltName = DNS:wrong.example\n"
"[ client ]\n"
"basicConstraints = CA:FALSE\n"
"extendedKeyUsage = clientAuth\n"
"CNF\n"
": > index.txt\n"
"echo 01 > serial\n"
"sign() {   # NAME CN CA START END EXTENSIONS\n"
"  \"$O\" req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \\\n"
"     -keyout \"$1.key\" -out \"$1.csr\" -subj \"/CN=$2\" 2>/dev/null\n"
"  \"$O\" ca -batch -notext -config ca.cnf -cert \"$3.crt\" -keyfile \"$3.key\" \\\n"
"     -in \"$1.csr\" -out \"$1.crt\" -startdate \"$4\" -enddate \"$5\" -extensions \"$6\" 2>ca.err\n"
"}\n"
"for c in ca other; do\n"
"  \"$O\" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \\\n"
"     -keyout $c.key -out $c.crt -days 2 -subj \"/CN=chan test $c\" \\\n"
"     -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \\\n"
"     2>/dev/null\n"
"done\n"
"now=$(date -u -d '-1 hour' +%Y%m%d%H%M%SZ)\n"
"later=$(date -u -d '+2 days' +%Y%m%d%H%M%SZ)\n"
"sign server localhost ca \"$now\" \"$later\" server\n"
"sign wrongname wrong.example ca \"$now\" \"$later\" wrongname\n"
"sign expired localhost ca 20200101000000Z 20200102000000Z server\n"
"sign client chan-client ca \"$now\" \"$later\" client\n"
"sign rogue chan-client other \"$now\" \"$later\" client\n"
"sign server2 localhost other \"$now\" \"$later\" server\n";

static int make_certs(void)
{
    snprintf(certs, sizeof certs, "/tmp/chan-tls-XXXXXX");
    if (!mkdtemp(certs)) {
        perror("mkdtemp");
        return -1;
    }
    char script[128];
    snprintf(script, sizeof script, "%s/gen.sh", certs);
    FILE *f = fopen(script, "w");
    if (!f || fputs(gen_script, f) < 0 || fclose(f) != 0) {
        perror(script);
        return -1;
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "sh '%s' '%s'", script, certs);
    int st = system(cmd);
    if (st != 0) {
        fprintf(stderr, "check_tls: making the certificates failed (%d): is openssl installed?\n", st);
        return -1;
    }
    return 0;
}

/* ---- helpers ---- */

/* chand with TLS: cert NAME (server, expired, wrongname), then more flags */
static void start_tls(chand_proc_t *d, const char *name, const char *const *more)
{
    char crt[32], key[32];
    snprintf(crt, sizeof crt, "%s.crt", name);
    snprintf(key, sizeof key, "%s.key", name);
    const char *args[16] = { "--tls-cert", cert(crt), "--tls-key", cert(key) };
    int n = 4;
    for (int i = 0; more && more[i] && n < 15; i++)
        args[n++] = more[i];
    args[n] = NULL;
    ck_assert_msg(chand_start(d, args) == 0, "chand did not start");
}

static void tls_addr(char *out, size_t size, const char *host, const chand_proc_t *d)
{
    snprintf(out, size, "tls://%s:%d", host, d->port);
}

/* Connect over TLS to d with the CA file ca (and a client certificate). */
static chan_client_t *dial_tls(const chand_proc_t *d, const char *host, const char *ca,
                               const char *crt, const char *key)
{
    char addr[96];
    tls_addr(addr, sizeof addr, host, d);
    chan_connect_opts_t o = { .addr = addr, .tls_ca = ca, .tls_cert = crt, .tls_key = key };
    return chan_connect_opts(&o, chan_now() + WAIT_MS);
}

static chan_client_t *dial_ok(const chand_proc_t *d)
{
    chan_client_t *cl = dial_tls(d, "127.0.0.1", cert("ca.crt"), NULL, NULL);
    ck_assert_msg(cl, "TLS connect: %s (%s)", strerror(errno), chan_errmsg());
    return cl;
}

/* A dial that must fail, promptly, with errno want and a message with
 * `says` in it. */
static void expect_refusal(chan_client_t *cl, int64_t t0, int want, const char *says)
{
    int e = errno;
    const char *why = chan_errmsg();
    if (cl)
        chan_disconnect(cl);
    ck_assert_msg(!cl, "the connection should have failed (%s)", says);
    ck_assert_msg(e == want, "errno %d (%s), wanted %d; message: %s", e, strerror(e), want, why);
    ck_assert_msg(strstr(why, says), "message '%s' does not say '%s'", why, says);
    int64_t took = chan_now() - t0;
    ck_assert_msg(took < 3000, "the failure took %lld ms", (long long)took);
}

/* Lines of d's log that contain `what`. */
static int log_lines(const chand_proc_t *d, const char *what)
{
    char path[128], line[1024];
    snprintf(path, sizeof path, "%s/chand.log", d->dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, what) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* A raw TCP connection to d. */
static int raw_connect(const chand_proc_t *d)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)d->port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Wait up to ms for the peer to close fd: the milliseconds it took, or -1. */
static int64_t wait_closed(int fd, int64_t ms)
{
    int64_t t0 = chan_now(), end = t0 + ms;
    char buf[512];
    while (chan_now() < end) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, (int)(end - chan_now())) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return chan_now() - t0;
    }
    return -1;
}

/* ---- the library over TLS ---- */

START_TEST(send_recv_select)
{
    chand_proc_t d;
    start_tls(&d, "server", NULL);
    chan_client_t *cl = dial_ok(&d);
    chan_t *a = chand_open_ch(cl, "tls.a", 8), *b = chand_open_ch(cl, "tls.b", 8);
    ck_assert_int_eq(chan_send(a, "hello", 5, chan_now() + WAIT_MS), 0);
    char buf[16];
    ck_assert_int_eq(chan_recv(a, buf, sizeof buf, chan_now() + WAIT_MS), 5);
    ck_assert(memcmp(buf, "hello", 5) == 0);

    /* a value of many TLS records (16 KiB each), both ways */
    size_t big = 300000;
    char *out = malloc(big), *in = malloc(big);
    for (size_t i = 0; i < big; i++)
        out[i] = (char)(i * 31 + 7);
    ck_assert_int_eq(chan_send(a, out, big, chan_now() + WAIT_MS), 0);
    ck_assert_int_eq(chan_recv(a, in, big, chan_now() + WAIT_MS), (ssize_t)big);
    ck_assert(memcmp(in, out, big) == 0);
    free(out);
    free(in);

    /* select: the ready one of two remote channels */
    ck_assert_int_eq(chan_send(b, "bee", 3, chan_now() + WAIT_MS), 0);
    char va[8], vb[8];
    chan_case_t cs[2] = {
        { .ch = a, .op = CHAN_RECV, .buf = va, .len = sizeof va },
        { .ch = b, .op = CHAN_RECV, .buf = vb, .len = sizeof vb },
    };
    ck_assert_int_eq(chan_select(cs, 2, chan_now() + WAIT_MS), 1);
    ck_assert_int_eq(cs[1].n, 3);
    ck_assert(memcmp(vb, "bee", 3) == 0);

    /* a reference carries the scheme: whoever opens it speaks TLS too */
    char ref[CHAN_REF_MAX];
    ck_assert_int_gt(chan_ref(a, ref, sizeof ref), 0);
    ck_assert_msg(strstr(ref, "@tls://127.0.0.1:"), "ref %s", ref);
    chan_release(a);
    chan_release(b);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

/* A select across two TLS daemons (the two-phase select: reserve on each,
 * commit one, release the other): every value is taken exactly once. */
START_TEST(select_two_daemons)
{
    chand_proc_t d1, d2;
    start_tls(&d1, "server", NULL);
    start_tls(&d2, "server", NULL);
    chan_client_t *c1 = dial_ok(&d1), *c2 = dial_ok(&d2);
    chan_t *a = chand_open_ch(c1, "tls.two.a", 256), *b = chand_open_ch(c2, "tls.two.b", 256);
    enum { N = 200 };
    for (uint32_t i = 0; i < N; i++)
        ck_assert_int_eq(chan_send(i % 3 ? a : b, &i, sizeof i, chan_now() + WAIT_MS), 0);
    static uint8_t seen[N];
    memset(seen, 0, sizeof seen);
    int from[2] = { 0, 0 };
    for (int k = 0; k < N; k++) {
        uint32_t va = 0, vb = 0;
        chan_case_t cs[2] = {
            { .ch = a, .op = CHAN_RECV, .buf = &va, .len = sizeof va },
            { .ch = b, .op = CHAN_RECV, .buf = &vb, .len = sizeof vb },
        };
        int i = chan_select(cs, 2, chan_now() + WAIT_MS);
        ck_assert_msg(i == 0 || i == 1, "select: %d %s", i, strerror(errno));
        uint32_t v = i == 0 ? va : vb;
        ck_assert_uint_eq(cs[i].n, sizeof v);
        ck_assert_uint_lt(v, N);
        ck_assert_msg(seen[v]++ == 0, "value %u taken twice", v);
        ck_assert_int_eq(i, v % 3 ? 0 : 1);
        from[i]++;
    }
    ck_assert_int_gt(from[0], 0);
    ck_assert_int_gt(from[1], 0);
    /* nothing left, and nothing reserved and lost: both channels empty */
    chan_stat_t st;
    ck_assert_int_eq(chan_stat(c1, "tls.two.a", &st, chan_now() + WAIT_MS), 0);
    ck_assert_uint_eq(st.len, 0);
    ck_assert_int_eq(chan_stat(c2, "tls.two.b", &st, chan_now() + WAIT_MS), 0);
    ck_assert_uint_eq(st.len, 0);
    chan_release(a);
    chan_release(b);
    chan_disconnect(c1);
    chan_disconnect(c2);
    ck_assert_int_eq(chand_stop(&d1), 0);
    ck_assert_int_eq(chand_stop(&d2), 0);
}
END_TEST

/* The environment variables, a DNS name, and its override.  The name is
 * checked through CHAN_TLS_SERVERNAME on 127.0.0.1: a minimal system may
 * not resolve "localhost" at all, and resolving is not what is tested. */
START_TEST(environment)
{
    chand_proc_t d;
    start_tls(&d, "server", NULL);
    setenv("CHAN_TLS_CA", cert("ca.crt"), 1);
    setenv("CHAN_TLS_SERVERNAME", "localhost", 1);
    char addr[96];
    tls_addr(addr, sizeof addr, "127.0.0.1", &d);
    chan_client_t *cl = chan_connect(addr, NULL, chan_now() + WAIT_MS);
    ck_assert_msg(cl, "connect %s: %s (%s)", addr, strerror(errno), chan_errmsg());
    ck_assert_int_eq(chan_ping(cl, chan_now() + WAIT_MS), 0);
    chan_disconnect(cl);
    /* the name checked is CHAN_TLS_SERVERNAME's, which the certificate
     * does not have */
    setenv("CHAN_TLS_SERVERNAME", "wrong.example", 1);
    int64_t t0 = chan_now();
    cl = chan_connect(addr, NULL, chan_now() + WAIT_MS);
    expect_refusal(cl, t0, EPROTO, "hostname mismatch");
    unsetenv("CHAN_TLS_SERVERNAME");
    /* without CHAN_TLS_CA the system's store is used, which does not know
     * our test CA */
    unsetenv("CHAN_TLS_CA");
    t0 = chan_now();
    cl = chan_connect(addr, NULL, chan_now() + WAIT_MS);
    expect_refusal(cl, t0, EPROTO, "not trusted");
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

/* ---- what a client refuses ---- */

START_TEST(wrong_ca)
{
    chand_proc_t d;
    start_tls(&d, "server", NULL);
    int64_t t0 = chan_now();
    chan_client_t *cl = dial_tls(&d, "127.0.0.1", cert("other.crt"), NULL, NULL);
    expect_refusal(cl, t0, EPROTO, "unable to get local issuer certificate");
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

START_TEST(expired)
{
    chand_proc_t d;
    start_tls(&d, "expired", NULL);
    ck_assert_int_ge(log_lines(&d, "has expired"), 1);   /* chand warns at start */
    int64_t t0 = chan_now();
    chan_client_t *cl = dial_tls(&d, "127.0.0.1", cert("ca.crt"), NULL, NULL);
    expect_refusal(cl, t0, EPROTO, "certificate has expired");
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

START_TEST(wrong_name)
{
    chand_proc_t d;
    start_tls(&d, "wrongname", NULL);
    int64_t t0 = chan_now();
    chan_client_t *cl = dial_tls(&d, "127.0.0.1", cert("ca.crt"), NULL, NULL);
    expect_refusal(cl, t0, EPROTO, "not for 127.0.0.1");
    t0 = chan_now();
    char addr1[96];
    tls_addr(addr1, sizeof addr1, "127.0.0.1", &d);
    chan_connect_opts_t lo = { .addr = addr1, .tls_ca = cert("ca.crt"),
                               .tls_servername = "localhost" };
    cl = chan_connect_opts(&lo, chan_now() + WAIT_MS);
    expect_refusal(cl, t0, EPROTO, "not for localhost");
    /* the name it has, asked for explicitly, passes */
    char addr[96];
    tls_addr(addr, sizeof addr, "127.0.0.1", &d);
    chan_connect_opts_t o = { .addr = addr, .tls_ca = cert("ca.crt"),
                              .tls_servername = "wrong.example" };
    cl = chan_connect_opts(&o, chan_now() + WAIT_MS);
    ck_assert_msg(cl, "with its name: %s", chan_errmsg());
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

/* ---- mismatched ends ---- */

START_TEST(plain_client_on_tls_port)
{
    chand_proc_t d;
    start_tls(&d, "server", NULL);
    for (int i = 0; i < 20; i++) {
        int64_t t0 = chan_now();
        chan_client_t *cl = chan_connect(d.addr, NULL, chan_now() + WAIT_MS);
        expect_refusal(cl, t0, EPROTO, "speaks TLS");
    }
    /* one line for the twenty (a second apart at most: two) */
    int lines = log_lines(&d, "plain frames on a TLS port");
    ck_assert_msg(lines >= 1 && lines <= 2, "%d log lines", lines);
    /* chand is fine */
    chan_client_t *cl = dial_ok(&d);
    ck_assert_int_eq(chan_ping(cl, chan_now() + WAIT_MS), 0);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

START_TEST(tls_client_on_plain_port)
{
    chand_proc_t d;
    ck_assert_int_eq(chand_start(&d, NULL), 0);
    for (int i = 0; i < 20; i++) {
        int64_t t0 = chan_now();
        chan_client_t *cl = dial_tls(&d, "127.0.0.1", cert("ca.crt"), NULL, NULL);
        expect_refusal(cl, t0, EPROTO, "TLS");
    }
    int lines = log_lines(&d, "TLS handshake on a plain port");
    ck_assert_msg(lines >= 1 && lines <= 2, "%d log lines", lines);
    chan_client_t *cl = chand_dial(&d);
    ck_assert_int_eq(chan_ping(cl, chan_now() + WAIT_MS), 0);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

/* A client that never finishes its handshake holds nothing up, and is
 * closed at the Hello deadline. */
START_TEST(stalled_handshake)
{
    chand_proc_t d;
    const char *more[] = { "--hello-timeout", "400ms", NULL };
    start_tls(&d, "server", more);
    int silent = raw_connect(&d);
    int partial = raw_connect(&d);
    /* a TLS record header, and then nothing */
    ck_assert_int_eq(send(partial, "\x16\x03\x01\x02\x00", 5, 0), 5);
    chan_client_t *cl = dial_ok(&d);
    for (int i = 0; i < 10; i++) {
        int64_t t0 = chan_now();
        ck_assert_int_eq(chan_ping(cl, chan_now() + WAIT_MS), 0);
        ck_assert_int_lt(chan_now() - t0, 200);
    }
    int64_t a = wait_closed(silent, 3000), b = wait_closed(partial, 3000);
    ck_assert_msg(a >= 0 && b >= 0, "closed after %lld and %lld ms", (long long)a, (long long)b);
    close(silent);
    close(partial);
    ck_assert_int_ge(log_lines(&d, "no TLS handshake within 400 ms"), 1);
    ck_assert_int_eq(chan_ping(cl, chan_now() + WAIT_MS), 0);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

/* ---- SIGHUP: new files for new connections ---- */

/* Put src's bytes (or, with src NULL, text) in place of dst as a deploy
 * would: a new file, renamed over the old one. */
static void install(const char *src, const char *text, const char *dst)
{
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.new", dst);
    FILE *out = fopen(tmp, "wb");
    ck_assert_ptr_nonnull(out);
    if (src) {
        FILE *in = fopen(src, "rb");
        ck_assert_ptr_nonnull(in);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
        fclose(in);
    } else {
        fputs(text, out);
    }
    ck_assert_int_eq(fclose(out), 0);
    ck_assert_int_eq(rename(tmp, dst), 0);
}

/* SIGHUP to d, and wait (5 s at most) until its log has one more line
 * with `says` in it. */
static void hup(const chand_proc_t *d, const char *says)
{
    int before = log_lines(d, says);
    ck_assert_int_eq(kill(d->pid, SIGHUP), 0);
    for (int i = 0; i < 500 && log_lines(d, says) <= before; i++)
        chand_sleep_ms(10);
    ck_assert_msg(log_lines(d, says) > before, "no log line '%s' after SIGHUP", says);
}

/* A connection that presents client certificate `who` (client: from ca,
 * rogue: from other) and trusts server CA `ca`: NULL if refused. */
static chan_client_t *dial_as(const chand_proc_t *d, const char *ca, const char *who)
{
    char crt[32], key[32];
    snprintf(crt, sizeof crt, "%s.crt", who);
    snprintf(key, sizeof key, "%s.key", who);
    return dial_tls(d, "127.0.0.1", cert(ca), cert(crt), cert(key));
}

/* chand starts with a certificate from ca and checks client certificates
 * against ca; the files are replaced by ones from other, and a SIGHUP
 * makes new connections get them, while a connection opened before goes
 * on.  Files that do not load change nothing. */
START_TEST(reload_on_sighup)
{
    char crt[128], key[128], ca[128];   /* (cert()'s buffers are reused) */
    snprintf(crt, sizeof crt, "%s", cert("live.crt"));
    snprintf(key, sizeof key, "%s", cert("live.key"));
    snprintf(ca, sizeof ca, "%s", cert("live-ca.crt"));
    install(cert("server.crt"), NULL, crt);
    install(cert("server.key"), NULL, key);
    install(cert("ca.crt"), NULL, ca);
    chand_proc_t d;
    const char *args[] = { "--tls-cert", crt, "--tls-key", key, "--tls-ca", ca,
                           "--tls-client-auth", "optional", NULL };
    ck_assert_int_eq(chand_start(&d, args), 0);
    chan_client_t *before = dial_as(&d, "ca.crt", "client");
    ck_assert_msg(before, "before: %s", chan_errmsg());
    chan_t *ch = chand_open_ch(before, "tls.reload", 4);
    ck_assert_int_eq(chan_send(ch, "one", 3, chan_now() + WAIT_MS), 0);
    int64_t t0 = chan_now();
    expect_refusal(dial_as(&d, "ca.crt", "rogue"), t0, EPROTO, "refused our client certificate");

    /* the other CA's files, and SIGHUP */
    install(cert("server2.crt"), NULL, crt);
    install(cert("server2.key"), NULL, key);
    install(cert("other.crt"), NULL, ca);
    hup(&d, "SIGHUP: TLS certificate for new connections");
    /* a client trusting only the new CA connects (and its certificate,
     * from that CA, is accepted now) */
    chan_client_t *after = dial_as(&d, "other.crt", "rogue");
    ck_assert_msg(after, "after: %s", chan_errmsg());
    ck_assert_int_eq(chan_ping(after, chan_now() + WAIT_MS), 0);
    /* one trusting only the old CA fails; so does the old client
     * certificate */
    t0 = chan_now();
    expect_refusal(dial_tls(&d, "127.0.0.1", cert("ca.crt"), NULL, NULL), t0, EPROTO,
                   "certificate is not trusted");
    t0 = chan_now();
    expect_refusal(dial_as(&d, "other.crt", "client"), t0, EPROTO,
                   "refused our client certificate");
    /* the connection opened before keeps its session */
    char buf[8];
    ck_assert_int_eq(chan_recv(ch, buf, sizeof buf, chan_now() + WAIT_MS), 3);
    ck_assert(memcmp(buf, "one", 3) == 0);
    ck_assert_int_eq(chan_send(ch, "two", 3, chan_now() + WAIT_MS), 0);
    chan_t *ch2 = chand_open_ch(after, "tls.reload", 4);
    ck_assert_int_eq(chan_recv(ch2, buf, sizeof buf, chan_now() + WAIT_MS), 3);
    ck_assert(memcmp(buf, "two", 3) == 0);

    /* a certificate that is not the key's: logged, the context stays */
    install(cert("server.crt"), NULL, crt);
    hup(&d, "did not load");
    ck_assert_int_ge(log_lines(&d, "is not the key of"), 1);
    chan_client_t *still = dial_as(&d, "other.crt", "rogue");
    ck_assert_msg(still, "after a bad reload: %s", chan_errmsg());
    chan_disconnect(still);
    /* a file that is not PEM at all: the same */
    install(NULL, "not a certificate\n", crt);
    hup(&d, "did not load");
    still = dial_as(&d, "other.crt", "rogue");
    ck_assert_msg(still, "after a bad reload: %s", chan_errmsg());
    chan_disconnect(still);

    chan_server_stat_t ss;
    ck_assert_int_eq(chan_server_stat(before, &ss, chan_now() + WAIT_MS), 0);
    ck_assert_int_eq(ss.tls, 1);
    ck_assert_uint_eq(ss.tls_reloads, 1);
    ck_assert_uint_eq(ss.tls_reload_failures, 2);
    ck_assert_int_gt(ss.tls_not_after, (int64_t)time(NULL));
    chan_release(ch);
    chan_release(ch2);
    chan_disconnect(before);
    chan_disconnect(after);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

/* ---- counted: handshakes in Stat and /metrics ---- */

/* The value of sample `name` in a /metrics response, or -1. */
static long long metric(const char *body, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(body, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

START_TEST(handshake_counters)
{
    chand_proc_t d;
    const char *more[] = { "--metrics", "127.0.0.1:0", "--hello-timeout", "300ms", NULL };
    start_tls(&d, "server", more);
    const char *body = chand_http_get(&d, "/metrics");
    chand_assert_exposition(body);
    ck_assert_msg(strstr(body, "# HELP chand_tls_handshakes_total ") &&
                      strstr(body, "# TYPE chand_tls_handshakes_total counter\n") &&
                      strstr(body, "# TYPE chand_tls_handshake_failures_total counter\n") &&
                      strstr(body, "# TYPE chand_tls_certificate_expiry_timestamp_seconds gauge\n"),
                  "%s", body);
    ck_assert_int_eq(metric(body, "chand_tls_handshakes_total"), 0);
    ck_assert_int_eq(metric(body, "chand_tls_handshake_failures_total"), 0);
    ck_assert_int_gt(metric(body, "chand_tls_certificate_expiry_timestamp_seconds"),
                     (long long)time(NULL));

    /* a plain client on the TLS port: a failure */
    int64_t t0 = chan_now();
    expect_refusal(chan_connect(d.addr, NULL, chan_now() + WAIT_MS), t0, EPROTO, "speaks TLS");
    body = chand_http_get(&d, "/metrics");
    ck_assert_int_eq(metric(body, "chand_tls_handshake_failures_total"), 1);
    ck_assert_int_eq(metric(body, "chand_tls_handshakes_total"), 0);
    /* a client that does not trust chand breaks the handshake off */
    t0 = chan_now();
    expect_refusal(dial_tls(&d, "127.0.0.1", cert("other.crt"), NULL, NULL), t0, EPROTO,
                   "unable to get local issuer certificate");
    /* one that never starts its handshake: at the Hello deadline */
    int silent = raw_connect(&d);
    ck_assert_int_ge(wait_closed(silent, 3000), 0);
    close(silent);
    /* and one that succeeds */
    chan_client_t *cl = dial_ok(&d);
    body = chand_http_get(&d, "/metrics");
    ck_assert_int_eq(metric(body, "chand_tls_handshakes_total"), 1);
    ck_assert_int_eq(metric(body, "chand_tls_handshake_failures_total"), 3);
    ck_assert_int_eq(metric(body, "chand_tls_reloads_total"), 0);
    chan_server_stat_t ss;
    ck_assert_int_eq(chan_server_stat(cl, &ss, chan_now() + WAIT_MS), 0);
    ck_assert_int_eq(ss.tls, 1);
    ck_assert_uint_eq(ss.tls_handshakes, 1);
    ck_assert_uint_eq(ss.tls_handshake_failures, 3);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d), 0);

    /* a plain chand has no TLS families, and says tls: no */
    const char *plain[] = { "--metrics", "127.0.0.1:0", NULL };
    ck_assert_int_eq(chand_start(&d, plain), 0);
    body = chand_http_get(&d, "/metrics");
    ck_assert_msg(!strstr(body, "chand_tls_"), "%s", body);
    cl = chand_dial(&d);
    ck_assert_int_eq(chan_server_stat(cl, &ss, chan_now() + WAIT_MS), 0);
    ck_assert_int_eq(ss.tls, 0);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

/* ---- client certificates ---- */

START_TEST(client_cert_required)
{
    chand_proc_t d;
    const char *more[] = { "--tls-ca", cert("ca.crt"), NULL };
    start_tls(&d, "server", more);
    int64_t t0 = chan_now();
    chan_client_t *cl = dial_tls(&d, "127.0.0.1", cert("ca.crt"), NULL, NULL);
    expect_refusal(cl, t0, EPROTO, "requires a client certificate");
    t0 = chan_now();
    cl = dial_tls(&d, "127.0.0.1", cert("ca.crt"), cert("rogue.crt"), cert("rogue.key"));
    expect_refusal(cl, t0, EPROTO, "refused our client certificate");
    /* (one line a second: the first refusal's) */
    ck_assert_int_ge(log_lines(&d, "TLS handshake failed"), 1);
    cl = dial_tls(&d, "127.0.0.1", cert("ca.crt"), cert("client.crt"), cert("client.key"));
    ck_assert_msg(cl, "with a certificate: %s", chan_errmsg());
    ck_assert_int_eq(chan_ping(cl, chan_now() + WAIT_MS), 0);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

START_TEST(client_cert_optional)
{
    chand_proc_t d;
    const char *more[] = { "--tls-ca", cert("ca.crt"), "--tls-client-auth", "optional", NULL };
    start_tls(&d, "server", more);
    chan_client_t *cl = dial_ok(&d);   /* none: fine */
    ck_assert_int_eq(chan_ping(cl, chan_now() + WAIT_MS), 0);
    chan_disconnect(cl);
    int64_t t0 = chan_now();
    cl = dial_tls(&d, "127.0.0.1", cert("ca.crt"), cert("rogue.crt"), cert("rogue.key"));
    expect_refusal(cl, t0, EPROTO, "refused our client certificate");   /* one presented must verify */
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

/* chand's own checks of its TLS flags */
START_TEST(daemon_flags)
{
    char out[2048];
    const char *no_key[] = { "--tls-cert", cert("server.crt"), NULL };
    int st = chand_run(no_key, out, sizeof out, 5000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "go together"));
    const char *no_ca[] = { "--tls-cert", cert("server.crt"), "--tls-key", cert("server.key"),
                            "--tls-client-auth", "require", NULL };
    st = chand_run(no_ca, out, sizeof out, 5000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s", out);
    const char *bad_mode[] = { "--tls-cert", cert("server.crt"), "--tls-key", cert("server.key"),
                               "--tls-ca", cert("ca.crt"), "--tls-client-auth", "maybe", NULL };
    st = chand_run(bad_mode, out, sizeof out, 5000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s", out);
    /* a cluster node dials its primary with TLS: it needs the CA to check it */
    const char *cluster[] = { "--tls-cert", cert("server.crt"), "--tls-key", cert("server.key"),
                              "--cluster", "c1", "--etcd", "127.0.0.1:1", "--data-dir", certs,
                              "--advertise", "127.0.0.1:7070", NULL };
    st = chand_run(cluster, out, sizeof out, 5000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s", out);
    ck_assert_msg(strstr(out, "--tls-ca"), "%s", out);
    const char *wrong_key[] = { "--listen", "127.0.0.1:0", "--tls-cert", cert("server.crt"),
                                "--tls-key", cert("client.key"), NULL };
    st = chand_run(wrong_key, out, sizeof out, 5000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s", out);
    ck_assert_msg(strstr(out, "is not the key of"), "%s", out);
    const char *missing[] = { "--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent.crt",
                              "--tls-key", cert("server.key"), NULL };
    st = chand_run(missing, out, sizeof out, 5000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s", out);
}
END_TEST

/* ---- the CLI ---- */

/* Run a shell command (bounded by timeout(1)); its exit status, and its
 * output in out. */
static int sh(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t size, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[2200];
    snprintf(full, sizeof full, "timeout 20 sh -c '%s' 2>&1", cmd);
    FILE *p = popen(full, "r");
    ck_assert_ptr_nonnull(p);
    size_t got = fread(out, 1, size - 1, p);
    out[got] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(cli)
{
    const char *chan = getenv("CHAN");
    ck_assert_msg(chan, "$CHAN is not set (run through make check)");
    chand_proc_t d;
    start_tls(&d, "server", NULL);
    char out[4096];
    int rc = sh(out, sizeof out, "%s --addr tls://127.0.0.1:%d --tls-ca %s send q --cap 4 hello world",
                chan, d.port, cert("ca.crt"));
    ck_assert_msg(rc == 0, "send: %d %s", rc, out);
    rc = sh(out, sizeof out, "%s --addr 127.0.0.1:%d --tls-ca %s recv q -n 2", chan, d.port,
            cert("ca.crt"));
    ck_assert_msg(rc == 0, "recv: %d %s", rc, out);
    ck_assert_str_eq(out, "hello\nworld\n");
    rc = sh(out, sizeof out,
            "CHAN_TLS_CA=%s CHAN_TLS_SERVERNAME=localhost %s --addr tls://127.0.0.1:%d ping",
            cert("ca.crt"), chan, d.port);
    ck_assert_msg(rc == 0 && strstr(out, "PONG"), "env: %d %s", rc, out);
    rc = sh(out, sizeof out, "%s --addr tls://127.0.0.1:%d --tls-ca %s ping", chan, d.port,
            cert("other.crt"));
    ck_assert_msg(rc == 1 && strstr(out, "not trusted"), "wrong CA: %d %s", rc, out);
    rc = sh(out, sizeof out, "%s --addr 127.0.0.1:%d ping", chan, d.port);
    ck_assert_msg(rc == 1 && strstr(out, "speaks TLS"), "plain: %d %s", rc, out);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

/* ---- redial ---- */

START_TEST(redial)
{
    chand_proc_t d;
    start_tls(&d, "server", NULL);
    chan_client_t *cl = dial_ok(&d);
    chan_t *ch = chand_open_ch(cl, "tls.redial", 4);
    ck_assert_int_eq(chan_send(ch, "one", 3, chan_now() + WAIT_MS), 0);
    const char *args[] = { "--tls-cert", cert("server.crt"), "--tls-key", cert("server.key"), NULL };
    ck_assert_int_eq(chand_restart(&d, args), 0);
    /* the first call may find the old connection gone, or the backoff */
    int64_t end = chan_now() + WAIT_MS;
    int rc;
    while ((rc = chan_send(ch, "two", 3, chan_now() + WAIT_MS)) < 0 && errno == ECONNRESET &&
           chan_now() < end)
        chan_sleep(chan_now() + 20);
    ck_assert_msg(rc == 0, "send after the restart: %s (%s)", strerror(errno), chan_errmsg());
    char buf[8];
    ck_assert_int_eq(chan_recv(ch, buf, sizeof buf, chan_now() + WAIT_MS), 3);
    ck_assert(memcmp(buf, "two", 3) == 0);   /* the daemon kept nothing: memory only */
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

/* ---- large values under back-pressure ---- */

enum { BIG = 256 * 1024 };

static void big_fill(uint8_t *v, uint32_t k)
{
    memcpy(v, &k, sizeof k);
    for (size_t i = sizeof k; i < BIG; i++)
        v[i] = (uint8_t)(k * 131 + i * 7);
}

struct big_sender {
    chan_t *ch;
    uint32_t first, n;
};

/* Sends its values three to a request (768 KiB frames). */
static void *big_send(void *p)
{
    struct big_sender *b = p;
    uint8_t *v = malloc(3 * BIG);
    void *rv = NULL;
    for (uint32_t k = b->first; k < b->first + b->n && !rv; k += 3) {
        chan_val_t vals[3];
        size_t nv = 0;
        for (uint32_t j = k; j < k + 3 && j < b->first + b->n; j++, nv++) {
            big_fill(v + nv * BIG, j);
            vals[nv] = (chan_val_t){ .data = v + nv * BIG, .len = BIG };
        }
        for (size_t done = 0; done < nv && !rv;) {
            ssize_t m = chan_send_many(b->ch, vals + done, nv - done, chan_now() + 30000);
            if (m < 0) {
                fprintf(stderr, "big_send: %s\n", strerror(errno));
                rv = (void *)1;
            }
            else
                done += (size_t)m;
        }
    }
    free(v);
    return rv;
}

/* Senders write while chand is stopped (SIGSTOP): their socket fills (6
 * MiB in flight against the kernel's 4 MiB), and libchan's TLS writes that
 * could not finish wait in its output buffer and are offered again from
 * there; every byte must survive. */
enum { BIG_SENDERS = 8 };

START_TEST(large_values)
{
    long per = test_size("large values per sender thread", 12, 6);
    chand_proc_t d;
    start_tls(&d, "server", NULL);
    chan_client_t *cl = dial_ok(&d), *rcl = dial_ok(&d);
    chan_t *ch = chand_open_ch(cl, "tls.big", 64), *rch = chand_open_ch(rcl, "tls.big", 64);
    struct big_sender b[BIG_SENDERS];
    pthread_t t[BIG_SENDERS];
    ck_assert_int_eq(kill(d.pid, SIGSTOP), 0);
    for (int i = 0; i < BIG_SENDERS; i++) {
        b[i] = (struct big_sender){ ch, (uint32_t)(i * per), (uint32_t)per };
        ck_assert_int_eq(pthread_create(&t[i], NULL, big_send, &b[i]), 0);
    }
    chand_sleep_ms(300);
    ck_assert_int_eq(kill(d.pid, SIGCONT), 0);
    uint8_t *got = malloc(BIG), *want = malloc(BIG);
    unsigned char *seen = calloc((size_t)(BIG_SENDERS * per), 1);
    for (long i = 0; i < BIG_SENDERS * per; i++) {
        if (i % 16 == 0)
            chand_sleep_ms(20);   /* let the senders run ahead */
        ssize_t n = chan_recv(rch, got, BIG, chan_now() + 30000);
        ck_assert_msg(n == BIG, "recv %ld: %zd (%s)", i, n, strerror(errno));
        uint32_t k;
        memcpy(&k, got, sizeof k);
        ck_assert_msg(k < BIG_SENDERS * per && !seen[k], "value %u", k);
        seen[k] = 1;
        big_fill(want, k);
        ck_assert_msg(memcmp(got, want, BIG) == 0, "value %u corrupted", k);
    }
    for (int i = 0; i < BIG_SENDERS; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        ck_assert_ptr_null(rv);
    }
    free(got);
    free(want);
    free(seen);
    chan_release(ch);
    chan_release(rch);
    chan_disconnect(cl);
    chan_disconnect(rcl);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

/* A TLS client of the test's own asks for many large values, then reads
 * nothing for a while: chand's TLS writes fill the socket and wait, to be
 * offered again from its output buffer when the socket drains.  Every
 * reply must arrive whole, and nobody else waits meanwhile. */
static void raw_write(SSL *ssl, const Chan__Request *rq)
{
    uint8_t buf[256];
    ck_assert_uint_le(chan_frame_size_request(rq), sizeof buf);
    size_t n = chan_frame_encode_request(rq, buf);
    ck_assert_int_eq(SSL_write(ssl, buf, (int)n), (int)n);
}

START_TEST(server_backpressure)
{
    enum { N = 16 };
    chand_proc_t d;
    start_tls(&d, "server", NULL);
    chan_client_t *cl = dial_ok(&d);
    chan_t *ch = chand_open_ch(cl, "tls.slow", N);
    uint8_t *v = malloc(BIG), *want = malloc(BIG);
    for (uint32_t k = 0; k < N; k++) {
        big_fill(v, k);
        ck_assert_int_eq(chan_send(ch, v, BIG, chan_now() + WAIT_MS), 0);
    }
    int fd = raw_connect(&d);
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, cert("ca.crt"), NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    ck_assert_int_eq(SSL_connect(ssl), 1);
    Chan__Hello h = CHAN__HELLO__INIT;
    h.has_version = true;
    h.version = 1;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = 1;
    rq.op_case = CHAN__REQUEST__OP_HELLO;
    rq.hello = &h;
    raw_write(ssl, &rq);
    Chan__Recv r = CHAN__RECV__INIT;
    r.has_name = true;
    r.name.data = (uint8_t *)"tls.slow";
    r.name.len = 8;
    for (uint64_t i = 0; i < N; i++) {
        Chan__Request q = CHAN__REQUEST__INIT;
        q.has_id = true;
        q.id = 2 + i;
        q.op_case = CHAN__REQUEST__OP_RECV;
        q.recv = &r;
        raw_write(ssl, &q);
    }
    /* chand has 4 MiB to write and this end reads nothing: meanwhile it
     * answers others at once */
    for (int i = 0; i < 5; i++) {
        int64_t t0 = chan_now();
        ck_assert_int_eq(chan_ping(cl, chan_now() + WAIT_MS), 0);
        ck_assert_int_lt(chan_now() - t0, 200);
        chand_sleep_ms(60);
    }
    size_t cap = 2 * BIG, len = 0;
    uint8_t *in = malloc(cap);
    int replies = 0, values = 0;
    chan_arena_t arena;
    chan_arena_init(&arena);
    while (replies < N + 1) {
        int n = SSL_read(ssl, in + len, (int)(cap - len));
        ck_assert_msg(n > 0, "read: %d after %d replies", SSL_get_error(ssl, n), replies);
        len += (size_t)n;
        for (;;) {
            uint64_t body;
            size_t hdr;
            int hr = chan_frame_header(in, len, 2 * BIG, &body, &hdr);
            if (hr == CHAN_FRAME_MORE || (hr == CHAN_FRAME_OK && len < hdr + body))
                break;
            ck_assert_int_eq(hr, CHAN_FRAME_OK);
            Chan__Reply *rp = chan_frame_decode_reply(&arena, in + hdr, body);
            ck_assert_ptr_nonnull(rp);
            ck_assert(!rp->has_status || rp->status == CHAN__STATUS__OK);
            if (rp->result_case == CHAN__REPLY__RESULT_RECV) {
                ck_assert_uint_eq(rp->recv->n_deliveries, 1);
                ProtobufCBinaryData val = rp->recv->deliveries[0]->value;
                ck_assert_uint_eq(val.len, BIG);
                uint32_t k;
                memcpy(&k, val.data, sizeof k);
                ck_assert_uint_eq(k, (uint32_t)values);   /* in order */
                big_fill(want, k);
                ck_assert_msg(memcmp(val.data, want, BIG) == 0, "value %u corrupted", k);
                values++;
            }
            replies++;
            chan_arena_reset(&arena);
            memmove(in, in + hdr + body, len - hdr - body);
            len -= hdr + body;
        }
    }
    ck_assert_int_eq(values, N);
    chan_arena_free(&arena);
    free(in);
    free(v);
    free(want);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

/* A raw TLS handshake with the test's own settings: 1 if it succeeds. */
static int raw_handshake(const chand_proc_t *d, int max_version, const unsigned char *alpn,
                         unsigned alpn_len, char *proto, size_t proto_size)
{
    int fd = raw_connect(d);
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_security_level(ctx, 0);   /* let it offer what chand must refuse */
    if (max_version) {
        SSL_CTX_set_min_proto_version(ctx, 0);
        SSL_CTX_set_max_proto_version(ctx, max_version);
    }
    SSL_CTX_load_verify_locations(ctx, cert("ca.crt"), NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (alpn)
        ck_assert_int_eq(SSL_CTX_set_alpn_protos(ctx, alpn, alpn_len), 0);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    int ok = SSL_connect(ssl) == 1;
    if (ok && proto) {
        const unsigned char *p;
        unsigned n;
        SSL_get0_alpn_selected(ssl, &p, &n);
        snprintf(proto, proto_size, "%.*s", (int)n, (const char *)p);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return ok;
}

/* What chand refuses in the handshake itself: TLS before 1.2, and a
 * client that wants another application protocol. */
START_TEST(protocol_limits)
{
    chand_proc_t d;
    start_tls(&d, "server", NULL);
    char proto[16] = "";
    ck_assert(raw_handshake(&d, 0, (const unsigned char *)"\x06" "chan/1", 7, proto, sizeof proto));
    ck_assert_str_eq(proto, "chan/1");
    ck_assert(raw_handshake(&d, 0, (const unsigned char *)"\x02" "h2" "\x06" "chan/1", 10, proto,
                            sizeof proto));
    ck_assert_str_eq(proto, "chan/1");
    ck_assert(raw_handshake(&d, TLS1_2_VERSION, NULL, 0, NULL, 0));    /* 1.2: fine */
    ck_assert(!raw_handshake(&d, TLS1_1_VERSION, NULL, 0, NULL, 0));   /* 1.1: refused */
    ck_assert(!raw_handshake(&d, 0, (const unsigned char *)"\x02" "h2", 3, NULL, 0));
    chan_client_t *cl = dial_ok(&d);   /* and chand is fine */
    ck_assert_int_eq(chan_ping(cl, chan_now() + WAIT_MS), 0);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

/* ---- threads ---- */

enum { SENDERS = 8, RECEIVERS = 8 };

struct mt {
    chan_t *ch;
    long per_sender;
    int id;
    atomic_uchar *seen;      /* [SENDERS * per_sender] */
    atomic_long *received;
    atomic_long *dups;
};

static void *mt_sender(void *p)
{
    struct mt *m = p;
    for (long i = 0; i < m->per_sender; i++) {
        uint64_t v = (uint64_t)m->id << 32 | (uint64_t)i;
        if (chan_send(m->ch, &v, sizeof v, chan_now() + 30000) < 0) {
            fprintf(stderr, "sender %d: %s\n", m->id, strerror(errno));
            return (void *)1;
        }
    }
    return NULL;
}

static void *mt_receiver(void *p)
{
    struct mt *m = p;
    uint64_t v;
    ssize_t n;
    while ((n = chan_recv(m->ch, &v, sizeof v, chan_now() + 30000)) == (ssize_t)sizeof v) {
        uint64_t s = v >> 32, i = v & 0xffffffffu;
        if (s >= SENDERS || (long)i >= m->per_sender) {
            atomic_fetch_add(m->dups, 1);
            continue;
        }
        if (atomic_fetch_add(&m->seen[s * (uint64_t)m->per_sender + i], 1) != 0)
            atomic_fetch_add(m->dups, 1);
        atomic_fetch_add(m->received, 1);
    }
    return n < 0 && errno == EPIPE ? NULL : (void *)1;   /* closed and drained */
}

/* Eight sender and eight receiver threads share one TLS client (its
 * writers and its reader role meet on one SSL object): every value arrives
 * once. */
START_TEST(threads)
{
    long per = test_size("values per sender thread", 20000, 500);
    chand_proc_t d;
    start_tls(&d, "server", NULL);
    chan_client_t *cl = dial_ok(&d);
    chan_t *ch = chand_open_ch(cl, "tls.mt", 16);
    atomic_uchar *seen = calloc((size_t)(SENDERS * per), sizeof *seen);
    atomic_long received = 0, dups = 0;
    struct mt s[SENDERS], r[RECEIVERS];
    pthread_t st[SENDERS], rt[RECEIVERS];
    for (int i = 0; i < RECEIVERS; i++) {
        r[i] = (struct mt){ ch, per, i, seen, &received, &dups };
        ck_assert_int_eq(pthread_create(&rt[i], NULL, mt_receiver, &r[i]), 0);
    }
    for (int i = 0; i < SENDERS; i++) {
        s[i] = (struct mt){ ch, per, i, seen, &received, &dups };
        ck_assert_int_eq(pthread_create(&st[i], NULL, mt_sender, &s[i]), 0);
    }
    int bad = 0;
    for (int i = 0; i < SENDERS; i++) {
        void *rv;
        pthread_join(st[i], &rv);
        bad += rv != NULL;
    }
    ck_assert_int_eq(chan_close(ch), 0);
    for (int i = 0; i < RECEIVERS; i++) {
        void *rv;
        pthread_join(rt[i], &rv);
        bad += rv != NULL;
    }
    ck_assert_int_eq(bad, 0);
    ck_assert_int_eq(atomic_load(&dups), 0);
    ck_assert_int_eq(atomic_load(&received), SENDERS * per);
    for (long i = 0; i < SENDERS * per; i++)
        ck_assert_msg(atomic_load(&seen[i]) == 1, "value %ld seen %d times", i, (int)seen[i]);
    free(seen);
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

/* The same over goroutines: a worker may hold the reader role and read
 * the TLS socket from its scheduler loop. */
struct go_arg {
    chan_t *ch;
    long n;
    chan_wg_t *wg;
    atomic_long *sum;
};

static void go_send(void *p)
{
    struct go_arg *a = p;
    for (long i = 1; i <= a->n; i++)
        ck_assert_int_eq(chan_send(a->ch, &i, sizeof i, chan_now() + 30000), 0);
    chan_wg_done(a->wg);
}

static void go_recv(void *p)
{
    struct go_arg *a = p;
    long v;
    while (chan_recv(a->ch, &v, sizeof v, chan_now() + 30000) == (ssize_t)sizeof v)
        atomic_fetch_add(a->sum, v);
    chan_wg_done(a->wg);
}

START_TEST(goroutines)
{
    long n = test_size("values per goroutine", 2000, 300);
    chand_proc_t d;
    start_tls(&d, "server", NULL);
    chan_client_t *cl = dial_ok(&d);
    chan_t *ch = chand_open_ch(cl, "tls.go", 0);
    chan_wg_t *senders = chan_wg_make(), *receivers = chan_wg_make();
    atomic_long sum = 0;
    struct go_arg s = { ch, n, senders, &sum }, r = { ch, n, receivers, &sum };
    chan_wg_add(senders, 4);
    chan_wg_add(receivers, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(chan_go(go_send, &s), 0);
        ck_assert_int_eq(chan_go(go_recv, &r), 0);
    }
    ck_assert_int_eq(chan_wg_wait(senders, chan_now() + test_wait_ms(60000)), 0);
    ck_assert_int_eq(chan_close(ch), 0);
    ck_assert_int_eq(chan_wg_wait(receivers, chan_now() + test_wait_ms(60000)), 0);
    ck_assert_int_eq(atomic_load(&sum), 4 * n * (n + 1) / 2);
    chan_wg_free(senders);
    chan_wg_free(receivers);
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, send_recv_select);
    tcase_add_test(tc, select_two_daemons);
    tcase_add_test(tc, environment);
    tcase_add_test(tc, wrong_ca);
    tcase_add_test(tc, expired);
    tcase_add_test(tc, wrong_name);
    tcase_add_test(tc, plain_client_on_tls_port);
    tcase_add_test(tc, tls_client_on_plain_port);
    tcase_add_test(tc, stalled_handshake);
    tcase_add_test(tc, client_cert_required);
    tcase_add_test(tc, client_cert_optional);
    tcase_add_test(tc, daemon_flags);
    tcase_add_test(tc, protocol_limits);
    tcase_add_test(tc, cli);
    tcase_add_test(tc, redial);
    tcase_add_test(tc, reload_on_sighup);
    tcase_add_test(tc, handshake_counters);
    suite_add_tcase(s, tc);
    TCase *mt = tcase_create("threads");
    tcase_set_timeout(mt, 120);
    tcase_add_test(mt, threads);
    tcase_add_test(mt, large_values);
    tcase_add_test(mt, server_backpressure);
    tcase_add_test(mt, goroutines);
    suite_add_tcase(s, mt);
    return s;
}

int main(void)
{
    if (make_certs() < 0)
        return 1;
    SRunner *sr = srunner_create(tls_suite());
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", certs);
    if (system(cmd) != 0)
        fprintf(stderr, "check_tls: could not remove %s\n", certs);
    return nf ? 1 : 0;
}

/*
 * check_durable.c - durability of chand's --data-dir, tested on real
 * processes: chand killed with SIGKILL at random moments while clients
 * send and receive, restarted on the same data dir and port; each fsync
 * policy; values delivered and never acknowledged; log rewrites under
 * load; a full disk (RLIMIT_FSIZE); SIGHUP and SIGTERM; a torn or damaged
 * log; two daemons on one data dir.
 *
 * What a client can rely on, and what these tests hold chand to:
 *  - a send to a buffered channel answered OK is never lost;
 *  - a value delivered and not acknowledged when chand died comes back at
 *    the head of its channel, marked redelivered; so a value received twice
 *    is marked on every receipt after the first - unless its sender sent
 *    it twice, having had no answer the first time (then a second copy may
 *    exist, unmarked);
 *  - nothing appears that was never sent, and one sender's values keep
 *    their order.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chan/chan.h"
#include "chan_frame.h"
#include "chand_fixture.h"
#include "raw_proto.h"
#include "test_size.h"

/* An assertion that prints the daemon's log when it fails: what chand
 * said about its data dir is most of the diagnosis. */
#define ck_assert_d(d, cond, ...)                                                              \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            chand_dump_log(d);                                                                 \
            ck_abort_msg(__VA_ARGS__);                                                         \
        }                                                                                      \
    } while (0)

static bool killed_by(int st, int sig)
{
    return st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == sig;
}

static bool exited_with(int st, int code)
{
    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == code;
}

/* How many lines of d's log contain needle. */
static int log_count(const chand_proc_t *d, const char *needle)
{
    char path[128], line[1024];
    snprintf(path, sizeof path, "%s/chand.log", d->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* The size of d's log, and whether what was logged after offset `from`
 * contains needle. */
static long log_size(const chand_proc_t *d)
{
    char path[128];
    snprintf(path, sizeof path, "%s/chand.log", d->dir);
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : 0;
}

static bool logged_since(const chand_proc_t *d, long from, const char *needle)
{
    char path[128], buf[8192];
    snprintf(path, sizeof path, "%s/chand.log", d->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool found = false;
    if (fseek(f, from, SEEK_SET) == 0) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        found = strstr(buf, needle) != NULL;
    }
    fclose(f);
    return found;
}

/* chand --check on d's data dir (the daemon stopped); its output in out. */
static int run_check(const chand_proc_t *d, char *out, size_t size)
{
    const char *const args[] = { "--check", "--data-dir", d->data, NULL };
    return chand_run(args, out, size, test_wait_ms(30000));
}

/* The channel's stat, failing the test if chand cannot give it. */
static chan_stat_t stat_of(const chand_proc_t *d, chan_client_t *cl, const char *name)
{
    chan_stat_t st;
    ck_assert_d(d, chan_stat(cl, name, &st, chan_now() + 5000) == 0, "stat %s: %s", name,
                strerror(errno));
    return st;
}

/* Wait until nothing of channel name is delivered and unacknowledged (an
 * acknowledgement travels after the receive returned): a kill after this
 * cannot bring anything back. */
static void wait_acked(const chand_proc_t *d, chan_client_t *cl, const char *name)
{
    int64_t until = chan_now() + test_wait_ms(5000);
    chan_stat_t st = stat_of(d, cl, name);
    while (st.inflight && chan_now() < until) {
        chand_sleep_ms(5);
        st = stat_of(d, cl, name);
    }
    ck_assert_d(d, st.inflight == 0, "%s: %" PRIu64 " values still unacknowledged", name,
                st.inflight);
}

/* Numbered values: "<seq> <filler>" of len bytes (at least 12). */
static size_t numbered(char *buf, size_t len, uint32_t seq)
{
    int n = snprintf(buf, len, "%010u ", seq);
    for (size_t i = (size_t)n; i < len; i++)
        buf[i] = (char)('a' + (seq + i) % 26);
    return len;
}

static bool numbered_ok(const void *p, size_t len, size_t want_len, uint32_t *seq)
{
    char buf[4096];
    if (len != want_len || len >= sizeof buf)
        return false;
    const char *s = p;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (end != s + 10 || *end != ' ')
        return false;
    numbered(buf, len, (uint32_t)v);
    if (memcmp(buf, p, len) != 0)
        return false;
    *seq = (uint32_t)v;
    return true;
}

/* Receive count numbered values from ch, which must come in the order
 * first..first+count-1; the first `marked` of them must be marked
 * redelivered and the others not. */
static void expect_numbered(const chand_proc_t *d, chan_t *ch, uint32_t first, uint32_t count,
                            uint32_t marked, size_t len)
{
    uint32_t next = first;
    while (next < first + count) {
        chan_val_t v[64];
        ssize_t n = chan_recv_many(ch, v, 64, chan_now() + test_wait_ms(5000));
        ck_assert_d(d, n > 0, "%s: value %u of %u..%u did not come: %s", chan_name(ch), next,
                    first, first + count - 1, strerror(errno));
        for (ssize_t i = 0; i < n; i++) {
            uint32_t seq = 0;
            bool ok = numbered_ok(v[i].data, v[i].len, len, &seq);
            uint32_t rd = v[i].redelivered;
            free(v[i].data);
            ck_assert_d(d, ok, "%s: a value that was never sent (%zu bytes)", chan_name(ch),
                        v[i].len);
            ck_assert_d(d, seq == next, "%s: value %u came where %u was due", chan_name(ch),
                        seq, next);
            bool want = next - first < marked;
            ck_assert_d(d, (rd > 0) == want, "%s: value %u %s marked redelivered (%u)",
                        chan_name(ch), seq, want ? "is not" : "is", rd);
            next++;
        }
    }
    char buf[8];
    ck_assert_d(d, chan_recv(ch, buf, sizeof buf, 0) == -1 && errno == ETIMEDOUT,
                "%s: more values than the %u expected", chan_name(ch), count);
}

/* Send count numbered values first.. to ch: single sends and batches. */
static void send_numbered(const chand_proc_t *d, chan_t *ch, uint32_t first, uint32_t count,
                          size_t len)
{
    static char bufs[64][4096];
    uint32_t i = 0;
    while (i < count) {
        uint32_t k = i % 3 == 0 ? 1 : count - i < 64 ? count - i : 64;
        chan_val_t v[64];
        for (uint32_t j = 0; j < k; j++)
            v[j] = (chan_val_t){ bufs[j], numbered(bufs[j], len, first + i + j), 0 };
        ssize_t n = chan_send_many(ch, v, k, chan_now() + test_wait_ms(10000));
        ck_assert_d(d, n == (ssize_t)k, "%s: send of %u values: %zd (%s)", chan_name(ch), k, n,
                    strerror(errno));
        i += k;
    }
}

/* ---- raw protocol: what libchan does not show (a reply's message, a
 * delivery never acknowledged) ---- */

/* Take up to max values of name and never acknowledge them; their
 * sequence numbers in seqs; the count. */
static size_t raw_take(int fd, uint64_t id, const char *name, uint32_t max, size_t len,
                       uint32_t *seqs)
{
    Chan__Recv rv = CHAN__RECV__INIT;
    rv.has_name = true;
    rv.name.data = (uint8_t *)name;
    rv.name.len = strlen(name);
    rv.has_max = true;
    rv.max = max;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = id;
    rq.op_case = CHAN__REQUEST__OP_RECV;
    rq.recv = &rv;
    raw_request(fd, &rq);
    static uint8_t buf[1 << 20];
    chan_arena_t ar;
    chan_arena_init(&ar);
    Chan__Reply *r = raw_reply_decode(fd, buf, sizeof buf, &ar);
    ck_assert_uint_eq(r->id, id);
    ck_assert(!r->has_status || r->status == CHAN__STATUS__OK);
    ck_assert_int_eq(r->result_case, CHAN__REPLY__RESULT_RECV);
    size_t n = r->recv->n_deliveries;
    for (size_t i = 0; i < n; i++) {
        Chan__Delivery *dv = r->recv->deliveries[i];
        ck_assert(numbered_ok(dv->value.data, dv->value.len, len, &seqs[i]));
    }
    chan_arena_free(&ar);
    return n;
}

/* ---- SIGKILL at random moments under producers and consumers ---- */

enum { CR_CHANS = 4, CR_PRODUCERS = 4, CR_CAP = 64, CR_MAXSEQ = 1 << 20, CR_BATCH = 16 };

#define CR_MAGIC 0x43524153u   /* "CRAS" */

/* One value: who sent it, its number, where it goes, and a check. */
typedef struct cr_value {
    uint32_t magic, prod, seq, chan;
    uint64_t check;
    uint64_t pad;
} cr_value_t;

static uint64_t cr_check(uint32_t prod, uint32_t seq)
{
    uint64_t x = ((uint64_t)prod << 32 | seq) * 0x9E3779B97F4A7C15ull;
    return x ^ (x >> 29);
}

typedef struct cr_receipt {
    uint32_t prod, seq, redelivered;
} cr_receipt_t;

typedef struct crash {
    char addr[64];            /* the threads' own copy: restarts keep it */
    atomic_bool stop;         /* producers: no new values */
    atomic_bool closing;      /* consumers: the channels are being closed */
    atomic_long oks, unanswered, redials, received, redelivered;
    pthread_mutex_t mu;
    int errors;
    char error[512];          /* the first */
    struct {
        atomic_uint n;        /* values begun: 0..n-1 */
        uint8_t *attempts;    /* [CR_MAXSEQ] sends made of each */
        uint8_t *ok;          /* [CR_MAXSEQ] one of them answered OK */
    } prod[CR_PRODUCERS];
    struct {
        cr_receipt_t *v;      /* every receipt, in order */
        size_t n, cap;
    } recv[CR_CHANS];
} crash_t;

static void cr_error(crash_t *cr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cr_error(crash_t *cr, const char *fmt, ...)
{
    pthread_mutex_lock(&cr->mu);
    if (!cr->errors++) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cr->error, sizeof cr->error, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&cr->mu);
}

/* No error yet?  Else the first, in msg. */
static bool cr_fine(crash_t *cr, char *msg, size_t size)
{
    pthread_mutex_lock(&cr->mu);
    bool fine = cr->errors == 0;
    snprintf(msg, size, "%s", cr->error);
    pthread_mutex_unlock(&cr->mu);
    return fine;
}

static void cr_name(char *out, size_t size, int i)
{
    snprintf(out, size, "crash.%d", i);
}

/* The errors of a call that chand did not answer: its connection went
 * (the daemon was killed, or was not up yet when libchan redialled). */
static bool conn_lost(int e)
{
    return e == ECONNRESET || e == ECONNREFUSED || e == ECONNABORTED || e == ENOTCONN ||
           e == ESHUTDOWN;
}

/* A client with a handle on each of some channels, dialled afresh after
 * every loss (libchan's own redial is not what is tested here). */
typedef struct cr_conn {
    chan_client_t *cl;
    chan_t *ch[CR_CHANS];
} cr_conn_t;

static void conn_drop(cr_conn_t *c)
{
    for (int i = 0; i < CR_CHANS; i++) {
        chan_release(c->ch[i]);
        c->ch[i] = NULL;
    }
    chan_disconnect(c->cl);
    c->cl = NULL;
}

/* Dial and open the channels of mask; false (an error noted) if chand
 * did not come back in time, or came back without a channel. */
static bool conn_up(crash_t *cr, cr_conn_t *c, unsigned mask)
{
    int64_t give_up = chan_now() + test_wait_ms(30000);
    while (chan_now() < give_up) {
        c->cl = chan_connect(cr->addr, NULL, chan_now() + 2000);
        if (!c->cl) {
            chand_sleep_ms(5);
            continue;
        }
        bool ok = true;
        for (int i = 0; ok && i < CR_CHANS; i++) {
            if (!(mask & 1u << i))
                continue;
            char name[32];
            cr_name(name, sizeof name, i);
            /* NOCREATE and the capacity: a channel that came back missing
             * or changed is an error, not something to make again */
            c->ch[i] = chan_open(c->cl, name, CR_CAP, CHAN_NOCREATE, chan_now() + 2000);
            if (!c->ch[i]) {
                if (!conn_lost(errno) && errno != ETIMEDOUT) {
                    cr_error(cr, "open %s after a restart: %s", name, strerror(errno));
                    conn_drop(c);
                    return false;
                }
                ok = false;
            }
        }
        if (ok)
            return true;
        conn_drop(c);
        chand_sleep_ms(5);
    }
    cr_error(cr, "chand did not come back within 30 s");
    return false;
}

struct cr_arg {
    crash_t *cr;
    int id;
};

static void *cr_producer(void *arg)
{
    struct cr_arg *a = arg;
    crash_t *cr = a->cr;
    int p = a->id;
    cr_conn_t c = { 0 };
    if (!conn_up(cr, &c, (1u << CR_CHANS) - 1))
        return NULL;
    for (uint32_t s = 0; s < CR_MAXSEQ && !atomic_load(&cr->stop); s++) {
        cr_value_t v = { CR_MAGIC, (uint32_t)p, s, s % CR_CHANS, cr_check((uint32_t)p, s), 0 };
        atomic_store(&cr->prod[p].n, s + 1);
        /* until answered OK, the same value again: a send that had no
         * answer may have been taken, so its retry may make a duplicate -
         * which the check allows for values sent more than once only */
        for (;;) {
            if (cr->prod[p].attempts[s] == 255) {
                cr_error(cr, "value %d/%u: 255 sends without an answer", p, s);
                goto out;
            }
            cr->prod[p].attempts[s]++;
            if (chan_send(c.ch[v.chan], &v, sizeof v, chan_now() + test_wait_ms(20000)) == 0) {
                cr->prod[p].ok[s] = 1;
                atomic_fetch_add(&cr->oks, 1);
                break;
            }
            int e = errno;
            if (!conn_lost(e)) {
                cr_error(cr, "producer %d: send %u: %s", p, s, strerror(e));
                goto out;
            }
            atomic_fetch_add(&cr->unanswered, 1);
            atomic_fetch_add(&cr->redials, 1);
            conn_drop(&c);
            if (!conn_up(cr, &c, (1u << CR_CHANS) - 1))
                goto out;
        }
    }
out:
    conn_drop(&c);
    return NULL;
}

static bool cr_record(crash_t *cr, int ch, const chan_val_t *v)
{
    cr_value_t x;
    if (v->len != sizeof x) {
        cr_error(cr, "channel %d: a value of %zu bytes was never sent", ch, v->len);
        return false;
    }
    memcpy(&x, v->data, sizeof x);
    if (x.magic != CR_MAGIC || x.prod >= CR_PRODUCERS || x.chan != (uint32_t)ch ||
        x.seq % CR_CHANS != (uint32_t)ch || x.check != cr_check(x.prod, x.seq) || x.pad) {
        cr_error(cr, "channel %d: a value that was never sent (%u/%u for channel %u)", ch,
                 x.prod, x.seq, x.chan);
        return false;
    }
    if (cr->recv[ch].n == cr->recv[ch].cap) {
        cr->recv[ch].cap = cr->recv[ch].cap ? cr->recv[ch].cap * 2 : 4096;
        cr->recv[ch].v = realloc(cr->recv[ch].v, cr->recv[ch].cap * sizeof *cr->recv[ch].v);
        if (!cr->recv[ch].v)
            abort();
    }
    cr->recv[ch].v[cr->recv[ch].n++] = (cr_receipt_t){ x.prod, x.seq, v->redelivered };
    atomic_fetch_add(&cr->received, 1);
    if (v->redelivered)
        atomic_fetch_add(&cr->redelivered, 1);
    return true;
}

/* One consumer per channel: its receipts are the channel's order. */
static void *cr_consumer(void *arg)
{
    struct cr_arg *a = arg;
    crash_t *cr = a->cr;
    int i = a->id;
    cr_conn_t c = { 0 };
    if (!conn_up(cr, &c, 1u << i))
        return NULL;
    for (;;) {
        chan_val_t v[CR_BATCH];
        ssize_t n = chan_recv_many(c.ch[i], v, CR_BATCH, chan_now() + 500);
        if (n > 0) {
            bool ok = true;
            for (ssize_t k = 0; k < n; k++) {
                ok = ok && cr_record(cr, i, &v[k]);
                free(v[k].data);
            }
            if (!ok)
                break;
            continue;
        }
        int e = errno;
        if (e == ETIMEDOUT)
            continue;
        if (e == EPIPE && atomic_load(&cr->closing))
            break;   /* closed and drained */
        if (!conn_lost(e)) {
            cr_error(cr, "consumer %d: recv: %s", i, strerror(e));
            break;
        }
        atomic_fetch_add(&cr->redials, 1);
        conn_drop(&c);
        if (!conn_up(cr, &c, 1u << i))
            break;
    }
    conn_drop(&c);
    return NULL;
}

/* The receipts against the sends (see the comment at the top). */
static void cr_verify(crash_t *cr)
{
    uint32_t total = 0;
    for (int p = 0; p < CR_PRODUCERS; p++)
        total += atomic_load(&cr->prod[p].n);
    /* per value: receipts, unmarked receipts; first seen */
    uint8_t *got[CR_PRODUCERS], *unmarked[CR_PRODUCERS];
    for (int p = 0; p < CR_PRODUCERS; p++) {
        got[p] = calloc(CR_MAXSEQ, 1);
        unmarked[p] = calloc(CR_MAXSEQ, 1);
        ck_assert(got[p] && unmarked[p]);
    }
    long dups = 0, retried = 0;
    for (int ch = 0; ch < CR_CHANS; ch++) {
        int64_t last[CR_PRODUCERS];
        for (int p = 0; p < CR_PRODUCERS; p++)
            last[p] = -1;
        for (size_t k = 0; k < cr->recv[ch].n; k++) {
            cr_receipt_t r = cr->recv[ch].v[k];
            ck_assert_msg(r.seq < atomic_load(&cr->prod[r.prod].n) &&
                          cr->prod[r.prod].attempts[r.seq] > 0,
                          "channel %d: value %u/%u received but never sent", ch, r.prod, r.seq);
            uint8_t attempts = cr->prod[r.prod].attempts[r.seq];
            if (got[r.prod][r.seq]) {
                dups++;
                /* a second receipt: marked, unless the sender sent it more
                 * than once (a copy per unanswered send) */
                ck_assert_msg(r.redelivered > 0 || attempts > 1,
                              "channel %d: value %u/%u received again (receipt %u, at %zu) "
                              "without the redelivered mark; it was sent once",
                              ch, r.prod, r.seq, got[r.prod][r.seq] + 1, k);
            } else {
                /* the first receipts of one producer's values keep its order */
                ck_assert_msg((int64_t)r.seq > last[r.prod],
                              "channel %d: value %u/%u first received after %u/%" PRId64
                              " (at %zu)", ch, r.prod, r.seq, r.prod, last[r.prod], k);
                last[r.prod] = r.seq;
            }
            if (got[r.prod][r.seq] < 255)
                got[r.prod][r.seq]++;
            if (!r.redelivered && unmarked[r.prod][r.seq] < 255)
                unmarked[r.prod][r.seq]++;
            ck_assert_msg(unmarked[r.prod][r.seq] <= attempts,
                          "channel %d: value %u/%u received unmarked %u times, sent %u times",
                          ch, r.prod, r.seq, unmarked[r.prod][r.seq], attempts);
        }
    }
    long copies = 0, never = 0;
    for (int p = 0; p < CR_PRODUCERS; p++) {
        for (uint32_t s = 0; s < atomic_load(&cr->prod[p].n); s++) {
            if (cr->prod[p].ok[s])
                ck_assert_msg(got[p][s] > 0, "value %d/%u (channel %u) was answered OK and "
                              "never received (%u sends)", p, s, s % CR_CHANS,
                              cr->prod[p].attempts[s]);
            else
                never += !got[p][s];
            if (cr->prod[p].attempts[s] > 1) {
                retried++;
                /* unanswered sends that had been taken: their copies */
                copies += unmarked[p][s] > 1 ? unmarked[p][s] - 1 : 0;
            }
        }
        free(got[p]);
        free(unmarked[p]);
    }
    printf("crash: %u values begun, %ld answered OK, %ld never; %ld sends unanswered (%ld "
           "values sent again, %ld of them taken twice); %ld receipts (%ld marked redelivered, "
           "%ld repeats)\n",
           total, atomic_load(&cr->oks), never, atomic_load(&cr->unanswered), retried, copies,
           atomic_load(&cr->received), atomic_load(&cr->redelivered), dups);
}

START_TEST(t_crash_sigkill)
{
    int kills = (int)test_size("crash: SIGKILLs", 25, 20);
    long max_gap = test_size("crash: most ms between kills", 500, 800);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    const char *env = getenv("CHAN_TEST_SEED");
    if (env)
        seed = (unsigned)strtoul(env, NULL, 10);
    printf("crash: seed %u (CHAN_TEST_SEED=%u repeats the kill times)\n", seed, seed);
    fflush(stdout);
    /* a small --rewrite-size: kills land in rewrites too */
    const char *const extra[] = { "--fsync", "always", "--rewrite-size", "64k", NULL };
    chand_proc_t D;
    ck_assert_int_eq(chand_start_data(&D, extra, 0), 0);
    chan_client_t *cl = chand_dial(&D);
    for (int i = 0; i < CR_CHANS; i++) {
        char name[32];
        cr_name(name, sizeof name, i);
        chan_release(chand_open_ch(cl, name, CR_CAP));
    }
    chan_disconnect(cl);

    crash_t *cr = calloc(1, sizeof *cr);
    ck_assert_ptr_nonnull(cr);
    snprintf(cr->addr, sizeof cr->addr, "%s", D.addr);
    pthread_mutex_init(&cr->mu, NULL);
    for (int p = 0; p < CR_PRODUCERS; p++) {
        cr->prod[p].attempts = calloc(CR_MAXSEQ, 1);
        cr->prod[p].ok = calloc(CR_MAXSEQ, 1);
        ck_assert(cr->prod[p].attempts && cr->prod[p].ok);
    }
    pthread_t pt[CR_PRODUCERS], ct[CR_CHANS];
    struct cr_arg pa[CR_PRODUCERS], ca[CR_CHANS];
    for (int i = 0; i < CR_CHANS; i++) {
        ca[i] = (struct cr_arg){ cr, i };
        ck_assert_int_eq(pthread_create(&ct[i], NULL, cr_consumer, &ca[i]), 0);
    }
    for (int p = 0; p < CR_PRODUCERS; p++) {
        pa[p] = (struct cr_arg){ cr, p };
        ck_assert_int_eq(pthread_create(&pt[p], NULL, cr_producer, &pa[p]), 0);
    }

    /* the killer: this thread, which started chand (its parent-death
     * signal follows the thread that forked it) */
    char msg[512];
    long oks_before = 0, quiet_lives = 0, in_rewrite = 0;
    for (int k = 0; k < kills; k++) {
        if (k % 3 == 2) {
            /* at a rewrite's start: its child just forked, the new log
             * just made */
            long from = log_size(&D);
            int64_t until = chan_now() + max_gap * 2;
            bool seen = false;
            while (!(seen = logged_since(&D, from, "rewriting the log")) && chan_now() < until)
                chand_sleep_ms(1);
            in_rewrite += seen;
        } else {
            chand_sleep_ms(rand_r(&seed) % max_gap);
        }
        long oks = atomic_load(&cr->oks);
        quiet_lives += oks == oks_before;
        oks_before = oks;
        int st = chand_signal(&D, SIGKILL);
        ck_assert_d(&D, killed_by(st, SIGKILL), "chand died before its kill %d (status %#x)", k,
                    st);
        if (rand_r(&seed) % 2)
            chand_sleep_ms(rand_r(&seed) % 50);   /* clients meet a refused dial */
        ck_assert_d(&D, chand_start_again_once(&D, extra, 0) == 0, "restart %d failed", k + 1);
        ck_assert_d(&D, cr_fine(cr, msg, sizeof msg), "after kill %d: %s", k + 1, msg);
    }
    atomic_store(&cr->stop, true);
    for (int p = 0; p < CR_PRODUCERS; p++)
        pthread_join(pt[p], NULL);
    ck_assert_d(&D, cr_fine(cr, msg, sizeof msg), "%s", msg);

    /* drain: close every channel; the consumers take what is left and stop */
    cl = chand_dial(&D);
    atomic_store(&cr->closing, true);
    for (int i = 0; i < CR_CHANS; i++) {
        char name[32];
        cr_name(name, sizeof name, i);
        chan_t *ch = chan_open(cl, name, CR_CAP, CHAN_NOCREATE, chan_now() + 5000);
        ck_assert_d(&D, ch, "open %s: %s", name, strerror(errno));
        ck_assert_d(&D, chan_close(ch) == 0, "close %s: %s", name, strerror(errno));
        chan_release(ch);
    }
    for (int i = 0; i < CR_CHANS; i++)
        pthread_join(ct[i], NULL);
    ck_assert_d(&D, cr_fine(cr, msg, sizeof msg), "%s", msg);
    for (int i = 0; i < CR_CHANS; i++) {
        char name[32];
        cr_name(name, sizeof name, i);
        wait_acked(&D, cl, name);
    }
    chan_disconnect(cl);

    /* the data dir a last kill leaves checks, and holds closed, empty
     * channels */
    ck_assert_d(&D, killed_by(chand_signal(&D, SIGKILL), SIGKILL), "chand died before the end");
    char out[4096];
    int st = run_check(&D, out, sizeof out);
    ck_assert_d(&D, exited_with(st, 0) && strstr(out, ": ok:"),
                "chand --check: status %#x: %s", st, out);
    printf("crash: %s", out);
    ck_assert_d(&D, chand_start_again_once(&D, extra, 0) == 0, "the last restart failed");
    cl = chand_dial(&D);
    for (int i = 0; i < CR_CHANS; i++) {
        char name[32];
        cr_name(name, sizeof name, i);
        chan_stat_t cs = stat_of(&D, cl, name);
        ck_assert_d(&D, cs.closed && cs.len == 0, "%s after the end: closed %d, len %" PRIu64,
                    name, cs.closed, cs.len);
    }
    chan_disconnect(cl);

    cr_verify(cr);
    printf("crash: %d kills (%ld as a rewrite began; %ld lives without a send answered); %d "
           "rewrites finished; %d restarts waited for a killed chand's rewrite child\n", kills,
           in_rewrite, quiet_lives, log_count(&D, "rewrite done"),
           log_count(&D, "waiting for its rewrite child"));
    /* the run must have been a run: values went through under the kills */
    ck_assert_int_gt(atomic_load(&cr->oks), 1000);
    ck_assert_int_gt(atomic_load(&cr->unanswered), 0);
    ck_assert_int_eq(chand_stop(&D), 0);
    for (int p = 0; p < CR_PRODUCERS; p++) {
        free(cr->prod[p].attempts);
        free(cr->prod[p].ok);
    }
    for (int i = 0; i < CR_CHANS; i++)
        free(cr->recv[i].v);
    pthread_mutex_destroy(&cr->mu);
    free(cr);
}
END_TEST

/* ---- kill -9 under each --fsync policy ---- */

static const char *const policies[] = { "always", "everysec", "no" };

START_TEST(t_kill9_each_fsync)
{
    const char *const extra[] = { "--fsync", policies[_i], NULL };
    chand_proc_t D;
    ck_assert_int_eq(chand_start_data(&D, extra, 0), 0);
    enum { N = 3000, LEN = 40 };
    chan_client_t *cl = chand_dial(&D);
    chan_t *ch = chand_open_ch(cl, "k9", N);
    chan_t *unb = chand_open_ch(cl, "k9-unbuffered", 0);
    chan_t *tmp = chan_open_temp(cl, 10, chan_now() + 5000);
    ck_assert_ptr_nonnull(tmp);
    char tmpname[256];
    snprintf(tmpname, sizeof tmpname, "%s", chan_name(tmp));
    ck_assert_int_eq(chan_send(tmp, "t", 1, chan_now() + 5000), 0);
    send_numbered(&D, ch, 0, N, LEN);
    /* at once: nothing had time to reach the disk but the page cache,
     * which a killed process does not take with it */
    ck_assert_d(&D, killed_by(chand_signal(&D, SIGKILL), SIGKILL), "chand died early");
    chan_release(ch);
    chan_release(unb);
    chan_release(tmp);
    chan_disconnect(cl);
    ck_assert_d(&D, chand_start_again_once(&D, extra, 0) == 0, "restart failed");
    cl = chand_dial(&D);
    ck_assert_ptr_null(chan_open(cl, tmpname, CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + 5000));
    ck_assert_int_eq(errno, ENOENT);
    chan_server_stat_t ss;
    ck_assert_int_eq(chan_server_stat(cl, &ss, chan_now() + 5000), 0);
    ck_assert_d(&D, ss.durable && !strcmp(ss.fsync, policies[_i]) && ss.recovered_values == N &&
                ss.recovered_channels == 2, "server stat after the restart: durable %d, fsync "
                "%s, %" PRIu64 " channels and %" PRIu64 " values recovered", ss.durable,
                ss.fsync, ss.recovered_channels, ss.recovered_values);
    ch = chan_open(cl, "k9", N, CHAN_NOCREATE, chan_now() + 5000);
    ck_assert_d(&D, ch, "k9 after the restart: %s", strerror(errno));
    unb = chan_open(cl, "k9-unbuffered", 0, CHAN_NOCREATE, chan_now() + 5000);
    ck_assert_d(&D, unb, "k9-unbuffered after the restart: %s", strerror(errno));
    expect_numbered(&D, ch, 0, N, 0, LEN);
    /* taken and acknowledged: a second kill brings none back */
    wait_acked(&D, cl, "k9");
    ck_assert_d(&D, killed_by(chand_signal(&D, SIGKILL), SIGKILL), "chand died early");
    chan_release(ch);
    chan_release(unb);
    chan_disconnect(cl);
    ck_assert_d(&D, chand_start_again_once(&D, extra, 0) == 0, "restart failed");
    cl = chand_dial(&D);
    chan_stat_t st = stat_of(&D, cl, "k9");
    ck_assert_d(&D, st.len == 0 && st.cap == N, "k9 after the second restart: len %" PRIu64
                ", cap %" PRIu64, st.len, st.cap);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&D), 0);
}
END_TEST

/* ---- values delivered and never acknowledged ---- */

START_TEST(t_unacked_come_back_first)
{
    const char *const extra[] = { "--fsync", "no", NULL };
    chand_proc_t D;
    ck_assert_int_eq(chand_start_data(&D, extra, 0), 0);
    enum { N = 20, TAKEN = 6, LEN = 24 };
    chan_client_t *cl = chand_dial(&D);
    chan_t *ch = chand_open_ch(cl, "unacked", 100);
    send_numbered(&D, ch, 0, N, LEN);
    /* a raw client takes the head and never acknowledges it */
    int fd = raw_session(&D);
    uint32_t seqs[N];
    size_t got = raw_take(fd, 2, "unacked", TAKEN, LEN, seqs);
    ck_assert_uint_eq(got, TAKEN);
    for (uint32_t i = 0; i < TAKEN; i++)
        ck_assert_uint_eq(seqs[i], i);
    chan_stat_t st = stat_of(&D, cl, "unacked");
    ck_assert_uint_eq(st.inflight, TAKEN);
    ck_assert_d(&D, killed_by(chand_signal(&D, SIGKILL), SIGKILL), "chand died early");
    close(fd);
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_d(&D, chand_start_again_once(&D, extra, 0) == 0, "restart failed");
    cl = chand_dial(&D);
    ch = chan_open(cl, "unacked", 100, CHAN_NOCREATE, chan_now() + 5000);
    ck_assert_d(&D, ch, "unacked after the restart: %s", strerror(errno));
    st = stat_of(&D, cl, "unacked");
    ck_assert_uint_eq(st.len, N);
    expect_numbered(&D, ch, 0, N, TAKEN, LEN);
    /* the redeliveries were acknowledged this time: nothing comes back */
    wait_acked(&D, cl, "unacked");
    ck_assert_d(&D, killed_by(chand_signal(&D, SIGKILL), SIGKILL), "chand died early");
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_d(&D, chand_start_again_once(&D, extra, 0) == 0, "restart failed");
    cl = chand_dial(&D);
    st = stat_of(&D, cl, "unacked");
    ck_assert_uint_eq(st.len, 0);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&D), 0);
}
END_TEST

/* ---- rewrites under a stream ---- */

struct rw_share {
    chan_t *in, *out;
    uint32_t total;
    uint32_t rate;            /* values a second the producer keeps to */
    size_t len;
    atomic_bool done;
    atomic_int failed;
    char error[256];
};

static void *rw_producer(void *arg)
{
    struct rw_share *sh = arg;
    static char bufs[64][256];
    int64_t t0 = chan_now();
    for (uint32_t i = 0; i < sh->total && !atomic_load(&sh->failed);) {
        uint32_t k = sh->total - i < 64 ? sh->total - i : 64;
        chan_val_t v[64];
        for (uint32_t j = 0; j < k; j++)
            v[j] = (chan_val_t){ bufs[j], numbered(bufs[j], sh->len, i + j), 0 };
        ssize_t n = chan_send_many(sh->in, v, k, chan_now() + test_wait_ms(10000));
        if (n != (ssize_t)k) {
            snprintf(sh->error, sizeof sh->error, "send at %u: %zd (%s)", i, n, strerror(errno));
            atomic_store(&sh->failed, 1);
            break;
        }
        i += k;
        /* a steady stream: what the data dir may hold beyond the live
         * data is what arrives while a rewrite runs */
        chan_sleep(t0 + (int64_t)i * 1000 / sh->rate);
    }
    return NULL;
}

static void *rw_consumer(void *arg)
{
    struct rw_share *sh = arg;
    uint32_t next = 0;
    while (next < sh->total && !atomic_load(&sh->failed)) {
        chan_val_t v[64];
        ssize_t n = chan_recv_many(sh->out, v, 64, chan_now() + test_wait_ms(10000));
        if (n <= 0) {
            snprintf(sh->error, sizeof sh->error, "recv at %u: %s", next, strerror(errno));
            atomic_store(&sh->failed, 1);
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            uint32_t seq = 0;
            bool ok = numbered_ok(v[i].data, v[i].len, sh->len, &seq);
            if (!ok || seq != next || v[i].redelivered) {
                snprintf(sh->error, sizeof sh->error,
                         "%s value %u (redelivered %u) where %u was due",
                         ok ? "" : "a corrupt", seq, v[i].redelivered, next);
                atomic_store(&sh->failed, 1);
            }
            free(v[i].data);
            next++;
        }
    }
    atomic_store(&sh->done, true);
    return NULL;
}

/* One look at the data dir. */
struct dir_look {
    uint64_t bytes, blocks;   /* the files' total size, apparent and on disk */
    int logs, snaps;          /* log.*, snap.* (with a .tmp being written) */
    uint64_t biggest_snap;    /* a finished snapshot's size */
};

static void look_dir(const char *dir, struct dir_look *l)
{
    memset(l, 0, sizeof *l);
    DIR *dp = opendir(dir);
    if (!dp)
        return;
    struct dirent *e;
    while ((e = readdir(dp))) {
        struct stat sb;
        if (fstatat(dirfd(dp), e->d_name, &sb, 0) < 0 || !S_ISREG(sb.st_mode))
            continue;   /* removed meanwhile */
        l->bytes += (uint64_t)sb.st_size;
        l->blocks += (uint64_t)sb.st_blocks * 512;
        if (!strncmp(e->d_name, "log.", 4))
            l->logs++;
        if (!strncmp(e->d_name, "snap.", 5)) {
            l->snaps++;
            if (!strstr(e->d_name, ".tmp") && (uint64_t)sb.st_size > l->biggest_snap)
                l->biggest_snap = (uint64_t)sb.st_size;
        }
    }
    closedir(dp);
}

/* The longest rewrite d's log reports ("rewrite done: ... (N ms)"). */
static long longest_rewrite_ms(const chand_proc_t *d)
{
    char path[128], line[1024];
    snprintf(path, sizeof path, "%s/chand.log", d->dir);
    FILE *f = fopen(path, "r");
    long most = 0;
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "rewrite done");
        p = p ? strrchr(p, '(') : NULL;
        long ms;
        if (p && sscanf(p, "(%ld ms)", &ms) == 1 && ms > most)
            most = ms;
    }
    if (f)
        fclose(f);
    return most;
}

START_TEST(t_rewrite_under_load)
{
    enum { REWRITE = 64 << 10, PREALLOC = 64 << 10, CAP = 1000, LEFT = 800, LEN = 100 };
    const char *const extra[] = { "--fsync", "no", "--rewrite-size", "64k", "--prealloc", "64k",
                                  NULL };
    chand_proc_t D;
    ck_assert_int_eq(chand_start_data(&D, extra, 0), 0);
    chan_client_t *pc = chand_dial(&D), *cc = chand_dial(&D);
    struct rw_share sh = { .len = LEN, .rate = 8000 };
    sh.total = (uint32_t)test_size("rewrite: values streamed (8,000 a second)", 64000, 16000);
    sh.in = chand_open_ch(pc, "rw", CAP);
    sh.out = chand_open_ch(cc, "rw", CAP);
    pthread_t pt, ct;
    pthread_create(&ct, NULL, rw_consumer, &sh);
    pthread_create(&pt, NULL, rw_producer, &sh);
    /* The live data: at most CAP values buffered and a batch delivered,
     * each with its record's few bytes. */
    uint64_t live = (uint64_t)(CAP + 64) * (LEN + 16) + 4096;
    struct dir_look most = { 0 };
    long samples = 0;
    bool snap = false;
    while (!atomic_load(&sh.done)) {
        struct dir_look l;
        look_dir(D.data, &l);
        /* a snapshot and its log, and the next ones being written: more
         * is a rewrite that left files behind */
        ck_assert_d(&D, l.logs <= 2 && l.snaps <= 3, "%d logs and %d snapshots at once",
                    l.logs, l.snaps);
        ck_assert_d(&D, l.biggest_snap <= live, "a snapshot of %" PRIu64 " bytes; the live "
                    "data is at most %" PRIu64, l.biggest_snap, live);
        most.bytes = l.bytes > most.bytes ? l.bytes : most.bytes;
        most.blocks = l.blocks > most.blocks ? l.blocks : most.blocks;
        snap = snap || l.biggest_snap;
        samples++;
        chand_sleep_ms(5);
    }
    pthread_join(pt, NULL);
    pthread_join(ct, NULL);
    ck_assert_d(&D, !atomic_load(&sh.failed), "%s", sh.error);
    int rewrites = log_count(&D, "rewrite done");
    long slowest = longest_rewrite_ms(&D);
    uint64_t streamed = (uint64_t)sh.total * (LEN + 16);
    printf("rewrite: %u values of %d bytes (about %" PRIu64 " bytes of log); %d rewrites, the "
           "slowest %ld ms; data dir at most %" PRIu64 " bytes (%" PRIu64 " on disk) over %ld "
           "samples\n", sh.total, LEN, streamed, rewrites, slowest, most.bytes, most.blocks,
           samples);
    ck_assert_d(&D, rewrites >= 1 && snap, "no rewrite finished (%d; snapshot seen: %d)",
                rewrites, snap);
    chan_server_stat_t ss;
    ck_assert_int_eq(chan_server_stat(cc, &ss, chan_now() + 5000), 0);
    ck_assert_d(&D, ss.rewrites >= (uint64_t)rewrites && ss.rewrite_failures == 0,
                "server stat: %" PRIu64 " rewrites, %" PRIu64 " failed; the log says %d",
                ss.rewrites, ss.rewrite_failures, rewrites);
    /* Bounded: a snapshot of the live data, the log past --rewrite-size
     * that a rewrite starts from (it looks every 100 ms), and the new log
     * that grows while the rewrite runs: at the stream's rate, for the
     * timer's period (doubled: a busy loop runs it late) and the slowest
     * rewrite; the old snapshot and log go when the new ones are done.
     * What it catches is a data dir that grows with the stream. */
    uint64_t per_s = (uint64_t)sh.rate * (LEN + 16);
    uint64_t bound = 2 * live + 2 * REWRITE + per_s * (uint64_t)(2 * 200 + 2 * slowest) / 1000;
    ck_assert_d(&D, most.bytes <= bound, "the data dir grew to %" PRIu64 " bytes (bound %" PRIu64
                ")", most.bytes, bound);
    ck_assert_d(&D, most.blocks <= bound + 4 * PREALLOC, "the data dir took %" PRIu64
                " bytes of disk (bound %" PRIu64 ")", most.blocks, bound + 4 * PREALLOC);
    /* what the snapshots and logs hold is right: values left in the
     * channel come back, in order, after a kill */
    send_numbered(&D, sh.in, sh.total, LEFT, LEN);
    wait_acked(&D, cc, "rw");
    ck_assert_d(&D, killed_by(chand_signal(&D, SIGKILL), SIGKILL), "chand died early");
    chan_release(sh.in);
    chan_release(sh.out);
    chan_disconnect(pc);
    chan_disconnect(cc);
    ck_assert_d(&D, chand_start_again_once(&D, extra, 0) == 0, "restart failed");
    cc = chand_dial(&D);
    chan_t *ch = chan_open(cc, "rw", CAP, CHAN_NOCREATE, chan_now() + 5000);
    ck_assert_d(&D, ch, "rw after the restart: %s", strerror(errno));
    expect_numbered(&D, ch, sh.total, LEFT, 0, LEN);
    chan_release(ch);
    chan_disconnect(cc);
    ck_assert_int_eq(chand_stop(&D), 0);
}
END_TEST

/* ---- a full disk ---- */

struct unb_recv {
    chan_t *ch;
    ssize_t n;
    char buf[16];
};

static void *unb_receive(void *arg)
{
    struct unb_recv *r = arg;
    r->n = chan_recv(r->ch, r->buf, sizeof r->buf, chan_now() + test_wait_ms(5000));
    return NULL;
}

START_TEST(t_disk_full)
{
    enum { LIMIT = 1 << 20, LEN = 200, TAKE = 100 };
    const char *const extra[] = { "--fsync", "no", "--prealloc", "64k", NULL };
    chand_proc_t D;
    ck_assert_int_eq(chand_start_data(&D, extra, LIMIT), 0);
    chan_client_t *cl = chand_dial(&D);
    chan_t *ch = chand_open_ch(cl, "full", 100000);
    chan_t *unb = chand_open_ch(cl, "full-unbuffered", 0);
    char buf[LEN];
    uint32_t ok = 0;
    int err = 0;
    for (;;) {
        numbered(buf, LEN, ok);
        if (chan_send(ch, buf, LEN, chan_now() + test_wait_ms(5000)) < 0) {
            err = errno;
            break;
        }
        ok++;
        ck_assert_d(&D, ok < 2 * LIMIT / LEN, "%u values of %d bytes under a 1 MiB limit, "
                    "none refused", ok, LEN);
    }
    ck_assert_d(&D, err == EBUSY, "send %u: %s, not refused with EBUSY", ok, strerror(err));
    printf("disk full: %u values of %d bytes accepted, then EBUSY\n", ok, LEN);
    /* the refusal says why */
    int fd = raw_session(&D);
    char msg[256];
    Chan__Status st = raw_send(fd, 2, "full", buf, LEN, msg, sizeof msg);
    ck_assert_d(&D, st == CHAN__STATUS__BUSY && strstr(msg, "disk"),
                "a send on a full disk: status %d, message '%s'", st, msg);
    close(fd);
    chan_server_stat_t ss;
    ck_assert_int_eq(chan_server_stat(cl, &ss, chan_now() + 5000), 0);
    ck_assert_d(&D, ss.refusing_sends, "server stat: not refusing sends on a full disk");
    /* receives and their acknowledgements go on, and so do unbuffered
     * channels, which store nothing */
    for (uint32_t i = 0; i < TAKE; i++) {
        uint32_t seq = 0;
        ssize_t n = chan_recv(ch, buf, sizeof buf, chan_now() + test_wait_ms(5000));
        ck_assert_d(&D, n == LEN && numbered_ok(buf, (size_t)n, LEN, &seq) && seq == i,
                    "receive %u on a full disk: %zd (%s)", i, n, n < 0 ? strerror(errno) : "");
    }
    wait_acked(&D, cl, "full");
    chan_stat_t cs = stat_of(&D, cl, "full");
    ck_assert_uint_eq(cs.len, ok - TAKE);
    ck_assert_uint_eq(cs.received, TAKE);
    struct unb_recv ur = { .ch = unb };
    pthread_t t;
    pthread_create(&t, NULL, unb_receive, &ur);
    ck_assert_d(&D, chan_send(unb, "hand", 4, chan_now() + test_wait_ms(5000)) == 0,
                "unbuffered send on a full disk: %s", strerror(errno));
    pthread_join(t, NULL);
    ck_assert_int_eq(ur.n, 4);
    ck_assert_d(&D, chan_send(ch, buf, LEN, chan_now() + 5000) == -1 && errno == EBUSY,
                "sends are accepted again on a disk still full");
    ck_assert_d(&D, kill(D.pid, 0) == 0, "chand died on the full disk");
    /* what was accepted is there after a restart with room */
    ck_assert_d(&D, killed_by(chand_signal(&D, SIGKILL), SIGKILL), "chand died early");
    chan_release(ch);
    chan_release(unb);
    chan_disconnect(cl);
    ck_assert_d(&D, chand_start_again_once(&D, extra, 0) == 0, "restart failed");
    cl = chand_dial(&D);
    ch = chan_open(cl, "full", 100000, CHAN_NOCREATE, chan_now() + 5000);
    ck_assert_d(&D, ch, "full after the restart: %s", strerror(errno));
    expect_numbered(&D, ch, TAKE, ok - TAKE, 0, LEN);
    numbered(buf, LEN, ok);
    ck_assert_d(&D, chan_send(ch, buf, LEN, chan_now() + 5000) == 0,
                "a send after the restart with room: %s", strerror(errno));
    ck_assert_int_eq(chan_server_stat(cl, &ss, chan_now() + 5000), 0);
    ck_assert_d(&D, !ss.refusing_sends, "server stat: refusing sends with room");
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&D), 0);
}
END_TEST

/* ---- SIGHUP and SIGTERM ---- */

START_TEST(t_sighup_sigterm)
{
    enum { LEN = 30 };
    const char *const extra[] = { "--fsync", "no", NULL };
    chand_proc_t D;
    ck_assert_int_eq(chand_start_data(&D, extra, 0), 0);
    chan_client_t *cl = chand_dial(&D);
    chan_t *keep = chand_open_ch(cl, "keep", 100);
    send_numbered(&D, keep, 0, 10, LEN);
    /* SIGHUP: logged, ignored */
    ck_assert_int_eq(kill(D.pid, SIGHUP), 0);
    int64_t until = chan_now() + test_wait_ms(5000);
    while (!log_count(&D, "SIGHUP") && chan_now() < until)
        chand_sleep_ms(5);
    ck_assert_d(&D, log_count(&D, "SIGHUP") == 1, "SIGHUP not logged");
    ck_assert_d(&D, waitpid(D.pid, NULL, WNOHANG) == 0, "chand ended on SIGHUP");
    ck_assert_d(&D, chan_ping(cl, chan_now() + 5000) == 0, "no pong after SIGHUP: %s",
                strerror(errno));
    send_numbered(&D, keep, 10, 10, LEN);
    /* the rest of the state SIGTERM must leave: a temporary channel (gone
     * after), a closed channel with values left, a deleted one, an
     * unbuffered one */
    chan_t *tmp = chan_open_temp(cl, 10, chan_now() + 5000);
    ck_assert_ptr_nonnull(tmp);
    char tmpname[256];
    snprintf(tmpname, sizeof tmpname, "%s", chan_name(tmp));
    ck_assert_int_eq(chan_send(tmp, "t", 1, chan_now() + 5000), 0);
    chan_t *closed = chand_open_ch(cl, "closed", 10);
    send_numbered(&D, closed, 0, 3, LEN);
    ck_assert_int_eq(chan_close(closed), 0);
    chan_t *gone = chand_open_ch(cl, "gone", 10);
    send_numbered(&D, gone, 0, 3, LEN);
    ck_assert_int_eq(chan_delete(cl, "gone", chan_now() + 5000), 0);
    chan_t *unb = chand_open_ch(cl, "unbuffered", 0);
    /* taken and not acknowledged when SIGTERM comes: back first, marked */
    int fd = raw_session(&D);
    uint32_t seqs[4];
    ck_assert_uint_eq(raw_take(fd, 2, "keep", 2, LEN, seqs), 2);
    ck_assert(seqs[0] == 0 && seqs[1] == 1);
    int st = chand_signal(&D, SIGTERM);
    close(fd);
    ck_assert_d(&D, exited_with(st, 0), "SIGTERM: status %#x, not exit 0", st);
    char out[4096];
    st = run_check(&D, out, sizeof out);
    ck_assert_d(&D, exited_with(st, 0) && strstr(out, ": ok:") && !strstr(out, "torn"),
                "chand --check after SIGTERM: status %#x: %s", st, out);
    chan_release(keep);
    chan_release(tmp);
    chan_release(closed);
    chan_release(gone);
    chan_release(unb);
    chan_disconnect(cl);
    ck_assert_d(&D, chand_start_again_once(&D, extra, 0) == 0, "restart failed");
    cl = chand_dial(&D);
    keep = chan_open(cl, "keep", 100, CHAN_NOCREATE, chan_now() + 5000);
    ck_assert_d(&D, keep, "keep after the restart: %s", strerror(errno));
    expect_numbered(&D, keep, 0, 20, 2, LEN);
    ck_assert_ptr_null(chan_open(cl, tmpname, CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + 5000));
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_ptr_null(chan_open(cl, "gone", CHAN_CAP_ANY, CHAN_NOCREATE, chan_now() + 5000));
    ck_assert_int_eq(errno, ENOENT);
    unb = chan_open(cl, "unbuffered", 0, CHAN_NOCREATE, chan_now() + 5000);
    ck_assert_d(&D, unb, "unbuffered after the restart: %s", strerror(errno));
    closed = chan_open(cl, "closed", 10, CHAN_NOCREATE, chan_now() + 5000);
    ck_assert_d(&D, closed, "closed after the restart: %s", strerror(errno));
    chan_stat_t cs = stat_of(&D, cl, "closed");
    ck_assert_d(&D, cs.closed && cs.len == 3, "closed: closed %d, len %" PRIu64, cs.closed,
                cs.len);
    ck_assert_int_eq(chan_send(closed, "x", 1, chan_now() + 5000), -1);
    ck_assert_int_eq(errno, EPIPE);
    char buf[LEN];
    for (uint32_t i = 0; i < 3; i++) {
        uint32_t seq = 0;
        ssize_t n = chan_recv(closed, buf, sizeof buf, chan_now() + 5000);
        ck_assert(n == LEN && numbered_ok(buf, LEN, LEN, &seq) && seq == i);
    }
    ck_assert_int_eq(chan_recv(closed, buf, sizeof buf, chan_now() + 5000), -1);
    ck_assert_int_eq(errno, EPIPE);
    chan_release(keep);
    chan_release(closed);
    chan_release(unb);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&D), 0);
}
END_TEST

/* ---- a torn tail is cut; corruption stops the start ---- */

/* The path of the newest log in d's data dir. */
static void newest_log(const chand_proc_t *d, char *out, size_t size)
{
    DIR *dp = opendir(d->data);
    ck_assert_ptr_nonnull(dp);
    char best[256] = "";
    struct dirent *e;
    while ((e = readdir(dp)))
        if (!strncmp(e->d_name, "log.", 4) && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", e->d_name);   /* 20 digits: by name */
    closedir(dp);
    ck_assert_msg(best[0], "no log in %s", d->data);
    snprintf(out, size, "%s/%s", d->data, best);
}

static off_t file_size(const char *path)
{
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    return sb.st_size;
}

/* Where the records of the newest log of d end, chand stopped: its size,
 * less the zeros chand writes ahead of the records, which `chand --check`
 * reports. */
static off_t records_end(const chand_proc_t *d, const char *log)
{
    char out[4096];
    int st = run_check(d, out, sizeof out);
    ck_assert_msg(exited_with(st, 0), "chand --check: status %#x: %s", st, out);
    const char *at = strstr(out, "the newest log ends at offset ");
    if (!at)
        return file_size(log);
    long long end = strtoll(at + strlen("the newest log ends at offset "), NULL, 10);
    ck_assert_msg(end > 0 && end < file_size(log), "%s", out);
    return (off_t)end;
}

/* Two runs' values in one log (0..99, then 100..199), the second run's
 * records damaged as a crash in the middle of a write leaves them: _i 0,
 * cut in the middle; _i 1, a tail of zeros (the file grew, its data never
 * reached the disk; chand's own zeros written ahead look the same).  A
 * restart loads every whole record before the damage, cuts the rest off,
 * and appends after it. */
START_TEST(t_torn_tail_cut)
{
    enum { LEN = 50 };
    const char *const extra[] = { "--fsync", "no", "--rewrite-size", "1g", NULL };
    chand_proc_t D;
    ck_assert_int_eq(chand_start_data(&D, extra, 0), 0);
    chan_client_t *cl = chand_dial(&D);
    chan_t *ch = chand_open_ch(cl, "torn", 1000);
    send_numbered(&D, ch, 0, 100, LEN);
    ck_assert_d(&D, killed_by(chand_signal(&D, SIGKILL), SIGKILL), "chand died early");
    chan_release(ch);
    chan_disconnect(cl);
    char log[192];
    newest_log(&D, log, sizeof log);
    off_t first = records_end(&D, log);
    ck_assert_d(&D, chand_start_again_once(&D, extra, 0) == 0, "restart failed");
    cl = chand_dial(&D);
    ch = chan_open(cl, "torn", 1000, CHAN_NOCREATE, chan_now() + 5000);
    ck_assert_ptr_nonnull(ch);
    send_numbered(&D, ch, 100, 100, LEN);
    ck_assert_d(&D, killed_by(chand_signal(&D, SIGKILL), SIGKILL), "chand died early");
    chan_release(ch);
    chan_disconnect(cl);
    char log2[192];
    newest_log(&D, log2, sizeof log2);
    ck_assert_str_eq(log, log2);   /* one log: both runs appended to it */
    off_t whole = records_end(&D, log);
    ck_assert_int_gt(whole, first);
    if (_i == 0) {
        ck_assert_int_eq(truncate(log, first + (whole - first) / 2 + 3), 0);
    } else {
        FILE *f = fopen(log, "a");
        ck_assert_ptr_nonnull(f);
        static const char zeros[4096];
        ck_assert_uint_eq(fwrite(zeros, 1, sizeof zeros, f), sizeof zeros);
        fclose(f);
    }
    /* a torn record is reported as one; zeros as the end of the records */
    const char *said = _i == 0 ? "torn tail" : "zero bytes";
    int before = log_count(&D, said);
    char out[4096];
    int st = run_check(&D, out, sizeof out);
    ck_assert_msg(exited_with(st, 0) && strstr(out, said),
                  "chand --check on a torn tail: status %#x: %s", st, out);
    ck_assert_d(&D, chand_start_again_once(&D, extra, 0) == 0, "restart on a torn tail failed");
    ck_assert_d(&D, log_count(&D, said) == before + 1, "the torn tail was not reported");
    cl = chand_dial(&D);
    ch = chan_open(cl, "torn", 1000, CHAN_NOCREATE, chan_now() + 5000);
    ck_assert_d(&D, ch, "torn after the restart: %s", strerror(errno));
    chan_stat_t cs = stat_of(&D, cl, "torn");
    /* the first run whole; of the second, what came before the cut */
    uint32_t kept = (uint32_t)cs.len;
    ck_assert_d(&D, _i == 0 ? kept >= 100 && kept < 200 : kept == 200,
                "%u values after the damage", kept);
    /* appended after the cut, not after the damage: a third run reads */
    send_numbered(&D, ch, kept, 10, LEN);
    ck_assert_d(&D, killed_by(chand_signal(&D, SIGKILL), SIGKILL), "chand died early");
    chan_release(ch);
    chan_disconnect(cl);
    st = run_check(&D, out, sizeof out);
    ck_assert_msg(exited_with(st, 0) && !strstr(out, "torn"),
                  "chand --check after the cut: status %#x: %s", st, out);
    ck_assert_d(&D, chand_start_again_once(&D, extra, 0) == 0, "restart after the cut failed");
    cl = chand_dial(&D);
    ch = chan_open(cl, "torn", 1000, CHAN_NOCREATE, chan_now() + 5000);
    ck_assert_d(&D, ch, "torn after the third run: %s", strerror(errno));
    expect_numbered(&D, ch, 0, kept + 10, 0, LEN);
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&D), 0);
}
END_TEST

START_TEST(t_corrupt_log_refused)
{
    enum { LEN = 50 };
    const char *const extra[] = { "--fsync", "no", NULL };
    chand_proc_t D;
    ck_assert_int_eq(chand_start_data(&D, extra, 0), 0);
    chan_client_t *cl = chand_dial(&D);
    chan_t *ch = chand_open_ch(cl, "bad", 1000);
    send_numbered(&D, ch, 0, 100, LEN);
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_d(&D, killed_by(chand_signal(&D, SIGKILL), SIGKILL), "chand died early");
    /* a flipped byte in the middle of the log, records after it: not a
     * crash's torn tail but damage */
    char log[192];
    newest_log(&D, log, sizeof log);
    off_t mid = records_end(&D, log) / 2;
    FILE *f = fopen(log, "r+");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseeko(f, mid, SEEK_SET), 0);
    int c = fgetc(f);
    ck_assert_int_ne(c, EOF);
    ck_assert_int_eq(fseeko(f, mid, SEEK_SET), 0);
    fputc(c ^ 0x40, f);
    fclose(f);
    char out[4096];
    int st = run_check(&D, out, sizeof out);
    ck_assert_msg(exited_with(st, 1) && strstr(out, "CORRUPT") && strstr(out, "offset"),
                  "chand --check on a damaged log: status %#x: %s", st, out);
    const char *base = strrchr(log, '/') + 1;
    const char *const args[] = { "--listen", "127.0.0.1:0", "--data-dir", D.data, NULL };
    st = chand_run(args, out, sizeof out, test_wait_ms(10000));
    ck_assert_msg(exited_with(st, 1) && strstr(out, base) && strstr(out, "offset"),
                  "chand on a damaged log: status %#x: %s", st, out);
    ck_assert_int_eq(chand_stop(&D), -1);   /* nothing ran */
}
END_TEST

/* ---- one data dir, one chand ---- */

/* --fsync always: a send is answered only once its value is on disk.  A
 * shim (tests/fsync_gate.c, preloaded into chand) holds fdatasync back
 * while a file exists: meanwhile the send gets no answer; once the sync
 * goes through, the answer comes. */
START_TEST(t_always_answers_after_the_sync)
{
    const char *chand = getenv("CHAND");
    ck_assert_ptr_nonnull(chand);
    char so[4096];
    snprintf(so, sizeof so, "%s", chand);
    char *slash = strrchr(so, '/');
    ck_assert_ptr_nonnull(slash);
    snprintf(slash, sizeof so - (size_t)(slash - so), "/../tests/.libs/libfsyncgate.so");
    ck_assert_msg(access(so, R_OK) == 0, "%s: build it with make check", so);
    chand_proc_t d;
    memset(&d, 0, sizeof d);
    char gate[256];
    /* the environment chand inherits: the shim, where its gate is, and an
     * ASan chand told that a preloaded library may come before its runtime */
    const char *asan = getenv("ASAN_OPTIONS");
    char *asan_was = asan ? strdup(asan) : NULL;
    char asan_now[1024];
    snprintf(asan_now, sizeof asan_now, "%s%sverify_asan_link_order=0", asan ? asan : "",
             asan && *asan ? ":" : "");
    snprintf(gate, sizeof gate, "%s/fsync-gate.%d", P_tmpdir, (int)getpid());
    setenv("LD_PRELOAD", so, 1);
    setenv("CHAND_TEST_FSYNC_GATE", gate, 1);
    setenv("ASAN_OPTIONS", asan_now, 1);
    const char *args[] = { "--fsync", "always", NULL };
    int rc = chand_start_data(&d, args, 0);
    unsetenv("LD_PRELOAD");
    unsetenv("CHAND_TEST_FSYNC_GATE");
    if (asan_was)
        setenv("ASAN_OPTIONS", asan_was, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(asan_was);
    ck_assert_int_eq(rc, 0);
    chan_client_t *cl = chan_connect(d.addr, NULL, chan_now() + 5000);
    ck_assert_ptr_nonnull(cl);
    chan_t *ch = chan_open(cl, "held", 8, 0, chan_now() + 5000);
    ck_assert_ptr_nonnull(ch);
    int fd = raw_session(&d);
    /* the disk stalls: the send is taken, and not answered */
    FILE *g = fopen(gate, "w");
    ck_assert_ptr_nonnull(g);
    fclose(g);
    ProtobufCBinaryData value = { 3, (uint8_t *)"abc" };
    Chan__Send s = CHAN__SEND__INIT;
    s.has_name = true;
    s.name.data = (uint8_t *)"held";
    s.name.len = 4;
    s.n_values = 1;
    s.values = &value;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = 7;
    rq.op_case = CHAN__REQUEST__OP_SEND;
    rq.send = &s;
    raw_request(fd, &rq);
    struct pollfd p = { fd, POLLIN, 0 };
    int ready = poll(&p, 1, 400);
    unlink(gate);
    ck_assert_msg(ready == 0, "the send was answered before its value was on disk");
    /* the sync goes through: the answer comes */
    static uint8_t buf[4096];
    chan_arena_t ar;
    chan_arena_init(&ar);
    Chan__Reply *r = raw_reply_decode(fd, buf, sizeof buf, &ar);
    ck_assert_uint_eq(r->id, 7);
    ck_assert(!r->has_status || r->status == CHAN__STATUS__OK);
    chan_arena_free(&ar);
    close(fd);
    char v[8];
    ck_assert_int_eq(chan_recv(ch, v, sizeof v, chan_now() + 5000), 3);
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&d), 0);
}
END_TEST

START_TEST(t_second_chand_refused)
{
    const char *const extra[] = { "--fsync", "no", NULL };
    chand_proc_t D;
    ck_assert_int_eq(chand_start_data(&D, extra, 0), 0);
    chan_client_t *cl = chand_dial(&D);
    chan_t *ch = chand_open_ch(cl, "one", 10);
    send_numbered(&D, ch, 0, 5, 20);
    const char *const args[] = { "--listen", "127.0.0.1:0", "--data-dir", D.data, NULL };
    char out[4096], pid[32];
    int st = chand_run(args, out, sizeof out, test_wait_ms(10000));
    snprintf(pid, sizeof pid, "pid %d", (int)D.pid);
    ck_assert_d(&D, exited_with(st, 1), "a second chand on %s: status %#x: %s", D.data, st, out);
    ck_assert_msg(strstr(out, D.data) && strstr(out, pid),
                  "the refusal names neither %s nor %s: %s", D.data, pid, out);
    /* the first one goes on, its data untouched */
    send_numbered(&D, ch, 5, 5, 20);
    expect_numbered(&D, ch, 0, 10, 0, 20);
    chan_release(ch);
    chan_disconnect(cl);
    ck_assert_int_eq(chand_stop(&D), 0);
}
END_TEST

static Suite *durable_suite(void)
{
    Suite *s = suite_create("durable");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, t_crash_sigkill);
    suite_add_tcase(s, tc);

    tc = tcase_create("restart");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, t_kill9_each_fsync, 0, 3);
    tcase_add_test(tc, t_unacked_come_back_first);
    tcase_add_test(tc, t_rewrite_under_load);
    tcase_add_test(tc, t_disk_full);
    tcase_add_test(tc, t_sighup_sigterm);
    tcase_add_test(tc, t_second_chand_refused);
    tcase_add_test(tc, t_always_answers_after_the_sync);
    tcase_add_loop_test(tc, t_torn_tail_cut, 0, 2);
    tcase_add_test(tc, t_corrupt_log_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* every daemon's directory, data dirs included, in one that this
     * process removes at the end: a failed test's process ends at once,
     * leaving its own behind */
    char root[] = "/tmp/chand-durable-XXXXXX";
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    chand_set_tmp_root(root);
    SRunner *sr = srunner_create(durable_suite());
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    /* the daemons of a failed test got SIGTERM as its process ended, and
     * write their logs as they stop: give them a moment */
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    for (int i = 0; i < 50 && system(cmd) != 0; i++)
        chand_sleep_ms(100);
    return nf == 0 ? 0 : 1;
}

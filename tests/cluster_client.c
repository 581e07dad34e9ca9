/*
 * cluster_client.c - libchan against a chand cluster of several groups
 * (run by tests/cluster_slots.sh, which starts etcd and the chands).
 *
 *   cluster_client ops SEEDS
 *       every kind of operation on channels of two groups, through one
 *       client: send, recv, len, select across groups (receive, send, with
 *       a deadline, with default), close, delete, list, a temporary
 *       channel passed by reference to another client.
 *   cluster_client load SEEDS SECONDS NCHAN
 *       one producer and one consumer thread per channel for SECONDS (every
 *       other consumer receives by a select across its channel and one of
 *       the other half of the slots), while the script moves slots: every value whose send returned OK is
 *       received; a value received again is marked redelivered; each
 *       producer's values come in order.  Prints a summary line.
 *   cluster_client wait SEEDS KNOWN NAME GO
 *       opens channel KNOWN (which reads the slot map: the client now knows
 *       every group's nodes), prints "ready", waits until the file GO
 *       exists (the script has meanwhile stopped every node of NAME's
 *       group), then opens NAME with a deadline of 30 s: it must wait for
 *       the group to be back, not fail on the nodes it knew.
 *   cluster_client adopt HOST:PORT LO HI VERSION TERM ATTEMPT NAME VALUE
 *       speaks the protocol by hand as an old group's primary would: a
 *       Hello, then one Adopt{lo, hi, map_version, term, attempt, first, last}
 *       of one channel NAME (capacity 4) holding VALUE; prints the status
 *       of its answer (OK, RETRY, BAD_REQUEST...) and the message.
 * Exit 0 when everything held, 1 on a failure (each printed), 2 on usage.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan/chan.h"
#include "chan_frame.h"

static int failures;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (cond) {                                                                            \
            printf("ok: ");                                                                    \
        } else {                                                                               \
            printf("FAIL: ");                                                                  \
            failures++;                                                                        \
        }                                                                                      \
        printf(__VA_ARGS__);                                                                   \
        printf("\n");                                                                          \
        fflush(stdout);                                                                        \
    } while (0)

static int64_t in_ms(int64_t ms)
{
    return chan_now() + ms;
}

/* The group serving slot, from the map. */
static const char *group_of(const chan_slot_range_t *v, ssize_t n, unsigned slot)
{
    for (ssize_t i = 0; i < n; i++)
        if (slot >= v[i].lo && slot <= v[i].hi)
            return v[i].group;
    return "";
}

/* Names with prefix whose slots are served by two different groups. */
static int two_groups(chan_client_t *cl, const char *prefix, char *a, char *b, size_t size)
{
    chan_slot_range_t *v;
    ssize_t n = chan_cluster_slots(cl, &v, in_ms(10000));
    if (n < 0)
        return -1;
    char ga[104] = "";
    int rc = -1;
    for (int i = 0; i < 100000 && rc < 0; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.%d", prefix, i);
        const char *g = group_of(v, n, chan_slot_of(name));
        if (!*ga) {
            snprintf(ga, sizeof ga, "%s", g);
            snprintf(a, size, "%s", name);
        } else if (strcmp(g, ga)) {
            snprintf(b, size, "%s", name);
            rc = 0;
        }
    }
    free(v);
    return rc;
}

static int ops(const char *seeds)
{
    chan_client_t *cl = chan_connect(seeds, NULL, in_ms(10000));
    if (!cl) {
        printf("FAIL: connect to %s: %s\n", seeds, strerror(errno));
        return 1;
    }
    char na[64], nb[64];
    if (two_groups(cl, "ops", na, nb, sizeof na) < 0) {
        printf("FAIL: no two names in two groups: %s (%s)\n", strerror(errno), chan_errmsg());
        return 1;
    }
    chan_t *a = chan_open(cl, na, 4, 0, in_ms(10000));
    chan_t *b = chan_open(cl, nb, 4, 0, in_ms(10000));
    CHECK(a && b, "open %s and %s (two groups)", na, nb);
    if (!a || !b)
        return 1;
    CHECK(chan_send(a, "a1", 2, in_ms(5000)) == 0 && chan_send(b, "b1", 2, in_ms(5000)) == 0,
          "send to each");
    CHECK(chan_len(a) == 1 && chan_len(b) == 1 && chan_cap(a) == 4, "len and cap");

    /* a select receiving across the groups takes each value once */
    char buf[2][16];
    int got_a = 0, got_b = 0;
    for (int k = 0; k < 2; k++) {
        chan_case_t cs[2] = {
            { .ch = a, .op = CHAN_RECV, .buf = buf[0], .len = sizeof buf[0] },
            { .ch = b, .op = CHAN_RECV, .buf = buf[1], .len = sizeof buf[1] },
        };
        int i = chan_select(cs, 2, in_ms(5000));
        if (i == 0 && cs[0].n == 2 && !memcmp(buf[0], "a1", 2))
            got_a++;
        else if (i == 1 && cs[1].n == 2 && !memcmp(buf[1], "b1", 2))
            got_b++;
    }
    CHECK(got_a == 1 && got_b == 1, "select across groups received a1 and b1 once each");
    chan_case_t none[2] = {
        { .ch = a, .op = CHAN_RECV, .buf = buf[0], .len = sizeof buf[0] },
        { .ch = b, .op = CHAN_RECV, .buf = buf[1], .len = sizeof buf[1] },
    };
    int64_t t0 = chan_now();
    int i = chan_select(none, 2, in_ms(300));
    CHECK(i < 0 && errno == ETIMEDOUT && chan_now() - t0 >= 250,
          "select across groups with nothing ready waits for its deadline");
    i = chan_select(none, 2, 0);
    CHECK(i < 0 && errno == ETIMEDOUT, "select across groups with default takes default");

    /* a select sending across the groups goes where there is room */
    for (int k = 0; k < 4; k++)
        chan_send(a, "f", 1, in_ms(5000));
    chan_case_t snd[2] = {
        { .ch = a, .op = CHAN_SEND, .buf = "s", .len = 1 },
        { .ch = b, .op = CHAN_SEND, .buf = "s", .len = 1 },
    };
    i = chan_select(snd, 2, in_ms(5000));
    CHECK(i == 1 && chan_len(b) == 1 && chan_len(a) == 4,
          "select sending across groups chose the one with room");

    /* a blocked receive on one group is woken by a send through another
     * client */
    chan_client_t *cl2 = chan_connect(seeds, NULL, in_ms(10000));
    chan_t *b2 = cl2 ? chan_open(cl2, nb, CHAN_CAP_ANY, CHAN_NOCREATE, in_ms(5000)) : NULL;
    CHECK(b2 != NULL, "a second client opens %s", nb);
    char one[8];
    CHECK(chan_recv(b2, one, sizeof one, in_ms(5000)) == 1 && one[0] == 's',
          "the second client receives what the first sent");

    CHECK(chan_close(a) == 0, "close %s", na);
    int n = 0;
    while (chan_recv(a, one, sizeof one, in_ms(5000)) >= 0)
        n++;
    CHECK(n == 4 && errno == EPIPE, "a closed channel gives its 4 values, then EPIPE");
    CHECK(chan_delete(cl, nb, in_ms(5000)) == 0, "delete %s", nb);
    chan_stat_t st;
    CHECK(chan_stat(cl, nb, &st, in_ms(5000)) < 0 && errno == ENOENT, "stat of the deleted: ENOENT");
    chan_stat_t *list;
    ssize_t nl = chan_list(cl, &list, in_ms(5000));
    bool listed = false;
    for (ssize_t k = 0; k < nl; k++)
        listed |= !strcmp(list[k].name, na);
    CHECK(nl > 0 && listed, "chan_list lists channels of every group (%zd)", nl);
    free(list);

    /* a reply channel: temporary, passed by reference to another client */
    chan_t *t = chan_open_temp(cl, 1, in_ms(5000));
    char ref[512];
    ssize_t rl = t ? chan_ref(t, ref, sizeof ref) : -1;
    chan_t *t2 = rl > 0 ? chan_open_ref(cl2, ref, (size_t)rl, in_ms(5000)) : NULL;
    CHECK(t2 && chan_send(t2, "reply", 5, in_ms(5000)) == 0, "send to a temporary channel by its ref");
    CHECK(t && chan_recv(t, buf[0], sizeof buf[0], in_ms(5000)) == 5 && !memcmp(buf[0], "reply", 5),
          "its maker receives it");
    chan_release(t2);
    chan_release(t);
    chan_release(b2);
    chan_release(a);
    chan_release(b);
    chan_disconnect(cl2);
    chan_disconnect(cl);
    return failures ? 1 : 0;
}

/* ---- load ---- */

struct lane {
    chan_client_t *cl;
    chan_t *ch;
    int index;
    /* producer */
    uint64_t next;               /* the next number to send */
    _Atomic uint64_t acked_max;  /* every number < this was tried */
    uint8_t *acked;              /* acked[k]: the send of k returned OK */
    uint64_t send_errors;
    int last_errno;              /* of the last failed send */
    char last_err[200];
    /* consumer */
    uint8_t *seen;
    uint64_t got, dups_marked, dups_unmarked, out_of_order, bogus, last;
    atomic_bool done;            /* the consumer has every value acked */
    chan_t *idle;                /* a select's other case, or NULL */
    size_t cap;
};

static atomic_bool stop_producing, stop_consuming;

static void *produce(void *arg)
{
    struct lane *l = arg;
    while (!atomic_load(&stop_producing) && l->next < l->cap) {
        char v[64];
        int n = snprintf(v, sizeof v, "%d:%llu", l->index, (unsigned long long)l->next);
        if (chan_send(l->ch, v, (size_t)n, in_ms(20000)) == 0)
            l->acked[l->next] = 1;
        else {
            l->send_errors++;   /* taken or not: neither a loss nor a repeat */
            l->last_errno = errno;
            snprintf(l->last_err, sizeof l->last_err, "%s", chan_errmsg());
        }
        l->next++;
        atomic_store(&l->acked_max, l->next);
    }
    return NULL;
}

static void take(struct lane *l, const chan_val_t *v)
{
    int idx;
    unsigned long long k;
    char s[64];
    size_t len = v->len < sizeof s - 1 ? v->len : sizeof s - 1;
    memcpy(s, v->data, len);
    s[len] = 0;
    if (sscanf(s, "%d:%llu", &idx, &k) != 2 || idx != l->index || k >= l->cap) {
        l->bogus++;
        return;
    }
    if (l->seen[k]) {
        if (v->redelivered)
            l->dups_marked++;
        else
            l->dups_unmarked++;
        return;
    }
    l->seen[k] = 1;
    l->got++;
    if (!v->redelivered) {
        if (k + 1 < l->last && l->out_of_order++ < 3)
            printf("out of order: %d:%llu after %d:%llu (%s)\n", idx, k, idx,
                   (unsigned long long)l->last - 1, l->idle ? "select" : "recv");
        if (k + 1 > l->last)
            l->last = k + 1;
    }
}

static bool all_seen(const struct lane *l)
{
    uint64_t m = atomic_load(&l->acked_max);
    for (uint64_t k = 0; k < m; k++)
        if (l->acked[k] && !l->seen[k])
            return false;
    return true;
}

/* One value by a select over the lane's channel and its idle partner (a
 * channel nobody sends to, in the other half of the slots): a select
 * across groups while their slots move.  1 (a value in *v), 0 (none by
 * the deadline), -1 (failed). */
static ssize_t select_one(struct lane *l, chan_val_t *v)
{
    char buf[64];
    chan_case_t cs[2] = {
        { .ch = l->idle, .op = CHAN_RECV, .buf = buf, .len = sizeof buf },
        { .ch = l->ch, .op = CHAN_RECV, .buf = buf, .len = sizeof buf },
    };
    int i = chan_select(cs, 2, in_ms(200));
    if (i < 0)
        return errno == ETIMEDOUT ? 0 : -1;
    if (i != 1 || cs[1].err) {
        l->bogus++;
        return 0;
    }
    v->data = malloc(cs[1].n ? cs[1].n : 1);
    memcpy(v->data, buf, cs[1].n);
    v->len = cs[1].n;
    v->redelivered = cs[1].redelivered;
    return 1;
}

static void *consume(void *arg)
{
    struct lane *l = arg;
    chan_val_t vals[16];
    for (;;) {
        ssize_t n = l->idle ? select_one(l, vals) : chan_recv_many(l->ch, vals, 16, in_ms(200));
        for (ssize_t i = 0; i < n; i++) {
            take(l, &vals[i]);
            free(vals[i].data);
        }
        if (n <= 0 && atomic_load(&stop_consuming))
            break;
        if (n <= 0 && atomic_load(&stop_producing) && all_seen(l))
            break;
    }
    atomic_store(&l->done, true);
    return NULL;
}

static int load(const char *seeds, int seconds, int nchan)
{
    chan_client_t *cl = chan_connect(seeds, NULL, in_ms(10000));
    if (!cl) {
        printf("FAIL: connect to %s: %s\n", seeds, strerror(errno));
        return 1;
    }
    struct lane *ls = calloc((size_t)nchan, sizeof *ls);
    pthread_t *pt = calloc(2 * (size_t)nchan, sizeof *pt);
    for (int i = 0; i < nchan; i++) {
        struct lane *l = &ls[i];
        char name[64];
        snprintf(name, sizeof name, "load.%d", i);
        if (i % 2) {   /* odd lanes receive by a select across groups */
            char idle[64];
            int k = 0;
            do
                snprintf(idle, sizeof idle, "idle.%d.%d", i, k++);
            while ((chan_slot_of(idle) < 512) == (chan_slot_of(name) < 512));
            l->idle = chan_open(cl, idle, 1, 0, in_ms(10000));
            if (!l->idle) {
                printf("FAIL: open %s: %s (%s)\n", idle, strerror(errno), chan_errmsg());
                return 1;
            }
        }
        l->cl = cl;
        l->index = i;
        l->cap = 1u << 20;
        l->acked = calloc(l->cap, 1);
        l->seen = calloc(l->cap, 1);
        l->ch = chan_open(cl, name, 64, 0, in_ms(10000));
        if (!l->ch) {
            printf("FAIL: open %s: %s (%s)\n", name, strerror(errno), chan_errmsg());
            return 1;
        }
    }
    for (int i = 0; i < nchan; i++) {
        pthread_create(&pt[2 * i], NULL, produce, &ls[i]);
        pthread_create(&pt[2 * i + 1], NULL, consume, &ls[i]);
    }
    sleep((unsigned)seconds);
    atomic_store(&stop_producing, true);
    for (int i = 0; i < nchan; i++)
        pthread_join(pt[2 * i], NULL);
    /* the consumers drain, for up to 30 s */
    int64_t until = in_ms(30000);
    for (;;) {
        bool done = true;
        for (int i = 0; i < nchan; i++)
            done &= atomic_load(&ls[i].done);
        if (done || chan_now() > until)
            break;
        usleep(50000);
    }
    atomic_store(&stop_consuming, true);
    for (int i = 0; i < nchan; i++)
        pthread_join(pt[2 * i + 1], NULL);
    uint64_t acked = 0, lost = 0, got = 0, dm = 0, du = 0, ooo = 0, bogus = 0, errs = 0;
    for (int i = 0; i < nchan; i++) {
        struct lane *l = &ls[i];
        for (uint64_t k = 0; k < l->next; k++) {
            acked += l->acked[k];
            if (l->acked[k] && !l->seen[k]) {
                if (lost < 5)
                    printf("lost: %d:%llu\n", i, (unsigned long long)k);
                lost++;
            }
        }
        got += l->got;
        dm += l->dups_marked;
        du += l->dups_unmarked;
        ooo += l->out_of_order;
        bogus += l->bogus;
        errs += l->send_errors;
        if (l->send_errors)
            printf("channel %d: %llu sends failed, the last with %s (%s)\n", i,
                   (unsigned long long)l->send_errors, strerror(l->last_errno), l->last_err);
    }
    printf("load: %d channels, %llu sends answered OK, %llu failed; received %llu, lost %llu, "
           "repeats marked %llu, unmarked %llu, out of order %llu, unknown %llu\n", nchan,
           (unsigned long long)acked, (unsigned long long)errs, (unsigned long long)got,
           (unsigned long long)lost, (unsigned long long)dm, (unsigned long long)du,
           (unsigned long long)ooo, (unsigned long long)bogus);
    CHECK(acked > 0 && lost == 0 && du == 0 && ooo == 0 && bogus == 0,
          "nothing lost, repeated unmarked or out of order under moves");
    CHECK(errs == 0, "no send failed: a moving slot makes calls wait, not fail");
    for (int i = 0; i < nchan; i++) {
        chan_release(ls[i].idle);
        chan_release(ls[i].ch);
        free(ls[i].acked);
        free(ls[i].seen);
    }
    free(ls);
    free(pt);
    chan_disconnect(cl);
    return failures ? 1 : 0;
}

static int wait_for_group(const char *seeds, const char *known, const char *name, const char *go)
{
    chan_client_t *cl = chan_connect(seeds, NULL, chan_now() + 10000);
    chan_t *k = cl ? chan_open(cl, known, 1, 0, chan_now() + 10000) : NULL;
    CHECK(k, "open %s%s%s", known, k ? "" : ": ", k ? "" : strerror(errno));
    if (!k)
        return 1;
    chan_release(k);
    printf("ready\n");
    while (access(go, F_OK) != 0)
        usleep(20000);
    int64_t t0 = chan_now();
    chan_t *ch = chan_open(cl, name, 1, 0, t0 + 30000);
    CHECK(ch,
          "a client that knew the group's nodes opened %s once the group was back (%lld ms)%s%s",
          name, (long long)(chan_now() - t0), ch ? "" : ": ", ch ? "" : chan_errmsg());
    chan_release(ch);
    chan_disconnect(cl);
    return failures ? 1 : 0;
}

/* One frame written; 0, or -1 if the connection failed. */
static int write_request(int fd, const Chan__Request *rq)
{
    uint8_t *buf = malloc(chan_frame_size_request(rq));
    size_t n = chan_frame_encode_request(rq, buf);
    ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
    free(buf);
    return w == (ssize_t)n ? 0 : -1;
}

/* The next reply frame's status and message (buf holds it); -1 if the
 * connection closed first or the frame is not a reply. */
static int read_reply(int fd, uint8_t *buf, size_t size, Chan__Status *st, char *msg,
                      size_t msgsize)
{
    size_t got = 0;
    for (;;) {
        uint64_t body;
        size_t hdr;
        int h = chan_frame_header(buf, got, size, &body, &hdr);
        if (h < 0)
            return -1;
        if (h == CHAN_FRAME_OK && got >= hdr + body) {
            chan_arena_t a;
            chan_arena_init(&a);
            Chan__Reply *r = chan_frame_decode_reply(&a, buf + hdr, body);
            if (r) {
                *st = r->has_status ? r->status : CHAN__STATUS__OK;
                snprintf(msg, msgsize, "%s", r->message ? r->message : "");
            }
            chan_arena_free(&a);
            return r ? 0 : -1;
        }
        ssize_t n = recv(fd, buf + got, size - got, 0);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
}

static int adopt(const char *addr, unsigned lo, unsigned hi, uint64_t version, uint64_t term,
                 uint64_t attempt, const char *name, const char *value)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host)
        return 2;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        printf("connect %s: %s\n", addr, strerror(errno));
        return 1;
    }
    Chan__Hello h = CHAN__HELLO__INIT;
    h.has_version = true;
    h.version = CHAN_PROTOCOL_VERSION;
    Chan__Request rq = CHAN__REQUEST__INIT;
    rq.has_id = true;
    rq.id = 1;
    rq.op_case = CHAN__REQUEST__OP_HELLO;
    rq.hello = &h;
    static uint8_t buf[65536];
    Chan__Status st = CHAN__STATUS__OK;
    char msg[512] = "";
    if (write_request(fd, &rq) < 0 || read_reply(fd, buf, sizeof buf, &st, msg, sizeof msg) < 0 ||
        st != CHAN__STATUS__OK) {
        printf("Hello failed: %s\n", msg);
        close(fd);
        return 1;
    }
    ProtobufCBinaryData val = { strlen(value), (uint8_t *)value };
    uint32_t redelivered = 0;
    Chan__AdoptChannel ac = CHAN__ADOPT_CHANNEL__INIT;
    Chan__AdoptChannel *acs[1] = { &ac };
    ac.has_name = ac.has_capacity = ac.has_closed = true;
    ac.name.data = (uint8_t *)name;
    ac.name.len = strlen(name);
    ac.capacity = 4;
    ac.n_values = ac.n_redelivered = 1;
    ac.values = &val;
    ac.redelivered = &redelivered;
    Chan__Adopt a = CHAN__ADOPT__INIT;
    a.has_lo = a.has_hi = a.has_map_version = a.has_attempt = a.has_first = a.has_last = true;
    a.has_term = true;
    a.lo = lo;
    a.hi = hi;
    a.map_version = version;
    a.term = term;
    a.attempt = attempt;
    a.first = a.last = true;
    a.n_channels = 1;
    a.channels = acs;
    rq.id = 2;
    rq.op_case = CHAN__REQUEST__OP_ADOPT;
    rq.adopt = &a;
    if (write_request(fd, &rq) < 0 || read_reply(fd, buf, sizeof buf, &st, msg, sizeof msg) < 0) {
        printf("no answer to the Adopt\n");
        close(fd);
        return 1;
    }
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(&chan__status__descriptor,
                                                                        (int)st);
    printf("%s %s\n", ev ? ev->name : "?", msg);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && !strcmp(argv[1], "ops"))
        return ops(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "load"))
        return load(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 6 && !strcmp(argv[1], "wait"))
        return wait_for_group(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 10 && !strcmp(argv[1], "adopt"))
        return adopt(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]),
                     strtoull(argv[5], NULL, 10), strtoull(argv[6], NULL, 10),
                     strtoull(argv[7], NULL, 10), argv[8], argv[9]);
    fprintf(stderr, "usage: cluster_client ops SEEDS | load SEEDS SECONDS NCHAN |"
                    " wait SEEDS KNOWN NAME GO |\n"
                    "       cluster_client adopt HOST:PORT LO HI VERSION TERM ATTEMPT NAME VALUE\n");
    return 2;
}

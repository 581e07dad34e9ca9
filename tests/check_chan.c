/*
 * check_chan.c - channels: Go's rules for send, receive and close in every
 * state (chan.h), FIFO order, values, sizes, errors and references.
 * Each test runs its actors as plain threads and as goroutines (the loop
 * index is the mode) and the binary runs with 1 and with 2 workers.
 *
 * Channels come from rt_make(): make check runs this binary with local
 * channels, with every channel on one chand, and with channels split over
 * two daemons and local ones (RT_CHANNELS, rt_test.h): a remote channel
 * must be just a channel.  Local-only, and why:
 *   - bad_arguments' chan_make(SIZE_MAX): about chan_make's own allocation
 *     (the channel it checks the other arguments on comes from rt_make);
 *   - references: the last release frees a local channel and the values
 *     queued in it (inline and malloc()ed); a remote channel and its values
 *     live on in chand, so there is nothing of that to check remotely.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rt_test.h"

struct peer {
    chan_t *ch;
    long val;
    int64_t delay;          /* ms to sleep before acting */
    _Atomic int started;    /* set just before the operation */
    int rc;
    int err;
    long got;
};

static void peer_recv(void *p)
{
    struct peer *pr = p;
    if (pr->delay)
        chan_sleep(chan_now() + pr->delay);
    atomic_store(&pr->started, 1);
    errno = 0;
    pr->rc = (int)chan_recv(pr->ch, &pr->got, sizeof pr->got, -1);
    pr->err = errno;
}

static void peer_send(void *p)
{
    struct peer *pr = p;
    if (pr->delay)
        chan_sleep(chan_now() + pr->delay);
    atomic_store(&pr->started, 1);
    errno = 0;
    pr->rc = chan_send(pr->ch, &pr->val, sizeof pr->val, -1);
    pr->err = errno;
}

/* ---- send ------------------------------------------------------------ */

/* open, unbuffered: send blocks until a receiver takes the value */
RT_TEST(unbuffered_send_blocks_until_received)
{
    chan_t *c = rt_make(0);
    struct peer pr = { .ch = c, .delay = 30 };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, peer_recv, &pr);
    long v = 42;
    ck_assert_int_eq(chan_send(c, &v, sizeof v, chan_now() + 5000), 0);
    ck_assert_int_eq(atomic_load(&pr.started), 1);   /* not before the receiver came */
    rt_join(&g);
    ck_assert_int_eq(pr.rc, sizeof(long));
    ck_assert_int_eq(pr.got, 42);
    chan_release(c);
}

static void send_timeout_body(void *p)
{
    size_t cap = *(size_t *)p;
    chan_t *c = rt_make(cap);
    long v = 1;
    for (size_t i = 0; i < cap; i++)
        ck_assert_int_eq(chan_send(c, &v, sizeof v, 0), 0);
    ck_assert_int_eq(chan_send(c, &v, sizeof v, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_send(c, &v, sizeof v, t0 + 30), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(rt_ms_since(t0), 30);
    ck_assert_int_eq(chan_len(c), (ssize_t)cap);       /* nothing left behind */
    ck_assert_int_eq(rt_senders(c), 0);
    chan_release(c);
}

/* unbuffered without receiver, buffered when full: send blocks (times out) */
RT_TEST(send_blocks_without_receiver_or_space)
{
    size_t caps[] = { 0, 1, 3 };
    for (size_t i = 0; i < 3; i++)
        rt_run(mode, send_timeout_body, &caps[i]);
}

/* open, buffered: send completes at once while there is space, then blocks
 * until a receiver makes room (backpressure) */
RT_TEST(buffered_send_backpressure)
{
    chan_t *c = rt_make(3);
    for (long v = 1; v <= 3; v++)
        ck_assert_int_eq(chan_send(c, &v, sizeof v, 0), 0);
    ck_assert_int_eq(chan_len(c), 3);
    ck_assert_int_eq(chan_cap(c), 3);
    struct peer pr = { .ch = c, .delay = 30 };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, peer_recv, &pr);
    long v = 4;
    ck_assert_int_eq(chan_send(c, &v, sizeof v, chan_now() + 5000), 0);
    ck_assert_int_eq(atomic_load(&pr.started), 1);
    rt_join(&g);
    ck_assert_int_eq(pr.got, 1);
    for (long want = 2; want <= 4; want++)
        ck_assert_int_eq(rt_recv_long(c), want);
    chan_release(c);
}

/* a non-blocking send succeeds when a receiver is already waiting */
RT_TEST(nonblocking_send_to_waiting_receiver)
{
    chan_t *c = rt_make(0);
    struct peer pr = { .ch = c };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, peer_recv, &pr);
    rt_wait_receivers(c, 1);
    long v = 7;
    ck_assert_int_eq(chan_send(c, &v, sizeof v, 0), 0);
    rt_join(&g);
    ck_assert_int_eq(pr.got, 7);
    chan_release(c);
}

/* closed: send fails at once with EPIPE, whatever the deadline */
RT_TEST(send_on_closed_fails)
{
    for (size_t cap = 0; cap < 3; cap += 2) {
        chan_t *c = rt_make(cap);
        ck_assert_int_eq(chan_close(c), 0);
        long v = 1;
        int64_t deadlines[] = { 0, chan_now() + 1000, -1 };
        for (int d = 0; d < 3; d++) {
            errno = 0;
            ck_assert_int_eq(chan_send(c, &v, sizeof v, deadlines[d]), -1);
            ck_assert_int_eq(errno, EPIPE);
        }
        chan_release(c);
    }
}

/* closed: a sender blocked at close time fails too, its value not delivered */
RT_TEST(blocked_sender_fails_at_close)
{
    for (size_t cap = 0; cap < 2; cap++) {
        chan_t *c = rt_make(cap);
        long v = 5;
        for (size_t i = 0; i < cap; i++)
            ck_assert_int_eq(chan_send(c, &v, sizeof v, 0), 0);
        struct peer pr[3];
        rt_group_t g;
        rt_group_init(&g);
        for (int i = 0; i < 3; i++) {
            pr[i] = (struct peer){ .ch = c, .val = 100 + i };
            rt_spawn(&g, mode, peer_send, &pr[i]);
        }
        rt_wait_senders(c, 3);
        ck_assert_int_eq(chan_close(c), 0);
        rt_join(&g);
        for (int i = 0; i < 3; i++) {
            ck_assert_int_eq(pr[i].rc, -1);
            ck_assert_int_eq(pr[i].err, EPIPE);
        }
        /* only the values buffered before the close come out */
        for (size_t i = 0; i < cap; i++)
            ck_assert_int_eq(rt_recv_long(c), 5);
        long got;
        ck_assert_int_eq(chan_recv(c, &got, sizeof got, 0), -1);
        ck_assert_int_eq(errno, EPIPE);
        chan_release(c);
    }
}

/* ---- recv ------------------------------------------------------------ */

/* open: recv blocks until a sender offers a value (unbuffered) or while the
 * buffer is empty (buffered) */
RT_TEST(recv_blocks_until_sent)
{
    for (size_t cap = 0; cap < 3; cap += 2) {
        chan_t *c = rt_make(cap);
        struct peer pr = { .ch = c, .val = 99, .delay = 30 };
        rt_group_t g;
        rt_group_init(&g);
        rt_spawn(&g, mode, peer_send, &pr);
        long got = 0;
        ck_assert_int_eq(chan_recv(c, &got, sizeof got, chan_now() + 5000), sizeof got);
        ck_assert_int_eq(atomic_load(&pr.started), 1);
        ck_assert_int_eq(got, 99);
        rt_join(&g);
        ck_assert_int_eq(pr.rc, 0);
        chan_release(c);
    }
}

static void recv_timeout_body(void *p)
{
    size_t cap = *(size_t *)p;
    chan_t *c = rt_make(cap);
    long got;
    ck_assert_int_eq(chan_recv(c, &got, sizeof got, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    int64_t t0 = chan_now();
    ck_assert_int_eq(chan_recv(c, &got, sizeof got, t0 + 30), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(rt_ms_since(t0), 30);
    ck_assert_int_eq(rt_receivers(c), 0);
    void *val = (void *)1;
    ck_assert_int_eq(chan_recv_alloc(c, &val, t0 + 10), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_ptr_null(val);
    chan_release(c);
}

RT_TEST(recv_times_out_when_nothing_sent)
{
    size_t caps[] = { 0, 4 };
    for (size_t i = 0; i < 2; i++)
        rt_run(mode, recv_timeout_body, &caps[i]);
}

/* a non-blocking receive succeeds when a sender is already waiting */
RT_TEST(nonblocking_recv_from_waiting_sender)
{
    chan_t *c = rt_make(0);
    struct peer pr = { .ch = c, .val = 11 };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, peer_send, &pr);
    rt_wait_senders(c, 1);
    long got = 0;
    ck_assert_int_eq(chan_recv(c, &got, sizeof got, 0), sizeof got);
    ck_assert_int_eq(got, 11);
    rt_join(&g);
    ck_assert_int_eq(pr.rc, 0);
    chan_release(c);
}

/* closed: recv returns the queued values first, then EPIPE at once, forever */
RT_TEST(recv_on_closed_drains_then_fails)
{
    chan_t *c = rt_make(3);
    for (long v = 1; v <= 2; v++)
        rt_send_long(c, v);
    ck_assert_int_eq(chan_close(c), 0);
    ck_assert_int_eq(rt_recv_long(c), 1);
    ck_assert_int_eq(rt_recv_long(c), 2);
    for (int i = 0; i < 5; i++) {
        long got;
        errno = 0;
        ck_assert_int_eq(chan_recv(c, &got, sizeof got, i % 2 ? -1 : 0), -1);
        ck_assert_int_eq(errno, EPIPE);
    }
    void *val;
    ck_assert_int_eq(chan_recv_alloc(c, &val, -1), -1);
    ck_assert_int_eq(errno, EPIPE);
    chan_val_t vals[2];
    ck_assert_int_eq(chan_recv_many(c, vals, 2, -1), -1);
    ck_assert_int_eq(errno, EPIPE);
    chan_release(c);
}

/* close wakes every blocked receiver (EPIPE) */
RT_TEST(close_wakes_all_receivers)
{
    for (size_t cap = 0; cap < 3; cap += 2) {
        chan_t *c = rt_make(cap);
        struct peer pr[5];
        rt_group_t g;
        rt_group_init(&g);
        for (int i = 0; i < 5; i++) {
            pr[i] = (struct peer){ .ch = c };
            rt_spawn(&g, mode, peer_recv, &pr[i]);
        }
        rt_wait_receivers(c, 5);
        ck_assert_int_eq(chan_close(c), 0);
        rt_join(&g);
        for (int i = 0; i < 5; i++) {
            ck_assert_int_eq(pr[i].rc, -1);
            ck_assert_int_eq(pr[i].err, EPIPE);
        }
        chan_release(c);
    }
}

/* closing twice is an error, not a crash */
RT_TEST(double_close_fails)
{
    chan_t *c = rt_make((size_t)mode);
    ck_assert_int_eq(chan_close(c), 0);
    errno = 0;
    ck_assert_int_eq(chan_close(c), -1);
    ck_assert_int_eq(errno, EPIPE);
    ck_assert_int_eq(chan_close(c), -1);
    chan_release(c);
}

/* ---- FIFO -------------------------------------------------------------- */

struct stream {
    chan_t *ch;
    long n;
    bool ok;
};

static void stream_send(void *p)
{
    struct stream *s = p;
    for (long i = 0; i < s->n; i++)
        rt_send_long(s->ch, i);
}

static void stream_recv(void *p)
{
    struct stream *s = p;
    s->ok = true;
    for (long i = 0; i < s->n; i++)
        if (rt_recv_long(s->ch) != i)
            s->ok = false;
}

/* values leave in the order they entered */
RT_TEST(values_fifo)
{
    size_t caps[] = { 0, 1, 7, 100 };
    for (size_t k = 0; k < 4; k++) {
        chan_t *c = rt_make(caps[k]);
        /* every value costs two round trips to chand remotely */
        struct stream s = { .ch = c, .n = rt_count(2000, 1000) };
        rt_group_t g;
        rt_group_init(&g);
        rt_spawn(&g, mode, stream_send, &s);
        rt_spawn(&g, mode, stream_recv, &s);
        rt_join(&g);
        ck_assert(s.ok);
        chan_release(c);
    }
}

/* blocked receivers are served first come, first served */
RT_TEST(receivers_fifo)
{
    for (size_t cap = 0; cap < 3; cap += 2) {
        chan_t *c = rt_make(cap);
        struct peer pr[5];
        rt_group_t g;
        rt_group_init(&g);
        for (size_t i = 0; i < 5; i++) {
            pr[i] = (struct peer){ .ch = c };
            rt_spawn(&g, mode, peer_recv, &pr[i]);
            rt_wait_receivers(c, i + 1);
        }
        for (long v = 0; v < 5; v++)
            rt_send_long(c, v);
        rt_join(&g);
        for (long i = 0; i < 5; i++)
            ck_assert_int_eq(pr[i].got, i);
        chan_release(c);
    }
}

/* blocked senders are served first come, first served */
RT_TEST(senders_fifo)
{
    for (size_t cap = 0; cap < 3; cap += 2) {
        chan_t *c = rt_make(cap);
        long fill = -1;
        for (size_t i = 0; i < cap; i++)
            rt_send_long(c, fill);
        struct peer pr[5];
        rt_group_t g;
        rt_group_init(&g);
        for (size_t i = 0; i < 5; i++) {
            pr[i] = (struct peer){ .ch = c, .val = (long)i };
            rt_spawn(&g, mode, peer_send, &pr[i]);
            rt_wait_senders(c, i + 1);
        }
        for (size_t i = 0; i < cap; i++)
            ck_assert_int_eq(rt_recv_long(c), -1);
        for (long v = 0; v < 5; v++)
            ck_assert_int_eq(rt_recv_long(c), v);
        rt_join(&g);
        chan_release(c);
    }
}

/* ---- values and sizes ---------------------------------------------------- */

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31 + seed);
}

struct sized {
    chan_t *ch;
    const size_t *sizes;
    size_t n;
    bool ok;
};

static void sized_send(void *p)
{
    struct sized *s = p;
    for (size_t k = 0; k < s->n; k++) {
        unsigned char *buf = malloc(s->sizes[k] + 1);
        fill_pattern(buf, s->sizes[k], (unsigned)k);
        ck_assert_int_eq(chan_send(s->ch, buf, s->sizes[k], -1), 0);
        memset(buf, 0xee, s->sizes[k]);     /* the channel kept its own copy */
        free(buf);
    }
}

static void sized_recv(void *p)
{
    struct sized *s = p;
    s->ok = true;
    for (size_t k = 0; k < s->n; k++) {
        unsigned char *want = malloc(s->sizes[k] + 1);
        fill_pattern(want, s->sizes[k], (unsigned)k);
        void *val = NULL;
        ssize_t n = chan_recv_alloc(s->ch, &val, -1);
        if (n != (ssize_t)s->sizes[k] || !val || memcmp(val, want, s->sizes[k]))
            s->ok = false;
        free(val);
        free(want);
    }
}

/* values of every size, inline and not, are copied at send and arrive
 * intact; chan_recv_alloc hands over a buffer even for empty values */
RT_TEST(values_any_size)
{
    static const size_t sizes[] = { 0, 1, 8, 15, 16, 17, 64, 1000, 100000, 0, 3 };
    for (size_t cap = 0; cap < 3; cap += 2) {
        chan_t *c = rt_make(cap);
        struct sized s = { .ch = c, .sizes = sizes, .n = sizeof sizes / sizeof *sizes };
        rt_group_t g;
        rt_group_init(&g);
        rt_spawn(&g, mode, sized_send, &s);
        rt_spawn(&g, mode, sized_recv, &s);
        rt_join(&g);
        ck_assert(s.ok);
        chan_release(c);
    }
}

/* a value longer than the buffer is neither truncated nor lost: EMSGSIZE,
 * and it stays at the head, untouched */
RT_TEST(emsgsize_leaves_value_at_head)
{
    const char msg[] = "hello, world";      /* 13 bytes with the NUL */
    /* buffered */
    chan_t *c = rt_make(2);
    ck_assert_int_eq(chan_send(c, msg, sizeof msg, 0), 0);
    char small[4] = "xyz", big[32];
    errno = 0;
    ck_assert_int_eq(chan_recv(c, small, sizeof small, -1), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    ck_assert_str_eq(small, "xyz");
    ck_assert_int_eq(chan_len(c), 1);
    ck_assert_int_eq(chan_recv(c, big, sizeof big, 0), sizeof msg);
    ck_assert_str_eq(big, msg);
    chan_release(c);

    /* unbuffered, blocked sender: it stays blocked with its value */
    c = rt_make(0);
    struct peer pr = { .ch = c };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, peer_send, &pr);        /* sends a long: 8 bytes */
    rt_wait_senders(c, 1);
    ck_assert_int_eq(chan_recv(c, small, sizeof small, 0), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    ck_assert_int_eq(rt_senders(c), 1);
    long got;
    ck_assert_int_eq(chan_recv(c, &got, sizeof got, 0), sizeof got);
    rt_join(&g);
    ck_assert_int_eq(pr.rc, 0);
    chan_release(c);
}

struct small_recv {
    chan_t *ch;
    size_t size;
    int rc, err;
};

static void small_recv_body(void *p)
{
    struct small_recv *s = p;
    char buf[64];
    errno = 0;
    s->rc = (int)chan_recv(s->ch, buf, s->size, -1);
    s->err = errno;
}

/* a blocked receiver offered a value too long for it fails with EMSGSIZE and
 * the sender goes on to the next receiver (or waits) */
RT_TEST(emsgsize_parked_receiver)
{
    chan_t *c = rt_make(0);
    struct small_recv a = { .ch = c, .size = 4 }, b = { .ch = c, .size = 64 };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, small_recv_body, &a);
    rt_wait_receivers(c, 1);
    rt_spawn(&g, mode, small_recv_body, &b);
    rt_wait_receivers(c, 2);
    char msg[20] = "twenty bytes value";
    ck_assert_int_eq(chan_send(c, msg, sizeof msg, 0), 0);
    rt_join(&g);
    ck_assert_int_eq(a.rc, -1);
    ck_assert_int_eq(a.err, EMSGSIZE);
    ck_assert_int_eq(b.rc, (int)sizeof msg);

    /* only a small receiver: it fails, and the send then waits */
    rt_group_init(&g);
    rt_spawn(&g, mode, small_recv_body, &a);
    rt_wait_receivers(c, 1);
    ck_assert_int_eq(chan_send(c, msg, sizeof msg, chan_now() + 20), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    rt_join(&g);
    ck_assert_int_eq(a.err, EMSGSIZE);
    chan_release(c);
}

/* recv_many takes at least one and then whatever is there */
RT_TEST(recv_many_and_send_many)
{
    chan_t *c = rt_make(4);
    long vs[5] = { 10, 11, 12, 13, 14 };
    chan_val_t in[5];
    for (int i = 0; i < 5; i++)
        in[i] = (chan_val_t){ .data = &vs[i], .len = sizeof vs[i] };
    ck_assert_int_eq(chan_send_many(c, in, 5, 0), 4);     /* room for 4 */
    chan_val_t out[8];
    ck_assert_int_eq(chan_recv_many(c, out, 3, 0), 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(out[i].len, sizeof(long));
        ck_assert_int_eq(*(long *)out[i].data, 10 + i);
        free(out[i].data);
    }
    ck_assert_int_eq(chan_recv_many(c, out, 8, 0), 1);
    ck_assert_int_eq(*(long *)out[0].data, 13);
    free(out[0].data);
    ck_assert_int_eq(chan_recv_many(c, out, 8, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_eq(chan_send_many(c, in, 0, 0), 0);
    chan_close(c);
    ck_assert_int_eq(chan_send_many(c, in, 2, 0), -1);
    ck_assert_int_eq(errno, EPIPE);
    chan_release(c);
}

/* bad arguments fail with EINVAL, never crash */
RT_TEST(bad_arguments)
{
    long v = 0;
    void *val;
    errno = 0;
    ck_assert_int_eq(chan_send(NULL, &v, sizeof v, 0), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(chan_recv(NULL, &v, sizeof v, 0), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(chan_recv_alloc(NULL, &val, 0), -1);
    ck_assert_int_eq(chan_close(NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    chan_t *c = rt_make(1);
    ck_assert_int_eq(chan_send(c, NULL, 5, 0), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(chan_recv(c, NULL, 5, 0), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(chan_recv_alloc(c, NULL, 0), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(chan_send(c, NULL, 0, 0), 0);     /* empty value */
    ck_assert_int_eq(chan_recv(c, NULL, 0, 0), 0);
    ck_assert_ptr_null(chan_make(SIZE_MAX));         /* local-only: see the top */
    ck_assert_int_eq(errno, ENOMEM);
    chan_release(NULL);
    chan_release(c);
}

/* references: the last release frees the channel and its queued values
 * (ASan/Valgrind would report a leak or a use after free) */
RT_TEST(references)
{
    chan_t *c = chan_make(3);                        /* local-only: see the top */
    char big[100];
    memset(big, 'x', sizeof big);
    ck_assert_int_eq(chan_send(c, big, sizeof big, 0), 0);
    ck_assert_int_eq(chan_send(c, big, 5, 0), 0);
    ck_assert_ptr_eq(chan_retain(c), c);
    chan_release(c);
    ck_assert_int_eq(chan_len(c), 2);
    chan_release(c);
}

/* ---- threads and goroutines together ------------------------------------ */

/* a plain thread and a goroutine talk over unbuffered channels */
RT_TEST(thread_goroutine_pingpong)
{
    chan_t *c = rt_make(0);
    struct stream s = { .ch = c, .n = rt_count(20000, 4000) };
    rt_group_t g;
    rt_group_init(&g);
    rt_spawn(&g, mode, stream_send, &s);
    rt_spawn(&g, !mode, stream_recv, &s);
    rt_join(&g);
    ck_assert(s.ok);
    chan_release(c);
}

Suite *chan_suite(void);

Suite *chan_suite(void)
{
    Suite *s = suite_create("chan");
    TCase *tc = tcase_create("semantics");
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, unbuffered_send_blocks_until_received, 0, MODES);
    tcase_add_loop_test(tc, send_blocks_without_receiver_or_space, 0, MODES);
    tcase_add_loop_test(tc, buffered_send_backpressure, 0, MODES);
    tcase_add_loop_test(tc, nonblocking_send_to_waiting_receiver, 0, MODES);
    tcase_add_loop_test(tc, send_on_closed_fails, 0, MODES);
    tcase_add_loop_test(tc, blocked_sender_fails_at_close, 0, MODES);
    tcase_add_loop_test(tc, recv_blocks_until_sent, 0, MODES);
    tcase_add_loop_test(tc, recv_times_out_when_nothing_sent, 0, MODES);
    tcase_add_loop_test(tc, nonblocking_recv_from_waiting_sender, 0, MODES);
    tcase_add_loop_test(tc, recv_on_closed_drains_then_fails, 0, MODES);
    tcase_add_loop_test(tc, close_wakes_all_receivers, 0, MODES);
    tcase_add_loop_test(tc, double_close_fails, 0, MODES);
    suite_add_tcase(s, tc);

    tc = tcase_create("order");
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, values_fifo, 0, MODES);
    tcase_add_loop_test(tc, receivers_fifo, 0, MODES);
    tcase_add_loop_test(tc, senders_fifo, 0, MODES);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, values_any_size, 0, MODES);
    tcase_add_loop_test(tc, emsgsize_leaves_value_at_head, 0, MODES);
    tcase_add_loop_test(tc, emsgsize_parked_receiver, 0, MODES);
    tcase_add_loop_test(tc, recv_many_and_send_many, 0, MODES);
    tcase_add_loop_test(tc, bad_arguments, 0, MODES);
    tcase_add_loop_test(tc, references, 0, MODES);
    tcase_add_loop_test(tc, thread_goroutine_pingpong, 0, MODES);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return rt_main(chan_suite);
}

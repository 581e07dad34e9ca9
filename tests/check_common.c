/*
 * check_common.c - unit tests of the helpers chand and libchan share
 * (common/): the deadline heap, sizes and durations.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chan_heap.h"
#include "chan_units.h"

/* ---- the heap ---- */

struct item {
    int tag;
    struct chan_heap_node node;
};

static struct item *item_of(struct chan_heap_node *n)
{
    return chan_heap_entry(n, struct item, node);
}

static void push_key(struct chan_heap *h, struct item *it, int64_t key)
{
    it->node.key = key;
    ck_assert_int_eq(chan_heap_push(h, &it->node), 0);
    ck_assert(chan_heap_linked(&it->node));
    ck_assert(chan_heap_valid(h));
}

START_TEST(t_heap_pop_order)
{
    struct chan_heap h = CHAN_HEAP_INIT;
    ck_assert_ptr_null(chan_heap_top(&h));
    ck_assert_ptr_null(chan_heap_pop(&h));
    const int64_t keys[] = { 50, -1, 7, 7, 300, 0, 12, 7, INT64_MAX, INT64_MIN, 99, 1 };
    enum { N = sizeof keys / sizeof keys[0] };
    struct item items[N];
    for (int i = 0; i < N; i++) {
        items[i].tag = i;
        chan_heap_node_init(&items[i].node);
        ck_assert(!chan_heap_linked(&items[i].node));
        push_key(&h, &items[i], keys[i]);
    }
    ck_assert_uint_eq(h.len, N);
    ck_assert_int_eq(chan_heap_top(&h)->key, INT64_MIN);
    int64_t prev = INT64_MIN;
    for (int i = 0; i < N; i++) {
        struct chan_heap_node *n = chan_heap_pop(&h);
        ck_assert_ptr_nonnull(n);
        ck_assert(!chan_heap_linked(n));
        ck_assert_int_ge(n->key, prev);
        ck_assert_int_eq(n->key, keys[item_of(n)->tag]);
        ck_assert(chan_heap_valid(&h));
        prev = n->key;
    }
    ck_assert_ptr_null(chan_heap_pop(&h));
    ck_assert_uint_eq(h.len, 0);
    chan_heap_free(&h);
    ck_assert_ptr_null(h.v);
}
END_TEST

START_TEST(t_heap_remove_anywhere)
{
    struct chan_heap h = CHAN_HEAP_INIT;
    enum { N = 31 };
    struct item items[N];
    for (int i = 0; i < N; i++) {
        items[i].tag = i;
        chan_heap_node_init(&items[i].node);
        push_key(&h, &items[i], (i * 17) % N);   /* 0..30, shuffled */
    }
    /* Out of the middle: a node with children, then a leaf, then the top,
     * then the last in the array. */
    struct chan_heap_node *mid = h.v[5], *leaf = h.v[h.len - 3], *top = h.v[0];
    chan_heap_remove(&h, mid);
    ck_assert(!chan_heap_linked(mid));
    ck_assert(chan_heap_valid(&h));
    chan_heap_remove(&h, leaf);
    ck_assert(chan_heap_valid(&h));
    chan_heap_remove(&h, top);
    ck_assert(chan_heap_valid(&h));
    struct chan_heap_node *last = h.v[h.len - 1];
    chan_heap_remove(&h, last);
    ck_assert(chan_heap_valid(&h));
    ck_assert_uint_eq(h.len, N - 4);
    /* Removing a node in no heap does nothing. */
    chan_heap_remove(&h, mid);
    ck_assert_uint_eq(h.len, N - 4);
    ck_assert(chan_heap_valid(&h));
    /* A removed node goes back in with another key. */
    mid->key = -5;
    ck_assert_int_eq(chan_heap_push(&h, mid), 0);
    ck_assert_ptr_eq(chan_heap_top(&h), mid);
    /* What is left comes out in order, without the three removed. */
    int64_t prev = INT64_MIN;
    size_t n = 0;
    struct chan_heap_node *x;
    while ((x = chan_heap_pop(&h))) {
        ck_assert_int_ge(x->key, prev);
        ck_assert(x != leaf && x != top && x != last);
        prev = x->key;
        n++;
    }
    ck_assert_uint_eq(n, N - 3);
    chan_heap_free(&h);
}
END_TEST

/* Many random pushes, removals (of any node in) and pops against a plain
 * array of the keys in. */
static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The place of the smallest of ref[0..n), n > 0. */
static size_t ref_min(const int64_t *ref, size_t n)
{
    size_t m = 0;
    for (size_t k = 1; k < n; k++)
        if (ref[k] < ref[m])
            m = k;
    return m;
}

START_TEST(t_heap_random_vs_reference)
{
    enum { N = 512, ROUNDS = 50000 };
    static struct item items[N];
    int64_t ref[N];
    size_t nref = 0;
    struct chan_heap h = CHAN_HEAP_INIT;
    srand(12345);
    for (int i = 0; i < N; i++) {
        items[i].tag = i;
        chan_heap_node_init(&items[i].node);
    }
    for (int r = 0; r < ROUNDS; r++) {
        struct item *it = &items[rand() % N];
        int op = rand() % 3;
        if (!chan_heap_linked(&it->node)) {
            /* keys from a small range, so that many are equal */
            it->node.key = rand() % 200 - 50;
            ck_assert_int_eq(chan_heap_push(&h, &it->node), 0);
            ref[nref++] = it->node.key;
        } else if (op == 0) {
            chan_heap_remove(&h, &it->node);
            size_t k = 0;
            while (ref[k] != it->node.key)
                k++;
            ref[k] = ref[--nref];
        } else if (op == 1) {
            size_t m = ref_min(ref, nref);
            struct chan_heap_node *n = chan_heap_pop(&h);
            ck_assert_ptr_nonnull(n);
            ck_assert_int_eq(n->key, ref[m]);
            ref[m] = ref[--nref];
        }
        ck_assert_uint_eq(h.len, nref);
        if (r % 64 == 0 || h.len < 8)
            ck_assert(chan_heap_valid(&h));
        if (nref)
            ck_assert_int_eq(chan_heap_top(&h)->key, ref[ref_min(ref, nref)]);
    }
    ck_assert(chan_heap_valid(&h));
    qsort(ref, nref, sizeof ref[0], cmp_i64);
    for (size_t k = 0; k < nref; k++)
        ck_assert_int_eq(chan_heap_pop(&h)->key, ref[k]);
    ck_assert_ptr_null(chan_heap_top(&h));
    for (int i = 0; i < N; i++)
        ck_assert(!chan_heap_linked(&items[i].node));
    chan_heap_free(&h);
}
END_TEST

/* ---- sizes and durations ---- */

struct good {
    const char *s;
    uint64_t v;
};

struct bad {
    const char *s;
    int err;
};

static void check_parser(int (*parse)(const char *, uint64_t *), const struct good *good,
                         size_t ngood, const struct bad *bad, size_t nbad)
{
    for (size_t i = 0; i < ngood; i++) {
        uint64_t v = 12345;
        errno = 0;
        ck_assert_msg(parse(good[i].s, &v) == 0, "refused '%s' (%s)", good[i].s, strerror(errno));
        ck_assert_msg(v == good[i].v, "'%s' is %llu, not %llu", good[i].s, (unsigned long long)v,
                      (unsigned long long)good[i].v);
    }
    for (size_t i = 0; i < nbad; i++) {
        uint64_t v = 12345;
        errno = 0;
        ck_assert_msg(parse(bad[i].s, &v) < 0, "accepted '%s' as %llu", bad[i].s ? bad[i].s : "(null)",
                      (unsigned long long)v);
        ck_assert_msg(errno == bad[i].err, "'%s': errno %d, not %d", bad[i].s ? bad[i].s : "(null)",
                      errno, bad[i].err);
        ck_assert_uint_eq(v, 12345);   /* untouched */
    }
}

START_TEST(t_sizes)
{
    static const struct good good[] = {
        { "0", 0 }, { "64", 64 }, { "16k", 16384 }, { "16K", 16384 }, { "1m", 1u << 20 },
        { "3M", 3u << 20 }, { "2g", UINT64_C(2) << 30 }, { "2G", UINT64_C(2) << 30 },
        { "007", 7 }, { "0k", 0 },
        { "4611686018427387904", UINT64_C(1) << 62 },   /* the largest */
        { "4294967296g", UINT64_C(1) << 62 }, { "4398046511104m", UINT64_C(1) << 62 },
        { "4503599627370496k", UINT64_C(1) << 62 },
    };
    static const struct bad bad[] = {
        { NULL, EINVAL }, { "", EINVAL }, { "-1", EINVAL }, { "+1", EINVAL }, { " 1", EINVAL },
        { "1 ", EINVAL }, { "1kb", EINVAL }, { "1x", EINVAL }, { "k", EINVAL }, { "1.5k", EINVAL },
        { "0x10", EINVAL }, { "1t", EINVAL }, { "1kk", EINVAL }, { "1\n", EINVAL },
        { "4611686018427387905", ERANGE }, { "4294967297g", ERANGE }, { "4503599627370497k", ERANGE },
        { "18446744073709551615", ERANGE }, { "18446744073709551616", ERANGE },
        { "99999999999999999999999k", ERANGE },
    };
    check_parser(chan_parse_size, good, sizeof good / sizeof good[0], bad, sizeof bad / sizeof bad[0]);
}
END_TEST

START_TEST(t_durations)
{
    static const struct good good[] = {
        { "0", 0 }, { "250", 250 }, { "250ms", 250 }, { "30s", 30000 }, { "5m", 300000 },
        { "1h", 3600000 }, { "0h", 0 }, { "0010s", 10000 },
        { "4611686018427387903", UINT64_MAX / 4 },   /* the largest */
        { "4611686018427387s", UINT64_C(4611686018427387000) },
        { "1281023894007h", UINT64_C(1281023894007) * 3600000 },
    };
    static const struct bad bad[] = {
        { NULL, EINVAL }, { "", EINVAL }, { "-5", EINVAL }, { "+5", EINVAL }, { " 5", EINVAL },
        { "5 s", EINVAL }, { "5s ", EINVAL }, { "5sec", EINVAL }, { "5S", EINVAL }, { "5H", EINVAL },
        { "1d", EINVAL }, { "ms", EINVAL }, { "s", EINVAL }, { "1.5s", EINVAL }, { "5mss", EINVAL },
        { "1k", EINVAL },
        { "4611686018427387904", ERANGE }, { "4611686018427388s", ERANGE },
        { "1281023894008h", ERANGE }, { "18446744073709551616ms", ERANGE },
    };
    check_parser(chan_parse_duration, good, sizeof good / sizeof good[0], bad,
                 sizeof bad / sizeof bad[0]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("heap");
    tcase_set_timeout(tc, 30);   /* catches hangs: the slowest test takes < 1 s */
    tcase_add_test(tc, t_heap_pop_order);
    tcase_add_test(tc, t_heap_remove_anywhere);
    tcase_add_test(tc, t_heap_random_vs_reference);
    suite_add_tcase(s, tc);
    tc = tcase_create("units");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, t_sizes);
    tcase_add_test(tc, t_durations);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}

/*
 * check_common.c - unit tests of the helpers chand and libchan share
 * (common/): the deadline heap.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "chan_heap.h"

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

int main(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("heap");
    tcase_set_timeout(tc, 30);   /* catches hangs: the slowest test takes < 1 s */
    tcase_add_test(tc, t_heap_pop_order);
    tcase_add_test(tc, t_heap_remove_anywhere);
    tcase_add_test(tc, t_heap_random_vs_reference);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}

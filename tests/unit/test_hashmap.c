/* common/hashmap: SipHash-2-4 against the paper's vectors, insert, replace,
 * lookup, removal with backward shifting, growth, iteration. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hashmap.h"

static void test_siphash_vectors(void **state)
{
    uint8_t key[16], msg[64];
    for (int i = 0; i < 16; i++) {
        key[i] = (uint8_t)i;
    }
    for (int i = 0; i < 64; i++) {
        msg[i] = (uint8_t)i;
    }
    /* Aumasson & Bernstein, "SipHash: a fast short-input PRF", appendix A:
     * the 15-byte example message, and the reference vectors for 0 and 8. */
    assert_true(siphash24(key, msg, 15) == 0xa129ca6149be45e5ULL);
    assert_true(siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
    assert_true(siphash24(key, msg, 8) == 0x93f5f5799a932462ULL);
}

typedef struct item {
    uint8_t key[6];
    int value;
} item;

static void test_put_get_replace(void **state)
{
    hashmap *m;
    assert_int_equal(hashmap_new(0, &m), 0);
    item a = { { 1, 2, 3, 4, 5, 6 }, 1 }, b = { { 1, 2, 3, 4, 5, 7 }, 2 };
    item a2 = { { 1, 2, 3, 4, 5, 6 }, 3 };
    assert_null(hashmap_get(m, a.key, 6));
    assert_int_equal(hashmap_put(m, a.key, 6, &a), 0);
    assert_int_equal(hashmap_put(m, b.key, 6, &b), 0);
    assert_ptr_equal(hashmap_get(m, a.key, 6), &a);
    assert_ptr_equal(hashmap_get(m, b.key, 6), &b);
    assert_int_equal(hashmap_size(m), 2);
    /* Same key bytes from another object: replaces. */
    assert_int_equal(hashmap_put(m, a2.key, 6, &a2), 0);
    assert_int_equal(hashmap_size(m), 2);
    assert_ptr_equal(hashmap_get(m, a.key, 6), &a2);
    /* A shorter key with the same prefix is a different key. */
    assert_null(hashmap_get(m, a.key, 5));
    hashmap_free(m);
    assert_null(hashmap_free(NULL));
}

/* Many keys through growth, then remove every other one and check the rest
 * are all still found (backward-shift deletion keeps probe runs intact). */
static void test_growth_and_removal(void **state)
{
    enum { N = 5000 };
    item *items = calloc(N, sizeof(*items));
    assert_non_null(items);
    hashmap *m;
    assert_int_equal(hashmap_new(4, &m), 0);
    for (int i = 0; i < N; i++) {
        memcpy(items[i].key, &i, sizeof(i));
        items[i].key[4] = 0xaa;
        items[i].value = i;
        assert_int_equal(hashmap_put(m, items[i].key, 6, &items[i]), 0);
    }
    assert_int_equal(hashmap_size(m), N);
    for (int i = 0; i < N; i += 2) {
        assert_ptr_equal(hashmap_remove(m, items[i].key, 6), &items[i]);
        assert_null(hashmap_remove(m, items[i].key, 6));
    }
    assert_int_equal(hashmap_size(m), N / 2);
    for (int i = 0; i < N; i++) {
        item *got = hashmap_get(m, items[i].key, 6);
        if (i % 2) {
            assert_ptr_equal(got, &items[i]);
        } else {
            assert_null(got);
        }
    }
    size_t it = 0, seen = 0;
    void *v;
    while (hashmap_next(m, &it, &v)) {
        assert_int_equal(((item *)v)->value % 2, 1);
        seen++;
    }
    assert_int_equal(seen, N / 2);
    hashmap_clear(m);
    assert_int_equal(hashmap_size(m), 0);
    assert_null(hashmap_get(m, items[1].key, 6));
    hashmap_free(m);
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash_vectors),
        cmocka_unit_test(test_put_get_replace),
        cmocka_unit_test(test_growth_and_removal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

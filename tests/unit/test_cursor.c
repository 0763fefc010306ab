/* common/cursor: every read and write at, just before and just past each
 * boundary, and the promise that a failed call consumes and writes nothing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cursor.h"

static const uint8_t bytes8[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 };

static void test_empty_buffer(void **state)
{
    cursor c = cursor_make(NULL, 0);
    uint8_t u8 = 0xaa;
    uint16_t u16 = 0xaaaa;
    const uint8_t *ref = bytes8;
    cursor sub = cursor_make(bytes8, 1);

    assert_true(cursor_at_end(&c));
    assert_int_equal(cursor_remaining(&c), 0);
    assert_int_equal(cursor_read_u8(&c, &u8), -EBADMSG);
    assert_int_equal(cursor_read_be16(&c, &u16), -EBADMSG);
    assert_int_equal(cursor_peek_u8(&c, &u8), -EBADMSG);
    assert_int_equal(u8, 0xaa);
    assert_int_equal(u16, 0xaaaa);
    /* Zero-length reads succeed at the end: an empty option body is valid. */
    assert_int_equal(cursor_read_ref(&c, 0, &ref), 0);
    assert_int_equal(cursor_skip(&c, 0), 0);
    assert_int_equal(cursor_read_sub(&c, 0, &sub), 0);
    assert_int_equal(cursor_remaining(&sub), 0);
    assert_int_equal(cursor_skip(&c, 1), -EBADMSG);
}

static void test_big_endian_reads(void **state)
{
    cursor c = cursor_make(bytes8, sizeof(bytes8));
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;

    assert_int_equal(cursor_read_u8(&c, &u8), 0);
    assert_int_equal(u8, 0x01);
    assert_int_equal(cursor_read_be16(&c, &u16), 0);
    assert_int_equal(u16, 0x0203);
    assert_int_equal(cursor_read_be32(&c, &u32), 0);
    assert_int_equal(u32, 0x04050607);
    assert_int_equal(cursor_remaining(&c), 1);

    c = cursor_make(bytes8, sizeof(bytes8));
    assert_int_equal(cursor_read_be64(&c, &u64), 0);
    assert_true(u64 == 0x0102030405060708ULL);
    assert_true(cursor_at_end(&c));
}

/* For each width, a buffer one byte short fails and consumes nothing; an
 * exact buffer succeeds and ends at the end. */
static void test_each_width_at_boundary(void **state)
{
    static const size_t widths[] = { 1, 2, 4, 8 };
    for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
        size_t w = widths[i];
        cursor short_c = cursor_make(bytes8, w - 1);
        cursor exact_c = cursor_make(bytes8, w);
        uint64_t sentinel = 0xdeadbeefcafef00dULL, v64 = sentinel;
        uint32_t v32 = 0xdeadbeef;
        uint16_t v16 = 0xdead;
        uint8_t v8 = 0xde;
        int r_short, r_exact;

        switch (w) {
        case 1:
            r_short = cursor_read_u8(&short_c, &v8);
            assert_int_equal(v8, 0xde);
            r_exact = cursor_read_u8(&exact_c, &v8);
            break;
        case 2:
            r_short = cursor_read_be16(&short_c, &v16);
            assert_int_equal(v16, 0xdead);
            r_exact = cursor_read_be16(&exact_c, &v16);
            break;
        case 4:
            r_short = cursor_read_be32(&short_c, &v32);
            assert_int_equal(v32, 0xdeadbeef);
            r_exact = cursor_read_be32(&exact_c, &v32);
            break;
        default:
            r_short = cursor_read_be64(&short_c, &v64);
            assert_true(v64 == sentinel);
            r_exact = cursor_read_be64(&exact_c, &v64);
            break;
        }
        assert_int_equal(r_short, -EBADMSG);
        assert_int_equal(short_c.off, 0);
        assert_int_equal(r_exact, 0);
        assert_true(cursor_at_end(&exact_c));
    }
}

static void test_bytes_ref_sub_skip(void **state)
{
    cursor c = cursor_make(bytes8, sizeof(bytes8));
    uint8_t out[8];
    const uint8_t *ref = NULL;
    cursor sub;

    assert_int_equal(cursor_read_bytes(&c, out, 9), -EBADMSG);
    assert_int_equal(c.off, 0);
    assert_int_equal(cursor_read_bytes(&c, out, 3), 0);
    assert_memory_equal(out, bytes8, 3);

    assert_int_equal(cursor_read_ref(&c, 6, &ref), -EBADMSG);
    assert_null(ref);
    assert_int_equal(cursor_read_ref(&c, 2, &ref), 0);
    assert_ptr_equal(ref, bytes8 + 3);

    assert_int_equal(cursor_read_sub(&c, 4, &sub), -EBADMSG);
    assert_int_equal(cursor_read_sub(&c, 3, &sub), 0);
    assert_int_equal(cursor_remaining(&sub), 3);
    assert_ptr_equal(cursor_pos(&sub), bytes8 + 5);
    /* The sub-cursor is bounded by its own length, not the parent's. */
    assert_int_equal(cursor_skip(&sub, 4), -EBADMSG);
    assert_int_equal(cursor_skip(&sub, 3), 0);
    assert_true(cursor_at_end(&sub));
    assert_true(cursor_at_end(&c));
}

/* A length near SIZE_MAX must fail, not wrap around the bounds check. */
static void test_huge_lengths_do_not_wrap(void **state)
{
    cursor c = cursor_make(bytes8, sizeof(bytes8));
    const uint8_t *ref;
    cursor sub;
    assert_int_equal(cursor_skip(&c, 1), 0);
    assert_int_equal(cursor_skip(&c, SIZE_MAX), -EBADMSG);
    assert_int_equal(cursor_read_ref(&c, SIZE_MAX - 1, &ref), -EBADMSG);
    assert_int_equal(cursor_read_sub(&c, SIZE_MAX, &sub), -EBADMSG);
    assert_int_equal(c.off, 1);
}

static void test_peek_does_not_consume(void **state)
{
    cursor c = cursor_make(bytes8, 2);
    uint16_t v;
    uint8_t b;
    assert_int_equal(cursor_peek_be16(&c, &v), 0);
    assert_int_equal(v, 0x0102);
    assert_int_equal(cursor_peek_u8(&c, &b), 0);
    assert_int_equal(b, 0x01);
    assert_int_equal(c.off, 0);
    assert_int_equal(cursor_skip(&c, 1), 0);
    assert_int_equal(cursor_peek_be16(&c, &v), -EBADMSG);
}

static void test_read_until(void **state)
{
    static const uint8_t msg[] = { 'a', 'b', 0, 'c', 0, 'd' };
    cursor c = cursor_make(msg, sizeof(msg));
    const uint8_t *s;
    size_t n = 99;

    assert_int_equal(cursor_read_until(&c, 0, &s, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(s, "ab", 2);
    assert_int_equal(cursor_read_until(&c, 0, &s, &n), 0);
    assert_int_equal(n, 1);
    /* "d" has no terminator: an error, and nothing consumed. */
    n = 99;
    assert_int_equal(cursor_read_until(&c, 0, &s, &n), -EBADMSG);
    assert_int_equal(n, 99);
    assert_int_equal(cursor_remaining(&c), 1);

    cursor empty = cursor_make(msg, 0);
    assert_int_equal(cursor_read_until(&empty, 0, &s, &n), -EBADMSG);
}

static void test_writer_boundaries(void **state)
{
    uint8_t buf[8];
    memset(buf, 0xee, sizeof(buf));
    wcursor w = wcursor_make(buf, 7);

    assert_int_equal(wcursor_put_be64(&w, 1), -ENOSPC);
    assert_int_equal(wcursor_len(&w), 0);
    assert_int_equal(wcursor_put_be32(&w, 0x01020304), 0);
    assert_int_equal(wcursor_put_be32(&w, 0x05060708), -ENOSPC);
    assert_int_equal(wcursor_put_be16(&w, 0x0506), 0);
    assert_int_equal(wcursor_put_be16(&w, 0x0708), -ENOSPC);
    assert_int_equal(wcursor_put_u8(&w, 0x07), 0);
    assert_int_equal(wcursor_remaining(&w), 0);
    assert_int_equal(wcursor_put_u8(&w, 0x08), -ENOSPC);
    assert_int_equal(wcursor_put_bytes(&w, "x", 1), -ENOSPC);
    assert_int_equal(wcursor_put_bytes(&w, "", 0), 0);
    assert_int_equal(wcursor_put_zeros(&w, 1), -ENOSPC);
    assert_memory_equal(buf, bytes8, 7);
    /* Nothing was written past the capacity. */
    assert_int_equal(buf[7], 0xee);
}

static void test_writer_reserve_and_patch(void **state)
{
    uint8_t buf[16];
    wcursor w = wcursor_make(buf, sizeof(buf));
    size_t len_at;

    assert_int_equal(wcursor_put_be16(&w, 3), 0);
    assert_int_equal(wcursor_reserve(&w, 2, &len_at), 0);
    assert_int_equal(len_at, 2);
    assert_int_equal(wcursor_put_bytes(&w, "abc", 3), 0);
    wcursor_patch_be16(&w, len_at, (uint16_t)(wcursor_len(&w) - len_at - 2));
    static const uint8_t want[] = { 0x00, 0x03, 0x00, 0x03, 'a', 'b', 'c' };
    assert_int_equal(wcursor_len(&w), sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));

    assert_int_equal(wcursor_reserve(&w, 10, &len_at), -ENOSPC);
    assert_int_equal(wcursor_len(&w), sizeof(want));
    assert_int_equal(wcursor_put_be64(&w, 0x1122334455667788ULL), 0);
    wcursor_patch_be32(&w, 7, 0xa1a2a3a4);
    assert_int_equal(buf[7], 0xa1);
    assert_int_equal(buf[10], 0xa4);
    assert_int_equal(buf[11], 0x55);
}

/* Round trip: what the writer puts, the reader gets back. */
static void test_round_trip(void **state)
{
    uint8_t buf[32];
    wcursor w = wcursor_make(buf, sizeof(buf));
    assert_int_equal(wcursor_put_u8(&w, 0xfe), 0);
    assert_int_equal(wcursor_put_be16(&w, 0xfedc), 0);
    assert_int_equal(wcursor_put_be32(&w, 0xfedcba98), 0);
    assert_int_equal(wcursor_put_be64(&w, 0xfedcba9876543210ULL), 0);
    assert_int_equal(wcursor_put_zeros(&w, 2), 0);

    cursor c = cursor_make(buf, wcursor_len(&w));
    uint8_t a;
    uint16_t b;
    uint32_t d;
    uint64_t e;
    assert_int_equal(cursor_read_u8(&c, &a), 0);
    assert_int_equal(cursor_read_be16(&c, &b), 0);
    assert_int_equal(cursor_read_be32(&c, &d), 0);
    assert_int_equal(cursor_read_be64(&c, &e), 0);
    assert_int_equal(a, 0xfe);
    assert_int_equal(b, 0xfedc);
    assert_int_equal(d, 0xfedcba98);
    assert_true(e == 0xfedcba9876543210ULL);
    assert_int_equal(cursor_remaining(&c), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_buffer),
        cmocka_unit_test(test_big_endian_reads),
        cmocka_unit_test(test_each_width_at_boundary),
        cmocka_unit_test(test_bytes_ref_sub_skip),
        cmocka_unit_test(test_huge_lengths_do_not_wrap),
        cmocka_unit_test(test_peek_does_not_consume),
        cmocka_unit_test(test_read_until),
        cmocka_unit_test(test_writer_boundaries),
        cmocka_unit_test(test_writer_reserve_and_patch),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* deploy-ramdisk/writer/decomp: zstd, xz and raw images of known content,
 * compressed here with libzstd and liblzma (as the zstd and xz tools do:
 * zstd with its frame checksum, xz with CRC64), come out byte for byte
 * whatever the chunking of input and output; corrupt, truncated and
 * oversized streams are refused. */
#include <errno.h>
#include <lzma.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include <cmocka.h>

#include "writer/decomp.h"

/* Content like a disk image: runs of zeros, repetitive text, and random
 * bytes that do not compress. */
static uint8_t *make_image(size_t len, uint32_t seed)
{
    uint8_t *p = malloc(len);
    assert_non_null(p);
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < len; i++) {
        size_t block = (i / 65536) % 3;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = block == 0 ? 0 : block == 1 ? (uint8_t)("rackboot image "[i % 15]) : (uint8_t)x;
    }
    return p;
}

static uint8_t *zstd_compress(const uint8_t *src, size_t len, size_t *ret_len)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    assert_non_null(c);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)));
    size_t cap = ZSTD_compressBound(len);
    uint8_t *dst = malloc(cap);
    assert_non_null(dst);
    size_t n = ZSTD_compress2(c, dst, cap, src, len);
    assert_false(ZSTD_isError(n));
    ZSTD_freeCCtx(c);
    *ret_len = n;
    return dst;
}

static uint8_t *xz_compress(const uint8_t *src, size_t len, size_t *ret_len)
{
    size_t cap = lzma_stream_buffer_bound(len);
    uint8_t *dst = malloc(cap);
    assert_non_null(dst);
    size_t pos = 0;
    assert_int_equal(lzma_easy_buffer_encode(1, LZMA_CHECK_CRC64, NULL, src, len, dst, &pos, cap),
                     LZMA_OK);
    *ret_len = pos;
    return dst;
}

/* Decodes `in` fed in chunks of the sizes in chunks[] (cycled), with an
 * output buffer of out_cap. Returns the first error, or 0 with the output. */
static int decode(const uint8_t *in, size_t len, const size_t *chunks, size_t nchunks,
                  size_t out_cap, uint8_t **ret, size_t *ret_len)
{
    size_t cap = 16 << 20, have = 0, k = 0;
    uint8_t *all = malloc(cap);
    uint8_t *out = malloc(out_cap);
    decomp *d = NULL;
    int r;
    assert_non_null(all);
    assert_non_null(out);
    assert_int_equal(decomp_new(&d), 0);
    while (len > 0) {
        size_t chunk = chunks[k++ % nchunks];
        if (chunk > len) {
            chunk = len;
        }
        const uint8_t *p = in;
        size_t left = chunk;
        while (left > 0) {
            size_t used = 0, made = 0;
            r = decomp_feed(d, p, left, out, out_cap, &used, &made);
            if (r < 0) {
                goto out;
            }
            assert_true(used > 0 || made > 0); /* progress, always */
            assert_true(have + made <= cap);
            memcpy(all + have, out, made);
            have += made;
            p += used;
            left -= used;
        }
        in += chunk;
        len -= chunk;
    }
    do {
        size_t made = 0;
        r = decomp_finish(d, out, out_cap, &made);
        if (r < 0) {
            goto out;
        }
        assert_true(have + made <= cap);
        memcpy(all + have, out, made);
        have += made;
    } while (r > 0);
    *ret = all;
    *ret_len = have;
    all = NULL;
out:
    free(all);
    free(out);
    decomp_free(d);
    return r;
}

static const size_t one_byte[] = { 1 };
static const size_t odd_sizes[] = { 7, 1, 4093, 13, 65537, 3 };
static const size_t large[] = { 4 << 20 };

static void check_roundtrip(const uint8_t *packed, size_t packed_len, const uint8_t *want,
                            size_t want_len, const size_t *chunks, size_t nchunks, size_t out_cap)
{
    uint8_t *got = NULL;
    size_t got_len = 0;
    assert_int_equal(decode(packed, packed_len, chunks, nchunks, out_cap, &got, &got_len), 0);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    free(got);
}

#define IMAGE_LEN ((size_t)3 << 19) /* 1.5 MiB: more than one output buffer */

static void test_zstd_any_chunking(void **state)
{
    uint8_t *img = make_image(IMAGE_LEN, 7);
    size_t zlen;
    uint8_t *z = zstd_compress(img, IMAGE_LEN, &zlen);
    check_roundtrip(z, zlen, img, IMAGE_LEN, one_byte, 1, 1 << 20);
    check_roundtrip(z, zlen, img, IMAGE_LEN, odd_sizes, 6, 4099);
    check_roundtrip(z, zlen, img, IMAGE_LEN, large, 1, 1 << 20);
    free(z);
    free(img);
}

static void test_xz_any_chunking(void **state)
{
    uint8_t *img = make_image(IMAGE_LEN, 9);
    size_t xlen;
    uint8_t *x = xz_compress(img, IMAGE_LEN, &xlen);
    check_roundtrip(x, xlen, img, IMAGE_LEN, one_byte, 1, 1 << 20);
    check_roundtrip(x, xlen, img, IMAGE_LEN, odd_sizes, 6, 4099);
    check_roundtrip(x, xlen, img, IMAGE_LEN, large, 1, 1 << 20);
    free(x);
    free(img);
}

static void test_raw_passthrough(void **state)
{
    uint8_t *img = make_image(IMAGE_LEN, 11);
    check_roundtrip(img, IMAGE_LEN, img, IMAGE_LEN, one_byte, 1, 1 << 20);
    check_roundtrip(img, IMAGE_LEN, img, IMAGE_LEN, odd_sizes, 6, 4099);
    check_roundtrip(img, IMAGE_LEN, img, IMAGE_LEN, large, 1, 1 << 20);
    free(img);
}

/* A tiny output buffer: the decoder must hold what does not fit and hand it
 * over on later calls, including the held magic bytes of a raw image. */
static void test_one_byte_output(void **state)
{
    size_t len = 70000, zlen, xlen;
    uint8_t *img = make_image(len, 3);
    uint8_t *z = zstd_compress(img, len, &zlen);
    uint8_t *x = xz_compress(img, len, &xlen);
    check_roundtrip(z, zlen, img, len, odd_sizes, 6, 1);
    check_roundtrip(x, xlen, img, len, odd_sizes, 6, 1);
    check_roundtrip(img, len, img, len, odd_sizes, 6, 1);
    free(x);
    free(z);
    free(img);
}

/* Bytes that start like a magic number but are not one are a raw image, and
 * the held bytes come out first, in order. */
static void test_near_magic_is_raw(void **state)
{
    static const uint8_t zstd_like[] = { 0x28, 0xb5, 0x2f, 0xfe, 1, 2, 3 };
    static const uint8_t xz_like[] = { 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x01, 9 };
    static const uint8_t tiny[] = { 0x00 };
    check_roundtrip(zstd_like, sizeof(zstd_like), zstd_like, sizeof(zstd_like), one_byte, 1, 64);
    check_roundtrip(xz_like, sizeof(xz_like), xz_like, sizeof(xz_like), one_byte, 1, 2);
    check_roundtrip(tiny, sizeof(tiny), tiny, sizeof(tiny), one_byte, 1, 64);
}

static void test_format_detected(void **state)
{
    static const uint8_t zstd_magic[] = { 0x28, 0xb5, 0x2f, 0xfd };
    decomp *d = NULL;
    uint8_t out[16];
    size_t used, made;
    assert_int_equal(decomp_new(&d), 0);
    assert_int_equal(decomp_feed(d, zstd_magic, 3, out, sizeof(out), &used, &made), 0);
    assert_int_equal(used, 3);
    assert_int_equal(made, 0);
    assert_int_equal(decomp_get_format(d), DECOMP_FORMAT_UNKNOWN);
    assert_int_equal(decomp_feed(d, zstd_magic + 3, 1, out, sizeof(out), &used, &made), 0);
    assert_int_equal(decomp_get_format(d), DECOMP_FORMAT_ZSTD);
    assert_string_equal(decomp_format_to_string(decomp_get_format(d)), "zstd");
    /* A bare magic number is a truncated stream. */
    assert_int_equal(decomp_finish(d, out, sizeof(out), &made), -EBADMSG);
    decomp_free(d);
}

/* Two frames back to back (zstd cat a.zst b.zst) are one image. */
static void test_zstd_two_frames(void **state)
{
    size_t len = 100000, l1, l2;
    uint8_t *img = make_image(2 * len, 5);
    uint8_t *a = zstd_compress(img, len, &l1);
    uint8_t *b = zstd_compress(img + len, len, &l2);
    uint8_t *both = malloc(l1 + l2);
    assert_non_null(both);
    memcpy(both, a, l1);
    memcpy(both + l1, b, l2);
    check_roundtrip(both, l1 + l2, img, 2 * len, odd_sizes, 6, 4096);
    free(both);
    free(b);
    free(a);
    free(img);
}

static int decode_err(const uint8_t *in, size_t len)
{
    uint8_t *got = NULL;
    size_t got_len = 0;
    int r = decode(in, len, odd_sizes, 6, 65536, &got, &got_len);
    free(got);
    return r;
}

static void test_corrupt_refused(void **state)
{
    size_t len = 300000, zlen, xlen;
    uint8_t *img = make_image(len, 13);
    uint8_t *z = zstd_compress(img, len, &zlen);
    uint8_t *x = xz_compress(img, len, &xlen);

    /* A flipped bit in the middle: the data or its checksum fails. */
    z[zlen / 2] ^= 0x10;
    assert_int_equal(decode_err(z, zlen), -EBADMSG);
    z[zlen / 2] ^= 0x10;
    x[xlen / 2] ^= 0x10;
    assert_int_equal(decode_err(x, xlen), -EBADMSG);
    x[xlen / 2] ^= 0x10;

    /* A frame header with its reserved bit set. */
    z[4] |= 0x08;
    assert_int_equal(decode_err(z, zlen), -EBADMSG);
    z[4] &= (uint8_t)~0x08;

    /* Garbage after a complete stream is not ignored. */
    uint8_t *tail = malloc(zlen + 8);
    assert_non_null(tail);
    memcpy(tail, z, zlen);
    memcpy(tail + zlen, "garbage!", 8);
    assert_int_equal(decode_err(tail, zlen + 8), -EBADMSG);
    free(tail);
    tail = malloc(xlen + 8);
    assert_non_null(tail);
    memcpy(tail, x, xlen);
    memcpy(tail + xlen, "garbage!", 8);
    assert_int_equal(decode_err(tail, xlen + 8), -EBADMSG);
    free(tail);

    /* Still whole after the flips were undone. */
    assert_int_equal(decode_err(z, zlen), 0);
    assert_int_equal(decode_err(x, xlen), 0);
    free(x);
    free(z);
    free(img);
}

/* Cut anywhere, from just past the magic to one byte short, a stream is
 * refused when it ends: never a silently short image. */
static void test_truncated_refused(void **state)
{
    size_t len = 300000, zlen, xlen;
    uint8_t *img = make_image(len, 17);
    uint8_t *z = zstd_compress(img, len, &zlen);
    uint8_t *x = xz_compress(img, len, &xlen);
    const size_t zcuts[] = { 4, 5, 12, zlen / 3, zlen / 2, zlen - 4, zlen - 1 };
    const size_t xcuts[] = { 6, 7, 12, 24, xlen / 3, xlen / 2, xlen - 12, xlen - 1 };
    for (size_t i = 0; i < sizeof(zcuts) / sizeof(zcuts[0]); i++) {
        assert_int_equal(decode_err(z, zcuts[i]), -EBADMSG);
    }
    for (size_t i = 0; i < sizeof(xcuts) / sizeof(xcuts[0]); i++) {
        assert_int_equal(decode_err(x, xcuts[i]), -EBADMSG);
    }
    /* Empty input, and the start of a magic number, are no image either. */
    assert_int_equal(decode_err(z, 0), -EBADMSG);
    assert_int_equal(decode_err(z, 2), -EBADMSG);
    assert_int_equal(decode_err(x, 5), -EBADMSG);
    free(x);
    free(z);
    free(img);
}

/* A frame asking for a 256 MiB window (more than the ramdisk should give a
 * peer) is refused as too big, not allocated. */
static void test_zstd_window_cap(void **state)
{
    size_t len = 200000;
    uint8_t *img = make_image(len, 19);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    assert_non_null(c);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 28)));
    size_t cap = ZSTD_compressBound(len) + 64;
    uint8_t *dst = malloc(cap);
    assert_non_null(dst);
    /* Streamed without a pledged size, the header keeps the window asked. */
    ZSTD_inBuffer ib = { img, len, 0 };
    ZSTD_outBuffer ob = { dst, cap, 0 };
    assert_false(ZSTD_isError(ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_continue)));
    size_t left;
    do {
        left = ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_end);
        assert_false(ZSTD_isError(left));
    } while (left != 0);
    assert_int_equal(decode_err(dst, ob.pos), -E2BIG);
    ZSTD_freeCCtx(c);
    free(dst);
    free(img);
}

/* After an error every call repeats it; decomp_clear() makes it new. */
static void test_error_sticky_and_clear(void **state)
{
    size_t len = 100000, zlen, xlen;
    uint8_t *img = make_image(len, 23);
    uint8_t *z = zstd_compress(img, len, &zlen);
    uint8_t *x = xz_compress(img, len, &xlen);
    uint8_t *out = malloc(len + 1024);
    assert_non_null(out);
    decomp *d = NULL;
    size_t used, made;
    assert_int_equal(decomp_new(&d), 0);
    z[4] |= 0x08;
    assert_int_equal(decomp_feed(d, z, zlen, out, len, &used, &made), -EBADMSG);
    assert_int_equal(decomp_feed(d, x, xlen, out, len, &used, &made), -EBADMSG);
    assert_int_equal(decomp_finish(d, out, len, &made), -EBADMSG);

    assert_int_equal(decomp_clear(d), 0);
    size_t have = 0;
    const uint8_t *p = x;
    size_t left = xlen;
    while (left > 0) {
        assert_int_equal(decomp_feed(d, p, left, out + have, len + 1024 - have, &used, &made), 0);
        p += used;
        left -= used;
        have += made;
    }
    int r;
    do {
        r = decomp_finish(d, out + have, len + 1024 - have, &made);
        assert_true(r >= 0);
        have += made;
    } while (r > 0);
    assert_int_equal(have, len);
    assert_memory_equal(out, img, len);
    assert_int_equal(decomp_get_format(d), DECOMP_FORMAT_XZ);
    assert_int_equal(decomp_get_bytes_in(d), xlen);
    assert_int_equal(decomp_get_bytes_out(d), len);
    decomp_free(d);
    free(out);
    free(x);
    free(z);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zstd_any_chunking),      cmocka_unit_test(test_xz_any_chunking),
        cmocka_unit_test(test_raw_passthrough),        cmocka_unit_test(test_one_byte_output),
        cmocka_unit_test(test_near_magic_is_raw),      cmocka_unit_test(test_format_detected),
        cmocka_unit_test(test_zstd_two_frames),        cmocka_unit_test(test_corrupt_refused),
        cmocka_unit_test(test_truncated_refused),      cmocka_unit_test(test_zstd_window_cap),
        cmocka_unit_test(test_error_sticky_and_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

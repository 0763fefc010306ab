/* common/sha256: FIPS 180-2 Appendix B vectors (the NIST "abc", the 448-bit
 * two-block message, one million 'a') through every entry point, and the hex
 * forms used in `URL sha256=HEX` lines. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sha256.h"

/* FIPS 180-2 Appendix B.1, B.2, B.3, and the well-known empty-message digest. */
static const char fips_abc[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char fips_448bit_msg[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char fips_448bit[] =
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
static const char fips_million_a[] =
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
static const char empty_message[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static void assert_digest_hex(const uint8_t d[SHA256_LEN], const char *want)
{
    char hex[SHA256_HEX_LEN + 1];
    sha256_to_hex(d, hex);
    assert_string_equal(hex, want);
}

static void test_buffer_vectors(void **state)
{
    uint8_t d[SHA256_LEN];
    assert_int_equal(sha256_buffer("abc", 3, d), 0);
    assert_digest_hex(d, fips_abc);
    assert_int_equal(sha256_buffer("", 0, d), 0);
    assert_digest_hex(d, empty_message);
    assert_int_equal(sha256_buffer(fips_448bit_msg, strlen(fips_448bit_msg), d), 0);
    assert_digest_hex(d, fips_448bit);
}

static void test_streaming_million_a(void **state)
{
    static uint8_t chunk[9973];
    memset(chunk, 'a', sizeof(chunk));
    sha256_ctx *ctx = sha256_new();
    assert_non_null(ctx);

    /* Uneven chunk sizes cross the 64-byte block boundary at every offset. */
    size_t left = 1000000, step = 1;
    while (left > 0) {
        size_t n = step < left ? step : left;
        if (n > sizeof(chunk)) {
            n = sizeof(chunk);
        }
        assert_int_equal(sha256_update(ctx, chunk, n), 0);
        left -= n;
        step = step * 3 + 1;
        if (step > sizeof(chunk)) {
            step = 7;
        }
    }
    uint8_t d[SHA256_LEN];
    assert_int_equal(sha256_final(ctx, d), 0);
    assert_digest_hex(d, fips_million_a);

    /* final() resets: the same ctx hashes the next message from scratch. */
    assert_int_equal(sha256_update(ctx, "a", 1), 0);
    assert_int_equal(sha256_update(ctx, "", 0), 0);
    assert_int_equal(sha256_update(ctx, "bc", 2), 0);
    assert_int_equal(sha256_final(ctx, d), 0);
    assert_digest_hex(d, fips_abc);
    assert_int_equal(sha256_final(ctx, d), 0);
    assert_digest_hex(d, empty_message);

    assert_null(sha256_free(ctx));
    assert_null(sha256_free(NULL));
}

static void test_fd(void **state)
{
    char path[] = "/tmp/test_sha256.XXXXXX";
    int fd = mkostemp(path, O_CLOEXEC);
    assert_true(fd >= 0);
    unlink(path);

    /* Larger than sha256_fd's read buffer so several reads are needed. */
    size_t n = 1000000;
    char *a = malloc(n);
    assert_non_null(a);
    memset(a, 'a', n);
    assert_int_equal(write(fd, a, n), (ssize_t)n);
    free(a);

    uint8_t d[SHA256_LEN];
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(sha256_fd(fd, d), 0);
    assert_digest_hex(d, fips_million_a);
    /* From the current offset: at EOF that is the empty message. */
    assert_int_equal(sha256_fd(fd, d), 0);
    assert_digest_hex(d, empty_message);
    close(fd);

    memset(d, 0x5a, sizeof(d));
    assert_int_equal(sha256_fd(fd, d), -EBADF);
    assert_int_equal(d[0], 0x5a);
}

static void test_hex(void **state)
{
    uint8_t d[SHA256_LEN], back[SHA256_LEN];
    assert_int_equal(sha256_buffer("abc", 3, d), 0);

    assert_int_equal(sha256_from_hex(fips_abc, back), 0);
    assert_memory_equal(back, d, SHA256_LEN);
    memset(back, 0, sizeof(back));
    assert_int_equal(
        sha256_from_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", back),
        0);
    assert_memory_equal(back, d, SHA256_LEN);

    memset(back, 0x5a, sizeof(back));
    static const char *const bad[] = {
        "",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",   /* 63 */
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0", /* 65 */
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ag",
        " a7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
        "0xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(sha256_from_hex(bad[i], back), -EINVAL);
    }
    assert_int_equal(back[0], 0x5a);

    static const uint8_t edges[SHA256_LEN] = { 0x00, 0x0f, 0xf0, 0xff, 0x9a };
    char hex[SHA256_HEX_LEN + 1];
    memset(hex, 'Z', sizeof(hex));
    sha256_to_hex(edges, hex);
    assert_int_equal(strlen(hex), SHA256_HEX_LEN);
    assert_memory_equal(hex, "000ff0ff9a00", 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffer_vectors),
        cmocka_unit_test(test_streaming_million_a),
        cmocka_unit_test(test_fd),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

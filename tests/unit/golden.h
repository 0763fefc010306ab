/* Golden files for the render tests: read one, or compare output with one
 * byte for byte. RACKBOOT_UPDATE_GOLDEN=1 in the environment rewrites the
 * file with the output instead (review the diff afterwards). Include after
 * <cmocka.h>. */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline char *golden_read(const char *dir, const char *name, size_t *ret_len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rbe");
    if (!f) {
        fail_msg("cannot open %s: %s", path, strerror(errno));
    }
    size_t cap = 65536;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    size_t n = fread(buf, 1, cap, f);
    assert_true(n < cap);
    fclose(f);
    buf[n] = '\0';
    if (ret_len) {
        *ret_len = n;
    }
    return buf;
}

static inline void golden_expect(const char *dir, const char *name, const char *got, size_t len)
{
    assert_int_equal(strlen(got), len);
    const char *update = getenv("RACKBOOT_UPDATE_GOLDEN");
    if (update && strcmp(update, "1") == 0) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "wbe");
        assert_non_null(f);
        assert_int_equal(fwrite(got, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        return;
    }
    size_t want_len;
    char *want = golden_read(dir, name, &want_len);
    if (want_len != len || memcmp(want, got, len) != 0) {
        fprintf(stderr, "--- %s differs; got:\n%s\n--- end\n", name, got);
        free(want);
        fail_msg("%s differs from the golden file", name);
    }
    free(want);
}

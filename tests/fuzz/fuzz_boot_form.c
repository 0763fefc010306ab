/* Fuzzes the installer's progress form (POST /progress/<id>, install/routes.c): the
 * bytes are an application/x-www-form-urlencoded body, read for the keys the
 * handler asks for into buffers of the handler's sizes and of every small
 * size. Each buffer is allocated to its exact size, so a write past it is
 * caught; the answer must agree with a plain reference reading of the form
 * (first `key=` field wins, '+' is a space, %XX a byte, a broken escape
 * literal), and a value too long for a buffer is -E2BIG, never cut short. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int boot_form_get(const uint8_t *body, size_t len, const char *key, char *out, size_t out_size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hexv(uint8_t c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The reference: the decoded value of the first field named `key` into
 * out[len + 1]; its length, or -1 when absent. */
static long reference(const uint8_t *body, size_t len, const char *key, uint8_t *out)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i <= len;) {
        const uint8_t *amp = len > i ? memchr(body + i, '&', len - i) : NULL;
        size_t end = amp ? (size_t)(amp - body) : len;
        if (end - i > klen && memcmp(body + i, key, klen) == 0 && body[i + klen] == '=') {
            size_t o = 0;
            for (size_t k = i + klen + 1; k < end; k++) {
                if (body[k] == '+') {
                    out[o++] = ' ';
                } else if (body[k] == '%' && end - k > 2 && hexv(body[k + 1]) >= 0 &&
                           hexv(body[k + 2]) >= 0) {
                    out[o++] = (uint8_t)(hexv(body[k + 1]) << 4 | hexv(body[k + 2]));
                    k += 2;
                } else {
                    out[o++] = body[k];
                }
            }
            return (long)o;
        }
        i = end + 1;
    }
    return -1;
}

static void check(const uint8_t *body, size_t len, const char *key, const uint8_t *want,
                  long want_len, size_t out_size)
{
    char *out = malloc(out_size);
    RB_ASSERT(out != NULL);
    int r = boot_form_get(body, len, key, out, out_size);
    if (want_len < 0) {
        RB_ASSERT(r == 0);
    } else if ((size_t)want_len >= out_size) {
        RB_ASSERT(r == -E2BIG);
    } else {
        RB_ASSERT(r == 1);
        RB_ASSERT(memcmp(out, want, (size_t)want_len) == 0 && out[want_len] == '\0');
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The server refuses bodies over max_body_size (64 KiB by default). */
    if (size > 65536) {
        return 0;
    }
    /* The handler's keys and buffer sizes (install/routes.c on_progress), and keys
     * that are prefixes of one another. */
    static const struct {
        const char *key;
        size_t size;
    } asks[] = {
        { "phase", 32 }, { "percent", 16 }, { "message", 512 }, { "phas", 8 }, { "p", 4 },
    };
    uint8_t *want = malloc(size + 1);
    RB_ASSERT(want != NULL);
    for (size_t a = 0; a < ARRAY_SIZE(asks); a++) {
        long n = reference(data, size, asks[a].key, want);
        check(data, size, asks[a].key, want, n, asks[a].size);
        /* Around the value's own length: the last size that fails and the
         * first that fits. */
        if (n >= 0) {
            check(data, size, asks[a].key, want, n, (size_t)n + 1);
            if (n > 0) {
                check(data, size, asks[a].key, want, n, (size_t)n);
            }
        }
    }
    free(want);
    return 0;
}

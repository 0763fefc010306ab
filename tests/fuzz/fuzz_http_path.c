/* Fuzzes the agent's decoding of a request target (http/server.c), which
 * every request goes through before routing: the bytes are a request target
 * as libmicrohttpd hands it over (a C string: it stops at a NUL). An accepted
 * target gives a path that starts with '/', holds no "." or ".." segment and
 * is no longer than the target; the same path written fully percent-encoded,
 * in absolute form or with a query decodes to itself; a refused target
 * leaves the output alone and says 400 or 403. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/server-internal.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *path)
{
    RB_ASSERT(path[0] == '/');
    for (const char *s = path; *s;) {
        s++; /* past '/' */
        size_t len = strcspn(s, "/");
        RB_ASSERT(!(len == 1 && s[0] == '.') && !(len == 2 && s[0] == '.' && s[1] == '.'));
        s += len;
    }
}

/* `path` decoded again from another spelling of it. */
static void expect_same(const char *target, const char *path)
{
    char *again = NULL;
    RB_ASSERT(http_decode_path(target, &again) == 0);
    RB_ASSERT(again != NULL && streq(again, path));
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) { /* the server's max_header_size bounds the request line */
        return 0;
    }
    char *target = memdup_str(data, size);
    if (!target) {
        return 0;
    }
    char *const untouched = (char *)(uintptr_t)1;
    char *path = untouched;
    unsigned r = http_decode_path(target, &path);
    if (r != 0) {
        RB_ASSERT(r == 400 || r == 403);
        RB_ASSERT(path == untouched);
        free(target);
        return 0;
    }
    RB_ASSERT(path != untouched && path != NULL);
    size_t n = strlen(path);
    RB_ASSERT(n <= strlen(target));
    check_path(path);

    /* Every byte escaped ('/' kept, so segments stay segments), behind the
     * absolute form's scheme and authority (RFC 9112 §3.2.2) and before a
     * query, which is not the path's. */
    static const char origin[] = "http://[2001:db8::1]:8080", query[] = "?a=%2F&b";
    char *abs = malloc(sizeof(origin) - 1 + 3 * n + sizeof(query));
    RB_ASSERT(abs != NULL);
    char *enc = abs + sizeof(origin) - 1;
    memcpy(abs, origin, sizeof(origin) - 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (path[i] == '/') {
            enc[o++] = '/';
        } else {
            static const char hexd[] = "0123456789abcdef";
            unsigned char c = (unsigned char)path[i];
            enc[o++] = '%';
            enc[o++] = hexd[c >> 4];
            enc[o++] = hexd[c & 15];
        }
    }
    enc[o] = '\0';
    expect_same(enc, path);
    expect_same(abs, path);
    memcpy(enc + o, query, sizeof(query));
    expect_same(enc, path);
    expect_same(abs, path);
    /* Decoding is done once: a path without '%' (or '?') is its own target. */
    if (!strchr(path, '%') && !strchr(path, '?')) {
        expect_same(path, path);
    }
    free(abs);
    free(path);
    free(target);
    return 0;
}

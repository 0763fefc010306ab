#include "state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "fileio.h"
#include "util.h"

int state_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return negative_errno();
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void state_hex(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0xf];
    }
    out[2 * len] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int state_unhex(const char *hex, uint8_t *out, size_t n)
{
    if (strlen(hex) != 2 * n) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]);
        int lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -EINVAL;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int state_dir_ensure(const char *dir)
{
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        return negative_errno();
    }
    struct stat st;
    if (stat(dir, &st) < 0) {
        return negative_errno();
    }
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

char *state_path(const char *dir, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0) {
        return NULL;
    }
    return p;
}

int state_server_duid(const char *dir, uint8_t *duid, size_t cap, size_t *ret_len)
{
    _cleanup_free_ char *path = state_path(dir, "server-duid");
    if (!path) {
        return -ENOMEM;
    }
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = fileio_read_all(path, 1024, (void **)&text, &len);
    if (r == 0) {
        text[strcspn(text, "\r\n")] = '\0';
        size_t n = strlen(text) / 2;
        if (n < 3 || n > cap || state_unhex(text, duid, n) < 0) {
            return -EBADMSG;
        }
        *ret_len = n;
        return 0;
    }
    if (r != -ENOENT) {
        return r;
    }
    /* RFC 6355: type 4, then a 16-byte UUID; make it a version 4 (random)
     * UUID per RFC 4122 §4.4. */
    uint8_t fresh[18] = { 0x00, 0x04 };
    if (cap < sizeof(fresh)) {
        return -ENOSPC;
    }
    r = state_random(fresh + 2, 16);
    if (r < 0) {
        return r;
    }
    fresh[2 + 6] = (uint8_t)((fresh[2 + 6] & 0x0f) | 0x40);
    fresh[2 + 8] = (uint8_t)((fresh[2 + 8] & 0x3f) | 0x80);
    char line[2 * sizeof(fresh) + 2];
    state_hex(fresh, sizeof(fresh), line);
    strcat(line, "\n");
    r = fileio_write_atomic(path, line, strlen(line), 0640);
    if (r < 0) {
        return r;
    }
    memcpy(duid, fresh, sizeof(fresh));
    *ret_len = sizeof(fresh);
    return 0;
}

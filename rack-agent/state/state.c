#include "state/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "fileio.h"
#include "hex.h"
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
        if (n < 3 || n > cap || hex_decode(text, duid, n) < 0) {
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
    hex_encode(fresh, sizeof(fresh), line);
    strcat(line, "\n");
    r = fileio_write_atomic(path, line, strlen(line), 0600);
    if (r < 0) {
        return r;
    }
    memcpy(duid, fresh, sizeof(fresh));
    *ret_len = sizeof(fresh);
    return 0;
}

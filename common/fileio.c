#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

struct fileio_atomic {
    char *path;
    char *dir;
    char *tmp;
    int fd;
    mode_t mode;
};

int fileio_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return negative_errno();
        }
        /* write(2) on a regular file returns 0 only for len 0; treat it as
         * "no space" rather than loop forever. */
        if (n == 0) {
            return -ENOSPC;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fileio_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return negative_errno();
    }
    int r = 0;
    if (fsync(fd) < 0) {
        r = negative_errno();
    }
    close(fd);
    return r;
}

fileio_atomic *fileio_atomic_abort(fileio_atomic *a)
{
    if (!a) {
        return NULL;
    }
    if (a->fd >= 0) {
        close(a->fd);
    }
    if (a->tmp) {
        unlink(a->tmp);
    }
    free(a->path);
    free(a->dir);
    free(a->tmp);
    free(a);
    return NULL;
}

int fileio_atomic_begin(const char *path, mode_t mode, fileio_atomic **ret)
{
    size_t len = strlen(path);
    if (len == 0 || path[len - 1] == '/') {
        return -EISDIR;
    }

    fileio_atomic *a = calloc(1, sizeof(*a));
    if (!a) {
        return -ENOMEM;
    }
    a->fd = -1;
    a->mode = mode & 07777;

    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    /* "/x" lives in "/", "x" in ".". */
    if (slash == path) {
        a->dir = strdup("/");
    } else if (slash) {
        a->dir = strndup(path, (size_t)(slash - path));
    } else {
        a->dir = strdup(".");
    }
    a->path = strdup(path);
    /* Same directory as the target: rename(2) is atomic only within one
     * filesystem. The dot hides it from globbing readers. */
    size_t tlen = (size_t)(base - path) + 1 + strlen(base) + 8 + 1;
    a->tmp = malloc(tlen);
    if (!a->dir || !a->path || !a->tmp) {
        /* No temporary file exists yet: abort must not unlink a name. */
        free(a->tmp);
        a->tmp = NULL;
        fileio_atomic_abort(a);
        return -ENOMEM;
    }
    snprintf(a->tmp, tlen, "%.*s.%s.XXXXXX", (int)(base - path), path, base);

    a->fd = mkostemp(a->tmp, O_CLOEXEC);
    if (a->fd < 0) {
        int r = negative_errno();
        /* Nothing was created; abort must not unlink a name we do not own. */
        free(a->tmp);
        a->tmp = NULL;
        fileio_atomic_abort(a);
        return r;
    }
    *ret = a;
    return 0;
}

int fileio_atomic_fd(const fileio_atomic *a)
{
    return a->fd;
}

int fileio_atomic_commit(fileio_atomic *a)
{
    int r;

    /* mkostemp() made the file 0600; set the real mode only now, so nobody
     * reads a half-written file through a permissive mode. */
    if (fchmod(a->fd, a->mode) < 0 || fsync(a->fd) < 0) {
        r = negative_errno();
        goto fail;
    }
    /* close(2) can report delayed write errors (NFS); check it before the
     * rename makes the content visible. */
    r = close(a->fd);
    a->fd = -1;
    if (r < 0) {
        r = negative_errno();
        goto fail;
    }
    if (rename(a->tmp, a->path) < 0) {
        r = negative_errno();
        goto fail;
    }
    free(a->tmp);
    a->tmp = NULL;
    r = fileio_fsync_dir(a->dir);
    fileio_atomic_abort(a);
    return r;

fail:
    fileio_atomic_abort(a);
    return r;
}

int fileio_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    fileio_atomic *a;
    int r = fileio_atomic_begin(path, mode, &a);
    if (r < 0) {
        return r;
    }
    r = fileio_write_all(a->fd, data, len);
    if (r < 0) {
        fileio_atomic_abort(a);
        return r;
    }
    return fileio_atomic_commit(a);
}

int fileio_read_all(const char *path, size_t max, void **ret, size_t *ret_len)
{
    int r = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    size_t cap;
    struct stat st;
    /* No allocation can reach that size anyway; the clamp keeps max + 1 and
     * cap * 2 below from wrapping. */
    if (max > SIZE_MAX / 4) {
        max = SIZE_MAX / 4;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return negative_errno();
    }

    if (fstat(fd, &st) < 0) {
        r = negative_errno();
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        r = -EISDIR;
        goto out;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
        r = -EFBIG;
        goto out;
    }

    /* Size from stat as a first guess (0 for /proc and pipes), never more
     * than max + 1: one byte past max is how growth past max is noticed. */
    cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    if (cap > max + 1) {
        cap = max + 1;
    }
    buf = malloc(cap + 1);
    if (!buf) {
        r = -ENOMEM;
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (len > max) {
                break;
            }
            size_t ncap = cap * 2;
            if (ncap > max + 1) {
                ncap = max + 1;
            }
            uint8_t *nbuf = realloc(buf, ncap + 1);
            if (!nbuf) {
                r = -ENOMEM;
                goto out;
            }
            buf = nbuf;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            r = negative_errno();
            goto out;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    if (len > max) {
        r = -EFBIG;
        goto out;
    }
    buf[len] = '\0';
    *ret = buf;
    *ret_len = len;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return r;
}

char *fileio_path_relative(const char *base, const char *rel)
{
    const char *slash = strrchr(base, '/');
    if (rel[0] == '/' || !slash) {
        return strdup(rel);
    }
    char *p = NULL;
    if (asprintf(&p, "%.*s/%s", (int)(slash - base), base, rel) < 0) {
        return NULL;
    }
    return p;
}

int fileio_mkdir_p(const char *path, mode_t mode)
{
    _cleanup_free_ char *copy = strdup(path);
    if (!copy) {
        return -ENOMEM;
    }
    for (char *p = copy + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
                return negative_errno();
            }
            *p = '/';
        }
    }
    if (mkdir(copy, mode) < 0 && errno != EEXIST) {
        return negative_errno();
    }
    return 0;
}

/* files.h for the TFTP root, plus the hook other sources register through
 * (files-internal.h). The root is opened once as a directory fd; every name
 * is opened beneath it with openat2(RESOLVE_BENEATH), so neither "..",
 * nor an absolute symlink, nor a relative one climbing out can leave it,
 * whatever the string checks before it miss. */
#include "files-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fileio.h"
#include "util.h"

typedef struct files_source {
    char *prefix;
    size_t prefix_len;
    files_source_fn fn;
    void *userdata;
} files_source;

struct files {
    int root_fd;
    char *root;
    files_source sources[FILES_MAX_SOURCES];
    size_t n_sources;
};

int files_new(const char *root_dir, files **ret)
{
    _cleanup_close_ int fd = open(root_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return negative_errno();
    }
    files *f = calloc(1, sizeof(*f));
    if (!f) {
        return -ENOMEM;
    }
    f->root = strdup(root_dir);
    if (!f->root) {
        free(f);
        return -ENOMEM;
    }
    f->root_fd = TAKE_FD(fd);
    *ret = f;
    return 0;
}

files *files_free(files *f)
{
    if (!f) {
        return NULL;
    }
    for (size_t i = 0; i < f->n_sources; i++) {
        free(f->sources[i].prefix);
    }
    if (f->root_fd >= 0) {
        close(f->root_fd);
    }
    free(f->root);
    free(f);
    return NULL;
}

const char *files_root(const files *f)
{
    return f->root;
}

int files_add_source(files *f, const char *prefix, files_source_fn fn, void *userdata)
{
    if (strempty(prefix) || strchr(prefix, '/')) {
        return -EINVAL;
    }
    if (streq(prefix, "files")) {
        return -EEXIST;
    }
    for (size_t i = 0; i < f->n_sources; i++) {
        if (streq(f->sources[i].prefix, prefix)) {
            return -EEXIST;
        }
    }
    if (f->n_sources == FILES_MAX_SOURCES) {
        return -E2BIG;
    }
    char *p = strdup(prefix);
    if (!p) {
        return -ENOMEM;
    }
    f->sources[f->n_sources++] =
        (files_source){ .prefix = p, .prefix_len = strlen(p), .fn = fn, .userdata = userdata };
    return 0;
}

int files_path_check(const char *path, size_t len)
{
    if (len == 0 || path[0] == '/') {
        return -EACCES;
    }
    if (len > FILES_MAX_PATH) {
        return -ENAMETOOLONG;
    }
    if (memchr(path, '\0', len) || memchr(path, '\\', len)) {
        /* A NUL would cut the name short; backslashes are DOS paths some
         * ROMs send, which we do not guess at. */
        return -EACCES;
    }
    size_t start = 0;
    while (start <= len) {
        const char *slash = memchr(path + start, '/', len - start);
        size_t end = slash ? (size_t)(slash - path) : len;
        size_t n = end - start;
        if (n > FILES_MAX_COMPONENT) {
            return -ENAMETOOLONG;
        }
        if ((n == 1 && path[start] == '.') ||
            (n == 2 && path[start] == '.' && path[start + 1] == '.')) {
            return -EACCES;
        }
        start = end + 1;
    }
    return 0;
}

const char *files_content_type(const char *path)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        { ".efi", "application/efi" }, { ".ipxe", "text/plain" }, { ".cfg", "text/plain" },
        { ".txt", "text/plain" },      { ".ks", "text/plain" },   { ".conf", "text/plain" },
    };
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (dot) {
        for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
            if (strcasecmp(dot, types[i].ext) == 0) {
                return types[i].type;
            }
        }
    }
    return "application/octet-stream";
}

/* Opens a checked relative name beneath the root: symlinks are followed
 * only while they stay beneath it (an absolute one or one climbing out
 * fails with EXDEV), "/proc"-style magic links never. */
static int open_beneath(const files *f, const char *name, files_result *res)
{
    struct open_how how = {
        /* O_NONBLOCK: a FIFO planted in the root must not block the loop;
         * it is refused below anyway. */
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long k = syscall(SYS_openat2, f->root_fd, name, &how, sizeof(how));
    if (k < 0) {
        switch (errno) {
        case ENOENT:
        case ENOTDIR:
            return -ENOENT;
        case ENAMETOOLONG:
            return -ENAMETOOLONG;
        case EXDEV:
        case ELOOP:
        case EACCES:
        case EPERM:
            return -EACCES;
        default:
            return negative_errno();
        }
    }
    _cleanup_close_ int fd = (int)k;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        return negative_errno();
    }
    if (!S_ISREG(st.st_mode)) {
        /* Directories, devices, FIFOs, sockets: not files we serve. */
        return S_ISDIR(st.st_mode) ? -ENOENT : -EACCES;
    }
    /* Back to blocking reads for the regular file. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        return negative_errno();
    }
    *res = (files_result){
        .size = (uint64_t)st.st_size,
        .content_type = files_content_type(name),
        .verified = false,
        .image_kind = -1,
        .profile = NULL,
    };
    /* Strong validator: changes whenever the file is replaced (inode) or
     * rewritten (size, mtime to the nanosecond). */
    snprintf(res->etag, sizeof(res->etag), "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"",
             (uint64_t)st.st_ino, (uint64_t)st.st_size,
             (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec);
    res->fd = TAKE_FD(fd);
    return 0;
}

int files_open(files *f, const char *path, files_done_fn done, void *userdata,
               files_request **ret_req)
{
    if (ret_req) {
        *ret_req = NULL;
    }
    size_t len = strnlen(path, FILES_MAX_PATH + 1);
    int r = files_path_check(path, len);
    if (r == 0) {
        const char *name = path;
        if (strncmp(path, "files/", 6) == 0) {
            name = path + 6;
        } else {
            for (size_t i = 0; i < f->n_sources; i++) {
                const files_source *s = &f->sources[i];
                if (strncmp(path, s->prefix, s->prefix_len) == 0 && path[s->prefix_len] == '/') {
                    return s->fn(s->userdata, path + s->prefix_len + 1, done, userdata, ret_req);
                }
            }
        }
        files_result res;
        if (name[0] == '\0') {
            r = -ENOENT;
        } else {
            r = open_beneath(f, name, &res);
        }
        if (r == 0) {
            done(userdata, 0, &res);
            return 0;
        }
    }
    /* The root answers at once: refusals go through the callback too, so
     * callers have one path for every outcome. */
    done(userdata, r, NULL);
    return 0;
}

void files_request_cancel(files_request *req)
{
    if (req) {
        req->cancel(req);
    }
}

int files_seed_copy(const char *root_dir, const char *name, const char *src)
{
    _cleanup_free_ char *dst = NULL;
    if (asprintf(&dst, "%s/%s", root_dir, name) < 0) {
        return -ENOMEM;
    }
    struct stat st;
    if (lstat(dst, &st) == 0) {
        return 0;
    }
    if (errno != ENOENT) {
        return negative_errno();
    }
    _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        return negative_errno();
    }
    if (fstat(in, &st) < 0) {
        return negative_errno();
    }
    if (!S_ISREG(st.st_mode)) {
        return -EINVAL;
    }
    fileio_atomic *a = NULL;
    int r = fileio_atomic_begin(dst, 0644, &a);
    if (r < 0) {
        return r;
    }
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            r = negative_errno();
            fileio_atomic_abort(a);
            return r;
        }
        if (n == 0) {
            break;
        }
        r = fileio_write_all(fileio_atomic_fd(a), buf, (size_t)n);
        if (r < 0) {
            fileio_atomic_abort(a);
            return r;
        }
    }
    r = fileio_atomic_commit(a);
    return r < 0 ? r : 1;
}

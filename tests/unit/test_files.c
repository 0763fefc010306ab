/* rack-agent/files/files.c: the TFTP root. Names map into the root with and
 * without "files/"; nothing reaches outside it: "..", absolute names,
 * symlinks out, NUL, backslashes, over-long names. Sources plug in by
 * prefix. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "files/files-internal.h"

typedef struct outcome {
    int calls;
    int r;
    files_result res;
    char content[64];
} outcome;

static void on_done(void *userdata, int r, const files_result *res)
{
    outcome *o = userdata;
    o->calls++;
    o->r = r;
    if (r == 0) {
        o->res = *res;
        if (res->blob) {
            /* From the small-file cache: the bytes, no fd. */
            assert_int_equal(res->fd, -1);
            size_t n = files_blob_size(res->blob);
            assert_int_equal(n, res->size);
            n = n < sizeof(o->content) - 1 ? n : sizeof(o->content) - 1;
            memcpy(o->content, files_blob_data(res->blob), n);
            o->content[n] = '\0';
            o->res.blob = files_blob_unref(res->blob);
            o->res.fd = -2; /* tells the tests it came from memory */
            return;
        }
        ssize_t n = pread(res->fd, o->content, sizeof(o->content) - 1, 0);
        o->content[n > 0 ? n : 0] = '\0';
        close(res->fd);
    }
}

static char root[PATH_MAX];
static char outside[PATH_MAX];

static void put(const char *dir, const char *name, const char *text)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "we");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    char tmpl[] = "/tmp/test_files.XXXXXX";
    char *base = mkdtemp(tmpl);
    assert_non_null(base);
    snprintf(root, sizeof(root), "%s/root", base);
    snprintf(outside, sizeof(outside), "%s/outside", base);
    assert_int_equal(mkdir(root, 0755), 0);
    assert_int_equal(mkdir(outside, 0755), 0);
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/sub", root);
    assert_int_equal(mkdir(p, 0755), 0);
    put(root, "ipxe.efi", "EFI BINARY");
    put(root, "boot.ipxe", "#!ipxe\n");
    put(root, "sub/inner.bin", "inner");
    put(outside, "secret", "SECRET");
    /* Symlinks: to /etc, to a file outside, climbing out relatively, and
     * two that stay inside. */
    snprintf(p, sizeof(p), "%s/etc", root);
    assert_int_equal(symlink("/etc", p), 0);
    snprintf(p, sizeof(p), "%s/passwd", root);
    assert_int_equal(symlink("/etc/passwd", p), 0);
    snprintf(p, sizeof(p), "%s/out", root);
    assert_int_equal(symlink("../outside/secret", p), 0);
    snprintf(p, sizeof(p), "%s/alias.efi", root);
    assert_int_equal(symlink("ipxe.efi", p), 0);
    snprintf(p, sizeof(p), "%s/sub/up", root);
    assert_int_equal(symlink("../boot.ipxe", p), 0);
    snprintf(p, sizeof(p), "%s/fifo", root);
    assert_int_equal(mkfifo(p, 0644), 0);
    files *f;
    assert_int_equal(files_new(root, &f), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    files_free(*state);
    char cmd[PATH_MAX * 2];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/..'", root);
    /* Removes the whole temp base (root's parent). */
    char base[PATH_MAX];
    snprintf(base, sizeof(base), "%s", root);
    *strrchr(base, '/') = '\0';
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static outcome open_path(files *f, const char *path)
{
    outcome o = { 0 };
    files_request *req = (files_request *)&o; /* must be overwritten */
    assert_int_equal(files_open(f, path, on_done, &o, &req), 0);
    assert_int_equal(o.calls, 1);
    assert_null(req);
    return o;
}

static outcome open_cached(files *f, const char *path)
{
    outcome o = { 0 };
    files_request *req = (files_request *)&o;
    assert_int_equal(files_open_cached(f, path, NULL, on_done, &o, &req), 0);
    assert_int_equal(o.calls, 1);
    assert_null(req);
    return o;
}

/* Sets a file's mtime (and atime) to `mtime`; its ctime becomes now. */
static void age(const char *name, time_t mtime)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", root, name);
    struct timespec ts[2] = { { .tv_sec = mtime }, { .tv_sec = mtime } };
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static void test_cache_serves_from_memory(void **state)
{
    files *f = *state;
    files_set_cache_settle(f, 0);
    const files_cache_stats *st = files_get_cache_stats(f);
    outcome o = open_cached(f, "files/ipxe.efi");
    assert_int_equal(o.r, 0);
    assert_int_equal(o.res.fd, -2);
    assert_string_equal(o.content, "EFI BINARY");
    assert_string_equal(o.res.content_type, "application/efi");
    assert_int_equal(o.res.image_kind, -1);
    char etag[72];
    strcpy(etag, o.res.etag);
    assert_int_equal(st->fills, 1);
    assert_int_equal(st->misses, 1);
    /* The bare name is the same file: a hit, same validator. */
    o = open_cached(f, "ipxe.efi");
    assert_int_equal(o.res.fd, -2);
    assert_string_equal(o.content, "EFI BINARY");
    assert_string_equal(o.res.etag, etag);
    assert_int_equal(st->hits, 1);
    assert_int_equal(st->entries, 1);
    assert_int_equal(st->bytes, 10);
    /* files_open() itself never answers from memory. */
    o = open_path(f, "ipxe.efi");
    assert_true(o.res.fd >= 0);
    assert_null(o.res.blob);
    /* Subdirectories and in-root symlinks are fine too. */
    o = open_cached(f, "sub/inner.bin");
    assert_int_equal(o.res.fd, -2);
    assert_string_equal(o.content, "inner");
    o = open_cached(f, "alias.efi");
    assert_string_equal(o.content, "EFI BINARY");
}

static void test_cache_sees_every_change(void **state)
{
    files *f = *state;
    files_set_cache_settle(f, 0);
    const files_cache_stats *st = files_get_cache_stats(f);
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/boot.ipxe", root);
    assert_string_equal(open_cached(f, "boot.ipxe").content, "#!ipxe\n");
    assert_string_equal(open_cached(f, "boot.ipxe").content, "#!ipxe\n");
    assert_int_equal(st->hits, 1);
    /* Rewritten in place with another size. */
    put(root, "boot.ipxe", "#!ipxe\nchain x\n");
    outcome o = open_cached(f, "boot.ipxe");
    assert_string_equal(o.content, "#!ipxe\nchain x\n");
    assert_int_equal(st->invalidations, 1);
    /* Same size, other bytes, an mtime put back to a fixed value: the
     * ctime still moves. */
    age("boot.ipxe", 1000000000);
    assert_string_equal(open_cached(f, "boot.ipxe").content, "#!ipxe\nchain x\n");
    put(root, "boot.ipxe", "#!ipxe\nchain y\n");
    age("boot.ipxe", 1000000000);
    assert_string_equal(open_cached(f, "boot.ipxe").content, "#!ipxe\nchain y\n");
    /* Replaced by rename (a new inode), as an atomic update does. */
    put(root, "new.tmp", "#!ipxe\nreplaced\n");
    char np[PATH_MAX * 2];
    snprintf(np, sizeof(np), "%s/new.tmp", root);
    assert_int_equal(rename(np, p), 0);
    assert_string_equal(open_cached(f, "boot.ipxe").content, "#!ipxe\nreplaced\n");
    /* Removed: gone at once. */
    assert_int_equal(unlink(p), 0);
    assert_int_equal(open_cached(f, "boot.ipxe").r, -ENOENT);
    /* Swapped for a symlink out of the root: refused, not the old copy. */
    assert_string_equal(open_cached(f, "sub/inner.bin").content, "inner");
    snprintf(p, sizeof(p), "%s/sub/inner.bin", root);
    assert_int_equal(unlink(p), 0);
    snprintf(np, sizeof(np), "%s/secret", outside);
    assert_int_equal(symlink(np, p), 0);
    o = open_cached(f, "sub/inner.bin");
    assert_int_equal(o.r, -EACCES);
    assert_int_equal(st->entries, 0);
}

static void test_cache_keeps_only_settled_small_files(void **state)
{
    files *f = *state;
    const files_cache_stats *st = files_get_cache_stats(f);
    /* Default settle time: files written just now are served from their
     * fd and not kept (a second write in the same timestamp tick would
     * not be seen). */
    outcome o = open_cached(f, "ipxe.efi");
    assert_int_equal(o.r, 0);
    assert_true(o.res.fd >= 0);
    assert_null(o.res.blob);
    assert_int_equal(st->fills, 0);
    files_set_cache_settle(f, 0);
    /* Over FILES_CACHE_MAX_FILE: from the fd. */
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/big.bin", root);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, FILES_CACHE_MAX_FILE + 1), 0);
    close(fd);
    o = open_cached(f, "big.bin");
    assert_int_equal(o.r, 0);
    assert_true(o.res.fd >= 0);
    assert_int_equal(o.res.size, FILES_CACHE_MAX_FILE + 1);
    assert_int_equal(st->fills, 0);
    /* Refusals are the same as files_open()'s. */
    assert_int_equal(open_cached(f, "../outside/secret").r, -EACCES);
    assert_int_equal(open_cached(f, "out").r, -EACCES);
    assert_int_equal(open_cached(f, "files/").r, -ENOENT);
    assert_int_equal(open_cached(f, "fifo").r, -EACCES);
    assert_int_equal(st->entries, 0);
}

static void test_cache_evicts_least_recently_used(void **state)
{
    files *f = *state;
    files_set_cache_settle(f, 0);
    const files_cache_stats *st = files_get_cache_stats(f);
    size_t n = FILES_CACHE_MAX_BYTES / FILES_CACHE_MAX_FILE + 2;
    char p[PATH_MAX * 2], name[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(p, sizeof(p), "%s/f%zu", root, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, name, 1, FILES_CACHE_MAX_FILE - 1), 1);
        close(fd);
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "f%zu", i);
        assert_int_equal(open_cached(f, name).res.fd, -2);
        if (i == 0) {
            /* f0 is used again and again: it stays. */
            continue;
        }
        assert_int_equal(open_cached(f, "f0").res.fd, -2);
    }
    assert_true(st->bytes <= FILES_CACHE_MAX_BYTES);
    assert_int_equal(st->evictions, 2);
    uint64_t fills = st->fills;
    assert_int_equal(open_cached(f, "f0").res.fd, -2);
    assert_int_equal(st->fills, fills); /* still there */
    assert_int_equal(open_cached(f, "f1").res.fd, -2);
    assert_int_equal(st->fills, fills + 1); /* f1 was the oldest: evicted, read again */
}

static void test_cache_leaves_sources_alone(void **state);

static void test_bare_and_files_prefix(void **state)
{
    files *f = *state;
    outcome o = open_path(f, "ipxe.efi");
    assert_int_equal(o.r, 0);
    assert_string_equal(o.content, "EFI BINARY");
    assert_int_equal(o.res.size, 10);
    assert_string_equal(o.res.content_type, "application/efi");
    assert_false(o.res.verified);
    assert_int_equal(o.res.image_kind, -1);
    assert_null(o.res.profile);
    assert_true(o.res.etag[0] == '"' && o.res.etag[strlen(o.res.etag) - 1] == '"');
    char etag[72];
    strcpy(etag, o.res.etag);
    o = open_path(f, "files/ipxe.efi");
    assert_int_equal(o.r, 0);
    assert_string_equal(o.content, "EFI BINARY");
    assert_string_equal(o.res.etag, etag);
    o = open_path(f, "boot.ipxe");
    assert_string_equal(o.res.content_type, "text/plain");
    o = open_path(f, "sub/inner.bin");
    assert_int_equal(o.r, 0);
    assert_string_equal(o.res.content_type, "application/octet-stream");
    assert_string_equal(o.content, "inner");
    /* The ETag changes when the file does. */
    put(root, "ipxe.efi", "EFI BINARY v2");
    o = open_path(f, "ipxe.efi");
    assert_string_not_equal(o.res.etag, etag);
    put(root, "ipxe.efi", "EFI BINARY");
}

static void test_missing(void **state)
{
    files *f = *state;
    assert_int_equal(open_path(f, "nope").r, -ENOENT);
    assert_int_equal(open_path(f, "files/nope").r, -ENOENT);
    assert_int_equal(open_path(f, "ipxe.efi/x").r, -ENOENT);
    assert_int_equal(open_path(f, "sub").r, -ENOENT);
    assert_int_equal(open_path(f, "files/").r, -ENOENT);
}

static void test_traversal_refused(void **state)
{
    files *f = *state;
    assert_int_equal(open_path(f, "../x").r, -EACCES);
    assert_int_equal(open_path(f, "../outside/secret").r, -EACCES);
    assert_int_equal(open_path(f, "/etc/passwd").r, -EACCES);
    assert_int_equal(open_path(f, "a/../../x").r, -EACCES);
    assert_int_equal(open_path(f, "sub/../ipxe.efi").r, -EACCES);
    assert_int_equal(open_path(f, "files/../outside/secret").r, -EACCES);
    assert_int_equal(open_path(f, "..").r, -EACCES);
    assert_int_equal(open_path(f, "./ipxe.efi").r, -EACCES);
    assert_int_equal(open_path(f, "sub\\inner.bin").r, -EACCES);
    assert_int_equal(open_path(f, "..\\..\\etc\\passwd").r, -EACCES);
    assert_int_equal(open_path(f, "").r, -EACCES);
}

static void test_symlinks(void **state)
{
    files *f = *state;
    /* Out of the root: refused, whether absolute or climbing. */
    assert_int_equal(open_path(f, "etc/passwd").r, -EACCES);
    assert_int_equal(open_path(f, "passwd").r, -EACCES);
    assert_int_equal(open_path(f, "out").r, -EACCES);
    /* Inside the root: allowed. */
    outcome o = open_path(f, "alias.efi");
    assert_int_equal(o.r, 0);
    assert_string_equal(o.content, "EFI BINARY");
    o = open_path(f, "sub/up");
    assert_int_equal(o.r, 0);
    assert_string_equal(o.content, "#!ipxe\n");
    /* Not a regular file. */
    assert_int_equal(open_path(f, "fifo").r, -EACCES);
}

static void test_path_rules(void **state)
{
    assert_int_equal(files_path_check("a\0b", 3), -EACCES);
    assert_int_equal(files_path_check("ab", 2), 0);
    char long_comp[300];
    memset(long_comp, 'a', sizeof(long_comp));
    assert_int_equal(files_path_check(long_comp, 255), 0);
    assert_int_equal(files_path_check(long_comp, 256), -ENAMETOOLONG);
    char long_path[1100];
    for (size_t i = 0; i < sizeof(long_path); i++) {
        long_path[i] = i % 100 == 99 ? '/' : 'b';
    }
    assert_int_equal(files_path_check(long_path, 1024), 0);
    assert_int_equal(files_path_check(long_path, 1025), -ENAMETOOLONG);
    assert_int_equal(files_path_check("a//b", 4), 0);
    assert_int_equal(files_path_check("a/...", 5), 0);
    assert_int_equal(files_path_check("a/..", 4), -EACCES);
    assert_int_equal(files_path_check("a/.", 3), -EACCES);

    files *f = *state;
    long_comp[256] = '\0';
    assert_int_equal(open_path(f, long_comp).r, -ENAMETOOLONG);
    long_path[1099] = '\0';
    assert_int_equal(open_path(f, long_path).r, -ENAMETOOLONG);
}

typedef struct fake_req {
    files_request base;
    int *cancelled;
} fake_req;

static void fake_cancel(files_request *req)
{
    fake_req *r = (fake_req *)req;
    (*r->cancelled)++;
    free(r);
}

static char last_source_path[64];
static const struct sockaddr_in6 *last_source_client;
static int cancelled;

static int fake_source(void *userdata, const char *path, const struct sockaddr_in6 *client,
                       files_done_fn done, void *done_userdata, files_request **ret_req)
{
    snprintf(last_source_path, sizeof(last_source_path), "%s", path);
    last_source_client = client;
    fake_req *r = calloc(1, sizeof(*r));
    r->base.cancel = fake_cancel;
    r->cancelled = &cancelled;
    *ret_req = &r->base;
    return 0;
}

static void test_sources(void **state)
{
    files *f = *state;
    assert_int_equal(files_add_source(f, "images", fake_source, NULL), 0);
    assert_int_equal(files_add_source(f, "images", fake_source, NULL), -EEXIST);
    assert_int_equal(files_add_source(f, "files", fake_source, NULL), -EEXIST);
    assert_int_equal(files_add_source(f, "a/b", fake_source, NULL), -EINVAL);
    assert_int_equal(files_add_source(f, "", fake_source, NULL), -EINVAL);
    outcome o = { 0 };
    files_request *req = NULL;
    assert_int_equal(files_open(f, "images/el9/vmlinuz", on_done, &o, &req), 0);
    assert_string_equal(last_source_path, "el9/vmlinuz");
    assert_null(last_source_client); /* unknown */
    assert_int_equal(o.calls, 0);
    assert_non_null(req);
    files_request_cancel(req);
    assert_int_equal(cancelled, 1);
    /* Who asks reaches the source (a source may serve only some hosts). */
    const struct sockaddr_in6 peer = { .sin6_family = AF_INET6, .sin6_port = htons(2000) };
    assert_int_equal(files_open_from(f, "images/el9/initrd.img", &peer, on_done, &o, &req), 0);
    assert_ptr_equal(last_source_client, &peer);
    files_request_cancel(req);
    assert_int_equal(cancelled, 2);
    files_request_cancel(NULL);
    /* Path rules apply before any source sees the path. */
    last_source_path[0] = '\0';
    assert_int_equal(open_path(f, "images/../ipxe.efi").r, -EACCES);
    assert_string_equal(last_source_path, "");
    /* "imagesX/..." is not the source's; the root answers. */
    assert_int_equal(open_path(f, "imagesx/y").r, -ENOENT);
}

static void test_cache_leaves_sources_alone(void **state)
{
    files *f = *state;
    files_set_cache_settle(f, 0);
    assert_int_equal(files_add_source(f, "images", fake_source, NULL), 0);
    outcome o = { 0 };
    files_request *req = NULL;
    cancelled = 0;
    /* The source's path goes to the source, as with files_open(). */
    const struct sockaddr_in6 peer = { .sin6_family = AF_INET6, .sin6_port = htons(2000) };
    assert_int_equal(files_open_cached(f, "images/el9/vmlinuz", &peer, on_done, &o, &req), 0);
    assert_string_equal(last_source_path, "el9/vmlinuz");
    assert_ptr_equal(last_source_client, &peer);
    assert_non_null(req);
    files_request_cancel(req);
    assert_int_equal(cancelled, 1);
    assert_int_equal(files_get_cache_stats(f)->entries, 0);
}

static void test_seed_copy_follows_symlink(void **state)
{
    char src[PATH_MAX * 2], link[PATH_MAX * 2], dst[PATH_MAX * 2];
    snprintf(src, sizeof(src), "%s/secret", outside);
    snprintf(link, sizeof(link), "%s/link.efi", outside);
    assert_int_equal(symlink(src, link), 0);
    assert_int_equal(files_seed_copy(root, "seeded.efi", link), 1);
    snprintf(dst, sizeof(dst), "%s/seeded.efi", root);
    struct stat st;
    assert_int_equal(lstat(dst, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 6);
    files *f = *state;
    outcome o = open_path(f, "seeded.efi");
    assert_int_equal(o.r, 0);
    assert_string_equal(o.content, "SECRET");
    /* Present already: left alone. */
    assert_int_equal(files_seed_copy(root, "seeded.efi", link), 0);
    assert_int_equal(files_seed_copy(root, "other.efi", "/nonexistent/x"), -ENOENT);
}

static void test_new_errors(void **state)
{
    files *f = NULL;
    assert_int_equal(files_new("/nonexistent/dir", &f), -ENOENT);
    assert_int_equal(files_new("/etc/passwd", &f), -ENOTDIR);
    assert_null(files_free(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bare_and_files_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traversal_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_copy_follows_symlink, setup, teardown),
        cmocka_unit_test(test_new_errors),
        cmocka_unit_test_setup_teardown(test_cache_serves_from_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_sees_every_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_keeps_only_settled_small_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_evicts_least_recently_used, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_leaves_sources_alone, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* common/fileio: atomic replace leaves either the old file or the new one and
 * never a stray temporary file, applies the mode exactly, and read_all keeps
 * to its limit. Failures are provoked for real: a rename onto a directory and
 * a write stopped by RLIMIT_FSIZE (permissions would not stop root). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fileio.h"

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_fileio.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/hosts.conf", f->dir);
    *state = f;
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    fixture *f = *state;
    int r = nftw(f->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return r;
}

/* Names in dir other than . and .., joined with ' ' in sorted order. */
static void list_dir(const char *dir, char *out, size_t size)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    assert_true(n >= 0);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0) {
            if (out[0]) {
                strncat(out, " ", size - strlen(out) - 1);
            }
            strncat(out, names[i]->d_name, size - strlen(out) - 1);
        }
        free(names[i]);
    }
    free(names);
}

static void assert_dir_holds(const char *dir, const char *want)
{
    char got[512];
    list_dir(dir, got, sizeof(got));
    assert_string_equal(got, want);
}

static void assert_file_is(const char *path, const char *want)
{
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(fileio_read_all(path, 1 << 20, &buf, &len), 0);
    assert_int_equal(len, strlen(want));
    assert_string_equal(buf, want);
    free(buf);
}

static void test_write_new_and_replace(void **state)
{
    fixture *f = *state;

    assert_int_equal(fileio_write_atomic(f->path, "one\n", 4, 0640), 0);
    assert_file_is(f->path, "one\n");

    /* A hard link to the old file keeps the old content: the new file was
     * renamed into place, not written over the old one. */
    char old_link[160];
    snprintf(old_link, sizeof(old_link), "%s/old", f->dir);
    assert_int_equal(link(f->path, old_link), 0);

    assert_int_equal(fileio_write_atomic(f->path, "two, longer\n", 12, 0644), 0);
    assert_file_is(f->path, "two, longer\n");
    assert_file_is(old_link, "one\n");
    assert_dir_holds(f->dir, "hosts.conf old");

    /* Zero bytes is a valid replacement. */
    assert_int_equal(fileio_write_atomic(f->path, "", 0, 0644), 0);
    assert_file_is(f->path, "");
}

static void test_mode_applied_exactly(void **state)
{
    fixture *f = *state;
    struct stat st;
    mode_t old_umask = umask(077);

    /* umask would turn 0664 into 0600; the mode is applied as given. */
    assert_int_equal(fileio_write_atomic(f->path, "x", 1, 0664), 0);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0664);

    assert_int_equal(fileio_write_atomic(f->path, "x", 1, 0600), 0);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_true(S_ISREG(st.st_mode));
    umask(old_umask);
}

static void test_relative_path(void **state)
{
    fixture *f = *state;
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(f->dir), 0);
    int r = fileio_write_atomic("rel.conf", "rel", 3, 0644);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(r, 0);
    assert_dir_holds(f->dir, "rel.conf");
}

static void test_failed_rename_cleans_up(void **state)
{
    fixture *f = *state;
    /* The target is a non-empty directory: the temp file is written, then
     * rename(2) fails, and the temp file must not stay behind. */
    char inside[160];
    assert_int_equal(mkdir(f->path, 0755), 0);
    snprintf(inside, sizeof(inside), "%s/keep", f->path);
    assert_int_equal(fileio_write_atomic(inside, "kept", 4, 0644), 0);

    int r = fileio_write_atomic(f->path, "new", 3, 0644);
    assert_true(r == -EISDIR || r == -ENOTEMPTY || r == -EEXIST);
    assert_dir_holds(f->dir, "hosts.conf");
    assert_file_is(inside, "kept");

    assert_int_equal(fileio_write_atomic(f->path, "x", 1, 0644), r);
    assert_int_equal(fileio_write_atomic("/", "x", 1, 0644), -EISDIR);
    assert_int_equal(fileio_write_atomic("", "x", 1, 0644), -EISDIR);
}

static void test_missing_directory(void **state)
{
    fixture *f = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/no/such/dir/file", f->dir);
    assert_int_equal(fileio_write_atomic(path, "x", 1, 0644), -ENOENT);
    assert_dir_holds(f->dir, "");
}

static void test_failed_write_keeps_old_content(void **state)
{
    fixture *f = *state;
    assert_int_equal(fileio_write_atomic(f->path, "old content\n", 12, 0644), 0);

    /* RLIMIT_FSIZE makes write(2) fail with EFBIG past 4 KiB (SIGXFSZ
     * ignored), a real mid-write failure even for root. */
    struct rlimit saved, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small = saved;
    small.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);

    static char big[8192];
    memset(big, 'n', sizeof(big));
    int r = fileio_write_atomic(f->path, big, sizeof(big), 0644);

    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);

    assert_int_equal(r, -EFBIG);
    assert_file_is(f->path, "old content\n");
    assert_dir_holds(f->dir, "hosts.conf");
}

static void test_streaming(void **state)
{
    fixture *f = *state;
    fileio_atomic *a = NULL;
    assert_int_equal(fileio_write_atomic(f->path, "old\n", 4, 0644), 0);

    assert_int_equal(fileio_atomic_begin(f->path, 0640, &a), 0);
    assert_non_null(a);
    int fd = fileio_atomic_fd(a);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(fileio_write_all(fd, "0123456789", 10), 0);
    }
    /* Until commit, readers still see the old file. */
    assert_file_is(f->path, "old\n");
    assert_int_equal(fileio_atomic_commit(a), 0);

    void *buf;
    size_t len;
    assert_int_equal(fileio_read_all(f->path, 10000, &buf, &len), 0);
    assert_int_equal(len, 10000);
    assert_memory_equal((char *)buf + 9990, "0123456789", 10);
    free(buf);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_dir_holds(f->dir, "hosts.conf");

    /* Abort: old content kept, temp file gone. */
    assert_int_equal(fileio_atomic_begin(f->path, 0644, &a), 0);
    assert_int_equal(fileio_write_all(fileio_atomic_fd(a), "discard", 7), 0);
    char during[512];
    list_dir(f->dir, during, sizeof(during));
    assert_true(strncmp(during, ".hosts.conf.", 12) == 0);
    assert_null(fileio_atomic_abort(a));
    assert_null(fileio_atomic_abort(NULL));
    assert_dir_holds(f->dir, "hosts.conf");
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_size, 10000);
}

static void test_read_all_limits(void **state)
{
    fixture *f = *state;
    void *buf = (void *)1;
    size_t len = 99;

    assert_int_equal(fileio_read_all(f->path, 100, &buf, &len), -ENOENT);
    assert_true(buf == (void *)1 && len == 99);

    assert_int_equal(fileio_write_atomic(f->path, "", 0, 0644), 0);
    assert_int_equal(fileio_read_all(f->path, 0, &buf, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(buf, "");
    free(buf);

    assert_int_equal(fileio_write_atomic(f->path, "0123456789", 10, 0644), 0);
    assert_int_equal(fileio_read_all(f->path, 10, &buf, &len), 0);
    assert_int_equal(len, 10);
    assert_int_equal(((char *)buf)[10], '\0');
    free(buf);
    buf = (void *)1;
    assert_int_equal(fileio_read_all(f->path, 9, &buf, &len), -EFBIG);
    assert_true(buf == (void *)1);
    assert_int_equal(fileio_read_all(f->path, 0, &buf, &len), -EFBIG);

    assert_int_equal(fileio_read_all(f->dir, 100, &buf, &len), -EISDIR);

    /* /proc files report size 0: the limit is enforced while reading. */
    assert_int_equal(fileio_read_all("/proc/self/status", 16, &buf, &len), -EFBIG);
    assert_int_equal(fileio_read_all("/proc/self/status", 1 << 20, &buf, &len), 0);
    assert_true(len > 16);
    assert_int_equal(strlen(buf), len);
    assert_true(strstr(buf, "Name:") != NULL);
    free(buf);
}

static void test_fsync_dir(void **state)
{
    fixture *f = *state;
    assert_int_equal(fileio_fsync_dir(f->dir), 0);
    assert_int_equal(fileio_fsync_dir("/nonexistent-rackboot-dir"), -ENOENT);
    assert_int_equal(fileio_write_atomic(f->path, "x", 1, 0644), 0);
    assert_int_equal(fileio_fsync_dir(f->path), -ENOTDIR);
}

/* mkdir -p: the missing parents 0755, the directory itself `mode`, an
 * existing one fine; a file in the way is an error. */
static void test_mkdir_p(void **state)
{
    fixture *f = *state;
    char deep[192], parent[160];
    snprintf(parent, sizeof(parent), "%s/a/b", f->dir);
    snprintf(deep, sizeof(deep), "%s/c", parent);
    mode_t old = umask(0);
    assert_int_equal(fileio_mkdir_p(deep, 0700), 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(stat(parent, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    assert_int_equal(fileio_mkdir_p(deep, 0700), 0); /* again: fine */
    assert_int_equal(fileio_write_atomic(f->path, "x", 1, 0644), 0);
    char under_file[192];
    snprintf(under_file, sizeof(under_file), "%s/sub", f->path);
    assert_int_equal(fileio_mkdir_p(under_file, 0700), -ENOTDIR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_new_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_applied_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_rename_cleans_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_keeps_old_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streaming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_all_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

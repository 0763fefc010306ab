/* deploy-ramdisk/writer/sink, on a sparse regular file standing for a disk:
 * the first MiB reaches the target only at commit, and last; an abort leaves
 * it (and the backup GPT places) zero; an image larger than the target is
 * refused before a byte lands past its end; short writes and EINTR from the
 * kernel are carried through. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "writer/sink-internal.h"
#include "writer/sink.h"

#define MiB ((size_t)1 << 20)

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
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_sink.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/disk", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unlink(f->path);
    int r = rmdir(f->dir);
    free(f);
    return r;
}

/* A "disk" of `size` bytes full of 0xEE (an old installation). */
static void make_disk(const char *path, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    uint8_t *p = malloc(size);
    assert_non_null(p);
    memset(p, 0xee, size);
    assert_int_equal(write(fd, p, size), (ssize_t)size);
    close(fd);
    free(p);
}

static uint8_t *read_disk(const char *path, size_t *ret_len)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    uint8_t *p = malloc((size_t)st.st_size + 1);
    assert_non_null(p);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, p, (size_t)st.st_size), st.st_size);
    close(fd);
    *ret_len = (size_t)st.st_size;
    return p;
}

static uint8_t *make_image(size_t len, uint8_t salt)
{
    uint8_t *p = malloc(len);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(i * 31 + (i >> 12) + salt) | 1; /* never 0: zero means unwritten */
    }
    return p;
}

static bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != v) {
            return false;
        }
    }
    return true;
}

/* Writes img in odd-sized pieces. */
static int write_pieces(sink *s, const uint8_t *img, size_t len)
{
    static const size_t pieces[] = { 1, 4095, 777777, 3 * MiB + 5, 65536 };
    size_t k = 0;
    while (len > 0) {
        size_t n = pieces[k++ % 5];
        if (n > len) {
            n = len;
        }
        int r = sink_write(s, img, n);
        if (r < 0) {
            return r;
        }
        img += n;
        len -= n;
    }
    return 0;
}

/* Records what the target looked like at each write, to see the order. */
typedef struct spy {
    int writes;
    int head_write;      /* index of the first write at offset 0 */
    int last_body_write; /* index of the last write past the first MiB */
    size_t max_chunk;    /* 0: no limit; else short writes of at most this */
    int eintr_every;     /* every Nth call fails with EINTR */
    int calls;
} spy;

static ssize_t spy_pwrite(int fd, const void *buf, size_t len, off_t off, void *userdata)
{
    spy *sp = userdata;
    sp->calls++;
    if (sp->eintr_every > 0 && sp->calls % sp->eintr_every == 0) {
        errno = EINTR;
        return -1;
    }
    if (sp->max_chunk > 0 && len > sp->max_chunk) {
        len = sp->max_chunk;
    }
    ssize_t n = pwrite(fd, buf, len, off);
    if (n > 0) {
        if (off == 0 && sp->head_write < 0 && !all_bytes(buf, (size_t)n, 0)) {
            sp->head_write = sp->writes;
        }
        if ((size_t)off >= MiB && !all_bytes(buf, (size_t)n, 0)) {
            sp->last_body_write = sp->writes;
        }
        sp->writes++;
    }
    return n;
}

static void test_commit_writes_head_last(void **state)
{
    fixture *f = *state;
    size_t disk = 16 * MiB, len = 10 * MiB + 12345;
    make_disk(f->path, disk);
    uint8_t *img = make_image(len, 1);
    sink *s = NULL;
    spy sp = { .head_write = -1, .last_body_write = -1 };
    assert_int_equal(sink_open(f->path, NULL, &s), 0);
    sink_set_pwrite(s, spy_pwrite, &sp);
    assert_int_equal(sink_begin(s, len), 0);

    size_t got_len;
    uint8_t *got = read_disk(f->path, &got_len);
    /* The old partition table and backup GPT are gone before any image byte. */
    assert_true(all_bytes(got, MiB, 0));
    assert_true(all_bytes(got + disk - MiB, MiB, 0));
    assert_true(all_bytes(got + MiB, disk - 2 * MiB, 0xee));
    free(got);

    assert_int_equal(write_pieces(s, img, len), 0);
    got = read_disk(f->path, &got_len);
    /* Written so far: never the first MiB. */
    assert_true(all_bytes(got, MiB, 0));
    free(got);
    assert_int_equal(sink_get_written(s), len);

    assert_int_equal(sink_commit(s), 0);
    assert_true(sp.head_write > sp.last_body_write);
    got = read_disk(f->path, &got_len);
    assert_int_equal(got_len, disk); /* never truncated nor grown */
    assert_memory_equal(got, img, len);
    assert_true(all_bytes(got + disk - MiB, MiB, 0));
    free(got);
    /* Done is done. */
    assert_int_equal(sink_write(s, img, 1), -EINVAL);
    assert_int_equal(sink_abort(s), -EINVAL);
    sink_free(s);
    free(img);
}

static void test_abort_leaves_head_zero(void **state)
{
    fixture *f = *state;
    size_t disk = 16 * MiB, len = 9 * MiB + 4096;
    make_disk(f->path, disk);
    uint8_t *img = make_image(len, 2);
    sink *s = NULL;
    assert_int_equal(sink_open(f->path, NULL, &s), 0);
    assert_int_equal(sink_begin(s, 0), 0);
    assert_int_equal(write_pieces(s, img, len), 0);
    /* As on a hash mismatch. */
    assert_int_equal(sink_abort(s), 0);
    size_t got_len;
    uint8_t *got = read_disk(f->path, &got_len);
    assert_true(all_bytes(got, MiB, 0));
    /* The last MiB that reached the disk (the image's own backup GPT) is
     * wiped, and so is the disk's last MiB. The image had 8 MiB past the
     * first in full buffers when it was aborted; the tail was dropped. */
    size_t reach = MiB + 8 * MiB;
    assert_true(all_bytes(got + reach - MiB, MiB, 0));
    assert_memory_equal(got + MiB, img + MiB, reach - 2 * MiB);
    assert_true(all_bytes(got + reach, disk - MiB - reach, 0xee));
    assert_true(all_bytes(got + disk - MiB, MiB, 0));
    free(got);
    assert_int_equal(sink_commit(s), -EINVAL);
    sink_free(s);
    free(img);
}

static void test_image_larger_than_target(void **state)
{
    fixture *f = *state;
    size_t disk = 8 * MiB;
    make_disk(f->path, disk);
    uint8_t *img = make_image(disk + 1, 3);
    sink *s = NULL;
    sink_options o = { .limit = disk };

    /* Known size: refused before anything is written. */
    assert_int_equal(sink_open(f->path, &o, &s), 0);
    assert_int_equal(sink_get_limit(s), disk);
    assert_int_equal(sink_begin(s, disk + 1), -ENOSPC);
    sink_free(s);
    size_t got_len;
    uint8_t *got = read_disk(f->path, &got_len);
    assert_true(all_bytes(got, disk, 0xee));
    free(got);

    /* Unknown size: the write that would cross the end is refused whole. */
    assert_int_equal(sink_open(f->path, &o, &s), 0);
    assert_int_equal(sink_begin(s, 0), 0);
    assert_int_equal(write_pieces(s, img, disk), 0); /* exactly full is fine */
    assert_int_equal(sink_write(s, img + disk, 1), -ENOSPC);
    assert_int_equal(sink_get_written(s), disk);
    assert_int_equal(sink_abort(s), 0);
    sink_free(s);
    got = read_disk(f->path, &got_len);
    assert_int_equal(got_len, disk); /* nothing past the end */
    assert_true(all_bytes(got, MiB, 0));
    free(got);

    /* And in the middle of a large write: nothing of it is taken. */
    assert_int_equal(sink_open(f->path, &o, &s), 0);
    assert_int_equal(sink_begin(s, 0), 0);
    assert_int_equal(sink_write(s, img, disk - 10), 0);
    assert_int_equal(sink_write(s, img, 11), -ENOSPC);
    assert_int_equal(sink_write(s, img, 10), 0);
    assert_int_equal(sink_commit(s), 0);
    sink_free(s);
    got = read_disk(f->path, &got_len);
    assert_int_equal(got_len, disk);
    free(got);
    free(img);
}

static void test_short_writes_and_eintr(void **state)
{
    fixture *f = *state;
    size_t disk = 12 * MiB, len = 7 * MiB + 333;
    make_disk(f->path, disk);
    uint8_t *img = make_image(len, 4);
    sink *s = NULL;
    spy sp = { .head_write = -1, .last_body_write = -1, .max_chunk = 65521, .eintr_every = 5 };
    assert_int_equal(sink_open(f->path, NULL, &s), 0);
    sink_set_pwrite(s, spy_pwrite, &sp);
    assert_int_equal(sink_begin(s, len), 0);
    assert_int_equal(write_pieces(s, img, len), 0);
    assert_int_equal(sink_commit(s), 0);
    assert_true(sp.calls > 100); /* the short writes did happen */
    sink_free(s);
    size_t got_len;
    uint8_t *got = read_disk(f->path, &got_len);
    assert_memory_equal(got, img, len);
    free(got);
    free(img);
}

static ssize_t failing_pwrite(int fd, const void *buf, size_t len, off_t off, void *userdata)
{
    int *left = userdata;
    if ((*left)-- <= 0) {
        errno = EIO;
        return -1;
    }
    return pwrite(fd, buf, len, off);
}

/* A disk that fails mid-way reports it; the head was never written. */
static void test_write_error_reported(void **state)
{
    fixture *f = *state;
    size_t disk = 16 * MiB, len = 12 * MiB;
    make_disk(f->path, disk);
    uint8_t *img = make_image(len, 5);
    sink *s = NULL;
    int left = 3; /* the two zeroing writes of sink_begin(), one buffer */
    assert_int_equal(sink_open(f->path, NULL, &s), 0);
    sink_set_pwrite(s, failing_pwrite, &left);
    assert_int_equal(sink_begin(s, len), 0);
    assert_int_equal(write_pieces(s, img, len), -EIO);
    sink_set_pwrite(s, NULL, NULL);
    assert_int_equal(sink_abort(s), 0);
    sink_free(s);
    size_t got_len;
    uint8_t *got = read_disk(f->path, &got_len);
    assert_true(all_bytes(got, MiB, 0));
    free(got);
    free(img);
}

/* A download that starts over: the second image is what remains. */
static void test_reset_starts_over(void **state)
{
    fixture *f = *state;
    size_t disk = 16 * MiB, len = 6 * MiB + 7;
    make_disk(f->path, disk);
    uint8_t *wrong = make_image(len, 6);
    uint8_t *img = make_image(len, 7);
    sink *s = NULL;
    assert_int_equal(sink_open(f->path, NULL, &s), 0);
    assert_int_equal(sink_begin(s, 0), 0);
    assert_int_equal(write_pieces(s, wrong, len - 100), 0);
    assert_int_equal(sink_reset(s), 0);
    assert_int_equal(sink_get_written(s), 0);
    assert_int_equal(write_pieces(s, img, len), 0);
    assert_int_equal(sink_commit(s), 0);
    sink_free(s);
    size_t got_len;
    uint8_t *got = read_disk(f->path, &got_len);
    assert_memory_equal(got, img, len);
    free(got);
    free(wrong);
    free(img);
}

/* An image smaller than the held-back MiB, on a new file: all of it is
 * written at commit, nothing before. */
static void test_tiny_image(void **state)
{
    fixture *f = *state;
    uint8_t *img = make_image(1000, 8);
    sink *s = NULL;
    assert_int_equal(sink_open(f->path, NULL, &s), 0);
    assert_int_equal(sink_get_limit(s), 0);
    assert_int_equal(sink_begin(s, 0), 0);
    assert_int_equal(sink_write(s, img, 1000), 0);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(sink_commit(s), 0);
    sink_free(s);
    size_t got_len;
    uint8_t *got = read_disk(f->path, &got_len);
    assert_int_equal(got_len, 1000);
    assert_memory_equal(got, img, 1000);
    free(got);
    free(img);
}

static void test_dry_run_writes_nothing(void **state)
{
    fixture *f = *state;
    uint8_t *img = make_image(3 * MiB, 9);
    sink *s = NULL;
    sink_options o = { .dry_run = true, .limit = 2 * MiB };
    assert_int_equal(sink_open("/nonexistent/dir/disk", &o, &s), 0);
    assert_int_equal(sink_begin(s, 0), 0);
    assert_int_equal(sink_write(s, img, 2 * MiB), 0);
    assert_int_equal(sink_write(s, img, 1), -ENOSPC);
    assert_int_equal(sink_commit(s), 0);
    sink_free(s);
    assert_int_equal(access(f->path, F_OK), -1);
    free(img);
}

static void test_not_a_disk(void **state)
{
    sink *s = NULL;
    assert_int_equal(sink_open("/dev/null", NULL, &s), -ENOTBLK);
    assert_int_equal(sink_open("/tmp", NULL, &s), -ENOTBLK);
    assert_null(s);
    assert_null(sink_free(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_writes_head_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_leaves_head_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_larger_than_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_writes_and_eintr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_starts_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tiny_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_disk, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

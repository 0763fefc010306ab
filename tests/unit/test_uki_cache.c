/* rack-agent/uki/cache.h: images built on demand from files.h parts with
 * Debian's linuxx64.efi.stub, one build per key however many ask at once,
 * hits from disk, a new key for a new command line, errors for a missing
 * part or stub, eviction under max_bytes, cancellation; the served image's
 * .cmdline and .initrd read back with objcopy. */
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

#include "command.h"
#include "fileio.h"
#include "files/files-internal.h"
#include "uki/cache.h"
#include "uki/uki.h"
#include "util.h"

static const char kernel_bytes[] = "MZ not really a kernel, objcopy does not mind";
static const char initrd_bytes[] = "070701 an initrd of 29 bytes"; /* odd length: padding */
static const uint8_t overlay_bytes[] = { 0x1f, 0x8b, 0x08, 0x00, 'o', 'v', 'l' };

typedef struct answer {
    int calls, r, fd;
    uint64_t size;
    char etag[80];
} answer;

typedef struct fixture {
    uv_loop_t loop;
    char root[64], dir[80];
    files *f;
    uki_cache *c;
} fixture;

static void on_done(void *userdata, int r, int fd, uint64_t size, const char *etag)
{
    answer *a = userdata;
    a->calls++;
    a->r = r;
    a->fd = fd;
    a->size = size;
    snprintf(a->etag, sizeof(a->etag), "%s", etag);
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(fileio_write_atomic(path, data, len, 0644), 0);
}

static int open_cache(fixture *f, const char *stub, uint64_t max_bytes)
{
    uki_cache_config cfg = { .dir = f->dir,
                             .stub = stub,
                             .max_bytes = max_bytes,
                             .overlay = overlay_bytes,
                             .overlay_len = sizeof(overlay_bytes) };
    return uki_cache_new(&f->loop, &cfg, &f->c);
}

static int setup(void **state)
{
    if (access(UKI_STUB_DEFAULT, R_OK) < 0) {
        return 0; /* each test skips */
    }
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(f->root, sizeof(f->root), "/tmp/test_uki_cache.XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->dir, sizeof(f->dir), "%s/uki", f->root);
    write_file(f->root, "vmlinuz", kernel_bytes, sizeof(kernel_bytes) - 1);
    write_file(f->root, "initrd.img", initrd_bytes, sizeof(initrd_bytes) - 1);
    assert_int_equal(files_new(f->root, &f->f), 0);
    assert_int_equal(open_cache(f, UKI_STUB_DEFAULT, UINT64_MAX), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (!f) {
        return 0;
    }
    uki_cache_close(f->c);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    files_free(f->f);
    char *argv[] = { RB_UNCONST("rm"), RB_UNCONST("-rf"), f->root, NULL };
    assert_int_equal(command_run(argv, NULL, NULL), 0);
    free(f);
    return 0;
}

#define SKIP_WITHOUT_STUB()                                                                        \
    do {                                                                                           \
        if (!*state) {                                                                             \
            skip(); /* systemd-boot-efi not installed (deploy/install-deps.sh has it) */           \
        }                                                                                          \
    } while (0)

static uki_spec spec_of(fixture *f, const char *cmdline)
{
    return (uki_spec){ .kernel = { f->f, "vmlinuz" },
                       .initrd = { f->f, "initrd.img" },
                       .overlay = true,
                       .cmdline = cmdline,
                       .what = "host=web17" };
}

/* One section's bytes, as objcopy -O binary extracts them. */
static char *section_of(int fd, const char *section, size_t *ret_len)
{
    char in[64], out[] = "/tmp/test_uki_cache.section.XXXXXX", only[32];
    /* objcopy reads its input by name: our fd's file, through our /proc
     * entry (the child's own /proc/self has no such fd). */
    snprintf(in, sizeof(in), "/proc/%d/fd/%d", (int)getpid(), fd);
    int ofd = mkstemp(out);
    assert_true(ofd >= 0);
    close(ofd);
    snprintf(only, sizeof(only), "--only-section=%s", section);
    char *argv[] = {
        RB_UNCONST("objcopy"), RB_UNCONST("-O"), RB_UNCONST("binary"), only, in, out, NULL
    };
    char *err = NULL;
    int r = command_run(argv, NULL, &err);
    if (r < 0) {
        fail_msg("objcopy: %s", err ? err : "?");
    }
    void *data = NULL;
    assert_int_equal(fileio_read_all(out, 1 << 20, &data, ret_len), 0);
    unlink(out);
    return data;
}

static void test_build_join_hit(void **state)
{
    SKIP_WITHOUT_STUB();
    fixture *f = *state;
    const char *cmd = "ip=[2001:db8:1::17]::[2001:db8:1::1]:64:web17:bootnet:none inst.ks=x";
    uki_spec s = spec_of(f, cmd);
    answer a = { 0 }, b = { 0 };
    uki_request *ra = NULL, *rb = NULL;
    /* Two at once (a TFTP tsize probe and the real request): one build. */
    assert_int_equal(uki_cache_open(f->c, &s, on_done, &a, &ra), 0);
    assert_int_equal(uki_cache_open(f->c, &s, on_done, &b, &rb), 0);
    assert_non_null(ra);
    assert_non_null(rb);
    assert_int_equal(a.calls + b.calls, 0); /* never before the build */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(a.r, 0);
    assert_int_equal(b.r, 0);
    assert_string_equal(a.etag, b.etag);
    assert_int_equal(strlen(a.etag), SHA256_HEX_LEN + 2);
    const uki_cache_stats *st = uki_cache_get_stats(f->c);
    assert_int_equal(st->builds, 1);
    assert_int_equal(st->joins, 1);
    assert_int_equal(st->hits, 0);

    /* What the image holds: the command line, and the initrd padded to 4
     * bytes then the overlay. */
    size_t len = 0;
    char *cmdline = section_of(a.fd, ".cmdline", &len);
    assert_int_equal(len, strlen(cmd));
    assert_memory_equal(cmdline, cmd, len);
    free(cmdline);
    uint8_t *initrd = (uint8_t *)section_of(a.fd, ".initrd", &len);
    size_t first = sizeof(initrd_bytes) - 1, padded = (first + 3) & ~(size_t)3;
    assert_true(len >= padded + sizeof(overlay_bytes));
    assert_memory_equal(initrd, initrd_bytes, first);
    assert_memory_equal(initrd + padded, overlay_bytes, sizeof(overlay_bytes));
    free(initrd);
    struct stat sta;
    assert_int_equal(fstat(a.fd, &sta), 0);
    assert_int_equal(sta.st_mode & 0777, 0600); /* it holds the install token */
    assert_int_equal((uint64_t)sta.st_size, a.size);
    close(a.fd);
    close(b.fd);

    /* Asked again: from disk, at once. */
    answer c = { 0 };
    uki_request *rc = NULL;
    assert_int_equal(uki_cache_open(f->c, &s, on_done, &c, &rc), 0);
    assert_null(rc);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.r, 0);
    assert_string_equal(c.etag, a.etag);
    assert_int_equal(st->hits, 1);
    assert_int_equal(st->builds, 1);
    close(c.fd);

    /* Another host (another command line): another image. */
    answer d = { 0 };
    uki_spec s2 = spec_of(f, "ip=[2001:db8:1::18]::[2001:db8:1::1]:64:web18:bootnet:none");
    assert_int_equal(uki_cache_open(f->c, &s2, on_done, &d, &rc), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(d.r, 0);
    assert_string_not_equal(d.etag, a.etag);
    assert_int_equal(st->builds, 2);
    close(d.fd);

    /* A changed initrd changes the key (its validator: a new inode). */
    write_file(f->root, "initrd.img", "070701 another initrd", 21);
    answer e = { 0 };
    assert_int_equal(uki_cache_open(f->c, &s, on_done, &e, &rc), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(e.r, 0);
    assert_string_not_equal(e.etag, a.etag);
    assert_int_equal(st->builds, 3);
    close(e.fd);
}

static void test_errors(void **state)
{
    SKIP_WITHOUT_STUB();
    fixture *f = *state;
    uki_spec s = spec_of(f, "quiet");
    s.kernel.path = "no-such-kernel";
    answer a = { 0 };
    uki_request *r = NULL;
    assert_int_equal(uki_cache_open(f->c, &s, on_done, &a, &r), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.r, -ENOENT);
    assert_int_equal(a.fd, -1);

    s = spec_of(f, "quiet");
    s.kernel.f = NULL;
    assert_int_equal(uki_cache_open(f->c, &s, on_done, &a, &r), -EINVAL);
    assert_int_equal(a.calls, 1);

    /* No stub: every request fails, saying so in the log. */
    uki_cache_close(f->c);
    assert_int_equal(open_cache(f, "/nonexistent/linuxx64.efi.stub", UINT64_MAX), 0);
    s = spec_of(f, "quiet");
    answer b = { 0 };
    assert_int_equal(uki_cache_open(f->c, &s, on_done, &b, &r), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.r, -EIO);
    assert_int_equal(uki_cache_get_stats(f->c)->build_failures, 1);
}

static void test_evict_and_cancel(void **state)
{
    SKIP_WITHOUT_STUB();
    fixture *f = *state;
    uki_spec s = spec_of(f, "first");
    answer a = { 0 };
    uki_request *r = NULL;
    assert_int_equal(uki_cache_open(f->c, &s, on_done, &a, &r), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(a.r, 0);
    close(a.fd);

    /* Room for one image: the next build pushes the first out. */
    uki_cache_close(f->c);
    assert_int_equal(open_cache(f, UKI_STUB_DEFAULT, a.size + 1), 0);
    s = spec_of(f, "second");
    answer b = { 0 };
    assert_int_equal(uki_cache_open(f->c, &s, on_done, &b, &r), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(b.r, 0);
    close(b.fd);
    assert_int_equal(uki_cache_get_stats(f->c)->evictions, 1);
    char path[200];
    snprintf(path, sizeof(path), "%s/%.*s.efi", f->dir, SHA256_HEX_LEN, a.etag + 1);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof(path), "%s/%.*s.efi", f->dir, SHA256_HEX_LEN, b.etag + 1);
    assert_int_equal(access(path, F_OK), 0);

    /* A request withdrawn while its build runs is not answered; the build
     * still lands for the next one. */
    s = spec_of(f, "third");
    answer c = { 0 };
    assert_int_equal(uki_cache_open(f->c, &s, on_done, &c, &r), 0);
    assert_non_null(r);
    uki_request_cancel(r);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(c.calls, 0);
    assert_int_equal(uki_cache_get_stats(f->c)->builds, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_build_join_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evict_and_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

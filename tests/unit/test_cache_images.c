/* rack-agent/cache/images: the served paths of profiles' images and of
 * objects, the files_result they answer with, refusal of corrupt origins, and
 * pre-warming of exactly the profiles that have intents. Origins are file://
 * URLs; the cache runs on a real libuv loop. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "cache/cache.h"
#include "cache/images.h"
#include "model/intent.h"
#include "sha256.h"

typedef struct fixture {
    char root[64];
    char origin[128];
    uv_loop_t loop;
    cache *c;
    intents_store *store;
    cache_images *ci;
    uint8_t sha[6][32]; /* el9: kernel, initrd, stage2, extra; el8: kernel, initrd */
} fixture;

static const char *const names[6] = { "k9", "i9", "s9", "x9", "k8", "i8" };

static void make_file(fixture *f, const char *name, size_t len, unsigned seed, uint8_t sha[32])
{
    char *buf = malloc(len);
    assert_non_null(buf);
    for (size_t i = 0; i < len; i++) {
        buf[i] = (char)(i * 17 + seed);
    }
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->origin, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
    assert_int_equal(sha256_buffer(buf, len, sha), 0);
    free(buf);
}

static model_image image(fixture *f, const char *name, image_kind kind, const char *file,
                         const uint8_t sha[32])
{
    model_image img = { .name = strdup(name), .kind = kind };
    assert_true(asprintf(&img.url, "file://%s/%s", f->origin, file) > 0);
    memcpy(img.sha256, sha, 32);
    return img;
}

/* Profiles el9 (with an intent) and el8 (none); `corrupt` makes el9's
 * initrd digest wrong. */
static void install_set(fixture *f, bool corrupt)
{
    intent_set *set = NULL;
    assert_int_equal(intent_set_new(1, &set), 0);
    uint8_t bad[32];
    memset(bad, 0x5a, 32);
    model_profile el9 = { .name = strdup("el9"), .n_images = 4 };
    el9.images = calloc(4, sizeof(model_image));
    el9.images[0] = image(f, "vmlinuz", IMAGE_KERNEL, names[0], f->sha[0]);
    el9.images[1] = image(f, "initrd.img", IMAGE_INITRD, names[1], corrupt ? bad : f->sha[1]);
    el9.images[2] = image(f, "squashfs.img", IMAGE_STAGE2, names[2], f->sha[2]);
    el9.images[3] = image(f, "overlay.cpio", IMAGE_OTHER, names[3], f->sha[3]);
    assert_int_equal(intent_set_add_profile(set, &el9), 0);
    model_profile el8 = { .name = strdup("el8"), .n_images = 2 };
    el8.images = calloc(2, sizeof(model_image));
    el8.images[0] = image(f, "vmlinuz", IMAGE_KERNEL, names[4], f->sha[4]);
    el8.images[1] = image(f, "initrd.img", IMAGE_INITRD, names[5], f->sha[5]);
    assert_int_equal(intent_set_add_profile(set, &el8), 0);
    intent in = { .install_id = strdup("i-1"), .host = strdup("web17"), .n_macs = 1 };
    memcpy(in.macs[0], "\x52\x54\x00\x12\x34\x56", 6);
    assert_int_equal(intent_set_add(set, &in, "el9"), 0);
    intents_store_replace(f->store, set);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->root, sizeof(f->root), "/tmp/test_cache_images.XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->origin, sizeof(f->origin), "%s/origin", f->root);
    assert_int_equal(mkdir(f->origin, 0755), 0);
    for (unsigned i = 0; i < 6; i++) {
        make_file(f, names[i], 1000 + 10 * i, i, f->sha[i]);
    }
    assert_int_equal(uv_loop_init(&f->loop), 0);
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/cache", f->root);
    cache_config cfg = { .dir = dir, .max_size = 1 << 20 };
    assert_int_equal(cache_new(&f->loop, &cfg, &f->c), 0);
    assert_int_equal(intents_store_new(&f->store), 0);
    assert_int_equal(cache_images_new(f->c, f->store, &f->ci), 0);
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
    cache_images_free(f->ci);
    cache_close(f->c);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int lr = uv_loop_close(&f->loop);
    intents_store_free(f->store);
    int r = nftw(f->root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return lr == 0 && r == 0 ? 0 : -1;
}

typedef struct answer {
    bool called;
    int r;
    files_result res;
    char profile[32];
    uint8_t digest[32];
} answer;

static void on_done(void *userdata, int r, const files_result *res)
{
    answer *a = userdata;
    assert_false(a->called);
    a->called = true;
    a->r = r;
    if (r == 0) {
        a->res = *res;
        snprintf(a->profile, sizeof(a->profile), "%s", res->profile ? res->profile : "");
        a->res.profile = NULL;
        assert_int_equal(lseek(res->fd, 0, SEEK_SET), 0);
        assert_int_equal(sha256_fd(res->fd, a->digest), 0);
        close(res->fd);
    } else {
        assert_null(res);
    }
}

static void drain(fixture *f)
{
    for (int i = 0; i < 2000 && cache_pending(f->c) > 0; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(cache_pending(f->c), 0);
}

static answer open_path(fixture *f, const char *path)
{
    answer a = { 0 };
    int r = cache_images_open(f->ci, path, on_done, &a, NULL);
    if (r < 0) {
        a.called = true;
        a.r = r;
        return a;
    }
    drain(f);
    assert_true(a.called);
    return a;
}

static void expect_image(fixture *f, const char *path, int sha_idx, int kind)
{
    answer a = open_path(f, path);
    assert_int_equal(a.r, 0);
    assert_memory_equal(a.digest, f->sha[sha_idx], 32);
    assert_int_equal(a.res.size, 1000 + 10 * sha_idx);
    assert_true(a.res.verified);
    assert_int_equal(a.res.image_kind, kind);
    char etag[72], hex[65];
    sha256_to_hex(f->sha[sha_idx], hex);
    snprintf(etag, sizeof(etag), "\"%s\"", hex);
    assert_string_equal(a.res.etag, etag);
    if (kind >= 0) {
        assert_string_equal(a.profile, "el9");
    } else {
        assert_string_equal(a.profile, "");
    }
}

static void test_image_paths(void **state)
{
    fixture *f = *state;
    install_set(f, false);
    expect_image(f, "images/el9/vmlinuz", 0, IMAGE_KERNEL);
    expect_image(f, "images/el9/initrd.img", 1, IMAGE_INITRD);
    expect_image(f, "images/el9/LiveOS/squashfs.img", 2, IMAGE_STAGE2);
    expect_image(f, "images/el9/overlay.cpio", 3, IMAGE_OTHER);
    /* Second time: from the cache, answered at once. */
    answer a = { 0 };
    cache_images_request *req = (cache_images_request *)&a;
    assert_int_equal(cache_images_open(f->ci, "images/el9/vmlinuz", on_done, &a, &req), 0);
    assert_true(a.called);
    assert_null(req);
    assert_int_equal(cache_get_stats(f->c)->fetches, 4);
}

static void test_object_paths(void **state)
{
    fixture *f = *state;
    install_set(f, false);
    char path[128], hex[65];
    /* Not cached yet, but an image of a profile: fetched. */
    sha256_to_hex(f->sha[4], hex);
    snprintf(path, sizeof(path), "objects/%s", hex);
    expect_image(f, path, 4, -1);
    /* Upper-case digits name the same object. */
    for (char *p = path + 8; *p; p++) {
        if (*p >= 'a' && *p <= 'f') {
            *p = (char)(*p - 'a' + 'A');
        }
    }
    expect_image(f, path, 4, -1);
    /* Cached objects stay reachable after their profile is gone. */
    intent_set *empty = NULL;
    assert_int_equal(intent_set_new(2, &empty), 0);
    intents_store_replace(f->store, empty);
    snprintf(path, sizeof(path), "objects/%s", hex);
    expect_image(f, path, 4, -1);
    sha256_to_hex(f->sha[5], hex);
    snprintf(path, sizeof(path), "objects/%s", hex);
    assert_int_equal(open_path(f, path).r, -ENOENT);
}

/* A cached object rotten on disk is fetched again from the profile's origin
 * for objects/ paths too, not answered from the cache. */
static void test_corrupt_cached_object_refetched(void **state)
{
    fixture *f = *state;
    install_set(f, false);
    char path[128], hex[65], file[512];
    sha256_to_hex(f->sha[0], hex);
    snprintf(path, sizeof(path), "objects/%s", hex);
    expect_image(f, path, 0, -1);
    snprintf(file, sizeof(file), "%s/cache/objects/%.2s/%s", f->root, hex, hex);
    struct stat before, after;
    assert_int_equal(stat(file, &before), 0);
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    /* Until the times show the write (same clock tick as the store). */
    for (int i = 0; i < 200; i++) {
        assert_int_equal(pwrite(fd, "\xff\xff\xff\xff", 4, 500), 4);
        assert_int_equal(fstat(fd, &after), 0);
        if (after.st_mtim.tv_nsec != before.st_mtim.tv_nsec ||
            after.st_mtim.tv_sec != before.st_mtim.tv_sec) {
            break;
        }
        usleep(2000);
    }
    close(fd);
    expect_image(f, path, 0, -1);
    expect_image(f, "images/el9/vmlinuz", 0, IMAGE_KERNEL);
    assert_int_equal(cache_get_stats(f->c)->corrupt, 1);
    assert_int_equal(cache_get_stats(f->c)->fetches, 2);
}

static void test_unknown_paths(void **state)
{
    fixture *f = *state;
    install_set(f, false);
    static const char *const bad[] = {
        "images/el7/vmlinuz",
        "images/el9/",
        "images/el9",
        "images//vmlinuz",
        "images/el9/nothing",
        "images/el9/LiveOS/other.img",
        "images/el9/squashfs.img",
        "objects/",
        "objects/abc",
        "objects/../../etc/passwd",
        "other/x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        answer a = open_path(f, bad[i]);
        if (a.r != -ENOENT) {
            fail_msg("%s: expected -ENOENT, got %d", bad[i], a.r);
        }
    }
    char *longp = malloc(2000);
    memset(longp, 'a', 1999);
    memcpy(longp, "images/", 7);
    longp[1999] = '\0';
    assert_int_equal(open_path(f, longp).r, -ENAMETOOLONG);
    free(longp);
    assert_int_equal(cache_get_stats(f->c)->fetches, 0);
}

static void test_corrupt_origin_refused(void **state)
{
    fixture *f = *state;
    install_set(f, true);
    answer a = open_path(f, "images/el9/initrd.img");
    assert_int_equal(a.r, -EBADMSG);
    assert_int_equal(cache_get_stats(f->c)->verify_failures, 1);
    assert_int_equal(cache_get_stats(f->c)->objects, 0);
    /* The bytes themselves are a valid object under their true digest, but
     * nothing was stored. */
    assert_false(cache_contains(f->c, f->sha[1]));
}

static void test_cancel(void **state)
{
    fixture *f = *state;
    install_set(f, false);
    answer a = { 0 }, b = { 0 };
    cache_images_request *ra = NULL, *rb = NULL;
    assert_int_equal(cache_images_open(f->ci, "images/el9/vmlinuz", on_done, &a, &ra), 0);
    assert_int_equal(cache_images_open(f->ci, "images/el9/vmlinuz", on_done, &b, &rb), 0);
    assert_non_null(ra);
    cache_images_request_cancel(ra);
    drain(f);
    assert_false(a.called);
    assert_true(b.called);
    assert_int_equal(b.r, 0);
    /* A request left pending when the module goes is dropped quietly. */
    answer c = { 0 };
    assert_int_equal(cache_images_open(f->ci, "images/el9/initrd.img", on_done, &c, NULL), 0);
    f->ci = cache_images_free(f->ci);
    drain(f);
    assert_false(c.called);
}

static void test_prewarm_only_profiles_with_intents(void **state)
{
    fixture *f = *state;
    install_set(f, false);
    cache_prewarm_stats st;
    cache_images_prewarm(f->ci, intents_store_current(f->store), &st);
    assert_int_equal(st.profiles, 1);
    assert_int_equal(st.images, 4);
    assert_int_equal(st.started, 4);
    drain(f);
    for (int i = 0; i < 4; i++) {
        assert_true(cache_contains(f->c, f->sha[i]));
    }
    assert_false(cache_contains(f->c, f->sha[4]));
    assert_false(cache_contains(f->c, f->sha[5]));
    cache_images_prewarm(f->ci, intents_store_current(f->store), &st);
    assert_int_equal(st.cached, 4);
    assert_int_equal(st.started, 0);
    assert_int_equal(cache_get_stats(f->c)->fetches, 4);
    assert_int_equal(cache_get_stats(f->c)->hits, 0);
}

/* The files.c hooks: paths after the prefix, errors through the callback,
 * cancellation through the embedded files_request. */
static void test_files_sources(void **state)
{
    fixture *f = *state;
    install_set(f, false);
    answer a = { 0 };
    files_request *req = NULL;
    assert_int_equal(cache_images_source_objects(f->ci, "nothex", NULL, on_done, &a, &req), 0);
    assert_true(a.called);
    assert_int_equal(a.r, -ENOENT);
    answer b = { 0 }, c = { 0 };
    files_request *rb = NULL, *rc = NULL;
    assert_int_equal(cache_images_source_images(f->ci, "el9/initrd.img", NULL, on_done, &b, &rb),
                     0);
    assert_int_equal(cache_images_source_images(f->ci, "el9/initrd.img", NULL, on_done, &c, &rc),
                     0);
    assert_non_null(rb);
    rb->cancel(rb);
    drain(f);
    assert_false(b.called);
    assert_true(c.called);
    assert_int_equal(c.r, 0);
    assert_int_equal(c.res.image_kind, IMAGE_INITRD);
    assert_string_equal(c.profile, "el9");
    assert_memory_equal(c.digest, f->sha[1], 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_image_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_cached_object_refetched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_origin_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prewarm_only_profiles_with_intents, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

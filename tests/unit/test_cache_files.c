/* The cache behind files.h, as the HTTP and TFTP servers reach it: files_open()
 * of images/ and objects/ paths goes through the sources the agent registers
 * (files_add_source), the path rules of files.c apply first, and the TFTP
 * root keeps its own names. */
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
#include "files/files-internal.h"
#include "cache/images.h"
#include "model/intent.h"
#include "sha256.h"

typedef struct fixture {
    char root[64];
    char path[256];
    uv_loop_t loop;
    cache *c;
    intents_store *store;
    cache_images *ci;
    files *f;
    uint8_t kernel[32];
} fixture;

static void write_file(const char *path, const char *content)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(content, fp);
    fclose(fp);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->root, sizeof(f->root), "/tmp/test_cache_files.XXXXXX");
    assert_non_null(mkdtemp(f->root));
    char p[256];
    snprintf(p, sizeof(p), "%s/tftp", f->root);
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(files_new(p, &f->f), 0);
    snprintf(p, sizeof(p), "%s/tftp/ipxe.efi", f->root);
    write_file(p, "ipxe");
    snprintf(f->path, sizeof(f->path), "%s/vmlinuz", f->root);
    write_file(f->path, "a kernel");
    assert_int_equal(sha256_buffer("a kernel", 8, f->kernel), 0);

    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(p, sizeof(p), "%s/cache", f->root);
    cache_config cfg = { .dir = p, .max_size = 1 << 20 };
    assert_int_equal(cache_new(&f->loop, &cfg, &f->c), 0);
    assert_int_equal(intents_store_new(&f->store), 0);
    assert_int_equal(cache_images_new(f->c, f->store, &f->ci), 0);
    assert_int_equal(files_add_source(f->f, "images", cache_images_source_images, f->ci), 0);
    assert_int_equal(files_add_source(f->f, "objects", cache_images_source_objects, f->ci), 0);

    intent_set *set = NULL;
    assert_int_equal(intent_set_new(1, &set), 0);
    model_profile p9 = { .name = strdup("el9"), .n_images = 1 };
    p9.images = calloc(1, sizeof(model_image));
    p9.images[0] = (model_image){ .name = strdup("vmlinuz"), .kind = IMAGE_KERNEL };
    assert_true(asprintf(&p9.images[0].url, "file://%s", f->path) > 0);
    memcpy(p9.images[0].sha256, f->kernel, 32);
    assert_int_equal(intent_set_add_profile(set, &p9), 0);
    intents_store_replace(f->store, set);
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
    files_free(f->f);
    intents_store_free(f->store);
    int r = nftw(f->root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return lr == 0 && r == 0 ? 0 : -1;
}

typedef struct answer {
    bool called;
    int r;
    bool verified;
    int kind;
    char etag[72];
    char body[64];
} answer;

static void on_done(void *userdata, int r, const files_result *res)
{
    answer *a = userdata;
    a->called = true;
    a->r = r;
    if (r == 0) {
        a->verified = res->verified;
        a->kind = res->image_kind;
        snprintf(a->etag, sizeof(a->etag), "%s", res->etag);
        ssize_t n = pread(res->fd, a->body, sizeof(a->body) - 1, 0);
        assert_true(n >= 0);
        a->body[n] = '\0';
        close(res->fd);
    }
}

static answer open_path(fixture *f, const char *path)
{
    answer a = { 0 };
    int r = files_open(f->f, path, on_done, &a, NULL);
    assert_int_equal(r, 0);
    for (int i = 0; i < 2000 && !a.called; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_true(a.called);
    return a;
}

static void test_images_and_objects_through_files(void **state)
{
    fixture *f = *state;
    answer a = open_path(f, "images/el9/vmlinuz");
    assert_int_equal(a.r, 0);
    assert_string_equal(a.body, "a kernel");
    assert_true(a.verified);
    assert_int_equal(a.kind, IMAGE_KERNEL);
    char hex[65], etag[72], path[80];
    sha256_to_hex(f->kernel, hex);
    snprintf(etag, sizeof(etag), "\"%s\"", hex);
    assert_string_equal(a.etag, etag);
    snprintf(path, sizeof(path), "objects/%s", hex);
    a = open_path(f, path);
    assert_int_equal(a.r, 0);
    assert_string_equal(a.body, "a kernel");
    assert_int_equal(a.kind, -1);
    /* The TFTP root is untouched by the cache's prefixes. */
    a = open_path(f, "ipxe.efi");
    assert_int_equal(a.r, 0);
    assert_false(a.verified);
    assert_string_equal(a.body, "ipxe");
}

static void test_refusals(void **state)
{
    fixture *f = *state;
    assert_int_equal(open_path(f, "images/el9/../../vmlinuz").r, -EACCES);
    assert_int_equal(open_path(f, "images/el8/vmlinuz").r, -ENOENT);
    assert_int_equal(open_path(f, "objects/00").r, -ENOENT);
    assert_int_equal(open_path(f, "images/el9/initrd.img").r, -ENOENT);
    /* The origin changes under the profile: refused, nothing served. */
    write_file(f->path, "another kernel");
    assert_int_equal(open_path(f, "images/el9/vmlinuz").r, -EBADMSG);
    assert_int_equal(cache_get_stats(f->c)->verify_failures, 1);
    /* The origin disappears: a fetch failure. */
    unlink(f->path);
    assert_int_equal(open_path(f, "images/el9/vmlinuz").r, -EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_images_and_objects_through_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* seed: see seed.h. */
#include "writer/seed.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "command.h"
#include "errmsg.h"
#include "fileio.h"
#include "util.h"

#define SEED_ATTEMPTS   8
#define SEED_BACKOFF_MS 500L
#define SEED_TIMEOUT_S  20L

const char *const seed_file_names[SEED_N_FILES] = { "meta-data", "network-config", "user-data" };

void seed_files_clear(seed_files *f)
{
    if (!f) {
        return;
    }
    for (size_t i = 0; i < SEED_N_FILES; i++) {
        free(f->data[i]);
        f->data[i] = NULL;
        f->len[i] = 0;
    }
}

/* ---- fetching ---- */

typedef struct body {
    char *data;
    size_t len;
    bool too_big;
} body;

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
    body *b = userdata;
    size_t len = size * n;
    /* The cap holds whatever Content-Length said (or did not say). */
    if (len > SEED_FILE_MAX - b->len) {
        b->too_big = true;
        return 0;
    }
    char *p = realloc(b->data, b->len + len + 1);
    if (!p) {
        return 0;
    }
    memcpy(p + b->len, data, len);
    b->len += len;
    p[b->len] = '\0';
    b->data = p;
    return len;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* One file, with retries. */
static int fetch_one(CURL *c, const char *url, body *ret, char **ret_error)
{
    char errbuf[CURL_ERROR_SIZE];
    long backoff = SEED_BACKOFF_MS;
    for (unsigned attempt = 1;; attempt++) {
        body b = { 0 };
        errbuf[0] = '\0';
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, SEED_TIMEOUT_S);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "rackboot-deploy");
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SEED_FILE_MAX);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (cc == CURLE_OK && status == 200) {
            if (!b.data) {
                b.data = strdup(""); /* an empty file is a file */
                if (!b.data) {
                    return -ENOMEM;
                }
            }
            *ret = b;
            return 0;
        }
        free(b.data);
        if (b.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
            return errmsg_fail(ret_error, -EFBIG, "%s: larger than %zu bytes", url, SEED_FILE_MAX);
        }
        bool transient = cc != CURLE_OK || status >= 500 || status == 408 || status == 429;
        if (!transient || attempt >= SEED_ATTEMPTS) {
            if (cc == CURLE_OK && status == 404) {
                return errmsg_fail(ret_error, -ENOENT, "%s: 404 not found", url);
            }
            if (cc == CURLE_OK) {
                return errmsg_fail(ret_error, -EPROTO, "%s: HTTP status %ld", url, status);
            }
            return errmsg_fail(ret_error, -EIO, "%s: %s", url,
                               errbuf[0] ? errbuf : curl_easy_strerror(cc));
        }
        sleep_ms(backoff);
        if (backoff < 8 * SEED_BACKOFF_MS) {
            backoff *= 2;
        }
    }
}

int seed_fetch(const char *base_url, seed_files *ret, char **ret_error)
{
    if (strempty(base_url)) {
        return errmsg_fail(ret_error, -EINVAL, "no seed URL");
    }
    size_t blen = strlen(base_url);
    while (blen > 0 && base_url[blen - 1] == '/') {
        blen--;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        return -ENOMEM;
    }
    seed_files f = { 0 };
    int r = 0;
    for (size_t i = 0; i < SEED_N_FILES; i++) {
        char *url = NULL;
        if (asprintf(&url, "%.*s/%s", (int)blen, base_url, seed_file_names[i]) < 0) {
            r = -ENOMEM;
            break;
        }
        body b = { 0 };
        r = fetch_one(c, url, &b, ret_error);
        free(url);
        if (r < 0) {
            break;
        }
        f.data[i] = b.data;
        f.len[i] = b.len;
    }
    curl_easy_cleanup(c);
    if (r < 0) {
        seed_files_clear(&f);
        return r;
    }
    *ret = f;
    return 0;
}

/* ---- the FAT image ---- */

static int write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return negative_errno();
    }
    int r = fileio_write_all(fd, data, len);
    if (close(fd) < 0 && r == 0) {
        r = negative_errno();
    }
    return r;
}

/* mtools with the environment plus MTOOLS_SKIP_CHECK=1 (no geometry checks
 * on a plain file), stdin and stdout on /dev/null (mtools asks questions on a
 * name clash; -o answers them). 0 when it exited 0; `*ret_error` then has
 * its stderr's end. */
static int run_mtools(char *const argv[], char **ret_error)
{
    if (setenv("MTOOLS_SKIP_CHECK", "1", 1) < 0) {
        return negative_errno();
    }
    return command_run(argv, NULL, ret_error);
}

int seed_image_build(const seed_files *f, uint64_t size_bytes, const char *tmpdir,
                     uint8_t **ret_image, char **ret_error)
{
    if (size_bytes < ((uint64_t)1 << 20) || size_bytes > ((uint64_t)64 << 20) ||
        size_bytes % 512 != 0) {
        return errmsg_fail(ret_error, -EINVAL, "seed image size %llu out of range",
                           (unsigned long long)size_bytes);
    }
    if (!tmpdir) {
        tmpdir = getenv("TMPDIR");
    }
    if (strempty(tmpdir)) {
        tmpdir = "/tmp";
    }
    char *dir = NULL, *img = NULL, *src = NULL, *dst = NULL;
    uint8_t *image = NULL;
    size_t image_len = 0;
    int r, fd = -1;
    if (asprintf(&dir, "%s/rackboot-seed.XXXXXX", tmpdir) < 0) {
        return -ENOMEM;
    }
    if (!mkdtemp(dir)) {
        r = negative_errno();
        free(dir);
        return errmsg_fail(ret_error, r, "cannot make a directory in %s: %s", tmpdir, errstr(r));
    }
    if (asprintf(&img, "%s/cidata.img", dir) < 0) {
        r = -ENOMEM;
        goto out;
    }
    fd = open(img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)size_bytes) < 0) {
        r = negative_errno();
        errmsg_fail(ret_error, r, "cannot make %s: %s", img, errstr(r));
        goto out;
    }
    close(fd);
    fd = -1;
    {
        char *argv[] = { RB_UNCONST("mformat"),  RB_UNCONST("-i"), img, RB_UNCONST("-v"),
                         RB_UNCONST(SEED_LABEL), RB_UNCONST("::"), NULL };
        char *why = NULL;
        r = run_mtools(argv, &why);
        if (r < 0) {
            errmsg_fail(ret_error, r,
                        "cannot make the seed's file system (is mtools installed?): %s",
                        why ? why : errstr(r));
            free(why);
            goto out;
        }
    }
    for (size_t i = 0; i < SEED_N_FILES; i++) {
        free(src);
        free(dst);
        dst = NULL;
        if (asprintf(&src, "%s/%s", dir, seed_file_names[i]) < 0 ||
            asprintf(&dst, "::%s", seed_file_names[i]) < 0) {
            r = -ENOMEM;
            goto out;
        }
        r = write_file(src, f->data[i], f->len[i]);
        if (r < 0) {
            errmsg_fail(ret_error, r, "cannot write %s: %s", src, errstr(r));
            goto out;
        }
        char *argv[] = {
            RB_UNCONST("mcopy"), RB_UNCONST("-i"), img, RB_UNCONST("-o"), src, dst, NULL
        };
        char *why = NULL;
        r = run_mtools(argv, &why);
        unlink(src);
        if (r < 0) {
            /* mcopy's one failure with good input: a full file system. */
            errmsg_fail(ret_error, -ENOSPC, "cannot copy %s into the seed image: %s",
                        seed_file_names[i], why ? why : errstr(r));
            free(why);
            r = -ENOSPC;
            goto out;
        }
    }
    {
        void *data = NULL;
        r = fileio_read_all(img, (size_t)size_bytes, &data, &image_len);
        image = data;
    }
    if (r < 0 || image_len != size_bytes) {
        r = r < 0 ? r : -EIO;
        errmsg_fail(ret_error, r, "cannot read back %s", img);
        goto out;
    }
    *ret_image = TAKE_PTR(image);
    r = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (img) {
        unlink(img);
    }
    if (src) {
        unlink(src);
    }
    rmdir(dir);
    free(image);
    free(dir);
    free(img);
    free(src);
    free(dst);
    return r;
}

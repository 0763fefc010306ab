#include "cache/images.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files/source.h"
#include "sha256.h"
#include "util.h"

/* Longer paths are refused before any lookup. */
#define IMAGES_MAX_PATH 1024

struct cache_images {
    cache *c;
    const intents_store *store;
    cache_images_request *requests; /* waiting, doubly linked */
};

struct cache_images_request {
    files_request base; /* first: files_request_cancel() reaches us through it */
    cache_images *ci;
    cache_request *creq;
    files_done_fn done;
    void *userdata;
    int image_kind;
    char hex[SHA256_HEX_LEN + 1];
    cache_images_request *prev, *next;
    char profile[]; /* "" for objects/ */
};

int cache_images_new(cache *c, const intents_store *store, cache_images **ret)
{
    cache_images *ci = calloc(1, sizeof(*ci));
    if (!ci) {
        return -ENOMEM;
    }
    ci->c = c;
    ci->store = store;
    *ret = ci;
    return 0;
}

static void request_unlink(cache_images_request *rq)
{
    cache_images *ci = rq->ci;
    if (rq->prev) {
        rq->prev->next = rq->next;
    } else if (ci->requests == rq) {
        ci->requests = rq->next;
    }
    if (rq->next) {
        rq->next->prev = rq->prev;
    }
    rq->prev = rq->next = NULL;
}

cache_images *cache_images_free(cache_images *ci)
{
    if (!ci) {
        return NULL;
    }
    while (ci->requests) {
        cache_images_request_cancel(ci->requests);
    }
    free(ci);
    return NULL;
}

bool cache_images_handles(const char *path)
{
    return strncmp(path, "images/", 7) == 0 || strncmp(path, "objects/", 8) == 0;
}

static const model_image *find_image(const model_profile *p, const char *rest)
{
    image_kind want = image_kind_of_path(rest);
    for (size_t i = 0; i < p->n_images; i++) {
        const model_image *img = &p->images[i];
        if (img->kind != want) {
            continue;
        }
        if (want != IMAGE_OTHER || streq(img->name, rest)) {
            return img;
        }
    }
    return NULL;
}

/* An image of any profile of the set with this digest, for objects/ paths:
 * where to fetch it when missing or found corrupt. */
static const model_image *find_by_digest(const intent_set *set, const uint8_t sha[SHA256_LEN])
{
    for (size_t i = 0; i < intent_set_n_profiles(set); i++) {
        const model_profile *p = intent_set_profile_at(set, i);
        for (size_t k = 0; k < p->n_images; k++) {
            if (memcmp(p->images[k].sha256, sha, SHA256_LEN) == 0) {
                return &p->images[k];
            }
        }
    }
    return NULL;
}

static void on_cache_done(void *userdata, int r, int fd, uint64_t size)
{
    cache_images_request *rq = userdata;
    request_unlink(rq);
    if (r < 0 && r != -EBADMSG && r != -ENOENT) {
        /* Size limits and local failures: the object cannot be had now. */
        r = -EIO;
    }
    files_result res = { .fd = fd,
                         .size = size,
                         .content_type = "application/octet-stream",
                         .verified = true,
                         .image_kind = rq->image_kind };
    snprintf(res.etag, sizeof(res.etag), "\"%s\"", rq->hex);
    res.profile = rq->profile[0] ? rq->profile : NULL;
    /* Unlinked already, so the callback may start, cancel or free anything
     * else; rq itself lives until the callback returns (the profile name in
     * res points into it). */
    rq->done(rq->userdata, r, r == 0 ? &res : NULL);
    free(rq);
}

static void request_cancel_base(files_request *base)
{
    cache_images_request_cancel((cache_images_request *)base);
}

/* `rest` is the path after "objects/" or "images/". */
static int open_rest(cache_images *ci, bool objects, const char *rest, files_done_fn done,
                     void *userdata, cache_images_request **ret_req)
{
    if (strnlen(rest, IMAGES_MAX_PATH + 1) > IMAGES_MAX_PATH) {
        return -ENAMETOOLONG;
    }
    const intent_set *set = intents_store_current(ci->store);
    cache_object obj = { .url = NULL };
    const char *profile_name = "";
    size_t profile_len = 0;
    int kind = -1;
    if (objects) {
        if (sha256_from_hex(rest, obj.sha256) < 0) {
            return -ENOENT;
        }
        /* The origin even when cached: a copy found corrupt on disk is
         * fetched again from it (cache.h). */
        const model_image *img = find_by_digest(set, obj.sha256);
        if (img) {
            obj.url = img->url;
            obj.size = img->size;
        } else if (!cache_contains(ci->c, obj.sha256)) {
            return -ENOENT;
        }
    } else {
        const char *name = rest;
        const char *slash = strchr(name, '/');
        if (!slash || slash == name || !slash[1]) {
            return -ENOENT;
        }
        profile_len = (size_t)(slash - name);
        const model_profile *p = NULL;
        for (size_t i = 0; i < intent_set_n_profiles(set) && !p; i++) {
            const model_profile *q = intent_set_profile_at(set, i);
            if (strncmp(q->name, name, profile_len) == 0 && q->name[profile_len] == '\0') {
                p = q;
            }
        }
        const model_image *img = p ? find_image(p, slash + 1) : NULL;
        if (!img) {
            return -ENOENT;
        }
        memcpy(obj.sha256, img->sha256, SHA256_LEN);
        obj.url = img->url;
        obj.size = img->size;
        profile_name = p->name;
        kind = (int)img->kind;
    }

    cache_images_request *rq = calloc(1, sizeof(*rq) + profile_len + 1);
    if (!rq) {
        return -ENOMEM;
    }
    rq->base.cancel = request_cancel_base;
    rq->ci = ci;
    rq->done = done;
    rq->userdata = userdata;
    rq->image_kind = kind;
    sha256_to_hex(obj.sha256, rq->hex);
    memcpy(rq->profile, profile_name, profile_len);
    rq->next = ci->requests;
    if (rq->next) {
        rq->next->prev = rq;
    }
    ci->requests = rq;
    cache_request *creq = NULL;
    int r = cache_open(ci->c, &obj, on_cache_done, rq, &creq);
    if (r < 0) {
        request_unlink(rq);
        free(rq);
        return r == -EFBIG ? -EIO : r;
    }
    if (r == 1) {
        /* Answered (and rq freed) already. */
        if (ret_req) {
            *ret_req = NULL;
        }
        return 0;
    }
    rq->creq = creq;
    if (ret_req) {
        *ret_req = rq;
    }
    return 0;
}

int cache_images_open(cache_images *ci, const char *path, files_done_fn done, void *userdata,
                      cache_images_request **ret_req)
{
    if (strncmp(path, "objects/", 8) == 0) {
        return open_rest(ci, true, path + 8, done, userdata, ret_req);
    }
    if (strncmp(path, "images/", 7) == 0) {
        return open_rest(ci, false, path + 7, done, userdata, ret_req);
    }
    return -ENOENT;
}

int cache_images_source_images(void *ci, const char *path, const struct sockaddr_in6 *client,
                               files_done_fn done, void *userdata, files_request **ret_req)
{
    (void)client; /* the images are no secret */
    cache_images_request *rq = NULL;
    int r = open_rest(ci, false, path, done, userdata, &rq);
    if (r < 0) {
        /* Like the TFTP root: every outcome through the callback. */
        done(userdata, r, NULL);
        return 0;
    }
    if (ret_req) {
        *ret_req = rq ? &rq->base : NULL;
    }
    return 0;
}

int cache_images_source_objects(void *ci, const char *path, const struct sockaddr_in6 *client,
                                files_done_fn done, void *userdata, files_request **ret_req)
{
    (void)client; /* the images are no secret */
    cache_images_request *rq = NULL;
    int r = open_rest(ci, true, path, done, userdata, &rq);
    if (r < 0) {
        /* Like the TFTP root: every outcome through the callback. */
        done(userdata, r, NULL);
        return 0;
    }
    if (ret_req) {
        *ret_req = rq ? &rq->base : NULL;
    }
    return 0;
}

void cache_images_request_cancel(cache_images_request *rq)
{
    if (!rq) {
        return;
    }
    request_unlink(rq);
    cache_request_cancel(rq->creq);
    free(rq);
}

void cache_images_prewarm(cache_images *ci, const intent_set *set, cache_prewarm_stats *ret)
{
    cache_prewarm_stats st = { 0 };
    size_t n_profiles = intent_set_n_profiles(set);
    if (n_profiles == 0) {
        if (ret) {
            *ret = st;
        }
        return;
    }
    /* Intents point into the set's profile array: one pass marks the used
     * ones, however many hosts there are. */
    const model_profile *first = intent_set_profile_at(set, 0);
    bool *used = calloc(n_profiles, sizeof(*used));
    if (!used) {
        st.failed = 1;
        if (ret) {
            *ret = st;
        }
        return;
    }
    for (size_t k = 0; k < intent_set_size(set); k++) {
        size_t idx = (size_t)(intent_set_at(set, k)->profile - first);
        RB_ASSERT(idx < n_profiles);
        used[idx] = true;
    }
    for (size_t i = 0; i < n_profiles; i++) {
        const model_profile *p = intent_set_profile_at(set, i);
        if (!used[i]) {
            continue;
        }
        st.profiles++;
        for (size_t k = 0; k < p->n_images; k++) {
            const model_image *img = &p->images[k];
            cache_object obj = { .url = img->url, .size = img->size };
            memcpy(obj.sha256, img->sha256, SHA256_LEN);
            st.images++;
            int r = cache_prefetch(ci->c, &obj);
            if (r == 1) {
                st.cached++;
            } else if (r == 0) {
                st.started++;
            } else {
                st.failed++;
            }
        }
    }
    free(used);
    if (ret) {
        *ret = st;
    }
}

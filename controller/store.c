/* store: see store.h. The store object, its backend connection and its
 * batches; the rules behind each call are fleet.c's, the SQL the backend's
 * (store/backend.h, store/sqlite.c, store/postgresql.c). */
#include "store.h"
#include "fleet-internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The backends a [store] url may name. */
static const store_backend_ops *const backends[] = {
    &store_sqlite_ops,
    &store_postgresql_ops,
};

/* ---- Open, close ------------------------------------------------------- */

static store *store_new(const store_backend_ops *ops)
{
    store *s = calloc(1, sizeof(*s));
    if (s) {
        s->ops = ops;
    }
    return s;
}

/* On failure: the reason for the caller, and the half-made store freed. */
static int open_failed(store *s, int r, char **ret_errmsg)
{
    if (ret_errmsg) {
        *ret_errmsg = strdup(s->errmsg[0] ? s->errmsg : strerror(-r));
    }
    store_close(s);
    return r;
}

int store_open_backend(const store_backend_ops *ops, const char *location, store **ret,
                       char **ret_errmsg)
{
    if (!ops || !location || !ret) {
        return -EINVAL;
    }
    store *s = store_new(ops);
    if (!s) {
        return -ENOMEM;
    }
    int r = ops->open(location, s->errmsg, sizeof(s->errmsg), &s->be);
    if (r < 0) {
        return open_failed(s, r, ret_errmsg);
    }
    *ret = s;
    return 0;
}

int store_open(const char *path, store **ret, char **ret_errmsg)
{
    return store_open_backend(&store_sqlite_ops, path, ret, ret_errmsg);
}

/* Splits a store URL: its backend and *ret_location (pointing into `url`),
 * else a negative errno and *ret_why. */
static int url_parse(const char *url, const store_backend_ops **ret_ops, const char **ret_location,
                     const char **ret_why)
{
    if (!url || !*url) {
        *ret_why = "empty URL";
        return -EINVAL;
    }
    for (size_t i = 0; i < ARRAY_SIZE(backends); i++) {
        const char *schemes[] = { backends[i]->url_scheme, backends[i]->url_scheme_alias };
        for (size_t j = 0; j < ARRAY_SIZE(schemes); j++) {
            size_t n = schemes[j] ? strlen(schemes[j]) : 0;
            if (n && strncmp(url, schemes[j], n) == 0) {
                TRY(backends[i]->location_check(url + n, ret_why));
                *ret_ops = backends[i];
                *ret_location = url + n;
                return 0;
            }
        }
    }
    if (strstr(url, "://")) {
        *ret_why = "unknown store backend (this build has sqlite://, postgresql://)";
        return -EPROTONOSUPPORT;
    }
    *ret_why = "not a URL (expected sqlite:///PATH)";
    return -EINVAL;
}

int store_url_check(const char *url, const char **ret_why)
{
    const store_backend_ops *ops = NULL;
    const char *location = NULL;
    const char *why = NULL;
    int r = url_parse(url, &ops, &location, &why);
    if (r < 0 && ret_why) {
        *ret_why = why;
    }
    return r;
}

/* Appends s[0..n) to *out (sized for all of the URL plus slack). */
static char *put(char *out, const char *s, size_t n)
{
    memcpy(out, s, n);
    return out + n;
}

char *store_url_redacted(const char *url)
{
    static const char mask[] = "***";
    const char *auth = strstr(url, "://");
    if (!auth) {
        return strdup(url); /* a file's path */
    }
    /* never longer than the URL plus a mask per character it could hide */
    size_t len = strlen(url);
    char *out = malloc(len + 1 + (len + 1) * (sizeof(mask) - 1));
    if (!out) {
        return NULL;
    }
    char *o = out;
    const char *p = url;
    auth += 3;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = memrchr(auth, '@', auth_len);
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) { /* USER:PASS@: keep USER and @ */
        o = put(o, url, (size_t)(colon + 1 - url));
        o = put(o, mask, sizeof(mask) - 1);
        p = at;
    }
    /* password=VALUE in the query (libpq's URL parameters) */
    const char *query = strchr(p, '?');
    if (query) {
        o = put(o, p, (size_t)(query + 1 - p));
        p = query + 1;
        while (*p) {
            size_t n = strcspn(p, "&");
            if (strncmp(p, "password=", 9) == 0) {
                o = put(o, p, 9);
                o = put(o, mask, sizeof(mask) - 1);
            } else {
                o = put(o, p, n);
            }
            p += n;
            if (*p == '&') {
                *o++ = *p++;
            }
        }
    }
    o = put(o, p, strlen(p));
    *o = '\0';
    return out;
}

int store_open_url(const char *url, store **ret, char **ret_errmsg)
{
    const store_backend_ops *ops = NULL;
    const char *location = NULL;
    const char *why = NULL;
    int r = url_parse(url, &ops, &location, &why);
    if (r < 0) {
        if (ret_errmsg) {
            *ret_errmsg = strdup(why);
        }
        return r;
    }
    return store_open_backend(ops, location, ret, ret_errmsg);
}

/* The backend's peek_version with its reason as a string for the caller. */
static int peek_version(const store_backend_ops *ops, const char *location, int *ret_version,
                        char **ret_errmsg)
{
    char errbuf[256] = "";
    int version = 0;
    int r = ops->peek_version(location, errbuf, sizeof(errbuf), &version);
    if (r < 0) {
        if (ret_errmsg) {
            *ret_errmsg = strdup(errbuf[0] ? errbuf : strerror(-r));
        }
        return r;
    }
    *ret_version = version;
    return 0;
}

int store_peek_version(const char *path, int *ret_version, char **ret_errmsg)
{
    return peek_version(&store_sqlite_ops, path, ret_version, ret_errmsg);
}

int store_peek_version_url(const char *url, int *ret_version, char **ret_errmsg)
{
    const store_backend_ops *ops = NULL;
    const char *location = NULL;
    const char *why = NULL;
    int r = url_parse(url, &ops, &location, &why);
    if (r < 0) {
        if (ret_errmsg) {
            *ret_errmsg = strdup(why);
        }
        return r;
    }
    return peek_version(ops, location, ret_version, ret_errmsg);
}

bool store_url_is_shared(const char *url)
{
    const store_backend_ops *ops = NULL;
    const char *location = NULL;
    const char *why = NULL;
    return url && url_parse(url, &ops, &location, &why) >= 0 && ops->shared;
}

int store_connect(const store *parent, store **ret, char **ret_errmsg)
{
    if (!parent || !ret) {
        return -EINVAL;
    }
    store *s = store_new(parent->ops);
    if (!s) {
        return -ENOMEM;
    }
    int r = s->ops->connect(parent->be, s->errmsg, sizeof(s->errmsg), &s->be);
    if (r < 0) {
        return open_failed(s, r, ret_errmsg);
    }
    *ret = s;
    return 0;
}

store *store_close(store *s)
{
    if (!s) {
        return NULL;
    }
    if (s->be) {
        s->ops->close(s->be);
    }
    free(s);
    return NULL;
}

const char *store_errmsg(const store *s)
{
    return s ? s->errmsg : "";
}

int store_schema_version(store *s)
{
    s->errmsg[0] = '\0';
    return s->ops->schema_version(s->be);
}

/* ---- Several controllers on one store ---------------------------------- */

struct store_feed {
    const store_backend_ops *ops;
    store_backend_feed *be;
    char errmsg[512];
};

bool store_shared(const store *s)
{
    return s->ops->shared;
}

int store_feed_open(const store *s, store_feed **ret, char **ret_errmsg)
{
    if (!s || !ret) {
        return -EINVAL;
    }
    if (!s->ops->feed_open) {
        if (ret_errmsg) {
            *ret_errmsg = strdup("this store has no change feed");
        }
        return -EOPNOTSUPP;
    }
    store_feed *f = calloc(1, sizeof(*f));
    if (!f) {
        return -ENOMEM;
    }
    f->ops = s->ops;
    int r = f->ops->feed_open(s->be, f->errmsg, sizeof(f->errmsg), &f->be);
    if (r < 0) {
        if (ret_errmsg) {
            *ret_errmsg = strdup(f->errmsg[0] ? f->errmsg : strerror(-r));
        }
        free(f);
        return r;
    }
    *ret = f;
    return 0;
}

store_feed *store_feed_close(store_feed *f)
{
    if (f) {
        f->ops->feed_close(f->be);
        free(f);
    }
    return NULL;
}

int store_feed_fd(const store_feed *f)
{
    return f->ops->feed_fd(f->be);
}

int store_feed_read(store_feed *f,
                    void (*cb)(store_feed_topic topic, const char *rack, void *userdata),
                    void *userdata)
{
    f->errmsg[0] = '\0';
    return f->ops->feed_read(f->be, cb, userdata);
}

int store_feed_reconnect(store_feed *f)
{
    f->errmsg[0] = '\0';
    return f->ops->feed_reconnect(f->be);
}

const char *store_feed_errmsg(const store_feed *f)
{
    return f ? f->errmsg : "";
}

int store_expiry_lead(store *s)
{
    s->errmsg[0] = '\0';
    return s->ops->expiry_lock ? s->ops->expiry_lock(s->be) : 1;
}

/* ---- Transactions and batches ------------------------------------------ */

int fleet_fail(store *s, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
    return r;
}

int fleet_found(store *s, int r, const char *what, const char *name)
{
    if (r < 0) {
        return r;
    }
    return r == 0 ? fleet_fail(s, -ENOENT, "no %s %s", what, name) : 0;
}

int fleet_tx_begin(store *s)
{
    return s->in_batch ? s->ops->savepoint(s->be) : s->ops->begin(s->be);
}

/* Runs `undo` keeping the error message of what failed before it. */
static void undo_quietly(store *s, int (*undo)(store_backend *b))
{
    char saved[sizeof(s->errmsg)];
    memcpy(saved, s->errmsg, sizeof(saved));
    (void)undo(s->be);
    memcpy(s->errmsg, saved, sizeof(saved));
}

int fleet_tx_end(store *s, int r)
{
    if (s->in_batch) {
        if (r < 0 && !s->ops->in_transaction(s->be)) {
            /* The backend rolled the whole batch back (disk full, I/O
             * error): there is no savepoint left, and going on would commit
             * the rest of the batch piecemeal. */
            return -EIO;
        }
        if (r < 0) {
            undo_quietly(s, s->ops->rollback_to);
        }
        int c = s->ops->release(s->be);
        return r < 0 ? r : c < 0 ? c : r;
    }
    if (r >= 0) {
        int c = s->ops->commit(s->be);
        if (c >= 0) {
            return r;
        }
        r = c;
    }
    if (s->ops->in_transaction(s->be)) {
        undo_quietly(s, s->ops->rollback);
    }
    return r;
}

int store_batch_begin(store *s)
{
    RB_ASSERT(!s->in_batch);
    int r = s->ops->begin(s->be);
    if (r >= 0) {
        s->in_batch = true;
    }
    return r;
}

int store_batch_end(store *s, bool commit)
{
    RB_ASSERT(s->in_batch);
    s->in_batch = false;
    if (!commit) {
        return s->ops->rollback(s->be);
    }
    return fleet_tx_end(s, 0);
}

bool store_batch_open(store *s)
{
    return s->in_batch && s->ops->in_transaction(s->be);
}

int store_batch_commit_audited(store *s, const store_audit *a)
{
    RB_ASSERT(s->in_batch);
    int r = store_audit_append(s, a); /* a savepoint inside the batch */
    if (r < 0) {
        char saved[sizeof(s->errmsg)];
        memcpy(saved, s->errmsg, sizeof(saved));
        (void)store_batch_end(s, false);
        memcpy(s->errmsg, saved, sizeof(saved));
        return r;
    }
    return store_batch_end(s, true);
}

/* ---- Loaded profiles (built by backends) ------------------------------- */

store_loaded_profile *store_loaded_profile_free(store_loaded_profile *lp)
{
    if (!lp) {
        return NULL;
    }
    model_profile_clear(&lp->p);
    free(lp);
    return NULL;
}

void store_loaded_profile_freep(store_loaded_profile **lp)
{
    *lp = store_loaded_profile_free(*lp);
}

/* NULL for "" (the store keeps "none" as an empty column). */
static char *dup_text(const char *s, bool *failed)
{
    if (!s || !*s) {
        return NULL;
    }
    char *c = strdup(s);
    *failed |= !c;
    return c;
}

int store_loaded_profile_new(int64_t id, const char *name, const char *cmdline,
                             const char *kickstart, store_loaded_profile **ret)
{
    store_loaded_profile *lp = calloc(1, sizeof(*lp));
    if (!lp) {
        return -ENOMEM;
    }
    bool failed = false;
    lp->id = id;
    lp->p.name = strdup(name);
    failed |= !lp->p.name;
    lp->p.cmdline = dup_text(cmdline, &failed);
    lp->p.kickstart = dup_text(kickstart, &failed);
    if (failed) {
        store_loaded_profile_free(lp);
        return -ENOMEM;
    }
    *ret = lp;
    return 0;
}

int store_loaded_profile_add_image(store_loaded_profile *lp, const model_image *im)
{
    model_profile *p = &lp->p;
    if (p->n_images == lp->cap) {
        size_t ncap = lp->cap ? 2 * lp->cap : 4;
        model_image *n = reallocarray(p->images, ncap, sizeof(*n));
        if (!n) {
            return -ENOMEM;
        }
        p->images = n;
        lp->cap = ncap;
    }
    model_image copy = *im;
    copy.name = strdup(im->name);
    copy.url = strdup(im->url);
    if (!copy.name || !copy.url) {
        free(copy.name);
        free(copy.url);
        return -ENOMEM;
    }
    p->images[p->n_images++] = copy;
    return 0;
}

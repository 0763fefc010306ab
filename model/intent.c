#include "model/intent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hashmap.h"
#include "parse.h"
#include "util.h"

struct intent_set {
    uint64_t generation;
    intent *intents;
    size_t n, cap;
    model_profile *profiles;
    size_t n_profiles, cap_profiles;
    hashmap *by_mac;     /* 6-byte MAC -> index + 1 into intents */
    hashmap *by_install; /* install id -> index + 1 */
};

/* Indexes are stored as (index + 1) cast to a pointer, because the intents
 * array may move when it grows and NULL must mean "absent". */
static void *index_ptr(size_t i)
{
    return (void *)(uintptr_t)(i + 1);
}

static size_t ptr_index(void *p)
{
    return (size_t)(uintptr_t)p - 1;
}

void intent_clear(intent *in)
{
    free(in->install_id);
    free(in->host);
    free(in->hostname);
    free(in->token);
    for (size_t i = 0; i < in->n_search; i++) {
        free(in->search[i]);
    }
    memset(in, 0, sizeof(*in));
}

int intent_set_new(uint64_t generation, intent_set **ret)
{
    intent_set *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->generation = generation;
    if (hashmap_new(64, &s->by_mac) < 0 || hashmap_new(64, &s->by_install) < 0) {
        intent_set_free(s);
        return -ENOMEM;
    }
    *ret = s;
    return 0;
}

intent_set *intent_set_free(intent_set *s)
{
    if (!s) {
        return NULL;
    }
    for (size_t i = 0; i < s->n; i++) {
        intent_clear(&s->intents[i]);
    }
    free(s->intents);
    for (size_t i = 0; i < s->n_profiles; i++) {
        model_profile_clear(&s->profiles[i]);
    }
    free(s->profiles);
    hashmap_free(s->by_mac);
    hashmap_free(s->by_install);
    free(s);
    return NULL;
}

const model_profile *intent_set_find_profile(const intent_set *s, const char *name)
{
    for (size_t i = 0; i < s->n_profiles; i++) {
        if (streq(s->profiles[i].name, name)) {
            return &s->profiles[i];
        }
    }
    return NULL;
}

int intent_set_add_profile(intent_set *s, model_profile *p)
{
    if (!p->name) {
        return -EINVAL;
    }
    if (intent_set_find_profile(s, p->name)) {
        return -EEXIST;
    }
    /* Intents point at profiles, so the array must never move once an intent
     * exists: profiles are all added first. */
    if (s->n > 0) {
        return -EBUSY;
    }
    if (s->n_profiles == s->cap_profiles) {
        size_t cap = s->cap_profiles ? s->cap_profiles * 2 : 8;
        model_profile *grown = realloc(s->profiles, cap * sizeof(*grown));
        if (!grown) {
            return -ENOMEM;
        }
        s->profiles = grown;
        s->cap_profiles = cap;
    }
    s->profiles[s->n_profiles++] = *p;
    memset(p, 0, sizeof(*p));
    return 0;
}

int intent_set_add(intent_set *s, intent *in, const char *profile_name)
{
    if (in->n_macs == 0 || in->n_macs > INTENT_MAX_MACS || !in->install_id || !in->host) {
        return -EINVAL;
    }
    for (size_t i = 0; i < in->n_search; i++) {
        if (!dns_name_valid(in->search[i])) {
            return -EINVAL;
        }
    }
    const model_profile *profile = intent_set_find_profile(s, profile_name);
    if (!profile) {
        return -ENOENT;
    }
    if (hashmap_get(s->by_install, in->install_id, strlen(in->install_id))) {
        return -EEXIST;
    }
    for (size_t i = 0; i < in->n_macs; i++) {
        if (hashmap_get(s->by_mac, in->macs[i], 6)) {
            return -EEXIST;
        }
        for (size_t j = 0; j < i; j++) {
            if (memcmp(in->macs[i], in->macs[j], 6) == 0) {
                return -EEXIST;
            }
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        intent *grown = realloc(s->intents, cap * sizeof(*grown));
        if (!grown) {
            return -ENOMEM;
        }
        s->intents = grown;
        s->cap = cap;
        /* Keys point into the intents: re-index after the move. */
        hashmap_clear(s->by_mac);
        hashmap_clear(s->by_install);
        for (size_t i = 0; i < s->n; i++) {
            intent *e = &s->intents[i];
            if (hashmap_put(s->by_install, e->install_id, strlen(e->install_id), index_ptr(i)) <
                0) {
                return -ENOMEM;
            }
            for (size_t m = 0; m < e->n_macs; m++) {
                if (hashmap_put(s->by_mac, e->macs[m], 6, index_ptr(i)) < 0) {
                    return -ENOMEM;
                }
            }
        }
    }
    size_t idx = s->n;
    intent *e = &s->intents[idx];
    *e = *in;
    e->profile = profile;
    int r = hashmap_put(s->by_install, e->install_id, strlen(e->install_id), index_ptr(idx));
    for (size_t m = 0; r == 0 && m < e->n_macs; m++) {
        r = hashmap_put(s->by_mac, e->macs[m], 6, index_ptr(idx));
    }
    if (r < 0) {
        hashmap_remove(s->by_install, e->install_id, strlen(e->install_id));
        for (size_t m = 0; m < e->n_macs; m++) {
            hashmap_remove(s->by_mac, e->macs[m], 6);
        }
        return r;
    }
    s->n++;
    memset(in, 0, sizeof(*in));
    return 0;
}

uint64_t intent_set_generation(const intent_set *s)
{
    return s->generation;
}

size_t intent_set_size(const intent_set *s)
{
    return s->n;
}

const intent *intent_set_at(const intent_set *s, size_t i)
{
    return i < s->n ? &s->intents[i] : NULL;
}

size_t intent_set_n_profiles(const intent_set *s)
{
    return s->n_profiles;
}

const model_profile *intent_set_profile_at(const intent_set *s, size_t i)
{
    return i < s->n_profiles ? &s->profiles[i] : NULL;
}

const intent *intent_set_find_mac(const intent_set *s, const uint8_t mac[6])
{
    void *p = hashmap_get(s->by_mac, mac, 6);
    return p ? &s->intents[ptr_index(p)] : NULL;
}

bool intent_has_mac(const intent *in, const uint8_t mac[6])
{
    for (size_t i = 0; i < in->n_macs && i < INTENT_MAX_MACS; i++) {
        if (memcmp(in->macs[i], mac, 6) == 0) {
            return true;
        }
    }
    return false;
}

const intent *intent_set_find_install(const intent_set *s, const char *install_id)
{
    void *p = hashmap_get(s->by_install, install_id, strlen(install_id));
    return p ? &s->intents[ptr_index(p)] : NULL;
}

int intent_set_mark_netboot_done(intent_set *s, const char *install_id)
{
    void *p = hashmap_get(s->by_install, install_id, strlen(install_id));
    if (!p) {
        return -ENOENT;
    }
    s->intents[ptr_index(p)].netboot_done = true;
    return 0;
}

enum { MAX_LISTENERS = 8 };

struct intents_store {
    intent_set *current;
    struct {
        intents_listener fn;
        void *userdata;
    } listeners[MAX_LISTENERS];
    size_t n_listeners;
};

int intents_store_new(intents_store **ret)
{
    intents_store *st = calloc(1, sizeof(*st));
    if (!st) {
        return -ENOMEM;
    }
    int r = intent_set_new(0, &st->current);
    if (r < 0) {
        free(st);
        return r;
    }
    *ret = st;
    return 0;
}

intents_store *intents_store_free(intents_store *st)
{
    if (st) {
        intent_set_free(st->current);
        free(st);
    }
    return NULL;
}

void intents_store_replace(intents_store *st, intent_set *set)
{
    RB_ASSERT(set);
    intent_set *old = st->current;
    st->current = set;
    intent_set_free(old);
    for (size_t i = 0; i < st->n_listeners; i++) {
        st->listeners[i].fn(st->listeners[i].userdata, set);
    }
}

const intent_set *intents_store_current(const intents_store *st)
{
    return st->current;
}

int intents_store_listen(intents_store *st, intents_listener fn, void *userdata)
{
    if (st->n_listeners == MAX_LISTENERS) {
        return -ENOSPC;
    }
    st->listeners[st->n_listeners].fn = fn;
    st->listeners[st->n_listeners].userdata = userdata;
    st->n_listeners++;
    return 0;
}

static int intent_copy(const intent *src, intent *dst)
{
    *dst = *src;
    dst->install_id = strdup(src->install_id);
    dst->host = strdup(src->host);
    dst->hostname = strdup(src->hostname);
    dst->token = strdup(src->token);
    dst->profile = NULL;
    dst->n_search = 0;
    bool ok = dst->install_id && dst->host && dst->hostname && dst->token;
    for (size_t i = 0; ok && i < src->n_search; i++) {
        dst->search[i] = strdup(src->search[i]);
        dst->n_search = i + 1;
        ok = dst->search[i] != NULL;
    }
    if (!ok) {
        intent_clear(dst);
        return -ENOMEM;
    }
    return 0;
}

int intent_set_filter(const intent_set *src, bool (*keep)(const intent *in, void *userdata),
                      void *userdata, intent_set **ret)
{
    intent_set *s = NULL;
    int r = intent_set_new(src->generation, &s);
    for (size_t i = 0; r >= 0 && i < src->n_profiles; i++) {
        model_profile p;
        r = model_profile_copy(&src->profiles[i], &p);
        if (r >= 0 && (r = intent_set_add_profile(s, &p)) < 0) {
            model_profile_clear(&p);
        }
    }
    for (size_t i = 0; r >= 0 && i < src->n; i++) {
        const intent *in = &src->intents[i];
        if (!keep(in, userdata)) {
            continue;
        }
        intent copy;
        r = intent_copy(in, &copy);
        if (r >= 0 && (r = intent_set_add(s, &copy, in->profile->name)) < 0) {
            intent_clear(&copy);
        }
    }
    if (r < 0) {
        intent_set_free(s);
        return r;
    }
    *ret = s;
    return 0;
}

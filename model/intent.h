/* The rack's install intents as the agent's protocol servers see them.
 *
 * One interface, two fillers: the standalone hosts file (small sites, tests)
 * and the controller uplink. Either builds a complete `intent_set` — the
 * whole desired state of the rack, level-triggered — and hands it to the
 * store, which swaps it in at once. The DHCPv6, TFTP and HTTP servers only
 * read: lookups by MAC and by install id are O(1) and allocate nothing.
 *
 * Everything runs on the agent's one event loop, so a set swapped in never
 * changes under a reader; a reader must not keep pointers into a set across
 * loop iterations (copy what it needs). */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/profile.h"

enum {
    INTENT_MAX_MACS = 16,
    INTENT_MAX_DNS = 8,
    INTENT_MAX_SEARCH = 8,
    INTENT_MAX_NAME = 253, /* a DNS name in the search list */
};

typedef struct intent {
    char *install_id;
    char *host; /* inventory name */
    uint8_t macs[INTENT_MAX_MACS][6];
    size_t n_macs;
    struct in6_addr address;
    uint8_t prefix_len;
    bool has_gateway;
    struct in6_addr gateway;
    char *hostname;
    struct in6_addr dns[INTENT_MAX_DNS]; /* empty: the rack's defaults */
    size_t n_dns;
    char *search[INTENT_MAX_SEARCH]; /* empty: the rack's defaults */
    size_t n_search;
    char *token;
    uint32_t attempt;
    const model_profile *profile; /* owned by the set */
    /* The image is on the host's disk (an image deploy reported written):
     * its netboots get no answer, so the firmware boots that disk, while
     * the install stays to take the installed system's phone-home. */
    bool netboot_done;
} intent;

typedef struct intent_set intent_set;

int intent_set_new(uint64_t generation, intent_set **ret);
intent_set *intent_set_free(intent_set *set);

/* Adds a profile; the set takes ownership of *profile's contents on success
 * (the struct is copied and the caller's pointers are cleared). -EEXIST if the
 * name is taken. */
int intent_set_add_profile(intent_set *set, model_profile *profile);
const model_profile *intent_set_find_profile(const intent_set *set, const char *name);

/* Adds an intent for `profile_name` (which must have been added). The set
 * takes ownership of the strings in *in on success. Rejects a MAC or an
 * install id already in the set (-EEXIST), an unknown profile (-ENOENT), no
 * MAC (-EINVAL), a search domain that is not a valid DNS name (-EINVAL). */
int intent_set_add(intent_set *set, intent *in, const char *profile_name);

uint64_t intent_set_generation(const intent_set *set);
size_t intent_set_size(const intent_set *set);
const intent *intent_set_at(const intent_set *set, size_t i);
size_t intent_set_n_profiles(const intent_set *set);
const model_profile *intent_set_profile_at(const intent_set *set, size_t i);

const intent *intent_set_find_mac(const intent_set *set, const uint8_t mac[6]);
/* True when `mac` is one of the intent's. */
bool intent_has_mac(const intent *in, const uint8_t mac[6]);
const intent *intent_set_find_install(const intent_set *set, const char *install_id);

/* A deep copy of `src` without the intents `keep` says no to (e.g. installs
 * that just completed), same generation. */
int intent_set_filter(const intent_set *src, bool (*keep)(const intent *in, void *userdata),
                      void *userdata, intent_set **ret);

/* Marks the intent of `install_id` netboot_done; for a set not yet in a
 * store. -ENOENT when the set has no such install. */
int intent_set_mark_netboot_done(intent_set *set, const char *install_id);

/* Frees the strings an intent owns (for callers whose add failed). */
void intent_clear(intent *in);

/* The store the servers read. Replacing is cheap and immediate; listeners are
 * told after each replacement (e.g. to pre-warm the image cache). */
typedef struct intents_store intents_store;
typedef void (*intents_listener)(void *userdata, const intent_set *now);

int intents_store_new(intents_store **ret);
intents_store *intents_store_free(intents_store *store);
/* Takes ownership of `set` (never NULL) and frees the set it replaces. */
void intents_store_replace(intents_store *store, intent_set *set);
const intent_set *intents_store_current(const intents_store *store);
int intents_store_listen(intents_store *store, intents_listener fn, void *userdata);

static inline const intent *intents_find_mac(const intents_store *st, const uint8_t mac[6])
{
    return intent_set_find_mac(intents_store_current(st), mac);
}

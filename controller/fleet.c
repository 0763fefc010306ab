/* fleet: see fleet.h. Validation, ids and tokens, and the rules over
 * hosts, racks, agents and profiles; installs are in fleet_installs.c,
 * events, history and the audit log in fleet_events.c. */
#include "fleet.h"
#include "fleet-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hex.h"
#include "parse.h"
#include "rbproto.h"
#include "sha256.h"
#include "timeutil.h"
#include "util.h"

/* Writes the reason (if the caller wants one) and returns `r`. */
__attribute__((format(printf, 4, 5))) static int fail(char *why, size_t why_len, int r,
                                                      const char *fmt, ...)
{
    if (why && why_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return r;
}

/* common/parse's rule (the wire's), and NULL is no name. */
bool fleet_object_name_valid(const char *n)
{
    return n && fleet_name_valid(n);
}

int fleet_host_validate(const store_host *h, char *why, size_t why_len)
{
    if (!h || !fleet_object_name_valid(h->name)) {
        return fail(why, why_len, -EINVAL, "invalid host name");
    }
    if (!fleet_object_name_valid(h->rack)) {
        return fail(why, why_len, -EINVAL, "host %s: invalid rack name", h->name);
    }
    if (h->n_macs < 1 || h->n_macs > STORE_MACS_MAX) {
        return fail(why, why_len, -EINVAL, "host %s: %zu MACs, want 1..%u", h->name, h->n_macs,
                    STORE_MACS_MAX);
    }
    for (size_t i = 0; i < h->n_macs; i++) {
        for (size_t j = 0; j < i; j++) {
            if (memcmp(h->macs[i], h->macs[j], 6) == 0) {
                char m[FORMAT_MAC_LEN];
                format_mac(h->macs[i], m);
                return fail(why, why_len, -EINVAL, "host %s: mac %s listed twice", h->name, m);
            }
        }
    }
    if (h->prefix_length < 1 || h->prefix_length > 128) {
        return fail(why, why_len, -EINVAL, "host %s: prefix length %u, want 1..128", h->name,
                    h->prefix_length);
    }
    if (strnlen(h->hostname, sizeof(h->hostname)) >= sizeof(h->hostname)) {
        return fail(why, why_len, -EINVAL, "host %s: hostname too long", h->name);
    }
    return fleet_host_bmc_validate(h, why, why_len);
}

int fleet_host_bmc_validate(const store_host *h, char *why, size_t why_len)
{
    char reason[160];
    if (*h->bmc_url && model_bmc_url_parse(h->bmc_url, NULL, reason, sizeof(reason)) < 0) {
        return fail(why, why_len, -EINVAL, "host %s: %s", h->name, reason);
    }
    if (!*h->bmc_url && (*h->bmc_user || *h->bmc_password)) {
        return fail(why, why_len, -EINVAL, "host %s: a BMC user or password without a BMC URL",
                    h->name);
    }
    /* The password is never quoted: the reason goes to logs and operators. */
    if (!model_bmc_user_valid(h->bmc_user) || !model_bmc_password_valid(h->bmc_password)) {
        return fail(why, why_len, -EINVAL,
                    "host %s: the BMC user or password is not printable ASCII of at most %u bytes",
                    h->name, MODEL_BMC_PASSWORD_MAX);
    }
    if (h->firmware != MODEL_FIRMWARE_UNKNOWN && h->firmware != MODEL_FIRMWARE_BIOS &&
        h->firmware != MODEL_FIRMWARE_UEFI) {
        return fail(why, why_len, -EINVAL, "host %s: unknown firmware", h->name);
    }
    return 0;
}

static int random_bytes(void *buf, size_t n, char *why, size_t why_len)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = getrandom((uint8_t *)buf + done, n - done, 0);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            int r = negative_errno();
            return fail(why, why_len, r, "getrandom: %s", strerror(-r));
        }
        done += (size_t)k;
    }
    return 0;
}

/* RFC 9562 §5.7: version 7 UUID, lower-case: 48 bits of Unix time in
 * milliseconds, then 74 random bits. Ids made in time order sort in time
 * order, so the store's unique index on them grows at its end: with random
 * (version 4) ids, each of a fleet-wide install's inserts landed on a page
 * of its own, and the install spent most of its time reading and writing
 * those pages. 74 random bits still make an id unguessable (the install's
 * token, not its id, is what authorises). */
static int make_uuid(uint64_t ms, char out[STORE_ID_LEN + 1], char *why, size_t why_len)
{
    uint8_t b[16];
    char hex[33];
    int r = random_bytes(b, sizeof(b), why, why_len);
    if (r < 0) {
        return r;
    }
    for (int i = 0; i < 6; i++) {
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x70);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    hex_encode(b, sizeof(b), hex);
    snprintf(out, STORE_ID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
             hex + 20);
    return 0;
}

int fleet_new_id(uint64_t now_ms, char ret_id[STORE_ID_LEN + 1], char *why, size_t why_len)
{
    return make_uuid(now_ms, ret_id, why, why_len);
}

int fleet_install_secrets(uint64_t now_ms, char ret_id[STORE_ID_LEN + 1],
                          char ret_token[STORE_TOKEN_LEN + 1], char *why, size_t why_len)
{
    char id[STORE_ID_LEN + 1];
    uint8_t token_bytes[STORE_TOKEN_LEN / 2];
    int r = make_uuid(now_ms, id, why, why_len);
    if (r >= 0) {
        r = random_bytes(token_bytes, sizeof(token_bytes), why, why_len);
    }
    if (r < 0) {
        return r;
    }
    memcpy(ret_id, id, sizeof(id));
    hex_encode(token_bytes, sizeof(token_bytes), ret_token);
    return 0;
}

/* ---- Racks and agents -------------------------------------------------- */

static int rack_id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int fleet_bump_racks(store *s, int64_t *racks, size_t n)
{
    qsort(racks, n, sizeof(*racks), rack_id_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || racks[i] != racks[i - 1]) {
            TRY(s->ops->rack_bump(s->be, racks[i]));
        }
    }
    return 0;
}

int store_racks_list(store *s, int (*cb)(const store_rack *r, void *userdata), void *userdata)
{
    s->errmsg[0] = '\0';
    return s->ops->racks_list(s->be, cb, userdata);
}

int store_agents_list(store *s, int (*cb)(const store_agent_row *a, void *userdata), void *userdata)
{
    s->errmsg[0] = '\0';
    return s->ops->agents_list(s->be, cb, userdata);
}

int fleet_agent_instance_check(store *s, unsigned instance)
{
    if (instance < 1 || instance > STORE_AGENT_INSTANCE_MAX) {
        return fleet_fail(s, -EINVAL, "invalid agent instance %u", instance);
    }
    return 0;
}

int store_rack_get(store *s, const char *rack, uint64_t *ret_generation,
                   uint64_t *ret_stored_through)
{
    int64_t id = 0;
    uint64_t gen = 0;
    s->errmsg[0] = '\0';
    TRY(fleet_found(s, s->ops->rack_find(s->be, rack, &id, &gen), "rack", rack));
    uint64_t through = 0;
    if (ret_stored_through) {
        TRY(s->ops->agent_stored_through(s->be, id, 1, &through));
        *ret_stored_through = through;
    }
    if (ret_generation) {
        *ret_generation = gen;
    }
    return 0;
}

static int agent_seen_tx(store *s, const char *rack, unsigned instance, const char *agent,
                         const char *version, uint64_t now)
{
    int64_t rack_id;
    TRY(s->ops->rack_ensure(s->be, rack, now_realtime_ms(), &rack_id));
    TRY(s->ops->agent_ensure(s->be, rack_id, instance));
    return s->ops->agent_seen_set(s->be, rack_id, instance, agent, version, now);
}

int store_agent_seen(store *s, const char *rack, unsigned instance, const char *agent,
                     const char *version, uint64_t now)
{
    s->errmsg[0] = '\0';
    TRY(fleet_agent_instance_check(s, instance));
    /* The agent's name is its certificate's: "RACK/N" beyond agent 1. */
    if (!fleet_object_name_valid(rack) || !agent || !*agent || strlen(agent) > STORE_NAME_MAX + 2 ||
        !version || strlen(version) > RBPROTO_MAX_VERSION) {
        return fleet_fail(s, -EINVAL, "invalid rack, agent name or version");
    }
    TRY(fleet_tx_begin(s));
    return fleet_tx_end(s, agent_seen_tx(s, rack, instance, agent, version, now));
}

static int agent_status_tx(store *s, const char *rack, unsigned instance,
                           const store_agent_status *status, uint64_t now)
{
    int64_t id = 0;
    uint64_t gen = 0;
    TRY(fleet_found(s, s->ops->rack_find(s->be, rack, &id, &gen), "rack", rack));
    return s->ops->agent_status_set(s->be, id, instance, status, now);
}

int store_agent_status_set(store *s, const char *rack, unsigned instance,
                           const store_agent_status *status, uint64_t now)
{
    s->errmsg[0] = '\0';
    TRY(fleet_agent_instance_check(s, instance));
    if (!fleet_object_name_valid(rack) || status->cache_bytes > INT64_MAX ||
        status->cache_limit_bytes > INT64_MAX ||
        (status->render_context && status->render_context_len == 0)) {
        return fleet_fail(s, -EINVAL, "invalid rack or agent status");
    }
    TRY(fleet_tx_begin(s));
    return fleet_tx_end(s, agent_status_tx(s, rack, instance, status, now));
}

int store_agent_render_context(store *s, const char *rack, void **ret, size_t *ret_len)
{
    int64_t id = 0;
    uint64_t gen = 0;
    s->errmsg[0] = '\0';
    TRY(fleet_found(s, s->ops->rack_find(s->be, rack, &id, &gen), "rack", rack));
    int r = s->ops->agent_render_get(s->be, id, ret, ret_len);
    if (r == 0) {
        return fleet_fail(s, -ENOENT, "rack %s: its agents never reported a render context", rack);
    }
    return r < 0 ? r : 0;
}

/* ---- Hosts ------------------------------------------------------------- */

static void format_addr(const uint8_t a[16], char buf[INET6_ADDRSTRLEN])
{
    if (!inet_ntop(AF_INET6, a, buf, INET6_ADDRSTRLEN)) {
        snprintf(buf, INET6_ADDRSTRLEN, "?");
    }
}

/* The MACs a host held and no longer lists go (their learned DUIDs with
 * them); the others stay, so their DUIDs stay. */
static int host_macs_replace(store *s, int64_t host_id, const store_host *h, bool exists)
{
    if (exists) {
        uint8_t old[STORE_MACS_MAX * 2][6];
        size_t n_old = 0;
        TRY(s->ops->host_macs(s->be, host_id, old, ARRAY_SIZE(old), &n_old));
        for (size_t i = 0; i < n_old; i++) {
            bool kept = false;
            for (size_t j = 0; j < h->n_macs && !kept; j++) {
                kept = memcmp(old[i], h->macs[j], 6) == 0;
            }
            if (!kept) {
                TRY(s->ops->mac_delete(s->be, old[i]));
            }
        }
    }
    for (size_t i = 0; i < h->n_macs; i++) {
        TRY(s->ops->mac_put(s->be, h->macs[i], host_id, (uint32_t)i));
    }
    return 0;
}

static int host_add_tx(store *s, const store_host *h, bool update)
{
    int64_t host_id = 0, old_rack = 0, rack_id;
    char owner[STORE_NAME_MAX + 1];
    int r = s->ops->host_find(s->be, h->name, &host_id, &old_rack);
    TRY(r);
    bool exists = r == 1;
    if (exists && !update) {
        return fleet_fail(s, -EEXIST, "host %s exists", h->name);
    }
    r = s->ops->host_address_owner(s->be, h->address, h->name, owner);
    if (r != 0) {
        char a[INET6_ADDRSTRLEN];
        format_addr(h->address, a);
        return r < 0 ? r : fleet_fail(s, -EEXIST, "address %s is used by host %s", a, owner);
    }
    for (size_t i = 0; i < h->n_macs; i++) {
        r = s->ops->host_mac_owner(s->be, h->macs[i], h->name, owner);
        if (r != 0) {
            char m[FORMAT_MAC_LEN];
            format_mac(h->macs[i], m);
            return r < 0 ? r : fleet_fail(s, -EEXIST, "mac %s is used by host %s", m, owner);
        }
    }
    TRY(s->ops->rack_ensure(s->be, h->rack, now_realtime_ms(), &rack_id));
    bool active = false;
    if (exists) {
        store_install_ref in;
        r = s->ops->install_active_of_host(s->be, host_id, &in);
        TRY(r);
        active = r == 1;
        if (active && rack_id != old_rack) {
            return fleet_fail(
                s, -EBUSY, "host %s has an active install: cancel it before moving racks", h->name);
        }
    }
    const char *hostname = h->hostname[0] ? h->hostname : h->name;
    TRY(s->ops->host_put(s->be, exists ? host_id : 0, rack_id, h, hostname, &host_id));
    TRY(host_macs_replace(s, host_id, h, exists));
    /* The intent carries MACs and addresses, and the rack's state every
     * BMC: a host with a BMC, or one that may have had one (an update),
     * changes what its agent holds. A host moved out of a rack leaves it. */
    if (active || h->bmc_url[0] || exists) {
        TRY(s->ops->rack_bump(s->be, rack_id));
    }
    if (exists && old_rack != rack_id) {
        TRY(s->ops->rack_bump(s->be, old_rack));
    }
    return 0;
}

int store_host_add(store *s, const store_host *h, bool update)
{
    s->errmsg[0] = '\0';
    TRY(fleet_host_validate(h, s->errmsg, sizeof(s->errmsg)));
    TRY(fleet_tx_begin(s));
    return fleet_tx_end(s, host_add_tx(s, h, update));
}

static int host_remove_tx(store *s, const char *name)
{
    int64_t host_id, rack_id;
    store_install_ref in;
    TRY(fleet_found(s, s->ops->host_find(s->be, name, &host_id, &rack_id), "host", name));
    int r = s->ops->install_active_of_host(s->be, host_id, &in);
    TRY(r);
    if (r == 1) {
        return fleet_fail(s, -EBUSY, "host %s has an active install %s: cancel it first", name,
                          in.uuid);
    }
    TRY(s->ops->host_delete(s->be, host_id));
    /* Its BMC, if it had one, leaves its agent's state. */
    return s->ops->rack_bump(s->be, rack_id);
}

int store_host_remove(store *s, const char *name)
{
    s->errmsg[0] = '\0';
    TRY(fleet_tx_begin(s));
    return fleet_tx_end(s, host_remove_tx(s, name));
}

int store_host_get(store *s, const char *name, store_host *ret)
{
    store_host h;
    s->errmsg[0] = '\0';
    TRY(fleet_found(s, s->ops->host_get(s->be, name, &h), "host", name));
    *ret = h;
    return 0;
}

int fleet_page_check(store *s, const store_page *page, store_page *ret)
{
    store_page pg = page ? *page : (store_page){ 0 };
    if (pg.n_racks > 0 && !pg.racks) {
        return fleet_fail(s, -EINVAL, "no racks");
    }
    for (size_t i = 0; i < pg.n_racks; i++) {
        if (!fleet_object_name_valid(pg.racks[i])) {
            return fleet_fail(s, -EINVAL, "invalid rack name");
        }
    }
    if (strempty(pg.after)) {
        pg.after = "";
    } else if (!fleet_object_name_valid(pg.after)) {
        return fleet_fail(s, -EINVAL, "invalid host name to page after");
    }
    *ret = pg;
    return 0;
}

int store_hosts_list(store *s, const store_page *page,
                     int (*cb)(const store_host *h, void *userdata), void *userdata)
{
    store_page pg;
    s->errmsg[0] = '\0';
    TRY(fleet_page_check(s, page, &pg));
    return s->ops->hosts_list(s->be, &pg, cb, userdata);
}

/* ---- Profiles and images ----------------------------------------------- */

static int profile_import_tx(store *s, const model_profile *p, bool update)
{
    int64_t profile_id;
    int r = s->ops->profile_find(s->be, p->name, NULL);
    TRY(r);
    bool exists = r == 1;
    if (exists && !update) {
        return fleet_fail(s, -EEXIST, "profile %s exists", p->name);
    }
    const char *kickstart = p->kickstart ? p->kickstart : "";
    uint8_t digest[32];
    TRY(sha256_buffer(kickstart, strlen(kickstart), digest));
    TRY(s->ops->profile_put(s->be, p, digest, now_realtime_ms(), &profile_id));
    TRY(s->ops->images_gc(s->be));
    if (exists) {
        /* Agents holding intents of this profile must get the new one. */
        TRY(s->ops->racks_bump_of_profile(s->be, profile_id));
    }
    return 0;
}

int store_profile_import(store *s, const model_profile *p, bool update)
{
    s->errmsg[0] = '\0';
    TRY(model_profile_check(p, s->errmsg, sizeof(s->errmsg)));
    TRY(fleet_tx_begin(s));
    return fleet_tx_end(s, profile_import_tx(s, p, update));
}

/* Loads a profile the caller found (its id comes from the same store). */
int fleet_profile_load(store *s, int64_t id, bool with_content, store_loaded_profile **ret)
{
    int r = s->ops->profile_load(s->be, id, with_content, ret);
    if (r == 0) {
        return fleet_fail(s, -ENOENT, "no profile id %" PRId64, id);
    }
    return r < 0 ? r : 0;
}

typedef struct id_list {
    int64_t *ids;
    size_t n, cap;
} id_list;

static int id_list_add(int64_t id, void *userdata)
{
    id_list *l = userdata;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? 2 * l->cap : 16;
        int64_t *n = reallocarray(l->ids, ncap, sizeof(*n));
        if (!n) {
            return -ENOMEM;
        }
        l->ids = n;
        l->cap = ncap;
    }
    l->ids[l->n++] = id;
    return 0;
}

int store_profiles_list(store *s, bool with_content,
                        int (*cb)(const model_profile *p, void *userdata), void *userdata)
{
    s->errmsg[0] = '\0';
    /* Ids first, then each profile: no listing runs under a callback. */
    id_list l = { 0 };
    int r = s->ops->profiles_list(s->be, id_list_add, &l);
    for (size_t i = 0; r >= 0 && i < l.n; i++) {
        _cleanup_(store_loaded_profile_freep) store_loaded_profile *lp = NULL;
        r = fleet_profile_load(s, l.ids[i], with_content, &lp);
        if (r >= 0) {
            r = cb(&lp->p, userdata);
        }
    }
    free(l.ids);
    return r < 0 ? r : 0;
}

int store_profile_get(store *s, const char *name, bool with_content,
                      int (*cb)(const model_profile *p, void *userdata), void *userdata)
{
    int64_t id;
    s->errmsg[0] = '\0';
    TRY(fleet_found(s, s->ops->profile_find(s->be, name, &id), "profile", name));
    _cleanup_(store_loaded_profile_freep) store_loaded_profile *lp = NULL;
    TRY(fleet_profile_load(s, id, with_content, &lp));
    return cb(&lp->p, userdata);
}

int store_images_list(store *s,
                      int (*cb)(const char *profile, const model_image *img, void *userdata),
                      void *userdata)
{
    s->errmsg[0] = '\0';
    return s->ops->images_list(s->be, cb, userdata);
}

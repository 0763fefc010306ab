/* fleet_installs: the rules over installs (see fleet.h and store.h):
 * creation and cancellation, the intents a rack's agent holds, its acks,
 * and expiry. Every state change goes through install_fsm. */
#include "fleet-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *fleet_state_name(install_state st)
{
    const char *n = install_state_to_string(st);
    RB_ASSERT(n);
    return n;
}

int fleet_install_apply(store *s, int64_t id, install_state from, install_input input,
                        Rackboot__V1__Phase phase, uint64_t now, const char *message,
                        install_state *ret_next)
{
    install_state next;
    int r = install_transition(from, input, phase, &next);
    if (r <= 0) {
        return r;
    }
    TRY(s->ops->install_set_state(s->be, id, next, now, message));
    if (ret_next) {
        *ret_next = next;
    }
    return 1;
}

static int install_create_tx(store *s, const char *host, const char *profile, bool replace,
                             uint64_t now, char id[STORE_ID_LEN + 1])
{
    int64_t host_id, rack_id, profile_id;
    store_install_ref active;
    int r;

    TRY(fleet_found(s, s->ops->host_find(s->be, host, &host_id, &rack_id), "host", host));
    TRY(fleet_found(s, s->ops->profile_find(s->be, profile, &profile_id), "profile", profile));
    uint32_t attempt = 1;
    {
        install_state last;
        uint32_t last_attempt;
        r = s->ops->install_last_of_host(s->be, host_id, &last, &last_attempt);
        TRY(r);
        /* A retry until the host installs; after a success, a new series. */
        if (r == 1 && last != INSTALL_INSTALLED) {
            attempt = last_attempt + 1;
        }
    }
    r = s->ops->install_active_of_host(s->be, host_id, &active);
    TRY(r);
    if (r == 1) {
        if (!replace) {
            return fleet_fail(s, -EBUSY, "host %s has an active install %s (%s)", host, active.uuid,
                              fleet_state_name(active.state));
        }
        TRY(fleet_install_apply(s, active.id, active.state, INSTALL_INPUT_CANCEL, 0, now,
                                "replaced by a new install", NULL));
    }
    char token[STORE_TOKEN_LEN + 1];
    TRY(fleet_install_secrets(id, token, s->errmsg, sizeof(s->errmsg)));
    /* Bump first: the install records the generation that carries it. */
    TRY(s->ops->rack_bump(s->be, rack_id));
    return s->ops->install_insert(s->be, &(store_install_new){
                                             .uuid = id,
                                             .token = token,
                                             .host_id = host_id,
                                             .profile_id = profile_id,
                                             .rack_id = rack_id,
                                             .attempt = attempt,
                                             .now = now,
                                         });
}

int store_install_create(store *s, const char *host, const char *profile, bool replace,
                         uint64_t now, char ret_id[STORE_ID_LEN + 1])
{
    char id[STORE_ID_LEN + 1];
    s->errmsg[0] = '\0';
    if (!host || !profile) {
        return fleet_fail(s, -EINVAL, "host and profile required");
    }
    TRY(fleet_tx_begin(s));
    int r = fleet_tx_end(s, install_create_tx(s, host, profile, replace, now, id));
    if (r >= 0 && ret_id) {
        memcpy(ret_id, id, sizeof(id));
    }
    return r;
}

static int install_cancel_tx(store *s, const char *host, uint64_t now, char id[STORE_ID_LEN + 1])
{
    int64_t host_id, rack_id;
    store_install_ref active;
    TRY(fleet_found(s, s->ops->host_find(s->be, host, &host_id, &rack_id), "host", host));
    int r = s->ops->install_active_of_host(s->be, host_id, &active);
    TRY(r);
    if (r == 0) {
        return fleet_fail(s, -ENOENT, "host %s has no active install", host);
    }
    memcpy(id, active.uuid, sizeof(active.uuid));
    r = fleet_install_apply(s, active.id, active.state, INSTALL_INPUT_CANCEL, 0, now, "cancelled",
                            NULL);
    TRY(r);
    RB_ASSERT(r == 1); /* an active install can always be cancelled */
    return s->ops->rack_bump(s->be, rack_id);
}

int store_install_cancel(store *s, const char *host, uint64_t now, char ret_id[STORE_ID_LEN + 1])
{
    char id[STORE_ID_LEN + 1];
    s->errmsg[0] = '\0';
    TRY(fleet_tx_begin(s));
    int r = fleet_tx_end(s, install_cancel_tx(s, host, now, id));
    if (r >= 0 && ret_id) {
        memcpy(ret_id, id, sizeof(id));
    }
    return r;
}

/* ---- Intents ----------------------------------------------------------- */

typedef struct intents_ctx {
    store *s;
    store_loaded_profile **profiles; /* loaded once per call */
    size_t n_profiles, cap;
    int (*cb)(const store_intent *in, void *userdata);
    void *userdata;
} intents_ctx;

static int intent_row(const store_intent_row *row, void *userdata)
{
    intents_ctx *c = userdata;
    store_intent in = {
        .install_id = row->uuid,
        .token = row->token,
        .attempt = row->attempt,
        .state = row->state,
        .host = row->host,
    };
    for (size_t i = 0; i < c->n_profiles && !in.profile; i++) {
        if (c->profiles[i]->id == row->profile_id) {
            in.profile = &c->profiles[i]->p;
        }
    }
    if (!in.profile) {
        if (c->n_profiles == c->cap) {
            size_t ncap = c->cap ? 2 * c->cap : 4;
            store_loaded_profile **np = reallocarray(c->profiles, ncap, sizeof(*np));
            if (!np) {
                return -ENOMEM;
            }
            c->profiles = np;
            c->cap = ncap;
        }
        TRY(fleet_profile_load(c->s, row->profile_id, true, &c->profiles[c->n_profiles]));
        in.profile = &c->profiles[c->n_profiles++]->p;
    }
    return c->cb(&in, c->userdata);
}

int store_rack_intents(store *s, const char *rack, uint64_t *ret_generation,
                       int (*cb)(const store_intent *in, void *userdata), void *userdata)
{
    int64_t rack_id;
    uint64_t generation;
    s->errmsg[0] = '\0';
    /* One read transaction: the generation and the intents are one snapshot
     * (inside a batch, the batch's transaction already is). */
    if (!s->in_batch) {
        TRY(s->ops->begin_read(s->be));
    }
    int r = fleet_found(s, s->ops->rack_find(s->be, rack, &rack_id, &generation), "rack", rack);
    intents_ctx c = { .s = s, .cb = cb, .userdata = userdata };
    if (r >= 0 && cb) {
        r = s->ops->intents_of_rack(s->be, rack_id, intent_row, &c);
    }
    for (size_t i = 0; i < c.n_profiles; i++) {
        store_loaded_profile_free(c.profiles[i]);
    }
    free(c.profiles);
    if (!s->in_batch) {
        char saved[sizeof(s->errmsg)];
        memcpy(saved, s->errmsg, sizeof(saved));
        (void)s->ops->commit(s->be);
        memcpy(s->errmsg, saved, sizeof(saved));
    }
    if (r < 0) {
        return r;
    }
    if (ret_generation) {
        *ret_generation = generation;
    }
    return 0;
}

/* ---- Acks -------------------------------------------------------------- */

static int agent_ack_tx(store *s, int64_t rack_id, uint64_t generation, uint64_t now)
{
    enum { PAGE = 512 };
    store_install_ref rows[PAGE];
    int dispatched = 0;

    TRY(s->ops->agent_ensure(s->be, rack_id));
    TRY(s->ops->agent_acked_set(s->be, rack_id, generation, now));
    /* Read a page, then write it: a dispatched install leaves the query's
     * result, so repeating until a page comes back short visits each once. */
    for (;;) {
        size_t n = 0;
        TRY(s->ops->installs_requested(s->be, rack_id, generation, rows, PAGE, &n));
        for (size_t i = 0; i < n; i++) {
            int r = fleet_install_apply(s, rows[i].id, rows[i].state, INSTALL_INPUT_ACK, 0, now,
                                        NULL, NULL);
            TRY(r);
            RB_ASSERT(r == 1); /* the query selects requested installs only */
            dispatched++;
        }
        if (n < PAGE) {
            return dispatched;
        }
    }
}

int store_agent_ack(store *s, const char *rack, uint64_t generation, uint64_t now)
{
    int64_t rack_id;
    uint64_t current;
    s->errmsg[0] = '\0';
    TRY(fleet_tx_begin(s));
    int r = fleet_found(s, s->ops->rack_find(s->be, rack, &rack_id, &current), "rack", rack);
    if (r >= 0 && generation > current) {
        r = fleet_fail(s, -EINVAL,
                       "rack %s: ack of generation %" PRIu64 " above the current %" PRIu64, rack,
                       generation, current);
    }
    if (r >= 0) {
        r = agent_ack_tx(s, rack_id, generation, now);
    }
    return fleet_tx_end(s, r);
}

/* ---- Expiry ------------------------------------------------------------ */

static int expire_tx(store *s, uint64_t now, const install_timeouts *cfg)
{
    enum { PAGE = 512 };
    store_install_due *rows = calloc(PAGE, sizeof(*rows));
    int expired = 0, r = 0;
    if (!rows) {
        return -ENOMEM;
    }
    bool more = true;
    while (more && r >= 0) {
        size_t n = 0;
        r = s->ops->installs_due(s->be, now, cfg, rows, PAGE, &n);
        if (r < 0) {
            break;
        }
        more = n == PAGE;
        size_t moved = 0;
        for (size_t i = 0; i < n && r >= 0; i++) {
            uint64_t deadline;
            r = install_deadline(rows[i].state, &rows[i].t, cfg, &deadline);
            if (r < 0) {
                r = fleet_fail(s, -EIO, "install %" PRId64 ": %s without its start time",
                               rows[i].id, fleet_state_name(rows[i].state));
                break;
            }
            if (r == 0 || deadline > now) {
                r = 0;
                continue;
            }
            r = fleet_install_apply(s, rows[i].id, rows[i].state, INSTALL_INPUT_TIMEOUT, 0, now,
                                    "timed out", NULL);
            if (r == 1) {
                r = s->ops->rack_bump(s->be, rows[i].rack_id);
                expired++;
                moved++;
            }
        }
        /* Rows the backend's filter chose but the FSM kept would come back
         * on every page: stop when a full page moved nothing. */
        if (moved == 0) {
            more = false;
        }
    }
    free(rows);
    return r < 0 ? r : expired;
}

int store_expire(store *s, uint64_t now, const install_timeouts *cfg)
{
    s->errmsg[0] = '\0';
    if (!cfg) {
        return fleet_fail(s, -EINVAL, "no timeouts");
    }
    TRY(fleet_tx_begin(s));
    return fleet_tx_end(s, expire_tx(s, now, cfg));
}

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

/* ---- Installing and cancelling, one host or many ----------------------
 *
 * A fleet-wide install touches every host once: per host a few indexed
 * reads, then its writes. Checks come before any write, so a host that
 * fails changes nothing and needs no savepoint of its own (a savepoint per
 * host makes SQLite journal every page a host's writes touch: most of the
 * time of a 100,000-host install went there); once a host's writes begin,
 * only the store itself can fail, and that fails the whole batch. Each rack
 * touched is bumped once, however many of its hosts are. */

/* What the checks decided for one host. */
typedef struct host_plan {
    int64_t host_id, rack_id;
    store_install_ref active; /* id 0: none */
    uint32_t attempt;         /* of the new install */
} host_plan;

/* The checks of one host's install: -ENOENT (no such host), -EBUSY (an
 * active install and not `replace`), 0 (plan filled), or a store error. */
static int install_plan(store *s, const char *host, bool replace, host_plan *p)
{
    int r = s->ops->host_find(s->be, host, &p->host_id, &p->rack_id);
    if (r <= 0) {
        return r < 0 ? r : -ENOENT;
    }
    install_state last;
    uint32_t last_attempt;
    r = s->ops->install_last_of_host(s->be, p->host_id, &last, &last_attempt);
    TRY(r);
    /* A retry until the host installs; after a success, a new series. */
    p->attempt = r == 1 && last != INSTALL_INSTALLED ? last_attempt + 1 : 1;
    r = s->ops->install_active_of_host(s->be, p->host_id, &p->active);
    TRY(r);
    if (r == 0) {
        p->active.id = 0;
    } else if (!replace) {
        return -EBUSY;
    }
    return 0;
}

/* Hosts read ahead at once: well within what a backend keeps for a
 * transaction (store/rowcache.c keeps 1,024 rows of each kind). */
#define READ_AHEAD_HOSTS 256

/* Before host i of hosts[0..n): reads ahead, every READ_AHEAD_HOSTS hosts,
 * what install_plan() and cancel_many() look up of each (store/backend.h):
 * for an install, a statement for 256 hosts instead of three per host (a
 * cancel writes as it goes, and each write makes the hosts' installs
 * read again: it gains the host lookups only). */
static int hosts_read_ahead(store *s, const char *const *hosts, size_t n, size_t i)
{
    if (!s->ops->lookups_prime || n < 2 || i % READ_AHEAD_HOSTS != 0) {
        return 0;
    }
    size_t k = n - i < READ_AHEAD_HOSTS ? n - i : READ_AHEAD_HOSTS;
    return s->ops->lookups_prime(
        s->be, &(store_lookahead){ .hosts = hosts + i, .n_hosts = k, .host_installs = true });
}

/* Cancels the plan's active install, if any. */
static int cancel_active(store *s, const host_plan *p, uint64_t now, const char *message)
{
    if (p->active.id == 0) {
        return 0;
    }
    int r = fleet_install_apply(s, p->active.id, p->active.state, INSTALL_INPUT_CANCEL, 0, now,
                                message, NULL);
    TRY(r);
    RB_ASSERT(r == 1); /* an active install can always be cancelled */
    return 0;
}

/* store_installs_create() in the transaction the caller opened. */
static int create_many(store *s, const char *const *hosts, size_t n, const char *profile,
                       bool replace, uint64_t now, store_host_outcome *out)
{
    int64_t profile_id;
    TRY(fleet_found(s, s->ops->profile_find(s->be, profile, &profile_id), "profile", profile));
    host_plan *plans = calloc(n ? n : 1, sizeof(*plans));
    int64_t *racks = calloc(n ? n : 1, sizeof(*racks));
    size_t n_racks = 0, done = 0;
    int r = plans && racks ? 0 : -ENOMEM;
    for (size_t i = 0; r >= 0 && i < n; i++) {
        out[i] = (store_host_outcome){ 0 };
        if ((r = hosts_read_ahead(s, hosts, n, i)) < 0) {
            break;
        }
        out[i].result = install_plan(s, hosts[i], replace, &plans[i]);
        if (out[i].result == -ENOENT || out[i].result == -EBUSY) {
            if (out[i].result == -EBUSY) {
                memcpy(out[i].id, plans[i].active.uuid, sizeof(out[i].id));
                out[i].active_state = plans[i].active.state;
            }
            continue;
        }
        r = out[i].result;
        if (r >= 0) {
            racks[n_racks++] = plans[i].rack_id;
        }
    }
    /* Bump first: each install records the generation that carries it. */
    if (r >= 0) {
        r = fleet_bump_racks(s, racks, n_racks);
    }
    for (size_t i = 0; r >= 0 && i < n; i++) {
        if (out[i].result < 0) {
            continue;
        }
        const host_plan *p = &plans[i];
        char token[STORE_TOKEN_LEN + 1];
        r = cancel_active(s, p, now, "replaced by a new install");
        if (r >= 0) {
            r = fleet_install_secrets(now, out[i].id, token, s->errmsg, sizeof(s->errmsg));
        }
        if (r >= 0) {
            r = s->ops->install_insert(s->be, &(store_install_new){
                                                  .uuid = out[i].id,
                                                  .token = token,
                                                  .host_id = p->host_id,
                                                  .profile_id = profile_id,
                                                  .rack_id = p->rack_id,
                                                  .attempt = p->attempt,
                                                  .now = now,
                                              });
        }
        done += r >= 0;
    }
    free(plans);
    free(racks);
    return r < 0 ? r : (int)done;
}

/* store_installs_cancel() in the transaction the caller opened. */
static int cancel_many(store *s, const char *const *hosts, size_t n, uint64_t now,
                       store_host_outcome *out)
{
    int64_t *racks = calloc(n ? n : 1, sizeof(*racks));
    size_t n_racks = 0, done = 0;
    int r = racks ? 0 : -ENOMEM;
    for (size_t i = 0; r >= 0 && i < n; i++) {
        host_plan p = { 0 };
        out[i] = (store_host_outcome){ 0 };
        if ((r = hosts_read_ahead(s, hosts, n, i)) < 0) {
            break;
        }
        r = s->ops->host_find(s->be, hosts[i], &p.host_id, &p.rack_id);
        if (r == 0) {
            out[i].result = -ENOENT;
            continue;
        }
        if (r > 0) {
            r = s->ops->install_active_of_host(s->be, p.host_id, &p.active);
        }
        if (r == 0) {
            out[i].result = -ENODATA; /* no active install */
            continue;
        }
        if (r > 0) {
            memcpy(out[i].id, p.active.uuid, sizeof(out[i].id));
            r = cancel_active(s, &p, now, "cancelled");
        }
        if (r >= 0) {
            racks[n_racks++] = p.rack_id;
            done++;
        }
    }
    if (r >= 0) {
        r = fleet_bump_racks(s, racks, n_racks);
    }
    free(racks);
    return r < 0 ? r : (int)done;
}

int store_installs_create(store *s, const char *const *hosts, size_t n, const char *profile,
                          bool replace, uint64_t now, store_host_outcome *out)
{
    RB_ASSERT(s->in_batch);
    s->errmsg[0] = '\0';
    return create_many(s, hosts, n, profile, replace, now, out);
}

int store_installs_cancel(store *s, const char *const *hosts, size_t n, uint64_t now,
                          store_host_outcome *out)
{
    RB_ASSERT(s->in_batch);
    s->errmsg[0] = '\0';
    return cancel_many(s, hosts, n, now, out);
}

/* One host: the batch of one in a transaction (or, in a batch, a
 * savepoint) of its own, errmsg saying why it failed. `profile` NULL:
 * cancel. */
static int one_host(store *s, const char *host, const char *profile, bool replace, uint64_t now,
                    char ret_id[STORE_ID_LEN + 1])
{
    s->errmsg[0] = '\0';
    if (!host) {
        return fleet_fail(s, -EINVAL, "host required");
    }
    TRY(fleet_tx_begin(s));
    store_host_outcome out;
    int r = profile ? create_many(s, &host, 1, profile, replace, now, &out)
                    : cancel_many(s, &host, 1, now, &out);
    if (r >= 0 && out.result == -EBUSY) {
        r = fleet_fail(s, -EBUSY, "host %s has an active install %s (%s)", host, out.id,
                       fleet_state_name(out.active_state));
    } else if (r >= 0 && out.result == -ENODATA) {
        r = fleet_fail(s, -ENOENT, "host %s has no active install", host);
    } else if (r >= 0 && out.result < 0) {
        r = fleet_found(s, 0, "host", host); /* -ENOENT, the only other */
    } else if (r > 0) {
        r = 0; /* the one host done */
    }
    r = fleet_tx_end(s, r);
    if (r >= 0 && ret_id) {
        memcpy(ret_id, out.id, sizeof(out.id));
    }
    return r;
}

int store_install_create(store *s, const char *host, const char *profile, bool replace,
                         uint64_t now, char ret_id[STORE_ID_LEN + 1])
{
    if (!profile) {
        s->errmsg[0] = '\0';
        return fleet_fail(s, -EINVAL, "host and profile required");
    }
    return one_host(s, host, profile, replace, now, ret_id);
}

int store_install_cancel(store *s, const char *host, uint64_t now, char ret_id[STORE_ID_LEN + 1])
{
    return one_host(s, host, NULL, false, now, ret_id);
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

static int agent_ack_tx(store *s, int64_t rack_id, unsigned instance, uint64_t generation,
                        uint64_t now)
{
    TRY(s->ops->agent_ensure(s->be, rack_id, instance));
    TRY(s->ops->agent_acked_set(s->be, rack_id, instance, generation, now));
    /* Every requested install the ack covers takes the same transition:
     * install_fsm decides it once, the store applies it to all of them in
     * one statement (not one per install: 100 per rack, 100,000 per fleet). */
    install_state next;
    int r = install_transition(INSTALL_REQUESTED, INSTALL_INPUT_ACK, 0, &next);
    RB_ASSERT(r == 1);
    return s->ops->installs_requested_set_state(s->be, rack_id, generation, next, now);
}

int store_agent_ack(store *s, const char *rack, unsigned instance, uint64_t generation,
                    uint64_t now)
{
    int64_t rack_id;
    uint64_t current;
    s->errmsg[0] = '\0';
    TRY(fleet_agent_instance_check(s, instance));
    TRY(fleet_tx_begin(s));
    int r = fleet_found(s, s->ops->rack_find(s->be, rack, &rack_id, &current), "rack", rack);
    if (r >= 0 && generation > current) {
        r = fleet_fail(s, -EINVAL,
                       "rack %s: ack of generation %" PRIu64 " above the current %" PRIu64, rack,
                       generation, current);
    }
    if (r >= 0) {
        r = agent_ack_tx(s, rack_id, instance, generation, now);
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

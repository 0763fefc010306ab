#include "api.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "hashmap.h"
#include "log.h"
#include "model/template.h"
#include "model_pb.h"
#include "rbproto.h"
#include "rbuf.h"
#include "store/queue.h"
#include "timeutil.h"
#include "util.h"
#include "version.h"
#include "wire.h"

#define PARK_TICK_MS        100
#define EVENTS_DEFAULT_ROWS 1000u
/* An audit page's rows stop at this many bytes (a row names up to 1,000
 * hosts: ~65 KB), well under RBPROTO_MAX_MESSAGE; AuditList.more says so. */
#define AUDIT_PAGE_BYTES (4u << 20)
/* Who may use the local socket besides root (its owner). */
#define API_GROUP "rackboot"

/* The verb label of rackboot_api_requests_total: one per request kind
 * (request_kinds below names each kind's), the identity handshake, and
 * whatever could not be read as a known request. */
#define API_VERB_AUTH    15u
#define API_VERB_UNKNOWN 16u
#define API_VERBS        17u
/* Its result label: how the answer's status reads to whoever watches the
 * API (deploy/METRICS.md). */
typedef enum api_result {
    API_RESULT_OK,
    API_RESULT_REFUSED, /* UNAUTHORIZED: no proven identity, or a viewer writing */
    API_RESULT_INVALID, /* INVALID, NOT_FOUND, CONFLICT: the request does not fit the fleet */
    API_RESULT_ERROR,   /* FAILED, UNAVAILABLE: the controller (or some hosts) failed it */
    API_RESULTS,
} api_result;
static const char *const api_result_names[API_RESULTS] = { "ok", "refused", "invalid", "error" };

typedef struct endpoint {
    api *api;
    rpc_server *rpc;
    auth *auth; /* NULL: no handshake (ipc://) */
} endpoint;

typedef struct parked parked;
typedef struct api_job api_job;

struct api {
    store_queue *queue;              /* every request's store work runs there, but reads: */
    store_queue *const *read_queues; /* api_config's */
    size_t n_read_queues;
    size_t jobs;      /* work submitted whose `done` has not run yet */
    api_job *running; /* requests taken and not yet answered */
    uint64_t pokes;   /* api_poke() calls so far */
    hub *hub;
    endpoint local;
    endpoint operators;
    parked *parked;
    uv_timer_t tick;
    bool tick_open;
    log_ratelimit bad_rl;
    int (*web_login)(void *, const char *, bool, char **, uint64_t *); /* api_config */
    void *web_userdata;
    void (*on_installs_changed)(void *); /* api_config */
    void *installs_userdata;
    /* Requests answered, by verb (api_verbs) and result: the
     * rackboot_api_requests_total series (api_register_metrics()). */
    uint64_t answered[API_VERBS][API_RESULTS];
};

/* Who sent a request: what the audit log says, and what they may do. */
typedef struct caller {
    const char *role;  /* "operator", "viewer", "local" */
    bool unrestricted; /* every request; else only a viewer's (request_kinds) */
    char who[STORE_AUDIT_WHO_MAX + 1];
} caller;

/* A write's audit row in the making: who asked what, and when. */
typedef struct audit_ctx {
    const caller *who;
    const char *verb;
    const Rackboot__V1__ApiRequest *req;
    uint64_t when;
} audit_ctx;

/* One reply under construction. */
typedef struct reply_ctx {
    wire_arena *a;
    Rackboot__V1__ApiReply rep;
    /* install / cancel: the hosts the selector resolved to, and why those
     * that failed did ("web1: has an active install; ..."), for the audit */
    char **hosts;
    size_t n_hosts;
    char *why;
    /* A write: its row, committed with the write by batch_commit() (then
     * `audited`), else appended on its own by the job's store work once
     * the request ran (refused, failed, undone). */
    const audit_ctx *audit;
    bool audited;
    /* A page of hosts (HostsListRequest.limit): rows past it are not
     * added but say that more follow (0: no page). */
    uint32_t page_rows;
    /* What the loop does once the store work ran (request_after()). */
    bool wrote;       /* agents may hold something it changed: poke them */
    const char *verb; /* install / cancel: set once the hosts were tried and committed */
    size_t failed;
    char **host_why;               /* per host: why it was skipped, or NULL */
    Rackboot__V1__Skip *host_skip; /* per host: SKIP_NONE when done */
    /* install / cancel run slice by slice (per_host_slice()): the slice
     * to run next starts at `next`; the one being committed and audited
     * is [slice_from, slice_to). `stopped` once the store failed. */
    const struct per_host_op *op;
    const char *op_verb;
    size_t next, slice_from, slice_to;
    bool stopped;
} reply_ctx;

/* An events long poll waiting for rows (max_wait_ms). Its re-checks run
 * on the store queue, one at a time (poll_check()): while `checking`, the
 * check's work reads the query (host ... limit) and fills `rc`, and the
 * loop touches only the links and the flags. */
struct parked {
    api *api;
    rpc_call *call;
    endpoint *ep;
    uint32_t pipe;
    char host[STORE_NAME_MAX + 1]; /* "" every host */
    uint64_t after_seq;
    uint32_t limit;
    uint64_t deadline_ms;
    reply_ctx rc; /* the check's reply */
    int found;    /* the rows the check found, or < 0 */
    bool checking;
    bool again; /* poked while checking: check once more when it lands */
    bool gone;  /* its connection closed while checking: the check frees it */
    struct parked *prev, *next;
};

static int batch_commit(store *st, reply_ctx *rc);

/* ---- Replies ----------------------------------------------------------- */

static void send_reply(rpc_call *call, Rackboot__V1__ApiReply *rep)
{
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len = 0;
    int r = rbproto_pack(&rep->base, RBPROTO_MAX_MESSAGE, &buf, &len);
    if (r < 0) {
        log_error("api: cannot pack a reply: %s", errstr(r));
        Rackboot__V1__ApiReply err = RACKBOOT__V1__API_REPLY__INIT;
        err.status = RACKBOOT__V1__STATUS__STATUS_FAILED;
        err.message = RB_UNCONST(r == -E2BIG ? "the answer is too large" : "internal error");
        free(buf);
        buf = NULL;
        if (rbproto_pack(&err.base, RBPROTO_MAX_MESSAGE, &buf, &len) < 0) {
            rpc_call_drop(call);
            return;
        }
    }
    rpc_call_reply(call, buf, len);
}

static void set_status(reply_ctx *rc, Rackboot__V1__Status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_status(reply_ctx *rc, Rackboot__V1__Status status, const char *fmt, ...)
{
    char buf[RBPROTO_MAX_LINE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    rc->rep.status = status;
    rc->rep.message = wire_strdup(rc->a, buf);
}

/* A store error as the operator should see it. */
static Rackboot__V1__Status status_of(int r)
{
    switch (r) {
    case -ENOENT:
        return RACKBOOT__V1__STATUS__STATUS_NOT_FOUND;
    case -EEXIST:
    case -EBUSY:
        return RACKBOOT__V1__STATUS__STATUS_CONFLICT;
    case -EINVAL:
        return RACKBOOT__V1__STATUS__STATUS_INVALID;
    default:
        return RACKBOOT__V1__STATUS__STATUS_FAILED;
    }
}

/* `st`: the connection that failed (the loop's, or the work queue's). */
static void store_failed(store *st, reply_ctx *rc, int r, const char *what)
{
    const char *why = store_errmsg(st);
    set_status(rc, status_of(r), "%s%s%s", what, *why ? ": " : "", *why ? why : errstr(r));
    if (status_of(r) == RACKBOOT__V1__STATUS__STATUS_FAILED) {
        log_error("api: %s: %s (%s)", what, errstr(r), why);
    }
}

/* ---- Hosts ------------------------------------------------------------- */

/* A page's store query asks for one row more than the page holds: that
 * row, if it comes, only says that more follow (no empty last page to
 * ask for). */
static uint32_t page_query_rows(uint32_t limit)
{
    return limit ? limit + 1 : 0;
}

static int add_host_row(const store_host *h, void *userdata)
{
    reply_ctx *rc = userdata;
    Rackboot__V1__HostList *l = rc->rep.hosts;
    if (rc->page_rows && l->n_hosts >= rc->page_rows) {
        l->more = true;
        return 0;
    }
    wire_append(rc->a, l->n_hosts, l->hosts, wire_host(rc->a, h));
    return wire_arena_failed(rc->a) ? -ENOMEM : 0;
}

static void body_hosts(reply_ctx *rc)
{
    rc->rep.body_case = RACKBOOT__V1__API_REPLY__BODY_HOSTS;
    rc->rep.hosts = wire_alloc(rc->a, sizeof(*rc->rep.hosts));
    if (rc->rep.hosts) {
        rackboot__v1__host_list__init(rc->rep.hosts);
    }
}

static void do_hosts_add(store *st, const Rackboot__V1__HostsAddRequest *req, reply_ctx *rc)
{
    int r = store_batch_begin(st);
    if (r < 0) {
        store_failed(st, rc, r, "cannot start a transaction");
        return;
    }
    for (size_t i = 0; i < req->n_hosts && r >= 0; i++) {
        store_host h;
        const char *why = NULL;
        r = wire_to_store_host(req->hosts[i], &h, &why);
        if (r < 0) {
            set_status(rc, RACKBOOT__V1__STATUS__STATUS_INVALID, "host %s: %s", req->hosts[i]->name,
                       why);
            break;
        }
        r = store_host_add(st, &h, req->update_existing);
        if (r < 0) {
            char what[128];
            snprintf(what, sizeof(what), "host %s", h.name);
            store_failed(st, rc, r, what);
        }
    }
    int c = r >= 0 ? batch_commit(st, rc) : store_batch_end(st, false);
    if (r >= 0 && c < 0) {
        store_failed(st, rc, c, "cannot commit");
        return;
    }
    if (r < 0) {
        return;
    }
    body_hosts(rc);
    for (size_t i = 0; i < req->n_hosts; i++) {
        store_host h;
        if (store_host_get(st, req->hosts[i]->name, &h) >= 0) {
            add_host_row(&h, rc);
        }
    }
    log_info("api: hosts added=%zu update=%s", req->n_hosts, req->update_existing ? "yes" : "no");
    rc->wrote = true; /* a host's MACs or address may be in an agent's intents */
}

static void do_hosts_list(store *st, const Rackboot__V1__HostsListRequest *req, reply_ctx *rc)
{
    body_hosts(rc);
    if (req->n_names == 0) {
        const char *rack = req->rack;
        store_page page = {
            .racks = &rack,
            .n_racks = *rack ? 1 : 0,
            .after = req->after,
            .limit = page_query_rows(req->limit),
        };
        rc->page_rows = req->limit;
        int r = store_hosts_list(st, &page, add_host_row, rc);
        if (r < 0) {
            store_failed(st, rc, r, "cannot list hosts");
        }
        return;
    }
    for (size_t i = 0; i < req->n_names; i++) {
        store_host h;
        int r = store_host_get(st, req->names[i], &h);
        if (r < 0) {
            char what[128];
            snprintf(what, sizeof(what), "host %s", req->names[i]);
            store_failed(st, rc, r, what);
            return;
        }
        add_host_row(&h, rc);
    }
}

static void do_hosts_remove(store *st, const Rackboot__V1__HostsRemoveRequest *req, reply_ctx *rc)
{
    int r = store_batch_begin(st);
    if (r < 0) {
        store_failed(st, rc, r, "cannot start a transaction");
        return;
    }
    for (size_t i = 0; i < req->n_names && r >= 0; i++) {
        r = store_host_remove(st, req->names[i]);
        if (r < 0) {
            char what[128];
            snprintf(what, sizeof(what), "host %s", req->names[i]);
            store_failed(st, rc, r, what);
        }
    }
    int c = r >= 0 ? batch_commit(st, rc) : store_batch_end(st, false);
    if (r >= 0 && c < 0) {
        store_failed(st, rc, c, "cannot commit");
    } else if (r >= 0) {
        log_info("api: hosts removed=%zu", req->n_names);
    }
}

/* ---- Racks, profiles, images -------------------------------------------- */

static int add_rack_row(const store_rack *r, void *userdata)
{
    reply_ctx *rc = userdata;
    Rackboot__V1__RackRow *m = wire_alloc(rc->a, sizeof(*m));
    if (!m) {
        return -ENOMEM;
    }
    rackboot__v1__rack_row__init(m);
    m->rack = wire_strdup(rc->a, r->name);
    m->agent = wire_strdup(rc->a, r->agent);
    m->agent_version = wire_strdup(rc->a, r->agent_version);
    m->last_seen_unix_ms = r->last_seen_ms;
    m->generation = r->generation;
    m->acked_generation = r->acked_generation;
    m->hosts = r->hosts;
    m->active_installs = r->active_installs;
    m->cache_bytes = r->cache_bytes;
    m->cache_limit_bytes = r->cache_limit_bytes;
    m->status_unix_ms = r->status_ms;
    wire_append(rc->a, rc->rep.racks->n_racks, rc->rep.racks->racks, m);
    return wire_arena_failed(rc->a) ? -ENOMEM : 0;
}

/* Adds an agent to its rack's row. Both listings are in rack name order:
 * the rack is at or after the one the previous agent went to. */
typedef struct agents_ctx {
    reply_ctx *rc;
    size_t rack; /* index into the reply's racks */
} agents_ctx;

static int add_agent_row(const store_agent_row *a, void *userdata)
{
    agents_ctx *c = userdata;
    Rackboot__V1__RackList *l = c->rc->rep.racks;
    while (c->rack < l->n_racks && strcmp(l->racks[c->rack]->rack, a->rack) < 0) {
        c->rack++;
    }
    if (c->rack == l->n_racks || !streq(l->racks[c->rack]->rack, a->rack)) {
        return 0; /* its rack was made after the racks were listed */
    }
    Rackboot__V1__RackRow *rack = l->racks[c->rack];
    Rackboot__V1__AgentRow *m = wire_alloc(c->rc->a, sizeof(*m));
    if (!m) {
        return -ENOMEM;
    }
    rackboot__v1__agent_row__init(m);
    m->instance = a->instance;
    m->agent = wire_strdup(c->rc->a, a->agent);
    m->agent_version = wire_strdup(c->rc->a, a->version);
    m->last_seen_unix_ms = a->last_seen_ms;
    /* acked after the racks were read: not above the generation listed */
    m->acked_generation =
        a->acked_generation < rack->generation ? a->acked_generation : rack->generation;
    m->cache_bytes = a->cache_bytes;
    m->cache_limit_bytes = a->cache_limit_bytes;
    m->status_unix_ms = a->status_ms;
    wire_append(c->rc->a, rack->n_agents, rack->agents, m);
    return wire_arena_failed(c->rc->a) ? -ENOMEM : 0;
}

static void do_racks_list(store *st, reply_ctx *rc)
{
    rc->rep.body_case = RACKBOOT__V1__API_REPLY__BODY_RACKS;
    rc->rep.racks = wire_alloc(rc->a, sizeof(*rc->rep.racks));
    if (!rc->rep.racks) {
        return;
    }
    rackboot__v1__rack_list__init(rc->rep.racks);
    int r = store_racks_list(st, add_rack_row, rc);
    if (r >= 0) {
        agents_ctx c = { .rc = rc };
        r = store_agents_list(st, add_agent_row, &c);
    }
    if (r < 0) {
        store_failed(st, rc, r, "cannot list racks");
    }
}

static int add_profile_row(const model_profile *p, void *userdata)
{
    reply_ctx *rc = userdata;
    Rackboot__V1__ProfileList *l = rc->rep.profiles;
    wire_append(rc->a, l->n_profiles, l->profiles, wire_profile(rc->a, p));
    return wire_arena_failed(rc->a) ? -ENOMEM : 0;
}

static void body_profiles(reply_ctx *rc)
{
    rc->rep.body_case = RACKBOOT__V1__API_REPLY__BODY_PROFILES;
    rc->rep.profiles = wire_alloc(rc->a, sizeof(*rc->rep.profiles));
    if (rc->rep.profiles) {
        rackboot__v1__profile_list__init(rc->rep.profiles);
    }
}

static void do_profiles_import(store *st, const Rackboot__V1__ProfilesImportRequest *req,
                               reply_ctx *rc)
{
    int r = store_batch_begin(st);
    if (r < 0) {
        store_failed(st, rc, r, "cannot start a transaction");
        return;
    }
    for (size_t i = 0; i < req->n_profiles && r >= 0; i++) {
        const char *ks = req->profiles[i]->kickstart_template;
        const char *ud = req->profiles[i]->user_data_template;
        template_error terr;
        if (ks && template_check(ks, strlen(ks), &terr) < 0) {
            set_status(rc, RACKBOOT__V1__STATUS__STATUS_INVALID, "profile %s: kickstart %s",
                       req->profiles[i]->name, terr.message);
            r = -EINVAL;
            break;
        }
        if (ud && template_check(ud, strlen(ud), &terr) < 0) {
            set_status(rc, RACKBOOT__V1__STATUS__STATUS_INVALID, "profile %s: user_data %s",
                       req->profiles[i]->name, terr.message);
            r = -EINVAL;
            break;
        }
        model_profile p;
        r = model_profile_from_pb(req->profiles[i], &p);
        if (r >= 0) {
            r = store_profile_import(st, &p, req->update_existing);
            model_profile_clear(&p);
        }
        if (r < 0) {
            char what[128];
            snprintf(what, sizeof(what), "profile %s", req->profiles[i]->name);
            store_failed(st, rc, r, what);
        }
    }
    int c = r >= 0 ? batch_commit(st, rc) : store_batch_end(st, false);
    if (r >= 0 && c < 0) {
        store_failed(st, rc, c, "cannot commit");
        return;
    }
    if (r < 0) {
        return;
    }
    body_profiles(rc);
    for (size_t i = 0; i < req->n_profiles; i++) {
        store_profile_get(st, req->profiles[i]->name, false, add_profile_row, rc);
    }
    log_info("api: profiles imported=%zu", req->n_profiles);
    rc->wrote = true; /* an agent may serve the profile */
}

static void do_profiles_list(store *st, const Rackboot__V1__ProfilesListRequest *req, reply_ctx *rc)
{
    body_profiles(rc);
    if (req->n_names == 0) {
        int r = store_profiles_list(st, req->with_content, add_profile_row, rc);
        if (r < 0) {
            store_failed(st, rc, r, "cannot list profiles");
        }
        return;
    }
    for (size_t i = 0; i < req->n_names; i++) {
        int r = store_profile_get(st, req->names[i], req->with_content, add_profile_row, rc);
        if (r < 0) {
            char what[128];
            snprintf(what, sizeof(what), "profile %s", req->names[i]);
            store_failed(st, rc, r, what);
            return;
        }
    }
}

static int add_image_row(const char *profile, const model_image *img, void *userdata)
{
    reply_ctx *rc = userdata;
    Rackboot__V1__ImageRow *row = wire_alloc(rc->a, sizeof(*row));
    Rackboot__V1__Image *im = wire_alloc(rc->a, sizeof(*im));
    uint8_t *sha = wire_alloc(rc->a, 32);
    if (!row || !im || !sha) {
        return -ENOMEM;
    }
    rackboot__v1__image_row__init(row);
    rackboot__v1__image__init(im);
    row->profile = wire_strdup(rc->a, profile);
    im->name = wire_strdup(rc->a, img->name);
    im->kind = model_image_kind_to_pb(img->kind);
    im->url = wire_strdup(rc->a, img->url);
    memcpy(sha, img->sha256, 32);
    im->sha256.data = sha;
    im->sha256.len = 32;
    im->size = img->size;
    row->image = im;
    wire_append(rc->a, rc->rep.images->n_images, rc->rep.images->images, row);
    return wire_arena_failed(rc->a) ? -ENOMEM : 0;
}

static void do_images_list(store *st, reply_ctx *rc)
{
    rc->rep.body_case = RACKBOOT__V1__API_REPLY__BODY_IMAGES;
    rc->rep.images = wire_alloc(rc->a, sizeof(*rc->rep.images));
    if (!rc->rep.images) {
        return;
    }
    rackboot__v1__image_list__init(rc->rep.images);
    int r = store_images_list(st, add_image_row, rc);
    if (r < 0) {
        store_failed(st, rc, r, "cannot list images");
    }
}

/* ---- Installs and status ----------------------------------------------- */

typedef struct name_list {
    wire_arena *a;
    char **names;
    size_t n;
    hashmap *racks_unseen; /* the selector's racks no host was listed of yet */
} name_list;

static int collect_host(const store_host *h, void *userdata)
{
    name_list *l = userdata;
    wire_append(l->a, l->n, l->names, wire_strdup(l->a, h->name));
    if (l->racks_unseen) {
        hashmap_remove(l->racks_unseen, h->rack, strlen(h->rack));
    }
    return wire_arena_failed(l->a) ? -ENOMEM : 0;
}

/* The hosts of the selector's racks, in one listing (a query per page, not
 * per rack: 2,000 racks took 0.85 s one by one); -ENOENT with the reply's
 * status set when a rack has none. */
static int resolve_racks(store *st, const Rackboot__V1__Selector *sel, reply_ctx *rc, name_list *l)
{
    int r = hashmap_new(sel->n_racks, &l->racks_unseen);
    for (size_t i = 0; r >= 0 && i < sel->n_racks; i++) {
        r = hashmap_put(l->racks_unseen, sel->racks[i], strlen(sel->racks[i]), sel->racks[i]);
    }
    store_page page = { .racks = (const char *const *)sel->racks, .n_racks = sel->n_racks };
    if (r >= 0) {
        r = store_hosts_list(st, &page, collect_host, l);
    }
    for (size_t i = 0; r >= 0 && i < sel->n_racks; i++) {
        if (hashmap_get(l->racks_unseen, sel->racks[i], strlen(sel->racks[i]))) {
            set_status(rc, RACKBOOT__V1__STATUS__STATUS_NOT_FOUND, "rack %s has no hosts",
                       sel->racks[i]);
            r = -ENOENT;
        }
    }
    l->racks_unseen = hashmap_free(l->racks_unseen);
    return r;
}

/* Keeps the first of each name, in order. */
static int drop_repeats(name_list *l)
{
    hashmap *seen = NULL;
    int r = hashmap_new(l->n, &seen);
    size_t kept = 0;
    for (size_t i = 0; r >= 0 && i < l->n; i++) {
        const char *name = l->names[i];
        if (!hashmap_get(seen, name, strlen(name))) {
            r = hashmap_put(seen, name, strlen(name), l->names[i]);
            l->names[kept++] = l->names[i];
        }
    }
    hashmap_free(seen);
    if (r >= 0) {
        l->n = kept;
    }
    return r;
}

/* The hosts a selector names, each once: every named host must exist,
 * every named rack must have hosts. */
static int resolve(store *st, const Rackboot__V1__Selector *sel, reply_ctx *rc, name_list *ret)
{
    name_list l = { .a = rc->a };
    int r = 0;
    if (sel->all) {
        r = store_hosts_list(st, NULL, collect_host, &l);
    }
    if (r >= 0 && sel->n_racks > 0) {
        r = resolve_racks(st, sel, rc, &l);
        if (r == -ENOENT) {
            return r;
        }
    }
    for (size_t i = 0; r >= 0 && i < sel->n_hosts; i++) {
        store_host h;
        r = store_host_get(st, sel->hosts[i], &h);
        if (r == -ENOENT) {
            set_status(rc, RACKBOOT__V1__STATUS__STATUS_NOT_FOUND, "host %s not found",
                       sel->hosts[i]);
            return r;
        }
        if (r >= 0) {
            r = collect_host(&h, &l);
        }
    }
    /* A host named twice (or named and in a named rack) is one host: the
     * store's batches take distinct hosts (store_installs_create()). */
    if (r >= 0 && (sel->n_hosts > 1 || (sel->n_hosts > 0 && (sel->all || sel->n_racks > 0)))) {
        r = drop_repeats(&l);
    }
    if (r < 0) {
        store_failed(st, rc, r, "cannot resolve the hosts");
        return r;
    }
    *ret = l;
    return 0;
}

typedef struct status_add {
    reply_ctx *rc;
    const char *message; /* overrides the row's message when not NULL */
    uint32_t page_rows;  /* a page's limit, as reply_ctx.page_rows (0: none) */
} status_add;

static int add_status_row(const store_status *st, void *userdata)
{
    status_add *sa = userdata;
    reply_ctx *rc = sa->rc;
    if (sa->page_rows && rc->rep.statuses->n_rows >= sa->page_rows) {
        rc->rep.statuses->more = true;
        return 0;
    }
    Rackboot__V1__StatusRow *row = wire_status(rc->a, st);
    if (row && sa->message) {
        row->message = wire_strdup(rc->a, sa->message);
    }
    wire_append(rc->a, rc->rep.statuses->n_rows, rc->rep.statuses->rows, row);
    return wire_arena_failed(rc->a) ? -ENOMEM : 0;
}

static void body_statuses(reply_ctx *rc)
{
    rc->rep.body_case = RACKBOOT__V1__API_REPLY__BODY_STATUSES;
    rc->rep.statuses = wire_alloc(rc->a, sizeof(*rc->rep.statuses));
    if (rc->rep.statuses) {
        rackboot__v1__status_list__init(rc->rep.statuses);
    }
}

/* A fleet-wide install or cancel runs in slices of this many hosts, each
 * its own batch with its own audit row: between two slices the store queue
 * serves the agents (their syncs and event batches wait for one slice, not
 * for the whole fleet), and the agents of each slice are poked once it is
 * committed. A slice takes about 0.1 s on the bench (tests/bench/fanout). */
#define API_SLICE_HOSTS 5000

/* What per_host() does to many hosts at once: `run` returns < 0 only when
 * nothing of the slice may be committed. */
typedef struct per_host_op {
    int (*run)(store *st, const char *const *hosts, size_t n, const Rackboot__V1__ApiRequest *req,
               store_host_outcome *out);
} per_host_op;

static void per_host_slice(store *st, reply_ctx *rc);

/* Runs `op` on every host of the selector, slice by slice (the first one
 * here, the others as jobs of their own: job_done()); each host's row says
 * how it went. The reply is OK when every host succeeded, else FAILED. */
static void per_host(store *st, const Rackboot__V1__Selector *sel, reply_ctx *rc, const char *verb,
                     const per_host_op *op)
{
    name_list hosts;
    if (resolve(st, sel, rc, &hosts) < 0) {
        return;
    }
    rc->hosts = hosts.names;
    rc->n_hosts = hosts.n;
    if (hosts.n == 0) {
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_NOT_FOUND, "no hosts selected");
        return;
    }
    rc->host_why = wire_alloc(rc->a, hosts.n * sizeof(*rc->host_why));
    rc->host_skip = wire_alloc(rc->a, hosts.n * sizeof(*rc->host_skip));
    if (!rc->host_why || !rc->host_skip) {
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_FAILED, "out of memory");
        return;
    }
    rc->op = op;
    rc->op_verb = verb;
    per_host_slice(st, rc);
}

/* Whether per_host() has slices left to run. */
static bool per_host_more(const reply_ctx *rc)
{
    return rc->op && !rc->stopped && rc->next < rc->n_hosts;
}

/* Why per_host() passed over a host, from its op's result (*ret_why: the
 * words); SKIP_NONE when the host was done. */
static Rackboot__V1__Skip host_skip(int result, const char **ret_why)
{
    switch (result) {
    case -EBUSY:
        *ret_why = "has an active install (cancel it, or install with --replace)";
        return RACKBOOT__V1__SKIP__SKIP_ACTIVE;
    case -ENODATA:
        *ret_why = "has no active install";
        return RACKBOOT__V1__SKIP__SKIP_NOT_ACTIVE;
    case -ENOENT:
        *ret_why = "not found";
        return RACKBOOT__V1__SKIP__SKIP_NOT_FOUND;
    case -ENODEV:
        *ret_why = "has no BMC (install it without --power)";
        return RACKBOOT__V1__SKIP__SKIP_NO_BMC;
    default:
        *ret_why = NULL;
        return RACKBOOT__V1__SKIP__SKIP_NONE;
    }
}

/* The next slice of per_host()'s hosts, in a batch of its own committed
 * with its audit row (as much of the slice's failures as the row's result
 * line holds, audit_fill()). */
static void per_host_slice(store *st, reply_ctx *rc)
{
    size_t from = rc->next, n = MIN(rc->n_hosts - from, (size_t)API_SLICE_HOSTS);
    uint64_t t0 = now_monotonic_ms();
    rc->slice_from = from;
    rc->slice_to = from + n;
    rc->audited = false;
    rc->why = NULL;
    int r = store_batch_begin(st);
    if (r < 0) {
        store_failed(st, rc, r, "cannot start a transaction");
        rc->stopped = true;
        return;
    }
    store_host_outcome *out = calloc(n, sizeof(*out));
    r = out ? rc->op->run(st, (const char *const *)rc->hosts + from, n, rc->audit->req, out)
            : -ENOMEM;
    size_t failed = 0;
    rbuf line = { 0 };
    for (size_t i = 0; r >= 0 && i < n; i++) {
        const char *host = rc->hosts[from + i];
        const char *w = NULL;
        Rackboot__V1__Skip skip = host_skip(out[i].result, &w);
        if (skip == RACKBOOT__V1__SKIP__SKIP_NONE) {
            log_debug("api: %s id=%s host=%s", rc->op_verb, out[i].id, host);
            continue;
        }
        rc->host_skip[from + i] = skip;
        rc->host_why[from + i] = wire_strdup(rc->a, w);
        failed++;
        if (line.len <= RBPROTO_MAX_LINE) {
            rbuf_printf(&line, "%s%s: %s", line.len ? "; " : "", host, w);
        }
    }
    free(out);
    char *text = NULL;
    if (rbuf_finish(&line, &text, NULL) == 0 && text && *text) {
        rc->why = wire_strdup(rc->a, text);
    }
    free(text);
    /* The slice's own verdict, for its audit row. */
    if (r >= 0 && failed) {
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_FAILED, "%zu of %zu hosts not %s", failed, n,
                   rc->op_verb);
    } else if (r >= 0) {
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_OK, "%s", "");
    }
    int c = r >= 0 ? batch_commit(st, rc) : store_batch_end(st, false);
    if (r < 0 || c < 0) {
        rc->why = NULL; /* nothing of this slice happened */
        rc->stopped = true;
        char what[128];
        snprintf(what, sizeof(what), "cannot commit (%zu of %zu hosts were %s before)", from,
                 rc->n_hosts, rc->op_verb);
        store_failed(st, rc, r < 0 ? r : c, from ? what : "cannot commit");
        return;
    }
    rc->next = from + n;
    rc->failed += failed;
    rc->wrote = rc->wrote || failed < n;
    if (rc->n_hosts > API_SLICE_HOSTS) {
        log_info("api: %s hosts %zu-%zu of %zu: failed=%zu in %" PRIu64 " ms", rc->op_verb,
                 from + 1, from + n, rc->n_hosts, failed, now_monotonic_ms() - t0);
    }
    if (rc->next < rc->n_hosts) {
        return;
    }
    /* The last slice: the request's verdict. The rows come after the
     * agents are poked (request_after(), per_host_rows()): their long
     * polls are answered before the operator's rows (100,000 of them for
     * a whole fleet) are built. */
    if (rc->failed) {
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_FAILED, "%zu of %zu hosts not %s", rc->failed,
                   rc->n_hosts, rc->op_verb);
    }
    rc->verb = rc->op_verb;
}

/* The reply's rows of what per_host() did, one per host. */
typedef struct rows_fill {
    reply_ctx *rc;
    hashmap *slot;                  /* host name -> its index in rc->hosts, + 1 */
    Rackboot__V1__StatusRow **rows; /* per host of rc->hosts */
    size_t i;                       /* the host store_status_get() reads */
} rows_fill;

static int fill_row_at(rows_fill *f, size_t i, const store_status *st)
{
    reply_ctx *rc = f->rc;
    f->rows[i] = wire_status(rc->a, st);
    if (f->rows[i] && rc->host_why[i]) {
        f->rows[i]->message = wire_strdup(rc->a, rc->host_why[i]);
        f->rows[i]->skipped = rc->host_skip[i];
    }
    return wire_arena_failed(rc->a) ? -ENOMEM : 0;
}

static int fill_listed_row(const store_status *st, void *userdata)
{
    rows_fill *f = userdata;
    uintptr_t slot = (uintptr_t)hashmap_get(f->slot, st->host, strlen(st->host));
    return slot ? fill_row_at(f, slot - 1, st) : 0; /* not one of ours */
}

static int fill_got_row(const store_status *st, void *userdata)
{
    rows_fill *f = userdata;
    return fill_row_at(f, f->i, st);
}

/* The reply's rows of what per_host() did, one per host, in its order.
 * Hosts of a whole fleet or of whole racks are read in one status listing
 * (store_status_list(): a query per page, not per host) and matched by
 * name; a host the listing did not give (named ones, or one removed
 * meanwhile) is read on its own. */
static void per_host_rows(store *st, reply_ctx *rc)
{
    if (!rc->verb) {
        return;
    }
    body_statuses(rc);
    const Rackboot__V1__ApiRequest *req = rc->audit->req;
    const Rackboot__V1__Selector *sel = req->body_case == RACKBOOT__V1__API_REQUEST__BODY_INSTALL
                                            ? req->install->target
                                            : req->cancel->target;
    rows_fill f = { .rc = rc, .rows = wire_alloc(rc->a, rc->n_hosts * sizeof(*f.rows)) };
    if (!f.rows || !rc->rep.statuses) {
        return; /* out of memory: request_end() says so */
    }
    if ((sel->all || sel->n_racks > 0) && hashmap_new(rc->n_hosts, &f.slot) >= 0) {
        int r = 0;
        for (size_t i = 0; r >= 0 && i < rc->n_hosts; i++) {
            r = hashmap_put(f.slot, rc->hosts[i], strlen(rc->hosts[i]), (void *)(uintptr_t)(i + 1));
        }
        store_page page = { .racks = (const char *const *)sel->racks, .n_racks = sel->n_racks };
        if (r >= 0) {
            store_status_list(st, sel->all ? NULL : &page, fill_listed_row, &f);
        }
        f.slot = hashmap_free(f.slot);
    }
    for (f.i = 0; f.i < rc->n_hosts; f.i++) {
        if (!f.rows[f.i]) {
            store_status_get(st, rc->hosts[f.i], fill_got_row, &f);
        }
    }
    Rackboot__V1__StatusList *l = rc->rep.statuses;
    for (size_t i = 0; i < rc->n_hosts; i++) {
        if (f.rows[i]) {
            f.rows[l->n_rows++] = f.rows[i];
        }
    }
    l->rows = f.rows;
}

/* has_bmc() of a host: whether store_host_get() found one. */
static int host_has_bmc(store *st, const char *host)
{
    store_host h;
    int r = store_host_get(st, host, &h);
    return r < 0 ? r : *h.bmc_url != '\0';
}

/* An install with --power: hosts without a BMC are refused before any is
 * installed (-ENODEV: "has no BMC"), the others installed, then each
 * installed host gets its power command (next boot from the network, then
 * the action) in the same batch. */
static int install_powered(store *st, const char *const *hosts, size_t n,
                           const Rackboot__V1__InstallRequest *in, uint64_t now,
                           store_host_outcome *out)
{
    const char **ok_hosts = calloc(n, sizeof(*ok_hosts));
    size_t *slot = calloc(n, sizeof(*slot));
    store_host_outcome *ok_out = calloc(n, sizeof(*ok_out));
    store_power_outcome *pw = calloc(n, sizeof(*pw));
    const char **ids = calloc(n, sizeof(*ids));
    size_t k = 0;
    int r = ok_hosts && slot && ok_out && pw && ids ? 0 : -ENOMEM;
    for (size_t i = 0; r >= 0 && i < n; i++) {
        out[i] = (store_host_outcome){ 0 };
        int b = host_has_bmc(st, hosts[i]);
        if (b == -ENOENT || b == 0) {
            out[i].result = b == 0 ? -ENODEV : -ENOENT;
        } else if (b < 0) {
            r = b;
        } else {
            slot[k] = i;
            ok_hosts[k++] = hosts[i];
        }
    }
    int done = 0;
    if (r >= 0 && k > 0) {
        r = done =
            store_installs_create(st, ok_hosts, k, in->profile, in->replace_active, now, ok_out);
    }
    size_t m = 0;
    for (size_t j = 0; r >= 0 && j < k; j++) {
        out[slot[j]] = ok_out[j];
        if (ok_out[j].result == 0) {
            ok_hosts[m] = ok_hosts[j];
            ids[m++] = out[slot[j]].id;
        }
    }
    if (r >= 0 && m > 0) {
        r = store_power_create(st, ok_hosts, m, (int)in->power,
                               RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_PXE, ids, now, pw);
    }
    free(ok_hosts);
    free(slot);
    free(ok_out);
    free(pw);
    free(ids);
    return r < 0 ? r : done;
}

static int install_run(store *st, const char *const *hosts, size_t n,
                       const Rackboot__V1__ApiRequest *req, store_host_outcome *out)
{
    const Rackboot__V1__InstallRequest *in = req->install;
    if (in->power) {
        return install_powered(st, hosts, n, in, now_realtime_ms(), out);
    }
    return store_installs_create(st, hosts, n, in->profile, in->replace_active, now_realtime_ms(),
                                 out);
}

static int cancel_run(store *st, const char *const *hosts, size_t n,
                      const Rackboot__V1__ApiRequest *req, store_host_outcome *out)
{
    (void)req;
    return store_installs_cancel(st, hosts, n, now_realtime_ms(), out);
}

static const per_host_op install_op = { .run = install_run };
static const per_host_op cancel_op = { .run = cancel_run };

static int profile_exists(const model_profile *p, void *userdata)
{
    return 0;
}

static void do_install(store *st, const Rackboot__V1__InstallRequest *req, reply_ctx *rc)
{
    int r = store_profile_get(st, req->profile, false, profile_exists, NULL);
    if (r < 0) {
        if (r == -ENOENT) {
            set_status(rc, RACKBOOT__V1__STATUS__STATUS_NOT_FOUND, "profile %s not found",
                       req->profile);
        } else {
            store_failed(st, rc, r, "cannot read the profile");
        }
        return;
    }
    per_host(st, req->target, rc, "installed", &install_op);
}

static void do_cancel(store *st, const Rackboot__V1__CancelRequest *req, reply_ctx *rc)
{
    per_host(st, req->target, rc, "cancelled", &cancel_op);
}

/* ---- Power ------------------------------------------------------------- */

/* One BMC operation per host is enough to ask for at once: a command for
 * every host of a large fleet would be one too. */
#define API_POWER_MAX_HOSTS 5000

static void body_power(reply_ctx *rc)
{
    rc->rep.body_case = RACKBOOT__V1__API_REPLY__BODY_POWER;
    rc->rep.power = wire_alloc(rc->a, sizeof(*rc->rep.power));
    if (rc->rep.power) {
        rackboot__v1__power_list__init(rc->rep.power);
    }
}

/* A command per host, for its rack's agent; the reply's rows name them
 * (not done yet: the CLI asks for their results, PowerResultsRequest).
 * Hosts that are not found or have no BMC are rows without a command, done
 * and failed with the reason, in an OK reply when other commands were
 * made; a FAILED reply (the reasons in its message) when none was. */
static void do_power(store *st, const Rackboot__V1__PowerRequest *req, reply_ctx *rc)
{
    name_list hosts;
    if (resolve(st, req->target, rc, &hosts) < 0) {
        return;
    }
    rc->hosts = hosts.names;
    rc->n_hosts = hosts.n;
    rc->slice_from = 0;
    rc->slice_to = hosts.n;
    if (hosts.n == 0) {
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_NOT_FOUND, "no hosts selected");
        return;
    }
    if (hosts.n > API_POWER_MAX_HOSTS) {
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_INVALID,
                   "%zu hosts: at most %u in one power command", hosts.n, API_POWER_MAX_HOSTS);
        return;
    }
    _cleanup_free_ store_power_outcome *out = calloc(hosts.n, sizeof(*out));
    int r = out ? store_batch_begin(st) : -ENOMEM;
    if (r < 0) {
        store_failed(st, rc, r, "cannot start a transaction");
        return;
    }
    r = store_power_create(st, (const char *const *)hosts.names, hosts.n, (int)req->action,
                           (int)req->boot_device, NULL, now_realtime_ms(), out);
    body_power(rc);
    size_t failed = 0;
    rbuf line = { 0 };
    for (size_t i = 0; r >= 0 && rc->rep.power && i < hosts.n; i++) {
        Rackboot__V1__PowerRow *row = wire_alloc(rc->a, sizeof(*row));
        if (!row) {
            break;
        }
        rackboot__v1__power_row__init(row);
        row->host = hosts.names[i];
        row->action = req->action;
        if (out[i].result == 0) {
            row->id = wire_strdup(rc->a, out[i].id);
        } else {
            const char *w = out[i].result == -ENODEV ? "has no BMC" : "not found";
            row->id = RB_UNCONST("");
            row->done = true;
            row->message = wire_strdup(rc->a, w);
            failed++;
            if (line.len <= RBPROTO_MAX_LINE) {
                rbuf_printf(&line, "%s%s: %s", line.len ? "; " : "", hosts.names[i], w);
            }
        }
        wire_append(rc->a, rc->rep.power->n_rows, rc->rep.power->rows, row);
    }
    char *text = NULL;
    if (rbuf_finish(&line, &text, NULL) == 0 && text && *text) {
        rc->why = wire_strdup(rc->a, text);
    }
    free(text);
    if (r >= 0 && wire_arena_failed(rc->a)) {
        r = -ENOMEM;
    }
    /* Hosts that cannot be powered are rows of their own, done and failed
     * ("has no BMC"), beside the commands queued for the others: the
     * operator sees which host and why, and the CLI waits for the rest. */
    if (r >= 0 && failed == hosts.n) {
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_FAILED, "no host powered: %s",
                   rc->why ? rc->why : "?");
        rc->rep.body_case = RACKBOOT__V1__API_REPLY__BODY__NOT_SET;
    }
    int c = r >= 0 ? batch_commit(st, rc) : store_batch_end(st, false);
    if (r < 0 || c < 0) {
        store_failed(st, rc, r < 0 ? r : c, "cannot record the power commands");
        return;
    }
    rc->wrote = failed < hosts.n;
}

static int add_power_row(const store_power *p, void *userdata)
{
    reply_ctx *rc = userdata;
    Rackboot__V1__PowerRow *row = wire_power_row(rc->a, p);
    wire_append(rc->a, rc->rep.power->n_rows, rc->rep.power->rows, row);
    return wire_arena_failed(rc->a) ? -ENOMEM : 0;
}

static void do_power_results(store *st, const Rackboot__V1__PowerResultsRequest *req, reply_ctx *rc)
{
    body_power(rc);
    int r = rc->rep.power ? store_power_results(st, (const char *const *)req->ids, req->n_ids,
                                                add_power_row, rc)
                          : -ENOMEM;
    if (r < 0) {
        store_failed(st, rc, r, "cannot read the power commands");
    }
}

/* Racks and --all: one store query for the page, whatever the number of
 * racks or hosts, in host name order (several racks' hosts merged by
 * name). Named hosts: each, in the order named (rbproto refuses a page of
 * them). */
static void do_status(store *st, const Rackboot__V1__StatusRequest *req, reply_ctx *rc)
{
    const Rackboot__V1__Selector *sel = req->target;
    body_statuses(rc);
    status_add sa = { .rc = rc, .page_rows = req->limit };
    int r = 0;
    if (!sel || sel->n_hosts == 0) {
        store_page page = {
            .racks = sel ? (const char *const *)sel->racks : NULL,
            .n_racks = sel ? sel->n_racks : 0,
            .after = req->after,
            .limit = page_query_rows(req->limit),
        };
        r = store_status_list(st, &page, add_status_row, &sa);
    }
    for (size_t i = 0; sel && r >= 0 && i < sel->n_hosts; i++) {
        r = store_status_get(st, sel->hosts[i], add_status_row, &sa);
        if (r == -ENOENT) {
            set_status(rc, RACKBOOT__V1__STATUS__STATUS_NOT_FOUND, "host %s not found",
                       sel->hosts[i]);
            return;
        }
    }
    if (r < 0) {
        store_failed(st, rc, r, "cannot read the status");
    }
}

/* ---- Events (with long poll) ------------------------------------------- */

static void job_run(api *a, store_queue_work_fn work, store_queue_done_fn done, void *arg);
static void job_run_read(api *a, store_queue_work_fn work, store_queue_done_fn done, void *arg);
static void request_end(api *a, rpc_call *call, reply_ctx *rc, int body);
static void request_settle(api *a, reply_ctx *rc, int body);
static void request_end_local(api *a, api_job *j);

typedef struct events_add {
    reply_ctx *rc;
    uint64_t last;
} events_add;

static int add_event_row(const store_event_row *e, void *userdata)
{
    events_add *ea = userdata;
    Rackboot__V1__EventList *l = ea->rc->rep.events;
    wire_append(ea->rc->a, l->n_events, l->events, wire_event_row(ea->rc->a, e));
    ea->last = e->seq;
    return wire_arena_failed(ea->rc->a) ? -ENOMEM : 0;
}

/* Fills the reply with the rows after `after`; returns how many, or < 0. */
static int events_fill(store *st, const char *host, uint64_t after, uint32_t limit, reply_ctx *rc)
{
    rc->rep.body_case = RACKBOOT__V1__API_REPLY__BODY_EVENTS;
    rc->rep.events = wire_alloc(rc->a, sizeof(*rc->rep.events));
    if (!rc->rep.events) {
        return -ENOMEM;
    }
    rackboot__v1__event_list__init(rc->rep.events);
    events_add ea = { .rc = rc, .last = after };
    if (limit == 0 || limit > RBPROTO_MAX_EVENT_ROWS) {
        limit = limit ? RBPROTO_MAX_EVENT_ROWS : EVENTS_DEFAULT_ROWS;
    }
    int r = store_events_list(st, *host ? host : NULL, after, limit, add_event_row, &ea);
    if (r == -ENOENT) {
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_NOT_FOUND, "host %s not found", host);
        return r;
    }
    if (r < 0) {
        store_failed(st, rc, r, "cannot read events");
        return r;
    }
    rc->rep.events->last_seq = ea.last;
    return (int)rc->rep.events->n_events;
}

static void park_unlink(api *a, parked *p)
{
    if (p->prev) {
        p->prev->next = p->next;
    } else {
        a->parked = p->next;
    }
    if (p->next) {
        p->next->prev = p->prev;
    }
    p->prev = p->next = NULL;
}

static void park_remove(api *a, parked *p)
{
    park_unlink(a, p);
    wire_arena_free(p->rc.a);
    free(p);
}

/* Parks an events request whose first read found no row; NULL when out of
 * memory (then it is answered now, with no rows). */
static parked *park(api *a, endpoint *ep, rpc_call *call, const Rackboot__V1__EventsRequest *req,
                    uint64_t deadline_ms)
{
    parked *p = calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    p->api = a;
    p->call = call;
    p->ep = ep;
    p->pipe = rpc_call_pipe(call);
    snprintf(p->host, sizeof(p->host), "%s", req->host);
    p->after_seq = req->after_seq;
    p->limit = req->limit;
    p->deadline_ms = deadline_ms;
    p->next = a->parked;
    if (a->parked) {
        a->parked->prev = p;
    }
    a->parked = p;
    return p;
}

/* On the store queue: the rows after the poll's, up to its limit (the
 * whole answer, if there are any: no second read to build it). */
static void poll_check_work(store *st, void *arg)
{
    parked *p = arg;
    p->rc = (reply_ctx){ .a = wire_arena_new(), .rep = RACKBOOT__V1__API_REPLY__INIT };
    p->rc.rep.status = RACKBOOT__V1__STATUS__STATUS_OK;
    p->found = p->rc.a ? events_fill(st, p->host, p->after_seq, p->limit, &p->rc) : -ENOMEM;
}

static void poll_check(api *a, parked *p);

/* Answers the poll when its check found rows (or failed), or its wait ran
 * out; else it stays parked, and is checked again if it was poked
 * meanwhile. */
static void poll_check_done(void *arg, int status)
{
    parked *p = arg;
    api *a = p->api;
    a->jobs--;
    p->checking = false;
    bool answer =
        status >= 0 && !p->gone && (p->found != 0 || p->deadline_ms <= now_monotonic_ms());
    if (answer && p->rc.a) {
        request_end(a, p->call, &p->rc, RACKBOOT__V1__API_REQUEST__BODY_EVENTS);
        park_remove(a, p);
        return;
    }
    if (answer) {
        rpc_call_drop(p->call); /* out of memory */
        park_remove(a, p);
        return;
    }
    p->rc.a = wire_arena_free(p->rc.a);
    if (p->gone) {
        free(p); /* unlinked by on_pipe_closed(), its call dropped */
        return;
    }
    if (status >= 0 && p->again) {
        poll_check(a, p);
    }
}

/* Re-reads a parked poll's rows on the store queue: one read at a time per
 * poll, however many pokes come meanwhile (they ask for one more). `p` may
 * be answered and freed before this returns. */
static void poll_check(api *a, parked *p)
{
    if (p->checking) {
        p->again = true;
        return;
    }
    p->checking = true;
    p->again = false;
    job_run_read(a, poll_check_work, poll_check_done, p);
}

void api_poke(api *a)
{
    a->pokes++;
    for (parked *p = a->parked, *next; p; p = next) {
        next = p->next;
        poll_check(a, p);
    }
}

/* Polls whose wait ran out are answered by a last read (rows may have come
 * without a poke, from another connection). */
static void on_tick(uv_timer_t *t)
{
    api *a = t->data;
    uint64_t now = now_monotonic_ms();
    for (parked *p = a->parked, *next; p; p = next) {
        next = p->next;
        if (!p->checking && p->deadline_ms <= now) {
            poll_check(a, p);
        }
    }
}

/* ---- Audit log --------------------------------------------------------- */

typedef struct audit_page {
    reply_ctx *rc;
    size_t bytes; /* the rows' encoded size so far */
} audit_page;

static int add_audit_row(const store_audit *row, void *userdata)
{
    audit_page *pg = userdata;
    reply_ctx *rc = pg->rc;
    Rackboot__V1__AuditList *l = rc->rep.audit;
    Rackboot__V1__AuditRow *m = wire_audit_row(rc->a, row);
    if (!m || wire_arena_failed(rc->a)) {
        return -ENOMEM;
    }
    /* + tag and length prefix of the repeated field */
    size_t size = rackboot__v1__audit_row__get_packed_size(m) + 1 + 5;
    if (l->n_rows > 0 && size > AUDIT_PAGE_BYTES - pg->bytes) {
        l->more = true; /* the next page starts at this row */
        return 1;
    }
    pg->bytes += size;
    wire_append(rc->a, l->n_rows, l->rows, m);
    return wire_arena_failed(rc->a) ? -ENOMEM : 0;
}

static void do_audit(store *st, const Rackboot__V1__AuditRequest *req, reply_ctx *rc)
{
    rc->rep.body_case = RACKBOOT__V1__API_REPLY__BODY_AUDIT;
    rc->rep.audit = wire_alloc(rc->a, sizeof(*rc->rep.audit));
    if (!rc->rep.audit) {
        return;
    }
    rackboot__v1__audit_list__init(rc->rep.audit);
    uint32_t limit = req->limit ? req->limit : RBPROTO_AUDIT_DEFAULT_ROWS;
    audit_page pg = { .rc = rc };
    int r = store_audit_list(st, req->since_unix_ms, req->after_seq, limit, add_audit_row, &pg);
    if (r < 0) {
        store_failed(st, rc, r, "cannot read the audit log");
    }
}

/* What each request is: a write (an audit verb), and whether a viewer may
 * make it. The viewer's side is an allow-list: a request kind not listed
 * here with `viewer` set, a write added later included, is refused to
 * viewers until someone decides otherwise here. */
typedef struct request_kind {
    Rackboot__V1__ApiRequest__BodyCase body;
    const char *verb;   /* written to the audit log; NULL: a read */
    bool viewer;        /* a viewer may make it */
    const char *denied; /* "viewer may not ..." */
    const char *metric; /* its verb label in rackboot_api_requests_total */
} request_kind;

static const request_kind request_kinds[] = {
    /* The reads a viewer may make (README, "Roles"). */
    { RACKBOOT__V1__API_REQUEST__BODY_HOSTS_LIST, NULL, true, NULL, "hosts_list" },
    { RACKBOOT__V1__API_REQUEST__BODY_RACKS_LIST, NULL, true, NULL, "racks_list" },
    { RACKBOOT__V1__API_REQUEST__BODY_PROFILES_LIST, NULL, true, NULL, "profiles_list" },
    { RACKBOOT__V1__API_REQUEST__BODY_IMAGES_LIST, NULL, true, NULL, "images_list" },
    { RACKBOOT__V1__API_REQUEST__BODY_STATUS, NULL, true, NULL, "status" },
    { RACKBOOT__V1__API_REQUEST__BODY_EVENTS, NULL, true, NULL, "events" }, /* events, watch */
    /* A sign-in to the web view, in the caller's own role: nothing a
     * viewer could not see otherwise. Answered on the loop (web_login()). */
    { RACKBOOT__V1__API_REQUEST__BODY_WEB_LOGIN, NULL, true, NULL, "web_login" },
    /* Operators (and the local socket) only. */
    { RACKBOOT__V1__API_REQUEST__BODY_AUDIT, NULL, false, "read the audit log", "audit" },
    { RACKBOOT__V1__API_REQUEST__BODY_HOSTS_ADD, "hosts add", false, "add or import hosts",
      "hosts_add" },
    { RACKBOOT__V1__API_REQUEST__BODY_HOSTS_REMOVE, "hosts remove", false, "remove hosts",
      "hosts_remove" },
    { RACKBOOT__V1__API_REQUEST__BODY_PROFILES_IMPORT, "profiles import", false, "import profiles",
      "profiles_import" },
    { RACKBOOT__V1__API_REQUEST__BODY_INSTALL, "install", false, "install", "install" },
    { RACKBOOT__V1__API_REQUEST__BODY_CANCEL, "cancel", false, "cancel", "cancel" },
    /* Power, status included: it makes the BMC answer, it is not a read of
     * the fleet's state (hosts list shows the state last read). */
    { RACKBOOT__V1__API_REQUEST__BODY_POWER, "power", false, "use hosts' BMCs", "power" },
    { RACKBOOT__V1__API_REQUEST__BODY_POWER_RESULTS, NULL, false, "use hosts' BMCs",
      "power_results" },
};
_Static_assert(ARRAY_SIZE(request_kinds) == API_VERB_AUTH, "a verb label per request kind");

/* The verb label's index for a request of this body (0: unreadable). */
static size_t verb_of(int body)
{
    if (body == RACKBOOT__V1__API_REQUEST__BODY_AUTH_HELLO ||
        body == RACKBOOT__V1__API_REQUEST__BODY_AUTH_PROOF) {
        return API_VERB_AUTH;
    }
    for (size_t i = 0; i < ARRAY_SIZE(request_kinds); i++) {
        if ((int)request_kinds[i].body == body) {
            return i;
        }
    }
    return API_VERB_UNKNOWN;
}

static const char *verb_name(size_t verb)
{
    if (verb < ARRAY_SIZE(request_kinds)) {
        return request_kinds[verb].metric;
    }
    return verb == API_VERB_AUTH ? "auth" : "unknown";
}

static api_result result_of(Rackboot__V1__Status status)
{
    switch (status) {
    case RACKBOOT__V1__STATUS__STATUS_OK:
        return API_RESULT_OK;
    case RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED:
    case RACKBOOT__V1__STATUS__STATUS_PERMISSION_DENIED:
        return API_RESULT_REFUSED;
    case RACKBOOT__V1__STATUS__STATUS_INVALID:
    case RACKBOOT__V1__STATUS__STATUS_NOT_FOUND:
    case RACKBOOT__V1__STATUS__STATUS_CONFLICT:
        return API_RESULT_INVALID;
    default:
        return API_RESULT_ERROR;
    }
}

int api_register_metrics(api *a, metrics *m)
{
    for (size_t v = 0; v < API_VERBS; v++) {
        for (size_t r = 0; r < API_RESULTS; r++) {
            char labels[64];
            snprintf(labels, sizeof(labels), "verb=\"%s\",result=\"%s\"", verb_name(v),
                     api_result_names[r]);
            int err = metrics_register(m, METRIC_COUNTER, "rackboot_api_requests_total",
                                       "Operators' API requests answered, by request kind and "
                                       "result.",
                                       labels, &a->answered[v][r]);
            if (err < 0) {
                return err;
            }
        }
    }
    return 0;
}

static const request_kind *request_kind_of(Rackboot__V1__ApiRequest__BodyCase body)
{
    for (size_t i = 0; i < ARRAY_SIZE(request_kinds); i++) {
        if (request_kinds[i].body == body) {
            return &request_kinds[i];
        }
    }
    return NULL;
}

/* Whether `who` may make a request of this kind (NULL: not in the table). */
static bool caller_may(const caller *who, const request_kind *kind)
{
    return who->unrestricted || (kind && kind->viewer);
}

/* On the local socket the file's mode and group are the access control
 * (root and the rackboot group); the peer's uid, which nng reads with
 * SO_PEERCRED (NNG_OPT_IPC_PEER_UID), says who it was. Over TLS the proven
 * certificate says it, and its role what it may do. */
static void caller_of(const endpoint *ep, uint32_t pipe, caller *ret)
{
    if (!ep->auth) {
        nng_pipe p = NNG_PIPE_INITIALIZER;
        uint64_t uid;
        p.id = pipe;
        ret->role = "local";
        ret->unrestricted = true;
        if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) == 0) {
            snprintf(ret->who, sizeof(ret->who), "local:uid=%" PRIu64, uid);
        } else {
            snprintf(ret->who, sizeof(ret->who), "local");
        }
        return;
    }
    const auth_peer *peer = auth_identity(ep->auth, pipe);
    RB_ASSERT(peer); /* only called for proven pipes */
    ret->role = pki_role_to_string(peer->id.role);
    ret->unrestricted = peer->id.role == PKI_ROLE_OPERATOR;
    snprintf(ret->who, sizeof(ret->who), "%s:%s", ret->role, peer->id.name);
}

static void collect_names(wire_arena *wa, char ***names, size_t *n, char *name)
{
    wire_append(wa, *n, *names, name);
}

/* The audit row of the write in `rc`, as it stands (its status and, for
 * install / cancel, its per-host failures). `result` is the row's result
 * buffer. Names are allocated in the reply's arena. */
static int audit_fill(reply_ctx *rc, store_audit *row, char result[RBPROTO_MAX_LINE + 1])
{
    const Rackboot__V1__ApiRequest *req = rc->audit->req;
    char **hosts = NULL, **profiles = NULL;
    size_t n_hosts = 0, n_profiles = 0;
    switch (req->body_case) {
    case RACKBOOT__V1__API_REQUEST__BODY_HOSTS_ADD:
        for (size_t i = 0; i < req->hosts_add->n_hosts; i++) {
            collect_names(rc->a, &hosts, &n_hosts, req->hosts_add->hosts[i]->name);
        }
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_HOSTS_REMOVE:
        for (size_t i = 0; i < req->hosts_remove->n_names; i++) {
            collect_names(rc->a, &hosts, &n_hosts, req->hosts_remove->names[i]);
        }
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_PROFILES_IMPORT:
        for (size_t i = 0; i < req->profiles_import->n_profiles; i++) {
            collect_names(rc->a, &profiles, &n_profiles, req->profiles_import->profiles[i]->name);
        }
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_INSTALL:
    case RACKBOOT__V1__API_REQUEST__BODY_CANCEL: {
        const Rackboot__V1__Selector *sel =
            req->body_case == RACKBOOT__V1__API_REQUEST__BODY_INSTALL ? req->install->target
                                                                      : req->cancel->target;
        if (rc->hosts) { /* resolved: the slice being committed */
            hosts = rc->hosts + rc->slice_from;
            n_hosts = rc->slice_to - rc->slice_from;
        } else if (sel) { /* refused before it was resolved: what it named */
            for (size_t i = 0; i < sel->n_hosts; i++) {
                collect_names(rc->a, &hosts, &n_hosts, sel->hosts[i]);
            }
        }
        if (req->body_case == RACKBOOT__V1__API_REQUEST__BODY_INSTALL) {
            collect_names(rc->a, &profiles, &n_profiles, req->install->profile);
        }
        break;
    }
    case RACKBOOT__V1__API_REQUEST__BODY_POWER:
        if (rc->hosts) {
            hosts = rc->hosts;
            n_hosts = rc->n_hosts;
        } else {
            for (size_t i = 0; req->power->target && i < req->power->target->n_hosts; i++) {
                collect_names(rc->a, &hosts, &n_hosts, req->power->target->hosts[i]);
            }
        }
        break;
    default:
        break;
    }
    bool ok = rc->rep.status == RACKBOOT__V1__STATUS__STATUS_OK;
    /* A request of more than one slice: which part of it this row is. */
    char part[64] = "";
    if (rc->hosts && rc->n_hosts > API_SLICE_HOSTS) {
        snprintf(part, sizeof(part), "hosts %zu-%zu of %zu: ", rc->slice_from + 1, rc->slice_to,
                 rc->n_hosts);
    }
    /* install / cancel failing for some hosts: say which, and why. */
    int n = snprintf(result, RBPROTO_MAX_LINE + 1, "%s%s%s%s", part,
                     ok ? "ok" : (rc->rep.message && *rc->rep.message ? rc->rep.message : "failed"),
                     rc->why ? ": " : "", rc->why ? rc->why : "");
    if (n >= (int)RBPROTO_MAX_LINE + 1) {
        /* cut: no half UTF-8 sequence at the end (AuditRow.result is UTF-8) */
        size_t len = strlen(result);
        while (len > 0 && (unsigned char)result[len - 1] >= 0x80) {
            result[--len] = '\0';
        }
    }
    *row = (store_audit){
        .time_ms = rc->audit->when,
        .who = rc->audit->who->who,
        .verb = rc->audit->verb,
        .hosts = (const char *const *)hosts,
        .n_hosts = n_hosts,
        .profiles = (const char *const *)profiles,
        .n_profiles = n_profiles,
        .ok = ok,
        .result = result,
    };
    return wire_arena_failed(rc->a) ? -ENOMEM : 0;
}

/* Ends the batch of a write that succeeded, its audit row in the same
 * transaction: the store never holds a change nobody is recorded as having
 * made, nor an "ok" row for a change that was undone. On failure nothing of
 * it stays, and the caller's error reply is recorded by audit_append(). */
static int batch_commit(store *st, reply_ctx *rc)
{
    if (!rc->audit) {
        return store_batch_end(st, true); /* not a write of the API's */
    }
    store_audit row;
    char result[RBPROTO_MAX_LINE + 1];
    int r = audit_fill(rc, &row, result);
    if (r < 0) {
        (void)store_batch_end(st, false);
        return r;
    }
    r = store_batch_commit_audited(st, &row);
    rc->audited = r >= 0;
    return r;
}

/* The row of a write that did not commit one with it (refused, failed,
 * undone), once the request ran: on the store queue, as the write. */
static void audit_append(store *st, reply_ctx *rc)
{
    if (!rc->audit || rc->audited) {
        return;
    }
    store_audit row;
    char result[RBPROTO_MAX_LINE + 1];
    int r = audit_fill(rc, &row, result);
    if (r >= 0) {
        r = store_audit_append(st, &row);
    }
    if (r < 0) {
        log_error("api: cannot write the audit log: %s (%s) who=%s verb=%s", errstr(r),
                  store_errmsg(st), rc->audit->who->who, rc->audit->verb);
    }
    rc->audited = true; /* or tried: once */
}

/* ---- Identity handshake (no store) ------------------------------------- */

static void handle_auth(endpoint *ep, rpc_call *call, const Rackboot__V1__ApiRequest *req,
                        reply_ctx *rc)
{
    if (!ep->auth) {
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_INVALID,
                   "no identity handshake on the local socket");
        return;
    }
    pki_reason reason = { { 0 } };
    uint32_t pipe = rpc_call_pipe(call);
    if (req->body_case == RACKBOOT__V1__API_REQUEST__BODY_AUTH_HELLO) {
        uint8_t *nonce = wire_alloc(rc->a, PKI_NONCE_SIZE);
        Rackboot__V1__AuthChallenge *ch = wire_alloc(rc->a, sizeof(*ch));
        if (!nonce || !ch) {
            set_status(rc, RACKBOOT__V1__STATUS__STATUS_FAILED, "out of memory");
            return;
        }
        int r = auth_hello(ep->auth, pipe, req->auth_hello, nonce, &reason);
        if (r < 0) {
            log_warn("api: operator refused: %s", reason.text);
            set_status(rc, RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED, "%s", reason.text);
            return;
        }
        rackboot__v1__auth_challenge__init(ch);
        ch->nonce.data = nonce;
        ch->nonce.len = PKI_NONCE_SIZE;
        rc->rep.body_case = RACKBOOT__V1__API_REPLY__BODY_AUTH_CHALLENGE;
        rc->rep.auth_challenge = ch;
        return;
    }
    const auth_peer *peer = NULL;
    int r = auth_proof(ep->auth, pipe, req->auth_proof, &peer, &reason);
    if (r < 0) {
        log_warn("api: operator identity proof refused: %s", reason.text);
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED, "%s", reason.text);
        return;
    }
    log_info("api: %s %s connected", pki_role_to_string(peer->id.role), peer->id.name);
    Rackboot__V1__AuthResult *res = wire_alloc(rc->a, sizeof(*res));
    if (!res) {
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_FAILED, "out of memory");
        return;
    }
    rackboot__v1__auth_result__init(res);
    res->role = peer->id.role == PKI_ROLE_VIEWER ? RACKBOOT__V1__ROLE__ROLE_VIEWER
                                                 : RACKBOOT__V1__ROLE__ROLE_OPERATOR;
    res->name = wire_strdup(rc->a, peer->id.name);
    res->controller_version = RB_UNCONST(RACKBOOT_VERSION);
    rc->rep.body_case = RACKBOOT__V1__API_REPLY__BODY_AUTH_RESULT;
    rc->rep.auth_result = res;
}

/* ---- Requests on the store queue ---------------------------------------- */

/* A request with store work: every request but the identity handshake and
 * those answered without the store (malformed, unproven, a read refused,
 * unknown). Its work runs on the store queue: the request, then the audit
 * row of a write that did not commit one (for a refused write that row
 * alone). Then, on the loop, what follows a write (request_after()) and the
 * reply. An install or cancel goes back to the queue once more between the
 * two: writes, the agents' poke, its rows (behind the agents' sync builds),
 * reply. */
struct api_job {
    api *a;
    endpoint *ep;
    rpc_call *call;
    uint32_t pipe;
    Rackboot__V1__ApiRequest *req; /* owned */
    caller who;
    audit_ctx audit;
    reply_ctx rc;         /* owns its arena */
    bool refused;         /* only its audit row is written */
    bool closed;          /* its connection closed meanwhile: nobody to answer */
    uint64_t since_ms;    /* when it came (monotonic): a long poll's wait starts there */
    uint64_t pokes;       /* api->pokes when it was queued */
    int found;            /* events: the rows its read found, or < 0 */
    api_job *prev, *next; /* api->running */
    /* api_submit_as(): answered to this instead of a connection */
    api_reply_fn local_done;
    void *local_userdata;
};

static api_job *api_job_free(api_job *j)
{
    if (!j) {
        return NULL;
    }
    if (j->prev) {
        j->prev->next = j->next;
    } else {
        j->a->running = j->next;
    }
    if (j->next) {
        j->next->prev = j->prev;
    }
    rbproto_free(j->req ? &j->req->base : NULL);
    wire_arena_free(j->rc.a);
    free(j);
    return NULL;
}

/* Runs `work` on the store queue, then `done` on the loop. Without the
 * memory to queue it, `done` runs here with -ENOMEM (the request is dropped
 * and its caller times out) and may free `arg` before this returns. */
static void job_run_on(api *a, store_queue *q, store_queue_work_fn work, store_queue_done_fn done,
                       void *arg)
{
    a->jobs++;
    if (store_queue_submit(q, work, done, arg) < 0) {
        done(arg, -ENOMEM);
    }
}

static void job_run(api *a, store_queue_work_fn work, store_queue_done_fn done, void *arg)
{
    job_run_on(a, a->queue, work, done, arg);
}

/* job_run() for work that only reads: on the read queue with the fewest
 * jobs waiting (api_config.read_queues), else on the queue. */
static void job_run_read(api *a, store_queue_work_fn work, store_queue_done_fn done, void *arg)
{
    store_queue *q = a->queue;
    size_t least = SIZE_MAX;
    for (size_t i = 0; i < a->n_read_queues; i++) {
        size_t n = store_queue_pending(a->read_queues[i]);
        if (n < least) {
            least = n;
            q = a->read_queues[i];
        }
    }
    job_run_on(a, q, work, done, arg);
}

/* The request itself (any thread). */
static void request_run(store *st, api_job *j)
{
    const Rackboot__V1__ApiRequest *req = j->req;
    reply_ctx *rc = &j->rc;
    switch (req->body_case) {
    case RACKBOOT__V1__API_REQUEST__BODY_HOSTS_ADD:
        do_hosts_add(st, req->hosts_add, rc);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_HOSTS_LIST:
        do_hosts_list(st, req->hosts_list, rc);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_HOSTS_REMOVE:
        do_hosts_remove(st, req->hosts_remove, rc);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_RACKS_LIST:
        do_racks_list(st, rc);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_PROFILES_IMPORT:
        do_profiles_import(st, req->profiles_import, rc);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_PROFILES_LIST:
        do_profiles_list(st, req->profiles_list, rc);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_IMAGES_LIST:
        do_images_list(st, rc);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_INSTALL:
        do_install(st, req->install, rc);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_CANCEL:
        do_cancel(st, req->cancel, rc);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_STATUS:
        do_status(st, req->status, rc);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_EVENTS: {
        const Rackboot__V1__EventsRequest *ev = req->events;
        j->found = events_fill(st, ev->host, ev->after_seq, ev->limit, rc);
        break;
    }
    case RACKBOOT__V1__API_REQUEST__BODY_AUDIT:
        do_audit(st, req->audit, rc);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_POWER:
        do_power(st, req->power, rc);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_POWER_RESULTS:
        do_power_results(st, req->power_results, rc);
        break;
    default: /* request_kinds lists a kind no case here runs */
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_FAILED, "internal error");
        break;
    }
}

static void job_work(store *st, void *arg)
{
    api_job *j = arg;
    if (!j->refused) {
        request_run(st, j);
    }
    audit_append(st, &j->rc);
}

/* The next slice of an install or cancel (per_host_slice()). */
static void job_slice(store *st, void *arg)
{
    api_job *j = arg;
    per_host_slice(st, &j->rc);
    audit_append(st, &j->rc);
}

static void job_rows(store *st, void *arg)
{
    api_job *j = arg;
    per_host_rows(st, &j->rc);
}

/* A write's log line names at most this many hosts, then "+N more". */
#define API_LOG_NAMES 20

static const char *skip_word(Rackboot__V1__Skip skip)
{
    switch (skip) {
    case RACKBOOT__V1__SKIP__SKIP_ACTIVE:
        return "active";
    case RACKBOOT__V1__SKIP__SKIP_NOT_ACTIVE:
        return "not-active";
    case RACKBOOT__V1__SKIP__SKIP_NOT_FOUND:
        return "not-found";
    case RACKBOOT__V1__SKIP__SKIP_NO_BMC:
        return "no-bmc";
    default:
        return "skipped";
    }
}

/* Appends " key=VALUE" to b, VALUE log_quote()d. */
static void log_field_add(rbuf *b, const char *key, const char *value)
{
    value = value ? value : "";
    size_t size = 4 * strlen(value) + 3; /* every byte escaped, quotes, NUL */
    char *q = malloc(size);
    if (!q) {
        rbuf_fail(b, -ENOMEM);
        return;
    }
    rbuf_printf(b, " %s=%s", key, log_quote(q, size, value));
    free(q);
}

/* Appends " key=a,b,..." naming the first API_LOG_NAMES of `names` (with
 * `skips`: only those skipped, each with why), "+N more" for the rest;
 * nothing when there are none. A request may name thousands of hosts: the
 * log line stays a line. */
static void log_names(rbuf *b, const char *key, const char *const *names, size_t n,
                      const Rackboot__V1__Skip *skips)
{
    rbuf list = { 0 };
    size_t shown = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (skips && skips[i] == RACKBOOT__V1__SKIP__SKIP_NONE) {
            continue;
        }
        if (++total > API_LOG_NAMES) {
            continue;
        }
        rbuf_printf(&list, "%s%s", shown++ ? "," : "", names[i]);
        if (skips) {
            rbuf_printf(&list, "(%s)", skip_word(skips[i]));
        }
    }
    if (total > shown) {
        rbuf_printf(&list, " +%zu more", total - shown);
    }
    char *text = NULL;
    if (rbuf_finish(&list, &text, NULL) < 0) {
        rbuf_fail(b, -ENOMEM);
    } else if (total > 0) {
        log_field_add(b, key, text);
    }
    free(text);
}

/* The hosts a selector names, before (or without) resolving it. */
static void log_selector(rbuf *b, const Rackboot__V1__Selector *sel)
{
    if (!sel) {
        return;
    }
    if (sel->all) {
        rbuf_puts(b, " hosts=all");
    }
    log_names(b, "racks", (const char *const *)sel->racks, sel->n_racks, NULL);
    log_names(b, "hosts", (const char *const *)sel->hosts, sel->n_hosts, NULL);
}

/* The daemon log's line of a write, one per request once it ran: who did
 * what to which hosts and how it went, the hosts skipped and why included
 * (the audit log holds the same per slice, for `rackboot audit`):
 *
 *   api: install requested hosts=web17,web18 profile=el9 by=operator:alice
 *        result=failed skipped=web17(active) error="1 of 2 hosts not installed" */
static void log_write(api_job *j)
{
    reply_ctx *rc = &j->rc;
    const Rackboot__V1__ApiRequest *req = j->req;
    rbuf b = { 0 };
    char **names = NULL; /* in the reply's arena, as audit_fill()'s */
    size_t n = 0;
    rbuf_printf(&b, "api: %s requested", j->audit.verb);
    switch (req->body_case) {
    case RACKBOOT__V1__API_REQUEST__BODY_HOSTS_ADD:
        for (size_t i = 0; i < req->hosts_add->n_hosts; i++) {
            collect_names(rc->a, &names, &n, req->hosts_add->hosts[i]->name);
        }
        log_names(&b, "hosts", (const char *const *)names, n, NULL);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_HOSTS_REMOVE:
        log_names(&b, "hosts", (const char *const *)req->hosts_remove->names,
                  req->hosts_remove->n_names, NULL);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_PROFILES_IMPORT:
        for (size_t i = 0; i < req->profiles_import->n_profiles; i++) {
            collect_names(rc->a, &names, &n, req->profiles_import->profiles[i]->name);
        }
        log_names(&b, "profiles", (const char *const *)names, n, NULL);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_INSTALL:
    case RACKBOOT__V1__API_REQUEST__BODY_CANCEL:
    case RACKBOOT__V1__API_REQUEST__BODY_POWER:
        if (rc->hosts) { /* resolved: the hosts it was tried on */
            log_names(&b, "hosts", (const char *const *)rc->hosts, rc->n_hosts, NULL);
        } else {
            log_selector(&b, req->body_case == RACKBOOT__V1__API_REQUEST__BODY_INSTALL
                                 ? req->install->target
                             : req->body_case == RACKBOOT__V1__API_REQUEST__BODY_CANCEL
                                 ? req->cancel->target
                                 : req->power->target);
        }
        if (req->body_case == RACKBOOT__V1__API_REQUEST__BODY_INSTALL) {
            log_field_add(&b, "profile", req->install->profile);
        }
        break;
    default:
        break;
    }
    bool ok = rc->rep.status == RACKBOOT__V1__STATUS__STATUS_OK;
    log_field_add(&b, "by", j->who.who);
    rbuf_printf(&b, " result=%s", j->refused ? "refused" : ok ? "ok" : "failed");
    if (rc->hosts && rc->host_skip) {
        log_names(&b, "skipped", (const char *const *)rc->hosts, rc->next, rc->host_skip);
    }
    if (!ok && rc->rep.message && *rc->rep.message) {
        log_field_add(&b, "error", rc->rep.message);
    }
    char *line = NULL;
    if (rbuf_finish(&b, &line, NULL) < 0) {
        log_error("api: out of memory for the log line of %s by %s", j->audit.verb, j->who.who);
        return;
    }
    log_msg(ok ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, "%s", line);
    free(line);
}

/* The loop's part of a request once its store work ran. */
static void request_after(api *a, const reply_ctx *rc)
{
    if (rc->wrote && a->hub) {
        hub_poke(a->hub);
    }
    if (rc->verb) {
        log_info("api: %s hosts=%zu failed=%zu", rc->verb, rc->n_hosts, rc->failed);
        api_poke(a); /* the installs' and cancels' events */
        if (a->on_installs_changed) {
            a->on_installs_changed(a->installs_userdata);
        }
    }
}

/* Whether the caller is still there to be answered: its connection is
 * open and, over TLS, still proven (a revoked one is forgotten first). */
static bool job_caller_here(const api_job *j)
{
    if (j->local_done) {
        return true; /* the callback's owner keeps track of its own */
    }
    return !j->closed && (!j->ep->auth || auth_identity(j->ep->auth, j->pipe));
}

/* Answers, unless the caller went away meanwhile (a write's audit row is
 * in the store by now either way), and frees the job. */
static void job_end(api_job *j)
{
    if (j->local_done) {
        request_end_local(j->a, j);
    } else if (job_caller_here(j)) {
        request_end(j->a, j->call, &j->rc, (int)j->req->body_case);
    } else {
        rpc_call_drop(j->call);
    }
    api_job_free(j);
}

/* The queue was freed first: shutting down. */
static void job_cancelled(api_job *j)
{
    if (j->local_done) {
        j->local_done(j->local_userdata, NULL);
    }
    rpc_call_drop(j->call);
    api_job_free(j);
}

static void job_rows_done(void *arg, int status)
{
    api_job *j = arg;
    j->a->jobs--;
    if (status < 0) {
        job_cancelled(j);
        return;
    }
    job_end(j);
}

/* An events request whose first read found no row and that asked to wait
 * is parked (true), unless its wait is over already. A poke that came
 * while it was read may be for rows it did not see: checked again then. */
static bool job_park(api_job *j)
{
    api *a = j->a;
    const Rackboot__V1__EventsRequest *req = j->req->events;
    uint64_t deadline_ms = j->since_ms + req->max_wait_ms;
    if (j->found != 0 || j->rc.rep.status != RACKBOOT__V1__STATUS__STATUS_OK ||
        req->max_wait_ms == 0 || deadline_ms <= now_monotonic_ms() || !job_caller_here(j)) {
        return false;
    }
    parked *p = park(a, j->ep, j->call, req, deadline_ms);
    if (!p) {
        return false;
    }
    bool poked = a->pokes != j->pokes;
    j->call = NULL; /* the poll's now */
    api_job_free(j);
    if (poked) {
        poll_check(a, p);
    }
    return true;
}

static void job_done(void *arg, int status)
{
    api_job *j = arg;
    api *a = j->a;
    a->jobs--;
    if (status < 0) {
        job_cancelled(j);
        return;
    }
    if (per_host_more(&j->rc)) {
        /* Agents get each slice as it lands; the queue serves whatever
         * came meanwhile before the next one. The caller gone, it goes on:
         * half a fleet reinstalled is worse than all of it. */
        if (j->rc.wrote && a->hub) {
            hub_poke(a->hub);
        }
        j->rc.wrote = false;
        job_run(a, job_slice, job_done, j);
        return;
    }
    if (j->rc.audit) {
        log_write(j);
    }
    request_after(a, &j->rc);
    if (j->rc.verb && job_caller_here(j)) {
        job_run(a, job_rows, job_rows_done, j);
        return;
    }
    if (j->req->body_case == RACKBOOT__V1__API_REQUEST__BODY_EVENTS && job_park(j)) {
        return;
    }
    job_end(j);
}

/* The audit log's verb: the kind's, with the action of a power request
 * ("power cycle"). */
static const char *audit_verb(const request_kind *kind, const Rackboot__V1__ApiRequest *req)
{
    if (req->body_case != RACKBOOT__V1__API_REQUEST__BODY_POWER) {
        return kind->verb;
    }
    switch (req->power->action) {
    case RACKBOOT__V1__POWER_ACTION__POWER_ACTION_STATUS:
        return "power status";
    case RACKBOOT__V1__POWER_ACTION__POWER_ACTION_ON:
        return "power on";
    case RACKBOOT__V1__POWER_ACTION__POWER_ACTION_OFF:
        return "power off";
    case RACKBOOT__V1__POWER_ACTION__POWER_ACTION_CYCLE:
        return "power cycle";
    case RACKBOOT__V1__POWER_ACTION__POWER_ACTION_SOFT:
        return "power soft";
    default:
        return kind->verb;
    }
}

/* Hands a request to the store queue (a refused write: its audit row),
 * taking `req` and the reply's arena; it is answered later. */
static void request_submit(api *a, endpoint *ep, rpc_call *call, Rackboot__V1__ApiRequest *req,
                           reply_ctx *rc, const caller *who, const request_kind *kind, bool refused,
                           api_reply_fn local_done, void *local_userdata)
{
    api_job *j = calloc(1, sizeof(*j));
    if (!j) {
        log_error("api: out of memory for a request");
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_FAILED, "out of memory");
        if (local_done) {
            request_settle(a, rc, (int)req->body_case);
            local_done(local_userdata, &rc->rep);
            rc->a = wire_arena_free(rc->a);
        } else {
            request_end(a, call, rc, (int)req->body_case);
        }
        rbproto_free(&req->base);
        return;
    }
    j->local_done = local_done;
    j->local_userdata = local_userdata;
    j->a = a;
    j->ep = ep;
    j->call = call;
    j->pipe = call ? rpc_call_pipe(call) : 0;
    j->req = req;
    j->who = *who;
    j->audit = (audit_ctx){
        .who = &j->who, .verb = audit_verb(kind, req), .req = req, .when = now_realtime_ms()
    };
    j->rc = *rc;
    j->rc.audit = kind->verb ? &j->audit : NULL;
    j->refused = refused;
    j->since_ms = now_monotonic_ms();
    j->pokes = a->pokes;
    j->next = a->running;
    if (a->running) {
        a->running->prev = j;
    }
    a->running = j;
    rc->a = NULL; /* the job's now */
    if (kind->verb || refused) {
        job_run(a, job_work, job_done, j); /* a write, or its refusal's audit row */
    } else {
        job_run_read(a, job_work, job_done, j);
    }
}

/* ---- Dispatch ---------------------------------------------------------- */

/* `rackboot web login`: no store work, answered here. The caller's role
 * carries over: operators and the local socket may write from the page,
 * viewers only see. Logged, not audited: the audit log records writes, and
 * each write made from the page is audited as its signed-in caller. */
static void web_login(api *a, const caller *who, reply_ctx *rc)
{
    if (!a->web_login) {
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE,
                   "the web view is off: set [web] listen in the controller's configuration");
        return;
    }
    char *url = NULL;
    uint64_t expires = 0;
    int r = a->web_login(a->web_userdata, who->who, who->unrestricted, &url, &expires);
    if (r < 0) {
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_FAILED, "cannot issue a login URL: %s",
                   r == -ENOSPC ? "too many are waiting to be used" : errstr(r));
        return;
    }
    Rackboot__V1__WebLogin *m = wire_alloc(rc->a, sizeof(*m));
    char *copy = m ? wire_strdup(rc->a, url) : NULL;
    free(url);
    if (!copy) {
        return; /* request_end() answers "out of memory" */
    }
    rackboot__v1__web_login__init(m);
    m->url = copy;
    m->expires_unix_ms = expires;
    rc->rep.body_case = RACKBOOT__V1__API_REPLY__BODY_WEB_LOGIN;
    rc->rep.web_login = m;
    log_info("api: %s asked for a web login URL", who->who);
}

static void on_request(void *userdata, rpc_call *call)
{
    endpoint *ep = userdata;
    api *a = ep->api;
    size_t len = 0;
    const uint8_t *body = rpc_call_body(call, &len);
    bool trusted = !ep->auth || auth_identity(ep->auth, rpc_call_pipe(call));
    reply_ctx rc = { .a = wire_arena_new(), .rep = RACKBOOT__V1__API_REPLY__INIT };
    if (!rc.a) {
        rpc_call_drop(call);
        return;
    }
    rc.rep.status = RACKBOOT__V1__STATUS__STATUS_OK;
    Rackboot__V1__ApiRequest *req = NULL;
    int r = rbproto_unpack_api_request(
        body, len, trusted ? RBPROTO_MAX_MESSAGE : RBPROTO_MAX_UNAUTHENTICATED, &req);
    if (r < 0) {
        if (log_ratelimit_ok(&a->bad_rl, now_monotonic_ms(), NULL)) {
            log_warn("api: malformed request (%zu bytes): %s", len, errstr(r));
        }
        set_status(&rc, RACKBOOT__V1__STATUS__STATUS_INVALID, "malformed request: %s", errstr(r));
    } else if (req->body_case == RACKBOOT__V1__API_REQUEST__BODY_AUTH_HELLO ||
               req->body_case == RACKBOOT__V1__API_REQUEST__BODY_AUTH_PROOF) {
        handle_auth(ep, call, req, &rc);
    } else if (!trusted) {
        set_status(&rc, RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED,
                   "prove the connection's identity first");
    } else {
        caller who;
        caller_of(ep, rpc_call_pipe(call), &who);
        const request_kind *kind = request_kind_of(req->body_case);
        bool refused = !caller_may(&who, kind);
        if (refused) {
            const char *denied = kind && kind->denied ? kind->denied : "make this request";
            log_warn("api: %s refused: may not %s", who.who, denied);
            set_status(&rc, RACKBOOT__V1__STATUS__STATUS_PERMISSION_DENIED,
                       "permission denied: %s may not %s", who.role, denied);
        } else if (!kind) {
            set_status(&rc, RACKBOOT__V1__STATUS__STATUS_INVALID, "unknown request");
        }
        if (!refused && req->body_case == RACKBOOT__V1__API_REQUEST__BODY_WEB_LOGIN) {
            web_login(a, &who, &rc);
        } else if (kind && (!refused || kind->verb)) {
            request_submit(a, ep, call, req, &rc, &who, kind, refused, NULL, NULL);
            return;
        }
    }
    request_end(a, call, &rc, req ? (int)req->body_case : 0);
    rbproto_free(req ? &req->base : NULL);
}

int api_submit_as(api *a, const char *who, bool unrestricted, const uint8_t *buf, size_t len,
                  api_reply_fn done, void *userdata)
{
    Rackboot__V1__ApiRequest *req = NULL;
    int r = rbproto_unpack_api_request(buf, len, RBPROTO_MAX_MESSAGE, &req);
    if (r < 0) {
        return r;
    }
    if (req->body_case != RACKBOOT__V1__API_REQUEST__BODY_INSTALL &&
        req->body_case != RACKBOOT__V1__API_REQUEST__BODY_CANCEL) {
        rbproto_free(&req->base);
        return -EINVAL;
    }
    caller c = { .role = unrestricted ? "operator" : "viewer", .unrestricted = unrestricted };
    snprintf(c.who, sizeof(c.who), "%s", who);
    const request_kind *kind = request_kind_of(req->body_case);
    reply_ctx rc = { .a = wire_arena_new(), .rep = RACKBOOT__V1__API_REPLY__INIT };
    if (!rc.a) {
        rbproto_free(&req->base);
        return -ENOMEM;
    }
    rc.rep.status = RACKBOOT__V1__STATUS__STATUS_OK;
    bool refused = !caller_may(&c, kind);
    if (refused) {
        log_warn("api: %s refused: may not %s", c.who, kind->denied);
        set_status(&rc, RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED,
                   "permission denied: %s may not %s", c.role, kind->denied);
    }
    /* The refused attempt is audited as well, as on the sockets. */
    request_submit(a, NULL, NULL, req, &rc, &c, kind, refused, done, userdata);
    return 0;
}

/* Answers a request that ran (of ApiRequest body case `body`, 0 when it
 * could not be read), counts it, and frees the reply's arena. */
static void request_settle(api *a, reply_ctx *rc, int body)
{
    if (wire_arena_failed(rc->a)) {
        set_status(rc, RACKBOOT__V1__STATUS__STATUS_FAILED, "out of memory");
    }
    /* Errors carry no rows, except install / cancel's per-host StatusList
     * (rackboot.proto, ApiReply). */
    bool per_host = rc->rep.status == RACKBOOT__V1__STATUS__STATUS_FAILED &&
                    rc->rep.body_case == RACKBOOT__V1__API_REPLY__BODY_STATUSES;
    if (rc->rep.status != RACKBOOT__V1__STATUS__STATUS_OK && !per_host) {
        rc->rep.body_case = RACKBOOT__V1__API_REPLY__BODY__NOT_SET;
    }
    a->answered[verb_of(body)][result_of(rc->rep.status)]++;
}

static void request_end(api *a, rpc_call *call, reply_ctx *rc, int body)
{
    request_settle(a, rc, body);
    send_reply(call, &rc->rep);
    rc->a = wire_arena_free(rc->a);
}

/* The answer of an api_submit_as() request: to its callback. */
static void request_end_local(api *a, api_job *j)
{
    request_settle(a, &j->rc, (int)j->req->body_case);
    j->local_done(j->local_userdata, &j->rc.rep);
    j->rc.a = wire_arena_free(j->rc.a);
}

/* Forgets the connection: its identity, its parked polls (a poll whose
 * check is on the queue is freed by that check) and its requests on the
 * queue (they will not be answered). */
static void on_pipe_closed(void *userdata, uint32_t pipe)
{
    endpoint *ep = userdata;
    api *a = ep->api;
    if (ep->auth) {
        auth_pipe_closed(ep->auth, pipe);
    }
    for (api_job *j = a->running; j; j = j->next) {
        if (j->ep == ep && j->pipe == pipe) {
            j->closed = true;
        }
    }
    for (parked *p = a->parked, *next; p; p = next) {
        next = p->next;
        if (p->ep != ep || p->pipe != pipe) {
            continue;
        }
        rpc_call_drop(p->call);
        p->call = NULL;
        if (p->checking) {
            park_unlink(a, p);
            p->gone = true;
        } else {
            park_remove(a, p);
        }
    }
}

int api_cut_revoked(api *a)
{
    endpoint *ep = &a->operators;
    if (!ep->auth) {
        return 0; /* no operators_listen: only the local socket */
    }
    uint32_t *pipes = NULL;
    size_t n = 0;
    int r = auth_revoked_pipes(ep->auth, &pipes, &n);
    if (r < 0) {
        return r;
    }
    for (size_t i = 0; i < n; i++) {
        const auth_peer *peer = auth_identity(ep->auth, pipes[i]);
        log_warn("api: certificate of %s%s%s revoked: closing connection %u",
                 peer ? pki_role_to_string(peer->id.role) : "an unproven operator connection",
                 peer ? " " : "", peer ? peer->id.name : "", pipes[i]);
        /* Forget it first (its identity and parked polls): nothing the loop
         * handles after this answers it, whatever nng still delivers before
         * the close takes effect. */
        on_pipe_closed(ep, pipes[i]);
        rpc_server_close_pipe(ep->rpc, pipes[i]);
    }
    free(pipes);
    return (int)n;
}

/* ---- Lifecycle --------------------------------------------------------- */

static int endpoint_open(api *a, endpoint *ep, uv_loop_t *loop, const char *url,
                         nng_tls_config *tls, pki_verifier *v, char **ret_error)
{
    ep->api = a;
    int r = 0;
    if (v) {
        r = auth_new(v, PKI_ROLE_OPERATOR, &ep->auth);
    }
    rpc_handlers hs = { .request = on_request, .pipe_closed = on_pipe_closed };
    if (r >= 0) {
        r = rpc_server_new(loop, &hs, ep, RBPROTO_MAX_MESSAGE, &ep->rpc);
    }
    if (r >= 0) {
        /* The local socket starts out its owner's alone; ipc_share() may
         * then open it to a group. */
        r = rpc_server_listen(ep->rpc, url, tls, tls ? 0 : 0600, ret_error);
    }
    return r;
}

/* The gid of `name`, -ENOENT when there is no such group. */
static int group_lookup(const char *name, gid_t *ret)
{
    long max = sysconf(_SC_GETGR_R_SIZE_MAX);
    size_t size = max > 0 ? (size_t)max : 16384;
    for (;;) {
        _cleanup_free_ char *buf = malloc(size);
        if (!buf) {
            return -ENOMEM;
        }
        struct group g, *found = NULL;
        int e = getgrnam_r(name, &g, buf, size, &found);
        if (e == ERANGE && size < (1u << 20)) {
            size *= 2;
            continue;
        }
        if (e != 0) {
            return -e;
        }
        if (!found) {
            return -ENOENT;
        }
        *ret = g.gr_gid;
        return 0;
    }
}

/* Whoever can open the local socket drives the fleet: root (its owner) and
 * the members of group rackboot (0660, group-owned) when that group exists;
 * otherwise its owner alone (0600). */
static int ipc_share(const char *url, char **ret_error)
{
    const char *path = url + strlen("ipc://");
    gid_t gid = 0;
    int r = group_lookup(API_GROUP, &gid);
    if (r == -ENOENT) {
        log_info("api: no group %s: %s is for its owner only (mode 0600); create the group "
                 "to let its members use the rackboot CLI here",
                 API_GROUP, path);
        return 0;
    }
    if (r < 0) {
        if (asprintf(ret_error, "looking up group %s: %s", API_GROUP, errstr(r)) < 0) {
            *ret_error = NULL;
        }
        return r;
    }
    if (chown(path, (uid_t)-1, gid) < 0 || chmod(path, 0660) < 0) {
        r = negative_errno();
        if (asprintf(ret_error, "%s: cannot give it to group %s: %s", path, API_GROUP, errstr(r)) <
            0) {
            *ret_error = NULL;
        }
        return r;
    }
    log_info("api: %s is for its owner and group %s (mode 0660)", path, API_GROUP);
    return 0;
}

int api_new(uv_loop_t *loop, hub *hb, const api_config *cfg, api **ret, char **ret_error)
{
    if (!cfg->queue || (cfg->n_read_queues > 0 && !cfg->read_queues)) {
        return -EINVAL;
    }
    api *a = calloc(1, sizeof(*a));
    if (!a) {
        return -ENOMEM;
    }
    a->queue = cfg->queue;
    a->read_queues = cfg->read_queues;
    a->n_read_queues = cfg->n_read_queues;
    a->web_login = cfg->web_login;
    a->on_installs_changed = cfg->on_installs_changed;
    a->installs_userdata = cfg->installs_userdata;
    a->web_userdata = cfg->web_userdata;
    a->hub = hb;
    a->bad_rl = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 20);
    int r = uv_timer_init(loop, &a->tick);
    if (r >= 0) {
        a->tick_open = true;
        a->tick.data = a;
        r = uv_timer_start(&a->tick, on_tick, PARK_TICK_MS, PARK_TICK_MS);
    }
    if (r >= 0) {
        r = endpoint_open(a, &a->local, loop, cfg->ipc_listen, NULL, NULL, ret_error);
    }
    if (r >= 0) {
        r = ipc_share(cfg->ipc_listen, ret_error);
    }
    if (r >= 0 && cfg->operators_listen) {
        r = endpoint_open(a, &a->operators, loop, cfg->operators_listen, cfg->tls, cfg->verifier,
                          ret_error);
    }
    if (r < 0) {
        api_free(a);
        return r;
    }
    *ret = a;
    return 0;
}

static void free_after_close(uv_handle_t *handle)
{
    free(handle->data);
}

api *api_free(api *a)
{
    if (!a) {
        return NULL;
    }
    /* Its jobs hold calls of its servers, and parked polls being checked:
     * the queue goes first (its -ECANCELED ends them). */
    RB_ASSERT(a->jobs == 0 && !a->running);
    while (a->parked) {
        rpc_call_drop(a->parked->call);
        park_remove(a, a->parked);
    }
    rpc_server_free(a->local.rpc);
    rpc_server_free(a->operators.rpc);
    auth_free(a->operators.auth);
    if (a->tick_open) {
        uv_close((uv_handle_t *)&a->tick, free_after_close);
    } else {
        free(a);
    }
    return NULL;
}

int api_operators_port(const api *a)
{
    return a->operators.rpc ? rpc_server_bound_port(a->operators.rpc) : 0;
}

/* fleet_events: the rules over agents' events (see store.h): journals,
 * de-duplication and refusal, applying events to installs through
 * install_fsm, stored_through; then status, history, retention and the
 * audit log. */
#include "fleet-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rbproto.h"
#include "util.h"

/* ---- Journals ---------------------------------------------------------- */

static int agent_journal_tx(store *s, const char *rack, unsigned instance, const char *journal_id)
{
    int64_t rack_id;
    char held[RBPROTO_MAX_ID + 1];
    TRY(fleet_found(s, s->ops->rack_find(s->be, rack, &rack_id, NULL), "rack", rack));
    TRY(s->ops->agent_ensure(s->be, rack_id, instance));
    TRY(s->ops->agent_journal_get(s->be, rack_id, instance, held, sizeof(held)));
    if (streq(held, journal_id)) {
        return 0;
    }
    /* The first id on record is adopted as is (an agent that sent none
     * before); any other change is a new journal. */
    bool new_epoch = *held != '\0';
    TRY(s->ops->agent_journal_set(s->be, rack_id, instance, journal_id, new_epoch));
    return new_epoch ? 1 : 0;
}

int store_agent_journal(store *s, const char *rack, unsigned instance, const char *journal_id)
{
    s->errmsg[0] = '\0';
    TRY(fleet_agent_instance_check(s, instance));
    if (!journal_id || strlen(journal_id) > RBPROTO_MAX_ID) {
        return fleet_fail(s, -EINVAL, "invalid journal id");
    }
    if (!*journal_id) {
        return 0;
    }
    TRY(fleet_tx_begin(s));
    return fleet_tx_end(s, agent_journal_tx(s, rack, instance, journal_id));
}

/* ---- Events ------------------------------------------------------------ */

const char *store_event_result_to_string(store_event_result r)
{
    switch (r) {
    case STORE_EVENT_STORED:
        return "stored";
    case STORE_EVENT_DUPLICATE:
        return "duplicate";
    case STORE_EVENT_REFUSED_HOST:
        return "refused_host";
    case STORE_EVENT_REFUSED_INSTALL:
        return "refused_install";
    case STORE_EVENT_REFUSED_INVALID:
        return "refused_invalid";
    }
    return NULL;
}

/* Whether the event may be applied (STORED, with its install), or why it is
 * refused (*ret_why); *ret_err < 0 when the backend failed. */
static store_event_result event_check(store *s, int64_t rack_id, const store_event *e,
                                      store_install_ref *ret_install, int64_t *ret_host_id,
                                      const char **ret_why, int *ret_err)
{
    install_state target;
    *ret_err = 0;
    bool power = rbproto_phase_is_power(e->phase);
    bool has_install = e->install_id && *e->install_id;
    if ((!has_install && !power) || !e->host || install_phase_target(e->phase, &target) < 0 ||
        e->percent > 100 || (e->message && strlen(e->message) > RBPROTO_MAX_LINE) ||
        (!power && ((e->power_id && *e->power_id) || e->power_state))) {
        *ret_why = "invalid event";
        return STORE_EVENT_REFUSED_INVALID;
    }
    if (e->phase == RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED &&
        (!e->mac || !e->duid || e->duid_len < RBPROTO_DUID_MIN || e->duid_len > RBPROTO_DUID_MAX)) {
        *ret_why = "duid_learned without mac and duid";
        return STORE_EVENT_REFUSED_INVALID;
    }
    int64_t host_id, host_rack;
    int r = s->ops->host_find(s->be, e->host, &host_id, &host_rack);
    if (r < 0) {
        *ret_err = r;
        return 0;
    }
    if (r == 0 || host_rack != rack_id) {
        *ret_why = "host not in the agent's rack";
        return STORE_EVENT_REFUSED_HOST;
    }
    *ret_host_id = host_id;
    if (!has_install) {
        return STORE_EVENT_STORED; /* a host's power event */
    }
    r = s->ops->install_find(s->be, e->install_id, ret_install);
    if (r < 0) {
        *ret_err = r;
        return 0;
    }
    if (r == 0 || ret_install->host_id != host_id) {
        *ret_why = "unknown install for this host";
        return STORE_EVENT_REFUSED_INSTALL;
    }
    if (e->phase == RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED) {
        int64_t mac_host;
        r = s->ops->mac_find(s->be, e->mac, &mac_host);
        if (r < 0) {
            *ret_err = r;
            return 0;
        }
        if (r == 0 || mac_host != host_id) {
            *ret_why = "duid_learned for a mac of another host";
            return STORE_EVENT_REFUSED_INVALID;
        }
    }
    return STORE_EVENT_STORED;
}

/* Phases that describe where the host is, in the order a host goes
 * through them: the status shows the furthest one seen. A switch, not a
 * range of the enum: a phase added to the proto must be placed here on
 * purpose (-Wswitch names this function until it is). */
/* Where a phase stands in an install's progress, from 1 (dhcp_bound) on;
 * 0 for notes (duid_learned, images_cached, ...), which show no progress.
 * The order is spelled out, not the enum's numbers: a phase appended to the
 * proto is caught here by -Wswitch and placed where it belongs. */
static unsigned phase_progress_rank(Rackboot__V1__Phase p)
{
    switch (p) {
    case RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND:
        return 1;
    case RACKBOOT__V1__PHASE__PHASE_SCRIPT_SERVED:
        return 2;
    case RACKBOOT__V1__PHASE__PHASE_KERNEL_FETCHED:
        return 3;
    case RACKBOOT__V1__PHASE__PHASE_INITRD_FETCHED:
        return 4;
    case RACKBOOT__V1__PHASE__PHASE_OVERLAY_FETCHED:
        return 5;
    case RACKBOOT__V1__PHASE__PHASE_KICKSTART_FETCHED:
        return 6;
    case RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS:
        return 7;
    case RACKBOOT__V1__PHASE__PHASE_INSTALLING:
    case RACKBOOT__V1__PHASE__PHASE_WRITING: /* the image deploy's installing */
        return 8;
    case RACKBOOT__V1__PHASE__PHASE_WRITTEN:
        return 9;
    case RACKBOOT__V1__PHASE__PHASE_INSTALLED:
    case RACKBOOT__V1__PHASE__PHASE_FIRST_BOOT:
        return 10;
    case RACKBOOT__V1__PHASE__PHASE_FAILED:
        return 11;
    case RACKBOOT__V1__PHASE__PHASE_UNSPECIFIED:
    case RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED:
    case RACKBOOT__V1__PHASE__PHASE_IMAGES_CACHED:
    case RACKBOOT__V1__PHASE__PHASE_IMAGES_FAILED:
    case RACKBOOT__V1__PHASE__PHASE_BOOTDEV_SET:
    case RACKBOOT__V1__PHASE__PHASE_POWER_ON:
    case RACKBOOT__V1__PHASE__PHASE_POWER_OFF:
    case RACKBOOT__V1__PHASE__PHASE_POWER_CYCLE:
    case RACKBOOT__V1__PHASE__PHASE_POWER_STATUS:
    case RACKBOOT__V1__PHASE__PHASE_POWER_FAILED:
    case _RACKBOOT__V1__PHASE_IS_INT_SIZE:
        break;
    }
    return 0;
}

static bool phase_is_progress(Rackboot__V1__Phase p)
{
    return phase_progress_rank(p) > 0;
}

/* The milestone (store.h) the event takes its install to, if any: its
 * first dhcp_bound (status shows no progress yet; a host that reboots in
 * the middle of an install binds again, and that is not a new start), or
 * installed. */
static store_milestone event_milestone(const store_event *e, const store_install_ref *in,
                                       bool moved, install_state next)
{
    if (in->dispatched_ms == 0) {
        return STORE_MILESTONE_NONE;
    }
    if (moved && next == INSTALL_INSTALLED) {
        return STORE_MILESTONE_INSTALLED;
    }
    if (e->phase == RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND && install_state_is_active(in->state) &&
        phase_progress_rank(in->phase) == 0) {
        return STORE_MILESTONE_DHCP_BOUND;
    }
    return STORE_MILESTONE_NONE;
}

/* ---- An event batch ----------------------------------------------------
 *
 * A batch is handled event by event, in order, as the rules above say;
 * what they ask the backend is gathered where the answer does not depend
 * on the batch's own writes, so that a batch costs a few statements and
 * not a few per event (on PostgreSQL each was a round trip and a
 * statement to run: deploy/HA.md):
 *   - the keys it holds that are already stored: one range query
 *     (events_stored_in); the rows of the others then need no answer and
 *     go together (event_insert without ret_inserted);
 *   - the hosts and installs it names, read ahead (lookups_prime);
 *   - the progress phases other agents reported for its installs
 *     (events_phases_elsewhere): nobody else writes events during the
 *     transaction (SQLite's one writer, PostgreSQL's writer lock);
 *   - what status shows of an install (phase, percent, message): every
 *     event rewrote it and the last write won, so it is written once per
 *     install at the end (install_note), and the events in between read
 *     the install's phase as the batch has left it. */

/* What status will show of an install the batch spoke about. */
typedef struct install_note {
    int64_t id;
    bool progress; /* phase and percent too, else the message only */
    Rackboot__V1__Phase phase;
    uint32_t percent;
    const char *message; /* the event's: lives as long as the batch */
    uint64_t now;
} install_note;

/* A progress phase of an install that another agent reported. */
typedef struct phase_key {
    int64_t install_id;
    Rackboot__V1__Phase phase;
} phase_key;

typedef struct ingest_batch {
    store *s;
    int64_t rack_id;
    unsigned instance;
    const store_event *events;
    size_t n;
    uint64_t through; /* the agent's stored_through before the batch */
    uint64_t high;    /* the highest seq of the events handled so far */
    uint64_t *stored; /* keys of the batch's range already stored, ascending */
    size_t n_stored, cap_stored;
    phase_key *elsewhere; /* sorted (phase_key_cmp) */
    size_t n_elsewhere, cap_elsewhere;
    install_note *notes; /* n of room: one per install at most */
    size_t n_notes;
} ingest_batch;

static void ingest_batch_done(ingest_batch *b)
{
    free(b->stored);
    free(b->elsewhere);
    free(b->notes);
}

/* Whether the batch's event i may be keyed and is new to the agent's
 * stored_through: the events the batch reads ahead for. */
static bool event_is_candidate(const ingest_batch *b, size_t i)
{
    uint64_t seq = b->events[i].seq;
    return seq != 0 && seq <= INT64_MAX && seq > b->through;
}

static int grow(void **array, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) {
        return 0;
    }
    size_t c = *cap ? *cap * 2 : 16;
    void *a = reallocarray(*array, c, size);
    if (!a) {
        return -ENOMEM;
    }
    *array = a;
    *cap = c;
    return 0;
}

static int stored_add(uint64_t seq, void *userdata)
{
    ingest_batch *b = userdata;
    TRY(grow((void **)&b->stored, &b->cap_stored, b->n_stored, sizeof(*b->stored)));
    b->stored[b->n_stored++] = seq;
    return 0;
}

static int phase_key_cmp(const void *x, const void *y)
{
    const phase_key *a = x, *b = y;
    if (a->install_id != b->install_id) {
        return a->install_id < b->install_id ? -1 : 1;
    }
    return (a->phase > b->phase) - (a->phase < b->phase);
}

static int u64_cmp(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

static int elsewhere_add(int64_t install_id, Rackboot__V1__Phase phase, void *userdata)
{
    ingest_batch *b = userdata;
    TRY(grow((void **)&b->elsewhere, &b->cap_elsewhere, b->n_elsewhere, sizeof(*b->elsewhere)));
    b->elsewhere[b->n_elsewhere++] = (phase_key){ install_id, phase };
    return 0;
}

/* Appends `v` to list[0..*n) unless there. A scan: a batch names the
 * hosts of one rack (tens), each many times, and the first look is at the
 * last one added. */
static void distinct_add(const char **list, size_t *n, const char *v)
{
    for (size_t i = *n; i-- > 0;) {
        if (streq(list[i], v)) {
            return;
        }
    }
    list[(*n)++] = v;
}

static bool id_seen(const int64_t *ids, size_t n, int64_t id)
{
    for (size_t i = n; i-- > 0;) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

/* The reads ahead (see above), for the events past stored_through. */
static int ingest_read_ahead(ingest_batch *b)
{
    store *s = b->s;
    uint64_t upto = 0;
    size_t n_cand = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (event_is_candidate(b, i)) {
            upto = b->events[i].seq > upto ? b->events[i].seq : upto;
            n_cand++;
        }
    }
    if (n_cand == 0) {
        return 0; /* a batch sent again: all duplicates */
    }
    /* in order (backend.h), as bsearch() wants them */
    TRY(s->ops->events_stored_in(s->be, b->rack_id, b->instance, b->through, upto, stored_add, b));

    _cleanup_free_ const char **hosts = calloc(n_cand, sizeof(*hosts));
    _cleanup_free_ const char **uuids = calloc(n_cand, sizeof(*uuids));
    _cleanup_free_ int64_t *ids = calloc(n_cand, sizeof(*ids));
    if (!hosts || !uuids || !ids) {
        return -ENOMEM;
    }
    size_t n_hosts = 0, n_uuids = 0, n_ids = 0;
    for (size_t i = 0; i < b->n; i++) {
        const store_event *e = &b->events[i];
        if (!event_is_candidate(b, i) || !e->host) {
            continue;
        }
        distinct_add(hosts, &n_hosts, e->host);
        if (e->install_id && *e->install_id && phase_is_progress(e->phase)) {
            distinct_add(uuids, &n_uuids, e->install_id);
        }
    }
    if (s->ops->lookups_prime) {
        TRY(s->ops->lookups_prime(s->be, &(store_lookahead){ .hosts = hosts,
                                                             .n_hosts = n_hosts,
                                                             .installs = uuids,
                                                             .n_installs = n_uuids }));
    }
    for (size_t i = 0; i < n_uuids; i++) {
        store_install_ref in;
        int r = s->ops->install_find(s->be, uuids[i], &in);
        TRY(r);
        if (r == 1 && !id_seen(ids, n_ids, in.id)) {
            ids[n_ids++] = in.id;
        }
    }
    TRY(s->ops->events_phases_elsewhere(s->be, b->rack_id, b->instance, ids, n_ids, elsewhere_add,
                                        b));
    if (b->n_elsewhere > 1) {
        qsort(b->elsewhere, b->n_elsewhere, sizeof(*b->elsewhere), phase_key_cmp);
    }
    return 0;
}

/* Whether event i's key is taken: stored before the batch, or by an
 * earlier event of it (an agent sends a seq once: a repeat is a broken
 * batch, and counts once). */
static bool event_key_taken(const ingest_batch *b, size_t i)
{
    uint64_t seq = b->events[i].seq;
    if (b->n_stored > 0 && bsearch(&seq, b->stored, b->n_stored, sizeof(*b->stored), u64_cmp)) {
        return true;
    }
    for (size_t j = 0; seq <= b->high && j < i; j++) {
        if (b->events[j].seq == seq) {
            return true;
        }
    }
    return false;
}

/* Whether the event repeats a progress phase of its install that another
 * agent of the rack reported (store.h): then it is a duplicate. */
static bool event_reported_elsewhere(const ingest_batch *b, const store_event *e,
                                     const store_install_ref *in)
{
    if (!phase_is_progress(e->phase)) {
        return false; /* notes, power: each agent's own */
    }
    phase_key k = { in->id, e->phase };
    return b->n_elsewhere > 0 &&
           bsearch(&k, b->elsewhere, b->n_elsewhere, sizeof(k), phase_key_cmp) != NULL;
}

static install_note *note_of(ingest_batch *b, int64_t install_id, bool add)
{
    for (size_t i = b->n_notes; i-- > 0;) {
        if (b->notes[i].id == install_id) {
            return &b->notes[i];
        }
    }
    if (!add) {
        return NULL;
    }
    RB_ASSERT(b->n_notes < b->n);
    install_note *n = &b->notes[b->n_notes++];
    *n = (install_note){ .id = install_id };
    return n;
}

static void note_progress(ingest_batch *b, int64_t install_id, Rackboot__V1__Phase phase,
                          uint32_t percent, const char *message, uint64_t now)
{
    install_note *n = note_of(b, install_id, true);
    n->progress = true;
    n->phase = phase;
    n->percent = percent;
    n->message = message;
    n->now = now;
}

static void note_message(ingest_batch *b, int64_t install_id, const char *message, uint64_t now)
{
    install_note *n = note_of(b, install_id, true);
    n->message = message;
    n->now = now;
}

/* The install as this batch has left it so far: its phase is the last
 * one noted. */
static void install_as_noted(ingest_batch *b, store_install_ref *in)
{
    const install_note *n = note_of(b, in->id, false);
    if (n && n->progress) {
        in->phase = n->phase;
    }
}

static int notes_write(ingest_batch *b)
{
    store *s = b->s;
    for (size_t i = 0; i < b->n_notes; i++) {
        const install_note *n = &b->notes[i];
        if (n->progress) {
            TRY(s->ops->install_set_progress(s->be, n->id, n->phase, n->percent, n->message,
                                             n->now));
        } else {
            TRY(s->ops->install_set_message(s->be, n->id, n->message, n->now));
        }
    }
    return 0;
}

static int event_apply(ingest_batch *b, const store_event *e, const store_install_ref *in,
                       uint64_t now, bool *bump, store_event_timing *timing)
{
    store *s = b->s;
    install_state next = in->state;
    /* A Debian installer's `installed` keeps its install going until the
     * first boot phones home (install_fsm.h). */
    int r = fleet_install_apply(s, in->id, in->state, INSTALL_INPUT_EVENT,
                                install_phase_read_as(e->phase, in->ending), now, NULL, &next);
    TRY(r);
    bool moved = r == 1;
    if (moved && (next == INSTALL_INSTALLED || next == INSTALL_FAILED)) {
        *bump = true; /* withdraw the intent */
    }
    if (timing) {
        timing->milestone = event_milestone(e, in, moved, next);
        timing->since_dispatch_ms = now > in->dispatched_ms ? now - in->dispatched_ms : 0;
    }
    if (e->phase == RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED) {
        TRY(s->ops->duid_put(s->be, e->duid, e->duid_len, e->mac, now));
    }
    /* What status shows: a terminal install keeps its final phase; an active
     * one shows the furthest progress phase (a late kernel_fetched does not
     * replace installing), and notes (images_cached, duid_learned, ...)
     * update only its message. */
    const char *message = e->message ? e->message : "";
    if (moved || (install_state_is_active(next) && phase_is_progress(e->phase) &&
                  phase_progress_rank(e->phase) >= phase_progress_rank(in->phase))) {
        bool done = e->phase == RACKBOOT__V1__PHASE__PHASE_INSTALLED ||
                    e->phase == RACKBOOT__V1__PHASE__PHASE_FIRST_BOOT;
        note_progress(b, in->id, e->phase, done ? 100 : e->percent, message, now);
    } else if (install_state_is_active(next) && !phase_is_progress(e->phase)) {
        note_message(b, in->id, message, now);
    }
    return 0; /* otherwise late: recorded in events only */
}

/* A power event: the host's power state, the command it ends (withdrawn
 * from the rack's state: a bump), and the message of the install that
 * asked for it. Never an install's move. */
static int power_event_apply(ingest_batch *b, const store_event *e, int64_t host_id,
                             const store_install_ref *in, uint64_t now, bool *bump)
{
    store *s = b->s;
    const char *message = e->message ? e->message : "";
    if (e->power_state) {
        TRY(s->ops->host_power_set(s->be, host_id, e->power_state, now));
    }
    if (e->power_id && *e->power_id && e->phase != RACKBOOT__V1__PHASE__PHASE_BOOTDEV_SET) {
        store_power_ref p;
        int r = s->ops->power_find(s->be, e->power_id, &p);
        TRY(r);
        if (r == 1 && !p.done && p.host_id == host_id) {
            bool ok = e->phase != RACKBOOT__V1__PHASE__PHASE_POWER_FAILED;
            TRY(s->ops->power_finish(s->be, p.id, ok, e->power_state, message, now));
            *bump = true;
        }
    }
    if (in->id && install_state_is_active(in->state)) {
        note_message(b, in->id, message, now);
    }
    return 0;
}

/* Event i, new to the agent's stored_through: checked, recorded, applied. */
static int ingest_one(ingest_batch *b, size_t i, uint64_t now, bool *bump,
                      store_event_timing *timing, store_event_result *ret)
{
    store *s = b->s;
    const store_event *e = &b->events[i];
    if (event_key_taken(b, i)) {
        *ret = STORE_EVENT_DUPLICATE;
        return 0;
    }
    store_install_ref in = { 0 };
    int64_t host_id = 0;
    const char *why = NULL;
    int err;
    store_event_result res = event_check(s, b->rack_id, e, &in, &host_id, &why, &err);
    TRY(err);
    bool ok = res == STORE_EVENT_STORED, power = rbproto_phase_is_power(e->phase);
    if (in.id) {
        install_as_noted(b, &in);
    }
    if (ok && !power && event_reported_elsewhere(b, e, &in)) {
        *ret = STORE_EVENT_DUPLICATE; /* the other agent's counts; nothing written */
        return 0;
    }
    /* A free key (event_key_taken): the row goes with the batch's. */
    TRY(s->ops->event_insert(s->be, b->rack_id, b->instance, e, ok ? in.id : 0,
                             ok && power ? host_id : 0, now, ok ? NULL : why, NULL));
    *ret = res;
    if (ok && power) {
        TRY(power_event_apply(b, e, host_id, &in, now, bump));
    } else if (ok) {
        TRY(event_apply(b, e, &in, now, bump, timing));
    }
    return ok ? 1 : 0;
}

static int ingest_tx(store *s, int64_t rack_id, unsigned instance, const store_event *events,
                     size_t n, uint64_t now, store_event_result *results,
                     store_event_timing *timings, uint64_t *ret_through)
{
    _cleanup_(ingest_batch_done) ingest_batch b = {
        .s = s,
        .rack_id = rack_id,
        .instance = instance,
        .events = events,
        .n = n,
    };
    int stored = 0;
    bool bump = false;
    int r;

    TRY(s->ops->agent_ensure(s->be, rack_id, instance));
    TRY(s->ops->agent_stored_through(s->be, rack_id, instance, &b.through));
    if (n > 0 && !(b.notes = calloc(n, sizeof(*b.notes)))) {
        return fleet_fail(s, -ENOMEM, "out of memory for an event batch");
    }
    r = ingest_read_ahead(&b);
    if (r == -ENOMEM && !*s->errmsg) {
        return fleet_fail(s, r, "out of memory for an event batch");
    }
    TRY(r);
    for (size_t i = 0; i < n; i++) {
        store_event_timing *timing = timings ? &timings[i] : NULL;
        store_event_result res;
        if (timing) {
            *timing = (store_event_timing){ 0 };
        }
        if (events[i].seq == 0 || events[i].seq > INT64_MAX) {
            res = STORE_EVENT_REFUSED_INVALID; /* cannot be keyed: not kept */
        } else if (!event_is_candidate(&b, i)) {
            res = STORE_EVENT_DUPLICATE; /* at or below stored_through: a re-sent batch */
        } else {
            TRY(r = ingest_one(&b, i, now, &bump, timing, &res));
            stored += r;
            b.high = events[i].seq > b.high ? events[i].seq : b.high;
        }
        if (results) {
            results[i] = res;
        }
    }
    TRY(notes_write(&b));
    uint64_t through = b.through;
    /* A batch is the agent's journal from its oldest unacknowledged event
     * on, in order (rack-agent/journal.h): a seq missing before or between
     * its events no longer exists at the agent (dropped to stay bounded, or
     * lost to damage) and will never come. Once every event of the batch is
     * handled, everything through its last seq is; acknowledging less would
     * make the agent send the same batch for ever. */
    if (n > 0 && events[n - 1].seq > through && events[n - 1].seq <= INT64_MAX) {
        through = events[n - 1].seq;
    }
    /* Then over every seq stored beyond it (none, from our own agent). */
    while ((r = s->ops->event_find(s->be, rack_id, instance, through + 1)) == 1) {
        through++;
    }
    TRY(r);
    TRY(s->ops->agent_stored_set(s->be, rack_id, instance, through, now));
    if (bump) {
        TRY(s->ops->rack_bump(s->be, rack_id));
    }
    if (stored > 0 && s->ops->feed_events_stored) {
        /* `watch` and the web view on the other controllers */
        TRY(s->ops->feed_events_stored(s->be));
    }
    *ret_through = through;
    return stored;
}

int store_events_ingest(store *s, const char *rack, unsigned instance, const store_event *events,
                        size_t n, uint64_t now, store_event_result *results,
                        uint64_t *ret_stored_through)
{
    return store_events_ingest_timed(s, rack, instance, events, n, now, results, NULL,
                                     ret_stored_through);
}

int store_events_ingest_timed(store *s, const char *rack, unsigned instance,
                              const store_event *events, size_t n, uint64_t now,
                              store_event_result *results, store_event_timing *timings,
                              uint64_t *ret_stored_through)
{
    int64_t rack_id;
    uint64_t through = 0;
    s->errmsg[0] = '\0';
    TRY(fleet_agent_instance_check(s, instance));
    if (n > 0 && !events) {
        return fleet_fail(s, -EINVAL, "no events");
    }
    TRY(fleet_tx_begin(s));
    int r = fleet_found(s, s->ops->rack_find(s->be, rack, &rack_id, NULL), "rack", rack);
    if (r >= 0) {
        r = ingest_tx(s, rack_id, instance, events, n, now, results, timings, &through);
    }
    r = fleet_tx_end(s, r);
    if (r >= 0 && ret_stored_through) {
        *ret_stored_through = through;
    }
    return r;
}

/* ---- Status and history ------------------------------------------------ */

static int count_state(install_state state, uint64_t n, void *userdata)
{
    uint64_t *counts = userdata;
    if (state >= INSTALL_STATE_FIRST && state <= INSTALL_STATE_LAST) {
        counts[state] = n;
    }
    return 0;
}

int store_installs_count(store *s, uint64_t ret_counts[INSTALL_STATE_LAST + 1])
{
    uint64_t counts[INSTALL_STATE_LAST + 1] = { 0 };
    s->errmsg[0] = '\0';
    TRY(s->ops->installs_count(s->be, count_state, counts));
    memcpy(ret_counts, counts, sizeof(counts));
    return 0;
}

int store_status_get(store *s, const char *host, int (*cb)(const store_status *st, void *userdata),
                     void *userdata)
{
    s->errmsg[0] = '\0';
    if (!host) {
        return fleet_fail(s, -ENOENT, "no host (null)");
    }
    return fleet_found(s, s->ops->status_get(s->be, host, cb, userdata), "host", host);
}

int store_status_list(store *s, const store_page *page,
                      int (*cb)(const store_status *st, void *userdata), void *userdata)
{
    store_page pg;
    s->errmsg[0] = '\0';
    TRY(fleet_page_check(s, page, &pg));
    return s->ops->status_list(s->be, &pg, cb, userdata);
}

int store_events_last_seq(store *s, uint64_t *ret)
{
    return s->ops->events_last_seq(s->be, ret);
}

int store_events_list(store *s, const char *host, uint64_t after_seq, uint32_t limit,
                      int (*cb)(const store_event_row *e, void *userdata), void *userdata)
{
    int64_t host_id = 0;
    s->errmsg[0] = '\0';
    if (host) {
        TRY(fleet_found(s, s->ops->host_find(s->be, host, &host_id, NULL), "host", host));
    }
    return s->ops->events_list(s->be, host_id, after_seq, limit, cb, userdata);
}

/* ---- Retention --------------------------------------------------------- */

static int prune_tx(store *s, uint64_t now, const store_retention *keep, uint32_t batch)
{
    int deleted = 0;
    if (keep->keep_ms > 0 && now > keep->keep_ms) {
        int n = s->ops->events_prune_received(s->be, now - keep->keep_ms, batch);
        TRY(n);
        deleted += n;
    }
    if (keep->refused_max > 0 && (uint32_t)deleted < batch) {
        int n = s->ops->events_prune_refused(s->be, keep->refused_max, batch - (uint32_t)deleted);
        TRY(n);
        deleted += n;
    }
    return deleted;
}

int store_events_prune(store *s, uint64_t now, const store_retention *keep)
{
    s->errmsg[0] = '\0';
    if (!keep) {
        return fleet_fail(s, -EINVAL, "no retention");
    }
    if (keep->keep_ms == 0 && keep->refused_max == 0) {
        return 0;
    }
    uint32_t batch = keep->batch ? keep->batch : STORE_PRUNE_BATCH;
    TRY(fleet_tx_begin(s));
    return fleet_tx_end(s, prune_tx(s, now, keep, batch));
}

/* ---- Audit log ---------------------------------------------------------- */

/* The first STORE_AUDIT_NAMES_MAX names, space-separated (malloc'd). */
static char *names_join(const char *const *names, size_t n)
{
    n = n < STORE_AUDIT_NAMES_MAX ? n : STORE_AUDIT_NAMES_MAX;
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        len += strlen(names[i]) + 1;
    }
    char *out = malloc(len), *p = out;
    if (!out) {
        return NULL;
    }
    *p = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (i > 0) {
            *p++ = ' ';
        }
        memcpy(p, names[i], l);
        p += l;
        *p = '\0';
    }
    return out;
}

int store_audit_append(store *s, const store_audit *a)
{
    s->errmsg[0] = '\0';
    if (!a || strempty(a->who) || strempty(a->verb)) {
        return fleet_fail(s, -EINVAL, "audit: who and verb are required");
    }
    _cleanup_free_ char *hosts = names_join(a->hosts, a->hosts ? a->n_hosts : 0);
    _cleanup_free_ char *profiles = names_join(a->profiles, a->profiles ? a->n_profiles : 0);
    if (!hosts || !profiles) {
        return -ENOMEM;
    }
    uint64_t host_count = a->host_count > a->n_hosts ? a->host_count : a->n_hosts;
    TRY(fleet_tx_begin(s));
    return fleet_tx_end(s, s->ops->audit_insert(s->be, a, hosts, host_count, profiles));
}

typedef struct audit_page {
    int (*cb)(const store_audit *a, void *userdata);
    void *userdata;
    int count;
} audit_page;

static int audit_row(const store_audit *a, void *userdata)
{
    audit_page *p = userdata;
    int c = p->cb(a, p->userdata);
    if (c == 0) {
        p->count++;
    }
    return c;
}

int store_audit_list(store *s, uint64_t since_ms, uint64_t after_seq, uint32_t limit,
                     int (*cb)(const store_audit *a, void *userdata), void *userdata)
{
    audit_page p = { .cb = cb, .userdata = userdata };
    s->errmsg[0] = '\0';
    int r = s->ops->audit_list(s->be, since_ms, after_seq, limit, audit_row, &p);
    /* > 0: the caller's page is full, the rows taken so far count */
    return r < 0 ? r : p.count;
}

/* The agent's power commands and status poll (powerctl.h). */
#include "powerctl/powerctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "fileio.h"
#include "hashmap.h"
#include "log.h"
#include "rbproto.h"
#include "timeutil.h"
#include "util.h"

/* How often the poll looks for BMCs that are due: a second, or a quarter
 * of a (test's) shorter interval. */
#define POLL_TICK_MS     1000u
#define POLL_TICK_MIN_MS 10u

/* One BMC of the plan, kept across plans so that its last state and its
 * poll schedule survive a new generation. */
typedef struct bmc_entry {
    char *host; /* the key */
    char *url;
    power_target *target; /* NULL: unusable, `unusable` says why */
    char unusable[160];
    model_firmware firmware;
    power_state state;
    bool state_known;
    bool poll_failing; /* the last poll failed (one event per outage) */
    /* The BMC refused the credentials: no more polls until they change
     * (a new plan with other ones), as retrying could lock the account. */
    bool poll_refused;
    bool in_plan;      /* false: dropped from the plan, kept while in flight */
    unsigned inflight; /* jobs submitted and not yet done */
    uint64_t next_poll_ms;
} bmc_entry;

/* A job handed to the executor: a command of the plan, or a poll. */
typedef struct job {
    powerctl *pc;
    char *host;
    char *id; /* the command's; NULL for a poll */
    char *install_id;
    power_request req;
} job;

struct powerctl {
    uv_loop_t *loop;
    powerctl_options opt;
    char *done_path; /* NULL: not persisted */
    powerctl_event_fn fn;
    void *userdata;
    power_executor *ex;
    power_plan *plan;
    hashmap *bmcs;     /* host -> bmc_entry */
    hashmap *inflight; /* command id -> job */
    /* Command ids run, oldest first, in a ring; `done` indexes it. */
    char (*done_ring)[RBPROTO_MAX_ID + 1];
    size_t done_head, done_count;
    hashmap *done;
    unsigned polls_running;
    uv_timer_t poll_timer;
    bool freeing;
    uint64_t rng;
    powerctl_stats stats;
};

/* ---- Small helpers ------------------------------------------------------- */

/* xorshift64*: jitter only, seeded from getrandom(2). */
static uint64_t next_random(powerctl *pc)
{
    pc->rng ^= pc->rng >> 12;
    pc->rng ^= pc->rng << 25;
    pc->rng ^= pc->rng >> 27;
    return pc->rng * UINT64_C(2685821657736338717);
}

static uint64_t random_below(powerctl *pc, uint64_t n)
{
    return n ? next_random(pc) % n : 0;
}

/* The interval, ±25 %. */
static uint64_t jittered(powerctl *pc, uint64_t interval)
{
    return interval - interval / 4 + random_below(pc, interval / 2 + 1);
}

static Rackboot__V1__PowerState wire_state(power_state s)
{
    switch (s) {
    case POWER_STATE_ON:
        return RACKBOOT__V1__POWER_STATE__POWER_STATE_ON;
    case POWER_STATE_OFF:
        return RACKBOOT__V1__POWER_STATE__POWER_STATE_OFF;
    default:
        return RACKBOOT__V1__POWER_STATE__POWER_STATE_UNSPECIFIED;
    }
}

/* The event phase of an action that succeeded. A soft shutdown is only
 * asked for: its event is POWER_OFF with the state read right after, which
 * may still be on. */
static Rackboot__V1__Phase phase_of(power_op op)
{
    switch (op) {
    case POWER_OP_ON:
        return RACKBOOT__V1__PHASE__PHASE_POWER_ON;
    case POWER_OP_OFF:
    case POWER_OP_SOFT:
        return RACKBOOT__V1__PHASE__PHASE_POWER_OFF;
    case POWER_OP_CYCLE:
        return RACKBOOT__V1__PHASE__PHASE_POWER_CYCLE;
    case POWER_OP_STATUS:
    default:
        return RACKBOOT__V1__PHASE__PHASE_POWER_STATUS;
    }
}

static void emit(powerctl *pc, const char *host, const char *id, const char *install_id,
                 Rackboot__V1__Phase phase, power_state state, const char *message)
{
    Rackboot__V1__Event ev = RACKBOOT__V1__EVENT__INIT;
    ev.host = RB_UNCONST(host);
    ev.install_id = RB_UNCONST(install_id ? install_id : "");
    ev.power_id = RB_UNCONST(id ? id : "");
    ev.phase = phase;
    ev.power_state = wire_state(state);
    ev.message = RB_UNCONST(message ? message : "");
    int r = pc->fn(pc->userdata, &ev);
    if (r < 0) {
        pc->stats.events_failed++;
        log_error("power: event host=%s phase=%s power_id=%s not recorded: %s", host,
                  rbproto_phase_to_string(phase), id ? id : "-", errstr(r));
    }
}

/* ---- Done command ids ------------------------------------------------------ */

/* What the wire allows in an id (rbproto.h): the file is read back only
 * through this. */
static bool id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RBPROTO_MAX_ID) {
        return false;
    }
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static bool is_done(const powerctl *pc, const char *id)
{
    return hashmap_get(pc->done, id, strlen(id)) != NULL;
}

static int remember_done(powerctl *pc, const char *id)
{
    if (strlen(id) > RBPROTO_MAX_ID || is_done(pc, id)) {
        return 0;
    }
    size_t slot = (pc->done_head + pc->done_count) % POWERCTL_DONE_MAX;
    if (pc->done_count == POWERCTL_DONE_MAX) {
        /* Full: the oldest goes. */
        char *old = pc->done_ring[pc->done_head];
        hashmap_remove(pc->done, old, strlen(old));
        pc->done_head = (pc->done_head + 1) % POWERCTL_DONE_MAX;
        pc->done_count--;
    }
    snprintf(pc->done_ring[slot], sizeof(pc->done_ring[slot]), "%s", id);
    int r = hashmap_put(pc->done, pc->done_ring[slot], strlen(id), pc->done_ring[slot]);
    if (r < 0) {
        return r;
    }
    pc->done_count++;
    return 0;
}

static int save_done(powerctl *pc)
{
    if (!pc->done_path) {
        return 0;
    }
    size_t cap = pc->done_count * (RBPROTO_MAX_ID + 1) + 1, len = 0;
    _cleanup_free_ char *buf = malloc(cap);
    if (!buf) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < pc->done_count; i++) {
        const char *id = pc->done_ring[(pc->done_head + i) % POWERCTL_DONE_MAX];
        len += (size_t)snprintf(buf + len, cap - len, "%s\n", id);
    }
    return fileio_write_atomic(pc->done_path, buf, len, 0600);
}

static int load_done(powerctl *pc)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    int r = fileio_read_all(pc->done_path, (size_t)POWERCTL_DONE_MAX * (RBPROTO_MAX_ID + 1),
                            (void **)&buf, &len);
    if (r == -ENOENT) {
        return 0;
    }
    if (r < 0) {
        return r;
    }
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (id_valid(line) && (r = remember_done(pc, line)) < 0) {
            return r;
        }
    }
    return 0;
}

/* ---- BMC entries ------------------------------------------------------------ */

static bmc_entry *entry_find(const powerctl *pc, const char *host)
{
    return hashmap_get(pc->bmcs, host, strlen(host));
}

static void entry_free(bmc_entry *e)
{
    if (!e) {
        return;
    }
    power_target_free(e->target);
    free(e->host);
    free(e->url);
    free(e);
}

/* The entry's target from the plan's BMC: the URL (model/bmc.h) and the
 * credentials checked by power/. An unusable one stays, with its reason,
 * so that commands for the host fail with it. */
static void entry_set_target(bmc_entry *e, const power_plan_bmc *b)
{
    e->target = power_target_free(e->target);
    e->unusable[0] = '\0';
    char *why = NULL;
    int r = power_target_parse(b->url, b->user, b->password, &e->target, &why);
    if (r < 0) {
        /* Not the URL itself: it may hold credentials (refused for that). */
        snprintf(e->unusable, sizeof(e->unusable), "BMC URL unusable: %s", why ? why : errstr(r));
        log_warn("power: host=%s %s", e->host, e->unusable);
    }
    free(why);
}

static bool entry_same_bmc(const bmc_entry *e, const power_plan_bmc *b)
{
    if (!streq(e->url, b->url)) {
        return false;
    }
    if (!e->target) {
        return false; /* unusable: parse again, the credentials may be fixed */
    }
    return streq(power_target_user(e->target), b->user) &&
           streq(power_target_password(e->target), b->password);
}

static uint64_t first_poll_delay(powerctl *pc)
{
    uint64_t window = pc->opt.poll_interval_ms;
    if (window > POWERCTL_FIRST_POLL_MAX_MS) {
        window = POWERCTL_FIRST_POLL_MAX_MS;
    }
    return random_below(pc, window + 1);
}

/* Brings the entries in line with the plan's BMCs. */
static void entries_update(powerctl *pc)
{
    uint64_t now = uv_now(pc->loop);
    size_t it = 0;
    void *v;
    while (hashmap_next(pc->bmcs, &it, &v)) {
        ((bmc_entry *)v)->in_plan = false;
    }
    for (size_t i = 0; i < pc->plan->n_bmcs; i++) {
        const power_plan_bmc *b = &pc->plan->bmcs[i];
        bmc_entry *e = entry_find(pc, b->host);
        if (e && entry_same_bmc(e, b)) {
            e->in_plan = true;
            e->firmware = b->firmware;
            continue;
        }
        if (!e) {
            e = calloc(1, sizeof(*e));
            if (!e || !(e->host = strdup(b->host)) ||
                hashmap_put(pc->bmcs, e->host, strlen(e->host), e) < 0) {
                log_error("power: out of memory; host=%s has no BMC on this agent", b->host);
                entry_free(e);
                continue;
            }
        }
        char *url = strdup(b->url);
        if (!url) {
            log_error("power: out of memory; host=%s keeps its previous BMC", b->host);
            continue;
        }
        free(e->url);
        e->url = url;
        e->firmware = b->firmware;
        e->in_plan = true;
        entry_set_target(e, b);
        e->state = POWER_STATE_UNKNOWN;
        e->state_known = false;
        e->poll_failing = false;
        e->poll_refused = false;
        e->next_poll_ms = now + first_poll_delay(pc);
        if (e->target) {
            log_info("power: host=%s bmc=%s", e->host, power_target_to_string(e->target));
        }
    }
    /* Entries whose host left the plan go once nothing runs for them.
     * Removal shifts entries, so collect first. */
    size_t n = hashmap_size(pc->bmcs), n_gone = 0;
    bmc_entry **gone = calloc(n ? n : 1, sizeof(*gone));
    if (!gone) {
        return; /* they stay until the next plan */
    }
    it = 0;
    while (hashmap_next(pc->bmcs, &it, &v)) {
        bmc_entry *e = v;
        if (!e->in_plan && e->inflight == 0) {
            gone[n_gone++] = e;
        }
    }
    for (size_t i = 0; i < n_gone; i++) {
        log_info("power: host=%s no longer has a BMC here", gone[i]->host);
        hashmap_remove(pc->bmcs, gone[i]->host, strlen(gone[i]->host));
        entry_free(gone[i]);
    }
    free(gone);
    pc->stats.bmcs = hashmap_size(pc->bmcs);
}

/* ---- Jobs --------------------------------------------------------------------- */

static job *job_free(job *j)
{
    if (j) {
        free(j->host);
        free(j->id);
        free(j->install_id);
        free(j);
    }
    return NULL;
}

static void run_commands(powerctl *pc);

/* A command's result: remembered as done before its events are recorded,
 * so that a crash in between loses the events (the controller expires the
 * command) rather than running the action twice. */
static void command_done(powerctl *pc, job *j, bmc_entry *e, const power_result *res)
{
    hashmap_remove(pc->inflight, j->id, strlen(j->id));
    int r = remember_done(pc, j->id);
    if (r >= 0) {
        r = save_done(pc);
    }
    if (r < 0) {
        log_error("power: command %s not remembered as done in %s: %s", j->id,
                  pc->done_path ? pc->done_path : "memory", errstr(r));
    }
    const char *op = power_op_to_string(j->req.op);
    if (res->bootdev_set) {
        char what[32];
        snprintf(what, sizeof(what), "%s%s", power_bootdev_to_string(j->req.bootdev),
                 j->req.efi ? " efi" : "");
        emit(pc, j->host, j->id, j->install_id, RACKBOOT__V1__PHASE__PHASE_BOOTDEV_SET,
             POWER_STATE_UNKNOWN, what);
    }
    if (res->err < 0) {
        pc->stats.commands_failed++;
        log_warn("power: command %s host=%s op=%s failed after %u attempt(s): %s", j->id, j->host,
                 op, res->attempts, res->message);
        emit(pc, j->host, j->id, j->install_id, RACKBOOT__V1__PHASE__PHASE_POWER_FAILED,
             POWER_STATE_UNKNOWN, res->message);
        return;
    }
    pc->stats.commands_ok++;
    log_info("power: command %s host=%s op=%s ok state=%s attempts=%u%s%s", j->id, j->host, op,
             power_state_to_string(res->state), res->attempts, *res->message ? ": " : "",
             res->message);
    if (e) {
        e->state = res->state;
        e->state_known = res->state != POWER_STATE_UNKNOWN;
        e->poll_failing = false;
        e->poll_refused = false;
    }
    emit(pc, j->host, j->id, j->install_id, phase_of(j->req.op), res->state,
         *res->message ? res->message : op);
}

static void poll_done(powerctl *pc, job *j, bmc_entry *e, const power_result *res)
{
    pc->polls_running--;
    pc->stats.polls++;
    if (!e) {
        return;
    }
    if (res->err < 0) {
        pc->stats.polls_failed++;
        if (!power_error_is_transient(res->err)) {
            e->poll_refused = true;
            log_warn("power: poll host=%s stopped until its BMC credentials change: %s", j->host,
                     res->message);
        }
        if (!e->poll_failing) {
            e->poll_failing = true;
            log_warn("power: poll host=%s failed: %s", j->host, res->message);
            emit(pc, j->host, NULL, NULL, RACKBOOT__V1__PHASE__PHASE_POWER_FAILED,
                 POWER_STATE_UNKNOWN, res->message);
        }
        return;
    }
    bool changed = !e->state_known || e->state != res->state || e->poll_failing;
    e->poll_failing = false;
    e->state = res->state;
    e->state_known = res->state != POWER_STATE_UNKNOWN;
    if (changed) {
        log_info("power: poll host=%s state=%s", j->host, power_state_to_string(res->state));
        emit(pc, j->host, NULL, NULL, RACKBOOT__V1__PHASE__PHASE_POWER_STATUS, res->state,
             power_state_to_string(res->state));
    }
}

static void on_job_done(void *userdata, const power_result *res)
{
    job *j = userdata;
    powerctl *pc = j->pc;
    bmc_entry *e = entry_find(pc, j->host);
    if (e) {
        e->inflight--;
    }
    if (res->err == -ECANCELED && pc->freeing) {
        /* Not run: the command stays for the next start. */
        if (j->id) {
            hashmap_remove(pc->inflight, j->id, strlen(j->id));
        } else {
            pc->polls_running--;
        }
        job_free(j);
        return;
    }
    if (j->id) {
        command_done(pc, j, e, res);
    } else {
        poll_done(pc, j, e, res);
    }
    if (e && !e->in_plan && e->inflight == 0) {
        hashmap_remove(pc->bmcs, e->host, strlen(e->host));
        entry_free(e);
        pc->stats.bmcs = hashmap_size(pc->bmcs);
    }
    job_free(j);
    if (!pc->freeing) {
        run_commands(pc); /* any that waited for room in the queue */
    }
}

static int submit(powerctl *pc, bmc_entry *e, job *j)
{
    int r = power_executor_submit(pc->ex, e->target, &j->req, on_job_done, j);
    if (r >= 0) {
        e->inflight++;
    }
    return r;
}

/* ---- Commands ---------------------------------------------------------------- */

/* A command that cannot be run at all: done, with the reason as its event. */
static void command_refused(powerctl *pc, const power_plan_command *c, const char *why)
{
    pc->stats.commands_failed++;
    log_warn("power: command %s host=%s op=%s refused: %s", c->id, c->host,
             power_op_to_string(c->op), why);
    int r = remember_done(pc, c->id);
    if (r >= 0) {
        r = save_done(pc);
    }
    if (r < 0) {
        log_error("power: command %s not remembered as done: %s", c->id, errstr(r));
    }
    emit(pc, c->host, c->id, c->install_id, RACKBOOT__V1__PHASE__PHASE_POWER_FAILED,
         POWER_STATE_UNKNOWN, why);
}

static void run_commands(powerctl *pc)
{
    for (size_t i = 0; pc->plan && i < pc->plan->n_commands; i++) {
        const power_plan_command *c = &pc->plan->commands[i];
        if (is_done(pc, c->id) || hashmap_get(pc->inflight, c->id, strlen(c->id))) {
            continue;
        }
        bmc_entry *e = entry_find(pc, c->host);
        if (!e || !e->in_plan) {
            command_refused(pc, c, "host has no BMC on this agent");
            continue;
        }
        if (!e->target) {
            command_refused(pc, c, e->unusable);
            continue;
        }
        job *j = calloc(1, sizeof(*j));
        if (j) {
            j->pc = pc;
            j->host = strdup(c->host);
            j->id = strdup(c->id);
            j->install_id = strdup(c->install_id);
            j->req = (power_request){ .op = c->op, .bootdev = c->bootdev, .efi = c->efi };
        }
        if (!j || !j->host || !j->id || !j->install_id ||
            hashmap_put(pc->inflight, j->id, strlen(j->id), j) < 0) {
            log_error("power: out of memory; command %s waits", c->id);
            job_free(j);
            return;
        }
        int r = submit(pc, e, j);
        if (r == -EAGAIN) {
            /* The queue is full: this one runs when a job ends. */
            hashmap_remove(pc->inflight, j->id, strlen(j->id));
            job_free(j);
            return;
        }
        if (r < 0) {
            hashmap_remove(pc->inflight, j->id, strlen(j->id));
            job_free(j);
            char why[96];
            snprintf(why, sizeof(why), "not started: %s", errstr(r));
            command_refused(pc, c, why);
            continue;
        }
        log_info("power: command %s host=%s op=%s bootdev=%s%s started install=%s", c->id, c->host,
                 power_op_to_string(c->op), power_bootdev_to_string(c->bootdev),
                 c->efi ? " efi" : "", *c->install_id ? c->install_id : "-");
    }
}

/* ---- Poll ------------------------------------------------------------------------ */

static void on_poll_tick(uv_timer_t *t)
{
    powerctl *pc = t->data;
    uint64_t now = uv_now(pc->loop);
    unsigned max = pc->opt.poll_concurrency;
    size_t it = 0;
    void *v;
    while (pc->polls_running < max && hashmap_next(pc->bmcs, &it, &v)) {
        bmc_entry *e = v;
        if (!e->in_plan || !e->target || e->poll_refused || e->inflight > 0 ||
            e->next_poll_ms > now) {
            continue;
        }
        e->next_poll_ms = now + jittered(pc, pc->opt.poll_interval_ms);
        job *j = calloc(1, sizeof(*j));
        if (!j || !(j->host = strdup(e->host))) {
            job_free(j);
            return;
        }
        j->pc = pc;
        j->req = (power_request){ .op = POWER_OP_STATUS };
        int r = submit(pc, e, j);
        if (r < 0) {
            job_free(j);
            if (r != -EAGAIN) {
                log_warn("power: poll host=%s not started: %s", e->host, errstr(r));
            }
            return;
        }
        pc->polls_running++;
    }
}

/* ---- Lifecycle -------------------------------------------------------------------- */

void powerctl_apply(powerctl *pc, power_plan *plan)
{
    power_plan_free(pc->plan);
    pc->plan = plan;
    entries_update(pc);
    run_commands(pc);
}

const powerctl_stats *powerctl_get_stats(const powerctl *pc)
{
    return &pc->stats;
}

int powerctl_new(uv_loop_t *loop, const powerctl_options *o, powerctl_event_fn fn, void *userdata,
                 powerctl **ret)
{
    powerctl *pc = calloc(1, sizeof(*pc));
    if (!pc) {
        return -ENOMEM;
    }
    pc->loop = loop;
    pc->opt = *o;
    pc->opt.state_dir = NULL; /* not kept: done_path is */
    if (!pc->opt.poll_concurrency) {
        pc->opt.poll_concurrency = POWERCTL_DEFAULT_POLLS;
    }
    pc->fn = fn;
    pc->userdata = userdata;
    if (getrandom(&pc->rng, sizeof(pc->rng), 0) != sizeof(pc->rng) || pc->rng == 0) {
        pc->rng = now_monotonic_us() | 1;
    }
    int r = 0;
    if (o->state_dir && asprintf(&pc->done_path, "%s/%s", o->state_dir, POWERCTL_DONE_FILE) < 0) {
        pc->done_path = NULL;
        r = -ENOMEM;
    }
    pc->done_ring = calloc(POWERCTL_DONE_MAX, sizeof(*pc->done_ring));
    if (r >= 0 && !pc->done_ring) {
        r = -ENOMEM;
    }
    if (r >= 0) {
        r = hashmap_new(64, &pc->bmcs);
    }
    if (r >= 0) {
        r = hashmap_new(64, &pc->inflight);
    }
    if (r >= 0) {
        r = hashmap_new(POWERCTL_DONE_MAX, &pc->done);
    }
    if (r >= 0 && pc->done_path) {
        r = load_done(pc);
        if (r < 0) {
            log_error("power: %s unreadable: %s", pc->done_path, errstr(r));
        }
    }
    if (r >= 0) {
        r = power_executor_new(loop, &o->executor, &pc->ex);
    }
    if (r >= 0) {
        r = uv_timer_init(loop, &pc->poll_timer);
    }
    if (r < 0) {
        power_executor_free(pc->ex);
        hashmap_free(pc->bmcs);
        hashmap_free(pc->inflight);
        hashmap_free(pc->done);
        free(pc->done_ring);
        free(pc->done_path);
        free(pc);
        return r;
    }
    pc->poll_timer.data = pc;
    if (pc->opt.poll_interval_ms) {
        uint64_t tick = pc->opt.poll_interval_ms / 4;
        tick = tick < POLL_TICK_MIN_MS ? POLL_TICK_MIN_MS
               : tick > POLL_TICK_MS   ? POLL_TICK_MS
                                       : tick;
        uv_timer_start(&pc->poll_timer, on_poll_tick, tick, tick);
    }
    *ret = pc;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

powerctl *powerctl_free(powerctl *pc)
{
    if (!pc) {
        return NULL;
    }
    pc->freeing = true;
    uv_timer_stop(&pc->poll_timer);
    power_executor_free(pc->ex);
    size_t it = 0;
    void *v;
    while (hashmap_next(pc->bmcs, &it, &v)) {
        entry_free(v);
    }
    hashmap_free(pc->bmcs);
    hashmap_free(pc->inflight);
    hashmap_free(pc->done);
    free(pc->done_ring);
    free(pc->done_path);
    power_plan_free(pc->plan);
    /* The struct goes with the timer's close. */
    uv_close((uv_handle_t *)&pc->poll_timer, on_timer_closed);
    return NULL;
}

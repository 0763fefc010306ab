#include "uplink/uplink.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fileio.h"
#include "log.h"
#include "metrics/metrics.h"
#include "model_pb.h"
#include "rbproto.h"
#include "render/wire.h"
#include "session.h"
#include "tls.h"
#include "util.h"

/* Between attempts to open a session that replaces a stalled one: the
 * controller was there a minute ago, so try about as often as nng's own
 * redial (NNG_OPT_RECONNMAXT) would. */
#define BACKOFF_REOPEN_MAX_MS 5000u
#define EVENTS_CALL_MS        15000u
/* The events thread looks at the journal at least this often even when
 * nobody says there is something new (a missed wake-up costs this much). */
#define EVENTS_IDLE_MS 1000u

struct uplink {
    uplink_config cfg; /* strings owned below; urls NULL (see `urls`) */
    char *strings[7];
    char *urls[UPLINK_MAX_URLS];
    size_t n_urls;
    /* The URL in use, or being tried: the sync thread moves it while there
     * is no session (connect_session); others read it while there is. */
    size_t current;
    /* rackboot_uplink_controller and _switches_total; written by the sync
     * thread, read by a scrape on the loop thread (whole words). */
    uint64_t in_use[UPLINK_MAX_URLS];
    uint64_t switches;
    uv_loop_t *loop;
    uv_async_t wake;
    uv_timer_t pki_check; /* the TLS files changed on disk? */
    bool pki_check_open;
    int open_handles; /* freed when the last one closed */
    uint64_t pki_stamp;
    journal *journal;
    uplink_state_fn fn;
    void *userdata;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    bool events_ready;
    /* The session both threads call through. Only the sync thread opens
     * one; any thread that finds it stalled retires it (session_retire):
     * takes it out of `session`, shuts it down, waits until no thread is
     * inside a call on it (`session_users`, which also counts the loop
     * thread in uplink_reload_tls) and closes it. The sync thread opens
     * the next one only after that (`retiring`), so at most one session
     * exists and `session_users` counts the uses of that one. */
    rb_session *session;
    uint64_t session_gen; /* bumped when `session` is retired */
    unsigned session_users;
    bool retiring;
    bool move_on;        /* the last session was retired: dial the next URL */
    uint64_t down_since; /* CLOCK_MONOTONIC: `session` seen without a connection, or 0 */
    uint64_t last_ok_ms; /* CLOCK_MONOTONIC: the last call on `session` that got a reply */
    unsigned failures;   /* calls on `session` without a reply since then */
    intent_set *pending; /* handed to the loop, with pending_plan */
    power_plan *pending_plan;
    bool has_status; /* `status` was set: the syncs report it */
    uplink_status status;
    pthread_t sync_thread, events_thread;
    bool sync_started, events_started;
};

/* ---- Conversion ------------------------------------------------------- */

int uplink_intents_from_sync(const Rackboot__V1__SyncResponse *sr, intent_set **ret)
{
    intent_set *set = NULL;
    int r = intent_set_new(sr->generation, &set);
    for (size_t i = 0; r >= 0 && i < sr->n_profiles; i++) {
        model_profile p;
        r = model_profile_from_pb(sr->profiles[i], &p);
        if (r >= 0) {
            r = intent_set_add_profile(set, &p);
            if (r < 0) {
                model_profile_clear(&p);
                r = -EINVAL;
            }
        }
    }
    for (size_t i = 0; r >= 0 && i < sr->n_intents; i++) {
        intent in;
        r = model_intent_from_pb(sr->intents[i], &in);
        if (r >= 0) {
            r = intent_set_add(set, &in, sr->intents[i]->profile);
            if (r < 0) {
                intent_clear(&in);
                r = r == -ENOMEM ? r : -EINVAL;
            }
        }
    }
    if (r < 0) {
        intent_set_free(set);
        return r;
    }
    *ret = set;
    return 0;
}

/* ---- Persistence ------------------------------------------------------ */

static char *intents_path(const char *state_dir)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", state_dir, UPLINK_INTENTS_FILE) < 0 ? NULL : p;
}

/* The SyncResponse is kept inside an AgentReply envelope so that reading it
 * back goes through the same validating unpacker as the network. */
int uplink_persist(const char *state_dir, const Rackboot__V1__SyncResponse *sr)
{
    Rackboot__V1__AgentReply env = RACKBOOT__V1__AGENT_REPLY__INIT;
    env.body_case = RACKBOOT__V1__AGENT_REPLY__BODY_SYNC;
    env.sync = RB_UNCONST(sr);
    _cleanup_free_ uint8_t *buf = NULL;
    _cleanup_free_ char *path = intents_path(state_dir);
    size_t len = 0;
    if (!path) {
        return -ENOMEM;
    }
    int r = rbproto_pack(&env.base, RBPROTO_MAX_MESSAGE, &buf, &len);
    if (r < 0) {
        return r;
    }
    return fileio_write_atomic(path, buf, len, 0600);
}

int uplink_load_persisted(const char *state_dir, intent_set **ret, power_plan **ret_plan)
{
    _cleanup_free_ char *path = intents_path(state_dir);
    if (!path) {
        return -ENOMEM;
    }
    _cleanup_free_ void *buf = NULL;
    size_t len = 0;
    int r = fileio_read_all(path, RBPROTO_MAX_MESSAGE, &buf, &len);
    if (r < 0) {
        return r;
    }
    Rackboot__V1__AgentReply *env = NULL;
    r = rbproto_unpack_agent_reply(buf, len, RBPROTO_MAX_MESSAGE, &env);
    if (r < 0) {
        return -EBADMSG;
    }
    if (env->body_case != RACKBOOT__V1__AGENT_REPLY__BODY_SYNC) {
        rbproto_free(&env->base);
        return -EBADMSG;
    }
    intent_set *set = NULL;
    power_plan *plan = NULL;
    r = uplink_intents_from_sync(env->sync, &set);
    if (r >= 0 && ret_plan) {
        r = power_plan_from_sync(env->sync, false, &plan);
    }
    rbproto_free(&env->base);
    if (r < 0) {
        intent_set_free(set);
        return r == -EINVAL ? -EBADMSG : r;
    }
    *ret = set;
    if (ret_plan) {
        *ret_plan = plan;
    }
    return 0;
}

/* ---- Threads ---------------------------------------------------------- */

static uint32_t random_u32(void)
{
    static __thread unsigned seed;
    if (!seed) {
        seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
    }
    /* rand_r gives 31 bits at most; two make the range uniform enough for
     * a modulus of up to UPLINK_BACKOFF_MAX_MS. */
    return ((uint32_t)rand_r(&seed) << 16) ^ (uint32_t)rand_r(&seed);
}

static uint32_t jitter(uint32_t ms)
{
    /* 50-100 % of the nominal delay, so a fleet of agents does not redial
     * in lock-step after a controller restart. */
    return ms / 2 + random_u32() % (ms / 2 + 1);
}

uint32_t uplink_backoff_next(uint32_t prev_ms, uint32_t cap_ms, uint32_t rnd)
{
    uint64_t lo = UPLINK_BACKOFF_BASE_MS;
    uint64_t hi = 3 * (uint64_t)(prev_ms > lo ? prev_ms : lo);
    if (hi > cap_ms) {
        hi = cap_ms;
    }
    if (lo > hi) {
        lo = hi; /* a cap below the base wins */
    }
    return (uint32_t)(lo + rnd % (hi - lo + 1));
}

/* Sleeps up to `ms` unless stopping; returns false when stopping. */
static bool pause_ms(uplink *u, uint32_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&u->lock);
    while (!u->stopping && pthread_cond_timedwait(&u->cond, &u->lock, &ts) == 0) {
    }
    bool go_on = !u->stopping;
    pthread_mutex_unlock(&u->lock);
    return go_on;
}

static bool stopping(uplink *u)
{
    pthread_mutex_lock(&u->lock);
    bool s = u->stopping;
    pthread_mutex_unlock(&u->lock);
    return s;
}

/* Pauses for the backoff that follows `prev_ms` and returns it (the next
 * call's `prev_ms`; 0 resets). */
static uint32_t backoff_pause(uplink *u, uint32_t prev_ms, uint32_t cap_ms)
{
    uint32_t ms = uplink_backoff_next(prev_ms, cap_ms, random_u32());
    pause_ms(u, ms);
    return ms;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- The shared session ------------------------------------------------ */

bool uplink_session_stalled(unsigned failures, uint64_t since_ok_ms)
{
    if (failures == 0) {
        return false;
    }
    return since_ok_ms >= UPLINK_STALL_MS ||
           (failures >= UPLINK_STALL_FAILURES && since_ok_ms >= UPLINK_STALL_MIN_MS);
}

/* A use of the current session, NULL when there is none (or stopping);
 * with `wait`, waits for one. Give it back with session_release(). */
static rb_session *session_take(uplink *u, bool wait, uint64_t *ret_gen)
{
    pthread_mutex_lock(&u->lock);
    while (wait && !u->stopping && !u->session) {
        pthread_cond_wait(&u->cond, &u->lock);
    }
    rb_session *s = u->stopping ? NULL : u->session;
    if (s) {
        u->session_users++;
        *ret_gen = u->session_gen;
    }
    pthread_mutex_unlock(&u->lock);
    return s;
}

/* Gives a use back with what its call did: `outcome` > 0 a reply came
 * (even a refusal: the link works), < 0 none did, 0 not a call. True when
 * the session has made no progress long enough to be replaced. */
static bool session_release(uplink *u, uint64_t gen, int outcome)
{
    bool stalled = false;
    uint64_t now = mono_ms();
    pthread_mutex_lock(&u->lock);
    RB_ASSERT(u->session_users > 0);
    u->session_users--;
    if (gen == u->session_gen && u->session) {
        if (outcome > 0) {
            u->last_ok_ms = now;
            u->failures = 0;
        } else if (outcome < 0) {
            u->failures++;
            stalled = !u->stopping && uplink_session_stalled(u->failures, now - u->last_ok_ms);
        }
    }
    pthread_cond_broadcast(&u->cond); /* session_retire() may wait for the users */
    pthread_mutex_unlock(&u->lock);
    return stalled;
}

/* Replaces nothing itself: closes session `gen` (unless another thread
 * already did) so that the sync thread opens a new one. nng 1.5.2 can keep
 * a dead connection as its pipe forever (its TLS layer drops the error of
 * a receive started after the TCP connection failed, so REQ never closes
 * the pipe and the dialer never redials); a new socket redials for sure. */
static void session_retire(uplink *u, uint64_t gen, const char *why)
{
    uint64_t now = mono_ms();
    pthread_mutex_lock(&u->lock);
    if (gen != u->session_gen || !u->session || u->stopping) {
        pthread_mutex_unlock(&u->lock);
        return;
    }
    rb_session *s = u->session;
    u->session = NULL;
    u->session_gen++;
    u->retiring = true;
    u->move_on = true;
    u->down_since = 0;
    unsigned failures = u->failures;
    uint64_t since = now - u->last_ok_ms;
    size_t cur = u->current;
    pthread_mutex_unlock(&u->lock);
    const char *url = u->urls[cur];

    if (why) {
        log_warn("uplink: controller %s: %s; closing the connection", url, why);
    } else {
        log_warn("uplink: no reply from controller %s for %" PRIu64 " ms (%u calls failed); "
                 "closing the connection and opening a new one",
                 url, since, failures);
    }
    __atomic_store_n(&u->in_use[cur], 0, __ATOMIC_RELAXED);
    rb_session_shutdown(s); /* the other thread's call returns at once */
    pthread_mutex_lock(&u->lock);
    while (u->session_users > 0) {
        pthread_cond_wait(&u->cond, &u->lock);
    }
    pthread_mutex_unlock(&u->lock);
    rb_session_close(s);
    pthread_mutex_lock(&u->lock);
    u->retiring = false;
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
}

/* Moves to the next URL round the list (sync thread), saying why. */
static void next_url(uplink *u, const char *why)
{
    if (u->n_urls < 2) {
        return;
    }
    size_t next = (u->current + 1) % u->n_urls;
    log_warn("uplink: controller %s %s, trying %s", u->urls[u->current], why, u->urls[next]);
    u->current = next;
    __atomic_add_fetch(&u->switches, 1, __ATOMIC_RELAXED);
}

/* Opens the session (the sync thread does this); false when stopping. It
 * starts with the controller in use, or with the next one when the last
 * session was given up, and goes round the list until one answers. */
static bool connect_session(uplink *u, uint32_t backoff_max)
{
    uint32_t backoff = 0;
    pthread_mutex_lock(&u->lock);
    while (u->retiring && !u->stopping) {
        pthread_cond_wait(&u->cond, &u->lock);
    }
    bool move_on = u->move_on;
    u->move_on = false;
    pthread_mutex_unlock(&u->lock);
    if (move_on) {
        next_url(u, "failed");
    }
    while (!stopping(u)) {
        const char *url = u->urls[u->current];
        rb_session_config sc = {
            .url = url,
            .kind = RB_SESSION_AGENT,
            .ca = u->cfg.ca,
            .cert = u->cfg.cert,
            .key = u->cfg.key,
            .crl = u->cfg.crl,
            /* NULL: each URL's own host (uplink.h). */
            .server_name = u->cfg.server_name,
            /* Bounded, so that stopping the agent never waits for the
             * kernel's SYN retries to a controller that drops packets. */
            .reconnect = true,
            .connect_timeout_ms = 5000,
        };
        rb_session *s = NULL;
        char *error = NULL;
        int r = rb_session_open(&sc, &s, &error);
        if (r >= 0) {
            const Rackboot__V1__AuthResult *id = rb_session_identity(s);
            if (u->cfg.rack && !streq(id->rack, u->cfg.rack)) {
                log_error("uplink: our certificate names rack %s but [agent] rack is %s; not "
                          "syncing",
                          id->rack, u->cfg.rack);
                rb_session_close(s);
                r = -EACCES;
            } else {
                log_info("uplink: connected url=%s rack=%s controller_version=%s", url, id->rack,
                         id->controller_version);
                __atomic_store_n(&u->in_use[u->current], 1, __ATOMIC_RELAXED);
                pthread_mutex_lock(&u->lock);
                u->session = s;
                u->last_ok_ms = mono_ms(); /* the handshake got its replies */
                u->failures = 0;
                u->down_since = 0;
                pthread_cond_broadcast(&u->cond);
                pthread_mutex_unlock(&u->lock);
                return true;
            }
        } else {
            log_warn("uplink: cannot connect url=%s: %s", url, error ? error : errstr(r));
        }
        free(error);
        next_url(u, "unreachable");
        backoff = backoff_pause(u, backoff, backoff_max);
    }
    return false;
}

static void hand_over(uplink *u, intent_set *set, power_plan *plan)
{
    pthread_mutex_lock(&u->lock);
    intent_set *old = u->pending;
    power_plan *old_plan = u->pending_plan;
    u->pending = set;
    u->pending_plan = plan;
    pthread_mutex_unlock(&u->lock);
    /* The loop had not taken them: superseded. A command of the old plan
     * the controller still wants is in the new one (level-triggered). */
    intent_set_free(old);
    power_plan_free(old_plan);
    uv_async_send(&u->wake);
}

void uplink_set_status(uplink *u, const uplink_status *st)
{
    pthread_mutex_lock(&u->lock);
    u->status = *st;
    u->has_status = true;
    pthread_mutex_unlock(&u->lock);
}

static void *sync_main(void *arg)
{
    uplink *u = arg;
    uint64_t held = 0, acked = 0;
    uint32_t backoff = 0;
    bool opened = false;
    while (!stopping(u)) {
        uint64_t gen = 0;
        rb_session *s = session_take(u, false, &gen);
        if (!s) {
            /* None yet, or the last one was retired: a jittered pause first
             * then, so that a fleet does not reopen in lock-step. */
            if (opened && !pause_ms(u, jitter(2 * UPLINK_BACKOFF_BASE_MS))) {
                break;
            }
            if (!connect_session(u, opened ? BACKOFF_REOPEN_MAX_MS : UPLINK_BACKOFF_MAX_MS)) {
                break;
            }
            opened = true;
            continue;
        }
        Rackboot__V1__SyncRequest sync = RACKBOOT__V1__SYNC_REQUEST__INIT;
        sync.held_generation = held;
        sync.acked_generation = acked;
        sync.max_wait_ms = u->cfg.sync_wait_ms;
        /* A copy, so that the loop may set the next while this one is
         * sent. */
        Rackboot__V1__AgentStatus status = RACKBOOT__V1__AGENT_STATUS__INIT;
        uplink_status st;
        render_context_pb rc;
        pthread_mutex_lock(&u->lock);
        bool has_status = u->has_status;
        st = u->status;
        pthread_mutex_unlock(&u->lock);
        if (has_status) {
            status.cache_bytes = st.cache_bytes;
            status.cache_limit_bytes = st.cache_limit_bytes;
            if (st.has_render) {
                render_context_to_pb(&st.render, &rc);
                status.render = &rc.m;
            }
            sync.status = &status;
        }
        Rackboot__V1__AgentRequest req = RACKBOOT__V1__AGENT_REQUEST__INIT;
        req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_SYNC;
        req.sync = &sync;
        Rackboot__V1__AgentReply *rep = NULL;
        int r = rb_session_call_agent(s, &req, u->cfg.sync_wait_ms + 15000, &rep);
        bool stalled = session_release(u, gen, r >= 0 ? 1 : -1);
        if (r < 0) {
            if (stopping(u)) {
                break;
            }
            log_warn("uplink: sync failed: %s (serving what we hold, generation %" PRIu64 ")",
                     errstr(r), held);
            if (stalled) {
                session_retire(u, gen, NULL);
                continue;
            }
            backoff = backoff_pause(u, backoff, UPLINK_BACKOFF_MAX_MS);
            continue;
        }
        if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_ERROR) {
            log_warn("uplink: controller refused the sync: %s: %s",
                     rbproto_status_to_string(rep->error->code), rep->error->message);
            rbproto_free(&rep->base);
            backoff = backoff_pause(u, backoff, UPLINK_BACKOFF_MAX_MS);
            continue;
        }
        backoff = 0;
        const Rackboot__V1__SyncResponse *sr = rep->sync;
        if (sr->unchanged) {
            acked = held;
        } else {
            intent_set *set = NULL;
            power_plan *plan = NULL;
            r = uplink_intents_from_sync(sr, &set);
            if (r >= 0) {
                r = power_plan_from_sync(sr, true, &plan);
            }
            if (r >= 0) {
                r = uplink_persist(u->cfg.state_dir, sr);
                if (r < 0) {
                    intent_set_free(set);
                    plan = power_plan_free(plan);
                    log_error("uplink: cannot persist generation %" PRIu64 " in %s: %s; not "
                              "acknowledging it",
                              sr->generation, u->cfg.state_dir, errstr(r));
                }
            } else {
                intent_set_free(set);
                log_error("uplink: generation %" PRIu64 " refused: %s", sr->generation, errstr(r));
            }
            if (r >= 0) {
                log_info("uplink: generation=%" PRIu64 " intents=%zu profiles=%zu bmcs=%zu "
                         "power_commands=%zu persisted",
                         sr->generation, sr->n_intents, sr->n_profiles, sr->n_bmcs, sr->n_power);
                hand_over(u, set, plan);
                held = acked = sr->generation;
            } else {
                pause_ms(u, jitter(UPLINK_BACKOFF_MAX_MS));
            }
        }
        rbproto_free(&rep->base);
    }
    return NULL;
}

/* Events thread, at each turn: with another controller to try, a session
 * whose connection stays down for UPLINK_FAILOVER_DOWN_MS is given up
 * (session_retire), which also ends the sync thread's long poll at once.
 * Waiting for the calls to fail instead would take sync_wait + 15 s, and
 * the stall rule up to UPLINK_STALL_MS, while another controller could
 * serve. One controller alone is left to nng's redial, as before. */
static void watch_connection(uplink *u)
{
    if (u->n_urls < 2) {
        return;
    }
    uint64_t gen = 0;
    rb_session *s = session_take(u, false, &gen);
    if (!s) {
        return;
    }
    bool up = rb_session_connected(s);
    uint64_t now = mono_ms();
    bool give_up = false;
    pthread_mutex_lock(&u->lock);
    if (gen == u->session_gen) {
        if (up) {
            u->down_since = 0;
        } else if (!u->down_since) {
            u->down_since = now;
        } else {
            give_up = now - u->down_since >= UPLINK_FAILOVER_DOWN_MS;
        }
    }
    pthread_mutex_unlock(&u->lock);
    session_release(u, gen, 0);
    if (give_up) {
        session_retire(u, gen, "connection lost and not re-established");
    }
}

static void *events_main(void *arg)
{
    uplink *u = arg;
    journal_batch *b = NULL;
    if (journal_batch_new(&b) < 0) {
        log_error("uplink: out of memory; events stay in the journal");
        return NULL;
    }
    uint32_t backoff = 0;
    while (!stopping(u)) {
        watch_connection(u);
        int n = journal_peek(u->journal, UPLINK_BATCH_MAX, b);
        if (n <= 0) {
            if (n < 0) {
                log_error("uplink: cannot read the journal: %s", errstr(n));
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += EVENTS_IDLE_MS / 1000;
            pthread_mutex_lock(&u->lock);
            while (!u->stopping && !u->events_ready &&
                   pthread_cond_timedwait(&u->cond, &u->lock, &ts) == 0) {
            }
            u->events_ready = false;
            pthread_mutex_unlock(&u->lock);
            continue;
        }
        Rackboot__V1__EventBatch batch = RACKBOOT__V1__EVENT_BATCH__INIT;
        batch.n_events = journal_batch_count(b);
        batch.events = journal_batch_events(b);
        batch.journal_id = RB_UNCONST(journal_id(u->journal));
        Rackboot__V1__AgentRequest req = RACKBOOT__V1__AGENT_REQUEST__INIT;
        req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_EVENTS;
        req.events = &batch;
        uint64_t gen = 0;
        rb_session *s = session_take(u, true, &gen);
        if (!s) {
            break; /* stopping */
        }
        Rackboot__V1__AgentReply *rep = NULL;
        int r = rb_session_call_agent(s, &req, EVENTS_CALL_MS, &rep);
        bool stalled = session_release(u, gen, r >= 0 ? 1 : -1);
        if (r >= 0 && rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_EVENT_ACK) {
            uint64_t through = rep->event_ack->stored_through;
            rbproto_free(&rep->base);
            r = journal_ack(u->journal, through);
            if (r < 0 && r != -ERANGE) {
                log_warn("uplink: cannot record the ack of seq %" PRIu64 ": %s", through,
                         errstr(r));
            }
            log_debug("uplink: events sent=%zu stored_through=%" PRIu64, batch.n_events, through);
            if (through >= journal_batch_last_seq(b)) {
                backoff = 0;
                continue;
            }
            /* The controller did not take the batch: never resend it in a
             * tight loop. */
            log_warn("uplink: the controller acknowledged seq %" PRIu64
                     " of a batch ending at %" PRIu64 "; retrying later",
                     through, journal_batch_last_seq(b));
            backoff = backoff_pause(u, backoff, UPLINK_BACKOFF_MAX_MS);
            continue;
        }
        if (stopping(u)) {
            rbproto_free(rep ? &rep->base : NULL);
            break;
        }
        if (r >= 0) {
            log_warn("uplink: controller refused %zu events: %s", batch.n_events,
                     rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_ERROR ? rep->error->message
                                                                             : "unexpected reply");
            rbproto_free(&rep->base);
        } else {
            log_warn("uplink: sending %zu events failed: %s (kept in the journal)", batch.n_events,
                     errstr(r));
            if (stalled) {
                session_retire(u, gen, NULL);
                continue; /* waits for the sync thread's new session */
            }
        }
        backoff = backoff_pause(u, backoff, UPLINK_BACKOFF_MAX_MS);
    }
    journal_batch_free(b);
    return NULL;
}

/* ---- Loop side -------------------------------------------------------- */

static void on_wake(uv_async_t *handle)
{
    uplink *u = handle->data;
    pthread_mutex_lock(&u->lock);
    intent_set *set = u->pending;
    power_plan *plan = u->pending_plan;
    u->pending = NULL;
    u->pending_plan = NULL;
    pthread_mutex_unlock(&u->lock);
    if (set) {
        u->fn(u->userdata, set, plan);
    } else {
        power_plan_free(plan);
    }
}

static rb_tls_files tls_files(const uplink *u)
{
    rb_tls_files f = { .ca = u->cfg.ca, .cert = u->cfg.cert, .key = u->cfg.key, .crl = u->cfg.crl };
    return f;
}

void uplink_reload_tls(uplink *u, const char *why)
{
    rb_tls_files files = tls_files(u);
    /* Taken before the files are read and kept only once they loaded: a
     * reload that failed (a half-written CRL) is tried again by the next
     * check (on_pki_check), not only when the files change once more. */
    uint64_t stamp = rb_tls_files_stamp(&files);
    /* Held as a use, so that a thread retiring the session waits for the
     * reload before it closes it. */
    uint64_t gen = 0;
    rb_session *s = session_take(u, false, &gen);
    if (!s) {
        /* Each connection attempt reads the files itself. */
        u->pki_stamp = stamp;
        log_info("uplink: %s: not connected yet; the next connection reads the TLS files", why);
        return;
    }
    char *error = NULL;
    int r = rb_session_reload_tls(s, &error);
    session_release(u, gen, 0);
    if (r >= 0) {
        u->pki_stamp = stamp;
    }
    if (r < 0) {
        log_error("uplink: %s: TLS files not reloaded, keeping the old configuration: %s", why,
                  error ? error : errstr(r));
    } else if (r > 0) {
        log_info("uplink: %s: TLS files changed (crl=%s); reconnecting under them", why,
                 u->cfg.crl ? u->cfg.crl : "-");
    } else {
        log_info("uplink: %s: TLS files unchanged", why);
    }
    free(error);
}

static void on_pki_check(uv_timer_t *t)
{
    uplink *u = t->data;
    rb_tls_files files = tls_files(u);
    if (rb_tls_files_stamp(&files) != u->pki_stamp) {
        uplink_reload_tls(u, "TLS files changed on disk");
    }
}

void uplink_events_ready(uplink *u)
{
    pthread_mutex_lock(&u->lock);
    u->events_ready = true;
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
}

static void free_strings(uplink *u)
{
    for (size_t i = 0; i < ARRAY_SIZE(u->strings); i++) {
        free(u->strings[i]);
    }
    for (size_t i = 0; i < u->n_urls; i++) {
        free(u->urls[i]);
    }
}

int uplink_register_metrics(uplink *u, metrics *m)
{
    int r = metrics_register(m, METRIC_COUNTER, "rackboot_uplink_switches_total",
                             "Moves of the uplink to another controller of [controller] urls.",
                             NULL, &u->switches);
    for (size_t i = 0; i < u->n_urls && r == 0; i++) {
        _cleanup_free_ char *labels = NULL;
        if (asprintf(&labels, "url=\"%s\"", u->urls[i]) < 0) {
            return -ENOMEM;
        }
        r = metrics_register(m, METRIC_GAUGE, "rackboot_uplink_controller",
                             "1 for the controller the uplink is connected to, 0 for the others.",
                             labels, &u->in_use[i]);
    }
    return r;
}

int uplink_new(uv_loop_t *loop, const uplink_config *cfg, journal *j, uplink_state_fn fn,
               void *userdata, uplink **ret)
{
    uplink *u = calloc(1, sizeof(*u));
    if (!u) {
        return -ENOMEM;
    }
    if (cfg->n_urls == 0 || cfg->n_urls > UPLINK_MAX_URLS) {
        free(u);
        return -EINVAL;
    }
    u->cfg = *cfg;
    u->cfg.urls = NULL;
    u->cfg.n_urls = 0;
    bool copied = true;
    for (size_t i = 0; i < cfg->n_urls; i++) {
        u->urls[i] = strdup(cfg->urls[i]);
        copied &= u->urls[i] != NULL;
    }
    u->n_urls = cfg->n_urls;
    const char **fields[] = { &u->cfg.server_name, &u->cfg.ca,        &u->cfg.cert, &u->cfg.key,
                              &u->cfg.crl,         &u->cfg.state_dir, &u->cfg.rack };
    _Static_assert(ARRAY_SIZE(fields) == ARRAY_SIZE(u->strings), "a string without its copy");
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
        if (*fields[i]) {
            u->strings[i] = strdup(*fields[i]);
            copied &= u->strings[i] != NULL;
            *fields[i] = u->strings[i];
        }
    }
    if (!copied) {
        free_strings(u);
        free(u);
        return -ENOMEM;
    }
    if (!u->cfg.sync_wait_ms) {
        u->cfg.sync_wait_ms = UPLINK_DEFAULT_SYNC_WAIT_MS;
    }
    u->loop = loop;
    u->journal = j;
    u->fn = fn;
    u->userdata = userdata;
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->cond, NULL);
    int r = uv_async_init(loop, &u->wake, on_wake);
    if (r < 0) {
        pthread_cond_destroy(&u->cond);
        pthread_mutex_destroy(&u->lock);
        free(u);
        return r;
    }
    u->wake.data = u;
    u->open_handles = 1;
    rb_tls_files files = tls_files(u);
    u->pki_stamp = rb_tls_files_stamp(&files);
    r = uv_timer_init(loop, &u->pki_check);
    if (r == 0) {
        u->pki_check_open = true;
        u->open_handles++;
        u->pki_check.data = u;
        r = uv_timer_start(&u->pki_check, on_pki_check, UPLINK_PKI_CHECK_MS, UPLINK_PKI_CHECK_MS);
    }
    if (r < 0) {
        uplink_free(u);
        return r;
    }
    r = -pthread_create(&u->sync_thread, NULL, sync_main, u);
    u->sync_started = r == 0;
    if (r == 0 && j) {
        r = -pthread_create(&u->events_thread, NULL, events_main, u);
        u->events_started = r == 0;
    }
    if (r < 0) {
        uplink_free(u);
        return r;
    }
    *ret = u;
    return 0;
}

static void free_after_close(uv_handle_t *handle)
{
    uplink *u = handle->data;
    if (--u->open_handles > 0) {
        return;
    }
    free_strings(u);
    pthread_cond_destroy(&u->cond);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

uplink *uplink_free(uplink *u)
{
    if (!u) {
        return NULL;
    }
    pthread_mutex_lock(&u->lock);
    u->stopping = true;
    pthread_cond_broadcast(&u->cond);
    if (u->session) {
        rb_session_shutdown(u->session); /* calls in flight return at once */
    }
    pthread_mutex_unlock(&u->lock);
    if (u->sync_started) {
        pthread_join(u->sync_thread, NULL);
    }
    /* The sync thread may have opened the session after the check above. */
    pthread_mutex_lock(&u->lock);
    if (u->session) {
        rb_session_shutdown(u->session);
    }
    pthread_mutex_unlock(&u->lock);
    if (u->events_started) {
        pthread_join(u->events_thread, NULL);
    }
    u->session = rb_session_close(u->session);
    intent_set_free(u->pending);
    u->pending = NULL;
    u->pending_plan = power_plan_free(u->pending_plan);
    if (u->pki_check_open) {
        uv_close((uv_handle_t *)&u->pki_check, free_after_close);
    }
    uv_close((uv_handle_t *)&u->wake, free_after_close);
    return NULL;
}

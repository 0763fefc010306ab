/* Tests of rack-agent/powerctl/: a SyncResponse's BMCs and commands as a
 * plan, and powerctl running them once each through power/'s executor, with
 * a fake IPMI driver standing in for the BMCs: the events it emits, failures
 * (no BMC, unusable URL, wrong password), the done ids kept across restarts,
 * a full queue, and the status poll (one event per change, one per outage).
 * tests/integration/power_agent.sh drives the real thing. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "powerctl/plan.h"
#include "powerctl/powerctl.h"
#include "util.h"

/* ---- a fake IPMI driver: one BMC per host name ------------------------------ */

#define FAKES 8

typedef struct fake_bmc {
    char host[64];
    power_state state;
    bool unreachable;
    unsigned controls, bootdevs, opens;
    power_bootdev last_bootdev;
    bool last_efi;
} fake_bmc;

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static fake_bmc fakes[FAKES];
#define FAKE_PASSWORD "s3cret-pw"

struct power_session {
    fake_bmc *b;
};

static fake_bmc *fake_find(const char *host)
{
    for (size_t i = 0; i < FAKES; i++) {
        if (streq(fakes[i].host, host)) {
            return &fakes[i];
        }
    }
    return NULL;
}

static void fake_reset(void)
{
    pthread_mutex_lock(&fake_lock);
    memset(fakes, 0, sizeof(fakes));
    static const char *const names[] = { "bmc1.test", "bmc2.test", "bmc3.test", "bmc4.test" };
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        snprintf(fakes[i].host, sizeof(fakes[i].host), "%s", names[i]);
        fakes[i].state = POWER_STATE_OFF;
    }
    pthread_mutex_unlock(&fake_lock);
}

static int fake_open(const power_target *t, const power_limits *lim, power_session **ret,
                     power_result *res)
{
    (void)lim;
    pthread_mutex_lock(&fake_lock);
    fake_bmc *b = fake_find(power_target_host(t));
    bool unreachable = !b || b->unreachable;
    if (b) {
        b->opens++;
    }
    pthread_mutex_unlock(&fake_lock);
    if (unreachable) {
        return power_result_fail(res, -EHOSTUNREACH, "fake BMC unreachable");
    }
    if (!streq(power_target_password(t), FAKE_PASSWORD)) {
        return power_result_fail(res, -EACCES, "password rejected by BMC");
    }
    power_session *s = calloc(1, sizeof(*s));
    s->b = b;
    *ret = s;
    return 0;
}

static int fake_get_state(power_session *s, power_state *ret, power_result *res)
{
    (void)res;
    pthread_mutex_lock(&fake_lock);
    *ret = s->b->state;
    pthread_mutex_unlock(&fake_lock);
    return 0;
}

static int fake_set_bootdev(power_session *s, power_bootdev dev, bool efi, power_result *res)
{
    (void)res;
    pthread_mutex_lock(&fake_lock);
    s->b->bootdevs++;
    s->b->last_bootdev = dev;
    s->b->last_efi = efi;
    pthread_mutex_unlock(&fake_lock);
    return 0;
}

static int fake_control(power_session *s, power_op op, power_result *res)
{
    (void)res;
    pthread_mutex_lock(&fake_lock);
    s->b->controls++;
    s->b->state = op == POWER_OP_OFF || op == POWER_OP_SOFT ? POWER_STATE_OFF : POWER_STATE_ON;
    pthread_mutex_unlock(&fake_lock);
    return 0;
}

static power_session *fake_close(power_session *s)
{
    free(s);
    return NULL;
}

static const power_driver fake_driver = {
    .scheme = "ipmi",
    .open = fake_open,
    .get_state = fake_get_state,
    .set_bootdev = fake_set_bootdev,
    .control = fake_control,
    .close = fake_close,
};

static const power_driver *fake_lookup(const char *scheme)
{
    return streq(scheme, "ipmi") ? &fake_driver : NULL;
}

static fake_bmc fake_get(const char *host)
{
    pthread_mutex_lock(&fake_lock);
    fake_bmc copy = *fake_find(host);
    pthread_mutex_unlock(&fake_lock);
    return copy;
}

static void fake_set(const char *host, power_state state, bool unreachable)
{
    pthread_mutex_lock(&fake_lock);
    fake_bmc *b = fake_find(host);
    b->state = state;
    b->unreachable = unreachable;
    pthread_mutex_unlock(&fake_lock);
}

/* ---- recorded events ---------------------------------------------------------- */

#define MAX_EVENTS 64

typedef struct seen_event {
    char host[64], install_id[64], power_id[64], message[256];
    Rackboot__V1__Phase phase;
    Rackboot__V1__PowerState power_state;
} seen_event;

typedef struct fixture {
    uv_loop_t loop;
    char dir[64];
    seen_event events[MAX_EVENTS];
    size_t n_events;
    int event_result; /* what the callback returns */
} fixture;

static int on_event(void *userdata, const Rackboot__V1__Event *ev)
{
    fixture *f = userdata;
    assert_true(f->n_events < MAX_EVENTS);
    seen_event *s = &f->events[f->n_events++];
    snprintf(s->host, sizeof(s->host), "%s", ev->host);
    snprintf(s->install_id, sizeof(s->install_id), "%s", ev->install_id);
    snprintf(s->power_id, sizeof(s->power_id), "%s", ev->power_id);
    snprintf(s->message, sizeof(s->message), "%s", ev->message);
    s->phase = ev->phase;
    s->power_state = ev->power_state;
    return f->event_result;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_powerctl.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    fake_reset();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", f->dir, POWERCTL_DONE_FILE);
    unlink(path);
    rmdir(f->dir);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static powerctl *start(fixture *f, uint32_t poll_ms, unsigned max_queued)
{
    powerctl_options o = {
        .poll_interval_ms = poll_ms,
        .state_dir = f->dir,
        .executor = { .max_concurrent = 2,
                      .attempt_timeout_ms = 2000,
                      .retries = 1,
                      .backoff_ms = 10,
                      .max_queued = max_queued,
                      .lookup = fake_lookup },
    };
    powerctl *pc = NULL;
    assert_int_equal(powerctl_new(&f->loop, &o, on_event, f, &pc), 0);
    return pc;
}

static void stop(fixture *f, powerctl *pc)
{
    assert_null(powerctl_free(pc));
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

/* Runs the loop until `n` events were seen (bounded: 20 s). */
static void wait_events(fixture *f, size_t n)
{
    for (int i = 0; i < 2000 && f->n_events < n; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    if (f->n_events < n) {
        fail_msg("saw %zu events, want %zu", f->n_events, n);
    }
}

/* Runs the loop for about `ms` (to show that nothing more happens). */
static void run_for(fixture *f, unsigned ms)
{
    for (unsigned i = 0; i < ms / 10; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
}

/* ---- plans ------------------------------------------------------------------------ */

typedef struct sync_builder {
    Rackboot__V1__SyncResponse sr;
    Rackboot__V1__Bmc bmcs[4], *bmc_ptrs[4];
    Rackboot__V1__PowerCommand cmds[8], *cmd_ptrs[8];
} sync_builder;

static void sb_init(sync_builder *b)
{
    memset(b, 0, sizeof(*b));
    rackboot__v1__sync_response__init(&b->sr);
    b->sr.rack = RB_UNCONST("r1");
    b->sr.generation = 7;
    b->sr.bmcs = b->bmc_ptrs;
    b->sr.power = b->cmd_ptrs;
}

static void sb_bmc(sync_builder *b, const char *host, const char *url, const char *password)
{
    Rackboot__V1__Bmc *m = &b->bmcs[b->sr.n_bmcs];
    rackboot__v1__bmc__init(m);
    m->host = RB_UNCONST(host);
    m->url = RB_UNCONST(url);
    m->user = RB_UNCONST("admin");
    m->password = RB_UNCONST(password);
    m->firmware = RACKBOOT__V1__FIRMWARE__FIRMWARE_UEFI;
    b->bmc_ptrs[b->sr.n_bmcs++] = m;
}

static void sb_cmd(sync_builder *b, const char *id, const char *host,
                   Rackboot__V1__PowerAction action, Rackboot__V1__BootDevice dev,
                   const char *install_id)
{
    Rackboot__V1__PowerCommand *m = &b->cmds[b->sr.n_power];
    rackboot__v1__power_command__init(m);
    m->id = RB_UNCONST(id);
    m->host = RB_UNCONST(host);
    m->action = action;
    m->boot_device = dev;
    m->efi = dev != RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_UNSPECIFIED;
    m->install_id = RB_UNCONST(install_id);
    b->cmd_ptrs[b->sr.n_power++] = m;
}

static power_plan *plan_of(const sync_builder *b, bool with_commands)
{
    power_plan *p = NULL;
    assert_int_equal(power_plan_from_sync(&b->sr, with_commands, &p), 0);
    return p;
}

/* The usual rack: web1 and web2 with working BMCs, a cycle for web1 that
 * starts an install. */
static void usual(sync_builder *b)
{
    sb_init(b);
    sb_bmc(b, "web1", "ipmi://bmc1.test", FAKE_PASSWORD);
    sb_bmc(b, "web2", "ipmi://bmc2.test:6230", FAKE_PASSWORD);
    sb_cmd(b, "p1", "web1", RACKBOOT__V1__POWER_ACTION__POWER_ACTION_CYCLE,
           RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_PXE, "i1");
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_plan_from_sync(void **state)
{
    (void)state;
    sync_builder b;
    usual(&b);
    power_plan *p = plan_of(&b, true);
    assert_int_equal(p->n_bmcs, 2);
    assert_int_equal(p->n_commands, 1);
    const power_plan_bmc *bmc = power_plan_find_bmc(p, "web2");
    assert_non_null(bmc);
    assert_string_equal(bmc->url, "ipmi://bmc2.test:6230");
    assert_string_equal(bmc->password, FAKE_PASSWORD);
    assert_int_equal(bmc->firmware, MODEL_FIRMWARE_UEFI);
    assert_null(power_plan_find_bmc(p, "web3"));
    assert_string_equal(p->commands[0].id, "p1");
    assert_int_equal(p->commands[0].op, POWER_OP_CYCLE);
    assert_int_equal(p->commands[0].bootdev, POWER_BOOTDEV_PXE);
    assert_true(p->commands[0].efi);
    assert_string_equal(p->commands[0].install_id, "i1");
    power_plan_free(p);

    /* Read back from disk: the BMCs, never the commands. */
    p = plan_of(&b, false);
    assert_int_equal(p->n_bmcs, 2);
    assert_int_equal(p->n_commands, 0);
    power_plan_free(p);

    /* An action this agent does not know is refused. */
    b.cmds[0].action = 99;
    p = NULL;
    assert_int_equal(power_plan_from_sync(&b.sr, true, &p), -EINVAL);
    assert_null(p);
}

static void test_command_runs_once(void **state)
{
    fixture *f = *state;
    sync_builder b;
    usual(&b);
    powerctl *pc = start(f, 0, 0);
    powerctl_apply(pc, plan_of(&b, true));
    wait_events(f, 2);
    /* The boot device first, then the cycle of an off host: powered on. */
    assert_int_equal(f->events[0].phase, RACKBOOT__V1__PHASE__PHASE_BOOTDEV_SET);
    assert_string_equal(f->events[0].message, "pxe efi");
    assert_string_equal(f->events[0].power_id, "p1");
    assert_string_equal(f->events[0].install_id, "i1");
    assert_int_equal(f->events[1].phase, RACKBOOT__V1__PHASE__PHASE_POWER_CYCLE);
    assert_string_equal(f->events[1].power_id, "p1");
    assert_string_equal(f->events[1].host, "web1");
    assert_int_equal(f->events[1].power_state, RACKBOOT__V1__POWER_STATE__POWER_STATE_ON);
    assert_non_null(strstr(f->events[1].message, "powered on"));
    fake_bmc fb = fake_get("bmc1.test");
    assert_int_equal(fb.controls, 1);
    assert_int_equal(fb.bootdevs, 1);
    assert_int_equal(fb.last_bootdev, POWER_BOOTDEV_PXE);
    assert_true(fb.last_efi);

    /* The controller has not stored the event yet: the next generation
     * still holds the command. It does not run again. */
    b.sr.generation++;
    powerctl_apply(pc, plan_of(&b, true));
    run_for(f, 300);
    assert_int_equal(f->n_events, 2);
    assert_int_equal(fake_get("bmc1.test").controls, 1);
    assert_int_equal(powerctl_get_stats(pc)->commands_ok, 1);
    stop(f, pc);

    /* Nor after a restart: the done ids are on disk. */
    pc = start(f, 0, 0);
    powerctl_apply(pc, plan_of(&b, true));
    run_for(f, 300);
    assert_int_equal(f->n_events, 2);
    assert_int_equal(fake_get("bmc1.test").controls, 1);
    stop(f, pc);
}

static void test_command_failures(void **state)
{
    fixture *f = *state;
    sync_builder b;
    sb_init(&b);
    sb_bmc(&b, "web1", "ipmi://bmc1.test", "wrong-password");
    sb_bmc(&b, "web2", "ipmi://bmc2.test", FAKE_PASSWORD);
    sb_bmc(&b, "web4", "ipmi://admin:pw@bmc4.test", FAKE_PASSWORD);
    sb_cmd(&b, "p1", "web1", RACKBOOT__V1__POWER_ACTION__POWER_ACTION_ON,
           RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_UNSPECIFIED, "");
    sb_cmd(&b, "p2", "web3", RACKBOOT__V1__POWER_ACTION__POWER_ACTION_ON,
           RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_UNSPECIFIED, "");
    sb_cmd(&b, "p3", "web4", RACKBOOT__V1__POWER_ACTION__POWER_ACTION_OFF,
           RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_UNSPECIFIED, "");
    sb_cmd(&b, "p4", "web2", RACKBOOT__V1__POWER_ACTION__POWER_ACTION_STATUS,
           RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_UNSPECIFIED, "");
    fake_set("bmc2.test", POWER_STATE_OFF, true);
    powerctl *pc = start(f, 0, 0);
    powerctl_apply(pc, plan_of(&b, true));
    wait_events(f, 4);
    const seen_event *by_id[5] = { 0 };
    for (size_t i = 0; i < f->n_events; i++) {
        int n = f->events[i].power_id[1] - '0';
        assert_int_equal(f->events[i].phase, RACKBOOT__V1__PHASE__PHASE_POWER_FAILED);
        assert_null(by_id[n]);
        by_id[n] = &f->events[i];
    }
    assert_string_equal(by_id[1]->message, "password rejected by BMC");
    assert_non_null(strstr(by_id[2]->message, "no BMC"));
    assert_non_null(strstr(by_id[3]->message, "unusable"));
    assert_null(strstr(by_id[3]->message, ":pw@")); /* never echoes credentials */
    assert_string_equal(by_id[4]->message, "fake BMC unreachable");
    /* A rejected password is never retried (it may lock the account); an
     * unreachable BMC is, once (retries = 1). */
    assert_int_equal(fake_get("bmc1.test").opens, 1);
    assert_int_equal(fake_get("bmc2.test").opens, 2);
    assert_int_equal(powerctl_get_stats(pc)->commands_failed, 4);
    /* Failed commands are done too: the controller hears once. */
    powerctl_apply(pc, plan_of(&b, true));
    run_for(f, 300);
    assert_int_equal(f->n_events, 4);
    stop(f, pc);
}

static void test_full_queue_waits(void **state)
{
    fixture *f = *state;
    sync_builder b;
    sb_init(&b);
    sb_bmc(&b, "web1", "ipmi://bmc1.test", FAKE_PASSWORD);
    sb_bmc(&b, "web2", "ipmi://bmc2.test", FAKE_PASSWORD);
    sb_bmc(&b, "web3", "ipmi://bmc3.test", FAKE_PASSWORD);
    sb_cmd(&b, "p1", "web1", RACKBOOT__V1__POWER_ACTION__POWER_ACTION_ON,
           RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_UNSPECIFIED, "");
    sb_cmd(&b, "p2", "web2", RACKBOOT__V1__POWER_ACTION__POWER_ACTION_ON,
           RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_UNSPECIFIED, "");
    sb_cmd(&b, "p3", "web3", RACKBOOT__V1__POWER_ACTION__POWER_ACTION_ON,
           RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_UNSPECIFIED, "");
    sb_cmd(&b, "p4", "web1", RACKBOOT__V1__POWER_ACTION__POWER_ACTION_OFF,
           RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_UNSPECIFIED, "");
    /* One job at a time in the queue: the rest wait for room, in order. */
    powerctl *pc = start(f, 0, 1);
    powerctl_apply(pc, plan_of(&b, true));
    wait_events(f, 4);
    for (size_t i = 0; i < 4; i++) {
        char want[8];
        snprintf(want, sizeof(want), "p%zu", i + 1);
        assert_string_equal(f->events[i].power_id, want);
    }
    assert_int_equal(f->events[3].phase, RACKBOOT__V1__PHASE__PHASE_POWER_OFF);
    assert_int_equal(fake_get("bmc1.test").state, POWER_STATE_OFF);
    assert_int_equal(fake_get("bmc3.test").state, POWER_STATE_ON);
    stop(f, pc);
}

static size_t count_phase(const fixture *f, const char *host, Rackboot__V1__Phase phase)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_events; i++) {
        n += streq(f->events[i].host, host) && f->events[i].phase == phase;
    }
    return n;
}

static void test_poll(void **state)
{
    fixture *f = *state;
    sync_builder b;
    sb_init(&b);
    sb_bmc(&b, "web1", "ipmi://bmc1.test", FAKE_PASSWORD);
    sb_bmc(&b, "web2", "ipmi://bmc2.test", FAKE_PASSWORD);
    fake_set("bmc2.test", POWER_STATE_ON, false);
    powerctl *pc = start(f, 100, 0);
    /* A restored plan: the BMCs without commands. */
    powerctl_apply(pc, plan_of(&b, false));
    wait_events(f, 2);
    assert_int_equal(count_phase(f, "web1", RACKBOOT__V1__PHASE__PHASE_POWER_STATUS), 1);
    assert_int_equal(count_phase(f, "web2", RACKBOOT__V1__PHASE__PHASE_POWER_STATUS), 1);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(f->events[i].power_id, ""); /* the agent's own poll */
        bool web1 = streq(f->events[i].host, "web1");
        assert_int_equal(f->events[i].power_state, web1
                                                       ? RACKBOOT__V1__POWER_STATE__POWER_STATE_OFF
                                                       : RACKBOOT__V1__POWER_STATE__POWER_STATE_ON);
    }
    /* Unchanged states: polled again and again, no new events. */
    uint64_t polls = powerctl_get_stats(pc)->polls;
    run_for(f, 600);
    assert_true(powerctl_get_stats(pc)->polls > polls);
    assert_int_equal(f->n_events, 2);

    /* A change is one event. */
    fake_set("bmc1.test", POWER_STATE_ON, false);
    wait_events(f, 3);
    assert_string_equal(f->events[2].host, "web1");
    assert_int_equal(f->events[2].power_state, RACKBOOT__V1__POWER_STATE__POWER_STATE_ON);

    /* An outage is one POWER_FAILED, however many polls fail; its end is a
     * status event again. */
    fake_set("bmc2.test", POWER_STATE_ON, true);
    wait_events(f, 4);
    assert_int_equal(f->events[3].phase, RACKBOOT__V1__PHASE__PHASE_POWER_FAILED);
    run_for(f, 600);
    assert_int_equal(f->n_events, 4);
    assert_true(powerctl_get_stats(pc)->polls_failed >= 2);
    fake_set("bmc2.test", POWER_STATE_ON, false);
    wait_events(f, 5);
    assert_int_equal(f->events[4].phase, RACKBOOT__V1__PHASE__PHASE_POWER_STATUS);
    assert_string_equal(f->events[4].host, "web2");

    /* A host that leaves the plan is no longer polled. */
    sync_builder b2;
    sb_init(&b2);
    sb_bmc(&b2, "web1", "ipmi://bmc1.test", FAKE_PASSWORD);
    powerctl_apply(pc, plan_of(&b2, false));
    run_for(f, 200); /* a poll of web2 in flight ends */
    unsigned opens = fake_get("bmc2.test").opens;
    run_for(f, 600);
    assert_int_equal(fake_get("bmc2.test").opens, opens);
    assert_int_equal(powerctl_get_stats(pc)->bmcs, 1);
    stop(f, pc);
}

/* A rejected password: one poll, one event, then no more polls (retries
 * could lock the account) until the credentials change. */
static void test_poll_stops_on_rejected_password(void **state)
{
    fixture *f = *state;
    sync_builder b;
    sb_init(&b);
    sb_bmc(&b, "web3", "ipmi://bmc3.test", "wrong-password");
    powerctl *pc = start(f, 100, 0);
    powerctl_apply(pc, plan_of(&b, false));
    wait_events(f, 1);
    assert_int_equal(f->events[0].phase, RACKBOOT__V1__PHASE__PHASE_POWER_FAILED);
    run_for(f, 800);
    assert_int_equal(fake_get("bmc3.test").opens, 1);
    assert_int_equal(f->n_events, 1);
    /* Fixed credentials: polled again. */
    sync_builder b2;
    sb_init(&b2);
    sb_bmc(&b2, "web3", "ipmi://bmc3.test", FAKE_PASSWORD);
    powerctl_apply(pc, plan_of(&b2, false));
    wait_events(f, 2);
    assert_int_equal(f->events[1].phase, RACKBOOT__V1__PHASE__PHASE_POWER_STATUS);
    stop(f, pc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_from_sync),
        cmocka_unit_test_setup_teardown(test_command_runs_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poll_stops_on_rejected_password, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests of rack-agent/power/: target URLs, names, the driver-independent
 * request sequence and the executor, with a fake driver standing in for the
 * BMCs (tests/integration/power_ipmi.sh drives the real IPMI driver). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "power/power.h"
#include "util.h"

/* ---- targets ------------------------------------------------------------- */

static power_target *parse_ok(const char *url)
{
    power_target *t = NULL;
    char *why = NULL;
    int r = power_target_parse(url, "admin", "s3cret-pw", &t, &why);
    if (r < 0) {
        fail_msg("%s refused: %s", url, why ? why : "(no reason)");
    }
    assert_null(why);
    return t;
}

static void test_target_accepts(void **state)
{
    static const struct {
        const char *url, *scheme, *host;
        uint16_t port;
        const char *display;
    } cases[] = {
        { "ipmi://[2001:db8:ff::17]:623", "ipmi", "2001:db8:ff::17", 623,
          "ipmi://[2001:db8:ff::17]:623 user=admin" },
        { "ipmi://[2001:db8::1]", "ipmi", "2001:db8::1", 623,
          "ipmi://[2001:db8::1]:623 user=admin" },
        { "ipmi://192.0.2.7:6230", "ipmi", "192.0.2.7", 6230, "ipmi://192.0.2.7:6230 user=admin" },
        { "ipmi://bmc17.example", "ipmi", "bmc17.example", 623,
          "ipmi://bmc17.example:623 user=admin" },
        /* Scheme and host name compare case-insensitively: one spelling. */
        { "IPMI://BMC17.Example:1623/", "ipmi", "bmc17.example", 1623,
          "ipmi://bmc17.example:1623 user=admin" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        power_target *t = parse_ok(cases[i].url);
        assert_string_equal(power_target_scheme(t), cases[i].scheme);
        assert_string_equal(power_target_host(t), cases[i].host);
        assert_int_equal(power_target_port(t), cases[i].port);
        assert_string_equal(power_target_user(t), "admin");
        assert_string_equal(power_target_password(t), "s3cret-pw");
        assert_string_equal(power_target_to_string(t), cases[i].display);
        power_target *c = power_target_copy(t);
        assert_non_null(c);
        assert_string_equal(power_target_to_string(c), cases[i].display);
        assert_string_equal(power_target_password(c), "s3cret-pw");
        assert_true(power_target_same_endpoint(t, c));
        assert_null(power_target_free(c));
        assert_null(power_target_free(t));
    }
}

static void test_target_refuses(void **state)
{
    static const char *const bad[] = {
        "",
        "bmc17.example",
        "ipmi:/bmc17",
        "ipmi://",
        "https://bmc17.example",   /* no driver for it (yet) */
        "redfish://bmc17.example", /* ditto */
        "ftp://[2001:db8::1]",
        "ipmi://2001:db8::1", /* IPv6 needs brackets */
        "ipmi://2001:db8::1:623",
        "ipmi://[2001:db8::1",
        "ipmi://[2001:db8::zz]",
        "ipmi://[192.0.2.7]",
        "ipmi://[fe80::1%25eth0]",
        "ipmi://[fe80::1%eth0]",
        "ipmi://[2001:db8::1]623",
        "ipmi://[2001:db8::1]:",
        "ipmi://bmc17:0",
        "ipmi://bmc17:65536",
        "ipmi://bmc17:+623",
        "ipmi://bmc17:62x",
        "ipmi://:623",
        "ipmi://bmc17/redfish/v1",
        "ipmi://bmc17?x=1",
        "ipmi://bmc17#frag",
        "ipmi://bm c17",
        "ipmi://bmc17\n",
        "ipmi://-bmc17",
        "ipmi://999.1.1.1",
        "ipmi://192.0.2",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        power_target *t = (power_target *)(uintptr_t)0x1; /* must stay untouched */
        char *why = NULL;
        int r = power_target_parse(bad[i], "admin", "pw", &t, &why);
        if (r != -EINVAL) {
            fail_msg("%s: got %d, want -EINVAL", bad[i], r);
        }
        assert_ptr_equal(t, (power_target *)(uintptr_t)0x1);
        assert_non_null(why);
        assert_true(strlen(why) > 0);
        free(why);
    }
    /* A NULL ret_error is allowed. */
    power_target *t = NULL;
    assert_int_equal(power_target_parse("nope", "admin", "pw", &t, NULL), -EINVAL);
    assert_null(t);
}

static void test_target_refuses_userinfo_without_echoing_it(void **state)
{
    static const char *const urls[] = {
        "ipmi://admin:hunter2@bmc17.example",
        "ipmi://admin:hunter2@[2001:db8::1]:623",
        "ipmi://hunter2@192.0.2.7",
    };
    for (size_t i = 0; i < ARRAY_SIZE(urls); i++) {
        power_target *t = NULL;
        char *why = NULL;
        assert_int_equal(power_target_parse(urls[i], "admin", "pw", &t, &why), -EINVAL);
        assert_null(t);
        assert_non_null(why);
        assert_non_null(strstr(why, "credentials"));
        assert_null(strstr(why, "hunter2"));
        free(why);
    }
}

static void test_target_credentials_limits(void **state)
{
    power_target *t = NULL;
    char *why = NULL;
    /* IPMI: user names up to 16 bytes, passwords up to 20. */
    assert_int_equal(power_target_parse("ipmi://bmc", "a-user-name-of-17", "pw", &t, &why),
                     -EINVAL);
    assert_non_null(why);
    free(why);
    why = NULL;
    assert_int_equal(power_target_parse("ipmi://bmc", "admin", "a-password-of-21-byte", &t, &why),
                     -EINVAL);
    assert_non_null(why);
    assert_null(strstr(why, "a-password-of-21-byte"));
    free(why);
    assert_null(t);
    assert_int_equal(
        power_target_parse("ipmi://bmc", "user-of-16-bytes", "password-of-20-bytes", &t, NULL), 0);
    t = power_target_free(t);
    /* Anonymous IPMI users exist: "" is allowed, NULL is not. */
    assert_int_equal(power_target_parse("ipmi://bmc", "", "", &t, NULL), 0);
    t = power_target_free(t);
    assert_int_equal(power_target_parse("ipmi://bmc", NULL, "pw", &t, NULL), -EINVAL);
    assert_null(power_target_free(NULL));
}

static void test_target_string_never_holds_password(void **state)
{
    static const char *const users[] = { "admin", "ops team", "pw=hunter2" };
    for (size_t i = 0; i < ARRAY_SIZE(users); i++) {
        power_target *t = NULL;
        assert_int_equal(
            power_target_parse("ipmi://[2001:db8::17]:623", users[i], "Hunter2!", &t, NULL), 0);
        const char *s = power_target_to_string(t);
        assert_null(strstr(s, "Hunter2!"));
        assert_null(strstr(s, "Hunter2"));
        assert_non_null(strstr(s, "ipmi://[2001:db8::17]:623"));
        /* A user name with a space is quoted, so the log line stays parseable. */
        if (strchr(users[i], ' ')) {
            assert_non_null(strstr(s, "user=\"ops team\""));
        }
        t = power_target_free(t);
    }
}

static void test_target_same_endpoint(void **state)
{
    power_target *a = parse_ok("ipmi://[2001:db8::1]");
    power_target *b = parse_ok("ipmi://[2001:db8:0:0::1]:623");
    power_target *c = parse_ok("ipmi://[2001:db8::1]:624");
    power_target *d = parse_ok("ipmi://BMC1.example");
    power_target *e = parse_ok("ipmi://bmc1.example:623");
    power_target *f = parse_ok("ipmi://bmc2.example");
    assert_true(power_target_same_endpoint(a, b));
    assert_false(power_target_same_endpoint(a, c));
    assert_true(power_target_same_endpoint(d, e));
    assert_false(power_target_same_endpoint(d, f));
    assert_false(power_target_same_endpoint(a, d));
    power_target_free(a);
    power_target_free(b);
    power_target_free(c);
    power_target_free(d);
    power_target_free(e);
    power_target_free(f);
}

/* ---- names --------------------------------------------------------------- */

static void test_names(void **state)
{
    static const char *const ops[] = { "status", "on", "off", "cycle", "soft" };
    for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
        power_op op = POWER_OP_SOFT + 1;
        assert_int_equal(power_op_from_string(ops[i], &op), 0);
        assert_int_equal(op, (power_op)i);
        assert_string_equal(power_op_to_string(op), ops[i]);
    }
    assert_int_equal(POWER_OP_STATUS, 0);
    assert_int_equal(POWER_OP_CYCLE, 3);

    power_bootdev dev = POWER_BOOTDEV_NONE;
    assert_int_equal(power_bootdev_from_string("pxe", &dev), 0);
    assert_int_equal(dev, POWER_BOOTDEV_PXE);
    assert_int_equal(power_bootdev_from_string("disk", &dev), 0);
    assert_int_equal(dev, POWER_BOOTDEV_DISK);
    assert_string_equal(power_bootdev_to_string(POWER_BOOTDEV_PXE), "pxe");
    assert_string_equal(power_bootdev_to_string(POWER_BOOTDEV_DISK), "disk");
    assert_string_equal(power_bootdev_to_string(POWER_BOOTDEV_NONE), "none");

    power_state st = POWER_STATE_UNKNOWN;
    assert_int_equal(power_state_from_string("on", &st), 0);
    assert_int_equal(st, POWER_STATE_ON);
    assert_int_equal(power_state_from_string("off", &st), 0);
    assert_int_equal(st, POWER_STATE_OFF);
    assert_int_equal(power_state_from_string("unknown", &st), 0);
    assert_int_equal(st, POWER_STATE_UNKNOWN);
    assert_string_equal(power_state_to_string(POWER_STATE_ON), "on");
    assert_string_equal(power_state_to_string(POWER_STATE_OFF), "off");
    assert_string_equal(power_state_to_string(POWER_STATE_UNKNOWN), "unknown");

    /* Unknown names fail and leave the output alone; out-of-range values
     * print as "?" rather than reading past the table. */
    power_op op = POWER_OP_OFF;
    assert_int_equal(power_op_from_string("reset", &op), -EINVAL);
    assert_int_equal(power_op_from_string("ON", &op), -EINVAL);
    assert_int_equal(power_op_from_string("", &op), -EINVAL);
    assert_int_equal(power_op_from_string(NULL, &op), -EINVAL);
    assert_int_equal(op, POWER_OP_OFF);
    dev = POWER_BOOTDEV_DISK;
    assert_int_equal(power_bootdev_from_string("cdrom", &dev), -EINVAL);
    assert_int_equal(dev, POWER_BOOTDEV_DISK);
    assert_int_equal(power_state_from_string("maybe", &st), -EINVAL);
    assert_string_equal(power_op_to_string((power_op)99), "?");
    assert_string_equal(power_bootdev_to_string((power_bootdev)-1), "?");
    assert_string_equal(power_state_to_string((power_state)7), "?");

    assert_true(power_error_is_transient(-ETIMEDOUT));
    assert_true(power_error_is_transient(-EHOSTUNREACH));
    assert_false(power_error_is_transient(-EACCES));
    assert_false(power_error_is_transient(-EPERM));
    assert_false(power_error_is_transient(0));

    assert_ptr_equal(power_driver_lookup("ipmi"), &power_driver_ipmi);
    assert_ptr_equal(power_driver_lookup("IPMI"), &power_driver_ipmi);
    assert_null(power_driver_lookup("redfish"));
    assert_null(power_driver_lookup(NULL));
}

/* ---- the fake driver ------------------------------------------------------ */

#define FAKE_BMCS  8
#define FAKE_CALLS 32

/* One fake BMC per host "bmcN.test". Open fails with open_errors[] in turn
 * (0 ends the list: then it succeeds). Every call takes delay_ms. */
typedef struct fake_bmc {
    power_state state;
    int open_errors[8];
    unsigned delay_ms;
    int bootdev_error;
    /* Recorded: */
    unsigned opens;
    unsigned running, max_running; /* sessions open at once on this BMC */
    char calls[FAKE_CALLS][16];    /* "open", "bootdev", "get", "control:on" ... */
    unsigned n_calls;
    power_bootdev last_bootdev;
    bool last_efi;
} fake_bmc;

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static fake_bmc fakes[FAKE_BMCS];
static unsigned fake_running, fake_max_running; /* all BMCs */

struct power_session {
    fake_bmc *b;
};

static void fake_reset(void)
{
    pthread_mutex_lock(&fake_lock);
    memset(fakes, 0, sizeof(fakes));
    for (size_t i = 0; i < FAKE_BMCS; i++) {
        fakes[i].state = POWER_STATE_OFF;
    }
    fake_running = fake_max_running = 0;
    pthread_mutex_unlock(&fake_lock);
}

static void fake_record(fake_bmc *b, const char *what)
{
    if (b->n_calls < FAKE_CALLS) {
        snprintf(b->calls[b->n_calls], sizeof(b->calls[0]), "%s", what);
        b->n_calls++;
    }
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static int fake_open(const power_target *t, const power_limits *lim, power_session **ret,
                     power_result *res)
{
    unsigned n;
    if (sscanf(power_target_host(t), "bmc%u.test", &n) != 1 || n >= FAKE_BMCS) {
        return power_result_fail(res, -EHOSTUNREACH, "no such fake BMC");
    }
    fake_bmc *b = &fakes[n];
    pthread_mutex_lock(&fake_lock);
    unsigned i = b->opens++;
    int err = i < ARRAY_SIZE(b->open_errors) ? b->open_errors[i] : 0;
    unsigned delay = b->delay_ms;
    fake_record(b, "open");
    if (err == 0) {
        b->running++;
        if (b->running > b->max_running) {
            b->max_running = b->running;
        }
        fake_running++;
        if (fake_running > fake_max_running) {
            fake_max_running = fake_running;
        }
    }
    pthread_mutex_unlock(&fake_lock);
    sleep_ms(delay);
    if (err < 0) {
        return power_result_fail(res, err, "fake open error %d", err);
    }
    power_session *s = calloc(1, sizeof(*s));
    RB_ASSERT(s); /* a worker thread: no cmocka assertions here */
    s->b = b;
    *ret = s;
    return 0;
}

static int fake_get_state(power_session *s, power_state *ret, power_result *res)
{
    pthread_mutex_lock(&fake_lock);
    fake_record(s->b, "get");
    *ret = s->b->state;
    pthread_mutex_unlock(&fake_lock);
    return 0;
}

static int fake_set_bootdev(power_session *s, power_bootdev dev, bool efi, power_result *res)
{
    pthread_mutex_lock(&fake_lock);
    fake_record(s->b, "bootdev");
    int err = s->b->bootdev_error;
    if (err == 0) {
        s->b->last_bootdev = dev;
        s->b->last_efi = efi;
    }
    pthread_mutex_unlock(&fake_lock);
    if (err < 0) {
        return power_result_fail(res, err, "fake bootdev error");
    }
    return 0;
}

static int fake_control(power_session *s, power_op op, power_result *res)
{
    char what[16];
    snprintf(what, sizeof(what), "control:%s", power_op_to_string(op));
    pthread_mutex_lock(&fake_lock);
    fake_record(s->b, what);
    switch (op) {
    case POWER_OP_ON:
        s->b->state = POWER_STATE_ON;
        break;
    case POWER_OP_OFF:
    case POWER_OP_SOFT:
        s->b->state = POWER_STATE_OFF;
        break;
    case POWER_OP_CYCLE:
        /* Like IPMI 2.0 §28.3 recommends: nothing happens when off. */
        break;
    default:
        RB_ASSERT(!"control with a non-control op");
    }
    pthread_mutex_unlock(&fake_lock);
    return 0;
}

static power_session *fake_close(power_session *s)
{
    if (s) {
        pthread_mutex_lock(&fake_lock);
        s->b->running--;
        fake_running--;
        pthread_mutex_unlock(&fake_lock);
        free(s);
    }
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

static power_target *fake_target(unsigned n)
{
    char url[64];
    snprintf(url, sizeof(url), "ipmi://bmc%u.test", n);
    return parse_ok(url);
}

static void assert_calls(const fake_bmc *b, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n && i < b->n_calls; i++) {
        if (!streq(b->calls[i], want[i])) {
            fail_msg("call %zu: got %s, want %s", i, b->calls[i], want[i]);
        }
    }
    assert_int_equal(b->n_calls, n);
}

/* ---- the request sequence (power_driver_run) ------------------------------ */

static power_result run_fake(unsigned n, power_op op, power_bootdev dev, bool efi)
{
    power_target *t = fake_target(n);
    power_request req = { .op = op, .bootdev = dev, .efi = efi };
    power_limits lim = { .attempt_timeout_ms = 5000 };
    power_result res;
    memset(&res, 0x5a, sizeof(res));
    res.attempts = 0;
    power_driver_run(&fake_driver, t, &req, &lim, &res);
    power_target_free(t);
    return res;
}

static void test_run_cycle_of_off_host_powers_on(void **state)
{
    fake_reset();
    fakes[0].state = POWER_STATE_OFF;
    power_result res = run_fake(0, POWER_OP_CYCLE, POWER_BOOTDEV_NONE, false);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.state, POWER_STATE_ON);
    assert_false(res.bootdev_set);
    assert_non_null(strstr(res.message, "powered on instead"));
    static const char *const want[] = { "open", "get", "control:on", "get" };
    assert_calls(&fakes[0], want, ARRAY_SIZE(want));
}

static void test_run_cycle_of_on_host_cycles(void **state)
{
    fake_reset();
    fakes[1].state = POWER_STATE_ON;
    power_result res = run_fake(1, POWER_OP_CYCLE, POWER_BOOTDEV_NONE, false);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.state, POWER_STATE_ON);
    assert_string_equal(res.message, "");
    static const char *const want[] = { "open", "get", "control:cycle", "get" };
    assert_calls(&fakes[1], want, ARRAY_SIZE(want));
}

static void test_run_bootdev_first_then_op_then_state(void **state)
{
    fake_reset();
    power_result res = run_fake(2, POWER_OP_ON, POWER_BOOTDEV_PXE, true);
    assert_int_equal(res.err, 0);
    assert_true(res.bootdev_set);
    assert_int_equal(res.state, POWER_STATE_ON);
    assert_int_equal(fakes[2].last_bootdev, POWER_BOOTDEV_PXE);
    assert_true(fakes[2].last_efi);
    static const char *const want[] = { "open", "bootdev", "control:on", "get" };
    assert_calls(&fakes[2], want, ARRAY_SIZE(want));

    /* STATUS sends no chassis control; with a boot device it only sets it. */
    fake_reset();
    res = run_fake(2, POWER_OP_STATUS, POWER_BOOTDEV_DISK, false);
    assert_int_equal(res.err, 0);
    assert_true(res.bootdev_set);
    assert_int_equal(res.state, POWER_STATE_OFF);
    assert_int_equal(fakes[2].last_bootdev, POWER_BOOTDEV_DISK);
    assert_false(fakes[2].last_efi);
    static const char *const want2[] = { "open", "bootdev", "get" };
    assert_calls(&fakes[2], want2, ARRAY_SIZE(want2));
}

static void test_run_errors_stop_the_sequence(void **state)
{
    /* A refused boot device: no power change, so a host never boots from
     * the wrong device because its boot device was not set. */
    fake_reset();
    fakes[3].bootdev_error = -EPROTO;
    power_result res = run_fake(3, POWER_OP_CYCLE, POWER_BOOTDEV_PXE, false);
    assert_int_equal(res.err, -EPROTO);
    assert_false(res.bootdev_set);
    assert_int_equal(res.state, POWER_STATE_UNKNOWN);
    assert_non_null(strstr(res.message, "fake bootdev error"));
    static const char *const want[] = { "open", "bootdev" };
    assert_calls(&fakes[3], want, ARRAY_SIZE(want));
    assert_int_equal(fakes[3].running, 0); /* the session was closed */

    fake_reset();
    fakes[3].open_errors[0] = -EACCES;
    res = run_fake(3, POWER_OP_ON, POWER_BOOTDEV_NONE, false);
    assert_int_equal(res.err, -EACCES);
    assert_int_equal(res.state, POWER_STATE_UNKNOWN);
    assert_int_equal(fakes[3].state, POWER_STATE_OFF);
}

/* ---- the executor ---------------------------------------------------------- */

#define MAX_JOBS 16

typedef struct harness {
    uv_loop_t loop;
    power_executor *ex;
    power_result results[MAX_JOBS];
    unsigned done_calls[MAX_JOBS];
    unsigned order[MAX_JOBS]; /* job ids in the order done was called */
    unsigned n_done;
} harness;

typedef struct job_ref {
    harness *h;
    unsigned id;
} job_ref;

static job_ref refs[MAX_JOBS];

static void on_done(void *userdata, const power_result *res)
{
    job_ref *j = userdata;
    harness *h = j->h;
    h->results[j->id] = *res;
    h->done_calls[j->id]++;
    h->order[h->n_done++] = j->id;
}

static void harness_start(harness *h, unsigned max_concurrent, int retries)
{
    memset(h, 0, sizeof(*h));
    assert_int_equal(uv_loop_init(&h->loop), 0);
    power_executor_options o = {
        .max_concurrent = max_concurrent,
        .attempt_timeout_ms = 2000,
        .retries = retries,
        .backoff_ms = 5,
        .lookup = fake_lookup,
    };
    assert_int_equal(power_executor_new(&h->loop, &o, &h->ex), 0);
}

static void harness_submit(harness *h, unsigned id, unsigned bmc, power_op op)
{
    power_target *t = fake_target(bmc);
    power_request req = { .op = op };
    refs[id] = (job_ref){ .h = h, .id = id };
    assert_int_equal(power_executor_submit(h->ex, t, &req, on_done, &refs[id]), 0);
    power_target_free(t); /* the executor keeps its own copy */
}

static void harness_stop(harness *h)
{
    h->ex = power_executor_free(h->ex);
    assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&h->loop), 0);
}

static void test_executor_retries_timeout_then_succeeds(void **state)
{
    fake_reset();
    fakes[0].open_errors[0] = -ETIMEDOUT;
    harness h;
    harness_start(&h, 4, 2);
    harness_submit(&h, 0, 0, POWER_OP_ON);
    assert_int_equal(power_executor_pending(h.ex), 1);
    uv_run(&h.loop, UV_RUN_DEFAULT); /* returns once every done ran */
    assert_int_equal(h.done_calls[0], 1);
    assert_int_equal(h.results[0].err, 0);
    assert_int_equal(h.results[0].attempts, 2);
    assert_int_equal(h.results[0].state, POWER_STATE_ON);
    assert_int_equal(fakes[0].opens, 2);
    assert_int_equal(power_executor_pending(h.ex), 0);
    harness_stop(&h);
}

static void test_executor_never_retries_rejected_password(void **state)
{
    fake_reset();
    fakes[1].open_errors[0] = -EACCES;
    harness h;
    harness_start(&h, 4, 2);
    harness_submit(&h, 0, 1, POWER_OP_ON);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    assert_int_equal(h.done_calls[0], 1);
    assert_int_equal(h.results[0].err, -EACCES);
    assert_int_equal(h.results[0].attempts, 1);
    assert_int_equal(fakes[1].opens, 1);
    assert_int_equal(fakes[1].state, POWER_STATE_OFF);
    harness_stop(&h);
}

static void test_executor_retries_are_bounded(void **state)
{
    fake_reset();
    for (size_t i = 0; i < ARRAY_SIZE(fakes[2].open_errors); i++) {
        fakes[2].open_errors[i] = -ETIMEDOUT;
    }
    fakes[3].open_errors[0] = -ETIMEDOUT;
    harness h;
    harness_start(&h, 4, 2);
    harness_submit(&h, 0, 2, POWER_OP_OFF);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    assert_int_equal(h.results[0].err, -ETIMEDOUT);
    assert_int_equal(h.results[0].attempts, 3); /* 1 + 2 retries */
    assert_int_equal(fakes[2].opens, 3);
    assert_non_null(strstr(h.results[0].message, "fake open error"));
    harness_stop(&h);

    /* retries = 0: one attempt only. */
    harness_start(&h, 4, 0);
    harness_submit(&h, 0, 3, POWER_OP_OFF);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    assert_int_equal(h.results[0].err, -ETIMEDOUT);
    assert_int_equal(h.results[0].attempts, 1);
    assert_int_equal(fakes[3].opens, 1);
    harness_stop(&h);
}

static void test_executor_one_job_per_bmc_in_order(void **state)
{
    fake_reset();
    fakes[4].delay_ms = 40;
    harness h;
    harness_start(&h, 4, 0);
    /* Five jobs for one BMC (two spellings of its name) with four workers:
     * they must still run one at a time, in submission order. */
    static const power_op ops[] = { POWER_OP_ON, POWER_OP_OFF, POWER_OP_ON, POWER_OP_CYCLE,
                                    POWER_OP_OFF };
    for (unsigned i = 0; i < ARRAY_SIZE(ops); i++) {
        if (i == 2) {
            power_target *t = parse_ok("ipmi://BMC4.test:623");
            power_request req = { .op = ops[i] };
            refs[i] = (job_ref){ .h = &h, .id = i };
            assert_int_equal(power_executor_submit(h.ex, t, &req, on_done, &refs[i]), 0);
            power_target_free(t);
        } else {
            harness_submit(&h, i, 4, ops[i]);
        }
    }
    uv_run(&h.loop, UV_RUN_DEFAULT);
    assert_int_equal(h.n_done, ARRAY_SIZE(ops));
    for (unsigned i = 0; i < ARRAY_SIZE(ops); i++) {
        assert_int_equal(h.order[i], i);
        assert_int_equal(h.done_calls[i], 1);
        assert_int_equal(h.results[i].err, 0);
    }
    assert_int_equal(fakes[4].max_running, 1);
    /* States: off -> on -> off -> on; the cycle finds the host on. */
    static const char *const want[] = {
        "open", "control:on", "get",         "open", "control:off", "get",
        "open", "control:on", "get",         "open", "get",         "control:cycle",
        "get",  "open",       "control:off", "get",
    };
    assert_calls(&fakes[4], want, ARRAY_SIZE(want));
    harness_stop(&h);
}

static void test_executor_bounded_concurrency_across_bmcs(void **state)
{
    fake_reset();
    for (unsigned i = 0; i < FAKE_BMCS; i++) {
        /* Long enough that three workers are surely busy at once even on a
         * loaded CI machine under the sanitizers. */
        fakes[i].delay_ms = 300;
    }
    harness h;
    harness_start(&h, 3, 0);
    for (unsigned i = 0; i < FAKE_BMCS; i++) {
        harness_submit(&h, i, i, POWER_OP_ON);
    }
    uv_run(&h.loop, UV_RUN_DEFAULT);
    assert_int_equal(h.n_done, FAKE_BMCS);
    for (unsigned i = 0; i < FAKE_BMCS; i++) {
        assert_int_equal(h.results[i].err, 0);
        assert_int_equal(fakes[i].max_running, 1);
    }
    /* Different BMCs do run at once, and never more than max_concurrent. */
    assert_int_equal(fake_max_running, 3);
    harness_stop(&h);
}

static void test_executor_free_cancels_queued(void **state)
{
    fake_reset();
    fakes[0].delay_ms = 300;
    harness h;
    harness_start(&h, 1, 0);
    harness_submit(&h, 0, 0, POWER_OP_ON);  /* runs */
    harness_submit(&h, 1, 1, POWER_OP_ON);  /* queued: the only worker is busy */
    harness_submit(&h, 2, 0, POWER_OP_OFF); /* queued behind job 0's BMC */
    /* Wait (bounded) until job 0 holds the worker. */
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&fake_lock);
        unsigned opens = fakes[0].opens;
        pthread_mutex_unlock(&fake_lock);
        if (opens > 0) {
            break;
        }
        sleep_ms(10);
    }
    assert_int_equal(fakes[0].opens, 1);
    h.ex = power_executor_free(h.ex);
    /* Every job reported exactly once, during free: the running one with its
     * result, the queued ones cancelled. */
    assert_int_equal(h.n_done, 3);
    assert_int_equal(h.done_calls[0], 1);
    assert_int_equal(h.results[0].err, 0);
    assert_int_equal(h.results[0].state, POWER_STATE_ON);
    assert_int_equal(h.done_calls[1], 1);
    assert_int_equal(h.results[1].err, -ECANCELED);
    assert_int_equal(h.done_calls[2], 1);
    assert_int_equal(h.results[2].err, -ECANCELED);
    assert_int_equal(fakes[1].opens, 0);
    assert_int_equal(fakes[0].opens, 1);
    assert_int_equal(uv_run(&h.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&h.loop), 0);
    assert_null(power_executor_free(NULL));
}

static void test_executor_cycle_of_off_host_powers_on(void **state)
{
    fake_reset();
    fakes[5].state = POWER_STATE_OFF;
    harness h;
    harness_start(&h, 2, 2);
    harness_submit(&h, 0, 5, POWER_OP_CYCLE);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    assert_int_equal(h.results[0].err, 0);
    assert_int_equal(h.results[0].state, POWER_STATE_ON);
    assert_int_equal(fakes[5].state, POWER_STATE_ON);
    harness_stop(&h);
}

static void test_executor_refuses(void **state)
{
    fake_reset();
    harness h;
    memset(&h, 0, sizeof(h));
    assert_int_equal(uv_loop_init(&h.loop), 0);
    power_executor_options o = {
        .max_concurrent = 1, .max_queued = 2, .retries = -1, .lookup = fake_lookup
    };
    assert_int_equal(power_executor_new(&h.loop, &o, &h.ex), 0);
    fakes[0].delay_ms = 50;
    harness_submit(&h, 0, 0, POWER_OP_STATUS);
    harness_submit(&h, 1, 0, POWER_OP_STATUS);
    power_target *t = fake_target(0);
    power_request req = { .op = POWER_OP_STATUS };
    assert_int_equal(power_executor_submit(h.ex, t, &req, on_done, &refs[2]), -EAGAIN);
    req.op = (power_op)42;
    assert_int_equal(power_executor_submit(h.ex, t, &req, on_done, &refs[2]), -EINVAL);
    power_target_free(t);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    assert_int_equal(h.n_done, 2);
    harness_stop(&h);
}

static const power_driver *no_driver(const char *scheme)
{
    return NULL;
}

static void test_executor_no_driver(void **state)
{
    harness h;
    memset(&h, 0, sizeof(h));
    assert_int_equal(uv_loop_init(&h.loop), 0);
    power_executor_options o = { .retries = -1, .lookup = no_driver };
    assert_int_equal(power_executor_new(&h.loop, &o, &h.ex), 0);
    power_target *t = fake_target(0);
    power_request req = { .op = POWER_OP_STATUS };
    assert_int_equal(power_executor_submit(h.ex, t, &req, on_done, &refs[0]), -EPROTONOSUPPORT);
    power_target_free(t);
    harness_stop(&h);
    assert_int_equal(h.n_done, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_accepts),
        cmocka_unit_test(test_target_refuses),
        cmocka_unit_test(test_target_refuses_userinfo_without_echoing_it),
        cmocka_unit_test(test_target_credentials_limits),
        cmocka_unit_test(test_target_string_never_holds_password),
        cmocka_unit_test(test_target_same_endpoint),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_run_cycle_of_off_host_powers_on),
        cmocka_unit_test(test_run_cycle_of_on_host_cycles),
        cmocka_unit_test(test_run_bootdev_first_then_op_then_state),
        cmocka_unit_test(test_run_errors_stop_the_sequence),
        cmocka_unit_test(test_executor_retries_timeout_then_succeeds),
        cmocka_unit_test(test_executor_never_retries_rejected_password),
        cmocka_unit_test(test_executor_retries_are_bounded),
        cmocka_unit_test(test_executor_one_job_per_bmc_in_order),
        cmocka_unit_test(test_executor_bounded_concurrency_across_bmcs),
        cmocka_unit_test(test_executor_free_cancels_queued),
        cmocka_unit_test(test_executor_cycle_of_off_host_powers_on),
        cmocka_unit_test(test_executor_refuses),
        cmocka_unit_test(test_executor_no_driver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* power/power.c: names, the driver registry and the driver-independent
 * sequence of one request. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#include "power/power-internal.h"
#include "timeutil.h"
#include "util.h"

static const char *const op_names[] = {
    [POWER_OP_STATUS] = "status", [POWER_OP_ON] = "on",     [POWER_OP_OFF] = "off",
    [POWER_OP_CYCLE] = "cycle",   [POWER_OP_SOFT] = "soft",
};
static const char *const bootdev_names[] = {
    [POWER_BOOTDEV_NONE] = "none",
    [POWER_BOOTDEV_PXE] = "pxe",
    [POWER_BOOTDEV_DISK] = "disk",
};
static const char *const state_names[] = {
    [POWER_STATE_UNKNOWN] = "unknown",
    [POWER_STATE_ON] = "on",
    [POWER_STATE_OFF] = "off",
};

static const char *name_of(const char *const *names, size_t n, unsigned v)
{
    return v < n && names[v] ? names[v] : "?";
}

static int index_of(const char *const *names, size_t n, const char *s)
{
    if (!s) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (names[i] && streq(names[i], s)) {
            return (int)i;
        }
    }
    return -EINVAL;
}

const char *power_op_to_string(power_op op)
{
    return name_of(op_names, ARRAY_SIZE(op_names), (unsigned)op);
}

int power_op_from_string(const char *s, power_op *ret)
{
    int i = index_of(op_names, ARRAY_SIZE(op_names), s);
    if (i < 0) {
        return i;
    }
    *ret = (power_op)i;
    return 0;
}

const char *power_bootdev_to_string(power_bootdev dev)
{
    return name_of(bootdev_names, ARRAY_SIZE(bootdev_names), (unsigned)dev);
}

int power_bootdev_from_string(const char *s, power_bootdev *ret)
{
    int i = index_of(bootdev_names, ARRAY_SIZE(bootdev_names), s);
    if (i < 0) {
        return i;
    }
    *ret = (power_bootdev)i;
    return 0;
}

const char *power_state_to_string(power_state state)
{
    return name_of(state_names, ARRAY_SIZE(state_names), (unsigned)state);
}

int power_state_from_string(const char *s, power_state *ret)
{
    int i = index_of(state_names, ARRAY_SIZE(state_names), s);
    if (i < 0) {
        return i;
    }
    *ret = (power_state)i;
    return 0;
}

int power_result_fail(power_result *res, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
    res->err = err;
    return err;
}

bool power_error_is_transient(int err)
{
    switch (err) {
    case -ETIMEDOUT:
    case -EHOSTUNREACH:
    case -ENETUNREACH:
    case -ECONNREFUSED:
    case -EBUSY:
    case -EAGAIN:
        return true;
    default:
        return false;
    }
}

/* The registry: a new protocol adds its table here and a file of its own. */
static const power_driver *const drivers[] = {
    &power_driver_ipmi,
};

const power_driver *power_driver_lookup(const char *scheme)
{
    if (!scheme) {
        return NULL;
    }
    for (size_t i = 0; i < ARRAY_SIZE(drivers); i++) {
        if (strcasecmp(drivers[i]->scheme, scheme) == 0) {
            return drivers[i];
        }
    }
    return NULL;
}

/* No new exchange with the BMC starts once the attempt's time is up: each
 * exchange is bounded by the driver, so an attempt ends within about two
 * timeouts even when a BMC answers each command just in time. */
static int check_deadline(uint64_t deadline_ms, unsigned timeout_ms, power_result *res)
{
    if (now_monotonic_ms() < deadline_ms) {
        return 0;
    }
    return power_result_fail(res, -ETIMEDOUT, "BMC did not finish within %u.%u s",
                             timeout_ms / 1000, (timeout_ms % 1000) / 100);
}

/* The request's steps on an open session; returns 0 or a negative errno
 * with res->message set. */
static int run_steps(const power_driver *d, power_session *s, const power_request *req,
                     const power_limits *lim, uint64_t deadline, power_result *res)
{
    unsigned t = lim->attempt_timeout_ms;
    int r;

    if (req->bootdev != POWER_BOOTDEV_NONE) {
        if ((r = check_deadline(deadline, t, res)) < 0 ||
            (r = d->set_bootdev(s, req->bootdev, req->efi, res)) < 0) {
            return r;
        }
        res->bootdev_set = true;
    }

    power_op op = req->op;
    if (op == POWER_OP_CYCLE) {
        /* IPMI 2.0 §28.3 recommends that a power cycle of a chassis that is
         * off does nothing and returns completion code D5h: read first. */
        power_state before = POWER_STATE_UNKNOWN;
        if ((r = check_deadline(deadline, t, res)) < 0 || (r = d->get_state(s, &before, res)) < 0) {
            return r;
        }
        if (before == POWER_STATE_OFF) {
            op = POWER_OP_ON;
        }
    }
    if (op != POWER_OP_STATUS) {
        if ((r = check_deadline(deadline, t, res)) < 0 || (r = d->control(s, op, res)) < 0) {
            return r;
        }
    }

    power_state state = POWER_STATE_UNKNOWN;
    if ((r = check_deadline(deadline, t, res)) < 0 || (r = d->get_state(s, &state, res)) < 0) {
        return r;
    }
    res->state = state;
    if (op != req->op) {
        snprintf(res->message, sizeof(res->message), "host was off: powered on instead of cycled");
    }
    return 0;
}

int power_driver_run(const power_driver *d, const power_target *t, const power_request *req,
                     const power_limits *lim, power_result *res)
{
    unsigned attempts = res->attempts;
    *res = (power_result){ .attempts = attempts };

    if ((unsigned)req->op > POWER_OP_SOFT || (unsigned)req->bootdev > POWER_BOOTDEV_DISK) {
        return power_result_fail(res, -EINVAL, "invalid power request");
    }
    uint64_t deadline = now_monotonic_ms() + lim->attempt_timeout_ms;
    power_session *s = NULL;
    int r = d->open(t, lim, &s, res);
    if (r < 0) {
        res->err = r;
        return r;
    }
    r = run_steps(d, s, req, lim, deadline, res);
    d->close(s);
    res->err = r;
    return r;
}

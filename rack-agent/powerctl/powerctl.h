/* powerctl: the agent's side of hands-off power (issue 15).
 *
 * It holds the rack's BMCs (plan.h, from the controller) and drives them
 * through power/'s executor, off the loop:
 *
 *   commands  every power command of the plan runs once: the one-time boot
 *             device first when asked, then the action. Its result is an
 *             event: PHASE_BOOTDEV_SET, then PHASE_POWER_ON / _OFF / _CYCLE
 *             / _STATUS, or PHASE_POWER_FAILED with the BMC's error, each
 *             carrying the command's id and the power state read at the
 *             end. The controller withdraws a command once its event is
 *             stored, so until then later plans still hold it: the ids run
 *             are remembered (STATE_DIR/power-done, also across restarts)
 *             and never run twice.
 *   poll      every BMC's power state is read at `poll_interval` (jittered
 *             ±25 %, the first read within the first interval or 30 s,
 *             whichever is shorter), at most `poll_concurrency` at once and
 *             never while a command for that host runs. A state that
 *             changed (or the first one read) is a PHASE_POWER_STATUS event
 *             without a command id; a BMC that stops answering is one
 *             PHASE_POWER_FAILED event, not one per poll. A BMC that
 *             refuses the credentials is not polled again until they
 *             change (retries could lock the account); commands still run.
 *
 * Events go to a callback (the daemon journals them: progress.h). Loop
 * thread only. */
#pragma once

#include <stdint.h>
#include <uv.h>

#include "power/power.h"
#include "powerctl/plan.h"
#include "rackboot.pb-c.h"

#define POWERCTL_DEFAULT_POLL_MS   (5u * 60u * 1000u)
#define POWERCTL_DEFAULT_POLLS     2u
#define POWERCTL_FIRST_POLL_MAX_MS 30000u
/* Command ids remembered as done; older ones are forgotten past this (the
 * controller expires a command long before: controller/main.c). */
#define POWERCTL_DONE_MAX  4096u
#define POWERCTL_DONE_FILE "power-done"

typedef struct powerctl_options {
    uint32_t poll_interval_ms; /* 0: no poll */
    unsigned poll_concurrency; /* 0: POWERCTL_DEFAULT_POLLS */
    /* Where POWERCTL_DONE_FILE is kept; NULL: in memory only (tests). */
    const char *state_dir;
    power_executor_options executor;
} powerctl_options;

/* Records one event (a copy is taken if kept). A negative errno when it
 * could not be recorded; powerctl logs that. */
typedef int (*powerctl_event_fn)(void *userdata, const Rackboot__V1__Event *ev);

typedef struct powerctl powerctl;

int powerctl_new(uv_loop_t *loop, const powerctl_options *o, powerctl_event_fn fn, void *userdata,
                 powerctl **ret);

/* The rack's BMCs and commands are now `plan` (taken over; the previous
 * one goes). Commands not yet run are started; a host's BMC that changed
 * is polled afresh. */
void powerctl_apply(powerctl *pc, power_plan *plan);

typedef struct powerctl_stats {
    uint64_t bmcs;            /* BMCs known */
    uint64_t commands_ok;     /* commands whose action the BMC did */
    uint64_t commands_failed; /* commands that ended in PHASE_POWER_FAILED */
    uint64_t polls;           /* status polls made */
    uint64_t polls_failed;    /* of which failed */
    uint64_t events_failed;   /* events the callback could not record */
} powerctl_stats;

const powerctl_stats *powerctl_get_stats(const powerctl *pc);

/* Stops polling, cancels what has not started, waits for what runs
 * (bounded by the executor's attempt timeout), frees. Run the loop
 * afterwards (the executor closes a handle). Accepts NULL. */
powerctl *powerctl_free(powerctl *pc);

/* The power part of a rack's state as the controller sends it (a
 * SyncResponse's `bmcs` and `power`): every BMC of the rack's hosts, with
 * its secret, and the power commands not yet done. Level-triggered like the
 * intents: the uplink converts each new generation into a plan on its own
 * thread and hands it to the loop, where powerctl.h applies it.
 *
 * A plan holds BMC passwords: power_plan_free() wipes them. Nothing here
 * logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "model/bmc.h"
#include "power/power.h"
#include "rackboot.pb-c.h"

typedef struct power_plan_bmc {
    char *host;
    char *url; /* model/bmc.h; checked when powerctl makes a target of it */
    char *user;
    char *password;
    model_firmware firmware;
} power_plan_bmc;

typedef struct power_plan_command {
    char *id; /* the controller's: the events about it carry it */
    char *host;
    char *install_id; /* "" unless the command starts an install */
    power_op op;
    power_bootdev bootdev;
    bool efi;
} power_plan_command;

typedef struct power_plan {
    power_plan_bmc *bmcs;
    size_t n_bmcs;
    power_plan_command *commands;
    size_t n_commands;
} power_plan;

/* The plan of a (validated, rbproto.h) SyncResponse. Without
 * `with_commands` the commands are left out: a state read back from disk
 * at start may be hours old, and a power cycle is only ever run when the
 * controller asks for it now. -EINVAL for an action or boot device this
 * agent does not know, -ENOMEM. */
int power_plan_from_sync(const Rackboot__V1__SyncResponse *sr, bool with_commands,
                         power_plan **ret);

/* The BMC of `host`, or NULL. Linear: for tests and one-off lookups. */
const power_plan_bmc *power_plan_find_bmc(const power_plan *p, const char *host);

/* Wipes the passwords, frees. Accepts NULL, returns NULL. */
power_plan *power_plan_free(power_plan *p);

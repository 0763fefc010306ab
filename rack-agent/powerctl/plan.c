/* A SyncResponse's BMCs and power commands as plain C (plan.h). */
#include "powerctl/plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int action_op(Rackboot__V1__PowerAction a, power_op *ret)
{
    switch (a) {
    case RACKBOOT__V1__POWER_ACTION__POWER_ACTION_STATUS:
        *ret = POWER_OP_STATUS;
        return 0;
    case RACKBOOT__V1__POWER_ACTION__POWER_ACTION_ON:
        *ret = POWER_OP_ON;
        return 0;
    case RACKBOOT__V1__POWER_ACTION__POWER_ACTION_OFF:
        *ret = POWER_OP_OFF;
        return 0;
    case RACKBOOT__V1__POWER_ACTION__POWER_ACTION_CYCLE:
        *ret = POWER_OP_CYCLE;
        return 0;
    case RACKBOOT__V1__POWER_ACTION__POWER_ACTION_SOFT:
        *ret = POWER_OP_SOFT;
        return 0;
    default:
        return -EINVAL;
    }
}

static int boot_device(Rackboot__V1__BootDevice d, power_bootdev *ret)
{
    switch (d) {
    case RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_UNSPECIFIED:
        *ret = POWER_BOOTDEV_NONE;
        return 0;
    case RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_PXE:
        *ret = POWER_BOOTDEV_PXE;
        return 0;
    case RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_DISK:
        *ret = POWER_BOOTDEV_DISK;
        return 0;
    default:
        return -EINVAL;
    }
}

static model_firmware firmware_of(Rackboot__V1__Firmware f)
{
    switch (f) {
    case RACKBOOT__V1__FIRMWARE__FIRMWARE_BIOS:
        return MODEL_FIRMWARE_BIOS;
    case RACKBOOT__V1__FIRMWARE__FIRMWARE_UEFI:
        return MODEL_FIRMWARE_UEFI;
    default:
        return MODEL_FIRMWARE_UNKNOWN;
    }
}

static int bmc_from(const Rackboot__V1__Bmc *m, power_plan_bmc *b)
{
    b->host = strdup(m->host);
    b->url = strdup(m->url);
    b->user = strdup(m->user);
    b->password = strdup(m->password);
    b->firmware = firmware_of(m->firmware);
    return b->host && b->url && b->user && b->password ? 0 : -ENOMEM;
}

static int command_from(const Rackboot__V1__PowerCommand *m, power_plan_command *c)
{
    if (action_op(m->action, &c->op) < 0 || boot_device(m->boot_device, &c->bootdev) < 0) {
        return -EINVAL;
    }
    c->efi = m->efi;
    c->id = strdup(m->id);
    c->host = strdup(m->host);
    c->install_id = strdup(m->install_id);
    return c->id && c->host && c->install_id ? 0 : -ENOMEM;
}

int power_plan_from_sync(const Rackboot__V1__SyncResponse *sr, bool with_commands, power_plan **ret)
{
    power_plan *p = calloc(1, sizeof(*p));
    if (!p) {
        return -ENOMEM;
    }
    size_t n_commands = with_commands ? sr->n_power : 0;
    p->bmcs = calloc(sr->n_bmcs ? sr->n_bmcs : 1, sizeof(*p->bmcs));
    p->commands = calloc(n_commands ? n_commands : 1, sizeof(*p->commands));
    int r = p->bmcs && p->commands ? 0 : -ENOMEM;
    for (size_t i = 0; r >= 0 && i < sr->n_bmcs; i++) {
        p->n_bmcs++;
        r = bmc_from(sr->bmcs[i], &p->bmcs[i]);
    }
    for (size_t i = 0; r >= 0 && i < n_commands; i++) {
        p->n_commands++;
        r = command_from(sr->power[i], &p->commands[i]);
    }
    if (r < 0) {
        power_plan_free(p);
        return r;
    }
    *ret = p;
    return 0;
}

const power_plan_bmc *power_plan_find_bmc(const power_plan *p, const char *host)
{
    for (size_t i = 0; p && i < p->n_bmcs; i++) {
        if (streq(p->bmcs[i].host, host)) {
            return &p->bmcs[i];
        }
    }
    return NULL;
}

power_plan *power_plan_free(power_plan *p)
{
    if (!p) {
        return NULL;
    }
    for (size_t i = 0; i < p->n_bmcs; i++) {
        power_plan_bmc *b = &p->bmcs[i];
        if (b->password) {
            explicit_bzero(b->password, strlen(b->password));
        }
        free(b->host);
        free(b->url);
        free(b->user);
        free(b->password);
    }
    for (size_t i = 0; i < p->n_commands; i++) {
        free(p->commands[i].id);
        free(p->commands[i].host);
        free(p->commands[i].install_id);
    }
    free(p->bmcs);
    free(p->commands);
    free(p);
    return NULL;
}

/* fleet_power: the rules over power commands (store.h "Power"): who may
 * have one (a host with a BMC), the EFI flag from the host's firmware, the
 * rack bump that carries a command to its agent, the rack's BMCs and
 * pending commands for its sync, and the expiry of commands no agent did.
 * How an event ends a command is fleet_events.c's. */
#include "fleet-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rbproto.h"
#include "util.h"

/* One host's command; -ENOENT, -ENODEV, or a store error. */
static int power_one(store *s, const char *host, int action, int boot_device,
                     const char *install_id, uint64_t now, store_power_outcome *out,
                     int64_t *ret_rack)
{
    store_host h;
    int64_t host_id, rack_id;
    int r = s->ops->host_find(s->be, host, &host_id, &rack_id);
    if (r <= 0) {
        return r < 0 ? r : -ENOENT;
    }
    r = s->ops->host_get(s->be, host, &h);
    if (r <= 0) {
        return r < 0 ? r : -ENOENT;
    }
    if (!*h.bmc_url) {
        return -ENODEV;
    }
    int64_t install = 0;
    if (install_id && *install_id) {
        store_install_ref in;
        r = s->ops->install_find(s->be, install_id, &in);
        TRY(r);
        install = r == 1 ? in.id : 0;
    }
    TRY(fleet_new_id(now, out->id, s->errmsg, sizeof(s->errmsg)));
    TRY(s->ops->power_insert(s->be, &(store_power_new){
                                        .uuid = out->id,
                                        .host_id = host_id,
                                        .rack_id = rack_id,
                                        .action = action,
                                        .boot_device = boot_device,
                                        .efi = h.firmware == MODEL_FIRMWARE_UEFI,
                                        .install_id = install,
                                        .now = now,
                                    }));
    *ret_rack = rack_id;
    return 0;
}

static int create_tx(store *s, const char *const *hosts, size_t n, int action, int boot_device,
                     const char *const *install_ids, uint64_t now, store_power_outcome *out)
{
    int64_t *racks = calloc(n ? n : 1, sizeof(*racks));
    size_t n_racks = 0;
    int r = racks ? 0 : -ENOMEM;
    for (size_t i = 0; r >= 0 && i < n; i++) {
        out[i] = (store_power_outcome){ 0 };
        int64_t rack;
        int q = power_one(s, hosts[i], action, boot_device, install_ids ? install_ids[i] : NULL,
                          now, &out[i], &rack);
        if (q == -ENOENT || q == -ENODEV) {
            out[i].result = q;
            out[i].id[0] = '\0';
        } else if (q < 0) {
            r = q;
        } else {
            racks[n_racks++] = rack;
        }
    }
    if (r >= 0) {
        r = fleet_bump_racks(s, racks, n_racks);
    }
    free(racks);
    return r < 0 ? r : (int)n_racks;
}

int store_power_create(store *s, const char *const *hosts, size_t n, int action, int boot_device,
                       const char *const *install_ids, uint64_t now, store_power_outcome *out)
{
    s->errmsg[0] = '\0';
    if (action < RACKBOOT__V1__POWER_ACTION__POWER_ACTION_STATUS ||
        action > RACKBOOT__V1__POWER_ACTION__POWER_ACTION_SOFT ||
        boot_device < RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_UNSPECIFIED ||
        boot_device > RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_DISK) {
        return fleet_fail(s, -EINVAL, "invalid power action or boot device");
    }
    TRY(fleet_tx_begin(s));
    return fleet_tx_end(s, create_tx(s, hosts, n, action, boot_device, install_ids, now, out));
}

int store_power_results(store *s, const char *const *ids, size_t n,
                        int (*cb)(const store_power *p, void *userdata), void *userdata)
{
    s->errmsg[0] = '\0';
    return s->ops->power_list(s->be, ids, n, cb, userdata);
}

int store_rack_power(store *s, const char *rack, int (*bmc_cb)(const store_bmc *b, void *userdata),
                     int (*cmd_cb)(const store_power *p, void *userdata), void *userdata)
{
    int64_t rack_id;
    s->errmsg[0] = '\0';
    TRY(fleet_found(s, s->ops->rack_find(s->be, rack, &rack_id, NULL), "rack", rack));
    return s->ops->rack_power(s->be, rack_id, bmc_cb, cmd_cb, userdata);
}

enum { EXPIRE_BATCH = 256 };

static int expire_tx(store *s, uint64_t now, uint64_t older_ms)
{
    store_power_ref rows[EXPIRE_BATCH];
    int64_t racks[EXPIRE_BATCH];
    size_t n = 0;
    TRY(s->ops->power_due(s->be, now > older_ms ? now - older_ms : 0, rows, EXPIRE_BATCH, &n));
    for (size_t i = 0; i < n; i++) {
        TRY(s->ops->power_finish(s->be, rows[i].id, false, 0,
                                 "the rack's agent did not do it in time (is it connected?)", now));
        racks[i] = rows[i].rack_id;
    }
    TRY(fleet_bump_racks(s, racks, n));
    return (int)n;
}

int store_power_expire(store *s, uint64_t now, uint64_t older_ms)
{
    s->errmsg[0] = '\0';
    TRY(fleet_tx_begin(s));
    return fleet_tx_end(s, expire_tx(s, now, older_ms));
}

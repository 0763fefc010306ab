/* store/types: the fleet's objects as the store takes and gives them:
 * plain structs, no behaviour (the rules are in fleet.h, the storage in
 * store/backend.h). Profiles and their images are model/profile.h's
 * model_profile and model_image, the one form every part of rackboot
 * holds a profile in. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/bmc.h"
#include "model/profile.h"

#define STORE_NAME_MAX     63u  /* RBPROTO_MAX_NAME */
#define STORE_DNS_NAME_MAX 253u /* RBPROTO_MAX_DNS_NAME */
#define STORE_MACS_MAX     16u  /* RBPROTO_MAX_MACS */
#define STORE_DUID_MAX     130u /* RFC 8415 §11.1 */

typedef struct store_host {
    char name[STORE_NAME_MAX + 1];
    char rack[STORE_NAME_MAX + 1];
    uint8_t macs[STORE_MACS_MAX][6];
    size_t n_macs; /* 1..STORE_MACS_MAX */
    uint8_t address[16];
    uint32_t prefix_length; /* 1..128 */
    bool has_gateway;
    uint8_t gateway[16];
    char hostname[STORE_DNS_NAME_MAX + 1]; /* "" on input: the name */
    /* Output only: the most recently learned DUID of any of the host's MACs. */
    uint8_t duid[STORE_DUID_MAX];
    size_t duid_len;
    /* The host's BMC: bmc_url "" for none (model/bmc.h). The password is
     * input only: listings leave it "" and say bmc_password_set instead,
     * and only the rack's sync (store_rack_power()) reads it back. */
    char bmc_url[MODEL_BMC_URL_MAX + 1];
    char bmc_user[MODEL_BMC_USER_MAX + 1];
    char bmc_password[MODEL_BMC_PASSWORD_MAX + 1];
    bool bmc_password_set; /* output */
    model_firmware firmware;
    /* Output only: the power state its agent last read (0 unknown, else
     * Rackboot__V1__PowerState) and when. */
    int power_state;
    uint64_t power_updated_ms;
} store_host;

#define STORE_POWER_ID_LEN 36u /* a power command's id: a UUID like an install's */

/* A power command (rackboot.v1.PowerCommand) as stored, and its outcome. */
typedef struct store_power {
    const char *id;
    const char *host;
    int action;      /* Rackboot__V1__PowerAction */
    int boot_device; /* Rackboot__V1__BootDevice, 0: none */
    bool efi;
    const char *install_id; /* "" for none */
    bool done;
    bool ok;
    int power_state; /* Rackboot__V1__PowerState */
    const char *message;
    uint64_t updated_ms;
} store_power;

/* A host's BMC with its secret, for its rack's agent only. */
typedef struct store_bmc {
    const char *host;
    const char *url;
    const char *user;
    const char *password;
    model_firmware firmware;
} store_bmc;

/* store/types: the fleet's objects as the store takes and gives them:
 * plain structs, no behaviour (the rules are in fleet.h, the storage in
 * store/backend.h). Profiles and their images are model/profile.h's
 * model_profile and model_image, the one form every part of rackboot
 * holds a profile in. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
} store_host;

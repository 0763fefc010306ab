/* A host's BMC as the fleet knows it: where it answers (a URL whose scheme
 * names the protocol, so a Redfish BMC is a new scheme, not a new field),
 * who to log in as, the secret, and the host's firmware (which decides the
 * EFI flag of a network boot). The controller stores it, the wire carries
 * it to the host's rack agent only, the agent's power/ drivers use it.
 *
 * The password is a secret: nothing here prints it, and model_bmc_check()
 * never quotes it. No I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MODEL_BMC_URL_MAX      300u /* ipmi://[v6%zone]:port or a DNS name */
#define MODEL_BMC_USER_MAX     64u  /* IPMI 2.0 allows 16; Redfish more */
#define MODEL_BMC_PASSWORD_MAX 64u  /* IPMI 2.0: 20 bytes; Redfish more */
#define MODEL_BMC_HOST_MAX     253u
#define MODEL_BMC_IPMI_PORT    623u /* RMCP */

typedef enum model_firmware {
    MODEL_FIRMWARE_UNKNOWN = 0, /* not declared */
    MODEL_FIRMWARE_BIOS,
    MODEL_FIRMWARE_UEFI,
} model_firmware;

/* A BMC URL taken apart: scheme ("ipmi", lower case), host an IPv6 or
 * IPv4 literal (without brackets) or a DNS name (lower case), port (the
 * scheme's default when the URL has none). */
typedef struct model_bmc_endpoint {
    char scheme[16];
    char host[MODEL_BMC_HOST_MAX + 1];
    uint16_t port;
    bool ipv6; /* host is an IPv6 literal: written in brackets */
} model_bmc_endpoint;

/* The one parser of BMC URLs (the controller checks with it, the agent's
 * power/ drivers connect by it): `ipmi://[2001:db8:ff::17]:623`,
 * `ipmi://192.0.2.7`, `ipmi://bmc17.example:6230`, a trailing "/" allowed.
 * Refuses (-EINVAL, a reason in why) schemes no driver exists for, user
 * info (credentials never go in a URL: it is logged; the reason never
 * quotes them), a path, query or fragment, spaces and control characters,
 * an IPv6 address without brackets or with a zone, a port outside
 * 1-65535, a host that is no literal or DNS name. */
int model_bmc_url_parse(const char *url, model_bmc_endpoint *ret, char *why, size_t why_len);

/* Whether `user` and `password` are what a BMC login can take: printable
 * ASCII without control characters, within the limits above (the password
 * may be empty: some BMCs have none). */
bool model_bmc_user_valid(const char *user);
bool model_bmc_password_valid(const char *password);

/* "bios", "uefi", "" (unknown); the reverse takes "bios" and "uefi",
 * case-insensitive. -EINVAL. */
const char *model_firmware_to_string(model_firmware f);
int model_firmware_from_string(const char *s, model_firmware *ret);

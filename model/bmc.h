/* A host's BMC as the fleet knows it: where it answers (a URL whose scheme
 * names the protocol, so a Redfish BMC is a new scheme, not a new field),
 * who to log in as, the secret, and the host's firmware (which decides the
 * EFI flag of a network boot). The controller stores it, the wire carries
 * it to the host's rack agent only, the agent's power/ drivers use it.
 *
 * The password is a secret: nothing here prints it, and no reason given
 * for refusing one quotes it. No I/O but model_bmc_password_read_file(),
 * the one reader of a password file (the CLI's --bmc-password-file, the
 * hosts file's bmc_password_file =, the CSV column of that name). */
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

/* A password as a file or a pipe holds it, `len` bytes of `buf`: one line,
 * its one trailing newline ("\n" or "\r\n") dropped. Refused (-EINVAL, a
 * reason in why that never quotes the bytes): empty (a BMC without a
 * password takes no password file), a second line, a NUL byte, more than
 * MODEL_BMC_PASSWORD_MAX bytes, anything model_bmc_password_valid()
 * refuses. On success *ret is a malloc()ed copy (-ENOMEM): free it with
 * model_bmc_password_free(). */
int model_bmc_password_parse(const char *buf, size_t len, char **ret, char *why, size_t why_len);

/* Reads a password file and parses it as above. A regular file that others
 * may read is refused (-EACCES): a password that every user of the machine
 * can read is published. The group may read it, so that a daemon reading
 * it through its group (root:rackboot 0640) works; a pipe (`<(pass show
 * bmc)`, /dev/stdin) has no mode to check. -errno when it cannot be read,
 * -EINVAL for its content; the reason in why names `path`. */
int model_bmc_password_read_file(const char *path, char **ret, char *why, size_t why_len);

/* Overwrites the secret before freeing it. Accepts NULL, returns NULL. */
char *model_bmc_password_free(char *password);

/* "bios", "uefi", "" (unknown); the reverse takes "bios" and "uefi",
 * case-insensitive. -EINVAL. */
const char *model_firmware_to_string(model_firmware f);
int model_firmware_from_string(const char *s, model_firmware *ret);

/* The fleet CA directory that `rackboot-pki` manages:
 *
 *   DIR/ca.crt, DIR/ca.key (0600)     the CA: ECDSA P-256, self-signed
 *   DIR/crl.pem                       the current CRL, signed by the CA
 *   DIR/index.txt                     every certificate issued, and revocations
 *   DIR/<role>/<name>.crt, .key       issued certificates (dirs 0700, keys 0600)
 *
 * Files are written atomically (temporary file, fsync, rename or link, fsync
 * of the directory). Certificates and keys are linked into place, so an
 * existing file is never replaced, not even by a race between two runs; an
 * open CA also holds an exclusive lock on DIR for its lifetime.
 *
 * index.txt is line based:
 *   # comment
 *   crlnumber <decimal>
 *   cert <serial hex> <role> <name> <not-after unix> <revoked-at unix, 0 = not>
 */
#pragma once

#include <stddef.h>
#include <time.h>

#include "pki.h"

#define PKI_CA_DAYS_DEFAULT   3650
#define PKI_LEAF_DAYS_DEFAULT 365
/* mbedTLS (nng) refuses every peer once the CRL is past nextUpdate, so the
 * CRL must be regenerated well inside this (weekly is the habit). */
#define PKI_CRL_DAYS_DEFAULT 30
#define PKI_CRL_WARN_DAYS    7
#define PKI_DAYS_MAX         36500
/* Leaves start this far in the past so a host whose clock is a little behind
 * does not see a "not yet valid" certificate. */
#define PKI_CLOCK_SKEW_SECONDS 300

typedef struct pki_ca pki_ca;

/* Creates the CA in `dir` (made 0700 if missing): key, self-signed
 * certificate O=rackboot, OU=ca, CN=<name>, an empty CRL and the index.
 * -EEXIST if a CA is already there. */
int pki_ca_init(const char *dir, const char *name, unsigned days, pki_reason *reason);

/* Opens an existing CA directory and locks it (-EBUSY if another process
 * holds it) until pki_ca_free. */
int pki_ca_open(const char *dir, pki_ca **ret, pki_reason *reason);
pki_ca *pki_ca_free(pki_ca *ca);

typedef struct pki_issue_request {
    pki_role role;
    const char *name;
    /* Extra subjectAltNames, controller only: DNS names or IP literals. The
     * name itself is always a DNS SAN. */
    const char *const *sans;
    size_t n_sans;
    time_t not_before;
    time_t not_after;
} pki_issue_request;

/* Issues DIR/<role>/<name>.{crt,key} and records it. -EEXIST if either file
 * exists, -EINVAL for a bad name, SAN or dates (including outliving the CA). */
int pki_ca_issue(pki_ca *ca, const pki_issue_request *req, pki_reason *reason);

/* Revokes every unrevoked certificate of role/name and rewrites the CRL
 * valid for crl_days. -ENOENT if none was issued, -EALREADY if all are. */
int pki_ca_revoke(pki_ca *ca, pki_role role, const char *name, unsigned crl_days,
                  pki_reason *reason);

/* Rewrites DIR/crl.pem with a new CRL number, valid for `days`. */
int pki_ca_write_crl(pki_ca *ca, unsigned days, pki_reason *reason);

typedef enum pki_cert_status {
    PKI_CERT_VALID,
    PKI_CERT_REVOKED,
    PKI_CERT_EXPIRED,
} pki_cert_status;

typedef struct pki_ca_entry {
    pki_role role;
    char name[PKI_NAME_MAX + 1];
    char serial[41]; /* upper-case hex, at most 20 octets (RFC 5280 §4.1.2.2) */
    time_t not_after;
    time_t revoked_at; /* 0 when not revoked */
} pki_ca_entry;

size_t pki_ca_count(const pki_ca *ca);
const pki_ca_entry *pki_ca_entry_at(const pki_ca *ca, size_t i);
pki_cert_status pki_ca_entry_status(const pki_ca_entry *e, time_t now);
const char *pki_cert_status_to_string(pki_cert_status s);
time_t pki_ca_not_after(const pki_ca *ca);

/* nextUpdate of DIR/crl.pem as it is on disk. */
int pki_ca_crl_next_update(const pki_ca *ca, time_t *ret, pki_reason *reason);

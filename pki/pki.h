/* Fleet certificates: what a rackboot certificate says about its holder, and
 * the verifier a listener uses to decide who is on the other end.
 *
 * A certificate names a role (controller, agent, operator) and a name (the
 * controller's DNS name, the agent's rack, the operator's login) twice:
 *
 *  - in the subject, O=rackboot, OU=<role>, CN=<name>, for humans and tools;
 *  - in a non-critical extension under PKI_IDENTITY_OID whose value is a DER
 *    UTF8String "<role>:<name>", which is what the verifier trusts. It is
 *    non-critical because mbedTLS 2.28 (inside nng) refuses certificates with
 *    critical extensions it does not know. The verifier also checks that the
 *    subject says the same, so a certificate cannot read one way to a human
 *    and another way to the controller.
 *
 * Nothing here touches a socket or logs above debug: bytes in, verdict out.
 * Refusals carry a one-line reason (pki_reason) the daemon can log. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ITU-T X.667 / RFC 4122 §4.4: an OID under the arc 2.25 is a UUID written
 * as one decimal integer, and needs no registration. We own no enterprise
 * number, so this was generated once (UUID 88576d70-1b3a-4f6f-996a-85aa695cd3b2)
 * and is fixed forever: changing it makes every issued certificate unusable. */
#define PKI_IDENTITY_OID "2.25.181228956918068676436591433539808711602"

/* Names are 1..63 of [A-Za-z0-9._-], not starting with '.' or '-': they are
 * file names in the CA directory and DNS labels-or-names. */
#define PKI_NAME_MAX 63

/* A certificate sent by a peer is refused past this size before parsing. */
#define PKI_CERT_PEM_MAX 16384

typedef enum pki_role {
    PKI_ROLE_CONTROLLER,
    PKI_ROLE_AGENT,
    PKI_ROLE_OPERATOR,
    PKI_ROLE_VIEWER, /* the operators' API, read only */
    _PKI_ROLE_MAX,
} pki_role;

/* "controller", "agent", "operator", "viewer"; NULL for anything else. */
const char *pki_role_to_string(pki_role role);
/* -EINVAL for an unknown role. */
int pki_role_from_string(const char *s, pki_role *ret);
/* Controller names must also be DNS host names (TLS clients match them).
 * An agent's name is its rack, or "RACK/N" for the rack's agent number N
 * (below). */
bool pki_name_is_valid(pki_role role, const char *name);

/* A rack may be served by a redundant pair of agents (issue 17), each with
 * a certificate of its own: agent 1 is named by the rack alone ("rack-a",
 * as every agent certificate before), agents 2..PKI_AGENT_INSTANCE_MAX by
 * "RACK/N" ("rack-a/2"). The name, "/N" included, is at most PKI_NAME_MAX
 * characters. */
#define PKI_AGENT_INSTANCE_MAX 9u
/* The rack and instance (1 when the name has none) of a valid agent name;
 * -EINVAL for anything else. */
int pki_agent_name_split(const char *name, char rack[PKI_NAME_MAX + 1], unsigned *ret_instance);
/* The name of `rack`'s agent `instance` (1..PKI_AGENT_INSTANCE_MAX):
 * "RACK" or "RACK/N"; -EINVAL when the rack or instance is not valid, or
 * the name would be too long. */
int pki_agent_name(const char *rack, unsigned instance, char out[PKI_NAME_MAX + 1]);
/* A name as the CA directory's file names hold it: an agent instance's
 * '/' as '@' (which no name holds). */
void pki_name_to_file(const char *name, char out[PKI_NAME_MAX + 1]);

/* Whether a listener for `listener` accepts a certificate of `peer`: its own
 * role, and for the operators' API (PKI_ROLE_OPERATOR) a viewer too, since
 * both are people using the API and what each may do is the API's
 * decision (controller/auth.h). */
bool pki_role_accepts(pki_role listener, pki_role peer);

/* Who proved to be on the other end. A plain value: copy it into the
 * per-connection state. */
typedef struct pki_identity {
    pki_role role;
    char name[PKI_NAME_MAX + 1];
} pki_identity;

/* Why something was refused, one line, for the caller's log. Functions that
 * take a `pki_reason *` (which may be NULL) fill it when they fail. */
typedef struct pki_reason {
    char text[256];
} pki_reason;

/* A private key file must be readable by its owner alone: -EACCES naming
 * the file and its mode when group or others have any access to it (a key
 * others could read is as good as published), -errno when it cannot be
 * stat'ed. Every loader of a key calls this before reading it. */
int pki_key_file_check(const char *path, pki_reason *reason);

/* The listener's view of the fleet: the CA certificate(s), an optional CRL,
 * and the TLS server name clients use to reach this listener (its own
 * certificate's DNS name), which identity proofs must name.
 *
 * Not thread-safe: use one verifier from one thread (the daemon's loop). */
typedef struct pki_verifier pki_verifier;

/* Loads the CA file (one or more PEM CA certificates) and, when crl_path is
 * not NULL, the CRL, which must be signed by one of those CAs. Every later
 * check then consults the CRL, and refuses everything once the CRL is past
 * its nextUpdate (as mbedTLS does), so a stale CRL shows up at once.
 * -ENOENT, -EACCES for files; -EBADMSG for unparseable or mis-signed files. */
int pki_verifier_new(const char *ca_path, const char *crl_path, const char *server_name,
                     pki_verifier **ret, pki_reason *reason);
pki_verifier *pki_verifier_free(pki_verifier *v);

/* Re-reads the CRL from the path given to pki_verifier_new (for SIGHUP).
 * On failure the verifier keeps the CRL it had. -EINVAL without a CRL path. */
int pki_verifier_reload_crl(pki_verifier *v, pki_reason *reason);

const char *pki_verifier_server_name(const pki_verifier *v);

/* Checks a peer's PEM certificate: chains to the CA, not revoked, within its
 * validity dates, extended key usage fits the role (serverAuth for a
 * controller, clientAuth otherwise), the identity extension is present, well
 * formed, agrees with the subject and names `expected_role`.
 *
 * This proves only that the certificate is good, not that the peer holds its
 * key: a listener binds an identity to a connection only through
 * pki_challenge (identity.h).
 *
 * Returns 0 and writes *ret_identity, or:
 *   -EBADMSG      not a certificate (garbage, too long)
 *   -EKEYREJECTED revoked
 *   -EKEYEXPIRED  expired or not yet valid
 *   -EACCES       anything else refused (other CA, wrong role, no extension,
 *                 stale CRL, ...) */
int pki_verifier_check_cert(pki_verifier *v, const char *cert_pem, size_t cert_len,
                            pki_role expected_role, pki_identity *ret_identity, pki_reason *reason);

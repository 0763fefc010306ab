/* nng TLS configuration from the PEM files named in our config files, the
 * same for the controller's listeners and every dialer (agent uplink, CLI).
 *
 * nng (mbedTLS 2.28) verifies the peer's chain against `ca` and, when
 * given, the CRL; it requires a peer certificate in both directions. It
 * matches the server name against DNS SANs only, which is why dialers pass
 * the controller certificate's DNS name even when they dial an address. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

typedef struct rb_tls_files {
    const char *ca;          /* CA certificate, PEM */
    const char *cert;        /* our certificate, PEM */
    const char *key;         /* its private key, PEM */
    const char *crl;         /* optional CRL, PEM; NULL: none */
    const char *server_name; /* dialers: the name TLS checks; listeners: NULL */
} rb_tls_files;

/* Builds a configuration for a listener (server) or a dialer (client).
 * -ENOENT / -EACCES for a file that cannot be read, -EPROTO when nng
 * refuses a file's content; *ret_error (may be NULL) gets a malloc'd
 * one-line reason naming the file. */
int rb_tls_config_new(const rb_tls_files *files, bool server, nng_tls_config **ret,
                      char **ret_error);

/* The same, and a SHA-256 over the files' contents as read for the
 * configuration (`ret_digest` may be NULL): two loads with equal digests
 * built equal configurations, so a reload can tell whether anything
 * changed (a CRL renewed or a revocation) without comparing files. */
#define RB_TLS_DIGEST_SIZE 32
int rb_tls_config_load(const rb_tls_files *files, bool server, nng_tls_config **ret,
                       uint8_t ret_digest[RB_TLS_DIGEST_SIZE], char **ret_error);

/* A cheap fingerprint of the files on disk (device, inode, size and mtime
 * of each; a missing file counts as such), for a periodic "did anyone
 * replace the CRL?" check: a daemon reloads when it changes. Not a proof of
 * sameness: the reload itself compares digests. */
uint64_t rb_tls_files_stamp(const rb_tls_files *files);

/* Maps an nng error code to a negative errno (NNG_ECONNREFUSED →
 * -ECONNREFUSED, NNG_ECRYPTO / NNG_EPEERAUTH → -EPROTO, ...). */
int rb_nng_errno(int nng_rv);

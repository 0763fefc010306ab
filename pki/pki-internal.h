/* What the pki modules share and nothing outside pki/ should need: OpenSSL
 * cleanup helpers, the certificate format (identity extension, subject) and
 * reason formatting. */
#pragma once

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdarg.h>

#include "pki.h"
#include "util.h"

/* The pki modules use the _cleanup_ style throughout (CONVENTIONS.md). Every
 * OpenSSL free function accepts NULL. */
#define PKI_DEFINE_CLEANUP(type, fn)                                                               \
    static inline void fn##p(type **p)                                                             \
    {                                                                                              \
        fn(*p);                                                                                    \
    }

/* BIO_free returns int, so it gets its own. */
static inline void BIO_freep(BIO **p)
{
    (void)BIO_free(*p);
}
PKI_DEFINE_CLEANUP(X509, X509_free)
PKI_DEFINE_CLEANUP(X509_CRL, X509_CRL_free)
PKI_DEFINE_CLEANUP(X509_STORE, X509_STORE_free)
PKI_DEFINE_CLEANUP(X509_STORE_CTX, X509_STORE_CTX_free)
PKI_DEFINE_CLEANUP(X509_EXTENSION, X509_EXTENSION_free)
PKI_DEFINE_CLEANUP(X509_NAME, X509_NAME_free)
PKI_DEFINE_CLEANUP(EVP_PKEY, EVP_PKEY_free)
PKI_DEFINE_CLEANUP(EVP_PKEY_CTX, EVP_PKEY_CTX_free)
PKI_DEFINE_CLEANUP(EVP_MD_CTX, EVP_MD_CTX_free)
PKI_DEFINE_CLEANUP(BIGNUM, BN_free)
PKI_DEFINE_CLEANUP(ASN1_OBJECT, ASN1_OBJECT_free)
PKI_DEFINE_CLEANUP(ASN1_INTEGER, ASN1_INTEGER_free)
PKI_DEFINE_CLEANUP(ASN1_TIME, ASN1_TIME_free)
PKI_DEFINE_CLEANUP(ASN1_OCTET_STRING, ASN1_OCTET_STRING_free)
PKI_DEFINE_CLEANUP(ASN1_UTF8STRING, ASN1_UTF8STRING_free)

static inline void x509_stack_freep(STACK_OF(X509) * *p)
{
    sk_X509_pop_free(*p, X509_free);
}

/* Fills `reason` (if not NULL) and returns r, so a failure is one line:
 *   return pki_fail(reason, -EACCES, "certificate is revoked"); */
int pki_fail(pki_reason *reason, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Appends OpenSSL's first queued error to a reason and clears the queue, so
 * one failure does not show up again in an unrelated later call. */
void pki_reason_add_openssl(pki_reason *reason);

/* RFC 1123 §2.1 host name: labels of 1..63 letters, digits and inner '-',
 * at most 253 characters. */
bool pki_dns_name_is_valid(const char *name);

/* The identity extension's OID as an object (caller frees). */
ASN1_OBJECT *pki_identity_oid_new(void);

/* Adds the identity extension ("<role>:<name>", DER UTF8String). */
int pki_cert_add_identity(X509 *x, const pki_identity *id);

/* Reads the identity extension and checks the subject agrees with it
 * (O=rackboot, OU=role, CN=name, each exactly once). -EACCES otherwise. */
int pki_cert_read_identity(X509 *x, pki_identity *ret, pki_reason *reason);

/* Reads one PEM certificate from memory. -EBADMSG, -E2BIG. */
int pki_cert_parse_pem(const char *pem, size_t len, X509 **ret, pki_reason *reason);

/* Reads a whole small file (PEM) into a NUL-terminated buffer; path is
 * relative to dirfd (AT_FDCWD for the working directory). */
int pki_read_file_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len,
                     pki_reason *reason);
static inline int pki_read_file(const char *path, size_t max, char **ret, size_t *ret_len,
                                pki_reason *reason)
{
    return pki_read_file_at(AT_FDCWD, path, max, ret, ret_len, reason);
}

/* pki_key_file_check() for a path relative to dirfd. */
int pki_key_file_check_at(int dirfd, const char *path, pki_reason *reason);

/* Verifier internals shared with the challenge: the check above, returning
 * the verified certificate too. */
int pki_verifier_check_x509(pki_verifier *v, const char *cert_pem, size_t cert_len,
                            pki_role expected_role, X509 **ret_cert, pki_identity *ret_identity,
                            pki_reason *reason);

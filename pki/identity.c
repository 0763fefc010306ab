/* identity: the signed challenge that binds a certificate to a connection. */
#include "identity.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <string.h>

#include "pki-internal.h"
#include "util.h"

/* Key files are small; a larger one is the wrong path. */
#define PKI_KEY_FILE_MAX (64 * 1024)

int pki_nonce_new(uint8_t *buf, size_t len)
{
    if (len > INT_MAX) {
        return -EINVAL;
    }
    if (RAND_bytes(buf, (int)len) != 1) {
        ERR_clear_error();
        return -EIO;
    }
    return 0;
}

/* Builds PKI_PROOF_CONTEXT "\0" || nonce || server_name into buf. */
static int proof_message(const uint8_t *nonce, const char *server_name, uint8_t *buf, size_t size,
                         size_t *ret_len)
{
    size_t name_len = strnlen(server_name, PKI_SERVER_NAME_MAX + 1);
    if (name_len == 0 || name_len > PKI_SERVER_NAME_MAX) {
        return -EBADMSG;
    }
    size_t len = sizeof(PKI_PROOF_CONTEXT) + PKI_NONCE_SIZE + name_len;
    RB_ASSERT(len <= size);
    memcpy(buf, PKI_PROOF_CONTEXT, sizeof(PKI_PROOF_CONTEXT)); /* includes the NUL */
    memcpy(buf + sizeof(PKI_PROOF_CONTEXT), nonce, PKI_NONCE_SIZE);
    memcpy(buf + sizeof(PKI_PROOF_CONTEXT) + PKI_NONCE_SIZE, server_name, name_len);
    *ret_len = len;
    return 0;
}

#define PROOF_MESSAGE_MAX (sizeof(PKI_PROOF_CONTEXT) + PKI_NONCE_SIZE + PKI_SERVER_NAME_MAX)

/* --- listener side ----------------------------------------------------- */

struct pki_challenge {
    uint8_t nonce[PKI_NONCE_SIZE];
    EVP_PKEY *pubkey;
    pki_identity identity;
    char *server_name;
    bool spent;
};

pki_challenge *pki_challenge_free(pki_challenge *c)
{
    if (c) {
        EVP_PKEY_free(c->pubkey);
        free(c->server_name);
        /* The nonce is not secret, but a freed challenge should not leave a
         * live-looking one in the heap. */
        OPENSSL_cleanse(c, sizeof(*c));
        free(c);
    }
    return NULL;
}

static void pki_challenge_freep(pki_challenge **c)
{
    pki_challenge_free(*c);
}

int pki_challenge_new(pki_verifier *v, const char *cert_pem, size_t cert_len,
                      pki_role expected_role, pki_challenge **ret, pki_reason *reason)
{
    _cleanup_(X509_freep) X509 *x = NULL;
    pki_identity id;
    int r = pki_verifier_check_x509(v, cert_pem, cert_len, expected_role, &x, &id, reason);
    if (r < 0) {
        return r;
    }
    _cleanup_(pki_challenge_freep) pki_challenge *c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    c->pubkey = X509_get_pubkey(x);
    c->server_name = strdup(pki_verifier_server_name(v));
    if (!c->pubkey || !c->server_name) {
        ERR_clear_error();
        return -ENOMEM;
    }
    c->identity = id;
    r = pki_nonce_new(c->nonce, sizeof(c->nonce));
    if (r < 0) {
        return pki_fail(reason, r, "no random bytes for the nonce");
    }
    *ret = TAKE_PTR(c);
    return 0;
}

const uint8_t *pki_challenge_nonce(const pki_challenge *c)
{
    return c->nonce;
}

int pki_challenge_verify(pki_challenge *c, const char *server_name, const uint8_t *sig,
                         size_t sig_len, pki_identity *ret_identity, pki_reason *reason)
{
    /* Spend first: no path below, success or failure, leaves the nonce
     * usable for another attempt. */
    if (c->spent) {
        return pki_fail(reason, -ESTALE, "challenge already answered");
    }
    c->spent = true;

    if (!server_name || !sig || sig_len == 0 || sig_len > PKI_SIGNATURE_MAX) {
        return pki_fail(reason, -EBADMSG, "malformed proof");
    }
    uint8_t msg[PROOF_MESSAGE_MAX];
    size_t msg_len;
    if (proof_message(c->nonce, server_name, msg, sizeof(msg), &msg_len) < 0) {
        return pki_fail(reason, -EBADMSG, "malformed server name in proof");
    }
    if (!streq(server_name, c->server_name)) {
        return pki_fail(reason, -EACCES, "proof is for server name %.*s, this is %s",
                        PKI_SERVER_NAME_MAX, server_name, c->server_name);
    }

    _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    if (!mctx || EVP_DigestVerifyInit(mctx, NULL, EVP_sha256(), NULL, c->pubkey) != 1) {
        ERR_clear_error();
        return -ENOMEM;
    }
    int ok = EVP_DigestVerify(mctx, sig, sig_len, msg, msg_len);
    ERR_clear_error();
    if (ok != 1) {
        return pki_fail(reason, -EACCES, "proof signature does not verify for %s %s",
                        pki_role_to_string(c->identity.role), c->identity.name);
    }
    *ret_identity = c->identity;
    return 0;
}

/* --- client side ------------------------------------------------------- */

struct pki_prover {
    char *cert_pem;
    size_t cert_len;
    EVP_PKEY *key;
    pki_identity identity;
};

pki_prover *pki_prover_free(pki_prover *p)
{
    if (p) {
        free(p->cert_pem);
        EVP_PKEY_free(p->key);
        free(p);
    }
    return NULL;
}

static void pki_prover_freep(pki_prover **p)
{
    pki_prover_free(*p);
}

/* A private key's PEM text, wiped before it is freed. */
typedef struct secret {
    char *data;
    size_t len;
} secret;

static void secret_clear(secret *s)
{
    if (s->data) {
        OPENSSL_cleanse(s->data, s->len);
        free(s->data);
    }
}

int pki_prover_load(const char *cert_path, const char *key_path, pki_prover **ret,
                    pki_reason *reason)
{
    _cleanup_(pki_prover_freep) pki_prover *p = calloc(1, sizeof(*p));
    if (!p) {
        return -ENOMEM;
    }
    int r = pki_read_file(cert_path, PKI_CERT_PEM_MAX, &p->cert_pem, &p->cert_len, reason);
    if (r < 0) {
        return r;
    }
    _cleanup_(X509_freep) X509 *x = NULL;
    r = pki_cert_parse_pem(p->cert_pem, p->cert_len, &x, reason);
    if (r < 0) {
        return pki_fail(reason, r, "%s: not a PEM certificate", cert_path);
    }
    r = pki_cert_read_identity(x, &p->identity, reason);
    if (r < 0) {
        return r;
    }

    _cleanup_(secret_clear) secret key_pem = { 0 };
    r = pki_read_file(key_path, PKI_KEY_FILE_MAX, &key_pem.data, &key_pem.len, reason);
    if (r < 0) {
        return r;
    }
    _cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(key_pem.data, (int)key_pem.len);
    if (!bio) {
        return -ENOMEM;
    }
    p->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (!p->key) {
        ERR_clear_error();
        return pki_fail(reason, -EBADMSG, "%s: not an unencrypted PEM private key", key_path);
    }
    if (X509_check_private_key(x, p->key) != 1) {
        ERR_clear_error();
        return pki_fail(reason, -EKEYREJECTED, "%s: key does not belong to %s", key_path,
                        cert_path);
    }
    *ret = TAKE_PTR(p);
    return 0;
}

const char *pki_prover_cert_pem(const pki_prover *p, size_t *ret_len)
{
    if (ret_len) {
        *ret_len = p->cert_len;
    }
    return p->cert_pem;
}

const pki_identity *pki_prover_identity(const pki_prover *p)
{
    return &p->identity;
}

int pki_prover_sign(const pki_prover *p, const uint8_t *nonce, size_t nonce_len,
                    const char *server_name, uint8_t **ret_sig, size_t *ret_sig_len)
{
    if (!nonce || nonce_len != PKI_NONCE_SIZE || !server_name) {
        return -EBADMSG;
    }
    uint8_t msg[PROOF_MESSAGE_MAX];
    size_t msg_len;
    int r = proof_message(nonce, server_name, msg, sizeof(msg), &msg_len);
    if (r < 0) {
        return r;
    }
    _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    size_t sig_len = 0;
    if (!mctx || EVP_DigestSignInit(mctx, NULL, EVP_sha256(), NULL, p->key) != 1 ||
        EVP_DigestSign(mctx, NULL, &sig_len, msg, msg_len) != 1) {
        ERR_clear_error();
        return -EIO;
    }
    _cleanup_free_ uint8_t *sig = malloc(sig_len);
    if (!sig) {
        return -ENOMEM;
    }
    if (EVP_DigestSign(mctx, sig, &sig_len, msg, msg_len) != 1) {
        ERR_clear_error();
        return -EIO;
    }
    *ret_sig = TAKE_PTR(sig);
    *ret_sig_len = sig_len;
    return 0;
}

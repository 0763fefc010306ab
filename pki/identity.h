/* The identity handshake: proving, on top of mutual TLS, which certificate
 * the peer holds, so a listener can bind "agent:rack-a1" to one connection.
 *
 * nng 1.5.2 verifies the peer certificate during the TLS handshake but
 * cannot show it to either side, so any fleet certificate could otherwise
 * claim any rack. The exchange, carried in the callers' own messages:
 *
 *   client → listener  hello: its certificate (pki_prover_cert_pem)
 *   listener           pki_challenge_new: verifies the certificate (pki.h)
 *   listener → client  the challenge's nonce (PKI_NONCE_SIZE random bytes)
 *   client → listener  proof: server name + pki_prover_sign(nonce, server name)
 *   listener           pki_challenge_verify → identity, bound to the pipe
 *
 * The signed message is  PKI_PROOF_CONTEXT (with its NUL) || nonce ||
 * server name.  The context keeps a proof from being mistaken for any other
 * signature made with the key; the nonce makes it fresh; the server name is
 * the TLS server name the client configured (TLS already checked it against
 * the listener's certificate), so a proof made for one listener cannot be
 * relayed to another. The parts are unambiguous: the context ends at its
 * NUL, the nonce has a fixed size, the name is the rest.
 *
 * Nothing here touches a socket: bytes in, bytes out. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "pki.h"

#define PKI_NONCE_SIZE    32
#define PKI_PROOF_CONTEXT "rackboot identity proof v1"
/* An ECDSA P-256 signature is at most 72 bytes of DER; a proof longer than
 * this is refused before any work. */
#define PKI_SIGNATURE_MAX 512
/* RFC 1035 §2.3.4: a DNS name is at most 253 characters in text form. */
#define PKI_SERVER_NAME_MAX 253

/* Fills buf with len bytes from the OpenSSL CSPRNG. -EIO if it fails. */
int pki_nonce_new(uint8_t *buf, size_t len);

/* Listener side: one per connection attempt, single use by construction.
 * It holds the nonce and the verified-but-unproven certificate; the first
 * pki_challenge_verify consumes it, whatever the outcome. */
typedef struct pki_challenge pki_challenge;

/* Verifies the peer's certificate (pki_verifier_check_cert, same errors) and
 * draws a fresh nonce. The challenge copies what it needs from `v`. */
int pki_challenge_new(pki_verifier *v, const char *cert_pem, size_t cert_len,
                      pki_role expected_role, pki_challenge **ret, pki_reason *reason);
pki_challenge *pki_challenge_free(pki_challenge *c);

/* The PKI_NONCE_SIZE bytes to send to the client. */
const uint8_t *pki_challenge_nonce(const pki_challenge *c);

/* Checks a proof: `server_name` is the name the client says it signed for
 * and must equal the verifier's own; `sig` must verify under the
 * certificate's public key over the message above. On success writes the
 * certificate's identity, which the caller binds to the connection.
 *
 * Spends the challenge on the first call: every later call fails with
 * -ESTALE, so a nonce can never be answered twice. Errors: -EACCES wrong
 * server name or bad signature, -EBADMSG malformed input, -ESTALE spent. */
int pki_challenge_verify(pki_challenge *c, const char *server_name, const uint8_t *sig,
                         size_t sig_len, pki_identity *ret_identity, pki_reason *reason);

/* Client side: our certificate and its private key. */
typedef struct pki_prover pki_prover;

/* Loads PEM files and checks that the key belongs to the certificate and the
 * certificate carries a rackboot identity. -EKEYREJECTED on a mismatch. */
int pki_prover_load(const char *cert_path, const char *key_path, pki_prover **ret,
                    pki_reason *reason);
pki_prover *pki_prover_free(pki_prover *p);

/* The certificate as loaded (PEM text), to send in the hello. */
const char *pki_prover_cert_pem(const pki_prover *p, size_t *ret_len);
/* The identity our certificate claims. */
const pki_identity *pki_prover_identity(const pki_prover *p);

/* Signs a nonce for `server_name` (our configured TLS server name). The
 * nonce came from the network: -EBADMSG unless it is PKI_NONCE_SIZE bytes.
 * *ret_sig is malloc'd (DER ECDSA signature); the caller frees it. */
int pki_prover_sign(const pki_prover *p, const uint8_t *nonce, size_t nonce_len,
                    const char *server_name, uint8_t **ret_sig, size_t *ret_sig_len);

/* auth: who is at the other end of each connection.
 *
 * Runs the listener side of the identity handshake (pki/identity.h) in the
 * requests of a connection and remembers the proven identity per nng pipe
 * until the pipe closes. Nothing but the handshake is accepted on a pipe
 * before that: callers ask auth_identity() first and answer UNAUTHORIZED
 * when it returns NULL. Loop thread only. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "identity.h"
#include "pki.h"
#include "rackboot.pb-c.h"

typedef struct auth auth;

typedef struct auth_peer {
    pki_identity id;  /* role and name from the certificate */
    char version[64]; /* the software version the peer announced */
} auth_peer;

/* `v` is borrowed; `role` is the only role this listener accepts. */
int auth_new(pki_verifier *v, pki_role role, auth **ret);
auth *auth_free(auth *a);

/* Hello: verifies the certificate and writes the nonce to send. Errors
 * (-EACCES and others) fill `reason` for the reply and the log. */
int auth_hello(auth *a, uint32_t pipe, const Rackboot__V1__AuthHello *hello,
               uint8_t ret_nonce[PKI_NONCE_SIZE], pki_reason *reason);
/* Proof: on success the pipe is authenticated and *ret_peer points to its
 * identity (valid until the pipe closes). */
int auth_proof(auth *a, uint32_t pipe, const Rackboot__V1__AuthProof *proof,
               const auth_peer **ret_peer, pki_reason *reason);

/* The CRL was reloaded: the connections whose certificate (as sent in
 * their hello, proven or still pending) the verifier now refuses as
 * revoked. *ret_pipes is malloc'd (NULL when there are none); the caller
 * closes those connections and calls auth_pipe_closed() for each. */
int auth_revoked_pipes(const auth *a, uint32_t **ret_pipes, size_t *ret_n);

/* The pipe's proven identity, or NULL. */
const auth_peer *auth_identity(const auth *a, uint32_t pipe);
void auth_pipe_closed(auth *a, uint32_t pipe);
size_t auth_count(const auth *a);
/* Identities proven on at least one pipe: a peer redialling holds two
 * pipes for a while and counts once (auth_count() counts pipes, those
 * still in their handshake included). -ENOMEM as a negative count. */
ssize_t auth_count_proven(const auth *a);

#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "identity.h"
#include "util.h"

/* Per pipe: a pending challenge, or a proven identity. */
typedef struct pipe_state {
    uint32_t pipe; /* the hashmap key points here */
    pki_challenge *challenge;
    char *cert_pem; /* from the hello, to check again when the CRL changes */
    bool proven;
    auth_peer peer;
} pipe_state;

struct auth {
    pki_verifier *verifier;
    pki_role role;
    hashmap *pipes;
};

int auth_new(pki_verifier *v, pki_role role, auth **ret)
{
    auth *a = calloc(1, sizeof(*a));
    if (!a) {
        return -ENOMEM;
    }
    a->verifier = v;
    a->role = role;
    int r = hashmap_new(64, &a->pipes);
    if (r < 0) {
        free(a);
        return r;
    }
    *ret = a;
    return 0;
}

static void pipe_state_free(pipe_state *p)
{
    pki_challenge_free(p->challenge);
    free(p->cert_pem);
    free(p);
}

auth *auth_free(auth *a)
{
    if (!a) {
        return NULL;
    }
    size_t iter = 0;
    void *v;
    while (hashmap_next(a->pipes, &iter, &v)) {
        pipe_state_free(v);
    }
    hashmap_free(a->pipes);
    free(a);
    return NULL;
}

static pipe_state *pipe_get(auth *a, uint32_t pipe, bool create)
{
    pipe_state *p = hashmap_get(a->pipes, &pipe, sizeof(pipe));
    if (p || !create) {
        return p;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    p->pipe = pipe;
    if (hashmap_put(a->pipes, &p->pipe, sizeof(p->pipe), p) < 0) {
        free(p);
        return NULL;
    }
    return p;
}

int auth_hello(auth *a, uint32_t pipe, const Rackboot__V1__AuthHello *hello,
               uint8_t ret_nonce[PKI_NONCE_SIZE], pki_reason *reason)
{
    pipe_state *p = pipe_get(a, pipe, true);
    if (!p) {
        snprintf(reason->text, sizeof(reason->text), "out of memory");
        return -ENOMEM;
    }
    /* A new hello starts over: the pipe is unproven until its proof. */
    p->challenge = pki_challenge_free(p->challenge);
    p->proven = false;
    const char *pem = hello->certificate_pem ? hello->certificate_pem : "";
    int r = pki_challenge_new(a->verifier, pem, strlen(pem), a->role, &p->challenge, reason);
    if (r < 0) {
        return r;
    }
    free(p->cert_pem);
    p->cert_pem = strdup(pem); /* at most PKI_CERT_PEM_MAX: pki_challenge_new checked */
    if (!p->cert_pem) {
        p->challenge = pki_challenge_free(p->challenge);
        snprintf(reason->text, sizeof(reason->text), "out of memory");
        return -ENOMEM;
    }
    snprintf(p->peer.version, sizeof(p->peer.version), "%s",
             hello->software_version ? hello->software_version : "");
    memcpy(ret_nonce, pki_challenge_nonce(p->challenge), PKI_NONCE_SIZE);
    return 0;
}

int auth_proof(auth *a, uint32_t pipe, const Rackboot__V1__AuthProof *proof,
               const auth_peer **ret_peer, pki_reason *reason)
{
    pipe_state *p = pipe_get(a, pipe, false);
    if (!p || !p->challenge) {
        snprintf(reason->text, sizeof(reason->text), "proof without a hello on this connection");
        return -EACCES;
    }
    pki_identity id;
    int r = pki_challenge_verify(p->challenge, pki_verifier_server_name(a->verifier),
                                 proof->signature.data, proof->signature.len, &id, reason);
    p->challenge = pki_challenge_free(p->challenge); /* single use either way */
    if (r < 0) {
        return r;
    }
    p->peer.id = id;
    p->proven = true;
    *ret_peer = &p->peer;
    return 0;
}

int auth_revoked_pipes(const auth *a, uint32_t **ret_pipes, size_t *ret_n)
{
    uint32_t *pipes = NULL;
    size_t n = 0, cap = 0, iter = 0;
    void *v;
    while (hashmap_next(a->pipes, &iter, &v)) {
        const pipe_state *p = v;
        if (!p->cert_pem) {
            continue;
        }
        pki_identity id;
        int r = pki_verifier_check_cert(a->verifier, p->cert_pem, strlen(p->cert_pem), a->role, &id,
                                        NULL);
        /* Only a revocation cuts: a CRL past its nextUpdate refuses every
         * certificate too (-EACCES), and cutting every connection for it
         * would turn a late CRL renewal into a fleet-wide outage. */
        if (r != -EKEYREJECTED) {
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            uint32_t *np = realloc(pipes, ncap * sizeof(*np));
            if (!np) {
                free(pipes);
                return -ENOMEM;
            }
            pipes = np;
            cap = ncap;
        }
        pipes[n++] = p->pipe;
    }
    *ret_pipes = pipes;
    *ret_n = n;
    return 0;
}

const auth_peer *auth_identity(const auth *a, uint32_t pipe)
{
    const pipe_state *p = hashmap_get(a->pipes, &pipe, sizeof(pipe));
    return p && p->proven ? &p->peer : NULL;
}

void auth_pipe_closed(auth *a, uint32_t pipe)
{
    pipe_state *p = hashmap_remove(a->pipes, &pipe, sizeof(pipe));
    if (p) {
        pipe_state_free(p);
    }
}

size_t auth_count(const auth *a)
{
    return hashmap_size(a->pipes);
}

static int name_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

ssize_t auth_count_proven(const auth *a)
{
    size_t n = 0;
    void *v;
    const char **names = calloc(auth_count(a) + 1, sizeof(*names));
    if (!names) {
        return -ENOMEM;
    }
    for (size_t it = 0; hashmap_next(a->pipes, &it, &v);) {
        const pipe_state *ps = v;
        if (ps->proven) {
            names[n++] = ps->peer.id.name;
        }
    }
    /* One role per listener, so the name alone is the identity. */
    qsort(names, n, sizeof(*names), name_cmp);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        distinct += i == 0 || strcmp(names[i - 1], names[i]) != 0;
    }
    free(names);
    return (ssize_t)distinct;
}

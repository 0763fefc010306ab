/* pki over real nng: certificates from rackboot-pki's code work with nng
 * 1.5.2's mbedTLS for mutual TLS on loopback (CA + CRL given to nng), and the
 * identity handshake runs over the same REQ/REP connection and binds the
 * agent's rack to the nng pipe. Clients with another CA's certificate, a
 * revoked one, or none at all get nothing through.
 *
 * The handshake messages here are a minimal stand-in for the protobuf ones
 * of proto/: one kind byte, then the payload. */
#include <errno.h>
#include <ftw.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "ca.h"
#include "identity.h"
#include "pki-internal.h"
#include "pki.h"

#define SERVER_NAME "ctl.example.test"
#define RECV_MAX    (64 * 1024)
#define TIMEOUT_MS  1500

enum {
    MSG_HELLO = 'H',  /* client: certificate PEM */
    MSG_NONCE = 'N',  /* listener: nonce */
    MSG_PROOF = 'P',  /* client: server name, NUL, signature */
    MSG_BOUND = 'B',  /* listener: "role:name" now bound to the pipe */
    MSG_WHOAMI = 'W', /* client: any later request */
    MSG_DENIED = 'D', /* listener: refused, with the reason */
};

static char fleet_dir[64];
static char other_dir[64];
static char *ca_pem, *crl_pem;

/* The listener: a REP socket, its verifier and the per-pipe state. */
static nng_socket rep;
static nng_listener listener;
static pki_verifier *verifier;
static int port;

#define PIPES_MAX 8
static struct pipe_state {
    uint32_t pipe_id;
    pki_challenge *challenge;
    bool bound;
    pki_identity identity;
} pipes[PIPES_MAX];

static char *slurp(const char *dir, const char *rel)
{
    char path[192];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, rel);
    assert_true(n > 0 && (size_t)n < sizeof(path));
    char *data = NULL;
    size_t len;
    pki_reason reason = { "" };
    if (pki_read_file(path, 1 << 20, &data, &len, &reason) < 0) {
        fail_msg("%s", reason.text);
    }
    return data;
}

static void issue(pki_ca *ca, pki_role role, const char *name, const char *san)
{
    time_t now = time(NULL);
    const char *sans[] = { san };
    pki_issue_request req = { .role = role,
                              .name = name,
                              .sans = san ? sans : NULL,
                              .n_sans = san ? 1 : 0,
                              .not_before = now - 60,
                              .not_after = now + 86400 };
    pki_reason reason = { "" };
    if (pki_ca_issue(ca, &req, &reason) < 0) {
        fail_msg("issue %s: %s", name, reason.text);
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void set_limits(nng_socket s)
{
    /* CONVENTIONS.md: nng's default receive limit is unlimited. */
    assert_int_equal(nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, RECV_MAX), 0);
    assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, TIMEOUT_MS), 0);
    assert_int_equal(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, TIMEOUT_MS), 0);
}

static int setup(void **state)
{
    pki_reason reason = { "" };
    pki_ca *ca = NULL;
    strcpy(fleet_dir, "/tmp/rb-test-nng-XXXXXX");
    strcpy(other_dir, "/tmp/rb-test-nng-other-XXXXXX");
    assert_non_null(mkdtemp(fleet_dir));
    assert_non_null(mkdtemp(other_dir));

    assert_int_equal(pki_ca_init(fleet_dir, "fleet", 3650, &reason), 0);
    assert_int_equal(pki_ca_open(fleet_dir, &ca, &reason), 0);
    /* 127.0.0.1 as an IP SAN too: nng's mbedTLS still will not match it. */
    issue(ca, PKI_ROLE_CONTROLLER, SERVER_NAME, "127.0.0.1");
    issue(ca, PKI_ROLE_AGENT, "rack-a1", NULL);
    issue(ca, PKI_ROLE_AGENT, "rack-b2", NULL);
    issue(ca, PKI_ROLE_AGENT, "rack-revoked", NULL);
    assert_int_equal(pki_ca_revoke(ca, PKI_ROLE_AGENT, "rack-revoked", 30, &reason), 1);
    ca = pki_ca_free(ca);
    assert_int_equal(pki_ca_init(other_dir, "other", 3650, &reason), 0);
    assert_int_equal(pki_ca_open(other_dir, &ca, &reason), 0);
    issue(ca, PKI_ROLE_AGENT, "rack-a1", NULL);
    ca = pki_ca_free(ca);

    ca_pem = slurp(fleet_dir, "ca.crt");
    crl_pem = slurp(fleet_dir, "crl.pem");
    char ca_path[128], crl_path[128];
    snprintf(ca_path, sizeof(ca_path), "%s/ca.crt", fleet_dir);
    snprintf(crl_path, sizeof(crl_path), "%s/crl.pem", fleet_dir);
    assert_int_equal(pki_verifier_new(ca_path, crl_path, SERVER_NAME, &verifier, &reason), 0);

    /* The controller's side of the TLS link. */
    char *cert = slurp(fleet_dir, "controller/" SERVER_NAME ".crt");
    char *key = slurp(fleet_dir, "controller/" SERVER_NAME ".key");
    nng_tls_config *cfg;
    assert_int_equal(nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER), 0);
    assert_int_equal(nng_tls_config_own_cert(cfg, cert, key, NULL), 0);
    assert_int_equal(nng_tls_config_ca_chain(cfg, ca_pem, crl_pem), 0);
    assert_int_equal(nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED), 0);
    free(cert);
    free(key);

    assert_int_equal(nng_rep0_open(&rep), 0);
    set_limits(rep);
    /* Port 0: the kernel picks a free one, nng tells us which. */
    assert_int_equal(nng_listener_create(&listener, rep, "tls+tcp://127.0.0.1:0"), 0);
    assert_int_equal(nng_listener_set_ptr(listener, NNG_OPT_TLS_CONFIG, cfg), 0);
    nng_tls_config_free(cfg); /* the listener holds its own reference */
    assert_int_equal(nng_listener_start(listener, 0), 0);
    assert_int_equal(nng_listener_get_int(listener, NNG_OPT_TCP_BOUND_PORT, &port), 0);
    assert_true(port > 0);
    return 0;
}

static int teardown(void **state)
{
    nng_close(rep);
    for (size_t i = 0; i < PIPES_MAX; i++) {
        pipes[i].challenge = pki_challenge_free(pipes[i].challenge);
    }
    verifier = pki_verifier_free(verifier);
    free(ca_pem);
    free(crl_pem);
    nftw(fleet_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    nftw(other_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    nng_fini();
    return 0;
}

/* --- the listener's side of the handshake ----------------------------------- */

static struct pipe_state *pipe_state(uint32_t id)
{
    struct pipe_state *free_slot = NULL;
    for (size_t i = 0; i < PIPES_MAX; i++) {
        if (pipes[i].pipe_id == id) {
            return &pipes[i];
        }
        if (!free_slot && pipes[i].pipe_id == 0) {
            free_slot = &pipes[i];
        }
    }
    assert_non_null(free_slot);
    free_slot->pipe_id = id;
    return free_slot;
}

static void reply(nng_msg *req, char kind, const void *data, size_t len)
{
    nng_msg *msg;
    assert_int_equal(nng_msg_alloc(&msg, 0), 0);
    assert_int_equal(nng_msg_append(msg, &kind, 1), 0);
    assert_int_equal(nng_msg_append(msg, data, len), 0);
    nng_msg_free(req);
    assert_int_equal(nng_sendmsg(rep, msg, 0), 0);
}

/* Serves one request the way the controller would: identity first, and only
 * a bound pipe gets an answer to anything else. */
static int serve_one(void)
{
    nng_msg *msg;
    int rv = nng_recvmsg(rep, &msg, 0);
    if (rv != 0) {
        return rv;
    }
    uint32_t pipe_id = (uint32_t)nng_pipe_id(nng_msg_get_pipe(msg));
    assert_true(pipe_id > 0);
    struct pipe_state *ps = pipe_state(pipe_id);
    const uint8_t *body = nng_msg_body(msg);
    size_t len = nng_msg_len(msg);
    pki_reason reason = { "" };
    if (len == 0) {
        reply(msg, MSG_DENIED, "empty", 5);
        return 0;
    }
    switch (body[0]) {
    case MSG_HELLO: {
        ps->challenge = pki_challenge_free(ps->challenge);
        int r = pki_challenge_new(verifier, (const char *)body + 1, len - 1, PKI_ROLE_AGENT,
                                  &ps->challenge, &reason);
        if (r < 0) {
            reply(msg, MSG_DENIED, reason.text, strlen(reason.text));
        } else {
            reply(msg, MSG_NONCE, pki_challenge_nonce(ps->challenge), PKI_NONCE_SIZE);
        }
        return 0;
    }
    case MSG_PROOF: {
        const uint8_t *nul = memchr(body + 1, '\0', len - 1);
        if (!ps->challenge || !nul) {
            reply(msg, MSG_DENIED, "no challenge", 12);
            return 0;
        }
        const char *name = (const char *)body + 1;
        const uint8_t *sig = nul + 1;
        size_t sig_len = len - (size_t)(sig - body);
        pki_identity id;
        int r = pki_challenge_verify(ps->challenge, name, sig, sig_len, &id, &reason);
        ps->challenge = pki_challenge_free(ps->challenge);
        if (r < 0) {
            reply(msg, MSG_DENIED, reason.text, strlen(reason.text));
            return 0;
        }
        ps->bound = true;
        ps->identity = id;
        char who[80];
        int n = snprintf(who, sizeof(who), "%s:%s", pki_role_to_string(id.role), id.name);
        reply(msg, MSG_BOUND, who, (size_t)n);
        return 0;
    }
    default:
        if (!ps->bound) {
            reply(msg, MSG_DENIED, "not bound", 9);
            return 0;
        }
        reply(msg, MSG_BOUND, ps->identity.name, strlen(ps->identity.name));
        return 0;
    }
}

/* --- clients ---------------------------------------------------------------- */

typedef struct client {
    nng_socket req;
    nng_dialer dialer;
} client;

/* Dials the listener synchronously (NNG_FLAG_NONBLOCK off: nng_dialer_start
 * returns the first attempt's result, TLS handshake included). cert_rel and
 * key_rel are under `dir`; NULL sends no client certificate. */
static int client_dial(client *c, const char *dir, const char *cert_rel, const char *key_rel,
                       const char *server_name)
{
    nng_tls_config *cfg;
    assert_int_equal(nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT), 0);
    /* The name TLS checks the listener's certificate against, whatever
     * address we dial: mbedTLS matches DNS SANs only. */
    assert_int_equal(nng_tls_config_server_name(cfg, server_name), 0);
    assert_int_equal(nng_tls_config_ca_chain(cfg, ca_pem, NULL), 0);
    assert_int_equal(nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED), 0);
    if (cert_rel) {
        char *cert = slurp(dir, cert_rel);
        char *key = slurp(dir, key_rel);
        assert_int_equal(nng_tls_config_own_cert(cfg, cert, key, NULL), 0);
        free(cert);
        free(key);
    }
    assert_int_equal(nng_req0_open(&c->req), 0);
    set_limits(c->req);
    /* No REQ resend inside a test: one request, one answer. */
    assert_int_equal(nng_socket_set_ms(c->req, NNG_OPT_REQ_RESENDTIME, 60000), 0);
    char url[64];
    snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", port);
    assert_int_equal(nng_dialer_create(&c->dialer, c->req, url), 0);
    assert_int_equal(nng_dialer_set_ptr(c->dialer, NNG_OPT_TLS_CONFIG, cfg), 0);
    nng_tls_config_free(cfg);
    return nng_dialer_start(c->dialer, 0);
}

static void client_close(client *c)
{
    nng_close(c->req);
}

/* Sends kind+payload and returns the reply (caller frees), serving the
 * request on the listener in between. */
static nng_msg *roundtrip(client *c, char kind, const void *data, size_t len)
{
    nng_msg *msg;
    assert_int_equal(nng_msg_alloc(&msg, 0), 0);
    assert_int_equal(nng_msg_append(msg, &kind, 1), 0);
    assert_int_equal(nng_msg_append(msg, data, len), 0);
    assert_int_equal(nng_sendmsg(c->req, msg, 0), 0);
    assert_int_equal(serve_one(), 0);
    nng_msg *answer;
    assert_int_equal(nng_recvmsg(c->req, &answer, 0), 0);
    assert_true(nng_msg_len(answer) >= 1);
    return answer;
}

static char answer_kind(nng_msg *m)
{
    return ((const char *)nng_msg_body(m))[0];
}

static bool answer_is(nng_msg *m, char kind, const char *text)
{
    size_t n = strlen(text);
    return answer_kind(m) == kind && nng_msg_len(m) == n + 1 &&
           memcmp((const char *)nng_msg_body(m) + 1, text, n) == 0;
}

/* Runs hello → nonce → proof with `prover`, presenting `hello_cert` (NULL:
 * the prover's own). Returns the final answer. */
static nng_msg *handshake(client *c, pki_prover *prover, const char *hello_cert,
                          const char *proof_name)
{
    size_t len;
    const char *pem = hello_cert ? hello_cert : pki_prover_cert_pem(prover, &len);
    nng_msg *m = roundtrip(c, MSG_HELLO, pem, strlen(pem));
    if (answer_kind(m) != MSG_NONCE) {
        return m;
    }
    uint8_t *sig;
    size_t sig_len;
    assert_int_equal(pki_prover_sign(prover, (const uint8_t *)nng_msg_body(m) + 1,
                                     nng_msg_len(m) - 1, proof_name, &sig, &sig_len),
                     0);
    nng_msg_free(m);
    size_t name_len = strlen(proof_name) + 1;
    uint8_t *proof = malloc(name_len + sig_len);
    assert_non_null(proof);
    memcpy(proof, proof_name, name_len);
    memcpy(proof + name_len, sig, sig_len);
    m = roundtrip(c, MSG_PROOF, proof, name_len + sig_len);
    free(proof);
    free(sig);
    return m;
}

static pki_prover *prover_of(const char *dir, const char *name)
{
    char crt[160], key[160];
    snprintf(crt, sizeof(crt), "%s/agent/%s.crt", dir, name);
    snprintf(key, sizeof(key), "%s/agent/%s.key", dir, name);
    pki_prover *p = NULL;
    pki_reason reason = { "" };
    if (pki_prover_load(crt, key, &p, &reason) < 0) {
        fail_msg("%s", reason.text);
    }
    return p;
}

static void test_agent_proves_rack_over_mutual_tls(void **state)
{
    client c;
    assert_int_equal(
        client_dial(&c, fleet_dir, "agent/rack-a1.crt", "agent/rack-a1.key", SERVER_NAME), 0);

    /* Plain traffic flows, but an unbound pipe is told nothing. */
    nng_msg *m = roundtrip(&c, MSG_WHOAMI, "", 0);
    assert_true(answer_is(m, MSG_DENIED, "not bound"));
    nng_msg_free(m);

    pki_prover *p = prover_of(fleet_dir, "rack-a1");
    m = handshake(&c, p, NULL, SERVER_NAME);
    assert_true(answer_is(m, MSG_BOUND, "agent:rack-a1"));
    nng_msg_free(m);

    /* Later requests on this pipe carry the rack. */
    m = roundtrip(&c, MSG_WHOAMI, "", 0);
    assert_true(answer_is(m, MSG_BOUND, "rack-a1"));
    nng_msg_free(m);
    pki_prover_free(p);
    client_close(&c);
}

static void test_borrowed_certificate_does_not_bind(void **state)
{
    /* rack-b2's agent, on its own valid TLS link, says hello with rack-a1's
     * certificate (public knowledge) and cannot sign for it. */
    client c;
    assert_int_equal(
        client_dial(&c, fleet_dir, "agent/rack-b2.crt", "agent/rack-b2.key", SERVER_NAME), 0);
    pki_prover *b2 = prover_of(fleet_dir, "rack-b2");
    char *a1_cert = slurp(fleet_dir, "agent/rack-a1.crt");
    nng_msg *m = handshake(&c, b2, a1_cert, SERVER_NAME);
    assert_int_equal(answer_kind(m), MSG_DENIED);
    nng_msg_free(m);
    m = roundtrip(&c, MSG_WHOAMI, "", 0);
    assert_true(answer_is(m, MSG_DENIED, "not bound"));
    nng_msg_free(m);

    /* A proof made for another server name does not bind either. */
    m = handshake(&c, b2, NULL, "other.example.test");
    assert_int_equal(answer_kind(m), MSG_DENIED);
    nng_msg_free(m);
    free(a1_cert);
    pki_prover_free(b2);
    client_close(&c);
}

/* What nng 1.5.2 does with a client the listener's TLS refuses: the
 * synchronous dial itself fails (the SP negotiation runs inside the TLS
 * session, so the dialer sees the handshake fail), and the listener
 * receives nothing. */
static void expect_refused(const char *dir, const char *cert_rel, const char *key_rel,
                           const char *server_name)
{
    client c;
    int rv = client_dial(&c, dir, cert_rel, key_rel, server_name);
    print_message("dial with %s, server name %s: %s\n", cert_rel ? cert_rel : "no certificate",
                  server_name, rv ? nng_strerror(rv) : "connected");
    if (rv == 0) {
        /* Should nng ever report success first, nothing may get through. */
        nng_msg *msg;
        assert_int_equal(nng_msg_alloc(&msg, 0), 0);
        assert_int_equal(nng_msg_append(msg, "W", 1), 0);
        (void)nng_sendmsg(c.req, msg, 0);
    }
    assert_int_not_equal(rv, 0);
    nng_msg *leaked = NULL;
    assert_int_equal(nng_socket_set_ms(rep, NNG_OPT_RECVTIMEO, 300), 0);
    assert_int_equal(nng_recvmsg(rep, &leaked, 0), NNG_ETIMEDOUT);
    assert_int_equal(nng_socket_set_ms(rep, NNG_OPT_RECVTIMEO, TIMEOUT_MS), 0);
    client_close(&c);
}

static void test_other_ca_refused_by_tls(void **state)
{
    expect_refused(other_dir, "agent/rack-a1.crt", "agent/rack-a1.key", SERVER_NAME);
}

static void test_revoked_refused_by_tls(void **state)
{
    expect_refused(fleet_dir, "agent/rack-revoked.crt", "agent/rack-revoked.key", SERVER_NAME);
}

static void test_no_client_cert_refused_by_tls(void **state)
{
    expect_refused(fleet_dir, NULL, NULL, SERVER_NAME);
}

static void test_server_name_must_be_dns(void **state)
{
    /* The controller's certificate names 127.0.0.1 as an IP SAN, yet nng's
     * mbedTLS does not match IP SANs: clients must set the DNS name. */
    expect_refused(fleet_dir, "agent/rack-a1.crt", "agent/rack-a1.key", "127.0.0.1");
    /* And a name the certificate does not carry is refused outright. */
    expect_refused(fleet_dir, "agent/rack-a1.crt", "agent/rack-a1.key", "evil.example.test");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_proves_rack_over_mutual_tls),
        cmocka_unit_test(test_borrowed_certificate_does_not_bind),
        cmocka_unit_test(test_other_ca_refused_by_tls),
        cmocka_unit_test(test_revoked_refused_by_tls),
        cmocka_unit_test(test_no_client_cert_refused_by_tls),
        cmocka_unit_test(test_server_name_must_be_dns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

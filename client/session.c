#include "session.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "errmsg.h"
#include "identity.h"
#include "rbproto.h"
#include "tls.h"
#include "util.h"
#include "version.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 5000u
/* A handshake is two small round trips; this bounds each. */
#define HANDSHAKE_TIMEOUT_MS 10000u

/* The identity proof's certificate and key, shared by reference: a
 * handshake holds the one it started with (hello and proof must come from
 * the same certificate) while rb_session_reload_tls() swaps in a new one,
 * without making the reload wait for a handshake on the network. */
typedef struct prover_ref {
    pki_prover *prover;
    unsigned refs; /* under rb_session.lock */
} prover_ref;

struct rb_session {
    nng_socket sock;
    nng_dialer dialer;
    rb_session_kind kind;
    bool tls;
    prover_ref *prover; /* under `lock`; see prover_hold() */
    char *server_name;
    char *version;
    /* tls+tcp://: the files, for rb_session_reload_tls(). */
    char *ca, *cert, *key, *crl;
    /* `handshake_lock` serializes handshakes; `lock` guards the fields below
     * and is never held across the network, so calls on other threads start
     * while a handshake runs. `auth_epoch` counts completed handshakes so
     * that threads that all saw "unauthenticated" run one, not many. */
    pthread_mutex_t handshake_lock;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool connected; /* a pipe was added (first dial of a reconnecting session) */
    nng_pipe pipe;  /* the connection up now, or id 0 */
    uint8_t tls_digest[RB_TLS_DIGEST_SIZE];
    /* Our references to the dialer's configuration and to the one it
     * replaced: nng reads the dialer's pointer without a lock when it starts
     * a dial, so a replaced configuration stays alive one more round. */
    nng_tls_config *tls_cur, *tls_prev;
    uint64_t auth_epoch;
    /* The last AuthResult, inside the reply envelope that owns it. */
    ProtobufCMessage *identity_owner;
    const Rackboot__V1__AuthResult *identity;
};

/* The host part of tls+tcp://HOST:PORT or tls+tcp://[V6]:PORT. */
static char *url_host(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p) {
        return NULL;
    }
    p += 3;
    if (*p == '[') {
        const char *end = strchr(p, ']');
        return end ? strndup(p + 1, (size_t)(end - p - 1)) : NULL;
    }
    const char *end = strrchr(p, ':');
    return end ? strndup(p, (size_t)(end - p)) : strdup(p);
}

static uint64_t now_ms(void)
{
    return (uint64_t)nng_clock();
}

/* ---- The prover --------------------------------------------------------- */

static int prover_ref_new(const char *cert, const char *key, prover_ref **ret, char **ret_error)
{
    prover_ref *ref = calloc(1, sizeof(*ref));
    if (!ref) {
        return -ENOMEM;
    }
    pki_reason reason = { 0 };
    int r = pki_prover_load(cert, key, &ref->prover, &reason);
    if (r < 0) {
        free(ref);
        return errmsg_fail(ret_error, r, "cannot use certificate %s with key %s: %s",
                           cert ? cert : "(none)", key ? key : "(none)",
                           reason.text[0] ? reason.text : errstr(r));
    }
    ref->refs = 1;
    *ret = ref;
    return 0;
}

static prover_ref *prover_hold(rb_session *s)
{
    pthread_mutex_lock(&s->lock);
    prover_ref *ref = s->prover;
    ref->refs++;
    pthread_mutex_unlock(&s->lock);
    return ref;
}

static void prover_drop(rb_session *s, prover_ref *ref)
{
    if (!ref) {
        return;
    }
    pthread_mutex_lock(&s->lock);
    bool last = --ref->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last) {
        pki_prover_free(ref->prover);
        free(ref);
    }
}

/* ---- One request/reply on a fresh context ------------------------------ */

/* Sends `buf` and waits for the reply until `deadline` (nng_clock ms). */
static int roundtrip(rb_session *s, const uint8_t *buf, size_t len, uint64_t deadline,
                     nng_msg **ret)
{
    uint64_t now = now_ms();
    if (now >= deadline) {
        return -ETIMEDOUT;
    }
    nng_ctx ctx;
    int rv = nng_ctx_open(&ctx, s->sock);
    if (rv != 0) {
        return rb_nng_errno(rv);
    }
    nng_aio *aio = NULL;
    nng_msg *msg = NULL;
    rv = nng_aio_alloc(&aio, NULL, NULL);
    if (rv == 0) {
        rv = nng_msg_alloc(&msg, len);
    }
    if (rv != 0) {
        goto out;
    }
    memcpy(nng_msg_body(msg), buf, len);
    nng_aio_set_timeout(aio, (nng_duration)(deadline - now));
    nng_aio_set_msg(aio, msg);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    rv = nng_aio_result(aio);
    if (rv != 0) {
        nng_msg_free(msg); /* not consumed on failure */
        goto out;
    }
    now = now_ms();
    nng_aio_set_timeout(aio, now >= deadline ? 1 : (nng_duration)(deadline - now));
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    rv = nng_aio_result(aio);
    if (rv == 0) {
        *ret = nng_aio_get_msg(aio);
    }
out:
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    return rb_nng_errno(rv);
}

static int pack_and_call(rb_session *s, const ProtobufCMessage *req, uint64_t deadline,
                         nng_msg **ret)
{
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len = 0;
    int r = rbproto_pack(req, RBPROTO_MAX_MESSAGE, &buf, &len);
    if (r < 0) {
        return r;
    }
    return roundtrip(s, buf, len, deadline, ret);
}

/* ---- Handshake --------------------------------------------------------- */

/* Envelopes differ per kind but the auth fields are the same. */
typedef struct auth_reply {
    int status; /* 0, or -EACCES with `error` */
    const Rackboot__V1__AuthChallenge *challenge;
    const Rackboot__V1__AuthResult *result;
    const char *error;
    ProtobufCMessage *owner;
} auth_reply;

static int auth_call(rb_session *s, const pki_prover *prover, bool hello, const uint8_t *sig,
                     size_t sig_len, uint64_t deadline, auth_reply *out)
{
    Rackboot__V1__AuthHello h = RACKBOOT__V1__AUTH_HELLO__INIT;
    Rackboot__V1__AuthProof p = RACKBOOT__V1__AUTH_PROOF__INIT;
    /* The claim names the rack ("rack-a" for its agent 2, "rack-a/2"):
     * the wire's rack names hold no '/'. Only logs read it. */
    char rack[PKI_NAME_MAX + 1] = "";
    unsigned instance;
    if (hello && pki_prover_identity(prover)->role == PKI_ROLE_AGENT &&
        pki_agent_name_split(pki_prover_identity(prover)->name, rack, &instance) < 0) {
        rack[0] = '\0';
    }
    if (hello) {
        size_t pem_len = 0;
        h.role = pki_prover_identity(prover)->role == PKI_ROLE_AGENT
                     ? RACKBOOT__V1__ROLE__ROLE_AGENT
                     : RACKBOOT__V1__ROLE__ROLE_OPERATOR;
        h.certificate_pem = RB_UNCONST(pki_prover_cert_pem(prover, &pem_len));
        h.software_version = s->version;
        h.rack_claim = rack;
    } else {
        p.signature.data = RB_UNCONST(sig);
        p.signature.len = sig_len;
    }

    nng_msg *msg = NULL;
    int r;
    if (s->kind == RB_SESSION_AGENT) {
        Rackboot__V1__AgentRequest req = RACKBOOT__V1__AGENT_REQUEST__INIT;
        if (hello) {
            req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_AUTH_HELLO;
            req.auth_hello = &h;
        } else {
            req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_AUTH_PROOF;
            req.auth_proof = &p;
        }
        r = pack_and_call(s, &req.base, deadline, &msg);
    } else {
        Rackboot__V1__ApiRequest req = RACKBOOT__V1__API_REQUEST__INIT;
        if (hello) {
            req.body_case = RACKBOOT__V1__API_REQUEST__BODY_AUTH_HELLO;
            req.auth_hello = &h;
        } else {
            req.body_case = RACKBOOT__V1__API_REQUEST__BODY_AUTH_PROOF;
            req.auth_proof = &p;
        }
        r = pack_and_call(s, &req.base, deadline, &msg);
    }
    if (r < 0) {
        return r;
    }

    *out = (auth_reply){ 0 };
    if (s->kind == RB_SESSION_AGENT) {
        Rackboot__V1__AgentReply *rep = NULL;
        r = rbproto_unpack_agent_reply(nng_msg_body(msg), nng_msg_len(msg),
                                       RBPROTO_MAX_UNAUTHENTICATED, &rep);
        nng_msg_free(msg);
        if (r < 0) {
            return r;
        }
        out->owner = &rep->base;
        if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_AUTH_CHALLENGE) {
            out->challenge = rep->auth_challenge;
        } else if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_AUTH_RESULT) {
            out->result = rep->auth_result;
        } else if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_ERROR) {
            out->status = -EACCES;
            out->error = rep->error->message;
        }
    } else {
        Rackboot__V1__ApiReply *rep = NULL;
        r = rbproto_unpack_api_reply(nng_msg_body(msg), nng_msg_len(msg),
                                     RBPROTO_MAX_UNAUTHENTICATED, &rep);
        nng_msg_free(msg);
        if (r < 0) {
            return r;
        }
        out->owner = &rep->base;
        if (rep->status != RACKBOOT__V1__STATUS__STATUS_OK) {
            out->status = -EACCES;
            out->error = rep->message;
        } else if (rep->body_case == RACKBOOT__V1__API_REPLY__BODY_AUTH_CHALLENGE) {
            out->challenge = rep->auth_challenge;
        } else if (rep->body_case == RACKBOOT__V1__API_REPLY__BODY_AUTH_RESULT) {
            out->result = rep->auth_result;
        }
    }
    return 0;
}

static void auth_reply_clear(auth_reply *a)
{
    if (a->owner) {
        rbproto_free(a->owner);
    }
    *a = (auth_reply){ 0 };
}

static int handshake_with(rb_session *s, const pki_prover *prover, char **ret_error)
{
    uint64_t deadline = now_ms() + HANDSHAKE_TIMEOUT_MS;
    auth_reply a = { 0 };
    int r = auth_call(s, prover, true, NULL, 0, deadline, &a);
    if (r < 0) {
        return errmsg_fail(ret_error, r, "identity handshake: %s", errstr(r));
    }
    if (a.status < 0 || !a.challenge) {
        r = errmsg_fail(ret_error, -EACCES, "the controller refused our certificate: %s",
                        a.error && *a.error ? a.error : "no challenge");
        auth_reply_clear(&a);
        return r;
    }
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    r = pki_prover_sign(prover, a.challenge->nonce.data, a.challenge->nonce.len, s->server_name,
                        &sig, &sig_len);
    auth_reply_clear(&a);
    if (r < 0) {
        return errmsg_fail(ret_error, r, "cannot sign the controller's challenge: %s", errstr(r));
    }
    r = auth_call(s, prover, false, sig, sig_len, deadline, &a);
    free(sig);
    if (r < 0) {
        return errmsg_fail(ret_error, r, "identity handshake: %s", errstr(r));
    }
    if (a.status < 0 || !a.result) {
        r = errmsg_fail(ret_error, -EACCES, "the controller refused our identity proof: %s",
                        a.error && *a.error ? a.error : "no result");
        auth_reply_clear(&a);
        return r;
    }
    pthread_mutex_lock(&s->lock);
    ProtobufCMessage *old = s->identity_owner;
    s->identity_owner = a.owner;
    s->identity = a.result;
    s->auth_epoch++;
    pthread_mutex_unlock(&s->lock);
    rbproto_free(old);
    return 0;
}

/* With the prover current when it starts: a reload during the handshake
 * takes effect at the next one (its connection is closed by the reload). */
static int handshake(rb_session *s, char **ret_error)
{
    prover_ref *ref = prover_hold(s);
    int r = handshake_with(s, ref->prover, ret_error);
    prover_drop(s, ref);
    return r;
}

static void on_pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    rb_session *s = arg;
    pthread_mutex_lock(&s->lock);
    if (ev == NNG_PIPE_EV_ADD_POST) {
        s->connected = true;
        s->pipe = p;
        pthread_cond_broadcast(&s->cond);
    } else if (nng_pipe_id(s->pipe) == nng_pipe_id(p)) {
        s->pipe = (nng_pipe)NNG_PIPE_INITIALIZER;
    }
    pthread_mutex_unlock(&s->lock);
}

static bool wait_connected(rb_session *s, uint32_t timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    while (!s->connected && pthread_cond_timedwait(&s->cond, &s->lock, &ts) == 0) {
    }
    bool ok = s->connected;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

/* Re-runs the handshake unless another thread already did since `seen`. */
static int reauthenticate(rb_session *s, uint64_t seen)
{
    pthread_mutex_lock(&s->handshake_lock);
    pthread_mutex_lock(&s->lock);
    bool stale = s->auth_epoch == seen;
    pthread_mutex_unlock(&s->lock);
    int r = stale ? handshake(s, NULL) : 0;
    pthread_mutex_unlock(&s->handshake_lock);
    return r;
}

/* ---- Open / close ------------------------------------------------------ */

static void session_free_fields(rb_session *s)
{
    if (s->tls_prev) {
        nng_tls_config_free(s->tls_prev);
    }
    if (s->tls_cur) {
        nng_tls_config_free(s->tls_cur);
    }
    prover_drop(s, s->prover);
    free(s->server_name);
    free(s->version);
    free(s->ca);
    free(s->cert);
    free(s->key);
    free(s->crl);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->handshake_lock);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int rb_session_open(const rb_session_config *cfg, rb_session **ret, char **ret_error)
{
    if (!cfg->url) {
        return errmsg_fail(ret_error, -EINVAL, "no controller URL");
    }
    bool tls = strncmp(cfg->url, "tls+tcp://", 10) == 0;
    bool ipc = strncmp(cfg->url, "ipc://", 6) == 0;
    if (!tls && !ipc) {
        return errmsg_fail(ret_error, -EINVAL, "controller URL %s: expected ipc:// or tls+tcp://",
                           cfg->url);
    }
    rb_session *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->handshake_lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->kind = cfg->kind;
    s->tls = tls;
    s->version = strdup(cfg->software_version ? cfg->software_version : RACKBOOT_VERSION);
    int r = s->version ? 0 : -ENOMEM;
    nng_tls_config *tcfg = NULL;
    bool sock_open = false;
    int rv;
    if (r < 0) {
        goto fail;
    }

    if (tls) {
        s->server_name = cfg->server_name ? strdup(cfg->server_name) : url_host(cfg->url);
        if (!s->server_name) {
            r = errmsg_fail(ret_error, -EINVAL, "controller URL %s has no host", cfg->url);
            goto fail;
        }
        r = prover_ref_new(cfg->cert, cfg->key, &s->prover, ret_error);
        if (r < 0) {
            goto fail;
        }
        s->ca = cfg->ca ? strdup(cfg->ca) : NULL;
        s->cert = cfg->cert ? strdup(cfg->cert) : NULL;
        s->key = cfg->key ? strdup(cfg->key) : NULL;
        s->crl = cfg->crl ? strdup(cfg->crl) : NULL;
        if ((cfg->ca && !s->ca) || (cfg->cert && !s->cert) || (cfg->key && !s->key) ||
            (cfg->crl && !s->crl)) {
            r = -ENOMEM;
            goto fail;
        }
        rb_tls_files files = { .ca = cfg->ca,
                               .cert = cfg->cert,
                               .key = cfg->key,
                               .crl = cfg->crl,
                               .server_name = s->server_name };
        r = rb_tls_config_load(&files, false, &tcfg, s->tls_digest, ret_error);
        if (r < 0) {
            goto fail;
        }
    }

    rv = nng_req0_open(&s->sock);
    if (rv != 0) {
        r = errmsg_fail(ret_error, rb_nng_errno(rv), "nng: %s", nng_strerror(rv));
        goto fail;
    }
    sock_open = true;
    /* Requests are retried by their callers with their own deadlines; nng
     * moves a pending request to a new connection by itself. */
    nng_socket_set_ms(s->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, RBPROTO_MAX_MESSAGE);
    nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT, 100);
    nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT, 5000);

    rv = nng_dialer_create(&s->dialer, s->sock, cfg->url);
    if (rv == 0 && tcfg) {
        rv = nng_dialer_set_ptr(s->dialer, NNG_OPT_TLS_CONFIG, tcfg);
    }
    if (rv == 0 && tls) {
        /* A controller host that vanished without a FIN/RST leaves a
         * connection that only keepalive probes end (at the kernel's
         * tcp_keepalive_* pace); best effort, the caller's progress check
         * (rack-agent/uplink/uplink.c) is the bound that matters. */
        (void)nng_dialer_set_bool(s->dialer, NNG_OPT_TCP_KEEPALIVE, true);
    }
    if (rv != 0) {
        r = errmsg_fail(ret_error, rb_nng_errno(rv), "controller URL %s: %s", cfg->url,
                        nng_strerror(rv));
        goto fail;
    }
    s->tls_cur = tcfg; /* the dialer holds its own reference too */
    tcfg = NULL;

    /* The connection up now, for rb_session_reload_tls() to close. */
    nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, on_pipe_event, s);
    nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, on_pipe_event, s);
    if (cfg->reconnect) {
        /* Dial in the background and wait, bounded, for the connection: a
         * controller that drops packets costs connect_timeout_ms, not the
         * kernel's two-minute SYN retries (an agent's SIGTERM waits for
         * this). nng keeps redialling after a lost connection. */
        rv = nng_dialer_start(s->dialer, NNG_FLAG_NONBLOCK);
        if (rv == 0 && !wait_connected(s, cfg->connect_timeout_ms ? cfg->connect_timeout_ms
                                                                  : DEFAULT_CONNECT_TIMEOUT_MS)) {
            r = errmsg_fail(ret_error, -ETIMEDOUT,
                            "no connection to the controller at %s within %u ms", cfg->url,
                            cfg->connect_timeout_ms ? cfg->connect_timeout_ms
                                                    : DEFAULT_CONNECT_TIMEOUT_MS);
            goto fail;
        }
    } else {
        /* A synchronous dial reports a refusal or a TLS failure at once,
         * with its reason (the CLI's case). */
        rv = nng_dialer_start(s->dialer, 0);
    }
    if (rv != 0) {
        r = rb_nng_errno(rv);
        if (r == -EPROTO) {
            r = errmsg_fail(ret_error, r,
                            "TLS with %s failed (wrong CA, server name %s, or a refused "
                            "certificate): %s",
                            cfg->url, s->server_name, nng_strerror(rv));
        } else {
            r = errmsg_fail(ret_error, r, "cannot reach the controller at %s: %s", cfg->url,
                            nng_strerror(rv));
        }
        goto fail;
    }
    if (tls) {
        r = handshake(s, ret_error);
        if (r < 0) {
            goto fail;
        }
    }
    *ret = s;
    return 0;

fail:
    if (tcfg) {
        nng_tls_config_free(tcfg);
    }
    if (sock_open) {
        nng_close(s->sock);
    }
    session_free_fields(s);
    return r;
}

rb_session *rb_session_close(rb_session *s)
{
    if (!s) {
        return NULL;
    }
    nng_close(s->sock);
    rbproto_free(s->identity_owner);
    session_free_fields(s);
    return NULL;
}

int rb_session_reload_tls(rb_session *s, char **ret_error)
{
    if (!s->tls) {
        return 0;
    }
    rb_tls_files files = {
        .ca = s->ca, .cert = s->cert, .key = s->key, .crl = s->crl, .server_name = s->server_name
    };
    nng_tls_config *tcfg = NULL;
    uint8_t digest[RB_TLS_DIGEST_SIZE];
    int r = rb_tls_config_load(&files, false, &tcfg, digest, ret_error);
    if (r < 0) {
        return r;
    }
    pthread_mutex_lock(&s->lock);
    bool same = memcmp(digest, s->tls_digest, sizeof(digest)) == 0;
    pthread_mutex_unlock(&s->lock);
    if (same) {
        nng_tls_config_free(tcfg);
        return 0;
    }
    /* The identity proof must come from the certificate TLS presents: a
     * rotated certificate proven with the old (revoked) one is refused
     * forever. Both load or neither is taken. */
    prover_ref *prover = NULL;
    r = prover_ref_new(s->cert, s->key, &prover, ret_error);
    if (r < 0) {
        nng_tls_config_free(tcfg);
        return r;
    }
    /* A started dialer takes a new configuration for its next dial (nng
     * 1.5.2 swaps the pointer under the TLS dialer's lock); the one in use
     * cannot be changed (it is shared with the live connection). */
    int rv = nng_dialer_set_ptr(s->dialer, NNG_OPT_TLS_CONFIG, tcfg);
    if (rv != 0) {
        nng_tls_config_free(tcfg);
        prover_drop(s, prover);
        return errmsg_fail(ret_error, rb_nng_errno(rv),
                           "the dialer refused the new TLS configuration: %s", nng_strerror(rv));
    }
    pthread_mutex_lock(&s->lock);
    nng_tls_config *older = s->tls_prev;
    s->tls_prev = s->tls_cur;
    s->tls_cur = tcfg;
    memcpy(s->tls_digest, digest, sizeof(digest));
    /* A handshake in progress keeps its reference to the old prover; the
     * next one (on the new connection) proves the new certificate. */
    prover_ref *old_prover = s->prover;
    s->prover = prover;
    nng_pipe p = s->pipe;
    pthread_mutex_unlock(&s->lock);
    prover_drop(s, old_prover);
    if (older) {
        nng_tls_config_free(older);
    }
    /* TLS verified the controller when this connection was made, under the
     * old CRL; only a new handshake checks it under the new one. */
    if (nng_pipe_id(p) > 0) {
        nng_pipe_close(p);
    }
    return 1;
}

const Rackboot__V1__AuthResult *rb_session_identity(const rb_session *s)
{
    static const Rackboot__V1__AuthResult none = RACKBOOT__V1__AUTH_RESULT__INIT;
    return s->identity ? s->identity : &none;
}

/* ---- Calls ------------------------------------------------------------- */

/* The reply, unpacked by its envelope's validating unpacker; *ret_unauth
 * says whether the controller answered "prove the connection first". */
static int unpack_reply(const rb_session *s, nng_msg *msg, ProtobufCMessage **ret, bool *ret_unauth)
{
    const uint8_t *body = nng_msg_body(msg);
    size_t len = nng_msg_len(msg);
    if (s->kind == RB_SESSION_AGENT) {
        Rackboot__V1__AgentReply *rep = NULL;
        int r = rbproto_unpack_agent_reply(body, len, RBPROTO_MAX_MESSAGE, &rep);
        if (r < 0) {
            return r;
        }
        *ret_unauth = rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_ERROR &&
                      rep->error->code == RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED;
        *ret = &rep->base;
        return 0;
    }
    Rackboot__V1__ApiReply *rep = NULL;
    int r = rbproto_unpack_api_reply(body, len, RBPROTO_MAX_MESSAGE, &rep);
    if (r < 0) {
        return r;
    }
    *ret_unauth = rep->status == RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED;
    *ret = &rep->base;
    return 0;
}

/* One call; an "unauthenticated" answer (nng reconnected underneath) runs
 * the handshake again and repeats the call once. */
static int call(rb_session *s, const ProtobufCMessage *req, uint32_t timeout_ms,
                ProtobufCMessage **ret)
{
    uint64_t deadline = now_ms() + timeout_ms;
    for (int attempt = 0;; attempt++) {
        pthread_mutex_lock(&s->lock);
        uint64_t epoch = s->auth_epoch;
        pthread_mutex_unlock(&s->lock);

        nng_msg *msg = NULL;
        int r = pack_and_call(s, req, deadline, &msg);
        if (r < 0) {
            return r;
        }
        ProtobufCMessage *rep = NULL;
        bool unauth = false;
        r = unpack_reply(s, msg, &rep, &unauth);
        nng_msg_free(msg);
        if (r < 0) {
            return r;
        }
        if (s->tls && unauth && attempt == 0) {
            rbproto_free(rep);
            r = reauthenticate(s, epoch);
            if (r < 0) {
                return r;
            }
            continue;
        }
        *ret = rep;
        return 0;
    }
}

int rb_session_call_agent(rb_session *s, const Rackboot__V1__AgentRequest *req, uint32_t timeout_ms,
                          Rackboot__V1__AgentReply **ret)
{
    RB_ASSERT(s->kind == RB_SESSION_AGENT);
    ProtobufCMessage *rep = NULL;
    int r = call(s, &req->base, timeout_ms, &rep);
    if (r >= 0) {
        *ret = (Rackboot__V1__AgentReply *)rep;
    }
    return r;
}

int rb_session_call_api(rb_session *s, const Rackboot__V1__ApiRequest *req, uint32_t timeout_ms,
                        Rackboot__V1__ApiReply **ret)
{
    RB_ASSERT(s->kind == RB_SESSION_API);
    ProtobufCMessage *rep = NULL;
    int r = call(s, &req->base, timeout_ms, &rep);
    if (r >= 0) {
        *ret = (Rackboot__V1__ApiReply *)rep;
    }
    return r;
}

void rb_session_shutdown(rb_session *s)
{
    nng_close(s->sock);
}

bool rb_session_connected(rb_session *s)
{
    pthread_mutex_lock(&s->lock);
    bool up = nng_pipe_id(s->pipe) > 0;
    pthread_mutex_unlock(&s->lock);
    return up;
}

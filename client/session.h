/* A client session with the controller: the agent uplink, the rackboot CLI,
 * the fan-out benchmark and the integration tests' fake agents all talk to
 * rackboot-controller through this.
 *
 * Transport: one nng REQ socket with one dialer. Each call opens its own
 * REQ context, so calls from several threads run concurrently on the same
 * connection (the uplink keeps a long-poll sync and an event batch in
 * flight together); nng matches every reply to its request.
 *
 * Identity: over tls+tcp:// the controller accepts nothing on a connection
 * before the identity handshake (pki/identity.h) has run on it. The session
 * runs the handshake when it connects and again whenever the controller
 * says a connection is unauthenticated (after nng reconnected underneath),
 * then repeats the call once. Over ipc:// there is no handshake: the socket
 * file's permissions are the access control.
 *
 * Calls block; every one has a deadline. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rackboot.pb-c.h"

typedef enum rb_session_kind {
    RB_SESSION_AGENT, /* AgentRequest / AgentReply */
    RB_SESSION_API,   /* ApiRequest / ApiReply */
} rb_session_kind;

typedef struct rb_session_config {
    const char *url; /* ipc://... or tls+tcp://host:port */
    rb_session_kind kind;
    /* tls+tcp:// only (ignored for ipc://): */
    const char *ca;   /* CA certificate (PEM file) */
    const char *cert; /* our certificate and key (PEM files) */
    const char *key;
    const char *crl;              /* optional CRL (PEM file) */
    const char *server_name;      /* controller certificate's DNS name; NULL: the URL's host */
    const char *software_version; /* sent in the hello; NULL: RACKBOOT_VERSION */
    /* false (the CLI): dial synchronously, so a refusal or a TLS failure is
     * reported at once with its reason (a controller that drops packets
     * takes the kernel's TCP connect timeout). true (the agent's uplink):
     * dial in the background and give up after connect_timeout_ms (0: 5000),
     * reporting -ETIMEDOUT without a reason. Either way nng redials after a
     * lost connection and calls re-run the handshake. */
    uint32_t connect_timeout_ms;
    bool reconnect;
} rb_session_config;

typedef struct rb_session rb_session;

/* Dials and, for tls+tcp://, runs the handshake. Errors:
 *   -ECONNREFUSED / -ETIMEDOUT / -EHOSTUNREACH  controller unreachable
 *   -EACCES      the controller refused our identity (message in *ret_error)
 *   -EPROTO      TLS failed (wrong CA, bad certificate, wrong server name)
 *   -EINVAL      bad URL or configuration
 * *ret_error (may be NULL) gets a malloc'd one-line reason on failure. */
int rb_session_open(const rb_session_config *cfg, rb_session **ret, char **ret_error);
rb_session *rb_session_close(rb_session *s);

/* What the controller's AuthResult said (tls+tcp://); zeroed for ipc://. */
const Rackboot__V1__AuthResult *rb_session_identity(const rb_session *s);

/* One request/reply. `req` must be an AgentRequest or ApiRequest matching
 * the session's kind; the reply is unpacked with rbproto_unpack_*() and must
 * be freed with rbproto_free(). Errors: -ETIMEDOUT (no reply by the deadline,
 * which is timeout_ms after the call started), -ECONNRESET (connection lost
 * and not re-established in time), -EACCES (re-handshake refused), -EBADMSG
 * (reply failed validation), -ENOMEM. */
int rb_session_call_agent(rb_session *s, const Rackboot__V1__AgentRequest *req, uint32_t timeout_ms,
                          Rackboot__V1__AgentReply **ret);
int rb_session_call_api(rb_session *s, const Rackboot__V1__ApiRequest *req, uint32_t timeout_ms,
                        Rackboot__V1__ApiReply **ret);

/* Re-reads the TLS files given to rb_session_open (a renewed or changed
 * CRL, a new CA, a rotated certificate). When their contents changed, the
 * dialer takes a configuration built from them and the connection is
 * closed, so nng redials at once and TLS verifies the controller again,
 * under the new CRL: a controller whose certificate it revokes is dropped
 * (the session can only ask TLS: nng 1.5.2 does not show us the
 * controller's certificate). A call waiting for its reply fails with
 * -ECONNRESET (REQ does not resend: NNG_OPT_REQ_RESENDTIME is infinite, the
 * callers retry); the next call runs the handshake on the new connection,
 * as after any reconnect. The identity proof's
 * certificate and key are reloaded with them, so that a rotated
 * certificate is both presented to TLS and proven in the handshake (a
 * handshake already on the network finishes with the old ones; its
 * connection is the one being closed). Returns 1 when it reconnects, 0
 * when nothing changed (or ipc://), a negative errno when the files do not
 * load, for TLS or for the proof (*ret_error says why; the session keeps
 * its configuration and its prover, both). One thread at a time, any
 * thread, not concurrently with rb_session_close(). */
int rb_session_reload_tls(rb_session *s, char **ret_error);

/* Closes the connection under any calls in flight (they fail with
 * -ECONNRESET) without freeing the session: the way to stop threads that
 * block in calls before rb_session_close(). */
void rb_session_shutdown(rb_session *s);
/* True while a connection is up. A reconnecting session (the agent's) is
 * redialled by nng after a loss; the caller decides how long to wait. */
bool rb_session_connected(rb_session *s);

/* rpc: an nng REP socket served on a libuv loop.
 *
 * The controller's state (the store, the hub's parked long polls, the
 * per-connection identities) belongs to one thread, the loop's. nng
 * completes its I/O on threads of its own, so every completion here only
 * queues the call and wakes the loop; handlers run on the loop and never
 * lock anything.
 *
 * Why REP with contexts: REQ/REP answers exactly the pipe that asked, so an
 * agent's sync and its event batch need no request ids, and nng fails a
 * reply over a dead connection cleanly. Each received request holds its own
 * REP context until the handler replies, so a handler may keep a call
 * (a long poll) for as long as it likes: the server opens another context to
 * keep receiving, and a slow or silent peer never holds up anyone else. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <uv.h>

typedef struct rpc_server rpc_server;
typedef struct rpc_call rpc_call;

typedef struct rpc_handlers {
    /* A request arrived. The handler owns `call` until it calls
     * rpc_call_reply() or rpc_call_drop(), now or later. */
    void (*request)(void *userdata, rpc_call *call);
    /* A connection closed (its identity must be forgotten). May be NULL. */
    void (*pipe_closed)(void *userdata, uint32_t pipe_id);
} rpc_handlers;

/* A server on `loop`; max_message bounds what nng accepts from a peer. */
int rpc_server_new(uv_loop_t *loop, const rpc_handlers *h, void *userdata, size_t max_message,
                   rpc_server **ret);
/* Closes the socket and drops every call still held (handlers must forget
 * theirs first). The memory is released by the loop's next iteration (a
 * libuv handle closes asynchronously), so run the loop once more. */
rpc_server *rpc_server_free(rpc_server *s);

/* Starts a listener. `tls` (may be NULL) is referenced, not consumed. For
 * ipc:// URLs the socket file gets `ipc_mode` (e.g. 0660) and a stale file
 * from a previous run is replaced. *ret_error gets a malloc'd reason. */
int rpc_server_listen(rpc_server *s, const char *url, nng_tls_config *tls, int ipc_mode,
                      char **ret_error);

/* The TCP port a tls+tcp:// listener bound (for URLs with port 0), or 0. */
int rpc_server_bound_port(const rpc_server *s);

/* Every listener of every server in this process that was started with
 * `old` takes `tls` for the connections it accepts from now on (a renewed
 * CRL, a revocation, a rotated certificate); connections already up keep
 * theirs. `tls` is referenced, not consumed. The caller must keep `old`
 * referenced a while longer (until its next replacement): nng reads a
 * listener's configuration without a lock when it starts an accept.
 *
 * Process-wide because the servers belong to different modules (the hub,
 * the API) that share one configuration, and all of them must switch
 * together. Returns how many listeners switched, or a negative errno (the
 * listeners that failed keep `old`). Loop thread only. */
int rpc_tls_config_replace(nng_tls_config *old, nng_tls_config *tls);

/* Closes one connection of this server now (a revoked peer). Its
 * pipe_closed handler runs later, as for any lost connection. */
void rpc_server_close_pipe(rpc_server *s, uint32_t pipe_id);

const uint8_t *rpc_call_body(const rpc_call *c, size_t *ret_len);
uint32_t rpc_call_pipe(const rpc_call *c);
/* Sends the reply and ends the call. The buffer is copied. */
void rpc_call_reply(rpc_call *c, const void *buf, size_t len);
/* Ends the call without a reply (the peer's request times out). */
void rpc_call_drop(rpc_call *c);

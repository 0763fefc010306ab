/* rb-fake-agent: a rack agent reduced to its uplink calls, for the
 * controller's integration tests. It uses the real session (client/), the
 * real handshake and the real wire schema; only the serving is missing.
 *
 *   rb-fake-agent TLS-OPTIONS hello
 *   rb-fake-agent TLS-OPTIONS sync [--held G] [--ack G] [--wait MS]
 *   rb-fake-agent TLS-OPTIONS events --from SEQ HOST:INSTALL:PHASE[:PERCENT] ...
 *   (INSTALL "-" for none; after a power phase, the power state the BMC
 *   read instead of PERCENT: web1:-:power_status:on is the agent's poll)
 *   rb-fake-agent TLS-OPTIONS watch [--wait MS]
 *
 * watch reports an AgentStatus with its syncs when given
 * --cache-bytes N, --cache-limit N, --base-url URL (then a RenderContext
 * with it), --dns ADDR and --search NAME (one each), as the agent's
 * uplink does (rack-agent/uplink/uplink.h uplink_set_status).
 *
 * Hostile modes, for tests/hostile/ (an authenticated agent misbehaving):
 *
 *   rb-fake-agent TLS-OPTIONS garbage [--size N] [--count K] [--wait MS]
 *   rb-fake-agent TLS-OPTIONS oversized [--size N] [--wait MS]
 *   rb-fake-agent TLS-OPTIONS malformed-event [--size N] [--wait MS]
 *
 * garbage sends K messages of N random bytes; oversized one well-formed
 * envelope of N bytes (meant to exceed the controller's RECVMAXSZ);
 * malformed-event envelopes that parse but break the schema's rules (bad
 * enum, long and invalid names, seq 0, a 4 KiB MAC, too many events, a sync
 * over its limits, an empty body) and repeated fields grown to N bytes.
 * Each prints what the controller did: an error code ("invalid"), "closed"
 * (it dropped the connection) or "none" (no answer within --wait).
 *
 * watch syncs in a loop, as the uplink does, over a session that redials
 * (until killed): one line per answer, "t=MS ok generation=G" or
 * "t=MS error=WHY", MS the wall clock in milliseconds, so a test can tell
 * when the controller stopped answering.
 *
 * Output is one "key=value ..." line per fact, for shell tests to grep.
 * Exit: 0 ok, 1 refused / failed, 2 usage, 4 unreachable. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "identity.h"
#include "rbproto.h"
#include "session.h"
#include "timeutil.h"
#include "tls.h"
#include "util.h"

static int usage(void)
{
    fprintf(stderr, "usage: rb-fake-agent --url URL --ca F --cert F --key F [--crl F]\n"
                    "                     [--server-name N] hello | sync [--held G] [--ack G]\n"
                    "                     [--wait MS] | events --from SEQ HOST:ID:PHASE[:PCT]...\n"
                    "                     | watch [--wait MS] [--cache-bytes N] [--cache-limit N]\n"
                    "                       [--base-url URL] [--dns ADDR] [--search NAME]\n"
                    "                     | garbage [--size N] [--count K] [--wait MS]\n"
                    "                     | oversized [--size N] [--wait MS]\n"
                    "                     | malformed-event [--size N] [--wait MS]\n");
    return 2;
}

static int exit_code(int r)
{
    return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EHOSTUNREACH || r == -ECONNRESET ? 4 : 1;
}

static int do_sync(rb_session *s, uint64_t held, uint64_t ack, uint32_t wait)
{
    Rackboot__V1__SyncRequest sync = RACKBOOT__V1__SYNC_REQUEST__INIT;
    sync.held_generation = held;
    sync.acked_generation = ack;
    sync.max_wait_ms = wait;
    Rackboot__V1__AgentRequest req = RACKBOOT__V1__AGENT_REQUEST__INIT;
    req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_SYNC;
    req.sync = &sync;
    Rackboot__V1__AgentReply *rep = NULL;
    int r = rb_session_call_agent(s, &req, wait + 10000, &rep);
    if (r < 0) {
        fprintf(stderr, "sync: %s\n", errstr(r));
        return exit_code(r);
    }
    int status = 0;
    if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_SYNC) {
        const Rackboot__V1__SyncResponse *sr = rep->sync;
        printf("rack=%s generation=%" PRIu64 " unchanged=%d intents=%zu profiles=%zu\n", sr->rack,
               sr->generation, sr->unchanged, sr->n_intents, sr->n_profiles);
        for (size_t i = 0; i < sr->n_intents; i++) {
            const Rackboot__V1__Intent *in = sr->intents[i];
            printf("intent host=%s install=%s profile=%s token=%s attempt=%u\n", in->host,
                   in->install_id, in->profile, in->token, in->attempt);
        }
        for (size_t i = 0; i < sr->n_profiles; i++) {
            const Rackboot__V1__Profile *p = sr->profiles[i];
            printf("profile name=%s images=%zu root_device=%s\n", p->name, p->n_images,
                   *p->root_device ? p->root_device : "-");
        }
    } else if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_ERROR) {
        printf("error code=%s message=%s\n", rbproto_status_to_string(rep->error->code),
               rep->error->message);
        status = 1;
    }
    rbproto_free(&rep->base);
    return status;
}

static int do_events(rb_session *s, uint64_t from, char **specs, size_t n)
{
    Rackboot__V1__Event *evs = calloc(n, sizeof(*evs));
    Rackboot__V1__Event **ptrs = calloc(n, sizeof(*ptrs));
    char **copies = calloc(n, sizeof(*copies));
    Rackboot__V1__EventBatch batch = RACKBOOT__V1__EVENT_BATCH__INIT;
    Rackboot__V1__AgentRequest req = RACKBOOT__V1__AGENT_REQUEST__INIT;
    Rackboot__V1__AgentReply *rep = NULL;
    int r, status = 2;
    if (!evs || !ptrs || !copies) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rackboot__v1__event__init(&evs[i]);
        copies[i] = strdup(specs[i]);
        char *save = NULL;
        char *host = strtok_r(copies[i], ":", &save);
        char *id = strtok_r(NULL, ":", &save);
        char *phase = strtok_r(NULL, ":", &save);
        char *pct = strtok_r(NULL, ":", &save);
        if (!host || !id || !phase || rbproto_phase_from_string(phase, &evs[i].phase) < 0) {
            fprintf(stderr, "bad event %s\n", specs[i]);
            goto out;
        }
        evs[i].seq = from + i;
        evs[i].time_unix_ms = now_realtime_ms();
        evs[i].host = host;
        evs[i].install_id = streq(id, "-") ? RB_UNCONST("") : id;
        Rackboot__V1__PowerState power;
        if (pct && rbproto_phase_is_power(evs[i].phase) &&
            rbproto_power_state_from_string(pct, &power) == 0) {
            evs[i].power_state = power;
        } else {
            evs[i].percent = pct ? (uint32_t)atoi(pct) : 0;
        }
        evs[i].message = RB_UNCONST("");
        ptrs[i] = &evs[i];
    }
    batch.n_events = n;
    batch.events = ptrs;
    req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_EVENTS;
    req.events = &batch;
    r = rb_session_call_agent(s, &req, 10000, &rep);
    if (r < 0) {
        fprintf(stderr, "events: %s\n", errstr(r));
        status = exit_code(r);
        goto out;
    }
    status = 0;
    if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_EVENT_ACK) {
        printf("stored_through=%" PRIu64 "\n", rep->event_ack->stored_through);
    } else if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_ERROR) {
        printf("error code=%s message=%s\n", rbproto_status_to_string(rep->error->code),
               rep->error->message);
        status = 1;
    }
    rbproto_free(&rep->base);
out:
    for (size_t i = 0; copies && i < n; i++) {
        free(copies[i]);
    }
    free(copies);
    free(ptrs);
    free(evs);
    return status;
}

/* The status watch reports (--cache-bytes ...); none when no
 * option asked for one. */
static bool status_given;
static Rackboot__V1__AgentStatus status_msg = RACKBOOT__V1__AGENT_STATUS__INIT;
static Rackboot__V1__RenderContext render_msg = RACKBOOT__V1__RENDER_CONTEXT__INIT;
static uint8_t status_dns[16];
static ProtobufCBinaryData status_dns_bin;
static char *status_search;

static int status_option(int c, const char *arg)
{
    status_given = true;
    switch (c) {
    case 'C':
        status_msg.cache_bytes = strtoull(arg, NULL, 10);
        return 0;
    case 'L':
        status_msg.cache_limit_bytes = strtoull(arg, NULL, 10);
        return 0;
    case 'B':
        render_msg.base_url = RB_UNCONST(arg);
        status_msg.render = &render_msg;
        return 0;
    case 'D':
        if (inet_pton(AF_INET6, arg, status_dns) != 1) {
            return -EINVAL;
        }
        status_dns_bin = (ProtobufCBinaryData){ .len = 16, .data = status_dns };
        render_msg.n_dns_servers = 1;
        render_msg.dns_servers = &status_dns_bin;
        return 0;
    case 'S':
        status_search = RB_UNCONST(arg);
        render_msg.n_search = 1;
        render_msg.search = &status_search;
        return 0;
    default:
        return -EINVAL;
    }
}

/* Never returns: the test kills it. */
static _Noreturn void do_watch(rb_session *s, uint32_t wait)
{
    uint64_t held = 0;
    for (;;) {
        Rackboot__V1__SyncRequest sync = RACKBOOT__V1__SYNC_REQUEST__INIT;
        sync.held_generation = held;
        sync.acked_generation = held;
        sync.max_wait_ms = wait;
        sync.status = status_given ? &status_msg : NULL;
        Rackboot__V1__AgentRequest req = RACKBOOT__V1__AGENT_REQUEST__INIT;
        req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_SYNC;
        req.sync = &sync;
        Rackboot__V1__AgentReply *rep = NULL;
        int r = rb_session_call_agent(s, &req, wait + 2000, &rep);
        if (r < 0) {
            printf("t=%" PRIu64 " error=%s\n", now_realtime_ms(), errstr(r));
        } else if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_SYNC) {
            held = rep->sync->generation;
            printf("t=%" PRIu64 " ok generation=%" PRIu64 "\n", now_realtime_ms(), held);
        } else {
            printf("t=%" PRIu64 " error=%s\n", now_realtime_ms(),
                   rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_ERROR ? rep->error->message
                                                                           : "unexpected reply");
        }
        fflush(stdout);
        if (r >= 0) {
            rbproto_free(&rep->base);
        }
        if (r < 0) {
            struct timespec ts = { .tv_sec = 0, .tv_nsec = 100 * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
}

/* ---- Hostile modes (tests/hostile/uplink_abuse.sh) ----------------------
 *
 * An authenticated agent that sends what no real agent would. The session
 * (client/) only sends messages that pass rbproto's validation and fit
 * RBPROTO_MAX_MESSAGE, so these modes dial a REQ socket of their own, run
 * the identity handshake on it by hand (hello, challenge, signed proof),
 * and then send raw bytes on the same, authenticated connection. The
 * dialer does not redial for a minute, so a connection the controller
 * closes stays closed and is reported as such. */

typedef struct raw_conn {
    nng_socket sock;
    nng_dialer dialer;
    atomic_int closed; /* the controller closed our connection */
} raw_conn;

static void raw_on_pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    (void)ev;
    atomic_store(&((raw_conn *)arg)->closed, 1);
}

/* Sends `len` bytes and waits up to timeout_ms for the reply (NULL: none). */
static int raw_call(raw_conn *rc, const uint8_t *buf, size_t len, uint32_t timeout_ms,
                    nng_msg **ret)
{
    nng_ctx ctx;
    nng_aio *aio = NULL;
    nng_msg *msg = NULL;
    *ret = NULL;
    int rv = nng_ctx_open(&ctx, rc->sock);
    if (rv != 0) {
        return rb_nng_errno(rv);
    }
    rv = nng_aio_alloc(&aio, NULL, NULL);
    if (rv == 0) {
        rv = nng_msg_alloc(&msg, len);
    }
    if (rv != 0) {
        goto out;
    }
    memcpy(nng_msg_body(msg), buf, len);
    nng_aio_set_timeout(aio, (nng_duration)timeout_ms);
    nng_aio_set_msg(aio, msg);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    rv = nng_aio_result(aio);
    if (rv != 0) {
        nng_msg_free(msg);
        goto out;
    }
    nng_aio_set_timeout(aio, (nng_duration)timeout_ms);
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

/* Packs without validation: the point is to send what validation refuses. */
static uint8_t *pack_raw(const ProtobufCMessage *m, size_t *ret_len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf) {
        *ret_len = protobuf_c_message_pack(m, buf);
    }
    return buf;
}

/* Sends `req` (packed without validation) and unpacks the reply. */
static int raw_call_req(raw_conn *rc, const Rackboot__V1__AgentRequest *req, uint32_t timeout_ms,
                        Rackboot__V1__AgentReply **ret)
{
    size_t len = 0;
    uint8_t *buf = pack_raw(&req->base, &len);
    if (!buf) {
        return -ENOMEM;
    }
    nng_msg *msg = NULL;
    int r = raw_call(rc, buf, len, timeout_ms, &msg);
    free(buf);
    if (r < 0) {
        return r;
    }
    r = rbproto_unpack_agent_reply(nng_msg_body(msg), nng_msg_len(msg), RBPROTO_MAX_MESSAGE, ret);
    nng_msg_free(msg);
    return r;
}

static int raw_open(const rb_session_config *cfg, raw_conn *rc)
{
    const char *server_name = cfg->server_name ? cfg->server_name : "localhost";
    rb_tls_files files = { .ca = cfg->ca,
                           .cert = cfg->cert,
                           .key = cfg->key,
                           .crl = cfg->crl,
                           .server_name = server_name };
    nng_tls_config *tcfg = NULL;
    char *error = NULL;
    pki_prover *prover = NULL;
    pki_reason reason = { 0 };
    Rackboot__V1__AgentReply *rep = NULL;
    uint8_t *sig = NULL;
    size_t sig_len = 0, pem_len = 0;
    Rackboot__V1__AuthHello hello = RACKBOOT__V1__AUTH_HELLO__INIT;
    Rackboot__V1__AuthProof proof = RACKBOOT__V1__AUTH_PROOF__INIT;
    Rackboot__V1__AgentRequest req = RACKBOOT__V1__AGENT_REQUEST__INIT;
    char rack[PKI_NAME_MAX + 1] = "";
    unsigned instance;
    int rv;
    int r = rb_tls_config_new(&files, false, &tcfg, &error);
    if (r < 0) {
        printf("refused reason=%s\n", error ? error : errstr(r));
        free(error);
        return r;
    }
    r = pki_prover_load(cfg->cert, cfg->key, &prover, &reason);
    if (r < 0) {
        printf("refused reason=%s\n", reason.text);
        goto out;
    }
    rv = nng_req0_open(&rc->sock);
    if (rv == 0) {
        nng_socket_set_ms(rc->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
        nng_socket_set_size(rc->sock, NNG_OPT_RECVMAXSZ, RBPROTO_MAX_MESSAGE);
        nng_socket_set_ms(rc->sock, NNG_OPT_RECONNMINT, 60000);
        nng_socket_set_ms(rc->sock, NNG_OPT_RECONNMAXT, 60000);
        nng_pipe_notify(rc->sock, NNG_PIPE_EV_REM_POST, raw_on_pipe_removed, rc);
        rv = nng_dialer_create(&rc->dialer, rc->sock, cfg->url);
    }
    if (rv == 0) {
        rv = nng_dialer_set_ptr(rc->dialer, NNG_OPT_TLS_CONFIG, tcfg);
    }
    if (rv == 0) {
        rv = nng_dialer_start(rc->dialer, 0);
    }
    if (rv != 0) {
        r = rb_nng_errno(rv);
        printf("refused reason=%s\n", nng_strerror(rv));
        goto out;
    }

    hello.role = RACKBOOT__V1__ROLE__ROLE_AGENT;
    hello.certificate_pem = RB_UNCONST(pki_prover_cert_pem(prover, &pem_len));
    hello.software_version = RB_UNCONST("rb-fake-agent-hostile");
    if (pki_agent_name_split(pki_prover_identity(prover)->name, rack, &instance) < 0) {
        rack[0] = '\0';
    }
    hello.rack_claim = rack; /* the rack of "RACK/N" too: the wire's names hold no '/' */
    req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_AUTH_HELLO;
    req.auth_hello = &hello;
    r = raw_call_req(rc, &req, 10000, &rep);
    if (r < 0 || rep->body_case != RACKBOOT__V1__AGENT_REPLY__BODY_AUTH_CHALLENGE) {
        printf("refused reason=hello %s\n", r < 0 ? errstr(r) : "no challenge");
        r = r < 0 ? r : -EACCES;
        goto out;
    }
    r = pki_prover_sign(prover, rep->auth_challenge->nonce.data, rep->auth_challenge->nonce.len,
                        server_name, &sig, &sig_len);
    rep = rbproto_agent_reply_free(rep);
    if (r < 0) {
        printf("refused reason=sign %s\n", errstr(r));
        goto out;
    }
    proof.signature.data = sig;
    proof.signature.len = sig_len;
    req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_AUTH_PROOF;
    req.auth_proof = &proof;
    r = raw_call_req(rc, &req, 10000, &rep);
    if (r < 0 || rep->body_case != RACKBOOT__V1__AGENT_REPLY__BODY_AUTH_RESULT) {
        printf("refused reason=proof %s\n", r < 0 ? errstr(r) : "no result");
        r = r < 0 ? r : -EACCES;
        goto out;
    }
    printf("authenticated rack=%s\n", rep->auth_result->rack);
    fflush(stdout);
    r = 0;
out:
    rbproto_agent_reply_free(rep);
    free(sig);
    pki_prover_free(prover);
    if (tcfg) {
        nng_tls_config_free(tcfg); /* the dialer holds its own reference */
    }
    return r;
}

/* What the controller did with one hostile message, as one word:
 * invalid / unauthorized / ... (an error reply's code), ok_<kind> (it
 * answered as to a good request), closed (it dropped the connection) or
 * none (no answer in time). */
static const char *raw_outcome(raw_conn *rc, const uint8_t *buf, size_t len, uint32_t timeout_ms,
                               char *out, size_t cap)
{
    nng_msg *msg = NULL;
    int r = raw_call(rc, buf, len, timeout_ms, &msg);
    if (r < 0) {
        snprintf(out, cap, "%s", atomic_load(&rc->closed) ? "closed" : "none");
        return out;
    }
    Rackboot__V1__AgentReply *rep = NULL;
    r = rbproto_unpack_agent_reply(nng_msg_body(msg), nng_msg_len(msg), RBPROTO_MAX_MESSAGE, &rep);
    nng_msg_free(msg);
    if (r < 0) {
        snprintf(out, cap, "bad_reply");
    } else if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_ERROR) {
        snprintf(out, cap, "%s", rbproto_status_to_string(rep->error->code));
    } else if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_EVENT_ACK) {
        snprintf(out, cap, "ok_event_ack");
    } else if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_SYNC) {
        snprintf(out, cap, "ok_sync");
    } else {
        snprintf(out, cap, "ok_other");
    }
    rbproto_agent_reply_free(rep);
    return out;
}

static void fill_random(uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = getrandom(buf + off, len - off, 0);
        if (n > 0) {
            off += (size_t)n;
        }
    }
}

/* garbage: `count` messages of `size` random bytes on one authenticated
 * connection (reconnecting if the controller drops it). */
static int do_garbage(const rb_session_config *cfg, size_t size, unsigned count, uint32_t wait)
{
    raw_conn rc = { 0 };
    if (raw_open(cfg, &rc) < 0) {
        return 1;
    }
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        return 1;
    }
    unsigned invalid = 0, other = 0, none = 0, closed = 0;
    char word[32];
    for (unsigned i = 0; i < count && !atomic_load(&rc.closed); i++) {
        fill_random(buf, size);
        raw_outcome(&rc, buf, size, wait, word, sizeof(word));
        if (streq(word, "invalid")) {
            invalid++;
        } else if (streq(word, "closed")) {
            closed++;
        } else if (streq(word, "none")) {
            none++;
        } else {
            other++;
            printf("garbage reply=%s\n", word);
        }
    }
    printf("garbage size=%zu count=%u invalid=%u other=%u none=%u closed=%u\n", size, count,
           invalid, other, none, closed + (unsigned)atomic_load(&rc.closed));
    free(buf);
    nng_close(rc.sock);
    return 0;
}

/* oversized: one message of `size` bytes (a sync envelope padded with an
 * unknown field), more than the controller's NNG_OPT_RECVMAXSZ. */
static int do_oversized(const rb_session_config *cfg, size_t size, uint32_t wait)
{
    raw_conn rc = { 0 };
    if (raw_open(cfg, &rc) < 0) {
        return 1;
    }
    uint8_t *buf = calloc(1, size < 16 ? 16 : size);
    if (!buf) {
        return 1;
    }
    /* AgentRequest.sync = {} then field 15 (unknown), length-delimited, to
     * the end: a well-formed envelope, only too big. */
    size_t off = 0, pad;
    buf[off++] = 3 << 3 | 2;
    buf[off++] = 0;
    buf[off++] = 15 << 3 | 2;
    pad = size - off - 5;
    for (int k = 0; k < 4; k++) {
        buf[off++] = (uint8_t)(0x80 | (pad >> (7 * k) & 0x7f));
    }
    buf[off++] = (uint8_t)(pad >> 28);
    char word[32];
    raw_outcome(&rc, buf, size, wait, word, sizeof(word));
    /* The close may be reported just after the send fails or times out. */
    for (int k = 0; k < 20 && !atomic_load(&rc.closed); k++) {
        struct timespec ts = { .tv_sec = 0, .tv_nsec = 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
    printf("oversized size=%zu result=%s connection=%s\n", size, word,
           atomic_load(&rc.closed) ? "closed" : "open");
    fflush(stdout);
    free(buf);
    /* Not nng_close(): after the peer dropped the pipe in the middle of a
     * multi-MiB send, nng 1.5.2 (Debian 12) can wait in it forever, every
     * thread idle and no TCP socket left (seen under load in
     * hostile.uplink_abuse, gdb on the stuck process). The process exits
     * next; the socket goes with it. */
    return 0;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* malformed-event: envelopes that parse but carry what validation must
 * refuse, and repeated fields grown to about `size` bytes. One line per
 * case: "malformed case=NAME bytes=N reply=WORD". */
static int do_malformed(const rb_session_config *cfg, size_t size, uint32_t wait)
{
    raw_conn rc = { 0 };
    if (raw_open(cfg, &rc) < 0) {
        return 1;
    }
    char word[32];
    int status = 0;
    Rackboot__V1__Event ev = RACKBOOT__V1__EVENT__INIT;
    Rackboot__V1__Event *evp = &ev;
    Rackboot__V1__EventBatch batch = RACKBOOT__V1__EVENT_BATCH__INIT;
    Rackboot__V1__AgentRequest req = RACKBOOT__V1__AGENT_REQUEST__INIT;
    req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_EVENTS;
    req.events = &batch;
    batch.journal_id = RB_UNCONST("hostile");
    batch.n_events = 1;
    batch.events = &evp;
    char *long_host = malloc(100001);
    Rackboot__V1__Event **many = calloc(RBPROTO_MAX_EVENTS + 1, sizeof(*many));
    uint8_t *big = malloc(size + 64);
    if (!long_host || !many || !big) {
        return 1;
    }
    memset(long_host, 'a', 100000);
    long_host[100000] = '\0';

    enum { N_CASES = 10 };
    static const char *const names[N_CASES] = {
        "bad_phase",   "long_host",      "bad_host",   "seq_zero",      "bad_mac",
        "many_events", "sync_wait_huge", "empty_body", "huge_repeated", "unknown_fields",
    };
    for (int c = 0; c < N_CASES; c++) {
        ev = (Rackboot__V1__Event)RACKBOOT__V1__EVENT__INIT;
        ev.seq = 1000000 + (uint64_t)c;
        ev.time_unix_ms = now_realtime_ms();
        ev.host = RB_UNCONST("web1");
        ev.install_id = RB_UNCONST("nosuchinstall");
        ev.phase = RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND;
        ev.message = RB_UNCONST("");
        batch.n_events = 1;
        batch.events = &evp;
        req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_EVENTS;
        req.events = &batch;
        Rackboot__V1__SyncRequest sync = RACKBOOT__V1__SYNC_REQUEST__INIT;
        uint8_t *buf = NULL;
        size_t len = 0;
        bool own = true;
        switch (c) {
        case 0:
            ev.phase = (Rackboot__V1__Phase)9999;
            break;
        case 1:
            ev.host = long_host;
            break;
        case 2:
            ev.host = RB_UNCONST("../../etc/\xff\xfe");
            break;
        case 3:
            ev.seq = 0;
            break;
        case 4:
            ev.mac.data = (uint8_t *)long_host;
            ev.mac.len = 4096;
            break;
        case 5:
            for (size_t i = 0; i <= RBPROTO_MAX_EVENTS; i++) {
                many[i] = &ev;
            }
            batch.n_events = RBPROTO_MAX_EVENTS + 1;
            batch.events = many;
            break;
        case 6:
            sync.max_wait_ms = UINT32_MAX;
            sync.held_generation = 1;
            sync.acked_generation = UINT64_MAX; /* above held: refused */
            req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_SYNC;
            req.sync = &sync;
            break;
        case 7:
            req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY__NOT_SET;
            break;
        case 8: {
            /* AgentRequest.events = EventBatch { events = {} x many }: two
             * bytes on the wire per empty Event, far more in memory. */
            size_t inner = size - size % 2;
            len = 0;
            big[len++] = 4 << 3 | 2;
            len += put_varint(big + len, inner);
            for (size_t i = 0; i < inner; i += 2) {
                big[len++] = 1 << 3 | 2;
                big[len++] = 0;
            }
            buf = big;
            own = false;
            break;
        }
        case 9: {
            /* A sync envelope followed by unknown varint fields (field
             * 1000, value 0: three bytes each), which protobuf-c keeps. */
            len = 0;
            big[len++] = 3 << 3 | 2;
            big[len++] = 0;
            while (len + 3 <= size) {
                len += put_varint(big + len, 1000u << 3 | 0);
                big[len++] = 0;
            }
            buf = big;
            own = false;
            break;
        }
        default:
            break;
        }
        if (!buf) {
            buf = pack_raw(&req.base, &len);
            if (!buf) {
                return 1;
            }
        }
        raw_outcome(&rc, buf, len, wait, word, sizeof(word));
        printf("malformed case=%s bytes=%zu reply=%s\n", names[c], len, word);
        fflush(stdout);
        if (own) {
            free(buf);
        }
        if (streq(word, "closed")) {
            break; /* nothing more can be sent on this connection */
        }
    }
    free(big);
    free(many);
    free(long_host);
    nng_close(rc.sock);
    return status;
}

/* What the command line says, options before and after the command. */
typedef struct options {
    rb_session_config cfg;
    uint64_t held, ack, from;
    uint32_t wait;
    size_t size;
    unsigned count;
} options;

/* Reads options until the first argument that is not one (getopt's "+"):
 * 0, or -1 on an unknown option or a bad value. */
static int parse_options(int argc, char **argv, options *o)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },
        { "ca", required_argument, NULL, 'a' },
        { "cert", required_argument, NULL, 'c' },
        { "key", required_argument, NULL, 'k' },
        { "crl", required_argument, NULL, 'r' },
        { "server-name", required_argument, NULL, 's' },
        { "held", required_argument, NULL, 'H' },
        { "ack", required_argument, NULL, 'A' },
        { "wait", required_argument, NULL, 'w' },
        { "from", required_argument, NULL, 'f' },
        { "size", required_argument, NULL, 'z' },
        { "count", required_argument, NULL, 'n' },
        { "cache-bytes", required_argument, NULL, 'C' },
        { "cache-limit", required_argument, NULL, 'L' },
        { "base-url", required_argument, NULL, 'B' },
        { "dns", required_argument, NULL, 'D' },
        { "search", required_argument, NULL, 'S' },
        { 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            o->cfg.url = optarg;
            break;
        case 'a':
            o->cfg.ca = optarg;
            break;
        case 'c':
            o->cfg.cert = optarg;
            break;
        case 'k':
            o->cfg.key = optarg;
            break;
        case 'r':
            o->cfg.crl = optarg;
            break;
        case 's':
            o->cfg.server_name = optarg;
            break;
        case 'H':
            o->held = strtoull(optarg, NULL, 10);
            break;
        case 'A':
            o->ack = strtoull(optarg, NULL, 10);
            break;
        case 'w':
            o->wait = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'f':
            o->from = strtoull(optarg, NULL, 10);
            break;
        case 'z':
            o->size = (size_t)strtoull(optarg, NULL, 10);
            break;
        case 'n':
            o->count = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'C':
        case 'L':
        case 'B':
        case 'D':
        case 'S':
            if (status_option(c, optarg) < 0) {
                return -1;
            }
            break;
        default:
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o = { .cfg = { .kind = RB_SESSION_AGENT }, .from = 1, .count = 1 };
    if (parse_options(argc, argv, &o) < 0 || optind >= argc || !o.cfg.url) {
        return usage();
    }
    const char *cmd = argv[optind++];
    /* Options may also follow the command. */
    if (parse_options(argc, argv, &o) < 0) {
        return usage();
    }
    rb_session_config cfg = o.cfg;
    uint64_t held = o.held, ack = o.ack, from = o.from;
    uint32_t wait = o.wait;
    size_t size = o.size;
    unsigned count = o.count;
    if (streq(cmd, "garbage")) {
        return do_garbage(&cfg, size ? size : 1024, count, wait ? wait : 5000);
    } else if (streq(cmd, "oversized")) {
        return do_oversized(&cfg, size ? size : RBPROTO_MAX_MESSAGE + 1024, wait ? wait : 5000);
    } else if (streq(cmd, "malformed-event")) {
        return do_malformed(&cfg, size ? size : 4u << 20, wait ? wait : 10000);
    }
    if (streq(cmd, "watch")) {
        cfg.reconnect = true; /* nng redials a lost connection, as for the uplink */
    }
    rb_session *s = NULL;
    char *error = NULL;
    int r = rb_session_open(&cfg, &s, &error);
    if (r < 0) {
        printf("refused reason=%s\n", error ? error : errstr(r));
        free(error);
        return exit_code(r) == 4 && r != -EACCES ? 4 : 1;
    }
    int status;
    if (streq(cmd, "hello")) {
        const Rackboot__V1__AuthResult *id = rb_session_identity(s);
        printf("rack=%s name=%s controller=%s\n", id->rack, id->name, id->controller_version);
        status = 0;
    } else if (streq(cmd, "sync")) {
        status = do_sync(s, held, ack, wait);
    } else if (streq(cmd, "watch")) {
        do_watch(s, wait ? wait : 1000);
    } else if (streq(cmd, "events")) {
        status =
            optind < argc ? do_events(s, from, argv + optind, (size_t)(argc - optind)) : usage();
    } else {
        status = usage();
    }
    rb_session_close(s);
    return status;
}

/* rbproto: packs and unpacks the rackboot wire schema (proto/rackboot.proto)
 * with hard limits.
 *
 * Every message from a peer goes through rbproto_unpack_<envelope>(), which
 *  1. refuses more than `max` bytes before reading any of them,
 *  2. unpacks with a budgeted allocator (RBPROTO_BUDGET_BASE +
 *     RBPROTO_BUDGET_FACTOR bytes per input byte, and no more than the
 *     same budget for the message repacked), so a small message cannot
 *     make us allocate much more than its size, and what is accepted can
 *     be repacked and read back,
 *  3. checks what protobuf-c loses in the C structs (a NUL inside a string
 *     would silently shorten it), and
 *  4. validates everything protobuf cannot express: oneof set, enum values
 *     known, counts, lengths, character sets, address and hash sizes,
 *     cross-references inside a sync.
 * Only a message that passes all four is returned. Validators are exported
 * so that whoever builds a message can check it too, and rbproto_pack()
 * refuses to send a message that the peer would refuse to receive.
 *
 * Errors: -E2BIG    input over `max`, or unpacking it would exceed the
 *                   allocation budget; packed output over `max`
 *         -EBADMSG  malformed wire format or a failed validation
 *         -EINVAL   rbproto_pack*() of a message that fails validation
 *         -ENOSPC   rbproto_pack_into() buffer too small
 *         -ENOMEM   out of memory
 * Why a message was refused is logged at debug level, never above. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "model/bmc.h"
#include "model/profile.h"
#include "rackboot.pb-c.h"

/* ---- Limits ------------------------------------------------------------ */

/* Largest message any rackboot peer sends: a 10,000-host rack's sync. Set
 * NNG_OPT_RECVMAXSZ to the same value so nng refuses bigger frames before
 * we ever see them. */
#define RBPROTO_MAX_MESSAGE (16u << 20)
/* Before a peer has proved its identity it may only send the handshake,
 * which is a certificate and a signature: pass this as `max` until then. */
#define RBPROTO_MAX_UNAUTHENTICATED (64u << 10)

/* Allocation budget of one unpack: BASE + FACTOR * input length, at most
 * MAX, counting protobuf-c's structs, copies and our 32-byte block headers.
 * Realistic messages peak at 2.2-6.6 bytes per input byte (a 5,000-host
 * import is the worst: many small strings), measured and held to half the
 * budget by test_budget_realistic_messages_fit. Adversarial ones, made of
 * empty submessages or unknown fields (2 bytes on the wire, 60-240 bytes in
 * memory), hit the budget and fail with -E2BIG. A full 16 MiB message may
 * so cost up to 256 MiB; pass a smaller `max` where a smaller message will
 * do (RBPROTO_MAX_UNAUTHENTICATED before the handshake). */
#define RBPROTO_BUDGET_BASE   (64u << 10)
#define RBPROTO_BUDGET_FACTOR 16u
#define RBPROTO_BUDGET_MAX    (512u << 20)

/* Counts. */
#define RBPROTO_MAX_INTENTS     10000u             /* per sync: one rack */
#define RBPROTO_MAX_PROFILES    1000u              /* per sync, import or list */
#define RBPROTO_MAX_EVENTS      1000u              /* per EventBatch */
#define RBPROTO_MAX_MACS        16u                /* per host */
#define RBPROTO_MAX_IMAGES      MODEL_IMAGES_MAX   /* per profile */
#define RBPROTO_MAX_SSH_KEYS    MODEL_SSH_KEYS_MAX /* per profile */
#define RBPROTO_MAX_DNS_SERVERS 8u
#define RBPROTO_MAX_SEARCH      16u
#define RBPROTO_MAX_ROWS        100000u /* hosts, racks, images, status rows, names */
#define RBPROTO_MAX_EVENT_ROWS  10000u  /* per EventList */
#define RBPROTO_MAX_AUDIT_ROWS  10000u  /* per AuditList */
#define RBPROTO_MAX_AUDIT_NAMES 1000u   /* hosts or profiles named in one AuditRow */
/* HostsListRequest.limit and StatusRequest.limit: a page's rows at most
 * (about 1 MiB of hosts). 0 there is no page but the whole listing. */
#define RBPROTO_MAX_PAGE_ROWS 10000u
/* A rack's agents: "RACK" (1), "RACK/2" .. "RACK/9" (pki.h). */
#define RBPROTO_MAX_AGENT_INSTANCE 9u

/* AuditRequest.limit 0 means this many rows. */
#define RBPROTO_AUDIT_DEFAULT_ROWS 1000u

/* Lengths in bytes, without the terminating NUL. */
#define RBPROTO_MAX_NAME        63u                 /* host, rack, profile, agent: [A-Za-z0-9._-] */
#define RBPROTO_MAX_FILE_NAME   MODEL_FILE_NAME_MAX /* image file name: [A-Za-z0-9._+-] */
#define RBPROTO_MAX_ID          128u                /* install id, token: [A-Za-z0-9_-] */
#define RBPROTO_MIN_TOKEN       16u  /* a per-install secret: >= 96 bits as base64url */
#define RBPROTO_MAX_DNS_NAME    253u /* RFC 1035 §2.3.4, without the final dot */
#define RBPROTO_MAX_VERSION     64u
#define RBPROTO_MAX_LINE        1024u /* one line for people */
#define RBPROTO_MAX_URL         MODEL_URL_MAX
#define RBPROTO_MAX_KERNEL_ARGS MODEL_CMDLINE_MAX
#define RBPROTO_MAX_TEMPLATE    MODEL_TEMPLATE_MAX
#define RBPROTO_MAX_PEM         (32u << 10)
#define RBPROTO_MAX_SIGNATURE   1024u
#define RBPROTO_MAX_WAIT_MS     600000u /* long polls: 10 minutes */
/* An agent's base URL (render/context.h RENDER_BASE_URL_MAX - 1). */
#define RBPROTO_MAX_BASE_URL 63u
/* An agent's cache size or limit: 1 PiB, far above any disk, below what
 * JSON's doubles hold exactly. */
#define RBPROTO_MAX_CACHE_BYTES (1ull << 50)

/* Fixed sizes. */
#define RBPROTO_ADDR_LEN   16u
#define RBPROTO_MAC_LEN    6u
#define RBPROTO_SHA256_LEN 32u
#define RBPROTO_NONCE_LEN  32u
#define RBPROTO_DUID_MIN   3u   /* 2-byte type and at least one byte */
#define RBPROTO_DUID_MAX   130u /* RFC 8415 §11.1: type + at most 128 */

/* ---- Packing ----------------------------------------------------------- */

/* Validates msg (if rbproto knows a validator for its type, see
 * rbproto_validate()) and packs it into a new malloc()ed buffer of at most
 * `max` bytes. The caller frees *ret. */
int rbproto_pack(const ProtobufCMessage *msg, size_t max, uint8_t **ret, size_t *ret_len);

/* Validates msg and returns its packed size, -E2BIG over `max`. With
 * rbproto_pack_into() this packs straight into an nng message body:
 *   rbproto_packed_size(m, max, &n); nng_msg_alloc(&nm, n);
 *   rbproto_pack_into(m, nng_msg_body(nm), n, &n); */
int rbproto_packed_size(const ProtobufCMessage *msg, size_t max, size_t *ret);
/* Validates msg and packs it into buf; -ENOSPC if it does not fit in cap. */
int rbproto_pack_into(const ProtobufCMessage *msg, uint8_t *buf, size_t cap, size_t *ret_len);

/* ---- Unpacking --------------------------------------------------------- */

/* Unpack and validate one envelope from a peer (see the top of this file).
 * buf is only read, and not at all when len > max. On success *ret owns a
 * message to free with the matching rbproto_*_free(). */
int rbproto_unpack_agent_request(const uint8_t *buf, size_t len, size_t max,
                                 Rackboot__V1__AgentRequest **ret);
int rbproto_unpack_agent_reply(const uint8_t *buf, size_t len, size_t max,
                               Rackboot__V1__AgentReply **ret);
int rbproto_unpack_api_request(const uint8_t *buf, size_t len, size_t max,
                               Rackboot__V1__ApiRequest **ret);
int rbproto_unpack_api_reply(const uint8_t *buf, size_t len, size_t max,
                             Rackboot__V1__ApiReply **ret);

/* Frees a message returned by rbproto_unpack_*() (and only those: it finds
 * the budgeted allocator in front of the message). Accepts NULL, returns
 * NULL. */
ProtobufCMessage *rbproto_free(ProtobufCMessage *m);
Rackboot__V1__AgentRequest *rbproto_agent_request_free(Rackboot__V1__AgentRequest *m);
Rackboot__V1__AgentReply *rbproto_agent_reply_free(Rackboot__V1__AgentReply *m);
Rackboot__V1__ApiRequest *rbproto_api_request_free(Rackboot__V1__ApiRequest *m);
Rackboot__V1__ApiReply *rbproto_api_reply_free(Rackboot__V1__ApiReply *m);

static inline void rbproto_agent_request_freep(Rackboot__V1__AgentRequest **m)
{
    *m = rbproto_agent_request_free(*m);
}
static inline void rbproto_agent_reply_freep(Rackboot__V1__AgentReply **m)
{
    *m = rbproto_agent_reply_free(*m);
}
static inline void rbproto_api_request_freep(Rackboot__V1__ApiRequest **m)
{
    *m = rbproto_api_request_free(*m);
}
static inline void rbproto_api_reply_freep(Rackboot__V1__ApiReply **m)
{
    *m = rbproto_api_reply_free(*m);
}

/* ---- Validation -------------------------------------------------------- */

/* Each returns 0 if the message may be sent and acted upon, -EBADMSG if not
 * (NULL included), or -ENOMEM (the sync and envelope validators sort keys
 * to find duplicates). They check a message's own content; rules that relate
 * messages to each other are in the enclosing message's validator (e.g.
 * rbproto_validate_sync_response checks that intents name profiles it
 * carries and that no two intents share a MAC or address). */
int rbproto_validate_auth_hello(const Rackboot__V1__AuthHello *m);
int rbproto_validate_auth_challenge(const Rackboot__V1__AuthChallenge *m);
int rbproto_validate_auth_proof(const Rackboot__V1__AuthProof *m);
int rbproto_validate_auth_result(const Rackboot__V1__AuthResult *m);
int rbproto_validate_sync_request(const Rackboot__V1__SyncRequest *m);
int rbproto_validate_agent_status(const Rackboot__V1__AgentStatus *m);
int rbproto_validate_render_context(const Rackboot__V1__RenderContext *m);
int rbproto_validate_sync_response(const Rackboot__V1__SyncResponse *m);
int rbproto_validate_intent(const Rackboot__V1__Intent *m);
int rbproto_validate_profile(const Rackboot__V1__Profile *m);
int rbproto_validate_image(const Rackboot__V1__Image *m);
int rbproto_validate_event(const Rackboot__V1__Event *m);
int rbproto_validate_event_batch(const Rackboot__V1__EventBatch *m);
int rbproto_validate_error(const Rackboot__V1__Error *m);
int rbproto_validate_host(const Rackboot__V1__Host *m);
int rbproto_validate_bmc(const Rackboot__V1__Bmc *m);
int rbproto_validate_power_command(const Rackboot__V1__PowerCommand *m);
int rbproto_validate_selector(const Rackboot__V1__Selector *m);
int rbproto_validate_agent_request(const Rackboot__V1__AgentRequest *m);
int rbproto_validate_agent_reply(const Rackboot__V1__AgentReply *m);
int rbproto_validate_api_request(const Rackboot__V1__ApiRequest *m);
int rbproto_validate_api_reply(const Rackboot__V1__ApiReply *m);

/* Dispatches on the message's descriptor to one of the above: 0, -EBADMSG,
 * or -EOPNOTSUPP for a type with no validator of its own (rows and requests
 * only valid inside an envelope). */
int rbproto_validate(const ProtobufCMessage *m);

/* ---- Names ------------------------------------------------------------- */

/* Stable lower-case names for logs, the CLI and its JSON ("dhcp_bound",
 * "kernel", "not_found"). They are an interface: written out here rather
 * than derived from the .proto, so renaming an enum value cannot change
 * them. *_to_string() returns NULL for UNSPECIFIED and unknown values;
 * *_from_string() returns -EINVAL for unknown names and never yields
 * UNSPECIFIED. */
const char *rbproto_phase_to_string(Rackboot__V1__Phase v);
int rbproto_phase_from_string(const char *s, Rackboot__V1__Phase *ret);
const char *rbproto_install_state_to_string(Rackboot__V1__InstallState v);
int rbproto_install_state_from_string(const char *s, Rackboot__V1__InstallState *ret);
const char *rbproto_image_kind_to_string(Rackboot__V1__ImageKind v);
int rbproto_image_kind_from_string(const char *s, Rackboot__V1__ImageKind *ret);
const char *rbproto_role_to_string(Rackboot__V1__Role v);
int rbproto_role_from_string(const char *s, Rackboot__V1__Role *ret);
const char *rbproto_status_to_string(Rackboot__V1__Status v);
int rbproto_status_from_string(const char *s, Rackboot__V1__Status *ret);
/* Why install or cancel passed over a host ("none": it was done). */
const char *rbproto_skip_to_string(Rackboot__V1__Skip v);
int rbproto_skip_from_string(const char *s, Rackboot__V1__Skip *ret);
/* IP_MODE_STATIC is the zero value and a real mode: "static". */
const char *rbproto_ip_mode_to_string(Rackboot__V1__IpMode v);
int rbproto_ip_mode_from_string(const char *s, Rackboot__V1__IpMode *ret);
/* UEFI_BOOT_IPXE is the zero value and a real setting: "ipxe". */
const char *rbproto_uefi_boot_to_string(Rackboot__V1__UefiBoot v);
int rbproto_uefi_boot_from_string(const char *s, Rackboot__V1__UefiBoot *ret);
const char *rbproto_power_action_to_string(Rackboot__V1__PowerAction v);
int rbproto_power_action_from_string(const char *s, Rackboot__V1__PowerAction *ret);
const char *rbproto_power_state_to_string(Rackboot__V1__PowerState v);
int rbproto_power_state_from_string(const char *s, Rackboot__V1__PowerState *ret);
const char *rbproto_boot_device_to_string(Rackboot__V1__BootDevice v);
int rbproto_boot_device_from_string(const char *s, Rackboot__V1__BootDevice *ret);
const char *rbproto_firmware_to_string(Rackboot__V1__Firmware v);
int rbproto_firmware_from_string(const char *s, Rackboot__V1__Firmware *ret);

/* The phases of a host's BMC (bootdev_set, power_*): events of a host, of
 * an install only when one asked for the power action, never moving it. */
bool rbproto_phase_is_power(Rackboot__V1__Phase p);

/* DHCPv6 wire format (RFC 8415, RFC 9915; options from RFC 3646, 5970, 6939):
 * parse a received datagram into a bounded view, and build answers.
 *
 * Pure functions over bytes: no sockets, no allocation. A parsed packet
 * borrows pointers into the datagram, so the datagram must outlive it. Every
 * count is capped (relay nesting, IAs, addresses per IA, ORO entries); input
 * beyond a cap is either ignored where the RFC allows it or rejected. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cursor.h"

enum {
    DHCP6_CLIENT_PORT = 546,
    DHCP6_SERVER_PORT = 547,
};

/* RFC 8415 §7.3 message types. */
typedef enum dhcp6_msg_type {
    DHCP6_SOLICIT = 1,
    DHCP6_ADVERTISE = 2,
    DHCP6_REQUEST = 3,
    DHCP6_CONFIRM = 4,
    DHCP6_RENEW = 5,
    DHCP6_REBIND = 6,
    DHCP6_REPLY = 7,
    DHCP6_RELEASE = 8,
    DHCP6_DECLINE = 9,
    DHCP6_RECONFIGURE = 10,
    DHCP6_INFORMATION_REQUEST = 11,
    DHCP6_RELAY_FORW = 12,
    DHCP6_RELAY_REPL = 13,
} dhcp6_msg_type;

/* Option codes this server reads or writes. */
enum {
    DHCP6_OPT_CLIENTID = 1,
    DHCP6_OPT_SERVERID = 2,
    DHCP6_OPT_IA_NA = 3,
    DHCP6_OPT_IA_TA = 4,
    DHCP6_OPT_IAADDR = 5,
    DHCP6_OPT_ORO = 6,
    DHCP6_OPT_PREFERENCE = 7,
    DHCP6_OPT_ELAPSED_TIME = 8,
    DHCP6_OPT_RELAY_MSG = 9,
    DHCP6_OPT_STATUS_CODE = 13,
    DHCP6_OPT_RAPID_COMMIT = 14,
    DHCP6_OPT_USER_CLASS = 15,
    DHCP6_OPT_VENDOR_CLASS = 16,
    DHCP6_OPT_INTERFACE_ID = 18,
    DHCP6_OPT_DNS_SERVERS = 23,
    DHCP6_OPT_DOMAIN_LIST = 24,
    DHCP6_OPT_IA_PD = 25,
    DHCP6_OPT_INFORMATION_REFRESH_TIME = 32,
    DHCP6_OPT_BOOTFILE_URL = 59,
    DHCP6_OPT_BOOTFILE_PARAM = 60,
    DHCP6_OPT_CLIENT_ARCH_TYPE = 61,
    DHCP6_OPT_NII = 62,
    DHCP6_OPT_CLIENT_LINKLAYER_ADDR = 79,
};

/* RFC 8415 §21.13 status codes. */
typedef enum dhcp6_status {
    DHCP6_STATUS_SUCCESS = 0,
    DHCP6_STATUS_UNSPEC_FAIL = 1,
    DHCP6_STATUS_NO_ADDRS_AVAIL = 2,
    DHCP6_STATUS_NO_BINDING = 3,
    DHCP6_STATUS_NOT_ON_LINK = 4,
} dhcp6_status;

enum {
    DHCP6_DUID_LLT = 1,
    DHCP6_DUID_EN = 2,
    DHCP6_DUID_LL = 3,
    DHCP6_DUID_UUID = 4,
};

/* Caps on what one parsed packet may hold. */
enum {
    DHCP6_MAX_DUID = 130,      /* RFC 8415 §11.1: 2-byte type + up to 128 */
    DHCP6_MAX_RELAY_DEPTH = 8, /* RFC 8415 §7.6 HOP_COUNT_LIMIT */
    DHCP6_MAX_IA = 8,          /* IA_NAs per message; real clients send 1 */
    DHCP6_MAX_IAADDR = 4,      /* addresses per IA_NA the client may hint */
    DHCP6_MAX_ORO = 32,        /* requested options kept; the rest ignored */
    DHCP6_MAX_ARCH = 8,        /* client architecture types kept */
    DHCP6_MAX_INTERFACE_ID = 128,
    DHCP6_RELAY_HEADER = 34,
    DHCP6_MSG_HEADER = 4,
};

/* IANA enterprise number that PXE/HTTP boot vendor classes use. */
#define DHCP6_ENTERPRISE_PXE 343u

typedef struct dhcp6_ia_na {
    uint32_t iaid;
    uint32_t t1;
    uint32_t t2;
    struct in6_addr addrs[DHCP6_MAX_IAADDR]; /* addresses the client asked about */
    uint8_t n_addrs;
} dhcp6_ia_na;

typedef enum dhcp6_vendor_kind {
    DHCP6_VENDOR_NONE = 0,
    DHCP6_VENDOR_PXE_CLIENT,  /* enterprise 343, data starts "PXEClient" */
    DHCP6_VENDOR_HTTP_CLIENT, /* enterprise 343, data starts "HTTPClient" */
    DHCP6_VENDOR_OTHER,
} dhcp6_vendor_kind;

/* A client message (any type but relay) as the server needs it. */
typedef struct dhcp6_msg {
    uint8_t type;
    uint8_t xid[3];
    const uint8_t *client_id; /* DUID bytes, NULL when absent */
    uint16_t client_id_len;
    const uint8_t *server_id;
    uint16_t server_id_len;
    dhcp6_ia_na ia_na[DHCP6_MAX_IA];
    uint8_t n_ia_na;
    bool has_other_ia; /* IA_TA or IA_PD present (RFC 8415 §16.12) */
    uint16_t oro[DHCP6_MAX_ORO];
    uint8_t n_oro;
    bool rapid_commit;
    bool user_class_ipxe; /* a user class entry equal to "iPXE" */
    dhcp6_vendor_kind vendor;
    uint16_t arch[DHCP6_MAX_ARCH];
    uint8_t n_arch;
    bool has_elapsed;
    uint16_t elapsed_cs;
} dhcp6_msg;

typedef struct dhcp6_relay {
    uint8_t hop_count;
    struct in6_addr link_addr;
    struct in6_addr peer_addr;
    const uint8_t *interface_id; /* option 18, echoed in the Relay-reply */
    uint16_t interface_id_len;
    bool has_lladdr; /* option 79 carried an Ethernet address */
    uint8_t lladdr[6];
} dhcp6_relay;

/* A datagram: zero or more relay layers (relays[0] outermost, the last one
 * closest to the client) around one client message. */
typedef struct dhcp6_packet {
    dhcp6_relay relays[DHCP6_MAX_RELAY_DEPTH];
    uint8_t n_relays;
    dhcp6_msg msg;
} dhcp6_packet;

/* Parses a datagram received on port 547. Returns 0, or -EBADMSG for anything
 * RFC 8415 says to discard on syntax alone: short messages, option lengths
 * past their container, malformed fixed fields, relays nested deeper than
 * DHCP6_MAX_RELAY_DEPTH or missing option 9, server-to-client message types.
 * Message-type specific rules (Server ID present or not) are the server's.
 * Unlike most rackboot out-parameters, *ret is parsed into in place (it is
 * ~2 KiB and this runs per datagram): after an error its content is
 * meaningless and must not be used. Arrays are valid up to their counts. */
int dhcp6_packet_parse(const uint8_t *buf, size_t len, dhcp6_packet *ret);

/* True if the message's ORO asks for `code`. */
bool dhcp6_msg_requests(const dhcp6_msg *m, uint16_t code);

/* Extracts the MAC from a DUID-LL or DUID-LLT over Ethernet (hw type 1). */
int dhcp6_duid_mac(const uint8_t *duid, size_t len, uint8_t ret_mac[6]);

/* Extracts the MAC from an EUI-64 based interface identifier (bytes 11-12
 * are ff:fe), flipping the universal/local bit (RFC 4291 App. A). */
int dhcp6_eui64_mac(const struct in6_addr *addr, uint8_t ret_mac[6]);

/* Encodes a dotted domain name as uncompressed DNS wire format (RFC 1035
 * §3.1, as RFC 3646 / RFC 8415 §10 require) onto w. Rejects empty labels
 * and labels over 63 bytes with -EINVAL. */
int dhcp6_put_domain(wcursor *w, const char *name);

/* --- building answers ---------------------------------------------------- */

typedef struct dhcp6_ia_answer {
    uint32_t iaid;
    uint32_t t1;
    uint32_t t2;
    bool has_addr;
    struct in6_addr addr;
    uint32_t preferred;
    uint32_t valid;
    /* Extra addresses returned with lifetimes 0 (RFC 8415 §18.3.4: "no
     * longer appropriate"), e.g. a Renew for an address we no longer give. */
    struct in6_addr stale[DHCP6_MAX_IAADDR];
    uint8_t n_stale;
    bool has_status; /* IA-level status (NoAddrsAvail, NoBinding, ...) */
    dhcp6_status status;
    const char *status_msg;
} dhcp6_ia_answer;

typedef struct dhcp6_answer {
    uint8_t type; /* DHCP6_ADVERTISE or DHCP6_REPLY */
    const uint8_t *server_id;
    uint16_t server_id_len;
    bool has_status; /* top-level status */
    dhcp6_status status;
    const char *status_msg;
    dhcp6_ia_answer ia[DHCP6_MAX_IA];
    uint8_t n_ia;
    bool rapid_commit;
    bool has_preference;
    uint8_t preference;
    const struct in6_addr *dns; /* option 23 when n_dns > 0 and requested */
    uint8_t n_dns;
    const uint8_t *domain_list; /* option 24, pre-encoded wire format */
    uint16_t domain_list_len;
    const char *bootfile_url; /* option 59 when not NULL */
    bool echo_http_client;    /* option 16, enterprise 343, "HTTPClient" */
    uint32_t info_refresh;    /* option 32 when non-zero */
} dhcp6_answer;

/* Builds the answer to `req` into w: the message (xid and Client ID copied
 * from the request) wrapped in one Relay-reply per relay layer of the request,
 * each copying hop count, link and peer address and Interface-Id (RFC 8415
 * §19.3). Options 23, 24 and 59 go in whenever they are set, requested in the
 * ORO or not (RFC 8415 §18.3 lets a server add unrequested options, and a
 * generic client such as dhclient does not ask for 59 by default). Returns the
 * number of bytes written, or -ENOSPC. */
int dhcp6_answer_build(const dhcp6_packet *req, const dhcp6_answer *ans, wcursor *w);

#include "dhcp6/wire.h"

#include <errno.h>
#include <string.h>

#include "util.h"

/* Reads one option header and splits its body off as a sub-cursor. An option
 * whose length runs past its container is malformed (RFC 8415 §21.1). */
static int read_option(cursor *c, uint16_t *ret_code, cursor *ret_body)
{
    uint16_t code, len;
    cursor probe = *c;
    if (cursor_read_be16(&probe, &code) < 0 || cursor_read_be16(&probe, &len) < 0 ||
        cursor_read_sub(&probe, len, ret_body) < 0) {
        return -EBADMSG;
    }
    *c = probe;
    *ret_code = code;
    return 0;
}

static int parse_iaaddr(cursor body, dhcp6_ia_na *ia)
{
    struct in6_addr addr;
    uint32_t preferred, valid;
    if (cursor_read_bytes(&body, &addr, sizeof(addr)) < 0 ||
        cursor_read_be32(&body, &preferred) < 0 || cursor_read_be32(&body, &valid) < 0) {
        return -EBADMSG;
    }
    /* Client lifetimes are only hints (RFC 8415 §18.2); we keep the address. */
    if (ia->n_addrs < DHCP6_MAX_IAADDR) {
        ia->addrs[ia->n_addrs++] = addr;
    }
    return 0;
}

static int parse_ia_na(cursor body, dhcp6_msg *m)
{
    /* Parsed in place into the next free slot; a scratch IA (still
     * validated) when all slots are taken. */
    dhcp6_ia_na scratch;
    dhcp6_ia_na *ia = m->n_ia_na < DHCP6_MAX_IA ? &m->ia_na[m->n_ia_na] : &scratch;
    ia->n_addrs = 0;
    if (cursor_read_be32(&body, &ia->iaid) < 0 || cursor_read_be32(&body, &ia->t1) < 0 ||
        cursor_read_be32(&body, &ia->t2) < 0) {
        return -EBADMSG;
    }
    while (!cursor_at_end(&body)) {
        uint16_t code;
        cursor sub;
        if (read_option(&body, &code, &sub) < 0) {
            return -EBADMSG;
        }
        if (code == DHCP6_OPT_IAADDR && parse_iaaddr(sub, ia) < 0) {
            return -EBADMSG;
        }
    }
    if (ia == &scratch) {
        /* More IAs than any netboot client sends: answer the first ones. */
        return 0;
    }
    m->n_ia_na++;
    return 0;
}

static int parse_oro(cursor body, dhcp6_msg *m)
{
    if (cursor_remaining(&body) % 2 != 0) {
        return -EBADMSG;
    }
    uint16_t code;
    while (cursor_read_be16(&body, &code) == 0) {
        if (m->n_oro < DHCP6_MAX_ORO) {
            m->oro[m->n_oro++] = code;
        }
    }
    return 0;
}

/* RFC 8415 §21.15: a list of (len16, opaque) entries. */
static int parse_user_class(cursor body, dhcp6_msg *m)
{
    while (!cursor_at_end(&body)) {
        uint16_t len;
        const uint8_t *data;
        if (cursor_read_be16(&body, &len) < 0 || cursor_read_ref(&body, len, &data) < 0) {
            return -EBADMSG;
        }
        if (len == 4 && memcmp(data, "iPXE", 4) == 0) {
            m->user_class_ipxe = true;
        }
    }
    return 0;
}

static bool starts_with(const uint8_t *data, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(data, prefix, n) == 0;
}

/* RFC 8415 §21.16: enterprise number, then (len16, opaque) entries. */
static int parse_vendor_class(cursor body, dhcp6_msg *m)
{
    uint32_t enterprise;
    if (cursor_read_be32(&body, &enterprise) < 0) {
        return -EBADMSG;
    }
    dhcp6_vendor_kind kind = DHCP6_VENDOR_OTHER;
    bool first = true;
    while (!cursor_at_end(&body)) {
        uint16_t len;
        const uint8_t *data;
        if (cursor_read_be16(&body, &len) < 0 || cursor_read_ref(&body, len, &data) < 0) {
            return -EBADMSG;
        }
        if (first && enterprise == DHCP6_ENTERPRISE_PXE) {
            if (starts_with(data, len, "HTTPClient")) {
                kind = DHCP6_VENDOR_HTTP_CLIENT;
            } else if (starts_with(data, len, "PXEClient")) {
                kind = DHCP6_VENDOR_PXE_CLIENT;
            }
        }
        first = false;
    }
    m->vendor = kind;
    return 0;
}

static int parse_arch(cursor body, dhcp6_msg *m)
{
    if (cursor_remaining(&body) == 0 || cursor_remaining(&body) % 2 != 0) {
        return -EBADMSG;
    }
    uint16_t arch;
    while (cursor_read_be16(&body, &arch) == 0) {
        if (m->n_arch < DHCP6_MAX_ARCH) {
            m->arch[m->n_arch++] = arch;
        }
    }
    return 0;
}

static int parse_duid_option(cursor body, const uint8_t **ret, uint16_t *ret_len)
{
    size_t len = cursor_remaining(&body);
    /* A DUID is a 2-byte type plus at least one byte (RFC 8415 §11.1). */
    if (len < 3 || len > DHCP6_MAX_DUID) {
        return -EBADMSG;
    }
    /* RFC 8415 §21: an option that may appear once and appears twice makes
     * the message ambiguous; drop it rather than guess. */
    if (*ret) {
        return -EBADMSG;
    }
    *ret = cursor_pos(&body);
    *ret_len = (uint16_t)len;
    return 0;
}

static int parse_client_msg(cursor c, dhcp6_msg *m)
{
    uint8_t type;
    if (cursor_read_u8(&c, &type) < 0 || cursor_read_bytes(&c, m->xid, 3) < 0) {
        return -EBADMSG;
    }
    switch (type) {
    case DHCP6_SOLICIT:
    case DHCP6_REQUEST:
    case DHCP6_CONFIRM:
    case DHCP6_RENEW:
    case DHCP6_REBIND:
    case DHCP6_RELEASE:
    case DHCP6_DECLINE:
    case DHCP6_INFORMATION_REQUEST:
        break;
    default:
        /* Server-to-client types and unknown types never reach a server. */
        return -EBADMSG;
    }
    m->type = type;

    while (!cursor_at_end(&c)) {
        uint16_t code;
        cursor body;
        int r = 0;
        if (read_option(&c, &code, &body) < 0) {
            return -EBADMSG;
        }
        switch (code) {
        case DHCP6_OPT_CLIENTID:
            r = parse_duid_option(body, &m->client_id, &m->client_id_len);
            break;
        case DHCP6_OPT_SERVERID:
            r = parse_duid_option(body, &m->server_id, &m->server_id_len);
            break;
        case DHCP6_OPT_IA_NA:
            r = parse_ia_na(body, m);
            break;
        case DHCP6_OPT_IA_TA:
        case DHCP6_OPT_IA_PD:
            m->has_other_ia = true;
            break;
        case DHCP6_OPT_ORO:
            r = parse_oro(body, m);
            break;
        case DHCP6_OPT_RAPID_COMMIT:
            if (cursor_remaining(&body) != 0) {
                r = -EBADMSG;
            }
            m->rapid_commit = true;
            break;
        case DHCP6_OPT_USER_CLASS:
            r = parse_user_class(body, m);
            break;
        case DHCP6_OPT_VENDOR_CLASS:
            r = parse_vendor_class(body, m);
            break;
        case DHCP6_OPT_CLIENT_ARCH_TYPE:
            r = parse_arch(body, m);
            break;
        case DHCP6_OPT_ELAPSED_TIME:
            r = cursor_read_be16(&body, &m->elapsed_cs);
            if (r == 0 && !cursor_at_end(&body)) {
                r = -EBADMSG;
            }
            m->has_elapsed = true;
            break;
        default:
            /* Unknown or unneeded options are skipped (RFC 8415 §16). */
            break;
        }
        if (r < 0) {
            return -EBADMSG;
        }
    }
    return 0;
}

static int parse_relay(cursor c, dhcp6_packet *p, cursor *ret_inner)
{
    if (p->n_relays >= DHCP6_MAX_RELAY_DEPTH) {
        return -EBADMSG;
    }
    dhcp6_relay *rl = &p->relays[p->n_relays];
    uint8_t type;
    memset(rl, 0, sizeof(*rl));
    if (cursor_read_u8(&c, &type) < 0 || cursor_read_u8(&c, &rl->hop_count) < 0 ||
        cursor_read_bytes(&c, &rl->link_addr, 16) < 0 ||
        cursor_read_bytes(&c, &rl->peer_addr, 16) < 0) {
        return -EBADMSG;
    }
    bool have_msg = false;
    while (!cursor_at_end(&c)) {
        uint16_t code;
        cursor body;
        if (read_option(&c, &code, &body) < 0) {
            return -EBADMSG;
        }
        switch (code) {
        case DHCP6_OPT_RELAY_MSG:
            if (have_msg) {
                return -EBADMSG;
            }
            have_msg = true;
            *ret_inner = body;
            break;
        case DHCP6_OPT_INTERFACE_ID:
            if (cursor_remaining(&body) > DHCP6_MAX_INTERFACE_ID) {
                return -EBADMSG;
            }
            rl->interface_id = cursor_pos(&body);
            rl->interface_id_len = (uint16_t)cursor_remaining(&body);
            break;
        case DHCP6_OPT_CLIENT_LINKLAYER_ADDR: {
            /* RFC 6939: link-layer type (ARP hardware type) + address. */
            uint16_t hwtype;
            if (cursor_read_be16(&body, &hwtype) < 0) {
                return -EBADMSG;
            }
            if (hwtype == 1 && cursor_remaining(&body) == 6) {
                cursor_read_bytes(&body, rl->lladdr, 6);
                rl->has_lladdr = true;
            }
            break;
        }
        default:
            break;
        }
    }
    if (!have_msg) {
        return -EBADMSG;
    }
    p->n_relays++;
    return 0;
}

/* Clears what the parser reads back or the server looks at; the arrays
 * (IAs, ORO, architectures, relays) are valid only up to their counts, so
 * they need not be zeroed (a dhcp6_packet is ~2 KiB, parsed per datagram). */
static void msg_init(dhcp6_msg *m)
{
    m->type = 0;
    memset(m->xid, 0, sizeof(m->xid));
    m->client_id = NULL;
    m->client_id_len = 0;
    m->server_id = NULL;
    m->server_id_len = 0;
    m->n_ia_na = 0;
    m->has_other_ia = false;
    m->n_oro = 0;
    m->rapid_commit = false;
    m->user_class_ipxe = false;
    m->vendor = DHCP6_VENDOR_NONE;
    m->n_arch = 0;
    m->has_elapsed = false;
    m->elapsed_cs = 0;
}

int dhcp6_packet_parse(const uint8_t *buf, size_t len, dhcp6_packet *ret)
{
    dhcp6_packet *p = ret;
    cursor c = cursor_make(buf, len);

    msg_init(&p->msg);
    p->n_relays = 0;
    for (;;) {
        uint8_t type;
        if (cursor_peek_u8(&c, &type) < 0) {
            return -EBADMSG;
        }
        if (type == DHCP6_RELAY_FORW) {
            cursor inner;
            if (parse_relay(c, p, &inner) < 0) {
                return -EBADMSG;
            }
            c = inner;
            continue;
        }
        if (parse_client_msg(c, &p->msg) < 0) {
            return -EBADMSG;
        }
        break;
    }
    return 0;
}

bool dhcp6_msg_requests(const dhcp6_msg *m, uint16_t code)
{
    for (size_t i = 0; i < m->n_oro; i++) {
        if (m->oro[i] == code) {
            return true;
        }
    }
    return false;
}

int dhcp6_duid_mac(const uint8_t *duid, size_t len, uint8_t ret_mac[6])
{
    cursor c = cursor_make(duid, len);
    uint16_t type, hwtype;
    if (cursor_read_be16(&c, &type) < 0 || cursor_read_be16(&c, &hwtype) < 0) {
        return -EBADMSG;
    }
    if (type == DHCP6_DUID_LLT) {
        if (cursor_skip(&c, 4) < 0) {
            return -EBADMSG;
        }
    } else if (type != DHCP6_DUID_LL) {
        return -ENOENT;
    }
    if (hwtype != 1 || cursor_remaining(&c) != 6) {
        return -ENOENT;
    }
    return cursor_read_bytes(&c, ret_mac, 6);
}

int dhcp6_eui64_mac(const struct in6_addr *addr, uint8_t ret_mac[6])
{
    const uint8_t *b = addr->s6_addr;
    if (b[11] != 0xff || b[12] != 0xfe) {
        return -ENOENT;
    }
    ret_mac[0] = b[8] ^ 0x02;
    ret_mac[1] = b[9];
    ret_mac[2] = b[10];
    ret_mac[3] = b[13];
    ret_mac[4] = b[14];
    ret_mac[5] = b[15];
    return 0;
}

int dhcp6_put_domain(wcursor *w, const char *name)
{
    /* One pass, written in place; nothing counts as written (w->off stays)
     * unless the whole name fits. */
    const char *p = name;
    if (*p == '\0') {
        return -EINVAL;
    }
    uint8_t *out = w->buf + w->off;
    size_t room = wcursor_remaining(w);
    size_t o = 0;
    while (*p) {
        const char *q = p;
        while (*q && *q != '.') {
            q++;
        }
        size_t n = (size_t)(q - p);
        if (n == 0 || n > 63) {
            /* A trailing dot ends the name; anything else empty is invalid. */
            if (n == 0 && *q == '.' && q[1] == '\0' && p != name) {
                break;
            }
            return -EINVAL;
        }
        if (room - o < n + 1) {
            return -ENOSPC;
        }
        out[o] = (uint8_t)n;
        memcpy(out + o + 1, p, n);
        o += n + 1;
        p = q;
        if (*p == '.') {
            p++;
        }
    }
    if (room - o < 1) {
        return -ENOSPC;
    }
    out[o++] = 0;
    w->off += o;
    return 0;
}

/* Starts an option: writes the code and reserves the length. */
static int option_begin(wcursor *w, uint16_t code, size_t *ret_len_at)
{
    int r = wcursor_put_be16(w, code);
    if (r < 0) {
        return r;
    }
    return wcursor_reserve(w, 2, ret_len_at);
}

static int option_end(wcursor *w, size_t len_at)
{
    size_t body = wcursor_len(w) - len_at - 2;
    if (body > UINT16_MAX) {
        return -ENOSPC;
    }
    wcursor_patch_be16(w, len_at, (uint16_t)body);
    return 0;
}

static int put_option(wcursor *w, uint16_t code, const void *data, size_t len)
{
    if (len > UINT16_MAX) {
        return -ENOSPC;
    }
    int r = wcursor_put_be16(w, code);
    if (r == 0) {
        r = wcursor_put_be16(w, (uint16_t)len);
    }
    if (r == 0) {
        r = wcursor_put_bytes(w, data, len);
    }
    return r;
}

static int put_status(wcursor *w, dhcp6_status status, const char *msg)
{
    size_t len_at;
    int r = option_begin(w, DHCP6_OPT_STATUS_CODE, &len_at);
    if (r == 0) {
        r = wcursor_put_be16(w, (uint16_t)status);
    }
    if (r == 0 && msg) {
        r = wcursor_put_bytes(w, msg, strlen(msg));
    }
    if (r == 0) {
        r = option_end(w, len_at);
    }
    return r;
}

static int put_iaaddr(wcursor *w, const struct in6_addr *addr, uint32_t preferred, uint32_t valid)
{
    int r = wcursor_put_be16(w, DHCP6_OPT_IAADDR);
    if (r == 0) {
        r = wcursor_put_be16(w, 24);
    }
    if (r == 0) {
        r = wcursor_put_bytes(w, addr, 16);
    }
    if (r == 0) {
        r = wcursor_put_be32(w, preferred);
    }
    if (r == 0) {
        r = wcursor_put_be32(w, valid);
    }
    return r;
}

static int put_ia(wcursor *w, const dhcp6_ia_answer *ia)
{
    size_t len_at;
    int r = option_begin(w, DHCP6_OPT_IA_NA, &len_at);
    if (r == 0) {
        r = wcursor_put_be32(w, ia->iaid);
    }
    if (r == 0) {
        r = wcursor_put_be32(w, ia->t1);
    }
    if (r == 0) {
        r = wcursor_put_be32(w, ia->t2);
    }
    if (r == 0 && ia->has_addr) {
        r = put_iaaddr(w, &ia->addr, ia->preferred, ia->valid);
    }
    for (size_t i = 0; r == 0 && i < ia->n_stale; i++) {
        r = put_iaaddr(w, &ia->stale[i], 0, 0);
    }
    if (r == 0 && ia->has_status) {
        r = put_status(w, ia->status, ia->status_msg);
    }
    if (r == 0) {
        r = option_end(w, len_at);
    }
    return r;
}

static int put_message(const dhcp6_msg *req, const dhcp6_answer *ans, wcursor *w)
{
    int r = wcursor_put_u8(w, ans->type);
    if (r == 0) {
        r = wcursor_put_bytes(w, req->xid, 3);
    }
    if (r == 0) {
        r = put_option(w, DHCP6_OPT_SERVERID, ans->server_id, ans->server_id_len);
    }
    if (r == 0 && req->client_id) {
        r = put_option(w, DHCP6_OPT_CLIENTID, req->client_id, req->client_id_len);
    }
    if (r == 0 && ans->has_status) {
        r = put_status(w, ans->status, ans->status_msg);
    }
    for (size_t i = 0; r == 0 && i < ans->n_ia; i++) {
        r = put_ia(w, &ans->ia[i]);
    }
    if (r == 0 && ans->rapid_commit) {
        r = put_option(w, DHCP6_OPT_RAPID_COMMIT, NULL, 0);
    }
    if (r == 0 && ans->has_preference) {
        r = put_option(w, DHCP6_OPT_PREFERENCE, &ans->preference, 1);
    }
    if (r == 0 && ans->n_dns > 0) {
        r = put_option(w, DHCP6_OPT_DNS_SERVERS, ans->dns, (size_t)ans->n_dns * 16);
    }
    if (r == 0 && ans->domain_list_len > 0) {
        r = put_option(w, DHCP6_OPT_DOMAIN_LIST, ans->domain_list, ans->domain_list_len);
    }
    if (r == 0 && ans->bootfile_url) {
        r = put_option(w, DHCP6_OPT_BOOTFILE_URL, ans->bootfile_url, strlen(ans->bootfile_url));
    }
    if (r == 0 && ans->echo_http_client) {
        /* EDK2 takes an Advertise as an HTTP boot offer only when it carries
         * vendor class 343 starting "HTTPClient" (HttpBootDhcp6.c). */
        static const uint8_t http_client[] = { 0x00, 0x00, 0x01, 0x57, 0x00, 0x0a, 'H', 'T',
                                               'T',  'P',  'C',  'l',  'i',  'e',  'n', 't' };
        r = put_option(w, DHCP6_OPT_VENDOR_CLASS, http_client, sizeof(http_client));
    }
    if (r == 0 && ans->info_refresh > 0) {
        uint8_t v[4] = { (uint8_t)(ans->info_refresh >> 24), (uint8_t)(ans->info_refresh >> 16),
                         (uint8_t)(ans->info_refresh >> 8), (uint8_t)ans->info_refresh };
        r = put_option(w, DHCP6_OPT_INFORMATION_REFRESH_TIME, v, sizeof(v));
    }
    return r;
}

/* Wraps layer `depth` and everything inside it: Relay-reply headers copied
 * from the matching Relay-forward, Interface-Id echoed (RFC 8415 §19.3). */
static int put_layer(const dhcp6_packet *req, const dhcp6_answer *ans, size_t depth, wcursor *w)
{
    if (depth == req->n_relays) {
        return put_message(&req->msg, ans, w);
    }
    const dhcp6_relay *rl = &req->relays[depth];
    int r = wcursor_put_u8(w, DHCP6_RELAY_REPL);
    if (r == 0) {
        r = wcursor_put_u8(w, rl->hop_count);
    }
    if (r == 0) {
        r = wcursor_put_bytes(w, &rl->link_addr, 16);
    }
    if (r == 0) {
        r = wcursor_put_bytes(w, &rl->peer_addr, 16);
    }
    if (r == 0 && rl->interface_id) {
        r = put_option(w, DHCP6_OPT_INTERFACE_ID, rl->interface_id, rl->interface_id_len);
    }
    size_t len_at;
    if (r == 0) {
        r = option_begin(w, DHCP6_OPT_RELAY_MSG, &len_at);
    }
    if (r == 0) {
        r = put_layer(req, ans, depth + 1, w);
    }
    if (r == 0) {
        r = option_end(w, len_at);
    }
    return r;
}

int dhcp6_answer_build(const dhcp6_packet *req, const dhcp6_answer *ans, wcursor *w)
{
    wcursor probe = *w;
    int r = put_layer(req, ans, 0, &probe);
    if (r < 0) {
        return r;
    }
    size_t written = wcursor_len(&probe) - wcursor_len(w);
    *w = probe;
    return (int)written;
}

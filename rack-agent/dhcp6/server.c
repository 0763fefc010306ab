#include "dhcp6/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct dhcp6_server {
    dhcp6_server_config cfg;
    intents_store *store;
    dhcp6_bindings *bindings;
    dhcp6_bound_fn bound_fn;
    void *bound_userdata;
    dhcp6_on_link_fn on_link_fn;
    void *on_link_userdata;
    dhcp6_server_stats stats;
    /* Built once: the parts of boot URLs that never change. */
    char http_base[96]; /* http://[addr]:port */
    char tftp_base[64]; /* tftp://[addr] */
    size_t http_base_len;
    size_t tftp_base_len;
    /* The rack's default search list, encoded once. */
    uint8_t default_domains[512];
    uint16_t default_domains_len;
};

bool dhcp6_prefix_contains(const dhcp6_prefix *p, const struct in6_addr *a)
{
    unsigned len = p->len <= 128 ? p->len : 128;
    unsigned bytes = len / 8, bits = len % 8;
    if (memcmp(&p->addr, a, bytes) != 0) {
        return false;
    }
    if (bits == 0) {
        return true;
    }
    uint8_t mask = (uint8_t)(0xff << (8 - bits));
    return (p->addr.s6_addr[bytes] & mask) == (a->s6_addr[bytes] & mask);
}

const char *dhcp6_client_kind_to_string(dhcp6_client_kind k)
{
    switch (k) {
    case DHCP6_CLIENT_IPXE:
        return "ipxe";
    case DHCP6_CLIENT_UEFI_PXE:
        return "uefi-pxe";
    case DHCP6_CLIENT_UEFI_HTTP:
        return "uefi-http";
    case DHCP6_CLIENT_GENERIC:
        break;
    }
    return "generic";
}

static int encode_domains(const char *const *names, size_t n, uint8_t *buf, size_t cap,
                          uint16_t *ret_len)
{
    wcursor w = wcursor_make(buf, cap);
    for (size_t i = 0; i < n; i++) {
        int r = dhcp6_put_domain(&w, names[i]);
        if (r < 0) {
            return r;
        }
    }
    *ret_len = (uint16_t)wcursor_len(&w);
    return 0;
}

int dhcp6_server_new(const dhcp6_server_config *cfg, intents_store *store, dhcp6_bindings *bindings,
                     dhcp6_server **ret)
{
    if (cfg->duid_len < 3 || cfg->duid_len > DHCP6_MAX_DUID || cfg->n_dns > DHCP6_SERVER_MAX_DNS ||
        cfg->n_search > DHCP6_SERVER_MAX_SEARCH || cfg->valid_lifetime == 0 ||
        cfg->preferred_lifetime > cfg->valid_lifetime ||
        cfg->n_trusted_relays > DHCP6_SERVER_MAX_TRUSTED_RELAYS) {
        return -EINVAL;
    }
    for (size_t i = 0; i < cfg->n_trusted_relays; i++) {
        if (cfg->trusted_relays[i].len > 128) {
            return -EINVAL;
        }
    }
    dhcp6_server *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->cfg = *cfg;
    s->store = store;
    s->bindings = bindings;

    char addr[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &cfg->advertise_address, addr, sizeof(addr));
    int n;
    if (cfg->http_port == 80 || cfg->http_port == 0) {
        n = snprintf(s->http_base, sizeof(s->http_base), "http://[%s]", addr);
    } else {
        n = snprintf(s->http_base, sizeof(s->http_base), "http://[%s]:%u", addr, cfg->http_port);
    }
    int m = snprintf(s->tftp_base, sizeof(s->tftp_base), "tftp://[%s]", addr);
    int r = encode_domains(cfg->search, cfg->n_search, s->default_domains,
                           sizeof(s->default_domains), &s->default_domains_len);
    if (n < 0 || (size_t)n >= sizeof(s->http_base) || m < 0 || (size_t)m >= sizeof(s->tftp_base) ||
        r < 0) {
        free(s);
        return -EINVAL;
    }
    s->http_base_len = (size_t)n;
    s->tftp_base_len = (size_t)m;
    *ret = s;
    return 0;
}

dhcp6_server *dhcp6_server_free(dhcp6_server *s)
{
    free(s);
    return NULL;
}

void dhcp6_server_on_bound(dhcp6_server *s, dhcp6_bound_fn fn, void *userdata)
{
    s->bound_fn = fn;
    s->bound_userdata = userdata;
}

void dhcp6_server_on_link(dhcp6_server *s, dhcp6_on_link_fn fn, void *userdata)
{
    s->on_link_fn = fn;
    s->on_link_userdata = userdata;
}

const dhcp6_server_stats *dhcp6_server_get_stats(const dhcp6_server *s)
{
    return &s->stats;
}

static bool arch_is_http(uint16_t a)
{
    /* IANA processor architecture types for UEFI HTTP boot (RFC 5970 §3.3). */
    switch (a) {
    case 15:
    case 16:
    case 17:
    case 18:
    case 19:
    case 20:
    case 23:
    case 24:
    case 26:
    case 28:
    case 30:
    case 38:
    case 40:
        return true;
    default:
        return false;
    }
}

static bool arch_is_uefi(uint16_t a)
{
    /* 7 is x64 UEFI; 9 is EBC but old firmware sent it for x64 (RFC 4578
     * erratum), so treat it as UEFI too. */
    switch (a) {
    case 6:
    case 7:
    case 9:
    case 10:
    case 11:
    case 25:
    case 27:
    case 29:
    case 33:
    case 34:
    case 35:
    case 36:
    case 37:
    case 39:
        return true;
    default:
        return false;
    }
}

/* The user class comes first: iPXE also sends "PXEClient" and arch 7. */
static dhcp6_client_kind classify(const dhcp6_msg *m)
{
    if (m->user_class_ipxe) {
        return DHCP6_CLIENT_IPXE;
    }
    if (m->vendor == DHCP6_VENDOR_HTTP_CLIENT) {
        return DHCP6_CLIENT_UEFI_HTTP;
    }
    for (size_t i = 0; i < m->n_arch; i++) {
        if (arch_is_http(m->arch[i])) {
            return DHCP6_CLIENT_UEFI_HTTP;
        }
    }
    for (size_t i = 0; i < m->n_arch; i++) {
        if (arch_is_uefi(m->arch[i])) {
            return DHCP6_CLIENT_UEFI_PXE;
        }
    }
    return DHCP6_CLIENT_GENERIC;
}

/* RFC 8415 §16: which messages a server must discard before looking further. */
static bool acceptable(const dhcp6_server *s, const dhcp6_msg *m)
{
    bool has_server = m->server_id != NULL;
    bool ours = has_server && m->server_id_len == s->cfg.duid_len &&
                memcmp(m->server_id, s->cfg.duid, s->cfg.duid_len) == 0;
    switch (m->type) {
    case DHCP6_SOLICIT:
    case DHCP6_CONFIRM:
    case DHCP6_REBIND:
        return m->client_id && !has_server;
    case DHCP6_REQUEST:
    case DHCP6_RENEW:
    case DHCP6_RELEASE:
    case DHCP6_DECLINE:
        return m->client_id && ours;
    case DHCP6_INFORMATION_REQUEST:
        /* §16.12: a Server ID that is not ours, or any IA option, discards. */
        return (!has_server || ours) && m->n_ia_na == 0 && !m->has_other_ia;
    default:
        return false;
    }
}

/* Finds the host: the MAC from the innermost relay's option 79, from an
 * EUI-64 link-local source, or from a DUID-LL/LLT — the first candidate that
 * names a host with an intent wins. A DUID-LLT may name another NIC of the
 * same machine, and a link-local may be stable-privacy, so no single source is
 * trusted above the others; option 79 is what the relay saw on the wire and
 * goes first. *ret_mac gets the first candidate even when no intent matches. */
static const intent *identify(const dhcp6_server *s, const dhcp6_packet *p, const dhcp6_rx_info *rx,
                              uint8_t ret_mac[6], bool *ret_has_mac)
{
    uint8_t cand[3][6];
    size_t n = 0;
    const struct in6_addr *peer = &rx->src;
    if (p->n_relays > 0) {
        const dhcp6_relay *inner = &p->relays[p->n_relays - 1];
        if (inner->has_lladdr) {
            memcpy(cand[n++], inner->lladdr, 6);
        }
        peer = &inner->peer_addr;
    }
    if (IN6_IS_ADDR_LINKLOCAL(peer) && dhcp6_eui64_mac(peer, cand[n]) == 0) {
        n++;
    }
    if (p->msg.client_id && dhcp6_duid_mac(p->msg.client_id, p->msg.client_id_len, cand[n]) == 0) {
        n++;
    }
    *ret_has_mac = n > 0;
    if (n > 0) {
        memcpy(ret_mac, cand[0], 6);
    }
    for (size_t i = 0; i < n; i++) {
        const intent *in = intents_find_mac(s->store, cand[i]);
        /* An image written to its disk: the host boots that disk now, so
         * its netboot gets no answer, as if it had no intent. */
        if (in && !in->netboot_done) {
            memcpy(ret_mac, cand[i], 6);
            return in;
        }
    }
    return NULL;
}

static void set_lifetimes(const dhcp6_server *s, dhcp6_ia_answer *ia)
{
    ia->preferred = s->cfg.preferred_lifetime;
    ia->valid = s->cfg.valid_lifetime;
    /* RFC 8415 §21.4 recommends T1 = 0.5 and T2 = 0.8 of the preferred lifetime. */
    ia->t1 = s->cfg.preferred_lifetime / 2;
    ia->t2 = (uint32_t)((uint64_t)s->cfg.preferred_lifetime * 4 / 5);
}

static bool on_link(const dhcp6_server *s, const dhcp6_packet *p, const dhcp6_rx_info *rx,
                    const struct in6_addr *addr)
{
    if (!s->on_link_fn) {
        return true;
    }
    const struct in6_addr *link = p->n_relays ? &p->relays[p->n_relays - 1].link_addr : NULL;
    return s->on_link_fn(s->on_link_userdata, rx->ifindex, link, addr);
}

/* Fills an IA with `addr`, and lists the other addresses the client named
 * with lifetimes 0 so it stops using them (RFC 8415 §18.3.4). */
static void fill_ia(const dhcp6_server *s, const dhcp6_ia_na *req, const struct in6_addr *addr,
                    dhcp6_ia_answer *ia)
{
    memset(ia, 0, sizeof(*ia));
    ia->iaid = req->iaid;
    ia->has_addr = true;
    ia->addr = *addr;
    set_lifetimes(s, ia);
    for (size_t i = 0; i < req->n_addrs; i++) {
        if (memcmp(&req->addrs[i], addr, sizeof(*addr)) != 0 && ia->n_stale < DHCP6_MAX_IAADDR) {
            ia->stale[ia->n_stale++] = req->addrs[i];
        }
    }
}

static void ia_status(const dhcp6_ia_na *req, dhcp6_status st, const char *msg, dhcp6_ia_answer *ia)
{
    memset(ia, 0, sizeof(*ia));
    ia->iaid = req->iaid;
    ia->has_status = true;
    ia->status = st;
    ia->status_msg = msg;
}

/* Appends `parts` to buf (no snprintf per datagram); NULL if it does not fit. */
typedef struct url_part {
    const char *s;
    size_t len;
} url_part;

static const char *join(char *buf, size_t size, const url_part *parts, size_t n_parts)
{
    size_t off = 0;
    for (size_t i = 0; i < n_parts; i++) {
        if (size - off <= parts[i].len) {
            return NULL;
        }
        memcpy(buf + off, parts[i].s, parts[i].len);
        off += parts[i].len;
    }
    buf[off] = '\0';
    return buf;
}

#define URL_LIT(x) ((url_part){ x, sizeof(x) - 1 })

/* mac as 12 lower-case hex digits in pairs joined by `sep`, NUL-terminated. */
static void mac_text(const uint8_t mac[6], char sep, char out[18])
{
    static const char hexdigits[] = "0123456789abcdef";
    for (size_t i = 0; i < 6; i++) {
        out[3 * i] = hexdigits[mac[i] >> 4];
        out[3 * i + 1] = hexdigits[mac[i] & 0xf];
        out[3 * i + 2] = i < 5 ? sep : '\0';
    }
}

/* The bootfile-url for a client of `kind` whose install boots `uefi` way
 * (its profile's uefi_boot). */
static const char *boot_url(const dhcp6_server *s, dhcp6_client_kind kind, uefi_boot uefi,
                            const uint8_t mac[6], char *buf, size_t size, bool *ret_echo_http)
{
    *ret_echo_http = false;
    char m[18];
    if (uefi == UEFI_BOOT_UKI &&
        (kind == DHCP6_CLIENT_UEFI_PXE || kind == DHCP6_CLIENT_UEFI_HTTP)) {
        /* The host's own kernel image (rack-agent/uki/), no iPXE: over
         * TFTP for PXE (EDK2 takes only tftp:// there), HTTP for HTTP boot.
         * '-' in the name: EDK2's URL parsers take ':' after the host. */
        mac_text(mac, '-', m);
        bool http = kind == DHCP6_CLIENT_UEFI_HTTP;
        *ret_echo_http = http;
        url_part parts[] = { http ? (url_part){ s->http_base, s->http_base_len }
                                  : (url_part){ s->tftp_base, s->tftp_base_len },
                             URL_LIT("/boot/"),
                             { m, 17 },
                             URL_LIT(".efi") };
        return join(buf, size, parts, ARRAY_SIZE(parts));
    }
    switch (kind) {
    case DHCP6_CLIENT_UEFI_PXE: {
        /* EDK2 accepts only tftp://[literal]/path here (PxeBcDhcp6.c). */
        url_part parts[] = { { s->tftp_base, s->tftp_base_len }, URL_LIT("/ipxe.efi") };
        return join(buf, size, parts, ARRAY_SIZE(parts));
    }
    case DHCP6_CLIENT_UEFI_HTTP: {
        *ret_echo_http = true;
        url_part parts[] = { { s->http_base, s->http_base_len }, URL_LIT("/files/ipxe.efi") };
        return join(buf, size, parts, ARRAY_SIZE(parts));
    }
    case DHCP6_CLIENT_IPXE:
    case DHCP6_CLIENT_GENERIC:
    default: {
        mac_text(mac, ':', m);
        url_part parts[] = {
            { s->http_base, s->http_base_len }, URL_LIT("/boot/"), { m, 17 }, URL_LIT(".ipxe")
        };
        return join(buf, size, parts, ARRAY_SIZE(parts));
    }
    }
}

typedef struct request_ctx {
    const dhcp6_packet *p;
    const dhcp6_rx_info *rx;
    uint64_t now;
    const intent *in;
    uint8_t mac[6];
    bool has_mac;
    dhcp6_client_kind kind;
    dhcp6_answer ans;
    uint8_t domains[512];
    char url[160];
} request_ctx;

static void answer_init(dhcp6_answer *a)
{
    a->type = 0;
    a->server_id = NULL;
    a->server_id_len = 0;
    a->has_status = false;
    a->status = DHCP6_STATUS_SUCCESS;
    a->status_msg = NULL;
    a->n_ia = 0;
    a->rapid_commit = false;
    a->has_preference = false;
    a->preference = 0;
    a->dns = NULL;
    a->n_dns = 0;
    a->domain_list = NULL;
    a->domain_list_len = 0;
    a->bootfile_url = NULL;
    a->echo_http_client = false;
    a->info_refresh = 0;
}

static void add_host_options(dhcp6_server *s, request_ctx *c, bool with_boot)
{
    dhcp6_answer *a = &c->ans;
    if (c->in && c->in->n_dns > 0) {
        a->dns = c->in->dns;
        a->n_dns = (uint8_t)c->in->n_dns;
    } else {
        a->dns = s->cfg.dns;
        a->n_dns = (uint8_t)s->cfg.n_dns;
    }
    uint16_t len = 0;
    if (c->in && c->in->n_search > 0 &&
        encode_domains((const char *const *)c->in->search, c->in->n_search, c->domains,
                       sizeof(c->domains), &len) == 0) {
        a->domain_list = c->domains;
        a->domain_list_len = len;
    } else if (s->default_domains_len > 0) {
        a->domain_list = s->default_domains;
        a->domain_list_len = s->default_domains_len;
    }
    if (with_boot && c->in) {
        bool echo;
        uefi_boot uefi = c->in->profile ? c->in->profile->uefi : UEFI_BOOT_IPXE;
        a->bootfile_url = boot_url(s, c->kind, uefi, c->mac, c->url, sizeof(c->url), &echo);
        a->echo_http_client = echo && a->bootfile_url;
    }
}

static void notify_bound(dhcp6_server *s, const request_ctx *c, const struct in6_addr *addr)
{
    if (s->bound_fn && c->in) {
        s->bound_fn(s->bound_userdata, c->in, c->mac, addr, c->p->msg.client_id,
                    c->p->msg.client_id_len, c->kind);
    }
}

/* Gives every IA of the message an address: the host's reservation, or the
 * client's pool address. With `commit`, the binding is committed (Request,
 * Renew, Rebind, Rapid Commit); otherwise it is only offered (Advertise).
 * Returns false when nothing at all could be assigned. */
static bool assign(dhcp6_server *s, request_ctx *c, bool commit, bool check_link)
{
    const dhcp6_msg *m = &c->p->msg;
    dhcp6_answer *a = &c->ans;
    bool any = false;
    for (size_t i = 0; i < m->n_ia_na; i++) {
        const dhcp6_ia_na *req = &m->ia_na[i];
        dhcp6_ia_answer *ia = &a->ia[a->n_ia++];
        if (check_link) {
            bool bad = false;
            for (size_t k = 0; k < req->n_addrs; k++) {
                bad |= !on_link(s, c->p, c->rx, &req->addrs[k]);
            }
            if (bad) {
                /* RFC 8415 §18.3.2: addresses not appropriate for the link. */
                ia_status(req, DHCP6_STATUS_NOT_ON_LINK, "address not on this link", ia);
                continue;
            }
        }
        dhcp6_binding *b;
        int r;
        if (c->in) {
            r = dhcp6_bindings_host(s->bindings, c->mac, &c->in->address, &b);
        } else {
            r = dhcp6_bindings_pool(s->bindings, m->client_id, m->client_id_len, c->rx->ifindex,
                                    c->now, &b);
            if (r == 0 && c->has_mac) {
                memcpy(b->mac, c->mac, 6);
            }
        }
        if (r < 0) {
            s->stats.no_addrs++;
            ia_status(req, DHCP6_STATUS_NO_ADDRS_AVAIL, "no addresses available", ia);
            continue;
        }
        fill_ia(s, req, &b->addr, ia);
        if (commit) {
            dhcp6_bindings_commit(s->bindings, b, m->client_id, m->client_id_len, req->iaid,
                                  c->now + s->cfg.valid_lifetime);
        }
        any = true;
    }
    return any;
}

/* Renew and Rebind: extend what the client holds. A host with an intent
 * always holds its reservation, whichever of its clients asks. */
static bool extend(dhcp6_server *s, request_ctx *c, bool is_rebind)
{
    const dhcp6_msg *m = &c->p->msg;
    dhcp6_answer *a = &c->ans;
    bool any = false;
    for (size_t i = 0; i < m->n_ia_na; i++) {
        const dhcp6_ia_na *req = &m->ia_na[i];
        dhcp6_ia_answer *ia = &a->ia[a->n_ia++];
        dhcp6_binding *b = NULL;
        if (c->in) {
            if (dhcp6_bindings_host(s->bindings, c->mac, &c->in->address, &b) < 0) {
                b = NULL;
            }
        } else {
            b = dhcp6_bindings_find_duid(s->bindings, m->client_id, m->client_id_len);
            if (b && b->declined) {
                b = NULL;
            }
        }
        if (!b) {
            if (is_rebind) {
                /* §18.3.5: without a binding, tell the client to stop using
                 * addresses that are not ours to give; else stay silent. */
                memset(ia, 0, sizeof(*ia));
                ia->iaid = req->iaid;
                for (size_t k = 0; k < req->n_addrs; k++) {
                    if (!on_link(s, c->p, c->rx, &req->addrs[k])) {
                        ia->stale[ia->n_stale++] = req->addrs[k];
                    }
                }
                if (ia->n_stale == 0) {
                    a->n_ia--;
                    continue;
                }
                any = true;
                continue;
            }
            ia_status(req, DHCP6_STATUS_NO_BINDING, "no binding for this IA", ia);
            any = true;
            continue;
        }
        fill_ia(s, req, &b->addr, ia);
        dhcp6_bindings_commit(s->bindings, b, m->client_id, m->client_id_len, req->iaid,
                              c->now + s->cfg.valid_lifetime);
        any = true;
    }
    return any;
}

/* Release and Decline act on the binding of each IA and always answer with a
 * top-level Success (§18.3.7, §18.3.8); unknown IAs get NoBinding. */
static void release_or_decline(dhcp6_server *s, request_ctx *c, bool decline)
{
    const dhcp6_msg *m = &c->p->msg;
    dhcp6_answer *a = &c->ans;
    dhcp6_binding *b = NULL;
    if (c->in) {
        b = dhcp6_bindings_find_host(s->bindings, c->mac);
    } else {
        b = dhcp6_bindings_find_duid(s->bindings, m->client_id, m->client_id_len);
    }
    for (size_t i = 0; i < m->n_ia_na; i++) {
        const dhcp6_ia_na *req = &m->ia_na[i];
        bool held = false;
        for (size_t k = 0; b && k < req->n_addrs; k++) {
            held |= memcmp(&req->addrs[k], &b->addr, 16) == 0;
        }
        if (!held) {
            ia_status(req, DHCP6_STATUS_NO_BINDING, "no binding for this IA", &a->ia[a->n_ia++]);
        }
    }
    /* Each IA that names the address gives up its hold; a host's binding
     * goes with its last holder (EDK2 releases its two IAs one by one). */
    for (size_t i = 0; b && i < m->n_ia_na; i++) {
        bool named = false;
        for (size_t k = 0; k < m->ia_na[i].n_addrs; k++) {
            named |= memcmp(&m->ia_na[i].addrs[k], &b->addr, 16) == 0;
        }
        if (!named) {
            continue;
        }
        if (decline) {
            dhcp6_bindings_decline(s->bindings, b, c->now + s->cfg.valid_lifetime);
            break;
        }
        if (dhcp6_bindings_release_holder(s->bindings, b, m->client_id, m->client_id_len,
                                          m->ia_na[i].iaid)) {
            b = NULL;
        }
    }
    a->has_status = true;
    a->status = DHCP6_STATUS_SUCCESS;
    a->status_msg = decline ? "declined" : "released";
}

static int finish(dhcp6_server *s, request_ctx *c, dhcp6_tx *tx)
{
    wcursor w = wcursor_make(tx->buf, sizeof(tx->buf));
    int n = dhcp6_answer_build(c->p, &c->ans, &w);
    if (n < 0) {
        /* Our answer did not fit our own buffer: a relay chain so long that
         * its echoed Interface-Ids overflow it. Count it as dropped. */
        s->stats.dropped++;
        return 0;
    }
    tx->len = (size_t)n;
    tx->ifindex = c->rx->ifindex;
    tx->dst = c->rx->src;
    /* Direct answers go to the client's port; Relay-replies to the relay's
     * server port (RFC 8415 §7.2, §19.3). */
    tx->dst_port = c->p->n_relays ? DHCP6_SERVER_PORT : DHCP6_CLIENT_PORT;
    if (c->ans.type == DHCP6_ADVERTISE) {
        s->stats.advertise++;
    } else {
        s->stats.reply++;
    }
    return 1;
}

static bool relay_trusted(const dhcp6_server *s, const struct in6_addr *src)
{
    for (size_t i = 0; i < s->cfg.n_trusted_relays; i++) {
        if (dhcp6_prefix_contains(&s->cfg.trusted_relays[i], src)) {
            return true;
        }
    }
    return false;
}

/* Who may talk to us at all, decided on the source address before parsing so
 * that a flood from elsewhere costs as little as possible. A Relay-forward
 * speaks for its client (option 79 names the client's MAC, which picks the
 * host's reservation and boot file): only the operator's relays are
 * believed. A client on a served link sends from its link-local address
 * (RFC 8415 §13.1: "the client MUST use a link-local address"), so a direct
 * message from any other source is not a client of ours. Whether the
 * interface is served is the socket's check. */
static bool source_allowed(dhcp6_server *s, uint8_t type, const struct in6_addr *src)
{
    if (type == DHCP6_RELAY_FORW) {
        if (!relay_trusted(s, src)) {
            s->stats.relay_untrusted++;
            return false;
        }
        return true;
    }
    if (!IN6_IS_ADDR_LINKLOCAL(src)) {
        s->stats.direct_not_link_local++;
        return false;
    }
    return true;
}

int dhcp6_server_handle(dhcp6_server *s, const uint8_t *data, size_t len, const dhcp6_rx_info *rx,
                        uint64_t now, dhcp6_tx *tx)
{
    dhcp6_packet p;
    s->stats.received++;
    if (len > 0 && !source_allowed(s, data[0], &rx->src)) {
        return 0;
    }
    if (dhcp6_packet_parse(data, len, &p) < 0) {
        s->stats.malformed++;
        return 0;
    }
    const dhcp6_msg *m = &p.msg;
    s->stats.by_type[m->type]++;
    /* RFC 9915 §16: servers should not accept unicast from clients; relays
     * legitimately unicast to us. */
    if (p.n_relays == 0 && !rx->dst_multicast) {
        s->stats.dropped++;
        return 0;
    }
    if (!acceptable(s, m)) {
        s->stats.dropped++;
        return 0;
    }

    /* Only the context's scalars and the answer's header are cleared: the
     * answer's IAs are valid up to n_ia, the buffers up to their lengths
     * (together ~1.7 KiB not zeroed per datagram). */
    request_ctx ctx;
    request_ctx *c = &ctx;
    c->p = &p;
    c->rx = rx;
    c->now = now;
    memset(c->mac, 0, sizeof(c->mac));
    c->has_mac = false;
    answer_init(&c->ans);
    c->in = identify(s, &p, rx, c->mac, &c->has_mac);
    c->kind = classify(m);
    if (!c->in && !s->cfg.has_pool) {
        s->stats.ignored_no_intent++;
        return 0;
    }
    dhcp6_answer *a = &c->ans;
    a->type = DHCP6_REPLY;
    a->server_id = s->cfg.duid;
    a->server_id_len = s->cfg.duid_len;

    switch (m->type) {
    case DHCP6_SOLICIT: {
        bool rapid = m->rapid_commit && s->cfg.rapid_commit;
        if (!assign(s, c, rapid, false) && m->n_ia_na > 0) {
            /* Pool exhausted: §18.3.9 says answer with only NoAddrsAvail. */
            a->n_ia = 0;
            a->has_status = true;
            a->status = DHCP6_STATUS_NO_ADDRS_AVAIL;
            a->status_msg = "no addresses available";
        }
        add_host_options(s, c, true);
        if (rapid) {
            a->rapid_commit = true;
            if (a->n_ia > 0 && a->ia[0].has_addr) {
                notify_bound(s, c, &a->ia[0].addr);
            }
        } else {
            a->type = DHCP6_ADVERTISE;
            a->has_preference = true;
            a->preference = s->cfg.preference;
        }
        break;
    }
    case DHCP6_REQUEST:
        assign(s, c, true, true);
        add_host_options(s, c, true);
        if (a->n_ia > 0 && a->ia[0].has_addr) {
            notify_bound(s, c, &a->ia[0].addr);
        }
        break;
    case DHCP6_CONFIRM: {
        /* §18.3.3: only whether the addresses fit the link; no addresses,
         * no answer. */
        size_t n = 0;
        bool all_on_link = true;
        for (size_t i = 0; i < m->n_ia_na; i++) {
            for (size_t k = 0; k < m->ia_na[i].n_addrs; k++) {
                n++;
                all_on_link &= on_link(s, &p, rx, &m->ia_na[i].addrs[k]);
            }
        }
        if (n == 0) {
            return 0;
        }
        a->has_status = true;
        a->status = all_on_link ? DHCP6_STATUS_SUCCESS : DHCP6_STATUS_NOT_ON_LINK;
        a->status_msg = all_on_link ? "all addresses on link" : "not on link";
        break;
    }
    case DHCP6_RENEW:
    case DHCP6_REBIND:
        if (!extend(s, c, m->type == DHCP6_REBIND)) {
            return 0;
        }
        add_host_options(s, c, true);
        break;
    case DHCP6_RELEASE:
    case DHCP6_DECLINE:
        release_or_decline(s, c, m->type == DHCP6_DECLINE);
        break;
    case DHCP6_INFORMATION_REQUEST:
        add_host_options(s, c, true);
        break;
    default:
        s->stats.dropped++;
        return 0;
    }
    return finish(s, c, tx);
}

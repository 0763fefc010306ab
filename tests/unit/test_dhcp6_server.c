/* rack-agent/dhcp6/server: the answers a netboot rack needs, message by
 * message, driven with iPXE's real bytes and synthesized EDK2, dhclient and
 * relay traffic. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dhcp6/server.h"
#include "dhcp6_vectors.h"

static const uint8_t server_duid[] = { 0x00, 0x03, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t web17_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static struct in6_addr addr6(const char *s)
{
    struct in6_addr a;
    assert_int_equal(inet_pton(AF_INET6, s, &a), 1);
    return a;
}

typedef struct fixture {
    intents_store *store;
    dhcp6_bindings *bindings;
    dhcp6_server *server;
    dhcp6_tx tx;
    int bound_calls;
    uint8_t bound_mac[6];
    dhcp6_client_kind bound_kind;
} fixture;

static void on_bound(void *userdata, const intent *in, const uint8_t mac[6],
                     const struct in6_addr *addr, const uint8_t *duid, size_t duid_len,
                     dhcp6_client_kind kind)
{
    fixture *f = userdata;
    f->bound_calls++;
    memcpy(f->bound_mac, mac, 6);
    f->bound_kind = kind;
}

/* The rack's link is 2001:db8:0:1::/64. */
static bool on_link(void *userdata, int ifindex, const struct in6_addr *link,
                    const struct in6_addr *addr)
{
    struct in6_addr prefix = addr6("2001:db8:0:1::");
    return memcmp(addr, &prefix, 8) == 0;
}

static bool keep_all(const intent *in, void *userdata)
{
    return true;
}

/* Generation `gen`: web17's install of profile el9, booting UEFI `uefi`. */
static intent_set *web17_set(uint64_t gen, uefi_boot uefi)
{
    intent_set *set;
    assert_int_equal(intent_set_new(gen, &set), 0);
    model_profile prof = { .name = strdup("el9"), .uefi = uefi };
    assert_int_equal(intent_set_add_profile(set, &prof), 0);
    intent in = { .install_id = strdup("inst-1"),
                  .host = strdup("web17"),
                  .hostname = strdup("web17"),
                  .token = strdup("tok"),
                  .n_macs = 1,
                  .prefix_len = 64,
                  .address = addr6("2001:db8:0:1::100") };
    memcpy(in.macs[0], web17_mac, 6);
    assert_int_equal(intent_set_add(set, &in, "el9"), 0);
    return set;
}

static fixture *make_fixture_full(bool with_pool, bool rapid, const char *pool_last,
                                  const dhcp6_prefix *relays, size_t n_relays, uint8_t preference)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(intents_store_new(&f->store), 0);

    intents_store_replace(f->store, web17_set(1, UEFI_BOOT_IPXE));

    dhcp6_pool pool = { .first = addr6("2001:db8:0:1::1000"), .last = addr6(pool_last) };
    assert_int_equal(dhcp6_bindings_new(with_pool ? &pool : NULL, &f->bindings), 0);

    dhcp6_server_config cfg = {
        .duid_len = sizeof(server_duid),
        .preferred_lifetime = 3600,
        .valid_lifetime = 7200,
        .rapid_commit = rapid,
        .preference = preference,
        .n_dns = 1,
        .dns = { addr6("2001:db8:0:1::53") },
        .n_search = 1,
        .search = { "rack1.example.com" },
        .advertise_address = addr6("2001:db8:0:1::1"),
        .http_port = 80,
        .has_pool = with_pool,
        .pool = pool,
    };
    memcpy(cfg.duid, server_duid, sizeof(server_duid));
    assert_true(n_relays <= DHCP6_SERVER_MAX_TRUSTED_RELAYS);
    for (size_t i = 0; i < n_relays; i++) {
        cfg.trusted_relays[i] = relays[i];
    }
    cfg.n_trusted_relays = n_relays;
    assert_int_equal(dhcp6_server_new(&cfg, f->store, f->bindings, &f->server), 0);
    dhcp6_server_on_bound(f->server, on_bound, f);
    dhcp6_server_on_link(f->server, on_link, f);
    return f;
}

static fixture *make_fixture(bool with_pool, bool rapid)
{
    return make_fixture_full(with_pool, rapid, "2001:db8:0:1::1001", NULL, 0, DHCP6_PREFERENCE_MAX);
}

/* The rack's ToR relays: one by address, a management /64 by prefix. */
static const char *const tor_relay = "2001:db8:ff::1";

static fixture *make_relay_fixture(void)
{
    dhcp6_prefix relays[] = { { .addr = addr6(tor_relay), .len = 128 },
                              { .addr = addr6("2001:db8:fe::"), .len = 64 } };
    return make_fixture_full(false, false, "2001:db8:0:1::1001", relays,
                             sizeof(relays) / sizeof(relays[0]), DHCP6_PREFERENCE_MAX);
}

static int setup_relays(void **state)
{
    *state = make_relay_fixture();
    return 0;
}

static int setup(void **state)
{
    *state = make_fixture(false, false);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dhcp6_server_free(f->server);
    dhcp6_bindings_free(f->bindings);
    intents_store_free(f->store);
    free(f);
    return 0;
}

static int send_from(fixture *f, const uint8_t *msg, size_t len, const char *src, bool multicast)
{
    dhcp6_rx_info rx = {
        .src = addr6(src), .src_port = 546, .ifindex = 3, .dst_multicast = multicast
    };
    memset(&f->tx, 0, sizeof(f->tx));
    return dhcp6_server_handle(f->server, msg, len, &rx, 1000000, &f->tx);
}

static int send_ll(fixture *f, const uint8_t *msg, size_t len)
{
    return send_from(f, msg, len, "fe80::5054:ff:fe12:3456", true);
}

/* Finds a top-level option (after any Relay-reply layers are peeled) in the
 * answer; returns its body or NULL. */
static const uint8_t *find_opt(const uint8_t *msg, size_t len, uint16_t code, uint16_t *ret_len)
{
    size_t off = 4;
    while (off + 4 <= len) {
        uint16_t c = (uint16_t)(msg[off] << 8 | msg[off + 1]);
        uint16_t l = (uint16_t)(msg[off + 2] << 8 | msg[off + 3]);
        assert_true(off + 4 + l <= len);
        if (c == code) {
            *ret_len = l;
            return msg + off + 4;
        }
        off += 4 + l;
    }
    return NULL;
}

static void assert_url(const fixture *f, const char *want)
{
    uint16_t l;
    const uint8_t *u = find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_BOOTFILE_URL, &l);
    if (!want) {
        assert_null(u);
        return;
    }
    assert_non_null(u);
    assert_int_equal(l, strlen(want));
    assert_memory_equal(u, want, l);
}

/* The address in the first IA_NA, or :: if none. */
static struct in6_addr ia_addr(const fixture *f, uint16_t *ret_status)
{
    uint16_t l;
    struct in6_addr a = { 0 };
    *ret_status = 0;
    const uint8_t *ia = find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_IA_NA, &l);
    assert_non_null(ia);
    size_t off = 12;
    while (off + 4 <= l) {
        uint16_t c = (uint16_t)(ia[off] << 8 | ia[off + 1]);
        uint16_t ol = (uint16_t)(ia[off + 2] << 8 | ia[off + 3]);
        if (c == DHCP6_OPT_IAADDR && a.s6_addr[0] == 0) {
            memcpy(&a, ia + off + 4, 16);
        } else if (c == DHCP6_OPT_STATUS_CODE) {
            *ret_status = (uint16_t)(ia[off + 4] << 8 | ia[off + 5]);
        }
        off += 4 + ol;
    }
    return a;
}

static void test_ipxe_solicit_gets_advertise(void **state)
{
    fixture *f = *state;
    assert_int_equal(send_ll(f, ipxe_solicit, sizeof(ipxe_solicit)), 1);
    assert_int_equal(f->tx.buf[0], DHCP6_ADVERTISE);
    assert_memory_equal(f->tx.buf + 1, "\x5a\x1b\x2c", 3);
    assert_int_equal(f->tx.dst_port, 546);
    struct in6_addr src = addr6("fe80::5054:ff:fe12:3456");
    assert_memory_equal(&f->tx.dst, &src, 16);
    assert_int_equal(f->tx.ifindex, 3);
    uint16_t st, l;
    struct in6_addr want = addr6("2001:db8:0:1::100");
    struct in6_addr got = ia_addr(f, &st);
    assert_memory_equal(&got, &want, 16);
    assert_url(f, "http://[2001:db8:0:1::1]/boot/52:54:00:12:34:56.ipxe");
    const uint8_t *pref = find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_PREFERENCE, &l);
    assert_non_null(pref);
    assert_int_equal(pref[0], 255);
    /* iPXE's PXEClient vendor class is never echoed. */
    assert_null(find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_VENDOR_CLASS, &l));
    assert_non_null(find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_DNS_SERVERS, &l));
    assert_non_null(find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_DOMAIN_LIST, &l));
    assert_int_equal(f->bound_calls, 0);
}

/* An image written to the host's disk (its intent netboot_done): the host
 * boots that disk, so its Solicit gets no answer, as without an intent. */
static void test_netboot_done_is_ignored(void **state)
{
    fixture *f = *state;
    intent_set *copy = NULL;
    assert_int_equal(intent_set_filter(intents_store_current(f->store), keep_all, NULL, &copy), 0);
    assert_int_equal(intent_set_mark_netboot_done(copy, "inst-1"), 0);
    assert_int_equal(intent_set_mark_netboot_done(copy, "inst-2"), -ENOENT);
    intents_store_replace(f->store, copy);
    assert_int_equal(send_ll(f, ipxe_solicit, sizeof(ipxe_solicit)), 0);
    assert_int_equal(dhcp6_server_get_stats(f->server)->ignored_no_intent, 1);
}

/* Two agents of one rack: the same reservation from either, and the
 * second one's lower Preference, so a client that hears both takes the
 * primary (RFC 8415 §18.2.1) and one that hears only the second still gets
 * its address after one retransmission time. */
static void test_second_agent_advertises_lower_preference(void **state)
{
    fixture *primary = *state;
    fixture *second =
        make_fixture_full(false, false, "2001:db8:0:1::1001", NULL, 0, /* preference */ 100);
    struct in6_addr want = addr6("2001:db8:0:1::100");
    fixture *agents[] = { primary, second };
    const uint8_t prefs[] = { DHCP6_PREFERENCE_MAX, 100 };
    for (size_t i = 0; i < 2; i++) {
        fixture *f = agents[i];
        assert_int_equal(send_ll(f, ipxe_solicit, sizeof(ipxe_solicit)), 1);
        assert_int_equal(f->tx.buf[0], DHCP6_ADVERTISE);
        uint16_t st, l;
        struct in6_addr got = ia_addr(f, &st);
        assert_memory_equal(&got, &want, 16);
        const uint8_t *pref = find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_PREFERENCE, &l);
        assert_non_null(pref);
        assert_int_equal(l, 1);
        assert_int_equal(pref[0], prefs[i]);
    }
    void *s = second;
    teardown(&s);
}

static void test_ipxe_request_gets_reply_and_binds(void **state)
{
    fixture *f = *state;
    assert_int_equal(send_ll(f, ipxe_request, sizeof(ipxe_request)), 1);
    assert_int_equal(f->tx.buf[0], DHCP6_REPLY);
    uint16_t st;
    struct in6_addr want = addr6("2001:db8:0:1::100");
    struct in6_addr got = ia_addr(f, &st);
    assert_memory_equal(&got, &want, 16);
    assert_int_equal(st, 0);
    assert_url(f, "http://[2001:db8:0:1::1]/boot/52:54:00:12:34:56.ipxe");
    assert_int_equal(f->bound_calls, 1);
    assert_memory_equal(f->bound_mac, web17_mac, 6);
    assert_int_equal(f->bound_kind, DHCP6_CLIENT_IPXE);
    dhcp6_binding *b = dhcp6_bindings_find_host(f->bindings, web17_mac);
    assert_non_null(b);
    assert_true(b->committed);
    assert_int_equal(b->duid_len, 18);
}

static void test_unicast_and_rfc_discards(void **state)
{
    fixture *f = *state;
    /* RFC 9915: unicast from a client is not accepted. */
    assert_int_equal(
        send_from(f, ipxe_solicit, sizeof(ipxe_solicit), "fe80::5054:ff:fe12:3456", false), 0);
    /* A Solicit carrying a Server ID is discarded. */
    uint8_t m[sizeof(ipxe_request)];
    memcpy(m, ipxe_request, sizeof(m));
    m[0] = DHCP6_SOLICIT;
    assert_int_equal(send_ll(f, m, sizeof(m)), 0);
    /* A Request for another server. */
    memcpy(m, ipxe_request, sizeof(m));
    m[35] ^= 0xff;
    assert_int_equal(send_ll(f, m, sizeof(m)), 0);
    /* An Information-request with an IA. */
    memcpy(m, ipxe_solicit, sizeof(ipxe_solicit));
    m[0] = DHCP6_INFORMATION_REQUEST;
    assert_int_equal(send_ll(f, m, sizeof(ipxe_solicit)), 0);
    /* Garbage. */
    assert_int_equal(send_ll(f, ipxe_solicit, 10), 0);
    const dhcp6_server_stats *st = dhcp6_server_get_stats(f->server);
    assert_int_equal(st->dropped, 4);
    assert_int_equal(st->malformed, 1);
    assert_int_equal(st->ignored_no_intent, 0);
}

static void test_unknown_host_is_ignored(void **state)
{
    fixture *f = *state;
    /* Same bytes from another machine's link-local: DUID-UUID names no MAC
     * and the EUI-64 names one without an intent. */
    assert_int_equal(
        send_from(f, ipxe_solicit, sizeof(ipxe_solicit), "fe80::5054:ff:fe99:9999", true), 0);
    /* A privacy link-local gives no MAC at all. */
    assert_int_equal(
        send_from(f, ipxe_solicit, sizeof(ipxe_solicit), "fe80::1c2d:3e4f:5a6b:7c8d", true), 0);
    assert_int_equal(dhcp6_server_get_stats(f->server)->ignored_no_intent, 2);
}

/* Builds a Solicit with the given DUID, IAID, ORO and boot options. */
static size_t make_solicit(uint8_t *buf, uint8_t type, const uint8_t *duid, size_t duid_len,
                           uint32_t iaid, uint16_t arch, const char *vendor, bool with_server,
                           const struct in6_addr *ia_addr_hint)
{
    wcursor w = wcursor_make(buf, 512);
    assert_int_equal(wcursor_put_u8(&w, type), 0);
    assert_int_equal(wcursor_put_bytes(&w, "\x01\x02\x03", 3), 0);
    assert_int_equal(wcursor_put_be16(&w, DHCP6_OPT_CLIENTID), 0);
    assert_int_equal(wcursor_put_be16(&w, (uint16_t)duid_len), 0);
    assert_int_equal(wcursor_put_bytes(&w, duid, duid_len), 0);
    if (with_server) {
        assert_int_equal(wcursor_put_be16(&w, DHCP6_OPT_SERVERID), 0);
        assert_int_equal(wcursor_put_be16(&w, sizeof(server_duid)), 0);
        assert_int_equal(wcursor_put_bytes(&w, server_duid, sizeof(server_duid)), 0);
    }
    assert_int_equal(wcursor_put_be16(&w, DHCP6_OPT_IA_NA), 0);
    assert_int_equal(wcursor_put_be16(&w, ia_addr_hint ? 12 + 28 : 12), 0);
    assert_int_equal(wcursor_put_be32(&w, iaid), 0);
    assert_int_equal(wcursor_put_zeros(&w, 8), 0);
    if (ia_addr_hint) {
        assert_int_equal(wcursor_put_be16(&w, DHCP6_OPT_IAADDR), 0);
        assert_int_equal(wcursor_put_be16(&w, 24), 0);
        assert_int_equal(wcursor_put_bytes(&w, ia_addr_hint, 16), 0);
        assert_int_equal(wcursor_put_zeros(&w, 8), 0);
    }
    if (arch != 0xffff) {
        assert_int_equal(wcursor_put_be16(&w, DHCP6_OPT_CLIENT_ARCH_TYPE), 0);
        assert_int_equal(wcursor_put_be16(&w, 2), 0);
        assert_int_equal(wcursor_put_be16(&w, arch), 0);
    }
    if (vendor) {
        size_t n = strlen(vendor);
        assert_int_equal(wcursor_put_be16(&w, DHCP6_OPT_VENDOR_CLASS), 0);
        assert_int_equal(wcursor_put_be16(&w, (uint16_t)(6 + n)), 0);
        assert_int_equal(wcursor_put_be32(&w, 343), 0);
        assert_int_equal(wcursor_put_be16(&w, (uint16_t)n), 0);
        assert_int_equal(wcursor_put_bytes(&w, vendor, n), 0);
    }
    return wcursor_len(&w);
}

/* EDK2: DUID-UUID with byte-swapped fields, two clients (IP6 config and PXE)
 * at once under one DUID with random IAIDs. Both get the host's address; no
 * refusal, so the firmware never stalls. */
static void test_edk2_two_clients_one_duid(void **state)
{
    fixture *f = *state;
    static const uint8_t edk2_duid[] = { 0x00, 0x04, 0xc4, 0xb3, 0xa2, 0xd1, 0x66, 0x55, 0x78,
                                         0x47, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
    uint8_t m[512];
    struct in6_addr want = addr6("2001:db8:0:1::100");
    uint32_t iaids[] = { 0x1a2b3c4d, 0x77665544 };
    for (size_t i = 0; i < 2; i++) {
        size_t n = make_solicit(m, DHCP6_SOLICIT, edk2_duid, sizeof(edk2_duid), iaids[i], 7,
                                "PXEClient:Arch:00007:UNDI:003000", false, NULL);
        assert_int_equal(send_ll(f, m, n), 1);
        assert_int_equal(f->tx.buf[0], DHCP6_ADVERTISE);
        assert_url(f, "tftp://[2001:db8:0:1::1]/ipxe.efi");
        uint16_t l;
        assert_null(find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_VENDOR_CLASS, &l));
        n = make_solicit(m, DHCP6_REQUEST, edk2_duid, sizeof(edk2_duid), iaids[i], 7,
                         "PXEClient:Arch:00007:UNDI:003000", true, &want);
        assert_int_equal(send_ll(f, m, n), 1);
        uint16_t st;
        struct in6_addr got = ia_addr(f, &st);
        assert_int_equal(st, 0);
        assert_memory_equal(&got, &want, 16);
    }
    assert_int_equal(f->bound_calls, 2);
    assert_int_equal(f->bound_kind, DHCP6_CLIENT_UEFI_PXE);
    /* Then iPXE arrives with its own DUID and gets the same address. */
    assert_int_equal(send_ll(f, ipxe_request, sizeof(ipxe_request)), 1);
    uint16_t st;
    struct in6_addr got = ia_addr(f, &st);
    assert_memory_equal(&got, &want, 16);
    dhcp6_binding *b = dhcp6_bindings_find_host(f->bindings, web17_mac);
    assert_int_equal(b->duid_len, 18);
    assert_memory_equal(b->duid, ipxe_solicit + 8, 18);
}

static void test_uefi_http_boot(void **state)
{
    fixture *f = *state;
    uint8_t m[512];
    static const uint8_t duid[] = { 0x00, 0x04, 1,  2,  3,  4,  5,  6,  7,
                                    8,    9,    10, 11, 12, 13, 14, 15, 16 };
    size_t n = make_solicit(m, DHCP6_SOLICIT, duid, sizeof(duid), 9, 16,
                            "HTTPClient:Arch:00016:UNDI:003000", false, NULL);
    assert_int_equal(send_ll(f, m, n), 1);
    assert_url(f, "http://[2001:db8:0:1::1]/files/ipxe.efi");
    uint16_t l;
    const uint8_t *vc = find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_VENDOR_CLASS, &l);
    assert_non_null(vc);
    assert_int_equal(l, 16);
    assert_memory_equal(vc, "\x00\x00\x01\x57\x00\x0aHTTPClient", 16);
}

/* A profile with uefi_boot = uki: UEFI PXE and UEFI HTTP boot get the
 * host's own kernel image (TFTP and HTTP), no ipxe.efi; iPXE itself (a BIOS
 * host's ROM) still gets the script. */
static void test_uefi_uki(void **state)
{
    fixture *f = *state;
    intents_store_replace(f->store, web17_set(2, UEFI_BOOT_UKI));

    uint8_t m[512];
    static const uint8_t duid[] = { 0x00, 0x04, 1,  2,  3,  4,  5,  6,  7,
                                    8,    9,    10, 11, 12, 13, 14, 15, 16 };
    size_t n = make_solicit(m, DHCP6_SOLICIT, duid, sizeof(duid), 9, 7,
                            "PXEClient:Arch:00007:UNDI:003000", false, NULL);
    assert_int_equal(send_ll(f, m, n), 1);
    assert_url(f, "tftp://[2001:db8:0:1::1]/boot/52-54-00-12-34-56.efi");
    uint16_t l;
    assert_null(find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_VENDOR_CLASS, &l));

    n = make_solicit(m, DHCP6_SOLICIT, duid, sizeof(duid), 9, 16,
                     "HTTPClient:Arch:00016:UNDI:003000", false, NULL);
    assert_int_equal(send_ll(f, m, n), 1);
    assert_url(f, "http://[2001:db8:0:1::1]/boot/52-54-00-12-34-56.efi");
    /* HTTP boot needs its vendor class echoed, as for ipxe.efi */
    assert_non_null(find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_VENDOR_CLASS, &l));

    assert_int_equal(send_ll(f, ipxe_solicit, sizeof(ipxe_solicit)), 1);
    assert_url(f, "http://[2001:db8:0:1::1]/boot/52:54:00:12:34:56.ipxe");
}

/* The installer (NetworkManager) with DUID-LL from a privacy link-local. */
static void test_duid_ll_client(void **state)
{
    fixture *f = *state;
    static const uint8_t duid_ll[] = { 0x00, 0x03, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    uint8_t m[512];
    size_t n =
        make_solicit(m, DHCP6_SOLICIT, duid_ll, sizeof(duid_ll), 1, 0xffff, NULL, false, NULL);
    assert_int_equal(send_from(f, m, n, "fe80::1c2d:3e4f:5a6b:7c8d", true), 1);
    assert_url(f, "http://[2001:db8:0:1::1]/boot/52:54:00:12:34:56.ipxe");
}

static void test_renew_rebind_release(void **state)
{
    fixture *f = *state;
    struct in6_addr want = addr6("2001:db8:0:1::100");
    struct in6_addr old = addr6("2001:db8:0:1::99");
    static const uint8_t duid_ll[] = { 0x00, 0x03, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    uint8_t m[512];
    uint16_t st;

    size_t n = make_solicit(m, DHCP6_RENEW, duid_ll, sizeof(duid_ll), 5, 0xffff, NULL, true, &old);
    assert_int_equal(send_ll(f, m, n), 1);
    assert_int_equal(f->tx.buf[0], DHCP6_REPLY);
    struct in6_addr got = ia_addr(f, &st);
    assert_memory_equal(&got, &want, 16);

    n = make_solicit(m, DHCP6_REBIND, duid_ll, sizeof(duid_ll), 5, 0xffff, NULL, false, &want);
    assert_int_equal(send_ll(f, m, n), 1);
    got = ia_addr(f, &st);
    assert_memory_equal(&got, &want, 16);

    /* A host without an intent renewing: NoBinding. */
    static const uint8_t other[] = { 0x00, 0x03, 0x00, 0x01, 0x52, 0x54, 0x00, 0x99, 0x99, 0x99 };
    n = make_solicit(m, DHCP6_RENEW, other, sizeof(other), 5, 0xffff, NULL, true, &want);
    /* Only answered at all because the pool is configured in this case. */
    fixture *pf = make_fixture(true, false);
    assert_int_equal(send_from(pf, m, n, "fe80::5054:ff:fe99:9999", true), 1);
    ia_addr(pf, &st);
    assert_int_equal(st, DHCP6_STATUS_NO_BINDING);
    void *ps = pf;
    teardown(&ps);

    n = make_solicit(m, DHCP6_RELEASE, duid_ll, sizeof(duid_ll), 5, 0xffff, NULL, true, &want);
    assert_int_equal(send_ll(f, m, n), 1);
    uint16_t l;
    const uint8_t *s = find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_STATUS_CODE, &l);
    assert_non_null(s);
    assert_int_equal(s[1], DHCP6_STATUS_SUCCESS);
    assert_null(dhcp6_bindings_find_host(f->bindings, web17_mac));
}

static void test_confirm(void **state)
{
    fixture *f = *state;
    static const uint8_t duid_ll[] = { 0x00, 0x03, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    uint8_t m[512];
    uint16_t l;
    struct in6_addr here = addr6("2001:db8:0:1::100"), away = addr6("2001:db8:9::100");
    size_t n =
        make_solicit(m, DHCP6_CONFIRM, duid_ll, sizeof(duid_ll), 5, 0xffff, NULL, false, &here);
    assert_int_equal(send_ll(f, m, n), 1);
    const uint8_t *s = find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_STATUS_CODE, &l);
    assert_int_equal(s[1], DHCP6_STATUS_SUCCESS);
    n = make_solicit(m, DHCP6_CONFIRM, duid_ll, sizeof(duid_ll), 5, 0xffff, NULL, false, &away);
    assert_int_equal(send_ll(f, m, n), 1);
    s = find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_STATUS_CODE, &l);
    assert_int_equal(s[1], DHCP6_STATUS_NOT_ON_LINK);
    /* No addresses: no answer (§18.3.3). */
    n = make_solicit(m, DHCP6_CONFIRM, duid_ll, sizeof(duid_ll), 5, 0xffff, NULL, false, NULL);
    assert_int_equal(send_ll(f, m, n), 0);
}

/* A relayed Solicit for web17, as the ToR relay at `relay` forwards it. */
static size_t relayed_ipxe_solicit(uint8_t *fw)
{
    memcpy(fw, relay_forw_head, sizeof(relay_forw_head));
    size_t n = sizeof(relay_forw_head);
    fw[n++] = 0;
    fw[n++] = DHCP6_OPT_RELAY_MSG;
    fw[n++] = 0;
    fw[n++] = sizeof(ipxe_solicit);
    memcpy(fw + n, ipxe_solicit, sizeof(ipxe_solicit));
    return n + sizeof(ipxe_solicit);
}

static void test_relayed_solicit(void **state)
{
    fixture *f = *state;
    /* The client's peer address is a privacy address, so only option 79 can
     * name the host. */
    uint8_t fw[512];
    size_t n = relayed_ipxe_solicit(fw);
    memcpy(fw + 18, "\xfe\x80\0\0\0\0\0\0\x1c\x2d\x3e\x4f\x5a\x6b\x7c\x8d", 16);
    /* Relays unicast to the server; that is fine. */
    assert_int_equal(send_from(f, fw, n, tor_relay, false), 1);
    assert_int_equal(f->tx.buf[0], DHCP6_RELAY_REPL);
    assert_int_equal(f->tx.dst_port, 547);
    struct in6_addr relay = addr6(tor_relay);
    assert_memory_equal(&f->tx.dst, &relay, 16);
    /* Interface-Id echoed, then the Advertise inside option 9. */
    assert_memory_equal(f->tx.buf + 34,
                        "\x00\x12\x00\x06"
                        "Eth1/7",
                        10);
    assert_int_equal(f->tx.buf[48], DHCP6_ADVERTISE);
    /* Any relay inside a trusted prefix is answered too. */
    assert_int_equal(send_from(f, fw, n, "2001:db8:fe::9", false), 1);
    assert_int_equal(f->tx.buf[0], DHCP6_RELAY_REPL);
    assert_int_equal(dhcp6_server_get_stats(f->server)->relay_untrusted, 0);
}

/* Issue #10: by default no relay is trusted. A Relay-forward from anyone
 * would otherwise let any host on any routed network claim any MAC through
 * option 79 and take that host's reservation and boot file. */
static void test_relay_untrusted_is_dropped(void **state)
{
    fixture *f = *state;
    uint8_t fw[512];
    size_t n = relayed_ipxe_solicit(fw);
    assert_int_equal(send_from(f, fw, n, "2001:db8:0:1::fffe", false), 0);
    assert_int_equal(send_from(f, fw, n, "2001:db8:0:1::fffe", true), 0);
    const dhcp6_server_stats *st = dhcp6_server_get_stats(f->server);
    assert_int_equal(st->advertise, 0);
    assert_int_equal(st->relay_untrusted, 2);

    /* With relays configured, the others are still refused: an address next
     * to the trusted one, one just outside the trusted /64, and a relay's
     * message sent from a link-local address. */
    fixture *rf = make_relay_fixture();
    assert_int_equal(send_from(rf, fw, n, "2001:db8:ff::2", false), 0);
    assert_int_equal(send_from(rf, fw, n, "2001:db8:fe:1::9", false), 0);
    assert_int_equal(send_from(rf, fw, n, "fe80::1", true), 0);
    assert_int_equal(dhcp6_server_get_stats(rf->server)->relay_untrusted, 3);
    assert_int_equal(send_from(rf, fw, n, tor_relay, false), 1);
    void *rs = rf;
    teardown(&rs);
}

/* Issue #10: a client on the link sends from its link-local address (RFC
 * 8415 §13.1); a direct message from a global source did not come from a
 * client on a served link. */
static void test_direct_from_global_source_is_dropped(void **state)
{
    fixture *f = *state;
    static const uint8_t duid_ll[] = { 0x00, 0x03, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    uint8_t m[512];
    size_t n =
        make_solicit(m, DHCP6_SOLICIT, duid_ll, sizeof(duid_ll), 1, 0xffff, NULL, false, NULL);
    assert_int_equal(send_from(f, m, n, "2001:db8:0:1::55", true), 0);
    assert_int_equal(send_from(f, m, n, "::1", true), 0);
    assert_int_equal(send_from(f, m, n, "::", true), 0);
    const dhcp6_server_stats *st = dhcp6_server_get_stats(f->server);
    assert_int_equal(st->direct_not_link_local, 3);
    assert_int_equal(st->advertise, 0);
    /* The same Solicit from a link-local source is answered. */
    assert_int_equal(send_from(f, m, n, "fe80::1c2d:3e4f:5a6b:7c8d", true), 1);
    /* A trusted relay's address does not make its direct messages
     * acceptable: only a Relay-forward is spoken for by a relay. */
    fixture *rf = make_relay_fixture();
    assert_int_equal(send_from(rf, m, n, tor_relay, true), 0);
    assert_int_equal(dhcp6_server_get_stats(rf->server)->direct_not_link_local, 1);
    void *rs = rf;
    teardown(&rs);
}

static void test_pool_and_exhaustion(void **state)
{
    fixture *f = make_fixture(true, false);
    uint8_t m[512];
    uint16_t st;
    for (int i = 0; i < 3; i++) {
        uint8_t duid[] = { 0x00, 0x03, 0x00, 0x01, 0x02, 0x11, 0x22, 0x33, 0x44, (uint8_t)i };
        size_t n = make_solicit(m, DHCP6_SOLICIT, duid, sizeof(duid), 1, 0xffff, NULL, false, NULL);
        assert_int_equal(send_from(f, m, n, "fe80::1", true), 1);
        if (i < 2) {
            struct in6_addr got = ia_addr(f, &st);
            assert_int_equal(st, 0);
            assert_true(dhcp6_bindings_in_pool(f->bindings, &got));
            /* Pool hosts get an address and DNS but no boot file. */
            assert_url(f, NULL);
        } else {
            uint16_t l;
            assert_null(find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_IA_NA, &l));
            const uint8_t *s = find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_STATUS_CODE, &l);
            assert_non_null(s);
            assert_int_equal(s[1], DHCP6_STATUS_NO_ADDRS_AVAIL);
        }
    }
    /* The same client asking again keeps its address. */
    uint8_t duid0[] = { 0x00, 0x03, 0x00, 0x01, 0x02, 0x11, 0x22, 0x33, 0x44, 0 };
    size_t n = make_solicit(m, DHCP6_SOLICIT, duid0, sizeof(duid0), 1, 0xffff, NULL, false, NULL);
    assert_int_equal(send_from(f, m, n, "fe80::1", true), 1);
    struct in6_addr got = ia_addr(f, &st);
    struct in6_addr first = addr6("2001:db8:0:1::1000");
    assert_memory_equal(&got, &first, 16);
    void *s = f;
    teardown(&s);
}

static size_t pool_solicit(uint8_t *m, uint32_t client)
{
    uint8_t duid[] = { 0x00,
                       0x03,
                       0x00,
                       0x01,
                       0x02,
                       0x00,
                       (uint8_t)(client >> 24),
                       (uint8_t)(client >> 16),
                       (uint8_t)(client >> 8),
                       (uint8_t)client };
    return make_solicit(m, DHCP6_SOLICIT, duid, sizeof(duid), 1, 0xffff, NULL, false, NULL);
}

static bool answered_no_addrs(const fixture *f)
{
    uint16_t l;
    const uint8_t *s = find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_STATUS_CODE, &l);
    return f->tx.buf[0] == DHCP6_ADVERTISE && s && s[1] == DHCP6_STATUS_NO_ADDRS_AVAIL &&
           !find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_IA_NA, &l);
}

/* Issue #10: with the pool full, every Solicit scanned the whole pool. Now
 * it is answered NoAddrsAvail (§18.3.9) after a constant number of address
 * lookups, counted rather than timed. */
static void test_full_pool_answered_quickly(void **state)
{
    fixture *f = make_fixture_full(true, false, "2001:db8:0:1::13ff", NULL, 0,
                                   DHCP6_PREFERENCE_MAX); /* 1,024 */
    uint8_t m[512];
    for (uint32_t i = 0; i < 1024; i++) {
        assert_int_equal(send_from(f, m, pool_solicit(m, i), "fe80::1", true), 1);
        assert_false(answered_no_addrs(f));
    }
    const dhcp6_bindings_stats *bs = dhcp6_bindings_get_stats(f->bindings);
    uint64_t before = bs->pool_probes;
    for (uint32_t i = 0; i < 300; i++) { /* a second of the flood measured in the issue */
        assert_int_equal(send_from(f, m, pool_solicit(m, 5000 + i), "fe80::1", true), 1);
        assert_true(answered_no_addrs(f));
    }
    uint64_t per_solicit = (bs->pool_probes - before) / 300;
    print_message("server: probes per Solicit on a full pool of 1024: %llu\n",
                  (unsigned long long)per_solicit);
    assert_true(per_solicit <= 4);
    assert_int_equal(dhcp6_server_get_stats(f->server)->no_addrs, 300);
    void *s = f;
    teardown(&s);
}

/* The per-interface cap: the ninth new client on a link with a cap of 8 is
 * answered NoAddrsAvail though the pool has room. */
static void test_pool_cap_per_interface(void **state)
{
    fixture *f =
        make_fixture_full(true, false, "2001:db8:0:1::13ff", NULL, 0, DHCP6_PREFERENCE_MAX);
    dhcp6_bindings_set_max_per_interface(f->bindings, 8);
    uint8_t m[512];
    for (uint32_t i = 0; i < 8; i++) {
        assert_int_equal(send_from(f, m, pool_solicit(m, i), "fe80::1", true), 1);
        assert_false(answered_no_addrs(f));
    }
    assert_int_equal(send_from(f, m, pool_solicit(m, 8), "fe80::1", true), 1);
    assert_true(answered_no_addrs(f));
    assert_int_equal(dhcp6_bindings_count(f->bindings), 8);
    void *s = f;
    teardown(&s);
}

static void test_rapid_commit(void **state)
{
    fixture *f = make_fixture(false, true);
    uint8_t m[sizeof(ipxe_solicit) + 4];
    memcpy(m, ipxe_solicit, sizeof(ipxe_solicit));
    memcpy(m + sizeof(ipxe_solicit), "\x00\x0e\x00\x00", 4);
    assert_int_equal(send_ll(f, m, sizeof(m)), 1);
    assert_int_equal(f->tx.buf[0], DHCP6_REPLY);
    uint16_t l;
    assert_non_null(find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_RAPID_COMMIT, &l));
    assert_int_equal(f->bound_calls, 1);
    /* Without the client's option 14 it is a normal Advertise. */
    assert_int_equal(send_ll(f, ipxe_solicit, sizeof(ipxe_solicit)), 1);
    assert_int_equal(f->tx.buf[0], DHCP6_ADVERTISE);
    void *s = f;
    teardown(&s);
}

/* EDK2 binds its IP6-config and PXE IAs under one DUID, then releases them
 * one at a time: the first Release must not take the address from the
 * second, which is still using it. */
static void test_release_one_of_two_holders(void **state)
{
    fixture *f = *state;
    static const uint8_t edk2_duid[] = { 0x00, 0x04, 0xc4, 0xb3, 0xa2, 0xd1, 0x66, 0x55, 0x78,
                                         0x47, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
    struct in6_addr want = addr6("2001:db8:0:1::100");
    uint8_t m[512];
    uint16_t st;
    for (uint32_t iaid = 1; iaid <= 2; iaid++) {
        size_t n = make_solicit(m, DHCP6_REQUEST, edk2_duid, sizeof(edk2_duid), iaid, 7,
                                "PXEClient:Arch:00007:UNDI:003000", true, &want);
        assert_int_equal(send_ll(f, m, n), 1);
    }
    size_t n =
        make_solicit(m, DHCP6_RELEASE, edk2_duid, sizeof(edk2_duid), 1, 0xffff, NULL, true, &want);
    assert_int_equal(send_ll(f, m, n), 1);
    assert_non_null(dhcp6_bindings_find_host(f->bindings, web17_mac));
    /* The second IA's Release is answered without NoBinding and frees it. */
    n = make_solicit(m, DHCP6_RELEASE, edk2_duid, sizeof(edk2_duid), 2, 0xffff, NULL, true, &want);
    assert_int_equal(send_ll(f, m, n), 1);
    uint16_t l;
    assert_null(find_opt(f->tx.buf, f->tx.len, DHCP6_OPT_IA_NA, &l));
    (void)st;
    assert_null(dhcp6_bindings_find_host(f->bindings, web17_mac));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ipxe_solicit_gets_advertise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_netboot_done_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipxe_request_gets_reply_and_binds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unicast_and_rfc_discards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_host_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edk2_two_clients_one_duid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uefi_http_boot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uefi_uki, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duid_ll_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renew_rebind_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_confirm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relayed_solicit, setup_relays, teardown),
        cmocka_unit_test_setup_teardown(test_release_one_of_two_holders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_untrusted_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_from_global_source_is_dropped, setup, teardown),
        cmocka_unit_test(test_pool_and_exhaustion),
        cmocka_unit_test(test_rapid_commit),
        cmocka_unit_test_setup_teardown(test_second_agent_advertises_lower_preference, setup,
                                        teardown),
        cmocka_unit_test(test_full_pool_answered_quickly),
        cmocka_unit_test(test_pool_cap_per_interface),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

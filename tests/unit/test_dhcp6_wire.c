/* rack-agent/dhcp6/wire: parsing iPXE's real messages, building the answer
 * byte for byte, relays, and every kind of malformed input. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dhcp6_vectors.h"
#include "dhcp6/wire.h"

static struct in6_addr addr6(const char *s)
{
    struct in6_addr a;
    assert_int_equal(inet_pton(AF_INET6, s, &a), 1);
    return a;
}

static const uint8_t server_duid[] = { 0x00, 0x03, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };

/* The answer whose Advertise encoding is ipxe_advertise: the reserved
 * address, DNS, search list and boot URL of the reference vector. The DNS
 * address and encoded domains live in the caller's storage. */
static dhcp6_answer reference_answer(struct in6_addr *dns, uint8_t *domains, size_t cap)
{
    *dns = addr6("2001:db8:0:1::53");
    wcursor dw = wcursor_make(domains, cap);
    assert_int_equal(dhcp6_put_domain(&dw, "rack1.example.com"), 0);
    return (dhcp6_answer){
        .type = DHCP6_ADVERTISE,
        .server_id = server_duid,
        .server_id_len = sizeof(server_duid),
        .n_ia = 1,
        .ia = { { .iaid = 0xaa55b0df,
                  .t1 = 1800,
                  .t2 = 2880,
                  .has_addr = true,
                  .addr = addr6("2001:db8:0:1::100"),
                  .preferred = 3600,
                  .valid = 7200 } },
        .dns = dns,
        .n_dns = 1,
        .domain_list = domains,
        .domain_list_len = (uint16_t)wcursor_len(&dw),
        .bootfile_url = "http://[2001:db8:0:1::1]/boot.ipxe",
    };
}

static void test_parse_ipxe_solicit(void **state)
{
    dhcp6_packet p;
    assert_int_equal(dhcp6_packet_parse(ipxe_solicit, sizeof(ipxe_solicit), &p), 0);
    assert_int_equal(sizeof(ipxe_solicit), 125);
    assert_int_equal(p.n_relays, 0);
    assert_int_equal(p.msg.type, DHCP6_SOLICIT);
    assert_memory_equal(p.msg.xid, "\x5a\x1b\x2c", 3);
    assert_int_equal(p.msg.client_id_len, 18);
    assert_ptr_equal(p.msg.client_id, ipxe_solicit + 8);
    assert_null(p.msg.server_id);
    assert_int_equal(p.msg.n_ia_na, 1);
    assert_int_equal(p.msg.ia_na[0].iaid, 0xaa55b0df);
    assert_int_equal(p.msg.ia_na[0].n_addrs, 0);
    assert_int_equal(p.msg.n_oro, 4);
    assert_true(dhcp6_msg_requests(&p.msg, DHCP6_OPT_BOOTFILE_URL));
    assert_false(dhcp6_msg_requests(&p.msg, DHCP6_OPT_RAPID_COMMIT));
    assert_int_equal(p.msg.vendor, DHCP6_VENDOR_PXE_CLIENT);
    assert_int_equal(p.msg.n_arch, 1);
    assert_int_equal(p.msg.arch[0], 7);
    assert_true(p.msg.user_class_ipxe);
    assert_false(p.msg.rapid_commit);
    assert_true(p.msg.has_elapsed);
}

static void test_build_advertise_matches_vector(void **state)
{
    dhcp6_packet p;
    assert_int_equal(dhcp6_packet_parse(ipxe_solicit, sizeof(ipxe_solicit), &p), 0);

    struct in6_addr dns;
    uint8_t domains[64];
    dhcp6_answer a = reference_answer(&dns, domains, sizeof(domains));
    uint8_t out[512];
    wcursor w = wcursor_make(out, sizeof(out));
    int n = dhcp6_answer_build(&p, &a, &w);
    assert_int_equal(n, sizeof(ipxe_advertise));
    assert_memory_equal(out, ipxe_advertise, sizeof(ipxe_advertise));

    /* One byte too small: -ENOSPC and nothing claimed as written. */
    wcursor tight = wcursor_make(out, sizeof(ipxe_advertise) - 1);
    assert_int_equal(dhcp6_answer_build(&p, &a, &tight), -ENOSPC);
    assert_int_equal(wcursor_len(&tight), 0);
}

static void test_parse_ipxe_request(void **state)
{
    dhcp6_packet p;
    assert_int_equal(dhcp6_packet_parse(ipxe_request, sizeof(ipxe_request), &p), 0);
    assert_int_equal(p.msg.type, DHCP6_REQUEST);
    assert_int_equal(p.msg.server_id_len, sizeof(server_duid));
    assert_memory_equal(p.msg.server_id, server_duid, sizeof(server_duid));
    assert_int_equal(p.msg.ia_na[0].n_addrs, 1);
    struct in6_addr want = addr6("2001:db8:0:1::100");
    assert_memory_equal(&p.msg.ia_na[0].addrs[0], &want, 16);
}

/* Offsets where an option of the Solicit starts: a prefix that ends there is
 * a well-formed (if useless) message, any other prefix is malformed. */
static void test_every_truncation(void **state)
{
    size_t boundaries[32], nb = 0;
    size_t off = 4;
    boundaries[nb++] = 4;
    while (off < sizeof(ipxe_solicit)) {
        off += 4 + (size_t)((ipxe_solicit[off + 2] << 8) | ipxe_solicit[off + 3]);
        boundaries[nb++] = off;
    }
    assert_int_equal(off, sizeof(ipxe_solicit));
    for (size_t len = 0; len <= sizeof(ipxe_solicit); len++) {
        bool at_boundary = false;
        for (size_t i = 0; i < nb; i++) {
            at_boundary |= boundaries[i] == len;
        }
        /* An exact-size copy so ASan sees any read past the end. */
        uint8_t *copy = test_malloc(len ? len : 1);
        memcpy(copy, ipxe_solicit, len);
        dhcp6_packet p;
        int r = dhcp6_packet_parse(copy, len, &p);
        test_free(copy);
        if (at_boundary) {
            assert_int_equal(r, 0);
        } else {
            assert_int_equal(r, -EBADMSG);
        }
    }
}

static void test_option_length_past_end(void **state)
{
    uint8_t m[sizeof(ipxe_solicit)];
    memcpy(m, ipxe_solicit, sizeof(m));
    m[6] = 0x00;
    m[7] = 0x13; /* client id claims 19 bytes inside a 18-byte slot: shifts */
    dhcp6_packet p;
    assert_int_equal(dhcp6_packet_parse(m, sizeof(m), &p), -EBADMSG);

    /* IA_NA whose inner IAADDR runs past the IA's own end. */
    static const uint8_t bad_ia[] = {
        0x03, 0x01, 0x02, 0x03, 0x00, 0x01, 0x00, 0x04, 0x00, 0x03, 0x00, 0x01, 0x00,
        0x03, 0x00, 0x10, 0,    0,    0,    1,    0,    0,    0,    0,    0,    0,
        0,    0,    0x00, 0x05, 0x00, 0x18, 0,    0,    0,    0, /* 24 claimed, 0 there */
    };
    assert_int_equal(dhcp6_packet_parse(bad_ia, sizeof(bad_ia), &p), -EBADMSG);

    /* A user class entry longer than its option. */
    static const uint8_t bad_uc[] = { 0x01, 0, 0, 1, 0x00, 0x0f, 0x00, 0x03, 0x00, 0x09, 'i' };
    assert_int_equal(dhcp6_packet_parse(bad_uc, sizeof(bad_uc), &p), -EBADMSG);
}

static void test_malformed_fields(void **state)
{
    dhcp6_packet p;
    /* Server-to-client and unknown message types never reach a server. */
    assert_int_equal(dhcp6_packet_parse(ipxe_advertise, sizeof(ipxe_advertise), &p), -EBADMSG);
    static const uint8_t reply_hdr[] = { 0x07, 1, 2, 3 };
    assert_int_equal(dhcp6_packet_parse(reply_hdr, sizeof(reply_hdr), &p), -EBADMSG);
    static const uint8_t unknown[] = { 0x63, 1, 2, 3 };
    assert_int_equal(dhcp6_packet_parse(unknown, sizeof(unknown), &p), -EBADMSG);
    /* Shorter than the 4-byte header. */
    assert_int_equal(dhcp6_packet_parse(ipxe_solicit, 3, &p), -EBADMSG);
    /* ORO with an odd length. */
    static const uint8_t odd_oro[] = { 0x01, 0, 0, 1, 0x00, 0x06, 0x00, 0x03, 0, 23, 0 };
    assert_int_equal(dhcp6_packet_parse(odd_oro, sizeof(odd_oro), &p), -EBADMSG);
    /* Rapid Commit must be empty. */
    static const uint8_t rc[] = { 0x01, 0, 0, 1, 0x00, 0x0e, 0x00, 0x01, 0 };
    assert_int_equal(dhcp6_packet_parse(rc, sizeof(rc), &p), -EBADMSG);
    /* A DUID of 2 bytes (type only) and one of 131 bytes. */
    static const uint8_t tiny_duid[] = { 0x01, 0, 0, 1, 0x00, 0x01, 0x00, 0x02, 0x00, 0x03 };
    assert_int_equal(dhcp6_packet_parse(tiny_duid, sizeof(tiny_duid), &p), -EBADMSG);
    uint8_t big_duid[4 + 4 + 131] = { 0x01, 0, 0, 1, 0x00, 0x01, 0x00, 131, 0x00, 0x02 };
    assert_int_equal(dhcp6_packet_parse(big_duid, sizeof(big_duid), &p), -EBADMSG);
    big_duid[7] = 130;
    assert_int_equal(dhcp6_packet_parse(big_duid, sizeof(big_duid) - 1, &p), 0);
    /* Two Client IDs are ambiguous. */
    uint8_t two[4 + 2 * 22];
    memcpy(two, ipxe_solicit, 26);
    memcpy(two + 26, ipxe_solicit + 4, 22);
    assert_int_equal(dhcp6_packet_parse(two, 48, &p), -EBADMSG);
}

static void test_huge_oro_and_many_ias(void **state)
{
    /* An ORO of 1000 codes: kept to the cap, not an error. */
    uint8_t m[4 + 4 + 2000];
    m[0] = DHCP6_SOLICIT;
    m[1] = m[2] = m[3] = 9;
    m[4] = 0;
    m[5] = DHCP6_OPT_ORO;
    m[6] = (uint8_t)(2000 >> 8);
    m[7] = (uint8_t)2000;
    for (size_t i = 0; i < 1000; i++) {
        m[8 + 2 * i] = 0;
        m[9 + 2 * i] = (uint8_t)i;
    }
    dhcp6_packet p;
    assert_int_equal(dhcp6_packet_parse(m, sizeof(m), &p), 0);
    assert_int_equal(p.msg.n_oro, DHCP6_MAX_ORO);

    /* 20 IA_NAs: the first DHCP6_MAX_IA kept. */
    uint8_t ias[4 + 20 * 16];
    ias[0] = DHCP6_SOLICIT;
    ias[1] = ias[2] = ias[3] = 1;
    for (size_t i = 0; i < 20; i++) {
        uint8_t *o = ias + 4 + 16 * i;
        memset(o, 0, 16);
        o[1] = DHCP6_OPT_IA_NA;
        o[3] = 12;
        o[7] = (uint8_t)i;
    }
    assert_int_equal(dhcp6_packet_parse(ias, sizeof(ias), &p), 0);
    assert_int_equal(p.msg.n_ia_na, DHCP6_MAX_IA);
    assert_int_equal(p.msg.ia_na[7].iaid, 7);
}

/* Wraps `inner` in `depth` Relay-forward layers into buf; returns length. */
static size_t wrap_relays(uint8_t *buf, size_t cap, const uint8_t *inner, size_t inner_len,
                          size_t depth)
{
    size_t len = inner_len;
    memmove(buf + cap - len, inner, len);
    size_t start = cap - len;
    for (size_t d = 0; d < depth; d++) {
        size_t hdr = 34 + 4;
        assert_true(start >= hdr);
        start -= hdr;
        uint8_t *h = buf + start;
        memset(h, 0, hdr);
        h[0] = DHCP6_RELAY_FORW;
        h[1] = (uint8_t)d; /* the relay nearest the client has hop count 0 */
        h[35] = DHCP6_OPT_RELAY_MSG;
        h[36] = (uint8_t)(len >> 8);
        h[37] = (uint8_t)len;
        len += hdr;
    }
    memmove(buf, buf + start, len);
    return len;
}

static void test_relay_forward_and_reply(void **state)
{
    uint8_t fw[512];
    memcpy(fw, relay_forw_head, sizeof(relay_forw_head));
    size_t n = sizeof(relay_forw_head);
    fw[n++] = 0x00;
    fw[n++] = DHCP6_OPT_RELAY_MSG;
    fw[n++] = 0x00;
    fw[n++] = sizeof(ipxe_solicit);
    memcpy(fw + n, ipxe_solicit, sizeof(ipxe_solicit));
    n += sizeof(ipxe_solicit);
    assert_int_equal(n, 185);

    dhcp6_packet p;
    assert_int_equal(dhcp6_packet_parse(fw, n, &p), 0);
    assert_int_equal(p.n_relays, 1);
    assert_true(p.relays[0].has_lladdr);
    assert_memory_equal(p.relays[0].lladdr, "\x52\x54\x00\x12\x34\x56", 6);
    assert_int_equal(p.relays[0].interface_id_len, 6);
    assert_memory_equal(p.relays[0].interface_id, "Eth1/7", 6);
    assert_int_equal(p.msg.type, DHCP6_SOLICIT);

    /* The Relay-reply around the same Advertise as the direct case. */
    struct in6_addr dns;
    uint8_t domains[64];
    dhcp6_answer a = reference_answer(&dns, domains, sizeof(domains));
    uint8_t out[512];
    wcursor w = wcursor_make(out, sizeof(out));
    int len = dhcp6_answer_build(&p, &a, &w);
    assert_int_equal(len, 34 + 10 + 4 + 165);
    assert_int_equal(out[0], DHCP6_RELAY_REPL);
    assert_int_equal(out[1], 0);
    assert_memory_equal(out + 2, relay_forw_head + 2, 32); /* link + peer copied */
    static const uint8_t ifid_then_msg[] = { 0x00, 0x12, 0x00, 0x06, 'E',  't',  'h',
                                             '1',  '/',  '7',  0x00, 0x09, 0x00, 0xa5 };
    assert_memory_equal(out + 34, ifid_then_msg, sizeof(ifid_then_msg));
    assert_memory_equal(out + 48, ipxe_advertise, sizeof(ipxe_advertise));
    /* Option 79 is never echoed towards the client. */
    for (int i = 0; i + 1 < len; i++) {
        assert_false(out[i] == 0x00 && out[i + 1] == 0x4f && i < 48);
    }
}

static void test_nested_relays(void **state)
{
    uint8_t buf[4096];
    dhcp6_packet p;
    size_t n =
        wrap_relays(buf, sizeof(buf), ipxe_solicit, sizeof(ipxe_solicit), DHCP6_MAX_RELAY_DEPTH);
    assert_int_equal(dhcp6_packet_parse(buf, n, &p), 0);
    assert_int_equal(p.n_relays, DHCP6_MAX_RELAY_DEPTH);
    assert_int_equal(p.relays[DHCP6_MAX_RELAY_DEPTH - 1].hop_count, 0);

    /* The reply unwinds every layer in order. */
    dhcp6_answer a = { .type = DHCP6_REPLY,
                       .server_id = server_duid,
                       .server_id_len = sizeof(server_duid) };
    uint8_t out[2048];
    wcursor w = wcursor_make(out, sizeof(out));
    int len = dhcp6_answer_build(&p, &a, &w);
    assert_true(len > 0);
    cursor c = cursor_make(out, (size_t)len);
    for (size_t d = 0; d < DHCP6_MAX_RELAY_DEPTH; d++) {
        uint8_t type, hop;
        uint16_t code, olen;
        assert_int_equal(cursor_read_u8(&c, &type), 0);
        assert_int_equal(type, DHCP6_RELAY_REPL);
        assert_int_equal(cursor_read_u8(&c, &hop), 0);
        assert_int_equal(hop, DHCP6_MAX_RELAY_DEPTH - 1 - d);
        assert_int_equal(cursor_skip(&c, 32), 0);
        assert_int_equal(cursor_read_be16(&c, &code), 0);
        assert_int_equal(code, DHCP6_OPT_RELAY_MSG);
        assert_int_equal(cursor_read_be16(&c, &olen), 0);
        assert_int_equal(olen, cursor_remaining(&c));
    }
    uint8_t type;
    assert_int_equal(cursor_read_u8(&c, &type), 0);
    assert_int_equal(type, DHCP6_REPLY);

    /* One layer past the hop limit is dropped. */
    n = wrap_relays(buf, sizeof(buf), ipxe_solicit, sizeof(ipxe_solicit),
                    DHCP6_MAX_RELAY_DEPTH + 1);
    assert_int_equal(dhcp6_packet_parse(buf, n, &p), -EBADMSG);

    /* A relay with no Relay Message option is dropped. */
    assert_int_equal(dhcp6_packet_parse(relay_forw_head, sizeof(relay_forw_head), &p), -EBADMSG);
    /* A relay header cut short. */
    assert_int_equal(dhcp6_packet_parse(relay_forw_head, 33, &p), -EBADMSG);
}

static void test_mac_sources(void **state)
{
    uint8_t mac[6];
    static const uint8_t duid_ll[] = { 0x00, 0x03, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    static const uint8_t duid_llt[] = { 0x00, 0x01, 0x00, 0x01, 0x2b, 0x3c, 0x4d,
                                        0x5e, 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
    static const uint8_t duid_uuid[] = { 0x00, 0x04, 1,  2,  3,  4,  5,  6,  7,
                                         8,    9,    10, 11, 12, 13, 14, 15, 16 };
    static const uint8_t duid_ll_ib[] = { 0x00, 0x03, 0x00, 0x20, 1, 2, 3, 4, 5, 6 };
    assert_int_equal(dhcp6_duid_mac(duid_ll, sizeof(duid_ll), mac), 0);
    assert_memory_equal(mac, "\x52\x54\x00\x12\x34\x56", 6);
    assert_int_equal(dhcp6_duid_mac(duid_llt, sizeof(duid_llt), mac), 0);
    assert_memory_equal(mac, "\x52\x54\x00\xab\xcd\xef", 6);
    assert_int_equal(dhcp6_duid_mac(duid_uuid, sizeof(duid_uuid), mac), -ENOENT);
    assert_int_equal(dhcp6_duid_mac(duid_ll_ib, sizeof(duid_ll_ib), mac), -ENOENT);
    assert_int_equal(dhcp6_duid_mac(duid_llt, 7, mac), -EBADMSG);

    struct in6_addr ll = addr6("fe80::5054:ff:fe12:3456");
    assert_int_equal(dhcp6_eui64_mac(&ll, mac), 0);
    assert_memory_equal(mac, "\x52\x54\x00\x12\x34\x56", 6);
    struct in6_addr privacy = addr6("fe80::1c2d:3e4f:5a6b:7c8d");
    assert_int_equal(dhcp6_eui64_mac(&privacy, mac), -ENOENT);
}

static void test_domain_encoding(void **state)
{
    uint8_t buf[64];
    wcursor w = wcursor_make(buf, sizeof(buf));
    assert_int_equal(dhcp6_put_domain(&w, "a.bc."), 0);
    assert_int_equal(wcursor_len(&w), 6);
    assert_memory_equal(buf,
                        "\x01"
                        "a"
                        "\x02"
                        "bc"
                        "\x00",
                        6);
    assert_int_equal(dhcp6_put_domain(&w, "a..b"), -EINVAL);
    assert_int_equal(dhcp6_put_domain(&w, ""), -EINVAL);
    assert_int_equal(dhcp6_put_domain(&w, "."), -EINVAL);
    char label64[70];
    memset(label64, 'x', 64);
    label64[64] = '\0';
    assert_int_equal(dhcp6_put_domain(&w, label64), -EINVAL);
    assert_int_equal(wcursor_len(&w), 6);
    /* Does not fit: -ENOSPC and the cursor is unchanged. */
    wcursor small = wcursor_make(buf, 5);
    assert_int_equal(dhcp6_put_domain(&small, "abc.def"), -ENOSPC);
    assert_int_equal(wcursor_len(&small), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ipxe_solicit),
        cmocka_unit_test(test_build_advertise_matches_vector),
        cmocka_unit_test(test_parse_ipxe_request),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_option_length_past_end),
        cmocka_unit_test(test_malformed_fields),
        cmocka_unit_test(test_huge_oro_and_many_ias),
        cmocka_unit_test(test_relay_forward_and_reply),
        cmocka_unit_test(test_nested_relays),
        cmocka_unit_test(test_mac_sources),
        cmocka_unit_test(test_domain_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

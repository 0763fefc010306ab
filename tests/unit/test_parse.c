/* common/parse: config value parsers accept exactly the documented forms
 * and reject everything strtoul()/inet_pton() habits would let through. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parse.h"

static void free_items(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i]);
    }
}

/* Words split at blanks only; lists at commas and/or blanks, empty items
 * skipped (controller URLs: "a, b", "a,b" and "a b" are one list). */
static void test_words_and_lists(void **state)
{
    char *items[4];
    size_t n = 99;
    assert_int_equal(parse_words("a,b  c\td", items, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(items[0], "a,b");
    free_items(items, n);
    assert_int_equal(parse_list(" a, b,c\t d ", items, 4, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(items[0], "a");
    assert_string_equal(items[1], "b");
    assert_string_equal(items[2], "c");
    assert_string_equal(items[3], "d");
    free_items(items, n);
    assert_int_equal(parse_list(",, ,", items, 4, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(parse_list("tls+tcp://[::1]:1", items, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(items[0], "tls+tcp://[::1]:1");
    free_items(items, n);
    /* too many: nothing kept, *ret_n untouched */
    n = 99;
    assert_int_equal(parse_list("a,b,c,d,e", items, 4, &n), -E2BIG);
    assert_int_equal(n, 99);
}

static void test_bool(void **state)
{
    static const char *const yes[] = { "yes", "YES", "true", "True", "on", "ON", "1" };
    static const char *const no[] = { "no", "No", "false", "FALSE", "off", "Off", "0" };
    static const char *const bad[] = { "", "y", "n", "2", "yes ", " no", "enable", "01", "tru" };
    bool b;

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        b = false;
        assert_int_equal(parse_bool(yes[i], &b), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        b = true;
        assert_int_equal(parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        b = true;
        assert_int_equal(parse_bool(bad[i], &b), -EINVAL);
        assert_true(b); /* untouched on failure */
    }
}

static void test_u32(void **state)
{
    uint32_t v = 7;
    assert_int_equal(parse_u32("0", 0, UINT32_MAX, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(parse_u32("4294967295", 0, UINT32_MAX, &v), 0);
    assert_int_equal(v, UINT32_MAX);
    assert_int_equal(parse_u32("0069", 0, 100, &v), 0);
    assert_int_equal(v, 69);

    v = 7;
    assert_int_equal(parse_u32("4294967296", 0, UINT32_MAX, &v), -ERANGE);
    assert_int_equal(parse_u32("99999999999999999999999", 0, UINT32_MAX, &v), -ERANGE);
    assert_int_equal(parse_u32("101", 0, 100, &v), -ERANGE);
    assert_int_equal(parse_u32("4", 5, 10, &v), -ERANGE);
    assert_int_equal(parse_u32("-1", 0, UINT32_MAX, &v), -EINVAL);
    assert_int_equal(parse_u32("+1", 0, UINT32_MAX, &v), -EINVAL);
    assert_int_equal(parse_u32(" 1", 0, UINT32_MAX, &v), -EINVAL);
    assert_int_equal(parse_u32("1 ", 0, UINT32_MAX, &v), -EINVAL);
    assert_int_equal(parse_u32("1x", 0, UINT32_MAX, &v), -EINVAL);
    assert_int_equal(parse_u32("0x10", 0, UINT32_MAX, &v), -EINVAL);
    assert_int_equal(parse_u32("", 0, UINT32_MAX, &v), -EINVAL);
    assert_int_equal(v, 7);
}

static void test_u64(void **state)
{
    uint64_t v = 7;
    assert_int_equal(parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
    assert_int_equal(parse_u64("18446744073709551620", 0, UINT64_MAX, &v), -ERANGE);
    assert_int_equal(parse_u64("100000000000", 0, UINT64_MAX, &v), 0);
    assert_true(v == 100000000000ULL);
    assert_int_equal(parse_u64("-0", 0, UINT64_MAX, &v), -EINVAL);
}

static void test_size(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        { "0", 0 },
        { "512", 512 },
        { "512B", 512 },
        { "64K", 64ULL << 10 },
        { "64k", 64ULL << 10 },
        { "64KiB", 64ULL << 10 },
        { "64KB", 64ULL << 10 },
        { "10M", 10ULL << 20 },
        { "10GiB", 10ULL << 30 },
        { "2t", 2ULL << 40 },
        { "16777215T", 16777215ULL << 40 },
    };
    static const char *const bad[] = { "",     "K",  "10 G", "10G ",  "10Gi", "10iB", "10P",
                                       "1.5G", "-1", "+1",   "10GB2", "10BB", "0x10" };
    uint64_t v;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 1;
        assert_int_equal(parse_size(ok[i].s, &v), 0);
        assert_true(v == ok[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 1;
        assert_int_equal(parse_size(bad[i], &v), -EINVAL);
        assert_true(v == 1);
    }
    /* 2^24 TiB = 2^64 bytes: one past the top. */
    assert_int_equal(parse_size("16777216T", &v), -ERANGE);
    assert_int_equal(parse_size("18446744073709551616", &v), -ERANGE);
    assert_int_equal(parse_size("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
}

static void test_ipv6(void **state)
{
    struct in6_addr a, want;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &want), 1);

    assert_int_equal(parse_ipv6("2001:db8::1", &a), 0);
    assert_memory_equal(&a, &want, sizeof(a));
    memset(&a, 0, sizeof(a));
    assert_int_equal(parse_ipv6("[2001:DB8::1]", &a), 0);
    assert_memory_equal(&a, &want, sizeof(a));
    assert_int_equal(parse_ipv6("::", &a), 0);
    assert_true(IN6_IS_ADDR_UNSPECIFIED(&a));

    memcpy(&a, &want, sizeof(a));
    static const char *const bad[] = {
        "",
        "[]",
        "[2001:db8::1",
        "2001:db8::1]",
        "192.0.2.1",
        "2001:db8::g",
        " 2001:db8::1",
        "fe80::1%eth0",
        "[2001:db8::1]:69",
        "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_ipv6(bad[i], &a), -EINVAL);
    }
    assert_memory_equal(&a, &want, sizeof(a));
}

static void test_mac(void **state)
{
    static const uint8_t want[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
    static const char *const ok[] = {
        "52:54:00:ab:cd:ef",           "52:54:00:AB:CD:EF",           "52-54-00-ab-cd-Ef",
        "52%3A54%3A00%3Aab%3Acd%3Aef", "52%3a54%3a00%3aab%3acd%3aef",
    };
    static const char *const bad[] = {
        "",
        "52:54:00:ab:cd",
        "52:54:00:ab:cd:ef:01",
        "52:54:00:ab:cd:ef ",
        "52:54:00:ab:cd:eg",
        "5:54:00:ab:cd:ef",
        "525400abcdef",
        "52:54-00:ab:cd:ef",
        "52.54.00.ab.cd.ef",
        "52%3B54%3B00%3Bab%3Bcd%3Bef",
        "52%354%3A00%3Aab%3Acd%3Aef",
        "52:54:00:ab:cd:",
    };
    uint8_t mac[6];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        memset(mac, 0, sizeof(mac));
        assert_int_equal(parse_mac(ok[i], mac), 0);
        assert_memory_equal(mac, want, 6);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(mac, 0x11, sizeof(mac));
        assert_int_equal(parse_mac(bad[i], mac), -EINVAL);
        assert_int_equal(mac[0], 0x11);
    }

    char buf[FORMAT_MAC_LEN];
    format_mac(want, buf);
    assert_string_equal(buf, "52:54:00:ab:cd:ef");
    static const uint8_t all[6] = { 0xff, 0x00, 0x0a, 0xa0, 0x99, 0x01 };
    format_mac(all, buf);
    assert_string_equal(buf, "ff:00:0a:a0:99:01");
}

static void expect_listen(const char *s, uint16_t def, const char *addr, uint16_t port,
                          uint32_t scope)
{
    struct sockaddr_in6 sa;
    struct in6_addr want;
    memset(&sa, 0xee, sizeof(sa));
    assert_int_equal(inet_pton(AF_INET6, addr, &want), 1);
    assert_int_equal(parse_listen_address(s, def, &sa), 0);
    assert_int_equal(sa.sin6_family, AF_INET6);
    assert_memory_equal(&sa.sin6_addr, &want, sizeof(want));
    assert_int_equal(ntohs(sa.sin6_port), port);
    assert_int_equal(sa.sin6_scope_id, scope);
    assert_int_equal(sa.sin6_flowinfo, 0);
}

static void test_listen_address(void **state)
{
    expect_listen("[::]:69", 1, "::", 69, 0);
    expect_listen("[::]", 69, "::", 69, 0);
    expect_listen("[2001:db8::1]:8080", 80, "2001:db8::1", 8080, 0);
    expect_listen("2001:db8::1", 547, "2001:db8::1", 547, 0);
    expect_listen("::", 547, "::", 547, 0);
    expect_listen("[::1]:0", 80, "::1", 0, 0);
    expect_listen("[::1]:65535", 80, "::1", 65535, 0);
    expect_listen("0.0.0.0:69", 1, "::ffff:0.0.0.0", 69, 0);
    expect_listen("192.0.2.7", 80, "::ffff:192.0.2.7", 80, 0);
    expect_listen("[fe80::1%1]:547", 1, "fe80::1", 547, 1);
    expect_listen("ff02::1:2%7", 547, "ff02::1:2", 547, 7);

    unsigned lo = if_nametoindex("lo");
    if (lo > 0) {
        expect_listen("[fe80::1%lo]:547", 1, "fe80::1", 547, lo);
    }

    static const char *const bad[] = {
        "",
        "[::]:",
        "[::]:-1",
        "[::]:69x",
        "[::]69",
        "[::",
        "[]:69",
        "::]:69",
        "[192.0.2.1]:69",
        "192.0.2.1:",
        "192.0.2.256:69",
        "host.example:69",
        "2001:db8::1:69:",    /* not an address, not "addr:port" */
        "[2001:db8::1%1]:69", /* zone on a global address */
        "[fe80::1%]:69",
    };
    struct sockaddr_in6 sa;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&sa, 0xee, sizeof(sa));
        assert_int_equal(parse_listen_address(bad[i], 80, &sa), -EINVAL);
        assert_int_equal(((uint8_t *)&sa)[0], 0xee);
    }
    assert_int_equal(parse_listen_address("[::]:65536", 80, &sa), -ERANGE);
    assert_int_equal(parse_listen_address("[::]:99999999999", 80, &sa), -ERANGE);
    assert_int_equal(parse_listen_address("[fe80::1%nosuchif0]:547", 80, &sa), -ENODEV);
}

static void test_user_name(void **state)
{
    assert_true(user_name_valid("rackboot"));
    assert_true(user_name_valid("svc_rb-2.x"));
    assert_false(user_name_valid(""));
    assert_false(user_name_valid("-rackboot"));
    assert_false(user_name_valid("rack boot"));
    assert_false(user_name_valid("rack/boot"));
    assert_false(user_name_valid("abcdefghijklmnopqrstuvwxyz0123456"));
}

/* One DNS-name rule for the hosts file, the CLI and the agent, the same as
 * the wire's (rbproto): RFC 1123 LDH labels. */
static void test_dns_name(void **state)
{
    assert_true(dns_name_valid("web17"));
    assert_true(dns_name_valid("rack1.example.com"));
    assert_true(dns_name_valid("a-b.c0"));
    assert_false(dns_name_valid(""));
    assert_false(dns_name_valid("web17-"));       /* a label ending in '-' */
    assert_false(dns_name_valid("-web17"));       /* ... or starting with one */
    assert_false(dns_name_valid("web_17"));       /* '_' is no host name character */
    assert_false(dns_name_valid("example.com.")); /* the wire takes no trailing dot */
    assert_false(dns_name_valid("a..b"));
    char label[70];
    memset(label, 'a', 64);
    label[64] = '\0';
    assert_false(dns_name_valid(label)); /* 64-byte label */
    label[63] = '\0';
    assert_true(dns_name_valid(label));
    assert_true(fleet_name_valid("rack_1.a-b"));
    assert_false(fleet_name_valid("-rack"));
    assert_false(fleet_name_valid("rack/1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bool),      cmocka_unit_test(test_words_and_lists),
        cmocka_unit_test(test_u32),       cmocka_unit_test(test_u64),
        cmocka_unit_test(test_size),      cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_mac),       cmocka_unit_test(test_listen_address),
        cmocka_unit_test(test_user_name), cmocka_unit_test(test_dns_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* cli/hosts_csv: a CSV inventory export becomes HostsAddRequest hosts, and
 * every mistake is named with its file and line. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "diag.h"
#include "hosts_csv.h"
#include "pb.h"

typedef struct result {
    int r;
    diag *d;
    Rackboot__V1__HostsAddRequest *req;
} result;

/* `text` as the file `path` (files it names are read relative to it). */
static result parse_at(const char *path, const char *text, const char *rack)
{
    result res = { .d = diag_new(),
                   .req = cli_pb_new(&rackboot__v1__hosts_add_request__descriptor) };
    assert_non_null(res.d);
    assert_non_null(res.req);
    res.r = hosts_csv_parse(path, text, strlen(text), rack, res.d, res.req);
    return res;
}

static result parse(const char *text, const char *rack)
{
    return parse_at("hosts.csv", text, rack);
}

static void done(result *res)
{
    diag_free(res->d);
    cli_pb_free(res->req);
}

static bool has(const diag *d, const char *entry)
{
    for (size_t i = 0; i < diag_count(d); i++) {
        if (strstr(diag_get(d, i), entry)) {
            return true;
        }
    }
    return false;
}

static void print_diag(const diag *d)
{
    for (size_t i = 0; i < diag_count(d); i++) {
        fprintf(stderr, "  %s\n", diag_get(d, i));
    }
}

static void assert_addr(const ProtobufCBinaryData *b, const char *text)
{
    struct in6_addr a;
    assert_int_equal(inet_pton(AF_INET6, text, &a), 1);
    assert_int_equal(b->len, 16);
    assert_memory_equal(b->data, &a, 16);
}

static void test_columns_any_order_and_defaults(void **state)
{
    result res = parse("Address,NAME,rack,mac\n"
                       "2001:db8:1::17,web17,r1,52:54:00:12:34:56\n",
                       NULL);
    print_diag(res.d);
    assert_int_equal(res.r, 0);
    assert_int_equal(res.req->n_hosts, 1);
    const Rackboot__V1__Host *h = res.req->hosts[0];
    assert_string_equal(h->name, "web17");
    assert_string_equal(h->rack, "r1");
    assert_addr(&h->address, "2001:db8:1::17");
    assert_int_equal(h->prefix_length, 64); /* the agent's default too */
    assert_int_equal(h->gateway.len, 0);
    assert_string_equal(h->hostname, "");
    assert_int_equal(h->n_macs, 1);
    static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    assert_memory_equal(h->macs[0].data, mac, 6);
    done(&res);
}

static void test_optional_columns_and_mac_list(void **state)
{
    result res = parse("\xEF\xBB\xBFname,mac,rack,address,prefix,gateway,hostname\r\n"
                       "# a comment line\r\n"
                       "\r\n"
                       "web17, 52:54:00:12:34:56  52-54-00-12-34-57\t52:54:00:AB:CD:EF ,r1,"
                       "2001:db8:1::17,48,fe80::1,web17.rack1.example.com\r\n"
                       "web18,52:54:00:12:34:58,r1,2001:db8:1::18,,,\r\n",
                       NULL);
    print_diag(res.d);
    assert_int_equal(res.r, 0);
    assert_int_equal(res.req->n_hosts, 2);
    const Rackboot__V1__Host *h = res.req->hosts[0];
    assert_int_equal(h->n_macs, 3);
    static const uint8_t third[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
    assert_memory_equal(h->macs[2].data, third, 6);
    assert_int_equal(h->prefix_length, 48);
    assert_addr(&h->gateway, "fe80::1");
    assert_string_equal(h->hostname, "web17.rack1.example.com");
    /* Empty optional cells are absent, not errors. */
    assert_int_equal(res.req->hosts[1]->prefix_length, 64);
    assert_int_equal(res.req->hosts[1]->gateway.len, 0);
    done(&res);
}

static void test_quoting(void **state)
{
    result res = parse("\"name\",\"mac\",rack,address,hostname\n"
                       "\"web17\",\"52:54:00:12:34:56 52:54:00:12:34:57\",  \"r1\"  ,"
                       "2001:db8:1::17,\"web17.example.com\"\n",
                       NULL);
    print_diag(res.d);
    assert_int_equal(res.r, 0);
    assert_int_equal(res.req->hosts[0]->n_macs, 2);
    assert_string_equal(res.req->hosts[0]->rack, "r1");
    done(&res);

    /* A quoted comma and a doubled quote are data: here they make a bad
     * hostname, reported with the unquoted value. */
    res = parse("name,mac,rack,address,hostname\n"
                "web17,52:54:00:12:34:56,r1,2001:db8:1::17,\"a,\"\"b\"\"\"\n",
                NULL);
    assert_int_equal(res.r, -EINVAL);
    assert_true(has(res.d, "hosts.csv:2: hostname \"a,\"b\"\": not a DNS name"));
    done(&res);

    res = parse("name,mac,rack,address\n"
                "web17,\"52:54:00:12:34:56,r1,2001:db8:1::17\n"
                "web18,52:54:00:12:34:57,r1,2001:db8:1::18\n"
                "web19,5\"2,r1,2001:db8:1::19\n"
                "web20,\"52:54:00:12:34:59\"x,r1,2001:db8:1::20\n",
                NULL);
    print_diag(res.d);
    assert_int_equal(res.r, -EINVAL);
    assert_true(has(res.d, "hosts.csv:2: field 2: unterminated quoted field"));
    assert_true(has(res.d, "hosts.csv:4: field 2: a quote inside an unquoted field"));
    assert_true(has(res.d, "hosts.csv:5: field 2: text after the closing quote"));
    /* The good row between them is still parsed. */
    assert_int_equal(res.req->n_hosts, 1);
    done(&res);
}

static void test_header_problems(void **state)
{
    result res = parse("name,mac,adress,rack,rack\nweb17,52:54:00:12:34:56,x,r1,r1\n", NULL);
    assert_int_equal(res.r, -EINVAL);
    assert_true(has(res.d, "hosts.csv:1: unknown column \"adress\""));
    assert_true(has(res.d, "hosts.csv:1: column \"rack\" given twice"));
    assert_true(has(res.d, "hosts.csv:1: missing column \"address\""));
    done(&res);

    res = parse("name,mac,address\nweb17,52:54:00:12:34:56,2001:db8::17\n", NULL);
    assert_int_equal(res.r, -EINVAL);
    assert_true(has(res.d, "hosts.csv:1: missing column \"rack\""));
    done(&res);

    res = parse("# only a comment\n\n", NULL);
    assert_int_equal(res.r, -EINVAL);
    assert_true(has(res.d, "hosts.csv: no header line"));
    done(&res);

    res = parse("name,mac,rack,address\n", NULL);
    assert_int_equal(res.r, -EINVAL);
    assert_true(has(res.d, "hosts.csv: no hosts after the header"));
    done(&res);
}

static void test_row_errors_with_lines(void **state)
{
    result res = parse("name,mac,rack,address,prefix,gateway\n"              /* 1 */
                       "web17,52:54:00:12:34:56,r1,2001:db8:1::17,64,\n"     /* 2 ok */
                       "-bad,52:54:00:12:34:57,r1,2001:db8:1::18,64,\n"      /* 3 */
                       "web19,52:54:00:12:34:zz,r1,2001:db8:1::19,64,\n"     /* 4 */
                       "web20,01:00:5e:00:00:01,r1,2001:db8:1::20,64,\n"     /* 5 */
                       "web21,52:54:00:12:34:61,r1,fe80::21,64,\n"           /* 6 */
                       "web22,52:54:00:12:34:62,r1,2001:db8:1::22,129,\n"    /* 7 */
                       "web23,52:54:00:12:34:63,r1,2001:db8:1::23,64,nope\n" /* 8 */
                       "web24,52:54:00:12:34:64,r1,2001:db8:1::24\n"         /* 9 */
                       "web17,52:54:00:12:34:65,r1,2001:db8:1::25,64,\n"     /* 10 */
                       "web26,52:54:00:12:34:56,r1,2001:db8:1::26,64,\n"     /* 11 */
                       "web27,,r1,2001:db8:1::27,64,\n"                      /* 12 */
                       "web28,52:54:00:12:34:68 52:54:00:12:34:68,r1,2001:db8:1::28,64,\n" /* 13 */
                       "web29,52:54:00:12:34:69,,2001:db8:1::29,64,\n",                    /* 14 */
                       NULL);
    print_diag(res.d);
    assert_int_equal(res.r, -EINVAL);
    assert_true(has(res.d, "hosts.csv:3: name \"-bad\""));
    assert_true(has(res.d, "hosts.csv:4: mac \"52:54:00:12:34:zz\": not a MAC address"));
    assert_true(has(res.d, "hosts.csv:5: mac \"01:00:5e:00:00:01\": a multicast MAC address"));
    assert_true(has(res.d, "hosts.csv:6: address \"fe80::21\": cannot be given to a host"));
    assert_true(has(res.d, "hosts.csv:7: prefix \"129\""));
    assert_true(has(res.d, "hosts.csv:8: gateway \"nope\": not an IPv6 address"));
    assert_true(has(res.d, "hosts.csv:9: 4 fields, but the header has 6"));
    assert_true(has(res.d, "hosts.csv:10: host web17 given twice (first on line 2)"));
    assert_true(has(res.d,
                    "hosts.csv:11: mac 52:54:00:12:34:56 of host web26 is already used by host "
                    "web17 (line 2)"));
    assert_true(has(res.d, "hosts.csv:12: mac: empty"));
    assert_true(has(res.d, "hosts.csv:13: mac 52:54:00:12:34:68 listed twice"));
    assert_true(has(res.d, "hosts.csv:14: rack \"\": empty name"));
    done(&res);
}

static void test_address_given_twice(void **state)
{
    /* Two hosts with one address would both be answered with it. */
    result res = parse("name,mac,rack,address\n"
                       "web17,52:54:00:12:34:56,r1,2001:db8:1::17\n"
                       "web18,52:54:00:12:34:57,r1,2001:db8:1::18\n"
                       "web19,52:54:00:12:34:58,r1,2001:db8:1:0::17\n",
                       NULL);
    print_diag(res.d);
    assert_int_equal(res.r, -EINVAL);
    assert_true(has(res.d, "hosts.csv:4: address 2001:db8:1::17 of host web19 is already used by "
                           "host web17 (line 2)"));
    done(&res);
}

static void test_rack_option(void **state)
{
    /* --rack stands in for a missing column ... */
    result res = parse("name,mac,address\nweb17,52:54:00:12:34:56,2001:db8:1::17\n", "r9");
    assert_int_equal(res.r, 0);
    assert_string_equal(res.req->hosts[0]->rack, "r9");
    done(&res);
    /* ... fills empty cells, and contradicting it is an error. */
    res = parse("name,mac,rack,address\n"
                "web17,52:54:00:12:34:56,,2001:db8:1::17\n"
                "web18,52:54:00:12:34:57,r2,2001:db8:1::18\n",
                "r9");
    assert_int_equal(res.r, -EINVAL);
    assert_string_equal(res.req->hosts[0]->rack, "r9");
    assert_true(has(res.d, "hosts.csv:3: rack r2, but --rack says r9"));
    done(&res);
}

static void test_read_missing_file(void **state)
{
    diag *d = diag_new();
    Rackboot__V1__HostsAddRequest *req = cli_pb_new(&rackboot__v1__hosts_add_request__descriptor);
    assert_int_equal(hosts_csv_read("/nonexistent/hosts.csv", NULL, d, req), -ENOENT);
    assert_true(has(d, "/nonexistent/hosts.csv: cannot read"));
    diag_free(d);
    cli_pb_free(req);
}

/* The BMC columns: bmc_password_file is read relative to the CSV file;
 * there is no password column; errors name the line, never the secret. */
static void test_bmc_columns(void **state)
{
    char dir[64], path[128], csv[128];
    snprintf(dir, sizeof(dir), "/tmp/test_cli_hosts_csv.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/web17.pw", dir);
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    fputs("Hunter2\n", f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(path, sizeof(path), "%s/loose.pw", dir);
    f = fopen(path, "we");
    assert_non_null(f);
    fputs("Hunter2\n", f);
    fclose(f);
    assert_int_equal(chmod(path, 0644), 0);
    snprintf(csv, sizeof(csv), "%s/hosts.csv", dir);
    const char *text = "name,mac,rack,address,bmc,bmc_user,bmc_password_file,firmware\n"
                       "web17,52:54:00:12:34:56,r1,2001:db8:1::17,ipmi://[2001:db8:ff::17]:623,"
                       "admin,web17.pw,uefi\n"
                       "web18,52:54:00:12:34:57,r1,2001:db8:1::18,,,,bios\n";
    result res = parse_at(csv, text, NULL);
    print_diag(res.d);
    assert_int_equal(res.r, 0);
    assert_int_equal(res.req->n_hosts, 2);
    const Rackboot__V1__Host *h = res.req->hosts[0];
    assert_string_equal(h->bmc_url, "ipmi://[2001:db8:ff::17]:623");
    assert_string_equal(h->bmc_user, "admin");
    assert_string_equal(h->bmc_password, "Hunter2");
    assert_int_equal(h->firmware, RACKBOOT__V1__FIRMWARE__FIRMWARE_UEFI);
    h = res.req->hosts[1];
    assert_string_equal(h->bmc_url, "");
    assert_string_equal(h->bmc_password, "");
    assert_int_equal(h->firmware, RACKBOOT__V1__FIRMWARE__FIRMWARE_BIOS);
    done(&res);

    text = "name,mac,rack,address,bmc,bmc_user,bmc_password_file,firmware\n"
           "web17,52:54:00:12:34:56,r1,2001:db8:1::17,ipmi://root:Hunter2@[2001:db8:ff::17],,,\n"
           "web18,52:54:00:12:34:57,r1,2001:db8:1::18,ipmi://[2001:db8:ff::18],,loose.pw,efi\n"
           "web19,52:54:00:12:34:58,r1,2001:db8:1::19,,admin,,\n";
    res = parse_at(csv, text, NULL);
    assert_int_equal(res.r, -EINVAL);
    char want[256];
    snprintf(want, sizeof(want), "%s:2: bmc: ", csv);
    assert_true(has(res.d, want));
    snprintf(want, sizeof(want), "%s:3: bmc_password_file: %s/loose.pw: mode 0644", csv, dir);
    assert_true(has(res.d, want));
    snprintf(want, sizeof(want), "%s:3: firmware \"efi\": expected uefi or bios", csv);
    assert_true(has(res.d, want));
    snprintf(want, sizeof(want), "%s:4: bmc_user and bmc_password_file need a bmc URL", csv);
    assert_true(has(res.d, want));
    assert_false(has(res.d, "Hunter2"));
    done(&res);

    /* A password never sits in an inventory. */
    res = parse("name,mac,rack,address,bmc,bmc_password\n", NULL);
    assert_int_equal(res.r, -EINVAL);
    assert_true(has(res.d, "hosts.csv:1: column \"bmc_password\": a password is never read"));
    done(&res);

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columns_any_order_and_defaults),
        cmocka_unit_test(test_optional_columns_and_mac_list),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_header_problems),
        cmocka_unit_test(test_row_errors_with_lines),
        cmocka_unit_test(test_address_given_twice),
        cmocka_unit_test(test_rack_option),
        cmocka_unit_test(test_read_missing_file),
        cmocka_unit_test(test_bmc_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

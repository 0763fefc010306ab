/* rack-agent/tftp/wire: request parsing from byte vectors, option
 * negotiation bounds, the packets we build. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tftp/wire.h"

/* What iPXE sends (src/net/udp/tftp.c): octet, blksize 1432, tsize 0. */
static const uint8_t ipxe_rrq[] = "\x00\x01"
                                  "ipxe.efi\0"
                                  "octet\0"
                                  "blksize\0"
                                  "1432\0"
                                  "tsize\0"
                                  "0";
/* EDK2's first ask (lab capture): tsize only... */
static const uint8_t edk2_probe[] = "\x00\x01"
                                    "ipxe.efi\0"
                                    "octet\0"
                                    "tsize\0"
                                    "0";
/* ...and its real request. */
static const uint8_t edk2_rrq[] = "\x00\x01"
                                  "ipxe.efi\0"
                                  "octet\0"
                                  "blksize\0"
                                  "1228\0"
                                  "windowsize\0"
                                  "4";
/* RFC 1350 plain request, mixed-case mode. */
static const uint8_t plain_rrq[] = "\x00\x01"
                                   "pxelinux.0\0"
                                   "OcTeT";

static void test_parse_ipxe(void **state)
{
    tftp_request r;
    assert_int_equal(tftp_request_parse(ipxe_rrq, sizeof(ipxe_rrq), &r), 0);
    assert_int_equal(r.opcode, TFTP_RRQ);
    assert_string_equal(r.filename, "ipxe.efi");
    assert_int_equal(r.filename_len, 8);
    assert_int_equal(r.mode, TFTP_MODE_OCTET);
    assert_true(r.has_blksize);
    assert_int_equal(r.blksize, 1432);
    assert_true(r.has_tsize);
    assert_int_equal(r.tsize, 0);
    assert_false(r.has_windowsize);
    assert_false(r.has_timeout);
}

static void test_parse_edk2(void **state)
{
    tftp_request r;
    assert_int_equal(tftp_request_parse(edk2_probe, sizeof(edk2_probe), &r), 0);
    assert_true(r.has_tsize);
    assert_false(r.has_blksize);
    assert_int_equal(tftp_request_parse(edk2_rrq, sizeof(edk2_rrq), &r), 0);
    assert_int_equal(r.blksize, 1228);
    assert_true(r.has_windowsize);
    assert_int_equal(r.windowsize, 4);
    assert_false(r.has_tsize);
}

static void test_parse_plain_and_modes(void **state)
{
    tftp_request r;
    assert_int_equal(tftp_request_parse(plain_rrq, sizeof(plain_rrq), &r), 0);
    assert_int_equal(r.mode, TFTP_MODE_OCTET);
    assert_false(r.has_blksize || r.has_tsize || r.has_timeout || r.has_windowsize);
    static const uint8_t na[] = "\x00\x01x\0NetAscii";
    assert_int_equal(tftp_request_parse(na, sizeof(na), &r), 0);
    assert_int_equal(r.mode, TFTP_MODE_NETASCII);
    static const uint8_t mail[] = "\x00\x01x\0mail";
    assert_int_equal(tftp_request_parse(mail, sizeof(mail), &r), 0);
    assert_int_equal(r.mode, TFTP_MODE_MAIL);
    static const uint8_t odd[] = "\x00\x01x\0binary";
    assert_int_equal(tftp_request_parse(odd, sizeof(odd), &r), 0);
    assert_int_equal(r.mode, TFTP_MODE_UNKNOWN);
    static const uint8_t wrq[] = "\x00\x02up\0octet";
    assert_int_equal(tftp_request_parse(wrq, sizeof(wrq), &r), 0);
    assert_int_equal(r.opcode, TFTP_WRQ);
}

static void test_parse_malformed(void **state)
{
    tftp_request r;
    memset(&r, 0x5a, sizeof(r));
    /* Missing NUL after the mode. */
    static const uint8_t no_nul[] = { 0, 1, 'f', 0, 'o', 'c', 't', 'e', 't' };
    assert_int_equal(tftp_request_parse(no_nul, sizeof(no_nul), &r), -EBADMSG);
    /* Missing NUL after the filename. */
    static const uint8_t no_nul_name[] = { 0, 1, 'f', 'i', 'l', 'e' };
    assert_int_equal(tftp_request_parse(no_nul_name, sizeof(no_nul_name), &r), -EBADMSG);
    /* Empty filename, empty mode. */
    static const uint8_t empty_name[] = "\x00\x01\0octet";
    assert_int_equal(tftp_request_parse(empty_name, sizeof(empty_name), &r), -EBADMSG);
    static const uint8_t empty_mode[] = "\x00\x01x\0";
    assert_int_equal(tftp_request_parse(empty_mode, sizeof(empty_mode), &r), -EBADMSG);
    /* Option name without its value. */
    static const uint8_t no_value[] = "\x00\x01x\0octet\0blksize";
    assert_int_equal(tftp_request_parse(no_value, sizeof(no_value), &r), -EBADMSG);
    static const uint8_t no_value_nul[] = { 0, 1,   'x', 0,   'o', 'c', 't', 'e', 't',
                                            0, 't', 's', 'i', 'z', 'e', 0,   '0' };
    assert_int_equal(tftp_request_parse(no_value_nul, sizeof(no_value_nul), &r), -EBADMSG);
    /* Not a request. */
    static const uint8_t ack[] = { 0, 4, 0, 1 };
    assert_int_equal(tftp_request_parse(ack, sizeof(ack), &r), -EBADMSG);
    static const uint8_t op0[] = "\x00\x00x\0octet";
    assert_int_equal(tftp_request_parse(op0, sizeof(op0), &r), -EBADMSG);
    assert_int_equal(tftp_request_parse(ack, 1, &r), -EBADMSG);
    assert_int_equal(tftp_request_parse(ack, 0, &r), -EBADMSG);
    /* Nothing written on failure. */
    assert_int_equal(r.filename[0], 0x5a);
}

static void test_parse_padding(void **state)
{
    tftp_request r;
    static const uint8_t padded[] = "\x00\x01x\0octet\0tsize\0"
                                    "0\0\0\0\0";
    assert_int_equal(tftp_request_parse(padded, sizeof(padded), &r), 0);
    assert_true(r.has_tsize);
    static const uint8_t bad_pad[] = "\x00\x01x\0octet\0\0tsize\0"
                                     "0";
    assert_int_equal(tftp_request_parse(bad_pad, sizeof(bad_pad), &r), -EBADMSG);
}

static void test_request_size_limit(void **state)
{
    /* RFC 2347: the whole request is at most 512 bytes. */
    uint8_t buf[600];
    memset(buf, 'a', sizeof(buf));
    buf[0] = 0;
    buf[1] = 1;
    size_t len = 512;
    buf[len - 7] = 0;
    memcpy(buf + len - 6, "octet", 6);
    tftp_request r;
    assert_int_equal(tftp_request_parse(buf, len, &r), 0);
    assert_int_equal(r.filename_len, 512 - 2 - 7);
    buf[len - 7] = 'a';
    buf[len - 6] = 0;
    memcpy(buf + len - 5, "octet", 6);
    assert_int_equal(tftp_request_parse(buf, len + 1, &r), -EBADMSG);
}

static void test_option_case_and_unknown(void **state)
{
    static const uint8_t req[] = "\x00\x01"
                                 "f\0octet\0"
                                 "BlkSize\0"
                                 "1024\0"
                                 "TSIZE\0"
                                 "0\0"
                                 "multicast\0\0"
                                 "rollover\0"
                                 "1\0"
                                 "WindowSize\0"
                                 "8";
    tftp_request r;
    assert_int_equal(tftp_request_parse(req, sizeof(req), &r), 0);
    assert_int_equal(r.blksize, 1024);
    assert_true(r.has_tsize);
    assert_int_equal(r.windowsize, 8);
    assert_int_equal(r.n_unknown, 2);
    assert_int_equal(r.n_rejected, 0);
}

static tftp_request parse_opt(const char *name, const char *value)
{
    const char *opts[2] = { name, value };
    uint8_t buf[512];
    int n = tftp_build_request(TFTP_RRQ, "f", "octet", opts, 1, buf, sizeof(buf));
    assert_true(n > 0);
    tftp_request r;
    assert_int_equal(tftp_request_parse(buf, (size_t)n, &r), 0);
    return r;
}

static void test_option_bounds(void **state)
{
    tftp_request r;
    /* blksize: 8..65464, larger clamps, smaller or junk is rejected. */
    r = parse_opt("blksize", "8");
    assert_true(r.has_blksize);
    assert_int_equal(r.blksize, 8);
    r = parse_opt("blksize", "7");
    assert_false(r.has_blksize);
    assert_int_equal(r.n_rejected, 1);
    r = parse_opt("blksize", "65464");
    assert_int_equal(r.blksize, 65464);
    r = parse_opt("blksize", "65465");
    assert_int_equal(r.blksize, 65464);
    r = parse_opt("blksize", "99999999999999999999999");
    assert_false(r.has_blksize);
    r = parse_opt("blksize", "-1");
    assert_false(r.has_blksize);
    r = parse_opt("blksize", "");
    assert_false(r.has_blksize);
    r = parse_opt("blksize", " 512");
    assert_false(r.has_blksize);
    /* timeout: 1..255. */
    r = parse_opt("timeout", "1");
    assert_int_equal(r.timeout, 1);
    r = parse_opt("timeout", "255");
    assert_int_equal(r.timeout, 255);
    r = parse_opt("timeout", "0");
    assert_false(r.has_timeout);
    r = parse_opt("timeout", "256");
    assert_false(r.has_timeout);
    /* windowsize: 1..65535. */
    r = parse_opt("windowsize", "1");
    assert_int_equal(r.windowsize, 1);
    r = parse_opt("windowsize", "65535");
    assert_int_equal(r.windowsize, 65535);
    r = parse_opt("windowsize", "0");
    assert_false(r.has_windowsize);
    r = parse_opt("windowsize", "65536");
    assert_false(r.has_windowsize);
    /* tsize: any number. */
    r = parse_opt("tsize", "18446744073709551615");
    assert_true(r.has_tsize);
    assert_int_equal(r.tsize, UINT64_MAX);
    r = parse_opt("tsize", "18446744073709551616");
    assert_false(r.has_tsize);
    r = parse_opt("tsize", "x");
    assert_false(r.has_tsize);
}

static void test_repeated_option_first_wins(void **state)
{
    const char *opts[4] = { "blksize", "1000", "BLKSIZE", "2000" };
    uint8_t buf[512];
    int n = tftp_build_request(TFTP_RRQ, "f", "octet", opts, 2, buf, sizeof(buf));
    tftp_request r;
    assert_int_equal(tftp_request_parse(buf, (size_t)n, &r), 0);
    assert_int_equal(r.blksize, 1000);
}

static void test_negotiate(void **state)
{
    tftp_limits lim = { .max_blksize = 1428, .path_blksize = 0, .max_windowsize = 64 };
    tftp_request r;
    tftp_params p;
    assert_int_equal(tftp_request_parse(ipxe_rrq, sizeof(ipxe_rrq), &r), 0);
    tftp_negotiate(&r, &lim, 850528, &p);
    assert_int_equal(p.blksize, 1428); /* 1432 clamped to our cap */
    assert_true(p.oack_blksize);
    assert_true(p.oack_tsize);
    assert_int_equal(p.tsize, 850528);
    assert_false(p.oack_windowsize);
    assert_int_equal(p.windowsize, 1);
    assert_true(tftp_params_has_oack(&p));

    /* The path MTU lowers it further. */
    lim.path_blksize = 1448 - 100;
    tftp_negotiate(&r, &lim, 1, &p);
    assert_int_equal(p.blksize, 1348);
    lim.path_blksize = 0;

    assert_int_equal(tftp_request_parse(edk2_rrq, sizeof(edk2_rrq), &r), 0);
    tftp_negotiate(&r, &lim, 1, &p);
    assert_int_equal(p.blksize, 1228);
    assert_int_equal(p.windowsize, 4);
    assert_false(p.oack_tsize);

    r = parse_opt("windowsize", "1000");
    tftp_negotiate(&r, &lim, 1, &p);
    assert_int_equal(p.windowsize, 64);
    assert_true(p.oack_windowsize);

    r = parse_opt("timeout", "7");
    tftp_negotiate(&r, &lim, 1, &p);
    assert_int_equal(p.timeout, 7);
    assert_true(p.oack_timeout);
    assert_false(p.oack_blksize);
    assert_int_equal(p.blksize, 512);

    /* No options, or only rejected/unknown ones: no OACK (RFC 1350). */
    assert_int_equal(tftp_request_parse(plain_rrq, sizeof(plain_rrq), &r), 0);
    tftp_negotiate(&r, &lim, 1, &p);
    assert_false(tftp_params_has_oack(&p));
    r = parse_opt("blksize", "2");
    tftp_negotiate(&r, &lim, 1, &p);
    assert_false(tftp_params_has_oack(&p));
    r = parse_opt("foo", "bar");
    tftp_negotiate(&r, &lim, 1, &p);
    assert_false(tftp_params_has_oack(&p));
}

static void test_build_oack(void **state)
{
    tftp_params p = { .blksize = 1428,
                      .windowsize = 16,
                      .tsize = 850528,
                      .oack_blksize = true,
                      .oack_tsize = true,
                      .oack_windowsize = true };
    uint8_t buf[128];
    int n = tftp_build_oack(&p, buf, sizeof(buf));
    static const uint8_t want[] = "\x00\x06"
                                  "blksize\0"
                                  "1428\0"
                                  "tsize\0"
                                  "850528\0"
                                  "windowsize\0"
                                  "16";
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    assert_int_equal(tftp_build_oack(&p, buf, 10), -ENOSPC);
}

static void test_build_error_ack_data(void **state)
{
    uint8_t buf[600];
    int n = tftp_build_error(TFTP_ERR_NOT_FOUND, "File not found", buf, sizeof(buf));
    static const uint8_t want[] = "\x00\x05\x00\x01"
                                  "File not found";
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    char big[700];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    n = tftp_build_error(0, big, buf, sizeof(buf));
    assert_int_equal(n, 4 + 511 + 1);
    assert_int_equal(buf[n - 1], 0);
    n = tftp_build_ack(0xfffe, buf, sizeof(buf));
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "\x00\x04\xff\xfe", 4);
    n = tftp_build_data_header(1, buf, sizeof(buf));
    assert_memory_equal(buf, "\x00\x03\x00\x01", 4);
    assert_int_equal(tftp_build_ack(1, buf, 3), -ENOSPC);
}

static void test_packet_parse(void **state)
{
    tftp_packet p;
    static const uint8_t ack[] = { 0, 4, 0xff, 0xff };
    assert_int_equal(tftp_packet_parse(ack, sizeof(ack), &p), 0);
    assert_int_equal(p.opcode, TFTP_ACK);
    assert_int_equal(p.block, 65535);
    assert_int_equal(tftp_packet_parse(ack, 3, &p), -EBADMSG);
    static const uint8_t err[] = "\x00\x05\x00\x08User aborted";
    assert_int_equal(tftp_packet_parse(err, sizeof(err), &p), 0);
    assert_int_equal(p.opcode, TFTP_ERROR);
    assert_int_equal(p.error_code, 8);
    assert_string_equal(p.error_msg, "User aborted");
    /* Without its NUL the message still counts. */
    assert_int_equal(tftp_packet_parse(err, sizeof(err) - 1, &p), 0);
    assert_string_equal(p.error_msg, "User aborted");
    assert_int_equal(tftp_packet_parse(err, 4, &p), 0);
    assert_string_equal(p.error_msg, "");
    assert_int_equal(tftp_packet_parse(err, 3, &p), -EBADMSG);
    static const uint8_t data[] = { 0, 3, 0, 1, 'x' };
    assert_int_equal(tftp_packet_parse(data, sizeof(data), &p), 0);
    assert_int_equal(p.opcode, TFTP_DATA);
    static const uint8_t bogus[] = { 0, 9, 0, 1 };
    assert_int_equal(tftp_packet_parse(bogus, sizeof(bogus), &p), -EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ipxe),
        cmocka_unit_test(test_parse_edk2),
        cmocka_unit_test(test_parse_plain_and_modes),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_parse_padding),
        cmocka_unit_test(test_request_size_limit),
        cmocka_unit_test(test_option_case_and_unknown),
        cmocka_unit_test(test_option_bounds),
        cmocka_unit_test(test_repeated_option_first_wins),
        cmocka_unit_test(test_negotiate),
        cmocka_unit_test(test_build_oack),
        cmocka_unit_test(test_build_error_ack_data),
        cmocka_unit_test(test_packet_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

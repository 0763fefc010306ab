/* Checks of the values an operator types or imports, with the wording the
 * CLI prints. Each returns NULL when the value is good (writing ret_* then),
 * or a short description of the problem, so callers can prefix it with a
 * file and line or an option name. The rules are the wire's (rbproto.h):
 * whatever passes here passes the controller's validation. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/bmc.h"
#include "rackboot.pb-c.h"

/* Host, rack and profile names: [A-Za-z0-9._-], starting with a letter or
 * digit, at most 63 bytes. */
bool cli_name_valid(const char *s);
const char *cli_check_name(const char *s);

/* A reserved address: IPv6 and usable by a host (not link-local, multicast,
 * loopback or unspecified). */
const char *cli_check_host_address(const char *s, struct in6_addr *ret);
/* A gateway: any unicast IPv6 address (link-local is the usual one). */
const char *cli_check_gateway(const char *s, struct in6_addr *ret);
/* 1-128. */
const char *cli_check_prefix(const char *s, uint32_t *ret);
/* A DNS name (RFC 1035 labels, at most 253 bytes). */
const char *cli_check_hostname(const char *s);
/* One unicast MAC address, "52:54:00:12:34:56" (or '-' separated). */
const char *cli_check_mac(const char *s, uint8_t ret[6]);

/* A BMC URL (model_bmc_url_parse()): NULL, or the reason written to `buf`.
 * The reason never quotes the URL, which may hold credentials: callers
 * print it without the value either. */
const char *cli_check_bmc_url(const char *s, char *buf, size_t size);
/* A BMC user: printable ASCII, 1-MODEL_BMC_USER_MAX bytes. */
const char *cli_check_bmc_user(const char *s);
/* "uefi" or "bios" (any case). */
const char *cli_check_firmware(const char *s, Rackboot__V1__Firmware *ret);
/* The wire's value of a firmware. */
Rackboot__V1__Firmware cli_firmware_to_pb(model_firmware f);

/* --state and --phase of `status` and `hosts list`: which status rows a
 * listing keeps. A bit per InstallState and per Phase; 0: any. */
typedef struct cli_status_filter {
    uint32_t states;
    uint32_t phases;
} cli_status_filter;

/* Adds the comma-separated states ("installing,failed"; "none": no install
 * yet) or phases ("dhcp_bound") of `s` to the filter. */
const char *cli_check_states(const char *s, cli_status_filter *f);
const char *cli_check_phases(const char *s, cli_status_filter *f);
bool cli_status_filter_empty(const cli_status_filter *f);
bool cli_status_filter_match(const cli_status_filter *f, const Rackboot__V1__StatusRow *r);
/* Moves the rows the filter keeps among rows[0..n) to the front, in their
 * order, and the others behind them (each row stays in the array, to be
 * freed with it); returns how many are kept. */
size_t cli_status_filter_rows(const cli_status_filter *f, Rackboot__V1__StatusRow **rows, size_t n);

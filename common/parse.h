/* Strict parsers for configuration values.
 *
 * Each parser takes the whole string: leading or trailing whitespace, signs,
 * trailing junk and out-of-range values are errors, never silently ignored
 * (strtoul() would accept " -1" as 4294967295). The INI reader already trims
 * values, so a parser sees exactly what the user wrote after `key =`.
 *
 * Errors: -EINVAL for malformed text, -ERANGE for a well-formed number outside
 * the allowed range. ret_* are written only on success. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* yes/no, true/false, on/off, 1/0; case-insensitive. */
int parse_bool(const char *s, bool *ret);

/* Splits `s` at blanks (spaces, tabs) into at most `max` malloc()ed words in
 * out[0..*ret_n). -E2BIG for more than `max` words, -ENOMEM; either way
 * nothing is left allocated. */
int parse_words(const char *s, char **out, size_t max, size_t *ret_n);
/* parse_words(), but commas separate too ("a, b", "a,b" and "a b" are the
 * same list): lists that also come from an environment variable, where a
 * blank is awkward to quote (controller URLs). Empty items are skipped. */
int parse_list(const char *s, char **out, size_t max, size_t *ret_n);

/* Decimal digits only, value in [min, max]. */
int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *ret);
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* A byte count: decimal digits, then an optional K, M, G or T (powers of
 * 1024, either case), then an optional "B" or "iB": "512", "512B", "64K",
 * "10GiB", "2t". No space between number and unit. */
int parse_size(const char *s, uint64_t *ret);

/* An IPv6 address as inet_pton(3) takes it, optionally in brackets
 * ("[2001:db8::1]"). No zone ("%eth0"): in6_addr cannot hold it. */
int parse_ipv6(const char *s, struct in6_addr *ret);

/* Six hex octets separated by ':', '-' or "%3A"/"%3a" (iPXE percent-encodes
 * ':' in URLs), the same separator throughout, hex digits in either case:
 * "52:54:00:12:34:56", "52-54-00-12-34-56", "52%3A54%3A00%3A12%3A34%3A56". */
int parse_mac(const char *s, uint8_t ret[6]);

#define FORMAT_MAC_LEN 18
/* Lower case, colon-separated, NUL-terminated. */
void format_mac(const uint8_t mac[6], char buf[FORMAT_MAC_LEN]);

/* A socket address to listen on:
 *   "[ADDR]:PORT", "[ADDR]", "ADDR"   IPv6 (a port needs the brackets);
 *   "[fe80::1%eth0]:547"              link-local with a zone (interface name
 *                                     or index) giving sin6_scope_id;
 *   "A.B.C.D:PORT", "A.B.C.D"         IPv4, as a v4-mapped IPv6 address
 *                                     (the socket must then allow v4-mapped).
 * A missing port is default_port. Port 0 is allowed (the kernel picks one,
 * which tests use). -ENODEV when the zone names no interface. */
int parse_listen_address(const char *s, uint16_t default_port, struct sockaddr_in6 *ret);

/* A user name the daemons may be told to run as: 1-32 of letters, digits,
 * '_', '-' and '.', not starting with '-' (useradd(8)'s portable set). */
bool user_name_valid(const char *s);

/* A host name or search domain as the wire and the rendered files take it:
 * dot-separated labels of 1-63 letters, digits and '-', no label starting
 * or ending with '-' (RFC 1123 §2.1), at most 253 bytes, no trailing dot.
 * The one rule for the agent, the CLI and the hosts file (rbproto checks
 * the same on the wire). */
bool dns_name_valid(const char *s);

/* A name in the fleet (host, profile, rack): 1-63 of letters, digits, '-',
 * '_' and '.', starting with a letter or digit. */
bool fleet_name_valid(const char *s);

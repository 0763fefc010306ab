#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hex.h"
#include "util.h"

int parse_bool(const char *s, bool *ret)
{
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };

    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return -EINVAL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads the leading run of decimal digits of s into *ret and returns the
 * number of digits, 0 when there are none; -ERANGE past UINT64_MAX. */
static int read_decimal(const char *s, uint64_t *ret, size_t *ret_n)
{
    uint64_t v = 0;
    size_t n = 0;
    while (is_digit(s[n])) {
        unsigned d = (unsigned)(s[n] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -ERANGE;
        }
        v = v * 10 + d;
        n++;
    }
    if (n == 0) {
        return -EINVAL;
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
    uint64_t v;
    size_t n;
    int r = read_decimal(s, &v, &n);
    if (r < 0) {
        return r;
    }
    if (s[n] != '\0') {
        return -EINVAL;
    }
    if (v < min || v > max) {
        return -ERANGE;
    }
    *ret = v;
    return 0;
}

int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *ret)
{
    uint64_t v;
    int r = parse_u64(s, min, max, &v);
    if (r < 0) {
        return r;
    }
    *ret = (uint32_t)v;
    return 0;
}

int parse_size(const char *s, uint64_t *ret)
{
    uint64_t v;
    size_t n;
    int r = read_decimal(s, &v, &n);
    if (r < 0) {
        return r;
    }

    const char *unit = s + n;
    unsigned shift = 0;
    switch (*unit) {
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    case 't':
    case 'T':
        shift = 40;
        break;
    default:
        break;
    }
    if (shift > 0) {
        unit++;
        /* "iB" only makes sense after a multiplier: "10KiB", not "10iB". */
        if (strcmp(unit, "iB") == 0) {
            unit += 2;
        }
    }
    if (strcmp(unit, "B") == 0) {
        unit++;
    }
    if (*unit != '\0') {
        return -EINVAL;
    }
    if (shift > 0 && v > (UINT64_MAX >> shift)) {
        return -ERANGE;
    }
    *ret = v << shift;
    return 0;
}

int parse_ipv6(const char *s, struct in6_addr *ret)
{
    /* INET6_ADDRSTRLEN holds the longest valid form; anything longer is not
     * an address, so the copy below never truncates a valid one. */
    char buf[INET6_ADDRSTRLEN];
    size_t len = strlen(s);

    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(buf)) {
        return -EINVAL;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';

    struct in6_addr a;
    if (inet_pton(AF_INET6, buf, &a) != 1) {
        return -EINVAL;
    }
    *ret = a;
    return 0;
}

/* Length of the separator at s that matches `sep` ("" = any known one
 * decides it), 0 when none. */
static size_t mac_separator(const char *s, const char *sep)
{
    static const char *const seps[] = { ":", "-", "%3A", "%3a" };
    for (size_t i = 0; i < ARRAY_SIZE(seps); i++) {
        size_t n = strlen(seps[i]);
        if (strncmp(s, seps[i], n) != 0) {
            continue;
        }
        if (sep[0] == '\0' || strncasecmp(sep, seps[i], n) == 0) {
            return n;
        }
    }
    return 0;
}

int parse_mac(const char *s, uint8_t ret[6])
{
    uint8_t mac[6];
    const char *sep = "";
    const char *p = s;

    for (size_t i = 0; i < 6; i++) {
        if (i > 0) {
            size_t n = mac_separator(p, sep);
            if (n == 0) {
                return -EINVAL;
            }
            /* The first separator fixes the kind for the rest ("%3A" and
             * "%3a" count as one kind). */
            sep = p;
            p += n;
        }
        int hi = hex_digit(p[0]);
        int lo = hi < 0 ? -1 : hex_digit(p[1]);
        if (lo < 0) {
            return -EINVAL;
        }
        mac[i] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    if (*p != '\0') {
        return -EINVAL;
    }
    memcpy(ret, mac, sizeof(mac));
    return 0;
}

void format_mac(const uint8_t mac[6], char buf[FORMAT_MAC_LEN])
{
    snprintf(buf, FORMAT_MAC_LEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
             mac[4], mac[5]);
}

/* Zone of a link-local address: an interface name or a decimal index. */
static int parse_zone(const char *zone, uint32_t *ret)
{
    uint32_t idx;
    if (parse_u32(zone, 1, UINT32_MAX, &idx) == 0) {
        *ret = idx;
        return 0;
    }
    if (zone[0] == '\0' || strlen(zone) >= IF_NAMESIZE) {
        return -EINVAL;
    }
    idx = if_nametoindex(zone);
    if (idx == 0) {
        return -ENODEV;
    }
    *ret = idx;
    return 0;
}

/* IPv6 text with an optional "%zone" into sa. */
static int parse_ipv6_zone(char *host, struct sockaddr_in6 *sa)
{
    char *pct = strchr(host, '%');
    if (pct) {
        *pct = '\0';
        int r = parse_zone(pct + 1, &sa->sin6_scope_id);
        if (r < 0) {
            return r;
        }
    }
    if (inet_pton(AF_INET6, host, &sa->sin6_addr) != 1) {
        return -EINVAL;
    }
    /* A zone only means something for link-local scope (RFC 4007 §6). */
    if (pct && !IN6_IS_ADDR_LINKLOCAL(&sa->sin6_addr) &&
        !IN6_IS_ADDR_MC_LINKLOCAL(&sa->sin6_addr)) {
        return -EINVAL;
    }
    return 0;
}

int parse_listen_address(const char *s, uint16_t default_port, struct sockaddr_in6 *ret)
{
    /* Longest valid input: "[" addr "%" zone "]:" 65535. */
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 16];
    size_t len = strlen(s);
    if (len == 0 || len >= sizeof(buf)) {
        return -EINVAL;
    }
    memcpy(buf, s, len + 1);

    struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
    uint32_t port = default_port;
    char *port_str = NULL;
    int r;

    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (!close) {
            return -EINVAL;
        }
        *close = '\0';
        if (close[1] == ':') {
            port_str = close + 2;
        } else if (close[1] != '\0') {
            return -EINVAL;
        }
        r = parse_ipv6_zone(buf + 1, &sa);
    } else {
        /* Every IPv6 address has at least two colons, so with fewer this is
         * IPv4 with an optional ":PORT", and with more a bare IPv6 address,
         * which cannot carry a port without brackets. */
        char *colon = strchr(buf, ':');
        if (colon && strchr(colon + 1, ':')) {
            r = parse_ipv6_zone(buf, &sa);
        } else {
            struct in_addr a4;
            if (colon) {
                *colon = '\0';
                port_str = colon + 1;
            }
            if (inet_pton(AF_INET, buf, &a4) != 1) {
                return -EINVAL;
            }
            r = 0;
            /* RFC 4291 §2.5.5.2: IPv4-mapped ::ffff:A.B.C.D. */
            sa.sin6_addr.s6_addr[10] = 0xff;
            sa.sin6_addr.s6_addr[11] = 0xff;
            memcpy(&sa.sin6_addr.s6_addr[12], &a4, sizeof(a4));
        }
    }
    if (r < 0) {
        return r;
    }
    if (port_str) {
        r = parse_u32(port_str, 0, UINT16_MAX, &port);
        if (r < 0) {
            return r;
        }
    }
    sa.sin6_port = htons((uint16_t)port);
    *ret = sa;
    return 0;
}

bool user_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32 || s[0] == '-') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool ascii_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool dns_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253) {
        return false;
    }
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-') {
                return false;
            }
            label = 0;
            continue;
        }
        if (!ascii_alnum(c) && c != '-') {
            return false;
        }
        if ((c == '-' && label == 0) || ++label > 63) {
            return false;
        }
    }
    return label > 0 && s[n - 1] != '-';
}

bool fleet_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !ascii_alnum(s[0])) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ascii_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') {
            return false;
        }
    }
    return true;
}

static int split_at(const char *s, const char *seps, char **out, size_t max, size_t *ret_n)
{
    size_t n = 0;
    int r = 0;
    for (const char *p = s;;) {
        p += strspn(p, seps);
        if (!*p) {
            break;
        }
        size_t len = strcspn(p, seps);
        if (n == max) {
            r = -E2BIG;
            break;
        }
        out[n] = strndup(p, len);
        if (!out[n]) {
            r = -ENOMEM;
            break;
        }
        n++;
        p += len;
    }
    if (r < 0) {
        for (size_t i = 0; i < n; i++) {
            out[i] = (free(out[i]), NULL);
        }
        return r;
    }
    *ret_n = n;
    return 0;
}

int parse_words(const char *s, char **out, size_t max, size_t *ret_n)
{
    return split_at(s, " \t", out, max, ret_n);
}

int parse_list(const char *s, char **out, size_t max, size_t *ret_n)
{
    return split_at(s, ", \t", out, max, ret_n);
}

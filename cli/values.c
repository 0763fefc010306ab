#include "values.h"

#include <stdio.h>
#include <string.h>

#include "model/intent.h"
#include "parse.h"
#include "rbproto.h"

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool cli_name_valid(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > RBPROTO_MAX_NAME || !alnum(s[0])) {
        return false;
    }
    for (const char *p = s; *p; p++) {
        if (!alnum(*p) && *p != '-' && *p != '_' && *p != '.') {
            return false;
        }
    }
    return true;
}

const char *cli_check_name(const char *s)
{
    if (!s || !s[0]) {
        return "empty name";
    }
    if (!cli_name_valid(s)) {
        return "a name is letters, digits, '.', '_' and '-', starting with a letter or digit, "
               "at most 63";
    }
    return NULL;
}

const char *cli_check_host_address(const char *s, struct in6_addr *ret)
{
    struct in6_addr a;
    if (parse_ipv6(s, &a) < 0) {
        return "not an IPv6 address";
    }
    if (IN6_IS_ADDR_LINKLOCAL(&a) || IN6_IS_ADDR_MULTICAST(&a) || IN6_IS_ADDR_UNSPECIFIED(&a) ||
        IN6_IS_ADDR_LOOPBACK(&a)) {
        return "cannot be given to a host (link-local, multicast, loopback or ::)";
    }
    *ret = a;
    return NULL;
}

const char *cli_check_gateway(const char *s, struct in6_addr *ret)
{
    struct in6_addr a;
    if (parse_ipv6(s, &a) < 0) {
        return "not an IPv6 address";
    }
    if (IN6_IS_ADDR_MULTICAST(&a) || IN6_IS_ADDR_UNSPECIFIED(&a)) {
        return "not a unicast address";
    }
    *ret = a;
    return NULL;
}

const char *cli_check_prefix(const char *s, uint32_t *ret)
{
    return parse_u32(s, 1, 128, ret) < 0 ? "expected a prefix length 1-128" : NULL;
}

const char *cli_check_hostname(const char *s)
{
    return dns_name_valid(s) ? NULL : "not a DNS name";
}

const char *cli_check_mac(const char *s, uint8_t ret[6])
{
    uint8_t mac[6];
    if (parse_mac(s, mac) < 0) {
        return "not a MAC address";
    }
    if (mac[0] & 1) {
        return "a multicast MAC address";
    }
    memcpy(ret, mac, 6);
    return NULL;
}

const char *cli_check_bmc_url(const char *s, char *buf, size_t size)
{
    return model_bmc_url_parse(s, NULL, buf, size) < 0 ? buf : NULL;
}

const char *cli_check_bmc_user(const char *s)
{
    if (!s || !s[0] || !model_bmc_user_valid(s)) {
        return "a BMC user is printable ASCII, 1-64 bytes";
    }
    return NULL;
}

Rackboot__V1__Firmware cli_firmware_to_pb(model_firmware f)
{
    switch (f) {
    case MODEL_FIRMWARE_BIOS:
        return RACKBOOT__V1__FIRMWARE__FIRMWARE_BIOS;
    case MODEL_FIRMWARE_UEFI:
        return RACKBOOT__V1__FIRMWARE__FIRMWARE_UEFI;
    case MODEL_FIRMWARE_UNKNOWN:
        break;
    }
    return RACKBOOT__V1__FIRMWARE__FIRMWARE_UNSPECIFIED;
}

const char *cli_check_firmware(const char *s, Rackboot__V1__Firmware *ret)
{
    model_firmware f;
    if (model_firmware_from_string(s, &f) < 0) {
        return "expected uefi or bios";
    }
    *ret = cli_firmware_to_pb(f);
    return NULL;
}

/* Each comma-separated name of `s` through `parse` into a bit of *bits;
 * the problem, listing the `n` known names from `name`, on an unknown one. */
static const char *check_names_of(const char *s, uint32_t *bits, int (*parse)(const char *, int *),
                                  const char *(*name)(int), int n, char *why, size_t size)
{
    char one[32];
    for (const char *p = s;;) {
        size_t len = strcspn(p, ",");
        int v;
        snprintf(one, sizeof(one), "%.*s", (int)(len < sizeof(one) ? len : sizeof(one) - 1), p);
        if (len == 0 || len >= sizeof(one) || parse(one, &v) < 0 || v <= 0 || v >= 32) {
            size_t off = (size_t)snprintf(why, size, "expected a comma-separated list of");
            for (int i = 1; i < n && off < size; i++) {
                if (name(i)) {
                    off +=
                        (size_t)snprintf(why + off, size - off, "%s %s", i > 1 ? "," : "", name(i));
                }
            }
            return why;
        }
        *bits |= 1u << v;
        if (!p[len]) {
            return NULL;
        }
        p += len + 1;
    }
}

static int state_parse(const char *s, int *ret)
{
    Rackboot__V1__InstallState v;
    int r = rbproto_install_state_from_string(s, &v);
    *ret = (int)v;
    return r;
}

static const char *state_name(int v)
{
    return rbproto_install_state_to_string((Rackboot__V1__InstallState)v);
}

static int phase_parse(const char *s, int *ret)
{
    Rackboot__V1__Phase v;
    int r = rbproto_phase_from_string(s, &v);
    *ret = (int)v;
    return r;
}

static const char *phase_name(int v)
{
    return rbproto_phase_to_string((Rackboot__V1__Phase)v);
}

const char *cli_check_states(const char *s, cli_status_filter *f)
{
    static char why[320];
    /* Every value the schema has (the descriptor's), so a new state is
     * listed without a change here. */
    return check_names_of(s, &f->states, state_parse, state_name,
                          (int)rackboot__v1__install_state__descriptor.n_values, why, sizeof(why));
}

const char *cli_check_phases(const char *s, cli_status_filter *f)
{
    static char why[640];
    return check_names_of(s, &f->phases, phase_parse, phase_name,
                          (int)rackboot__v1__phase__descriptor.n_values, why, sizeof(why));
}

bool cli_status_filter_empty(const cli_status_filter *f)
{
    return !f->states && !f->phases;
}

bool cli_status_filter_match(const cli_status_filter *f, const Rackboot__V1__StatusRow *r)
{
    /* A host that never had an install has no state: "none". */
    unsigned state = r->state == RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_UNSPECIFIED
                         ? RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_NONE
                         : (unsigned)r->state;
    bool state_ok = !f->states || (state < 32 && (f->states & (1u << state)));
    bool phase_ok = !f->phases || ((unsigned)r->phase < 32 && (f->phases & (1u << r->phase)));
    return state_ok && phase_ok;
}

size_t cli_status_filter_rows(const cli_status_filter *f, Rackboot__V1__StatusRow **rows, size_t n)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (cli_status_filter_match(f, rows[i])) {
            /* Rotate rows[kept..i] right by one: the kept row comes next,
             * the dropped rows between keep their places behind it. */
            Rackboot__V1__StatusRow *keep = rows[i];
            memmove(&rows[kept + 1], &rows[kept], (i - kept) * sizeof(*rows));
            rows[kept++] = keep;
        }
    }
    return kept;
}

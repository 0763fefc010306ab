#include "values.h"

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

#include "bmc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse.h"
#include "util.h"

static int refuse(char *why, size_t why_len, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* The schemes a driver exists for, with their default ports. */
static const struct {
    const char *scheme;
    uint16_t port;
} schemes[] = {
    { "ipmi", MODEL_BMC_IPMI_PORT },
};

int model_bmc_url_parse(const char *url, model_bmc_endpoint *ret, char *why, size_t why_len)
{
    if (!url || !*url) {
        return refuse(why, why_len, "empty BMC URL");
    }
    if (strlen(url) > MODEL_BMC_URL_MAX) {
        return refuse(why, why_len, "BMC URL longer than %u bytes", MODEL_BMC_URL_MAX);
    }
    const char *sep = strstr(url, "://");
    if (!sep) {
        return refuse(why, why_len, "BMC URL without a scheme (ipmi://HOST[:PORT])");
    }
    model_bmc_endpoint ep = { 0 };
    size_t slen = (size_t)(sep - url);
    size_t k;
    for (k = 0; k < ARRAY_SIZE(schemes); k++) {
        if (strlen(schemes[k].scheme) == slen && strncasecmp(url, schemes[k].scheme, slen) == 0) {
            break;
        }
    }
    if (k == ARRAY_SIZE(schemes)) {
        return refuse(why, why_len, "BMC URL scheme '%.*s' is not supported (ipmi://)",
                      (int)(slen < 16 ? slen : 16), url);
    }
    snprintf(ep.scheme, sizeof(ep.scheme), "%s", schemes[k].scheme);
    ep.port = schemes[k].port;

    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    /* A trailing slash is harmless; anything else after the host is not. */
    if (auth[alen] != '\0' && !(auth[alen] == '/' && auth[alen + 1] == '\0')) {
        return refuse(why, why_len, "BMC URL has a path, query or fragment");
    }
    if (memchr(auth, '@', alen)) {
        return refuse(why, why_len,
                      "BMC URL holds credentials: give bmc_user and a password "
                      "file instead");
    }
    const char *host = auth, *port = NULL;
    size_t hlen;
    if (*auth == '[') {
        const char *close = memchr(auth, ']', alen);
        if (!close) {
            return refuse(why, why_len, "BMC URL: '[' without ']'");
        }
        host = auth + 1;
        hlen = (size_t)(close - host);
        if (close + 1 < auth + alen) {
            if (close[1] != ':') {
                return refuse(why, why_len, "BMC URL: junk after ']'");
            }
            port = close + 2;
        }
    } else {
        const char *colon = memchr(auth, ':', alen);
        hlen = colon ? (size_t)(colon - auth) : alen;
        if (colon) {
            port = colon + 1;
        }
    }
    if (hlen == 0 || hlen > MODEL_BMC_HOST_MAX) {
        return refuse(why, why_len, "BMC URL without a host");
    }
    memcpy(ep.host, host, hlen);
    ep.host[hlen] = '\0';

    struct in6_addr a6;
    struct in_addr a4;
    if (*auth == '[') {
        if (inet_pton(AF_INET6, ep.host, &a6) != 1) {
            return refuse(why, why_len, "BMC URL: '%s' is not an IPv6 address", ep.host);
        }
    } else if (inet_pton(AF_INET, ep.host, &a4) != 1 && !dns_name_valid(ep.host)) {
        return refuse(why, why_len, "BMC URL: '%s' is not an address or a host name", ep.host);
    }
    if (port) {
        size_t plen = (size_t)(auth + alen - port);
        unsigned long v = 0;
        if (plen == 0 || plen > 5) {
            return refuse(why, why_len, "BMC URL: bad port");
        }
        for (size_t i = 0; i < plen; i++) {
            if (port[i] < '0' || port[i] > '9') {
                return refuse(why, why_len, "BMC URL: bad port");
            }
            v = v * 10 + (unsigned long)(port[i] - '0');
        }
        if (v == 0 || v > 65535) {
            return refuse(why, why_len, "BMC URL: port %lu out of range", v);
        }
        ep.port = (uint16_t)v;
    }
    if (ret) {
        *ret = ep;
    }
    return 0;
}

static bool printable(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++) {
        if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e || n >= max) {
            return false;
        }
    }
    return true;
}

bool model_bmc_user_valid(const char *user)
{
    return user && printable(user, MODEL_BMC_USER_MAX);
}

bool model_bmc_password_valid(const char *password)
{
    return password && printable(password, MODEL_BMC_PASSWORD_MAX);
}

const char *model_firmware_to_string(model_firmware f)
{
    switch (f) {
    case MODEL_FIRMWARE_BIOS:
        return "bios";
    case MODEL_FIRMWARE_UEFI:
        return "uefi";
    case MODEL_FIRMWARE_UNKNOWN:
        break;
    }
    return "";
}

int model_firmware_from_string(const char *s, model_firmware *ret)
{
    if (s && strcasecmp(s, "bios") == 0) {
        *ret = MODEL_FIRMWARE_BIOS;
        return 0;
    }
    if (s && strcasecmp(s, "uefi") == 0) {
        *ret = MODEL_FIRMWARE_UEFI;
        return 0;
    }
    return -EINVAL;
}

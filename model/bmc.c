#include "bmc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

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

static bool all_digits_and_dots(const char *s)
{
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s) && *s != '.') {
            return false;
        }
    }
    return true;
}

/* The authority (between "//" and the end): "[v6]", "[v6]:port", "host",
 * "host:port", into ep's host, port and ipv6. */
static int parse_authority(const char *a, size_t alen, model_bmc_endpoint *ep, char *why,
                           size_t why_len)
{
    const char *port = NULL, *host;
    size_t hlen;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', alen);
        if (!close) {
            return refuse(why, why_len, "BMC URL: '[' without ']'");
        }
        host = a + 1;
        hlen = (size_t)(close - host);
        if (close + 1 < a + alen) {
            if (close[1] != ':') {
                return refuse(why, why_len, "BMC URL: junk after ']'");
            }
            port = close + 2;
        }
        ep->ipv6 = true;
    } else {
        const char *colon = memchr(a, ':', alen);
        if (colon && memchr(colon + 1, ':', (size_t)(a + alen - colon - 1))) {
            return refuse(why, why_len,
                          "BMC URL: IPv6 addresses go in brackets: "
                          "ipmi://[2001:db8::1]:623");
        }
        host = a;
        hlen = colon ? (size_t)(colon - a) : alen;
        port = colon ? colon + 1 : NULL;
    }
    if (hlen == 0 || hlen > MODEL_BMC_HOST_MAX) {
        return refuse(why, why_len, "BMC URL without a host");
    }
    memcpy(ep->host, host, hlen);
    ep->host[hlen] = '\0';
    if (ep->ipv6) {
        struct in6_addr a6;
        if (strchr(ep->host, '%')) {
            return refuse(why, why_len, "BMC URL: IPv6 zones are not supported");
        }
        if (inet_pton(AF_INET6, ep->host, &a6) != 1) {
            return refuse(why, why_len, "BMC URL: not an IPv6 address in brackets");
        }
    } else if (all_digits_and_dots(ep->host)) {
        struct in_addr a4;
        if (inet_pton(AF_INET, ep->host, &a4) != 1) {
            return refuse(why, why_len, "BMC URL: not an IPv4 address");
        }
    } else if (!dns_name_valid(ep->host)) {
        return refuse(why, why_len, "BMC URL: not a valid host name");
    }
    /* Names compare case-insensitively; keep one spelling. */
    for (char *c = ep->host; *c; c++) {
        *c = (char)tolower((unsigned char)*c);
    }
    if (port) {
        size_t plen = (size_t)(a + alen - port);
        unsigned long v = 0;
        for (size_t i = 0; i < plen && v <= 65535; i++) {
            if (!isdigit((unsigned char)port[i])) {
                return refuse(why, why_len, "BMC URL: the port must be a number in 1-65535");
            }
            v = v * 10 + (unsigned long)(port[i] - '0');
        }
        if (plen == 0 || v == 0 || v > 65535) {
            return refuse(why, why_len, "BMC URL: the port must be a number in 1-65535");
        }
        ep->port = (uint16_t)v;
    }
    return 0;
}

int model_bmc_url_parse(const char *url, model_bmc_endpoint *ret, char *why, size_t why_len)
{
    if (!url || !*url) {
        return refuse(why, why_len, "empty BMC URL");
    }
    if (strlen(url) > MODEL_BMC_URL_MAX) {
        return refuse(why, why_len, "BMC URL longer than %u bytes", MODEL_BMC_URL_MAX);
    }
    const char *sep = strstr(url, "://");
    if (!sep || sep == url) {
        return refuse(why, why_len, "not a BMC URL (want ipmi://HOST[:PORT])");
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
    /* Credentials: refused before anything else, and never echoed. */
    if (strchr(auth, '@')) {
        return refuse(why, why_len,
                      "credentials do not belong in the BMC URL (give the user "
                      "and a password file instead)");
    }
    size_t alen = strlen(auth);
    if (alen > 0 && auth[alen - 1] == '/') {
        alen--; /* "ipmi://host/" is the same URL */
    }
    for (size_t i = 0; i < alen; i++) {
        unsigned char c = (unsigned char)auth[i];
        if (c <= ' ' || c >= 0x7f) {
            return refuse(why, why_len, "space or control character in the BMC URL");
        }
        if (c == '/' || c == '?' || c == '#') {
            return refuse(why, why_len, "a BMC URL has no path, query or fragment");
        }
    }
    int r = parse_authority(auth, alen, &ep, why, why_len);
    if (r < 0) {
        return r;
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

int model_bmc_password_parse(const char *buf, size_t len, char **ret, char *why, size_t why_len)
{
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r') {
            len--;
        }
    }
    if (len == 0) {
        return refuse(why, why_len, "empty (a BMC without a password takes no password file)");
    }
    if (memchr(buf, '\n', len)) {
        return refuse(why, why_len, "more than one line (the password is the first line)");
    }
    if (len > MODEL_BMC_PASSWORD_MAX) {
        return refuse(why, why_len, "longer than %u bytes", MODEL_BMC_PASSWORD_MAX);
    }
    char *p = strndup(buf, len);
    if (!p) {
        return -ENOMEM;
    }
    if (strlen(p) != len || !model_bmc_password_valid(p)) {
        model_bmc_password_free(p);
        return refuse(why, why_len, "not printable ASCII (control characters or a NUL byte)");
    }
    *ret = p;
    return 0;
}

int model_bmc_password_read_file(const char *path, char **ret, char *why, size_t why_len)
{
    /* The longest acceptable content, its line end, and one byte more to
     * tell a longer file. */
    char buf[MODEL_BMC_PASSWORD_MAX + 3];
    size_t len = 0;
    struct stat st;
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) < 0) {
        int r = negative_errno();
        refuse(why, why_len, "%s: %s", path, errstr(r));
        return r;
    }
    if (S_ISDIR(st.st_mode)) {
        refuse(why, why_len, "%s: is a directory", path);
        return -EISDIR;
    }
    if (S_ISREG(st.st_mode) && (st.st_mode & S_IRWXO)) {
        refuse(why, why_len,
               "%s: mode %04o gives others access to a password: refused (chmod o= it, "
               "e.g. to 0600 or 0640)",
               path, (unsigned)(st.st_mode & 07777));
        return -EACCES;
    }
    while (len < sizeof(buf)) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int r = negative_errno();
            explicit_bzero(buf, sizeof(buf));
            refuse(why, why_len, "%s: %s", path, errstr(r));
            return r;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    char reason[128];
    int r = model_bmc_password_parse(buf, len, ret, reason, sizeof(reason));
    explicit_bzero(buf, sizeof(buf));
    if (r == -EINVAL) {
        refuse(why, why_len, "%s: %s", path, reason);
    }
    return r;
}

char *model_bmc_password_free(char *password)
{
    if (password) {
        explicit_bzero(password, strlen(password));
        free(password);
    }
    return NULL;
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

/* power/target.c: a BMC endpoint from a URL, plus credentials. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errmsg.h"
#include "log.h"
#include "parse.h"
#include "power/power-internal.h"
#include "util.h"

static bool all_digits_and_dots(const char *s)
{
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s) && *s != '.') {
            return false;
        }
    }
    return true;
}

int power_target_format_hostport(const power_target *t, char *buf, size_t size)
{
    int n = snprintf(buf, size, t->ipv6 ? "[%s]:%u" : "%s:%u", t->host, (unsigned)t->port);
    if (n < 0 || (size_t)n >= size) {
        return -ENOSPC;
    }
    return 0;
}

static int make_display(power_target *t)
{
    char hp[300];
    int r = power_target_format_hostport(t, hp, sizeof(hp));
    if (r < 0) {
        return r;
    }
    char quoted[100];
    log_quote(quoted, sizeof(quoted), t->user);
    if (asprintf(&t->display, "%s://%s user=%s", t->scheme, hp, quoted) < 0) {
        t->display = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* The authority of a URL (what lies between "//" and the end): "[v6]",
 * "[v6]:port", "host", "host:port". */
static int parse_authority(const char *a, uint16_t default_port, power_target *t, char **ret_error)
{
    const char *port_str = NULL;
    _cleanup_free_ char *host = NULL;

    if (a[0] == '[') {
        const char *end = strchr(a, ']');
        if (!end) {
            return errmsg_fail(ret_error, -EINVAL, "unterminated '[' in BMC address");
        }
        host = memdup_str(a + 1, (size_t)(end - a - 1));
        if (!host) {
            return -ENOMEM;
        }
        if (strchr(host, '%')) {
            return errmsg_fail(ret_error, -EINVAL, "IPv6 zones are not supported in BMC URLs");
        }
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1) {
            return errmsg_fail(ret_error, -EINVAL, "not an IPv6 address in brackets");
        }
        if (end[1] == ':') {
            port_str = end + 2;
        } else if (end[1] != '\0') {
            return errmsg_fail(ret_error, -EINVAL, "junk after ']' in BMC address");
        }
        t->ipv6 = true;
    } else {
        const char *colon = strchr(a, ':');
        if (colon && strchr(colon + 1, ':')) {
            return errmsg_fail(ret_error, -EINVAL,
                               "IPv6 addresses go in brackets: ipmi://[2001:db8::1]:623");
        }
        size_t n = colon ? (size_t)(colon - a) : strlen(a);
        host = memdup_str(a, n);
        if (!host) {
            return -ENOMEM;
        }
        if (colon) {
            port_str = colon + 1;
        }
        if (host[0] == '\0') {
            return errmsg_fail(ret_error, -EINVAL, "no host in BMC URL");
        }
        if (all_digits_and_dots(host)) {
            struct in_addr a4;
            if (inet_pton(AF_INET, host, &a4) != 1) {
                return errmsg_fail(ret_error, -EINVAL, "not an IPv4 address");
            }
        } else if (!dns_name_valid(host)) {
            return errmsg_fail(ret_error, -EINVAL, "not a valid host name");
        }
        /* Names compare case-insensitively; keep one spelling. */
        for (char *p = host; *p; p++) {
            *p = (char)tolower((unsigned char)*p);
        }
    }

    uint32_t port = default_port;
    if (port_str && parse_u32(port_str, 1, 65535, &port) < 0) {
        return errmsg_fail(ret_error, -EINVAL, "port must be a number in 1-65535");
    }
    t->host = TAKE_PTR(host);
    t->port = (uint16_t)port;
    return 0;
}

int power_target_parse(const char *url, const char *user, const char *password, power_target **ret,
                       char **ret_error)
{
    if (!url || !user || !password) {
        return errmsg_fail(ret_error, -EINVAL, "missing URL or credentials");
    }
    const char *sep = strstr(url, "://");
    if (!sep || sep == url) {
        return errmsg_fail(ret_error, -EINVAL, "not a BMC URL (want ipmi://HOST[:PORT])");
    }
    _cleanup_free_ char *scheme = memdup_str(url, (size_t)(sep - url));
    if (!scheme) {
        return -ENOMEM;
    }
    for (char *p = scheme; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    const power_driver *d = power_driver_lookup(scheme);
    if (!d) {
        char q[64];
        return errmsg_fail(ret_error, -EINVAL, "unsupported BMC URL scheme %s",
                           log_quote(q, sizeof(q), scheme));
    }

    const char *authority = sep + 3;
    /* Userinfo: refuse before anything else, and never echo it. */
    if (strchr(authority, '@')) {
        return errmsg_fail(ret_error, -EINVAL,
                           "credentials do not belong in the BMC URL (give user and password "
                           "separately)");
    }
    size_t alen = strlen(authority);
    if (alen > 0 && authority[alen - 1] == '/') {
        alen--; /* "ipmi://host/" is the same URL */
    }
    _cleanup_free_ char *auth = memdup_str(authority, alen);
    if (!auth) {
        return -ENOMEM;
    }
    if (strpbrk(auth, "/?#")) {
        return errmsg_fail(ret_error, -EINVAL, "a BMC URL has no path, query or fragment");
    }
    for (const char *p = auth; *p; p++) {
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
            return errmsg_fail(ret_error, -EINVAL, "space or control character in BMC URL");
        }
    }
    if (d->check_credentials) {
        int r = d->check_credentials(user, password, ret_error);
        if (r < 0) {
            return r;
        }
    }

    power_target *t = calloc(1, sizeof(*t));
    if (!t) {
        return -ENOMEM;
    }
    int r = parse_authority(auth, d->default_port, t, ret_error);
    if (r < 0) {
        power_target_free(t);
        return r;
    }
    t->scheme = TAKE_PTR(scheme);
    t->user = strdup(user);
    t->password = strdup(password);
    if (!t->user || !t->password || make_display(t) < 0) {
        power_target_free(t);
        return -ENOMEM;
    }
    *ret = t;
    return 0;
}

power_target *power_target_copy(const power_target *t)
{
    power_target *c = calloc(1, sizeof(*c));
    if (!c) {
        return NULL;
    }
    c->scheme = strdup(t->scheme);
    c->host = strdup(t->host);
    c->user = strdup(t->user);
    c->password = strdup(t->password);
    c->display = strdup(t->display);
    c->port = t->port;
    c->ipv6 = t->ipv6;
    if (!c->scheme || !c->host || !c->user || !c->password || !c->display) {
        return power_target_free(c);
    }
    return c;
}

power_target *power_target_free(power_target *t)
{
    if (!t) {
        return NULL;
    }
    if (t->password) {
        explicit_bzero(t->password, strlen(t->password));
        free(t->password);
    }
    free(t->scheme);
    free(t->host);
    free(t->user);
    free(t->display);
    free(t);
    return NULL;
}

const char *power_target_to_string(const power_target *t)
{
    return t->display;
}

const char *power_target_scheme(const power_target *t)
{
    return t->scheme;
}

const char *power_target_host(const power_target *t)
{
    return t->host;
}

uint16_t power_target_port(const power_target *t)
{
    return t->port;
}

const char *power_target_user(const power_target *t)
{
    return t->user;
}

const char *power_target_password(const power_target *t)
{
    return t->password;
}

bool power_target_same_endpoint(const power_target *a, const power_target *b)
{
    /* Hosts were lower-cased at parse time; IPv6 literals may still be
     * spelled two ways ("2001:db8::1" and "2001:db8:0::1"): compare those as
     * addresses. */
    if (a->port != b->port || a->ipv6 != b->ipv6) {
        return false;
    }
    if (a->ipv6) {
        struct in6_addr x, y;
        if (inet_pton(AF_INET6, a->host, &x) == 1 && inet_pton(AF_INET6, b->host, &y) == 1) {
            return memcmp(&x, &y, sizeof(x)) == 0;
        }
    }
    return strcasecmp(a->host, b->host) == 0;
}

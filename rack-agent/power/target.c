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
#include "model/bmc.h"
#include "parse.h"
#include "power/power-internal.h"
#include "util.h"

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

int power_target_parse(const char *url, const char *user, const char *password, power_target **ret,
                       char **ret_error)
{
    if (!url || !user || !password) {
        return errmsg_fail(ret_error, -EINVAL, "missing URL or credentials");
    }
    model_bmc_endpoint ep;
    char why[160];
    if (model_bmc_url_parse(url, &ep, why, sizeof(why)) < 0) {
        return errmsg_fail(ret_error, -EINVAL, "%s", why);
    }
    const power_driver *d = power_driver_lookup(ep.scheme);
    if (!d) {
        char q[64];
        return errmsg_fail(ret_error, -EINVAL, "no driver for BMC URL scheme %s",
                           log_quote(q, sizeof(q), ep.scheme));
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
    t->host = strdup(ep.host);
    t->port = ep.port;
    t->ipv6 = ep.ipv6;
    t->scheme = strdup(ep.scheme);
    t->user = strdup(user);
    t->password = strdup(password);
    if (!t->host || !t->scheme || !t->user || !t->password || make_display(t) < 0) {
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

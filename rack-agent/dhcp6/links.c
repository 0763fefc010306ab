#include "dhcp6/links.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "timeutil.h"
#include "util.h"

enum { LINKS_MAX = 256 };

typedef struct link_prefix {
    unsigned ifindex;
    struct in6_addr prefix;
    uint8_t len;
} link_prefix;

struct dhcp6_links {
    link_prefix prefixes[LINKS_MAX];
    size_t n;
    uint64_t refreshed_ms;
};

static bool prefix_match(const struct in6_addr *a, const struct in6_addr *b, unsigned len)
{
    unsigned bytes = len / 8, bits = len % 8;
    if (memcmp(a, b, bytes) != 0) {
        return false;
    }
    if (bits == 0) {
        return true;
    }
    uint8_t mask = (uint8_t)(0xff << (8 - bits));
    return (a->s6_addr[bytes] & mask) == (b->s6_addr[bytes] & mask);
}

static uint8_t mask_len(const struct sockaddr_in6 *m)
{
    uint8_t n = 0;
    for (size_t i = 0; i < 16; i++) {
        uint8_t b = m->sin6_addr.s6_addr[i];
        while (b & 0x80) {
            n++;
            b = (uint8_t)(b << 1);
        }
        if (m->sin6_addr.s6_addr[i] != 0xff) {
            break;
        }
    }
    return n;
}

int dhcp6_links_new(dhcp6_links **ret)
{
    dhcp6_links *l = calloc(1, sizeof(*l));
    if (!l) {
        return -ENOMEM;
    }
    int r = dhcp6_links_refresh(l);
    if (r < 0) {
        free(l);
        return r;
    }
    *ret = l;
    return 0;
}

dhcp6_links *dhcp6_links_free(dhcp6_links *l)
{
    free(l);
    return NULL;
}

int dhcp6_links_refresh(dhcp6_links *l)
{
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) < 0) {
        return negative_errno();
    }
    l->n = 0;
    for (struct ifaddrs *i = ifa; i && l->n < LINKS_MAX; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET6 || !i->ifa_netmask) {
            continue;
        }
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)i->ifa_addr;
        if (IN6_IS_ADDR_LINKLOCAL(&a->sin6_addr) || IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
            IN6_IS_ADDR_MULTICAST(&a->sin6_addr)) {
            continue;
        }
        link_prefix *p = &l->prefixes[l->n++];
        p->ifindex = if_nametoindex(i->ifa_name);
        p->prefix = a->sin6_addr;
        p->len = mask_len((const struct sockaddr_in6 *)(const void *)i->ifa_netmask);
    }
    freeifaddrs(ifa);
    l->refreshed_ms = now_monotonic_ms();
    return 0;
}

bool dhcp6_links_on_link(void *userdata, int ifindex, const struct in6_addr *link_addr,
                         const struct in6_addr *addr)
{
    dhcp6_links *l = userdata;
    if (link_addr) {
        /* RFC 8415 §19.1.1 lets a relay leave link-address unspecified when
         * it sends an Interface-Id; then we cannot tell, so do not refuse. */
        if (IN6_IS_ADDR_UNSPECIFIED(link_addr)) {
            return true;
        }
        return prefix_match(link_addr, addr, 64);
    }
    if (now_monotonic_ms() - l->refreshed_ms >= DHCP6_LINKS_REFRESH_MS) {
        int r = dhcp6_links_refresh(l);
        if (r < 0) {
            log_warn("dhcp6 cannot read interface prefixes err=%s", errstr(r));
        }
    }
    for (size_t i = 0; i < l->n; i++) {
        const link_prefix *p = &l->prefixes[i];
        if ((int)p->ifindex == ifindex && prefix_match(&p->prefix, addr, p->len)) {
            return true;
        }
    }
    return false;
}

/* Which addresses are on the link a DHCPv6 message came from (RFC 8415
 * §18.3.2, §18.3.3, §18.3.5: Request, Confirm and Rebind check it).
 *
 * Direct messages: the served interface's own global prefixes, read with
 * getifaddrs(3) and refreshed when older than DHCP6_LINKS_REFRESH_MS, so a
 * renumbered interface is noticed without a restart. Relayed messages: the
 * /64 of the innermost relay's link-address (RFC 8415 §19.1.1: the relay
 * puts an address of the client's link there). */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#define DHCP6_LINKS_REFRESH_MS 10000u

typedef struct dhcp6_links dhcp6_links;

int dhcp6_links_new(dhcp6_links **ret);
dhcp6_links *dhcp6_links_free(dhcp6_links *l);
/* Re-reads the interfaces' prefixes now. */
int dhcp6_links_refresh(dhcp6_links *l);
/* A dhcp6_on_link_fn: `userdata` is the dhcp6_links. */
bool dhcp6_links_on_link(void *userdata, int ifindex, const struct in6_addr *link_addr,
                         const struct in6_addr *addr);

/* Fuzzes the DHCPv6 parser and the whole server decision on one datagram:
 * parse, answer (direct and as if relayed), and check every answer the
 * server builds is itself well-formed enough to walk. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dhcp6/server.h"
#include "util.h"

static dhcp6_server *server;
static dhcp6_bindings *bindings;
static intents_store *store;

static void setup_once(void)
{
    RB_ASSERT(intents_store_new(&store) == 0);
    intent_set *set;
    RB_ASSERT(intent_set_new(1, &set) == 0);
    model_profile prof = { .name = strdup("p") };
    RB_ASSERT(intent_set_add_profile(set, &prof) == 0);
    intent in = { .install_id = strdup("i"), .host = strdup("h"), .n_macs = 1 };
    memcpy(in.macs[0], "\x52\x54\x00\x12\x34\x56", 6);
    inet_pton(AF_INET6, "2001:db8::100", &in.address);
    RB_ASSERT(intent_set_add(set, &in, "p") == 0);
    intents_store_replace(store, set);

    dhcp6_pool pool;
    inet_pton(AF_INET6, "2001:db8::1000", &pool.first);
    inet_pton(AF_INET6, "2001:db8::10ff", &pool.last);
    RB_ASSERT(dhcp6_bindings_new(&pool, &bindings) == 0);
    dhcp6_server_config cfg = { .duid = { 0, 3, 0, 1, 2, 0, 0, 0, 0, 1 },
                                .duid_len = 10,
                                .preferred_lifetime = 100,
                                .valid_lifetime = 200,
                                .rapid_commit = true,
                                .preference = DHCP6_PREFERENCE_MAX,
                                .n_search = 1,
                                .search = { "example.com" },
                                .http_port = 8080,
                                .has_pool = true,
                                .pool = pool };
    inet_pton(AF_INET6, "2001:db8::1", &cfg.advertise_address);
    /* The second pass below plays the relay: trust it, so relayed input
     * reaches the whole server and not only the trust check. */
    inet_pton(AF_INET6, "2001:db8::fffe", &cfg.trusted_relays[0].addr);
    cfg.trusted_relays[0].len = 128;
    cfg.n_trusted_relays = 1;
    RB_ASSERT(dhcp6_server_new(&cfg, store, bindings, &server) == 0);
}

static void walk_options(const uint8_t *p, size_t len)
{
    cursor c = cursor_make(p, len);
    RB_ASSERT(cursor_skip(&c, 4) == 0);
    while (!cursor_at_end(&c)) {
        uint16_t code, olen;
        RB_ASSERT(cursor_read_be16(&c, &code) == 0);
        RB_ASSERT(cursor_read_be16(&c, &olen) == 0);
        RB_ASSERT(cursor_skip(&c, olen) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server) {
        setup_once();
    }
    static dhcp6_tx tx;
    dhcp6_rx_info rx = { .src_port = 546, .ifindex = 1, .dst_multicast = true };
    inet_pton(AF_INET6, "fe80::5054:ff:fe12:3456", &rx.src);
    if (dhcp6_server_handle(server, data, size, &rx, 1000, &tx) == 1) {
        RB_ASSERT(tx.len >= 4 && tx.len <= sizeof(tx.buf));
        if (tx.buf[0] != DHCP6_RELAY_REPL) {
            walk_options(tx.buf, tx.len);
        }
    }
    rx.dst_multicast = false;
    inet_pton(AF_INET6, "2001:db8::fffe", &rx.src);
    (void)dhcp6_server_handle(server, data, size, &rx, 1000, &tx);
    /* Keep the binding table from growing without bound across runs. */
    if (dhcp6_bindings_count(bindings) > 200) {
        dhcp6_bindings_expire(bindings, UINT64_MAX);
    }
    return 0;
}

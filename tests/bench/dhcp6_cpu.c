/* dhcp6_cpu: a deterministic CPU-cost driver for the agent's DHCPv6 path.
 *
 * No sockets, no clock: sets up a dhcp6_server as the daemon does (a pool,
 * a store of intents, the bindings journalled to a lease file through
 * dhcp6_leasefile_sink, an on-link check) and pushes full exchanges through
 * dhcp6_server_handle: for each exchange a Solicit, then a Request built
 * from the Advertise (Server ID, offered IAADDR), like tests/bench/dhcp6_load.c
 * sends them (DUID-LL per client, IA_NA, Elapsed Time, ORO 23). Clients are
 * visited round-robin, so after the first round every exchange finds its
 * binding, as under the benchmark's long runs.
 *
 * Meant to run under callgrind, counting only run_exchanges():
 *
 *     valgrind --tool=callgrind --toggle-collect=run_exchanges \
 *         BUILD/tests/dhcp6_cpu [-m pool|host] [-n CLIENTS] [-x EXCHANGES]
 *     callgrind_annotate callgrind.out.PID
 *
 * instructions per exchange = total Ir / EXCHANGES. Mode "host" gives every
 * client an install intent (own search list), so the boot URL and per-host
 * options are built; "pool" (the benchmark's case) has no intents for the
 * clients. Not a test: built with the tests, never registered with ctest. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "dhcp6/leasefile.h"
#include "dhcp6/server.h"
#include "util.h"

static size_t put_opt(uint8_t *p, uint16_t code, const void *data, uint16_t len)
{
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    if (len) {
        memcpy(p + 4, data, len);
    }
    return 4u + len;
}

static void client_mac(uint32_t client, uint8_t mac[6])
{
    mac[0] = 0x02;
    mac[1] = 0xdb;
    mac[2] = (uint8_t)(client >> 24);
    mac[3] = (uint8_t)(client >> 16);
    mac[4] = (uint8_t)(client >> 8);
    mac[5] = (uint8_t)client;
}

static size_t build(uint8_t *buf, int type, uint32_t xid, uint32_t client, const uint8_t *srvid,
                    size_t srvid_len, const uint8_t *addr)
{
    uint8_t *p = buf;
    uint8_t duid[10] = { 0, 3, 0, 1 };
    p[0] = (uint8_t)type;
    p[1] = (uint8_t)(xid >> 16);
    p[2] = (uint8_t)(xid >> 8);
    p[3] = (uint8_t)xid;
    p += 4;
    client_mac(client, duid + 4);
    p += put_opt(p, 1, duid, sizeof(duid));
    if (srvid) {
        p += put_opt(p, 2, srvid, (uint16_t)srvid_len);
    }
    uint8_t ia[12 + 28];
    size_t ialen = 12;
    uint32_t iaid = htonl(client + 1);
    memcpy(ia, &iaid, 4);
    memset(ia + 4, 0, 8);
    if (addr) {
        uint8_t iaaddr[24];
        memcpy(iaaddr, addr, 16);
        memset(iaaddr + 16, 0, 8);
        ialen += put_opt(ia + 12, 5, iaaddr, sizeof(iaaddr));
    }
    p += put_opt(p, 3, ia, (uint16_t)ialen);
    uint8_t elapsed[2] = { 0, 0 };
    p += put_opt(p, 8, elapsed, 2);
    uint8_t oro[2] = { 0, 23 };
    p += put_opt(p, 6, oro, 2);
    return (size_t)(p - buf);
}

static const uint8_t *find_opt(const uint8_t *p, const uint8_t *end, uint16_t code, uint16_t *len)
{
    while (end - p >= 4) {
        uint16_t c = (uint16_t)((p[0] << 8) | p[1]);
        uint16_t l = (uint16_t)((p[2] << 8) | p[3]);
        if (end - p - 4 < l) {
            return NULL;
        }
        if (c == code) {
            *len = l;
            return p + 4;
        }
        p += 4 + l;
    }
    return NULL;
}

static bool on_link(void *userdata, int ifindex, const struct in6_addr *link_addr,
                    const struct in6_addr *addr)
{
    (void)userdata;
    (void)ifindex;
    (void)link_addr;
    /* 2001:db8:1::/64, as the served interface's prefix. */
    static const uint8_t prefix[8] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0 };
    return memcmp(addr, prefix, 8) == 0;
}

static uint64_t n_bound;
static void on_bound(void *userdata, const intent *in, const uint8_t mac[6],
                     const struct in6_addr *addr, const uint8_t *duid, size_t duid_len,
                     dhcp6_client_kind kind)
{
    (void)userdata, (void)in, (void)mac, (void)addr, (void)duid, (void)duid_len, (void)kind;
    n_bound++;
}

static uint64_t answered, bad;

/* Not static, not inlined: callgrind --toggle-collect=run_exchanges. */
__attribute__((noinline)) void run_exchanges(dhcp6_server *s, uint32_t n_clients,
                                             uint64_t n_exchanges);
__attribute__((noinline)) void run_exchanges(dhcp6_server *s, uint32_t n_clients,
                                             uint64_t n_exchanges)
{
    static dhcp6_tx tx;
    dhcp6_rx_info rx = { .src_port = 546, .ifindex = 2, .dst_multicast = true };
    /* An EUI-64 link-local, as a veth's is (its MAC is no intent's). */
    inet_pton(AF_INET6, "fe80::200:ff:fe00:1", &rx.src);
    uint8_t pkt[512];
    uint64_t now = 1767225600;
    for (uint64_t i = 0; i < n_exchanges; i++) {
        uint32_t client = (uint32_t)(i % n_clients);
        uint32_t xid = (uint32_t)(i * 2) & 0xffffff;
        if (i % 50000 == 49999) {
            now++;
        }
        size_t len = build(pkt, DHCP6_SOLICIT, xid, client, NULL, 0, NULL);
        if (dhcp6_server_handle(s, pkt, len, &rx, now, &tx) != 1 || tx.buf[0] != DHCP6_ADVERTISE) {
            bad++;
            continue;
        }
        uint16_t sl = 0, ial = 0, al = 0;
        const uint8_t *end = tx.buf + tx.len;
        const uint8_t *sid = find_opt(tx.buf + 4, end, 2, &sl);
        const uint8_t *ia = find_opt(tx.buf + 4, end, 3, &ial);
        const uint8_t *a = ia && ial > 12 ? find_opt(ia + 12, ia + ial, 5, &al) : NULL;
        if (!sid || !a || al < 16) {
            bad++;
            continue;
        }
        len = build(pkt, DHCP6_REQUEST, xid + 1, client, sid, sl, a);
        if (dhcp6_server_handle(s, pkt, len, &rx, now, &tx) != 1 || tx.buf[0] != DHCP6_REPLY) {
            bad++;
            continue;
        }
        answered++;
    }
}

int main(int argc, char **argv)
{
    const char *mode = "pool";
    uint32_t n_clients = 20000;
    uint64_t n_exchanges = 100000;
    int opt;
    while ((opt = getopt(argc, argv, "m:n:x:")) != -1) {
        switch (opt) {
        case 'm':
            mode = optarg;
            break;
        case 'n':
            n_clients = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'x':
            n_exchanges = strtoull(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "usage: dhcp6_cpu [-m pool|host] [-n CLIENTS] [-x EXCHANGES]\n");
            return 2;
        }
    }
    bool host = strcmp(mode, "host") == 0;
    if (n_clients == 0 || (!host && strcmp(mode, "pool") != 0)) {
        fprintf(stderr, "dhcp6_cpu: bad arguments\n");
        return 2;
    }

    intents_store *store;
    RB_ASSERT(intents_store_new(&store) == 0);
    intent_set *set;
    RB_ASSERT(intent_set_new(1, &set) == 0);
    model_profile prof = { .name = strdup("p") };
    RB_ASSERT(intent_set_add_profile(set, &prof) == 0);
    /* Pool mode: a rack's worth of intents, none of them the clients'. */
    uint32_t n_intents = host ? n_clients : 64;
    for (uint32_t i = 0; i < n_intents; i++) {
        char id[32];
        snprintf(id, sizeof(id), "i%u", i);
        intent in = { .install_id = strdup(id), .host = strdup(id), .n_macs = 1 };
        client_mac(host ? i : 0x10000000u + i, in.macs[0]);
        inet_pton(AF_INET6, "2001:db8:1::100", &in.address);
        in.address.s6_addr[12] = (uint8_t)(i >> 24);
        in.address.s6_addr[13] = (uint8_t)(i >> 16);
        in.address.s6_addr[14] = (uint8_t)(i >> 8);
        in.address.s6_addr[15] = (uint8_t)i;
        in.n_search = 2;
        in.search[0] = strdup("rack1.example.com");
        in.search[1] = strdup("example.com");
        RB_ASSERT(intent_set_add(set, &in, "p") == 0);
    }
    intents_store_replace(store, set);

    dhcp6_pool pool;
    inet_pton(AF_INET6, "2001:db8:1::1:0", &pool.first);
    inet_pton(AF_INET6, "2001:db8:1::ffff:ffff", &pool.last);
    dhcp6_bindings *bindings;
    RB_ASSERT(dhcp6_bindings_new(&pool, &bindings) == 0);

    uv_loop_t loop;
    RB_ASSERT(uv_loop_init(&loop) == 0);
    dhcp6_leasefile *lf;
    char path[64];
    snprintf(path, sizeof(path), "/tmp/dhcp6_cpu.%d.leases", (int)getpid());
    RB_ASSERT(dhcp6_leasefile_open(&loop, path, 3600 * 1000, &lf) == 0);
    dhcp6_bindings_set_sink(bindings, dhcp6_leasefile_sink, lf);

    dhcp6_server_config cfg = { .duid = { 0, 1, 0, 1, 0x2b, 0x3c, 0x4d, 0x5e, 0x52, 0x54, 0, 0xaa,
                                          0xbb, 0xcc },
                                .duid_len = 14,
                                .preferred_lifetime = 3600,
                                .valid_lifetime = 7200,
                                .rapid_commit = false,
                                .preference = DHCP6_PREFERENCE_MAX,
                                .n_dns = 1,
                                .n_search = 1,
                                .search = { "rack.example.com" },
                                .http_port = 8080,
                                .has_pool = true,
                                .pool = pool };
    inet_pton(AF_INET6, "2001:db8:1::1", &cfg.dns[0]);
    inet_pton(AF_INET6, "2001:db8:1::1", &cfg.advertise_address);
    dhcp6_server *s;
    RB_ASSERT(dhcp6_server_new(&cfg, store, bindings, &s) == 0);
    dhcp6_server_on_link(s, on_link, NULL);
    dhcp6_server_on_bound(s, on_bound, NULL);

    run_exchanges(s, n_clients, n_exchanges);

    printf("mode=%s clients=%u exchanges=%llu answered=%llu bad=%llu bound=%llu "
           "leases_appended=%llu bindings=%zu\n",
           mode, n_clients, (unsigned long long)n_exchanges, (unsigned long long)answered,
           (unsigned long long)bad, (unsigned long long)n_bound,
           (unsigned long long)dhcp6_leasefile_appended(lf), dhcp6_bindings_count(bindings));

    dhcp6_leasefile_close(lf);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    unlink(path);
    dhcp6_server_free(s);
    dhcp6_bindings_free(bindings);
    intents_store_free(store);
    return bad == 0 ? 0 : 1;
}

/* rack-agent/dhcp6/bindings: the pool allocator under pressure (issue #10).
 *
 * A full pool used to cost a scan of the whole pool per Solicit (3.3 ms at
 * 4,096 addresses: 300 Solicits a second stalled TFTP and HTTP). The work is
 * counted, not timed: dhcp6_bindings_stats.pool_probes counts the address
 * lookups the allocator makes, so these tests assert the work per Solicit
 * without depending on the machine's speed. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dhcp6/bindings.h"

#define NOW 1800000000ull
/* Lookups one allocation may make: reclaim an expired offer, pop a freed
 * address, take a fresh one. More means the allocator searches. */
#define MAX_PROBES_PER_ALLOC 4
/* How long an offer that was never Requested is held (bindings.c). */
#define OFFER_HOLD 60

static struct in6_addr addr6(const char *s)
{
    struct in6_addr a;
    assert_int_equal(inet_pton(AF_INET6, s, &a), 1);
    return a;
}

/* A DUID-LL (RFC 8415 §11.4) made from a number, one per simulated client. */
static void duid_of(uint32_t i, uint8_t d[10])
{
    static const uint8_t head[] = { 0x00, 0x03, 0x00, 0x01, 0x02, 0x00 };
    memcpy(d, head, sizeof(head));
    d[6] = (uint8_t)(i >> 24);
    d[7] = (uint8_t)(i >> 16);
    d[8] = (uint8_t)(i >> 8);
    d[9] = (uint8_t)i;
}

static int alloc(dhcp6_bindings *t, uint32_t client, int ifindex, uint64_t now, dhcp6_binding **ret)
{
    uint8_t d[10];
    duid_of(client, d);
    return dhcp6_bindings_pool(t, d, sizeof(d), ifindex, now, ret);
}

static uint64_t probes(const dhcp6_bindings *t)
{
    return dhcp6_bindings_get_stats(t)->pool_probes;
}

/* A pool of 4,096 addresses, 2001:db8:1::1000 to 2001:db8:1::1fff. */
enum { POOL = 4096 };

static dhcp6_bindings *new_pool(uint32_t max_per_interface)
{
    dhcp6_pool pool = { .first = addr6("2001:db8:1::1000"), .last = addr6("2001:db8:1::1fff") };
    dhcp6_bindings *t;
    assert_int_equal(dhcp6_bindings_new(&pool, &t), 0);
    dhcp6_bindings_set_max_per_interface(t, max_per_interface);
    return t;
}

/* Offers every address of the pool to clients 0..POOL-1 on interface 2. */
static void fill(dhcp6_bindings *t, uint64_t now)
{
    uint8_t *seen = calloc(POOL, 1);
    assert_non_null(seen);
    for (uint32_t i = 0; i < POOL; i++) {
        dhcp6_binding *b;
        assert_int_equal(alloc(t, i, 2, now, &b), 0);
        assert_true(dhcp6_bindings_in_pool(t, &b->addr));
        unsigned off = ((unsigned)b->addr.s6_addr[14] << 8 | b->addr.s6_addr[15]) - 0x1000;
        assert_false(seen[off]);
        seen[off] = 1;
    }
    free(seen);
}

static void test_full_pool_costs_constant_work(void **state)
{
    dhcp6_bindings *t = new_pool(0);
    uint64_t p0 = probes(t);
    fill(t, NOW);
    uint64_t fill_probes = probes(t) - p0;
    /* Filling: about one lookup per address handed out. */
    assert_true(fill_probes <= 2 * (uint64_t)POOL);

    /* 100 more clients ask: every one is refused at constant cost. */
    uint64_t p1 = probes(t);
    for (uint32_t i = 0; i < 100; i++) {
        dhcp6_binding *b;
        assert_int_equal(alloc(t, POOL + i, 2, NOW + 1, &b), -ENOSPC);
    }
    uint64_t per_solicit = (probes(t) - p1) / 100;
    print_message("probes per Solicit on a full pool of %d: %llu (filling: %.2f per address)\n",
                  POOL, (unsigned long long)per_solicit, (double)fill_probes / POOL);
    assert_true(per_solicit <= MAX_PROBES_PER_ALLOC);
    dhcp6_bindings_free(t);
}

static void test_freed_and_expired_addresses_reused(void **state)
{
    dhcp6_bindings *t = new_pool(0);
    fill(t, NOW);
    /* All but the last 96 clients Request their address. */
    for (uint32_t i = 0; i < POOL - 96; i++) {
        uint8_t d[10];
        duid_of(i, d);
        dhcp6_binding *b = dhcp6_bindings_find_duid(t, d, sizeof(d));
        assert_non_null(b);
        dhcp6_bindings_commit(t, b, d, sizeof(d), 1, NOW + 7200);
    }

    /* A released address goes to the next client, found at once. */
    uint8_t d17[10];
    duid_of(17, d17);
    dhcp6_binding *b17 = dhcp6_bindings_find_duid(t, d17, sizeof(d17));
    struct in6_addr freed = b17->addr;
    dhcp6_bindings_release(t, b17);
    uint64_t p = probes(t);
    dhcp6_binding *b;
    assert_int_equal(alloc(t, 100000, 2, NOW + 1, &b), 0);
    assert_memory_equal(&b->addr, &freed, 16);
    assert_true(probes(t) - p <= MAX_PROBES_PER_ALLOC);

    /* Offers are held OFFER_HOLD seconds: before that, nothing is free. */
    assert_int_equal(alloc(t, 100001, 2, NOW + OFFER_HOLD - 10, &b), -ENOSPC);
    /* A client that Solicits again keeps its offer, held anew. */
    dhcp6_binding *again;
    assert_int_equal(alloc(t, POOL - 1, 2, NOW + OFFER_HOLD - 10, &again), 0);

    /* Then the other 95 never-Requested offers go to new clients, each
     * found at constant cost, and no committed address is touched. */
    for (uint32_t i = 0; i < 95; i++) {
        p = probes(t);
        assert_int_equal(alloc(t, 200000 + i, 2, NOW + OFFER_HOLD + 1, &b), 0);
        assert_true(probes(t) - p <= MAX_PROBES_PER_ALLOC);
    }
    assert_int_equal(alloc(t, 300000, 2, NOW + OFFER_HOLD + 1, &b), -ENOSPC);
    for (uint32_t i = 0; i < POOL - 96; i++) {
        uint8_t d[10];
        duid_of(i, d);
        assert_true(i == 17 || dhcp6_bindings_find_duid(t, d, sizeof(d)) != NULL);
    }
    uint8_t dl[10];
    duid_of(POOL - 1, dl);
    assert_ptr_equal(dhcp6_bindings_find_duid(t, dl, sizeof(dl)), again);

    /* The periodic sweep frees expired leases for reuse, too. */
    assert_true(dhcp6_bindings_expire(t, NOW + 7201) >= POOL - 97);
    assert_int_equal(alloc(t, 400000, 2, NOW + 7201, &b), 0);
    dhcp6_bindings_free(t);
}

static void test_cap_per_interface(void **state)
{
    dhcp6_bindings *t = new_pool(8);
    dhcp6_binding *b[8], *x;
    for (uint32_t i = 0; i < 8; i++) {
        assert_int_equal(alloc(t, i, 3, NOW, &b[i]), 0);
    }
    /* The ninth client on interface 3 is refused, though the pool has room. */
    assert_true(alloc(t, 8, 3, NOW, &x) < 0);
    assert_int_equal(dhcp6_bindings_count(t), 8);
    /* The clients that hold an address keep it. */
    assert_int_equal(alloc(t, 5, 3, NOW, &x), 0);
    assert_ptr_equal(x, b[5]);
    /* Another interface has a cap of its own. */
    assert_int_equal(alloc(t, 100, 4, NOW, &x), 0);
    /* A release makes room again. */
    dhcp6_bindings_release(t, b[0]);
    assert_int_equal(alloc(t, 8, 3, NOW, &x), 0);
    assert_true(alloc(t, 9, 3, NOW, &x) < 0);
    /* So do offers that were never Requested, once their hold is over. */
    assert_int_equal(alloc(t, 9, 3, NOW + OFFER_HOLD + 1, &x), 0);
    dhcp6_bindings_free(t);
}

/* Interfaces come and go (VLANs, hot-plugged NICs, containers' veths get
 * fresh ifindexes): an interface that holds nothing any more must not keep
 * its place in the per-interface table, or after enough of them every new
 * interface is refused for good. Those that still hold bindings keep theirs
 * and their count. */
static void test_cap_table_reuses_idle_interfaces(void **state)
{
    dhcp6_bindings *t = new_pool(2);
    dhcp6_binding *b, *kept[2];
    /* Interface 1 keeps two leases throughout; it is at its cap. */
    assert_int_equal(alloc(t, 0, 1, NOW, &kept[0]), 0);
    assert_int_equal(alloc(t, 1, 1, NOW, &kept[1]), 0);
    /* A thousand interfaces, one client each, each released again. */
    for (uint32_t i = 0; i < 1000; i++) {
        assert_int_equal(alloc(t, 10 + i, 100 + (int)i, NOW, &b), 0);
        dhcp6_bindings_release(t, b);
    }
    assert_int_equal(alloc(t, 5000, 5000, NOW, &b), 0);
    assert_int_equal(dhcp6_bindings_count(t), 3);
    /* Interface 1's count survived the churn. */
    assert_int_equal(alloc(t, 5001, 1, NOW, &b), -EDQUOT);
    dhcp6_bindings_release(t, kept[0]);
    assert_int_equal(alloc(t, 5001, 1, NOW, &b), 0);
    dhcp6_bindings_free(t);
}

/* After a restart the lease file's bindings hold their addresses: new
 * clients get others, never a restored one twice. */
static void test_restored_addresses_are_skipped(void **state)
{
    dhcp6_bindings *t = new_pool(0);
    for (uint32_t i = 0; i < 100; i++) {
        dhcp6_binding r = { .kind = DHCP6_BINDING_POOL,
                            .addr = addr6("2001:db8:1::1000"),
                            .expires = NOW + 3600,
                            .committed = true,
                            .duid_len = 10 };
        r.addr.s6_addr[15] = (uint8_t)(2 * i); /* every other address */
        duid_of(i, r.duid);
        assert_int_equal(dhcp6_bindings_restore(t, &r, NOW), 0);
    }
    uint8_t taken[POOL] = { 0 };
    for (uint32_t i = 0; i < 100; i++) {
        taken[2 * i] = 1;
    }
    for (uint32_t i = 0; i < POOL - 100; i++) {
        dhcp6_binding *b;
        assert_int_equal(alloc(t, 1000 + i, 2, NOW, &b), 0);
        unsigned off = ((unsigned)b->addr.s6_addr[14] << 8 | b->addr.s6_addr[15]) - 0x1000;
        assert_false(taken[off]);
        taken[off] = 1;
    }
    dhcp6_binding *b;
    assert_int_equal(alloc(t, 999999, 2, NOW, &b), -ENOSPC);
    dhcp6_bindings_free(t);
}

/* A declined address (in use elsewhere) stays out of use until it expires. */
static void test_declined_address_held(void **state)
{
    dhcp6_pool pool = { .first = addr6("2001:db8:1::1000"), .last = addr6("2001:db8:1::1001") };
    dhcp6_bindings *t;
    assert_int_equal(dhcp6_bindings_new(&pool, &t), 0);
    dhcp6_binding *a, *b;
    assert_int_equal(alloc(t, 1, 2, NOW, &a), 0);
    struct in6_addr bad = a->addr;
    uint8_t d[10];
    duid_of(1, d);
    dhcp6_bindings_commit(t, a, d, sizeof(d), 1, NOW + 100);
    dhcp6_bindings_decline(t, a, NOW + 100);
    /* The same client gets the other address; then the pool is full. */
    assert_int_equal(alloc(t, 1, 2, NOW + 1, &b), 0);
    assert_memory_not_equal(&b->addr, &bad, 16);
    assert_int_equal(alloc(t, 2, 2, NOW + 1, &b), -ENOSPC);
    /* After the declined binding expired, its address is handed out again. */
    assert_true(dhcp6_bindings_expire(t, NOW + 101) >= 1);
    assert_int_equal(alloc(t, 3, 2, NOW + 101, &b), 0);
    dhcp6_bindings_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_pool_costs_constant_work),
        cmocka_unit_test(test_freed_and_expired_addresses_reused),
        cmocka_unit_test(test_cap_per_interface),
        cmocka_unit_test(test_cap_table_reuses_idle_interfaces),
        cmocka_unit_test(test_restored_addresses_are_skipped),
        cmocka_unit_test(test_declined_address_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

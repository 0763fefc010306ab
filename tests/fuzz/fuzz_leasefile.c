/* Fuzzes the DHCPv6 lease file reader (dhcp6/leasefile.c): the bytes are
 * STATE_DIR/dhcp6.leases as a crash, a full disk or an editor may leave it.
 * Whatever it holds, loading it must fail only for a foreign header, count
 * every complete line as applied or bad, and leave a table that keeps its
 * promises:
 *  - written back the way compaction writes it (the live bindings) and read
 *    again, it gives the very same bindings, with no bad line;
 *  - new pool clients get pool addresses no other pool binding holds, though
 *    restored bindings may sit anywhere in the pool. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dhcp6/leasefile.h"
#include "fuzz_file.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1800000000ull

static dhcp6_bindings *table_new(void)
{
    /* The unit tests' pool: small enough that fuzzed addresses land in it. */
    dhcp6_pool pool;
    RB_ASSERT(inet_pton(AF_INET6, "2001:db8:1::1000", &pool.first) == 1);
    RB_ASSERT(inet_pton(AF_INET6, "2001:db8:1::10ff", &pool.last) == 1);
    dhcp6_bindings *t = NULL;
    RB_ASSERT(dhcp6_bindings_new(&pool, &t) == 0);
    return t;
}

static bool kept(const dhcp6_binding *b)
{
    /* What compaction writes: an offer never requested holds nothing. */
    return b->committed || b->declined;
}

/* The live bindings of `t` as compaction formats them. */
static char *format_live(const dhcp6_bindings *t, size_t *ret_len, size_t *ret_n)
{
    size_t hlen = strlen(DHCP6_LEASEFILE_HEADER);
    size_t cap = hlen + (dhcp6_bindings_count(t) + 1) * DHCP6_LEASEFILE_MAX_LINE;
    char *buf = malloc(cap);
    RB_ASSERT(buf != NULL);
    memcpy(buf, DHCP6_LEASEFILE_HEADER, hlen);
    size_t off = hlen, n = 0, it = 0;
    const dhcp6_binding *b;
    while (dhcp6_bindings_next(t, &it, &b)) {
        if (kept(b)) {
            RB_ASSERT(cap - off >= DHCP6_LEASEFILE_MAX_LINE);
            size_t len = dhcp6_leasefile_format(b, false, buf + off, cap - off);
            RB_ASSERT(len > 0 && buf[off + len - 1] == '\n' && !memchr(buf + off, '\0', len));
            off += len;
            n++;
        }
    }
    *ret_len = off;
    *ret_n = n;
    return buf;
}

static void expect_same_binding(const dhcp6_binding *a, const dhcp6_binding *b)
{
    RB_ASSERT(b != NULL && a->kind == b->kind);
    RB_ASSERT(memcmp(&a->addr, &b->addr, 16) == 0 && memcmp(a->mac, b->mac, 6) == 0);
    RB_ASSERT(a->expires == b->expires && a->committed == b->committed &&
              a->declined == b->declined && a->iaid == b->iaid);
    RB_ASSERT(a->duid_len == b->duid_len && memcmp(a->duid, b->duid, a->duid_len) == 0);
}

/* Each pool address is held by one pool binding at most. */
static void expect_pool_addr_once(const dhcp6_bindings *t, const struct in6_addr *addr)
{
    size_t it = 0, n = 0;
    const dhcp6_binding *b;
    while (dhcp6_bindings_next(t, &it, &b)) {
        n += b->kind == DHCP6_BINDING_POOL && memcmp(&b->addr, addr, 16) == 0;
    }
    RB_ASSERT(n == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20)) {
        return 0;
    }
    const char *dir = fuzz_dir("fuzz_leasefile");
    char path[256];
    snprintf(path, sizeof(path), "%s", fuzz_file_write(dir, "dhcp6.leases", data, size));

    dhcp6_bindings *t = table_new();
    dhcp6_leasefile_stats st = { 0 };
    int r = dhcp6_leasefile_load(path, t, NOW, &st);
    size_t hlen = strlen(DHCP6_LEASEFILE_HEADER);
    if (r < 0) {
        RB_ASSERT(r == -EBADMSG);
        RB_ASSERT(size < hlen || memcmp(data, DHCP6_LEASEFILE_HEADER, hlen) != 0);
        dhcp6_bindings_free(t);
        return 0;
    }
    RB_ASSERT(size >= hlen && memcmp(data, DHCP6_LEASEFILE_HEADER, hlen) == 0);
    size_t lines = 0;
    for (size_t i = hlen; i < size; i++) {
        lines += data[i] == '\n';
    }
    RB_ASSERT(st.records + st.bad == lines);
    RB_ASSERT(st.truncated == (size > hlen && data[size - 1] != '\n'));

    /* Compacted and read back: the same live bindings. */
    size_t len, n;
    char *text = format_live(t, &len, &n);
    snprintf(path, sizeof(path), "%s", fuzz_file_write(dir, "compacted", text, len));
    dhcp6_bindings *back = table_new();
    dhcp6_leasefile_stats st2 = { 0 };
    RB_ASSERT(dhcp6_leasefile_load(path, back, NOW, &st2) == 0);
    RB_ASSERT(st2.records == n && st2.bad == 0 && !st2.truncated);
    RB_ASSERT(dhcp6_bindings_count(back) == n);
    size_t it = 0;
    const dhcp6_binding *b;
    while (dhcp6_bindings_next(t, &it, &b)) {
        if (kept(b)) {
            expect_same_binding(b, b->kind == DHCP6_BINDING_HOST
                                       ? dhcp6_bindings_find_host(back, b->mac)
                                       : dhcp6_bindings_find_duid(back, b->duid, b->duid_len));
        }
    }
    free(text);
    dhcp6_bindings_free(back);

    /* New clients after the restart. */
    for (uint8_t k = 0; k < 4; k++) {
        const uint8_t duid[] = { 0x00, 0x04, 'f', 'u', 'z', 'z', 0xfe, k };
        dhcp6_binding *nb = NULL;
        r = dhcp6_bindings_pool(t, duid, sizeof(duid), 1, NOW, &nb);
        if (r < 0) {
            RB_ASSERT(r == -ENOSPC);
            break;
        }
        RB_ASSERT(dhcp6_bindings_in_pool(t, &nb->addr));
        expect_pool_addr_once(t, &nb->addr);
        dhcp6_bindings_commit(t, nb, duid, sizeof(duid), k, NOW + 3600);
    }
    dhcp6_bindings_free(t);
    return 0;
}

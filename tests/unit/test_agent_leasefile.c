/* rack-agent/dhcp6/leasefile: bindings written through the sink come back
 * after a restart, releases stay released, and a crash's truncated last
 * line is ignored instead of failing the start. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dhcp6/leasefile.h"
#include "fileio.h"

static const uint8_t mac_a[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t mac_b[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x57 };
static const uint8_t duid_a[] = { 0x00, 0x01, 0x00, 0x01, 0x2b, 0x00, 0x00,
                                  0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t duid_uuid[] = { 0x00, 0x04, 1,  2,  3,  4,  5,  6,  7,
                                     8,    9,    10, 11, 12, 13, 14, 15, 16 };

#define NOW 1800000000ull

typedef struct fixture {
    char dir[64];
    char path[96];
    uv_loop_t loop;
} fixture;

static struct in6_addr addr6(const char *s)
{
    struct in6_addr a;
    assert_int_equal(inet_pton(AF_INET6, s, &a), 1);
    return a;
}

static dhcp6_pool test_pool(void)
{
    return (dhcp6_pool){ .first = addr6("2001:db8:1::1000"), .last = addr6("2001:db8:1::10ff") };
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/test_leasefile.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/dhcp6.leases", f->dir);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    assert_int_equal(uv_loop_close(&f->loop), 0);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* A fresh table with the compacted (empty) file open and the sink attached. */
static dhcp6_bindings *open_table(fixture *f, dhcp6_leasefile **ret_lf)
{
    dhcp6_pool pool = test_pool();
    dhcp6_bindings *t;
    assert_int_equal(dhcp6_bindings_new(&pool, &t), 0);
    assert_int_equal(dhcp6_leasefile_compact(f->path, t), 0);
    assert_int_equal(dhcp6_leasefile_open(&f->loop, f->path, 1000, ret_lf), 0);
    dhcp6_bindings_set_sink(t, dhcp6_leasefile_sink, *ret_lf);
    return t;
}

static void close_lf(fixture *f, dhcp6_leasefile *lf)
{
    dhcp6_leasefile_close(lf);
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

static void test_round_trip(void **state)
{
    fixture *f = *state;
    dhcp6_leasefile *lf;
    dhcp6_bindings *t = open_table(f, &lf);

    struct in6_addr reserved = addr6("2001:db8:1::17");
    dhcp6_binding *host;
    assert_int_equal(dhcp6_bindings_host(t, mac_a, &reserved, &host), 0);
    dhcp6_bindings_commit(t, host, duid_a, sizeof(duid_a), 7, NOW + 7200);

    dhcp6_binding *pool;
    assert_int_equal(dhcp6_bindings_pool(t, duid_uuid, sizeof(duid_uuid), 2, NOW, &pool), 0);
    struct in6_addr pool_addr = pool->addr;
    dhcp6_bindings_commit(t, pool, duid_uuid, sizeof(duid_uuid), 9, NOW + 3600);

    /* A host that came and released: it must not come back. */
    struct in6_addr other = addr6("2001:db8:1::18");
    dhcp6_binding *gone;
    assert_int_equal(dhcp6_bindings_host(t, mac_b, &other, &gone), 0);
    dhcp6_bindings_commit(t, gone, duid_a, sizeof(duid_a), 1, NOW + 7200);
    dhcp6_bindings_release(t, gone);

    /* Renewed later: the newest expiry wins. */
    dhcp6_bindings_commit(t, host, duid_a, sizeof(duid_a), 7, NOW + 9000);
    close_lf(f, lf);
    dhcp6_bindings_free(t);

    dhcp6_pool p = test_pool();
    dhcp6_bindings *back;
    assert_int_equal(dhcp6_bindings_new(&p, &back), 0);
    dhcp6_leasefile_stats st;
    assert_int_equal(dhcp6_leasefile_load(f->path, back, NOW, &st), 0);
    assert_int_equal(st.records, 5);
    assert_int_equal(st.bad, 0);
    assert_false(st.truncated);
    assert_int_equal(dhcp6_bindings_count(back), 2);

    const dhcp6_binding *h = dhcp6_bindings_find_host(back, mac_a);
    assert_non_null(h);
    assert_memory_equal(&h->addr, &reserved, 16);
    assert_int_equal(h->expires, NOW + 9000);
    assert_true(h->committed);
    assert_int_equal(h->iaid, 7);
    assert_int_equal(h->duid_len, sizeof(duid_a));
    assert_memory_equal(h->duid, duid_a, sizeof(duid_a));
    assert_null(dhcp6_bindings_find_host(back, mac_b));

    const dhcp6_binding *pb = dhcp6_bindings_find_duid(back, duid_uuid, sizeof(duid_uuid));
    assert_non_null(pb);
    assert_memory_equal(&pb->addr, &pool_addr, 16);
    assert_int_equal(pb->expires, NOW + 3600);

    /* Compaction keeps exactly the live bindings. */
    assert_int_equal(dhcp6_leasefile_compact(f->path, back), 0);
    dhcp6_bindings *again;
    assert_int_equal(dhcp6_bindings_new(&p, &again), 0);
    assert_int_equal(dhcp6_leasefile_load(f->path, again, NOW, &st), 0);
    assert_int_equal(st.records, 2);
    assert_int_equal(dhcp6_bindings_count(again), 2);

    /* Loaded after they expired: nothing comes back. */
    dhcp6_bindings *late;
    assert_int_equal(dhcp6_bindings_new(&p, &late), 0);
    assert_int_equal(dhcp6_leasefile_load(f->path, late, NOW + 10000, &st), 0);
    assert_int_equal(dhcp6_bindings_count(late), 0);
    dhcp6_bindings_free(late);
    dhcp6_bindings_free(again);
    dhcp6_bindings_free(back);
}

static void write_text(const char *path, const char *text)
{
    assert_int_equal(fileio_write_atomic(path, text, strlen(text), 0644), 0);
}

static void test_truncated_tail(void **state)
{
    fixture *f = *state;
    /* The second record was cut by a crash mid-append. */
    write_text(
        f->path, DHCP6_LEASEFILE_HEADER
        "+ host 2001:db8:1::17 1800007200 c 52:54:00:12:34:56 0001000100000001525400123456 7\n"
        "+ host 2001:db8:1::18 1800007200 c 52:54:00:12:34:57 00010001");
    dhcp6_bindings *t;
    assert_int_equal(dhcp6_bindings_new(NULL, &t), 0);
    dhcp6_leasefile_stats st;
    assert_int_equal(dhcp6_leasefile_load(f->path, t, NOW, &st), 0);
    assert_true(st.truncated);
    assert_int_equal(st.records, 1);
    assert_int_equal(st.bad, 0);
    assert_int_equal(dhcp6_bindings_count(t), 1);
    assert_non_null(dhcp6_bindings_find_host(t, mac_a));
    assert_null(dhcp6_bindings_find_host(t, mac_b));

    /* After compaction the file ends in a whole line again, and appending
     * through the sink gives a file that reads back completely. */
    assert_int_equal(dhcp6_leasefile_compact(f->path, t), 0);
    dhcp6_leasefile *lf;
    assert_int_equal(dhcp6_leasefile_open(&f->loop, f->path, 1000, &lf), 0);
    dhcp6_bindings_set_sink(t, dhcp6_leasefile_sink, lf);
    struct in6_addr b_addr = addr6("2001:db8:1::18");
    dhcp6_binding *b;
    assert_int_equal(dhcp6_bindings_host(t, mac_b, &b_addr, &b), 0);
    dhcp6_bindings_commit(t, b, duid_a, sizeof(duid_a), 2, NOW + 100);
    close_lf(f, lf);
    dhcp6_bindings_free(t);

    assert_int_equal(dhcp6_bindings_new(NULL, &t), 0);
    assert_int_equal(dhcp6_leasefile_load(f->path, t, NOW, &st), 0);
    assert_false(st.truncated);
    assert_int_equal(dhcp6_bindings_count(t), 2);
    dhcp6_bindings_free(t);
}

static void test_bad_lines_and_header(void **state)
{
    fixture *f = *state;
    write_text(f->path,
               DHCP6_LEASEFILE_HEADER "+ host not-an-address 1800007200 c 52:54:00:12:34:56 - 7\n"
                                      "+ host 2001:db8:1::17 1800007200 x 52:54:00:12:34:56 - 7\n"
                                      "+ host 2001:db8:1::17 1800007200 c 52:54:00:12:34:56 0g 7\n"
                                      "garbage\n"
                                      "+ host 2001:db8:1::17 1800007200 c 52:54:00:12:34:56 - 7\n");
    dhcp6_bindings *t;
    assert_int_equal(dhcp6_bindings_new(NULL, &t), 0);
    dhcp6_leasefile_stats st;
    assert_int_equal(dhcp6_leasefile_load(f->path, t, NOW, &st), 0);
    assert_int_equal(st.bad, 4);
    assert_int_equal(st.records, 1);
    assert_int_equal(dhcp6_bindings_count(t), 1);
    dhcp6_bindings_free(t);

    write_text(f->path, "# rackboot dhcp6 leases v2\n");
    assert_int_equal(dhcp6_bindings_new(NULL, &t), 0);
    assert_int_equal(dhcp6_leasefile_load(f->path, t, NOW, &st), -EBADMSG);
    dhcp6_bindings_free(t);

    /* No file yet: no bindings, no error. */
    unlink(f->path);
    assert_int_equal(dhcp6_bindings_new(NULL, &t), 0);
    assert_int_equal(dhcp6_leasefile_load(f->path, t, NOW, &st), 0);
    assert_int_equal(dhcp6_bindings_count(t), 0);
    dhcp6_bindings_free(t);
}

/* The timer writes batches without a synchronous flush. */
static void test_timer_flushes(void **state)
{
    fixture *f = *state;
    dhcp6_leasefile *lf;
    dhcp6_bindings *t = open_table(f, &lf);
    struct in6_addr a = addr6("2001:db8:1::17");
    dhcp6_binding *b;
    assert_int_equal(dhcp6_bindings_host(t, mac_a, &a, &b), 0);
    dhcp6_bindings_commit(t, b, duid_a, sizeof(duid_a), 7, NOW + 7200);
    size_t before = 0;
    void *text = NULL;
    assert_int_equal(fileio_read_all(f->path, 1 << 20, &text, &before), 0);
    free(text);
    assert_int_equal(before, strlen(DHCP6_LEASEFILE_HEADER));
    /* Run the loop until the 1 s timer wrote the line. */
    size_t after = before;
    for (int i = 0; i < 40 && after == before; i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
        assert_int_equal(fileio_read_all(f->path, 1 << 20, &text, &after), 0);
        free(text);
    }
    assert_true(after > before);
    close_lf(f, lf);
    dhcp6_bindings_free(t);
}

/* A compaction on the thread pool shrinks a log full of renewals to the live
 * bindings, and changes made while it runs land in the new file. */
static void test_background_compaction(void **state)
{
    fixture *f = *state;
    dhcp6_leasefile *lf;
    dhcp6_bindings *t = open_table(f, &lf);
    dhcp6_binding *a, *b;
    struct in6_addr addr_a = addr6("2001:db8:1::17");
    assert_int_equal(dhcp6_bindings_host(t, mac_a, &addr_a, &a), 0);
    for (int i = 0; i < 500; i++) { /* 500 renewals of one binding */
        dhcp6_bindings_commit(t, a, duid_a, sizeof(duid_a), 1, NOW + 100 + (uint64_t)i);
    }
    assert_int_equal(dhcp6_leasefile_appended(lf), 500);
    assert_int_equal(dhcp6_leasefile_flush_sync(lf), 0);

    assert_int_equal(dhcp6_leasefile_compact_async(lf, t), 0);
    assert_int_equal(dhcp6_leasefile_compact_async(lf, t), -EBUSY);
    /* A change while the snapshot is being written. */
    assert_int_equal(dhcp6_bindings_pool(t, duid_uuid, sizeof(duid_uuid), 2, NOW, &b), 0);
    dhcp6_bindings_commit(t, b, duid_uuid, sizeof(duid_uuid), 7, NOW + 500);
    struct in6_addr addr_b = b->addr;
    while (dhcp6_leasefile_compacting(lf)) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(dhcp6_leasefile_appended(lf), 1);
    close_lf(f, lf);
    dhcp6_bindings_free(t);

    /* The file holds a header and a handful of lines, not 500. */
    void *text;
    size_t len;
    assert_int_equal(fileio_read_all(f->path, 1 << 20, &text, &len), 0);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) {
        lines += ((char *)text)[i] == '\n';
    }
    free(text);
    assert_true(lines <= 4);

    dhcp6_pool pool = test_pool();
    dhcp6_bindings *back;
    assert_int_equal(dhcp6_bindings_new(&pool, &back), 0);
    dhcp6_leasefile_stats st;
    assert_int_equal(dhcp6_leasefile_load(f->path, back, NOW, &st), 0);
    dhcp6_binding *got = dhcp6_bindings_find_host(back, mac_a);
    assert_non_null(got);
    assert_true(got->expires == NOW + 100 + 499);
    got = dhcp6_bindings_find_duid(back, duid_uuid, sizeof(duid_uuid));
    assert_non_null(got);
    assert_memory_equal(&got->addr, &addr_b, 16);
    dhcp6_bindings_free(back);
}

static size_t file_size(const char *path)
{
    void *text = NULL;
    size_t len = 0;
    assert_int_equal(fileio_read_all(path, 64u << 20, &text, &len), 0);
    free(text);
    return len;
}

/* Issue #10: renewals append a line each, so without a bound the file grows
 * until the agent cannot read it back at start. With a cap, appending past
 * it rewrites the file from the bindings instead. */
static void test_file_stays_under_its_cap(void **state)
{
    fixture *f = *state;
    dhcp6_leasefile *lf;
    dhcp6_bindings *t = open_table(f, &lf);
    enum { CAP = 16 * 1024 };
    dhcp6_leasefile_set_limits(lf, t, CAP, 0);
    struct in6_addr a = addr6("2001:db8:1::17");
    dhcp6_binding *b;
    assert_int_equal(dhcp6_bindings_host(t, mac_a, &a, &b), 0);
    size_t biggest = 0;
    /* 5,000 renewals (~450 KB of log), written every 100 as the timer would. */
    for (int i = 0; i < 5000; i++) {
        dhcp6_bindings_commit(t, b, duid_a, sizeof(duid_a), 7, NOW + 100 + (uint64_t)i);
        if (i % 100 == 99) {
            assert_int_equal(dhcp6_leasefile_flush_sync(lf), 0);
            size_t n = file_size(f->path);
            biggest = n > biggest ? n : biggest;
            assert_true(n <= CAP);
        }
    }
    print_message("lease file after 5000 renewals: at most %zu bytes (cap %d)\n", biggest, CAP);
    close_lf(f, lf);
    assert_true(file_size(f->path) <= CAP);
    dhcp6_bindings_free(t);

    /* Nothing was lost: the newest renewal comes back. */
    dhcp6_pool p = test_pool();
    dhcp6_bindings *back;
    assert_int_equal(dhcp6_bindings_new(&p, &back), 0);
    dhcp6_leasefile_stats st;
    assert_int_equal(dhcp6_leasefile_load(f->path, back, NOW, &st), 0);
    const dhcp6_binding *h = dhcp6_bindings_find_host(back, mac_a);
    assert_non_null(h);
    assert_int_equal(h->expires, NOW + 100 + 4999);
    dhcp6_bindings_free(back);
}

/* The same through the flush timer alone, as the agent runs it. */
static void test_timer_keeps_file_under_its_cap(void **state)
{
    fixture *f = *state;
    dhcp6_pool pool = test_pool();
    dhcp6_bindings *t;
    assert_int_equal(dhcp6_bindings_new(&pool, &t), 0);
    assert_int_equal(dhcp6_leasefile_compact(f->path, t), 0);
    dhcp6_leasefile *lf;
    assert_int_equal(dhcp6_leasefile_open(&f->loop, f->path, 5, &lf), 0);
    dhcp6_bindings_set_sink(t, dhcp6_leasefile_sink, lf);
    enum { CAP = 16 * 1024 };
    dhcp6_leasefile_set_limits(lf, t, CAP, 0);
    struct in6_addr a = addr6("2001:db8:1::17");
    dhcp6_binding *b;
    assert_int_equal(dhcp6_bindings_host(t, mac_a, &a, &b), 0);
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 100; i++) {
            dhcp6_bindings_commit(t, b, duid_a, sizeof(duid_a), 7,
                                  NOW + 100 + (uint64_t)(round * 100 + i));
        }
        /* Let the 5 ms timer write (or compact). */
        for (int k = 0;
             k < 200 && (dhcp6_leasefile_buffered(lf) > 0 || dhcp6_leasefile_compacting(lf)); k++) {
            uv_run(&f->loop, UV_RUN_ONCE);
        }
        assert_true(file_size(f->path) <= CAP);
    }
    close_lf(f, lf);
    assert_true(file_size(f->path) <= CAP);
    dhcp6_bindings_free(t);

    dhcp6_bindings *back;
    assert_int_equal(dhcp6_bindings_new(&pool, &back), 0);
    dhcp6_leasefile_stats st;
    assert_int_equal(dhcp6_leasefile_load(f->path, back, NOW, &st), 0);
    const dhcp6_binding *h = dhcp6_bindings_find_host(back, mac_a);
    assert_non_null(h);
    assert_int_equal(h->expires, NOW + 100 + 4999);
    dhcp6_bindings_free(back);
}

/* Issue #10: while a compaction runs the changes are buffered, and the
 * buffer grew without bound (and past 1 MiB was written into the file being
 * replaced, where it was lost). Now the buffer is capped; what does not fit
 * is rewritten from the bindings once the compaction is done. */
static void test_buffer_bounded_during_compaction(void **state)
{
    fixture *f = *state;
    dhcp6_leasefile *lf;
    dhcp6_bindings *t = open_table(f, &lf);
    enum { MAX_BUFFER = 64 * 1024, HOSTS = 20000 };
    dhcp6_leasefile_set_limits(lf, t, 0, MAX_BUFFER);
    assert_int_equal(dhcp6_leasefile_compact_async(lf, t), 0);
    /* 20,000 hosts bound while the snapshot is written (~2 MB of lines). */
    for (uint32_t i = 0; i < HOSTS; i++) {
        uint8_t mac[6] = { 0x52, 0x54, 0x01, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };
        struct in6_addr a = addr6("2001:db8:1::");
        a.s6_addr[12] = 1;
        a.s6_addr[13] = (uint8_t)(i >> 16);
        a.s6_addr[14] = (uint8_t)(i >> 8);
        a.s6_addr[15] = (uint8_t)i;
        dhcp6_binding *b;
        assert_int_equal(dhcp6_bindings_host(t, mac, &a, &b), 0);
        dhcp6_bindings_commit(t, b, duid_a, sizeof(duid_a), i, NOW + 3600);
        assert_true(dhcp6_leasefile_buffer_capacity(lf) <= MAX_BUFFER);
    }
    print_message("buffer during compaction: %zu bytes for %d changes\n",
                  dhcp6_leasefile_buffer_capacity(lf), HOSTS);
    while (dhcp6_leasefile_compacting(lf)) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    close_lf(f, lf);
    dhcp6_bindings_free(t);

    /* Every binding is in the file. */
    dhcp6_pool p = test_pool();
    dhcp6_bindings *back;
    assert_int_equal(dhcp6_bindings_new(&p, &back), 0);
    dhcp6_leasefile_stats st;
    assert_int_equal(dhcp6_leasefile_load(f->path, back, NOW, &st), 0);
    assert_int_equal(dhcp6_bindings_count(back), HOSTS);
    dhcp6_bindings_free(back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_lines_and_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_stays_under_its_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_keeps_file_under_its_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffer_bounded_during_compaction, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

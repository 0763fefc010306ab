/* rack-agent/dhcp6/socket and the udp6 send queue under it: the answers to
 * one batch of requests leave with one sendmmsg(2), a datagram the kernel
 * refuses does not take the rest of the batch with it, and the receive pacer
 * waits for more datagrams only under steady load and within its bounds.
 *
 * The socket tests run over ::1. The end-to-end one needs port 547 (answers
 * to a relay go there), so it runs in a network namespace of its own and is
 * skipped when that cannot be made (not root). */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "dhcp6/socket-internal.h"
#include "dhcp6/socket.h"
#include "dhcp6_vectors.h"
#include "net/udp6.h"

static const uint8_t server_duid[] = { 0x00, 0x03, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t web17_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static struct in6_addr addr6(const char *s)
{
    struct in6_addr a;
    assert_int_equal(inet_pton(AF_INET6, s, &a), 1);
    return a;
}

/* A datagram socket on [::1]:port (0: any); false when there is no ::1. */
static bool open_loopback(uint16_t port, int *ret_fd, struct sockaddr_in6 *ret_addr)
{
    struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
                               .sin6_port = htons(port),
                               .sin6_addr = in6addr_loopback };
    int fd = -1;
    uint16_t bound;
    int r = udp6_open(&sa, true, &fd, &bound);
    if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT) {
        return false;
    }
    assert_int_equal(r, 0);
    sa.sin6_port = htons(bound);
    *ret_fd = fd;
    *ret_addr = sa;
    return true;
}

/* Reads one datagram without waiting long: its length, -1 when none came. */
static ssize_t recv_one(int fd, uint8_t *buf, size_t size)
{
    struct timeval tv = { .tv_sec = 1 };
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    return recv(fd, buf, size, 0);
}

/* ---- udp6 send queue ------------------------------------------------------ */

static void test_sendq_sends_all_in_order(void **state)
{
    int rx, tx;
    struct sockaddr_in6 to, from;
    if (!open_loopback(0, &rx, &to) || !open_loopback(0, &tx, &from)) {
        skip();
    }
    static udp6_sendq q; /* ~10 KB: not on the test's stack */
    memset(&q, 0, sizeof(q));
    const char *payloads[] = { "first", "second", "third" };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(udp6_sendq_add(&q, &to, payloads[i], strlen(payloads[i]), NULL, 0), 0);
    }
    int err = 1;
    assert_int_equal(udp6_sendq_flush(tx, &q, &err), 3);
    assert_int_equal(err, 0);
    assert_int_equal(q.n, 0);
    for (size_t i = 0; i < 3; i++) {
        uint8_t buf[64];
        ssize_t n = recv_one(rx, buf, sizeof(buf));
        assert_int_equal(n, (ssize_t)strlen(payloads[i]));
        assert_memory_equal(buf, payloads[i], (size_t)n);
    }
    close(rx);
    close(tx);
}

/* The destination is copied at add time: callers build it on their stack. */
static void test_sendq_copies_destination(void **state)
{
    int rx, tx;
    struct sockaddr_in6 to, from;
    if (!open_loopback(0, &rx, &to) || !open_loopback(0, &tx, &from)) {
        skip();
    }
    static udp6_sendq q;
    memset(&q, 0, sizeof(q));
    struct sockaddr_in6 scratch = to;
    assert_int_equal(udp6_sendq_add(&q, &scratch, "x", 1, NULL, 0), 0);
    memset(&scratch, 0xff, sizeof(scratch));
    int err;
    assert_int_equal(udp6_sendq_flush(tx, &q, &err), 1);
    uint8_t buf[8];
    assert_int_equal(recv_one(rx, buf, sizeof(buf)), 1);
    close(rx);
    close(tx);
}

/* A datagram too large for UDP fails alone; the ones after it still go. */
static void test_sendq_skips_refused_datagram(void **state)
{
    int rx, tx;
    struct sockaddr_in6 to, from;
    if (!open_loopback(0, &rx, &to) || !open_loopback(0, &tx, &from)) {
        skip();
    }
    static udp6_sendq q;
    memset(&q, 0, sizeof(q));
    static uint8_t huge[70000];
    assert_int_equal(udp6_sendq_add(&q, &to, "before", 6, NULL, 0), 0);
    assert_int_equal(udp6_sendq_add(&q, &to, huge, sizeof(huge), NULL, 0), 0);
    assert_int_equal(udp6_sendq_add(&q, &to, "after", 5, NULL, 0), 0);
    int err = 0;
    assert_int_equal(udp6_sendq_flush(tx, &q, &err), 2);
    assert_int_equal(err, -EMSGSIZE);
    assert_int_equal(q.n, 0);
    uint8_t buf[64];
    assert_int_equal(recv_one(rx, buf, sizeof(buf)), 6);
    assert_memory_equal(buf, "before", 6);
    assert_int_equal(recv_one(rx, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "after", 5);
    close(rx);
    close(tx);
}

static void test_sendq_full(void **state)
{
    static udp6_sendq q;
    memset(&q, 0, sizeof(q));
    struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_port = htons(9) };
    for (size_t i = 0; i < UDP6_SENDQ_MAX; i++) {
        assert_int_equal(udp6_sendq_add(&q, &to, "x", 1, NULL, 0), 0);
    }
    assert_int_equal(udp6_sendq_add(&q, &to, "x", 1, NULL, 0), -ENOSPC);
    assert_int_equal(q.n, UDP6_SENDQ_MAX);
}

/* Each queued datagram carries its own source address and interface. */
static void test_sendq_pktinfo_per_datagram(void **state)
{
    static udp6_sendq q;
    memset(&q, 0, sizeof(q));
    struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_port = htons(9) };
    struct in6_addr a = addr6("2001:db8::1"), b = addr6("2001:db8::2");
    assert_int_equal(udp6_sendq_add(&q, &to, "x", 1, &a, 3), 0);
    assert_int_equal(udp6_sendq_add(&q, &to, "y", 1, NULL, 0), 0);
    assert_int_equal(udp6_sendq_add(&q, &to, "z", 1, &b, 7), 0);
    struct in6_addr want_src[] = { a, in6addr_any, b };
    unsigned want_if[] = { 3, 0, 7 };
    for (size_t i = 0; i < 3; i++) {
        struct in6_pktinfo pi;
        assert_true(udp6_pktinfo(&q.msgs[i].msg_hdr, &pi));
        assert_memory_equal(&pi.ipi6_addr, &want_src[i], 16);
        assert_int_equal(pi.ipi6_ifindex, want_if[i]);
    }
}

/* ---- the pacer ------------------------------------------------------------ */

static dhcp6_pacer pacer(void)
{
    return (dhcp6_pacer){
        .wait_us = 100, .steady_gap_us = 1000, .budget_us = 1000, .small = 8, .max_rounds = 16
    };
}

/* The first datagram after a quiet spell is answered and the loop resumes:
 * a quiet rack never waits. */
static void test_pacer_quiet_never_waits(void **state)
{
    dhcp6_pacer p = pacer();
    uint32_t w = 7;
    dhcp6_pacer_wake(&p, 5000000); /* never idle before: not steady */
    assert_false(dhcp6_pacer_next(&p, 1, 32, 5000010, &w));
    dhcp6_pacer_idle(&p, 5000010);
    dhcp6_pacer_wake(&p, 5000010 + 1000); /* idle as long as the gap: quiet */
    assert_false(dhcp6_pacer_next(&p, 1, 32, 5001020, &w));
    assert_int_equal(w, 7); /* untouched when false */
}

static void test_pacer_steady_small_batch_waits(void **state)
{
    dhcp6_pacer p = pacer();
    uint32_t w = 0;
    dhcp6_pacer_idle(&p, 1000);
    dhcp6_pacer_wake(&p, 1200);
    assert_true(dhcp6_pacer_next(&p, 2, 32, 1220, &w));
    assert_int_equal(w, 100);
    /* A read after the wait that found nothing: the load stopped. */
    assert_false(dhcp6_pacer_next(&p, 0, 32, 1330, &w));
}

static void test_pacer_big_batch_no_wait(void **state)
{
    dhcp6_pacer p = pacer();
    uint32_t w = 9;
    dhcp6_pacer_idle(&p, 1000);
    dhcp6_pacer_wake(&p, 1100);
    /* Not small: answered, back to the loop, no wait. */
    assert_false(dhcp6_pacer_next(&p, 8, 32, 1150, &w));
    /* Full: read again at once. */
    dhcp6_pacer_wake(&p, 1200);
    assert_true(dhcp6_pacer_next(&p, 32, 32, 1250, &w));
    assert_int_equal(w, 0);
}

static void test_pacer_off(void **state)
{
    dhcp6_pacer p = pacer();
    p.wait_us = 0;
    uint32_t w;
    dhcp6_pacer_idle(&p, 1000);
    dhcp6_pacer_wake(&p, 1100);
    assert_false(dhcp6_pacer_next(&p, 1, 32, 1110, &w));
    /* Full batches are still read on. */
    assert_true(dhcp6_pacer_next(&p, 32, 32, 1120, &w));
    assert_int_equal(w, 0);
}

/* However steady the load, one wake-up never holds the loop past its
 * budget, waits and full batches alike, nor past max_rounds reads. */
static void test_pacer_bounds(void **state)
{
    dhcp6_pacer p = pacer();
    uint32_t w;
    dhcp6_pacer_idle(&p, 1000);
    uint64_t now = 1100;
    dhcp6_pacer_wake(&p, now);
    unsigned waits = 0;
    for (;;) {
        now += 20; /* answering */
        if (!dhcp6_pacer_next(&p, 1, 32, now, &w)) {
            break;
        }
        now += w;
        waits++;
        assert_true(waits < 100);
    }
    assert_true(now - 1100 <= 1000);
    assert_true(waits >= 5); /* ~1000 / (100 + 20) */

    dhcp6_pacer_wake(&p, now);
    uint64_t start = now;
    while (dhcp6_pacer_next(&p, 32, 32, now += 100, &w)) {
        assert_int_equal(w, 0);
    }
    assert_true(now - start <= 1100);

    p.budget_us = 1000000;
    dhcp6_pacer_wake(&p, now);
    unsigned rounds = 1;
    while (dhcp6_pacer_next(&p, 32, 32, now += 1, &w)) {
        rounds++;
    }
    assert_int_equal(rounds, 16);
}

/* ---- the socket, end to end ----------------------------------------------- */

/* A network namespace of our own with lo up, so ports 546/547 are free. */
static bool own_netns(void)
{
    if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0) {
        return false;
    }
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    struct ifreq ifr = { 0 };
    strncpy(ifr.ifr_name, "lo", sizeof(ifr.ifr_name) - 1);
    bool ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    close(fd);
    return ok;
}

typedef struct e2e {
    uv_loop_t loop;
    intents_store *store;
    dhcp6_bindings *bindings;
    dhcp6_server *server;
    dhcp6_socket *sock;
    int relay; /* our "relay": [::1]:547, where Relay-replies go */
    struct sockaddr_in6 server_addr;
} e2e;

static void e2e_start(e2e *t, bool no_wait)
{
    assert_int_equal(uv_loop_init(&t->loop), 0);
    assert_int_equal(intents_store_new(&t->store), 0);
    intent_set *set;
    assert_int_equal(intent_set_new(1, &set), 0);
    model_profile prof = { .name = strdup("el9") };
    assert_int_equal(intent_set_add_profile(set, &prof), 0);
    intent in = { .install_id = strdup("inst-1"),
                  .host = strdup("web17"),
                  .hostname = strdup("web17"),
                  .token = strdup("tok"),
                  .n_macs = 1,
                  .prefix_len = 64,
                  .address = addr6("2001:db8:0:1::100") };
    memcpy(in.macs[0], web17_mac, 6);
    assert_int_equal(intent_set_add(set, &in, "el9"), 0);
    intents_store_replace(t->store, set);
    assert_int_equal(dhcp6_bindings_new(NULL, &t->bindings), 0);
    dhcp6_server_config cfg = { .duid_len = sizeof(server_duid),
                                .preferred_lifetime = 3600,
                                .valid_lifetime = 7200,
                                .preference = DHCP6_PREFERENCE_MAX,
                                .advertise_address = addr6("2001:db8:0:1::1"),
                                .http_port = 80,
                                /* Our "relay" sends from ::1. */
                                .trusted_relays = { { .addr = in6addr_loopback, .len = 128 } },
                                .n_trusted_relays = 1 };
    memcpy(cfg.duid, server_duid, sizeof(server_duid));
    assert_int_equal(dhcp6_server_new(&cfg, t->store, t->bindings, &t->server), 0);
    /* Relayed messages are served on any interface: none joined. */
    dhcp6_socket_config sc = { .port = 0, .no_wait = no_wait };
    assert_int_equal(dhcp6_socket_open(&t->loop, &sc, t->server, &t->sock), 0);
    t->server_addr = (struct sockaddr_in6){ .sin6_family = AF_INET6,
                                            .sin6_port = htons(dhcp6_socket_port(t->sock)),
                                            .sin6_addr = in6addr_loopback };
    struct sockaddr_in6 relay_addr;
    assert_true(open_loopback(547, &t->relay, &relay_addr));
}

static void e2e_stop(e2e *t)
{
    dhcp6_socket_close(t->sock);
    assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    close(t->relay);
    dhcp6_server_free(t->server);
    dhcp6_bindings_free(t->bindings);
    intents_store_free(t->store);
}

/* Relay-forward around iPXE's Solicit, as a ToR relays it for web17. */
static size_t relayed_solicit(uint8_t *buf, uint8_t xid_low)
{
    size_t n = sizeof(relay_forw_head);
    memcpy(buf, relay_forw_head, n);
    buf[n++] = 0;
    buf[n++] = DHCP6_OPT_RELAY_MSG;
    buf[n++] = 0;
    buf[n++] = sizeof(ipxe_solicit);
    memcpy(buf + n, ipxe_solicit, sizeof(ipxe_solicit));
    buf[n + 3] = xid_low; /* transaction id: tells the answers apart */
    return n + sizeof(ipxe_solicit);
}

/* Sends `count` relayed Solicits at once, then lets the loop run until
 * they are read or a second passes. */
static void e2e_burst(e2e *t, size_t count)
{
    static uint8_t msgs[16][512];
    struct mmsghdr mm[16];
    struct iovec iov[16];
    assert_true(count <= 16);
    for (size_t i = 0; i < count; i++) {
        iov[i] =
            (struct iovec){ .iov_base = msgs[i], .iov_len = relayed_solicit(msgs[i], (uint8_t)i) };
        mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &t->server_addr,
                                               .msg_namelen = sizeof(t->server_addr),
                                               .msg_iov = &iov[i],
                                               .msg_iovlen = 1 } };
    }
    assert_int_equal(sendmmsg(t->relay, mm, (unsigned)count, 0), (int)count);
    const dhcp6_socket_stats *st = dhcp6_socket_get_stats(t->sock);
    uint64_t want = st->received + count;
    for (int i = 0; i < 1000 && st->received < want; i++) {
        uv_run(&t->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(st->received, want);
}

/* Each of the burst's answers is a Relay-reply with the Advertise for its
 * own Solicit inside. */
static void e2e_expect_answers(e2e *t, size_t count)
{
    bool seen[16] = { false };
    for (size_t i = 0; i < count; i++) {
        uint8_t buf[1024];
        ssize_t n = recv_one(t->relay, buf, sizeof(buf));
        assert_true(n > 52);
        assert_int_equal(buf[0], DHCP6_RELAY_REPL);
        /* Interface-Id echoed, then option 9 with the Advertise. */
        assert_memory_equal(buf + 34,
                            "\x00\x12\x00\x06"
                            "Eth1/7",
                            10);
        assert_int_equal(buf[48], DHCP6_ADVERTISE);
        uint8_t xid_low = buf[51];
        assert_true(xid_low < count);
        assert_false(seen[xid_low]);
        seen[xid_low] = true;
    }
}

static void test_socket_answers_batch_with_one_send(void **state)
{
    if (!own_netns()) {
        skip();
    }
    static e2e t;
    memset(&t, 0, sizeof(t));
    e2e_start(&t, true);
    const dhcp6_socket_stats *st = dhcp6_socket_get_stats(t.sock);

    e2e_burst(&t, 5);
    /* All five were queued before the loop ran: one read, one send. */
    assert_int_equal(st->batches, 1);
    assert_int_equal(st->flushes, 1);
    assert_int_equal(st->sent, 5);
    assert_int_equal(st->send_errors, 0);
    assert_int_equal(st->waits, 0);
    e2e_expect_answers(&t, 5);

    /* A lone Solicit is answered on its own. */
    e2e_burst(&t, 1);
    assert_int_equal(st->batches, 2);
    assert_int_equal(st->flushes, 2);
    assert_int_equal(st->sent, 6);
    e2e_expect_answers(&t, 1);
    e2e_stop(&t);
}

/* With the pacer on, a quiet socket answers at once and does not wait. */
static void test_socket_quiet_does_not_wait(void **state)
{
    if (!own_netns()) {
        skip();
    }
    static e2e t;
    memset(&t, 0, sizeof(t));
    e2e_start(&t, false);
    const dhcp6_socket_stats *st = dhcp6_socket_get_stats(t.sock);
    e2e_burst(&t, 3);
    assert_int_equal(st->sent, 3);
    assert_int_equal(st->waits, 0);
    e2e_expect_answers(&t, 3);
    e2e_stop(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sendq_sends_all_in_order),
        cmocka_unit_test(test_sendq_copies_destination),
        cmocka_unit_test(test_sendq_skips_refused_datagram),
        cmocka_unit_test(test_sendq_full),
        cmocka_unit_test(test_sendq_pktinfo_per_datagram),
        cmocka_unit_test(test_pacer_quiet_never_waits),
        cmocka_unit_test(test_pacer_steady_small_batch_waits),
        cmocka_unit_test(test_pacer_big_batch_no_wait),
        cmocka_unit_test(test_pacer_off),
        cmocka_unit_test(test_pacer_bounds),
        cmocka_unit_test(test_socket_answers_batch_with_one_send),
        cmocka_unit_test(test_socket_quiet_does_not_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

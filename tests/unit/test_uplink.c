/* The uplink's pure parts: a SyncResponse becomes the intent set the
 * servers read, and what was persisted comes back the same after a
 * restart. The threads are exercised against a real controller by the
 * integration tests. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "uplink/uplink.h"
#include "util.h"

typedef struct fixture {
    Rackboot__V1__SyncResponse sr;
    Rackboot__V1__Profile profile;
    Rackboot__V1__Profile *profiles[1];
    Rackboot__V1__Image images[3];
    Rackboot__V1__Image *image_ptrs[3];
    Rackboot__V1__Intent intents[2];
    Rackboot__V1__Intent *intent_ptrs[2];
    uint8_t macs[2][6];
    ProtobufCBinaryData mac_fields[2];
    uint8_t addr[2][16], gw[16], dns[16];
    ProtobufCBinaryData dns_field;
    char *search[1];
    uint8_t sha[32];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    memset(f->sha, 0xab, sizeof(f->sha));
    const char *names[] = { "vmlinuz", "initrd.img", "squashfs.img" };
    Rackboot__V1__ImageKind kinds[] = { RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_KERNEL,
                                        RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_INITRD,
                                        RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_STAGE2 };
    for (size_t i = 0; i < 3; i++) {
        rackboot__v1__image__init(&f->images[i]);
        f->images[i].name = RB_UNCONST(names[i]);
        f->images[i].kind = kinds[i];
        f->images[i].url = RB_UNCONST("http://mirror.example/el9/x");
        f->images[i].sha256 = (ProtobufCBinaryData){ 32, f->sha };
        f->images[i].size = 1000 + i;
        f->image_ptrs[i] = &f->images[i];
    }
    rackboot__v1__profile__init(&f->profile);
    f->profile.name = RB_UNCONST("el9");
    f->profile.n_images = 3;
    f->profile.images = f->image_ptrs;
    f->profile.kernel_args = RB_UNCONST("console=ttyS0");
    f->profile.kickstart_template = RB_UNCONST("network --hostname={{hostname}}\n");
    f->profile.kickstart_sha256 = (ProtobufCBinaryData){ 32, f->sha };
    f->profile.overlay = true;
    f->profile.ip_mode = RACKBOOT__V1__IP_MODE__IP_MODE_DHCP6;
    f->profiles[0] = &f->profile;

    inet_pton(AF_INET6, "2001:db8:1::fffe", f->gw);
    inet_pton(AF_INET6, "2001:db8:1::53", f->dns);
    f->dns_field = (ProtobufCBinaryData){ 16, f->dns };
    f->search[0] = RB_UNCONST("rack1.example.com");
    for (size_t i = 0; i < 2; i++) {
        uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + i) };
        memcpy(f->macs[i], mac, 6);
        f->mac_fields[i] = (ProtobufCBinaryData){ 6, f->macs[i] };
        char a[64];
        snprintf(a, sizeof(a), "2001:db8:1::%zu", 17 + i);
        inet_pton(AF_INET6, a, f->addr[i]);
        Rackboot__V1__Intent *in = &f->intents[i];
        rackboot__v1__intent__init(in);
        in->install_id = RB_UNCONST(i ? "1b4e28ba-2fa1-11d2-883f-0016d3cca428"
                                      : "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
        in->host = RB_UNCONST(i ? "web18" : "web17");
        in->n_macs = 1;
        in->macs = &f->mac_fields[i];
        in->address = (ProtobufCBinaryData){ 16, f->addr[i] };
        in->prefix_length = 64;
        in->profile = RB_UNCONST("el9");
        in->token = RB_UNCONST("0123456789abcdef0123456789abcdef");
        in->attempt = 1;
        f->intent_ptrs[i] = in;
    }
    f->intents[0].gateway = (ProtobufCBinaryData){ 16, f->gw };
    f->intents[0].n_dns_servers = 1;
    f->intents[0].dns_servers = &f->dns_field;
    f->intents[0].n_search = 1;
    f->intents[0].search = f->search;
    f->intents[0].hostname = RB_UNCONST("web17.rack1.example.com");
    f->intents[1].hostname = RB_UNCONST("web18");

    rackboot__v1__sync_response__init(&f->sr);
    f->sr.rack = RB_UNCONST("rack1");
    f->sr.generation = 42;
    f->sr.n_profiles = 1;
    f->sr.profiles = f->profiles;
    f->sr.n_intents = 2;
    f->sr.intents = f->intent_ptrs;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void check_set(const intent_set *set, const fixture *f)
{
    assert_int_equal(intent_set_generation(set), 42);
    assert_int_equal(intent_set_size(set), 2);
    const intent *in = intent_set_find_mac(set, f->macs[0]);
    assert_non_null(in);
    assert_string_equal(in->host, "web17");
    assert_string_equal(in->hostname, "web17.rack1.example.com");
    assert_memory_equal(&in->address, f->addr[0], 16);
    assert_int_equal(in->prefix_len, 64);
    assert_true(in->has_gateway);
    assert_memory_equal(&in->gateway, f->gw, 16);
    assert_int_equal(in->n_dns, 1);
    assert_int_equal(in->n_search, 1);
    assert_string_equal(in->search[0], "rack1.example.com");
    assert_string_equal(in->token, "0123456789abcdef0123456789abcdef");
    const model_profile *p = in->profile;
    assert_string_equal(p->name, "el9");
    assert_int_equal(p->n_images, 3);
    assert_int_equal(p->images[0].kind, IMAGE_KERNEL);
    assert_int_equal(p->images[1].kind, IMAGE_INITRD);
    assert_int_equal(p->images[2].kind, IMAGE_STAGE2);
    assert_int_equal(p->images[2].size, 1002);
    assert_string_equal(p->cmdline, "console=ttyS0");
    assert_string_equal(p->kickstart, "network --hostname={{hostname}}\n");
    assert_true(p->overlay);
    assert_int_equal(p->ip, IP_MODE_DHCP6);
    /* web18: no gateway (the rack's applies) */
    const intent *in2 = intent_set_find_install(set, "1b4e28ba-2fa1-11d2-883f-0016d3cca428");
    assert_non_null(in2);
    assert_false(in2->has_gateway);
    assert_string_equal(in2->hostname, "web18");
}

static void test_convert(void **state)
{
    fixture *f = *state;
    intent_set *set = NULL;
    assert_int_equal(uplink_intents_from_sync(&f->sr, &set), 0);
    check_set(set, f);
    intent_set_free(set);
}

static void test_contradictions_refused(void **state)
{
    fixture *f = *state;
    intent_set *set = NULL;
    f->intents[1].profile = RB_UNCONST("el8"); /* not in the response */
    assert_int_equal(uplink_intents_from_sync(&f->sr, &set), -EINVAL);
    f->intents[1].profile = RB_UNCONST("el9");
    f->intents[1].macs = &f->mac_fields[0]; /* web17's MAC */
    assert_int_equal(uplink_intents_from_sync(&f->sr, &set), -EINVAL);
    f->intents[1].macs = &f->mac_fields[1];
    f->intents[1].install_id = f->intents[0].install_id;
    assert_int_equal(uplink_intents_from_sync(&f->sr, &set), -EINVAL);
}

static void test_persist_roundtrip(void **state)
{
    fixture *f = *state;
    char dir[] = "/tmp/test_uplink.XXXXXX";
    assert_non_null(mkdtemp(dir));
    intent_set *set = NULL;
    assert_int_equal(uplink_load_persisted(dir, &set, NULL), -ENOENT);
    assert_int_equal(uplink_persist(dir, &f->sr), 0);
    assert_int_equal(uplink_load_persisted(dir, &set, NULL), 0);
    check_set(set, f);
    intent_set_free(set);

    /* A damaged file is refused, never half-read. */
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, UPLINK_INTENTS_FILE);
    FILE *fp = fopen(path, "r+");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long size = ftell(fp);
    assert_int_equal(ftruncate(fileno(fp), size / 2), 0);
    fclose(fp);
    assert_int_equal(uplink_load_persisted(dir, &set, NULL), -EBADMSG);
    unlink(path);
    rmdir(dir);
}

/* When the uplink gives up on its session and opens a new one: a session
 * that answers, even rarely, is kept; one that has answered nothing for
 * the bound is replaced (the controller_kill fault: nng 1.5.2 kept a dead
 * connection and the agent timed out for minutes). */
/* The reconnect backoff (decorrelated jitter): within [BASE, cap] always;
 * each pause at most 3 × the last, so it grows to the cap in a few steps
 * when the dice say so; any random number gives a pause in range; 0 (after
 * a success) starts again from the bottom. */
static void test_backoff(void **state)
{
    const uint32_t base = UPLINK_BACKOFF_BASE_MS, cap = UPLINK_BACKOFF_MAX_MS;
    /* the reset: [BASE, 3 × BASE] */
    assert_int_equal(uplink_backoff_next(0, cap, 0), base);
    assert_int_equal(uplink_backoff_next(0, cap, 2 * base), 3 * base);
    assert_int_equal(uplink_backoff_next(0, cap, 2 * base + 1), base);
    /* growth: the highest draw triples until the cap, then stays there */
    uint32_t prev = 0, steps = 0;
    while (prev < cap) {
        uint32_t top = 3 * (prev > base ? prev : base);
        top = top < cap ? top : cap;
        uint32_t next = uplink_backoff_next(prev, cap, top - base);
        assert_int_equal(next, top);
        assert_true(next > prev);
        prev = next;
        steps++;
    }
    assert_int_equal(prev, cap);
    assert_int_equal(steps, 4); /* 0 → 1.5 → 4.5 → 13.5 → 30 s (capped) */
    assert_int_equal(uplink_backoff_next(cap, cap, cap - base), cap);
    assert_int_equal(uplink_backoff_next(UINT32_MAX, cap, 12345), base + 12345 % (cap - base + 1));
    /* jitter: every draw lands in [BASE, min(cap, 3 × prev)], and the
     * draws spread over that range rather than cluster */
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t rnd = 0; rnd < 200000; rnd += 7) {
        uint32_t ms = uplink_backoff_next(4000, cap, rnd * 2654435761u);
        assert_true(ms >= base && ms <= 12000);
        lo = ms < lo ? ms : lo;
        hi = ms > hi ? ms : hi;
    }
    assert_true(lo < base + 200);
    assert_true(hi > 12000 - 200);
    /* a cap below the base: the cap (the reopen pause, 5 s, is above) */
    assert_int_equal(uplink_backoff_next(0, 100, UINT32_MAX), 100);
    assert_int_equal(uplink_backoff_next(9000, 5000, 5000 - base), 5000);
    assert_int_equal(uplink_backoff_next(9000, 5000, 5000 - base + 1), base);
}

static void test_stall_policy(void **state)
{
    (void)state;
    /* Progress, or no failure yet: never replaced, however long ago. */
    assert_false(uplink_session_stalled(0, 0));
    assert_false(uplink_session_stalled(0, 10 * UPLINK_STALL_MS));
    /* A few quick failures (a TLS reload resets the calls in flight, a
     * controller restart) are nng's to redial, not ours. */
    assert_false(uplink_session_stalled(UPLINK_STALL_FAILURES - 1, UPLINK_STALL_MS - 1));
    assert_false(uplink_session_stalled(UPLINK_STALL_FAILURES, UPLINK_STALL_MIN_MS - 1));
    assert_false(uplink_session_stalled(50, 1000));
    /* Enough failures over enough time, or one failure after the bound. */
    assert_true(uplink_session_stalled(UPLINK_STALL_FAILURES, UPLINK_STALL_MIN_MS));
    assert_true(uplink_session_stalled(1, UPLINK_STALL_MS));
    /* The events thread alone fails every 15 s: replaced by the third. */
    assert_true(uplink_session_stalled(3, 3 * 15000));
    /* The bound stays short of the fault suite's 90 s wait, with the
     * backoff between calls and the reopen on top. */
    assert_true(UPLINK_STALL_MS <= 45000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_convert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contradictions_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persist_roundtrip, setup, teardown),
        cmocka_unit_test(test_stall_policy),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

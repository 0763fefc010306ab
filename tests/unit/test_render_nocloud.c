/* render/nocloud: the NoCloud seed (meta-data, network-config,
 * user-data) against golden files (tests/golden/nocloud/, byte for byte,
 * validated by tests/tools/nocloud_check.py), and hostile values: what an
 * operator or a peer gives must come out as one JSON string, never as a
 * YAML key of its own. RACKBOOT_UPDATE_GOLDEN=1 rewrites the golden files. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "golden.h"
#include "render/context.h"
#include "render/nocloud.h"
#include "util.h"

#define MUT(s) ((char *)(uintptr_t)(s))

#ifndef NOCLOUD_GOLDEN_DIR
#error "NOCLOUD_GOLDEN_DIR must name tests/golden/nocloud"
#endif

static struct in6_addr addr(const char *s)
{
    struct in6_addr a;
    assert_int_equal(inet_pton(AF_INET6, s, &a), 1);
    return a;
}

static const uint8_t MAC0[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x17 };

/* Keys as operators paste them, one with every character YAML cares about
 * in its comment. */
static const char KEY_ED25519[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVpV0p3c2x6b0NvS2ZtY2xGd3B0b3JhZ2U ops@example";
static const char KEY_ODD[] = "from=\"2001:db8::/32\",no-agent-forwarding ssh-ed25519 "
                              "AAAAC3NzaC1lZDI1NTE5AAAAIG9kZA== it's \"odd\": #not-a-comment, "
                              "- [a] {b} & *c !d | > % @ ` \\ ~";

typedef struct fixture {
    render_context ctx;
    model_image image;
    char *keys[2];
    model_profile profile;
    intent in;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct in6_addr agent = addr("2001:db8:0:1::2");
    assert_int_equal(render_context_init(&f->ctx, &agent, 8080), 0);
    f->ctx.dns[0] = addr("2001:db8:0:1::53");
    f->ctx.dns[1] = addr("2001:db8:0:2::53");
    f->ctx.n_dns = 2;
    f->ctx.search[0] = "rack1.example.com";
    f->ctx.search[1] = "example.com";
    f->ctx.n_search = 2;

    f->image = (model_image){ .name = MUT("disk.img"), .kind = IMAGE_DISK };
    f->keys[0] = MUT(KEY_ED25519);
    f->keys[1] = MUT(KEY_ODD);
    f->profile = (model_profile){
        .name = MUT("deb12"),
        .kind = PROFILE_IMAGE,
        .images = &f->image,
        .n_images = 1,
        .ip = IP_MODE_STATIC,
        .keep_ra = true,
        .root_device = MUT("auto"),
        .ssh_keys = f->keys,
        .n_ssh_keys = 2,
    };
    f->in = (intent){
        .install_id = MUT("9b2f6c1e-4d0a-4f57-9a63-0e8f3d2c1b17"),
        .host = MUT("web17"),
        .n_macs = 1,
        .address = addr("2001:db8:0:1::17"),
        .prefix_len = 64,
        .has_gateway = true,
        .gateway = addr("2001:db8:0:1::1"),
        .hostname = MUT("web17"),
        .token = MUT("tok_3f9a2c71e5d84b60"),
        .attempt = 1,
        .profile = &f->profile,
    };
    memcpy(f->in.macs[0], MAC0, 6);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* Renders the seed and compares each document with <prefix>.<file>. */
static void expect_seed(fixture *f, const char *prefix)
{
    render_nocloud_seed s;
    assert_int_equal(render_nocloud(&f->ctx, &f->in, MAC0, &s), 0);
    char name[128];
    snprintf(name, sizeof(name), "%s.meta-data", prefix);
    golden_expect(NOCLOUD_GOLDEN_DIR, name, s.meta_data, s.meta_data_len);
    snprintf(name, sizeof(name), "%s.network-config", prefix);
    golden_expect(NOCLOUD_GOLDEN_DIR, name, s.network_config, s.network_config_len);
    snprintf(name, sizeof(name), "%s.user-data", prefix);
    golden_expect(NOCLOUD_GOLDEN_DIR, name, s.user_data, s.user_data_len);
    render_nocloud_clear(&s);
    assert_null(s.user_data);
}

/* A JSON document (after an optional "#cloud-config\n" line). */
static json_t *load(const char *text)
{
    if (strncmp(text, "#cloud-config\n", 14) == 0) {
        text += 14;
    }
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j) {
        fail_msg("not JSON: %s (line %d)", err.text, err.line);
    }
    return j;
}

/* The keys of a JSON object, in order, comma-separated. */
static void expect_keys(json_t *o, const char *want)
{
    char got[512] = "";
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (got[0]) {
            strcat(got, ",");
        }
        strcat(got, k);
    }
    assert_string_equal(got, want);
}

/* web17: static, gateway, the rack's two DNS servers and search domains, an
 * SSH key with quotes, colons, '#' and flow indicators in it. */
static void test_static_rack_defaults(void **state)
{
    fixture *f = *state;
    expect_seed(f, "web17");

    render_nocloud_seed s;
    assert_int_equal(render_nocloud(&f->ctx, &f->in, MAC0, &s), 0);
    assert_memory_equal(s.user_data, "#cloud-config\n", 14);
    json_t *ud = load(s.user_data);
    expect_keys(
        ud, "hostname,fqdn,preserve_hostname,ssh_authorized_keys,write_files,runcmd,phone_home");
    assert_string_equal(json_string_value(json_object_get(ud, "hostname")), "web17");
    assert_string_equal(json_string_value(json_object_get(ud, "fqdn")), "web17.rack1.example.com");
    /* The odd key comes back exactly as given. */
    json_t *keys = json_object_get(ud, "ssh_authorized_keys");
    assert_int_equal(json_array_size(keys), 2);
    assert_string_equal(json_string_value(json_array_get(keys, 1)), KEY_ODD);
    json_t *ph = json_object_get(ud, "phone_home");
    assert_string_equal(json_string_value(json_object_get(ph, "url")),
                        "http://[2001:db8:0:1::2]:8080/phone-home/"
                        "9b2f6c1e-4d0a-4f57-9a63-0e8f3d2c1b17?token=tok_3f9a2c71e5d84b60");
    json_decref(ud);

    json_t *md = load(s.meta_data);
    expect_keys(md, "instance-id,local-hostname");
    assert_string_equal(json_string_value(json_object_get(md, "instance-id")), f->in.install_id);
    json_decref(md);

    json_t *nc = load(s.network_config);
    json_t *eth = json_object_get(json_object_get(nc, "ethernets"), RENDER_NOCLOUD_IFNAME);
    assert_non_null(eth);
    assert_true(json_is_false(json_object_get(eth, "accept-ra")));
    assert_string_equal(json_string_value(json_object_get(eth, "gateway6")), "2001:db8:0:1::1");
    json_decref(nc);
    render_nocloud_clear(&s);
}

/* db3: an FQDN of its own, its own single DNS server, no search domains, no
 * gateway anywhere: RAs stay on (the only default route), no drop-in. */
static void test_fqdn_no_gateway(void **state)
{
    fixture *f = *state;
    f->in.hostname = MUT("db3.dc2.example.net");
    f->in.install_id = MUT("i-0003");
    f->in.address = addr("2001:db8:0:2::3");
    f->in.prefix_len = 80;
    f->in.has_gateway = false;
    f->in.dns[0] = addr("2001:db8:0:2::53");
    f->in.n_dns = 1;
    f->ctx.n_search = 0;
    f->profile.n_ssh_keys = 1;
    expect_seed(f, "db3");
}

/* app5: the operator's user_data template, #cloud-config with lists rackboot
 * also writes (they merge by the part's Merge-Type) and placeholders. */
static void test_user_data_template(void **state)
{
    fixture *f = *state;
    size_t len;
    char *tmpl = golden_read(NOCLOUD_GOLDEN_DIR, "app5.user-data.in", &len);
    f->in.hostname = MUT("app5");
    f->in.install_id = MUT("i-0005");
    f->profile.user_data = tmpl;
    f->profile.n_ssh_keys = 1;
    expect_seed(f, "app5");

    render_nocloud_seed s;
    assert_int_equal(render_nocloud(&f->ctx, &f->in, MAC0, &s), 0);
    assert_memory_equal(s.user_data, "MIME-Version: 1.0\n", 18);
    /* The placeholders are filled. */
    assert_non_null(strstr(s.user_data, "echo app5 2001:db8:0:1::17/64"));
    render_nocloud_clear(&s);
    free(tmpl);
}

/* An 8-bit template goes base64 (cloud-init's email parser would mangle
 * it raw), a shell script as text/plain like any other. */
static void test_user_data_8bit(void **state)
{
    fixture *f = *state;
    f->in.hostname = MUT("cafe1");
    f->in.install_id = MUT("i-0006");
    f->profile.user_data = MUT("#!/bin/sh\necho \"caf\xc3\xa9 {{hostname}}\" > /etc/motd\n");
    f->profile.n_ssh_keys = 0;
    expect_seed(f, "cafe1");
    render_nocloud_seed s;
    assert_int_equal(render_nocloud(&f->ctx, &f->in, MAC0, &s), 0);
    assert_non_null(strstr(s.user_data, "Content-Transfer-Encoding: base64\n"));
    assert_null(strstr(s.user_data, "caf\xc3\xa9"));
    render_nocloud_clear(&s);
}

/* ip = dhcp6: DHCPv6 and RAs on, no static address, no drop-in. */
static void test_dhcp6(void **state)
{
    fixture *f = *state;
    f->profile.ip = IP_MODE_DHCP6;
    f->in.hostname = MUT("lab9");
    f->in.install_id = MUT("i-0009");
    f->profile.n_ssh_keys = 1;
    expect_seed(f, "lab9");
}

/* The boundary is the parts' hash: the same input renders the same bytes,
 * and the boundary occurs only as a delimiter. */
static void test_boundary(void **state)
{
    fixture *f = *state;
    f->profile.user_data = MUT("#cloud-config\npackages: [htop]\n");
    render_nocloud_seed a, b;
    assert_int_equal(render_nocloud(&f->ctx, &f->in, MAC0, &a), 0);
    assert_int_equal(render_nocloud(&f->ctx, &f->in, MAC0, &b), 0);
    assert_string_equal(a.user_data, b.user_data);
    const char *bd = strstr(a.user_data, "boundary=\"");
    assert_non_null(bd);
    char boundary[64];
    assert_int_equal(sscanf(bd, "boundary=\"%63[^\"]\"", boundary), 1);
    size_t count = 0;
    for (const char *p = a.user_data; (p = strstr(p, boundary)); p++) {
        count++;
    }
    assert_int_equal(count, 4); /* the header, two delimiters, the close */
    render_nocloud_clear(&a);
    render_nocloud_clear(&b);
}

/* What must never reach a seed: a key that is not one printable line, a
 * hostname with YAML in it, a MIME template, an unknown placeholder. */
static void test_hostile(void **state)
{
    fixture *f = *state;
    render_nocloud_seed s = { 0 };
    static const char *const bad_keys[] = {
        "ssh-ed25519 AAAA ops\nhostname: evil",
        "ssh-ed25519 AAAA ops\r\nruncmd: [reboot]",
        "ssh-ed25519 AAAA ops\x7f",
        "ssh-ed25519 AAAA caf\xc3\xa9",
        "ssh-ed25519",
        " ssh-ed25519 AAAA",
        "",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad_keys); i++) {
        f->keys[1] = MUT(bad_keys[i]);
        assert_int_equal(render_nocloud(&f->ctx, &f->in, MAC0, &s), -EINVAL);
        assert_null(s.user_data);
    }
    f->keys[1] = MUT(KEY_ODD);

    static const char *const bad_names[] = {
        "web17\nruncmd: [reboot]",
        "web17\"",
        "web17: x",
        "web17 #",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad_names); i++) {
        f->in.hostname = MUT(bad_names[i]);
        assert_int_equal(render_nocloud(&f->ctx, &f->in, MAC0, &s), -EINVAL);
    }
    f->in.hostname = MUT("web17");

    f->in.token = MUT("tok\"&x=1");
    assert_int_equal(render_nocloud(&f->ctx, &f->in, MAC0, &s), -EINVAL);
    f->in.token = MUT("tok_3f9a2c71e5d84b60");

    f->profile.user_data = MUT("Content-Type: multipart/mixed; boundary=x\n\n--x\n");
    assert_int_equal(render_nocloud(&f->ctx, &f->in, MAC0, &s), -EINVAL);
    f->profile.user_data = MUT("#cloud-config\nhostname: {{hostnme}}\n");
    assert_true(render_nocloud(&f->ctx, &f->in, MAC0, &s) < 0);
    assert_null(s.user_data);
}

/* The agent's route for the phone-home URL the seed carries. */
static void test_phone_home_path(void **state)
{
    (void)state;
    const char *id;
    size_t len;
    assert_int_equal(render_phone_home_path_parse("/phone-home/i-0005", &id, &len), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(id, "i-0005", 6);
    assert_int_equal(render_phone_home_path_parse("phone-home/i-0005", &id, &len), 0);
    assert_int_equal(render_phone_home_path_parse("/phone-home/../ks", &id, &len), -EINVAL);
    assert_int_equal(render_phone_home_path_parse("/phone-home/", &id, &len), -EINVAL);
    assert_int_equal(render_phone_home_path_parse("/progress/i-0005", &id, &len), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_static_rack_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fqdn_no_gateway, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_data_template, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_data_8bit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dhcp6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_phone_home_path, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* render: the iPXE script, the kernel command line and the
 * kickstart against golden files (tests/golden/render/, byte for byte), the
 * URL paths the HTTP server parses, and the values that must never reach a
 * rendered file. RACKBOOT_UPDATE_GOLDEN=1 rewrites the golden files. */
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

#include "golden.h"
#include "model/template.h"
#include "render/cmdline.h"
#include "render/context.h"
#include "render/kickstart.h"
#include "render/preseed.h"
#include "render/script.h"
#include "util.h"

/* The intent structs hold `char *` (they own their strings); the fixture
 * points them at literals it never writes or frees. */
#define MUT(s) ((char *)(uintptr_t)(s))

#ifndef RENDER_GOLDEN_DIR
#error "RENDER_GOLDEN_DIR must name tests/golden/render"
#endif
#ifndef RENDER_EXAMPLES_DIR
#error "RENDER_EXAMPLES_DIR must name deploy/examples"
#endif

static char *read_file(const char *name, size_t *ret_len)
{
    return golden_read(RENDER_GOLDEN_DIR, name, ret_len);
}

static void expect_golden(const char *name, const char *got, size_t len)
{
    golden_expect(RENDER_GOLDEN_DIR, name, got, len);
}

static struct in6_addr addr(const char *s)
{
    struct in6_addr a;
    assert_int_equal(inet_pton(AF_INET6, s, &a), 1);
    return a;
}

/* The fixture: the el9 profile and web17, as a standalone hosts file would
 * give them, the rack's DNS servers and search list as defaults. */
typedef struct fixture {
    render_context ctx;
    model_image images[3];
    model_profile profile;
    intent in;
    char *template;
} fixture;

static const uint8_t MAC0[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t MAC1[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

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
    f->ctx.has_gateway = true;
    f->ctx.gateway = addr("2001:db8:0:1::ffff"); /* the intent's own wins */

    f->images[0] = (model_image){ .name = MUT("vmlinuz"), .kind = IMAGE_KERNEL };
    f->images[1] = (model_image){ .name = MUT("initrd.img"), .kind = IMAGE_INITRD };
    f->images[2] = (model_image){ .name = MUT("squashfs.img"), .kind = IMAGE_STAGE2 };
    f->template = read_file("el9.ks.in", NULL);
    f->profile = (model_profile){
        .name = MUT("el9"),
        .images = f->images,
        .n_images = 3,
        .cmdline = MUT("inst.text inst.sshd console=ttyS0,115200n8"),
        .kickstart = f->template,
        .overlay = true,
        .ip = IP_MODE_STATIC,
        .keep_ra = true,
    };
    f->in = (intent){
        .install_id = MUT("i-0042"),
        .host = MUT("web17"),
        .n_macs = 2,
        .address = addr("2001:db8:0:1::17"),
        .prefix_len = 64,
        .has_gateway = true,
        .gateway = addr("2001:db8:0:1::1"),
        .hostname = MUT("web17.rack1.example.com"),
        .token = MUT("tok_3f9a2c71"),
        .attempt = 1,
        .profile = &f->profile,
    };
    memcpy(f->in.macs[0], MAC0, 6);
    memcpy(f->in.macs[1], MAC1, 6);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    free(f->template);
    free(f);
    return 0;
}

static void expect_script(fixture *f, const uint8_t mac[6], const char *golden)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(render_script(&f->ctx, &f->in, mac, &out, &len), 0);
    /* iPXE's script_probe(): the magic at byte 0, then whitespace. */
    assert_memory_equal(out, "#!ipxe\n", 7);
    expect_golden(golden, out, len);
    free(out);
}

static void expect_cmdline(fixture *f, const uint8_t mac[6], const char *golden)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, mac, &out, &len), 0);
    assert_null(strchr(out, '\n'));
    expect_golden(golden, out, len);
    free(out);
}

static void expect_kickstart(fixture *f, const char *golden)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(render_kickstart(&f->ctx, &f->in, &out, &len), 0);
    expect_golden(golden, out, len);
    free(out);
}

/* Static address, overlay, stage2: the el9 profile as shipped. */
static void test_script_static_overlay(void **state)
{
    fixture *f = *state;
    expect_script(f, MAC0, "script-static-overlay.ipxe");
    expect_cmdline(f, MAC0, "cmdline-static.txt");
}

/* The second NIC boots: ifname= and BOOTIF= name the MAC it booted with. */
static void test_cmdline_second_mac(void **state)
{
    fixture *f = *state;
    char *out = NULL;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC1, &out, NULL), 0);
    assert_non_null(strstr(out, "ifname=bootnet:52:54:00:ab:cd:ef "));
    assert_non_null(strstr(out, " BOOTIF=01-52-54-00-ab-cd-ef "));
    free(out);

    /* A MAC that is not the intent's is refused: it would name a NIC the
     * host does not have. */
    static const uint8_t other[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x01 };
    out = NULL;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, other, &out, NULL), -EINVAL);
    assert_int_equal(render_script(&f->ctx, &f->in, other, &out, NULL), -EINVAL);
    assert_null(out);
}

/* ip = dhcp6, no overlay, no stage2, no extra arguments, rack defaults
 * only, port 80. */
static void test_script_dhcp6_plain(void **state)
{
    fixture *f = *state;
    struct in6_addr agent = addr("2001:db8:0:1::2");
    assert_int_equal(render_context_init(&f->ctx, &agent, 80), 0);
    f->ctx.dns[0] = addr("2001:db8:0:1::53");
    f->ctx.n_dns = 1;
    f->profile.ip = IP_MODE_DHCP6;
    f->profile.overlay = false;
    f->profile.n_images = 2; /* no stage2: Anaconda takes it from inst.repo */
    f->profile.cmdline = NULL;
    expect_script(f, MAC0, "script-dhcp6-plain.ipxe");
    expect_cmdline(f, MAC0, "cmdline-dhcp6.txt");
}

/* A profile's root_device goes on the command line for the image deploy and
 * kickstarts' %pre; none without one (the golden files above have none). */
static void test_cmdline_root_device(void **state)
{
    fixture *f = *state;
    char *out = NULL;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), 0);
    assert_null(strstr(out, "rackboot.root_device="));
    free(out);
    f->profile.root_device = (char[]){ "/dev/disk/by-path/pci-0000:00:04.0" };
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), 0);
    assert_non_null(strstr(out, " rackboot.root_device=/dev/disk/by-path/pci-0000:00:04.0 "));
    free(out);
    f->profile.root_device = NULL;
}

/* No gateway in the intent: the rack's; neither: an empty field. */
static void test_cmdline_gateway_fallback(void **state)
{
    fixture *f = *state;
    char *out = NULL;
    f->in.has_gateway = false;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), 0);
    assert_non_null(strstr(out, " ip=[2001:db8:0:1::17]::[2001:db8:0:1::ffff]:64:"
                                "web17.rack1.example.com:bootnet:none "));
    free(out);
    f->ctx.has_gateway = false;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), 0);
    assert_non_null(
        strstr(out, " ip=[2001:db8:0:1::17]:::64:web17.rack1.example.com:bootnet:none "));
    free(out);

    /* The intent's own DNS servers replace the rack's, one nameserver= each,
     * unbracketed. */
    f->in.dns[0] = addr("2001:db8:ffff::1");
    f->in.n_dns = 1;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), 0);
    assert_non_null(strstr(out, " nameserver=2001:db8:ffff::1 BOOTIF="));
    assert_null(strstr(out, "2001:db8:0:1::53"));
    free(out);
}

/* A command line the kernel would cut (COMMAND_LINE_SIZE) is refused. */
static void test_cmdline_too_long(void **state)
{
    fixture *f = *state;
    char *extra = malloc(RENDER_CMDLINE_MAX);
    assert_non_null(extra);
    memset(extra, 'x', RENDER_CMDLINE_MAX - 1);
    extra[RENDER_CMDLINE_MAX - 1] = '\0';
    f->profile.cmdline = extra;
    char *out = NULL;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), -E2BIG);
    assert_int_equal(render_script(&f->ctx, &f->in, MAC0, &out, NULL), -E2BIG);
    assert_null(out);

    /* Fits alone, but not with the script's initrd= arguments in front. */
    char *plain = NULL;
    size_t plain_len = 0;
    f->profile.cmdline = NULL;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &plain, &plain_len), 0);
    free(plain);
    size_t room = RENDER_CMDLINE_MAX - 1 - plain_len - 1; /* the space before it */
    extra[room] = '\0';
    f->profile.cmdline = extra;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &plain, &plain_len), 0);
    assert_int_equal(plain_len, RENDER_CMDLINE_MAX - 1);
    free(plain);
    assert_int_equal(render_script(&f->ctx, &f->in, MAC0, &out, NULL), -E2BIG);
    free(extra);
}

/* A newline in the profile's arguments would start a new iPXE command. */
static void test_cmdline_extra_control(void **state)
{
    fixture *f = *state;
    char *out = NULL;
    f->profile.cmdline = MUT("quiet\nchain http://evil/");
    assert_int_equal(render_script(&f->ctx, &f->in, MAC0, &out, NULL), -EINVAL);
    f->profile.cmdline = MUT("quiet\tx");
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), -EINVAL);
    assert_null(out);
}

static void test_script_needs_kernel(void **state)
{
    fixture *f = *state;
    f->images[0].kind = IMAGE_OTHER;
    char *out = NULL;
    assert_int_equal(render_script(&f->ctx, &f->in, MAC0, &out, NULL), -ENOENT);
    assert_null(out);
}

static void test_kickstart_keep_ra(void **state)
{
    expect_kickstart(*state, "kickstart-keep-ra.ks");
}

static void test_kickstart_plain(void **state)
{
    fixture *f = *state;
    f->profile.keep_ra = false;
    expect_kickstart(f, "kickstart-plain.ks");
}

/* No template: only rackboot's sections (progress still reported). */
static void test_kickstart_no_template(void **state)
{
    fixture *f = *state;
    f->profile.kickstart = NULL;
    f->profile.keep_ra = false;
    char *out = NULL;
    assert_int_equal(render_kickstart(&f->ctx, &f->in, &out, NULL), 0);
    assert_string_equal(
        out, "\n# Added by rackboot for install i-0042.\n"
             "%pre\n"
             "curl -g -fsS -m 10 --retry 5 --retry-delay 2 -o /dev/null -d phase=installing "
             "\"http://[2001:db8:0:1::2]:8080/progress/i-0042?token=tok_3f9a2c71\" || true\n"
             "%end\n"
             "%post --nochroot\n"
             "curl -g -fsS -m 10 --retry 5 --retry-delay 2 -o /dev/null -d phase=installed "
             "\"http://[2001:db8:0:1::2]:8080/progress/i-0042?token=tok_3f9a2c71\" || true\n"
             "%end\n"
             "%onerror\n"
             "curl -g -fsS -m 10 --retry 5 --retry-delay 2 -o /dev/null -d phase=failed "
             "\"http://[2001:db8:0:1::2]:8080/progress/i-0042?token=tok_3f9a2c71\" || true\n"
             "%end\n");
    free(out);
}

/* Values that would break out of a kickstart line, a shell string or the
 * kernel command line are refused, whichever file is rendered. */
static void test_unsafe_values_refused(void **state)
{
    fixture *f = *state;
    static const char *const hostnames[] = {
        "web17\"; reboot; \"", "web17\nrootpw x", "web17 x", "web'17", "web$(id)", "",
    };
    for (size_t i = 0; i < ARRAY_SIZE(hostnames); i++) {
        char *out = NULL;
        f->in.hostname = MUT(hostnames[i]);
        assert_int_equal(render_kickstart(&f->ctx, &f->in, &out, NULL), -EINVAL);
        assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), -EINVAL);
        assert_int_equal(render_script(&f->ctx, &f->in, MAC0, &out, NULL), -EINVAL);
        assert_null(out);
    }
    f->in.hostname = NULL; /* the inventory name stands in */
    char *out = NULL;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), 0);
    assert_non_null(strstr(out, ":64:web17:bootnet:none "));
    free(out);
    out = NULL;
    f->in.hostname = MUT("web17.rack1.example.com");

    static const char *const ids[] = { "a b", "a/b", "a?b", "a&b", "..", "", "a\"b", "é" };
    for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
        f->in.token = MUT(ids[i]);
        assert_int_equal(render_kickstart(&f->ctx, &f->in, &out, NULL), -EINVAL);
        f->in.token = MUT("tok");
        f->in.install_id = MUT(ids[i]);
        assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), -EINVAL);
        f->in.install_id = MUT("i-0042");
        f->profile.name = MUT(ids[i]);
        assert_int_equal(render_script(&f->ctx, &f->in, MAC0, &out, NULL), -EINVAL);
        f->profile.name = MUT("el9");
    }
    static char bad_search[] = "rack1.example.com\nrootpw x";
    f->in.search[0] = bad_search;
    f->in.n_search = 1;
    assert_int_equal(render_kickstart(&f->ctx, &f->in, &out, NULL), -EINVAL);
    assert_null(out);
}

/* An unknown placeholder that slipped past profile load fails the render
 * rather than leaving a blank. */
static void test_kickstart_bad_template(void **state)
{
    fixture *f = *state;
    char *out = NULL;
    f->profile.kickstart = MUT("network --hostname={{hostnme}}\n");
    assert_int_equal(render_kickstart(&f->ctx, &f->in, &out, NULL), -EBADMSG);
    f->profile.kickstart = MUT("network --hostname={{hostname\n");
    assert_int_equal(render_kickstart(&f->ctx, &f->in, &out, NULL), -EBADMSG);
    assert_null(out);
}

static void test_context_init(void **state)
{
    render_context c;
    struct in6_addr a = addr("2001:db8::2");
    assert_int_equal(render_context_init(&c, &a, 80), 0);
    assert_string_equal(c.base_url, "http://[2001:db8::2]");
    assert_int_equal(render_context_init(&c, &a, 0), 0);
    assert_string_equal(c.base_url, "http://[2001:db8::2]");
    a = addr("2001:db8:1234:5678:9abc:def0:1234:5678");
    assert_int_equal(render_context_init(&c, &a, 65535), 0);
    assert_string_equal(c.base_url, "http://[2001:db8:1234:5678:9abc:def0:1234:5678]:65535");
    a = addr("::");
    assert_int_equal(render_context_init(&c, &a, 80), -EINVAL);
    a = addr("::ffff:192.0.2.1");
    assert_int_equal(render_context_init(&c, &a, 80), -EINVAL);
}

static void expect_mac(const char *path, const uint8_t want[6])
{
    uint8_t mac[6] = { 0 };
    int r = render_boot_path_parse(path, mac);
    if (r != 0) {
        fail_msg("%s: %d", path, r);
    }
    assert_memory_equal(mac, want, 6);
}

static void expect_no_mac(const char *path)
{
    uint8_t mac[6] = { 1, 2, 3, 4, 5, 6 };
    if (render_boot_path_parse(path, mac) != -EINVAL) {
        fail_msg("accepted: %s", path);
    }
    /* ret_mac is written only on success */
    static const uint8_t untouched[6] = { 1, 2, 3, 4, 5, 6 };
    assert_memory_equal(mac, untouched, 6);
}

/* The forms iPXE sends (NETBOOT-SPECS.md §4.3): colons verbatim (iPXE since
 * 1844aacc8), "%3A" (v1.21.1 and older, path re-encoded), hyphens
 * (${net0/mac:hexhyp}); either case. */
static void test_boot_path_mac(void **state)
{
    expect_mac("/boot/52:54:00:12:34:56.ipxe", MAC0);
    expect_mac("boot/52:54:00:12:34:56.ipxe", MAC0);
    expect_mac("/boot/52%3A54%3A00%3A12%3A34%3A56.ipxe", MAC0);
    expect_mac("/boot/52%3a54%3a00%3a12%3a34%3a56.ipxe", MAC0);
    expect_mac("/boot/52-54-00-12-34-56.ipxe", MAC0);
    expect_mac("/boot/52:54:00:AB:CD:EF.ipxe", MAC1);
    expect_mac("/boot/52-54-00-aB-Cd-eF.ipxe", MAC1);

    expect_no_mac("/boot/52:54:00:12:34:56");
    expect_no_mac("/boot/52:54:00:12:34:56.ipx");
    expect_no_mac("/boot/52:54:00:12:34:56.ipxe.ipxe");
    expect_no_mac("/boot/52:54:00:12:34.ipxe");
    expect_no_mac("/boot/52:54:00:12:34:56:78.ipxe");
    expect_no_mac("/boot/52-54:00:12:34:56.ipxe"); /* mixed separators */
    expect_no_mac("/boot/52%3A54:00:12:34:56.ipxe");
    expect_no_mac("/boot/525400123456.ipxe");
    expect_no_mac("/boot/52:54:00:12:34:5g.ipxe");
    expect_no_mac("/boot/52:54:00:12:34:5.ipxe");
    expect_no_mac("/boot/.ipxe");
    expect_no_mac("/boot/");
    expect_no_mac("/boot");
    expect_no_mac("/files/52:54:00:12:34:56.ipxe");
    expect_no_mac("/boot/x/52:54:00:12:34:56.ipxe");
    expect_no_mac("//boot/52:54:00:12:34:56.ipxe");
    expect_no_mac("/boot/52%3A54%3A00%3A12%3A34%3A56%3A.ipxe");
    expect_no_mac("/boot/52%3A54%3A00%3A12%3A34%3A5.ipxe");
    expect_no_mac("");
}

static void test_install_paths(void **state)
{
    const char *id = NULL;
    size_t len = 0;
    assert_int_equal(render_ks_path_parse("/ks/i-0042", &id, &len), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(id, "i-0042", 6);
    assert_int_equal(render_ks_path_parse("ks/A.b_c~d", &id, &len), 0);
    assert_int_equal(len, 7);
    assert_int_equal(render_progress_path_parse("/progress/i-0042", &id, &len), 0);
    assert_memory_equal(id, "i-0042", 6);

    static const char *const bad[] = {
        "/ks/",
        "/ks",
        "/ks/a/b",
        "/ks/..",
        "/ks/.",
        "/ks/a b",
        "/ks/a%20b",
        "/progress/i-0042",
        "/ks/i-0042?token=x",
        "/kss/i-0042",
        "",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        id = NULL;
        if (render_ks_path_parse(bad[i], &id, &len) != -EINVAL) {
            fail_msg("accepted: %s", bad[i]);
        }
        assert_null(id);
    }
    assert_int_equal(render_progress_path_parse("/ks/i-0042", &id, &len), -EINVAL);

    /* The URLs the kickstart and the command line carry. */
    render_context c;
    struct in6_addr a = addr("2001:db8::2");
    assert_int_equal(render_context_init(&c, &a, 8080), 0);
    intent in = { .install_id = MUT("i-0042"), .token = MUT("t0k") };
    char *url = NULL;
    assert_int_equal(render_kickstart_url(&c, &in, &url), 0);
    assert_string_equal(url, "http://[2001:db8::2]:8080/ks/i-0042?token=t0k");
    free(url);
    assert_int_equal(render_progress_url(&c, &in, &url), 0);
    assert_string_equal(url, "http://[2001:db8::2]:8080/progress/i-0042?token=t0k");
    free(url);
    url = NULL;
    in.token = MUT("a&b");
    assert_int_equal(render_progress_url(&c, &in, &url), -EINVAL);
    assert_null(url);
}

/* An image profile (deb12): the deploy ramdisk with the image, its hash,
 * the root device, the progress and seed URLs; no inst.* words. */
static void use_image_profile(fixture *f)
{
    static const uint8_t sha[32] = { 0xde, 0xad, 0xbe, 0xef, [31] = 0x42 };
    f->images[0] = (model_image){ .name = MUT("disk.img"), .kind = IMAGE_DISK };
    memcpy(f->images[0].sha256, sha, sizeof(sha));
    f->images[0].size = 188981171; /* as served: never rendered (cmdline.h) */
    f->profile = (model_profile){
        .name = MUT("deb12"),
        .kind = PROFILE_IMAGE,
        .images = f->images,
        .n_images = 1,
        .cmdline = MUT("console=ttyS0,115200n8 rackboot.fail_delay=30"),
        .ip = IP_MODE_STATIC,
    };
    f->ctx.deploy_ramdisk = true;
}

static void test_script_image(void **state)
{
    fixture *f = *state;
    use_image_profile(f);
    expect_script(f, MAC0, "script-image.ipxe");
    expect_cmdline(f, MAC0, "cmdline-image.txt");

    char *out = NULL;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), 0);
    assert_null(strstr(out, "inst."));
    assert_null(strstr(out, "rackboot.image_size="));
    free(out);

    /* The profile's root device instead of auto; the second NIC's seed. */
    f->profile.root_device = (char[]){ "/dev/vda" };
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC1, &out, NULL), 0);
    assert_non_null(strstr(out, " rackboot.root_device=/dev/vda "));
    assert_non_null(strstr(out,
                           " rackboot.seed=http://[2001:db8:0:1::2]:8080/seed/i-0042/tok_3f9a2c71/"
                           "52-54-00-ab-cd-ef "));
    free(out);
}

/* What the ramdisk cannot do is refused, not rendered into a host that
 * fails later: no ramdisk served, no gateway, DHCPv6 addressing, no disk
 * image. */
static void test_script_image_refused(void **state)
{
    fixture *f = *state;
    use_image_profile(f);
    char *out = NULL;
    f->ctx.deploy_ramdisk = false;
    assert_int_equal(render_script(&f->ctx, &f->in, MAC0, &out, NULL), -ENOENT);
    f->ctx.deploy_ramdisk = true;

    f->in.has_gateway = false;
    f->ctx.has_gateway = false;
    assert_int_equal(render_script(&f->ctx, &f->in, MAC0, &out, NULL), -EINVAL);
    f->ctx.has_gateway = true; /* the rack's will do */
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), 0);
    assert_non_null(strstr(out, "::[2001:db8:0:1::ffff]:64:"));
    free(out);
    out = NULL;

    f->profile.ip = IP_MODE_DHCP6;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), -EINVAL);
    f->profile.ip = IP_MODE_STATIC;
    f->profile.n_images = 0;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), -EINVAL);
    assert_null(out);
}

/* A debian-installer profile (deb12-di): the preseed and its kernel
 * command line, with the documented example template. */
static void use_debian_installer_profile(fixture *f)
{
    static char key0[] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ops@example.com";
    /* Quotes of both kinds: base64 carries them past d-i's parser. */
    static char key1[] =
        "from=\"2001:db8::/32\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther it's-oncall";
    static char *keys[] = { key0, key1 };
    free(f->template);
    f->template = golden_read(RENDER_EXAMPLES_DIR, "debian12.preseed", NULL);
    f->images[0] = (model_image){ .name = MUT("vmlinuz"), .kind = IMAGE_KERNEL };
    f->images[1] = (model_image){ .name = MUT("initrd.img"), .kind = IMAGE_INITRD };
    f->profile = (model_profile){
        .name = MUT("deb12-di"),
        .kind = PROFILE_DEBIAN_INSTALLER,
        .images = f->images,
        .n_images = 2,
        .cmdline = MUT("console=ttyS0,115200n8"),
        .kickstart = f->template,
        .ip = IP_MODE_STATIC,
        .root_device = MUT("/dev/vda"),
        .ssh_keys = keys,
        .n_ssh_keys = 2,
    };
}

static void expect_preseed(fixture *f, const char *golden)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(render_preseed(&f->ctx, &f->in, &out, &len), 0);
    expect_golden(golden, out, len);
    free(out);
}

static void test_debian_installer(void **state)
{
    fixture *f = *state;
    use_debian_installer_profile(f);
    expect_script(f, MAC0, "script-debian-installer.ipxe");
    expect_cmdline(f, MAC0, "cmdline-debian-installer.txt");
    expect_preseed(f, "preseed-debian-installer.cfg");

    /* No dracut words; one DNS server goes unquoted; a hostname without a
     * domain takes the first search domain. */
    char *out = NULL;
    f->in.n_dns = 1;
    f->in.dns[0] = addr("2001:db8:0:1::53");
    f->in.hostname = MUT("web17");
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), 0);
    assert_null(strstr(out, "ip="));
    assert_null(strstr(out, "ifname="));
    assert_null(strstr(out, "inst."));
    assert_non_null(strstr(out, " netcfg/get_nameservers=2001:db8:0:1::53 "));
    assert_non_null(strstr(out, " hostname=web17 domain=rack1.example.com "));
    free(out);

    /* No keys: no authorized_keys line, the rest stays. */
    f->profile.n_ssh_keys = 0;
    assert_int_equal(render_preseed(&f->ctx, &f->in, &out, NULL), 0);
    assert_null(strstr(out, "authorized_keys"));
    assert_non_null(strstr(out, "/tmp/rackboot-progress installed\n"));
    free(out);
}

/* What d-i would stop at a prompt for is refused: no gateway (netcfg asks
 * for one); and a preseed is only for its kind. */
static void test_debian_installer_refused(void **state)
{
    fixture *f = *state;
    use_debian_installer_profile(f);
    char *out = NULL;
    f->in.has_gateway = false;
    f->ctx.has_gateway = false;
    assert_int_equal(render_cmdline(&f->ctx, &f->in, MAC0, &out, NULL), -EINVAL);
    assert_int_equal(render_preseed(&f->ctx, &f->in, &out, NULL), -EINVAL);
    f->ctx.has_gateway = true; /* the rack's will do */
    assert_int_equal(render_preseed(&f->ctx, &f->in, &out, NULL), 0);
    assert_non_null(strstr(out, "d-i netcfg/get_gateway string 2001:db8:0:1::ffff\n"));
    free(out);
    out = NULL;
    f->profile.kind = PROFILE_INSTALL;
    assert_int_equal(render_preseed(&f->ctx, &f->in, &out, NULL), -EINVAL);
    assert_null(out);
}

/* The documented kickstart (deploy/examples/el9.ks): its placeholders are
 * all known, the gateway lands in its network line (gotchas 3 and 4), and
 * rackboot's keep_ra %pre and %post follow it. */
static void test_example_kickstart(void **state)
{
    fixture *f = *state;
    size_t len = 0;
    char *tmpl = golden_read(RENDER_EXAMPLES_DIR, "el9.ks", &len);
    template_error terr;
    assert_int_equal(template_check(tmpl, len, &terr), 0);
    f->profile.kickstart = tmpl;
    char *out = NULL;
    assert_int_equal(render_kickstart(&f->ctx, &f->in, &out, NULL), 0);
    assert_non_null(strstr(out, " --ipv6=2001:db8:0:1::17/64 --ipv6gateway=2001:db8:0:1::1 "));
    const char *pre =
        strstr(out, "# rackboot keep_ra: NetworkManager ignores router advertisements");
    assert_non_null(pre);
    assert_non_null(strstr(pre, "ipv6.method auto"));
    assert_non_null(strstr(out, "# rackboot keep_ra: the same for the installed system"));
    free(out);
    free(tmpl);
}

static void expect_seed_path(const char *path, const char *id, const char *token,
                             const uint8_t mac[6], render_seed_doc doc)
{
    render_seed_path s;
    if (render_seed_path_parse(path, &s) != 0) {
        fail_msg("refused: %s", path);
    }
    assert_int_equal(s.id_len, strlen(id));
    assert_memory_equal(s.id, id, s.id_len);
    assert_int_equal(s.token_len, strlen(token));
    assert_memory_equal(s.token, token, s.token_len);
    assert_memory_equal(s.mac, mac, 6);
    assert_int_equal(s.doc, doc);
}

static void test_seed_paths(void **state)
{
    (void)state;
    expect_seed_path("/seed/i-0042/tok_3f9a2c71/52-54-00-12-34-56/meta-data", "i-0042",
                     "tok_3f9a2c71", MAC0, RENDER_SEED_META_DATA);
    expect_seed_path("seed/i-0042/t/52:54:00:AB:CD:EF/network-config", "i-0042", "t", MAC1,
                     RENDER_SEED_NETWORK_CONFIG);
    expect_seed_path("/seed/a.b~c/x_y/52%3a54%3a00%3a12%3a34%3a56/user-data", "a.b~c", "x_y", MAC0,
                     RENDER_SEED_USER_DATA);

    static const char *const bad[] = {
        "/seed/i-0042/tok/52-54-00-12-34-56/",
        "/seed/i-0042/tok/52-54-00-12-34-56",
        "/seed/i-0042/tok/52-54-00-12-34-56/vendor-data",
        "/seed/i-0042/tok/52-54-00-12-34-56/meta-data/",
        "/seed/i-0042/tok/52-54-00-12-34-56/meta-data?x=1",
        "/seed/i-0042/tok/52-54-00-12-34/meta-data",
        "/seed/i-0042/tok/52-54-00-12-34-5g/meta-data",
        "/seed/i-0042/tok/52-54:00-12-34-56/meta-data",
        "/seed/i-0042//52-54-00-12-34-56/meta-data",
        "/seed//tok/52-54-00-12-34-56/meta-data",
        "/seed/../tok/52-54-00-12-34-56/meta-data",
        "/seed/i-0042/../52-54-00-12-34-56/meta-data",
        "/seed/i 42/tok/52-54-00-12-34-56/meta-data",
        "/seed/i-0042/t%26k/52-54-00-12-34-56/meta-data",
        "/seed/i-0042/tok/52-54-00-12-34-56/../meta-data",
        "/seeds/i-0042/tok/52-54-00-12-34-56/meta-data",
        "/ks/i-0042/tok/52-54-00-12-34-56/meta-data",
        "/seed/i-0042/tok",
        "/seed/",
        "",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        render_seed_path s = { .id = NULL };
        if (render_seed_path_parse(bad[i], &s) != -EINVAL) {
            fail_msg("accepted: %s", bad[i]);
        }
        assert_null(s.id);
    }
    /* 128 characters is the longest id render_id_valid() takes. */
    char longest[200], too_long[200];
    snprintf(longest, sizeof(longest), "/seed/%0128d/t/52-54-00-12-34-56/meta-data", 0);
    snprintf(too_long, sizeof(too_long), "/seed/%0129d/t/52-54-00-12-34-56/meta-data", 0);
    render_seed_path s;
    assert_int_equal(render_seed_path_parse(longest, &s), 0);
    assert_int_equal(s.id_len, 128);
    assert_int_equal(render_seed_path_parse(too_long, &s), -EINVAL);

    /* The URL the command line carries, and the parser takes it back. */
    render_context c;
    struct in6_addr a = addr("2001:db8::2");
    assert_int_equal(render_context_init(&c, &a, 80), 0);
    intent in = { .install_id = MUT("i-0042"), .token = MUT("t0k") };
    char *url = NULL;
    assert_int_equal(render_seed_url(&c, &in, MAC1, &url), 0);
    assert_string_equal(url, "http://[2001:db8::2]/seed/i-0042/t0k/52-54-00-ab-cd-ef");
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", url + strlen("http://[2001:db8::2]"),
             render_seed_doc_name(RENDER_SEED_USER_DATA));
    expect_seed_path(path, "i-0042", "t0k", MAC1, RENDER_SEED_USER_DATA);
    free(url);
    url = NULL;
    in.token = MUT("a/b");
    assert_int_equal(render_seed_url(&c, &in, MAC1, &url), -EINVAL);
    assert_null(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_script_static_overlay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmdline_second_mac, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmdline_root_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_script_dhcp6_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmdline_gateway_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmdline_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmdline_extra_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_script_needs_kernel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kickstart_keep_ra, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kickstart_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kickstart_no_template, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_values_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kickstart_bad_template, setup, teardown),
        cmocka_unit_test(test_context_init),
        cmocka_unit_test(test_boot_path_mac),
        cmocka_unit_test(test_install_paths),
        cmocka_unit_test_setup_teardown(test_script_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_script_image_refused, setup, teardown),
        cmocka_unit_test(test_seed_paths),
        cmocka_unit_test_setup_teardown(test_debian_installer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debian_installer_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_example_kickstart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* controller/web/answer: the install page's answer file is what the agent
 * serves, byte for byte, but for the token, which appears nowhere in it:
 * not in URLs, not where the template says {{token}}, not inside the
 * preseed's base64-wrapped progress script. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/intent.h"
#include "model/profile.h"
#include "model_pb.h"
#include "render/kickstart.h"
#include "render/wire.h"
#include "util.h"
#include "web/answer.h"

#define TOKEN "Tq7xk2ZbW9pLmN4sVd8RfG3hJc6Ye1Ua"
#define ID    "0f3c9a7e-5b1d-4e2a-9c8b-7d6e5f4a3b2c"

static const char ks_template[] = "network --hostname={{hostname}} --nameserver={{dns}}\n"
                                  "# search {{search}}\n"
                                  "url --url={{agent_url}}/images/{{profile}}/\n"
                                  "%post\n"
                                  "curl -g '{{progress_url}}' -d phase=custom\n"
                                  "echo {{token}} > /root/token\n"
                                  "%end\n";

typedef struct fixture {
    Rackboot__V1__Profile profile;
    Rackboot__V1__Image img[2];
    Rackboot__V1__Image *imgs[2];
    Rackboot__V1__Intent intent;
    ProtobufCBinaryData mac;
    uint8_t mac_bytes[6];
    uint8_t addr[16], gw[16], dns[16];
    Rackboot__V1__RenderContext ctx;
    ProtobufCBinaryData ctx_dns;
    char *search[1];
} fixture;

static void fixture_init(fixture *f, Rackboot__V1__ProfileKind kind)
{
    memset(f, 0, sizeof(*f));
    static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x00, 0x0a, 0x02 };
    static const uint8_t addr[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x0a, [15] = 2 };
    static const uint8_t gw[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x0a, [15] = 1 };
    static const uint8_t dns[16] = { 0x20, 0x01, 0x0d, 0xb8, [14] = 0, [15] = 0x53 };
    memcpy(f->mac_bytes, mac, 6);
    memcpy(f->addr, addr, 16);
    memcpy(f->gw, gw, 16);
    memcpy(f->dns, dns, 16);

    rackboot__v1__profile__init(&f->profile);
    f->profile.name = RB_UNCONST("el9");
    f->profile.kind = kind;
    f->profile.kickstart_template = RB_UNCONST(ks_template);
    f->profile.kernel_args = RB_UNCONST("");
    for (size_t i = 0; i < 2; i++) {
        rackboot__v1__image__init(&f->img[i]);
        f->imgs[i] = &f->img[i];
    }
    f->img[0].name = RB_UNCONST("vmlinuz");
    f->img[0].kind = RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_KERNEL;
    f->img[0].url = RB_UNCONST("http://mirror.example/vmlinuz");
    f->img[1].name = RB_UNCONST("initrd.img");
    f->img[1].kind = RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_INITRD;
    f->img[1].url = RB_UNCONST("http://mirror.example/initrd.img");
    f->profile.n_images = 2;
    f->profile.images = f->imgs;

    rackboot__v1__intent__init(&f->intent);
    f->intent.install_id = RB_UNCONST(ID);
    f->intent.host = RB_UNCONST("web2");
    f->intent.hostname = RB_UNCONST("web2.example.net");
    f->intent.token = RB_UNCONST(TOKEN);
    f->intent.profile = RB_UNCONST("el9");
    f->intent.attempt = 1;
    f->mac = (ProtobufCBinaryData){ .len = 6, .data = f->mac_bytes };
    f->intent.n_macs = 1;
    f->intent.macs = &f->mac;
    f->intent.address = (ProtobufCBinaryData){ .len = 16, .data = f->addr };
    f->intent.prefix_length = 64;
    f->intent.gateway = (ProtobufCBinaryData){ .len = 16, .data = f->gw };

    rackboot__v1__render_context__init(&f->ctx);
    f->ctx.base_url = RB_UNCONST("http://[2001:db8:a::fe]:8080");
    f->ctx_dns = (ProtobufCBinaryData){ .len = 16, .data = f->dns };
    f->ctx.n_dns_servers = 1;
    f->ctx.dns_servers = &f->ctx_dns;
    f->search[0] = RB_UNCONST("rack-a.example.net");
    f->ctx.n_search = 1;
    f->ctx.search = f->search;
}

/* What the agent serves for the fixture: its conversions, its renderer,
 * the real token. */
static char *agent_kickstart(const fixture *f, size_t *ret_len)
{
    model_profile p;
    intent in;
    render_context rc;
    assert_int_equal(model_profile_from_pb(&f->profile, &p), 0);
    assert_int_equal(model_intent_from_pb(&f->intent, &in), 0);
    assert_int_equal(render_context_from_pb(&f->ctx, &rc), 0);
    in.profile = &p;
    char *text = NULL;
    assert_int_equal(render_kickstart(&rc, &in, &text, ret_len), 0);
    in.profile = NULL;
    intent_clear(&in);
    model_profile_clear(&p);
    return text;
}

static void test_kickstart_is_the_agents_but_the_token(void **state)
{
    fixture f;
    fixture_init(&f, RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_INSTALL);
    char *text = NULL;
    size_t len = 0;
    web_answer_kind kind = WEB_ANSWER_PRESEED;
    assert_int_equal(web_answer_render(&f.profile, &f.intent, &f.ctx, &text, &len, &kind), 0);
    assert_int_equal(kind, WEB_ANSWER_KICKSTART);
    assert_int_equal(strlen(text), len);
    assert_null(strstr(text, TOKEN));
    assert_non_null(strstr(text, "echo REDACTED > /root/token"));
    assert_non_null(strstr(text, "http://[2001:db8:a::fe]:8080/progress/" ID "?token=REDACTED"));
    /* The rack's defaults from the agent's render context. */
    assert_non_null(strstr(text, "--nameserver=2001:db8::53"));
    assert_non_null(strstr(text, "# search rack-a.example.net"));

    size_t served_len = 0;
    char *served = agent_kickstart(&f, &served_len);
    assert_non_null(strstr(served, TOKEN));
    char *expect = NULL;
    size_t expect_len = 0;
    assert_int_equal(web_answer_redact(served, served_len, TOKEN, &expect, &expect_len), 0);
    assert_int_equal(len, expect_len);
    assert_string_equal(text, expect);
    free(expect);
    free(served);
    free(text);
}

static void test_preseed_has_no_token(void **state)
{
    fixture f;
    fixture_init(&f, RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_DEBIAN_INSTALLER);
    f.profile.kickstart_template = RB_UNCONST("d-i mirror/http/hostname string deb.example\n");
    char *text = NULL;
    size_t len = 0;
    web_answer_kind kind = WEB_ANSWER_KICKSTART;
    assert_int_equal(web_answer_render(&f.profile, &f.intent, &f.ctx, &text, &len, &kind), 0);
    assert_int_equal(kind, WEB_ANSWER_PRESEED);
    assert_string_equal(web_answer_kind_name(kind), "preseed");
    assert_null(strstr(text, TOKEN));
    assert_non_null(strstr(text, "REDACTED"));
    assert_non_null(strstr(text, "deb.example"));
    free(text);
}

static void test_image_profile_has_none(void **state)
{
    fixture f;
    fixture_init(&f, RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_IMAGE);
    char *text = NULL;
    web_answer_kind kind;
    assert_int_equal(web_answer_render(&f.profile, &f.intent, &f.ctx, &text, NULL, &kind), -ENOENT);
    assert_null(text);
}

static void test_bad_template_refused(void **state)
{
    fixture f;
    fixture_init(&f, RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_INSTALL);
    f.profile.kickstart_template = RB_UNCONST("{{no_such_name}}\n");
    char *text = NULL;
    web_answer_kind kind;
    assert_int_equal(web_answer_render(&f.profile, &f.intent, &f.ctx, &text, NULL, &kind),
                     -EBADMSG);
    assert_null(text);
}

static void redacts(const char *in, const char *secret, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(web_answer_redact(in, strlen(in), secret, &out, &len), 0);
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
    free(out);
}

static void test_redact(void **state)
{
    redacts("", "tok", "");
    redacts("no secret here", "tok", "no secret here");
    redacts("tok", "tok", "REDACTED");
    redacts("toktok", "tok", "REDACTEDREDACTED");
    redacts("a?token=s3cr&b=s3cr\ns3cr", "s3cr", "a?token=REDACTED&b=REDACTED\nREDACTED");
    redacts("to", "tok", "to");
    redacts("keep it", "", "keep it");
    redacts("keep it", NULL, "keep it");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kickstart_is_the_agents_but_the_token),
        cmocka_unit_test(test_preseed_has_no_token),
        cmocka_unit_test(test_image_profile_has_none),
        cmocka_unit_test(test_bad_template_refused),
        cmocka_unit_test(test_redact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

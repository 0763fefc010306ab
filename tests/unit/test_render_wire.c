/* render/wire: the render context an agent reports (AgentStatus.render)
 * comes back, through the wire and its validator, as the context the agent
 * renders with, so the controller renders what the agent serves. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "rbproto.h"
#include "render/wire.h"

static render_context agent_context(void)
{
    render_context c;
    struct in6_addr adv;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8:a::fe", &adv), 1);
    assert_int_equal(render_context_init(&c, &adv, 8080), 0);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::53", &c.dns[0]), 1);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::54", &c.dns[1]), 1);
    c.n_dns = 2;
    c.search[0] = "rack-a.example.net";
    c.search[1] = "example.net";
    c.n_search = 2;
    c.has_gateway = true;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8:a::1", &c.gateway), 1);
    c.deploy_ramdisk = true;
    return c;
}

static void test_round_trip(void **state)
{
    render_context c = agent_context();
    render_context_pb pb;
    render_context_to_pb(&c, &pb);
    assert_int_equal(rbproto_validate_render_context(&pb.m), 0);

    size_t n = protobuf_c_message_get_packed_size(&pb.m.base);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    protobuf_c_message_pack(&pb.m.base, buf);
    Rackboot__V1__RenderContext *m = rackboot__v1__render_context__unpack(NULL, n, buf);
    free(buf);
    assert_non_null(m);
    assert_int_equal(rbproto_validate_render_context(m), 0);

    render_context back;
    assert_int_equal(render_context_from_pb(m, &back), 0);
    assert_string_equal(back.base_url, "http://[2001:db8:a::fe]:8080");
    assert_string_equal(back.base_url, c.base_url);
    assert_int_equal(back.n_dns, 2);
    assert_memory_equal(back.dns, c.dns, 2 * sizeof(c.dns[0]));
    assert_int_equal(back.n_search, 2);
    assert_string_equal(back.search[0], "rack-a.example.net");
    assert_string_equal(back.search[1], "example.net");
    assert_true(back.has_gateway);
    assert_memory_equal(&back.gateway, &c.gateway, sizeof(c.gateway));
    assert_true(back.deploy_ramdisk);
    rackboot__v1__render_context__free_unpacked(m, NULL);
}

/* An agent on port 80 without defaults: the bare minimum. */
static void test_minimal(void **state)
{
    render_context c;
    struct in6_addr adv;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::2", &adv), 1);
    assert_int_equal(render_context_init(&c, &adv, 80), 0);
    render_context_pb pb;
    render_context_to_pb(&c, &pb);
    assert_int_equal(rbproto_validate_render_context(&pb.m), 0);
    assert_int_equal(pb.m.gateway.len, 0);
    render_context back;
    assert_int_equal(render_context_from_pb(&pb.m, &back), 0);
    assert_string_equal(back.base_url, "http://[2001:db8::2]");
    assert_int_equal(back.n_dns, 0);
    assert_int_equal(back.n_search, 0);
    assert_false(back.has_gateway);
    assert_false(back.deploy_ramdisk);
}

static void test_refused(void **state)
{
    render_context c = agent_context();
    render_context_pb pb;
    render_context_to_pb(&c, &pb);
    render_context back;
    pb.m.gateway.len = 4;
    assert_int_equal(render_context_from_pb(&pb.m, &back), -EINVAL);
    pb.m.gateway.len = 16;
    pb.m.n_dns_servers = INTENT_MAX_DNS + 1;
    assert_int_equal(render_context_from_pb(&pb.m, &back), -EINVAL);
    pb.m.n_dns_servers = 2;
    pb.m.base_url = (char[]){ "" };
    assert_int_equal(render_context_from_pb(&pb.m, &back), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Fuzzes the path a controller's answer takes through the agent to what a
 * host boots: the bytes are an AgentReply as the uplink receives it (and as
 * STATE_DIR/intents.pb holds it), unpacked with the budgeted allocator
 * (rbproto_unpack_agent_reply), turned into an intent set
 * (uplink_intents_from_sync), and every intent rendered for each of its MACs
 * as the boot routes render it: the iPXE script, the kernel command line, the
 * kickstart and the two install URLs, under two rack contexts (port 8080 with
 * the rack's defaults, port 80 without).
 *
 * A render may refuse (the agent answers 500), but what it returns keeps its
 * shape: a script is exactly its command lines, so no value can add one; a
 * command line is one line of printable bytes that fits the kernel's buffer;
 * lengths are true; and the URLs lead back to their intent through the path
 * parsers the HTTP routes use. A MAC not the intent's is refused. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbproto.h"
#include "render/cmdline.h"
#include "render/context.h"
#include "render/kickstart.h"
#include "render/script.h"
#include "uplink/uplink.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Renders of one input stay bounded however many intents a sync holds. */
#define MAX_RENDERED 64

static void expect_refusal(int r, const char *out)
{
    RB_ASSERT(r == -EINVAL || r == -E2BIG || r == -ENOENT || r == -EBADMSG || r == -ENOMEM);
    RB_ASSERT(out == NULL);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "#!ipxe", echo, kernel, the profile's initrd and the overlay when it has
 * them, boot: nothing else, each one line of printable bytes. */
static void check_script(const render_context *ctx, const intent *in, const char *s, size_t len)
{
    RB_ASSERT(strlen(s) == len && len > 0 && s[len - 1] == '\n');
    const model_profile *p = in->profile;
    bool initrd = false;
    for (size_t i = 0; i < p->n_images; i++) {
        initrd |= p->images[i].kind == IMAGE_INITRD;
    }
    char kernel[RENDER_BASE_URL_MAX + 16];
    snprintf(kernel, sizeof(kernel), "kernel %s/images/", ctx->base_url);
    const char *want[6];
    size_t n_want = 0;
    want[n_want++] = "#!ipxe\n";
    want[n_want++] = "echo rackboot: install ";
    want[n_want++] = kernel;
    if (initrd) {
        want[n_want++] = "initrd --name initrd.img ";
    }
    if (p->overlay) {
        want[n_want++] = "initrd --name overlay.img ";
    }
    want[n_want++] = "boot\n";
    size_t n = 0;
    for (const char *l = s; *l; n++) {
        const char *nl = strchr(l, '\n');
        RB_ASSERT(nl != NULL && n < n_want && starts_with(l, want[n]));
        for (const char *c = l; c < nl; c++) {
            RB_ASSERT((unsigned char)*c >= 0x20 && *c != 0x7f);
        }
        l = nl + 1;
    }
    RB_ASSERT(n == n_want);
}

static void check_cmdline(const char *s, size_t len)
{
    RB_ASSERT(strlen(s) == len && len < RENDER_CMDLINE_MAX);
    for (size_t i = 0; i < len; i++) {
        RB_ASSERT((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
    }
}

/* BASE/DIR/ID?token=TOKEN, whose path the route's parser maps back to `in`. */
static void check_url(const render_context *ctx, const intent_set *set, const intent *in,
                      const char *url, int (*parse)(const char *, const char **, size_t *))
{
    size_t base = strlen(ctx->base_url);
    RB_ASSERT(strncmp(url, ctx->base_url, base) == 0);
    const char *q = strchr(url + base, '?');
    RB_ASSERT(q != NULL && starts_with(q, "?token=") && streq(q + 7, in->token));
    char *path = memdup_str(url + base, (size_t)(q - (url + base)));
    RB_ASSERT(path != NULL);
    const char *id = NULL;
    size_t id_len = 0;
    RB_ASSERT(parse(path, &id, &id_len) == 0);
    RB_ASSERT(id_len == strlen(in->install_id) && memcmp(id, in->install_id, id_len) == 0);
    RB_ASSERT(intent_set_find_install(set, in->install_id) == in);
    free(path);
}

static void render_all(const render_context *ctx, const intent_set *set, const intent *in)
{
    char *out = NULL;
    size_t len = 0;
    int r;
    for (size_t m = 0; m < in->n_macs; m++) {
        RB_ASSERT(intent_set_find_mac(set, in->macs[m]) == in);
        r = render_script(ctx, in, in->macs[m], &out, &len);
        if (r == 0) {
            check_script(ctx, in, out, len);
        } else {
            expect_refusal(r, out);
        }
        free(out);
        out = NULL;
        r = render_cmdline(ctx, in, in->macs[m], &out, &len);
        if (r == 0) {
            check_cmdline(out, len);
        } else {
            expect_refusal(r, out);
        }
        free(out);
        out = NULL;
    }
    /* A MAC of no NIC of this host. */
    uint8_t other[6];
    memcpy(other, in->macs[0], 6);
    do {
        other[5]++;
    } while (intent_set_find_mac(set, other) == in);
    RB_ASSERT(render_script(ctx, in, other, &out, &len) < 0 && out == NULL);
    RB_ASSERT(render_cmdline(ctx, in, other, &out, &len) < 0 && out == NULL);

    r = render_kickstart(ctx, in, &out, &len);
    if (r == 0) {
        RB_ASSERT(strlen(out) == len);
    } else {
        expect_refusal(r, out);
    }
    free(out);
    out = NULL;
    if (render_kickstart_url(ctx, in, &out) == 0) {
        check_url(ctx, set, in, out, render_ks_path_parse);
    }
    free(out);
    out = NULL;
    if (render_progress_url(ctx, in, &out) == 0) {
        check_url(ctx, set, in, out, render_progress_path_parse);
    }
    free(out);
}

static void contexts_init(render_context ctx[2])
{
    struct in6_addr agent;
    RB_ASSERT(inet_pton(AF_INET6, "2001:db8:0:1::2", &agent) == 1);
    /* The render tests' rack: defaults for intents that carry none. */
    RB_ASSERT(render_context_init(&ctx[0], &agent, 8080) == 0);
    RB_ASSERT(inet_pton(AF_INET6, "2001:db8:0:1::53", &ctx[0].dns[0]) == 1);
    RB_ASSERT(inet_pton(AF_INET6, "2001:db8:0:2::53", &ctx[0].dns[1]) == 1);
    ctx[0].n_dns = 2;
    ctx[0].search[0] = "rack1.example.com";
    ctx[0].search[1] = "example.com";
    ctx[0].n_search = 2;
    ctx[0].has_gateway = true;
    RB_ASSERT(inet_pton(AF_INET6, "2001:db8:0:1::ffff", &ctx[0].gateway) == 1);
    /* None, on port 80. */
    RB_ASSERT(render_context_init(&ctx[1], &agent, 80) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static render_context ctx[2];
    static bool ready;
    if (!ready) {
        contexts_init(ctx);
        ready = true;
    }
    Rackboot__V1__AgentReply *env = NULL;
    if (rbproto_unpack_agent_reply(data, size, RBPROTO_MAX_MESSAGE, &env) < 0) {
        return 0;
    }
    if (env->body_case != RACKBOOT__V1__AGENT_REPLY__BODY_SYNC) {
        rbproto_agent_reply_free(env);
        return 0;
    }
    intent_set *set = NULL;
    int r = uplink_intents_from_sync(env->sync, &set);
    if (r < 0) {
        RB_ASSERT(r == -EINVAL || r == -ENOMEM);
        rbproto_agent_reply_free(env);
        return 0;
    }
    RB_ASSERT(intent_set_generation(set) == env->sync->generation);
    RB_ASSERT(intent_set_size(set) == env->sync->n_intents);
    RB_ASSERT(intent_set_n_profiles(set) == env->sync->n_profiles);
    /* The set owns copies: the message may go before the renders. */
    rbproto_agent_reply_free(env);
    for (size_t i = 0; i < intent_set_size(set) && i < MAX_RENDERED; i++) {
        const intent *in = intent_set_at(set, i);
        RB_ASSERT(in->n_macs > 0 && in->profile != NULL);
        render_all(&ctx[0], set, in);
        render_all(&ctx[1], set, in);
    }
    intent_set_free(set);
    return 0;
}

#include "render/wire.h"

#include <errno.h>
#include <string.h>

#include "util.h"

void render_context_to_pb(const render_context *ctx, render_context_pb *out)
{
    *out = (render_context_pb){ 0 };
    rackboot__v1__render_context__init(&out->m);
    out->m.base_url = RB_UNCONST(ctx->base_url);
    for (size_t i = 0; i < ctx->n_dns && i < INTENT_MAX_DNS; i++) {
        out->dns[i] = (ProtobufCBinaryData){ .len = 16, .data = RB_UNCONST(ctx->dns[i].s6_addr) };
        out->m.n_dns_servers = i + 1;
    }
    out->m.dns_servers = out->dns;
    for (size_t i = 0; i < ctx->n_search && i < INTENT_MAX_SEARCH; i++) {
        out->search[i] = RB_UNCONST(ctx->search[i]);
        out->m.n_search = i + 1;
    }
    out->m.search = out->search;
    if (ctx->has_gateway) {
        out->m.gateway =
            (ProtobufCBinaryData){ .len = 16, .data = RB_UNCONST(ctx->gateway.s6_addr) };
    }
    out->m.deploy_ramdisk = ctx->deploy_ramdisk;
}

int render_context_from_pb(const Rackboot__V1__RenderContext *m, render_context *ret)
{
    render_context c = { 0 };
    size_t n = m->base_url ? strlen(m->base_url) : 0;
    if (n == 0 || n >= sizeof(c.base_url) || m->n_dns_servers > INTENT_MAX_DNS ||
        m->n_search > INTENT_MAX_SEARCH || (m->gateway.len != 0 && m->gateway.len != 16)) {
        return -EINVAL;
    }
    memcpy(c.base_url, m->base_url, n + 1);
    for (size_t i = 0; i < m->n_dns_servers; i++) {
        if (m->dns_servers[i].len != 16) {
            return -EINVAL;
        }
        memcpy(&c.dns[i], m->dns_servers[i].data, 16);
    }
    c.n_dns = m->n_dns_servers;
    for (size_t i = 0; i < m->n_search; i++) {
        c.search[i] = m->search[i];
    }
    c.n_search = m->n_search;
    if (m->gateway.len == 16) {
        c.has_gateway = true;
        memcpy(&c.gateway, m->gateway.data, 16);
    }
    c.deploy_ramdisk = m->deploy_ramdisk;
    *ret = c;
    return 0;
}

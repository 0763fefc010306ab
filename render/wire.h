/* render/wire: the render_context (context.h) on the wire, so that an agent
 * can tell its controller what it renders with (AgentStatus.render in
 * proto/rackboot.proto) and the controller can render the same files. */
#pragma once

#include "rackboot.pb-c.h"
#include "render/context.h"

/* A message that points into a render_context: valid while both live. */
typedef struct render_context_pb {
    Rackboot__V1__RenderContext m;
    ProtobufCBinaryData dns[INTENT_MAX_DNS];
    char *search[INTENT_MAX_SEARCH];
} render_context_pb;

/* Fills *out from `ctx`; out->m is the message. */
void render_context_to_pb(const render_context *ctx, render_context_pb *out);

/* *ret from a message rbproto_validate_render_context() accepted. The
 * search names are borrowed from `m`, which must outlive *ret. -EINVAL when
 * a count, an address or the base URL does not fit (nothing written). */
int render_context_from_pb(const Rackboot__V1__RenderContext *m, render_context *ret);

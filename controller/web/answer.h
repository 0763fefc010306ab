/* web/answer: an install's answer file (the kickstart, or the preseed of a
 * debian-installer profile) as its host fetches it from the rack's agent at
 * /ks/<install-id>?token=..., for the web view's install page, with the
 * install's token redacted. Pure: no I/O.
 *
 * The controller renders it with the agent's own renderer (render/, shared)
 * from the same messages the agent renders from: the Intent and Profile the
 * rack's sync carries (wire.c) and the RenderContext the agent reported
 * (AgentStatus), each converted as the agent converts them (model_pb.h,
 * render/wire.h). So the text is the agent's, byte for byte, except for the
 * token: the renderer is given WEB_ANSWER_REDACTED in its place, so the
 * secret never enters the output however a renderer writes it (URLs,
 * {{token}}, the base64-wrapped progress script of a preseed), and the
 * output is then searched for the real token as well. */
#pragma once

#include <stddef.h>

#include "rackboot.pb-c.h"

#define WEB_ANSWER_REDACTED "REDACTED"

typedef enum web_answer_kind {
    WEB_ANSWER_KICKSTART = 0,
    WEB_ANSWER_PRESEED,
} web_answer_kind;

/* "kickstart" or "preseed". */
const char *web_answer_kind_name(web_answer_kind k);

/* The redacted answer file of the intent `im` (whose profile is `profile`) for an
 * agent rendering with `ctx`, as a new NUL-terminated string (free() it).
 * -ENOENT when the profile's kind has no answer file (an image profile:
 * its host gets a NoCloud seed); -EINVAL for values the renderer refuses;
 * -EBADMSG for a template it cannot expand; -ENOMEM. The messages must
 * have passed their validators. */
int web_answer_render(const Rackboot__V1__Profile *profile, const Rackboot__V1__Intent *im,
                      const Rackboot__V1__RenderContext *ctx, char **ret, size_t *ret_len,
                      web_answer_kind *ret_kind);

/* `text` with every occurrence of `secret` replaced by WEB_ANSWER_REDACTED,
 * as a new string (free() it). An empty secret replaces nothing. -ENOMEM. */
int web_answer_redact(const char *text, size_t len, const char *secret, char **ret,
                      size_t *ret_len);

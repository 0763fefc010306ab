#include "web/answer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/intent.h"
#include "model/profile.h"
#include "model_pb.h"
#include "render/kickstart.h"
#include "render/preseed.h"
#include "render/wire.h"
#include "util.h"

const char *web_answer_kind_name(web_answer_kind k)
{
    return k == WEB_ANSWER_PRESEED ? "preseed" : "kickstart";
}

int web_answer_redact(const char *text, size_t len, const char *secret, char **ret, size_t *ret_len)
{
    size_t n = secret ? strlen(secret) : 0;
    size_t hits = 0;
    if (n > 0) {
        for (const char *p = text; (p = memmem(p, len - (size_t)(p - text), secret, n)); p += n) {
            hits++;
        }
    }
    const size_t rn = strlen(WEB_ANSWER_REDACTED);
    /* No overflow: hits * n <= len, and rn is small. */
    size_t out_len = len - hits * n + hits * rn;
    char *out = malloc(out_len + 1);
    if (!out) {
        return -ENOMEM;
    }
    char *o = out;
    const char *p = text;
    const char *end = text + len;
    while (hits > 0) {
        const char *q = memmem(p, (size_t)(end - p), secret, n);
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, WEB_ANSWER_REDACTED, rn);
        o += rn;
        p = q + n;
        hits--;
    }
    memcpy(o, p, (size_t)(end - p));
    o += end - p;
    *o = '\0';
    *ret = out;
    if (ret_len) {
        *ret_len = out_len;
    }
    return 0;
}

int web_answer_render(const Rackboot__V1__Profile *profile, const Rackboot__V1__Intent *im,
                      const Rackboot__V1__RenderContext *ctx, char **ret, size_t *ret_len,
                      web_answer_kind *ret_kind)
{
    model_profile p = { 0 };
    intent in = { 0 };
    render_context rc;
    char *text = NULL, *token = NULL;
    size_t len = 0;
    web_answer_kind kind = WEB_ANSWER_KICKSTART;
    int r = render_context_from_pb(ctx, &rc);
    if (r < 0) {
        return r;
    }
    r = model_profile_from_pb(profile, &p);
    if (r < 0) {
        return r == -ENOMEM ? r : -EINVAL;
    }
    if (p.kind == PROFILE_IMAGE) {
        r = -ENOENT;
        goto out;
    }
    r = model_intent_from_pb(im, &in);
    if (r < 0) {
        goto out;
    }
    in.profile = &p;
    /* The renderer never sees the secret (see answer.h). */
    token = in.token;
    in.token = strdup(WEB_ANSWER_REDACTED);
    if (!in.token) {
        in.token = token;
        token = NULL;
        r = -ENOMEM;
        goto out;
    }
    if (p.kind == PROFILE_DEBIAN_INSTALLER) {
        kind = WEB_ANSWER_PRESEED;
    }
    r = kind == WEB_ANSWER_PRESEED ? render_preseed(&rc, &in, &text, &len)
                                   : render_kickstart(&rc, &in, &text, &len);
    if (r >= 0) {
        /* And should a renderer ever reach the token another way. */
        char *clean = NULL;
        r = web_answer_redact(text, len, token, &clean, &len);
        if (r >= 0) {
            *ret = clean;
            if (ret_len) {
                *ret_len = len;
            }
            *ret_kind = kind;
        }
    }
out:
    free(token);
    free(text);
    in.profile = NULL;
    intent_clear(&in);
    model_profile_clear(&p);
    return r;
}

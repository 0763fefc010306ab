/* web/actions: install and cancel from the web view's pages.
 *
 *   POST /api/install  {"hosts": ["web1", ...], "profile": "el9",
 *                       "replace": false}
 *   POST /api/cancel   {"hosts": ["web1", ...]}
 *
 * The body becomes the same ApiRequest the CLI sends, run by the API
 * (api_submit_as()) as the session's identity with " (web)" after it
 * ("operator:alice (web)" in the audit log), with the session's role: a
 * viewer's attempt is refused (403) and audited like one on the API's
 * sockets. The answer: {"ok": bool, "status": "ok"|..., "message": "...",
 * "rows": [{"host", "skipped" ("none" when done), "message"}...]} with 200 when ok, 409 when
 * some hosts were passed over (each row says why), else 400 / 403 / 404 /
 * 500 / 503 by the API's status. The caller checks
 * the session and that the request comes from our own pages. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "http/server.h"
#include "web/session.h"

#define WEB_ACTION_MAX_HOSTS 10000u /* as many as one page can select */

/* The body of an install (`install`) or cancel as a packed ApiRequest
 * (*ret malloc'd). -EINVAL with *ret_why for a body that is not the JSON
 * above (unknown keys included), -ENOMEM. Pure. */
int web_action_parse(const uint8_t *body, size_t len, bool install, uint8_t **ret, size_t *ret_len,
                     const char **ret_why);

/* Runs the request of `req` (POST /api/install or /api/cancel) for `id`
 * through `a`; answers `req` now or when the API has. */
void web_action_run(api *a, http_request *req, const web_identity *id, bool install);

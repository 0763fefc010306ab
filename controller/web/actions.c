/* web/actions: install and cancel from the pages (see actions.h). */
#include "web/actions.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rackboot.pb-c.h"
#include "rbproto.h"
#include "util.h"

#define JSON_TYPE "application/json"

int web_action_parse(const uint8_t *body, size_t len, bool install, uint8_t **ret, size_t *ret_len,
                     const char **ret_why)
{
    json_error_t err;
    json_t *root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &err);
    json_t *hosts = root ? json_object_get(root, "hosts") : NULL;
    json_t *profile = root ? json_object_get(root, "profile") : NULL;
    json_t *replace = root ? json_object_get(root, "replace") : NULL;
    const char *why = NULL;
    size_t known = (hosts ? 1 : 0) + (profile ? 1 : 0) + (replace ? 1 : 0);
    if (!json_is_object(root)) {
        why = "expected a JSON object";
    } else if (known != json_object_size(root) || (!install && (profile || replace))) {
        why = install ? "keys: hosts, profile, replace" : "keys: hosts";
    } else if (!json_is_array(hosts) || json_array_size(hosts) == 0 ||
               json_array_size(hosts) > WEB_ACTION_MAX_HOSTS) {
        why = "hosts: expected 1 to 10000 host names";
    } else if (install && !json_is_string(profile)) {
        why = "profile: expected a profile name";
    } else if (replace && !json_is_boolean(replace)) {
        why = "replace: expected true or false";
    }
    size_t n = why ? 0 : json_array_size(hosts);
    char **names = why ? NULL : calloc(n, sizeof(*names));
    for (size_t i = 0; !why && i < n; i++) {
        json_t *h = json_array_get(hosts, i);
        if (!json_is_string(h)) {
            why = "hosts: expected host names";
            break;
        }
        names[i] = (char *)(uintptr_t)json_string_value(h);
    }
    if (!why && !names) {
        json_decref(root);
        return -ENOMEM;
    }
    if (why) {
        free(names);
        json_decref(root);
        *ret_why = why;
        return -EINVAL;
    }
    /* Built on the stack: only packed, never freed piece by piece. The API
     * unpacks and validates it as it does the CLI's (names, counts). */
    Rackboot__V1__Selector sel = RACKBOOT__V1__SELECTOR__INIT;
    sel.n_hosts = n;
    sel.hosts = names;
    Rackboot__V1__InstallRequest ins = RACKBOOT__V1__INSTALL_REQUEST__INIT;
    Rackboot__V1__CancelRequest can = RACKBOOT__V1__CANCEL_REQUEST__INIT;
    Rackboot__V1__ApiRequest m = RACKBOOT__V1__API_REQUEST__INIT;
    if (install) {
        ins.target = &sel;
        ins.profile = (char *)(uintptr_t)json_string_value(profile);
        ins.replace_active = replace && json_is_true(replace);
        m.body_case = RACKBOOT__V1__API_REQUEST__BODY_INSTALL;
        m.install = &ins;
    } else {
        can.target = &sel;
        m.body_case = RACKBOOT__V1__API_REQUEST__BODY_CANCEL;
        m.cancel = &can;
    }
    size_t size = rackboot__v1__api_request__get_packed_size(&m);
    uint8_t *buf = malloc(size ? size : 1);
    if (buf) {
        rackboot__v1__api_request__pack(&m, buf);
    }
    free(names);
    json_decref(root);
    if (!buf) {
        return -ENOMEM;
    }
    *ret = buf;
    *ret_len = size;
    return 0;
}

/* A write waiting for the API. */
typedef struct action {
    http_request *req; /* NULL once the request is gone */
} action;

static void action_cancel(void *userdata)
{
    action *ac = userdata;
    ac->req = NULL;
}

static unsigned http_status_of(Rackboot__V1__Status s)
{
    switch (s) {
    case RACKBOOT__V1__STATUS__STATUS_OK:
        return 200;
    case RACKBOOT__V1__STATUS__STATUS_INVALID:
        return 400;
    case RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED:
    case RACKBOOT__V1__STATUS__STATUS_PERMISSION_DENIED:
        return 403;
    case RACKBOOT__V1__STATUS__STATUS_NOT_FOUND:
        return 404;
    case RACKBOOT__V1__STATUS__STATUS_CONFLICT:
        return 409;
    case RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE:
        return 503;
    default:
        return 500;
    }
}

static void action_done(void *userdata, const Rackboot__V1__ApiReply *rep)
{
    action *ac = userdata;
    http_request *req = ac->req;
    free(ac);
    if (!req) {
        return;
    }
    http_request_on_cancel(req, NULL, NULL);
    if (!rep) {
        http_reply_error(req, 503, "shutting down");
        return;
    }
    json_t *rows = json_array();
    const Rackboot__V1__StatusList *l =
        rep->body_case == RACKBOOT__V1__API_REPLY__BODY_STATUSES ? rep->statuses : NULL;
    for (size_t i = 0; rows && l && i < l->n_rows; i++) {
        const Rackboot__V1__StatusRow *r = l->rows[i];
        const char *skipped = rbproto_skip_to_string(r->skipped);
        json_array_append_new(rows, json_pack("{s:s, s:s, s:s}", "host", r->host ? r->host : "",
                                              "skipped", skipped ? skipped : "other", "message",
                                              r->message ? r->message : ""));
    }
    const char *status = rbproto_status_to_string(rep->status);
    json_t *o =
        json_pack("{s:b, s:s, s:s, s:o}", "ok", rep->status == RACKBOOT__V1__STATUS__STATUS_OK,
                  "status", status ? status : "unknown", "message",
                  rep->message ? rep->message : "", "rows", rows ? rows : json_array());
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    /* FAILED with rows: some hosts were passed over (an active install, no
     * such host), each row says why: a conflict with the fleet's state,
     * not a server error. */
    unsigned code =
        rep->status == RACKBOOT__V1__STATUS__STATUS_FAILED && l ? 409 : http_status_of(rep->status);
    http_reply_owned(req, code, JSON_TYPE, text, strlen(text));
}

void web_action_run(api *a, http_request *req, const web_identity *id, bool install)
{
    size_t len;
    const uint8_t *body = http_request_body(req, &len);
    if (!body) {
        body = (const uint8_t *)""; /* no body: refused below as not an object */
    }
    uint8_t *packed = NULL;
    size_t packed_len = 0;
    const char *why = NULL;
    int r = web_action_parse(body, len, install, &packed, &packed_len, &why);
    if (r < 0) {
        http_reply_error(req, r == -EINVAL ? 400 : 500, r == -EINVAL ? why : "out of memory");
        return;
    }
    if (!a) {
        free(packed);
        http_reply_error(req, 503, "shutting down");
        return;
    }
    action *ac = calloc(1, sizeof(*ac));
    if (!ac) {
        free(packed);
        http_reply_error(req, 500, "out of memory");
        return;
    }
    /* Set before the submit: `done` may run inside it (out of memory). */
    ac->req = req;
    http_request_on_cancel(req, action_cancel, ac);
    char who[WEB_WHO_MAX + 8];
    snprintf(who, sizeof(who), "%s (web)", id->who);
    r = api_submit_as(a, who, id->role == WEB_ROLE_OPERATOR, packed, packed_len, action_done, ac);
    free(packed);
    if (r < 0) {
        /* Nothing ran and `done` will not come. */
        http_request_on_cancel(req, NULL, NULL);
        free(ac);
        http_reply_error(req, r == -ENOMEM ? 500 : 400,
                         r == -ENOMEM ? "out of memory" : "not a valid request");
    }
}

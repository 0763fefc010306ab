#include "transport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rbproto.h"
#include "session.h"
#include "util.h"

int cli_transport_exit_code(int err)
{
    switch (err) {
    case -ECONNREFUSED:
    case -ETIMEDOUT:
    case -ENOENT:
    case -EHOSTUNREACH:
    case -ENETUNREACH:
    case -ECONNRESET:
    case -ECONNABORTED:
        return CLI_EXIT_UNREACHABLE;
    case -EINVAL:
        return CLI_EXIT_USAGE;
    default:
        return CLI_EXIT_FAILED;
    }
}

/* One line: what was tried, where that came from, why it failed, and what
 * to change. */
static void say_unreachable(cli *c, const char *why)
{
    const char *from = c->controller_from ? c->controller_from : "the default";
    bool local = strncmp(c->controller, "ipc://", 6) == 0;
    cli_error(c, "controller %s (%s) unreachable: %s; %s", c->controller, from, why,
              local ? "is rackboot-controller running here? For another controller: "
                      "--controller, RACKBOOT_CONTROLLER or --context"
                    : "check the address and that the controller listens there "
                      "(operators_listen), or name another with --controller, "
                      "RACKBOOT_CONTROLLER or --context");
}

static int open_session(cli *c)
{
    rb_session_config cfg = {
        .url = c->controller,
        .kind = RB_SESSION_API,
        .ca = c->ca,
        .cert = c->cert,
        .key = c->key,
        .crl = c->crl,
        .server_name = c->server_name,
        .connect_timeout_ms = c->timeout_ms < 5000 ? c->timeout_ms : 5000,
        .reconnect = false,
    };
    rb_session *s = NULL;
    char *why = NULL;
    int r = rb_session_open(&cfg, &s, &why);
    if (r < 0) {
        int code = cli_transport_exit_code(r);
        if (code == CLI_EXIT_UNREACHABLE) {
            say_unreachable(c, errstr(r)); /* `why` would name the URL again */
        } else {
            cli_error(c, "cannot talk to controller %s: %s", c->controller, why ? why : errstr(r));
        }
        free(why);
        return code;
    }
    free(why);
    c->transport_state = s;
    return 0;
}

int cli_transport_session(cli *c, const Rackboot__V1__ApiRequest *req, uint32_t timeout_ms,
                          Rackboot__V1__ApiReply **ret)
{
    if (!c->transport_state) {
        int code = open_session(c);
        if (code != 0) {
            return code;
        }
    }
    int r = rb_session_call_api(c->transport_state, req, timeout_ms, ret);
    if (r == -EINVAL) {
        /* The request failed rbproto's validation on the way out: a bug of
         * ours (the commands check their input first), not the user's. */
        cli_error(c, "internal error: the request is not valid for the wire");
        return CLI_EXIT_FAILED;
    }
    if (r < 0) {
        int code = cli_transport_exit_code(r);
        if (r == -ETIMEDOUT) {
            cli_error(c, "controller %s did not answer within %u ms", c->controller, timeout_ms);
            if (req->body_case == RACKBOOT__V1__API_REQUEST__BODY_INSTALL ||
                req->body_case == RACKBOOT__V1__API_REQUEST__BODY_CANCEL) {
                cli_error(c, "it may still be working through the hosts: see 'rackboot audit' "
                             "and 'rackboot status' (or wait longer with --timeout)");
            }
        } else if (code == CLI_EXIT_UNREACHABLE) {
            say_unreachable(c, errstr(r));
        } else if (r == -EBADMSG) {
            cli_error(c, "controller %s sent a reply that fails validation", c->controller);
        } else {
            cli_error(c, "request to controller %s failed: %s", c->controller, errstr(r));
        }
        return code;
    }
    return 0;
}

void cli_transport_close(cli *c)
{
    if (c->transport == cli_transport_session && c->transport_state) {
        c->transport_state = rb_session_close(c->transport_state);
    }
}

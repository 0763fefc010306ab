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

/* The one line for one unreachable controller: what was tried, where that
 * came from, why it failed, and what to change. */
static void say_unreachable(cli *c, const char *url, const char *why)
{
    const char *from = c->controller_from ? c->controller_from : "the default";
    bool local = strncmp(url, "ipc://", 6) == 0;
    cli_error(c, "controller %s (%s) unreachable: %s; %s", url, from, why,
              local ? "is rackboot-controller running here? For another controller: "
                      "--controller, RACKBOOT_CONTROLLER or --context"
                    : "check the address and that the controller listens there "
                      "(operators_listen), or name another with --controller, "
                      "RACKBOOT_CONTROLLER or --context");
}

/* Worth trying the next controller after: nobody answered there, or TLS
 * failed with that one (its certificate or name). A controller that
 * answered and refused us (our identity, a bad URL) would refuse us
 * anywhere: every controller trusts the same fleet CA. */
static bool try_next_after(int r)
{
    return cli_transport_exit_code(r) == CLI_EXIT_UNREACHABLE || r == -EPROTO;
}

static int open_one(cli *c, const char *url, rb_session **ret, char **ret_why)
{
    rb_session_config cfg = {
        .url = url,
        .kind = RB_SESSION_API,
        .ca = c->ca,
        .cert = c->cert,
        .key = c->key,
        .crl = c->crl,
        /* NULL: each URL's own host, so every controller is checked
         * against the name it is dialled by. */
        .server_name = c->server_name,
        .connect_timeout_ms = c->timeout_ms < 5000 ? c->timeout_ms : 5000,
        .reconnect = false,
    };
    return rb_session_open(&cfg, ret, ret_why);
}

/* One controller: exactly the messages of a CLI that knew no other. */
static int open_single(cli *c, const char *url, rb_session **ret)
{
    char *why = NULL;
    int r = open_one(c, url, ret, &why);
    if (r < 0) {
        int code = cli_transport_exit_code(r);
        if (code == CLI_EXIT_UNREACHABLE) {
            say_unreachable(c, url, errstr(r)); /* `why` would name the URL again */
        } else {
            cli_error(c, "cannot talk to controller %s: %s", url, why ? why : errstr(r));
        }
        free(why);
        return code;
    }
    free(why);
    return 0;
}

/* Several: each in turn until one answers. A note names the one that did
 * when it was not the first; when none does, one line names them all and
 * why each failed. */
static int open_failover(cli *c, rb_session **ret)
{
    char *tried = NULL; /* "URL (why), URL (why)" */
    size_t tried_len = 0;
    FILE *f = open_memstream(&tried, &tried_len);
    if (!f) {
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    int code = CLI_EXIT_UNREACHABLE;
    for (size_t i = 0; i < c->n_controller_urls; i++) {
        const char *url = c->controller_urls[i];
        char *why = NULL;
        int r = open_one(c, url, ret, &why);
        if (r >= 0) {
            free(why);
            fclose(f);
            if (i > 0) {
                cli_error(c, "note: controller %s answered; before it: %s", url, tried);
            }
            free(tried);
            c->controller_in_use = url;
            return 0;
        }
        if (!try_next_after(r)) {
            fclose(f);
            free(tried);
            cli_error(c, "cannot talk to controller %s: %s", url, why ? why : errstr(r));
            free(why);
            return cli_transport_exit_code(r);
        }
        fprintf(f, "%s%s (%s)", i ? ", " : "", url, r == -EPROTO && why ? why : errstr(r));
        free(why);
        if (r == -EPROTO) {
            code = CLI_EXIT_FAILED; /* not all of them were out of reach */
        }
    }
    fclose(f);
    const char *from = c->controller_from ? c->controller_from : "the default";
    cli_error(c,
              "no controller reachable (%s): tried %s; check that the controllers listen "
              "there (operators_listen), or name others with --controller, "
              "RACKBOOT_CONTROLLER or --context",
              from, tried ? tried : "");
    free(tried);
    return code;
}

static int open_session(cli *c)
{
    rb_session *s = NULL;
    int code = 0;
    if (c->n_controller_urls > 1) {
        code = open_failover(c, &s);
    } else {
        /* Split by cli_main; a caller of its own may have set only
         * `controller`. */
        const char *url = c->n_controller_urls ? c->controller_urls[0] : c->controller;
        code = open_single(c, url, &s);
        c->controller_in_use = url;
    }
    if (code != 0) {
        return code;
    }
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
            cli_error(c, "controller %s did not answer within %u ms", c->controller_in_use,
                      timeout_ms);
            if (req->body_case == RACKBOOT__V1__API_REQUEST__BODY_INSTALL ||
                req->body_case == RACKBOOT__V1__API_REQUEST__BODY_CANCEL) {
                cli_error(c, "it may still be working through the hosts: see 'rackboot audit' "
                             "and 'rackboot status' (or wait longer with --timeout)");
            }
        } else if (code == CLI_EXIT_UNREACHABLE) {
            say_unreachable(c, c->controller_in_use, errstr(r));
        } else if (r == -EBADMSG) {
            cli_error(c, "controller %s sent a reply that fails validation", c->controller_in_use);
        } else {
            cli_error(c, "request to controller %s failed: %s", c->controller_in_use, errstr(r));
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

/* rackboot web login: a one-time URL that signs you in to the controller's
 * web view, as the identity you use on the API. */
#include <jansson.h>
#include <stdio.h>

#include "commands.h"
#include "render.h"
#include "timeutil.h"
#include "util.h"

static const char web_help[] =
    "Usage: rackboot web login\n"
    "\n"
    "Prints a URL that signs you in to the controller's web view ([web] listen)\n"
    "as the identity you use here: an operator may install and cancel from the\n"
    "pages, a viewer sees. The URL works once, within 5 minutes; the browser then\n"
    "keeps a session for 12 hours. Open it in the browser you mean to use, and\n"
    "do not share it: whoever opens it first is signed in as you.\n";

static int render_web_login(cli *c, const Rackboot__V1__ApiReply *reply)
{
    const Rackboot__V1__WebLogin *w = reply->web_login;
    char until[RFC3339_MS_LEN];
    render_time(w->expires_unix_ms, until, sizeof(until));
    if (output_structured(c->format)) {
        return output_print(c->out, c->format,
                            json_pack("{s:s, s:s}", "url", w->url, "expires", until), "url");
    }
    fprintf(c->out, "%s\n", w->url);
    fprintf(c->err, "rackboot: open it once, before %s\n", until);
    return 0;
}

int cmd_web(cli *c, int argc, char **argv)
{
    if (argc < 2 || (argv[1][0] == '-' && argv[1][1] != '\0')) {
        /* "web --help" and "web" alone: the one subcommand's help. */
        if (argc >= 2 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
            fputs(web_help, c->out);
            return CLI_EXIT_OK;
        }
        return cli_usage_error(c, "web ", "expected 'web login'");
    }
    if (!streq(argv[1], "login")) {
        return cli_usage_error(c, "web ", "unknown subcommand '%s'", argv[1]);
    }
    return cli_listing(c, argc - 1, argv + 1, "web login ", web_help,
                       RACKBOOT__V1__API_REQUEST__BODY_WEB_LOGIN,
                       RACKBOOT__V1__API_REPLY__BODY_WEB_LOGIN, render_web_login);
}

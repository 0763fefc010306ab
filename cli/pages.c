#include "pages.h"

#include <stdio.h>
#include <string.h>

#include "rbproto.h"
#include "util.h"

int cli_pages_fetch(cli *c, Rackboot__V1__ApiRequest *req, const cli_pages_kind *kind,
                    const char *after, uint64_t limit)
{
    render_stream out;
    char cursor[RBPROTO_MAX_NAME + 1];
    uint64_t printed = 0;
    int r = 0;

    render_stream_init(&out, c->out, c->json);
    snprintf(cursor, sizeof(cursor), "%s", after ? after : "");
    for (;;) {
        uint64_t left = limit ? limit - printed : CLI_PAGE_ROWS;
        uint32_t ask = left < CLI_PAGE_ROWS ? (uint32_t)left : CLI_PAGE_ROWS;
        if (kind->ask(req, cursor, ask) < 0) {
            cli_error(c, "out of memory");
            return CLI_EXIT_FAILED;
        }
        Rackboot__V1__ApiReply *reply = NULL;
        int code = cli_call(c, req, 0, kind->expect, &reply);
        if (code != 0) {
            return code;
        }
        const char *last = NULL;
        bool more = false;
        size_t n = kind->rows(reply, &last, &more);
        if (n > ask) {
            /* A controller that pages never sends more than asked: this one
             * answered the whole listing. */
            more = false;
            if (limit && n > limit - printed) {
                n = (size_t)(limit - printed);
            }
        }
        r = kind->render(&out, reply, n);
        printed += n;
        bool advances = last && strcmp(last, cursor) > 0;
        if (advances) {
            snprintf(cursor, sizeof(cursor), "%s", last);
        }
        rbproto_api_reply_free(reply);
        if (r < 0 || !more || (limit && printed >= limit)) {
            break;
        }
        if (!advances) {
            cli_error(c, "the controller's pages do not advance (after %s)", cursor);
            return CLI_EXIT_FAILED;
        }
    }
    if (r >= 0) {
        r = render_stream_end(&out);
    }
    if (r < 0) {
        cli_error(c, "cannot write output: %s", errstr(r));
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}

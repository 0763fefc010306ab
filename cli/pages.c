#include "pages.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pb.h"
#include "rbproto.h"
#include "util.h"

int cli_pages_fetch(cli *c, Rackboot__V1__ApiRequest *req, const cli_pages_kind *kind,
                    const char *after, uint64_t limit, const cli_status_filter *filter)
{
    render_stream out;
    char cursor[RBPROTO_MAX_NAME + 1];
    uint64_t printed = 0;
    int code = CLI_EXIT_OK, r = 0;
    if (filter && cli_status_filter_empty(filter)) {
        filter = NULL;
    }
    RB_ASSERT(!filter || kind->keep);

    render_stream_init(&out, c->out, c->format);
    snprintf(cursor, sizeof(cursor), "%s", after ? after : "");
    for (;;) {
        /* Filtered pages shrink: ask for whole ones, count what is kept. */
        uint64_t left = limit && !filter ? limit - printed : CLI_PAGE_ROWS;
        uint32_t ask = left < CLI_PAGE_ROWS ? (uint32_t)left : CLI_PAGE_ROWS;
        if (kind->ask(req, cursor, ask) < 0) {
            cli_error(c, "out of memory");
            code = CLI_EXIT_FAILED;
            break;
        }
        Rackboot__V1__ApiReply *reply = NULL;
        code = cli_call(c, req, 0, kind->expect, &reply);
        if (code != 0) {
            break;
        }
        const char *last = NULL;
        bool more = false;
        size_t n = kind->rows(reply, &last, &more);
        if (n > ask) {
            /* A controller that pages never sends more than asked: this one
             * answered the whole listing. */
            more = false;
        }
        if (filter) {
            n = kind->keep(reply, n, filter);
        }
        if (limit && n > limit - printed) {
            n = (size_t)(limit - printed);
        }
        r = kind->render(c, &out, reply, n);
        printed += n;
        bool advances = last && strcmp(last, cursor) > 0;
        if (advances) {
            snprintf(cursor, sizeof(cursor), "%s", last);
        }
        rbproto_api_reply_free(reply);
        if (r != 0 || !more || (limit && printed >= limit)) {
            code = r > 0 ? r : CLI_EXIT_OK;
            break;
        }
        if (!advances) {
            cli_error(c, "the controller's pages do not advance (after %s)", cursor);
            code = CLI_EXIT_FAILED;
            break;
        }
    }
    if (code != CLI_EXIT_OK) {
        /* Left unfinished: the output must not pass for a whole listing. */
        render_stream_abandon(&out);
        return code;
    }
    r = render_stream_end(&out);
    if (r < 0) {
        cli_error(c, "cannot write output: %s", errstr(r));
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}

/* ---- status pages -------------------------------------------------------- */

static int status_ask_page(Rackboot__V1__ApiRequest *req, const char *after, uint32_t limit)
{
    req->status->limit = limit;
    return cli_pb_set_string(&req->status->after, after);
}

static size_t status_page_rows(const Rackboot__V1__ApiReply *reply, const char **ret_last,
                               bool *ret_more)
{
    const Rackboot__V1__StatusList *l = reply->statuses;
    *ret_last = l->n_rows ? l->rows[l->n_rows - 1]->host : NULL;
    *ret_more = l->more;
    return l->n_rows;
}

static size_t status_keep(Rackboot__V1__ApiReply *reply, size_t n, const cli_status_filter *filter)
{
    return cli_status_filter_rows(filter, reply->statuses->rows, n);
}

static int status_render_page(cli *c, render_stream *out, Rackboot__V1__ApiReply *reply, size_t n)
{
    size_t all = reply->statuses->n_rows;
    reply->statuses->n_rows = n;
    int r = render_status_page(out, reply->statuses);
    reply->statuses->n_rows = all;
    return r;
}

const cli_pages_kind cli_status_pages = {
    .expect = RACKBOOT__V1__API_REPLY__BODY_STATUSES,
    .ask = status_ask_page,
    .rows = status_page_rows,
    .keep = status_keep,
    .render = status_render_page,
};

static int status_hosts_render_page(cli *c, render_stream *out, Rackboot__V1__ApiReply *reply,
                                    size_t n)
{
    Rackboot__V1__HostList none = RACKBOOT__V1__HOST_LIST__INIT;
    if (n == 0) {
        return render_hosts_page(out, &none); /* the table's header, once */
    }
    Rackboot__V1__ApiRequest *req = cli_request_new(RACKBOOT__V1__API_REQUEST__BODY_HOSTS_LIST);
    int r = req ? 0 : -ENOMEM;
    for (size_t i = 0; r == 0 && i < n; i++) {
        r = cli_pb_add_string(&req->hosts_list->names, &req->hosts_list->n_names,
                              reply->statuses->rows[i]->host);
    }
    if (r < 0) {
        cli_pb_free(req);
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    Rackboot__V1__ApiReply *hosts = NULL;
    int code = cli_call(c, req, 0, RACKBOOT__V1__API_REPLY__BODY_HOSTS, &hosts);
    cli_pb_free(req);
    if (code != 0) {
        return code;
    }
    r = render_hosts_page(out, hosts->hosts);
    rbproto_api_reply_free(hosts);
    return r;
}

const cli_pages_kind cli_status_hosts_pages = {
    .expect = RACKBOOT__V1__API_REPLY__BODY_STATUSES,
    .ask = status_ask_page,
    .rows = status_page_rows,
    .keep = status_keep,
    .render = status_hosts_render_page,
};

/* cli/pages: the listings that come in pages by host name (`hosts list`,
 * `status` of racks or every host) fetched page after page and printed as
 * each page arrives: the output starts with the first page, and the CLI
 * holds one page at a time, at 100,000 hosts as at ten. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "render.h"
#include "values.h"

/* Rows asked for per page (the controller takes up to
 * RBPROTO_MAX_PAGE_ROWS). */
#define CLI_PAGE_ROWS 1000u

/* What differs between the listings. */
typedef struct cli_pages_kind {
    /* The body an OK reply carries. */
    Rackboot__V1__ApiReply__BodyCase expect;
    /* Sets the request's page: rows after `after` ("": from the first), at
     * most `limit` (> 0). -ENOMEM. */
    int (*ask)(Rackboot__V1__ApiRequest *req, const char *after, uint32_t limit);
    /* The reply's count of rows, the name of its last row (NULL without
     * rows) and whether rows follow it. */
    size_t (*rows)(const Rackboot__V1__ApiReply *reply, const char **ret_last, bool *ret_more);
    /* Status listings: moves the rows of the reply's first n that `filter`
     * keeps to the front and returns their count (cli_status_filter_rows()).
     * NULL: the listing takes no filter. */
    size_t (*keep)(Rackboot__V1__ApiReply *reply, size_t n, const cli_status_filter *filter);
    /* Prints the reply's first n rows (n at most its count): < 0 for an
     * error writing, > 0 an exit code (the problem printed). */
    int (*render)(cli *c, render_stream *out, Rackboot__V1__ApiReply *reply, size_t n);
} cli_pages_kind;

/* Sends `req` (which the caller keeps) for page after page, the first
 * after `after` (NULL or "": from the first row), each of CLI_PAGE_ROWS or
 * what is left of `limit`, and prints each page as it comes (JSON or YAML:
 * one array in all), until the controller says no rows follow or `limit`
 * rows (0: no limit) are printed. With a `filter` (NULL or empty: none;
 * the kind must have `keep`), pages are asked for whole and only the rows
 * it keeps are printed and counted. A controller from before paging answers
 * the whole listing at once; it is printed (up to `limit`) and ends the
 * listing. Returns an exit code; on a failure after the first page the
 * output is left unfinished. */
int cli_pages_fetch(cli *c, Rackboot__V1__ApiRequest *req, const cli_pages_kind *kind,
                    const char *after, uint64_t limit, const cli_status_filter *filter);

/* `status` of racks or every host: pages of StatusRequest, filtered by
 * state and phase. */
extern const cli_pages_kind cli_status_pages;
/* `hosts list --state/--phase`: the same pages of StatusRequest, filtered,
 * printed as the hosts of the rows kept (one HostsListRequest of their
 * names per page). */
extern const cli_pages_kind cli_status_hosts_pages;

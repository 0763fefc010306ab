/* web/filter: which hosts a page of the web view's host list shows, from
 * the query of GET /api/hosts:
 *
 *   rack=R          only rack R's hosts
 *   state=S[,S...]  only hosts whose latest install is in one of these
 *                   states ("none": never installed)
 *   phase=P[,P...]  only hosts whose last phase is one of these
 *   prefix=NAME     only host names starting with NAME
 *   after=NAME      the page after host NAME (names in byte order)
 *   limit=N         at most N rows, 1..WEB_PAGE_MAX (default WEB_PAGE_DEFAULT)
 *
 * The store pages by rack and name; the rest is matched here, row by row,
 * so a page of 10,000 hosts costs one query whatever matches. Pure. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define WEB_PAGE_DEFAULT 100u
#define WEB_PAGE_MAX     1000u
#define WEB_NAME_MAX     63u /* as RBPROTO_MAX_NAME */

typedef struct web_host_filter {
    char rack[WEB_NAME_MAX + 1];   /* "": every rack */
    char prefix[WEB_NAME_MAX + 1]; /* "": every name */
    char after[WEB_NAME_MAX + 1];  /* "": from the first */
    uint32_t states;               /* bit (1 << install_state), bit 0 "none"; 0: any */
    uint64_t phases;               /* bit (1 << phase); 0: any */
    uint32_t limit;
} web_host_filter;

/* Reads the query through `get(userdata, key)` (NULL when absent). -EINVAL
 * with *ret_why naming the problem ("state: unknown state 'x'") for a
 * value that is not what the key takes; *ret untouched then. */
int web_host_filter_parse(const char *(*get)(void *userdata, const char *key), void *userdata,
                          web_host_filter *ret, const char **ret_why);

/* Whether a status row belongs on the page (rack and `after` are the
 * store's to apply, but are checked here too). */
bool web_host_filter_match(const web_host_filter *f, const store_status *st);

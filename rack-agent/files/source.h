/* files/source.h: what a source of files implements to serve a path prefix
 * through files.h (the image cache serves images/ and objects/ this way).
 *
 * Resolution order for a path:
 *   1. "files/<name>"             -> <name> in the TFTP root
 *   2. "<prefix>/..." of a source -> that source (files_add_source)
 *   3. anything else              -> the bare name in the TFTP root
 * Every path first passes files_path_check(). */
#pragma once

#include <netinet/in.h>

#include "files/files.h"

/* A pending open of a source. A source embeds this as its request's first
 * member; files_request_cancel() calls `cancel`, which must release it
 * without calling the done callback. */
struct files_request {
    void (*cancel)(files_request *req);
};

/* Opens `path` (the part after "<prefix>/", already checked) the way
 * files_open() does; same contract for the callback and *ret_req. `client`
 * is who asks (files_open_from()), NULL when unknown: a source that serves
 * only some hosts refuses then (-EACCES). */
typedef int (*files_source_fn)(void *userdata, const char *path, const struct sockaddr_in6 *client,
                               files_done_fn done, void *done_userdata, files_request **ret_req);

/* Routes "<prefix>/..." to `fn` (prefix without slashes, e.g. "images").
 * -E2BIG past FILES_MAX_SOURCES, -EEXIST for a prefix already taken or
 * "files", -EINVAL for an empty prefix or one with a '/'. */
int files_add_source(files *f, const char *prefix, files_source_fn fn, void *userdata);

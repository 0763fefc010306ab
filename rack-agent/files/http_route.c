#include "files/http_route.h"

#include <errno.h>
#include <stdlib.h>

#include "util.h"

typedef struct files_wait {
    http_request *req;
    files_request *open;
    bool done;    /* the callback ran (possibly inside files_open()) */
    bool waiting; /* files_open() returned and the request is parked */
} files_wait;

unsigned http_files_status(int r)
{
    switch (r) {
    case -ENOENT:
    case -ENOTDIR:
        return 404;
    case -EACCES:
    case -EPERM:
    case -ELOOP:
        return 403;
    case -ENAMETOOLONG:
        return 414;
    case -EIO:
    case -EBADMSG:
        return 502;
    default:
        return 500;
    }
}

static const char *status_text(unsigned status)
{
    switch (status) {
    case 404:
        return "not found";
    case 403:
        return "forbidden";
    case 414:
        return "name too long";
    case 502:
        return "upstream object unavailable";
    default:
        return "internal error";
    }
}

static void release_blob(void *blob)
{
    files_blob_unref(blob);
}

static void on_opened(void *userdata, int r, const files_result *res)
{
    files_wait *w = userdata;
    w->done = true;
    if (r == 0 && res->blob) {
        /* A small file of the TFTP root, from memory: the server drops
         * the reference when the response is gone. */
        http_reply_memory(w->req, files_blob_data(res->blob), res->size, res->etag,
                          res->content_type, release_blob, res->blob);
    } else if (r == 0) {
        http_reply_file(w->req, res->fd, res->size, res->etag, res->content_type);
    } else {
        unsigned status = http_files_status(r);
        http_reply_error(w->req, status, status_text(status));
    }
    if (w->waiting) {
        free(w);
    }
}

static void on_cancel(void *userdata)
{
    files_wait *w = userdata;
    files_request_cancel(w->open);
    free(w);
}

void http_reply_files(http_request *req, files *f, const char *path)
{
    files_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    w->req = req;
    files_request *open = NULL;
    int r = files_open_cached(f, path, http_request_client(req), on_opened, w, &open);
    if (r < 0) {
        free(w);
        unsigned status = http_files_status(r);
        http_reply_error(req, status, status_text(status));
        return;
    }
    if (w->done) {
        /* Answered at once (the usual case for the TFTP root). */
        free(w);
        return;
    }
    w->open = open;
    w->waiting = true;
    http_request_on_cancel(req, on_cancel, w);
}

void http_files_handler(http_request *req, void *userdata)
{
    http_reply_files(req, userdata, http_request_path(req) + 1);
}

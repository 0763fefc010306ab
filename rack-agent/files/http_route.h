/* HTTP answers from files.h: the one path from a request to files_open() to
 * an answer, shared by every route that serves files (/files/ now, the
 * cache's /images/ and /objects/ too), so they all get the same status codes,
 * validators, ranges and sendfile(2). */
#pragma once

#include "files/files.h"
#include "http/server.h"

/* Answers `req` with files_open(f, path): the file (200/206/304/416 as the
 * request asks), or 404 (-ENOENT), 403 (-EACCES), 414 (-ENAMETOOLONG), 502
 * (-EIO, -EBADMSG: the origin failed or its object did not verify; never a
 * partial or unverified body), 500 otherwise. Waits for the cache without
 * holding the loop; cancels the open if the server closes first. */
void http_reply_files(http_request *req, files *f, const char *path);

/* A route handler (userdata: the files) that serves the request's path
 * without its leading '/': "/files/ipxe.efi" → files_open("files/ipxe.efi"),
 * "/images/el9/vmlinuz" → files_open("images/el9/vmlinuz"). */
void http_files_handler(http_request *req, void *userdata);

/* The status for a files_open() error. */
unsigned http_files_status(int r);

/* What the agent serves, by path: the one place that turns a request path
 * into an open file, shared by the HTTP and TFTP servers so both serve the
 * same names (issue: "the same objects are reachable over TFTP by the same
 * paths").
 *
 *   files/<name>                 the TFTP root, read-only (UEFI HTTP boot
 *   <name>                       fetches files/ipxe.efi; TFTP clients ask
 *                                for the bare name)
 *   images/<profile>/vmlinuz     the profile's kernel   } verified objects
 *   images/<profile>/initrd.img  the profile's initrd   } from the image
 *   images/<profile>/LiveOS/squashfs.img  its stage2    } cache, fetched
 *   images/<profile>/<name>      an extra file          } on first use
 *   objects/<sha256 hex>         any cached object by content
 *
 * Paths are given without the leading '/', already percent-decoded, and are
 * untrusted: `..`, absolute names, NUL bytes, over-long names and symlinks
 * leading out of the TFTP root are refused.
 *
 * Opening may have to wait for an upstream fetch, so it completes through a
 * callback on the agent's loop (possibly before files_open() returns). The
 * HTTP and TFTP servers know nothing of the cache or of intents. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct files files;
typedef struct files_request files_request;

typedef struct files_result {
    int fd; /* O_RDONLY|O_CLOEXEC; the receiver owns and closes it */
    uint64_t size;
    char etag[72]; /* strong validator, quoted: "\"<sha256 hex>\"" or "\"<ino>-<size>-<mtime>\"" */
    const char *content_type; /* static string */
    bool verified;            /* came from the verified cache */
    /* Kind of image for progress events (see intents.h image_kind), or -1
     * when the path is not an image of a profile. */
    int image_kind;
    const char *profile; /* profile name for images, else NULL; valid during the callback */
} files_result;

/* r == 0: *res is filled and res->fd is the receiver's. r < 0: -ENOENT (no
 * such name), -EACCES (refused path), -EIO (upstream fetch failed),
 * -EBADMSG (origin object failed sha256 verification), -ENAMETOOLONG. */
typedef void (*files_done_fn)(void *userdata, int r, const files_result *res);

/* Starts opening `path`. *ret_req (may be NULL) can cancel it while pending;
 * it is invalid once the callback ran. Returns 0, or a negative errno when
 * the request could not even be started (then the callback is not called). */
int files_open(files *f, const char *path, files_done_fn done, void *userdata,
               files_request **ret_req);

/* The callback will not be called; releases the request. */
void files_request_cancel(files_request *req);

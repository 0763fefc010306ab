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

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct files files;
typedef struct files_request files_request;

/* The whole of a small file, in memory, immutable and reference-counted:
 * what files_open_cached() answers with for the TFTP root's small files. */
typedef struct files_blob files_blob;

const uint8_t *files_blob_data(const files_blob *b);
size_t files_blob_size(const files_blob *b);
files_blob *files_blob_ref(files_blob *b);
/* Drops a reference; frees with the last. Accepts NULL, returns NULL. */
files_blob *files_blob_unref(files_blob *b);

typedef struct files_result {
    int fd; /* O_RDONLY|O_CLOEXEC; the receiver owns and closes it; -1 with blob */
    /* files_open_cached() only: the file's bytes in memory instead of fd;
     * the receiver owns this reference. NULL otherwise. */
    files_blob *blob;
    uint64_t size;
    char etag[72]; /* strong validator, quoted: "\"<sha256 hex>\"" or "\"<ino>-<size>-<mtime>\"" */
    const char *content_type; /* static string */
    bool verified;            /* came from the verified cache */
    /* Kind of image for progress events (see model/profile.h image_kind), or -1
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
/* files_open() on behalf of `client` (the TFTP or HTTP peer; NULL: unknown),
 * for sources that answer only some hosts (files/source.h). */
int files_open_from(files *f, const char *path, const struct sockaddr_in6 *client,
                    files_done_fn done, void *userdata, files_request **ret_req);

/* Like files_open(), but a small regular file of the TFTP root (at most
 * FILES_CACHE_MAX_FILE bytes) may come back as a blob from memory (fd -1):
 * the agent keeps such files after the first read and checks on every open,
 * with one stat, that the name still leads to the same unchanged file
 * (device, inode, size, mtime, ctime); a file changed less than
 * FILES_CACHE_SETTLE_S seconds ago is not kept, so two writes within one
 * timestamp tick cannot leave a stale copy. Serves HTTP's small files
 * without an open, a read and a close per request. */
int files_open_cached(files *f, const char *path, const struct sockaddr_in6 *client,
                      files_done_fn done, void *userdata, files_request **ret_req);

/* The callback will not be called; releases the request. */
void files_request_cancel(files_request *req);

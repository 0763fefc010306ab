/* File I/O that survives crashes and bounds what it reads.
 *
 * Atomic replace: content goes to a temporary file `.NAME.XXXXXX` in the
 * target's directory, which is then fchmod'ed, fsync'ed and renamed over the
 * target, and the directory is fsync'ed so the rename itself is durable.
 * Readers see the old file or the new one, never a mix; after a crash the
 * old one at worst. On failure the temporary file is removed and the target
 * is untouched — except when only the final directory fsync fails, in which
 * case the new content is in place but its durability is not known.
 *
 * Errors are negative errnos from the system calls. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Replaces `path` with `data`. `mode` is applied exactly (umask does not
 * apply). */
int fileio_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* The same in steps, for content too large to hold in memory:
 *
 *     fileio_atomic *a;
 *     r = fileio_atomic_begin(path, 0644, &a);
 *     ... write to fileio_atomic_fd(a) ...
 *     r = fileio_atomic_commit(a);          // or a = fileio_atomic_abort(a);
 *
 * The fd belongs to the handle: do not close it. */
typedef struct fileio_atomic fileio_atomic;

int fileio_atomic_begin(const char *path, mode_t mode, fileio_atomic **ret);
int fileio_atomic_fd(const fileio_atomic *a);
/* Makes the written content the new `path`. Consumes `a` whether it succeeds
 * or fails; on failure the temporary file is gone and `path` is as before. */
int fileio_atomic_commit(fileio_atomic *a);
/* Drops the temporary file and frees `a`. Accepts NULL, returns NULL. */
fileio_atomic *fileio_atomic_abort(fileio_atomic *a);

/* Writes all of data, retrying short writes and EINTR. */
int fileio_write_all(int fd, const void *data, size_t len);

/* Reads a whole file of at most `max` bytes (-EFBIG when larger, checked
 * while reading too, so files whose size stat(2) does not know are bounded).
 * *ret is NUL-terminated for callers that treat it as text; *ret_len excludes
 * the NUL. Free *ret with free(). */
int fileio_read_all(const char *path, size_t max, void **ret, size_t *ret_len);

/* fsync(2) of a directory, making renames and creations in it durable. */
int fileio_fsync_dir(const char *dir);

/* mkdir -p: `path` and its missing parents (those 0755, `path` itself
 * `mode`); an existing directory is not an error. */
int fileio_mkdir_p(const char *path, mode_t mode);

/* `rel` as seen from the file `base`: itself when absolute, else joined to
 * base's directory (a config file naming its neighbours). malloc()ed; NULL
 * when out of memory. */
char *fileio_path_relative(const char *base, const char *rel);

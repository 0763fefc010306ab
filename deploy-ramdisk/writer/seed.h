/* seed: the cloud-init NoCloud seed (meta-data, network-config, user-data)
 * that gives the installed OS its identity.
 *
 * seed_fetch() downloads the three files from the agent before anything is
 * written to the disk (a deploy without its identity would boot a host that
 * nobody can reach), each bounded in size. seed_image_build() makes them
 * into a small FAT file system labelled CIDATA, in memory, which the caller
 * writes into the partition grow reserved (writer/grow.h). cloud-init's
 * NoCloud finds it by its label (blkid LABEL=CIDATA).
 *
 * The FAT image is made with mtools (mformat, mcopy, found on PATH) on a
 * temporary file: no mount, so no vfat module in the ramdisk and no loop
 * device, and the same code runs in the tests on machines that cannot mount
 * vfat. mtools is one binary that needs only libc.
 *
 * Errors: -EFBIG for a file over SEED_FILE_MAX, -ENOENT for a 404, -EIO when
 * retries ran out, -EPROTO for other refusals, -ENOSPC when the files do not
 * fit the image, -ECHILD when an mtools command failed, -ENOMEM. A message
 * for the log goes to *ret_error (malloc'ed, when not NULL; written only on
 * failure). Other ret_* are written only on success. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SEED_N_FILES 3
/* Per file. A user-data with SSH keys and a template is a few KiB. */
#define SEED_FILE_MAX ((size_t)256 * 1024)
/* The FAT label NoCloud looks for. */
#define SEED_LABEL "CIDATA"

/* "meta-data", "network-config", "user-data", in that order. */
extern const char *const seed_file_names[SEED_N_FILES];

typedef struct seed_files {
    char *data[SEED_N_FILES];
    size_t len[SEED_N_FILES];
} seed_files;

/* Resets f, freeing its buffers. Accepts NULL. */
void seed_files_clear(seed_files *f);

/* GETs base_url/NAME for each name (a trailing '/' of base_url is allowed).
 * All three are required; transient failures (connection refused, 5xx,
 * 408, 429) are retried a few times with a pause, for the seed's dracut
 * race: the agent may not be reachable the first second. */
int seed_fetch(const char *base_url, seed_files *ret, char **ret_error);

/* A FAT file system of size_bytes (a whole number of 512-byte sectors, at
 * least 1 MiB) labelled SEED_LABEL with the three files in its root. tmpdir:
 * where the scratch file goes (NULL: $TMPDIR or /tmp). *ret_image is
 * malloc'ed, size_bytes long. */
int seed_image_build(const seed_files *f, uint64_t size_bytes, const char *tmpdir,
                     uint8_t **ret_image, char **ret_error);

/* For fuzz targets whose parser reads a path (configuration, hosts and lease
 * files): the input is written to a file in a private directory, which is on
 * tmpfs (/dev/shm) when there is one, so rewriting a file for every input
 * costs no disk I/O and nothing is fsync'ed. The directory is made on first
 * use and emptied and removed at exit; nothing is written outside it. */
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static char fuzz_dir_path[128];

static void fuzz_dir_remove(void)
{
    DIR *d = opendir(fuzz_dir_path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
                unlinkat(dirfd(d), de->d_name, 0);
            }
        }
        closedir(d);
    }
    rmdir(fuzz_dir_path);
}

/* The private directory (aborts when none can be made: the target cannot
 * run without it). */
static const char *fuzz_dir(const char *name)
{
    if (fuzz_dir_path[0] == '\0') {
        struct stat st;
        const char *base = getenv("TMPDIR");
        if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0) {
            base = "/dev/shm";
        } else if (!base || base[0] != '/' || strlen(base) >= 64) {
            base = "/tmp";
        }
        int n = snprintf(fuzz_dir_path, sizeof(fuzz_dir_path), "%s/%s.XXXXXX", base, name);
        if (n < 0 || (size_t)n >= sizeof(fuzz_dir_path) || !mkdtemp(fuzz_dir_path)) {
            abort();
        }
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_path;
}

/* Replaces the file `name` of the directory with `size` bytes of `data` and
 * returns its path (valid until the next call). Aborts on failure. */
static const char *fuzz_file_write(const char *dir, const char *name, const void *data, size_t size)
{
    static char path[256];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        abort();
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        abort();
    }
    const char *p = data;
    while (size > 0) {
        ssize_t w = write(fd, p, size);
        if (w <= 0) {
            abort();
        }
        p += w;
        size -= (size_t)w;
    }
    close(fd);
    return path;
}

#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "util.h"

int daemon_user_lookup(const char *name, daemon_user *ret)
{
    if (strempty(name) || strlen(name) >= sizeof(ret->name)) {
        return -EINVAL;
    }
    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t buf_len = size > 0 ? (size_t)size : 16384;
    _cleanup_free_ char *buf = malloc(buf_len);
    if (!buf) {
        return -ENOMEM;
    }
    struct passwd pw, *found = NULL;
    int r = getpwnam_r(name, &pw, buf, buf_len, &found);
    if (r != 0) {
        return -r;
    }
    if (!found) {
        return -ENOENT;
    }
    daemon_user u = { .uid = pw.pw_uid, .gid = pw.pw_gid };
    snprintf(u.name, sizeof(u.name), "%s", name);
    *ret = u;
    return 0;
}

bool daemon_is_root(void)
{
    return geteuid() == 0;
}

/* Gives the entry `name` of directory `dfd` to `u`, and when it is a
 * directory everything under it. Every step is relative to an open
 * directory and refuses symlinks (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW): a
 * process of that user swapping a directory for a symlink mid-walk cannot
 * make root change anything outside the tree. */
static int chown_at(int dfd, const char *name, const daemon_user *u, unsigned depth)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        return errno == ENOENT ? 0 : negative_errno(); /* gone meanwhile */
    }
    if ((st.st_uid != u->uid || st.st_gid != u->gid) &&
        fchownat(dfd, name, u->uid, u->gid, AT_SYMLINK_NOFOLLOW) < 0) {
        return negative_errno();
    }
    if (!S_ISDIR(st.st_mode)) {
        return 0;
    }
    if (depth > 64) {
        return -ELOOP; /* no state tree of ours is this deep */
    }
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return negative_errno();
    }
    DIR *dir = fdopendir(fd);
    if (!dir) {
        int r = negative_errno();
        close(fd);
        return r;
    }
    int r = 0;
    struct dirent *de;
    while (r == 0 && (errno = 0, de = readdir(dir))) {
        if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
            r = chown_at(dirfd(dir), de->d_name, u, depth + 1);
        }
    }
    if (r == 0 && errno != 0) {
        r = negative_errno();
    }
    closedir(dir);
    return r;
}

int daemon_chown_tree(const char *path, const daemon_user *u)
{
    return chown_at(AT_FDCWD, path, u, 0);
}

int daemon_drop_privileges(const daemon_user *u, const cap_value_t *keep, size_t n_keep)
{
    if (!daemon_is_root()) {
        return -EPERM;
    }
    /* Nothing outside `keep` may come back, not even through an exec of a
     * file with capabilities: cut the bounding set while we still may
     * (CAP_SETPCAP), and forbid new privileges for good. */
    for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
        bool kept = false;
        for (size_t i = 0; i < n_keep; i++) {
            kept |= keep[i] == c;
        }
        if (!kept && CAP_IS_SUPPORTED(c) && cap_drop_bound(c) < 0) {
            return negative_errno();
        }
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        return negative_errno();
    }
    /* Keep the permitted set over the uid change, then cut it down. */
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
        return negative_errno();
    }
    if (initgroups(u->name, u->gid) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
        setresuid(u->uid, u->uid, u->uid) < 0) {
        return negative_errno();
    }
    int r = 0;
    cap_t caps = cap_init(); /* all clear */
    if (!caps) {
        return negative_errno();
    }
    if (n_keep > 0 && (cap_set_flag(caps, CAP_PERMITTED, (int)n_keep, keep, CAP_SET) < 0 ||
                       cap_set_flag(caps, CAP_EFFECTIVE, (int)n_keep, keep, CAP_SET) < 0)) {
        r = negative_errno();
    }
    if (r == 0 && cap_set_proc(caps) < 0) {
        r = negative_errno();
    }
    cap_free(caps);
    if (r == 0 && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) {
        r = negative_errno();
    }
    /* Back to root must be impossible now. */
    if (r == 0 && (setresuid(0, 0, 0) == 0 || geteuid() == 0)) {
        r = -EPERM;
    }
    return r;
}

bool daemon_has_capability(cap_value_t cap)
{
    cap_t caps = cap_get_proc();
    if (!caps) {
        return false;
    }
    cap_flag_value_t v = CAP_CLEAR;
    bool has = cap_get_flag(caps, cap, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET;
    cap_free(caps);
    return has;
}

void daemon_notify_ready(const char *status)
{
    sd_notifyf(0, "READY=1\nSTATUS=%s", status ? status : "serving");
}

void daemon_notify_stopping(void)
{
    sd_notify(0, "STOPPING=1");
}

void daemon_notify_reloading(void)
{
    sd_notify(0, "RELOADING=1");
}

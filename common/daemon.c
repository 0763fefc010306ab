#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

/* nftw(3) takes no user data: the tree walk runs on the loop thread at
 * start-up only, so a file-scope pointer is enough. */
static const daemon_user *chown_to;

static int chown_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    if (st->st_uid == chown_to->uid && st->st_gid == chown_to->gid) {
        return 0;
    }
    return lchown(path, chown_to->uid, chown_to->gid) < 0 ? negative_errno() : 0;
}

int daemon_chown_tree(const char *path, const daemon_user *u)
{
    chown_to = u;
    /* FTW_PHYS: symlinks are changed themselves, never followed. */
    int r = nftw(path, chown_one, 16, FTW_PHYS | FTW_MOUNT);
    chown_to = NULL;
    if (r == -1) {
        return negative_errno();
    }
    return r; /* 0, or chown_one's -errno */
}

int daemon_drop_privileges(const daemon_user *u, const cap_value_t *keep, size_t n_keep)
{
    if (!daemon_is_root()) {
        return -EPERM;
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

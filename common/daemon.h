/* daemon: how rackboot's two daemons live under a service manager.
 *
 * Least privilege. A daemon starts as root only to bind its sockets and
 * read its keys, then runs as a dedicated user (`[agent] user` /
 * `[controller] user`, `--user`; the packages create `rackboot`) with
 * only the capabilities it names kept (CAP_NET_BIND_SERVICE). Root's
 * files it must keep writing (the state and cache directories) are handed
 * to that user first. The daemons drop before they start any thread or
 * create any file, so everything they make belongs to that user; the
 * capability they keep is what lets them bind ports below 1024 after the
 * drop. The drop is for the whole process all the same: glibc applies
 * setresuid/setresgid to every thread, threads other than the caller lose
 * their effective and permitted capabilities (the kernel clears them on the
 * uid change; only the caller set PR_SET_KEEPCAPS), the bounding set is cut
 * to what is kept, and no_new_privs is set.
 *
 * Readiness. Under systemd (Type=notify) the daemon says READY=1 once it
 * serves, STOPPING=1 when it begins to shut down, and RELOADING=1 /
 * READY=1 around a SIGHUP; outside systemd these are no-ops. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <sys/capability.h>

typedef struct daemon_user {
    char name[64];
    uid_t uid;
    gid_t gid;
} daemon_user;

/* Looks `name` up in the user database. -ENOENT when there is no such
 * user, -EINVAL for an empty or too long name. */
int daemon_user_lookup(const char *name, daemon_user *ret);

/* Whether the process runs as root (only then can it drop to a user). */
bool daemon_is_root(void);

/* Gives `path` and everything under it to `u`, walking by open directory
 * descriptors and never following a symlink (a symlink is changed itself).
 * Entries already owned by it are left alone. */
int daemon_chown_tree(const char *path, const daemon_user *u);

/* Becomes `u` (its supplementary groups, gid, uid) keeping only the
 * capabilities in `keep` (permitted, effective and bounding sets), with
 * no_new_privs set. Must run as root. Any failure leaves the process unfit
 * to continue: callers exit. */
int daemon_drop_privileges(const daemon_user *u, const cap_value_t *keep, size_t n_keep);

/* Whether the calling thread holds `cap` in its effective set. */
bool daemon_has_capability(cap_value_t cap);

/* sd_notify(3) wrappers: READY=1 with a STATUS= line, STOPPING=1,
 * RELOADING=1. No-ops when NOTIFY_SOCKET is not set. */
void daemon_notify_ready(const char *status);
void daemon_notify_stopping(void);
void daemon_notify_reloading(void);

/* common/daemon.h: the privilege drop, checked in a child process (the
 * drop cannot be undone) as root; skipped when not root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "util.h"

/* The unprivileged user every Debian system has. */
#define TEST_USER "nobody"

static void test_lookup(void **state)
{
    daemon_user u;
    assert_int_equal(daemon_user_lookup("root", &u), 0);
    assert_int_equal(u.uid, 0);
    assert_int_equal(daemon_user_lookup("rb-no-such-user-xyz", &u), -ENOENT);
    assert_int_equal(daemon_user_lookup("", &u), -EINVAL);
}

/* A thread started before the drop, as nng's are: it must come out of it
 * with the new uid and no capability at all. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool dropped, checked;
static bool thread_uid_ok, thread_caps_empty;

static void *early_thread(void *arg)
{
    uid_t want = *(uid_t *)arg;
    pthread_mutex_lock(&lock);
    while (!dropped) {
        pthread_cond_wait(&cond, &lock);
    }
    thread_uid_ok = getuid() == want && geteuid() == want;
    thread_caps_empty =
        !daemon_has_capability(CAP_NET_BIND_SERVICE) && !daemon_has_capability(CAP_DAC_OVERRIDE);
    checked = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static bool can_bind_privileged_port(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    /* Port 1 (tcpmux) is unused on any system these tests run on. */
    sa.sin6_port = htons(1);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

/* The child's checks, as an exit status: 0 all good, else which failed. */
static int child_drop(const daemon_user *u)
{
    pthread_t t;
    uid_t want = u->uid;
    if (pthread_create(&t, NULL, early_thread, &want) != 0) {
        return 10;
    }
    const cap_value_t keep[] = { CAP_NET_BIND_SERVICE };
    if (daemon_drop_privileges(u, keep, ARRAY_SIZE(keep)) < 0) {
        return 11;
    }
    pthread_mutex_lock(&lock);
    dropped = true;
    pthread_cond_broadcast(&cond);
    while (!checked) {
        pthread_cond_wait(&cond, &lock);
    }
    pthread_mutex_unlock(&lock);
    pthread_join(t, NULL);
    if (getuid() != u->uid || geteuid() != u->uid || getgid() != u->gid) {
        return 12;
    }
    if (!daemon_has_capability(CAP_NET_BIND_SERVICE) || daemon_has_capability(CAP_DAC_OVERRIDE) ||
        daemon_has_capability(CAP_SETUID)) {
        return 13;
    }
    if (!can_bind_privileged_port()) {
        return 14;
    }
    if (setuid(0) == 0) {
        return 15;
    }
    /* Root's files are root's again: CAP_DAC_OVERRIDE is gone. */
    if (open("/etc/shadow", O_RDONLY | O_CLOEXEC) >= 0) {
        return 16;
    }
    if (!thread_uid_ok) {
        return 17;
    }
    if (!thread_caps_empty) {
        return 18;
    }
    /* Nothing can come back: no_new_privs, and the bounding set holds
     * only what was kept. */
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
        return 19;
    }
    if (cap_get_bound(CAP_NET_BIND_SERVICE) != 1 || cap_get_bound(CAP_SYS_ADMIN) != 0 ||
        cap_get_bound(CAP_SETUID) != 0) {
        return 20;
    }
    return 0;
}

static void test_drop_privileges(void **state)
{
    if (!daemon_is_root()) {
        skip();
    }
    daemon_user u;
    assert_int_equal(daemon_user_lookup(TEST_USER, &u), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(child_drop(&u));
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_drop_refused_without_root(void **state)
{
    if (!daemon_is_root()) {
        daemon_user u = { .name = TEST_USER, .uid = 65534, .gid = 65534 };
        assert_int_equal(daemon_drop_privileges(&u, NULL, 0), -EPERM);
        return;
    }
    daemon_user u;
    assert_int_equal(daemon_user_lookup(TEST_USER, &u), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Dropped once, a second drop (now not root) is refused. */
        if (daemon_drop_privileges(&u, NULL, 0) < 0) {
            _exit(1);
        }
        _exit(daemon_drop_privileges(&u, NULL, 0) == -EPERM ? 0 : 2);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_chown_tree(void **state)
{
    if (!daemon_is_root()) {
        skip();
    }
    daemon_user u;
    assert_int_equal(daemon_user_lookup(TEST_USER, &u), 0);
    char dir[] = "/tmp/rb-daemon-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[64], file[96], link[96];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    snprintf(file, sizeof(file), "%s/sub/file", dir);
    snprintf(link, sizeof(link), "%s/escape", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    /* A symlink out of the tree is changed itself, never followed, to a
     * file or to a directory. */
    assert_int_equal(symlink("/etc/hostname", link), 0);
    char outside[] = "/tmp/rb-daemon-out-XXXXXX", outside_file[96], dirlink[96];
    assert_non_null(mkdtemp(outside));
    snprintf(outside_file, sizeof(outside_file), "%s/file", outside);
    snprintf(dirlink, sizeof(dirlink), "%s/sub/escape-dir", dir);
    fd = open(outside_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(symlink(outside, dirlink), 0);
    struct stat before;
    assert_int_equal(stat("/etc/hostname", &before), 0);

    assert_int_equal(daemon_chown_tree(dir, &u), 0);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_uid, u.uid);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_uid, u.uid);
    assert_int_equal(st.st_gid, u.gid);
    assert_int_equal(lstat(link, &st), 0);
    assert_int_equal(st.st_uid, u.uid);
    assert_int_equal(stat("/etc/hostname", &st), 0);
    assert_int_equal(st.st_uid, before.st_uid);
    assert_int_equal(stat(outside_file, &st), 0);
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(lstat(dirlink, &st), 0);
    assert_int_equal(st.st_uid, u.uid);

    unlink(dirlink);
    unlink(outside_file);
    rmdir(outside);

    unlink(link);
    unlink(file);
    rmdir(sub);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_drop_privileges),
        cmocka_unit_test(test_drop_refused_without_root),
        cmocka_unit_test(test_chown_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

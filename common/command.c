#include "command.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errmsg.h"
#include "util.h"

extern char **environ;

/* The whole of a memfd the child wrote, from its start, NUL-terminated;
 * at most `max` bytes (-E2BIG beyond). */
static int read_memfd(int fd, size_t max, char **ret)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        return negative_errno();
    }
    if ((uint64_t)st.st_size > max) {
        return -E2BIG;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, buf + got, n - got, (off_t)got);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            int r = k < 0 ? negative_errno() : -EIO;
            free(buf);
            return r;
        }
        got += (size_t)k;
    }
    buf[n] = '\0';
    *ret = buf;
    return 0;
}

/* The last COMMAND_ERR_TAIL bytes of the child's stderr, one line: newlines
 * become "; ", trailing whitespace dropped. Empty when it said nothing. */
static void err_tail(int fd, char *out, size_t size)
{
    out[0] = '\0';
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size == 0) {
        return;
    }
    char buf[COMMAND_ERR_TAIL + 1];
    off_t from = st.st_size > COMMAND_ERR_TAIL ? st.st_size - COMMAND_ERR_TAIL : 0;
    ssize_t n = pread(fd, buf, (size_t)(st.st_size - from), from);
    if (n <= 0) {
        return;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\r')) {
        n--;
    }
    size_t o = 0;
    for (ssize_t i = 0; i < n && o + 3 < size; i++) {
        if (buf[i] == '\n') {
            out[o++] = ';';
            out[o++] = ' ';
        } else {
            out[o++] = buf[i] >= 0x20 && buf[i] < 0x7f ? buf[i] : '?';
        }
    }
    out[o] = '\0';
}

int command_run(char *const argv[], char **ret_out, char **ret_error)
{
    if (!argv || !argv[0]) {
        return errmsg_fail(ret_error, -EINVAL, "no program to run");
    }
    const char *prog = argv[0];
    int out_fd = -1, err_fd = -1, status, e, r;
    char tail[2 * COMMAND_ERR_TAIL + 1];
    sigset_t none, all;
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    if (posix_spawn_file_actions_init(&fa) != 0) {
        return -ENOMEM;
    }
    if (posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -ENOMEM;
    }
    err_fd = memfd_create("command-stderr", MFD_CLOEXEC);
    if (err_fd >= 0 && ret_out) {
        out_fd = memfd_create("command-stdout", MFD_CLOEXEC);
    }
    if (err_fd < 0 || (ret_out && out_fd < 0)) {
        r = negative_errno();
        errmsg_fail(ret_error, r, "%s: cannot capture its output: %s", prog, errstr(r));
        goto out;
    }
    /* dup2 clears close-on-exec on the child's copy. */
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (ret_out) {
        posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    } else {
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    }
    posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
    /* The tool starts as from a shell: no signal blocked, none ignored (the
     * daemons ignore SIGPIPE; a tool writing to a closed pipe should die). */
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    e = posix_spawnp(&pid, prog, &fa, &attr, argv, environ);
    if (e != 0) {
        r = errmsg_fail(ret_error, -e, "%s: cannot run it: %s", prog, strerror(e));
        goto out;
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            r = negative_errno();
            errmsg_fail(ret_error, r, "%s: waitpid: %s", prog, errstr(r));
            goto out;
        }
    }
    err_tail(err_fd, tail, sizeof(tail));
    if (WIFSIGNALED(status)) {
        r = errmsg_fail(ret_error, -ECHILD, "%s: killed by signal %d%s%s", prog, WTERMSIG(status),
                        tail[0] ? ": " : "", tail);
        goto out;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        r = errmsg_fail(ret_error, -ECHILD, "%s: exited with status %d%s%s", prog,
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1, tail[0] ? ": " : "", tail);
        goto out;
    }
    r = 0;
    if (ret_out) {
        r = read_memfd(out_fd, COMMAND_OUT_MAX, ret_out);
        if (r < 0) {
            errmsg_fail(ret_error, r, "%s: its output: %s", prog,
                        r == -E2BIG ? "more than 1 MiB" : errstr(r));
        }
    }
out:
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (out_fd >= 0) {
        close(out_fd);
    }
    if (err_fd >= 0) {
        close(err_fd);
    }
    return r;
}

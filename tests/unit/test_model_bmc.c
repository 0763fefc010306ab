/* model/bmc: the password rules every reader of a password shares (the
 * CLI's --bmc-password-file and --bmc-password-stdin, the hosts file's
 * bmc_password_file =, the CSV column): one line, its newline dropped,
 * never empty, never quoted back, and never from a file others can read. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/bmc.h"

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/test_model_bmc.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* Writes `len` bytes to dir/name with `mode`; the path into `path`. */
static void write_secret(const char *name, const char *content, size_t len, mode_t mode, char *path,
                         size_t size)
{
    snprintf(path, size, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

#define PARSE_OK(text, want)                                                                       \
    do {                                                                                           \
        char *pw_ = NULL;                                                                          \
        assert_int_equal(model_bmc_password_parse(text, sizeof(text) - 1, &pw_, why, sizeof(why)), \
                         0);                                                                       \
        assert_string_equal(pw_, want);                                                            \
        pw_ = model_bmc_password_free(pw_);                                                        \
        assert_null(pw_);                                                                          \
    } while (0)

#define PARSE_BAD(text, reason)                                                                    \
    do {                                                                                           \
        char *pw_ = NULL;                                                                          \
        why[0] = '\0';                                                                             \
        assert_int_equal(model_bmc_password_parse(text, sizeof(text) - 1, &pw_, why, sizeof(why)), \
                         -EINVAL);                                                                 \
        assert_null(pw_);                                                                          \
        assert_non_null(strstr(why, reason));                                                      \
        assert_null(strstr(why, "Hunter"));                                                        \
    } while (0)

static void test_password_parse(void **state)
{
    char why[128];
    PARSE_OK("Hunter2", "Hunter2");
    PARSE_OK("Hunter2\n", "Hunter2");             /* echo Hunter2 >file */
    PARSE_OK("Hunter2\r\n", "Hunter2");           /* an editor's CRLF */
    PARSE_OK("with spaces  \n", "with spaces  "); /* only the newline goes */
    PARSE_OK("0123456789012345678901234567890123456789012345678901234567890123",
             "0123456789012345678901234567890123456789012345678901234567890123");
    PARSE_BAD("", "empty");
    PARSE_BAD("\n", "empty");
    PARSE_BAD("\r\n", "empty");
    PARSE_BAD("Hunter2\n\n", "more than one line");
    PARSE_BAD("Hunter2\nsecond\n", "more than one line");
    PARSE_BAD("Hunter\0002", "not printable");
    PARSE_BAD("Hunter\t2", "not printable");
    PARSE_BAD("Hunter2\r", "not printable");
    PARSE_BAD("Hunter\xc3\xa9", "not printable");
    PARSE_BAD("01234567890123456789012345678901234567890123456789012345678901234",
              "longer than 64");
}

static void test_password_read_file(void **state)
{
    char path[128], why[256];
    char *pw = NULL;

    write_secret("ok", "Hunter2\n", 8, 0600, path, sizeof(path));
    assert_int_equal(model_bmc_password_read_file(path, &pw, why, sizeof(why)), 0);
    assert_string_equal(pw, "Hunter2");
    pw = model_bmc_password_free(pw);

    /* The group may read it (root:rackboot 0640 for a daemon)... */
    write_secret("group", "Hunter2", 7, 0640, path, sizeof(path));
    assert_int_equal(model_bmc_password_read_file(path, &pw, why, sizeof(why)), 0);
    pw = model_bmc_password_free(pw);

    /* ...others may not. */
    write_secret("loose", "Hunter2\n", 8, 0644, path, sizeof(path));
    assert_int_equal(model_bmc_password_read_file(path, &pw, why, sizeof(why)), -EACCES);
    assert_null(pw);
    assert_non_null(strstr(why, path));
    assert_non_null(strstr(why, "0644"));
    assert_null(strstr(why, "Hunter"));

    write_secret("empty", "", 0, 0600, path, sizeof(path));
    assert_int_equal(model_bmc_password_read_file(path, &pw, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "empty"));
    assert_non_null(strstr(why, path));

    /* A long file is refused without reading all of it. */
    static char big[4096];
    memset(big, 'x', sizeof(big));
    write_secret("big", big, sizeof(big), 0600, path, sizeof(path));
    assert_int_equal(model_bmc_password_read_file(path, &pw, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "longer than"));

    snprintf(path, sizeof(path), "%s/missing", dir);
    assert_int_equal(model_bmc_password_read_file(path, &pw, why, sizeof(why)), -ENOENT);
    assert_non_null(strstr(why, path));
    assert_int_equal(model_bmc_password_read_file(dir, &pw, why, sizeof(why)), -EISDIR);

    /* A pipe has no mode to check: `--bmc-password-file <(pass show bmc)`. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "Hunter2\n", 8), 8);
    close(fds[1]);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
    assert_int_equal(model_bmc_password_read_file(path, &pw, why, sizeof(why)), 0);
    assert_string_equal(pw, "Hunter2");
    pw = model_bmc_password_free(pw);
    close(fds[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_parse),
        cmocka_unit_test_setup_teardown(test_password_read_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

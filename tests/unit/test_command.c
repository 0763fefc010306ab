/* common/command.h: exit statuses, stdout kept, stderr's end in the error,
 * a program not found, a signal, output over the limit, and the child's
 * signal dispositions (not the caller's). Runs /bin/sh. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "command.h"
#include "util.h"

static int sh(const char *script, char **out, char **err)
{
    char *argv[] = { RB_UNCONST("sh"), RB_UNCONST("-c"), RB_UNCONST(script), NULL };
    return command_run(argv, out, err);
}

static void test_success_and_output(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(sh("echo hello; echo noise >&2", &out, &err), 0);
    assert_string_equal(out, "hello\n");
    assert_null(err);
    free(out);
    /* without ret_out, stdout is discarded */
    assert_int_equal(sh("echo discarded", NULL, &err), 0);
    /* empty output is an empty string */
    out = NULL;
    assert_int_equal(sh("true", &out, NULL), 0);
    assert_string_equal(out, "");
    free(out);
    /* stdin is /dev/null: a reader gets EOF at once */
    out = NULL;
    assert_int_equal(sh("cat; echo done", &out, NULL), 0);
    assert_string_equal(out, "done\n");
    free(out);
}

static void test_failure_messages(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(sh("echo first >&2; echo 'the reason' >&2; exit 3", &out, &err), -ECHILD);
    assert_null(out); /* nothing returned on failure */
    assert_string_equal(err, "sh: exited with status 3: first; the reason");
    free(err);
    err = NULL;
    /* only the end of a long stderr */
    assert_int_equal(
        sh("i=0; while [ $i -lt 200 ]; do echo line$i >&2; i=$((i+1)); done; exit 1", NULL, &err),
        -ECHILD);
    assert_non_null(strstr(err, "line199"));
    assert_null(strstr(err, "line0;"));
    assert_true(strlen(err) < 2 * COMMAND_ERR_TAIL + 64);
    free(err);
    err = NULL;
    assert_int_equal(sh("kill -TERM $$", NULL, &err), -ECHILD);
    assert_string_equal(err, "sh: killed by signal 15");
    free(err);
    err = NULL;
    char *argv[] = { RB_UNCONST("rackboot-no-such-program"), NULL };
    assert_int_equal(command_run(argv, NULL, &err), -ENOENT);
    assert_non_null(strstr(err, "rackboot-no-such-program: cannot run it"));
    free(err);
    err = NULL;
    /* more than COMMAND_OUT_MAX on stdout */
    assert_int_equal(sh("head -c 1100000 /dev/zero", &out, &err), -E2BIG);
    assert_non_null(strstr(err, "more than 1 MiB"));
    free(err);
    err = NULL;
    assert_int_equal(command_run(NULL, NULL, &err), -EINVAL);
    free(err);
}

/* The caller ignores SIGPIPE (as the daemons do); the child must not, so
 * a tool writing into a closed pipe dies of it as from a shell. */
static void test_child_signals_default(void **state)
{
    (void)state;
    struct sigaction ign = { .sa_handler = SIG_IGN }, old;
    assert_int_equal(sigaction(SIGPIPE, &ign, &old), 0);
    char *argv[] = { RB_UNCONST("grep"), RB_UNCONST("^SigIgn:"), RB_UNCONST("/proc/self/status"),
                     NULL };
    char *out = NULL;
    assert_int_equal(command_run(argv, &out, NULL), 0);
    unsigned long long ignored = strtoull(out + strlen("SigIgn:"), NULL, 16);
    assert_int_equal(ignored & (1ULL << (SIGPIPE - 1)), 0);
    free(out);
    assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_and_output),
        cmocka_unit_test(test_failure_messages),
        cmocka_unit_test(test_child_signals_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

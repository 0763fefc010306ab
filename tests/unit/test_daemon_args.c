/* common/daemon_args: the daemons' shared command line. Each test parses a
 * command line as a made-up daemon and checks what it would do: run (with
 * which options), or exit with which status after writing what where. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon_args.h"
#include "util.h"
#include "version.h"

static const daemon_program prog = {
    .name = "rackboot-test",
    .about = "A daemon for tests.\n",
    .example = "deploy/examples/test.conf",
    .user_when = "once it is ready",
    .user_key = "[test] user",
    .check_what = "the test files",
    .signals = "Signals: none.\n",
};

/* The controller's kind: it also offers the store options. */
static const daemon_program store_prog = {
    .name = "rackboot-test",
    .about = "A daemon for tests.\n",
    .example = "deploy/examples/test.conf",
    .user_when = "once it is ready",
    .user_key = "[test] user",
    .check_what = "the test files",
    .signals = "Signals: none.\n",
    .store_options = true,
};

/* Which program parse() parses as. */
static const daemon_program *parsing = &prog;

typedef struct outcome {
    int status;
    daemon_args args;
    char *out;
    char *err;
} outcome;

/* Parses the NULL-terminated arguments after the program name. */
static outcome parse(const char *first, ...)
{
    char *argv[16] = { RB_UNCONST("rackboot-test") };
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        assert_true(argc < 15);
        argv[argc++] = RB_UNCONST(a);
    }
    va_end(ap);
    outcome o = { 0 };
    size_t n;
    FILE *out = open_memstream(&o.out, &n);
    FILE *err = open_memstream(&o.err, &n);
    assert_non_null(out);
    assert_non_null(err);
    o.args.config = "untouched";
    o.status = daemon_args_parse(parsing, argc, argv, out, err, &o.args);
    fclose(out);
    fclose(err);
    return o;
}

static void outcome_clear(outcome *o)
{
    free(o->out);
    free(o->err);
}

static const char usage_text[] =
    "Usage: rackboot-test --config FILE [--user NAME] [--check-config]\n"
    "\n"
    "A daemon for tests.\n"
    "\n"
    "  -c, --config FILE   configuration file (see deploy/examples/test.conf)\n"
    "  -u, --user NAME     once it is ready, run as this user (overrides\n"
    "                      [test] user)\n"
    "      --check-config  validate the test files, then exit\n"
    "  -h, --help          show this help\n"
    "  -V, --version       show the version\n"
    "\n"
    "Signals: none.\n";

static void test_run(void **state)
{
    outcome o = parse("--config", "a.conf", NULL);
    assert_int_equal(o.status, DAEMON_ARGS_RUN);
    assert_string_equal(o.args.config, "a.conf");
    assert_null(o.args.user);
    assert_false(o.args.check_config);
    assert_string_equal(o.out, "");
    assert_string_equal(o.err, "");
    outcome_clear(&o);

    o = parse("-u", "rackboot", "--check-config", "-c", "b.conf", NULL);
    assert_int_equal(o.status, DAEMON_ARGS_RUN);
    assert_string_equal(o.args.config, "b.conf");
    assert_string_equal(o.args.user, "rackboot");
    assert_true(o.args.check_config);
    outcome_clear(&o);

    o = parse("--config=c.conf", "--user=nobody", NULL);
    assert_int_equal(o.status, DAEMON_ARGS_RUN);
    assert_string_equal(o.args.config, "c.conf");
    assert_string_equal(o.args.user, "nobody");
    outcome_clear(&o);
}

static void test_help_and_version(void **state)
{
    outcome o = parse("--help", NULL);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.out, usage_text);
    assert_string_equal(o.err, "");
    assert_string_equal(o.args.config, "untouched"); /* *ret is not written */
    outcome_clear(&o);

    /* The first of -V and -h wins, before a later bad option is seen;
     * parsing again starts afresh even after a cluster of short options. */
    o = parse("-Vh", "--bogus", NULL);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.out, "rackboot-test " RACKBOOT_VERSION "\n");
    outcome_clear(&o);
    o = parse("-hV", NULL);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.out, usage_text);
    outcome_clear(&o);
}

/* Usage errors exit 2 with the usage on err, and nothing on out. */
static void test_usage_errors(void **state)
{
    static const char *const lines[][4] = {
        { NULL },                   /* no --config */
        { "--check-config", NULL }, /* still no --config */
        { "--config", "a.conf", "extra", NULL },
        { "--bogus", "--help", NULL }, /* getopt says why on stderr */
        { "--config", NULL },          /* no argument */
    };
    for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
        outcome o = parse(lines[i][0], lines[i][1], lines[i][2], lines[i][3]);
        assert_int_equal(o.status, 2);
        assert_string_equal(o.out, "");
        assert_string_equal(o.err, usage_text);
        outcome_clear(&o);
    }

    outcome o = parse("--config", "a.conf", "--user", "rack boot", NULL);
    assert_int_equal(o.status, 2);
    assert_string_equal(o.err, "rackboot-test: --user: \"rack boot\" is not a user name\n");
    outcome_clear(&o);
}

/* --migrate and --import-store: the controller's only; each excludes the
 * other runs that exit. */
static void test_store_options(void **state)
{
    outcome o = parse("--config", "a.conf", "--migrate", NULL);
    assert_int_equal(o.status, 2); /* not offered */
    assert_string_equal(o.err, usage_text);
    outcome_clear(&o);

    parsing = &store_prog;
    o = parse("--config", "a.conf", "--migrate", NULL);
    assert_int_equal(o.status, DAEMON_ARGS_RUN);
    assert_true(o.args.migrate);
    assert_null(o.args.import_store);
    assert_false(o.args.check_config);
    outcome_clear(&o);

    o = parse("-c", "a.conf", "--import-store", "sqlite:///var/lib/fleet.db", NULL);
    assert_int_equal(o.status, DAEMON_ARGS_RUN);
    assert_false(o.args.migrate);
    assert_string_equal(o.args.import_store, "sqlite:///var/lib/fleet.db");
    outcome_clear(&o);

    o = parse("-c", "a.conf", "--migrate", "--import-store", "sqlite:///f.db", NULL);
    assert_int_equal(o.status, 2);
    assert_string_equal(o.err, "rackboot-test: --check-config, --migrate and --import-store "
                               "exclude each other\n");
    outcome_clear(&o);
    o = parse("-c", "a.conf", "--migrate", "--check-config", NULL);
    assert_int_equal(o.status, 2);
    outcome_clear(&o);

    o = parse("--help", NULL);
    assert_int_equal(o.status, 0);
    assert_non_null(strstr(o.out, "rackboot-test --config FILE --migrate | --import-store URL\n"));
    assert_non_null(strstr(o.out, "      --migrate       bring the configured store's schema"));
    assert_non_null(strstr(o.out, "      --import-store URL\n"));
    outcome_clear(&o);
    parsing = &prog;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_store_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

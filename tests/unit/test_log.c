/* common/log: level parsing, field quoting and the network rate limit. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static void test_levels(void **state)
{
    log_level l;
    assert_int_equal(log_level_from_string("debug", &l), 0);
    assert_int_equal(l, LOG_LEVEL_DEBUG);
    assert_int_equal(log_level_from_string("WARNING", &l), 0);
    assert_int_equal(l, LOG_LEVEL_WARN);
    assert_int_equal(log_level_from_string("verbose", &l), -EINVAL);
    assert_string_equal(log_level_to_string(LOG_LEVEL_ERROR), "error");

    log_set_level(LOG_LEVEL_WARN);
    assert_false(log_enabled(LOG_LEVEL_INFO));
    assert_true(log_enabled(LOG_LEVEL_ERROR));
    log_set_level(LOG_LEVEL_INFO);
}

static void test_quote(void **state)
{
    char buf[64];
    assert_string_equal(log_quote(buf, sizeof(buf), "plain"), "plain");
    assert_string_equal(log_quote(buf, sizeof(buf), ""), "\"\"");
    assert_string_equal(log_quote(buf, sizeof(buf), "two words"), "\"two words\"");
    assert_string_equal(log_quote(buf, sizeof(buf), "a=b"), "\"a=b\"");
    assert_string_equal(log_quote(buf, sizeof(buf), "say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
    assert_string_equal(log_quote(buf, sizeof(buf), "\x01"), "\"\\x01\"");

    /* Truncation keeps the closing quote and the NUL inside the buffer. */
    char small[8];
    log_quote(small, sizeof(small), "a long value with spaces");
    assert_int_equal(strlen(small), 7);
    assert_int_equal(small[0], '"');
    assert_int_equal(small[6], '"');
}

static void test_ratelimit(void **state)
{
    log_ratelimit rl = LOG_RATELIMIT_INIT(1000, 3);
    uint64_t suppressed = 99;
    assert_true(log_ratelimit_ok(&rl, 5000, &suppressed));
    assert_int_equal(suppressed, 0);
    assert_true(log_ratelimit_ok(&rl, 5001, NULL));
    assert_true(log_ratelimit_ok(&rl, 5002, NULL));
    assert_false(log_ratelimit_ok(&rl, 5003, NULL));
    assert_false(log_ratelimit_ok(&rl, 5999, NULL));
    /* A new window reports the two lines that were dropped. */
    assert_true(log_ratelimit_ok(&rl, 6000, &suppressed));
    assert_int_equal(suppressed, 2);
    assert_true(log_ratelimit_ok(&rl, 6001, &suppressed));
    assert_int_equal(suppressed, 0);
}

/* Splits `body` and checks the free text and each "key", "unquoted value". */
static void check_split(const char *body, const char *text, size_t n, const char *const *kv)
{
    log_field f[8];
    size_t got = 99;
    size_t len = log_fields_split(body, f, 8, &got);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(body, text, len);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        char v[64];
        assert_int_equal(f[i].key_len, strlen(kv[2 * i]));
        assert_memory_equal(f[i].key, kv[2 * i], f[i].key_len);
        size_t vlen = log_field_unquote(&f[i], v, sizeof(v));
        assert_int_equal(vlen, strlen(kv[2 * i + 1]));
        assert_string_equal(v, kv[2 * i + 1]);
    }
}

static void test_split(void **state)
{
    check_split("dhcp6 bound mac=52:54:00:12:34:56 addr=2001:db8::10", "dhcp6 bound", 2,
                (const char *const[]){ "mac", "52:54:00:12:34:56", "addr", "2001:db8::10" });
    /* No fields at all, and only fields. */
    check_split("listening on all addresses", "listening on all addresses", 0, NULL);
    check_split("a=1 b=2", "", 2, (const char *const[]){ "a", "1", "b", "2" });
    check_split("", "", 0, NULL);
    /* log_quote()'s escapes come undone: an escaped quote, a blank, '=' and
     * a backslash inside the quotes belong to the value. */
    char q[128];
    char body[256];
    snprintf(body, sizeof(body), "profile bad err=%s path=/x",
             log_quote(q, sizeof(q), "say \"a=b\" \\ now\n"));
    check_split(body, "profile bad", 2,
                (const char *const[]){ "err", "say \"a=b\" \\ now\n", "path", "/x" });
    check_split("x k=\"\\x41\\x7\" y=\"\"", "x", 2, (const char *const[]){ "k", "Ax7", "y", "" });
    /* A key=value word followed by free text is free text, and so is all
     * before it; only the run that reaches the end is fields. */
    check_split("set mode=fast then rebooted host=web17", "set mode=fast then rebooted", 1,
                (const char *const[]){ "host", "web17" });
    check_split("retry n=3 (giving up)", "retry n=3 (giving up)", 0, NULL);
    /* Not a field: a key must start with a letter or '_', a quoted value
     * must close and end its word. */
    check_split("ratio 1=2 =x k=\"open", "ratio 1=2 =x k=\"open", 0, NULL);
    check_split("a k=\"v\"x", "a k=\"v\"x", 0, NULL);
    /* Blanks: several between, trailing ones, an empty bare value. */
    check_split("done  a=1   empty=  ", "done", 2, (const char *const[]){ "a", "1", "empty", "" });

    /* More fields than room: the first become free text. */
    log_field f[2];
    size_t n;
    const char *many = "m a=1 b=2 c=3";
    size_t len = log_fields_split(many, f, 2, &n);
    assert_int_equal(n, 2);
    assert_int_equal(len, strlen("m a=1"));
    assert_memory_equal(f[0].key, "b", 1);
}

/* Runs `fn` with stderr sent to a fresh file; returns what it wrote. */
static char *capture_stderr(void (*fn)(void), bool set_stream)
{
    char path[] = "/tmp/test_log.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    if (set_stream) {
        struct stat st;
        char v[64];
        assert_int_equal(fstat(fd, &st), 0);
        snprintf(v, sizeof(v), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
        setenv("JOURNAL_STREAM", v, 1);
    }
    fn();
    fflush(stderr);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    static char out[4096];
    ssize_t got = pread(fd, out, sizeof(out) - 1, 0);
    assert_true(got >= 0);
    out[got] = '\0';
    close(fd);
    return out;
}

static void log_four(void)
{
    log_set_level(LOG_LEVEL_DEBUG);
    log_set_journal(log_stderr_is_journal());
    log_debug("d k=1");
    log_info("i");
    log_warn("w");
    log_error("e x=\"y z\"");
    log_set_journal(false);
    log_set_level(LOG_LEVEL_INFO);
}

static void test_journal(void **state)
{
    log_set_ident("test");
    /* stderr is the stream JOURNAL_STREAM names: priorities, no timestamps. */
    char *out = capture_stderr(log_four, true);
    assert_string_equal(out, "<7>debug test: d k=1\n"
                             "<6>info test: i\n"
                             "<4>warn test: w\n"
                             "<3>error test: e x=\"y z\"\n");

    /* Set, but naming another file (a stderr redirected by hand), malformed,
     * or unset: the text line as always, timestamp first. */
    const char *others[] = { "1:1", "12", "1:2:3", NULL };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        if (others[i]) {
            setenv("JOURNAL_STREAM", others[i], 1);
        } else {
            unsetenv("JOURNAL_STREAM");
        }
        out = capture_stderr(log_four, false);
        const char *want[] = { " debug test: d k=1\n", " info test: i\n", " warn test: w\n",
                               " error test: e x=\"y z\"\n" };
        const char *line = out;
        for (size_t j = 0; j < 4; j++) {
            /* 2026-11-25T03:34:17.123Z, then the line of today */
            assert_true(strlen(line) > 24);
            assert_int_equal(line[4], '-');
            assert_int_equal(line[10], 'T');
            assert_int_equal(line[23], 'Z');
            assert_memory_equal(line + 24, want[j], strlen(want[j]));
            line += 24 + strlen(want[j]);
        }
        assert_string_equal(line, "");
    }
    unsetenv("JOURNAL_STREAM");
    log_set_ident(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),    cmocka_unit_test(test_quote),
        cmocka_unit_test(test_ratelimit), cmocka_unit_test(test_split),
        cmocka_unit_test(test_journal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

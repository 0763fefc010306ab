/* common/ini: the grammar the daemons' config files use, every error with
 * the right line, and the things inih gets wrong for us (inline ';'
 * comments, 200-byte lines, no line numbers). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "diag.h"
#include "fileio.h"
#include "ini.h"

typedef struct result {
    int r;
    ini_doc *doc;
    diag *d;
} result;

static result parse_n(const char *text, size_t len)
{
    result res = { .d = diag_new() };
    assert_non_null(res.d);
    res.r = ini_parse("test.conf", text, len, res.d, &res.doc);
    return res;
}

static result parse(const char *text)
{
    return parse_n(text, strlen(text));
}

static void result_clear(result *res)
{
    res->doc = ini_doc_free(res->doc);
    res->d = diag_free(res->d);
}

static const char *value_of(const ini_doc *doc, const char *section, const char *key)
{
    const ini_section *s = ini_doc_find_section(doc, section);
    assert_non_null(s);
    const ini_entry *e = ini_section_find(s, key);
    return e ? e->value : NULL;
}

static void test_basic(void **state)
{
    result res = parse("[agent]\n"
                       "listen = [::]:69\n"
                       "  cache.dir=/var/cache/rackboot  \n"
                       "\tlog-level\t=\tdebug\t\n"
                       "empty =\n"
                       "file.ks_cfg = x\n");
    assert_int_equal(res.r, 0);
    assert_int_equal(diag_count(res.d), 0);
    assert_string_equal(res.doc->path, "test.conf");
    assert_int_equal(res.doc->n_sections, 1);
    const ini_section *s = &res.doc->sections[0];
    assert_string_equal(s->name, "agent");
    assert_int_equal(s->line, 1);
    assert_int_equal(s->n_entries, 5);
    assert_string_equal(s->entries[0].key, "listen");
    assert_string_equal(s->entries[0].value, "[::]:69");
    assert_int_equal(s->entries[0].line, 2);
    assert_string_equal(s->entries[1].key, "cache.dir");
    assert_string_equal(s->entries[1].value, "/var/cache/rackboot");
    assert_string_equal(s->entries[2].key, "log-level");
    assert_string_equal(s->entries[2].value, "debug");
    assert_int_equal(s->entries[2].line, 4);
    assert_string_equal(s->entries[3].value, "");
    assert_string_equal(s->entries[4].key, "file.ks_cfg");
    assert_null(ini_section_find(s, "missing"));
    assert_null(ini_doc_find_section(res.doc, "Agent"));
    result_clear(&res);
}

static void test_section_names_with_spaces(void **state)
{
    result res = parse("[host web17]\n"
                       "mac = 52:54:00:12:34:56\n"
                       "[  profile el9  ]\n"
                       "kernel = vmlinuz\n"
                       "[agent]\n");
    assert_int_equal(res.r, 0);
    assert_int_equal(res.doc->n_sections, 3);
    assert_string_equal(res.doc->sections[0].name, "host web17");
    assert_string_equal(res.doc->sections[1].name, "profile el9");
    assert_int_equal(res.doc->sections[1].line, 3);
    assert_string_equal(value_of(res.doc, "profile el9", "kernel"), "vmlinuz");
    /* A section may be empty. */
    assert_int_equal(res.doc->sections[2].n_entries, 0);

    const char *kind, *arg;
    size_t kind_len;
    assert_int_equal(ini_section_split(res.doc->sections[0].name, &kind, &kind_len, &arg), 0);
    assert_int_equal(kind_len, 4);
    assert_memory_equal(kind, "host", 4);
    assert_string_equal(arg, "web17");
    assert_int_equal(ini_section_split("agent", &kind, &kind_len, &arg), 0);
    assert_int_equal(kind_len, 5);
    assert_null(arg);
    assert_int_equal(ini_section_split("host \t web 17", &kind, &kind_len, &arg), 0);
    assert_int_equal(kind_len, 4);
    assert_string_equal(arg, "web 17");
    assert_int_equal(ini_section_split("", &kind, &kind_len, &arg), -EINVAL);
    result_clear(&res);
}

static void test_url_with_sha256_kept_whole(void **state)
{
    /* inih would cut this at ';' or treat "sha256=" oddly; we keep it all. */
    result res = parse("[profile el9]\n"
                       "kernel = http://[2001:db8::1]/vmlinuz sha256="
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
                       "initrd = http://[2001:db8::1]/initrd.img;v=2 # not a comment\n"
                       "url = http://example.com/a#frag\n");
    assert_int_equal(res.r, 0);
    assert_string_equal(value_of(res.doc, "profile el9", "kernel"),
                        "http://[2001:db8::1]/vmlinuz "
                        "sha256=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_string_equal(value_of(res.doc, "profile el9", "initrd"),
                        "http://[2001:db8::1]/initrd.img;v=2 # not a comment");
    assert_string_equal(value_of(res.doc, "profile el9", "url"), "http://example.com/a#frag");
    result_clear(&res);
}

static void test_comments_and_blank_lines(void **state)
{
    result res = parse("# top comment\n"
                       "; also a comment\n"
                       "\n"
                       "   \t\n"
                       "[a]\n"
                       "  # indented comment = not a key\n"
                       "\t; indented ; comment\n"
                       "k = v\n");
    assert_int_equal(res.r, 0);
    assert_int_equal(res.doc->n_sections, 1);
    assert_int_equal(res.doc->sections[0].n_entries, 1);
    assert_int_equal(res.doc->sections[0].entries[0].line, 8);
    result_clear(&res);
}

static void test_crlf_and_no_final_newline(void **state)
{
    result res = parse("[a]\r\nk = v\r\n\r\nlast = end");
    assert_int_equal(res.r, 0);
    assert_string_equal(value_of(res.doc, "a", "k"), "v");
    assert_string_equal(value_of(res.doc, "a", "last"), "end");
    assert_int_equal(ini_section_find(&res.doc->sections[0], "last")->line, 4);
    result_clear(&res);
}

static void test_long_line(void **state)
{
    size_t vlen = 100 * 1024;
    size_t cap = vlen + 64;
    char *text = malloc(cap);
    assert_non_null(text);
    int n = snprintf(text, cap, "[a]\nbig = ");
    memset(text + n, 'x', vlen);
    strcpy(text + n + vlen, "\nafter = 1\n");

    result res = parse(text);
    assert_int_equal(res.r, 0);
    const char *v = value_of(res.doc, "a", "big");
    assert_int_equal(strlen(v), vlen);
    assert_int_equal(v[vlen - 1], 'x');
    assert_string_equal(value_of(res.doc, "a", "after"), "1");
    result_clear(&res);
    free(text);
}

static void expect_one_error(const char *text, unsigned line, const char *message)
{
    result res = parse(text);
    assert_int_equal(res.r, -EBADMSG);
    assert_null(res.doc);
    assert_int_equal(diag_count(res.d), 1);
    char want[256];
    snprintf(want, sizeof(want), "test.conf:%u: %s", line, message);
    assert_string_equal(diag_get(res.d, 0), want);
    result_clear(&res);
}

static void test_errors(void **state)
{
    expect_one_error("k = v\n", 1, "key outside of any [section]");
    expect_one_error("# c\n\nk = v\n[a]\n", 3, "key outside of any [section]");
    expect_one_error("[a]\njust words\n", 2, "expected 'key = value' or '[section]'");
    expect_one_error("[a]\n = v\n", 2, "empty key before '='");
    expect_one_error("[a]\nmy key = v\n", 2, "invalid character ' ' in key");
    expect_one_error("[a]\nk\"ey = v\n", 2, "invalid character '\"' in key");
    expect_one_error("[a]\nk\x01 = v\n", 2, "invalid byte 0x01 in key");
    expect_one_error("[a]\n[host web17\n", 2, "unterminated section header, expected ']'");
    expect_one_error("[a] # comment\n", 1, "unexpected text after ']'");
    expect_one_error("[]\n", 1, "empty section name");
    expect_one_error("[  ]\n", 1, "empty section name");
    expect_one_error("[a\x1b]\n", 1, "control character 0x1b in section name");
}

static void test_nul_byte_rejected(void **state)
{
    static const char text[] = "[a]\nk = v\0alue\nok = 1\n";
    result res = parse_n(text, sizeof(text) - 1);
    assert_int_equal(res.r, -EBADMSG);
    assert_null(res.doc);
    assert_int_equal(diag_count(res.d), 1);
    assert_string_equal(diag_get(res.d, 0), "test.conf:2: NUL byte in line");
    result_clear(&res);
}

static void test_opaque_bytes_in_values(void **state)
{
    /* Invalid UTF-8 and a BOM-less Latin-1 byte pass through untouched. */
    result res = parse("[a]\nk = caf\xe9 \xff\xfe\n");
    assert_int_equal(res.r, 0);
    assert_string_equal(value_of(res.doc, "a", "k"), "caf\xe9 \xff\xfe");
    result_clear(&res);

    /* A UTF-8 BOM (Windows editors) does not turn "[a]" into junk. */
    res = parse("\xef\xbb\xbf[a]\nk = v\n");
    assert_int_equal(res.r, 0);
    assert_string_equal(value_of(res.doc, "a", "k"), "v");
    result_clear(&res);
}

static void test_all_errors_reported(void **state)
{
    result res = parse("oops = 1\n"         /* 1: outside section */
                       "[agent]\n"          /* 2 */
                       "listen = [::]:69\n" /* 3 */
                       "no equals here\n"   /* 4 */
                       "= 5\n"              /* 5 */
                       "[host web17\n"      /* 6: unterminated */
                       "mac = 1\n"          /* 7: dropped, no cascade */
                       "bad key = 1\n"      /* 8: still a syntax error */
                       "[host web18]\n"     /* 9 */
                       "mac = 2\n"          /* 10 */
                       "[x] y\n");          /* 11 */
    assert_int_equal(res.r, -EBADMSG);
    assert_null(res.doc);
    const char *want[] = {
        "test.conf:1: key outside of any [section]",
        "test.conf:4: expected 'key = value' or '[section]'",
        "test.conf:5: empty key before '='",
        "test.conf:6: unterminated section header, expected ']'",
        "test.conf:8: invalid character ' ' in key",
        "test.conf:11: unexpected text after ']'",
    };
    assert_int_equal(diag_count(res.d), sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_string_equal(diag_get(res.d, i), want[i]);
    }
    result_clear(&res);

    /* Without a diag the result is the same. */
    ini_doc *doc = (ini_doc *)(uintptr_t)1;
    assert_int_equal(ini_parse(NULL, "x\n", 2, NULL, &doc), -EBADMSG);
    assert_true(doc == (ini_doc *)(uintptr_t)1);
}

static void test_broken_first_header_no_cascade(void **state)
{
    /* One typo in the first header is one error, not one "outside any
     * section" per key below it. */
    expect_one_error("[host web17\n"
                     "mac = 52:54:00:12:34:56\n"
                     "profile = el9\n",
                     1, "unterminated section header, expected ']'");
    /* The next good header ends the skipping. */
    result res = parse("[]\nk = 1\n[a]\nk = 2\n[b] x\nk = 3\n");
    assert_int_equal(res.r, -EBADMSG);
    assert_int_equal(diag_count(res.d), 2);
    assert_string_equal(diag_get(res.d, 0), "test.conf:1: empty section name");
    assert_string_equal(diag_get(res.d, 1), "test.conf:5: unexpected text after ']'");
    result_clear(&res);
}

static void test_empty_inputs(void **state)
{
    result res = parse_n(NULL, 0);
    assert_int_equal(res.r, 0);
    assert_non_null(res.doc);
    assert_int_equal(res.doc->n_sections, 0);
    result_clear(&res);

    res = parse("\n\n# only comments\n");
    assert_int_equal(res.r, 0);
    assert_int_equal(res.doc->n_sections, 0);
    result_clear(&res);
}

static void test_repeated_sections_and_keys(void **state)
{
    result res = parse("[host a]\n"
                       "mac = 1\n"
                       "mac = 2\n"
                       "[host b]\n"
                       "mac = 3\n"
                       "[host a]\n"
                       "mac = 4\n");
    assert_int_equal(res.r, 0);
    assert_int_equal(res.doc->n_sections, 3);
    assert_string_equal(res.doc->sections[0].name, "host a");
    assert_string_equal(res.doc->sections[2].name, "host a");
    assert_int_equal(res.doc->sections[2].line, 6);
    /* Find returns the first section; the caller sees the second by walking. */
    const ini_section *s = ini_doc_find_section(res.doc, "host a");
    assert_ptr_equal(s, &res.doc->sections[0]);
    assert_int_equal(s->n_entries, 2);
    const ini_entry *e = ini_section_find(s, "mac");
    assert_string_equal(e->value, "2");
    assert_int_equal(e->line, 3);
    assert_string_equal(ini_section_find(&res.doc->sections[2], "mac")->value, "4");
    result_clear(&res);
}

static void test_many_sections_and_entries(void **state)
{
    /* Enough to make every array grow several times. */
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (unsigned h = 0; h < 500; h++) {
        len += (size_t)snprintf(text + len, cap - len, "[host h%u]\n", h);
        for (unsigned k = 0; k < 20; k++) {
            len += (size_t)snprintf(text + len, cap - len, "k%u = %u.%u\n", k, h, k);
        }
    }
    result res = parse_n(text, len);
    assert_int_equal(res.r, 0);
    assert_int_equal(res.doc->n_sections, 500);
    assert_int_equal(res.doc->sections[499].n_entries, 20);
    assert_string_equal(value_of(res.doc, "host h321", "k17"), "321.17");
    assert_int_equal(ini_section_find(ini_doc_find_section(res.doc, "host h1"), "k0")->line, 23);
    result_clear(&res);
    free(text);
}

static void test_too_big(void **state)
{
    diag *d = diag_new();
    ini_doc *doc = NULL;
    /* The size check comes before any byte is read, so a huge length over a
     * tiny buffer is safe to pass here. */
    assert_int_equal(ini_parse("big.conf", "", INI_MAX_FILE + 1u, d, &doc), -EFBIG);
    assert_null(doc);
    assert_int_equal(diag_count(d), 1);
    diag_free(d);
}

static void test_load_file(void **state)
{
    char dir[] = "/tmp/test_ini.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/agent.conf", dir);

    diag *d = diag_new();
    ini_doc *doc = NULL;
    assert_int_equal(ini_load_file(path, d, &doc), -ENOENT);
    assert_null(doc);
    assert_int_equal(diag_count(d), 1);
    char want[256];
    snprintf(want, sizeof(want), "%s: cannot read: %s", path, strerror(ENOENT));
    assert_string_equal(diag_get(d, 0), want);
    d = diag_free(d);

    static const char text[] = "[agent]\nlisten = [::]:69\n";
    assert_int_equal(fileio_write_atomic(path, text, sizeof(text) - 1, 0644), 0);
    d = diag_new();
    assert_int_equal(ini_load_file(path, d, &doc), 0);
    assert_string_equal(doc->path, path);
    assert_string_equal(value_of(doc, "agent", "listen"), "[::]:69");
    doc = ini_doc_free(doc);
    diag_free(d);

    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_section_names_with_spaces),
        cmocka_unit_test(test_url_with_sha256_kept_whole),
        cmocka_unit_test(test_comments_and_blank_lines),
        cmocka_unit_test(test_crlf_and_no_final_newline),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_nul_byte_rejected),
        cmocka_unit_test(test_opaque_bytes_in_values),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_broken_first_header_no_cascade),
        cmocka_unit_test(test_empty_inputs),
        cmocka_unit_test(test_repeated_sections_and_keys),
        cmocka_unit_test(test_many_sections_and_entries),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

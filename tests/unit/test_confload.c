/* common/confload: the table-driven configuration loader both daemons use.
 * A small made-up daemon ("[svc]", "[net]", "[extra]") exercises each key
 * type, the messages a user reads for each bad value (with file and line),
 * required keys, unique sections and the daemon's hooks. */
#include <arpa/inet.h>
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

#include "confload.h"
#include "parse.h"
#include "fileio.h"
#include "log.h"
#include "util.h"

typedef struct svc_config {
    char *name;
    char *dir;
    char *url;
    char *user;
    bool verbose;
    uint16_t port;
    uint32_t workers;
    uint64_t big;
    uint32_t buffer;
    uint64_t cache;
    uint64_t timeout_ms;
    struct in6_addr addr;
    bool has_addr;
    struct sockaddr_in6 listen;
    log_level level;
    char *words[3];
    size_t n_words;
    struct in6_addr servers[2];
    size_t n_servers;
    int answer;
    /* What the hooks saw. */
    unsigned net_sections;
    unsigned finished;
    unsigned svc_line;
    unsigned net_line;
} svc_config;

static char dir[64];
static char path[96];

static int setup(void **state)
{
    strcpy(dir, "/tmp/test_confload.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/svc.conf", dir);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    rmdir(dir);
    return 0;
}

static void check_name(confload *l, const ini_entry *e, const char *item)
{
    if (strchr(item, '!')) {
        confload_problem(l, e->line, "%s: \"%s\" has a '!'", e->key, item);
    }
}

static void parse_answer(confload *l, const ini_entry *e, void *obj)
{
    svc_config *c = obj;
    if (!streq(e->value, "42")) {
        confload_problem(l, e->line, "answer: not the answer: \"%s\"", e->value);
        return;
    }
    c->answer = 42;
}

static void end_net(confload *l, const ini_section *s, void *obj)
{
    svc_config *c = obj;
    c->net_sections++;
}

static void finish(confload *l, void *obj)
{
    svc_config *c = obj;
    c->finished++;
    c->svc_line = confload_section_line(l, "svc");
    c->net_line = confload_section_line(l, "net");
    assert_string_equal(confload_file(l), path);
    if (c->workers == 13) {
        confload_problem(l, 0, "workers: 13 is unlucky");
    }
}

#define AT(member) CONFLOAD_FIELD(svc_config, member)

static const confload_key svc_keys[] = {
    { "name", CONFLOAD_STRING, AT(name), .required = true, .check = check_name },
    { "dir", CONFLOAD_PATH, AT(dir), .required = true },
    { "url", CONFLOAD_URL, AT(url), .prefix = "tls+tcp://" },
    { "user", CONFLOAD_USER, AT(user) },
    { "verbose", CONFLOAD_BOOL, AT(verbose) },
    { "log_level", CONFLOAD_LOG_LEVEL, AT(level) },
};

static const confload_key net_keys[] = {
    { "port", CONFLOAD_UINT, AT(port), .min = 1, .max = 65535, .expect = "1-65535" },
    { "workers", CONFLOAD_UINT, AT(workers), .min = 1, .max = 64 },
    { "big", CONFLOAD_UINT, AT(big), .max = UINT64_MAX },
    { "buffer", CONFLOAD_SIZE, AT(buffer), .min = 1024, .max = 1u << 20,
      .expect = "a size such as 8K", .range = "out of range [1K, 1M]" },
    { "cache", CONFLOAD_SIZE, AT(cache), .max = UINT64_MAX },
    { "timeout", CONFLOAD_DURATION_MS, AT(timeout_ms), .max = 3600 },
    { "address", CONFLOAD_IPV6, AT(addr), .flag = CONFLOAD_FLAG(svc_config, has_addr) },
    { "listen", CONFLOAD_LISTEN, AT(listen), .port = 8080 },
};

static const confload_key extra_keys[] = {
    { "words", CONFLOAD_WORDS, AT(words), .count_offset = offsetof(svc_config, n_words), .max = 3,
      .check = check_name },
    { "servers", CONFLOAD_IPV6_LIST, AT(servers), .count_offset = offsetof(svc_config, n_servers),
      .max = 2 },
    { "answer", CONFLOAD_CUSTOM, .parse = parse_answer },
};

static const confload_section sections[] = {
    { "svc", svc_keys, ARRAY_SIZE(svc_keys), .unique = true },
    { "net", net_keys, ARRAY_SIZE(net_keys), .end = end_net },
    { "extra", extra_keys, ARRAY_SIZE(extra_keys) },
};

static const confload_schema schema = { sections, ARRAY_SIZE(sections), finish };

static void svc_config_clear(svc_config *c)
{
    free(c->name);
    free(c->dir);
    free(c->url);
    free(c->user);
    for (size_t i = 0; i < c->n_words; i++) {
        free(c->words[i]);
    }
    memset(c, 0, sizeof(*c));
}

/* Loads `text` as the config file into *c, which starts from the
 * defaults; *ret_d gets every problem. */
static int load(const char *text, svc_config *c, diag **ret_d)
{
    assert_int_equal(fileio_write_atomic(path, text, strlen(text), 0644), 0);
    *c = (svc_config){ .port = 80, .workers = 4, .level = LOG_LEVEL_INFO };
    *ret_d = diag_new();
    assert_non_null(*ret_d);
    return confload_load(path, &schema, c, *ret_d);
}

/* The diag holds exactly `want` (entries without the file name, in order:
 * ":LINE: message" or ": message"). */
static void expect_problems(const diag *d, const char *const *want, size_t n)
{
    for (size_t i = 0; i < diag_count(d) || i < n; i++) {
        const char *got = diag_get(d, i);
        if (i >= n || !got) {
            fail_msg("problem %zu: got \"%s\", want \"%s\"", i, got ? got : "(none)",
                     i < n ? want[i] : "(none)");
        }
        assert_true(strncmp(got, path, strlen(path)) == 0);
        assert_string_equal(got + strlen(path), want[i]);
    }
}

static void test_every_type(void **state)
{
    svc_config c;
    diag *d;
    int r = load("[svc]\n"
                 "name = web\n"
                 "dir = data/web\n"
                 "url = tls+tcp://[::1]:7443\n"
                 "user = rackboot\n"
                 "verbose = on\n"
                 "log_level = debug\n"
                 "[net]\n"
                 "port = 65535\n"
                 "workers = 64\n"
                 "big = 18446744073709551615\n"
                 "buffer = 16K\n"
                 "cache = 2T\n"
                 "timeout = 90\n"
                 "address = [2001:db8::1]\n"
                 "listen = [2001:db8::2]\n"
                 "[extra]\n"
                 "words = a  b\tc\n"
                 "servers = 2001:db8::53 2001:db8::54\n"
                 "answer = 42\n",
                 &c, &d);
    diag_print(d, stderr);
    assert_int_equal(r, 0);
    assert_int_equal(diag_count(d), 0);
    assert_string_equal(c.name, "web");
    char want[160];
    snprintf(want, sizeof(want), "%s/data/web", dir);
    assert_string_equal(c.dir, want); /* relative to the file's directory */
    assert_string_equal(c.url, "tls+tcp://[::1]:7443");
    assert_string_equal(c.user, "rackboot");
    assert_true(c.verbose);
    assert_int_equal(c.level, LOG_LEVEL_DEBUG);
    assert_int_equal(c.port, 65535);
    assert_int_equal(c.workers, 64);
    assert_true(c.big == UINT64_MAX);
    assert_int_equal(c.buffer, 16384);
    assert_true(c.cache == 2ULL << 40);
    assert_true(c.timeout_ms == 90000);
    struct in6_addr a;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &a), 1);
    assert_memory_equal(&c.addr, &a, 16);
    assert_true(c.has_addr);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::2", &a), 1);
    assert_memory_equal(&c.listen.sin6_addr, &a, 16);
    assert_int_equal(ntohs(c.listen.sin6_port), 8080); /* the key's default port */
    assert_int_equal(c.n_words, 3);
    assert_string_equal(c.words[0], "a");
    assert_string_equal(c.words[2], "c");
    assert_int_equal(c.n_servers, 2);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::54", &a), 1);
    assert_memory_equal(&c.servers[1], &a, 16);
    assert_int_equal(c.answer, 42);
    assert_int_equal(c.net_sections, 1);
    assert_int_equal(c.finished, 1);
    assert_int_equal(c.svc_line, 1);
    assert_int_equal(c.net_line, 8);
    svc_config_clear(&c);
    diag_free(d);
}

/* Keys not in the file keep the daemon's defaults; an absolute path stays. */
static void test_defaults_stay(void **state)
{
    svc_config c;
    diag *d;
    assert_int_equal(load("[svc]\nname = a\ndir = /abs\n", &c, &d), 0);
    assert_string_equal(c.dir, "/abs");
    assert_int_equal(c.port, 80);
    assert_int_equal(c.workers, 4);
    assert_int_equal(c.level, LOG_LEVEL_INFO);
    assert_false(c.has_addr);
    assert_null(c.url);
    assert_int_equal(c.net_sections, 0);
    assert_int_equal(c.net_line, 0);
    assert_int_equal(c.finished, 1);
    svc_config_clear(&c);
    diag_free(d);
}

/* Each bad value in the words a user reads, at its line, all at once. */
static void test_bad_values(void **state)
{
    svc_config c;
    diag *d;
    int r = load("[svc]\n"                         /* 1 */
                 "name = ok\n"                     /* 2 */
                 "dir =\n"                         /* 3 */
                 "url = tcp://x\n"                 /* 4 */
                 "url = tls+tcp://\n"              /* 5 */
                 "user = -x\n"                     /* 6 */
                 "verbose = maybe\n"               /* 7 */
                 "log_level = loud\n"              /* 8 */
                 "colour = blue\n"                 /* 9 */
                 "[net]\n"                         /* 10 */
                 "port = 0\n"                      /* 11 */
                 "port = http\n"                   /* 12 */
                 "workers = 65\n"                  /* 13 */
                 "workers = -1\n"                  /* 14 */
                 "buffer = 100\n"                  /* 15 */
                 "buffer = big\n"                  /* 16 */
                 "buffer = 99999999999T\n"         /* 17 */
                 "timeout = 3601\n"                /* 18 */
                 "address = fe80::zz\n"            /* 19 */
                 "listen = nowhere\n"              /* 20 */
                 "[extra]\n"                       /* 21 */
                 "words = a b c d\n"               /* 22 */
                 "words = a b!\n"                  /* 23 */
                 "servers = 2001:db8::1 nope\n"    /* 24 */
                 "servers = ::1 ::2 ::3\n"         /* 25 */
                 "answer = 41\n"                   /* 26 */
                 "[mystery]\n"                     /* 27 */
                 "key = ignored, the section is\n" /* 28 */
                 "[net]\n"                         /* 29 */
                 "workers = 13\n",                 /* 30 */
                 &c, &d);
    assert_int_equal(r, -EINVAL);
    static const char *const want[] = {
        ":3: dir: empty value",
        ":4: url: expected a URL starting with tls+tcp://, not \"tcp://x\"",
        ":5: url: expected a URL starting with tls+tcp://, not \"tls+tcp://\"",
        ":6: user: \"-x\" is not a user name",
        ":7: verbose: expected yes or no, not \"maybe\"",
        ":8: log_level: expected debug, info, warn or error, not \"loud\"",
        ":9: unknown key \"colour\" in [svc]",
        ":11: port: expected 1-65535, not \"0\"",
        ":12: port: expected 1-65535, not \"http\"",
        ":13: workers: 65 is out of range [1, 64]",
        ":14: workers: not a number: \"-1\"",
        ":15: buffer: 100 is out of range [1K, 1M]",
        ":16: buffer: expected a size such as 8K, not \"big\"",
        ":17: buffer: expected a size such as 8K, not \"99999999999T\"",
        ":18: timeout: 3601 is out of range [0, 3600]",
        ":19: address: not an IPv6 address: \"fe80::zz\"",
        ":20: listen: not an address to listen on: \"nowhere\"",
        ":22: words: more than 3",
        ":23: words: \"b!\" has a '!'",
        ":24: servers: not an IPv6 address: \"nope\"",
        ":25: servers: more than 2",
        ":26: answer: not the answer: \"41\"",
        ":27: unknown section [mystery]",
        /* required keys, at their section's line */
        ":1: [svc] dir is required",
        /* the daemon's own check, after every section */
        ": workers: 13 is unlucky",
    };
    expect_problems(d, want, ARRAY_SIZE(want));
    /* Bad values leave the defaults; a bad line after a good one keeps the
     * good one. */
    assert_int_equal(c.port, 80);
    assert_false(c.has_addr);
    assert_int_equal(c.n_servers, 1);
    /* [net] is not unique: both were read, and its hook ran for each. */
    assert_int_equal(c.net_sections, 2);
    assert_int_equal(c.workers, 13);
    svc_config_clear(&c);
    diag_free(d);
}

/* A required key counts as given when a line stored a value, even one a
 * check refused (one problem per mistake); an empty value is not one. */
static void test_required(void **state)
{
    svc_config c;
    diag *d;
    assert_int_equal(load("[net]\nport = 1\n", &c, &d), -EINVAL);
    static const char *const absent[] = {
        /* no [svc] at all: the problem is the file's */
        ": [svc] name is required",
        ": [svc] dir is required",
    };
    expect_problems(d, absent, ARRAY_SIZE(absent));
    svc_config_clear(&c);
    diag_free(d);

    assert_int_equal(load("[extra]\n[svc]\nname = a!\nname =\ndir = d\n", &c, &d), -EINVAL);
    static const char *const refused[] = {
        ":3: name: \"a!\" has a '!'",
        ":4: name: empty value",
    };
    expect_problems(d, refused, ARRAY_SIZE(refused));
    svc_config_clear(&c);
    diag_free(d);

    assert_int_equal(load("[svc]\nname =\ndir = d\n", &c, &d), -EINVAL);
    static const char *const empty[] = {
        ":2: name: empty value",
        ":1: [svc] name is required",
    };
    expect_problems(d, empty, ARRAY_SIZE(empty));
    svc_config_clear(&c);
    diag_free(d);
}

/* A later line overrides an earlier one; a unique section given twice is
 * reported, and read all the same. */
static void test_repeats(void **state)
{
    svc_config c;
    diag *d;
    assert_int_equal(load("[svc]\nname = a\ndir = /a\nname = b\n[svc]\ndir = /b\n", &c, &d),
                     -EINVAL);
    static const char *const want[] = {
        ":5: section [svc] repeated (first at line 1)",
    };
    expect_problems(d, want, ARRAY_SIZE(want));
    assert_string_equal(c.name, "b");
    assert_string_equal(c.dir, "/b");
    assert_int_equal(c.svc_line, 1);
    svc_config_clear(&c);
    diag_free(d);

    assert_int_equal(load("[svc]\nname = a\ndir = /a\n[extra]\nwords = x y\nwords = z\n", &c, &d),
                     0);
    assert_int_equal(c.n_words, 1);
    assert_string_equal(c.words[0], "z");
    svc_config_clear(&c);
    diag_free(d);
}

/* Read and syntax errors come from the INI reader, with their own codes. */
static void test_read_errors(void **state)
{
    svc_config c = { 0 };
    diag *d = diag_new();
    assert_int_equal(confload_load("/nonexistent/svc.conf", &schema, &c, d), -ENOENT);
    assert_true(diag_count(d) >= 1);
    assert_int_equal(c.finished, 0);
    diag_free(d);

    assert_int_equal(load("[svc\nname = a\n", &c, &d), -EBADMSG);
    assert_true(diag_count(d) >= 1);
    assert_int_equal(c.finished, 0);
    svc_config_clear(&c);
    diag_free(d);

    /* Without a diag only the result says it. */
    assert_int_equal(fileio_write_atomic(path, "[svc]\n", 6, 0644), 0);
    c = (svc_config){ 0 };
    assert_int_equal(confload_load(path, &schema, &c, NULL), -EINVAL);
    svc_config_clear(&c);
}

/* A value quoted in a message is quoted whole, however long. */
static void test_long_value(void **state)
{
    char value[2000];
    memset(value, 'x', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    char text[2100];
    snprintf(text, sizeof(text), "[svc]\nname = a\ndir = d\nverbose = %s\n", value);
    svc_config c;
    diag *d;
    assert_int_equal(load(text, &c, &d), -EINVAL);
    assert_int_equal(diag_count(d), 1);
    assert_non_null(strstr(diag_get(d, 0), value));
    svc_config_clear(&c);
    diag_free(d);
}

static void test_path_relative(void **state)
{
    char *p = fileio_path_relative("/etc/rb/agent.conf", "hosts.conf");
    assert_string_equal(p, "/etc/rb/hosts.conf");
    free(p);
    p = fileio_path_relative("/etc/rb/agent.conf", "/srv/hosts.conf");
    assert_string_equal(p, "/srv/hosts.conf");
    free(p);
    p = fileio_path_relative("agent.conf", "hosts.conf"); /* no directory */
    assert_string_equal(p, "hosts.conf");
    free(p);
    p = fileio_path_relative("conf/agent.conf", "../x");
    assert_string_equal(p, "conf/../x");
    free(p);
}

static void test_split_words(void **state)
{
    char *w[3] = { NULL, NULL, NULL };
    size_t n = 99;
    assert_int_equal(parse_words(" \ta  bb\t", w, 3, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(w[0], "a");
    assert_string_equal(w[1], "bb");
    free(w[0]);
    free(w[1]);
    n = 99;
    assert_int_equal(parse_words("", w, 3, &n), 0);
    assert_int_equal(n, 0);
    n = 99;
    w[0] = w[1] = w[2] = NULL;
    assert_int_equal(parse_words("a b c d", w, 3, &n), -E2BIG);
    assert_int_equal(n, 99); /* not written */
    assert_null(w[0]);       /* nothing left allocated */
    assert_null(w[2]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_stay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_value, setup, teardown),
        cmocka_unit_test(test_path_relative),
        cmocka_unit_test(test_split_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

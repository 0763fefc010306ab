/* The rackboot command line against a fake controller: usage errors exit 2
 * before anything is sent, valid commands send the request the controller
 * expects, reply statuses become the documented exit codes, and the file
 * imports carry what the files say. */
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
#include <jansson.h>

#include "cli.h"
#include "commands.h"
#include "fileio.h"
#include "rbproto.h"
#include "sha256.h"

static struct {
    int calls;
    uint8_t *req;
    size_t req_len;
    const Rackboot__V1__ApiReply *reply;
    /* when set: the reply to each request (instead of `reply`) */
    const Rackboot__V1__ApiReply *(*reply_to)(const Rackboot__V1__ApiRequest *req);
    int code;            /* nonzero: the transport fails with this exit code */
    uint32_t timeout_ms; /* of the last call */
    /* where the last call went (cli/context.h) */
    char controller[256], from[512], ca[256], cert[256], key[256], crl[256], server_name[64];
    char urls[512]; /* c->controller_urls, " | " between them */
    size_t n_urls;
} fake;

static void copy_or_dash(char *to, size_t size, const char *from)
{
    snprintf(to, size, "%s", from ? from : "-");
}

static char *out_text, *err_text;
static char dir[64];

static int fake_transport(cli *c, const Rackboot__V1__ApiRequest *req, uint32_t timeout_ms,
                          Rackboot__V1__ApiReply **ret)
{
    fake.calls++;
    fake.timeout_ms = timeout_ms;
    copy_or_dash(fake.controller, sizeof(fake.controller), c->controller);
    copy_or_dash(fake.from, sizeof(fake.from), c->controller_from);
    copy_or_dash(fake.ca, sizeof(fake.ca), c->ca);
    copy_or_dash(fake.cert, sizeof(fake.cert), c->cert);
    copy_or_dash(fake.key, sizeof(fake.key), c->key);
    copy_or_dash(fake.crl, sizeof(fake.crl), c->crl);
    copy_or_dash(fake.server_name, sizeof(fake.server_name), c->server_name);
    fake.n_urls = c->n_controller_urls;
    fake.urls[0] = '\0';
    for (size_t i = 0; i < c->n_controller_urls; i++) {
        size_t at = strlen(fake.urls);
        snprintf(fake.urls + at, sizeof(fake.urls) - at, "%s%s", i ? " | " : "",
                 c->controller_urls[i]);
    }
    free(fake.req);
    fake.req = NULL;
    /* rbproto_pack validates: every request the CLI builds must be one the
     * controller accepts. */
    assert_int_equal(rbproto_pack(&req->base, RBPROTO_MAX_MESSAGE, &fake.req, &fake.req_len), 0);
    if (fake.code) {
        cli_error(c, "controller ipc:///fake unreachable: Connection refused");
        return fake.code;
    }
    const Rackboot__V1__ApiReply *reply = fake.reply_to ? fake.reply_to(req) : fake.reply;
    assert_non_null(reply);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(rbproto_pack(&reply->base, RBPROTO_MAX_MESSAGE, &buf, &len), 0);
    assert_int_equal(rbproto_unpack_api_reply(buf, len, RBPROTO_MAX_MESSAGE, ret), 0);
    free(buf);
    return 0;
}

static Rackboot__V1__ApiRequest *sent(void)
{
    Rackboot__V1__ApiRequest *req = NULL;
    assert_non_null(fake.req);
    assert_int_equal(rbproto_unpack_api_request(fake.req, fake.req_len, RBPROTO_MAX_MESSAGE, &req),
                     0);
    return req;
}

/* Runs `rackboot ARGS...` (NULL-terminated). */
static int run(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = strdup("rackboot");
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        assert_true(argc < 31);
        argv[argc++] = strdup(a);
    }
    va_end(ap);
    argv[argc] = NULL;
    free(out_text);
    free(err_text);
    out_text = err_text = NULL; /* a failed assertion below must not free them twice */
    size_t ol = 0, el = 0;
    cli c = {
        .out = open_memstream(&out_text, &ol),
        .err = open_memstream(&err_text, &el),
        .transport = fake_transport,
    };
    assert_non_null(c.out);
    assert_non_null(c.err);
    int code = cli_main(&c, argc, argv);
    fclose(c.out);
    fclose(c.err);
    for (int i = 0; i < argc; i++) {
        free(argv[i]);
    }
    return code;
}

static int setup(void **state)
{
    memset(&fake, 0, sizeof(fake));
    out_text = err_text = NULL;
    static const char *const env[] = { "RACKBOOT_CONTROLLER", "RACKBOOT_CA",
                                       "RACKBOOT_CERT",       "RACKBOOT_KEY",
                                       "RACKBOOT_CRL",        "RACKBOOT_SERVER_NAME",
                                       "RACKBOOT_CONTEXT" };
    for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++) {
        unsetenv(env[i]);
    }
    snprintf(dir, sizeof(dir), "/tmp/test_cli_args.XXXXXX");
    assert_non_null(mkdtemp(dir));
    /* Not the config file of whoever runs the tests. */
    char path[128];
    snprintf(path, sizeof(path), "%s/no-config", dir);
    setenv("RACKBOOT_CONFIG", path, 1);
    return 0;
}

static int teardown(void **state)
{
    free(fake.req);
    free(out_text);
    free(err_text);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static const Rackboot__V1__ApiReply *ok_statuses(void)
{
    static Rackboot__V1__StatusList list = RACKBOOT__V1__STATUS_LIST__INIT;
    static Rackboot__V1__ApiReply reply = RACKBOOT__V1__API_REPLY__INIT;
    reply.status = RACKBOOT__V1__STATUS__STATUS_OK;
    reply.body_case = RACKBOOT__V1__API_REPLY__BODY_STATUSES;
    reply.statuses = &list;
    return &reply;
}

static const Rackboot__V1__ApiReply *refused(Rackboot__V1__Status status, const char *message)
{
    static Rackboot__V1__ApiReply reply = RACKBOOT__V1__API_REPLY__INIT;
    reply.status = status;
    reply.message = (char *)(uintptr_t)message;
    return &reply;
}

#define assert_usage(...)                                                                          \
    do {                                                                                           \
        int calls_ = fake.calls;                                                                   \
        assert_int_equal(run(__VA_ARGS__, NULL), CLI_EXIT_USAGE);                                  \
        assert_int_equal(fake.calls, calls_);                                                      \
        assert_non_null(strstr(err_text, "rackboot: "));                                           \
    } while (0)

static void test_usage_errors_exit_2_without_sending(void **state)
{
    assert_usage("bogus");
    assert_usage("--bogus", "status");
    assert_usage("status", "--frob");
    assert_non_null(strstr(err_text, "unknown option '--frob'"));
    assert_non_null(strstr(err_text, "Try 'rackboot status --help'."));
    assert_usage("hosts");
    assert_usage("hosts", "frob");
    assert_usage("hosts", "add", "web1", "--mac", "zz", "--rack", "r1", "--address", "2001:db8::1");
    assert_non_null(strstr(err_text, "--mac zz: not a MAC address"));
    assert_usage("hosts", "add", "web1", "--rack", "r1", "--address", "2001:db8::1");
    assert_non_null(strstr(err_text, "--mac is required"));
    assert_usage("hosts", "add", "web1", "--mac", "52:54:00:00:00:01", "--rack");
    assert_non_null(strstr(err_text, "option '--rack' needs a value"));
    assert_usage("hosts", "add", "web1", "--mac", "52:54:00:00:00:01", "--rack", "r1", "--address",
                 "fe80::1");
    assert_usage("hosts", "import");
    assert_usage("hosts", "show");
    assert_usage("hosts", "remove", "bad name");
    assert_usage("install", "web1");
    assert_non_null(strstr(err_text, "--profile is required"));
    assert_usage("install", "--all", "web1", "--profile", "el9");
    assert_usage("install", "--profile", "el9");
    assert_usage("install", "-web1", "--profile", "el9");
    assert_usage("cancel");
    assert_usage("status", "--profile", "el9");
    assert_usage("events", "a", "b");
    assert_usage("events", "web1", "--limit", "0");
    assert_usage("profiles", "import");
    assert_usage("--timeout", "0", "status");
    assert_usage("--controller", "http://x", "status");
    assert_usage("--controller", "tls+tcp://[::1]:7400", "status");
    assert_non_null(strstr(err_text, "needs --ca, --cert and --key"));
    setenv("RACKBOOT_CONTROLLER", "http://from-env", 1);
    assert_usage("status");
    unsetenv("RACKBOOT_CONTROLLER");
}

static void test_help_everywhere(void **state)
{
    static const char *const cmds[][3] = {
        { "--help", NULL, NULL },         { "hosts", "--help", NULL },
        { "hosts", "import", "--help" },  { "hosts", "add", "--help" },
        { "hosts", "list", "--help" },    { "hosts", "show", "--help" },
        { "hosts", "remove", "--help" },  { "racks", "--help", NULL },
        { "profiles", "--help", NULL },   { "profiles", "import", "--help" },
        { "profiles", "list", "--help" }, { "profiles", "show", "--help" },
        { "images", "--help", NULL },     { "install", "--help", NULL },
        { "cancel", "--help", NULL },     { "status", "--help", NULL },
        { "watch", "--help", NULL },      { "events", "--help", NULL },
        { "audit", "--help", NULL },      { "help", "install", NULL },
        { "power", "--help", NULL },      { "help", "power", NULL },
        { "contexts", "--help", NULL },
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        assert_int_equal(run(cmds[i][0], cmds[i][1], cmds[i][2], NULL), CLI_EXIT_OK);
        assert_non_null(strstr(out_text, "Usage: rackboot"));
        assert_string_equal(err_text, "");
    }
    assert_int_equal(run("--version", NULL), CLI_EXIT_OK);
    assert_non_null(strstr(out_text, "rackboot "));
    assert_int_equal(run("-V", NULL), CLI_EXIT_OK);
    assert_non_null(strstr(out_text, "rackboot "));
    assert_int_equal(fake.calls, 0);
}

static void write_config(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    setenv("RACKBOOT_CONFIG", path, 1);
}

#define assert_path_in_dir(got, rel)                                                               \
    do {                                                                                           \
        char want_[192];                                                                           \
        snprintf(want_, sizeof(want_), "%s/%s", dir, rel);                                         \
        assert_string_equal(got, want_);                                                           \
    } while (0)

/* Where the controller and the TLS files come from: the command line, the
 * environment, a context of the config file, the default; each setting on
 * its own. */
static void test_contexts(void **state)
{
    fake.reply = ok_statuses();
    /* No config file: the local default. */
    assert_int_equal(run("status", "web1", NULL), 0);
    assert_string_equal(fake.controller, CLI_DEFAULT_CONTROLLER);
    assert_string_equal(fake.from, "the default");
    assert_string_equal(fake.ca, "-");

    const char *home = getenv("HOME");
    char *saved_home = home ? strdup(home) : NULL;
    setenv("HOME", dir, 1);
    write_config("config", "# two controllers\n"
                           "[rackboot]\n"
                           "context = prod\n"
                           "\n"
                           "[context prod]\n"
                           "controller = tls+tcp://[2001:db8::10]:7444\n"
                           "ca = pki/ca.crt\n"
                           "cert = ~/alice.crt\n"
                           "key = /etc/alice.key\n"
                           "server_name = ctl1.example.net\n"
                           "\n"
                           "[context lab]\n"
                           "controller = ipc:///run/lab.sock\n");
    assert_int_equal(run("status", "web1", NULL), 0);
    assert_string_equal(fake.controller, "tls+tcp://[2001:db8::10]:7444");
    char from[192];
    snprintf(from, sizeof(from), "context prod in %s/config", dir);
    assert_string_equal(fake.from, from);
    assert_path_in_dir(fake.ca, "pki/ca.crt");  /* relative to the file */
    assert_path_in_dir(fake.cert, "alice.crt"); /* ~/ is $HOME */
    assert_string_equal(fake.key, "/etc/alice.key");
    assert_string_equal(fake.crl, "-");
    assert_string_equal(fake.server_name, "ctl1.example.net");

    /* The command line and the environment win, setting by setting. */
    setenv("RACKBOOT_CA", "/env/ca.crt", 1);
    assert_int_equal(run("--key", "/cli/k.key", "status", "web1", NULL), 0);
    assert_string_equal(fake.controller, "tls+tcp://[2001:db8::10]:7444");
    assert_string_equal(fake.ca, "/env/ca.crt");
    assert_string_equal(fake.key, "/cli/k.key");
    assert_path_in_dir(fake.cert, "alice.crt");
    unsetenv("RACKBOOT_CA");
    assert_int_equal(run("--controller", "ipc:///x", "status", "web1", NULL), 0);
    assert_string_equal(fake.controller, "ipc:///x");
    assert_string_equal(fake.from, "--controller");
    assert_int_equal(fake.n_urls, 1);
    assert_string_equal(fake.urls, "ipc:///x");
    setenv("RACKBOOT_CONTROLLER", "ipc:///from-env", 1);
    assert_int_equal(run("status", "web1", NULL), 0);
    assert_string_equal(fake.from, "RACKBOOT_CONTROLLER");
    unsetenv("RACKBOOT_CONTROLLER");

    /* Another context by name: --context, or RACKBOOT_CONTEXT. */
    assert_int_equal(run("--context", "lab", "status", "web1", NULL), 0);
    assert_string_equal(fake.controller, "ipc:///run/lab.sock");
    assert_string_equal(fake.ca, "-");
    setenv("RACKBOOT_CONTEXT", "lab", 1);
    assert_int_equal(run("status", "web1", NULL), 0);
    assert_string_equal(fake.controller, "ipc:///run/lab.sock");
    assert_int_equal(run("--context", "prod", "status", "web1", NULL), 0);
    assert_string_equal(fake.controller, "tls+tcp://[2001:db8::10]:7444");

    /* `contexts` lists them, the one in use marked. */
    assert_int_equal(run("contexts", NULL), 0);
    assert_non_null(strstr(out_text, "* lab "));
    assert_non_null(strstr(out_text, "  prod "));
    assert_int_equal(run("--context", "prod", "contexts", "--json", NULL), 0);
    json_t *j = json_loads(out_text, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "name")), "prod");
    assert_true(json_is_true(json_object_get(json_array_get(j, 0), "current")));
    assert_true(json_is_false(json_object_get(json_array_get(j, 1), "current")));
    json_decref(j);
    unsetenv("RACKBOOT_CONTEXT");

    /* The example of `contexts --help` is a config file that works. */
    assert_int_equal(run("contexts", "--help", NULL), 0);
    char example[1024] = "";
    for (const char *l = out_text; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l) + 1 : strlen(l);
        if (strncmp(l, "    ", 4) == 0) {
            strncat(example, l + 4, n - 4);
        }
        l += n;
    }
    write_config("example", example);
    assert_int_equal(run("status", "web1", NULL), 0);
    assert_string_equal(fake.controller, "tls+tcp://ctl1.fleet.example.net:7444");
    assert_string_equal(fake.ca, "/etc/rackboot/ca.crt");
    assert_string_equal(fake.crl, "/etc/rackboot/crl.pem");
    assert_string_equal(fake.server_name, "ctl1.fleet.example.net");
    char config[128];
    snprintf(config, sizeof(config), "%s/config", dir);
    setenv("RACKBOOT_CONFIG", config, 1);

    /* Usage errors, nothing sent: an unknown context (the known ones
     * listed), a typo in the file, a TLS context without its files. */
    assert_usage("--context", "nope", "status");
    assert_non_null(strstr(err_text, "no [context nope] in"));
    assert_non_null(strstr(err_text, "contexts in "));
    assert_non_null(strstr(err_text, ": prod lab\n"));
    write_config("typo", "[context prod]\ncontroller = ipc:///x\ncerts = a.crt\n[contxt b]\n");
    assert_usage("status");
    assert_non_null(strstr(err_text, "typo:3: unknown key \"certs\" in [context prod]"));
    assert_non_null(strstr(err_text, "typo:4: unknown section [contxt b]"));
    write_config("notls", "[rackboot]\ncontext = p\n[context p]\ncontroller = tls+tcp://[::1]:1\n");
    assert_usage("status");
    assert_non_null(strstr(err_text, "(context p in "));
    assert_non_null(strstr(err_text, "needs --ca, --cert and --key"));
    /* A context named but no file. */
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/missing", dir);
    setenv("RACKBOOT_CONFIG", missing, 1);
    assert_usage("--context", "prod", "status");
    assert_non_null(strstr(err_text, "missing"));
    if (saved_home) {
        setenv("HOME", saved_home, 1);
    } else {
        unsetenv("HOME");
    }
    free(saved_home);
}

/* Several controllers, tried in this order by the transport: --controller
 * given more than once, RACKBOOT_CONTROLLER or a context's controller as a
 * list (commas and/or blanks). Each URL is checked; one bad one is a usage
 * error that names it, before anything is sent. */
static void test_several_controllers(void **state)
{
    fake.reply = ok_statuses();
    assert_int_equal(run("--controller", "ipc:///a", "--controller", "ipc:///b", "--controller",
                         "ipc:///c", "status", "web1", NULL),
                     0);
    assert_int_equal(fake.n_urls, 3);
    assert_string_equal(fake.urls, "ipc:///a | ipc:///b | ipc:///c");
    assert_string_equal(fake.from, "--controller");
    /* the command line wins over the environment, as with one */
    setenv("RACKBOOT_CONTROLLER", "ipc:///env1, ipc:///env2", 1);
    assert_int_equal(run("--controller", "ipc:///a", "status", "web1", NULL), 0);
    assert_string_equal(fake.urls, "ipc:///a");
    assert_int_equal(run("status", "web1", NULL), 0);
    assert_int_equal(fake.n_urls, 2);
    assert_string_equal(fake.urls, "ipc:///env1 | ipc:///env2");
    assert_string_equal(fake.from, "RACKBOOT_CONTROLLER");
    setenv("RACKBOOT_CONTROLLER", "ipc:///env1,ipc:///env2 ipc:///env3", 1);
    assert_int_equal(run("status", "web1", NULL), 0);
    assert_string_equal(fake.urls, "ipc:///env1 | ipc:///env2 | ipc:///env3");
    unsetenv("RACKBOOT_CONTROLLER");

    const char *was = getenv("RACKBOOT_CONFIG");
    char *saved_config = was ? strdup(was) : NULL;
    char config[128];
    snprintf(config, sizeof(config), "%s/config", dir);
    setenv("RACKBOOT_CONFIG", config, 1);
    write_config("config", "[rackboot]\ncontext = ha\n[context ha]\n"
                           "controller = tls+tcp://ctl1.example.net:7444, "
                           "tls+tcp://ctl2.example.net:7444\n"
                           "ca = ca.crt\ncert = op.crt\nkey = op.key\n");
    assert_int_equal(run("status", "web1", NULL), 0);
    assert_int_equal(fake.n_urls, 2);
    assert_string_equal(fake.urls,
                        "tls+tcp://ctl1.example.net:7444 | tls+tcp://ctl2.example.net:7444");
    /* no server_name: each URL's host is the name checked (transport.c) */
    assert_string_equal(fake.server_name, "-");
    if (saved_config) {
        setenv("RACKBOOT_CONFIG", saved_config, 1);
    } else {
        unsetenv("RACKBOOT_CONFIG");
    }
    free(saved_config);

    /* usage errors: the bad URL named, nothing sent */
    assert_usage("--controller", "ipc:///a", "--controller", "http://b", "status");
    assert_non_null(strstr(err_text, "controller http://b (--controller): expected ipc://PATH"));
    assert_usage("--controller", "ipc:///a", "--controller", "tls+tcp://[::1]:1", "status");
    assert_non_null(strstr(err_text, "controller tls+tcp://[::1]:1 (--controller) is tls+tcp://"));
    setenv("RACKBOOT_CONTROLLER", " , ", 1);
    assert_usage("status");
    assert_non_null(strstr(err_text, "controller (RACKBOOT_CONTROLLER): no URL"));
    setenv("RACKBOOT_CONTROLLER",
           "ipc:///1,ipc:///2,ipc:///3,ipc:///4,ipc:///5,ipc:///6,ipc:///7,"
           "ipc:///8,ipc:///9",
           1);
    assert_usage("status");
    assert_non_null(strstr(err_text, "more than 8 URLs"));
    unsetenv("RACKBOOT_CONTROLLER");
}

static void test_selectors(void **state)
{
    fake.reply = ok_statuses();
    assert_int_equal(run("install", "--rack", "r1", "r2", "--profile", "el9", "--replace", NULL),
                     0);
    Rackboot__V1__ApiRequest *req = sent();
    assert_int_equal(req->body_case, RACKBOOT__V1__API_REQUEST__BODY_INSTALL);
    assert_int_equal(req->install->target->n_racks, 2);
    assert_string_equal(req->install->target->racks[1], "r2");
    assert_int_equal(req->install->target->n_hosts, 0);
    assert_string_equal(req->install->profile, "el9");
    assert_true(req->install->replace_active);
    rbproto_api_request_free(req);

    /* Options after the hosts are fine (GNU argument order). */
    assert_int_equal(run("install", "web1", "web2", "--profile", "el9", NULL), 0);
    req = sent();
    assert_int_equal(req->install->target->n_hosts, 2);
    assert_false(req->install->replace_active);
    rbproto_api_request_free(req);

    assert_int_equal(run("status", NULL), 0);
    req = sent();
    assert_true(req->status->target->all);
    rbproto_api_request_free(req);

    assert_int_equal(run("cancel", "--all", NULL), 0);
    req = sent();
    assert_int_equal(req->body_case, RACKBOOT__V1__API_REQUEST__BODY_CANCEL);
    assert_true(req->cancel->target->all);
    rbproto_api_request_free(req);

    assert_int_equal(run("--controller", "ipc:///x", "status", "web3", "--json", NULL), 0);
    req = sent();
    assert_int_equal(req->status->target->n_hosts, 1);
    assert_string_equal(req->status->target->hosts[0], "web3");
    rbproto_api_request_free(req);
    assert_string_equal(out_text, "[]\n");
}

/* A fleet-wide install or cancel waits longer than a request about a few
 * hosts (the controller works through 5,000 hosts at a time); --timeout
 * wins over both. */
static void test_fleet_timeout(void **state)
{
    fake.reply = ok_statuses();
    assert_int_equal(run("install", "web1", "--profile", "el9", NULL), 0);
    assert_int_equal(fake.timeout_ms, CLI_DEFAULT_TIMEOUT_MS);
    assert_int_equal(run("install", "--rack", "r1", "--profile", "el9", NULL), 0);
    assert_int_equal(fake.timeout_ms, CLI_FLEET_TIMEOUT_MS);
    assert_int_equal(run("cancel", "--all", NULL), 0);
    assert_int_equal(fake.timeout_ms, CLI_FLEET_TIMEOUT_MS);
    assert_int_equal(run("status", "--all", NULL), 0);
    assert_int_equal(fake.timeout_ms, CLI_DEFAULT_TIMEOUT_MS);
    assert_int_equal(run("--timeout", "7", "install", "--all", "--profile", "el9", NULL), 0);
    assert_int_equal(fake.timeout_ms, 7000);
    assert_int_equal(run("--timeout", "7", "install", "web1", "--profile", "el9", NULL), 0);
    assert_int_equal(fake.timeout_ms, 7000);
}

static void test_reply_status_exit_codes(void **state)
{
    fake.reply = refused(RACKBOOT__V1__STATUS__STATUS_NOT_FOUND, "host web99 not found");
    assert_int_equal(run("status", "web99", NULL), CLI_EXIT_NOT_FOUND);
    assert_string_equal(err_text, "rackboot: host web99 not found\n");
    assert_string_equal(out_text, "");

    fake.reply = refused(RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE, "store busy");
    assert_int_equal(run("racks", NULL), CLI_EXIT_UNREACHABLE);

    fake.reply = refused(RACKBOOT__V1__STATUS__STATUS_INVALID, "address outside rack r1");
    assert_int_equal(run("hosts", "add", "web1", "--mac", "52:54:00:00:00:01", "--rack", "r1",
                         "--address", "2001:db8::1", NULL),
                     CLI_EXIT_FAILED);

    fake.reply = refused(RACKBOOT__V1__STATUS__STATUS_CONFLICT, "web1 has an active install");
    assert_int_equal(run("install", "web1", "--profile", "el9", NULL), CLI_EXIT_FAILED);
    assert_non_null(strstr(err_text, "rackboot: web1 has an active install\n"));
    assert_non_null(strstr(err_text, "--replace"));

    fake.reply = refused(RACKBOOT__V1__STATUS__STATUS_FAILED, "");
    assert_int_equal(run("images", NULL), CLI_EXIT_FAILED);
    assert_string_equal(err_text, "rackboot: the controller answered failed\n");

    fake.code = CLI_EXIT_UNREACHABLE;
    assert_int_equal(run("status", NULL), CLI_EXIT_UNREACHABLE);
    assert_non_null(strstr(err_text, "unreachable"));
}

#define S(x) ((char *)(uintptr_t)(x))

/* A FAILED install or cancel reply whose rows say which hosts were done and
 * which skipped, and why (StatusRow.skipped): `skips` per host of web1..N. */
static const Rackboot__V1__ApiReply *partial(const Rackboot__V1__Skip *skips, size_t n,
                                             Rackboot__V1__InstallState done_state)
{
    static Rackboot__V1__StatusRow rows[4], *ptrs[4];
    static char names[4][8];
    static Rackboot__V1__StatusList list;
    static Rackboot__V1__ApiReply reply;
    static const char *const why[] = {
        [RACKBOOT__V1__SKIP__SKIP_ACTIVE] = "has an active install (cancel it, or install with "
                                            "--replace)",
        [RACKBOOT__V1__SKIP__SKIP_NOT_ACTIVE] = "has no active install",
    };
    assert_true(n <= 4);
    for (size_t i = 0; i < n; i++) {
        rows[i] = (Rackboot__V1__StatusRow)RACKBOOT__V1__STATUS_ROW__INIT;
        snprintf(names[i], sizeof(names[i]), "web%zu", i + 1);
        rows[i].host = names[i];
        rows[i].rack = S("r1");
        rows[i].install_id = S("5b0e8f5c-2b1c-4a8e-9a57-0e4b7a3c1d21");
        rows[i].profile = S("el9");
        rows[i].skipped = skips[i];
        rows[i].state =
            skips[i] ? RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_INSTALLED : done_state;
        rows[i].message = S(skips[i] ? why[skips[i]] : "");
        ptrs[i] = &rows[i];
    }
    list = (Rackboot__V1__StatusList)RACKBOOT__V1__STATUS_LIST__INIT;
    list.rows = ptrs;
    list.n_rows = n;
    reply = (Rackboot__V1__ApiReply)RACKBOOT__V1__API_REPLY__INIT;
    reply.status = RACKBOOT__V1__STATUS__STATUS_FAILED;
    reply.message = S("some hosts not done");
    reply.body_case = RACKBOOT__V1__API_REPLY__BODY_STATUSES;
    reply.statuses = &list;
    return &reply;
}

/* install a b c with two already active: the host done is printed beside
 * the two skipped; cancel of nothing active is no failure. */
static void test_partial_results(void **state)
{
    const Rackboot__V1__Skip two_active[] = { RACKBOOT__V1__SKIP__SKIP_NONE,
                                              RACKBOOT__V1__SKIP__SKIP_ACTIVE,
                                              RACKBOOT__V1__SKIP__SKIP_ACTIVE };
    fake.reply = partial(two_active, 3, RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_REQUESTED);
    assert_int_equal(run("install", "web1", "web2", "web3", "--profile", "el9", NULL),
                     CLI_EXIT_FAILED);
    assert_non_null(strstr(out_text, "web1"));
    assert_non_null(strstr(out_text, "requested"));
    assert_null(strstr(out_text, "web2"));
    assert_non_null(strstr(err_text, "rackboot: host web2: has an active install"));
    assert_non_null(strstr(err_text, "rackboot: host web3: has an active install"));
    assert_non_null(strstr(err_text, "rackboot: 2 of 3 hosts not installed\n"));
    assert_non_null(strstr(err_text, "--replace"));
    assert_int_equal(run("install", "web1", "web2", "web3", "--profile", "el9", "--json", NULL),
                     CLI_EXIT_FAILED);
    json_t *j = json_loads(out_text, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "host")), "web1");
    json_decref(j);

    const Rackboot__V1__Skip idle[] = { RACKBOOT__V1__SKIP__SKIP_NOT_ACTIVE,
                                        RACKBOOT__V1__SKIP__SKIP_NOT_ACTIVE };
    fake.reply = partial(idle, 2, RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_CANCELLED);
    assert_int_equal(run("cancel", "web1", "web2", NULL), CLI_EXIT_OK);
    assert_string_equal(out_text, "nothing to cancel\n");
    assert_string_equal(err_text, "");

    const Rackboot__V1__Skip some[] = { RACKBOOT__V1__SKIP__SKIP_NONE,
                                        RACKBOOT__V1__SKIP__SKIP_NOT_ACTIVE };
    fake.reply = partial(some, 2, RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_CANCELLED);
    assert_int_equal(run("cancel", "web1", "web2", NULL), CLI_EXIT_OK);
    assert_non_null(strstr(out_text, "cancelled"));
    assert_string_equal(err_text, "rackboot: host web2: nothing to cancel\n");
}

/* rackboot audit: --since and --limit reach the request; rows render as
 * a table and as JSON; a viewer's refusal exits 1 with the controller's
 * line. */
static void test_audit(void **state)
{
    uint64_t t = 0;
    const uint64_t now = 1764041657123ull; /* 2025-11-25T03:34:17.123Z */
    assert_int_equal(cli_parse_since("2025-11-25T03:34:17Z", now, &t), 0);
    assert_int_equal(t, 1764041657000ull);
    assert_int_equal(cli_parse_since("2025-11-25T03:34:17.123Z", now, &t), 0);
    assert_int_equal(t, now);
    assert_int_equal(cli_parse_since("2025-11-25", now, &t), 0);
    assert_int_equal(t, 1764028800000ull);
    assert_int_equal(cli_parse_since("90s", now, &t), 0);
    assert_int_equal(t, now - 90000);
    assert_int_equal(cli_parse_since("7d", now, &t), 0);
    assert_int_equal(t, now - 7 * 86400000ull);
    assert_int_equal(cli_parse_since("100000d", now, &t), -EINVAL);
    static const char *const bad[] = { "",
                                       "yesterday",
                                       "7",
                                       "7w",
                                       "2025-13-01",
                                       "2025-02-30",
                                       "2025-11-25T03:34:17",
                                       "2025-11-25T03:34:17+01:00",
                                       "2025-11-25 03:34:17Z",
                                       "1969-12-31",
                                       "-1d" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cli_parse_since(bad[i], now, &t) != -EINVAL) {
            fail_msg("--since '%s' was taken", bad[i]);
        }
    }
    assert_usage("audit", "--since", "yesterday");
    assert_usage("audit", "--limit", "0");
    assert_usage("audit", "extra");

    static char *hosts[] = { S("web17"), S("web18"), S("web19"), S("web20") };
    static char *profiles[] = { S("el9") };
    static Rackboot__V1__AuditRow rows[2] = { RACKBOOT__V1__AUDIT_ROW__INIT,
                                              RACKBOOT__V1__AUDIT_ROW__INIT };
    static Rackboot__V1__AuditRow *row_ptrs[] = { &rows[0], &rows[1] };
    static Rackboot__V1__AuditList list = RACKBOOT__V1__AUDIT_LIST__INIT;
    static Rackboot__V1__ApiReply reply = RACKBOOT__V1__API_REPLY__INIT;
    rows[0].seq = 1;
    rows[0].time_unix_ms = now;
    rows[0].who = S("operator:alice");
    rows[0].verb = S("install");
    rows[0].hosts = hosts;
    rows[0].n_hosts = 4;
    rows[0].host_count = 10;
    rows[0].profiles = profiles;
    rows[0].n_profiles = 1;
    rows[0].ok = true;
    rows[0].result = S("ok");
    rows[1].seq = 2;
    rows[1].time_unix_ms = now + 1;
    rows[1].who = S("viewer:val");
    rows[1].verb = S("cancel");
    rows[1].ok = false;
    rows[1].result = S("permission denied: viewer may not cancel");
    list.rows = row_ptrs;
    list.n_rows = 2;
    reply.status = RACKBOOT__V1__STATUS__STATUS_OK;
    reply.body_case = RACKBOOT__V1__API_REPLY__BODY_AUDIT;
    reply.audit = &list;
    fake.reply = &reply;
    assert_int_equal(run("audit", "--since", "2025-11-25", "--limit", "5", NULL), CLI_EXIT_OK);
    Rackboot__V1__ApiRequest *req = sent();
    assert_int_equal(req->body_case, RACKBOOT__V1__API_REQUEST__BODY_AUDIT);
    assert_int_equal(req->audit->since_unix_ms, 1764028800000ull);
    assert_int_equal(req->audit->limit, 5);
    rbproto_api_request_free(req);
    assert_non_null(strstr(out_text, "TIME"));
    assert_non_null(strstr(out_text, "operator:alice"));
    assert_non_null(strstr(out_text, "install el9"));
    assert_non_null(strstr(out_text, "web17 web18 web19 (+7)"));
    assert_non_null(strstr(out_text, "permission denied: viewer may not cancel"));
    assert_int_equal(run("audit", "--json", NULL), CLI_EXIT_OK);
    assert_non_null(strstr(out_text, "\"who\": \"viewer:val\""));
    assert_non_null(strstr(out_text, "\"host_count\": 10"));
    assert_non_null(strstr(out_text, "\"ok\": false"));
    assert_non_null(strstr(out_text, "\"time\": \"2025-11-25T03:34:17.123Z\""));

    fake.reply = refused(RACKBOOT__V1__STATUS__STATUS_PERMISSION_DENIED,
                         "permission denied: viewer may not read the audit log");
    assert_int_equal(run("audit", NULL), CLI_EXIT_FAILED);
    assert_string_equal(err_text,
                        "rackboot: permission denied: viewer may not read the audit log\n");
    fake.reply = refused(RACKBOOT__V1__STATUS__STATUS_PERMISSION_DENIED,
                         "permission denied: viewer may not install");
    assert_int_equal(run("install", "web1", "--profile", "el9", NULL), CLI_EXIT_FAILED);
    assert_non_null(strstr(err_text, "permission denied: viewer may not install"));
}

/* A controller that answers the audit log 2 rows a page (as if the size
 * cap were reached), rows seq 1..5; a stuck one that repeats a page. */
enum { AUDIT_ROWS = 5, AUDIT_PAGE = 2 };
static uint64_t audit_asked_after[8];
static uint32_t audit_asked_limit[8];
static size_t audit_asks;
static bool audit_stuck;

static const Rackboot__V1__ApiReply *audit_pages(const Rackboot__V1__ApiRequest *req)
{
    static Rackboot__V1__AuditRow rows[AUDIT_ROWS];
    static Rackboot__V1__AuditRow *page[AUDIT_PAGE];
    static Rackboot__V1__AuditList list;
    static Rackboot__V1__ApiReply reply;
    assert_int_equal(req->body_case, RACKBOOT__V1__API_REQUEST__BODY_AUDIT);
    assert_true(audit_asks < 8);
    audit_asked_after[audit_asks] = req->audit->after_seq;
    audit_asked_limit[audit_asks] = req->audit->limit;
    audit_asks++;
    rackboot__v1__audit_list__init(&list);
    rackboot__v1__api_reply__init(&reply);
    uint64_t after = audit_stuck ? 0 : req->audit->after_seq;
    for (uint64_t seq = after + 1; seq <= AUDIT_ROWS && list.n_rows < AUDIT_PAGE; seq++) {
        if (list.n_rows == req->audit->limit) {
            break;
        }
        Rackboot__V1__AuditRow *r = &rows[seq - 1];
        rackboot__v1__audit_row__init(r);
        r->seq = seq;
        r->time_unix_ms = 1764041657000ull + seq;
        r->who = S("operator:alice");
        r->verb = S("cancel");
        r->ok = true;
        r->result = S("ok");
        page[list.n_rows++] = r;
    }
    list.rows = page;
    list.more = list.n_rows == AUDIT_PAGE && list.rows[AUDIT_PAGE - 1]->seq < AUDIT_ROWS;
    reply.status = RACKBOOT__V1__STATUS__STATUS_OK;
    reply.body_case = RACKBOOT__V1__API_REPLY__BODY_AUDIT;
    reply.audit = &list;
    return &reply;
}

/* rackboot audit follows the controller's pages (AuditList.more) after the
 * last seq, with what is left of the limit, and prints them as one list. */
static void test_audit_pages(void **state)
{
    fake.reply_to = audit_pages;
    audit_asks = 0;
    audit_stuck = false;
    assert_int_equal(run("audit", "--json", NULL), CLI_EXIT_OK);
    assert_int_equal(audit_asks, 3);
    assert_int_equal(audit_asked_after[0], 0);
    assert_int_equal(audit_asked_after[1], 2);
    assert_int_equal(audit_asked_after[2], 4);
    assert_int_equal(audit_asked_limit[0], RBPROTO_AUDIT_DEFAULT_ROWS);
    assert_int_equal(audit_asked_limit[1], RBPROTO_AUDIT_DEFAULT_ROWS - 2);
    assert_int_equal(audit_asked_limit[2], RBPROTO_AUDIT_DEFAULT_ROWS - 4);
    for (int seq = 1; seq <= AUDIT_ROWS; seq++) {
        char key[32];
        snprintf(key, sizeof(key), "\"seq\": %d,", seq);
        assert_non_null(strstr(out_text, key));
    }
    assert_int_equal(out_text[0], '[');   /* one array, not one per page */
    assert_null(strstr(out_text, "\n[")); /* no second top-level array */

    /* --limit 3: two pages, the second asking for the 1 row left */
    audit_asks = 0;
    assert_int_equal(run("audit", "--limit", "3", NULL), CLI_EXIT_OK);
    assert_int_equal(audit_asks, 2);
    assert_int_equal(audit_asked_limit[1], 1);
    assert_int_equal(strstr(out_text, "TIME") == out_text, true); /* one header */
    assert_null(strstr(out_text + 1, "TIME"));

    /* a controller whose pages do not advance is not followed for ever */
    audit_asks = 0;
    audit_stuck = true;
    assert_int_equal(run("audit", NULL), CLI_EXIT_FAILED);
    assert_int_equal(audit_asks, 2);
    assert_non_null(strstr(err_text, "do not advance"));
}

/* A controller with FLEET hosts h00000..h02499 (and as many status rows
 * and events, seq 1..FLEET) that answers pages as the real one: rows after
 * `after`, at most `limit` (more when rows follow). `paging` false plays a
 * controller from before paging (every row, no "more"); `stuck` one whose
 * pages do not advance. */
enum { FLEET = 2500, ASKS = 16 };
static struct {
    size_t asks;
    char after[ASKS][64];
    uint64_t after_seq[ASKS];
    uint32_t limit[ASKS];
    Rackboot__V1__Selector sel[ASKS]; /* status: what it selected */
    bool paging, stuck;
    size_t names_ok; /* hosts asked by name: this many answered, then not found */
} fleet;

static const Rackboot__V1__ApiReply *fleet_pages(const Rackboot__V1__ApiRequest *req)
{
    static char names[FLEET][8];
    static uint8_t mac[6] = { 0x52, 0x54, 0, 0, 0, 1 }, addr[16] = { 0x20, 0x01, 0x0d, 0xb8, 1 };
    static Rackboot__V1__Host hosts[FLEET], *host_rows[FLEET];
    static ProtobufCBinaryData macs[1];
    static Rackboot__V1__StatusRow status[FLEET], *status_rows[FLEET];
    static Rackboot__V1__EventRow events[FLEET], *event_rows[FLEET];
    static Rackboot__V1__HostList host_list;
    static Rackboot__V1__StatusList status_list;
    static Rackboot__V1__EventList event_list;
    static Rackboot__V1__ApiReply reply;

    assert_true(fleet.asks < ASKS);
    size_t ask = fleet.asks++;
    if (req->body_case == RACKBOOT__V1__API_REQUEST__BODY_HOSTS_LIST &&
        req->hosts_list->n_names > 0 && fleet.names_ok-- == 0) {
        return refused(RACKBOOT__V1__STATUS__STATUS_NOT_FOUND, "host h00002 not found");
    }
    const char *after = "";
    uint64_t after_seq = 0;
    uint32_t limit = 0;
    bool named = false;
    if (req->body_case == RACKBOOT__V1__API_REQUEST__BODY_HOSTS_LIST) {
        after = req->hosts_list->after;
        limit = req->hosts_list->limit;
        named = req->hosts_list->n_names > 0;
    } else if (req->body_case == RACKBOOT__V1__API_REQUEST__BODY_STATUS) {
        after = req->status->after;
        limit = req->status->limit;
        fleet.sel[ask] = *req->status->target;
    } else {
        assert_int_equal(req->body_case, RACKBOOT__V1__API_REQUEST__BODY_EVENTS);
        after_seq = req->events->after_seq;
        limit = req->events->limit;
    }
    snprintf(fleet.after[ask], sizeof(fleet.after[0]), "%s", after);
    fleet.after_seq[ask] = after_seq;
    fleet.limit[ask] = limit;
    if (!fleet.paging || fleet.stuck) {
        after = "";
        after_seq = 0;
    }
    if (!fleet.paging) {
        limit = 0;
    }

    macs[0] = (ProtobufCBinaryData){ 6, mac };
    size_t n = 0;
    bool more = false;
    for (size_t i = 0; i < FLEET; i++) {
        snprintf(names[i], sizeof(names[i]), "h%05zu", i);
        if (strcmp(names[i], after) <= 0 || i + 1 <= after_seq) {
            continue;
        }
        if (named) { /* hosts named by a filtered hosts list */
            bool asked = false;
            for (size_t k = 0; k < req->hosts_list->n_names; k++) {
                asked |= strcmp(req->hosts_list->names[k], names[i]) == 0;
            }
            if (!asked) {
                continue;
            }
        }
        if (limit && n == limit) {
            more = true;
            break;
        }
        rackboot__v1__host__init(&hosts[n]);
        hosts[n].name = names[i];
        hosts[n].rack = S("r1");
        hosts[n].n_macs = 1;
        hosts[n].macs = macs;
        hosts[n].address = (ProtobufCBinaryData){ 16, addr };
        hosts[n].prefix_length = 64;
        host_rows[n] = &hosts[n];
        rackboot__v1__status_row__init(&status[n]);
        status[n].host = names[i];
        status[n].rack = S("r1");
        /* Every third host installing (at kickstart_fetched), every third
         * failed, the rest never installed: for --state and --phase. */
        status[n].state = i % 3 == 1   ? RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_INSTALLING
                          : i % 3 == 2 ? RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_FAILED
                                       : RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_NONE;
        status[n].phase = i % 3 == 1   ? RACKBOOT__V1__PHASE__PHASE_KICKSTART_FETCHED
                          : i % 3 == 2 ? RACKBOOT__V1__PHASE__PHASE_FAILED
                                       : RACKBOOT__V1__PHASE__PHASE_UNSPECIFIED;
        status[n].install_id = i % 3 ? S("id") : S("");
        status_rows[n] = &status[n];
        rackboot__v1__event_row__init(&events[n]);
        events[n].seq = i + 1;
        events[n].host = names[i];
        events[n].install_id = S("id");
        events[n].phase = RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND;
        event_rows[n] = &events[n];
        n++;
    }
    rackboot__v1__api_reply__init(&reply);
    reply.status = RACKBOOT__V1__STATUS__STATUS_OK;
    switch (req->body_case) {
    case RACKBOOT__V1__API_REQUEST__BODY_HOSTS_LIST:
        rackboot__v1__host_list__init(&host_list);
        host_list.n_hosts = n;
        host_list.hosts = host_rows;
        host_list.more = more;
        reply.body_case = RACKBOOT__V1__API_REPLY__BODY_HOSTS;
        reply.hosts = &host_list;
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_STATUS:
        rackboot__v1__status_list__init(&status_list);
        status_list.n_rows = n;
        status_list.rows = status_rows;
        status_list.more = more;
        reply.body_case = RACKBOOT__V1__API_REPLY__BODY_STATUSES;
        reply.statuses = &status_list;
        break;
    default:
        rackboot__v1__event_list__init(&event_list);
        event_list.n_events = n;
        event_list.events = event_rows;
        event_list.last_seq = n ? events[n - 1].seq : after_seq;
        reply.body_case = RACKBOOT__V1__API_REPLY__BODY_EVENTS;
        reply.events = &event_list;
        break;
    }
    return &reply;
}

static void fleet_reset(bool paging)
{
    memset(&fleet, 0, sizeof(fleet));
    fleet.paging = paging;
    fleet.names_ok = SIZE_MAX;
    fake.reply_to = fleet_pages;
}

/* The names in a JSON array of objects (key "name", "host" or "host" of
 * events), checked to be h00000.. in order from `first`, `n` of them. */
static void assert_json_names(const char *key, size_t first, size_t n)
{
    json_error_t jerr;
    json_t *a = json_loads(out_text, 0, &jerr);
    if (!a) {
        fail_msg("not JSON: %s: %.200s", jerr.text, out_text);
    }
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), n);
    for (size_t i = 0; i < n; i++) {
        char want[8];
        snprintf(want, sizeof(want), "h%05zu", first + i);
        assert_string_equal(json_string_value(json_object_get(json_array_get(a, i), key)), want);
    }
    json_decref(a);
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        n += *p == '\n';
    }
    return n;
}

/* hosts list and status page by host name: 1,000 rows a page after the
 * last name, what is left of --limit on the last page, printed as one
 * table (one header) or one JSON array; no page of named hosts. */
static void test_hosts_and_status_pages(void **state)
{
    fleet_reset(true);
    assert_int_equal(run("hosts", "list", "--json", NULL), CLI_EXIT_OK);
    assert_int_equal(fleet.asks, 3);
    assert_string_equal(fleet.after[0], "");
    assert_string_equal(fleet.after[1], "h00999");
    assert_string_equal(fleet.after[2], "h01999");
    assert_int_equal(fleet.limit[0], 1000);
    assert_int_equal(fleet.limit[2], 1000);
    assert_json_names("name", 0, FLEET);
    assert_string_equal(err_text, "");

    fleet_reset(true);
    assert_int_equal(run("hosts", "list", "--rack", "r1", "--limit", "1500", NULL), CLI_EXIT_OK);
    assert_int_equal(fleet.asks, 2);
    assert_int_equal(fleet.limit[1], 500);
    assert_int_equal(count_lines(out_text), 1 + 1500);
    assert_int_equal(strncmp(out_text, "NAME ", 5), 0);
    assert_null(strstr(out_text, "\nNAME "));       /* one header */
    assert_non_null(strstr(out_text, "\nh01499 ")); /* the last of the limit */
    assert_null(strstr(out_text, "h01500"));
    Rackboot__V1__ApiRequest *req = sent();
    assert_string_equal(req->hosts_list->rack, "r1");
    rbproto_api_request_free(req);

    /* --after: the next page of a --limit listing */
    fleet_reset(true);
    assert_int_equal(run("hosts", "list", "--after", "h02494", "--limit", "10", "--json", NULL),
                     CLI_EXIT_OK);
    assert_int_equal(fleet.asks, 1);
    assert_string_equal(fleet.after[0], "h02494");
    assert_int_equal(fleet.limit[0], 10);
    assert_json_names("name", 2495, 5);

    /* status: of racks and --all in pages, of named hosts at once */
    fleet_reset(true);
    assert_int_equal(run("status", "--rack", "r1", "r2", "--limit", "1001", "--json", NULL),
                     CLI_EXIT_OK);
    assert_int_equal(fleet.asks, 2);
    assert_int_equal(fleet.sel[0].n_racks, 2);
    assert_string_equal(fleet.after[1], "h00999");
    assert_int_equal(fleet.limit[1], 1);
    assert_json_names("host", 0, 1001);
    fleet_reset(true);
    assert_int_equal(run("status", NULL), CLI_EXIT_OK);
    assert_int_equal(fleet.asks, 3);
    assert_true(fleet.sel[2].all);
    assert_int_equal(count_lines(out_text), 1 + FLEET);
    fleet_reset(true);
    assert_int_equal(run("status", "--all", "--after", "h00100", "--limit", "2", NULL), 0);
    assert_string_equal(fleet.after[0], "h00100");
    assert_non_null(strstr(out_text, "\nh00101 "));
    assert_non_null(strstr(out_text, "\nh00102 "));
    assert_int_equal(count_lines(out_text), 3);

    /* nothing to list: the header alone, an empty array */
    fleet_reset(true);
    assert_int_equal(run("hosts", "list", "--after", "h99999", NULL), CLI_EXIT_OK);
    assert_string_equal(out_text, "NAME  RACK  ADDRESS  GATEWAY  HOSTNAME  POWER  MACS\n");
    assert_int_equal(run("status", "--after", "h99999", "--json", NULL), CLI_EXIT_OK);
    assert_string_equal(out_text, "[]\n");

    /* a controller from before paging answers everything at once: printed
     * (up to --limit), and not asked again */
    fleet_reset(false);
    assert_int_equal(run("hosts", "list", "--json", NULL), CLI_EXIT_OK);
    assert_int_equal(fleet.asks, 1);
    assert_json_names("name", 0, FLEET);
    fleet_reset(false);
    assert_int_equal(run("status", "--limit", "3", NULL), CLI_EXIT_OK);
    assert_int_equal(fleet.asks, 1);
    assert_int_equal(count_lines(out_text), 1 + 3);

    /* pages that do not advance are not followed for ever */
    fleet_reset(true);
    fleet.stuck = true;
    assert_int_equal(run("hosts", "list", NULL), CLI_EXIT_FAILED);
    assert_int_equal(fleet.asks, 2);
    assert_non_null(strstr(err_text, "do not advance"));

    assert_usage("hosts", "list", "--limit", "0");
    assert_usage("hosts", "list", "--after", "bad name");
    assert_usage("hosts", "show", "web1", "--limit", "3");
    assert_usage("hosts", "show", "web1", "--after", "web0");
    assert_usage("status", "web1", "--limit", "3");
    assert_usage("status", "web1", "--after", "web0");
    assert_usage("install", "web1", "--profile", "el9", "--limit", "3");
    assert_usage("cancel", "--all", "--after", "web0");
}

/* events page by seq, printed as they come, until an empty page. */
static void test_events_pages(void **state)
{
    fleet_reset(true);
    assert_int_equal(run("events", "--json", NULL), CLI_EXIT_OK);
    assert_int_equal(fleet.asks, 4); /* 1000, 1000, 500, then none */
    assert_int_equal(fleet.after_seq[1], 1000);
    assert_int_equal(fleet.after_seq[3], FLEET);
    assert_int_equal(fleet.limit[0], 1000);
    assert_json_names("host", 0, FLEET);

    fleet_reset(true);
    assert_int_equal(run("events", "--after", "10", "--limit", "1200", NULL), CLI_EXIT_OK);
    assert_int_equal(fleet.asks, 2);
    assert_int_equal(fleet.after_seq[0], 10);
    assert_int_equal(fleet.after_seq[1], 1010);
    assert_int_equal(fleet.limit[1], 200);
    assert_int_equal(count_lines(out_text), 1 + 1200);
    assert_int_equal(strncmp(out_text, "SEQ ", 4), 0);
    assert_null(strstr(out_text, "\nSEQ "));
}

static void test_show_unknown_host_is_not_found(void **state)
{
    static Rackboot__V1__HostList empty = RACKBOOT__V1__HOST_LIST__INIT;
    static Rackboot__V1__ApiReply reply = RACKBOOT__V1__API_REPLY__INIT;
    reply.status = RACKBOOT__V1__STATUS__STATUS_OK;
    reply.body_case = RACKBOOT__V1__API_REPLY__BODY_HOSTS;
    reply.hosts = &empty;
    fake.reply = &reply;
    assert_int_equal(run("hosts", "show", "web99", NULL), CLI_EXIT_NOT_FOUND);
    assert_string_equal(err_text, "rackboot: host web99 not found\n");
    Rackboot__V1__ApiRequest *req = sent();
    assert_int_equal(req->hosts_list->n_names, 1);
    rbproto_api_request_free(req);
}

#define SHA_A "sha256=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static void write_file(const char *name, const char *text, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, name);
    assert_int_equal(fileio_write_atomic(path, text, strlen(text), 0644), 0);
}

static void test_profiles_import(void **state)
{
    char ks[128], conf[128];
    static const char ks_text[] = "text\n%pre\necho {{hostname}}\n%end\n";
    write_file("el9.ks", ks_text, ks, sizeof(ks));
    write_file("profiles.conf",
               "[profile el9]\n"
               "kernel = http://m/vmlinuz " SHA_A "\n"
               "initrd = http://m/initrd.img " SHA_A "\n"
               "stage2 = http://m/install.img " SHA_A "\n"
               "file.updates.img = http://m/updates.img " SHA_A "\n"
               "cmdline = console=ttyS0\n"
               "kickstart = el9.ks\n"
               "overlay = yes\n"
               "ip = dhcp6\n"
               "[host web17]\n"
               "mac = 52:54:00:12:34:56\n"
               "address = 2001:db8:1::17\n"
               "install = el9\n",
               conf, sizeof(conf));
    static Rackboot__V1__ApiReply ok = RACKBOOT__V1__API_REPLY__INIT;
    ok.status = RACKBOOT__V1__STATUS__STATUS_OK;
    fake.reply = &ok;
    assert_int_equal(run("profiles", "import", conf, NULL), 0);
    assert_string_equal(out_text, "imported 1 profile: el9\n");
    Rackboot__V1__ApiRequest *req = sent();
    const Rackboot__V1__ProfilesImportRequest *pi = req->profiles_import;
    assert_true(pi->update_existing); /* re-importing updates */
    assert_int_equal(pi->n_profiles, 1);
    const Rackboot__V1__Profile *p = pi->profiles[0];
    assert_string_equal(p->name, "el9");
    assert_int_equal(p->n_images, 4);
    assert_int_equal(p->images[0]->kind, RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_KERNEL);
    assert_string_equal(p->images[0]->name, "vmlinuz");
    assert_int_equal(p->images[3]->kind, RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_OTHER);
    assert_string_equal(p->images[3]->name, "updates.img");
    assert_string_equal(p->kernel_args, "console=ttyS0");
    assert_string_equal(p->kickstart_template, ks_text);
    uint8_t digest[32];
    assert_int_equal(sha256_buffer(ks_text, strlen(ks_text), digest), 0);
    assert_int_equal(p->kickstart_sha256.len, 32);
    assert_memory_equal(p->kickstart_sha256.data, digest, 32);
    assert_true(p->overlay);
    assert_int_equal(p->ip_mode, RACKBOOT__V1__IP_MODE__IP_MODE_DHCP6);
    assert_true(p->keep_ra);
    rbproto_api_request_free(req);

    /* The same parser as the agent: its errors, with file and line, and
     * nothing is sent. */
    write_file("bad.conf",
               "[profile el9]\n"
               "kernel = http://m/vmlinuz\n"
               "initrd = http://m/initrd.img " SHA_A "\n"
               "kickstart = missing.ks\n",
               conf, sizeof(conf));
    int calls = fake.calls;
    assert_int_equal(run("profiles", "import", conf, NULL), CLI_EXIT_USAGE);
    assert_int_equal(fake.calls, calls);
    char expect[256];
    snprintf(expect, sizeof(expect), "%s:2: kernel: expected \"URL sha256=HEX\"", conf);
    assert_non_null(strstr(err_text, expect));
    snprintf(expect, sizeof(expect), "%s:4: kickstart: cannot read", conf);
    assert_non_null(strstr(err_text, expect));
}

static void test_hosts_import_ini_and_csv(void **state)
{
    char conf[128], csv[128];
    write_file("hosts.conf",
               "[host web17]\n"
               "mac = 52:54:00:12:34:56 52:54:00:12:34:57\n"
               "address = 2001:db8:1::17\n"
               "gateway = fe80::1\n"
               "dns = 2001:db8::53\n"
               "install = el9\n",
               conf, sizeof(conf));
    static Rackboot__V1__ApiReply ok = RACKBOOT__V1__API_REPLY__INIT;
    ok.status = RACKBOOT__V1__STATUS__STATUS_OK;
    fake.reply = &ok;
    /* The standalone file names no rack. */
    assert_usage("hosts", "import", conf);
    assert_non_null(strstr(err_text, "give --rack"));

    assert_int_equal(run("hosts", "import", conf, "--rack", "r1", "--update", NULL), 0);
    assert_string_equal(out_text, "imported 1 host\n");
    char note[256];
    snprintf(note, sizeof(note), "note: %s:6: install = el9 is not imported", conf);
    assert_non_null(strstr(err_text, note));
    snprintf(note, sizeof(note), "note: %s:5: dns is not imported", conf);
    assert_non_null(strstr(err_text, note));
    Rackboot__V1__ApiRequest *req = sent();
    assert_true(req->hosts_add->update_existing);
    assert_int_equal(req->hosts_add->n_hosts, 1);
    const Rackboot__V1__Host *h = req->hosts_add->hosts[0];
    assert_string_equal(h->name, "web17");
    assert_string_equal(h->rack, "r1");
    assert_int_equal(h->n_macs, 2);
    assert_int_equal(h->prefix_length, 64);
    assert_int_equal(h->gateway.len, 16);
    rbproto_api_request_free(req);

    write_file("hosts.csv", "name,mac,rack,address\nweb18,52:54:00:12:34:58,r2,2001:db8:2::18\n",
               csv, sizeof(csv));
    assert_int_equal(run("hosts", "import", csv, "--json", NULL), 0);
    req = sent();
    assert_false(req->hosts_add->update_existing);
    assert_string_equal(req->hosts_add->hosts[0]->rack, "r2");
    rbproto_api_request_free(req);
    json_error_t jerr;
    json_t *j = json_loads(out_text, 0, &jerr);
    assert_non_null(j);
    assert_true(json_is_array(j));
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "name")), "web18");
    json_decref(j);

    /* A CONFLICT hints at --update. */
    fake.reply = refused(RACKBOOT__V1__STATUS__STATUS_CONFLICT, "host web18 exists");
    assert_int_equal(run("hosts", "import", csv, NULL), CLI_EXIT_FAILED);
    assert_non_null(strstr(err_text, "--update"));

    write_file("broken.csv", "name,mac,rack,address\nweb18,52:54:00:12:34:58,r2\n", csv,
               sizeof(csv));
    assert_usage("hosts", "import", csv);
    snprintf(note, sizeof(note), "%s:2: 3 fields, but the header has 4", csv);
    assert_non_null(strstr(err_text, note));
}

/* Runs `rackboot ARGS...` with `input` on standard input. */
#define run_stdin(input, ...)                                                                      \
    ({                                                                                             \
        char in_[128];                                                                             \
        write_file("stdin", input, in_, sizeof(in_));                                              \
        int saved_ = dup(STDIN_FILENO), fd_ = open(in_, O_RDONLY | O_CLOEXEC);                     \
        assert_true(saved_ >= 0 && fd_ >= 0);                                                      \
        assert_int_equal(dup2(fd_, STDIN_FILENO), STDIN_FILENO);                                   \
        close(fd_);                                                                                \
        int code_ = run(__VA_ARGS__, NULL);                                                        \
        assert_int_equal(dup2(saved_, STDIN_FILENO), STDIN_FILENO);                                \
        close(saved_);                                                                             \
        code_;                                                                                     \
    })

#define ADD_WEB1                                                                                   \
    "hosts", "add", "web1", "--mac", "52:54:00:00:00:01", "--rack", "r1", "--address", "2001:db8::1"

/* hosts add --bmc ...: the password only from a file or stdin, never from
 * the command line, never echoed, never in --json output. */
static void test_hosts_add_bmc(void **state)
{
    static Rackboot__V1__ApiReply ok = RACKBOOT__V1__API_REPLY__INIT;
    ok.status = RACKBOOT__V1__STATUS__STATUS_OK;
    fake.reply = &ok;
    char pw[128];
    write_file("bmc.pw", "Hunter2\n", pw, sizeof(pw));
    assert_int_equal(chmod(pw, 0600), 0);

    assert_int_equal(run(ADD_WEB1, "--bmc", "ipmi://[2001:db8:ff::1]:623", "--bmc-user", "admin",
                         "--bmc-password-file", pw, "--firmware", "uefi", "--json", NULL),
                     0);
    Rackboot__V1__ApiRequest *req = sent();
    const Rackboot__V1__Host *h = req->hosts_add->hosts[0];
    assert_string_equal(h->bmc_url, "ipmi://[2001:db8:ff::1]:623");
    assert_string_equal(h->bmc_user, "admin");
    assert_string_equal(h->bmc_password, "Hunter2");
    assert_int_equal(h->firmware, RACKBOOT__V1__FIRMWARE__FIRMWARE_UEFI);
    rbproto_api_request_free(req);
    /* The reply has no rows: what was sent is shown, without its secret. */
    assert_null(strstr(out_text, "Hunter2"));
    assert_non_null(strstr(out_text, "\"bmc_password_set\": true"));

    assert_int_equal(run_stdin("Hunter3\n", ADD_WEB1, "--bmc", "ipmi://bmc1.example.com",
                               "--bmc-password-stdin"),
                     0);
    req = sent();
    assert_string_equal(req->hosts_add->hosts[0]->bmc_password, "Hunter3");
    assert_string_equal(req->hosts_add->hosts[0]->bmc_user, "");
    rbproto_api_request_free(req);
    assert_null(strstr(out_text, "Hunter3"));

    /* Refused before anything is sent, the secret never echoed. */
    assert_usage(ADD_WEB1, "--bmc", "ipmi://[2001:db8:ff::1]", "--bmc-password", "Hunter4");
    assert_non_null(strstr(err_text, "never taken on the command line"));
    assert_null(strstr(err_text, "Hunter4"));
    assert_usage(ADD_WEB1, "--bmc", "ipmi://[2001:db8:ff::1]", "--bmc-pass=Hunter4");
    assert_null(strstr(err_text, "Hunter4"));
    assert_usage(ADD_WEB1, "--bmc", "ipmi://admin:Hunter4@[2001:db8:ff::1]");
    assert_null(strstr(err_text, "Hunter4"));
    assert_usage(ADD_WEB1, "--bmc", "redfish://[2001:db8:ff::1]");
    assert_usage(ADD_WEB1, "--bmc-user", "admin");
    assert_non_null(strstr(err_text, "need --bmc URL"));
    assert_usage(ADD_WEB1, "--bmc-password-file", pw);
    assert_usage(ADD_WEB1, "--bmc", "ipmi://[2001:db8:ff::1]", "--bmc-password-file", pw,
                 "--bmc-password-stdin");
    assert_usage(ADD_WEB1, "--firmware", "efi");
    int calls = fake.calls;
    assert_int_equal(
        run_stdin("", ADD_WEB1, "--bmc", "ipmi://[2001:db8:ff::1]", "--bmc-password-stdin"),
        CLI_EXIT_USAGE);
    assert_non_null(strstr(err_text, "--bmc-password-stdin: empty"));
    assert_int_equal(run_stdin("Hunter5\nmore\n", ADD_WEB1, "--bmc", "ipmi://[2001:db8:ff::1]",
                               "--bmc-password-stdin"),
                     CLI_EXIT_USAGE);
    assert_non_null(strstr(err_text, "more than one line"));
    assert_null(strstr(err_text, "Hunter5"));
    assert_int_equal(chmod(pw, 0644), 0);
    assert_usage(ADD_WEB1, "--bmc", "ipmi://[2001:db8:ff::1]", "--bmc-password-file", pw);
    assert_non_null(strstr(err_text, "0644"));
    assert_null(strstr(err_text, "Hunter2"));
    assert_int_equal(fake.calls, calls);

    /* The standalone hosts file's keys travel to the controller. */
    char conf[128];
    assert_int_equal(chmod(pw, 0600), 0);
    write_file("hosts.conf",
               "[host web17]\n"
               "mac = 52:54:00:12:34:56\n"
               "address = 2001:db8:1::17\n"
               "bmc = ipmi://[2001:db8:ff::17]\n"
               "bmc_user = admin\n"
               "bmc_password_file = bmc.pw\n"
               "firmware = bios\n",
               conf, sizeof(conf));
    assert_int_equal(run("hosts", "import", conf, "--rack", "r1", NULL), 0);
    req = sent();
    h = req->hosts_add->hosts[0];
    assert_string_equal(h->bmc_url, "ipmi://[2001:db8:ff::17]");
    assert_string_equal(h->bmc_user, "admin");
    assert_string_equal(h->bmc_password, "Hunter2");
    assert_int_equal(h->firmware, RACKBOOT__V1__FIRMWARE__FIRMWARE_BIOS);
    rbproto_api_request_free(req);
}

/* The fake controller's power commands: `power` makes one per host (p1,
 * p2, ...), not done; each `power_results` ask finishes one more. */
static struct {
    int asks;
    int finish_after; /* asks before each command is done; 0: never */
    bool fail_second; /* the second command fails */
} pw;

static const Rackboot__V1__ApiReply *power_reply(const Rackboot__V1__ApiRequest *req)
{
    static Rackboot__V1__ApiReply reply;
    static Rackboot__V1__PowerList list;
    static Rackboot__V1__PowerRow rows[8], *ptrs[8];
    static char ids[8][24], hosts[8][64];
    reply = (Rackboot__V1__ApiReply)RACKBOOT__V1__API_REPLY__INIT;
    list = (Rackboot__V1__PowerList)RACKBOOT__V1__POWER_LIST__INIT;
    reply.status = RACKBOOT__V1__STATUS__STATUS_OK;
    reply.body_case = RACKBOOT__V1__API_REPLY__BODY_POWER;
    reply.power = &list;
    size_t n = req->body_case == RACKBOOT__V1__API_REQUEST__BODY_POWER ? req->power->target->n_hosts
                                                                       : req->power_results->n_ids;
    assert_true(n <= 8);
    if (req->body_case == RACKBOOT__V1__API_REQUEST__BODY_POWER_RESULTS) {
        pw.asks++;
    }
    for (size_t i = 0; i < n; i++) {
        rows[i] = (Rackboot__V1__PowerRow)RACKBOOT__V1__POWER_ROW__INIT;
        snprintf(ids[i], sizeof(ids[i]), "p%zu", i + 1);
        if (req->body_case == RACKBOOT__V1__API_REQUEST__BODY_POWER) {
            snprintf(hosts[i], sizeof(hosts[i]), "%s", req->power->target->hosts[i]);
            rows[i].action = req->power->action;
        } else {
            assert_string_equal(req->power_results->ids[i], ids[i]);
            rows[i].action = RACKBOOT__V1__POWER_ACTION__POWER_ACTION_CYCLE;
            rows[i].done = pw.finish_after && pw.asks >= pw.finish_after;
            rows[i].ok = rows[i].done && !(pw.fail_second && i == 1);
            if (rows[i].ok) {
                rows[i].power_state = RACKBOOT__V1__POWER_STATE__POWER_STATE_ON;
            } else if (rows[i].done) {
                rows[i].message = S("BMC did not answer");
            }
        }
        rows[i].id = ids[i];
        rows[i].host = hosts[i];
        ptrs[i] = &rows[i];
    }
    list.rows = ptrs;
    list.n_rows = n;
    return &reply;
}

static void test_power(void **state)
{
    fake.reply_to = power_reply;
    memset(&pw, 0, sizeof(pw));
    pw.finish_after = 2;
    /* run() builds its own cli: the poll interval is the default (1 s),
     * so asks are kept few. */
    assert_int_equal(run("power", "cycle", "web1", "web2", "--bootdev", "pxe", NULL), 0);
    assert_int_equal(pw.asks, 2);
    Rackboot__V1__ApiRequest *req = sent();
    assert_int_equal(req->body_case, RACKBOOT__V1__API_REQUEST__BODY_POWER_RESULTS);
    assert_int_equal(req->power_results->n_ids, 2);
    rbproto_api_request_free(req);
    assert_string_equal(out_text, "HOST  ACTION  RESULT  POWER  MESSAGE\n"
                                  "web1  cycle   ok      on     \n"
                                  "web2  cycle   ok      on     \n");

    /* A failed host: exit 1, its line and a summary. */
    memset(&pw, 0, sizeof(pw));
    pw.finish_after = 1;
    pw.fail_second = true;
    assert_int_equal(run("power", "on", "web1", "web2", "--json", NULL), CLI_EXIT_FAILED);
    json_error_t jerr;
    json_t *j = json_loads(out_text, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "result")),
                        "failed");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "message")),
                        "BMC did not answer");
    json_decref(j);
    assert_non_null(strstr(err_text, "1 of 2 hosts failed"));

    /* --no-wait: the queued commands, no asking. */
    memset(&pw, 0, sizeof(pw));
    assert_int_equal(run("power", "status", "web1", "--no-wait", NULL), 0);
    assert_int_equal(pw.asks, 0);
    req = sent();
    assert_int_equal(req->body_case, RACKBOOT__V1__API_REQUEST__BODY_POWER);
    assert_int_equal(req->power->action, RACKBOOT__V1__POWER_ACTION__POWER_ACTION_STATUS);
    assert_int_equal(req->power->boot_device, RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_UNSPECIFIED);
    rbproto_api_request_free(req);
    assert_non_null(strstr(out_text, "web1  status  queued"));

    /* Nobody answers: timed out after --timeout, exit 1, a clear line. */
    memset(&pw, 0, sizeof(pw));
    assert_int_equal(run("power", "off", "web1", "--timeout", "1", NULL), CLI_EXIT_FAILED);
    assert_true(pw.asks >= 1 && pw.asks <= 2);
    assert_non_null(strstr(out_text, "web1  cycle   timed_out"));
    assert_non_null(strstr(err_text, "1 of 1 hosts had no outcome after 1 s"));

    /* Racks and --all select like install. */
    memset(&pw, 0, sizeof(pw));
    assert_int_equal(run("power", "soft", "--rack", "r1", "r2", "--no-wait", NULL), 0);
    req = sent();
    assert_int_equal(req->power->target->n_racks, 2);
    assert_int_equal(req->power->action, RACKBOOT__V1__POWER_ACTION__POWER_ACTION_SOFT);
    rbproto_api_request_free(req);
    assert_int_equal(fake.timeout_ms, CLI_FLEET_TIMEOUT_MS);

    assert_usage("power");
    assert_usage("power", "reboot", "web1");
    assert_non_null(strstr(err_text, "unknown ACTION 'reboot'"));
    assert_usage("power", "on");
    assert_usage("power", "on", "web1", "--bootdev", "cdrom");
    assert_usage("power", "on", "web1", "--timeout", "0");
    assert_usage("power", "on", "--all", "web1");

    /* A viewer's refusal is the controller's line, exit 1. */
    fake.reply_to = NULL;
    fake.reply = refused(RACKBOOT__V1__STATUS__STATUS_PERMISSION_DENIED,
                         "permission denied: viewer may not use hosts' BMCs");
    assert_int_equal(run("power", "status", "web1", NULL), CLI_EXIT_FAILED);
    assert_non_null(strstr(err_text, "viewer may not use hosts' BMCs"));
}

static void test_install_power(void **state)
{
    fake.reply = ok_statuses();
    assert_int_equal(run("install", "web1", "--profile", "el9", "--power", "cycle", NULL), 0);
    Rackboot__V1__ApiRequest *req = sent();
    assert_int_equal(req->install->power, RACKBOOT__V1__POWER_ACTION__POWER_ACTION_CYCLE);
    rbproto_api_request_free(req);
    assert_int_equal(run("install", "web1", "--profile", "el9", "--power", "on", NULL), 0);
    req = sent();
    assert_int_equal(req->install->power, RACKBOOT__V1__POWER_ACTION__POWER_ACTION_ON);
    rbproto_api_request_free(req);
    assert_int_equal(run("install", "web1", "--profile", "el9", NULL), 0);
    req = sent();
    assert_int_equal(req->install->power, RACKBOOT__V1__POWER_ACTION__POWER_ACTION_UNSPECIFIED);
    rbproto_api_request_free(req);
    assert_usage("install", "web1", "--profile", "el9", "--power", "off");
    assert_non_null(strstr(err_text, "--power off: expected cycle or on"));
    assert_usage("cancel", "web1", "--power", "cycle");
}

/* --state and --phase filter status and hosts list: whole pages asked,
 * the rows kept printed and counted against --limit; hosts list asks the
 * status, then the hosts it kept by name. */
static void test_filters(void **state)
{
    fleet_reset(true);
    assert_int_equal(run("status", "--state", "installing", "--json", NULL), CLI_EXIT_OK);
    assert_int_equal(fleet.asks, 3);
    assert_int_equal(fleet.limit[0], 1000);
    json_error_t jerr;
    json_t *a = json_loads(out_text, 0, &jerr);
    assert_non_null(a);
    assert_int_equal(json_array_size(a), FLEET / 3);
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e)
    {
        assert_string_equal(json_string_value(json_object_get(e, "state")), "installing");
    }
    json_decref(a);

    /* several states; --limit counts what is printed, -o name */
    fleet_reset(true);
    assert_int_equal(run("status", "--state", "none,failed", "--limit", "4", "-o", "name", NULL),
                     CLI_EXIT_OK);
    assert_string_equal(out_text, "h00000\nh00002\nh00003\nh00005\n");
    assert_int_equal(fleet.limit[0], 1000); /* not 4: the filter keeps fewer */

    /* a phase; named hosts are filtered too */
    fleet_reset(true);
    assert_int_equal(
        run("status", "--phase", "kickstart_fetched", "--limit", "2", "-o", "name", NULL),
        CLI_EXIT_OK);
    assert_string_equal(out_text, "h00001\nh00004\n");
    fake.reply_to = NULL;
    static Rackboot__V1__StatusRow rows[2], *row_ptrs[] = { &rows[0], &rows[1] };
    for (size_t k = 0; k < 2; k++) {
        rackboot__v1__status_row__init(&rows[k]);
        rows[k].host = k ? S("web2") : S("web1");
        rows[k].install_id = S("id");
        rows[k].state = k ? RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_FAILED
                          : RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_INSTALLED;
    }
    static Rackboot__V1__StatusList named_list = RACKBOOT__V1__STATUS_LIST__INIT;
    static Rackboot__V1__ApiReply named = RACKBOOT__V1__API_REPLY__INIT;
    named_list.n_rows = 2;
    named_list.rows = row_ptrs;
    named.status = RACKBOOT__V1__STATUS__STATUS_OK;
    named.body_case = RACKBOOT__V1__API_REPLY__BODY_STATUSES;
    named.statuses = &named_list;
    fake.reply = &named;
    assert_int_equal(run("status", "web1", "web2", "--state", "failed", "-o", "name", NULL), 0);
    assert_string_equal(out_text, "web2\n");

    /* hosts list --state: the status pages, then the hosts by name */
    fleet_reset(true);
    assert_int_equal(run("hosts", "list", "--rack", "r1", "--state", "failed", "--limit", "3", "-o",
                         "name", NULL),
                     CLI_EXIT_OK);
    assert_string_equal(out_text, "h00002\nh00005\nh00008\n");
    assert_int_equal(fleet.asks, 2);
    assert_int_equal(fleet.sel[0].n_racks, 1);
    Rackboot__V1__ApiRequest *req = sent();
    assert_int_equal(req->body_case, RACKBOOT__V1__API_REQUEST__BODY_HOSTS_LIST);
    assert_int_equal(req->hosts_list->n_names, 3);
    rbproto_api_request_free(req);
    fleet_reset(true);
    assert_int_equal(run("hosts", "list", "--state", "installing", NULL), CLI_EXIT_OK);
    assert_int_equal(count_lines(out_text), 1 + FLEET / 3);
    assert_int_equal(strncmp(out_text, "NAME ", 5), 0);
    assert_true(fleet.sel[0].all);

    /* a host removed between the status page and the hosts asked by name:
     * the listing fails and is left unfinished (no closing "]") */
    fleet_reset(true);
    fleet.names_ok = 1;
    assert_int_equal(run("hosts", "list", "--state", "failed", "--json", NULL), CLI_EXIT_NOT_FOUND);
    assert_int_equal(strncmp(out_text, "[\n  {", 5), 0);
    assert_null(strstr(out_text, "\n]"));
    assert_non_null(strstr(err_text, "host h00002 not found"));
    fleet_reset(true);
    fleet.names_ok = 0;
    assert_int_equal(run("hosts", "list", "--state", "failed", "--json", NULL), CLI_EXIT_NOT_FOUND);
    assert_string_equal(out_text, ""); /* not "[]": nothing was listed */
    fleet_reset(true);
    fleet.names_ok = 1; /* YAML: the emitter of the first page is let go */
    assert_int_equal(run("hosts", "list", "--state", "failed", "-o", "yaml", NULL),
                     CLI_EXIT_NOT_FOUND);
    assert_int_equal(strncmp(out_text, "- address: ", 11), 0);

    assert_usage("status", "--state", "bogus");
    assert_non_null(strstr(err_text, "--state bogus: expected a comma-separated list of none, "
                                     "requested, dispatched"));
    assert_usage("status", "--state", "installing,");
    assert_usage("status", "--phase", "installed,nope");
    assert_non_null(strstr(err_text, "dhcp_bound"));
    assert_non_null(strstr(err_text, "first_boot")); /* every phase the schema has */
    assert_usage("install", "web1", "--profile", "el9", "--state", "failed");
    assert_usage("hosts", "show", "web1", "--state", "failed");
}

/* -o table|wide|json|yaml|name, --json, -q, before or after the command. */
static void test_output_formats(void **state)
{
    fleet_reset(true);
    static const char one_host[] = "- address: '2001:db8:100::'\n"
                                   "  bmc: null\n"
                                   "  bmc_password_set: false\n"
                                   "  bmc_user: null\n"
                                   "  duid: null\n"
                                   "  firmware: null\n"
                                   "  gateway: null\n"
                                   "  hostname: null\n"
                                   "  macs:\n"
                                   "  - '52:54:00:00:00:01'\n"
                                   "  name: h00000\n"
                                   "  power_state: null\n"
                                   "  power_updated: null\n"
                                   "  prefix: 64\n"
                                   "  rack: r1\n";
    assert_int_equal(run("hosts", "list", "--limit", "1", "-o", "yaml", NULL), CLI_EXIT_OK);
    assert_string_equal(out_text, one_host);
    /* a sequence item per host, over pages */
    fleet_reset(true);
    assert_int_equal(run("hosts", "list", "-o", "yaml", NULL), CLI_EXIT_OK);
    assert_int_equal(strncmp(out_text, one_host, sizeof(one_host) - 1), 0);
    size_t items = 0;
    for (const char *p = out_text; (p = strstr(p, "\n- address: ")); p++) {
        items++;
    }
    assert_int_equal(items + 1, FLEET);
    /* nothing to list: an empty sequence */
    fleet_reset(true);
    assert_int_equal(run("-o", "yaml", "status", "--after", "h99999", NULL), CLI_EXIT_OK);
    assert_string_equal(out_text, "[]\n");

    /* -o name: a name a line, over pages */
    fleet_reset(true);
    assert_int_equal(run("hosts", "list", "--output", "name", NULL), CLI_EXIT_OK);
    assert_int_equal(count_lines(out_text), FLEET);
    assert_int_equal(strncmp(out_text, "h00000\nh00001\n", 14), 0);

    /* wide: more columns; the plain table keeps its own */
    fleet_reset(true);
    assert_int_equal(run("hosts", "list", "--limit", "1", "-o", "wide", NULL), CLI_EXIT_OK);
    assert_string_equal(out_text, "NAME    RACK  ADDRESS            GATEWAY  HOSTNAME  FIRMWARE  "
                                  "DUID  BMC  POWER  MACS\n"
                                  "h00000  r1    2001:db8:100::/64  -        -         -         "
                                  "-     -    -      52:54:00:00:00:01\n");
    fleet_reset(true);
    assert_int_equal(run("status", "--limit", "1", "-o", "wide", NULL), CLI_EXIT_OK);
    assert_non_null(strstr(out_text, " INSTALL  ATTEMPT "));
    fleet_reset(true);
    assert_int_equal(run("-o", "wide", "-o", "table", "status", "--limit", "1", NULL), 0);
    assert_null(strstr(out_text, " INSTALL "));

    /* --json is -o json, wherever it is given */
    fleet_reset(true);
    assert_int_equal(run("--json", "hosts", "list", "--limit", "3", NULL), CLI_EXIT_OK);
    assert_json_names("name", 0, 3);

    /* -q: nothing on stdout, errors still on stderr, the exit status */
    fake.reply_to = NULL;
    fake.reply = ok_statuses();
    assert_int_equal(run("install", "web1", "--profile", "el9", "-q", NULL), CLI_EXIT_OK);
    assert_string_equal(out_text, "");
    fake.reply = refused(RACKBOOT__V1__STATUS__STATUS_NOT_FOUND, "host web9 not found");
    assert_int_equal(run("--quiet", "install", "web9", "--profile", "el9", NULL),
                     CLI_EXIT_NOT_FOUND);
    assert_string_equal(out_text, "");
    assert_non_null(strstr(err_text, "host web9 not found"));

    assert_usage("hosts", "list", "-o", "xml");
    assert_non_null(strstr(err_text, "-o xml: expected table, wide, json, yaml or name"));
    assert_usage("-o", "csv", "status");
    assert_usage("status", "-o");
    assert_usage("watch", "-o", "yaml");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_usage_errors_exit_2_without_sending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_selectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contexts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_controllers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fleet_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_status_exit_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_unknown_host_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_and_status_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profiles_import, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_import_ini_and_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_add_bmc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power, setup, teardown),
        cmocka_unit_test_setup_teardown(test_install_power, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_formats, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

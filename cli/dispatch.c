/* The rackboot command line: global options, then one subcommand. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "context.h"
#include "parse.h"
#include "util.h"
#include "version.h"

static const char help[] =
    "Usage: rackboot [OPTIONS] COMMAND [ARGS...]\n"
    "\n"
    "Drive a rackboot controller: the fleet's hosts, install profiles and\n"
    "installs.\n"
    "\n"
    "Inventory:\n"
    "  hosts import FILE [--rack R] [--update]   hosts from CSV or a standalone hosts file\n"
    "  hosts add NAME --mac M --rack R --address A [--prefix N --gateway G --hostname H]\n"
    "            [--bmc URL --bmc-user U --bmc-password-file F|--bmc-password-stdin\n"
    "             --firmware uefi|bios]\n"
    "  hosts list [--rack R] [--state S] [--phase P] [--limit N] [--after NAME]\n"
    "  hosts show NAME... | remove NAME...\n"
    "  racks                                     racks, their agents and generations\n"
    "Profiles:\n"
    "  profiles import FILE...                   [profile NAME] sections (updates existing)\n"
    "  profiles list | show NAME...\n"
    "  images list                               every profile's images\n"
    "Installs:\n"
    "  install HOST... | --rack R... | --all --profile NAME [--replace] [--power cycle|on]\n"
    "  cancel HOST... | --rack R... | --all\n"
    "  status [HOST... | --rack R... [--limit N] [--after NAME]] [--state S] [--phase P]\n"
    "  watch [HOST... | --rack R...] [--json]    live progress until every install ends\n"
    "  events [HOST] [--after SEQ] [--limit N]\n"
    "  audit [--since TIME] [--limit N]          who changed what (operators only)\n"
    "Power (hosts with a BMC):\n"
    "  power on|off|cycle|soft|status HOST... | --rack R... | --all [--bootdev pxe|disk]\n"
    "        [--no-wait] [--timeout SECONDS]     waits for every host's outcome\n"
    "Web view:\n"
    "  web login                                 a one-time URL that signs you in\n"
    "\n"
    "CLI:\n"
    "  contexts                                  the config file's controllers\n"
    "\n"
    "Options:\n"
    "  --controller URL   ipc://PATH or tls+tcp://HOST:PORT (default: $RACKBOOT_CONTROLLER,\n"
    "                     else the context's, else " CLI_DEFAULT_CONTROLLER ");\n"
    "                     repeat it (or list URLs) for controllers sharing one store:\n"
    "                     the first that answers is used\n"
    "  --ca FILE --cert FILE --key FILE [--crl FILE] [--server-name NAME]\n"
    "                     the fleet CA and your operator certificate, for tls+tcp://\n"
    "                     (default: $RACKBOOT_CA, ... $RACKBOOT_SERVER_NAME, else the\n"
    "                     context's)\n"
    "  --context NAME     a context of the config file (default: $RACKBOOT_CONTEXT,\n"
    "                     else the file's own; 'rackboot contexts --help')\n"
    "  --timeout SECONDS  how long to wait for the controller (default 30; 600 for\n"
    "                     install and cancel of --rack or --all)\n"
    "  -o, --output FORMAT\n"
    "                     table (default); wide: more columns (hosts list, status);\n"
    "                     json or yaml (keys sorted); name: one name a line.\n"
    "                     Before or after the command, as are --json and -q\n"
    "  --json             -o json\n"
    "  -q, --quiet        nothing on standard output: errors only, and the exit status\n"

    "  -h, --help         this text ('rackboot COMMAND --help' for one command)\n"
    "  -V, --version      print the version\n"
    "\n"
    "hosts list, status and events come from the controller 1,000 rows at a time\n"
    "and print as they come; --limit N stops after N rows, --after continues after\n"
    "a host name (events: a SEQ).\n"
    "\n"
    "Exit status: 0 ok, 1 failed (the controller refused or failed the request,\n"
    "permission denied included, or an install failed), 2 usage (bad command line or input file; "
    "nothing was\n"
    "sent), 3 not found, 4 controller unreachable or not answering.\n";

void cli_print_help(FILE *f)
{
    fputs(help, f);
}

typedef struct command {
    const char *name;
    int (*run)(cli *c, int argc, char **argv);
} command;

static const command commands[] = {
    { "hosts", cmd_hosts },       { "host", cmd_hosts },        { "racks", cmd_racks },
    { "profiles", cmd_profiles }, { "profile", cmd_profiles },  { "images", cmd_images },
    { "install", cmd_install },   { "cancel", cmd_cancel },     { "status", cmd_status },
    { "watch", cmd_watch },       { "events", cmd_events },     { "audit", cmd_audit },
    { "power", cmd_power },       { "contexts", cmd_contexts }, { "context", cmd_contexts },
    { "web", cmd_web },
};

int cli_dispatch(cli *c, int argc, char **argv)
{
    if (argc < 1) {
        cli_print_help(c->err);
        return CLI_EXIT_USAGE;
    }
    if (streq(argv[0], "help")) {
        if (argc > 1) {
            /* "rackboot help hosts" is "rackboot hosts --help". */
            char help_opt[] = "--help";
            char *sub[] = { argv[1], help_opt, NULL };
            return cli_dispatch(c, 2, sub);
        }
        cli_print_help(c->out);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        if (streq(argv[0], commands[i].name)) {
            return commands[i].run(c, argc, argv);
        }
    }
    return cli_usage_error(c, NULL, "unknown command '%s'", argv[0]);
}

/* The controller URLs and, for TLS, the files they need, wherever they
 * came from (context.h); splits c->controller into c->controller_urls. */
static int check_controller(cli *c)
{
    int r =
        parse_list(c->controller, c->controller_urls, CLI_MAX_CONTROLLERS, &c->n_controller_urls);
    if (r == -E2BIG) {
        return cli_usage_error(c, NULL, "controller (%s): more than %u URLs", c->controller_from,
                               CLI_MAX_CONTROLLERS);
    }
    if (r < 0 || c->n_controller_urls == 0) {
        return cli_usage_error(c, NULL, "controller (%s): %s", c->controller_from,
                               r < 0 ? errstr(r) : "no URL");
    }
    for (size_t i = 0; i < c->n_controller_urls; i++) {
        const char *url = c->controller_urls[i];
        bool tls = strncmp(url, "tls+tcp://", 10) == 0;
        bool ipc = strncmp(url, "ipc://", 6) == 0;
        if (!tls && !ipc) {
            return cli_usage_error(c, NULL,
                                   "controller %s (%s): expected ipc://PATH or tls+tcp://HOST:PORT",
                                   url, c->controller_from);
        }
        if (tls && (!c->ca || !c->cert || !c->key)) {
            return cli_usage_error(
                c, NULL,
                "controller %s (%s) is tls+tcp://: it needs --ca, --cert and --key "
                "(or RACKBOOT_CA, RACKBOOT_CERT, RACKBOOT_KEY, or a context)",
                url, c->controller_from);
        }
    }
    return CLI_EXIT_OK;
}

/* A second --controller adds to the first (they are tried in order). */
static int add_controller_option(cli *c, const char *url)
{
    if (!c->controller) {
        c->controller = url;
        return CLI_EXIT_OK;
    }
    char *joined = NULL;
    if (asprintf(&joined, "%s,%s", c->controller, url) < 0) {
        cli_error(c, "out of memory");
        return CLI_EXIT_USAGE;
    }
    free(c->controller_joined);
    c->controller_joined = joined;
    c->controller = joined;
    return CLI_EXIT_OK;
}

static void release_controllers(cli *c)
{
    for (size_t i = 0; i < c->n_controller_urls; i++) {
        c->controller_urls[i] = (free(c->controller_urls[i]), NULL);
    }
    c->n_controller_urls = 0;
    if (c->controller == c->controller_joined) {
        c->controller = NULL;
    }
    c->controller_joined = (free(c->controller_joined), NULL);
}

static int run_main(cli *c, int argc, char **argv)
{
    enum {
        OPT_CONTROLLER = 1000,
        OPT_CA,
        OPT_CERT,
        OPT_KEY,
        OPT_CRL,
        OPT_SERVER_NAME,
        OPT_TIMEOUT,
        OPT_CONTEXT,
    };
    static const struct option opts[] = {
        { "controller", required_argument, NULL, OPT_CONTROLLER },
        { "ca", required_argument, NULL, OPT_CA },
        { "cert", required_argument, NULL, OPT_CERT },
        { "key", required_argument, NULL, OPT_KEY },
        { "crl", required_argument, NULL, OPT_CRL },
        { "server-name", required_argument, NULL, OPT_SERVER_NAME },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        CLI_OUTPUT_LONGOPTS,
        { "context", required_argument, NULL, OPT_CONTEXT },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *context = NULL;
    if (!c->timeout_ms) {
        c->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
    }
    int ch;
    uint32_t secs;
    optind = 0;
    /* '+': stop at the command; its options are its own. */
    while ((ch = getopt_long(argc, argv, "+:hV" CLI_OUTPUT_SHORTOPTS, opts, NULL)) != -1) {
        switch (ch) {
        case OPT_CONTROLLER:
            if (add_controller_option(c, optarg) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
            break;
        case OPT_CA:
            c->ca = optarg;
            break;
        case OPT_CERT:
            c->cert = optarg;
            break;
        case OPT_KEY:
            c->key = optarg;
            break;
        case OPT_CRL:
            c->crl = optarg;
            break;
        case OPT_SERVER_NAME:
            c->server_name = optarg;
            break;
        case OPT_TIMEOUT:
            if (parse_u32(optarg, 1, 3600, &secs) < 0) {
                return cli_usage_error(c, NULL, "--timeout %s: expected 1-3600 seconds", optarg);
            }
            c->timeout_ms = secs * 1000u;
            c->timeout_given = true;
            break;
        case OPT_CONTEXT:
            if (strempty(optarg)) {
                return cli_usage_error(c, NULL, "--context needs a name");
            }
            context = optarg;
            break;
        case 'V':
            fprintf(c->out, "rackboot %s\n", RACKBOOT_VERSION);
            return CLI_EXIT_OK;
        case 'h':
            cli_print_help(c->out);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, NULL, ch, argv) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    /* `contexts` lists them whatever the rest says. */
    bool listing =
        optind < argc && (streq(argv[optind], "contexts") || streq(argv[optind], "context"));
    int code = cli_context_resolve(c, context);
    if (code == CLI_EXIT_OK && !listing) {
        code = check_controller(c);
    }
    if (code == CLI_EXIT_OK || listing) {
        code = cli_dispatch(c, argc - optind, argv + optind);
    }
    cli_context_release(c);
    cli_output_release(c);
    return code;
}

int cli_main(cli *c, int argc, char **argv)
{
    int code = run_main(c, argc, argv);
    /* Here, so that every return of run_main() frees them. */
    release_controllers(c);
    return code;
}

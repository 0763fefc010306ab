/* rackboot hosts import|add|list|show|remove, and rackboot racks: the
 * inventory. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "commands.h"
#include "diag.h"
#include "fileio.h"
#include "hosts_csv.h"
#include "model/bmc.h"
#include "pages.h"
#include "parse.h"
#include "pb.h"
#include "profile_file.h"
#include "rbproto.h"
#include "render.h"
#include "timeutil.h"
#include "util.h"
#include "values.h"

static const char hosts_help[] =
    "Usage: rackboot hosts COMMAND ...\n"
    "\n"
    "  import FILE [--rack RACK] [--update]\n"
    "                 add hosts from a CSV file (header name,mac,rack,address and\n"
    "                 optional prefix,gateway,hostname) or from a standalone hosts\n"
    "                 file ([host NAME] sections; needs --rack)\n"
    "  add NAME --mac MAC [--mac MAC...] --rack RACK --address ADDR\n"
    "      [--prefix N] [--gateway ADDR] [--hostname FQDN] [--update]\n"
    "      [--bmc URL [--bmc-user USER] [--bmc-password-file FILE | --bmc-password-stdin]]\n"
    "      [--firmware uefi|bios]\n"
    "  list [--rack RACK] [--limit N] [--after NAME] [--state S] [--phase P]\n"
    "  show NAME...\n"
    "  remove NAME...\n"
    "\n"
    "Run 'rackboot hosts COMMAND --help' for one command.\n";

static const char import_help[] =
    "Usage: rackboot hosts import FILE [--rack RACK] [--update] [-o FORMAT]\n"
    "\n"
    "FILE is either CSV, with a header line naming its columns in any order:\n"
    "  name,mac,rack,address        required (mac: MACs separated by blanks)\n"
    "  prefix,gateway,hostname      optional (prefix defaults to 64)\n"
    "  bmc,bmc_user,bmc_password_file,firmware\n"
    "                               optional: the host's BMC, as in 'hosts add'\n"
    "                               (bmc_password_file relative to FILE; there\n"
    "                               is no password column)\n"
    "or the agent's standalone hosts file ([host NAME] sections), which has no\n"
    "rack: give it with --rack. With CSV, --rack fills empty rack cells.\n"
    "\n"
    "  --update   replace hosts that already exist (else the import fails)\n"
    "  --json     print the stored hosts as JSON\n";

static const char add_help[] =
    "Usage: rackboot hosts add NAME --mac MAC [--mac MAC...] --rack RACK --address ADDR\n"
    "                          [--prefix N] [--gateway ADDR] [--hostname FQDN] [--update]\n"
    "                          [--bmc URL [--bmc-user USER]\n"
    "                           [--bmc-password-file FILE | --bmc-password-stdin]]\n"
    "                          [--firmware uefi|bios]\n"
    "\n"
    "  --mac MAC        a MAC of the host (repeat for several NICs)\n"
    "  --rack RACK      the rack whose agent serves it\n"
    "  --address ADDR   its reserved IPv6 address\n"
    "  --prefix N       the on-link prefix length (default 64)\n"
    "  --gateway ADDR   default gateway (default: from router advertisements)\n"
    "  --hostname FQDN  the installed system's name (default: NAME)\n"
    "  --update         replace the host if it exists (the whole host: give its BMC\n"
    "                   and password again, or it has none)\n"
    "\n"
    "The host's BMC, for 'rackboot power' and 'install --power':\n"
    "  --bmc URL                 ipmi://[2001:db8:ff::17]:623 (port default 623)\n"
    "  --bmc-user USER           the BMC login\n"
    "  --bmc-password-file FILE  the password: the file's one line (a trailing\n"
    "                            newline is dropped; empty is refused; a file\n"
    "                            others may read is refused: chmod 600 or 640)\n"
    "  --bmc-password-stdin      the password from standard input, the same way\n"
    "                            (typed without echo on a terminal)\n"
    "  --firmware uefi|bios      how the host boots (UEFI asks the BMC for an\n"
    "                            EFI network boot)\n"
    "The password is never taken on the command line (other users see it in\n"
    "ps) and never printed: listings say whether one is set.\n";

static const char list_help[] =
    "Usage: rackboot hosts list [--rack RACK] [--limit N] [--after NAME]\n"
    "                           [--state S,...] [--phase P,...] [-o FORMAT]\n"
    "\n"
    "Hosts by name (byte order), asked from the controller 1,000 at a time and\n"
    "printed as they come.\n"
    "\n"
    "  --rack RACK     only the hosts of RACK\n"
    "  --limit N       at most N hosts\n"
    "  --after NAME    only the hosts whose name sorts after NAME: the last name\n"
    "                  of a --limit listing gives the next one\n"
    "  --state S,...   only hosts whose latest install is in one of these states\n"
    "                  (none: never installed; 'rackboot status --help')\n"
    "  --phase P,...   only hosts whose latest install's last phase is one of these\n"
    "  -o wide         also firmware, DUID and BMC\n";
static const char show_help[] = "Usage: rackboot hosts show NAME... [-o FORMAT]\n";
static const char remove_help[] = "Usage: rackboot hosts remove NAME...\n";
static const char racks_help[] =
    "Usage: rackboot racks [-o FORMAT]\n"
    "\n"
    "Every rack with its agent, when the agent was last seen, and the intent\n"
    "generation it has acknowledged (acked/current).\n";

enum { OPT_UPDATE = 1000, OPT_RACK, OPT_LIMIT, OPT_AFTER, OPT_STATE, OPT_PHASE };

static int finish_list(cli *c, Rackboot__V1__ApiReply *reply, bool detail)
{
    const Rackboot__V1__HostList *l = reply->hosts;
    int r = 0;
    if (output_structured(c->format)) {
        r = output_print(c->out, c->format, render_hosts_json(l), RENDER_NAME_HOSTS);
    } else if (detail) {
        for (size_t i = 0; i < l->n_hosts; i++) {
            if (i) {
                fputc('\n', c->out);
            }
            render_host_detail_text(c->out, l->hosts[i]);
        }
    } else {
        render_hosts_text(c->out, l);
    }
    rbproto_api_reply_free(reply);
    if (r < 0) {
        cli_error(c, "cannot write output: %s", errstr(r));
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}

/* Sends a filled HostsAddRequest and reports. Consumes req. */
static int send_hosts_add(cli *c, Rackboot__V1__ApiRequest *req, const char *what)
{
    size_t n = req->hosts_add->n_hosts;
    bool update = req->hosts_add->update_existing;
    Rackboot__V1__ApiReply *reply = NULL;
    int code = cli_call(c, req, 0, RACKBOOT__V1__API_REPLY__BODY__NOT_SET, &reply);
    if (code != 0) {
        cli_pb_free(req);
        if (c->last_status == RACKBOOT__V1__STATUS__STATUS_CONFLICT && !update) {
            fprintf(c->err, "rackboot: (use --update to replace existing hosts)\n");
        }
        return code;
    }
    if (output_structured(c->format) && reply->body_case == RACKBOOT__V1__API_REPLY__BODY_HOSTS) {
        cli_pb_free(req);
        return finish_list(c, reply, false);
    }
    int r = 0;
    if (output_structured(c->format)) {
        /* No stored rows in the reply: show what was sent. */
        Rackboot__V1__HostList sent = RACKBOOT__V1__HOST_LIST__INIT;
        sent.n_hosts = req->hosts_add->n_hosts;
        sent.hosts = req->hosts_add->hosts;
        r = output_print(c->out, c->format, render_hosts_json(&sent), RENDER_NAME_HOSTS);
    } else {
        fprintf(c->out, "%s %zu host%s\n", what, n, n == 1 ? "" : "s");
    }
    cli_pb_free(req);
    rbproto_api_reply_free(reply);
    return r < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

/* A standalone hosts file starts (after comments) with a [section]. */
static int looks_like_ini(const char *path, bool *ret)
{
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    if (!f) {
        return negative_errno();
    }
    int ch;
    bool line_start = true, comment = false;
    while ((ch = fgetc(f)) != EOF) {
        if (ch == '\n') {
            line_start = true;
            comment = false;
            continue;
        }
        if (comment || ch == ' ' || ch == '\t' || ch == '\r' || ch == 0xEF || ch == 0xBB ||
            ch == 0xBF) {
            continue;
        }
        if (line_start && (ch == '#' || ch == ';')) {
            comment = true;
            continue;
        }
        *ret = ch == '[';
        return 0;
    }
    *ret = false;
    return 0;
}

static int hosts_import(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "rack", required_argument, NULL, OPT_RACK },
        { "update", no_argument, NULL, OPT_UPDATE },
        CLI_OUTPUT_LONGOPTS,
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *rack = NULL;
    bool update = false;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h" CLI_OUTPUT_SHORTOPTS, opts, NULL)) != -1) {
        switch (ch) {
        case OPT_RACK:
            rack = optarg;
            break;
        case OPT_UPDATE:
            update = true;
            break;
        case 'h':
            fputs(import_help, c->out);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, "hosts import ", ch, argv) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    if (argc - optind != 1) {
        return cli_usage_error(c, "hosts import ", "expected one FILE");
    }
    const char *path = argv[optind];
    const char *why;
    if (rack && (why = cli_check_name(rack))) {
        return cli_usage_error(c, "hosts import ", "--rack %s: %s", rack, why);
    }
    bool ini = false;
    int r = looks_like_ini(path, &ini);
    if (r < 0) {
        cli_error(c, "%s: %s", path, errstr(r));
        return CLI_EXIT_USAGE;
    }
    if (ini && !rack) {
        return cli_usage_error(c, "hosts import ",
                               "%s is a standalone hosts file, which names no rack: give --rack",
                               path);
    }
    Rackboot__V1__ApiRequest *req = cli_request_new(RACKBOOT__V1__API_REQUEST__BODY_HOSTS_ADD);
    diag *d = diag_new();
    diag *notes = diag_new();
    if (!req || !d || !notes) {
        cli_pb_free(req);
        diag_free(d);
        diag_free(notes);
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    req->hosts_add->update_existing = update;
    r = ini ? profile_file_read_hosts(path, rack, d, notes, req->hosts_add)
            : hosts_csv_read(path, rack, d, req->hosts_add);
    cli_print_diag(c, notes, "note: ");
    cli_print_diag(c, d, "");
    diag_free(d);
    diag_free(notes);
    if (r < 0) {
        cli_pb_free(req);
        if (r == -ENOMEM) {
            cli_error(c, "out of memory");
            return CLI_EXIT_FAILED;
        }
        cli_error(c, "%s: nothing imported", path);
        return CLI_EXIT_USAGE;
    }
    return send_hosts_add(c, req, "imported");
}

/* --bmc-password-stdin: standard input holds the password as a password
 * file would (model_bmc_password_parse()). A terminal gets a prompt on
 * stderr and reads one line without echo; anything else is read to its end
 * (at most a password and its newline, and a byte to tell a longer one). */
static int read_password_stdin(cli *c, char **ret)
{
    char buf[MODEL_BMC_PASSWORD_MAX + 3], why[128];
    size_t len = 0;
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fputs("BMC password: ", c->err);
        fflush(c->err);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    int r = 0;
    while (len < sizeof(buf)) {
        ssize_t n = read(STDIN_FILENO, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            r = negative_errno();
            break;
        }
        len += (size_t)n;
        if (n == 0 || (tty && memchr(buf, '\n', len))) {
            break;
        }
    }
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', c->err);
    }
    if (r == 0) {
        r = model_bmc_password_parse(buf, len, ret, why, sizeof(why));
    }
    explicit_bzero(buf, sizeof(buf));
    if (r == -ENOMEM) {
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    if (r < 0) {
        return cli_usage_error(c, "hosts add ", "--bmc-password-stdin: %s",
                               r == -EINVAL ? why : errstr(r));
    }
    return 0;
}

/* Sets h's password from --bmc-password-file FILE or, with path NULL,
 * --bmc-password-stdin. Returns an exit code. */
static int set_password(cli *c, Rackboot__V1__Host *h, const char *path)
{
    char why[PATH_MAX + 160];
    char *pw = NULL;
    int code = 0, r = 0;
    if (!path) {
        code = read_password_stdin(c, &pw);
    } else if ((r = model_bmc_password_read_file(path, &pw, why, sizeof(why))) == -ENOMEM) {
        cli_error(c, "out of memory");
        code = CLI_EXIT_FAILED;
    } else if (r < 0) {
        code = cli_usage_error(c, "hosts add ", "--bmc-password-file %s", why);
    }
    if (code == 0 && cli_pb_set_string(&h->bmc_password, pw) < 0) {
        cli_error(c, "out of memory");
        code = CLI_EXIT_FAILED;
    }
    model_bmc_password_free(pw);
    return code;
}

static int hosts_add(cli *c, int argc, char **argv)
{
    enum {
        OPT_MAC = 2000,
        OPT_ADDRESS,
        OPT_PREFIX,
        OPT_GATEWAY,
        OPT_HOSTNAME,
        OPT_BMC,
        OPT_BMC_USER,
        OPT_BMC_PASSWORD,
        OPT_BMC_PASSWORD_FILE,
        OPT_BMC_PASSWORD_STDIN,
        OPT_FIRMWARE,
    };
    static const struct option opts[] = {
        { "bmc", required_argument, NULL, OPT_BMC },
        { "bmc-user", required_argument, NULL, OPT_BMC_USER },
        /* Only to refuse it without echoing the value (and so that
         * "--bmc-password X" does not leave X as the host's name). */
        { "bmc-password", required_argument, NULL, OPT_BMC_PASSWORD },
        { "bmc-password-file", required_argument, NULL, OPT_BMC_PASSWORD_FILE },
        { "bmc-password-stdin", no_argument, NULL, OPT_BMC_PASSWORD_STDIN },
        { "firmware", required_argument, NULL, OPT_FIRMWARE },
        { "mac", required_argument, NULL, OPT_MAC },
        { "rack", required_argument, NULL, OPT_RACK },
        { "address", required_argument, NULL, OPT_ADDRESS },
        { "prefix", required_argument, NULL, OPT_PREFIX },
        { "gateway", required_argument, NULL, OPT_GATEWAY },
        { "hostname", required_argument, NULL, OPT_HOSTNAME },
        { "update", no_argument, NULL, OPT_UPDATE },
        CLI_OUTPUT_LONGOPTS,
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    Rackboot__V1__ApiRequest *req = cli_request_new(RACKBOOT__V1__API_REQUEST__BODY_HOSTS_ADD);
    Rackboot__V1__Host *h = cli_pb_new(&rackboot__v1__host__descriptor);
    if (!req || !h ||
        cli_pb_add_message((void ***)&req->hosts_add->hosts, &req->hosts_add->n_hosts, h) < 0) {
        cli_pb_free(req);
        cli_pb_free(h);
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    h->prefix_length = 64;
    int code = CLI_EXIT_OK, r = 0, ch;
    const char *why = NULL, *password_file = NULL;
    bool password_stdin = false;
    char why_buf[160];
    struct in6_addr a;
    uint8_t mac[6];
    optind = 0;
    while (code == 0 && r == 0 &&
           (ch = getopt_long(argc, argv, ":h" CLI_OUTPUT_SHORTOPTS, opts, NULL)) != -1) {
        switch (ch) {
        case OPT_MAC:
            if ((why = cli_check_mac(optarg, mac))) {
                code = cli_usage_error(c, "hosts add ", "--mac %s: %s", optarg, why);
            } else if (h->n_macs == RBPROTO_MAX_MACS) {
                code = cli_usage_error(c, "hosts add ", "at most %u MACs", RBPROTO_MAX_MACS);
            } else {
                for (size_t k = 0; k < h->n_macs; k++) {
                    if (memcmp(h->macs[k].data, mac, 6) == 0) {
                        code = cli_usage_error(c, "hosts add ", "--mac %s given twice", optarg);
                    }
                }
                if (code == 0) {
                    r = cli_pb_add_bytes(&h->macs, &h->n_macs, mac, 6);
                }
            }
            break;
        case OPT_RACK:
            if ((why = cli_check_name(optarg))) {
                code = cli_usage_error(c, "hosts add ", "--rack %s: %s", optarg, why);
            } else {
                r = cli_pb_set_string(&h->rack, optarg);
            }
            break;
        case OPT_ADDRESS:
            if ((why = cli_check_host_address(optarg, &a))) {
                code = cli_usage_error(c, "hosts add ", "--address %s: %s", optarg, why);
            } else {
                r = cli_pb_set_bytes(&h->address, &a, sizeof(a));
            }
            break;
        case OPT_PREFIX:
            if ((why = cli_check_prefix(optarg, &h->prefix_length))) {
                code = cli_usage_error(c, "hosts add ", "--prefix %s: %s", optarg, why);
            }
            break;
        case OPT_GATEWAY:
            if ((why = cli_check_gateway(optarg, &a))) {
                code = cli_usage_error(c, "hosts add ", "--gateway %s: %s", optarg, why);
            } else {
                r = cli_pb_set_bytes(&h->gateway, &a, sizeof(a));
            }
            break;
        case OPT_HOSTNAME:
            if ((why = cli_check_hostname(optarg))) {
                code = cli_usage_error(c, "hosts add ", "--hostname %s: %s", optarg, why);
            } else {
                r = cli_pb_set_string(&h->hostname, optarg);
            }
            break;
        case OPT_BMC:
            /* Not quoted back: a URL may carry credentials. */
            if ((why = cli_check_bmc_url(optarg, why_buf, sizeof(why_buf)))) {
                code = cli_usage_error(c, "hosts add ", "--bmc: %s", why);
            } else {
                r = cli_pb_set_string(&h->bmc_url, optarg);
            }
            break;
        case OPT_BMC_USER:
            if ((why = cli_check_bmc_user(optarg))) {
                code = cli_usage_error(c, "hosts add ", "--bmc-user: %s", why);
            } else {
                r = cli_pb_set_string(&h->bmc_user, optarg);
            }
            break;
        case OPT_BMC_PASSWORD:
            code = cli_usage_error(c, "hosts add ",
                                   "--bmc-password: a password is never taken on the command "
                                   "line (other users see it in ps); use --bmc-password-file "
                                   "FILE or --bmc-password-stdin");
            break;
        case OPT_BMC_PASSWORD_FILE:
            password_file = optarg;
            break;
        case OPT_BMC_PASSWORD_STDIN:
            password_stdin = true;
            break;
        case OPT_FIRMWARE:
            if ((why = cli_check_firmware(optarg, &h->firmware))) {
                code = cli_usage_error(c, "hosts add ", "--firmware %s: %s", optarg, why);
            }
            break;
        case OPT_UPDATE:
            req->hosts_add->update_existing = true;
            break;
        case 'h':
            fputs(add_help, c->out);
            cli_pb_free(req);
            return CLI_EXIT_OK;
        default:
            code = cli_common_option(c, "hosts add ", ch, argv);
            break;
        }
    }
    if (code == 0 && r == 0) {
        if (argc - optind != 1) {
            code = cli_usage_error(c, "hosts add ", "expected one host NAME");
        } else if ((why = cli_check_name(argv[optind]))) {
            code = cli_usage_error(c, "hosts add ", "%s: %s", argv[optind], why);
        } else if (h->n_macs == 0) {
            code = cli_usage_error(c, "hosts add ", "--mac is required");
        } else if (strempty(h->rack)) {
            code = cli_usage_error(c, "hosts add ", "--rack is required");
        } else if (h->address.len == 0) {
            code = cli_usage_error(c, "hosts add ", "--address is required");
        } else if (password_file && password_stdin) {
            code = cli_usage_error(c, "hosts add ",
                                   "--bmc-password-file and --bmc-password-stdin: give one");
        } else if (strempty(h->bmc_url) &&
                   (!strempty(h->bmc_user) || password_file || password_stdin)) {
            code = cli_usage_error(c, "hosts add ", "--bmc-user and the password need --bmc URL");
        } else {
            r = cli_pb_set_string(&h->name, argv[optind]);
        }
    }
    /* Last, once everything else is known to be good: a password typed at
     * a prompt is not asked for a command line that fails anyway. */
    if (code == 0 && r == 0 && (password_file || password_stdin)) {
        code = set_password(c, h, password_file);
    }
    if (r < 0) {
        cli_error(c, "out of memory");
        code = CLI_EXIT_FAILED;
    }
    if (code != 0) {
        cli_pb_free(req);
        return code;
    }
    return send_hosts_add(c, req, "added");
}

/* hosts list: pages of HostsListRequest (cli/pages.h). */
static int hosts_ask_page(Rackboot__V1__ApiRequest *req, const char *after, uint32_t limit)
{
    req->hosts_list->limit = limit;
    return cli_pb_set_string(&req->hosts_list->after, after);
}

static size_t hosts_page_rows(const Rackboot__V1__ApiReply *reply, const char **ret_last,
                              bool *ret_more)
{
    const Rackboot__V1__HostList *l = reply->hosts;
    *ret_last = l->n_hosts ? l->hosts[l->n_hosts - 1]->name : NULL;
    *ret_more = l->more;
    return l->n_hosts;
}

static int hosts_render_page(cli *c, render_stream *out, Rackboot__V1__ApiReply *reply, size_t n)
{
    size_t all = reply->hosts->n_hosts;
    reply->hosts->n_hosts = n;
    int r = render_hosts_page(out, reply->hosts);
    reply->hosts->n_hosts = all;
    return r;
}

static const cli_pages_kind hosts_pages = {
    .expect = RACKBOOT__V1__API_REPLY__BODY_HOSTS,
    .ask = hosts_ask_page,
    .rows = hosts_page_rows,
    .render = hosts_render_page,
};

/* hosts list --state/--phase: the status of the rack (or every host) in
 * pages, filtered, printed as hosts (cli_status_hosts_pages). */
static int hosts_list_filtered(cli *c, const char *rack, const char *after, uint64_t limit,
                               const cli_status_filter *filter)
{
    Rackboot__V1__ApiRequest *req = cli_request_new(RACKBOOT__V1__API_REQUEST__BODY_STATUS);
    Rackboot__V1__Selector *sel = req ? req->status->target : NULL;
    int r = req ? 0 : -ENOMEM;
    if (r == 0 && rack) {
        r = cli_pb_add_string(&sel->racks, &sel->n_racks, rack);
    } else if (r == 0) {
        sel->all = true;
    }
    if (r < 0) {
        cli_pb_free(req);
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    int code = cli_pages_fetch(c, req, &cli_status_hosts_pages, after, limit, filter);
    cli_pb_free(req);
    return code;
}

/* list and show: one kind of query (HostsListRequest); list in pages. */
static int hosts_query(cli *c, int argc, char **argv, bool show)
{
    static const struct option opts[] = {
        { "rack", required_argument, NULL, OPT_RACK },
        { "limit", required_argument, NULL, OPT_LIMIT },
        { "after", required_argument, NULL, OPT_AFTER },
        { "state", required_argument, NULL, OPT_STATE },
        { "phase", required_argument, NULL, OPT_PHASE },
        CLI_OUTPUT_LONGOPTS,
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *cmd = show ? "hosts show " : "hosts list ";
    const char *rack = NULL, *after = NULL, *why;
    uint64_t limit = 0;
    cli_status_filter filter = { 0 };
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h" CLI_OUTPUT_SHORTOPTS, opts, NULL)) != -1) {
        switch (ch) {
        case OPT_RACK:
        case OPT_LIMIT:
        case OPT_AFTER:
        case OPT_STATE:
        case OPT_PHASE:
            if (show) {
                /* show's options are the output's: name the one it lacks. */
                return cli_usage_error(c, cmd, "unknown option '%.*s'",
                                       (int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
            }
            if (ch == OPT_RACK) {
                rack = optarg;
            } else if (ch == OPT_AFTER) {
                after = optarg;
            } else if (ch == OPT_STATE || ch == OPT_PHASE) {
                why = ch == OPT_STATE ? cli_check_states(optarg, &filter)
                                      : cli_check_phases(optarg, &filter);
                if (why) {
                    return cli_usage_error(c, cmd, "--%s %s: %s",
                                           ch == OPT_STATE ? "state" : "phase", optarg, why);
                }
            } else if (parse_u64(optarg, 1, UINT32_MAX, &limit) < 0) {
                return cli_usage_error(c, cmd, "--limit %s: expected a number above 0", optarg);
            }
            break;
        case 'h':
            fputs(show ? show_help : list_help, c->out);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, cmd, ch, argv) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    if (show && argc == optind) {
        return cli_usage_error(c, cmd, "expected a host NAME");
    }
    if (!show && argc != optind) {
        return cli_usage_error(c, cmd, "unexpected argument '%s'", argv[optind]);
    }
    if (rack && (why = cli_check_name(rack))) {
        return cli_usage_error(c, cmd, "--rack %s: %s", rack, why);
    }
    if (after && (why = cli_check_name(after))) {
        return cli_usage_error(c, cmd, "--after %s: %s", after, why);
    }
    for (int i = optind; i < argc; i++) {
        if ((why = cli_check_name(argv[i]))) {
            return cli_usage_error(c, cmd, "%s: %s", argv[i], why);
        }
    }
    if (!cli_status_filter_empty(&filter)) {
        return hosts_list_filtered(c, rack, after, limit, &filter);
    }
    Rackboot__V1__ApiRequest *req = cli_request_new(RACKBOOT__V1__API_REQUEST__BODY_HOSTS_LIST);
    int r = req ? 0 : -ENOMEM;
    if (r == 0 && rack) {
        r = cli_pb_set_string(&req->hosts_list->rack, rack);
    }
    for (int i = optind; r == 0 && i < argc; i++) {
        r = cli_pb_add_string(&req->hosts_list->names, &req->hosts_list->n_names, argv[i]);
    }
    if (r < 0) {
        cli_pb_free(req);
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    if (!show) {
        int code = cli_pages_fetch(c, req, &hosts_pages, after, limit, NULL);
        cli_pb_free(req);
        return code;
    }
    Rackboot__V1__ApiReply *reply = NULL;
    int code = cli_call(c, req, 0, RACKBOOT__V1__API_REPLY__BODY_HOSTS, &reply);
    cli_pb_free(req);
    if (code != 0) {
        return code;
    }
    /* The controller answers NOT_FOUND for unknown names; should it leave
     * them out instead, say so the same way. */
    for (int i = optind; i < argc; i++) {
        bool found = false;
        for (size_t k = 0; k < reply->hosts->n_hosts; k++) {
            found |= streq(reply->hosts->hosts[k]->name, argv[i]);
        }
        if (!found) {
            cli_error(c, "host %s not found", argv[i]);
            rbproto_api_reply_free(reply);
            return CLI_EXIT_NOT_FOUND;
        }
    }
    return finish_list(c, reply, show);
}

static int hosts_remove(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_OUTPUT_LONGOPTS,
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h" CLI_OUTPUT_SHORTOPTS, opts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(remove_help, c->out);
            return CLI_EXIT_OK;
        }
        if (cli_common_option(c, "hosts remove ", ch, argv) != CLI_EXIT_OK) {
            return CLI_EXIT_USAGE;
        }
    }
    if (argc == optind) {
        return cli_usage_error(c, "hosts remove ", "expected a host NAME");
    }
    const char *why;
    for (int i = optind; i < argc; i++) {
        if ((why = cli_check_name(argv[i]))) {
            return cli_usage_error(c, "hosts remove ", "%s: %s", argv[i], why);
        }
    }
    Rackboot__V1__ApiRequest *req = cli_request_new(RACKBOOT__V1__API_REQUEST__BODY_HOSTS_REMOVE);
    int r = req ? 0 : -ENOMEM;
    for (int i = optind; r == 0 && i < argc; i++) {
        r = cli_pb_add_string(&req->hosts_remove->names, &req->hosts_remove->n_names, argv[i]);
    }
    if (r < 0) {
        cli_pb_free(req);
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    Rackboot__V1__ApiReply *reply = NULL;
    int code = cli_call(c, req, 0, RACKBOOT__V1__API_REPLY__BODY__NOT_SET, &reply);
    cli_pb_free(req);
    if (code != 0) {
        return code;
    }
    rbproto_api_reply_free(reply);
    fprintf(c->out, "removed %d host%s\n", argc - optind, argc - optind == 1 ? "" : "s");
    return CLI_EXIT_OK;
}

int cmd_hosts(cli *c, int argc, char **argv)
{
    if (argc < 2) {
        return cli_usage_error(c, "hosts ", "expected a command: import, add, list, show, remove");
    }
    if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
        fputs(hosts_help, c->out);
        return CLI_EXIT_OK;
    }
    const char *sub = argv[1];
    argc--;
    argv++;
    if (streq(sub, "import")) {
        return hosts_import(c, argc, argv);
    }
    if (streq(sub, "add")) {
        return hosts_add(c, argc, argv);
    }
    if (streq(sub, "list") || streq(sub, "ls")) {
        return hosts_query(c, argc, argv, false);
    }
    if (streq(sub, "show")) {
        return hosts_query(c, argc, argv, true);
    }
    if (streq(sub, "remove") || streq(sub, "rm")) {
        return hosts_remove(c, argc, argv);
    }
    return cli_usage_error(c, "hosts ", "unknown command 'hosts %s'", sub);
}

static int render_racks(cli *c, const Rackboot__V1__ApiReply *reply)
{
    if (output_structured(c->format)) {
        return output_print(c->out, c->format, render_racks_json(reply->racks), RENDER_NAME_RACKS);
    }
    render_racks_text(c->out, reply->racks, now_realtime_ms());
    return 0;
}

int cmd_racks(cli *c, int argc, char **argv)
{
    return cli_listing(c, argc, argv, "racks ", racks_help,
                       RACKBOOT__V1__API_REQUEST__BODY_RACKS_LIST,
                       RACKBOOT__V1__API_REPLY__BODY_RACKS, render_racks);
}

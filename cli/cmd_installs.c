/* rackboot install, cancel, status, events: installs and what happened. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "pages.h"
#include "parse.h"
#include "pb.h"
#include "rbproto.h"
#include "render.h"
#include "util.h"
#include "values.h"

static const char install_help[] =
    "Usage: rackboot install HOST... --profile NAME [--replace] [--power cycle|on] [-o FORMAT]\n"
    "       rackboot install --rack RACK [RACK...] --profile NAME [--replace] [--power ...]\n"
    "       rackboot install --all --profile NAME [--replace] [--power ...] [-o FORMAT]\n"
    "\n"
    "Starts an install of PROFILE on the hosts: the controller records it and\n"
    "sends the intent to the hosts' rack agents; the hosts install at their\n"
    "next network boot. Follow with 'rackboot watch'.\n"
    "\n"
    "  --profile NAME  what to install (see 'rackboot profiles list')\n"
    "  --replace       cancel and restart hosts that already have an active\n"
    "                  install (otherwise the request fails for them)\n"
    "  --power ACTION  boot them now through their BMCs: the rack agent sets the\n"
    "                  next boot to the network, then cycles the power (cycle)\n"
    "                  or powers them on (on). Hosts without a BMC are refused\n"
    "                  ('rackboot hosts add ... --bmc URL'); 'rackboot events HOST'\n"
    "                  shows the BMC's answers.\n"
    "\n"
    "Hosts it could not start (an active install without --replace, no BMC)\n"
    "are named on stderr, one line each; the hosts it started are printed as\n"
    "usual, and the exit status is 1.\n";

static const char cancel_help[] =
    "Usage: rackboot cancel HOST... | --rack RACK [RACK...] | --all  [-o FORMAT]\n"
    "\n"
    "Cancels the hosts' active installs and withdraws their intents: the next\n"
    "boot goes to local disk. Hosts with nothing active are left as they are\n"
    "and are no failure: \"nothing to cancel\" when none had an install running.\n";

static const char status_help[] =
    "Usage: rackboot status [HOST...] [--state S,...] [--phase P,...] [-o FORMAT]\n"
    "       rackboot status [--rack RACK [RACK...] | --all] [--limit N] [--after NAME]\n"
    "                       [--state S,...] [--phase P,...] [-o FORMAT]\n"
    "\n"
    "Where each host's latest install stands (every host without arguments).\n"
    "  --state S,...  only hosts in these states: none requested dispatched\n"
    "                 booting installing installed failed cancelled timed_out\n"
    "  --phase P,...  only hosts whose last phase is one of these (dhcp_bound,\n"
    "                 kickstart_fetched, installing, ...: 'rackboot events')\n"
    "  -o wide        also the install's id and attempt\n"
    "\n"
    "Named hosts come in the order named. Racks' and every host's come by host\n"
    "name (byte order), asked from the controller 1,000 at a time and printed\n"
    "as they come:\n"
    "  --limit N     at most N hosts\n"
    "  --after NAME  only the hosts whose name sorts after NAME: the last name\n"
    "                of a --limit listing gives the next one\n";

static const char events_help[] =
    "Usage: rackboot events [HOST] [--after SEQ] [--limit N] [-o FORMAT]\n"
    "\n"
    "What the rack agents reported about a host's installs (every host without\n"
    "HOST), oldest first, asked from the controller 1,000 at a time and printed\n"
    "as they come.\n"
    "\n"
    "  --after SEQ  only events after this sequence number: the last SEQ of a\n"
    "               --limit listing gives the next one\n"
    "  --limit N    at most N events\n";

enum {
    OPT_RACK = 1000,
    OPT_ALL,
    OPT_PROFILE,
    OPT_REPLACE,
    OPT_AFTER,
    OPT_LIMIT,
    OPT_POWER,
    OPT_STATE,
    OPT_PHASE,
};

int cli_fill_selector(cli *c, const char *cmd, Rackboot__V1__Selector *sel, char **racks,
                      size_t n_racks, bool all, char **args, size_t n_args, bool default_all)
{
    const char *why;
    if (all && (n_racks || n_args)) {
        return cli_usage_error(c, cmd, "--all cannot be combined with hosts or --rack");
    }
    bool by_rack = n_racks > 0;
    for (size_t pass = 0; pass < 2; pass++) {
        char **list = pass == 0 ? racks : args;
        size_t n = pass == 0 ? n_racks : n_args;
        for (size_t i = 0; i < n; i++) {
            if ((why = cli_check_name(list[i]))) {
                return cli_usage_error(c, cmd, "%s: %s", list[i], why);
            }
            int r = by_rack ? cli_pb_add_string(&sel->racks, &sel->n_racks, list[i])
                            : cli_pb_add_string(&sel->hosts, &sel->n_hosts, list[i]);
            if (r < 0) {
                cli_error(c, "out of memory");
                return CLI_EXIT_FAILED;
            }
        }
    }
    if (!all && !n_racks && !n_args) {
        if (!default_all) {
            return cli_usage_error(c, cmd, "expected HOST..., --rack RACK or --all");
        }
        all = true;
    }
    sel->all = all;
    return 0;
}

/* The rows of `l` as a listing of one page, in c->format. */
static int render_statuses(cli *c, const Rackboot__V1__StatusList *l)
{
    render_stream out;
    render_stream_init(&out, c->out, c->format);
    render_status_page(&out, l);
    return render_stream_end(&out);
}

/* Prints the reply's first `shown` rows and frees it. */
static int print_statuses(cli *c, Rackboot__V1__ApiReply *reply, size_t shown)
{
    size_t all = reply->statuses->n_rows;
    reply->statuses->n_rows = shown;
    int r = render_statuses(c, reply->statuses);
    reply->statuses->n_rows = all;
    rbproto_api_reply_free(reply);
    return r < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

/* An install or cancel done for some hosts and skipped for others
 * (cli_call_rows()): why each skipped host was skipped, one line each on
 * c->err, and the rows of the hosts done, as print_statuses() prints them.
 * A cancel of hosts with nothing active is no failure: the hosts are where
 * the operator wants them ("nothing to cancel"). `code` is the reply's exit
 * code, returned unless every skip was such a cancel. */
static int print_partial(cli *c, bool cancel, bool replace, Rackboot__V1__ApiReply *reply, int code)
{
    Rackboot__V1__StatusList *l = reply->statuses;
    size_t n = l->n_rows, done = 0, failed = 0, idle = 0;
    bool active = false;
    /* Done rows first, in their order; restored before the reply is freed
     * (protobuf-c frees rows[0..n_rows)). */
    Rackboot__V1__StatusRow **order = malloc((n ? n : 1) * sizeof(*order));
    if (!order) {
        cli_error(c, "out of memory");
        rbproto_api_reply_free(reply);
        return CLI_EXIT_FAILED;
    }
    for (size_t i = 0; i < n; i++) {
        const Rackboot__V1__StatusRow *row = l->rows[i];
        if (row->skipped == RACKBOOT__V1__SKIP__SKIP_NONE) {
            order[done++] = l->rows[i];
        } else if (cancel && row->skipped == RACKBOOT__V1__SKIP__SKIP_NOT_ACTIVE) {
            idle++;
        } else {
            active |= row->skipped == RACKBOOT__V1__SKIP__SKIP_ACTIVE;
            failed++;
        }
    }
    /* Every host idle: one "nothing to cancel" below, not one per host. */
    for (size_t i = 0; i < n && idle < n; i++) {
        const Rackboot__V1__StatusRow *row = l->rows[i];
        if (row->skipped == RACKBOOT__V1__SKIP__SKIP_NONE) {
            continue;
        }
        bool is_idle = cancel && row->skipped == RACKBOOT__V1__SKIP__SKIP_NOT_ACTIVE;
        cli_error(c, "host %s: %s", row->host, is_idle ? "nothing to cancel" : row->message);
    }
    size_t k = done;
    for (size_t i = 0; i < n; i++) {
        if (l->rows[i]->skipped != RACKBOOT__V1__SKIP__SKIP_NONE) {
            order[k++] = l->rows[i];
        }
    }
    Rackboot__V1__StatusRow **rows = l->rows;
    l->rows = order;
    l->n_rows = done;
    int r = 0;
    if (output_structured(c->format) || done > 0) {
        r = render_statuses(c, l);
    } else if (idle == n) {
        fprintf(c->out, "nothing to cancel\n");
    }
    l->rows = rows;
    l->n_rows = n;
    free(order);
    if (failed > 0) {
        cli_error(c, "%zu of %zu hosts not %s", failed + idle, n,
                  cancel ? "cancelled" : "installed");
        if (active && !replace) {
            fprintf(c->err, "rackboot: (use --replace to restart active installs)\n");
        }
    }
    rbproto_api_reply_free(reply);
    if (r < 0) {
        return CLI_EXIT_FAILED;
    }
    return failed > 0 ? code : CLI_EXIT_OK;
}

/* install, cancel and status share their shape. */
typedef enum { ACT_INSTALL, ACT_CANCEL, ACT_STATUS } action;

static int targeted(cli *c, int argc, char **argv, action act)
{
    static const struct option opts[] = {
        { "rack", required_argument, NULL, OPT_RACK },
        { "all", no_argument, NULL, OPT_ALL },
        { "profile", required_argument, NULL, OPT_PROFILE },
        { "replace", no_argument, NULL, OPT_REPLACE },
        { "power", required_argument, NULL, OPT_POWER },
        { "limit", required_argument, NULL, OPT_LIMIT },
        { "after", required_argument, NULL, OPT_AFTER },
        { "state", required_argument, NULL, OPT_STATE },
        { "phase", required_argument, NULL, OPT_PHASE },
        CLI_OUTPUT_LONGOPTS,
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    static const char *const names[] = { "install ", "cancel ", "status " };
    static const char *const helps[] = { install_help, cancel_help, status_help };
    const char *cmd = names[act];
    _cleanup_free_ char **racks = calloc((size_t)argc + 1, sizeof(*racks));
    size_t n_racks = 0;
    bool all = false, replace = false;
    Rackboot__V1__PowerAction power = RACKBOOT__V1__POWER_ACTION__POWER_ACTION_UNSPECIFIED;
    const char *profile = NULL, *after = NULL;
    uint64_t limit = 0; /* status: 0 every host */
    cli_status_filter filter = { 0 };
    const char *why;
    if (!racks) {
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h" CLI_OUTPUT_SHORTOPTS, opts, NULL)) != -1) {
        switch (ch) {
        case OPT_RACK:
            racks[n_racks++] = optarg;
            break;
        case OPT_ALL:
            if (act == ACT_STATUS) {
                break; /* the default; accepted for symmetry */
            }
            all = true;
            break;
        case OPT_PROFILE:
            if (act != ACT_INSTALL) {
                return cli_usage_error(c, cmd, "unknown option '--profile'");
            }
            profile = optarg;
            break;
        case OPT_REPLACE:
            if (act != ACT_INSTALL) {
                return cli_usage_error(c, cmd, "unknown option '--replace'");
            }
            replace = true;
            break;
        case OPT_POWER:
            if (act != ACT_INSTALL) {
                return cli_usage_error(c, cmd, "unknown option '--power'");
            }
            /* What starts an install (rackboot.proto InstallRequest.power). */
            if (rbproto_power_action_from_string(optarg, &power) < 0 ||
                (power != RACKBOOT__V1__POWER_ACTION__POWER_ACTION_CYCLE &&
                 power != RACKBOOT__V1__POWER_ACTION__POWER_ACTION_ON)) {
                return cli_usage_error(c, cmd, "--power %s: expected cycle or on", optarg);
            }
            break;
        case OPT_LIMIT:
            if (act != ACT_STATUS) {
                return cli_usage_error(c, cmd, "unknown option '--limit'");
            }
            if (parse_u64(optarg, 1, UINT32_MAX, &limit) < 0) {
                return cli_usage_error(c, cmd, "--limit %s: expected a number above 0", optarg);
            }
            break;
        case OPT_AFTER:
            if (act != ACT_STATUS) {
                return cli_usage_error(c, cmd, "unknown option '--after'");
            }
            after = optarg;
            break;
        case OPT_STATE:
        case OPT_PHASE:
            if (act != ACT_STATUS) {
                return cli_usage_error(c, cmd, "unknown option '--%s'",
                                       ch == OPT_STATE ? "state" : "phase");
            }
            why = ch == OPT_STATE ? cli_check_states(optarg, &filter)
                                  : cli_check_phases(optarg, &filter);
            if (why) {
                return cli_usage_error(c, cmd, "--%s %s: %s", ch == OPT_STATE ? "state" : "phase",
                                       optarg, why);
            }
            break;
        case 'h':
            fputs(helps[act], c->out);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, cmd, ch, argv) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    if ((limit || after) && n_racks == 0 && argc > optind) {
        /* Named hosts are answered each, in the order named: no pages. */
        return cli_usage_error(c, cmd, "--limit and --after page racks or --all, not named hosts");
    }
    if (after && (why = cli_check_name(after))) {
        return cli_usage_error(c, cmd, "--after %s: %s", after, why);
    }
    if (act == ACT_INSTALL) {
        if (!profile) {
            return cli_usage_error(c, cmd, "--profile is required");
        }
        if ((why = cli_check_name(profile))) {
            return cli_usage_error(c, cmd, "--profile %s: %s", profile, why);
        }
    }
    static const Rackboot__V1__ApiRequest__BodyCase cases[] = {
        RACKBOOT__V1__API_REQUEST__BODY_INSTALL,
        RACKBOOT__V1__API_REQUEST__BODY_CANCEL,
        RACKBOOT__V1__API_REQUEST__BODY_STATUS,
    };
    Rackboot__V1__ApiRequest *req = cli_request_new(cases[act]);
    if (!req) {
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    Rackboot__V1__Selector *sel = act == ACT_INSTALL  ? req->install->target
                                  : act == ACT_CANCEL ? req->cancel->target
                                                      : req->status->target;
    int code = cli_fill_selector(c, cmd, sel, racks, n_racks, all, argv + optind,
                                 (size_t)(argc - optind), act == ACT_STATUS);
    if (code == 0 && act == ACT_INSTALL) {
        req->install->replace_active = replace;
        req->install->power = power;
        if (cli_pb_set_string(&req->install->profile, profile) < 0) {
            cli_error(c, "out of memory");
            code = CLI_EXIT_FAILED;
        }
    }
    if (code != 0) {
        cli_pb_free(req);
        return code;
    }
    if (act == ACT_STATUS && sel->n_hosts == 0) {
        code = cli_pages_fetch(c, req, &cli_status_pages, after, limit, &filter);
        cli_pb_free(req);
        return code;
    }
    Rackboot__V1__ApiReply *reply = NULL;
    bool fleet = act != ACT_STATUS && (all || n_racks > 0);
    uint32_t timeout = fleet ? cli_timeout(c, CLI_FLEET_TIMEOUT_MS) : 0;
    code = act == ACT_STATUS
               ? cli_call(c, req, timeout, RACKBOOT__V1__API_REPLY__BODY_STATUSES, &reply)
               : cli_call_rows(c, req, timeout, &reply);
    cli_pb_free(req);
    if (code != 0 && reply) {
        return print_partial(c, act == ACT_CANCEL, replace, reply, code);
    }
    if (code != 0) {
        if (act == ACT_INSTALL && c->last_status == RACKBOOT__V1__STATUS__STATUS_CONFLICT &&
            !replace) {
            fprintf(c->err, "rackboot: (use --replace to restart active installs)\n");
        }
        return code;
    }
    Rackboot__V1__StatusList *l = reply->statuses;
    return print_statuses(c, reply, cli_status_filter_rows(&filter, l->rows, l->n_rows));
}

int cmd_install(cli *c, int argc, char **argv)
{
    return targeted(c, argc, argv, ACT_INSTALL);
}

int cmd_cancel(cli *c, int argc, char **argv)
{
    return targeted(c, argc, argv, ACT_CANCEL);
}

int cmd_status(cli *c, int argc, char **argv)
{
    return targeted(c, argc, argv, ACT_STATUS);
}

int cmd_events(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "after", required_argument, NULL, OPT_AFTER },
        { "limit", required_argument, NULL, OPT_LIMIT },
        CLI_OUTPUT_LONGOPTS,
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    uint64_t after = 0;
    uint64_t limit = 0; /* 0: all */
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h" CLI_OUTPUT_SHORTOPTS, opts, NULL)) != -1) {
        switch (ch) {
        case OPT_AFTER:
            if (parse_u64(optarg, 0, UINT64_MAX, &after) < 0) {
                return cli_usage_error(c, "events ", "--after %s: expected a number", optarg);
            }
            break;
        case OPT_LIMIT:
            if (parse_u64(optarg, 1, UINT32_MAX, &limit) < 0) {
                return cli_usage_error(c, "events ", "--limit %s: expected a number above 0",
                                       optarg);
            }
            break;
        case 'h':
            fputs(events_help, c->out);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, "events ", ch, argv) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    if (argc - optind > 1) {
        return cli_usage_error(c, "events ", "expected at most one HOST");
    }
    const char *host = argc > optind ? argv[optind] : NULL;
    const char *why;
    if (host && (why = cli_check_name(host))) {
        return cli_usage_error(c, "events ", "%s: %s", host, why);
    }

    /* Page after page by seq, each printed as it comes (one page held at
     * a time), until a page comes back empty (a controller says no "more"
     * for events), the cursor stops moving, or `limit` events. */
    render_stream out;
    render_stream_init(&out, c->out, c->format);
    uint64_t printed = 0;
    int code = CLI_EXIT_OK, r = 0;
    Rackboot__V1__ApiRequest *req = cli_request_new(RACKBOOT__V1__API_REQUEST__BODY_EVENTS);
    if (!req || (host && cli_pb_set_string(&req->events->host, host) < 0)) {
        cli_pb_free(req);
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    for (;;) {
        uint64_t left = limit ? limit - printed : CLI_PAGE_ROWS;
        req->events->after_seq = after;
        req->events->limit = left < CLI_PAGE_ROWS ? (uint32_t)left : CLI_PAGE_ROWS;
        Rackboot__V1__ApiReply *reply = NULL;
        code = cli_call(c, req, 0, RACKBOOT__V1__API_REPLY__BODY_EVENTS, &reply);
        if (code != 0) {
            break;
        }
        Rackboot__V1__EventList *l = reply->events;
        size_t n = l->n_events, all = n;
        if (limit && n > limit - printed) {
            n = (size_t)(limit - printed);
        }
        l->n_events = n;
        r = render_events_page(&out, l);
        l->n_events = all;
        printed += n;
        bool done = all == 0 || l->last_seq <= after || (limit && printed >= limit);
        after = l->last_seq;
        rbproto_api_reply_free(reply);
        if (r < 0 || done) {
            break;
        }
    }
    if (code != CLI_EXIT_OK) {
        render_stream_abandon(&out); /* the output must not pass for whole */
    } else if (r < 0 || (r = render_stream_end(&out)) < 0) {
        render_stream_abandon(&out);
        cli_error(c, "cannot write output: %s", errstr(r));
        code = CLI_EXIT_FAILED;
    }
    cli_pb_free(req);
    return code;
}

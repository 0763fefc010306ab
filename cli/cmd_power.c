/* rackboot power: hosts' power and next boot device through their BMCs.
 *
 * The controller makes one command per host for the host's rack agent
 * (PowerRequest) and answers with their ids; the agent reports each
 * outcome as an event. This command asks for the outcomes
 * (PowerResultsRequest) until every command is done or the wait ends. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "hashmap.h"
#include "parse.h"
#include "pb.h"
#include "rbproto.h"
#include "render.h"
#include "timeutil.h"
#include "util.h"

static const char power_help[] =
    "Usage: rackboot power ACTION HOST... [--bootdev pxe|disk] [--no-wait] [--timeout S] [-o "
    "FORMAT]\n"
    "       rackboot power ACTION --rack RACK [RACK...] | --all  [options]\n"
    "\n"
    "Drives the hosts' BMCs (hosts added with --bmc) through their rack agents.\n"
    "ACTION is one of:\n"
    "  on       power on\n"
    "  off      power off at once (hard)\n"
    "  cycle    power off, then on (a host that is off is powered on)\n"
    "  soft     ask the operating system to shut down (ACPI)\n"
    "  status   read the power state (also shown by 'rackboot hosts list')\n"
    "\n"
    "  --bootdev pxe|disk  set the next boot (once) before the action\n"
    "  --no-wait           print the queued commands and return\n"
    "  --timeout SECONDS   how long to wait for every host's outcome\n"
    "                      (default 120; 1-3600)\n"
    "\n"
    "Prints one line per host: its action, the result (ok, failed, or timed_out\n"
    "when its rack agent did not report in time; queued with --no-wait), the\n"
    "power state the BMC reported, and the BMC's message. Exits 1 when a host\n"
    "failed or timed out.\n";

#define POWER_DEFAULT_WAIT_S  120u
#define POWER_DEFAULT_POLL_MS 1000u

enum { OPT_RACK = 1000, OPT_ALL, OPT_BOOTDEV, OPT_NO_WAIT, OPT_TIMEOUT };

/* The commands as last known: the first reply's rows, each replaced by
 * its latest result. Rows point into `made` and `results`. */
typedef struct power_view {
    Rackboot__V1__ApiReply *made;    /* the PowerRequest's reply */
    Rackboot__V1__ApiReply *results; /* the latest PowerResultsRequest's reply */
    Rackboot__V1__PowerRow **rows;   /* one per row of `made` */
    Rackboot__V1__PowerList list;    /* rows, for the renderers */
    hashmap *by_id;                  /* command id -> index in rows + 1 */
} power_view;

static void view_clear(power_view *v)
{
    rbproto_api_reply_free(v->made);
    rbproto_api_reply_free(v->results);
    free(v->rows);
    hashmap_free(v->by_id);
    *v = (power_view){ 0 };
}

/* Takes `made` over. -ENOMEM. */
static int view_init(power_view *v, Rackboot__V1__ApiReply *made)
{
    const Rackboot__V1__PowerList *l = made->power;
    v->made = made;
    v->rows = calloc(l->n_rows + 1, sizeof(*v->rows));
    if (!v->rows || hashmap_new(l->n_rows + 1, &v->by_id) < 0) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < l->n_rows; i++) {
        v->rows[i] = l->rows[i];
        const char *id = l->rows[i]->id;
        if (!strempty(id) &&
            hashmap_put(v->by_id, id, strlen(id), (void *)(uintptr_t)(i + 1)) < 0) {
            return -ENOMEM;
        }
    }
    v->list = (Rackboot__V1__PowerList)RACKBOOT__V1__POWER_LIST__INIT;
    v->list.rows = v->rows;
    v->list.n_rows = l->n_rows;
    return 0;
}

/* Takes `results` over: its rows replace the rows of the same id. */
static void view_update(power_view *v, Rackboot__V1__ApiReply *results)
{
    const Rackboot__V1__PowerList *l = results->power;
    /* Back to the rows made, then each answered one: a row never points
     * into a reply about to be freed, even one that left out an id. */
    for (size_t i = 0; i < v->list.n_rows; i++) {
        v->rows[i] = v->made->power->rows[i];
    }
    for (size_t k = 0; k < l->n_rows; k++) {
        const char *id = l->rows[k]->id;
        uintptr_t slot = strempty(id) ? 0 : (uintptr_t)hashmap_get(v->by_id, id, strlen(id));
        if (slot) {
            v->rows[slot - 1] = l->rows[k];
        }
    }
    rbproto_api_reply_free(v->results);
    v->results = results;
}

static size_t view_pending(const power_view *v)
{
    size_t n = 0;
    for (size_t i = 0; i < v->list.n_rows; i++) {
        n += !v->rows[i]->done;
    }
    return n;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Asks for the results of every command of the view made (its ids) until
 * none is pending or `wait_ms` passed. Returns an exit code; *ret_gave_up
 * says the wait ended with commands pending. */
static int wait_results(cli *c, power_view *v, uint64_t wait_ms, bool *ret_gave_up)
{
    uint32_t poll_ms = c->watch_poll_ms ? c->watch_poll_ms : POWER_DEFAULT_POLL_MS;
    uint64_t deadline = now_monotonic_ms() + wait_ms;
    Rackboot__V1__ApiRequest *req = cli_request_new(RACKBOOT__V1__API_REQUEST__BODY_POWER_RESULTS);
    int r = req ? 0 : -ENOMEM;
    for (size_t i = 0; r == 0 && i < v->list.n_rows; i++) {
        const char *id = v->made->power->rows[i]->id;
        if (!strempty(id)) {
            r = cli_pb_add_string(&req->power_results->ids, &req->power_results->n_ids, id);
        }
    }
    if (r < 0) {
        cli_pb_free(req);
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    int code = 0;
    *ret_gave_up = false;
    while (req->power_results->n_ids > 0 && view_pending(v) > 0) {
        uint64_t now = now_monotonic_ms();
        if (now >= deadline) {
            *ret_gave_up = true;
            break;
        }
        sleep_ms(deadline - now < poll_ms ? deadline - now : poll_ms);
        Rackboot__V1__ApiReply *reply = NULL;
        code = cli_call(c, req, 0, RACKBOOT__V1__API_REPLY__BODY_POWER, &reply);
        if (code != 0) {
            break;
        }
        view_update(v, reply);
    }
    cli_pb_free(req);
    return code;
}

static int print_view(cli *c, const power_view *v, bool gave_up, uint64_t wait_ms)
{
    int r = 0;
    if (output_structured(c->format)) {
        r = output_print(c->out, c->format, render_power_json(&v->list, gave_up),
                         RENDER_NAME_POWER);
    } else {
        render_power_text(c->out, &v->list, gave_up);
        r = ferror(c->out) ? -EIO : 0;
    }
    if (r < 0) {
        cli_error(c, "cannot write output: %s", errstr(r));
        return CLI_EXIT_FAILED;
    }
    size_t n = v->list.n_rows, failed = 0, pending = view_pending(v);
    for (size_t i = 0; i < n; i++) {
        failed += v->rows[i]->done && !v->rows[i]->ok;
    }
    if (failed) {
        cli_error(c, "%zu of %zu hosts failed", failed, n);
    }
    if (pending && gave_up) {
        cli_error(c,
                  "%zu of %zu hosts had no outcome after %llu s: is their rack agent connected "
                  "('rackboot racks')? The commands stay queued for it",
                  pending, n, (unsigned long long)(wait_ms / 1000));
    }
    return failed || (pending && gave_up) ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

int cmd_power(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "rack", required_argument, NULL, OPT_RACK },
        { "all", no_argument, NULL, OPT_ALL },
        { "bootdev", required_argument, NULL, OPT_BOOTDEV },
        { "no-wait", no_argument, NULL, OPT_NO_WAIT },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        CLI_OUTPUT_LONGOPTS,
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    _cleanup_free_ char **racks = calloc((size_t)argc + 1, sizeof(*racks));
    size_t n_racks = 0;
    bool all = false, no_wait = false;
    uint32_t wait_s = POWER_DEFAULT_WAIT_S;
    Rackboot__V1__BootDevice bootdev = RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_UNSPECIFIED;
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
            all = true;
            break;
        case OPT_BOOTDEV:
            if (rbproto_boot_device_from_string(optarg, &bootdev) < 0) {
                return cli_usage_error(c, "power ", "--bootdev %s: expected pxe or disk", optarg);
            }
            break;
        case OPT_NO_WAIT:
            no_wait = true;
            break;
        case OPT_TIMEOUT:
            if (parse_u32(optarg, 1, 3600, &wait_s) < 0) {
                return cli_usage_error(c, "power ", "--timeout %s: expected 1-3600 seconds",
                                       optarg);
            }
            break;
        case 'h':
            fputs(power_help, c->out);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, "power ", ch, argv) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    if (optind >= argc) {
        return cli_usage_error(c, "power ", "expected an ACTION: on, off, cycle, soft or status");
    }
    Rackboot__V1__PowerAction action;
    if (rbproto_power_action_from_string(argv[optind], &action) < 0) {
        return cli_usage_error(c, "power ", "unknown ACTION '%s' (on, off, cycle, soft, status)",
                               argv[optind]);
    }
    optind++;
    Rackboot__V1__ApiRequest *req = cli_request_new(RACKBOOT__V1__API_REQUEST__BODY_POWER);
    if (!req) {
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    int code = cli_fill_selector(c, "power ", req->power->target, racks, n_racks, all,
                                 argv + optind, (size_t)(argc - optind), false);
    if (code != 0) {
        cli_pb_free(req);
        return code;
    }
    req->power->action = action;
    req->power->boot_device = bootdev;
    bool fleet = all || n_racks > 0;
    Rackboot__V1__ApiReply *reply = NULL;
    code = cli_call(c, req, fleet ? cli_timeout(c, CLI_FLEET_TIMEOUT_MS) : 0,
                    RACKBOOT__V1__API_REPLY__BODY_POWER, &reply);
    cli_pb_free(req);
    if (code != 0) {
        return code;
    }
    power_view v = { 0 };
    if (view_init(&v, reply) < 0) {
        view_clear(&v);
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    bool gave_up = false;
    uint64_t wait_ms = (uint64_t)wait_s * 1000u;
    if (!no_wait) {
        code = wait_results(c, &v, wait_ms, &gave_up);
    }
    if (code == 0) {
        code = print_view(c, &v, gave_up, wait_ms);
    }
    view_clear(&v);
    return code;
}

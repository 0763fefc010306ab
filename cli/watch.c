/* rackboot watch: follow installs live until every one has ended.
 *
 * The status rows are the truth (state, phase, percent per host); the event
 * stream is only the wake-up: a long-polled EventsRequest returns as soon as
 * any agent reports something, then the status is read again. So nothing is
 * missed when events arrive faster than we draw, and a timeout the
 * controller declares (no event at all) still shows within one poll. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "pb.h"
#include "rbproto.h"
#include "render.h"
#include "timeutil.h"
#include "util.h"
#include "values.h"

static const char watch_help[] =
    "Usage: rackboot watch [HOST... | --rack RACK [RACK...]] [--json] [-q]\n"
    "\n"
    "Shows each install's progress and phase live until all have ended (on a\n"
    "terminal, redrawn in place; otherwise one line per change). Without\n"
    "arguments it follows every install active when it starts.\n"
    "\n"
    "  --json     JSON Lines: one object per change, shaped as a row of\n"
    "             'status --json' (host, state, phase, percent, ...)\n"
    "  -q         print nothing; the exit status says how the installs ended\n"
    "\n"
    "Exit status: 0 when every install ended installed, 1 when any failed, was\n"
    "cancelled or timed out.\n";

enum { OPT_RACK = 1000, OPT_ALL };
enum { BAR_WIDTH = 24, DEFAULT_POLL_MS = 5000 };

typedef struct watched {
    char *host;
    char *install_id;
    Rackboot__V1__InstallState state;
    Rackboot__V1__Phase phase;
    uint32_t percent;
    char *message;
    bool seen; /* printed at least once (plain mode) */
} watched;

typedef struct watch {
    cli *c;
    watched *w;
    size_t n;
    size_t drawn; /* lines drawn last time (tty mode) */
} watch;

static bool terminal(Rackboot__V1__InstallState s)
{
    return s == RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_INSTALLED ||
           s == RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_FAILED ||
           s == RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_CANCELLED ||
           s == RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_TIMED_OUT;
}

static void watch_clear(watch *wa)
{
    for (size_t i = 0; i < wa->n; i++) {
        free(wa->w[i].host);
        free(wa->w[i].install_id);
        free(wa->w[i].message);
    }
    free(wa->w);
    wa->w = NULL;
    wa->n = 0;
}

static int set_str(char **field, const char *v)
{
    char *copy = strdup(v ? v : "");
    if (!copy) {
        return -ENOMEM;
    }
    free(*field);
    *field = copy;
    return 0;
}

/* The first status: which installs to follow. */
static int choose(watch *wa, const Rackboot__V1__StatusList *l, bool named)
{
    wa->w = calloc(l->n_rows + 1, sizeof(*wa->w));
    if (!wa->w) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < l->n_rows; i++) {
        const Rackboot__V1__StatusRow *r = l->rows[i];
        if (r->state == RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_NONE) {
            if (named) {
                fprintf(wa->c->err, "rackboot: host %s has no install to watch\n", r->host);
            }
            continue;
        }
        /* Unnamed: only what is under way; named: whatever it is. */
        if (!named && terminal(r->state)) {
            continue;
        }
        watched *w = &wa->w[wa->n++];
        w->phase = RACKBOOT__V1__PHASE__PHASE_UNSPECIFIED;
        if (set_str(&w->host, r->host) < 0) {
            return -ENOMEM;
        }
    }
    return 0;
}

static void bar(char out[BAR_WIDTH + 3], uint32_t percent)
{
    size_t fill = (size_t)(percent > 100 ? 100 : percent) * BAR_WIDTH / 100;
    out[0] = '[';
    for (size_t i = 0; i < BAR_WIDTH; i++) {
        out[1 + i] = i < fill ? '#' : '-';
    }
    out[BAR_WIDTH + 1] = ']';
    out[BAR_WIDTH + 2] = '\0';
}

static uint32_t shown_percent(const watched *w)
{
    return w->state == RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_INSTALLED ? 100 : w->percent;
}

/* Takes a status reply in; prints changes (plain) or the whole block (tty). */
static int update(watch *wa, const Rackboot__V1__StatusList *l)
{
    cli *c = wa->c;
    size_t width = 4;
    for (size_t i = 0; i < wa->n; i++) {
        size_t n = strlen(wa->w[i].host);
        width = n > width ? n : width;
    }
    for (size_t i = 0; i < wa->n; i++) {
        watched *w = &wa->w[i];
        Rackboot__V1__StatusRow *r = NULL;
        for (size_t k = 0; k < l->n_rows && !r; k++) {
            if (streq(l->rows[k]->host, w->host)) {
                r = l->rows[k];
            }
        }
        if (!r) {
            continue; /* removed meanwhile: keep the last view */
        }
        bool changed = !w->seen || r->state != w->state || r->phase != w->phase ||
                       r->percent != w->percent ||
                       !streq(r->message, w->message ? w->message : "") ||
                       !streq(r->install_id, w->install_id ? w->install_id : "");
        w->state = r->state;
        w->phase = r->phase;
        w->percent = r->percent;
        if (set_str(&w->message, r->message) < 0 || set_str(&w->install_id, r->install_id) < 0) {
            return -ENOMEM;
        }
        if (output_structured(c->format) && changed) {
            /* JSON Lines: the row as `status --json` shows it. */
            Rackboot__V1__StatusRow *one[] = { r };
            Rackboot__V1__StatusList row = RACKBOOT__V1__STATUS_LIST__INIT;
            row.rows = one;
            row.n_rows = 1;
            json_t *a = render_status_json(&row);
            json_t *j = json_incref(json_array_get(a, 0));
            json_decref(a);
            if (output_json_line(c->out, j) < 0) {
                return -EIO;
            }
        } else if (!c->tty && changed) {
            char when[RFC3339_MS_LEN + 8];
            fprintf(c->out, "%s %-*s %-10s %-17s %3u%%%s%s\n",
                    render_time(r->updated_unix_ms ? r->updated_unix_ms : now_realtime_ms(), when,
                                sizeof(when)),
                    (int)width, w->host, render_state(w->state), render_phase(w->phase),
                    shown_percent(w), w->message[0] ? " " : "", w->message);
        }
        w->seen = true;
    }
    if (c->tty && !output_structured(c->format)) {
        if (wa->drawn) {
            fprintf(c->out, "\033[%zuA", wa->drawn); /* back to the block's top */
        }
        for (size_t i = 0; i < wa->n; i++) {
            const watched *w = &wa->w[i];
            char b[BAR_WIDTH + 3];
            bar(b, shown_percent(w));
            /* \033[2K clears the old line; the message is cut to keep one
             * terminal line per host. */
            fprintf(c->out, "\033[2K%-*s %s %3u%% %-10s %-17s %.60s\n", (int)width, w->host, b,
                    shown_percent(w), render_state(w->state), render_phase(w->phase),
                    w->message ? w->message : "");
        }
        wa->drawn = wa->n;
    }
    fflush(c->out);
    return 0;
}

static Rackboot__V1__ApiRequest *status_request(watch *wa, char **racks, size_t n_racks,
                                                char **hosts, size_t n_hosts, bool first)
{
    Rackboot__V1__ApiRequest *req = cli_request_new(RACKBOOT__V1__API_REQUEST__BODY_STATUS);
    if (!req) {
        return NULL;
    }
    Rackboot__V1__Selector *sel = req->status->target;
    int r = 0;
    if (!first) {
        /* Later polls ask for exactly the watched hosts. */
        for (size_t i = 0; r == 0 && i < wa->n; i++) {
            r = cli_pb_add_string(&sel->hosts, &sel->n_hosts, wa->w[i].host);
        }
    } else if (n_racks) {
        for (size_t i = 0; r == 0 && i < n_racks; i++) {
            r = cli_pb_add_string(&sel->racks, &sel->n_racks, racks[i]);
        }
    } else if (n_hosts) {
        for (size_t i = 0; r == 0 && i < n_hosts; i++) {
            r = cli_pb_add_string(&sel->hosts, &sel->n_hosts, hosts[i]);
        }
    } else {
        sel->all = true;
    }
    return r < 0 ? cli_pb_free(req) : req;
}

/* Events since `*cursor` (long poll up to wait_ms); moves the cursor. */
static int wait_events(watch *wa, uint64_t *cursor, uint32_t wait_ms, size_t *ret_n)
{
    cli *c = wa->c;
    Rackboot__V1__ApiRequest *req = cli_request_new(RACKBOOT__V1__API_REQUEST__BODY_EVENTS);
    if (!req || (wa->n == 1 && cli_pb_set_string(&req->events->host, wa->w[0].host) < 0)) {
        cli_pb_free(req);
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    req->events->after_seq = *cursor;
    req->events->max_wait_ms = wait_ms;
    req->events->limit = wait_ms ? 0 : RBPROTO_MAX_EVENT_ROWS;
    Rackboot__V1__ApiReply *reply = NULL;
    /* The reply may legitimately take wait_ms: allow that plus the usual. */
    int code =
        cli_call(c, req, wait_ms + c->timeout_ms, RACKBOOT__V1__API_REPLY__BODY_EVENTS, &reply);
    cli_pb_free(req);
    if (code != 0) {
        return code;
    }
    if (reply->events->last_seq > *cursor) {
        *cursor = reply->events->last_seq;
    }
    *ret_n = reply->events->n_events;
    rbproto_api_reply_free(reply);
    return 0;
}

int cmd_watch(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "rack", required_argument, NULL, OPT_RACK },
        { "all", no_argument, NULL, OPT_ALL },
        CLI_OUTPUT_LONGOPTS,
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    _cleanup_free_ char **racks = calloc((size_t)argc + 1, sizeof(*racks));
    size_t n_racks = 0;
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
            break; /* the default */
        case 'h':
            fputs(watch_help, c->out);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, "watch ", ch, argv) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    if (c->format == OUTPUT_YAML || c->format == OUTPUT_NAME) {
        return cli_usage_error(c, "watch ",
                               "-o yaml and -o name do not stream; --json prints "
                               "JSON lines");
    }
    char **hosts = argv + optind;
    size_t n_hosts = (size_t)(argc - optind);
    if (n_racks) {
        /* "--rack r1 r2": the rest are racks too. */
        for (size_t i = 0; i < n_hosts; i++) {
            racks[n_racks++] = hosts[i];
        }
        n_hosts = 0;
    }
    const char *why;
    for (size_t i = 0; i < n_racks + n_hosts; i++) {
        const char *name = i < n_racks ? racks[i] : hosts[i - n_racks];
        if ((why = cli_check_name(name))) {
            return cli_usage_error(c, "watch ", "%s: %s", name, why);
        }
    }

    watch wa = { .c = c };
    uint32_t poll_ms = c->watch_poll_ms ? c->watch_poll_ms : DEFAULT_POLL_MS;
    uint64_t cursor = 0;
    int code = CLI_EXIT_OK;
    bool first = true;
    for (;;) {
        Rackboot__V1__ApiRequest *req = status_request(&wa, racks, n_racks, hosts, n_hosts, first);
        if (!req) {
            cli_error(c, "out of memory");
            code = CLI_EXIT_FAILED;
            break;
        }
        Rackboot__V1__ApiReply *reply = NULL;
        code = cli_call(c, req, 0, RACKBOOT__V1__API_REPLY__BODY_STATUSES, &reply);
        cli_pb_free(req);
        if (code != 0) {
            break;
        }
        int r = 0;
        if (first) {
            r = choose(&wa, reply->statuses, n_hosts > 0);
            if (r == 0 && wa.n == 0) {
                rbproto_api_reply_free(reply);
                fprintf(c->err, "rackboot: no installs to watch\n");
                code = n_hosts > 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
                break;
            }
        }
        if (r == 0) {
            r = update(&wa, reply->statuses);
        }
        rbproto_api_reply_free(reply);
        if (r < 0) {
            cli_error(c, "out of memory");
            code = CLI_EXIT_FAILED;
            break;
        }
        size_t ended = 0, installed = 0;
        for (size_t i = 0; i < wa.n; i++) {
            ended += terminal(wa.w[i].state);
            installed += wa.w[i].state == RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_INSTALLED;
        }
        if (ended == wa.n) {
            if (!output_structured(c->format)) {
                fprintf(c->out, "%zu of %zu installed\n", installed, wa.n);
            }
            code = installed == wa.n ? CLI_EXIT_OK : CLI_EXIT_FAILED;
            break;
        }
        size_t n = 0;
        if (first) {
            /* Skip the history: follow events from now on. */
            uint64_t before;
            do {
                before = cursor;
                code = wait_events(&wa, &cursor, 0, &n);
            } while (code == 0 && n > 0 && cursor > before);
            first = false;
            if (code != 0) {
                break;
            }
        }
        code = wait_events(&wa, &cursor, poll_ms, &n);
        if (code != 0) {
            break;
        }
    }
    watch_clear(&wa);
    return code;
}

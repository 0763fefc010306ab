#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "diag.h"
#include "pb.h"

#include "rbproto.h"
#include "timeutil.h"

void cli_error(cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rackboot: ", c->err);
    vfprintf(c->err, fmt, ap);
    fputc('\n', c->err);
    va_end(ap);
}

int cli_usage_error(cli *c, const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rackboot: ", c->err);
    vfprintf(c->err, fmt, ap);
    fputc('\n', c->err);
    va_end(ap);
    fprintf(c->err, "Try 'rackboot %s--help'.\n", command ? command : "");
    return CLI_EXIT_USAGE;
}

int cli_exit_for_status(Rackboot__V1__Status status)
{
    switch (status) {
    case RACKBOOT__V1__STATUS__STATUS_OK:
        return CLI_EXIT_OK;
    case RACKBOOT__V1__STATUS__STATUS_NOT_FOUND:
        return CLI_EXIT_NOT_FOUND;
    case RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE:
        return CLI_EXIT_UNREACHABLE;
    default:
        return CLI_EXIT_FAILED;
    }
}

uint32_t cli_timeout(const cli *c, uint32_t default_ms)
{
    return c->timeout_given ? c->timeout_ms : default_ms;
}

/* A call's waiting, told on a terminal: a thread that wakes every
 * CLI_PROGRESS_EVERY_MS until the call is back. The transport blocks in
 * nng, so the main thread cannot do it. */
typedef struct progress {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    FILE *err;
    uint32_t timeout_ms;
} progress;

static void *progress_run(void *arg)
{
    progress *p = arg;
    uint64_t start = now_monotonic_ms();
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&p->mu);
    while (!p->done) {
        next.tv_sec += CLI_PROGRESS_EVERY_MS / 1000u;
        while (!p->done && pthread_cond_timedwait(&p->cv, &p->mu, &next) != ETIMEDOUT) {
        }
        if (!p->done) {
            fprintf(p->err, "rackboot: waiting for the controller: %" PRIu64 " s of at most %u s\n",
                    (now_monotonic_ms() - start + 500) / 1000u, p->timeout_ms / 1000u);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* c->transport, with progress lines when c->err is a terminal. */
static int call_transport(cli *c, const Rackboot__V1__ApiRequest *req, uint32_t timeout_ms,
                          Rackboot__V1__ApiReply **ret)
{
    progress p = { .err = c->err, .timeout_ms = timeout_ms };
    pthread_t thread;
    pthread_condattr_t ca;
    bool started = false;
    if (c->err_tty && timeout_ms > CLI_PROGRESS_EVERY_MS) {
        pthread_mutex_init(&p.mu, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&p.cv, &ca);
        pthread_condattr_destroy(&ca);
        started = pthread_create(&thread, NULL, progress_run, &p) == 0;
        if (!started) {
            pthread_cond_destroy(&p.cv);
            pthread_mutex_destroy(&p.mu);
        }
    }
    int r = c->transport(c, req, timeout_ms, ret);
    if (started) {
        pthread_mutex_lock(&p.mu);
        p.done = true;
        pthread_cond_signal(&p.cv);
        pthread_mutex_unlock(&p.mu);
        pthread_join(thread, NULL);
        pthread_cond_destroy(&p.cv);
        pthread_mutex_destroy(&p.mu);
    }
    return r;
}

/* Whether a reply that is not OK says host by host what was done and what
 * was skipped (a controller that sets StatusRow.skipped). */
static bool rows_say_skipped(const Rackboot__V1__ApiReply *reply)
{
    if (reply->body_case != RACKBOOT__V1__API_REPLY__BODY_STATUSES) {
        return false;
    }
    for (size_t i = 0; i < reply->statuses->n_rows; i++) {
        if (reply->statuses->rows[i]->skipped != RACKBOOT__V1__SKIP__SKIP_NONE) {
            return true;
        }
    }
    return false;
}

static int call(cli *c, const Rackboot__V1__ApiRequest *req, uint32_t timeout_ms,
                Rackboot__V1__ApiReply__BodyCase expect, bool keep_rows,
                Rackboot__V1__ApiReply **ret)
{
    Rackboot__V1__ApiReply *reply = NULL;
    c->last_status = RACKBOOT__V1__STATUS__STATUS_UNSPECIFIED;
    int r = call_transport(c, req, timeout_ms ? timeout_ms : c->timeout_ms, &reply);
    if (r != 0) {
        return r;
    }
    c->last_status = reply->status;
    if (reply->status != RACKBOOT__V1__STATUS__STATUS_OK && keep_rows && rows_say_skipped(reply)) {
        *ret = reply;
        return cli_exit_for_status(reply->status);
    }
    if (reply->status != RACKBOOT__V1__STATUS__STATUS_OK) {
        const char *what = rbproto_status_to_string(reply->status);
        /* install / cancel: which hosts failed, and why (rackboot.proto). */
        if (reply->body_case == RACKBOOT__V1__API_REPLY__BODY_STATUSES) {
            for (size_t i = 0; i < reply->statuses->n_rows; i++) {
                const Rackboot__V1__StatusRow *row = reply->statuses->rows[i];
                if (row->message && row->message[0]) {
                    cli_error(c, "host %s: %s", row->host, row->message);
                }
            }
        }
        if (reply->message && reply->message[0]) {
            cli_error(c, "%s", reply->message);
        } else {
            cli_error(c, "the controller answered %s", what ? what : "an unknown status");
        }
        r = cli_exit_for_status(reply->status);
        rbproto_api_reply_free(reply);
        return r;
    }
    if (expect != RACKBOOT__V1__API_REPLY__BODY__NOT_SET && reply->body_case != expect) {
        cli_error(c, "the controller's reply carries no result (protocol mismatch?)");
        rbproto_api_reply_free(reply);
        return CLI_EXIT_FAILED;
    }
    *ret = reply;
    return 0;
}

int cli_call(cli *c, const Rackboot__V1__ApiRequest *req, uint32_t timeout_ms,
             Rackboot__V1__ApiReply__BodyCase expect, Rackboot__V1__ApiReply **ret)
{
    return call(c, req, timeout_ms, expect, false, ret);
}

int cli_call_rows(cli *c, const Rackboot__V1__ApiRequest *req, uint32_t timeout_ms,
                  Rackboot__V1__ApiReply **ret)
{
    return call(c, req, timeout_ms, RACKBOOT__V1__API_REPLY__BODY_STATUSES, true, ret);
}

int cli_option_error(cli *c, const char *command, int ch, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (ch == ':') {
        return cli_usage_error(c, command, "option '%s' needs a value", arg);
    }
    if (optopt && optopt != '?') {
        return cli_usage_error(c, command, "unknown option '-%c'", optopt);
    }
    /* The option's name alone: its value may be a secret typed where it
     * does not belong ("--bmc-pass=..."). */
    return cli_usage_error(c, command, "unknown option '%.*s'", (int)strcspn(arg, "="), arg);
}

int cli_common_option(cli *c, const char *command, int ch, char **argv)
{
    switch (ch) {
    case CLI_OPT_JSON:
        c->format = OUTPUT_JSON;
        return CLI_EXIT_OK;
    case 'o':
        if (output_format_from_string(optarg, &c->format) < 0) {
            return cli_usage_error(c, command, "-o %s: expected table, wide, json, yaml or name",
                                   optarg);
        }
        return CLI_EXIT_OK;
    case 'q':
        if (!c->quiet_out) {
            c->quiet_out = fopen("/dev/null", "we");
            if (!c->quiet_out) {
                cli_error(c, "--quiet: cannot open /dev/null: %s", strerror(errno));
                return CLI_EXIT_USAGE;
            }
            c->loud_out = c->out;
            c->out = c->quiet_out;
            c->tty = false; /* nothing to redraw */
        }
        return CLI_EXIT_OK;
    default:
        return cli_option_error(c, command, ch, argv);
    }
}

void cli_output_release(cli *c)
{
    if (c->quiet_out) {
        fclose(c->quiet_out);
        c->out = c->loud_out;
        c->quiet_out = c->loud_out = NULL;
    }
}

void cli_print_diag(cli *c, const diag *d, const char *prefix)
{
    for (size_t i = 0; i < diag_count(d); i++) {
        fprintf(c->err, "%s%s\n", prefix, diag_get(d, i));
    }
}

int cli_listing(cli *c, int argc, char **argv, const char *command, const char *help,
                Rackboot__V1__ApiRequest__BodyCase ask, Rackboot__V1__ApiReply__BodyCase expect,
                cli_listing_render_fn render)
{
    static const struct option opts[] = {
        CLI_OUTPUT_LONGOPTS,
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h" CLI_OUTPUT_SHORTOPTS, opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            fputs(help, c->out);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, command, ch, argv) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    /* "racks list" reads naturally too. */
    if (argc - optind == 1 && strcmp(argv[optind], "list") == 0) {
        optind++;
    }
    if (argc != optind) {
        return cli_usage_error(c, command, "unexpected argument '%s'", argv[optind]);
    }
    Rackboot__V1__ApiRequest *req = cli_request_new(ask);
    if (!req) {
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    Rackboot__V1__ApiReply *reply = NULL;
    int code = cli_call(c, req, 0, expect, &reply);
    cli_pb_free(req);
    if (code != 0) {
        return code;
    }
    int r = render(c, reply);
    rbproto_api_reply_free(reply);
    return r < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

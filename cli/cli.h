/* The rackboot CLI's shared context: output streams, the --json switch, the
 * way to reach the controller, and the exit codes every command returns.
 *
 * Commands are written as parse → build one ApiRequest → cli_call() →
 * render, and never open a connection before their arguments are known to
 * be good, so a usage error exits 2 without touching the network. The
 * transport is a function pointer: the binary plugs in client/session.h
 * (cli/transport.c), the unit tests a fake that checks the request and hands
 * back a canned reply. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "output.h"
#include "rackboot.pb-c.h"

/* Exit codes: an interface, documented in `rackboot --help`. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILED = 1,      /* the controller refused or failed the request */
    CLI_EXIT_USAGE = 2,       /* bad command line or input file */
    CLI_EXIT_NOT_FOUND = 3,   /* a named host, rack or profile does not exist */
    CLI_EXIT_UNREACHABLE = 4, /* no controller, or it did not answer in time */
};

#define CLI_DEFAULT_CONTROLLER "ipc:///run/rackboot/api.sock"
#define CLI_DEFAULT_TIMEOUT_MS 30000u
/* Controllers one call may try (cli.controller_urls). */
#define CLI_MAX_CONTROLLERS 8u
/* install / cancel of --rack or --all: a whole fleet takes seconds to
 * minutes (the controller works through it 5,000 hosts at a time), so they
 * wait this long unless --timeout says otherwise. */
#define CLI_FLEET_TIMEOUT_MS 600000u
/* A call still out after this long says so on a terminal, and again every
 * this long. */
#define CLI_PROGRESS_EVERY_MS 5000u

typedef struct cli cli;

/* Sends `req` and waits for the reply (at most timeout_ms). Returns 0 with
 * *ret an rbproto_unpack'ed reply, or a CLI_EXIT_* code > 0 after printing
 * one line to c->err. */
typedef int (*cli_transport_fn)(cli *c, const Rackboot__V1__ApiRequest *req, uint32_t timeout_ms,
                                Rackboot__V1__ApiReply **ret);

struct cli {
    FILE *out; /* --quiet points it at /dev/null (quiet_out) */
    FILE *err;
    output_format format;       /* -o FORMAT, --json */
    FILE *quiet_out, *loud_out; /* --quiet's sink, and the `out` it replaced */
    bool tty;                   /* out is a terminal: watch redraws in place */
    /* Where the controller is (transport.c reads these; context.h fills
     * what the command line leaves unset). */
    const char *controller;
    const char *ca, *cert, *key, *crl, *server_name;
    const char *controller_from; /* where `controller` came from, for messages */
    /* `controller` may name several controllers (sharing one store), each
     * tried in turn when the one before is unreachable (transport.c):
     * separated by commas and/or blanks, or --controller given more than
     * once (joined into `controller_joined`). cli_main splits it into
     * controller_urls and frees them. */
    char *controller_joined;
    char *controller_urls[CLI_MAX_CONTROLLERS];
    size_t n_controller_urls;
    const char *controller_in_use; /* the one of them the session is open to */
    const char *context;           /* the config file's context in use, or NULL */
    struct cli_context_state *context_state;
    uint32_t timeout_ms;
    bool timeout_given; /* --timeout: commands with a longer default keep it */
    bool err_tty;       /* err is a terminal: long calls show they are waiting */
    cli_transport_fn transport;
    void *transport_state; /* the open session, or the test's fake */
    /* watch: ms between status polls when events say nothing; power: ms
     * between asks for the commands' results (tests shorten both); 0
     * means the command's default. */
    uint32_t watch_poll_ms;
    /* ApiReply.status of the last cli_call(), for hints ("use --update"). */
    Rackboot__V1__Status last_status;
};

/* One "rackboot: ..." line on c->err. */
void cli_error(cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A usage error: the line, then where to find help. Returns CLI_EXIT_USAGE. */
int cli_usage_error(cli *c, const char *command, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sends req (which the caller keeps) and checks the reply: a reply whose
 * status is not OK is printed ("rackboot: host web99 not found") and turned
 * into its exit code, so *ret is only set for OK replies. `expect` is the
 * body an OK reply must carry (NOT_SET: any). */
int cli_call(cli *c, const Rackboot__V1__ApiRequest *req, uint32_t timeout_ms,
             Rackboot__V1__ApiReply__BodyCase expect, Rackboot__V1__ApiReply **ret);
/* cli_call() for install and cancel, whose reply has a row per host: one
 * that is not OK but says host by host what was done and what was skipped
 * (StatusRow.skipped) is left unprinted in *ret for the caller, with the
 * exit code of its status returned. Any other reply is as cli_call()'s. */
int cli_call_rows(cli *c, const Rackboot__V1__ApiRequest *req, uint32_t timeout_ms,
                  Rackboot__V1__ApiReply **ret);
/* The timeout of a command whose default is `default_ms`: --timeout wins. */
uint32_t cli_timeout(const cli *c, uint32_t default_ms);

/* For getopt_long's ':' (missing value) and '?' (unknown option) returns:
 * prints the problem and returns CLI_EXIT_USAGE. `command` is e.g.
 * "hosts add ". */
int cli_option_error(cli *c, const char *command, int ch, char **argv);

/* The output options every command takes (and `rackboot` itself, before
 * the command): --json (-o json), -o/--output table|wide|json|yaml|name,
 * -q/--quiet (nothing on stdout; errors still on stderr, the exit status
 * says the rest). A command puts CLI_OUTPUT_LONGOPTS in its getopt_long
 * table and CLI_OUTPUT_SHORTOPTS in its optstring, and hands every option
 * character it does not know to cli_common_option(). */
enum { CLI_OPT_JSON = 900 };
/* clang-format off */
#define CLI_OUTPUT_LONGOPTS                                 \
    { "json", no_argument, NULL, CLI_OPT_JSON },            \
    { "output", required_argument, NULL, 'o' },             \
    { "quiet", no_argument, NULL, 'q' }
/* clang-format on */
#define CLI_OUTPUT_SHORTOPTS "o:q"
/* Applies an output option (CLI_EXIT_OK), or is cli_option_error() for
 * anything else, a bad -o value included (CLI_EXIT_USAGE). */
int cli_common_option(cli *c, const char *command, int ch, char **argv);
/* Undoes --quiet: `out` is the caller's stream again. */
void cli_output_release(cli *c);

/* Prints the reply of a listing in c->format; < 0 on a
 * write error. */
typedef int (*cli_listing_render_fn)(cli *c, const Rackboot__V1__ApiReply *reply);

/* A listing command without arguments of its own (`racks`, `images list`):
 * options --json and --help, an optional "list" word, one request whose
 * body is `ask`, a reply carrying `expect`, rendered by `render`. `command`
 * is "racks " or "images " for messages. */
int cli_listing(cli *c, int argc, char **argv, const char *command, const char *help,
                Rackboot__V1__ApiRequest__BodyCase ask, Rackboot__V1__ApiReply__BodyCase expect,
                cli_listing_render_fn render);

/* Prints a diag's entries to c->err, one "FILE:LINE: problem" per line,
 * each after `prefix` (e.g. "" or "note: "). */
struct diag;
void cli_print_diag(cli *c, const struct diag *d, const char *prefix);

/* ApiReply.status → exit code: OK 0; NOT_FOUND 3; UNAVAILABLE 4; INVALID,
 * CONFLICT, FAILED, UNAUTHORIZED and unknown values 1. INVALID is 1, not 2:
 * the command line was well formed (usage is checked before sending) and the
 * controller refused its content, e.g. an address outside the rack. */
int cli_exit_for_status(Rackboot__V1__Status status);

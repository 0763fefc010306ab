/* daemon_args: the command line both daemons share.
 *
 *     NAME --config FILE [--user NAME] [--check-config]
 *     NAME --config FILE --migrate | --import-store URL   (store_options)
 *     NAME --help | --version
 *
 * The daemon names itself and fills in the sentences of its --help that
 * differ (what it is, its example file, when it drops to --user, what
 * --check-config checks, its signals); the options, their parsing and the
 * exit statuses are the same for both: 0 after --help or --version, 2 for a
 * usage error (the usage goes to stderr). A daemon that grows an option of
 * its own adds it here as a field of daemon_program, so the two stay one
 * loop. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

typedef struct daemon_program {
    const char *name;       /* "rackboot-agent": --version and messages */
    const char *about;      /* the paragraph under the usage line, '\n'-terminated */
    const char *example;    /* the documented example configuration file */
    const char *user_when;  /* "once the ports are bound" */
    const char *user_key;   /* "[agent] user": what --user overrides */
    const char *check_what; /* "the configuration and hosts file" */
    const char *signals;    /* the closing paragraph, '\n'-terminated */
    /* The controller's store maintenance: --migrate and --import-store URL
     * (offered only when true). */
    bool store_options;
} daemon_program;

typedef struct daemon_args {
    const char *config;       /* --config: never NULL when the daemon runs */
    const char *user;         /* --user (a valid user name) or NULL */
    bool check_config;        /* --check-config */
    bool migrate;             /* --migrate (store_options) */
    const char *import_store; /* --import-store URL (store_options) or NULL */
} daemon_args;

/* daemon_args_parse()'s "go on" result; anything else is an exit status. */
#define DAEMON_ARGS_RUN (-1)

/* Writes the --help text. */
void daemon_args_usage(const daemon_program *prog, FILE *f);

/* Parses argv with getopt_long(3) (from the first argument, so it may be
 * called again). DAEMON_ARGS_RUN with *ret filled in (pointing into argv),
 * or the status to exit with: 0 after --help (to `out`) or --version, 2 after
 * a usage error (reported on `err`; getopt's own messages go to stderr). */
int daemon_args_parse(const daemon_program *prog, int argc, char **argv, FILE *out, FILE *err,
                      daemon_args *ret);

/* The rackboot subcommands. Each takes its own argv (argv[0] is the
 * command's name), parses it with getopt_long, and returns an exit code
 * (cli.h). */
#pragma once

#include "cli.h"

int cmd_hosts(cli *c, int argc, char **argv);    /* hosts import|add|list|show|remove */
int cmd_racks(cli *c, int argc, char **argv);    /* racks */
int cmd_profiles(cli *c, int argc, char **argv); /* profiles import|list|show */
int cmd_images(cli *c, int argc, char **argv);   /* images [list] */
int cmd_install(cli *c, int argc, char **argv);
int cmd_cancel(cli *c, int argc, char **argv);
int cmd_status(cli *c, int argc, char **argv);
int cmd_events(cli *c, int argc, char **argv);
int cmd_watch(cli *c, int argc, char **argv);
int cmd_audit(cli *c, int argc, char **argv);
int cmd_power(cli *c, int argc, char **argv);
int cmd_web(cli *c, int argc, char **argv); /* web login */

/* Fills a Selector from the command line of install, cancel, status and
 * power: positional arguments `args` are hosts, or more racks when --rack
 * was given ("--rack r1 r2"); --all alone; nothing at all is --all when
 * `default_all`, else a usage error. `cmd` ("install ") names the command
 * in messages. Returns an exit code. */
int cli_fill_selector(cli *c, const char *cmd, Rackboot__V1__Selector *sel, char **racks,
                      size_t n_racks, bool all, char **args, size_t n_args, bool default_all);

/* `--since` of audit: RFC 3339 UTC ("2026-05-01T12:00:00Z", with or without
 * milliseconds), a date ("2026-05-01", midnight UTC), or an age before
 * `now_ms` ("90s", "30m", "12h", "7d"). -EINVAL otherwise. */
int cli_parse_since(const char *s, uint64_t now_ms, uint64_t *ret_ms);

/* The whole command line after the global options: argv[0] is the
 * subcommand. Prints the overview for no command. */
int cli_dispatch(cli *c, int argc, char **argv);
/* The whole command line, argv[0] being the program: global options
 * (--controller, RACKBOOT_CONTROLLER, --ca/--cert/--key/--crl/--server-name,
 * --timeout, --json, --help, --version), then cli_dispatch(). */
int cli_main(cli *c, int argc, char **argv);
/* The overview `rackboot --help` prints. */
void cli_print_help(FILE *f);

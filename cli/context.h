/* Where the CLI finds its controller, so a remote operator does not type
 * --controller --ca --cert --key --server-name on every call.
 *
 * Each of the controller URL, the CA, the certificate, the key, the CRL and
 * the server name comes from the first of:
 *   1. the command line: --controller, --ca, --cert, --key, --crl,
 *      --server-name;
 *   2. the environment: RACKBOOT_CONTROLLER, RACKBOOT_CA, RACKBOOT_CERT,
 *      RACKBOOT_KEY, RACKBOOT_CRL, RACKBOOT_SERVER_NAME (empty: unset);
 *   3. a context of the CLI's config file: --context NAME, else
 *      $RACKBOOT_CONTEXT, else the file's own `context =`;
 *   4. the local controller, CLI_DEFAULT_CONTROLLER.
 *
 * The config file is $RACKBOOT_CONFIG, else $XDG_CONFIG_HOME/rackboot/config,
 * else ~/.config/rackboot/config. It need not exist, unless a context is
 * asked for by name. Its format (common/ini.h):
 *
 *     # the context used when none is named
 *     [rackboot]
 *     context = prod
 *
 *     # paths: relative to this file, or ~/...
 *     [context prod]
 *     controller = tls+tcp://ctl1.fleet.example.net:7444
 *     ca = /etc/rackboot/ca.crt
 *     cert = alice.crt
 *     key = alice.key
 *     crl = /etc/rackboot/crl.pem
 *     server_name = ctl1.fleet.example.net
 *
 * Unknown sections and keys are errors (a misspelt `cert` must not send the
 * call without one), reported with their line. */
#pragma once

#include "cli.h"

/* Fills what the command line left NULL in c->controller, ca, cert, key,
 * crl and server_name, and c->controller_from (for messages: "--controller",
 * "RACKBOOT_CONTROLLER", "context prod in FILE", "the default").
 * `context` is --context's value (NULL: none given). CLI_EXIT_OK, or
 * CLI_EXIT_USAGE after printing why. What it allocates is freed by
 * cli_context_release(). */
int cli_context_resolve(cli *c, const char *context);
void cli_context_release(cli *c);

/* The config file's path (malloc()ed; NULL when neither RACKBOOT_CONFIG,
 * XDG_CONFIG_HOME nor HOME is set, or out of memory). */
char *cli_config_path(void);

/* `rackboot contexts`: the config file's contexts, the one in use marked. */
int cmd_contexts(cli *c, int argc, char **argv);

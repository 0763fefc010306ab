/* The real transport of the rackboot CLI: client/session.h, opened on the
 * first call (so `--help` and usage errors never dial) and closed at exit. */
#pragma once

#include "cli.h"

/* Matches cli_transport_fn. With several controllers (cli.controller_urls)
 * the session opens to the first that answers: one unreachable (refused,
 * timed out, no route) or failing TLS is skipped for the next, and a note
 * on stderr names the one used; one that answers and refuses us is not
 * skipped (they all trust one CA), nor is a call retried elsewhere once
 * its session is open (an install may already be under way there).
 * Errors are printed and mapped to exit codes: unreachable (refused, no
 * socket file, timed out, no route, connection lost) 4; identity or TLS
 * refused 1; bad URL or TLS options 2. */
int cli_transport_session(cli *c, const Rackboot__V1__ApiRequest *req, uint32_t timeout_ms,
                          Rackboot__V1__ApiReply **ret);
/* Closes the session if one was opened. */
void cli_transport_close(cli *c);

/* The exit code for an rb_session_open() or rb_session_call_api() error. */
int cli_transport_exit_code(int err);

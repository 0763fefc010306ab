/* What the render modules share and white-box tests may use: the checks
 * values pass before they land in a script, a command line or a kickstart
 * (template_value_safe() in model/template.h is the first of them). Not for
 * callers outside render/ (the agent and the controller use the public headers). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/template.h"
#include "rbuf.h"

/* An install id, a token or a profile name: 1-128 characters of RFC 3986
 * "unreserved" (letters, digits, '-', '.', '_', '~'), so it goes into a URL
 * path or query and onto a kernel command line without any encoding. "." and
 * ".." are refused (they are path segments). */
bool render_id_valid(const char *s);

/* The profile's extra kernel arguments: any printable ASCII, no control
 * characters (a newline would start a new iPXE command). */
bool render_cmdline_extra_valid(const char *s);

/* "2001:db8::1" (RFC 5952 form, as inet_ntop writes it). */
#define RENDER_ADDR_LEN 46
void render_format_addr(const void *in6_addr, char buf[RENDER_ADDR_LEN]);

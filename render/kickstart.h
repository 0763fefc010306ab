/* The kickstart served at /ks/<install-id>?token=TOKEN (context.h): the
 * profile's template with its placeholders filled (template.h), then
 * sections rackboot adds to every kickstart, in this order after the
 * template's own (Anaconda runs sections of one kind in file order):
 *
 *   %pre                 POST phase=installing to the progress URL
 *   %pre                 (keep_ra) switch the installer's active NM
 *                        connections from ipv6.method manual or dhcp to auto
 *   %post                (keep_ra) the same in the installed system's
 *                        NetworkManager keyfiles and ifcfg files
 *   %post --nochroot     POST phase=installed, last of all (the installed
 *                        system may lack curl; the installer has it)
 *   %onerror             POST phase=failed
 *
 * Progress posts use `curl -g` (the URL has an IPv6 literal in brackets,
 * which curl's globbing would otherwise take for a range), a form body
 * "phase=NAME", a timeout and retries, and never fail the install.
 *
 * keep_ra: NetworkManager processes router advertisements itself and ignores
 * them with ipv6.method manual (a static address) or dhcp, so a host whose
 * default route comes from its routers' RAs loses it once the static
 * configuration is applied. Method auto with the static address kept in
 * ipv6.addresses accepts RAs (default route) and keeps the address; with
 * the RA's M flag NM also runs DHCPv6, which the agent answers only while
 * the install is active. A gateway in the intent or rack avoids the need.
 *
 * A profile without a template gets only these sections (Anaconda then asks
 * interactively for the rest, and progress is still reported). */
#pragma once

#include <stddef.h>

#include "model/intent.h"
#include "render/context.h"

/* *ret: a new NUL-terminated kickstart (free() it), *ret_len (if not NULL)
 * its length. -EINVAL when a value fails validation (a hostname with a quote
 * or a newline, an install id or token outside render_id_valid(), ...);
 * -EBADMSG for a malformed template or an unknown placeholder (which profile
 * load should have refused); -E2BIG for a result over RBUF_MAX. */
int render_kickstart(const render_context *ctx, const intent *in, char **ret, size_t *ret_len);

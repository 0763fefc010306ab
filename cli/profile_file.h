/* `rackboot profiles import FILE` and `rackboot hosts import FILE --rack R`
 * for the agent's standalone hosts file (model/hostsfile.h): the same
 * parser the agent uses, so a site moves from a standalone agent to the
 * controller without rewriting anything, and a file either tool accepts the
 * other accepts too. This module converts the parsed sections to the wire
 * messages and checks what the wire is stricter about. */
#pragma once

#include "diag.h"
#include "rackboot.pb-c.h"

/* Appends every [profile NAME] of the file to `into`, each with its
 * kickstart template's content (read relative to the file) and sha256.
 * [host] sections are parsed and checked too (it is one file format) but
 * not imported. -EINVAL after problems (in `d`, "FILE:LINE: ..."), a read
 * error, -ENOMEM. */
int profile_file_read_profiles(const char *path, diag *d,
                               Rackboot__V1__ProfilesImportRequest *into);

/* Appends every [host NAME] of the file to `into`, in `rack`. Keys the
 * controller keeps elsewhere are not imported and noted in `notes` (may be
 * NULL): `install =` (installs are started with `rackboot install`), `dns`
 * and `search` (rack settings on the controller). */
int profile_file_read_hosts(const char *path, const char *rack, diag *d, diag *notes,
                            Rackboot__V1__HostsAddRequest *into);

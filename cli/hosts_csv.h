/* `rackboot hosts import FILE.csv`: hosts from a CSV inventory export.
 *
 *     name,mac,rack,address,prefix,gateway,hostname
 *     web17,52:54:00:12:34:56 52:54:00:12:34:57,r1,2001:db8:1::17,64,fe80::1,web17.example.com
 *
 * The first line is the header: name, mac, rack and address are required,
 * prefix (default 64), gateway and hostname (default: the controller's,
 * the name) optional, and the host's BMC: bmc, bmc_user, bmc_password_file
 * (read relative to the CSV file, model_bmc_password_read_file()) and
 * firmware; in any order, case-insensitive. A password column is refused:
 * a password never sits in an inventory. The mac column holds
 * one or more MACs separated by blanks. Fields follow RFC 4180 quoting
 * ("a ""b""", commas inside quotes) but may not span lines; blanks around
 * fields are trimmed; blank lines and lines starting with '#' are skipped;
 * CRLF line ends and a UTF-8 byte order mark (spreadsheet exports) are fine.
 *
 * Every problem is reported as "FILE:LINE: problem" and parsing goes on, so
 * one run lists them all: unknown or repeated columns, missing required
 * columns or cells, a row with the wrong number of fields, bad names,
 * addresses and MACs, a name or MAC used twice in the file. */
#pragma once

#include <stddef.h>

#include "diag.h"
#include "rackboot.pb-c.h"

#define HOSTS_CSV_MAX_FILE (64u << 20)

/* Parses `len` bytes of `text` (named `path` in messages) and appends the
 * hosts to `into`. `rack` (may be NULL) is the rack for rows without one
 * (no rack column, or an empty cell); a row naming another rack is an
 * error. -EINVAL after any problem (each in `d`), -ENOMEM; on failure
 * `into` may hold some hosts and is the caller's to free. */
int hosts_csv_parse(const char *path, const char *text, size_t len, const char *rack, diag *d,
                    Rackboot__V1__HostsAddRequest *into);

/* Reads the file at `path` (at most HOSTS_CSV_MAX_FILE) and parses it. */
int hosts_csv_read(const char *path, const char *rack, diag *d,
                   Rackboot__V1__HostsAddRequest *into);

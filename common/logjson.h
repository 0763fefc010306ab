/* logjson: `[log] format = json`, one JSON object per line:
 *
 *   {"ts":"2026-11-25T03:34:17.123Z","level":"info","ident":"rackboot-agent",
 *    "msg":"dhcp6 bound","mac":"52:54:00:12:34:56","addr":"2001:db8::10"}
 *
 * (on one line). The message's trailing key=value fields become members
 * (log_fields_split(), quoting undone), the free text before them is "msg";
 * every value is a string. A field named like one of the fixed members
 * (ts, level, ident, msg) is written as "_ts" etc. so it cannot hide them; of
 * a key given twice the later value wins. "ts" is left out under journald.
 * Part of rb_daemon, so only the daemons link jansson for it. */
#pragma once

#include "log.h"

/* The log_formatter_fn of the JSON format; NULL when out of memory. */
char *logjson_format(const log_record *rec);

/* Installs the formatter of `format` (log_set_formatter()). */
void logjson_apply(log_format format);

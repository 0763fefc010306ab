/* store_admin: what rackboot-controller does to its store besides serving
 * it: naming it from the configuration, deciding whether a start may open
 * it, and the one-shot commands --migrate and --import-store (issue 17).
 * Each command loads the configuration itself (its store settings only),
 * prints what it did on stdout, logs failures, and returns the process's
 * exit status. */
#pragma once

#include "config.h"

/* The store the configuration names, *ret_db: [store] url, or the SQLite
 * file in state_dir (which may be a path relative to the working
 * directory, so not always a sqlite:/// URL); *ret_shown as logs show it
 * (store_url_redacted: no password). Both malloc()ed; -ENOMEM (logged). */
int store_admin_name(const controller_config *cfg, char **ret_db, char **ret_shown);

/* Whether a normal start may open the store `db` (shown as `shown`),
 * migrating it as store_open() does: 0, or -EPROTO (logged) for a shared
 * store of an older schema, which needs --migrate first; the reasoning is
 * at the definition. */
int store_admin_start_check(const controller_config *cfg, const char *db, const char *shown);

/* --migrate: the store of the configuration at `config_path` brought to
 * this build's schema ("schema N → M" or "already at schema M"). */
int store_admin_migrate(const char *config_path);

/* --import-store FROM: a stopped controller's SQLite store (FROM,
 * sqlite:///PATH) copied into the configured PostgreSQL store, which gets
 * its schema first when empty (store/copy.h refuses a non-empty target and
 * another schema version); each table's count printed. */
int store_admin_import(const char *config_path, const char *from);

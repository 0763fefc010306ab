/* store_admin: see store_admin.h. */
#include "store_admin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "fileio.h"
#include "log.h"
#include "store.h"
#include "store/copy.h"
#include "util.h"

/* The store the configuration names, *ret_db: [store] url, or the SQLite
 * file in state_dir (which may be a path relative to the working
 * directory, so not always a sqlite:/// URL); *ret_shown as logs show it
 * (store_url_redacted: no password). */
int store_admin_name(const controller_config *cfg, char **ret_db, char **ret_shown)
{
    _cleanup_free_ char *db = NULL;
    if (cfg->store_url) {
        db = strdup(cfg->store_url);
    } else if (asprintf(&db, "%s/fleet.db", cfg->state_dir) < 0) {
        db = NULL;
    }
    char *shown = db ? store_url_redacted(db) : NULL;
    if (!shown) {
        log_error("out of memory");
        return -ENOMEM;
    }
    *ret_db = TAKE_PTR(db);
    *ret_shown = shown;
    return 0;
}

static int store_peek(const controller_config *cfg, const char *db, int *ret_version,
                      char **ret_error)
{
    return cfg->store_url ? store_peek_version_url(db, ret_version, ret_error)
                          : store_peek_version(db, ret_version, ret_error);
}

/* Whether a normal start may open the store, migrating it as store_open()
 * does. A SQLite store is one controller's file: nothing else runs on its
 * old schema, so a start migrates it, as it always did. A shared store
 * (PostgreSQL) is migrated by a start only while empty (a new deployment,
 * the lab, the tests): once controllers run on it, an upgrade is rolling,
 * and a new controller that migrated at start would change the schema
 * under the old ones still serving. Then the operator runs --migrate, once,
 * when the fleet is ready for it, and starts the new controllers after. */
int store_admin_start_check(const controller_config *cfg, const char *db, const char *shown)
{
    if (!store_url_is_shared(db)) {
        return 0;
    }
    _cleanup_free_ char *error = NULL;
    int version = 0;
    int r = store_peek(cfg, db, &version, &error);
    if (r < 0) {
        log_error("cannot open the store %s: %s", shown, error ? error : errstr(r));
        return r;
    }
    if (version > 0 && version < STORE_SCHEMA_VERSION) {
        log_error("the store %s has schema version %d, this controller needs %d: run "
                  "rackboot-controller --migrate (once, for every controller sharing it)",
                  shown, version, STORE_SCHEMA_VERSION);
        return -EPROTO;
    }
    return 0; /* empty: migrated by store_open; newer: refused by it */
}

/* The configuration for --migrate and --import-store: only the store's
 * settings matter, so the PKI files are not checked (they may be readable
 * by the service user only). */
static int store_config_load(const char *path, controller_config **ret)
{
    diag *d = diag_new();
    if (!d) {
        return -ENOMEM;
    }
    int r = controller_config_load(path, d, ret);
    if (diag_count(d) > 0) {
        diag_print(d, stderr);
    }
    diag_free(d);
    return r;
}

/* --migrate: the configured store at this build's schema. */
int store_admin_migrate(const char *config_path)
{
    controller_config *cfg = NULL;
    _cleanup_free_ char *db = NULL, *shown = NULL, *error = NULL;
    store *st = NULL;
    int from = 0, to, r, status = 1;
    if (store_config_load(config_path, &cfg) < 0 || store_admin_name(cfg, &db, &shown) < 0) {
        goto out;
    }
    r = cfg->store_url ? 0 : fileio_mkdir_p(cfg->state_dir, 0700);
    if (r < 0) {
        log_error("cannot create state_dir %s: %s", cfg->state_dir, errstr(r));
        goto out;
    }
    r = store_peek(cfg, db, &from, &error);
    if (r >= 0) {
        r = cfg->store_url ? store_open_url(db, &st, &error) : store_open(db, &st, &error);
    }
    if (r < 0) {
        log_error("cannot migrate the store %s: %s", shown, error ? error : errstr(r));
        goto out;
    }
    to = store_schema_version(st);
    if (to < 0) {
        log_error("cannot migrate the store %s: %s", shown, store_errmsg(st));
        goto out;
    }
    if (from == to) {
        printf("store %s: already at schema %d\n", shown, to);
    } else {
        printf("store %s: schema %d → %d\n", shown, from, to);
    }
    status = 0;
out:
    store_close(st);
    controller_config_free(cfg);
    return status;
}

static int print_copied(const char *table, uint64_t rows, void *userdata)
{
    (void)userdata;
    printf("  %-16s %" PRIu64 " rows\n", table, rows);
    return 0;
}

/* --import-store URL: a stopped controller's SQLite store into the
 * configured PostgreSQL one, which gets its schema first when empty
 * (store/copy.h does the rest and refuses what it must). */
int store_admin_import(const char *config_path, const char *from)
{
    controller_config *cfg = NULL;
    _cleanup_free_ char *db = NULL, *shown = NULL, *from_shown = NULL, *error = NULL;
    store *st = NULL;
    int r, status = 1;
    if (store_config_load(config_path, &cfg) < 0 || store_admin_name(cfg, &db, &shown) < 0) {
        goto out;
    }
    if (!store_url_is_shared(db)) {
        log_error("--import-store: the configured store %s is not PostgreSQL ([store] url = "
                  "postgresql://...)",
                  shown);
        goto out;
    }
    if (!(from_shown = store_url_redacted(from))) {
        goto out;
    }
    /* an empty database gets this build's schema; an older one is the
     * operator's to --migrate (it is not empty then, and will be refused) */
    r = store_admin_start_check(cfg, db, shown);
    if (r < 0) {
        goto out;
    }
    r = store_open_url(db, &st, &error);
    st = store_close(st);
    if (r < 0) {
        log_error("cannot open the store %s: %s", shown, error ? error : errstr(r));
        goto out;
    }
    printf("store %s: importing %s\n", shown, from_shown);
    r = store_copy(from, db, print_copied, NULL, &error);
    if (r < 0) {
        log_error("cannot import %s into %s: %s", from_shown, shown, error ? error : errstr(r));
        goto out;
    }
    printf("store %s: imported, start the controllers on it\n", shown);
    status = 0;
out:
    controller_config_free(cfg);
    return status;
}

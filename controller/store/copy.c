/* store/copy: a SQLite store into a PostgreSQL one (store/copy.h).
 *
 * Generic over the schema: the tables and columns are read from both
 * catalogs (sqlite_master and pragma_table_info; information_schema) and
 * must be the same sets, so a migration that adds a table or a column is
 * copied without touching this file, and one that makes the two backends
 * differ fails here loudly instead of losing a column.
 *
 * Values go by the PostgreSQL column's type, each checked against the
 * storage class SQLite holds: integers of every width as text, TEXT as
 * text, BYTEA as a binary parameter, BOOLEAN from SQLite's 0/1 (the
 * PostgreSQL schema uses BOOLEAN where SQLite keeps INTEGER 0/1:
 * profiles.overlay, keep_ra, any_source; audit.ok; power_commands.efi).
 *
 * The target's foreign keys are not deferrable, so tables go in an order
 * where every table comes after those it references (read from
 * pg_constraint). The identity columns were written explicitly (GENERATED
 * BY DEFAULT allows it), which does not move their sequences: setval puts
 * each past its table's highest id, or the first insert after the copy
 * would collide with a copied row.
 *
 * Cleanup style: __attribute__((cleanup)) throughout. */
#include "store/copy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store.h"
#include "store/backend.h"
#include "util.h"

/* Our own schema has a dozen tables of at most ~20 columns: the caps only
 * keep the arrays fixed. */
#define TABLES_MAX  64
#define COLUMNS_MAX 64

typedef enum col_type {
    COL_INTEGER = 1, /* bigint, integer, smallint */
    COL_TEXT,
    COL_BYTEA,
    COL_BOOLEAN,
} col_type;

typedef struct column {
    char *name;
    col_type type;
    bool identity;
} column;

typedef struct table {
    char *name;
    column cols[COLUMNS_MAX];
    size_t n_cols;
    bool in_source;
    bool copied;
    uint64_t rows;
} table;

typedef struct copy {
    sqlite3 *src;
    PGconn *dst;
    table tables[TABLES_MAX];
    size_t n_tables;
    size_t order[TABLES_MAX]; /* indexes into tables, in copy order */
    char err[512];
} copy;

static int fail(copy *c, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(copy *c, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    /* libpq's messages end in a newline, sometimes two lines */
    for (char *p = c->err; *p; p++) {
        if (*p == '\n') {
            *p = p[1] ? ' ' : '\0';
        }
    }
    return r;
}

static void stmtp_finalize(sqlite3_stmt **st)
{
    sqlite3_finalize(*st);
}
#define _cleanup_stmt_ _cleanup_(stmtp_finalize)

static void resultp_clear(PGresult **res)
{
    PQclear(*res);
}
#define _cleanup_result_ _cleanup_(resultp_clear)

static void pqfreep(char **p)
{
    PQfreemem(*p);
}
#define _cleanup_pqfree_ _cleanup_(pqfreep)

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* ---- The two connections ----------------------------------------------- */

/* The server's one-line reason for a failed result, else libpq's. */
static const char *why(const copy *c, const PGresult *res)
{
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    return msg ? msg : PQerrorMessage(c->dst);
}

static int src_fail(copy *c, const char *what)
{
    return fail(c, -EIO, "source store: %s: %s", what, sqlite3_errmsg(c->src));
}

static int src_int(copy *c, const char *sql, int *ret)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->src, sql, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        return src_fail(c, sql);
    }
    *ret = sqlite3_column_int(st, 0);
    return 0;
}

/* The file read-only, under its lock (store/sqlite.c's "<path>.lock"): a
 * controller running on it would change it under the copy. */
static int src_open(copy *c, const char *path, int *ret_lock_fd, int *ret_version)
{
    _cleanup_free_ char *lock_path = NULL;
    if (asprintf(&lock_path, "%s.lock", path) < 0) {
        return -ENOMEM;
    }
    int fd = open(lock_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno != ENOENT) {
        int r = negative_errno();
        return fail(c, r, "%s: %s", lock_path, strerror(-r));
    }
    *ret_lock_fd = fd;
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int r = negative_errno();
        if (r == -EWOULDBLOCK) {
            return fail(c, -EBUSY, "%s is in use by a running controller: stop it first", path);
        }
        return fail(c, r, "%s: %s", lock_path, strerror(-r));
    }
    if (access(path, F_OK) < 0) {
        int r = negative_errno();
        return fail(c, r, "%s: %s", path, strerror(-r));
    }
    int rc = sqlite3_open_v2(path, &c->src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        return fail(c, -EIO, "%s: %s", path, c->src ? sqlite3_errmsg(c->src) : sqlite3_errstr(rc));
    }
    int app_id;
    TRY(src_int(c, "PRAGMA application_id", &app_id));
    TRY(src_int(c, "PRAGMA user_version", ret_version));
    if (app_id != STORE_APPLICATION_ID || *ret_version <= 0) {
        return fail(c, -EPROTO, "%s is not a rackboot store", path);
    }
    /* one read transaction: every table from the same snapshot */
    if (sqlite3_exec(c->src, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        return src_fail(c, "BEGIN");
    }
    return 0;
}

/* A statement on the target expecting `want` (PGRES_COMMAND_OK or
 * PGRES_TUPLES_OK); the result for the caller to clear when ret. */
static int dst_exec(copy *c, const char *sql, ExecStatusType want, PGresult **ret)
{
    PGresult *res = PQexec(c->dst, sql);
    if (PQresultStatus(res) != want) {
        int r = fail(c, -EIO, "target store: %s", why(c, res));
        PQclear(res);
        return r;
    }
    if (ret) {
        *ret = res;
    } else {
        PQclear(res);
    }
    return 0;
}

static int dst_open(copy *c, const char *url, int *ret_version)
{
    c->dst = PQconnectdb(url);
    if (!c->dst) {
        return -ENOMEM;
    }
    if (PQstatus(c->dst) != CONNECTION_OK) {
        return fail(c, -EIO, "target store: %s", PQerrorMessage(c->dst));
    }
    PQsetNoticeProcessor(c->dst, quiet, NULL);
    TRY(dst_exec(c,
                 "SET client_min_messages = 'warning'; BEGIN; "
                 /* the store's writer lock: a controller started on the
                  * target meanwhile waits, never writes into a half-copied
                  * fleet */
                 "SELECT pg_advisory_xact_lock(" STORE_WRITER_LOCK ")",
                 PGRES_TUPLES_OK, NULL));
    _cleanup_result_ PGresult *has = NULL;
    TRY(dst_exec(c, "SELECT to_regclass('rackboot_schema') IS NOT NULL", PGRES_TUPLES_OK, &has));
    *ret_version = 0;
    if (strcmp(PQgetvalue(has, 0, 0), "t") == 0) {
        _cleanup_result_ PGresult *v = NULL;
        TRY(dst_exec(c, "SELECT version FROM rackboot_schema", PGRES_TUPLES_OK, &v));
        *ret_version = PQntuples(v) == 1 ? atoi(PQgetvalue(v, 0, 0)) : 0;
    }
    return 0;
}

/* ---- The schemas ------------------------------------------------------- */

static table *table_find(copy *c, const char *name)
{
    for (size_t i = 0; i < c->n_tables; i++) {
        if (strcmp(c->tables[i].name, name) == 0) {
            return &c->tables[i];
        }
    }
    return NULL;
}

static int type_of(copy *c, const char *tbl, const char *col, const char *pg_type, col_type *ret)
{
    static const struct {
        const char *name;
        col_type type;
    } types[] = {
        { "bigint", COL_INTEGER }, { "integer", COL_INTEGER }, { "smallint", COL_INTEGER },
        { "text", COL_TEXT },      { "bytea", COL_BYTEA },     { "boolean", COL_BOOLEAN },
    };
    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        if (strcmp(pg_type, types[i].name) == 0) {
            *ret = types[i].type;
            return 0;
        }
    }
    return fail(c, -EPROTO, "column %s.%s has type %s, which this copy does not know", tbl, col,
                pg_type);
}

/* The target's tables and columns, by information_schema. */
static int dst_schema(copy *c)
{
    _cleanup_result_ PGresult *res = NULL;
    TRY(dst_exec(c,
                 "SELECT c.table_name, c.column_name, c.data_type, c.is_identity "
                 "FROM information_schema.columns c JOIN information_schema.tables t "
                 "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
                 "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
                 "AND c.table_name <> 'rackboot_schema' "
                 "ORDER BY c.table_name, c.ordinal_position",
                 PGRES_TUPLES_OK, &res));
    for (int i = 0; i < PQntuples(res); i++) {
        const char *name = PQgetvalue(res, i, 0);
        table *t = table_find(c, name);
        if (!t) {
            if (c->n_tables == TABLES_MAX) {
                return fail(c, -E2BIG, "target store: more than %d tables", TABLES_MAX);
            }
            t = &c->tables[c->n_tables++];
            if (!(t->name = strdup(name))) {
                return -ENOMEM;
            }
        }
        if (t->n_cols == COLUMNS_MAX) {
            return fail(c, -E2BIG, "table %s: more than %d columns", name, COLUMNS_MAX);
        }
        column *col = &t->cols[t->n_cols++];
        if (!(col->name = strdup(PQgetvalue(res, i, 1)))) {
            return -ENOMEM;
        }
        TRY(type_of(c, name, col->name, PQgetvalue(res, i, 2), &col->type));
        col->identity = strcmp(PQgetvalue(res, i, 3), "YES") == 0;
    }
    return 0;
}

/* The source's columns of `t` must be the target's, no more, no fewer. */
static int src_columns_match(copy *c, table *t)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->src, "SELECT name FROM pragma_table_info(?1)", -1, &st, NULL) !=
        SQLITE_OK) {
        return src_fail(c, "table_info");
    }
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        bool found = false;
        for (size_t i = 0; i < t->n_cols && !found; i++) {
            found = strcmp(t->cols[i].name, name) == 0;
        }
        if (!found) {
            return fail(c, -EPROTO, "column %s.%s of the source is not in the target", t->name,
                        name);
        }
        n++;
    }
    if (rc != SQLITE_DONE) {
        return src_fail(c, "table_info");
    }
    if (n != t->n_cols) {
        return fail(c, -EPROTO, "table %s has %zu columns in the source, %zu in the target",
                    t->name, n, t->n_cols);
    }
    return 0;
}

/* The source's tables (SQLite's own sqlite_* left out) must be the
 * target's. */
static int schemas_match(copy *c)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->src,
                           "SELECT name FROM sqlite_master WHERE type = 'table' "
                           "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK) {
        return src_fail(c, "sqlite_master");
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        table *t = table_find(c, name);
        if (!t) {
            return fail(c, -EPROTO, "table %s of the source is not in the target", name);
        }
        t->in_source = true;
        TRY(src_columns_match(c, t));
    }
    if (rc != SQLITE_DONE) {
        return src_fail(c, "sqlite_master");
    }
    for (size_t i = 0; i < c->n_tables; i++) {
        if (!c->tables[i].in_source) {
            return fail(c, -EPROTO, "table %s of the target is not in the source",
                        c->tables[i].name);
        }
    }
    return 0;
}

/* Every table of the target is empty: a copy never merges two fleets (ids
 * would collide, names might). */
static int dst_empty(copy *c)
{
    for (size_t i = 0; i < c->n_tables; i++) {
        _cleanup_pqfree_ char *id =
            PQescapeIdentifier(c->dst, c->tables[i].name, strlen(c->tables[i].name));
        _cleanup_free_ char *sql = NULL;
        if (!id || asprintf(&sql, "SELECT EXISTS (SELECT 1 FROM %s)", id) < 0) {
            return -ENOMEM;
        }
        _cleanup_result_ PGresult *res = NULL;
        TRY(dst_exec(c, sql, PGRES_TUPLES_OK, &res));
        if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
            return fail(c, -EEXIST,
                        "the target store is not empty (table %s has rows): import into a new "
                        "database",
                        c->tables[i].name);
        }
    }
    return 0;
}

/* c->order: each table after every table it references. */
static int copy_order(copy *c)
{
    _cleanup_result_ PGresult *fk = NULL;
    TRY(dst_exec(c,
                 "SELECT t.relname, f.relname FROM pg_constraint k "
                 "JOIN pg_class t ON t.oid = k.conrelid JOIN pg_class f ON f.oid = k.confrelid "
                 "WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace",
                 PGRES_TUPLES_OK, &fk));
    bool placed[TABLES_MAX] = { false };
    size_t n = 0;
    while (n < c->n_tables) {
        size_t before = n;
        for (size_t i = 0; i < c->n_tables; i++) {
            bool ready = !placed[i];
            for (int k = 0; ready && k < PQntuples(fk); k++) {
                if (strcmp(PQgetvalue(fk, k, 0), c->tables[i].name) != 0) {
                    continue;
                }
                const char *ref = PQgetvalue(fk, k, 1);
                if (strcmp(ref, c->tables[i].name) == 0) {
                    /* rows would need ordering among themselves */
                    return fail(c, -EPROTO, "table %s references itself", ref);
                }
                table *t = table_find(c, ref);
                ready = !t || placed[t - c->tables];
            }
            if (ready) {
                placed[i] = true;
                c->order[n++] = i;
            }
        }
        if (n == before) {
            return fail(c, -EPROTO, "the target's foreign keys form a cycle");
        }
    }
    return 0;
}

/* ---- The rows ---------------------------------------------------------- */

/* Column i of the source row as parameter i of the INSERT. */
static int row_param(copy *c, const table *t, sqlite3_stmt *st, int i, char num[24],
                     const char **ret_v, int *ret_len, int *ret_fmt)
{
    const column *col = &t->cols[i];
    int have = sqlite3_column_type(st, i);
    *ret_len = 0;
    *ret_fmt = 0;
    if (have == SQLITE_NULL) {
        *ret_v = NULL; /* the target's NOT NULL decides */
        return 0;
    }
    switch (col->type) {
    case COL_INTEGER:
        if (have == SQLITE_INTEGER) {
            snprintf(num, 24, "%lld", (long long)sqlite3_column_int64(st, i));
            *ret_v = num;
            return 0;
        }
        break;
    case COL_BOOLEAN:
        if (have == SQLITE_INTEGER && (uint64_t)sqlite3_column_int64(st, i) <= 1) {
            *ret_v = sqlite3_column_int64(st, i) ? "t" : "f";
            return 0;
        }
        break;
    case COL_TEXT:
        if (have == SQLITE_TEXT) {
            *ret_v = (const char *)sqlite3_column_text(st, i);
            return 0;
        }
        break;
    case COL_BYTEA:
        if (have == SQLITE_BLOB) {
            /* a zero-length blob's pointer is NULL: not SQL NULL */
            *ret_v = sqlite3_column_blob(st, i) ? sqlite3_column_blob(st, i) : "";
            *ret_len = sqlite3_column_bytes(st, i);
            *ret_fmt = 1;
            return 0;
        }
        break;
    }
    return fail(c, -EPROTO, "column %s.%s: a value of SQLite type %d where the target wants %s",
                t->name, col->name, have,
                col->type == COL_BOOLEAN ? "0 or 1" : "the matching type");
}

/* "a", "b", ... and $1, $2, ... */
static int insert_sql(copy *c, const table *t, char **ret_select, char **ret_insert)
{
    size_t cap = 64;
    for (size_t i = 0; i < t->n_cols; i++) {
        cap += 2 * strlen(t->cols[i].name) + 24;
    }
    _cleanup_free_ char *cols = calloc(1, cap), *params = calloc(1, cap);
    if (!cols || !params) {
        return -ENOMEM;
    }
    size_t cl = 0, pl = 0;
    for (size_t i = 0; i < t->n_cols; i++) {
        _cleanup_pqfree_ char *id =
            PQescapeIdentifier(c->dst, t->cols[i].name, strlen(t->cols[i].name));
        if (!id) {
            return -ENOMEM;
        }
        cl += (size_t)snprintf(cols + cl, cap - cl, "%s%s", i ? ", " : "", id);
        pl += (size_t)snprintf(params + pl, cap - pl, "%s$%zu", i ? ", " : "", i + 1);
    }
    _cleanup_pqfree_ char *tbl = PQescapeIdentifier(c->dst, t->name, strlen(t->name));
    /* PostgreSQL's quoting of an identifier is SQLite's too */
    if (!tbl || asprintf(ret_select, "SELECT %s FROM %s", cols, tbl) < 0) {
        return -ENOMEM;
    }
    if (asprintf(ret_insert, "INSERT INTO %s (%s) VALUES (%s)", tbl, cols, params) < 0) {
        free(*ret_select);
        return -ENOMEM;
    }
    return 0;
}

/* Rows sent before their results are read (libpq's pipeline mode): one
 * round trip per batch, not per row, which is what makes a copy of a
 * million events over a network take seconds rather than many minutes.
 * Each result is ~20 bytes, so a batch's results fit in the socket's
 * buffers and a blocking connection cannot deadlock on them. */
#define PIPELINE_ROWS 512u

/* Ends a batch of n rows: their results, the first failure kept (the
 * rows after it answer PIPELINE_ABORTED), then the sync's. */
static int pipeline_sync(copy *c, const table *t, size_t n)
{
    if (!PQpipelineSync(c->dst)) {
        return fail(c, -EIO, "target store: %s: %s", t->name, PQerrorMessage(c->dst));
    }
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        PGresult *res = PQgetResult(c->dst);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && r == 0) {
            r = fail(c, -EIO, "target store: %s: %s", t->name, why(c, res));
        }
        PQclear(res);
        PQclear(PQgetResult(c->dst)); /* the NULL that ends each query's results */
    }
    _cleanup_result_ PGresult *sync = PQgetResult(c->dst);
    if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC && r == 0) {
        r = fail(c, -EIO, "target store: %s: %s", t->name, PQerrorMessage(c->dst));
    }
    return r;
}

/* The rows of `t`, SELECTed from the source, INSERTed into the target
 * in pipelined batches. */
static int copy_rows(copy *c, table *t, sqlite3_stmt *st)
{
    const char *v[COLUMNS_MAX];
    int len[COLUMNS_MAX], fmt[COLUMNS_MAX];
    char num[COLUMNS_MAX][24];
    size_t pending = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (size_t i = 0; i < t->n_cols; i++) {
            TRY(row_param(c, t, st, (int)i, num[i], &v[i], &len[i], &fmt[i]));
        }
        /* libpq copies the values into its buffer: v may change after */
        if (!PQsendQueryPrepared(c->dst, "", (int)t->n_cols, v, len, fmt, 0)) {
            return fail(c, -EIO, "target store: %s: %s", t->name, PQerrorMessage(c->dst));
        }
        t->rows++;
        if (++pending == PIPELINE_ROWS) {
            TRY(pipeline_sync(c, t, pending));
            pending = 0;
        }
    }
    if (rc != SQLITE_DONE) {
        return src_fail(c, t->name);
    }
    return pending ? pipeline_sync(c, t, pending) : 0;
}

static int copy_table(copy *c, table *t)
{
    _cleanup_free_ char *select = NULL, *insert = NULL;
    TRY(insert_sql(c, t, &select, &insert));
    _cleanup_result_ PGresult *prep = PQprepare(c->dst, "", insert, (int)t->n_cols, NULL);
    if (PQresultStatus(prep) != PGRES_COMMAND_OK) {
        return fail(c, -EIO, "target store: %s: %s", t->name, why(c, prep));
    }
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->src, select, -1, &st, NULL) != SQLITE_OK) {
        return src_fail(c, t->name);
    }
    if (!PQenterPipelineMode(c->dst)) {
        return fail(c, -EIO, "target store: %s: %s", t->name, PQerrorMessage(c->dst));
    }
    TRY(copy_rows(c, t, st));
    /* PQexec (setval, the next table's PQprepare) is not allowed in a
     * pipeline */
    if (!PQexitPipelineMode(c->dst)) {
        return fail(c, -EIO, "target store: %s: %s", t->name, PQerrorMessage(c->dst));
    }
    return 0;
}

/* Each identity column's sequence past its table's highest id. */
static int sequences_reset(copy *c, const table *t)
{
    for (size_t i = 0; i < t->n_cols; i++) {
        if (!t->cols[i].identity) {
            continue;
        }
        _cleanup_pqfree_ char *tbl = PQescapeIdentifier(c->dst, t->name, strlen(t->name));
        _cleanup_pqfree_ char *col =
            PQescapeIdentifier(c->dst, t->cols[i].name, strlen(t->cols[i].name));
        _cleanup_pqfree_ char *tbl_lit = tbl ? PQescapeLiteral(c->dst, tbl, strlen(tbl)) : NULL;
        _cleanup_pqfree_ char *col_lit =
            PQescapeLiteral(c->dst, t->cols[i].name, strlen(t->cols[i].name));
        _cleanup_free_ char *sql = NULL;
        /* is_called false: the next id is max + 1 (1 for an empty table) */
        if (!col || !tbl_lit || !col_lit ||
            asprintf(&sql,
                     "SELECT setval(pg_get_serial_sequence(%s, %s), coalesce(max(%s), 0) + 1, "
                     "false) FROM %s",
                     tbl_lit, col_lit, col, tbl) < 0) {
            return -ENOMEM;
        }
        TRY(dst_exec(c, sql, PGRES_TUPLES_OK, NULL));
    }
    return 0;
}

static int copy_all(copy *c, const char *from_path, const char *to_url, int *ret_lock_fd)
{
    int from_version = 0, to_version = 0;
    TRY(src_open(c, from_path, ret_lock_fd, &from_version));
    TRY(dst_open(c, to_url, &to_version));
    if (to_version == 0) {
        return fail(c, -EPROTO,
                    "the target store has no schema yet: run rackboot-controller --migrate on it "
                    "first");
    }
    if (from_version < to_version) {
        return fail(c, -EPROTO,
                    "the source store's schema is version %d, the target's %d: bring the source "
                    "to %d first (run this rackboot-controller once, or --migrate, with a "
                    "configuration naming the SQLite store)",
                    from_version, to_version, to_version);
    }
    if (from_version > to_version) {
        return fail(c, -EPROTO,
                    "the source store's schema is version %d, the target's %d: run a "
                    "rackboot-controller of the source's version (--migrate) on the target",
                    from_version, to_version);
    }
    TRY(dst_schema(c));
    TRY(schemas_match(c));
    TRY(dst_empty(c));
    TRY(copy_order(c));
    for (size_t i = 0; i < c->n_tables; i++) {
        table *t = &c->tables[c->order[i]];
        TRY(copy_table(c, t));
        TRY(sequences_reset(c, t));
    }
    return dst_exec(c, "COMMIT", PGRES_COMMAND_OK, NULL);
}

int store_copy(const char *from_url, const char *to_url, store_copy_cb cb, void *userdata,
               char **ret_errmsg)
{
    const char *why = NULL;
    copy *c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    int lock_fd = -1;
    int r;
    if (store_url_check(from_url, &why) < 0 || store_url_check(to_url, &why) < 0) {
        r = fail(c, -EINVAL, "%s", why);
    } else if (strncmp(from_url, "sqlite://", 9) != 0 || !store_url_is_shared(to_url)) {
        r = fail(c, -EPROTONOSUPPORT,
                 "a store is copied from sqlite:///PATH into postgresql://...");
    } else {
        r = copy_all(c, from_url + strlen("sqlite://"), to_url, &lock_fd);
    }
    /* the source's lock is held until the target has committed */
    PQfinish(c->dst); /* an open transaction is rolled back */
    sqlite3_close(c->src);
    if (lock_fd >= 0) {
        close(lock_fd);
    }
    for (size_t i = 0; r >= 0 && cb && i < c->n_tables; i++) {
        const table *t = &c->tables[c->order[i]];
        r = cb(t->name, t->rows, userdata);
    }
    if (r < 0 && ret_errmsg) {
        *ret_errmsg = strdup(c->err[0] ? c->err : strerror(-r));
    }
    for (size_t i = 0; i < c->n_tables; i++) {
        free(c->tables[i].name);
        for (size_t j = 0; j < c->tables[i].n_cols; j++) {
            free(c->tables[i].cols[j].name);
        }
    }
    free(c);
    return r < 0 ? r : 0;
}

/* controller/store: schema and migrations, constraints, the install
 * lifecycle through acks and events, de-duplication, rack checks, gaps,
 * timeouts, cancel, crash consistency, and a timed ingest.
 *
 *   test_store [BACKEND]     (or RACKBOOT_TEST_STORE_BACKEND=BACKEND)
 *
 * runs the suite against one store backend by name (default "sqlite";
 * `test_store list` names them; "postgresql" needs a server:
 * tests/integration/store_postgresql.sh starts one). The behaviour tests run
 * on every backend: they open the store by its [store] url and look under
 * it only through the backend's hooks below (one integer from a SQL query
 * on the store's tables, the engine's own consistency check). Tests of the
 * SQLite file itself (schema versions and migrations, constraints, file
 * modes, the lock, a crash mid-write) run only with "sqlite". A new
 * backend adds one entry to `backends`. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "diag.h"
#include "model/hostsfile.h"
#include "model_pb.h"
#include "rbproto.h"
#include "sha256.h"
#include "store-internal.h"
#include "store.h"
#include "store/backend.h"
#include "store/copy.h"
#include "store/queue.h"
#include "util.h"

#define P(x) RACKBOOT__V1__PHASE__PHASE_##x

typedef struct fixture {
    char dir[64];
    char path[96]; /* sqlite: the database file */
    char url[512]; /* what [store] url would say */
    char db[32];   /* postgresql: the test's database */
    store *s;
} fixture;

/* A store backend as the suite sees it. */
typedef struct test_backend {
    const char *name;
    /* Makes a fresh, empty store for one test: fills f->url (and what else
     * the backend's hooks need). */
    void (*create)(fixture *f);
    /* Removes what create() made (the store is closed). */
    void (*destroy)(fixture *f);
    /* One integer from a SQL query on the store's tables, read beside the
     * open store (white-box checks of what the API does not show). */
    int64_t (*peek_int)(const fixture *f, const char *sql);
    /* The engine's own consistency check (after batches and crashes). */
    void (*check)(const fixture *f);
} test_backend;

static const test_backend *backend; /* chosen in main() */

static int64_t peek_int(const fixture *f, const char *sql)
{
    return backend->peek_int(f, sql);
}

static void check_store(const fixture *f)
{
    backend->check(f);
}

/* Closes and reopens the fixture's store by its URL. */
static void reopen(fixture *f)
{
    f->s = store_close(f->s);
    char *err = NULL;
    int r = store_open_url(f->url, &f->s, &err);
    if (r != 0) {
        fail_msg("store_open_url %s: %d %s", f->url, r, err ? err : "");
    }
    free(err);
}

static const uint64_t T0 = 1700000000000ull;

/* A page of the hosts of these racks (store_page), no limit. */
#define RACKS(...)                                                                                 \
    (&(store_page){ .racks = (const char *const[]){ __VA_ARGS__ },                                 \
                    .n_racks = sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(const char *) })

/* ---- Helpers ----------------------------------------------------------- */

static store_host make_host(const char *name, const char *rack, unsigned n)
{
    store_host h;
    memset(&h, 0, sizeof(h));
    snprintf(h.name, sizeof(h.name), "%s", name);
    snprintf(h.rack, sizeof(h.rack), "%s", rack);
    h.n_macs = 1;
    const uint8_t mac[6] = { 0x52, 0x54, 0x00, (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
    memcpy(h.macs[0], mac, 6);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::", h.address), 1);
    h.address[13] = (uint8_t)(n >> 16);
    h.address[14] = (uint8_t)(n >> 8);
    h.address[15] = (uint8_t)n;
    h.prefix_length = 64;
    return h;
}

static void add_host(store *s, const char *name, const char *rack, unsigned n)
{
    store_host h = make_host(name, rack, n);
    int r = store_host_add(s, &h, false);
    if (r != 0) {
        fail_msg("host_add %s: %d %s", name, r, store_errmsg(s));
    }
}

static model_image images_el9[] = {
    { (char[]){ "vmlinuz" }, IMAGE_KERNEL, (char[]){ "http://mirror/el9/vmlinuz" }, { 1 }, 1000 },
    { (char[]){ "initrd.img" },
      IMAGE_INITRD,
      (char[]){ "http://mirror/el9/initrd.img" },
      { 2 },
      2000 },
    { (char[]){ "install.img" },
      IMAGE_STAGE2,
      (char[]){ "http://mirror/el9/install.img" },
      { 3 },
      3000 },
};

static void add_profile(store *s, const char *name)
{
    model_profile p = {
        .name = RB_UNCONST(name),
        .cmdline = (char[]){ "console=ttyS0" },
        .kickstart = (char[]){ "text\nurl --url={{stage2_url}}\n" },
        .overlay = true,
        .images = images_el9,
        .n_images = ARRAY_SIZE(images_el9),
    };
    int r = store_profile_import(s, &p, false);
    if (r != 0) {
        fail_msg("profile_import %s: %d %s", name, r, store_errmsg(s));
    }
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    backend->create(f);
    char *err = NULL;
    assert_int_equal(store_open_url(f->url, &f->s, &err), 0);
    assert_null(err);
    add_profile(f->s, "el9");
    add_host(f->s, "web1", "r1", 1);
    add_host(f->s, "web2", "r1", 2);
    add_host(f->s, "web3", "r1", 3);
    add_host(f->s, "db1", "r2", 101);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    f->s = store_close(f->s);
    backend->destroy(f);
    free(f);
    return 0;
}

static uint64_t generation(store *s, const char *rack)
{
    uint64_t g = 0;
    assert_int_equal(store_rack_get(s, rack, &g, NULL), 0);
    return g;
}

typedef struct status_out {
    char install_id[STORE_ID_LEN + 1];
    char message[256];
    install_state state;
    Rackboot__V1__Phase phase;
    uint32_t percent, attempt;
    uint64_t updated_ms;
} status_out;

static int status_cb(const store_status *st, void *userdata)
{
    status_out *o = userdata;
    snprintf(o->install_id, sizeof(o->install_id), "%s", st->install_id);
    snprintf(o->message, sizeof(o->message), "%s", st->message);
    o->state = st->state;
    o->phase = st->phase;
    o->percent = st->percent;
    o->attempt = st->attempt;
    o->updated_ms = st->updated_ms;
    return 0;
}

static status_out status(store *s, const char *host)
{
    status_out o;
    memset(&o, 0, sizeof(o));
    assert_int_equal(store_status_get(s, host, status_cb, &o), 0);
    return o;
}

typedef struct intents_out {
    size_t n;
    char hosts[16][64];
    char ids[16][STORE_ID_LEN + 1];
    const model_profile *profiles[16];
    size_t n_images;
    size_t n_macs;
    char token[64];
    uint32_t attempt;
} intents_out;

static int intents_cb(const store_intent *in, void *userdata)
{
    intents_out *o = userdata;
    assert_true(o->n < 16);
    snprintf(o->hosts[o->n], sizeof(o->hosts[0]), "%s", in->host->name);
    snprintf(o->ids[o->n], sizeof(o->ids[0]), "%s", in->install_id);
    o->profiles[o->n] = in->profile;
    o->n_images = in->profile->n_images;
    o->n_macs = in->host->n_macs;
    snprintf(o->token, sizeof(o->token), "%s", in->token);
    o->attempt = in->attempt;
    o->n++;
    return 0;
}

static intents_out intents(store *s, const char *rack, uint64_t *gen)
{
    intents_out o;
    memset(&o, 0, sizeof(o));
    assert_int_equal(store_rack_intents(s, rack, gen, intents_cb, &o), 0);
    return o;
}

static store_event ev(uint64_t seq, const char *id, const char *host, Rackboot__V1__Phase phase)
{
    return (store_event){
        .seq = seq,
        .time_ms = T0 + seq,
        .install_id = id,
        .host = host,
        .phase = phase,
        .message = "",
    };
}

static int count_cb(const store_event_row *e, void *userdata)
{
    (*(int *)userdata)++;
    return 0;
}

static int host_events(store *s, const char *host)
{
    int n = 0;
    assert_true(store_events_list(s, host, 0, 0, count_cb, &n) >= 0);
    return n;
}

static int64_t query_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static int exec_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static void assert_integrity(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE); /* no violations */
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* ---- Backends ---------------------------------------------------------- */

static void sqlite_create(fixture *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/fleet.db", f->dir);
    snprintf(f->url, sizeof(f->url), "sqlite://%s", f->path);
}

static void sqlite_destroy(fixture *f)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
}

static int64_t sqlite_peek_int(const fixture *f, const char *sql)
{
    return query_int(f->path, sql);
}

static void sqlite_check(const fixture *f)
{
    assert_integrity(f->path);
}

/* PostgreSQL: RACKBOOT_TEST_PG_URL names a server's maintenance database
 * (tests/integration/store_postgresql.sh starts a throwaway server and
 * sets it); each test gets a database of its own, made and dropped here. */
static const char *pg_base_url(void)
{
    const char *u = getenv("RACKBOOT_TEST_PG_URL");
    if (!u || !*u) {
        fail_msg("RACKBOOT_TEST_PG_URL is not set: run tests/integration/store_postgresql.sh");
    }
    return u;
}

/* The base URL with its database replaced by `db`. */
static void pg_url_of(const char *db, char *out, size_t len)
{
    const char *base = pg_base_url();
    const char *auth = strstr(base, "://");
    assert_non_null(auth);
    auth += 3;
    const char *path = auth + strcspn(auth, "/?");
    const char *query = strchr(path, '?');
    int n = snprintf(out, len, "%.*s/%s%s", (int)(path - base), base, db, query ? query : "");
    assert_true(n > 0 && (size_t)n < len);
}

static PGconn *pg_conn(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fail_msg("%s: %s", url, PQerrorMessage(c));
    }
    return c;
}

/* One statement on a connection of its own: its one value, or 0 when it
 * returns no rows. */
static int64_t pg_query(const char *url, const char *sql)
{
    PGconn *c = pg_conn(url);
    PGresult *res = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    }
    int64_t v =
        st == PGRES_TUPLES_OK && PQntuples(res) > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    PQfinish(c);
    return v;
}

static void pg_create(fixture *f)
{
    static unsigned n;
    char sql[96];
    snprintf(f->db, sizeof(f->db), "t_%d_%u", (int)getpid(), ++n);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->db);
    pg_query(pg_base_url(), sql);
    pg_url_of(f->db, f->url, sizeof(f->url));
}

static void pg_destroy(fixture *f)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", f->db);
    pg_query(pg_base_url(), sql);
}

static int64_t pg_peek_int(const fixture *f, const char *sql)
{
    return pg_query(f->url, sql);
}

/* PostgreSQL checks every constraint as it writes; what a failure could
 * leave behind is a connection still in a transaction, which would hold
 * the store's writer lock against every other controller. */
static void pg_check(const fixture *f)
{
    assert_int_equal(pg_query(f->url, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                      "current_database() AND state LIKE 'idle in transaction%'"),
                     0);
}

static const test_backend backends[] = {
    { "sqlite", sqlite_create, sqlite_destroy, sqlite_peek_int, sqlite_check },
    { "postgresql", pg_create, pg_destroy, pg_peek_int, pg_check },
};

/* ---- Schema ------------------------------------------------------------ */

static void test_migrate_and_reopen(void **state)
{
    fixture *f = *state;
    assert_int_equal(store_schema_version(f->s), STORE_SCHEMA_VERSION);
    assert_int_equal(query_int(f->path, "PRAGMA application_id"), 0x52425354);
    assert_string_equal(store_errmsg(f->s), "");
    char id[STORE_ID_LEN + 1];
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), 0);
    f->s = store_close(f->s);

    /* WAL mode is persistent in the file */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);

    assert_int_equal(store_open(f->path, &f->s, NULL), 0);
    store_host h;
    assert_int_equal(store_host_get(f->s, "db1", &h), 0);
    assert_string_equal(h.rack, "r2");
    assert_string_equal(h.hostname, "db1"); /* defaults to the name */
    status_out o = status(f->s, "web1");
    assert_string_equal(o.install_id, id);
    assert_int_equal(o.state, INSTALL_REQUESTED);
    assert_integrity(f->path);
}

static void test_newer_schema_refused(void **state)
{
    fixture *f = *state;
    f->s = store_close(f->s);
    assert_int_equal(exec_sql(f->path, "PRAGMA user_version = 99"), SQLITE_OK);
    char *err = NULL;
    store *s = NULL;
    assert_int_equal(store_open(f->path, &s, &err), -EPROTO);
    assert_null(s);
    assert_non_null(err);
    assert_non_null(strstr(err, "99"));
    assert_non_null(strstr(err, "newer"));
    free(err);
    /* the file was not touched */
    assert_int_equal(query_int(f->path, "PRAGMA user_version"), 99);
    char back[64];
    snprintf(back, sizeof(back), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
    assert_int_equal(exec_sql(f->path, back), SQLITE_OK);
    assert_int_equal(store_open(f->path, &f->s, NULL), 0);
}

static void test_foreign_file_refused(void **state)
{
    fixture *f = *state;
    char path[128];
    /* another application's database */
    snprintf(path, sizeof(path), "%s/other.db", f->dir);
    assert_int_equal(exec_sql(path, "PRAGMA application_id = 7; CREATE TABLE t (x)"), SQLITE_OK);
    store *s = NULL;
    char *err = NULL;
    assert_int_equal(store_open(path, &s, &err), -EPROTO);
    assert_non_null(strstr(err, "not a rackboot store"));
    free(err);
    /* not a database at all */
    snprintf(path, sizeof(path), "%s/garbage.db", f->dir);
    FILE *fp = fopen(path, "we");
    assert_non_null(fp);
    for (int i = 0; i < 64; i++) {
        fputs("this is not an SQLite database file. ", fp);
    }
    fclose(fp);
    assert_int_equal(store_open(path, &s, NULL), -EPROTO);
    assert_null(s);
}

/* [store] url: sqlite:///PATH opens that file (the one setup() made: its
 * hosts are there); unknown schemes and malformed URLs are refused before
 * anything is created, with a reason for the configuration's diagnostics. */
static void test_open_url(void **state)
{
    fixture *f = *state;
    f->s = store_close(f->s);
    char url[128];
    snprintf(url, sizeof(url), "sqlite://%s", f->path);
    char *err = NULL;
    assert_int_equal(store_open_url(url, &f->s, &err), 0);
    assert_null(err);
    store_host h;
    assert_int_equal(store_host_get(f->s, "web1", &h), 0);

    const char *why = NULL;
    assert_int_equal(store_url_check(url, &why), 0);
    assert_int_equal(store_url_check("mysql://db/fleet", &why), -EPROTONOSUPPORT);
    assert_non_null(strstr(why, "unknown store backend"));
    /* PostgreSQL URLs are libpq's, checked without connecting */
    assert_int_equal(store_url_check("postgresql://db/fleet", &why), 0);
    assert_int_equal(store_url_check("postgres://u@db:5432/fleet?sslmode=verify-full", &why), 0);
    assert_int_equal(store_url_check("postgresql://db/fleet?nosuchoption=1", &why), -EINVAL);
    assert_non_null(strstr(why, "nosuchoption"));
    assert_null(strchr(why, '\n'));
    /* what logs show of a URL: never its password */
    const char *const shown[][2] = {
        { "postgresql://rb:s3cret@db:5432/fleet?sslmode=verify-full",
          "postgresql://rb:***@db:5432/fleet?sslmode=verify-full" },
        { "postgres://db/fleet?user=rb&password=s3cret&sslmode=require",
          "postgres://db/fleet?user=rb&password=***&sslmode=require" },
        { "postgresql://rb@db/fleet", "postgresql://rb@db/fleet" },
        { "postgresql://a:b@c:d@db/f?password=", "postgresql://a:***@db/f?password=***" },
        { "sqlite:///var/lib/rackboot/fleet.db", "sqlite:///var/lib/rackboot/fleet.db" },
        { "state/fleet.db?password=x", "state/fleet.db?password=x" },
    };
    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
        char *r = store_url_redacted(shown[i][0]);
        assert_non_null(r);
        assert_string_equal(r, shown[i][1]);
        free(r);
    }
    assert_int_equal(store_url_check("sqlite://relative.db", &why), -EINVAL);
    assert_int_equal(store_url_check("sqlite:///", &why), -EINVAL);
    assert_int_equal(store_url_check("/var/lib/fleet.db", &why), -EINVAL);
    assert_int_equal(store_url_check("", &why), -EINVAL);
    store *s = NULL;
    assert_int_equal(store_open_url("mysql://db/fleet", &s, &err), -EPROTONOSUPPORT);
    assert_null(s);
    assert_non_null(err);
    assert_non_null(strstr(err, "unknown store backend"));
    free(err);
}

static void test_one_writer(void **state)
{
    fixture *f = *state;
    store *s = NULL;
    char *err = NULL;
    assert_int_equal(store_open(f->path, &s, &err), -EBUSY);
    assert_non_null(strstr(err, "in use"));
    free(err);
    assert_null(s);
}

/* ---- Hosts and constraints --------------------------------------------- */

static int host_count_cb(const store_host *h, void *userdata)
{
    (*(int *)userdata)++;
    return 0;
}

static void test_host_constraints(void **state)
{
    fixture *f = *state;
    /* duplicate MAC: names the owner */
    store_host h = make_host("web9", "r1", 9);
    memcpy(h.macs[0], make_host("x", "r1", 2).macs[0], 6);
    assert_int_equal(store_host_add(f->s, &h, false), -EEXIST);
    assert_non_null(strstr(store_errmsg(f->s), "52:54:00:00:00:02"));
    assert_non_null(strstr(store_errmsg(f->s), "web2"));
    /* duplicate address: names the owner */
    h = make_host("web9", "r1", 9);
    memcpy(h.address, make_host("x", "r1", 3).address, 16);
    assert_int_equal(store_host_add(f->s, &h, false), -EEXIST);
    assert_non_null(strstr(store_errmsg(f->s), "2001:db8::3"));
    assert_non_null(strstr(store_errmsg(f->s), "web3"));
    /* same name without update */
    h = make_host("web1", "r1", 9);
    assert_int_equal(store_host_add(f->s, &h, false), -EEXIST);
    /* nothing of the refused adds is stored */
    assert_int_equal(store_host_get(f->s, "web9", &h), -ENOENT);
    assert_non_null(strstr(store_errmsg(f->s), "web9"));
    /* invalid input */
    h = make_host("web9", "r1", 9);
    h.n_macs = 0;
    assert_int_equal(store_host_add(f->s, &h, false), -EINVAL);
    h = make_host("web9", "r1", 9);
    h.prefix_length = 129;
    assert_int_equal(store_host_add(f->s, &h, false), -EINVAL);
    h = make_host("-web9", "r1", 9);
    assert_int_equal(store_host_add(f->s, &h, false), -EINVAL);
    h = make_host("web9", "r 1", 9);
    assert_int_equal(store_host_add(f->s, &h, false), -EINVAL);
    h = make_host("web9", "r1", 9);
    h.n_macs = 2;
    memcpy(h.macs[1], h.macs[0], 6);
    assert_int_equal(store_host_add(f->s, &h, false), -EINVAL);

    /* update: new MACs, address, gateway, hostname; the old ones are free again */
    h = make_host("web1", "r1", 11);
    h.n_macs = 2;
    memcpy(h.macs[0], make_host("x", "r1", 11).macs[0], 6);
    memcpy(h.macs[1], make_host("x", "r1", 12).macs[0], 6);
    h.has_gateway = true;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", h.gateway), 1);
    snprintf(h.hostname, sizeof(h.hostname), "web1.example.net");
    assert_int_equal(store_host_add(f->s, &h, true), 0);
    store_host got;
    assert_int_equal(store_host_get(f->s, "web1", &got), 0);
    assert_int_equal(got.n_macs, 2);
    assert_memory_equal(got.macs[1], h.macs[1], 6);
    assert_true(got.has_gateway);
    assert_memory_equal(got.gateway, h.gateway, 16);
    assert_string_equal(got.hostname, "web1.example.net");
    add_host(f->s, "web10", "r1", 1); /* web1's old MAC and address */

    int n = 0;
    assert_int_equal(store_hosts_list(f->s, RACKS("r1"), host_count_cb, &n), 4);
    assert_int_equal(n, 4);
    n = 0;
    assert_int_equal(store_hosts_list(f->s, NULL, host_count_cb, &n), 5);
    assert_int_equal(n, 5);

    assert_int_equal(store_host_remove(f->s, "web10"), 0);
    assert_int_equal(store_host_remove(f->s, "web10"), -ENOENT);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM host_macs"), 5);
    check_store(f);
}

/* A batch is one transaction whose operations are savepoints: a failed
 * operation undoes only itself, the end commits or undoes the rest, and a
 * reopened store sees exactly what was committed. */
static void test_batch(void **state)
{
    fixture *f = *state;
    int before = 0;
    int listed = store_hosts_list(f->s, NULL, host_count_cb, &before);
    assert_int_equal(listed, before);

    assert_int_equal(store_batch_begin(f->s), 0);
    add_host(f->s, "b1", "r3", 201);
    store_host dup = make_host("b2", "r3", 201); /* b1's MAC */
    assert_int_equal(store_host_add(f->s, &dup, false), -EEXIST);
    add_host(f->s, "b3", "r3", 203);
    uint64_t gen = 0;
    assert_int_equal(store_rack_intents(f->s, "r3", &gen, NULL, NULL), 0);
    assert_int_equal(store_batch_end(f->s, true), 0);

    int n = 0;
    assert_int_equal(store_hosts_list(f->s, NULL, host_count_cb, &n), before + 2);
    assert_int_equal(n, before + 2);

    /* Undone as a whole. */
    assert_int_equal(store_batch_begin(f->s), 0);
    add_host(f->s, "b4", "r3", 204);
    char id[STORE_ID_LEN + 1];
    assert_int_equal(store_install_create(f->s, "b1", "el9", false, T0, id), 0);
    assert_int_equal(store_batch_end(f->s, false), 0);
    store_host h;
    assert_int_equal(store_host_get(f->s, "b4", &h), -ENOENT);
    assert_int_equal(status(f->s, "b1").state, 0);

    reopen(f);
    n = 0;
    assert_int_equal(store_hosts_list(f->s, NULL, host_count_cb, &n), before + 2);
    assert_int_equal(n, before + 2);
    check_store(f);
}

static void test_schema_constraints(void **state)
{
    fixture *f = *state;
    /* The schema itself refuses what the API checks, for any writer. */
    const char *fk = "PRAGMA foreign_keys = ON;";
    char sql[512];
    snprintf(sql, sizeof(sql),
             "%s INSERT INTO host_macs (mac, host_id, position) "
             "VALUES (x'020000000001', 999, 0)",
             fk);
    assert_int_equal(exec_sql(f->path, sql) & 0xff, SQLITE_CONSTRAINT);
    snprintf(sql, sizeof(sql),
             "%s UPDATE hosts SET address = "
             "(SELECT address FROM hosts WHERE name = 'web2') WHERE name = 'web1'",
             fk);
    assert_int_equal(exec_sql(f->path, sql) & 0xff, SQLITE_CONSTRAINT);
    snprintf(sql, sizeof(sql), "%s UPDATE hosts SET prefix_length = 0 WHERE name = 'web1'", fk);
    assert_int_equal(exec_sql(f->path, sql) & 0xff, SQLITE_CONSTRAINT);
    /* at most one active install per host: the partial unique index */
    char id[STORE_ID_LEN + 1];
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), 0);
    snprintf(sql, sizeof(sql),
             "%s INSERT INTO installs (uuid, host_id, profile_id, state, token, attempt, "
             "generation, created_ms, updated_ms) SELECT 'x', host_id, profile_id, 'booting', "
             "'t', 1, 1, 0, 0 FROM installs",
             fk);
    assert_int_equal(exec_sql(f->path, sql) & 0xff, SQLITE_CONSTRAINT);
    snprintf(sql, sizeof(sql),
             "%s INSERT INTO installs (uuid, host_id, profile_id, state, token, attempt, "
             "generation, created_ms, updated_ms) SELECT 'y', host_id, profile_id, 'installed', "
             "'t', 1, 1, 0, 0 FROM installs",
             fk);
    assert_int_equal(exec_sql(f->path, sql), SQLITE_OK); /* terminal ones may pile up */
    snprintf(sql, sizeof(sql), "%s UPDATE installs SET state = 'bogus'", fk);
    assert_int_equal(exec_sql(f->path, sql) & 0xff, SQLITE_CONSTRAINT);
    assert_integrity(f->path);
}

/* ---- Installs ---------------------------------------------------------- */

static void test_install_create_and_replace(void **state)
{
    fixture *f = *state;
    char id1[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1];
    uint64_t g0 = generation(f->s, "r1");
    assert_int_equal(g0, 1);
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id1), 0);
    assert_int_equal(generation(f->s, "r1"), g0 + 1);
    assert_int_equal(generation(f->s, "r2"), 1); /* other racks untouched */
    /* a version 7 UUID of the install's time (RFC 9562 §5.7) */
    assert_int_equal(strlen(id1), 36);
    assert_int_equal(id1[8], '-');
    assert_int_equal(id1[14], '7');
    assert_non_null(strchr("89ab", id1[19]));
    char ms[13];
    snprintf(ms, sizeof(ms), "%012" PRIx64, (uint64_t)T0);
    assert_memory_equal(id1, ms, 8);
    assert_memory_equal(id1 + 9, ms + 8, 4);

    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id2), -EBUSY);
    assert_non_null(strstr(store_errmsg(f->s), id1));
    assert_int_equal(generation(f->s, "r1"), g0 + 1);
    assert_int_equal(store_install_create(f->s, "nohost", "el9", false, T0, id2), -ENOENT);
    assert_int_equal(store_install_create(f->s, "web1", "noprofile", true, T0, id2), -ENOENT);
    assert_non_null(strstr(store_errmsg(f->s), "noprofile"));
    assert_int_equal(store_host_remove(f->s, "web1"), -EBUSY);

    uint64_t gen;
    intents_out o = intents(f->s, "r1", &gen);
    assert_int_equal(gen, g0 + 1);
    assert_int_equal(o.n, 1);
    assert_string_equal(o.ids[0], id1);
    assert_int_equal(o.n_images, 3);
    assert_int_equal(strlen(o.token), STORE_TOKEN_LEN);
    assert_int_equal(strspn(o.token, "0123456789abcdef"), STORE_TOKEN_LEN);
    assert_int_equal(o.attempt, 1);

    /* replace: the old one is cancelled, the new one is attempt 2 */
    assert_int_equal(store_install_create(f->s, "web1", "el9", true, T0 + 5, id2), 0);
    assert_string_not_equal(id1, id2);
    o = intents(f->s, "r1", &gen);
    assert_int_equal(o.n, 1);
    assert_string_equal(o.ids[0], id2);
    assert_int_equal(o.attempt, 2);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM installs WHERE state = 'cancelled'"), 1);
    status_out st = status(f->s, "web1");
    assert_string_equal(st.install_id, id2);
    assert_int_equal(st.state, INSTALL_REQUESTED);

    /* two hosts share one profile: loaded once */
    assert_int_equal(store_install_create(f->s, "web2", "el9", false, T0, NULL), 0);
    o = intents(f->s, "r1", &gen);
    assert_int_equal(o.n, 2);
    assert_ptr_equal(o.profiles[0], o.profiles[1]);
    assert_int_equal(store_rack_intents(f->s, "nope", &gen, intents_cb, &o), -ENOENT);
}

static void test_lifecycle(void **state)
{
    fixture *f = *state;
    char id[STORE_ID_LEN + 1];
    store_event_result res[8];
    uint64_t through = 0;

    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), 0);
    uint64_t g = generation(f->s, "r1");
    /* an ack of an older generation does not contain it */
    assert_int_equal(store_agent_ack(f->s, "r1", 1, g - 1, T0 + 1), 0);
    assert_int_equal(status(f->s, "web1").state, INSTALL_REQUESTED);
    assert_int_equal(store_agent_ack(f->s, "r1", 1, g + 1, T0 + 1), -EINVAL);
    assert_int_equal(store_agent_ack(f->s, "r1", 1, g, T0 + 2), 1);
    assert_int_equal(status(f->s, "web1").state, INSTALL_DISPATCHED);
    assert_int_equal(store_agent_ack(f->s, "r1", 1, g, T0 + 3), 0); /* repeated */

    store_event e[] = {
        ev(1, id, "web1", P(DHCP_BOUND)),        ev(2, id, "web1", P(SCRIPT_SERVED)),
        ev(3, id, "web1", P(KICKSTART_FETCHED)), ev(4, id, "web1", P(STAGE2_PROGRESS)),
        ev(5, id, "web1", P(KERNEL_FETCHED)), /* late: no move back */
    };
    e[3].percent = 40;
    e[3].message = "stage2 40%";
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e, 2, T0 + 10, res, &through), 2);
    assert_int_equal(through, 2);
    status_out st = status(f->s, "web1");
    assert_int_equal(st.state, INSTALL_BOOTING);
    assert_int_equal(st.phase, P(SCRIPT_SERVED));
    assert_int_equal(st.updated_ms, T0 + 10);
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e + 2, 3, T0 + 20, res, &through), 3);
    assert_int_equal(through, 5);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(res[i], STORE_EVENT_STORED);
    }
    st = status(f->s, "web1");
    assert_int_equal(st.state, INSTALL_INSTALLING);
    assert_int_equal(st.phase, P(STAGE2_PROGRESS)); /* not the late kernel_fetched */
    assert_int_equal(st.percent, 40);
    assert_string_equal(st.message, "stage2 40%");
    assert_int_equal(generation(f->s, "r1"), g); /* still the same intent */

    store_event done[] = { ev(6, id, "web1", P(INSTALLED)), ev(7, id, "web1", P(FAILED)) };
    assert_int_equal(store_events_ingest(f->s, "r1", 1, done, 2, T0 + 30, res, &through), 2);
    assert_int_equal(through, 7);
    st = status(f->s, "web1");
    assert_int_equal(st.state, INSTALL_INSTALLED);
    assert_int_equal(st.phase, P(INSTALLED));
    assert_int_equal(st.percent, 100);
    /* the intent is withdrawn with a new generation */
    uint64_t g2;
    intents_out o = intents(f->s, "r1", &g2);
    assert_int_equal(g2, g + 1);
    assert_int_equal(o.n, 0);
    /* every event is recorded, the late ones too */
    assert_int_equal(host_events(f->s, "web1"), 7);
    assert_int_equal(peek_int(f, "SELECT finished_ms FROM installs"), T0 + 30);
    assert_int_equal(peek_int(f, "SELECT installing_ms FROM installs"), T0 + 20);
    assert_int_equal(peek_int(f, "SELECT dispatched_ms FROM installs"), T0 + 2);
    /* a new install after a success starts a new series of attempts */
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0 + 40, NULL), 0);
    assert_int_equal(status(f->s, "web1").attempt, 1);
    assert_int_equal(status(f->s, "web1").state, INSTALL_REQUESTED);
    assert_int_equal(status(f->s, "web1").phase, 0);
}

typedef struct rows_out {
    int n;
    uint64_t seqs[16];
    Rackboot__V1__Phase phases[16];
    char hosts[16][64];
} rows_out;

static int rows_cb(const store_event_row *e, void *userdata)
{
    rows_out *o = userdata;
    assert_true(o->n < 16);
    o->seqs[o->n] = e->seq;
    o->phases[o->n] = e->phase;
    snprintf(o->hosts[o->n], sizeof(o->hosts[0]), "%s", e->host);
    o->n++;
    return 0;
}

static void test_events_list(void **state)
{
    fixture *f = *state;
    char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
    uint64_t through;
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, a), 0);
    assert_int_equal(store_install_create(f->s, "web2", "el9", false, T0, b), 0);
    store_event e[] = {
        ev(1, a, "web1", P(DHCP_BOUND)),
        ev(2, b, "web2", P(DHCP_BOUND)),
        ev(3, a, "web1", P(SCRIPT_SERVED)),
    };
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e, 3, T0, NULL, &through), 3);
    rows_out o = { 0 };
    assert_int_equal(store_events_list(f->s, "web1", 0, 0, rows_cb, &o), 2);
    assert_int_equal(o.phases[0], P(DHCP_BOUND));
    assert_int_equal(o.phases[1], P(SCRIPT_SERVED));
    assert_true(o.seqs[0] < o.seqs[1]);
    rows_out after = { 0 };
    assert_int_equal(store_events_list(f->s, "web1", o.seqs[0], 0, rows_cb, &after), 1);
    assert_int_equal(after.seqs[0], o.seqs[1]);
    rows_out all = { 0 };
    assert_int_equal(store_events_list(f->s, NULL, 0, 2, rows_cb, &all), 2); /* limit */
    assert_string_equal(all.hosts[1], "web2");
    assert_int_equal(store_events_list(f->s, "nohost", 0, 0, rows_cb, &all), -ENOENT);
}

/* ---- Power ------------------------------------------------------------- */

typedef struct power_seen {
    int n_bmcs, n_cmds;
    char bmc_password[64];
    char cmd_id[STORE_POWER_ID_LEN + 1];
    char cmd_install[STORE_ID_LEN + 1];
    int cmd_boot_device;
    bool cmd_efi;
    store_power result;
    char result_message[128];
} power_seen;

static int seen_bmc(const store_bmc *b, void *userdata)
{
    power_seen *ps = userdata;
    ps->n_bmcs++;
    snprintf(ps->bmc_password, sizeof(ps->bmc_password), "%s", b->password);
    return 0;
}

static int seen_cmd(const store_power *p, void *userdata)
{
    power_seen *ps = userdata;
    ps->n_cmds++;
    snprintf(ps->cmd_id, sizeof(ps->cmd_id), "%s", p->id);
    snprintf(ps->cmd_install, sizeof(ps->cmd_install), "%s", p->install_id);
    ps->cmd_boot_device = p->boot_device;
    ps->cmd_efi = p->efi;
    return 0;
}

static int seen_result(const store_power *p, void *userdata)
{
    power_seen *ps = userdata;
    ps->result = *p;
    snprintf(ps->result_message, sizeof(ps->result_message), "%s", p->message);
    return 0;
}

static void add_bmc_host(store *s, const char *name, unsigned n, model_firmware fw)
{
    store_host h = make_host(name, "r3", n);
    snprintf(h.bmc_url, sizeof(h.bmc_url), "ipmi://[2001:db8:ff::%u]:623", n);
    snprintf(h.bmc_user, sizeof(h.bmc_user), "admin");
    snprintf(h.bmc_password, sizeof(h.bmc_password), "s3cret-%u", n);
    h.firmware = fw;
    assert_int_equal(store_host_add(s, &h, false), 0);
}

/* BMC fields are kept, listings never give the password back (only the
 * rack's sync does), bad ones are refused without quoting it. */
static void test_host_bmc(void **state)
{
    fixture *f = *state;
    add_bmc_host(f->s, "bmc1", 201, MODEL_FIRMWARE_UEFI);
    store_host h;
    assert_int_equal(store_host_get(f->s, "bmc1", &h), 0);
    assert_string_equal(h.bmc_url, "ipmi://[2001:db8:ff::201]:623");
    assert_string_equal(h.bmc_user, "admin");
    assert_string_equal(h.bmc_password, "");
    assert_true(h.bmc_password_set);
    assert_int_equal(h.firmware, MODEL_FIRMWARE_UEFI);
    assert_int_equal(store_host_get(f->s, "web1", &h), 0);
    assert_string_equal(h.bmc_url, "");
    assert_false(h.bmc_password_set);

    power_seen ps = { 0 };
    assert_int_equal(store_rack_power(f->s, "r3", seen_bmc, NULL, &ps), 0);
    assert_int_equal(ps.n_bmcs, 1);
    assert_string_equal(ps.bmc_password, "s3cret-201");

    store_host bad = make_host("bad1", "r3", 202);
    snprintf(bad.bmc_url, sizeof(bad.bmc_url), "ipmi://admin:hunter2@[2001:db8::1]");
    assert_int_equal(store_host_add(f->s, &bad, false), -EINVAL);
    assert_null(strstr(store_errmsg(f->s), "hunter2"));
    snprintf(bad.bmc_url, sizeof(bad.bmc_url), "https://bmc/redfish");
    assert_int_equal(store_host_add(f->s, &bad, false), -EINVAL);
    bad.bmc_url[0] = '\0';
    snprintf(bad.bmc_password, sizeof(bad.bmc_password), "secret");
    assert_int_equal(store_host_add(f->s, &bad, false), -EINVAL); /* no URL */
}

/* A command goes out with its rack's state (a bump), is listed until the
 * agent's event ends it, and the host's power state follows the events. */
static void test_power_commands(void **state)
{
    fixture *f = *state;
    add_bmc_host(f->s, "bmc1", 201, MODEL_FIRMWARE_UEFI);
    add_bmc_host(f->s, "bmc2", 202, MODEL_FIRMWARE_BIOS);
    uint64_t gen0, gen1, through;
    assert_int_equal(store_rack_get(f->s, "r3", &gen0, NULL), 0);

    const char *hosts[] = { "bmc1", "web1", "nohost" };
    store_power_outcome out[3];
    assert_int_equal(store_batch_begin(f->s), 0);
    assert_int_equal(store_power_create(f->s, hosts, 3,
                                        RACKBOOT__V1__POWER_ACTION__POWER_ACTION_CYCLE,
                                        RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_PXE, NULL, T0, out),
                     1);
    assert_int_equal(store_batch_end(f->s, true), 0);
    assert_int_equal(out[0].result, 0);
    assert_int_equal(out[1].result, -ENODEV); /* no BMC */
    assert_int_equal(out[2].result, -ENOENT);
    assert_int_equal(store_rack_get(f->s, "r3", &gen1, NULL), 0);
    assert_true(gen1 > gen0);

    power_seen ps = { 0 };
    assert_int_equal(store_rack_power(f->s, "r3", NULL, seen_cmd, &ps), 0);
    assert_int_equal(ps.n_cmds, 1);
    assert_string_equal(ps.cmd_id, out[0].id);
    assert_int_equal(ps.cmd_boot_device, RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_PXE);
    assert_true(ps.cmd_efi); /* firmware = uefi */

    /* bootdev_set is not the end; power_cycle is. */
    store_event e[] = {
        { .seq = 1,
          .time_ms = T0,
          .host = "bmc1",
          .phase = P(BOOTDEV_SET),
          .message = "pxe efi",
          .power_id = out[0].id },
        { .seq = 2,
          .time_ms = T0,
          .host = "bmc1",
          .phase = P(POWER_CYCLE),
          .message = "cycled",
          .power_id = out[0].id,
          .power_state = RACKBOOT__V1__POWER_STATE__POWER_STATE_ON },
        /* the agent's own poll: no command */
        { .seq = 3,
          .time_ms = T0,
          .host = "bmc2",
          .phase = P(POWER_STATUS),
          .message = "off",
          .power_state = RACKBOOT__V1__POWER_STATE__POWER_STATE_OFF },
        /* a power event of a host of another rack is refused */
        { .seq = 4,
          .time_ms = T0,
          .host = "db1",
          .phase = P(POWER_STATUS),
          .message = "on",
          .power_state = RACKBOOT__V1__POWER_STATE__POWER_STATE_ON },
    };
    store_event_result res[4];
    assert_int_equal(store_events_ingest(f->s, "r3", 1, e, 4, T0 + 5, res, &through), 3);
    assert_int_equal(res[3], STORE_EVENT_REFUSED_HOST);
    assert_int_equal(through, 4);
    uint64_t gen2;
    assert_int_equal(store_rack_get(f->s, "r3", &gen2, NULL), 0);
    assert_true(gen2 > gen1); /* the command is withdrawn */
    ps = (power_seen){ 0 };
    assert_int_equal(store_rack_power(f->s, "r3", NULL, seen_cmd, &ps), 0);
    assert_int_equal(ps.n_cmds, 0);

    const char *ids[] = { out[0].id, "00000000-0000-7000-8000-000000000000" };
    assert_int_equal(store_power_results(f->s, ids, 2, seen_result, &ps), 1);
    assert_true(ps.result.done);
    assert_true(ps.result.ok);
    assert_int_equal(ps.result.power_state, RACKBOOT__V1__POWER_STATE__POWER_STATE_ON);
    assert_string_equal(ps.result_message, "cycled");

    store_host h;
    assert_int_equal(store_host_get(f->s, "bmc1", &h), 0);
    assert_int_equal(h.power_state, RACKBOOT__V1__POWER_STATE__POWER_STATE_ON);
    assert_int_equal(h.power_updated_ms, T0 + 5);
    assert_int_equal(store_host_get(f->s, "bmc2", &h), 0);
    assert_int_equal(h.power_state, RACKBOOT__V1__POWER_STATE__POWER_STATE_OFF);
    /* power events are the host's events */
    assert_int_equal(host_events(f->s, "bmc1"), 2);
    assert_int_equal(host_events(f->s, "bmc2"), 1);
    backend->check(f);
}

/* A failed command says why; one no agent did expires. */
static void test_power_failed_and_expired(void **state)
{
    fixture *f = *state;
    add_bmc_host(f->s, "bmc1", 201, MODEL_FIRMWARE_UNKNOWN);
    add_bmc_host(f->s, "bmc2", 202, MODEL_FIRMWARE_UNKNOWN);
    const char *hosts[] = { "bmc1", "bmc2" };
    store_power_outcome out[2];
    uint64_t through;
    assert_int_equal(store_batch_begin(f->s), 0);
    assert_int_equal(store_power_create(f->s, hosts, 2, RACKBOOT__V1__POWER_ACTION__POWER_ACTION_ON,
                                        0, NULL, T0, out),
                     2);
    assert_int_equal(store_batch_end(f->s, true), 0);
    store_event e = { .seq = 1,
                      .time_ms = T0,
                      .host = "bmc1",
                      .phase = P(POWER_FAILED),
                      .message = "password rejected by BMC",
                      .power_id = out[0].id };
    assert_int_equal(store_events_ingest(f->s, "r3", 1, &e, 1, T0 + 1, NULL, &through), 1);
    power_seen ps = { 0 };
    assert_int_equal(store_power_results(f->s, (const char *[]){ out[0].id }, 1, seen_result, &ps),
                     1);
    assert_true(ps.result.done);
    assert_false(ps.result.ok);
    assert_string_equal(ps.result_message, "password rejected by BMC");

    assert_int_equal(store_power_expire(f->s, T0 + 1000, 60000), 0); /* not yet */
    assert_int_equal(store_power_expire(f->s, T0 + 61000, 60000), 1);
    assert_int_equal(store_power_results(f->s, (const char *[]){ out[1].id }, 1, seen_result, &ps),
                     1);
    assert_true(ps.result.done);
    assert_false(ps.result.ok);
    assert_non_null(strstr(ps.result_message, "did not do it"));
    ps = (power_seen){ 0 };
    assert_int_equal(store_rack_power(f->s, "r3", NULL, seen_cmd, &ps), 0);
    assert_int_equal(ps.n_cmds, 0);
}

static void test_dedup(void **state)
{
    fixture *f = *state;
    char id[STORE_ID_LEN + 1];
    store_event_result res[5];
    uint64_t through = 0;
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), 0);
    store_event e[] = {
        ev(1, id, "web1", P(DHCP_BOUND)),     ev(2, id, "web1", P(SCRIPT_SERVED)),
        ev(3, id, "web1", P(KERNEL_FETCHED)), ev(4, id, "web1", P(INITRD_FETCHED)),
        ev(5, id, "web1", P(INSTALLING)),
    };
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e, 5, T0, res, &through), 5);
    assert_int_equal(through, 5);
    uint64_t g = generation(f->s, "r1");
    /* the agent did not get the ack and sends the batch again */
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e, 5, T0 + 1, res, &through), 0);
    assert_int_equal(through, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(res[i], STORE_EVENT_DUPLICATE);
    }
    assert_int_equal(host_events(f->s, "web1"), 5);
    assert_int_equal(generation(f->s, "r1"), g);
    /* overlapping: 4, 5 again and 6 new */
    store_event more[] = { e[3], e[4], ev(6, id, "web1", P(INSTALLED)) };
    assert_int_equal(store_events_ingest(f->s, "r1", 1, more, 3, T0 + 2, res, &through), 1);
    assert_int_equal(res[0], STORE_EVENT_DUPLICATE);
    assert_int_equal(res[1], STORE_EVENT_DUPLICATE);
    assert_int_equal(res[2], STORE_EVENT_STORED);
    assert_int_equal(through, 6);
    assert_int_equal(host_events(f->s, "web1"), 6);
    /* the same seq from another rack's agent is another event */
    char id2[STORE_ID_LEN + 1];
    assert_int_equal(store_install_create(f->s, "db1", "el9", false, T0, id2), 0);
    store_event other = ev(1, id2, "db1", P(DHCP_BOUND));
    assert_int_equal(store_events_ingest(f->s, "r2", 1, &other, 1, T0, res, &through), 1);
    assert_int_equal(through, 1);
    assert_int_equal(store_events_ingest(f->s, "nope", 1, &other, 1, T0, res, &through), -ENOENT);
}

/* A wiped agent starts a new journal at seq 1: with its new journal id its
 * events are new, not duplicates of the old journal's. */
static void test_journal_epoch(void **state)
{
    fixture *f = *state;
    char id[STORE_ID_LEN + 1];
    store_event_result res[2];
    uint64_t through = 0;
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), 0);
    assert_int_equal(store_agent_journal(f->s, "r1", 1, "aaaa"), 0); /* the first id: adopted */
    assert_int_equal(store_agent_journal(f->s, "r1", 1, "aaaa"), 0);
    store_event e[] = { ev(1, id, "web1", P(DHCP_BOUND)), ev(2, id, "web1", P(SCRIPT_SERVED)) };
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e, 2, T0, res, &through), 2);
    assert_int_equal(through, 2);

    assert_int_equal(store_agent_journal(f->s, "r1", 1, "bbbb"), 1); /* state wiped */
    store_event again = ev(1, id, "web1", P(KERNEL_FETCHED));
    assert_int_equal(store_events_ingest(f->s, "r1", 1, &again, 1, T0, res, &through), 1);
    assert_int_equal(res[0], STORE_EVENT_STORED);
    assert_int_equal(through, 1);
    assert_int_equal(host_events(f->s, "web1"), 3);
    /* and it de-duplicates within the new journal */
    assert_int_equal(store_events_ingest(f->s, "r1", 1, &again, 1, T0, res, &through), 0);
    assert_int_equal(res[0], STORE_EVENT_DUPLICATE);
    assert_int_equal(store_agent_journal(f->s, "r1", 1, ""), 0); /* an agent sending none */
    assert_int_equal(store_agent_journal(f->s, "nope", 1, "cccc"), -ENOENT);
}

/* A schema-1 store (events unique per rack and seq) migrates to 2 with its
 * events, which keep de-duplicating. */
static void test_migrate_v1(void **state)
{
    fixture *f = *state;
    char path[300];
    snprintf(path, sizeof(path), "%s/v1.db", f->dir);
    char sql[1024];
    assert_int_equal(exec_sql(path, store_migration_sql(1)), SQLITE_OK);
    snprintf(sql, sizeof(sql),
             "PRAGMA user_version = 1;"
             "INSERT INTO racks (id, name, generation, created_ms) VALUES (1, 'r9', 1, 0);"
             "INSERT INTO agents (rack_id, stored_through) VALUES (1, 1);"
             "INSERT INTO events (rack_id, agent_seq, host, time_ms, received_ms, phase, percent,"
             " message, refused) VALUES (1, 1, 'x', 0, 0, 1, 0, '', 'host unknown');");
    int rc = exec_sql(path, sql);
    if (rc != SQLITE_OK) {
        fail_msg("building the v1 store: %d", rc);
    }
    store *old = NULL;
    char *err = NULL;
    assert_int_equal(store_open(path, &old, &err), 0);
    assert_int_equal(store_schema_version(old), STORE_SCHEMA_VERSION);
    store_event e = ev(1, "00000000-0000-4000-8000-000000000000", "x", P(DHCP_BOUND));
    store_event_result res;
    uint64_t through = 0;
    assert_int_equal(store_events_ingest(old, "r9", 1, &e, 1, T0, &res, &through), 0);
    assert_int_equal(res, STORE_EVENT_DUPLICATE);
    assert_int_equal(through, 1);
    store_close(old);
    assert_integrity(path);
}

static void test_refused(void **state)
{
    fixture *f = *state;
    char id1[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1], idb[STORE_ID_LEN + 1];
    store_event_result res[8];
    uint64_t through = 0;
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id1), 0);
    assert_int_equal(store_install_create(f->s, "web2", "el9", false, T0, id2), 0);
    assert_int_equal(store_install_create(f->s, "db1", "el9", false, T0, idb), 0);
    store_event e[] = {
        ev(1, idb, "db1", P(INSTALLED)),    /* a host of rack r2 */
        ev(2, id1, "ghost", P(DHCP_BOUND)), /* no such host */
        ev(3, id2, "web1", P(DHCP_BOUND)),  /* web2's install, said of web1 */
        ev(4, "nosuchinstall", "web1", P(DHCP_BOUND)),
        ev(5, id1, "web1", P(UNSPECIFIED)), /* invalid */
        ev(6, id1, "web1", P(DHCP_BOUND)),  /* fine */
        ev(7, id1, "web1", (Rackboot__V1__Phase)99),
    };
    e[5].percent = 0;
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e, 7, T0, res, &through), 1);
    assert_int_equal(res[0], STORE_EVENT_REFUSED_HOST);
    assert_int_equal(res[1], STORE_EVENT_REFUSED_HOST);
    assert_int_equal(res[2], STORE_EVENT_REFUSED_INSTALL);
    assert_int_equal(res[3], STORE_EVENT_REFUSED_INSTALL);
    assert_int_equal(res[4], STORE_EVENT_REFUSED_INVALID);
    assert_int_equal(res[5], STORE_EVENT_STORED);
    assert_int_equal(res[6], STORE_EVENT_REFUSED_INVALID);
    assert_string_equal(store_event_result_to_string(res[0]), "refused_host");
    /* refused seqs are handled: the agent may drop them */
    assert_int_equal(through, 7);
    assert_int_equal(status(f->s, "db1").state, INSTALL_REQUESTED); /* untouched */
    assert_int_equal(status(f->s, "web2").state, INSTALL_REQUESTED);
    assert_int_equal(status(f->s, "web1").state, INSTALL_BOOTING);
    assert_int_equal(host_events(f->s, "db1"), 0);
    assert_int_equal(host_events(f->s, "web1"), 1);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events WHERE refused IS NOT NULL"), 6);
    /* a re-sent refused event is a duplicate */
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e, 1, T0, res, &through), 0);
    assert_int_equal(res[0], STORE_EVENT_DUPLICATE);
    /* seq 0 cannot be keyed: refused, not kept, stored_through unchanged */
    store_event zero = ev(0, id1, "web1", P(DHCP_BOUND));
    assert_int_equal(store_events_ingest(f->s, "r1", 1, &zero, 1, T0, res, &through), 0);
    assert_int_equal(res[0], STORE_EVENT_REFUSED_INVALID);
    assert_int_equal(through, 7);
}

static void test_stored_through_gaps(void **state)
{
    fixture *f = *state;
    char id[STORE_ID_LEN + 1];
    store_event_result res[3];
    uint64_t through = 99;
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), 0);
    store_event e[] = { ev(1, id, "web1", P(DHCP_BOUND)), ev(2, id, "web1", P(SCRIPT_SERVED)),
                        ev(4, id, "web1", P(INITRD_FETCHED)) };
    /* 3 is not in the agent's journal (dropped, or lost to damage): it will
     * never come, and the batch is acknowledged through its end. */
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e, 3, T0, res, &through), 3);
    assert_int_equal(through, 4);
    uint64_t st;
    assert_int_equal(store_rack_get(f->s, "r1", NULL, &st), 0);
    assert_int_equal(st, 4);
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e + 2, 1, T0, res, &through), 0);
    assert_int_equal(res[0], STORE_EVENT_DUPLICATE);
    assert_int_equal(through, 4);
    /* A journal whose oldest events were dropped starts above through + 1. */
    store_event later[] = { ev(9, id, "web1", P(KERNEL_FETCHED)),
                            ev(10, id, "web1", P(INSTALLING)) };
    assert_int_equal(store_events_ingest(f->s, "r1", 1, later, 2, T0, res, &through), 2);
    assert_int_equal(through, 10);
    /* an empty batch reports where we are */
    through = 0;
    assert_int_equal(store_events_ingest(f->s, "r1", 1, NULL, 0, T0, NULL, &through), 0);
    assert_int_equal(through, 10);
}

/* What a batch reads ahead (fleet_events.c "An event batch"): keys stored
 * above stored_through, a seq repeated in one batch, and status written
 * once per install at the end of a batch showing what it would have shown
 * had every event come in a batch of its own. */
static void test_event_batch_read_ahead(void **state)
{
    fixture *f = *state;
    char id[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1];
    store_event_result res[8];
    uint64_t through = 0;
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), 0);
    assert_int_equal(store_install_create(f->s, "web2", "el9", false, T0, id2), 0);

    /* A batch out of order is acknowledged through its last seq, so 7 is
     * stored above stored_through: the next batch must not store it twice. */
    store_event odd[] = { ev(7, id, "web1", P(DHCP_BOUND)), ev(3, id, "web1", P(DHCP_BOUND)) };
    assert_int_equal(store_events_ingest(f->s, "r1", 1, odd, 2, T0, res, &through), 2);
    assert_int_equal(through, 3);
    store_event next[] = { ev(4, id, "web1", P(SCRIPT_SERVED)), ev(7, id, "web1", P(DHCP_BOUND)),
                           ev(8, id, "web1", P(KERNEL_FETCHED)) };
    assert_int_equal(store_events_ingest(f->s, "r1", 1, next, 3, T0, res, &through), 2);
    assert_int_equal(res[0], STORE_EVENT_STORED);
    assert_int_equal(res[1], STORE_EVENT_DUPLICATE);
    assert_int_equal(res[2], STORE_EVENT_STORED);
    assert_int_equal(through, 8);
    assert_int_equal(host_events(f->s, "web1"), 4);

    /* The same seq twice in one batch counts once. */
    store_event twice[] = { ev(9, id, "web1", P(INITRD_FETCHED)),
                            ev(10, id, "web1", P(OVERLAY_FETCHED)),
                            ev(10, id, "web1", P(OVERLAY_FETCHED)) };
    assert_int_equal(store_events_ingest(f->s, "r1", 1, twice, 3, T0, res, &through), 2);
    assert_int_equal(res[2], STORE_EVENT_DUPLICATE);
    assert_int_equal(host_events(f->s, "web1"), 6);

    /* One install's events one batch at a time (web1), the other's all in
     * one batch (web2): the same status. A late kernel_fetched does not
     * take the phase back, a note changes only the message. */
    static const struct {
        Rackboot__V1__Phase phase;
        uint32_t percent;
        const char *message;
    } story[] = {
        { P(KICKSTART_FETCHED), 0, "ks" }, { P(STAGE2_PROGRESS), 20, "stage2 20%" },
        { P(KERNEL_FETCHED), 0, "late" },  { P(STAGE2_PROGRESS), 40, "stage2 40%" },
        { P(IMAGES_CACHED), 0, "cached" }, { P(KERNEL_FETCHED), 0, "late again" },
    };
    store_event all[ARRAY_SIZE(story)];
    for (size_t i = 0; i < ARRAY_SIZE(story); i++) {
        store_event one = ev(11 + i, id, "web1", story[i].phase);
        one.percent = story[i].percent;
        one.message = story[i].message;
        assert_int_equal(store_events_ingest(f->s, "r1", 1, &one, 1, T0 + 5, res, &through), 1);
        all[i] = one;
        all[i].seq = 100 + i;
        all[i].install_id = id2;
        all[i].host = "web2";
    }
    assert_int_equal(
        store_events_ingest(f->s, "r1", 1, all, ARRAY_SIZE(all), T0 + 5, res, &through),
        (int)ARRAY_SIZE(all));
    status_out one = status(f->s, "web1"), batch = status(f->s, "web2");
    assert_int_equal(one.state, batch.state);
    assert_int_equal(one.phase, P(STAGE2_PROGRESS));
    assert_int_equal(batch.phase, P(STAGE2_PROGRESS));
    assert_int_equal(one.percent, 40);
    assert_int_equal(batch.percent, 40);
    assert_string_equal(one.message, "cached");
    assert_string_equal(batch.message, "cached");
    assert_int_equal(one.updated_ms, batch.updated_ms);
}

static void test_timeouts(void **state)
{
    fixture *f = *state;
    const install_timeouts cfg = { .boot_ms = 600000, .install_ms = 3600000 };
    char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1], c[STORE_ID_LEN + 1], d[STORE_ID_LEN + 1];
    uint64_t through;
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, a), 0);
    assert_int_equal(store_install_create(f->s, "web2", "el9", false, T0, b), 0);
    assert_int_equal(store_install_create(f->s, "web3", "el9", false, T0, c), 0);
    assert_int_equal(store_install_create(f->s, "db1", "el9", false, T0, d), 0);
    /* r1 acks at T0+1000; db1 (r2) is never acked: requested has no deadline */
    assert_int_equal(store_agent_ack(f->s, "r1", 1, generation(f->s, "r1"), T0 + 1000), 3);
    store_event e[] = { ev(1, b, "web2", P(DHCP_BOUND)), ev(2, c, "web3", P(KICKSTART_FETCHED)) };
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e, 1, T0 + 2000, NULL, &through), 1);
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e + 1, 1, T0 + 3000, NULL, &through), 1);
    uint64_t g1 = generation(f->s, "r1"), g2 = generation(f->s, "r2");

    assert_int_equal(store_expire(f->s, T0 + 1000 + 600000 - 1, &cfg), 0);
    /* boot_timeout runs from dispatch, for dispatched and booting alike */
    assert_int_equal(store_expire(f->s, T0 + 1000 + 600000, &cfg), 2);
    assert_int_equal(status(f->s, "web1").state, INSTALL_TIMED_OUT);
    assert_int_equal(status(f->s, "web2").state, INSTALL_TIMED_OUT);
    assert_string_equal(status(f->s, "web2").message, "timed out");
    assert_int_equal(status(f->s, "web3").state, INSTALL_INSTALLING);
    assert_int_equal(generation(f->s, "r1"), g1 + 2);
    assert_int_equal(store_expire(f->s, T0 + 3000 + 3600000 - 1, &cfg), 0);
    assert_int_equal(store_expire(f->s, T0 + 3000 + 3600000, &cfg), 1);
    assert_int_equal(status(f->s, "web3").state, INSTALL_TIMED_OUT);
    assert_int_equal(status(f->s, "db1").state, INSTALL_REQUESTED);
    assert_int_equal(generation(f->s, "r2"), g2);
    /* a late installed does not revive it, nor bump the generation */
    uint64_t g = generation(f->s, "r1");
    store_event late = ev(3, c, "web3", P(INSTALLED));
    store_event_result res;
    assert_int_equal(store_events_ingest(f->s, "r1", 1, &late, 1, T0 + 4000000, &res, &through), 1);
    assert_int_equal(res, STORE_EVENT_STORED);
    assert_int_equal(status(f->s, "web3").state, INSTALL_TIMED_OUT);
    assert_int_equal(generation(f->s, "r1"), g);
    /* a timeout of 0 disables that phase */
    const install_timeouts none = { 0, 0 };
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, NULL), 0);
    assert_int_equal(store_agent_ack(f->s, "r1", 1, generation(f->s, "r1"), T0), 1);
    assert_int_equal(store_expire(f->s, UINT64_MAX / 2, &none), 0);
    /* timed-out attempts count towards the next attempt number */
    assert_int_equal(status(f->s, "web1").attempt, 2);
}

/* What the controller's metrics read (deploy/METRICS.md): installs per
 * state, and an install's first dhcp_bound and its installed, timed from
 * its dispatch by the ingest's clock. An event before the ack (nothing to
 * time from), a second dhcp_bound (a reboot mid-install) and a refused
 * event time nothing. */
static void test_milestones_and_counts(void **state)
{
    fixture *f = *state;
    char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
    uint64_t counts[INSTALL_STATE_LAST + 1];
    store_event_result res[3];
    store_event_timing t[3];
    uint64_t through;
    assert_int_equal(store_installs_count(f->s, counts), 0);
    for (install_state st = INSTALL_STATE_FIRST; st <= INSTALL_STATE_LAST; st++) {
        assert_int_equal(counts[st], 0);
    }
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, a), 0);
    assert_int_equal(store_install_create(f->s, "web2", "el9", false, T0, b), 0);
    assert_int_equal(store_installs_count(f->s, counts), 0);
    assert_int_equal(counts[INSTALL_REQUESTED], 2);

    store_event early = ev(1, b, "web2", P(DHCP_BOUND));
    assert_int_equal(
        store_events_ingest_timed(f->s, "r1", 1, &early, 1, T0 + 500, res, t, &through), 1);
    assert_int_equal(t[0].milestone, STORE_MILESTONE_NONE);
    assert_int_equal(store_agent_ack(f->s, "r1", 1, generation(f->s, "r1"), T0 + 1000), 1);
    assert_int_equal(store_installs_count(f->s, counts), 0);
    assert_int_equal(counts[INSTALL_REQUESTED], 0);
    assert_int_equal(counts[INSTALL_DISPATCHED], 1);
    assert_int_equal(counts[INSTALL_BOOTING], 1);

    store_event e[] = { ev(2, a, "web1", P(DHCP_BOUND)), ev(3, a, "web1", P(DHCP_BOUND)),
                        ev(4, a, "db1", P(DHCP_BOUND)) };
    assert_int_equal(store_events_ingest_timed(f->s, "r1", 1, e, 3, T0 + 61000, res, t, &through),
                     2);
    assert_int_equal(res[2], STORE_EVENT_REFUSED_HOST);
    assert_int_equal(t[0].milestone, STORE_MILESTONE_DHCP_BOUND);
    assert_int_equal(t[0].since_dispatch_ms, 60000);
    assert_int_equal(t[1].milestone, STORE_MILESTONE_NONE);
    assert_int_equal(t[2].milestone, STORE_MILESTONE_NONE);

    store_event done = ev(5, a, "web1", P(INSTALLED));
    assert_int_equal(
        store_events_ingest_timed(f->s, "r1", 1, &done, 1, T0 + 901000, res, t, &through), 1);
    assert_int_equal(t[0].milestone, STORE_MILESTONE_INSTALLED);
    assert_int_equal(t[0].since_dispatch_ms, 900000);
    /* already installed: a repeat is late, not a second finish */
    store_event again = ev(6, a, "web1", P(INSTALLED));
    assert_int_equal(
        store_events_ingest_timed(f->s, "r1", 1, &again, 1, T0 + 902000, res, t, &through), 1);
    assert_int_equal(t[0].milestone, STORE_MILESTONE_NONE);
    assert_int_equal(store_installs_count(f->s, counts), 0);
    assert_int_equal(counts[INSTALL_INSTALLED], 1);
    assert_int_equal(counts[INSTALL_BOOTING], 1);
    assert_int_equal(counts[INSTALL_DISPATCHED], 0);
}

/* An image written to disk whose system never phones home from it: the
 * install_timeout (the install is installing from `writing` on) ends it
 * timed_out, and the last phase stays `written` for the operator to see. */
static void test_timeout_after_written(void **state)
{
    fixture *f = *state;
    const install_timeouts cfg = { .boot_ms = 600000, .install_ms = 3600000 };
    char id[STORE_ID_LEN + 1];
    uint64_t through;
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), 0);
    assert_int_equal(store_agent_ack(f->s, "r1", 1, generation(f->s, "r1"), T0 + 1000), 1);
    store_event e[] = { ev(1, id, "web1", P(DHCP_BOUND)), ev(2, id, "web1", P(WRITING)),
                        ev(3, id, "web1", P(WRITTEN)) };
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e, 1, T0 + 2000, NULL, &through), 1);
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e + 1, 1, T0 + 3000, NULL, &through), 1);
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e + 2, 1, T0 + 60000, NULL, &through), 1);
    assert_int_equal(status(f->s, "web1").state, INSTALL_INSTALLING);
    assert_int_equal(status(f->s, "web1").phase, P(WRITTEN));
    /* written is not a new start: the deadline runs from writing */
    assert_int_equal(store_expire(f->s, T0 + 3000 + 3600000 - 1, &cfg), 0);
    assert_int_equal(store_expire(f->s, T0 + 3000 + 3600000, &cfg), 1);
    status_out st = status(f->s, "web1");
    assert_int_equal(st.state, INSTALL_TIMED_OUT);
    assert_int_equal(st.phase, P(WRITTEN));
    assert_string_equal(st.message, "timed out");
}

/* A kind = debian-installer profile "deb12-di" (its strings are static). */
static model_profile di_profile(void)
{
    static char name[] = "deb12-di", preseed[] = "d-i mirror/suite string bookworm\n";
    return (model_profile){
        .name = name,
        .kind = PROFILE_DEBIAN_INSTALLER,
        .images = images_el9,
        .n_images = 2,
        .kickstart = preseed,
    };
}

/* A Debian installer's install ends on its first boot: its `installed`
 * keeps it installing (its intent stays out for the phone-home, the
 * generation does not move), first_boot ends it and withdraws the intent. */
static void test_debian_installer_first_boot(void **state)
{
    fixture *f = *state;
    model_profile p = di_profile();
    assert_int_equal(store_profile_import(f->s, &p, false), 0);
    char id[STORE_ID_LEN + 1];
    uint64_t through;
    assert_int_equal(store_install_create(f->s, "web1", "deb12-di", false, T0, id), 0);
    uint64_t g = generation(f->s, "r1");
    assert_int_equal(store_agent_ack(f->s, "r1", 1, g, T0 + 1000), 1);
    store_event e[] = { ev(1, id, "web1", P(KICKSTART_FETCHED)), ev(2, id, "web1", P(INSTALLING)),
                        ev(3, id, "web1", P(INSTALLED)), ev(4, id, "web1", P(FIRST_BOOT)) };
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e, 3, T0 + 2000, NULL, &through), 3);
    status_out st = status(f->s, "web1");
    assert_int_equal(st.state, INSTALL_INSTALLING);
    assert_int_equal(st.phase, P(INSTALLED));
    assert_int_equal(st.percent, 100);
    uint64_t g2;
    intents_out o = intents(f->s, "r1", &g2);
    assert_int_equal(g2, g);
    assert_int_equal(o.n, 1);
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e + 3, 1, T0 + 90000, NULL, &through), 1);
    st = status(f->s, "web1");
    assert_int_equal(st.state, INSTALL_INSTALLED);
    assert_int_equal(st.phase, P(FIRST_BOOT));
    o = intents(f->s, "r1", &g2);
    assert_int_equal(g2, g + 1);
    assert_int_equal(o.n, 0);
    assert_int_equal(peek_int(f, "SELECT finished_ms FROM installs"), T0 + 90000);
}

static void test_cancel(void **state)
{
    fixture *f = *state;
    char id[STORE_ID_LEN + 1], cancelled[STORE_ID_LEN + 1];
    uint64_t g, through;
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), 0);
    assert_int_equal(store_install_create(f->s, "web2", "el9", false, T0, NULL), 0);
    assert_int_equal(intents(f->s, "r1", &g).n, 2);
    assert_int_equal(store_install_cancel(f->s, "web1", T0 + 5, cancelled), 0);
    assert_string_equal(cancelled, id);
    uint64_t g2;
    intents_out o = intents(f->s, "r1", &g2);
    assert_int_equal(g2, g + 1);
    assert_int_equal(o.n, 1);
    assert_string_equal(o.hosts[0], "web2");
    status_out st = status(f->s, "web1");
    assert_int_equal(st.state, INSTALL_CANCELLED);
    assert_string_equal(st.message, "cancelled");
    assert_int_equal(store_install_cancel(f->s, "web1", T0 + 6, NULL), -ENOENT);
    assert_non_null(strstr(store_errmsg(f->s), "no active install"));
    assert_int_equal(store_install_cancel(f->s, "ghost", T0 + 6, NULL), -ENOENT);
    assert_int_equal(generation(f->s, "r1"), g + 1);
    /* the host booted anyway: recorded, no state change */
    store_event e = ev(1, id, "web1", P(DHCP_BOUND));
    store_event_result res;
    assert_int_equal(store_events_ingest(f->s, "r1", 1, &e, 1, T0 + 7, &res, &through), 1);
    assert_int_equal(status(f->s, "web1").state, INSTALL_CANCELLED);
    assert_int_equal(host_events(f->s, "web1"), 1);
    /* now the host may go, with its history */
    assert_int_equal(store_host_remove(f->s, "web1"), 0);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events WHERE refused IS NULL"), 0);
    check_store(f);
}

static void test_duid_learned(void **state)
{
    fixture *f = *state;
    char id[STORE_ID_LEN + 1];
    uint64_t through;
    store_event_result res[2];
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), 0);
    const uint8_t duid[] = { 0x00, 0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                             0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00 };
    store_host web1 = make_host("web1", "r1", 1), web2 = make_host("web2", "r1", 2);
    store_event e[] = { ev(1, id, "web1", P(DUID_LEARNED)), ev(2, id, "web1", P(DUID_LEARNED)) };
    e[0].mac = web1.macs[0];
    e[0].duid = duid;
    e[0].duid_len = sizeof(duid);
    e[1] = e[0];
    e[1].seq = 2;
    e[1].mac = web2.macs[0]; /* a MAC of another host */
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e, 2, T0, res, &through), 1);
    assert_int_equal(res[0], STORE_EVENT_STORED);
    assert_int_equal(res[1], STORE_EVENT_REFUSED_INVALID);
    store_host h;
    assert_int_equal(store_host_get(f->s, "web1", &h), 0);
    assert_int_equal(h.duid_len, sizeof(duid));
    assert_memory_equal(h.duid, duid, sizeof(duid));
    assert_int_equal(store_host_get(f->s, "web2", &h), 0);
    assert_int_equal(h.duid_len, 0);
    assert_int_equal(status(f->s, "web1").state, INSTALL_REQUESTED); /* a note, not progress */
    /* missing duid */
    store_event bad = ev(3, id, "web1", P(DUID_LEARNED));
    bad.mac = web1.macs[0];
    assert_int_equal(store_events_ingest(f->s, "r1", 1, &bad, 1, T0, res, &through), 0);
    assert_int_equal(res[0], STORE_EVENT_REFUSED_INVALID);
    assert_int_equal(through, 3);
}

/* ---- Profiles, images, racks ------------------------------------------- */

typedef struct profile_out {
    int n;
    char names[8][64];
    size_t n_images;
    bool any_source;
    char cmdline[64];
    size_t kickstart_len;
    uint8_t sha[32];
    char root_device[64]; /* "-" when not set */
    uefi_boot uefi;
} profile_out;

static int profile_cb(const model_profile *p, void *userdata)
{
    profile_out *o = userdata;
    snprintf(o->names[o->n++], sizeof(o->names[0]), "%s", p->name);
    o->n_images = p->n_images;
    o->any_source = p->any_source;
    snprintf(o->cmdline, sizeof(o->cmdline), "%s", p->cmdline ? p->cmdline : "");
    o->kickstart_len = p->kickstart ? strlen(p->kickstart) : 0;
    memcpy(o->sha, p->kickstart_sha256, 32);
    snprintf(o->root_device, sizeof(o->root_device), "%s", p->root_device ? p->root_device : "-");
    o->uefi = p->uefi;
    return 0;
}

static int image_cb(const char *profile, const model_image *img, void *userdata)
{
    (*(int *)userdata)++;
    return 0;
}

static void test_profiles(void **state)
{
    fixture *f = *state;
    model_profile p = {
        .name = (char[]){ "el9" },
        .cmdline = (char[]){ "console=tty0" },
        .kickstart = (char[]){ "new" },
        .any_source = true,
        .images = images_el9,
        .n_images = 2, /* drops install.img */
    };
    assert_int_equal(store_profile_import(f->s, &p, false), -EEXIST);
    assert_int_equal(store_install_create(f->s, "db1", "el9", false, T0, NULL), 0);
    uint64_t g1 = generation(f->s, "r1"), g2 = generation(f->s, "r2");
    assert_int_equal(store_profile_import(f->s, &p, true), 0);
    /* only the rack with an active install of it gets a new generation */
    assert_int_equal(generation(f->s, "r1"), g1);
    assert_int_equal(generation(f->s, "r2"), g2 + 1);
    profile_out o = { 0 };
    assert_int_equal(store_profile_get(f->s, "el9", true, profile_cb, &o), 0);
    assert_int_equal(o.n_images, 2);
    assert_true(o.any_source);
    assert_string_equal(o.cmdline, "console=tty0");
    assert_int_equal(o.kickstart_len, 3);
    /* the store computes the kickstart's digest */
    uint8_t want[32];
    assert_int_equal(sha256_buffer("new", 3, want), 0);
    assert_memory_equal(o.sha, want, 32);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM images"), 2); /* orphan gone */
    profile_out lite = { 0 };
    add_profile(f->s, "alma");
    assert_int_equal(store_profiles_list(f->s, false, profile_cb, &lite), 0);
    assert_int_equal(lite.n, 2);
    assert_string_equal(lite.names[0], "alma");
    assert_int_equal(lite.kickstart_len, 0); /* without content */
    int n = 0;
    assert_int_equal(store_images_list(f->s, image_cb, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM images"), 3); /* shared by sha+url */
    assert_int_equal(store_profile_get(f->s, "nope", true, profile_cb, &o), -ENOENT);

    /* invalid profiles */
    model_profile bad = p;
    bad.name = (char[]){ "bad" };
    bad.n_images = 1; /* no initrd */
    assert_int_equal(store_profile_import(f->s, &bad, false), -EINVAL);
    model_image twice[] = { images_el9[0], images_el9[1], images_el9[0] };
    bad.images = twice;
    bad.n_images = 3;
    assert_int_equal(store_profile_import(f->s, &bad, false), -EINVAL);
    model_image ftp[] = { images_el9[0], images_el9[1] };
    ftp[1].url = (char[]){ "ftp://mirror/initrd" };
    bad.images = ftp;
    bad.n_images = 2;
    assert_int_equal(store_profile_import(f->s, &bad, false), -EINVAL);
    ftp[1].url = images_el9[1].url;
    ftp[1].name = (char[]){ "../initrd" };
    assert_int_equal(store_profile_import(f->s, &bad, false), -EINVAL);
    assert_int_equal(store_profile_get(f->s, "bad", false, profile_cb, &o), -ENOENT);
}

/* Whether the suite runs on SQLite. The tests that build a store of an
 * older schema by hand and open it (so migrate it) do so only there: the
 * old schema is written as SQLite SQL into a file. PostgreSQL's migrations
 * run from an empty database in test_pg_migration_race. */
static bool on_sqlite(void)
{
    return strcmp(backend->name, "sqlite") == 0;
}

/* A store of schema `version` (its migrations run by hand) holding profile
 * "old" with the columns every version has, opened (so migrated to the
 * current schema). Its file's path is left in `path`. */
static store *open_old_store_with_profile(fixture *f, int version, char *path, size_t size)
{
    snprintf(path, size, "%s/v%d.db", f->dir, version);
    for (int v = 1; v <= version; v++) {
        assert_int_equal(exec_sql(path, store_migration_sql(v)), SQLITE_OK);
    }
    char sql[512];
    snprintf(sql, sizeof(sql),
             "PRAGMA user_version = %d;"
             "INSERT INTO profiles (name, cmdline, kickstart, kickstart_sha256, overlay, ip_mode, "
             "keep_ra, updated_ms) VALUES ('old', '', '', zeroblob(32), 0, 0, 1, 0);",
             version);
    int rc = exec_sql(path, sql);
    if (rc != SQLITE_OK) {
        fail_msg("building the v%d store: %d", version, rc);
    }
    store *old = NULL;
    assert_int_equal(store_open(path, &old, NULL), 0);
    assert_int_equal(store_schema_version(old), STORE_SCHEMA_VERSION);
    return old;
}

/* A profile's root_device is kept, replaced and cleared with the profile;
 * an invalid one is refused; a schema-5 store's profiles have none. */
static void test_profile_root_device(void **state)
{
    fixture *f = *state;
    model_profile p = {
        .name = (char[]){ "deb12" },
        .images = images_el9,
        .n_images = 2,
        .root_device = (char[]){ "/dev/disk/by-path/pci-0000:00:04.0" },
    };
    assert_int_equal(store_profile_import(f->s, &p, false), 0);
    profile_out o = { 0 };
    assert_int_equal(store_profile_get(f->s, "deb12", false, profile_cb, &o), 0);
    assert_string_equal(o.root_device, "/dev/disk/by-path/pci-0000:00:04.0");
    p.root_device = (char[]){ "auto" };
    assert_int_equal(store_profile_import(f->s, &p, true), 0);
    memset(&o, 0, sizeof(o));
    assert_int_equal(store_profile_get(f->s, "deb12", false, profile_cb, &o), 0);
    assert_string_equal(o.root_device, "auto");
    p.root_device = NULL;
    assert_int_equal(store_profile_import(f->s, &p, true), 0);
    memset(&o, 0, sizeof(o));
    assert_int_equal(store_profile_get(f->s, "deb12", false, profile_cb, &o), 0);
    assert_string_equal(o.root_device, "-");
    p.root_device = (char[]){ "/dev/../etc/shadow" };
    assert_int_equal(store_profile_import(f->s, &p, true), -EINVAL);
    assert_non_null(strstr(store_errmsg(f->s), "root_device"));

    /* Schema 5 (before root_device) migrates with its profiles intact. */
    if (!on_sqlite()) {
        return;
    }
    char path[300];
    store *old = open_old_store_with_profile(f, 5, path, sizeof(path));
    memset(&o, 0, sizeof(o));
    assert_int_equal(store_profile_get(old, "old", false, profile_cb, &o), 0);
    assert_string_equal(o.root_device, "-");
    store_close(old);
    assert_integrity(path);
}

/* A profile's uefi_boot is kept and replaced with the profile; a schema-8
 * store's profiles boot through iPXE, as before. */
static void test_profile_uefi_boot(void **state)
{
    fixture *f = *state;
    model_profile p = {
        .name = (char[]){ "el9uki" },
        .images = images_el9,
        .n_images = 2,
        .uefi = UEFI_BOOT_UKI,
    };
    assert_int_equal(store_profile_import(f->s, &p, false), 0);
    profile_out o = { 0 };
    assert_int_equal(store_profile_get(f->s, "el9uki", false, profile_cb, &o), 0);
    assert_int_equal(o.uefi, UEFI_BOOT_UKI);
    p.uefi = UEFI_BOOT_IPXE;
    assert_int_equal(store_profile_import(f->s, &p, true), 0);
    memset(&o, 0, sizeof(o));
    assert_int_equal(store_profile_get(f->s, "el9uki", false, profile_cb, &o), 0);
    assert_int_equal(o.uefi, UEFI_BOOT_IPXE);
    p.uefi = (uefi_boot)7;
    assert_int_equal(store_profile_import(f->s, &p, true), -EINVAL);
    assert_non_null(strstr(store_errmsg(f->s), "uefi_boot"));

    if (!on_sqlite()) {
        return;
    }
    char path[300];
    store *old = open_old_store_with_profile(f, 8, path, sizeof(path));
    memset(&o, 0, sizeof(o));
    o.uefi = UEFI_BOOT_UKI;
    assert_int_equal(store_profile_get(old, "old", false, profile_cb, &o), 0);
    assert_int_equal(o.uefi, UEFI_BOOT_IPXE);
    store_close(old);
    assert_integrity(path);
}

/* The wire form of `p`, packed and unpacked as a peer would get it, back
 * into a model profile. */
static void through_wire(const model_profile *p, model_profile *ret)
{
    Rackboot__V1__Profile *m = NULL;
    assert_int_equal(model_profile_to_pb(p, false, NULL, &m), 0);
    assert_int_equal(rbproto_validate_profile(m), 0);
    size_t len = protobuf_c_message_get_packed_size(&m->base);
    uint8_t *buf = malloc(len + 1);
    assert_non_null(buf);
    protobuf_c_message_pack(&m->base, buf);
    model_pb_free(m, NULL);
    Rackboot__V1__Profile *back = rackboot__v1__profile__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(back);
    assert_int_equal(rbproto_validate_profile(back), 0);
    assert_int_equal(model_profile_from_pb(back, ret), 0);
    model_pb_free(back, NULL);
}

static int copy_profile_cb(const model_profile *p, void *userdata)
{
    return model_profile_copy(p, userdata);
}

static void expect_same_image_profile(const model_profile *a, const model_profile *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->n_images, b->n_images);
    for (size_t i = 0; i < a->n_images; i++) {
        assert_string_equal(a->images[i].name, b->images[i].name);
        assert_int_equal(a->images[i].kind, b->images[i].kind);
        assert_string_equal(a->images[i].url, b->images[i].url);
        assert_memory_equal(a->images[i].sha256, b->images[i].sha256, 32);
    }
    assert_string_equal(a->root_device, b->root_device);
    assert_int_equal(a->n_ssh_keys, b->n_ssh_keys);
    for (size_t i = 0; i < a->n_ssh_keys; i++) {
        assert_string_equal(a->ssh_keys[i], b->ssh_keys[i]);
    }
    assert_string_equal(a->user_data, b->user_data);
    assert_string_equal(a->cmdline ? a->cmdline : "", b->cmdline ? b->cmdline : "");
}

/* An image profile from a hosts file, through the wire into the store and
 * out through the wire again, arrives whole (issue 14's round trip); then
 * a schema-7 store with an install profile migrates to 8 (images rebuilt
 * for the disk kind) and takes an image profile beside it. */
static void test_profile_image_round_trip(void **state)
{
    fixture *f = *state;
    char path[300], ud[300];
    snprintf(ud, sizeof(ud), "%s/deb12.user-data", f->dir);
    FILE *u = fopen(ud, "we");
    assert_non_null(u);
    fputs("#cloud-config\npackages: [htop]\nruncmd:\n  - echo {{hostname}}\n", u);
    assert_int_equal(fclose(u), 0);
    snprintf(path, sizeof(path), "%s/hosts.conf", f->dir);
    FILE *h = fopen(path, "we");
    assert_non_null(h);
    fputs("[profile deb12]\n"
          "kind = image\n"
          "image = http://origin.example/debian-12-amd64.raw.zst sha256="
          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
          "root_device = auto\n"
          "ssh_authorized_keys = ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA ops@example\n"
          "ssh_authorized_keys = ssh-rsa AAAAB3NzaC1yc2E= \"odd\": #comment, - [x]\n"
          "user_data = deb12.user-data\n"
          "cmdline = console=ttyS0\n",
          h);
    assert_int_equal(fclose(h), 0);
    diag *d = diag_new();
    hostsfile *hf = NULL;
    int r = hostsfile_read(path, NULL, d, &hf);
    if (r < 0) {
        diag_print(d, stderr);
    }
    assert_int_equal(r, 0);
    diag_free(d);
    const model_profile *file = &hf->profiles[0].p;
    assert_int_equal(file->kind, PROFILE_IMAGE);
    assert_int_equal(model_profile_check(file, NULL, 0), 0);

    model_profile sent;
    through_wire(file, &sent);
    expect_same_image_profile(file, &sent);
    assert_int_equal(store_profile_import(f->s, &sent, false), 0);
    model_profile stored = { 0 };
    assert_int_equal(store_profile_get(f->s, "deb12", true, copy_profile_cb, &stored), 0);
    model_profile got;
    through_wire(&stored, &got);
    expect_same_image_profile(file, &got);
    /* Listings leave the template out, not the keys. */
    model_profile listed = { 0 };
    assert_int_equal(store_profile_get(f->s, "deb12", false, copy_profile_cb, &listed), 0);
    assert_null(listed.user_data);
    assert_int_equal(listed.n_ssh_keys, 2);
    assert_int_equal(listed.kind, PROFILE_IMAGE);
    model_profile_clear(&listed);
    model_profile_clear(&got);
    model_profile_clear(&stored);

    /* The rules refuse what the wire refuses. */
    sent.kind = PROFILE_INSTALL;
    assert_int_equal(store_profile_import(f->s, &sent, true), -EINVAL);
    sent.kind = PROFILE_IMAGE;
    free(sent.ssh_keys[1]);
    sent.ssh_keys[1] = strdup("ssh-ed25519 AAAA ops\nhostname: evil");
    assert_int_equal(store_profile_import(f->s, &sent, true), -EINVAL);
    model_profile_clear(&sent);
    hostsfile_free(hf);

    /* Schema 7 with an install profile and its images migrates. */
    if (!on_sqlite()) {
        return;
    }
    snprintf(path, sizeof(path), "%s/v7.db", f->dir);
    for (int v = 1; v <= 7; v++) {
        assert_int_equal(exec_sql(path, store_migration_sql(v)), SQLITE_OK);
    }
    int rc =
        exec_sql(path, "PRAGMA user_version = 7;"
                       "INSERT INTO profiles (id, name, cmdline, kickstart, kickstart_sha256, "
                       "overlay, ip_mode, keep_ra, updated_ms) VALUES (3, 'el9', '', '', "
                       "zeroblob(32), 0, 0, 1, 0);"
                       "INSERT INTO images (id, sha256, url, size, name, kind) VALUES "
                       "(7, zeroblob(32), 'http://m/vmlinuz', 0, 'vmlinuz', 1),"
                       "(8, randomblob(32), 'http://m/initrd.img', 0, 'initrd.img', 2);"
                       "INSERT INTO profile_images (profile_id, position, image_id, kind, name) "
                       "VALUES (3, 0, 7, 1, 'vmlinuz'), (3, 1, 8, 2, 'initrd.img');");
    if (rc != SQLITE_OK) {
        fail_msg("building the v7 store: %d", rc);
    }
    store *old = NULL;
    assert_int_equal(store_open(path, &old, NULL), 0);
    assert_int_equal(store_schema_version(old), STORE_SCHEMA_VERSION);
    model_profile el9 = { 0 };
    assert_int_equal(store_profile_get(old, "el9", false, copy_profile_cb, &el9), 0);
    assert_int_equal(el9.kind, PROFILE_INSTALL);
    assert_int_equal(el9.n_images, 2);
    assert_int_equal(el9.images[0].kind, IMAGE_KERNEL);
    assert_string_equal(el9.images[1].url, "http://m/initrd.img");
    assert_int_equal(el9.n_ssh_keys, 0);
    model_profile_clear(&el9);
    model_profile img = {
        .name = (char[]){ "deb12" },
        .kind = PROFILE_IMAGE,
        .images = &(model_image){ .name = (char[]){ "disk.img" },
                                  .kind = IMAGE_DISK,
                                  .url = (char[]){ "http://m/deb12.raw.xz" } },
        .n_images = 1,
    };
    assert_int_equal(store_profile_import(old, &img, false), 0);
    model_profile back = { 0 };
    assert_int_equal(store_profile_get(old, "deb12", true, copy_profile_cb, &back), 0);
    assert_int_equal(back.images[0].kind, IMAGE_DISK);
    model_profile_clear(&back);
    store_close(old);
    assert_integrity(path);
}

/* A debian-installer profile keeps its kind, keys and preseed through the
 * store and the wire; a store from before kind 2 (schema 9) keeps its
 * image profiles' kind through the migration that widens the column. */
static void test_profile_debian_installer(void **state)
{
    fixture *f = *state;
    char key[] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ops@example.com";
    model_profile p = di_profile();
    p.ssh_keys = (char *[]){ key };
    p.n_ssh_keys = 1;
    assert_int_equal(store_profile_import(f->s, &p, false), 0);
    model_profile back = { 0 };
    assert_int_equal(store_profile_get(f->s, "deb12-di", true, copy_profile_cb, &back), 0);
    assert_int_equal(back.kind, PROFILE_DEBIAN_INSTALLER);
    assert_int_equal(back.n_ssh_keys, 1);
    assert_string_equal(back.ssh_keys[0], key);
    assert_string_equal(back.kickstart, p.kickstart);
    model_profile wire = { 0 };
    through_wire(&back, &wire);
    assert_int_equal(wire.kind, PROFILE_DEBIAN_INSTALLER);
    assert_int_equal(wire.n_ssh_keys, 1);
    model_profile_clear(&wire);
    model_profile_clear(&back);
    p.overlay = true; /* d-i runs no dracut hook */
    assert_int_equal(store_profile_import(f->s, &p, true), -EINVAL);

    if (!on_sqlite()) {
        return;
    }
    char path[300];
    snprintf(path, sizeof(path), "%s/v9.db", f->dir);
    for (int v = 1; v <= 9; v++) {
        assert_int_equal(exec_sql(path, store_migration_sql(v)), SQLITE_OK);
    }
    assert_int_equal(exec_sql(path, "PRAGMA user_version = 9;"
                                    "INSERT INTO profiles (name, cmdline, kickstart, "
                                    "kickstart_sha256, overlay, ip_mode, keep_ra, updated_ms, "
                                    "kind) VALUES ('img', '', '', zeroblob(32), 0, 0, 1, 0, 1);"),
                     SQLITE_OK);
    store *old = NULL;
    assert_int_equal(store_open(path, &old, NULL), 0);
    assert_int_equal(store_schema_version(old), STORE_SCHEMA_VERSION);
    assert_int_equal(store_profile_get(old, "img", false, copy_profile_cb, &back), 0);
    assert_int_equal(back.kind, PROFILE_IMAGE);
    model_profile_clear(&back);
    p.overlay = false;
    assert_int_equal(store_profile_import(old, &p, false), 0);
    assert_int_equal(store_profile_get(old, "deb12-di", true, copy_profile_cb, &back), 0);
    assert_int_equal(back.kind, PROFILE_DEBIAN_INSTALLER);
    model_profile_clear(&back);
    store_close(old);
    assert_integrity(path);
}

typedef struct rack_out {
    int n;
    char names[8][64];
    store_rack rows[8];
    char agent[64];
} rack_out;

static int rack_cb(const store_rack *r, void *userdata)
{
    rack_out *o = userdata;
    snprintf(o->names[o->n], sizeof(o->names[0]), "%s", r->name);
    if (r->agent[0]) {
        snprintf(o->agent, sizeof(o->agent), "%s", r->agent);
    }
    o->rows[o->n++] = *r;
    return 0;
}

static void test_racks(void **state)
{
    fixture *f = *state;
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, NULL), 0);
    assert_int_equal(store_agent_seen(f->s, "r1", 1, "agent-r1", "0.1.0", T0 + 9), 0);
    assert_int_equal(store_agent_ack(f->s, "r1", 1, 2, T0 + 10), 1);
    assert_int_equal(store_agent_seen(f->s, "r3", 1, "agent-r3", "0.1.0", T0 + 9),
                     0); /* new rack */
    assert_int_equal(store_agent_seen(f->s, "r 3", 1, "a", "0.1.0", T0), -EINVAL);
    rack_out o = { 0 };
    assert_int_equal(store_racks_list(f->s, rack_cb, &o), 0);
    assert_int_equal(o.n, 3);
    assert_string_equal(o.names[0], "r1");
    assert_string_equal(o.agent, "agent-r3");
    assert_int_equal(o.rows[0].hosts, 3);
    assert_int_equal(o.rows[0].active_installs, 1);
    assert_int_equal(o.rows[0].generation, 2);
    assert_int_equal(o.rows[0].acked_generation, 2);
    assert_int_equal(o.rows[0].last_seen_ms, T0 + 10);
    assert_int_equal(o.rows[1].hosts, 1);
    assert_int_equal(o.rows[1].last_seen_ms, 0);
    assert_int_equal(o.rows[2].hosts, 0);
    assert_int_equal(o.rows[2].generation, 1);
}

typedef struct agents_out {
    int n;
    char racks[8][64], names[8][64];
    store_agent_row rows[8];
} agents_out;

static int agents_cb(const store_agent_row *a, void *userdata)
{
    agents_out *o = userdata;
    assert_true(o->n < 8);
    snprintf(o->racks[o->n], sizeof(o->racks[0]), "%s", a->rack);
    snprintf(o->names[o->n], sizeof(o->names[0]), "%s", a->agent);
    o->rows[o->n++] = *a;
    return 0;
}

/* A rack served by a pair (issue 17): each agent has its own acks,
 * journal and seqs; the first ack of either dispatches; a progress phase
 * both report counts once, and in order. */
static void test_two_agents(void **state)
{
    fixture *f = *state;
    char id[STORE_ID_LEN + 1];
    store_event_result res[4];
    uint64_t through = 0;
    assert_int_equal(store_agent_seen(f->s, "r1", 2, "r1/2", "0.1.0", T0 + 1), 0);
    assert_int_equal(store_agent_seen(f->s, "r1", 1, "r1", "0.1.0", T0 + 2), 0);
    assert_int_equal(store_agent_seen(f->s, "r1", 0, "r1", "0.1.0", T0), -EINVAL);
    assert_int_equal(
        store_agent_seen(f->s, "r1", STORE_AGENT_INSTANCE_MAX + 1, "r1/x", "0.1.0", T0), -EINVAL);
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), 0);
    uint64_t g = generation(f->s, "r1");

    /* the secondary acks first: that dispatches; the primary's ack later
     * is its own record */
    assert_int_equal(store_agent_ack(f->s, "r1", 2, g, T0 + 10), 1);
    assert_int_equal(status(f->s, "web1").state, INSTALL_DISPATCHED);
    assert_int_equal(store_agent_ack(f->s, "r1", 1, g, T0 + 11), 0);
    assert_int_equal(store_agent_ack(f->s, "r1", 10, g, T0 + 11), -EINVAL);

    /* each journal its own: seq 1 of each agent is a different event, and
     * a new journal of one does not touch the other's */
    assert_int_equal(store_agent_journal(f->s, "r1", 1, "j-one"), 0);
    assert_int_equal(store_agent_journal(f->s, "r1", 2, "j-two"), 0);
    store_event a1[] = { ev(1, id, "web1", P(DHCP_BOUND)), ev(2, id, "web1", P(SCRIPT_SERVED)) };
    assert_int_equal(store_events_ingest(f->s, "r1", 1, a1, 2, T0 + 20, res, &through), 2);
    assert_int_equal(through, 2);
    /* the secondary saw the same host bind and fetch the script (its seqs
     * 1, 2), then the kernel fetch came to it: two duplicates and a move */
    store_event a2[] = { ev(1, id, "web1", P(DHCP_BOUND)), ev(2, id, "web1", P(SCRIPT_SERVED)),
                         ev(3, id, "web1", P(KERNEL_FETCHED)) };
    assert_int_equal(store_events_ingest(f->s, "r1", 2, a2, 3, T0 + 21, res, &through), 1);
    assert_int_equal(res[0], STORE_EVENT_DUPLICATE);
    assert_int_equal(res[1], STORE_EVENT_DUPLICATE);
    assert_int_equal(res[2], STORE_EVENT_STORED);
    assert_int_equal(through, 3); /* the duplicates are handled: acked */
    assert_int_equal(host_events(f->s, "web1"), 3);
    assert_int_equal(status(f->s, "web1").phase, P(KERNEL_FETCHED));
    /* re-sent to another controller after a crash: nothing new */
    assert_int_equal(store_events_ingest(f->s, "r1", 2, a2, 3, T0 + 22, res, &through), 0);
    assert_int_equal(host_events(f->s, "web1"), 3);
    /* the primary's late report of the kernel: the secondary's counted */
    store_event late = ev(3, id, "web1", P(KERNEL_FETCHED));
    assert_int_equal(store_events_ingest(f->s, "r1", 1, &late, 1, T0 + 23, res, &through), 0);
    assert_int_equal(res[0], STORE_EVENT_DUPLICATE);
    assert_int_equal(through, 3);
    /* a phase the same agent reports again (the host rebooted) is kept */
    store_event again = ev(4, id, "web1", P(DHCP_BOUND));
    assert_int_equal(store_events_ingest(f->s, "r1", 1, &again, 1, T0 + 24, res, &through), 1);
    assert_int_equal(status(f->s, "web1").phase, P(KERNEL_FETCHED)); /* never backwards */
    /* the end, through the secondary */
    store_event done = ev(4, id, "web1", P(INSTALLED));
    assert_int_equal(store_events_ingest(f->s, "r1", 2, &done, 1, T0 + 25, res, &through), 1);
    assert_int_equal(status(f->s, "web1").state, INSTALL_INSTALLED);
    assert_int_equal(store_agent_journal(f->s, "r1", 2, "j-two-wiped"), 1);
    assert_int_equal(store_agent_journal(f->s, "r1", 1, "j-one"), 0);
    assert_int_equal(store_events_ingest(f->s, "r1", 0, &done, 1, T0, res, &through), -EINVAL);

    /* the racks listing shows the first agent and how many; the agents
     * listing each */
    rack_out o = { 0 };
    assert_int_equal(store_racks_list(f->s, rack_cb, &o), 0);
    assert_string_equal(o.names[0], "r1");
    assert_int_equal(o.rows[0].agents, 2);
    assert_int_equal(o.rows[0].acked_generation, g);
    assert_int_equal(o.rows[0].stored_through, 4);
    assert_int_equal(o.rows[1].agents, 0);
    agents_out a = { 0 };
    assert_int_equal(store_agents_list(f->s, agents_cb, &a), 0);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.racks[0], "r1");
    assert_string_equal(a.names[0], "r1");
    assert_int_equal(a.rows[0].instance, 1);
    assert_string_equal(a.names[1], "r1/2");
    assert_int_equal(a.rows[1].instance, 2);
    assert_int_equal(a.rows[1].stored_through, 0); /* its new journal */
    assert_int_equal(a.rows[1].acked_generation, g);
    uint64_t through1 = 0;
    assert_int_equal(store_rack_get(f->s, "r1", NULL, &through1), 0);
    assert_int_equal(through1, 4); /* agent 1's */
}

/* An agent's report (AgentStatus): its cache use in the racks listing, its
 * render context kept as sent, and kept when a later report has none. */
static void test_agent_status(void **state)
{
    fixture *f = *state;
    static const uint8_t ctx1[] = { 0x0a, 0x03, 'a', 'b', 'c' };
    static const uint8_t ctx2[] = { 0x0a, 0x02, 'd', 'e' };
    void *blob = NULL;
    size_t len = 0;
    assert_int_equal(store_agent_seen(f->s, "r1", 1, "agent-r1", "0.1.0", T0), 0);
    assert_int_equal(store_agent_render_context(f->s, "r1", &blob, &len), -ENOENT);
    assert_null(blob);
    assert_int_equal(store_agent_render_context(f->s, "nope", &blob, &len), -ENOENT);

    store_agent_status st = { .cache_bytes = 1288490189,
                              .cache_limit_bytes = 20ull << 30,
                              .render_context = ctx1,
                              .render_context_len = sizeof(ctx1) };
    assert_int_equal(store_agent_status_set(f->s, "r1", 1, &st, T0 + 5), 0);
    assert_int_equal(store_agent_render_context(f->s, "r1", &blob, &len), 0);
    assert_int_equal(len, sizeof(ctx1));
    assert_memory_equal(blob, ctx1, sizeof(ctx1));
    free(blob);

    rack_out o = { 0 };
    assert_int_equal(store_racks_list(f->s, rack_cb, &o), 0);
    assert_string_equal(o.names[0], "r1");
    assert_int_equal(o.rows[0].cache_bytes, 1288490189);
    assert_int_equal(o.rows[0].cache_limit_bytes, 20ull << 30);
    assert_int_equal(o.rows[0].status_ms, T0 + 5);
    assert_int_equal(o.rows[0].last_seen_ms, T0 + 5);
    assert_true(o.rows[0].has_render_context);
    assert_int_equal(o.rows[1].status_ms, 0); /* r2: no report */
    assert_false(o.rows[1].has_render_context);

    /* No render context this time: the stored one stays. */
    st = (store_agent_status){ .cache_bytes = 7 };
    assert_int_equal(store_agent_status_set(f->s, "r1", 1, &st, T0 + 6), 0);
    assert_int_equal(store_agent_render_context(f->s, "r1", &blob, &len), 0);
    assert_memory_equal(blob, ctx1, sizeof(ctx1));
    free(blob);
    st.render_context = ctx2;
    st.render_context_len = sizeof(ctx2);
    assert_int_equal(store_agent_status_set(f->s, "r1", 1, &st, T0 + 7), 0);
    assert_int_equal(store_agent_render_context(f->s, "r1", &blob, &len), 0);
    assert_int_equal(len, sizeof(ctx2));
    assert_memory_equal(blob, ctx2, sizeof(ctx2));
    free(blob);
    memset(&o, 0, sizeof(o));
    assert_int_equal(store_racks_list(f->s, rack_cb, &o), 0);
    assert_int_equal(o.rows[0].cache_bytes, 7);
    assert_int_equal(o.rows[0].cache_limit_bytes, 0);
    assert_int_equal(o.rows[0].status_ms, T0 + 7);

    /* The same report again within a minute writes nothing; a minute on,
     * it refreshes "last seen"; a change is written at once. */
    assert_int_equal(store_agent_status_set(f->s, "r1", 1, &st, T0 + 7 + 59999), 0);
    memset(&o, 0, sizeof(o));
    assert_int_equal(store_racks_list(f->s, rack_cb, &o), 0);
    assert_int_equal(o.rows[0].status_ms, T0 + 7);
    assert_int_equal(store_agent_status_set(f->s, "r1", 1, &st, T0 + 7 + 60000), 0);
    memset(&o, 0, sizeof(o));
    assert_int_equal(store_racks_list(f->s, rack_cb, &o), 0);
    assert_int_equal(o.rows[0].status_ms, T0 + 7 + 60000);
    assert_int_equal(o.rows[0].last_seen_ms, T0 + 7 + 60000);
    st.cache_bytes = 8;
    assert_int_equal(store_agent_status_set(f->s, "r1", 1, &st, T0 + 7 + 60001), 0);
    memset(&o, 0, sizeof(o));
    assert_int_equal(store_racks_list(f->s, rack_cb, &o), 0);
    assert_int_equal(o.rows[0].status_ms, T0 + 7 + 60001);
    assert_int_equal(o.rows[0].cache_bytes, 8);

    assert_int_equal(store_agent_status_set(f->s, "nope", 1, &st, T0), -ENOENT);
    assert_int_equal(store_agent_status_set(f->s, "r 1", 1, &st, T0), -EINVAL);
    st.cache_bytes = (uint64_t)INT64_MAX + 1;
    assert_int_equal(store_agent_status_set(f->s, "r1", 1, &st, T0), -EINVAL);
}

static int status_count_cb(const store_status *st, void *userdata)
{
    int *n = userdata;
    if (st->state == 0) {
        assert_string_equal(st->install_id, "");
    }
    (*n)++;
    return 0;
}

static int stop_cb(const store_status *st, void *userdata)
{
    return -ECANCELED;
}

static void test_status_list(void **state)
{
    fixture *f = *state;
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, NULL), 0);
    int n = 0;
    assert_int_equal(store_status_list(f->s, NULL, status_count_cb, &n), 4);
    assert_int_equal(n, 4);
    n = 0;
    assert_int_equal(store_status_list(f->s, RACKS("r2"), status_count_cb, &n), 1);
    assert_int_equal(n, 1);
    assert_int_equal(status(f->s, "web2").state, 0); /* never installed */
    assert_int_equal(store_status_get(f->s, "ghost", status_count_cb, &n), -ENOENT);
    /* a callback's error stops the listing and is returned */
    assert_int_equal(store_status_list(f->s, NULL, stop_cb, NULL), -ECANCELED);
    assert_int_equal(store_status_list(f->s, NULL, status_count_cb, &n), 4);
}

/* ---- Pages of listings by host name ------------------------------------ */

#define PAGE_MAX 64

typedef struct names_out {
    size_t n;
    char names[PAGE_MAX][STORE_NAME_MAX + 1];
    char racks[PAGE_MAX][STORE_NAME_MAX + 1];
    store_host hosts[PAGE_MAX];     /* hosts listings */
    install_state states[PAGE_MAX]; /* status listings */
} names_out;

static void names_add(names_out *o, const char *name, const char *rack)
{
    assert_true(o->n < PAGE_MAX);
    snprintf(o->names[o->n], sizeof(o->names[0]), "%s", name);
    snprintf(o->racks[o->n], sizeof(o->racks[0]), "%s", rack);
    o->n++;
}

static int page_host_cb(const store_host *h, void *userdata)
{
    names_out *o = userdata;
    names_add(o, h->name, h->rack);
    o->hosts[o->n - 1] = *h;
    return 0;
}

static int page_status_cb(const store_status *st, void *userdata)
{
    names_out *o = userdata;
    names_add(o, st->host, st->rack);
    o->states[o->n - 1] = st->state;
    return 0;
}

/* Lists page after page of `limit` from the first, as the API's caller
 * does: each page's rows come after the last name of the page before, in
 * name order (so no two pages overlap), and the listing ends with the
 * first page short of `limit`. Returns every row. */
static names_out *page_through(store *s, bool status_rows, const char *const *racks, size_t n_racks,
                               uint32_t limit)
{
    names_out *all = calloc(1, sizeof(*all));
    names_out *page = calloc(1, sizeof(*page));
    char after[STORE_NAME_MAX + 1] = "";
    assert_non_null(all);
    assert_non_null(page);
    for (;;) {
        memset(page, 0, sizeof(*page));
        store_page pg = { .racks = racks, .n_racks = n_racks, .after = after, .limit = limit };
        int r = status_rows ? store_status_list(s, &pg, page_status_cb, page)
                            : store_hosts_list(s, &pg, page_host_cb, page);
        assert_int_equal(r, (int)page->n);
        assert_true(page->n <= limit);
        for (size_t i = 0; i < page->n; i++) {
            if (strcmp(page->names[i], after) <= 0) {
                fail_msg("page after %s holds %s", after, page->names[i]);
            }
            snprintf(after, sizeof(after), "%s", page->names[i]);
            names_add(all, page->names[i], page->racks[i]);
            all->hosts[all->n - 1] = page->hosts[i];
            all->states[all->n - 1] = page->states[i];
        }
        if (page->n < limit) {
            break;
        }
    }
    free(page);
    return all;
}

/* Whether two listings hold the same rows (names and racks) in the same
 * order. */
static void assert_same_rows(const names_out *a, const names_out *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_string_equal(a->names[i], b->names[i]);
        assert_string_equal(a->racks[i], b->racks[i]);
    }
}

/* setup()'s four hosts, and 23 more in r3, r4, r5, their names taken
 * round the racks so every rack's hosts interleave with the others', and
 * names whose byte order is not their "natural" one (Zed before a0,
 * web10 before web2). */
static void add_page_hosts(store *s)
{
    for (unsigned i = 0; i < 20; i++) {
        char name[16], rack[8];
        snprintf(name, sizeof(name), "n%02u", 19 - i);
        snprintf(rack, sizeof(rack), "r%u", 3 + i % 3);
        add_host(s, name, rack, 300 + i);
    }
    add_host(s, "Zed", "r3", 330);
    add_host(s, "web10", "r1", 331);
    add_host(s, "x.y-z_1", "r5", 332);
}

static void test_hosts_pages(void **state)
{
    fixture *f = *state;
    add_page_hosts(f->s);
    /* A host with two MACs and a learned DUID: its page row is whole. */
    store_host two = make_host("n07b", "r4", 340);
    two.n_macs = 2;
    memcpy(two.macs[1], (uint8_t[]){ 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc }, 6);
    assert_int_equal(store_host_add(f->s, &two, false), 0);
    char id[STORE_ID_LEN + 1];
    uint64_t through;
    assert_int_equal(store_install_create(f->s, "n07b", "el9", false, T0, id), 0);
    const uint8_t duid[] = { 0x00, 0x04, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07 };
    store_event e = ev(1, id, "n07b", P(DUID_LEARNED));
    e.mac = two.macs[1];
    e.duid = duid;
    e.duid_len = sizeof(duid);
    assert_int_equal(store_events_ingest(f->s, "r4", 1, &e, 1, T0, NULL, &through), 1);

    names_out *whole = calloc(1, sizeof(*whole));
    assert_non_null(whole);
    assert_int_equal(store_hosts_list(f->s, NULL, page_host_cb, whole), 28);
    /* By name in byte order. */
    for (size_t i = 1; i < whole->n; i++) {
        assert_true(strcmp(whole->names[i - 1], whole->names[i]) < 0);
    }
    assert_string_equal(whole->names[0], "Zed");
    assert_string_equal(whole->names[whole->n - 1], "x.y-z_1");
    /* Each listed host is the host store_host_get() gives: MACs in
     * order, DUID, address, gateway, hostname. */
    for (size_t i = 0; i < whole->n; i++) {
        store_host h;
        assert_int_equal(store_host_get(f->s, whole->names[i], &h), 0);
        const store_host *l = &whole->hosts[i];
        assert_string_equal(l->rack, h.rack);
        assert_int_equal(l->n_macs, h.n_macs);
        assert_memory_equal(l->macs, h.macs, h.n_macs * 6);
        assert_memory_equal(l->address, h.address, 16);
        assert_int_equal(l->prefix_length, h.prefix_length);
        assert_int_equal(l->has_gateway, h.has_gateway);
        assert_string_equal(l->hostname, h.hostname);
        assert_int_equal(l->duid_len, h.duid_len);
        assert_memory_equal(l->duid, h.duid, h.duid_len);
        if (streq(l->name, "n07b")) {
            assert_int_equal(l->n_macs, 2);
            assert_memory_equal(l->macs[1], two.macs[1], 6);
            assert_int_equal(l->duid_len, sizeof(duid));
            assert_memory_equal(l->duid, duid, sizeof(duid));
        }
    }

    /* Pages of every size give the whole listing, pages of 1 and of the
     * exact count included. */
    const uint32_t sizes[] = { 1, 2, 3, 7, 27, 28, 29, 1000 };
    for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
        names_out *paged = page_through(f->s, false, NULL, 0, sizes[k]);
        assert_same_rows(paged, whole);
        free(paged);
    }

    /* One rack, and a set of racks: their hosts only, merged by name. */
    names_out *r4 = page_through(f->s, false, (const char *[]){ "r4" }, 1, 2);
    assert_int_equal(r4->n, 8);
    for (size_t i = 0; i < r4->n; i++) {
        assert_string_equal(r4->racks[i], "r4");
    }
    free(r4);
    const char *set[] = { "r5", "r1", "r3", "nope" };
    names_out *some = page_through(f->s, false, set, ARRAY_SIZE(set), 4);
    names_out *expect = calloc(1, sizeof(*expect));
    assert_non_null(expect);
    for (size_t i = 0; i < whole->n; i++) {
        if (!streq(whole->racks[i], "r2") && !streq(whole->racks[i], "r4")) {
            names_add(expect, whole->names[i], whole->racks[i]);
        }
    }
    assert_same_rows(some, expect);
    free(expect);
    free(some);

    /* The page after a name no host has, after the last, of a rack
     * nobody has. */
    names_out *o = calloc(1, sizeof(*o));
    assert_non_null(o);
    store_page pg = { .after = "n07a", .limit = 2 };
    assert_int_equal(store_hosts_list(f->s, &pg, page_host_cb, o), 2);
    assert_string_equal(o->names[0], "n07b");
    assert_string_equal(o->names[1], "n08");
    pg.after = "x.y-z_1";
    assert_int_equal(store_hosts_list(f->s, &pg, page_host_cb, o), 0);
    assert_int_equal(store_hosts_list(f->s, RACKS("r9"), page_host_cb, o), 0);

    /* Names are checked: after, and every rack. */
    pg.after = "n 07";
    assert_int_equal(store_hosts_list(f->s, &pg, page_host_cb, o), -EINVAL);
    assert_int_equal(store_hosts_list(f->s, RACKS("r1", "r\"]"), page_host_cb, o), -EINVAL);
    assert_int_equal(store_status_list(f->s, RACKS("r1", ""), page_status_cb, o), -EINVAL);
    free(o);
    free(whole);
}

static void test_status_pages(void **state)
{
    fixture *f = *state;
    add_page_hosts(f->s);
    assert_int_equal(store_install_create(f->s, "n03", "el9", false, T0, NULL), 0);
    assert_int_equal(store_install_create(f->s, "web2", "el9", false, T0, NULL), 0);
    assert_int_equal(store_install_cancel(f->s, "web2", T0 + 1, NULL), 0);
    assert_int_equal(store_install_create(f->s, "web2", "el9", false, T0 + 2, NULL), 0);

    names_out *whole = calloc(1, sizeof(*whole));
    assert_non_null(whole);
    assert_int_equal(store_status_list(f->s, NULL, page_status_cb, whole), 27);
    const uint32_t sizes[] = { 1, 4, 26, 27, 28 };
    for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
        names_out *paged = page_through(f->s, true, NULL, 0, sizes[k]);
        assert_same_rows(paged, whole);
        /* A row per host, its latest install's state. */
        for (size_t i = 0; i < paged->n; i++) {
            install_state want = streq(paged->names[i], "n03") || streq(paged->names[i], "web2")
                                     ? INSTALL_REQUESTED
                                     : 0;
            assert_int_equal(paged->states[i], want);
        }
        free(paged);
    }
    names_out *r3 = page_through(f->s, true, (const char *[]){ "r3" }, 1, 3);
    assert_int_equal(r3->n, 8); /* 7 n.. and Zed */
    assert_string_equal(r3->names[0], "Zed");
    free(r3);
    const char *set[] = { "r2", "r5" };
    names_out *some = page_through(f->s, true, set, 2, 3);
    assert_int_equal(some->n, 8); /* db1, 6 n.., x.y-z_1 */
    assert_string_equal(some->names[0], "db1");
    assert_string_equal(some->names[7], "x.y-z_1");
    free(some);
    free(whole);
}

/* Each page is an index range: no statement of a listing reads a whole
 * table (SQLite: EXPLAIN QUERY PLAN shows a SEARCH with the name bound,
 * or the events' seq, and SCANs only of the page it materialized or of
 * json_each's racks). Status and every host's events come in the index's
 * order, unsorted: a sort would read every row after the cursor for each
 * page (a listing of many racks in pages took 1.9 s that way, at 100,000
 * hosts). A page of hosts sorts its own rows (joined to their MACs), one
 * host's events their few installs' events. */
static void test_page_query_plans(void **state)
{
    static const bool may_sort[] = { true, true, true, false, false, false, false, true };
    fixture *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    unsigned n = 0;
    for (const char *sql; (sql = store_page_sql(n)); n++) {
        char *explain = NULL;
        assert_true(asprintf(&explain, "EXPLAIN QUERY PLAN %s", sql) > 0);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, explain, -1, &st, NULL) != SQLITE_OK) {
            fail_msg("page %u: %s", n, sqlite3_errmsg(db));
        }
        bool ranged = false, materialized = false;
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *line = (const char *)sqlite3_column_text(st, 3);
            materialized |= strncmp(line, "MATERIALIZE", 11) == 0;
            ranged |=
                strstr(line, "name>?)") || strstr(line, "(rowid>?)") || strstr(line, "AND id>?)");
            bool scan = strncmp(line, "SCAN ", 5) == 0;
            if (scan && !strstr(line, "json_each") && !(materialized && streq(line, "SCAN h"))) {
                fail_msg("page %u scans: %s\n%s", n, line, sql);
            }
            if (n < ARRAY_SIZE(may_sort) && !may_sort[n] && strstr(line, "TEMP B-TREE")) {
                fail_msg("page %u sorts: %s\n%s", n, line, sql);
            }
        }
        if (!ranged) {
            fail_msg("page %u is no index range: %s", n, sql);
        }
        sqlite3_finalize(st);
        free(explain);
    }
    assert_int_equal(n, 8);
    sqlite3_close(db);
}

/* ---- Crash consistency ------------------------------------------------- */

#define CRASH_EVENTS 20000

static store_event *make_batch(const char *id, const char *host, size_t n, uint64_t first)
{
    store_event *e = calloc(n, sizeof(*e));
    assert_non_null(e);
    for (size_t i = 0; i < n; i++) {
        e[i] = ev(first + i, id, host, P(STAGE2_PROGRESS));
        e[i].percent = (uint32_t)(i % 101);
        e[i].message = "stage2";
    }
    return e;
}

static void test_crash_mid_ingest(void **state)
{
    fixture *f = *state;
    /* Kill after these many microseconds into the batch; the last one kills
     * the child after its commit, before it closes the store (the data then
     * lives in the WAL only). */
    static const unsigned delays_us[] = { 0, 1000, 5000, 20000, 60000, UINT32_MAX };
    int none = 0, all = 0;
    for (size_t k = 0; k < ARRAY_SIZE(delays_us); k++) {
        char rack[16], host[16], id[STORE_ID_LEN + 1];
        snprintf(rack, sizeof(rack), "c%zu", k);
        snprintf(host, sizeof(host), "crash%zu", k);
        add_host(f->s, host, rack, 1000 + (unsigned)k);
        assert_int_equal(store_install_create(f->s, host, "el9", false, T0, id), 0);
        f->s = store_close(f->s);

        int fds[2];
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        store_event *batch = make_batch(id, host, CRASH_EVENTS, 1);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            store *s = NULL;
            uint64_t through;
            if (store_open(f->path, &s, NULL) < 0) {
                _exit(2);
            }
            if (write(fds[1], "R", 1) != 1) {
                _exit(3);
            }
            int r = store_events_ingest(s, rack, 1, batch, CRASH_EVENTS, T0, NULL, &through);
            if (r != CRASH_EVENTS || write(fds[1], "D", 1) != 1) {
                _exit(4);
            }
            pause();
            _exit(0);
        }
        close(fds[1]);
        char c;
        assert_int_equal(read(fds[0], &c, 1), 1);
        if (delays_us[k] == UINT32_MAX) {
            assert_int_equal(read(fds[0], &c, 1), 1);
            assert_int_equal(c, 'D');
        } else {
            usleep(delays_us[k]);
        }
        kill(pid, SIGKILL);
        int status_code;
        assert_int_equal(waitpid(pid, &status_code, 0), pid);
        assert_true(WIFSIGNALED(status_code) && WTERMSIG(status_code) == SIGKILL);
        close(fds[0]);
        free(batch);

        /* All or nothing, and a sound file. */
        assert_integrity(f->path);
        assert_int_equal(store_open(f->path, &f->s, NULL), 0);
        assert_integrity(f->path);
        char sql[256];
        snprintf(
            sql, sizeof(sql),
            "SELECT count(*) FROM events e JOIN racks r ON r.id = e.rack_id WHERE r.name = '%s'",
            rack);
        int64_t n = query_int(f->path, sql);
        uint64_t through;
        assert_int_equal(store_rack_get(f->s, rack, NULL, &through), 0);
        status_out st = status(f->s, host);
        if (n == 0) {
            none++;
            assert_int_equal(through, 0);
            assert_int_equal(st.state, INSTALL_REQUESTED);
        } else {
            all++;
            assert_int_equal(n, CRASH_EVENTS);
            assert_int_equal(through, CRASH_EVENTS);
            assert_int_equal(st.state, INSTALL_BOOTING);
        }
        /* and the store goes on working: the agent re-sends the batch */
        store_event *again = make_batch(id, host, 100, 1);
        assert_true(store_events_ingest(f->s, rack, 1, again, 100, T0, NULL, &through) >= 0);
        assert_true(through >= 100);
        free(again);
    }
    printf("crash test: %d kills before the commit (nothing stored), %d after (all stored)\n", none,
           all);
    /* The shortest delay kills the child before its big transaction can
     * commit, the last one after: if no kill ever landed mid-batch this
     * test proved nothing. */
    assert_true(none >= 1);
    assert_true(all >= 1);
}

/* ---- Ingest rate ------------------------------------------------------- */

static void test_ingest_rate(void **state)
{
    fixture *f = *state;
    enum { RACKS = 10, HOSTS_PER_RACK = 20, TOTAL = 20000, BATCH = 100 };
    char ids[RACKS][HOSTS_PER_RACK][STORE_ID_LEN + 1];
    char names[RACKS][HOSTS_PER_RACK][16];
    for (int r = 0; r < RACKS; r++) {
        char rack[16];
        snprintf(rack, sizeof(rack), "b%d", r);
        for (int h = 0; h < HOSTS_PER_RACK; h++) {
            snprintf(names[r][h], sizeof(names[r][h]), "b%dh%d", r, h);
            add_host(f->s, names[r][h], rack, 5000 + (unsigned)(r * 100 + h));
            assert_int_equal(store_install_create(f->s, names[r][h], "el9", false, T0, ids[r][h]),
                             0);
        }
    }
    store_event *batch = calloc(BATCH, sizeof(*batch));
    store_event_result *res = calloc(BATCH, sizeof(*res));
    assert_non_null(batch);
    assert_non_null(res);
    uint64_t seq[RACKS] = { 0 };
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < TOTAL / BATCH; i++) {
        int r = i % RACKS;
        char rack[16];
        snprintf(rack, sizeof(rack), "b%d", r);
        for (int k = 0; k < BATCH; k++) {
            int h = k % HOSTS_PER_RACK;
            batch[k] = ev(++seq[r], ids[r][h], names[r][h], P(STAGE2_PROGRESS));
            batch[k].percent = (uint32_t)(seq[r] % 101);
            batch[k].message = "stage2 progress";
        }
        uint64_t through;
        assert_int_equal(
            store_events_ingest(f->s, rack, 1, batch, BATCH, T0 + (uint64_t)i, res, &through),
            BATCH);
        assert_int_equal(through, seq[r]);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("ingest: %d events in batches of %d in %.3f s = %.0f events/s "
           "(synchronous=FULL, one fsync per batch%s)\n",
           TOTAL, BATCH, secs, TOTAL / secs,
#if defined(__SANITIZE_ADDRESS__)
           ", AddressSanitizer build"
#else
           ""
#endif
    );
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events WHERE rack_id IN "
                                 "(SELECT id FROM racks WHERE name LIKE 'b%')"),
                     TOTAL);
    free(batch);
    free(res);
}

/* ---- Files and retention ------------------------------------------------ */

static unsigned mode_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fail_msg("stat %s: %s", path, strerror(errno));
    }
    return (unsigned)(st.st_mode & 07777);
}

/* The store holds install tokens: its files are 0600 however loose the
 * directory and the umask are (issue #10). */
static void test_file_modes(void **state)
{
    fixture *f = *state;
    char dir[128], path[160], side[200];
    snprintf(dir, sizeof(dir), "%s/open", f->dir);
    assert_int_equal(mkdir(dir, 0777), 0);
    assert_int_equal(chmod(dir, 0777), 0);
    snprintf(path, sizeof(path), "%s/fleet.db", dir);
    mode_t old = umask(0);
    store *s = NULL;
    int r = store_open(path, &s, NULL);
    if (r == 0) {
        add_host(s, "m1", "r1", 900); /* a write: the WAL exists */
    }
    umask(old);
    assert_int_equal(r, 0);
    static const char *const suffixes[] = { "", "-wal", "-shm", ".lock" };
    unsigned modes[ARRAY_SIZE(suffixes)];
    for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
        snprintf(side, sizeof(side), "%s%s", path, suffixes[i]);
        modes[i] = mode_of(side); /* while open: closing removes -wal and -shm */
    }
    s = store_close(s);
    for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
        if (modes[i] != 0600) {
            fail_msg("%s%s is %04o, not 0600", path, suffixes[i], modes[i]);
        }
    }
    /* a store left readable by an older version is tightened on open */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(store_open(path, &s, NULL), 0);
    assert_int_equal(mode_of(path), 0600);
    store_close(s);
}

static store_event_result ingest_one(store *s, const char *rack, store_event e, uint64_t now)
{
    store_event_result res = 0;
    uint64_t through;
    assert_true(store_events_ingest(s, rack, 1, &e, 1, now, &res, &through) >= 0);
    return res;
}

static const uint64_t DAY = 86400000ull;

/* Events older than the retention are deleted, in bounded batches; newer
 * ones stay; a re-sent old event is still a duplicate once its row is gone. */
static void test_events_retention(void **state)
{
    fixture *f = *state;
    char id[STORE_ID_LEN + 1];
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), 0);
    for (uint64_t seq = 1; seq <= 5; seq++) {
        assert_int_equal(ingest_one(f->s, "r1", ev(seq, id, "web1", P(DHCP_BOUND)), T0),
                         STORE_EVENT_STORED);
    }
    assert_int_equal(ingest_one(f->s, "r1", ev(6, id, "web1", P(SCRIPT_SERVED)), T0 + 50 * DAY),
                     STORE_EVENT_STORED);
    assert_int_equal(host_events(f->s, "web1"), 6);

    store_retention keep = { .keep_ms = 90 * DAY, .batch = 2 };
    /* nothing is old enough yet */
    assert_int_equal(store_events_prune(f->s, T0 + 90 * DAY, &keep), 0);
    assert_int_equal(host_events(f->s, "web1"), 6);
    /* 91 days on, the five first are: two per call */
    uint64_t now = T0 + 91 * DAY;
    assert_int_equal(store_events_prune(f->s, now, &keep), 2);
    assert_int_equal(store_events_prune(f->s, now, &keep), 2);
    assert_int_equal(store_events_prune(f->s, now, &keep), 1);
    assert_int_equal(store_events_prune(f->s, now, &keep), 0);
    assert_int_equal(host_events(f->s, "web1"), 1);
    /* the agent re-sends seq 3 (an ack it lost): still a duplicate */
    assert_int_equal(ingest_one(f->s, "r1", ev(3, id, "web1", P(DHCP_BOUND)), now),
                     STORE_EVENT_DUPLICATE);
    assert_int_equal(host_events(f->s, "web1"), 1);
    /* keep_ms 0 keeps events for ever */
    store_retention forever = { .keep_ms = 0, .batch = 100 };
    assert_int_equal(store_events_prune(f->s, now + 1000 * DAY, &forever), 0);
    assert_int_equal(host_events(f->s, "web1"), 1);
    assert_int_equal(store_events_prune(f->s, now, NULL), -EINVAL);
}

/* Refused events (a confused or hostile agent's) are kept for audit, but not
 * for ever and not without bound. */
static void test_refused_events_bounded(void **state)
{
    fixture *f = *state;
    enum { N = 50 };
    store_event e[N];
    store_event_result res[N];
    uint64_t through;
    for (size_t i = 0; i < N; i++) {
        e[i] = ev(i + 1, "00000000-0000-4000-8000-000000000000", "ghost", P(DHCP_BOUND));
    }
    assert_int_equal(store_events_ingest(f->s, "r1", 1, e, N, T0, res, &through), 0);
    assert_int_equal(res[0], STORE_EVENT_REFUSED_HOST);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events WHERE refused IS NOT NULL"), N);
    /* a count cap: the newest refused_max stay */
    store_retention keep = { .keep_ms = 90 * DAY, .refused_max = 20, .batch = 1000 };
    assert_int_equal(store_events_prune(f->s, T0 + DAY, &keep), N - 20);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events WHERE refused IS NOT NULL"), 20);
    assert_int_equal(peek_int(f, "SELECT min(agent_seq) FROM events"), N - 20 + 1);
    /* and the same age limit as any event */
    assert_int_equal(store_events_prune(f->s, T0 + 91 * DAY, &keep), 20);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events"), 0);
    /* a re-sent refused event is still handled, not stored again */
    assert_int_equal(ingest_one(f->s, "r1", e[0], T0 + 91 * DAY), STORE_EVENT_DUPLICATE);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events"), 0);
}

/* ---- Audit log ----------------------------------------------------------- */

typedef struct audit_out {
    size_t n;
    uint64_t seqs[8], times[8];
    char who[8][96], verb[8][64], hosts[8][128], profiles[8][64], result[8][128];
    uint32_t host_count[8];
    bool ok[8];
} audit_out;

static int audit_cb(const store_audit *a, void *userdata)
{
    audit_out *o = userdata;
    assert_true(o->n < 8);
    o->seqs[o->n] = a->seq;
    o->times[o->n] = a->time_ms;
    snprintf(o->who[o->n], sizeof(o->who[0]), "%s", a->who);
    snprintf(o->verb[o->n], sizeof(o->verb[0]), "%s", a->verb);
    snprintf(o->hosts[o->n], sizeof(o->hosts[0]), "%s", a->hosts_text);
    snprintf(o->profiles[o->n], sizeof(o->profiles[0]), "%s", a->profiles_text);
    snprintf(o->result[o->n], sizeof(o->result[0]), "%s", a->result);
    o->host_count[o->n] = a->host_count;
    o->ok[o->n] = a->ok;
    o->n++;
    return 0;
}

static int audit_fail_cb(const store_audit *a, void *userdata)
{
    return -EIO;
}

/* Every write through the API leaves a row: who, what, which hosts, how it
 * ended, when; listed oldest first from a time on. */
static void test_audit(void **state)
{
    fixture *f = *state;
    const char *two[] = { "web1", "web2" };
    const char *el9[] = { "el9" };
    store_audit a = { .time_ms = T0,
                      .who = "operator:alice",
                      .verb = "install",
                      .hosts = two,
                      .n_hosts = 2,
                      .ok = true,
                      .result = "ok" };
    assert_int_equal(store_audit_append(f->s, &a), 0);
    a = (store_audit){ .time_ms = T0 + 1000,
                       .who = "local:uid=0",
                       .verb = "profiles import",
                       .profiles = el9,
                       .n_profiles = 1,
                       .ok = true,
                       .result = "ok" };
    assert_int_equal(store_audit_append(f->s, &a), 0);
    a = (store_audit){ .time_ms = T0 + 2000,
                       .who = "viewer:val",
                       .verb = "cancel",
                       .hosts = two,
                       .n_hosts = 1,
                       .host_count = 1,
                       .ok = false,
                       .result = "permission denied: viewer may not cancel" };
    assert_int_equal(store_audit_append(f->s, &a), 0);
    /* a failure inside a batch that is rolled back takes nothing with it */
    assert_int_equal(store_batch_begin(f->s), 0);
    a = (store_audit){ .time_ms = T0 + 3000,
                       .who = "operator:bob",
                       .verb = "hosts remove",
                       .hosts = two,
                       .n_hosts = 2,
                       .ok = false,
                       .result = "host web1: busy" };
    assert_int_equal(store_audit_append(f->s, &a), 0);
    assert_int_equal(store_batch_end(f->s, true), 0);

    audit_out o = { 0 };
    assert_int_equal(store_audit_list(f->s, 0, 0, 0, audit_cb, &o), 4);
    assert_string_equal(o.who[0], "operator:alice");
    assert_string_equal(o.verb[0], "install");
    assert_string_equal(o.hosts[0], "web1 web2");
    assert_int_equal(o.host_count[0], 2);
    assert_true(o.ok[0]);
    assert_int_equal(o.times[0], T0);
    assert_string_equal(o.profiles[1], "el9");
    assert_string_equal(o.hosts[1], "");
    assert_false(o.ok[2]);
    assert_string_equal(o.result[2], "permission denied: viewer may not cancel");
    assert_true(o.seqs[0] < o.seqs[1] && o.seqs[1] < o.seqs[2]);
    /* since a time, with a limit */
    audit_out since = { 0 };
    assert_int_equal(store_audit_list(f->s, T0 + 1000, 0, 2, audit_cb, &since), 2);
    assert_string_equal(since.who[0], "local:uid=0");
    assert_string_equal(since.who[1], "viewer:val");
    /* who and verb are required */
    a = (store_audit){ .time_ms = T0, .who = "", .verb = "install" };
    assert_int_equal(store_audit_append(f->s, &a), -EINVAL);
    a = (store_audit){ .time_ms = T0, .who = "operator:x" };
    assert_int_equal(store_audit_append(f->s, &a), -EINVAL);
    /* a huge selection keeps the first names and the count */
    enum { MANY = STORE_AUDIT_NAMES_MAX + 5 };
    const char **many = calloc(MANY, sizeof(*many));
    assert_non_null(many);
    for (size_t i = 0; i < MANY; i++) {
        many[i] = "h";
    }
    a = (store_audit){ .time_ms = T0 + 9000,
                       .who = "operator:alice",
                       .verb = "install",
                       .hosts = many,
                       .n_hosts = MANY,
                       .ok = true,
                       .result = "ok" };
    assert_int_equal(store_audit_append(f->s, &a), 0);
    free(many);
    assert_int_equal(peek_int(f, "SELECT host_count FROM audit WHERE time_ms = "
                                 "1700000009000"),
                     MANY);
    assert_int_equal(peek_int(f, "SELECT length(hosts) FROM audit WHERE time_ms = "
                                 "1700000009000"),
                     2 * STORE_AUDIT_NAMES_MAX - 1);
    /* and it survives a reopen */
    reopen(f);
    audit_out again = { 0 };
    assert_int_equal(store_audit_list(f->s, 0, 0, 4, audit_cb, &again), 4);
    assert_string_equal(again.who[3], "operator:bob");
}

/* A write and its audit row are one transaction (the API commits them with
 * store_batch_commit_audited): both are there, or neither. */
static void test_audit_with_write(void **state)
{
    fixture *f = *state;
    const char *one[] = { "w1" };
    store_audit a = { .time_ms = T0,
                      .who = "operator:alice",
                      .verb = "hosts add",
                      .hosts = one,
                      .n_hosts = 1,
                      .ok = true,
                      .result = "ok" };
    assert_int_equal(store_batch_begin(f->s), 0);
    add_host(f->s, "w1", "r7", 701);
    assert_int_equal(store_batch_commit_audited(f->s, &a), 0);
    store_host h;
    assert_int_equal(store_host_get(f->s, "w1", &h), 0);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM audit WHERE verb = 'hosts add'"), 1);

    /* The row cannot be written: the write is undone with it, and the
     * batch is over (another can begin). */
    const char *two[] = { "w2" };
    a = (store_audit){ .time_ms = T0 + 1,
                       .who = "",
                       .verb = "hosts add",
                       .hosts = two,
                       .n_hosts = 1,
                       .ok = true,
                       .result = "ok" };
    assert_int_equal(store_batch_begin(f->s), 0);
    add_host(f->s, "w2", "r7", 702);
    assert_int_equal(store_batch_commit_audited(f->s, &a), -EINVAL);
    assert_int_equal(store_host_get(f->s, "w2", &h), -ENOENT);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM audit"), 1);
    assert_int_equal(store_batch_begin(f->s), 0);
    assert_int_equal(store_batch_end(f->s, false), 0);

    /* Undone writes take their row along; the caller then records the
     * failure on its own. */
    assert_int_equal(store_batch_begin(f->s), 0);
    add_host(f->s, "w3", "r7", 703);
    a = (store_audit){
        .time_ms = T0 + 2, .who = "operator:alice", .verb = "hosts add", .ok = true, .result = "ok"
    };
    assert_int_equal(store_audit_append(f->s, &a), 0);
    assert_int_equal(store_batch_end(f->s, false), 0);
    assert_int_equal(store_host_get(f->s, "w3", &h), -ENOENT);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM audit"), 1);
}

typedef struct audit_pager {
    size_t n, page; /* rows taken; stop after `page` rows (0: never) */
    uint64_t last;  /* seq of the last row taken */
    uint64_t seen[16];
} audit_pager;

static int audit_page_cb(const store_audit *a, void *userdata)
{
    audit_pager *p = userdata;
    if (p->page && p->n == p->page) {
        return 1; /* full: this row starts the next page */
    }
    assert_true(a->seq > p->last);
    assert_true(p->n < 16);
    p->seen[p->n++] = a->seq;
    p->last = a->seq;
    return 0;
}

/* Pages by seq: a callback stops a page (the row it refused comes first on
 * the next), after_seq continues it; together they list every row once, in
 * the order written even when the clock stepped back in between. */
static void test_audit_pages(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 10; i++) {
        /* the clock steps back after the fifth row */
        store_audit a = { .time_ms = T0 + (i < 5 ? 10000 : 0) + (uint64_t)i,
                          .who = "operator:alice",
                          .verb = "cancel",
                          .ok = true,
                          .result = "ok" };
        assert_int_equal(store_audit_append(f->s, &a), 0);
    }
    audit_pager all = { 0 };
    assert_int_equal(store_audit_list(f->s, 0, 0, 0, audit_page_cb, &all), 10);
    uint64_t after = 0;
    size_t total = 0, pages = 0;
    for (;;) {
        audit_pager p = { .page = 3, .last = after };
        int n = store_audit_list(f->s, 0, after, 0, audit_page_cb, &p);
        assert_true(n >= 0 && n <= 3);
        for (int i = 0; i < n; i++) {
            assert_int_equal(p.seen[i], all.seen[total + (size_t)i]);
        }
        total += (size_t)n;
        pages++;
        if (n < 3) {
            break;
        }
        after = p.last;
    }
    assert_int_equal(total, 10);
    assert_int_equal(pages, 4); /* 3 + 3 + 3 + 1 */
    /* with a limit and a time */
    audit_pager lim = { 0 };
    assert_int_equal(store_audit_list(f->s, 0, all.seen[7], 5, audit_page_cb, &lim), 2);
    audit_pager since = { 0 };
    assert_int_equal(store_audit_list(f->s, T0 + 10000, 0, 0, audit_page_cb, &since), 5);
    /* an error from the callback is the listing's */
    assert_int_equal(store_audit_list(f->s, 0, 0, 0, audit_fail_cb, NULL), -EIO);
}

/* ---- Work queue ---------------------------------------------------------- */

typedef struct queue_job {
    const char *host; /* added by the job, on the queue's connection */
    int r;
    int status;   /* done's */
    int *order;   /* done's sequence number */
    int *counter; /* shared */
    int done_calls;
} queue_job;

static void queue_add_host(store *st, void *arg)
{
    queue_job *j = arg;
    store_host h = { 0 };
    snprintf(h.name, sizeof(h.name), "%s", j->host);
    snprintf(h.rack, sizeof(h.rack), "r9");
    h.n_macs = 1;
    h.macs[0][0] = 0x52;
    h.macs[0][5] = (uint8_t)(0xa0 + j->host[1] - '0');
    h.address[0] = 0x20;
    h.address[15] = (uint8_t)(0xa0 + j->host[1] - '0');
    h.prefix_length = 64;
    j->r = store_host_add(st, &h, false);
}

static void queue_done(void *arg, int status)
{
    queue_job *j = arg;
    j->status = status;
    j->done_calls++;
    *j->order = ++*j->counter;
}

/* store/queue: jobs run off the loop on their own connection, one at a
 * time and in order; the loop's connection sees what they committed;
 * freeing the queue ends every job not yet done with -ECANCELED. */
static void test_queue(void **state)
{
    fixture *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    store_queue *q = NULL;
    char *err = NULL;
    assert_int_equal(store_queue_new(&loop, f->s, &q, &err), 0);
    assert_null(err);
    int counter = 0;
    int order[4] = { 0 };
    queue_job jobs[4] = {
        { .host = "q1", .order = &order[0], .counter = &counter },
        { .host = "q2", .order = &order[1], .counter = &counter },
        { .host = "q3", .order = &order[2], .counter = &counter },
        { .host = "q1", .order = &order[3], .counter = &counter }, /* a duplicate */
    };
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(store_queue_submit(q, queue_add_host, queue_done, &jobs[i]), 0);
    }
    assert_int_equal(store_queue_pending(q), 4);
    while (store_queue_pending(q) > 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(jobs[i].done_calls, 1);
        assert_int_equal(jobs[i].status, 0);
        assert_int_equal(order[i], (int)i + 1);
    }
    assert_int_equal(jobs[0].r, 0);
    assert_int_equal(jobs[2].r, 0);
    assert_int_equal(jobs[3].r, -EEXIST); /* after q1, on the same store */
    store_host h;
    assert_int_equal(store_host_get(f->s, "q3", &h), 0);
    assert_string_equal(h.rack, "r9");

    /* Freed with jobs queued: each is done once, cancelled. */
    queue_job late[3] = {
        { .host = "q4", .order = &order[0], .counter = &counter },
        { .host = "q5", .order = &order[1], .counter = &counter },
        { .host = "q6", .order = &order[2], .counter = &counter },
    };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(store_queue_submit(q, queue_add_host, queue_done, &late[i]), 0);
    }
    q = store_queue_free(q);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(late[i].done_calls, 1);
        assert_int_equal(late[i].status, -ECANCELED);
    }
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0); /* releases the rest */
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- The rules over the backend ops ------------------------------------ */

/* A spy backend: the SQLite ops, with the ones these tests watch counted,
 * and install_insert failing on demand. The rules reach rows through the
 * ops table only, so what they do shows here. */
static struct spy {
    unsigned begin, savepoint, commit, rollback, rollback_to;
    unsigned host_find, profile_find, rack_bump, install_insert, install_set_state;
    int fail_insert; /* != 0: install_insert returns it */
    int fail_commit; /* != 0: commit returns it, committing nothing */
} spy;
static store_backend_ops spy_ops;

static int spy_begin(store_backend *b)
{
    spy.begin++;
    return store_sqlite_ops.begin(b);
}

static int spy_savepoint(store_backend *b)
{
    spy.savepoint++;
    return store_sqlite_ops.savepoint(b);
}

static int spy_commit(store_backend *b)
{
    spy.commit++;
    if (spy.fail_commit) {
        return spy.fail_commit;
    }
    return store_sqlite_ops.commit(b);
}

static int spy_rollback(store_backend *b)
{
    spy.rollback++;
    return store_sqlite_ops.rollback(b);
}

static int spy_rollback_to(store_backend *b)
{
    spy.rollback_to++;
    return store_sqlite_ops.rollback_to(b);
}

static int spy_host_find(store_backend *b, const char *name, int64_t *ret_id, int64_t *ret_rack)
{
    spy.host_find++;
    return store_sqlite_ops.host_find(b, name, ret_id, ret_rack);
}

static int spy_profile_find(store_backend *b, const char *name, int64_t *ret_id)
{
    spy.profile_find++;
    return store_sqlite_ops.profile_find(b, name, ret_id);
}

static int spy_rack_bump(store_backend *b, int64_t rack_id)
{
    spy.rack_bump++;
    return store_sqlite_ops.rack_bump(b, rack_id);
}

static int spy_install_insert(store_backend *b, const store_install_new *in)
{
    spy.install_insert++;
    if (spy.fail_insert) {
        return spy.fail_insert;
    }
    return store_sqlite_ops.install_insert(b, in);
}

static int spy_install_set_state(store_backend *b, int64_t id, install_state state, uint64_t now,
                                 const char *message)
{
    spy.install_set_state++;
    return store_sqlite_ops.install_set_state(b, id, state, now, message);
}

/* Reopens the fixture's store on the spy backend, counters at zero. */
static void open_spy(fixture *f)
{
    spy_ops = store_sqlite_ops;
    spy_ops.name = "spy";
    spy_ops.begin = spy_begin;
    spy_ops.savepoint = spy_savepoint;
    spy_ops.commit = spy_commit;
    spy_ops.rollback = spy_rollback;
    spy_ops.rollback_to = spy_rollback_to;
    spy_ops.host_find = spy_host_find;
    spy_ops.profile_find = spy_profile_find;
    spy_ops.rack_bump = spy_rack_bump;
    spy_ops.install_insert = spy_install_insert;
    spy_ops.install_set_state = spy_install_set_state;
    f->s = store_close(f->s);
    char *err = NULL;
    assert_int_equal(store_open_backend(&spy_ops, f->path, &f->s, &err), 0);
    assert_null(err);
    memset(&spy, 0, sizeof(spy));
}

/* A job that holds the queue's worker until the test has queued the jobs
 * behind it, so that they are all waiting when the worker looks. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool open;
} gate;

static void gate_work(store *st, void *arg)
{
    (void)st;
    gate *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->open) {
        pthread_cond_wait(&g->cond, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
}

static void gate_done(void *arg, int status)
{
    (void)arg;
    assert_true(status == 0 || status == -ECANCELED); /* the queue freed */
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->mu);
}

/* Grouped jobs next to each other share one commit; a job's failure undoes
 * its own writes only; an ungrouped job between them ends the group; the
 * order of `done` is the order of submission; a group whose commit fails
 * stores nothing and each of its jobs is told -EIO. */
static void test_queue_grouped(void **state)
{
    fixture *f = *state;
    open_spy(f);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    store_queue *q = NULL;
    char *err = NULL;
    assert_int_equal(store_queue_new(&loop, f->s, &q, &err), 0);
    /* Commits are counted: no scheduler delay on a loaded machine may end a
     * group by its time bound (20 ms by default). */
    store_queue_set_group_limits(q, STORE_QUEUE_GROUP_MAX_JOBS, 60 * 1000000);
    gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false };
    int counter = 0;
    int order[6] = { 0 };
    queue_job jobs[6] = {
        { .host = "q1", .order = &order[0], .counter = &counter },
        { .host = "q2", .order = &order[1], .counter = &counter },
        { .host = "q1", .order = &order[2], .counter = &counter }, /* fails alone */
        { .host = "q3", .order = &order[3], .counter = &counter }, /* not grouped */
        { .host = "q4", .order = &order[4], .counter = &counter },
        { .host = "q5", .order = &order[5], .counter = &counter },
    };
    assert_int_equal(store_queue_submit(q, gate_work, gate_done, &g), 0);
    for (size_t i = 0; i < 6; i++) {
        int (*submit)(store_queue *, store_queue_work_fn, store_queue_done_fn, void *) =
            i == 3 ? store_queue_submit : store_queue_submit_grouped;
        assert_int_equal(submit(q, queue_add_host, queue_done, &jobs[i]), 0);
    }
    memset(&spy, 0, sizeof(spy));
    gate_open(&g);
    while (store_queue_pending(q) > 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(spy.commit, 3); /* q1 q2 q1, q3, q4 q5 */
    assert_int_equal(spy.begin, 3);
    assert_int_equal(spy.savepoint, 5);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(jobs[i].done_calls, 1);
        assert_int_equal(jobs[i].status, 0);
        assert_int_equal(order[i], (int)i + 1);
    }
    assert_int_equal(jobs[1].r, 0);
    assert_int_equal(jobs[2].r, -EEXIST);
    store_host h;
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(store_host_get(f->s, jobs[i].host, &h), 0);
    }

    /* The commit fails: nothing of the group is stored, all are told. */
    g.open = false;
    queue_job lost[2] = {
        { .host = "q6", .order = &order[0], .counter = &counter },
        { .host = "q7", .order = &order[1], .counter = &counter },
    };
    assert_int_equal(store_queue_submit(q, gate_work, gate_done, &g), 0);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(store_queue_submit_grouped(q, queue_add_host, queue_done, &lost[i]), 0);
    }
    spy.fail_commit = -EIO;
    gate_open(&g);
    while (store_queue_pending(q) > 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    spy.fail_commit = 0;
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(lost[i].done_calls, 1);
        assert_int_equal(lost[i].status, -EIO);
        assert_int_equal(lost[i].r, 0); /* its own savepoint went well */
        assert_int_equal(store_host_get(f->s, lost[i].host, &h), -ENOENT);
    }
    q = store_queue_free(q);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* An install is one transaction of a fixed set of primitives: one lookup
 * each of host and profile, one bump, one insert; a replace adds the FSM's
 * cancel of the old one; in a batch each host costs the same (a savepoint
 * instead of a transaction), with no extra round trips per host. */
static void test_rules_drive_ops(void **state)
{
    fixture *f = *state;
    open_spy(f);
    char id[STORE_ID_LEN + 1];
    uint64_t g = generation(f->s, "r1");
    memset(&spy, 0, sizeof(spy));

    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), 0);
    assert_int_equal(spy.begin, 1);
    assert_int_equal(spy.commit, 1);
    assert_int_equal(spy.host_find, 1);
    assert_int_equal(spy.profile_find, 1);
    assert_int_equal(spy.rack_bump, 1);
    assert_int_equal(spy.install_insert, 1);
    assert_int_equal(spy.install_set_state, 0);
    assert_int_equal(generation(f->s, "r1"), g + 1);

    memset(&spy, 0, sizeof(spy));
    assert_int_equal(store_install_create(f->s, "web1", "el9", true, T0 + 1, id), 0);
    assert_int_equal(spy.install_set_state, 1); /* the old one cancelled */
    assert_int_equal(spy.install_insert, 1);
    assert_int_equal(spy.rack_bump, 1);

    memset(&spy, 0, sizeof(spy));
    assert_int_equal(store_batch_begin(f->s), 0);
    assert_int_equal(store_install_create(f->s, "web2", "el9", false, T0, id), 0);
    assert_int_equal(store_install_create(f->s, "web3", "el9", false, T0, id), 0);
    assert_int_equal(store_install_create(f->s, "db1", "el9", false, T0, id), 0);
    assert_int_equal(store_batch_end(f->s, true), 0);
    assert_int_equal(spy.begin, 1);
    assert_int_equal(spy.savepoint, 3);
    assert_int_equal(spy.commit, 1);
    assert_int_equal(spy.host_find, 3);
    assert_int_equal(spy.profile_find, 3);
    assert_int_equal(spy.rack_bump, 3);
    assert_int_equal(spy.install_insert, 3);
    assert_int_equal(generation(f->s, "r1"), g + 4);
    assert_int_equal(generation(f->s, "r2"), 2);
}

/* A backend failure inside an operation undoes all of it: the rules'
 * generation bump is rolled back with the failed insert, alone in a batch
 * (its savepoint) or with its transaction, and the failure is returned. */
static void test_rules_undo_on_backend_failure(void **state)
{
    fixture *f = *state;
    open_spy(f);
    char id[STORE_ID_LEN + 1];
    uint64_t g = generation(f->s, "r1");

    spy.fail_insert = -EIO;
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), -EIO);
    assert_int_equal(spy.rack_bump, 1);
    assert_int_equal(spy.rollback, 1);
    assert_int_equal(spy.commit, 0);
    assert_int_equal(generation(f->s, "r1"), g);
    assert_int_equal(status(f->s, "web1").install_id[0], '\0');

    memset(&spy, 0, sizeof(spy));
    assert_int_equal(store_batch_begin(f->s), 0);
    assert_int_equal(store_install_create(f->s, "web1", "el9", false, T0, id), 0);
    spy.fail_insert = -EIO;
    assert_int_equal(store_install_create(f->s, "web2", "el9", false, T0, id), -EIO);
    spy.fail_insert = 0;
    assert_int_equal(store_batch_end(f->s, true), 0);
    assert_int_equal(spy.rollback_to, 1);
    assert_int_equal(generation(f->s, "r1"), g + 1); /* web1's bump only */
    assert_int_equal(status(f->s, "web1").state, INSTALL_REQUESTED);
    assert_int_equal(status(f->s, "web2").install_id[0], '\0');
    check_store(f);
}

/* Many hosts in one batch (a fleet-wide install): a host that fails
 * changes nothing and costs no savepoint, the profile is found once, each
 * rack is bumped once, and the store failing fails the whole batch. */
static void test_installs_batched(void **state)
{
    fixture *f = *state;
    open_spy(f);
    char id[STORE_ID_LEN + 1];
    uint64_t g1 = generation(f->s, "r1"), g2 = generation(f->s, "r2");
    assert_int_equal(store_install_create(f->s, "web2", "el9", false, T0, id), 0);
    g1++;

    const char *hosts[] = { "web1", "web2", "nohost", "web3", "db1" };
    store_host_outcome out[ARRAY_SIZE(hosts)];
    memset(&spy, 0, sizeof(spy));
    assert_int_equal(store_batch_begin(f->s), 0);
    assert_int_equal(
        store_installs_create(f->s, hosts, ARRAY_SIZE(hosts), "el9", false, T0 + 1, out), 3);
    assert_int_equal(store_batch_end(f->s, true), 0);
    assert_int_equal(out[0].result, 0);
    assert_int_equal(out[1].result, -EBUSY);
    assert_string_equal(out[1].id, id); /* the active one */
    assert_int_equal(out[1].active_state, INSTALL_REQUESTED);
    assert_int_equal(out[2].result, -ENOENT);
    assert_int_equal(out[3].result, 0);
    assert_int_equal(out[4].result, 0);
    assert_int_equal(spy.begin, 1);
    assert_int_equal(spy.savepoint, 0);
    assert_int_equal(spy.profile_find, 1);
    assert_int_equal(spy.rack_bump, 2);
    assert_int_equal(spy.install_insert, 3);
    assert_int_equal(spy.install_set_state, 0);
    assert_int_equal(generation(f->s, "r1"), g1 + 1);
    assert_int_equal(generation(f->s, "r2"), g2 + 1);
    /* every install of the batch records the generation that carries it
     * (web2's, from before, an older one) */
    assert_int_equal(peek_int(f, "SELECT count(*) FROM installs i JOIN hosts h ON "
                                 "h.id = i.host_id JOIN racks r ON r.id = h.rack_id "
                                 "WHERE i.generation = r.generation"),
                     3);
    status_out st = status(f->s, "web1");
    assert_string_equal(st.install_id, out[0].id);
    assert_int_equal(st.attempt, 1);
    /* r1's agent acks: its three requested installs (web2's of an older
     * generation too) are dispatched at once, r2's stays requested */
    assert_int_equal(store_agent_ack(f->s, "r1", 1, g1 + 1, T0 + 9), 3);
    assert_int_equal(peek_int(f,
                              "SELECT count(*) FROM installs WHERE state = 'dispatched' "
                              "AND dispatched_ms = 1700000000009 AND updated_ms = dispatched_ms"),
                     3);
    assert_int_equal(status(f->s, "db1").state, INSTALL_REQUESTED);
    assert_int_equal(store_agent_ack(f->s, "r1", 1, g1 + 1, T0 + 10), 0);

    /* replace: every active one cancelled, attempts counted on */
    const char *r1[] = { "web1", "web2", "web3" };
    store_host_outcome rout[3];
    memset(&spy, 0, sizeof(spy));
    assert_int_equal(store_batch_begin(f->s), 0);
    assert_int_equal(store_installs_create(f->s, r1, 3, "el9", true, T0 + 2, rout), 3);
    assert_int_equal(store_batch_end(f->s, true), 0);
    assert_int_equal(spy.install_set_state, 3);
    assert_int_equal(spy.rack_bump, 1);
    assert_int_equal(generation(f->s, "r1"), g1 + 2);
    assert_int_equal(status(f->s, "web1").attempt, 2);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM installs WHERE state = 'cancelled'"), 3);

    /* cancel: a host without an active install and an unknown one fail
     * alone; r2's install stays */
    const char *c[] = { "web1", "nohost", "web2", "web3" };
    store_host_outcome cout[4];
    memset(&spy, 0, sizeof(spy));
    assert_int_equal(store_batch_begin(f->s), 0);
    assert_int_equal(store_installs_cancel(f->s, c, 2, T0 + 3, cout), 1);
    assert_int_equal(store_installs_cancel(f->s, c + 2, 2, T0 + 3, cout + 2), 2);
    assert_int_equal(store_batch_end(f->s, true), 0);
    assert_int_equal(cout[0].result, 0);
    assert_string_equal(cout[0].id, rout[0].id);
    assert_int_equal(cout[1].result, -ENOENT);
    assert_int_equal(spy.rack_bump, 2); /* once per call */
    assert_int_equal(spy.savepoint, 0);
    assert_int_equal(status(f->s, "web1").state, INSTALL_CANCELLED);
    assert_int_equal(status(f->s, "db1").state, INSTALL_REQUESTED);
    memset(&spy, 0, sizeof(spy));
    assert_int_equal(store_batch_begin(f->s), 0);
    assert_int_equal(store_installs_cancel(f->s, c, 1, T0 + 4, cout), 0);
    assert_int_equal(store_batch_end(f->s, true), 0);
    assert_int_equal(cout[0].result, -ENODATA);
    assert_int_equal(spy.rack_bump, 0);

    /* the store failing half-way: the batch is undone as a whole */
    uint64_t g = generation(f->s, "r1");
    memset(&spy, 0, sizeof(spy));
    assert_int_equal(store_batch_begin(f->s), 0);
    spy.fail_insert = -EIO;
    assert_int_equal(store_installs_create(f->s, r1, 3, "el9", false, T0 + 5, rout), -EIO);
    spy.fail_insert = 0;
    assert_int_equal(store_batch_end(f->s, false), 0);
    assert_int_equal(generation(f->s, "r1"), g);
    assert_int_equal(status(f->s, "web1").state, INSTALL_CANCELLED);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM installs WHERE state = 'requested'"), 1);

    /* a host twice in one batch: the store refuses the batch (the API
     * passes each host once) */
    const char *twice[] = { "web1", "web1" };
    assert_int_equal(store_batch_begin(f->s), 0);
    assert_true(store_installs_create(f->s, twice, 2, "el9", false, T0 + 6, rout) < 0);
    assert_int_equal(store_batch_end(f->s, false), 0);
    assert_int_equal(status(f->s, "web1").state, INSTALL_CANCELLED);

    /* an unknown profile: nothing done */
    assert_int_equal(store_batch_begin(f->s), 0);
    assert_int_equal(store_installs_create(f->s, r1, 3, "nope", false, T0 + 6, rout), -ENOENT);
    assert_non_null(strstr(store_errmsg(f->s), "nope"));
    assert_int_equal(store_batch_end(f->s, false), 0);
    check_store(f);
}

/* A request for more hosts than a backend reads ahead at once
 * (fleet_installs.c: READ_AHEAD_HOSTS): every host planned from what was
 * read for it, across the chunks, fresh and replaced. */
static void test_installs_read_ahead(void **state)
{
    fixture *f = *state;
    enum { N = 600 };
    static char names[N][16];
    const char *hosts[N];
    for (unsigned i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "big%03u", i);
        add_host(f->s, names[i], "r3", 1000 + i);
        hosts[i] = names[i];
    }
    char id[STORE_ID_LEN + 1];
    assert_int_equal(store_install_create(f->s, "big300", "el9", false, T0, id), 0);
    static store_host_outcome out[N];
    assert_int_equal(store_batch_begin(f->s), 0);
    assert_int_equal(store_installs_create(f->s, hosts, N, "el9", false, T0 + 1, out), N - 1);
    assert_int_equal(store_batch_end(f->s, true), 0);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(out[i].result, i == 300 ? -EBUSY : 0);
    }
    assert_string_equal(out[300].id, id);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM installs i JOIN hosts h ON "
                                 "h.id = i.host_id WHERE h.name LIKE 'big%' AND i.state = "
                                 "'requested'"),
                     N);
    /* replaced: each host's attempt counts on from what was read ahead */
    assert_int_equal(store_batch_begin(f->s), 0);
    assert_int_equal(store_installs_create(f->s, hosts, N, "el9", true, T0 + 2, out), N);
    assert_int_equal(store_batch_end(f->s, true), 0);
    assert_int_equal(status(f->s, "big000").attempt, 2);
    assert_int_equal(status(f->s, "big599").attempt, 2);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM installs WHERE state = 'cancelled'"), N);
    /* and cancelled, all */
    assert_int_equal(store_batch_begin(f->s), 0);
    assert_int_equal(store_installs_cancel(f->s, hosts, N, T0 + 3, out), N);
    assert_int_equal(store_batch_end(f->s, true), 0);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM installs WHERE state = 'cancelled'"), 2 * N);
    check_store(f);
}

/* ---- PostgreSQL: one database, several controllers -------------------- */

/* Two controllers on one database: neither is refused (SQLite's one-writer
 * lock is not PostgreSQL's), and what one writes, the other reads, as do
 * the connections of the loop's work queue. */
static void test_pg_shared(void **state)
{
    fixture *f = *state;
    store *other = NULL, *conn = NULL;
    char *err = NULL;
    assert_int_equal(store_open_url(f->url, &other, &err), 0);
    assert_null(err);
    add_host(other, "new1", "r9", 900);
    store_host h;
    assert_int_equal(store_host_get(f->s, "new1", &h), 0);
    assert_string_equal(h.rack, "r9");
    assert_int_equal(store_connect(f->s, &conn, &err), 0);
    assert_int_equal(store_host_remove(conn, "new1"), 0);
    assert_int_equal(store_host_get(other, "new1", &h), -ENOENT);
    conn = store_close(conn);
    other = store_close(other);
    check_store(f);
}

typedef struct open_race {
    const char *url;
    pthread_barrier_t *go;
    int r, version;
    char err[256];
} open_race;

static void *open_racer(void *arg)
{
    open_race *o = arg;
    store *s = NULL;
    char *err = NULL;
    pthread_barrier_wait(o->go);
    o->r = store_open_url(o->url, &s, &err);
    o->version = o->r == 0 ? store_schema_version(s) : -1;
    snprintf(o->err, sizeof(o->err), "%s", err ? err : "");
    free(err);
    store_close(s);
    return NULL;
}

/* Controllers starting at once on an empty database: every one opens it,
 * the schema is migrated once, to the version SQLite's store has. */
static void test_pg_migration_race(void **state)
{
    (void)state;
    enum { N = 4 };
    fixture fresh;
    memset(&fresh, 0, sizeof(fresh));
    pg_create(&fresh);
    pthread_barrier_t go;
    assert_int_equal(pthread_barrier_init(&go, NULL, N), 0);
    open_race o[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        o[i] = (open_race){ .url = fresh.url, .go = &go, .r = -1 };
        assert_int_equal(pthread_create(&t[i], NULL, open_racer, &o[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    pthread_barrier_destroy(&go);
    int latest = 0;
    while (store_migration_sql(latest + 1)) {
        latest++;
    }
    for (int i = 0; i < N; i++) {
        if (o[i].r != 0) {
            fail_msg("open %d: %d %s", i, o[i].r, o[i].err);
        }
        assert_int_equal(o[i].version, latest);
    }
    assert_int_equal(pg_query(fresh.url, "SELECT count(*) FROM rackboot_schema"), 1);
    assert_int_equal(pg_query(fresh.url, "SELECT version FROM rackboot_schema"), latest);
    pg_destroy(&fresh);
}

/* Ends the store's connections to the test's database, as a database
 * restart would, waiting until they are gone. */
static void pg_terminate(const fixture *f)
{
    char sql[192];
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
             "WHERE datname = '%s' AND pid != pg_backend_pid()",
             f->db);
    assert_true(pg_query(pg_base_url(), sql) >= 1);
}

/* The database restarts under the controller: a write that finds the
 * connection gone fails with -EIO and says so, the next one reconnects; a
 * read begins again on a new connection (nothing to lose). A batch the
 * loss cut short is gone as a whole, never committed in part. */
static void test_pg_reconnect(void **state)
{
    fixture *f = *state;
    store_host h;
    assert_int_equal(store_host_get(f->s, "web1", &h), 0);
    pg_terminate(f);
    assert_int_equal(store_host_get(f->s, "web1", &h), 0);
    pg_terminate(f);
    store_host lost9 = make_host("web9", "r1", 9);
    assert_int_equal(store_host_add(f->s, &lost9, false), -EIO);
    assert_non_null(strstr(store_errmsg(f->s), "connection to the database lost"));
    assert_int_equal(store_host_get(f->s, "web9", &h), -ENOENT);
    add_host(f->s, "web9", "r1", 9);

    assert_int_equal(store_batch_begin(f->s), 0);
    add_host(f->s, "web10", "r1", 10);
    pg_terminate(f);
    store_host lost = make_host("web11", "r1", 11);
    assert_int_equal(store_host_add(f->s, &lost, false), -EIO);
    assert_false(store_batch_open(f->s));
    assert_int_equal(store_host_add(f->s, &lost, false), -EIO);
    assert_int_equal(store_batch_end(f->s, true), -EIO);
    assert_int_equal(store_host_get(f->s, "web10", &h), -ENOENT);
    assert_int_equal(store_host_get(f->s, "web11", &h), -ENOENT);
    assert_int_equal(store_host_get(f->s, "web9", &h), 0);
    add_host(f->s, "web12", "r1", 12);
    check_store(f);
}

/* Writes whose answer nobody reads are sent ahead in one pipeline with
 * the next statement (store/postgresql.c, write-behind). One that fails
 * fails its own store call, whatever statement finds out: alone, its
 * transaction is rolled back; in a batch, its savepoint is, and the
 * batch's other calls are committed. */
static void test_pg_deferred_write_failure(void **state)
{
    fixture *f = *state;
    pg_query(f->url, "CREATE FUNCTION no_bad() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                     "IF NEW.version = 'bad' THEN RAISE EXCEPTION 'bad version refused'; END IF; "
                     "RETURN NEW; END $$");
    pg_query(f->url, "CREATE TRIGGER no_bad BEFORE INSERT OR UPDATE ON agents FOR EACH ROW "
                     "EXECUTE FUNCTION no_bad()");
    assert_int_equal(store_agent_seen(f->s, "rx", 1, "agent-rx", "bad", T0), -EIO);
    assert_non_null(strstr(store_errmsg(f->s), "bad version refused"));
    assert_int_equal(store_rack_get(f->s, "rx", NULL, NULL), -ENOENT);

    assert_int_equal(store_batch_begin(f->s), 0);
    assert_int_equal(store_agent_seen(f->s, "ra", 1, "agent-ra", "0.1.0", T0), 0);
    assert_int_equal(store_agent_seen(f->s, "rb", 1, "agent-rb", "bad", T0), -EIO);
    assert_non_null(strstr(store_errmsg(f->s), "bad version refused"));
    assert_true(store_batch_open(f->s));
    assert_int_equal(store_agent_seen(f->s, "rc", 1, "agent-rc", "0.1.0", T0), 0);
    assert_int_equal(store_batch_end(f->s, true), 0);
    assert_int_equal(store_rack_get(f->s, "ra", NULL, NULL), 0);
    assert_int_equal(store_rack_get(f->s, "rb", NULL, NULL), -ENOENT);
    assert_int_equal(store_rack_get(f->s, "rc", NULL, NULL), 0);
    assert_int_equal(pg_query(f->url, "SELECT count(*) FROM agents WHERE version = '0.1.0'"), 2);
    check_store(f);
}

/* ---- Several controllers, all active (issue 17 §1) -------------------- */

/* The racks a feed named, comma-separated; "+events" for stored events. */
static char feed_racks[256];

static void feed_rack(store_feed_topic topic, const char *rack, void *userdata)
{
    (void)userdata;
    size_t n = strlen(feed_racks);
    snprintf(feed_racks + n, sizeof(feed_racks) - n, "%s%s", n ? "," : "",
             topic == STORE_FEED_EVENTS ? "+events" : rack);
}

/* Waits (up to 10 s, event-driven: poll on the feed's socket) for the feed
 * to announce changes: how many it read, 0 if none came; their racks in
 * feed_racks. */
static int feed_wait(store_feed *feed)
{
    feed_racks[0] = '\0';
    int64_t deadline = (int64_t)time(NULL) + 10;
    while ((int64_t)time(NULL) < deadline) {
        struct pollfd p = { .fd = store_feed_fd(feed), .events = POLLIN };
        assert_true(p.fd >= 0);
        int r = poll(&p, 1, 1000);
        assert_true(r >= 0);
        if (r > 0) {
            int n = store_feed_read(feed, feed_rack, NULL);
            if (n < 0) {
                fail_msg("feed: %s", store_feed_errmsg(feed));
            }
            if (n > 0) {
                return n;
            }
        }
    }
    return 0;
}

/* A generation moved through another controller's connection reaches this
 * one's feed on commit, and only then: a rolled-back move is never
 * announced. Every write that moves generations notifies (an install, a
 * profile changed under active installs). A feed cut off reconnects and
 * hears the next move. A store with one controller has no feed. */
static void test_pg_feed(void **state)
{
    fixture *f = *state;
    assert_true(store_shared(f->s));
    store_feed *feed = NULL;
    char *err = NULL;
    assert_int_equal(store_feed_open(f->s, &feed, &err), 0);
    assert_null(err);
    store *other = NULL;
    assert_int_equal(store_open_url(f->url, &other, &err), 0);

    /* Rolled back: nothing announced. */
    assert_int_equal(store_batch_begin(other), 0);
    assert_int_equal(store_install_create(other, "web1", "el9", false, T0, NULL), 0);
    assert_int_equal(store_batch_end(other, false), 0);
    struct pollfd p = { .fd = store_feed_fd(feed), .events = POLLIN };
    assert_int_equal(poll(&p, 1, 300), 0);

    uint64_t g = generation(f->s, "r1");
    assert_int_equal(store_install_create(other, "web1", "el9", false, T0, NULL), 0);
    assert_int_equal(feed_wait(feed), 1);
    assert_string_equal(feed_racks, "r1");
    assert_int_equal(generation(f->s, "r1"), g + 1);

    /* racks_bump_of_profile: the profile of an active install changed. */
    model_profile el9 = {
        .name = (char[]){ "el9" },
        .cmdline = (char[]){ "console=ttyS1" },
        .images = images_el9,
        .n_images = ARRAY_SIZE(images_el9),
    };
    assert_int_equal(store_profile_import(other, &el9, true), 0);
    assert_int_equal(feed_wait(feed), 1);
    assert_string_equal(feed_racks, "r1");
    assert_int_equal(generation(f->s, "r1"), g + 2);

    /* Events stored through the other controller: one notification for
     * a transaction, however many batches; none when nothing was stored
     * (a re-sent batch). */
    status_out st = status(f->s, "web1");
    store_event e[] = { ev(1, st.install_id, "web1", P(DHCP_BOUND)),
                        ev(2, st.install_id, "web1", P(SCRIPT_SERVED)) };
    uint64_t through = 0;
    assert_int_equal(store_batch_begin(other), 0);
    assert_int_equal(store_events_ingest(other, "r1", 1, e, 1, T0, NULL, &through), 1);
    assert_int_equal(store_events_ingest(other, "r1", 1, e + 1, 1, T0, NULL, &through), 1);
    assert_int_equal(store_batch_end(other, true), 0);
    assert_int_equal(feed_wait(feed), 1);
    assert_string_equal(feed_racks, "+events");
    assert_int_equal(store_events_ingest(other, "r1", 1, e, 2, T0, NULL, &through), 0);
    p = (struct pollfd){ .fd = store_feed_fd(feed), .events = POLLIN };
    assert_int_equal(poll(&p, 1, 300), 0);

    /* The feed's connection is cut (a database restart): the read says
     * so, a reconnection listens again. */
    char sql[192];
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
             "WHERE datname = '%s' AND query LIKE 'LISTEN%%'",
             f->db);
    assert_int_equal(pg_query(pg_base_url(), sql), 1);
    int r = 0;
    for (int i = 0; i < 100 && r >= 0; i++) {
        p = (struct pollfd){ .fd = store_feed_fd(feed), .events = POLLIN };
        if (p.fd < 0 || poll(&p, 1, 100) > 0) {
            r = store_feed_read(feed, NULL, NULL);
        }
    }
    assert_int_equal(r, -EIO);
    assert_non_null(strstr(store_feed_errmsg(feed), "lost"));
    assert_int_equal(store_feed_reconnect(feed), 0);
    assert_int_equal(store_install_create(other, "db1", "el9", false, T0, NULL), 0);
    assert_int_equal(feed_wait(feed), 1);
    assert_string_equal(feed_racks, "r2");

    feed = store_feed_close(feed);
    other = store_close(other);
    check_store(f);
}

/* The expiry lock: held by one controller's connection at a time, kept
 * across ticks, passed on when the holder's session ends. */
static void test_pg_expiry_lock(void **state)
{
    fixture *f = *state;
    store *a = NULL, *b = NULL;
    char *err = NULL;
    assert_int_equal(store_open_url(f->url, &a, &err), 0);
    assert_int_equal(store_open_url(f->url, &b, &err), 0);
    assert_int_equal(store_expiry_lead(a), 1);
    assert_int_equal(store_expiry_lead(b), 0);
    assert_int_equal(store_expiry_lead(a), 1);
    assert_int_equal(store_expiry_lead(f->s), 0);
    assert_int_equal(store_expiry_lead(b), 0);
    a = store_close(a);
    /* The server ends a closed session's locks as its process exits: soon,
     * not at once. */
    int lead = 0;
    for (int i = 0; i < 200 && lead == 0; i++) {
        lead = store_expiry_lead(b);
        if (lead == 0) {
            usleep(50 * 1000);
        }
    }
    assert_int_equal(lead, 1);
    assert_int_equal(store_expiry_lead(f->s), 0);
    /* Held once, however many ticks asked: one close frees it. */
    b = store_close(b);
    lead = 0;
    for (int i = 0; i < 200 && lead == 0; i++) {
        lead = store_expiry_lead(f->s);
        if (lead == 0) {
            usleep(50 * 1000);
        }
    }
    assert_int_equal(lead, 1);
    check_store(f);
}

/* SQLite: one controller owns the file; it is not shared, has no feed and
 * always runs the expiry. */
static void test_one_controller(void **state)
{
    fixture *f = *state;
    assert_false(store_shared(f->s));
    store_feed *feed = NULL;
    char *err = NULL;
    assert_int_equal(store_feed_open(f->s, &feed, &err), -EOPNOTSUPP);
    assert_null(feed);
    free(err);
    assert_int_equal(store_expiry_lead(f->s), 1);
    assert_int_equal(store_expiry_lead(f->s), 1);
}

/* ---- PostgreSQL: a SQLite fleet moved in (store/copy.h) ---------------- */

/* A fleet with a row in every table, made through the API on `s`: racks
 * with agents (one with a status and render context), hosts with MACs, a
 * learned DUID and BMCs, two profiles sharing images, installs in several
 * states with their events, a power command done and one pending, audit
 * rows. *ret_power gets the commands' ids. */
static void fleet_build(store *s, char ret_power[2][STORE_POWER_ID_LEN + 1])
{
    add_profile(s, "el9");
    model_profile p = {
        .name = (char[]){ "el9-ra" },
        .cmdline = (char[]){ "console=tty0" },
        .kickstart = (char[]){ "text\n" },
        .keep_ra = true,
        .any_source = true,
        .root_device = (char[]){ "/dev/vda" },
        .images = images_el9,
        .n_images = ARRAY_SIZE(images_el9),
    };
    assert_int_equal(store_profile_import(s, &p, false), 0);
    add_host(s, "web1", "r1", 1);
    add_host(s, "web2", "r1", 2);
    add_host(s, "web3", "r1", 3);
    add_host(s, "db1", "r2", 101);
    store_host two = make_host("db2", "r2", 102);
    two.n_macs = 2;
    two.macs[1][5] = 0xee;
    two.has_gateway = true;
    memcpy(two.gateway, two.address, 16);
    two.gateway[15] = 1;
    snprintf(two.hostname, sizeof(two.hostname), "db2.example.org");
    assert_int_equal(store_host_add(s, &two, false), 0);
    add_bmc_host(s, "bmc1", 201, MODEL_FIRMWARE_UEFI);
    add_bmc_host(s, "bmc2", 202, MODEL_FIRMWARE_BIOS);

    char id1[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1], id3[STORE_ID_LEN + 1];
    char id4[STORE_ID_LEN + 1];
    assert_int_equal(store_install_create(s, "web1", "el9", false, T0, id1), 0);
    assert_int_equal(store_install_create(s, "web2", "el9-ra", false, T0, id2), 0);
    assert_int_equal(store_install_create(s, "web3", "el9", false, T0, id3), 0);
    assert_int_equal(store_install_create(s, "db1", "el9", false, T0, id4), 0); /* requested */
    assert_int_equal(store_agent_seen(s, "r1", 1, "agent-r1", "0.9.1", T0 + 1), 0);
    assert_int_equal(store_agent_ack(s, "r1", 1, generation(s, "r1"), T0 + 2), 3);
    static const uint8_t ctx[] = { 0x0a, 0x03, 'a', 'b', 'c' };
    store_agent_status st = { .cache_bytes = 123456789,
                              .cache_limit_bytes = 1ull << 34,
                              .render_context = ctx,
                              .render_context_len = sizeof(ctx) };
    assert_int_equal(store_agent_status_set(s, "r1", 1, &st, T0 + 3), 0);
    assert_int_equal(store_agent_journal(s, "r1", 1, "journal-r1"), 0);
    const uint8_t duid[] = { 0x00, 0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77 };
    store_host web1 = make_host("web1", "r1", 1);
    store_event e[] = {
        ev(1, id1, "web1", P(DHCP_BOUND)),    ev(2, id1, "web1", P(DUID_LEARNED)),
        ev(3, id1, "web1", P(SCRIPT_SERVED)), ev(4, id1, "web1", P(INSTALLED)),
        ev(5, id2, "web2", P(DHCP_BOUND)),    ev(6, id2, "web2", P(FAILED)),
        ev(7, id3, "web3", P(DHCP_BOUND)),    ev(8, id1, "db1", P(DHCP_BOUND)), /* refused */
    };
    e[1].mac = web1.macs[0];
    e[1].duid = duid;
    e[1].duid_len = sizeof(duid);
    e[5].message = "disk not found";
    uint64_t through;
    assert_int_equal(store_events_ingest(s, "r1", 1, e, ARRAY_SIZE(e), T0 + 10, NULL, &through), 7);
    assert_int_equal(status(s, "web1").state, INSTALL_INSTALLED);
    assert_int_equal(status(s, "web2").state, INSTALL_FAILED);
    assert_int_equal(store_install_cancel(s, "web3", T0 + 11, NULL), 0);
    assert_int_equal(store_install_create(s, "web3", "el9-ra", false, T0 + 12, id3), 0);

    store_power_outcome out[2];
    assert_int_equal(store_batch_begin(s), 0);
    assert_int_equal(store_power_create(s, (const char *[]){ "bmc1", "bmc2" }, 2,
                                        RACKBOOT__V1__POWER_ACTION__POWER_ACTION_CYCLE,
                                        RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_PXE, NULL, T0 + 20,
                                        out),
                     2);
    assert_int_equal(store_batch_end(s, true), 0);
    assert_int_equal(store_agent_seen(s, "r3", 1, "agent-r3", "0.9.1", T0 + 21), 0);
    store_event pe = { .seq = 1,
                       .time_ms = T0 + 22,
                       .host = "bmc1",
                       .phase = P(POWER_CYCLE),
                       .message = "cycled",
                       .power_id = out[0].id,
                       .power_state = RACKBOOT__V1__POWER_STATE__POWER_STATE_ON };
    assert_int_equal(store_events_ingest(s, "r3", 1, &pe, 1, T0 + 22, NULL, &through), 1);
    for (int i = 0; i < 2; i++) {
        memcpy(ret_power[i], out[i].id, sizeof(out[i].id));
    }

    store_audit a = { .time_ms = T0 + 30,
                      .who = "operator:alice",
                      .verb = "install",
                      .hosts = (const char *[]){ "web1", "web2" },
                      .n_hosts = 2,
                      .ok = true,
                      .result = "ok" };
    assert_int_equal(store_audit_append(s, &a), 0);
    a = (store_audit){ .time_ms = T0 + 31,
                       .who = "local:uid=0",
                       .verb = "profile import",
                       .profiles = (const char *[]){ "el9" },
                       .n_profiles = 1,
                       .ok = false,
                       .result = "profile el9 exists" };
    assert_int_equal(store_audit_append(s, &a), 0);
}

static void hex(FILE *f, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%02x", b[i]);
    }
    fputc(' ', f);
}

static int dump_rack(const store_rack *r, void *userdata)
{
    fprintf(userdata,
            "rack %s %s %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %u %" PRIu64
            " %" PRIu64 " %" PRIu64 " %d\n",
            r->name, r->agent, r->agent_version, r->last_seen_ms, r->generation,
            r->acked_generation, r->stored_through, r->hosts, r->active_installs, r->cache_bytes,
            r->cache_limit_bytes, r->status_ms, r->has_render_context);
    return 0;
}

static int dump_host(const store_host *h, void *userdata)
{
    FILE *f = userdata;
    fprintf(f, "host %s %s ", h->name, h->rack);
    for (size_t i = 0; i < h->n_macs; i++) {
        hex(f, h->macs[i], 6);
    }
    hex(f, h->address, 16);
    if (h->has_gateway) {
        hex(f, h->gateway, 16);
    }
    hex(f, h->duid, h->duid_len);
    fprintf(f, "%u %s %s %s %d %d %d %" PRIu64 "\n", h->prefix_length, h->hostname, h->bmc_url,
            h->bmc_user, h->bmc_password_set, h->firmware, h->power_state, h->power_updated_ms);
    return 0;
}

static int dump_profile(const model_profile *p, void *userdata)
{
    FILE *f = userdata;
    fprintf(f, "profile %s %d %s [%s] %d %d %d %d %d %s %zu\n", p->name, p->kind,
            p->cmdline ? p->cmdline : "", p->kickstart ? p->kickstart : "", p->overlay, p->ip,
            p->uefi, p->keep_ra, p->any_source, p->root_device ? p->root_device : "", p->n_images);
    hex(f, p->kickstart_sha256, 32);
    fputc('\n', f);
    return 0;
}

static int dump_image(const char *profile, const model_image *im, void *userdata)
{
    FILE *f = userdata;
    fprintf(f, "image %s %s %d %s %" PRIu64 " ", profile, im->name, im->kind, im->url, im->size);
    hex(f, im->sha256, 32);
    fputc('\n', f);
    return 0;
}

static int dump_status(const store_status *st, void *userdata)
{
    fprintf(userdata, "status %s %s %s %s %d %d %u %" PRIu64 " %u [%s] %d %" PRIu64 "\n", st->host,
            st->rack, st->install_id, st->profile, st->state, st->phase, st->percent,
            st->updated_ms, st->attempt, st->message, st->power_state, st->power_updated_ms);
    return 0;
}

static int dump_event(const store_event_row *e, void *userdata)
{
    fprintf(userdata, "event %" PRIu64 " %" PRIu64 " %s %s %d %u [%s]\n", e->seq, e->time_ms,
            e->host, e->install_id, e->phase, e->percent, e->message);
    return 0;
}

static int dump_audit(const store_audit *a, void *userdata)
{
    fprintf(userdata, "audit %" PRIu64 " %" PRIu64 " %s %s [%s] %u [%s] %d %s\n", a->seq,
            a->time_ms, a->who, a->verb, a->hosts_text, a->host_count, a->profiles_text, a->ok,
            a->result);
    return 0;
}

static int dump_intent(const store_intent *in, void *userdata)
{
    fprintf(userdata, "intent %s %s %u %d %s %s\n", in->install_id, in->token, in->attempt,
            in->state, in->host->name, in->profile->name);
    return 0;
}

static int dump_bmc(const store_bmc *b, void *userdata)
{
    fprintf(userdata, "bmc %s %s %s %s %d\n", b->host, b->url, b->user, b->password, b->firmware);
    return 0;
}

static int dump_power(const store_power *p, void *userdata)
{
    fprintf(userdata, "power %s %s %d %d %d %s %d %d %d [%s] %" PRIu64 "\n", p->id, p->host,
            p->action, p->boot_device, p->efi, p->install_id, p->done, p->ok, p->power_state,
            p->message, p->updated_ms);
    return 0;
}

/* Everything the API shows of the fleet, as text (malloc()ed). */
static char *fleet_dump(store *s, char power[2][STORE_POWER_ID_LEN + 1])
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(store_racks_list(s, dump_rack, f), 0);
    assert_true(store_hosts_list(s, NULL, dump_host, f) > 0);
    assert_true(store_profiles_list(s, true, dump_profile, f) >= 0);
    assert_true(store_images_list(s, dump_image, f) >= 0);
    assert_true(store_status_list(s, NULL, dump_status, f) > 0);
    assert_true(store_events_list(s, NULL, 0, 0, dump_event, f) > 0);
    assert_true(store_audit_list(s, 0, 0, 0, dump_audit, f) > 0);
    uint64_t counts[INSTALL_STATE_LAST + 1], last = 0;
    assert_int_equal(store_installs_count(s, counts), 0);
    for (int i = 1; i <= INSTALL_STATE_LAST; i++) {
        fprintf(f, "count %d %" PRIu64 "\n", i, counts[i]);
    }
    assert_int_equal(store_events_last_seq(s, &last), 0);
    fprintf(f, "last %" PRIu64 "\n", last);
    const char *racks[] = { "r1", "r2", "r3" };
    for (size_t i = 0; i < ARRAY_SIZE(racks); i++) {
        uint64_t gen = 0, through = 0;
        assert_int_equal(store_rack_intents(s, racks[i], &gen, dump_intent, f), 0);
        assert_int_equal(store_rack_get(s, racks[i], &gen, &through), 0);
        fprintf(f, "rack %s %" PRIu64 " %" PRIu64 "\n", racks[i], gen, through);
        assert_int_equal(store_rack_power(s, racks[i], dump_bmc, dump_power, f), 0);
    }
    const char *ids[] = { power[0], power[1] };
    assert_int_equal(store_power_results(s, ids, 2, dump_power, f), 2);
    void *ctx = NULL;
    size_t ctx_len = 0;
    assert_int_equal(store_agent_render_context(s, "r1", &ctx, &ctx_len), 0);
    hex(f, ctx, ctx_len);
    free(ctx);
    store_host h;
    assert_int_equal(store_host_get(s, "db2", &h), 0);
    dump_host(&h, f);
    assert_int_equal(fclose(f), 0);
    return text;
}

typedef struct copied {
    size_t tables;
    char names[1024]; /* in copy order */
    char empty[256];  /* tables copied with no row */
} copied;

static int copied_cb(const char *table, uint64_t rows, void *userdata)
{
    copied *c = userdata;
    c->tables++;
    size_t n = strlen(c->names);
    snprintf(c->names + n, sizeof(c->names) - n, "%s ", table);
    if (rows == 0) {
        n = strlen(c->empty);
        snprintf(c->empty + n, sizeof(c->empty) - n, "%s ", table);
    }
    return 0;
}

/* A SQLite fleet copied into an empty PostgreSQL database reads back the
 * same through every listing, and new rows get fresh ids (the identity
 * sequences were moved past the copied ones). */
static void test_pg_copy_from_sqlite(void **state)
{
    (void)state;
    fixture src, dst;
    memset(&src, 0, sizeof(src));
    memset(&dst, 0, sizeof(dst));
    sqlite_create(&src);
    pg_create(&dst);
    char power[2][STORE_POWER_ID_LEN + 1];
    assert_int_equal(store_open_url(src.url, &src.s, NULL), 0);
    fleet_build(src.s, power);
    char *before = fleet_dump(src.s, power);

    /* a running controller holds the file */
    char *err = NULL;
    assert_int_equal(store_copy(src.url, dst.url, NULL, NULL, &err), -EBUSY);
    assert_non_null(strstr(err, "stop it first"));
    free(err);
    err = NULL;
    src.s = store_close(src.s);
    /* the target has no schema */
    assert_int_equal(store_copy(src.url, dst.url, NULL, NULL, &err), -EPROTO);
    assert_non_null(strstr(err, "--migrate"));
    free(err);
    err = NULL;

    assert_int_equal(store_open_url(dst.url, &dst.s, NULL), 0);
    dst.s = store_close(dst.s);
    copied c = { 0 };
    int r = store_copy(src.url, dst.url, copied_cb, &c, &err);
    if (r != 0) {
        fail_msg("store_copy: %d %s", r, err ? err : "");
    }
    assert_null(err);
    /* every table, each after those it references; fleet_build() puts a
     * row in each, so a table a migration adds is tested once it does */
    assert_int_equal(c.tables, query_int(src.path, "SELECT count(*) FROM sqlite_master WHERE "
                                                   "type = 'table' AND name NOT LIKE 'sqlite_%'"));
    if (c.empty[0]) {
        fail_msg("fleet_build() left tables empty: %s", c.empty);
    }
    assert_true(strstr(c.names, "racks ") < strstr(c.names, "hosts "));
    assert_true(strstr(c.names, "host_macs ") < strstr(c.names, "host_duids "));
    assert_true(strstr(c.names, "installs ") < strstr(c.names, "events "));
    assert_true(strstr(c.names, "installs ") < strstr(c.names, "power_commands "));
    assert_int_equal(pg_query(dst.url, "SELECT count(*) FROM events"), 9);
    assert_int_equal(pg_query(dst.url, "SELECT count(*) FROM events WHERE refused IS NOT NULL"), 1);

    assert_int_equal(store_open_url(dst.url, &dst.s, NULL), 0);
    char *after = fleet_dump(dst.s, power);
    assert_string_equal(after, before);
    free(after);
    free(before);

    /* new rows after the copy: fresh ids, later seqs */
    uint64_t last = 0, next = 0;
    assert_int_equal(store_events_last_seq(dst.s, &last), 0);
    add_host(dst.s, "web4", "r1", 4);
    add_host(dst.s, "new1", "r9", 900);
    char id[STORE_ID_LEN + 1];
    assert_int_equal(store_install_create(dst.s, "web4", "el9", false, T0 + 40, id), 0);
    assert_int_equal(store_install_create(dst.s, "db1", "el9", true, T0 + 40, id), 0);
    model_profile p = { .name = (char[]){ "el10" },
                        .images = images_el9,
                        .n_images = ARRAY_SIZE(images_el9) };
    assert_int_equal(store_profile_import(dst.s, &p, false), 0);
    store_event e = ev(100, id, "db1", P(DHCP_BOUND));
    uint64_t through;
    assert_int_equal(store_agent_seen(dst.s, "r2", 1, "agent-r2", "1.0", T0 + 41), 0);
    assert_int_equal(store_events_ingest(dst.s, "r2", 1, &e, 1, T0 + 41, NULL, &through), 1);
    assert_int_equal(store_events_last_seq(dst.s, &next), 0);
    assert_true(next > last);
    store_audit a = {
        .time_ms = T0 + 42, .who = "local:uid=0", .verb = "hosts add", .ok = true, .result = "ok"
    };
    assert_int_equal(store_audit_append(dst.s, &a), 0);
    assert_int_equal(status(dst.s, "web4").state, INSTALL_REQUESTED);
    store_power_outcome out;
    assert_int_equal(store_batch_begin(dst.s), 0);
    assert_int_equal(store_power_create(dst.s, (const char *[]){ "bmc2" }, 1,
                                        RACKBOOT__V1__POWER_ACTION__POWER_ACTION_ON, 0, NULL,
                                        T0 + 43, &out),
                     1);
    assert_int_equal(store_batch_end(dst.s, true), 0);
    dst.s = store_close(dst.s);

    /* a second import into a fleet: refused, nothing changed */
    int64_t hosts = pg_query(dst.url, "SELECT count(*) FROM hosts");
    assert_int_equal(store_copy(src.url, dst.url, NULL, NULL, &err), -EEXIST);
    assert_non_null(strstr(err, "not empty"));
    free(err);
    assert_int_equal(pg_query(dst.url, "SELECT count(*) FROM hosts"), hosts);
    pg_check(&dst);
    pg_destroy(&dst);
    sqlite_destroy(&src);
}

/* A source at another schema version than the target is refused before
 * anything is written, telling the operator which one to bring up. */
static void test_pg_copy_version_mismatch(void **state)
{
    (void)state;
    fixture src, dst;
    memset(&src, 0, sizeof(src));
    memset(&dst, 0, sizeof(dst));
    sqlite_create(&src);
    pg_create(&dst);
    assert_int_equal(store_open_url(src.url, &src.s, NULL), 0);
    add_host(src.s, "web1", "r1", 1);
    src.s = store_close(src.s);
    assert_int_equal(store_open_url(dst.url, &dst.s, NULL), 0);
    dst.s = store_close(dst.s);

    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION - 1);
    assert_int_equal(exec_sql(src.path, sql), SQLITE_OK);
    char *err = NULL;
    assert_int_equal(store_copy(src.url, dst.url, NULL, NULL, &err), -EPROTO);
    assert_non_null(strstr(err, "bring the source"));
    free(err);
    err = NULL;
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION + 1);
    assert_int_equal(exec_sql(src.path, sql), SQLITE_OK);
    assert_int_equal(store_copy(src.url, dst.url, NULL, NULL, &err), -EPROTO);
    assert_non_null(strstr(err, "rackboot-controller of the source's version"));
    free(err);
    err = NULL;
    assert_int_equal(pg_query(dst.url, "SELECT count(*) FROM hosts"), 0);

    /* only sqlite:// into postgresql:// */
    assert_int_equal(store_copy(dst.url, src.url, NULL, NULL, &err), -EPROTONOSUPPORT);
    free(err);
    pg_destroy(&dst);
    sqlite_destroy(&src);
}

/* A row the target refuses midway (here a trigger's exception on the
 * third event, inside a pipelined batch) fails the copy with the
 * server's reason, and the target keeps none of it: tables copied before
 * are rolled back too. */
static void test_pg_copy_failure_undone(void **state)
{
    (void)state;
    fixture src, dst;
    memset(&src, 0, sizeof(src));
    memset(&dst, 0, sizeof(dst));
    sqlite_create(&src);
    pg_create(&dst);
    char power[2][STORE_POWER_ID_LEN + 1];
    assert_int_equal(store_open_url(src.url, &src.s, NULL), 0);
    fleet_build(src.s, power);
    src.s = store_close(src.s);
    assert_int_equal(store_open_url(dst.url, &dst.s, NULL), 0);
    dst.s = store_close(dst.s);
    pg_query(dst.url, "CREATE FUNCTION no_third() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                      "IF NEW.agent_seq = 3 THEN RAISE EXCEPTION 'third event refused'; END IF; "
                      "RETURN NEW; END $$");
    pg_query(dst.url, "CREATE TRIGGER no_third BEFORE INSERT ON events FOR EACH ROW "
                      "EXECUTE FUNCTION no_third()");
    char *err = NULL;
    assert_int_equal(store_copy(src.url, dst.url, NULL, NULL, &err), -EIO);
    if (!strstr(err, "events: third event refused")) {
        fail_msg("%s", err);
    }
    free(err);
    assert_int_equal(pg_query(dst.url, "SELECT count(*) FROM racks"), 0);
    assert_int_equal(pg_query(dst.url, "SELECT count(*) FROM hosts"), 0);
    assert_int_equal(pg_query(dst.url, "SELECT count(*) FROM events"), 0);
    pg_check(&dst);
    pg_destroy(&dst);
    sqlite_destroy(&src);
}

/* What --migrate and a start read: the version as it is, nothing made. */
static void test_pg_peek_version(void **state)
{
    fixture *f = *state;
    fixture fresh;
    memset(&fresh, 0, sizeof(fresh));
    pg_create(&fresh);
    int v = -1;
    char *err = NULL;
    assert_int_equal(store_peek_version_url(fresh.url, &v, &err), 0);
    assert_int_equal(v, 0);
    assert_int_equal(pg_query(fresh.url, "SELECT count(*) FROM pg_tables WHERE schemaname = "
                                         "current_schema()"),
                     0);
    assert_int_equal(store_peek_version_url(f->url, &v, &err), 0);
    assert_int_equal(v, STORE_SCHEMA_VERSION);
    assert_true(store_url_is_shared(f->url));
    assert_false(store_url_is_shared("sqlite:///tmp/fleet.db"));
    pg_destroy(&fresh);

    fixture lite;
    memset(&lite, 0, sizeof(lite));
    sqlite_create(&lite);
    assert_int_equal(store_peek_version(lite.path, &v, &err), 0);
    assert_int_equal(v, 0);
    assert_int_equal(access(lite.path, F_OK), -1); /* not created */
    assert_int_equal(store_open(lite.path, &lite.s, NULL), 0);
    assert_int_equal(store_peek_version_url(lite.url, &v, &err), 0); /* while held */
    assert_int_equal(v, STORE_SCHEMA_VERSION);
    lite.s = store_close(lite.s);
    sqlite_destroy(&lite);
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : getenv("RACKBOOT_TEST_STORE_BACKEND");
    if (!name || !*name) {
        name = "sqlite";
    }
    for (size_t i = 0; i < ARRAY_SIZE(backends); i++) {
        if (strcmp(name, "list") == 0) {
            printf("%s\n", backends[i].name);
        } else if (strcmp(name, backends[i].name) == 0) {
            backend = &backends[i];
        }
    }
    if (strcmp(name, "list") == 0) {
        return 0;
    }
    if (!backend) {
        fprintf(stderr, "test_store: no store backend \"%s\" (test_store list)\n", name);
        return 2;
    }
    /* Behaviour through the store API, on every backend. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_constraints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_install_create_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_bmc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_failed_and_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stored_through_gaps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_batch_read_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_milestones_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_after_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debian_installer_first_boot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duid_learned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_root_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_uefi_boot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_image_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_debian_installer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_racks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_agents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_events_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_with_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_pages, setup, teardown),
    };
    /* The SQLite file itself. */
    const struct CMUnitTest sqlite_tests[] = {
        cmocka_unit_test_setup_teardown(test_migrate_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_constraints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_query_plans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_mid_ingest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_controller, setup, teardown),
    };
    /* The rules (fleet*.c) over the SQLite backend's ops, spied on. */
    const struct CMUnitTest seam_tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_grouped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules_drive_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules_undo_on_backend_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_installs_batched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_installs_read_ahead, setup, teardown),
    };
    /* A PostgreSQL database shared by controllers, and its restarts. */
    const struct CMUnitTest postgresql_tests[] = {
        cmocka_unit_test_setup_teardown(test_pg_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_migration_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_deferred_write_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_feed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_expiry_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_copy_from_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_copy_version_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_copy_failure_undone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_peek_version, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name(backend->name, tests, NULL, NULL);
    if (strcmp(backend->name, "sqlite") == 0) {
        failed += cmocka_run_group_tests_name("sqlite file", sqlite_tests, NULL, NULL);
        failed += cmocka_run_group_tests_name("rules over backend ops", seam_tests, NULL, NULL);
    }
    if (strcmp(backend->name, "postgresql") == 0) {
        failed += cmocka_run_group_tests_name("postgresql server", postgresql_tests, NULL, NULL);
    }
    return failed;
}

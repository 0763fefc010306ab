# A throwaway PostgreSQL server for the tests (sourced, not run).
#
#   pg_start DIR    initdb into DIR/data and start a server listening only
#                   on a Unix socket in DIR/sock (no TCP port to collide
#                   with); sets PG_URL to its maintenance database
#   pg_stop         stops it (pg_start arranges it on EXIT too)
#
# PostgreSQL refuses to run as root: as root, the cluster belongs to the
# `postgres` system user (the Debian package makes it) and DIR is handed
# to it. fsync stays on: the store's durability is what is being tested.
# The binaries are Debian's (/usr/lib/postgresql/VERSION/bin, the newest),
# or PG_BINDIR's. Missing binaries are a SKIP (exit 77), as for every
# other peer these tests need; deploy/install-deps.sh installs them.

pg_find_bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then
        echo "$PG_BINDIR"
        return
    fi
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# pg_as CMD...: runs CMD as the cluster's owner.
pg_as() {
    if [ "$(id -u)" = 0 ]; then
        # from /: the caller's directory may be one postgres cannot enter
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

pg_stop() {
    if [ -n "${PG_DIR:-}" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
        pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
    fi
}

pg_start() {
    PG_DIR=$1
    PG_BIN=$(pg_find_bindir)
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
        echo "SKIP: no PostgreSQL server binaries (apt-get install postgresql, or set PG_BINDIR;" \
             "deploy/install-deps.sh installs them)"
        exit 77
    fi
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || {
            echo "FAIL: running as root and there is no postgres user to run the server as"
            exit 1
        }
        chown postgres: "$PG_DIR"
    fi
    mkdir -p "$PG_DIR/sock" || exit 1
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$PG_DIR/sock"
    fi
    # --no-sync: only initdb's own final sync; the server keeps fsync on.
    if ! pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 \
            --locale=C.UTF-8 --no-sync >"$PG_DIR/initdb.log" 2>&1; then
        echo "FAIL: initdb (see below)"
        cat "$PG_DIR/initdb.log"
        exit 1
    fi
    # One line: pg_ctl hands -o to a shell, where a newline ends the command
    # (and with it the redirection into server.log).
    local opts="-c listen_addresses='' -c unix_socket_directories='$PG_DIR/sock' -c port=5432"
    # PG_OPTS: the caller's sizing (the benchmarks'); the tests' is small
    opts="$opts ${PG_OPTS:--c shared_buffers=16MB -c max_connections=40}"
    if ! pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
            -o "$opts" start >/dev/null; then
        echo "FAIL: the PostgreSQL server did not start (see below)"
        cat "$PG_DIR/server.log"
        exit 1
    fi
    PG_URL="postgresql:///postgres?host=$PG_DIR/sock&port=5432&user=postgres"
    export PG_URL
}

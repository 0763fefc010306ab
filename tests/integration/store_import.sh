#!/bin/bash
# Moving a fleet from SQLite to PostgreSQL (issue 17): a real controller on
# its SQLite store gets a fleet through the CLI; --migrate there is refused
# while it runs and says "already at" once it is stopped; then, on a
# throwaway PostgreSQL server (postgres_lib.sh):
#
#   (a) `rackboot-controller --migrate` gives the empty database its schema
#       ("schema 0 → N"), a second run says "already at N", and neither
#       prints the URL's password;
#   (b) `--import-store sqlite:///…/fleet.db` copies the fleet, table by
#       table with counts; an import from a running controller's store, a
#       second import (the target is not empty) and an import into a
#       SQLite store are refused;
#   (c) the controller started on PostgreSQL shows the same status, hosts,
#       racks, profiles, events and audit as it did on SQLite, and takes
#       new hosts and installs (fresh ids);
#   (d) a start on a shared database at an older schema is refused with
#       "run rackboot-controller --migrate" (a rolling upgrade migrates
#       explicitly), while a start on an empty one migrates it.
#
# usage: store_import.sh CONTROLLER CLI
set -u
CONTROLLER=${1:?usage: $0 CONTROLLER CLI}
CLI_BIN=${2:?}
TEST_NAME=store_import
. "$(dirname "$0")/postgres_lib.sh"
# shellcheck source=controller_lib.sh
. "$(dirname "$0")/controller_lib.sh"

T=$(mktemp -d /tmp/rackboot-import.XXXXXX)
FAIL_LOGS="ctl.log cli.out"
# the server's own directory: as root, pg_start hands it to postgres
PGT=$(mktemp -d /tmp/rackboot-import-pg.XXXXXX)
CTL_PID=""
cleanup() {
    if [ -n "$CTL_PID" ]; then
        kill "$CTL_PID" 2>/dev/null
        wait "$CTL_PID" 2>/dev/null
    fi
    pg_stop
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "kept $T $PGT"
    else
        rm -rf "$T" "$PGT"
    fi
}
trap cleanup EXIT

pg_start "$PGT" # from here: the server's owner cannot enter $T
cd "$T" || exit 1
psql_do() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At "$@"; }
# The store's database; the password is not checked (trust) but must never
# be printed.
psql_do "$PG_URL" -c "CREATE DATABASE fleet" || fail "create database"
FLEET_URL="postgresql:///fleet?host=$PGT/sock&port=5432&user=postgres&password=hunter2"

# Every controller here, one at a time, answers on ctl.sock and logs to
# ctl.log.
conf() { # conf NAME [STORE_URL]
    if [ -n "${2:-}" ]; then
        ctl_conf "$1" ctl "[store]" "url = $2"
    else
        ctl_conf "$1" ctl
    fi
}
start() { # start NAME
    : >ctl.log
    ctl_start CTL_PID "$1" ctl.log
    wait_for 60 ctl_started ctl.log || fail "controller $1 did not start"
}
stop() {
    kill "$CTL_PID" || fail "controller gone before its stop"
    wait "$CTL_PID"
    CTL_PID=""
}
cli() { ctl_cli ctl "$@"; }
# What the operators see, as JSON (absolute times, no "5s ago").
snapshot() { # snapshot FILE
    {
        cli status --json
        cli hosts list --json
        cli racks --json
        cli profiles list --json
        cli images list --json
        cli events --json
        cli audit --json
    } >"$1" 2>cli.out || fail "snapshot: $(cat cli.out)"
}

# ---- a fleet on SQLite ------------------------------------------------------
step "a fleet on SQLite; --migrate there"
conf old
start old
sha=sha256=$(printf '%064d' 1)
cat >profiles.conf <<EOF
[profile el9]
kernel = http://mirror.example.com/vmlinuz $sha
initrd = http://mirror.example.com/initrd.img $sha
cmdline = console=ttyS0
[profile el9ra]
kernel = http://mirror.example.com/vmlinuz $sha
initrd = http://mirror.example.com/initrd.img $sha
keep_ra = yes
EOF
cli profiles import profiles.conf >cli.out 2>&1 || fail "profiles import: $(cat cli.out)"
i=0
for h in web1 web2 web3 db1 db2; do
    i=$((i + 1))
    rack="rack-a"
    [ "${h#db}" != "$h" ] && rack="rack-b"
    cli hosts add "$h" --mac "52:54:00:00:00:0$i" --mac "52:54:00:00:01:0$i" --rack "$rack" \
        --address "2001:db8:1::1$i" >cli.out 2>&1 || fail "hosts add $h: $(cat cli.out)"
done
cli install web1 web2 db1 --profile el9 >cli.out 2>&1 || fail "install: $(cat cli.out)"
cli install web3 --profile el9ra >cli.out 2>&1 || fail "install web3: $(cat cli.out)"
cli cancel web2 >cli.out 2>&1 || fail "cancel: $(cat cli.out)"
cli install web2 --profile el9ra >cli.out 2>&1 || fail "install web2 again: $(cat cli.out)"
snapshot before.json
grep -q '"web3"' before.json || fail "the snapshot has no hosts: $(head -c 300 before.json)"
# the running controller holds its file: neither --migrate nor an import
# may touch it
"$CONTROLLER" --config old.conf --migrate >migrate.out 2>&1 && fail "--migrate on a held SQLite store"
grep -q 'in use by another process' migrate.out || fail "--migrate on a held store said: $(cat migrate.out)"
stop
"$CONTROLLER" --config old.conf --migrate >migrate.out 2>&1 || fail "--migrate on SQLite: $(cat migrate.out)"
grep -Eq "^store $T/old-state/fleet.db: already at schema [0-9]+\$" migrate.out ||
    fail "--migrate on SQLite said: $(cat migrate.out)"

# ---- (a) --migrate ------------------------------------------------------------
step "(a) --migrate on an empty PostgreSQL database"
conf new "$FLEET_URL"
"$CONTROLLER" --config new.conf --migrate >migrate.out 2>&1 || fail "--migrate: $(cat migrate.out)"
grep -Eq '^store postgresql:///fleet\?.*password=\*\*\*.*: schema 0 → [0-9]+$' migrate.out ||
    fail "--migrate said: $(cat migrate.out)"
version=$(sed -n 's/.*schema 0 → \([0-9]*\)$/\1/p' migrate.out)
"$CONTROLLER" --config new.conf --migrate >migrate.out 2>&1 || fail "--migrate again: $(cat migrate.out)"
grep -Eq ": already at schema $version\$" migrate.out || fail "--migrate again said: $(cat migrate.out)"
grep -q hunter2 migrate.out && fail "--migrate printed the password"

# ---- (b) --import-store -------------------------------------------------------
step "(b) --import-store copies the SQLite fleet"
start old # a running controller holds the source
"$CONTROLLER" --config new.conf --import-store "sqlite://$T/old-state/fleet.db" >import.out 2>&1 &&
    fail "an import from a running controller's store succeeded"
grep -q 'stop it first' import.out || fail "an import from a held store said: $(cat import.out)"
stop
"$CONTROLLER" --config new.conf --import-store "sqlite://$T/old-state/fleet.db" >import.out 2>&1 ||
    fail "--import-store: $(cat import.out)"
grep -Eq '^  hosts +5 rows$' import.out || fail "--import-store said: $(cat import.out)"
grep -Eq '^  host_macs +10 rows$' import.out || fail "--import-store said: $(cat import.out)"
grep -Eq '^  installs +5 rows$' import.out || fail "--import-store said: $(cat import.out)"
grep -q hunter2 import.out && fail "--import-store printed the password"
"$CONTROLLER" --config new.conf --import-store "sqlite://$T/old-state/fleet.db" >import.out 2>&1 &&
    fail "a second import succeeded"
grep -q 'not empty' import.out || fail "a second import said: $(cat import.out)"
# only into PostgreSQL
"$CONTROLLER" --config old.conf --import-store "sqlite://$T/old-state/fleet.db" >import.out 2>&1 &&
    fail "an import into SQLite succeeded"
grep -q 'is not PostgreSQL' import.out || fail "an import into SQLite said: $(cat import.out)"

# ---- (c) the controller on PostgreSQL -----------------------------------------
step "(c) the controller on PostgreSQL shows the same fleet"
start new
grep -q 'hunter2' ctl.log && fail "the controller logged the password"
snapshot after.json
diff -u before.json after.json >diff.out || fail "the fleet differs after the import: $(head -n 40 diff.out)"
cli hosts add web9 --mac 52:54:00:00:00:99 --rack rack-a --address 2001:db8:1::99 >cli.out 2>&1 ||
    fail "hosts add after the import: $(cat cli.out)"
cli install web9 db2 --profile el9 >cli.out 2>&1 || fail "install after the import: $(cat cli.out)"
cli status web9 db2 >cli.out 2>&1 || fail "status after the import: $(cat cli.out)"
[ "$(grep -c requested cli.out)" = 2 ] || fail "new installs: $(cat cli.out)"
stop

# ---- (d) a shared store at an older schema --------------------------------------
step "(d) a start on a shared store at an older schema is refused"
psql_do "$PG_URL" -c "CREATE DATABASE older" || fail "create database older"
OLDER_URL="postgresql:///older?host=$PGT/sock&port=5432&user=postgres"
conf older "$OLDER_URL"
start older # empty: migrated at start, as a new deployment's
stop
psql_do "$OLDER_URL" -c "UPDATE rackboot_schema SET version = $((version - 1))" ||
    fail "set an older version"
"$CONTROLLER" --config older.conf >ctl.log 2>&1 && fail "a start on an older schema succeeded"
grep -q "has schema version $((version - 1)), this controller needs $version: run rackboot-controller --migrate" ctl.log ||
    fail "a start on an older schema said: $(cat ctl.log)"
echo "PASS: $TEST_NAME"

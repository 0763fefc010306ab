#!/bin/bash
# The fleet store's behaviour tests on the PostgreSQL backend: a throwaway
# server (postgres_lib.sh), then `test_store postgresql`, which makes and
# drops a database per test, plus the tests of a database several
# controllers share (concurrent migration, a second controller's writes,
# reconnecting after the server drops the connection).
#
# usage: store_postgresql.sh TEST_STORE
set -u
TEST_STORE=${1:?usage: $0 TEST_STORE}
. "$(dirname "$0")/postgres_lib.sh"

T=$(mktemp -d /tmp/rackboot-pg.XXXXXX)
cleanup() {
    pg_stop
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

pg_start "$T"
RACKBOOT_TEST_PG_URL=$PG_URL "$TEST_STORE" postgresql
rc=$?
if [ "$rc" != 0 ]; then
    echo "--- server log"
    tail -n 50 "$T/server.log"
fi
exit "$rc"

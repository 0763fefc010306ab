#!/bin/bash
# PostgreSQL restarted under load (issue 17): a real rackboot-controller on
# a throwaway PostgreSQL server (postgres_lib.sh), an agent (rb-fake-agent,
# the real session and wire) long-polling and sending its journal in
# batches as the uplink does (the same seqs again until acknowledged).
# While it sends, the server is restarted twice: once cleanly (-m fast:
# every connection closed) and once as a crash (-m immediate, recovery at
# start). The controller must outlive both without a restart of its own:
#
#   - every event is stored exactly once (seqs 1..N, no gap, no duplicate),
#     and every batch is eventually acknowledged;
#   - the agent's long poll is answered again after each restart, and an
#     install submitted after them reaches it;
#   - the CLI answers, and the controller says in its log that it lost the
#     database and carried on.
#
# usage: controller_pg_restart.sh CONTROLLER PKI FAKE_AGENT CLI
set -u
CONTROLLER=${1:?usage: $0 CONTROLLER PKI FAKE_AGENT CLI}
PKI=${2:?}
FAKE=${3:?}
CLI_BIN=${4:?}
TEST_NAME=controller_pg_restart
. "$(dirname "$0")/postgres_lib.sh"
# shellcheck source=controller_lib.sh
. "$(dirname "$0")/controller_lib.sh"

T=$(mktemp -d /tmp/rackboot-pg-restart.XXXXXX)
FAIL_LOGS="controller.log watch.out send.log"
# The server's directory is its own: the postgres user must reach it, and
# $T is root's alone.
PGD=$(mktemp -d /tmp/rackboot-pg.XXXXXX)
CTL_PID="" WATCH_PID="" SENDER_PID=""
EVENTS=240 # seqs sent, in batches of BATCH
BATCH=6

cleanup() {
    for p in $SENDER_PID $WATCH_PID $CTL_PID; do
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    pg_stop
    [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T" "$PGD"
}
trap cleanup EXIT

fail_more() { show_tail "$PGD/server.log" 20; }

cd "$T" || exit 1
pg_start "$PGD"
psql -q "$PG_URL" -c "CREATE DATABASE fleet" || fail "create database"
STORE_URL="postgresql:///fleet?host=$PGD/sock&port=5432&user=postgres"
sql() { psql -qtA "$STORE_URL" -c "$1"; }

ctl_pki rack-a
URL="tls+tcp://127.0.0.1:$(free_port)"
ctl_conf controller api "agents_listen = $URL" "$(ctl_pki_conf)" "[store]" "url = $STORE_URL"
ctl_start CTL_PID controller
cli() { ctl_cli api "$@"; }
wait_for 60 ctl_answers api || fail "the controller did not start"
agent() {
    "$FAKE" --url "$URL" --ca ca/ca.crt --server-name ctl.test \
        --cert ca/agent/rack-a.crt --key ca/agent/rack-a.key "$@"
}

# ---- a rack of hosts, installing ----------------------------------------------
step "four hosts in rack-a installing, dispatched to the agent"
printf 'name,mac,rack,address\n' >hosts.csv
for i in 1 2 3 4; do
    printf 'web%d,52:54:00:00:0a:0%d,rack-a,2001:db8:a::%d\n' "$i" "$i" "$i" >>hosts.csv
done
sha=$(printf '%064d' 1)
printf '[profile el9]\nkernel = http://mirror.invalid/vmlinuz sha256=%s\ninitrd = http://mirror.invalid/initrd.img sha256=%s\n' \
    "$sha" "$sha" >profiles.conf
cli hosts import hosts.csv >/dev/null || fail "hosts import"
cli profiles import profiles.conf >/dev/null || fail "profiles import"
for i in 1 2 3 4; do
    cli install "web$i" --profile el9 >/dev/null || fail "install web$i"
done
ids=()
for i in 1 2 3 4; do
    ids[i]=$(cli status "web$i" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["install_id"])') ||
        fail "the install id of web$i"
done
agent sync >sync.out || fail "first sync"
G=$(sed -n 's/.*generation=\([0-9]*\).*/\1/p' sync.out | head -1)
agent sync --held "$G" --ack "$G" --wait 100 >/dev/null || fail "ack"

# The agent's long poll, over a session that redials, until killed.
agent watch --wait 2000 >watch.out 2>&1 &
WATCH_PID=$!
wait_for 30 grep -q ' ok generation=' watch.out || fail "the agent's long poll got no answer"

# ---- events while the server restarts -------------------------------------------
# send_batch SEQ: one batch from SEQ; prints the acknowledged seq, or
# nothing when the controller could not take it (the uplink then re-sends
# the same seqs).
send_batch() {
    local from=$1 evs=() k h
    for k in $(seq 0 $((BATCH - 1))); do
        h=$((((from + k) % 4) + 1))
        evs+=("web$h:${ids[h]}:dhcp_bound")
    done
    agent events --from "$from" "${evs[@]}" 2>&1 | tee -a send.log | sed -n 's/^stored_through=//p'
}
restart_server() { # restart_server MODE
    local before
    before=$(grep -c ' ok generation=' watch.out)
    echo "   server restart -m $1 with the agent at seq $(sent_through)"
    pg_as "$PG_BIN/pg_ctl" -D "$PGD/data" -m "$1" -w -t 60 restart >/dev/null 2>&1 ||
        fail "pg_ctl restart -m $1"
    # the long poll is answered again (event-driven: the controller may
    # need a call or two to notice the connection is gone)
    wait_for 60 polls_answered_since "$before" ||
        fail "the long poll was not answered after the restart (-m $1)"
}
polls_answered_since() { [ "$(grep -c ' ok generation=' watch.out)" -gt "$1" ]; }
# The sender, in the background: batches until seq EVENTS is acknowledged,
# each batch re-sent until it is; progress (the seq acknowledged) in
# progress, the batches not taken in refused.
sender() {
    local seq=1 acked deadline=$(($(date +%s) + 300))
    while [ "$seq" -le "$EVENTS" ] && [ "$(date +%s)" -lt "$deadline" ]; do
        acked=$(send_batch "$seq")
        if [ -z "$acked" ]; then
            echo x >>refused
            sleep 0.2
            continue
        fi
        if [ "$acked" -lt $((seq + BATCH - 1)) ]; then
            echo "batch from $seq acknowledged only through $acked" >>send.log
            return 1
        fi
        seq=$((acked + 1))
        echo "$acked" >progress
    done
    [ "$seq" -gt "$EVENTS" ]
}
sent_through() { cat progress 2>/dev/null || echo 0; }
sent_past() { [ "$(sent_through)" -gt "$1" ]; }

step "$EVENTS events in batches of $BATCH, the server restarted twice meanwhile"
: >refused
sender &
SENDER_PID=$!
wait_for 120 sent_past $((EVENTS / 3)) || fail "events stuck at seq $(sent_through)"
restart_server fast
wait_for 120 sent_past $((2 * EVENTS / 3)) || fail "events stuck at seq $(sent_through)"
restart_server immediate
wait "$SENDER_PID" || fail "the events did not all get through (at seq $(sent_through))"
SENDER_PID=""
seq=$(($(sent_through) + 1))
echo "   batches the controller could not take (re-sent): $(wc -l <refused)"
kill -0 "$CTL_PID" 2>/dev/null || fail "the controller died"

step "every event stored exactly once"
stored=$(sql "SELECT count(*) FROM events") || fail "psql"
distinct=$(sql "SELECT count(DISTINCT agent_seq) FROM events") || fail "psql"
range=$(sql "SELECT min(agent_seq) || '-' || max(agent_seq) FROM events") || fail "psql"
echo "   stored=$stored distinct=$distinct seqs=$range"
[ "$stored" = $((seq - 1)) ] || fail "stored $stored events for seqs 1..$((seq - 1))"
[ "$stored" = "$distinct" ] || fail "duplicates: $stored rows, $distinct seqs"
[ "$range" = "1-$stored" ] || fail "seqs $range are not 1..$stored"
n=$(cli events web1 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') ||
    fail "events web1 through the CLI"
[ "$n" -gt 0 ] || fail "the CLI shows no events of web1"

step "the controller carried on: it said so, and a new install reaches the agent"
grep -q 'connection to the database lost' controller.log ||
    fail "the controller did not log losing the database"
cli hosts add web5 --mac 52:54:00:00:0a:05 --rack rack-a --address 2001:db8:a::5 >/dev/null ||
    fail "hosts add after the restarts"
cli install web5 --profile el9 >/dev/null || fail "install after the restarts"
new_gen() { tail -n 5 watch.out | grep -q " ok generation=$(sql "SELECT generation FROM racks WHERE name = 'rack-a'")$"; }
wait_for 60 new_gen || fail "the install after the restarts did not reach the agent"

kill -TERM "$CTL_PID"
wait "$CTL_PID" || fail "the controller exited with $? on SIGTERM"
CTL_PID=""
echo "PASS: $TEST_NAME"

#!/bin/bash
# Several controllers share one PostgreSQL database, all active (issue 17
# §1): two real controllers A and B on one postgresql:// store, each with
# its own state_dir, API socket and agents port, fake agents
# (rb-fake-agent) dialled into B, the rackboot CLI on A.
#
#   - an install submitted through A reaches the agent parked on B at once
#     (LISTEN/NOTIFY: B's change feed), well within the agent's wait;
#   - after the database drops the feeds' connections they reconnect (and
#     say so), and the next install still reaches B's parked agent;
#   - an event batch sent to A, then re-sent to B, is stored once; the
#     same batch sent to both at once is stored once too;
#   - B's /metrics counts the feed's notifications and reconnections;
#   - one controller at a time runs the expiry: A (first up) holds the
#     lock, B skips;
#   - SIGKILL A during a fan-out of 500 intents (hosts imported and
#     installs submitted through A, the CLI falling over to B; agents of
#     four racks watching on B; their event batches to A cut by the kill):
#     B takes the expiry over, every install is made and dispatched once,
#     and the agents' whole journals re-sent to B are stored once each;
#   - B, restarted alone with a short boot timeout, times out an overdue
#     install (the expiry runs with one controller too).
#
# Waits are event-driven (log lines, CLI output) with generous limits: CI
# runs this under the sanitizers with ctest -j on two busy cores.
#
# usage: controllers_shared.sh CONTROLLER PKI FAKE_AGENT CLI
set -u
CONTROLLER=${1:?usage: $0 CONTROLLER PKI FAKE_AGENT CLI}
PKI=${2:?}
FAKE=${3:?}
CLI_BIN=${4:?}
TEST_NAME=controllers_shared
T=$(mktemp -d /tmp/rackboot-shared.XXXXXX)
FAIL_LOGS="a.log b.log server.log"
A_PID="" B_PID="" POLL="" SUBMIT="" WATCHERS="" WATCH="" HOLDER="" WRITE=""
# . postgres_lib.sh sets these.
PG_BIN="" PG_URL=""
# shellcheck source=postgres_lib.sh
. "$(dirname "$0")/postgres_lib.sh"
# shellcheck source=controller_lib.sh
. "$(dirname "$0")/controller_lib.sh"

cleanup() {
    for p in $POLL $SUBMIT $WATCHERS $WATCH $HOLDER $WRITE $A_PID $B_PID; do
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    pg_stop
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }

cd "$T" || exit 1

# ---- the database ---------------------------------------------------------
pg_start "$T"
sql() { "$PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 "$1" -c "$2"; }
sql "$PG_URL" "CREATE DATABASE fleet" >/dev/null || fail "create database"
STORE_URL=${PG_URL/\/postgres\?/\/fleet?}
db() { sql "$STORE_URL" "$1"; }

# ---- PKI, two controllers ---------------------------------------------------
ctl_pki rack-a rack-b rack-c rack-d rack-e rack-f

A_URL="tls+tcp://127.0.0.1:$(free_port)"
B_URL="tls+tcp://127.0.0.1:$(free_port)"
write_conf() { # write_conf NAME AGENTS_URL BOOT_TIMEOUT [EXTRA-LINES]
    ctl_conf "$1" "$1" "agents_listen = $2" "[store]" "url = $STORE_URL" \
        "$(ctl_pki_conf)" "crl = $T/ca/crl.pem" \
        "[installs]" "boot_timeout = $3" "install_timeout = 600" "${4:-}"
}
"$PKI" --dir ca crl >/dev/null || fail "crl"
write_conf a "$A_URL" 3600
write_conf b "$B_URL" 3600 "$(printf '[metrics]\nlisten = [::1]:0')"
"$CONTROLLER" --config a.conf --check-config >/dev/null || fail "--check-config"

start() { # start NAME: sets ${NAME}_PID
    local pid_var=${1^^}_PID
    ctl_start "$pid_var" "$1"
    wait_alive "${!pid_var}" 30 ctl_answers "$1" || fail "controller $1 did not start"
}
cli() { ctl_cli "$@"; } # cli a|b ARGS...
# An array, not a function, for what runs in the background: a function
# run with & is a subshell, and killing it would leave the agent running.
AGENT_B_A=("$FAKE" --url "$B_URL" --ca ca/ca.crt --server-name ctl.test
    --cert ca/agent/rack-a.crt --key ca/agent/rack-a.key)
agent() { # agent URL RACK ARGS...
    local url=$1 rack=$2
    shift 2
    "$FAKE" --url "$url" --ca ca/ca.crt --server-name ctl.test \
        --cert "ca/agent/$rack.crt" --key "ca/agent/$rack.key" "$@"
}
field() { # field JSON-FILE HOST KEY
    python3 -c 'import json,sys
rows = json.load(open(sys.argv[1]))
print(next(r for r in rows if r["host"] == sys.argv[2])[sys.argv[3]])' "$@"
}
state_of() { # state_of a|b HOST
    cli "$1" status "$2" --json >"status-$1.json" || fail "status $2 through $1"
    field "status-$1.json" "$2" state
}
id_of() {
    cli a status "$1" --json >status-a.json || fail "status $1"
    field status-a.json "$1" install_id
}
event_count() { # event_count a|b HOST
    cli "$1" events "$2" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}
generation_of() { sed -n 's/.*generation=\([0-9]*\).*/\1/p' "$1" | head -1; }
state_is() { [ "$(state_of "$1" "$2")" = "$3" ]; }

start a
wait_for 30 grep -q "feed: listening" a.log || fail "A does not listen to the change feed"
wait_for 30 grep -q "expiry: this controller runs the timeouts" a.log ||
    fail "A (alone) should run the expiry"
start b
wait_for 30 grep -q "feed: listening" b.log || fail "B does not listen to the change feed"

cat >hosts.csv <<EOF
name,mac,rack,address
web1,52:54:00:00:0a:01,rack-a,2001:db8:a::1
web2,52:54:00:00:0a:02,rack-a,2001:db8:a::2
web3,52:54:00:00:0a:03,rack-a,2001:db8:a::3
tmo1,52:54:00:00:0a:04,rack-a,2001:db8:a::4
db1,52:54:00:00:0b:01,rack-b,2001:db8:b::1
EOF
printf 'text\nnetwork --hostname={{hostname}}\n' >el9.ks
cat >profiles.conf <<EOF
[profile el9]
kernel = http://mirror.invalid/el9/vmlinuz sha256=$(printf '%064d' 1)
initrd = http://mirror.invalid/el9/initrd.img sha256=$(printf '%064d' 2)
kickstart = el9.ks
EOF
cli a hosts import hosts.csv >/dev/null || fail "hosts import through A"
cli a profiles import profiles.conf >/dev/null || fail "profiles import through A"
cli b hosts list 2>/dev/null | grep -q db1 || cli b status db1 >/dev/null ||
    fail "B does not see the hosts imported through A"

step "one controller runs the expiry: A holds the lock, B skips"
wait_for 30 grep -q "expiry: another controller on this store runs it" b.log ||
    fail "B should skip the expiry while A holds the lock"
grep -q "expiry: this controller runs the timeouts" b.log && fail "B ran the expiry beside A"

step "an install through A reaches the agent parked on B"
cli a install web1 --profile el9 >/dev/null || fail "install web1 through A"
ID1=$(id_of web1)
agent "$B_URL" rack-a sync >sync1.out || fail "first sync on B"
grep -q "intent host=web1 install=$ID1 " sync1.out || fail "web1's intent missing: $(cat sync1.out)"
G1=$(generation_of sync1.out)
agent "$B_URL" rack-a sync --held "$G1" --ack "$G1" --wait 100 >/dev/null || fail "ack on B"
wait_for 30 state_is a web1 dispatched || fail "B's ack should dispatch web1 (seen through A)"

# park_then_install NAME HOST: parks rack-a's sync on B (holding the current
# generation, waiting 30 s), installs HOST through A, and requires B's
# answer, with the new generation, within 10 s of the install.
park_then_install() {
    local g parked heard
    agent "$B_URL" rack-a sync >"$1-now.out" || fail "$1: sync on B"
    g=$(generation_of "$1-now.out")
    parked=$(count "hub: rack=rack-a parked generation=$g " b.log)
    heard=$(count "feed: generation moves announced" b.log)
    "${AGENT_B_A[@]}" sync --held "$g" --ack "$g" --wait 30000 >"$1.out" &
    POLL=$!
    wait_for 30 at_least $((parked + 1)) "hub: rack=rack-a parked generation=$g " b.log ||
        fail "$1: the sync was not parked on B"
    kill -0 "$POLL" 2>/dev/null || fail "$1: the long poll returned before any change: $(cat "$1.out")"
    local t0
    t0=$(now_ms)
    cli a install "$2" --profile el9 >/dev/null || fail "$1: install $2 through A"
    wait "$POLL" || fail "$1: the long poll on B failed: $(cat "$1.out")"
    POLL=""
    local ms=$(($(now_ms) - t0))
    echo "   B's parked poll answered ${ms} ms after the install through A"
    grep -q "unchanged=0 " "$1.out" || fail "$1: expected the new state: $(cat "$1.out")"
    grep -q "intent host=$2 " "$1.out" || fail "$1: $2's intent missing: $(cat "$1.out")"
    [ "$(generation_of "$1.out")" -gt "$g" ] || fail "$1: the generation did not move"
    [ "$ms" -lt 10000 ] || fail "$1: the parked poll took ${ms} ms (the wait is 30 s)"
    # B heard it on its feed (the 5 s safety net alone could also answer
    # within 10 s).
    at_least $((heard + 1)) "feed: generation moves announced" b.log ||
        fail "$1: B's change feed did not announce the install made through A"
    agent "$B_URL" rack-a sync --held "$(generation_of "$1.out")" \
        --ack "$(generation_of "$1.out")" --wait 100 >/dev/null || fail "$1: ack on B"
}
park_then_install fanout web2

step "the database drops the feeds' connections: they reconnect, and fan out again"
dropped=$(db "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = 'fleet' AND query LIKE 'LISTEN%'")
[ "$dropped" = 2 ] || fail "expected the two controllers' feeds to drop, got $dropped"
wait_for 60 grep -q "feed: reconnected" b.log || fail "B's feed did not reconnect"
wait_for 60 grep -q "feed: reconnected" a.log || fail "A's feed did not reconnect"
grep -q "feed: lost the store's change feed" b.log || fail "B did not log the loss"
park_then_install refanout web3

step "B's /metrics counts the feed's notifications and its reconnection"
METRICS=$(sed -n 's/.* started .* metrics=\(\[::1\]:[0-9]*\).*/\1/p' b.log | tail -n 1)
[ -n "$METRICS" ] || fail "B did not say where /metrics is"
curl -sS -g --max-time 10 -o metrics.txt "http://$METRICS/metrics" || fail "curl B's /metrics"
value() { awk -v k="$1" '$1 == k { print $2 }' metrics.txt; }
[ "$(value rackboot_feed_notifications_total)" -ge 2 ] ||
    fail "notifications: $(grep rackboot_feed metrics.txt)"
[ "$(value rackboot_feed_reconnects_total)" = 1 ] || fail "reconnects: $(grep rackboot_feed metrics.txt)"

step "events sent to A, then re-sent to B, are stored once"
agent "$A_URL" rack-a events --from 1 "web1:$ID1:dhcp_bound" "web1:$ID1:kickstart_fetched" \
    >ev-a.out || fail "events to A"
grep -q '^stored_through=2$' ev-a.out || fail "A: expected stored_through=2: $(cat ev-a.out)"
agent "$B_URL" rack-a events --from 1 "web1:$ID1:dhcp_bound" "web1:$ID1:kickstart_fetched" \
    >ev-b.out || fail "events re-sent to B"
grep -q '^stored_through=2$' ev-b.out || fail "B: expected stored_through=2: $(cat ev-b.out)"
[ "$(event_count a web1)" = 2 ] || fail "the re-sent batch was stored twice (A: $(event_count a web1))"
[ "$(event_count b web1)" = 2 ] || fail "B sees $(event_count b web1) events of web1, not 2"
[ "$(state_of b web1)" = installing ] || fail "web1 should be installing"

step "the same batch sent to A and B at once is stored once"
for i in 1 2 3; do
    from=$((i * 2 + 1))
    agent "$A_URL" rack-a events --from "$from" "web1:$ID1:installing:$((i * 10))" \
        "web1:$ID1:installing:$((i * 10 + 5))" >"race-a$i.out" &
    ra=$!
    agent "$B_URL" rack-a events --from "$from" "web1:$ID1:installing:$((i * 10))" \
        "web1:$ID1:installing:$((i * 10 + 5))" >"race-b$i.out" &
    rb=$!
    wait "$ra" || fail "race $i: events to A: $(cat "race-a$i.out")"
    wait "$rb" || fail "race $i: events to B: $(cat "race-b$i.out")"
    for o in "race-a$i.out" "race-b$i.out"; do
        grep -q "^stored_through=$((from + 1))$" "$o" || fail "race $i: $o: $(cat "$o")"
    done
done
n=$(db "SELECT count(*) FROM events")
[ "$n" = 8 ] || fail "expected 8 events stored once each, the database holds $n"
n=$(db "SELECT count(*) FROM (SELECT 1 FROM events GROUP BY rack_id, agent_instance, journal_epoch, agent_seq
        HAVING count(*) > 1) d")
[ "$n" = 0 ] || fail "$n event keys stored more than once"

step "rackboot watch on B wakes for events stored through A"
ID2=$(id_of web2)
heard=$(count "feed: events stored through another controller" b.log)
cli b watch web2 --json >watch-b.out 2>&1 &
WATCH=$!
wait_for 30 grep -q '"state": *"dispatched"' watch-b.out || fail "watch on B: $(cat watch-b.out)"
agent "$A_URL" rack-a events --from 9 "web2:$ID2:installing:90" >ev-w.out ||
    fail "events to A: $(cat ev-w.out)"
wait_for 30 grep -q '"percent": *90' watch-b.out ||
    fail "watch on B did not show the progress stored through A: $(cat watch-b.out)"
at_least $((heard + 1)) "feed: events stored through another controller" b.log ||
    fail "B's feed did not announce the events stored through A"
agent "$A_URL" rack-a events --from 10 "web2:$ID2:installed" >ev-w.out ||
    fail "events to A: $(cat ev-w.out)"
wait_for 30 sh -c "! kill -0 $WATCH 2>/dev/null" || fail "watch on B did not end at installed"
wait "$WATCH"
grep -q '"state": *"installed"' watch-b.out || fail "watch on B: $(cat watch-b.out)"
WATCH=""

step "reads do not wait behind writes ([store] read_connections, default 2)"
# psql holds the store's writer lock: a write through A waits for it (5 s,
# then it fails as busy); a status through A meanwhile is answered on a
# read connection of its own, before the write ends. With reads on the
# write connection, the status would be answered after it.
"$PG_BIN/psql" -X -At "$STORE_URL" -c "SELECT pg_advisory_lock(1380078420)" \
    -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
HOLDER=$!
lock_held() { [ "$(db "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
                       AND objid = 1380078420 AND granted")" = 1 ]; }
wait_for 30 lock_held || fail "psql did not take the writer lock"
(
    cli a hosts add web9 --mac 52:54:00:00:0a:09 --rack rack-a --address 2001:db8:a::9 \
        >write.out 2>&1
    now_ms >write.end
) &
WRITE=$!
write_waits() { [ "$(db "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                         AND wait_event = 'advisory'")" -ge 1 ]; }
wait_for 30 write_waits || fail "the write through A does not wait for the writer lock"
cli a status web1 --json >held-status.json || fail "status through A while a write waits"
STATUS_END=$(now_ms)
grep -q '"state"' held-status.json || fail "status: $(cat held-status.json)"
wait "$WRITE"
WRITE=""
[ "$STATUS_END" -lt "$(cat write.end)" ] ||
    fail "the status was answered after the waiting write ended: reads wait for writes"
grep -qi "busy\|lock" write.out || fail "the write should fail as busy: $(cat write.out)"
# psql's session sleeps on in the server whatever happens to psql: end it.
db "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'
    AND objid = 1380078420 AND granted" >/dev/null || fail "end psql's session"
wait "$HOLDER" 2>/dev/null
HOLDER=""
lock_free() { ! lock_held; }
wait_for 30 lock_free || fail "the writer lock is still held"

step "SIGKILL A during a fan-out of 500 intents: each dispatched once, each event stored once"
RACKS=(rack-c rack-d rack-e rack-f) # 125 hosts each, their agents parked on B
NAMES=()
{
    echo "name,mac,rack,address"
    for r in 1 2 3 4; do
        for i in $(seq 125); do
            printf 'n%d-%d,52:54:00:%02x:00:%02x,%s,2001:db8:%x::%x\n' "$r" "$i" $((r + 16)) "$i" \
                "${RACKS[$((r - 1))]}" $((r + 16)) "$i"
        done
    done
} >fleet.csv
# Installs are submitted in an order that mixes the racks.
for i in $(seq 125); do
    for r in 1 2 3 4; do
        NAMES+=("n$r-$i")
    done
done
cli a hosts import fleet.csv >/dev/null || fail "import 500 hosts through A"
for rack in "${RACKS[@]}"; do
    "$FAKE" --url "$B_URL" --ca ca/ca.crt --server-name ctl.test --cert "ca/agent/$rack.crt" \
        --key "ca/agent/$rack.key" watch --wait 20000 >"watch-$rack.out" 2>&1 &
    WATCHERS="$WATCHERS $!"
done
# 20 batches of 25 through A, falling over to B (the CLI's --controller
# list) once A is gone; a batch A took before dying is refused by B for
# the hosts it installed (active install), which is what exactly once is.
submit() {
    local b
    for b in $(seq 0 19); do
        "$CLI_BIN" --controller "ipc://$T/a.sock" --controller "ipc://$T/b.sock" \
            install "${NAMES[@]:$((b * 25)):25}" --profile el9 >>submit.out 2>&1 ||
            "$CLI_BIN" --controller "ipc://$T/b.sock" \
                install "${NAMES[@]:$((b * 25)):25}" --profile el9 >>submit.out 2>&1
    done
}
fleet_installs() { db "SELECT count(*) FROM installs i JOIN hosts h ON h.id = i.host_id
                       WHERE h.name LIKE 'n%' $1"; }
installs_at_least() { [ "$(fleet_installs "$2")" -ge "$1" ]; } # installs_at_least N SQL-AND
submit &
SUBMIT=$!
wait_for 120 installs_at_least 100 "AND i.state = 'dispatched'" ||
    fail "the fan-out through A did not start: $(fleet_installs "")"
# rack_events RACK: HOST:ID:dhcp_bound:STATE, one per install, in install
# (= journal seq) order.
rack_events() {
    db "SELECT h.name || ':' || i.uuid || ':dhcp_bound:' || i.state FROM installs i
        JOIN hosts h ON h.id = i.host_id JOIN racks r ON r.id = h.rack_id
        WHERE r.name = '$1' ORDER BY i.id"
}
# Each agent reports its dispatched hosts to A, while A is killed.
SENDERS=""
for rack in "${RACKS[@]}"; do
    evs=()
    while IFS=: read -r host id phase state; do
        [ "$state" = dispatched ] || break
        evs+=("$host:$id:$phase")
    done < <(rack_events "$rack")
    [ "${#evs[@]}" -gt 0 ] || continue
    "$FAKE" --url "$A_URL" --ca ca/ca.crt --server-name ctl.test --cert "ca/agent/$rack.crt" \
        --key "ca/agent/$rack.key" events --from 1 "${evs[@]}" >"ev-a-$rack.out" 2>&1 &
    SENDERS="$SENDERS $!"
done
# Once A has stored one of them, with the fan-out still under way.
wait_for 60 grep -q "hub: rack=rack-[c-f] events=" a.log || fail "A stored no event batch"
kill -9 "$A_PID"
wait "$A_PID" 2>/dev/null
A_PID=""
for p in $SENDERS; do
    wait "$p" # stored or not: A died under them
done
wait "$SUBMIT"
SUBMIT=""
wait_for 60 grep -q "expiry: this controller runs the timeouts" b.log ||
    fail "B did not take the expiry over from the dead A"
wait_for 180 installs_at_least 500 "AND i.dispatched_ms IS NOT NULL" ||
    fail "not every intent was dispatched: $(fleet_installs "AND i.dispatched_ms IS NOT NULL")/500"
[ "$(fleet_installs "")" = 500 ] || fail "$(fleet_installs "") installs for 500 hosts"
n=$(db "SELECT count(DISTINCT host_id) FROM installs i JOIN hosts h ON h.id = i.host_id
        WHERE h.name LIKE 'n%'")
[ "$n" = 500 ] || fail "installs on $n hosts, not 500"
# The agents re-send their whole journal to B (at least once).
for rack in "${RACKS[@]}"; do
    evs=()
    while IFS=: read -r host id phase _; do
        evs+=("$host:$id:$phase")
    done < <(rack_events "$rack")
    [ "${#evs[@]}" = 125 ] || fail "$rack: ${#evs[@]} installs, not 125"
    agent "$B_URL" "$rack" events --from 1 "${evs[@]}" >"ev-b-$rack.out" ||
        fail "$rack: events to B: $(cat "ev-b-$rack.out")"
    grep -q '^stored_through=125$' "ev-b-$rack.out" || fail "$rack: $(cat "ev-b-$rack.out")"
done
n=$(db "SELECT count(*) FROM events e JOIN racks r ON r.id = e.rack_id
        WHERE r.name LIKE 'rack-_' AND r.name != 'rack-a' AND e.refused IS NULL")
[ "$n" = 500 ] || fail "expected 500 events stored once each, the database holds $n"
n=$(db "SELECT count(*) FROM (SELECT 1 FROM events GROUP BY rack_id, agent_instance, journal_epoch, agent_seq
        HAVING count(*) > 1) d")
[ "$n" = 0 ] || fail "$n event keys stored more than once"
for p in $WATCHERS; do
    kill "$p" 2>/dev/null
done
WATCHERS=""

step "B, restarted alone with a short boot timeout, times out an overdue install"
kill -TERM "$B_PID"
wait "$B_PID"
rc=$?
B_PID=""
[ "$rc" = 0 ] || fail "B exited $rc on SIGTERM"
write_conf b "$B_URL" 8
start b
cli b install tmo1 --profile el9 >/dev/null || fail "install tmo1"
agent "$B_URL" rack-a sync >tmo.out || fail "sync tmo1"
G=$(generation_of tmo.out)
agent "$B_URL" rack-a sync --held "$G" --ack "$G" --wait 100 >/dev/null || fail "ack tmo1"
wait_for 30 state_is b tmo1 dispatched || fail "tmo1 should be dispatched"
# The boot timeout is 8 s from the dispatch.
wait_for 60 state_is b tmo1 timed_out || fail "B did not time tmo1 out: $(state_of b tmo1)"
[ "$(state_of b web1)" = installing ] || fail "web1 should be untouched by the expiry"

step "SIGTERM stops B cleanly"
kill -TERM "$B_PID"
wait "$B_PID"
rc=$?
B_PID=""
[ "$rc" = 0 ] || fail "B exited $rc on SIGTERM"
echo "PASS: $TEST_NAME"

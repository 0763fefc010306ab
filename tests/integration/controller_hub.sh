#!/bin/bash
# The controller's agent hub over real mutual TLS on loopback, driven by the
# real client session (rb-fake-agent: the agent's uplink calls without the
# serving) and the rackboot CLI:
#
#   - an agent syncs its rack's intents by generation; its ack dispatches;
#   - a parked long poll is answered as soon as the generation moves;
#   - events move installs forward, are stored once per (rack, seq), and the
#     ack is the highest contiguous seq;
#   - an agent of rack A reporting on a host of rack B is refused (logged,
#     not recorded, the install of B does not move);
#   - a certificate from another CA and a revoked certificate are refused,
#     and so is a rack's second agent (rack-a/2) for now;
#   - SIGKILL and restart keep every install and acknowledged event, and the
#     re-sent batch creates no duplicates;
#   - installed withdraws the intent; cancel withdraws it; a boot timeout
#     moves an install to timed_out;
#   - operators_listen takes the CLI with an operator certificate over
#     mutual TLS and refuses an agent's certificate there;
#   - SIGTERM stops the controller cleanly (exit 0).
#
# usage: controller_hub.sh CONTROLLER PKI FAKE_AGENT CLI
set -u
CONTROLLER=${1:?usage: $0 CONTROLLER PKI FAKE_AGENT CLI}
PKI=${2:?}
FAKE=${3:?}
CLI_BIN=${4:?}
TEST_NAME=controller_hub
T=$(mktemp -d /tmp/rackboot-controller-hub.XXXXXX)
CTL_PID=""
# Installs dispatched in the steps before "boot timeout" must not time out
# however slow a busy machine makes those steps (this once expired web2
# under ctest -j2): the controller runs with a boot timeout no step comes
# near, and is restarted with a short one for the step that tests it.
BOOT_TIMEOUT=3600
SHORT_BOOT_TIMEOUT=6

cleanup() {
    [ -n "$CTL_PID" ] && kill "$CTL_PID" 2>/dev/null
    wait 2>/dev/null
    [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $TEST_NAME: $*"
    if [ -s "$T/controller.log" ]; then
        echo "---- controller.log (last 40 lines)"
        tail -n 40 "$T/controller.log"
    fi
    exit 1
}

step() { echo "== $*"; }

cd "$T" || exit 1

# ---- PKI: our CA (controller, agents a, b, and c revoked), another CA ----
"$PKI" --dir ca init >/dev/null || fail "pki init"
"$PKI" --dir ca issue controller ctl.test >/dev/null || fail "issue controller"
for r in rack-a rack-b rack-c; do
    "$PKI" --dir ca issue agent "$r" >/dev/null || fail "issue agent $r"
done
"$PKI" --dir ca issue agent rack-a --instance 2 >/dev/null || fail "issue agent rack-a/2"
"$PKI" --dir ca issue operator alice >/dev/null || fail "issue operator"
"$PKI" --dir ca revoke agent rack-c >/dev/null || fail "revoke"
"$PKI" --dir ca crl >/dev/null || fail "crl"
"$PKI" --dir other init >/dev/null && "$PKI" --dir other issue agent rack-a >/dev/null ||
    fail "other CA"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="tls+tcp://127.0.0.1:$PORT"
OPS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
OPS="tls+tcp://127.0.0.1:$OPS_PORT"
API="ipc://$T/api.sock"
cat >controller.conf <<EOF
[controller]
state_dir = state
agents_listen = $URL
api_listen = $API
operators_listen = $OPS
log_level = debug
[pki]
ca = ca/ca.crt
cert = ca/controller/ctl.test.crt
key = ca/controller/ctl.test.key
crl = ca/crl.pem
[installs]
boot_timeout = $BOOT_TIMEOUT
install_timeout = 600
EOF
"$CONTROLLER" --config controller.conf --check-config >/dev/null || fail "--check-config"

start_controller() {
    "$CONTROLLER" --config controller.conf >>controller.log 2>&1 &
    CTL_PID=$!
    for _ in $(seq 100); do
        [ -S "$T/api.sock" ] && "$CLI_BIN" --controller "$API" racks >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "controller did not start"
}

cli() { "$CLI_BIN" --controller "$API" "$@"; }
agent() { # agent RACK [CA-DIR] ARGS...
    local rack=$1
    shift
    local dir=ca
    if [ "$1" = other ]; then
        dir=other
        shift
    fi
    "$FAKE" --url "$URL" --ca ca/ca.crt --server-name ctl.test \
        --cert "$dir/agent/$rack.crt" --key "$dir/agent/$rack.key" "$@"
}
field() { # field JSON-FILE HOST KEY
    python3 -c 'import json,sys
rows = json.load(open(sys.argv[1]))
print(next(r for r in rows if r["host"] == sys.argv[2])[sys.argv[3]])' "$@"
}
state_of() {
    cli status "$1" --json >status.json || fail "status $1"
    field status.json "$1" state
}
id_of() {
    cli status "$1" --json >status.json || fail "status $1"
    field status.json "$1" install_id
}
event_count() {
    cli events "$1" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}
generation_of() { sed -n 's/.*generation=\([0-9]*\).*/\1/p' "$1" | head -1; }

start_controller

# ---- fleet: four hosts in two racks, one profile ----
cat >hosts.csv <<EOF
name,mac,rack,address
web1,52:54:00:00:0a:01,rack-a,2001:db8:a::1
web2,52:54:00:00:0a:02,rack-a,2001:db8:a::2
tmo1,52:54:00:00:0a:03,rack-a,2001:db8:a::3
db1,52:54:00:00:0b:01,rack-b,2001:db8:b::1
EOF
printf 'text\nnetwork --hostname={{hostname}}\n' >el9.ks
cat >profiles.conf <<EOF
[profile el9]
kernel = http://mirror.invalid/el9/vmlinuz sha256=$(printf '%064d' 1)
initrd = http://mirror.invalid/el9/initrd.img sha256=$(printf '%064d' 2)
kickstart = el9.ks
root_device = /dev/disk/by-path/pci-0000:00:04.0
EOF
cli hosts import hosts.csv >/dev/null || fail "hosts import"
cli profiles import profiles.conf >/dev/null || fail "profiles import"

step "sync by generation, ack dispatches"
cli install web1 --profile el9 >/dev/null || fail "install web1"
ID1=$(id_of web1)
agent rack-a hello | grep -q '^rack=rack-a ' || fail "rack-a handshake"
agent rack-a sync >sync1.out || fail "first sync"
grep -q "intent host=web1 install=$ID1 " sync1.out || fail "web1's intent missing: $(cat sync1.out)"
grep -q 'intents=1 ' sync1.out || fail "rack-a should hold exactly web1: $(cat sync1.out)"
grep -q "profile name=el9 images=2 root_device=/dev/disk/by-path/pci-0000:00:04.0$" sync1.out ||
    fail "the profile's root_device did not reach the agent: $(cat sync1.out)"
cli profiles show el9 | grep -q "^root_device: /dev/disk/by-path/pci-0000:00:04.0$" ||
    fail "profiles show lost root_device"
G1=$(generation_of sync1.out)
[ "$(state_of web1)" = requested ] || fail "web1 should be requested before the ack"
agent rack-a sync --held "$G1" --ack "$G1" --wait 100 >sync2.out || fail "ack sync"
grep -q 'unchanged=1' sync2.out || fail "held generation should be unchanged: $(cat sync2.out)"
[ "$(state_of web1)" = dispatched ] || fail "the ack should dispatch web1, not $(state_of web1)"

step "an agent holding a generation this store never had gets the full state"
agent rack-a sync --held 999 --ack 999 --wait 100 >sync-ahead.out || fail "sync ahead"
grep -q "unchanged=0 intents=1 " sync-ahead.out || fail "expected the full state: $(cat sync-ahead.out)"
grep -q "generation=$G1 " sync-ahead.out || fail "expected generation $G1: $(cat sync-ahead.out)"

step "a parked long poll is answered when the generation moves"
agent rack-a sync --held "$G1" --ack "$G1" --wait 20000 >poll.out &
POLL=$!
sleep 1
kill -0 "$POLL" 2>/dev/null || fail "the long poll returned before any change: $(cat poll.out)"
T0=$(date +%s%N)
cli install web2 --profile el9 >/dev/null || fail "install web2"
wait "$POLL" || fail "long poll failed"
MS=$((($(date +%s%N) - T0) / 1000000))
grep -q 'unchanged=0 intents=2' poll.out || fail "the poll should bring web1 and web2: $(cat poll.out)"
G2=$(generation_of poll.out)
[ "$G2" -gt "$G1" ] || fail "generation did not move ($G1 -> $G2)"
echo "   long poll answered ${MS} ms after the install"
[ "$MS" -lt 5000 ] || fail "the parked poll took ${MS} ms"
agent rack-a sync --held "$G2" --ack "$G2" --wait 100 >/dev/null || fail "ack G2"

step "events: stored once, acked through the highest contiguous seq"
agent rack-a events --from 1 "web1:$ID1:dhcp_bound" "web1:$ID1:kickstart_fetched" >ev1.out ||
    fail "events 1-2"
grep -q '^stored_through=2$' ev1.out || fail "expected stored_through=2: $(cat ev1.out)"
[ "$(state_of web1)" = installing ] || fail "kickstart_fetched should make web1 installing"

step "rack A reporting on a host of rack B is refused"
cli install db1 --profile el9 >/dev/null || fail "install db1"
IDB=$(id_of db1)
agent rack-a events --from 3 "db1:$IDB:installed" >ev2.out || fail "events 3"
grep -q '^stored_through=3$' ev2.out || fail "a refused event still counts as handled: $(cat ev2.out)"
[ "$(event_count db1)" = 0 ] || fail "rack-a's event about db1 was recorded"
[ "$(state_of db1)" = requested ] || fail "db1 moved on rack-a's word: $(state_of db1)"
grep -q 'event refused seq=3 host=db1' controller.log || fail "the refusal was not logged"

step "other CA and revoked certificates are refused"
if agent rack-a other hello >other.out 2>&1; then
    fail "a certificate from another CA was accepted: $(cat other.out)"
fi
if agent rack-c hello >revoked.out 2>&1; then
    fail "a revoked certificate was accepted: $(cat revoked.out)"
fi
grep -q '^refused' revoked.out || fail "revoked: expected a refusal line: $(cat revoked.out)"

step "rack-a's agent 2 (rack-a/2) serves rack-a beside agent 1"
agent rack-a@2 hello >second.out 2>&1 || fail "rack-a/2 refused: $(cat second.out)"
grep -q '^rack=rack-a name=rack-a/2 ' second.out || fail "rack-a/2: $(cat second.out)"
agent rack-a@2 sync >second-sync.out || fail "rack-a/2 sync"
grep -q "^rack=rack-a .*intents=2 " second-sync.out ||
    fail "rack-a/2 should hold rack-a's intents: $(cat second-sync.out)"
grep -q "intent host=web1 install=$ID1 " second-sync.out || fail "rack-a/2: web1's intent missing"
# its own seqs: 1 is not agent 1's 1; kickstart_fetched, which agent 1
# reported, counts once; installing is new
agent rack-a@2 events --from 1 "web1:$ID1:kickstart_fetched" "web1:$ID1:installing" \
    >second-ev.out || fail "rack-a/2 events"
grep -q '^stored_through=2$' second-ev.out || fail "rack-a/2 events: $(cat second-ev.out)"
[ "$(event_count web1)" = 3 ] || fail "web1: a phase both agents reported counted twice"
[ "$(state_of web1)" = installing ] || fail "web1 should still be installing"
cli racks --json >racks.json || fail "racks --json"
/usr/bin/python3 -c 'import json,sys
r = next(r for r in json.load(open("racks.json")) if r["rack"] == "rack-a")
names = [a["agent"] for a in r["agents"]]
sys.exit(0 if names == ["rack-a", "rack-a/2"] and r["agent"] == "rack-a" else 1)' ||
    fail "racks should list rack-a's two agents: $(cat racks.json)"
cli racks >racks.txt || fail "racks"
grep -q '^ *rack-a/2 ' racks.txt || fail "racks: no line for rack-a/2: $(cat racks.txt)"

step "SIGKILL and restart keep installs and events; a re-sent batch is not stored twice"
kill -9 "$CTL_PID"
wait "$CTL_PID" 2>/dev/null
CTL_PID=""
start_controller
[ "$(state_of web1)" = installing ] || fail "web1 lost its state over a crash"
[ "$(id_of web1)" = "$ID1" ] || fail "web1's install id changed over a crash"
[ "$(event_count web1)" = 3 ] || fail "web1 should have 3 events after the crash"
agent rack-a events --from 1 "web1:$ID1:dhcp_bound" "web1:$ID1:kickstart_fetched" >ev3.out ||
    fail "re-sent batch"
grep -q '^stored_through=3$' ev3.out || fail "re-sent batch: expected stored_through=3: $(cat ev3.out)"
[ "$(event_count web1)" = 3 ] || fail "the re-sent batch created duplicates"

step "installed withdraws the intent"
agent rack-a events --from 4 "web1:$ID1:installed" >/dev/null || fail "installed event"
[ "$(state_of web1)" = installed ] || fail "web1 should be installed"
agent rack-a sync --held "$G2" --ack "$G2" --wait 5000 >sync3.out || fail "sync after installed"
grep -q 'intent host=web1 ' sync3.out && fail "web1's intent is still there: $(cat sync3.out)"
grep -q 'intent host=web2 ' sync3.out || fail "web2's intent went missing: $(cat sync3.out)"
G3=$(generation_of sync3.out)

step "cancel withdraws the intent"
cli cancel web2 >/dev/null || fail "cancel web2"
[ "$(state_of web2)" = cancelled ] || fail "web2 should be cancelled"
agent rack-a sync --held "$G3" --ack "$G3" --wait 5000 >sync4.out || fail "sync after cancel"
grep -q 'intents=0 ' sync4.out || fail "rack-a should hold nothing: $(cat sync4.out)"
G4=$(generation_of sync4.out)

step "boot timeout"
kill -TERM "$CTL_PID"
wait "$CTL_PID" 2>/dev/null
CTL_PID=""
sed -i "s/^boot_timeout = .*/boot_timeout = $SHORT_BOOT_TIMEOUT/" controller.conf
start_controller
cli install tmo1 --profile el9 >/dev/null || fail "install tmo1"
agent rack-a sync --held "$G4" --ack "$G4" --wait 5000 >sync5.out || fail "sync tmo1"
G5=$(generation_of sync5.out)
agent rack-a sync --held "$G5" --ack "$G5" --wait 100 >/dev/null || fail "ack tmo1"
[ "$(state_of tmo1)" = dispatched ] || fail "tmo1 should be dispatched"
for _ in $(seq $((SHORT_BOOT_TIMEOUT * 10 + 300))); do
    [ "$(state_of tmo1)" = timed_out ] && break
    sleep 0.1
done
[ "$(state_of tmo1)" = timed_out ] || fail "tmo1 did not time out after ${SHORT_BOOT_TIMEOUT}s"

step "CLI exit codes: not found 3, unreachable 4"
cli status nosuch >/dev/null 2>&1
[ $? = 3 ] || fail "status of an unknown host should exit 3"
"$CLI_BIN" --controller "ipc://$T/nothing.sock" --timeout 2 racks >/dev/null 2>&1
[ $? = 4 ] || fail "an unreachable controller should exit 4"

step "operators over mutual TLS"
ops() { # ops ROLE-DIR NAME ARGS...
    local dir=$1 name=$2
    shift 2
    "$CLI_BIN" --controller "$OPS" --ca ca/ca.crt --server-name ctl.test \
        --cert "ca/$dir/$name.crt" --key "ca/$dir/$name.key" "$@"
}
ops operator alice status web1 --json >ops.json || fail "an operator could not call the API"
[ "$(field ops.json web1 state)" = installed ] || fail "the remote API answered wrongly"
grep -q 'api: operator alice connected' controller.log || fail "the operator was not logged"
if ops agent rack-a status web1 >ops-agent.out 2>&1; then
    fail "an agent certificate was accepted on operators_listen"
fi

step "SIGTERM stops cleanly"
kill -TERM "$CTL_PID"
wait "$CTL_PID"
RC=$?
CTL_PID=""
[ "$RC" = 0 ] || fail "the controller exited with $RC on SIGTERM"
grep -q 'rackboot-controller stopped' controller.log || fail "no stop line"

echo "PASS: $TEST_NAME"

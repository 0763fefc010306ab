#!/bin/bash
# Several controller URLs and failover (issue 17): a real rack agent and the
# rackboot CLI against two real controllers over mutual TLS on loopback.
#
#   (a) the agent with `urls = DEAD A B` finds DEAD refusing, says so,
#       connects through A and persists A's intents; /metrics names A.
#   (b) the CLI with --controller DEAD --controller A answers through A and
#       says so; with only dead URLs it fails (exit 4) naming each one and
#       why; one URL behaves as it always did.
#   (c) controller B starts (its OWN SQLite store: several controllers
#       cannot share one SQLite file, which is fine for the failover logic)
#       and A is killed: the agent logs the switch, connects through B and
#       persists B's intents; /metrics names B. The CLI with A (dead) and B
#       answers through B.
#
# Both controllers present a certificate for ctl.test, the name every URL is
# checked against (server_name: mbedTLS matches no IP SANs).
#
# Waits are event-driven (log lines, CLI output) with generous limits: CI
# runs this under the sanitizers with ctest -j on two busy cores.
#
# usage: controller_failover.sh CONTROLLER AGENT PKI CLI
set -u
CONTROLLER=${1:?usage: $0 CONTROLLER AGENT PKI CLI}
AGENT=${2:?}
PKI=${3:?}
CLI_BIN=${4:?}
TEST_NAME=controller_failover
T=$(mktemp -d /tmp/rackboot-failover.XXXXXX)
FAIL_LOGS="a.log b.log agent.log cli.out"
A_PID="" B_PID="" AGENT_PID=""
# shellcheck source=controller_lib.sh
. "$(dirname "$0")/controller_lib.sh"

cleanup() {
    for p in $AGENT_PID $A_PID $B_PID; do
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT

cd "$T" || exit 1

# ---- PKI and addresses ----------------------------------------------------
ctl_pki rack-a
ctl_pki_operator alice

DEAD_URL="tls+tcp://127.0.0.1:$(free_port)"
DEAD_OPS="tls+tcp://127.0.0.1:$(free_port)"
A_URL="tls+tcp://127.0.0.1:$(free_port)"
A_OPS="tls+tcp://127.0.0.1:$(free_port)"
B_URL="tls+tcp://127.0.0.1:$(free_port)"
B_OPS="tls+tcp://127.0.0.1:$(free_port)"

# controller_conf NAME AGENTS_URL OPERATORS_URL: each its own state (store).
controller_conf() {
    ctl_conf "$1" "$1" "agents_listen = $2" "operators_listen = $3" "$(ctl_pki_conf)"
}
start_controller() { # start_controller NAME: sets ${NAME^}_PID
    ctl_start "${1^}_PID" "$1"
    wait_for 60 ctl_started "$1.log" || fail "controller $1 did not start"
}
# Operator alice over TLS; the controllers are given as --controller URL...
op() {
    "$CLI_BIN" --ca ca/ca.crt --server-name ctl.test --cert ca/operator/alice.crt \
        --key ca/operator/alice.key "$@"
}
# fleet NAME HOSTS...: a profile, the hosts in rack-a, an install of each.
fleet() {
    local name=$1 sha i=0
    shift
    sha=sha256=$(printf '%064d' 1)
    printf '[profile p1]\nkernel = http://mirror.example.com/vmlinuz %s\ninitrd = http://mirror.example.com/initrd.img %s\ncmdline = console=ttyS0\n' \
        "$sha" "$sha" >profiles.conf
    ctl_cli "$name" profiles import profiles.conf >cli.out 2>&1 ||
        fail "$name: profiles import: $(cat cli.out)"
    for h in "$@"; do
        i=$((i + 1))
        ctl_cli "$name" hosts add "$h" --mac "52:54:00:00:00:0$i" --rack rack-a \
            --address "2001:db8:1::1$i" >cli.out 2>&1 || fail "$name: hosts add $h: $(cat cli.out)"
        ctl_cli "$name" install "$h" --profile p1 >cli.out 2>&1 ||
            fail "$name: install $h: $(cat cli.out)"
    done
}
metric() { # metric URL: the agent's rackboot_uplink_controller for URL
    curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" |
        awk -v s="rackboot_uplink_controller{url=\"$1\"}" '$1 == s { print $2 }'
}
metric_is() { [ "$(metric "$1")" = "$2" ]; }

# ---- (a) the agent skips a dead URL ------------------------------------------
step "(a) agent with urls = DEAD A B: skips DEAD, syncs through A"
controller_conf a "$A_URL" "$A_OPS"
controller_conf b "$B_URL" "$B_OPS"
start_controller a
fleet a web1

mkdir -p agent-state || exit 1
HTTP_PORT=$(free_port)
DHCP_PORT=$(free_port)
cat >agent.conf <<EOF
[agent]
rack = rack-a
state_dir = $T/agent-state
advertise_address = 2001:db8:1::1
log_level = debug
[http]
listen = 127.0.0.1:$HTTP_PORT
[tftp]
enabled = no
[dhcp6]
port = $DHCP_PORT
[controller]
# commas and blanks both separate
urls = $DEAD_URL, $A_URL $B_URL
server_name = ctl.test
ca = $T/ca/ca.crt
cert = $T/ca/agent/rack-a.crt
key = $T/ca/agent/rack-a.key
sync_wait = 2
EOF
"$AGENT" --config agent.conf >>agent.log 2>&1 &
AGENT_PID=$!
wait_for 60 grep -qF "uplink: controller $DEAD_URL unreachable, trying $A_URL" agent.log ||
    fail "the agent did not say it moved on from the dead URL"
wait_for 60 grep -qF "uplink: connected url=$A_URL" agent.log ||
    fail "the agent did not connect through A"
wait_for 60 grep -q 'uplink: generation=[0-9]* intents=1 .*persisted' agent.log ||
    fail "the agent did not persist A's intents"
grep -q 'hub: agent of rack=rack-a connected' a.log || fail "A did not see the agent"
wait_for 30 metric_is "$A_URL" 1 || fail "/metrics does not name A as in use: $(metric "$A_URL")"
metric_is "$DEAD_URL" 0 || fail "/metrics names the dead URL as in use"
metric_is "$B_URL" 0 || fail "/metrics names B as in use"

# ---- (b) the CLI --------------------------------------------------------------
step "(b) CLI: --controller DEAD --controller A answers through A; only dead URLs fail"
op --controller "$DEAD_OPS" --controller "$A_OPS" status >cli.out 2>cli.err ||
    fail "status through DEAD, A failed: $(cat cli.err)"
grep -q web1 cli.out || fail "status through DEAD, A does not show web1: $(cat cli.out)"
grep -qF "note: controller $A_OPS answered; before it: $DEAD_OPS (" cli.err ||
    fail "the CLI did not say which controller answered: $(cat cli.err)"
# the same list from the environment, commas
RACKBOOT_CONTROLLER="$DEAD_OPS,$A_OPS" op status >cli.out 2>cli.err ||
    fail "status through RACKBOOT_CONTROLLER=DEAD,A failed: $(cat cli.err)"
grep -q web1 cli.out || fail "status through RACKBOOT_CONTROLLER does not show web1"
# one URL: as before, no note
op --controller "$A_OPS" status >cli.out 2>cli.err || fail "status through A failed: $(cat cli.err)"
[ -s cli.err ] && fail "one reachable controller, yet the CLI said: $(cat cli.err)"
# only dead ones: exit 4, each named with its reason
DEAD2_OPS="tls+tcp://127.0.0.1:$(free_port)"
op --controller "$DEAD_OPS" --controller "$DEAD2_OPS" status >cli.out 2>cli.err
code=$?
[ "$code" = 4 ] || fail "only dead controllers: exit $code, not 4: $(cat cli.err)"
grep -qF "no controller reachable (--controller): tried $DEAD_OPS (" cli.err ||
    fail "the error does not name the first dead URL: $(cat cli.err)"
grep -qF ", $DEAD2_OPS (" cli.err || fail "the error does not name the second dead URL: $(cat cli.err)"
echo "   $(cat cli.err)"
op --controller "$DEAD_OPS" status >cli.out 2>cli.err
code=$?
[ "$code" = 4 ] || fail "one dead controller: exit $code, not 4"
grep -qF "controller $DEAD_OPS (--controller) unreachable: " cli.err ||
    fail "one dead controller: not the usual message: $(cat cli.err)"

# ---- (c) A dies, B serves -------------------------------------------------------
step "(c) B starts with its own store, A is killed: the agent fails over to B"
start_controller b
fleet b web1 web2
SWITCHES_BEFORE=$(count 'uplink: controller .* trying' agent.log)
kill -KILL "$A_PID"
wait "$A_PID" 2>/dev/null
A_PID=""
wait_for 90 grep -qF "uplink: controller $A_URL failed, trying $B_URL" agent.log ||
    fail "the agent did not move from A to B"
wait_for 60 grep -qF "uplink: connected url=$B_URL" agent.log ||
    fail "the agent did not connect through B"
wait_for 60 grep -q 'uplink: generation=[0-9]* intents=2 .*persisted' agent.log ||
    fail "the agent did not persist B's intents"
wait_for 30 grep -q 'hub: agent of rack=rack-a connected' b.log || fail "B did not see the agent"
[ "$(count 'uplink: controller .* trying' agent.log)" -gt "$SWITCHES_BEFORE" ] ||
    fail "the switch was not logged"
wait_for 30 metric_is "$B_URL" 1 || fail "/metrics does not name B as in use: $(metric "$B_URL")"
metric_is "$A_URL" 0 || fail "/metrics still names A as in use"
curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | grep -q '^rackboot_uplink_switches_total [1-9]' ||
    fail "rackboot_uplink_switches_total did not count the switches"
# It stays with B: B's next change reaches the agent (it still long-polls
# B), and no move was logged since the switch.
LINES=$(wc -l <agent.log)
ctl_cli b cancel web1 >cli.out 2>&1 || fail "b: cancel web1: $(cat cli.out)"
changed_after() { tail -n +"$((LINES + 1))" agent.log | grep -q 'uplink: generation=[0-9]* intents=1 .*persisted'; }
wait_for 60 changed_after || fail "B's cancel did not reach the agent"
tail -n +"$((LINES + 1))" agent.log | grep -q 'uplink: controller .* trying' &&
    fail "the agent left B while B answered"

op --controller "$A_OPS" --controller "$B_OPS" status >cli.out 2>cli.err ||
    fail "status through A (dead), B failed: $(cat cli.err)"
grep -q web2 cli.out || fail "status through A (dead), B does not show B's web2: $(cat cli.out)"
grep -qF "note: controller $B_OPS answered" cli.err || fail "no note for B: $(cat cli.err)"

kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || fail "the agent exited with $? on SIGTERM"
AGENT_PID=""
kill -TERM "$B_PID"
wait "$B_PID" || fail "controller B exited with $? on SIGTERM"
B_PID=""
echo "PASS: $TEST_NAME"

#!/bin/bash
# A rack served by a redundant pair of agents: the primary agent is SIGKILLed
# while a host netboots, and the host finishes its install through the
# secondary; the controller counts every phase once.
#
#   agent_pair.sh AGENT CONTROLLER CLI PKI
#
# The lab of tests/e2e/e2e.sh (deploy/lab/lib.sh: controller and origin in
# $LAB_NS_CTL, the rack's namespace $LAB_NS_RACK with br0, radvd, tap0 and
# QEMU (TCG, SeaBIOS + QEMU's iPXE ROM) as host web17), with a second agent:
#
#   netns $LAB_NS_RACK   br0 2001:db8:1::1   agent 1 ("lab1", agent/lab1.crt),
#                                            DHCPv6 preference 255, keepalived
#   netns $NS2           eth0 2001:db8:1::2  agent 2 ("lab1/2", agent/lab1@2.crt,
#      (veth vr2 in br0)                     rackboot-pki issue agent lab1
#                                            --instance 2), preference 100,
#                                            keepalived; default route via
#                                            2001:db8:1::1 (the rack namespace
#                                            routes to the controller, which has
#                                            a route back to 2001:db8:1::/64)
#
# Both agents have `service_address = 2001:db8:1::100`; keepalived (VRRPv3,
# one instance on each agent's rack link, priority 150 and 100, adverts every
# 0.5 s) holds it on whichever agent is alive: each tracks a health check of
# its local agent (GET /healthz every second, one failure is enough), so when
# the agent dies its keepalived goes FAULT, sends priority 0, and drops the
# address; the other takes it at once.
#
#   1. both agents connected; the install submitted; both agents have the
#      profile's three images cached (their "cache stored" log lines)
#   2. the VM boots: DHCPv6 from either agent (both answer; iPXE takes the
#      first Advertise it gets and ignores DHCPv6 Preference, so the
#      primary's 255 does not decide it: either agent may bind the host and
#      serve its iPXE script, from its own advertise_address; the test says
#      which), then kernel, initrd and overlay from the service address,
#      i.e. from the primary
#   3. as soon as the controller has overlay_fetched (the last thing iPXE
#      fetches), SIGKILL the primary agent (the agent only: its keepalived
#      notices through the health check)
#   4. the service address is on the secondary within 10 s, gone from the
#      primary; the installer (booting meanwhile) fetches the kickstart and
#      stage2 and posts its progress to the service address: the secondary
#      answers; the install reaches installed and the VM powers off; the
#      secondary's log shows the kickstart it served; the primary's log
#      shows nothing it served after the kill
#   5. the primary agent is started again (its journal may hold events it
#      had not sent) and its and the secondary's journals drain
#      (rackboot_journal_pending_events 0 on both)
#   6. `rackboot events web17 --json`: every phase of the install, in order
#      (tests/e2e/phases.py, as e2e.sh checks it), and none twice: each of
#      dhcp_bound script_served kernel_fetched initrd_fetched overlay_fetched
#      kickstart_fetched installed exactly once; installing and
#      stage2_progress may repeat (the installer posts installing at 0, 40
#      and 90 percent; the agent samples the stage2 transfer), but with
#      percents strictly increasing: one percent twice would be a phase
#      reported by both agents. `rackboot racks --json` lists both agents
#      of lab1.
#
# Prints the failover's times: kill -> address on the secondary -> the next
# phase at the controller (kickstart_fetched: the installer's kernel boots in
# between, tens of seconds under TCG).
#
# Needs what e2e.sh bios needs, and keepalived; skips (77) without them.
# KEEP_TMP=1 keeps the work directory (all logs, keepalived's included).
# shellcheck source-path=SCRIPTDIR/../.. # (lib.sh and what it sources, from any directory)
set -uo pipefail

RB_AGENT=${1:?usage: agent_pair.sh AGENT CONTROLLER CLI PKI}
RB_CONTROLLER=${2:?controller}
RB_CLI=${3:?cli}
RB_PKI=${4:?pki}
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=e2e.agent_pair
# shellcheck disable=SC2034 # read by deploy/lab/lib.sh
LAB_ID="pair$$"
# shellcheck disable=SC2034 # read by deploy/lab/lib.sh (lab_write_configs)
LAB_SERVICE_ADDR=2001:db8:1::100
# shellcheck disable=SC2034 # read by deploy/lab/lib.sh (lab_dump_logs)
LAB_EXTRA_LOGS="agent2.log keepalived1.log keepalived2.log"
# shellcheck source=deploy/lab/lib.sh
. "$HERE/../../deploy/lab/lib.sh"

NS2=rb-rack2-$LAB_ID
AGENT2_ADDR=2001:db8:1::2
AGENT2_IF=eth0
BOOT_LIMIT=${E2E_BOOT_LIMIT:-300}   # power-on to installed
VRID=17

fail() { lab_fail "$@"; }
lab_test_start "$(lab_missing net qemu bios installer keepalived)"
# keepalived takes a moment to stop (it waits for its VRRP child): stopped
# first, with time, rather than SIGKILLed by lab_cleanup's short grace.
KEEPALIVED_PIDS=""
pair_cleanup() {
    local rc=$? pid
    for pid in $KEEPALIVED_PIDS; do
        lab_stop_pid "$pid" 5
    done
    (exit "$rc")
    lab_cleanup
}
trap pair_cleanup EXIT

# ---- the rack, and the second agent's namespace ------------------------------------
lab_say "network: $LAB_NS_CTL (controller, origin), $LAB_NS_RACK (agent 1, radvd, VM), $NS2 (agent 2)"
lab_net_up || fail "network setup"
lab_new_ns "$NS2" || fail "namespace $NS2"
ip -n "$LAB_NS_RACK" link add vr2 type veth peer name "$AGENT2_IF" netns "$NS2" || fail "veth to $NS2"
ip -n "$LAB_NS_RACK" link set vr2 master "$LAB_BR" up
# A static address and route, as a real agent has; no SLAAC from radvd.
ip netns exec "$NS2" sysctl -qw "net.ipv6.conf.$AGENT2_IF.accept_ra=0" "net.ipv6.conf.$AGENT2_IF.autoconf=0"
ip -n "$NS2" addr add "$AGENT2_ADDR/$LAB_RACK_PLEN" dev "$AGENT2_IF" nodad
ip -n "$NS2" link set "$AGENT2_IF" up
ip -n "$NS2" route add default via "$LAB_AGENT_ADDR" || fail "default route in $NS2"
ip -n "$LAB_NS_CTL" route add 2001:db8:1::/64 via "$LAB_UP_AGENT" || fail "route to the rack in $LAB_NS_CTL"
lab_wait_for 10 ip netns exec "$NS2" ping -6 -c1 -W1 "$LAB_UP_CTL" ||
    fail "$NS2 cannot reach the controller's address"

# ---- PKI, configurations -------------------------------------------------------------
lab_pki || fail "PKI"
"$RB_PKI" --dir "$LAB_DIR/pki" issue agent "$LAB_RACK" --instance 2 >/dev/null ||
    fail "rackboot-pki issue agent $LAB_RACK --instance 2"
for f in crt key; do
    [ -s "$LAB_DIR/pki/agent/$LAB_RACK@2.$f" ] ||
        fail "no agent/$LAB_RACK@2.$f: $(ls "$LAB_DIR/pki/agent")"
done
chown -R "$LAB_USER:" "$LAB_DIR/pki/agent"
lab_write_configs || fail "configs do not pass --check-config"
grep -q "^service_address = $LAB_SERVICE_ADDR\$" "$LAB_DIR/agent.conf" ||
    fail "lab_write_configs did not set service_address"
# Agent 2: agent 1's configuration but for its state, address, link,
# certificate and DHCPv6 preference (the gateway stays the rack's router).
mkdir -p "$LAB_DIR/agent2-state"
sed -e "s|^state_dir = .*|state_dir = $LAB_DIR/agent2-state|" \
    -e "s|^advertise_address = .*|advertise_address = $AGENT2_ADDR|" \
    -e "s|^interfaces = .*|interfaces = $AGENT2_IF\npreference = 100|" \
    -e "s|^cert = .*/agent/.*|cert = $LAB_DIR/pki/agent/$LAB_RACK@2.crt|" \
    -e "s|^key = .*/agent/.*|key = $LAB_DIR/pki/agent/$LAB_RACK@2.key|" \
    "$LAB_DIR/agent.conf" >"$LAB_DIR/agent2.conf"
ip netns exec "$NS2" "$RB_AGENT" --config "$LAB_DIR/agent2.conf" --check-config \
    >"$LAB_DIR/agent2-check.out" 2>&1 ||
    fail "agent 2's configuration: $(cat "$LAB_DIR/agent2-check.out")"

# keepalived_conf N INTERFACE PRIORITY: $LAB_DIR/keepalived<N>.conf, the
# configuration deploy/HA.md gives operators, but for the names.
keepalived_conf() {
    cat >"$LAB_DIR/keepalived$1.conf" <<EOK
global_defs {
    # the health check runs unprivileged; keepalived refuses a script
    # a non-root user could replace
    script_user nobody nogroup
    enable_script_security
}

# The local agent answers: its HTTP server is up (GET /healthz says ok).
vrrp_script rackboot_agent {
    script "/usr/bin/curl -gsf -m 1 -o /dev/null http://[::1]:80/healthz"
    interval 1
    timeout 2
    fall 1
    rise 1
}

vrrp_instance rack_$LAB_RACK {
    state BACKUP
    interface $2
    virtual_router_id $VRID
    priority $3
    advert_int 0.5
    virtual_ipaddress {
        $LAB_SERVICE_ADDR/$LAB_RACK_PLEN
    }
    track_script {
        rackboot_agent
    }
}
EOK
    # keepalived -t checks it where it will run, but with script_user root:
    # 2.2.7 SIGTERMs itself testing a configuration whose scripts run as
    # another user (keepalived issue #2617, fixed after 2.2.7); the daemon
    # itself is fine with it.
    sed 's/^\( *script_user\) .*/\1 root/' "$LAB_DIR/keepalived$1.conf" >"$LAB_DIR/keepalived$1.test.conf"
    ip netns exec "$4" keepalived -t -f "$LAB_DIR/keepalived$1.test.conf" >"$LAB_DIR/keepalived$1.check" 2>&1 ||
        fail "keepalived -t: keepalived$1.conf: $(cat "$LAB_DIR/keepalived$1.check")"
}
keepalived_conf 1 "$LAB_BR" 150 "$LAB_NS_RACK"
keepalived_conf 2 "$AGENT2_IF" 100 "$NS2"

# keepalived_start N NS: in the foreground of lab_spawn (-n), VRRP only (-P),
# logging to its log file keepalived<N>.log (-l -D, no syslog -G), pid files
# in $LAB_DIR (not keepalived<N>.pid: lab_spawn's, which keepalived would
# take for another keepalived running), its state dumps (SIGUSR1:
# keepalived.data in $TMPDIR) in keepalived<N>.tmp/.
keepalived_start() {
    local k=$LAB_DIR/keepalived$1
    mkdir -p "$k.tmp"
    lab_spawn "keepalived$1" "$2" env TMPDIR="$k.tmp" keepalived -n -P -l -D -G -f "$k.conf" \
        -p "$k-main.pid" -r "$k-vrrp.pid" -c "$k-checkers.pid"
    KEEPALIVED_PIDS="$KEEPALIVED_PIDS $LAB_SPAWNED"
}

# keepalived_state N: keepalived N's instance as it sees it now: its state
# and, when it has heard a master, that master's priority ("BACKUP 150"),
# from the state dump it writes on SIGUSR1 (read here as soon as it is
# written, or the previous signal's).
keepalived_state() {
    local k=$LAB_DIR/keepalived$1
    kill -USR1 "$(cat "$k.pid")" 2>/dev/null
    awk '/^ VRRP Instance = / { i = 1; next }
        i && /^   State = / && s == "" { s = $3 }
        i && /^   Master priority = / && p == "" { p = $4 }
        END { print s (p != "" ? " " p : "") }' "$k.tmp/keepalived.data" 2>/dev/null
}

# keepalived_backup_of N PRIORITY: keepalived N is BACKUP and has heard a
# master advertising PRIORITY. (A BACKUP that hears no master takes over
# after its master down interval; the "Entering BACKUP STATE" of its log
# comes before it has heard anyone.)
keepalived_backup_of() {
    [ "$(keepalived_state "$1")" = "BACKUP $2" ]
}

# has_vip NS: the service address is configured in NS.
has_vip() {
    ip -n "$1" -6 -o addr show | grep -qF " $LAB_SERVICE_ADDR/"
}

# metric NS ADDRESS NAME: an agent's /metrics value (integer part).
metric() {
    ip netns exec "$1" curl -gsS -m 5 "http://[$2]/metrics" |
        awk -v n="$3" '$1 == n { printf "%d\n", $2; found = 1 } END { exit !found }'
}

# phase_seen PHASE: the install has an event PHASE at the controller.
phase_seen() {
    lab_rb events "$LAB_HOST" --json 2>/dev/null |
        python3 -c 'import json, sys; sys.exit(0 if any(e.get("install_id") == sys.argv[1] and e["phase"] == sys.argv[2] for e in json.load(sys.stdin)) else 1)' \
            "$INSTALL_ID" "$1"
}

# cached LOG: the agent logged each of the profile's images as stored.
cached() {
    local f
    for f in vmlinuz initrd.img squashfs.img; do
        grep -q "cache stored object=.* url=http://\[$LAB_UP_CTL\]:$LAB_ORIGIN_PORT/$f " "$LAB_DIR/$1" ||
            return 1
    done
}

lab_say "installer payload (Debian kernel from $LAB_CACHE, busybox initrd, stage2)"
lab_start_origin || fail "origin"
lab_build_installer "$LAB_DIR/origin" || fail "cannot build the installer payload"
lab_write_inputs "$LAB_DIR/inputs"

# ---- daemons ------------------------------------------------------------------------
lab_say "controller, agent 1 ($LAB_RACK) and agent 2 ($LAB_RACK/2)"
lab_start_controller || fail "controller"
lab_start_agent || fail "agent 1"
lab_spawn agent2 "$NS2" "$RB_AGENT" --config "$LAB_DIR/agent2.conf"
AGENT2_PID=$LAB_SPAWNED
lab_wait_for 15 lab_log_grew agent2.log "rackboot-agent: ready" 0 || fail "agent 2 not ready"
lab_wait_for 30 lab_log_grew agent2.log "uplink: connected" 0 ||
    fail "agent 2 did not connect to the controller"
[ "$(lab_uid_of "$AGENT2_PID")" = "$(id -u "$LAB_USER")" ] || fail "agent 2 does not run as $LAB_USER"
for ns in "$LAB_NS_RACK" "$NS2"; do
    ip netns exec "$ns" curl -gsf -m 2 -o /dev/null "http://[::1]:80/healthz" ||
        fail "GET http://[::1]/healthz in $ns fails: keepalived's health check cannot work"
done

lab_say "keepalived: VRRPv3 id $VRID for $LAB_SERVICE_ADDR, priority 150 ($LAB_NS_RACK) and 100 ($NS2)"
keepalived_start 1 "$LAB_NS_RACK"
keepalived_start 2 "$NS2"
lab_wait_for 15 has_vip "$LAB_NS_RACK" || fail "the service address did not come up on agent 1"
# Agent 2's keepalived hears agent 1's adverts and stays backup.
lab_wait_for 15 keepalived_backup_of 2 150 ||
    fail "keepalived 2 is not the backup of agent 1's (priority 150) within 15 s (state: $(keepalived_state 2))"
has_vip "$NS2" && fail "the service address is on both agents"
code=$(ip netns exec "$LAB_NS_RACK" curl -gs -o /dev/null -w '%{http_code}' -m 5 \
    "http://[$LAB_SERVICE_ADDR]/healthz")
[ "$code" = 200 ] || fail "GET /healthz at the service address: HTTP $code"

# ---- 1. submit; both agents cache the images ---------------------------------------------
lab_submit "$LAB_DIR/inputs"
lab_wait_for 60 cached agent.log || fail "agent 1 did not cache the profile's images within 60 s"
lab_wait_for 60 cached agent2.log || fail "agent 2 did not cache the profile's images within 60 s"
lab_say "both agents have the images cached"
lab_rb racks --json >"$LAB_DIR/racks.json" || fail "rackboot racks failed"
python3 - "$LAB_DIR/racks.json" "$LAB_RACK" <<'PY' || fail "rackboot racks --json does not list both agents of $LAB_RACK: $(cat "$LAB_DIR/racks.json")"
import json, sys
rack = [r for r in json.load(open(sys.argv[1])) if r["rack"] == sys.argv[2]][0]
names = sorted(a["agent"] for a in rack["agents"])
print("  rack %s agents: %s" % (sys.argv[2], ", ".join(
    "%s (instance %s, acked %s)" % (a["agent"], a["instance"], a["acked_generation"]) for a in rack["agents"])))
sys.exit(0 if names == [sys.argv[2], sys.argv[2] + "/2"] else 1)
PY

# ---- 2. boot; 3. kill the primary after iPXE's last fetch --------------------------------
LAST_IPXE=initrd_fetched
grep -q '^overlay = yes' "$LAB_DIR/inputs/profiles.conf" && LAST_IPXE=overlay_fetched
lab_say "boot (bios): the primary is SIGKILLed once the controller has $LAST_IPXE"
lab_boot_vm bios "$LAB_DIR/serial1.log" "$((BOOT_LIMIT + 20))" || fail "QEMU"
T0=$LAB_QEMU_T0
lab_wait_for 180 phase_seen "$LAST_IPXE" ||
    fail "no $LAST_IPXE within 180 s of power-on (state $(lab_status_field "$LAB_HOST" state), phase $(lab_status_field "$LAB_HOST" phase))"
T_LAST=$(lab_ts)
# Whatever the primary served: nothing more after the kill.
served1=$(grep -c "http GET " "$LAB_DIR/agent.log") # (nothing logs after the kill)
T_KILL=$(lab_ts)
kill -KILL "$LAB_AGENT_PID" || fail "kill -KILL agent 1 ($LAB_AGENT_PID)"
wait "$LAB_AGENT_PID" 2>/dev/null
LAB_AGENT_PID=""
lab_say "agent 1 SIGKILLed $(lab_rel "$T_KILL" "$T0") s after power-on ($(lab_rel "$T_KILL" "$T_LAST") s after $LAST_IPXE was seen)"
for log in agent.log agent2.log; do
    if grep -q "dhcp6 bound host=$LAB_HOST " "$LAB_DIR/$log"; then
        echo "  DHCPv6: the host was bound by the agent of $log (iPXE took its Advertise first)"
    fi
done

# ---- 4. the service address moves; the install finishes through agent 2 ------------------
lab_wait_for 10 has_vip "$NS2" || fail "the service address did not move to agent 2 within 10 s of the kill"
T_VIP=$(lab_ts)
lab_wait_for 5 sh -c "! ip -n '$LAB_NS_RACK' -6 -o addr show | grep -qF ' $LAB_SERVICE_ADDR/'" ||
    fail "the service address is still on agent 1's link after it moved to agent 2"
lab_say "service address on agent 2 $(lab_rel "$T_VIP" "$T_KILL") s after the kill"
code=$(ip netns exec "$LAB_NS_RACK" curl -gs -o /dev/null -w '%{http_code}' -m 5 \
    "http://[$LAB_SERVICE_ADDR]/healthz")
[ "$code" = 200 ] || fail "GET /healthz at the service address after the move: HTTP $code"

T_NEXT=""
# when the controller first shows the installer's next fetch, the kickstart
note_next() { [ -n "$T_NEXT" ] || ! phase_seen kickstart_fetched || T_NEXT=$(lab_ts); }
lab_wait_installed "$BOOT_LIMIT" note_next
T_INSTALLED=$(lab_ts)
[ -n "$T_NEXT" ] || T_NEXT=$T_INSTALLED
lab_say "controller says installed $(lab_rel "$T_INSTALLED" "$T0") s after power-on"
lab_vm_wait_exit 30 || fail "the installer did not power the VM off"
T_OFF=$(lab_ts)
lab_vm_stop
grep -aq "rackboot-installer: .*install complete" "$LAB_DIR/serial1.log" ||
    fail "the installer did not report 'install complete' on the console"
grep -Eq "http GET \"?/ks/[^ ]* status=200 .*client=\[?$LAB_HOST_ADDR" "$LAB_DIR/agent2.log" ||
    fail "agent 2 did not serve the kickstart to $LAB_HOST_ADDR"
[ "$(grep -c "http GET " "$LAB_DIR/agent.log")" = "$served1" ] ||
    fail "agent 1's log grew HTTP requests after its SIGKILL"
# What each agent served the host (its HTTP log lines, but for keepalived's
# health checks and the test's /metrics).
served() {
    grep -E "http (GET|POST) " "$LAB_DIR/$1" | grep -Ev "http GET /(healthz|metrics) " |
        sed -E 's/.*(http [A-Z]+ [^ ]*) status=([0-9]+) bytes=([0-9]+).*/  \1 \2 \3 bytes/' | cut -c1-140
}
echo "---- agent 1 ($LAB_RACK) served the host:"
served agent.log
echo "---- agent 2 ($LAB_RACK/2) served the host:"
served agent2.log

# ---- 5. agent 1 back; both journals drain ------------------------------------------------
lab_start_agent || fail "agent 1 did not start again"
unacked=$(sed -n 's/.*event journal .* unacked=\([0-9]*\).*/\1/p' "$LAB_DIR/agent.log" | tail -n 1)
lab_say "agent 1 restarted: its journal held ${unacked:-?} unacknowledged events"
drained() {
    [ "$(metric "$LAB_NS_RACK" "$LAB_AGENT_ADDR" rackboot_journal_pending_events)" = 0 ] &&
        [ "$(metric "$NS2" "$AGENT2_ADDR" rackboot_journal_pending_events)" = 0 ]
}
lab_wait_for 30 drained ||
    fail "the agents' journals did not drain within 30 s (pending: agent 1 $(metric "$LAB_NS_RACK" "$LAB_AGENT_ADDR" rackboot_journal_pending_events), agent 2 $(metric "$NS2" "$AGENT2_ADDR" rackboot_journal_pending_events))"
# keepalived gives the address back to agent 1 (the higher priority).
lab_wait_for 10 has_vip "$LAB_NS_RACK" || fail "the service address did not return to agent 1"

# ---- 6. the controller's view: every phase in order, none twice ---------------------------
EXPECTED="dhcp_bound script_served kernel_fetched initrd_fetched"
[ "$LAST_IPXE" = overlay_fetched ] && EXPECTED="$EXPECTED overlay_fetched"
EXPECTED="$EXPECTED kickstart_fetched stage2_progress installing installed"
lab_rb events "$LAB_HOST" --json >"$LAB_DIR/events.json" || fail "rackboot events failed"
# shellcheck disable=SC2086 # EXPECTED is a list
python3 "$HERE/phases.py" "$LAB_DIR/events.json" "$INSTALL_ID" "$T0" $EXPECTED \
    --serial "$LAB_DIR/serial1.log"
phases_ok=$?
echo "  $(lab_rel "$T_KILL" "$T0")  (test) agent 1 SIGKILLed"
echo "  $(lab_rel "$T_VIP" "$T0")  (test) service address on agent 2"
echo "  $(lab_rel "$T_OFF" "$T0")  (test) QEMU exited (installer powered off)"
# shellcheck disable=SC2086 # EXPECTED is a list
python3 - "$LAB_DIR/events.json" "$INSTALL_ID" $EXPECTED <<'PY'
import json, sys
install, expected = sys.argv[2], sys.argv[3:]
ev = [e for e in json.load(open(sys.argv[1])) if e.get("install_id") == install]
bad = []
# Phases the installer or the agent report more than once, each time further.
repeating = {"installing", "stage2_progress"}
for p in expected:
    got = [e.get("percent") for e in ev if e["phase"] == p]
    if p in repeating:
        ok = len(got) >= 1 and all(a is not None and b is not None and a < b
                                   for a, b in zip(got, got[1:]))
    else:
        ok = len(got) == 1
    print("  %-18s x%d%s%s" % (p, len(got), "  percents %s" % got if p in repeating else "",
                              "" if ok else "   <-- DUPLICATED OR MISSING"))
    if not ok:
        bad.append(p)
others = sorted({e["phase"] for e in ev} - set(expected))
for p in others:
    print("  %-18s x%d  (not a phase of the install's progress)" % (
        p, sum(1 for e in ev if e["phase"] == p)))
if bad:
    print("EVENTS ONCE: phases duplicated or missing: " + " ".join(bad))
sys.exit(1 if bad else 0)
PY
once_ok=$?
lab_rb racks --json >"$LAB_DIR/racks.json" || fail "rackboot racks failed"
python3 - "$LAB_DIR/racks.json" "$LAB_RACK" <<'PY' || fail "rackboot racks --json does not list both agents of $LAB_RACK at the end: $(cat "$LAB_DIR/racks.json")"
import json, sys
rack = [r for r in json.load(open(sys.argv[1])) if r["rack"] == sys.argv[2]][0]
sys.exit(0 if sorted(a["agent"] for a in rack["agents"]) == [sys.argv[2], sys.argv[2] + "/2"] else 1)
PY
lab_state_is "$LAB_HOST" installed || fail "status is not installed at the end"
[ "$phases_ok" = 0 ] || fail "the controller's events lack phases or have them out of order (see the PHASE CHECK lines)"
[ "$once_ok" = 0 ] || fail "a phase of the install was counted more than once (see EVENTS ONCE)"

T_END=$(lab_ts)
# The next phase as agent 2 saw it (its event's time; the same clock here).
T_KS=$(python3 -c '
import datetime, json, sys
for e in json.load(open(sys.argv[1])):
    if e.get("install_id") == sys.argv[2] and e["phase"] == "kickstart_fetched":
        print(datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp())
        break' "$LAB_DIR/events.json" "$INSTALL_ID")
echo "failover: kill -> service address on agent 2 $(lab_rel "$T_VIP" "$T_KILL") s;" \
    "kill -> next phase (kickstart_fetched, served by agent 2) $(lab_rel "$T_KS" "$T_KILL") s," \
    "seen at the controller $(lab_rel "$T_NEXT" "$T_KILL") s (polled; the installer's kernel boots in between)"
echo "times: power-on to power-off $(lab_rel "$T_OFF" "$T0") s; whole test $(lab_rel "$T_END" "$T_START") s"
echo "PASS: $TEST_NAME"

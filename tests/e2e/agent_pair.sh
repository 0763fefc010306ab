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
#   netns $LAB_NS_RACK2  eth0 2001:db8:1::2  agent 2 ("lab1/2", agent/lab1@2.crt,
#      (veth vr2 in br0)                     rackboot-pki issue agent lab1
#                                            --instance 2), preference 100,
#                                            keepalived; default route via
#                                            2001:db8:1::1 (the rack namespace
#                                            routes to the controller, which has
#                                            a route back to 2001:db8:1::/64)
#
# (lib.sh's second agent and keepalived functions, which deploy/lab/run.sh
# pair shares.)
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

NS2=$LAB_NS_RACK2
BOOT_LIMIT=${E2E_BOOT_LIMIT:-300}   # power-on to installed

fail() { lab_fail "$@"; }
lab_test_start "$(lab_missing net qemu bios installer keepalived)"

# metric NS ADDRESS NAME: an agent's /metrics value (integer part).
metric() {
    ip netns exec "$1" curl -gsS -m 5 "http://[$2]/metrics" |
        awk -v n="$3" '$1 == n { printf "%d\n", $2; found = 1 } END { exit !found }'
}

# ---- the rack, and the second agent's namespace ------------------------------------
lab_say "network: $LAB_NS_CTL (controller, origin), $LAB_NS_RACK (agent 1, radvd, VM), $NS2 (agent 2)"
lab_net_up || fail "network setup"
lab_pair_net_up || fail "agent 2's namespace $NS2"

# ---- PKI, configurations -------------------------------------------------------------
lab_pki || fail "PKI"
lab_pair_pki || fail "agent 2's certificate"
lab_write_configs || fail "configs do not pass --check-config"
grep -q "^service_address = $LAB_SERVICE_ADDR\$" "$LAB_DIR/agent.conf" ||
    fail "lab_write_configs did not set service_address"
lab_write_agent2_config || fail "agent 2's configuration"

lab_say "installer payload (Debian kernel from $LAB_CACHE, busybox initrd, stage2)"
lab_start_origin || fail "origin"
lab_build_installer "$LAB_DIR/origin" || fail "cannot build the installer payload"
lab_write_inputs "$LAB_DIR/inputs"

# ---- daemons ------------------------------------------------------------------------
lab_say "controller, agent 1 ($LAB_RACK) and agent 2 ($LAB_RACK/2)"
lab_start_controller || fail "controller"
lab_start_agent || fail "agent 1"
lab_start_agent2 || fail "agent 2"
for ns in "$LAB_NS_RACK" "$NS2"; do
    ip netns exec "$ns" curl -gsf -m 2 -o /dev/null "http://[::1]:80/healthz" ||
        fail "GET http://[::1]/healthz in $ns fails: keepalived's health check cannot work"
done

lab_say "keepalived: VRRPv3 id $LAB_VRID for $LAB_SERVICE_ADDR, priority 150 ($LAB_NS_RACK) and 100 ($NS2)"
# On agent 1; agent 2's keepalived hears its adverts and stays backup.
lab_pair_keepalived_up || fail "keepalived"
code=$(ip netns exec "$LAB_NS_RACK" curl -gs -o /dev/null -w '%{http_code}' -m 5 \
    "http://[$LAB_SERVICE_ADDR]/healthz")
[ "$code" = 200 ] || fail "GET /healthz at the service address: HTTP $code"

# ---- 1. submit; both agents cache the images ---------------------------------------------
lab_submit "$LAB_DIR/inputs"
lab_wait_for 60 lab_agent_cached agent.log || fail "agent 1 did not cache the profile's images within 60 s"
lab_wait_for 60 lab_agent_cached agent2.log || fail "agent 2 did not cache the profile's images within 60 s"
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
LAST_IPXE=$(lab_last_ipxe_phase "$LAB_DIR/inputs")
lab_say "boot (bios): the primary is SIGKILLed once the controller has $LAST_IPXE"
lab_boot_vm bios "$LAB_DIR/serial1.log" "$((BOOT_LIMIT + 20))" || fail "QEMU"
T0=$LAB_QEMU_T0
lab_wait_for 180 lab_phase_seen "$LAST_IPXE" ||
    fail "no $LAST_IPXE within 180 s of power-on (state $(lab_status_field "$LAB_HOST" state), phase $(lab_status_field "$LAB_HOST" phase))"
T_LAST=$(lab_ts)
# Whatever the primary served: nothing more after the kill.
served1=$(grep -c "http GET " "$LAB_DIR/agent.log") # (nothing logs after the kill)
T_KILL=$(lab_ts)
lab_kill_agent || fail "kill -KILL agent 1 ($LAB_AGENT_PID)"
lab_say "agent 1 SIGKILLed $(lab_rel "$T_KILL" "$T0") s after power-on ($(lab_rel "$T_KILL" "$T_LAST") s after $LAST_IPXE was seen)"
for log in agent.log agent2.log; do
    if grep -q "dhcp6 bound host=$LAB_HOST " "$LAB_DIR/$log"; then
        echo "  DHCPv6: the host was bound by the agent of $log (iPXE took its Advertise first)"
    fi
done

# ---- 4. the service address moves; the install finishes through agent 2 ------------------
lab_wait_for 10 lab_has_vip "$NS2" || fail "the service address did not move to agent 2 within 10 s of the kill"
T_VIP=$(lab_ts)
lab_wait_for 5 sh -c "! ip -n '$LAB_NS_RACK' -6 -o addr show | grep -qF ' $LAB_SERVICE_ADDR/'" ||
    fail "the service address is still on agent 1's link after it moved to agent 2"
lab_say "service address on agent 2 $(lab_rel "$T_VIP" "$T_KILL") s after the kill"
code=$(ip netns exec "$LAB_NS_RACK" curl -gs -o /dev/null -w '%{http_code}' -m 5 \
    "http://[$LAB_SERVICE_ADDR]/healthz")
[ "$code" = 200 ] || fail "GET /healthz at the service address after the move: HTTP $code"

T_NEXT=""
# when the controller first shows the installer's next fetch, the kickstart
note_next() { [ -n "$T_NEXT" ] || ! lab_phase_seen kickstart_fetched || T_NEXT=$(lab_ts); }
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
echo "---- agent 1 ($LAB_RACK) served the host:"
lab_agent_served agent.log
echo "---- agent 2 ($LAB_RACK/2) served the host:"
lab_agent_served agent2.log

# ---- 5. agent 1 back; both journals drain ------------------------------------------------
lab_start_agent || fail "agent 1 did not start again"
unacked=$(sed -n 's/.*event journal .* unacked=\([0-9]*\).*/\1/p' "$LAB_DIR/agent.log" | tail -n 1)
lab_say "agent 1 restarted: its journal held ${unacked:-?} unacknowledged events"
drained() {
    [ "$(metric "$LAB_NS_RACK" "$LAB_AGENT_ADDR" rackboot_journal_pending_events)" = 0 ] &&
        [ "$(metric "$NS2" "$LAB_AGENT2_ADDR" rackboot_journal_pending_events)" = 0 ]
}
lab_wait_for 30 drained ||
    fail "the agents' journals did not drain within 30 s (pending: agent 1 $(metric "$LAB_NS_RACK" "$LAB_AGENT_ADDR" rackboot_journal_pending_events), agent 2 $(metric "$NS2" "$LAB_AGENT2_ADDR" rackboot_journal_pending_events))"
# keepalived gives the address back to agent 1 (the higher priority).
lab_wait_for 10 lab_has_vip "$LAB_NS_RACK" || fail "the service address did not return to agent 1"

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
T_KS=$(lab_phase_time "$LAB_DIR/events.json" kickstart_fetched)
echo "failover: kill -> service address on agent 2 $(lab_rel "$T_VIP" "$T_KILL") s;" \
    "kill -> next phase (kickstart_fetched, served by agent 2) $(lab_rel "$T_KS" "$T_KILL") s," \
    "seen at the controller $(lab_rel "$T_NEXT" "$T_KILL") s (polled; the installer's kernel boots in between)"
echo "times: power-on to power-off $(lab_rel "$T_OFF" "$T0") s; whole test $(lab_rel "$T_END" "$T_START") s"
echo "PASS: $TEST_NAME"

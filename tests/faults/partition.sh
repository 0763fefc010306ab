#!/bin/bash
# shellcheck disable=SC2086 # host lists ($HOSTS, $WAVE_A...) are split on purpose
# Fault 3: the agent and the controller are partitioned for longer than
# the install (the uplink veth down on the rack side: packets are lost, no
# connection is refused or reset), then the partition heals.
#
#   1. 6 hosts installing, dispatched, images pre-warmed;
#   2. the uplink goes down; the 6 hosts install from start to `installed`
#      against the agent alone (rack autonomy): every step answered, and
#      each intent withdrawn at once (the script is 404 afterwards);
#   3. the partition lasts until the agent has seen its uplink calls fail
#      (an event batch or a sync timed out), the controller still shows none
#      of the installs past dispatched;
#   4. the link comes back: the agent reconnects, everything converges: all
#      installed, acked generation = current, every event exactly once (per
#      host, once per netboot; equal to the agent's journal).
#
# usage: partition.sh AGENT CONTROLLER CLI PKI
set -uo pipefail
# shellcheck source=tests/faults/lib.sh
. "$(dirname "$0")/lib.sh"

N=6
fl_setup "$N"
HOSTS=$(fl_names 0 "$N")
fl_install $HOSTS
fl_wait_for 60 fl_cached || fail "images not pre-warmed within 60 s"
say "$N installs dispatched, images cached"

failed_calls() {
    fl_log_count agent.log "uplink: \(sending [0-9]* events failed\|sync failed\|cannot connect\)"
}
calls_before=$(failed_calls)
fl_uplink_down || fail "cannot take the uplink down"
T_DOWN=$(fl_ts)
ip netns exec "$FL_NS_RACK" ping -6 -c1 -W1 "$FL_UP_CTL" >/dev/null 2>&1 && fail "the controller is still reachable"
say "uplink down"

fl_hostsim local --step-delay 0.1 --installing 3
fl_hostsim_wait "$FL_SIM_PID" 120 || fail "the hosts could not install with the uplink down: $(fl_sim_failures local)"
say "all $N hosts installed against the agent alone"
for i in 0 $((N - 1)); do
    code=$(ip netns exec "$FL_NS_HOSTS" curl -gs -m 10 -o /dev/null -w '%{http_code}' \
        --interface "$(fl_host_addr $i)" "$FL_AGENT_URL/boot/$(fl_host_mac $i).ipxe")
    [ "$code" = 404 ] || fail "host $(fl_host_name $i)'s intent not withdrawn on installed (script answered $code)"
done

# The partition outlasts the agent's call timeouts: its calls fail and its
# batches will be sent again.
grew_failed() { [ "$(failed_calls)" -gt "$calls_before" ]; }
fl_wait_for 90 grew_failed || fail "the agent never noticed the partition"
fl_rb status $HOSTS --json >"$T/status-down.json" || fail "status"
python3 - "$T/status-down.json" <<'PY' || fail "the controller moved during the partition"
import json, sys
rows = json.load(open(sys.argv[1]))
moved = [(r["host"], r["state"], r["phase"]) for r in rows if r["state"] != "dispatched"]
print("  controller during the partition: %d of %d dispatched" % (len(rows) - len(moved), len(rows)))
sys.exit(1 if moved else 0)
PY
fl_uplink_up || fail "the uplink did not come back"
say "uplink up after $(fl_el "$T_DOWN") s (agent: $(($(failed_calls) - calls_before)) failed uplink calls)"

fl_wait_for 120 fl_all_state installed $HOSTS ||
    fail "not all installed within 120 s of the heal: $(fl_states $HOSTS)"
fl_wait_for 60 fl_converged || fail "generations did not converge: $(fl_generations)"
say "converged $(fl_el "$T_DOWN") s after the cut: all installed, $(fl_generations)"
fl_check --hosts "$(echo $HOSTS | tr ' ' ,)" --ledger "$T/local.ledger.json" --exact \
    --state installed || fail "events lost or doubled"
say "whole case $(fl_el) s"
echo "PASS: $TEST_NAME"

#!/bin/bash
# shellcheck disable=SC2086 # host lists ($HOSTS, $WAVE_A...) are split on purpose
# Fault 2: the controller is SIGKILLed while it dispatches intents and
# ingests events, and started again.
#
#   1. wave A (10 hosts) installing: their hosts boot and post progress
#      (hostsim), so events stream to the controller;
#   2. while they do, `rackboot install` of wave B (10 more hosts) with the
#      agent frozen (SIGSTOP): the controller commits the installs and
#      answers the agent's parked sync with the new generation, which the
#      agent cannot acknowledge; now kill -9 the controller, SIGCONT the
#      agent (the dispatch is in flight at the kill, every run);
#   3. the agent keeps serving wave A and journals their events; once it has
#      journaled more of them with the controller gone, the controller starts
#      again from its store;
#   4. the agent reconnects and converges on the controller's generation
#      (acked = current), wave B is dispatched with the install ids it had
#      before the crash (nothing lost, nothing re-created), wave B's hosts
#      install;
#   5. a second kill -9 in the middle of wave B's event stream, restart;
#   6. every install is installed and the controller holds every event
#      exactly once: per host, each phase as often as the host's requests
#      made it (once), every answered POST once, equal to the agent's journal.
#
# usage: controller_kill.sh AGENT CONTROLLER CLI PKI
set -uo pipefail
# shellcheck source=tests/faults/lib.sh
. "$(dirname "$0")/lib.sh"

NA=10
NB=10
fl_setup $((NA + NB))
WAVE_A=$(fl_names 0 $NA)
WAVE_B=$(fl_names $NA $NB)
fl_install $WAVE_A
fl_wait_for 60 fl_cached || fail "images not pre-warmed within 60 s"
say "wave A ($NA hosts) dispatched, images cached"

# Wave A boots with many progress posts, so events keep flowing through the crash.
fl_hostsim waveA --only "$(echo $WAVE_A | tr ' ' ,)" --start-spread 1 --step-delay 0.3 --installing 8
SIM_A=$FL_SIM_PID
stored() { fl_log_grew controller.log "hub: rack=$FL_RACK events=" "$1"; }
fl_wait_for 60 stored 2 || fail "the controller stored no event batches of wave A"

# Freeze the agent (SIGSTOP) so the new intents are sent to it but cannot be
# acknowledged: the kill lands with the dispatch in flight, every run.
gen_before=$(fl_log_count controller.log "hub: rack=$FL_RACK sync generation=")
kill -STOP "$FL_AGENT_PID"
# The CLI's answer (--json: the installs it created) is what was committed.
fl_rb install $WAVE_B --profile "$FL_PROFILE" --json >"$T/install-b.json" 2>"$T/install-b.err" ||
    { kill -CONT "$FL_AGENT_PID"; fail "rackboot install of wave B failed: $(cat "$T/install-b.err")"; }
fl_wait_for 30 fl_log_grew controller.log "hub: rack=$FL_RACK sync generation=" "$gen_before" ||
    { kill -CONT "$FL_AGENT_PID"; fail "the controller did not answer the agent's parked sync"; }
fl_kill_controller
T_KILL=$(fl_ts)
kill -CONT "$FL_AGENT_PID"
say "wave B submitted and sent to the (frozen) agent; controller SIGKILLed before the ack"

# The agent goes on: wave A's events are journaled with the controller gone.
ev_at_kill=$(fl_log_count agent.log "rackboot-agent: event host=")
fl_wait_for 60 fl_log_grew agent.log "rackboot-agent: event host=" $((ev_at_kill + 20)) ||
    fail "the agent journaled no more events with the controller gone"
kill -0 "$SIM_A" 2>/dev/null || say "(wave A finished while the controller was down)"
conns=$(fl_log_count controller.log "hub: agent of rack=$FL_RACK connected")
fl_start_controller || fail "controller restart"
say "controller restarted after $(fl_el "$T_KILL") s; the agent journaled $(($(fl_log_count agent.log 'rackboot-agent: event host=') - ev_at_kill)) events meanwhile"

# Intents: wave B survived the crash with its ids and the agent converges.
if ! fl_wait_for 90 fl_all_state dispatched $WAVE_B; then
    reconnected=$(($(fl_log_count controller.log "hub: agent of rack=$FL_RACK connected") - conns))
    tcp=$(ip netns exec "$FL_NS_RACK" ss -Htn "dst [$FL_UP_CTL]:$FL_CTL_PORT" | wc -l)
    fail "wave B not dispatched within 90 s of the restart: $(fl_states $WAVE_B); the agent connected to the restarted controller $reconnected times, it has $tcp TCP connections to it; its last uplink lines:
$(grep 'uplink:' "$T/agent.log" | tail -3 | cut -c1-200)"
fi
fl_wait_for 60 fl_converged || fail "generations did not converge: $(fl_generations)"
say "wave B dispatched, $(fl_generations)"
fl_rb status $WAVE_B --json >"$T/status-b.json" || fail "status of wave B"
python3 - "$T/install-b.json" "$T/status-b.json" <<'PY' || fail "wave B's installs changed over the crash"
import json, sys
before = {r["host"]: r["install_id"] for r in json.load(open(sys.argv[1]))}
after = {r["host"]: r for r in json.load(open(sys.argv[2]))}
bad = [h for h in before if h not in after or after[h]["install_id"] != before[h]
       or after[h]["attempt"] != 1]
for h in bad:
    print("  %s: install %s before the crash, %s" % (h, before[h], after.get(h)))
sys.exit(1 if bad or not before else 0)
PY

fl_hostsim waveB --only "$(echo $WAVE_B | tr ' ' ,)" --start-spread 1 --step-delay 0.2 --installing 4
SIM_B=$FL_SIM_PID

# Second kill: in the middle of event ingest, right after the controller
# stored a batch (its ack may not have reached the agent: the agent sends
# the batch again and the controller must not store it twice).
batches=$(fl_log_count controller.log "hub: rack=$FL_RACK events=")
fl_wait_for 60 fl_log_grew controller.log "hub: rack=$FL_RACK events=" $((batches + 3)) ||
    fail "no event batches from wave B"
fl_kill_controller
say "controller SIGKILLed again during wave B's event stream"
fl_start_controller || fail "second controller restart"
fl_hostsim_wait "$SIM_A" 180 || fail "wave A's hosts did not all finish: $(fl_sim_failures waveA)"
fl_hostsim_wait "$SIM_B" 180 || fail "wave B's hosts did not all finish: $(fl_sim_failures waveB)"
say "every host of both waves finished"

fl_wait_for 120 fl_all_state installed $WAVE_A $WAVE_B ||
    fail "not every install reached installed within 120 s: $(fl_states $WAVE_A $WAVE_B)"
fl_wait_for 60 fl_converged || fail "generations did not converge: $(fl_generations)"
say "controller: all $((NA + NB)) installed; $(fl_generations)"
fl_check --hosts "$(echo $WAVE_A $WAVE_B | tr ' ' ,)" --ledger "$T/waveA.ledger.json" \
    --ledger "$T/waveB.ledger.json" --exact --state installed ||
    fail "events lost or doubled"
say "whole case $(fl_el) s"
echo "PASS: $TEST_NAME"

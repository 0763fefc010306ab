#!/bin/bash
# shellcheck disable=SC2086 # host lists ($HOSTS, $WAVE_A...) are split on purpose
# Fault 1: the agent is SIGKILLed in the middle of a boot storm and started
# again.
#
#   1. 30 hosts installing, dispatched, their images pre-warmed;
#   2. the hosts boot at once (hostsim: DHCPv6, script, kernel, initrds,
#      kickstart, stage2, progress POSTs, a short pause between steps);
#   3. once about a third of the storm's events are journaled, kill -9 the
#      agent; the hosts' requests fail and they retry;
#   4. the agent starts again (its journal, intents, leases from disk) and
#      the retries succeed: every host finishes;
#   5. the controller converges (every install installed) and holds every
#      event the agent journaled exactly once (check.py: the one event
#      logged just before the kill may be missing, never doubled), every
#      POST the hosts got a 200 for exactly once, and exact once-per-netboot
#      counts for the hosts the kill did not touch.
#
# usage: agent_kill.sh AGENT CONTROLLER CLI PKI
set -uo pipefail
# shellcheck source=tests/faults/lib.sh
. "$(dirname "$0")/lib.sh"

N=${FAULT_HOSTS:-30}
fl_setup "$N"
HOSTS=$(fl_names 0 "$N")
fl_install $HOSTS
fl_wait_for 60 fl_cached || fail "images not pre-warmed within 60 s"
say "$N installs dispatched, images cached"

before=$(fl_log_count agent.log "rackboot-agent: event host=")
fl_hostsim storm --start-spread 2 --step-delay 0.3 --installing 2
SIM=$FL_SIM_PID
# 13 events per host; kill when about a third are in.
target=$((before + N * 13 / 3))
fl_wait_for 90 fl_log_grew agent.log "rackboot-agent: event host=" "$target" ||
    fail "the storm did not get going ($(fl_log_count agent.log 'rackboot-agent: event host=') events)"
kill -0 "$SIM" 2>/dev/null || fail "the hosts finished before the kill: $(tail -3 "$T/storm.sim.out")"
T_KILL=$(fl_ts)
fl_kill_agent
say "agent SIGKILLed after $(($(fl_log_count agent.log 'rackboot-agent: event host=') - before)) storm events"
# The hosts notice (a failed attempt), then the agent comes back.
fl_wait_for 30 grep -q "attempt [0-9]* failed" "$T/storm.sim.out" ||
    fail "no host saw the agent go"
T_RESTART=$(fl_ts)
fl_start_agent || fail "agent restart"
say "agent restarted, $(grep -c 'attempt [0-9]* failed' "$T/storm.sim.out") failed attempts so far"

fl_hostsim_wait "$SIM" 180
rc=$?
[ "$rc" = 0 ] || fail "hosts did not all finish (rc $rc): $(fl_sim_failures storm)"
say "every host finished; $(grep -c 'attempt [0-9]* failed' "$T/storm.sim.out") failed attempts were retried"

fl_wait_for 120 fl_all_state installed $HOSTS ||
    fail "not every install reached installed within 120 s: $(fl_states $HOSTS)"
fl_wait_for 60 fl_converged || fail "generations did not converge: $(fl_generations)"
say "controller: all $N installed; $(fl_generations)"
fl_check --hosts "$(echo $HOSTS | tr ' ' ,)" --ledger "$T/storm.ledger.json" \
    --killed-agent 0 --exact --kill-span "$T_KILL" "$T_RESTART" --state installed ||
    fail "events lost or doubled"
say "whole case $(fl_el) s"
echo "PASS: $TEST_NAME"

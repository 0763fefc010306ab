#!/bin/bash
# shellcheck disable=SC2086 # host lists ($HOSTS, $WAVE_A...) are split on purpose
# Fault 7: an agent's certificate is revoked while it is connected
# (rackboot-pki revoke + crl, crl.pem copied to the controller, SIGHUP).
#
#   1. 3 hosts installing; they boot up to their progress posts and wait;
#      everything the agent journaled so far is stored (journal drained);
#   2. revoke agent:fl1, copy crl.pem to the controller, SIGHUP it;
#   3. the agent's live sync/event stream is closed within about a second
#      (the controller logs the cut; the agent's pending uplink call fails:
#      bound 2 s between the SIGHUP and the agent's failure line);
#   4. its reconnects are refused: the agent keeps failing, the controller
#      accepts no new connection of the rack;
#   5. the hosts post installing/installed: the agent still serves its rack
#      (rack autonomy: 200, journaled), tries to send the events, and the
#      controller stores none of them: no event after the revocation, the
#      installs stay where they were, everything before it exactly once.
#
# usage: revoked_agent.sh AGENT CONTROLLER CLI PKI
set -uo pipefail
# shellcheck source=tests/faults/lib.sh
. "$(dirname "$0")/lib.sh"

N=3
fl_setup "$N"
HOSTS=$(fl_names 0 "$N")
fl_install $HOSTS
fl_wait_for 60 fl_cached || fail "images not pre-warmed within 60 s"
fl_hostsim boot --step-delay 0.05 --installing 2 --deadline 200 --gate "post=$T/gate"
SIM=$FL_SIM_PID
at_gate() { [ "$(fl_log_count agent.log 'phase=stage2_progress percent=100')" -ge "$N" ]; }
fl_wait_for 60 at_gate || fail "the hosts did not get their images: $(fl_sim_failures boot)"
drained() { [ "$(fl_metric rackboot_journal_pending_events)" = 0 ]; }
fl_wait_for 60 drained || fail "the agent's journal did not drain ($(fl_metric rackboot_journal_pending_events) pending)"
fl_rb events --json >"$T/events-before.json" || fail "events"
before=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$T/events-before.json")
say "hosts at their progress posts; the controller holds $before events"

# ---- revoke ------------------------------------------------------------------------------
"$RB_PKI" --dir "$T/ca" revoke agent "$FL_RACK" >/dev/null || fail "revoke"
"$RB_PKI" --dir "$T/ca" crl >/dev/null || fail "crl"
fl_deploy_crl ctl || fail "copy crl.pem"
uplink_fails() {
    fl_log_count agent.log "uplink: \(sending [0-9]* events failed\|sync failed\|cannot connect\|controller refused\)"
}
fails0=$(uplink_fails)
conns0=$(fl_log_count controller.log "hub: agent of rack=$FL_RACK connected")
T_HUP=$(fl_ts)
kill -HUP "$FL_CTL_PID"
fl_wait_for 30 fl_log_grew controller.log "SIGHUP: PKI reloaded" 0 ||
    fail "the controller did not reload its PKI files: $(grep -i 'sighup\|crl' "$T/controller.log" | tail -3)"
cut_seen() { [ "$(uplink_fails)" -gt "$fails0" ]; }
fl_wait_for 20 cut_seen || fail "the agent's stream was not cut: no failed uplink call within 20 s of the SIGHUP"
# How long after the SIGHUP the agent saw it (its log's wall-clock stamps).
lat=$(grep "uplink: \(sending [0-9]* events failed\|sync failed\|cannot connect\|controller refused\)" "$T/agent.log" |
    sed -n "$((fails0 + 1))p" | python3 -c '
import datetime, sys
line = sys.stdin.readline()
t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
print("%.2f" % (t.timestamp() - float(sys.argv[1])))' "$T_HUP")
grep "certificate of the agent of rack=$FL_RACK revoked" "$T/controller.log" | head -1 | cut -c1-200 |
    sed 's/^/  controller: /'
grep "uplink: \(sending [0-9]* events failed\|sync failed\|cannot connect\|controller refused\)" "$T/agent.log" |
    sed -n "$((fails0 + 1))p" | cut -c1-200 | sed 's/^/  agent: /'
say "the agent's stream was cut ${lat} s after the SIGHUP"
awk -v l="$lat" 'BEGIN { exit !(l <= 2.0) }' || fail "the revoked agent's live stream was cut only ${lat} s after the SIGHUP (expected about a second)"

# ---- reconnects refused, local serving goes on -------------------------------------------------
p=$(fl_tls_probe "$T/agent-pki/agent.crt" "$T/agent-pki/agent.key")
[ "$p" = refused ] || fail "the controller still accepts new connections with the revoked certificate ($p)"
fails1=$(uplink_fails)
tried_again() { [ "$(uplink_fails)" -gt "$fails1" ]; }
touch "$T/gate"
fl_hostsim_wait "$SIM" 120 || fail "the hosts could not post to their agent: $(fl_sim_failures boot)"
say "the hosts posted installing/installed: answered by the agent"
fl_wait_for 90 tried_again || fail "the agent did not try again (uplink failures: $(($(uplink_fails) - fails0)))"
conns1=$(fl_log_count controller.log "hub: agent of rack=$FL_RACK connected")
[ "$conns1" = "$conns0" ] || fail "the controller accepted the revoked agent again ($((conns1 - conns0)) connections)"
pending=$(fl_metric rackboot_journal_pending_events)
[ "${pending:-0}" -gt 0 ] || fail "the agent has no events left to send: they went somewhere"
say "reconnects refused (TLS refuses the certificate; $(($(uplink_fails) - fails0)) failed uplink calls), $pending events held by the agent"
fl_check --hosts "$(echo $HOSTS | tr ' ' ,)" --ledger "$T/boot.ledger.json" --exact \
    --posts-absent-after "$T_HUP" || fail "the controller stored events of the revoked agent"
fl_rb status $HOSTS --json >"$T/status-after.json"
python3 - "$T/status-after.json" <<'PY' || fail "an install moved on the revoked agent's word"
import json, sys
rows = json.load(open(sys.argv[1]))
moved = [r for r in rows if r["state"] == "installed" or r["phase"] in ("installing", "installed")]
print("  controller: %s" % ", ".join("%s %s/%s" % (r["host"], r["state"], r["phase"]) for r in rows))
sys.exit(1 if moved else 0)
PY
say "whole case $(fl_el) s"
echo "PASS: $TEST_NAME"

#!/bin/bash
# shellcheck disable=SC2086 # host lists ($HOSTS, $WAVE_A...) are split on purpose
# Fault 4: the agent's disk fills up, during a pre-warm and during installs,
# and space comes back; the agent is never restarted.
#
# The case runs in a mount namespace of its own (unshare -m): the agent's
# state_dir is a 4 MiB tmpfs and its cache (state_dir/cache) another 3 MiB
# tmpfs, so a filler file fills either without touching the machine.
#
#   1. the cache's file system is full when the installs are dispatched:
#      the pre-warm fails with a clear log line ("No space left on device"),
#      rackboot_cache_fetch_failures_total counts it, nothing is stored;
#   2. the hosts boot on the full cache: their image requests fail and are
#      retried; nothing any client gets is ever a corrupt object (every 200
#      body is hashed, also GET /objects/<sha256> from a non-host address);
#   3. the filler goes: the retries fetch and serve the verified images;
#   4. the state_dir (the event journal) is full while the hosts post their
#      progress: the POSTs are refused (not recorded) and retried, the log
#      says so, rackboot_events_failed_total counts it; the filler goes;
#   5. every host installs; the controller converges and holds every event
#      the agent journaled exactly once, every POST answered 200 once.
#
# usage: disk_full.sh AGENT CONTROLLER CLI PKI
if [ -z "${FL_MNTNS:-}" ] && [ "$(id -u)" = 0 ]; then
    command -v unshare >/dev/null || { echo "SKIP: disk_full: unshare not installed"; exit 77; }
    FL_MNTNS=1 exec unshare -m --propagation private "$0" "$@"
fi
set -uo pipefail
# shellcheck source=tests/faults/lib.sh
. "$(dirname "$0")/lib.sh"

N=4
mount_small_disks() {
    FL_AGENT_STATE=$T/agent-state
    mkdir -p "$FL_AGENT_STATE" &&
        mount -t tmpfs -o size=4m,mode=0755 rb-faults-state "$FL_AGENT_STATE" &&
        mkdir -p "$FL_AGENT_STATE/cache" &&
        mount -t tmpfs -o size=3m,mode=0755 rb-faults-cache "$FL_AGENT_STATE/cache"
}
# shellcheck disable=SC2034 # read by fl_setup (lib.sh)
FL_BEFORE_CONFIGS=mount_small_disks
fl_setup "$N" 256 384 1024
HOSTS=$(fl_names 0 "$N")
CACHE=$FL_AGENT_STATE/cache
AGENT_PID=$FL_AGENT_PID

# fill DIR: a file takes every free byte of DIR's file system.
fill() {
    # (tmpfs allocates pages: 4 KiB blocks leave no room for a new page)
    dd if=/dev/zero of="$1/filler" bs=4k status=none 2>/dev/null
    [ "$(df --output=avail -B1 "$1" | tail -1)" -lt 4096 ]
}
metric() { fl_metric "$1" 2>/dev/null || echo 0; }
nospace() { fl_log_count agent.log "cache fetch failed object=.*No space left on device"; }

# ---- 1. pre-warm on a full cache ---------------------------------------------------
fill "$CACHE" || fail "cannot fill the cache's file system"
fails0=$(metric rackboot_cache_fetch_failures_total)
fl_install $HOSTS
fl_wait_for 30 fl_log_grew agent.log "cache fetch failed object=.*No space left on device" 0 ||
    fail "no clear log line for the pre-warm on a full disk: $(grep 'cache' "$T/agent.log" | tail -5)"
grep "cache fetch failed object=.*No space left" "$T/agent.log" | head -1 | cut -c1-200 | sed 's/^/  log: /'
fails1=$(metric rackboot_cache_fetch_failures_total)
[ "$fails1" -gt "$fails0" ] || fail "rackboot_cache_fetch_failures_total did not count it ($fails0 -> $fails1)"
fl_cached && fail "an image was stored on a full disk"
say "pre-warm on a full cache: failed with ENOSPC, counted (fetch failures $fails0 -> $fails1)"

# A client that is no host (no events) asks for an object: never corrupt.
no_corrupt_object() {
    local h code
    h=$(fl_sha vmlinuz)
    code=$(ip netns exec "$FL_NS_HOSTS" curl -gs -m 30 -o "$T/obj" -w '%{http_code}' \
        --interface 2001:db8:1::2 "$FL_AGENT_URL/objects/$h")
    if [ "$code" = 200 ]; then
        [ "$(sha256sum <"$T/obj" | cut -d' ' -f1)" = "$h" ] || fail "GET /objects/$h answered 200 with other bytes"
    fi
    echo "$code"
}
code=$(no_corrupt_object)
case "$code" in 5*) ;; *) fail "GET /objects/<kernel> on a full cache answered $code, expected 5xx" ;; esac
say "GET /objects/<kernel> on a full cache: $code"

# ---- 2-3. hosts boot on the full cache, space returns ------------------------------------
fl_hostsim boot --step-delay 0.1 --installing 2 --deadline 240 --gate "post=$T/post-gate"
SIM=$FL_SIM_PID
fl_wait_for 60 grep -q "kernel attempt 2 failed" "$T/boot.sim.out" ||
    fail "the hosts' kernel requests did not fail and retry on the full cache"
n=$(grep -c "attempt [0-9]* failed" "$T/boot.sim.out")
say "hosts booting on the full cache: $n failed attempts, $(nospace) ENOSPC fetches"
rm -f "$CACHE/filler"
fl_wait_for 60 fl_cached || fail "the images were not fetched once space returned"
say "space returned: images cached without a restart"
# Every host reaches its progress posts (the gate).
at_gate() { [ "$(fl_log_count agent.log 'phase=stage2_progress percent=100')" -ge "$N" ]; }
fl_wait_for 90 at_gate || fail "the hosts did not all get their images: $(fl_sim_failures boot)"
code=$(no_corrupt_object)
[ "$code" = 200 ] || fail "GET /objects/<kernel> answered $code once cached"

# ---- 4. the journal's disk full while the hosts post ---------------------------------------
fill "$FL_AGENT_STATE" || fail "cannot fill the state_dir's file system"
efail0=$(metric rackboot_events_failed_total)
touch "$T/post-gate"
fl_wait_for 60 fl_log_grew agent.log "not recorded" 0 ||
    fail "no event refused on the full state_dir: $(tail -5 "$T/agent.log")"
grep "not recorded" "$T/agent.log" | head -1 | cut -c1-200 | sed 's/^/  log: /'
efail1=$(metric rackboot_events_failed_total)
[ "$efail1" -gt "$efail0" ] || fail "rackboot_events_failed_total did not count it ($efail0 -> $efail1)"
say "state_dir full: $(fl_log_count agent.log 'not recorded') events not recorded, POSTs refused and retried"
rm -f "$FL_AGENT_STATE/filler"
say "space returned on the state_dir"

# ---- 5. everything completes, nothing lost or doubled ---------------------------------------
fl_hostsim_wait "$SIM" 180 || fail "hosts did not all finish: $(fl_sim_failures boot)"
kill -0 "$AGENT_PID" 2>/dev/null && [ "$FL_AGENT_PID" = "$AGENT_PID" ] || fail "the agent did not survive"
say "every host finished ($(grep -c 'attempt [0-9]* failed' "$T/boot.sim.out") failed attempts retried)"
fl_wait_for 120 fl_all_state installed $HOSTS ||
    fail "not every install reached installed within 120 s: $(fl_states $HOSTS)"
fl_wait_for 60 fl_converged || fail "generations did not converge: $(fl_generations)"
fl_check --hosts "$(echo $HOSTS | tr ' ' ,)" --ledger "$T/boot.ledger.json" --exact \
    --state installed || fail "events lost or doubled, or a corrupt body served"
say "whole case $(fl_el) s"
echo "PASS: $TEST_NAME"

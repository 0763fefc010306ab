#!/bin/bash
# shellcheck disable=SC2086 # host lists ($HOSTS, $WAVE_A...) are split on purpose
# Fault 5: an object in the agent's cache is corrupted on disk (bit rot, a
# bad block, an operator's mistake): bytes flipped in place, same size.
#
#   1. 3 hosts installing; the images are pre-warmed (the origin served
#      each once);
#   2. 64 bytes in the middle of the cached kernel object
#      (cache/objects/ab/<sha256>) are overwritten in place (size and name
#      unchanged);
#   3. the hosts boot: every kernel they get must be the origin's bytes
#      (hostsim hashes every 200 body and retries a corrupt one; a corrupt
#      body is a failure of this case), as must GET /objects/<sha256> and
#      /images/el9/vmlinuz from a non-host address;
#   4. the agent detected it: the object was fetched again from the origin
#      (a second origin GET), and the object on disk is whole again;
#   5. the installs complete and the controller holds every event once.
#
# usage: cache_corrupt.sh AGENT CONTROLLER CLI PKI
set -uo pipefail
# shellcheck source=tests/faults/lib.sh
. "$(dirname "$0")/lib.sh"

N=3
fl_setup "$N"
HOSTS=$(fl_names 0 "$N")
fl_install $HOSTS
fl_wait_for 60 fl_cached || fail "images not pre-warmed within 60 s"
[ "$(fl_origin_gets vmlinuz)" = 1 ] || fail "the origin served the kernel $(fl_origin_gets vmlinuz) times for the pre-warm"
K=$(fl_sha vmlinuz)
OBJ=$FL_AGENT_STATE/cache/objects/${K:0:2}/$K
size=$(stat -c %s "$OBJ")
printf '%064d' 0 | tr 0 '\377' | dd of="$OBJ" bs=1 seek=$((size / 2)) conv=notrunc status=none ||
    fail "cannot corrupt $OBJ"
[ "$(sha256sum <"$OBJ" | cut -d' ' -f1)" != "$K" ] || fail "the object is not corrupt"
[ "$(stat -c %s "$OBJ")" = "$size" ] || fail "the object changed size"
say "kernel object corrupted in place (64 bytes at offset $((size / 2)) of $size)"

# A client that is no host: whatever it gets with a 200 must be the kernel.
bad_gets=0
for path in "objects/$K" "images/$FL_PROFILE/vmlinuz"; do
    code=$(ip netns exec "$FL_NS_HOSTS" curl -gs -m 30 -o "$T/got" -w '%{http_code}' \
        --interface 2001:db8:1::2 "$FL_AGENT_URL/$path")
    got=$(sha256sum <"$T/got" | cut -d' ' -f1)
    if [ "$code" = 200 ] && [ "$got" != "$K" ]; then
        echo "  GET /$path answered 200 with the corrupt object (sha256 $got)"
        bad_gets=$((bad_gets + 1))
    else
        echo "  GET /$path: $code$([ "$code" = 200 ] && echo ', the origin'"'"'s bytes')"
    fi
done

fl_hostsim boot --step-delay 0.05 --installing 1 --deadline 60
fl_hostsim_wait "$FL_SIM_PID" 120
sim_rc=$?
corrupt=$(python3 -c '
import json, sys
print(sum(1 for r in json.load(open(sys.argv[1])) if r.get("corrupt")))' "$T/boot.ledger.json" 2>/dev/null)
say "hosts: exit $sim_rc, ${corrupt:-?} corrupt kernels received"
[ "$bad_gets" = 0 ] && [ "${corrupt:-1}" = 0 ] ||
    fail "the corrupt object was served ($bad_gets direct GETs, ${corrupt:-?} host downloads): not detected; origin GETs of the kernel: $(fl_origin_gets vmlinuz); $(grep -c 'attempt [0-9]* failed' "$T/boot.sim.out") host attempts failed"
[ "$sim_rc" = 0 ] || fail "hosts did not all finish: $(fl_sim_failures boot)"
[ "$(fl_origin_gets vmlinuz)" -ge 2 ] || fail "the kernel was not fetched again from the origin"
[ "$(sha256sum <"$OBJ" | cut -d' ' -f1)" = "$K" ] || fail "the object on disk is still corrupt"
say "corruption detected: refetched from the origin ($(fl_origin_gets vmlinuz) GETs), served whole"

fl_wait_for 120 fl_all_state installed $HOSTS ||
    fail "not every install reached installed within 120 s: $(fl_states $HOSTS)"
fl_check --hosts "$(echo $HOSTS | tr ' ' ,)" --ledger "$T/boot.ledger.json" --exact \
    --state installed || fail "events lost or doubled"
say "whole case $(fl_el) s"
echo "PASS: $TEST_NAME"

#!/bin/bash
# The agent loses the controller mid-install; the install completes anyway,
# and once the link is back every event reaches the controller, none twice.
#
#   uplink_outage.sh AGENT CONTROLLER CLI PKI
#
# Same namespaces as the e2e test (deploy/lab/lib.sh), but the host is a
# plain Linux namespace on the rack link doing what a netbooting host does,
# step by step, from its reserved address and MAC: dhclient -6 (DHCPv6 with
# the agent), GET its iPXE script, then every URL the script names (kernel,
# initrd, overlay), the kickstart named by inst.ks=, the stage2 image under
# inst.stage2=, and the installer's progress posts to the URL the kickstart
# carries (the token comes from the script, as for a real host: nothing
# reads the agent's state). The images are small random files.
#
#   1. install submitted; the agent has the intent and its images cached
#   2. host: DHCPv6 + script; the controller has seen script_served
#   3. the uplink goes down (ip link set up1 down in the rack namespace)
#   4. host: kernel, initrd, overlay, kickstart, stage2, installing x2,
#      installed: all answered by the agent; the intent is withdrawn at once
#      (the script is 404 now); the controller still shows script_served
#   5. the link stays down for OUTAGE seconds (longer than the agent's 15 s
#      event call timeout, so batches are resent and the controller must
#      de-duplicate), then comes back
#   6. the controller reaches installed; its events for the install equal
#      the agent's own event log lines for it, as a multiset: nothing lost,
#      nothing twice
#
# Needs root, ip netns, radvd, dhclient, curl, python3; skips (77) otherwise.
set -uo pipefail

RB_AGENT=${1:?usage: uplink_outage.sh AGENT CONTROLLER CLI PKI}
RB_CONTROLLER=${2:?controller}
RB_CLI=${3:?cli}
RB_PKI=${4:?pki}
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=uplink_outage
# shellcheck disable=SC2034 # read by deploy/lab/lib.sh
LAB_ID="up$$"
# Debug: the controller logs how many events of each batch it stored.
# shellcheck disable=SC2034 # read by deploy/lab/lib.sh
LAB_CTL_LOG_LEVEL=debug
LAB_AGENT_LOG_LEVEL=debug
# shellcheck source=deploy/lab/lib.sh
. "$HERE/../../deploy/lab/lib.sh"

OUTAGE=${OUTAGE:-25}

missing=$(lab_missing net dhclient)
if [ -n "$missing" ]; then
    echo "SKIP: $TEST_NAME: $(echo "$missing" | paste -sd ';' | sed 's/;/; /g')"
    exit 77
fi
for b in "$RB_AGENT" "$RB_CONTROLLER" "$RB_CLI" "$RB_PKI"; do
    [ -x "$b" ] || { echo "FAIL: $TEST_NAME: $b is not built"; exit 1; }
done

fail() {
    echo "FAIL: $TEST_NAME: $*"
    lab_dump_logs
    exit 1
}

T_START=$(lab_ts)
lab_init "$(mktemp -d "/tmp/rackboot-$TEST_NAME.XXXXXX")"
trap lab_cleanup EXIT
trap 'exit 130' INT TERM

lab_net_up || fail "network setup"
lab_host_ns || fail "host namespace"
lab_pki || fail "PKI"
lab_write_configs || fail "configs do not pass --check-config"
lab_start_origin || fail "origin"
head -c 3000000 /dev/urandom >"$LAB_DIR/origin/vmlinuz"
head -c 1000000 /dev/urandom >"$LAB_DIR/origin/initrd.img"
head -c 4000000 /dev/urandom >"$LAB_DIR/origin/squashfs.img"
lab_write_inputs "$LAB_DIR/inputs"
lab_start_controller || fail "controller"
lab_start_agent || fail "agent"

H=$LAB_NS_HOST
AGENT_URL="http://[$LAB_AGENT_ADDR]"
# hcurl ARGS...: curl in the host namespace; prints the HTTP status.
hcurl() {
    ip netns exec "$H" curl -gsS -m 20 -o "$LAB_DIR/body" -w '%{http_code}' "$@"
}
# expect_get CODE URL: a GET from the host answered with CODE.
expect_get() {
    local code
    code=$(hcurl "$2")
    [ "$code" = "$1" ] || fail "GET $2 answered $code, expected $1: $(head -c 200 "$LAB_DIR/body")"
}
post() {
    local code
    code=$(hcurl --data "phase=$1&percent=$2&message=$3" "$PROGRESS")
    [ "$code" = 200 ] || fail "POST phase=$1 answered $code: $(cat "$LAB_DIR/body")"
}
ctl_phase() { lab_status_field "$LAB_HOST" phase; }
phase_is() { [ "$(ctl_phase)" = "$1" ]; }

# ---- 1. the install, dispatched and cached --------------------------------------
lab_register "$LAB_DIR/inputs" >"$LAB_DIR/register.out" 2>&1 ||
    { cat "$LAB_DIR/register.out"; fail "cannot import hosts/profiles"; }
lab_rb install "$LAB_HOST" --profile "$LAB_PROFILE" >/dev/null || fail "rackboot install failed"
INSTALL_ID=$(lab_status_field "$LAB_HOST" install_id)
lab_wait_for 30 lab_state_is "$LAB_HOST" dispatched || fail "install not dispatched within 30 s"
# The images come from the fleet side: cached before the uplink goes.
lab_wait_for 30 lab_log_grew agent.log "cache stored object=" 2 || fail "images not cached within 30 s"
lab_say "install $INSTALL_ID dispatched, images cached"

# ---- 2. the host: DHCPv6 and its script ---------------------------------------------
ip -n "$H" addr add "$LAB_HOST_ADDR/64" dev eth0 nodad
# One DHCPv6 exchange (DUID-LLT from the MAC); the script hook changes nothing.
timeout 30 ip netns exec "$H" dhclient -6 -1 -v -sf /bin/true -lf "$LAB_DIR/dhclient.leases" \
    -pf "$LAB_DIR/dhclient.pid" eth0 >>"$LAB_DIR/dhclient.out" 2>&1 || fail "dhclient got no lease"
[ -s "$LAB_DIR/dhclient.pid" ] && kill "$(cat "$LAB_DIR/dhclient.pid")" 2>/dev/null
grep -q "$LAB_HOST_ADDR" "$LAB_DIR/dhclient.leases" || fail "the lease is not $LAB_HOST_ADDR"
expect_get 200 "$AGENT_URL/boot/$LAB_HOST_MAC.ipxe"
cp "$LAB_DIR/body" "$LAB_DIR/script.ipxe"
KERNEL_URL=$(awk '$1 == "kernel" { print $2 }' "$LAB_DIR/script.ipxe")
INITRD_URLS=$(awk '$1 == "initrd" { print $NF }' "$LAB_DIR/script.ipxe")
KS_URL=$(grep -o 'inst\.ks=[^ ]*' "$LAB_DIR/script.ipxe" | cut -d= -f2-)
STAGE2_URL=$(grep -o 'inst\.stage2=[^ ]*' "$LAB_DIR/script.ipxe" | cut -d= -f2-)
{ [ -n "$KERNEL_URL" ] && [ -n "$INITRD_URLS" ] && [ -n "$KS_URL" ] && [ -n "$STAGE2_URL" ]; } ||
    fail "the script lacks kernel, initrd, inst.ks= or inst.stage2=: $(cat "$LAB_DIR/script.ipxe")"
lab_wait_for 20 phase_is script_served || fail "the controller did not see script_served (phase $(ctl_phase))"
lab_say "host bound and served its script; the controller shows script_served"

# ---- 3-4. the uplink goes down; the install goes on ---------------------------------
lab_uplink_down || fail "cannot take the uplink down"
T_DOWN=$(lab_ts)
lab_say "uplink down"
ip netns exec "$LAB_NS_RACK" ping -6 -c1 -W1 "$LAB_UP_CTL" >/dev/null 2>&1 && fail "the controller is still reachable"
expect_get 200 "$KERNEL_URL"
cmp -s "$LAB_DIR/body" "$LAB_DIR/origin/vmlinuz" || fail "the kernel served is not the origin's"
for u in $INITRD_URLS; do
    expect_get 200 "$u"
done
expect_get 200 "$KS_URL"
PROGRESS=$(grep -o 'http://[^"'"'"' ]*/progress/[^"'"'"' ]*' "$LAB_DIR/body" | head -n 1)
[ -n "$PROGRESS" ] || fail "no progress URL in the kickstart"
expect_get 200 "${STAGE2_URL%/}/LiveOS/squashfs.img"
cmp -s "$LAB_DIR/body" "$LAB_DIR/origin/squashfs.img" || fail "the stage2 served is not the origin's"
post installing 0 "pre+script"
post installing 50 "installing+packages"
post installed 100 "post+script+done"
# Withdrawn at the agent at once, with the controller out of reach.
expect_get 404 "$AGENT_URL/boot/$LAB_HOST_MAC.ipxe"
phase_is script_served || fail "the controller moved on while the uplink was down: $(ctl_phase)"
journaled=$(grep -c "event host=$LAB_HOST install=$INSTALL_ID " "$LAB_DIR/agent.log")
lab_say "host installed with the uplink down; the agent journaled $journaled events; controller still at script_served"

# ---- 5. the link stays down, then returns ---------------------------------------------
while [ "$(awk -v a="$(lab_ts)" -v b="$T_DOWN" 'BEGIN { print (a - b < '"$OUTAGE"') }')" = 1 ]; do
    sleep 1
done
phase_is script_served || fail "the controller moved on while the uplink was down: $(ctl_phase)"
lab_uplink_up || fail "the uplink did not come back"
T_UP=$(lab_ts)
lab_say "uplink up after $(lab_rel "$T_UP" "$T_DOWN") s"

# ---- 6. everything arrives, once ---------------------------------------------------------
lab_wait_for 90 lab_state_is "$LAB_HOST" installed ||
    fail "not installed within 90 s of the link's return (state $(lab_status_field "$LAB_HOST" state), phase $(ctl_phase))"
T_INST=$(lab_ts)
lab_say "controller shows installed $(lab_rel "$T_INST" "$T_UP") s after the link returned"
# Let any late resend land before comparing.
sleep 3
lab_rb events "$LAB_HOST" --json >"$LAB_DIR/events.json" || fail "rackboot events failed"
grep "event host=$LAB_HOST install=$INSTALL_ID " "$LAB_DIR/agent.log" >"$LAB_DIR/agent-events.txt"
python3 - "$LAB_DIR/events.json" "$LAB_DIR/agent-events.txt" "$INSTALL_ID" <<'PY' ||
import collections, json, re, sys
ctl = [e for e in json.load(open(sys.argv[1])) if e["install_id"] == sys.argv[3]]
agent = []
for line in open(sys.argv[2]):
    m = re.search(r" phase=(\S+)(?: mac=\S+)? percent=(\d+) message=(.*)$", line)
    msg = m.group(3)
    if msg.startswith('"') and msg.endswith('"'):
        msg = msg[1:-1]
    agent.append((m.group(1), int(m.group(2)), msg))
got = collections.Counter((e["phase"], e["percent"] or 0, e["message"] or "") for e in ctl)
want = collections.Counter(agent)
print("  agent journaled %d events for the install, the controller holds %d" % (len(agent), len(ctl)))
for k in sorted(set(got) | set(want)):
    if got[k] != want[k]:
        print("  MISMATCH %-18s %3d%% %-24r agent %d, controller %d" % (k[0], k[1], k[2], want[k], got[k]))
for e in ctl:
    print("    %s  %-18s %3s%%  %s" % (e["time"], e["phase"], e["percent"], e["message"] or ""))
sys.exit(0 if got == want else 1)
PY
    fail "the controller's events differ from what the agent journaled (lost or doubled)"
# What the link did: batches the controller saw more than once (stored < sent).
resent=$(grep -c "hub: rack=$LAB_RACK events=" "$LAB_DIR/controller.log")
dups=$(grep "hub: rack=$LAB_RACK events=" "$LAB_DIR/controller.log" |
    awk '{ for (i = 1; i <= NF; i++) { if ($i ~ /^events=/) n = substr($i, 8); if ($i ~ /^stored=/) s = substr($i, 8) } if (s + 0 < n + 0) d += n - s } END { print d + 0 }')
echo "  controller: $resent event batches received, $dups events in them already stored (re-sent, dropped)"
grep -c "uplink: sending .* events failed" "$LAB_DIR/agent.log" | sed 's/^/  agent: event sends failed during the outage: /'
lab_state_is "$LAB_HOST" installed || fail "status changed"
echo "whole test $(lab_rel "$(lab_ts)" "$T_START") s"
echo "PASS: $TEST_NAME"

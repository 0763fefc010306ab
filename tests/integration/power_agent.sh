#!/bin/bash
# Hands-off power through the whole chain: the rackboot CLI, the controller,
# the agent's powerctl and its IPMI driver, against a real BMC
# implementation (OpenIPMI's ipmi_sim) on the rack's management link,
# checked with ipmitool (which shares no code with libfreeipmi).
#
#   power_agent.sh AGENT CONTROLLER CLI PKI
#
# Namespaces as in the lab (deploy/lab/lib.sh), plus the BMC's behind a
# management link of the agent's namespace (lab_bmc_net). The BMC's chassis
# is a script keeping its power state and boot device in files
# (tests/integration/ipmi_sim_lib.sh); tests/e2e/e2e.sh drives a VM.
#
#   1. hosts imported from CSV with bmc, bmc_user, bmc_password_file,
#      firmware; the agent learns the BMCs (no password in any log or
#      output; STATE_DIR/intents.pb is 0600)
#   2. `power status` and `power on`: what ipmitool sees
#   3. `install --profile lab --power cycle`: one-time PXE boot with the EFI
#      flag (firmware = uefi), then the cycle; both are events of the
#      install; ipmitool's bootparam 5 says Force PXE
#   4. the poll: the host switched off behind rackboot's back shows as off
#      in `hosts list` within the poll interval
#   5. wrong password, unreachable BMC, slow BMC: each a failed command
#      with the BMC's error, bounded in time, and the agent serves HTTP
#      throughout
#   6. no password anywhere (a viewer's refusal: tests/integration/cli_flows.sh)
#
# Needs root, ip netns, ipmi_sim, ipmitool, python3, curl; skips (77)
# otherwise. Every wait is bounded; lab_cleanup stops everything.
set -uo pipefail

RB_AGENT=${1:?usage: power_agent.sh AGENT CONTROLLER CLI PKI}
RB_CONTROLLER=${2:?controller}
RB_CLI=${3:?cli}
RB_PKI=${4:?pki}
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=power_agent
# shellcheck disable=SC2034 # read by deploy/lab/lib.sh
LAB_ID="pw$$"
# shellcheck source=deploy/lab/lib.sh
. "$HERE/../../deploy/lab/lib.sh"
# shellcheck source=tests/integration/ipmi_sim_lib.sh
. "$HERE/ipmi_sim_lib.sh"

POLL=3 # [power] poll_interval of the agent, seconds

missing=$(lab_missing net; lab_bmc_missing | grep -v qemu)
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
    for f in "$SIM/sim.log" "$SIM/state/chassis.log"; do
        [ -s "$f" ] && { echo "---- $f (last 20 lines)"; tail -n 20 "$f"; }
    done
    exit 1
}
ok() { echo "ok: $*"; }

T_START=$(lab_ts)
lab_init "$(mktemp -d "/tmp/rackboot-$TEST_NAME.XXXXXX")"
trap lab_cleanup EXIT
trap 'exit 130' INT TERM
SIM=$LAB_DIR/bmcsim
USER=admin
PASSWORD="Rb-$$-pw" # distinctive: a leak is easy to grep for
DEAD=2001:db8:2::99 # on the management link, nothing answers there

lab_net_up || fail "network setup"
lab_bmc_net || fail "management link"
lab_pki || fail "PKI"
lab_write_configs || fail "configs do not pass --check-config"
cat >>"$LAB_DIR/agent.conf" <<EOF

[power]
poll_interval = $POLL
timeout = 2
retries = 1
EOF
ip netns exec "$LAB_NS_RACK" "$RB_AGENT" --config "$LAB_DIR/agent.conf" --check-config >/dev/null ||
    fail "agent.conf with [power] does not pass --check-config"

# ---- the BMC -----------------------------------------------------------------------
ipmisim_write "$SIM" "$LAB_BMC_ADDR" "$USER" "$PASSWORD"
ipmisim_start "$LAB_NS_BMC" "$SIM"
LAB_PIDS="$LAB_PIDS $IPMISIM_PID"
(umask 077 && printf '%s\n' "$PASSWORD" >"$LAB_DIR/bmc-password" &&
    printf 'not-%s\n' "$PASSWORD" >"$LAB_DIR/bmc-wrong")
ipmi() { ipmisim_tool "$LAB_NS_RACK" "$LAB_BMC_ADDR" "$USER" "$LAB_DIR/bmc-password" "$@"; }
ipmitool_says() { ipmi power status 2>/dev/null | grep -q "Chassis Power is $1"; }
lab_wait_for 20 ipmitool_says off || fail "ipmi_sim does not answer ipmitool within 20 s"
ok "BMC at [$LAB_BMC_ADDR]:623, reached from the agent's namespace"

lab_start_controller || fail "controller"
lab_start_agent || fail "agent"
lab_start_origin || fail "origin"
head -c 300000 /dev/urandom >"$LAB_DIR/origin/vmlinuz"
head -c 100000 /dev/urandom >"$LAB_DIR/origin/initrd.img"
head -c 100000 /dev/urandom >"$LAB_DIR/origin/squashfs.img"
lab_write_inputs "$LAB_DIR/inputs"

# ---- 1. the inventory --------------------------------------------------------------
# web17: the BMC; web18: the same BMC with a wrong password; web19: a BMC
# address where nothing answers.
BMC_URL="ipmi://[$LAB_BMC_ADDR]:623"
cp "$LAB_DIR/bmc-password" "$LAB_DIR/inputs/web17.pw"
cp "$LAB_DIR/bmc-wrong" "$LAB_DIR/inputs/web18.pw"
cp "$LAB_DIR/bmc-password" "$LAB_DIR/inputs/web19.pw"
cat >"$LAB_DIR/inputs/hosts.csv" <<EOF
name,mac,rack,address,prefix,gateway,hostname,bmc,bmc_user,bmc_password_file,firmware
$LAB_HOST,$LAB_HOST_MAC,$LAB_RACK,$LAB_HOST_ADDR,$LAB_RACK_PLEN,$LAB_AGENT_ADDR,$LAB_HOST,$BMC_URL,$USER,web17.pw,uefi
web18,52:54:00:12:34:58,$LAB_RACK,2001:db8:1::18,$LAB_RACK_PLEN,$LAB_AGENT_ADDR,web18,$BMC_URL,$USER,web18.pw,bios
web19,52:54:00:12:34:59,$LAB_RACK,2001:db8:1::19,$LAB_RACK_PLEN,$LAB_AGENT_ADDR,web19,ipmi://[$DEAD],$USER,web19.pw,
EOF
lab_register "$LAB_DIR/inputs" >"$LAB_DIR/register.out" 2>&1 ||
    { cat "$LAB_DIR/register.out"; fail "cannot import hosts/profiles"; }
lab_wait_for 20 grep -q "power: host=web17 bmc=ipmi://\[$LAB_BMC_ADDR\]:623 user=$USER" \
    "$LAB_DIR/agent.log" || fail "the agent did not learn web17's BMC"
lab_rb hosts list --json >"$LAB_DIR/hosts.json" || fail "hosts list"
python3 - "$LAB_DIR/hosts.json" <<'PY' || fail "hosts list --json does not show the BMCs as expected"
import json, sys
hosts = {h["name"]: h for h in json.load(open(sys.argv[1]))}
assert hosts["web17"]["bmc"].startswith("ipmi://["), hosts["web17"]
assert hosts["web17"]["bmc_password_set"] is True, hosts["web17"]
assert hosts["web17"]["firmware"] == "uefi", hosts["web17"]
assert hosts["web19"]["firmware"] in (None, ""), hosts["web19"]
PY
intents_mode=$(stat -c %a "$LAB_DIR/agent-state/intents.pb")
[ "$intents_mode" = 600 ] || fail "the agent keeps the BMC passwords in a file of mode $intents_mode"
ok "BMCs imported (CSV), the agent has them; intents.pb is 0600"

# ---- 2. status and on ----------------------------------------------------------------
# power_json ARGS...: `rackboot power ARGS --json` into $LAB_DIR/power.json;
# sets RC and ELAPSED (s).
power_json() {
    local t0
    t0=$(date +%s)
    lab_rb power "$@" --json >"$LAB_DIR/power.json" 2>"$LAB_DIR/power.err"
    RC=$?
    ELAPSED=$(($(date +%s) - t0))
    cat "$LAB_DIR/power.json" "$LAB_DIR/power.err" >>"$LAB_DIR/cli-outputs.txt"
    echo "   rackboot power $* -> rc=$RC ${ELAPSED}s: $(tr -d '\n' <"$LAB_DIR/power.json" | head -c 300)"
}
# power_field HOST FIELD: a field of HOST's row in power.json.
power_field() {
    python3 -c 'import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if r["host"] == sys.argv[2]]
v = rows[0].get(sys.argv[3]) if rows else None
print("" if v is None else str(v).lower() if isinstance(v, bool) else v)' \
        "$LAB_DIR/power.json" "$1" "$2"
}

power_json status "$LAB_HOST" --timeout 60
[ "$RC" = 0 ] || fail "power status failed: $(cat "$LAB_DIR/power.err")"
[ "$(power_field "$LAB_HOST" result)" = ok ] || fail "status: result $(power_field "$LAB_HOST" result)"
[ "$(power_field "$LAB_HOST" power_state)" = off ] || fail "status: not off"
ipmitool_says off || fail "ipmitool disagrees: not off"
power_json on "$LAB_HOST" --timeout 60
[ "$RC" = 0 ] && [ "$(power_field "$LAB_HOST" power_state)" = on ] || fail "power on did not say on"
ipmitool_says on || fail "ipmitool disagrees after power on"
grep -q "set power 1" "$SIM/state/chassis.log" || fail "the chassis was never powered on"
ok "power status and on agree with ipmitool"

# ---- 3. install --power cycle --------------------------------------------------------------
: >"$SIM/state/chassis.log"
lab_rb install "$LAB_HOST" --profile "$LAB_PROFILE" --power cycle >"$LAB_DIR/install.out" 2>&1 ||
    fail "install --power cycle: $(cat "$LAB_DIR/install.out")"
INSTALL_ID=$(lab_status_field "$LAB_HOST" install_id)
has_event() {
    lab_rb events "$LAB_HOST" --json 2>/dev/null |
        python3 -c 'import json, sys
sys.exit(0 if any(e["phase"] == sys.argv[1] and e.get("install_id") == sys.argv[2]
                  for e in json.load(sys.stdin)) else 1)' "$1" "$INSTALL_ID"
}
lab_wait_for 60 has_event power_cycle || fail "no power_cycle event of install $INSTALL_ID within 60 s"
has_event bootdev_set || fail "no bootdev_set event before the cycle"
lab_rb events "$LAB_HOST" --json >"$LAB_DIR/events.json"
python3 - "$LAB_DIR/events.json" "$INSTALL_ID" <<'PY' || fail "the install's power events are not bootdev_set (pxe efi) then power_cycle"
import json, sys
ev = [e for e in json.load(open(sys.argv[1])) if e.get("install_id") == sys.argv[2]]
phases = [e["phase"] for e in ev]
b, c = phases.index("bootdev_set"), phases.index("power_cycle")
assert b < c, phases
assert ev[b]["message"] == "pxe efi", ev[b]
PY
grep -q "set boot pxe" "$SIM/state/chassis.log" || fail "the BMC was not told to boot from PXE"
ipmi chassis bootparam get 5 >"$LAB_DIR/bootparam.txt" 2>&1 || fail "ipmitool bootparam get 5"
grep -q "Boot Device Selector : Force PXE" "$LAB_DIR/bootparam.txt" ||
    fail "ipmitool does not see Force PXE: $(cat "$LAB_DIR/bootparam.txt")"
lab_wait_for 15 ipmitool_says on || fail "web17 is not on after the cycle"
grep -q "set power 0" "$SIM/state/chassis.log" || fail "the cycle never powered off"
lab_state_is "$LAB_HOST" dispatched || lab_state_is "$LAB_HOST" requested ||
    fail "the install is $(lab_status_field "$LAB_HOST" state), want requested or dispatched"
ok "install --power cycle: bootdev pxe efi, then the cycle, as events of install $INSTALL_ID"

# ---- 4. the poll ---------------------------------------------------------------------------
ipmi power off >/dev/null 2>&1 || fail "ipmitool power off"
host_power() {
    lab_rb hosts list --json 2>/dev/null |
        python3 -c 'import json, sys
print([h for h in json.load(sys.stdin) if h["name"] == sys.argv[1]][0].get("power_state") or "")' "$1"
}
power_is() { [ "$(host_power "$1")" = "$2" ]; }
lab_wait_for $((POLL * 2 + 15)) power_is "$LAB_HOST" off ||
    fail "hosts list still says $(host_power "$LAB_HOST") $((POLL * 2 + 15)) s after the host went off"
lab_rb hosts list >"$LAB_DIR/hosts.txt" || fail "hosts list"
grep -E "^$LAB_HOST .* off( |$)" "$LAB_DIR/hosts.txt" >/dev/null ||
    fail "the POWER column does not say off: $(grep "^$LAB_HOST " "$LAB_DIR/hosts.txt")"
ok "poll: the host switched off behind rackboot's back shows off in hosts list"

# ---- 5. failures, and the agent serves throughout -------------------------------------------
serving() {
    ip netns exec "$LAB_NS_RACK" curl -gsS -m 2 -o /dev/null -w '%{http_code}' \
        "http://[$LAB_AGENT_ADDR]/healthz" | grep -qx 200
}
power_json status web18 --timeout 60
[ "$RC" != 0 ] || fail "a rejected password exited 0"
[ "$(power_field web18 result)" = failed ] || fail "wrong password: result $(power_field web18 result)"
power_field web18 message | grep -q "^password rejected by BMC" ||
    fail "wrong password: message '$(power_field web18 message)'"
ok "wrong password: failed, 'password rejected by BMC' (${ELAPSED} s)"
power_json status web19 --timeout 60
[ "$RC" != 0 ] && [ "$(power_field web19 result)" = failed ] || fail "an unreachable BMC did not fail"
power_field web19 message | grep -q "did not answer" ||
    fail "unreachable: message '$(power_field web19 message)'"
[ "$ELAPSED" -lt 30 ] || fail "an unreachable BMC took ${ELAPSED} s"
ok "unreachable BMC: failed, '$(power_field web19 message)' (${ELAPSED} s)"
# Slow: every chassis call sleeps 30 s, the agent's attempt timeout is 2 s.
# Earlier status commands to this BMC are in the log already: only lines
# after SEEN count.
echo 30 >"$SIM/slow"
SEEN=$(wc -l <"$LAB_DIR/agent.log")
lab_rb power status "$LAB_HOST" --json >"$LAB_DIR/power.json" 2>"$LAB_DIR/power.err" &
SLOW_CLI=$!
lab_wait_for 15 sh -c 'tail -n +"$(($1 + 1))" "$2" | grep -q "$3"' - "$SEEN" "$LAB_DIR/agent.log" \
    "power start target=ipmi://\[$LAB_BMC_ADDR\]:623 .* op=status" || fail "the slow status never started"
for _ in 1 2 3; do
    serving || fail "the agent does not answer HTTP while a BMC is slow"
    sleep 1
done
wait "$SLOW_CLI"
RC=$?
[ "$RC" != 0 ] && [ "$(power_field "$LAB_HOST" result)" = failed ] || fail "a slow BMC did not fail"
power_field "$LAB_HOST" message | grep -Eq "did not (answer|finish)" ||
    fail "slow BMC: message '$(power_field "$LAB_HOST" message)'"
rm -f "$SIM/slow"
serving || fail "the agent does not answer HTTP after the failures"
ok "slow BMC: failed '$(power_field "$LAB_HOST" message)'; the agent served HTTP meanwhile"

# ---- 6. secrets -------------------------------------------------------------------------
lab_rb hosts list --json >>"$LAB_DIR/cli-outputs.txt" 2>&1
lab_rb events "$LAB_HOST" --json >>"$LAB_DIR/cli-outputs.txt" 2>&1
for f in agent.log controller.log cli-outputs.txt register.out install.out; do
    if grep -qF -- "$PASSWORD" "$LAB_DIR/$f"; then
        fail "the BMC password appears in $f"
    fi
done
ok "no BMC password in the agent's or controller's log or any CLI output"
echo "whole test $(lab_rel "$(lab_ts)" "$T_START") s"
echo "PASS: $TEST_NAME"

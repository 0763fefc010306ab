#!/bin/bash
# The IPMI power driver against a real BMC implementation: OpenIPMI's ipmi_sim
# listening on an IPv6 address in a network namespace of our own, driven with
# rb-power (the power executor and the libfreeipmi driver) and checked with
# ipmitool, which shares no code with libfreeipmi.
#
#   power_ipmi.sh PATH/TO/rb-power
#
# ipmi_sim keeps the power state through a chassis_control script ($T/chassis.sh,
# state in files). It does not keep boot flags parameter 5 as sent: it turns
# the boot device into "set boot pxe|default" for the script and rebuilds the
# parameter from that alone, without the valid and EFI bits. So the device
# is checked with ipmitool, and the flags byte we send (valid, one-time, EFI)
# in the decoded request libfreeipmi prints with rb-power --trace.
#
# Needs root, `ip netns`, ipmi_sim and ipmitool; exits 77 (skip) otherwise.
# Every wait is bounded; the EXIT trap stops what we started (by pid) and
# deletes the namespace.
set -u

RB_POWER=${1:?usage: $0 PATH/TO/rb-power}
TEST_NAME=power_ipmi
# shellcheck source=tests/integration/ipmi_sim_lib.sh
. "$(dirname "$0")/ipmi_sim_lib.sh"
NS="rb-bmc-$$"
BMC=2001:db8:ff::17   # ipmi_sim listens here
DEAD=2001:db8:ff::99  # an address in the namespace where nothing listens
USER=admin
PASSWORD="Rb-$$-pw"   # distinctive, so a leak is easy to grep for
SIM_PID=""
NS_CREATED=0

skip() {
    echo "SKIP: $TEST_NAME: $*"
    exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root"
command -v ip >/dev/null || skip "no ip(8)"
command -v ipmi_sim >/dev/null || skip "ipmi_sim (package openipmi) not installed"
command -v ipmitool >/dev/null || skip "ipmitool not installed"
ip netns add "rb-probe-$$" 2>/dev/null || skip "ip netns unavailable"
ip netns del "rb-probe-$$"

T=$(mktemp -d "/tmp/rackboot-$TEST_NAME.XXXXXX")

cleanup() {
    if [ -n "$SIM_PID" ]; then
        kill "$SIM_PID" 2>/dev/null
    fi
    if [ "$NS_CREATED" = 1 ]; then
        # The chassis script may be sleeping (slow BMC): whatever still runs
        # in our namespace is ours.
        for pid in $(ip netns pids "$NS" 2>/dev/null); do
            kill "$pid" 2>/dev/null
        done
        sleep 0.2
        for pid in $(ip netns pids "$NS" 2>/dev/null); do
            kill -9 "$pid" 2>/dev/null
        done
        ip netns del "$NS" 2>/dev/null
    fi
    if [ "${KEEP_TMP:-0}" != 1 ]; then
        rm -rf "$T"
    fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $TEST_NAME: $*"
    for f in "$T"/sim.log "$T"/state/chassis.log "$T"/last.err; do
        if [ -s "$f" ]; then
            echo "---- $f (last 30 lines)"
            tail -n 30 "$f"
        fi
    done
    exit 1
}

ok() {
    echo "ok: $*"
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# ---- the BMC ---------------------------------------------------------------

printf '%s\n' "$PASSWORD" >"$T/password"
printf 'not-%s\n' "$PASSWORD" >"$T/wrong"
chmod 600 "$T/password" "$T/wrong"

ipmisim_write "$T" "$BMC" "$USER" "$PASSWORD"

ip netns add "$NS" || fail "cannot create namespace $NS"
NS_CREATED=1
ip -n "$NS" link set lo up
ip -n "$NS" addr add "$BMC/128" dev lo nodad
ip -n "$NS" addr add "$DEAD/128" dev lo nodad

ipmisim_start "$NS" "$T"
SIM_PID=$IPMISIM_PID

# ipmitool as the independent judge: one try of at most 1 s per call.
ipmi() {
    ipmisim_tool "$NS" "$BMC" "$USER" "$T/password" "$@"
}

# wait_for SECONDS COMMAND...: polls until the command succeeds.
wait_for() {
    local limit=$(($1 * 10)) i=0
    shift
    while ! "$@" >/dev/null 2>&1; do
        kill -0 "$SIM_PID" 2>/dev/null || fail "ipmi_sim exited"
        i=$((i + 1))
        [ "$i" -ge "$limit" ] && return 1
        sleep 0.1
    done
    return 0
}

ipmitool_says() {
    ipmi power status 2>/dev/null | grep -q "Chassis Power is $1"
}

# The first request right after start may go unanswered: wait until the BMC
# answers, not a fixed time.
wait_for 20 ipmitool_says off || fail "ipmi_sim did not answer ipmitool within 20 s"
ok "ipmi_sim answers on [$BMC]:623"

# ---- rb-power ----------------------------------------------------------------

URL="ipmi://[$BMC]:623"
OUT=""
RC=0
ELAPSED=0

# power URL PASSWORD_FILE OP [ARGS]: runs rb-power; sets OUT, RC, ELAPSED (ms).
power() {
    local url=$1 pwfile=$2 start
    shift 2
    start=$(now_ms)
    OUT=$(ip netns exec "$NS" "$RB_POWER" "$url" "$USER" "$pwfile" "$@" 2>"$T/last.err")
    RC=$?
    ELAPSED=$(($(now_ms) - start))
    echo "   rb-power $* -> rc=$RC ${ELAPSED}ms: $OUT"
    if grep -qF -- "$PASSWORD" "$T/last.err" || grep -qF -- "$PASSWORD" <<<"$OUT"; then
        fail "the password appeared in rb-power's output"
    fi
}

field() {
    sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$OUT"
}

expect() {
    local want_rc=$1 want_state=$2
    [ "$RC" = "$want_rc" ] || fail "rb-power exited $RC, want $want_rc: $OUT"
    [ "$(field state)" = "$want_state" ] || fail "state $(field state), want $want_state: $OUT"
}

# status (off), on, and ipmitool agrees.
power "$URL" "$T/password" status
expect 0 off
[ "$(field err)" = 0 ] || fail "err=$(field err)"
ipmitool_says off || fail "ipmitool disagrees: not off"
power "$URL" "$T/password" on
expect 0 on
ipmitool_says on || fail "ipmitool disagrees after on"
power "ipmi://[$BMC]" "$T/password" status # the default port is 623
expect 0 on
ok "status and on, as ipmitool sees them"

# One-time boot from PXE, EFI. The decoded Set System Boot Options request
# (parameter 5) must carry: boot flags valid, next boot only, EFI, Force PXE.
power "$URL" "$T/password" status --bootdev pxe --efi --trace
expect 0 on
[ "$(field bootdev_set)" = 1 ] || fail "bootdev_set=0 for pxe"
boot_request() {
    awk '/Set System Boot Options Request/ {on = 1; next}
         /Response/ {on = 0}
         on' "$T/last.err"
}
boot_request >"$T/bootreq.txt"
[ -s "$T/bootreq.txt" ] || fail "no Set System Boot Options request in the trace"
has_field() { grep -Eq "\\[ +$2h\\] = $1\\[" "$T/bootreq.txt" || fail "request: $1 is not $2h"; }
has_field parameter_selector 5
has_field boot_flags_valid 1
has_field boot_flags_persistent 0
has_field bios_boot_type 1
has_field boot_device 1
ipmi chassis bootparam get 5 >"$T/bootparam.txt" 2>&1 || fail "ipmitool bootparam get 5 failed"
grep -q "Boot Device Selector : Force PXE" "$T/bootparam.txt" ||
    fail "ipmitool does not see Force PXE: $(cat "$T/bootparam.txt")"
ok "bootdev pxe --efi: ipmitool sees Force PXE; we sent valid, one-time, EFI"

# Boot from disk, legacy (no EFI bit).
power "$URL" "$T/password" status --bootdev disk --trace
expect 0 on
[ "$(field bootdev_set)" = 1 ] || fail "bootdev_set=0 for disk"
boot_request >"$T/bootreq.txt"
has_field boot_flags_valid 1
has_field boot_flags_persistent 0
has_field bios_boot_type 0
has_field boot_device 2
ipmi chassis bootparam get 5 >"$T/bootparam.txt" 2>&1 || fail "ipmitool bootparam get 5 failed"
grep -q "Boot Device Selector : Force Boot from default Hard-Drive" "$T/bootparam.txt" ||
    fail "ipmitool does not see the hard drive: $(cat "$T/bootparam.txt")"
ok "bootdev disk without EFI"

# cycle of a host that is on: ipmi_sim powers off, then on again after a
# second of its own; the chassis sees both.
: >"$T/state/chassis.log"
power "$URL" "$T/password" cycle
[ "$RC" = 0 ] || fail "cycle failed: $OUT"
wait_for 15 ipmitool_says on || fail "the host did not come back on after cycle"
grep -q "set power 0" "$T/state/chassis.log" || fail "cycle never powered off"
grep -q "set power 1" "$T/state/chassis.log" || fail "cycle never powered on"
ok "cycle of an on host: off, then on"

# off, then cycle of the off host powers it on (ours, not the BMC's doing).
power "$URL" "$T/password" off
expect 0 off
ipmitool_says off || fail "ipmitool disagrees after off"
power "$URL" "$T/password" cycle
expect 0 on
grep -q "powered on instead" <<<"$OUT" || fail "cycle of an off host did not say so: $OUT"
ipmitool_says on || fail "ipmitool disagrees after cycle of an off host"
ok "cycle of an off host powers it on"

# soft: an ACPI shutdown request (our chassis script's OS obeys at once).
power "$URL" "$T/password" soft
[ "$RC" = 0 ] || fail "soft failed: $OUT"
wait_for 15 ipmitool_says off || fail "the host did not go off after soft"
ok "soft off"

# Wrong password: a clear error, exit 1, one attempt, quickly.
power "$URL" "$T/wrong" on --timeout-ms 5000
expect 1 unknown
[ "$(field err)" = -13 ] || fail "wrong password: err=$(field err), want -13 (EACCES)"
[ "$(field attempts)" = 1 ] || fail "a rejected password was retried: $OUT"
grep -q "password rejected by BMC" <<<"$OUT" || fail "no clear message: $OUT"
[ "$ELAPSED" -lt 4000 ] || fail "a rejected password took ${ELAPSED} ms"
ipmitool_says off || fail "the host changed state after a rejected password"
ok "wrong password: rejected at once, not retried"

# Unreachable BMC: nothing listens there; each attempt times out and the
# executor tries 1 + 2 times. 1 s attempts: at least 3 s, and bounded.
power "ipmi://[$DEAD]:623" "$T/password" status --timeout-ms 1000 --retries 2 --backoff-ms 100
expect 1 unknown
[ "$(field err)" = -110 ] || fail "unreachable: err=$(field err), want -110 (ETIMEDOUT)"
[ "$(field attempts)" = 3 ] || fail "unreachable: not retried twice: $OUT"
grep -q "did not answer within 1 s" <<<"$OUT" || fail "no clear message: $OUT"
[ "$ELAPSED" -ge 3000 ] || fail "three 1 s attempts took only ${ELAPSED} ms"
[ "$ELAPSED" -lt 20000 ] || fail "unreachable BMC took ${ELAPSED} ms"
ok "unreachable BMC: 3 attempts, ${ELAPSED} ms"

# Slow BMC: every chassis call takes 20 s, the attempt timeout is 1 s. Last,
# because ipmi_sim stays busy with the sleeping script afterwards.
echo 20 >"$T/slow"
power "$URL" "$T/password" status --timeout-ms 1000 --retries 1 --backoff-ms 100
expect 1 unknown
[ "$(field err)" = -110 ] || fail "slow BMC: err=$(field err), want -110 (ETIMEDOUT)"
[ "$(field attempts)" = 2 ] || fail "slow BMC: want 2 attempts: $OUT"
[ "$ELAPSED" -lt 12000 ] || fail "slow BMC: took ${ELAPSED} ms, the timeout is not honoured"
rm -f "$T/slow"
ok "slow BMC: timed out after ${ELAPSED} ms"

echo "PASS: $TEST_NAME"
exit 0

#!/bin/bash
# The lab's virtual BMC (deploy/lab/bmc.sh): OpenIPMI's ipmi_sim powering
# the lab's QEMU host, driven and judged with ipmitool only, from the
# agent's namespace over the management link, as rackboot's agent will.
#
#   bmc_vm.sh [FIRMWARE]     bios (default), uefi or uefi-pxe
#
#   1. the VM is off at the start: no QEMU process, `power status` off
#   2. `power on`: a QEMU process in the rack's namespace, status on, and
#      the firmware runs (its console shows SeaBIOS/OVMF and iPXE); the
#      VM's KCS interface connects to ipmi_sim
#   3. `chassis bootdev pxe`: `chassis bootparam get 5` says Force PXE
#   4. `power reset`: the same process boots again (the console shows the
#      firmware again), status on
#   5. `power off`: the process is gone, status off
#   6. `power on` again: a new process, its boot shows boot device pxe and
#      the firmware; `power cycle`: off and on again, another process
#   7. `power off`
# Prints how long the firmware took from `power on` to its first output.
#
# Needs root, ip netns, /dev/net/tun, radvd, QEMU with ipmi-bmc-extern and
# the firmware, ipmi_sim and ipmitool; exits 77 (skip) only when those are
# absent. Every wait is bounded; the EXIT trap (lab_cleanup) stops what was
# started and deletes the namespaces. KEEP_TMP=1 keeps the work directory.
set -uo pipefail

FW=${1:-bios}
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME="bmc_vm.$FW"
# shellcheck disable=SC2034 # read by deploy/lab/lib.sh
LAB_ID="bmc$$"
# shellcheck source=deploy/lab/lib.sh
. "$HERE/../../deploy/lab/lib.sh"

# Under TCG on two busy cores the firmware may take long to print.
FW_LIMIT=${BMC_VM_FW_LIMIT:-180}

case "$FW" in
bios) FW_FIRST='SeaBIOS \(version' FW_NET='iPXE' ;;
uefi) FW_FIRST='BdsDxe|UEFI|EFI' FW_NET='iPXE' ;;
uefi-pxe) FW_FIRST='BdsDxe|UEFI|EFI' FW_NET='Start PXE|PXE|iPXE' ;;
*) echo "usage: bmc_vm.sh [bios|uefi|uefi-pxe]" >&2; exit 2 ;;
esac

missing=$(lab_missing net qemu "$FW" bmc)
if [ -n "$missing" ]; then
    echo "SKIP: $TEST_NAME: $(echo "$missing" | paste -sd ';' | sed 's/;/; /g')"
    exit 77
fi

fail() {
    echo "FAIL: $TEST_NAME: $*"
    lab_dump_logs
    if [ -n "$LAB_BMC_DIR" ] && [ -s "$LAB_BMC_DIR/ipmi_sim.log" ]; then
        echo "---- $LAB_BMC_DIR/ipmi_sim.log"
        tail -n 20 "$LAB_BMC_DIR/ipmi_sim.log"
    fi
    exit 1
}

ok() { lab_say "ok: $*"; }

T_START=$(lab_ts)
lab_init "$(mktemp -d "/tmp/rackboot-$TEST_NAME.XXXXXX")"
trap lab_cleanup EXIT
trap 'exit 130' INT TERM

# The QEMU processes in the rack's namespace (the VM's side).
qemu_pids() {
    local p
    for p in $(ip netns pids "$LAB_NS_RACK" 2>/dev/null); do
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q '^qemu-system' && echo "$p"
    done
}

vm_pid() { cat "$LAB_DIR/qemu.pid" 2>/dev/null; }

ipmi() {
    lab_bmc_ipmitool "$@" >"$LAB_DIR/ipmitool.out" 2>&1
    local rc=$?
    sed 's/^/    ipmitool| /' "$LAB_DIR/ipmitool.out"
    return $rc
}

# The VM's KCS interface (QEMU's ipmi-bmc-extern) has a connection to
# ipmi_sim's VM serial port.
kcs_connected() {
    ip netns exec "$LAB_NS_BMC" ss -Htn state established "( sport = :$LAB_BMC_KCS_PORT )" |
        grep -q .
}

# expect_on BOOT: on, one QEMU process, it is the VM's, in the rack's namespace.
expect_on() {
    local n=$1 pids
    lab_bmc_power_is on || fail "power status is not on (boot $n)"
    pids=$(qemu_pids)
    [ "$(echo "$pids" | grep -c .)" = 1 ] || fail "want one QEMU process in $LAB_NS_RACK, have: ${pids:-none}"
    [ "$pids" = "$(vm_pid)" ] || fail "the QEMU process $pids is not the VM's ($(vm_pid))"
    [ "$(lab_bmc_boots)" = "$n" ] || fail "the BMC counts $(lab_bmc_boots) boots, want $n"
}

expect_off() {
    lab_bmc_power_is off || fail "power status is not off"
    [ -z "$(qemu_pids)" ] || fail "QEMU still runs: $(qemu_pids)"
    ! lab_vm_running || fail "lab_vm_running says the VM runs"
}

# wait_firmware BOOT: the firmware's output on boot BOOT's console; prints
# the seconds from T to the first line and to the network boot.
wait_firmware() {
    local n=$1 t=$2 t1 t2
    lab_bmc_wait_console "$n" "$FW_FIRST" "$FW_LIMIT" ||
        fail "no firmware output ($FW_FIRST) on the console within $FW_LIMIT s of boot $n"
    t1=$(lab_ts)
    lab_bmc_wait_console "$n" "$FW_NET" "$FW_LIMIT" ||
        fail "no network boot ($FW_NET) on the console within $FW_LIMIT s of boot $n"
    t2=$(lab_ts)
    echo "    boot $n: firmware output after $(lab_rel "$t1" "$t") s, network boot after $(lab_rel "$t2" "$t") s"
}

# ---- 1. the BMC, the VM off -------------------------------------------------
lab_say "network: rack namespace $LAB_NS_RACK, BMC namespace $LAB_NS_BMC ($FW firmware)"
lab_net_up || fail "network setup"
lab_bmc_start "$FW" || fail "the BMC did not start"
[ -z "$(qemu_pids)" ] || fail "a QEMU process runs before any power-on"
[ ! -e "$LAB_DIR/qemu.pid" ] || fail "a QEMU pid file exists before any power-on"
ipmi power status || fail "ipmitool power status failed"
grep -qx "Chassis Power is off" "$LAB_DIR/ipmitool.out" || fail "not off at the start"
ok "BMC $LAB_BMC_URL answers ipmitool from $LAB_NS_RACK; the VM is off, no QEMU process"

# ---- 2. power on --------------------------------------------------------------
T_ON=$(lab_ts)
ipmi power on || fail "ipmitool power on failed"
T_ON_DONE=$(lab_ts)
expect_on 1
PID1=$(vm_pid)
[ "$(ip netns identify "$PID1")" = "$LAB_NS_RACK" ] || fail "QEMU does not run in $LAB_NS_RACK"
echo "    power on answered after $(lab_rel "$T_ON_DONE" "$T_ON") s, QEMU pid $PID1"
wait_firmware 1 "$T_ON"
lab_wait_for 60 kcs_connected || fail "the VM's KCS interface did not connect to ipmi_sim"
ok "power on: QEMU $PID1 runs the firmware, status on, its KCS interface is connected"

# ---- 3. boot device -------------------------------------------------------------
ipmi chassis bootdev pxe || fail "ipmitool chassis bootdev pxe failed"
# (ipmitool exits 0 even when the BMC refuses a boot parameter)
! grep -qi "failed\|error" "$LAB_DIR/ipmitool.out" || fail "bootdev pxe refused"
ipmi chassis bootparam get 5 || fail "ipmitool chassis bootparam get 5 failed"
grep -q "Boot Device Selector : Force PXE" "$LAB_DIR/ipmitool.out" || fail "bootparam 5 does not say Force PXE"
[ "$(cat "$LAB_BMC_DIR/boot")" = pxe ] || fail "the chassis did not record pxe"
ok "chassis bootdev pxe: bootparam 5 says Force PXE"

# ---- 4. reset -----------------------------------------------------------------------
T_RESET=$(lab_ts)
ipmi power reset || fail "ipmitool power reset failed"
# (the BMC answers at once and resets the VM right after)
lab_wait_for 30 sh -c "[ \"\$(cat '$LAB_BMC_DIR/boots')\" = 2 ]" || fail "the VM did not reset"
expect_on 2
[ "$(vm_pid)" = "$PID1" ] || fail "reset replaced the QEMU process ($PID1 -> $(vm_pid))"
wait_firmware 2 "$T_RESET"
lab_bmc_power_is on || fail "not on after the reset's boot"
ok "power reset: the same QEMU process boots again"

# ---- 5. power off ---------------------------------------------------------------------
ipmi power off || fail "ipmitool power off failed"
expect_off
kill -0 "$PID1" 2>/dev/null && fail "QEMU $PID1 still exists"
ok "power off: QEMU $PID1 gone, status off"

# ---- 6. power on again, power cycle -----------------------------------------------------
T_ON2=$(lab_ts)
ipmi power on || fail "ipmitool power on (again) failed"
expect_on 3
PID3=$(vm_pid)
[ "$PID3" != "$PID1" ] || fail "the same pid after off and on"
grep -aq "rackboot-lab-bmc: power on, boot 3, boot device pxe" "$LAB_BMC_DIR/serial.log" ||
    fail "boot 3 does not show boot device pxe"
wait_firmware 3 "$T_ON2"
ok "power on again: QEMU $PID3, boot device pxe, firmware runs"

T_CYCLE=$(lab_ts)
ipmi power cycle || fail "ipmitool power cycle failed"
# ipmi_sim: off now, on once the chassis reports off (it looks every second).
lab_wait_for 30 sh -c "[ \"\$(cat '$LAB_BMC_DIR/boots')\" = 4 ]" || fail "power cycle did not power on again"
expect_on 4
PID4=$(vm_pid)
[ "$PID4" != "$PID3" ] || fail "power cycle kept QEMU $PID3"
kill -0 "$PID3" 2>/dev/null && fail "QEMU $PID3 survived the power cycle"
wait_firmware 4 "$T_CYCLE"
ok "power cycle: QEMU $PID3 -> $PID4, firmware runs"

# ---- 7. off -----------------------------------------------------------------------------
ipmi power off || fail "ipmitool power off failed"
expect_off
ok "power off"

echo "times ($FW): whole test $(lab_rel "$(lab_ts)" "$T_START") s"
echo "PASS: $TEST_NAME"

# shellcheck shell=bash
# The lab's virtual BMC: OpenIPMI's ipmi_sim as web17's BMC, powering the
# lab's QEMU host on and off. Sourced by lib.sh (needs its names and
# helpers); bash.
#
#   netns $LAB_NS_RACK (the agent's)           netns $LAB_NS_BMC (the BMC's)
#     mgmt0 2001:db8:2::1/64  <--- veth --->     eth0 2001:db8:2::17/64
#                                                ipmi_sim: IPMI 2.0 lanplus
#                                                  [2001:db8:2::17]:623
#     QEMU (tap0 on br0) ---- KCS wire ------>     VM serial interface
#       ipmi-bmc-extern + isa-ipmi-kcs             [2001:db8:2::17]:9002
#
# The management network is a link of its own between the agent's namespace
# and the BMC's, as in a rack where the agent sits on the BMCs' switch: the
# agent (and ipmitool run there) reaches the BMC at $LAB_BMC_ADDR; nothing
# else does. The host's side of the BMC (its KCS interface) is QEMU's
# ipmi-bmc-extern device, a TCP connection to ipmi_sim's VM serial port; it
# runs over the same veth because QEMU lives in the rack's namespace (its
# tap is there) and ipmi_sim in the BMC's. On a real server that wire is
# inside the box.
#
# Who does what (ipmi_sim 2.0.33, checked in its source and by hand):
# - ipmi_sim answers IPMI over LAN; every chassis command goes to the
#   chassis_control program, deploy/lab/bmc-chassis.sh, which owns the VM:
#   power on starts $LAB_BMC_DIR/vm.sh (the lab's QEMU command line for
#   the firmware, lab_qemu_cmd, plus the BMC's devices), power off kills
#   QEMU (a hard power-off), status is "a QEMU process with that pid
#   exists", reset is a QMP system_reset of the running VM (same process),
#   soft is an ACPI power button (QMP system_powerdown: firmware ignores
#   it, as on hardware), cycle is ipmi_sim's own off, wait until off, on.
# - Why not ipmi_sim's `startcmd`: with a chassis_control program set,
#   ipmi_sim sends power, reset and status to the program and never runs
#   startcmd. Without one, startcmd works (status is "the child process
#   exists", power off asks QEMU over the VM serial link and QEMU 7.2 quits
#   at once, so poweroff_wait/kill_wait only matter when QEMU is not
#   connected or hangs), but then Set/Get System Boot Options parameter 5
#   fail with "Invalid data field": no `chassis bootdev pxe`, which the
#   rackboot agent sends before a power cycle. And its reset, sent to QEMU
#   over the VM link, is a guest reset request, which -no-reboot (the lab's
#   command line) turns into QEMU exiting: power off.
# - The KCS device still matters: the guest sees a BMC (SMBIOS type 38,
#   KCS at 0xca2) that answers in-band IPMI from ipmi_sim, the same BMC.
#
# Files in $LAB_BMC_DIR ($LAB_DIR/bmc): lan.conf, bmc.emu (ipmi_sim's
# configuration), password (0600, one line), vm.sh (the power-on command),
# chassis.env (settings of bmc-chassis.sh), chassis.log (every chassis call
# with its answer), boot (the boot device last set: none, pxe, default,
# cdrom, bios), boots (power-ons and resets so far), powered_on_at (epoch
# of the last power-on or reset), serial.log (the VM's console, every boot,
# each line stamped like tslines.py; every power-on, reset, power-off by
# the BMC and exit of QEMU (the guest powering off too) adds a line
# "EPOCH rackboot-lab-bmc: ..."), ipmi_sim.log, qmp.sock, state/.
# QEMU's pid is in $LAB_DIR/qemu.pid as with lab_boot_vm, so lab_vm_running,
# lab_vm_wait_exit and lab_vm_stop (lab_cleanup) see the BMC's VM too.
#
# Contract (call after lab_init and lab_net_up; lab_cleanup removes it all):
#   lab_bmc_start FIRMWARE   BMC namespace, management link, ipmi_sim; the
#                            VM is off. Returns once ipmi_sim answers
#                            ipmitool from the agent's namespace (bounded).
#                            Sets LAB_BMC_URL, LAB_BMC_USER, LAB_BMC_PASSWORD,
#                            LAB_BMC_FIRMWARE (the host's BMC in rackboot's inventory;
#                            lab_write_inputs puts them in hosts.csv).
#   lab_bmc_ipmitool ARGS... ipmitool -I lanplus -C 3 against the BMC, run in
#                            the agent's namespace (password from the file).
#   lab_bmc_power_is on|off  `power status` says so.
#   lab_bmc_boots            number of power-ons and resets so far.
#   lab_bmc_console_has N PATTERN
#                            boot N's console output matches PATTERN (grep -E).
#   lab_bmc_wait_console N PATTERN SECONDS
#                            waits (bounded) until it does, or the VM is off.
#   lab_bmc_stop             VM off (by the chassis program, not IPMI),
#                            ipmi_sim stopped; the namespace stays until
#                            lab_cleanup.
# FIRMWARE as in lab_qemu_cmd: bios, uefi, uefi-pxe.

LAB_NS_BMC=${LAB_NS_BMC:-rb-bmc-$LAB_ID}
LAB_MGMT_AGENT=2001:db8:2::1      # mgmt0, the agent's side of the management link
LAB_BMC_ADDR=${LAB_BMC_ADDR:-2001:db8:2::17}
LAB_BMC_PORT=623
LAB_BMC_KCS_PORT=9002             # ipmi_sim's VM serial interface (QEMU connects)
LAB_BMC_USER=${LAB_BMC_USER:-admin}
LAB_BMC_PASSWORD=""
LAB_BMC_URL=""
LAB_BMC_FIRMWARE=""               # the host's firmware for rackboot: bios or uefi
LAB_BMC_DIR=""
LAB_BMC_PID=""

# lab_bmc_missing: one line per missing facility (empty: all there).
lab_bmc_missing() {
    command -v ipmi_sim >/dev/null || echo "ipmi_sim not installed (package openipmi)"
    command -v ipmitool >/dev/null || echo "ipmitool not installed"
    if command -v qemu-system-x86_64 >/dev/null &&
        ! qemu-system-x86_64 -device help 2>/dev/null | grep -q '"ipmi-bmc-extern"'; then
        echo "qemu-system-x86_64 has no ipmi-bmc-extern device"
    fi
}

lab_bmc_net() {
    lab_new_ns "$LAB_NS_BMC" || return 1
    ip -n "$LAB_NS_RACK" link add mgmt0 type veth peer name eth0 netns "$LAB_NS_BMC" || return 1
    ip -n "$LAB_NS_RACK" addr add "$LAB_MGMT_AGENT/64" dev mgmt0 nodad
    ip -n "$LAB_NS_BMC" addr add "$LAB_BMC_ADDR/64" dev eth0 nodad
    ip -n "$LAB_NS_RACK" link set mgmt0 up
    ip -n "$LAB_NS_BMC" link set eth0 up
    lab_wait_for 5 ip netns exec "$LAB_NS_RACK" ping -6 -c1 -W1 "$LAB_BMC_ADDR" ||
        { echo "lab: the management link does not pass packets" >&2; return 1; }
}

lab_bmc_write_config() {
    local fw=$1 d=$LAB_BMC_DIR q
    mkdir -p "$d/state"
    # IPMI 2.0 passwords are at most 20 bytes; a fresh one per lab.
    LAB_BMC_PASSWORD="rb$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    (umask 077 && printf '%s\n' "$LAB_BMC_PASSWORD" >"$d/password")
    # shellcheck disable=SC2034 # for the callers (the host's BMC in the inventory)
    LAB_BMC_URL="ipmi://[$LAB_BMC_ADDR]:$LAB_BMC_PORT"
    case "$fw" in
    bios) LAB_BMC_FIRMWARE=bios ;;
    *) LAB_BMC_FIRMWARE=uefi ;;
    esac

    # Cipher suite 3 (what ipmitool -C 3 and libfreeipmi use) needs the
    # lanplus authentication; user 2 may take the administrator privilege.
    # No anonymous user 1.
    cat >"$d/lan.conf" <<EOF
# ipmi_sim configuration of the lab's BMC (written by lab_bmc_start; ipmi_lan(5))
name "rackboot-lab-bmc"
set_working_mc 0x20
  startlan 1
    addr $LAB_BMC_ADDR $LAB_BMC_PORT
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  # The host's KCS interface: QEMU's ipmi-bmc-extern connects here.
  serial kcs $LAB_BMC_ADDR $LAB_BMC_KCS_PORT codec VM
  # Power, reset, status and the boot device: the VM's "hardware".
  chassis_control "$LAB_LIB_DIR/bmc-chassis.sh $d"
  user 2 true  "$LAB_BMC_USER" "$LAB_BMC_PASSWORD" admin 10 none md2 md5 straight
EOF
    chmod 600 "$d/lan.conf"
    cat >"$d/bmc.emu" <<'EOF'
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
EOF

    # The power-on command: the lab's command line for the firmware, plus
    # the KCS interface wired to ipmi_sim and a QMP socket for reset and
    # the power button. Its console goes to serial.log, stamped.
    lab_qemu_cmd "$fw" || return
    # shellcheck disable=SC2054 # commas are QEMU option syntax
    q=("${LAB_QEMU_CMD[@]}"
        -chardev "socket,id=ipmi0,host=$LAB_BMC_ADDR,port=$LAB_BMC_KCS_PORT,reconnect=10"
        -device ipmi-bmc-extern,id=bmc0,chardev=ipmi0
        -device isa-ipmi-kcs,bmc=bmc0
        -qmp "unix:$d/qmp.sock,server=on,wait=off")
    echo "${q[*]}" >"$LAB_DIR/qemu.cmdline"
    # shellcheck disable=SC2016 # vm.sh's own expansions, quoted for it
    {
        echo '#!/bin/bash'
        echo "# The power-on command of the lab's BMC for firmware $fw (written by lab_bmc_start)."
        echo '# Run by bmc-chassis.sh; stays QEMU'"'"'s parent until it exits. ipmi_sim'"'"'s sockets'
        echo '# are not for QEMU to keep.'
        echo 'for f in /proc/$$/fd/*; do fd=${f##*/}; case $fd in 0 | 1 | 2 | 255) ;; *) eval "exec $fd>&-" ;; esac; done 2>/dev/null'
        printf 'exec > >(exec python3 -u %q >>%q) 2>&1 </dev/null\n' "$LAB_LIB_DIR/tslines.py" "$d/serial.log"
        printf 'ip netns exec %q' "$LAB_NS_RACK"
        printf ' %q' "${q[@]}"
        echo
        printf 'printf '"'"'%%s rackboot-lab-bmc: QEMU exited, status %%s\\n'"'"' "$(date +%%s.%%3N)" "$?" >>%q\n' "$d/serial.log"
    } >"$d/vm.sh"
    chmod 755 "$d/vm.sh"
    cat >"$d/chassis.env" <<EOF
# settings of deploy/lab/bmc-chassis.sh (written by lab_bmc_start)
FIRMWARE=$(printf %q "$fw")
PIDFILE=$(printf %q "$LAB_DIR/qemu.pid")
EOF
    echo none >"$d/boot"
    echo 0 >"$d/boots"
    : >"$d/serial.log"
    : >"$d/chassis.log"
}

lab_bmc_start() {
    local fw=$1
    [ -n "$LAB_DIR" ] || { echo "lab: lab_init first" >&2; return 1; }
    LAB_BMC_DIR=$LAB_DIR/bmc
    mkdir -p "$LAB_BMC_DIR"
    lab_bmc_write_config "$fw" || return 1
    lab_bmc_net || return 1
    lab_spawn bmc/ipmi_sim "$LAB_NS_BMC" ipmi_sim -c "$LAB_BMC_DIR/lan.conf" -f "$LAB_BMC_DIR/bmc.emu" \
        -s "$LAB_BMC_DIR/state" -n
    LAB_BMC_PID=$LAB_SPAWNED
    # Its first request after start may go unanswered: wait for an answer
    # (short tries, 30 s in all).
    local deadline=$(($(date +%s) + 30))
    until LAB_BMC_IPMI_TRIES="-N 1 -R 1" lab_bmc_power_is off; do
        if [ "$(date +%s)" -ge "$deadline" ] || ! kill -0 "$LAB_BMC_PID" 2>/dev/null; then
            echo "lab: ipmi_sim does not answer at [$LAB_BMC_ADDR]:$LAB_BMC_PORT (see $LAB_BMC_DIR/ipmi_sim.log)" >&2
            return 1
        fi
        sleep 0.2
    done
}

lab_bmc_stop() {
    [ -n "$LAB_BMC_DIR" ] || return 0
    ip netns exec "$LAB_NS_BMC" "$LAB_LIB_DIR/bmc-chassis.sh" "$LAB_BMC_DIR" set power 0 >/dev/null 2>&1
    lab_stop_pid "$LAB_BMC_PID" 5
    LAB_BMC_PID=""
}

# (LAB_BMC_IPMI_TRIES: ipmitool's seconds per try and tries. ipmi_sim answers
# nothing while the chassis program runs: a power-on waits for QEMU to
# start, a second or a few under load.)
lab_bmc_ipmitool() {
    # shellcheck disable=SC2086 # two options and their values
    ip netns exec "$LAB_NS_RACK" ipmitool -I lanplus -C 3 -H "$LAB_BMC_ADDR" -p "$LAB_BMC_PORT" \
        -U "$LAB_BMC_USER" -f "$LAB_BMC_DIR/password" ${LAB_BMC_IPMI_TRIES:--N 3 -R 4} "$@"
}

lab_bmc_power_is() {
    lab_bmc_ipmitool power status 2>/dev/null | grep -qx "Chassis Power is $1"
}

lab_bmc_boots() {
    cat "$LAB_BMC_DIR/boots" 2>/dev/null || echo 0
}

# The console lines of boot N: after its "boot N" line, before the next
# power-on, reset or power-off line.
lab_bmc_console() {
    awk -v n="$1" '
        $2 == "rackboot-lab-bmc:" { on = ($0 ~ (" boot " n "[ ,]")); next }
        on' "$LAB_BMC_DIR/serial.log"
}

lab_bmc_console_has() {
    lab_bmc_console "$1" | grep -aEq -- "$2"
}

lab_bmc_wait_console() {
    local n=$1 pat=$2 limit=$(($3 * 5)) i=0
    while ! lab_bmc_console_has "$n" "$pat"; do
        lab_vm_running || { lab_bmc_console_has "$n" "$pat"; return; }
        i=$((i + 1))
        [ "$i" -ge "$limit" ] && return 1
        sleep 0.2
    done
}

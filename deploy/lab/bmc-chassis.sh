#!/bin/bash
# The chassis of the lab's virtual BMC: ipmi_sim's chassis_control program
# (deploy/lab/bmc.sh writes the configuration). ipmi_sim runs it, one
# parameter per call, and waits for it (it answers no IPMI meanwhile):
#
#   bmc-chassis.sh DIR get power|boot    -> prints "power:0|1" or "boot:DEV"
#   bmc-chassis.sh DIR set power 0|1     hard power off (QEMU killed) / on
#                                        (DIR/vm.sh started), returns once done
#   bmc-chassis.sh DIR set reset 1       the running VM resets (QMP), same process;
#                                        answered at once, done in the background
#   bmc-chassis.sh DIR set shutdown 1    ACPI power button (QMP system_powerdown)
#   bmc-chassis.sh DIR set boot DEV      DEV: none pxe default cdrom bios; kept
#                                        in DIR/boot, shown on the next power-on
#
# Anything else fails (exit 1, a message on stdout, which ipmi_sim logs).
# The power state is the truth of the process: on while a QEMU process with
# the pid in $PIDFILE runs (not a zombie). Every call is logged in
# DIR/chassis.log; power-on, reset and power-off add a line to the console
# log DIR/serial.log. Every wait is bounded.
set -u

d=${1:?usage: bmc-chassis.sh DIR get|set PARAM [VALUE]...}
op=${2:-}
shift 2 2>/dev/null || true
# shellcheck source=/dev/null
. "$d/chassis.env" || exit 1

log() {
    printf '%s %s\n' "$(date +%H:%M:%S.%3N)" "$*" >>"$d/chassis.log"
}

# A line in the console log, in tslines.py's format.
mark() {
    printf '%s rackboot-lab-bmc: %s\n' "$(date +%s.%3N)" "$*" >>"$d/serial.log"
}

# vm_pid: the running VM's pid (a live, non-zombie qemu-system process).
vm_pid() {
    local p st
    p=$(cat "$PIDFILE" 2>/dev/null) || return 1
    case "$p" in '' | *[!0-9]*) return 1 ;; esac
    st=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ] || return 1
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q '^[^ ]*qemu-system' || return 1
    echo "$p"
}

# qmp COMMAND[=JSON-ARGUMENTS]...: runs each on the VM's QMP socket.
qmp() {
    timeout 10 python3 - "$d/qmp.sock" "$@" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())  # the greeting

def run(cmd, args=None):
    req = {"execute": cmd}
    if args:
        req["arguments"] = args
    f.write(json.dumps(req) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r:
            return
        if "error" in r:
            sys.exit("%s: %s" % (cmd, r["error"].get("desc")))

run("qmp_capabilities")
for c in sys.argv[2:]:
    name, _, args = c.partition("=")
    run(name, json.loads(args) if args else None)
PY
}

next_boot() {
    local n
    exec 9>>"$d/boots.lock"
    flock -w 10 9
    n=$(($(cat "$d/boots" 2>/dev/null || echo 0) + 1))
    echo "$n" >"$d/boots"
    date +%s.%3N >"$d/powered_on_at"
    echo "$n"
}

power_on() {
    local pid i n sup
    if pid=$(vm_pid); then
        log "power on: already on (pid $pid)"
        return 0
    fi
    rm -f "$d/qmp.sock" "$PIDFILE"
    n=$(next_boot)
    mark "power on, boot $n, boot device $(cat "$d/boot"), firmware $FIRMWARE"
    # vm.sh stays QEMU's parent (it reaps it: no zombie that looks alive).
    # Not on ipmi_sim's pipe: ipmi_sim reads our output until EOF.
    bash "$d/vm.sh" </dev/null >/dev/null 2>&1 &
    sup=$!
    # On once QEMU has written its pid file and opened its QMP socket (well
    # under a second when idle; 30 s allowed on a loaded machine); it
    # failing to start is a failed power-on.
    for i in $(seq 1 300); do
        if pid=$(vm_pid) && [ -S "$d/qmp.sock" ]; then
            log "power on: boot $n, pid $pid"
            return 0
        fi
        kill -0 "$sup" 2>/dev/null || break
        sleep 0.1
    done
    log "power on: QEMU did not start (see serial.log)"
    echo "QEMU did not start"
    return 1
}

power_off() {
    local pid i
    if ! pid=$(vm_pid); then
        log "power off: already off"
        return 0
    fi
    mark "power off by the BMC (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 50); do
        vm_pid >/dev/null || break
        [ "$i" = 50 ] && kill -KILL "$pid" 2>/dev/null
        sleep 0.1
    done
    for i in $(seq 1 30); do
        vm_pid >/dev/null || break
        sleep 0.1
    done
    if vm_pid >/dev/null; then
        log "power off: pid $pid does not go away"
        echo "the VM does not stop"
        return 1
    fi
    rm -f "$PIDFILE"
    log "power off: pid $pid gone"
}

# Answered at once, done in the background: ipmi_sim answers nothing while
# we run, and IPMI clients resend a request after a second or so (ipmi_sim
# then runs it again: a slow reset would reset twice). The boot is counted
# and marked on the console once QEMU has reset.
reset() {
    local pid
    if ! pid=$(vm_pid); then
        log "reset: the VM is off, nothing to reset"
        return 0
    fi
    # The lab's command line has -no-reboot: a guest's reboot ends QEMU,
    # and so would a plain system_reset. A reset from the BMC is the
    # hardware's: QEMU resets from now on until it is powered off. (Not
    # only for this one reset: SeaBIOS answers a warm reset by rebooting
    # through the reset register itself.)
    (
        if qmp 'set-action={"reboot":"reset"}' system_reset >>"$d/chassis.log" 2>&1; then
            n=$(next_boot)
            mark "reset, boot $n, boot device $(cat "$d/boot"), firmware $FIRMWARE"
            log "reset: pid $pid, boot $n"
        else
            log "reset: QMP failed"
        fi
    ) </dev/null >/dev/null 2>&1 &
    log "reset: pid $pid, requested"
}

case "$op" in
get)
    for p in "$@"; do
        case "$p" in
        power) if vm_pid >/dev/null; then v=1; else v=0; fi ;;
        boot) v=$(cat "$d/boot" 2>/dev/null || echo none) ;;
        *)
            log "get $p: unknown"
            echo "unknown parameter $p"
            exit 1
            ;;
        esac
        echo "$p:$v"
        log "get $p -> $v"
    done
    ;;
set)
    while [ $# -ge 2 ]; do
        p=$1 v=$2
        shift 2
        case "$p:$v" in
        power:1) power_on || exit 1 ;;
        power:0) power_off || exit 1 ;;
        reset:1) reset || exit 1 ;;
        reset:0) ;;
        shutdown:1)
            if vm_pid >/dev/null; then
                qmp system_powerdown >>"$d/chassis.log" 2>&1 || { echo "power button failed"; exit 1; }
            fi
            log "shutdown: ACPI power button pressed"
            ;;
        shutdown:0) ;;
        boot:none | boot:pxe | boot:default | boot:cdrom | boot:bios)
            echo "$v" >"$d/boot"
            log "boot device: $v"
            ;;
        identify:*)
            # (identify INTERVAL FORCE: a third word)
            [ $# -ge 1 ] && shift
            log "identify: $v s"
            ;;
        *)
            log "set $p $v: unknown"
            echo "cannot set $p to $v"
            exit 1
            ;;
        esac
    done
    ;;
*)
    echo "usage: bmc-chassis.sh DIR get|set ..."
    exit 1
    ;;
esac
exit 0

# shellcheck shell=bash
# A BMC for tests: OpenIPMI's ipmi_sim (Debian package openipmi) answering
# IPMI 2.0 lanplus on one IPv6 address, with a chassis that keeps its power
# state and boot device in files. Sourced by the tests that need a BMC
# (power_ipmi.sh: the driver alone; power_agent.sh: the agent and the CLI).
#
#   ipmisim_write DIR ADDR USER PASSWORD   writes DIR/lan.conf, DIR/bmc.emu,
#                                          DIR/chassis.sh; the chassis state
#                                          goes in DIR/state (power: 0|1,
#                                          boot: pxe|default, chassis.log)
#   ipmisim_start NS DIR                   runs ipmi_sim in namespace NS;
#                                          sets IPMISIM_PID, logs DIR/sim.log
#   ipmisim_tool NS ADDR USER PWFILE ARGS  ipmitool -I lanplus -C 3, one
#                                          try of at most 1 s
#
# The chassis: ipmi_sim runs `chassis.sh get power boot` (it wants
# "power:N" and "boot:DEV" lines; any other output fails every chassis
# command) and `chassis.sh set power 1 boot pxe ...`. "shutdown 1" (soft
# off) stands for an OS that shuts down at once. While DIR/slow holds a
# number, every call first sleeps that many seconds: a BMC slower than the
# client's timeout.

ipmisim_write() {
    local dir=$1 addr=$2 user=$3 password=$4
    mkdir -p "$dir/state" "$dir/simstate"
    cat >"$dir/chassis.sh" <<EOF
#!/bin/sh
st="$dir/state"
[ -f "\$st/power" ] || echo 0 >"\$st/power"
[ -f "\$st/boot" ] || echo default >"\$st/boot"
echo "\$*" >>"\$st/chassis.log"
if [ -f "$dir/slow" ]; then
    sleep "\$(cat "$dir/slow")"
fi
case "\$1" in
get)
    shift
    for p in "\$@"; do
        case "\$p" in
        power) echo "power:\$(cat "\$st/power")" ;;
        boot) echo "boot:\$(cat "\$st/boot")" ;;
        esac
    done
    ;;
set)
    shift
    while [ \$# -ge 2 ]; do
        case "\$1" in
        power) echo "\$2" >"\$st/power" ;;
        shutdown) [ "\$2" = 1 ] && echo 0 >"\$st/power" ;;
        boot) echo "\$2" >"\$st/boot" ;;
        esac
        shift 2
    done
    ;;
esac
exit 0
EOF
    chmod 755 "$dir/chassis.sh"
    # Cipher suite 3 needs the lanplus authentication; the user may take
    # the administrator privilege rackboot's driver asks for.
    cat >"$dir/lan.conf" <<EOF
name "rb-test-bmc"
set_working_mc 0x20
  startlan 1
    addr $addr 623
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "$dir/chassis.sh"
  user 2 true  "$user"   "$password" admin  10       none md2 md5 straight
EOF
    chmod 600 "$dir/lan.conf"
    cat >"$dir/bmc.emu" <<EOF
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
EOF
}

ipmisim_start() {
    local ns=$1 dir=$2
    ip netns exec "$ns" ipmi_sim -c "$dir/lan.conf" -f "$dir/bmc.emu" -s "$dir/simstate" -n \
        >"$dir/sim.log" 2>&1 </dev/null &
    IPMISIM_PID=$!
}

ipmisim_tool() {
    local ns=$1 addr=$2 user=$3 pwfile=$4
    shift 4
    ip netns exec "$ns" ipmitool -I lanplus -C 3 -H "$addr" -p 623 -U "$user" -f "$pwfile" \
        -N 1 -R 1 "$@"
}

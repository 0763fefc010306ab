#!/bin/bash
# rackboot end to end: a real netboot client installs over IPv6 only.
#
#   e2e.sh FIRMWARE AGENT CONTROLLER CLI PKI [bmc]
#   FIRMWARE: bios (SeaBIOS + Debian's iPXE ROM), uefi (OVMF + the ROM's EFI
#   iPXE), uefi-pxe (OVMF's own IPv6 PXE -> TFTP ipxe.efi -> iPXE -> HTTP),
#   and without iPXE, the profile set to `uefi_boot = uki`: uki-pxe (OVMF's
#   PXE -> TFTP the host's Unified Kernel Image from the agent), uki-http
#   (OVMF's HTTP boot -> HTTP that image). For those a capture on the rack
#   link must hold no DHCPv4 packet, the agent must never have served
#   ipxe.efi, and it must have built the host's image once.
#
# In network namespaces of its own (deploy/lab/lib.sh): rackboot-controller
# with a throwaway PKI, rackboot-agent dialling it over mutual TLS, radvd
# (M, O, A) on the rack link, an origin web server with the profile's images,
# and QEMU (TCG) as host web17. The installer is a Debian kernel plus a
# busybox initrd that acts like Anaconda (deploy/lab/installer-init.sh).
#
#   1. hosts and profile imported, `rackboot install web17 --profile lab`
#   2. the VM boots: DHCPv6 -> iPXE script -> kernel, initrd, overlay ->
#      kickstart -> stage2 -> progress posts -> installed -> powers off
#   3. `rackboot status web17 --json` says installed (bounded wait), and
#      `rackboot events web17 --json` holds every phase, in order; the phase
#      timeline is printed (seconds since QEMU start)
#   4. the VM boots again: the agent does not answer it (its
#      rackboot_dhcp6_ignored_no_intent_total grows, no new dhcp_bound, no
#      "dhcp6 bound" in its log), so the host would boot from its disk
#
# With `bmc` nobody starts QEMU: the host has a BMC (deploy/lab/bmc.sh:
# OpenIPMI's ipmi_sim on the rack's management link, whose chassis powers
# QEMU on and off), it is off at the start, and `rackboot install web17
# --power cycle` alone brings it up (the agent sets a one-time PXE boot,
# EFI for UEFI, then cycles it); boot 2 is `rackboot power on web17`; and
# `rackboot power status web17` must agree with ipmitool, off after the
# install and on during boot 2.
#
# Needs root, ip netns, /dev/net/tun, qemu-system-x86_64 and the firmware
# (ipxe-qemu, ovmf, ipxe), radvd, busybox-static, cpio, python3, curl, and
# once per machine the Debian mirror (the kernel is cached in
# /var/cache/rackboot-e2e). Skips (77) only when those facilities are absent.
# KEEP_TMP=1 keeps the work directory (all logs).
set -uo pipefail

FW=${1:?usage: e2e.sh bios|uefi|uefi-pxe|uki-pxe|uki-http AGENT CONTROLLER CLI PKI}
RB_AGENT=${2:?agent}
RB_CONTROLLER=${3:?controller}
RB_CLI=${4:?cli}
RB_PKI=${5:?pki}
POWER=${6:-}
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME="e2e.$FW${POWER:+-$POWER}"
# shellcheck disable=SC2034 # read by deploy/lab/lib.sh
LAB_ID="e2e$$"
# shellcheck source=deploy/lab/lib.sh
. "$HERE/../../deploy/lab/lib.sh"

BOOT_LIMIT=${E2E_BOOT_LIMIT:-240}      # first boot: power-on to installed
REBOOT_LIMIT=${E2E_REBOOT_LIMIT:-150}  # second boot: until a Solicit was ignored

# QEMU_FW: the firmware set-up (deploy/lab/lib.sh lab_qemu_cmd).
UKI=""
case "$FW" in
bios | uefi | uefi-pxe) QEMU_FW=$FW ;;
uki-pxe) QEMU_FW=uefi-pxe UKI=yes ;;
uki-http) QEMU_FW=uefi-http UKI=yes ;;
*) echo "usage: e2e.sh bios|uefi|uefi-pxe|uki-pxe|uki-http AGENT CONTROLLER CLI PKI" >&2; exit 2 ;;
esac
# shellcheck disable=SC2034 # read by deploy/lab/lib.sh (lab_write_inputs)
[ -z "$UKI" ] || LAB_UEFI_BOOT=uki

case "$POWER" in
"" | bmc) ;;
*) echo "usage: e2e.sh FIRMWARE AGENT CONTROLLER CLI PKI [bmc]" >&2; exit 2 ;;
esac
fail() { lab_fail "$@"; }
lab_test_start "$(lab_missing net qemu "$QEMU_FW" installer ${POWER:+bmc} ${UKI:+uki} \
    ${UKI:+tcpdump})"

# ---- the rack ------------------------------------------------------------------
lab_say "network: namespaces $LAB_NS_CTL (controller, origin) and $LAB_NS_RACK (agent, radvd, VM)"
lab_net_up || fail "network setup"
if [ "$POWER" = bmc ]; then
    lab_say "the host's BMC: ipmi_sim at $LAB_BMC_ADDR on the management link, the VM off"
    lab_bmc_start "$FW" || fail "BMC"
    lab_bmc_power_is off || fail "the VM is not off at the start"
fi
lab_pki || fail "PKI"
lab_write_configs || fail "configs do not pass --check-config"
lab_say "installer payload (Debian kernel from $LAB_CACHE, busybox initrd, stage2)"
lab_start_origin || fail "origin"
lab_build_installer "$LAB_DIR/origin" || fail "cannot build the installer payload"
lab_write_inputs "$LAB_DIR/inputs"
lab_say "controller and agent (mutual TLS over the uplink)"
lab_start_controller || fail "controller"
lab_start_agent || fail "agent"

# ---- 1. submit -----------------------------------------------------------------------
lab_submit "$LAB_DIR/inputs" ${POWER:+--power cycle}

# The host's kernel image carries its install token: nobody but the host gets
# it (the agent's own address is not the host's), and no other MAC has one.
if [ -n "$UKI" ]; then
    uki_url="http://[$LAB_AGENT_ADDR]/boot/$(echo "$LAB_HOST_MAC" | tr : -).efi"
    code=$(ip netns exec "$LAB_NS_RACK" curl -gs -o /dev/null -w '%{http_code}' -m 20 "$uki_url")
    [ "$code" = 403 ] || fail "GET $uki_url from the agent's address: HTTP $code, not 403"
    code=$(ip netns exec "$LAB_NS_RACK" curl -gs -o /dev/null -w '%{http_code}' -m 20 \
        "http://[$LAB_AGENT_ADDR]/boot/52-54-00-99-99-99.efi")
    [ "$code" = 404 ] || fail "GET of another MAC's kernel image: HTTP $code, not 404"
fi

# ---- 2. first boot: the install ------------------------------------------------------------
lab_say "boot 1 ($FW): power-on to installed, at most $BOOT_LIMIT s"
if [ "$POWER" = bmc ]; then
    # Nobody but the BMC starts the VM.
    lab_wait_for 60 lab_vm_running || fail "the BMC did not power the VM on within 60 s of the install"
    T0=$(cat "$LAB_BMC_DIR/powered_on_at")
    lab_say "the agent powered the host on through its BMC $(lab_rel "$T0" "$T_SUBMIT") s after the install was submitted"
else
    if [ -n "$UKI" ]; then
        # Every DHCP (v4 and v6), TFTP and HTTP packet of the first boot.
        ip netns exec "$LAB_NS_RACK" tcpdump -i "$LAB_BR" -n -s 0 -U -w "$LAB_DIR/boot1.pcap" \
            'udp port 67 or udp port 68 or udp port 546 or udp port 547 or udp port 69 or tcp port 80' \
            >/dev/null 2>"$LAB_DIR/tcpdump.err" &
        TCPDUMP_PID=$!
        lab_wait_for 10 grep -q "listening on" "$LAB_DIR/tcpdump.err" || fail "tcpdump did not start"
    fi
    lab_boot_vm "$QEMU_FW" "$LAB_DIR/serial1.log" "$((BOOT_LIMIT + 20))" || fail "QEMU"
    T0=$LAB_QEMU_T0
fi
lab_wait_installed "$BOOT_LIMIT"
T_INSTALLED=$(lab_ts)
lab_say "controller says installed after $(lab_rel "$T_INSTALLED" "$T0") s"
lab_vm_wait_exit 30 || fail "the installer did not power the VM off"
T_OFF=$(lab_ts)
lab_vm_stop
if [ "$POWER" = bmc ]; then
    lab_bmc_console 1 >"$LAB_DIR/serial1.log"
    # rackboot's view of the power state agrees with ipmitool's.
    power_is() {
        lab_rb power status "$LAB_HOST" --json >"$LAB_DIR/power.json" 2>&1 &&
            python3 -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))[0]["power_state"] == sys.argv[2] else 1)' \
                "$LAB_DIR/power.json" "$1"
    }
    lab_bmc_power_is off || fail "ipmitool does not say off after the install"
    power_is off || fail "rackboot power status does not say off: $(cat "$LAB_DIR/power.json")"
    lab_rb events "$LAB_HOST" --json >"$LAB_DIR/events-power.json" || fail "rackboot events failed"
    python3 - "$LAB_DIR/events-power.json" "$INSTALL_ID" "$FW" <<'PY' || fail "the install's power events are not bootdev_set (pxe) then power_cycle"
import json, sys
ev = [e for e in json.load(open(sys.argv[1])) if e.get("install_id") == sys.argv[2]]
phases = [e["phase"] for e in ev]
b, c = phases.index("bootdev_set"), phases.index("power_cycle")
want = "pxe efi" if sys.argv[3] != "bios" else "pxe"
assert b < c < phases.index("dhcp_bound"), phases
assert ev[b]["message"] == want, ev[b]
PY
    lab_say "power: bootdev_set, power_cycle before dhcp_bound; power status off, as ipmitool says"
fi
grep -aq "rackboot-installer: .*install complete" "$LAB_DIR/serial1.log" ||
    fail "the installer did not report 'install complete' on the console"

# ---- 3. the controller's view: every phase, in order ------------------------------------------
EXPECTED="dhcp_bound script_served kernel_fetched initrd_fetched"
OVERLAY=""
if grep -q '^overlay = yes' "$LAB_DIR/inputs/profiles.conf"; then
    OVERLAY=yes
    # A UKI holds the overlay: nothing more to fetch.
    [ -n "$UKI" ] || EXPECTED="$EXPECTED overlay_fetched"
fi
EXPECTED="$EXPECTED kickstart_fetched stage2_progress installing installed"
lab_rb events "$LAB_HOST" --json >"$LAB_DIR/events1.json" || fail "rackboot events failed"
lab_rb status "$LAB_HOST" --json >"$LAB_DIR/status1.json" || fail "rackboot status failed"
echo "---- rackboot status $LAB_HOST --json"
cat "$LAB_DIR/status1.json"
# shellcheck disable=SC2086 # EXPECTED is a list
python3 "$HERE/phases.py" "$LAB_DIR/events1.json" "$INSTALL_ID" "$T0" $EXPECTED \
    --serial "$LAB_DIR/serial1.log"
phases_ok=$?
echo "  $(lab_rel "$T_OFF" "$T0")  (test) QEMU exited (installer powered off)"
python3 - "$LAB_DIR/status1.json" "$INSTALL_ID" <<'PY' || fail "rackboot status does not show the install as installed"
import json, sys
rows = json.load(open(sys.argv[1]))
r = rows[0]
ok = r["install_id"] == sys.argv[2] and r["state"] == "installed" and r["phase"] == "installed"
sys.exit(0 if ok else 1)
PY
# A missing or misordered phase fails the test at the end, after the second
# boot has been checked too.
PROBLEMS=""
[ "$phases_ok" = 0 ] || PROBLEMS="the controller's events lack phases or have them out of order (see the PHASE CHECK lines)"
# The overlay initrd must reach the installer, not only be served: its hook
# is unpacked and sourced (the installer prints what it found).
if [ -n "$OVERLAY" ] && ! grep -aq "rackboot-installer: .*overlay hook done" "$LAB_DIR/serial1.log"; then
    grep -a "OVERLAY MISSING\|Initramfs unpacking failed" "$LAB_DIR/serial1.log" | sed 's/^/  serial: /'
    PROBLEMS="${PROBLEMS:+$PROBLEMS; }the overlay initrd was served but the installer did not get its hook (see serial lines above)"
fi
bound_before=$(lab_agent_log_count "dhcp6 bound ")
grep -q "install completed install=$INSTALL_ID host=$LAB_HOST: intent withdrawn" "$LAB_DIR/agent.log" ||
    fail "the agent did not log the intent's withdrawal"
BOOT1=$(lab_rel "$T_OFF" "$T0")

# ---- UKI: the firmware loaded the host's own image, no iPXE, no DHCPv4 -------------------------
if [ -n "$UKI" ]; then
    kill "$TCPDUMP_PID" 2>/dev/null
    wait "$TCPDUMP_PID" 2>/dev/null
    dhcp4=$(tcpdump -r "$LAB_DIR/boot1.pcap" -n 'udp port 67 or udp port 68' 2>/dev/null | wc -l)
    dhcp6=$(tcpdump -r "$LAB_DIR/boot1.pcap" -n 'udp port 546 or udp port 547' 2>/dev/null | wc -l)
    [ "$dhcp6" -gt 0 ] || fail "the capture holds no DHCPv6 packet: it saw nothing of the boot"
    [ "$dhcp4" = 0 ] || {
        tcpdump -r "$LAB_DIR/boot1.pcap" -n 'udp port 67 or udp port 68' 2>/dev/null | head -5
        fail "$dhcp4 DHCPv4 packets on the rack link during the install"
    }
    if grep -E 'tftp (done|start|aborted|failed|refused) file="?ipxe\.efi|http (GET|HEAD) /files/ipxe\.efi' "$LAB_DIR/agent.log"; then
        fail "the host fetched ipxe.efi"
    fi
    case "$FW" in
    uki-pxe) grep -Eq 'tftp done file="?boot/[0-9a-f-]+\.efi' "$LAB_DIR/agent.log" ||
        fail "no whole TFTP transfer of boot/<mac>.efi in the agent's log" ;;
    uki-http) grep -Eq 'http GET /boot/[0-9a-f-]+\.efi status=200' "$LAB_DIR/agent.log" ||
        fail "no HTTP 200 for /boot/<mac>.efi in the agent's log" ;;
    esac
    builds=$(lab_metric rackboot_uki_builds_total) || fail "no rackboot_uki_builds_total in /metrics"
    hits=$(lab_metric rackboot_uki_hits_total)
    [ "$builds" = 1 ] || fail "the host's image was built $builds times, not once"
    lab_say "UKI: built once ($hits later requests from disk), $dhcp6 DHCPv6 and no DHCPv4 packets, no ipxe.efi"
fi

# ---- 4. second boot: no answer, the host boots from disk ---------------------------------------
events_before=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$LAB_DIR/events1.json")
ignored_before=$(lab_metric rackboot_dhcp6_ignored_no_intent_total) ||
    fail "no rackboot_dhcp6_ignored_no_intent_total in the agent's /metrics"
lab_say "boot 2 ($FW): the agent must ignore it (ignored_no_intent_total=$ignored_before)"
if [ "$POWER" = bmc ]; then
    lab_rb power on "$LAB_HOST" >"$LAB_DIR/power-on.out" 2>&1 ||
        fail "rackboot power on: $(cat "$LAB_DIR/power-on.out")"
    T0_2=$(cat "$LAB_BMC_DIR/powered_on_at")
    lab_bmc_power_is on || fail "ipmitool does not say on after rackboot power on"
    power_is on || fail "rackboot power status does not say on: $(cat "$LAB_DIR/power.json")"
else
    lab_boot_vm "$QEMU_FW" "$LAB_DIR/serial2.log" "$((REBOOT_LIMIT + 20))" || fail "QEMU"
    T0_2=$LAB_QEMU_T0
fi
ignored_grew() {
    local now
    now=$(lab_metric rackboot_dhcp6_ignored_no_intent_total) && [ "$now" -gt "$ignored_before" ]
}
lab_wait_for "$REBOOT_LIMIT" ignored_grew ||
    fail "the agent's ignored-Solicit counter did not grow within $REBOOT_LIMIT s of the second boot"
T_IGN=$(lab_ts)
ignored_after=$(lab_metric rackboot_dhcp6_ignored_no_intent_total)
# A few more seconds of Solicits and retransmissions, then nothing may have
# been answered.
sleep 3
lab_vm_stop
[ "$(lab_agent_log_count "dhcp6 bound ")" = "$bound_before" ] ||
    fail "the agent bound the host again after its install: $(grep 'dhcp6 bound ' "$LAB_DIR/agent.log" | tail -n 1)"
lab_rb events "$LAB_HOST" --json >"$LAB_DIR/events2.json" || fail "rackboot events failed"
python3 - "$LAB_DIR/events2.json" "$events_before" <<'PY' || fail "new events for the host after the install (see above)"
import json, sys
ev = json.load(open(sys.argv[1]))
# The BMC's events (rackboot power, the agent's poll) are the host's, not
# an install's.
new = [e for e in ev[int(sys.argv[2]):]
       if e["phase"] != "bootdev_set" and not e["phase"].startswith("power_")]
for e in new:
    print("  new event after the install: %s %s %s" % (e["phase"], e.get("install_id"), e.get("message")))
sys.exit(1 if any(e["phase"] == "dhcp_bound" for e in new) or new else 0)
PY
lab_state_is "$LAB_HOST" installed || fail "status changed after the second boot"
lab_say "boot 2: Solicits ignored ($ignored_before -> $ignored_after) $(lab_rel "$T_IGN" "$T0_2") s after power-on; no dhcp_bound"

T_END=$(lab_ts)
echo "times ($FW): boot 1 power-on to power-off $BOOT1 s; boot 2 ignored after $(lab_rel "$T_IGN" "$T0_2") s; whole test $(lab_rel "$T_END" "$T_START") s"
[ -z "$PROBLEMS" ] || fail "$PROBLEMS"
echo "PASS: $TEST_NAME"

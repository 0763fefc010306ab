#!/bin/bash
# The rackboot lab: a whole IPv6-only rack on this machine, one command.
#
#   deploy/lab/run.sh [bios|uefi|uefi-pxe]      (default bios)
#   deploy/lab/run.sh uefi-uki|uefi-uki-http    UEFI without iPXE: OVMF's PXE
#                                               (TFTP) or HTTP boot loads the
#                                               host's own kernel image (UKI)
#   deploy/lab/run.sh image [bios|uefi]         an image deploy (default bios)
#   deploy/lab/run.sh d-i                       Debian's real installer with a
#                                               rendered preseed, as far as it
#                                               goes here (see below)
#   deploy/lab/run.sh pair                      a rack served by two agents; the
#                                               primary is SIGKILLed mid-netboot
#                                               (see below)
#
# 1. installs the dependencies (deploy/install-deps.sh, Debian 12)
# 2. builds rackboot (Release, build/lab)
# 3. creates the network: namespace "rack" (rackboot-agent, radvd, the
#    host's link br0 with QEMU's tap) and "rack-ctl" (rackboot-controller and
#    an origin web server standing in for a distribution mirror), joined by
#    the agent's uplink, and "rack-bmc", the host's BMC (OpenIPMI's ipmi_sim,
#    whose chassis powers QEMU on and off) on the rack's management link;
#    IPv6 only, documentation prefixes, no route out
# 4. creates a throwaway PKI (fleet CA, controller and agent certificates)
# 5. builds the installer the host will run: a Debian kernel (downloaded
#    once into /var/cache/rackboot-e2e) and a busybox initrd that behaves
#    like Anaconda (deploy/lab/installer-init.sh), plus a stage2 image
# 6. starts the controller and the agent (mutual TLS over the uplink)
# 7. registers host web17 and the install profile with the rackboot CLI
# 8. `rackboot install web17 --profile lab --power cycle`: the agent sets
#    the host's next boot to the network through its BMC and powers it on
# 9. nobody starts QEMU but the BMC; shows `rackboot watch web17` live
#    until web17 (TCG) is installed; then the events as the controller
#    recorded them and `rackboot power status web17`
# and tears everything down (also on Ctrl-C or any failure).
#
# `image` deploys a real Debian 12 instead: step 5 builds the deploy ramdisk
# (deploy-ramdisk/build-ramdisk.sh) and the Debian image
# (deploy/images/build-debian.sh; both cached under /var/cache/rackboot, the
# first image build takes ~5 minutes), the profile is `kind = image` with an
# SSH key made for the lab, web17 gets a blank 4 GiB disk, and the watch goes
# on through writing %, written, the reboot into the disk and cloud-init's
# first_boot; the lab ends with an SSH login to the deployed host.
#
# `d-i` boots Debian's netboot installer (package
# debian-installer-12-netboot-amd64, downloaded once into
# /var/cache/rackboot-e2e) with a kind = debian-installer profile and the
# preseed template deploy/examples/debian12.preseed: netcfg configures the
# host's reserved address from the kernel command line, d-i fetches its
# preseed from the agent, and the preseed's early_command reports each
# installer step to `rackboot watch`. It stops where d-i downloads its own
# components (.udeb files) from the mirror: the mirror this machine reaches
# serves .deb files only, and the rack has no route out. A site needs a full
# Debian mirror reachable over IPv6 from the rack for the rest.
#
# `pair` serves the rack with a redundant pair of agents, as deploy/HA.md
# lays out and tests/e2e/agent_pair.sh checks: agent 1 in "rack" (br0,
# DHCPv6 preference 255) and agent 2 ("lab1/2", its own certificate) in
# "rack2" (2001:db8:1::2 on the rack link, preference 100), each with
# keepalived holding the rack's service address 2001:db8:1::100 while its
# agent's /healthz answers (agent 1 first: priority 150 to 100). web17 has
# no BMC here (the lab starts QEMU itself, BIOS + iPXE): once the controller
# has overlay_fetched, the last thing iPXE fetches, the lab SIGKILLs agent 1;
# keepalived moves the service address to agent 2 and the installer fetches
# its kickstart and stage2 and posts its progress there. The lab ends with
# where the address went and when, and what each agent served.
#
# Environment: LAB_BUILD_DIR (default build/lab), LAB_KEEP=1 keeps the work
# directory /tmp/rackboot-lab (logs: controller.log, agent.log, bmc/serial.log;
# pair: agent2.log, keepalived1.log, keepalived2.log, serial.log),
# LAB_SKIP_DEPS=1 skips step 1, LAB_CONSOLE=1 also shows the VM's console.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODE=install
case "${1:-}" in
image)
    MODE=image
    shift
    ;;
d-i)
    MODE="d-i"
    shift
    ;;
pair)
    MODE=pair
    shift
    ;;
esac
FW=${1:-${LAB_FIRMWARE:-bios}}
BUILD=${LAB_BUILD_DIR:-$ROOT/build/lab}
STEPS=9
n=0
step() {
    n=$((n + 1))
    printf '\n\033[1m==> [%d/%d] %s\033[0m\n' "$n" "$STEPS" "$*"
}
die() {
    echo "lab: $*" >&2
    exit 1
}

case "$MODE/$FW" in
install/bios | install/uefi | install/uefi-pxe | image/bios | image/uefi | d-i/bios | pair/bios) ;;
# The profile says `uefi_boot = uki`: the agent answers OVMF's own PXE or
# HTTP boot with the host's Unified Kernel Image (rack-agent/uki/).
install/uefi-uki) FW=uefi-pxe LAB_UEFI_BOOT=uki ;;
install/uefi-uki-http) FW=uefi-http LAB_UEFI_BOOT=uki ;;
*) die "usage: $0 [bios|uefi|uefi-pxe|uefi-uki|uefi-uki-http] | $0 image [bios|uefi] | $0 d-i | $0 pair" ;;
esac
[ "$MODE" != pair ] || STEPS=10
export LAB_UEFI_BOOT
[ "$(id -u)" = 0 ] || die "run as root (network namespaces, tap devices, packages)"

step "dependencies (deploy/install-deps.sh)"
if [ "${LAB_SKIP_DEPS:-0}" = 1 ]; then
    echo "skipped (LAB_SKIP_DEPS=1)"
else
    "$ROOT/deploy/install-deps.sh"
fi

step "build (Release, $BUILD)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" --target rackboot-controller rackboot-agent rackboot rackboot-pki
# shellcheck disable=SC2034 # read by lib.sh
RB_AGENT=$BUILD/rack-agent/rackboot-agent
# shellcheck disable=SC2034
RB_CONTROLLER=$BUILD/controller/rackboot-controller
RB_CLI=$BUILD/cli/rackboot
RB_PKI=$BUILD/pki/rackboot-pki

LAB_NS_RACK=rack
LAB_NS_CTL=rack-ctl
# shellcheck disable=SC2034 # read by lib.sh (bmc.sh)
LAB_NS_BMC=rack-bmc
# shellcheck disable=SC2034 # read by lib.sh (pair)
LAB_NS_RACK2=rack2
# The pair's service address, which keepalived moves ([agent] service_address).
[ "$MODE" != pair ] || LAB_SERVICE_ADDR=2001:db8:1::100
# shellcheck source=deploy/lab/lib.sh
. "$ROOT/deploy/lab/lib.sh"
if [ "$MODE" = image ]; then
    LAB_PROFILE=deb12
    missing=$(lab_missing net qemu "$FW" bmc)
elif [ "$MODE" = d-i ]; then
    LAB_PROFILE=deb12-di
    missing=$(lab_missing net qemu "$FW" bmc)
elif [ "$MODE" = pair ]; then
    missing=$(lab_missing net qemu "$FW" installer keepalived)
else
    missing=$(lab_missing net qemu "$FW" installer bmc ${LAB_UEFI_BOOT:+uki})
fi
[ -z "$missing" ] || die "missing: $(echo "$missing" | paste -sd ';')"

lab_init "${LAB_WORK:-/tmp/rackboot-lab}"
trap lab_cleanup EXIT
trap 'echo; echo "lab: interrupted"; exit 130' INT TERM

if [ "$MODE" = pair ]; then
    step "network: namespaces $LAB_NS_RACK, $LAB_NS_CTL and $LAB_NS_RACK2, IPv6 only"
    joint='|--' # tap0, then agent 2's link
else
    step "network: namespaces $LAB_NS_RACK and $LAB_NS_CTL, IPv6 only"
    joint='`--'
fi
lab_net_up || die "network setup failed"
cat <<EOF
  $LAB_NS_CTL  up0 $LAB_UP_CTL/64   rackboot-controller, origin mirror :$LAB_ORIGIN_PORT
     |  (the agent's uplink)
  $LAB_NS_RACK      up1 $LAB_UP_AGENT/64
                br0 $LAB_AGENT_ADDR/64   rackboot-agent (DHCPv6, HTTP, TFTP), radvd (M O A)
                 $joint tap0 -> QEMU host $LAB_HOST ($LAB_HOST_MAC, reserved $LAB_HOST_ADDR)
EOF
if [ "$MODE" = pair ]; then
    lab_pair_net_up || die "the second agent's namespace $LAB_NS_RACK2"
    cat <<EOF
                 \`-- vr2 (veth)
  $LAB_NS_RACK2     eth0 $LAB_AGENT2_ADDR/64  rackboot-agent 2 (DHCPv6 preference 100), its
                                     default route via $LAB_AGENT_ADDR
  service address $LAB_SERVICE_ADDR: keepalived (VRRPv3) in $LAB_NS_RACK and $LAB_NS_RACK2
EOF
fi

if [ "$MODE" = image ]; then
    # web17's blank disk; the deployed image reboots into it, so QEMU resets
    # instead of exiting. Set before the BMC writes its power-on command.
    truncate -s 4G "$LAB_DIR/disk.raw"
    # shellcheck disable=SC2034 # read by lib.sh (lab_qemu_cmd)
    LAB_VM_DISK=$LAB_DIR/disk.raw LAB_VM_MEM=1024 LAB_VM_REBOOT=1 LAB_VM_NO_IPV4=1
elif [ "$MODE" = d-i ]; then
    # d-i wants more memory than the stand-in; a blank disk to install to.
    truncate -s 4G "$LAB_DIR/disk.raw"
    # shellcheck disable=SC2034 # read by lib.sh (lab_qemu_cmd)
    LAB_VM_DISK=$LAB_DIR/disk.raw LAB_VM_MEM=1024
fi
if [ "$MODE" != pair ]; then
    lab_bmc_start "$FW" || die "the host's BMC did not start (see $LAB_DIR/bmc/)"
    cat <<EOF
  $LAB_NS_RACK      mgmt0 $LAB_MGMT_AGENT/64 (the management link)
  $LAB_NS_BMC  eth0 $LAB_BMC_ADDR/64   ipmi_sim: $LAB_HOST's BMC, $LAB_BMC_URL user $LAB_BMC_USER
                (its password: $LAB_BMC_DIR/password); $LAB_HOST is off
EOF
fi

step "PKI: a throwaway fleet CA"
lab_pki || die "rackboot-pki failed"
if [ "$MODE" = pair ]; then
    lab_pair_pki || die "rackboot-pki issue agent $LAB_RACK --instance 2 failed"
fi
"$RB_PKI" --dir "$LAB_DIR/pki" list

if [ "$MODE" = image ]; then
    step "deploy ramdisk and Debian 12 image (cached; the first image build takes ~5 min)"
    lab_start_origin || die "origin web server"
    lab_build_ramdisk "$LAB_DIR/ramdisk" || die "cannot build the deploy ramdisk"
    lab_build_image "$LAB_DIR/origin/disk.raw.zst" || die "cannot build the Debian image"
    ssh-keygen -q -t ed25519 -N '' -C rackboot-lab -f "$LAB_DIR/id" || die "ssh-keygen"
    lab_write_image_inputs "$LAB_DIR/inputs" disk.raw.zst "$LAB_DIR/id.pub"
    # shellcheck disable=SC2034 # read by lib.sh (lab_write_configs)
    LAB_RAMDISK=$LAB_DIR/ramdisk
    ls -l "$LAB_DIR/ramdisk" "$LAB_DIR/origin"
    echo "  the agent serves the ramdisk at /deploy/; the image reaches it through its cache"
elif [ "$MODE" = d-i ]; then
    step "Debian's netboot installer on the origin mirror"
    lab_start_origin || die "origin web server"
    lab_fetch_debian_installer "$LAB_DIR/origin" || die "cannot fetch $LAB_DI_PACKAGE"
    mkdir -p "$LAB_DIR/inputs"
    ssh-keygen -q -t ed25519 -N '' -C rackboot-lab -f "$LAB_DIR/id" || die "ssh-keygen"
    cp "$LAB_DIR/id.pub" "$LAB_DIR/inputs/id.pub"
    lab_write_di_inputs "$LAB_DIR/inputs"
    ls -l "$LAB_DIR/origin"
    echo "  kernel and initrd: $LAB_DI_PACKAGE ($LAB_DI_PATH)"
    echo "  preseed template: deploy/examples/debian12.preseed"
else
    step "installer payload on the origin mirror"
    lab_start_origin || die "origin web server"
    lab_build_installer "$LAB_DIR/origin" || die "cannot build the installer"
    lab_write_inputs "$LAB_DIR/inputs"
    ls -l "$LAB_DIR/origin"
    echo "  kernel: Debian linux-image-$LAB_KVER; initrd: busybox-static + NIC modules + installer-init.sh"
fi

step "controller and agent$([ "$MODE" != pair ] || echo "s")"
lab_write_configs || die "the generated configs do not pass --check-config ($LAB_DIR)"
if [ "$MODE" = pair ]; then
    lab_write_agent2_config || die "agent 2's configuration ($LAB_DIR/agent2.conf)"
fi
lab_start_controller || die "the controller did not start (see $LAB_DIR/controller.log)"
echo "  rackboot-controller: agents on tls+tcp://[$LAB_UP_CTL]:$LAB_CTL_PORT, API ipc://$LAB_DIR/api.sock"
lab_start_agent || die "the agent did not start or connect (see $LAB_DIR/agent.log)"
echo "  rackboot-agent: rack $LAB_RACK, connected to $LAB_CTL_NAME"
if [ "$MODE" = pair ]; then
    lab_start_agent2 || die "agent 2 did not start or connect (see $LAB_DIR/agent2.log)"
    echo "  rackboot-agent 2 (in $LAB_NS_RACK2): rack $LAB_RACK instance 2, connected to $LAB_CTL_NAME"
    echo "  both: service_address = $LAB_SERVICE_ADDR"
fi
export RACKBOOT_CONTROLLER="ipc://$LAB_DIR/api.sock"
echo "  \$ rackboot racks"
"$RB_CLI" racks

if [ "$MODE" = pair ]; then
    step "keepalived: VRRPv3 id $LAB_VRID for $LAB_SERVICE_ADDR, priority 150 ($LAB_NS_RACK) and 100 ($LAB_NS_RACK2)"
    lab_pair_keepalived_up || die "keepalived (see $LAB_DIR/keepalived1.log, keepalived2.log)"
    k2=$(lab_keepalived_state 2)
    echo "  keepalived 1 ($LAB_NS_RACK): $(lab_keepalived_state 1)"
    echo "  keepalived 2 ($LAB_NS_RACK2): ${k2% *}, hears a master of priority ${k2#* }"
    echo "  \$ ip -n $LAB_NS_RACK -6 -br addr show dev $LAB_BR"
    ip -n "$LAB_NS_RACK" -6 -br addr show dev "$LAB_BR" | sed 's/^/      /'
fi

step "register the host and the profile"
echo "  \$ rackboot hosts import hosts.csv"
sed 's/^/      /' "$LAB_DIR/inputs/hosts.csv"
"$RB_CLI" hosts import "$LAB_DIR/inputs/hosts.csv"
echo "  \$ rackboot profiles import profiles.conf"
"$RB_CLI" profiles import "$LAB_DIR/inputs/profiles.conf"
"$RB_CLI" profiles list

if [ "$MODE" = pair ]; then
    step "rackboot install $LAB_HOST --profile $LAB_PROFILE"
    "$RB_CLI" install "$LAB_HOST" --profile "$LAB_PROFILE"
    lab_wait_for 30 lab_state_is "$LAB_HOST" dispatched || die "the install did not reach the agents"
    INSTALL_ID=$(lab_status_field "$LAB_HOST" install_id)
    "$RB_CLI" status "$LAB_HOST"
    lab_wait_for 60 lab_agent_cached agent.log || die "agent 1 did not cache the profile's images"
    lab_wait_for 60 lab_agent_cached agent2.log || die "agent 2 did not cache the profile's images"
    echo "  both agents have the profile's images in their cache"

    LAST_IPXE=$(lab_last_ipxe_phase "$LAB_DIR/inputs")
    step "$LAB_HOST boots (QEMU TCG, BIOS + iPXE); agent 1 is SIGKILLed once the controller has $LAST_IPXE"
    lab_boot_vm "$FW" "$LAB_DIR/serial.log" 320 || die "QEMU did not start"
    echo "  console: $LAB_DIR/serial.log"
    if [ "${LAB_CONSOLE:-0}" = 1 ]; then
        tail -n +1 -F "$LAB_DIR/serial.log" 2>/dev/null | cut -d' ' -f2- | sed 's/^/  console| /' &
        LAB_PIDS="$LAB_PIDS $!"
    fi
    # One line per change (TERM=dumb: no redrawing in place), so that the
    # lab's own lines can go between.
    echo "  \$ rackboot watch $LAB_HOST"
    TERM=dumb "$RB_CLI" watch "$LAB_HOST" &
    watch_pid=$!
    LAB_PIDS="$LAB_PIDS $watch_pid"
    lab_wait_for 180 lab_phase_seen "$LAST_IPXE" ||
        die "no $LAST_IPXE within 180 s of power-on (see $LAB_DIR/serial.log)"
    T_KILL=$(lab_ts)
    lab_kill_agent || die "cannot SIGKILL agent 1"
    echo "lab: agent 1 ($LAB_NS_RACK) SIGKILLed $(lab_rel "$T_KILL" | tr -d ' ') s after power-on, right after $LAST_IPXE"
    lab_wait_for 10 lab_has_vip "$LAB_NS_RACK2" ||
        die "the service address did not move to agent 2 within 10 s (see $LAB_DIR/keepalived2.log)"
    T_VIP=$(lab_ts)
    lab_has_vip "$LAB_NS_RACK" && die "the service address is still on agent 1's link"
    echo "lab: $LAB_SERVICE_ADDR is on agent 2 ($LAB_NS_RACK2) $(lab_rel "$T_VIP" "$T_KILL" | tr -d ' ') s after the kill"
    set +e
    lab_wait_for 300 sh -c "! kill -0 $watch_pid 2>/dev/null" ||
        die "rackboot watch did not end within 300 s of the kill (see $LAB_DIR/serial.log)"
    wait "$watch_pid"
    rc=$?
    set -e
    T_DONE=$(lab_ts)
    [ "$rc" = 0 ] || die "rackboot watch ended with status $rc (see $LAB_DIR/serial.log and agent2.log)"
    lab_vm_wait_exit 30 || echo "  (the VM did not power off by itself)"
    echo
    echo "  \$ rackboot events $LAB_HOST"
    "$RB_CLI" events "$LAB_HOST"
    "$RB_CLI" events "$LAB_HOST" --json >"$LAB_DIR/events.json"
    T_KS=$(lab_phase_time "$LAB_DIR/events.json" kickstart_fetched)
    echo "  \$ rackboot racks"
    "$RB_CLI" racks
    echo "  agent 1 ($LAB_RACK, $LAB_AGENT_ADDR) served $LAB_HOST:"
    lab_agent_served agent.log
    echo "  agent 2 ($LAB_RACK/2, $LAB_AGENT2_ADDR) served $LAB_HOST:"
    lab_agent_served agent2.log
    completed="did not report 'install complete' on its console"
    if grep -aq "rackboot-installer: .*install complete" "$LAB_DIR/serial.log"; then
        completed="reported 'install complete' on its console"
    fi
    through="through agent 2"
    grep -Eq "http GET \"?/ks/[^ ]* status=200 .*client=\[?$LAB_HOST_ADDR" "$LAB_DIR/agent2.log" ||
        through="but agent 2's log shows no kickstart it served"
    echo
    echo "lab: agent 1 was SIGKILLed $(lab_rel "$T_KILL" | tr -d ' ') s after power-on, right after $LAST_IPXE;"
    echo "     the service address $LAB_SERVICE_ADDR moved from $LAB_NS_RACK (agent 1) to $LAB_NS_RACK2 (agent 2)"
    echo "     $(lab_rel "$T_VIP" "$T_KILL" | tr -d ' ') s after the kill; the installer's next fetch (its kickstart) reached"
    echo "     agent 2 $(lab_rel "$T_KS" "$T_KILL" | tr -d ' ') s after the kill (its kernel booted in between);"
    echo "     $LAB_HOST installed $(lab_rel "$T_DONE" | tr -d ' ') s after power-on, $through; the installer $completed."
    echo "lab: tearing down"
    exit 0
fi

step "rackboot install $LAB_HOST --profile $LAB_PROFILE --power cycle"
"$RB_CLI" install "$LAB_HOST" --profile "$LAB_PROFILE" --power cycle
lab_wait_for 30 lab_state_is "$LAB_HOST" dispatched || die "the install did not reach the agent"
"$RB_CLI" status "$LAB_HOST"

step "$LAB_HOST powered on by its BMC ($FW firmware, QEMU TCG); watch it $([ "$MODE" = image ] && echo deploy || echo install)"
WATCH_LIMIT=300
if [ "$MODE" = image ]; then
    WATCH_LIMIT=1500
    echo "  netboot -> deploy ramdisk -> image written -> reboot -> Debian from disk -> cloud-init phones home"
elif [ "$MODE" = d-i ]; then
    WATCH_LIMIT=600
    echo "  netboot -> d-i -> netcfg static -> preseed -> early_command -> installer steps -> the mirror"
fi
lab_wait_for 60 lab_vm_running || die "the BMC did not power $LAB_HOST on (see $LAB_DIR/bmc/chassis.log)"
LAB_QEMU_T0=$(cat "$LAB_BMC_DIR/powered_on_at")
echo "  \$ rackboot events $LAB_HOST   (the BMC's part)"
"$RB_CLI" events "$LAB_HOST" | grep -E "PHASE|bootdev_set|power_" || true
echo "  console: $LAB_DIR/bmc/serial.log"
if [ "${LAB_CONSOLE:-0}" = 1 ]; then
    tail -n +1 -F "$LAB_DIR/bmc/serial.log" 2>/dev/null | cut -d' ' -f2- | sed 's/^/  console| /' &
    LAB_PIDS="$LAB_PIDS $!"
fi
echo "  \$ rackboot watch $LAB_HOST"
set +e
if [ "$MODE" = d-i ]; then
    # d-i goes as far as the components the mirror must serve, and stops
    # there: the watch ends at that step (failed), or when d-i waits at
    # the mirror's question.
    "$RB_CLI" watch "$LAB_HOST" &
    watch_pid=$!
    LAB_PIDS="$LAB_PIDS $watch_pid"
    lab_wait_for "$WATCH_LIMIT" sh -c "! kill -0 $watch_pid 2>/dev/null || \
        '$RB_CLI' events '$LAB_HOST' | grep -q 'installing.*\(choose-mirror\|download-installer\)'"
    sleep 5
    kill "$watch_pid" 2>/dev/null
    wait "$watch_pid" 2>/dev/null
    echo
    echo "  \$ rackboot events $LAB_HOST"
    "$RB_CLI" events "$LAB_HOST"
    echo
    echo "lab: d-i configured $LAB_HOST_ADDR from the kernel command line, fetched its preseed from the"
    echo "     agent and reported its steps; it stops at the mirror: its .udeb components are not served"
    echo "     by the package mirror this machine reaches (a site needs a full Debian mirror over IPv6)."
    echo "     console: $LAB_DIR/bmc/serial.log"
    echo "lab: tearing down"
    exit 0
fi
timeout "$WATCH_LIMIT" "$RB_CLI" watch "$LAB_HOST"
rc=$?
set -e
T_DONE=$(lab_ts)
[ "$rc" = 0 ] || die "rackboot watch ended with status $rc (see $LAB_DIR/bmc/serial.log and agent.log)"
if [ "$MODE" = install ]; then
    lab_vm_wait_exit 30 || echo "  (the VM did not power off by itself)"
fi
echo
echo "  \$ rackboot status $LAB_HOST"
"$RB_CLI" status "$LAB_HOST"
echo "  \$ rackboot events $LAB_HOST"
"$RB_CLI" events "$LAB_HOST"
echo "  \$ rackboot power status $LAB_HOST"
"$RB_CLI" power status "$LAB_HOST" || true
echo
if [ "$MODE" = image ]; then
    echo "lab: $LAB_HOST deployed and booted from its disk $(lab_rel "$T_DONE") s after power-on."
    echo "  \$ ssh -i $LAB_DIR/id debian@$LAB_HOST_ADDR   (from namespace $LAB_NS_RACK)"
    ok=""
    for _ in $(seq 30); do
        # shellcheck disable=SC2016 # expanded by the deployed host's shell
        if lab_ssh 'echo "  $(whoami)@$(hostname) ($(hostname -f)), up $(cut -d. -f1 /proc/uptime) s"; ip -6 addr show scope global | sed "s/^/  /"'; then
            ok=1
            break
        fi
        sleep 2
    done
    [ -n "$ok" ] || die "no SSH login to $LAB_HOST_ADDR"
    lab_ssh 'sudo -n systemctl poweroff' >/dev/null 2>&1 || true
    lab_vm_wait_exit 60 || true
else
    echo "lab: $LAB_HOST installed $(lab_rel "$T_DONE") s after power-on; its next boot gets no DHCPv6 answer."
fi
echo "lab: tearing down"

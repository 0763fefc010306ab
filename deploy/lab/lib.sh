# shellcheck shell=bash
# rackboot lab library: one IPv6-only rack on one machine, in network
# namespaces. Sourced (bash) by deploy/lab/run.sh and tests/e2e/*.sh.
#
#   netns $LAB_NS_CTL   "the fleet side"
#     up0 2001:db8:ff::10/64   rackboot-controller (agents: tls+tcp://[2001:db8:ff::10]:7443,
#                              API: ipc://$LAB_DIR/api.sock, reachable from every namespace)
#                              origin mirror (python3 http.server) [2001:db8:ff::10]:8080
#        |  veth (the agent's uplink; lab_uplink_down/up cut and restore it)
#     up1 2001:db8:ff::1/64
#   netns $LAB_NS_RACK  "the rack"
#     rackboot-agent: DHCPv6 on br0, HTTP [::]:80, TFTP [::]:69, advertises 2001:db8:1::1
#     radvd on br0: prefix 2001:db8:1::/64 with M, O and A flags
#     br0 2001:db8:1::1/64
#      |-- tap0    QEMU's NIC (lab_boot_vm, or the BMC's power-on)
#      `-- vh0     <-> eth0 in netns $LAB_NS_HOST (lab_host_ns: a plain Linux "host")
#     mgmt0 2001:db8:2::1/64, the management link (lab_bmc_start, bmc.sh)
#        |  veth
#   netns $LAB_NS_BMC   "the host's BMC"
#     eth0 2001:db8:2::17/64   ipmi_sim: IPMI 2.0 [2001:db8:2::17]:623, powers QEMU on and off
#   netns $LAB_NS_RACK2 "the rack's second agent" (a redundant pair: lab_pair_net_up)
#     eth0 2001:db8:1::2/64    rackboot-agent "$LAB_RACK/2" (veth vr2 in br0), keepalived
#
# Only documentation addresses (2001:db8::/32), no IPv4, no route out of the
# namespaces: nothing touches the machine's own interfaces.
#
# The fake installer (lab_build_installer): a Debian kernel, downloaded once
# into $LAB_CACHE (apt-get download + dpkg -x), and a busybox-static initrd
# whose /init (installer-init.sh) behaves like Anaconda where it matters.
#
# Everything started here is recorded by pid; lab_cleanup (put it in an EXIT
# trap) stops those pids, anything left inside the lab's namespaces, and
# deletes the namespaces. Every wait is bounded.

LAB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/lib/debpkg.sh
. "$LAB_LIB_DIR/../lib/debpkg.sh"

# ---- names, addresses, paths (override before lab_init) -------------------
LAB_ID=${LAB_ID:-$$}
LAB_NS_RACK=${LAB_NS_RACK:-rb-rack-$LAB_ID}
LAB_NS_CTL=${LAB_NS_CTL:-rb-ctl-$LAB_ID}
LAB_NS_HOST=${LAB_NS_HOST:-rb-host-$LAB_ID}
LAB_NS_RACK2=${LAB_NS_RACK2:-rb-rack2-$LAB_ID}
LAB_CACHE=${LAB_CACHE:-/var/cache/rackboot-e2e}

LAB_BR=br0
LAB_TAP=tap0
LAB_AGENT_ADDR=2001:db8:1::1          # br0: the address hosts use (boot URLs, gateway)
LAB_RACK_PLEN=64
LAB_DNS=2001:db8:1::53                # handed out, nobody answers (no DNS needed)
LAB_UP_AGENT=2001:db8:ff::1           # up1, rack side of the uplink
LAB_UP_CTL=2001:db8:ff::10            # up0, controller and origin mirror
LAB_CTL_PORT=7443
LAB_ORIGIN_PORT=8080
LAB_CTL_NAME=ctl.lab.rackboot.test    # the controller certificate's DNS name
LAB_RACK=${LAB_RACK:-lab1}
LAB_PROFILE=${LAB_PROFILE:-lab}

# The rack's service address ([agent] service_address): when set, the boot
# scripts, kickstarts and progress URLs name it instead of the agent's own
# address (a redundant pair moves it with VRRP: tests/e2e/agent_pair.sh).
LAB_SERVICE_ADDR=${LAB_SERVICE_ADDR:-}

LAB_HOST=${LAB_HOST:-web17}
LAB_HOST_MAC=${LAB_HOST_MAC:-52:54:00:12:34:56}
LAB_HOST_ADDR=${LAB_HOST_ADDR:-2001:db8:1::17}
# SMBIOS UUID of the VM: iPXE and EDK2 build their DUID-UUID from it (without
# -uuid every VM has the same all-zero DUID).
LAB_VM_UUID=${LAB_VM_UUID:-6a1f0c2e-0000-4000-8000-525400123456}
# Big enough that sending it takes the agent a few seconds under TCG, so its
# stage2 progress shows the quarters on the way (it looks every 0.5 s).
LAB_STAGE2_SIZE=${LAB_STAGE2_SIZE:-$((64 * 1024 * 1024))}

LAB_OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
LAB_OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
LAB_IPXE_ROM=/usr/lib/ipxe/qemu/efi-virtio.rom   # qemu's default ROM for virtio-net-pci
LAB_IPXE_EFI=/usr/lib/ipxe/ipxe.efi

# Binaries: set by the caller (tests pass $<TARGET_FILE:...>, run.sh its build).
RB_AGENT=${RB_AGENT:-}
RB_CONTROLLER=${RB_CONTROLLER:-}
RB_CLI=${RB_CLI:-}
RB_PKI=${RB_PKI:-}

LAB_DIR=""
LAB_NAMESPACES=""
LAB_PIDS=""
LAB_QEMU_T0=""
LAB_QEMU_WRAPPER=""
LAB_CTL_PID=""
LAB_AGENT_PID=""
LAB_AGENT2_PID=""
LAB_KEEPALIVED_PIDS=""

# ---- messages -----------------------------------------------------------------
lab_ts() { date +%s.%N; }

# lab_say TEXT: a step, stamped with the wall clock.
lab_say() {
    printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"
}

# lab_rel EPOCH [T0]: seconds since T0 (default: the last QEMU start), "%7.2f".
lab_rel() {
    if [ -n "${1:-}" ]; then
        awk -v a="$1" -v b="${2:-$LAB_QEMU_T0}" 'BEGIN { printf "%7.2f", a - b }'
    else
        printf '%7s' "-"
    fi
}

# lab_dump_logs: the logs that tell what happened, for failure messages.
lab_dump_logs() {
    local f more=()
    [ -n "$LAB_DIR" ] || return 0
    # LAB_EXTRA_LOGS: a test's own daemons' logs, names in $LAB_DIR
    for f in ${LAB_EXTRA_LOGS:-}; do
        more+=("$LAB_DIR/$f")
    done
    for f in "$LAB_DIR"/controller.log "$LAB_DIR"/agent.log "$LAB_DIR"/origin.log \
        "$LAB_DIR"/serial*.log "$LAB_DIR"/dhclient.out "$LAB_DIR"/bmc/chassis.log \
        "$LAB_DIR"/bmc/serial.log "${more[@]}"; do
        [ -s "$f" ] || continue
        echo "---- $f (last ${LAB_DUMP_LINES:-40} lines)"
        tail -n "${LAB_DUMP_LINES:-40}" "$f" | cut -c1-240
    done
}

# ---- what the machine has -------------------------------------------------------
# lab_missing WHAT...: prints one line per missing facility (empty: all there).
# WHAT: net (root, ip netns, tun, radvd), qemu, bios, uefi, uefi-pxe,
# uefi-http, uki (the agent's UKI builder: stub, objcopy), installer (what lab_build_installer needs), dhclient, keepalived, bmc (ipmi_sim,
# ipmitool, QEMU's ipmi-bmc-extern: bmc.sh).
lab_missing() {
    local w
    for w in "$@"; do
        case "$w" in
        net)
            [ "$(id -u)" = 0 ] || echo "needs root"
            command -v ip >/dev/null || echo "no ip(8)"
            command -v radvd >/dev/null || echo "radvd not installed"
            command -v python3 >/dev/null || echo "python3 not installed"
            command -v curl >/dev/null || echo "curl not installed"
            if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
                if ip netns add "rb-probe-$$" 2>/dev/null; then
                    ip netns del "rb-probe-$$"
                else
                    echo "ip netns unavailable"
                fi
            fi
            ;;
        qemu)
            [ -c /dev/net/tun ] || echo "no /dev/net/tun"
            command -v qemu-system-x86_64 >/dev/null || echo "qemu-system-x86_64 not installed"
            ;;
        bios)
            [ -r "$LAB_IPXE_ROM" ] || echo "$LAB_IPXE_ROM missing (package ipxe-qemu)"
            ;;
        uefi)
            [ -r "$LAB_IPXE_ROM" ] || echo "$LAB_IPXE_ROM missing (package ipxe-qemu)"
            [ -r "$LAB_OVMF_CODE" ] && [ -r "$LAB_OVMF_VARS" ] || echo "OVMF missing (package ovmf)"
            ;;
        uefi-pxe)
            [ -r "$LAB_OVMF_CODE" ] && [ -r "$LAB_OVMF_VARS" ] || echo "OVMF missing (package ovmf)"
            [ -r "$LAB_IPXE_EFI" ] || echo "$LAB_IPXE_EFI missing (package ipxe)"
            ;;
        uefi-http)
            [ -r "$LAB_OVMF_CODE" ] && [ -r "$LAB_OVMF_VARS" ] || echo "OVMF missing (package ovmf)"
            ;;
        tcpdump)
            command -v tcpdump >/dev/null || echo "tcpdump not installed"
            ;;
        uki)
            # what the agent builds a host's kernel image from (rack-agent/uki/)
            [ -r /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] ||
                echo "systemd's EFI stub missing (package systemd-boot-efi)"
            command -v objcopy >/dev/null || echo "objcopy missing (package binutils)"
            ;;
        installer)
            # (ldd fails on a static binary: "not a dynamic executable")
            [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 ||
                echo "static /bin/busybox missing (package busybox-static)"
            command -v cpio >/dev/null || echo "cpio not installed"
            command -v dpkg >/dev/null || echo "dpkg missing"
            command -v apt-get >/dev/null || echo "apt-get missing"
            ;;
        keepalived)
            command -v keepalived >/dev/null || echo "keepalived not installed"
            ;;
        dhclient)
            command -v dhclient >/dev/null || echo "dhclient not installed (isc-dhcp-client)"
            ;;
        bmc)
            lab_bmc_missing
            ;;
        esac
    done
}

# ---- tests ---------------------------------------------------------------------------
# lab_fail TEXT: the test's FAIL line ($TEST_NAME), the logs, exit 1 (the
# EXIT trap cleans up).
lab_fail() {
    echo "FAIL: $TEST_NAME: $*"
    lab_dump_logs
    exit 1
}

# lab_test_start MISSING: the start of an end-to-end test ($TEST_NAME, the
# binaries $RB_*): SKIP (exit 77) when MISSING (lab_missing's lines) is not
# empty, FAIL when a binary is not built; then a fresh work directory under
# /tmp, cleaned up on exit. Sets T_START.
lab_test_start() {
    local b
    if [ -n "$1" ]; then
        echo "SKIP: $TEST_NAME: $(echo "$1" | paste -sd ';' | sed 's/;/; /g')"
        exit 77
    fi
    for b in "$RB_AGENT" "$RB_CONTROLLER" "$RB_CLI" "$RB_PKI"; do
        [ -x "$b" ] || { echo "FAIL: $TEST_NAME: $b is not built"; exit 1; }
    done
    # shellcheck disable=SC2034 # the test's
    T_START=$(lab_ts)
    lab_init "$(mktemp -d "/tmp/rackboot-$TEST_NAME.XXXXXX")"
    trap lab_cleanup EXIT
    trap 'exit 130' INT TERM
}

# ---- lifecycle --------------------------------------------------------------------
# lab_init DIR: the work directory (logs, configs, state), created empty.
lab_init() {
    LAB_DIR=$1
    rm -rf "$LAB_DIR"
    mkdir -p "$LAB_DIR"
    chmod 755 "$LAB_DIR"
}

# lab_spawn NAME NS CMD...: CMD in the background inside NS (or "-" for this
# namespace), output to $LAB_DIR/NAME.log; the pid is remembered and echoed
# into $LAB_DIR/NAME.pid. `ip netns exec` execs, so $! is CMD itself.
lab_spawn() {
    local name=$1 ns=$2
    shift 2
    if [ "$ns" = - ]; then
        "$@" >>"$LAB_DIR/$name.log" 2>&1 </dev/null &
    else
        ip netns exec "$ns" "$@" >>"$LAB_DIR/$name.log" 2>&1 </dev/null &
    fi
    LAB_SPAWNED=$!
    LAB_PIDS="$LAB_PIDS $LAB_SPAWNED"
    echo "$LAB_SPAWNED" >"$LAB_DIR/$name.pid"
}

# lab_stop_pid PID [SECONDS]: SIGTERM, bounded wait, then SIGKILL.
lab_stop_pid() {
    local pid=$1 limit=$(( ${2:-5} * 10 )) i=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        if [ "$i" -ge "$limit" ]; then
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.1
    done
    wait "$pid" 2>/dev/null
    return 0
}

lab_cleanup() {
    local rc=$? pid ns
    trap - EXIT INT TERM
    set +e # (run.sh uses set -e: a kill of a pid already gone must not end the cleanup)
    lab_vm_stop 2>/dev/null
    # keepalived takes a moment to stop (it waits for its VRRP child):
    # stopped first, with time, rather than SIGKILLed after the short
    # grace below.
    for pid in $LAB_KEEPALIVED_PIDS; do
        lab_stop_pid "$pid" 5
    done
    LAB_KEEPALIVED_PIDS=""
    for pid in $LAB_PIDS; do
        kill -TERM "$pid" 2>/dev/null
    done
    for ns in $LAB_NAMESPACES; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -TERM "$pid" 2>/dev/null
        done
    done
    sleep 0.3
    for pid in $LAB_PIDS; do
        kill -KILL "$pid" 2>/dev/null
    done
    for ns in $LAB_NAMESPACES; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null
        done
        ip netns del "$ns" 2>/dev/null
        rm -rf "/etc/netns/$ns"
    done
    LAB_NAMESPACES=""
    wait 2>/dev/null
    if [ -n "$LAB_DIR" ] && [ "${KEEP_TMP:-0}" != 1 ] && [ "${LAB_KEEP:-0}" != 1 ]; then
        rm -rf "$LAB_DIR"
    elif [ -n "$LAB_DIR" ]; then
        echo "lab: kept $LAB_DIR"
    fi
    return "$rc"
}

# lab_wait_for SECONDS CMD...: polls CMD every 0.2 s until it succeeds.
lab_wait_for() {
    local limit=$(( $1 * 5 )) i=0
    shift
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -ge "$limit" ] && return 1
        sleep 0.2
    done
    return 0
}

# ---- network ------------------------------------------------------------------------
lab_new_ns() {
    if ip netns list | awk '{ print $1 }' | grep -qxF -- "$1"; then
        echo "lab: network namespace $1 exists already (a previous run?); remove it with: ip netns del $1" >&2
        return 1
    fi
    # A resolv.conf of the namespace's own (ip netns exec bind-mounts
    # /etc/netns/NAME/*), so no client in it can touch the machine's.
    mkdir -p "/etc/netns/$1" && : >"/etc/netns/$1/resolv.conf"
    ip netns add "$1" || return 1
    LAB_NAMESPACES="$LAB_NAMESPACES $1"
    ip -n "$1" link set lo up
    # No duplicate address detection: addresses are usable at once. Keep
    # addresses on a link that goes down (lab_uplink_down/up).
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
        net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.keep_addr_on_down=1 \
        net.ipv6.conf.default.keep_addr_on_down=1
}

# lab_net_up: both namespaces, the uplink, br0 + tap0, radvd.
lab_net_up() {
    lab_new_ns "$LAB_NS_CTL" || return 1
    lab_new_ns "$LAB_NS_RACK" || return 1
    local r=$LAB_NS_RACK c=$LAB_NS_CTL
    ip -n "$r" link add up1 type veth peer name up0 netns "$c" || return 1
    ip -n "$r" addr add "$LAB_UP_AGENT/64" dev up1 nodad
    ip -n "$c" addr add "$LAB_UP_CTL/64" dev up0 nodad
    ip -n "$r" link set up1 up
    ip -n "$c" link set up0 up

    # The rack link: no STP, no forwarding delay, no MLD snooping (RA and
    # DHCPv6 multicast always flood).
    ip -n "$r" link add "$LAB_BR" type bridge stp_state 0 forward_delay 0 mcast_snooping 0 || return 1
    ip -n "$r" addr add "$LAB_AGENT_ADDR/$LAB_RACK_PLEN" dev "$LAB_BR" nodad
    ip -n "$r" tuntap add dev "$LAB_TAP" mode tap || return 1
    ip -n "$r" link set "$LAB_TAP" master "$LAB_BR" up
    ip -n "$r" link set "$LAB_BR" up

    # radvd: the rack's router advertisements, M (addresses from DHCPv6),
    # O (other configuration, the boot file URL, from DHCPv6) and A (SLAAC
    # allowed, as in real racks: iPXE and installers may use it too;
    # LAB_RA_AUTONOMOUS=off leaves a host no SLAAC address: its only global
    # address is the one it configures itself).
    ip netns exec "$r" sysctl -qw net.ipv6.conf.all.forwarding=1
    cat >"$LAB_DIR/radvd.conf" <<EOR
interface $LAB_BR {
    AdvSendAdvert on;
    AdvManagedFlag ${LAB_RA_MANAGED:-on};
    AdvOtherConfigFlag on;
    MinRtrAdvInterval 3;
    MaxRtrAdvInterval 10;
    prefix 2001:db8:1::/64 { AdvOnLink on; AdvAutonomous ${LAB_RA_AUTONOMOUS:-on}; };
};
EOR
    lab_spawn radvd "$r" radvd -n -C "$LAB_DIR/radvd.conf" -p "$LAB_DIR/radvd.ownpid" -m stderr
    lab_wait_for 5 test -s "$LAB_DIR/radvd.ownpid" || { echo "lab: radvd did not start" >&2; return 1; }
    # Both ends see each other before anything dials.
    lab_wait_for 5 ip netns exec "$r" ping -6 -c1 -W1 "$LAB_UP_CTL" ||
        { echo "lab: the uplink does not pass packets" >&2; return 1; }
}

# lab_uplink_down / lab_uplink_up: cut and restore the agent's link to the
# controller (the rack side of the veth; addresses stay, keep_addr_on_down).
lab_uplink_down() { ip -n "$LAB_NS_RACK" link set up1 down; }
lab_uplink_up() {
    ip -n "$LAB_NS_RACK" link set up1 up
    lab_wait_for 10 ip netns exec "$LAB_NS_RACK" ping -6 -c1 -W1 "$LAB_UP_CTL"
}

# lab_host_ns: a plain Linux "host" on the rack link (veth into br0), eth0
# with $LAB_HOST_MAC, no SLAAC, nothing configured yet.
lab_host_ns() {
    lab_new_ns "$LAB_NS_HOST" || return 1
    ip -n "$LAB_NS_RACK" link add vh0 type veth peer name eth0 netns "$LAB_NS_HOST" || return 1
    ip -n "$LAB_NS_HOST" link set eth0 address "$LAB_HOST_MAC"
    ip netns exec "$LAB_NS_HOST" sysctl -qw net.ipv6.conf.eth0.autoconf=0
    ip -n "$LAB_NS_RACK" link set vh0 master "$LAB_BR" up
    ip -n "$LAB_NS_HOST" link set eth0 up
}

# ---- PKI and configuration -------------------------------------------------------------
# lab_pki: a throwaway fleet CA, the controller's and the agent's certificates.
# The user both daemons drop to once they have bound their ports
# ([agent] user, [controller] user), created as the packages do.
LAB_USER=${LAB_USER:-rackboot}
lab_service_user() {
    getent group "$LAB_USER" >/dev/null || groupadd --system "$LAB_USER" || return 1
    id "$LAB_USER" >/dev/null 2>&1 ||
        useradd --system --gid "$LAB_USER" --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$LAB_USER"
}

# lab_uid_of PID: the real uid a process runs as.
lab_uid_of() {
    awk '$1 == "Uid:" { print $2 }' "/proc/$1/status" 2>/dev/null
}

lab_pki() {
    local d=$LAB_DIR/pki
    lab_service_user || return 1
    "$RB_PKI" --dir "$d" init --name rackboot-lab-ca >/dev/null &&
        "$RB_PKI" --dir "$d" issue controller "$LAB_CTL_NAME" >/dev/null &&
        "$RB_PKI" --dir "$d" issue agent "$LAB_RACK" >/dev/null || return 1
    # The daemons read their keys again (CRL reloads, reconnects) as
    # $LAB_USER: theirs, mode 0600. The CA's key stays root's.
    chmod 0711 "$d" && chown -R "$LAB_USER:" "$d/controller" "$d/agent"
}

lab_write_configs() {
    local d=$LAB_DIR/pki
    mkdir -p "$LAB_DIR/ctl-state" "$LAB_DIR/agent-state"
    cat >"$LAB_DIR/controller.conf" <<EOC
[controller]
state_dir = $LAB_DIR/ctl-state
user = $LAB_USER
agents_listen = tls+tcp://[$LAB_UP_CTL]:$LAB_CTL_PORT
api_listen = ipc://$LAB_DIR/api.sock
log_level = ${LAB_CTL_LOG_LEVEL:-info}

[pki]
ca = $d/ca.crt
cert = $d/controller/$LAB_CTL_NAME.crt
key = $d/controller/$LAB_CTL_NAME.key
crl = $d/crl.pem

[installs]
boot_timeout = 900
install_timeout = 900
EOC
    cat >"$LAB_DIR/agent.conf" <<EOC
[agent]
rack = $LAB_RACK
state_dir = $LAB_DIR/agent-state
user = $LAB_USER
advertise_address = $LAB_AGENT_ADDR
gateway = $LAB_AGENT_ADDR
log_level = ${LAB_AGENT_LOG_LEVEL:-info}${LAB_SERVICE_ADDR:+
service_address = $LAB_SERVICE_ADDR}

[http]
listen = [::]:80

[dhcp6]
interfaces = $LAB_BR
dns_servers = $LAB_DNS
domain_search = lab.rackboot.test

[tftp]
listen = [::]:69

[controller]
url = tls+tcp://[$LAB_UP_CTL]:$LAB_CTL_PORT
server_name = $LAB_CTL_NAME
ca = $d/ca.crt
cert = $d/agent/$LAB_RACK.crt
key = $d/agent/$LAB_RACK.key
crl = $d/crl.pem
sync_wait = ${LAB_SYNC_WAIT:-10}
EOC
    # The deploy ramdisk image profiles boot (lab_build_ramdisk).
    if [ -n "${LAB_RAMDISK:-}" ]; then
        printf '\n[deploy]\nramdisk = %s\n' "$LAB_RAMDISK" >>"$LAB_DIR/agent.conf"
    fi
    # Each is checked where it will run: the agent's check looks for its
    # interfaces and listen addresses in the rack's namespace.
    ip netns exec "$LAB_NS_CTL" "$RB_CONTROLLER" --config "$LAB_DIR/controller.conf" \
        --check-config >/dev/null &&
        ip netns exec "$LAB_NS_RACK" "$RB_AGENT" --config "$LAB_DIR/agent.conf" \
            --check-config >/dev/null
}

# lab_rb ARGS...: the rackboot CLI against the lab's controller (the API is
# an ipc:// socket file, reachable from any network namespace).
lab_rb() {
    "$RB_CLI" --controller "ipc://$LAB_DIR/api.sock" "$@"
}

# ---- daemons ----------------------------------------------------------------------------
lab_start_controller() {
    lab_spawn controller "$LAB_NS_CTL" "$RB_CONTROLLER" --config "$LAB_DIR/controller.conf"
    LAB_CTL_PID=$LAB_SPAWNED
    lab_wait_for 10 test -S "$LAB_DIR/api.sock" || { echo "lab: controller did not start" >&2; return 1; }
    # The API answers, the agents' port listens.
    lab_wait_for 10 lab_rb racks || { echo "lab: controller API does not answer" >&2; return 1; }
    lab_wait_for 10 sh -c "ip netns exec $LAB_NS_CTL ss -Hltn | grep -qF ':$LAB_CTL_PORT '" ||
        { echo "lab: controller does not listen for agents" >&2; return 1; }
    [ "$(lab_uid_of "$LAB_CTL_PID")" = "$(id -u "$LAB_USER")" ] ||
        { echo "lab: controller does not run as $LAB_USER" >&2; return 1; }
}

lab_stop_controller() {
    lab_stop_pid "$LAB_CTL_PID" 10
    LAB_CTL_PID=""
}

lab_agent_log_count() {
    local n
    n=$(grep -c -- "$1" "$LAB_DIR/agent.log" 2>/dev/null)
    echo "${n:-0}"
}

# lab_start_agent: starts it and waits until it is ready and has synced with
# the controller (a "generation=... persisted" line after this start).
lab_start_agent() {
    local ready synced
    ready=$(lab_agent_log_count "rackboot-agent: ready")
    synced=$(lab_agent_log_count "uplink: connected")
    lab_spawn agent "$LAB_NS_RACK" "$RB_AGENT" --config "$LAB_DIR/agent.conf"
    LAB_AGENT_PID=$LAB_SPAWNED
    lab_wait_for 15 lab_log_grew agent.log "rackboot-agent: ready" "$ready" ||
        { echo "lab: agent not ready" >&2; return 1; }
    lab_wait_for 30 lab_log_grew agent.log "uplink: connected" "$synced" ||
        { echo "lab: agent did not connect to the controller" >&2; return 1; }
    [ "$(lab_uid_of "$LAB_AGENT_PID")" = "$(id -u "$LAB_USER")" ] ||
        { echo "lab: agent does not run as $LAB_USER" >&2; return 1; }
}

lab_stop_agent() {
    lab_stop_pid "$LAB_AGENT_PID" 10
    LAB_AGENT_PID=""
}

# lab_log_grew FILE PATTERN COUNT: more lines match PATTERN than COUNT.
lab_log_grew() {
    local n
    n=$(grep -c -- "$2" "$LAB_DIR/$1" 2>/dev/null)
    [ "${n:-0}" -gt "$3" ]
}

# lab_metric NAME: the agent's /metrics value (integer part), from the rack.
lab_metric() {
    ip netns exec "$LAB_NS_RACK" curl -gsS -m 5 "http://[$LAB_AGENT_ADDR]/metrics" |
        awk -v n="$1" '$1 == n { printf "%d\n", $2; found = 1 } END { exit !found }'
}

# lab_start_origin: the profile's images' origin, a plain web server on the
# fleet side ($LAB_DIR/origin), as a distribution mirror would be.
lab_start_origin() {
    mkdir -p "$LAB_DIR/origin"
    lab_spawn origin "$LAB_NS_CTL" python3 -u -m http.server --bind "$LAB_UP_CTL" \
        --directory "$LAB_DIR/origin" "$LAB_ORIGIN_PORT"
    lab_wait_for 10 sh -c "ip netns exec $LAB_NS_CTL ss -Hltn | grep -qF ':$LAB_ORIGIN_PORT '" ||
        { echo "lab: origin web server did not start" >&2; return 1; }
}

# ---- the rack's second agent: a redundant pair -------------------------------------------------
# tests/e2e/agent_pair.sh and run.sh pair. Agent 2 ("$LAB_RACK/2", the
# certificate agent/$LAB_RACK@2) in its own namespace $LAB_NS_RACK2, on the
# rack link (veth vr2 in br0) at $LAB_AGENT2_ADDR; both agents have
# `service_address = $LAB_SERVICE_ADDR` (set it before lab_write_configs),
# which keepalived (VRRPv3, the configuration deploy/HA.md gives) holds on
# agent 1 (priority 150) or, when agent 1's /healthz fails, agent 2 (100).
LAB_AGENT2_ADDR=2001:db8:1::2
LAB_AGENT2_IF=eth0
LAB_VRID=17

# lab_pair_net_up: after lab_net_up, agent 2's namespace: a static address
# and a default route via the rack's router ($LAB_AGENT_ADDR), as a real
# agent has (no SLAAC from radvd), and the controller's route back to the
# rack's prefix.
lab_pair_net_up() {
    local n=$LAB_NS_RACK2 i=$LAB_AGENT2_IF
    lab_new_ns "$n" || return 1
    ip -n "$LAB_NS_RACK" link add vr2 type veth peer name "$i" netns "$n" ||
        { echo "lab: no veth from $LAB_NS_RACK to $n" >&2; return 1; }
    ip -n "$LAB_NS_RACK" link set vr2 master "$LAB_BR" up
    ip netns exec "$n" sysctl -qw "net.ipv6.conf.$i.accept_ra=0" "net.ipv6.conf.$i.autoconf=0"
    ip -n "$n" addr add "$LAB_AGENT2_ADDR/$LAB_RACK_PLEN" dev "$i" nodad
    ip -n "$n" link set "$i" up
    ip -n "$n" route add default via "$LAB_AGENT_ADDR" ||
        { echo "lab: no default route in $n" >&2; return 1; }
    ip -n "$LAB_NS_CTL" route add 2001:db8:1::/64 via "$LAB_UP_AGENT" ||
        { echo "lab: no route to the rack in $LAB_NS_CTL" >&2; return 1; }
    lab_wait_for 10 ip netns exec "$n" ping -6 -c1 -W1 "$LAB_UP_CTL" ||
        { echo "lab: $n cannot reach the controller's address" >&2; return 1; }
}

# lab_pair_pki: after lab_pki, agent 2's certificate (rackboot-pki issue
# agent $LAB_RACK --instance 2), its user's.
lab_pair_pki() {
    local f
    "$RB_PKI" --dir "$LAB_DIR/pki" issue agent "$LAB_RACK" --instance 2 >/dev/null ||
        { echo "lab: rackboot-pki issue agent $LAB_RACK --instance 2 failed" >&2; return 1; }
    for f in crt key; do
        [ -s "$LAB_DIR/pki/agent/$LAB_RACK@2.$f" ] ||
            { echo "lab: no agent/$LAB_RACK@2.$f: $(ls "$LAB_DIR/pki/agent")" >&2; return 1; }
    done
    chown -R "$LAB_USER:" "$LAB_DIR/pki/agent"
}

# lab_write_agent2_config: after lab_write_configs, $LAB_DIR/agent2.conf:
# agent 1's but for its state, address, link, certificate and DHCPv6
# preference (the gateway stays the rack's router), checked in its
# namespace.
lab_write_agent2_config() {
    mkdir -p "$LAB_DIR/agent2-state"
    sed -e "s|^state_dir = .*|state_dir = $LAB_DIR/agent2-state|" \
        -e "s|^advertise_address = .*|advertise_address = $LAB_AGENT2_ADDR|" \
        -e "s|^interfaces = .*|interfaces = $LAB_AGENT2_IF\npreference = 100|" \
        -e "s|^cert = .*/agent/.*|cert = $LAB_DIR/pki/agent/$LAB_RACK@2.crt|" \
        -e "s|^key = .*/agent/.*|key = $LAB_DIR/pki/agent/$LAB_RACK@2.key|" \
        "$LAB_DIR/agent.conf" >"$LAB_DIR/agent2.conf"
    ip netns exec "$LAB_NS_RACK2" "$RB_AGENT" --config "$LAB_DIR/agent2.conf" --check-config \
        >"$LAB_DIR/agent2-check.out" 2>&1 ||
        { echo "lab: agent2.conf: $(cat "$LAB_DIR/agent2-check.out")" >&2; return 1; }
}

# lab_start_agent2: agent 2 started (log agent2.log), ready, connected to
# the controller, running as $LAB_USER.
lab_start_agent2() {
    lab_spawn agent2 "$LAB_NS_RACK2" "$RB_AGENT" --config "$LAB_DIR/agent2.conf"
    LAB_AGENT2_PID=$LAB_SPAWNED
    lab_wait_for 15 lab_log_grew agent2.log "rackboot-agent: ready" 0 ||
        { echo "lab: agent 2 not ready" >&2; return 1; }
    lab_wait_for 30 lab_log_grew agent2.log "uplink: connected" 0 ||
        { echo "lab: agent 2 did not connect to the controller" >&2; return 1; }
    [ "$(lab_uid_of "$LAB_AGENT2_PID")" = "$(id -u "$LAB_USER")" ] ||
        { echo "lab: agent 2 does not run as $LAB_USER" >&2; return 1; }
}

# lab_agent_cached LOG: the agent of LOG ($LAB_DIR/LOG) logged each of the
# installer profile's images as stored in its cache.
lab_agent_cached() {
    local f
    for f in vmlinuz initrd.img squashfs.img; do
        grep -q "cache stored object=.* url=http://\[$LAB_UP_CTL\]:$LAB_ORIGIN_PORT/$f " "$LAB_DIR/$1" ||
            return 1
    done
}

# lab_agent_served LOG: what the agent of LOG served the host, a line per
# request (its HTTP log lines, but for keepalived's health checks and
# /metrics).
lab_agent_served() {
    grep -E "http (GET|POST) " "$LAB_DIR/$1" | grep -Ev "http GET /(healthz|metrics) " |
        sed -E 's/.*(http [A-Z]+ [^ ]*) status=([0-9]+) bytes=([0-9]+).*/  \1 \2 \3 bytes/' | cut -c1-140
}

# lab_kill_agent: SIGKILLs agent 1 (nothing it has not written survives).
lab_kill_agent() {
    kill -KILL "$LAB_AGENT_PID" || return 1
    wait "$LAB_AGENT_PID" 2>/dev/null
    LAB_AGENT_PID=""
}

# lab_keepalived_conf N INTERFACE PRIORITY NS: $LAB_DIR/keepalived<N>.conf,
# the configuration deploy/HA.md gives operators, but for the names,
# checked with keepalived -t in NS.
lab_keepalived_conf() {
    cat >"$LAB_DIR/keepalived$1.conf" <<EOK
global_defs {
    # the health check runs unprivileged; keepalived refuses a script
    # a non-root user could replace
    script_user nobody nogroup
    enable_script_security
}

# The local agent answers: its HTTP server is up (GET /healthz says ok).
vrrp_script rackboot_agent {
    script "/usr/bin/curl -gsf -m 1 -o /dev/null http://[::1]:80/healthz"
    interval 1
    timeout 2
    fall 1
    rise 1
}

vrrp_instance rack_$LAB_RACK {
    state BACKUP
    interface $2
    virtual_router_id $LAB_VRID
    priority $3
    advert_int 0.5
    virtual_ipaddress {
        $LAB_SERVICE_ADDR/$LAB_RACK_PLEN
    }
    track_script {
        rackboot_agent
    }
}
EOK
    # keepalived -t checks it where it will run, but with script_user root:
    # 2.2.7 SIGTERMs itself testing a configuration whose scripts run as
    # another user (keepalived issue #2617, fixed after 2.2.7); the daemon
    # itself is fine with it.
    sed 's/^\( *script_user\) .*/\1 root/' "$LAB_DIR/keepalived$1.conf" >"$LAB_DIR/keepalived$1.test.conf"
    ip netns exec "$4" keepalived -t -f "$LAB_DIR/keepalived$1.test.conf" >"$LAB_DIR/keepalived$1.check" 2>&1 ||
        { echo "lab: keepalived -t: keepalived$1.conf: $(cat "$LAB_DIR/keepalived$1.check")" >&2; return 1; }
}

# lab_keepalived_start N NS: in the foreground of lab_spawn (-n), VRRP only
# (-P), logging to its log file keepalived<N>.log (-l -D, no syslog -G), pid
# files in $LAB_DIR (not keepalived<N>.pid: lab_spawn's, which keepalived
# would take for another keepalived running), its state dumps (SIGUSR1:
# keepalived.data in $TMPDIR) in keepalived<N>.tmp/. lab_cleanup stops it.
lab_keepalived_start() {
    local k=$LAB_DIR/keepalived$1
    mkdir -p "$k.tmp"
    lab_spawn "keepalived$1" "$2" env TMPDIR="$k.tmp" keepalived -n -P -l -D -G -f "$k.conf" \
        -p "$k-main.pid" -r "$k-vrrp.pid" -c "$k-checkers.pid"
    LAB_KEEPALIVED_PIDS="$LAB_KEEPALIVED_PIDS $LAB_SPAWNED"
}

# lab_keepalived_state N: keepalived N's instance as it sees it now: its
# state and, when it has heard a master, that master's priority ("BACKUP
# 150"), from the state dump it writes on SIGUSR1 (read here as soon as it
# is written, or the previous signal's).
lab_keepalived_state() {
    local k=$LAB_DIR/keepalived$1
    kill -USR1 "$(cat "$k.pid")" 2>/dev/null
    awk '/^ VRRP Instance = / { i = 1; next }
        i && /^   State = / && s == "" { s = $3 }
        i && /^   Master priority = / && p == "" { p = $4 }
        END { print s (p != "" ? " " p : "") }' "$k.tmp/keepalived.data" 2>/dev/null
}

# lab_keepalived_backup_of N PRIORITY: keepalived N is BACKUP and has heard
# a master advertising PRIORITY. (A BACKUP that hears no master takes over
# after its master down interval; the "Entering BACKUP STATE" of its log
# comes before it has heard anyone.)
lab_keepalived_backup_of() {
    [ "$(lab_keepalived_state "$1")" = "BACKUP $2" ]
}

# lab_has_vip NS: the service address is configured in NS.
lab_has_vip() {
    ip -n "$1" -6 -o addr show | grep -qF " $LAB_SERVICE_ADDR/"
}

# lab_pair_keepalived_up: keepalived for both agents (1: priority 150 on
# br0, 2: 100 on its link), the service address on agent 1 within 15 s,
# agent 2's keepalived its backup (it hears agent 1's adverts) within 15 s,
# and the address not on agent 2.
lab_pair_keepalived_up() {
    lab_keepalived_conf 1 "$LAB_BR" 150 "$LAB_NS_RACK" || return 1
    lab_keepalived_conf 2 "$LAB_AGENT2_IF" 100 "$LAB_NS_RACK2" || return 1
    lab_keepalived_start 1 "$LAB_NS_RACK"
    lab_keepalived_start 2 "$LAB_NS_RACK2"
    lab_wait_for 15 lab_has_vip "$LAB_NS_RACK" ||
        { echo "lab: the service address did not come up on agent 1" >&2; return 1; }
    lab_wait_for 15 lab_keepalived_backup_of 2 150 ||
        { echo "lab: keepalived 2 is not the backup of agent 1's (priority 150) within 15 s (state: $(lab_keepalived_state 2))" >&2; return 1; }
    ! lab_has_vip "$LAB_NS_RACK2" ||
        { echo "lab: the service address is on both agents" >&2; return 1; }
}

# ---- the fake installer --------------------------------------------------------------------
# The kernel that Debian's linux-image-amd64 points at.
lab_kernel_version() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/.*Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -n 1
}

# lab_fetch_kernel: $LAB_CACHE/linux-image-KVER/{boot,lib/modules} from
# Debian's package (apt-get download, dpkg -x; no install), once per machine.
# Sets LAB_KVER and LAB_KDIR. Parallel runs wait on a lock.
lab_fetch_kernel() {
    LAB_KVER=${LAB_KVER:-$(lab_kernel_version)}
    if [ -z "$LAB_KVER" ]; then
        echo "lab: cannot tell the kernel of linux-image-amd64 (apt-get update?)" >&2
        return 1
    fi
    LAB_KDIR=$LAB_CACHE/linux-image-$LAB_KVER
    debpkg_extract "linux-image-$LAB_KVER" "$LAB_KDIR" "$LAB_CACHE" || return 1
    [ -f "$LAB_KDIR/.complete" ] && [ -f "$LAB_KDIR/boot/vmlinuz-$LAB_KVER" ]
}

# Debian's kernel has every NIC driver as a module, virtio_pci included;
# insmod order is dependency order (modinfo -F depends):
#   virtio_net <- virtio_ring, virtio, net_failover <- failover
#   virtio_pci <- virtio_ring, virtio, virtio_pci_modern_dev, virtio_pci_legacy_dev
#   e1000      <- (none)
LAB_MODULES="failover net_failover virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_net e1000"

# lab_build_installer DIR: DIR/vmlinuz, DIR/initrd.img (busybox-static,
# NIC modules, installer-init.sh as /init), DIR/squashfs.img (random bytes
# standing in for the stage2 image).
lab_build_installer() {
    local out=$1 root m f moddir
    lab_fetch_kernel || return 1
    moddir=$LAB_KDIR/lib/modules/$LAB_KVER
    mkdir -p "$out"
    root=$(mktemp -d "$LAB_DIR/initrd-root.XXXXXX")
    mkdir -p "$root"/bin "$root"/dev "$root"/proc "$root"/sys "$root"/tmp "$root"/lib/modules "$root"/etc
    cp /bin/busybox "$root/bin/busybox"
    for m in sh mount ip sleep cat echo grep cut insmod wget timeout poweroff sed tr head awk \
        ls wc sha256sum hostname basename readlink tail printf test dmesg; do
        ln -s busybox "$root/bin/$m"
    done
    : >"$root/lib/modules/load.order"
    for m in $LAB_MODULES; do
        f=$(find "$moddir" -name "$m.ko*" | head -n 1)
        [ -n "$f" ] || { echo "lab: module $m not in $moddir" >&2; return 1; }
        case "$f" in
        *.ko.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
        *.ko.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
        *) cp "$f" "$root/lib/modules/$m.ko" ;;
        esac
        echo "$m" >>"$root/lib/modules/load.order"
    done
    install -m 755 "$LAB_LIB_DIR/installer-init.sh" "$root/init"
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) |
        gzip -6 >"$out/initrd.img" || return 1
    # A distribution's initrd has any size. Keep ours off a multiple of 4 so
    # every run covers an overlay initrd that follows it unaligned (UEFI:
    # the kernel's EFI stub loads initrd= files back to back, and the kernel
    # unpacks an uncompressed cpio only at a 4-aligned offset). The kernel
    # skips zero bytes between archives.
    if [ $(($(stat -c %s "$out/initrd.img") % 4)) = 0 ]; then
        printf '\0' >>"$out/initrd.img"
    fi
    rm -rf "$root"
    cp "$LAB_KDIR/boot/vmlinuz-$LAB_KVER" "$out/vmlinuz"
    head -c "$LAB_STAGE2_SIZE" /dev/urandom >"$out/squashfs.img"
}

lab_sha256() { sha256sum "$1" | cut -d' ' -f1; }

# ---- Debian's installer ------------------------------------------------------------------------
LAB_DI_PACKAGE=debian-installer-12-netboot-amd64
LAB_DI_PATH=usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64

# lab_fetch_debian_installer OUT: Debian's netboot installer (the text
# frontend's kernel and initrd from $LAB_DI_PACKAGE, downloaded once into
# $LAB_CACHE) as OUT/di-linux and OUT/di-initrd.gz.
lab_fetch_debian_installer() {
    local dir
    dir=$LAB_CACHE/$LAB_DI_PACKAGE-$(debpkg_version "$LAB_DI_PACKAGE")
    debpkg_extract "$LAB_DI_PACKAGE" "$dir" "$LAB_CACHE" || return 1
    mkdir -p "$1"
    cp "$dir/$LAB_DI_PATH/linux" "$1/di-linux" && cp "$dir/$LAB_DI_PATH/initrd.gz" "$1/di-initrd.gz"
}

# lab_write_di_inputs DIR: hosts.csv and a kind = debian-installer profile
# ($LAB_PROFILE) with the documented preseed template
# (deploy/examples/debian12.preseed), and the SSH key DIR/id.pub when there
# is one. The installer must be on the origin (lab_fetch_debian_installer).
lab_write_di_inputs() {
    local dir=$1 o=$LAB_DIR/origin
    local url="http://[$LAB_UP_CTL]:$LAB_ORIGIN_PORT"
    mkdir -p "$dir"
    lab_write_hosts_csv "$dir"
    cp "$LAB_LIB_DIR/../examples/debian12.preseed" "$dir/debian12.preseed"
    cat >"$dir/profiles.conf" <<EOF
# Debian's netboot installer and a preseed the agent renders per host.
[profile $LAB_PROFILE]
kind = debian-installer
kernel = $url/di-linux sha256=$(lab_sha256 "$o/di-linux")
initrd = $url/di-initrd.gz sha256=$(lab_sha256 "$o/di-initrd.gz")
preseed = debian12.preseed
root_device = /dev/vda
cmdline = console=ttyS0,115200n8
EOF
    if [ -f "$dir/id.pub" ]; then
        echo "ssh_authorized_keys = $(cat "$dir/id.pub")" >>"$dir/profiles.conf"
    fi
}

# ---- image deploys -------------------------------------------------------------------------------
# lab_build_ramdisk DIR: the deploy ramdisk (deploy-ramdisk/build-ramdisk.sh,
# cached by content in ${RACKBOOT_RAMDISK_CACHE:-/var/cache/rackboot/ramdisk};
# parallel runs take turns on the cache's lock, so it is built once) into
# DIR, readable by the agent's user.
lab_build_ramdisk() {
    "$LAB_LIB_DIR/../../deploy-ramdisk/build-ramdisk.sh" "$1" || return 1
    chmod 755 "$1" && chmod 644 "$1/vmlinuz" "$1/initrd.img"
}

# lab_build_image OUT: the Debian 12 image (deploy/images/build-debian.sh,
# cached by content in ${RACKBOOT_IMAGE_CACHE:-/var/cache/rackboot/images};
# the script serialises parallel runs on its cache's lock, so two tests
# build it once) as OUT (.raw.zst) and OUT.sha256.
lab_build_image() {
    "$LAB_LIB_DIR/../images/build-debian.sh" "$1"
}

# lab_write_image_inputs DIR IMAGE PUBKEY [EXTRA CMDLINE]: hosts.csv and
# profiles.conf for an image deploy of $LAB_HOST: profile $LAB_PROFILE
# (kind = image) with IMAGE (a file name in $LAB_DIR/origin) and the SSH
# key in file PUBKEY; the ramdisk's console on ttyS0, a short fail_delay.
lab_write_image_inputs() {
    local dir=$1 image=$2 key=$3 extra=${4:-}
    local url="http://[$LAB_UP_CTL]:$LAB_ORIGIN_PORT"
    mkdir -p "$dir"
    lab_write_hosts_csv "$dir"
    cat >"$dir/profiles.conf" <<EOP
# An image profile: the agent boots its deploy ramdisk, which writes the
# image and a cloud-init seed; the installed system phones home.
[profile $LAB_PROFILE]
kind = image
image = $url/$image sha256=$(lab_sha256 "$LAB_DIR/origin/$image")
root_device = auto
ssh_authorized_keys = $(cat "$key")
cmdline = console=ttyS0,115200n8 rackboot.fail_delay=5${extra:+ $extra}
EOP
}

# lab_ssh CMD...: ssh to the deployed host as debian (cloud-init's default
# user) from the rack's namespace, with the key in $LAB_DIR/id.
lab_ssh() {
    ip netns exec "$LAB_NS_RACK" ssh -i "$LAB_DIR/id" -o BatchMode=yes \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 \
        -o LogLevel=ERROR "debian@$LAB_HOST_ADDR" "$@"
}

# lab_write_hosts_csv DIR: DIR/hosts.csv with the lab's host, its reserved
# address and the agent as its gateway.
lab_write_hosts_csv() {
    if [ -n "$LAB_BMC_URL" ]; then
        # With the lab's BMC (lab_bmc_start): the host's BMC on record, its
        # password in a file of its own beside the CSV, 0600.
        (umask 077 && cp "$LAB_BMC_DIR/password" "$1/$LAB_HOST.bmc-password")
        cat >"$1/hosts.csv" <<EOF
name,mac,rack,address,prefix,gateway,hostname,bmc,bmc_user,bmc_password_file,firmware
$LAB_HOST,$LAB_HOST_MAC,$LAB_RACK,$LAB_HOST_ADDR,$LAB_RACK_PLEN,$LAB_AGENT_ADDR,$LAB_HOST,$LAB_BMC_URL,$LAB_BMC_USER,$LAB_HOST.bmc-password,$LAB_BMC_FIRMWARE
EOF
    else
        cat >"$1/hosts.csv" <<EOF
name,mac,rack,address,prefix,gateway,hostname
$LAB_HOST,$LAB_HOST_MAC,$LAB_RACK,$LAB_HOST_ADDR,$LAB_RACK_PLEN,$LAB_AGENT_ADDR,$LAB_HOST
EOF
    fi
}

# lab_write_inputs DIR: what an operator feeds the CLI, in DIR: hosts.csv,
# profiles.conf (images on the origin with their sha256, the kickstart
# template e2e.ks next to it). The images must be in $LAB_DIR/origin.
lab_write_inputs() {
    local dir=$1 o=$LAB_DIR/origin
    local url="http://[$LAB_UP_CTL]:$LAB_ORIGIN_PORT"
    mkdir -p "$dir"
    lab_write_hosts_csv "$dir"
    cat >"$dir/lab.ks" <<'EOF'
# rackboot lab kickstart for {{hostname}} (install {{install_id}})
text
network --device=bootnet --bootproto=static --ipv6={{address}}/{{prefix}} --ipv6gateway={{gateway}} --nameserver={{dns}} --hostname={{hostname}} --activate
rootpw --lock
reboot
EOF
    cat >"$dir/profiles.conf" <<EOF
# The lab's fake installer: a Debian kernel and a busybox initrd that behave
# like Anaconda where rackboot cares (deploy/lab/installer-init.sh).
[profile $LAB_PROFILE]
kernel = $url/vmlinuz sha256=$(lab_sha256 "$o/vmlinuz")
initrd = $url/initrd.img sha256=$(lab_sha256 "$o/initrd.img")
stage2 = $url/squashfs.img sha256=$(lab_sha256 "$o/squashfs.img")
cmdline = console=ttyS0,115200n8 panic=-1 quiet rackboot.stage2_size=$(stat -c %s "$o/squashfs.img") rackboot.stage2_sha256=$(lab_sha256 "$o/squashfs.img")
kickstart = lab.ks
overlay = ${LAB_OVERLAY:-yes}
ip = static
keep_ra = yes
uefi_boot = ${LAB_UEFI_BOOT:-ipxe}
EOF
}

# lab_register DIR: hosts and profiles into the controller.
lab_register() {
    lab_rb hosts import "$1/hosts.csv" && lab_rb profiles import "$1/profiles.conf"
}

# lab_submit DIR [INSTALL-ARGS...]: for a test: hosts and profiles of DIR
# imported (lab_register), `rackboot install $LAB_HOST --profile
# $LAB_PROFILE INSTALL-ARGS...` (submitted at T_SUBMIT), and the install
# dispatched to the agent within 30 s; sets INSTALL_ID. Fails the test
# (lab_fail) otherwise.
lab_submit() {
    local dir=$1
    shift
    lab_register "$dir" >"$LAB_DIR/register.out" 2>&1 ||
        { cat "$LAB_DIR/register.out"; lab_fail "cannot import hosts/profiles"; }
    # shellcheck disable=SC2034 # the test's
    T_SUBMIT=$(lab_ts)
    lab_rb install "$LAB_HOST" --profile "$LAB_PROFILE" "$@" >"$LAB_DIR/install.out" 2>&1 ||
        { cat "$LAB_DIR/install.out"; lab_fail "rackboot install failed"; }
    INSTALL_ID=$(lab_status_field "$LAB_HOST" install_id)
    { [ -n "$INSTALL_ID" ] && [ "$INSTALL_ID" != None ]; } || lab_fail "no install id in rackboot status"
    lab_wait_for 30 lab_state_is "$LAB_HOST" dispatched ||
        lab_fail "install not dispatched to the agent within 30 s (state $(lab_status_field "$LAB_HOST" state))"
    lab_say "install $INSTALL_ID dispatched to rack $LAB_RACK"
}

# lab_status_field HOST FIELD: one field of `rackboot status HOST --json`.
lab_status_field() {
    lab_rb status "$1" --json 2>/dev/null |
        python3 -c 'import json, sys; r = json.load(sys.stdin); print(r[0].get(sys.argv[1]) if r else "")' "$2"
}

lab_state_is() {
    [ "$(lab_status_field "$1" state)" = "$2" ]
}

# lab_phase_seen PHASE: install $INSTALL_ID has an event PHASE at the
# controller.
lab_phase_seen() {
    lab_rb events "$LAB_HOST" --json 2>/dev/null |
        python3 -c 'import json, sys; sys.exit(0 if any(e.get("install_id") == sys.argv[1] and e["phase"] == sys.argv[2] for e in json.load(sys.stdin)) else 1)' \
            "$INSTALL_ID" "$1"
}

# lab_phase_time EVENTS PHASE: the time (epoch seconds) of install
# $INSTALL_ID's first PHASE event in EVENTS (`rackboot events --json`), as
# the agent that saw it stamped it; nothing when there is none.
lab_phase_time() {
    python3 -c '
import datetime, json, sys
for e in json.load(open(sys.argv[1])):
    if e.get("install_id") == sys.argv[2] and e["phase"] == sys.argv[3]:
        print(datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp())
        break' "$1" "$INSTALL_ID" "$2"
}

# lab_last_ipxe_phase DIR: the last thing iPXE fetches for the profile in
# DIR/profiles.conf (lab_write_inputs): overlay_fetched, or initrd_fetched
# without an overlay.
lab_last_ipxe_phase() {
    if grep -q '^overlay = yes' "$1/profiles.conf"; then
        echo overlay_fetched
    else
        echo initrd_fetched
    fi
}

# ---- QEMU --------------------------------------------------------------------------------------
# lab_qemu_cmd FIRMWARE: the lab's QEMU command line for the host (TCG, its
# NIC on tap0, serial console on stdout; LAB_VM_MEM MiB, default 512;
# LAB_VM_DISK a raw disk after the NIC in the boot order; LAB_VM_REBOOT=1
# resets on reboot instead of exiting; LAB_VM_NO_IPV4=1, uefi: OVMF without
# IPv4 network boot) into the array LAB_QEMU_CMD, pid
# file $LAB_DIR/qemu.pid. For the UEFI variants it also copies OVMF's
# variable store into $LAB_DIR/OVMF_VARS.fd (the VM's NVRAM), fresh.
# lab_boot_vm runs it itself; the lab's BMC (bmc.sh) runs it on power-on.
# FIRMWARE:
#   bios      SeaBIOS + Debian's iPXE ROM (qemu's default ROM for virtio-net)
#   uefi      OVMF + the same ROM's EFI driver (iPXE runs as a UEFI app)
#   uefi-pxe  OVMF's own IPv6 PXE (ROM disabled): DHCPv6 -> TFTP ipxe.efi
#             from the agent -> iPXE -> HTTP (or, for a uefi_boot = uki
#             profile, TFTP the host's kernel image)
#   uefi-http OVMF's own IPv6 HTTP boot (ROM and PXE disabled): DHCPv6 ->
#             HTTP the URL the agent answers (ipxe.efi, or the host's
#             kernel image for a uefi_boot = uki profile)
# Do not pass romfile= for the ROM variants: qemu patches the PCI ids only
# into its default ROM and SeaBIOS skips a mismatching one silently.
lab_qemu_cmd() {
    local fw=$1
    local dev="virtio-net-pci,netdev=n0,mac=$LAB_HOST_MAC,bootindex=1"
    # shellcheck disable=SC2054 # commas are QEMU option syntax
    LAB_QEMU_CMD=(qemu-system-x86_64 -m "${LAB_VM_MEM:-512}" -smp 1 -nographic -uuid "$LAB_VM_UUID"
        -pidfile "$LAB_DIR/qemu.pid"
        -netdev "tap,id=n0,ifname=$LAB_TAP,script=no,downscript=no")
    # An installer powers off when done; a deployed image reboots into its
    # disk, so QEMU must reset instead of exiting (LAB_VM_REBOOT=1).
    [ "${LAB_VM_REBOOT:-0}" = 1 ] || LAB_QEMU_CMD+=(-no-reboot)
    # The host's disk (LAB_VM_DISK, a raw file), second in the boot order:
    # the firmware boots it when the network boot finds nothing.
    if [ -n "${LAB_VM_DISK:-}" ]; then
        # shellcheck disable=SC2054 # commas are QEMU option syntax
        LAB_QEMU_CMD+=(-drive "file=$LAB_VM_DISK,format=raw,if=none,id=d0,cache=unsafe"
            -device virtio-blk-pci,drive=d0,bootindex=2)
    fi
    # shellcheck disable=SC2054 # commas are QEMU option syntax
    case "$fw" in
    bios)
        LAB_QEMU_CMD+=(-machine pc,accel=tcg -device "$dev")
        ;;
    uefi)
        cp "$LAB_OVMF_VARS" "$LAB_DIR/OVMF_VARS.fd"
        LAB_QEMU_CMD+=(-machine pc,accel=tcg
            -drive "if=pflash,format=raw,readonly=on,file=$LAB_OVMF_CODE"
            -drive "if=pflash,format=raw,file=$LAB_DIR/OVMF_VARS.fd"
            -device "$dev")
        # LAB_VM_NO_IPV4=1: OVMF's own network boot options without IPv4,
        # as an IPv6-only rack's firmware would be set. When iPXE finds
        # nothing, OVMF tries its own PXE and HTTP boot before the disk; the
        # IPv4 ones wait ~60 s each for a DHCPv4 that never answers.
        if [ "${LAB_VM_NO_IPV4:-0}" = 1 ]; then
            LAB_QEMU_CMD+=(-fw_cfg name=opt/org.tianocore/IPv4Support,string=no)
        fi
        ;;
    uefi-pxe)
        # OVMF tries PXEv4 for ~60 s first without IPv4Support=no.
        cp "$LAB_OVMF_VARS" "$LAB_DIR/OVMF_VARS.fd"
        LAB_QEMU_CMD+=(-machine q35,accel=tcg
            -drive "if=pflash,format=raw,readonly=on,file=$LAB_OVMF_CODE"
            -drive "if=pflash,format=raw,file=$LAB_DIR/OVMF_VARS.fd"
            -fw_cfg name=opt/org.tianocore/IPv4Support,string=no
            -device "$dev,romfile=")
        ;;
    uefi-http)
        # Without PXE OVMF's first network option is its HTTPv6 boot. The
        # boot menu wait (3 s, LAB_UEFI_HTTP_WAIT_MS) is for EDK2's
        # HttpBootDxe: it starts DHCPv6 without waiting for the NIC's new
        # link-local address to pass duplicate address detection (its PXE
        # driver waits; HttpBootDhcp6Sarr() does not), so booting at once it
        # fails "Could not retrieve NBP file size ... Unexpected network
        # error" before sending any Solicit. A real machine's POST gives
        # the link that time.
        cp "$LAB_OVMF_VARS" "$LAB_DIR/OVMF_VARS.fd"
        LAB_QEMU_CMD+=(-machine q35,accel=tcg -boot "menu=on,splash-time=${LAB_UEFI_HTTP_WAIT_MS:-3000}"
            -drive "if=pflash,format=raw,readonly=on,file=$LAB_OVMF_CODE"
            -drive "if=pflash,format=raw,file=$LAB_DIR/OVMF_VARS.fd"
            -fw_cfg name=opt/org.tianocore/IPv4Support,string=no
            -fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=no
            -device "$dev,romfile=")
        ;;
    *)
        echo "lab: firmware must be bios, uefi, uefi-pxe or uefi-http" >&2
        return 2
        ;;
    esac
}

# lab_boot_vm FIRMWARE SERIAL_LOG [LIMIT]: boots the host in QEMU (TCG) on
# tap0 (lab_qemu_cmd), in the background, serial console to SERIAL_LOG with
# wall-clock stamps, killed after LIMIT seconds; sets LAB_QEMU_T0.
lab_boot_vm() {
    local fw=$1 log=$2 limit=${3:-300}
    lab_qemu_cmd "$fw" || return
    local q=("${LAB_QEMU_CMD[@]}")
    rm -f "$LAB_DIR/qemu.pid"
    echo "${q[*]}" >"$LAB_DIR/qemu.cmdline"
    LAB_QEMU_T0=$(lab_ts)
    (timeout "$limit" ip netns exec "$LAB_NS_RACK" "${q[@]}" </dev/null 2>&1 |
        python3 -u "$LAB_LIB_DIR/tslines.py" >"$log") &
    LAB_QEMU_WRAPPER=$!
    lab_wait_for 10 test -s "$LAB_DIR/qemu.pid" || { echo "lab: QEMU did not start" >&2; return 1; }
}

lab_vm_running() {
    [ -s "$LAB_DIR/qemu.pid" ] && kill -0 "$(cat "$LAB_DIR/qemu.pid")" 2>/dev/null
}

# lab_wait_installed LIMIT [COMMAND...]: until the controller says $LAB_HOST
# is installed, at most LIMIT seconds, and 15 s once the VM is off (the
# installer is done or failed: its events have seconds to arrive). Fails
# the test (lab_fail) when the install ends otherwise or the time runs
# out. COMMAND, if given, runs at every look (a test timing a phase).
lab_wait_installed() {
    local deadline state
    deadline=$(($(date +%s) + $1))
    shift
    while ! lab_state_is "$LAB_HOST" installed; do
        state=$(lab_status_field "$LAB_HOST" state)
        case "$state" in
        failed | cancelled | timed_out)
            lab_fail "install ended $state: $(lab_status_field "$LAB_HOST" message)" ;;
        esac
        [ "$#" = 0 ] || "$@"
        [ "$(date +%s)" -lt "$deadline" ] ||
            lab_fail "not installed in time (state $state, phase $(lab_status_field "$LAB_HOST" phase))"
        if ! lab_vm_running && [ "$deadline" -gt "$(($(date +%s) + 15))" ]; then
            deadline=$(($(date +%s) + 15))
            echo "  (the VM is off; waiting at most 15 s for the controller)"
        fi
        sleep 0.5
    done
}

# lab_vm_wait_exit SECONDS: the VM powered itself off within SECONDS.
lab_vm_wait_exit() {
    lab_wait_for "$1" sh -c "! kill -0 \$(cat '$LAB_DIR/qemu.pid' 2>/dev/null) 2>/dev/null"
}

lab_vm_stop() {
    if lab_vm_running; then
        kill -TERM "$(cat "$LAB_DIR/qemu.pid")" 2>/dev/null
    fi
    if [ -n "$LAB_QEMU_WRAPPER" ]; then
        wait "$LAB_QEMU_WRAPPER" 2>/dev/null
        LAB_QEMU_WRAPPER=""
    fi
    return 0
}

# ---- the host's BMC (ipmi_sim powering the QEMU host) ---------------------------------------------
# shellcheck source=deploy/lab/bmc.sh
. "$LAB_LIB_DIR/bmc.sh"

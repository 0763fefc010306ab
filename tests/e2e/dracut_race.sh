#!/bin/bash
# The seed's gotcha #1 on real dracut, and rackboot's overlay initrd fixing
# it (render/overlay.h).
#
#   dracut_race.sh AGENT CONTROLLER CLI PKI      (only the agent is run)
#
# The seed's dracut (033) called the network online once the static address
# had passed DAD, and Anaconda's hook fetched the kickstart right then; with
# the kickstart server off-link and the router's advertisement not yet
# there: "curl: (7) ... Network is unreachable". The seed's author rebuilt
# the initrd with a 4 s sleep; rackboot's overlay hook waits for the route.
#
# Debian 12's dracut 059 narrowed the race but kept it: network-legacy's
# do_static calls wait_for_ipv6_dad, which (since the fix of Red Hat bug
# 1292623) also waits for an RA default route, but only for
# rd.net.timeout.ipv6dad= seconds (50 by default), and do_static ignores the
# timeout: the online hooks run anyway. An advertisement later than that
# (a switch port still in STP listening/learning, the host's solicitations
# lost, the next unsolicited RA minutes away) is the seed's race, on dracut
# 059. The test shortens that bound to DAD_BOUND s on the kernel command line
# (the same code path, seconds instead of a minute of TCG; E2E_DAD_BOUND=
# empty keeps dracut's 50 s).
#
# This runs the real thing:
#
#   $LAB_NS_RACK  the rack router: br0 2001:db8:1::1/64 (QEMU's tap0), radvd
#                 on br0 started late, forwarding to
#   $LAB_NS_CTL   the agent, off-link: 2001:db8:2::10/64 (standalone hosts
#                 file: web17, a profile with overlay = yes)
#
# The host boots Debian's kernel and an initramfs made by Debian's own dracut
# 059 + dracut-network (network-legacy; tests/e2e/dracut/build-initramfs.sh,
# cached) with the seed's command line ip=[2001:db8:1::17]:::64:::none and
# inst.ks= the agent's kickstart URL, and a hook in initqueue/online that
# fetches it once as Anaconda's 11-fetch-kickstart-net.sh does. radvd starts
# late, on events rather than after a fixed time (TCG's pace varies): in boot
# 1 once the fetch has reported, in boot 2 RA_DELAY s after the overlay's
# hook has said it waits. Two boots:
#   1. dracut alone: its wait gives up, the hook fetches before any
#      advertisement, and the fetch fails: "Network is unreachable" (the
#      test asserts the bug);
#   2. with the agent's /boot/overlay.img appended: dracut's wait gives up
#      the same way, the overlay's hook (05-, before the fetch) keeps
#      waiting, bounded, for the default route, says how long it waited, and
#      the fetch succeeds after the advertisement (the agent logs
#      kickstart_fetched).
#
# Needs root, ip netns, /dev/net/tun, QEMU, radvd, tcpdump, mmdebstrap (the
# first build, ~1 min, downloads Debian packages). Skips (77) only when those
# facilities are absent. KEEP_TMP=1 keeps the work directory.
set -uo pipefail

RB_AGENT=${1:?usage: dracut_race.sh AGENT CONTROLLER CLI PKI}
RB_CONTROLLER=${2:?controller}
RB_CLI=${3:?cli}
RB_PKI=${4:?pki}
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=e2e.dracut-race
# shellcheck disable=SC2034 # read by deploy/lab/lib.sh
LAB_ID="dr$$"
# shellcheck source=deploy/lab/lib.sh
. "$HERE/../../deploy/lab/lib.sh"

RA_DELAY=${E2E_RA_DELAY:-5}    # s after the overlay's hook waits until radvd starts
DAD_BOUND=${E2E_DAD_BOUND-2}   # rd.net.timeout.ipv6dad= (empty: dracut's own 50 s)
BOOT_LIMIT=${E2E_BOOT_LIMIT:-240}
AGENT_ADDR=2001:db8:2::10
ROUTER_UP=2001:db8:2::1
ROUTER_RACK=2001:db8:1::1

fail() { lab_fail "$@"; }
missing=$(lab_missing net qemu tcpdump)
command -v mmdebstrap >/dev/null || missing="$missing${missing:+$'\n'}mmdebstrap not installed"
lab_test_start "$missing"

# ---- the kernel and the dracut initramfs ------------------------------------------
lab_fetch_kernel || fail "cannot fetch the kernel"
lab_say "dracut initramfs (Debian's dracut 059 + dracut-network, kernel $LAB_KVER)"
"$HERE/dracut/build-initramfs.sh" "$LAB_KDIR" "$LAB_KVER" "$LAB_DIR/initrd.img" ||
    fail "cannot build the dracut initramfs"

# ---- the rack: router and off-link agent -------------------------------------------
R=$LAB_NS_RACK
S=$LAB_NS_CTL
lab_new_ns "$R" || fail "netns"
lab_new_ns "$S" || fail "netns"
ip -n "$R" link add up1 type veth peer name up0 netns "$S" || fail "veth"
ip -n "$R" addr add "$ROUTER_UP/64" dev up1 nodad
ip -n "$S" addr add "$AGENT_ADDR/64" dev up0 nodad
ip -n "$R" link set up1 up
ip -n "$S" link set up0 up
ip -n "$S" route add default via "$ROUTER_UP"
ip -n "$R" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0 || fail "bridge"
ip -n "$R" addr add "$ROUTER_RACK/64" dev br0 nodad
ip -n "$R" tuntap add dev "$LAB_TAP" mode tap || fail "tap"
ip -n "$R" link set "$LAB_TAP" master br0 up
ip -n "$R" link set br0 up
ip netns exec "$R" sysctl -qw net.ipv6.conf.all.forwarding=1
cat >"$LAB_DIR/radvd.conf" <<EOR
interface br0 {
    AdvSendAdvert on;
    MinRtrAdvInterval 3;
    MaxRtrAdvInterval 10;
    prefix 2001:db8:1::/64 { AdvOnLink on; AdvAutonomous on; };
};
EOR
lab_wait_for 5 ip netns exec "$S" ping -6 -c1 -W1 "$ROUTER_UP" || fail "the agent's link"

# ---- the agent, standalone ----------------------------------------------------------------
mkdir -p "$LAB_DIR/origin" "$LAB_DIR/state" "$LAB_DIR/tftp"
printf 'kernel' >"$LAB_DIR/origin/vmlinuz"
printf 'initrd' >"$LAB_DIR/origin/initrd.img"
cat >"$LAB_DIR/race.ks" <<'EOF'
# kickstart for {{hostname}} ({{address}}/{{prefix}})
text
EOF
cat >"$LAB_DIR/hosts.conf" <<EOF
[profile race]
kernel = http://[::1]:8000/vmlinuz sha256=$(lab_sha256 "$LAB_DIR/origin/vmlinuz")
initrd = http://[::1]:8000/initrd.img sha256=$(lab_sha256 "$LAB_DIR/origin/initrd.img")
kickstart = race.ks
overlay = yes
# The test reads the rendered script (the install's kickstart URL) from the
# agent's own namespace.
source_check = no

[host $LAB_HOST]
mac = $LAB_HOST_MAC
address = $LAB_HOST_ADDR
prefix = 64
install = race
EOF
cat >"$LAB_DIR/agent.conf" <<EOF
[agent]
rack = race
state_dir = $LAB_DIR/state
advertise_address = $AGENT_ADDR
log_level = info

[http]
listen = [::]:80

[tftp]
root = $LAB_DIR/tftp
listen = [::]:6969

[dhcp6]
interfaces = up0

[standalone]
hosts = hosts.conf
EOF
lab_spawn agent "$S" "$RB_AGENT" --config "$LAB_DIR/agent.conf"
lab_wait_for 15 grep -q "ready" "$LAB_DIR/agent.log" || fail "the agent did not start"
script=$(ip netns exec "$S" curl -gsS -m 20 "http://[$AGENT_ADDR]/boot/$LAB_HOST_MAC.ipxe") ||
    fail "no iPXE script for $LAB_HOST"
KS_URL=$(echo "$script" | grep -o 'inst\.ks=[^ ]*' | head -n 1 | cut -d= -f2-)
[ -n "$KS_URL" ] || fail "no inst.ks= in the script:"$'\n'"$script"
ip netns exec "$S" curl -gsS -m 20 -o "$LAB_DIR/overlay.img" "http://[$AGENT_ADDR]/boot/overlay.img" ||
    fail "no overlay from the agent"
lab_say "kickstart: $KS_URL (off-link: the host routes through $ROUTER_RACK)"

# The initramfs alone, and with the overlay appended the way iPXE loads a
# second initrd (the kernel unpacks an uncompressed cpio at a 4-byte boundary).
cp "$LAB_DIR/initrd.img" "$LAB_DIR/initrd-overlay.img"
pad=$(( (4 - $(stat -c %s "$LAB_DIR/initrd-overlay.img") % 4) % 4 ))
head -c "$pad" /dev/zero >>"$LAB_DIR/initrd-overlay.img"
cat "$LAB_DIR/overlay.img" >>"$LAB_DIR/initrd-overlay.img"

# The seed's command line (static, no gateway: the route comes from the RA).
CMDLINE="ip=[$LAB_HOST_ADDR]:::64:::none inst.ks=$KS_URL rd.neednet=1 console=ttyS0,115200n8 panic=-1"
[ -n "$DAD_BOUND" ] && CMDLINE="$CMDLINE rd.net.timeout.ipv6dad=$DAD_BOUND"

# boot NAME INITRD TRIGGER DELAY: one boot; radvd starts DELAY s after the
# serial console shows TRIGGER (or once the fetch reported, if sooner); waits
# for the hook's RESULT line.
boot() {
    local name=$1 initrd=$2 trigger=$3 delay=$4 log=$LAB_DIR/serial-$1.log t_link t_radvd radvd_pid tcpdump_pid
    # The host's first frame on the rack link: its NIC is up.
    rm -f "$LAB_DIR/link-$name"
    (ip netns exec "$R" timeout "$BOOT_LIMIT" tcpdump -i br0 -l -n -c 1 "ether src $LAB_HOST_MAC" \
        2>"$LAB_DIR/tcpdump-$name.err" | grep -m 1 . >"$LAB_DIR/link-$name.tmp" &&
        mv "$LAB_DIR/link-$name.tmp" "$LAB_DIR/link-$name") &
    tcpdump_pid=$!
    LAB_PIDS="$LAB_PIDS $tcpdump_pid"
    # The capture must be open before the host can send its first frame.
    lab_wait_for 10 grep -q "listening on" "$LAB_DIR/tcpdump-$name.err" ||
        fail "boot $name: tcpdump did not start (see $LAB_DIR/tcpdump-$name.err)"
    rm -f "$LAB_DIR/qemu.pid"
    LAB_QEMU_T0=$(lab_ts)
    (timeout "$BOOT_LIMIT" ip netns exec "$R" qemu-system-x86_64 -m 512 -smp 1 -nographic \
        -no-reboot -machine pc,accel=tcg -pidfile "$LAB_DIR/qemu.pid" \
        -kernel "$LAB_KDIR/boot/vmlinuz-$LAB_KVER" -initrd "$initrd" -append "$CMDLINE" \
        -netdev "tap,id=n0,ifname=$LAB_TAP,script=no,downscript=no" \
        -device "virtio-net-pci,netdev=n0,mac=$LAB_HOST_MAC" </dev/null 2>&1 |
        python3 -u "$LAB_LIB_DIR/tslines.py" >"$log") &
    LAB_QEMU_WRAPPER=$!
    lab_wait_for 10 test -s "$LAB_DIR/qemu.pid" || fail "QEMU did not start"
    lab_wait_for "$BOOT_LIMIT" test -s "$LAB_DIR/link-$name" ||
        fail "boot $name: the host never came up on the link"
    t_link=$(lab_ts)
    lab_wait_for "$BOOT_LIMIT" grep -aq "$trigger\|rackboot-ks: RESULT" "$log" ||
        { tail -n 30 "$log"; fail "boot $name: neither \"$trigger\" nor a fetch (see $log)"; }
    [ "$delay" -gt 0 ] && lab_wait_for "$delay" grep -aq "rackboot-ks: RESULT" "$log"
    lab_spawn "radvd-$name" "$R" radvd -n -C "$LAB_DIR/radvd.conf" -p "$LAB_DIR/radvd-$name.pid" -m stderr
    radvd_pid=$LAB_SPAWNED
    t_radvd=$(lab_ts)
    echo "$t_radvd" >"$LAB_DIR/radvd-at-$name"
    lab_say "boot $name: host on the link at $(lab_rel "$t_link" "$LAB_QEMU_T0") s, radvd started $(lab_rel "$t_radvd" "$t_link") s later"
    lab_wait_for "$BOOT_LIMIT" grep -aq "rackboot-ks: RESULT" "$log" ||
        { tail -n 30 "$log"; fail "boot $name: the hook never reported (see $log)"; }
    lab_vm_wait_exit 30 || lab_vm_stop
    lab_vm_stop
    lab_stop_pid "$radvd_pid"
    ip -n "$R" neigh flush dev br0 2>/dev/null
    grep -a "rackboot-ks:\|rackboot: " "$log" | cut -d' ' -f2- | sed "s/^/  [$name] /"
}

# fetched_after_ra NAME: the serial log's time of the hook's fetch, minus
# radvd's start (seconds; negative: fetched before any advertisement).
fetched_after_ra() {
    local t_fetch
    t_fetch=$(grep -a "rackboot-ks: fetching" "$LAB_DIR/serial-$1.log" | head -n 1 | cut -d' ' -f1)
    awk -v a="$t_fetch" -v b="$(cat "$LAB_DIR/radvd-at-$1")" 'BEGIN { printf "%.1f", a - b }'
}

# ---- 1. dracut alone ---------------------------------------------------------------------------
# dracut's wait gives up before the advertisement, the online hook fetches at
# once: the seed's "Network is unreachable".
lab_say "boot 1: dracut alone (no overlay; dracut's own RA wait bounded at ${DAD_BOUND:-50} s)"
boot plain "$LAB_DIR/initrd.img" "rackboot-ks: RESULT" 0
after=$(fetched_after_ra plain)
grep -aq "rackboot-ks: RESULT fetched" "$LAB_DIR/serial-plain.log" &&
    fail "boot 1: the kickstart was fetched without the overlay ($after s after radvd started): no race shown"
grep -aq "rackboot-ks: RESULT failed:.*connect fail for .*: Network is unreachable" "$LAB_DIR/serial-plain.log" ||
    fail "boot 1: the fetch failed, but not with the seed's \"Network is unreachable\""
awk -v a="$after" 'BEGIN { exit !(a < 0) }' ||
    fail "boot 1: the failed fetch came $after s after radvd started: not the race"
lab_say "boot 1: the seed's race on dracut 059: fetched $after s before any advertisement, Network is unreachable"

# ---- 2. with rackboot's overlay --------------------------------------------------------------
# The overlay's hook (initqueue/online, 05- before Anaconda's 11-) runs
# under real dracut once dracut's own wait has given up, waits for the route
# without a fixed sleep, says how long it waited, and the kickstart arrives.
lab_say "boot 2: dracut + the agent's overlay initrd"
boot overlay "$LAB_DIR/initrd-overlay.img" "rackboot: waiting for IPv6" "$RA_DELAY"
grep -aq "rackboot-ks: RESULT fetched" "$LAB_DIR/serial-overlay.log" ||
    fail "boot 2: the kickstart was not fetched with the overlay"
waited=$(grep -ao "rackboot: IPv6 ready on [^ ]* after [0-9.]* s" "$LAB_DIR/serial-overlay.log" |
    head -n 1 | awk '{ print $(NF - 1) }')
[ -n "$waited" ] || fail "boot 2: the overlay's hook did not run or did not say how long it waited"
after=$(fetched_after_ra overlay)
awk -v a="$after" 'BEGIN { exit !(a >= 0) }' ||
    fail "boot 2: fetched $after s before radvd started: the hook did not wait for the route"
awk -v w="$waited" 'BEGIN { exit !(w > 0) }' ||
    fail "boot 2: the hook waited $waited s: dracut had the route already, nothing was shown"
[ "$(grep -c "phase=kickstart_fetched" "$LAB_DIR/agent.log")" = 1 ] ||
    fail "boot 2: the agent did not log exactly one kickstart_fetched (boot 1's fetch must fail)"
lab_say "boot 2: the overlay's hook waited $waited s for the route; fetched $after s after radvd started"
echo "PASS: $TEST_NAME"

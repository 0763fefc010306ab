#!/bin/bash
# The deploy ramdisk booted for real: deploy-ramdisk/build-ramdisk.sh makes
# it (cached), QEMU (TCG) boots it with -kernel/-initrd/-append on a blank
# 64 MiB virtio disk and a virtio NIC on a tap in a network namespace of
# this test, where a stand-in agent (python3 http.server, [2001:db8:1::1]:80)
# serves a 12 MiB GPT image (zstd) and the NoCloud seed and records the
# progress POSTs. Checks: phase=writing ... phase=written reach the agent,
# the VM reboots (QEMU exits under -no-reboot), and the disk holds the
# image's partitions, the root partition grown, and a CIDATA partition with
# the three files as served. Prints the boot timeline.
#
# Usage: deploy_ramdisk_boot.sh SRC_DIR OUT_DIR
#   OUT_DIR keeps the ramdisk between runs (the build is cached by content
#   anyway, in /var/cache/rackboot/ramdisk).
# Skips (77) without root, network namespaces, /dev/net/tun, QEMU, or the
# tools the image and the checks need.
set -u

SRC=${1:?usage: deploy_ramdisk_boot.sh SRC_DIR OUT_DIR}
OUTDIR=${2:?usage: deploy_ramdisk_boot.sh SRC_DIR OUT_DIR}
LIMIT=${RACKBOOT_BOOT_LIMIT:-900}
LAB_ID=dr$$
# shellcheck source=deploy/lab/lib.sh
. "$SRC/deploy/lab/lib.sh"
# shellcheck source=tests/integration/deploy_lib.sh
. "$SRC/tests/integration/deploy_lib.sh"

missing=$(lab_missing qemu; [ "$(id -u)" = 0 ] || echo "needs root")
for t in python3 zstd sgdisk sfdisk mkfs.ext4 mdir mtype blkid cpio depmod apt-get; do
    command -v $t >/dev/null || missing="$missing no $t;"
done
if [ -z "$missing" ] && ! ip netns add "rb-probe-$$" 2>/dev/null; then
    missing="ip netns unavailable"
else
    ip netns del "rb-probe-$$" 2>/dev/null
fi
if [ -n "$missing" ]; then
    echo "SKIP: $missing"
    exit 77
fi
export MTOOLS_SKIP_CHECK=1

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

lab_init "$(mktemp -d /tmp/rb-deploy-boot-XXXXXX)"
trap lab_cleanup EXIT
trap 'exit 130' INT TERM

lab_say "building the deploy ramdisk"
t=$(lab_ts)
"$SRC/deploy-ramdisk/build-ramdisk.sh" "$OUTDIR" || { echo "FAIL: build-ramdisk.sh"; exit 1; }
build_s=$(lab_rel "$(lab_ts)" "$t")

cd "$LAB_DIR"
mkdir -p www/seed
deploy_gpt_image image || { echo "FAIL: cannot make the test image"; exit 1; }
zstd -q -c image > www/image.zst
sha=$(sha256sum www/image.zst | cut -d' ' -f1)
printf 'instance-id: rb-boot-1\nlocal-hostname: %s\n' "$LAB_HOST" > www/seed/meta-data
printf 'version: 2\nethernets:\n  id0:\n    match: {macaddress: "%s"}\n    addresses: ["%s/64"]\n    gateway6: "%s"\n' \
    "$LAB_HOST_MAC" "$LAB_HOST_ADDR" "$LAB_AGENT_ADDR" > www/seed/network-config
printf '#cloud-config\nhostname: %s\n' "$LAB_HOST" > www/seed/user-data
cp -r www/seed seed # (check_seeded compares with ./seed)
truncate -s 64M disk

# The rack: br0 with the agent's address, tap0 for the VM, nothing else.
lab_new_ns "$LAB_NS_RACK" || exit 1
ip -n "$LAB_NS_RACK" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
ip -n "$LAB_NS_RACK" addr add "$LAB_AGENT_ADDR/64" dev br0 nodad
ip -n "$LAB_NS_RACK" tuntap add dev tap0 mode tap
ip -n "$LAB_NS_RACK" link set tap0 master br0 up
ip -n "$LAB_NS_RACK" link set br0 up

# The stand-in agent, on port 80 like the real one.
cd www
deploy_agent_start "$LAB_AGENT_ADDR" 80 "$LAB_NS_RACK" || exit 1
LAB_PIDS="$LAB_PIDS $deploy_agent_pid"
cd "$LAB_DIR"

base="http://[$LAB_AGENT_ADDR]"
append="console=ttyS0,115200n8 panic=-1 ifname=bootnet:$LAB_HOST_MAC"
append="$append ip=[$LAB_HOST_ADDR]::[$LAB_AGENT_ADDR]:64:$LAB_HOST:bootnet:none"
append="$append BOOTIF=01-$(echo "$LAB_HOST_MAC" | tr ':' '-') rackboot.root_device=auto"
append="$append rackboot.image=$base/image.zst rackboot.image_sha256=$sha"
append="$append rackboot.progress=$base/progress/1?token=t rackboot.seed=$base/seed/"
append="$append rackboot.fail_delay=5"
echo "$append" > cmdline

lab_say "booting the ramdisk (TCG)"
# shellcheck disable=SC2054 # commas are QEMU option syntax
q=(qemu-system-x86_64 -machine pc,accel=tcg -m 768 -smp 1 -nographic -no-reboot
    -pidfile "$LAB_DIR/qemu.pid"
    -kernel "$OUTDIR/vmlinuz" -initrd "$OUTDIR/initrd.img" -append "$append"
    -drive "file=$LAB_DIR/disk,format=raw,if=virtio"
    -netdev "tap,id=n0,ifname=tap0,script=no,downscript=no"
    -device "virtio-net-pci,netdev=n0,mac=$LAB_HOST_MAC")
LAB_QEMU_T0=$(lab_ts)
(timeout "$LIMIT" ip netns exec "$LAB_NS_RACK" "${q[@]}" </dev/null 2>&1 |
    python3 -u "$LAB_LIB_DIR/tslines.py" > serial.log) &
LAB_QEMU_WRAPPER=$!
lab_wait_for 10 test -s qemu.pid || { echo "FAIL: QEMU did not start"; exit 1; }

t_writing="" t_written="" t_exit=""
n=0
while :; do
    if [ -z "$t_writing" ] && grep -q '^phase=writing' www/posts 2>/dev/null; then t_writing=$(lab_ts); fi
    if [ -z "$t_written" ] && grep -q '^phase=written' www/posts 2>/dev/null; then t_written=$(lab_ts); fi
    if ! kill -0 "$(cat qemu.pid 2>/dev/null)" 2>/dev/null; then
        t_exit=$(lab_ts)
        break
    fi
    n=$((n + 1))
    [ $n -lt $((LIMIT * 5)) ] || break
    sleep 0.2
done
wait "$LAB_QEMU_WRAPPER" 2>/dev/null
LAB_QEMU_WRAPPER=""

[ -n "$t_exit" ] || fail "the VM did not reboot within $LIMIT s"
grep -q '^phase=writing&percent=' www/posts 2>/dev/null || fail "no phase=writing report"
[ "$(tail -n 1 www/posts 2>/dev/null)" = "phase=written" ] || fail "the last report is not phase=written"
grep -q 'deployed; rebooting' serial.log || fail "the ramdisk did not say it reboots"
check_seeded disk 131072

t_net=$(awk '/network up after/ { print $1; exit }' serial.log | tr -d '[]')
echo "deploy_ramdisk_boot: timeline (s since QEMU start; TCG)"
echo "  ramdisk build            $build_s s (cached after the first)"
echo "  network up (serial)      $(lab_rel "$t_net")"
echo "  first phase=writing      $(lab_rel "$t_writing")"
echo "  phase=written            $(lab_rel "$t_written")"
echo "  VM rebooted (exit)       $(lab_rel "$t_exit")"
echo "  ramdisk $(stat -c %s "$OUTDIR/initrd.img") bytes, kernel $(stat -c %s "$OUTDIR/vmlinuz") bytes"

if [ $failures -gt 0 ]; then
    LAB_KEEP=1
    echo "---- serial.log (last 60 lines)"
    tail -n 60 serial.log | cut -c1-200
    echo "$failures failed"
    exit 1
fi
echo "deploy_ramdisk_boot: all checks passed"

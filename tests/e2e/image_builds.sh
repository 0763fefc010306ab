#!/bin/bash
# The builds the VM tests boot, done once before them (the
# ctest fixture rackboot_image_builds) and outside the lock the VM tests
# take turns on, so the ~5 minutes of a first Debian image build overlap
# the other tests instead of queueing in front of every VM:
#   the deploy ramdisk   deploy-ramdisk/build-ramdisk.sh
#   the Debian 12 image  deploy/images/build-debian.sh
#   the dracut initramfs tests/e2e/dracut/build-initramfs.sh (e2e.dracut-race)
# Each caches by content under /var/cache/rackboot (RACKBOOT_RAMDISK_CACHE,
# RACKBOOT_IMAGE_CACHE, RACKBOOT_DRACUT_CACHE) and serialises on its cache's
# lock: the tests then
# copy the cached files in seconds. Prints how long each build took (a cold
# cache is a first build). Skips (77) when what the builds need is absent.
set -uo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
TEST_NAME=e2e.image_builds

missing=""
for t in mmdebstrap mcopy mkfs.vfat mkfs.ext4 zstd flock cpio depmod apt-get sfdisk; do
    command -v "$t" >/dev/null || missing="$missing; $t"
done
if [ -n "$missing" ]; then
    echo "SKIP: $TEST_NAME: not installed:${missing#;} (deploy/install-deps.sh)"
    exit 77
fi
[ "$(id -u)" = 0 ] || { echo "SKIP: $TEST_NAME: the image build needs root"; exit 77; }

out=$(mktemp -d /tmp/rackboot-image-builds.XXXXXX)
trap 'rm -rf "$out"' EXIT

# build NAME LOG CMD...: CMD, timed; its log's tail when it fails.
build() {
    local name=$1 log=$2 t0 rc
    shift 2
    t0=$(date +%s.%N)
    "$@" >"$log" 2>&1
    rc=$?
    awk -v n="$TEST_NAME: $name" -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%s, %.1f s\n", n, b - a }'
    if [ "$rc" != 0 ]; then
        tail -n 30 "$log"
        echo "FAIL: $TEST_NAME: $name failed (status $rc)"
        exit 1
    fi
}

build "deploy ramdisk" "$out/ramdisk.log" "$SRC/deploy-ramdisk/build-ramdisk.sh" "$out/ramdisk"
build "Debian 12 image" "$out/image.log" "$SRC/deploy/images/build-debian.sh" "$out/disk.raw.zst"
# shellcheck source=deploy/lab/lib.sh
. "$SRC/deploy/lab/lib.sh"
lab_fetch_kernel >"$out/kernel.log" 2>&1 || { cat "$out/kernel.log"; echo "FAIL: $TEST_NAME: kernel"; exit 1; }
build "dracut initramfs" "$out/dracut.log" "$SRC/tests/e2e/dracut/build-initramfs.sh" \
    "$LAB_KDIR" "$LAB_KVER" "$out/dracut.img"
grep -h 'cached\|first build\|built' "$out/ramdisk.log" "$out/image.log" "$out/dracut.log" |
    sed "s/^/$TEST_NAME: /" | tail -n 8
stat -c "$TEST_NAME: %n %s bytes" "$out/ramdisk/vmlinuz" "$out/ramdisk/initrd.img" "$out/disk.raw.zst" \
    "$out/dracut.img"
echo "PASS: $TEST_NAME"

#!/bin/bash
# A real dracut initramfs for tests/e2e/dracut_race.sh, built with Debian's
# own dracut (dracut-core + dracut-network 059, network-legacy) in a
# throwaway mmdebstrap chroot (dracut conflicts with this machine's
# initramfs-tools, so it is not installed here), for the kernel the lab
# boots (deploy/lab/lib.sh lab_fetch_kernel), with the module in
# 91rackboot-ks/ next to this script: an initqueue/online hook that fetches
# inst.ks as Anaconda's 11-fetch-kickstart-net.sh does.
#
#   build-initramfs.sh KDIR KVER OUT
#
# KDIR holds the kernel package's files (lib/modules/KVER); writes OUT (a
# gzip initramfs). Cached by content (this script, the module, KVER and the
# dracut package version) in ${RACKBOOT_DRACUT_CACHE:-/var/cache/rackboot/dracut};
# parallel runs take turns on the cache's lock. Needs root and mmdebstrap.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
KDIR=${1:?usage: build-initramfs.sh KDIR KVER OUT}
KVER=${2:?usage: build-initramfs.sh KDIR KVER OUT}
OUT=${3:?usage: build-initramfs.sh KDIR KVER OUT}
CACHE=${RACKBOOT_DRACUT_CACHE:-/var/cache/rackboot/dracut}
# network-legacy needs ip, dhclient, arping and pgrep; url-lib curl.
PACKAGES=dracut-core,dracut-network,iproute2,isc-dhcp-client,iputils-arping,procps,curl,kmod,udev

# shellcheck source=deploy/lib/debpkg.sh
. "$HERE/../../../deploy/lib/debpkg.sh"
version=$(debpkg_version dracut-core)
[ -n "$version" ] || { echo "build-initramfs: no dracut-core candidate (apt-get update?)" >&2; exit 1; }
key=$( (cat "$0" "$HERE"/91rackboot-ks/*; echo "$KVER $version $PACKAGES") | sha256sum | cut -c1-16)
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -w 900 9 || { echo "build-initramfs: $CACHE/.lock busy" >&2; exit 1; }
if [ -s "$CACHE/$key.img" ]; then
    echo "build-initramfs: cached ($CACHE/$key.img, dracut $version, kernel $KVER)" >&2
    cp "$CACHE/$key.img" "$OUT"
    exit 0
fi

mirrors=()
while read -r line; do mirrors+=("$line"); done < <("$HERE/../../../deploy/images/build-debian.sh" --print-sources)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/rackboot-dracut.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -a "$HERE/91rackboot-ks" "$work/"
echo "build-initramfs: building (dracut $version, kernel $KVER; mmdebstrap ~1 min)" >&2
# The chroot is thrown away (target /dev/null): only the image is copied out.
# dracut runs in it with mmdebstrap's /proc, /sys and /dev mounted.
mmdebstrap --variant=minbase --mode=root --include="$PACKAGES" \
    --customize-hook="mkdir -p \"\$1/usr/lib/modules\" && cp -a '$KDIR/lib/modules/$KVER' \"\$1/usr/lib/modules/\"" \
    --customize-hook="chroot \"\$1\" depmod '$KVER'" \
    --customize-hook="cp -a '$work/91rackboot-ks' \"\$1/usr/lib/dracut/modules.d/\"" \
    --customize-hook="chroot \"\$1\" dracut --no-hostonly --kver '$KVER' \
        -m 'base network-legacy url-lib rackboot-ks' --add-drivers 'virtio_net virtio_pci' \
        --gzip --force /tmp/initrd.img" \
    --customize-hook="copy-out /tmp/initrd.img '$work'" \
    bookworm /dev/null "${mirrors[@]}" >"$work/mmdebstrap.log" 2>&1 ||
    { tail -n 30 "$work/mmdebstrap.log" >&2; exit 1; }
cp "$work/initrd.img" "$CACHE/$key.img.tmp" && mv "$CACHE/$key.img.tmp" "$CACHE/$key.img"
cp "$CACHE/$key.img" "$OUT" && chmod 644 "$OUT"
echo "build-initramfs: built $(stat -c %s "$OUT") bytes" >&2

#!/bin/bash
# Build rackboot's deploy ramdisk from Debian packages: Debian's kernel
# (linux-image-amd64's), busybox-static, mtools, and rackboot-deploy built
# Release from this tree with the shared libraries it links.
#
#   build-ramdisk.sh [--rebuild] OUTDIR
#
# Writes OUTDIR/vmlinuz and OUTDIR/initrd.img (a zstd-compressed cpio). The
# kernel command line the ramdisk's /init understands is documented at the
# top of deploy-ramdisk/ramdisk-init.sh.
#
# Packages come from the machine's own apt sources (apt-get download), so no
# mirror is named here. Builds are cached by content: a hash of this
# script, the init script, the package versions, the rackboot-deploy binary
# and the libraries it loads names the cache entry; a rerun with nothing
# changed copies the cached files. Runs against one cache take turns
# (flock on CACHE/.build.lock).
#
# Environment:
#   RACKBOOT_RAMDISK_CACHE  cache directory (default /var/cache/rackboot/ramdisk)
#   RACKBOOT_DEPLOY_BIN     use this rackboot-deploy instead of building one
#   CMAKE_GENERATOR         for the Release build (default Ninja when present)
set -euo pipefail

PROG=build-ramdisk.sh
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
CACHE=${RACKBOOT_RAMDISK_CACHE:-/var/cache/rackboot/ramdisk}
# shellcheck source=deploy/lib/debpkg.sh
. "$SRC/deploy/lib/debpkg.sh"

# Drivers the /init loads (modprobe resolves their dependencies through the
# modules.dep built here). Debian 12's kernel has all of them as modules
# (CONFIG_VIRTIO_PCI/NET/BLK, SCSI_VIRTIO, BLK_DEV_NVME, SATA_AHCI, BLK_DEV_SD
# =m) and IPv6, packet sockets and the GPT partition parser built in. No file
# system modules: the ramdisk mounts nothing (the seed is made with mtools).
# NICs: virtio and the server NICs whose drivers need no firmware to pass
# packets (ice runs in safe mode without its DDP package).
MODULES="virtio_pci virtio_net virtio_blk virtio_scsi sd_mod nvme ahci
         e1000 e1000e igb ixgbe i40e ice bnxt_en tg3 mlx5_core"
BUSYBOX_APPLETS="sh ash mount umount ip sleep cat echo grep cut modprobe insmod wget ping ping6
                 poweroff reboot sync sed tr awk ls setsid cttyhack dmesg mkdir
                 ps kill blkid fdisk sha256sum head tail wc date uname"

die() {
    echo "$PROG: $*" >&2
    exit 1
}
say() { echo "$PROG: $*" >&2; }

REBUILD=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
    -h | --help)
        sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    --rebuild) REBUILD=1 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
        [ -z "$OUT" ] || die "one OUTDIR only"
        OUT=$1
        ;;
    esac
    shift
done
[ -n "$OUT" ] || die "usage: $PROG [--rebuild] OUTDIR"
[ "$(id -u)" = 0 ] || die "must run as root (apt-get download into the cache, mknod)"
for t in apt-get apt-cache dpkg-deb cpio zstd depmod ldd flock sha256sum; do
    command -v "$t" >/dev/null || die "missing $t (deploy/install-deps.sh installs it)"
done

t_start=$(date +%s.%N)
mkdir -p "$CACHE" "$OUT"
# One build at a time per cache: parallel runs (two tests) would share the
# Release build directory and the entry being written; the second waits and
# then finds the entry cached. (debpkg.sh's lock is another file.)
exec 9>"$CACHE/.build.lock"
flock -w 1800 9 || die "$CACHE/.build.lock: another build holds it for 30 minutes"

# ---- inputs ----
KVER=$(apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/.*Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -n 1)
[ -n "$KVER" ] || die "cannot tell the kernel of linux-image-amd64 (apt-get update?)"
BB_VER=$(debpkg_version busybox-static)
MT_VER=$(debpkg_version mtools)
[ -n "$BB_VER" ] && [ -n "$MT_VER" ] || die "busybox-static or mtools unknown to apt (apt-get update?)"

if [ -n "${RACKBOOT_DEPLOY_BIN:-}" ]; then
    DEPLOY=$RACKBOOT_DEPLOY_BIN
else
    # Release, in the cache: a rerun with the same sources is a no-op build.
    # One build tree per source checkout: a tree configured for another
    # checkout (gone, or another clone) cannot be rebuilt from this one.
    BUILD=$CACHE/build-release-$(printf '%s' "$SRC" | sha256sum | cut -c1-12)
    gen=()
    if [ -z "${CMAKE_GENERATOR:-}" ] && command -v ninja >/dev/null; then gen=(-G Ninja); fi
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
        say "configuring a Release build in $BUILD"
        cmake -S "$SRC" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release >"$CACHE/build.log" 2>&1 ||
            die "cmake configure failed: $CACHE/build.log"
    fi
    nice -n 10 cmake --build "$BUILD" --target rackboot-deploy -j2 >>"$CACHE/build.log" 2>&1 ||
        die "building rackboot-deploy failed: $CACHE/build.log"
    DEPLOY=$BUILD/deploy-ramdisk/rackboot-deploy
fi
[ -x "$DEPLOY" ] || die "no rackboot-deploy at $DEPLOY"
# The loader and every library it loads, as ldd resolves them here.
LIBS=$(ldd "$DEPLOY" | awk '/=> \// { print $3 } /^\t\/.*\(0x/ { print $1 }' | sort -u)
[ -n "$LIBS" ] || die "ldd found no libraries for $DEPLOY"
# mtools converts file names through iconv (codepage 850): glibc's gconv
# configuration and that one converter, from the same libc6 as the loader.
# (libc looks in the directory it was built with, under /usr/lib, wherever
# ldd found libc itself.)
GCONV=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)/gconv
LIBS="$LIBS $(ls -d "$GCONV"/gconv-modules "$GCONV"/gconv-modules.d/*.conf "$GCONV"/IBM850.so 2>/dev/null)"
CA=/etc/ssl/certs/ca-certificates.crt

KEY=$( {
    echo "kernel $KVER busybox $BB_VER mtools $MT_VER"
    echo "modules $MODULES applets $BUSYBOX_APPLETS"
    sha256sum "$0" "$HERE/ramdisk-init.sh" "$DEPLOY"
    # shellcheck disable=SC2086 # one path a word
    sha256sum $LIBS
    [ ! -f "$CA" ] || sha256sum "$CA"
} | sha256sum | cut -c1-16)
ENTRY=$CACHE/ramdisk-$KEY

copy_out() {
    cp "$ENTRY/vmlinuz" "$OUT/vmlinuz.tmp" && mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
    cp "$ENTRY/initrd.img" "$OUT/initrd.img.tmp" && mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
    say "$OUT/vmlinuz $(stat -c %s "$OUT/vmlinuz") bytes, $OUT/initrd.img $(stat -c %s "$OUT/initrd.img") bytes ($1 in $(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
}
if [ "$REBUILD" = 0 ] && [ -f "$ENTRY/.complete" ]; then
    copy_out "cached $KEY"
    exit 0
fi

# ---- packages ----
KDIR=$CACHE/linux-image-$KVER
BBDIR=$CACHE/busybox-static_$BB_VER
MTDIR=$CACHE/mtools_$MT_VER
debpkg_extract "linux-image-$KVER" "$KDIR" "$CACHE" || die "cannot fetch linux-image-$KVER"
debpkg_extract "busybox-static=$BB_VER" "$BBDIR" "$CACHE" || die "cannot fetch busybox-static"
debpkg_extract "mtools=$MT_VER" "$MTDIR" "$CACHE" || die "cannot fetch mtools"
MODDIR=$KDIR/lib/modules/$KVER
[ -d "$MODDIR" ] && [ -f "$KDIR/boot/vmlinuz-$KVER" ] || die "$KDIR is not a kernel package tree"

# ---- the tree ----
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/rackboot-ramdisk.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
R=$WORK/root
mkdir -p "$R"/{bin,sbin,dev,proc,sys,tmp,etc/ssl/certs,lib/modules/"$KVER"}
mknod -m 600 "$R/dev/console" c 5 1
mknod -m 666 "$R/dev/null" c 1 3

cp "$BBDIR/bin/busybox" "$R/bin/busybox"
for a in $BUSYBOX_APPLETS; do
    ln -s busybox "$R/bin/$a"
done
cp "$MTDIR/usr/bin/mtools" "$R/bin/mtools"
for a in mformat mcopy mdir mtype; do
    ln -s mtools "$R/bin/$a"
done
install -m 755 "$DEPLOY" "$R/bin/rackboot-deploy"
strip "$R/bin/rackboot-deploy" 2>/dev/null || true
for l in $LIBS; do
    mkdir -p "$R$(dirname "$l")"
    cp -L "$l" "$R$l"
done
# usrmerge: the loader is asked for by /lib64 and may live under /usr.
[ -e "$R/lib64" ] || [ ! -d "$R/usr/lib64" ] || ln -s usr/lib64 "$R/lib64"
[ ! -f "$CA" ] || cp "$CA" "$R/etc/ssl/certs/ca-certificates.crt"
printf 'hosts: files dns\n' >"$R/etc/nsswitch.conf"
: >"$R/etc/hosts"

# Modules: the closure of $MODULES under their `depends`, then depmod.
declare -A have=()
modfile() { find "$MODDIR/kernel" -name "$1.ko" -o -name "$(echo "$1" | tr _ -).ko" | head -n 1; }
add_module() {
    local m=$1 f d
    [ -z "${have[$m]:-}" ] || return 0
    f=$(modfile "$m")
    [ -n "$f" ] || die "module $m not in $MODDIR"
    have[$m]=1
    mkdir -p "$R/lib/modules/$KVER/$(dirname "${f#"$MODDIR"/}")"
    cp "$f" "$R/lib/modules/$KVER/${f#"$MODDIR"/}"
    for d in $(modinfo -F depends "$f" | tr ',' ' '); do
        add_module "$d"
    done
}
for m in $MODULES; do
    add_module "$m"
done
cp "$MODDIR"/modules.builtin* "$MODDIR/modules.order" "$R/lib/modules/$KVER/"
depmod -b "$R" "$KVER" || die "depmod failed"
echo "$MODULES" | tr -s ' \n' '\n' | sed '/^$/d' >"$R/lib/modules/load.list"

install -m 755 "$HERE/ramdisk-init.sh" "$R/init"

# ---- the archive ----
mkdir -p "$ENTRY.tmp"
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) |
    zstd -q -T2 -12 >"$ENTRY.tmp/initrd.img" || die "cpio | zstd failed"
cp "$KDIR/boot/vmlinuz-$KVER" "$ENTRY.tmp/vmlinuz"
echo "kernel $KVER busybox-static $BB_VER mtools $MT_VER deploy $(sha256sum "$DEPLOY" | cut -c1-16)" \
    >"$ENTRY.tmp/INPUTS"
touch "$ENTRY.tmp/.complete"
rm -rf "$ENTRY"
mv "$ENTRY.tmp" "$ENTRY"
copy_out "built $KEY"

#!/bin/bash
# Build a bootable Debian 12 (bookworm) amd64 raw disk image, zstd-compressed,
# for rackboot's image deploy. See deploy/images/README.md.
#
#   build-debian.sh [--rebuild] OUT        e.g. OUT=debian-12-amd64.raw.zst
#
# Writes OUT and OUT.sha256 ("HEX  NAME", as sha256sum prints it). Needs root.
set -euo pipefail

PROG=build-debian.sh
SCRIPT=$(readlink -f "$0")
SUITE=bookworm
# What goes into the image beyond Debian's minbase (Priority: required).
# systemd-networkd (in package systemd) renders cloud-init's network-config;
# systemd-resolved makes its DNS= lines work. cloud-guest-utils gives growpart
# so cloud-init grows the root partition (the last one) to the disk.
PACKAGES="linux-image-amd64 systemd-sysv udev dbus systemd-resolved
          openssh-server cloud-init cloud-guest-utils sudo
          grub-pc-bin grub-efi-amd64-bin grub2-common
          iproute2 iputils-ping netbase ca-certificates e2fsprogs zstd"
# Kernel command line: console=ttyS0 last, so /dev/console (systemd's status
# lines, cloud-init's messages and key fingerprints) is the serial port.
CMDLINE="console=tty0 console=ttyS0,115200"
ESP_MIB=100
CACHE=${RACKBOOT_IMAGE_CACHE:-/var/cache/rackboot/images}
APT_ETC=${RACKBOOT_IMAGE_APT_ETC:-/etc/apt}
# -19 is ~8 % smaller but took >10 min here (2 shared cores); -12 about 1.
ZSTD_LEVEL=${RACKBOOT_IMAGE_ZSTD_LEVEL:-12}

usage() {
    cat <<EOF
usage: $PROG [--rebuild] OUT

Builds a Debian 12 amd64 raw disk image (GPT: BIOS boot, ESP, ext4 root),
bootable with BIOS (GRUB i386-pc) and UEFI (\\EFI\\BOOT\\BOOTX64.EFI), with
cloud-init (NoCloud), openssh-server (keys only) and systemd-networkd, and
writes it zstd-compressed to OUT, plus OUT.sha256.

The package mirror is the machine's own: the deb sources for $SUITE,
$SUITE-updates and $SUITE-security in $APT_ETC/sources.list and
$APT_ETC/sources.list.d/ (one-line .list and deb822 .sources).

Builds are cached by content (this script, the package list, the mirror and
the Date of each suite's InRelease): a rerun with nothing changed copies the
cached image and returns in seconds.

  --rebuild        build even when the cache has the image
  --print-sources  print the apt source lines the build would use, and exit
  --help           this text

Environment:
  RACKBOOT_IMAGE_CACHE       cache directory (default /var/cache/rackboot/images)
  RACKBOOT_IMAGE_APT_ETC     where to read apt sources (default /etc/apt)
  RACKBOOT_IMAGE_ZSTD_LEVEL  zstd level (default 12; 19 is smaller, much slower)
  TMPDIR                     work directory parent (default /var/tmp); needs ~3 GiB
EOF
}

die() {
    echo "$PROG: $*" >&2
    exit 1
}
say() { echo "$PROG: $*" >&2; }

REBUILD=0
PRINT_SOURCES=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    --rebuild) REBUILD=1 ;;
    --print-sources) PRINT_SOURCES=1 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
        [ -z "$OUT" ] || die "one OUT only (see --help)"
        OUT=$1
        ;;
    esac
    shift
done
[ -n "$OUT" ] || [ "$PRINT_SOURCES" = 1 ] || {
    usage >&2
    exit 2
}
[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap --mode=root, chroot)"

# tool -> package that provides it
need_tools() {
    local missing="" t pkg
    for t in "$@"; do
        pkg=${t#*:}
        t=${t%%:*}
        command -v "$t" >/dev/null 2>&1 || [ -x "$t" ] || missing="$missing $t (package $pkg);"
    done
    [ -z "$missing" ] || die "missing tools:$missing install them with apt-get (or deploy/install-deps.sh)"
}
need_tools mmdebstrap:mmdebstrap sgdisk:gdisk mkfs.ext4:e2fsprogs mkfs.vfat:dosfstools \
    mmd:mtools mcopy:mtools grub-mkimage:grub-common \
    zstd:zstd sfdisk:fdisk flock:util-linux chroot:coreutils \
    /usr/lib/apt/apt-helper:apt systemctl:systemd

# ---- the mirror, from the machine's apt sources ------------------------------
# Prints "URI SUITE SIGNED-BY|-" for every enabled deb source.
apt_sources() {
    local f
    for f in "$APT_ETC"/sources.list "$APT_ETC"/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '
            { sub(/#.*/, "") }
            $1 != "deb" { next }
            {
                i = 2; sb = "-"
                if ($2 ~ /^\[/) {
                    for (; i <= NF; i++) {
                        if (match($i, /signed-by=[^] ]+/)) sb = substr($i, RSTART + 10, RLENGTH - 10)
                        if ($i ~ /\]$/) { i++; break }
                    }
                }
                if (i + 1 <= NF) print $i, $(i + 1), sb
            }' "$f"
    done
    for f in "$APT_ETC"/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '
            function flush(   nu, ns, u, s, uris, suites) {
                if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no") {
                    nu = split(uri, uris, " "); ns = split(suites_, suites, " ")
                    for (u = 1; u <= nu; u++) for (s = 1; s <= ns; s++)
                        print uris[u], suites[s], (sb ~ /^\// ? sb : "-")
                }
                types = ""; uri = ""; suites_ = ""; sb = ""; enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/ { next }              # continuation (an inline key block)
            {
                key = tolower($1); sub(/:$/, "", key)
                val = $0; sub(/^[^:]*:[ \t]*/, "", val)
                if (key == "types") types = val
                else if (key == "uris") uri = val
                else if (key == "suites") suites_ = val
                else if (key == "signed-by") sb = val
                else if (key == "enabled") enabled = val
            }
            END { flush() }' "$f"
    done
}

MIRROR_ARGS=()
MIRROR_DESC=""
have_main=0
declare -A seen=()
while read -r uri suite sb; do
    case "$suite" in "$SUITE" | "$SUITE-updates" | "$SUITE-security") ;; *) continue ;; esac
    [ -z "${seen[$suite]:-}" ] || continue
    seen[$suite]=1
    [ "$suite" != "$SUITE" ] || have_main=1
    opt=""
    [ "$sb" = "-" ] || opt="[signed-by=$sb] "
    MIRROR_ARGS+=("deb $opt${uri%/} $suite main")
    MIRROR_DESC="$MIRROR_DESC${uri%/} $suite"$'\n'
done < <(apt_sources)
[ "$have_main" = 1 ] || die "no enabled 'deb' source for suite $SUITE in $APT_ETC/sources.list{,.d/*.list,.d/*.sources}"
if [ "$PRINT_SOURCES" = 1 ]; then
    printf '%s\n' "${MIRROR_ARGS[@]}"
    exit 0
fi

# ---- work directory, cache key -----------------------------------------------------------------
WORK=""
cleanup() {
    local rc=$?
    set +e # clean up all that can be, whatever fails
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        # mmdebstrap unmounts what it mounted, even on failure; be sure anyway
        # before deleting (never recurse into a mounted /proc or /dev).
        findmnt -rn -o TARGET | grep -F "$WORK/" | sort -r | while read -r m; do
            umount -l "$m" 2>/dev/null || true
        done
        rm -rf --one-file-system "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/rackboot-image.XXXXXX")

RELEASE_DATES=""
while read -r uri suite; do
    [ -n "$uri" ] || continue
    # (as root: the _apt sandbox user cannot write into the private work dir)
    /usr/lib/apt/apt-helper -o APT::Sandbox::User=root \
        download-file "$uri/dists/$suite/InRelease" "$WORK/InRelease" >/dev/null ||
        die "cannot fetch $uri/dists/$suite/InRelease"
    d=$(sed -n 's/^Date: //p' "$WORK/InRelease" | head -n1)
    [ -n "$d" ] || die "no Date in $uri/dists/$suite/InRelease"
    RELEASE_DATES="$RELEASE_DATES$uri $suite $d"$'\n'
    rm -f "$WORK/InRelease"
done <<<"$MIRROR_DESC"

KEY=$({
    cat "$SCRIPT"
    echo "$PACKAGES"
    printf '%s' "$RELEASE_DATES"
    echo "zstd-level=$ZSTD_LEVEL"
} | sha256sum | cut -c1-16)
NAME=debian-12-amd64-$KEY
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

deliver() {
    local sum
    sum=$(cut -d' ' -f1 "$CACHE/$NAME.raw.zst.sha256")
    if [ "$(readlink -f "$OUT")" != "$(readlink -f "$CACHE/$NAME.raw.zst")" ]; then
        cp --reflink=auto "$CACHE/$NAME.raw.zst" "$OUT.tmp"
        mv -f "$OUT.tmp" "$OUT"
    fi
    echo "$sum  $(basename "$OUT")" >"$OUT.sha256"
}

if [ "$REBUILD" = 0 ] && [ -s "$CACHE/$NAME.raw.zst" ] && [ -s "$CACHE/$NAME.raw.zst.sha256" ]; then
    deliver
    say "cached: $CACHE/$NAME.raw.zst ($(sed -n 's/^first_build_seconds=//p' "$CACHE/$NAME.info" 2>/dev/null || echo '?') s to build first)"
    say "wrote $OUT and $OUT.sha256"
    exit 0
fi

# ---- build -------------------------------------------------------------------------
START=$(date +%s)
say "building $NAME from:"
printf '%s' "$RELEASE_DATES" | sed 's/^/    /' >&2
ROOT=$WORK/root

# Leave documentation, man pages and translations out (as Debian's slim
# images do); the filter stays in /etc/dpkg/dpkg.cfg.d/ for later installs.
# shellcheck disable=SC2086 # PACKAGES is a list
nice mmdebstrap --mode=root --variant=minbase --format=directory \
    --include="$(echo $PACKAGES | tr ' ' ',')" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    "$SUITE" "$ROOT" "${MIRROR_ARGS[@]}"

KVER=$(basename "$(find "$ROOT/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n1)")
KVER=${KVER#vmlinuz-}
if [ -z "$KVER" ] || [ ! -s "$ROOT/boot/initrd.img-$KVER" ]; then
    die "no kernel/initrd in the image"
fi

ROOT_UUID=$(cat /proc/sys/kernel/random/uuid)
ESP_ID=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ' | tr a-f A-F)
ESP_UUID=${ESP_ID:0:4}-${ESP_ID:4:4}

# ---- configure the root file system ------------------------------------------------
cat >"$ROOT/etc/fstab" <<EOF
# <file system>  <mount point>  <type>  <options>  <dump>  <pass>
UUID=$ROOT_UUID  /          ext4  errors=remount-ro  0  1
UUID=$ESP_UUID   /boot/efi  vfat  umask=0077,nofail  0  2
EOF
mkdir -p "$ROOT/boot/efi"
echo debian >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"

# cloud-init: NoCloud only (rackboot writes a CIDATA seed), nothing that waits
# for a metadata service; systemd-networkd renders network-config.
cat >"$ROOT/etc/cloud/cloud.cfg.d/90-rackboot.cfg" <<'EOF'
# rackboot image: the deploy ramdisk writes a NoCloud seed (label CIDATA).
datasource_list: [ NoCloud, None ]
ssh_pwauth: false
disable_root: true
# cc_locale's default (en_US.UTF-8) is not generated in the image and its
# update-locale fails (cloud-init status: error); C.UTF-8 is built in.
locale: C.UTF-8
system_info:
  network:
    renderers: ['networkd']
    activators: ['networkd']
EOF

# sshd: keys only. Host keys are deleted below; cloud-init (cc_ssh) makes new
# ones on the first boot, and the unit below does if cloud-init did not.
cat >"$ROOT/etc/ssh/sshd_config.d/50-rackboot.conf" <<'EOF'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
EOF
cat >"$ROOT/etc/systemd/system/rackboot-ssh-hostkeys.service" <<'EOF'
[Unit]
Description=Generate SSH host keys when none exist
After=cloud-init.service
Before=ssh.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
EOF
systemctl --root="$ROOT" enable systemd-networkd.service systemd-resolved.service \
    ssh.service rackboot-ssh-hostkeys.service >/dev/null 2>&1
chroot "$ROOT" usermod -L root

# GRUB: the same command line for a later update-grub on the deployed host.
cat >"$ROOT/etc/default/grub" <<EOF
GRUB_DEFAULT=0
GRUB_TIMEOUT=2
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="$CMDLINE"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
EOF
for plat in i386-pc x86_64-efi; do
    mkdir -p "$ROOT/boot/grub/$plat"
    cp "$ROOT/usr/lib/grub/$plat/"*.mod "$ROOT/usr/lib/grub/$plat/"*.lst "$ROOT/boot/grub/$plat/"
done
if [ ! -e "$ROOT/vmlinuz" ] || [ ! -e "$ROOT/initrd.img" ]; then
    die "no /vmlinuz or /initrd.img symlink in the image"
fi
cat >"$ROOT/boot/grub/grub.cfg" <<EOF
# Written by rackboot's build-debian.sh; update-grub on the host replaces it.
set default=0
set timeout=2
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
insmod part_gpt
insmod ext2
search --no-floppy --fs-uuid --set=root $ROOT_UUID
menuentry 'Debian GNU/Linux 12 (rackboot image)' {
    linux /vmlinuz root=UUID=$ROOT_UUID ro $CMDLINE
    initrd /initrd.img
}
EOF

# What is inside, for the record (kept next to the cached image).
# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
chroot "$ROOT" dpkg-query -W -f='${Package} ${Version}\n' >"$WORK/manifest"

# First-boot state: new machine-id, new host keys, no cloud-init instance.
rm -f "$ROOT"/etc/ssh/ssh_host_*
: >"$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"
rm -rf "$ROOT"/var/lib/cloud/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/tmp/* "$ROOT"/var/tmp/*
find "$ROOT/var/log" -type f -delete

# ---- the disk ----------------------------------------------------------------------
# GPT: 1 BIOS boot (1 MiB, EF02), 2 ESP (FAT32), 3 root (ext4, last so a deploy
# can grow it). Root = content + 20 % + 256 MiB, rounded to 4 MiB.
used_mib=$(du -sx --block-size=1M "$ROOT" | cut -f1)
ROOT_MIB=$(((used_mib * 12 / 10 + 256 + 3) / 4 * 4))
DISK_MIB=$((1 + 1 + ESP_MIB + ROOT_MIB + 1))
RAW=$WORK/disk.raw
truncate -s "${DISK_MIB}M" "$RAW"
# (no sgdisk -q: with it sgdisk 1.0.9 exits 0 without writing the table)
sgdisk -a 2048 \
    -n 1:1M:+1M -t 1:EF02 -c 1:bios \
    -n "2:0:+${ESP_MIB}M" -t 2:EF00 -c 2:esp \
    -n 3:0:0 -t 3:8304 -c 3:root \
    "$RAW" >/dev/null
part_start() { sfdisk -d "$RAW" | sed -n "s|^$RAW$1 :.*start= *\([0-9]*\).*|\1|p"; }
part_size() { sfdisk -d "$RAW" | sed -n "s|^$RAW$1 :.*size= *\([0-9]*\).*|\1|p"; }

# ESP: built on its own file with mkfs.vfat and filled with mtools (vfat need
# not be mountable), then copied into place.
ESP_IMG=$WORK/esp.img
esp_sectors=$(part_size 2)
if [ -z "$esp_sectors" ] || [ -z "$(part_size 3)" ]; then
    die "partitioning $RAW failed"
fi
truncate -s $((esp_sectors * 512)) "$ESP_IMG"
mkfs.vfat -F 32 -S 512 -s 1 -n ESP -i "$ESP_ID" "$ESP_IMG" >/dev/null
cat >"$WORK/early-efi.cfg" <<EOF
search --no-floppy --fs-uuid --set=root $ROOT_UUID
set prefix=(\$root)/boot/grub
EOF
cp "$WORK/early-efi.cfg" "$WORK/early-pc.cfg"
grub-mkimage -O x86_64-efi -d "$ROOT/usr/lib/grub/x86_64-efi" -c "$WORK/early-efi.cfg" \
    -p /boot/grub -o "$WORK/BOOTX64.EFI" \
    part_gpt part_msdos ext2 fat search search_fs_uuid normal configfile linux \
    echo test serial terminal efi_gop all_video
mmd -i "$ESP_IMG" ::/EFI ::/EFI/BOOT
mcopy -i "$ESP_IMG" "$WORK/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
dd if="$ESP_IMG" of="$RAW" bs=512 seek="$(part_start 2)" conv=notrunc,sparse status=none

# Root: mkfs.ext4 -d fills it from the directory, straight at the partition's
# offset in the disk file (nothing mounted).
mkfs.ext4 -q -F -L root -U "$ROOT_UUID" -d "$ROOT" \
    -E "offset=$(($(part_start 3) * 512))" "$RAW" "$(($(part_size 3) / 2))k"

# BIOS: core.img into the BIOS boot partition, boot.img into the MBR. This is
# what grub-bios-setup does; it cannot be used here: it insists on finding the
# disk that holds its -d directory, and grub-install needs the root mounted
# from a partition device, which loop devices do not give in a container
# without udev/partition scanning. The two patches (grub 2.06, i386-pc):
#   boot.img  0x5c  u64  LBA of core.img's first sector
#             0x66  2 x NOP over the "boot drive check" jump (hard disks)
#   core.img  0x1f4 u64 start, u16 length: blocklist of the rest of core.img
put_le() { # FILE OFFSET NBYTES VALUE
    local hex="" i
    for ((i = 0; i < $3; i++)); do
        hex="$hex\\x$(printf %02x $((($4 >> (8 * i)) & 255)))"
    done
    printf '%b' "$hex" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
grub-mkimage -O i386-pc -d "$ROOT/usr/lib/grub/i386-pc" -c "$WORK/early-pc.cfg" \
    -p /boot/grub -o "$WORK/core.img" \
    biosdisk part_gpt ext2 search search_fs_uuid normal configfile
bios_start=$(part_start 1)
core_sectors=$((($(stat -c %s "$WORK/core.img") + 511) / 512))
[ "$core_sectors" -le "$(part_size 1)" ] || die "core.img ($core_sectors sectors) does not fit the BIOS boot partition"
put_le "$WORK/core.img" $((0x1f4)) 8 $((bios_start + 1))
put_le "$WORK/core.img" $((0x1fc)) 2 $((core_sectors - 1))
dd if="$WORK/core.img" of="$RAW" bs=512 seek="$bios_start" conv=notrunc status=none
dd if="$ROOT/usr/lib/grub/i386-pc/boot.img" of="$RAW" bs=440 count=1 conv=notrunc status=none
put_le "$RAW" $((0x5c)) 8 "$bios_start"
printf '\x90\x90' | dd of="$RAW" bs=1 seek=$((0x66)) conv=notrunc status=none

# ---- compress, cache, deliver ------------------------------------------------------
say "compressing (zstd -$ZSTD_LEVEL)"
nice zstd -q -T0 --long=27 "-$ZSTD_LEVEL" "$RAW" -o "$WORK/$NAME.raw.zst"
(cd "$WORK" && sha256sum "$NAME.raw.zst" >"$NAME.raw.zst.sha256")
END=$(date +%s)
cat >"$WORK/$NAME.info" <<EOF
first_build_seconds=$((END - START))
raw_bytes=$(stat -c %s "$RAW")
zst_bytes=$(stat -c %s "$WORK/$NAME.raw.zst")
root_mib=$ROOT_MIB
kernel=$KVER
root_uuid=$ROOT_UUID
esp_uuid=$ESP_UUID
EOF
mv -f "$WORK/manifest" "$CACHE/$NAME.manifest"
mv -f "$WORK/$NAME.info" "$CACHE/$NAME.info"
mv -f "$WORK/$NAME.raw.zst" "$CACHE/$NAME.raw.zst"
mv -f "$WORK/$NAME.raw.zst.sha256" "$CACHE/$NAME.raw.zst.sha256"
deliver
say "built $CACHE/$NAME.raw.zst in $((END - START)) s (raw $((DISK_MIB)) MiB, compressed $(($(stat -c %s "$OUT") / 1048576)) MiB)"
say "wrote $OUT and $OUT.sha256"

#!/bin/sh
# Install, from Debian 12 packages, everything rackboot needs to build, test,
# benchmark and run the lab. Idempotent: when every package is already
# installed it only asks dpkg and exits (well under a second).
#
# Run as root (CI is root). Set RACKBOOT_DEPS_DRY_RUN=1 to print what is
# missing without installing it.
set -eu

# Build and libraries. libfdisk-dev: rackboot-deploy fits a written image's
# GPT to the disk with util-linux's libfdisk (CRCs, the backup header's place,
# the protective MBR) instead of GPT code of our own. libpq-dev: the
# controller's PostgreSQL store backend (controller/store/postgresql.c).
BUILD="build-essential cmake ninja-build pkg-config git
       libnng-dev libmbedtls-dev libprotobuf-c-dev protobuf-c-compiler
       libuv1-dev libssl-dev openssl libcurl4-openssl-dev libcmocka-dev
       libsqlite3-dev sqlite3 libpq-dev libjansson-dev libyaml-dev libmicrohttpd-dev zlib1g-dev
       libcap-dev libsystemd-dev systemd
       libzstd-dev liblzma-dev libfreeipmi-dev libfdisk-dev"

# Fuzzing and sanitizers: clang's fuzzer and sanitizer runtimes are only a
# Recommends of clang, so name them explicitly.
ANALYSIS="clang libclang-rt-14-dev llvm valgrind clang-format"

# Real protocol peers the integration tests and benchmarks drive. netbase
# gives /etc/services, without which atftp refuses "udp/tftp, unknown
# service" (a minbase Debian has none). openipmi's ipmi_sim is the BMC of
# tests/integration/power_ipmi.sh, and ipmitool checks what it was told.
# python3-yaml (PyYAML, a YAML 1.1 reader) reads `rackboot -o yaml` back.
# postgresql: the server the PostgreSQL store tests start a throwaway
# cluster of (tests/integration/postgres_lib.sh); its own does not start.
# prometheus brings promtool, whose `check metrics` parses the controller's
# /metrics with Prometheus's own parser (tests/integration/controller_metrics.sh);
# its server does not start (policy-rc.d below).
# keepalived (VRRPv3) moves a rack's service address ([agent] service_address)
# between its two agents; tests/e2e/agent_pair.sh starts its own in network
# namespaces, so the packaged service must not start (policy-rc.d below; it
# has no configuration anyway).
PEERS="netbase iproute2 procps util-linux iputils-ping curl python3 python3-yaml
       isc-dhcp-client dhcpcd-base isc-dhcp-relay
       tftp-hpa atftp kea-dhcp6-server kea-admin
       nginx-light wrk radvd tcpdump keepalived
       qemu-system-x86 ipxe-qemu ipxe ovmf busybox-static cpio kmod xz-utils zstd
       openipmi ipmitool prometheus postgresql"

# Building the Debian disk image (deploy/images/build-debian.sh) and booting
# it (tests/e2e/image_boot.sh; qemu and ovmf are in PEERS): mmdebstrap makes
# the root file system, gdisk/fdisk the GPT, dosfstools/mtools the ESP without
# mounting it, grub-*-bin the BIOS and UEFI boot loaders.
IMAGE="mmdebstrap gdisk fdisk dosfstools mtools e2fsprogs grub-common
       grub2-common grub-pc-bin grub-efi-amd64-bin openssh-client shellcheck"

# Unified Kernel Images for UEFI hosts without iPXE (rack-agent/uki/):
# systemd's EFI stub, and binutils' objcopy/objdump to assemble and read
# the PE file. The agent needs these at run time, not only the tests.
UKI="systemd-boot-efi binutils"

# The Debian packages (deploy/debian/build.sh, tests/package/): debhelper
# builds them (dpkg-dev comes with build-essential), lintian judges them,
# mmdebstrap (in IMAGE) makes the chroot they are installed into;
# bash-completion runs the CLI's completion in package.bash_completion.
PACKAGING="debhelper lintian bash-completion"

# The web view in a real browser (tests/integration/web_browser.py):
# Debian's Chromium, driven headless through chromium-driver by Selenium.
BROWSER="chromium chromium-driver python3-selenium"

missing=""
for p in $BUILD $ANALYSIS $PEERS $IMAGE $UKI $PACKAGING $BROWSER; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

echo "install-deps: installing:$missing"
if [ "${RACKBOOT_DEPS_DRY_RUN:-0}" = 1 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: must run as root to install packages" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Packaged daemons (kea, nginx, radvd, keepalived) must not start on install: the tests
# start their own instances inside network namespaces. A policy-rc.d that
# denies every start does that; put back whatever was there before.
policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then
    saved=$(mktemp)
    cp -p "$policy" "$saved"
fi
restore_policy() {
    if [ -n "$saved" ]; then
        mv -f "$saved" "$policy"
    else
        rm -f "$policy"
    fi
}
trap restore_policy EXIT
printf '#!/bin/sh\nexit 101\n' > "$policy"
chmod 755 "$policy"

apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -q --no-install-recommends $missing
echo "install-deps: done"

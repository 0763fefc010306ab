#!/bin/bash
# The Debian packages end to end (deploy/debian/build.sh):
#  1. they build from a clean copy of the tree;
#  2. lintian finds no error in them (its warnings are printed);
#  3. in a fresh minbase chroot of the machine's own mirror (mmdebstrap),
#     apt installs the three with their dependencies: the binaries answer
#     --version, the rackboot user, the state directories and the conffiles
#     are there with their owners and modes, no unit is enabled or started;
#     a version bumped build (the same build tree, so only packaging runs
#     again) upgrades them and keeps a conffile the operator changed and the
#     state; purge leaves no file, directory or unit behind (the user stays,
#     see the postrm scripts).
#
# Usage: debian.sh SRCDIR WORKDIR
# WORKDIR (in the build tree) keeps the minbase tarball and the downloaded
# dependencies between runs, so only the first run bootstraps and downloads.
# Needs root (chroot, mounts); skips (77) without it.
set -euo pipefail

src=${1:?usage: debian.sh SRCDIR WORKDIR}
work=${2:?usage: debian.sh SRCDIR WORKDIR}
here=$(cd "$(dirname "$0")" && pwd)

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (chroot)"; exit 77; }
for tool in dpkg-buildpackage dh lintian mmdebstrap unshare; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool missing (deploy/install-deps.sh)"; exit 1; }
done

start=$(date +%s)
phase_start=$start
phase() {
    local now
    now=$(date +%s)
    echo "== $* (at $((now - start)) s; previous step took $((now - phase_start)) s)"
    phase_start=$now
}
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

mkdir -p "$work"
work=$(cd "$work" && pwd)
chroot_dir=$work/chroot
cleanup() {
    rm -rf "$chroot_dir" "$work/debwork"
}
trap cleanup EXIT
rm -rf "$work/out" "$work/out2" "$work/debwork" "$chroot_dir"

project_version=$(sed -n 's/^project(rackboot VERSION \([0-9][0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
bumped=$project_version+pkgtest1
# No dbgsym packages: nobody installs them here, and making them costs time.
DEB_BUILD_OPTIONS="parallel=$(nproc) noddebs"
export DEB_BUILD_OPTIONS

phase "1. build.sh from a clean copy (version $project_version)"
RACKBOOT_DEB_WORKDIR=$work/debwork "$src/deploy/debian/build.sh" "$work/out" >"$work/build.log" 2>&1 ||
    { tail -n 60 "$work/build.log"; fail "build.sh failed (log: $work/build.log)"; }
for p in rackboot-controller rackboot-agent rackboot; do
    deb=$work/out/${p}_${project_version}_$(dpkg --print-architecture).deb
    [ -f "$deb" ] || fail "no $deb"
done

phase "2. lintian"
# --fail-on error is lintian's default, said here because it is the test.
lintian_out=$work/lintian.txt
if ! lintian --fail-on error --allow-root "$work"/out/*.deb >"$lintian_out" 2>&1; then
    cat "$lintian_out"
    fail "lintian reports errors"
fi
if grep -q '^E: ' "$lintian_out"; then
    cat "$lintian_out"
    fail "lintian reports errors"
fi
echo "lintian: no errors; warnings and notes:"
sed 's/^/  /' "$lintian_out"

phase "3a. build.sh again as version $bumped (the same build tree: packaging only)"
RACKBOOT_DEB_VERSION=$bumped RACKBOOT_DEB_WORKDIR=$work/debwork \
    "$src/deploy/debian/build.sh" "$work/out2" >"$work/build2.log" 2>&1 ||
    { tail -n 60 "$work/build2.log"; fail "build.sh with RACKBOOT_DEB_VERSION failed"; }
[ "$(dpkg-deb -f "$work/out2/rackboot_${bumped}_$(dpkg --print-architecture).deb" Version)" = "$bumped" ] ||
    fail "RACKBOOT_DEB_VERSION=$bumped did not give version $bumped"

# The chroot: minbase of the machine's own apt sources (the only mirror this
# machine reaches), made once per set of sources and kept as a tarball.
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -s "$f" ] && sources+=("$f")
done
[ ${#sources[@]} -gt 0 ] || fail "no apt sources on this machine"
key=$(cat "${sources[@]}" | sha256sum | cut -c1-16)
tarball=$work/minbase-bookworm-$key.tar
if [ ! -f "$tarball" ]; then
    phase "3b. mmdebstrap minbase (once per apt sources: $tarball)"
    rm -f "$work"/minbase-bookworm-*.tar
    mmdebstrap --quiet --variant=minbase --mode=root --format=tar bookworm "$tarball.tmp" \
        "${sources[@]}" ||
        fail "mmdebstrap failed"
    mv "$tarball.tmp" "$tarball"
fi

phase "3c. install, upgrade, purge in a fresh chroot"
mkdir -p "$chroot_dir" "$work/apt-archives"
tar -C "$chroot_dir" -xf "$tarball"
mkdir -p "$chroot_dir/pkgtest/v1" "$chroot_dir/pkgtest/v2"
cp "$work"/out/*.deb "$chroot_dir/pkgtest/v1/"
cp "$work"/out2/*.deb "$chroot_dir/pkgtest/v2/"
cp "$here/in_chroot.sh" "$chroot_dir/pkgtest/"
# Dependencies downloaded by an earlier run (apt checks them again).
find "$work/apt-archives" -name '*.deb' -exec cp {} "$chroot_dir/var/cache/apt/archives/" \;
cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf" 2>/dev/null || true
# A mount namespace of its own: /proc, /dev/null and friends vanish with it,
# whatever way the test ends.
rc=0
# shellcheck disable=SC2016 # expanded by the inner shell
unshare --mount --propagation private sh -c '
    root=$1
    mount -t proc proc "$root/proc" &&
    for d in null zero full random urandom; do
        [ -e "$root/dev/$d" ] || touch "$root/dev/$d"
        mount --bind "/dev/$d" "$root/dev/$d" || exit 1
    done &&
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive /bin/bash /pkgtest/in_chroot.sh "$2" "$3"
' sh "$chroot_dir" "$project_version" "$bumped" || rc=$?
find "$chroot_dir/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec cp -u {} "$work/apt-archives/" \;
[ "$rc" = 0 ] || fail "in the chroot (exit $rc)"

phase "done: the package test took $(($(date +%s) - start)) s"

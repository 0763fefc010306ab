#!/bin/bash
# Builds the Debian 12 packages rackboot-controller, rackboot-agent and
# rackboot (CLI + rackboot-pki) into OUTDIR (default: build/deb):
#
#     deploy/debian/build.sh [OUTDIR]
#     apt install ./OUTDIR/*.deb        (debug symbols: OUTDIR/dbgsym/)
#
# Why dpkg-buildpackage with debhelper (compat 13, dh + cmake) and not CPack:
# what Debian operators and lintian expect comes with it - Depends computed
# from the binaries' libraries (dh_shlibdeps), /etc files as conffiles,
# maintainer scripts that make the system user and purge the state, systemd
# units registered, disabled and try-restarted on upgrade the way every other
# Debian service is (dh_installsystemd), man pages compressed and placed
# (dh_installman), and a lintian-clean result. CPack's DEB generator would
# need each of those written by hand, and gets several wrong by default
# (no shlibs Depends unless asked, no conffiles, no unit handling).
#
# Why debian/ lives here (deploy/debian/debian/) and not at the root: the
# build runs in a copy of the tree (dpkg-buildpackage writes
# obj-*/ and debian/ build trees into its source directory), so a developer's
# checkout and the tests' build trees are never written to, and a
# distribution that packages rackboot itself keeps its own debian/ at the
# root without clashing with ours.
#
# Environment:
#   RACKBOOT_DEB_VERSION  the packages' version (default: the CMake project
#                         VERSION, e.g. 0.1.0); a native version, no '-'
#   RACKBOOT_DEB_WORKDIR  keep the build copy here (default: a temporary
#                         directory, removed at the end). A later run with
#                         the same directory reuses its compiled objects:
#                         only what changed is rebuilt (e.g. a version bump)
#   DEB_BUILD_OPTIONS     passed on; parallel=$(nproc) is added when it has
#                         no parallel= (nice -n 10 either way)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build/deb}

die() {
    echo "build.sh: $*" >&2
    exit 1
}

project_version=$(sed -n 's/^project(rackboot VERSION \([0-9][0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
[ -n "$project_version" ] || die "no 'project(rackboot VERSION ...)' in $root/CMakeLists.txt"
version=${RACKBOOT_DEB_VERSION:-$project_version}
# A native package (source format 3.0 (native)): Debian's version syntax
# without a revision.
[[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]] ||
    die "RACKBOOT_DEB_VERSION '$version': expected a native Debian version such as 0.1.0 or 0.1.0+1"

for tool in dpkg-buildpackage dh git; do
    command -v "$tool" >/dev/null || die "$tool not found (deploy/install-deps.sh installs it)"
done

work=${RACKBOOT_DEB_WORKDIR:-}
if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/rackboot-deb.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work" "$out"
work=$(cd "$work" && pwd)
src=$work/rackboot
obj=$src/obj-$(dpkg-architecture -qDEB_HOST_GNU_TYPE)

# The tree as it is on disk (uncommitted changes included, ignored files such
# as build/ left out). An earlier copy is replaced except for its CMake build
# tree: tar keeps the files' times, so ninja rebuilds only what changed.
reuse=false
if [ -d "$obj" ]; then
    reuse=true
    find "$src" -mindepth 1 -maxdepth 1 ! -path "$obj" -exec rm -rf {} +
fi
mkdir -p "$src"
# (files deleted but not yet committed are left out: tar would stop on them)
# shellcheck disable=SC2016 # expanded by the inner sh
git -C "$root" ls-files -z --cached --others --exclude-standard |
    (cd "$root" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
    tar -C "$root" --null -T - -cf - | tar -C "$src" -xf -
cp -a "$root/deploy/debian/debian" "$src/debian"

commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain 2>/dev/null)" ]; then
    commit="$commit+uncommitted"
fi
# The commit's date, not now: the same commit gives the same changelog,
# and dpkg derives SOURCE_DATE_EPOCH (the files' times) from it.
date=$(git -C "$root" log -1 --format=%aD 2>/dev/null || date -R)
maintainer=$(sed -n 's/^Maintainer: //p' "$src/debian/control")
cat >"$src/debian/changelog" <<EOF
rackboot ($version) bookworm; urgency=medium

  * Built by deploy/debian/build.sh from git $commit.

 -- $maintainer  $date
EOF

opts=${DEB_BUILD_OPTIONS:-}
if [[ " $opts " != *" parallel="* ]]; then
    opts="$opts parallel=$(nproc)"
fi
export DEB_BUILD_OPTIONS=${opts# }

# Leftovers of an earlier run must not be picked up as this run's output.
rm -f "$work"/*.deb "$work"/*.ddeb "$work"/*.buildinfo "$work"/*.changes

# -b: binary packages only (no source package to sign or upload); -us -uc:
# unsigned. Reusing a build tree: -nc keeps obj-*, and without dh's build
# stamp configure and build run again (incrementally) on the new copy.
clean=()
if $reuse; then
    clean=(-nc)
fi
(cd "$src" && nice -n 10 dpkg-buildpackage -b -us -uc "${clean[@]}")

shopt -s nullglob
debs=() dbgsym=()
for f in "$work"/*.deb "$work"/*.ddeb; do
    case $f in
    *-dbgsym_*) dbgsym+=("$f") ;;
    *) debs+=("$f") ;;
    esac
done
[ ${#debs[@]} = 3 ] || die "dpkg-buildpackage made ${#debs[@]} packages, not 3"
rm -f "$out"/rackboot*.deb "$out"/rackboot_*.buildinfo "$out"/rackboot_*.changes
rm -rf "$out/dbgsym"
cp "${debs[@]}" "$work"/*.buildinfo "$work"/*.changes "$out"/
# The debug symbols apart, so that `apt install ./OUTDIR/*.deb` takes the
# three packages and nothing else.
if [ ${#dbgsym[@]} -gt 0 ]; then
    mkdir -p "$out/dbgsym"
    cp "${dbgsym[@]}" "$out/dbgsym/"
fi
echo "build.sh: rackboot $version packages in $out (debug symbols in dbgsym/):"
(cd "$out" && ls -1 ./*.deb)

# shellcheck shell=bash
# Debian packages as file trees, without installing them: apt-get download
# (from the machine's own apt sources, so no mirror is named here) and
# dpkg-deb -x into a cache, once per package version. Sourced by
# deploy/lab/lib.sh and deploy-ramdisk/build-ramdisk.sh.

# debpkg_version PKG: the version apt would install now (the candidate).
debpkg_version() {
    apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '(none)' | head -n 1
}

# debpkg_extract PKG DIR CACHE: DIR holds the files of PKG's candidate
# version (DIR/.complete marks a finished extraction; a DIR that has one is
# left alone). CACHE holds the lock, parallel runs wait on it (10 min).
debpkg_extract() {
    local pkg=$1 dir=$2 cache=$3
    [ -f "$dir/.complete" ] && return 0
    mkdir -p "$cache"
    (
        flock -w 600 9 || { echo "debpkg: $cache/.lock busy" >&2; exit 1; }
        [ -f "$dir/.complete" ] && exit 0
        dl=$(mktemp -d "$cache/dl.XXXXXX")
        echo "debpkg: downloading $pkg into $cache (once)" >&2
        # (as root: the _apt sandbox user cannot write into a root-owned cache)
        (cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) || { rm -rf "$dl"; exit 1; }
        rm -rf "$dir.tmp"
        dpkg-deb -x "$dl"/"${pkg%%=*}"_*.deb "$dir.tmp" || { rm -rf "$dl" "$dir.tmp"; exit 1; }
        rm -rf "$dl" "$dir"
        touch "$dir.tmp/.complete"
        mv "$dir.tmp" "$dir"
    ) 9>"$cache/.lock"
    [ -f "$dir/.complete" ]
}

#!/bin/bash
# Runs inside the minbase chroot of tests/package/debian.sh: installs
# /pkgtest/v1/*.deb with apt, checks what an operator would find, upgrades
# to /pkgtest/v2/*.deb, purges, and checks nothing is left. Every problem is
# reported; the exit status is 1 if there was any.
#
# Usage: in_chroot.sh VERSION BUMPED_VERSION
set -uo pipefail

version=${1:?} bumped=${2:?}
packages="rackboot-controller rackboot-agent rackboot"
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
ok() {
    echo "ok: $*"
}

# Every start or restart the maintainer scripts ask for is recorded here:
# deb-systemd-invoke asks policy-rc.d first, and acts only when systemd runs
# (/run/systemd/system); 101 denies, so nothing is run for real.
mkdir -p /run/systemd/system
cat >/usr/sbin/policy-rc.d <<'EOF'
#!/bin/sh
echo "$*" >>/pkgtest/invoked.log
exit 101
EOF
chmod 755 /usr/sbin/policy-rc.d
: >/pkgtest/invoked.log

# expect_mode PATH OWNER:GROUP MODE
expect_mode() {
    local got
    got=$(stat -c '%U:%G %a' "$1" 2>/dev/null) || { fail "$1 missing"; return; }
    if [ "$got" = "$2 $3" ]; then
        ok "$1 $got"
    else
        fail "$1 is $got, expected $2 $3"
    fi
}

# No unit enabled (no symlink in a .wants directory) and none started.
expect_nothing_enabled() {
    local links good=true
    links=$(find /etc/systemd/system -name 'rackboot*' 2>/dev/null)
    if [ -n "$links" ]; then
        fail "units enabled after $1: $links"
        good=false
    fi
    if grep -E '(^| )(start|restart|reload-or-restart)( |$)' /pkgtest/invoked.log | grep -q rackboot; then
        fail "the maintainer scripts started a unit during $1: $(cat /pkgtest/invoked.log)"
        good=false
    fi
    if $good; then
        ok "no unit enabled or started after $1"
    fi
}

apt_get() {
    apt-get -q -y -o Dpkg::Use-Pty=0 "$@" </dev/null
}

echo "== apt-get update"
apt_get update >/dev/null || { echo "FAIL: apt-get update"; exit 1; }

echo "== install $version"
# --no-install-recommends: what Depends alone brings must be enough to run
# the binaries (ipxe and friends are Recommends/Suggests of the agent).
apt_get install --no-install-recommends /pkgtest/v1/*.deb || { echo "FAIL: install"; exit 1; }

for bin in rackboot rackboot-pki rackboot-controller rackboot-agent; do
    out=$("$bin" --version 2>&1) || fail "$bin --version: $out"
    if [ "$out" = "$bin $version" ]; then ok "$out"; else fail "$bin --version said '$out'"; fi
done

entry=$(getent passwd rackboot) || fail "no rackboot user"
IFS=: read -r _ _ uid gid _ home shell <<<"$entry"
if [ "$uid" -lt 1000 ] && [ "$home" = /nonexistent ] && [ "$shell" = /usr/sbin/nologin ]; then
    ok "system user rackboot ($entry)"
else
    fail "rackboot user: $entry"
fi
[ "$(getent group rackboot | cut -d: -f3)" = "$gid" ] || fail "rackboot's group is not 'rackboot'"

expect_mode /var/lib/rackboot-controller rackboot:rackboot 750
expect_mode /var/lib/rackboot-agent rackboot:rackboot 750
expect_mode /var/cache/rackboot-agent rackboot:rackboot 750
grep -qx 'dir = /var/cache/rackboot-agent' /etc/rackboot/agent.conf ||
    fail "the packaged agent.conf does not keep the cache in /var/cache/rackboot-agent"
expect_mode /etc/rackboot/pki root:root 755
for f in controller agent; do
    expect_mode /etc/rackboot/$f.conf root:root 644
    dpkg-query -W -f='${Conffiles}\n' "rackboot-$f" | grep -q "^ /etc/rackboot/$f.conf " ||
        fail "/etc/rackboot/$f.conf is not a conffile of rackboot-$f"
done
for f in /lib/systemd/system/rackboot-controller.service /lib/systemd/system/rackboot-agent.service \
    /lib/systemd/system/rackboot-crl.service /lib/systemd/system/rackboot-crl.timer \
    /usr/share/man/man1/rackboot.1.gz /usr/share/man/man1/rackboot-pki.1.gz \
    /usr/share/man/man8/rackboot-controller.8.gz /usr/share/man/man8/rackboot-agent.8.gz \
    /usr/share/man/man5/rackboot-controller.conf.5.gz /usr/share/man/man5/rackboot-agent.conf.5.gz \
    /usr/share/bash-completion/completions/rackboot /usr/share/bash-completion/completions/rackboot-pki \
    /usr/share/doc/rackboot-agent/examples/hosts.conf /usr/share/doc/rackboot/README.md \
    /usr/share/doc/rackboot-controller/METRICS.md; do
    [ -e "$f" ] || fail "$f missing"
done
expect_nothing_enabled install

echo "== the operator's changes, then the upgrade to $bumped"
echo "# changed by the operator" >>/etc/rackboot/controller.conf
sed -i 's/^log_level = info$/log_level = debug/' /etc/rackboot/agent.conf
sum_ctl=$(sha256sum </etc/rackboot/controller.conf)
sum_agent=$(sha256sum </etc/rackboot/agent.conf)
echo state >/var/lib/rackboot-agent/journal-test
echo state >/var/lib/rackboot-controller/fleet.db
chown rackboot: /var/lib/rackboot-agent/journal-test /var/lib/rackboot-controller/fleet.db
: >/pkgtest/invoked.log
apt_get install --no-install-recommends /pkgtest/v2/*.deb || { echo "FAIL: upgrade"; exit 1; }
for p in $packages; do
    v=$(dpkg-query -W -f='${Version}' "$p")
    [ "$v" = "$bumped" ] || fail "$p is at $v after the upgrade, expected $bumped"
done
if [ "$(sha256sum </etc/rackboot/controller.conf)" = "$sum_ctl" ] &&
    [ "$(sha256sum </etc/rackboot/agent.conf)" = "$sum_agent" ]; then
    ok "the changed conffiles are kept"
else
    fail "the upgrade changed the operator's conffiles"
fi
if [ -f /var/lib/rackboot-agent/journal-test ] && [ -f /var/lib/rackboot-controller/fleet.db ]; then
    ok "state kept"
else
    fail "the upgrade lost state"
fi
[ "$(id -u rackboot)" = "$uid" ] || fail "the rackboot uid changed on upgrade"
expect_mode /var/lib/rackboot-agent rackboot:rackboot 750
expect_nothing_enabled upgrade

echo "== purge"
: >/pkgtest/invoked.log
# shellcheck disable=SC2086 # the package names
apt_get purge $packages || { echo "FAIL: purge"; exit 1; }
# A removed daemon must not keep running: each prerm asks to stop its units.
for unit in rackboot-controller.service rackboot-agent.service rackboot-crl.timer; do
    if grep -q "$unit stop" /pkgtest/invoked.log; then
        ok "remove stops $unit"
    else
        fail "remove did not stop $unit: $(cat /pkgtest/invoked.log)"
    fi
done
for p in $packages; do
    if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$'; then
        fail "$p still known to dpkg: $(dpkg-query -W -f='${db:Status-Abbrev}' "$p")"
    fi
done
left=$(find / -xdev \( -path /proc -o -path /pkgtest \) -prune -o \
    \( -name 'rackboot*' -o -path '/etc/rackboot' \) -print 2>/dev/null |
    grep -v '^/var/cache/apt/archives/')
if [ -z "$left" ]; then ok "purge left nothing named rackboot*"; else fail "left after purge: $left"; fi
[ ! -e /etc/rackboot ] || fail "/etc/rackboot left after purge"
# Debian's practice: a system user is not deleted (its uid may still own
# files, e.g. backups); it has no password and no shell.
if getent passwd rackboot >/dev/null; then
    ok "the rackboot user stays after purge (postrm)"
else
    fail "purge removed the rackboot user"
fi

if [ "$failures" -gt 0 ]; then
    echo "$failures failure(s) in the chroot" >&2
    exit 1
fi
echo "all chroot checks passed"

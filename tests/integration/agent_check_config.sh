#!/bin/bash
# `rackboot-agent --check-config` catches what start-up would refuse, so a
# checked configuration never fails at start, and a permanent uplink mistake
# is fatal at start instead of being retried forever:
#
#   - a [dhcp6] interface that does not exist;
#   - an [http] listen address that is not this machine's;
#   - [controller] certificate files missing, of another role, of another
#     rack, a key that does not match, a revoked certificate;
#   - two hosts with the same address, a host on the agent's own
#     advertise_address (the hosts file);
#   - and file:/// image URLs, which the cache fetches, are accepted.
#
# Usage: agent_check_config.sh rackboot-agent rackboot-pki
set -u

AGENT=${1:?usage: agent_check_config.sh rackboot-agent rackboot-pki}
PKI=${2:?usage: agent_check_config.sh rackboot-agent rackboot-pki}
T=$(mktemp -d /tmp/rb-agent-check-XXXXXX)
trap 'rm -rf "$T"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
cd "$T" || exit 1

"$PKI" --dir ca init >/dev/null &&
    "$PKI" --dir ca issue agent rack1 >/dev/null &&
    "$PKI" --dir ca issue agent rack2 >/dev/null &&
    "$PKI" --dir ca issue agent rack3 >/dev/null &&
    "$PKI" --dir ca issue operator alice >/dev/null &&
    "$PKI" --dir ca revoke agent rack3 >/dev/null &&
    "$PKI" --dir ca crl >/dev/null || fail "PKI setup"

# conf [KEY=VALUE]...: agent.conf with the [controller] files overridden.
conf() {
    local cert=ca/agent/rack1.crt key=ca/agent/rack1.key rack=rack1 iface=lo
    local listen='[::1]:0' addr=2001:db8:1::1
    local kv
    for kv in "$@"; do
        local "$kv"
    done
    cat >agent.conf <<EOC
[agent]
rack = $rack
state_dir = $T/state
advertise_address = $addr

[http]
listen = $listen

[tftp]
enabled = no

[dhcp6]
interfaces = $iface

[controller]
url = tls+tcp://[::1]:7443
server_name = ctl.test
ca = ca/ca.crt
cert = $cert
key = $key
crl = ca/crl.pem
EOC
}

# expect_check STATUS PATTERN: --check-config exits STATUS and says PATTERN.
expect_check() {
    local want=$1 pattern=$2 got
    "$AGENT" --config agent.conf --check-config >out 2>&1
    got=$?
    [ "$got" = "$want" ] || fail "--check-config exited $got, not $want (want /$pattern/): $(cat out)"
    grep -q -- "$pattern" out || fail "--check-config did not say /$pattern/: $(cat out)"
}

conf
expect_check 0 ': ok'

conf iface=rb-no-such0
expect_check 1 'no interface named rb-no-such0'

conf 'listen=[2001:db8:dead::1]:8080'
expect_check 1 '\[http\] listen: cannot listen on \[2001:db8:dead::1\]'

conf cert=ca/agent/missing.crt
expect_check 1 '\[controller\] cert ca/agent/missing.crt'

conf cert=ca/operator/alice.crt key=ca/operator/alice.key
expect_check 1 'is a operator certificate, not an agent'"'"'s'

conf rack=rack2
expect_check 1 "is rack rack1's, but \[agent\] rack is rack2"

conf key=ca/agent/rack2.key
expect_check 1 '\[controller\] cert ca/agent/rack1.crt / key ca/agent/rack2.key'

conf cert=ca/agent/rack3.crt key=ca/agent/rack3.key rack=rack3
expect_check 1 'refused by ca'

cp ca/agent/rack1.key loose.key
chmod 0644 loose.key
conf key=loose.key
expect_check 1 '\[controller\] key loose.key: .*mode 0644'

# Start-up refuses what --check-config refuses: a missing certificate is
# fatal at once (exit 1), not an uplink retrying forever.
conf cert=ca/agent/missing.crt
timeout 60 "$AGENT" --config agent.conf >run.out 2>&1
rc=$?
[ "$rc" = 1 ] || fail "start with a missing certificate exited $rc, not 1: $(tail -5 run.out)"
grep -q 'ca/agent/missing.crt' run.out || fail "start did not name the certificate: $(cat run.out)"

# ---- the hosts file ----
conf
cat >>agent.conf <<EOC

[standalone]
hosts = hosts.conf
EOC
sed -i '/^\[controller\]/,/^crl/d' agent.conf
head -c 1000 /dev/urandom >image
SHA=$(sha256sum image | cut -d' ' -f1)
hosts() { # hosts ADDR-OF-WEB2
    cat >hosts.conf <<EOH
[profile p]
kernel = file://$T/image sha256=$SHA
initrd = file://$T/image sha256=$SHA

[host web1]
mac = 52:54:00:00:00:01
address = 2001:db8:1::11
install = p

[host web2]
mac = 52:54:00:00:00:02
address = $1
install = p
EOH
}
hosts 2001:db8:1::12
expect_check 0 ': ok'
hosts 2001:db8:1::11
expect_check 1 'address 2001:db8:1::11 of host web2 is already used by host web1 (line 7)'
hosts 2001:db8:1::1
expect_check 1 "address 2001:db8:1::1 of host web2 is the agent's advertise_address"

# ---- image profiles and the deploy ramdisk ----
hosts 2001:db8:1::12
cat >>hosts.conf <<EOH

[profile img]
kind = image
image = file://$T/image sha256=$SHA

[host db1]
mac = 52:54:00:00:00:03
address = 2001:db8:1::13
install = img
EOH
expect_check 1 'profile img is kind = image, but \[deploy\] ramdisk is not set'
printf '\n[deploy]\nramdisk = ramdisk\n' >>agent.conf
expect_check 1 '\[deploy\] ramdisk .*ramdisk: No such file or directory (image profiles cannot be served'
mkdir -p ramdisk
head -c 100 /dev/urandom >ramdisk/vmlinuz
expect_check 1 '\[deploy\] ramdisk .*ramdisk: initrd.img: No such file'
: >ramdisk/initrd.img
expect_check 1 '\[deploy\] ramdisk .*ramdisk: initrd.img: empty'
head -c 100 /dev/urandom >ramdisk/initrd.img
expect_check 0 ': ok'
grep -q 'note: no \[deploy\] ramdisk' out && fail "--check-config notes a missing ramdisk that is there"
sed -i '/^\[deploy\]/,$d' agent.conf
hosts 2001:db8:1::12
expect_check 0 'note: no \[deploy\] ramdisk: hosts of image profiles (kind = image) cannot be served'

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "agent --check-config: ok"

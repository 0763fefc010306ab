#!/bin/bash
# rackboot-agent's command line: --help, --version, and --check-config on the
# shipped examples (must pass) and on a broken file (every problem listed
# with file and line, non-zero exit). Needs no privileges.
AGENT=${1:?usage: $0 PATH/TO/rackboot-agent EXAMPLES_DIR}
EXAMPLES=${2:?usage: $0 PATH/TO/rackboot-agent EXAMPLES_DIR}
T=$(mktemp -d /tmp/rackboot-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() {
    echo "FAIL: $*"
    exit 1
}

"$AGENT" --help | grep -q -- "--check-config" || fail "--help does not list --check-config"
"$AGENT" --version | grep -Eq '^rackboot-agent [0-9]+\.[0-9]+\.[0-9]+' || fail "--version"
"$AGENT" >/dev/null 2>&1 && fail "no --config must be a usage error"

# The shipped example serves eth1: check it where an eth1 exists (a
# throwaway namespace with a veth pair; the dummy module may be missing)
# when we may make one, else with the interface swapped for lo. Its deploy
# ramdisk is what build-ramdisk.sh installs: stand-in files in $T here.
# The configs and the templates the hosts file names beside them.
cp "$EXAMPLES"/*.conf "$EXAMPLES"/*.ks "$EXAMPLES"/*.preseed "$T/"
mkdir "$T/deploy"
echo kernel >"$T/deploy/vmlinuz"
echo initrd >"$T/deploy/initrd.img"
sed -i "s|^ramdisk = /var/lib/rackboot-agent/deploy\$|ramdisk = $T/deploy|" "$T/agent.conf"
grep -q "^ramdisk = $T/deploy\$" "$T/agent.conf" || fail "the example has no [deploy] ramdisk line to point at $T/deploy"
if [ "$(id -u)" = 0 ] && ip netns add "rb-cli-$$" 2>/dev/null; then
    trap 'ip netns del "rb-cli-$$" 2>/dev/null; rm -rf "$T"' EXIT
    ip -n "rb-cli-$$" link add eth1 type veth peer name eth1-peer
    ip -n "rb-cli-$$" link set lo up
    ip -n "rb-cli-$$" link set eth1 up
    out=$(ip netns exec "rb-cli-$$" "$AGENT" --config "$T/agent.conf" --check-config 2>&1) ||
        fail "shipped example rejected: $out"
else
    sed -i 's/^interfaces = eth1$/interfaces = lo/' "$T/agent.conf"
    out=$("$AGENT" --config "$T/agent.conf" --check-config 2>&1) ||
        fail "shipped example (interfaces = lo) rejected: $out"
fi
# Without its ramdisk, the example's image profile cannot be served: said.
rm "$T/deploy/initrd.img"
out=$("$AGENT" --config "$T/agent.conf" --check-config 2>&1) && fail "a missing deploy ramdisk passed --check-config"
echo "$out" | grep -q "ramdisk $T/deploy: initrd.img: No such file" || fail "missing ramdisk not named: $out"
rm -rf "${T:?}"/*

cat >"$T/agent.conf" <<'EOC'
[agent]
rack = r1
state_dir = /nonexistent
advertise_address = 2001:db8::zz
[dhcp6]
port = 0
[standalone]
hosts = hosts.conf
EOC
printf '[host a]\nmac = 52:54:00:00:00:01\naddress = 2001:db8::1\ninstall = el9\n' \
    >"$T/hosts.conf"
out=$("$AGENT" --config "$T/agent.conf" --check-config 2>&1) && fail "broken config accepted"
echo "$out" | grep -q "$T/agent.conf:4: advertise_address" || fail "line 4 not reported: $out"
echo "$out" | grep -q "$T/agent.conf:6: port" || fail "line 6 not reported: $out"

# A valid agent.conf with a broken hosts file fails too, naming the hosts file.
sed -i 's/^advertise_address.*/advertise_address = 2001:db8::1/; s/^port = 0/port = 547/' \
    "$T/agent.conf"
out=$("$AGENT" --config "$T/agent.conf" --check-config 2>&1) && fail "unknown profile accepted"
echo "$out" | grep -q "$T/hosts.conf:4: host a: unknown profile \"el9\"" ||
    fail "hosts file problem not reported: $out"
# --check-config writes no state.
[ -e /nonexistent ] && fail "state_dir created by --check-config"
echo "PASS: agent cli"

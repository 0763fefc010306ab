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

out=$("$AGENT" --config "$EXAMPLES/agent.conf" --check-config 2>&1) ||
    fail "shipped example rejected: $out"

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

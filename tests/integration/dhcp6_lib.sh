# Shared setup for the DHCPv6 integration tests (sourced, not run).
#
# Topology, in namespaces of our own named after the test and its pid so tests
# run in parallel:
#
#     $SRV (agent, radvd)  veth-s 2001:db8:1::1/64  <->  veth-c  $CLI (client)
#
# Every wait is bounded; the EXIT trap stops what we started (by pid) and
# deletes the namespaces. Tests need root and `ip netns`: otherwise they print
# SKIP and exit 77, which ctest reports as skipped.

AGENT=${1:?usage: $0 PATH/TO/rackboot-agent}
TEST_NAME=$(basename "$0" .sh)
ID="$$"
SRV="rb-srv-$ID"
CLI="rb-cli-$ID"
RLY="rb-rly-$ID"
CLI_MAC=52:54:00:12:34:56
NAMESPACES=""
AGENT_PID=""

skip() {
    echo "SKIP: $TEST_NAME: $*"
    exit 77
}

fail() {
    echo "FAIL: $TEST_NAME: $*"
    # Every agent's log (agent.log, or one per agent: NAME.log) and the clients'.
    for f in "$T"/*.log "$T"/dhclient.out "$T"/dhcpcd.out "$T"/relay.out; do
        if [ -s "$f" ]; then
            echo "---- $f (last 60 lines)"
            tail -n 60 "$f"
        fi
    done
    exit 1
}

[ "$(id -u)" = 0 ] || skip "needs root"
command -v ip >/dev/null || skip "no ip(8)"
ip netns add "rb-probe-$ID" 2>/dev/null || skip "ip netns unavailable"
ip netns del "rb-probe-$ID"
T=$(mktemp -d "/tmp/rackboot-$TEST_NAME.XXXXXX")

cleanup() {
    for ns in $NAMESPACES; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill "$pid" 2>/dev/null
        done
    done
    sleep 0.2
    for ns in $NAMESPACES; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -9 "$pid" 2>/dev/null
        done
        ip netns del "$ns" 2>/dev/null
        rm -rf "/etc/netns/$ns"
    done
    if [ "${KEEP_TMP:-0}" != 1 ]; then
        rm -rf "$T"
    fi
}
trap cleanup EXIT

new_ns() {
    # DHCP clients' hook scripts rewrite /etc/resolv.conf, and `ip netns exec`
    # shares the host's /etc: give each namespace a resolv.conf of its own
    # (ip netns exec bind-mounts /etc/netns/NAME/* over /etc) so no test ever
    # touches the machine's.
    mkdir -p "/etc/netns/$1" && : >"/etc/netns/$1/resolv.conf" ||
        fail "cannot create /etc/netns/$1/resolv.conf"
    ip netns add "$1" || fail "cannot create namespace $1"
    NAMESPACES="$NAMESPACES $1"
    ip -n "$1" link set lo up
    # No duplicate address detection: addresses are usable at once, so no
    # test waits on DAD timing.
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
        net.ipv6.conf.default.accept_dad=0
}

# wait_for SECONDS COMMAND...: polls until the command succeeds.
wait_for() {
    local limit=$(( $1 * 10 )) i=0
    shift
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -ge "$limit" ] && return 1
        sleep 0.1
    done
    return 0
}

# The basic two-namespace link, radvd announcing the prefix with M and O.
setup_link() {
    new_ns "$SRV"
    new_ns "$CLI"
    ip -n "$SRV" link add veth-s type veth peer name veth-c netns "$CLI" || fail "veth"
    ip -n "$CLI" link set veth-c address "$CLI_MAC"
    ip -n "$SRV" addr add 2001:db8:1::1/64 dev veth-s nodad
    ip -n "$SRV" link set veth-s up
    ip -n "$CLI" link set veth-c up
    # The client takes addresses from DHCPv6 only, not from SLAAC.
    ip netns exec "$CLI" sysctl -qw net.ipv6.conf.veth-c.autoconf=0
    start_radvd "$SRV" veth-s
}

start_radvd() {
    command -v radvd >/dev/null || skip "radvd not installed"
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.forwarding=1
    cat >"$T/radvd-$1.conf" <<EOR
interface $2 {
    AdvSendAdvert on;
    AdvManagedFlag on;
    AdvOtherConfigFlag on;
    MinRtrAdvInterval 3;
    MaxRtrAdvInterval 10;
    prefix 2001:db8:1::/64 { AdvAutonomous off; AdvOnLink on; };
};
EOR
    ip netns exec "$1" radvd -n -C "$T/radvd-$1.conf" -p "$T/radvd-$1.pid" -m stderr \
        >"$T/radvd-$1.log" 2>&1 &
}

# write_config [EXTRA DHCP6 LINES]: agent.conf and hosts.conf in $T.
write_config() {
    cat >"$T/agent.conf" <<EOC
[agent]
rack = test
state_dir = $T/state
advertise_address = ${ADVERTISE:-2001:db8:1::1}
gateway = 2001:db8:1::1
log_level = debug

[dhcp6]
interfaces = veth-s
dns_servers = 2001:db8:1::53
domain_search = rack.example.com
${DHCP6_EXTRA:-}

[standalone]
hosts = hosts.conf
EOC
    cat >"$T/hosts.conf" <<EOH
[profile el9]
kernel = http://mirror.example.com/vmlinuz sha256=$(printf '%064d' 1)
initrd = http://mirror.example.com/initrd.img sha256=$(printf '%064d' 2)

[host web17]
mac = ${HOST_MAC:-$CLI_MAC}
address = 2001:db8:1::17
install = ${HOST_INSTALL:-el9}
EOH
}

ready_count() {
    grep -c "info rackboot-agent: ready" "$T/agent.log" 2>/dev/null
}

agent_ready_since() {
    [ "$(ready_count)" -gt "$1" ]
}

start_agent() {
    local before
    before=$(ready_count)
    ip netns exec "$SRV" "$AGENT" --config "$T/agent.conf" >>"$T/agent.log" 2>&1 &
    AGENT_PID=$!
    wait_for 10 agent_ready_since "${before:-0}" || fail "agent did not start"
}

stop_agent() {
    kill -TERM "$AGENT_PID"
    local i=0
    while kill -0 "$AGENT_PID" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -ge 100 ] && fail "agent did not stop on SIGTERM"
        sleep 0.1
    done
    wait "$AGENT_PID" || fail "agent exited with status $? on SIGTERM"
    AGENT_PID=""
}

# run_dhclient NS IFACE [EXTRA ARGS]: one DHCPv6 exchange; the script hook
# dumps its environment to $T/dhclient.env.REASON and then configures the
# address with the system dhclient-script.
run_dhclient() {
    local ns=$1 ifc=$2
    shift 2
    command -v dhclient >/dev/null || skip "dhclient not installed"
    cat >"$T/dhclient-hook.sh" <<EOS
#!/bin/sh
env > "$T/dhclient.env.\$reason"
exec /sbin/dhclient-script "\$@"
EOS
    chmod +x "$T/dhclient-hook.sh"
    cat >"$T/dhclient.conf" <<EOS
also request dhcp6.bootfile-url;
EOS
    touch "$T/dhclient.leases"
    # dhclient binds its socket to the link-local address and exits at once
    # (EADDRNOTAVAIL) if the kernel has not added it yet: the address only
    # appears once the veth pair has carrier, a moment after `link set up`.
    wait_for 10 link_local_ready "$ns" "$ifc" ||
        fail "no usable link-local address on $ifc in $ns"
    timeout "${DHCLIENT_TIMEOUT:-30}" ip netns exec "$ns" dhclient -6 -1 -v \
        -cf "$T/dhclient.conf" -lf "$T/dhclient.leases" -pf "$T/dhclient.pid" \
        -sf "$T/dhclient-hook.sh" "$@" "$ifc" >>"$T/dhclient.out" 2>&1
}

# kill_dhclient: the daemonized dhclient from run_dhclient.
kill_dhclient() {
    if [ -s "$T/dhclient.pid" ]; then
        kill "$(cat "$T/dhclient.pid")" 2>/dev/null
        rm -f "$T/dhclient.pid"
    fi
}

# link_local_ready NS IFACE: the interface has a link-local address that is
# no longer tentative.
link_local_ready() {
    local addrs
    addrs=$(ip -n "$1" -6 addr show dev "$2" scope link) || return 1
    grep -q 'inet6 fe80::' <<<"$addrs" && ! grep -q tentative <<<"$addrs"
}

has_addr() {
    ip -n "$1" -6 addr show dev "$2" | grep -q "inet6 $3/"
}

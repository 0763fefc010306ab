#!/bin/bash
# Two agents of one rack on one link: dhclient -6 gets the host's reserved
# address from either, takes the primary (Preference 255) while it answers,
# and the second agent (Preference 128) once the primary is SIGKILLed. Each
# agent's boot URL points at itself.
#
#     $SRV  primary agent, radvd   br0 2001:db8:1::1/64 ─┬─ veth-c  $CLI (client)
#     $SRV2 second agent         veth-s2 2001:db8:1::2/64 ┘
. "$(dirname "$0")/dhcp6_lib.sh"

SRV2="rb-srv2-$ID"
ROUNDS=3

# pair_link: the bridge in $SRV with the client's and the second agent's
# links on it. No multicast snooping: both agents must hear every Solicit.
pair_link() {
    new_ns "$SRV"
    new_ns "$SRV2"
    new_ns "$CLI"
    ip -n "$SRV" link add br0 type bridge mcast_snooping 0 || fail "bridge"
    ip -n "$SRV" link add veth-b1 type veth peer name veth-c netns "$CLI" || fail "veth to $CLI"
    ip -n "$SRV" link add veth-b2 type veth peer name veth-s2 netns "$SRV2" ||
        fail "veth to $SRV2"
    ip -n "$CLI" link set veth-c address "$CLI_MAC"
    for l in veth-b1 veth-b2; do
        ip -n "$SRV" link set "$l" master br0
        ip -n "$SRV" link set "$l" up
    done
    ip -n "$SRV" addr add 2001:db8:1::1/64 dev br0 nodad
    ip -n "$SRV" link set br0 up
    ip -n "$SRV2" addr add 2001:db8:1::2/64 dev veth-s2 nodad
    ip -n "$SRV2" link set veth-s2 up
    ip -n "$CLI" link set veth-c up
    ip netns exec "$CLI" sysctl -qw net.ipv6.conf.veth-c.autoconf=0
    start_radvd "$SRV" br0
}

# agent_config NAME IFACE ADDRESS PREFERENCE: $T/NAME.conf, with the rack's
# one hosts file (the same reservation on both agents).
agent_config() {
    cat >"$T/$1.conf" <<EOC
[agent]
rack = test
state_dir = $T/$1
advertise_address = $3
gateway = 2001:db8:1::1
log_level = debug

[dhcp6]
interfaces = $2
preference = $4

[standalone]
hosts = hosts.conf
EOC
}

write_pair_config() {
    agent_config primary br0 2001:db8:1::1 255
    agent_config second veth-s2 2001:db8:1::2 128
    cat >"$T/hosts.conf" <<EOH
[profile el9]
kernel = http://mirror.example.com/vmlinuz sha256=$(printf '%064d' 1)
initrd = http://mirror.example.com/initrd.img sha256=$(printf '%064d' 2)

[host web17]
mac = $CLI_MAC
address = 2001:db8:1::17
install = el9
EOH
}

# start_pair_agent NAME NS: runs the agent, waits for its "ready"; the pid
# goes to $T/NAME.pid.
start_pair_agent() {
    ip netns exec "$2" "$AGENT" --config "$T/$1.conf" >>"$T/$1.log" 2>&1 &
    echo $! >"$T/$1.pid"
    wait_for 20 grep -q "info rackboot-agent: ready" "$T/$1.log" ||
        fail "agent $1 did not start: $(tail -n 20 "$T/$1.log")"
}

# lease_round N: a fresh dhclient exchange (no lease remembered); prints the
# boot URL the client was given. The address must be the reservation.
lease_round() {
    kill_dhclient
    rm -f "$T"/dhclient.leases "$T"/dhclient.env.*
    ip -n "$CLI" -6 addr flush dev veth-c scope global
    run_dhclient "$CLI" veth-c || fail "round $1: dhclient got no lease"
    has_addr "$CLI" veth-c 2001:db8:1::17 || fail "round $1: reserved address not configured"
    local env_file="$T/dhclient.env.BOUND6"
    [ -s "$env_file" ] || fail "round $1: dhclient script not run for BOUND6"
    sed -n 's/^new_dhcp6_bootfile_url=//p' "$env_file"
}

pair_link
write_pair_config
start_pair_agent primary "$SRV"
start_pair_agent second "$SRV2"

# Both agents hear every Solicit; whichever Advertise arrives first, the
# client ends with the primary: its 255 is taken at once, the second
# agent's 128 only at the end of the first retransmission time.
for round in $(seq 1 "$ROUNDS"); do
    url=$(lease_round "$round") || exit 1
    [ "$url" = "http://[2001:db8:1::1]/boot/$CLI_MAC.ipxe" ] ||
        fail "round $round: took $url, not the primary's boot URL"
done
n=$(grep -c "dhcp6 bound host=web17" "$T/primary.log")
[ "$n" -ge "$ROUNDS" ] || fail "primary bound web17 $n times, not $ROUNDS"
grep -q "dhcp6 rx type=solicit .* answer=advertise" "$T/second.log" ||
    fail "the second agent never advertised"

kill -KILL "$(cat "$T/primary.pid")"
url=$(lease_round after-kill) || exit 1
[ "$url" = "http://[2001:db8:1::2]/boot/$CLI_MAC.ipxe" ] ||
    fail "with the primary gone, took $url, not the second agent's boot URL"
grep -q "dhcp6 bound host=web17 mac=$CLI_MAC addr=2001:db8:1::17" "$T/second.log" ||
    fail "the second agent logged no binding of the reservation"
kill_dhclient
echo "PASS: $TEST_NAME ($ROUNDS rounds through the primary, then the second agent)"

#!/bin/bash
# The host is served through ISC dhcrelay -6 in a middle namespace:
#
#   $CLI veth-c  <->  veth-rl $RLY veth-ru  <->  veth-s $SRV (agent)
#   2001:db8:1::/64 (client link)      2001:db8:2::/64
#
# The client sends a DUID-UUID, and ISC dhcrelay does not add option 79, so
# the agent must find the MAC in the EUI-64 peer-address of the Relay-forward;
# the address must be on the link named by the relay's link-address.
#
# First the relay is not in [dhcp6] trusted_relays: its Relay-forwards get no
# answer and rackboot_dhcp6_relay_untrusted_total counts them (issue #10).
# Then it is trusted and the host is served.
. "$(dirname "$0")/dhcp6_lib.sh"

command -v dhcrelay >/dev/null || skip "dhcrelay not installed"
new_ns "$SRV"
new_ns "$RLY"
new_ns "$CLI"
ip -n "$CLI" link add veth-c type veth peer name veth-rl netns "$RLY" || fail "veth"
ip -n "$RLY" link add veth-ru type veth peer name veth-s netns "$SRV" || fail "veth"
ip -n "$CLI" link set veth-c address "$CLI_MAC"
ip netns exec "$CLI" sysctl -qw net.ipv6.conf.veth-c.autoconf=0
ip -n "$RLY" addr add 2001:db8:1::1/64 dev veth-rl nodad
ip -n "$RLY" addr add 2001:db8:2::2/64 dev veth-ru nodad
ip -n "$SRV" addr add 2001:db8:2::1/64 dev veth-s nodad
for l in "$CLI veth-c" "$RLY veth-rl" "$RLY veth-ru" "$SRV veth-s"; do
    set -- $l
    ip -n "$1" link set "$2" up
done
ip -n "$SRV" route add 2001:db8:1::/64 via 2001:db8:2::2 || fail "route"
start_radvd "$RLY" veth-rl

# relay_untrusted: the agent's counter of Relay-forwards from untrusted relays.
relay_untrusted() {
    ip netns exec "$SRV" curl -sf -m 5 "http://[::1]/metrics" |
        sed -n 's/^rackboot_dhcp6_relay_untrusted_total //p'
}

# dhcrelay sends its Relay-forwards from its upstream address, 2001:db8:2::2.
# Only another relay is trusted at first.
ADVERTISE=2001:db8:2::1 DHCP6_EXTRA="trusted_relays = 2001:db8:ff::1, 2001:db8:fe::/64" \
    write_config
start_agent

ip netns exec "$RLY" dhcrelay -6 -d -pf "$T/relay.pid" -l veth-rl \
    -u 2001:db8:2::1%veth-ru >"$T/relay.out" 2>&1 &
wait_for 10 grep -q "Sending on" "$T/relay.out" || fail "dhcrelay did not start"

printf 'default-duid "\\000\\004\\021\\042\\063\\104\\125\\146\\167\\210\\231\\252\\273\\314\\335\\356\\377\\001";\n' \
    >"$T/dhclient.leases"
[ "$(relay_untrusted)" = 0 ] || fail "relay_untrusted_total not 0 at start: $(relay_untrusted)"
DHCLIENT_TIMEOUT=6 run_dhclient "$CLI" veth-c && fail "answered through an untrusted relay"
kill_dhclient
has_addr "$CLI" veth-c 2001:db8:1::17 && fail "address configured through an untrusted relay"
grep -q "Relaying Solicit" "$T/relay.out" || fail "dhcrelay relayed nothing"
n=$(relay_untrusted)
[ "${n:-0}" -ge 1 ] || fail "rackboot_dhcp6_relay_untrusted_total did not rise: '${n}'"
grep -q "relayed=yes answer=relay-repl" "$T/agent.log" && fail "the agent answered an untrusted relay"
echo "untrusted relay: no answer, relay_untrusted_total=$n"
stop_agent

# Now the relay is trusted (by prefix, next to an address).
ADVERTISE=2001:db8:2::1 DHCP6_EXTRA="trusted_relays = 2001:db8:ff::1, 2001:db8:2::/64" \
    write_config
start_agent
run_dhclient "$CLI" veth-c || fail "dhclient got no lease through the relay"
has_addr "$CLI" veth-c 2001:db8:1::17 || fail "reserved address not configured"
grep -q "dhcp6 rx type=request .* relayed=yes answer=relay-repl" "$T/agent.log" ||
    fail "the Request was not answered as relayed"
grep -q "dhcp6 bound host=web17 mac=$CLI_MAC addr=2001:db8:1::17 duid=0004" "$T/agent.log" ||
    fail "not bound by MAC through the relay"
grep -qx "new_dhcp6_bootfile_url=http://\[2001:db8:2::1\]/boot/$CLI_MAC.ipxe" \
    "$T/dhclient.env.BOUND6" || fail "bootfile-url missing"
kill_dhclient
stop_agent
echo "PASS: $TEST_NAME"

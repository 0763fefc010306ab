#!/bin/bash
# Bindings and the server DUID survive an agent restart: a client that got a
# lease renews it with the restarted agent (same Server ID, so its Renew is
# answered rather than dropped) and keeps the same address.
. "$(dirname "$0")/dhcp6_lib.sh"

setup_link
# T1 = 3 s, T2 = 4 s: dhclient renews soon after it is bound.
DHCP6_EXTRA="preferred_lifetime = 6
valid_lifetime = 30"
write_config
start_agent

run_dhclient "$CLI" veth-c || fail "dhclient got no lease"
has_addr "$CLI" veth-c 2001:db8:1::17 || fail "reserved address not configured"
duid_before=$(grep -o 'server duid=[0-9a-f]*' "$T/agent.log")

stop_agent
grep -q "^+ host 2001:db8:1::17 [0-9]* c $CLI_MAC 0001" "$T/state/dhcp6.leases" ||
    fail "binding not in the lease file: $(cat "$T/state/dhcp6.leases")"
mark=$(wc -l <"$T/agent.log")
start_agent
tail -n +"$((mark + 1))" "$T/agent.log" | grep -q "leases restored .* bindings=1" ||
    fail "binding not restored"
[ "$(tail -n +"$((mark + 1))" "$T/agent.log" | grep -o 'server duid=[0-9a-f]*')" = "$duid_before" ] ||
    fail "server DUID changed across the restart"

renewed() {
    tail -n +"$((mark + 1))" "$T/agent.log" | grep -q "type=renew .* answer=reply"
}
wait_for 20 renewed || fail "no Renew answered by the restarted agent"
wait_for 5 test -e "$T/dhclient.env.RENEW6" || fail "dhclient did not accept the Renew reply"
has_addr "$CLI" veth-c 2001:db8:1::17 || fail "address changed after the restart"
[ "$(ip -n "$CLI" -6 addr show dev veth-c scope global | grep -c inet6)" = 1 ] ||
    fail "more than one global address: $(ip -n "$CLI" -6 addr show dev veth-c)"
kill_dhclient
stop_agent
echo "PASS: $TEST_NAME"

#!/bin/bash
# A client identifying itself with a DUID-UUID (no MAC in it) from its EUI-64
# link-local address is matched by the MAC in that address.
. "$(dirname "$0")/dhcp6_lib.sh"

setup_link
write_config
start_agent

# dhclient takes its DUID from the lease file's default-duid (octal escapes).
printf 'default-duid "\\000\\004\\021\\042\\063\\104\\125\\146\\167\\210\\231\\252\\273\\314\\335\\356\\377\\001";\n' \
    >"$T/dhclient.leases"
run_dhclient "$CLI" veth-c || fail "dhclient got no lease"
has_addr "$CLI" veth-c 2001:db8:1::17 || fail "reserved address not configured"
grep -q "dhcp6 bound host=web17 mac=$CLI_MAC addr=2001:db8:1::17 duid=00041122334455667788" \
    "$T/agent.log" || fail "not bound by the EUI-64 MAC with the DUID-UUID"
grep -qx "new_dhcp6_bootfile_url=http://\[2001:db8:1::1\]/boot/$CLI_MAC.ipxe" \
    "$T/dhclient.env.BOUND6" || fail "bootfile-url missing"
kill_dhclient
stop_agent
echo "PASS: $TEST_NAME"

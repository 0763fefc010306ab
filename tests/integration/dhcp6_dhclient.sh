#!/bin/bash
# dhclient -6 gets the host's reserved address and its iPXE boot URL from the
# agent, on a directly attached link.
. "$(dirname "$0")/dhcp6_lib.sh"

setup_link
write_config
start_agent

run_dhclient "$CLI" veth-c || fail "dhclient got no lease"
has_addr "$CLI" veth-c 2001:db8:1::17 || fail "reserved address not configured"
env_file=$(ls "$T"/dhclient.env.BOUND6 2>/dev/null) || fail "dhclient script not run for BOUND6"
grep -qx "new_dhcp6_bootfile_url=http://\[2001:db8:1::1\]/boot/$CLI_MAC.ipxe" "$env_file" ||
    fail "bootfile-url missing: $(grep bootfile "$env_file")"
grep -q "new_dhcp6_name_servers=2001:db8:1::53" "$env_file" || fail "DNS server missing"
grep -q "new_dhcp6_domain_search=rack.example.com" "$env_file" || fail "search list missing"
grep -q "dhcp6 bound host=web17 mac=$CLI_MAC addr=2001:db8:1::17 duid=00010001" "$T/agent.log" ||
    fail "no bound log line with the DUID-LLT"
kill_dhclient
stop_agent
grep -q "dhcp6 stats why=shutdown .*reply=1" "$T/agent.log" || fail "shutdown stats missing"
echo "PASS: $TEST_NAME"

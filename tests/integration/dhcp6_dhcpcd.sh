#!/bin/bash
# dhcpcd -6 (after the router advertisement's M flag) gets the reserved
# address and the boot URL.
. "$(dirname "$0")/dhcp6_lib.sh"

command -v dhcpcd >/dev/null || skip "dhcpcd not installed"
setup_link
write_config
start_agent

cat >"$T/dhcpcd.conf" <<EOC
ipv6only
ia_na 1
option dhcp6_bootfile_url
option dhcp6_name_servers
option dhcp6_domain_search
EOC
cat >"$T/dhcpcd-hook.sh" <<EOC
#!/bin/sh
env > "$T/dhcpcd.env.\$reason"
EOC
chmod +x "$T/dhcpcd-hook.sh"
# dhcpcd keeps its pid file, control socket and DUID under /run/dhcpcd and
# /var/lib/dhcpcd: give this run private copies in its own mount namespace.
timeout 40 ip netns exec "$CLI" unshare -m sh -c "
    mkdir -p /run/dhcpcd /var/lib/dhcpcd &&
    mount -t tmpfs tmpfs /run/dhcpcd && mount -t tmpfs tmpfs /var/lib/dhcpcd &&
    exec dhcpcd -6 -1 -B -d -t 20 -f '$T/dhcpcd.conf' -c '$T/dhcpcd-hook.sh' veth-c" \
    >"$T/dhcpcd.out" 2>&1 || fail "dhcpcd got no lease"
has_addr "$CLI" veth-c 2001:db8:1::17 || fail "reserved address not configured"
env_file=$(ls "$T"/dhcpcd.env.BOUND6 2>/dev/null) || fail "no BOUND6 hook run"
grep -q "new_dhcp6_bootfile_url=http://\[2001:db8:1::1\]/boot/$CLI_MAC.ipxe" "$env_file" ||
    fail "bootfile-url missing: $(grep -i boot "$env_file")"
grep -q "dhcp6 bound host=web17 mac=$CLI_MAC addr=2001:db8:1::17" "$T/agent.log" ||
    fail "no bound log line"
stop_agent
echo "PASS: $TEST_NAME"

#!/bin/bash
# A host without an install intent (install = none) gets no answer at all, so
# it falls through to its local disk; the agent counts and logs it. A SIGHUP
# that gives it an install makes the next attempt succeed.
. "$(dirname "$0")/dhcp6_lib.sh"

setup_link
HOST_INSTALL=none write_config
start_agent

DHCLIENT_TIMEOUT=6 run_dhclient "$CLI" veth-c && fail "dhclient got a lease without an intent"
has_addr "$CLI" veth-c 2001:db8:1::17 && fail "address configured without an intent"
grep -q "Advertise\|RCV:" "$T/dhclient.out" && fail "the client received an answer"
grep -q "dhcp6 ignored type=solicit src=fe80::5054:ff:fe12:3456 .*reason=no-intent" \
    "$T/agent.log" || fail "ignored Solicit not logged"
kill -USR1 "$AGENT_PID"
wait_for 5 grep -Eq "dhcp6 stats why=sigusr1 .*ignored_no_intent=[1-9]" "$T/agent.log" ||
    fail "ignored counter not reported"
grep -Eq "why=sigusr1 .* advertise=0 reply=0" "$T/agent.log" || fail "something was answered"

# Reload with an install: now the same client is served.
write_config
kill -HUP "$AGENT_PID"
wait_for 5 grep -q "standalone hosts loaded (reload) .* intents=1" "$T/agent.log" ||
    fail "reload not logged"
rm -f "$T/dhclient.leases"
run_dhclient "$CLI" veth-c || fail "no lease after the reload"
has_addr "$CLI" veth-c 2001:db8:1::17 || fail "reserved address not configured after reload"
kill_dhclient
stop_agent
echo "PASS: $TEST_NAME"

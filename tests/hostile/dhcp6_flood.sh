#!/bin/bash
# A DHCPv6 flood of random client DUIDs, from a third machine on the link
# (a macvlan in its own namespace, so its link-local address is no host's
# EUI-64), while the reserved host (dhclient -6 with web17's MAC) boots:
#
#   - without a pool: 10,000 Solicits from 10,000 new DUIDs and 2,500
#     blind Requests (random DUIDs, half with the server's Server ID) in at
#     most 8 s (about 6 s at its pace): none answered (no intent), no binding made, the lease file stays
#     empty, and dhclient gets web17's reserved address during the flood;
#   - with `[dhcp6] pool` and max_bindings_per_interface = 200: the same
#     flood, each Advertise followed by a Request: at most 200 pool
#     bindings (the cap, counted in rackboot_dhcp6_pool_capped_total),
#     NoAddrsAvail past it, web17 still gets its reservation, the lease file
#     stays small;
#   - the agent's memory stays bounded, and its stats line says what it saw.
. "$(dirname "$0")/lib.sh"
hostile_source_integration dhcp6_lib.sh "$@"
command -v python3 >/dev/null || skip "python3 not installed"
command -v dhclient >/dev/null || skip "dhclient not installed"
FLD="rb-fld-$ID"
CAP=200
SOLICITS=10000
BLIND=2500

setup_link
new_ns "$FLD"
ip -n "$CLI" link add fl0 link veth-c type macvlan mode bridge || fail "macvlan"
ip -n "$CLI" link set fl0 address 02:66:6c:6f:6f:64 netns "$FLD"
ip -n "$FLD" link set fl0 up
ip netns exec "$FLD" sysctl -qw net.ipv6.conf.fl0.autoconf=0
has_ll() { ip -n "$FLD" -6 addr show dev fl0 scope link | grep -q fe80; }
wait_for 10 has_ll || fail "no link-local address on the flooder"

# start_flood_agent [POOL LINES]: info level (debug logs every dropped packet).
start_flood_agent() {
    DHCP6_EXTRA="$1" write_config
    sed -i 's/^log_level = debug/log_level = info/' "$T/agent.conf"
    hostile_asan_env
    start_agent
    SERVER_DUID=$(sed -n 's/.*dhcp6 server duid=\([0-9a-f]*\).*/\1/p' "$T/agent.log" | tail -1)
    [ -n "$SERVER_DUID" ] || fail "no server DUID logged"
}

# stats: the agent's counters now (SIGUSR1 logs them).
stats() {
    local before
    before=$(grep -c "dhcp6 stats why=" "$T/agent.log")
    kill -USR1 "$AGENT_PID"
    stats_logged() { [ "$(grep -c "dhcp6 stats why=" "$T/agent.log")" -gt "$before" ]; }
    wait_for 5 stats_logged || fail "no stats line on SIGUSR1"
    grep "dhcp6 stats why=" "$T/agent.log" | tail -1
}
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$2"; }

metric() {
    ip netns exec "$SRV" curl -g -sS --max-time 5 "http://[::1]/metrics" |
        awk -v n="$1" '$1 == n { print $2 }'
}

# flood_round NAME: the flood and dhclient together; dhclient must get
# web17's address while the flood runs.
flood_round() {
    local name=$1
    rm -f "$T"/dhclient.env.* "$T/dhclient.leases"
    ip -n "$CLI" -6 addr flush dev veth-c scope global
    ip netns exec "$FLD" timeout 40 python3 "$HOSTILE_DIR/dhcp6_flood.py" fl0 \
        "$SOLICITS" "$BLIND" 8 "$SERVER_DUID" >"$T/flood-$name.json" 2>"$T/flood-$name.err" &
    local flood=$! t0 received0
    received0=$(metric rackboot_dhcp6_received_total)
    # dhclient starts once the flood is reaching the agent, not after a
    # guess at how long the flooder takes to start.
    flooding() { [ "$(metric rackboot_dhcp6_received_total)" -ge $((${received0:-0} + 500)) ]; }
    wait_for 20 flooding || fail "$name: the flood never reached the agent"
    t0=$(date +%s%N)
    DHCLIENT_TIMEOUT=30 run_dhclient "$CLI" veth-c || fail "$name: dhclient got no lease during the flood"
    echo "$name: dhclient bound in $(ms_since "$t0") ms during the flood"
    kill -0 "$flood" 2>/dev/null || echo "note: the flood ended before dhclient was bound"
    has_addr "$CLI" veth-c 2001:db8:1::17 || fail "$name: reserved address not configured"
    kill_dhclient
    wait "$flood" || fail "$name: flood failed: $(cat "$T/flood-$name.err")"
    alive "$AGENT_PID" "$name flood"
    echo "$name flood: $(cat "$T/flood-$name.json")"
}

# ---- without a pool ----
start_flood_agent ""
mem_begin "$AGENT_PID"
flood_round nopool
s=$(stats)
echo "$s"
python3 - "$T/flood-nopool.json" <<'EOP' || fail "no pool: the flood was answered"
import json, sys
r = json.load(open(sys.argv[1]))
ok = r["solicits"] >= 5000 and r["advertises"] == 0 and r["replies"] == 0
sys.exit(0 if ok else 1)
EOP
[ "$(field ignored_no_intent "$s")" -ge 5000 ] || fail "no pool: the flood was not seen as no-intent"
[ "$(field bindings "$s")" -le 1 ] || fail "no pool: bindings=$(field bindings "$s")"
grep -q "dhcp6 bound host=web17 mac=$CLI_MAC addr=2001:db8:1::17 " "$T/agent.log" ||
    fail "no pool: web17's binding not logged"
# The lease file is flushed once a second when bindings changed: wait for
# a flush after the flood (or, when nothing changed, take it as it is).
flushed() { [ "$T/state/dhcp6.leases" -nt "$T/flood-done" ]; }
touch "$T/flood-done"
wait_for 3 flushed || true
lease_nopool=$(stat -c %s "$T/state/dhcp6.leases" 2>/dev/null || echo 0)
echo "no pool: lease file $lease_nopool bytes"
[ "$lease_nopool" -lt 4096 ] || fail "no pool: lease file grew to $lease_nopool bytes"
# Memory: nothing of a dropped message is kept; the receive batches are
# fixed. Growth is capped at 32 MiB (the 16 MiB ASan quarantine, allocator
# caches); a leak of 3 KiB per message (12,500) would cross it.
mem_check "$AGENT_PID" "agent after the no-pool flood" 32 48
stop_agent

# ---- with a pool, capped at $CAP bindings ----
rm -rf "$T/state"
start_flood_agent "pool = 2001:db8:1::1000 2001:db8:1::ffff
max_bindings_per_interface = $CAP"
mem_begin "$AGENT_PID"
flood_round pool
s=$(stats)
echo "$s"
bindings=$(field bindings "$s")
capped=$(metric rackboot_dhcp6_pool_capped_total)
echo "pool: bindings=$bindings cap=$CAP pool_capped_total=$capped"
python3 - "$T/flood-pool.json" "$CAP" <<'EOP' || fail "pool: flood results out of bounds"
import json, sys
r, cap = json.load(open(sys.argv[1])), int(sys.argv[2])
print("pool flood: offers=%d leased=%d no_addrs=%d" % (r["offers"], r["leased"], r["no_addrs"]))
ok = r["solicits"] >= 5000 and 0 < r["leased"] <= cap and r["offers"] <= cap and r["no_addrs"] >= 1000
sys.exit(0 if ok else 1)
EOP
# At most the cap of pool bindings, plus web17's reservation (never counted).
[ "${bindings:-99999}" -le $((CAP + 1)) ] || fail "pool: $bindings bindings, cap $CAP"
[ "${capped:-0}" -ge 1000 ] || fail "pool: the cap was not counted (pool_capped_total=${capped:-none})"
touch "$T/flood-done"
wait_for 3 flushed || true
lease_pool=$(stat -c %s "$T/state/dhcp6.leases")
echo "pool: lease file $lease_pool bytes"
# A record is one line of well under 512 bytes; at most CAP + 1 bindings,
# each written a few times (offer, lease): far under 1 MiB, and the
# documented ceiling is 32 MiB.
[ "$lease_pool" -lt $((1 << 20)) ] || fail "pool: lease file grew to $lease_pool bytes"
# Memory: at most $CAP pool bindings (well under 1 KiB each) are kept: the
# same caps as without a pool.
mem_check "$AGENT_PID" "agent after the pool flood" 32 48
stop_agent
echo "PASS: $TEST_NAME"

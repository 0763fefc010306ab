#!/bin/bash
# Slow clients do not hold others up: four clients reading a big file at
# 10 KB/s while fast requests for a small and a 5 MiB file each finish in
# well under a second, and the slow transfers keep going meanwhile.
. "$(dirname "$0")/http_lib.sh"

setup_http_link
write_http_config
head -c $((32 * 1024 * 1024)) /dev/urandom >"$T/root/huge.bin"
head -c $((5 * 1024 * 1024)) /dev/urandom >"$T/root/big.bin"
head -c 4096 /dev/urandom >"$T/root/small.bin"
start_agent

# The slow clients read steadily, 1 KiB every 0.1 s. Not curl --limit-rate:
# curl (7.88) reads up to 100 buffers of the rate in one go, then reads
# nothing until its average is back at the rate, so its first 1 MB burst is
# followed by ~100 s of zero window: a stalled client, which the server
# rightly closes after connection_timeout (30 s).
command -v python3 >/dev/null || skip "python3 not installed"
SLOW_READER='
import socket, sys, time
s = socket.create_connection((sys.argv[1], 80))
s.sendall(b"GET /files/huge.bin HTTP/1.1\r\nHost: agent\r\n\r\n")
with open(sys.argv[2], "wb") as f:
    while True:
        d = s.recv(1024)
        if not d:
            break
        f.write(d)
        f.flush()
        time.sleep(0.1)
'
SLOW_PIDS=""
for i in 1 2 3 4; do
    ip netns exec "$CLI" timeout 90 python3 -c "$SLOW_READER" "$SRV_ADDR" "$T/slow$i" \
        2>/dev/null &
    SLOW_PIDS="$SLOW_PIDS $!"
done
# Wait until every slow client has its first bytes.
slow_started() {
    for i in 1 2 3 4; do
        [ -s "$T/slow$i" ] || return 1
    done
}
wait_for 10 slow_started || fail "slow clients got no data"

for f in small.bin big.bin small.bin big.bin; do
    t=$(cli curl -g -sS --max-time 10 -o "$T/fast" -w '%{time_total}' "$BASE/files/$f") ||
        fail "fast request for $f failed"
    cmp -s "$T/fast" "$T/root/$f" || fail "fast $f differs"
    awk -v t="$t" 'BEGIN { exit !(t < 0.5) }' || fail "fast request for $f took ${t}s"
    echo "fast $f ${t}s"
done

# The slow ones are still connected and still moving.
cli curl -g -sS --max-time 10 -o "$T/metrics" "$BASE/metrics" || fail "/metrics"
active=$(awk '/^rackboot_http_connections_active / { print $2 }' "$T/metrics")
[ "${active:-0}" -ge 5 ] || fail "expected the 4 slow connections open, active=$active"
before=$(stat -c %s "$T/slow1")
slow_moved() {
    [ "$(stat -c %s "$T/slow1")" -gt "$before" ]
}
wait_for 10 slow_moved || fail "slow client stalled at $before bytes"

for pid in $SLOW_PIDS; do
    kill "$pid" 2>/dev/null
done
wait_for 10 grep -q "http GET /files/huge.bin .*ended=" "$T/agent.log" ||
    fail "aborted slow transfers not logged"
stop_agent
echo "PASS: $TEST_NAME"

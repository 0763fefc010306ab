#!/bin/bash
# tftp-hpa's client against the agent over IPv6 (and IPv4): files come back
# byte-identical (empty, one short block, an exact multiple of 512, 2 MiB);
# a put, netascii, traversal attempts and symlinks out of the root get an
# ERROR packet and leave nothing behind.
. "$(dirname "$0")/tftp_lib.sh"

setup_tftp_link
write_tftp_config
: >"$ROOT/empty"
printf 'hello' >"$ROOT/short.txt"
head -c 1024 /dev/urandom >"$ROOT/exact1024.bin"
head -c $((2 * 1024 * 1024 + 7)) /dev/urandom >"$ROOT/two.bin"
mkdir -p "$ROOT/sub"
cp "$ROOT/short.txt" "$ROOT/sub/inner.txt"
ln -s /etc/passwd "$ROOT/passwd-link"
ln -s ../outside "$ROOT/out-link"
echo secret >"$T/outside"
start_tftp_agent

for f in empty short.txt exact1024.bin two.bin sub/inner.txt; do
    hpa_get "$f" "$T/got" || fail "get $f: $(cat "$T/tftp.out")"
    cmp "$ROOT/$f" "$T/got" || fail "$f differs"
done
# The "files/" prefix names the same root (as HTTP does).
hpa_get files/two.bin "$T/got" || fail "get files/two.bin"
cmp "$ROOT/two.bin" "$T/got" || fail "files/two.bin differs"
wait_log "tftp done file=two.bin client=\[2001:db8:1::2\]:[0-9]* bytes=2097159 blksize=512 windowsize=1 ms=" ||
    fail "no done line for two.bin"

# IPv4 through the same [::] socket (v4-mapped).
hpa_get short.txt "$T/got4" 192.0.2.1 || fail "IPv4 get: $(cat "$T/tftp.out")"
cmp "$ROOT/short.txt" "$T/got4" || fail "IPv4 copy differs"
wait_log "tftp done file=short.txt client=192.0.2.2:" || fail "no IPv4 done line"

# Link-local: the transfer socket must be bound with the interface as scope.
ll=$(ip -n "$SRV" -6 addr show dev veth-s scope link | sed -n 's/.*inet6 \(fe80[^/]*\).*/\1/p')
[ -n "$ll" ] || fail "no link-local address on veth-s"
wait_for 10 ip netns exec "$CLI" ping -6 -c1 -W1 "$ll%veth-c" || fail "link-local unreachable"
hpa_get short.txt "$T/gotll" "$ll%veth-c" || fail "link-local get: $(cat "$T/tftp.out")"
cmp "$ROOT/short.txt" "$T/gotll" || fail "link-local copy differs"
wait_log "tftp done file=short.txt client=\[fe80:" || fail "no link-local done line"

# Refusals: each gets an ERROR packet with the right code.
hpa_get nonexistent "$T/x"
expect_error "$T/tftp.out" 1 "missing file"
hpa_get nonexistent "$T/x" 192.0.2.1
expect_error "$T/tftp.out" 1 "missing file over IPv4"
for bad in ../etc/passwd /etc/passwd sub/../../outside passwd-link out-link; do
    hpa_get "$bad" "$T/x"
    expect_error "$T/tftp.out" 2 "traversal $bad"
    grep -q "secret\|root:" "$T/x" 2>/dev/null && fail "$bad leaked content"
done
# A write request.
echo data >"$T/upload"
in_cli tftp -6 -m octet "$SERVER6" -c put "$T/upload" uploaded >"$T/tftp.out" 2>&1
expect_error "$T/tftp.out" 2 "put"
[ -e "$ROOT/uploaded" ] && fail "put created a file"
# netascii (tftp-hpa's default mode) is refused with ERROR 4.
rm -f "$T/x"
in_cli tftp -6 "$SERVER6" -c get short.txt "$T/x" >"$T/tftp.out" 2>&1
expect_error "$T/tftp.out" 4 "netascii"

stop_agent
grep -q "tftp stats why=shutdown requests=.* ok=8 failed=0 aborted=0 refused=9 " "$T/agent.log" ||
    fail "shutdown stats: $(grep 'tftp stats' "$T/agent.log")"
echo "PASS: $TEST_NAME"

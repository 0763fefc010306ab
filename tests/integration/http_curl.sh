#!/bin/bash
# curl over IPv6 against the agent's HTTP server: whole files byte-identical,
# the three range forms, 416, HEAD, If-None-Match → 304, keep-alive reuse,
# "%3A" and ':' reaching the same file, the UEFI HTTP boot HEAD-then-GET,
# IPv4 on the dual-stack socket, /healthz, /metrics, and traversal attempts
# refused.
. "$(dirname "$0")/http_lib.sh"

setup_http_link
write_http_config
head -c $((5 * 1024 * 1024 + 123)) /dev/urandom >"$T/root/big.bin"
SIZE=$(stat -c %s "$T/root/big.bin")
head -c 1000 /dev/urandom >"$T/root/a:b.bin"
head -c 4096 /dev/urandom >"$T/root/ipxe.efi"
echo "secret outside the root" >"$T/secret"
ln -s "$T/secret" "$T/root/escape"
start_agent
grep -q "http serving listen=\[::\]:80" "$T/agent.log" || fail "no http serving line"

# whole file
[ "$(status "$BASE/files/big.bin")" = 200 ] || fail "GET big.bin not 200"
cmp -s "$T/body" "$T/root/big.bin" || fail "big.bin differs"

# bytes=a-b
[ "$(status "$BASE/files/big.bin" -r 1000-1999)" = 206 ] || fail "range a-b not 206"
tail -c +1001 "$T/root/big.bin" | head -c 1000 >"$T/want"
cmp -s "$T/body" "$T/want" || fail "range a-b bytes differ"
# bytes=a-b past the end is clipped
[ "$(status "$BASE/files/big.bin" -r $((SIZE - 10))-$((SIZE + 1000)))" = 206 ] ||
    fail "clipped range not 206"
tail -c 10 "$T/root/big.bin" | cmp -s - "$T/body" || fail "clipped range bytes differ"
# bytes=a-
[ "$(status "$BASE/files/big.bin" -r 5000000-)" = 206 ] || fail "range a- not 206"
tail -c +5000001 "$T/root/big.bin" | cmp -s - "$T/body" || fail "range a- bytes differ"
# bytes=-n
[ "$(status "$BASE/files/big.bin" -r -777)" = 206 ] || fail "range -n not 206"
tail -c 777 "$T/root/big.bin" | cmp -s - "$T/body" || fail "range -n bytes differ"
# unsatisfiable
cli curl -g -sS --max-time 10 -r "$SIZE-" -D "$T/h416" -o /dev/null "$BASE/files/big.bin"
grep -q "^HTTP/1.1 416" "$T/h416" || fail "range past the end not 416"
grep -qi "^Content-Range: bytes \*/$SIZE" "$T/h416" || fail "416 without Content-Range */size"
# several ranges: the whole file
[ "$(status "$BASE/files/big.bin" -r 0-1,5-6)" = 200 ] || fail "multi-range not 200"
cmp -s "$T/body" "$T/root/big.bin" || fail "multi-range body not the whole file"

# HEAD: headers only
cli curl -g -sS --max-time 10 -I "$BASE/files/big.bin" >"$T/head" || fail "HEAD failed"
grep -q "^HTTP/1.1 200" "$T/head" || fail "HEAD not 200"
grep -qi "^Content-Length: $SIZE" "$T/head" || fail "HEAD Content-Length wrong"
grep -qi "^Accept-Ranges: bytes" "$T/head" || fail "no Accept-Ranges"
ETAG=$(grep -i '^ETag:' "$T/head" | cut -d' ' -f2 | tr -d '\r')
[ -n "$ETAG" ] || fail "no ETag"

# If-None-Match with the ETag → 304, no body; another tag → 200
[ "$(status "$BASE/files/big.bin" -H "If-None-Match: $ETAG")" = 304 ] || fail "not 304"
[ ! -s "$T/body" ] || fail "304 with a body"
[ "$(status "$BASE/files/big.bin" -H "If-None-Match: \"other\", W/$ETAG")" = 304 ] ||
    fail "weak/list If-None-Match not 304"
[ "$(status "$BASE/files/big.bin" -H 'If-None-Match: "other"')" = 200 ] ||
    fail "non-matching If-None-Match not 200"

# keep-alive: two URLs, one connection
cli curl -g -sS -v --max-time 10 -o /dev/null -o /dev/null "$BASE/files/a:b.bin" \
    "$BASE/healthz" 2>"$T/keepalive" || fail "two-URL curl failed"
grep -q "Re-using existing connection" "$T/keepalive" || fail "connection not reused"

# UEFI HTTP boot: HEAD then GET on one connection
cli curl -g -sS -v --max-time 10 -A UefiHttpBoot/1.0 -I "$BASE/files/ipxe.efi" \
    --next -g -sS -A UefiHttpBoot/1.0 -o "$T/ipxe" "$BASE/files/ipxe.efi" 2>"$T/uefi" >/dev/null ||
    fail "UEFI-style HEAD+GET failed"
grep -q "Re-using existing connection" "$T/uefi" || fail "UEFI HEAD/GET not on one connection"
cmp -s "$T/ipxe" "$T/root/ipxe.efi" || fail "ipxe.efi differs"
grep -q "http HEAD /files/ipxe.efi status=200" "$T/agent.log" || fail "no HEAD log line"

# iPXE <= 1.21 sends "%3A", newer ones ':'
[ "$(status "$BASE/files/a%3Ab.bin")" = 200 ] || fail "%3A path not 200"
cmp -s "$T/body" "$T/root/a:b.bin" || fail "%3A path served another file"
[ "$(status "$BASE/files/a:b.bin")" = 200 ] || fail "':' path not 200"
cmp -s "$T/body" "$T/root/a:b.bin" || fail "':' path served another file"

# dual stack: [::] takes IPv4 too (v4-mapped)
ip -n "$SRV" addr add 192.0.2.1/24 dev veth-s
ip -n "$CLI" addr add 192.0.2.2/24 dev veth-c
[ "$(status "http://192.0.2.1/files/a:b.bin")" = 200 ] || fail "IPv4 GET not 200"
cmp -s "$T/body" "$T/root/a:b.bin" || fail "IPv4 GET body differs"
grep -q "http GET /files/a:b.bin status=200 .*client=\[::ffff:192.0.2.2\]:" "$T/agent.log" ||
    fail "IPv4 client not logged v4-mapped"

# health and metrics
[ "$(status "$BASE/healthz")" = 200 ] || fail "/healthz not 200"
[ "$(cat "$T/body")" = ok ] || fail "/healthz body not ok"
cli curl -g -sS --max-time 10 -D "$T/mh" -o "$T/metrics" "$BASE/metrics" || fail "/metrics"
grep -qi "^Content-Type: text/plain; version=0.0.4" "$T/mh" || fail "/metrics content type"
for series in 'rackboot_dhcp6_received_total 0' 'rackboot_dhcp6_received_by_type_total{type="solicit"}' \
    'rackboot_http_requests_total{class="2xx"}' 'rackboot_http_response_bytes_total' \
    'rackboot_http_connections_active 1' '# TYPE rackboot_http_requests_total counter'; do
    grep -qF "$series" "$T/metrics" || fail "/metrics lacks $series"
done
[ "$(grep -c '^# TYPE rackboot_http_requests_total ' "$T/metrics")" = 1 ] ||
    fail "# TYPE repeated"

# traversal and escapes: refused, never the file outside the root
for path in "/files/../secret" "/files/%2e%2e/secret" "/files/..%2fsecret" "/files/escape" \
    "/files/%2e%2e%2f%2e%2e%2fetc/passwd" "/files/a%00b"; do
    code=$(status "$BASE$path" --path-as-is)
    case "$code" in
    400 | 403 | 404) ;;
    *) fail "$path answered $code" ;;
    esac
    ! grep -q "secret outside" "$T/body" || fail "$path leaked a file outside the root"
done
[ "$(status "$BASE/files/nope")" = 404 ] || fail "missing file not 404"
[ "$(status "$BASE/nothing")" = 404 ] || fail "unrouted path not 404"
[ "$(status "$BASE/healthz" -X POST)" = 405 ] || fail "POST /healthz not 405"

grep -q "http GET /files/big.bin status=206 bytes=1000 ms=[0-9]* client=\[2001:db8:1::2\]:" \
    "$T/agent.log" || fail "no access log line for the range"
# a health check polled every second (keepalived) stays out of the info
# log when it succeeds; a refused one is logged
grep -q "http POST /healthz status=405" "$T/agent.log" || fail "the refused POST /healthz not logged"
! grep -q "http GET /healthz status=200" "$T/agent.log" || fail "a successful /healthz logged at info"
stop_agent
echo "PASS: $TEST_NAME"

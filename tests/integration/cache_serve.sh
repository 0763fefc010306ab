#!/bin/bash
# The image cache end to end, with real clients against rackboot-agent:
#  - pre-warm: a host with an install intent makes the agent fetch its
#    profile's kernel, initrd and stage2 from the origin before any client
#    asks;
#  - images/<profile>/... and objects/<sha256> are served byte-identical over
#    TFTP (tftp-hpa) and over HTTP (curl), with the quoted sha256 as ETag;
#  - 20 concurrent clients asking for one uncached object cause exactly one
#    origin request;
#  - an origin object that does not match its sha256 is refused (HTTP 502,
#    TFTP error) and never served, not even in part, and never stored;
#  - a changed intent set (SIGHUP) pre-warms the new profile at once;
#  - the counters show at /metrics;
#  - after a restart the objects are served from disk without the origin.
. "$(dirname "$0")/cache_lib.sh"

command -v tftp >/dev/null || skip "tftp (tftp-hpa) not installed"

setup_cache_net
start_origin

K9=$(origin_file el9/vmlinuz 2)
I9=$(origin_file el9/initrd.img 6)
S9=$(origin_file el9/LiveOS/squashfs.img 12)
X9=$(origin_file el9/overlay.cpio 1)
KC=$(origin_file slow/cold-vmlinuz 8)
IC=$(origin_file cold/initrd.img 1)
# The origin's bytes are not what the profile says they are.
origin_file bad/vmlinuz 3 >/dev/null
BAD=$(printf 'not these bytes' | sha256sum | cut -d' ' -f1)

write_agent_config
cat >"$T/hosts.conf" <<EOH
[profile el9]
kernel = $ORIGIN_URL/el9/vmlinuz sha256=$K9
initrd = $ORIGIN_URL/el9/initrd.img sha256=$I9
stage2 = $ORIGIN_URL/el9/LiveOS/squashfs.img sha256=$S9
file.overlay.cpio = $ORIGIN_URL/el9/overlay.cpio sha256=$X9

# No host installs "cold": nothing is pre-warmed for it.
[profile cold]
kernel = $ORIGIN_URL/slow/cold-vmlinuz sha256=$KC
initrd = $ORIGIN_URL/cold/initrd.img sha256=$IC

[profile broken]
kernel = $ORIGIN_URL/bad/vmlinuz sha256=$BAD
initrd = $ORIGIN_URL/cold/initrd.img sha256=$IC

[host web17]
mac = 52:54:00:12:34:56
address = 2001:db8:1::17
install = el9

[host web18]
mac = 52:54:00:12:34:57
address = 2001:db8:1::18
install = broken
EOH
start_agent

# ---- pre-warm: before any client, the origin saw el9's four files once ----
prewarmed() {
    for h in "$K9" "$I9" "$S9" "$X9"; do
        [ -f "$(object_path "$h")" ] || return 1
    done
}
wait_for 30 prewarmed || fail "el9 not pre-warmed: $(ls -R "$T/cache/objects" 2>&1)"
for p in /el9/vmlinuz /el9/initrd.img /el9/LiveOS/squashfs.img /el9/overlay.cpio; do
    [ "$(origin_requests "$p")" = 1 ] || fail "pre-warm: origin saw $p $(origin_requests "$p") times"
done
[ "$(origin_requests /slow/cold-vmlinuz)" = 0 ] || fail "cold profile was pre-warmed"
grep -q "cache prewarm (start) profiles=2 images=6" "$T/agent.log" ||
    fail "no pre-warm log line for el9 and broken"
wait_for 10 grep -q "cache object failed verification, refused object=$BAD" "$T/agent.log" ||
    fail "the broken profile's kernel was not refused"
[ ! -e "$(object_path "$BAD")" ] || fail "a mismatching object was stored"
[ -z "$(ls -A "$T/cache/tmp")" ] || fail "temporary files left: $(ls "$T/cache/tmp")"

CLI_EXEC="ip netns exec $CLI"

# ---- TFTP ----
tftp_get() { # REMOTE LOCAL
    rm -f "$2"
    timeout 60 $CLI_EXEC tftp -m binary 2001:db8:1::1 69 -c get "$1" "$2" >>"$T/tftp.out" 2>&1
}
tftp_get images/el9/vmlinuz "$T/got-k" && cmp -s "$T/got-k" "$T/origin/el9/vmlinuz" ||
    fail "tftp images/el9/vmlinuz differs"
tftp_get images/el9/LiveOS/squashfs.img "$T/got-s" &&
    cmp -s "$T/got-s" "$T/origin/el9/LiveOS/squashfs.img" ||
    fail "tftp images/el9/LiveOS/squashfs.img differs"
tftp_get "objects/$I9" "$T/got-i" && cmp -s "$T/got-i" "$T/origin/el9/initrd.img" ||
    fail "tftp objects/<initrd sha256> differs"
tftp_get images/el9/overlay.cpio "$T/got-x" && cmp -s "$T/got-x" "$T/origin/el9/overlay.cpio" ||
    fail "tftp images/el9/overlay.cpio differs"
tftp_get images/broken/vmlinuz "$T/got-bad"
[ ! -s "$T/got-bad" ] || fail "tftp served bytes of a mismatching object"
tftp_get images/nope/vmlinuz "$T/got-none"
[ ! -s "$T/got-none" ] || fail "tftp served an unknown profile"
for p in /el9/vmlinuz /el9/LiveOS/squashfs.img /el9/initrd.img; do
    [ "$(origin_requests "$p")" = 1 ] || fail "serving went to the origin for $p"
done

# ---- HTTP ----
HTTP="http://[2001:db8:1::1]:8080"
$CLI_EXEC curl -sf -o /dev/null -m 5 "$HTTP/healthz" || fail "the agent serves no HTTP"
$CLI_EXEC curl -sf -m 60 -o "$T/h-k" "$HTTP/images/el9/vmlinuz" &&
    cmp -s "$T/h-k" "$T/origin/el9/vmlinuz" || fail "http /images/el9/vmlinuz differs"
$CLI_EXEC curl -sf -m 60 -o "$T/h-s" "$HTTP/images/el9/LiveOS/squashfs.img" &&
    cmp -s "$T/h-s" "$T/origin/el9/LiveOS/squashfs.img" ||
    fail "http /images/el9/LiveOS/squashfs.img differs"
$CLI_EXEC curl -sf -m 60 -o "$T/h-o" "$HTTP/objects/$X9" &&
    cmp -s "$T/h-o" "$T/origin/el9/overlay.cpio" || fail "http /objects/<sha256> differs"
etag=$($CLI_EXEC curl -sI -m 10 "$HTTP/images/el9/vmlinuz" | tr -d '\r' |
    sed -n 's/^[Ee][Tt]ag: //p')
[ "$etag" = "\"$K9\"" ] || fail "ETag is not the quoted sha256: $etag"
code=$($CLI_EXEC curl -s -m 60 -o "$T/h-bad" -w '%{http_code}' "$HTTP/images/broken/vmlinuz")
[ "$code" = 502 ] || fail "mismatching object answered $code, not 502"
if [ -s "$T/h-bad" ] && cmp -s -n "$(stat -c %s "$T/h-bad")" "$T/h-bad" "$T/origin/bad/vmlinuz"; then
    fail "the 502 body carries origin bytes"
fi
code=$($CLI_EXEC curl -s -m 10 -o /dev/null -w '%{http_code}' "$HTTP/images/nope/vmlinuz")
[ "$code" = 404 ] || fail "unknown profile answered $code, not 404"
code=$($CLI_EXEC curl -s -m 10 -o /dev/null -w '%{http_code}' "$HTTP/objects/$BAD")
[ "$code" = 502 ] || fail "objects/ of a mismatching image answered $code, not 502"

# ---- 20 concurrent clients, one uncached object, one origin request ----
pids=""
for i in $(seq 1 20); do
    $CLI_EXEC curl -sf -m 90 -o "$T/c-$i" "$HTTP/images/cold/vmlinuz" &
    pids="$pids $!"
done
for p in $pids; do
    wait "$p" || fail "a concurrent client failed"
done
for i in $(seq 1 20); do
    cmp -s "$T/c-$i" "$T/origin/slow/cold-vmlinuz" || fail "concurrent client $i got other bytes"
done
n=$(origin_requests /slow/cold-vmlinuz)
[ "$n" = 1 ] || fail "20 concurrent clients caused $n origin requests, not 1"

# ---- the cache's counters at /metrics ----
$CLI_EXEC curl -sf -m 10 -o "$T/metrics" "$HTTP/metrics" || fail "no /metrics"
metric() {
    sed -n "s/^$1 //p" "$T/metrics"
}
[ "$(metric rackboot_cache_upstream_fetches_total)" -ge 7 ] ||
    fail "upstream fetches: $(metric rackboot_cache_upstream_fetches_total)"
[ "$(metric rackboot_cache_verify_failures_total)" -ge 2 ] ||
    fail "verify failures: $(metric rackboot_cache_verify_failures_total)"
[ "$(metric rackboot_cache_misses_total)" -ge 20 ] ||
    fail "misses: $(metric rackboot_cache_misses_total)"
[ "$(metric rackboot_cache_hits_total)" -ge 5 ] || fail "hits: $(metric rackboot_cache_hits_total)"
[ "$(metric rackboot_cache_objects)" = 6 ] || fail "objects: $(metric rackboot_cache_objects)"

# ---- intents change (SIGHUP): the new profile is pre-warmed at once ----
KL=$(origin_file late/vmlinuz 1)
IL=$(origin_file late/initrd.img 1)
cat >>"$T/hosts.conf" <<EOH

[profile late]
kernel = $ORIGIN_URL/late/vmlinuz sha256=$KL
initrd = $ORIGIN_URL/late/initrd.img sha256=$IL

[host web19]
mac = 52:54:00:12:34:58
address = 2001:db8:1::19
install = late
EOH
kill -HUP "$AGENT_PID"
late_warm() {
    [ -f "$(object_path "$KL")" ] && [ -f "$(object_path "$IL")" ]
}
wait_for 20 late_warm || fail "the new profile was not pre-warmed after SIGHUP"
grep -q "cache prewarm (intents changed) profiles=3 images=8" "$T/agent.log" ||
    fail "no pre-warm log line after SIGHUP"
[ "$(origin_requests /late/vmlinuz)" = 1 ] || fail "late kernel fetched more than once"
[ "$(origin_requests /el9/vmlinuz)" = 1 ] || fail "a reload fetched cached el9 images again"

# ---- restart: served from disk, the origin is not asked again ----
stop_agent
: >"$T/origin-access.log"
start_agent
grep -q "cache ready dir=$T/cache objects=8 " "$T/agent.log" ||
    fail "index not rebuilt: $(grep 'cache ready' "$T/agent.log" | tail -1)"
tftp_get images/cold/vmlinuz "$T/r-k" && cmp -s "$T/r-k" "$T/origin/slow/cold-vmlinuz" ||
    fail "after restart: cold kernel differs"
sleep 0.5
n=$(grep -c "GET /el9\|GET /slow" "$T/origin-access.log")
[ "$n" = 0 ] || fail "after restart the origin was asked $n times for cached objects"
stop_agent

echo "PASS: $TEST_NAME"

#!/bin/bash
# The controller's GET /metrics ([metrics] listen, deploy/METRICS.md) on
# IPv6 loopback, scraped with curl while a real controller serves the CLI
# and a scripted agent (rb-fake-agent) over mutual TLS:
#
#   - the exposition parses with Prometheus's own parser (promtool check
#     metrics, when the prometheus package is installed) and with the
#     histogram rules checked here (cumulative buckets, +Inf = _count);
#   - rackboot_agents_online follows an agent's connection;
#   - rackboot_installs{state} counts installs as they move;
#   - an install's dhcp_bound and installed events land in
#     rackboot_install_since_dispatch_seconds, once each;
#   - a generation moved while the agent waits in its long poll, then
#     acked, lands in rackboot_fanout_duration_seconds;
#   - events by result, API requests by verb and result (ok, invalid,
#     refused), store job and commit latencies are counted.
#
# usage: controller_metrics.sh CONTROLLER PKI FAKE_AGENT CLI
set -u
CONTROLLER=${1:?usage: $0 CONTROLLER PKI FAKE_AGENT CLI}
PKI=${2:?}
FAKE=${3:?}
CLI_BIN=${4:?}
TEST_NAME=controller_metrics
T=$(mktemp -d /tmp/rackboot-controller-metrics.XXXXXX)
CTL_PID=""
WATCH_PID=""
WATCH2_PID=""

cleanup() {
    [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null
    [ -n "$WATCH2_PID" ] && kill "$WATCH2_PID" 2>/dev/null
    [ -n "$CTL_PID" ] && kill "$CTL_PID" 2>/dev/null
    wait 2>/dev/null
    [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $TEST_NAME: $*"
    if [ -s "$T/controller.log" ]; then
        echo "---- controller.log (last 30 lines)"
        tail -n 30 "$T/controller.log"
    fi
    if [ -s "$T/metrics.txt" ]; then
        echo "---- last scrape (rackboot_ series without buckets)"
        grep '^rackboot_' "$T/metrics.txt" | grep -v '_bucket'
    fi
    exit 1
}

step() { echo "== $*"; }

if ! python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
    echo "SKIP: no IPv6 loopback"
    exit 77
fi

cd "$T" || exit 1

"$PKI" --dir ca init >/dev/null || fail "pki init"
"$PKI" --dir ca issue controller ctl.test >/dev/null || fail "issue controller"
"$PKI" --dir ca issue agent rack-a >/dev/null || fail "issue agent"
"$PKI" --dir ca issue viewer val >/dev/null || fail "issue viewer"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
URL="tls+tcp://127.0.0.1:$(free_port)"
OPS="tls+tcp://127.0.0.1:$(free_port)"
API="ipc://$T/api.sock"
# Port 0: the kernel chooses; the start-up line says which.
cat >controller.conf <<EOF
[controller]
state_dir = state
agents_listen = $URL
api_listen = $API
operators_listen = $OPS
[pki]
ca = ca/ca.crt
cert = ca/controller/ctl.test.crt
key = ca/controller/ctl.test.key
[metrics]
listen = [::1]:0
EOF
"$CONTROLLER" --config controller.conf --check-config >/dev/null || fail "--check-config"
# An address not of this machine is refused before start-up.
sed 's/^listen = .*/listen = [2001:db8:dead::1]:9464/' controller.conf >notours.conf
if "$CONTROLLER" --config notours.conf --check-config >notours.out 2>&1; then
    fail "--check-config took a [metrics] listen address not ours"
fi
grep -q 'metrics\] listen \[2001:db8:dead::1\]:9464: cannot listen there' notours.out ||
    fail "no message for the [metrics] address: $(cat notours.out)"

"$CONTROLLER" --config controller.conf >>controller.log 2>&1 &
CTL_PID=$!
METRICS=""
for _ in $(seq 600); do # at most 60 s: ASan, two busy cores
    METRICS=$(sed -n 's/.* started .* metrics=\(\[::1\]:[0-9]*\).*/\1/p' controller.log)
    [ -n "$METRICS" ] && [ -S "$T/api.sock" ] && break
    kill -0 "$CTL_PID" 2>/dev/null || fail "the controller exited"
    sleep 0.1
done
[ -n "$METRICS" ] || fail "the controller did not say where /metrics is"
echo "   metrics at http://$METRICS/metrics"

cli() { "$CLI_BIN" --controller "$API" "$@"; }
viewer() {
    "$CLI_BIN" --controller "$OPS" --ca ca/ca.crt --server-name ctl.test \
        --cert ca/viewer/val.crt --key ca/viewer/val.key "$@"
}
# An array, not a function: a function run with & is a subshell, and
# killing it would leave the agent running.
AGENT=("$FAKE" --url "$URL" --ca ca/ca.crt --server-name ctl.test
    --cert ca/agent/rack-a.crt --key ca/agent/rack-a.key)
agent() { "${AGENT[@]}" "$@"; }
id_of() {
    cli status "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["install_id"])'
}

scrape() { # the exposition to metrics.txt, its headers to headers.txt
    curl -sS -g --max-time 10 -D headers.txt -o metrics.txt "http://$METRICS/metrics" ||
        fail "curl http://$METRICS/metrics"
}
# value SERIES: the value of one series of the last scrape, exactly as
# written (name{labels}); "absent" when there is none. (awk, not python:
# the test calls it often, and a loaded machine starts python slowly. Our
# series hold no blanks, so the value is the second field.)
value() {
    awk -v s="$1" '$1 == s { print $2; found = 1; exit } END { if (!found) print "absent" }' metrics.txt
}
# holds SERIES OP NUMBER: the last scrape's series compares so.
holds() {
    local v
    v=$(value "$1")
    [ "$v" != absent ] && awk "BEGIN { exit !($v $2 $3) }"
}
# wait_for SERIES OP NUMBER: scrapes until the series compares so (at most
# 60 s: the values move with work the controller does on its own time, on
# a machine the rest of the suite keeps busy).
wait_for() {
    for _ in $(seq 600); do
        scrape
        holds "$@" && return 0
        sleep 0.1
    done
    fail "$1 is $(value "$1"), expected $2 $3"
}

step "the exposition, before any work"
scrape
grep -qi '^content-type: text/plain; version=0.0.4' headers.txt ||
    fail "content type: $(grep -i content-type headers.txt)"
[ "$(value rackboot_agents_online)" = 0 ] || fail "no agent yet, online=$(value rackboot_agents_online)"
[ "$(value 'rackboot_installs{state="requested"}')" = 0 ] || fail "installs before any"
code=$(curl -sS -g -o /dev/null -w '%{http_code}' "http://$METRICS/other") || fail "curl /other"
[ "$code" = 404 ] || fail "/other answered $code, not 404"

step "fleet and an install through the API"
cat >hosts.csv <<EOF
name,mac,rack,address
web1,52:54:00:00:0a:01,rack-a,2001:db8:a::1
web2,52:54:00:00:0a:02,rack-a,2001:db8:a::2
web3,52:54:00:00:0a:03,rack-a,2001:db8:a::3
web4,52:54:00:00:0a:04,rack-a,2001:db8:a::4
web5,52:54:00:00:0a:05,rack-a,2001:db8:a::5
web6,52:54:00:00:0a:06,rack-a,2001:db8:a::6
web7,52:54:00:00:0a:07,rack-a,2001:db8:a::7
web8,52:54:00:00:0a:08,rack-a,2001:db8:a::8
EOF
printf 'text\n' >el9.ks
cat >profiles.conf <<EOF
[profile el9]
kernel = http://mirror.invalid/el9/vmlinuz sha256=$(printf '%064d' 1)
initrd = http://mirror.invalid/el9/initrd.img sha256=$(printf '%064d' 2)
kickstart = el9.ks
EOF
cli hosts import hosts.csv >/dev/null || fail "hosts import"
cli profiles import profiles.conf >/dev/null || fail "profiles import"
cli install web1 --profile el9 >/dev/null || fail "install web1"
cli status nosuch >/dev/null 2>&1 && fail "status of an unknown host succeeded"
viewer install web2 --profile el9 >/dev/null 2>&1 && fail "a viewer could install"
viewer status web1 >/dev/null || fail "a viewer could not read"
wait_for 'rackboot_api_requests_total{verb="install",result="ok"}' == 1
[ "$(value 'rackboot_api_requests_total{verb="status",result="invalid"}')" = 1 ] ||
    fail "status of an unknown host is not counted as invalid"
refusals=$(grep -c 'viewer:val refused: may not install' controller.log)
[ "$refusals" = 1 ] || fail "the viewer's install was refused $refusals times in the log, not once"
[ "$(value 'rackboot_api_requests_total{verb="install",result="refused"}')" = "$refusals" ] ||
    fail "the viewer's $refusals refused installs are not counted as refused"
holds 'rackboot_api_requests_total{verb="auth",result="ok"}' '>=' 2 ||
    fail "the viewer's handshakes: auth ok=$(value 'rackboot_api_requests_total{verb="auth",result="ok"}')"
[ "$(value 'rackboot_installs{state="requested"}')" = 1 ] || fail "web1 is not counted as requested"

step "an agent online; its ack dispatches"
"${AGENT[@]}" watch --wait 20000 >watch.out 2>&1 &
WATCH_PID=$!
wait_for rackboot_agents_online == 1
wait_for 'rackboot_installs{state="dispatched"}' == 1
ID1=$(id_of web1)

step "a generation moved while the agent waits, then acked: the fan-out"
# The agent's next long poll may reach the controller just after the
# install (then it reads the new generation at once: no fan-out to time),
# so each round waits for the agent to hold the new generation and looks;
# up to seven rounds, as a loaded machine (the suite runs beside it) may
# lose that race more than once.
for host in web2 web3 web4 web5 web6 web7 web8; do
    lines=$(grep -c ' ok generation=' watch.out)
    cli install "$host" --profile el9 >/dev/null || fail "install $host"
    for _ in $(seq 600); do
        [ "$(grep -c ' ok generation=' watch.out)" -gt "$lines" ] && break
        sleep 0.1
    done
    scrape
    for _ in $(seq 100); do
        [ "$(value rackboot_fanout_duration_seconds_count)" != 0 ] && break
        sleep 0.1
        scrape
    done
    [ "$(value rackboot_fanout_duration_seconds_count)" != 0 ] && break
done
holds rackboot_fanout_duration_seconds_count '>=' 1 ||
    fail "no fan-out was timed: count=$(value rackboot_fanout_duration_seconds_count)"
n=$(value rackboot_fanout_duration_seconds_count)
holds rackboot_fanout_duration_seconds_sum '<' $((20 * n)) ||
    fail "fan-out sum $(value rackboot_fanout_duration_seconds_sum) for $n acks"

step "events: dhcp_bound and installed since dispatch, refused and duplicate counted"
agent events --from 1 "web1:$ID1:dhcp_bound" "web1:$ID1:kickstart_fetched" >ev1.out ||
    fail "events 1-2: $(cat ev1.out)"
agent events --from 3 "nosuch:$ID1:installed" >/dev/null || fail "event 3"
agent events --from 1 "web1:$ID1:dhcp_bound" >/dev/null || fail "re-sent event 1"
agent events --from 4 "web1:$ID1:dhcp_bound" "web1:$ID1:installed" >/dev/null || fail "events 4-5"
wait_for 'rackboot_installs{state="installed"}' == 1
[ "$(value 'rackboot_events_ingested_total{result="stored"}')" = 4 ] ||
    fail "stored events: $(value 'rackboot_events_ingested_total{result="stored"}')"
[ "$(value 'rackboot_events_ingested_total{result="refused_host"}')" = 1 ] ||
    fail "the event about an unknown host is not counted as refused_host"
[ "$(value 'rackboot_events_ingested_total{result="duplicate"}')" = 1 ] ||
    fail "the re-sent event is not counted as duplicate"
# The second dhcp_bound (a reboot mid-install) is not a new start.
for m in dhcp_bound installed; do
    c=$(value "rackboot_install_since_dispatch_seconds_count{milestone=\"$m\"}")
    [ "$c" = 1 ] || fail "milestone $m observed $c times, not once"
    s=$(value "rackboot_install_since_dispatch_seconds_sum{milestone=\"$m\"}")
    holds "rackboot_install_since_dispatch_seconds_sum{milestone=\"$m\"}" '<' 60 ||
        fail "milestone $m took $s s in this test"
done

step "store latencies"
for h in job commit; do
    holds "rackboot_store_${h}_duration_seconds_count" '>' 0 ||
        fail "store $h latency not observed: $(value "rackboot_store_${h}_duration_seconds_count")"
done

step "the same agent on a second connection (a redial) is still one rack online"
"${AGENT[@]}" watch --wait 20000 >watch2.out 2>&1 &
WATCH2_PID=$!
for _ in $(seq 600); do
    grep -q ' ok generation=' watch2.out && break
    sleep 0.1
done
grep -q ' ok generation=' watch2.out || fail "the second connection never synced: $(cat watch2.out)"
scrape
[ "$(value rackboot_agents_online)" = 1 ] ||
    fail "one rack on two connections: online=$(value rackboot_agents_online)"

step "the agent goes: offline"
kill "$WATCH_PID" "$WATCH2_PID"
wait "$WATCH_PID" "$WATCH2_PID" 2>/dev/null
WATCH_PID=""
WATCH2_PID=""
wait_for rackboot_agents_online == 0

step "the exposition is valid"
# Every histogram: buckets cumulative, ending with +Inf equal to _count.
python3 - <<'EOF' || fail "histogram rules"
import re, sys
hist = {}
types = {}
for line in open("metrics.txt"):
    m = re.match(r"# TYPE (\S+) (\S+)", line)
    if m:
        types[m.group(1)] = m.group(2)
        continue
    if line.startswith("#"):
        continue
    series, _, v = line.rstrip("\n").rpartition(" ")
    m = re.match(r'(\w+)_(bucket|count|sum)(?:\{(.*)\})?$', series)
    if not m or types.get(m.group(1)) != "histogram":
        continue
    labels = m.group(3) or ""
    le = re.search(r'(?:^|,)le="([^"]*)"', labels)
    key = (m.group(1), re.sub(r',?le="[^"]*"', "", labels))
    h = hist.setdefault(key, {"buckets": []})
    if m.group(2) == "bucket":
        h["buckets"].append((float(le.group(1)), float(v)))
    else:
        h[m.group(2)] = float(v)
if len(hist) < 5:
    sys.exit(f"expected at least 5 histograms, found {sorted(hist)}")
for key, h in hist.items():
    b = h["buckets"]
    if not b or b[-1][0] != float("inf") or b[-1][1] != h["count"]:
        sys.exit(f"{key}: +Inf bucket is not _count")
    if any(b[i][0] >= b[i + 1][0] or b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
        sys.exit(f"{key}: buckets not increasing and cumulative: {b}")
    if h["sum"] < 0:
        sys.exit(f"{key}: negative sum")
EOF
if command -v promtool >/dev/null; then
    promtool check metrics <metrics.txt >promtool.out 2>&1 ||
        fail "promtool check metrics: $(cat promtool.out)"
    echo "   promtool check metrics: ok"
else
    echo "   promtool not installed (deploy/install-deps.sh installs it): parser check skipped"
fi

step "SIGTERM stops cleanly"
kill -TERM "$CTL_PID"
wait "$CTL_PID"
rc=$?
CTL_PID=""
[ "$rc" = 0 ] || fail "controller exited $rc on SIGTERM"
echo "PASS: $TEST_NAME"

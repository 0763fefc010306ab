#!/bin/sh
# rackboot-controller's life cycle without TLS listeners: a controller with
# only api_listen passes --check-config, starts and stops on SIGTERM with
# exit 0, and a bad configuration exits 1 with its message. None of them may
# end on a signal (nng 1.5.2's nng_tls_config_free(NULL) used to segfault on
# every one of these paths).
#
# Usage: controller_lifecycle.sh /path/to/rackboot-controller
set -eu

ctl=${1:?usage: controller_lifecycle.sh rackboot-controller}
work=$(mktemp -d /tmp/rb-ctl-life-XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

cat >"$work/api-only.conf" <<CONF
[controller]
state_dir = $work/state
api_listen = ipc://$work/api.sock
CONF

set +e
"$ctl" --config "$work/api-only.conf" --check-config >"$work/out" 2>&1
rc=$?
set -e
[ "$rc" = 0 ] || fail "--check-config of an API-only config exited $rc: $(cat "$work/out")"
grep -q "configuration OK" "$work/out" || fail "--check-config did not say OK: $(cat "$work/out")"

# Bad configurations: an unknown key, a section with no meaning, TLS
# listeners without a [pki] section, a value out of range, a log format
# there is none of.
n=0
for bad in "bogus_key = 1" "[nonsense]
x = 1" "agents_listen = tls+tcp://[::1]:0" "[installs]
boot_timeout = -5" "[log]
format = yaml"; do
    n=$((n + 1))
    printf '%s\n' "[controller]" "state_dir = $work/state" \
        "api_listen = ipc://$work/api.sock" "$bad" >"$work/bad$n.conf"
    for mode in --check-config run; do
        set +e
        if [ "$mode" = run ]; then
            timeout 30 "$ctl" --config "$work/bad$n.conf" >"$work/out" 2>&1
        else
            "$ctl" --config "$work/bad$n.conf" --check-config >"$work/out" 2>&1
        fi
        rc=$?
        set -e
        [ "$rc" = 1 ] || fail "bad config $n ($mode) exited $rc, not 1: $(cat "$work/out")"
        grep -q "bad$n.conf" "$work/out" ||
            fail "bad config $n ($mode): no message naming the file: $(cat "$work/out")"
        ! grep -q "Sanitizer\|SEGV" "$work/out" ||
            fail "bad config $n ($mode) crashed: $(cat "$work/out")"
    done
done

# --check-config refuses a listen address that is not this machine's, as
# start-up would (the address literal is checked; the port is left alone).
printf '%s\n' "[controller]" "state_dir = $work/state" "api_listen = ipc://$work/api.sock" \
    "agents_listen = tls+tcp://[2001:db8:dead::1]:7443" \
    "[pki]" "ca = $work/ca.crt" "cert = $work/c.crt" "key = $work/c.key" >"$work/notours.conf"
set +e
"$ctl" --config "$work/notours.conf" --check-config >"$work/out" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "a listen address not ours passed --check-config ($rc): $(cat "$work/out")"
grep -q "agents_listen tls+tcp://\[2001:db8:dead::1\]:7443: cannot listen there" "$work/out" ||
    fail "no message for the listen address: $(cat "$work/out")"

# run_and_stop CONF LOG CHECK...: runs the controller with CONF, its output
# appended to LOG, until the command CHECK succeeds (30 s at most), then
# stops it with SIGTERM, which it must answer with exit 0.
run_and_stop() {
    conf=$1
    log=$2
    shift 2
    "$ctl" --config "$conf" >>"$log" 2>&1 &
    pid=$!
    i=0
    while ! "$@"; do
        i=$((i + 1))
        if [ $i -gt 300 ] || ! kill -0 "$pid" 2>/dev/null; then
            fail "the controller with $conf did not come up: $(cat "$log")"
            break
        fi
        sleep 0.1
    done
    kill -TERM "$pid" 2>/dev/null || true
    set +e
    wait "$pid"
    rc=$?
    set -e
    pid=
    [ "$rc" = 0 ] || fail "SIGTERM of the controller with $conf: exit $rc: $(cat "$log")"
}

# Start and stop: SIGTERM once the API socket exists.
: >"$work/log"
run_and_stop "$work/api-only.conf" "$work/log" test -S "$work/api.sock"

# [log] format = json under journald: stderr is the file $JOURNAL_STREAM
# names (systemd.exec(5)), so every line is "<PRIORITY>" and one JSON
# object without our timestamp (journald stamps lines itself).
{ cat "$work/api-only.conf"; printf '[log]\nformat = json\n'; } >"$work/json.conf"
: >"$work/jlog"
JOURNAL_STREAM=$(stat -c '%d:%i' "$work/jlog")
export JOURNAL_STREAM
run_and_stop "$work/json.conf" "$work/jlog" grep -q '"msg":"rackboot-controller .* started"' "$work/jlog"
unset JOURNAL_STREAM
if command -v python3 >/dev/null; then
    python3 - "$work/jlog" <<'PY' || fail "JSON journal lines wrong: $(cat "$work/jlog")"
import json, re, sys
prio = {"3": "error", "4": "warn", "6": "info", "7": "debug"}
lines = open(sys.argv[1]).read().splitlines()
assert lines, "no lines"
for line in lines:
    m = re.fullmatch(r"<([0-7])>(\{.*\})", line)
    assert m, line
    o = json.loads(m.group(2))
    assert "ts" not in o and o["ident"] == "rackboot-controller", line
    assert prio[m.group(1)] == o["level"], line
started = [json.loads(l[3:]) for l in lines if '"started"' in l or ' started"' in l]
assert started and started[0]["api"].startswith("ipc://"), started
assert any(json.loads(l[3:])["msg"] == "signal 15: shutting down" for l in lines), lines
PY
fi

# Without JOURNAL_STREAM the text line is as it always was.
grep -q '^[0-9-]*T[0-9:.]*Z info rackboot-controller: rackboot-controller .* started store=' \
    "$work/log" || fail "text log line changed: $(cat "$work/log")"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "controller life cycle: ok"

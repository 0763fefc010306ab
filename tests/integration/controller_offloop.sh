#!/bin/bash
# The controller's loop keeps answering while its store is stuck (issue:
# "Store calls that can block run off the loop (libuv work queue) so that a
# network backend will not stall the hub").
#
# Another process holds SQLite's write lock on the controller's database
# (python3's sqlite3, BEGIN IMMEDIATE). The database is in WAL mode, so that
# lock stops writers, not readers: a writer of the controller waits in
# SQLite's busy handler (busy_timeout, 5 s in store/sqlite.c) and then fails
# with SQLITE_BUSY, unless the lock goes away before. So:
#
#   - `rackboot hosts add` is started: its write waits for the lock;
#   - meanwhile malformed requests, which the loop answers without the store,
#     are sent one after the other for 2 s: each must be answered within 2 s
#     (a loop stuck in the busy handler answers none before the write gives
#     up, 5 s after it started);
#   - the write must still be waiting at the end (else the lock proved
#     nothing); the lock is released, and the write completes with the host
#     in its output, in `hosts list` and in the audit log.
#
# usage: controller_offloop.sh CONTROLLER CLI
set -u
CONTROLLER=${1:?usage: $0 CONTROLLER CLI}
CLI_BIN=${2:?usage: $0 CONTROLLER CLI}
TEST_NAME=controller_offloop
command -v python3 >/dev/null || {
    echo "SKIP: $TEST_NAME: no python3"
    exit 77
}
python3 -c 'import sqlite3' 2>/dev/null || {
    echo "SKIP: $TEST_NAME: python3 has no sqlite3 module"
    exit 77
}
T=$(mktemp -d /tmp/rackboot-offloop.XXXXXX)
CTL_PID=""

cleanup() {
    [ -n "$CTL_PID" ] && kill "$CTL_PID" 2>/dev/null
    wait 2>/dev/null
    [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $TEST_NAME: $*"
    for f in stuck.out stuck.err; do
        if [ -s "$T/$f" ]; then
            echo "---- $f"
            cat "$T/$f"
        fi
    done
    if [ -s "$T/controller.log" ]; then
        echo "---- controller.log (last 40 lines)"
        tail -n 40 "$T/controller.log"
    fi
    exit 1
}

step() { echo "== $*"; }

cd "$T" || exit 1
API="ipc://$T/api.sock"
cat >controller.conf <<EOF
[controller]
state_dir = state
api_listen = $API
log_level = info
EOF

cli() { "$CLI_BIN" --controller "$API" "$@"; }

"$CONTROLLER" --config controller.conf >>controller.log 2>&1 &
CTL_PID=$!
for _ in $(seq 300); do
    [ -S "$T/api.sock" ] && cli racks >/dev/null 2>&1 && break
    kill -0 "$CTL_PID" 2>/dev/null || fail "the controller exited"
    sleep 0.1
done
cli racks >/dev/null 2>&1 || fail "the controller did not start"
[ -f state/fleet.db ] || fail "no database at state/fleet.db"

cli hosts add web1 --mac 52:54:00:00:0a:01 --rack r1 --address 2001:db8:a::1 >/dev/null ||
    fail "hosts add web1"

step "a write waits for another process's lock; the loop answers meanwhile"
# Exit 1: a check failed (the reason on stderr). The write's output goes to
# stuck.out / stuck.err.
python3 - state/fleet.db "$T/api.sock" "$CLI_BIN" "$API" >probe.out 2>&1 <<'PY' ||
import socket, sqlite3, struct, subprocess, sys, time

db, sock_path, cli, url = sys.argv[1:]
# The loop is probed for WINDOW_S while the write waits, each probe to be
# answered within ANSWER_S: a loop stuck in the busy handler answers none
# for up to 5 s. The lock goes at most WINDOW_S + ANSWER_S after the write
# started, inside its 5 s of busy_timeout, so that the write then succeeds.
WINDOW_S = 2.0
ANSWER_S = 2.0


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def probe():
    """One malformed request over nng's ipc:// wire (SP header, REQ0 ->
    REP0, then a length-prefixed message with the REQ request id): the
    controller answers it "malformed request" without its store. Returns
    the seconds it took, None when no answer came within ANSWER_S."""
    t0 = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(ANSWER_S)
        s.connect(sock_path)
        s.sendall(b"\x00SP\x00" + struct.pack(">HH", 0x30, 0))
        peer = recv_exact(s, 8)
        if peer[:4] != b"\x00SP\x00" or struct.unpack(">H", peer[4:6])[0] != 0x31:
            raise RuntimeError("not an nng REP socket: %r" % peer)
        # Field 2, length 100, 3 bytes: cut short, so never a valid request.
        body = struct.pack(">I", 0x80000001) + b"\x12\x64abc"
        s.sendall(b"\x01" + struct.pack(">Q", len(body)) + body)
        kind, n = struct.unpack(">BQ", recv_exact(s, 9))
        rep = recv_exact(s, n)
        if b"malformed request" not in rep:
            raise RuntimeError("unexpected answer %r" % rep)
        return time.monotonic() - t0
    except socket.timeout:
        return None
    finally:
        s.close()


def fatal(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


lat = probe()
if lat is None:
    fatal("the controller does not answer a malformed request even unlocked")

holder = sqlite3.connect(db, isolation_level=None, timeout=30)
holder.execute("BEGIN IMMEDIATE")  # SQLite's write lock (WAL: readers go on)
print("locked")
out = open("stuck.out", "w")
err = open("stuck.err", "w")
writer = subprocess.Popen(
    [cli, "--controller", url, "--timeout", "60", "--json", "hosts", "add", "web2",
     "--mac", "52:54:00:00:0a:02", "--rack", "r1", "--address", "2001:db8:a::2"],
    stdout=out, stderr=err, stdin=subprocess.DEVNULL)
start = time.monotonic()
worst, n = 0.0, 0
failed = None
while time.monotonic() - start < WINDOW_S:
    sent = time.monotonic() - start
    n += 1
    try:
        lat = probe()
    except Exception as e:  # still release the lock and reap the write
        failed = "probe %d: %s" % (n, e)
        break
    if lat is None:
        failed = "probe %d (sent %.1f s after the write started) had no answer within " \
                 "%.1f s: the loop is stuck with the store" % (n, sent, ANSWER_S)
        break
    worst = max(worst, lat)
    time.sleep(0.05)
waiting = writer.poll() is None
print("probes=%d worst_ms=%d write_waiting=%s" % (n, worst * 1000, waiting))
holder.execute("ROLLBACK")  # the lock goes: the waiting write may commit
holder.close()
print("released")
try:
    rc = writer.wait(timeout=60)
except subprocess.TimeoutExpired:
    writer.kill()
    fatal("the write did not end within 60 s of the lock's release")
print("write_rc=%d" % rc)
if failed:
    fatal(failed)
if not waiting:
    fatal("the write did not wait for the lock (exit %d): the lock proved nothing" % rc)
if rc != 0:
    fatal("the write failed once the lock was released (exit %d)" % rc)
PY
    fail "$(printf 'the probe says:\n'; cat probe.out)"
sed 's/^/   /' probe.out
python3 -c 'import json, sys
rows = json.load(open(sys.argv[1]))
sys.exit(0 if [r["name"] for r in rows] == ["web2"] and rows[0]["rack"] == "r1" else 1)' stuck.out ||
    fail "the write's output is not web2's row"

step "after the lock: the write is there, once, with its audit row"
cli hosts list >list.out || fail "hosts list"
[ "$(grep -c 'web[12]' list.out)" = 2 ] || fail "hosts list: $(cat list.out)"
cli audit --json >audit.json || fail "audit"
python3 - audit.json <<'PY' || fail "audit: $(cat audit.json)"
import json, sys
rows = json.load(open(sys.argv[1]))
adds = [r for r in rows if r["verb"] == "hosts add" and "web2" in r["hosts"]]
sys.exit(0 if len(adds) == 1 and adds[0]["ok"] else 1)
PY

step "SIGTERM stops it cleanly"
kill -TERM "$CTL_PID"
wait "$CTL_PID"
rc=$?
CTL_PID=""
[ "$rc" = 0 ] || fail "SIGTERM: exit $rc"
grep -q "Sanitizer" controller.log && fail "sanitizer report in controller.log"
echo "$TEST_NAME: ok"

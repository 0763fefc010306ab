#!/bin/sh
# A fleet-wide install and cancel larger than one slice (issue 13): the
# controller runs them API_SLICE_HOSTS (5,000) hosts at a time, each slice
# its own transaction and audit row, so agents are served between slices.
# Against a real rackboot-controller on an ipc:// socket, 12,345 hosts in
# 25 racks, three of which already have an active install (one in each
# slice): `install --all` installs the others and says why those three
# failed; status shows every host requested; the audit log has one row per
# slice ("hosts 1-5000 of 12345: ..."), each naming its slice's failure;
# `cancel --all` likewise cancels them all, in three audited slices, one
# reply row per host; `install --rack` of two racks gives their hosts, of
# a rack without hosts is refused by name.
#
# Usage: install_slices.sh rackboot rackboot-controller
set -eu

cli=${1:?usage: install_slices.sh rackboot rackboot-controller}
ctl=${2:?usage: install_slices.sh rackboot rackboot-controller}
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }

work=$(mktemp -d /tmp/rb-install-slices-XXXXXX)
ctl_pid=
cleanup() {
    if [ -n "$ctl_pid" ]; then
        kill "$ctl_pid" 2>/dev/null || true
        wait "$ctl_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: install_slices: $*" >&2
    echo "---- controller.log (last 20 lines)" >&2
    tail -n 20 "$work/controller.log" >&2
    exit 1
}

cat >"$work/controller.conf" <<CONF
[controller]
state_dir = $work/state
api_listen = ipc://$work/api.sock
log_level = info
[installs]
boot_timeout = 3600
install_timeout = 3600
CONF
mkdir -p "$work/state"
"$ctl" --config "$work/controller.conf" >"$work/controller.log" 2>&1 &
ctl_pid=$!
i=0
while [ ! -S "$work/api.sock" ]; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$ctl_pid" 2>/dev/null; then
        fail "the controller did not start"
    fi
    sleep 0.1
done
export RACKBOOT_CONTROLLER="ipc://$work/api.sock"
rb() { "$cli" --timeout 120 "$@"; }

N=12345
python3 - "$N" >"$work/hosts.csv" <<'EOP'
import sys
n = int(sys.argv[1])
print("name,mac,rack,address")
for i in range(n):
    print("h%05d,52:54:00:%02x:%02x:%02x,r%02d,2001:db8:%x::%x" %
          (i, i >> 16, (i >> 8) & 255, i & 255, i * 25 // n, i * 25 // n, i + 1))
EOP
sha=sha256=$(printf '%064d' 1)
cat >"$work/profiles.conf" <<CONF
[profile el9]
kernel = http://mirror.example.com/el9/vmlinuz $sha
initrd = http://mirror.example.com/el9/initrd.img $sha
CONF
rb hosts import "$work/hosts.csv" >/dev/null || fail "hosts import"
rb profiles import "$work/profiles.conf" >/dev/null || fail "profiles import"
for h in h00007 h06000 h12344; do
    rb install "$h" --profile el9 >/dev/null || fail "install $h"
done

# Exit 1: three hosts failed, each named with its reason.
set +e
rb install --all --profile el9 >"$work/install.out" 2>"$work/install.err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "install --all exited $rc, wanted 1: $(cat "$work/install.err")"
grep -q "3 of $N hosts not installed" "$work/install.err" ||
    fail "install --all: $(tail -3 "$work/install.err")"
for h in h00007 h06000 h12344; do
    grep -q "host $h: has an active install" "$work/install.err" ||
        fail "install --all does not say why $h failed: $(cat "$work/install.err")"
done
[ "$(grep -c 'has an active install' "$work/install.err")" = 3 ] ||
    fail "install --all failed for other hosts: $(head -5 "$work/install.err")"

# One audit row per slice, in order, each with its slice's failure.
rb audit --json >"$work/audit.json" || fail "audit"
python3 - "$work/audit.json" "$N" <<'EOP' || fail "the slices' audit rows: $(head -c 2000 "$work/audit.json")"
import json, sys
n = int(sys.argv[2])
rows = [r for r in json.load(open(sys.argv[1])) if r["verb"] == "install" and r["host_count"] > 1]
parts = [r["result"].split(":")[0] for r in rows]
want = ["hosts 1-5000 of %d" % n, "hosts 5001-10000 of %d" % n, "hosts 10001-%d of %d" % (n, n)]
assert parts == want, parts
assert [r["host_count"] for r in rows] == [5000, 5000, n - 10000], [r["host_count"] for r in rows]
for r, h in zip(rows, ["h00007", "h06000", "h12344"]):
    assert not r["ok"] and "1 of" in r["result"] and h + ": has an active install" in r["result"], r
EOP

rb status --all --json >"$work/status.json" || fail "status --all"
python3 - "$work/status.json" "$N" <<'EOP' || fail "status after install --all"
import json, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == int(sys.argv[2]) and all(r["state"] == "requested" for r in rows)
EOP

# Cancel everything: all succeed, three audit rows.
rb cancel --all --json >"$work/cancel.json" 2>"$work/cancel.err" ||
    fail "cancel --all: $(tail -3 "$work/cancel.err")"
python3 - "$work/cancel.json" "$N" <<'EOP' || fail "cancel --all's rows"
import json, sys
rows = json.load(open(sys.argv[1]))
names = [r["host"] for r in rows]
assert len(rows) == int(sys.argv[2]) and names == sorted(set(names)), len(rows)
assert all(r["state"] == "cancelled" for r in rows)
EOP
rb status --all --json >"$work/status.json" || fail "status --all"
python3 - "$work/status.json" <<'EOP' || fail "status after cancel --all"
import json, sys
assert all(r["state"] == "cancelled" for r in json.load(open(sys.argv[1])))
EOP
rb audit --json >"$work/audit.json" || fail "audit"
python3 - "$work/audit.json" <<'EOP' || fail "cancel's audit rows"
import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if r["verb"] == "cancel"]
assert len(rows) == 3 and all(r["ok"] for r in rows), rows
EOP
# Racks by name: one listing for all of them; a rack without hosts is
# refused by name (exit 3) and nothing is installed.
set +e
rb install --rack r03 nosuch --profile el9 >/dev/null 2>"$work/racks.err"
rc=$?
set -e
[ "$rc" = 3 ] || fail "install --rack r03 nosuch exited $rc, wanted 3"
grep -q "rack nosuch has no hosts" "$work/racks.err" || fail "install --rack: $(cat "$work/racks.err")"
rb install --rack r07 r03 --profile el9 --json >"$work/racks.json" || fail "install --rack r07 r03"
python3 - "$work/racks.json" "$work/hosts.csv" <<'EOP' || fail "install --rack r07 r03's rows"
import csv, json, sys
rows = json.load(open(sys.argv[1]))
want = sorted(h["name"] for h in csv.DictReader(open(sys.argv[2])) if h["rack"] in ("r03", "r07"))
assert sorted(r["host"] for r in rows) == want, (len(rows), len(want))
assert all(r["state"] == "requested" for r in rows)
EOP
# A host named twice is installed once, with one row.
rb install h00001 h00001 --profile el9 --json >"$work/twice.json" || fail "install h00001 h00001"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [r["host"] for r in d] == ["h00001"], d' \
    "$work/twice.json" || fail "install h00001 h00001: $(cat "$work/twice.json")"
grep -q "api: installed hosts=$N failed=3" "$work/controller.log" || fail "no log line of the install"
grep -q "api: cancelled hosts=$N failed=0" "$work/controller.log" || fail "no log line of the cancel"
# One line per request, not per slice: 20 hosts named, the skipped ones of
# every slice with why.
first=$(python3 -c 'print(",".join("h%05d" % i for i in range(20)))')
grep -qF "api: install requested hosts=\"$first +$((N - 20)) more\" profile=el9 by=" \
    "$work/controller.log" || fail "no bounded log line of install --all"
grep -qF "result=failed skipped=h00007(active),h06000(active),h12344(active) error=\"3 of $N hosts not installed\"" \
    "$work/controller.log" || fail "the install --all log line does not name the skipped hosts"
[ "$(grep -c 'api: install requested hosts="h00000,' "$work/controller.log")" = 1 ] ||
    fail "install --all logged more than one line"
echo "PASS: install_slices"

#!/bin/sh
# The rackboot CLI end to end against a real rackboot-controller on an
# ipc:// API socket in a temp dir (no agents): imports from CSV, from the
# standalone hosts file and of profiles with a kickstart; install, conflict,
# --replace, partial results; status --json checked with python3's json
# module, -o yaml with PyYAML, --state filters, -o name, -q; cancel, of
# nothing active too;
# watch ending on a cancelled install; events; removal; and the exit codes
# for usage (2), not found (3) and an unreachable controller (4). Over the
# operators' TLS listener (issue #10): a viewer may read but not write, the
# audit log names who wrote what, keys others can read are refused.
#
# Usage: cli_flows.sh rackboot rackboot-controller EXAMPLES_DIR rackboot-pki
set -eu

cli=${1:?usage: cli_flows.sh rackboot rackboot-controller EXAMPLES_DIR rackboot-pki}
ctl=${2:?usage: cli_flows.sh rackboot rackboot-controller EXAMPLES_DIR rackboot-pki}
pki=${4:?usage: cli_flows.sh rackboot rackboot-controller EXAMPLES_DIR rackboot-pki}
[ -x "$ctl" ] || { echo "SKIP: no controller at $ctl"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }

work=$(mktemp -d /tmp/rb-cli-flows-XXXXXX)
ctl_pid=
cleanup() {
    if [ -n "$ctl_pid" ]; then
        kill "$ctl_pid" 2>/dev/null || true
        wait "$ctl_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect STATUS ARGS...: runs rackboot ARGS, which must exit with STATUS.
expect() {
    want=$1
    shift
    set +e
    "$cli" "$@" >"$work/out" 2>"$work/err" </dev/null
    got=$?
    set -e
    if [ "$got" != "$want" ]; then
        fail "exit $got, wanted $want: rackboot $*"
        sed 's/^/  stdout: /' "$work/out" >&2
        sed 's/^/  stderr: /' "$work/err" >&2
    fi
}

# json_check 'PYTHON EXPRESSION over d': the last stdout parsed as JSON.
json_check() {
    if ! python3 -c "
import json, sys
d = json.load(open('$work/out'))
LOCAL = 'local:uid=%d' % __import__('os').getuid()
ok = ($1)
sys.exit(0 if ok else 1)
" 2>"$work/pyerr"; then
        fail "json check failed: $1"
        sed 's/^/  json: /' "$work/out" >&2
        sed 's/^/  python: /' "$work/pyerr" >&2
    fi
}

# log_has TEXT: the controller's log has a line with TEXT. The API writes
# its line before it answers, so it is there once the CLI returned.
log_has() {
    grep -qF -- "$1" "$work/controller.log" || {
        fail "controller log lacks \"$1\""
        grep 'api: ' "$work/controller.log" | sed 's/^/  log: /' >&2
    }
}

err_has() {
    grep -qF -- "$1" "$work/err" || { fail "stderr lacks \"$1\""; sed 's/^/  stderr: /' "$work/err" >&2; }
}

# --- the PKI and the controller ---------------------------------------------
ca=$work/ca
"$pki" --dir "$ca" init >/dev/null
"$pki" --dir "$ca" issue controller ctl.test >/dev/null
"$pki" --dir "$ca" issue operator alice >/dev/null
"$pki" --dir "$ca" issue viewer val >/dev/null
ops_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sock=$work/api.sock
cat >"$work/controller.conf" <<CONF
[controller]
state_dir = $work/state
api_listen = ipc://$sock
operators_listen = tls+tcp://127.0.0.1:$ops_port
log_level = info
[pki]
ca = $ca/ca.crt
cert = $ca/controller/ctl.test.crt
key = $ca/controller/ctl.test.key
[installs]
boot_timeout = 600
install_timeout = 600
CONF
mkdir -p "$work/state"
"$ctl" --config "$work/controller.conf" >"$work/controller.log" 2>&1 &
ctl_pid=$!
i=0
while [ ! -S "$sock" ]; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$ctl_pid" 2>/dev/null; then
        echo "controller did not start:" >&2
        cat "$work/controller.log" >&2
        exit 1
    fi
    sleep 0.1
done
export RACKBOOT_CONTROLLER="ipc://$sock"
# Not the config file of whoever runs the test (cli/context.h).
export RACKBOOT_CONFIG="$work/no-such-config"

# --- inputs -----------------------------------------------------------------
sha=sha256=$(printf '%064d' 1)
cat >"$work/el9.ks" <<'KS'
text
network --hostname={{hostname}}
%post
echo done
%end
KS
cat >"$work/profiles.conf" <<CONF
[profile el9]
kernel = http://mirror.example.com/el9/vmlinuz $sha
initrd = http://mirror.example.com/el9/initrd.img $sha
stage2 = http://mirror.example.com/el9/install.img $sha
cmdline = console=ttyS0
kickstart = el9.ks
overlay = yes
CONF
cat >"$work/hosts.csv" <<'CSV'
name,mac,rack,address,prefix,gateway,hostname
web17,"52:54:00:12:34:56 52:54:00:12:34:57",r1,2001:db8:1::17,64,fe80::1,web17.example.com
web18,52:54:00:12:34:58,r1,2001:db8:1::18,,,
CSV
cat >"$work/hosts.conf" <<'CONF'
[host db1]
mac = 52:54:00:00:db:01
address = 2001:db8:2::1
install = el9
CONF

# --- imports ----------------------------------------------------------------
expect 0 --version
expect 0 hosts import "$work/hosts.csv"
expect 1 hosts import "$work/hosts.csv"          # exists: CONFLICT
err_has "--update"
expect 0 hosts import "$work/hosts.csv" --update
expect 2 hosts import "$work/hosts.conf"         # standalone file, no --rack
expect 0 hosts import "$work/hosts.conf" --rack r2
err_has "install = el9 is not imported"
expect 0 profiles import "$work/profiles.conf"
expect 0 profiles import "$work/profiles.conf"   # re-import updates
printf 'name,mac,rack\nweb19,52:54:00:12:34:59\n' >"$work/bad.csv"
expect 2 hosts import "$work/bad.csv"
err_has "bad.csv:1: missing column \"address\""

expect 0 hosts list --json
json_check 'sorted(h["name"] for h in d) == ["db1", "web17", "web18"]'
expect 0 hosts show web17 --json
json_check 'd[0]["macs"] == ["52:54:00:12:34:56", "52:54:00:12:34:57"] and d[0]["address"] == "2001:db8:1::17" and d[0]["rack"] == "r1" and d[0]["gateway"] == "fe80::1"'
expect 0 hosts list --rack r2 --json
json_check '[h["name"] for h in d] == ["db1"]'
expect 3 hosts show web99
err_has "web99"
expect 0 profiles show el9 --json
json_check 'd[0]["kickstart"].startswith("text\n") and d[0]["overlay"] is True and len(d[0]["images"]) == 3'
expect 0 profiles list --json
json_check '[p["name"] for p in d] == ["el9"] and "kickstart" not in d[0] and len(d[0]["kickstart_sha256"]) == 64'
expect 0 images list --json
json_check 'sorted(i["kind"] for i in d) == ["initrd", "kernel", "stage2"]'
expect 0 racks --json
json_check 'sorted(r["rack"] for r in d) == ["r1", "r2"]'
expect 0 racks

# --- installs ---------------------------------------------------------------
expect 0 install web17 --profile el9
expect 1 install web17 --profile el9            # active install: CONFLICT
err_has "--replace"
expect 0 install web17 --profile el9 --replace --json
json_check 'd[0]["host"] == "web17" and d[0]["state"] == "requested"'
expect 3 install web99 --profile el9
expect 3 install web18 --profile nope
expect 0 install --rack r2 --profile el9

expect 0 status --json
json_check '
all(set(r) >= {"host", "rack", "install_id", "profile", "state", "phase", "percent", "updated_at"} for r in d)
and {r["host"]: r["state"] for r in d} == {"db1": "requested", "web17": "requested", "web18": "none"}
and [r for r in d if r["host"] == "web17"][0]["profile"] == "el9"
and [r for r in d if r["host"] == "web17"][0]["install_id"]
and [r for r in d if r["host"] == "web17"][0]["updated_at"].endswith("Z")
and [r for r in d if r["host"] == "web18"][0]["install_id"] is None'
expect 0 status web17 web18
grep -q '^web17 .*requested' "$work/out" || fail "status table lacks web17 requested"
# Scriptable output: the filters, names, YAML read back by PyYAML (a YAML
# 1.1 reader: MACs and addresses must stay strings) equal to the JSON.
expect 0 status --state requested -o name
[ "$(cat "$work/out")" = "$(printf 'db1\nweb17')" ] || fail "status --state requested -o name: $(cat "$work/out")"
expect 0 hosts list --state none -o name
[ "$(cat "$work/out")" = "web18" ] || fail "hosts list --state none: $(cat "$work/out")"
expect 0 hosts list --rack r1 --state requested,installing --json
json_check '[h["name"] for h in d] == ["web17"]'
expect 2 status --state bogus
err_has "--state bogus: expected a comma-separated list of none, requested"
expect 0 hosts list --json
cp "$work/out" "$work/hosts.json"
expect 0 -o yaml hosts list
python3 -c "
import json, sys, yaml
y = yaml.safe_load(open('$work/out'))
j = json.load(open('$work/hosts.json'))
sys.exit(0 if y == j else 1)" || fail "hosts list -o yaml does not read back as its --json"
expect 0 status -o wide web17
grep -q '^HOST .* INSTALL .* ATTEMPT ' "$work/out" || fail "status -o wide lacks INSTALL and ATTEMPT"
expect 0 install db1 --profile el9 --replace --quiet
[ -s "$work/out" ] && fail "install --quiet printed: $(cat "$work/out")"
expect 3 -q status web99
err_has "web99"
expect 3 status web99
# Honest partial results: web17 is active, web18 is not; web18's row is
# printed beside web17's skip, and the exit status says not all was done.
expect 1 install web17 web18 --profile el9
grep -q '^web18 .*requested' "$work/out" || fail "install printed no row for web18, which it did"
err_has "host web17: has an active install"
err_has "1 of 2 hosts not installed"
# The daemon log says who did what to which hosts, and what was skipped.
log_has "api: install requested hosts=web17,web18 profile=el9 by=\"local:uid=$(id -u)\" result=failed skipped=web17(active) error=\"1 of 2 hosts not installed\""
expect 0 cancel web18

expect 0 cancel web17
expect 0 status web17 --json
json_check 'd[0]["state"] == "cancelled"'
# Nothing active: nothing to cancel, and no failure.
expect 0 cancel web17 web18
grep -qx 'nothing to cancel' "$work/out" || fail "cancel of nothing active did not say so"
# watch ends at once on a cancelled install, with one plain line (no tty).
expect 1 watch web17
grep -q 'web17 .*cancelled' "$work/out" || fail "watch printed no cancelled line"
grep -q "$(printf '\033')" "$work/out" && fail "watch wrote ANSI codes to a pipe"
# watch --json: JSON Lines, a row of status --json per change.
expect 1 watch web17 --json
python3 -c "
import json, sys
rows = [json.loads(l) for l in open('$work/out')]
sys.exit(0 if rows and rows[-1]['host'] == 'web17' and rows[-1]['state'] == 'cancelled' else 1)" ||
    fail "watch --json: $(cat "$work/out")"
expect 0 events web17 --json
json_check 'isinstance(d, list) and all(set(e) >= {"seq", "time", "phase", "percent", "message"} for e in d)'
expect 3 events web99

# --- BMCs and power (issue 15): no agent runs here, so commands queue ----
secret='Hunter2-s3cr3t'
set +e
printf '%s\n' "$secret" | "$cli" hosts add web20 --mac 52:54:00:12:34:20 --rack r1 \
    --address 2001:db8:1::20 --bmc 'ipmi://[2001:db8:ff::20]:623' --bmc-user admin \
    --bmc-password-stdin --firmware uefi >"$work/out" 2>"$work/err"
got=$?
set -e
[ "$got" = 0 ] || { fail "hosts add --bmc-password-stdin exit $got"; cat "$work/err" >&2; }
cat "$work/out" "$work/err" >"$work/all-output"
expect 2 hosts add web21 --mac 52:54:00:12:34:21 --rack r1 --address 2001:db8:1::21 \
    --bmc 'ipmi://[2001:db8:ff::21]' --bmc-password "$secret"
err_has "never taken on the command line"
cat "$work/out" "$work/err" >>"$work/all-output"
expect 0 hosts list --json
cat "$work/out" >>"$work/all-output"
json_check '
[h for h in d if h["name"] == "web20"][0]["bmc_password_set"] is True
and [h for h in d if h["name"] == "web20"][0]["bmc"] == "ipmi://[2001:db8:ff::20]:623"
and [h for h in d if h["name"] == "web20"][0]["bmc_user"] == "admin"
and [h for h in d if h["name"] == "web20"][0]["firmware"] == "uefi"
and [h for h in d if h["name"] == "web20"][0]["power_state"] is None
and [h for h in d if h["name"] == "web17"][0]["bmc"] is None
and [h for h in d if h["name"] == "web17"][0]["bmc_password_set"] is False
and not any("bmc_password" in h for h in d)'
expect 0 hosts list
cat "$work/out" >>"$work/all-output"
grep -q '^web20 .* unknown ' "$work/out" || fail "hosts list shows no POWER unknown for web20"
expect 0 hosts show web20
cat "$work/out" >>"$work/all-output"
grep -q '^bmc_password: set$' "$work/out" || fail "hosts show does not say the password is set"
expect 0 power status web20 --no-wait
cat "$work/out" "$work/err" >>"$work/all-output"
grep -q '^web20 .*status .*queued' "$work/out" || fail "power --no-wait queued nothing"
expect 0 power status web20 --no-wait --json
json_check 'd[0]["host"] == "web20" and d[0]["result"] == "queued" and d[0]["id"]'
start=$(date +%s)
expect 1 power cycle web20 --bootdev pxe --timeout 2
[ $(($(date +%s) - start)) -le 10 ] || fail "power --timeout 2 took $(($(date +%s) - start)) s"
err_has "1 of 1 hosts had no outcome after 2 s"
grep -q '^web20 .*cycle .*timed_out' "$work/out" || fail "power --timeout shows no timed_out row"
expect 2 power reboot web20
expect 1 power status web18 --no-wait             # no BMC
err_has "has no BMC"
# One host without a BMC among others: its row says why, the others queue.
expect 1 power status web18 web20 --no-wait --json
json_check 'len(d) == 2 and [r for r in d if r["host"] == "web18"][0]["result"] == "failed" and "no BMC" in [r for r in d if r["host"] == "web18"][0]["message"] and [r for r in d if r["host"] == "web20"][0]["result"] == "queued"'
expect 1 install web18 --profile el9 --power cycle
err_has "has no BMC"
expect 0 install web20 --profile el9 --power cycle
expect 0 cancel web20
expect 0 audit --json
cat "$work/out" >>"$work/all-output"
json_check 'any(r["verb"] == "power cycle" and r["hosts"] == ["web20"] for r in d)'
for f in "$work/all-output" "$work/controller.log"; do
    if grep -qF "$secret" "$f"; then
        fail "the BMC password appears in $f"
    fi
done

expect 0 cancel --rack r2
expect 0 hosts remove web18
expect 3 hosts show web18

# --- the local socket: root and group rackboot only (issue #10) --------------
if getent group rackboot >/dev/null 2>&1; then
    [ "$(stat -c %a:%G "$sock")" = 660:rackboot ] ||
        fail "api socket is $(stat -c %a:%G "$sock"), not 660:rackboot"
else
    [ "$(stat -c %a "$sock")" = 600 ] || fail "api socket is $(stat -c %a "$sock"), not 600"
    grep -q 'no group rackboot' "$work/controller.log" || fail "no log line about the missing group"
fi

# --- roles over the operators' TLS listener (issue #10) ---------------------
ops() { # ops ROLE NAME ARGS...: rackboot as that certificate
    role=$1
    name=$2
    shift 2
    expect_status=$1
    shift
    expect "$expect_status" --controller "tls+tcp://127.0.0.1:$ops_port" --ca "$ca/ca.crt" \
        --server-name ctl.test --cert "$ca/$role/$name.crt" --key "$ca/$role/$name.key" "$@"
}
# A viewer reads everything...
ops viewer val 0 status --json
json_check 'sorted(r["host"] for r in d) == ["db1", "web17", "web20"]'
ops viewer val 0 hosts list
ops viewer val 0 hosts show web17
ops viewer val 0 racks
ops viewer val 0 profiles list
ops viewer val 0 profiles show el9
ops viewer val 0 images list
ops viewer val 0 events web17
ops viewer val 1 watch web17
# ...and changes nothing.
ops viewer val 1 install web17 --profile el9
err_has "permission denied: viewer may not install"
# Refused once: a permission refusal is not taken for a lost identity
# (re-authenticate and send again).
[ "$(grep -c 'api: viewer:val refused: may not install' "$work/controller.log")" = 1 ] ||
    fail "the viewer's install was sent more than once: $(grep -c 'viewer:val refused: may not install' "$work/controller.log")"
ops viewer val 1 cancel --all
err_has "permission denied: viewer may not cancel"
log_has "api: cancel requested hosts=all by=viewer:val result=refused error=\"permission denied: viewer may not cancel\""
ops viewer val 1 hosts import "$work/hosts.csv" --update
err_has "permission denied: viewer may not add or import hosts"
ops viewer val 1 hosts add web30 --mac 52:54:00:00:00:30 --rack r1 --address 2001:db8:1::30
err_has "permission denied"
ops viewer val 1 hosts remove web17
err_has "permission denied: viewer may not remove hosts"
ops viewer val 1 profiles import "$work/profiles.conf"
err_has "permission denied: viewer may not import profiles"
ops viewer val 1 audit
err_has "permission denied: viewer may not read the audit log"
ops viewer val 1 power status web20
err_has "permission denied: viewer may not use hosts' BMCs"
ops viewer val 0 hosts show web20 --json
json_check 'd[0]["bmc_password_set"] is True and "bmc_password" not in d[0]'
ops operator alice 0 status web17 --json
json_check 'd[0]["state"] == "cancelled"'
# An operator may do everything.
ops operator alice 0 install web17 --profile el9
log_has "api: install requested hosts=web17 profile=el9 by=operator:alice result=ok"
ops operator alice 0 cancel web17
ops operator alice 0 profiles import "$work/profiles.conf"

# --- contexts: the config file instead of five options (cli/context.h) --------
cat >"$work/cli.conf" <<EOF
# The fleet's controller as alice (used when none is named) and as val;
# paths relative to this file.
[rackboot]
context = alice

[context alice]
controller = tls+tcp://127.0.0.1:$ops_port
ca = ca/ca.crt
cert = ca/operator/alice.crt
key = ca/operator/alice.key
server_name = ctl.test

[context val]
controller = tls+tcp://127.0.0.1:$ops_port
ca = ca/ca.crt
cert = ca/viewer/val.crt
key = ca/viewer/val.key
server_name = ctl.test
EOF
printf '#!/bin/sh\nunset RACKBOOT_CONTROLLER\nRACKBOOT_CONFIG=%s exec %s "$@"\n' \
    "$work/cli.conf" "$cli" >"$work/rackboot-ctx"
chmod +x "$work/rackboot-ctx"
cli_local=$cli
cli=$work/rackboot-ctx
expect 0 status web17 --json
json_check 'd[0]["host"] == "web17"'
expect 1 --context val install web17 --profile el9
err_has "permission denied: viewer may not install"
expect 0 contexts
grep -q '^\* alice  *tls+tcp://127.0.0.1:' "$work/out" || fail "contexts does not mark alice"
expect 0 --context val contexts --json
json_check '[(c["name"], c["current"]) for c in d] == [("alice", False), ("val", True)]'
expect 2 --context nope status
err_has "no [context nope] in $work/cli.conf"
err_has "contexts in $work/cli.conf: alice val"
# The command line still wins: the local socket, alice's files unused.
expect 0 --controller "ipc://$sock" status web17
cli=$cli_local
printf '[context x]\ncontroler = ipc:///x\n' >"$work/typo.conf"
RACKBOOT_CONFIG="$work/typo.conf"
expect 2 --context x status
err_has "typo.conf:2: unknown key \"controler\" in [context x]"
RACKBOOT_CONFIG="$work/no-such-config"

# --- the audit log ------------------------------------------------------------
# LOCAL: the local socket's caller, by uid
ops operator alice 0 audit --json
json_check '
all(set(r) == {"seq", "time", "who", "verb", "hosts", "host_count", "profiles", "ok", "result"} for r in d)
and [r["seq"] for r in d] == sorted(r["seq"] for r in d)
and {"hosts add", "hosts remove", "profiles import", "install", "cancel"} <= {r["verb"] for r in d}
and all(r["time"].endswith("Z") for r in d)
and any(r["who"] == LOCAL and r["verb"] == "hosts add" and r["ok"]
        and sorted(r["hosts"]) == ["web17", "web18"] for r in d)
and any(r["who"] == LOCAL and r["verb"] == "install" and not r["ok"]
        and r["hosts"] == ["web17"] and "replace" in r["result"] for r in d)
and any(r["who"] == LOCAL and r["verb"] == "install" and r["ok"]
        and r["hosts"] == ["db1"] and r["profiles"] == ["el9"] for r in d)
and any(r["who"] == LOCAL and r["verb"] == "hosts remove" and r["hosts"] == ["web18"] for r in d)
and any(r["who"] == "operator:alice" and r["verb"] == "install" and r["ok"]
        and r["hosts"] == ["web17"] and r["result"] == "ok" for r in d)
and any(r["who"] == "operator:alice" and r["verb"] == "profiles import" and r["profiles"] == ["el9"] for r in d)
and any(r["who"] == "viewer:val" and r["verb"] == "install" and not r["ok"]
        and r["result"] == "permission denied: viewer may not install" for r in d)
and not any(r["verb"] in ("status", "hosts list", "events") for r in d)'
expect 0 audit
grep -q 'operator:alice .*install el9 .*web17 .*ok' "$work/out" || fail "audit table lacks alice's install"
grep -q 'viewer:val .*permission denied' "$work/out" || fail "audit table lacks the refused viewer"
expect 0 audit --since 1h --limit 2 --json
json_check 'len(d) == 2'
expect 0 audit --since 2099-01-01 --json
json_check 'd == []'
expect 2 audit --since yesterday
expect 2 audit --since 2026-02-30

# --- a big audit log comes in pages ----------------------------------------
# 300 refused removals, each naming 1,000 hosts of 63 characters: about
# 19 MB of rows, more than one reply may carry (RBPROTO_MAX_MESSAGE, 16 MiB).
# The controller caps each reply by size and `audit` fetches page after page.
python3 -c 'print(" ".join("h%04d" % i + "x" * 58 for i in range(1000)))' >"$work/names"
rows_before=$("$cli" audit --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
i=0
while [ $i -lt 300 ]; do
    # shellcheck disable=SC2046 # one argument per name
    "$cli" hosts remove $(cat "$work/names") >/dev/null 2>&1 || true
    i=$((i + 1))
done
# Its log lines name 20 hosts each, not 1,000.
log_has "hosts=\"h0000$(printf '%058d' 0 | tr 0 x),"
log_has ",h0019$(printf '%058d' 0 | tr 0 x) +980 more\" by="
expect 0 audit --json
json_check "
len(d) == $rows_before + 300
and [r['seq'] for r in d] == sorted(set(r['seq'] for r in d))
and sum(1 for r in d if r['verb'] == 'hosts remove' and len(r['hosts']) == 1000
        and r['host_count'] == 1000 and not r['ok']) == 300"
expect 0 audit
[ "$(grep -c 'hosts remove' "$work/out")" -ge 300 ] || fail "audit table lacks the 300 removals"
expect 0 audit --limit 250 --json
json_check 'len(d) == 250'

# --- private keys readable by others are refused (issue #10) -----------------
cp "$ca/operator/alice.key" "$work/loose.key"
chmod 0644 "$work/loose.key"
expect 1 --controller "tls+tcp://127.0.0.1:$ops_port" --ca "$ca/ca.crt" --server-name ctl.test \
    --cert "$ca/operator/alice.crt" --key "$work/loose.key" status
err_has "$work/loose.key"
err_has "0644"
sed "s|^key = .*|key = $work/loose.key|" "$work/controller.conf" >"$work/loose.conf"
set +e
"$ctl" --config "$work/loose.conf" --check-config >"$work/out" 2>"$work/err"
got=$?
set -e
[ "$got" = 1 ] || fail "controller --check-config took a key others can read (exit $got)"
err_has "$work/loose.key"
err_has "0644"

# --- usage and reachability -------------------------------------------------
expect 2 install web17
expect 2 bogus
expect 2 --controller http://nowhere status
expect 4 --controller "ipc://$work/nothing.sock" status
err_has "controller ipc://$work/nothing.sock (--controller) unreachable"
err_has "is rackboot-controller running here?"
kill "$ctl_pid"
wait "$ctl_pid" 2>/dev/null || true
ctl_pid=
expect 4 status

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)" >&2
    exit 1
fi
echo "cli_flows: all passed"

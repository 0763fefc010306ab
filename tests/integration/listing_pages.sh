#!/bin/sh
# Listings in pages (issue 13) end to end: a real rackboot-controller with a
# few thousand hosts imported by `rackboot hosts import` from a generated
# CSV, and events sent by rb-fake-agent over mutual TLS. Checks that
#   - `hosts list`, `status` (--all, racks) and `events` with --limit and
#     --after give disjoint, consecutive pages in order (host name in byte
#     order; events by seq), whose concatenation is the whole listing;
#   - the whole listing (fetched by the CLI 1,000 rows a page) has every
#     host once, as --json that python3's json module parses and as a table
#     with one header line;
#   - status of several racks merges their hosts by name; named hosts come
#     in the order named; usage errors for pages of named hosts.
#
# Usage: listing_pages.sh rackboot rackboot-controller rackboot-pki rb-fake-agent
set -eu

cli=${1:?usage: listing_pages.sh rackboot rackboot-controller rackboot-pki rb-fake-agent}
ctl=${2:?usage: listing_pages.sh rackboot rackboot-controller rackboot-pki rb-fake-agent}
pki=${3:?usage: listing_pages.sh rackboot rackboot-controller rackboot-pki rb-fake-agent}
fake=${4:?usage: listing_pages.sh rackboot rackboot-controller rackboot-pki rb-fake-agent}
[ -x "$ctl" ] || { echo "SKIP: no controller at $ctl"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }

work=$(mktemp -d /tmp/rb-listing-XXXXXX)
ctl_pid=
cleanup() {
    if [ -n "$ctl_pid" ]; then
        kill "$ctl_pid" 2>/dev/null || true
        wait "$ctl_pid" 2>/dev/null || true
    fi
    [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
failures=0

fail() {
    echo "FAIL: listing_pages: $*" >&2
    failures=$((failures + 1))
}

# --- the PKI (agents send the events) and the controller ---------------------
cd "$work"
"$pki" --dir ca init >/dev/null
"$pki" --dir ca issue controller ctl.test >/dev/null
"$pki" --dir ca issue agent ra >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
agents_url="tls+tcp://127.0.0.1:$port"
sock=$work/api.sock
cat >controller.conf <<CONF
[controller]
state_dir = $work/state
agents_listen = $agents_url
api_listen = ipc://$sock
log_level = warning
[pki]
ca = ca/ca.crt
cert = ca/controller/ctl.test.crt
key = ca/controller/ctl.test.key
[installs]
boot_timeout = 3600
install_timeout = 3600
CONF
mkdir -p state
"$ctl" --config controller.conf >controller.log 2>&1 &
ctl_pid=$!
i=0
while ! { [ -S "$sock" ] && "$cli" --controller "ipc://$sock" racks >/dev/null 2>&1; }; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$ctl_pid" 2>/dev/null; then
        echo "controller did not start:" >&2
        cat controller.log >&2
        exit 1
    fi
    sleep 0.1
done
export RACKBOOT_CONTROLLER="ipc://$sock"

# --- 3,000 hosts in four racks, from a CSV --------------------------------------
# n0000..n2899 round the racks ra, rb, rc (each rack's names interleave with
# the others'), Q000..Q099 in rd: upper case sorts before lower case.
python3 - <<'PY'
with open("hosts.csv", "w") as f:
    f.write("name,mac,rack,address\n")
    for i in range(2900):
        f.write("n%04d,52:54:00:01:%02x:%02x,r%s,2001:db8:1::%x\n"
                % (i, i >> 8, i & 255, "abc"[i % 3], i + 1))
    for i in range(100):
        f.write("Q%03d,52:54:00:02:00:%02x,rd,2001:db8:2::%x\n" % (i, i, i + 1))
PY
sha=sha256=$(printf '%064d' 1)
cat >profiles.conf <<CONF
[profile el9]
kernel = http://mirror.example.com/el9/vmlinuz $sha
initrd = http://mirror.example.com/el9/initrd.img $sha
CONF
"$cli" hosts import hosts.csv >/dev/null || fail "hosts import"
"$cli" profiles import profiles.conf >/dev/null || fail "profiles import"
"$cli" install --rack ra --profile el9 >/dev/null || fail "install --rack ra"

# Events: two per host of ra (dhcp_bound, script_served), 1,934 in batches
# of at most 1,000 (an EventBatch's limit), sent as ra's agent.
"$cli" status --rack ra --json >ra.json || fail "status --rack ra"
python3 - <<'PY'
import json
rows = json.load(open("ra.json"))
specs = []
for r in rows:
    specs.append("%s:%s:dhcp_bound" % (r["host"], r["install_id"]))
for r in rows:
    specs.append("%s:%s:script_served" % (r["host"], r["install_id"]))
for n, at in enumerate(range(0, len(specs), 1000)):
    with open("batch%d" % n, "w") as f:
        f.write("%d\n" % (at + 1))
        f.write("\n".join(specs[at:at + 1000]) + "\n")
PY
for b in batch*; do
    from=$(head -n 1 "$b")
    # shellcheck disable=SC2046 # one argument per event
    "$fake" --url "$agents_url" --ca ca/ca.crt --server-name ctl.test --cert ca/agent/ra.crt \
        --key ca/agent/ra.key events --from "$from" $(tail -n +2 "$b") >/dev/null ||
        fail "rb-fake-agent events $b"
done

# --- the checks, in python3 (it runs the CLI) ----------------------------------
RACKBOOT=$cli python3 - <<'PY' || fail "page checks (above)"
import csv, json, os, subprocess, sys

cli = os.environ["RACKBOOT"]
failed = []

def check(ok, what):
    if not ok:
        failed.append(what)
        print("FAIL: " + what, file=sys.stderr)

def run(*args, code=0):
    p = subprocess.run([cli, *args], capture_output=True, text=True)
    if p.returncode != code:
        check(False, "rackboot %s: exit %d, want %d: %s" % (" ".join(args), p.returncode, code,
                                                             p.stderr.strip()))
    return p.stdout

def js(*args):
    out = run(*args, "--json")
    try:
        return json.loads(out)
    except ValueError as e:
        check(False, "rackboot %s --json: not JSON (%s): %.200s" % (" ".join(args), e, out))
        return []

hosts = {r["name"]: r["rack"] for r in csv.DictReader(open("hosts.csv"))}
by_name = sorted(hosts)  # byte order: the names are ASCII
check(by_name[0] == "Q000" and by_name[-1] == "n2899", "byte order of the fixture")

def pages(args, key, limit, cursor_opt="--after", cursor_of=None):
    """Every page of `limit` rows, each asked --after the previous page's
    last row, until an empty page. Checks each page's size and that it
    starts after the previous one (disjoint, consecutive, ordered)."""
    cursor_of = cursor_of or (lambda row: row[key])
    got, after, n = [], None, 0
    while True:
        extra = ["--limit", str(limit)] + ([cursor_opt, str(after)] if after is not None else [])
        page = js(*args, *extra)
        n += 1
        check(len(page) <= limit, "%s: a page of %d rows, limit %d" % (args, len(page), limit))
        keys = [r[key] for r in page]
        check(keys == sorted(keys), "%s: a page out of order" % (args,))
        if got and page:
            check(page[0][key] > got[-1][key], "%s: page %d overlaps or goes back" % (args, n))
        if not page:
            break
        got.extend(page)
        after = cursor_of(page[-1])
        if n > 100:
            check(False, "%s: pages do not end" % (args,))
            break
    return got

# hosts list: the whole listing, and in pages
whole = js("hosts", "list")
names = [h["name"] for h in whole]
check(names == by_name, "hosts list --json: %d hosts, want the %d in name order"
      % (len(names), len(by_name)))
check(all(h["rack"] == hosts[h["name"]] for h in whole), "hosts list: racks")
paged = pages(["hosts", "list"], "name", 700)
check([h["name"] for h in paged] == by_name, "hosts list pages of 700: concatenation")
check(paged == whole, "hosts list pages: the same rows as the whole listing")
table = run("hosts", "list").splitlines()
check(len(table) == 1 + len(by_name) and table[0].startswith("NAME "),
      "hosts list table: %d lines, want one header and %d hosts" % (len(table), len(by_name)))
check([l.split()[0] for l in table[1:]] == by_name, "hosts list table: names in order")
check(sum(1 for l in table if l.startswith("NAME ")) == 1, "hosts list table: one header")
first5 = run("hosts", "list", "--limit", "5").splitlines()
check([l.split()[0] for l in first5[1:]] == by_name[:5], "hosts list --limit 5")
nxt = js("hosts", "list", "--limit", "3", "--after", by_name[4])
check([h["name"] for h in nxt] == by_name[5:8], "hosts list --after the 5th --limit 3")
rb = js("hosts", "list", "--rack", "rb")
check([h["name"] for h in rb] == [n for n in by_name if hosts[n] == "rb"], "hosts list --rack rb")
rb_paged = pages(["hosts", "list", "--rack", "rb"], "name", 250)
check(rb_paged == rb, "hosts list --rack rb in pages of 250")

# status: every host, racks merged by name, in pages; named hosts as named
status = js("status")
check([r["host"] for r in status] == by_name, "status --json: every host in name order")
check(all(r["state"] not in ("none", None) and r["install_id"]
          for r in status if hosts[r["host"]] == "ra"), "status: ra's installs")
check(all(r["state"] == "none" for r in status if hosts[r["host"]] != "ra"), "status: the rest")
check(pages(["status", "--all"], "host", 1000) == status, "status --all in pages of 1000")
two = js("status", "--rack", "rd", "rb")
check([r["host"] for r in two] == [n for n in by_name if hosts[n] in ("rb", "rd")],
      "status --rack rd rb: merged by name")
check(pages(["status", "--rack", "rd", "rb"], "host", 333) == two, "status of two racks in pages")
named = js("status", "n0005", "Q007", "n0001")
check([r["host"] for r in named] == ["n0005", "Q007", "n0001"], "status HOST...: order named")
run("status", "n0005", "--limit", "2", code=2)
run("hosts", "show", "n0005", "--after", "n0001", code=2)
stable = run("status", "--rack", "ra").splitlines()
check(len(stable) == 1 + sum(1 for n in hosts if hosts[n] == "ra")
      and stable[0].startswith("HOST "), "status --rack ra table")

# events: 1,934 by seq, in pages --after SEQ; one host's
events = js("events")
ra = [n for n in by_name if hosts[n] == "ra"]
check(len(events) == 2 * len(ra), "events: %d, want %d" % (len(events), 2 * len(ra)))
seqs = [e["seq"] for e in events]
check(seqs == sorted(set(seqs)), "events: by seq, once each")
check(pages(["events"], "seq", 500, cursor_of=lambda e: e["seq"]) == events,
      "events in pages of 500")
one = js("events", ra[0])
check([e["phase"] for e in one] == ["dhcp_bound", "script_served"], "events HOST")
etable = run("events", "--limit", "1500").splitlines()
check(len(etable) == 1501 and etable[0].startswith("SEQ "), "events --limit 1500 table")

sys.exit(1 if failed else 0)
PY

if [ "$failures" -ne 0 ]; then
    echo "---- controller.log (last 20 lines)" >&2
    tail -n 20 controller.log >&2
    echo "$failures failure(s)" >&2
    exit 1
fi
echo "listing_pages: all passed"

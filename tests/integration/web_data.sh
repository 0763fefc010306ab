#!/bin/bash
# The web view's data (controller/web/data.h) against a real controller,
# with curl over HTTPS on IPv6 loopback and a scripted agent
# (rb-fake-agent) reporting an install:
#
#   - GET /api/hosts pages by name (limit, after, more) and filters by
#     rack, state, phase and name prefix on the controller; a bad filter
#     gets 400 with the reason; without a session 401;
#   - GET /api/racks shows the agent once it synced, with the cache use
#     it reports (AgentStatus), and so do `rackboot racks` and its --json;
#   - GET /api/answer?host= renders the host's kickstart as its agent
#     would, with the agent's reported render context, the token
#     REDACTED (the real one appears nowhere in the answer), for viewers
#     too; 404 without an active install, 409 for a rack whose agent never
#     reported how it renders;
#   - GET /api/events/stream (Server-Sent Events) delivers the install's
#     events as the agent reports them, each with its seq as id, a
#     `change` event when states change without one (an install asked for,
#     dispatched), and
#     resumes after Last-Event-ID, or starts at the events to come without
#     one; GET /api/events pages the same rows.
#
# usage: web_data.sh CONTROLLER PKI FAKE_AGENT CLI
set -u
CONTROLLER=${1:?usage: $0 CONTROLLER PKI FAKE_AGENT CLI}
PKI=${2:?}
FAKE=${3:?}
CLI_BIN=${4:?}
TEST_NAME=web_data
# shellcheck source=tests/integration/web_lib.sh
. "$(dirname "$0")/web_lib.sh"
T=$(mktemp -d /tmp/rackboot-web-data.XXXXXX)
CTL_PID=""
WATCH_PID=""
SSE_PID=""

cleanup() {
    [ -n "$SSE_PID" ] && kill "$SSE_PID" 2>/dev/null
    [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null
    [ -n "$CTL_PID" ] && kill "$CTL_PID" 2>/dev/null
    wait 2>/dev/null
    [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT

web_require_ipv6
for tool in curl openssl; do
    command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done

cd "$T" || exit 1

web_fleet_pki

URL="tls+tcp://127.0.0.1:$(free_port AF_INET 127.0.0.1)"
OPS="tls+tcp://127.0.0.1:$(free_port AF_INET 127.0.0.1)"
web_config "agents_listen = $URL" "operators_listen = $OPS"
web_start

cli() { "$CLI_BIN" --controller "$API" "$@"; }
AGENT=("$FAKE" --url "$URL" --ca ca/ca.crt --server-name ctl.test
    --cert ca/agent/rack-a.crt --key ca/agent/rack-a.key)
CURL=(curl -sS --max-time 10 --cacert web.crt --resolve "ctl.test:$WP:::1")
BASE="https://ctl.test:$WP"
# api PATH [CURL ARGS]: the JSON body to PATH.json, the status printed.
api() {
    local path=$1
    shift
    "${CURL[@]}" -o api.json -w '%{http_code}' -H "Cookie: $SESSION" "$@" "$BASE$path" ||
        fail "curl $path"
}
# js EXPR: a Python expression over the last answer `d`, printed.
js() { python3 -c "import json; d=json.load(open('api.json')); print(($1))"; }

step "fleet: five hosts in two racks, a profile"
web_import_fleet $'text\nurl --url={{agent_url}}/images/{{profile}}/\n# {{token}}\n' <<EOF
db1,52:54:00:00:0b:01,rack-b,2001:db8:b::1
web1,52:54:00:00:0a:01,rack-a,2001:db8:a::1
web2,52:54:00:00:0a:02,rack-a,2001:db8:a::2
web3,52:54:00:00:0a:03,rack-a,2001:db8:a::3
web4,52:54:00:00:0a:04,rack-a,2001:db8:a::4
EOF

step "sign in"
LOGIN=$(cli web login 2>/dev/null) || fail "web login"
"${CURL[@]}" -o /dev/null -D login.h "$LOGIN" || fail "curl login"
SESSION=$(tr -d '\r' <login.h | sed -n 's/^set-cookie: \(rackboot_session=[0-9a-f]*\);.*/\1/Ip')
[ -n "$SESSION" ] || fail "no session cookie: $(cat login.h)"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$BASE/api/hosts")
[ "$code" = 401 ] || fail "/api/hosts without a session: $code"

step "pages and their files"
code=$("${CURL[@]}" -o page.html -w '%{http_code}' -H "Cookie: $SESSION" "$BASE/racks")
[ "$code" = 200 ] || fail "/racks: $code"
grep -q '<script src="/static/app.js" defer>' page.html || fail "unexpected body"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$BASE/racks")
[ "$code" = 401 ] || fail "/racks without a session: $code"
code=$("${CURL[@]}" -o app.js -D app.h -w '%{http_code}' "$BASE/static/app.js")
[ "$code" = 200 ] || fail "/static/app.js: $code"
grep -q 'new EventSource' app.js || fail "unexpected body"
grep -qi '^content-type: text/javascript' app.h || fail "app.js type: $(cat app.h)"
ETAG=$(tr -d '\r' <app.h | sed -n 's/^etag: //Ip')
[ -n "$ETAG" ] || fail "app.js without an ETag"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$BASE/static/app.js")
[ "$code" = 304 ] || fail "app.js revalidated: $code"
for name in page.html nope.js ../app.js; do
    code=$("${CURL[@]}" --path-as-is -o /dev/null -w '%{http_code}' "$BASE/static/$name")
    case $code in 403 | 404) ;; *) fail "/static/$name: $code" ;; esac
done

step "hosts: pages, filters"
[ "$(api /api/hosts)" = 200 ] || fail "/api/hosts: $(cat api.json)"
[ "$(js '",".join(h["host"] for h in d["hosts"])')" = db1,web1,web2,web3,web4 ] ||
    fail "all hosts: $(cat api.json)"
[ "$(js 'd["hosts"][0]["state"], d["more"]')" = "('none', False)" ] || fail "db1: $(cat api.json)"
api "/api/hosts?limit=2" >/dev/null
[ "$(js '",".join(h["host"] for h in d["hosts"]), d["more"]')" = "('db1,web1', True)" ] ||
    fail "page 1: $(cat api.json)"
api "/api/hosts?limit=2&after=web1" >/dev/null
[ "$(js '",".join(h["host"] for h in d["hosts"])')" = web2,web3 ] || fail "page 2: $(cat api.json)"
api "/api/hosts?rack=rack-b" >/dev/null
[ "$(js '",".join(h["host"] for h in d["hosts"])')" = db1 ] || fail "rack-b: $(cat api.json)"
api "/api/hosts?prefix=web&limit=3" >/dev/null
[ "$(js '",".join(h["host"] for h in d["hosts"]), d["more"]')" = "('web1,web2,web3', True)" ] ||
    fail "prefix web: $(cat api.json)"
code=$(api "/api/hosts?state=bogus")
[ "$code" = 400 ] || fail "bad state: $code"
grep -q "state:" api.json || fail "bad state, no reason: $(cat api.json)"

step "a live events stream, then an install reported by the agent"
"${CURL[@]}" --max-time 30 -N -H "Cookie: $SESSION" "$BASE/api/events/stream?after=0" \
    >sse.out 2>sse.err &
SSE_PID=$!
for _ in $(seq 100); do
    grep -q '^retry: ' sse.out && break
    sleep 0.1
done
grep -q '^retry: ' sse.out || fail "the stream did not start: $(cat sse.err)"
cli install web2 --profile el9 >/dev/null || fail "install web2"
# What a real agent reports with its syncs (1.2 GiB of 20 GiB cached).
"${AGENT[@]}" watch --wait 20000 --cache-bytes 1288490189 --cache-limit 21474836480 \
    --base-url 'http://[2001:db8:a::fe]:8080' --dns 2001:db8::53 --search rack-a.example.net \
    >watch.out 2>&1 &
WATCH_PID=$!
ID=""
for _ in $(seq 100); do
    api "/api/hosts?state=dispatched" >/dev/null
    ID=$(js '",".join(h["install_id"] for h in d["hosts"] if h["host"] == "web2")')
    [ -n "$ID" ] && break
    sleep 0.1
done
[ -n "$ID" ] || fail "web2 never dispatched: $(cat api.json)"
api /api/racks >/dev/null
[ "$(js '[r["agent"] for r in d["racks"] if r["rack"] == "rack-a"][0]')" = rack-a ] ||
    fail "racks: $(cat api.json)"
[ "$(js '[(r["cache_bytes"], r["cache_limit_bytes"], r["answer_files"]) for r in d["racks"] if r["rack"] == "rack-a"][0]')" = "(1288490189, 21474836480, True)" ] ||
    fail "rack-a cache use: $(cat api.json)"
[ "$(js '[(r["cache_bytes"], r["answer_files"]) for r in d["racks"] if r["rack"] == "rack-b"][0]')" = "(None, False)" ] ||
    fail "rack-b without an agent: $(cat api.json)"
cli racks --json >racks.json || fail "racks --json"
grep -q '"cache_bytes": *1288490189' racks.json || fail "racks --json cache: $(cat racks.json)"
grep -q '"cache_limit_bytes": *21474836480' racks.json || fail "racks --json limit: $(cat racks.json)"
cli racks >racks.txt || fail "racks"
grep -q '^rack-a .* 1\.2G/20G ' racks.txt || fail "racks cache column: $(cat racks.txt)"
"${AGENT[@]}" events --from 1 "web2:$ID:dhcp_bound" "web2:$ID:kernel_fetched" \
    "web2:$ID:installed" >events.out 2>&1 || fail "agent events: $(cat events.out)"
for _ in $(seq 100); do
    grep -q '"phase":"installed"' sse.out && break
    sleep 0.1
done
grep -q '"phase":"installed"' sse.out || fail "the stream did not carry installed: $(cat sse.out)"
python3 - <<'EOF' || fail "stream: $(cat sse.out)"
import json
events = []
changes = 0
seq = None
kind = None
for line in open("sse.out"):
    line = line.rstrip("\n")
    if line.startswith("id: "):
        seq = int(line[4:])
    elif line.startswith("event: "):
        kind = line[7:]
    elif line.startswith("data: ") and kind == "change":
        changes += 1
    elif line.startswith("data: "):
        e = json.loads(line[6:])
        assert e["seq"] == seq, (e, seq)
        events.append(e)
    elif line == "":
        kind = None
# The install asked for, and its dispatch: states changed without events.
assert changes >= 2, changes
phases = [e["phase"] for e in events if e["host"] == "web2"]
assert phases == ["dhcp_bound", "kernel_fetched", "installed"], phases
seqs = [e["seq"] for e in events]
assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
EOF
api "/api/hosts?state=installed" >/dev/null
[ "$(js '",".join(h["host"] for h in d["hosts"])')" = web2 ] || fail "installed: $(cat api.json)"

step "resume after Last-Event-ID; the same rows by /api/events"
FIRST=$(sed -n 's/^id: //p' sse.out | head -n1)
kill "$SSE_PID" 2>/dev/null
"${CURL[@]}" --max-time 30 -N -H "Cookie: $SESSION" -H "Last-Event-ID: $FIRST" \
    "$BASE/api/events/stream" >resume.out 2>/dev/null &
SSE_PID=$!
for _ in $(seq 100); do
    grep -q '"phase":"installed"' resume.out && break
    sleep 0.1
done
[ "$(grep -c '^id: ' resume.out)" = 2 ] || fail "resumed stream: $(cat resume.out)"
api "/api/events?after=$FIRST&limit=1" >/dev/null
[ "$(js 'len(d["events"]), d["events"][0]["phase"]')" = "(1, 'kernel_fetched')" ] ||
    fail "/api/events: $(cat api.json)"
api "/api/events?tail=2" >/dev/null
[ "$(js '",".join(e["phase"] for e in d["events"])')" = kernel_fetched,installed ] ||
    fail "/api/events?tail=2: $(cat api.json)"

step "a stream without a seq starts at the events to come"
kill "$SSE_PID" 2>/dev/null
"${CURL[@]}" --max-time 30 -N -H "Cookie: $SESSION" "$BASE/api/events/stream" >now.out 2>/dev/null &
SSE_PID=$!
for _ in $(seq 100); do
    grep -q '^retry: ' now.out && break
    sleep 0.1
done
cli install web3 --profile el9 >/dev/null || fail "install web3"
ID3=""
for _ in $(seq 100); do
    api "/api/hosts?state=dispatched&prefix=web3" >/dev/null
    ID3=$(js '",".join(h["install_id"] for h in d["hosts"])')
    [ -n "$ID3" ] && break
    sleep 0.1
done
[ -n "$ID3" ] || fail "web3 never dispatched: $(cat api.json)"
"${AGENT[@]}" events --from 4 "web3:$ID3:dhcp_bound" >events3.out 2>&1 ||
    fail "agent events: $(cat events3.out)"
for _ in $(seq 100); do
    grep -q '"host":"web3"' now.out && break
    sleep 0.1
done
grep -q '"host":"web3"' now.out || fail "the new event did not come: $(cat now.out)"
if grep -q '"host":"web2"' now.out; then
    fail "a stream without a seq replayed old events: $(cat now.out)"
fi

step "install and cancel from the page: operators may, audited as (web); viewers may not"
viewer() {
    "$CLI_BIN" --controller "$OPS" --ca ca/ca.crt --server-name ctl.test \
        --cert ca/viewer/val.crt --key ca/viewer/val.key "$@"
}
VLOGIN=$(viewer web login 2>/dev/null) || fail "viewer web login"
"${CURL[@]}" -o /dev/null -D vlogin.h "$VLOGIN" || fail "curl viewer login"
VSESSION=$(tr -d '\r' <vlogin.h | sed -n 's/^set-cookie: \(rackboot_session=[0-9a-f]*\);.*/\1/Ip')
[ -n "$VSESSION" ] || fail "no viewer session"
post() { # post PATH JSON [CURL ARGS]: status printed, answer in api.json
    local path=$1 body=$2
    shift 2
    "${CURL[@]}" -o api.json -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data "$body" "$@" "$BASE$path" || fail "curl POST $path"
}
# What a browser says of a request from our own page.
SAME=(-H "Origin: $BASE" -H 'Sec-Fetch-Site: same-origin')
code=$(post /api/install '{"hosts":["web4"],"profile":"el9"}' -H "Cookie: $VSESSION" "${SAME[@]}")
[ "$code" = 403 ] || fail "viewer install from the page: $code $(cat api.json)"
grep -q 'permission denied: viewer may not install' api.json || fail "viewer: $(cat api.json)"
code=$(post /api/install '{"hosts":["web4"],"profile":"el9"}' -H "Cookie: $SESSION" \
    -H 'Sec-Fetch-Site: cross-site' -H 'Origin: https://evil.example')
[ "$code" = 403 ] || fail "cross-site install: $code"
code=$(post /api/install '{"hosts":["web4"],"profile":"el9","extra":1}' -H "Cookie: $SESSION" "${SAME[@]}")
[ "$code" = 400 ] || fail "bad body: $code"
code=$(post /api/install '{"hosts":["web4"],"profile":"el9"}' -H "Cookie: $SESSION" "${SAME[@]}")
[ "$code" = 200 ] || fail "operator install from the page: $code $(cat api.json)"
[ "$(js 'd["ok"]')" = True ] || fail "install: $(cat api.json)"
api "/api/hosts?prefix=web4" >/dev/null
case $(js 'd["hosts"][0]["state"]') in requested | dispatched) ;; *) fail "web4: $(cat api.json)" ;; esac
code=$(post /api/install '{"hosts":["web4"],"profile":"el9"}' -H "Cookie: $SESSION" "${SAME[@]}")
[ "$code" = 409 ] || fail "second install of web4: $code $(cat api.json)"
[ "$(js 'd["rows"][0]["skipped"]')" = active ] || fail "second install: $(cat api.json)"
code=$(post /api/cancel '{"hosts":["web4"]}' -H "Cookie: $SESSION" "${SAME[@]}")
[ "$code" = 200 ] || fail "cancel from the page: $code $(cat api.json)"
cli audit >audit.out || fail "audit"
grep -q "local:uid=$(id -u) (web).*install.*web4.*ok" audit.out || fail "no audited install: $(cat audit.out)"
grep -q "local:uid=$(id -u) (web).*cancel.*web4.*ok" audit.out || fail "no audited cancel: $(cat audit.out)"
grep -q "viewer:val (web).*install.*web4" audit.out || fail "no audited refusal: $(cat audit.out)"

step "the answer file as rendered, token redacted; viewers may read it"
"${AGENT[@]}" sync --held 0 --wait 0 >intents.out 2>&1 || fail "agent sync: $(cat intents.out)"
TOKEN3=$(sed -n "s/^intent host=web3 .* token=\([^ ]*\) .*/\1/p" intents.out)
[ -n "$TOKEN3" ] || fail "no token for web3: $(cat intents.out)"
code=$("${CURL[@]}" -o answer.txt -D answer.h -w '%{http_code}' -H "Cookie: $VSESSION" \
    "$BASE/api/answer?host=web3")
[ "$code" = 200 ] || fail "viewer /api/answer?host=web3: $code $(cat answer.txt)"
grep -qi '^content-type: text/plain' answer.h || fail "answer type: $(cat answer.h)"
grep -qi '^x-rackboot-answer-kind: kickstart' answer.h || fail "answer kind: $(cat answer.h)"
if grep -qF "$TOKEN3" answer.txt answer.h; then
    fail "the token is in the answer: $(cat answer.txt)"
fi
grep -qxF '# REDACTED' answer.txt || fail "{{token}} not redacted: $(cat answer.txt)"
grep -qF "url --url=http://[2001:db8:a::fe]:8080/images/el9/" answer.txt ||
    fail "not rendered with the agent's base URL: $(cat answer.txt)"
grep -qF "http://[2001:db8:a::fe]:8080/progress/$ID3?token=REDACTED" answer.txt ||
    fail "progress URL: $(cat answer.txt)"
code=$("${CURL[@]}" -o answer.txt -w '%{http_code}' -H "Cookie: $SESSION" "$BASE/api/answer?host=web2")
[ "$code" = 404 ] || fail "web2, installed: $code $(cat answer.txt)"
grep -q "no active install" answer.txt || fail "web2: $(cat answer.txt)"
code=$("${CURL[@]}" -o answer.txt -w '%{http_code}' -H "Cookie: $SESSION" "$BASE/api/answer?host=nope")
[ "$code" = 404 ] || fail "unknown host: $code $(cat answer.txt)"
code=$("${CURL[@]}" -o answer.txt -w '%{http_code}' -H "Cookie: $SESSION" "$BASE/api/answer?host=a/b")
[ "$code" = 400 ] || fail "bad host name: $code $(cat answer.txt)"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$BASE/api/answer?host=web3")
[ "$code" = 401 ] || fail "/api/answer without a session: $code"
cli install db1 --profile el9 >/dev/null || fail "install db1"
code=$("${CURL[@]}" -o answer.txt -w '%{http_code}' -H "Cookie: $SESSION" "$BASE/api/answer?host=db1")
[ "$code" = 409 ] || fail "rack-b never reported: $code $(cat answer.txt)"
grep -q "rack rack-b: its agent has not reported" answer.txt || fail "db1: $(cat answer.txt)"

echo "PASS: $TEST_NAME"

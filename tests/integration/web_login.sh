#!/bin/bash
# The web view's sign-in ([web] listen, controller/web/server.h) against a
# real controller over HTTPS on IPv6 loopback, with curl:
#
#   - `rackboot web login` prints a one-time https:// URL, for an operator on
#     the local socket and for a viewer over mutual TLS;
#   - opening it sets the session cookie (HttpOnly, Secure, SameSite=Strict,
#     Path=/, Max-Age 12 h) and redirects to /hosts, which then serves the
#     page, and /api/me says who is signed in and in which role;
#   - the same URL again, a wrong token and a malformed one get 403 and a
#     page saying the link is not valid; no cookie gets 401;
#   - the token never reaches the access log;
#   - a cross-site POST is refused; signing out ends the session;
#   - with [web] off, `web login` says so (exit 1);
#   - a rackboot-pki certificate as [web] cert is refused at start with a
#     message that says why (GnuTLS cannot parse its identity extension).
#
# usage: web_login.sh CONTROLLER PKI CLI
set -u
CONTROLLER=${1:?usage: $0 CONTROLLER PKI CLI}
PKI=${2:?}
CLI_BIN=${3:?}
TEST_NAME=web_login
# shellcheck source=tests/integration/web_lib.sh
. "$(dirname "$0")/web_lib.sh"
T=$(mktemp -d /tmp/rackboot-web-login.XXXXXX)
CTL_PID=""

cleanup() {
    [ -n "$CTL_PID" ] && kill "$CTL_PID" 2>/dev/null
    wait 2>/dev/null
    [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT

web_require_ipv6
command -v curl >/dev/null || { echo "SKIP: no curl"; exit 77; }

cd "$T" || exit 1

"$PKI" --dir ca init >/dev/null || fail "pki init"
"$PKI" --dir ca issue controller ctl.test >/dev/null || fail "issue controller"
"$PKI" --dir ca issue viewer val >/dev/null || fail "issue viewer"
# The web view's own certificate ([web] cert): GnuTLS cannot read
# rackboot-pki's. A test CA of its own, as an operator's would be.
command -v openssl >/dev/null || { echo "SKIP: no openssl"; exit 77; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=web-test-ca -keyout webca.key -out webca.crt 2>/dev/null || fail "web CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=ctl.test \
    -keyout web.key -out web.csr 2>/dev/null || fail "web CSR"
printf 'subjectAltName=DNS:ctl.test\nextendedKeyUsage=serverAuth\n' >web.ext
openssl x509 -req -in web.csr -CA webca.crt -CAkey webca.key -CAcreateserial -days 1 \
    -extfile web.ext -out web.crt 2>/dev/null || fail "web certificate"

OPS="tls+tcp://127.0.0.1:$(free_port AF_INET 127.0.0.1)"
web_config "operators_listen = $OPS"
"$CONTROLLER" --config controller.conf --check-config >/dev/null || fail "--check-config"
web_start

cli() { "$CLI_BIN" --controller "$API" "$@"; }
viewer() {
    "$CLI_BIN" --controller "$OPS" --ca ca/ca.crt --server-name ctl.test \
        --cert ca/viewer/val.crt --key ca/viewer/val.key "$@"
}
# Headers to NAME.h, body to NAME.b; prints the status.
get() {
    local name=$1 url=$2
    shift 2
    curl -sS --max-time 10 --cacert webca.crt --resolve "ctl.test:$WP:::1" \
        -D "$name.h" -o "$name.b" -w '%{http_code}' "$@" "$url" || fail "curl $url"
}
header() { tr -d '\r' <"$1.h" | sed -n "s/^$2: //Ip"; }

step "web login as the local operator"
URL=$(cli web login 2>login.err) || fail "web login: $(cat login.err)"
case $URL in
https://ctl.test:"$WP"/login/*) ;;
*) fail "web login printed '$URL'" ;;
esac
TOKEN=${URL##*/}
[[ $TOKEN =~ ^[0-9a-f]{64}$ ]] || fail "token '$TOKEN'"
grep -q "open it once, before" login.err || fail "no expiry note: $(cat login.err)"
cli -o json web login >login.json || fail "web login -o json"
python3 -c 'import json; d=json.load(open("login.json")); assert d["url"].startswith("https://ctl.test:"), d; assert d["expires"].endswith("Z"), d' ||
    fail "web login -o json: $(cat login.json)"

step "the URL signs in once"
code=$(get first "$URL")
[ "$code" = 303 ] || fail "login: status $code"
[ "$(header first location)" = /hosts ] || fail "login: Location $(header first location)"
COOKIE=$(header first set-cookie)
case $COOKIE in
"rackboot_session="*"; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Strict") ;;
*) fail "login: Set-Cookie '$COOKIE'" ;;
esac
[ "$(header first referrer-policy)" = no-referrer ] || fail "no Referrer-Policy"
SESSION=${COOKIE%%;*}
code=$(get hosts "https://ctl.test:$WP/hosts" -H "Cookie: a=1; $SESSION")
[ "$code" = 200 ] || fail "/hosts with the cookie: status $code"
grep -q '<script src="/static/app.js"' hosts.b || fail "/hosts: $(cat hosts.b)"
code=$(get me "https://ctl.test:$WP/api/me" -H "Cookie: $SESSION")
grep -q "{\"who\":\"local:uid=$(id -u)\",\"role\":\"operator\"}" me.b || fail "/api/me: $code $(cat me.b)"
code=$(get root "https://ctl.test:$WP/" -H "Cookie: $SESSION")
[ "$code" = 303 ] || fail "/ with the cookie: status $code"

step "reused, wrong and malformed login URLs get 403"
code=$(get again "$URL")
[ "$code" = 403 ] || fail "reused login URL: status $code"
grep -q "This login link is not valid" again.b || fail "reused: $(cat again.b)"
[ -z "$(header again set-cookie)" ] || fail "reused login URL set a cookie"
code=$(get wrong "https://ctl.test:$WP/login/$(printf '%064d' 0)")
[ "$code" = 403 ] || fail "wrong token: status $code"
code=$(get short "https://ctl.test:$WP/login/abc")
[ "$code" = 403 ] || fail "malformed token: status $code"
if grep -q "$TOKEN" controller.log; then
    fail "the login token is in the controller's log"
fi

step "no cookie, or a made-up one: 401"
code=$(get none "https://ctl.test:$WP/hosts")
[ "$code" = 401 ] || fail "/hosts without a cookie: status $code"
code=$(get forged "https://ctl.test:$WP/hosts" -H "Cookie: rackboot_session=$TOKEN")
[ "$code" = 401 ] || fail "/hosts with the login token as session: status $code"

step "a viewer over mutual TLS signs in as a viewer"
VURL=$(viewer web login 2>/dev/null) || fail "viewer web login"
code=$(get vlogin "$VURL")
[ "$code" = 303 ] || fail "viewer login: status $code"
VSESSION=$(header vlogin set-cookie)
VSESSION=${VSESSION%%;*}
get vme "https://ctl.test:$WP/api/me" -H "Cookie: $VSESSION" >/dev/null
grep -q '{"who":"viewer:val","role":"viewer"}' vme.b || fail "viewer /api/me: $(cat vme.b)"

step "a cross-site POST is refused; signing out ends the session"
code=$(get xsite "https://ctl.test:$WP/logout" -X POST -H "Cookie: $SESSION" \
    -H "Origin: https://evil.example" -H "Sec-Fetch-Site: cross-site")
[ "$code" = 403 ] || fail "cross-site logout: status $code"
code=$(get hosts2 "https://ctl.test:$WP/hosts" -H "Cookie: $SESSION")
[ "$code" = 200 ] || fail "session gone after a refused cross-site POST: $code"
code=$(get logout "https://ctl.test:$WP/logout" -X POST -H "Cookie: $SESSION" \
    -H "Origin: https://ctl.test:$WP" -H "Sec-Fetch-Site: same-origin")
[ "$code" = 200 ] || fail "logout: status $code"
code=$(get hosts3 "https://ctl.test:$WP/hosts" -H "Cookie: $SESSION")
[ "$code" = 401 ] || fail "/hosts after logout: status $code"

step "plain HTTP gets no page"
if curl -sS --max-time 5 -g -o /dev/null "http://[::1]:$WP/hosts" 2>/dev/null; then
    fail "plain HTTP answered"
fi

step "a rackboot-pki certificate as [web] cert is refused, saying why"
kill "$CTL_PID"
wait "$CTL_PID" 2>/dev/null
CTL_PID=""
sed 's|^cert = web.crt|cert = ca/controller/ctl.test.crt|; s|^key = web.key|key = ca/controller/ctl.test.key|' \
    controller.conf >pkicert.conf
if "$CONTROLLER" --config pkicert.conf >pkicert.log 2>&1; then
    fail "the controller started with a certificate GnuTLS cannot read"
fi
grep -q "GnuTLS cannot use them" pkicert.log || fail "no reason: $(cat pkicert.log)"

step "with [web] off, web login says so"
sed -i '/^\[web\]/,$d' controller.conf
"$CONTROLLER" --config controller.conf >>controller.log 2>&1 &
CTL_PID=$!
for _ in $(seq 100); do
    [ "$(grep -c ' started ' controller.log)" -ge 2 ] && [ -S "$T/api.sock" ] && break
    kill -0 "$CTL_PID" 2>/dev/null || fail "the controller exited"
    sleep 0.1
done
if cli web login >off.out 2>off.err; then
    fail "web login with the web view off succeeded"
fi
grep -q "the web view is off" off.err || fail "web view off: $(cat off.err)"

echo "PASS: $TEST_NAME"

#!/bin/sh
# rackboot-pki end to end, judged by the openssl command line tool rather than
# by our own library: init, issue every role, verify the chain, revoke, verify
# with the CRL, file modes, no overwrite, --help everywhere, usage exit codes.
#
# Usage: pki_cli.sh /path/to/rackboot-pki
set -eu

tool=${1:?usage: pki_cli.sh /path/to/rackboot-pki}
work=$(mktemp -d /tmp/rb-pki-cli-XXXXXX)
trap 'rm -rf "$work"' EXIT
dir=$work/ca
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect STATUS CMD...: runs CMD, which must exit with STATUS.
expect() {
    want=$1
    shift
    set +e
    "$@" >"$work/out" 2>"$work/err"
    got=$?
    set -e
    if [ "$got" != "$want" ]; then
        fail "exit $got, wanted $want: $*"
        sed 's/^/  stdout: /' "$work/out" >&2
        sed 's/^/  stderr: /' "$work/err" >&2
    fi
}

mode_of() {
    stat -c %a "$1"
}

pki() {
    "$tool" --dir "$dir" "$@"
}

# --- help and usage ---------------------------------------------------------
expect 0 "$tool" --help
grep -q '^Usage: rackboot-pki' "$work/out" || fail "--help prints no usage"
expect 0 "$tool" --version
grep -q '^rackboot-pki [0-9]' "$work/out" || fail "--version prints no version"
for cmd in init issue revoke crl list; do
    expect 0 "$tool" "$cmd" --help
    grep -q "^Usage: rackboot-pki .*$cmd" "$work/out" || fail "$cmd --help prints no usage"
done
expect 2 "$tool"
expect 2 "$tool" frobnicate
expect 2 "$tool" --bogus
expect 2 pki issue
expect 2 pki issue wizard merlin
expect 2 pki issue agent
expect 2 pki issue agent rack-a1 --days zero
expect 2 pki issue agent rack-a1 --days 0
expect 2 pki issue agent rack-a1 --san 192.0.2.1
expect 2 pki issue agent rack-a1 --instance 0
expect 2 pki issue agent rack-a1 --instance 10
expect 2 pki issue agent rack-a1 --instance two
expect 2 pki issue operator alice --instance 2
expect 2 pki init --crl-days 3
expect 2 pki revoke agent
expect 2 pki list extra
grep -q '^rackboot-pki: ' "$work/err" || fail "usage error is not one 'rackboot-pki: ' line"
expect 2 env -u RACKBOOT_PKI_DIR "$tool" list
# Usage errors come before any file is touched.
[ ! -e "$dir" ] || fail "a usage error created $dir"

# --- failures before init exit 1 -------------------------------------------
expect 1 pki list
expect 1 pki issue agent rack-a1

# --- init -------------------------------------------------------------------
expect 0 pki init --name test-ca
for f in ca.crt ca.key crl.pem index.txt; do
    [ -f "$dir/$f" ] || fail "init did not write $f"
done
[ "$(mode_of "$dir/ca.key")" = 600 ] || fail "ca.key is $(mode_of "$dir/ca.key"), not 600"
[ "$(mode_of "$dir")" = 700 ] || fail "CA dir is $(mode_of "$dir"), not 700"
openssl x509 -in "$dir/ca.crt" -noout -text >"$work/ca.txt"
grep -q 'CA:TRUE' "$work/ca.txt" || fail "CA lacks CA:TRUE"
grep -q 'Certificate Sign, CRL Sign' "$work/ca.txt" || fail "CA lacks keyCertSign, cRLSign"
grep -q 'NIST CURVE: P-256' "$work/ca.txt" || fail "CA key is not P-256"
cp "$dir/ca.key" "$work/ca.key.before"
expect 1 pki init
grep -q 'already there' "$work/err" || fail "second init does not say why"
cmp -s "$dir/ca.key" "$work/ca.key.before" || fail "second init changed ca.key"

# --- issue ------------------------------------------------------------------
expect 0 pki issue controller ctl.example.test --san 2001:db8::10 --san ctl-alt.example.test
expect 0 pki issue agent rack-a1
expect 0 pki issue agent rack-b2 --days 30
# a rack's second agent: its own certificate, named rack-a1/2
expect 0 pki issue agent rack-a1 --instance 2
grep -q "issued agent rack-a1/2: .*/agent/rack-a1@2.crt and .key" "$work/out" ||
    fail "issue --instance 2 does not say what it wrote: $(cat "$work/out")"
openssl x509 -in "$dir/agent/rack-a1@2.crt" -noout -subject >"$work/a2.txt"
grep -q 'CN = rack-a1/2' "$work/a2.txt" || fail "agent 2's subject: $(cat "$work/a2.txt")"
expect 1 pki issue agent rack-a1/2
grep -q 'already has a certificate' "$work/err" || fail "issuing rack-a1/2 twice: $(cat "$work/err")"
expect 1 pki issue agent rack-a1/1
expect 0 pki issue operator alice
expect 1 pki issue agent ../evil
expect 1 pki issue controller not_a_host
expect 1 pki issue controller ctl2.example.test --san 'bad name'
expect 1 pki issue agent rack-long --days 36000
[ ! -e "$dir/agent/rack-long.key" ] || fail "refused issue left a key behind"

for c in controller/ctl.example.test agent/rack-a1 agent/rack-b2 operator/alice; do
    [ "$(mode_of "$dir/$c.key")" = 600 ] || fail "$c.key is $(mode_of "$dir/$c.key"), not 600"
    expect 0 openssl verify -CAfile "$dir/ca.crt" "$dir/$c.crt"
done
for d in controller agent operator; do
    [ "$(mode_of "$dir/$d")" = 700 ] || fail "$d/ is $(mode_of "$dir/$d"), not 700"
done

openssl x509 -in "$dir/controller/ctl.example.test.crt" -noout -text >"$work/ctl.txt"
grep -q 'Subject: O = rackboot, OU = controller, CN = ctl.example.test' "$work/ctl.txt" ||
    fail "controller subject"
grep -q 'DNS:ctl.example.test, IP Address:2001:DB8:0:0:0:0:0:10, DNS:ctl-alt.example.test' \
    "$work/ctl.txt" || fail "controller SANs"
grep -q 'TLS Web Server Authentication' "$work/ctl.txt" || fail "controller lacks serverAuth"
grep -A1 '^ *2.25.181228956918068676436591433539808711602:' "$work/ctl.txt" |
    grep -q 'controller:ctl.example.test' || fail "controller identity extension"
# Non-critical, or mbedTLS (nng) refuses the certificate.
grep -q '2.25.181228956918068676436591433539808711602: critical' "$work/ctl.txt" &&
    fail "identity extension is critical"
openssl x509 -in "$dir/agent/rack-a1.crt" -noout -text >"$work/agent.txt"
grep -q 'Subject: O = rackboot, OU = agent, CN = rack-a1' "$work/agent.txt" || fail "agent subject"
grep -q 'TLS Web Client Authentication' "$work/agent.txt" || fail "agent lacks clientAuth"
grep -q 'agent:rack-a1' "$work/agent.txt" || fail "agent identity extension"
expect 0 openssl verify -purpose sslserver -CAfile "$dir/ca.crt" \
    "$dir/controller/ctl.example.test.crt"
expect 2 openssl verify -purpose sslserver -CAfile "$dir/ca.crt" "$dir/agent/rack-a1.crt"
expect 0 openssl verify -purpose sslclient -CAfile "$dir/ca.crt" "$dir/operator/alice.crt"

# Re-issuing an existing name fails without touching its files.
cp "$dir/agent/rack-a1.crt" "$work/a1.crt.before"
cp "$dir/agent/rack-a1.key" "$work/a1.key.before"
expect 1 pki issue agent rack-a1
grep -q '^rackboot-pki: issue: .*already has a certificate' "$work/err" ||
    fail "re-issue does not say why"
cmp -s "$dir/agent/rack-a1.crt" "$work/a1.crt.before" || fail "re-issue changed rack-a1.crt"
cmp -s "$dir/agent/rack-a1.key" "$work/a1.key.before" || fail "re-issue changed rack-a1.key"

# --- revoke and CRL ------------------------------------------------------------
crl_check() {
    openssl verify -crl_check -CAfile "$dir/ca.crt" -CRLfile "$dir/crl.pem" "$@"
}
expect 0 crl_check "$dir/agent/rack-b2.crt"
expect 0 pki revoke agent rack-b2
expect 1 pki revoke agent rack-b2
expect 1 pki revoke operator nobody
# rack-a1's agent 2 alone: agent 1 stays valid
expect 0 pki revoke agent rack-a1 --instance 2
grep -q '^revoked agent rack-a1/2 (1 certificate)' "$work/out" || fail "revoke --instance 2: $(cat "$work/out")"
expect 2 crl_check "$dir/agent/rack-a1@2.crt"
expect 2 crl_check "$dir/agent/rack-b2.crt"
grep -q 'certificate revoked' "$work/out" "$work/err" || fail "openssl does not say revoked"
for c in controller/ctl.example.test agent/rack-a1 operator/alice; do
    expect 0 crl_check "$dir/$c.crt"
done
openssl crl -in "$dir/crl.pem" -noout -text >"$work/crl.txt"
grep -q 'X509v3 CRL Number' "$work/crl.txt" || fail "CRL has no number"
grep -q 'Version 2' "$work/crl.txt" || fail "CRL is not v2"

expect 0 pki list
grep -Eq '^agent +rack-b2 +[0-9A-F]+ +[0-9T:-]+Z +revoked$' "$work/out" || fail "list: rack-b2"
grep -Eq '^agent +rack-a1 +[0-9A-F]+ +[0-9T:-]+Z +valid$' "$work/out" || fail "list: rack-a1"
grep -Eq '^agent +rack-a1/2 +[0-9A-F]+ +[0-9T:-]+Z +revoked$' "$work/out" || fail "list: rack-a1/2"
grep -q 'CRL next update: .* (29 days)\|CRL next update: .* (30 days)' "$work/out" ||
    fail "list: CRL next update"
[ ! -s "$work/err" ] || fail "list warns about a fresh CRL"

# A short CRL draws the warning; a refreshed one is still good for openssl.
expect 0 pki crl --days 3
expect 0 pki list
grep -q 'warning: the CRL expires in under 7 days' "$work/err" || fail "list: no CRL warning"
expect 2 crl_check "$dir/agent/rack-b2.crt"
expect 0 crl_check "$dir/agent/rack-a1.crt"
expect 0 pki crl
expect 0 pki list
[ ! -s "$work/err" ] || fail "list warns after crl"

# Another run holding the directory makes us wait for no one.
if command -v flock >/dev/null; then
    expect 1 flock "$dir" "$tool" --dir "$dir" list
    grep -q 'locked by another' "$work/err" || fail "lock conflict not explained"
fi

# --- CA names are common names: spaces and printable characters (issue #10)
named=$work/named
expect 0 "$tool" --dir "$named" init --name "ACME Fleet CA"
openssl x509 -in "$named/ca.crt" -noout -subject -nameopt RFC2253 >"$work/subject" 2>&1 || true
grep -qx 'subject=CN=ACME Fleet CA,OU=ca,O=rackboot' "$work/subject" ||
    fail "CA subject with spaces: $(cat "$work/subject")"
expect 0 "$tool" --dir "$named" issue agent rack-n1
expect 0 openssl verify -CAfile "$named/ca.crt" "$named/agent/rack-n1.crt"
expect 0 "$tool" --dir "$work/named2" init --name "Société Générale (lab) #2"
# Refused: control characters, '/', characters that need escaping in a
# subject string, leading or trailing blanks, empty, longer than 64.
tab=$(printf 'a\tb')
for bad in "a/b" "$tab" " lead" "trail " "" "a,b" "a+b" "a=b" 'a"b' "a\\b" "a<b" "a;b" \
    "$(printf 'x%.0s' $(seq 1 65))"; do
    expect 1 "$tool" --dir "$work/bad" init --name "$bad"
    grep -q 'invalid CA name' "$work/err" || fail "init --name '$bad': no reason"
    [ ! -e "$work/bad/ca.key" ] || fail "init --name '$bad' wrote a key"
done

# --- private keys readable by group or others are refused (issue #10) --------
chmod 0644 "$dir/ca.key"
expect 1 pki issue agent rack-k1
grep -q 'ca.key.*0644' "$work/err" || fail "loose ca.key not refused with its name and mode"
[ ! -e "$dir/agent/rack-k1.crt" ] || fail "issued with a loose ca.key"
chmod 0640 "$dir/ca.key"
expect 1 pki issue agent rack-k1
chmod 0600 "$dir/ca.key"
expect 0 pki issue agent rack-k1

# --- the viewer role (issue #10): clientAuth, like an operator ----------------
expect 0 pki issue viewer val
[ "$(mode_of "$dir/viewer/val.key")" = 600 ] || fail "viewer key mode"
openssl x509 -in "$dir/viewer/val.crt" -noout -text >"$work/viewer.txt" 2>&1 || true
grep -q 'Subject: O = rackboot, OU = viewer, CN = val' "$work/viewer.txt" || fail "viewer subject"
grep -q 'viewer:val' "$work/viewer.txt" || fail "viewer identity extension"
grep -q 'TLS Web Client Authentication' "$work/viewer.txt" || fail "viewer lacks clientAuth"
expect 0 openssl verify -purpose sslclient -CAfile "$dir/ca.crt" "$dir/viewer/val.crt"
expect 0 pki list
grep -Eq '^viewer +val +[0-9A-F]+ ' "$work/out" || fail "list: viewer val"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)" >&2
    exit 1
fi
echo "pki_cli: all good"

#!/bin/bash
# The web view in a real browser: Debian's headless Chromium driven by
# chromium-driver (Selenium), against a real controller over HTTPS on IPv6
# loopback and a scripted agent (rb-fake-agent) reporting an install. What
# the browser does and checks is tests/integration/web_browser.py; this
# script builds the fleet around it (CA, the web view's certificate, the
# controller, hosts and a profile).
#
# Screenshots of each page are left in $RACKBOOT_WEB_SCREENSHOTS if set
# (docs/hosts.png is one of them), else in the test's directory, kept with
# KEEP_TMP=1.
#
# usage: web_browser.sh CONTROLLER PKI FAKE_AGENT CLI
set -u
CONTROLLER=${1:?usage: $0 CONTROLLER PKI FAKE_AGENT CLI}
PKI=${2:?}
FAKE=${3:?}
CLI_BIN=${4:?}
TEST_NAME=web_browser
# shellcheck source=tests/integration/web_lib.sh
. "$(dirname "$0")/web_lib.sh"
T=$(mktemp -d /tmp/rackboot-web-browser.XXXXXX)
CTL_PID=""

cleanup() {
    [ -n "$CTL_PID" ] && kill "$CTL_PID" 2>/dev/null
    wait 2>/dev/null
    [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT

web_require_ipv6
# tests/run.sh installs these (install-deps.sh); a developer's machine may not.
for tool in chromium chromedriver openssl; do
    command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done
# Debian's python3, where python3-selenium is (not another python3 on PATH).
PY=/usr/bin/python3
"$PY" -c 'import selenium' 2>/dev/null || { echo "SKIP: no python3-selenium"; exit 77; }

# Live means pushed: the page script never polls.
if grep -n 'setInterval' "$(dirname "$0")/../../controller/web/assets/app.js"; then
    fail "app.js polls (setInterval)"
fi

cd "$T" || exit 1
web_fleet_pki
URL="tls+tcp://127.0.0.1:$(free_port AF_INET 127.0.0.1)"
OPS="tls+tcp://127.0.0.1:$(free_port AF_INET 127.0.0.1)"
web_config "agents_listen = $URL" "operators_listen = $OPS"
web_start

cli() { "$CLI_BIN" --controller "$API" "$@"; }
web_import_fleet $'text\n' <<EOF
web1,52:54:00:00:0a:01,rack-a,2001:db8:a::1
web2,52:54:00:00:0a:02,rack-a,2001:db8:a::2
web3,52:54:00:00:0a:03,rack-a,2001:db8:a::3
EOF
# web3 waits for the agent when the browser first looks.
cli install web3 --profile el9 >/dev/null || fail "install web3"

# Chromium trusts the web view's key and nothing else it would not anyway.
SPKI=$(openssl x509 -in web.crt -noout -pubkey | openssl pkey -pubin -outform der |
    openssl dgst -sha256 -binary | base64)

export WEB_BASE="https://ctl.test:$WP" WEB_PORT="$WP" WEB_SPKI="$SPKI" WEB_DIR="$T"
export WEB_SHOTS="${RACKBOOT_WEB_SCREENSHOTS:-$T}"
export CLI_BIN API OPS
export AGENT_CMD="$FAKE --url $URL --ca ca/ca.crt --server-name ctl.test"
AGENT_CMD+=" --cert ca/agent/rack-a.crt --key ca/agent/rack-a.key"
mkdir -p "$WEB_SHOTS"
"$PY" "$(dirname "$0")/web_browser.py" || fail "the browser's checks (above)"
echo "screenshots: $WEB_SHOTS"
echo "PASS: $TEST_NAME"

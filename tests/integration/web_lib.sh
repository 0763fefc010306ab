# shellcheck shell=bash
# What the web view's tests share (web_login.sh, web_data.sh,
# web_browser.sh): a controller with [web] on IPv6 loopback, named ctl.test
# in login URLs (curl takes ctl.test to [::1]), the fleet CA in ca/ and the
# web view's certificate in web.crt / web.key. The caller sets TEST_NAME
# and T (its own directory, where it runs).

# fail MESSAGE: the test failed; the controller's last log lines say why.
fail() {
    echo "FAIL: $TEST_NAME: $*"
    if [ -s "$T/controller.log" ]; then
        echo "---- controller.log (last 30 lines)"
        tail -n 30 "$T/controller.log"
    fi
    exit 1
}

step() { echo "== $*"; }

# web_require_ipv6: skips the test (77) on a machine without IPv6 loopback.
web_require_ipv6() {
    if ! python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
        echo "SKIP: no IPv6 loopback"
        exit 77
    fi
}

# free_port FAMILY ADDR: a port the kernel just had free there.
free_port() {
    python3 -c "import socket; s=socket.socket(socket.$1); s.bind(('$2', 0)); print(s.getsockname()[1])"
}

# web_config [CONTROLLER LINES...]: controller.conf with the API socket
# ($API), the lines given for [controller], [pki] from ca/ and [web] on
# [::1]:$WP. Sets API and WP.
web_config() {
    API="ipc://$T/api.sock"
    WP=$(free_port AF_INET6 ::1)
    {
        printf '[controller]\nstate_dir = state\napi_listen = %s\n' "$API"
        printf '%s\n' "$@"
        printf '[pki]\nca = ca/ca.crt\ncert = ca/controller/ctl.test.crt\n'
        printf 'key = ca/controller/ctl.test.key\n'
        printf '[web]\nlisten = [::1]:%s\nurl = https://ctl.test:%s\n' "$WP" "$WP"
        printf 'cert = web.crt\nkey = web.key\n'
    } >controller.conf
}

# web_start: the controller on controller.conf, once it serves the web view
# and the API. Sets CTL_PID.
web_start() {
    "$CONTROLLER" --config controller.conf >>controller.log 2>&1 &
    CTL_PID=$!
    for _ in $(seq 100); do
        grep -q " started .* web=\[::1\]:$WP" controller.log && [ -S "$T/api.sock" ] && return 0
        kill -0 "$CTL_PID" 2>/dev/null || fail "the controller exited"
        sleep 0.1
    done
    fail "the controller did not say where the web view is"
}

# web_fleet_pki: in the current directory, the fleet CA (ca/) with the
# controller ctl.test, the agent of rack-a and the viewer val; and the web
# view's own certificate ([web] cert: GnuTLS cannot read rackboot-pki's),
# self-signed for ctl.test, in web.crt / web.key.
web_fleet_pki() {
    "$PKI" --dir ca init >/dev/null || fail "pki init"
    "$PKI" --dir ca issue controller ctl.test >/dev/null || fail "issue controller"
    "$PKI" --dir ca issue agent rack-a >/dev/null || fail "issue agent"
    "$PKI" --dir ca issue viewer val >/dev/null || fail "issue viewer"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj /CN=ctl.test -addext subjectAltName=DNS:ctl.test \
        -keyout web.key -out web.crt 2>/dev/null || fail "web certificate"
}

# web_import_fleet KICKSTART_TEXT: imports the hosts CSV rows read from
# stdin (name,mac,rack,address) and the profile el9, whose kickstart is
# KICKSTART_TEXT; through the controller's local socket ($API).
web_import_fleet() {
    { echo "name,mac,rack,address"; cat; } >hosts.csv
    printf '%s' "$1" >el9.ks
    cat >profiles.conf <<EOF
[profile el9]
kernel = http://mirror.invalid/el9/vmlinuz sha256=$(printf '%064d' 1)
initrd = http://mirror.invalid/el9/initrd.img sha256=$(printf '%064d' 2)
kickstart = el9.ks
EOF
    "$CLI_BIN" --controller "$API" hosts import hosts.csv >/dev/null || fail "hosts import"
    "$CLI_BIN" --controller "$API" profiles import profiles.conf >/dev/null ||
        fail "profiles import"
}

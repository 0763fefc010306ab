# shellcheck shell=bash
# What the controller's integration tests share (controller_failover.sh,
# controllers_shared.sh, controller_pg_restart.sh, store_import.sh): the
# test's verdicts and waits, loopback ports, the fleet's PKI and real
# controllers started on generated configurations. Sourced, not run.
#
# The caller sets, before it calls any of these:
#   TEST_NAME   the test's name, in FAIL lines
#   T           its own directory, where it runs (cd "$T"): ca/, the
#               configurations and the logs are made there
#   FAIL_LOGS   the files under $T whose last 30 lines a failure shows
#               (blank-separated; empty ones are left out). A test with
#               more to show defines fail_more, which fail then calls.
#   CONTROLLER  rackboot-controller (ctl_start)
#   PKI         rackboot-pki (ctl_pki, ctl_pki_operator)
#   CLI_BIN     the rackboot CLI (ctl_cli, ctl_answers)
#
# A controller NAME has its configuration in NAME.conf, its state in
# $T/NAME-state and its API on the socket ipc://$T/SOCK.sock (ctl_conf); by
# default it logs to NAME.log (ctl_start).

# fail MESSAGE: the test failed; the logs in FAIL_LOGS say why.
fail() {
    echo "FAIL: $TEST_NAME: $*"
    local f
    for f in ${FAIL_LOGS:-}; do
        show_tail "$T/$f" 30 "$f"
    done
    if declare -F fail_more >/dev/null; then
        fail_more
    fi
    exit 1
}

# show_tail FILE LINES [NAME]: FILE's last LINES lines under a header naming
# it NAME (default: its base name); nothing when FILE is empty or missing.
show_tail() {
    if [ -s "$1" ]; then
        echo "---- ${3:-${1##*/}} (last $2 lines)"
        tail -n "$2" "$1"
    fi
}

step() { echo "== $*"; }

# wait_for SECONDS COMMAND...: polls every 0.2 s until COMMAND succeeds;
# after SECONDS, COMMAND's last try is the answer.
wait_for() {
    local limit=$(($1 * 5))
    shift
    for _ in $(seq "$limit"); do
        "$@" && return 0
        sleep 0.2
    done
    "$@"
}

# wait_alive PID SECONDS COMMAND...: polls every 0.2 s, for SECONDS at
# most, until COMMAND succeeds; gives up (returns 1) as soon as PID has
# exited.
wait_alive() {
    local pid=$1 limit=$(($2 * 5))
    shift 2
    for _ in $(seq "$limit"); do
        "$@" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

# count PATTERN FILE: how many lines of FILE match PATTERN (0 when none or
# no FILE).
count() { grep -c -- "$1" "$2" 2>/dev/null || true; }
# at_least N PATTERN FILE: at least N lines of FILE match PATTERN.
at_least() { [ "$(count "$2" "$3")" -ge "$1" ]; }

# free_port: a TCP port the kernel just had free on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ctl_pki [RACK...]: in the current directory, the fleet CA (ca/) with the
# controller's certificate for ctl.test (the name every client checks) and
# an agent certificate for each RACK (ca/agent/RACK.crt, .key). A failure
# to issue one says "issue agent RACK" when there are several, "issue
# agent" when there is one.
ctl_pki() {
    "$PKI" --dir ca init >/dev/null || fail "pki init"
    "$PKI" --dir ca issue controller ctl.test >/dev/null || fail "issue controller"
    local r what="issue agent"
    for r in "$@"; do
        [ $# = 1 ] || what="issue agent $r"
        "$PKI" --dir ca issue agent "$r" >/dev/null || fail "$what"
    done
}

# ctl_pki_operator NAME: an operator certificate (ca/operator/NAME.crt, .key).
ctl_pki_operator() {
    "$PKI" --dir ca issue operator "$1" >/dev/null || fail "issue operator"
}

# ctl_pki_conf: the [pki] section of a controller of ctl_pki's fleet, for
# ctl_conf's LINEs (a CRL is one more line: "crl = $T/ca/crl.pem").
ctl_pki_conf() {
    printf '[pki]\nca = %s\ncert = %s\nkey = %s' "$T/ca/ca.crt" \
        "$T/ca/controller/ctl.test.crt" "$T/ca/controller/ctl.test.key"
}

# ctl_conf NAME SOCK [LINE...]: NAME.conf, [controller] with state_dir
# $T/NAME-state, api_listen ipc://$T/SOCK.sock and log_level = debug, then
# the LINEs as given: the section's other keys first (listeners), then any
# further sections ("[store]", "$(ctl_pki_conf)", "[installs]"...).
ctl_conf() {
    local name=$1 sock=$2
    shift 2
    {
        printf '[controller]\nstate_dir = %s\napi_listen = ipc://%s\nlog_level = debug\n' \
            "$T/$name-state" "$T/$sock.sock"
        if [ $# -gt 0 ]; then
            printf '%s\n' "$@"
        fi
    } >"$name.conf"
}

# ctl_start VAR NAME [LOG]: starts the controller on NAME.conf, its output
# appended to LOG (default NAME.log), in the background; its pid in the
# variable VAR (for the caller's cleanup, at once). The caller then waits
# for it to come up its own way: wait_for SECONDS ctl_started LOG, or
# ctl_answers SOCK.
ctl_start() {
    "$CONTROLLER" --config "$2.conf" >>"${3:-$2.log}" 2>&1 &
    printf -v "$1" %s "$!"
}

# ctl_started LOG: the controller logged its start-up line to LOG.
ctl_started() { grep -q 'rackboot-controller .* started' "$1"; }

# ctl_answers SOCK: the controller's API socket $T/SOCK.sock is there and
# answers the CLI.
ctl_answers() { [ -S "$T/$1.sock" ] && ctl_cli "$1" racks >/dev/null 2>&1; }

# ctl_cli SOCK ARGS...: the rackboot CLI over the controller's API socket
# ipc://$T/SOCK.sock.
ctl_cli() {
    local sock=$1
    shift
    "$CLI_BIN" --controller "ipc://$T/$sock.sock" "$@"
}

# shellcheck shell=bash
# Shared helpers for the hostile tests (sourced after the integration
# library a test builds on, which provides skip/fail/wait_for and cleanup).
#
# Every load loop in these tests is bounded twice: by a count and by a
# deadline (`deadline_in` / `before_deadline`), so a daemon that stops
# answering fails the test instead of hanging it.
#
# Memory: the daemons run under AddressSanitizer in the sanitizer build,
# whose quarantine keeps up to 256 MiB of freed memory resident by default;
# that would hide a real leak under churn and make "RSS bounded" a claim
# about ASan. The hostile tests start daemons with a 16 MiB quarantine
# (hostile_asan_env), so what RSS measures is the daemon's own memory plus
# at most 16 MiB of recently freed blocks.

HOSTILE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEGRATION_DIR=$(cd "$HOSTILE_DIR/../integration" && pwd)

# Exported before a daemon starts: ASan (if linked) keeps its quarantine small.
hostile_asan_env() {
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16:allocator_release_to_os_interval_ms=500"
}

# mem_kb PID FIELD: VmRSS or VmHWM of PID in kB (from /proc/PID/status).
mem_kb() {
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}

# mem_begin PID: records VmRSS now as the baseline (MEM_RSS0, MEM_HWM0).
mem_begin() {
    MEM_RSS0=$(mem_kb "$1" VmRSS)
    MEM_HWM0=$(mem_kb "$1" VmHWM)
    [ -n "$MEM_RSS0" ] || fail "no /proc/$1/status: the daemon is gone"
}

# mem_check PID WHAT RSS_CAP_MB HWM_CAP_MB: the daemon's resident set grew
# by less than RSS_CAP_MB since mem_begin, and its peak (VmHWM) by less than
# HWM_CAP_MB above the baseline RSS. Logs one line with the numbers.
mem_check() {
    local pid=$1 what=$2 rss_cap=$(($3 * 1024)) hwm_cap=$(($4 * 1024)) rss hwm
    rss=$(mem_kb "$pid" VmRSS)
    hwm=$(mem_kb "$pid" VmHWM)
    [ -n "$rss" ] || fail "$what: the daemon is gone (no /proc/$pid/status)"
    echo "memory $what: VmRSS before=${MEM_RSS0}kB after=${rss}kB growth=$((rss - MEM_RSS0))kB" \
        "(cap $((rss_cap / 1024))MiB); VmHWM before=${MEM_HWM0}kB after=${hwm}kB" \
        "peak-over-baseline=$((hwm - MEM_RSS0))kB (cap $((hwm_cap / 1024))MiB)"
    [ $((rss - MEM_RSS0)) -lt "$rss_cap" ] ||
        fail "$what: VmRSS grew by $((rss - MEM_RSS0)) kB, cap $rss_cap kB"
    [ $((hwm - MEM_RSS0)) -lt "$hwm_cap" ] ||
        fail "$what: VmHWM reached $((hwm - MEM_RSS0)) kB over the baseline, cap $hwm_cap kB"
}

# deadline_in SECONDS: prints a monotonic deadline for before_deadline.
deadline_in() {
    echo $(($(date +%s%N) / 1000000 + $1 * 1000))
}

before_deadline() {
    [ $(($(date +%s%N) / 1000000)) -lt "$1" ]
}

# alive PID WHAT: the daemon is still running.
alive() {
    kill -0 "$1" 2>/dev/null || fail "$2: the daemon died"
}

# ms_since START_NS: milliseconds since a `date +%s%N` stamp.
ms_since() {
    echo $((($(date +%s%N) - $1) / 1000000))
}

# hostile_source_integration LIB ARGS...: sources tests/integration/LIB with
# ARGS as its positional parameters. The integration libraries find their
# siblings through $0, so $0 points into that folder while they load (bash
# 5: assigning BASH_ARGV0 sets $0); the test's name stays its own.
hostile_source_integration() {
    local lib=$1 self=$0
    shift
    BASH_ARGV0="$INTEGRATION_DIR/$(basename "$self")"
    . "$INTEGRATION_DIR/$lib" "$@"
    BASH_ARGV0=$self
}

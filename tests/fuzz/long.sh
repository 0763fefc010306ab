#!/bin/bash
# Fuzzes every libFuzzer target for longer than tests/run.sh does:
#
#     tests/fuzz/long.sh SECONDS [TARGET...]
#
# builds the clang fuzz tree (CC=clang, -DRACKBOOT_FUZZ=ON, as tests/run.sh
# does), then runs each target (all of them, or those named) for SECONDS,
# up to nproc at once. Each starts from the committed corpus
# (tests/fuzz/corpus/NAME/) and a working corpus in the build tree, which
# keeps what it found for the next run; nothing is written to the source
# tree. Prints per target the inputs executed (libFuzzer's
# stat::number_of_executed_units) and any crash, leak or timeout with the
# file that reproduces it (replay: build/fuzz/tests/NAME FILE). Exits 1 when
# any target failed.
#
# Environment:
#   RACKBOOT_FUZZ_DIR   libFuzzer build tree (default: build/fuzz)
#   FUZZ_JOBS           targets at once (default: nproc)
#   FUZZ_ARGS           extra libFuzzer arguments, e.g. "-max_len=4096"
set -eu

usage() {
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
seconds=$1
shift
case $seconds in
'' | *[!0-9]*) usage ;;
esac

root=$(cd "$(dirname "$0")/../.." && pwd)
fuzz=${RACKBOOT_FUZZ_DIR:-$root/build/fuzz}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}

echo "== building the fuzz targets in $fuzz (clang)"
CC=clang cmake -S "$root" -B "$fuzz" -G Ninja -DRACKBOOT_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$fuzz" --target fuzzers -j "$jobs"

if [ $# -eq 0 ]; then
    for f in "$root"/tests/fuzz/fuzz_*.c; do
        set -- "$@" "$(basename "$f" .c)"
    done
fi
for t in "$@"; do
    [ -x "$fuzz/tests/$t" ] || {
        echo "$t: no such fuzz target in $fuzz/tests" >&2
        exit 2
    }
done

out=$fuzz/long
mkdir -p "$out"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# run TARGET: one libFuzzer session; its log and artifacts go to $out/TARGET*.
run() {
    t=$1
    work=$fuzz/tests/corpus/$t
    art=$out/$t.artifacts
    mkdir -p "$work" "$art"
    rm -f "$art"/*
    rc=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of arguments
    "$fuzz/tests/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -detect_leaks=1 -artifact_prefix="$art/" ${FUZZ_ARGS:-} \
        "$work" "$root/tests/fuzz/corpus/$t" >"$out/$t.log" 2>&1 || rc=$?
    echo "$rc" >"$out/$t.rc"
}

echo "== fuzzing $# targets for ${seconds}s each, $jobs at once (logs: $out)"
running=0
for t in "$@"; do
    rm -f "$out/$t.rc"
    run "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

failed=0
printf '%-26s %14s  %s\n' target execs result
for t in "$@"; do
    log=$out/$t.log
    rc=$(cat "$out/$t.rc" 2>/dev/null || echo '?')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    art=$(find "$out/$t.artifacts" -type f 2>/dev/null | head -n 1)
    if [ "$rc" = 0 ] && [ -z "$art" ]; then
        result=ok
    else
        failed=1
        what=$(grep -m 1 -E '^==[0-9]+==ERROR|^SUMMARY|deadly signal|ERROR: libFuzzer' "$log" || true)
        result="FAILED (exit $rc) ${what:-see $log}"
        [ -n "$art" ] && result="$result; input: $art"
    fi
    printf '%-26s %14s  %s\n' "$t" "${execs:-?}" "$result"
done
exit $failed

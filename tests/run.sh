#!/bin/sh
# The one command that runs every rackboot test on a Debian 12 machine:
# installs dependencies, builds with AddressSanitizer + UndefinedBehaviorSanitizer
# and warnings as errors (and a Release build with warnings as errors), runs the fuzz targets briefly under libFuzzer (clang),
# then runs the whole ctest suite. Exits non-zero on any failure.
#
# Environment:
#   RACKBOOT_BUILD_DIR   sanitizer build tree (default: build/test)
#   RACKBOOT_FUZZ_DIR    libFuzzer build tree (default: build/fuzz)
#   RACKBOOT_RELEASE_DIR Release build tree, built with -Werror (default: build/release)
#   RACKBOOT_CLOUDINIT_DIR  Debian's cloud-init unpacked for golden.nocloud_check
#                        (default: build/cloud-init; fetched once from the mirror)
#   RACKBOOT_FUZZ_SECONDS  seconds per fuzz target (default 15; 0 skips fuzzing)
#   CTEST_ARGS           extra ctest arguments, e.g. "-R unit"
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${RACKBOOT_BUILD_DIR:-$root/build/test}
fuzz=${RACKBOOT_FUZZ_DIR:-$root/build/fuzz}
release=${RACKBOOT_RELEASE_DIR:-$root/build/release}
fuzz_seconds=${RACKBOOT_FUZZ_SECONDS:-15}
jobs=$(nproc 2>/dev/null || echo 2)

"$root/deploy/install-deps.sh"

if [ "$fuzz_seconds" != 0 ]; then
    echo "== fuzz: libFuzzer build (clang), ${fuzz_seconds}s per target"
    CC=clang cmake -S "$root" -B "$fuzz" -G Ninja -DRACKBOOT_FUZZ=ON \
        -DRACKBOOT_FUZZ_SECONDS="$fuzz_seconds" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$fuzz" --target fuzzers -j "$jobs"
    (cd "$fuzz" && ctest --output-on-failure -L fuzz -j "$jobs")
fi

# The optimizer finds warnings (-Wmaybe-uninitialized, -Wformat-truncation)
# that the sanitizer build does not: the Release build users and the lab
# make must be as clean.
echo "== release build (gcc -O2, -Werror)"
cmake -S "$root" -B "$release" -G Ninja -DRACKBOOT_WERROR=ON -DBUILD_TESTING=OFF \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$release" -j "$jobs"

# The NoCloud seeds are checked with cloud-init's own parser, merger and
# schema: Debian's package unpacked, not installed (tests/tools/
# cloud_init_unpack.sh). Without the mirror the check falls back to YAML.
cloudinit=${RACKBOOT_CLOUDINIT_DIR:-$root/build/cloud-init}
cloudinit_py=$cloudinit/usr/lib/python3/dist-packages
if [ ! -d "$cloudinit_py/cloudinit" ]; then
    echo "== cloud-init for golden.nocloud_check (unpacked into $cloudinit)"
    mkdir -p "$cloudinit"
    if ! "$root/tests/tools/cloud_init_unpack.sh" "$cloudinit" >"$cloudinit/unpack.log" 2>&1; then
        echo "warning: cannot fetch cloud-init (see $cloudinit/unpack.log): seeds checked as YAML only"
        cloudinit_py=""
    fi
fi

echo "== tests: sanitizer build (gcc, ASan+UBSan, -Werror)"
cmake -S "$root" -B "$build" -G Ninja -DRACKBOOT_SANITIZE=ON -DRACKBOOT_WERROR=ON \
    -DRACKBOOT_CLOUDINIT_PATH="$cloudinit_py" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$jobs"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
# shellcheck disable=SC2086 # CTEST_ARGS is a list of arguments
ctest --output-on-failure -j "$jobs" ${CTEST_ARGS:-}

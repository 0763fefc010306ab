#!/bin/sh
# rackboot-deploy end to end, as the ramdisk runs it, with a regular file
# standing for the disk (--allow-file) and a small Python server on [::1]
# standing for the agent: it serves the image and records the progress
# POSTs. Checks: a zstd image lands byte for byte and the agent hears
# phase=writing ... and phase=written; a wrong sha256 exits non-zero with one
# error line, reports phase=failed, and leaves the first MiB zero; usage
# errors exit 2.
#
# Usage: deploy_writer.sh rackboot-deploy
set -eu
here=$(cd "$(dirname "$0")" && pwd)

deploy=${1:?usage: deploy_writer.sh rackboot-deploy}
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
command -v zstd >/dev/null || { echo "SKIP: no zstd"; exit 77; }

T=$(mktemp -d /tmp/rb-deploy-XXXXXX)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T"

# An image: 3 MiB of random bytes between runs of zeros, like a disk.
{ head -c 1048576 /dev/urandom; head -c 2097152 /dev/zero; head -c 2097152 /dev/urandom; } > image
zstd -q -c image > image.zst
sha=$(sha256sum image.zst | cut -d' ' -f1)

. "$here/deploy_lib.sh"
deploy_agent_start
pid=$deploy_agent_pid
base=$deploy_agent_base

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# 1. A good image.
head -c 8388608 /dev/zero | tr '\0' '\356' > disk
if ! "$deploy" --url "$base/image.zst" --sha256 "$sha" --root-device "$T/disk" --allow-file \
        --progress-url "$base/progress" 2> log1; then
    fail "deploy of a good image failed"; cat log1 >&2
fi
head -c "$(stat -c %s image)" disk | cmp -s - image || fail "the disk does not hold the image"
grep -q '^phase=writing&percent=' posts || fail "no phase=writing report"
[ "$(tail -n 1 posts)" = "phase=written" ] || fail "the last report is not phase=written"

# 2. A wrong hash: refused, reported, the partition table region left zero.
head -c 8388608 /dev/zero | tr '\0' '\356' > disk
bad=$(echo "$sha" | tr '0123456789abcdef' '123456789abcdef0')
if "$deploy" --url "$base/image.zst" --sha256 "$bad" --root-device "$T/disk" --allow-file \
        --progress-url "$base/progress" 2> log2; then
    fail "a wrong sha256 was accepted"
fi
[ "$(grep -c 'error' log2)" = 1 ] || { fail "not one error line:"; cat log2 >&2; }
grep -q "sha256 mismatch: expected $bad, got $sha" log2 || fail "the error does not name both hashes"
tail -n 1 posts | grep -q '^phase=failed&message=sha256%20mismatch' || fail "no phase=failed report"
head -c 1048576 disk | cmp -s - /dev/zero 2>/dev/null || [ "$(head -c 1048576 disk | tr -d '\0' | wc -c)" = 0 ] ||
    fail "the first MiB is not zero after a mismatch"

# 3. Usage.
"$deploy" --help > help || fail "--help failed"
grep -q -- '--root-device' help || fail "--help does not describe --root-device"
set +e
"$deploy" --url "$base/x" --root-device auto 2> /dev/null; rc=$?
[ $rc = 2 ] || fail "missing --sha256: exit $rc, not 2"
"$deploy" --url "$base/x" --sha256 nothex --root-device auto 2> /dev/null; rc=$?
[ $rc = 2 ] || fail "bad --sha256: exit $rc, not 2"
# A regular file without --allow-file is refused as no block device.
"$deploy" --url "$base/image.zst" --sha256 "$sha" --root-device "$T/disk" 2> log3; rc=$?
[ $rc = 1 ] && grep -q 'not a block device' log3 || fail "a regular file was taken as a disk (exit $rc)"
set -e

if [ $failures -gt 0 ]; then
    echo "$failures failed" >&2
    exit 1
fi
echo "deploy_writer: all checks passed"

#!/bin/sh
# rackboot-deploy on a real block device (a loop device over a sparse file),
# where the sink uses O_DIRECT, BLKGETSIZE64 and BLKFLSBUF: an image whose
# size is not a multiple of 4096 lands byte for byte (the unaligned tail
# falls back to buffered writes), a mismatch leaves the first and last MiB
# zero, and an image larger than the device is refused before it is fetched.
# Needs root and a free loop device, else skips (77).
#
# Usage: deploy_writer_blockdev.sh rackboot-deploy
set -eu
here=$(cd "$(dirname "$0")" && pwd)

deploy=${1:?usage: deploy_writer_blockdev.sh rackboot-deploy}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v losetup >/dev/null || { echo "SKIP: no losetup"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }

T=$(mktemp -d /tmp/rb-deploy-blk-XXXXXX)
pid="" loop=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T"

truncate -s 16M backing
loop=$(losetup -f --show backing 2>/dev/null) || { loop=""; echo "SKIP: no free loop device"; exit 77; }

# 5 MiB and 1000 bytes: the last write is not a whole 4096-byte block.
{ head -c 3145728 /dev/urandom; head -c 2098152 /dev/zero; } > image
xz -1 -c image > image.xz
sha=$(sha256sum image.xz | cut -d' ' -f1)
head -c 20971520 /dev/urandom > big
big_sha=$(sha256sum big | cut -d' ' -f1)

. "$here/deploy_lib.sh"
deploy_agent_start
pid=$deploy_agent_pid
base=$deploy_agent_base

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
nonzero() { tr -d '\0' | wc -c; }

# Old contents everywhere, as on a used disk.
head -c 16777216 /dev/zero | tr '\0' '\356' > "$loop"

if ! "$deploy" --url "$base/image.xz" --sha256 "$sha" --root-device "$loop" 2> log1; then
    fail "deploy to $loop failed"; cat log1 >&2
fi
grep -q 'direct=yes' log1 || { fail "O_DIRECT was not used"; cat log1 >&2; }
cmp -s -n "$(stat -c %s image)" "$loop" image || fail "the device does not hold the image"
[ "$(tail -c 1048576 "$loop" | nonzero)" = 0 ] || fail "the old backup GPT place is not wiped"

head -c 16777216 /dev/zero | tr '\0' '\356' > "$loop"
bad=$(echo "$sha" | tr '0123456789abcdef' '123456789abcdef0')
"$deploy" --url "$base/image.xz" --sha256 "$bad" --root-device "$loop" 2> log2 &&
    fail "a wrong sha256 was accepted"
[ "$(head -c 1048576 "$loop" | nonzero)" = 0 ] || fail "the first MiB is not zero after a mismatch"
[ "$(tail -c 1048576 "$loop" | nonzero)" = 0 ] || fail "the last MiB is not zero after a mismatch"

# Larger than the 16 MiB device: refused by size before any request.
"$deploy" --url "$base/big" --sha256 "$big_sha" --root-device "$loop" --image-size 20M 2> log3 &&
    fail "a 20 MiB image was accepted for a 16 MiB device"
grep -q 'No space left' log3 || { fail "not refused for space"; cat log3 >&2; }
grep -q 'writing' log3 && fail "the too-large image was fetched"
# And without the size: refused when the bytes reach the end.
"$deploy" --url "$base/big" --sha256 "$big_sha" --root-device "$loop" 2> log4 &&
    fail "a 20 MiB image was written to a 16 MiB device"
grep -q 'No space left' log4 || { fail "not refused for space"; cat log4 >&2; }

if [ $failures -gt 0 ]; then
    echo "$failures failed" >&2
    exit 1
fi
echo "deploy_writer_blockdev: all checks passed"

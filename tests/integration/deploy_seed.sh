#!/bin/sh
# rackboot-deploy after the write: the GPT fitted to the disk and the NoCloud
# seed, judged by tools that are not ours (sfdisk -d, sgdisk -v, mtools,
# blkid). A 12 MiB GPT image (BIOS boot, ESP, ext4 root) goes onto a 64 MiB
# sparse file standing for the disk:
#   1. with --seed-url: the backup GPT at the disk's end, the root partition
#      grown up to a 4 MiB partition "CIDATA" at the end, a FAT file system
#      labelled CIDATA in it with the three files as served, the image's
#      partitions' bytes intact, phase=written reported last;
#   2. without: the root partition grows to the last usable sector;
#   3. a seed file missing (404): refused before the disk is touched;
#   4. a disk with no room for the seed after the image: failed, and no
#      partition table left on the disk.
# With root and a free loop device, 1. again on a loop device.
#
# Usage: deploy_seed.sh rackboot-deploy
set -eu
here=$(cd "$(dirname "$0")" && pwd)

deploy=${1:?usage: deploy_seed.sh rackboot-deploy}
for t in python3 zstd sgdisk sfdisk mkfs.ext4 mdir mtype blkid; do
    command -v $t >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
export MTOOLS_SKIP_CHECK=1

T=$(mktemp -d /tmp/rb-deploy-seed-XXXXXX)
pid="" loop=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T"
. "$here/deploy_lib.sh"

deploy_gpt_image image
zstd -q -c image > image.zst
sha=$(sha256sum image.zst | cut -d' ' -f1)
mkdir seed
printf 'instance-id: rb-42\nlocal-hostname: web17\n' > seed/meta-data
printf 'version: 2\nethernets:\n  id0:\n    match: {macaddress: "52:54:00:12:34:56"}\n    addresses: ["2001:db8:1::17/64"]\n    gateway6: "2001:db8:1::1"\n' > seed/network-config
printf '#cloud-config\nhostname: web17\nphone_home: {url: "http://[2001:db8:1::1]/phone-home/42", tries: 10}\n' > seed/user-data
mkdir noseed
printf 'instance-id: x\n' > noseed/meta-data
printf 'version: 2\n' > noseed/network-config

deploy_agent_start
pid=$deploy_agent_pid
base=$deploy_agent_base

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# 1. Seeded, on a 64 MiB sparse file.
truncate -s 64M disk
if ! "$deploy" --url "$base/image.zst" --sha256 "$sha" --root-device "$T/disk" --allow-file \
        --seed-url "$base/seed/" --progress-url "$base/progress" 2> log1; then
    fail "seeded deploy failed"; cat log1 >&2
fi
check_seeded disk 131072
[ "$(tail -n 1 posts)" = "phase=written" ] || fail "the last report is not phase=written"

# 2. No seed: the root partition takes it all.
rm -f disk && truncate -s 64M disk
"$deploy" --url "$base/image.zst" --sha256 "$sha" --root-device "$T/disk" --allow-file 2> log2 ||
    { fail "deploy without seed failed"; cat log2 >&2; }
[ $(($(field disk 3 start) + $(field disk 3 size) - 1)) = $((131072 - 34)) ] ||
    fail "without a seed, partition 3 does not end on the last usable sector"
[ -z "$(field disk 4 start)" ] || fail "a partition 4 appeared without a seed"
sgdisk -v disk 2>&1 | grep -q 'No problems found' || fail "sgdisk -v finds problems (no seed)"

# 3. A seed file missing: nothing written.
rm -f disk && truncate -s 64M disk
: > posts
if "$deploy" --url "$base/image.zst" --sha256 "$sha" --root-device "$T/disk" --allow-file \
        --seed-url "$base/noseed" --progress-url "$base/progress" 2> log3; then
    fail "a deploy without user-data succeeded"
fi
grep -q 'user-data: 404' log3 || { fail "the error does not name user-data:"; cat log3 >&2; }
[ "$(tr -d '\0' < disk | wc -c)" = 0 ] || fail "the disk was written although the seed was incomplete"
grep -q '^phase=failed&message=' posts || fail "no phase=failed report for a missing seed file"

# 4. 14 MiB: the image fits, the seed does not. Failed, no table left.
rm -f disk && truncate -s 14M disk
if "$deploy" --url "$base/image.zst" --sha256 "$sha" --root-device "$T/disk" --allow-file \
        --seed-url "$base/seed" 2> log4; then
    fail "a disk without room for the seed was accepted"
fi
grep -q 'no room' log4 || { fail "the error does not say there is no room:"; cat log4 >&2; }
[ "$(head -c 1048576 disk | tr -d '\0' | wc -c)" = 0 ] || fail "the first MiB is not zero after a failed seed"
sfdisk -d disk > /dev/null 2>&1 && fail "a partition table is left after a failed seed"

# 5. Case 1 on a loop device (O_DIRECT writes, the kernel re-reads the table).
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null; then
    rm -f disk && truncate -s 64M disk
    loop=$(losetup -f --show disk 2>/dev/null) || loop=""
    if [ -n "$loop" ]; then
        "$deploy" --url "$base/image.zst" --sha256 "$sha" --root-device "$loop" \
            --seed-url "$base/seed" 2> log5 || { fail "seeded deploy to $loop failed"; cat log5 >&2; }
        check_seeded "$loop" 131072 "$T/disk"
        losetup -d "$loop"
        loop=""
    else
        echo "deploy_seed: no free loop device, block device case skipped"
    fi
fi

if [ $failures -gt 0 ]; then
    echo "$failures failed" >&2
    exit 1
fi
echo "deploy_seed: all checks passed"

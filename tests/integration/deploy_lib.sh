# shellcheck shell=sh
# Shared by the rackboot-deploy tests: a Python stand-in for the agent on
# [::1] that serves the current directory and records the body of every
# POST (the progress reports) as one line of ./posts.
#
# deploy_agent_start [ADDR PORT [NETNS]]: starts it in the background (on
# ADDR:PORT, default ::1 and a free port; inside NETNS when given); sets
# deploy_agent_pid and deploy_agent_base (http://[ADDR]:PORT). Waits until
# it listens (up to 30 s on a busy machine) or dies. Stop it with
# kill "$deploy_agent_pid".
deploy_agent_start() {
    _addr=${1:-::1} _port=${2:-0}
    cat > agent.py <<'PYEOF'
import http.server, socket, sys
class H(http.server.SimpleHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        with open("posts", "ab") as f:
            f.write(self.rfile.read(n) + b"\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
s = S((sys.argv[1], int(sys.argv[2])), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PYEOF
    rm -f port
    if [ -n "${3:-}" ]; then
        ip netns exec "$3" python3 -u agent.py "$_addr" "$_port" > port &
    else
        python3 -u agent.py "$_addr" "$_port" > port &
    fi
    deploy_agent_pid=$!
    _i=0
    while [ ! -s port ] && [ $_i -lt 600 ] && kill -0 "$deploy_agent_pid" 2>/dev/null; do
        sleep 0.05
        _i=$((_i + 1))
    done
    [ -s port ] || { echo "FAIL: the test server did not start" >&2; return 1; }
    deploy_agent_base="http://[$_addr]:$(cat port)"
}

# deploy_gpt_image FILE: a 12 MiB GPT disk image as an image build makes one:
# 1 BIOS boot (1 MiB, random bytes), 2 ESP (2 MiB, random bytes), 3 Linux
# root (ext4 made with mkfs.ext4 -d from a small tree, /etc/hostname = "deployed"),
# ending at the image's last usable sector. Needs sgdisk (gdisk) and
# mkfs.ext4 (e2fsprogs).
deploy_gpt_image() {
    _img=$1
    rm -f "$_img"
    truncate -s 12M "$_img"
    sgdisk -n1:2048:+1M -t1:ef02 -n2:0:+2M -t2:ef00 -n3:0:0 -t3:8300 -c3:root "$_img" > /dev/null ||
        return 1
    dd if=/dev/urandom of="$_img" bs=1M seek=1 count=3 conv=notrunc status=none || return 1
    rm -rf "$_img.root"
    mkdir -p "$_img.root/etc"
    echo deployed > "$_img.root/etc/hostname"
    # Partition 3 starts at sector 8192 (4 MiB) and is 16351 sectors long.
    mkfs.ext4 -q -F -L root -d "$_img.root" -E offset=4194304 "$_img" 8000k || return 1
    rm -rf "$_img.root"
}

# deploy_part_bytes DISK N: partition N's bytes (start and size from sfdisk -d).
deploy_part_bytes() {
    sfdisk -d "$1" | awk -v n="$2" '
        $1 ~ "[^0-9]" n "$" || $1 ~ "p" n "$" {
            for (i = 1; i <= NF; i++) { if ($i == "start=") s = $(i+1); if ($i == "size=") z = $(i+1) }
            gsub(",", "", s); gsub(",", "", z); print s, z }' |
        { read -r _s _z && dd if="$1" bs=512 skip="$_s" count="$_z" status=none; }
}

# field DISK PARTNO KEY: a value of sfdisk -d's line for the partition.
field() {
    sfdisk -d "$1" 2>/dev/null | awk -v n="$2" -v k="$3" '
        $1 ~ "[^0-9]" n "$" {
            for (i = 1; i <= NF; i++) {
                if ($i == k "=") { v = $(i+1) } else if (index($i, k "=") == 1) { v = substr($i, length(k) + 2) }
            }
            gsub(/[,"]/, "", v); if (v != "") print v }'
}
header() { sfdisk -d "$1" 2>/dev/null | awk -v k="$2:" '$1 == k { print $2 }'; }

# check_seeded DISK SECTORS [FILE]: DISK (of SECTORS sectors) holds the
# image made by deploy_gpt_image (./image), grown, with the seed of ./seed/
# in a CIDATA partition at its end; failures go to the caller's fail(); mtools and blkid read FILE (a loop device's backing file: mtools
# asks a block device for a floppy's geometry).
check_seeded() {
    d=$1 n=$2 f=${3:-$1}
    sgdisk -v "$d" > verify 2>&1 || true
    grep -q 'No problems found' verify || { fail "sgdisk -v finds problems on $d:"; cat verify >&2; }
    # The backup header on the last sector: 33 sectors of entries and header.
    [ "$(header "$d" last-lba)" = $((n - 34)) ] || fail "last-lba $(header "$d" last-lba), not $((n - 34))"
    s4=$(field "$d" 4 start) z4=$(field "$d" 4 size)
    if [ -z "$s4" ] || [ -z "$z4" ] || [ -z "$(field "$d" 3 size)" ]; then
        fail "$d has no partitions 3 and 4"
        return
    fi
    [ "$(field "$d" 4 name)" = CIDATA ] || fail "partition 4 is not named CIDATA"
    [ "$z4" = 8192 ] || fail "the seed partition has $z4 sectors, not 8192 (4 MiB)"
    [ $((s4 % 2048)) = 0 ] && [ $(((s4 + z4) % 2048)) = 0 ] || fail "the seed partition is not MiB-aligned"
    [ $((s4 + z4 - 1)) -le $((n - 34)) ] || fail "the seed partition runs past the last usable sector"
    [ $((n - 34 - s4 - z4)) -lt 2048 ] || fail "the seed partition is not at the disk's end"
    [ "$(field "$d" 3 start)" = 8192 ] || fail "partition 3 moved"
    [ $(($(field "$d" 3 start) + $(field "$d" 3 size))) = "$s4" ] || fail "partition 3 does not grow up to the seed"
    for p in 1 2; do
        deploy_part_bytes image $p > want.$p
        deploy_part_bytes "$d" $p | cmp -s - want.$p || fail "partition $p's bytes differ from the image's"
    done
    deploy_part_bytes image 3 > want.3
    deploy_part_bytes "$d" 3 | head -c "$(stat -c %s want.3)" | cmp -s - want.3 ||
        fail "the root partition's first bytes differ from the image's"
    off=$((s4 * 512))
    blkid -p -O "$off" -s LABEL -o value "$f" > label || true
    [ "$(cat label)" = CIDATA ] || fail "blkid: label '$(cat label)', not CIDATA"
    for name in meta-data network-config user-data; do
        mtype -i "$f@@$off" "::$name" > got 2>/dev/null || { fail "no $name in the seed"; continue; }
        cmp -s got "seed/$name" || fail "$name in the seed differs from the one served"
    done
    mdir -i "$f@@$off" -b :: > listing
    [ "$(wc -l < listing)" = 3 ] || { fail "the seed does not hold exactly three files:"; cat listing >&2; }
}

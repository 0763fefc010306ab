# shellcheck shell=sh
# Shared by the rackboot-deploy tests: a Python stand-in for the agent on
# [::1] that serves the current directory and records the body of every
# POST (the progress reports) as one line of ./posts.
#
# deploy_agent_start: starts it in the background; sets deploy_agent_pid and
# deploy_agent_base (http://[::1]:PORT). Waits until it listens (up to 30 s
# on a busy machine) or dies. Stop it with kill "$deploy_agent_pid".
deploy_agent_start() {
    cat > agent.py <<'PYEOF'
import http.server, socket
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
s = S(("::1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PYEOF
    rm -f port
    python3 -u agent.py > port &
    deploy_agent_pid=$!
    _i=0
    while [ ! -s port ] && [ $_i -lt 600 ] && kill -0 "$deploy_agent_pid" 2>/dev/null; do
        sleep 0.05
        _i=$((_i + 1))
    done
    [ -s port ] || { echo "FAIL: the test server did not start" >&2; return 1; }
    deploy_agent_base="http://[::1]:$(cat port)"
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

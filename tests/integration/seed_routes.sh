#!/bin/bash
# The routes of an image deploy on a standalone agent, with curl from the
# host's own address and from another one:
#
#   /boot/<mac>.ipxe   an image profile's script boots the deploy ramdisk
#                      (/deploy/vmlinuz, /deploy/initrd.img) with the ramdisk's
#                      command line, for each of the host's MACs;
#   /deploy/...        the ramdisk's two files from [deploy] ramdisk, with
#                      ranges; kernel_fetched / initrd_fetched for the host;
#                      nothing else of that directory;
#   /seed/<id>/<token>/<mac>/{meta-data,network-config,user-data}
#                      each document as render_nocloud makes it for that MAC;
#                      403 for a wrong token, an unknown install, another
#                      address; 404 for a MAC not the host's, a document that
#                      is not one of the three, an install profile's host;
#                      the token never in the agent's log;
#   without [deploy] ramdisk the image host gets no script (500, the agent
#   says why) and /deploy/ is 404.
. "$(dirname "$0")/http_lib.sh"

HOST_ADDR=2001:db8:1::17
OTHER_ADDR=2001:db8:1::99
MAC2=52:54:00:ab:cd:ef
KS_MAC=52:54:00:00:00:42
R="http://[$SRV_ADDR]" # as the agent writes its URLs (port 80: none)

setup_http_link
ip -n "$CLI" addr add "$HOST_ADDR/64" dev veth-c nodad
ip -n "$CLI" addr add "$OTHER_ADDR/64" dev veth-c nodad
ip -n "$CLI" addr add 2001:db8:1::42/64 dev veth-c nodad
mkdir -p "$T/ramdisk"
head -c 300000 /dev/urandom >"$T/ramdisk/vmlinuz"
head -c 700000 /dev/urandom >"$T/ramdisk/initrd.img"
echo "not served" >"$T/ramdisk/INPUTS"
write_http_config
cat >>"$T/agent.conf" <<EOC

[deploy]
ramdisk = ramdisk
EOC
head -c 100000 /dev/urandom >"$T/disk.img"
SHA=$(sha256sum "$T/disk.img" | cut -d' ' -f1)
KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGkSeedRoutesTestKeyxxxxxxxxxxxxxxxxxxxxxxxx test@seed"
cat >"$T/hosts.conf" <<EOH
[profile el9]
kernel = file://$T/disk.img sha256=$SHA
initrd = file://$T/disk.img sha256=$SHA

[profile deb12]
kind = image
image = file://$T/disk.img sha256=$SHA
ssh_authorized_keys = $KEY
cmdline = console=ttyS0,115200n8

[host web17]
mac = $CLI_MAC $MAC2
address = $HOST_ADDR
gateway = 2001:db8:1::1
install = deb12

[host ks1]
mac = $KS_MAC
address = 2001:db8:1::42
gateway = 2001:db8:1::1
install = el9
EOH
start_agent

from() { # from ADDR URL [curl args]
    local addr=$1 url=$2
    shift 2
    status "$url" --interface "$addr" "$@"
}
events() { grep -c "event host=web17 .*phase=$1" "$T/agent.log"; }
access_lines() { grep -c 'rackboot-agent: http ' "$T/agent.log"; }
access_at_least() { [ "$(access_lines)" -ge "$1" ]; }
# settle N: the agent has logged N access lines, then one more request
# after them (/settle, unrouted: its 404 is logged at info, unlike a
# successful /healthz). Its loop is single-threaded, so the completions of
# the first N (their events included) have all run: what they emit is in
# the log, and nothing more is coming.
settle() {
    wait_for 30 access_at_least "$1" || fail "the agent logged $(access_lines) of $1 requests"
    from "$HOST_ADDR" "$BASE/settle" >/dev/null
    wait_for 30 access_at_least "$(($1 + 1))" || fail "the /settle request was not logged"
}

# ---- the script ----
[ "$(from "$HOST_ADDR" "$BASE/boot/$CLI_MAC.ipxe")" = 200 ] || fail "script not 200 for the image host"
cp "$T/body" "$T/script"
grep -qF "kernel $R/deploy/vmlinuz initrd=initrd.img ifname=bootnet:$CLI_MAC " "$T/script" ||
    fail "the script does not boot the deploy ramdisk: $(cat "$T/script")"
grep -qxF "initrd --name initrd.img $R/deploy/initrd.img" "$T/script" || fail "no ramdisk initrd line"
grep -q "ip=\[$HOST_ADDR\]::\[2001:db8:1::1\]:64:web17:bootnet:none" "$T/script" || fail "no static ip="
grep -qF " rackboot.image=$R/images/deb12/disk.img rackboot.image_sha256=$SHA rackboot.root_device=auto " \
    "$T/script" || fail "image words missing: $(cat "$T/script")"
grep -q 'inst\.' "$T/script" && fail "inst.* words in an image script"
grep -q ' console=ttyS0,115200n8$' "$T/script" || fail "the profile's cmdline is not last"
SEED=$(grep -o 'rackboot.seed=[^ ]*' "$T/script" | cut -d= -f2-)
PROGRESS=$(grep -o 'rackboot.progress=[^ ]*' "$T/script" | cut -d= -f2-)
ID=$(echo "$SEED" | sed -n 's|.*/seed/\([^/]*\)/.*|\1|p')
TOKEN=$(echo "$SEED" | sed -n 's|.*/seed/[^/]*/\([^/]*\)/.*|\1|p')
[ -n "$ID" ] && [ -n "$TOKEN" ] || fail "cannot read id and token from rackboot.seed=$SEED"
[ "$SEED" = "$R/seed/$ID/$TOKEN/$(echo "$CLI_MAC" | tr : -)" ] || fail "seed URL $SEED"
[ "$PROGRESS" = "$R/progress/$ID?token=$TOKEN" ] || fail "progress URL $PROGRESS"
# The second NIC: its own MAC in ifname=, BOOTIF= and the seed.
[ "$(from "$HOST_ADDR" "$BASE/boot/$MAC2.ipxe")" = 200 ] || fail "script not 200 for the second MAC"
grep -qF "rackboot.seed=$R/seed/$ID/$TOKEN/52-54-00-ab-cd-ef " "$T/body" ||
    fail "the second MAC's script does not name its seed"
[ "$(events script_served)" = 2 ] || fail "expected two script_served events"

# ---- the deploy ramdisk ----
mark=$(access_lines)
[ "$(from "$HOST_ADDR" "$BASE/deploy/vmlinuz")" = 200 ] || fail "ramdisk kernel not 200"
cmp -s "$T/body" "$T/ramdisk/vmlinuz" || fail "ramdisk kernel differs"
[ "$(from "$HOST_ADDR" "$BASE/deploy/initrd.img")" = 200 ] || fail "ramdisk initrd not 200"
cmp -s "$T/body" "$T/ramdisk/initrd.img" || fail "ramdisk initrd differs"
[ "$(from "$HOST_ADDR" "$BASE/deploy/initrd.img" -r 100-199)" = 206 ] || fail "range not 206"
[ "$(stat -c %s "$T/body")" = 100 ] || fail "range: $(stat -c %s "$T/body") bytes"
[ "$(from "$OTHER_ADDR" "$BASE/deploy/vmlinuz")" = 200 ] || fail "ramdisk not served to others"
[ "$(from "$HOST_ADDR" "$BASE/deploy/INPUTS")" = 404 ] || fail "other files of the ramdisk directory served"
[ "$(from "$HOST_ADDR" "$BASE/deploy/")" = 404 ] || fail "/deploy/ not 404"
settle $((mark + 6))
[ "$(events kernel_fetched)" = 1 ] || fail "expected one kernel_fetched (the host's whole kernel)"
[ "$(events initrd_fetched)" = 1 ] || fail "expected one initrd_fetched (a range is not the file)"

# ---- the seed ----
S="$BASE/seed/$ID/$TOKEN/$(echo "$CLI_MAC" | tr : -)"
for doc in meta-data network-config user-data; do
    [ "$(from "$HOST_ADDR" "$S/$doc")" = 200 ] || fail "$doc not 200"
    cp "$T/body" "$T/$doc"
done
grep -q "\"instance-id\": \"$ID\"" "$T/meta-data" || fail "meta-data: $(cat "$T/meta-data")"
grep -q '"local-hostname": "web17"' "$T/meta-data" || fail "meta-data has no hostname"
grep -q "\"macaddress\": \"$CLI_MAC\"" "$T/network-config" || fail "network-config: not matched by the MAC"
grep -q "\"$HOST_ADDR/64\"" "$T/network-config" || fail "network-config: no static address"
grep -q '"gateway6": "2001:db8:1::1"' "$T/network-config" || fail "network-config: no gateway"
head -n 1 "$T/user-data" | grep -qx '#cloud-config' || fail "user-data is not #cloud-config"
grep -qF "$KEY" "$T/user-data" || fail "user-data lacks the profile's key"
grep -q "/phone-home/$ID?token=$TOKEN" "$T/user-data" || fail "user-data lacks the phone_home URL"
# The second MAC's network-config matches that MAC.
[ "$(from "$HOST_ADDR" "$BASE/seed/$ID/$TOKEN/52-54-00-ab-cd-ef/network-config")" = 200 ] ||
    fail "second MAC's network-config not 200"
grep -q "\"macaddress\": \"$MAC2\"" "$T/body" || fail "second MAC's network-config"
# ':' separators work too (parse_mac); the ramdisk gets '-'.
[ "$(from "$HOST_ADDR" "$BASE/seed/$ID/$TOKEN/$CLI_MAC/meta-data")" = 200 ] || fail "MAC with ':' refused"

[ "$(from "$HOST_ADDR" "$BASE/seed/$ID/0000$TOKEN/$(echo "$CLI_MAC" | tr : -)/meta-data")" = 403 ] ||
    fail "wrong token not 403"
[ "$(from "$HOST_ADDR" "$BASE/seed/$ID/x/$(echo "$CLI_MAC" | tr : -)/meta-data")" = 403 ] ||
    fail "short token not 403"
[ "$(from "$HOST_ADDR" "$BASE/seed/i-nope/$TOKEN/$(echo "$CLI_MAC" | tr : -)/meta-data")" = 403 ] ||
    fail "unknown install not 403"
[ "$(from "$OTHER_ADDR" "$S/meta-data")" = 403 ] || fail "seed served to another address"
[ "$(from "$HOST_ADDR" "$BASE/seed/$ID/$TOKEN/52-54-00-99-99-99/meta-data")" = 404 ] ||
    fail "a MAC not the host's not 404"
[ "$(from "$HOST_ADDR" "$S/vendor-data")" = 404 ] || fail "vendor-data not 404"
[ "$(from "$HOST_ADDR" "$S/")" = 404 ] || fail "the seed's directory not 404"
[ "$(from "$HOST_ADDR" "$S/meta-data" -X POST -d x=1)" = 405 ] || fail "POST to the seed not 405"

# An install profile's host has no seed, with its own (valid) token.
[ "$(from 2001:db8:1::42 "$BASE/boot/$KS_MAC.ipxe")" = 200 ] || fail "install profile's script not 200"
KS=$(grep -o 'inst.ks=[^ ]*' "$T/body" | cut -d= -f2-)
KS_ID=$(echo "$KS" | sed -n 's|.*/ks/\([^?]*\)?token=.*|\1|p')
KS_TOKEN=$(echo "$KS" | sed -n 's|.*token=\(.*\)|\1|p')
[ "$(from 2001:db8:1::42 "$BASE/seed/$KS_ID/$KS_TOKEN/52-54-00-00-00-42/meta-data")" = 404 ] ||
    fail "a seed for an install profile's host"
mark=$(access_lines)
[ "$(from 2001:db8:1::42 "$BASE/deploy/vmlinuz")" = 200 ] || fail "ramdisk not served to ks1"
settle $((mark + 1))
grep -q "event host=ks1 .*phase=kernel_fetched" "$T/agent.log" &&
    fail "kernel_fetched for a host that does not deploy an image"

grep -q "$TOKEN" "$T/agent.log" && fail "the token appears in the agent's log: $(grep "$TOKEN" "$T/agent.log" | head -3)"
grep -q "GET /seed/$ID/-/$(echo "$CLI_MAC" | tr : -)/meta-data status=200" "$T/agent.log" ||
    fail "the access log does not show the seed request with the token blanked"

# ---- progress from the ramdisk, as the command line says ----
[ "$(from "$HOST_ADDR" "$PROGRESS" -d 'phase=writing&percent=37')" = 200 ] || fail "writing not taken"

# ---- without [deploy] ramdisk ----
stop_agent
sed -i '/^\[deploy\]/,$d' "$T/agent.conf"
start_agent
grep -q 'no \[deploy\] ramdisk in .*: hosts of image profiles cannot be served' "$T/agent.log" ||
    fail "the agent does not say it cannot serve image profiles"
grep -q 'profile deb12 is kind = image, but \[deploy\] ramdisk is not set' "$T/agent.log" ||
    fail "the agent does not name the image profile it cannot serve"
[ "$(from "$HOST_ADDR" "$BASE/boot/$CLI_MAC.ipxe")" = 500 ] || fail "script without a ramdisk not 500"
grep -q 'cannot render the script of host=web17' "$T/agent.log" || fail "no error for the script"
[ "$(from "$HOST_ADDR" "$BASE/deploy/vmlinuz")" = 404 ] || fail "/deploy/ without a ramdisk not 404"

echo "PASS: $TEST_NAME"

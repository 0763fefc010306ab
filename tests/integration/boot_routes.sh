#!/bin/bash
# The install flow's HTTP routes on a standalone agent, with curl from the
# host's own address and from another one:
#
#   /boot/<mac>.ipxe  the script for the host (MAC with ':', '-', %3A), also
#                     at its SLAAC (EUI-64) address in another prefix of the
#                     agent's interface; 403 from another address and from
#                     its EUI-64 under a prefix of no served link; 404 for a
#                     MAC without an intent;
#   /boot/overlay.img a newc cpio `cpio -t` lists, with the route-wait hook;
#   /ks/<id>?token=   the kickstart with the host's values; 403 without the
#                     right token or from another address;
#   POST /progress/   403 with a wrong token, and with the right one from
#                     another address; 400 for a bad phase; installed
#                     withdraws the intent at once, and neither a SIGHUP
#                     re-read of the unchanged hosts file nor a restart
#                     re-arms it, while a changed host entry does;
#   source_check = no the script and progress from any address.
. "$(dirname "$0")/http_lib.sh"

HOST_ADDR=2001:db8:1::17
OTHER_ADDR=2001:db8:1::99
# The host's EUI-64 (52:54:00:12:34:56) in a second prefix of the agent's
# interface, and under a prefix routed to the agent but on no served link:
# what a machine anywhere that knows the MAC could use.
SLAAC_ADDR=2001:db8:2:0:5054:ff:fe12:3456
FAR_ADDR=2001:db8:99:0:5054:ff:fe12:3456

setup_http_link
ip -n "$CLI" addr add "$HOST_ADDR/64" dev veth-c nodad
ip -n "$CLI" addr add "$OTHER_ADDR/64" dev veth-c nodad
ip -n "$SRV" addr add 2001:db8:2::1/64 dev veth-s nodad
ip -n "$CLI" addr add "$SLAAC_ADDR/64" dev veth-c nodad
ip -n "$CLI" addr add "$FAR_ADDR/64" dev veth-c nodad
ip -n "$SRV" route add 2001:db8:99::/64 via 2001:db8:1::2 dev veth-s
write_http_config
# The profile's images, from an origin web server inside the agent's namespace.
mkdir -p "$T/origin"
head -c 300000 /dev/urandom >"$T/origin/vmlinuz"
head -c 700000 /dev/urandom >"$T/origin/initrd.img"
head -c $((24 * 1024 * 1024)) /dev/urandom >"$T/origin/squashfs.img"
sha() { sha256sum "$T/origin/$1" | cut -d' ' -f1; }
ip netns exec "$SRV" ip link set lo up
ip netns exec "$SRV" python3 -m http.server --bind ::1 8000 --directory "$T/origin" \
    >"$T/origin.log" 2>&1 &
ORIGIN="http://[::1]:8000"
cat >>"$T/hosts.conf" <<EOF

[profile ks]
kernel = $ORIGIN/vmlinuz sha256=$(sha vmlinuz)
initrd = $ORIGIN/initrd.img sha256=$(sha initrd.img)
stage2 = $ORIGIN/squashfs.img sha256=$(sha squashfs.img)
kickstart = el9.ks
overlay = yes
cmdline = console=ttyS0
EOF
sed -i 's/^install = el9$/install = ks/' "$T/hosts.conf"
printf 'text\nnetwork --hostname={{hostname}} --ip={{address}}\n' >"$T/el9.ks"
start_agent

from() { # from ADDR URL [curl args]
    local addr=$1 url=$2
    shift 2
    status "$url" --interface "$addr" "$@"
}

# ---- the script ----
[ "$(from "$HOST_ADDR" "$BASE/boot/$CLI_MAC.ipxe")" = 200 ] || fail "script not 200 for the host"
head -n 1 "$T/body" | grep -qx '#!ipxe' || fail "script does not start with #!ipxe"
cp "$T/body" "$T/script"
grep -q "ip=\[$HOST_ADDR\]::" "$T/script" || fail "no static ip= for the host: $(cat "$T/script")"
grep -q 'initrd=initrd.img' "$T/script" || fail "initrd not named on the kernel line"
grep -q 'initrd=overlay.img' "$T/script" || fail "the overlay is not named on the kernel line"
grep -q 'console=ttyS0' "$T/script" || fail "the profile's cmdline is missing"
KS=$(grep -o 'inst.ks=[^ ]*' "$T/script" | head -1 | cut -d= -f2-)
[ -n "$KS" ] || fail "no inst.ks= in the script"
ID=$(echo "$KS" | sed -n 's|.*/ks/\([^?]*\)?token=.*|\1|p')
TOKEN=$(echo "$KS" | sed -n 's|.*token=\(.*\)|\1|p')
[ -n "$ID" ] && [ -n "$TOKEN" ] || fail "cannot read id and token from $KS"
DASHED=$(echo "$CLI_MAC" | tr : -)
ENCODED=$(echo "$CLI_MAC" | sed 's/:/%3A/g')
[ "$(from "$HOST_ADDR" "$BASE/boot/$DASHED.ipxe")" = 200 ] || fail "MAC with '-' not served"
[ "$(from "$HOST_ADDR" "$BASE/boot/$ENCODED.ipxe")" = 200 ] || fail "MAC with %3A not served"
[ "$(from "$OTHER_ADDR" "$BASE/boot/$CLI_MAC.ipxe")" = 403 ] || fail "script served to another address"
[ "$(from "$SLAAC_ADDR" "$BASE/boot/$CLI_MAC.ipxe")" = 200 ] ||
    fail "script not served to the host's EUI-64 address on a served prefix"
[ "$(from "$FAR_ADDR" "$BASE/boot/$CLI_MAC.ipxe")" = 403 ] ||
    fail "script served to the host's EUI-64 under a prefix of no served link"
[ "$(from "$HOST_ADDR" "$BASE/boot/52:54:00:99:99:99.ipxe")" = 404 ] || fail "unknown MAC not 404"

# ---- the overlay ----
[ "$(from "$HOST_ADDR" "$BASE/boot/overlay.img")" = 200 ] || fail "overlay not 200"
gzip -dc <"$T/body" >"$T/overlay.cpio" 2>/dev/null || fail "the overlay is not gzip'ed"
cpio -t <"$T/overlay.cpio" >"$T/overlay.list" 2>/dev/null || fail "overlay is not a cpio archive"
grep -q 'dracut/hooks/' "$T/overlay.list" || fail "no dracut hook in the overlay: $(cat "$T/overlay.list")"
grep -qx 'lib' "$T/overlay.list" && fail "the overlay carries a /lib entry"

# ---- images, and the host's download events ----
events() { grep -c "event host=web17 .*phase=$1" "$T/agent.log"; }
[ "$(from "$HOST_ADDR" "$BASE/images/ks/vmlinuz")" = 200 ] || fail "kernel not 200"
cmp -s "$T/body" "$T/origin/vmlinuz" || fail "kernel differs from the origin's"
[ "$(from "$HOST_ADDR" "$BASE/images/ks/initrd.img")" = 200 ] || fail "initrd not 200"
[ "$(from "$OTHER_ADDR" "$BASE/images/ks/initrd.img")" = 200 ] || fail "initrd not served to others"
[ "$(from "$HOST_ADDR" "$BASE/images/ks/LiveOS/squashfs.img" --limit-rate 8M)" = 200 ] ||
    fail "stage2 not 200"
cmp -s "$T/body" "$T/origin/squashfs.img" || fail "stage2 differs from the origin's"
sleep 0.3
[ "$(events kernel_fetched)" = 1 ] || fail "expected one kernel_fetched event"
[ "$(events initrd_fetched)" = 1 ] || fail "expected one initrd_fetched (the other client is not the host)"
grep -q 'phase=stage2_progress percent=100' "$T/agent.log" || fail "no stage2 100% event"
grep -o 'phase=stage2_progress percent=[0-9]*' "$T/agent.log" | cut -d= -f3 | tr '\n' ' ' \
    >"$T/quarters"
[ "$(cat "$T/quarters")" = "25 50 75 100 " ] || fail "stage2 quarters: $(cat "$T/quarters")"
# a range is not the whole image
[ "$(from "$HOST_ADDR" "$BASE/images/ks/vmlinuz" -r 0-99)" = 206 ] || fail "range not 206"
sleep 0.2
[ "$(events kernel_fetched)" = 1 ] || fail "a range counted as the whole kernel"

# ---- the kickstart ----
[ "$(from "$HOST_ADDR" "$BASE/ks/$ID?token=$TOKEN")" = 200 ] || fail "kickstart not 200"
grep -q "network --hostname=web17 --ip=$HOST_ADDR" "$T/body" ||
    fail "kickstart not rendered: $(head -5 "$T/body")"
grep -q '^%pre' "$T/body" || fail "no %pre progress snippet"
grep -q "/progress/$ID?token=$TOKEN" "$T/body" || fail "no progress URL in the kickstart"
[ "$(from "$HOST_ADDR" "$BASE/ks/$ID?token=0000$TOKEN")" = 403 ] || fail "wrong token not 403"
[ "$(from "$HOST_ADDR" "$BASE/ks/$ID")" = 403 ] || fail "missing token not 403"
[ "$(from "$OTHER_ADDR" "$BASE/ks/$ID?token=$TOKEN")" = 403 ] || fail "kickstart served to another address"
[ "$(from "$FAR_ADDR" "$BASE/ks/$ID?token=$TOKEN")" = 403 ] ||
    fail "kickstart served to the host's EUI-64 under a prefix of no served link"
grep -q "token=$TOKEN" "$T/agent.log" && fail "the token appears in the agent's log"

# ---- progress ----
P="$BASE/progress/$ID?token=$TOKEN"
[ "$(from "$HOST_ADDR" "$BASE/progress/$ID?token=bad" -d phase=installing)" = 403 ] ||
    fail "progress with a wrong token not 403"
[ "$(from "$HOST_ADDR" "$P" -d phase=booting)" = 400 ] || fail "bad phase not 400"
# The token is no licence to speak for the host from elsewhere.
[ "$(from "$OTHER_ADDR" "$P" -d phase=installed)" = 403 ] ||
    fail "progress with the right token from another address not 403"
[ "$(from "$FAR_ADDR" "$P" -d phase=installed)" = 403 ] ||
    fail "progress from the host's EUI-64 under a prefix of no served link not 403"
[ "$(from "$HOST_ADDR" "$P" -d 'phase=installing&percent=40&message=packages')" = 200 ] ||
    fail "installing not accepted"
grep -q 'phase=installing percent=40 message=packages' "$T/agent.log" || fail "installing not logged"
grep -q 'phase=installed' "$T/agent.log" && fail "installed logged before it was posted"
# The deploy ramdisk's phases (image profiles) go through the same route.
[ "$(from "$HOST_ADDR" "$P" -d 'phase=writing&percent=37')" = 200 ] || fail "writing not accepted"
grep -q 'phase=writing percent=37' "$T/agent.log" || fail "writing not logged"
[ "$(from "$HOST_ADDR" "$P" -d phase=written)" = 200 ] || fail "written not accepted"
# Written: the host boots its disk now (no script), the install waits.
[ "$(from "$HOST_ADDR" "$BASE/boot/$CLI_MAC.ipxe")" = 404 ] || fail "a script served after written"
grep -qx "$ID" "$T/state/written" || fail "the written install is not remembered"
[ "$(from "$HOST_ADDR" "$P" -d phase=first_boot)" = 400 ] ||
    fail "first_boot taken on /progress/ (only the installed system's phone-home may say so)"
# cloud-init's phone_home: the same token and source rules, and the
# instance_id must be this install's.
PH="$BASE/phone-home/$ID?token=$TOKEN"
[ "$(from "$HOST_ADDR" "$BASE/phone-home/$ID?token=bad" -d "instance_id=$ID")" = 403 ] ||
    fail "phone-home with a wrong token not 403"
[ "$(from "$OTHER_ADDR" "$PH" -d "instance_id=$ID")" = 403 ] ||
    fail "phone-home from another address not 403"
[ "$(from "$HOST_ADDR" "$PH" -d "instance_id=i-0ther&hostname=web17")" = 409 ] ||
    fail "phone-home with another install's instance_id not 409"
grep -q 'phase=first_boot' "$T/agent.log" && fail "first_boot logged before a good phone-home"
[ "$(from "$HOST_ADDR" "$P" -d phase=installed)" = 200 ] || fail "installed not accepted"
[ "$(from "$HOST_ADDR" "$BASE/boot/$CLI_MAC.ipxe")" = 404 ] || fail "intent not withdrawn on installed"
grep -qx "$ID" "$T/state/completed" || fail "the completed install is not remembered"

reloaded() { [ "$(grep -c 'standalone hosts loaded (reload)' "$T/agent.log")" -ge "$1" ]; }
kill -HUP "$AGENT_PID"
wait_for 10 reloaded 1 || fail "no reload"
[ "$(from "$HOST_ADDR" "$BASE/boot/$CLI_MAC.ipxe")" = 404 ] || fail "a reload re-armed a completed install"

stop_agent
start_agent
[ "$(from "$HOST_ADDR" "$BASE/boot/$CLI_MAC.ipxe")" = 404 ] || fail "a restart re-armed a completed install"

# A changed entry is a new install.
sed -i 's/^cmdline = console=ttyS0$/cmdline = console=ttyS1/' "$T/hosts.conf"
kill -HUP "$AGENT_PID"
wait_for 10 reloaded 2 || fail "no second reload"
[ "$(from "$HOST_ADDR" "$BASE/boot/$CLI_MAC.ipxe")" = 200 ] || fail "a changed profile did not re-arm"
grep -q "inst.ks=[^ ]*/ks/$ID?" "$T/body" && fail "the new install kept the old id"

# A profile may opt out of the source check.
[ "$(from "$OTHER_ADDR" "$BASE/boot/$CLI_MAC.ipxe")" = 403 ] || fail "still served to others"
echo "source_check = no" >>"$T/hosts.conf"
kill -HUP "$AGENT_PID"
wait_for 10 reloaded 3 || fail "no third reload"
[ "$(from "$OTHER_ADDR" "$BASE/boot/$CLI_MAC.ipxe")" = 200 ] || fail "source_check = no not honoured"
KS=$(grep -o 'inst.ks=[^ ]*' "$T/body" | head -1 | cut -d= -f2-)
P=$(echo "$KS" | sed 's|/ks/|/progress/|')
[ "$(from "$FAR_ADDR" "$P" -d phase=installing)" = 200 ] ||
    fail "source_check = no: progress with the token not taken from any address"

# The installed system phones home: first_boot ends the install.
PH=$(echo "$KS" | sed 's|/ks/|/phone-home/|')
ID3=$(echo "$PH" | sed 's|.*/phone-home/||; s|?.*||')
[ "$(from "$FAR_ADDR" "$PH" -d "instance_id=$ID3&hostname=web17&fqdn=web17.example")" = 200 ] ||
    fail "phone-home not accepted"
grep -q "install=$ID3 phase=first_boot percent=100 message=\"booted from disk as web17\"" \
    "$T/agent.log" || fail "first_boot not logged as such"
[ "$(from "$OTHER_ADDR" "$BASE/boot/$CLI_MAC.ipxe")" = 404 ] || fail "intent not withdrawn on first_boot"
grep -qx "$ID3" "$T/state/completed" || fail "the phoned-home install is not remembered as completed"

echo "PASS: $TEST_NAME"

#!/bin/bash
# Real UEFI firmware netboots from the agent without a stall: OVMF's own PXEv6
# (VirtioNetDxe + NetworkPkg, the NIC's iPXE option ROM disabled) in QEMU/TCG
# over an IPv6-only bridge in a namespace of our own.
#
#   $SRV: br0 2001:db8:1::1/64 (radvd M+O, rackboot-agent DHCPv6 + TFTP,
#         busybox httpd) <-> tap0 <-> QEMU q35 + OVMF, virtio-net $VM_MAC
#
# The chain proved, from the agent's debug log, the HTTP log and the serial log:
#   OVMF DHCPv6: its IP6 config driver and its PXE driver, two clients under one
#   DUID-UUID with random IAIDs, both get the host's reserved address; the PXE
#   client's Request is answered within seconds of its Solicit (Advertise with
#   Preference 255, no retries for minutes)
#   -> option 59 tftp://[2001:db8:1::1]/ipxe.efi -> agent TFTP sends ipxe.efi
#   -> iPXE runs, its own DHCPv6 (user class iPXE) gets the SAME address
#   -> iPXE GETs http://[2001:db8:1::1]/boot/<mac>.ipxe (busybox httpd until the
#      agent serves HTTP) and runs it (serial shows the script's echo).
# A timeline (seconds since QEMU start) is printed. Typically ~60 s under TCG;
# everything is bounded by OVMF_DEADLINE (default 170 s).
#
# Needs root, ip netns, /dev/net/tun, qemu-system-x86_64, OVMF (package ovmf),
# /usr/lib/ipxe/ipxe.efi (package ipxe), radvd and busybox: otherwise SKIP (77).
# KEEP_TMP=1 keeps $T (agent.log, serial.log, http.log, boot.pcap).
. "$(dirname "$0")/dhcp6_lib.sh"

VM_MAC=52:54:00:0e:f1:01
VM_UUID=6a1f0c2e-0000-4000-8000-5254000ef101
RESERVED=2001:db8:1::17
SRV_IP=2001:db8:1::1
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
IPXE_EFI=/usr/lib/ipxe/ipxe.efi
DEADLINE=${OVMF_DEADLINE:-170}
QEMU_T0=""

[ -c /dev/net/tun ] || skip "no /dev/net/tun"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
[ -r "$OVMF_CODE" ] && [ -r "$OVMF_VARS" ] || skip "OVMF not installed ($OVMF_CODE)"
[ -r "$IPXE_EFI" ] || skip "$IPXE_EFI missing (package ipxe)"
command -v busybox >/dev/null || skip "busybox not installed"
command -v radvd >/dev/null || skip "radvd not installed"

# fail with the logs that tell what happened (the library's fail() knows
# only the plain-client logs).
fail() {
    echo "FAIL: $TEST_NAME: $*"
    for f in "$T"/agent.log "$T"/http.log "$T"/serial.log; do
        if [ -s "$f" ]; then
            echo "---- $f (last 40 lines)"
            tail -n 40 "$f" | cut -c1-220
        fi
    done
    if [ -s "$T/boot.pcap" ]; then
        sleep 0.3
        echo "---- DHCPv6/TFTP/HTTP packets on br0 (tcpdump -r $T/boot.pcap)"
        tcpdump -r "$T/boot.pcap" -n -tt 'udp port 547 or udp port 546 or udp port 69 or tcp port 80' \
            2>/dev/null | head -n 60
    fi
    exit 1
}

# stamp: prefixes each line with the wall clock (s.ns since the epoch).
stamp() {
    local l
    while IFS= read -r l; do
        printf '%s %s\n' "$(date +%s.%N)" "$l"
    done
}

# ---- the network: br0 with the tap for QEMU ---------------------------------
new_ns "$SRV"
ip -n "$SRV" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0 || fail "bridge"
ip -n "$SRV" addr add "$SRV_IP/64" dev br0 nodad
ip -n "$SRV" tuntap add dev tap0 mode tap || skip "cannot create a tap device"
ip -n "$SRV" link set tap0 master br0 up
ip -n "$SRV" link set br0 up
start_radvd "$SRV" br0

# ---- the agent: DHCPv6 on br0, TFTP with a real copy of ipxe.efi ------------
mkdir -p "$T/tftp" "$T/www/boot"
cp -L "$IPXE_EFI" "$T/tftp/ipxe.efi"
cat >"$T/agent.conf" <<EOC
[agent]
rack = test
state_dir = $T/state
advertise_address = $SRV_IP
gateway = $SRV_IP
log_level = debug

[dhcp6]
interfaces = br0
dns_servers = 2001:db8:1::53

# The agent's own HTTP server does not serve boot scripts yet: keep it on
# loopback so busybox httpd can take [$SRV_IP]:80 (the port in the boot URL).
[http]
listen = [::1]:80

[tftp]
listen = [::]:69
root = $T/tftp

[standalone]
hosts = hosts.conf
EOC
# Nothing fetches the profile's images in this test; the URLs point at a
# closed port of our own so a cache pre-warm fails at once and stays local.
cat >"$T/hosts.conf" <<EOH
[profile p]
kernel = http://[$SRV_IP]:9/vmlinuz sha256=$(printf '%064d' 1)
initrd = http://[$SRV_IP]:9/initrd.img sha256=$(printf '%064d' 2)

[host ovmf1]
mac = $VM_MAC
address = $RESERVED
install = p
EOH
start_agent
grep -q "tftp serving" "$T/agent.log" || fail "the agent does not serve TFTP"

# ---- the iPXE script, over HTTP -----------------------------------------------
# Served by busybox httpd until the agent's HTTP server serves /boot/<mac>.ipxe;
# then: [http] listen = [::]:80, no busybox, and the GET from the agent's log.
# Debian's iPXE (2019) has no poweroff: the script says so on the console and
# exits; the test ends once the GET and the echo are seen and kills QEMU.
printf '#!ipxe\necho rackboot-ovmf-ok ${net0/mac}\nexit\n' >"$T/www/boot/$VM_MAC.ipxe"
ip netns exec "$SRV" busybox httpd -f -vv -p "[$SRV_IP]:80" -h "$T/www" 2>&1 | stamp >"$T/http.log" &
wait_for 5 sh -c "ip netns exec $SRV ss -Hltn | grep -qF '[$SRV_IP]:80 '" || fail "busybox httpd did not start"

if command -v tcpdump >/dev/null; then
    ip netns exec "$SRV" tcpdump -i br0 -n -s 0 -U -w "$T/boot.pcap" >/dev/null 2>"$T/tcpdump.err" &
    wait_for 5 grep -q listening "$T/tcpdump.err"
fi

# ---- QEMU: q35 + OVMF, OVMF's own virtio-net driver and PXEv6 only ----------
cp "$OVMF_VARS" "$T/OVMF_VARS.fd"
# shellcheck disable=SC2054 # commas are QEMU option syntax
QEMU=(qemu-system-x86_64 -machine q35,accel=tcg -m 512 -smp 1
    -nographic -no-reboot -uuid "$VM_UUID"
    -drive "if=pflash,format=raw,readonly=on,file=$OVMF_CODE"
    -drive "if=pflash,format=raw,file=$T/OVMF_VARS.fd"
    -fw_cfg name=opt/org.tianocore/IPv4Support,string=no
    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no
    -device "virtio-net-pci,netdev=n0,mac=$VM_MAC,romfile=,bootindex=1")
QEMU_T0=$(date +%s.%N)
timeout "$DEADLINE" ip netns exec "$SRV" "${QEMU[@]}" </dev/null 2>&1 | stamp >"$T/serial.log" &

# ---- wait for the end of the chain ----------------------------------------------
script_fetched() {
    grep -q "url:/boot/$VM_MAC.ipxe" "$T/http.log" && grep -aq "rackboot-ovmf-ok" "$T/serial.log"
}
qemu_running() {
    pgrep -f -- "-uuid $VM_UUID" >/dev/null
}
i=0
while ! script_fetched; do
    i=$((i + 1))
    [ "$i" -ge $((DEADLINE * 2)) ] && fail "no iPXE script fetch within $DEADLINE s"
    if [ "$i" -gt 10 ] && ! qemu_running; then
        sleep 1
        script_fetched && break
        fail "QEMU exited before iPXE fetched its script"
    fi
    sleep 0.5
done
T_END=$(date +%s.%N)
sleep 1 # let the agent log what followed

# ---- assertions --------------------------------------------------------------------
# epoch seconds of an agent log line (2026-11-25T04:14:27.123Z ...)
agent_ts() {
    [ -n "$1" ] && date -u -d "${1%% *}" +%s.%N
}
rel() {
    if [ -n "${1:-}" ]; then
        awk -v a="$1" -v b="$QEMU_T0" 'BEGIN { printf "%6.2f", a - b }'
    else
        printf "%6s" "-"
    fi
}
bound_re="dhcp6 bound host=ovmf1 mac=$VM_MAC addr=$RESERVED duid=[0-9a-f]* client"
grep "dhcp6 bound " "$T/agent.log" | grep -v "$bound_re" &&
    fail "a bound line for another host, MAC or address"

pxe_bound=$(grep -c "$bound_re=uefi-pxe" "$T/agent.log")
[ "$pxe_bound" -ge 1 ] || fail "OVMF's PXE client never got $RESERVED"
# Both EDK2 clients (IP6 config driver and PXE driver) are served: replies go
# to two different IAIDs under the firmware's DUID (see the pcap for them).
fw_bound=$(grep "$bound_re" "$T/agent.log" | grep -vc "client=ipxe")
[ "$fw_bound" -ge 2 ] || fail "only $fw_bound firmware client(s) got $RESERVED (expected 2: IP6 config + PXE)"
grep -q "$bound_re=ipxe" "$T/agent.log" || fail "iPXE never got $RESERVED"
grep -q "tftp done file=ipxe.efi" "$T/agent.log" || fail "ipxe.efi not served over TFTP"
# busybox httpd logs the decoded path; iPXE sent /boot/52%3A54%3A00...
grep -q "url:/boot/$VM_MAC.ipxe" "$T/http.log" || fail "GET of /boot/$VM_MAC.ipxe missing from the HTTP log"
grep -A1 "url:/boot/$VM_MAC.ipxe" "$T/http.log" | grep -q "response:200" || fail "GET of the script not answered 200"

# The timeline. The VM's link-local (EUI-64 of its MAC) is the source of
# every firmware and iPXE DHCPv6 message on this link.
IFS=: read -r m1 m2 m3 m4 m5 m6 <<<"$VM_MAC"
ll=$(printf 'fe80::%x:%x:%x:%x' $(((0x$m1 ^ 2) << 8 | 0x$m2)) $((0x$m3 << 8 | 0xff)) \
    $((0xfe << 8 | 0x$m4)) $((0x$m5 << 8 | 0x$m6)))
line_of() { grep -m1 -- "$1" "$T/agent.log"; }
t_sol=$(agent_ts "$(line_of "dhcp6 rx type=solicit src=$ll")")
t_req=$(agent_ts "$(line_of "dhcp6 rx type=request src=$ll")")
t_fw1=$(agent_ts "$(grep "$bound_re" "$T/agent.log" | grep -v client=ipxe | sed -n 1p)")
t_fw2=$(agent_ts "$(grep "$bound_re" "$T/agent.log" | grep -v client=ipxe | sed -n 2p)")
t_pxe=$(agent_ts "$(line_of "$bound_re=uefi-pxe")")
t_tftp0=$(agent_ts "$(line_of "tftp start file=ipxe.efi")")
t_tftp=$(agent_ts "$(line_of "tftp done file=ipxe.efi")")
t_ipxe=$(agent_ts "$(line_of "$bound_re=ipxe")")
t_get=$(grep -m1 "url:/boot/" "$T/http.log" | cut -d' ' -f1)
t_echo=$(grep -m1 "rackboot-ovmf-ok" "$T/serial.log" | cut -d' ' -f1)
t_banner=$(grep -m1 -a "iPXE initialising devices" "$T/serial.log" | cut -d' ' -f1)

echo "timeline of $TEST_NAME (s since QEMU start; VM $VM_MAC $ll, reserved $RESERVED)"
echo "  $(rel "$t_sol")  first DHCPv6 Solicit from the firmware"
echo "  $(rel "$t_req")  first Request"
echo "  $(rel "$t_fw1")  firmware client 1 bound  ($(grep "$bound_re" "$T/agent.log" | grep -v client=ipxe | sed -n 1p | sed 's/.*client=\([^ ]*\).*/\1/'))"
echo "  $(rel "$t_fw2")  firmware client 2 bound  ($(grep "$bound_re" "$T/agent.log" | grep -v client=ipxe | sed -n 2p | sed 's/.*client=\([^ ]*\).*/\1/'))"
echo "  $(rel "$t_tftp0")  TFTP RRQ ipxe.efi"
echo "  $(rel "$t_tftp")  TFTP ipxe.efi done: $(line_of "tftp done file=ipxe.efi" | sed 's/.*bytes=\([0-9]*\).*/\1 bytes/')"
echo "  $(rel "$t_banner")  iPXE banner on the console"
echo "  $(rel "$t_ipxe")  iPXE bound (client=ipxe, same address)"
echo "  $(rel "$t_get")  GET /boot/$VM_MAC.ipxe"
echo "  $(rel "$t_echo")  script ran: $(grep -m1 -a -o "rackboot-ovmf-ok[^\r]*" "$T/serial.log" | tr -d '\r\033')"
echo "  $(rel "$T_END")  test saw the end of the chain"

# No stall: from the PXE client's first Solicit to its bound Reply takes
# seconds (Preference 255: no 5 s collection wait, no refusal and retry).
# The PXE driver starts after the IP6 config driver; its Solicit is the last
# Solicit before its bound line.
t_pxe_sol=$(awk -v lim="$(line_of "$bound_re=uefi-pxe" | cut -d' ' -f1)" -v src="src=$ll" \
    '$1 <= lim && /dhcp6 rx type=solicit/ && index($0, src) { t = $1 } END { print t }' "$T/agent.log")
[ -n "$t_pxe_sol" ] || fail "no Solicit before the PXE client's bound line"
pxe_wait=$(awk -v a="$t_pxe" -v b="$(agent_ts "$t_pxe_sol")" 'BEGIN { printf "%.2f", a - b }')
echo "  PXE client: Solicit -> bound Reply in $pxe_wait s; firmware bound lines: $fw_bound (uefi-pxe: $pxe_bound)"
awk -v w="$pxe_wait" 'BEGIN { exit !(w < 4) }' ||
    fail "the PXE client's Solicit took $pxe_wait s to be answered with a bound Reply (a stall)"
awk -v a="$t_ipxe" -v b="$QEMU_T0" 'BEGIN { exit !(a - b < 150) }' || fail "the chain took too long"

# The firmware's and iPXE's DUIDs (DUID-UUID, first three UUID fields
# byte-swapped between them) both map to the one host.
grep "$bound_re" "$T/agent.log" | sed 's/.*duid=\([0-9a-f]*\) client=\([^ ]*\).*/  duid \1 client \2/' | sort -u
# From the capture: every Reply that gave the reserved address, by IAID (the
# firmware's two random IAIDs and iPXE's).
if [ -s "$T/boot.pcap" ]; then
    sleep 0.3
    iaids=$(tcpdump -r "$T/boot.pcap" -n -vv 'udp port 546' 2>/dev/null |
        grep -o "dhcp6 reply .*IAID:[0-9]* T1:[1-9][0-9]* T2:[0-9]* (IA_ADDR $RESERVED " |
        sed 's/.*IAID:\([0-9]*\).*/\1/' | sort -u | tr '\n' ' ')
    echo "  IAIDs given $RESERVED in a Reply: $iaids"
    [ "$(echo "$iaids" | wc -w)" -ge 3 ] || fail "expected 3 IAIDs (IP6 config, PXE, iPXE) to get $RESERVED: $iaids"
fi
echo "PASS: $TEST_NAME"

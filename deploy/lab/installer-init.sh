#!/bin/sh
# /init of the lab's fake installer (busybox-static, PID 1). It does what
# Anaconda and its dracut modules do where rackboot is concerned, in the same
# order, from the same kernel command line:
#
#   1. ifname=bootnet:<mac>   find the NIC with that MAC, name it bootnet
#      ip=[ADDR]::[GW]:PREFIX:HOSTNAME:bootnet:none
#                             static IPv6 address, default route, hostname
#      nameserver=ADDR        /etc/resolv.conf
#   2. inst.ks=URL            fetch the kickstart (dracut: fetch-kickstart-net)
#   3. inst.stage2=URL        fetch URL/LiveOS/squashfs.img (dracut: anaconda-netroot)
#                             and check it: rackboot.stage2_size=N and
#                             rackboot.stage2_sha256=HEX (from the profile's cmdline)
#   4. the kickstart's %pre   posts phase=installing to the progress URL the
#                             rendered kickstart carries (/progress/<id>?token=...)
#   5. "installing"           posts installing with percent and a message
#   6. %post --nochroot       posts phase=installed
#   7. reboot                 powers the VM off (QEMU runs with -no-reboot)
# Any failure posts phase=failed (the kickstart's %onerror) when it can, then
# powers off. Every network wait is bounded.
#
# busybox 1.35's `wget -T N` crashes (Debian's static and dynamic builds
# alike): the timeout applet bounds each wget instead.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
set -f # the kernel command line holds URLs with '?' and '['

up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "rackboot-installer: t=$(up) $*"; }
off() {
    say "powering off"
    sleep 1
    poweroff -f
    sleep 30
}

PROGRESS=""
# post PHASE PERCENT MESSAGE: the installer's progress callback, form-encoded
# (messages here are plain words; spaces become '+').
post() {
    if [ -z "$PROGRESS" ]; then
        say "no progress URL: cannot post phase=$1"
        return 1
    fi
    msg=$(echo "$3" | sed 's/ /+/g')
    n=0
    while [ $n -lt 5 ]; do
        if timeout 15 wget -q -O /tmp/post.out --post-data "phase=$1&percent=$2&message=$msg" \
            "$PROGRESS"; then
            say "posted phase=$1 percent=$2 message=$3"
            return 0
        fi
        n=$((n + 1))
        sleep 2
    done
    say "POST phase=$1 failed 5 times"
    return 1
}
fail() {
    say "FAILED: $*"
    post failed 0 "$*"
    off
}

# fetch URL FILE SECONDS: GET with retries (the link may still be settling).
fetch() {
    n=0
    while [ $n -lt 5 ]; do
        rm -f "$2"
        if timeout "$3" wget -q -O "$2" "$1"; then
            return 0
        fi
        n=$((n + 1))
        say "GET $1 failed (try $n)"
        sleep 2
    done
    return 1
}

say "started, kernel $(cat /proc/sys/kernel/osrelease)"
IPARG="" IFNAME="" KS="" STAGE2="" DNS="" WANT_SIZE="" WANT_SHA=""
# shellcheck disable=SC2013 # words, not lines
for kv in $(cat /proc/cmdline); do
    case "$kv" in
    ip=*) IPARG=${kv#ip=} ;;
    ifname=*) IFNAME=${kv#ifname=} ;;
    inst.ks=*) KS=${kv#inst.ks=} ;;
    inst.stage2=*) STAGE2=${kv#inst.stage2=} ;;
    nameserver=*) DNS="$DNS ${kv#nameserver=}" ;;
    rackboot.stage2_size=*) WANT_SIZE=${kv#rackboot.stage2_size=} ;;
    rackboot.stage2_sha256=*) WANT_SHA=${kv#rackboot.stage2_sha256=} ;;
    esac
done
[ -n "$KS" ] || fail "no inst.ks= on the command line"

# ---- 1. the network, as dracut sets it up from ip= and ifname= --------------
echo 0 >/proc/sys/net/ipv6/conf/default/accept_dad
# shellcheck disable=SC2013
for m in $(cat /lib/modules/load.order); do
    insmod "/lib/modules/$m.ko" 2>/dev/null || say "insmod $m failed"
done

case "$IFNAME" in
bootnet:??:??:??:??:??:??) WANT_MAC=$(echo "${IFNAME#bootnet:}" | tr 'A-F' 'a-f') ;;
*) fail "ifname= is not bootnet:<mac>: '$IFNAME'" ;;
esac
DEV=""
n=0
while [ -z "$DEV" ]; do
    set +f
    for d in /sys/class/net/*; do
        [ "$(cat "$d/address" 2>/dev/null)" = "$WANT_MAC" ] && DEV=${d##*/}
    done
    set -f
    [ -n "$DEV" ] && break
    n=$((n + 1))
    [ $n -gt 100 ] && fail "no NIC with MAC $WANT_MAC"
    sleep 0.1
done
DRIVER=$(basename "$(readlink "/sys/class/net/$DEV/device/driver")")
ip link set dev "$DEV" name bootnet || fail "cannot rename $DEV to bootnet"
echo 0 >/proc/sys/net/ipv6/conf/bootnet/accept_dad
say "NIC $DEV ($DRIVER, $WANT_MAC) is bootnet"

# ip=[ADDR]::[GW]:PREFIX:HOSTNAME:bootnet:none (dracut.cmdline(7), IPv6 in
# brackets, the prefix length in the netmask field).
eval "$(echo "$IPARG" | sed -nE 's/^\[([0-9a-fA-F:]+)\]::(\[([0-9a-fA-F:]+)\])?:([0-9]+):([A-Za-z0-9.-]*):bootnet:none$/ADDR=\1 GW=\3 PLEN=\4 HN=\5/p')"
{ [ -n "${ADDR:-}" ] && [ -n "${PLEN:-}" ]; } || fail "cannot parse ip=$IPARG (only the static form is supported here)"
ip link set bootnet up || fail "cannot bring bootnet up"
ip -6 addr add "$ADDR/$PLEN" dev bootnet || fail "cannot add $ADDR/$PLEN"
if [ -n "${GW:-}" ]; then
    # replace: a router advertisement may have brought a default route first
    ip -6 route replace default via "$GW" dev bootnet || fail "cannot set the default route via $GW"
fi
[ -n "${HN:-}" ] && hostname "$HN"
: >/etc/resolv.conf
for d in $DNS; do echo "nameserver $d" >>/etc/resolv.conf; done
say "bootnet $ADDR/$PLEN gw ${GW:-none} hostname ${HN:-none} dns$DNS"

# The overlay initrd (rackboot's: named overlay.img on an iPXE kernel line,
# or inside a UKI's .initrd, which names nothing): the kernel must have
# unpacked its dracut hook, and dracut sources the hooks in initqueue/online
# with the interface as $1 once the interface is up.
HOOKS=/usr/lib/dracut/hooks/initqueue/online
# Without it Anaconda would carry on (and maybe race router discovery): so
# does this installer, saying so on the console for the test to see.
if [ -n "$(ls "$HOOKS" 2>/dev/null)" ]; then
    set +f
    for hook in "$HOOKS"/*; do
        say "sourcing overlay hook ${hook##*/}"
        set -- bootnet
        # shellcheck disable=SC1090 # the agent's hook, as dracut sources it
        . "$hook"
    done
    set -f
    say "overlay hook done: $(ip -6 route show default | head -n 1)"
elif grep -q 'initrd=overlay.img' /proc/cmdline; then
    say "OVERLAY MISSING: initrd=overlay.img is on the kernel line but no hook is in $HOOKS (the kernel did not unpack it)"
fi

# ---- 2. the kickstart ----------------------------------------------------------
fetch "$KS" /tmp/ks.cfg 20 || fail "cannot fetch the kickstart"
say "kickstart fetched, $(wc -c </tmp/ks.cfg) bytes: $(grep -m1 '^network' /tmp/ks.cfg)"
# The progress URL from the rendered %pre (curl ... -d phase=installing "URL").
PROGRESS=$(grep -o 'http://[^"'"'"' ]*/progress/[^"'"'"' ]*' /tmp/ks.cfg | head -n 1)
[ -n "$PROGRESS" ] || fail "no /progress/ URL in the kickstart"
grep -q '^%post --nochroot' /tmp/ks.cfg || fail "the kickstart has no %post --nochroot"
grep -q '^%onerror' /tmp/ks.cfg || fail "the kickstart has no %onerror"

# ---- 3. stage2 -------------------------------------------------------------------
[ -n "$STAGE2" ] || fail "no inst.stage2= on the command line"
T_STAGE2=$(up)
fetch "${STAGE2%/}/LiveOS/squashfs.img" /tmp/squashfs.img 120 || fail "cannot fetch stage2"
say "stage2 fetched in $(awk -v a="$(up)" -v b="$T_STAGE2" 'BEGIN { printf "%.2f", a - b }') s"
SIZE=$(wc -c </tmp/squashfs.img)
SHA=$(sha256sum /tmp/squashfs.img | cut -d' ' -f1)
[ -z "$WANT_SIZE" ] || [ "$SIZE" = "$WANT_SIZE" ] || fail "stage2 is $SIZE bytes, expected $WANT_SIZE"
[ -z "$WANT_SHA" ] || [ "$SHA" = "$WANT_SHA" ] || fail "stage2 sha256 $SHA, expected $WANT_SHA"
say "stage2 ok: $SIZE bytes, sha256 $SHA"
rm -f /tmp/squashfs.img

# ---- 4-6. what the kickstart's %pre, the install and %post would post -----------
post installing 0 "pre script" || fail "cannot post installing"
post installing 40 "installing packages" || fail "cannot post progress"
sleep 1
post installing 90 "installing bootloader" || fail "cannot post progress"
post installed 100 "post script done" || fail "cannot post installed"
say "install complete"
off

#!/bin/sh
# /init of rackboot's deploy ramdisk (busybox sh). Brings up the host's
# static IPv6 address, waits for the default route and the agent, runs
# rackboot-deploy, and reboots into the written disk.
#
# Kernel command line (what the agent renders for an image profile; the
# first four are the same words render/cmdline.c writes for the
# kickstart flow, so one renderer serves both):
#   ifname=bootnet:MAC             the interface to use, by MAC (or BOOTIF=01-aa-bb-..)
#   ip=[ADDR]::[GW]:PLEN:HOSTNAME:bootnet:none
#                                  dracut's static form; the gateway is required
#   rackboot.root_device=auto|/dev/..  passed to --root-device (default auto)
#   rackboot.image=URL             the image (raw, .zst, .xz)            required
#   rackboot.image_sha256=HEX      its sha256 as served                  required
#   rackboot.image_size=BYTES      uncompressed size, checked first      optional
#   rackboot.progress=URL          where progress is POSTed              optional
#   rackboot.seed=URL              NoCloud seed base URL (URL/meta-data, ...)  optional
#   rackboot.wait=SECONDS          how long to wait for route and agent (default 60)
#   rackboot.fail_delay=SECONDS    on failure, keep the console this long,
#                                  then power off (default 600)
# nameserver= and anything else is ignored (URLs carry addresses).
PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH

say() { echo "rackboot-ramdisk: $*" > /dev/console; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
exec < /dev/console > /dev/console 2>&1

fail() {
    say "FAILED: $*"
    delay=${fail_delay:-600}
    say "console shell for $delay s, then power off"
    setsid cttyhack sh &
    sleep "$delay"
    poweroff -f
}

# ---- the command line ----
mac="" addr="" gw="" plen="" root=auto image="" sha="" size="" progress="" seed=""
wait_s=60 fail_delay=600
for w in $(cat /proc/cmdline); do
    case "$w" in
    ifname=bootnet:*) mac=${w#ifname=bootnet:} ;;
    BOOTIF=01-*) [ -n "$mac" ] || mac=$(echo "${w#BOOTIF=01-}" | tr '-' ':') ;;
    ip=\[*)
        # ip=[ADDR]::[GW]:PLEN:HOST:IF:none
        rest=${w#ip=[}
        addr=${rest%%]*}
        rest=${rest#*]::}
        case "$rest" in
        \[*) gw=${rest#[}; gw=${gw%%]*}; rest=${rest#*]:} ;;
        *) rest=${rest#:} ;;
        esac
        plen=${rest%%:*}
        ;;
    rackboot.root_device=*) root=${w#*=} ;;
    rackboot.image=*) image=${w#*=} ;;
    rackboot.image_sha256=*) sha=${w#*=} ;;
    rackboot.image_size=*) size=${w#*=} ;;
    rackboot.progress=*) progress=${w#*=} ;;
    rackboot.seed=*) seed=${w#*=} ;;
    rackboot.wait=*) wait_s=${w#*=} ;;
    rackboot.fail_delay=*) fail_delay=${w#*=} ;;
    esac
done
mac=$(echo "$mac" | tr 'A-F' 'a-f')
[ -n "$mac" ] || fail "no ifname=bootnet:MAC or BOOTIF= on the command line"
[ -n "$addr" ] && [ -n "$plen" ] && [ -n "$gw" ] || fail "no ip=[ADDR]::[GW]:PLEN:... on the command line"
[ -n "$image" ] && [ -n "$sha" ] || fail "no rackboot.image= or rackboot.image_sha256="

# ---- drivers: everything in modules.dep that matches the hardware would need
# udev; load the short list the ramdisk carries instead (absent hardware:
# the module loads and finds nothing). ----
say "loading drivers"
for m in $(cat /lib/modules/load.list); do
    modprobe -q "$m" 2>/dev/null
done

# ---- the interface with that MAC ----
ifc=""
i=0
while [ -z "$ifc" ] && [ $i -lt 30 ]; do
    for d in /sys/class/net/*; do
        [ "$(cat "$d/address" 2>/dev/null)" = "$mac" ] && ifc=${d##*/}
    done
    [ -n "$ifc" ] || { sleep 1; i=$((i + 1)); }
done
[ -n "$ifc" ] || fail "no interface with MAC $mac"
say "interface $ifc ($mac): $addr/$plen via $gw"
ip link set lo up
# No SLAAC address of its own: the host has exactly the address it was given.
echo 0 > "/proc/sys/net/ipv6/conf/$ifc/autoconf"
# Nor a default route from router advertisements: the gateway it was given.
# (An RA's route, there first, made "ip -6 route add default" fail with
# "File exists" and the wait below run its whole length.)
echo 0 > "/proc/sys/net/ipv6/conf/$ifc/accept_ra"
# No duplicate address detection: the address is the host's by reservation,
# and DAD would hold it tentative for a second or more (busybox ip has no
# "nodad"; the sysctl does the same for this interface).
echo 0 > "/proc/sys/net/ipv6/conf/$ifc/accept_dad"
ip link set "$ifc" up
ip -6 addr add "$addr/$plen" dev "$ifc" || fail "cannot add $addr/$plen to $ifc"

# ---- the default route, then the agent answering a ping (the seed's dracut
# race: a link that is up is not yet a link that passes packets) ----
# The agent: the image URL's host (an address literal, [..] for IPv6).
agent=${image#*://}
agent=${agent%%/*}
case "$agent" in
\[*) agent=${agent#[}; agent=${agent%%]*} ;;
*) agent=${agent%%:*} ;;
esac
t0=$(cut -d' ' -f1 /proc/uptime)
i=0
while :; do
    ip -6 route show default | grep -q "via $gw" ||
        ip -6 route replace default via "$gw" dev "$ifc" 2>/dev/null
    if ip -6 route show default | grep -q "via $gw" && ping -c 1 -W 1 "$agent" >/dev/null 2>&1; then
        break
    fi
    i=$((i + 1))
    if [ $i -ge "$wait_s" ]; then
        say "the agent does not answer after $wait_s s; trying anyway"
        break
    fi
    sleep 1
done
say "network up after $(awk -v a="$t0" '{ printf "%.1f", $1 - a }' /proc/uptime) s"

# ---- the deploy ----
set -- --url "$image" --sha256 "$sha" --root-device "$root"
[ -z "$size" ] || set -- "$@" --image-size "$size"
[ -z "$progress" ] || set -- "$@" --progress-url "$progress"
[ -z "$seed" ] || set -- "$@" --seed-url "$seed"
if rackboot-deploy "$@"; then
    sync
    say "deployed; rebooting"
    reboot -f
    sleep 10
fi
fail "rackboot-deploy failed"

#!/bin/sh
# initqueue/online, sourced by ifup with the interface as $1: fetch the
# kickstart named by inst.ks= at once, as Anaconda's hook does (no wait for a
# route: that is the seed's gotcha #1), report, power off.
command -v getarg >/dev/null || . /lib/dracut-lib.sh
. /lib/url-lib.sh
# curl 7.88's error line no longer carries the errno ("Couldn't connect to
# server"); its verbose lines do ("Immediate connect fail for ...: Network is
# unreachable"). Verbose changes nothing else about the fetch.
curl_args="$curl_args --verbose"

rb_ks=$(getarg inst.ks=)
if [ -n "$rb_ks" ] && [ ! -e /tmp/rackboot-ks.done ]; then
    : >/tmp/rackboot-ks.done
    echo "rackboot-ks: fetching $rb_ks on $1" >/dev/console
    if fetch_url "$rb_ks" /tmp/ks.cfg 2>/tmp/rackboot-ks.err; then
        echo "rackboot-ks: RESULT fetched $(wc -c </tmp/ks.cfg) bytes" >/dev/console
    else
        echo "rackboot-ks: RESULT failed: $(grep '^curl: \|connect fail' /tmp/rackboot-ks.err | tr '\n' ' ')" >/dev/console
    fi
    echo "rackboot-ks: routes: $(ip -6 route show default | tr '\n' ' ')" >/dev/console
    sleep 1
    echo o >/proc/sysrq-trigger
fi
unset rb_ks

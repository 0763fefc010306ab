#!/bin/sh
# cmdline hook: with inst.ks= the "root" is the network install, as
# Anaconda's dracut module declares it (its root=anaconda-net:...): dracut
# then brings the network up (rd.neednet=1) instead of refusing to boot
# without a root= device.
command -v getarg >/dev/null || . /lib/dracut-lib.sh
if [ -z "$root" ] && [ -n "$(getarg inst.ks=)" ]; then
    root=rackboot-ks
    rootok=1
fi

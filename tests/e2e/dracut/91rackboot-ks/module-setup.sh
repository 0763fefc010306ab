#!/bin/bash
# dracut module for tests/e2e/dracut_race.sh: an initqueue/online hook that
# fetches inst.ks the way Anaconda's 11-fetch-kickstart-net.sh does (dracut's
# url-lib fetch_url, once, as soon as the interface is online), says on the
# console how it went, and powers the VM off.

check() {
    return 0
}

depends() {
    echo network-legacy url-lib
}

install() {
    inst_hook cmdline 90 "$moddir/parse-rackboot-ks.sh"
    inst_hook initqueue/online 11 "$moddir/fetch-kickstart-net.sh"
    inst_multiple curl wc tr grep
}

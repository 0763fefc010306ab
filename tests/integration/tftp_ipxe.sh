#!/bin/bash
# The default TFTP root (STATE_DIR/tftp) is filled on start with real copies
# of Debian's /usr/lib/ipxe/ipxe.efi (a symlink into /boot, which the root
# must not follow) and snponly.efi, served byte-identical the way iPXE and
# EDK2 ask (blksize 1432 + tsize; blksize 1228 + windowsize 4).
. "$(dirname "$0")/tftp_lib.sh"
[ -e /usr/lib/ipxe/ipxe.efi ] || skip "Debian package ipxe not installed"

setup_tftp_link
TFTP_DEFAULT_ROOT=1 write_tftp_config
start_tftp_agent

root="$T/state/tftp"
grep -q "tftp root seeded file=ipxe.efi from=/usr/lib/ipxe/ipxe.efi root=$root" "$T/agent.log" ||
    fail "no seeding log line"
if [ ! -f "$root/ipxe.efi" ] || [ -L "$root/ipxe.efi" ]; then
    fail "ipxe.efi is not a real file in $root"
fi
cmp /usr/lib/ipxe/ipxe.efi "$root/ipxe.efi" || fail "seeded ipxe.efi differs"

atftp_get ipxe.efi "$T/got" --option "blksize 1432" --option "tsize 0" ||
    fail "atftp ipxe.efi: $(cat "$T/atftp.out")"
cmp /usr/lib/ipxe/ipxe.efi "$T/got" || fail "ipxe.efi (iPXE's options) differs"
atftp_get ipxe.efi "$T/got" --option "blksize 1228" --option "windowsize 4" ||
    fail "atftp ipxe.efi windowsize: $(cat "$T/atftp.out")"
cmp /usr/lib/ipxe/ipxe.efi "$T/got" || fail "ipxe.efi (EDK2's options) differs"
hpa_get ipxe.efi "$T/got" || fail "tftp-hpa ipxe.efi: $(cat "$T/tftp.out")"
cmp /usr/lib/ipxe/ipxe.efi "$T/got" || fail "ipxe.efi (tftp-hpa) differs"
if [ -e /usr/lib/ipxe/snponly.efi ]; then
    hpa_get snponly.efi "$T/got" || fail "tftp-hpa snponly.efi: $(cat "$T/tftp.out")"
    cmp /usr/lib/ipxe/snponly.efi "$T/got" || fail "snponly.efi differs"
fi
# blksize 1432 is above our 1428 cap: granted 1428.
wait_log "tftp done file=ipxe.efi .* blksize=1428 windowsize=1 " || fail "no done line (1428)"

# A restart keeps the copies and does not copy again.
stop_agent
start_tftp_agent
[ "$(grep -c "tftp root seeded file=ipxe.efi" "$T/agent.log")" = 1 ] || fail "copied twice"
stop_agent
echo "PASS: $TEST_NAME"

#!/bin/bash
# Protocol cases driven by a raw client (tftp_probe.py): EDK2's tsize probe
# + ERROR 8 + real request (windowsize 4) counted as an abort, not a
# failure; ERROR 5 to a stranger while the transfer goes on; duplicate ACKs
# cause no resend; lost ACKs cause resends with backoff, then the transfer
# fails; the max_transfers limit answers ERROR 0 "Server busy".
. "$(dirname "$0")/tftp_lib.sh"
command -v python3 >/dev/null || skip "python3 not installed"
PROBE="$(dirname "$0")/tftp_probe.py"

setup_tftp_link
write_tftp_config "max_transfers = 2
timeout_ms = 200
retries = 3"
head -c 850528 /dev/urandom >"$ROOT/ipxe.efi"
head -c 4000 /dev/urandom >"$ROOT/small.bin"
start_tftp_agent

probe() {
    in_cli python3 "$PROBE" "$@" >>"$T/probe.out" 2>&1 || fail "probe $1: $(tail -3 "$T/probe.out")"
}

probe edk2 "$SERVER6" ipxe.efi "$ROOT/ipxe.efi"
wait_log "tftp aborted by client file=ipxe.efi .* error=8 message=\"User aborted\"" ||
    fail "EDK2 probe not logged as an abort"
wait_log "tftp done file=ipxe.efi .* bytes=850528 blksize=1228 windowsize=4 " ||
    fail "EDK2 transfer not done"

probe tid "$SERVER6" small.bin
probe dupack "$SERVER6" small.bin
# 200 ms, then 400, 800 (the cap is 8x): 3 retransmissions, then failure.
probe lost "$SERVER6" small.bin 3
wait_log "tftp failed file=small.bin .* reason=timeout " || fail "lost ACKs: no failure logged"
# Two transfers held open (no ACKs), the third is refused.
probe busy "$SERVER6" small.bin 2
# Once the held ones time out (3 s each), requests are served again.
timeouts() {
    [ "$(grep -c "tftp failed file=small.bin .* reason=timeout " "$T/agent.log")" -ge 3 ]
}
wait_for 8 timeouts || fail "held transfers did not time out"
hpa_get small.bin "$T/got" || fail "not served after the busy period: $(cat "$T/tftp.out")"
cmp "$ROOT/small.bin" "$T/got" || fail "small.bin differs"

stop_agent
stats=$(grep "tftp stats why=shutdown" "$T/agent.log")
case $stats in *" aborted=1 "*) ;; *) fail "EDK2 probe not counted as aborted: $stats" ;; esac
case $stats in *" busy=1 "*) ;; *) fail "busy not counted: $stats" ;; esac
case $stats in *" unknown_tid=1 "*) ;; *) fail "unknown TID not counted: $stats" ;; esac
cat "$T/probe.out"
echo "PASS: $TEST_NAME"

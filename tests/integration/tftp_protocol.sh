#!/bin/bash
# Protocol cases driven by a raw client (tftp_probe.py): EDK2's tsize probe
# + ERROR 8 + real request (windowsize 4) counted as an abort, not a
# failure; ERROR 5 to a stranger while the transfer goes on; duplicate ACKs
# cause no resend; lost ACKs cause resends with backoff, then the transfer
# fails; a silent client that asked timeout=255 gets no timeout in its OACK
# (the server would not honour it), the OACK again within seconds, and loses
# its slot within the server's own limit (issue #10); a client that asked
# timeout=60 gets a lost DATA sent again; the per-address limit (its
# default, not configured) and the max_transfers limit answer ERROR 0.
. "$(dirname "$0")/tftp_lib.sh"
command -v python3 >/dev/null || skip "python3 not installed"
PROBE="$(dirname "$0")/tftp_probe.py"
SERVER4=192.0.2.1

setup_tftp_link
# max_transfers_per_source is left at its default, 8.
write_tftp_config "max_transfers = 9
timeout_ms = 500
retries = 3"
head -c 850528 /dev/urandom >"$ROOT/ipxe.efi"
head -c 4000 /dev/urandom >"$ROOT/small.bin"
head -c 1000000 /dev/urandom >"$ROOT/stall.bin"
start_tftp_agent

# --rto: timeout_ms below, for the probe's timing checks.
probe() {
    in_cli python3 "$PROBE" --rto 0.5 "$@" >>"$T/probe.out" 2>&1 ||
        fail "probe $1: $(tail -3 "$T/probe.out")"
}

probe edk2 "$SERVER6" ipxe.efi "$ROOT/ipxe.efi"
wait_log "tftp aborted by client file=ipxe.efi .* error=8 message=\"User aborted\"" ||
    fail "EDK2 probe not logged as an abort"
wait_log "tftp done file=ipxe.efi .* bytes=850528 blksize=1228 windowsize=4 " ||
    fail "EDK2 transfer not done"

probe tid "$SERVER6" small.bin
probe dupack "$SERVER6" small.bin
# 500 ms, then 1 s, 2 s (the cap is 8x): 3 retransmissions, then failure.
probe lost "$SERVER6" small.bin 3
wait_log "tftp failed file=small.bin .* reason=timeout " || fail "lost ACKs: no failure logged"

# The review's case: timeout=60 acknowledged and then not honoured gave a
# lost DATA no resend at all; now the OACK leaves it out and DATA goes again.
probe longtimeout "$SERVER6" small.bin

# timeout=255, no ACK: not in the OACK, the OACK again at 0.5 s, the
# transfer given up once the server's own 0.5 + 1 + 2 + 4 = 7.5 s have passed
# without progress. (12 s: room for a late timer on a busy machine, well
# short of the 20 s a 5 s schedule would take; ms is the agent's own clock.)
probe stall "$SERVER6" stall.bin
line=$(grep "tftp failed file=stall.bin .* reason=timeout " "$T/agent.log") ||
    fail "silent client's transfer not given up"
ms=$(sed -n 's/.* ms=\([0-9]*\).*/\1/p' <<<"$line")
[ "${ms:-999999}" -le 12000 ] || fail "silent client held its slot ${ms} ms: $line"

# Eight transfers held open (no ACKs) from 2001:db8:1::2, a ninth from it
# refused; one from its IPv4 address served, and then the server is busy.
probe limits "$SERVER6" small.bin 8 "$SERVER4"
# Once the held ones time out (7.5 s each), requests are served again.
timeouts() {
    [ "$(grep -c "tftp failed file=small.bin .* reason=timeout " "$T/agent.log")" -ge 10 ]
}
wait_for 30 timeouts || fail "held transfers did not time out"
hpa_get small.bin "$T/got" || fail "not served after the busy period: $(cat "$T/tftp.out")"
cmp "$ROOT/small.bin" "$T/got" || fail "small.bin differs"

stop_agent
stats=$(grep "tftp stats why=shutdown" "$T/agent.log")
case $stats in *" aborted=1 "*) ;; *) fail "EDK2 probe not counted as aborted: $stats" ;; esac
case $stats in *" busy=1 "*) ;; *) fail "busy not counted: $stats" ;; esac
case $stats in *" per_source=1 "*) ;; *) fail "per-source refusal not counted: $stats" ;; esac
case $stats in *" unknown_tid=1 "*) ;; *) fail "unknown TID not counted: $stats" ;; esac
cat "$T/probe.out"
echo "PASS: $TEST_NAME"

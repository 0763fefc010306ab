#!/bin/bash
# atftp against the agent: option negotiation (blksize, tsize, windowsize,
# timeout) with byte-identical results, and a file over 32 MiB at 512-byte
# blocks, which needs the block number to roll over past 65535 (to 0, as
# tftpd-hpa and iPXE do), by atftp and by tftp-hpa.
. "$(dirname "$0")/tftp_lib.sh"

setup_tftp_link
write_tftp_config
head -c $((5 * 1024 * 1024 + 333)) /dev/urandom >"$ROOT/five.bin"
head -c $((1428 * 10)) /dev/urandom >"$ROOT/exact.bin"
# 32 MiB + 1000 bytes: 65538 blocks of 512.
head -c $((32 * 1024 * 1024 + 1000)) /dev/urandom >"$ROOT/big.bin"
start_tftp_agent

# Large blocks, size and window: the OACK carries what was granted.
atftp_get five.bin "$T/got" --option "blksize 1428" --option "tsize 0" \
    --option "windowsize 16" --trace || fail "atftp windowsize: $(tail "$T/atftp.out")"
cmp "$ROOT/five.bin" "$T/got" || fail "five.bin (blksize 1428, windowsize 16) differs"
oack=$(grep -m1 "received OACK" "$T/atftp.out") || fail "no OACK: $(head "$T/atftp.out")"
case $oack in *"blksize: 1428"*) ;; *) fail "blksize not acknowledged: $oack" ;; esac
case $oack in *"tsize: $((5 * 1024 * 1024 + 333))"*) ;; *) fail "tsize not the size: $oack" ;; esac
case $oack in *"windowsize: 16"*) ;; *) fail "windowsize not acknowledged: $oack" ;; esac
wait_log "tftp done file=five.bin .* blksize=1428 windowsize=16 " || fail "no done line (1428/16)"

# A window bigger than our cap (64) is lowered, still byte-identical.
atftp_get five.bin "$T/got" --option "blksize 1024" --option "windowsize 200" ||
    fail "atftp windowsize 200: $(cat "$T/atftp.out")"
cmp "$ROOT/five.bin" "$T/got" || fail "five.bin (windowsize 200 -> 64) differs"
wait_log "tftp done file=five.bin .* blksize=1024 windowsize=64 " || fail "windowsize not capped"

# Defaults (no options) and tiny blocks.
atftp_get five.bin "$T/got" || fail "atftp plain: $(cat "$T/atftp.out")"
cmp "$ROOT/five.bin" "$T/got" || fail "five.bin (plain) differs"
atftp_get exact.bin "$T/got" --option "blksize 1428" --option "timeout 2" ||
    fail "atftp exact: $(cat "$T/atftp.out")"
cmp "$ROOT/exact.bin" "$T/got" || fail "exact.bin (multiple of blksize) differs"
atftp_get exact.bin "$T/got" --option "blksize 8" || fail "atftp blksize 8"
cmp "$ROOT/exact.bin" "$T/got" || fail "exact.bin (blksize 8) differs"
# Over the cap: granted 1428 at most (lowered further by the MTU).
atftp_get exact.bin "$T/got" --option "blksize 9000" || fail "atftp blksize 9000"
cmp "$ROOT/exact.bin" "$T/got" || fail "exact.bin (blksize 9000 -> 1428) differs"
wait_log "tftp done file=exact.bin .* blksize=1428 " || fail "blksize not capped"

# Roll-over: 65538 blocks of 512.
start=$(date +%s%N)
atftp_get big.bin "$T/got" --option "blksize 512" --option "windowsize 8" ||
    fail "atftp big: $(tail -5 "$T/atftp.out")"
cmp "$ROOT/big.bin" "$T/got" || fail "big.bin via atftp (roll-over) differs"
echo "atftp 32 MiB at 512, windowsize 8: $(( ($(date +%s%N) - start) / 1000000 )) ms"
start=$(date +%s%N)
CLIENT_TIMEOUT=100 hpa_get big.bin "$T/got" || fail "tftp-hpa big: $(cat "$T/tftp.out")"
cmp "$ROOT/big.bin" "$T/got" || fail "big.bin via tftp-hpa (roll-over, lock-step) differs"
echo "tftp-hpa 32 MiB at 512, lock-step: $(( ($(date +%s%N) - start) / 1000000 )) ms"
wait_log "tftp done file=big.bin .* bytes=$((32 * 1024 * 1024 + 1000)) blksize=512 windowsize=1 " ||
    fail "no done line for big.bin"

stop_agent
grep -q "tftp stats why=shutdown .* failed=0 aborted=0 refused=0 " "$T/agent.log" ||
    fail "shutdown stats: $(grep 'tftp stats' "$T/agent.log")"
echo "PASS: $TEST_NAME"

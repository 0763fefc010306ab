#!/usr/bin/env python3
"""A raw TFTP client for the protocol cases real clients cannot be told to
produce: EDK2's tsize probe then ERROR 8 then the real request, a stranger's
packet on a transfer's port, duplicate ACKs, lost ACKs, a silent client that
asked timeout=255 (issue #10), a lost DATA for a client that asked
timeout=60, the per-address and busy limits.

Usage: tftp_probe.py [--rto SECONDS] CASE HOST FILE [ARGS]. --rto is the
server's first retransmission timeout (timeout_ms; 0.5 by default). Exits 0
when the server behaved, 1 with a message otherwise. Every receive has a
timeout. Timing checks are lower bounds or orders of events where they
can be: the tests run on busy CI machines, where anything can be late."""
import socket
import struct
import sys
import time

RRQ, DATA, ACK, ERROR, OACK = 1, 3, 4, 5, 6
RTO = 0.5


def fail(msg):
    print("probe: " + msg)
    sys.exit(1)


def sock(host):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(3)
    return s


def rrq(s, host, name, **opts):
    pkt = struct.pack("!H", RRQ) + name.encode() + b"\0octet\0"
    for k, v in opts.items():
        pkt += k.encode() + b"\0" + str(v).encode() + b"\0"
    s.sendto(pkt, (host, 69))


def recv(s, timeout=3):
    s.settimeout(timeout)
    try:
        data, addr = s.recvfrom(70000)
    except socket.timeout:
        return None, None, None
    return struct.unpack("!H", data[:2])[0], data, addr


def parse_oack(data):
    parts = data[2:].split(b"\0")[:-1]
    return {parts[i].decode().lower(): parts[i + 1].decode() for i in range(0, len(parts) - 1, 2)}


def ack(s, addr, block):
    s.sendto(struct.pack("!HH", ACK, block & 0xFFFF), addr)


def edk2(host, name, local):
    want = open(local, "rb").read()
    # 1. The size probe.
    s = sock(host)
    rrq(s, host, name, tsize=0)
    op, data, addr = recv(s)
    if op != OACK:
        fail("probe: expected OACK, got %r" % (data,))
    o = parse_oack(data)
    if o != {"tsize": str(len(want))}:
        fail("probe OACK %r, want only tsize=%d" % (o, len(want)))
    s.sendto(struct.pack("!HH", ERROR, 8) + b"User aborted\0", addr)
    # Nothing may come back to an ERROR.
    op, data, _ = recv(s, 0.5)
    if op is not None:
        fail("server answered our ERROR 8 with %r" % (data,))
    s.close()
    # 2. The real transfer, windows of 4 blocks of 1228.
    s = sock(host)
    rrq(s, host, name, blksize=1228, windowsize=4)
    op, data, addr = recv(s)
    if op != OACK or parse_oack(data) != {"blksize": "1228", "windowsize": "4"}:
        fail("real request: OACK %r" % (data,))
    ack(s, addr, 0)
    got = bytearray()
    expect = 1
    while True:
        op, data, frm = recv(s)
        if op != DATA or frm != addr:
            fail("expected DATA %d, got %r" % (expect, data))
        block = struct.unpack("!H", data[2:4])[0]
        if block != expect & 0xFFFF:
            fail("block %d, want %d" % (block, expect))
        got += data[4:]
        last = len(data) - 4 < 1228
        if last or expect % 4 == 0:
            ack(s, addr, expect)
        if last:
            break
        expect += 1
    if bytes(got) != want:
        fail("content differs (%d bytes, want %d)" % (len(got), len(want)))
    print("probe: edk2 pattern ok, %d bytes" % len(got))


def tid(host, name):
    s = sock(host)
    rrq(s, host, name)
    op, data, addr = recv(s)
    if op != DATA or struct.unpack("!H", data[2:4])[0] != 1:
        fail("expected DATA 1, got %r" % (data,))
    stranger = sock(host)
    ack(stranger, addr, 1)
    op, data, frm = recv(stranger)
    if op != ERROR or struct.unpack("!H", data[2:4])[0] != 5 or frm != addr:
        fail("stranger: expected ERROR 5 from the transfer port, got %r" % (data,))
    # The transfer goes on for its own client.
    ack(s, addr, 1)
    op, data, _ = recv(s)
    if op != DATA or struct.unpack("!H", data[2:4])[0] != 2:
        fail("after the stranger: expected DATA 2, got %r" % (data,))
    s.sendto(struct.pack("!HH", ERROR, 0) + b"done\0", addr)
    print("probe: unknown TID ok")


def dupack(host, name):
    """Duplicate ACKs never cause a resend (RFC 1123 4.2.3.1): no second
    DATA 2 may arrive before the retransmission timeout (RTO) after ACK 1
    could have run out. The window is measured from before ACK 1 went out,
    so a late probe only shortens it (never blames the server's timer);
    when it came too late to watch, the case starts over."""
    for _ in range(5):
        s = sock(host)
        rrq(s, host, name)
        op, data, addr = recv(s)
        t_ack = time.monotonic()
        ack(s, addr, 1)
        op, data, _ = recv(s)
        if op != DATA or struct.unpack("!H", data[2:4])[0] != 2:
            fail("expected DATA 2, got %r" % (data,))
        for _ in range(5):
            ack(s, addr, 1)
        window = t_ack + 0.8 * RTO - time.monotonic()
        if window >= 0.1:
            op, data, _ = recv(s, window)
            if op is not None:
                fail("duplicate ACKs made the server send %r %.3f s after ACK 1"
                     % (data[:4], time.monotonic() - t_ack))
        s.sendto(struct.pack("!HH", ERROR, 0) + b"done\0", addr)
        s.close()
        if window >= 0.1:
            print("probe: duplicate ACKs ok, watched %.2f s" % window)
            return
    fail("duplicate ACKs: the probe never ran in time to watch")


def lost(host, name, retries):
    """No ACK at all: DATA 1 again after each timeout, then silence."""
    s = sock(host)
    t0 = time.monotonic()
    rrq(s, host, name)
    seen = []
    while True:
        op, data, _ = recv(s, 5)
        if op is None:
            break
        if op != DATA or struct.unpack("!H", data[2:4])[0] != 1:
            fail("expected only DATA 1, got %r" % (data[:4],))
        seen.append(round(time.monotonic() - t0, 2))
    if len(seen) != 1 + retries:
        fail("DATA 1 sent at %r, want %d sends" % (seen, 1 + retries))
    # Backoff: the timeouts double (RTO, 2 RTO, 4 RTO ... below the cap), so
    # the last resend comes RTO (2^retries - 1) after the request at the
    # earliest, RTO x retries without backoff. A lower bound, with room
    # for the loop's clock: lateness cannot make it fail (comparing the
    # gaps could, one late receive shortens the next gap).
    least = 0.9 * RTO * (2 ** retries - 1)
    if seen[-1] < least:
        fail("no backoff: sends at %r, the last one before %.2f s" % (seen, least))
    print("probe: lost ACKs ok, sends at %r" % (seen,))


def stall(host, name):
    """RRQ with timeout=255 and big windows, then silence: the server does
    not acknowledge a timeout it would not honour (RFC 2349 lets it leave
    the option out), the OACK must be sent again within seconds (not after
    255 s), and the server must go quiet soon after (the script checks when
    it logged the failure)."""
    s = sock(host)
    t0 = time.monotonic()
    rrq(s, host, name, blksize=1428, timeout=255, windowsize=64)
    op, data, _ = recv(s)
    if op != OACK or parse_oack(data) != {"blksize": "1428", "windowsize": "64"}:
        fail("expected an OACK with blksize and windowsize only, got %r" % (data,))
    seen = [0.0]
    while True:
        # Well past any resend interval; silence for that long ends the probe.
        op, data, _ = recv(s, 9)
        if op is None:
            break
        if op != OACK:
            fail("expected only OACKs, got %r" % (data[:4],))
        seen.append(round(time.monotonic() - t0, 2))
        if len(seen) > 10:
            fail("OACK sent at %r and still going" % (seen,))
    if len(seen) < 2 or seen[1] > 7.0:
        fail("OACK not sent again within seconds: sends at %r" % (seen,))
    print("probe: silent client with timeout=255 ok, OACKs at %r" % (seen,))


def longtimeout(host, name):
    """The review's case: a client asks timeout=60, answers the OACK, and
    DATA 1 is lost. The server once echoed the 60 s and then gave up at
    its stall limit without a single resend. Now the OACK leaves the
    timeout out and DATA 1 comes again on the server's own timer."""
    s = sock(host)
    rrq(s, host, name, blksize=1428, timeout=60)
    op, data, addr = recv(s)
    if op != OACK or parse_oack(data) != {"blksize": "1428"}:
        fail("expected an OACK with blksize only, got %r" % (data,))
    ack(s, addr, 0)
    op, data, frm = recv(s)
    if op != DATA or struct.unpack("!H", data[2:4])[0] != 1 or frm != addr:
        fail("expected DATA 1, got %r" % (data,))
    # "Lose" it: no ACK. Silence for 9 s would be a failure; the resend is
    # due after RTO (0.5 s in the test).
    op, data, frm = recv(s, 9)
    if op != DATA or struct.unpack("!H", data[2:4])[0] != 1 or frm != addr:
        fail("DATA 1 not sent again after it was lost: got %r" % (data,))
    s.sendto(struct.pack("!HH", ERROR, 0) + b"done\0", addr)
    print("probe: lost DATA with timeout=60 resent")


def hold(host, name):
    s = sock(host)
    rrq(s, host, name)
    op, data, _ = recv(s)
    if op != DATA:
        fail("transfer from %s within the limits refused: %r" % (host, data))
    return s


def expect_refusal(host, name, text):
    s = sock(host)
    rrq(s, host, name)
    op, data, _ = recv(s)
    if op != ERROR or struct.unpack("!H", data[2:4])[0] != 0 or text not in data:
        fail("from %s: expected ERROR 0 %r, got %r" % (host, text, data and data[:40]))


def limits(host, name, per_source, host4):
    """PER_SOURCE transfers held from HOST: one more from it is refused,
    though max_transfers (PER_SOURCE + 1) has room; one from HOST4 (the
    same machine's IPv4 address, another source) is served, and fills the
    server: the next gets "Server busy"."""
    held = [hold(host, name) for _ in range(per_source)]
    expect_refusal(host, name, b"from this address")
    held.append(hold(host4, name))
    expect_refusal(host4, name, b"busy")
    print("probe: per-source limit %d and busy ok" % per_source)


def busy(host, name, limit):
    held = []
    for _ in range(limit):
        s = sock(host)
        rrq(s, host, name)
        op, data, _ = recv(s)
        if op != DATA:
            fail("transfer within the limit refused: %r" % (data,))
        held.append(s)
    s = sock(host)
    rrq(s, host, name)
    op, data, _ = recv(s)
    if op != ERROR or struct.unpack("!H", data[2:4])[0] != 0 or b"busy" not in data:
        fail("over the limit: expected ERROR 0 busy, got %r" % (data,))
    print("probe: busy ok")


def main():
    global RTO
    args = sys.argv[1:]
    if args[:1] == ["--rto"]:
        RTO = float(args[1])
        args = args[2:]
    sys.argv[1:] = args
    case, host, name = sys.argv[1:4]
    if case == "edk2":
        edk2(host, name, sys.argv[4])
    elif case == "tid":
        tid(host, name)
    elif case == "dupack":
        dupack(host, name)
    elif case == "lost":
        lost(host, name, int(sys.argv[4]))
    elif case == "stall":
        stall(host, name)
    elif case == "longtimeout":
        longtimeout(host, name)
    elif case == "limits":
        limits(host, name, int(sys.argv[4]), sys.argv[5])
    elif case == "busy":
        busy(host, name, int(sys.argv[4]))
    else:
        fail("unknown case " + case)


main()

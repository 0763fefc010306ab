#!/usr/bin/env python3
"""TFTP floods for tests/hostile/tftp_flood.sh. Every receive has a timeout.

  tftp_flood.py missing SERVER COUNT SECONDS ADDR...
      COUNT read requests for distinct missing files, round-robin from the
      ADDRs (20 sockets each), in windows of 200; counts the answers.
  tftp_flood.py hold SERVER FILE PER_ADDR HOLD_SECONDS ADDR...
      PER_ADDR read requests of FILE from each ADDR, each from its own
      socket, recording each first answer (DATA, or ERROR and its text), and
      never ACKing; prints the JSON summary at once (with the wall clock of
      the last request, ms), then keeps the sockets open HOLD_SECONDS so the
      server's retransmissions find a listener, and counts them.
Prints one JSON line per phase."""
import json
import socket
import struct
import sys
import time

RRQ, DATA, ACK, ERROR = 1, 3, 4, 5


def rrq(name):
    return struct.pack("!H", RRQ) + name.encode() + b"\0octet\0"


def sock(addr):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return s


def missing(server, count, seconds, addrs):
    socks = [sock(a) for a in addrs for _ in range(20)]
    for s in socks:
        s.setblocking(False)
    st = {"sent": 0, "not_found": 0, "other_error": 0, "data": 0, "unanswered": 0}
    start = time.monotonic()
    i = 0
    while st["sent"] < count and time.monotonic() - start < seconds:
        window = min(200, count - st["sent"])
        for _ in range(window):
            socks[i % len(socks)].sendto(rrq("missing/%d-%d.bin" % (i, time.monotonic_ns())), (server, 69))
            i += 1
        st["sent"] += window
        got = 0
        deadline = time.monotonic() + 2.0
        while got < window and time.monotonic() < deadline:
            for s in socks:
                while True:
                    try:
                        d = s.recv(1024)
                    except BlockingIOError:
                        break
                    got += 1
                    op = struct.unpack("!H", d[:2])[0]
                    if op == ERROR and struct.unpack("!H", d[2:4])[0] == 1:
                        st["not_found"] += 1
                    elif op == ERROR:
                        st["other_error"] += 1
                    else:
                        st["data"] += 1
            time.sleep(0.002)
        st["unanswered"] += window - got
    st["seconds"] = round(time.monotonic() - start, 1)
    print(json.dumps(st), flush=True)


def hold(server, name, per_addr, hold_s, addrs):
    held, res = [], {}
    for a in addrs:
        r = res.setdefault(a, {"data": 0, "per_source": 0, "busy": 0, "other": 0})
        for _ in range(per_addr):
            s = sock(a)
            s.settimeout(3)
            s.sendto(rrq(name), (server, 69))
            try:
                d = s.recv(2048)
            except socket.timeout:
                r["other"] += 1
                continue
            op = struct.unpack("!H", d[:2])[0]
            if op == DATA:
                r["data"] += 1
                held.append(s)
            elif op == ERROR and b"from this address" in d:
                r["per_source"] += 1
            elif op == ERROR and b"busy" in d:
                r["busy"] += 1
            else:
                r["other"] += 1
    print(json.dumps({"last_request_ms": int(time.time() * 1000), "addrs": res}), flush=True)
    # Keep listening (never ACK): count the server's retransmissions and
    # when the last one came.
    retrans, last = 0, None
    end = time.monotonic() + hold_s
    for s in held:
        s.setblocking(False)
    while time.monotonic() < end:
        for s in held:
            try:
                while s.recv(2048):
                    retrans += 1
                    last = int(time.time() * 1000)
            except BlockingIOError:
                pass
        time.sleep(0.02)
    print(json.dumps({"retransmissions": retrans, "last_retransmission_ms": last}), flush=True)


if sys.argv[1] == "missing":
    missing(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5:])
elif sys.argv[1] == "hold":
    hold(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6:])
else:
    sys.exit("unknown mode")

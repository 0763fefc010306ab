#!/usr/bin/env python3
"""Slow-loris and header-flood client for tests/hostile/http_slowloris.sh.

usage: slowloris.py SERVER PORT SECONDS MAX_CONNECTS FLOOD_ADDR ADDR...

For SECONDS (and at most MAX_CONNECTS connections in all), keeps 40
connections open from each ADDR, each drip-feeding a request head one byte
every 0.5 s; a connection the server closes is replaced within 0.5 s. Meanwhile a thread
runs header floods from FLOOD_ADDR, one after the other (at most 60): 20,000
small headers sent at once, or one 1 MiB header. Prints a JSON summary: per address, the most
connections that were held open (past 1 s) at once, how many were closed
at once (the per-address limit), how many were closed after 2 s or more
(the header deadline) and their longest life; the flood answers by kind."""
import json
import selectors
import socket
import sys
import threading
import time

server, port, seconds, max_connects = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
flood_addr = sys.argv[5]
addrs = sys.argv[6:]
PER_ADDR = 40
HEAD = b"GET /files/small.bin HTTP/1.1\r\nHost: agent\r\nUser-Agent: loris\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"

sel = selectors.DefaultSelector()
conns = {}  # fd -> dict
stats = {a: {"connects": 0, "held_max": 0, "closed_at_once": 0, "closed_late": 0,
             "longest_s": 0.0, "answered": 0, "connect_errors": 0} for a in addrs}
flood = {"431": 0, "400": 0, "closed": 0, "other": 0, "200": 0}
total = 0
start = time.monotonic()


def open_conn(addr):
    global total
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind((addr, 0))
    try:
        s.connect((server, port))
    except BlockingIOError:
        pass
    except OSError:
        stats[addr]["connect_errors"] += 1
        s.close()
        return
    total += 1
    stats[addr]["connects"] += 1
    c = {"sock": s, "addr": addr, "t0": time.monotonic(), "sent": 0}
    conns[s.fileno()] = c
    sel.register(s, selectors.EVENT_READ, c)


def close_conn(c, now):
    life = now - c["t0"]
    st = stats[c["addr"]]
    if life < 1.0:
        st["closed_at_once"] += 1
    elif life >= 2.0:
        st["closed_late"] += 1
    st["longest_s"] = max(st["longest_s"], round(life, 2))
    sel.unregister(c["sock"])
    del conns[c["sock"].fileno()]
    c["sock"].close()


def run_flood(addr, kind):
    """One flood request, blocking, bounded by a 5 s timeout."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.bind((addr, 0))
        s.connect((server, port))
        if kind == "count":
            req = (b"GET /files/small.bin HTTP/1.1\r\nHost: a\r\n" +
                   b"".join(b"X%d: v\r\n" % i for i in range(20000)) + b"\r\n")
        else:
            req = b"GET /files/small.bin HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * (1 << 20) + b"\r\n\r\n"
        try:
            s.sendall(req)
        except OSError:
            pass  # the server may close while we still send
        r = b""
        try:
            while len(r) < 64:
                d = s.recv(4096)
                if not d:
                    break
                r += d
        except OSError:
            pass
        if r.startswith(b"HTTP/1.1 431"):
            flood["431"] += 1
        elif r.startswith(b"HTTP/1.1 400"):
            flood["400"] += 1
        elif r.startswith(b"HTTP/1.1 200"):
            flood["200"] += 1
        elif r == b"":
            flood["closed"] += 1
        else:
            flood["other"] += 1
    except OSError:
        flood["closed"] += 1
    finally:
        s.close()


def flood_loop():
    for n in range(60):
        if time.monotonic() - start >= seconds - 1:
            break
        run_flood(flood_addr, "count" if n % 2 == 0 else "size")


flooder = threading.Thread(target=flood_loop)
flooder.start()
last_drip = 0.0
last_open = -1.0
while time.monotonic() - start < seconds:
    now = time.monotonic()
    if now - last_open >= 0.5:
        # Refill every 0.5 s, not at once: the connections the server
        # refuses would otherwise spend the connection budget in a spin.
        last_open = now
        for a in addrs:
            n = sum(1 for c in conns.values() if c["addr"] == a)
            while n < PER_ADDR and total < max_connects:
                open_conn(a)
                n += 1
    for key, _ in sel.select(timeout=0.05):
        c = key.data
        try:
            d = c["sock"].recv(4096)
        except OSError:
            d = b""
        if d:
            stats[c["addr"]]["answered"] += 1  # a drip-fed head was never complete
        close_conn(c, time.monotonic())
    now = time.monotonic()
    for a in addrs:
        held = sum(1 for c in conns.values() if c["addr"] == a and now - c["t0"] > 1.0)
        stats[a]["held_max"] = max(stats[a]["held_max"], held)
    if now - last_drip >= 0.5:
        last_drip = now
        for c in list(conns.values()):
            if c["sent"] < len(HEAD) - 1:  # never the final byte
                try:
                    c["sock"].send(HEAD[c["sent"]:c["sent"] + 1])
                    c["sent"] += 1
                except OSError:
                    pass

flooder.join()
# What is still open is closed by us and not counted.
print(json.dumps({"seconds": round(time.monotonic() - start, 1), "connects": total,
                  "open_at_end": len(conns), "addrs": stats, "flood": flood}))

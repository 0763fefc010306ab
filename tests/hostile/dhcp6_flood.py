#!/usr/bin/env python3
"""DHCPv6 flood of random client DUIDs for tests/hostile/dhcp6_flood.sh.

usage: dhcp6_flood.py IFACE SOLICITS BLIND_REQUESTS SECONDS SERVER_DUID_HEX

From IFACE's link-local address, port 546, to ff02::1:2: SOLICITS Solicits,
each from a new random DUID (LLT, EN, LL and UUID kinds, random lengths)
with a random IAID; every Advertise that offers an address is followed by
a Request for it (the 4-way exchange a real client does). BLIND_REQUESTS
Requests from random DUIDs that never solicited, half with a random
Server ID, half with the server's, for random addresses. Sends in bursts
of 50 every 25 ms (about 2,000 Solicits a second, so the flood lasts while
a real client boots) and drains answers in between. Bounded by the counts
and by SECONDS.
Prints a JSON summary."""
import json
import os
import random
import socket
import struct
import sys
import time

ifname, n_sol, n_blind, seconds, server_duid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), bytes.fromhex(sys.argv[5])
SOLICIT, ADVERTISE, REQUEST, REPLY = 1, 2, 3, 7


def opt(code, data):
    return struct.pack("!HH", code, len(data)) + data


def random_duid():
    kind = random.choice((1, 2, 3, 4))
    if kind == 1:
        return struct.pack("!HHI", 1, 1, random.getrandbits(32)) + os.urandom(6)
    if kind == 2:
        return struct.pack("!HI", 2, random.getrandbits(32)) + os.urandom(random.randint(1, 100))
    if kind == 3:
        return struct.pack("!HH", 3, 1) + os.urandom(6)
    return struct.pack("!H", 4) + os.urandom(16)


def options(data):
    out, i = {}, 0
    while len(data) - i >= 4:
        code, ln = struct.unpack("!HH", data[i:i + 4])
        out.setdefault(code, data[i + 4:i + 4 + ln])
        i += 4 + ln
    return out


def msg(kind, xid, duid, iaid, server=None, addr=None):
    ia = struct.pack("!III", iaid, 0, 0)
    if addr:
        ia += opt(5, addr + struct.pack("!II", 0, 0))
    m = struct.pack("!I", kind << 24 | xid) + opt(1, duid)
    if server:
        m += opt(2, server)
    return m + opt(3, ia) + opt(8, b"\0\0") + opt(6, b"\0\x17")


ifindex = socket.if_nametoindex(ifname)
ll = None
for line in open("/proc/net/if_inet6"):
    f = line.split()
    if f[5] == ifname and f[0].startswith("fe80"):
        ll = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(f[0]))
if not ll:
    sys.exit("no link-local address on " + ifname)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
s.bind((ll, 546, 0, ifindex))
s.setblocking(False)
dst = ("ff02::1:2", 547, 0, ifindex)

pending = {}  # xid -> (duid, iaid)
st = {"solicits": 0, "requests": 0, "blind_requests": 0, "advertises": 0, "offers": 0,
      "replies": 0, "leased": 0, "no_addrs": 0, "other": 0, "send_errors": 0}
leased = set()
start = time.monotonic()


def send(m):
    try:
        s.sendto(m, dst)
    except OSError:
        st["send_errors"] += 1


def drain():
    while True:
        try:
            data = s.recv(2048)
        except BlockingIOError:
            return
        if len(data) < 4:
            continue
        kind, xid = data[0], struct.unpack("!I", data[:4])[0] & 0xFFFFFF
        o = options(data[4:])
        ia = options(o[3][12:]) if 3 in o and len(o[3]) >= 12 else {}
        addr = ia.get(5, b"")[:16] if len(ia.get(5, b"")) >= 24 else None
        status = ia.get(13) or o.get(13)
        if status and len(status) >= 2 and struct.unpack("!H", status[:2])[0] == 2:
            st["no_addrs"] += 1
        if kind == ADVERTISE:
            st["advertises"] += 1
            if addr and xid in pending and 2 in o:
                st["offers"] += 1
                duid, iaid = pending.pop(xid)
                nx = random.getrandbits(24)
                pending[nx] = (duid, iaid)
                send(msg(REQUEST, nx, duid, iaid, o[2], addr))
                st["requests"] += 1
        elif kind == REPLY:
            st["replies"] += 1
            if addr:
                leased.add(addr)
        else:
            st["other"] += 1


blind_left = n_blind
while (st["solicits"] < n_sol or blind_left > 0) and time.monotonic() - start < seconds:
    for _ in range(50):
        if st["solicits"] < n_sol:
            xid, duid, iaid = random.getrandbits(24), random_duid(), random.getrandbits(32)
            pending[xid] = (duid, iaid)
            send(msg(SOLICIT, xid, duid, iaid))
            st["solicits"] += 1
        if blind_left > 0 and random.random() < n_blind / max(n_sol, 1):
            server = server_duid if blind_left % 2 else random_duid()
            addr = socket.inet_pton(socket.AF_INET6, "2001:db8:1::") [:8] + os.urandom(8)
            send(msg(REQUEST, random.getrandbits(24), random_duid(), random.getrandbits(32), server, addr))
            st["blind_requests"] += 1
            blind_left -= 1
    drain()
    time.sleep(0.025)
# Answers still on their way.
end = time.monotonic() + 1.0
while time.monotonic() < end:
    drain()
    time.sleep(0.01)
st["leased"] = len(leased)
st["seconds"] = round(time.monotonic() - start, 1)
print(json.dumps(st))

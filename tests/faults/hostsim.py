#!/usr/bin/env python3
"""Simulated netbooting hosts for the fault suite (tests/faults/).

Run inside the hosts' network namespace. Each host does what a netbooting
machine and its installer do, from its own MAC (DHCPv6 DUID-LL, user class
"iPXE") and its reserved address (every HTTP request is bound to it):

  dhcp      Solicit -> Advertise -> Request -> Reply; the IA address must be
            the host's reservation, the bootfile-url names its iPXE script
  script    GET the bootfile-url (the iPXE script)
  kernel    GET the URL of the script's `kernel` line
  initrd    GET every URL of its `initrd` lines (the overlay among them)
  ks        GET inst.ks=; the progress URL is read from the kickstart
  stage2    GET inst.stage2=/LiveOS/squashfs.img
  post      POST phase=installing (--installing times), then installed

Every step is retried (connection errors, timeouts, 5xx, short bodies) until
it succeeds or --deadline passes, like firmware and installers retry. Every
200 body of an image is hashed and compared with the origin's sha256
(manifest): a mismatch is recorded as `corrupt` and the host fails (it
would have booted it). POST messages carry the attempt number
("h03.installing.10.a2"), so each POST the agent answered can be found once
in the controller's events.

Hosts wait before a step named in --gate STEP=FILE until FILE exists.

Writes a JSON ledger (--ledger): one record per request with its times and
outcome; prints one line per failed attempt and per finished host. Exits 0
when every host finished, 1 otherwise.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse

PRINT_LOCK = threading.Lock()


def say(*a):
    with PRINT_LOCK:
        print(time.strftime("%H:%M:%S"), *a, flush=True)


# ---- DHCPv6 (RFC 8415) -------------------------------------------------------
SOLICIT, ADVERTISE, REQUEST, REPLY = 1, 2, 3, 7
OPT_CLIENTID, OPT_SERVERID, OPT_IA_NA, OPT_IAADDR = 1, 2, 3, 5
OPT_ORO, OPT_ELAPSED, OPT_USER_CLASS, OPT_BOOTFILE_URL = 6, 8, 15, 59


def opt(code, data):
    return struct.pack("!HH", code, len(data)) + data


def parse_opts(data):
    out = {}
    i = 0
    while len(data) - i >= 4:
        code, ln = struct.unpack_from("!HH", data, i)
        if len(data) - i - 4 < ln:
            break
        out.setdefault(code, data[i + 4:i + 4 + ln])
        i += 4 + ln
    return out


class Dhcp6:
    """One socket on [link-local]:546 for every simulated host; answers are
    handed to the waiting host by transaction id."""

    def __init__(self, ifname):
        self.ifindex = socket.if_nametoindex(ifname)
        ll = None
        for line in open("/proc/net/if_inet6"):
            f = line.split()
            if f[5] == ifname and f[0].startswith("fe80"):
                ll = ":".join(f[0][i:i + 4] for i in range(0, 32, 4))
        if not ll:
            raise SystemExit("hostsim: no link-local address on %s" % ifname)
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        self.sock.bind((ll, 546, 0, self.ifindex))
        self.dst = ("ff02::1:2", 547, 0, self.ifindex)
        self.lock = threading.Lock()
        self.waiting = {}  # xid -> (condition list)
        t = threading.Thread(target=self._rx, daemon=True)
        t.start()

    def _rx(self):
        while True:
            data, _ = self.sock.recvfrom(4096)
            if len(data) < 4:
                continue
            xid = data[1:4]
            with self.lock:
                w = self.waiting.get(xid)
                if w is not None:
                    w["msgs"].append(data)
                    w["ev"].set()

    def exchange(self, msg, want, timeout):
        """Sends msg (its xid in bytes 1-3), returns the first answer of type
        `want` within timeout, else None."""
        xid = msg[1:4]
        w = {"msgs": [], "ev": threading.Event()}
        with self.lock:
            self.waiting[xid] = w
        try:
            self.sock.sendto(msg, self.dst)
            end = time.monotonic() + timeout
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    return None
                w["ev"].wait(left)
                with self.lock:
                    msgs, w["msgs"] = w["msgs"], []
                    w["ev"].clear()
                for m in msgs:
                    if m[0] == want:
                        return m
        finally:
            with self.lock:
                self.waiting.pop(xid, None)


def dhcp_bind(d6, host, deadline):
    """Returns (address, bootfile_url) or raises."""
    mac = bytes.fromhex(host["mac"].replace(":", ""))
    duid = struct.pack("!HH", 3, 1) + mac
    iaid = struct.pack("!I", int.from_bytes(mac[2:], "big"))
    common = (opt(OPT_CLIENTID, duid) + opt(OPT_ELAPSED, b"\0\0") +
              opt(OPT_ORO, struct.pack("!HHH", 23, 24, OPT_BOOTFILE_URL)) +
              opt(OPT_USER_CLASS, struct.pack("!H", 4) + b"iPXE"))
    while time.monotonic() < deadline:
        xid = os.urandom(3)
        sol = bytes([SOLICIT]) + xid + common + opt(OPT_IA_NA, iaid + b"\0" * 8)
        adv = d6.exchange(sol, ADVERTISE, 1.5)
        if adv is None:
            raise IOError("no Advertise")
        o = parse_opts(adv[4:])
        if OPT_SERVERID not in o or OPT_IA_NA not in o:
            raise IOError("Advertise without server id or IA_NA")
        ia = parse_opts(o[OPT_IA_NA][12:])
        if OPT_IAADDR not in ia:
            raise IOError("Advertise without an address")
        iaaddr = ia[OPT_IAADDR][:24]
        xid = os.urandom(3)
        req = (bytes([REQUEST]) + xid + common + opt(OPT_SERVERID, o[OPT_SERVERID]) +
               opt(OPT_IA_NA, iaid + b"\0" * 8 + opt(OPT_IAADDR, iaaddr)))
        rep = d6.exchange(req, REPLY, 1.5)
        if rep is None:
            raise IOError("no Reply")
        o = parse_opts(rep[4:])
        ia = parse_opts(o.get(OPT_IA_NA, b"")[12:])
        if OPT_IAADDR not in ia:
            raise IOError("Reply without an address")
        addr = socket.inet_ntop(socket.AF_INET6, ia[OPT_IAADDR][:16])
        url = o.get(OPT_BOOTFILE_URL, b"").decode()
        return addr, url
    raise IOError("deadline")


# ---- HTTP ----------------------------------------------------------------------
class Short(Exception):
    pass


def http_req(host, method, url, body=None, timeout=20):
    """One request from the host's address. Returns (status, the body's first
    MiB, its sha256 hex, its length); Short when the body is cut."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout,
                                      source_address=(host["address"], 0))
    try:
        path = u.path + ("?" + u.query if u.query else "")
        headers = {"Connection": "close"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        h = hashlib.sha256()
        n = 0
        data = bytearray()
        while True:
            chunk = r.read(65536)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
            if len(data) < 1 << 20:
                data += chunk
        length = r.getheader("Content-Length")
        if length is not None and int(length) != n:
            raise Short("short body: %d of %s bytes" % (n, length))
        return r.status, bytes(data), h.hexdigest(), n
    finally:
        conn.close()


class Host:
    def __init__(self, spec, args, d6, manifest, ledger):
        self.h = spec
        self.args = args
        self.d6 = d6
        self.manifest = manifest
        self.ledger = ledger
        self.ok = False
        self.why = ""

    def record(self, **kw):
        kw["host"] = self.h["name"]
        with PRINT_LOCK:
            self.ledger.append(kw)

    def gate(self, step):
        f = self.args.gates.get(step)
        if not f:
            return
        while not os.path.exists(f):
            if time.monotonic() > self.deadline:
                raise IOError("gate %s never opened" % step)
            time.sleep(0.1)

    def pause(self):
        d = self.args.step_delay
        if d > 0:
            time.sleep(random.uniform(0.5 * d, 1.5 * d))

    def attempt(self, step, fn):
        """Runs fn(attempt) until it returns a value, retrying failures."""
        self.gate(step)
        n = 0
        delay = 0.2
        while True:
            n += 1
            t0 = time.time()
            try:
                res, rec = fn(n)
                self.record(step=step, attempt=n, t0=t0, t1=time.time(), ok=True, **rec)
                return res
            except Exception as e:  # noqa: BLE001 - every failure is retried
                why = getattr(e, "rec", None) or {"error": "%s: %s" % (type(e).__name__, e)}
                self.record(step=step, attempt=n, t0=t0, t1=time.time(), ok=False, **why)
                if why.get("fatal"):
                    raise IOError("%s: %s" % (step, why))
                say("host %s %s attempt %d failed: %s" % (self.h["name"], step, n, why))
                if time.monotonic() + delay > self.deadline:
                    raise IOError("%s: gave up after %d attempts: %s" % (step, n, why))
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def get(self, step, url, expect_sha=None):
        def fn(n):
            status, data, sha, length = http_req(self.h, "GET", url)
            rec = {"url": url, "status": status, "bytes": length}
            if status != 200:
                e = IOError("HTTP %d" % status)
                rec["error"] = "HTTP %d: %s" % (status, data[:120].decode("utf-8", "replace"))
                rec["fatal"] = status in (400, 403, 404)
                e.rec = rec
                raise e
            if expect_sha is not None:
                rec["sha_ok"] = sha == expect_sha
                if sha != expect_sha:
                    rec["corrupt"] = True
                    rec["fatal"] = True  # a host would boot it: no second chance
                    rec["error"] = "corrupt: sha256 %s, expected %s (%d bytes)" % (sha, expect_sha, length)
                    e = IOError("corrupt")
                    e.rec = rec
                    raise e
            return data, rec
        return self.attempt(step, fn)

    def post(self, url, phase, percent):
        def fn(n):
            msg = "%s.%s.%d.a%d" % (self.h["name"], phase, percent, n)
            body = "phase=%s&percent=%d&message=%s" % (phase, percent, msg)
            rec = {"url": url, "phase": phase, "percent": percent, "message": msg}
            try:
                status, data, _, _ = http_req(self.h, "POST", url, body=body.encode())
            except Exception as e:  # noqa: BLE001
                rec["status"] = None
                rec["error"] = "%s: %s" % (type(e).__name__, e)
                e2 = IOError(rec["error"])
                e2.rec = rec
                raise e2
            rec["status"] = status
            if status != 200:
                rec["error"] = "HTTP %d: %s" % (status, data[:120].decode("utf-8", "replace"))
                rec["fatal"] = status in (400, 403, 404)
                e = IOError(rec["error"])
                e.rec = rec
                raise e
            return None, rec
        self.attempt("post", fn)

    def run(self):
        self.deadline = time.monotonic() + self.args.deadline
        try:
            time.sleep(random.uniform(0, self.args.start_spread))

            def dhcp(n):
                addr, url = dhcp_bind(self.d6, self.h, self.deadline)
                rec = {"address": addr, "url": url}
                if addr != self.h["address"]:
                    rec["error"] = "bound %s, reserved %s" % (addr, self.h["address"])
                    rec["fatal"] = True
                    e = IOError(rec["error"])
                    e.rec = rec
                    raise e
                if not url:
                    e = IOError("no bootfile-url")
                    rec["error"] = "no bootfile-url"
                    e.rec = rec
                    raise e
                return url, rec
            url = self.attempt("dhcp", dhcp)
            self.pause()
            script = self.get("script", url).decode()
            kernel = initrds = ks = stage2 = None
            for line in script.splitlines():
                f = line.split()
                if f and f[0] == "kernel":
                    kernel = f[1]
                    for a in f[2:]:
                        if a.startswith("inst.ks="):
                            ks = a[len("inst.ks="):]
                        if a.startswith("inst.stage2="):
                            stage2 = a[len("inst.stage2="):]
                elif f and f[0] == "initrd":
                    initrds = (initrds or []) + [f[-1]]
            if not (kernel and initrds and ks and stage2):
                raise IOError("script lacks kernel/initrd/inst.ks/inst.stage2: %r" % script)
            self.pause()
            self.get("kernel", kernel, self.manifest.get("vmlinuz"))
            for u in initrds:
                self.pause()
                name = u.rsplit("/", 1)[-1]
                self.get("initrd" if name != "overlay.img" else "overlay", u,
                         self.manifest.get(name))
            self.pause()
            kstext = self.get("ks", ks).decode()
            m = re.search(r"http://[^\"' ]*/progress/[^\"' ]*", kstext)
            if not m:
                raise IOError("no progress URL in the kickstart")
            progress = m.group(0)
            self.pause()
            self.get("stage2", stage2.rstrip("/") + "/LiveOS/squashfs.img",
                     self.manifest.get("squashfs.img"))
            for i in range(self.args.installing):
                self.pause()
                self.post(progress, "installing", 10 + i)
            self.pause()
            self.post(progress, "installed", 100)
            self.ok = True
            say("host %s done" % self.h["name"])
        except Exception as e:  # noqa: BLE001
            self.why = str(e)
            say("host %s FAILED: %s" % (self.h["name"], e))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", required=True)
    ap.add_argument("--hosts", required=True, help="JSON list of {name, mac, address}")
    ap.add_argument("--only", default="", help="comma-separated host names (default: all)")
    ap.add_argument("--manifest", required=True, help="JSON {file name: sha256}")
    ap.add_argument("--ledger", required=True)
    ap.add_argument("--deadline", type=float, default=150)
    ap.add_argument("--step-delay", type=float, default=0)
    ap.add_argument("--start-spread", type=float, default=0)
    ap.add_argument("--installing", type=int, default=2)
    ap.add_argument("--gate", action="append", default=[], help="STEP=FILE")
    args = ap.parse_args()
    args.gates = dict(g.split("=", 1) for g in args.gate)
    hosts = json.load(open(args.hosts))
    if args.only:
        want = set(args.only.split(","))
        hosts = [h for h in hosts if h["name"] in want]
    manifest = json.load(open(args.manifest))
    d6 = Dhcp6(args.iface)
    ledger = []
    sims = [Host(h, args, d6, manifest, ledger) for h in hosts]
    threads = [threading.Thread(target=s.run) for s in sims]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(args.ledger + ".tmp", "w") as f:
        json.dump(ledger, f, indent=1)
    os.rename(args.ledger + ".tmp", args.ledger)
    bad = [s for s in sims if not s.ok]
    say("hosts: %d done, %d failed%s" % (len(sims) - len(bad), len(bad),
        "".join("\n  %s: %s" % (s.h["name"], s.why) for s in bad)))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

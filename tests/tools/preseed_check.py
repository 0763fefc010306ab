#!/usr/bin/env python3
"""Checks a rendered preseed (tests/golden/render/preseed-*.cfg) the way
Debian's installer will read it (render/preseed.h):

  - `debconf-set-selections --checkonly` (debconf's own parser) accepts it;
  - the lines after joining d-i's "\\" continuations each have an owner, a
    question, a type and (but for notes) a value, and no question that
    rackboot sets last is set again after it;
  - the early_command's base64 decodes to exactly the script the preseed
    shows in its comment block, which `sh -n` accepts;
  - that script, run by busybox (the applets d-i has: sh, nc, sed, head,
    sleep, logger) against a local HTTP server, POSTs
    phase=installing&message=early_command to the progress path with its
    token, and a message with spaces and quotes arrives '+'-encoded;
  - the late_command's base64 decodes to authorized_keys lines, and to the
    installed system's phone-home script and unit, exactly as the comments
    show them; `bash -n` accepts the script, and run by bash against a local
    server it POSTs instance_id (the install) and hostname to the
    phone-home path with its token, retries a 503, stops at a 403, and with
    --once, once heard, disables its unit and deletes itself.

Prints "N passed, N failed" last; exits 1 on any failure, 77 (skip) when
debconf-set-selections or busybox is missing.
"""
import base64
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse

RESULTS = {"passed": 0, "failed": 0}


def check(ok, what):
    RESULTS["passed" if ok else "failed"] += 1
    if not ok:
        print("FAIL:", what)


def joined_lines(text):
    """d-i's debconf-set-selections: comment and blank lines dropped, lines
    ending in a backslash joined with the next by one space."""
    out, cont = [], ""
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        line = line.lstrip()
        if line.endswith("\\"):
            cont = (cont + " " if cont else "") + line[:-1].rstrip()
            continue
        if cont:
            line = cont + " " + line
            cont = ""
        out.append(line)
    return out


def question(lines, name):
    values = [l.split(None, 3) for l in lines if l.split(None, 2)[1:2] == [name]]
    return values[-1][3] if values and len(values[-1]) > 3 else None


def commented_script(text, heading="### The early_command writes"):
    """The block after the line starting with `heading`: lines "#   x" / "#"."""
    lines = text.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(heading))
    body = []
    for l in lines[start + 1:]:
        if not l.startswith("#") or l.startswith("###"):
            break
        body.append(l[4:] if l.startswith("#   ") else "")
    return "\n".join(body) + "\n"


class Recorder(http.server.BaseHTTPRequestHandler):
    posts = []
    statuses = []  # answers to give, in order; 200 once used up

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        Recorder.posts.append((self.path, self.rfile.read(n).decode()))
        self.send_response(Recorder.statuses.pop(0) if Recorder.statuses else 200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass


class Server6(http.server.HTTPServer):
    address_family = socket.AF_INET6


def local_server():
    srv = Server6(("::1", 0), Recorder)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def to_local(script, port):
    local = re.sub(r"^RB_ADDR=.*$", "RB_ADDR=::1", script, flags=re.M)
    return re.sub(r"^RB_PORT=.*$", "RB_PORT=%d" % port, local, flags=re.M)


def run_script(script, busybox):
    """The script against a local server, with busybox's applets first on
    PATH; returns what the server got."""
    srv = local_server()
    local = to_local(script, srv.server_address[1])
    with tempfile.TemporaryDirectory() as d:
        for applet in ("sh", "nc", "sed", "head", "sleep", "logger", "printf"):
            os.symlink(busybox, os.path.join(d, applet))
        path = os.path.join(d, "rackboot-progress")
        with open(path, "w") as f:
            f.write(local)
        env = {"PATH": d}
        Recorder.posts, Recorder.statuses = [], []
        for args in (["installing", "early_command"], ["failed", "choose-mirror it's \"bad\""]):
            subprocess.run([busybox, "sh", path] + args, env=env, timeout=60, check=True)
    srv.shutdown()
    return Recorder.posts


def run_phone_home(script, statuses, once):
    """The phone-home script run by bash against a local server answering
    `statuses` in order (then 200), with a systemctl that only records its
    arguments; returns (exit status, posts, systemctl calls, script kept)."""
    srv = local_server()
    with tempfile.TemporaryDirectory() as d:
        calls = os.path.join(d, "systemctl.calls")
        fake_bin = os.path.join(d, "bin")
        os.mkdir(fake_bin)
        with open(os.path.join(fake_bin, "systemctl"), "w") as f:
            f.write('#!/bin/sh\necho "$*" >>%s\n' % calls)
        os.chmod(os.path.join(fake_bin, "systemctl"), 0o755)
        path = os.path.join(d, "phone-home")
        with open(path, "w") as f:
            f.write(to_local(script, srv.server_address[1]))
        Recorder.posts, Recorder.statuses = [], list(statuses)
        env = {"PATH": fake_bin + ":/usr/bin:/bin"}
        r = subprocess.run(["bash", path] + (["--once"] if once else []), env=env, timeout=120,
                           capture_output=True, text=True)
        called = open(calls).read().splitlines() if os.path.exists(calls) else []
        kept = os.path.exists(path)
    srv.shutdown()
    return r.returncode, Recorder.posts, called, kept


def check_phone_home(name, text, late):
    """The late_command's phone-home script and unit (render/preseed.c)."""
    m = re.search(r"echo (\S+) \| base64 -d >/target/usr/local/lib/rackboot/phone-home;", late)
    check(m is not None, "%s: late_command does not install the phone-home script" % name)
    u = re.search(r"echo (\S+) \| base64 -d >/target/etc/systemd/system/"
                  r"rackboot-phone-home.service;", late)
    check(u is not None, "%s: late_command does not install the phone-home unit" % name)
    check("in-target systemctl enable rackboot-phone-home.service;" in late,
          "%s: late_command does not enable the phone-home unit" % name)
    if not m or not u:
        return
    script = base64.b64decode(m.group(1)).decode()
    check(script == commented_script(text, "### The late_command installs"),
          "%s: the phone-home script differs from the one shown in comments" % name)
    unit = base64.b64decode(u.group(1)).decode()
    check(unit == commented_script(text, "### and its unit"),
          "%s: the phone-home unit differs from the one shown in comments" % name)
    for line in ("ExecStart=/usr/local/lib/rackboot/phone-home --once",
                 "After=network-online.target", "WantedBy=multi-user.target"):
        check(line in unit.splitlines(), "%s: the unit has no %s" % (name, line))
    r = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    check(r.returncode == 0, "%s: bash -n (phone-home): %s" % (name, r.stderr.strip()))

    path = re.search(r"^RB_PATH=(\S+)$", script, flags=re.M).group(1)
    install = re.search(r"^RB_INSTALL=(\S+)$", script, flags=re.M).group(1)
    check(path.startswith("/phone-home/%s?token=" % install),
          "%s: phone-home path %s is not the install's" % (name, path))
    # A 503 first (the agent's journal busy): retried after 10 s; then heard.
    rc, posts, called, kept = run_phone_home(script, [503], once=True)
    check(rc == 0 and len(posts) == 2, "%s: phone-home exit %d after %d posts, not 0 after 2"
          % (name, rc, len(posts)))
    for p in posts:
        form = urllib.parse.parse_qs(p[1])
        check(p[0] == path and form.get("instance_id") == [install] and
              re.fullmatch(r"[A-Za-z0-9.-]+", (form.get("hostname") or [""])[0]) is not None,
              "%s: phone-home posted %r to %s" % (name, p[1], p[0]))
    check(called == ["disable rackboot-phone-home.service"] and not kept,
          "%s: heard with --once, the script did not disable its unit (%r) and go (%s)"
          % (name, called, "kept" if kept else "gone"))
    # A 403 (the install is over): no retry, a failure, nothing disabled.
    rc, posts, called, kept = run_phone_home(script, [403], once=True)
    check(rc != 0 and len(posts) == 1 and not called and kept,
          "%s: a refused phone-home: exit %d, %d posts, systemctl %r, script %s"
          % (name, rc, len(posts), called, "kept" if kept else "gone"))


def main():
    if len(sys.argv) < 2:
        print("usage: preseed_check.py PRESEED...", file=sys.stderr)
        return 2
    dss = shutil.which("debconf-set-selections")
    busybox = shutil.which("busybox")
    if not dss or not busybox:
        print("SKIP: needs debconf-set-selections (debconf) and busybox (busybox-static)")
        return 77
    for path in sys.argv[1:]:
        text = open(path).read()
        name = os.path.basename(path)
        r = subprocess.run([dss, "--checkonly", path], capture_output=True, text=True)
        check(r.returncode == 0 and not r.stderr.strip(),
              "%s: debconf-set-selections --checkonly: %s" % (name, r.stderr.strip()))

        lines = joined_lines(text)
        for l in lines:
            f = l.split(None, 3)
            ok = len(f) == 4 or (len(f) == 3 and f[2] in ("note", "string"))
            check(ok, "%s: not OWNER QUESTION TYPE VALUE: %s" % (name, l[:80]))
        for q in ("preseed/early_command", "preseed/late_command",
                  "finish-install/reboot_in_progress"):
            idx = [i for i, l in enumerate(lines) if l.split(None, 2)[1:2] == [q]]
            check(len(idx) >= 1 and idx[-1] >= len(lines) - 3,
                  "%s: %s is not among rackboot's last lines" % (name, q))

        early = question(lines, "preseed/early_command") or ""
        m = re.match(r"echo (\S+) \| base64 -d >/tmp/rackboot-progress;", early)
        check(m is not None, "%s: early_command does not start with the base64 helper" % name)
        if not m:
            continue
        script = base64.b64decode(m.group(1)).decode()
        check(script == commented_script(text),
              "%s: the early_command's script differs from the one shown in comments" % name)
        r = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
        check(r.returncode == 0, "%s: sh -n: %s" % (name, r.stderr.strip()))
        check("/tmp/rackboot-progress watch </dev/null >/dev/null 2>&1 &" in early,
              "%s: the step watcher is not started detached" % name)

        token = re.search(r"^RB_PATH=(\S+)$", script, flags=re.M).group(1)
        posts = run_script(script, busybox)
        check(len(posts) == 2, "%s: %d progress posts arrived, not 2" % (name, len(posts)))
        if len(posts) == 2:
            check(posts[0][0] == token, "%s: posted to %s, not %s" % (name, posts[0][0], token))
            check(urllib.parse.parse_qs(posts[0][1]) ==
                  {"phase": ["installing"], "message": ["early_command"]},
                  "%s: first post's body %r" % (name, posts[0][1]))
            check(urllib.parse.parse_qs(posts[1][1]) ==
                  {"phase": ["failed"], "message": ["choose-mirror it s  bad "]},
                  "%s: second post's body %r" % (name, posts[1][1]))

        late = question(lines, "preseed/late_command") or ""
        keys = re.search(r"echo (\S+) \| base64 -d >/target/home/debian/.ssh/authorized_keys", late)
        if keys:
            for k in base64.b64decode(keys.group(1)).decode().splitlines():
                check(re.search(r"(^| )ssh-[a-z0-9-]+ AAAA", k) is not None,
                      "%s: not an authorized_keys line: %s" % (name, k))
        check(late.rstrip().endswith("/tmp/rackboot-progress installed"),
              "%s: late_command does not end with posting installed" % name)
        check_phone_home(name, text, late)

    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

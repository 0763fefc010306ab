#!/usr/bin/python3
"""Copy stdin to stdout, each line prefixed with the wall clock (epoch seconds).

For QEMU's serial console: carriage returns, backspaces and ANSI escapes that
SeaBIOS, OVMF and iPXE print are dropped so the log can be grepped. Unbuffered,
so a test can follow it while the VM runs.
"""
import os
import re
import sys
import time

JUNK = re.compile(rb"\x1b\[[0-9;?=]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[A-Za-z=>]|[\r\x08\x00]")
out = sys.stdout.buffer
fd = sys.stdin.fileno()
buf = b""
while True:
    chunk = os.read(fd, 4096)
    if not chunk:
        break
    buf += chunk
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        out.write(b"%.3f " % time.time() + JUNK.sub(b"", line) + b"\n")
        out.flush()
if buf:
    out.write(b"%.3f " % time.time() + JUNK.sub(b"", buf) + b"\n")
    out.flush()

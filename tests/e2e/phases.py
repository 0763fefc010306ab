#!/usr/bin/python3
"""Check and print the phases of one install from `rackboot events HOST --json`.

usage: phases.py EVENTS_JSON INSTALL_ID T0 PHASE... [--serial LOG] [--unfinished]

- every PHASE must appear among the install's events, and their first
  appearances must be in the order given;
- the last PHASE (installed) must be the install's last event and appear once
  (not with --unfinished: an install stopped on the way);
- stage2_progress, when expected, must show 25, 50, 75 and 100 percent, in order.
Prints the install's events as a timeline in seconds since T0 (epoch seconds,
the QEMU start), with milestones from the VM's serial log when given.
Exit 0 when all holds, 1 otherwise (each problem on its own line).
"""
import datetime
import json
import re
import sys


def epoch(rfc3339):
    s = rfc3339.replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(s).timestamp()


SERIAL_MARKS = [
    (r"SeaBIOS \(version", "SeaBIOS running"),
    (r"BdsDxe: loading|UEFI PXEv6|Start PXE over IPv6", "UEFI firmware boot manager / PXE"),
    (r"iPXE initialising devices", "iPXE running"),
    (r"rackboot: install ", "iPXE runs the rendered script"),
    (r"rackboot-installer: t=\S+ started", "installer /init started (kernel booted)"),
    (r"rackboot-installer: t=\S+ bootnet ", "installer: static IPv6 from ip= up"),
    (r"rackboot-installer: t=\S+ kickstart fetched", "installer: kickstart fetched"),
    (r"rackboot-installer: t=\S+ stage2 ok", "installer: stage2 fetched and verified"),
    (r"rackboot-installer: t=\S+ powering off", "installer powers off"),
    # image deploys: the deploy ramdisk, then the installed system
    (r"rackboot: image deploy ", "iPXE runs the rendered script (deploy ramdisk)"),
    # Debian's installer
    (r"rackboot: debian-installer ", "iPXE runs the rendered script (Debian installer)"),
    (r"Linux version \S+ .*Debian", "kernel booted"),
    (r"rackboot-ramdisk: loading drivers", "ramdisk /init started (kernel booted)"),
    (r"rackboot-ramdisk: network up", "ramdisk: static IPv6 + default route up"),
    (r"rackboot-ramdisk: deployed; rebooting", "ramdisk: image and seed written, reboots"),
    (r"rackboot-ramdisk: FAILED", "ramdisk: failed"),
    (r"No configuration methods|No more network devices", "iPXE: no DHCPv6 answer, back to the firmware"),
    (r"Welcome to GRUB", "GRUB from the disk"),
    (r"Welcome to .*Debian", "Debian: systemd starts (booted from disk)"),
    (r"Cloud-init v\. \S+ finished", "cloud-init: final stage done (phone_home sent)"),
    (r" login: ?$", "Debian: login prompt on the console"),
]


def main(argv):
    serial = None
    unfinished = "--unfinished" in argv
    if unfinished:
        argv.remove("--unfinished")
    if "--serial" in argv:
        i = argv.index("--serial")
        serial = argv[i + 1]
        del argv[i:i + 2]
    if len(argv) < 5:
        print(__doc__)
        return 2
    events_file, install_id, t0 = argv[1], argv[2], float(argv[3])
    expected = argv[4:]
    with open(events_file) as f:
        events = [e for e in json.load(f) if e.get("install_id") == install_id]
    problems = []

    lines = []
    for e in events:
        t = epoch(e["time"]) - t0
        pct = e.get("percent")
        msg = e.get("message") or ""
        lines.append((t, "%-18s %3s%%  %s" % (e["phase"], pct if pct is not None else "", msg)))
    if serial:
        with open(serial, errors="replace") as f:
            log = f.read().splitlines()
        for pattern, what in SERIAL_MARKS:
            rx = re.compile(pattern)
            for line in log:
                ts, _, rest = line.partition(" ")
                if rx.search(rest):
                    lines.append((float(ts) - t0, "  (serial) " + what))
                    break
    lines.sort(key=lambda x: x[0])
    print("timeline of install %s (seconds since QEMU start; events as the agent saw them)" % install_id)
    for t, text in lines:
        print("  %7.2f  %s" % (t, text))

    phases = [e["phase"] for e in events]
    first = {}
    for i, p in enumerate(phases):
        first.setdefault(p, i)
    missing = [p for p in expected if p not in first]
    if missing:
        problems.append("phases never reported: %s (seen: %s)" % (" ".join(missing), " ".join(phases)))
    present = [p for p in expected if p in first]
    for a, b in zip(present, present[1:]):
        if first[a] > first[b]:
            problems.append("%s (event %d) came after %s (event %d)" % (a, first[a], b, first[b]))
    last = expected[-1]
    if not unfinished and phases.count(last) != 1:
        problems.append("%s reported %d times" % (last, phases.count(last)))
    if not unfinished and phases and phases[-1] != last:
        problems.append("the last event is %s, not %s" % (phases[-1], last))
    if "stage2_progress" in expected and "stage2_progress" in first:
        # At least the quarters, in order, ending at 100 (the agent samples
        # the bytes acknowledged every 0.5 s; stage2 takes seconds here).
        pcts = [e.get("percent") or 0 for e in events if e["phase"] == "stage2_progress"]
        if pcts != sorted(pcts) or not {25, 50, 75, 100} <= set(pcts) or pcts[-1] != 100:
            problems.append("stage2_progress percents %s: expected 25, 50, 75, 100 in order" % pcts)
    for p in problems:
        print("PHASE CHECK: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Assertions of the fault suite over the controller's `--json` output.

  check.py events --events E.json --status S.json --agent-log agent.log
                  --ledger L.json [--ledger ...] --hosts h00,h01,...
                  [--killed-agent N ...] [--exact] [--kill-span T0 T1]
                  [--state installed] [--posts-absent-after TS]

The reference for "nothing lost, nothing twice" is what the agent journaled:
its log has one line per event ("event host=H install=I phase=P [mac=M]
percent=N message=TEXT"), written just before the journal append, and a
"journal: event host=H phase=P not recorded" line when the append failed.
For the hosts named:

  1. no event twice: for every (install, phase, percent, message) the
     controller holds at most as many as the agent journaled;
  2. no event lost: the controller holds every event the agent journaled,
     except that the last event line of an agent incarnation killed with
     SIGKILL (--killed-agent N, 0-based incarnations, each begins with the
     agent's "starting" line) may be missing: it may have been logged and
     not yet appended when the signal came;
  3. every POST the hosts got a 200 for (the ledgers) is stored exactly once;
  4. --exact: per install, each phase a request makes (dhcp_bound,
     script_served, kernel_fetched, initrd_fetched, overlay_fetched,
     kickstart_fetched, stage2_progress 25/50/75/100) is stored exactly as
     often as the host's requests for it succeeded (once, for a host that
     did not have to retry). Requests that overlap --kill-span (the agent's
     SIGKILL, 0.5 s earlier, to its restart) widen this to a range: one that
     succeeded at the host may have gone unseen by the dying agent, one that
     failed may have been seen;
  5. --state: every install is in that state;
  6. --posts-absent-after TS: no POST made after TS is stored at all (a
     revoked agent), and such events are the only ones allowed missing.

Prints a summary; exits 1 with the reasons on any violation.
"""
import argparse
import collections
import json
import re
import sys

EVENT_RE = re.compile(r"rackboot-agent: event host=(\S+) install=(\S+) phase=(\S+)"
                      r"(?: mac=\S+)? percent=(\d+) message=(.*)$")
NOT_RECORDED_RE = re.compile(r"journal: event host=(\S+) phase=(\S+) not recorded")
START_RE = re.compile(r"rackboot-agent: starting version=")
# The events one successful request of each hostsim step makes (POSTs are
# checked one by one, by their message).
STEP_PHASES = {
    "dhcp": lambda r: [("dhcp_bound", 0)],
    "script": lambda r: [("script_served", 0)],
    "kernel": lambda r: [("kernel_fetched", 0)],
    "initrd": lambda r: [("initrd_fetched", 0)],
    "overlay": lambda r: [("overlay_fetched", 0)],
    "ks": lambda r: [("kickstart_fetched", 0)],
    "stage2": lambda r: [("stage2_progress", q) for q in (25, 50, 75, 100)],
}


def unquote(s):
    s = s.rstrip("\n")
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        s = s[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return s


def agent_events(path, installs):
    """[(incarnation, key, line_no)] of journaled events of `installs`."""
    out = []
    inc = -1
    for no, line in enumerate(open(path, errors="replace"), 1):
        if START_RE.search(line):
            inc += 1
            continue
        m = EVENT_RE.search(line)
        if m:
            host, iid, phase, pct, msg = m.groups()
            if iid in installs:
                out.append({"inc": inc, "key": (iid, phase, int(pct), unquote(msg)),
                            "host": host, "line": no, "recorded": True})
            continue
        m = NOT_RECORDED_RE.search(line)
        if m:
            host, phase = m.groups()
            for e in reversed(out):
                if e["host"] == host and e["key"][1] == phase and e["recorded"]:
                    e["recorded"] = False
                    break
    return out, inc


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("events")
    e.add_argument("--events", required=True)
    e.add_argument("--status", required=True)
    e.add_argument("--agent-log", required=True)
    e.add_argument("--ledger", action="append", default=[])
    e.add_argument("--hosts", required=True)
    e.add_argument("--killed-agent", type=int, action="append", default=[])
    e.add_argument("--exact", action="store_true")
    e.add_argument("--kill-span", nargs=2, type=float)
    e.add_argument("--state")
    e.add_argument("--posts-absent-after", type=float)
    a = ap.parse_args()

    hosts = set(a.hosts.split(","))
    status = {r["host"]: r for r in json.load(open(a.status)) if r["host"] in hosts}
    problems = []
    missing_hosts = hosts - set(status)
    if missing_hosts:
        problems.append("no status for %s" % sorted(missing_hosts))
    installs = {r["install_id"]: h for h, r in status.items() if r["install_id"]}
    ctl = [ev for ev in json.load(open(a.events)) if ev["install_id"] in installs]
    C = collections.Counter((ev["install_id"], ev["phase"], ev["percent"] or 0,
                             ev["message"] or "") for ev in ctl)
    journaled, last_inc = agent_events(a.agent_log, installs)
    A = collections.Counter(x["key"] for x in journaled if x["recorded"])
    unrecorded = [x for x in journaled if not x["recorded"]]

    # The kill window: the last event line of each SIGKILLed incarnation.
    window = collections.Counter()
    for k in a.killed_agent:
        inc_events = [x for x in journaled if x["inc"] == k]
        if inc_events and inc_events[-1]["recorded"]:
            window[inc_events[-1]["key"]] += 1

    posts = []
    ledger = []
    for path in a.ledger:
        for r in json.load(open(path)):
            if r["host"] in hosts:
                ledger.append(r)
                if r["step"] == "post":
                    posts.append(r)
    by_host_install = {h: r["install_id"] for h, r in status.items()}

    late_posts = set()
    if a.posts_absent_after is not None:
        for p in posts:
            if p["t0"] >= a.posts_absent_after:
                late_posts.add((by_host_install[p["host"]], p["phase"], p["percent"], p["message"]))

    # 1. nothing twice (or invented)
    for k, n in sorted(C.items()):
        if n > A[k]:
            problems.append("controller holds %d x %s, the agent journaled it %d times"
                            % (n, k, A[k]))
    # 2. nothing lost
    lost = []
    for k, n in sorted(A.items()):
        short = n - C[k]
        if short <= 0:
            continue
        if k in late_posts:
            continue
        if short <= window[k]:
            print("  note: %s missing: the last event the agent logged before its SIGKILL "
                  "(logged, possibly not yet appended)" % (k,))
            continue
        lost.append(k)
        problems.append("lost: the agent journaled %d x %s, the controller holds %d" % (n, k, C[k]))
    # 3. every answered POST exactly once; 6. late ones never
    for p in posts:
        k = (by_host_install[p["host"]], p["phase"], p["percent"], p["message"])
        if k in late_posts:
            if C[k]:
                problems.append("stored although posted after the revocation: %s" % (k,))
        elif p.get("status") == 200 and C[k] != 1:
            problems.append("POST answered 200 stored %d times: %s" % (C[k], k))
    # 4. exact counts per (install, phase, percent), from what each host did
    if a.exact:
        span = a.kill_span
        exact = near = 0
        for h in sorted(hosts):
            iid = by_host_install.get(h)
            got = collections.Counter()
            for k, n in C.items():
                if k[0] == iid and k[1] != "installing" and k[1] != "installed":
                    got[(k[1], k[2])] += n
            lo, hi = collections.Counter(), collections.Counter()
            for r in ledger:
                if r["host"] != h or r["step"] not in STEP_PHASES:
                    continue
                around_kill = bool(span) and r["t1"] >= span[0] - 0.5 and r["t0"] <= span[1]
                for ph in STEP_PHASES[r["step"]](r):
                    if r["ok"] and not around_kill:
                        lo[ph] += 1
                        hi[ph] += 1
                    elif r["ok"] or around_kill:
                        hi[ph] += 1
            for k in set(got) | set(lo) | set(hi):
                if not lo[k] <= got[k] <= hi[k]:
                    problems.append("host %s install %s: %s stored %d times, the host's requests "
                                    "make %s" % (h, iid, k, got[k], lo[k] if lo[k] == hi[k]
                                                 else "%d to %d" % (lo[k], hi[k])))
            if lo == hi:
                exact += 1
            else:
                near += 1
        print("  per-phase counts match the hosts' requests: exactly for %d hosts%s"
              % (exact, ", within the kill's bounds for %d" % near if span else ""))
    # 5. states
    if a.state:
        wrong = {h: r["state"] for h, r in status.items() if r["state"] != a.state}
        if wrong:
            problems.append("not %s: %s" % (a.state, wrong))
    corrupt = [r for r in ledger if r.get("corrupt")]
    for r in corrupt:
        problems.append("host %s got a corrupt %s (attempt %d): %s"
                        % (r["host"], r["step"], r["attempt"], r.get("error")))

    print("  hosts %d, installs %d; agent journaled %d events (%d more logged as not recorded, "
          "%d incarnations), controller holds %d; POSTs %d (%d answered 200)"
          % (len(hosts), len(installs), sum(A.values()), len(unrecorded), last_inc + 1,
             sum(C.values()), len(posts), sum(1 for p in posts if p.get("status") == 200)))
    if problems:
        for p in problems[:40]:
            print("  PROBLEM: " + p)
        if len(problems) > 40:
            print("  ... %d more" % (len(problems) - 40))
        sys.exit(1)
    print("  events: nothing lost, nothing twice")


if __name__ == "__main__":
    main()

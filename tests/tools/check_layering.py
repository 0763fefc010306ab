#!/usr/bin/env python3
"""The dependency rule of README.md's "Where things are": shared code goes
down, never sideways. controller/, cli/, rack-agent/ and deploy-ramdisk/
include none of each other's headers, and model/ (with proto/, client/, pki/, common/) includes
none of theirs (nor do metrics/ and http/, the two daemons' shared libraries).

Checked twice, so that neither a path trick nor a link added in CMake gets
past it:
  1. every translation unit's include search path (compile_commands.json)
     names no folder of a sibling;
  2. no #include in a folder names a sibling's path.
Exits 1 listing every violation, 0 when the rule holds."""
import json
import os
import re
import sys

SIBLINGS = ("controller", "cli", "rack-agent", "deploy-ramdisk")
SHARED = ("model", "proto", "client", "pki", "common", "metrics", "http", "render")


def top(path, root):
    rel = os.path.relpath(os.path.realpath(path), root)
    return rel.split(os.sep)[0]


def include_dirs(entry):
    args = entry.get("arguments") or entry["command"].split()
    dirs = []
    for i, a in enumerate(args):
        if a in ("-I", "-isystem") and i + 1 < len(args):
            dirs.append(args[i + 1])
        elif a.startswith("-I"):
            dirs.append(a[2:])
        elif a.startswith("-isystem") and len(a) > 8:
            dirs.append(a[8:])
    return [os.path.join(entry["directory"], d) for d in dirs]


def main():
    if len(sys.argv) != 3:
        print("usage: check_layering.py SOURCE_DIR BUILD_DIR", file=sys.stderr)
        return 2
    root = os.path.realpath(sys.argv[1])
    with open(os.path.join(sys.argv[2], "compile_commands.json")) as f:
        db = json.load(f)
    bad = []
    checked = 0
    for entry in db:
        src = os.path.join(entry["directory"], entry["file"])
        owner = top(src, root)
        if owner not in SIBLINGS + SHARED:
            continue
        checked += 1
        forbidden = [s for s in SIBLINGS if s != owner]
        for d in include_dirs(entry):
            real = os.path.realpath(d)
            if not real.startswith(root + os.sep):
                continue
            if top(real, root) in forbidden:
                bad.append(f"{os.path.relpath(src, root)}: include path {os.path.relpath(real, root)}")
    pattern = re.compile(r'#\s*include\s+"(?:\.\./)*(' + "|".join(SIBLINGS) + r')/')
    for folder in SIBLINGS + SHARED:
        for dirpath, _, files in os.walk(os.path.join(root, folder)):
            for name in files:
                if not name.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, errors="replace") as f:
                    for n, line in enumerate(f, 1):
                        m = pattern.search(line)
                        if m and m.group(1) != folder:
                            bad.append(f"{os.path.relpath(path, root)}:{n}: {line.strip()}")
    for b in bad:
        print("sideways:", b)
    print(f"layering: {checked} translation units checked, {len(bad)} sideways dependencies")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

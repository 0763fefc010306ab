#!/usr/bin/env python3
"""Checks the NoCloud seeds in tests/golden/nocloud/ the way cloud-init reads
them (render/nocloud.h).

Always (python3-yaml):
  - every document parses with PyYAML (cloud-init's loader) to exactly what
    it parses to as JSON: the JSON-as-YAML output has no YAML 1.1 surprise
    and no operator text became a key;
  - the top-level keys of each document are the ones rackboot writes.

With cloud-init's Python package importable (Debian's cloud-init 22.4; see
--cloud-init-path): the user-data goes through cloud-init's own
UserDataProcessor and cloud-config part handler (multipart and Merge-Type
included), the merged config is validated against cloud-init's schema
(strict), and network-config is rendered by cloud-init's networkd renderer
into a scratch directory and the written .network file is checked. Prints
"N passed, N failed" last; exits 1 on any failure.
"""
import argparse
import glob
import json
import os
import sys
import tempfile

import yaml

IFNAME = "boot0"
RESULTS = {"passed": 0, "failed": 0}


def check(ok, what):
    RESULTS["passed" if ok else "failed"] += 1
    if not ok:
        print("FAIL:", what)


def strip_header(text):
    return text[len("#cloud-config\n"):] if text.startswith("#cloud-config\n") else text


def yaml_equals_json(path, text):
    y = yaml.safe_load(text)
    j = json.loads(strip_header(text))
    check(y == j, f"{path}: PyYAML and JSON readings differ")
    return j


def check_plain(path, prefix_keys):
    text = open(path, encoding="utf-8").read()
    doc = yaml_equals_json(path, text)
    check(isinstance(doc, dict) and list(doc)[: len(prefix_keys)] == prefix_keys,
          f"{path}: keys {list(doc)} do not start with {prefix_keys}")
    return doc


def cloudinit_user_data(path, text, tmp):
    """The cloud-config cloud-init 22.4 ends up with for this user-data."""
    from cloudinit import helpers, util
    from cloudinit import user_data as ud
    from cloudinit.handlers.cloud_config import CloudConfigPartHandler

    paths = helpers.Paths({"cloud_dir": tmp, "run_dir": tmp})
    msg = ud.UserDataProcessor(paths).process(text)
    handler = CloudConfigPartHandler(paths)
    handler.cloud_buf = {}
    others = []
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            continue
        ctype = part.get_content_type()
        payload = util.fully_decoded_payload(part)
        if ctype == "text/cloud-config":
            headers = dict(part)
            headers["Content-Type"] = ctype
            handler._merge_part(payload, headers)
        else:
            others.append((ctype, payload))
    return handler.cloud_buf, others


def check_with_cloudinit(golden, tmp):
    from cloudinit.config.schema import get_schema, validate_cloudconfig_schema
    from cloudinit.net import network_state, networkd

    schema = get_schema()
    for path in sorted(glob.glob(os.path.join(golden, "*.user-data"))):
        name = os.path.basename(path).split(".")[0]
        text = open(path, encoding="utf-8").read()
        cfg, others = cloudinit_user_data(path, text, tmp)
        try:
            validate_cloudconfig_schema(cfg, schema, strict=True)
            check(True, "")
        except Exception as e:  # SchemaValidationError
            check(False, f"{path}: cloud-init schema: {e}")
        check(cfg.get("hostname") == name, f"{path}: merged hostname {cfg.get('hostname')!r}")
        ph = cfg.get("phone_home", {})
        check("/phone-home/" in ph.get("url", "") and ph.get("post") == ["instance_id", "hostname"],
              f"{path}: phone_home {ph!r}")
        if name == "app5":
            # The operator's part merged by its Merge-Type: lists appended,
            # rackboot's keys kept, the operator's new keys added.
            check(len(cfg.get("write_files", [])) == 2, f"{path}: write_files not appended")
            check(len(cfg.get("runcmd", [])) == 2, f"{path}: runcmd not appended")
            check(cfg.get("packages") == ["htop"], f"{path}: packages lost")
            check(cfg["write_files"][0]["path"].endswith("50-rackboot-no-ra.conf"),
                  f"{path}: rackboot's drop-in is not first")
        if name == "cafe1":
            check(others and others[0][0] == "text/x-shellscript"
                  and "caf\u00e9 cafe1" in others[0][1],
                  f"{path}: the 8-bit script part did not come through: {others!r}")

    for path in sorted(glob.glob(os.path.join(golden, "*.network-config"))):
        cfg = yaml.safe_load(open(path, encoding="utf-8"))
        ns = network_state.parse_net_config_data(cfg)
        out = tempfile.mkdtemp(dir=tmp)
        renderer = networkd.Renderer({})
        renderer.render_network_state(ns, target=out)
        written = os.path.join(out, "etc/systemd/network", f"10-cloud-init-{IFNAME}.network")
        check(os.path.exists(written), f"{path}: networkd renderer wrote no {written}")
        if not os.path.exists(written):
            continue
        net = open(written).read()
        eth = cfg["ethernets"][IFNAME]
        check(f"MACAddress={eth['match']['macaddress']}" in net, f"{path}: no MAC match:\n{net}")
        check(f"Name={IFNAME}" in net, f"{path}: no Name match:\n{net}")
        for a in eth.get("addresses", []):
            check(f"Address={a}" in net, f"{path}: no Address={a}:\n{net}")
        if "gateway6" in eth:
            # A default route: a [Route] with the gateway and no Destination
            # other than ::/0 (22.4 turns `to: ::/0` into ::/64).
            route = net[net.find("[Route]"):] if "[Route]" in net else ""
            check(f"Gateway={eth['gateway6']}" in route
                  and ("Destination=" not in route or "Destination=::/0" in route),
                  f"{path}: no default route via the gateway:\n{net}")
        check("routes" not in eth, f"{path}: routes (22.4 renders ::/0 as ::/64)")
        if eth.get("dhcp6"):
            check("DHCP=ipv6" in net, f"{path}: DHCPv6 not on:\n{net}")
        else:
            check("DHCP=no" in net, f"{path}: DHCP not off:\n{net}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("golden", help="tests/golden/nocloud")
    ap.add_argument("--cloud-init-path", action="append", default=[],
                    help="a directory to import cloudinit from (e.g. a Debian cloud-init "
                         "package extracted with dpkg-deb -x, .../usr/lib/python3/dist-packages)")
    ap.add_argument("--require-cloud-init", action="store_true")
    args = ap.parse_args()
    sys.path[:0] = args.cloud_init_path

    for path in sorted(glob.glob(os.path.join(args.golden, "*.meta-data"))):
        check_plain(path, ["instance-id", "local-hostname"])
    for path in sorted(glob.glob(os.path.join(args.golden, "*.network-config"))):
        doc = check_plain(path, ["version", "ethernets"])
        check(doc["version"] == 2 and list(doc["ethernets"]) == [IFNAME],
              f"{path}: not one v2 ethernet {IFNAME}")
    for path in sorted(glob.glob(os.path.join(args.golden, "*.user-data"))):
        text = open(path, encoding="utf-8").read()
        if text.startswith("#cloud-config\n"):
            check_plain(path, ["hostname"])
        else:
            check(text.startswith("MIME-Version: 1.0\n"), f"{path}: neither cloud-config nor MIME")

    try:
        import cloudinit  # noqa: F401
        have = True
    except ImportError:
        have = False
    if have:
        # cloud-init logs through the logging module; keep its chatter out.
        import logging
        logging.disable(logging.CRITICAL)
        with tempfile.TemporaryDirectory() as tmp:
            check_with_cloudinit(args.golden, tmp)
        print("checked with cloud-init's own parser, merger, schema and networkd renderer")
    elif args.require_cloud_init:
        check(False, "cloud-init's Python package is not importable")
    else:
        print("cloud-init not importable: PyYAML and key checks only")
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

#!/bin/bash
# rackboot end to end with Debian's real installer (d-i), IPv6 only.
#
#   debian_installer.sh AGENT CONTROLLER CLI PKI
#
# The lab's rack (deploy/lab/lib.sh) with a kind = debian-installer profile:
# Debian's netboot kernel and initrd (package
# debian-installer-12-netboot-amd64, downloaded once into
# /var/cache/rackboot-e2e) and the documented preseed template
# (deploy/examples/debian12.preseed). The host boots in QEMU (TCG, SeaBIOS
# and its iPXE ROM), and then:
#   1. d-i configures the host's reserved address statically from the kernel
#      command line (netcfg, no autoconfiguration) and fetches the preseed
#      from the agent: kickstart_fetched. The agent serves it only to the
#      host's own address, so this is the static address at work;
#   2. the preseed's early_command posts `installing early_command`, seen
#      live by `rackboot watch`, and starts the step watcher, which posts
#      each installer step main-menu starts;
#   3. d-i goes on to the components it must download from the mirror
#      (.udeb files, which the package mirror reachable here does not
#      serve, and which the rack's namespaces cannot reach anyway): the
#      test waits for the first step after early_command to be posted
#      (installing STEP, or failed), stops the VM there and says what was
#      reached.
# A capture of the rack link holds no DHCPv4 packet after the installer's
# initrd was sent (the firmware's iPXE sends its own before): d-i never
# waited for DHCPv4.
#
# Needs what e2e.sh needs (root, ip netns, /dev/net/tun, QEMU, SeaBIOS's iPXE
# ROM, radvd) and tcpdump; once per machine the Debian mirror. Skips (77)
# only when those facilities are absent. KEEP_TMP=1 keeps the work directory.
set -uo pipefail

RB_AGENT=${1:?usage: debian_installer.sh AGENT CONTROLLER CLI PKI}
RB_CONTROLLER=${2:?controller}
RB_CLI=${3:?cli}
RB_PKI=${4:?pki}
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=e2e.debian-installer
# shellcheck disable=SC2034 # read by deploy/lab/lib.sh
LAB_ID="di$$"
# shellcheck disable=SC2034 # read by deploy/lab/lib.sh
LAB_PROFILE=deb12-di
# Router advertisements without the A flag: no SLAAC address, so d-i's only
# global address is the static one netcfg configures; the preseed can only
# be fetched from it. (With SLAAC, Linux may pick either address: both
# match the agent's /64 equally.)
# shellcheck disable=SC2034 # read by deploy/lab/lib.sh
LAB_RA_AUTONOMOUS=off
# shellcheck source=deploy/lab/lib.sh
. "$HERE/../../deploy/lab/lib.sh"

LIMIT=${E2E_DI_LIMIT:-420} # power-on to the first installer step after early_command
fail() { lab_fail "$@"; }
lab_test_start "$(lab_missing net qemu bios tcpdump)"

lab_net_up || fail "network setup"
lab_pki || fail "PKI"
lab_write_configs || fail "configs do not pass --check-config"
lab_start_origin || fail "origin"
lab_say "Debian's netboot installer ($LAB_DI_PACKAGE, cached in $LAB_CACHE)"
lab_fetch_debian_installer "$LAB_DIR/origin" || fail "cannot fetch $LAB_DI_PACKAGE"
ssh-keygen -q -t ed25519 -N '' -C rackboot-e2e -f "$LAB_DIR/inputs-id" || fail "ssh-keygen"
mkdir -p "$LAB_DIR/inputs" && cp "$LAB_DIR/inputs-id.pub" "$LAB_DIR/inputs/id.pub"
lab_write_di_inputs "$LAB_DIR/inputs"
lab_start_controller || fail "controller"
lab_start_agent || fail "agent"
lab_submit "$LAB_DIR/inputs"

# The preseed as the host will get it: from another address, refused.
ks_url="http://[$LAB_AGENT_ADDR]/ks/$INSTALL_ID?token=nope"
code=$(ip netns exec "$LAB_NS_RACK" curl -gs -o /dev/null -w '%{http_code}' -m 20 "$ks_url")
[ "$code" = 403 ] || fail "GET $ks_url with a wrong token: HTTP $code, not 403"

lab_spawn watch - "$RB_CLI" --controller "ipc://$LAB_DIR/api.sock" watch "$LAB_HOST"
# Every packet of the host's MAC: DHCP of both families, neighbour
# discovery (its DAD for the static address), its HTTP.
ip netns exec "$LAB_NS_RACK" tcpdump -i "$LAB_BR" -n -s 200 -U -w "$LAB_DIR/boot.pcap" \
    "ether host $LAB_HOST_MAC" >/dev/null 2>"$LAB_DIR/tcpdump.err" &
LAB_PIDS="$LAB_PIDS $!"
lab_wait_for 10 grep -q "listening on" "$LAB_DIR/tcpdump.err" || fail "tcpdump did not start"

lab_say "boot (bios, QEMU TCG, 1 GiB): iPXE -> d-i -> netcfg static -> preseed -> early_command, at most $LIMIT s"
# shellcheck disable=SC2034 # read by lib.sh (lab_qemu_cmd)
LAB_VM_MEM=1024
lab_boot_vm bios "$LAB_DIR/serial.log" "$((LIMIT + 30))" || fail "QEMU"
T0=$LAB_QEMU_T0

# reached: the installer's first step after early_command, or a failure.
reached() {
    lab_rb events "$LAB_HOST" --json >"$LAB_DIR/events.json" 2>/dev/null || return 1
    python3 - "$LAB_DIR/events.json" "$INSTALL_ID" <<'PY'
import json, sys
ev = [e for e in json.load(open(sys.argv[1])) if e.get("install_id") == sys.argv[2]]
# The mirror: d-i's next components come from it (choose-mirror picks it,
# download-installer fetches from it), or a step failed.
mirror = [e for e in ev if e["phase"] == "installing"
          and e.get("message") in ("choose-mirror", "download-installer")]
sys.exit(0 if mirror or any(e["phase"] == "failed" for e in ev) else 1)
PY
}
deadline=$(($(date +%s) + LIMIT))
until reached; do
    if [ "$(date +%s)" -ge "$deadline" ] || ! lab_vm_running; then
        tail -n 40 "$LAB_DIR/serial.log"
        fail "no installer step after early_command within $LIMIT s (phase $(lab_status_field "$LAB_HOST" phase))"
    fi
    sleep 2
done
T_REACHED=$(lab_ts)
lab_say "the installer's first step after early_command posted $(lab_rel "$T_REACHED" "$T0") s after power-on; stopping the VM"
lab_vm_stop
sleep 1
lab_stop_pid "$(cat "$LAB_DIR/watch.pid")"

lab_rb events "$LAB_HOST" --json >"$LAB_DIR/events.json" || fail "rackboot events failed"
python3 "$HERE/phases.py" "$LAB_DIR/events.json" "$INSTALL_ID" "$T0" \
    dhcp_bound script_served kernel_fetched initrd_fetched kickstart_fetched installing \
    --serial "$LAB_DIR/serial.log" --unfinished || fail "the install's phases are not in order"

# What d-i reached, as rackboot recorded it; no DHCPv4 from the installer.
python3 - "$LAB_DIR/events.json" "$INSTALL_ID" "$LAB_DIR/watch.log" "$LAB_DIR/boot.pcap" \
    "$LAB_HOST_ADDR" <<'PY' || fail "see above"
import datetime, json, subprocess, sys

def epoch(t):
    return datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()

ev = [e for e in json.load(open(sys.argv[1])) if e.get("install_id") == sys.argv[2]]
ok = True
first = {}
for e in ev:
    first.setdefault(e["phase"], e)
installing = [e for e in ev if e["phase"] in ("installing", "failed")]
print("  the installer's own reports:")
for e in installing:
    print("    %-10s %s" % (e["phase"], e.get("message", "")))
if installing[0].get("message") != "early_command":
    print("FAIL: the first installing event is not the early_command's:", installing[0])
    ok = False
t_initrd = epoch(first["initrd_fetched"]["time"])
t_ks = epoch(first["kickstart_fetched"]["time"])
print("  initrd sent -> preseed fetched (d-i boot, netcfg static): %.1f s" % (t_ks - t_initrd))

watch = open(sys.argv[3], errors="replace").read()
if "early_command" not in watch or "installing" not in watch:
    print("FAIL: rackboot watch did not show installing early_command:\n" + watch)
    ok = False

def packets(flt):
    return subprocess.run(["tcpdump", "-tt", "-n", "-r", sys.argv[4], flt],
                          capture_output=True, text=True).stdout.splitlines()

# Every DHCPv4 packet's time (tcpdump -tt): none after the initrd went out.
out = packets("udp port 67 or udp port 68")
late = [l for l in out if float(l.split()[0]) > t_initrd]
print("  DHCPv4 packets on the rack link: %d in all (the firmware's iPXE), %d after the initrd was sent"
      % (len(out), len(late)))
if late:
    print("FAIL: DHCPv4 after the installer booted:\n  " + "\n  ".join(late))
    ok = False
dhcp6 = [l for l in packets("udp port 546 or udp port 547") if float(l.split()[0]) > t_initrd]
print("  DHCPv6 packets from the installer: %d (netcfg's static configuration asks nobody)"
      % len(dhcp6))
if dhcp6:
    print("FAIL: d-i asked DHCPv6:\n  " + "\n  ".join(dhcp6))
    ok = False
# The static address from the kernel line on the wire: d-i's duplicate
# address detection for it after the initrd was sent, and the preseed
# fetched from it (the host's first HTTP request after the kernel booted).
addr = sys.argv[5]
dad = [l for l in packets("icmp6 and ip6[40] == 135") if "who has " + addr in l
       and float(l.split()[0]) > t_initrd]
get = [l for l in packets("tcp dst port 80") if float(l.split()[0]) > t_initrd and "GET /ks/" in l]
print("  the static address %s: d-i's DAD probes %d; preseed fetched from %s"
      % (addr, len(dad), get[0].split()[2].rsplit(".", 1)[0] if get else "?"))
if not dad or not get or get[0].split()[2].rsplit(".", 1)[0] != addr:
    print("FAIL: d-i did not fetch its preseed from its static address:\n  " + "\n  ".join(get))
    ok = False
sys.exit(0 if ok else 1)
PY
echo "---- rackboot watch $LAB_HOST (live, as the installer ran)"
sed 's/^/  /' "$LAB_DIR/watch.log"
lab_say "d-i stopped where it needs the mirror's .udeb components (not served here; see README)"
echo "PASS: $TEST_NAME"

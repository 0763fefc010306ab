#!/bin/bash
# rackboot end to end, image deploy: a real Debian written to a blank disk
# over IPv6 only, booted from that disk, confirmed by the OS itself.
#
#   image_deploy.sh FIRMWARE AGENT CONTROLLER CLI PKI
#   FIRMWARE: bios (SeaBIOS + Debian's iPXE ROM), uefi (OVMF + the ROM's EFI
#   iPXE), or mismatch (bios; the image the host receives does not match the
#   hash it was given: the install must end failed, with the reason)
#
# In network namespaces of its own (deploy/lab/lib.sh): rackboot-controller,
# rackboot-agent with [deploy] ramdisk, radvd (M, O, A) on the rack link, an
# origin web server with the image, and QEMU (TCG) as host web17 with a
# blank 4 GiB virtio disk after its NIC in the boot order.
#
#   1. the deploy ramdisk (deploy-ramdisk/build-ramdisk.sh) and the Debian 12
#      image (deploy/images/build-debian.sh), both cached by content under
#      /var/cache/rackboot and built once when tests run in parallel (locks);
#      an SSH key made for the test; profile deb12 (kind = image) imported
#   2. `rackboot install web17 --profile deb12`, the VM boots: DHCPv6 -> iPXE
#      script -> the agent's deploy ramdisk -> seed and image fetched ->
#      writing %, written -> reboot -> no DHCPv6 answer (the intent is
#      netboot_done) -> the firmware boots the disk -> Debian, cloud-init:
#      hostname, static IPv6 address, key, phone_home -> first_boot
#   3. `rackboot status web17 --json`: installed, phase first_boot; the
#      controller's events in order; the phase timeline (seconds since QEMU
#      start, with milestones from the serial console)
#   4. SSH (IPv6, the test's key, from the rack's namespace): hostname,
#      ip -6 addr (the static address; whether a SLAAC address is there is
#      reported), the firmware the guest booted with
# mismatch: a small GPT image; the profile's cmdline overrides
# rackboot.image_sha256 (the ramdisk takes the last one), as if the bytes had
# changed between the agent and the host: the ramdisk refuses, posts failed
# with "sha256 mismatch", and the disk holds no partition table.
#
# Needs root, ip netns, /dev/net/tun, qemu-system-x86_64 and the firmware,
# radvd, python3, curl, ssh, ssh-keygen, zstd, and what the two builds need
# (deploy/install-deps.sh: mmdebstrap, mtools, cpio, ...). Skips (77) when
# those are absent. Environment: RACKBOOT_IMAGE_CACHE and
# RACKBOOT_RAMDISK_CACHE move the caches (a cold run), E2E_DEPLOY_LIMIT
# bounds power-on to installed (default 1500 s), KEEP_TMP=1 keeps the logs.
set -uo pipefail

FW=${1:?usage: image_deploy.sh bios|uefi|mismatch AGENT CONTROLLER CLI PKI}
RB_AGENT=${2:?agent}
RB_CONTROLLER=${3:?controller}
RB_CLI=${4:?cli}
RB_PKI=${5:?pki}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
TEST_NAME="e2e.image_$FW"
# shellcheck disable=SC2034 # read by deploy/lab/lib.sh
LAB_ID="img$$"
# shellcheck disable=SC2034
LAB_PROFILE=deb12
# shellcheck source=deploy/lab/lib.sh
. "$SRC/deploy/lab/lib.sh"

DEPLOY_LIMIT=${E2E_DEPLOY_LIMIT:-1500} # power-on to installed (TCG)
FAIL_LIMIT=${E2E_FAIL_LIMIT:-400}      # mismatch: power-on to failed

case "$FW" in
bios | mismatch) VMFW=bios ;;
uefi) VMFW=uefi ;;
*) echo "usage: image_deploy.sh bios|uefi|mismatch AGENT CONTROLLER CLI PKI" >&2; exit 2 ;;
esac

missing=$(lab_missing net qemu "$VMFW")
for t in ssh ssh-keygen zstd flock cpio depmod apt-get sfdisk; do
    command -v "$t" >/dev/null || missing="$missing"$'\n'"$t not installed"
done
if [ "$FW" = mismatch ]; then
    for t in sgdisk mkfs.ext4; do
        command -v "$t" >/dev/null || missing="$missing"$'\n'"$t not installed"
    done
else
    for t in mmdebstrap mcopy mkfs.vfat mkfs.ext4; do
        command -v "$t" >/dev/null || missing="$missing"$'\n'"$t not installed (deploy/install-deps.sh)"
    done
fi
fail() { lab_fail "$@"; }
lab_test_start "$(echo "$missing" | sed '/^$/d')"

# ---- 1. what the host will run -----------------------------------------------------
lab_say "deploy ramdisk (deploy-ramdisk/build-ramdisk.sh, cached)"
t=$(lab_ts)
lab_build_ramdisk "$LAB_DIR/ramdisk" >"$LAB_DIR/ramdisk-build.log" 2>&1 ||
    { tail -n 20 "$LAB_DIR/ramdisk-build.log"; fail "cannot build the deploy ramdisk"; }
T_RAMDISK_BUILD=$(lab_rel "$(lab_ts)" "$t")
mkdir -p "$LAB_DIR/origin"
t=$(lab_ts)
if [ "$FW" = mismatch ]; then
    lab_say "image: a 12 MiB GPT disk (tests/integration/deploy_lib.sh)"
    # shellcheck source=tests/integration/deploy_lib.sh
    . "$SRC/tests/integration/deploy_lib.sh"
    deploy_gpt_image "$LAB_DIR/small.img" || fail "cannot make the test image"
    zstd -q --rm "$LAB_DIR/small.img" -o "$LAB_DIR/origin/disk.raw.zst" || fail "zstd"
    # The override the ramdisk sees last (ramdisk-init.sh reads words in order).
    EXTRA="rackboot.image_sha256=$(printf '%064d' 0)"
else
    lab_say "image: Debian 12 (deploy/images/build-debian.sh, cached; a first build takes ~5 min)"
    lab_build_image "$LAB_DIR/origin/disk.raw.zst" >"$LAB_DIR/image-build.log" 2>&1 ||
        { tail -n 20 "$LAB_DIR/image-build.log"; fail "cannot build the Debian image"; }
    EXTRA=""
fi
T_IMAGE_BUILD=$(lab_rel "$(lab_ts)" "$t")
lab_say "builds: ramdisk $T_RAMDISK_BUILD s, image $T_IMAGE_BUILD s ($(stat -c %s "$LAB_DIR/origin/disk.raw.zst") bytes)"
ssh-keygen -q -t ed25519 -N '' -C "$TEST_NAME" -f "$LAB_DIR/id" || fail "ssh-keygen"

# ---- the rack --------------------------------------------------------------------------
lab_say "network: namespaces $LAB_NS_CTL (controller, origin) and $LAB_NS_RACK (agent, radvd, VM)"
lab_net_up || fail "network setup"
lab_pki || fail "PKI"
LAB_RAMDISK=$LAB_DIR/ramdisk
lab_write_configs || fail "configs do not pass --check-config"
lab_start_origin || fail "origin"
lab_write_image_inputs "$LAB_DIR/inputs" disk.raw.zst "$LAB_DIR/id.pub" "$EXTRA"
lab_say "controller and agent (mutual TLS over the uplink)"
lab_start_controller || fail "controller"
lab_start_agent || fail "agent"
grep -q "deploy: serving the deploy ramdisk" "$LAB_DIR/agent.log" || fail "the agent does not serve the ramdisk"

# ---- 2. submit and boot -------------------------------------------------------------
lab_submit "$LAB_DIR/inputs"
# The agent pre-warms its cache at dispatch; booting before it has the
# image only makes the ramdisk wait, but the timeline reads better after.
cached() { grep -q "cache stored object=.*url=.*disk.raw.zst" "$LAB_DIR/agent.log"; }
lab_wait_for 120 cached || fail "the agent did not cache the image within 120 s"

truncate -s 4G "$LAB_DIR/disk.raw"
LAB_VM_DISK=$LAB_DIR/disk.raw
LAB_VM_MEM=1024
LAB_VM_REBOOT=1
# OVMF: no IPv4 PXE/HTTP boot options (each waits ~60 s for DHCPv4 before
# the firmware reaches the disk; lab_qemu_cmd).
LAB_VM_NO_IPV4=1
LIMIT=$DEPLOY_LIMIT
[ "$FW" = mismatch ] && LIMIT=$FAIL_LIMIT
lab_say "power-on ($VMFW, TCG, 1 vCPU): at most $LIMIT s to $([ "$FW" = mismatch ] && echo failed || echo installed)"
lab_boot_vm "$VMFW" "$LAB_DIR/serial.log" "$((LIMIT + 60))" || fail "QEMU"
T0=$LAB_QEMU_T0
# The install reached an end state (the loop below says which is right).
install_ended() {
    case "$(lab_status_field "$LAB_HOST" state)" in
    installed | failed | cancelled | timed_out) return 0 ;;
    *) return 1 ;;
    esac
}
deadline=$(($(date +%s) + LIMIT))
last=""
T_END_STATE=""
while :; do
    state=$(lab_status_field "$LAB_HOST" state)
    phase=$(lab_status_field "$LAB_HOST" phase)
    if [ "$state/$phase" != "$last" ]; then
        echo "  $(lab_rel "$(lab_ts)" "$T0")  (status) $state / $phase"
        last="$state/$phase"
    fi
    case "$FW/$state" in
    mismatch/failed | bios/installed | uefi/installed)
        T_END_STATE=$(lab_ts)
        break
        ;;
    */failed | */cancelled | */timed_out | mismatch/installed)
        fail "install ended $state: $(lab_status_field "$LAB_HOST" message)" ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "---- serial (last 40 lines)"
        tail -n 40 "$LAB_DIR/serial.log" | cut -c1-200
        fail "not done within $LIMIT s (state $state, phase $phase)"
    fi
    if ! lab_vm_running; then
        # The VM is gone: its last events may still be on their way to the
        # controller. Up to 30 s for the install to end; the loop judges it.
        if lab_wait_for 30 install_ended; then
            continue
        fi
        fail "the VM stopped (state $state, phase $phase); serial: $(tail -n 5 "$LAB_DIR/serial.log")"
    fi
    # A status poll (the deadline above bounds it), not a wait for an event.
    sleep 2
done
lab_say "$state after $(lab_rel "$T_END_STATE" "$T0") s"

lab_rb events "$LAB_HOST" --json >"$LAB_DIR/events.json" || fail "rackboot events failed"
lab_rb status "$LAB_HOST" --json >"$LAB_DIR/status.json" || fail "rackboot status failed"
echo "---- rackboot status $LAB_HOST --json"
cat "$LAB_DIR/status.json"
PROBLEMS=""

if [ "$FW" = mismatch ]; then
    # ---- the refused image ----
    EXPECTED="dhcp_bound script_served kernel_fetched initrd_fetched failed"
    # shellcheck disable=SC2086 # a list
    python3 "$HERE/phases.py" "$LAB_DIR/events.json" "$INSTALL_ID" "$T0" $EXPECTED \
        --serial "$LAB_DIR/serial.log" || PROBLEMS="the events lack phases or are out of order"
    msg=$(lab_status_field "$LAB_HOST" message)
    echo "  reason: $msg"
    case "$msg" in
    *"sha256 mismatch"*) ;;
    *) PROBLEMS="${PROBLEMS:+$PROBLEMS; }the failure does not say sha256 mismatch: $msg" ;;
    esac
    grep -q '"phase": "written"\|"phase": "first_boot"' "$LAB_DIR/events.json" &&
        PROBLEMS="${PROBLEMS:+$PROBLEMS; }written or first_boot reported for a refused image"
    lab_vm_wait_exit 60 || echo "  (the ramdisk did not power off within 60 s)"
    lab_vm_stop
    # Not bootable-looking: no partition table (the ramdisk writes it last
    # and wipes the start on failure), no GPT signature at LBA 1.
    if sfdisk -d "$LAB_DIR/disk.raw" >/dev/null 2>&1 ||
        [ "$(dd if="$LAB_DIR/disk.raw" bs=1 skip=512 count=8 status=none | tr -d '\0')" = "EFI PART" ]; then
        PROBLEMS="${PROBLEMS:+$PROBLEMS; }the disk holds a partition table after a refused image"
    fi
    T_END=$(lab_ts)
    echo "times ($FW): power-on to failed $(lab_rel "$T_END_STATE" "$T0") s; ramdisk build $T_RAMDISK_BUILD s; whole test $(lab_rel "$T_END" "$T_START") s"
    [ -z "$PROBLEMS" ] || fail "$PROBLEMS"
    echo "PASS: $TEST_NAME"
    exit 0
fi

# ---- 3. the controller's view ---------------------------------------------------------
EXPECTED="dhcp_bound script_served kernel_fetched initrd_fetched writing written first_boot"
# shellcheck disable=SC2086 # a list
python3 "$HERE/phases.py" "$LAB_DIR/events.json" "$INSTALL_ID" "$T0" $EXPECTED \
    --serial "$LAB_DIR/serial.log" || PROBLEMS="the events lack phases or are out of order (PHASE CHECK lines)"
python3 - "$LAB_DIR/status.json" "$INSTALL_ID" <<'PY' || fail "rackboot status does not say installed / first_boot"
import json, sys
r = json.load(open(sys.argv[1]))[0]
sys.exit(0 if r["install_id"] == sys.argv[2] and r["state"] == "installed" and r["phase"] == "first_boot" else 1)
PY
python3 - "$LAB_DIR/events.json" "$INSTALL_ID" <<'PY' || PROBLEMS="${PROBLEMS:+$PROBLEMS; }writing percentages (see above)"
import json, sys
p = [e.get("percent") or 0 for e in json.load(open(sys.argv[1]))
     if e.get("install_id") == sys.argv[2] and e["phase"] == "writing"]
print("  writing events: %d, percents %s" % (len(p), p))
# In order; `written` (checked above) says the rest: the ramdisk's throttle
# may not send 100 before it.
sys.exit(0 if p and p == sorted(p) and p[-1] >= 90 else 1)
PY
# The second boot got no DHCPv6 answer: one dhcp_bound only, and the agent
# ignored the host's Solicits after `written`.
[ "$(grep -c "dhcp6 bound .*mac=$LAB_HOST_MAC" "$LAB_DIR/agent.log")" = 1 ] ||
    PROBLEMS="${PROBLEMS:+$PROBLEMS; }the agent bound the host more than once (its second boot must fall through to the disk)"
grep -q "install completed install=$INSTALL_ID host=$LAB_HOST: intent withdrawn" "$LAB_DIR/agent.log" ||
    PROBLEMS="${PROBLEMS:+$PROBLEMS; }the agent did not withdraw the intent on first_boot"

# ---- 4. log in -----------------------------------------------------------------------------
# cloud-init restarts sshd in its config stage: a refused connection is
# retried for a while.
lab_wait_for 180 lab_ssh true || fail "no SSH login as debian@$LAB_HOST_ADDR with the test's key"
T_SSH=$(lab_ts)
# shellcheck disable=SC2016 # expanded by the guest
lab_ssh 'echo "hostname=$(hostname)"; echo "fqdn=$(hostname -f 2>/dev/null)";
    echo "efi=$([ -d /sys/firmware/efi ] && echo yes || echo no)";
    echo "root=$(findmnt -no SOURCE /)"; echo "--- ip -6 addr"; ip -6 addr show;
    echo "--- ip -6 route"; ip -6 route show' >"$LAB_DIR/guest.txt" 2>&1 ||
    fail "commands over SSH failed: $(cat "$LAB_DIR/guest.txt")"
echo "---- the deployed host, over SSH (first login $(lab_rel "$T_SSH" "$T0") s after power-on)"
sed 's/^/  /' "$LAB_DIR/guest.txt"
grep -qx "hostname=$LAB_HOST" "$LAB_DIR/guest.txt" || PROBLEMS="${PROBLEMS:+$PROBLEMS; }hostname is not $LAB_HOST"
grep -Eq "inet6 $LAB_HOST_ADDR/$LAB_RACK_PLEN scope global" "$LAB_DIR/guest.txt" ||
    PROBLEMS="${PROBLEMS:+$PROBLEMS; }no static address $LAB_HOST_ADDR/$LAB_RACK_PLEN"
want_efi=no
[ "$VMFW" = uefi ] && want_efi=yes
grep -qx "efi=$want_efi" "$LAB_DIR/guest.txt" || PROBLEMS="${PROBLEMS:+$PROBLEMS; }the guest did not boot through $VMFW"
slaac=$(grep -Eo "inet6 2001:db8:1:[0-9a-f:]*/64 scope global[a-z ]*" "$LAB_DIR/guest.txt" |
    grep -v "inet6 $LAB_HOST_ADDR/" || true)
if [ -n "$slaac" ]; then
    echo "  SLAAC: present beside the static address: $slaac"
else
    echo "  SLAAC: none (only the static address; the seed turns RAs off when there is a gateway)"
fi
lab_ssh 'sudo -n systemctl poweroff' >/dev/null 2>&1
lab_vm_wait_exit 60 || true
lab_vm_stop

T_END=$(lab_ts)
echo "times ($FW): power-on to installed $(lab_rel "$T_END_STATE" "$T0") s, to SSH $(lab_rel "$T_SSH" "$T0") s; builds: ramdisk $T_RAMDISK_BUILD s, image $T_IMAGE_BUILD s; whole test $(lab_rel "$T_END" "$T_START") s"
[ -z "$PROBLEMS" ] || fail "$PROBLEMS"
echo "PASS: $TEST_NAME"

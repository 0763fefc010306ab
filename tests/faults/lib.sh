# shellcheck shell=bash
# shellcheck disable=SC2119,SC2120 # optional arguments of the helpers
# Shared setup for the fault suite (sourced by tests/faults/*.sh, not run).
#
# Every case runs the real daemons over real mutual TLS in network
# namespaces of its own (named after the case and its pid, so cases run in
# parallel under ctest -j), with simulated hosts instead of VMs:
#
#   netns $FL_NS_CTL "fleet side"
#     up0 2001:db8:ff::10/64   rackboot-controller, agents on tls+tcp://[2001:db8:ff::10]:7443,
#                              API ipc://$T/api.sock (reachable from every namespace);
#                              origin mirror: python3 http.server [2001:db8:ff::10]:8080
#        | veth, the agent's uplink (fl_uplink_down / fl_uplink_up cut and restore it)
#     up1 2001:db8:ff::1/64
#   netns $FL_NS_RACK "the rack"
#     rackboot-agent: DHCPv6 on rk0, HTTP [::]:80
#     rk0 2001:db8:1::1/64
#        | veth, the rack link
#     h0 2001:db8:1::2/64 and every host's reserved address (/128)
#   netns $FL_NS_HOSTS: the simulated hosts (hostsim.py): DHCPv6 from h0's
#     link-local address with each host's DUID-LL, HTTP from each host's
#     reserved address.
#
# The CA lives in $T/ca (the operator's machine); the daemons read copies in
# $T/ctl-pki and $T/agent-pki, which is what a rotation replaces.
#
# Assertions over the controller's `--json` output and the agent's log go
# through check.py. Every wait is bounded and polls for what it waits on.
#
# usage: . lib.sh AGENT CONTROLLER CLI PKI   (the case's own arguments)

FL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RB_AGENT=${1:?usage: $0 AGENT CONTROLLER CLI PKI}
RB_CONTROLLER=${2:?controller}
RB_CLI=${3:?cli}
RB_PKI=${4:?pki}
TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
FL_ID="$(echo "$TEST_NAME" | tr -cd 'a-z0-9' | tail -c 6)$$"
FL_NS_CTL=rb-fc-$FL_ID
FL_NS_RACK=rb-fr-$FL_ID
FL_NS_HOSTS=rb-fh-$FL_ID
FL_NAMESPACES=""
FL_PIDS=""
FL_CTL_PID=""
FL_AGENT_PID=""
T=""

FL_RACK=fl1
FL_PROFILE=el9
FL_CTL_NAME=ctl.faults.rackboot.test
FL_UP_CTL=2001:db8:ff::10
FL_UP_AGENT=2001:db8:ff::1
FL_AGENT_ADDR=2001:db8:1::1
FL_CTL_PORT=7443
FL_ORIGIN_PORT=8080
FL_ORIGIN="http://[$FL_UP_CTL]:$FL_ORIGIN_PORT"
FL_AGENT_URL="http://[$FL_AGENT_ADDR]"

# ---- messages ------------------------------------------------------------------
fl_ts() { date +%s.%N; }
FL_T0=$(fl_ts)
fl_el() { awk -v a="$(fl_ts)" -v b="${1:-$FL_T0}" 'BEGIN { printf "%.1f", a - b }'; }
say() { printf '[%6ss] %s\n' "$(fl_el)" "$*"; }

skip() {
    echo "SKIP: $TEST_NAME: $*"
    exit 77
}

fl_dump_logs() {
    local f
    [ -n "$T" ] || return 0
    for f in "$T"/controller.log "$T"/agent.log "$T"/*.sim.out; do
        [ -s "$f" ] || continue
        echo "---- $f (last ${FL_DUMP_LINES:-40} lines)"
        tail -n "${FL_DUMP_LINES:-40}" "$f" | cut -c1-260
    done
    # The agent's refusals and errors anywhere in its log (a host's fatal
    # 4xx may be long before the tail), and its starts.
    if [ -s "$T/agent.log" ]; then
        echo "---- $T/agent.log: starts, 4xx/5xx answers, warnings and errors (last 40)"
        grep -E 'rackboot-agent: (ready|starting)|http serving|status=[45][0-9][0-9]| (warn|error) ' \
            "$T/agent.log" | tail -n 40 | cut -c1-260
    fi
}

fail() {
    echo "FAIL: $TEST_NAME: $*"
    fl_dump_logs
    exit 1
}

# ---- what the machine has ------------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "needs root"
for c in ip python3 curl openssl; do
    command -v "$c" >/dev/null || skip "$c not installed"
done
ip netns add "rb-probe-$$" 2>/dev/null || skip "ip netns unavailable"
ip netns del "rb-probe-$$"
for b in "$RB_AGENT" "$RB_CONTROLLER" "$RB_CLI" "$RB_PKI"; do
    [ -x "$b" ] || fail "$b is not built"
done

# ---- lifecycle -----------------------------------------------------------------------
fl_cleanup() {
    local rc=$? pid ns
    trap - EXIT INT TERM
    for pid in $FL_PIDS; do
        kill -TERM "$pid" 2>/dev/null
    done
    for ns in $FL_NAMESPACES; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -TERM "$pid" 2>/dev/null
        done
    done
    sleep 0.3
    for pid in $FL_PIDS; do
        kill -KILL "$pid" 2>/dev/null
    done
    for ns in $FL_NAMESPACES; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null
        done
        ip netns del "$ns" 2>/dev/null
        rm -rf "/etc/netns/$ns"
    done
    wait 2>/dev/null
    # A case's own tmpfs mounts (disk_full.sh, in its own mount namespace).
    if [ -n "$T" ]; then
        awk -v t="$T/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r |
            while read -r m; do umount -l "$m"; done
    fi
    if [ -n "$T" ] && [ "${KEEP_TMP:-0}" != 1 ]; then
        rm -rf "$T" 2>/dev/null
    elif [ -n "$T" ]; then
        echo "kept $T"
    fi
    return "$rc"
}

# fl_wait_for SECONDS CMD...: polls CMD every 0.2 s until it succeeds, for at
# most SECONDS of wall-clock time.
fl_wait_for() {
    local end=$((SECONDS + $1))
    shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.2
    done
    return 0
}

# fl_spawn NAME NS CMD...: CMD in the background in NS, output appended to
# $T/NAME.log; sets FL_SPAWNED (`ip netns exec` execs: $! is CMD itself).
fl_spawn() {
    local name=$1 ns=$2
    shift 2
    ip netns exec "$ns" "$@" >>"$T/$name.log" 2>&1 </dev/null &
    FL_SPAWNED=$!
    FL_PIDS="$FL_PIDS $FL_SPAWNED"
}

# fl_stop_pid PID [SECONDS]: SIGTERM, bounded wait, then SIGKILL. Returns
# the exit status (137 when it had to be killed).
fl_stop_pid() {
    local pid=$1 limit=$((${2:-10} * 10)) i=0 rc
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        if [ "$i" -ge "$limit" ]; then
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.1
    done
    wait "$pid" 2>/dev/null
    rc=$?
    return "$rc"
}

fl_kill9() {
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

# fl_init: the work directory and the EXIT trap.
fl_init() {
    T=$(mktemp -d "/tmp/rackboot-faults-$TEST_NAME.XXXXXX")
    chmod 755 "$T"
    trap fl_cleanup EXIT
    trap 'exit 130' INT TERM
}

# ---- network -------------------------------------------------------------------------
fl_new_ns() {
    mkdir -p "/etc/netns/$1" && : >"/etc/netns/$1/resolv.conf"
    ip netns add "$1" || return 1
    FL_NAMESPACES="$FL_NAMESPACES $1"
    ip -n "$1" link set lo up
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
        net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.keep_addr_on_down=1 \
        net.ipv6.conf.default.keep_addr_on_down=1
}

fl_net_up() {
    local c=$FL_NS_CTL r=$FL_NS_RACK h=$FL_NS_HOSTS
    fl_new_ns "$c" && fl_new_ns "$r" && fl_new_ns "$h" || return 1
    ip -n "$r" link add up1 type veth peer name up0 netns "$c" || return 1
    ip -n "$r" addr add "$FL_UP_AGENT/64" dev up1 nodad
    ip -n "$c" addr add "$FL_UP_CTL/64" dev up0 nodad
    ip -n "$r" link add rk0 type veth peer name h0 netns "$h" || return 1
    ip -n "$r" addr add "$FL_AGENT_ADDR/64" dev rk0 nodad
    ip -n "$h" addr add 2001:db8:1::2/64 dev h0 nodad
    ip netns exec "$h" sysctl -qw net.ipv6.conf.h0.autoconf=0
    ip -n "$r" link set up1 up
    ip -n "$c" link set up0 up
    ip -n "$r" link set rk0 up
    ip -n "$h" link set h0 up
    fl_wait_for 10 ip netns exec "$r" ping -6 -c1 -W1 "$FL_UP_CTL" || return 1
    # The hosts' link-local address (DHCPv6 goes out from it).
    fl_wait_for 10 sh -c "ip -n $h -6 addr show dev h0 scope link | grep -q fe80" || return 1
    fl_wait_for 10 ip netns exec "$h" ping -6 -c1 -W1 "$FL_AGENT_ADDR"
}

# fl_uplink_down / fl_uplink_up: the partition (the rack side of the uplink).
fl_uplink_down() { ip -n "$FL_NS_RACK" link set up1 down; }
fl_uplink_up() {
    ip -n "$FL_NS_RACK" link set up1 up
    fl_wait_for 10 ip netns exec "$FL_NS_RACK" ping -6 -c1 -W1 "$FL_UP_CTL"
}

# ---- PKI ------------------------------------------------------------------------------
# fl_pki: the CA ($T/ca), the controller's and the agent's certificates, and
# the daemons' copies of what they need.
fl_pki() {
    local d=$T/ca
    "$RB_PKI" --dir "$d" init --name "rackboot faults CA" >/dev/null &&
        "$RB_PKI" --dir "$d" issue controller "$FL_CTL_NAME" >/dev/null &&
        "$RB_PKI" --dir "$d" issue agent "$FL_RACK" >/dev/null || return 1
    mkdir -p "$T/ctl-pki" "$T/agent-pki"
    fl_deploy_ctl_cert && fl_deploy_agent_cert && fl_deploy_crl
}

# The daemons' copies (keys stay 0600: both daemons refuse keys others can read).
fl_deploy_ctl_cert() {
    cp "$T/ca/ca.crt" "$T/ctl-pki/ca.crt" &&
        install -m 600 "$T/ca/controller/$FL_CTL_NAME.key" "$T/ctl-pki/controller.key" &&
        install -m 644 "$T/ca/controller/$FL_CTL_NAME.crt" "$T/ctl-pki/controller.crt"
}
fl_deploy_agent_cert() {
    cp "$T/ca/ca.crt" "$T/agent-pki/ca.crt" &&
        install -m 600 "$T/ca/agent/$FL_RACK.key" "$T/agent-pki/agent.key" &&
        install -m 644 "$T/ca/agent/$FL_RACK.crt" "$T/agent-pki/agent.crt"
}
# fl_deploy_crl [ctl|agent|both]: crl.pem to the daemons (atomic replace).
fl_deploy_crl() {
    local w=${1:-both} d
    for d in ctl agent; do
        if [ "$w" = both ] || [ "$w" = "$d" ]; then
            cp "$T/ca/crl.pem" "$T/$d-pki/crl.pem.new" && mv "$T/$d-pki/crl.pem.new" "$T/$d-pki/crl.pem" ||
                return 1
        fi
    done
}

# fl_serial FILE: a certificate's serial (hex, upper case).
fl_serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }

# fl_tls_probe CERT KEY: the certificate the controller presents to a new
# connection made with CERT/KEY ("serial=..." on success, "refused" when the
# handshake fails).
fl_tls_probe() {
    local out
    out=$(echo | timeout 10 ip netns exec "$FL_NS_RACK" openssl s_client -connect "[$FL_UP_CTL]:$FL_CTL_PORT" \
        -servername "$FL_CTL_NAME" -CAfile "$T/ca/ca.crt" -cert "$1" -key "$2" -tls1_2 2>&1 </dev/null |
        tr -d '\0')
    if echo "$out" | grep -q "^-----BEGIN CERTIFICATE" && ! echo "$out" | grep -qi "alert\|handshake failure\|errno"; then
        echo "$out" | openssl x509 -noout -serial 2>/dev/null | sed 's/serial=/serial=/'
    else
        echo "refused"
    fi
}

# ---- images, hosts, configuration -------------------------------------------------------------
# fl_images [KERNEL_KIB INITRD_KIB STAGE2_KIB]: random images on the origin,
# their sha256 in $T/manifest.json (what hostsim checks every body against).
fl_images() {
    mkdir -p "$T/origin"
    head -c "$((${1:-256} * 1024))" /dev/urandom >"$T/origin/vmlinuz"
    head -c "$((${2:-384} * 1024))" /dev/urandom >"$T/origin/initrd.img"
    head -c "$((${3:-1024} * 1024))" /dev/urandom >"$T/origin/squashfs.img"
    python3 - "$T/origin" >"$T/manifest.json" <<'PY'
import hashlib, json, os, sys
d = sys.argv[1]
print(json.dumps({n: hashlib.sha256(open(os.path.join(d, n), "rb").read()).hexdigest()
                  for n in ("vmlinuz", "initrd.img", "squashfs.img")}))
PY
}
fl_sha() { sha256sum "$T/origin/$1" | cut -d' ' -f1; }

# fl_host_name I, fl_host_mac I, fl_host_addr I: host I's identity (0-based).
fl_host_name() { printf 'h%02d' "$1"; }
fl_host_mac() { printf '52:54:00:fa:%02x:%02x' $(($1 / 256)) $(($1 % 256)); }
fl_host_addr() { printf '2001:db8:1::1:%x' "$1"; }

# fl_hosts N: N hosts: $T/hosts.csv (for the CLI), $T/hosts.json (for
# hostsim), their addresses on h0; FL_HOSTS is the list of names.
fl_hosts() {
    local n=$1 i
    FL_HOSTS=""
    echo "name,mac,rack,address,prefix,gateway,hostname" >"$T/hosts.csv"
    echo "[" >"$T/hosts.json"
    for ((i = 0; i < n; i++)); do
        echo "$(fl_host_name $i),$(fl_host_mac $i),$FL_RACK,$(fl_host_addr $i),64,$FL_AGENT_ADDR,$(fl_host_name $i)" \
            >>"$T/hosts.csv"
        printf '%s{"name": "%s", "mac": "%s", "address": "%s"}\n' "$([ $i -gt 0 ] && echo ,)" \
            "$(fl_host_name $i)" "$(fl_host_mac $i)" "$(fl_host_addr $i)" >>"$T/hosts.json"
        ip -n "$FL_NS_HOSTS" addr add "$(fl_host_addr $i)/128" dev h0 nodad || return 1
        FL_HOSTS="$FL_HOSTS $(fl_host_name $i)"
    done
    echo "]" >>"$T/hosts.json"
    cat >"$T/el9.ks" <<'EOF'
# rackboot fault suite kickstart for {{hostname}} (install {{install_id}})
text
network --device=bootnet --bootproto=static --ipv6={{address}}/{{prefix}} --ipv6gateway={{gateway}} --hostname={{hostname}}
reboot
EOF
    cat >"$T/profiles.conf" <<EOF
[profile $FL_PROFILE]
kernel = $FL_ORIGIN/vmlinuz sha256=$(fl_sha vmlinuz)
initrd = $FL_ORIGIN/initrd.img sha256=$(fl_sha initrd.img)
stage2 = $FL_ORIGIN/squashfs.img sha256=$(fl_sha squashfs.img)
cmdline = console=ttyS0
kickstart = el9.ks
overlay = yes
ip = static
EOF
}

# fl_configs: controller.conf and agent.conf (state in $T/ctl-state and
# $FL_AGENT_STATE, default $T/agent-state), both passing --check-config.
fl_configs() {
    FL_AGENT_STATE=${FL_AGENT_STATE:-$T/agent-state}
    mkdir -p "$T/ctl-state" "$FL_AGENT_STATE"
    cat >"$T/controller.conf" <<EOC
[controller]
state_dir = $T/ctl-state
agents_listen = tls+tcp://[$FL_UP_CTL]:$FL_CTL_PORT
api_listen = ipc://$T/api.sock
log_level = debug

[pki]
ca = $T/ctl-pki/ca.crt
cert = $T/ctl-pki/controller.crt
key = $T/ctl-pki/controller.key
crl = $T/ctl-pki/crl.pem

[installs]
boot_timeout = 3600
install_timeout = 3600
EOC
    cat >"$T/agent.conf" <<EOC
[agent]
rack = $FL_RACK
state_dir = $FL_AGENT_STATE
advertise_address = $FL_AGENT_ADDR
gateway = $FL_AGENT_ADDR
log_level = info

[http]
listen = [::]:80

[dhcp6]
interfaces = rk0
dns_servers = 2001:db8:1::53

[tftp]
enabled = no

[controller]
url = tls+tcp://[$FL_UP_CTL]:$FL_CTL_PORT
server_name = $FL_CTL_NAME
ca = $T/agent-pki/ca.crt
cert = $T/agent-pki/agent.crt
key = $T/agent-pki/agent.key
crl = $T/agent-pki/crl.pem
sync_wait = 10
EOC
    # Each is checked where it runs: the controller's listen address is in
    # its own namespace.
    ip netns exec "$FL_NS_CTL" "$RB_CONTROLLER" --config "$T/controller.conf" --check-config \
        >"$T/check-config.out" 2>&1 &&
        ip netns exec "$FL_NS_RACK" "$RB_AGENT" --config "$T/agent.conf" --check-config \
            >>"$T/check-config.out" 2>&1 || { cat "$T/check-config.out"; return 1; }
}

# ---- daemons -----------------------------------------------------------------------------
fl_rb() { "$RB_CLI" --controller "ipc://$T/api.sock" "$@"; }

fl_log_count() { # FILE PATTERN
    local n
    n=$(grep -c -- "$2" "$T/$1" 2>/dev/null)
    echo "${n:-0}"
}
fl_log_grew() { [ "$(fl_log_count "$1" "$2")" -gt "$3" ]; }

fl_start_origin() {
    fl_spawn origin "$FL_NS_CTL" python3 -u -m http.server --bind "$FL_UP_CTL" \
        --directory "$T/origin" "$FL_ORIGIN_PORT"
    fl_wait_for 10 sh -c "ip netns exec $FL_NS_CTL ss -Hltn | grep -qF ':$FL_ORIGIN_PORT '"
}
# fl_origin_gets NAME: GETs of /NAME the origin answered.
fl_origin_gets() { fl_log_count origin.log "\"GET /$1 HTTP"; }

fl_start_controller() {
    rm -f "$T/api.sock"
    fl_spawn controller "$FL_NS_CTL" "$RB_CONTROLLER" --config "$T/controller.conf"
    FL_CTL_PID=$FL_SPAWNED
    fl_wait_for 20 test -S "$T/api.sock" || { echo "controller did not start"; return 1; }
    fl_wait_for 20 fl_rb racks || { echo "controller API does not answer"; return 1; }
    fl_wait_for 20 sh -c "ip netns exec $FL_NS_CTL ss -Hltn | grep -qF ':$FL_CTL_PORT '" ||
        { echo "controller does not listen for agents"; return 1; }
}
fl_stop_controller() { fl_stop_pid "$FL_CTL_PID" 20; FL_CTL_PID=""; }
fl_kill_controller() { fl_kill9 "$FL_CTL_PID"; FL_CTL_PID=""; }

# fl_start_agent [nowait]: ready, and (unless nowait) connected to the
# controller after this start.
fl_start_agent() {
    local ready synced
    ready=$(fl_log_count agent.log "rackboot-agent: ready")
    synced=$(fl_log_count agent.log "uplink: connected")
    fl_spawn agent "$FL_NS_RACK" "$RB_AGENT" --config "$T/agent.conf"
    FL_AGENT_PID=$FL_SPAWNED
    fl_wait_for 30 fl_log_grew agent.log "rackboot-agent: ready" "$ready" ||
        { echo "agent not ready"; return 1; }
    [ "${1:-}" = nowait ] && return 0
    fl_wait_for 60 fl_log_grew agent.log "uplink: connected" "$synced" ||
        { echo "agent did not connect to the controller"; return 1; }
}
fl_stop_agent() { fl_stop_pid "$FL_AGENT_PID" 20; FL_AGENT_PID=""; }
fl_kill_agent() { fl_kill9 "$FL_AGENT_PID"; FL_AGENT_PID=""; }

# fl_metric NAME: the agent's /metrics value (integer part).
fl_metric() {
    ip netns exec "$FL_NS_RACK" curl -gsS -m 10 "$FL_AGENT_URL/metrics" |
        awk -v n="$1" '$1 == n { printf "%d\n", $2; found = 1 } END { exit !found }'
}

# fl_setup N [KERNEL_KIB INITRD_KIB STAGE2_KIB]: everything up to a fleet of
# N registered hosts with a controller and a connected agent. A function
# named in FL_BEFORE_CONFIGS runs before the configurations are written.
fl_setup() {
    local n=$1
    shift
    fl_init
    fl_net_up || fail "network setup"
    fl_pki || fail "PKI"
    fl_images "$@"
    fl_hosts "$n" || fail "hosts"
    if [ -n "${FL_BEFORE_CONFIGS:-}" ]; then
        "$FL_BEFORE_CONFIGS" || fail "$FL_BEFORE_CONFIGS"
    fi
    fl_configs || fail "configs do not pass --check-config"
    fl_start_origin || fail "origin web server"
    fl_start_controller || fail "controller"
    fl_start_agent || fail "agent"
    fl_rb hosts import "$T/hosts.csv" >"$T/register.out" 2>&1 &&
        fl_rb profiles import "$T/profiles.conf" >>"$T/register.out" 2>&1 ||
        fail "cannot import hosts/profiles: $(cat "$T/register.out")"
    say "setup: $n hosts, controller and agent connected"
}

# ---- installs and hosts --------------------------------------------------------------------------
fl_names() { # FIRST COUNT: host names FIRST .. FIRST+COUNT-1
    local i
    for ((i = $1; i < $1 + $2; i++)); do
        printf '%s ' "$(fl_host_name $i)"
    done
}

# fl_all_state STATE HOST...: every host's install is in STATE.
fl_all_state() {
    local want=$1
    shift
    fl_rb status "$@" --json 2>/dev/null | python3 -c '
import json, sys
rows = json.load(sys.stdin)
want = sys.argv[1]
sys.exit(0 if rows and all(r["state"] == want for r in rows) else 1)' "$want"
}
fl_states() { # HOST...: "state=count ..." for messages
    fl_rb status "$@" --json 2>/dev/null | python3 -c '
import collections, json, sys
c = collections.Counter(r["state"] for r in json.load(sys.stdin))
print(" ".join("%s=%d" % kv for kv in sorted(c.items())))'
}

# fl_install HOST...: submits, waits until every install is dispatched.
fl_install() {
    fl_rb install "$@" --profile "$FL_PROFILE" >"$T/install.out" 2>&1 ||
        fail "rackboot install failed: $(cat "$T/install.out")"
    fl_wait_for 60 fl_all_state dispatched "$@" ||
        fail "installs not dispatched within 60 s: $(fl_states "$@")"
}

# fl_cached: the agent holds all three images (pre-warm done).
fl_cached() {
    local f h
    for f in vmlinuz initrd.img squashfs.img; do
        h=$(fl_sha $f)
        [ -f "$FL_AGENT_STATE/cache/objects/${h:0:2}/$h" ] || return 1
    done
}

# fl_hostsim NAME [hostsim args...]: hosts in the background (see
# hostsim.py); output $T/NAME.sim.out, ledger $T/NAME.ledger.json; sets
# FL_SIM_PID.
fl_hostsim() {
    local name=$1
    shift
    ip netns exec "$FL_NS_HOSTS" python3 -u "$FL_DIR/hostsim.py" --iface h0 \
        --hosts "$T/hosts.json" --manifest "$T/manifest.json" \
        --ledger "$T/$name.ledger.json" "$@" >"$T/$name.sim.out" 2>&1 </dev/null &
    FL_SIM_PID=$!
    FL_PIDS="$FL_PIDS $FL_SIM_PID"
}
# fl_sim_failures NAME: why hosts of run NAME gave up (for messages).
fl_sim_failures() {
    grep -h "FAILED\|hosts: " "$T/$1.sim.out" | cut -c1-400
}
# fl_hostsim_wait PID SECONDS: its exit status (124 when still running).
fl_hostsim_wait() {
    fl_wait_for "$2" sh -c "! kill -0 $1 2>/dev/null" || return 124
    wait "$1"
}

# fl_check [check.py events args...]: the controller's events and status
# against the agent's log and the hosts' ledgers (check.py).
fl_check() {
    fl_rb events --json >"$T/events.json" || fail "rackboot events failed"
    fl_rb status --json >"$T/status.json" || fail "rackboot status failed"
    python3 "$FL_DIR/check.py" events --events "$T/events.json" --status "$T/status.json" \
        --agent-log "$T/agent.log" "$@"
}

# fl_converged: the controller's generation for the rack is the one the
# agent acknowledged.
fl_converged() {
    fl_rb racks --json 2>/dev/null | python3 -c '
import json, sys
r = [x for x in json.load(sys.stdin) if x["rack"] == sys.argv[1]]
sys.exit(0 if r and r[0]["generation"] == r[0]["acked_generation"] else 1)' "$FL_RACK"
}
fl_generations() {
    fl_rb racks --json 2>/dev/null | python3 -c '
import json, sys
for x in json.load(sys.stdin):
    print("rack=%s generation=%s acked=%s" % (x["rack"], x["generation"], x["acked_generation"]))'
}

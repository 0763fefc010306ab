# shellcheck shell=bash
# Shared setup for the TFTP integration tests (sourced, not run). Builds on
# dhcp6_lib.sh (skip/fail, namespaces, bounded waits, agent start/stop,
# cleanup by trap):
#
#     $SRV (agent)  veth-s 2001:db8:1::1/64, 192.0.2.1/24
#          <->  veth-c 2001:db8:1::2/64, 192.0.2.2/24  $CLI (tftp, atftp)
#
# No radvd and no DHCPv6 interface: the agent answers TFTP only here.
. "$(dirname "$0")/dhcp6_lib.sh"

SERVER6=2001:db8:1::1
ROOT="$T/root"

setup_tftp_link() {
    new_ns "$SRV"
    new_ns "$CLI"
    ip -n "$SRV" link add veth-s type veth peer name veth-c netns "$CLI" || fail "veth"
    ip -n "$SRV" addr add 2001:db8:1::1/64 dev veth-s nodad
    ip -n "$CLI" addr add 2001:db8:1::2/64 dev veth-c nodad
    ip -n "$SRV" addr add 192.0.2.1/24 dev veth-s
    ip -n "$CLI" addr add 192.0.2.2/24 dev veth-c
    ip -n "$SRV" link set veth-s up
    ip -n "$CLI" link set veth-c up
    wait_for 10 ip netns exec "$CLI" ping -6 -c1 -W1 "$SERVER6" || fail "no IPv6 link"
}

# write_tftp_config [EXTRA [tftp] LINES]: the agent's config with an explicit
# root ($ROOT) unless TFTP_DEFAULT_ROOT=1.
write_tftp_config() {
    mkdir -p "$ROOT"
    local root_line="root = $ROOT"
    [ "${TFTP_DEFAULT_ROOT:-0}" = 1 ] && root_line=""
    cat >"$T/agent.conf" <<EOC
[agent]
rack = test
state_dir = $T/state
advertise_address = $SERVER6
log_level = debug

[tftp]
listen = [::]:69
$root_line
${1:-}

[standalone]
hosts = hosts.conf
EOC
    cat >"$T/hosts.conf" <<EOH
[profile el9]
kernel = http://mirror.example.com/vmlinuz sha256=$(printf '%064d' 1)
initrd = http://mirror.example.com/initrd.img sha256=$(printf '%064d' 2)
EOH
}

start_tftp_agent() {
    start_agent
    grep -q "tftp serving listen=" "$T/agent.log" || fail "agent does not serve TFTP"
}

# in_cli CMD...: runs a client command in the client namespace, bounded.
in_cli() {
    timeout "${CLIENT_TIMEOUT:-60}" ip netns exec "$CLI" "$@"
}

# hpa_get REMOTE LOCAL [HOST]: tftp-hpa in octet mode.
hpa_get() {
    command -v tftp >/dev/null || skip "tftp (tftp-hpa) not installed"
    local host=${3:-$SERVER6} fam=-6
    case $host in *:*) ;; *) fam=-4 ;; esac
    rm -f "$2"
    in_cli tftp "$fam" -m octet "$host" -c get "$1" "$2" >"$T/tftp.out" 2>&1
}

# atftp_get REMOTE LOCAL [--option "name value"]...
atftp_get() {
    command -v atftp >/dev/null || skip "atftp not installed"
    local remote=$1 local_file=$2
    shift 2
    rm -f "$local_file"
    in_cli atftp --get -r "$remote" -l "$local_file" "$@" --verbose "$SERVER6" \
        >"$T/atftp.out" 2>&1
}

# Counts "tftp done" lines of the agent for a file name.
done_count() {
    grep -c "tftp done file=$1 " "$T/agent.log" 2>/dev/null
}

# Real clients print errors but do not always fail with a status; say what
# the server sent.
expect_error() {
    local out=$1 code=$2 what=$3
    grep -qi "error code $code\|error.*$code\|<$code>" "$out" ||
        fail "$what: expected TFTP error $code, got: $(tr '\n' ' ' <"$out")"
}

# wait_log REGEX: the agent logs a transfer's end when the client's last ACK
# arrives, which may be just after the client exits.
wait_log() {
    wait_for 5 grep -q -- "$1" "$T/agent.log"
}

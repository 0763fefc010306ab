# Shared setup for the HTTP integration tests (sourced, not run). Builds on
# dhcp6_lib.sh for the namespace, skip/fail, cleanup and agent helpers.
#
#     $SRV (agent)  veth-s 2001:db8:1::1/64  <->  veth-c 2001:db8:1::2/64  $CLI (curl)
#
# The agent serves $T/root as its TFTP root, which HTTP serves at /files/.
. "$(dirname "$0")/dhcp6_lib.sh"

command -v curl >/dev/null || skip "curl not installed"

SRV_ADDR=2001:db8:1::1
BASE="http://[$SRV_ADDR]:${HTTP_PORT:-80}"

setup_http_link() {
    new_ns "$SRV"
    new_ns "$CLI"
    ip -n "$SRV" link add veth-s type veth peer name veth-c netns "$CLI" || fail "veth"
    ip -n "$SRV" addr add "$SRV_ADDR/64" dev veth-s nodad
    ip -n "$CLI" addr add 2001:db8:1::2/64 dev veth-c nodad
    ip -n "$SRV" link set veth-s up
    ip -n "$CLI" link set veth-c up
    mkdir -p "$T/root"
}

# write_http_config [EXTRA HTTP LINES]: agent.conf and hosts.conf in $T.
write_http_config() {
    cat >"$T/agent.conf" <<EOC
[agent]
rack = test
state_dir = $T/state
advertise_address = $SRV_ADDR
log_level = info

[http]
listen = [::]:${HTTP_PORT:-80}
$*

[tftp]
root = $T/root
listen = [::]:6969

[dhcp6]
interfaces = veth-s

[standalone]
hosts = hosts.conf
EOC
    cat >"$T/hosts.conf" <<EOH
[profile el9]
kernel = http://mirror.example.com/vmlinuz sha256=$(printf '%064d' 1)
initrd = http://mirror.example.com/initrd.img sha256=$(printf '%064d' 2)

[host web17]
mac = $CLI_MAC
address = 2001:db8:1::17
install = el9
EOH
}

# cli CMD...: runs in the client namespace, bounded in time.
cli() {
    timeout "${CLI_TIMEOUT:-20}" ip netns exec "$CLI" "$@"
}

# status URL [CURL ARGS]: prints the HTTP status of a GET, body to $T/body
# (absent when the answer had none).
status() {
    local url=$1
    shift
    rm -f "$T/body"
    cli curl -g -sS --max-time 15 -o "$T/body" -w '%{http_code}' "$@" "$url"
}

# Shared setup for the image cache integration tests (sourced, not run).
#
# Topology, in namespaces of our own named after the test and its pid:
#
#     $ORG (nginx origin)  veth-o 2001:db8:2::2/64 <-> veth-a 2001:db8:2::1/64
#     $SRV (agent)         veth-s 2001:db8:1::1/64 <-> veth-c 2001:db8:1::17/64  $CLI (clients)
#
# The origin is nginx (it logs every request to its access log, which is how
# the tests count origin fetches). Builds on dhcp6_lib.sh for namespaces,
# bounded waits, the agent's start/stop and the EXIT trap.
. "$(dirname "$0")/dhcp6_lib.sh"

ORG="rb-org-$ID"
ORIGIN_URL="http://[2001:db8:2::2]:8080"

command -v nginx >/dev/null || skip "nginx not installed"
command -v curl >/dev/null || skip "curl not installed"

setup_cache_net() {
    new_ns "$SRV"
    new_ns "$CLI"
    new_ns "$ORG"
    ip -n "$SRV" link add veth-s type veth peer name veth-c netns "$CLI" || fail "veth"
    ip -n "$SRV" addr add 2001:db8:1::1/64 dev veth-s nodad
    ip -n "$CLI" addr add 2001:db8:1::17/64 dev veth-c nodad
    ip -n "$SRV" link set veth-s up
    ip -n "$CLI" link set veth-c up
    ip -n "$SRV" link add veth-a type veth peer name veth-o netns "$ORG" || fail "veth"
    ip -n "$SRV" addr add 2001:db8:2::1/64 dev veth-a nodad
    ip -n "$ORG" addr add 2001:db8:2::2/64 dev veth-o nodad
    ip -n "$SRV" link set veth-a up
    ip -n "$ORG" link set veth-o up
}

# start_origin: nginx serving $T/origin on [2001:db8:2::2]:8080, one access
# log line per request in $T/origin-access.log.
start_origin() {
    mkdir -p "$T/origin" "$T/nginx"
    cat >"$T/nginx/nginx.conf" <<EON
daemon off;
# The test tree is private (mktemp -d): the worker must be able to read it.
user root;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 256; }
http {
    access_log $T/origin-access.log;
    client_body_temp_path $T/nginx/body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    sendfile on;
    server {
        listen [2001:db8:2::2]:8080;
        root $T/origin;
        # A slow origin: the concurrent requests below must overlap one
        # fetch, not follow each other.
        location /slow/ { limit_rate 2m; }
    }
}
EON
    : >"$T/origin-access.log"
    ip netns exec "$ORG" nginx -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" \
        >"$T/nginx/out.log" 2>&1 &
    wait_for 10 origin_up || fail "origin nginx did not start: $(tail -n 5 "$T/nginx/error.log" 2>/dev/null)"
    : >"$T/origin-access.log"
}

origin_up() {
    [ "$(ip netns exec "$ORG" curl -s -o /dev/null -w '%{http_code}' "$ORIGIN_URL/none")" = 404 ]
}

# origin_file NAME MIB: random content of MIB MiB under the origin root;
# prints its sha256.
origin_file() {
    mkdir -p "$(dirname "$T/origin/$1")"
    head -c "$(($2 * 1048576))" /dev/urandom >"$T/origin/$1"
    sha256sum "$T/origin/$1" | cut -d' ' -f1
}

# origin_requests PATH: GETs of PATH in the origin's access log.
origin_requests() {
    grep -c "\"GET $1 HTTP" "$T/origin-access.log"
}

# write_agent_config: agent.conf with [cache] in $T (hosts.conf is the test's).
write_agent_config() {
    cat >"$T/agent.conf" <<EOC
[agent]
rack = test
state_dir = $T/state
advertise_address = 2001:db8:1::1
log_level = debug

[http]
listen = [::]:8080

[dhcp6]
interfaces = veth-s

[tftp]
listen = [::]:69

[cache]
dir = $T/cache
max_size = 1G
max_fetches = 4

[standalone]
hosts = hosts.conf
EOC
}

# object_path HEX: where the cache keeps it.
object_path() {
    echo "$T/cache/objects/${1:0:2}/$1"
}

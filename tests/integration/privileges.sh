#!/bin/bash
# Both daemons start as root, bind, read their keys and then run as the
# `rackboot` user ([agent] user / [controller] user): the agent with only
# CAP_NET_BIND_SERVICE, the controller with no capability; the state
# directories belong to that user; the agent still serves HTTP on port 80
# and reaches its controller over mutual TLS; the controller re-reads its
# PKI files on SIGHUP as that user; and an uplink key the user cannot read
# stops the agent at start with a message that says so.
#
# Usage: privileges.sh rackboot-controller rackboot-agent rackboot-pki rackboot
set -u

CTL=${1:?usage: privileges.sh controller agent pki cli}
AGENT=${2:?} PKI=${3:?} CLI=${4:?}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v useradd >/dev/null || { echo "SKIP: no useradd"; exit 77; }
getent group rackboot >/dev/null || groupadd --system rackboot || exit 1
id rackboot >/dev/null 2>&1 ||
    useradd --system --gid rackboot --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin rackboot || exit 1
RB_UID=$(id -u rackboot)

T=$(mktemp -d /tmp/rb-priv-XXXXXX)
chmod 0755 "$T"
NS=rb-priv-$$
CTL_PID= AGENT_PID=
cleanup() {
    [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null
    [ -n "$CTL_PID" ] && kill "$CTL_PID" 2>/dev/null
    wait 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
cd "$T" || exit 1
ip netns add "$NS" && ip -n "$NS" link set lo up || exit 1

"$PKI" --dir ca init >/dev/null && "$PKI" --dir ca issue controller ctl.test >/dev/null &&
    "$PKI" --dir ca issue agent rack1 >/dev/null || exit 1
# The daemons' keys belong to the user they run as (mode 0600); the CA's
# own key stays root's.
chmod 0711 ca
chown -R rackboot: ca/controller ca/agent

cat >controller.conf <<EOC
[controller]
state_dir = $T/ctl-state
user = rackboot
agents_listen = tls+tcp://[::1]:7443
api_listen = ipc://$T/api.sock
log_level = debug
[pki]
ca = $T/ca/ca.crt
cert = $T/ca/controller/ctl.test.crt
key = $T/ca/controller/ctl.test.key
crl = $T/ca/crl.pem
EOC
cat >agent.conf <<EOC
[agent]
rack = rack1
state_dir = $T/agent-state
user = rackboot
advertise_address = 2001:db8:1::1
log_level = debug
[http]
listen = [::1]:80
[tftp]
enabled = no
[dhcp6]
interfaces = lo
[controller]
url = tls+tcp://[::1]:7443
server_name = ctl.test
ca = $T/ca/ca.crt
cert = $T/ca/agent/rack1.crt
key = $T/ca/agent/rack1.key
crl = $T/ca/crl.pem
sync_wait = 2
EOC

# wait_for SECONDS CMD...: polls until CMD succeeds.
wait_for() {
    local deadline=$(($(date +%s) + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
# status_field PID FIELD: a line of /proc/PID/status, tabs squeezed.
status_field() { awk -v f="$2:" '$1 == f { $1 = ""; print substr($0, 2) }' "/proc/$1/status"; }

# umask 0: the daemons' state files must be 0600 whatever it says.
umask 0
ip netns exec "$NS" "$CTL" --config controller.conf >ctl.log 2>&1 &
CTL_PID=$!
wait_for 60 grep -q 'running as user=rackboot' ctl.log || fail "controller: $(cat ctl.log)"
ip netns exec "$NS" "$AGENT" --config agent.conf >agent.log 2>&1 &
AGENT_PID=$!
wait_for 60 grep -q '] ready\|: ready' agent.log || fail "agent not ready: $(tail -20 agent.log)"

# ---- who they run as ----
[ "$(status_field "$CTL_PID" Uid)" = "$RB_UID $RB_UID $RB_UID $RB_UID" ] ||
    fail "controller Uid: $(status_field "$CTL_PID" Uid)"
[ "$(status_field "$AGENT_PID" Uid)" = "$RB_UID $RB_UID $RB_UID $RB_UID" ] ||
    fail "agent Uid: $(status_field "$AGENT_PID" Uid)"
# CAP_NET_BIND_SERVICE is bit 10.
[ "$(status_field "$AGENT_PID" CapEff)" = 0000000000000400 ] ||
    fail "agent CapEff: $(status_field "$AGENT_PID" CapEff)"
[ "$(status_field "$AGENT_PID" CapPrm)" = 0000000000000400 ] ||
    fail "agent CapPrm: $(status_field "$AGENT_PID" CapPrm)"
[ "$(status_field "$AGENT_PID" CapBnd)" = 0000000000000400 ] ||
    fail "agent CapBnd: $(status_field "$AGENT_PID" CapBnd)"
[ "$(status_field "$CTL_PID" CapEff)" = 0000000000000000 ] ||
    fail "controller CapEff: $(status_field "$CTL_PID" CapEff)"
[ "$(status_field "$CTL_PID" CapBnd)" = 0000000000000000 ] ||
    fail "controller CapBnd: $(status_field "$CTL_PID" CapBnd)"
for pid in "$CTL_PID" "$AGENT_PID"; do
    [ "$(status_field "$pid" NoNewPrivs)" = 1 ] || fail "pid $pid: NoNewPrivs not set"
done
# Every thread, not only the main one (nng's started before the drop).
for task in /proc/"$AGENT_PID"/task/*; do
    uid=$(awk '$1 == "Uid:" { print $2 }' "$task/status")
    [ "$uid" = "$RB_UID" ] || fail "agent thread ${task##*/} runs as uid $uid"
done
for dir in ctl-state ctl-state/fleet.db agent-state agent-state/journal; do
    [ "$(stat -c %U "$dir")" = rackboot ] || fail "$dir belongs to $(stat -c %U "$dir")"
done

# State files hold install tokens, intents and leases: the user's alone
# (the cache and the TFTP root hold public boot files).
loose=$(find ctl-state agent-state \( -path agent-state/cache -o -path agent-state/tftp \) -prune \
    -o -type f -perm /077 -print)
[ -z "$loose" ] || fail "state files readable by others: $(ls -l $loose)"
umask 022

# ---- still doing the job ----
ip netns exec "$NS" curl -gsf "http://[::1]:80/healthz" >/dev/null || fail "agent HTTP on port 80"
wait_for 60 sh -c "'$CLI' --controller ipc://$T/api.sock --json racks | grep -q rack1" ||
    fail "the agent's uplink did not reach the controller: $(tail -20 agent.log)"
kill -HUP "$CTL_PID"
wait_for 30 grep -q 'SIGHUP: PKI reloaded' ctl.log || fail "controller reload as rackboot: $(tail ctl.log)"

# ---- a key the user cannot read ----
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
AGENT_PID=
chown root: ca/agent/rack1.key
ip netns exec "$NS" timeout 60 "$AGENT" --config agent.conf >agent2.log 2>&1
rc=$?
[ "$rc" = 1 ] || fail "agent with a key rackboot cannot read exited $rc, not 1"
grep -q 'as user=rackboot the uplink cannot load' agent2.log || fail "no clear message: $(tail agent2.log)"

if [ "$failures" -ne 0 ]; then
    echo "--- controller log"; tail -30 ctl.log
    echo "--- agent log"; tail -30 agent.log
    echo "$failures failure(s)"
    exit 1
fi
echo "privileges: ok"

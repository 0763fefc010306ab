#!/bin/bash
# deploy/bash-completion/rackboot under bash-completion: what TAB offers at
# a few points of a rackboot and a rackboot-pki command line.
#
# Usage: completion.sh COMPLETION_FILE
set -uo pipefail

file=${1:?usage: completion.sh COMPLETION_FILE}
lib=/usr/share/bash-completion/bash_completion
[ -r "$lib" ] || { echo "FAIL: $lib missing (deploy/install-deps.sh installs bash-completion)"; exit 1; }
# shellcheck source=/dev/null
. "$lib"
# shellcheck source=deploy/bash-completion/rackboot
. "$file"

failures=0
# expect FUNCTION "WANTED WORDS" WORD... : completing the last WORD offers
# exactly WANTED.
expect() {
    local fn=$1 want=$2
    shift 2
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    "$fn"
    local got="${COMPREPLY[*]}"
    if [ "$got" = "$want" ]; then
        echo "ok: [$*] -> $got"
    else
        echo "FAIL: [$*] -> '$got', expected '$want'"
        failures=$((failures + 1))
    fi
}

expect _rackboot "hosts racks profiles images install cancel status watch events audit power web contexts help" rackboot ""
expect _rackboot "login" rackboot web ""
expect _rackboot "--json" rackboot --j
expect _rackboot "import add list show remove" rackboot hosts ""
expect _rackboot "--bmc --bmc-user --bmc-password-file --bmc-password-stdin" rackboot hosts add web1 --b
expect _rackboot "status" rackboot --controller ipc:///x st
expect _rackboot "failed" rackboot status --state f
expect _rackboot "installing installed" rackboot status --phase inst
expect _rackboot "--state" rackboot hosts list --rack r1 --st
expect _rackboot "on off cycle soft status" rackboot power ""
expect _rackboot "table wide json yaml name" rackboot -o ""
expect _rackboot "--quiet" rackboot watch --json --q
expect _rackboot "cycle on" rackboot install web1 --power ""
expect _rackboot "--replace" rackboot install web1 --rep
expect _rackboot_pki "init issue revoke crl list" rackboot-pki ""
expect _rackboot_pki "controller agent operator viewer" rackboot-pki --dir /tmp issue ""
expect _rackboot_pki "--san --days --help" rackboot-pki issue controller ctl --
expect _rackboot_pki "--crl-days --help" rackboot-pki revoke agent rack1 --

[ "$failures" = 0 ] || { echo "$failures failure(s)"; exit 1; }

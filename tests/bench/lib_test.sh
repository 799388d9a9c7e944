#!/usr/bin/env bash
# lib_test.sh - the parts of lib.sh that turn into figures, checked without any server.
#
# server_cpu_ticks: a server's CPU time is the sum over its processes, each counted once.
# lighttpd is one process, both the main PID and the serving one: it was counted twice,
# which doubled its CPU per request in compare.sh's table. A stand-in process that has
# burnt some CPU and then sleeps plays lighttpd (one process) and nginx (a master and one
# child), and the ticks read must equal those in /proc. Exit 0: pass, 1: fail.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
burners=()
cleanup() {
    local p
    for p in "${burners[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

# shellcheck disable=SC2034  # settings read by lib.sh
me=lib_test.sh BENCH_DIR=$work/bench PREFORKD=/bin/true INSTALL=0
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

failures=0
check() {   # check WHAT EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        echo "ok   $1 ($3)"
    else
        echo "FAIL $1: expected $2, got $3"
        failures=$((failures + 1))
    fi
}

# ticks PID: utime + stime of one process
ticks() {
    local f
    f=$(cat "/proc/$1/stat")
    f=${f##*) }
    # shellcheck disable=SC2086  # split into the stat fields on purpose
    set -- $f
    echo $((${12} + ${13}))
}

# A process that burns CPU until /proc shows 5 ticks of it (at most 10 s), then sleeps (its
# ticks stop moving), optionally after starting a child that does the same. `exec sleep`
# keeps the PID and the time already counted.
# shellcheck disable=SC2016  # expanded by the stand-in's shell, not this one
burn='end=$((SECONDS + 10)); while [ $SECONDS -lt $end ]; do
    for _ in {1..2000}; do :; done
    read -r -a f < /proc/$$/stat; [ $((f[13] + f[14])) -ge 5 ] && break; done'
bash -c "$burn; exec sleep 60" &
single=$!
burners+=("$single")
bash -c "$burn; bash -c '$burn; exec sleep 60' & exec sleep 60" &
master=$!
burners+=("$master")

# Wait until both are asleep in `sleep` and the master has its child.
settled() {
    [ "$(cat "/proc/$single/comm" 2>/dev/null)" = sleep ] &&
        [ "$(cat "/proc/$master/comm" 2>/dev/null)" = sleep ] || return 1
    local kid
    kid=$(children_of "$master")
    [ -n "$kid" ] && [ "$(cat "/proc/$kid/comm" 2>/dev/null)" = sleep ]
}
for _ in $(seq 100); do settled && break; sleep 0.1; done
settled || { echo "FAIL the stand-in processes did not settle"; exit 1; }
kid=$(children_of "$master")
burners+=("$kid")

# With no CPU time at all, once and twice would read the same.
[ "$(ticks "$single")" -gt 0 ] || { echo "FAIL the stand-in burnt no measurable CPU"; exit 1; }

pid_of["lighttpd"]=$single
check "lighttpd: serving_pids is its one process" "$single" "$(serving_pids lighttpd)"
check "lighttpd: its one process counted once" "$(ticks "$single")" "$(server_cpu_ticks lighttpd)"

pid_of["nginx"]=$master
check "nginx: master and child, each once" "$(( $(ticks "$master") + $(ticks "$kid") ))" \
    "$(server_cpu_ticks nginx)"

[ $failures = 0 ] || exit 1
echo "all passed"

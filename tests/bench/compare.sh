#!/usr/bin/env bash
# compare.sh - preforkd against nginx, lighttpd and Apache (mpm_prefork) on loopback, with wrk.
#
#   tests/bench/compare.sh            full run (3 interleaved rounds of 10 s per scenario)
#   tests/bench/compare.sh --smoke    1 round, 1 s per scenario, no warm-up (what CI runs)
#   tests/bench/compare.sh --help
#
# It installs what is missing among wrk, nginx, lighttpd, apache2 and curl (apt-get, as root
# or through sudo; no system service is started), writes a docroot and one config per server
# under $BENCH_DIR, starts preforkd from the build and the peers on 127.0.0.1, runs the
# scenarios interleaved (round 1: scenario a on every server, then b...; round 2: the same,
# each scenario's servers in a rotated order),
# stops every process it started (by PID), and prints a table of median req/s, p50, p99 and
# errors per server with the ratio to the best peer, then the targets of the performance issue
# with how far each is met.
#
# Scenarios (all `wrk -t1 --latency`):
#   a  keep-alive, /index.html (1 KiB), 50 connections
#   b  keep-alive, /index.html, 256 connections
#   c  new connection per request (Connection: close), /index.html, 50 connections
#   d  keep-alive, /1m.bin (1 MiB), 10 connections
#   e  strict prefork: preforkd with workers.max_connections = 1 and a pool of
#      PREFORK_POOL workers ("preforkd-1") against Apache prefork, workloads a and c
#   f  fair accept: workload c against preforkd with 4 workers ("preforkd-4"); the
#      per-worker accepted counts come from its status page (?json)
#
# Environment (defaults):
#   ROUNDS=3  DURATION=10 (s per run)  WARMUP=3 (s per server, 0 = none)  PAUSE=2 (s)
#   SCENARIOS="a b c d e f"  PEERS="nginx lighttpd apache"  WORKERS=$(nproc) (nginx and
#   preforkd workers)  PREFORKD_WORKERS=$WORKERS  PREFORK_POOL=64  FAIR_WORKERS=4
#   PORT_BASE=18180 (uses 6 ports from it)
#   PREFORKD=<repo>/build/preforkd  BENCH_DIR=/tmp/preforkd-bench  INSTALL=1 (0: never apt-get)
#   OUT=$BENCH_DIR/results/<date-time> (raw wrk output, runs.tsv, accepts.tsv, table.txt)
#
# The exit status is 0 whatever the numbers; non-zero only when the harness itself fails
# (a server does not start, wrk cannot run, a bad setting): 2. Only 127.0.0.1 is used.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)

smoke=0
for arg in "$@"; do
    case $arg in
        --smoke) smoke=1 ;;
        -h|--help) sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

if [ $smoke = 1 ]; then
    ROUNDS=${ROUNDS:-1}; DURATION=${DURATION:-1}; WARMUP=${WARMUP:-0}; PAUSE=${PAUSE:-0}
fi
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
PAUSE=${PAUSE:-2}
SCENARIOS=${SCENARIOS:-a b c d e f}
PEERS=${PEERS:-nginx lighttpd apache}
WORKERS=${WORKERS:-$(nproc 2>/dev/null || echo 2)}
PREFORK_POOL=${PREFORK_POOL:-64}
FAIR_WORKERS=${FAIR_WORKERS:-4}
me=compare.sh
. "$here/lib.sh"

is_uint "$ROUNDS" && [ "$ROUNDS" -ge 1 ] || die "ROUNDS must be a positive integer"
DURATION=${DURATION%s}; WARMUP=${WARMUP%s}
is_uint "$DURATION" && [ "$DURATION" -ge 1 ] || die "DURATION must be whole seconds >= 1"
is_uint "$WARMUP" || die "WARMUP must be whole seconds"
is_uint "$PAUSE" || die "PAUSE must be whole seconds"
is_uint "$PREFORK_POOL" && [ "$PREFORK_POOL" -ge 1 ] || die "PREFORK_POOL must be >= 1"
is_uint "$FAIR_WORKERS" && [ "$FAIR_WORKERS" -ge 2 ] || die "FAIR_WORKERS must be >= 2"
for s in $SCENARIOS; do [[ $s =~ ^[a-f]$ ]] || die "unknown scenario: $s (known: a b c d e f)"; done
for p in $PEERS; do [[ $p =~ ^(nginx|lighttpd|apache)$ ]] || die "unknown peer: $p"; done

want=(wrk curl)
for p in $PEERS; do want+=("$(package_of "$p")"); done
install_missing "${want[@]}" || true
if ! command -v wrk >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
    # Not the harness's fault: say so, and leave CI's status alone in smoke mode.
    [ $smoke = 1 ] && { note "SKIPPED: wrk or curl is not installed"; exit 0; }
    die "wrk and curl are needed"
fi
peers=()
for p in $PEERS; do
    if command -v "$(binary_of "$p")" >/dev/null 2>&1; then
        peers+=("$p")
    else
        note "peer $p left out: $(binary_of "$p") is not installed"
    fi
done

OUT=${OUT:-$BENCH_DIR/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/raw" || die "cannot create $OUT"
make_docroot
trap 'stop_all' EXIT
trap 'note interrupted; exit 130' INT TERM

# ---- plan -------------------------------------------------------------------------------

has() { [[ " $SCENARIOS " == *" $1 "* ]]; }
servers=()
if has a || has b || has c || has d; then servers+=(preforkd "${peers[@]}"); fi
if has e; then
    servers+=(preforkd-1)
    [[ " ${servers[*]} " == *" apache "* ]] || { [[ " ${peers[*]} " == *" apache "* ]] && servers+=(apache); }
fi
has f && servers+=(preforkd-4)

# Every scenario as "key workload server...": a workload is a wrk command shape.
plan=()
for s in $SCENARIOS; do
    case $s in
        a|b|c|d) plan+=("$s $s preforkd ${peers[*]}") ;;
        e) e_peers=""; [[ " ${peers[*]} " == *" apache "* ]] && e_peers=apache
           plan+=("e/a a preforkd-1 $e_peers" "e/c c preforkd-1 $e_peers") ;;
        f) plan+=("f c preforkd-4") ;;
    esac
done

wrk_args() {   # wrk_args WORKLOAD -> conns, path and extra options
    case $1 in
        a) echo "-c50 /index.html" ;;
        b) echo "-c256 /index.html" ;;
        c) echo "-c50 /index.html close" ;;
        d) echo "-c10 /1m.bin" ;;
    esac
}

# Per-worker accepted counts of a preforkd instance: "pid accepted" lines.
accepted_counts() {
    curl -s -m 5 "http://127.0.0.1:${port[$1]}/server-status?json" |
        python3 -c '
import json, sys
for w in json.load(sys.stdin)["workers"]:
    print(w["pid"], w["accepted"])' 2>/dev/null
}

# Worker RSS in KiB: "server kib kib ...".
worker_rss() {
    local p
    printf '%s' "$1"
    for p in $(serving_pids "$1"); do
        printf ' %s' "$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null)"
    done
    echo
}

# ---- run --------------------------------------------------------------------------------

{
    echo "date: $(date -Is)"
    echo "host: $(uname -srm); $(nproc) CPUs: $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
    echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "preforkd: $PREFORKD ($("$PREFORKD" -V 2>&1 | head -1))"
    echo "nginx: $(nginx -v 2>&1)"
    echo "lighttpd: $(lighttpd -v 2>&1 | head -1)"
    echo "apache: $(apache2 -v 2>/dev/null | head -1)"
    echo "wrk: $(wrk -v 2>&1 | head -1)"
    echo "settings: ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP PAUSE=$PAUSE SCENARIOS=\"$SCENARIOS\" WORKERS=$WORKERS PREFORKD_WORKERS=$PREFORKD_WORKERS PREFORK_POOL=$PREFORK_POOL FAIR_WORKERS=$FAIR_WORKERS smoke=$smoke"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt" >&2

for s in "${servers[@]}"; do
    start_server "$s" || die "cannot start $s"
    note "$s: pid ${pid_of[$s]}, 127.0.0.1:${port[$s]}"
done
for s in "${servers[@]}"; do
    [ "$(get "$s" /1m.bin)" = "200 1048576" ] || die "$s does not serve /1m.bin"
done

if [ "$WARMUP" -gt 0 ]; then
    for s in "${servers[@]}"; do
        timeout -k 5 $((WARMUP + 30)) wrk -t1 -c50 -d"${WARMUP}s" "http://127.0.0.1:${port[$s]}/index.html" \
            > "$OUT/raw/warmup-$s.txt" 2>&1 || die "wrk failed warming up $s"
        sleep "$PAUSE"
    done
fi

# cpu_s: the server's CPU time during the run; wrk_cpu_s: wrk's own (bash's `time`, which
# counts the waited-for wrk under timeout). wrk -t1 runs on one core: near DURATION
# seconds it is the bottleneck, and req/s says more about wrk than about the server.
printf 'round\tscenario\tserver\tfile\tloadavg\tcpu_s\twrk_cpu_s\n' > "$OUT/runs.tsv"
clk_tck=$(getconf CLK_TCK)
printf 'round\tscenario\tserver\tpid\taccepted\n' > "$OUT/accepts.tsv"
n_runs=0
for entry in "${plan[@]}"; do set -- $entry; n_runs=$((n_runs + $# - 2)); done
n_runs=$((n_runs * ROUNDS))
note "$n_runs runs of ${DURATION}s"
i=0
for r in $(seq "$ROUNDS"); do
    for entry in "${plan[@]}"; do
        set -- $entry
        key=$1; workload=$2; shift 2
        # Rotated each round, so that no server always runs right after the same one (a
        # run after Apache's 256 busy children, for one, starts on a busier machine).
        order=("$@")
        k=$(( (r - 1) % $# ))
        order=("${order[@]:k}" "${order[@]:0:k}")
        read -r conns path mode <<< "$(wrk_args "$workload")"
        for s in "${order[@]}"; do
            i=$((i + 1))
            file="$OUT/raw/r$r-${key/\//}-$s.txt"
            cmd=(wrk -t1 "$conns" -d"${DURATION}s" --latency)
            [ "$mode" = close ] && cmd+=(-H "Connection: close")
            cmd+=("http://127.0.0.1:${port[$s]}$path")
            [[ $s == preforkd* ]] && before=$(accepted_counts "$s")
            load=$(cut -d' ' -f1 /proc/loadavg)
            cpu0=$(server_cpu_ticks "$s")
            TIMEFORMAT='%U %S'
            { time timeout -k 5 $((DURATION + 30)) "${cmd[@]}" > "$file" 2>&1; } 2> "$OUT/wrk-time" ||
                die "wrk failed ($s, scenario $key): $(tail -1 "$file")"
            cpu1=$(server_cpu_ticks "$s")
            cpu_s=$(awk -v t=$((cpu1 - cpu0)) -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }')
            wrk_cpu_s=$(awk '{ printf "%.2f", $1 + $2 }' "$OUT/wrk-time")
            if [[ $s == preforkd* ]]; then
                after=$(accepted_counts "$s")
                # per-worker accepted during this run (workers are fixed, pids stable)
                join -a2 -e0 -o 0,1.2,2.2 <(sort <<< "$before") <(sort <<< "$after") |
                    while read -r pid a b; do
                        printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$key" "$s" "$pid" "$((b - a))"
                    done >> "$OUT/accepts.tsv"
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$key" "$s" "$file" "$load" "$cpu_s" \
                "$wrk_cpu_s" >> "$OUT/runs.tsv"
            note "[$i/$n_runs] round $r $key $s: $(awk '/^Requests\/sec/{print $2}' "$file") req/s (load $load, server CPU ${cpu_s} s, wrk CPU ${wrk_cpu_s} s)"
            sleep "$PAUSE"
        done
    done
done

printf 'server\trss_kib\n' > "$OUT/rss.tsv"
for s in "${servers[@]}"; do
    worker_rss "$s" | awk '{for (i = 2; i <= NF; i++) printf "%s\t%s\n", $1, $i}' >> "$OUT/rss.tsv"
done
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"

stop_all
trap - EXIT

python3 "$here/report.py" "$OUT" | tee "$OUT/table.txt" || die "report.py failed"
note "results in $OUT"
exit 0

#!/usr/bin/env bash
# profile.sh - system calls and instructions per request, preforkd beside its peers.
#
#   tests/bench/profile.sh            (needs strace and valgrind; installs them if missing)
#
# 1. System calls: each server runs as in compare.sh; `strace -c -f` is attached to its
#    serving processes while wrk runs STRACE_SECONDS; calls per request = the calls strace
#    counted / the requests wrk completed. strace slows the servers down a lot: these are
#    counts, not speeds.
# 2. Instructions (user space): each server of CG_SERVERS runs with one serving process
#    (preforkd: 1 worker; nginx: master_process off; lighttpd: -D) under
#    `valgrind --tool=callgrind`, twice, with wrk runs of CG_SHORT and CG_LONG seconds;
#    instructions per request = (Ir_long - Ir_short) / (requests_long - requests_short),
#    which cancels start-up, shut-down and the probes. CG_RUNS > 1 repeats each pair and
#    gives the median (scenario c moves by about 1% from run to run: how accepts batch).
#    Kernel instructions are not counted (most virtual machines expose no PMU to
#    `perf stat`); the system calls stand in for them.
#
# Scenarios: a (keep-alive, 1 KiB, 50 connections; 10 under callgrind), c (new connection
# per request, 1 KiB), d (keep-alive, 1 MiB, 10 connections).
#
# Environment (defaults): SERVERS="preforkd nginx lighttpd"  SCENARIOS="a c d"
#   STRACE_SECONDS=5  CG_SERVERS="preforkd nginx lighttpd"  CG_SCENARIOS="a c"  CG_SHORT=2
#   CG_LONG=6  CG_RUNS=1, and those of lib.sh (BENCH_DIR, PREFORKD, WORKERS, PORT_BASE, INSTALL).
#   SERVERS="" skips the system calls, CG_SERVERS="" the instructions.
# Output: tables on stdout; the strace and callgrind files stay in $OUT
# (default $BENCH_DIR/profile/<date-time>) for callgrind_annotate.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
case ${1:-} in
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "profile.sh: unknown argument: $1" >&2; exit 2 ;;
esac
SERVERS=${SERVERS-preforkd nginx lighttpd}
SCENARIOS=${SCENARIOS:-a c d}
STRACE_SECONDS=${STRACE_SECONDS:-5}
CG_SERVERS=${CG_SERVERS-preforkd nginx lighttpd}
CG_SCENARIOS=${CG_SCENARIOS:-a c}
CG_SHORT=${CG_SHORT:-2}
CG_LONG=${CG_LONG:-6}
CG_RUNS=${CG_RUNS:-1}
me=profile.sh
. "$here/lib.sh"

for v in STRACE_SECONDS CG_SHORT CG_LONG CG_RUNS; do
    is_uint "${!v}" && [ "${!v}" -ge 1 ] || die "$v must be whole seconds >= 1"
done
[ "$CG_LONG" -gt "$CG_SHORT" ] || die "CG_LONG must be longer than CG_SHORT"
for s in $SERVERS; do [[ $s =~ ^(preforkd|preforkd-1|nginx|lighttpd|apache)$ ]] || die "unknown server: $s"; done
for s in $CG_SERVERS; do [[ $s =~ ^(preforkd|nginx|lighttpd)$ ]] || die "unknown server: $s"; done
for s in $SCENARIOS $CG_SCENARIOS; do [[ $s =~ ^[abcd]$ ]] || die "unknown scenario: $s"; done

want=(wrk curl strace valgrind)
for s in $SERVERS $CG_SERVERS; do [[ $s == preforkd* ]] || want+=("$(package_of "$s")"); done
install_missing "${want[@]}" || die "missing tools (see above)"

OUT=${OUT:-$BENCH_DIR/profile/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" || die "cannot create $OUT"
chmod 1777 "$OUT"   # workers that dropped privileges write their callgrind files here
make_docroot
trap 'stop_all' EXIT
trap 'note interrupted; exit 130' INT TERM
echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"

wrk_cmd() {   # wrk_cmd SERVER SCENARIO SECONDS CONNS_OVERRIDE -> the wrk command line
    local conns path extra=()
    case $2 in
        a) conns=50; path=/index.html ;;
        b) conns=256; path=/index.html ;;
        c) conns=50; path=/index.html; extra=(-H "Connection: close") ;;
        d) conns=10; path=/1m.bin ;;
    esac
    [ -n "${4:-}" ] && conns=$4
    echo wrk -t1 -c"$conns" -d"$3s" "${extra[@]}" "http://127.0.0.1:${port[$1]}$path"
}
requests_of() { awk '/requests in/{print $1; exit}' "$1"; }

# ---- 1. system calls ----------------------------------------------------------------------

if [ -n "$SERVERS" ] && [ -n "$SCENARIOS" ]; then
    echo
    echo "system calls per request (strace -c -f on the serving processes, ${STRACE_SECONDS}s of wrk)"
    for s in $SERVERS; do
        start_server "$s" || die "cannot start $s"
        for sc in $SCENARIOS; do
            pids=$(serving_pids "$s")
            args=()
            for p in $pids; do args+=(-p "$p"); done
            trace="$OUT/strace-$s-$sc.txt"
            timeout -k 5 $((STRACE_SECONDS + 60)) strace -c -f -o "$trace" "${args[@]}" 2>/dev/null &
            tracer=$!
            sleep 1   # attached
            wrk_out="$OUT/wrk-strace-$s-$sc.txt"
            read -r -a cmd <<< "$(wrk_cmd "$s" "$sc" "$STRACE_SECONDS")"
            # (the Connection header has a space: rebuild it rather than word-split it)
            [ "$sc" = c ] && cmd=(wrk -t1 -c50 -d"${STRACE_SECONDS}s" -H "Connection: close"
                                  "http://127.0.0.1:${port[$s]}/index.html")
            timeout -k 5 $((STRACE_SECONDS + 30)) "${cmd[@]}" > "$wrk_out" 2>&1
            kill -INT "$tracer" 2>/dev/null
            wait "$tracer" 2>/dev/null
            n=$(requests_of "$wrk_out")
            [ -n "$n" ] && [ "$n" -gt 0 ] || die "no requests in $wrk_out"
            # strace -c rows: % time, seconds, usecs/call, calls, [errors], syscall
            awk -v n="$n" -v s="$s" -v sc="$sc" '
                $1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { c[$NF] = $4; total += $4 }
                END {
                    line = sprintf("  %-8s %s  %6.2f per request:", s, sc, total / n)
                    m = 0
                    for (k in c) if (c[k] / n >= 0.01) { keys[++m] = k }
                    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++)
                        if (c[keys[j]] > c[keys[i]]) { t = keys[i]; keys[i] = keys[j]; keys[j] = t }
                    for (i = 1; i <= m; i++) line = line sprintf(" %s %.2f", keys[i], c[keys[i]] / n)
                    printf "%s  (%d requests)\n", line, n
                }' "$trace"
            sleep 1
        done
        stop_server "$s"
    done
fi

# ---- 2. instructions ---------------------------------------------------------------------

# cg_run SERVER SCENARIO SECONDS [RUN]: one server process under callgrind, one wrk run; sets
# cg_result to "instructions requests" (the serving process's total instructions).
cg_run() {
    local s=$1 sc=$2 secs=$3 dir="$OUT/cg-$1-$2-$3${4:+-r$4}" pidfile main serving="" f ir n
    mkdir -p "$dir" && chmod 1777 "$dir"
    pidfile="$BENCH_DIR/run/$s.pid"
    rm -f "$pidfile"
    write_conf "$s" 1
    [ "$s" = lighttpd ] && write_lighttpd_conf stay
    local vg=(valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out.%p")
    case $s in
        preforkd) setsid "${vg[@]}" "$PREFORKD" -F -c "$BENCH_DIR/conf/preforkd.toml" ;;
        nginx) setsid "${vg[@]}" nginx -g 'daemon off; master_process off;' \
                   -p "$BENCH_DIR/nginx/" -e "$BENCH_DIR/logs/nginx-error.log" \
                   -c "$BENCH_DIR/conf/nginx.conf" ;;
        lighttpd) setsid "${vg[@]}" lighttpd -D -f "$BENCH_DIR/conf/lighttpd.conf" ;;
        apache) setsid "${vg[@]}" apache2 -X -f "$BENCH_DIR/conf/apache2.conf" ;;
    esac </dev/null >>"$BENCH_DIR/logs/$s-valgrind.out" 2>&1 &
    wait_serving "$s" || die "$s did not start under valgrind"
    main=${pid_of[$s]}
    case $s in preforkd) serving=$(children_of "$main") ;; *) serving=$main ;; esac
    local -a cmd
    read -r -a cmd <<< "$(wrk_cmd "$s" "$sc" "$secs" 10)"
    [ "$sc" = c ] && cmd=(wrk -t1 -c10 -d"${secs}s" -H "Connection: close"
                          "http://127.0.0.1:${port[$s]}/index.html")
    timeout -k 5 $((secs + 60)) "${cmd[@]}" > "$dir/wrk.txt" 2>&1
    stop_server "$s"
    n=$(requests_of "$dir/wrk.txt")
    ir=0
    for p in $serving; do
        f="$dir/callgrind.out.$p"
        for _ in $(seq 50); do [ -s "$f" ] && break; sleep 0.1; done
        f=$(awk '/^(summary|totals):/{print $2; exit}' "$f" 2>/dev/null)
        ir=$((ir + ${f:-0}))
    done
    cg_result="$ir ${n:-0}"
}

if [ -n "$CG_SERVERS" ] && [ -n "$CG_SCENARIOS" ]; then
    echo
    echo "user-space instructions per request (callgrind, one serving process, 10 connections;"
    echo "difference of a ${CG_LONG}s and a ${CG_SHORT}s run)"
    [ "$CG_RUNS" -gt 1 ] && echo "median of $CG_RUNS runs"
    for s in $CG_SERVERS; do
        for sc in $CG_SCENARIOS; do
            per_request=()
            failed=""
            for r in $(seq "$CG_RUNS"); do
                run=""
                [ "$CG_RUNS" -gt 1 ] && run=$r
                cg_run "$s" "$sc" "$CG_SHORT" "$run"
                read -r ir1 n1 <<< "$cg_result"
                cg_run "$s" "$sc" "$CG_LONG" "$run"
                read -r ir2 n2 <<< "$cg_result"
                if [ "$n2" -gt "$n1" ] && [ "$ir2" -gt "$ir1" ]; then
                    per_request+=($(( (ir2 - ir1) / (n2 - n1) )))
                else
                    failed="$failed ($ir1/$ir2 instructions, $n1/$n2 requests)"
                fi
            done
            if [ -n "$failed" ]; then
                printf '  %-8s %s  not measurable:%s\n' "$s" "$sc" "$failed"
            elif [ "$CG_RUNS" = 1 ]; then
                printf '  %-8s %s  %7d instructions per request  (%d and %d requests)\n' "$s" "$sc" \
                    "${per_request[0]}" "$n1" "$n2"
            else
                sorted=($(printf '%s\n' "${per_request[@]}" | sort -n))
                printf '  %-8s %s  %7d instructions per request  (runs: %s)\n' "$s" "$sc" \
                    "${sorted[$(( (CG_RUNS - 1) / 2 ))]}" "${per_request[*]}"
            fi
        done
    done
fi
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "files: $OUT"

#!/usr/bin/env bash
# https.sh - HTTPS: preforkd against nginx, lighttpd and Apache (mod_ssl), through the lab.
#
#   tests/bench/https.sh            full run (ROUNDS interleaved rounds of DURATION per run)
#   tests/bench/https.sh --smoke    1 round of 1 s, no warm-up: the harness works, nothing more
#
# The lab (../shared/lab beside the repository, or LAB_DIR) runs the peers with HTTPS
# listeners and one self-signed ECDSA P-256 certificate ($LAB_RUN/tls/lab.pem, lab.key),
# TLS 1.2 + 1.3, session tickets on, access logs off. This script:
#   1. starts the peers (`peers.sh start`; peers it did not start are left running);
#   2. starts preforkd ($PREFORKD; built into build/ if unset and missing) on the lab's
#      docroot with a plain and a `tls` listener, the lab certificate, the default ciphers
#      and session tickets (as the peers), access log off, keep-alive requests unlimited,
#      a fixed pool of WORKERS workers;
#   3. runs, interleaved (per round and scenario every server once, in a rotated order):
#        f  HTTPS keep-alive, /index.html (1 KiB), 50 connections     (the lab's wrk line)
#        i  HTTPS keep-alive, /1m.bin (1 MiB), 10 connections          (the lab's wrk line)
#        g  a new TLS connection per request, resumed, c50             (tls_conn_client -r)
#        h  a new TLS connection per request, full handshake, c50      (tls_conn_client)
#        w  the lab's "h" wrk line (wrk -H 'Connection: close', c50): NOT full handshakes.
#           wrk keeps its SSL object across connections (SSL_shutdown + SSL_clear), which
#           keeps the session, so it resumes whenever the server gave it a ticket: nginx
#           resumed 99.5% of wrk's connections (its access log's $ssl_session_reused).
#           Kept because it is the lab's line; h is the full-handshake scenario.
#      tls_conn_client (tls_conn_client.c beside this script, built with cc) counts the
#      handshakes the server resumed (SSL_session_reused): g offers every slot's previous
#      session, h never offers one. preforkd's /server-status?json tls_resumed is logged
#      beside g, h and w as a cross-check (for w it is the resumed column of preforkd's row).
#      CPU per request as the lab measures it: user + system
#      time of every process holding the listening socket, before and after, / requests;
#   4. stops what it started, by PID, and prints one table: per scenario and server the
#      median req/s over the rounds, its spread, p99, errors, the ratio to the best peer,
#      the server's CPU time per request (median) and its ratio to the lowest peer's.
#
# Environment (defaults): ROUNDS=3  DURATION=10 (s)  WARMUP=3 (s, 0 = none)  PAUSE=2 (s)
#   SCENARIOS="f g h i w"  PEERS="nginx apache lighttpd"  WORKERS=$(nproc) (preforkd's and
#   nginx's)  PREFORKD=<repo>/build/preforkd  LAB_DIR=<repo>/../shared/lab
#   LAB_RUN=/tmp/preforkd-lab  PREFORKD_PORT=18090  PREFORKD_TLS_PORT=19090, and the lab's
#   port settings (NGINX_PORT ... LIGHTTPD_TLS_PORT), which peers.sh and compare.sh share.
#   OUT=$LAB_RUN/results/https-<date-time> (raw/ every run's output, rows.tsv one line per
#   run, table.txt the table, summary.txt what is printed)
# The exit status is 0 whatever the numbers, 2 when the harness fails. Loopback only.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
me=https.sh
die() { echo "$me: $*" >&2; exit 2; }
note() { echo "$me: $*" >&2; }

smoke=0
for arg in "$@"; do
    case $arg in
        --smoke) smoke=1 ;;
        -h|--help) sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $arg (try --help)" ;;
    esac
done
if [ $smoke = 1 ]; then
    ROUNDS=${ROUNDS:-1}; DURATION=${DURATION:-1}; WARMUP=${WARMUP:-0}; PAUSE=${PAUSE:-0}
fi
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}; DURATION=${DURATION%s}
WARMUP=${WARMUP:-3}; WARMUP=${WARMUP%s}
PAUSE=${PAUSE:-2}
SCENARIOS=${SCENARIOS:-f g h i w}
PEERS=${PEERS:-nginx apache lighttpd}
WORKERS=${WORKERS:-$(nproc 2>/dev/null || echo 2)}
PREFORKD_PORT=${PREFORKD_PORT:-18090}
PREFORKD_TLS_PORT=${PREFORKD_TLS_PORT:-19090}
LAB_DIR=${LAB_DIR:-$repo/../shared/lab}
export WORKERS   # peers.sh: nginx's worker processes

for v in ROUNDS DURATION; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a whole number >= 1"; done
for v in WARMUP PAUSE WORKERS PREFORKD_PORT PREFORKD_TLS_PORT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number"
done
for s in $SCENARIOS; do [[ $s =~ ^[fghiw]$ ]] || die "unknown scenario: $s (known: f g h i w)"; done
for p in $PEERS; do [[ $p =~ ^(nginx|apache|lighttpd)$ ]] || die "unknown peer: $p"; done
[ -x "$LAB_DIR/peers.sh" ] || die "no lab at $LAB_DIR (set LAB_DIR)"
LAB_DIR=$(cd "$LAB_DIR" && pwd)
LAB=$LAB_DIR
# shellcheck source=/dev/null
. "$LAB_DIR/common.sh"   # LAB_RUN, the ports, TLS_CERT/TLS_KEY, peer_pid, peer_tls_port, port_open
export LAB_RUN NGINX_PORT APACHE_PORT CEILING_PORT LIGHTTPD_PORT NGINX_TLS_PORT APACHE_TLS_PORT LIGHTTPD_TLS_PORT
OUT=${OUT:-$LAB_RUN/results/https-$(date +%Y%m%d-%H%M%S)}

# ---- the binary under test and the client ---------------------------------------------------
if [ -z "${PREFORKD:-}" ]; then
    PREFORKD=$repo/build/preforkd
    if [ ! -x "$PREFORKD" ]; then
        note "building $PREFORKD"
        { cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
          cmake --build "$repo/build" -j"$(nproc)" --target preforkd >/dev/null; } ||
            die "could not build preforkd (set PREFORKD)"
    fi
fi
[ -x "$PREFORKD" ] || die "no preforkd binary at $PREFORKD"
command -v cc >/dev/null || die "no C compiler (cc) for tls_conn_client.c"
mkdir -p "$OUT/raw" "$LAB_RUN/bin" || die "cannot create $OUT"
client=$LAB_RUN/bin/tls_conn_client
if [ ! -x "$client" ] || [ "$here/tls_conn_client.c" -nt "$client" ]; then
    cc -O2 -Wall -Wextra -o "$client" "$here/tls_conn_client.c" -lssl -lcrypto ||
        die "could not build tls_conn_client (needs libssl-dev)"
fi

load() { cut -d' ' -f1-3 /proc/loadavg; }
load_before=$(load)
echo "load average before: $load_before (uptime: $(uptime))"

# ---- peers --------------------------------------------------------------------------------------
started_peers=""
for p in $PEERS; do [ -n "$(peer_pid "$p")" ] || started_peers="$started_peers $p"; done
preforkd_pid=""
cleanup() {
    if [ -n "$preforkd_pid" ] && [ -d "/proc/$preforkd_pid" ]; then
        local kids p left
        kids=$(children_of "$preforkd_pid")
        kill -TERM "$preforkd_pid" 2>/dev/null
        for _ in $(seq 100); do
            left=""
            for p in $preforkd_pid $kids; do lab_owned "$p" && left="$left $p"; done
            [ -z "$left" ] && break
            sleep 0.1
        done
        # shellcheck disable=SC2086
        [ -n "$left" ] && { note "preforkd still running after 10 s: SIGKILL to$left"; kill -KILL $left 2>/dev/null; }
    fi
    # shellcheck disable=SC2086
    [ -n "$started_peers" ] && "$LAB_DIR/peers.sh" stop $started_peers >&2
}
trap cleanup EXIT
trap 'note interrupted; exit 130' INT TERM
# shellcheck disable=SC2086
"$LAB_DIR/peers.sh" start $PEERS >&2 || die "peers.sh start failed (see $LAB_RUN/logs/)"
[ -s "$TLS_CERT" ] && [ -s "$TLS_KEY" ] || die "no lab certificate at $TLS_CERT"

# ---- preforkd -----------------------------------------------------------------------------------
port_open "$PREFORKD_PORT" && die "127.0.0.1:$PREFORKD_PORT is in use (set PREFORKD_PORT)"
port_open "$PREFORKD_TLS_PORT" && die "127.0.0.1:$PREFORKD_TLS_PORT is in use (set PREFORKD_TLS_PORT)"
conf=$LAB_RUN/conf/preforkd-https.toml
pidfile=$LAB_RUN/preforkd-https.pid
rm -f "$pidfile"
cat > "$conf" <<EOF
# written by tests/bench/https.sh
[server]
listen = ["127.0.0.1:$PREFORKD_PORT", "127.0.0.1:$PREFORKD_TLS_PORT tls"]
backlog = 4096
pid_file = "$pidfile"

[workers]
# A fixed pool, like the peers'.
start = $WORKERS
max = $WORKERS
min_spare = 0
max_spare = $WORKERS
max_connections = 512

[http]
root = "$DOCROOT"
keepalive_timeout = "65s"
max_keepalive_requests = 0

[log]
error = "$LAB_RUN/logs/preforkd-https-error.log"
access = "off"
level = "warn"

[tls]
# The peers' certificate; default ciphers (TLS 1.3 negotiates the same suite everywhere)
# and session tickets on, as the peers.
certificates = [ { cert = "$TLS_CERT", key = "$TLS_KEY" } ]
session_tickets = true
EOF
"$PREFORKD" -t -c "$conf" >/dev/null 2>"$OUT/preforkd-t.txt" || { cat "$OUT/preforkd-t.txt" >&2; die "preforkd -t refused $conf"; }
( ulimit -n 65536 2>/dev/null; "$PREFORKD" -c "$conf" ) </dev/null >>"$LAB_RUN/logs/preforkd-https.out" 2>&1 ||
    die "preforkd failed to start (see $LAB_RUN/logs/preforkd-https*)"
for _ in $(seq 200); do
    [ -s "$pidfile" ] && preforkd_pid=$(tr -dc '0-9' < "$pidfile")
    if [ -n "$preforkd_pid" ] && [ "$(curl -sk -o /dev/null -m 5 -w '%{http_code}' "https://127.0.0.1:$PREFORKD_TLS_PORT/index.html")" = 200 ]; then
        break
    fi
    sleep 0.1
done
[ -n "$preforkd_pid" ] && lab_owned "$preforkd_pid" || die "preforkd did not come up (see $LAB_RUN/logs/preforkd-https*)"
note "preforkd: pid $preforkd_pid, 127.0.0.1:$PREFORKD_PORT and 127.0.0.1:$PREFORKD_TLS_PORT tls"

servers=()   # name:tlsport
for p in $PEERS; do [ -n "$(peer_pid "$p")" ] && servers+=("$p:$(peer_tls_port "$p")"); done
servers+=("preforkd:$PREFORKD_TLS_PORT")

# What each server negotiates with an OpenSSL client (the same protocol and suite everywhere).
for sp in "${servers[@]}"; do
    echo "${sp%%:*}: $(timeout 5 openssl s_client -connect "127.0.0.1:${sp#*:}" </dev/null 2>/dev/null |
        awk '/^New, /{print $2, $NF; exit}')"
done > "$OUT/negotiated.txt"

printf 'round\tserver\tscen\treq_per_s\terrors\tcpu_us_per_req\tp99_ms\tresumed_pct\n' > "$OUT/rows.tsv"

# ---- the runs ----------------------------------------------------------------------------------
# f, i and w are the lab's scenarios f, i and h with the lab's wrk command lines (bench.sh). They run
# here rather than through compare.sh because the lab finds a server's processes by reading
# every /proc/*/fd link with one readlink(1) per descriptor, twice per run: with Apache's 257
# processes that took 40-90 s per run on a loaded 2-CPU machine. Here `ss -p` lists the
# processes holding the listening socket (one call), and one awk reads their CPU times.
server_pids() {   # server_pids PORT -> the PIDs holding the socket listening on 127.0.0.1:PORT
    ss -Htlnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}
cpu_ticks() {     # cpu_ticks PID... -> utime + stime (clock ticks) summed
    local files=() p
    for p in "$@"; do files+=("/proc/$p/stat"); done
    [ ${#files[@]} -gt 0 ] || { echo 0; return; }
    awk '{sub(/^.*\) /, ""); t += $12 + $13} END {print t + 0}' "${files[@]}" 2>/dev/null
}
clk=$(getconf CLK_TCK 2>/dev/null || echo 100)
preforkd_resumed() {
    curl -s -m 5 "http://127.0.0.1:$PREFORKD_PORT/server-status?json" |
        grep -o '"tls_resumed": *[0-9]*' | head -1 | tr -dc '0-9'
}
to_ms() {   # wrk latency (262.00us, 1.23ms, 2.00s) -> ms
    awk -v v="$1" 'BEGIN{ if (v ~ /us$/) { sub(/us$/,"",v); printf "%.3f", v/1000 }
        else if (v ~ /ms$/) { sub(/ms$/,"",v); printf "%.3f", v }
        else if (v ~ /s$/) { sub(/s$/,"",v); printf "%.3f", v*1000 } else printf "NA" }'
}
# The body each server sends over HTTPS must be the docroot's file: a server that answers
# something else is not comparable (its rows get errors).
declare -A bad=()
for sp in "${servers[@]}"; do
    for path in /index.html /1m.bin; do
        got=$(curl -sk -o /dev/null -m 10 -w '%{http_code} %{size_download}' "https://127.0.0.1:${sp#*:}$path")
        [ "$got" = "200 $(stat -c %s "$DOCROOT$path")" ] ||
            { bad[${sp%%:*}]=1; note "WARNING: ${sp%%:*} https $path answered $got"; }
    done
done

if [ "$WARMUP" -gt 0 ]; then
    for sp in "${servers[@]}"; do
        timeout -k 5 $((WARMUP + 30)) wrk -t1 -c50 -d"${WARMUP}s" "https://127.0.0.1:${sp#*:}/index.html" \
            > "$OUT/raw/warmup_${sp%%:*}.txt" 2>&1
        sleep "$PAUSE"
    done
fi

n=${#servers[@]}
runs=$(( ROUNDS * $(wc -w <<< "$SCENARIOS") * n )); i=0
for r in $(seq "$ROUNDS"); do
    for sc in $SCENARIOS; do
        for k in $(seq 0 $((n - 1))); do
            sp=${servers[$(( (k + r - 1) % n ))]}   # rotated: no server always follows the same one
            name=${sp%%:*}; tport=${sp#*:}; i=$((i + 1))
            raw=$OUT/raw/${name}_${sc}_r$r.txt
            case $sc in
                f) cmd=(wrk -t1 -c50 -d"${DURATION}s" --latency "https://127.0.0.1:$tport/index.html") ;;
                w) cmd=(wrk -t1 -c50 -d"${DURATION}s" --latency -H 'Connection: close' "https://127.0.0.1:$tport/index.html") ;;
                i) cmd=(wrk -t1 -c10 -d"${DURATION}s" --latency "https://127.0.0.1:$tport/1m.bin") ;;
                g) cmd=("$client" -r -c 50 -d "$DURATION" "$tport" /index.html) ;;
                h) cmd=("$client" -c 50 -d "$DURATION" "$tport" /index.html) ;;
            esac
            { printf '# cmd:'; printf ' %q' "${cmd[@]}"; echo; } > "$raw"
            mapfile -t pids < <(server_pids "$tport")
            sr0=""; [[ $sc == [ghw] ]] && [ "$name" = preforkd ] && sr0=$(preforkd_resumed)
            t0=$(cpu_ticks "${pids[@]}")
            timeout -k 5 $((DURATION + 30)) "${cmd[@]}" >> "$raw" 2>&1
            t1=$(cpu_ticks "${pids[@]}")
            sr=""; [ -n "$sr0" ] && sr=$(( $(preforkd_resumed) - sr0 )) && echo "# preforkd tls_resumed: +$sr" >> "$raw"
            if [[ $sc == [gh] ]]; then
                line=$(grep -m1 '^requests=' "$raw")
                declare -A v=()
                for kv in $line; do v[${kv%%=*}]=${kv#*=}; done
                reqs=${v[requests]:-0}; rps=${v[req_per_s]:-NA}; errs=${v[errors]:-1}; p99=${v[p99_ms]:-NA}
                res=NA; [ "${v[handshakes]:-0}" -gt 0 ] && res=$(awk -v a="${v[resumed]}" -v b="${v[handshakes]}" 'BEGIN{printf "%.1f", 100*a/b}')
                unset v
            else
                rps=$(awk '/^Requests\/sec:/{print $2}' "$raw")
                reqs=$(awk '/requests in/{print $1; exit}' "$raw")
                p99=$(to_ms "$(awk '/Latency Distribution/{f=1} f && $1=="99%"{print $2; exit}' "$raw")")
                errs=$(awk '/Socket errors:/{gsub(",",""); e += $4 + $6 + $8 + $10} /Non-2xx or 3xx/{e += $NF} END{print e + 0}' "$raw")
                res=-
                # w: wrk cannot say; preforkd's own counter can (one handshake per request).
                [ "$sc" = w ] && [ -n "$sr" ] && [ "${reqs:-0}" -gt 0 ] &&
                    res=$(awk -v a="$sr" -v b="$reqs" 'BEGIN{printf "%.1f", 100*a/b}')
            fi
            [ -n "${bad[$name]:-}" ] && errs=$((errs + 1))
            cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$clk" -v n="${reqs:-0}" \
                'BEGIN{ if (n > 0 && b >= a) printf "%.1f", (b - a) / hz * 1e6 / n; else print "NA" }')
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$name" "$sc" "${rps:-NA}" "$errs" "$cpu" "$p99" "$res" >> "$OUT/rows.tsv"
            note "[$i/$runs] round $r $sc $name: ${rps:-NA} req/s, $cpu CPU us/req, errors $errs${sr:+, preforkd tls_resumed +$sr}$([[ $sc == [gh] ]] && echo ", resumed $res%")"
            sleep "$PAUSE"
        done
    done
done

# ---- the table ----------------------------------------------------------------------------------
load_after=$(load)
awk -F'\t' -v order="$SCENARIOS" '
function median(list,   v, n, i, j, t) {
    n = split(list, v, " "); if (n == 0) return "NA"
    for (i = 2; i <= n; i++) { t = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return (n % 2) ? v[(n + 1) / 2] + 0 : (v[n / 2] + v[n / 2 + 1]) / 2
}
NR == 1 { next }
{
    k = $3 SUBSEP $2
    if (!(k in seen)) { seen[k] = 1; srv[$3, ++ns[$3]] = $2 }
    if ($4 != "NA") rps[k] = rps[k] " " $4
    if ($6 != "NA" && $6 != "") cpu[k] = cpu[k] " " $6
    if ($7 != "NA" && $7 != "") p99[k] = p99[k] " " $7
    if ($8 != "-" && $8 != "NA") res[k] = res[k] " " $8
    err[k] += $5
}
END {
    split("f https ka c50 1 KiB|g https new conn, resumed, c50|h https new conn, full hs, c50|i https ka c10 1 MiB|w lab h: wrk new conn, c50", d, "|")
    what["f"] = d[1]; what["g"] = d[2]; what["h"] = d[3]; what["i"] = d[4]; what["w"] = d[5]
    fmt = "| %-30s | %-8s | %7s | %6s | %7s | %6s | %11s | %10s | %8s | %8s |\n"
    printf fmt, "scenario", "server", "req/s", "spread", "p99 ms", "errors", "x best peer", "CPU us/req", "x lowest", "resumed"
    printf "| %s | %s | %s: | %s: | %s: | %s: | %s: | %s: | %s: | %s: |\n", "------------------------------", "--------",
        "------", "-----", "------", "-----", "----------", "---------", "-------", "-------"
    n = split(order, sc, " ")
    for (i = 1; i <= n; i++) {
        s = sc[i]; best = 0; low = 0
        for (j = 1; j <= ns[s]; j++) {
            name = srv[s, j]; if (name == "preforkd") continue
            m = median(rps[s, name]); if (m != "NA" && m > best) best = m
            c = median(cpu[s, name]); if (c != "NA" && (low == 0 || c < low)) low = c
        }
        for (j = 1; j <= ns[s]; j++) {
            name = srv[s, j]; k = s SUBSEP name
            m = median(rps[k]); c = median(cpu[k]); p = median(p99[k]); rr = median(res[k])
            cnt = split(rps[k], v, " "); lo = 1e18; hi = 0
            for (x = 1; x <= cnt; x++) { if (v[x] + 0 < lo) lo = v[x] + 0; if (v[x] + 0 > hi) hi = v[x] + 0 }
            printf fmt, j == 1 ? what[s] : "", name, m == "NA" ? "NA" : sprintf("%.0f", m),
                (cnt > 1 && m > 0) ? sprintf("%.0f%%", 100 * (hi - lo) / m) : "-",
                p == "NA" ? "-" : sprintf("%.2f", p), err[k] + 0,
                (m != "NA" && best > 0) ? sprintf("%.2f", m / best) : "-",
                c == "NA" ? "-" : sprintf("%.1f", c),
                (c != "NA" && low > 0) ? sprintf("%.2f", c / low) : "-",
                rr == "NA" ? "-" : sprintf("%.0f%%", rr)
        }
    }
}' "$OUT/rows.tsv" > "$OUT/table.txt"
{
    cat "$OUT/table.txt"
    echo
    echo "medians of $ROUNDS round(s) of ${DURATION}s; f, i, w: the lab's wrk -t1; g, h: tls_conn_client (one thread, c50; g with -r)"
    echo "w is the lab's h line: wrk resumes whenever the server hands it a ticket (nginx: 99.5%); h is the full-handshake run"
    echo "x best peer = req/s / the best peer's; x lowest = CPU us/req / the lowest peer's (lower is better)"
    echo "resumed = handshakes the server resumed / all handshakes (g, h: the client's SSL_session_reused; w: preforkd's tls_resumed / requests)"
    echo "negotiated: $(paste -sd';' "$OUT/negotiated.txt")"
    echo "load average before: $load_before, after: $load_after ($(nproc) CPUs)"
} | tee "$OUT/summary.txt"
note "results: $OUT"
exit 0

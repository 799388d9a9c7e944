# shellcheck shell=bash
# lib.sh - what compare.sh and profile.sh share: packages, the docroot, one config per server,
# starting and stopping servers by PID. Sourced, not run. The caller sets `me` (its name for
# messages) and may set any of the settings below first.
#
# Settings (environment): BENCH_DIR=/tmp/preforkd-bench (configs, pid files, logs, docroot,
# results), PREFORKD=<repo>/build/preforkd, WORKERS=$(nproc) (nginx's worker processes, and
# preforkd's unless PREFORKD_WORKERS says otherwise), PORT_BASE=18180 (servers use
# PORT_BASE..PORT_BASE+5), INSTALL=1 (0: never run apt-get).

bench_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_repo=$(cd "$bench_lib_dir/../.." && pwd)
PREFORKD=${PREFORKD:-$bench_repo/build/preforkd}
BENCH_DIR=${BENCH_DIR:-/tmp/preforkd-bench}
WORKERS=${WORKERS:-$(nproc 2>/dev/null || echo 2)}
PREFORKD_WORKERS=${PREFORKD_WORKERS:-$WORKERS}
PORT_BASE=${PORT_BASE:-18180}
INSTALL=${INSTALL:-1}
PATH=$PATH:/usr/sbin:/sbin

die() { echo "$me: $*" >&2; exit 2; }
note() { echo "$me: $*" >&2; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

is_uint "$WORKERS" && [ "$WORKERS" -ge 1 ] || die "WORKERS must be >= 1"
is_uint "$PREFORKD_WORKERS" && [ "$PREFORKD_WORKERS" -ge 1 ] || die "PREFORKD_WORKERS must be >= 1"
is_uint "$PORT_BASE" && [ "$PORT_BASE" -ge 1024 ] && [ "$PORT_BASE" -le 65000 ] ||
    die "PORT_BASE must be in 1024..65000"
# The path ends up inside server configs: keep it to a plain character set.
[[ $BENCH_DIR =~ ^/[A-Za-z0-9._/+-]+$ ]] || die "BENCH_DIR must be an absolute plain path"
[ -x "$PREFORKD" ] || die "no preforkd binary at $PREFORKD (build it, or set PREFORKD)"

# Loopback only, one port per server.
declare -A port=(
    [preforkd]=$PORT_BASE [nginx]=$((PORT_BASE + 1)) [lighttpd]=$((PORT_BASE + 2))
    [apache]=$((PORT_BASE + 3)) [preforkd-1]=$((PORT_BASE + 4)) [preforkd-4]=$((PORT_BASE + 5))
)
docroot=$BENCH_DIR/docroot

mkdir -p "$BENCH_DIR"/{conf,logs,run,docroot,nginx,apache} || die "cannot create $BENCH_DIR"
chmod 755 "$BENCH_DIR"   # the servers' unprivileged workers read the docroot inside

if [ "$(id -u)" = 0 ]; then
    run_user=www-data; run_group=www-data
    id "$run_user" >/dev/null 2>&1 || { run_user=nobody; run_group=nogroup; }
else
    run_user=$(id -un); run_group=$(id -gn)
fi

# ---- packages ---------------------------------------------------------------------------

binary_of() { case $1 in apache|apache2) echo apache2 ;; *) echo "$1" ;; esac; }
package_of() { case $1 in apache) echo apache2 ;; *) echo "$1" ;; esac; }

# Installs the missing ones of the given Debian packages with apt-get (as root, or with
# sudo -n). A temporary policy-rc.d keeps their system services from starting.
install_missing() {
    local missing=() pkg sudo=() policy=/usr/sbin/policy-rc.d made=0 rc
    for pkg in "$@"; do
        command -v "$(binary_of "$pkg")" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} = 0 ] && return 0
    if [ "$INSTALL" != 1 ] || ! command -v apt-get >/dev/null 2>&1; then
        note "missing: ${missing[*]} (INSTALL=0 or no apt-get)"
        return 1
    fi
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || { note "missing: ${missing[*]}; installing needs root"; return 1; }
        sudo=(sudo -n)
    fi
    note "installing ${missing[*]} (apt-get)"
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null &&
            "${sudo[@]}" chmod 755 "$policy" && made=1
    fi
    # The package lists may be stale or absent: update only when a first try fails.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${missing[@]}" >"$BENCH_DIR/apt.log" 2>&1 ||
        { "${sudo[@]}" apt-get update >>"$BENCH_DIR/apt.log" 2>&1 &&
          "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
              --no-install-recommends "${missing[@]}" >>"$BENCH_DIR/apt.log" 2>&1; }
    rc=$?
    [ $made = 1 ] && "${sudo[@]}" rm -f "$policy"
    [ $rc = 0 ] || note "apt-get failed (see $BENCH_DIR/apt.log)"
    return $rc
}

# ---- docroot ----------------------------------------------------------------------------

# index.html (1 KiB) and 1m.bin (1 MiB): the same bytes on every machine.
make_docroot() {
    local head='<!DOCTYPE html><html><head><title>bench</title></head><body><pre>'
    local foot=$'</pre></body></html>\n'
    {
        printf '%s' "$head"
        yes 'preforkd' | tr -d '\n' | head -c $((1024 - ${#head} - ${#foot}))
        printf '%s' "$foot"
    } > "$docroot/index.html"
    yes 'preforkd bench: the quick brown fox jumps over the lazy dog 0123456789' |
        head -c 1048576 > "$docroot/1m.bin"
    chmod 755 "$docroot"
    chmod 644 "$docroot/index.html" "$docroot/1m.bin"
    [ "$(stat -c %s "$docroot/index.html")" = 1024 ] || die "docroot: index.html is not 1 KiB"
    [ "$(stat -c %s "$docroot/1m.bin")" = 1048576 ] || die "docroot: 1m.bin is not 1 MiB"
}

# ---- configs ----------------------------------------------------------------------------
# Equivalent settings everywhere: access log off, sendfile on, keep-alive limits raised so
# that the keep-alive scenarios do not reconnect, large backlogs.

# write_preforkd_conf NAME WORKERS MAX_CONNECTIONS
write_preforkd_conf() {
    cat > "$BENCH_DIR/conf/$1.toml" <<EOF
# written by tests/bench (lib.sh)
[server]
listen = ["127.0.0.1:${port[$1]}"]
backlog = 4096
user = ""
pid_file = "$BENCH_DIR/run/$1.pid"

[workers]
# A fixed pool, like the peers': no spare-driven growth in the middle of a run.
start = $2
max = $2
min_spare = 0
max_spare = $2
max_connections = $3

[http]
root = "$docroot"
keepalive_timeout = "65s"
max_keepalive_requests = 0

[log]
error = "$BENCH_DIR/logs/$1-error.log"
access = "off"
level = "warn"
EOF
}

# write_nginx_conf WORKERS
write_nginx_conf() {
    cat > "$BENCH_DIR/conf/nginx.conf" <<EOF
# written by tests/bench (lib.sh)
user $run_user $run_group;
worker_processes $1;
pid $BENCH_DIR/run/nginx.pid;
error_log $BENCH_DIR/logs/nginx-error.log warn;
events { worker_connections 4096; }
http {
    types { text/html html; application/octet-stream bin; }
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path $BENCH_DIR/nginx/body;
    proxy_temp_path $BENCH_DIR/nginx/proxy;
    fastcgi_temp_path $BENCH_DIR/nginx/fastcgi;
    uwsgi_temp_path $BENCH_DIR/nginx/uwsgi;
    scgi_temp_path $BENCH_DIR/nginx/scgi;
    server {
        listen 127.0.0.1:${port[nginx]} backlog=4096;
        root $docroot;
        index index.html;
    }
}
EOF
}

# write_lighttpd_conf [stay]: "stay" keeps the user it starts as (profile.sh: callgrind
# writes its file at exit, as whoever the process is then)
write_lighttpd_conf() {
    local user_lines="server.username = \"$run_user\"
server.groupname = \"$run_group\""
    [ "${1:-}" = stay ] && user_lines="# server.username: stays $(id -un)"
    mkdir -p "$BENCH_DIR/logs/lighttpd"
    [ "$(id -u)" = 0 ] && chown "$run_user:$run_group" "$BENCH_DIR/logs/lighttpd"
    cat > "$BENCH_DIR/conf/lighttpd.conf" <<EOF
# written by tests/bench (lib.sh); lighttpd is one process
server.document-root = "$docroot"
server.bind = "127.0.0.1"
server.port = ${port[lighttpd]}
server.pid-file = "$BENCH_DIR/run/lighttpd.pid"
server.errorlog = "$BENCH_DIR/logs/lighttpd/error.log"
$user_lines
server.modules = ( )
# 65535 is lighttpd's ceiling for this setting
server.max-keep-alive-requests = 65535
server.max-keep-alive-idle = 65
server.listen-backlog = 4096
server.max-fds = 8192
server.max-connections = 4096
index-file.names = ( "index.html" )
mimetype.assign = ( ".html" => "text/html", ".bin" => "application/octet-stream" )
EOF
}

write_apache_conf() {
    local mods=/usr/lib/apache2/modules
    cat > "$BENCH_DIR/conf/apache2.conf" <<EOF
# written by tests/bench (lib.sh): mpm_prefork with the whole pool forked up front
ServerRoot $BENCH_DIR/apache
ServerName 127.0.0.1
Listen 127.0.0.1:${port[apache]}
DefaultRuntimeDir $BENCH_DIR/apache
PidFile $BENCH_DIR/run/apache.pid
Mutex file:$BENCH_DIR/apache default
ErrorLog $BENCH_DIR/logs/apache-error.log
LogLevel warn
LoadModule mpm_prefork_module $mods/mod_mpm_prefork.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule mime_module $mods/mod_mime.so
LoadModule dir_module $mods/mod_dir.so
User $run_user
Group $run_group
# One child per connection: 256 children serve 256 connections without backlog waits.
StartServers 256
MinSpareServers 32
MaxSpareServers 256
ServerLimit 256
MaxRequestWorkers 256
MaxConnectionsPerChild 0
ListenBacklog 4096
Timeout 60
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 65
HostnameLookups Off
EnableSendfile On
EnableMMAP On
TypesConfig /dev/null
AddType text/html .html
AddType application/octet-stream .bin
DocumentRoot $docroot
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory $docroot>
    Options None
    AllowOverride None
    Require all granted
</Directory>
DirectoryIndex index.html
EOF
}

# write_conf NAME [WORKERS]: the config of NAME (preforkd, preforkd-1, preforkd-4, nginx,
# lighttpd, apache). WORKERS overrides the worker count of preforkd and nginx.
write_conf() {
    local w=${2:-$WORKERS}
    case $1 in
        preforkd) write_preforkd_conf preforkd "${2:-$PREFORKD_WORKERS}" 512 ;;
        preforkd-1) write_preforkd_conf preforkd-1 "${PREFORK_POOL:-64}" 1 ;;
        preforkd-4) write_preforkd_conf preforkd-4 "${FAIR_WORKERS:-4}" 512 ;;
        nginx) write_nginx_conf "$w" ;;
        lighttpd) write_lighttpd_conf ;;
        apache) write_apache_conf ;;
        *) die "unknown server: $1" ;;
    esac
}

# ---- processes --------------------------------------------------------------------------

declare -A pid_of=()   # server -> main PID, for the servers this script started

# True if PID is alive and its command line names a file under $BENCH_DIR: only such
# processes are ever signalled.
owned() {
    local cmd
    [[ ${1:-} =~ ^[0-9]+$ ]] || return 1
    cmd=$( { tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null ) || return 1
    [[ $cmd == *"$BENCH_DIR/"* ]]
}
children_of() {
    local f
    f=$(cat /proc/"$1"/task/*/children 2>/dev/null) || return 0
    echo $f
}
port_in_use() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null; }

# get NAME PATH -> "STATUS BYTES" of one bounded request
get() {
    curl -s -o /dev/null -m 5 -w '%{http_code} %{size_download}' "http://127.0.0.1:${port[$1]}$2"
}

# Waits (up to 20 s) until NAME's pid file names a live process of ours that serves
# /index.html; records its PID.
wait_serving() {
    local s=$1 pidfile="$BENCH_DIR/run/$1.pid" pid=""
    for _ in $(seq 200); do
        [ -s "$pidfile" ] && pid=$(tr -dc '0-9' < "$pidfile")
        if owned "$pid" && [ "$(get "$s" /index.html)" = "200 1024" ]; then
            pid_of[$s]=$pid
            return 0
        fi
        sleep 0.1
    done
    owned "$pid" && pid_of[$s]=$pid
    note "$s did not serve /index.html within 20 s (see $BENCH_DIR/logs/)"
    return 1
}

# start_server NAME [WORKERS]: writes its config and starts it (every server daemonizes).
start_server() {
    local s=$1
    port_in_use "${port[$s]}" && die "127.0.0.1:${port[$s]} ($s) is already in use"
    rm -f "$BENCH_DIR/run/$s.pid"
    write_conf "$s" "${2:-}"
    (
        ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
        case $s in
            preforkd*) "$PREFORKD" -c "$BENCH_DIR/conf/$s.toml" ;;
            nginx) nginx -p "$BENCH_DIR/nginx/" -e "$BENCH_DIR/logs/nginx-error.log" \
                         -c "$BENCH_DIR/conf/nginx.conf" ;;
            lighttpd) lighttpd -f "$BENCH_DIR/conf/lighttpd.conf" ;;
            apache) apache2 -f "$BENCH_DIR/conf/apache2.conf" -k start ;;
        esac
    ) </dev/null >>"$BENCH_DIR/logs/$s.out" 2>&1 || { note "$s failed to start (see $BENCH_DIR/logs/)"; return 1; }
    wait_serving "$s"
}

# SIGTERM to the main PID, up to 10 s for it and its children to go, then SIGKILL to
# whichever of them are left.
stop_server() {
    local s=$1 pid=${pid_of[$1]:-} kids p left=""
    [ -n "$pid" ] || return 0
    kids=$(children_of "$pid")
    owned "$pid" && kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do
        left=""
        for p in $pid $kids; do owned "$p" && left="$left $p"; done
        [ -z "$left" ] && break
        sleep 0.1
    done
    if [ -n "$left" ]; then
        note "$s still running after 10 s: SIGKILL to$left"
        # shellcheck disable=SC2086
        kill -KILL $left 2>/dev/null
    fi
    unset "pid_of[$s]"
}

stop_all() {
    local s
    for s in "${!pid_of[@]}"; do stop_server "$s"; done
}

# The processes that serve: the master's children, or lighttpd's single process.
serving_pids() {
    local pid=${pid_of[$1]:-}
    [ -n "$pid" ] || return 0
    case $1 in lighttpd) echo "$pid" ;; *) children_of "$pid" ;; esac
}

# The server's processes, each once: the main PID and the serving ones. lighttpd's main
# process is also its serving one, and counting it twice doubled its CPU per request.
server_pids() {
    local p
    for p in ${pid_of[$1]:-} $(serving_pids "$1"); do echo "$p"; done | sort -nu
}

# CPU time (user + system, in clock ticks) of a server's master and serving processes so
# far. Read before and after a run: the difference is what the server spent on it (a
# process that ended during the run is missed, none does in these runs).
server_cpu_ticks() {
    local p total=0 f
    for p in $(server_pids "$1"); do
        # Fields after "pid (comm) ": state is 1st, utime 12th, stime 13th.
        f=$( { cat "/proc/$p/stat"; } 2>/dev/null ) || continue
        f=${f##*) }
        set -- $f
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

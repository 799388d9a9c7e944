#!/bin/bash
# The Debian package, end to end, on this machine (as root; CI runs it with
# -DPREFORKD_PACKAGING_TEST=ON):
#   build it, and the next patch version of it; lintian; apt-get install; check files,
#   conffiles, the unit, the user and the logs, preforkd -t; run the installed binary with
#   the installed config in daemon mode, curl the default page, -s reload, logrotate (USR1
#   and the httpd-prerotate hook), -s stop; reinstall over itself keeping an edited
#   conffile; the autopkgtest (packaging/debian/tests/smoke: serve, reload, upgrade in place,
#   stop); run under the unit's capability bounding set (reload, reopen), then `apt-get
#   install` the next version under client load: no failed request, the supervisor and
#   every worker run the new binary, which reports the new version; the systemd service when
#   systemd runs; libpreforkd-dev; dpkg -r with a server running, dpkg --purge (the user
#   stays, no process is left).
#
#   tests/packaging/deb_test.sh [OUTDIR]      (the package is built into OUTDIR)
#
# It installs and purges the package preforkd and refuses to run where preforkd is already
# installed. Every wait is bounded; everything listens on 127.0.0.1; processes it starts are
# stopped by their pid. Exit 0 = pass, 77 = skipped (not root), anything else = failure.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-}
conf=/etc/preforkd/preforkd.toml
logdir=/var/log/preforkd
site=/var/www/preforkd
pid_file=/run/preforkd/preforkd.pid
unit=/lib/systemd/system/preforkd.service

step() { printf '\n=== %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}
check() {  # check DESCRIPTION COMMAND...: fails the test unless COMMAND succeeds
    local what=$1
    shift
    "$@" || fail "$what"
}
# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.1 s.
wait_for() {
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for: $what"
        sleep 0.1
    done
}

if [ "$(id -u)" != 0 ]; then
    echo "SKIP: the packaging test installs a package and must run as root"
    exit 77
fi

# dpkg ARGS...: other installs may be running on the machine (CI jobs, apt): wait for dpkg's
# lock, up to 5 minutes, instead of failing on it.
run_dpkg() {
    local deadline=$((SECONDS + 300))
    while :; do
        if dpkg "$@" >"$tmp/dpkg.out" 2>&1; then
            cat "$tmp/dpkg.out"
            return 0
        fi
        if grep -q "lock" "$tmp/dpkg.out" && [ "$SECONDS" -lt "$deadline" ]; then
            sleep 2
            continue
        fi
        cat "$tmp/dpkg.out" >&2
        return 1
    done
}
installed_state() { dpkg-query -W -f='${db:Status-Status}' "${1:-preforkd}" 2>/dev/null || true; }
for p in preforkd libpreforkd-dev; do
    case "$(installed_state $p)" in
        "" | not-installed) ;;
        *) fail "$p is already installed here ($(installed_state $p)): purge it first" ;;
    esac
done
# Purge keeps the user (Debian practice): one left by an earlier run is reused, and one this
# run creates is removed at the end.
user_existed=0
getent passwd preforkd >/dev/null && user_existed=1
[ -e "$site" ] && fail "$site already exists: move it away first"

tmp=$(mktemp -d /tmp/preforkd-deb-test.XXXXXX)
[ -n "$out" ] || out=$tmp/out
mkdir -p "$out"
out=$(cd "$out" && pwd)  # apt-get takes a package file only by a path with a slash in front
daemon_pid=""
systemd_used=0
masked=0
load_pids=""
prerotate_dir=/etc/logrotate.d/httpd-prerotate
made_prerotate=0

cleanup() {
    local rc=$?
    set +e
    # The supervisor we started, and the one a binary upgrade started, if any.
    local p
    for p in $load_pids; do kill "$p" 2>/dev/null; done
    [ "$made_prerotate" = 1 ] && rm -rf "$prerotate_dir"
    for p in $daemon_pid $(cat "$pid_file" "$pid_file.oldbin" 2>/dev/null); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = preforkd ] || continue
        kill -TERM "$p"
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    [ "$systemd_used" = 1 ] && timeout 60 systemctl stop preforkd.service
    [ "$masked" = 1 ] && systemctl unmask --runtime preforkd.service >/dev/null 2>&1
    if [ $rc != 0 ] && [ -f "$logdir/error.log" ]; then
        echo "--- last lines of $logdir/error.log"
        tail -n 30 "$logdir/error.log"
    fi
    for p in libpreforkd-dev preforkd; do
        case "$(installed_state $p)" in
            "" | not-installed) ;;
            *) run_dpkg --purge $p >/dev/null ;;
        esac
    done
    rm -rf "$site" "$tmp"
    if [ "$user_existed" = 0 ]; then
        getent passwd preforkd >/dev/null && userdel preforkd
        getent group preforkd >/dev/null && groupdel preforkd
    fi
    exit $rc
}
trap cleanup EXIT

step "tools"
needed=(cmake g++ libfmt-dev libtomlplusplus-dev libsystemd-dev pkgconf debhelper dpkg-dev
    fakeroot lintian curl logrotate adduser util-linux media-types
    libssl-dev zlib1g-dev libbrotli-dev libzstd-dev)
missing=()
for p in "${needed[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=300 "${missing[@]}"
fi
check "build dependencies of packaging/debian/control" \
    dpkg-checkbuilddeps "$repo/packaging/debian/control"

version=$(dpkg-parsechangelog -l "$repo/packaging/debian/changelog" -S Version)
next_version=$(awk -F. -v OFS=. '{ $NF = $NF + 1; print }' <<<"$version")
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=$out/preforkd_${version}_$arch.deb
next_deb=$out/next/preforkd_${next_version}_$arch.deb
# PREFORKD_DEB_TEST_REUSE=1: take the packages an earlier run built into OUTDIR (while
# working on the test itself; they must be rebuilt whenever packaging/ or src/ changed).
reuse=0
[ -n "${PREFORKD_DEB_TEST_REUSE:-}" ] && [ -f "$deb" ] && [ -f "$next_deb" ] && reuse=1

step "build"
[ "$reuse" = 1 ] && echo "reusing $deb and $next_deb" || "$repo/packaging/build-deb.sh" "$out"
check "$deb was built" test -f "$deb"
dpkg-deb -c "$deb"
dev_deb=$out/libpreforkd-dev_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
check "$dev_deb was built" test -f "$dev_deb"
dpkg-deb -c "$dev_deb"

step "build the next patch version"
# The same sources with the version's last number raised, in CMakeLists.txt and in a new
# changelog entry: the package an `apt upgrade` would bring.
next_src=$tmp/next/preforkd
mkdir -p "$next_src"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -C "$next_src" -xf -
else
    (cd "$repo" && tar --exclude='./build*' -cf - .) | tar -C "$next_src" -xf -
fi
sed -i -E "s/^project\(preforkd VERSION $version/project(preforkd VERSION $next_version/" \
    "$next_src/CMakeLists.txt"
{
    printf 'preforkd (%s) unstable; urgency=medium\n\n' "$next_version"
    printf '  * The next patch version, built by tests/packaging/deb_test.sh.\n\n'
    printf ' -- preforkd developers <dev@preforkd.invalid>  %s\n\n' "$(date -R)"
    cat "$repo/packaging/debian/changelog"
} >"$next_src/packaging/debian/changelog"
[ "$reuse" = 1 ] || "$next_src/packaging/build-deb.sh" "$out/next"
check "$next_deb was built" test -f "$next_deb"

step "lintian"
# Errors and warnings fail; the infos left are explained in packaging/debian's overrides.
lintian --allow-root --fail-on error,warning --display-info "$deb" "$dev_deb"

step "install (apt-get install ./preforkd_*.deb)"
if [ -d /run/systemd/system ]; then
    # The service must not start on its own (port 8080, the pid file) while the daemon-mode
    # run is tested; the systemd run comes later, on purpose.
    systemctl mask --runtime preforkd.service >/dev/null
    masked=1
fi
# apt, as the README says: it brings the dependencies dpkg -i would leave missing.
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "$deb"
check "preforkd is installed" test "$(installed_state)" = installed

step "files"
for f in /usr/sbin/preforkd "$conf" "$unit" /etc/logrotate.d/preforkd \
    /usr/share/man/man8/preforkd.8.gz /usr/share/man/man5/preforkd.toml.5.gz \
    /usr/share/doc/preforkd/copyright /usr/share/doc/preforkd/changelog.gz \
    /usr/share/preforkd/www/index.html "$site/index.html"; do
    check "$f exists" test -f "$f"
done
check "/usr/sbin/preforkd is executable" test -x /usr/sbin/preforkd
check "preforkd -V says $version" test "$(/usr/sbin/preforkd -V)" = "preforkd $version"
conffiles=$(dpkg-query -W -f='${Conffiles}' preforkd)
check "$conf is a conffile" grep -q " $conf " <<<"$conffiles"
check "the logrotate file is a conffile" grep -q " /etc/logrotate.d/preforkd " <<<"$conffiles"
check "$site is a copy of the shipped default site" diff -r /usr/share/preforkd/www "$site"
default_files=$(cd "$site" && find . -type f)
depends=$(dpkg-query -W -f='${Depends}' preforkd)
for lib in libc6 libfmt9 libtomlplusplus3 libsystemd0 libssl3 zlib1g libbrotli1 libzstd1 \
    media-types; do
    check "Depends (from dpkg-shlibdeps) names $lib: $depends" grep -q "$lib" <<<"$depends"
done
check "the man pages are gzip files" gzip -t /usr/share/man/man8/preforkd.8.gz \
    /usr/share/man/man5/preforkd.toml.5.gz
for d in Type=notify "ExecStartPre=/usr/sbin/preforkd -t" "ExecReload=/bin/kill -HUP \$MAINPID" \
    KillSignal=SIGQUIT TimeoutStopSec= NoNewPrivileges=yes ProtectSystem=full PrivateTmp=yes \
    CapabilityBoundingSet= RuntimeDirectory=preforkd NotifyAccess=all LimitNOFILE=65536; do
    check "the unit has $d" grep -qF -- "$d" "$unit"
done
# The workers write http.compress_cache (/var/cache/preforkd) and the supervisor the scoreboard
# beside the pid file (/run/preforkd, the RuntimeDirectory): ProtectSystem=full leaves /var
# and /run writable; strict would need ReadWritePaths= for the cache.
check "the unit leaves /var/cache/preforkd writable (strict needs ReadWritePaths=)" bash -c \
    "! grep -qx 'ProtectSystem=strict' '$unit' || grep -q '^ReadWritePaths=.*/var/cache/preforkd' '$unit'"
check "the unit hides neither /var/cache nor /run" \
    bash -c "! grep -qE '^(ReadOnlyPaths|InaccessiblePaths)=.*(/var|/run)' '$unit'"
check "logrotate sends USR1 (preforkd -s reopen)" grep -q "preforkd -s reopen" \
    /etc/logrotate.d/preforkd
check "logrotate runs the httpd-prerotate hook" grep -q "run-parts $prerotate_dir" \
    /etc/logrotate.d/preforkd
check "the package does not stop the service on upgrade (--no-stop-on-upgrade)" \
    bash -c "! grep -q 'deb-systemd-invoke stop' /var/lib/dpkg/info/preforkd.preinst 2>/dev/null"
check "the postinst upgrades a running server in place" grep -q "preforkd -s upgrade" \
    /var/lib/dpkg/info/preforkd.postinst
check "the postinst never restarts the service by itself" \
    bash -c "! grep -qE 'deb-systemd-invoke (restart|try-restart) .*>/dev/null' /var/lib/dpkg/info/preforkd.postinst"
check "README.Debian is installed" test -f /usr/share/doc/preforkd/README.Debian
if command -v systemd-analyze >/dev/null; then
    man_check=--man=no
    command -v man >/dev/null && man_check=--man=yes
    check "systemd-analyze verify $unit" systemd-analyze verify "$man_check" "$unit"
    # --offline: no running systemd needed. The unit scored 3.2 before NotifyAccess=all.
    systemd-analyze security --offline=yes "$unit" | tail -n 1
    check "systemd-analyze security: exposure no worse than 3.2" \
        systemd-analyze security --offline=yes --threshold=32 "$unit" >/dev/null
else
    echo "systemd-analyze not available: unit not verified"
fi

step "user and logs"
pw=$(getent passwd preforkd) || fail "no user preforkd"
IFS=: read -r _ _ uid gid gecos home shell <<<"$pw"
[ "$user_existed" = 1 ] ||
    check "the user's GECOS (adduser --comment) is set: '$gecos'" test "$gecos" = "preforkd HTTP server"
check "preforkd is a system user (uid $uid)" test "$uid" -lt 1000
check "preforkd has its own group" test "$(getent group "$gid" | cut -d: -f1)" = preforkd
check "preforkd has no home ($home)" test ! -e "$home"
check "preforkd cannot log in ($shell)" test "$shell" = /usr/sbin/nologin
check "$logdir is root:adm 0755" test "$(stat -c %U:%G:%a "$logdir")" = root:adm:755
for f in error.log access.log; do
    check "$logdir/$f is preforkd:adm 0640" \
        test "$(stat -c %U:%G:%a "$logdir/$f")" = preforkd:adm:640
done
check "/var/cache/preforkd (http.compress_cache) is preforkd:preforkd 0750" \
    test "$(stat -c %U:%G:%a /var/cache/preforkd)" = preforkd:preforkd:750

step "preforkd -t"
check "preforkd -t accepts the installed config" /usr/sbin/preforkd -t -c "$conf" >"$tmp/t.out"
check "preforkd -t says it is successful" grep -q "test is successful" "$tmp/t.out"

# Helpers for the runs.
port_listening() {  # port_listening PORT: something listens on it (IPv4 or IPv6)
    local hex
    hex=$(printf '%04X' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p=":$hex" \
        '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }'
}
pick_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        port_listening "$p" || { echo "$p"; return 0; }
    done
    fail "no free port found"
}
set_port() {  # the edited line replaces the packaged, commented-out one (or a former edit)
    sed -i -E "s|^#? ?listen = \[\"127\.0\.0\.1:[0-9]+\"\]|listen = [\"127.0.0.1:$1\"]|" "$conf"
    check "$conf now listens on $1" grep -qx "listen = \[\"127.0.0.1:$1\"\]" "$conf"
}
start_daemon() {  # start_daemon [PREFIX...]: daemon mode; retries on a port taken meanwhile
    local tries
    for tries in 1 2 3 4 5; do
        port=$(pick_port)
        set_port "$port"
        if timeout 60 "$@" /usr/sbin/preforkd -c "$conf" 2>"$tmp/start.err"; then
            daemon_pid=$(cat "$pid_file")
            check "the pid file names a live process" kill -0 "$daemon_pid"
            return 0
        fi
        cat "$tmp/start.err" >&2
        grep -q "in use" "$tmp/start.err" || fail "the daemon did not start"
    done
    fail "the daemon did not start after $tries ports"
}
get_page() {  # get_page URL_PATH FILE: one GET, bounded
    curl -fsS --max-time 5 -o "$2" "http://127.0.0.1:$port$1"
}
workers_of() {  # pids of the children of $1
    # awk exits 2 when a process of the glob is gone before it reads it: not an error here.
    awk -v p="$1" '$4 == p { print $1 }' /proc/[0-9]*/stat 2>/dev/null || true
}
check_workers_user() {
    local w n=0
    for w in $(workers_of "$daemon_pid"); do
        check "worker $w runs as preforkd" \
            test "$(awk '/^Uid:/ { print $2 }' "/proc/$w/status")" = "$uid"
        n=$((n + 1))
    done
    check "the supervisor has workers" test "$n" -gt 0
}
fresh_logs() { : >"$logdir/error.log"; : >"$logdir/access.log"; }  # keeps owner and mode
gone() {  # gone PID...: none of them is alive
    local p
    for p in "$@"; do ! kill -0 "$p" 2>/dev/null || return 1; done
}
gone_or_zombie() {  # gone_or_zombie PID...: none of them runs (a zombie serves no more)
    local p
    for p in "$@"; do
        grep -q '^State:[[:space:]]*[^Z]' "/proc/$p/status" 2>/dev/null && return 1
    done
    return 0
}
reload_check() {  # reload_check COMMAND...: reloads; generation 2 serves, generation 1 is gone
    local old
    old=$(workers_of "$daemon_pid")
    "$@" || fail "reload: $*"
    wait_for 20 "generation 2 to serve" log_has "generation 2 serves"
    # shellcheck disable=SC2086 # one pid per word
    wait_for 20 "the workers of generation 1 to retire" gone $old
}
log_has() { grep -q -- "$1" "$logdir/error.log" 2>/dev/null; }
access_has_get() { grep -q "\"GET $1 HTTP/1.1\" 200" "$logdir/access.log" 2>/dev/null; }
stop_daemon() {  # stop_daemon VERB: preforkd -s VERB, then the supervisor is gone
    check "preforkd -s $1" /usr/sbin/preforkd -s "$1" -c "$conf"
    wait_for 45 "the supervisor $daemon_pid to exit after -s $1" \
        bash -c "! kill -0 $daemon_pid 2>/dev/null"
    check "the pid file is removed" test ! -e "$pid_file"
    daemon_pid=""
}
serve_check() {  # serve_check / or /index.html: answers the default page, and is logged
    get_page "$1" "$tmp/page" || fail "GET $1 on 127.0.0.1:$port"
    check "GET $1 answers the default page" cmp -s "$tmp/page" "$site/index.html"
    wait_for 5 "the access log to show GET $1" access_has_get "$1"
}

step "daemon mode"
# Compression on the fly into the packaged cache folder (http.compress_cache's default).
sed -i -E 's|^# compress = \[\]$|compress = ["gzip"]|' "$conf"
check "$conf now compresses with gzip" grep -qx 'compress = \["gzip"\]' "$conf"
start_daemon
echo "supervisor $daemon_pid on 127.0.0.1:$port"
check_workers_user
serve_check /

step "preforkd --status (the scoreboard beside the pid file)"
/usr/sbin/preforkd --status -c "$conf" >"$tmp/status.out" || fail "preforkd --status exited $?"
cat "$tmp/status.out"
check "--status names the supervisor $daemon_pid" \
    grep -q "^preforkd supervisor $daemon_pid," "$tmp/status.out"
for w in $(workers_of "$daemon_pid"); do
    check "--status has a row for worker $w" grep -qE "^ +[0-9]+ +$w " "$tmp/status.out"
done
check "the scoreboard is root:preforkd 0640" \
    test "$(stat -c %U:%G:%a "$(dirname "$pid_file")/scoreboard.$daemon_pid")" = root:preforkd:640

step "compress = [\"gzip\"]: a later answer comes gzip-encoded from /var/cache/preforkd"
gzip_served() {  # the first answers are identity while a worker's thread compresses
    # (style.css, not index.html: the logrotate step below wants no GET /index.html before it)
    curl -fsS --max-time 5 -H 'Accept-Encoding: gzip' -D "$tmp/gz.head" -o "$tmp/gz.body" \
        "http://127.0.0.1:$port/style.css" &&
        tr -d '\r' <"$tmp/gz.head" | grep -qix 'content-encoding: gzip'
}
wait_for 20 "an answer with Content-Encoding: gzip" gzip_served
check "the gzip body is the default style.css" bash -c "gzip -dc '$tmp/gz.body' | cmp -s - '$site/style.css'"
cached=$(find /var/cache/preforkd -type f | head -n 1)
check "a compressed copy is in /var/cache/preforkd" test -n "$cached"
check "it belongs to the workers' user ($cached)" test "$(stat -c %U "$cached")" = preforkd

step "preforkd -s reload"
reload_check /usr/sbin/preforkd -s reload -c "$conf"
serve_check /
check "the supervisor is the same process" kill -0 "$daemon_pid"

step "logrotate (USR1, httpd-prerotate)"
if [ ! -e "$prerotate_dir" ]; then
    mkdir -p "$prerotate_dir"
    made_prerotate=1
    printf '#!/bin/sh\ntouch %s/prerotate-ran\n' "$tmp" >"$prerotate_dir/preforkd-test"
    chmod +x "$prerotate_dir/preforkd-test"
fi
logrotate -f -s "$tmp/logrotate.state" /etc/logrotate.d/preforkd
if [ "$made_prerotate" = 1 ]; then
    check "logrotate ran $prerotate_dir" test -f "$tmp/prerotate-ran"
    rm -rf "$prerotate_dir"
    made_prerotate=0
fi
check "access.log was rotated" test -f "$logdir/access.log.1"
check "the new access.log is preforkd:adm 0640" \
    test "$(stat -c %U:%G:%a "$logdir/access.log")" = preforkd:adm:640
wait_for 10 "the logs to be reopened" log_has "logs reopened"
curl -fsS --max-time 5 -o /dev/null "http://127.0.0.1:$port/index.html" ||
    fail "GET /index.html after logrotate"
wait_for 5 "the new access.log to get the next request" access_has_get /index.html
check "the old access.log did not get it" \
    bash -c "! grep -q 'GET /index.html' '$logdir/access.log.1'"
check_workers_user

step "preforkd -s stop"
stop_daemon stop

step "reinstall over itself"
echo "<p>the administrator's page</p>" >"$site/mine.html"
edited=$(grep -x 'listen = .*' "$conf")
run_dpkg -i "$deb"
check "the edited conffile is kept ($edited)" grep -qx -F "$edited" "$conf"
check "no .dpkg-dist or .dpkg-old beside it" \
    bash -c "! ls /etc/preforkd/*.dpkg-* >/dev/null 2>&1"
check "the user keeps its uid" test "$(id -u preforkd)" = "$uid"
check "the administrator's page is kept" test -f "$site/mine.html"

step "autopkgtest: packaging/debian/tests/smoke (serve, reload, upgrade in place, stop)"
fresh_logs
check "debian/tests/control names the smoke test" grep -qx "Tests: smoke" \
    "$repo/packaging/debian/tests/control"
# Daemon mode even where systemd runs: the service is masked until its own step below.
PREFORKD_SMOKE_DAEMON=1 bash "$repo/packaging/debian/tests/smoke" || fail "the autopkgtest smoke test"
check "the smoke test left no server" test ! -e "$pid_file"

step "daemon mode under the unit's capability bounding set"
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr 'A-Z ' 'a-z\n' | sed 's/^cap_/+/' |
    paste -sd, -)
echo "bounding set: $caps"
fresh_logs
start_daemon setpriv --no-new-privs --bounding-set "-all,$caps"
check "the supervisor runs with a smaller bounding set than this shell" test \
    "$(awk '/^CapBnd:/ { print $2 }' "/proc/$daemon_pid/status")" != \
    "$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)"
check_workers_user
serve_check /
reload_check /usr/sbin/preforkd -s reload -c "$conf"
/usr/sbin/preforkd -s reopen -c "$conf"
wait_for 10 "the logs to be reopened" log_has "logs reopened"
serve_check /
if grep -E "Permission denied|Operation not permitted|chown " "$logdir/error.log"; then
    fail "the unit's capabilities are not enough (see above)"
fi

step "apt-get install $next_version under client load (preforkd -s upgrade from the postinst)"
# Clients on loopback, a new connection per request, until the upgrade is over: bounded in
# time (5 minutes) and count (20000 requests per client).
old_pid=$daemon_pid
old_workers=$(workers_of "$old_pid")
client() {  # client N: one response status per line in $tmp/load.N ("000": no response)
    local n=0 deadline=$((SECONDS + 300))
    # 100 requests per curl, each on its own connection (Connection: close); the statuses go
    # to stderr (%{stderr}), the bodies away.
    while [ ! -e "$tmp/load.stop" ] && [ $n -lt 200 ] && [ $SECONDS -lt $deadline ]; do
        curl -s -H 'Connection: close' --max-time 5 -w '%{stderr}%{http_code}\n' \
            "http://127.0.0.1:$port/index.html?n=[1-100]" >/dev/null 2>>"$tmp/load.$1" || true
        n=$((n + 1))
    done
}
for i in 1 2 3; do
    client "$i" &
    load_pids="$load_pids $!"
done
sleep 1
t0=$(date +%s.%N)
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "$next_deb" 2>&1 | tee "$tmp/apt-upgrade.out"
t1=$(date +%s.%N)
sleep 1
touch "$tmp/load.stop"
# shellcheck disable=SC2086 # one pid per word
wait $load_pids
load_pids=""
requests=$(cat "$tmp"/load.[0-9] | wc -l)
failed=$(cat "$tmp"/load.[0-9] | grep -vcx 200 || true)
swap=$(sed -n -E 's/.*upgrade took ([0-9.]+) s.*/\1/p' "$tmp/apt-upgrade.out")
echo "[figures] apt-get install $version -> $next_version under load: $requests requests," \
    "$failed failed; the swap (preforkd -s upgrade) took ${swap:-?} s, apt-get" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
check "preforkd $next_version is installed" \
    test "$(dpkg-query -W -f='${Version}' preforkd)" = "$next_version"
check "the postinst upgraded the server in place" \
    grep -q "upgrading the running server (pid $old_pid)" "$tmp/apt-upgrade.out"
check "the postinst did not fall back to a restart" \
    bash -c "! grep -q 'in-place upgrade failed' '$tmp/apt-upgrade.out'"
check "the swap was measured" test -n "$swap"
check "no request failed during the upgrade ($failed of $requests)" test "$failed" = 0
check "the clients made requests throughout ($requests)" test "$requests" -gt 30
new_pid=$(cat "$pid_file")
check "the pid file names a new supervisor ($new_pid, was $old_pid)" test "$new_pid" != "$old_pid"
# -s upgrade saw it exit; its parent (init here) reaps it on its own time.
wait_for 10 "the old supervisor $old_pid to be gone" gone_or_zombie "$old_pid"
# shellcheck disable=SC2086
check "the old workers are gone" gone_or_zombie $old_workers
check "no .oldbin is left" test ! -e "$pid_file.oldbin"
daemon_pid=$new_pid
new_workers=$(workers_of "$new_pid")
check "the new supervisor has workers" test -n "$new_workers"
for p in $new_pid $new_workers; do
    exe=$(readlink "/proc/$p/exe")
    check "pid $p runs the new /usr/sbin/preforkd ($exe)" test "$exe" = /usr/sbin/preforkd
done
check "the new supervisor kept the unit's bounding set" test \
    "$(awk '/^CapBnd:/ { print $2 }' "/proc/$new_pid/status")" != \
    "$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)"
server_header=$(curl -fsS --max-time 5 -o /dev/null -D - "http://127.0.0.1:$port/" |
    tr -d '\r' | sed -n 's/^[Ss]erver: //p')
check "the server reports $next_version (Server: $server_header)" \
    test "$server_header" = "preforkd/$next_version"
check "preforkd -V says $next_version" test "$(/usr/sbin/preforkd -V)" = "preforkd $next_version"
serve_check /index.html
stop_daemon quit

if [ -d /run/systemd/system ]; then
    step "systemd service"
    systemctl unmask --runtime preforkd.service >/dev/null
    masked=0
    systemctl daemon-reload
    systemd_used=1
    fresh_logs
    timeout 120 systemctl start preforkd.service ||
        { journalctl -u preforkd.service -n 50 --no-pager; fail "systemctl start preforkd"; }
    check "preforkd.service is active" systemctl is-active -q preforkd.service
    # The autopkgtest under systemd: reload, upgrade in place (MainPID moves), stop, start.
    bash "$repo/packaging/debian/tests/smoke" || fail "the autopkgtest smoke test under systemd"
    timeout 120 systemctl start preforkd.service || fail "systemctl start preforkd (again)"
    serve_check /
    daemon_pid=$(systemctl show -P MainPID preforkd.service)
    reload_check timeout 60 systemctl reload preforkd.service
    daemon_pid=""
    serve_check /
    timeout 60 systemctl stop preforkd.service || fail "systemctl stop preforkd"
    systemd_used=0
    check "preforkd.service is stopped" bash -c "! systemctl is-active -q preforkd.service"
else
    echo "systemd is not running here: the service itself is not started"
fi

step "libpreforkd-dev: the examples built against /usr and run"
run_dpkg -i "$dev_deb"
examples=/usr/share/doc/libpreforkd-dev/examples
check "the examples are installed" test -f "$examples/echo.cpp"
cp -r "$examples" "$tmp/examples"
check "cmake configures the examples with find_package(preforkd CONFIG)" \
    cmake -S "$tmp/examples" -B "$tmp/examples-build" -DCMAKE_BUILD_TYPE=Release
check "the examples build" cmake --build "$tmp/examples-build" -j2
check "echo -t reads its own config" "$tmp/examples-build/echo" -t -c "$examples/echo.toml"
check "pkg-config knows preforkd $version" test "$(pkg-config --modversion preforkd)" = "${version%%-*}"
check "preforkd.pc carries -std=c++20" bash -c "pkg-config --cflags preforkd | grep -q -- -std=c++20"
check "echo builds with pkg-config alone (no -std= of its own)" bash -c \
    "g++ -o '$tmp/echo-pc' '$examples/echo.cpp' \$(pkg-config --cflags --libs preforkd)"
check "that echo answers -V" bash -c "'$tmp/echo-pc' -V | grep -q '^echo '"
run_dpkg --purge libpreforkd-dev
check "the headers are gone" test ! -e /usr/include/preforkd

step "dpkg -r with a server running"
fresh_logs
start_daemon
removed_pid=$daemon_pid
removed_workers=$(workers_of "$removed_pid")
run_dpkg -r preforkd
daemon_pid=""
# shellcheck disable=SC2086
check "the prerm stopped the server (pid $removed_pid) and its workers" \
    gone_or_zombie "$removed_pid" $removed_workers
check "the binary is gone" test ! -e /usr/sbin/preforkd
check "the unit is gone" test ! -e "$unit"
check "the conffile stays" test -f "$conf"
check "the logs stay" test -f "$logdir/access.log"
check "the user stays" getent passwd preforkd >/dev/null
check "the site stays" test -f "$site/index.html"

step "dpkg --purge"
run_dpkg --purge preforkd
check "dpkg forgot the package" bash -c "! dpkg-query -W preforkd >/dev/null 2>&1"
for f in /etc/preforkd "$logdir" /etc/logrotate.d/preforkd /usr/share/preforkd /var/lib/preforkd \
    /var/cache/preforkd; do
    check "$f is gone" test ! -e "$f"
done
for f in $default_files; do
    check "the default $site/${f#./} is gone" test ! -e "$site/$f"
done
check "the purge printed no deluser complaint" bash -c "! grep -q deluser '$tmp/dpkg.out'"
check "the user stays (Debian keeps system users)" test "$(id -u preforkd)" = "$uid"
check "the group stays" getent group preforkd >/dev/null
check "the administrator's page stays" test -f "$site/mine.html"
leftover=$(for p in /proc/[0-9]*; do
    case "$(readlink "$p/exe" 2>/dev/null)" in /usr/sbin/preforkd*) echo "${p#/proc/}" ;; esac
done)
check "no process runs /usr/sbin/preforkd after the purge ($leftover)" test -z "$leftover"

step "PASS"

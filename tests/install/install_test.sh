#!/bin/bash
# The library as users get it: `cmake --install` into a temporary prefix, then the examples
# built out of the tree against that copy only, once with find_package(preforkd CONFIG) and
# once with pkg-config, and each build's echo run as a real server for one round trip.
#
#   tests/install/install_test.sh BUILD_DIR SOURCE_DIR CXX [EXTRA_FLAGS]
#
# EXTRA_FLAGS go to compiling and linking (the sanitizer build passes its -fsanitize=...).
# Everything listens on 127.0.0.1; the servers started are stopped by their pid.
set -euo pipefail

build=$1
src=$2
cxx=$3
flags=${4:-}

tmp=$(mktemp -d /tmp/preforkd-install-test.XXXXXX)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { printf '\n=== %s\n' "$*"; }

step "cmake --install into $tmp/prefix"
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" || {
    cat "$tmp/install.log"
    fail "cmake --install"
}
prefix=$tmp/prefix
for h in application blocking clock config exit_code log preforkd result scoreboard service \
    unique_fd version; do
    [ -f "$prefix/include/preforkd/$h.hpp" ] || fail "include/preforkd/$h.hpp not installed"
done
lib=$(find "$prefix" -name libpreforkd.a | head -n1)
pc=$(find "$prefix" -name preforkd.pc | head -n1)
config=$(find "$prefix" -name preforkdConfig.cmake | head -n1)
[ -n "$lib" ] || fail "libpreforkd.a not installed"
[ -n "$pc" ] || fail "preforkd.pc not installed"
[ -n "$config" ] || fail "preforkdConfig.cmake not installed"
[ -f "$(dirname "$config")/preforkdConfigVersion.cmake" ] || fail "no preforkdConfigVersion.cmake"
grep -qx "prefix=$prefix" "$pc" || fail "preforkd.pc does not name the install prefix: $(head -n1 "$pc")"
echo "installed: $lib, $pc, $config"

# The examples leave the source tree: nothing but the installed copy can be found.
cp -r "$src/examples" "$tmp/examples"

# echo_round_trip BINARY: starts it on a free loopback port, checks one echoed line, stops it.
echo_round_trip() {
    local bin=$1 dir=$tmp/run-$(basename "$1")
    mkdir -p "$dir"
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$dir/echo.toml" <<TOML
[server]
listen = ["127.0.0.1:$port"]
pid_file = "echo.pid"
[workers]
start = 1
[log]
error = "error.log"
access = "off"
[echo]
prefix = "installed: "
TOML
    "$bin" -F -c "$dir/echo.toml" >"$dir/output.txt" 2>&1 &
    server_pid=$!
    local i
    for i in $(seq 100); do
        [ "$(cat "$dir/echo.pid" 2>/dev/null)" = "$server_pid" ] && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$dir/output.txt" "$dir/error.log" 2>/dev/null; fail "$bin exited at start"; }
        sleep 0.1
    done
    [ "$(cat "$dir/echo.pid" 2>/dev/null)" = "$server_pid" ] || fail "$bin did not start in 10 s"
    local reply=""
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'ping\n' >&3
    read -t 5 -r reply <&3 || true
    exec 3>&-
    [ "$reply" = "installed: ping" ] || fail "$bin answered '$reply'"
    kill -TERM "$server_pid"
    for i in $(seq 100); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    wait "$server_pid" || fail "$bin exited with status $? on TERM"
    server_pid=""
    if grep -E 'AddressSanitizer|runtime error:|LeakSanitizer' "$dir/output.txt"; then
        fail "$bin: sanitizer report"
    fi
    echo "$bin: echo round trip ok"
}

step "find_package(preforkd CONFIG)"
cmake -S "$tmp/examples" -B "$tmp/build-cmake" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >"$tmp/configure.log" || {
    cat "$tmp/configure.log"
    fail "configuring the examples against the installed package"
}
cmake --build "$tmp/build-cmake" -j2 || fail "building the examples against the installed package"
echo_round_trip "$tmp/build-cmake/echo"
[ -x "$tmp/build-cmake/daytime" ] || fail "daytime was not built"

step "pkg-config"
export PKG_CONFIG_PATH=$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
pkg-config --exists preforkd || fail "pkg-config does not find preforkd"
[ "$(pkg-config --modversion preforkd)" = "$(sed -nE 's/^#define PREFORKD_VERSION "(.*)"/\1/p' "$prefix/include/preforkd/version.hpp")" ] ||
    fail "preforkd.pc and version.hpp disagree"
# shellcheck disable=SC2046,SC2086
"$cxx" -std=c++20 $flags -o "$tmp/echo-pkg-config" "$tmp/examples/echo.cpp" \
    $(pkg-config --cflags --libs preforkd) || fail "building echo with pkg-config"
echo_round_trip "$tmp/echo-pkg-config"

echo
echo "install test passed"

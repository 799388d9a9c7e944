#!/usr/bin/env bash
# Installs what the build and the tests need, builds preforkd, and runs every test with
# ctest: the normal build (warnings as errors), then the ASan+UBSan build. This is what CI
# runs (.ci/run). Needs root on Debian 12 (apt-get); on a prepared machine set
# PREFORKD_SKIP_APT=1 to skip the package step.
#
# Environment: JOBS (build parallelism, default nproc), PREFORKD_SKIP_SANITIZE=1 to skip the
# sanitizer pass, PREFORKD_FUZZ_SECONDS (seconds per fuzz target, default 30; 0 skips the
# fuzz run), PREFORKD_SKIP_BENCH=1 to skip the benchmark smoke run, PREFORKD_SKIP_FORMAT=1 to
# skip the clang-format gate.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
JOBS=${JOBS:-$(nproc)}

packages=(cmake make g++ clang libclang-rt-14-dev libfmt-dev libtomlplusplus-dev libssl-dev
          libgtest-dev libgmock-dev libsystemd-dev media-types pkgconf
          curl python3 chromium   # curl, python3, chromium: the real-client integration tests
          openssl sslscan         # the TLS test: certificates, s_client, the protocol scan
          prometheus              # promtool, for the metrics test
          haproxy                 # the load-balancer test (tests/integration/balancer)
          clang-format            # tests/check_format.sh (Debian 12: version 14)
          zlib1g-dev libbrotli-dev libzstd-dev  # compression on the fly (issue 16.3)
          python3-brotli zstd)    # the encoding test's decoders
if [ "${PREFORKD_SKIP_APT:-0}" != 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${packages[@]}"
fi

step() { printf '\n==== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

if [ "${PREFORKD_SKIP_FORMAT:-0}" != 1 ]; then
    # First, since it takes seconds: a file that clang-format would change fails the run.
    step "format (tests/check_format.sh)"
    tests/check_format.sh
fi

step "build (g++, -Werror)"
# The Debian package test installs and purges the package: CI machines only (root).
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPREFORKD_WERROR=ON -DPREFORKD_TESTS=ON \
    -DPREFORKD_PACKAGING_TEST="$([ "$(id -u)" = 0 ] && echo ON || echo OFF)"
cmake --build build -j"$JOBS"

step "tests (g++ build)"
# JUnit files keep every test's output, passed ones too: the figures the tests print
# ("[figures] ...": load results, recovery times, fork counts) are shown at the end.
ctest --test-dir build --output-on-failure -j2 --timeout 300 --output-junit ctest-junit.xml

if [ "${PREFORKD_SKIP_SANITIZE:-0}" != 1 ]; then
    step "build (clang, ASan+UBSan)"
    CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug \
        -DPREFORKD_SANITIZE=address,undefined
    cmake --build build-asan -j"$JOBS"
    step "tests (ASan+UBSan)"
    # halt_on_error: the first report fails the test that caused it.
    ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        ctest --test-dir build-asan --output-on-failure -j2 --timeout 600 \
            --output-junit ctest-junit.xml
fi

fuzz_seconds=${PREFORKD_FUZZ_SECONDS:-30}
if [ "$fuzz_seconds" != 0 ]; then
    step "fuzz (libFuzzer, ${fuzz_seconds}s per target)"
    CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DPREFORKD_FUZZ=ON -DPREFORKD_TESTS=OFF
    fuzz_targets=(config http_parser http_session proxy_protocol tls_first_bytes glob accept_encoding)
    cmake --build build-fuzz -j"$JOBS" --target "${fuzz_targets[@]/%/_fuzzer}"
    # New inputs go to a temporary folder (libFuzzer writes to its first corpus folder
    # only): the seed corpus in the clone is read, never written. A crash, a sanitizer
    # report or a hang (-timeout) stops the fuzzer with a non-zero status, which fails the
    # run; the input that did it is kept in build-fuzz/artifacts and printed here.
    fuzz_work=$(mktemp -d)
    trap 'rm -rf "$fuzz_work"' EXIT
    rm -rf build-fuzz/artifacts && mkdir -p build-fuzz/artifacts
    for target in "${fuzz_targets[@]}"; do
        corpus=tests/fuzz/corpus/${target%_parser}
        extra=()
        [ -f "tests/fuzz/$target.dict" ] && extra+=(-dict="tests/fuzz/$target.dict")
        mkdir -p "$fuzz_work/$target"
        if ! build-fuzz/tests/fuzz/${target}_fuzzer -max_total_time="$fuzz_seconds" \
            -timeout=10 -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$target-" \
            "${extra[@]}" "$fuzz_work/$target" "$corpus"; then
            echo "fuzzing $target failed; input(s), base64:" >&2
            for f in build-fuzz/artifacts/"$target"-*; do
                [ -f "$f" ] && { echo "$f:" >&2; base64 "$f" >&2; }
            done
            exit 1
        fi
    done
fi

if [ "${PREFORKD_SKIP_BENCH:-0}" != 1 ]; then
    # The benchmark harness, once, 1 s per scenario, so that it cannot rot. It never gates on
    # a number: it fails only when the harness itself breaks (a server does not start...).
    step "benchmark smoke run (tests/bench/compare.sh --smoke)"
    INSTALL=$([ "${PREFORKD_SKIP_APT:-0}" = 1 ] && echo 0 || echo 1) \
        PREFORKD="$root/build/preforkd" tests/bench/compare.sh --smoke
fi

step "figures printed by the tests"
for build_dir in build build-asan; do
    [ -f "$build_dir/ctest-junit.xml" ] || continue
    echo "-- $build_dir"
    grep -o '\[figures\].*' "$build_dir/ctest-junit.xml" |
        sed -e 's/&quot;/"/g' -e 's/&lt;/</g' -e 's/&gt;/>/g' -e 's/&amp;/\&/g' || true
done

step "all tests passed"

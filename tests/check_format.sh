#!/usr/bin/env bash
# check_format.sh - the clang-format gate: every C++ file of src/ include/ tests/ examples/
# must be as clang-format (Debian's clang-format 14, with the repository's .clang-format)
# would write it. Exits 0 when all are, 1 listing each file that is not with its count of
# warnings, 2 when clang-format is missing.
#
#   tests/check_format.sh            every *.cpp / *.hpp git tracks (or finds) there
#   tests/check_format.sh FILE...    only these
#   CLANG_FORMAT=clang-format-15 tests/check_format.sh
#
# Fix a file with `clang-format -i FILE`. Another clang-format version formats a few
# constructs differently: the gate is meant for version 14 (tests/run_all.sh installs it).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
    for c in clang-format-14 clang-format; do
        command -v "$c" >/dev/null 2>&1 && { cf=$c; break; }
    done
fi
if [ -z "$cf" ] || ! command -v "$cf" >/dev/null 2>&1; then
    echo "check_format.sh: clang-format not found (apt-get install clang-format)" >&2
    exit 2
fi
version=$("$cf" --version)
[[ $version == *" 14."* ]] ||
    echo "check_format.sh: note: $version is not version 14; its results may differ" >&2

files=()
if [ $# -gt 0 ]; then
    files=("$@")
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files -- 'src/*.cpp' 'src/*.hpp' 'include/*.cpp' 'include/*.hpp' \
        'tests/*.cpp' 'tests/*.hpp' 'examples/*.cpp' 'examples/*.hpp')
else
    mapfile -t files < <(find src include tests examples -type f \( -name '*.cpp' -o -name '*.hpp' \) |
        sort)
fi
[ ${#files[@]} -gt 0 ] || { echo "check_format.sh: no files to check" >&2; exit 2; }

bad=0
warnings=0
for f in "${files[@]}"; do
    # --Werror makes any difference an error; each one is a "warning:"/"error:" line.
    out=$("$cf" --style=file --dry-run --Werror "$f" 2>&1) && continue
    n=$(grep -c -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' <<< "$out")
    [ "$n" -gt 0 ] || { echo "check_format.sh: $f: $out" >&2; n=1; }
    printf '  %-60s %4d\n' "$f" "$n"
    bad=$((bad + 1))
    warnings=$((warnings + n))
done
if [ $bad -gt 0 ]; then
    echo "check_format.sh: $bad of ${#files[@]} files are not clang-formatted ($warnings warnings, $version);"
    echo "  fix with: clang-format -i FILE (files listed above)"
    exit 1
fi
echo "check_format.sh: ${#files[@]} files clang-formatted ($version)"

#!/bin/bash
# Builds preforkd_<version>_<arch>.deb from this repository.
#
#   packaging/build-deb.sh [OUTDIR]      (default OUTDIR: build-deb/ at the repository root)
#
# dpkg-buildpackage wants debian/ at the top of the source tree, and the repository keeps it
# in packaging/debian/: the sources are copied to a temporary preforkd-<version>/ with debian/
# beside them, and the package is built there, so the repository stays clean.
# Needs the Build-Depends of packaging/debian/control (dpkg-checkbuilddeps names the missing
# ones) and dpkg-dev; the tests are not run (they run from a normal build tree with ctest).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo/build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

die() {
    echo "build-deb: $*" >&2
    exit 1
}

command -v dpkg-buildpackage >/dev/null || die "dpkg-buildpackage missing (apt-get install dpkg-dev debhelper)"

# One version: CMake's project(VERSION) and the top of debian/changelog must agree.
cmake_version=$(sed -nE 's/^project\(preforkd VERSION ([0-9.]+).*/\1/p' "$repo/CMakeLists.txt")
deb_version=$(dpkg-parsechangelog -l "$repo/packaging/debian/changelog" -S Version)
[ -n "$cmake_version" ] || die "no project(preforkd VERSION x.y.z) in CMakeLists.txt"
[ "$cmake_version" = "${deb_version%%-*}" ] ||
    die "CMakeLists.txt says $cmake_version but packaging/debian/changelog says $deb_version"

stage=$(mktemp -d "${TMPDIR:-/tmp}/preforkd-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
src=$stage/preforkd-$cmake_version
mkdir -p "$src"
# OUTDIR inside the repository (say, a build tree git does not ignore) is not copied.
case "$out/" in
    "$repo/"*) skip=${out#"$repo/"} ;;
    *) skip="" ;;
esac

# The files git knows (tracked, or new and not ignored), so build trees and editor files stay
# out; a tarball without .git is copied whole except its build trees.
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            [ -e "$f" ] || continue                       # deleted, not yet committed
            [ -n "$skip" ] && case "$f" in "$skip"/*) continue ;; esac
            printf '%s\0' "$f"
        done |
        tar --null -T - -cf -) | tar -C "$src" -xf -
else
    (cd "$repo" && tar --exclude='./build*' --exclude='./out' ${skip:+--exclude="./$skip"} -cf - .) |
        tar -C "$src" -xf -
fi
rm -rf "$src/debian"
cp -a "$repo/packaging/debian" "$src/debian"

jobs=$(nproc 2>/dev/null || echo 1)
[ "$jobs" -le 2 ] || jobs=2
(
    cd "$src"
    DEB_BUILD_OPTIONS="nocheck parallel=$jobs ${DEB_BUILD_OPTIONS:-}" \
        dpkg-buildpackage -b -us -uc
)

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=preforkd_${deb_version}_${arch}.deb
[ -f "$stage/$deb" ] || die "dpkg-buildpackage did not produce $deb"
# The package, its debug symbols (preforkd-dbgsym) and the build records go to OUTDIR.
find "$stage" -maxdepth 1 -type f \( -name '*.deb' -o -name '*.ddeb' -o -name '*.changes' \
    -o -name '*.buildinfo' \) -exec mv -f {} "$out/" \;
echo "$out/$deb"

#!/bin/bash
# Builds the Debian package of Annex with Debian's own tools (dpkg-deb):
# the files tools/install.sh installs, under /usr, for Debian's Python 3.11
# (the pyenv builds name interpreters outside any package, so they stay out
# of it). Install it with `sudo apt install ./annex_<version>_amd64.deb`.
# docs/install.md lists its files.
#
#   tools/build_deb.sh [--out DIR] [--no-build]
#     --out DIR    where to write the .deb (default: the current directory)
#     --no-build   package what the last `-c opt` build left in bazel-bin
set -euo pipefail
out=$PWD build_flag=()
while (($#)); do
  case "$1" in
    --out) out=${2:?}; shift ;;
    --no-build) build_flag=(--no-build) ;;
    *) echo "usage: tools/build_deb.sh [--out DIR] [--no-build]" >&2; exit 2 ;;
  esac
  shift
done
[[ "$out" == /* ]] || out="$PWD/$out"
cd "$(dirname "$0")/.."
version=$(sed -n 's/^ANNEX_VERSION=//p' packaging/version.txt)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/annex_${version}_$arch"

bash tools/install.sh --prefix /usr --destdir "$root" --python 3.11 "${build_flag[@]}"

# The exact Python: Annex refuses any other patch release (docs/install.md).
py_full=$(sed -n 's/^python_version=//p' "$root/usr/lib/pkgconfig/annex-py3.11.pc")
next_patch=$(awk -F. '{ printf "%d.%d.%d", $1, $2, $3 + 1 }' <<<"$py_full")
size=$(du -sk "$root/usr" | cut -f1)
mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<CONTROL
Package: annex
Version: $version
Architecture: $arch
Maintainer: Annex developers <annex@localhost>
Installed-Size: $size
Section: devel
Priority: optional
Depends: libpython3.11 (>= $py_full), libpython3.11 (<< $next_patch), python3.11 (>= $py_full), python3.11 (<< $next_patch), libabsl20220623, libprometheus-cpp-core1.0, libcivetweb1, libedit2, libc6, libstdc++6
Suggests: python3.11-dev, libabsl-dev, cmake, pkg-config
Description: heap inspection of a running CPython from inside the process
 Annex embeds a second CPython interpreter in a process that hosts CPython
 and inspects its heap, threads and stacks from there (Heapy style).
 .
 This package holds the annex command (annex run, attach, exec, ps,
 stacks), libannex-py3.11 (shared and static) with its C++ headers,
 pkg-config and CMake files, and the annex Python module for python3.11.
CONTROL
dpkg-deb --root-owner-group --build "$root" "$out/annex_${version}_$arch.deb" >&2
echo "$out/annex_${version}_$arch.deb"

#!/bin/bash
# Builds Annex optimized (-c opt) and installs it under a prefix: the `annex`
# command, libannex (shared and static), the public headers, pkg-config and
# CMake files, and the `annex` Python module, once per Python version
# present (Debian's 3.11, pyenv's 3.12.1 and 3.13.0), named so they live side
# by side. Idempotent: running it again replaces the same files.
# docs/install.md lists every file and where it goes.
#
#   tools/install.sh [--prefix DIR] [--python 3.11,3.12,...] [--default 3.11]
#                    [--venv DIR] [--destdir DIR] [--no-build]
#     --prefix DIR   where to install (default: ~/.local)
#     --python LIST  the versions to build and install (default: all present)
#     --default V    the version behind `annex`, annex.pc and Annex::annex
#                    (default: 3.11 when installed, else the first one)
#     --venv DIR     also install the Python module into this venv's
#                    site-packages (the venv's own Python version)
#     --destdir DIR  stage under DIR/PREFIX instead (packaging; the files
#                    still name PREFIX)
#     --no-build     install what the last build left in bazel-bin
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

prefix="$HOME/.local" versions="" default="" venv="" destdir="" build=1
usage() { sed -n '9,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
  case "$1" in
    --prefix) prefix=${2:?}; shift ;;
    --python) versions=${2:?}; shift ;;
    --default) default=${2:?}; shift ;;
    --venv) venv=${2:?}; shift ;;
    --destdir) destdir=${2:?}; shift ;;
    --no-build) build=0 ;;
    -h|--help) usage ;;
    *) echo "install.sh: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
[[ "$prefix" == /* ]] || prefix="$PWD/$prefix"
prefix=${prefix%/}
[[ -z "$destdir" || "$destdir" == /* ]] || destdir="$PWD/$destdir"
root="$destdir$prefix"   # where files are written

config_of() {  # 3.11 -> "" (default config), 3.12 -> --config=py312
  case "$1" in
    3.11) echo "" ;;
    3.12) echo "--config=py312" ;;
    3.13) echo "--config=py313" ;;
    *) echo "install.sh: unsupported Python version '$1' (3.11, 3.12, 3.13)" >&2; return 1 ;;
  esac
}

if [[ -z "$versions" ]]; then
  versions=$(bash tools/python_versions.sh 2>/dev/null |
             sed 's/^default$/3.11/; s/^py312$/3.12/; s/^py313$/3.13/' | paste -sd,)
fi
IFS=, read -r -a version_list <<<"$versions"
[[ -n "$default" ]] || default=${version_list[0]}
for v in "${version_list[@]}"; do config_of "$v" >/dev/null; done
if [[ ",$versions," != *",$default,"* ]]; then
  echo "install.sh: --default $default is not among --python $versions" >&2
  exit 2
fi

targets=(//monitor/cli:annex //packaging:libannex.so //packaging:libannex //packaging/python:_annex.so)

# The project's own headers that monitor/monitor.h includes, transitively.
public_headers() {
  local todo=(monitor/monitor.h) seen=" " h inc
  while ((${#todo[@]})); do
    h=${todo[0]}; todo=("${todo[@]:1}")
    [[ "$seen" == *" $h "* ]] && continue
    seen+="$h "
    echo "$h"
    while read -r inc; do
      [[ -f "$inc" ]] && todo+=("$inc")
    done < <(sed -n 's/^#include "\(.*\)"/\1/p' "$h")
  done
}

# Python facts: include dir, lib dir, ext suffix, full version.
py_facts() {  # interpreter
  "$1" -c 'import sysconfig, sys
print(sysconfig.get_paths()["include"])
print(sysconfig.get_config_var("LIBDIR"))
print(sysconfig.get_config_var("EXT_SUFFIX"))
print("%d.%d.%d" % sys.version_info[:3])'
}

install_file() {  # mode src dst
  install -D -m "$1" "$2" "$3"
}

version_of_annex=$(sed -n 's/^ANNEX_VERSION=//p' packaging/version.txt 2>/dev/null || true)
version_of_annex=${version_of_annex:-0.1.0}

mkdir -p "$root"
for v in "${version_list[@]}"; do
  cfg=$(config_of "$v")
  tag="py$v"
  if ((build)); then
    echo "install.sh: building Annex for Python $v (-c opt $cfg)" >&2
    # Stamped: annex_build_info names the commit (tools/workspace_status.sh).
    # shellcheck disable=SC2086
    bazel build -c opt $cfg --stamp \
      --workspace_status_command=tools/workspace_status.sh "${targets[@]}" >&2
  fi
  # shellcheck disable=SC2086
  bin=$(bazel info -c opt $cfg bazel-bin 2>/dev/null)
  # shellcheck disable=SC2086
  output_base=$(bazel info -c opt $cfg output_base 2>/dev/null)
  pyname=py${v/./}
  interp=$(readlink -f "$output_base/external/python/$pyname/bin/python")
  mapfile -t facts < <(py_facts "$interp")
  py_inc=${facts[0]} py_lib=${facts[1]} ext_suffix=${facts[2]} py_full=${facts[3]}

  # The command, libraries.
  install_file 755 "$bin/monitor/cli/annex" "$root/bin/annex-$tag"
  install_file 755 "$bin/packaging/libannex.so" "$root/lib/libannex-$tag.so.0"
  ln -sfn "libannex-$tag.so.0" "$root/lib/libannex-$tag.so"
  install_file 644 "$bin/packaging/libannex.a" "$root/lib/libannex-$tag.a"

  # System libraries the objects need (Abseil, prometheus-cpp, civetweb,
  # libedit), without the Python ones, which the files below name explicitly.
  sys_libs=$(grep -v -e '^$' -e 'python' -e '^-L' -e '^-Wl,-rpath' "$bin/packaging/libannex.a.linkopts" | paste -sd' ')
  absl_libs=$(tr ' ' '\n' <<<"$sys_libs" | grep -e '^-labsl' -e '^-lpthread' | paste -sd' ')
  py_link="-L$py_lib -lpython$v -Wl,-rpath,$py_lib"

  # pkg-config.
  mkdir -p "$root/lib/pkgconfig"
  cat >"$root/lib/pkgconfig/annex-$tag.pc" <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include
python_version=$py_full

Name: annex-$tag
Description: Annex, built for Python $py_full ($interp)
Version: $version_of_annex
Cflags: -I\${includedir}/annex -I$py_inc -DPY_SSIZE_T_CLEAN
Libs: -L\${libdir} -lannex-$tag -Wl,-rpath,\${libdir} $py_link $absl_libs
Libs.private: $sys_libs -ldl -lm
EOF
  [[ "$v" == "$default" ]] &&
    sed 's/^Name: annex-.*/Name: annex/' "$root/lib/pkgconfig/annex-$tag.pc" >"$root/lib/pkgconfig/annex.pc"

  # CMake: one targets file per version; AnnexConfig.cmake picks one.
  cmake_libs=$(tr ' ' '\n' <<<"$absl_libs" | paste -sd';')
  cmake_static_libs=$(tr ' ' '\n' <<<"$sys_libs -ldl -lm" | paste -sd';')
  mkdir -p "$root/lib/cmake/Annex"
  cat >"$root/lib/cmake/Annex/AnnexTargets-$tag.cmake" <<EOF
# Generated by tools/install.sh: Annex built for Python $py_full.
set(Annex_${tag//./_}_PYTHON_FULL_VERSION "$py_full")
set(Annex_${tag//./_}_PYTHON_EXECUTABLE "$interp")
if(NOT TARGET Annex::annex-$tag)
  add_library(Annex::annex-$tag SHARED IMPORTED)
  set_target_properties(Annex::annex-$tag PROPERTIES
    IMPORTED_LOCATION "\${_Annex_PREFIX}/lib/libannex-$tag.so.0"
    IMPORTED_SONAME "libannex-$tag.so.0"
    INTERFACE_INCLUDE_DIRECTORIES "\${_Annex_PREFIX}/include/annex;$py_inc"
    INTERFACE_COMPILE_DEFINITIONS "PY_SSIZE_T_CLEAN"
    INTERFACE_LINK_LIBRARIES "$py_lib/libpython$v.so;$cmake_libs"
    INTERFACE_LINK_OPTIONS "LINKER:-rpath,$py_lib")
  add_library(Annex::annex_static-$tag STATIC IMPORTED)
  set_target_properties(Annex::annex_static-$tag PROPERTIES
    IMPORTED_LOCATION "\${_Annex_PREFIX}/lib/libannex-$tag.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "CXX"
    INTERFACE_INCLUDE_DIRECTORIES "\${_Annex_PREFIX}/include/annex;$py_inc"
    INTERFACE_COMPILE_DEFINITIONS "PY_SSIZE_T_CLEAN"
    INTERFACE_LINK_LIBRARIES "$py_lib/libpython$v.so;$cmake_static_libs"
    INTERFACE_LINK_OPTIONS "LINKER:-rpath,$py_lib")
endif()
EOF

  # The Python module: the prefix's site-packages for this version (for
  # ~/.local that is python$v's user site), and a venv's when asked.
  # Debian's own interpreters under /usr read /usr/lib/python3/dist-packages.
  if [[ "$prefix" == /usr && "$interp" == /usr/bin/* ]]; then
    module_dirs=("$root/lib/python3/dist-packages/annex")
  else
    module_dirs=("$root/lib/python$v/site-packages/annex")
  fi
  if [[ -n "$venv" ]]; then
    venv_v=$(sed -n 's/^version *= *\([0-9]*\.[0-9]*\).*/\1/p; s/^version_info *= *\([0-9]*\.[0-9]*\).*/\1/p' "$venv/pyvenv.cfg" | head -1)
    [[ "$venv_v" == "$v" ]] && module_dirs+=("$venv/lib/python$v/site-packages/annex")
  fi
  for d in "${module_dirs[@]}"; do
    install_file 755 "$bin/packaging/python/_annex.so" "$d/_annex$ext_suffix"
    install_file 644 "$repo/packaging/python/annex/__init__.py" "$d/__init__.py"
    install_file 644 "$repo/packaging/python/annex/__main__.py" "$d/__main__.py"
  done
  echo "install.sh: Python $py_full: installed under $prefix" >&2
done

# Headers (version-free), the default's names, the CMake entry point.
while read -r h; do
  install_file 644 "$h" "$root/include/annex/$h"
done < <(public_headers)
ln -sfn "annex-py$default" "$root/bin/annex"
sed -e "s/@DEFAULT@/py$default/" packaging/AnnexConfig.cmake.in >"$root/lib/cmake/Annex/AnnexConfig.cmake"
sed -e "s/@VERSION@/$version_of_annex/" packaging/AnnexConfigVersion.cmake.in >"$root/lib/cmake/Annex/AnnexConfigVersion.cmake"

if [[ -n "$venv" ]] && ! ls "$venv"/lib/python*/site-packages/annex/__init__.py >/dev/null 2>&1; then
  echo "install.sh: the venv $venv is not of an installed Python version ($versions)" >&2
  exit 1
fi
echo "install.sh: done: $prefix/bin/annex (Python $default)" >&2

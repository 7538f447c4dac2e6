#!/bin/bash
# The install end to end, as a user meets it (docs/install.md): installs
# Annex into a temporary prefix with tools/install.sh, builds
# examples/cmake_host with CMake through find_package(Annex) (shared and
# static) and with pkg-config, runs the hosts and asks them `hp.heap()`
# with the installed `annex`; uses the `annex` Python module from a venv;
# and checks the Debian package's contents. Bazel cannot run this as a test
# (it runs Bazel itself), so tools/test.sh does, and this writes one JUnit
# test case per check into XML_DIR/install/test.xml, which
# tools/count_tests.py counts.
#
#   tools/install_test.sh XML_DIR [--python 3.11,3.12,3.13]
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
xml_dir=${1:?usage: install_test.sh XML_DIR [--python LIST]}
shift
versions=3.11
if [[ ${1:-} == --python ]]; then versions=${2:?}; fi
IFS=, read -r -a version_list <<<"$versions"
default=${version_list[0]}

work=$(mktemp -d /tmp/annex-install-test.XXXXXX)
children=()
cleanup() {
  for p in "${children[@]}"; do kill "$p" 2>/dev/null; done
  [[ -n "${ANNEX_INSTALL_TEST_KEEP:-}" ]] || rm -rf "$work"
}
trap cleanup EXIT
prefix="$work/prefix"
export XDG_RUNTIME_DIR="$work/run"   # the console sockets of this test only
mkdir -m 700 "$XDG_RUNTIME_DIR"
unset VIRTUAL_ENV PYTHONPATH PYTHONHOME

cases=""      # JUnit <testcase> elements
passed=0 failed=0
log="$work/case.log"

xml_escape() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'; }

# run_case NAME FUNCTION [ARGS...]: a case passes when FUNCTION returns 0.
run_case() {
  local name=$1; shift
  echo "--- install_test: $name" >&2
  if "$@" >"$log" 2>&1; then
    cases+="<testcase classname=\"install\" name=\"$name\"/>"
    passed=$((passed + 1))
  else
    echo "FAILED: $name" >&2
    tail -40 "$log" >&2
    cases+="<testcase classname=\"install\" name=\"$name\"><failure message=\"failed\">$(tail -40 "$log" | xml_escape)</failure></testcase>"
    failed=$((failed + 1))
  fi
}

fail() { echo "check failed: $*"; return 1; }

# Waits (bounded by count, not time) until FILE has a line matching RE.
wait_for_line() {  # file regex pid
  local i
  for ((i = 0; i < 6000; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { grep -q "$2" "$1" 2>/dev/null; return; }
    sleep 0.05
  done
  return 1
}

# ---- the install -------------------------------------------------------------
case_install() {
  bash tools/install.sh --prefix "$prefix" --python "$versions" --default "$default" || return 1
  local v
  for v in "${version_list[@]}"; do
    for f in bin/annex-py$v lib/libannex-py$v.so.0 lib/libannex-py$v.so \
             lib/libannex-py$v.a lib/pkgconfig/annex-py$v.pc \
             lib/cmake/Annex/AnnexTargets-py$v.cmake; do
      [[ -e "$prefix/$f" ]] || fail "missing $f" || return 1
    done
    ls "$prefix/lib/python$v/site-packages/annex/"_annex.cpython-*.so >/dev/null || fail "no module for $v" || return 1
    readelf -d "$prefix/lib/libannex-py$v.so.0" | grep "SONAME.*\[libannex-py$v.so.0\]" >/dev/null ||
      fail "SONAME of libannex-py$v.so.0" || return 1
    # Exported: the public API only (every defined global dynamic symbol is
    # annex::Monitor, glue::Stat/StatReader or a watchdog name function;
    # local ones, such as the death watch's initial-exec TLS variable that
    # its TPOFF relocation keeps in .dynsym, bind nothing outside).
    local extra
    extra=$(nm -D --defined-only -g -C "$prefix/lib/libannex-py$v.so.0" | awk '{ $1=""; $2=""; print substr($0, 3) }' |
            grep -v -e '^annex::Monitor::' -e '^annex::glue::Stat::' -e '^annex::glue::StatReader::' \
                    -e '^annex::watchdog::\(EventType\|MemorySource\|MemoryMeasure\)Name(' -e '^ANNEX_1$')
    [[ -z "$extra" ]] || fail "libannex-py$v.so.0 exports more than the API: $(head -5 <<<"$extra")" || return 1
    nm -D --defined-only -C "$prefix/lib/libannex-py$v.so.0" | grep 'annex::Monitor::Start' >/dev/null || fail "no Monitor::Start" || return 1
    # The static archive holds every object (more than monitor.o).
    (( $(ar t "$prefix/lib/libannex-py$v.a" | wc -l) > 20 )) || fail "libannex-py$v.a is not complete" || return 1
    "$prefix/bin/annex-py$v" --version | grep "Python $v" >/dev/null || fail "annex-py$v --version" || return 1
  done
  [[ "$(readlink "$prefix/bin/annex")" == "annex-py$default" ]] || fail "bin/annex is not annex-py$default" || return 1
  [[ -f "$prefix/include/annex/monitor/monitor.h" && -f "$prefix/include/annex/glue/stat.h" ]] || fail "headers" || return 1
  # Idempotent: a second run over the same prefix installs the same files.
  (cd "$prefix" && find . -type f -o -type l | sort | xargs md5sum 2>/dev/null) >"$work/first"
  bash tools/install.sh --prefix "$prefix" --python "$versions" --default "$default" --no-build || return 1
  (cd "$prefix" && find . -type f -o -type l | sort | xargs md5sum 2>/dev/null) >"$work/second"
  diff "$work/first" "$work/second" || fail "second install differs"
}

# ---- the CMake host ------------------------------------------------------------
# Runs HOST, asks it hp.heap() with ANNEX, and stops it; checks the answer
# names the host's own objects and that the host exits 0.
attach_and_check() {  # annex host label
  local annex=$1 host=$2 label=$3
  local out="$work/$3.out" stop="$work/$3.stop"
  rm -f "$stop"
  "$host" "$stop" >"$out" 2>&1 &
  local pid=$!
  children+=("$pid")
  wait_for_line "$out" '^ready' "$pid" || { cat "$out"; fail "$label did not get ready"; return 1; }
  local answer rc
  answer=$("$annex" exec --timeout 60 "$pid" 'print(hp.heap())' 2>&1); rc=$?
  touch "$stop"
  wait "$pid"; local host_rc=$?
  echo "$answer"
  ((rc == 0)) || fail "annex exec exited $rc" || return 1
  grep -q 'Partition of a set of' <<<"$answer" || fail "no partition table" || return 1
  grep -q 'CMakeHostWidget' <<<"$answer" || fail "the host's widgets are not in hp.heap()" || return 1
  ((host_rc == 0)) || { cat "$out"; fail "$label exited $host_rc"; }
}

case_cmake_build() {  # version
  local v=$1 build="$work/cmake-$1"
  local comp=()
  [[ $v == "$default" ]] || comp=(-DANNEX_COMPONENT="py$v")
  cmake -S examples/cmake_host -B "$build" -DCMAKE_PREFIX_PATH="$prefix" "${comp[@]}" -DCMAKE_BUILD_TYPE=Release &&
    cmake --build "$build" -j 2
}

case_cmake_attach() {  # version variant
  local v=$1 exe=cmake_host
  [[ $2 == static ]] && exe=cmake_host_static
  attach_and_check "$prefix/bin/annex-py$v" "$work/cmake-$v/$exe" "cmake-$v-$2"
}

case_pkg_config() {
  local pc="PKG_CONFIG_PATH=$prefix/lib/pkgconfig"
  local cflags libs py
  cflags=$(env "$pc" pkg-config --cflags annex) && libs=$(env "$pc" pkg-config --libs annex) || return 1
  py=$(sed -n 's/^set(Annex_py.*_PYTHON_EXECUTABLE "\(.*\)")/\1/p' "$prefix/lib/cmake/Annex/AnnexTargets-py$default.cmake")
  # shellcheck disable=SC2086
  g++ -std=c++17 -O1 $cflags -DHOST_PYTHON_EXECUTABLE="\"$py\"" examples/cmake_host/host.cc -o "$work/pc_host" $libs || return 1
  attach_and_check "$prefix/bin/annex" "$work/pc_host" pkg-config
}

# ---- the Python module ------------------------------------------------------------
# A venv of the default Python (Debian's python3 -m venv), the module
# installed into it, and a package that exists only in the venv.
case_venv_module() {
  local v=$default venv="$work/venv"
  local interp
  interp=$(sed -n 's/^set(Annex_py.*_PYTHON_EXECUTABLE "\(.*\)")/\1/p' "$prefix/lib/cmake/Annex/AnnexTargets-py$v.cmake")
  rm -rf "$venv"
  "$interp" -m venv --without-pip "$venv" || return 1
  bash tools/install.sh --prefix "$prefix" --python "$versions" --default "$default" --no-build --venv "$venv" || return 1
  ls "$venv/lib/python$v/site-packages/annex/"_annex.cpython-*.so || fail "module not in the venv" || return 1
  echo "KIND = 'venv only'" >"$venv/lib/python$v/site-packages/only_in_venv.py"
  cat >"$work/venv_app.py" <<'PY'
import os, sys, time
import only_in_venv
import annex
class VenvAppWidget:
    pass
widgets = [VenvAppWidget() for _ in range(2000)]
if "--start" in sys.argv:
    annex.start(console=True)
assert annex.running(), "annex is not running"
assert annex.console_socket_path(), "no console socket"
print("annex.exec:", annex.exec("print(6 * 7)").strip(), flush=True)
print("ready", os.getpid(), only_in_venv.KIND, flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
annex.stop()
assert not annex.running()
print("stopped", flush=True)
PY
  # A plain python process that imports annex and starts it itself.
  attach_and_check_py "$venv/bin/python $work/venv_app.py STOP --start" import-start || return 1
  # python3 -m annex run, the second spelling of `annex run`.
  attach_and_check_py "$venv/bin/python -m annex run $work/venv_app.py STOP" python-m-annex
}

attach_and_check_py() {  # "command with STOP" label
  local label=$2 out="$work/$2.out" stop="$work/$2.stop"
  rm -f "$stop"
  # shellcheck disable=SC2086
  ${1//STOP/$stop} >"$out" 2>&1 &
  local pid=$!
  children+=("$pid")
  wait_for_line "$out" '^ready' "$pid" || { cat "$out"; fail "$label did not get ready"; return 1; }
  local answer rc
  answer=$("$prefix/bin/annex" exec --timeout 60 "$pid" 'print(hp.heap())' 2>&1); rc=$?
  touch "$stop"
  wait "$pid"; local prc=$?
  echo "$answer"; cat "$out"
  ((rc == 0)) || fail "annex exec exited $rc" || return 1
  grep -q 'Partition of a set of' <<<"$answer" || fail "no partition table" || return 1
  grep -q 'VenvAppWidget' <<<"$answer" || fail "the app's objects are not in hp.heap()" || return 1
  grep -q '^annex.exec: 42$' "$out" || fail "annex.exec() did not answer" || return 1
  grep -q "venv only" "$out" || fail "the venv's package" || return 1
  grep -q '^stopped$' "$out" || fail "annex.stop()" || return 1
  ((prc == 0)) || fail "$label exited $prc"
}

# annex attach to a plain python3 without Annex says how to enable it.
case_attach_without_annex() {
  local out="$work/plain.out" stop="$work/plain.stop"
  python3 -c 'import os, sys, time
print("ready", flush=True)
while not os.path.exists(sys.argv[1]): time.sleep(0.05)' "$stop" >"$out" 2>&1 &
  local pid=$!
  children+=("$pid")
  wait_for_line "$out" '^ready' "$pid" || return 1
  local msg rc
  msg=$("$prefix/bin/annex" attach "$pid" 2>&1 </dev/null); rc=$?
  touch "$stop"; wait "$pid"
  echo "$msg"
  ((rc == 3)) || fail "exit status $rc" || return 1
  grep -q "runs but has no Annex console" <<<"$msg" && grep -q "annex.start(console=True)" <<<"$msg"
}

# ---- the Debian package ------------------------------------------------------------
# Built from the same files (prefix /usr), inspected and unpacked into a
# temporary directory (never installed system-wide here).
case_deb() {
  local deb
  deb=$(bash tools/build_deb.sh --out "$work" --no-build) || return 1
  # grep reads all its input (no -q): with pipefail, grep -q exiting at
  # the first match can kill the writer with SIGPIPE and fail the case.
  dpkg-deb --info "$deb" | grep 'Package: annex' >/dev/null || fail "control" || return 1
  dpkg-deb --contents "$deb" >"$work/deb.list" || return 1
  local f
  for f in ./usr/bin/annex ./usr/bin/annex-py3.11 ./usr/lib/libannex-py3.11.so.0 \
           ./usr/lib/libannex-py3.11.so ./usr/lib/libannex-py3.11.a \
           ./usr/include/annex/monitor/monitor.h ./usr/lib/pkgconfig/annex.pc \
           ./usr/lib/cmake/Annex/AnnexConfig.cmake ./usr/lib/python3/dist-packages/annex/__init__.py; do
    grep -q " $f\( \|$\)" "$work/deb.list" || fail "the package lacks $f" || return 1
  done
  grep -q 'root/root' "$work/deb.list" || fail "files not owned by root" || return 1
  dpkg-deb -x "$deb" "$work/debroot" || return 1
  local got
  got=$("$work/debroot/usr/bin/annex-py3.11" run --no-console -c 'import sys; print("ran", sys.version_info[:2])') || return 1
  [[ "$got" == "ran (3, 11)" ]] || fail "annex from the package ran: $got" || return 1
  grep -q "^prefix=/usr$" "$work/debroot/usr/lib/pkgconfig/annex.pc" || fail "annex.pc prefix"
}

# ---- summary ---------------------------------------------------------------------
write_xml() {
  mkdir -p "$xml_dir/install"
  echo "<testsuites><testsuite name=\"install\" tests=\"$((passed + failed))\" failures=\"$failed\">$cases</testsuite></testsuites>" >"$xml_dir/install/test.xml"
  echo "install_test: $passed passed, $failed failed" >&2
}

run_case "install_into_temp_prefix" case_install
if [[ -x "$prefix/bin/annex" ]]; then
  for v in "${version_list[@]}"; do
    run_case "cmake_find_package_build_py$v" case_cmake_build "$v"
    run_case "cmake_host_shared_attach_py$v" case_cmake_attach "$v" shared
    run_case "cmake_host_static_attach_py$v" case_cmake_attach "$v" static
  done
  run_case "pkg_config_host_attach" case_pkg_config
  run_case "python_module_in_venv_attach" case_venv_module
  run_case "attach_without_annex_says_how" case_attach_without_annex
  if [[ ",$versions," == *",3.11,"* ]]; then run_case "debian_package" case_deb; fi
fi
write_xml
((failed == 0))

#!/bin/bash
# Runs clang-tidy (checks in .clang-tidy) over Annex's own C/C++ files with
# the flags Bazel compiles them with. Prints each finding; the last line says how many files
# were checked and whether any finding was left. Exit 1 on any finding.
#
#   tools/check_tidy.sh [FILE...]   # default: every file of ours in //...
#
# compile_commands.json is regenerated from `bazel aquery` each run and the
# generated headers are built (tools/compile_commands.py), so no other bazel
# command may run in this work tree meanwhile. A file costs about 5 s of CPU
# (Python.h, Abseil and GoogleTest are parsed each time), all of them about
# 15 min: run it on the files a change touches; tools/test.sh runs it on all
# (DEVELOPERS.md). TIDY_JOBS: clang-tidy processes at once (default 2).
#
# Clang's thread-safety analysis runs too (-Wthread-safety below; its
# warnings are the clang-diagnostic-thread-safety-* checks of .clang-tidy,
# errors like every finding): our mutexes are absl::Mutex (one wrapped
# std::recursive_mutex, glue/session.h), which Abseil marks as a
# capability, so every ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_REQUIRED and
# ABSL_LOCKS_EXCLUDED is checked against the locks each function takes.
set -uo pipefail
cd "$(dirname "$0")/.."

clang_tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
if [[ -z $clang_tidy ]]; then
  echo "check_tidy: FAILED: clang-tidy-14 not installed (tools/install_deps.sh installs it)" >&2
  exit 1
fi
python=/usr/bin/python3.11
[[ -x $python ]] || python=python3

# TIDY_PREPARED=1: compile_commands.json and the generated headers are
# there already (tools/test.sh makes them before its suites, then runs
# this beside them, where no bazel command of ours may run).
if [[ ${TIDY_PREPARED:-0} != 1 ]]; then
  "$python" tools/compile_commands.py || {
    echo "check_tidy: FAILED: could not generate compile_commands.json" >&2
    exit 1
  }
fi

if (($#)); then
  files=("$@")
else
  mapfile -t files < <("$python" -c '
import json
for e in json.load(open("compile_commands.json")):
    print(e["file"])')
fi

# Clang reads the GCC command lines: keep it quiet about GCC-only warnings.
# GCC has no thread-safety analysis: clang adds it here.
extra=(--extra-arg=-Wno-unknown-warning-option --extra-arg=-Wthread-safety)
jobs=${TIDY_JOBS:-2}
log=$(mktemp)
trap 'rm -f "$log" "$log.findings"' EXIT
printf '%s\n' "${files[@]}" |
  xargs -P "$jobs" -n 1 "$clang_tidy" -p . --quiet "${extra[@]}" \
    >"$log" 2>&1
rc=$?
# Findings are "file:line:col: warning|error: ... [check]".
grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$log" | sort -u >"$log.findings"
findings=$(wc -l <"$log.findings")
if ((findings)); then
  grep -E -A3 '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$log" | head -400
  echo "check_tidy: FAILED: $findings findings in ${#files[@]} files"
  exit 1
fi
if ((rc)); then
  tail -40 "$log"
  echo "check_tidy: FAILED: clang-tidy exited $rc with no finding listed"
  exit 1
fi
echo "check_tidy: ${#files[@]} files, no findings"

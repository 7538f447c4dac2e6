#!/bin/bash
# Builds the console protocol's libFuzzer target with clang and runs it.
#
#   tools/fuzz_console.sh [SECONDS] [extra libFuzzer flags...]
#
# The default toolchain of this workspace is gcc, which has no libFuzzer, so
# the target is built in a separate Bazel output base configured for
# clang-14: the normal (gcc) build cache is left alone. Needs clang-14 and
# libclang-rt-14-dev (`apt-get install clang-14 libclang-rt-14-dev`).
# Environment: ANNEX_FUZZ_KEEP=1 keeps the scratch corpus after a clean run;
# ANNEX_FUZZ_KEEP_SERVER=1 leaves the clang Bazel server running.
# New inputs libFuzzer finds go to a scratch corpus, not into the repo's
# seed corpus (tests/console/corpus); copy crash-* reproducers there by hand
# once fixed, so protocol_corpus_test replays them in every build.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true

if ! command -v clang-14 >/dev/null; then
  echo "fuzz_console.sh: clang-14 not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi

output_base="${ANNEX_FUZZ_OUTPUT_BASE:-${HOME}/.cache/bazel/annex-fuzz-$(basename "$PWD")}"
bazel_fuzz() {
  CC=clang-14 CXX=clang++-14 bazel --output_base="$output_base" "$@"
}

flags=(
  --repo_env=CC=clang-14 --repo_env=CXX=clang++-14
  # Leave the workspace's bazel-* symlinks pointing at the normal build.
  --symlink_prefix=/
  # Coverage feedback for all our code, plus ASan/UBSan.
  --copt=-fsanitize=fuzzer-no-link
  --copt=-fsanitize=address,undefined --linkopt=-fsanitize=address,undefined
  # Bazel links with the C driver: ask for the C++ half of UBSan explicitly.
  --linkopt=-fsanitize-link-c++-runtime
  --copt=-fno-sanitize-recover=undefined --copt=-g --copt=-O1
)
bazel_fuzz build "${flags[@]}" //tests/console:protocol_fuzzer 2>&1 |
  grep -v "Cannot export local symbol '__asan" || true
binary="$(bazel_fuzz info "${flags[@]}" bazel-bin)/tests/console/protocol_fuzzer"
if [ ! -x "$binary" ]; then
  echo "fuzz_console.sh: build failed" >&2
  exit 2
fi

work="$(mktemp -d /tmp/annex-fuzz-XXXXXX)"
cp tests/console/corpus/* "$work/"
echo "fuzz_console.sh: running for ${seconds}s, corpus in $work"
status=0
(cd "$work" && "$binary" -max_total_time="$seconds" -max_len=4096 \
  -print_final_stats=1 "$@" "$work") || status=$?
if [ "${ANNEX_FUZZ_KEEP_SERVER:-0}" != 1 ]; then
  # A second Bazel server holds memory on a shared machine: stop it.
  bazel --output_base="$output_base" shutdown || true
fi
if [ "$status" -ne 0 ]; then
  echo "fuzz_console.sh: fuzzer failed (status $status); reproducers in $work" >&2
  exit "$status"
fi
echo "fuzz_console.sh: no failures; corpus grew to $(ls "$work" | wc -l) inputs"
if [ "${ANNEX_FUZZ_KEEP:-0}" = 1 ]; then
  echo "fuzz_console.sh: kept $work"
else
  rm -rf "$work"
fi

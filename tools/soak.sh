#!/bin/bash
# The long soak, for before a release: a churning target under `annex run`
# asked thousands of questions of every kind (tests/soak/soak.py). The test
# suite runs the same driver briefly (tests/soak:soak_test); this runs it
# long, on every Python version present, with the optimized build and under
# ASan+UBSan.
#
#   tools/soak.sh [--questions N] [--builds opt,asan] [--versions default,py312,py313]
#
# Prints one JSON summary line per run (version, build) and exits 1 when any
# run had a failure. Each run takes about N * 0.5 s on a quiet 2-core
# machine with the optimized build, several times that under ASan.
set -uo pipefail
cd "$(dirname "$0")/.."

questions=2000 builds=opt,asan versions=""
while (($#)); do
  case "$1" in
    --questions) questions=$2; shift 2 ;;
    --builds) builds=$2; shift 2 ;;
    --versions) versions=$2; shift 2 ;;
    *) echo "usage: tools/soak.sh [--questions N] [--builds opt,asan] [--versions default,py312,py313]" >&2; exit 2 ;;
  esac
done
bash tools/install_deps.sh || exit 1
[[ -n "$versions" ]] || versions=$(bash tools/python_versions.sh | paste -sd,)

status=0
IFS=, read -ra vs <<<"$versions"
IFS=, read -ra bs <<<"$builds"
for v in "${vs[@]}"; do
  for b in "${bs[@]}"; do
    flags=()
    case "$b" in
      opt) flags=(-c opt); [[ $v != default ]] && flags+=("--config=$v") ;;
      asan) if [[ $v == default ]]; then flags=(--config=asan); else flags=("--config=asan-$v"); fi ;;
      *) echo "soak: unknown build $b" >&2; exit 2 ;;
    esac
    bazel build "${flags[@]}" //monitor/cli:annex >&2 || { status=1; continue; }
    bin=$(bazel info "${flags[@]}" bazel-bin 2>/dev/null)/monitor/cli/annex
    dir=$(mktemp -d /tmp/annex-soak-XXXXXX)
    echo "=== soak: $v $b, $questions questions ($dir) ===" >&2
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
      /usr/bin/python3.11 tests/soak/soak.py --annex "$bin" \
      --questions "$questions" --dir "$dir" |
      sed "s/^{/{\"version\": \"$v\", \"build\": \"$b\", /" || status=1
  done
done
exit $status

#!/bin/bash
# Same-run A/B of two builds of one benchmark: runs them alternately,
# ROUNDS times each, and prints every JSON line tagged with "build":"a"/"b"
# and "round":i, after one comment line that records the command, the
# binaries' commits and the machine's load. The machine is shared: only
# numbers taken in the same run, interleaved, compare.
#
#   bash bench/ab.sh 3 /tmp/old/classify /tmp/new/classify -- --sizes=1000000
#
# Build each side first (bazel build -c opt //bench/classify, then copy
# bazel-bin/bench/classify/classify away before building the other side).
# bench/ab_compare.py compares the two builds of bench/questions' output.
set -euo pipefail
if [[ $# -lt 4 || $4 != "--" ]]; then
  echo "usage: $0 ROUNDS BINARY_A BINARY_B -- ARGS..." >&2
  exit 2
fi
rounds=$1 a=$2 b=$3
shift 4
echo "# bench/ab.sh $rounds $a $b -- $*; a=$(basename "$a") b=$(basename "$b");" \
     "$(date -u +%FT%TZ); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg);" \
     "${AB_NOTE:-}"
for ((i = 1; i <= rounds; i++)); do
  for side in a b; do
    bin=$a
    [[ $side == b ]] && bin=$b
    "$bin" "$@" 2>/dev/null |
      sed -e "s/^{/{\"build\": \"$side\", \"round\": $i, /"
  done
done
echo "# done $(date -u +%FT%TZ); load $(cut -d' ' -f1-3 /proc/loadavg)"

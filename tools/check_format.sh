#!/bin/bash
# Checks that every C/C++ file of ours is formatted as .clang-format says
# (Google style, clang-format 14). Lists the files that differ and exits 1;
# exits 0 when none does.
#
#   tools/check_format.sh          # check only
#   tools/check_format.sh --fix    # rewrite the files that differ
#
# "Ours" is every *.c, *.cc and *.h that git tracks (or would add) outside
# third_party/; bazel-* output links are not in git and so never checked.
set -uo pipefail
cd "$(dirname "$0")/.."

fix=0
case "${1:-}" in
  "") ;;
  --fix) fix=1 ;;
  *) echo "usage: tools/check_format.sh [--fix]" >&2; exit 2 ;;
esac

clang_format=$(command -v clang-format-14 || command -v clang-format || true)
if [[ -z $clang_format ]]; then
  echo "check_format: FAILED: clang-format-14 not installed (tools/install_deps.sh installs it)" >&2
  exit 1
fi

mapfile -t files < <(git ls-files --cached --others --exclude-standard \
  -- '*.c' '*.cc' '*.h' ':!:third_party/**' | sort -u |
  while read -r f; do [[ -f $f ]] && echo "$f"; done)  # not deleted ones

# One clang-format process for all files: --dry-run names each file that
# would change ("<file>:<line>:<col>: error: code should be clang-formatted").
mapfile -t differ < <("$clang_format" --style=file --dry-run --Werror \
  "${files[@]}" 2>&1 | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' | sort -u)

if ((fix)); then
  ((${#differ[@]})) && "$clang_format" --style=file -i "${differ[@]}"
  echo "check_format: reformatted ${#differ[@]} of ${#files[@]} files"
  exit 0
fi
if ((${#differ[@]})); then
  printf '  %s\n' "${differ[@]}"
  echo "check_format: FAILED: ${#differ[@]} of ${#files[@]} files differ from .clang-format (fix: tools/check_format.sh --fix)"
  exit 1
fi
echo "check_format: ${#files[@]} files formatted"

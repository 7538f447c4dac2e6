#!/bin/bash
# Prints the Bazel configs of the Python versions present on this machine,
# one per line ("default" is Debian's 3.11), and says on stderr which are
# absent. pyenv's 3.12.1 and 3.13.0 provide the others.
have_pyenv() {
  local v=$1 prefix=""
  if command -v pyenv >/dev/null 2>&1; then prefix=$(pyenv prefix "$v" 2>/dev/null || true); fi
  [[ -z "$prefix" ]] && prefix="${PYENV_ROOT:-$HOME/.pyenv}/versions/$v"
  [[ -e "$prefix/lib/libpython${v%.*}.so" ]]
}
echo default
for pair in "py312 3.12.1" "py313 3.13.0"; do
  set -- $pair
  if have_pyenv "$2"; then echo "$1"; else echo "python_versions: Python $2 is absent (pyenv $2 not found): --config=$1 skipped" >&2; fi
done

#!/bin/bash
# Installs the Debian packages Annex builds and tests with, when missing.
# Idempotent: does nothing (and needs no network) when all are present.
#
#   tools/install_deps.sh [--fuzz]
#
# --fuzz adds clang-14 and its sanitizer runtimes for the libFuzzer target.
set -euo pipefail

packages=(
  bazel-bootstrap   # Bazel 4.2.3 (WORKSPACE mode, offline)
  g++
  python3.11-dev    # the default target: Debian's CPython 3.11
  libabsl-dev       # Abseil 20220623
  libgtest-dev libgmock-dev
  libedit-dev       # line editing for `annex attach`
  prometheus-cpp-dev  # the watchdog's opt-in Prometheus endpoint (1.0.1)
  # promtool and a Prometheus server (2.42) for tests/cli:annex_metrics_test,
  # which starts its own on a free loopback port; the package's service is
  # not used (where an init system starts it, it listens on :9090).
  prometheus
  procps            # ps/pgrep used by end-to-end tests
  libpython3.11-testsuite  # CPython's own tests: a real program for e2e tests
  clang-format-14   # tools/check_format.sh
  clang-tidy-14     # tools/check_tidy.sh
  chromium          # headless, opens the `annex report` page in a test
  fonts-dejavu-core #   (tests/cli:report_browser_test) and its text
)
if [[ "${1:-}" == "--fuzz" ]]; then
  packages+=(clang-14 libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "install_deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

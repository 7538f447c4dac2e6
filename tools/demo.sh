#!/bin/bash
# The README's main command: installs what is missing, builds the `annex`
# command, runs a small Python service under `annex run`, and talks to it
# from outside through the console like a developer would.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
# What a user runs is the optimized build (debug builds are for tests).
bazel build -c opt //monitor/cli:annex >&2
annex="$(bazel info -c opt bazel-bin 2>/dev/null)/monitor/cli/annex"

runtime=$(mktemp -d /tmp/annex-demo-XXXXXX)
export XDG_RUNTIME_DIR="$runtime"       # private socket dir for this demo
trap 'touch "$runtime/stop"; wait; rm -rf "$runtime"' EXIT

echo "\$ annex run examples/demo/service.py &"
"$annex" run examples/demo/service.py "$runtime/stop" &
pid=$!
# The console's socket appears once the annex is up: waited for as long as
# the service runs (a loaded machine can take seconds), not a fixed time.
until [[ -S "$runtime/annex/$pid.sock" ]]; do
  kill -0 "$pid" 2>/dev/null || { echo "demo: the service ended before its console was up" >&2; exit 1; }
  sleep 0.05
done

echo; echo "\$ annex ps"; "$annex" ps
echo; echo "\$ annex exec $pid 'import sys; print(sys.version)'   # runs in the annex"
"$annex" exec "$pid" 'import sys; print(sys.version)'
echo; echo "\$ annex attach $pid    (typing .threads and .stacks)"
printf '.threads\n.stacks\n' | "$annex" attach "$pid"
touch "$runtime/stop"
wait "$pid"

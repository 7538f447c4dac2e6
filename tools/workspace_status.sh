#!/bin/bash
# Bazel's --workspace_status_command for stamped builds (tools/install.sh,
# tools/build_deb.sh): the commit that annex_build_info reports
# (monitor/watchdog/BUILD). Prints nothing outside a git checkout.
commit=$(git rev-parse HEAD 2>/dev/null) || exit 0
if [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  commit="${commit}-dirty"
fi
echo "STABLE_ANNEX_COMMIT $commit"

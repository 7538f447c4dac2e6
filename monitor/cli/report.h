// `annex report FILE... -o OUT.html`: memory over time from recorded heap
// records (docs/recording.md), as one self-contained HTML page drawn by
// monitor/cli/report.py (embedded in the binary at build time).
#pragma once

namespace annex::cli {

// Runs the command on its arguments (those after "report"); returns the
// exit status: 0 written, 1 bad input (the message on stderr), 2 usage.
// Where: the `annex` command's main thread, Python not yet initialized; it
// initializes an isolated interpreter of its own and finalizes it.
int RunReport(int argc, char** argv);

}  // namespace annex::cli

// The options of `annex run`, read the same way by the `annex` command
// (monitor/cli/main.cc) and by `python3 -m annex run` (the _annex module,
// packaging/python): one parser, one help text, so the two spellings
// cannot drift apart.
//
//   absl::StatusOr<RunFlags> flags = ParseRunFlags(args);  // after "run"
//   if (!flags.ok()) -> "annex run: <message>", exit 2
//   if (flags->help) -> print the usage with kRunOptionsHelp
//   program and its arguments: args[flags->program...]
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "monitor/monitor.h"

namespace annex::cli {

struct RunFlags {
  Options options;     // console on unless --no-console
  std::string python;  // --python PATH, "" when not given
  bool help = false;   // -h or --help: print the usage, run nothing
  // Index in args of the first argument that is not an option of annex run
  // (the program or Python's own options), after a "--" if one was given.
  size_t program = 0;
};

// Reads annex run's options from `args` (the arguments after "run"),
// stopping at the first one that is not an option of annex run. A usage
// error is InvalidArgument with a message for the user ("--on-stall is
// dump, exception or abort"). Where: any thread; touches no Python state.
absl::StatusOr<RunFlags> ParseRunFlags(const std::vector<std::string>& args);

// The "options:" part of annex run's help, one entry per option above
// (without --python, which only the annex command takes).
extern const char kRunOptionsHelp[];

// A byte count: digits with an optional K, M or G suffix (binary units),
// 4096 bytes to 1 PB. Where: any thread.
absl::StatusOr<uint64_t> ParseSize(const std::string& text);

}  // namespace annex::cli

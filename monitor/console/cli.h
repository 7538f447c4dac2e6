// Entry points of the `annex` command's console verbs: `annex ps`,
// `annex attach PID` and `annex exec PID CODE`. The `annex` main() (in
// monitor/cli) parses its arguments and calls these; each returns the
// process exit code.
//
//   // annex exec 1234 'print(len(gc.get_objects()))'
//   absl::StatusOr<pid_t> pid = ParsePidArg(argv[2]);
//   if (!pid.ok()) return kExitUsage;
//   return RunExec(*pid, argv[3], ClientOptions());
//
// Exit codes (README, "Exit codes of the annex command"): kExitOk;
// kExitRaised (the code raised; SystemExit(n) gives n); kExitUsage;
// kExitUnavailable (no such process, cannot connect, connection lost);
// kExitRefused (the server refused: permission, limits); kExitTooLong (the
// reply did not fit the console's frame limit: cut, with a note);
// kExitTimeout (no reply within --timeout: the command was interrupted);
// kExitInterrupted (Ctrl-C).
#pragma once

#include <sys/types.h>

#include <istream>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "monitor/console/client.h"

namespace annex::console {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRaised = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnavailable = 3;
inline constexpr int kExitRefused = 4;
inline constexpr int kExitTooLong = 5;
inline constexpr int kExitTimeout = 124;  // as timeout(1)
inline constexpr int kExitInterrupted = 130;

// A positive decimal pid; InvalidArgument otherwise.
absl::StatusOr<pid_t> ParsePidArg(absl::string_view arg);

// `annex ps`: one line per attachable process of this user (live process
// with a console socket in the runtime directory): pid, uptime, RSS (from
// /proc/PID/status), Python version, program. Removes stale endpoints of
// dead processes on the way. Returns kExitOk (also when there are none).
int RunPs(std::ostream& out, const ClientOptions& options = ClientOptions());

// `annex exec PID CODE`: runs CODE (or all of `in` when CODE is "-") in the
// annex of PID (or in its target when `in_target`, which the server must
// permit), prints the output to `out` and the traceback to `err`. Ctrl-C
// (SIGINT, handled only for the duration of the call) interrupts the code.
int RunExec(pid_t pid, const std::string& code_or_dash,
            const ClientOptions& options, bool in_target, std::istream& in,
            std::ostream& out, std::ostream& err);
// Same with stdin/stdout/stderr and in_target = false.
int RunExec(pid_t pid, const std::string& code_or_dash,
            const ClientOptions& options);

// `annex attach PID`: an interactive console. On a terminal it uses libedit
// (line editing; history in $ANNEX_HISTORY or ~/.annex_history, mode 0600),
// prompts ">>> " and "... " for multi-line statements the way Python's REPL
// does (the server says when a statement is incomplete), and Ctrl-C
// interrupts the running command (or discards the current input) without
// ending the attach. Dot commands: .threads .stacks .interrupt THREAD
// .exec-target CODE .help .quit. Ctrl-D quits. When stdin is not a
// terminal it runs RunAttachScript on stdin/stdout/stderr.
int RunAttach(pid_t pid, const ClientOptions& options);

// `annex stacks PID`: the Python stack of every thread of PID's target,
// answered within a second even while a thread holds the GIL in C (then
// read without the GIL, saying which thread holds it).
int RunStacks(pid_t pid, const ClientOptions& options, std::ostream& out,
              std::ostream& err);

// `annex record PID FILE`: asks PID's annex for one heap record
// (hp.record(), docs/recording.md) per `interval`, through the same request
// as `annex exec`, and appends each to FILE (rotated to FILE.1 at
// `max_bytes`). A reply that is not one whole record (cut at the frame
// limit, or an error) is not written. Ends after `count` records (0: until
// Ctrl-C or the process ends; the records written stay). Progress goes to
// `err`. Returns kExitOk, or the exit code of the failed step (as exec's).
struct RecordOptions {
  absl::Duration interval = absl::Seconds(10);
  int64_t count = 0;
  std::string format = "stat";  // or "jsonl"
  uint64_t max_bytes = uint64_t{64} << 20;
  int64_t top = 20;
};
int RunRecord(pid_t pid, const std::string& path, const RecordOptions& record,
              const ClientOptions& options, std::ostream& err);

// `annex top PID`: a terminal view of PID's heap, refreshed every
// `interval` like top(1): the partition by Clodo (count and size per kind)
// and each kind's growth since the first record, from the same request
// `annex record` makes (hp.record(), one walk each, `kinds` rows kept, the
// rest folded into "<Other>"). On a terminal it draws in the alternate
// screen, fits the kinds to the terminal's rows and cuts lines at its
// columns (redrawn when the window changes size); `q` quits and `g` toggles
// the order (by size now / by growth). When stdout is not a terminal it
// prints one frame per interval, `rows` kinds each, frames separated by an
// empty line. Ctrl-C quits. Ends after `count` frames (0: until q, Ctrl-C
// or the process ends). Returns kExitOk, or the exit code of the failed
// step (as exec's; kExitUnavailable when the process went away).
struct TopOptions {
  absl::Duration interval = absl::Seconds(2);
  int64_t count = 0;
  int64_t kinds = 200;
  int rows = 20;  // kinds shown when stdout is not a terminal
  bool by_growth = false;
};
int RunTop(pid_t pid, const TopOptions& top, const ClientOptions& options);

// The same console without a terminal: reads lines from `in`, no prompts,
// no history; at end of input a pending multi-line statement is completed
// as if followed by an empty line. Returns kExitOk, or kExitUnavailable
// when the connection failed or was lost.
int RunAttachScript(pid_t pid, const ClientOptions& options, std::istream& in,
                    std::ostream& out, std::ostream& err);

}  // namespace annex::console

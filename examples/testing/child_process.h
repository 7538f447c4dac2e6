// Test support: runs an example binary as a child process (no shell) and
// collects what it writes to stdout and stderr, so a test can assert on an
// example's real behaviour.
//
//   std::string bin = RunfilePath("examples/embed_minimal/embed_minimal");
//   ChildResult r = RunChild({bin}, {}, "", absl::Seconds(10));
//   EXPECT_EQ(r.exit_code, 0) << r.err;
//   EXPECT_NE(r.out.find("annex:"), std::string::npos) << r.out;
//
// Not thread-safe: one ChildProcess is used by one thread.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace annex::examples {

// $TEST_SRCDIR/annex/<path>: where Bazel put a data dependency.
std::string RunfilePath(const std::string& path);

// A child started with fork/exec; stdin, stdout and stderr are pipes.
class ChildProcess {
 public:
  ChildProcess() = default;
  // Kills (SIGKILL) and reaps the child if it still runs.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts argv[0] with argv; `env` entries ("NAME=value") are added to (or
  // replace those of) this process's environment. False if it failed.
  bool Start(const std::vector<std::string>& argv,
             const std::vector<std::string>& env = {});

  // Writes `text` to the child's stdin. False on error.
  bool Write(const std::string& text);
  // Closes the child's stdin (end of input).
  void CloseStdin();

  // Reads stdout and stderr until stdout contains `needle` at or after
  // `from`, the child closed both, or `timeout` passed. True if found.
  bool WaitForOutput(const std::string& needle, absl::Duration timeout,
                     size_t from = 0);

  // Sends `signal` to the child.
  void Signal(int signal);

  // Reads until the child exits (or `timeout` passes: then it is killed)
  // and reaps it. Returns the exit code, 128 + signal number when a signal
  // ended it, or -1 when it timed out.
  int Wait(absl::Duration timeout);

  pid_t pid() const { return pid_; }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  // One poll round over stdout and stderr, at most `wait`.
  void Pump(absl::Duration wait);

  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  int stderr_ = -1;
  std::string out_;
  std::string err_;
};

struct ChildResult {
  int exit_code = -1;  // as ChildProcess::Wait
  std::string out;
  std::string err;
};

// Starts argv, writes `input` to its stdin and closes it, and waits for the
// exit (at most `timeout`).
ChildResult RunChild(const std::vector<std::string>& argv,
                     const std::vector<std::string>& env,
                     const std::string& input, absl::Duration timeout);

}  // namespace annex::examples

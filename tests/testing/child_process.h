// Test support: running programs (the `annex` command, the build's Python)
// as child processes and waiting for what they do, for end-to-end tests.
//
// Every wait here is for a condition (the process exits, a file appears,
// `annex ps` lists a program or the program ended): none has a wall-clock
// limit, which a loaded machine passes; a hang meets Bazel's test timeout.
//
//   BackgroundProcess service({AnnexBinary(), "run", app}, "", {env});
//   pid_t pid = WaitForAnnexPs(env, "app.py", service);
//   ProcessResult r = RunProcess({AnnexBinary(), "exec", ...}, "", {env});
//   ...
//   EXPECT_EQ(service.Join().exit_code, 0);
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace annex::testing {

struct ProcessResult {
  int exit_code = -1;  // 128 + the signal when a signal ended it
  std::string out, err;
};

// Runs argv (argv[0] a path) with `input` on stdin and waits for it to exit
// and close its output. The environment is this process's, plus each "K=V"
// of `env`, less each "K" alone. Where: any thread.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::string& input = "",
                         const std::vector<std::string>& env = {});

// `env` for a program that is not built with this test's sanitizers but
// loads a library that is: a plain python3 importing the annex module of
// an ASan build aborts unless the ASan runtime comes first in its library
// list, so under ASan this adds LD_PRELOAD of the runtime this process
// loaded. Elsewhere, `env` as it is. Where: any thread.
std::vector<std::string> WithSanitizerRuntime(std::vector<std::string> env);

// A process started as RunProcess starts one, whose output a thread of its
// own reads while the test talks to the program. End the program, then
// Join() for its result; the destructor kills (SIGKILL) a program still
// running (a test that failed before ending it) and waits for it.
class BackgroundProcess {
 public:
  // `input` is written to stdin, which is then closed.
  explicit BackgroundProcess(const std::vector<std::string>& argv,
                             std::string input = "",
                             const std::vector<std::string>& env = {});
  // A program whose stdin stays open for Write() until CloseInput() (or
  // Join()): a console client, or a server that runs until its input
  // ends. Ignores SIGPIPE in this process from then on.
  struct OpenInput {};
  BackgroundProcess(OpenInput, const std::vector<std::string>& argv,
                    const std::vector<std::string>& env = {});
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  // True once the process exited and its output was read. Where: any thread.
  bool ended() const;
  // Waits until the program's stdout holds `needle` at or after `from`
  // (true) or it ended without (false). Where: any thread.
  bool WaitForOutput(const std::string& needle, size_t from = 0);
  // What the program wrote so far. Where: any thread.
  std::string out() const;
  std::string err() const;
  // The program's pid (-1 if it could not start); valid until Join().
  pid_t pid() const { return pid_; }
  // Sends `sig` to the process unless it ended. Where: any thread.
  void Signal(int sig);
  // Writes `text` to the stdin of an OpenInput program (false once it is
  // closed or the program stopped reading). Where: the thread that made
  // this object.
  bool Write(const std::string& text);
  // Closes an OpenInput program's stdin (end of input). Where: the thread
  // that made this object.
  void CloseInput();
  // Closes an OpenInput program's stdin, then waits for the process to
  // end; its result. Where: the thread that made this object.
  const ProcessResult& Join();

 private:
  // Waits are Conditions over the state it guards (output, ended_).
  mutable absl::Mutex mu_;
  void Start(const std::vector<std::string>& argv, std::string input,
             const std::vector<std::string>& env, bool keep_input);

  pid_t pid_ = -1;  // unreaped until ended_
  int input_ = -1;  // an OpenInput program's stdin, until CloseInput()
  ProcessResult result_ ABSL_GUARDED_BY(mu_);  // grows; final once ended_
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// A program run on the slave side of a new pseudo-terminal of `rows` x
// `columns`, as a person runs an interactive command; a thread keeps what it
// writes to the terminal. The environment is as RunProcess makes it. The
// destructor kills (SIGKILL) a program that has not exited and waits for it.
class TerminalProcess {
 public:
  TerminalProcess(const std::vector<std::string>& argv,
                  const std::vector<std::string>& env, int rows = 24,
                  int columns = 80);
  ~TerminalProcess();
  TerminalProcess(const TerminalProcess&) = delete;
  TerminalProcess& operator=(const TerminalProcess&) = delete;

  bool started() const { return pid_ > 0; }
  // A new window size; the kernel sends SIGWINCH to the program.
  void Resize(int rows, int columns);
  // Types `keys` (a terminal's bytes: "\r" is Enter, "\x03" Ctrl-C).
  // Where: any thread.
  bool Type(const std::string& keys);
  // Waits until what the program wrote at or after offset `from` satisfies
  // `done`, or the terminal closed; returns all it wrote. Where: any thread.
  std::string WaitFor(size_t from,
                      const std::function<bool(const std::string&)>& done);
  // WaitFor until `text` appears at or after `from`.
  std::string WaitForText(size_t from, const std::string& text);
  // How many bytes the program wrote so far.
  size_t size() const;
  // Waits for the program to exit: its status (128 + N when signal N
  // ended it). Where: the thread that made this object.
  int Wait();

 private:
  pid_t pid_ = -1;
  int master_ = -1;
  int status_ = -1;
  mutable absl::Mutex mu_;
  std::string screen_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reader_;
};

// $TEST_SRCDIR/annex/<path>: where Bazel put a data dependency.
std::string Runfile(const std::string& path);

// The `annex` binary of this build (a data dependency of the test).
std::string AnnexBinary();

bool FileExists(const std::string& path);
// The bytes of the file at `path` ("" when it cannot be read).
std::string ReadFile(const std::string& path);
// A new directory /tmp/annex-<name>-XXXXXX, mode 0700; "" when it cannot be
// made.
std::string NewTempDir(const std::string& name);
// A new directory holding this build's Python package `annex` as
// tools/install.sh lays it out (annex/__init__.py, annex/__main__.py and
// annex/_annex.so), for PYTHONPATH; "" when it cannot be made. The test
// needs //packaging/python:_annex.so and the two .py files as data.
std::string PythonModuleDir(const std::string& name);
// Returns once `path` exists.
void WaitForFile(const std::string& path);

// The pid on the first line of `annex ps` output `ps_out` that contains
// `needle`, or 0 when none does.
pid_t ListedPid(const std::string& ps_out, const std::string& needle);
// Asks `annex ps` (with `env`, e.g. "XDG_RUNTIME_DIR=DIR") until a line
// contains `needle` and returns its pid, or returns 0 once `program` (the
// process expected to show up) ended without being listed.
pid_t WaitForAnnexPs(const std::string& env, const std::string& needle,
                     const BackgroundProcess& program);

}  // namespace annex::testing

// The console example end to end, as a developer would do it by hand, but
// without a shell: `annex run --allow-exec-target service.py` in the
// background, then `annex exec PID CODE` and `annex attach PID` with a
// script of console lines on (non-terminal) stdin. Checks what each printed
// and what the service did.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace annex::examples {
namespace {

using ::annex::testing::BackgroundProcess;
using ::annex::testing::ProcessResult;
using ::annex::testing::Runfile;
using ::annex::testing::RunProcess;

constexpr char kAnnex[] = "monitor/cli/annex";
constexpr char kService[] = "examples/console/service.py";

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// The lines of `.stacks` output that belong to the thread named `name`:
// from its header to the blank line after it (each line with its '\n').
std::string StackOf(const std::string& stacks, const std::string& name) {
  size_t start = stacks.find("\"" + name + "\" (most recent call last):\n");
  if (start == std::string::npos) return "";
  size_t end = stacks.find("\n\n", start);
  return stacks.substr(start, end == std::string::npos ? end : end + 1 - start);
}

// The first line of `out` that is a whole number (what `.exec-target
// len(cache)` printed), or -1.
int64_t FirstNumber(const std::string& out) {
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    int64_t n;
    if (absl::SimpleAtoi(out.substr(start, end - start), &n)) return n;
    start = end + 1;
  }
  return -1;
}

class ConsoleSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A short runtime directory: a Unix socket path must fit in 108 bytes,
    // and Bazel's TEST_TMPDIR is deep. mkdtemp makes it 0700, as the
    // console requires of the directory it creates its own in.
    char dir[] = "/tmp/annex-ex-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    runtime_dir_ = dir;
    env_ = {"XDG_RUNTIME_DIR=" + runtime_dir_};
    annex_ = Runfile(kAnnex);
  }

  void TearDown() override {
    // The server removes its files when it stops; a killed one leaves them.
    std::string dir = runtime_dir_ + "/annex";
    if (pid_ > 0) {
      for (const char* ext : {".sock", ".info", ".token"}) {
        ::unlink(absl::StrCat(dir, "/", pid_, ext).c_str());
      }
    }
    ::rmdir(dir.c_str());
    ::rmdir(runtime_dir_.c_str());
  }

  // Starts `annex run [flags] service.py 600` and waits for its socket
  // (or for the service to end without one).
  std::unique_ptr<BackgroundProcess> StartService(bool allow_exec_target) {
    std::vector<std::string> argv = {annex_, "run"};
    if (allow_exec_target) argv.push_back("--allow-exec-target");
    argv.push_back(Runfile(kService));
    argv.push_back("600");  // seconds: the service ends by itself at worst
    auto service = std::make_unique<BackgroundProcess>(argv, "", env_);
    pid_ = service->pid();
    if (!service->WaitForOutput("service: pid ")) return service;
    socket_ = absl::StrCat(runtime_dir_, "/annex/", pid_, ".sock");
    while (!Exists(socket_) && !service->ended()) ::usleep(20000);
    return service;
  }

  // `annex attach PID` with `lines` on stdin.
  ProcessResult Attach(const std::string& lines) {
    return RunProcess({annex_, "attach", absl::StrCat(pid_)}, lines, env_);
  }

  std::string runtime_dir_;
  std::vector<std::string> env_;
  std::string annex_;
  std::string socket_;
  pid_t pid_ = -1;
};

TEST_F(ConsoleSessionTest, ExecThreadsStacksAndInterruptAWorker) {
  std::unique_ptr<BackgroundProcess> started = StartService(true);
  BackgroundProcess& service = *started;
  ASSERT_TRUE(Exists(socket_)) << service.out() << service.err();
  EXPECT_TRUE(Contains(service.out(), absl::StrCat("service: pid ", pid_,
                                                   " running fetcher-1, "
                                                   "fetcher-2, janitor\n")))
      << service.out();

  // annex exec: code runs in the annex, in the service's own process.
  ProcessResult exec =
      RunProcess({annex_, "exec", absl::StrCat(pid_),
                  "import os, sys\nprint('pid', os.getpid(), 'Python', "
                  "sys.version.split()[0])"},
                 "", env_);
  ASSERT_EQ(exec.exit_code, 0) << exec.out << exec.err;
  EXPECT_TRUE(Contains(exec.out, absl::StrCat("pid ", pid_, " Python 3.")))
      << exec.out;
  // A raising command: exit status 1, traceback on stderr.
  ProcessResult raised =
      RunProcess({annex_, "exec", absl::StrCat(pid_), "cache"}, "", env_);
  EXPECT_EQ(raised.exit_code, 1) << raised.out << raised.err;
  EXPECT_TRUE(Contains(raised.err, "NameError: name 'cache' is not defined"))
      << raised.err;

  // annex attach, scripted: threads, stacks, the cache from the target.
  ProcessResult first = Attach(".threads\n.stacks\n.exec-target len(cache)\n");
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  for (const char* name : {"\"MainThread\": ", "\"fetcher-1\": ",
                           "\"fetcher-2\": ", "\"janitor\": "}) {
    EXPECT_TRUE(Contains(first.out, name)) << name << "\n" << first.out;
  }
  std::string stack = StackOf(first.out, "fetcher-1");
  EXPECT_TRUE(Contains(stack, "service.py\", line")) << first.out;
  EXPECT_TRUE(Contains(stack, ", in fetch_prices\n")) << first.out;
  EXPECT_TRUE(Contains(StackOf(first.out, "MainThread"), ", in main\n"))
      << first.out;
  int64_t cache_before = FirstNumber(first.out);
  EXPECT_GT(cache_before, 0) << first.out;

  // .interrupt: KeyboardInterrupt in fetcher-1, which says so and ends.
  ProcessResult interrupt = Attach(".interrupt fetcher-1\n");
  ASSERT_EQ(interrupt.exit_code, 0) << interrupt.out << interrupt.err;
  EXPECT_TRUE(Contains(interrupt.out,
                       "KeyboardInterrupt raised in 1 target thread(s)\n"))
      << interrupt.out << interrupt.err;
  EXPECT_TRUE(service.WaitForOutput("service: fetcher-1 got KeyboardInterrupt"))
      << service.out() << service.err();
  // The thread ends right after it printed that; the others go on.
  ProcessResult after = Attach(".threads\n.exec-target len(cache)\n");
  while (Contains(after.out, "\"fetcher-1\"") && !service.ended()) {
    ::usleep(50000);
    after = Attach(".threads\n.exec-target len(cache)\n");
  }
  EXPECT_FALSE(Contains(after.out, "\"fetcher-1\"")) << after.out;
  EXPECT_TRUE(Contains(after.out, "\"fetcher-2\": ")) << after.out;
  EXPECT_GT(FirstNumber(after.out), cache_before) << after.out;

  // Ctrl-C ends the service cleanly; the monitor removes its socket.
  service.Signal(SIGINT);
  EXPECT_EQ(service.Join().exit_code, 0) << service.out() << service.err();
  EXPECT_TRUE(Contains(service.out(), "service: Ctrl-C, shutting down\n"))
      << service.out();
  EXPECT_TRUE(Contains(service.out(), "service: stopped with "))
      << service.out();
  EXPECT_FALSE(Exists(socket_));
}

TEST_F(ConsoleSessionTest, InterruptNeedsAllowExecTarget) {
  std::unique_ptr<BackgroundProcess> started = StartService(false);
  BackgroundProcess& service = *started;
  ASSERT_TRUE(Exists(socket_)) << service.out() << service.err();
  ProcessResult r = Attach(".threads\n.interrupt fetcher-1\n.exec-target 1\n");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "\"fetcher-1\": ")) << r.out;
  EXPECT_FALSE(Contains(r.out, "KeyboardInterrupt raised")) << r.out;
  // Both refused, with the reason (the session goes on after each).
  EXPECT_TRUE(Contains(r.err,
                       "raising an exception in a target thread is not "
                       "permitted by this server (allow_exec_target is off"))
      << r.err;
  EXPECT_TRUE(Contains(r.err,
                       "running code in the target is not permitted by "
                       "this server (allow_exec_target is off"))
      << r.err;
  service.Signal(SIGINT);
  EXPECT_EQ(service.Join().exit_code, 0) << service.out() << service.err();
  // fetcher-1 was never interrupted.
  EXPECT_FALSE(Contains(service.out(), "KeyboardInterrupt after"))
      << service.out();
}

}  // namespace
}  // namespace annex::examples

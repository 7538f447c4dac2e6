// End to end across processes: a server process (console_demo serve, fake
// executor) and the `annex` entry points, including `attach` on a real
// pseudo-terminal with Ctrl-C, and the socket's life cycle when the server
// exits cleanly or is killed.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "monitor/console/cli.h"
#include "monitor/console/internal/runtime_dir.h"
#include "tests/console/fake_executor.h"

namespace annex::console::testing {
namespace {

constexpr char kDemo[] = "tests/console/console_demo";

// `console_demo serve` as a child process; alive while its stdin is open.
class ServerProcess {
 public:
  explicit ServerProcess(const std::string& dir) {
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::close(in[1]);
      ::close(out[0]);
      std::string dir_flag = "--dir=" + dir;
      ::execl(kDemo, kDemo, "serve", dir_flag.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    // Wait for "serving on ..." so the socket exists.
    char buf[512];
    ssize_t n = ::read(out[0], buf, sizeof(buf));
    ready_ = n > 0;
    ::close(out[0]);
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      Finish();
    }
  }
  // Closes stdin: the server stops and exits normally.
  int Finish() {
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
    int status = 0;
    if (pid_ > 0) ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  void Kill() {
    ::kill(pid_, SIGKILL);
    Finish();
  }
  pid_t pid() const { return pid_; }
  bool ready() const { return ready_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  bool ready_ = false;
};

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Reads from `fd` into `*all` until `needle` appears at or after `from`
// (or 10 s pass); returns all read.
std::string ReadUntil(int fd, const std::string& needle, std::string* all,
                      size_t from = 0) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (all->find(needle, from) == std::string::npos &&
         absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    all->append(buf, static_cast<size_t>(n));
  }
  return *all;
}

TEST(EndToEndTest, ExecAndPsAgainstAnotherProcess) {
  TempDir dir;
  ServerProcess server(dir.path());
  ASSERT_TRUE(server.ready());
  ClientOptions o;
  o.socket_dir = dir.path();
  std::istringstream in;
  std::ostringstream out, err;
  EXPECT_EQ(RunExec(server.pid(), "hello", o, false, in, out, err), kExitOk);
  EXPECT_EQ(out.str(), "hello\n");
  std::ostringstream ps;
  EXPECT_EQ(RunPs(ps, o), kExitOk);
  EXPECT_NE(ps.str().find(absl::StrCat(server.pid())), std::string::npos);
  EXPECT_NE(ps.str().find("console_demo serve"), std::string::npos);

  std::string sock = internal::SocketPath(dir.path(), server.pid());
  EXPECT_TRUE(Exists(sock));
  int status = server.Finish();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_FALSE(Exists(sock));  // removed by the server's destructor
}

TEST(EndToEndTest, KilledServerLeavesAStaleSocketThatPsCleans) {
  TempDir dir;
  ServerProcess server(dir.path());
  ASSERT_TRUE(server.ready());
  pid_t pid = server.pid();
  std::string sock = internal::SocketPath(dir.path(), pid);
  server.Kill();
  EXPECT_TRUE(Exists(sock));
  ClientOptions o;
  o.socket_dir = dir.path();
  std::istringstream in;
  std::ostringstream out, err;
  EXPECT_EQ(RunExec(pid, "x", o, false, in, out, err), kExitUnavailable);
  std::ostringstream ps;
  EXPECT_EQ(RunPs(ps, o), kExitOk);
  EXPECT_NE(ps.str().find("no attachable processes"), std::string::npos);
  EXPECT_FALSE(Exists(sock));
}

TEST(EndToEndTest, AttachOnATerminalInterruptsWithCtrlCAndKeepsTheSession) {
  TempDir dir;
  ServerProcess server(dir.path());
  ASSERT_TRUE(server.ready());
  std::string history = dir.path() + "/history";
  int master = -1;
  pid_t child = ::forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::setenv("ANNEX_HISTORY", history.c_str(), 1);
    ::setenv("TERM", "dumb", 1);
    std::string pid = absl::StrCat(server.pid());
    std::string dir_flag = "--dir=" + dir.path();
    ::execl(kDemo, kDemo, "attach", pid.c_str(), dir_flag.c_str(), nullptr);
    ::_exit(127);
  }
  std::string all;
  ReadUntil(master, ">>> ", &all);
  ASSERT_NE(all.find("Annex console"), std::string::npos) << all;
  auto type = [&](const std::string& keys) {
    ASSERT_EQ(::write(master, keys.data(), keys.size()),
              static_cast<ssize_t>(keys.size()));
  };
  // Multi-line statement: the continuation prompt, then the block's echo.
  all.clear();
  type("if 1:\r");
  ReadUntil(master, "... ", &all);
  EXPECT_NE(all.find("... "), std::string::npos) << all;
  type("  x\r\r");
  ReadUntil(master, ">>> ", &all);
  // A command that runs until interrupted, then Ctrl-C.
  all.clear();
  type("sleep\r");
  ReadUntil(master, "sleep", &all);
  absl::SleepFor(absl::Milliseconds(300));
  type("\x03");
  ReadUntil(master, "KeyboardInterrupt", &all);
  EXPECT_NE(all.find("KeyboardInterrupt"), std::string::npos) << all;
  // Ctrl-C at the prompt drops the half-typed line, like Python's REPL.
  ReadUntil(master, ">>> ", &all, all.find("KeyboardInterrupt"));
  all.clear();
  type("half-typed");
  ReadUntil(master, "half-typed", &all);
  type("\x03");
  ReadUntil(master, "KeyboardInterrupt", &all);
  ReadUntil(master, ">>> ", &all, all.find("KeyboardInterrupt"));
  // The session lives on.
  all.clear();
  type("after\r");
  ReadUntil(master, "after\r\nafter", &all);
  EXPECT_NE(all.find("after\r\nafter"), std::string::npos) << all;
  EXPECT_EQ(all.find("half-typed"), std::string::npos) << all;
  // Ctrl-D at the next prompt. (Typed ahead while a command runs, the tty
  // is in cooked mode and the kernel, not libedit, takes the ^D.)
  ReadUntil(master, ">>> ", &all, all.find("after\r\nafter"));
  type("\x04");
  int status = 0;
  pid_t waited = 0;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while ((waited = ::waitpid(child, &status, WNOHANG)) == 0 &&
         absl::Now() < deadline) {
    std::string drain;
    ReadUntil(master, "\n", &drain);
  }
  ASSERT_EQ(waited, child) << "attach did not exit on Ctrl-D";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ::close(master);
  // History kept, owner-only.
  struct stat st;
  ASSERT_EQ(::stat(history.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  absl::StatusOr<std::string> text = internal::ReadSmallFile(history);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("sleep"), std::string::npos);
}

}  // namespace
}  // namespace annex::console::testing

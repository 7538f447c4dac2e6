// End to end across processes: a server process (console_demo serve, fake
// executor) and the `annex` entry points, including `attach` on a real
// pseudo-terminal with Ctrl-C, and the socket's life cycle when the server
// exits cleanly or is killed.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "monitor/console/cli.h"
#include "monitor/console/internal/runtime_dir.h"
#include "tests/console/fake_executor.h"
#include "tests/testing/child_process.h"

namespace annex::console::testing {
namespace {

constexpr char kDemo[] = "tests/console/console_demo";

// `console_demo serve` as a child process, serving once it says so; it
// runs until its stdin closes.
class ServerProcess {
 public:
  explicit ServerProcess(const std::string& dir)
      : process_(annex::testing::BackgroundProcess::OpenInput{},
                 {kDemo, "serve", "--dir=" + dir}),
        pid_(process_.pid()),
        ready_(process_.WaitForOutput("serving on ")) {}
  // Waits until a "sleep" command runs in the server (however long that
  // takes): true, or false if the server ended first.
  bool WaitForSleep() { return process_.WaitForOutput("sleep started"); }
  // Closes stdin: the server stops and exits. Its exit status.
  int Finish() { return process_.Join().exit_code; }
  void Kill() {
    process_.Signal(SIGKILL);
    process_.Join();
  }
  pid_t pid() const { return pid_; }
  bool ready() const { return ready_; }

 private:
  annex::testing::BackgroundProcess process_;
  pid_t pid_;
  bool ready_;
};

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
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
  EXPECT_EQ(server.Finish(), 0);
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
  annex::testing::TerminalProcess attach(
      {kDemo, "attach", absl::StrCat(server.pid()), "--dir=" + dir.path()},
      {"ANNEX_HISTORY=" + history, "TERM=dumb"});
  ASSERT_TRUE(attach.started());
  std::string all = attach.WaitForText(0, ">>> ");
  ASSERT_NE(all.find("Annex console"), std::string::npos) << all;
  // Each step types, then waits for what the terminal shows after it.
  size_t mark = 0;
  auto type_and_wait = [&](const std::string& keys, const std::string& text) {
    mark = attach.size();
    EXPECT_TRUE(attach.Type(keys));
    all = attach.WaitForText(mark, text).substr(mark);
    return all.find(text) != std::string::npos;
  };
  // Multi-line statement: the continuation prompt, then the block's echo.
  EXPECT_TRUE(type_and_wait("if 1:\r", "... ")) << all;
  EXPECT_TRUE(type_and_wait("  x\r\r", ">>> ")) << all;
  // A command that runs until interrupted, then Ctrl-C once it runs in the
  // server (a Ctrl-C from before the command started is dropped, and
  // nothing else ends the command).
  EXPECT_TRUE(type_and_wait("sleep\r", "sleep")) << all;
  ASSERT_TRUE(server.WaitForSleep());
  EXPECT_TRUE(type_and_wait("\x03", "KeyboardInterrupt")) << all;
  attach.WaitForText(mark + all.find("KeyboardInterrupt"), ">>> ");
  // Ctrl-C at the prompt drops the half-typed line, like Python's REPL.
  EXPECT_TRUE(type_and_wait("half-typed", "half-typed")) << all;
  EXPECT_TRUE(type_and_wait("\x03", "KeyboardInterrupt")) << all;
  attach.WaitForText(mark + all.find("KeyboardInterrupt"), ">>> ");
  // The session lives on.
  EXPECT_TRUE(type_and_wait("after\r", "after\r\nafter")) << all;
  EXPECT_EQ(all.find("half-typed"), std::string::npos) << all;
  // Ctrl-D at the next prompt. (Typed ahead while a command runs, the tty
  // is in cooked mode and the kernel, not libedit, takes the ^D.)
  attach.WaitForText(mark + all.find("after\r\nafter"), ">>> ");
  EXPECT_TRUE(attach.Type("\x04"));
  EXPECT_EQ(attach.Wait(), 0) << "attach did not exit on Ctrl-D";
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

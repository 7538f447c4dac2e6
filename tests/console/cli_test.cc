// The `annex ps/exec/attach` entry points against a real server with a fake
// executor (attach in its script mode; the terminal mode is libedit's).
#include "monitor/console/cli.h"

#include <unistd.h>

#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/console/server_test_util.h"

namespace annex::console::testing {
namespace {

struct CliRun {
  int code;
  std::string out, err;
};

CliRun Exec(TestServer& t, const std::string& code, bool in_target = false,
            const std::string& stdin_text = "") {
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  int rc = RunExec(::getpid(), code, t.Options(), in_target, in, out, err);
  return {rc, out.str(), err.str()};
}

TEST(CliTest, ExecPrintsOutputAndExitsZero) {
  TestServer t;
  CliRun r = Exec(t, "print(1)");
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "print(1)\n");
  EXPECT_EQ(r.err, "");
}

TEST(CliTest, ExecThatRaisesExitsNonZeroWithTraceback) {
  TestServer t;
  CliRun r = Exec(t, "raise oops");
  EXPECT_EQ(r.code, kExitRaised);
  EXPECT_NE(r.err.find("RuntimeError: oops"), std::string::npos);
  EXPECT_EQ(Exec(t, "exit 7").code, 7);
}

TEST(CliTest, ExecDashReadsCodeFromStdin) {
  TestServer t;
  CliRun r = Exec(t, "-", false, "from stdin");
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "from stdin\n");
}

TEST(CliTest, ExecInTargetNeedsPermission) {
  {
    TestServer t;
    CliRun r = Exec(t, "x = 1", /*in_target=*/true);
    EXPECT_EQ(r.code, kExitRefused);
    EXPECT_NE(r.err.find("not permitted"), std::string::npos);
  }
  {
    ServerOptions o;
    o.allow_exec_target = true;
    TestServer t(o);
    CliRun r = Exec(t, "x = 1", /*in_target=*/true);
    EXPECT_EQ(r.code, kExitOk);
    EXPECT_EQ(r.out, "target:x = 1\n");
  }
}

TEST(CliTest, ExecWithoutServerIsUnavailable) {
  TempDir dir;
  ClientOptions o;
  o.socket_dir = dir.path();
  std::istringstream in;
  std::ostringstream out, err;
  EXPECT_EQ(RunExec(::getpid(), "1", o, false, in, out, err), kExitUnavailable);
  EXPECT_NE(err.str().find("cannot attach"), std::string::npos);
}

TEST(CliTest, PsListsThisProcess) {
  TestServer t;
  std::ostringstream out;
  EXPECT_EQ(RunPs(out, t.Options()), kExitOk);
  std::string text = out.str();
  EXPECT_NE(text.find("PID"), std::string::npos) << text;
  EXPECT_NE(text.find(absl::StrCat(::getpid())), std::string::npos) << text;
  EXPECT_NE(text.find("3.11.test"), std::string::npos) << text;
  EXPECT_NE(text.find("test-program"), std::string::npos) << text;
  EXPECT_NE(text.find("iB"), std::string::npos) << text;  // RSS
}

TEST(CliTest, PsWithNothingToShow) {
  TempDir dir;
  ClientOptions o;
  o.socket_dir = dir.path();
  std::ostringstream out;
  EXPECT_EQ(RunPs(out, o), kExitOk);
  EXPECT_NE(out.str().find("no attachable processes"), std::string::npos);
}

TEST(CliTest, AttachScriptHandlesMultiLineAndDotCommands) {
  TestServer t;
  std::istringstream in(
      "if 1:\n"
      "  x\n"
      "\n"
      "print\n"
      ".threads\n"
      ".stacks\n"
      ".bogus\n"
      ".exec-target y\n"
      ".quit\n"
      "never sent\n");
  std::ostringstream out, err;
  EXPECT_EQ(RunAttachScript(::getpid(), t.Options(), in, out, err), kExitOk);
  EXPECT_EQ(out.str(), "if 1:\n  x\n\nprint\nthreads:\nstacks:\n");
  EXPECT_NE(err.str().find("unknown command .bogus"), std::string::npos);
  EXPECT_NE(err.str().find("not permitted"), std::string::npos);
  // Two "incomplete" round trips, the block, print, .threads, .stacks.
  EXPECT_EQ(t.executor.executed(), 6);
}

TEST(CliTest, AttachScriptClosesAnOpenBlockAtEndOfInput) {
  TestServer t;
  std::istringstream in("for i in x:\n  pass");
  std::ostringstream out, err;
  EXPECT_EQ(RunAttachScript(::getpid(), t.Options(), in, out, err), kExitOk);
  EXPECT_EQ(out.str(), "for i in x:\n  pass\n\n");
}

TEST(CliTest, ParsePidArg) {
  EXPECT_EQ(*ParsePidArg("1234"), 1234);
  for (const char* bad : {"", "0", "-5", "12a", "1 ", "99999999999"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParsePidArg(bad).status())) << bad;
  }
}

}  // namespace
}  // namespace annex::console::testing

// Reference points through the console itself: two console clients (real
// socket connections, each with its own hp) and a host session set their
// reference points at different moments, and each heap() shows what came
// after its own; the host's setref changes no client's answer.
#include <Python.h>
#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "monitor/console/client.h"
#include "monitor/monitor.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetLong;

// One console command as `annex exec` sends it. Where: the test's thread,
// GIL held (released while the annex answers).
std::string Ask(console::Client& client, const std::string& code) {
  absl::StatusOr<console::ReplyMessage> reply;
  Py_BEGIN_ALLOW_THREADS;
  reply = client.Call(console::RequestKind::kExec, code);
  Py_END_ALLOW_THREADS;
  EXPECT_TRUE(reply.ok()) << reply.status();
  if (!reply.ok()) return "";
  EXPECT_EQ(reply->status, console::ReplyStatus::kOk) << reply->error;
  return reply->output;
}

TEST(HpConsoleRefTest, ClientsAndTheHostEachHaveTheirOwnReferencePoint) {
  char dir_template[] = "/tmp/annex-ref-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  Monitor monitor;
  Options options;
  options.console = true;
  options.console_socket_dir = dir;
  ASSERT_TRUE(monitor.Start(options).ok());
  console::ClientOptions copts;
  copts.socket_dir = dir;
  absl::StatusOr<std::unique_ptr<console::Client>> a, b;
  Py_BEGIN_ALLOW_THREADS;
  a = console::Client::ConnectToPid(getpid(), copts);
  b = console::Client::ConnectToPid(getpid(), copts);
  Py_END_ALLOW_THREADS;
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();

  Ask(**a, "hp.setref()\n");
  ASSERT_TRUE(
      RunTargetCode("cr_a = [object() for i in range(50)]\n"
                    "cr_a_id = id(cr_a)\n"));
  Ask(**b, "hp.setref()\n");
  ASSERT_TRUE(
      RunTargetCode("cr_b = [object() for i in range(70)]\n"
                    "cr_b_id = id(cr_b)\n"));
  // The host's own session sets its reference point last.
  ASSERT_TRUE(monitor.ExecInAnnex("hp.setref()", 1).ok());
  ASSERT_TRUE(
      RunTargetCode("cr_c = [object() for i in range(30)]\n"
                    "cr_c_id = id(cr_c)\n"));
  const std::string ask = absl::StrCat(
      "h = hp.heap()\nprint(", TargetLong("cr_a_id"), " in h, ",
      TargetLong("cr_b_id"), " in h, ", TargetLong("cr_c_id"), " in h)\n");
  EXPECT_EQ(Ask(**a, ask), "True True True\n");
  EXPECT_EQ(Ask(**b, ask), "False True True\n");
  auto host = monitor.ExecInAnnex(
      absl::StrCat("h = hp.heap(); print(", TargetLong("cr_a_id"), " in h, ",
                   TargetLong("cr_b_id"), " in h, ", TargetLong("cr_c_id"),
                   " in h)"),
      1);
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_EQ(*host, "False False True\n");
  // A client's clearref leaves the others as they were.
  Ask(**a, "hp.clearref()\n");
  EXPECT_EQ(Ask(**b, ask), "False True True\n");
  EXPECT_EQ(Ask(**a, ask), "True True True\n");
  // Stop while the clients leave, with the GIL held (allowed): the
  // namespaces of the clients are dropped on the annex thread meanwhile.
  a->reset();
  b->reset();
  EXPECT_TRUE(monitor.Stop().ok());
  ASSERT_TRUE(RunTargetCode("del cr_a, cr_b, cr_c\n"));
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace annex

// The public Monitor API from a host's point of view.
#include "monitor/monitor.h"

#include <Python.h>

#include <thread>

#include "gtest/gtest.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

TEST(MonitorTest, ExecInAnnexReturnsOutputAndErrors) {
  Monitor monitor;
  ASSERT_TRUE(monitor.Start().ok());
  auto out = monitor.ExecInAnnex("print(6 * 7)");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "42\n");
  auto err = monitor.ExecInAnnex("1/0");
  EXPECT_EQ(err.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(err.status().message().find("ZeroDivisionError"),
            std::string::npos);
  auto again = monitor.ExecInAnnex("print('after error')");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, "after error\n");
  EXPECT_TRUE(monitor.Stop().ok());
}

TEST(MonitorTest, WatchdogOptionEndsAStuckLoopAndCountsTheStall) {
  Monitor monitor;
  Options options;
  options.watchdog = true;
  options.watchdog_options.stall_timeout = absl::Milliseconds(300);
  options.watchdog_options.raise_exception = true;  // TimeoutError
  ASSERT_TRUE(monitor.Start(options).ok());
  // A loop the host never ends itself; the watchdog's exception ends it.
  EXPECT_FALSE(::annex::testing::RunTargetCode(
      "import time\n"
      "_deadline = time.monotonic() + 60\n"
      "while time.monotonic() < _deadline: pass\n"));
  EXPECT_GE(monitor.Metrics().stalls, 1);
  EXPECT_GE(monitor.Metrics().exceptions_raised, 1);
  EXPECT_TRUE(monitor.Stop().ok());
  EXPECT_FALSE(monitor.Metrics().running);
}

}  // namespace
}  // namespace annex

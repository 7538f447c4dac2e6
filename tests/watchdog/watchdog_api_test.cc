// The Watchdog API's contract: status codes, restart, metrics.
#include "gtest/gtest.h"
#include "monitor/watchdog/watchdog.h"
#include "tests/testing/python_main.h"

namespace annex::watchdog {
namespace {

TEST(WatchdogApiTest, RejectsBadOptions) {
  Watchdog watchdog;
  Options options;
  options.stall_timeout = absl::Milliseconds(100);
  options.heartbeat_interval = absl::Milliseconds(80);
  EXPECT_EQ(watchdog.Start(options).code(), absl::StatusCode::kInvalidArgument);
  options.heartbeat_interval = absl::ZeroDuration();
  options.max_stack_depth = 0;
  EXPECT_EQ(watchdog.Start(options).code(), absl::StatusCode::kInvalidArgument);
  options.max_stack_depth = 10;
  options.exception_type = Py_None;
  EXPECT_EQ(watchdog.Start(options).code(), absl::StatusCode::kInvalidArgument);
  options = Options{};
  options.stall_timeout = absl::ZeroDuration();
  options.memory_interval = absl::ZeroDuration();
  EXPECT_EQ(watchdog.Start(options).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(watchdog.running());
}

TEST(WatchdogApiTest, ReportsUnopenableReportFile) {
  Watchdog watchdog;
  Options options;
  options.report_path = "/nonexistent-dir/annex.report";
  EXPECT_EQ(watchdog.Start(options).code(), absl::StatusCode::kNotFound);
}

TEST(WatchdogApiTest, StartsStopsAndRestarts) {
  Watchdog watchdog;
  EXPECT_EQ(watchdog.Stop().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(watchdog.Start(Options{}).ok());
  EXPECT_TRUE(watchdog.running());
  EXPECT_TRUE(watchdog.Metrics().running);
  EXPECT_EQ(watchdog.Start(Options{}).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(watchdog.Stop().ok());
  EXPECT_FALSE(watchdog.running());
  EXPECT_FALSE(watchdog.Metrics().running);
  ASSERT_TRUE(watchdog.Start(Options{}).ok());
  // The destructor stops it.
}

TEST(WatchdogApiTest, NotStartedCostsNothing) {
  Watchdog watchdog;
  Metrics metrics = watchdog.Metrics();
  EXPECT_FALSE(metrics.running);
  EXPECT_EQ(metrics.heartbeats_sent, 0);
}

}  // namespace
}  // namespace annex::watchdog

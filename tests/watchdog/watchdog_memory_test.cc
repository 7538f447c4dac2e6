// Memory limits end to end: the target grows past a threshold and the
// watchdog reports it once (hysteresis), with the provider's figures.
#include <fcntl.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "monitor/watchdog/internal/memory_monitor.h"
#include "monitor/watchdog/watchdog.h"
#include "tests/testing/python_main.h"
#include "tests/watchdog/test_support.h"

namespace annex::watchdog {
namespace {

using ::annex::testing::RunTargetCode;
using ::annex::watchdog::testing::EventRecorder;

constexpr int64_t kMiB = 1 << 20;

int64_t CurrentRss() {
  int fd = open("/proc/self/statm", O_RDONLY);
  int64_t rss = internal::ReadRssBytes(fd);
  close(fd);
  return rss;
}

TEST(WatchdogMemoryTest, ReportsRssCrossingTheLimitOnce) {
  EventRecorder recorder;
  Options options;
  options.stall_timeout = absl::ZeroDuration();  // memory only
  options.memory_interval = absl::Milliseconds(20);
  options.rss_limit_bytes = CurrentRss() + 64 * kMiB;
  options.on_event = recorder.Callback(/*release=*/false);
  options.memory_provider = [](MemorySample& sample) {
    sample.object_count = 42;
  };
  Watchdog watchdog;
  ASSERT_TRUE(watchdog.Start(options).ok());
  // Written bytes (not just reserved) so they count in RSS.
  ASSERT_TRUE(RunTargetCode("blob = b'x' * (128 << 20)\n"));
  std::vector<Event> events = recorder.WaitFor(1);
  // Staying above the limit does not fire again.
  ASSERT_TRUE(RunTargetCode("import time\ntime.sleep(0.2)\n"));
  Metrics metrics = watchdog.Metrics();
  ASSERT_TRUE(RunTargetCode("del blob\n"));
  ASSERT_TRUE(watchdog.Stop().ok());

  ASSERT_EQ(recorder.events().size(), 1u);
  const Event& e = events[0];
  EXPECT_EQ(e.type, EventType::kMemoryLimit);
  EXPECT_GE(e.memory.rss_bytes, options.rss_limit_bytes);
  EXPECT_EQ(e.memory.object_count, 42);
  EXPECT_NE(e.stack_dump.find("[main]"), std::string::npos) << e.stack_dump;
  EXPECT_EQ(metrics.memory_events, 1);
  EXPECT_GE(metrics.rss_peak_bytes, options.rss_limit_bytes);
}

TEST(WatchdogMemoryTest, ReportsGrowthOverTheWindow) {
  EventRecorder recorder;
  Options options;
  options.stall_timeout = absl::ZeroDuration();
  options.memory_interval = absl::Milliseconds(20);
  options.growth_limit_bytes = 48 * kMiB;
  options.growth_window = absl::Seconds(5);
  options.on_event = recorder.Callback(/*release=*/false);
  Watchdog watchdog;
  ASSERT_TRUE(watchdog.Start(options).ok());
  // A leak in steps: 8 x 8 MiB kept alive.
  ASSERT_TRUE(
      RunTargetCode("import time\n"
                    "leak = []\n"
                    "for _ in range(8):\n"
                    "    leak.append(b'y' * (8 << 20))\n"
                    "    time.sleep(0.03)\n"));
  std::vector<Event> events = recorder.WaitFor(1);
  ASSERT_TRUE(RunTargetCode("del leak\n"));
  ASSERT_TRUE(watchdog.Stop().ok());
  ASSERT_GE(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::kMemoryGrowth);
  EXPECT_GE(events[0].memory_growth_bytes, 48 * kMiB);
}

}  // namespace
}  // namespace annex::watchdog

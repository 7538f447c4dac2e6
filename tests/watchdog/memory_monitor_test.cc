// Memory thresholds with hysteresis and the growth window (no Python).
#include "monitor/watchdog/internal/memory_monitor.h"

#include <fcntl.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace annex::watchdog::internal {
namespace {

using Alarms = std::vector<MemoryAlarm>;

TEST(MemoryMonitorTest, LimitFiresOnceAndRearmsBelowClearLevel) {
  MemoryMonitor::Config config;
  config.limit_bytes = 1000;
  config.clear_bytes = 800;
  MemoryMonitor monitor(config);
  EXPECT_EQ(monitor.Update(1, 900), Alarms{});
  EXPECT_EQ(monitor.Update(2, 1000), Alarms{MemoryAlarm::kLimit});
  EXPECT_EQ(monitor.Update(3, 1200), Alarms{});
  EXPECT_EQ(monitor.Update(4, 900), Alarms{});  // above the clear level
  EXPECT_EQ(monitor.Update(5, 1100), Alarms{});
  EXPECT_EQ(monitor.Update(6, 700), Alarms{});  // re-armed
  EXPECT_EQ(monitor.Update(7, 1001), Alarms{MemoryAlarm::kLimit});
}

TEST(MemoryMonitorTest, GrowthIsMeasuredAgainstTheWindowMinimum) {
  MemoryMonitor::Config config;
  config.growth_limit_bytes = 100;
  config.growth_window_ns = 10;
  MemoryMonitor monitor(config);
  EXPECT_EQ(monitor.Update(0, 500), Alarms{});
  EXPECT_EQ(monitor.Update(5, 560), Alarms{});
  EXPECT_EQ(monitor.Update(9, 600), Alarms{MemoryAlarm::kGrowth});
  EXPECT_EQ(monitor.growth_bytes(), 100);
  EXPECT_EQ(monitor.Update(30, 700), Alarms{});  // window slid: flat again
  EXPECT_EQ(monitor.growth_bytes(), 0);
  EXPECT_EQ(monitor.Update(35, 810), Alarms{MemoryAlarm::kGrowth});  // re-armed
}

TEST(MemoryMonitorTest, ReadsResidentSetSize) {
  int fd = open("/proc/self/statm", O_RDONLY);
  ASSERT_GE(fd, 0);
  int64_t rss = ReadRssBytes(fd);
  EXPECT_GT(rss, 0);
  EXPECT_EQ(ReadRssBytes(fd) > 0, true);  // pread re-reads from the start
  close(fd);
}

}  // namespace
}  // namespace annex::watchdog::internal

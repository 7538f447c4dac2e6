// The watchdog with the annex's heap engine as its source: object-count
// limits from heap walks, the allocator fallback, and the heap section of
// report files (present when the annex gets the GIL, explained when not).
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "monitor/watchdog/internal/memory_monitor.h"
#include "tests/testing/child_process.h"
#include "tests/testing/python_main.h"
#include "tests/watchdog/test_support.h"

namespace annex {
namespace {

using ::annex::testing::ReadFile;
using ::annex::testing::RunTargetCode;
using ::annex::watchdog::testing::EventRecorder;
using ::annex::watchdog::testing::InstallTestModule;
using ::annex::watchdog::testing::SleepWithoutGil;
using ::annex::watchdog::testing::WaitUntil;

int64_t CurrentRss() {
  int fd = open("/proc/self/statm", O_RDONLY);
  int64_t rss = watchdog::internal::ReadRssBytes(fd);
  close(fd);
  return rss;
}

// The heap engine's object count now, from a monitor's first walk.
int64_t ObjectCountNow() {
  Monitor monitor;
  Options options;
  options.watchdog = true;
  options.watchdog_heap_interval = absl::Milliseconds(50);
  options.watchdog_options.stall_timeout = absl::ZeroDuration();
  options.watchdog_options.memory_interval = absl::Milliseconds(10);
  if (!monitor.Start(options).ok()) return -1;
  WaitUntil(
      [&] {
        return monitor.Metrics().memory.source ==
               watchdog::MemorySource::kHeapEngine;
      },
      "the first heap walk");
  int64_t count = monitor.Metrics().memory.object_count;
  monitor.Stop().IgnoreError();
  return count;
}

TEST(WatchdogHeapTest, ObjectCountCrossingTheLimitComesFromTheHeapEngine) {
  const int64_t baseline = ObjectCountNow();
  ASSERT_GT(baseline, 1000);
  EventRecorder recorder;
  Monitor monitor;
  Options options;
  options.watchdog = true;
  options.watchdog_heap_interval = absl::Milliseconds(50);
  options.watchdog_options.stall_timeout = absl::ZeroDuration();
  options.watchdog_options.memory_interval = absl::Milliseconds(10);
  options.watchdog_options.object_count_limit = baseline + 100000;
  options.watchdog_options.on_event = recorder.Callback(/*release=*/false);
  ASSERT_TRUE(monitor.Start(options).ok());
  // Below the limit: nothing.
  ASSERT_TRUE(RunTargetCode("small = [[] for _ in range(1000)]\n"));
  SleepWithoutGil(absl::Milliseconds(300));
  EXPECT_EQ(recorder.events().size(), 0u);
  // Past it: one event, and staying above does not fire again.
  ASSERT_TRUE(RunTargetCode("grown = [[] for _ in range(150000)]\n"));
  std::vector<watchdog::Event> events = recorder.WaitFor(1);
  SleepWithoutGil(absl::Milliseconds(300));
  ASSERT_TRUE(monitor.Stop().ok());
  ASSERT_TRUE(RunTargetCode("del small, grown\n"));

  ASSERT_EQ(recorder.events().size(), 1u);
  const watchdog::Event& e = events[0];
  EXPECT_EQ(e.type, watchdog::EventType::kMemoryLimit);
  EXPECT_EQ(e.measure, watchdog::MemoryMeasure::kObjectCount);
  EXPECT_EQ(e.memory.source, watchdog::MemorySource::kHeapEngine);
  EXPECT_GE(e.memory.object_count, options.watchdog_options.object_count_limit);
  EXPECT_GT(e.memory.python_bytes, 0);
  ASSERT_FALSE(e.memory.top_kinds.empty());
  EXPECT_EQ(e.memory.top_kinds[0].kind, "list") << e.summary;
  EXPECT_GE(e.memory.top_kinds[0].count, 150000);
  EXPECT_NE(e.summary.find("measure=object_count"), std::string::npos)
      << e.summary;
  EXPECT_NE(e.summary.find("source=heap_engine"), std::string::npos)
      << e.summary;
  EXPECT_NE(e.stack_dump.find("[main]"), std::string::npos) << e.stack_dump;
}

TEST(WatchdogHeapTest, WithoutHeapWalksTheAllocatorIsTheSource) {
  // A watchdog without the annex: the allocator's counter where CPython
  // exposes it (3.12+), nothing on 3.11.
  watchdog::Watchdog dog;
  watchdog::Options options;
  options.stall_timeout = absl::ZeroDuration();
  options.memory_interval = absl::Milliseconds(10);
  options.metrics_port = 0;  // memory sampling runs for the endpoint
  ASSERT_TRUE(dog.Start(options).ok());
  WaitUntil([&] { return dog.Metrics().memory.rss_bytes > 0; },
            "the first memory sample");
  watchdog::Metrics m = dog.Metrics();
  ASSERT_TRUE(dog.Stop().ok());
  EXPECT_EQ(m.memory.object_count, -1);
  if (PY_VERSION_HEX >= 0x030C0000) {
    EXPECT_EQ(m.memory.source, watchdog::MemorySource::kAllocator);
    // At least the arenas that hold the interpreter's own objects.
    EXPECT_GE(m.memory.python_bytes, 1 << 20);
    EXPECT_LT(m.memory.python_bytes, m.memory.rss_bytes);
  } else {
    EXPECT_EQ(m.memory.source, watchdog::MemorySource::kNone);
    EXPECT_EQ(m.memory.python_bytes, -1);
  }
}

TEST(WatchdogHeapTest, ReportHasPartitionAndGrowthSinceTheFirstWalk) {
  EventRecorder recorder;
  Monitor monitor;
  Options options;
  options.watchdog = true;
  options.watchdog_heap_interval = absl::Milliseconds(50);
  options.watchdog_options.stall_timeout = absl::ZeroDuration();
  options.watchdog_options.memory_interval = absl::Milliseconds(10);
  options.watchdog_options.rss_limit_bytes = CurrentRss() + (64 << 20);
  // The report waits for the annex to get the GIL, which the main thread
  // holds while it fills the blob: generous, so a loaded machine does not
  // turn the partition into "absent" (the default of 2 s did, at load 20).
  options.watchdog_options.heap_report_timeout = absl::Minutes(5);
  options.watchdog_options.report_path =
      absl::StrCat(getenv("TEST_TMPDIR"), "/growth.report");
  options.watchdog_options.on_event = recorder.Callback(/*release=*/false);
  ASSERT_TRUE(monitor.Start(options).ok());
  // The reference point (the first walk) exists before the growth.
  WaitUntil(
      [&] {
        return monitor.Metrics().memory.source ==
               watchdog::MemorySource::kHeapEngine;
      },
      "the first heap walk");
  ASSERT_TRUE(
      RunTargetCode("class Leaky:\n    pass\n"
                    "leak = [Leaky() for _ in range(30000)]\n"
                    "blob = b'x' * (128 << 20)\n"));
  std::vector<watchdog::Event> events = recorder.WaitFor(1);
  ASSERT_TRUE(monitor.Stop().ok());
  ASSERT_TRUE(RunTargetCode("del leak, blob, Leaky\n"));

  ASSERT_GE(events.size(), 1u);
  const std::string report = ReadFile(options.watchdog_options.report_path);
  EXPECT_EQ(events[0].heap_report.empty(), false);
  EXPECT_NE(report.find(events[0].heap_report), std::string::npos);
  EXPECT_NE(report.find("heap partition (heap engine"), std::string::npos)
      << report;
  EXPECT_NE(report.find("Partition of a set of"), std::string::npos) << report;
  EXPECT_NE(report.find("top growth since the reference point (the "
                        "watchdog's first heap walk"),
            std::string::npos)
      << report;
  // The growth table names the new kind with its count.
  EXPECT_NE(report.find("+30000"), std::string::npos) << report;
  EXPECT_NE(report.find("__main__.Leaky"), std::string::npos) << report;
}

TEST(WatchdogHeapTest, ReportGrowthUsesTheSessionsReferencePoint) {
  EventRecorder recorder;
  Monitor monitor;
  Options options;
  options.watchdog = true;
  options.watchdog_options.stall_timeout = absl::ZeroDuration();
  options.watchdog_options.memory_interval = absl::Milliseconds(10);
  options.watchdog_options.rss_limit_bytes = CurrentRss() + (64 << 20);
  // The report waits for the annex to get the GIL, which the main thread
  // holds while it fills the blob: generous, so a loaded machine does not
  // turn the partition into "absent" (the default of 2 s did, at load 20).
  options.watchdog_options.heap_report_timeout = absl::Minutes(5);
  options.watchdog_options.report_path =
      absl::StrCat(getenv("TEST_TMPDIR"), "/setref.report");
  options.watchdog_options.on_event = recorder.Callback(/*release=*/false);
  ASSERT_TRUE(monitor.Start(options).ok());
  absl::StatusOr<std::string> setref = monitor.ExecInAnnex("hp.setref()\n");
  ASSERT_TRUE(setref.ok()) << setref.status();
  ASSERT_TRUE(
      RunTargetCode("class Fresh:\n    pass\n"
                    "fresh = [Fresh() for _ in range(12345)]\n"
                    "blob = b'x' * (128 << 20)\n"));
  std::vector<watchdog::Event> events = recorder.WaitFor(1);
  ASSERT_TRUE(monitor.Stop().ok());
  ASSERT_TRUE(RunTargetCode("del fresh, blob, Fresh\n"));

  ASSERT_GE(events.size(), 1u);
  const std::string& section = events[0].heap_report;
  EXPECT_NE(section.find("since the reference point (hp.setref())"),
            std::string::npos)
      << section;
  EXPECT_NE(section.find("12345"), std::string::npos) << section;
  EXPECT_NE(section.find("__main__.Fresh"), std::string::npos) << section;
}

TEST(WatchdogHeapTest, ReportSaysWhyThePartitionIsAbsentWhileTheGilIsKept) {
  InstallTestModule();
  EventRecorder recorder;
  Monitor monitor;
  Options options;
  options.watchdog = true;
  options.watchdog_options.stall_timeout = absl::Milliseconds(300);
  options.watchdog_options.heap_report_timeout = absl::Milliseconds(300);
  options.watchdog_options.report_path =
      absl::StrCat(getenv("TEST_TMPDIR"), "/stuck.report");
  // Released after the report is written: the annex cannot get the GIL
  // while the report waits.
  options.watchdog_options.on_event = recorder.Callback(/*release=*/true);
  ASSERT_TRUE(monitor.Start(options).ok());
  ASSERT_TRUE(RunTargetCode("import _wdtest\n_wdtest.spin_in_c()\n"));
  std::vector<watchdog::Event> events = recorder.WaitFor(1);
  ASSERT_TRUE(monitor.Stop().ok());

  ASSERT_GE(events.size(), 1u);
  EXPECT_EQ(events[0].stall_kind, watchdog::StallKind::kStuckInC);
  const std::string report = ReadFile(options.watchdog_options.report_path);
  EXPECT_NE(report.find("heap partition: absent (the annex did not get the "
                        "GIL within 300ms"),
            std::string::npos)
      << report;
  EXPECT_EQ(report.find("Partition of a set of"), std::string::npos) << report;
}

// Issue 14: the watchdog's heap walks are questions like hp's, under
// Options::question_pause_limit: a walk past it stops (the target runs
// again) and the report says why its partition is absent.
TEST(WatchdogHeapTest, AWalkPastThePauseLimitStopsAndTheReportSaysSo) {
  EventRecorder recorder;
  Monitor monitor;
  Options options;
  options.watchdog = true;
  // Stopped at the walk's first poll: every walk of this heap passes it.
  options.question_pause_limit = absl::Nanoseconds(1);
  options.watchdog_options.stall_timeout = absl::ZeroDuration();
  options.watchdog_options.memory_interval = absl::Milliseconds(10);
  options.watchdog_options.rss_limit_bytes = CurrentRss() + (64 << 20);
  options.watchdog_options.heap_report_timeout = absl::Minutes(5);
  options.watchdog_report_heap = true;
  options.watchdog_options.report_path =
      absl::StrCat(getenv("TEST_TMPDIR"), "/limit.report");
  options.watchdog_options.on_event = recorder.Callback(/*release=*/false);
  ASSERT_TRUE(monitor.Start(options).ok());
  ASSERT_TRUE(RunTargetCode("blob = b'x' * (128 << 20)\n"));
  std::vector<watchdog::Event> events = recorder.WaitFor(1);
  ASSERT_TRUE(monitor.Stop().ok());
  ASSERT_TRUE(RunTargetCode("del blob\n"));

  ASSERT_GE(events.size(), 1u);
  const std::string report = ReadFile(options.watchdog_options.report_path);
  EXPECT_NE(report.find("heap partition: absent (the heap walk failed: the "
                        "heap question stopped after holding the target"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("Options::question_pause_limit"), std::string::npos)
      << report;
  EXPECT_EQ(report.find("Partition of a set of"), std::string::npos) << report;
}

}  // namespace
}  // namespace annex

// Stall detection end to end in one embedded target: the kind of stall, the
// thread, the stack dump, and that the host keeps running.
#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "monitor/watchdog/watchdog.h"
#include "tests/testing/child_process.h"
#include "tests/testing/python_main.h"
#include "tests/watchdog/test_support.h"

namespace annex::watchdog {
namespace {

using ::annex::testing::ReadFile;
using ::annex::testing::RunTargetCode;
using ::annex::watchdog::testing::EventRecorder;
using ::annex::watchdog::testing::InstallTestModule;
using ::annex::watchdog::testing::Release;
using ::annex::watchdog::testing::RunUntilGateOpens;

Options StallOptions(EventRecorder& recorder) {
  Options options;
  options.stall_timeout = absl::Milliseconds(300);
  options.on_event = recorder.Callback();
  return options;
}

TEST(WatchdogStallTest, ReportsBusyPythonLoopInMainThreadWithStackDump) {
  InstallTestModule();
  EventRecorder recorder;
  Options options = StallOptions(recorder);
  options.report_path = absl::StrCat(getenv("TEST_TMPDIR"), "/busy.report");
  Watchdog watchdog;
  ASSERT_TRUE(watchdog.Start(options).ok());
  // The watchdog's callback releases the loop.
  ASSERT_TRUE(
      RunTargetCode("import _wdtest\n"
                    "def spin_forever():\n"
                    "    n = 0\n"
                    "    while not _wdtest.released():\n"
                    "        n += 1\n"
                    "spin_forever()\n"));
  ASSERT_TRUE(watchdog.Stop().ok());

  std::vector<Event> events = recorder.events();
  ASSERT_GE(events.size(), 1u);
  const Event& e = events[0];
  EXPECT_EQ(e.type, EventType::kStall);
  EXPECT_EQ(e.stall_kind, StallKind::kBusyPython);
  EXPECT_TRUE(e.thread.is_main);
  EXPECT_EQ(e.thread.ident, PyThread_get_thread_ident());
  EXPECT_GE(e.duration, absl::Milliseconds(300));
  EXPECT_NE(e.stack_dump.find("[main] [holds GIL]"), std::string::npos)
      << e.stack_dump;
  EXPECT_NE(e.stack_dump.find("in spin_forever\n"), std::string::npos)
      << e.stack_dump;
  EXPECT_NE(e.summary.find("busy_python"), std::string::npos) << e.summary;
  std::string report = ReadFile(options.report_path);
  EXPECT_NE(report.find(e.summary), std::string::npos) << report;
  EXPECT_NE(report.find("in spin_forever"), std::string::npos) << report;
  // The host keeps running Python.
  EXPECT_TRUE(RunTargetCode("assert 1 + 1 == 2\n"));
}

TEST(WatchdogStallTest, ReportsStuckInCWhileMainThreadHoldsGil) {
  InstallTestModule();
  EventRecorder recorder;
  Watchdog watchdog;
  ASSERT_TRUE(watchdog.Start(StallOptions(recorder)).ok());
  const absl::Time start = absl::Now();
  ASSERT_TRUE(
      RunTargetCode("import _wdtest\n"
                    "def call_into_c():\n"
                    "    _wdtest.spin_in_c()\n"
                    "call_into_c()\n"));
  ASSERT_TRUE(watchdog.Stop().ok());

  std::vector<Event> events = recorder.events();
  ASSERT_GE(events.size(), 1u);
  const Event& e = events[0];
  EXPECT_EQ(e.type, EventType::kStall);
  EXPECT_EQ(e.stall_kind, StallKind::kStuckInC) << e.summary;
  EXPECT_TRUE(e.thread.is_main);
  EXPECT_EQ(e.thread.ident, PyThread_get_thread_ident());
  EXPECT_NE(e.stack_dump.find("in call_into_c\n"), std::string::npos)
      << e.stack_dump;
  // Logged, not asserted (timeout 300 ms; the aim is within +10%).
  RecordProperty("detected_after_ms",
                 static_cast<int>(absl::ToInt64Milliseconds(e.time - start)));
  EXPECT_TRUE(RunTargetCode("assert 1 + 1 == 2\n"));
}

TEST(WatchdogStallTest, ReportsStuckInCInWorkerThread) {
  InstallTestModule();
  EventRecorder recorder;
  Watchdog watchdog;
  ASSERT_TRUE(watchdog.Start(StallOptions(recorder)).ok());
  ASSERT_TRUE(RunTargetCode(
      "import threading, _wdtest\n"
      "def worker_in_c():\n"
      "    _wdtest.spin_in_c()\n"
      "t = threading.Thread(target=worker_in_c, name='stuck-worker')\n"
      "t.start()\n"
      "t.join()\n"));
  ASSERT_TRUE(watchdog.Stop().ok());

  std::vector<Event> events = recorder.events();
  ASSERT_GE(events.size(), 1u);
  const Event& e = events[0];
  EXPECT_EQ(e.stall_kind, StallKind::kStuckInC) << e.summary;
  EXPECT_FALSE(e.thread.is_main);
  EXPECT_NE(e.thread.ident, PyThread_get_thread_ident());
  EXPECT_NE(e.stack_dump.find("[holds GIL]"), std::string::npos)
      << e.stack_dump;
  EXPECT_NE(e.stack_dump.find("in worker_in_c\n"), std::string::npos)
      << e.stack_dump;
}

TEST(WatchdogStallTest, SleepingThreadsAreNotAStall) {
  InstallTestModule();
  EventRecorder recorder;
  Watchdog watchdog;
  ASSERT_TRUE(watchdog.Start(StallOptions(recorder)).ok());
  ASSERT_TRUE(
      RunTargetCode("import threading, time\n"
                    "t = threading.Thread(target=time.sleep, args=(0.8,))\n"
                    "t.start()\n"
                    "time.sleep(0.8)\n"
                    "t.join()\n"));
  Metrics metrics = watchdog.Metrics();
  ASSERT_TRUE(watchdog.Stop().ok());
  EXPECT_TRUE(recorder.events().empty()) << recorder.events()[0].summary;
  EXPECT_EQ(metrics.stalls, 0);
  EXPECT_GT(metrics.heartbeats_sent, 0);
}

TEST(WatchdogStallTest, ReportsBlockedMainThreadWhenAskedTo) {
  InstallTestModule();
  EventRecorder recorder;
  Options options = StallOptions(recorder);
  options.report_blocked_main = true;
  Watchdog watchdog;
  ASSERT_TRUE(watchdog.Start(options).ok());
  // Blocked (GIL released, as in time.sleep) until the report releases it,
  // however late a loaded machine runs the watchdog.
  ASSERT_TRUE(
      RunTargetCode("import _wdtest\n"
                    "def nap():\n"
                    "    _wdtest.wait_released()\n"
                    "nap()\n"));
  ASSERT_TRUE(watchdog.Stop().ok());
  std::vector<Event> events = recorder.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].stall_kind, StallKind::kBlockedWithoutGil);
  EXPECT_TRUE(events[0].thread.is_main);
  EXPECT_NE(events[0].stack_dump.find("in nap\n"), std::string::npos)
      << events[0].stack_dump;
}

TEST(WatchdogStallTest, HeartbeatsAreServedByABusyMainThread) {
  InstallTestModule();
  Options options;
  options.stall_timeout = absl::Seconds(5);
  Watchdog watchdog;
  ASSERT_TRUE(watchdog.Start(options).ok());
  // Main stays busy in Python (keeping the GIL) until two heartbeats were
  // served, however long a loaded machine takes (a fixed 0.5 s served none
  // at a load of 14 on 2 cores); a build that never serves them hangs
  // until the test's timeout.
  const bool ran = RunUntilGateOpens(
      [&watchdog] { return watchdog.Metrics().heartbeats_served >= 2; },
      [] {
        return RunTargetCode(
            "import _wdtest\n"
            "while not _wdtest.gate():\n"
            "    pass\n");
      });
  ASSERT_TRUE(ran);
  Metrics metrics = watchdog.Metrics();
  ASSERT_TRUE(watchdog.Stop().ok());
  EXPECT_GE(metrics.heartbeats_served, 2);
  EXPECT_EQ(metrics.stalls, 0);
  EXPECT_GT(metrics.heartbeat_latency_max, absl::ZeroDuration());
}

TEST(WatchdogStallTest, RateLimitsActionsButCountsEvents) {
  InstallTestModule();
  EventRecorder recorder;
  Options options = StallOptions(recorder);
  options.min_action_interval = absl::Seconds(60);
  Watchdog watchdog;
  ASSERT_TRUE(watchdog.Start(options).ok());
  ASSERT_TRUE(RunTargetCode("import _wdtest\n_wdtest.spin_in_c()\n"));
  // The second stall's actions are suppressed (no callback releases it), so
  // it ends once the watchdog counted it (a fixed 800 ms spin was not
  // always counted at a load of 14 on 2 cores).
  InstallTestModule();
  std::atomic<bool> finished{false};
  std::thread releaser([&watchdog, &finished] {
    while (!finished.load() && watchdog.Metrics().stalls < 2) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    Release();
  });
  const bool ran = RunTargetCode("import _wdtest\n_wdtest.spin_in_c()\n");
  finished.store(true);
  releaser.join();
  ASSERT_TRUE(ran);
  Metrics metrics = watchdog.Metrics();
  ASSERT_TRUE(watchdog.Stop().ok());
  // Under load a spin may be reported more than once; whatever the count,
  // exactly one event ran its actions and every other was suppressed.
  EXPECT_EQ(recorder.events().size(), 1u);
  EXPECT_GE(metrics.stalls, 2);
  EXPECT_EQ(metrics.actions_suppressed, metrics.stalls - 1);
}

}  // namespace
}  // namespace annex::watchdog

// Watchdog gaps of issue 16, each reproduced first on the code before the
// fix: heap walks by the annex hid a busy loop; the exception action landed
// in code that ran after the stall had ended; a main thread outside Python
// (a C++ host's own work) made the heartbeat look overdue forever.
#include <atomic>
#include <cstdio>
#include <thread>

#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "monitor/python/cpython_peek.h"
#include "monitor/watchdog/watchdog.h"
#include "tests/testing/python_main.h"
#include "tests/watchdog/test_support.h"

namespace annex::watchdog {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;
using ::annex::watchdog::testing::EventRecorder;
using ::annex::watchdog::testing::InstallTestModule;
using ::annex::watchdog::testing::OpenGate;
using ::annex::watchdog::testing::SleepWithoutGil;
using ::annex::watchdog::testing::WaitUntil;

// Evaluates `expr` in the target's __main__. Where: main thread, GIL held.
bool TargetTrue(const char* expr) {
  PyObject* value = EvalTarget(expr);
  bool result = value != nullptr && PyObject_IsTrue(value) == 1;
  Py_XDECREF(value);
  return result;
}

// Every walk makes main hand the GIL to the annex and take it back. Before
// the fix each of those switches restarted main's run, so with a walk every
// second a busy loop was never reported for a 2 s timeout. The loop below
// ends only on the report (a build that never reports it hangs until the
// test's timeout); the assertions wait on conditions (the report, the
// walks), not on the clock; the detection latency is printed.
TEST(WatchdogGapsTest, BusyLoopIsReportedWhileTheHeapIsWalkedEverySecond) {
  InstallTestModule();
  EventRecorder recorder;
  std::atomic<unsigned long> takes_at_report{0};
  Monitor monitor;
  annex::Options options;
  options.watchdog = true;
  options.watchdog_heap_interval = absl::Seconds(1);
  options.watchdog_options.stall_timeout = absl::Seconds(2);
  auto record = recorder.Callback(/*release=*/true);
  options.watchdog_options.on_event = [&](const Event& e) {
    takes_at_report.store(AnnexPeekOwnGilTakeCount());
    record(e);
  };
  ASSERT_TRUE(monitor.Start(options).ok());
  // The first walk (the watchdog's reference point) is done before the loop.
  WaitUntil(
      [&] {
        return monitor.Metrics().memory.source == MemorySource::kHeapEngine;
      },
      "the first heap walk");
  const unsigned long takes_before = AnnexPeekOwnGilTakeCount();
  ASSERT_TRUE(
      RunTargetCode("import _wdtest, time\n"
                    "def busy():\n"
                    "    start = time.monotonic()\n"
                    "    while not _wdtest.released():\n"
                    "        pass\n"
                    "    return time.monotonic() - start\n"
                    "looped = busy()\n"));
  ASSERT_TRUE(monitor.Stop().ok());
  PyObject* looped = EvalTarget("looped");
  ASSERT_NE(looped, nullptr);
  std::printf(
      "busy loop reported after %.2f s (timeout 2 s, walks every 1 s)\n",
      PyFloat_AsDouble(looped));
  Py_DECREF(looped);
  std::vector<Event> events = recorder.events();
  ASSERT_GE(events.size(), 1u);
  EXPECT_EQ(events[0].stall_kind, StallKind::kBusyPython);
  EXPECT_TRUE(events[0].thread.is_main);
  EXPECT_GE(events[0].duration, absl::Seconds(2));
  EXPECT_NE(events[0].stack_dump.find("in busy\n"), std::string::npos)
      << events[0].stack_dump;
  // The annex took the GIL during the loop (walks: hand-over and back).
  EXPECT_GE(takes_at_report.load() - takes_before, 2u);
}

// Main is stuck in C holding the GIL; the event releases it. The exception
// action's pending call can only run after that, when the stall is over:
// before the fix it raised TimeoutError into the code that followed.
TEST(WatchdogGapsTest, NoExceptionIsDeliveredAfterItsStallEnded) {
  InstallTestModule();
  EventRecorder recorder;
  Options options;
  options.stall_timeout = absl::Milliseconds(200);
  options.raise_exception = true;
  options.on_event = recorder.Callback(/*release=*/true);
  Watchdog watchdog;
  ASSERT_TRUE(watchdog.Start(options).ok());
  // Opens the gate once main has run the pending call, either way, however
  // long that takes (or once the code below ended without it). (Not
  // WaitUntil: once a sub-interpreter existed, PyGILState_Check() says yes
  // on every thread, and this one has no thread state.)
  std::atomic<bool> finished{false};
  std::thread opener([&] {
    for (;;) {
      Metrics m = watchdog.Metrics();
      if (finished.load() || m.exceptions_raised + m.exceptions_dropped > 0) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    OpenGate();
  });
  const bool ran = RunTargetCode(
      "import _wdtest\n"
      "late = False\n"
      "try:\n"
      "    _wdtest.spin_in_c()\n"
      "    while not _wdtest.gate():\n"  // unrelated code
      "        pass\n"
      "except TimeoutError:\n"
      "    late = True\n");
  finished.store(true);
  opener.join();
  ASSERT_TRUE(ran);
  Metrics metrics = watchdog.Metrics();
  ASSERT_TRUE(watchdog.Stop().ok());
  EXPECT_FALSE(TargetTrue("late"));
  ASSERT_GE(recorder.events().size(), 1u);
  EXPECT_EQ(recorder.events()[0].stall_kind, StallKind::kStuckInC);
  EXPECT_EQ(metrics.exceptions_raised, 0);
  EXPECT_EQ(metrics.exceptions_dropped, 1);
}

// A C++ host whose main thread does its own work between calls into Python
// (here: waits, GIL released, no Python frame) cannot serve heartbeats, and
// is not stalled: the heartbeat is not overdue and nothing is reported, even
// with report_blocked_main. Before the fix the overdue time grew forever and
// a kBlockedWithoutGil event came. Blocked inside Python is still reported.
TEST(WatchdogGapsTest, MainThreadOutsidePythonIsNotOverdue) {
  InstallTestModule();
  EventRecorder recorder;
  Options options;
  options.stall_timeout = absl::Milliseconds(200);
  options.report_blocked_main = true;
  // The event releases the blocked main thread below.
  options.on_event = recorder.Callback(/*release=*/true);
  Watchdog watchdog;
  ASSERT_TRUE(watchdog.Start(options).ok());
  // Outside Python for several timeouts (both release the GIL).
  WaitUntil([&] { return watchdog.Metrics().heartbeats_sent > 0; },
            "the first heartbeat");
  // Read before the GIL is taken back: a tick that sees the main thread
  // holding it again counts the outstanding heartbeat as overdue.
  Metrics outside;
  SleepWithoutGil(absl::Milliseconds(800),
                  [&] { outside = watchdog.Metrics(); });
  EXPECT_EQ(recorder.events().size(), 0u) << recorder.events()[0].summary;
  EXPECT_EQ(outside.heartbeat_overdue, absl::ZeroDuration());
  EXPECT_EQ(outside.stalls, 0);
  // Back in Python, blocked (GIL released, as in time.sleep) until the
  // report releases it: reported as before.
  ASSERT_TRUE(
      RunTargetCode("import _wdtest\n"
                    "def nap():\n"
                    "    _wdtest.wait_released()\n"
                    "nap()\n"));
  ASSERT_TRUE(watchdog.Stop().ok());
  std::vector<Event> events = recorder.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].stall_kind, StallKind::kBlockedWithoutGil);
  EXPECT_NE(events[0].stack_dump.find("in nap\n"), std::string::npos);
}

}  // namespace
}  // namespace annex::watchdog

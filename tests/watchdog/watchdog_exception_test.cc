// The exception action: the watchdog ends a looping thread with an
// exception raised through PyThreadState_SetAsyncExc, and the host goes on.
#include "gtest/gtest.h"
#include "monitor/watchdog/watchdog.h"
#include "tests/testing/python_main.h"
#include "tests/watchdog/test_support.h"

namespace annex::watchdog {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;
using ::annex::watchdog::testing::EventRecorder;

// Evaluates `expr` in the target's __main__. Where: main thread, GIL held.
bool TargetTrue(const char* expr) {
  PyObject* value = EvalTarget(expr);
  bool result = value != nullptr && PyObject_IsTrue(value) == 1;
  Py_XDECREF(value);
  return result;
}

TEST(WatchdogExceptionTest, EndsALoopingWorkerThread) {
  EventRecorder recorder;
  Options options;
  options.stall_timeout = absl::Milliseconds(200);
  options.report_busy_workers = true;
  options.raise_exception = true;  // in the event's thread, TimeoutError
  options.on_event = recorder.Callback(/*release=*/false);
  Watchdog watchdog;
  ASSERT_TRUE(watchdog.Start(options).ok());
  // The main thread sleeps in steps longer than the timeout, so the worker
  // keeps the GIL; the pending call that raises runs when main wakes up.
  // Only the watchdog's exception ends the worker (a build that never
  // raises it hangs until the test's timeout).
  ASSERT_TRUE(
      RunTargetCode("import threading, time\n"
                    "outcome = []\n"
                    "def loop_forever():\n"
                    "    n = 0\n"
                    "    try:\n"
                    "        while True:\n"
                    "            n += 1\n"
                    "    except TimeoutError:\n"
                    "        outcome.append('timeout')\n"
                    "worker = threading.Thread(target=loop_forever)\n"
                    "worker.start()\n"
                    "while worker.is_alive():\n"
                    "    time.sleep(0.4)\n"
                    "worker_ident = worker.ident\n"
                    "worker.join()\n"));
  Metrics metrics = watchdog.Metrics();
  ASSERT_TRUE(watchdog.Stop().ok());

  EXPECT_TRUE(TargetTrue("outcome == ['timeout']"));
  EXPECT_TRUE(TargetTrue("not worker.is_alive()"));
  std::vector<Event> events = recorder.events();
  ASSERT_GE(events.size(), 1u);
  EXPECT_EQ(events[0].stall_kind, StallKind::kBusyPython);
  EXPECT_FALSE(events[0].thread.is_main);
  PyObject* ident = EvalTarget("worker_ident");
  ASSERT_NE(ident, nullptr);
  EXPECT_EQ(events[0].thread.ident, PyLong_AsUnsignedLong(ident));
  Py_DECREF(ident);
  EXPECT_NE(events[0].stack_dump.find("in loop_forever\n"), std::string::npos)
      << events[0].stack_dump;
  EXPECT_EQ(metrics.exceptions_raised, 1);
  EXPECT_TRUE(RunTargetCode("assert 1 + 1 == 2\n"));
}

TEST(WatchdogExceptionTest, EndsALoopInTheMainThreadWithTheChosenException) {
  EventRecorder recorder;
  ASSERT_TRUE(RunTargetCode("class Stalled(Exception):\n    pass\n"));
  PyObject* stalled = EvalTarget("Stalled");
  ASSERT_NE(stalled, nullptr);
  Options options;
  options.stall_timeout = absl::Milliseconds(200);
  options.raise_exception = true;
  options.exception_target = ExceptionTarget::kMainThread;
  options.exception_type = stalled;
  options.on_event = recorder.Callback(/*release=*/false);
  Watchdog watchdog;
  ASSERT_TRUE(watchdog.Start(options).ok());
  // Only the watchdog's exception ends the loop (or the test's timeout).
  ASSERT_TRUE(
      RunTargetCode("caught = False\n"
                    "def spin():\n"
                    "    while True:\n"
                    "        pass\n"
                    "try:\n"
                    "    spin()\n"
                    "except Stalled:\n"
                    "    caught = True\n"));
  ASSERT_TRUE(watchdog.Stop().ok());
  Py_DECREF(stalled);
  EXPECT_TRUE(TargetTrue("caught"));
  ASSERT_GE(recorder.events().size(), 1u);
  EXPECT_EQ(recorder.events()[0].stall_kind, StallKind::kBusyPython);
}

}  // namespace
}  // namespace annex::watchdog

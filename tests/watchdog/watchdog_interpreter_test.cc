// A thread of another interpreter (like the annex) runs Python and keeps the
// shared GIL while the target's main thread asks for it. On 3.11 and 3.12
// the drop request reaches only the waiter's interpreter, so the holder never
// yields (docs/design.md rule 2): a kBusyPython stall. On 3.13 it yields at
// once.
#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "monitor/watchdog/watchdog.h"
#include "tests/testing/python_main.h"
#include "tests/watchdog/test_support.h"

namespace annex::watchdog {
namespace {

using ::annex::watchdog::testing::EventRecorder;
using ::annex::watchdog::testing::InstallTestModule;
using ::annex::watchdog::testing::Release;

TEST(WatchdogInterpreterTest, ReportsOtherInterpreterKeepingTheGilFromTarget) {
  EventRecorder recorder;
  Options options;
  options.stall_timeout = absl::Milliseconds(300);
  // The report releases the hog's loop (3.11, 3.12).
  options.on_event = recorder.Callback(/*release=*/true);
  Watchdog watchdog;
  ASSERT_TRUE(watchdog.Start(options).ok());

  PyInterpreterState* target = PyInterpreterState_Main();
  std::atomic<bool> looping{false};
  PyThreadState* main_ts = PyEval_SaveThread();
  // Where: a new thread; takes the GIL with its own target thread state,
  // creates, runs and ends a legacy sub-interpreter, then deletes its state.
  // Its loop runs until released: by the report, or by the main thread once
  // it got the GIL (3.13), never by a clock.
  std::thread hog([&] {
    PyThreadState* ts = PyThreadState_New(target);
    PyEval_RestoreThread(ts);
    PyThreadState* sub = Py_NewInterpreter();
    InstallTestModule();  // in the sub-interpreter's sys.modules
    looping.store(true);
    PyRun_SimpleString(
        "import _wdtest\n"
        "def hog():\n"
        "    while not _wdtest.released():\n"
        "        pass\n"
        "hog()\n");
    Py_EndInterpreter(sub);
    PyThreadState_Swap(ts);
    PyThreadState_Clear(ts);
    PyThreadState_DeleteCurrent();
  });
  while (!looping.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  PyEval_RestoreThread(main_ts);  // waits for the GIL
  Release();
  Py_BEGIN_ALLOW_THREADS;
  hog.join();
  Py_END_ALLOW_THREADS;
  ASSERT_TRUE(watchdog.Stop().ok());

  std::vector<Event> events = recorder.events();
#if PY_VERSION_HEX < 0x030D0000
  ASSERT_GE(events.size(), 1u);
  const Event& e = events[0];
  EXPECT_EQ(e.stall_kind, StallKind::kBusyPython) << e.summary;
  EXPECT_FALSE(e.thread.in_target) << e.summary;
  EXPECT_TRUE(e.gil_wanted) << e.summary;
  EXPECT_NE(e.summary.find("other interpreter"), std::string::npos)
      << e.summary;
  // The dump covers the target: its main thread, waiting.
  EXPECT_NE(e.stack_dump.find("[main]"), std::string::npos) << e.stack_dump;
#else
  EXPECT_TRUE(events.empty()) << events[0].summary;
#endif
  EXPECT_TRUE(annex::testing::RunTargetCode("assert 1 + 1 == 2\n"));
}

}  // namespace
}  // namespace annex::watchdog

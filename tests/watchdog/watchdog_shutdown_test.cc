// A host that forgets Stop() before Py_FinalizeEx(): the watchdog keeps
// running through finalization (main() finalizes after the tests) and must
// stop reading thread states once finalization starts. Its own binary: the
// point is what happens after the last test.
#include "gtest/gtest.h"
#include "monitor/watchdog/watchdog.h"
#include "tests/testing/python_main.h"

namespace annex::watchdog {
namespace {

// Destroyed after main() returns, i.e. after Py_FinalizeEx().
Watchdog& Forgotten() {
  static Watchdog* watchdog = new Watchdog();  // stopped by exit() below
  return *watchdog;
}

TEST(WatchdogShutdownTest, SurvivesFinalizationWithoutStop) {
  Options options;
  options.stall_timeout = absl::Milliseconds(20);  // ticks every 1 ms
  options.report_blocked_main = true;
  options.rss_limit_bytes = 1;  // memory events (and dumps) every tick
  options.memory_interval = absl::Milliseconds(1);
  options.min_action_interval = absl::ZeroDuration();
  ASSERT_TRUE(Forgotten().Start(options).ok());
  ASSERT_TRUE(annex::testing::RunTargetCode(
      "import threading, time\n"
      "threads = [threading.Thread(target=time.sleep, args=(0.05,)) for _ in "
      "range(4)]\n"
      "for t in threads: t.start()\n"
      "time.sleep(0.1)\n"));
  std::atexit([] { delete &Forgotten(); });
}

}  // namespace
}  // namespace annex::watchdog

// Stack dumps under a Monitor list exactly the target's own threads: the
// thread states Annex keeps in the target (the annex thread's, and the
// nudger's on 3.11/3.12) are left out and counted, not shown as frameless
// threads of the host.
#include <algorithm>
#include <set>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "tests/testing/python_main.h"
#include "tests/watchdog/test_support.h"

namespace annex {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;
using ::annex::watchdog::testing::EventRecorder;

// The idents of the "Thread 0x..." header lines of a dump.
std::multiset<unsigned long> DumpedIdents(const std::string& dump) {
  std::multiset<unsigned long> idents;
  for (absl::string_view line : absl::StrSplit(dump, '\n')) {
    if (!absl::ConsumePrefix(&line, "Thread 0x")) continue;
    unsigned long ident = 0;
    EXPECT_TRUE(absl::SimpleHexAtoi(line.substr(0, line.find(' ')), &ident))
        << line;
    idents.insert(ident);
  }
  return idents;
}

unsigned long TargetLong(const std::string& expr) {
  PyObject* value = EvalTarget(expr);
  unsigned long out = value ? PyLong_AsUnsignedLong(value) : 0;
  Py_XDECREF(value);
  return out;
}

TEST(WatchdogDumpThreadsTest, DumpHasExactlyTheTargetsThreads) {
  ASSERT_TRUE(
      RunTargetCode("import threading\n"
                    "stop = threading.Event()\n"
                    "def wait_for_stop():\n"
                    "    stop.wait()\n"
                    "worker = threading.Thread(target=wait_for_stop)\n"
                    "worker.start()\n"));
  const unsigned long main_ident = TargetLong("threading.get_ident()");
  const unsigned long worker_ident = TargetLong("worker.ident");
  ASSERT_NE(worker_ident, 0u);

  EventRecorder recorder;
  Monitor monitor;
  Options options;
  options.watchdog = true;
  options.watchdog_options.stall_timeout = absl::ZeroDuration();
  options.watchdog_options.memory_interval = absl::Milliseconds(10);
  options.watchdog_options.rss_limit_bytes = 1;  // fires at the first sample
  options.watchdog_options.on_event = recorder.Callback(/*release=*/false);
  ASSERT_TRUE(monitor.Start(options).ok());
  std::vector<watchdog::Event> events = recorder.WaitFor(1, absl::Seconds(20));

  // The same moment seen by a watchdog that hides nothing: Annex's own
  // thread states are really there.
  EventRecorder plain_recorder;
  watchdog::Watchdog plain;
  watchdog::Options plain_options = options.watchdog_options;
  plain_options.on_event = plain_recorder.Callback(/*release=*/false);
  ASSERT_TRUE(plain.Start(plain_options).ok());
  std::vector<watchdog::Event> plain_events =
      plain_recorder.WaitFor(1, absl::Seconds(20));
  ASSERT_TRUE(plain.Stop().ok());
  ASSERT_TRUE(monitor.Stop().ok());
  ASSERT_TRUE(RunTargetCode("stop.set()\nworker.join()\n"));

  ASSERT_GE(events.size(), 1u);
  const std::string& dump = events[0].stack_dump;
  EXPECT_EQ(DumpedIdents(dump),
            (std::multiset<unsigned long>{main_ident, worker_ident}))
      << dump;
  EXPECT_NE(dump.find("in wait_for_stop"), std::string::npos) << dump;
  const int own = PY_VERSION_HEX < 0x030D0000 ? 2 : 1;  // + the nudger
  EXPECT_NE(
      dump.find(absl::StrCat("(", own, " thread state", own == 1 ? "" : "s",
                             " of Annex's own threads not shown)")),
      std::string::npos)
      << dump;

  ASSERT_GE(plain_events.size(), 1u);
  std::multiset<unsigned long> all = DumpedIdents(plain_events[0].stack_dump);
  EXPECT_EQ(all.size(), 2u + own) << plain_events[0].stack_dump;
  EXPECT_EQ(all.count(main_ident), 1u);
  EXPECT_EQ(all.count(worker_ident), 1u);
}

}  // namespace
}  // namespace annex

// Stack dumps under a Monitor list exactly the target's own threads: the
// thread states Annex keeps in the target (the annex thread's, and the
// nudger's on 3.11/3.12) are left out and counted, not shown as frameless
// threads of the host.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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
using ::annex::watchdog::testing::InstallTestModule;
using ::annex::watchdog::testing::Release;
using ::annex::watchdog::testing::RunUntilGateOpens;

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
                    // Daemon: a failed assertion below (which skips the
                    // stop) must not keep shutdown waiting for it.
                    "worker = threading.Thread(target=wait_for_stop,\n"
                    "                          daemon=True)\n"
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
  std::vector<watchdog::Event> events = recorder.WaitFor(1);

  // The same moment seen by a watchdog that hides nothing: Annex's own
  // thread states are really there.
  EventRecorder plain_recorder;
  watchdog::Watchdog plain;
  watchdog::Options plain_options = options.watchdog_options;
  plain_options.on_event = plain_recorder.Callback(/*release=*/false);
  ASSERT_TRUE(plain.Start(plain_options).ok());
  std::vector<watchdog::Event> plain_events = plain_recorder.WaitFor(1);
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

// The header line of thread `ident` in a dump, "" if absent.
std::string HeaderOf(const std::string& dump, unsigned long ident) {
  const std::string prefix = absl::StrFormat("Thread 0x%016lx ", ident);
  for (absl::string_view line : absl::StrSplit(dump, '\n')) {
    if (absl::StartsWith(line, prefix)) return std::string{line};
  }
  return "";
}

// Dumps and events show threading's names beside the OS names: copied by
// the heartbeat (main thread, GIL held), so a thread threading does not
// know (started with _thread) shows none.
TEST(WatchdogDumpThreadsTest, DumpsShowPythonThreadNames) {
  InstallTestModule();
  ASSERT_TRUE(
      RunTargetCode("import threading, _thread, time\n"
                    "named_stop = threading.Event()\n"
                    "named = threading.Thread(target=named_stop.wait,\n"
                    "                         name='py-worker \\u00e9',\n"
                    "                         daemon=True)\n"
                    "named.start()\n"
                    "raw_lock = _thread.allocate_lock()\n"
                    "raw_lock.acquire()\n"
                    "raw_ident = []\n"
                    "def raw():\n"
                    "    raw_ident.append(_thread.get_ident())\n"
                    "    raw_lock.acquire()\n"
                    "_thread.start_new_thread(raw, ())\n"
                    "while not raw_ident:\n"
                    "    time.sleep(0.001)\n"));
  const unsigned long main_ident = TargetLong("threading.get_ident()");
  const unsigned long named_ident = TargetLong("named.ident");
  const unsigned long raw_ident = TargetLong("raw_ident[0]");

  EventRecorder recorder;
  auto record = recorder.Callback(/*release=*/false);
  watchdog::Watchdog dog;
  watchdog::Options options;
  options.stall_timeout = absl::Milliseconds(500);
  // Only the stall this test provokes ends the spin (main stuck in C).
  options.on_event = [record](const watchdog::Event& e) {
    record(e);
    if (e.type == watchdog::EventType::kStall &&
        e.stall_kind == watchdog::StallKind::kStuckInC && e.thread.is_main) {
      Release();
    }
  };
  ASSERT_TRUE(dog.Start(options).ok());
  // Main serves heartbeats (each copies the names) until one was served,
  // then spins in C holding the GIL.
  // (Not WaitUntil: PyGILState_Check says yes on any thread once a
  // sub-interpreter existed, as in the test above.)
  const bool ran =
      RunUntilGateOpens([&dog] { return dog.Metrics().heartbeats_served >= 1; },
                        [] {
                          return RunTargetCode(
                              "import _wdtest\n"
                              "while not _wdtest.gate():\n"
                              "    time.sleep(0.002)\n"
                              "_wdtest.spin_in_c()\n");
                        });
  ASSERT_TRUE(ran);
  ASSERT_TRUE(dog.Stop().ok());
  ASSERT_TRUE(
      RunTargetCode("named_stop.set()\nnamed.join()\n"
                    "raw_lock.release()\n"));

  const watchdog::Event* stall = nullptr;
  std::vector<watchdog::Event> events = recorder.events();
  for (const watchdog::Event& e : events) {
    if (e.type == watchdog::EventType::kStall &&
        e.stall_kind == watchdog::StallKind::kStuckInC && e.thread.is_main) {
      stall = &e;
      break;
    }
  }
  ASSERT_NE(stall, nullptr)
      << "no stuck-in-C stall of main among " << events.size() << " events";
  EXPECT_EQ(stall->thread.python_name, "MainThread");
  EXPECT_NE(stall->summary.find("python_name=\"MainThread\""),
            std::string::npos)
      << stall->summary;
  const std::string& dump = stall->stack_dump;
  EXPECT_NE(HeaderOf(dump, main_ident).find(", Python \"MainThread\")"),
            std::string::npos)
      << dump;
  EXPECT_NE(HeaderOf(dump, named_ident).find(", Python \"py-worker \\xe9\")"),
            std::string::npos)
      << dump;
  const std::string raw_header = HeaderOf(dump, raw_ident);
  EXPECT_NE(raw_header, "") << dump;
  EXPECT_EQ(raw_header.find("Python"), std::string::npos) << raw_header;
}

}  // namespace
}  // namespace annex

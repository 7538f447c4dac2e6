// The public Monitor API from a host's point of view.
#include "monitor/monitor.h"

#include <Python.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

using ::annex::testing::TargetLong;

// The console's REPL semantics are Python compiled into the binary from
// monitor/services/console_repl.py: code runs under its run(), which
// tracebacks leave out.
TEST(MonitorTest, ExecInAnnexReturnsOutputAndErrors) {
  Monitor monitor;
  ASSERT_TRUE(monitor.Start().ok());
  auto out = monitor.ExecInAnnex(
      "import sys\n"
      "f = sys._getframe(1)\n"
      "print(6 * 7, f.f_code.co_filename, f.f_code.co_name)\n");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "42 monitor/services/console_repl.py run\n");
  auto err = monitor.ExecInAnnex("x = 1\n1/0");
  EXPECT_EQ(err.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(err.status().message());
  EXPECT_NE(message.find("ZeroDivisionError"), std::string::npos);
  EXPECT_NE(message.find("File \"<console>\", line 2"), std::string::npos)
      << message;
  EXPECT_EQ(message.find("console_repl.py"), std::string::npos) << message;
  auto again = monitor.ExecInAnnex("print('after error')");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, "after error\n");
  // input() would read the host's stdin (and block there, beyond any
  // interrupt): refused, and the target's input() is untouched.
  auto input = monitor.ExecInAnnex("input('name? ')");
  EXPECT_EQ(input.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(input.status().message().find(
                "RuntimeError: input() is not available in the annex"),
            std::string::npos)
      << input.status();
  PyObject* target_input =
      PyDict_GetItemString(PyEval_GetBuiltins(), "input");  // borrowed
  ASSERT_NE(target_input, nullptr);
  EXPECT_TRUE(PyCFunction_Check(target_input));
  EXPECT_EQ(PyCFunction_GetSelf(target_input) != nullptr, true)
      << "the target's input() is the builtins module's own";
  EXPECT_TRUE(monitor.Stop().ok());
}

TEST(MonitorTest, ExecInAnnexSessionsKeepTheirNamespaces) {
  Monitor monitor;
  EXPECT_EQ(monitor.ExecInAnnex("x = 1", 1).status().code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE(monitor.Start().ok());
  ASSERT_TRUE(monitor.ExecInAnnex("x = 6", 1).ok());
  ASSERT_TRUE(monitor.ExecInAnnex("x = 'other'", 2).ok());
  auto one = monitor.ExecInAnnex("x * 7", 1);  // an expression echoes
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, "42\n");
  auto two = monitor.ExecInAnnex("x", 2);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(*two, "'other'\n");
  // The one-off form sees neither session's names.
  EXPECT_EQ(monitor.ExecInAnnex("x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(monitor.ExecInAnnex("x", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(monitor.ExecInAnnex("for i in range(3):", 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(monitor.ReleaseAnnexNamespace(1).ok());
  auto gone = monitor.ExecInAnnex("x", 1);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(gone.status().message().find("NameError"), std::string::npos);
  EXPECT_TRUE(monitor.Stop().ok());
}

// What hp.memory() says of the identity watch: the number of objects
// watched for all hp objects ("N objects watched").
std::string WatchLine(Monitor& monitor, uint64_t namespace_id) {
  auto out = monitor.ExecInAnnex(
      "print([l for l in str(hp.memory()).splitlines() "
      "if l.startswith('Identity watch')][0])",
      namespace_id);
  return out.ok() ? *out : std::string{out.status().message()};
}

// A session's kept sets stop being watched once the session is released,
// also when its namespace sits in a reference cycle (a function defined in
// it, an exception with its traceback kept): the target's allocations
// must not pay for sets nobody can ask about any more.
TEST(MonitorTest, ReleasedSessionsStopWatchingTheirSets) {
  Monitor monitor;
  ASSERT_TRUE(monitor.Start().ok());
  ASSERT_TRUE(monitor.ExecInAnnex("h = hp.heap()", 1).ok());
  ASSERT_TRUE(monitor.ExecInAnnex("again = lambda: h.count", 1).ok());
  // An exception kept in the session keeps its traceback, whose frames
  // hold the namespace as their globals.
  ASSERT_TRUE(monitor
                  .ExecInAnnex("exec('try:\\n 1/0\\n"
                               "except Exception as x:\\n e = x')",
                               1)
                  .ok());
  ASSERT_TRUE(
      monitor.ExecInAnnex("assert e.__traceback__ is not None", 1).ok());
  std::string watching = WatchLine(monitor, 2);
  EXPECT_NE(watching.find("hooks installed"), std::string::npos) << watching;
  EXPECT_EQ(watching.find(" 0 objects watched"), std::string::npos) << watching;
  ASSERT_TRUE(monitor.ReleaseAnnexNamespace(1).ok());
  std::string after = WatchLine(monitor, 2);
  EXPECT_NE(after.find(" 0 objects watched, hooks off"), std::string::npos)
      << after;
  EXPECT_TRUE(monitor.Stop().ok());
}

const glue::StatRow* FindRow(const glue::Stat& stat, const std::string& kind) {
  for (const glue::StatRow& r : stat.rows) {
    if (r.kind == kind) return &r;
  }
  return nullptr;
}

TEST(MonitorTest, HeapSummaryCountsKindsAsTheTargetDoes) {
  Monitor monitor;
  EXPECT_EQ(monitor.HeapSummary().status().code(),
            absl::StatusCode::kUnavailable);
  // After 64 warm-up instances (which take the class's own one-off
  // allocations), the instances are made while tracemalloc traces, in two
  // batches: the allocator's bytes for each beyond sys.getsizeof are the
  // instances' attribute values blocks, which HeapSummary counts in their
  // size. The first 100 then get a __dict__ object: on 3.11/3.12 the dict
  // takes their blocks over (and is counted as a dict), on 3.13 the inline
  // area stays in the instance.
  ASSERT_TRUE(::annex::testing::RunTargetCode(R"(
exec(compile('''
import sys, tracemalloc
class HsObj:
    def __init__(self, i): self.i = i
def hs_make(out, first, n):
    for k in range(n):
        out[first + k] = HsObj(first + k)
hs_make([None] * 64, 0, 64)  # one-off allocations of the class first
hs_keep = [None] * 257
def hs_blocks(first, n):
    tracemalloc.start()
    hs_make(hs_keep, first, n)
    snap = tracemalloc.take_snapshot()
    tracemalloc.stop()
    mine = snap.filter_traces([tracemalloc.Filter(True, 'hs_fixture.py')])
    return (sum(t.size for t in mine.traces)
            - sum(sys.getsizeof(o) for o in hs_keep[first:first + n]))
hs_dict_blocks = hs_blocks(0, 100)
hs_kept_blocks = hs_blocks(100, 157)
hs_dicts = [vars(o) for o in hs_keep[:100]]
hs_values = hs_kept_blocks + (
    hs_dict_blocks if sys.version_info >= (3, 13) else 0)
''', 'hs_fixture.py', 'exec'))
)"));
  EXPECT_GE(TargetLong("hs_kept_blocks"), 157 * 2 * 8);
  const long obj_size =
      TargetLong("sum(sys.getsizeof(o) for o in hs_keep) + hs_values");
  const long dict_size = TargetLong("sum(sys.getsizeof(d) for d in hs_dicts)");
  ASSERT_TRUE(monitor.Start().ok());
  // From the host's thread, which holds the GIL.
  absl::StatusOr<glue::Stat> clodo = monitor.HeapSummary();
  ASSERT_TRUE(clodo.ok()) << clodo.status();
  EXPECT_EQ(clodo->er, "Clodo");
  EXPECT_EQ(clodo->kind_header, "Kind (class / dict of class)");
  const glue::StatRow* objs = FindRow(*clodo, "__main__.HsObj");
  const glue::StatRow* dicts = FindRow(*clodo, "dict of __main__.HsObj");
  ASSERT_NE(objs, nullptr);
  ASSERT_NE(dicts, nullptr);
  EXPECT_EQ(objs->count, 257);
  EXPECT_EQ(objs->size, obj_size);
  EXPECT_EQ(dicts->count, 100);
  EXPECT_EQ(dicts->size, dict_size);
  int64_t count = 0, size = 0;
  for (const glue::StatRow& r : clodo->rows) {
    count += r.count;
    size += r.size;
  }
  EXPECT_EQ(count, clodo->count);
  EXPECT_EQ(size, clodo->size);
  EXPECT_EQ(
      clodo->Table().rfind(
          "Partition of a set of " + std::to_string(count) + " objects.", 0),
      0u);
  // From another thread while the host's thread waits without the GIL.
  absl::StatusOr<glue::Stat> top = absl::UnknownError("not run");
  Py_BEGIN_ALLOW_THREADS std::thread asker(
      [&] { top = monitor.HeapSummary("Type", 5); });
  asker.join();
  Py_END_ALLOW_THREADS ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(top->kind_header, "Type");
  ASSERT_EQ(top->rows.size(), 6u);  // five kinds and "<Other>"
  EXPECT_NE(FindRow(*top, "<Other>"), nullptr);
  int64_t top_count = 0;
  for (const glue::StatRow& r : top->rows) top_count += r.count;
  EXPECT_EQ(top_count, top->count);
  EXPECT_EQ(monitor.HeapSummary("Kind").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(monitor.HeapSummary("Prod").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(monitor.Stop().ok());
  EXPECT_EQ(monitor.HeapSummary().status().code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE(::annex::testing::RunTargetCode("del hs_keep, hs_dicts"));
}

TEST(MonitorTest, HpBuildsServicesAndGivesStdlibModules) {
  ASSERT_TRUE(::annex::testing::RunTargetCode(
      "import threading, time\n"
      "_hp_stop = threading.Event()\n"
      "def _hp_sleeper():\n"
      "    _hp_stop.wait()\n"
      "_hp_t = threading.Thread(target=_hp_sleeper, name='sleeper')\n"
      "_hp_t.start()\n"));
  Monitor monitor;
  ASSERT_TRUE(monitor.Start().ok());
  auto out = monitor.ExecInAnnex(
      "print(sorted(dir(hp)))\n"
      "print(hp.stdlib.json.dumps({'a': 1}))\n"
      "print(hp.stdlib.json is __import__('json'))\n"
      "print('\"sleeper\"' in hp.threads())\n"
      "print('in _hp_sleeper' in hp.stacks())\n"
      "print(type(hp).__module__, 'annex' in __import__('sys').modules)\n");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(
      *out,
      "['Anything', 'Clodo', 'Id', 'Idset', 'Module', 'Nothing', 'Prod', "
      "'Rcs', 'Root', 'Size', 'Type', 'Unity', "
      "'Via', 'clearref', 'doc', 'heap', 'heapu', 'idset', 'iso', 'load', "
      "'loadall', 'memory', 'pause_limit', 'pb', 'record', 'setref', "
      "'setrelheap', 'setrelheapu', 'stacks', 'stdlib', 'threads']\n"
      "{\"a\": 1}\nTrue\nTrue\nTrue\n"
      "annex True\n");
  auto missing = monitor.ExecInAnnex("hp.no_such_thing_here");
  EXPECT_NE(missing.status().message().find(
                "hp has no attribute 'no_such_thing_here'"),
            absl::string_view::npos)
      << missing.status();
  // The target never sees the annex's module.
  PyObject* in_target =
      ::annex::testing::EvalTarget("'annex' in __import__('sys').modules");
  EXPECT_EQ(in_target, Py_False);
  Py_XDECREF(in_target);
  EXPECT_TRUE(monitor.Stop().ok());
  ASSERT_TRUE(::annex::testing::RunTargetCode("_hp_stop.set(); _hp_t.join()"));
}

// Listing threads runs none of the target's code: a Thread whose class
// overrides __getattribute__ is not asked for its name (it shows none),
// while plain threads keep theirs.
TEST(MonitorTest, ThreadsRunNoTargetCode) {
  ASSERT_TRUE(::annex::testing::RunTargetCode(
      "import threading\n"
      "_tn_calls = []\n"
      "_tn_watch = [False]\n"
      "class _TnSpy(threading.Thread):\n"
      "    def __getattribute__(self, name):\n"
      "        if _tn_watch[0]:\n"
      "            _tn_calls.append(name)\n"
      "        return super().__getattribute__(name)\n"
      "_tn_stop = threading.Event()\n"
      "_tn_spy = _TnSpy(target=_tn_stop.wait, name='spied')\n"
      "_tn_plain = threading.Thread(target=_tn_stop.wait, name='plainone')\n"
      "_tn_spy.start(); _tn_plain.start()\n"
      "_tn_watch[0] = True\n"));
  Monitor monitor;
  ASSERT_TRUE(monitor.Start().ok());
  auto out = monitor.ExecInAnnex(
      "t = hp.threads(); s = hp.stacks()\n"
      "print('\"plainone\"' in t, '\"plainone\"' in s)\n"
      "print('spied' in t, 'spied' in s)\n");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "True True\nFalse False\n");
  EXPECT_TRUE(monitor.Stop().ok());
  PyObject* calls = ::annex::testing::EvalTarget("len(_tn_calls)");
  ASSERT_NE(calls, nullptr);
  EXPECT_EQ(PyLong_AsLong(calls), 0);
  Py_DECREF(calls);
  ASSERT_TRUE(::annex::testing::RunTargetCode(
      "_tn_watch[0] = False\n_tn_stop.set(); _tn_spy.join(); "
      "_tn_plain.join()\n"
      "del _tn_calls, _tn_watch, _TnSpy, _tn_stop, _tn_spy, _tn_plain"));
}

TEST(MonitorTest, WatchdogOptionEndsAStuckLoopAndCountsTheStall) {
  Monitor monitor;
  Options options;
  options.watchdog = true;
  options.watchdog_options.stall_timeout = absl::Milliseconds(300);
  options.watchdog_options.raise_exception = true;  // TimeoutError
  ASSERT_TRUE(monitor.Start(options).ok());
  // A loop the host never ends itself; the watchdog's exception ends it
  // (if it never comes, the test runner's timeout does).
  EXPECT_FALSE(::annex::testing::RunTargetCode("while True: pass\n"));
  EXPECT_GE(monitor.Metrics().stalls, 1);
  EXPECT_GE(monitor.Metrics().exceptions_raised, 1);
  EXPECT_TRUE(monitor.Stop().ok());
  EXPECT_FALSE(monitor.Metrics().running);
}

// Waits until annex code created `path` (its way to say it runs). The
// test's main thread holds the GIL (python_main.h): released while waiting,
// or the annex could never run that code.
void WaitForFile(const std::string& path) {
  PyThreadState* saved = PyGILState_Check() ? PyEval_SaveThread() : nullptr;
  for (;;) {
    if (std::FILE* f = std::fopen(path.c_str(), "r"); f != nullptr) {
      std::fclose(f);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (saved != nullptr) PyEval_RestoreThread(saved);
}

// Issue 16: a timeout interrupts host-submitted code, including the annex's
// time.sleep, and leaves the annex free for the next call (which would wait
// out the 60 s sleep, and time out itself, if the sleep went on).
TEST(MonitorTest, TimeoutInterruptsASleepAndTheAnnexStaysUsable) {
  Monitor monitor;
  ASSERT_TRUE(monitor.Start().ok());
  // The console helper is set up by the first call: not inside the timeout.
  ASSERT_TRUE(monitor.ExecInAnnex("import time").ok());
  auto slept = monitor.ExecInAnnex("import time\ntime.sleep(60)\nprint('no')",
                                   absl::Milliseconds(200));
  EXPECT_EQ(slept.status().code(), absl::StatusCode::kDeadlineExceeded)
      << slept.status();
  EXPECT_NE(slept.status().message().find("KeyboardInterrupt"),
            std::string::npos)
      << slept.status();
  auto next = monitor.ExecInAnnex("print('free')", absl::Seconds(30));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, "free\n");
  // Sessions too; a timed-out session keeps its namespace.
  ASSERT_TRUE(monitor.ExecInAnnex("x = 7", 1).ok());
  auto in_session = monitor.ExecInAnnex("import time; time.sleep(60)", 1,
                                        absl::Milliseconds(200));
  EXPECT_EQ(in_session.status().code(), absl::StatusCode::kDeadlineExceeded);
  auto x = monitor.ExecInAnnex("x * 6", 1, absl::Seconds(30));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(*x, "42\n");
  // The target's own time.sleep is not the annex's replacement.
  PyGILState_STATE g = PyGILState_Ensure();
  PyObject* time = PyImport_ImportModule("time");
  ASSERT_NE(time, nullptr);
  PyObject* sleep = PyObject_GetAttrString(time, "sleep");
  ASSERT_NE(sleep, nullptr);
  PyObject* doc = PyObject_GetAttrString(sleep, "__doc__");
  ASSERT_NE(doc, nullptr);
  EXPECT_EQ(std::string(PyUnicode_AsUTF8(doc)).find("console Ctrl-C"),
            std::string::npos);
  Py_DECREF(doc);
  Py_DECREF(sleep);
  Py_DECREF(time);
  PyGILState_Release(g);
  EXPECT_TRUE(monitor.Stop().ok());
}

TEST(MonitorTest, InterruptEndsHostCode) {
  Monitor monitor;
  ASSERT_TRUE(monitor.Start().ok());
  std::string flag = ::testing::TempDir() + "/interrupt_started";
  std::remove(flag.c_str());
  absl::StatusOr<std::string> result;
  std::thread host([&] {
    result = monitor.ExecInAnnex("open(" + std::string("'") + flag +
                                 "', 'w').close()\nwhile True:\n    pass\n");
  });
  WaitForFile(flag);
  // The loop runs (it wrote the flag first); interrupt until it ends (a
  // request made between two work items is dropped).
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    host.join();
    done = true;
  });
  PyThreadState* saved = PyEval_SaveThread();  // the annex needs the GIL
  while (!done) {
    monitor.Interrupt();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  waiter.join();
  PyEval_RestoreThread(saved);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("KeyboardInterrupt"),
            std::string::npos)
      << result.status();
  EXPECT_TRUE(monitor.Stop().ok());
}

// Stop() used to wait forever for host code that loops.
TEST(MonitorTest, StopReturnsWhileHostCodeLoops) {
  Monitor monitor;
  ASSERT_TRUE(monitor.Start().ok());
  std::string flag = ::testing::TempDir() + "/loop_started";
  std::remove(flag.c_str());
  absl::StatusOr<std::string> result;
  std::thread host([&] {
    result = monitor.ExecInAnnex("open(" + std::string("'") + flag +
                                 "', 'w').close()\nwhile True:\n    pass\n");
  });
  WaitForFile(flag);
  EXPECT_TRUE(monitor.Stop().ok());
  PyThreadState* saved = PyEval_SaveThread();  // the annex needs the GIL
  host.join();
  PyEval_RestoreThread(saved);
  EXPECT_FALSE(result.ok());
  EXPECT_FALSE(monitor.running());
}

// Host threads that keep calling the annex while another thread stops the
// monitor get answers or errors, never a freed executor: Stop() waits for
// the calls in flight (a call returning from the annex used to reach for
// the executor Stop had just freed).
TEST(MonitorTest, StopWaitsForHostCallsInFlight) {
  for (int round = 0; round < 20; ++round) {
    Monitor monitor;
    ASSERT_TRUE(monitor.Start().ok());
    std::atomic<int> answered{0}, ended{0};
    std::vector<std::thread> hosts;
    hosts.reserve(3);
    for (int t = 0; t < 3; ++t) {
      hosts.emplace_back([&monitor, &answered, &ended, t] {
        // Until the monitor refuses: every answer is the right one, and
        // every error one that says why.
        for (int i = 0;; ++i) {
          absl::StatusOr<std::string> r =
              (i + t) % 2 == 0 ? monitor.ExecInAnnex("print(6 * 7)")
                               : monitor.ExecInAnnex("print(6 * 7)", 1);
          if (!r.ok()) {
            EXPECT_FALSE(r.status().message().empty());
            break;
          }
          EXPECT_EQ(*r, "42\n");
          ++answered;
        }
        ++ended;
      });
    }
    // Stop while the calls come and go (the annex needs the GIL).
    PyThreadState* saved = PyEval_SaveThread();
    while (answered.load() < 3 && ended.load() == 0) {
      std::this_thread::yield();
    }
    PyEval_RestoreThread(saved);
    EXPECT_EQ(ended.load(), 0) << "a call failed before Stop()";
    EXPECT_TRUE(monitor.Stop().ok());
    saved = PyEval_SaveThread();
    for (std::thread& h : hosts) h.join();
    PyEval_RestoreThread(saved);
    EXPECT_FALSE(monitor.running());
  }
}

// Two threads stopping one monitor while host code loops in the annex:
// the one that holds the GIL waits for the other's Stop() with the GIL
// released. (It used to wait holding it: the other's Stop() waited for
// the annex to take the interrupt, which needs the GIL, and both waited
// forever.)
TEST(MonitorTest, StopsFromTwoThreadsWaitForEachOtherWithoutTheGil) {
  Monitor monitor;
  ASSERT_TRUE(monitor.Start().ok());
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  absl::StatusOr<std::string> looped = std::string("not run");
  absl::Status first_stop;
  PyThreadState* saved = PyEval_SaveThread();
  std::thread host([&] {
    // Tells the test it runs, then loops until Stop() interrupts it.
    looped = monitor.ExecInAnnex(absl::StrCat("import os\nos.write(", ready[1],
                                              ", b'x')\nwhile True: pass\n"));
  });
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  std::thread stopper([&] { first_stop = monitor.Stop(); });
  // The stopper holds Start/Stop's turn once host calls are refused.
  while (monitor.running()) std::this_thread::yield();
  PyEval_RestoreThread(saved);
  EXPECT_TRUE(monitor.Stop().ok());  // with the GIL held, as a host would
  saved = PyEval_SaveThread();
  stopper.join();
  host.join();
  PyEval_RestoreThread(saved);
  EXPECT_TRUE(first_stop.ok()) << first_stop;
  EXPECT_FALSE(looped.ok());  // interrupted, an error that says so
  EXPECT_FALSE(looped.status().message().empty());
  EXPECT_FALSE(monitor.running());
  close(ready[0]);
  close(ready[1]);
}

}  // namespace
}  // namespace annex

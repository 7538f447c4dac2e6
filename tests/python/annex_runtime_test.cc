// The annex interpreter's lifecycle and the GIL hand-off in both directions.
#include "monitor/python/annex_runtime.h"

#include <Python.h>

#include <atomic>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "monitor/python/guards.h"
#include "tests/testing/python_main.h"

namespace annex::python {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetLong;

std::unique_ptr<AnnexRuntime> MustStart(AnnexOptions options = {}) {
  auto rt = AnnexRuntime::Start(std::move(options));
  EXPECT_TRUE(rt.ok()) << rt.status();
  return rt.ok() ? std::move(*rt) : nullptr;
}

TEST(AnnexRuntimeTest, RunsWorkInASecondInterpreterSharingTheGil) {
  auto rt = MustStart();
  ASSERT_NE(rt, nullptr);
  PyInterpreterState* seen = nullptr;
  bool gil = false;
  std::string answer;
  ASSERT_TRUE(rt->Run([&](const ThreadStates& ts) {
                  seen = PyInterpreterState_Get();
                  gil =
                      PyGILState_Check() || PyThreadState_Get() == ts.annex_ts;
                  PyObject* globals = PyDict_New();
                  PyObject* r = PyRun_String("str(6 * 7)", Py_eval_input,
                                             globals, globals);
                  ASSERT_NE(r, nullptr);
                  answer = PyUnicode_AsUTF8(r);
                  Py_DECREF(r);
                  Py_DECREF(globals);
                }).ok());
  EXPECT_NE(seen, nullptr);
  EXPECT_NE(seen, PyInterpreterState_Main());
  EXPECT_EQ(seen, rt->annex());
  EXPECT_TRUE(gil);
  EXPECT_EQ(answer, "42");
  EXPECT_TRUE(rt->Stop().ok());
  EXPECT_TRUE(rt->Stop().ok()) << "stopping twice is harmless";
  EXPECT_EQ(rt->Run([](const ThreadStates&) {}).code(),
            absl::StatusCode::kUnavailable);
}

TEST(AnnexRuntimeTest, TargetSwapSeesTheTargetsModules) {
  ASSERT_TRUE(RunTargetCode("import json as _annex_probe_json"));
  auto rt = MustStart();
  ASSERT_NE(rt, nullptr);
  bool annex_has = true, target_has = false;
  ASSERT_TRUE(rt->Run([&](const ThreadStates& ts) {
                  annex_has = PyDict_GetItemString(PyImport_GetModuleDict(),
                                                   "json") != nullptr;
                  ScopedTargetSwap swap(ts);
                  target_has = PyDict_GetItemString(PyImport_GetModuleDict(),
                                                    "json") != nullptr;
                }).ok());
  EXPECT_FALSE(annex_has) << "the annex has its own sys.modules";
  EXPECT_TRUE(target_has);
}

// The annex must get in while a target thread is still in a CPU-bound loop,
// not after it ends (docs/design.md rule 2). The loop ends only when the
// annex has run: if it never gets in, the test hangs until the test
// runner's timeout (no deadline of its own, which a loaded machine could
// pass).
constexpr char kBusyLoop[] = R"(
def _annex_busy(flag):
    while not flag[0]:
        pass
_annex_flag = bytearray(1)
)";

void SetFlagFromAnnex(AnnexRuntime& rt, PyObject* flag) {
  ASSERT_TRUE(rt.Run([&](const ThreadStates&) {
                  PyByteArray_AS_STRING(flag)[0] = 1;
                }).ok());
}

TEST(AnnexRuntimeTest, EntersWhileTargetMainThreadIsBusy) {
  ASSERT_TRUE(RunTargetCode(kBusyLoop));
  auto rt = MustStart();
  ASSERT_NE(rt, nullptr);
  PyObject* flag = EvalTarget("_annex_flag");
  ASSERT_NE(flag, nullptr);
  std::thread asker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    SetFlagFromAnnex(*rt, flag);
  });
  // This (main) thread holds the GIL and spins in Python until the annex
  // got in and set the flag.
  EXPECT_TRUE(RunTargetCode("_annex_busy(_annex_flag)"));
  Py_BEGIN_ALLOW_THREADS asker.join();
  Py_END_ALLOW_THREADS Py_DECREF(flag);
}

TEST(AnnexRuntimeTest, EntersWhileTargetWorkerThreadIsBusy) {
  ASSERT_TRUE(RunTargetCode(kBusyLoop));
  ASSERT_TRUE(RunTargetCode(R"(
import threading
_annex_worker = threading.Thread(target=_annex_busy, args=(_annex_flag,))
_annex_worker.start()
)"));
  auto rt = MustStart();
  ASSERT_NE(rt, nullptr);
  PyObject* flag = EvalTarget("_annex_flag");
  ASSERT_NE(flag, nullptr);
  std::thread asker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    SetFlagFromAnnex(*rt, flag);
  });
  // join() releases the GIL: only the worker competes with the annex. It
  // returns once the annex got in and set the flag.
  EXPECT_TRUE(RunTargetCode("_annex_worker.join()"));
  Py_BEGIN_ALLOW_THREADS asker.join();
  Py_END_ALLOW_THREADS Py_DECREF(flag);
}

TEST(AnnexRuntimeTest, PythonLoopInAnnexYieldsToTargetThreads) {
  ASSERT_TRUE(RunTargetCode(R"(
import threading, time
_annex_count = [0]
_annex_stop = []
def _annex_counter():
    while not _annex_stop:
        _annex_count[0] += 1
_annex_counter_thread = threading.Thread(target=_annex_counter)
_annex_counter_thread.start()
)"));
  auto rt = MustStart();
  ASSERT_NE(rt, nullptr);
  PyObject* box = EvalTarget("_annex_count");
  ASSERT_NE(box, nullptr);
  long before = -1, after = -1;
  // The annex runs Python (whose eval breaker can hand the GIL to the
  // target's thread) until the target's counter moved, however long a
  // loaded machine takes; if the annex never yields, the test hangs until
  // the test runner's timeout (a fixed 0.5 s loop could end before a loaded
  // machine ran the target's thread).
  ASSERT_TRUE(rt->Run([&](const ThreadStates&) {
                  before = PyLong_AsLong(PyList_GET_ITEM(box, 0));
                  PyObject* g = PyDict_New();
                  do {
                    PyObject* r = PyRun_String("for _ in range(10000): pass\n",
                                               Py_file_input, g, g);
                    EXPECT_NE(r, nullptr);
                    if (r == nullptr) break;
                    Py_DECREF(r);
                    after = PyLong_AsLong(PyList_GET_ITEM(box, 0));
                  } while (after == before);
                  Py_DECREF(g);
                }).ok());
  EXPECT_GT(after, before) << "the target thread never ran during the loop";
  EXPECT_GT(rt->yields(), 0);
  ASSERT_TRUE(
      RunTargetCode("_annex_stop.append(1); _annex_counter_thread.join()"));
  Py_DECREF(box);
}

TEST(AnnexRuntimeTest, InterruptStopsPythonLoopInAnnex) {
  auto rt = MustStart();
  ASSERT_NE(rt, nullptr);
  std::atomic<bool> started{false};
  bool interrupted = false;
  std::thread stopper([&] {
    while (!started.load()) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    rt->Interrupt();
  });
  ASSERT_TRUE(rt->Run([&](const ThreadStates&) {
                  started.store(true);
                  PyObject* g = PyDict_New();
                  PyObject* r =
                      PyRun_String("while True: pass\n", Py_file_input, g, g);
                  interrupted = r == nullptr &&
                                PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
                  PyErr_Clear();
                  Py_XDECREF(r);
                  Py_DECREF(g);
                }).ok());
  EXPECT_TRUE(interrupted);
  Py_BEGIN_ALLOW_THREADS stopper.join();
  Py_END_ALLOW_THREADS
}

// A work item still queued when the runtime stops is dropped unrun, and
// RunWithin says so: finished, not started, Unavailable (callers take a
// started item's reply for its answer: an ExecInAnnex racing Stop()
// returned OK with empty output).
TEST(AnnexRuntimeTest, WorkDroppedAtStopIsReportedNotStarted) {
  auto rt = MustStart();
  ASSERT_NE(rt, nullptr);
  std::atomic<bool> blocking{false}, ran{false};
  // The first item holds the annex in a Python loop until Stop()
  // interrupts it (as it does host code), which it does only once stopping
  // was requested: the second is dropped then.
  ASSERT_TRUE(rt->Post([&](const ThreadStates&) {
                  blocking.store(true);
                  PyRun_SimpleString("while True: pass\n");
                }).ok());
  AnnexRuntime::RunOutcome outcome;
  absl::Status status;
  std::thread caller([&] {
    status = rt->RunWithin([&](const ThreadStates&) { ran.store(true); },
                           absl::InfiniteFuture(), nullptr,
                           absl::ZeroDuration(), &outcome);
  });
  Py_BEGIN_ALLOW_THREADS while (!blocking.load() || rt->queued() == 0) {
    std::this_thread::yield();
  }
  Py_END_ALLOW_THREADS EXPECT_TRUE(rt->Stop().ok());
  Py_BEGIN_ALLOW_THREADS caller.join();
  Py_END_ALLOW_THREADS EXPECT_FALSE(ran.load());
  EXPECT_TRUE(outcome.finished);
  EXPECT_FALSE(outcome.started);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
}

TEST(AnnexRuntimeTest, IdleAnnexLeavesTargetUndisturbed) {
  // CPython 3.11 itself changes the main interpreter's gc lists once per
  // process: the first Py_NewInterpreter() replaces the cached copies of the
  // sys and builtins module dicts (their m_copy), freeing the main
  // interpreter's two. That is CPython's, not Annex's: do it first.
  ::annex::testing::BareSubinterpreterCycle();
  // Compares object identities: which gc-tracked objects appeared or
  // vanished, naming them on failure. The snapshot's own transient objects
  // (its comprehension and module functions, its result) are left out.
  ASSERT_TRUE(RunTargetCode(R"(
import gc, sys, threading
def _annex_snapshot():
    for _ in range(5):   # gc untracks nested tuples one level per pass
        gc.collect()
    return ({id(o): type(o).__name__ for o in gc.get_objects()
             if not (type(o).__name__ == 'function' and o.__name__[0] == '<')},
            sorted(sys.modules), sorted(t.ident for t in threading.enumerate()))
def _annex_diff(a, b):
    mine = {id(a), id(a[0]), id(a[1]), id(a[2]), id(b), id(b[0]), id(b[1]),
            id(b[2])}
    new = sorted(v for i, v in b[0].items() if i not in a[0] and i not in mine)
    gone = sorted(v for i, v in a[0].items() if i not in b[0] and i not in mine)
    return repr((new, gone))
# repr() of a container creates this thread's {'Py_Repr': [...]} entry the
# first time: create it before the first snapshot.
repr(([], {}))
)"));
  // Snapshots are taken by a direct call, not by running source: a snippet
  // run with PyRun_String keeps its parser's object list alive until it
  // ends, and that list would differ between two snippets.
  auto snapshot = [](const char* name) {
    PyObject* main = PyModule_GetDict(PyImport_AddModule("__main__"));
    PyObject* r =
        PyObject_CallNoArgs(PyDict_GetItemString(main, "_annex_snapshot"));
    ASSERT_NE(r, nullptr);
    ASSERT_EQ(PyDict_SetItemString(main, name, r), 0);
    Py_DECREF(r);
  };
  snapshot("_annex_before");
  auto rt = MustStart();
  ASSERT_NE(rt, nullptr);
  snapshot("_annex_during");
  ASSERT_TRUE(
      RunTargetCode("_annex_d1 = _annex_diff(_annex_before, _annex_during)\n"
                    "_annex_same = (_annex_before[1] == _annex_during[1],\n"
                    "               _annex_before[2] == _annex_during[2])\n"
                    "_annex_during = None\n"));
  ASSERT_TRUE(rt->Stop().ok());
  snapshot("_annex_after");
  auto text = [](const char* expr) {
    PyObject* v = EvalTarget(expr);
    std::string s = v && PyUnicode_Check(v) ? PyUnicode_AsUTF8(v) : "?";
    Py_XDECREF(v);
    return s;
  };
  EXPECT_EQ(TargetLong("int(_annex_same[0])"), 1) << "sys.modules changed";
  EXPECT_EQ(TargetLong("int(_annex_same[1])"), 1) << "thread list changed";
  EXPECT_EQ(text("_annex_d1"), "([], [])")
      << "gc-tracked objects (appeared, vanished) while the annex is idle";
  EXPECT_EQ(text("_annex_diff(_annex_before, _annex_after)"), "([], [])")
      << "gc-tracked objects (appeared, vanished) after Stop()";
  EXPECT_EQ(TargetLong("int(_annex_before[1] == _annex_after[1])"), 1);
}

TEST(AnnexRuntimeTest, StartAndStopFromAnotherThread) {
  absl::Status start, stop;
  Py_BEGIN_ALLOW_THREADS std::thread other([&] {
    auto rt = AnnexRuntime::Start({});
    start = rt.status();
    if (rt.ok()) stop = (*rt)->Stop();
  });
  other.join();
  Py_END_ALLOW_THREADS EXPECT_TRUE(start.ok()) << start;
  EXPECT_TRUE(stop.ok()) << stop;
}

TEST(AnnexRuntimeTest, OnStartErrorIsReturnedAndAnnexIsEnded) {
  AnnexOptions options;
  bool stopped = false;
  options.on_start = [](AnnexRuntime&) {
    return absl::InvalidArgumentError("refused by test");
  };
  options.on_stop = [&](AnnexRuntime&) { stopped = true; };
  auto rt = AnnexRuntime::Start(options);
  EXPECT_EQ(rt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(stopped);
}

// CPython cannot fork a process that has a sub-interpreter (the child hangs
// or aborts in PyOS_AfterFork_Child). The runtime ends the annex before each
// fork() and creates a new one in the parent afterwards; the child runs on
// without one.
TEST(AnnexRuntimeTest, ForkEndsTheAnnexAndTheParentGetsANewOne) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer cannot follow a child of a threaded "
                  "process that starts threads (it kills the child, or with "
                  "die_after_fork=0 fails its own check on the new threads)";
#endif
  int starts = 0, stops = 0;
  AnnexOptions options;
  options.on_start = [&](AnnexRuntime&) {
    ++starts;
    return absl::OkStatus();
  };
  options.on_stop = [&](AnnexRuntime&) { ++stops; };
  auto rt = MustStart(options);
  ASSERT_NE(rt, nullptr);
  ASSERT_TRUE(RunTargetCode(R"(
import os, warnings
warnings.simplefilter('ignore', DeprecationWarning)  # 3.12+: threads + fork
def _annex_fork_once():
    pid = os.fork()
    if pid == 0:
        import threading   # the child runs Python, threads included
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
        os._exit(7)
    # A child that hangs keeps this wait, and the test, until the test
    # runner's timeout.
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
_annex_fork_results = []
)"));
  // Three forks, each followed by work in the annex: the parent's new
  // annex is created before that work runs, so the next fork finds it
  // running. (Forks in a row can come before the annex thread got the GIL
  // back to create one: then one suspension covers both.)
  PyInterpreterState* seen = nullptr;
  int ran = -1;
  for (int fork = 1; fork <= 3; ++fork) {
    ASSERT_TRUE(
        RunTargetCode("_annex_fork_results.append(_annex_fork_once())"));
    ASSERT_TRUE(rt->Run([&](const ThreadStates&) {
                    seen = PyInterpreterState_Get();
                    ran = PyRun_SimpleString("x = sum(range(10))");
                  }).ok());
    EXPECT_EQ(ran, 0);
    EXPECT_EQ(rt->fork_restarts(), fork);
  }
  PyObject* results = EvalTarget("repr(_annex_fork_results)");
  ASSERT_NE(results, nullptr);
  EXPECT_STREQ(PyUnicode_AsUTF8(results), "[7, 7, 7]");
  Py_DECREF(results);
  EXPECT_NE(seen, PyInterpreterState_Main());
  EXPECT_EQ(seen, rt->annex());
  EXPECT_EQ(starts, 4);
  EXPECT_EQ(stops, 3);
  ASSERT_TRUE(rt->Stop().ok());
  EXPECT_EQ(stops, 4);
}

TEST(AnnexRuntimeTest, StartFromAnnexCodeIsRefused) {
  auto rt = MustStart();
  ASSERT_NE(rt, nullptr);
  absl::Status nested;
  ASSERT_TRUE(rt->Run([&](const ThreadStates&) {
                  nested = AnnexRuntime::Start({}).status();
                }).ok());
  EXPECT_EQ(nested.code(), absl::StatusCode::kFailedPrecondition) << nested;
  // The annex still works.
  int ran = -1;
  ASSERT_TRUE(rt->Run([&](const ThreadStates&) {
                  ran = PyRun_SimpleString("x = 1");
                }).ok());
  EXPECT_EQ(ran, 0);
  EXPECT_TRUE(rt->Stop().ok());
}

}  // namespace
}  // namespace annex::python

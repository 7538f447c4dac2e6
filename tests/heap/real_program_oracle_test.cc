// Proof on a program nobody wrote for Annex: CPython's own test suite runs in
// a target thread while the test's main thread stops the world, now and
// then, and compares the heap engine's walk with the in-target oracle (a
// gc.get_referents walk from the same roots): members, total size and
// counts by type must agree exactly, each time.
#include <Python.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/heap/oracle_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

// The suite's thread; `_suite_outcome` is set when it ends. Its test result
// lets the main thread pause it between two tests: while paused it waits on
// an Event (GIL released), so the world stands still for both walks. (A
// trace or profile function would pause it anywhere, but some of the
// suite's tests reset those.)
constexpr char kSuite[] = R"(
import io, sys, threading, unittest
_suite_outcome = None
_pause = threading.Event()
_paused = threading.Event()
_go = threading.Event()
class _PausingResult(unittest.TextTestResult):
    def startTest(self, test):
        if _pause.is_set():
            _paused.set()
            _go.wait()
        super().startTest(test)
def _run_suite(names):
    global _suite_outcome
    try:
        suite = unittest.defaultTestLoader.loadTestsFromNames(names)
        result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0,
                                         resultclass=_PausingResult).run(suite)
        _suite_outcome = (result.testsRun, len(result.failures),
                          len(result.errors))
    except BaseException as e:
        _suite_outcome = repr(e)
    finally:
        _paused.set()   # never leave the main thread waiting
_suite_thread = threading.Thread(
    target=_run_suite, name='suite',
    args=(['test.test_json', 'test.test_collections', 'test.test_dict',
           'test.test_set', 'test.test_functools'],))
def _pause_suite():
    _go.clear()
    _paused.clear()
    _pause.set()
    _paused.wait()   # set by the suite's end too: no deadline needed
    return _suite_thread.is_alive()
def _resume_suite():
    _pause.clear()
    _go.set()
)";

bool SuiteRunning() {
  PyObject* alive = EvalTarget("_suite_thread.is_alive()");
  const bool running = alive == Py_True;
  Py_XDECREF(alive);
  return running;
}

TEST(RealProgramOracleTest, EngineEqualsOracleWhileTheStdlibSuiteRuns) {
  PyObject* has = EvalTarget(
      "__import__('importlib.util').util.find_spec('test.test_json') "
      "is not None");
  const bool installed = has == Py_True;
  Py_XDECREF(has);
  PyErr_Clear();
  if (!installed) GTEST_SKIP() << "CPython's test suite is not installed";
  ASSERT_TRUE(testing::InstallOracle());
  ASSERT_TRUE(RunTargetCode(kSuite));
  ASSERT_TRUE(RunTargetCode("_suite_thread.start()"));
  int compared = 0;
  while (SuiteRunning() && compared < 6) {
    // Let the suite run a while, with the GIL released.
    Py_BEGIN_ALLOW_THREADS std::this_thread::sleep_for(
        std::chrono::milliseconds(300));
    Py_END_ALLOW_THREADS
        // Stop the world: the suite's thread waits in the tracer.
        PyObject* paused = EvalTarget("_pause_suite()");
    const bool stopped = paused == Py_True;
    Py_XDECREF(paused);
    if (stopped) {
      testing::ExpectMatch(("comparison " + std::to_string(compared)).c_str(),
                           /*refresh_frame_locals=*/true);
    }
    ASSERT_TRUE(RunTargetCode("_resume_suite()"));
    if (!stopped) break;  // the suite ended meanwhile
    ++compared;
    if (HasFailure()) break;
  }
  ASSERT_TRUE(RunTargetCode("_suite_thread.join()"));
  PyObject* outcome = EvalTarget("repr(_suite_outcome)");
  ASSERT_NE(outcome, nullptr);
  std::string text = PyUnicode_AsUTF8(outcome);
  Py_DECREF(outcome);
  EXPECT_GE(compared, 3) << "the suite ended before 3 comparisons";
  std::printf("%d comparisons while the suite ran; suite outcome %s\n",
              compared, text.c_str());
  // (tests run, failures, errors): the suite itself still passes.
  EXPECT_EQ(text.find('('), 0u) << text;
  EXPECT_NE(text.find(", 0, 0)"), std::string::npos) << text;
}

}  // namespace
}  // namespace annex::heap

// Running frames are read in place and only real Python frames are
// reported, with their function, globals and builtins. 3.13 pushes a
// trampoline frame (code _Py_InitCleanup, no function, globals and
// builtins never written in a release build) between a class call and its
// Python __init__ once the call site is specialized; reading its globals
// as an object was the SIGSEGV under churn (issue 20). A thread blocked
// inside such an __init__ is the case. Its own binary: the call site's
// specialization must not depend on other tests.
#include <Python.h>

#include <string>

#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/python/version.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

constexpr char kSetup[] = R"py(
import dis, sys, threading

class _RfBlocker:
    def __init__(self, gate, entered):
        entered.set()
        gate.wait()

def _rf_make(gate, entered):
    return _RfBlocker(gate, entered)

def _rf_run():
    done = threading.Event()
    done.set()
    for _ in range(200):  # specializes the call site
        _rf_make(done, threading.Event())
    _rf_make(_rf_gate, _rf_entered)

_rf_gate = threading.Event()
_rf_entered = threading.Event()
_rf_thread = threading.Thread(target=_rf_run, daemon=True)
_rf_thread.start()
_rf_entered.wait()
_rf_specialized = any(i.opname == 'CALL_ALLOC_AND_ENTER_INIT'
                      for i in dis.get_instructions(_rf_make, adaptive=True))
)py";

long LongOf(const std::string& expr) {
  PyObject* v = EvalTarget(expr);
  EXPECT_NE(v, nullptr) << expr;
  long n = v != nullptr ? PyLong_AsLong(v) : -1;
  Py_XDECREF(v);
  return n;
}

TEST(RunningFramesTest, OnlyRealFramesWithTheirFunctionAndDicts) {
  ASSERT_TRUE(RunTargetCode(kSetup));
#if PY_VERSION_HEX >= 0x030D0000
  // The premise on 3.13: the class call goes through a trampoline frame.
  ASSERT_EQ(LongOf("int(_rf_specialized)"), 1);
#endif
  const unsigned long ident =
      static_cast<unsigned long>(LongOf("_rf_thread.ident"));
  PyThreadState* blocked = nullptr;
  for (PyThreadState* t =
           PyInterpreterState_ThreadHead(PyInterpreterState_Main());
       t != nullptr; t = PyThreadState_Next(t)) {
    if (python::ThreadStateId(t) == ident) blocked = t;
  }
  ASSERT_NE(blocked, nullptr);

  // No bytecode runs from here until the frames are read: the blocked
  // thread stays where it is.
  std::string names;
  int frames = 0;
  python::ForEachFrame(blocked, [&](const python::FrameView& f) {
    ++frames;
    EXPECT_TRUE(f.function != nullptr && PyFunction_Check(f.function))
        << "frame " << frames - 1 << " has no function";
    EXPECT_TRUE(f.globals != nullptr && PyDict_Check(f.globals))
        << "frame " << frames - 1 << " has no globals dict";
    EXPECT_TRUE(f.builtins != nullptr && PyDict_Check(f.builtins))
        << "frame " << frames - 1 << " has no builtins dict";
    auto* code = reinterpret_cast<PyCodeObject*>(f.code);
    const char* name = PyUnicode_AsUTF8(code->co_name);
    names += std::string(name != nullptr ? name : "?") + " ";
    return true;
  });
  // Innermost first: threading's wait frames, then the __init__ and its
  // caller with nothing between them.
  EXPECT_NE(names.find(" __init__ _rf_make _rf_run "), std::string::npos)
      << names;
  // The same frames as a traceback of the thread shows (it leaves out
  // incomplete and trampoline frames; a blocked thread has no frame in
  // its prologue).
  EXPECT_EQ(frames, LongOf("len(__import__('traceback').extract_stack("
                           "sys._current_frames()[_rf_thread.ident]))"));

  // The walk from these roots completes.
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<HeapGraph> graph = engine.Graph();
  ASSERT_TRUE(graph.ok()) << graph.status();

  ASSERT_TRUE(RunTargetCode("_rf_gate.set()\n_rf_thread.join()\n"));
}

}  // namespace
}  // namespace annex::heap

// Naming paths leaves the target as it was: a path through a frame local
// (plain and cell variable) and through an instance attribute held inline
// (3.11+ managed dicts) is named without building the frame's f_locals dict
// or materializing the instance's __dict__. Its own binary: nothing else
// may have touched those frames or instances from Python first.
#include <Python.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/heap/retention.h"
#include "monitor/python/version.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

constexpr char kSetup[] = R"py(
import sys, types
_m = types.ModuleType('quiet_app')
sys.modules['quiet_app'] = _m
exec('''
import threading, time

class Payload:
    pass

class Obj:
    pass

inst = Obj()
inst.first = 1
inst.attr = Payload()
ids = {}
stop = False
ready = threading.Event()

def sleeper():
    y = Payload()
    z = Payload()
    def inner():
        return z
    ids['y'], ids['z'] = id(y), id(z)
    ready.set()
    while not stop:
        time.sleep(0.002)

thread = threading.Thread(target=sleeper, daemon=True)
thread.start()
ready.wait()
''', _m.__dict__)
del _m
)py";

uintptr_t Address(const std::string &expr) {
  PyObject *v = EvalTarget(expr);
  EXPECT_NE(v, nullptr) << expr;
  uintptr_t a = 0;
  if (v != nullptr && PyLong_Check(v)) {
    a = static_cast<uintptr_t>(PyLong_AsUnsignedLongLong(v));
  }
  Py_XDECREF(v);
  return a;
}

std::string PathText(const HeapGraph &g, uintptr_t address) {
  const int64_t node = g.Find(address);
  EXPECT_GE(node, 0);
  if (node < 0) return "";
  auto paths = PathsTo(g, {static_cast<uint32_t>(node)});
  EXPECT_TRUE(paths.ok()) << paths.status();
  if (!paths.ok() || paths->empty()) return "";
  EXPECT_EQ(paths->size(), 1u);
  return (*paths)[0].text;
}

TEST(RetentionSideEffectsTest,
     NamingFrameLocalsAndInlineAttributesCreatesNothing) {
  ASSERT_TRUE(RunTargetCode(kSetup));
  // Everything Python-level first: from here on no bytecode runs, so the
  // sleeping thread never gets the GIL and the heap stays still.
  const uintptr_t attr = Address("id(sys.modules['quiet_app'].inst.attr)");
  const uintptr_t inst = Address("id(sys.modules['quiet_app'].inst)");
  const uintptr_t y = Address("sys.modules['quiet_app'].ids['y']");
  const uintptr_t z = Address("sys.modules['quiet_app'].ids['z']");
  const uintptr_t ident = Address("sys.modules['quiet_app'].thread.ident");
  ASSERT_TRUE(attr && inst && y && z && ident);

  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<HeapGraph> before = engine.Graph();
  ASSERT_TRUE(before.ok()) << before.status();
  const std::string frame_root = "thread " + std::to_string(ident) + " frame 0";
  size_t frame_roots = 0;
  for (size_t i = 0; i < before->root_names.size(); ++i) {
    if (before->root_names[i] == frame_root) ++frame_roots;
  }
  EXPECT_GT(frame_roots, 0u) << "no root " << frame_root;
  // The running frame is read in place: the walk made no frame object (and
  // so no f_locals dict) for it.
  PyThreadState *sleeper = nullptr;
  for (PyThreadState *t =
           PyInterpreterState_ThreadHead(PyInterpreterState_Main());
       t != nullptr; t = PyThreadState_Next(t)) {
    if (python::ThreadStateId(t) == static_cast<unsigned long>(ident)) {
      sleeper = t;
    }
  }
  ASSERT_NE(sleeper, nullptr);
  auto frame_objects = [&] {
    int n = 0;
    python::ForEachFrame(sleeper, [&](const python::FrameView &f) {
      n += f.frame_object != nullptr;
      return true;
    });
    return n;
  };
  EXPECT_EQ(frame_objects(), 0);
  auto *inst_obj = reinterpret_cast<PyObject *>(inst);
  ASSERT_EQ(python::ExistingInstanceDict(inst_obj), nullptr)
      << "the instance already has a __dict__ object: nothing to test";

  // The sleeping frame's globals are the module's dict, which paths reach
  // through what else holds it (roots.h), here the local function's
  // globals: one step shorter than through sys.modules.
  EXPECT_EQ(PathText(*before, attr),
            "%R['" + frame_root +
                "'].f_locals['inner'].__globals__['inst']"
                ".attr");
  EXPECT_EQ(PathText(*before, y), "%R['" + frame_root + "'].f_locals['y']");
  EXPECT_EQ(PathText(*before, z),
            "%R['" + frame_root + "']<cell of 'z'>.cell_contents");

  EXPECT_EQ(python::ExistingInstanceDict(inst_obj), nullptr);
  EXPECT_EQ(frame_objects(), 0);
  absl::StatusOr<HeapGraph> after = engine.Graph();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->size(), before->size());
  EXPECT_EQ(after->addresses, before->addresses);

  ASSERT_TRUE(
      RunTargetCode("sys.modules['quiet_app'].stop = True\n"
                    "sys.modules['quiet_app'].thread.join()\n"));
}

}  // namespace
}  // namespace annex::heap

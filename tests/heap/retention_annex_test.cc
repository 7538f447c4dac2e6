// Retention from the annex interpreter: the walk and the path naming run on
// the annex thread with the annex current, over the target's objects, as
// the heap engine will use them (docs/design.md rules 1, 9, 10).
#include <Python.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/heap/retention.h"
#include "monitor/python/annex_runtime.h"
#include "tests/heap/python_graph.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::heap::testing::NodeOf;
using ::annex::heap::testing::WalkFrom;
using ::annex::python::AnnexRuntime;
using ::annex::python::ThreadStates;
using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

TEST(RetentionAnnexTest, NamesPathsToTargetObjectsFromTheAnnex) {
  ASSERT_TRUE(RunTargetCode(R"py(
import sys, types
m = types.ModuleType('annex_leak')
m.registry = {'handlers': [bytearray(10), bytearray(2000)]}
sys.modules['annex_leak'] = m
leak_size = sum(sys.getsizeof(b) for b in [m.registry['handlers'][1]])
del m
)py"));
  // Borrowed target objects, alive through sys.modules.
  PyObject* target_modules = PySys_GetObject("modules");
  PyObject* leak =
      EvalTarget("sys.modules['annex_leak'].registry['handlers'][1]");
  ASSERT_NE(leak, nullptr);
  Py_DECREF(leak);  // still held by the list
  PyObject* size = EvalTarget("leak_size");
  ASSERT_NE(size, nullptr);
  const uint64_t expected_size = PyLong_AsUnsignedLongLong(size);
  Py_DECREF(size);

  auto rt = AnnexRuntime::Start({});
  ASSERT_TRUE(rt.ok()) << rt.status();
  std::vector<std::string> texts;
  uint64_t retained = 0;
  bool annex_current = false;
  ASSERT_TRUE(
      (*rt)
          ->Run([&](const ThreadStates&) {
            annex_current =
                PyInterpreterState_Get() != PyInterpreterState_Main();
            // One GIL hold from the walk to the last dereference.
            HeapGraph g = WalkFrom({{"sys.modules", target_modules}});
            const int64_t node = NodeOf(g, leak);
            if (node < 0) return;
            auto paths = PathsTo(g, {static_cast<uint32_t>(node)});
            if (paths.ok()) {
              for (const RetentionPath& p : *paths) texts.push_back(p.text);
            }
            retained =
                RetainedSize(g, {static_cast<uint32_t>(node)}).value_or(0);
          })
          .ok());
  EXPECT_TRUE((*rt)->Stop().ok());
  EXPECT_TRUE(annex_current);
  EXPECT_EQ(texts, (std::vector<std::string>{
                       "%R.sys.modules['annex_leak'].__dict__['registry']"
                       "['handlers'][1]"}));
  EXPECT_EQ(retained, expected_size);
  EXPECT_TRUE(RunTargetCode("del sys.modules['annex_leak']"));
}

}  // namespace
}  // namespace annex::heap

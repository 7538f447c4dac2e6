// Results never contain the annex's own objects or interpreter, and an idle
// annex computing the heap repeatedly sees the same heap every time.
#include <Python.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/python/annex_runtime.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::python::AnnexOptions;
using ::annex::python::AnnexRuntime;
using ::annex::python::ThreadStates;
using ::annex::testing::RunTargetCode;

ObjectSet MainThreadHeap() {
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<HeapResult> heap = engine.Heap();
  EXPECT_TRUE(heap.ok()) << heap.status();
  return heap.ok() ? heap->objects : ObjectSet();
}

size_t MainThreadCount() { return MainThreadHeap().size(); }

ObjectSet MainThreadUnreachable() {
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<ObjectSet> heapu = engine.Unreachable();
  EXPECT_TRUE(heapu.ok()) << heapu.status();
  return heapu.ok() ? *heapu : ObjectSet();
}

std::string Describe(const ObjectSet& set) {
  std::string out;
  for (uintptr_t a : set) {
    out += Py_TYPE(reinterpret_cast<PyObject*>(a))->tp_name;
    out += " ";
  }
  return out;
}

TEST(HidingTest, IdleAnnexSeesTheSameHeapAndNoneOfItself) {
  // atexit is imported up front: AnnexRuntime imports it into the target to
  // register its safety net and then removes it from sys.modules when the
  // host had not imported it, which leaves the module object (kept by
  // CPython's per-interpreter module index) and its functions alive but
  // unreachable, i.e. in heapu(). That is the runtime's footprint, not the
  // engine's; see docs/heap-engine.md.
  ASSERT_TRUE(RunTargetCode("import json, threading, atexit"));
  ASSERT_TRUE(RunTargetCode("import gc; gc.collect(); gc.disable()"));
  const size_t before = MainThreadCount();
  const ObjectSet heapu_before = MainThreadUnreachable();
  absl::StatusOr<std::unique_ptr<AnnexRuntime>> rt =
      AnnexRuntime::Start(AnnexOptions{});
  ASSERT_TRUE(rt.ok()) << rt.status();
  const size_t after_start = MainThreadCount();
  const ObjectSet heapu_after_start = MainThreadUnreachable();

  std::vector<size_t> counts, unreachable_counts;
  ObjectSet annex_view;
  std::vector<uintptr_t> annex_objects;
  bool any_annex_object_seen = false;
  ASSERT_TRUE(
      (*rt)
          ->Run([&](const ThreadStates& ts) {
            // Objects of the annex interpreter, and one made here.
            PyObject* marker = PyList_New(0);
            PyObject* annex_modules = PyImport_GetModuleDict();
            PyDict_SetItemString(annex_modules, "_annex_marker", marker);
            annex_objects = {reinterpret_cast<uintptr_t>(marker),
                             reinterpret_cast<uintptr_t>(annex_modules),
                             reinterpret_cast<uintptr_t>(PyEval_GetBuiltins())};
            HeapEngine engine(ts);
            for (int i = 0; i < 100; ++i) {
              absl::StatusOr<HeapResult> heap = engine.Heap();
              ASSERT_TRUE(heap.ok()) << heap.status();
              counts.push_back(heap->objects.size());
              if (i == 0) annex_view = heap->objects;
              for (uintptr_t a : annex_objects) {
                any_annex_object_seen |= heap->objects.contains(a);
              }
              absl::StatusOr<ObjectSet> heapu = engine.Unreachable();
              ASSERT_TRUE(heapu.ok()) << heapu.status();
              unreachable_counts.push_back(heapu->size());
              for (uintptr_t a : annex_objects) {
                any_annex_object_seen |= heapu->contains(a);
              }
            }
            PyDict_DelItemString(annex_modules, "_annex_marker");
            Py_DECREF(marker);
          })
          .ok());
  ASSERT_EQ(counts.size(), 100u);
  for (size_t c : counts) EXPECT_EQ(c, counts[0]);
  for (size_t c : unreachable_counts) EXPECT_EQ(c, unreachable_counts[0]);
  EXPECT_FALSE(any_annex_object_seen);
  // The annex's view equals the target's own view of itself.
  EXPECT_EQ(counts[0], MainThreadCount());
  EXPECT_TRUE(annex_view == MainThreadHeap())
      << "the annex sees exactly the objects the target sees of itself";
  EXPECT_EQ(after_start, before)
      << "starting the annex added reachable objects";
  const ObjectSet added = heapu_after_start - heapu_before;
  EXPECT_TRUE(added.empty())
      << "starting the annex left in the target's gc lists: "
      << Describe(added);
  EXPECT_EQ(unreachable_counts[0], heapu_after_start.size());
  EXPECT_TRUE((*rt)->Stop().ok());
  ASSERT_TRUE(RunTargetCode("gc.enable()"));
}

}  // namespace
}  // namespace annex::heap

// heapu(): a dropped cycle is tracked by gc but unreachable, until collected;
// and reference points report what appeared since.
#include <Python.h>

#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

uintptr_t TargetAddress(const char* expr) {
  PyObject* v = EvalTarget(expr);
  EXPECT_NE(v, nullptr);
  const uintptr_t a = static_cast<uintptr_t>(PyLong_AsUnsignedLongLong(v));
  Py_XDECREF(v);
  return a;
}

TEST(UnreachableTest, DroppedCycleAppearsInHeapuUntilCollected) {
  ASSERT_TRUE(RunTargetCode(R"(
import gc
gc.collect()
gc.disable()
class UCycle:
    pass
u_cycle = UCycle()
u_cycle.me = u_cycle
u_cycle_id = id(u_cycle)
u_dict_id = id(u_cycle.__dict__) if hasattr(u_cycle, '__dict__') else 0
u_kept = [1, 2]
u_kept_id = id(u_kept)
del u_cycle
)"));
  const uintptr_t cycle = TargetAddress("u_cycle_id");
  const uintptr_t kept = TargetAddress("u_kept_id");
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<ObjectSet> heapu = engine.Unreachable();
  ASSERT_TRUE(heapu.ok()) << heapu.status();
  EXPECT_TRUE(heapu->contains(cycle));
  EXPECT_FALSE(heapu->contains(kept));
  absl::StatusOr<HeapResult> heap = engine.Heap();
  ASSERT_TRUE(heap.ok());
  EXPECT_FALSE(heap->objects.contains(cycle));
  EXPECT_TRUE(heap->objects.contains(kept));
  EXPECT_TRUE((*heapu & heap->objects).empty());

  ASSERT_TRUE(RunTargetCode("gc.enable(); gc.collect()"));
  heapu = engine.Unreachable();
  ASSERT_TRUE(heapu.ok());
  EXPECT_FALSE(heapu->contains(cycle));
}

TEST(UnreachableTest, SinceRefShowsOnlyNewObjects) {
  HeapEngine engine(testing::MainThreadStates());
  ASSERT_TRUE(engine.SetRef().ok());
  ASSERT_TRUE(RunTargetCode("r_new = [[i] for i in range(100)]"));
  absl::StatusOr<ObjectSet> since = engine.SinceRef();
  ASSERT_TRUE(since.ok());
  EXPECT_TRUE(since->contains(testing::MainGlobalId("r_new")));
  // The 100 inner lists and the outer one, plus a few ints above 256.
  EXPECT_GE(since->size(), 101u);
  EXPECT_LT(since->size(), 200u);
  EXPECT_TRUE((*since & engine.ref()).empty());
}

}  // namespace
}  // namespace annex::heap

// heapu(): a dropped cycle is tracked by gc but unreachable, until collected;
// and reference points report what appeared since.
#include <Python.h>

#include <algorithm>
#include <vector>

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
  ASSERT_NE(engine.ref(), nullptr);
  EXPECT_TRUE((*since & HeapEngine::LiveMembers(*engine.ref())).empty());
}

TEST(UnreachableTest, HeldSetKeepsObjectsAliveUntilReleased) {
  ASSERT_TRUE(RunTargetCode(R"(
import weakref
class HeldProbe:
    pass
held_probe = HeldProbe()
held_ref = weakref.ref(held_probe)
)"));
  const uintptr_t probe = testing::MainGlobalId("held_probe");
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<HeldObjectSet> held = engine.HeapHeld();
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_TRUE(held->held());
  EXPECT_TRUE(held->objects().contains(probe));
  ASSERT_TRUE(RunTargetCode("del held_probe"));
  PyObject* alive = EvalTarget("held_ref() is not None");
  EXPECT_EQ(alive, Py_True) << "the held set keeps the probe alive";
  Py_XDECREF(alive);
  ASSERT_TRUE(engine.Release(*held).ok());
  EXPECT_FALSE(held->held());
  PyObject* dead = EvalTarget("held_ref() is None");
  EXPECT_EQ(dead, Py_True) << "released in the target, the probe is freed";
  Py_XDECREF(dead);
}

TEST(UnreachableTest, HiddenObjectsAndWhatOnlyTheyReachAreLeftOut) {
  ASSERT_TRUE(RunTargetCode(R"(
import gc
gc.collect()
gc.disable()
h_shared = ['shared']
h_visible = {'own': ['only via h_visible'], 'shared': h_shared}
h_garbage = {'own': ['only via h_garbage'], 'shared': h_shared}
h_garbage['self'] = h_garbage
h_other = ['other']
h_holder = [h_visible, h_shared, h_visible, h_other]
h_ids = [id(h_visible), id(h_visible['own']), id(h_garbage), id(h_garbage['own']), id(h_shared), id(h_holder), id(h_other)]
del h_garbage
)"));
  const uintptr_t visible = TargetAddress("h_ids[0]");
  const uintptr_t visible_own = TargetAddress("h_ids[1]");
  const uintptr_t garbage = TargetAddress("h_ids[2]");
  const uintptr_t garbage_own = TargetAddress("h_ids[3]");
  const uintptr_t shared = TargetAddress("h_ids[4]");
  const uintptr_t holder = TargetAddress("h_ids[5]");
  const uintptr_t other = TargetAddress("h_ids[6]");
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<HeapResult> heap = engine.Heap();
  absl::StatusOr<ObjectSet> heapu = engine.Unreachable();
  ASSERT_TRUE(heap.ok() && heapu.ok());
  EXPECT_TRUE(heap->objects.contains(visible));
  EXPECT_TRUE(heap->objects.contains(visible_own));
  EXPECT_TRUE(heapu->contains(garbage));
  EXPECT_TRUE(heapu->contains(garbage_own));

  engine.Hide(ObjectSet::FromUnsorted({visible, garbage}));
  absl::StatusOr<HeapResult> heap2 = engine.Heap();
  absl::StatusOr<ObjectSet> heapu2 = engine.Unreachable();
  ASSERT_TRUE(heap2.ok() && heapu2.ok());
  EXPECT_FALSE(heap2->objects.contains(visible));
  EXPECT_FALSE(heap2->objects.contains(visible_own));
  EXPECT_TRUE(heap2->objects.contains(shared));
  EXPECT_FALSE(heapu2->contains(garbage));
  EXPECT_FALSE(heapu2->contains(garbage_own));
  EXPECT_EQ(heapu->size() - heapu2->size(), 2u);
  EXPECT_LT(heap2->total_bytes, heap->total_bytes);

  HeapResult stats;
  absl::StatusOr<HeapGraph> g = engine.Graph(&stats);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->addresses, heap2->objects.ToVector());
  EXPECT_EQ(g->Find(visible), -1);
  EXPECT_EQ(g->out_begin.back(), g->out_targets.size());
  for (uint32_t t : g->out_targets) ASSERT_LT(t, g->size());
  EXPECT_EQ(stats.total_bytes, heap2->total_bytes);
  // The holder's edges to the hidden dict (twice) are dropped; the others
  // lead to the very objects it holds (in tp_traverse's order, which for
  // a list is last to first: compared sorted).
  const int64_t h = g->Find(holder);
  ASSERT_GE(h, 0);
  std::vector<uintptr_t> held;
  for (uint32_t e = g->out_begin[h]; e < g->out_begin[h + 1]; ++e) {
    held.push_back(g->addresses[g->out_targets[e]]);
  }
  std::sort(held.begin(), held.end());
  std::vector<uintptr_t> expected = {shared, other};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(held, expected);
  ASSERT_TRUE(RunTargetCode("gc.enable(); gc.collect()"));
}

}  // namespace
}  // namespace annex::heap

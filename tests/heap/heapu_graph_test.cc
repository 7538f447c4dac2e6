// heapu() members answer referrers and referents (GraphOptions kLive), and
// heapu() splits into cyclic garbage and what C references hold
// (HeapEngine::UnreachableSplit), as CPython's collector would judge them,
// without collecting. Expectations come from how the fixtures are built.
#include <Python.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/heap/paths.h"
#include "monitor/heap/referrers.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

uintptr_t TargetAddress(const std::string& expr) {
  PyObject* v = EvalTarget(expr);
  EXPECT_NE(v, nullptr) << expr;
  const uintptr_t a = v == nullptr ? 0 : PyLong_AsUnsignedLongLong(v);
  Py_XDECREF(v);
  return a;
}

uintptr_t Addr(PyObject* o) { return reinterpret_cast<uintptr_t>(o); }

class HeapuGraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(RunTargetCode("import gc; gc.disable()"));
  }
  void TearDown() override {
    ASSERT_TRUE(RunTargetCode("gc.enable(); gc.collect()"));
  }
};

// Two lists in a cycle (a -> b -> a), b also holding a dict of atomic
// values (which CPython untracks: no gc object, so not in heapu, but alive
// and held by b); the test keeps a C reference to a only.
TEST_F(HeapuGraphTest, CycleKeptOnlyByACReferenceAnswersReferrers) {
  ASSERT_TRUE(RunTargetCode(R"(
hg_a = ['hg-a']
hg_b = ['hg-b', {'hg-key': 'hg-value'}]
hg_a.append(hg_b)
hg_b.append(hg_a)
)"));
  PyObject* a = EvalTarget("hg_a");  // the C reference
  ASSERT_NE(a, nullptr);
  PyObject* b = PyList_GET_ITEM(a, 1);
  PyObject* d = PyList_GET_ITEM(b, 1);
  ASSERT_TRUE(PyDict_Check(d));
  ASSERT_FALSE(PyObject_GC_IsTracked(d));
  ASSERT_TRUE(RunTargetCode("del hg_a, hg_b"));
  HeapEngine engine(testing::MainThreadStates());
  {
    HeapEngine::Question q(engine);
    ASSERT_TRUE(q.status().ok());
    absl::StatusOr<ObjectSet> heapu = engine.Unreachable();
    ASSERT_TRUE(heapu.ok()) << heapu.status();
    for (PyObject* o : {a, b}) EXPECT_TRUE(heapu->contains(Addr(o)));
    EXPECT_FALSE(heapu->contains(Addr(d)));

    // The plain graph has none of them.
    absl::StatusOr<HeapGraph> plain = engine.Graph();
    ASSERT_TRUE(plain.ok());
    EXPECT_TRUE(plain->reachable_only);
    for (PyObject* o : {a, b, d}) EXPECT_LT(plain->Find(Addr(o)), 0);

    // Asked for when needed: a reachable member does not widen the walk.
    const std::vector<uintptr_t> reachable_wanted = {
        Addr(reinterpret_cast<PyObject*>(&PyLong_Type))};
    GraphOptions if_needed;
    if_needed.scope = GraphOptions::Scope::kLiveIfNeeded;
    if_needed.wanted = &reachable_wanted;
    absl::StatusOr<HeapGraph> same = engine.Graph(if_needed);
    ASSERT_TRUE(same.ok());
    EXPECT_TRUE(same->reachable_only);
    EXPECT_EQ(same->addresses, plain->addresses);

    const std::vector<uintptr_t> wanted = {Addr(a)};
    if_needed.wanted = &wanted;
    absl::StatusOr<HeapGraph> g = engine.Graph(if_needed);
    ASSERT_TRUE(g.ok());
    EXPECT_FALSE(g->reachable_only);
    const int64_t an = g->Find(Addr(a)), bn = g->Find(Addr(b)),
                  dn = g->Find(Addr(d));
    ASSERT_GE(an, 0);
    ASSERT_GE(bn, 0);
    ASSERT_GE(dn, 0);
    // Everything the plain graph holds is there too.
    for (uintptr_t x : plain->addresses) EXPECT_GE(g->Find(x), 0);
    ReverseIndex reverse = ReverseIndex::Build(*g);
    // a's only referrer among live objects is b, b's is a, d's is b (the C
    // reference is no object).
    EXPECT_EQ(Referrers(*g, reverse, {static_cast<uint32_t>(an)}),
              NodeSet{static_cast<uint32_t>(bn)});
    EXPECT_EQ(Referrers(*g, reverse, {static_cast<uint32_t>(bn)}),
              NodeSet{static_cast<uint32_t>(an)});
    EXPECT_EQ(Referrers(*g, reverse, {static_cast<uint32_t>(dn)}),
              NodeSet{static_cast<uint32_t>(bn)});
    // Referents of a: its str and b; the str (not gc-tracked, held by a
    // only) is in the graph although it is no heapu member.
    NodeSet out = Referents(*g, {static_cast<uint32_t>(an)});
    const int64_t sn = g->Find(Addr(PyList_GET_ITEM(a, 0)));
    ASSERT_GE(sn, 0);
    NodeSet expected = {static_cast<uint32_t>(bn), static_cast<uint32_t>(sn)};
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(out, expected);
    EXPECT_FALSE(heapu->contains(Addr(PyList_GET_ITEM(a, 0))));
    // No path from a root leads to them.
    const std::vector<uint32_t> distance = RootDistances(*g);
    for (int64_t v : {an, bn, dn}) EXPECT_EQ(distance[v], kUnreached);

    // Held by a C reference: what a collection would keep.
    absl::StatusOr<UnreachableParts> parts = engine.UnreachableSplit();
    ASSERT_TRUE(parts.ok()) << parts.status();
    for (PyObject* o : {a, b}) {
      EXPECT_TRUE(parts->held.contains(Addr(o)));
      EXPECT_FALSE(parts->garbage.contains(Addr(o)));
    }
    EXPECT_TRUE((parts->held | parts->garbage) == *heapu);
    EXPECT_TRUE((parts->held & parts->garbage).empty());
  }
  Py_DECREF(a);
}

// A plain unreachable cycle (nothing else refers to it) is cyclic garbage;
// a garbage-looking cycle that a held object refers to is kept with it.
TEST_F(HeapuGraphTest, PlainCycleIsGarbageAndWhatHeldObjectsReachIsNot) {
  ASSERT_TRUE(RunTargetCode(R"(
import weakref
class HgNode:
    pass
hg_g = HgNode()
hg_g.me = hg_g
hg_g.d = {'self': hg_g}
hg_g_ids = [id(hg_g), id(hg_g.d)]
hg_g_ref = weakref.ref(hg_g)
hg_k = HgNode()
hg_k.me = hg_k
hg_k_ref = weakref.ref(hg_k)
hg_h = ['hg-held', hg_k]
hg_k_id = id(hg_k)
del hg_g, hg_k
)"));
  PyObject* h = EvalTarget("hg_h");  // the C reference
  ASSERT_NE(h, nullptr);
  ASSERT_TRUE(RunTargetCode("del hg_h"));
  const uintptr_t g0 = TargetAddress("hg_g_ids[0]");
  const uintptr_t g1 = TargetAddress("hg_g_ids[1]");
  const uintptr_t k = TargetAddress("hg_k_id");
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<UnreachableParts> parts = engine.UnreachableSplit();
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_TRUE(parts->garbage.contains(g0));
  EXPECT_TRUE(parts->garbage.contains(g1));
  EXPECT_FALSE(parts->held.contains(g0));
  EXPECT_FALSE(parts->held.contains(g1));
  EXPECT_TRUE(parts->held.contains(Addr(h)));
  EXPECT_TRUE(parts->held.contains(k));
  EXPECT_FALSE(parts->garbage.contains(k));
  // The collector agrees: a collection frees the garbage cycle and keeps
  // the one the held list refers to.
  ASSERT_TRUE(RunTargetCode("gc.collect()"));
  EXPECT_EQ(annex::testing::TargetLong("int(hg_g_ref() is None)"), 1);
  EXPECT_EQ(annex::testing::TargetLong("int(hg_k_ref() is not None)"), 1);
  Py_DECREF(h);
}

}  // namespace
}  // namespace annex::heap

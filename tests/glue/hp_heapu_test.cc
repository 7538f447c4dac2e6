// hp.heapu() members answer referrers, referents and paths, and
// hp.heapu(garbage=True/False) separates cyclic garbage from what C
// references hold, without collecting; hp.heap() counts the instances'
// attribute values blocks (values=False: sys.getsizeof alone).
// Expectations come from how the fixtures are built.
#include <Python.h>

#include <string>

#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetLong;

std::string Exec(Monitor& m, const std::string& code) {
  auto out = m.ExecInAnnex(code);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

class HpHeapuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(RunTargetCode("import gc; gc.disable()"));
    ASSERT_TRUE(monitor_.Start().ok());
  }
  void TearDown() override {
    EXPECT_TRUE(monitor_.Stop().ok());
    ASSERT_TRUE(RunTargetCode("gc.enable(); gc.collect()"));
  }
  Monitor monitor_;
};

TEST_F(HpHeapuTest, CycleHeldByACReferenceAndPlainGarbageCycle) {
  // a <-> b, kept alive only by the test's C reference to a; g -> g, kept
  // by nothing (cyclic garbage).
  ASSERT_TRUE(RunTargetCode(R"(
class HuNode:
    pass
hu_a = HuNode(); hu_b = HuNode()
hu_a.peer = hu_b; hu_b.peer = hu_a
hu_g = HuNode(); hu_g.me = hu_g
hu_ids = (id(hu_a), id(hu_b), id(hu_g), id(HuNode))
)"));
  PyObject* a = EvalTarget("hu_a");  // the C reference
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(RunTargetCode("del hu_a, hu_b, hu_g"));
  const std::string ids =
      "ia, ib, ig = " + std::to_string(TargetLong("hu_ids[0]")) + ", " +
      std::to_string(TargetLong("hu_ids[1]")) + ", " +
      std::to_string(TargetLong("hu_ids[2]")) + "\n" +
      "icls = " + std::to_string(TargetLong("hu_ids[3]")) + "\n";
  std::string out = Exec(monitor_, ids + R"(
u = hp.heapu()
held = hp.heapu(garbage=False)
garb = hp.heapu(garbage=True)
A, B, G = hp.idset([ia]), hp.idset([ib]), hp.idset([ig])
print(len(A), len(B), len(G))
print(len(A & u), len(B & u), len(G & u), len(A & hp.heap()))
print(len(A & held), len(B & held), len(G & held))
print(len(A & garb), len(B & garb), len(G & garb))
print(held | garb == u, len(held & garb))
print(A.referrers == B, B.referrers == A, G.referrers == G)
print(A.referents == B | hp.idset([icls]), (A | B).referrers == A | B)
print(A.byrcs.kind == '__main__.HuNode')
)");
  EXPECT_EQ(out,
            "1 1 1\n"
            "1 1 1 0\n"
            "1 1 0\n"
            "0 0 1\n"
            "True 0\n"
            "True True True\n"
            "True True\n"
            "True\n")
      << out;
  // Paths start at a root: a heapu member has none, and says why.
  std::string sp = Exec(monitor_, ids + "print(hp.idset([ia]).sp)\n");
  EXPECT_NE(sp.find("no path from the roots: the 1 live member is not "
                    "reachable from them (heapu"),
            std::string::npos)
      << sp;
  Py_DECREF(a);
}

TEST_F(HpHeapuTest, StaticTypeSlotWrapperIsInHeapNotHeapu) {
  // The target's own int.__add__ (on 3.12+ the dict of a static type is
  // per interpreter, so the annex's would be another object).
  const long add = TargetLong("id(int.__dict__['__add__'])");
  std::string out = Exec(monitor_, "x = hp.idset([" + std::to_string(add) +
                                       "])\n"
                                       "print(len(x), len(x & hp.heap()), "
                                       "len(x & hp.heapu()))\n");
  EXPECT_EQ(out, "1 1 0\n");
}

TEST_F(HpHeapuTest, BadGarbageArgumentIsATypeError) {
  std::string out = Exec(monitor_, R"(
try:
    hp.heapu(garbage=1)
except TypeError as e:
    print('TypeError', 'True (cyclic garbage)' in str(e))
)");
  EXPECT_EQ(out, "TypeError True\n");
}

TEST_F(HpHeapuTest, HeapSizesCountTheAttributeBlocksAsAllocated) {
  // 50 instances of a 3-attribute class after 64 warm-up ones, created
  // while tracemalloc traces only that loop: what the allocator was asked
  // for beyond their sys.getsizeof is their values blocks.
  ASSERT_TRUE(RunTargetCode(R"(
exec(compile('''
import sys, tracemalloc
class HvNode:
    def __init__(self):
        self.a = None; self.b = None; self.c = None
hv_warm = [HvNode() for _ in range(64)]
hv_idx = list(range(50))
hv_batch = [None] * 50
tracemalloc.start()
for i in hv_idx:
    hv_batch[i] = HvNode()
hv_snap = tracemalloc.take_snapshot()
tracemalloc.stop()
hv_mine = hv_snap.filter_traces([tracemalloc.Filter(True, 'hv_fixture.py')])
hv_real = (sum(t.size for t in hv_mine.traces)
           - sum(sys.getsizeof(o) for o in hv_batch))
hv_ids = [id(o) for o in hv_batch]
del hv_snap, hv_mine
''', 'hv_fixture.py', 'exec'))
)"));
  const long real = TargetLong("hv_real");
  ASSERT_GT(real, 0);
  const long getsizeof = TargetLong("sum(sys.getsizeof(o) for o in hv_batch)");
  const std::string ids = annex::testing::TargetStr("repr(hv_ids)");
  // The default sizes (hp.heap(), hp.idset(), a partition's rows) count
  // the blocks; values=False gives sys.getsizeof's.
  std::string out = Exec(monitor_, "x = hp.idset(" + ids +
                                       ")\n"
                                       "print(len(x), x.size, "
                                       "(hp.heap() & x).size, "
                                       "(hp.heap(values=True) & x).size, "
                                       "(hp.heap(values=False) & x).size, "
                                       "(hp.heap() & x).byrcs.size, "
                                       "(hp.heap(values=False) & x).byrcs.size)"
                                       "\n");
  const std::string exact = std::to_string(getsizeof + real);
  const std::string plain = std::to_string(getsizeof);
  EXPECT_EQ(out, "50 " + exact + " " + exact + " " + exact + " " + plain + " " +
                     exact + " " + plain + "\n");
  // Nothing was materialized to find them.
  EXPECT_EQ(TargetLong("sum(1 for o in hv_batch for r in "
                       "gc.get_referents(o) if type(r) is dict)"),
            0);
}

}  // namespace
}  // namespace annex

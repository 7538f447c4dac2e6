// byrcs and X.refdby read each member's referrers from the graph's forward
// edges (no reverse index): every referrer counts once per kind, whatever
// the order the edges come in, repeated edges and self-references
// included, and a member no live object refers to is <Nothing>.
// Expectations come from how the fixture is built.
#include <Python.h>

#include <string>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetLong;

// `many` is held by three lists, a tuple and a slots instance; `twice` by
// one list, twice; `me` by the module's dict and by itself; `lone` by
// nothing but the test's C reference (a heapu member without referrers).
// Main thread, GIL held (the test's).
TEST(ByrcsReferrersTest, SetsOfReferrerKindsFromEveryEdge) {
  Monitor monitor;
  ASSERT_TRUE(monitor.Start().ok());
  ASSERT_TRUE(RunTargetCode(R"(
class Rf:
    pass
class RfSlot:
    __slots__ = ('x',)
def _rf():
    many, twice, lone = Rf(), Rf(), Rf()
    slot = RfSlot()
    slot.x = many
    me = []
    me.append(me)
    return [many], [many], [many], (many,), slot, [twice, twice], me, lone
rf_l1, rf_l2, rf_l3, rf_tup, rf_slot, rf_pair, rf_self, rf_lone = _rf()
rf_ids = (id(rf_l1[0]), id(rf_pair[0]), id(rf_self), id(rf_lone))
)"));
  PyObject* lone = EvalTarget("rf_lone");  // the C reference
  ASSERT_NE(lone, nullptr);
  ASSERT_TRUE(RunTargetCode("del rf_lone"));
  std::string ids = "im, it, ie, il = ";
  for (int i = 0; i < 4; ++i) {
    ids += std::to_string(
               TargetLong(("rf_ids[" + std::to_string(i) + "]").c_str())) +
           (i < 3 ? ", " : "\n");
  }
  absl::StatusOr<std::string> out = monitor.ExecInAnnex(ids + R"(
s = hp.idset([im, it, ie, il])
print(len(s))
print(sorted((p.kind.brief, len(p)) for p in s.byrcs.parts))
print(sorted((p.kind.brief, len(p)) for p in s.by(hp.Type.refdby).parts))
v = hp.idset([im, it]).by(hp.Via.refdby)
print(sorted((p.kind.brief, len(p)) for p in v.parts))
)");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "4\n"
            "[('<referred by: <Nothing>>', 1), "
            "('<referred by: __main__.RfSlot, list, tuple>', 1), "
            "('<referred by: dict of module, list>', 1), "
            "('<referred by: list>', 1)]\n"
            "[('<referred by: <Nothing>>', 1), "
            "('<referred by: __main__.RfSlot, list, tuple>', 1), "
            "('<referred by: dict, list>', 1), "
            "('<referred by: list>', 1)]\n"
            "[('<referred by: \"[\\'rf_l1\\']\", \"[\\'rf_l2\\']\", "
            "\"[\\'rf_l3\\']\", \"[\\'rf_slot\\']\", \"[\\'rf_tup\\']\">', 1), "
            "('<referred by: \"[\\'rf_pair\\']\">', 1)]\n");
  EXPECT_TRUE(monitor.Stop().ok());
  Py_DECREF(lone);
  ASSERT_TRUE(RunTargetCode(
      "del rf_l1, rf_l2, rf_l3, rf_tup, rf_slot, rf_pair, rf_self, rf_ids"));
}

}  // namespace
}  // namespace annex

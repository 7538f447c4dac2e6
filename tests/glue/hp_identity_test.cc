// Identity over time through hp: reference points and kept sets never take
// a new object at a reused address for an old one, and each session (host
// namespace, console client) has its own reference point.
#include <Python.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "monitor/python/death_watch.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetLong;

// `code` (any number of statements) as one console line: exec() in the
// host namespace `namespace_id`.
std::string AsOneLine(const std::string& code) {
  std::string quoted = "exec('";
  for (char c : code) {
    if (c == '\\' || c == '\'') quoted += '\\';
    if (c == '\n') {
      quoted += "\\n";
      continue;
    }
    quoted += c;
  }
  return quoted + "')";
}

std::string Exec(Monitor& m, uint64_t namespace_id, const std::string& code) {
  auto out = m.ExecInAnnex(AsOneLine(code), namespace_id);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

// The target's list of ints `expr` as Python source text.
std::string TargetIdsText(const std::string& expr) {
  PyObject* v = EvalTarget("repr(" + expr + ")");
  EXPECT_NE(v, nullptr);
  if (v == nullptr) return "[]";
  std::string text = PyUnicode_AsUTF8(v);
  Py_DECREF(v);
  return text;
}

class HpIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(monitor_.Start().ok()); }
  void TearDown() override { EXPECT_TRUE(monitor_.Stop().ok()); }
  Monitor monitor_;
};

// Heapy's workflow: setref, the program frees N objects and allocates N of
// the same size (most at the freed addresses), heap() shows all N new
// ones and the list that holds them.
TEST_F(HpIdentityTest, SetrefThenHeapShowsEveryNewObjectAtReusedAddresses) {
  ASSERT_TRUE(RunTargetCode(R"(
class HpIdItem:
    def __init__(self, v):
        self.v = v
hid_old = [HpIdItem(i) for i in range(500)]
hid_old_ids = frozenset(id(o) for o in hid_old)
)"));
  Exec(monitor_, 1, "hp.setref()");
  ASSERT_TRUE(RunTargetCode(R"(
del hid_old
hid_new = [HpIdItem(i) for i in range(500)]
hid_new_ids = [id(o) for o in hid_new]
hid_reused = sum(1 for a in hid_new_ids if a in hid_old_ids)
hid_holder_id = id(hid_new)
)"));
  // 3.11: about 480 of 500; 3.12 (inline values): about 160.
  ASSERT_GE(TargetLong("hid_reused"), 100) << "the premise: addresses reused";
  std::string out = Exec(monitor_, 1,
                         absl::StrCat("h = hp.heap()\n"
                                      "ids = ",
                                      TargetIdsText("hid_new_ids"),
                                      "\n"
                                      "print(sum(1 for a in ids if a in h), ",
                                      TargetLong("hid_holder_id"),
                                      " in h)\n"
                                      "print(h.byclodo)\n"));
  EXPECT_EQ(out.substr(0, out.find('\n')), "500 True") << out;
  EXPECT_NE(out.find("__main__.HpIdItem"), std::string::npos) << out;
  ASSERT_TRUE(RunTargetCode("del hid_new, hid_new_ids, hid_old_ids"));
}

// Two sessions with reference points set at different moments see
// different heap() at the same moment; a one-off ExecInAnnex's setref and
// clearref in another session change neither.
TEST_F(HpIdentityTest, ReferencePointsBelongToTheirSession) {
  Exec(monitor_, 1, "hp.setref()");
  ASSERT_TRUE(
      RunTargetCode("hps_a = [object() for i in range(50)]\n"
                    "hps_a_id = id(hps_a)\n"));
  Exec(monitor_, 2, "hp.setref()");
  ASSERT_TRUE(
      RunTargetCode("hps_b = [object() for i in range(70)]\n"
                    "hps_b_id = id(hps_b)\n"));
  ASSERT_TRUE(monitor_.ExecInAnnex("hp.setref()").ok());  // one-off namespace
  Exec(monitor_, 3, "hp.setref()\nhp.clearref()\n");
  const std::string ask =
      absl::StrCat("h = hp.heap()\nprint(", TargetLong("hps_a_id"), " in h, ",
                   TargetLong("hps_b_id"), " in h)\n");
  EXPECT_EQ(Exec(monitor_, 1, ask), "True True\n");
  EXPECT_EQ(Exec(monitor_, 2, ask), "False True\n");
  // Session 3 cleared its reference point: the whole heap.
  EXPECT_EQ(Exec(monitor_, 3, ask), "True True\n");
  // The host's summaries: with session 2's reference point only what came
  // after it (the 70 objects, their list, ...), without one everything.
  absl::StatusOr<glue::Stat> since2 = monitor_.HeapSummary("Type", 0, 2);
  absl::StatusOr<glue::Stat> all = monitor_.HeapSummary("Type");
  ASSERT_TRUE(since2.ok()) << since2.status();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_GE(since2->count, 71);
  EXPECT_LT(since2->count, 200);
  EXPECT_GT(all->count, 1000);
  ASSERT_TRUE(RunTargetCode("del hps_a, hps_b"));
}

// setref(reachable=x): x's live members are the reference; setrelheap()
// alone moves heap()'s reference.
TEST_F(HpIdentityTest, SetrefTakesAReachableSetAndSetrelheap) {
  ASSERT_TRUE(
      RunTargetCode("hpr_one = [1.5, 2.5]\nhpr_one_id = id(hpr_one)\n"));
  const std::string one = std::to_string(TargetLong("hpr_one_id"));
  // The reference is everything except hpr_one: heap() shows it again.
  Exec(monitor_, 1,
       "everything = hp.heap()\n"
       "hp.setref(reachable=everything - hp.idset([" +
           one + "]))\n");
  EXPECT_EQ(Exec(monitor_, 1, "print(" + one + " in hp.heap())\n"), "True\n");
  Exec(monitor_, 1, "hp.setrelheap()\n");
  EXPECT_EQ(Exec(monitor_, 1, "print(" + one + " in hp.heap())\n"), "False\n");
  ASSERT_TRUE(RunTargetCode("del hpr_one"));
}

// A kept set whose members all died answers for no member: count 0, the
// dead counted and noted, and .sp/.domisize/.byid reach none of the new
// objects now at the members' addresses.
TEST_F(HpIdentityTest, KeptSetOfDeadMembersReachesNothing) {
  ASSERT_TRUE(RunTargetCode(R"(
hpk_objs = [[i, i] for i in range(300)]
hpk_ids = [id(o) for o in hpk_objs]
)"));
  Exec(monitor_, 1,
       absl::StrCat("k = hp.idset(", TargetIdsText("hpk_ids"), ")\n"));
  EXPECT_EQ(Exec(monitor_, 1, "print(k.count, k.dead)\n"), "300 0\n");
  ASSERT_TRUE(RunTargetCode(R"(
hpk_set = frozenset(hpk_ids)
del hpk_objs
hpk_new = [[i, i] for i in range(300)]
hpk_reused = sum(1 for o in hpk_new if id(o) in hpk_set)
)"));
  ASSERT_GE(TargetLong("hpk_reused"), 150) << "the premise: addresses reused";
  std::string out = Exec(monitor_, 1,
                         "print(k.count, k.dead, len(k), k.size)\n"
                         "print(k.sp)\n"
                         "print(k.domisize)\n"
                         "print(k.byid)\n"
                         "print(k)\n");
  EXPECT_EQ(out.substr(0, out.find('\n')), "0 300 0 0") << out;
  EXPECT_NE(out.find("(no member of the set is reachable now)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\n0\n"), std::string::npos) << out;  // domisize
  EXPECT_NE(out.find("(no member of the set is alive now)"), std::string::npos)
      << out;
  EXPECT_NE(out.find("300 members died since the set was made"),
            std::string::npos)
      << out;
  ASSERT_TRUE(RunTargetCode("del hpk_new, hpk_set, hpk_ids"));
}

// byrcs and byvia of a kept set whose members partly died label the
// living members only: new objects of the same type at the dead members'
// addresses are not members.
TEST_F(HpIdentityTest, ReferrerTablesOfAKeptSetLeaveOutItsDead) {
  ASSERT_TRUE(RunTargetCode(R"(
hpr_objs = [[i] for i in range(40)]
hpr_hold = list(hpr_objs)
hpr_ids = [id(o) for o in hpr_objs]
)"));
  Exec(monitor_, 1,
       absl::StrCat("k = hp.idset(", TargetIdsText("hpr_ids"), ")\n"));
  ASSERT_TRUE(RunTargetCode(R"(
del hpr_objs
hpr_hold = hpr_hold[:10]
hpr_new = [[i] for i in range(30)]
)"));
  EXPECT_EQ(Exec(monitor_, 1,
                 "print([(p.kind.brief, len(p)) for p in k.byrcs.parts])\n"
                 "v = sorted((p.kind.brief, len(p)) for p in k.byvia.parts)\n"
                 "print(len(v), v[0], v[-1])\n"),
            "[('<referred by: list>', 10)]\n"
            "10 (\"<via '[0]'>\", 1) (\"<via '[9]'>\", 1)\n");
  ASSERT_TRUE(RunTargetCode("del hpr_hold, hpr_new, hpr_ids"));
}

// A row of a kept set's partition goes when all its members die: asking
// for it says how many rows are left and why, instead of a bare "out of
// range".
TEST_F(HpIdentityTest, ARowWhoseMembersDiedIsOutOfRangeWithTheReason) {
  ASSERT_TRUE(RunTargetCode(R"(
hpr_lists = [[i] for i in range(100)]
hpr_dicts = [{i: i} for i in range(20)]
hpr_ids = [id(o) for o in hpr_lists + hpr_dicts]
)"));
  Exec(monitor_, 1,
       absl::StrCat("k = hp.idset(", TargetIdsText("hpr_ids"), ")\n"));
  EXPECT_EQ(Exec(monitor_, 1, "print(len(k.stat), k[1].count)\n"), "2 20\n");
  ASSERT_TRUE(RunTargetCode("del hpr_dicts"));
  const std::string out = Exec(monitor_, 1,
                               "try:\n"
                               "    k[1]\n"
                               "except IndexError as e:\n"
                               "    print(e)\n"
                               "print(k.dead)\n");
  EXPECT_EQ(out,
            "partition row 1 out of range: the set has 1 rows now (20 members "
            "died since it was made; x.dead)\n20\n")
      << out;
  ASSERT_TRUE(RunTargetCode("del hpr_lists, hpr_ids"));
}

// A kept set of the whole heap where a few members die and new objects
// take their addresses: exactly those members leave it (the set looks only
// at the members whose blocks saw a death since its last look), the new
// objects are not members, and every other member stays.
TEST_F(HpIdentityTest, FewDeathsInALargeKeptSetLeaveExactlyThoseMembers) {
  ASSERT_TRUE(RunTargetCode(R"(
hpf_objs = [[i, i] for i in range(20000)]
hpf_gone = hpf_objs[::100]
hpf_gone_ids = frozenset(id(o) for o in hpf_gone)
hpf_kept_ids = [id(o) for o in hpf_objs[1::100]]
)"));
  Exec(monitor_, 1, "k = hp.heap()\nn0 = k.count\n");
  // A first look after some deaths elsewhere, so the set has looked once.
  Exec(monitor_, 1, "n1 = k.count\n");
  ASSERT_TRUE(RunTargetCode(R"(
hpf_objs = [o for o in hpf_objs if id(o) not in hpf_gone_ids]
del hpf_gone
hpf_new = [[i, i] for i in range(200)]
hpf_new_ids = [id(o) for o in hpf_new]
hpf_reused = sum(1 for a in hpf_new_ids if a in hpf_gone_ids)
hpf_gone_list = sorted(hpf_gone_ids)
)"));
  ASSERT_GE(TargetLong("hpf_reused"), 100) << "the premise: addresses reused";
  const std::string gone = TargetIdsText("hpf_gone_list");
  const std::string fresh = TargetIdsText("hpf_new_ids");
  const std::string kept = TargetIdsText("hpf_kept_ids");
  std::string out =
      Exec(monitor_, 1,
           absl::StrCat("print(k.dead >= 200, k.count < n1)\n",
                        "print(len(k & hp.idset(", fresh, ")))\n",
                        "print(len(hp.idset(", kept, ") & k))\n"));
  EXPECT_EQ(out, "True True\n0\n200\n") << out;
  // Many deaths since the last look: the set checks every member, with
  // the same verdicts.
  ASSERT_TRUE(RunTargetCode("del hpf_new, hpf_gone_ids\nhpf_objs = None"));
  out = Exec(
      monitor_, 1,
      absl::StrCat("print(k.dead > 20000, len(k & hp.idset(", gone, ")))\n"));
  EXPECT_EQ(out, "True 0\n") << out;
}

// The hooks are there only while something is watched: a reference point
// set in a host namespace goes at Stop(), and the hooks with it.
TEST_F(HpIdentityTest, StopReleasesTheWatch) {
  Exec(monitor_, 1, "hp.setref()\nk = hp.heap()\n");
  EXPECT_TRUE(python::GetDeathWatchStats().installed);
  ASSERT_TRUE(monitor_.Stop().ok());
  EXPECT_FALSE(python::GetDeathWatchStats().installed);
  EXPECT_EQ(python::GetDeathWatchStats().watched_blocks, 0u);
  ASSERT_TRUE(monitor_.Start().ok());  // for TearDown
}

}  // namespace
}  // namespace annex

// Identity over time through hp, where the host's API is part of the case:
// each host namespace's hp has its own reference point, which the
// host's HeapSummary uses, and Monitor::Stop() releases the death watch.
// The hp-only cases are Python: tests/hp/test_identity.py.
#include <Python.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "monitor/python/death_watch.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

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

class HpIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(monitor_.Start().ok()); }
  void TearDown() override { EXPECT_TRUE(monitor_.Stop().ok()); }
  Monitor monitor_;
};

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

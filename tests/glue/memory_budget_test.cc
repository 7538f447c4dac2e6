// The annex's memory budget for kept sets: the accounts (per session and
// in total) on their own, and through the public API: a console session
// that keeps sets past its budget gets MemoryError saying what it keeps,
// hp.memory() lists the sets, freeing them gives the room back, the total
// covers all sessions, and the host's RSS stays under the budget plus a
// margin.
#include "glue/memory_budget.h"

#include <Python.h>

#include <string>

#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

using glue::MemoryBudget;
using glue::MemoryLimits;

TEST(MemoryBudgetTest, ChargesPerOwnerAndRefusesPastEitherLimit) {
  MemoryBudget budget;
  MemoryLimits limits;
  limits.session_bytes = 1000;
  limits.total_bytes = 1500;
  budget.SetLimits(limits);
  const uint64_t a = budget.NewOwner(), b = budget.NewOwner();
  EXPECT_NE(a, b);
  budget.SetCurrentOwner(a);
  EXPECT_TRUE(budget.Charge(1, 600, "<one>").ok());
  EXPECT_TRUE(budget.Charge(2, 300, "<two>").ok());
  absl::Status past = budget.Charge(3, 200, "<three>");
  EXPECT_EQ(past.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(past.message().find("would pass this session's limit of 1000 "
                                "bytes (this session keeps 900 bytes"),
            absl::string_view::npos)
      << past.message();
  EXPECT_NE(past.message().find("<one> at 0x1"), absl::string_view::npos);
  EXPECT_EQ(budget.HeldBy(a), 900u);
  budget.SetCurrentOwner(b);
  EXPECT_TRUE(budget.Charge(4, 500, "<four>").ok());
  absl::Status total = budget.Charge(5, 200, "<five>");
  EXPECT_EQ(total.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(total.message().find("the annex's total limit"),
            absl::string_view::npos);
  budget.Release(1);
  budget.Release(1);  // harmless
  EXPECT_EQ(budget.HeldBy(a), 300u);
  EXPECT_EQ(budget.Total(), 800u);
  EXPECT_TRUE(budget.Charge(5, 200, "<five>").ok());
  ASSERT_EQ(budget.Holdings(b).size(), 2u);
  EXPECT_EQ(budget.Holdings(b)[0].what, "<four>");
}

class HpMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options options;
    options.annex_memory.session_bytes = size_t{16} << 20;
    options.annex_memory.total_bytes = size_t{24} << 20;
    ASSERT_TRUE(monitor_.Start(options).ok());
  }
  void TearDown() override { EXPECT_TRUE(monitor_.Stop().ok()); }
  // Runs a block of code in the console namespace of `session` (which
  // takes one statement per call: the block travels as hex).
  std::string Exec(const std::string& code, uint64_t session) {
    static const char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned char c : code) {
      hex += kHex[c >> 4];
      hex += kHex[c & 15];
    }
    auto out = monitor_.ExecInAnnex(
        "exec(bytes.fromhex('" + hex + "').decode())", session);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : "";
  }
  Monitor monitor_;
};

TEST_F(HpMemoryTest, KeepingSetsPastTheBudgetFailsWithWhatTheSessionKeeps) {
  ASSERT_TRUE(
      testing::RunTargetCode("class Mb:\n"
                             "    __slots__ = ()\n"
                             "mb_keep = [Mb() for _ in range(100000)]\n"));
  Exec(
      "import os\n"
      "def rss():\n"
      "    with open('/proc/self/statm') as f:\n"
      "        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
      "rss0 = rss()\n"
      "kept = []\n",
      1);
  // The transient memory of each walk comes on top: 32 MiB of margin, and
  // ASan's quarantine (256 MiB by default) keeps freed walk buffers.
#if defined(__SANITIZE_ADDRESS__)
  Exec("MARGIN = 288 << 20\n", 1);
#else
  Exec("MARGIN = 32 << 20\n", 1);
#endif
  std::string out = Exec(
      "try:\n"
      "    for _ in range(1000):\n"
      "        kept.append(hp.heap())\n"
      "    print('no error')\n"
      "except MemoryError as e:\n"
      "    msg = str(e)\n"
      "    print('annex memory budget: keeping <' in msg,\n"
      "          \"would pass this session's limit of 16.0 MiB\" in msg,\n"
      "          'what this session keeps, largest first' in msg,\n"
      "          0 < len(kept) < 1000)\n"
      "print(rss() - rss0 < (16 << 20) + MARGIN or rss() - rss0)\n"
      "m = hp.memory()\n"
      "print(m.splitlines()[0].startswith('Kept sets of this session: %d,' % "
      "len(kept)), m.count(' objects, Clodo> at 0x') == min(len(kept), 20))\n",
      1);
  EXPECT_EQ(out, "True True True True\nTrue\nTrue True\n");
  // Another session has its own account; the total (24 MiB) still binds.
  std::string other = Exec(
      "kept = []\n"
      "try:\n"
      "    for _ in range(1000):\n"
      "        kept.append(hp.heap())\n"
      "except MemoryError as e:\n"
      "    print(\"would pass the annex's total limit of 24.0 MiB\" in str(e),"
      " len(kept) > 0)\n"
      "print(hp.memory().startswith('Kept sets of this session: %d,' % "
      "len(kept)))\n",
      2);
  EXPECT_EQ(other, "True True\nTrue\n");
  // Freeing the first session's sets gives the room back.
  std::string freed = Exec(
      "del kept[:]\n"
      "print(hp.memory().splitlines()[0].startswith("
      "'Kept sets of this session: 0, 0 bytes'))\n"
      "h = hp.heap()\n"
      "print(len(h.parts) > 1)\n",
      1);
  EXPECT_EQ(freed, "True\nTrue\n");
  ASSERT_TRUE(testing::RunTargetCode("del mb_keep, Mb"));
}

}  // namespace
}  // namespace annex

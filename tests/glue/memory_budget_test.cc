// The annex's memory budget for kept sets: the accounts (per hp and
// in total) on their own, and through the public API: a console client's hp
// that keeps sets past its budget gets MemoryError saying what it keeps,
// hp.memory() lists the sets, freeing them gives the room back, the total
// covers all hp objects, and the host's RSS stays under the budget plus a
// margin.
#include "glue/memory_budget.h"

#include <Python.h>

#include <cstdio>
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
  limits.per_hp_bytes = 1000;
  limits.total_bytes = 1500;
  budget.SetLimits(limits);
  const uint64_t a = budget.NewOwner(), b = budget.NewOwner();
  EXPECT_NE(a, b);
  budget.SetCurrentOwner(a);
  EXPECT_TRUE(budget.Charge(1, 600, "<one>").ok());
  EXPECT_TRUE(budget.Charge(2, 300, "<two>").ok());
  absl::Status past = budget.Charge(3, 200, "<three>");
  EXPECT_EQ(past.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(past.message().find("would pass this hp's limit of 1000 "
                                "bytes (this hp keeps 900 bytes"),
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

// The heap engine's buffers kept between questions count toward the total
// (not an hp's share), show in the description, and are reclaimed
// before a set is refused for want of room.
TEST(MemoryBudgetTest, KeptEngineBuffersCountAndAreReclaimedFirst) {
  MemoryBudget budget;
  MemoryLimits limits;
  limits.per_hp_bytes = 1000;
  limits.total_bytes = 1500;
  budget.SetLimits(limits);
  budget.SetCurrentOwner(budget.NewOwner());
  budget.SetReusable(1200);
  EXPECT_EQ(budget.reusable(), 1200u);
  EXPECT_EQ(budget.Total(), 0u);  // sets only
  EXPECT_NE(budget.Describe(budget.current_owner())
                .find("Heap engine buffers kept for the next question: "
                      "1.2 KiB"),
            std::string::npos);
  // Without a reclaimer the buffers stand in the way of the total.
  absl::Status no_room = budget.Charge(1, 400, "<one>");
  EXPECT_EQ(no_room.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(no_room.message().find("the heap engine's buffers 1.2 KiB"),
            absl::string_view::npos)
      << no_room.message();
  // With one, they are freed (it reports 0) and the set is kept.
  int reclaimed = 0;
  budget.SetReclaimer([&] {
    ++reclaimed;
    budget.SetReusable(0);
  });
  EXPECT_TRUE(budget.Charge(1, 400, "<one>").ok());
  EXPECT_EQ(reclaimed, 1);
  EXPECT_EQ(budget.reusable(), 0u);
  // Room enough: no reclaim.
  budget.SetReusable(500);
  EXPECT_TRUE(budget.Charge(2, 500, "<two>").ok());
  EXPECT_EQ(reclaimed, 1);
  // An hp's own limit is not helped by reclaiming: refused as before.
  absl::Status per_hp = budget.Charge(3, 200, "<three>");
  EXPECT_EQ(per_hp.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(per_hp.message().find("this hp's limit"), absl::string_view::npos);
  // A question's transient estimate does not add them (it reuses them).
  budget.SetReusable(1400);
  EXPECT_TRUE(budget.CheckTransient(100, "a question").ok());
}

// hp.memory(trim=True)'s part: Reclaim() calls the reclaimer only when
// buffers are kept, and returns what it freed.
TEST(MemoryBudgetTest, ReclaimFreesTheKeptBuffersOnRequest) {
  MemoryBudget budget;
  EXPECT_EQ(budget.Reclaim(), 0u);  // no reclaimer, nothing kept
  budget.SetReusable(700);
  EXPECT_EQ(budget.Reclaim(), 0u);  // no reclaimer: nothing can go
  EXPECT_EQ(budget.reusable(), 700u);
  int calls = 0;
  budget.SetReclaimer([&] {
    ++calls;
    budget.SetReusable(100);  // a reclaimer that could not free it all
  });
  EXPECT_EQ(budget.Reclaim(), 600u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(budget.reusable(), 100u);
  budget.SetReusable(0);
  EXPECT_EQ(budget.Reclaim(), 0u);  // nothing kept: not called
  EXPECT_EQ(calls, 1);
}

// A monitor with a budget of `per_hp_bytes` per hp and `total_bytes`
// in all.
template <size_t per_hp_bytes, size_t total_bytes>
class BudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options options;
    options.annex_memory.per_hp_bytes = per_hp_bytes;
    options.annex_memory.total_bytes = total_bytes;
    ASSERT_TRUE(monitor_.Start(options).ok());
  }
  void TearDown() override { EXPECT_TRUE(monitor_.Stop().ok()); }
  // Runs a block of code in the host namespace `namespace_id` (which
  // takes one statement per call: the block travels as hex).
  std::string Exec(const std::string& code, uint64_t namespace_id) {
    static const char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned char c : code) {
      hex += kHex[c >> 4];
      hex += kHex[c & 15];
    }
    auto out = monitor_.ExecInAnnex(
        "exec(bytes.fromhex('" + hex + "').decode())", namespace_id);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : "";
  }
  Monitor monitor_;
};

using HpMemoryTest = BudgetTest<size_t{16} << 20, size_t{24} << 20>;

TEST_F(HpMemoryTest, KeepingSetsPastTheBudgetFailsWithWhatTheHpKeeps) {
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
  // ASan's quarantine (256 MiB by default) keeps freed walk buffers, as
  // TSan's allocator keeps freed memory (130 MiB more here).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
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
      "    print('annex memory budget: ' in msg,\n"
      "          \"this hp's limit of 16.0 MiB\" in msg,\n"
      "          'what this hp keeps, largest first' in msg,\n"
      "          0 < len(kept) < 1000)\n"
      "print(rss() - rss0 < (16 << 20) + MARGIN or rss() - rss0)\n"
      "m = hp.memory()\n"
      "print(m.splitlines()[0].startswith('Kept sets of this hp: %d,' % "
      "len(kept)), m.count(' objects, Clodo> at 0x') == min(len(kept), 20))\n",
      1);
  EXPECT_EQ(out, "True True True True\nTrue\nTrue True\n");
  // Another client's hp has its own account; the total (24 MiB) still binds.
  std::string other = Exec(
      "kept = []\n"
      "try:\n"
      "    for _ in range(1000):\n"
      "        kept.append(hp.heap())\n"
      "except MemoryError as e:\n"
      "    print(\"the annex's total limit of 24.0 MiB\" in str(e),"
      " len(kept) > 0)\n"
      "print(hp.memory().startswith('Kept sets of this hp: %d,' % "
      "len(kept)))\n",
      2);
  EXPECT_EQ(other, "True True\nTrue\n");
  // Freeing the first hp's sets gives the room back.
  std::string freed = Exec(
      "del kept[:]\n"
      "print(hp.memory().splitlines()[0].startswith("
      "'Kept sets of this hp: 0, 0 bytes'))\n"
      "h = hp.heap()\n"
      "print(len(h.parts) > 1)\n",
      1);
  EXPECT_EQ(freed, "True\nTrue\n");
  ASSERT_TRUE(testing::RunTargetCode("del mb_keep, Mb"));
}

// A question whose transient memory (its walk's graph and the dominator
// tree it builds) would pass what the hp's budget leaves fails with
// MemoryError saying what it needed, before it builds the tree (the first
// time after the walk, the next time before it, from the last walk's
// counts);
// nothing is kept, the target runs, and smaller questions still work.
TEST_F(HpMemoryTest, AQuestionPastWhatTheBudgetLeavesFailsAndKeepsNothing) {
  // h is kept while the heap is small; then about 200 K objects come:
  // a dominator tree over them (~110 bytes per object) does not fit.
  Exec("h = hp.heap()\n", 1);
  ASSERT_TRUE(testing::RunTargetCode(
      "mq_keep = [(i + 1000, 'q %d' % i) for i in range(66000)]\n"));
  const std::string out = Exec(
      "before = hp.memory().splitlines()[0]\n"
      "for attempt in range(2):\n"
      "    try:\n"
      "        h.domisize\n"
      "        print('no error')\n"
      "    except MemoryError as e:\n"
      "        msg = str(e)\n"
      "        print('this heap question (its walk and dominator tree, ' in "
      "msg,\n"
      "              ' needs about ' in msg,\n"
      "              \"more than this hp's limit of 16.0 MiB leaves\" in "
      "msg,\n"
      "              'Nothing was kept and the target runs again' in msg,\n"
      "              ('estimated from the last walk' in msg) == (attempt == "
      "1))\n"
      "print(hp.memory().splitlines()[0] == before)\n"
      "print(len(h.bytype) == len(h), len(hp.heap()) > 190000)\n",
      1);
  EXPECT_EQ(out,
            "True True True True True\nTrue True True True True\n"
            "True\nTrue True\n");
  // The target was left running: it runs code now.
  ASSERT_TRUE(testing::RunTargetCode("mq_keep.append(1)\ndel mq_keep"));
  Exec("del h\n", 1);
}

// Kept sets are stored compactly (glue/packed_columns.h): 50 sets of a
// 510 K-object heap fit in a budget that the former representation (24
// bytes per object: address, kind, size and Clodo kind as plain vectors)
// would pass about three times over (measured: 6.2 bytes per object for
// a copy, 19.2 for hp.heap() with its identity watch, on 3.11).
constexpr size_t kCompactBudget = size_t{200} << 20;
using HpCompactTest = BudgetTest<kCompactBudget, kCompactBudget>;

TEST_F(HpCompactTest, FiftySetsOfALargeHeapFitWhereVectorsWouldNot) {
  // 170 K tuples, each with an int and a str of its own: 510 K objects of
  // three kinds and many sizes, allocated together as a program's are.
  ASSERT_TRUE(testing::RunTargetCode(
      "mc_keep = [(i + 1000, 'item %d' % i) for i in range(170000)]\n"));
  // The bytes each kept set is charged, from hp.memory()'s rows.
  const std::string out = Exec(
      "h = hp.heap()\n"
      "kept = [h.bytype for _ in range(50)]\n"
      "rows = [l.split() for l in hp.memory(rows=100).splitlines()\n"
      "        if '> at 0x' in l]\n"
      "charged = {int(r[-1], 16): int(r[1]) for r in rows}\n"
      "copies = [charged[id(k)] for k in kept if id(k) in charged]\n"
      "print(len(h), len(copies), charged.get(id(h), 0), sum(copies))\n",
      1);
  long n = 0, sets = 0, heap_bytes = 0, copies_bytes = 0;
  ASSERT_EQ(std::sscanf(out.c_str(), "%ld %ld %ld %ld", &n, &sets, &heap_bytes,
                        &copies_bytes),
            4)
      << out;
  ASSERT_GE(n, 510000);
  ASSERT_EQ(sets, 50);
  const double per_object = copies_bytes / 50.0 / n;
  const double heap_per_object = heap_bytes / static_cast<double>(n);
  std::printf(
      "bytes per object: %.2f per kept copy, %.2f for hp.heap() with its "
      "identity watch, over %ld objects\n",
      per_object, heap_per_object, n);
  EXPECT_LT(per_object, 7.0);
  EXPECT_LT(heap_per_object, 25.0);
  // All 51 fit the budget; as vectors the 50 copies alone would not.
  EXPECT_LT(static_cast<size_t>(heap_bytes + copies_bytes), kCompactBudget);
  EXPECT_GT(size_t{24} * n * 50, 2 * kCompactBudget);
  Exec("del h, kept\n", 1);
  ASSERT_TRUE(testing::RunTargetCode("del mc_keep"));
}

}  // namespace
}  // namespace annex

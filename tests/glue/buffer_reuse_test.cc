// Issue 14 through the console's path: the heap engine keeps its big
// buffers between questions (the second question at the same heap reuses
// them, counted by the engine's pool), the budget counts what is kept, and
// answers follow the heap when objects were added or removed in between.
#include <Python.h>

#include <string>

#include "glue/heap_view.h"
#include "glue/memory_budget.h"
#include "glue/session.h"
#include "gtest/gtest.h"
#include "monitor/heap/buffer_pool.h"
#include "monitor/monitor.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetLong;

class BufferReuseTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(monitor_.Start().ok()); }
  void TearDown() override { EXPECT_TRUE(monitor_.Stop().ok()); }

  // One console command in session 1 (its namespace lasts).
  std::string Ask(const std::string& code) {
    auto out = monitor_.ExecInAnnex(code, 1);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : "";
  }
  // The session's heap view, once a question built it. Where: the test's
  // thread; the pool and the budget are thread-safe.
  glue::HeapView* View() { return monitor_.session()->Peek<glue::HeapView>(); }

  Monitor monitor_;
};

// The count, retained size and referrers of the Blob row.
constexpr char kQuestion[] =
    "exec('h = hp.heap()\\n"
    "rows = [h[i] for i in range(len(h.all.splitlines()) - 2)]\\n"
    "blobs = [r for r in rows if r.kind == \"__main__.Blob\"][0]\\n"
    "print(blobs.count, blobs.domisize, len(blobs.referrers))')";

std::string Expected(long count) {
  const long size = TargetLong(
      "sum(__import__('sys').getsizeof(b) + __import__('sys').getsizeof(b.data)"
      " for b in blobs)");
  return std::to_string(count) + " " + std::to_string(size) + " 1\n";
}

TEST_F(BufferReuseTest, LaterQuestionsReuseAndAnswersFollowTheHeap) {
  ASSERT_TRUE(
      RunTargetCode("class Blob:\n"
                    "    __slots__ = ('data',)\n"
                    "    def __init__(self): self.data = bytearray(8)\n"
                    "blobs = [Blob() for _ in range(40000)]\n"));
  // The first question makes the session's heap view; its pool then keeps
  // vectors of this small heap too (by default only those of 32 MiB up).
  EXPECT_EQ(Ask("print(len(hp.heap()) > 0)"), "True\n");
  glue::HeapView* view = View();
  ASSERT_NE(view, nullptr);
  heap::BufferPool& pool = view->engine().buffers();
  pool.set_min_bytes(heap::BufferPool::kMinBytes);
  EXPECT_EQ(Ask(kQuestion), Expected(40000));
  const heap::BufferPool::Stats first = pool.stats();
  EXPECT_GT(first.fresh, 0u);
  EXPECT_GT(first.kept_bytes, 0u);
  // What is kept shows in the budget (and hp.memory()): the pool's own
  // vectors and the last walk's graph, kept for follow-up questions.
  auto budget = monitor_.session()->Get<glue::MemoryBudget>();
  ASSERT_TRUE(budget.ok());
  EXPECT_GT(pool.held_bytes(), 0u);
  EXPECT_EQ((*budget)->reusable(), first.kept_bytes + pool.held_bytes());
  EXPECT_NE(Ask("print(hp.memory())")
                .find("Heap engine buffers kept for the next question"),
            std::string::npos);

  EXPECT_EQ(Ask(kQuestion), Expected(40000));
  EXPECT_EQ(Ask(kQuestion), Expected(40000));
  const heap::BufferPool::Stats warm = pool.stats();
  EXPECT_GT(warm.reused, first.reused);
  // At the same heap, a warm question takes nothing fresh.
  EXPECT_EQ(Ask(kQuestion), Expected(40000));
  const heap::BufferPool::Stats steady = pool.stats();
  EXPECT_EQ(steady.fresh, warm.fresh)
      << steady.fresh_bytes - warm.fresh_bytes << " fresh bytes";
  EXPECT_GT(steady.reused, warm.reused);

  // Objects removed, then added, between questions: exact answers.
  ASSERT_TRUE(RunTargetCode("del blobs[25000:]\n"));
  EXPECT_EQ(Ask(kQuestion), Expected(25000));
  ASSERT_TRUE(RunTargetCode("blobs.extend(Blob() for _ in range(35000))\n"));
  EXPECT_EQ(Ask(kQuestion), Expected(60000));
  ASSERT_TRUE(RunTargetCode("del blobs[:59990]\n"));
  EXPECT_EQ(Ask(kQuestion), Expected(10));

  // hp.memory(trim=True) frees what is kept, says how much, and the
  // budget and the pool hear of it; a second trim has nothing to free.
  const size_t kept = pool.stats().kept_bytes + pool.held_bytes();
  ASSERT_GT(kept, 0u);
  const std::string trimmed = Ask("print(hp.memory(trim=True))");
  EXPECT_EQ(trimmed.rfind("Freed " + glue::FormatBytes(kept) +
                              " of heap engine buffers kept for the next "
                              "question.\n",
                          0),
            0u)
      << trimmed;
  EXPECT_EQ(pool.stats().kept_bytes, 0u);
  EXPECT_EQ(pool.held_bytes(), 0u);
  EXPECT_EQ((*budget)->reusable(), 0u);
  EXPECT_EQ(Ask("print(hp.memory(trim=True).splitlines()[0])"),
            "Freed 0 bytes of heap engine buffers kept for the next "
            "question.\n");
  EXPECT_EQ(Ask("print(hp.memory(trim=1 < 0).startswith('Freed'))"), "False\n");
  EXPECT_EQ(Ask(kQuestion), Expected(10));
  ASSERT_TRUE(RunTargetCode("del blobs, Blob\n"));
}

// The pool may keep up to the budget's total, not only its own 256 MiB
// default: a walk with edges of ten million objects records about 1 GB,
// which a smaller pool made every question fault in afresh. A total below
// the default bounds it as before.
class PoolLimitTest : public BufferReuseTest,
                      public ::testing::WithParamInterface<size_t> {};

TEST_P(PoolLimitTest, PoolKeepsUpToTheBudgetsTotal) {
  auto budget = monitor_.session()->Get<glue::MemoryBudget>();
  ASSERT_TRUE(budget.ok()) << budget.status();
  glue::MemoryLimits limits;
  limits.total_bytes = GetParam();
  (*budget)->SetLimits(limits);
  EXPECT_EQ(Ask("print(len(hp.heap()) > 0)"), "True\n");
  glue::HeapView* view = View();
  ASSERT_NE(view, nullptr);
  EXPECT_EQ(view->engine().buffers().limit(), limits.total_bytes);
}

// Above the pool's own default (the case that used to be cut to it), and
// below it.
INSTANTIATE_TEST_SUITE_P(Totals, PoolLimitTest,
                         ::testing::Values(size_t{768} << 20,
                                           size_t{48} << 20));
static_assert((size_t{768} << 20) > heap::BufferPool::kDefaultLimit);

}  // namespace
}  // namespace annex

// HeapView::Summary for hosts, a C++ API: rows by kind against the
// target's own counts. hp's stats as the console user sees them (x.stat,
// differences, dump and load, JSON, .more) are tests/hp/test_stat.py.
#include <Python.h>

#include <string>

#include "glue/annex_access.h"
#include "glue/heap_view.h"
#include "glue/session.h"
#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetLong;

class HpStatTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(monitor_.Start().ok()); }
  void TearDown() override { EXPECT_TRUE(monitor_.Stop().ok()); }
  Monitor monitor_;
};

// HeapView::Summary, as a host asks it through the session on the annex
// thread: rows by kind against the target's own counts.
TEST_F(HpStatTest, SummaryForHostsCountsAsTheTarget) {
  ASSERT_TRUE(
      RunTargetCode("class SummaryKind:\n"
                    "    __slots__ = ('a', 'b')\n"
                    "summary_keep = [SummaryKind() for _ in range(321)]\n"));
  const long size =
      TargetLong("sum(__import__('sys').getsizeof(o) for o in summary_keep)");
  glue::Session* session = monitor_.session();
  ASSERT_NE(session, nullptr);
  auto access = session->Get<glue::AnnexAccess>();
  ASSERT_TRUE(access.ok()) << access.status();
  absl::StatusOr<glue::Stat> by_type = absl::UnknownError("not run");
  absl::StatusOr<glue::Stat> top = absl::UnknownError("not run");
  absl::StatusOr<glue::Stat> prod = absl::UnknownError("not run");
  ASSERT_TRUE(
      (*access)
          ->runtime()
          .Run([&](const python::ThreadStates&) {
            auto view = session->Get<glue::HeapView>();
            if (!view.ok()) return;
            by_type =
                (*view)->Summary(glue::Classifier(glue::Classifier::kType));
            top = (*view)->Summary(glue::Classifier(), 3);
            prod = (*view)->Summary(glue::Classifier(glue::Classifier::kProd));
          })
          .ok());
  ASSERT_TRUE(by_type.ok()) << by_type.status();
  EXPECT_EQ(by_type->er, "Type");
  EXPECT_EQ(by_type->kind_header, "Type");
  int64_t count = 0, bytes = 0;
  bool found = false;
  for (const glue::StatRow& r : by_type->rows) {
    count += r.count;
    bytes += r.size;
    if (r.kind == "__main__.SummaryKind") {
      found = true;
      EXPECT_EQ(r.count, 321);
      EXPECT_EQ(r.size, size);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(count, by_type->count);
  EXPECT_EQ(bytes, by_type->size);
  EXPECT_GT(by_type->time_made_us, 0);
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(top->er, "Clodo");
  ASSERT_EQ(top->rows.size(), 4u);  // three and <Other>
  int other = 0;
  for (const glue::StatRow& r : top->rows) other += r.kind == "<Other>";
  EXPECT_EQ(other, 1);
  // The whole heap (a second walk): totals of the same order.
  EXPECT_GT(top->count, 1000);
  EXPECT_EQ(prod.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace annex

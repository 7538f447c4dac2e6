// Growth paths (glue/growth_paths.h) without Python: the totals a record
// leaves for the next, which kinds are picked (largest byte growth first,
// at most max_kinds, only growth), the "new" flag from the previous
// record's addresses, and a stopped question that names no path. Naming a
// path reads the objects and is covered end to end by
// tests/cli:python_module_record_test.
#include "glue/growth_paths.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/heap/graph.h"
#include "monitor/heap/question_stop.h"

namespace annex::glue {
namespace {

// Nodes at `addresses` (sorted) with `sizes`, no edges, one root (node 0).
heap::HeapGraph Graph(std::vector<uintptr_t> addresses,
                      std::vector<uint64_t> sizes) {
  heap::HeapGraph g;
  g.addresses = std::move(addresses);
  g.sizes = std::move(sizes);
  g.out_begin.assign(g.addresses.size() + 1, 0);
  g.root_names = {"sys.modules"};
  g.root_nodes = {0};
  return g;
}

TEST(GrowthPathsTest, BaselineTotalsEveryKindOnce) {
  const std::vector<std::string> names = {"dict", "list", "dict"};
  heap::HeapGraph g = Graph({0x1000, 0x1040, 0x1080, 0x10c0}, {10, 20, 30, 40});
  // Two name indexes for "dict": one total.
  GrowthBaseline b = MakeGrowthBaseline(g, {0, 1, 2, 1}, names);
  ASSERT_EQ(b.totals.size(), 2u);
  EXPECT_EQ(b.totals["dict"].count, 2);
  EXPECT_EQ(b.totals["dict"].bytes, 40);
  EXPECT_EQ(b.totals["list"].count, 2);
  EXPECT_EQ(b.totals["list"].bytes, 60);
  EXPECT_EQ(b.addresses, g.addresses);
}

TEST(GrowthPathsTest, NothingBeforeTheFirstRecord) {
  heap::HeapGraph g = Graph({0x1000}, {10});
  GrowthBaseline now = MakeGrowthBaseline(g, {0}, {"dict"});
  EXPECT_EQ(GrowthPathsJson(g, {0}, {"dict"}, now, GrowthBaseline()), "[]");
}

TEST(GrowthPathsTest, PicksTheLargestGrowthAndStopsWhenTold) {
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  // Before: a 1 x 100 at 0x1000, b 1 x 10 at 0x2000, d 2 x 50.
  heap::HeapGraph before_graph =
      Graph({0x1000, 0x2000, 0x3000, 0x3100}, {100, 10, 50, 50});
  GrowthBaseline before = MakeGrowthBaseline(before_graph, {0, 1, 3, 3}, names);
  // Now: a grew by 200 bytes (a new object at 0x1100); b by 500 with no
  // new object (its one object at 0x2000 grew, as a list does); c is new
  // (+30); d shrank (-50).
  heap::HeapGraph g =
      Graph({0x1000, 0x1100, 0x2000, 0x3000, 0x4000}, {100, 200, 510, 50, 30});
  const std::vector<uint32_t> kinds = {0, 0, 1, 3, 2};
  GrowthBaseline now = MakeGrowthBaseline(g, kinds, names);
  heap::QuestionStop stop;
  heap::QuestionStop::Limits limits;
  limits.cancelled = [] { return true; };
  stop.Begin(limits);
  GrowthPathOptions options;
  options.max_kinds = 2;
  options.stop = &stop;
  EXPECT_EQ(GrowthPathsJson(g, kinds, names, now, before, options),
            "[{\"kind\":\"b\",\"count\":1,\"size\":510,\"count_growth\":0,"
            "\"size_growth\":500,\"new\":false,\"length\":null,\"path\":null,"
            "\"stopped\":true},"
            "{\"kind\":\"a\",\"count\":2,\"size\":300,\"count_growth\":1,"
            "\"size_growth\":200,\"new\":true,\"length\":null,\"path\":null,"
            "\"stopped\":true}]");
}

}  // namespace
}  // namespace annex::glue

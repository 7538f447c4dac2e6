// Reference patterns with a classifier callback.
#include "monitor/heap/reference_pattern.h"

#include "gtest/gtest.h"
#include "tests/heap/graph_testing.h"

namespace annex::heap {
namespace {

using ::annex::heap::testing::MakeGraph;

TEST(ReferencePatternTest, GroupsReferrersByKindToADepth) {
  // Leaks 5 and 6 held by dicts 3 and 4 (held by module 1) and by list 2;
  // module 1 held by root 0, which also holds list 2. 7 <-> 8, a cycle,
  // holds 6.
  HeapGraph g = MakeGraph(9,
                          {{0, 1},
                           {0, 2},
                           {1, 3},
                           {1, 4},
                           {3, 5},
                           {4, 6},
                           {2, 5},
                           {7, 6},
                           {8, 7},
                           {7, 8}},
                          {0});
  const std::vector<std::string> kinds = {
      "root", "module", "list", "dict", "dict", "Leak", "Leak", "Node", "Node"};
  RpOptions options;
  options.depth = 3;
  auto rp = ReferencePattern(
      g, ReverseIndex::Build(g), {5, 6}, [&](uint32_t v) { return kinds[v]; },
      options);
  EXPECT_EQ(FormatReferencePattern(rp),
            "0: 2 Leak\n"
            "1: 2   dict\n"
            "2: 1     module\n"
            "3: 1       root\n"
            "4: 1   Node\n"
            "5: 1     Node\n"
            "6: 1       Node [^ 4]\n"
            "7: 1   list\n"
            "8: 1     root [^ 3]\n");
  EXPECT_EQ(rp[1].nodes, (NodeSet{3, 4}));
  EXPECT_EQ(rp[8].same_as, 3);
  EXPECT_EQ(rp[8].parent, 7);
}

TEST(ReferencePatternTest, DropsSmallKindsBeyondTheLimit) {
  HeapGraph g = MakeGraph(4, {{1, 0}, {2, 0}, {3, 0}}, {1});
  RpOptions options;
  options.max_children = 1;
  auto rp = ReferencePattern(
      g, ReverseIndex::Build(g), {0},
      [](uint32_t v) { return "k" + std::to_string(v); }, options);
  ASSERT_EQ(rp.size(), 2u);
  EXPECT_EQ(rp[0].dropped, 2u);
  EXPECT_EQ(FormatReferencePattern(rp), "0: 1 k0\n  ... 2 more\n1: 1   k1\n");
}

TEST(ReferencePatternTest, StopsAtStopKinds) {
  // 3 <- 2 (a "module") <- 1 <- 0; the module's referrers are not followed.
  HeapGraph g = MakeGraph(4, {{0, 1}, {1, 2}, {2, 3}}, {0});
  const std::vector<std::string> kinds = {"root", "dict", "module", "Leak"};
  RpOptions options;
  options.stop = [&](uint32_t v) { return kinds[v] == "module"; };
  auto rp = ReferencePattern(
      g, ReverseIndex::Build(g), {3}, [&](uint32_t v) { return kinds[v]; },
      options);
  EXPECT_EQ(FormatReferencePattern(rp),
            "0: 1 Leak\n"
            "1: 1   module [stop]\n");
  // The set itself is expanded even when it is a stop kind.
  auto from_module = ReferencePattern(
      g, ReverseIndex::Build(g), {2}, [&](uint32_t v) { return kinds[v]; },
      options);
  EXPECT_EQ(FormatReferencePattern(from_module),
            "0: 1 module\n"
            "1: 1   dict\n"
            "2: 1     root\n");
}

}  // namespace
}  // namespace annex::heap

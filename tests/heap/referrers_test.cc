// Reverse index, referrers and referents against edge lists.
#include "monitor/heap/referrers.h"

#include <algorithm>
#include <set>

#include "gtest/gtest.h"
#include "monitor/heap/node_set.h"
#include "tests/heap/graph_testing.h"

namespace annex::heap {
namespace {

using ::annex::heap::testing::MakeGraph;
using ::annex::heap::testing::RandomGraph;

TEST(ReferrersTest, ReverseIndexListsEverySourceSorted) {
  HeapGraph g = MakeGraph(4, {{2, 0}, {1, 0}, {1, 0}, {3, 1}, {0, 0}}, {2});
  ReverseIndex rev = ReverseIndex::Build(g);
  ASSERT_EQ(rev.in_begin.size(), 5u);
  std::vector<uint32_t> into0(rev.in_sources.begin() + rev.in_begin[0],
                              rev.in_sources.begin() + rev.in_begin[1]);
  EXPECT_EQ(into0, (std::vector<uint32_t>{0, 1, 1, 2}));
  EXPECT_EQ(Referrers(g, rev, {0}), (NodeSet{0, 1, 2}));
  EXPECT_EQ(Referrers(g, rev, {0, 1}), (NodeSet{0, 1, 2, 3}));
  EXPECT_EQ(Referents(g, {1, 3}), (NodeSet{0, 1}));
  EXPECT_EQ(Referents(g, {}), NodeSet{});
}

TEST(ReferrersTest, EdgesInAndOutAreDistinct) {
  HeapGraph g = MakeGraph(3, {{0, 2}, {0, 2}, {0, 1}, {1, 2}}, {0});
  ReverseIndex rev = ReverseIndex::Build(g);
  EXPECT_EQ(EdgesIn(g, rev, {2}), (std::vector<EdgeRef>{{0, 2}, {1, 2}}));
  EXPECT_EQ(EdgesOut(g, {0}), (std::vector<EdgeRef>{{0, 1}, {0, 2}}));
}

TEST(ReferrersTest, AgreesWithEdgeScanOnRandomGraphs) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    HeapGraph g = RandomGraph(2000, 3, 4, true, seed);
    ASSERT_TRUE(ValidateGraph(g).ok());
    ReverseIndex rev = ReverseIndex::Build(g);
    for (uint32_t v = 0; v < g.size(); v += 37) {
      std::multiset<uint32_t> naive;
      for (uint32_t u = 0; u < g.size(); ++u) {
        for (uint32_t e = g.out_begin[u]; e < g.out_begin[u + 1]; ++e) {
          if (g.out_targets[e] == v) naive.insert(u);
        }
      }
      std::multiset<uint32_t> got(rev.in_sources.begin() + rev.in_begin[v],
                                  rev.in_sources.begin() + rev.in_begin[v + 1]);
      EXPECT_EQ(got, naive) << "node " << v << " seed " << seed;
    }
  }
}

TEST(ReferrersTest, NodeSetsAreCheckedAndGraphsValidated) {
  HeapGraph g = MakeGraph(3, {{0, 1}}, {0});
  EXPECT_EQ(*MakeNodeSet(g, {2, 0, 2}), (NodeSet{0, 2}));
  EXPECT_EQ(MakeNodeSet(g, {3}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateGraph(g).ok());
  g.out_targets[0] = 9;
  EXPECT_EQ(ValidateGraph(g).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace annex::heap

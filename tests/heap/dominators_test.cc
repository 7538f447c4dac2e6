// Dominators and dominated sets: hand-made graphs, a million-deep chain,
// and agreement with the definition (remove x, BFS again) on random graphs.
#include "monitor/heap/dominators.h"

#include <deque>
#include <numeric>
#include <random>

#include "gtest/gtest.h"
#include "tests/heap/graph_testing.h"

namespace annex::heap {
namespace {

using ::annex::heap::testing::MakeGraph;
using ::annex::heap::testing::RandomGraph;

// The definition, independently of the library: x plus the nodes reachable
// from the roots that are not reachable once x is removed.
NodeSet NaiveDominated(const HeapGraph& g, const NodeSet& x) {
  auto reach = [&](const NodeSet& removed) {
    std::vector<bool> seen(g.size(), false);
    for (uint32_t v : removed) seen[v] = true;
    std::deque<uint32_t> q;
    for (uint32_t r : g.root_nodes) {
      if (!seen[r]) q.push_back(r);
      seen[r] = true;
    }
    while (!q.empty()) {
      uint32_t v = q.front();
      q.pop_front();
      for (uint32_t e = g.out_begin[v]; e < g.out_begin[v + 1]; ++e) {
        if (!seen[g.out_targets[e]]) {
          seen[g.out_targets[e]] = true;
          q.push_back(g.out_targets[e]);
        }
      }
    }
    for (uint32_t v : removed) seen[v] = false;
    return seen;
  };
  std::vector<bool> before = reach({});
  std::vector<bool> after = reach(x);
  NodeSet out;
  for (uint32_t v = 0; v < g.size(); ++v) {
    bool in_x = std::binary_search(x.begin(), x.end(), v);
    if (in_x || (before[v] && !after[v])) out.push_back(v);
  }
  return out;
}

uint64_t SizeOf(const HeapGraph& g, const NodeSet& s) {
  uint64_t total = 0;
  for (uint32_t v : s) total += g.sizes[v];
  return total;
}

// 0 -> {1, 2}; 1 -> 3; 2 -> 3; 3 -> 4; 4 -> 3 (a cycle); 5 unreachable.
HeapGraph Join() {
  return MakeGraph(6, {{0, 1}, {0, 2}, {1, 3}, {2, 3}, {3, 4}, {4, 3}}, {0});
}

TEST(DominatorsTest, ImmediateDominatorsOfAJoin) {
  HeapGraph g = Join();
  DominatorTree dom = DominatorTree::Build(g);
  EXPECT_EQ(dom.idom(0), DominatorTree::kSuperRoot);
  EXPECT_EQ(dom.idom(1), 0u);
  EXPECT_EQ(dom.idom(2), 0u);
  EXPECT_EQ(dom.idom(3), 0u);
  EXPECT_EQ(dom.idom(4), 3u);
  EXPECT_EQ(dom.idom(5), DominatorTree::kUnreachable);
  EXPECT_EQ(dom.reachable(), 5u);
  EXPECT_TRUE(dom.Dominates(3, 4));
  EXPECT_TRUE(dom.Dominates(4, 4));
  EXPECT_FALSE(dom.Dominates(1, 3));
  EXPECT_EQ(dom.DominatedBy(3), (NodeSet{3, 4}));
  EXPECT_EQ(dom.RetainedSize(3), 4u + 5u);
  EXPECT_EQ(dom.RetainedSize(0), 1u + 2 + 3 + 4 + 5);
}

TEST(DominatorsTest, SetsThatCutOffTogether) {
  HeapGraph g = Join();
  DominatorTree dom = DominatorTree::Build(g);
  // Neither 1 nor 2 dominates 3, but removing both frees 3 and 4.
  EXPECT_EQ(*Dominated(g, dom, {1}), (NodeSet{1}));
  EXPECT_EQ(*Dominated(g, dom, {1, 2}), (NodeSet{1, 2, 3, 4}));
  EXPECT_EQ(*RetainedSize(g, dom, {1, 2}), 2u + 3 + 4 + 5);
  // A member inside another's subtree adds nothing new.
  EXPECT_EQ(*Dominated(g, dom, {3, 4}), (NodeSet{3, 4}));
  // Unreachable members count as themselves.
  EXPECT_EQ(*Dominated(g, dom, {5}), (NodeSet{5}));
  EXPECT_EQ(*Dominated(g, dom, {}), NodeSet{});
  EXPECT_EQ(Dominated(g, dom, {6}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DominatorsTest, SeveralRootsShareTheSuperRoot) {
  // Roots 0 and 1 both reach 2; root 1 alone reaches 3 via 2.
  HeapGraph g = MakeGraph(4, {{0, 2}, {1, 2}, {2, 3}}, {0, 1, 1});
  DominatorTree dom = DominatorTree::Build(g);
  EXPECT_EQ(dom.idom(2), DominatorTree::kSuperRoot);
  EXPECT_EQ(dom.idom(3), 2u);
  EXPECT_EQ(*Dominated(g, dom, {0, 1}), (NodeSet{0, 1, 2, 3}));
}

TEST(DominatorsTest, MillionDeepChainNeedsNoRecursion) {
  const uint32_t n = 1000000;
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (uint32_t v = 0; v + 1 < n; ++v) edges.emplace_back(v, v + 1);
  edges.emplace_back(n - 1, 0);  // and one long cycle
  HeapGraph g = MakeGraph(n, edges, {0});
  DominatorTree dom = DominatorTree::Build(g);
  EXPECT_EQ(dom.idom(n - 1), n - 2);
  EXPECT_EQ(dom.idom(1), 0u);
  EXPECT_EQ(dom.RetainedSize(n / 2), SizeOf(g, dom.DominatedBy(n / 2)));
  EXPECT_EQ(dom.DominatedBy(n - 10).size(), 10u);
  uint64_t all = static_cast<uint64_t>(n) * (n + 1) / 2;
  EXPECT_EQ(dom.RetainedSize(0), all);
}

TEST(DominatorsTest, AgreesWithTheDefinitionOnRandomGraphs) {
  std::mt19937_64 rng(42);
  for (uint32_t n : {8u, 60u, 500u, 3000u, 10000u}) {
    for (double degree : {0.7, 1.2, 2.5, 5.0}) {
      for (uint64_t seed = 1; seed <= 3; ++seed) {
        HeapGraph g = RandomGraph(
            n, degree, 1 + seed % 3, seed == 2,
            uint64_t{n} * 31 + seed * 7 + static_cast<uint64_t>(degree));
        DominatorTree dom = DominatorTree::Build(g);
        const uint32_t step = n <= 500 ? 1 : n / 40;
        for (uint32_t x = 0; x < n; x += step) {
          NodeSet naive = NaiveDominated(g, {x});
          NodeSet got = *Dominated(g, dom, {x});
          ASSERT_EQ(got, naive) << "n " << n << " degree " << degree << " seed "
                                << seed << " x " << x;
          if (dom.idom(x) != DominatorTree::kUnreachable) {
            EXPECT_EQ(dom.DominatedBy(x), naive);
            EXPECT_EQ(dom.RetainedSize(x), SizeOf(g, naive));
            const uint32_t d = dom.idom(x);
            if (d != DominatorTree::kSuperRoot) {
              // The immediate dominator is a strict dominator ...
              NodeSet of_d = NaiveDominated(g, {d});
              EXPECT_TRUE(std::binary_search(of_d.begin(), of_d.end(), x));
            }
          }
        }
        // ... and random sets agree with the definition as a whole.
        std::uniform_int_distribution<uint32_t> node(0, n - 1);
        for (int trial = 0; trial < 10; ++trial) {
          std::vector<uint32_t> raw;
          for (int k = 1 + trial % 4; k > 0; --k) raw.push_back(node(rng));
          NodeSet x = *MakeNodeSet(g, raw);
          ASSERT_EQ(*Dominated(g, dom, x), NaiveDominated(g, x))
              << "n " << n << " seed " << seed << " trial " << trial;
          EXPECT_EQ(*RetainedSize(g, dom, x), SizeOf(g, NaiveDominated(g, x)));
        }
      }
    }
  }
}

}  // namespace
}  // namespace annex::heap

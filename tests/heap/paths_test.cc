// Shortest paths from the roots: hand-made graphs, and agreement with a
// naive BFS and path count on random graphs.
#include "monitor/heap/paths.h"

#include <deque>
#include <set>

#include "gtest/gtest.h"
#include "tests/heap/graph_testing.h"

namespace annex::heap {
namespace {

using ::annex::heap::testing::MakeGraph;
using ::annex::heap::testing::RandomGraph;
using Nodes = std::vector<uint32_t>;

std::vector<Nodes> NodeLists(const ShortestPaths& sp) {
  std::vector<Nodes> out;
  for (const NodePath& p : sp.paths) out.push_back(p.nodes);
  return out;
}

// 0 -> 1 -> {2, 3} -> 4, and 0 -> 5 (a dead end).
HeapGraph Diamond() {
  return MakeGraph(6, {{0, 1}, {1, 3}, {1, 2}, {2, 4}, {3, 4}, {0, 5}}, {0});
}

TEST(PathsTest, FindsAllShortestPathsInOrder) {
  auto sp = FindShortestPaths(Diamond(), {4});
  ASSERT_TRUE(sp.ok());
  EXPECT_EQ(sp->length, 3u);
  EXPECT_FALSE(sp->truncated);
  EXPECT_EQ(NodeLists(*sp), (std::vector<Nodes>{{0, 1, 2, 4}, {0, 1, 3, 4}}));
  EXPECT_EQ(sp->paths[0].root, 0u);
}

TEST(PathsTest, AvoidsNodesAndEdgesForTheNextRoute) {
  ShortestPathOptions avoid_node;
  avoid_node.avoid_nodes = {2};
  EXPECT_EQ(NodeLists(*FindShortestPaths(Diamond(), {4}, avoid_node)),
            (std::vector<Nodes>{{0, 1, 3, 4}}));
  ShortestPathOptions avoid_edge;
  avoid_edge.avoid_edges = {{3, 4}};
  EXPECT_EQ(NodeLists(*FindShortestPaths(Diamond(), {4}, avoid_edge)),
            (std::vector<Nodes>{{0, 1, 2, 4}}));
  HeapGraph g = Diamond();
  ReverseIndex reverse = ReverseIndex::Build(g);
  avoid_edge.reverse = &reverse;
  EXPECT_EQ(NodeLists(*FindShortestPaths(g, {4}, avoid_edge)),
            (std::vector<Nodes>{{0, 1, 2, 4}}));
  avoid_node.reverse = &reverse;
  EXPECT_EQ(NodeLists(*FindShortestPaths(g, {4}, avoid_node)),
            (std::vector<Nodes>{{0, 1, 3, 4}}));
  avoid_edge.avoid_edges.push_back({2, 4});
  EXPECT_TRUE(FindShortestPaths(Diamond(), {4}, avoid_edge)->paths.empty());
}

TEST(PathsTest, LimitTruncates) {
  ShortestPathOptions one;
  one.max_paths = 1;
  auto sp = FindShortestPaths(Diamond(), {4}, one);
  EXPECT_EQ(NodeLists(*sp), (std::vector<Nodes>{{0, 1, 2, 4}}));
  EXPECT_TRUE(sp->truncated);
}

TEST(PathsTest, NearestTargetsWinAndRootsAreLengthZero) {
  auto sp = FindShortestPaths(Diamond(), {4, 5});
  EXPECT_EQ(NodeLists(*sp), (std::vector<Nodes>{{0, 5}}));
  sp = FindShortestPaths(Diamond(), {0, 4});
  EXPECT_EQ(sp->length, 0u);
  EXPECT_EQ(NodeLists(*sp), (std::vector<Nodes>{{0}}));
}

TEST(PathsTest, OnePathPerRootNameAndPerDistinctEdge) {
  // Two names for root node 0; a parallel edge 0 -> 1.
  HeapGraph g = MakeGraph(3, {{0, 1}, {0, 1}, {1, 2}}, {0, 0});
  auto sp = FindShortestPaths(g, {2});
  ASSERT_EQ(sp->paths.size(), 2u);
  EXPECT_EQ(sp->paths[0].root, 0u);
  EXPECT_EQ(sp->paths[1].root, 1u);
  EXPECT_EQ(sp->paths[1].nodes, (Nodes{0, 1, 2}));
}

// k diamonds in a row: node 0 -> {1, 2} -> 3 -> {4, 5} -> 6 ... -> 3k.
HeapGraph Diamonds(uint32_t k) {
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (uint32_t i = 0; i < k; ++i) {
    const uint32_t top = 3 * i;
    edges.insert(edges.end(), {{top, top + 1},
                               {top, top + 2},
                               {top + 1, top + 3},
                               {top + 2, top + 3}});
  }
  return MakeGraph(3 * k + 1, edges, {0});
}

TEST(PathsTest, CountsAllPathsWithoutListingThem) {
  ShortestPathOptions three;
  three.max_paths = 3;
  auto sp = FindShortestPaths(Diamonds(100), {300}, three);
  ASSERT_TRUE(sp.ok());
  EXPECT_EQ(sp->paths.size(), 3u);
  EXPECT_TRUE(sp->truncated);
  EXPECT_EQ(sp->length, 200u);
  EXPECT_EQ(sp->count, absl::uint128(1) << 100);
  // Two root names for node 0: twice as many.
  HeapGraph g = Diamonds(3);
  g.root_names.push_back("again");
  g.root_nodes.push_back(0);
  EXPECT_EQ(FindShortestPaths(g, {9})->count, 16u);
  // Past 2**128 - 1 the count saturates.
  EXPECT_EQ(FindShortestPaths(Diamonds(130), {390}, three)->count,
            absl::Uint128Max());
  // A target that is a root: one path of length 0 per root name.
  EXPECT_EQ(FindShortestPaths(g, {0})->count, 2u);
  EXPECT_EQ(FindShortestPaths(g, {})->count, 0u);
}

TEST(PathsTest, SourcesReplaceTheRoots) {
  const std::vector<uint32_t> from_1 = {1};
  ShortestPathOptions options;
  options.sources = &from_1;
  auto sp = FindShortestPaths(Diamond(), {4}, options);
  ASSERT_TRUE(sp.ok());
  EXPECT_EQ(NodeLists(*sp), (std::vector<Nodes>{{1, 2, 4}, {1, 3, 4}}));
  EXPECT_EQ(sp->paths[0].root, 0u);  // the index into sources
  EXPECT_EQ(sp->count, 2u);
  const std::vector<uint32_t> from_5_and_3 = {5, 3};
  options.sources = &from_5_and_3;
  sp = FindShortestPaths(Diamond(), {4}, options);
  EXPECT_EQ(NodeLists(*sp), (std::vector<Nodes>{{3, 4}}));
  EXPECT_EQ(sp->paths[0].root, 1u);
  const std::vector<uint32_t> dead_end = {5};
  options.sources = &dead_end;
  EXPECT_TRUE(FindShortestPaths(Diamond(), {4}, options)->paths.empty());
  const std::vector<uint32_t> bad = {6};
  options.sources = &bad;
  EXPECT_EQ(FindShortestPaths(Diamond(), {4}, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PathsTest, RootsStartPathsByTheirUse) {
  // Root r1 (node 2) is reached from r0 under an alias, as a frame's
  // globals are through sys.modules: paths start at r0 only.
  HeapGraph g = Diamond();
  g.root_names.push_back("r1");
  g.root_nodes.push_back(2);
  EXPECT_EQ(NodeLists(*FindShortestPaths(g, {4})),
            (std::vector<Nodes>{{2, 4}}));
  g.root_uses = {RootUse::kStart, RootUse::kAlias};
  g.root_aliases = {"", "%R.r0[1]"};
  auto sp = FindShortestPaths(g, {4});
  EXPECT_EQ(NodeLists(*sp), (std::vector<Nodes>{{0, 1, 2, 4}, {0, 1, 3, 4}}));
  EXPECT_EQ(sp->count, 2u);
  EXPECT_EQ(sp->paths[0].root, 0u);
  // A fallback root (as a running frame's function) starts paths only to
  // what the other roots do not reach: node 6, held by node 7 alone.
  g = MakeGraph(8, {{0, 1}, {1, 2}, {2, 3}, {7, 6}, {7, 3}}, {0, 7});
  g.root_uses = {RootUse::kStart, RootUse::kFallback};
  sp = FindShortestPaths(g, {3});
  EXPECT_EQ(NodeLists(*sp), (std::vector<Nodes>{{0, 1, 2, 3}}));
  sp = FindShortestPaths(g, {6});
  EXPECT_EQ(NodeLists(*sp), (std::vector<Nodes>{{7, 6}}));
  EXPECT_EQ(sp->paths[0].root, 1u);
  EXPECT_EQ(sp->count, 1u);
  // ... then both kinds start, the nearest targets win.
  sp = FindShortestPaths(g, {6, 5});
  EXPECT_EQ(NodeLists(*sp), (std::vector<Nodes>{{7, 6}}));
  g.root_uses = {RootUse::kAlias, RootUse::kFallback};
  EXPECT_EQ(NodeLists(*FindShortestPaths(g, {3})),
            (std::vector<Nodes>{{7, 3}}));
}

TEST(PathsTest, PreferredPredecessorsFoldOtherWaysIn) {
  // Root 0 (sys.modules) -> 1 (module) -> 2 (its dict) -> 3 -> 4 (target);
  // root 5 (a frame's local, a thread) -> 6 (a function) -> 2 (its
  // __globals__): both ways into the dict are two steps long.
  HeapGraph g =
      MakeGraph(7, {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {5, 6}, {6, 2}}, {0, 5});
  auto sp = FindShortestPaths(g, {4});
  EXPECT_EQ(NodeLists(*sp),
            (std::vector<Nodes>{{0, 1, 2, 3, 4}, {5, 6, 2, 3, 4}}));
  g.preferred_in = {{1, 0}, {2, 1}};
  ReverseIndex reverse = ReverseIndex::Build(g);
  for (const ReverseIndex* r : {static_cast<const ReverseIndex*>(nullptr),
                                static_cast<const ReverseIndex*>(&reverse)}) {
    ShortestPathOptions options;
    options.reverse = r;
    options.edges_at_levels = {1};
    sp = FindShortestPaths(g, {4}, options);
    EXPECT_EQ(NodeLists(*sp), (std::vector<Nodes>{{0, 1, 2, 3, 4}}));
    EXPECT_EQ(sp->count, 1u);
    ASSERT_EQ(sp->level_edges.size(), 1u);
    EXPECT_EQ(sp->level_edges[0].from, 1u);
    // With the module avoided, or its step into the dict, or when the
    // other way is shorter, the other way is the path.
    ShortestPathOptions avoid = options;
    avoid.avoid_nodes = {1};
    EXPECT_EQ(NodeLists(*FindShortestPaths(g, {4}, avoid)),
              (std::vector<Nodes>{{5, 6, 2, 3, 4}}));
    avoid = options;
    avoid.avoid_edges = {{1, 2}};
    EXPECT_EQ(NodeLists(*FindShortestPaths(g, {4}, avoid)),
              (std::vector<Nodes>{{5, 6, 2, 3, 4}}));
  }
  HeapGraph shorter =
      MakeGraph(7, {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {5, 2}}, {0, 5});
  shorter.preferred_in = {{1, 0}, {2, 1}};
  EXPECT_EQ(NodeLists(*FindShortestPaths(shorter, {4})),
            (std::vector<Nodes>{{5, 2, 3, 4}}));
}

TEST(PathsTest, EdgesAtLevelsCoverPathsNotListed) {
  ShortestPathOptions options;
  options.max_paths = 1;
  options.edges_at_levels = {-1, 0, 7};
  auto sp = FindShortestPaths(Diamond(), {4}, options);
  ASSERT_TRUE(sp.ok());
  EXPECT_EQ(sp->paths.size(), 1u);
  std::set<std::pair<uint32_t, uint32_t>> edges;
  for (const EdgeRef& e : sp->level_edges) edges.emplace(e.from, e.to);
  EXPECT_EQ(edges,
            (std::set<std::pair<uint32_t, uint32_t>>{{0, 1}, {2, 4}, {3, 4}}));
}

TEST(PathsTest, UnreachableAndInvalidTargets) {
  HeapGraph g = MakeGraph(3, {{0, 1}}, {0});
  EXPECT_TRUE(FindShortestPaths(g, {2})->paths.empty());
  EXPECT_TRUE(FindShortestPaths(g, {})->paths.empty());
  EXPECT_EQ(FindShortestPaths(g, {7}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PathsTest, MillionDeepChainNeedsNoRecursion) {
  const uint32_t n = 1000000;
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (uint32_t v = 0; v + 1 < n; ++v) edges.emplace_back(v, v + 1);
  HeapGraph g = MakeGraph(n, edges, {0});
  auto sp = FindShortestPaths(g, {n - 1});
  ASSERT_EQ(sp->paths.size(), 1u);
  EXPECT_EQ(sp->length, n - 1);
  EXPECT_EQ(sp->paths[0].nodes.back(), n - 1);
}

// Naive reference: BFS distances, then the number of shortest paths per node
// counted over distinct edges, one start per root name.
struct Naive {
  std::vector<uint32_t> dist;
  std::vector<double> count;
};
Naive NaiveCount(const HeapGraph& g) {
  const uint32_t inf = UINT32_MAX;
  Naive r{std::vector<uint32_t>(g.size(), inf),
          std::vector<double>(g.size(), 0)};
  std::deque<uint32_t> q;
  for (uint32_t s : g.root_nodes) {
    if (r.dist[s] == inf) q.push_back(s);
    r.dist[s] = 0;
    r.count[s] += 1;
  }
  std::vector<uint32_t> order;
  while (!q.empty()) {
    uint32_t v = q.front();
    q.pop_front();
    order.push_back(v);
    for (uint32_t e = g.out_begin[v]; e < g.out_begin[v + 1]; ++e) {
      uint32_t w = g.out_targets[e];
      if (r.dist[w] == inf) {
        r.dist[w] = r.dist[v] + 1;
        q.push_back(w);
      }
    }
  }
  for (uint32_t v : order) {
    std::set<uint32_t> distinct(g.out_targets.begin() + g.out_begin[v],
                                g.out_targets.begin() + g.out_begin[v + 1]);
    for (uint32_t w : distinct) {
      if (r.dist[w] == r.dist[v] + 1) r.count[w] += r.count[v];
    }
  }
  return r;
}

TEST(PathsTest, AgreesWithNaiveBfsOnRandomGraphs) {
  // Targets for which reverse_when_deep built an index, and reachable
  // ones for which it did not: both ways are compared.
  int built_reverse = 0, searched_only = 0;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    for (double degree : {0.8, 1.5, 3.0}) {
      HeapGraph g =
          RandomGraph(seed % 2 ? 10000 : 1500, degree, 3, seed % 3 == 0,
                      seed * 100 + static_cast<uint64_t>(degree * 10));
      Naive naive = NaiveCount(g);
      ReverseIndex reverse = ReverseIndex::Build(g);
      for (uint32_t t = 0; t < g.size(); t += g.size() / 40) {
        ShortestPathOptions options;
        options.max_paths = 0;
        if (naive.count[t] > 5000) {
          // Counted, not listed: the count alone is checked.
          options.max_paths = 1;
          if (naive.count[t] < 1e15) {
            EXPECT_EQ(FindShortestPaths(g, {t}, options)->count,
                      static_cast<uint64_t>(naive.count[t]));
          }
          continue;
        }
        auto sp = FindShortestPaths(g, {t}, options);
        ASSERT_TRUE(sp.ok());
        // Marking over the reverse index gives the same paths.
        options.reverse = &reverse;
        auto with_reverse = FindShortestPaths(g, {t}, options);
        ASSERT_TRUE(with_reverse.ok());
        EXPECT_EQ(NodeLists(*with_reverse), NodeLists(*sp));
        // So does a reverse index built only for deep targets.
        options.reverse = nullptr;
        options.reverse_when_deep = true;
        auto when_deep = FindShortestPaths(g, {t}, options);
        ASSERT_TRUE(when_deep.ok());
        EXPECT_EQ(NodeLists(*when_deep), NodeLists(*sp));
        EXPECT_EQ(when_deep->count, sp->count);
        built_reverse += when_deep->built_reverse;
        searched_only += !when_deep->built_reverse && !sp->paths.empty();
        if (naive.dist[t] == UINT32_MAX) {
          EXPECT_TRUE(sp->paths.empty());
          continue;
        }
        EXPECT_EQ(sp->length, naive.dist[t]);
        EXPECT_EQ(sp->paths.size(), static_cast<size_t>(naive.count[t]))
            << "target " << t << " seed " << seed;
        EXPECT_EQ(sp->count, sp->paths.size());
        std::set<std::pair<uint32_t, Nodes>> distinct;
        for (const NodePath& p : sp->paths) {
          ASSERT_EQ(p.nodes.size(), naive.dist[t] + 1);
          EXPECT_EQ(p.nodes.front(), g.root_nodes[p.root]);
          EXPECT_EQ(p.nodes.back(), t);
          for (size_t i = 0; i + 1 < p.nodes.size(); ++i) {
            const uint32_t v = p.nodes[i];
            bool edge = false;
            for (uint32_t e = g.out_begin[v]; e < g.out_begin[v + 1]; ++e) {
              edge |= g.out_targets[e] == p.nodes[i + 1];
            }
            EXPECT_TRUE(edge);
          }
          distinct.emplace(p.root, p.nodes);
        }
        EXPECT_EQ(distinct.size(), sp->paths.size());
      }
    }
  }
  EXPECT_GT(built_reverse, 0);
  EXPECT_GT(searched_only, 0);
}

TEST(PathsTest, RootDistancesIsAPlainBfs) {
  HeapGraph g = RandomGraph(3000, 2, 2, false, 9);
  Naive naive = NaiveCount(g);
  EXPECT_EQ(RootDistances(g), naive.dist);
}

}  // namespace
}  // namespace annex::heap

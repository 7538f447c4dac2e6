// Test graphs.
#include "tests/heap/graph_testing.h"

#include <random>

namespace annex::heap::testing {

HeapGraph MakeGraph(uint32_t n,
                    const std::vector<std::pair<uint32_t, uint32_t>>& edges,
                    const std::vector<uint32_t>& roots) {
  HeapGraph g;
  for (uint32_t v = 0; v < n; ++v) {
    g.addresses.push_back(uintptr_t{16} * (v + 1));
    g.sizes.push_back(v + 1);
  }
  g.out_begin.assign(n + 1, 0);
  for (const auto& [from, to] : edges) ++g.out_begin[from + 1];
  for (uint32_t v = 0; v < n; ++v) g.out_begin[v + 1] += g.out_begin[v];
  g.out_targets.resize(edges.size());
  std::vector<uint32_t> cursor(g.out_begin.begin(), g.out_begin.end() - 1);
  for (const auto& [from, to] : edges) g.out_targets[cursor[from]++] = to;
  for (size_t i = 0; i < roots.size(); ++i) {
    g.root_names.push_back("r" + std::to_string(i));
    g.root_nodes.push_back(roots[i]);
  }
  return g;
}

HeapGraph RandomGraph(uint32_t n, double avg_degree, uint32_t roots, bool chain,
                      uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint32_t> node(0, n - 1);
  std::poisson_distribution<int> degree(avg_degree);
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (uint32_t v = 0; v < n; ++v) {
    if (chain && v + 1 < n && rng() % 4 != 0) edges.emplace_back(v, v + 1);
    for (int d = degree(rng); d > 0; --d) edges.emplace_back(v, node(rng));
  }
  std::vector<uint32_t> root_nodes;
  for (uint32_t r = 0; r < roots; ++r) root_nodes.push_back(node(rng));
  return MakeGraph(n, edges, root_nodes);
}

}  // namespace annex::heap::testing

// Synthetic Python-like heaps.
#include "bench/retention/synthetic_heap.h"

#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace annex::bench {

heap::HeapGraph SyntheticHeap(uint32_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](uint64_t bound) { return rng() % bound; };
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  edges.reserve(static_cast<size_t>(n) * 5 / 2);
  // Hubs: node 0 is sys.modules, 1..1000 modules (each with a dict hub),
  // 2001..3000 classes, 3001 a big list.
  const uint32_t kModules = 1000, kClasses = 1000;
  const uint32_t first_class = 1 + 2 * kModules,
                 big_list = first_class + kClasses;
  for (uint32_t m = 0; m < kModules; ++m) {
    edges.emplace_back(0, 1 + m);                 // sys.modules -> module
    edges.emplace_back(1 + m, 1 + kModules + m);  // module -> its dict
  }
  for (uint32_t c = 0; c < kClasses; ++c) {
    edges.emplace_back(1 + kModules + uniform(kModules), first_class + c);
  }
  edges.emplace_back(1 + kModules, big_list);
  // Everything else: one parent, earlier, usually near; runs of long chains.
  // Long chains (linked lists, deep trees), about five per million nodes,
  // placed first so that no far edge shortcuts into them: they stay deep.
  std::vector<bool> in_chain(n, false);
  for (uint32_t c = 0; c < std::max<uint32_t>(1, n / 200000); ++c) {
    const uint32_t start = big_list + 2 + uniform(n - big_list - 2);
    const uint32_t length = 50000 + uniform(100000);
    for (uint32_t v = start; v < n && v < start + length; ++v)
      in_chain[v] = true;
  }
  for (uint32_t v = big_list + 1; v < n; ++v) {
    uint32_t parent;
    if (in_chain[v] && in_chain[v - 1]) {
      parent = v - 1;
    } else {
      const uint64_t r = uniform(100);
      if (r < 55) {
        parent = v - 1 - uniform(std::min<uint64_t>(v - big_list, 64));
      } else if (r < 65) {
        parent = big_list;
      } else if (r < 80) {
        parent = 1 + kModules + uniform(kModules);  // a module global
      } else {
        parent = big_list + uniform(v - big_list);
      }
    }
    edges.emplace_back(parent, v);
    // Instances point at their class (a hub); some objects are leaves.
    const uint64_t kind = uniform(100);
    if (kind < 60) edges.emplace_back(v, first_class + uniform(kClasses));
    if (kind < 40) {
      // A near back edge (a cycle), never into a chain: a linked list node
      // is held by its predecessor only.
      const uint32_t near =
          static_cast<uint32_t>(v - uniform(std::min<uint64_t>(v, 256)));
      if (!in_chain[near]) edges.emplace_back(v, near);
    }
    if (kind < 20) {
      uint32_t far = static_cast<uint32_t>(uniform(n));  // often a cycle
      if (!in_chain[far]) edges.emplace_back(v, far);
    }
  }
  heap::HeapGraph g;
  g.addresses.resize(n);
  g.sizes.resize(n);
  for (uint32_t v = 0; v < n; ++v) {
    g.addresses[v] = 0x7f0000000000ull + 16ull * v;
    g.sizes[v] = 16 + 8 * uniform(12);
  }
  g.out_begin.assign(static_cast<size_t>(n) + 1, 0);
  for (const auto& e : edges) ++g.out_begin[e.first + 1];
  for (uint32_t v = 0; v < n; ++v) g.out_begin[v + 1] += g.out_begin[v];
  g.out_targets.resize(edges.size());
  std::vector<uint32_t> cursor(g.out_begin.begin(), g.out_begin.end() - 1);
  for (const auto& e : edges) g.out_targets[cursor[e.first]++] = e.second;
  const char* names[] = {"sys.modules", "sys.__dict__", "builtins"};
  g.root_names.push_back(names[0]);
  g.root_nodes.push_back(0);
  g.root_names.push_back(names[1]);
  g.root_nodes.push_back(1 + kModules);
  g.root_names.push_back(names[2]);
  g.root_nodes.push_back(2 + kModules);
  for (int t = 0; t < 9; ++t) {
    g.root_names.push_back("thread " + std::to_string(t) + " frame");
    uint32_t frame;
    do {
      frame = big_list + 1 + static_cast<uint32_t>(uniform(n - big_list - 1));
    } while (in_chain[frame]);
    g.root_nodes.push_back(frame);
  }
  return g;
}

}  // namespace annex::bench

// Reverse edge index and one-step neighbourhoods.
#include "monitor/heap/referrers.h"

#include <algorithm>
#include <new>
#include <utility>

namespace annex::heap {
namespace {

void SortUnique(std::vector<uint32_t>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

ReverseIndex::~ReverseIndex() {
  GiveTo(pool.get(), in_begin);
  GiveTo(pool.get(), in_sources);
}

ReverseIndex& ReverseIndex::operator=(ReverseIndex&& other) noexcept {
  if (this != &other) {
    this->~ReverseIndex();
    new (this) ReverseIndex(std::move(other));
  }
  return *this;
}

ReverseIndex ReverseIndex::Build(const HeapGraph& graph) {
  const uint32_t n = graph.size();
  ReverseIndex rev;
  rev.pool = graph.pool;
  BufferPool* pool = graph.pool.get();
  rev.in_begin = FilledFrom(pool, static_cast<size_t>(n) + 1, uint32_t{0});
  for (uint32_t t : graph.out_targets) ++rev.in_begin[t + 1];
  for (uint32_t v = 0; v < n; ++v) rev.in_begin[v + 1] += rev.in_begin[v];
  rev.in_sources = FilledFrom(pool, graph.out_targets.size(), uint32_t{0});
  // Filling sources in ascending order keeps each in-list sorted for free.
  std::vector<uint32_t> cursor = TakeFrom<uint32_t>(pool, n);
  cursor.assign(rev.in_begin.begin(), rev.in_begin.end() - 1);
  for (uint32_t v = 0; v < n; ++v) {
    for (uint32_t e = graph.out_begin[v]; e < graph.out_begin[v + 1]; ++e) {
      rev.in_sources[cursor[graph.out_targets[e]]++] = v;
    }
  }
  GiveTo(pool, cursor);
  return rev;
}

NodeSet Referrers(const HeapGraph& graph, const ReverseIndex& reverse,
                  const NodeSet& set) {
  NodeSet out;
  for (uint32_t v : set) {
    out.insert(out.end(), reverse.in_sources.begin() + reverse.in_begin[v],
               reverse.in_sources.begin() + reverse.in_begin[v + 1]);
  }
  SortUnique(out);
  return out;
}

NodeSet Referents(const HeapGraph& graph, const NodeSet& set) {
  NodeSet out;
  for (uint32_t v : set) {
    out.insert(out.end(), graph.out_targets.begin() + graph.out_begin[v],
               graph.out_targets.begin() + graph.out_begin[v + 1]);
  }
  SortUnique(out);
  return out;
}

std::vector<EdgeRef> EdgesIn(const HeapGraph& graph,
                             const ReverseIndex& reverse, const NodeSet& set) {
  std::vector<EdgeRef> out;
  for (uint32_t v : set) {
    uint32_t last = UINT32_MAX;
    // in_sources is sorted per node, so duplicates are adjacent.
    for (uint32_t i = reverse.in_begin[v]; i < reverse.in_begin[v + 1]; ++i) {
      uint32_t u = reverse.in_sources[i];
      if (u == last) continue;
      out.push_back({u, v});
      last = u;
    }
  }
  return out;
}

std::vector<EdgeRef> EdgesOut(const HeapGraph& graph, const NodeSet& set) {
  std::vector<EdgeRef> out;
  std::vector<uint32_t> targets;
  for (uint32_t v : set) {
    targets.assign(graph.out_targets.begin() + graph.out_begin[v],
                   graph.out_targets.begin() + graph.out_begin[v + 1]);
    SortUnique(targets);
    for (uint32_t t : targets) out.push_back({v, t});
  }
  return out;
}

}  // namespace annex::heap

// Referrers and referents of node sets: the reverse edge index of a
// HeapGraph (who points at whom) and one-step neighbourhoods, Heapy's
// `referrers` / `referents` / `pathsin` / `pathsout`.
//
//   ReverseIndex rev = ReverseIndex::Build(graph);
//   NodeSet who = Referrers(graph, rev, {leak});
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "monitor/heap/buffer_pool.h"
#include "monitor/heap/graph.h"
#include "monitor/heap/node_set.h"

namespace annex::heap {

// The referrers of every node in CSR form: the nodes with an edge to v are
// in_sources[in_begin[v] .. in_begin[v + 1]), ascending, one entry per edge
// (parallel edges repeat the source). Built in one counting pass over the
// edges plus one fill pass; immutable afterwards, so it may be shared across
// threads. Valid only for the graph it was built from.
struct ReverseIndex {
  ReverseIndex() = default;
  // Gives the arrays back to `pool` (when set).
  ~ReverseIndex();
  ReverseIndex(ReverseIndex&&) = default;
  // Gives this index's arrays back before taking `other`'s.
  ReverseIndex& operator=(ReverseIndex&& other) noexcept;

  std::vector<uint32_t> in_begin;
  std::vector<uint32_t> in_sources;
  // The graph's pool (HeapGraph::pool), where the arrays came from.
  std::shared_ptr<BufferPool> pool;

  // Pure C++, any thread. `graph` must be valid (ValidateGraph). The
  // arrays come from graph.pool when it is set.
  static ReverseIndex Build(const HeapGraph& graph);
};

// An edge of the graph, by its endpoints.
struct EdgeRef {
  uint32_t from;
  uint32_t to;
  bool operator==(const EdgeRef& o) const {
    return from == o.from && to == o.to;
  }
};

// The nodes with an edge into `set` (a node of `set` may be among them).
// Pure C++, any thread.
NodeSet Referrers(const HeapGraph& graph, const ReverseIndex& reverse,
                  const NodeSet& set);

// The nodes that `set` has edges to. Pure C++, any thread.
NodeSet Referents(const HeapGraph& graph, const NodeSet& set);

// Every distinct edge into `set` (Heapy's pathsin), ordered by (to, from).
// Pure C++, any thread.
std::vector<EdgeRef> EdgesIn(const HeapGraph& graph,
                             const ReverseIndex& reverse, const NodeSet& set);

// Every distinct edge out of `set` (Heapy's pathsout), ordered by
// (from, to). Pure C++, any thread.
std::vector<EdgeRef> EdgesOut(const HeapGraph& graph, const NodeSet& set);

}  // namespace annex::heap

// A snapshot of the target's object graph: the shared currency between the
// heap walk (which builds it) and the retention algorithms (referrers,
// shortest paths, dominators), which are pure C++ over it and never touch
// Python.
//
//   HeapGraph g = ...;                    // from one walk, GIL held
//   for (uint32_t e = g.out_begin[v]; e < g.out_begin[v + 1]; ++e)
//     Visit(g.out_targets[e]);
//
// Node ids are dense (0..size()-1) and ordered by object address, so a node
// id can be found from an address with a binary search over `addresses`.
// The addresses are identities only: dereferencing one is allowed only while
// the GIL has been held continuously since the walk that built the graph
// (docs/design.md rule 10).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "monitor/heap/buffer_pool.h"

namespace annex::heap {

// How path searches (paths.h) use a root of the graph.
enum class RootUse : uint8_t {
  kStart,     // paths start here
  kFallback,  // only when no kStart root reaches any target
  kAlias,     // never: its object is reached under another spelling
};

struct HeapGraph {
  HeapGraph() = default;
  // Gives the four big arrays back to `pool` (when set) for the next
  // question's graph.
  ~HeapGraph();
  HeapGraph(const HeapGraph&) = default;
  HeapGraph& operator=(const HeapGraph&) = default;
  HeapGraph(HeapGraph&&) = default;
  // Gives this graph's arrays back (as the destructor) before taking
  // `other`'s.
  HeapGraph& operator=(HeapGraph&& other) noexcept;

  // Sorted object addresses; index = node id.
  std::vector<uintptr_t> addresses;
  // Size of each object in bytes (equal to sys.getsizeof in the target).
  std::vector<uint64_t> sizes;
  // Outgoing edges in compressed sparse row form: the referents of node v
  // are out_targets[out_begin[v] .. out_begin[v + 1]). out_begin has
  // size() + 1 entries. Parallel edges may appear; self edges may appear.
  std::vector<uint32_t> out_begin;
  std::vector<uint32_t> out_targets;
  // Named roots (e.g. "sys.modules", "thread 1234 frame") and their nodes.
  // Paths start at one of these. A root node is also an ordinary node.
  std::vector<std::string> root_names;
  std::vector<uint32_t> root_nodes;
  // How each root holds its node, e.g. ".f_globals" for a running frame's
  // globals (monitor/heap/roots.h); "" when the node is the named object.
  // Either parallel to root_names or empty (no root edges at all).
  std::vector<std::string> root_edges;
  const std::string& root_edge(size_t r) const {
    static const std::string kNone;
    return r < root_edges.size() ? root_edges[r] : kNone;
  }
  // How path searches use each root, and for a kAlias root the spelling
  // under which paths reach its object (roots.h: a running frame's globals
  // that are a module's dict read "%R.sys.modules['app'].__dict__"). Either
  // parallel to root_names or empty (every root a kStart). Reachability,
  // heapu() and dominators count every root alike.
  std::vector<RootUse> root_uses;
  std::vector<std::string> root_aliases;
  RootUse root_use(size_t r) const {
    return r < root_uses.size() ? root_uses[r] : RootUse::kStart;
  }
  const std::string& root_alias(size_t r) const {
    static const std::string kNone;
    return r < root_aliases.size() ? root_aliases[r] : kNone;
  }

  // Preferred ways into some nodes, as (node, predecessor) pairs sorted by
  // node: sys.modules into each module, a module into its dict (roots.h).
  // A shortest path enters such a node from its predecessor whenever that
  // predecessor is on a shortest path to it too (paths.h). May be empty.
  std::vector<std::pair<uint32_t, uint32_t>> preferred_in;

  // False when the graph also holds live objects that are not reachable
  // from the roots (GraphOptions::Scope::kLive): heapu()'s members and
  // what they hold. Those have no path from a root and no dominator.
  bool reachable_only = true;

  // Where the arrays came from (HeapEngine's pool) and go back to; null
  // for graphs built by hand. Structures built from the graph (reverse
  // index, dominator tree) take their arrays from it too.
  std::shared_ptr<BufferPool> pool;

  uint32_t size() const { return static_cast<uint32_t>(addresses.size()); }
  // The node id of `address`, or -1 when it is not in the graph.
  int64_t Find(uintptr_t address) const;
  // The same for addresses looked up in ascending order: `*cursor` (start
  // at 0) is where the last one was; the search gallops on from there, so
  // a sorted run of lookups costs the log of the gaps between them rather
  // than of the graph's size (a row of a quarter of a million objects:
  // two or three steps each, in cache). An address below the cursor is
  // looked up from the start.
  int64_t FindAscending(uintptr_t address, uint32_t* cursor) const;
};

// A graph that several questions may read (HeapEngine::SharedGraph keeps
// one for the next question), or why there is none. Reads like
// absl::StatusOr<HeapGraph> but never copies the graph.
//
//   SharedGraph g = engine.SharedGraph(options);
//   if (!g.ok()) return g.status();
//   Use(g->addresses, *g);
class SharedGraph {
 public:
  SharedGraph(absl::Status status)  // NOLINT: converts as StatusOr does
      : status_(std::move(status)) {
    if (status_.ok()) status_ = absl::InternalError("no graph");
  }
  SharedGraph(std::shared_ptr<const HeapGraph> graph)  // NOLINT: as StatusOr
      : graph_(std::move(graph)) {
    if (graph_ == nullptr) status_ = absl::InternalError("no graph");
  }
  bool ok() const { return graph_ != nullptr; }
  const absl::Status& status() const { return status_; }
  // Only when ok().
  const HeapGraph& operator*() const { return *graph_; }
  const HeapGraph* operator->() const { return graph_.get(); }
  const std::shared_ptr<const HeapGraph>& shared() const { return graph_; }

 private:
  absl::Status status_;  // OK when graph_ is set
  std::shared_ptr<const HeapGraph> graph_;
};

}  // namespace annex::heap

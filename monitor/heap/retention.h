// Retention facade: "why is it alive?" over one heap snapshot. Shortest
// reference paths from the named roots with every edge named in Python
// syntax, and the retained size of a set of objects.
//
//   // GIL held continuously since the walk that built `graph`.
//   absl::StatusOr<std::vector<RetentionPath>> paths = PathsTo(graph, {leak});
//   for (const RetentionPath& p : *paths) std::puts(p.text.c_str());
//   // %R.sys.modules['app'].__dict__['registry']['handlers'][3]
//   absl::StatusOr<uint64_t> bytes = RetainedSize(graph, {leak});
//
// For many questions about one snapshot, build a ReverseIndex or a
// DominatorTree once and use referrers.h / paths.h / dominators.h directly.
#pragma once

#include <Python.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "monitor/heap/edge_names.h"
#include "monitor/heap/graph.h"
#include "monitor/heap/node_set.h"
#include "monitor/heap/paths.h"
#include "monitor/heap/referrers.h"

namespace annex::heap {

struct RetentionPath {
  // The root the path starts from, e.g. "sys.modules", and how it holds
  // the first node ("" or e.g. ".f_globals" for a running frame).
  std::string root_name;
  std::string root_edge;
  // One typed edge per step: {kind, text, name}.
  std::vector<Edge> edges;
  // The node ids along the path, root node first, target last.
  std::vector<uint32_t> nodes;
  // FormatPath of the above: "%R.sys.modules['app']...". From given
  // sources (ShortestPathOptions::sources) the steps alone ("['a'][0]"),
  // and root_name and root_edge are empty.
  std::string text;
  // The root's index in graph.root_names, or the source's in *sources.
  uint32_t start = 0;
};

// All shortest paths from the roots of `graph` (or the options' sources) to
// the nearest of `targets` (see FindShortestPaths for the order, avoidance,
// the limit and the roots that are no starts), each edge named by
// DescribeEdge; with `count`, how many shortest paths there are in all
// (ShortestPaths::count). InvalidArgument for a malformed graph or node set.
// Where: GIL held continuously since the walk that built `graph` (its
// addresses are dereferenced; docs/design.md rule 10): with two interpreters,
// in the same HeapEngine::Question as that walk, since on 3.12+ every thread
// state swap may hand the GIL over (heap_engine.h). No Python error set. Never
// runs target Python code.
absl::StatusOr<std::vector<RetentionPath>> PathsTo(
    const HeapGraph& graph, const NodeSet& targets,
    const ShortestPathOptions& options = {}, absl::uint128* count = nullptr);

// One edge with its Python-level name.
struct NamedEdge {
  uint32_t from;
  uint32_t to;
  Edge edge;
};

// Heapy's pathsin: every distinct edge into `set`, ordered by (to, from),
// each named by DescribeEdge. InvalidArgument for a malformed graph or set.
// Where: GIL held continuously since the walk that built `graph` (in the
// same HeapEngine::Question as that walk), no Python error set.
absl::StatusOr<std::vector<NamedEdge>> NamedEdgesIn(const HeapGraph& graph,
                                                    const ReverseIndex& reverse,
                                                    const NodeSet& set);

// Heapy's pathsout: every distinct edge out of `set`, ordered by (from,
// to), each named. Where: as NamedEdgesIn.
absl::StatusOr<std::vector<NamedEdge>> NamedEdgesOut(const HeapGraph& graph,
                                                     const NodeSet& set);

// Heapy's domisize of `set`: the total size of `set` plus every object that
// becomes unreachable from the roots when all of `set` is removed. Exact;
// two BFS passes, no dominator tree (build one with dominators.h to ask
// many times). InvalidArgument for a malformed graph or node set.
// Pure C++, any thread; never dereferences an address.
absl::StatusOr<uint64_t> RetainedSize(const HeapGraph& graph,
                                      const NodeSet& set);

}  // namespace annex::heap

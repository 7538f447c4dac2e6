// The dominator tree's top retainers, by kind, for heap records
// (docs/recording.md, "Retainers"): what keeps the most bytes alive, as a
// small tree the report draws as an icicle.
//
// The tree is the heap's dominator tree (monitor/heap/dominators.h) with
// siblings of one kind merged: a node is (kind, objects, retained bytes)
// and its children are the objects those objects immediately dominate,
// merged by kind again. A root object is named by its root ("sys.modules",
// "thread 1234 frame 0") before its kind. Each level keeps its `max_children`
// largest entries by retained bytes, and only those that retain at least
// `min_part` of all reachable bytes, the rest folded into one "<Other>"
// entry; `max_depth` levels.
//
//   heap::DominatorTree tree = heap::DominatorTree::Build(graph);
//   std::string json = RetainersJson(graph, tree, kinds, kind_names);
//
// Pure C++ over a graph snapshot, no Python: any thread (the recorder
// builds it on its own thread, after the walk let the target go).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "monitor/heap/dominators.h"
#include "monitor/heap/graph.h"

namespace annex::glue {

struct RetainerOptions {
  size_t max_depth =
      5;  // e.g. sys.modules > module > its dict > a list > items
  size_t max_children = 8;
  // Entries retaining less than this part of all reachable bytes are
  // folded into "<Other>" too. Entries of one level retain disjoint sets
  // (dominator subtrees), so a level keeps at most 1 / min_part entries.
  double min_part = 0.002;
};

// The top retainers as a JSON array of {"kind", "count", "retained",
// "children": [...]} (largest first; "<Other>" has no children), or "[]".
// `kinds[v]` is node v's kind, an index into `kind_names` (Clodo: a
// KindedSet's `clodo`, else its `kinds`, over the graph's own addresses).
std::string RetainersJson(const heap::HeapGraph& graph,
                          const heap::DominatorTree& tree,
                          const std::vector<uint32_t>& kinds,
                          const std::vector<std::string>& kind_names,
                          RetainerOptions options = RetainerOptions());

}  // namespace annex::glue

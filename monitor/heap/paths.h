// Shortest reference paths from the named roots of a HeapGraph to a set of
// nodes: Heapy's `shpaths` / `.sp`, pure C++ (edge names are added by
// edge_names.h when Python is at hand).
//
//   ShortestPathOptions options;
//   options.max_paths = 10;
//   absl::StatusOr<ShortestPaths> sp = FindShortestPaths(graph, {leak},
//   options); for (const NodePath& p : sp->paths)
//     Print(graph.root_names[p.root], p.nodes);
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/numeric/int128.h"
#include "absl/status/statusor.h"
#include "monitor/heap/graph.h"
#include "monitor/heap/node_set.h"
#include "monitor/heap/question_stop.h"
#include "monitor/heap/referrers.h"

namespace annex::heap {

struct ShortestPathOptions {
  // Paths never pass through these nodes (a root or target among them is
  // neither a start nor an end).
  NodeSet avoid_nodes;
  // Paths never use these edges (all parallel copies of each). To see the
  // next route after a first path, avoid its last edge (or any of them).
  std::vector<EdgeRef> avoid_edges;
  // At most this many paths are returned; 0 means no limit. The number of
  // shortest paths can grow exponentially with their length. The default is
  // every layer's (glue::RetentionOptions, hp's `x.sp`).
  size_t max_paths = 20;
  // The graph's reverse index, when the caller has one: marking the nodes on
  // shortest paths then walks back from the targets over their referrers
  // instead of re-scanning every visited edge. Not owned; may be null.
  const ReverseIndex* reverse = nullptr;
  // Without `reverse`: build one for the marking when the search scanned
  // most of the graph's edges (deep targets), where building it costs
  // less than re-scanning them; otherwise re-scan (targets near the
  // roots are found after a small part of the graph).
  bool reverse_when_deep = false;
  // The asking question's stop (question_stop.h), polled by the search and
  // the enumeration (and by PathsTo per path): once it says stop, the
  // result is its status. Not owned; may be null.
  QuestionStop* stop = nullptr;
  // Where paths start (Heapy's src): these nodes instead of the graph's
  // roots; NodePath::root is then an index into this vector. Duplicates
  // give duplicate paths; an avoided source is no start. Not owned; null:
  // the graph's roots, by their use (graph.h RootUse).
  const std::vector<uint32_t>* sources = nullptr;
  // Steps (0 the first, -1 the last; out of range: none) whose edges, over
  // all the shortest paths found, ShortestPaths::level_edges lists: what
  // avoid_edges needs for the next route (Heapy's edges_at and
  // copy_but_avoid_edges_at_levels).
  std::vector<int> edges_at_levels;
};

// One path: starts at root_nodes[root] (named root_names[root]), or at
// (*sources)[root] when ShortestPathOptions::sources is given, and ends at a
// target; nodes[0] is the start node, nodes.back() the target, and every
// consecutive pair is an edge of the graph.
struct NodePath {
  uint32_t root;
  std::vector<uint32_t> nodes;
};

struct ShortestPaths {
  // Number of edges on each path; meaningless when `paths` is empty.
  uint32_t length = 0;
  // All shortest paths to the targets nearest to the roots, in the order
  // (root index, then node ids lexicographically). Empty when no target is
  // reachable under the options.
  std::vector<NodePath> paths;
  // True when max_paths cut the list short.
  bool truncated = false;
  // How many shortest paths there are in all (Heapy's numpaths), counted
  // over the marked nodes by dynamic programming, never by enumerating
  // them: per start, the number of distinct node sequences (parallel
  // edges count once, as they are listed once). Saturates at the maximum.
  absl::uint128 count = 0;
  // The distinct edges at options.edges_at_levels of all shortest paths
  // (listed or not), in no particular order.
  std::vector<EdgeRef> level_edges;
  // The search built a reverse index for its marking
  // (ShortestPathOptions::reverse_when_deep).
  bool built_reverse = false;
};

// Multi-source BFS from all named roots at once (visited set as a bitmap),
// stopping once the layer that contains the nearest targets is complete;
// then a backward pass marks exactly the nodes that lie on some shortest
// path (over options.reverse when given, else by re-scanning the visited
// layers), a count of all shortest paths over the marked nodes, and a
// forward enumeration over those marks lists the paths (output-sensitive:
// no dead ends). Cost: at most one BFS, plus either the in-edges of the
// marked nodes (and the index's building when reverse_when_deep built
// one) or one re-scan of the visited edges, plus the out-edges of
// the marked nodes (the count), plus the size of the output. A node
// reached from several roots yields one path per root name. Roots start
// paths by their use (graph.h RootUse): kAlias roots never, kFallback roots
// only in a second search when the first reaches no target.
// InvalidArgument for an invalid target, avoided node or source. Pure C++,
// any thread.
absl::StatusOr<ShortestPaths> FindShortestPaths(
    const HeapGraph& graph, const NodeSet& targets,
    const ShortestPathOptions& options = {});

// Distance (edges) from the nearest root to every node, or kUnreached.
// Plain multi-source BFS; the baseline the benchmark compares against.
// Pure C++, any thread.
inline constexpr uint32_t kUnreached = UINT32_MAX;
std::vector<uint32_t> RootDistances(const HeapGraph& graph);

}  // namespace annex::heap

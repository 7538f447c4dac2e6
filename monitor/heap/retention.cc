// Retention facade: paths with named edges, retained size.
#include "monitor/heap/retention.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "monitor/heap/dominators.h"

namespace annex::heap {
namespace {

// The O(1) shape checks; the walk that built the graph owns the full
// validation (ValidateGraph).
absl::Status CheckShape(const HeapGraph& graph) {
  if (graph.sizes.size() != graph.size() ||
      graph.out_begin.size() != static_cast<size_t>(graph.size()) + 1 ||
      graph.out_begin.back() != graph.out_targets.size() ||
      graph.root_names.size() != graph.root_nodes.size()) {
    return absl::InvalidArgumentError("malformed heap graph");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<RetentionPath>> PathsTo(
    const HeapGraph& graph, const NodeSet& targets,
    const ShortestPathOptions& options, absl::uint128* count) {
  if (absl::Status s = CheckShape(graph); !s.ok()) return s;
  absl::StatusOr<ShortestPaths> sp = FindShortestPaths(graph, targets, options);
  if (!sp.ok()) return sp.status();
  if (count != nullptr) *count = sp->count;
  std::vector<RetentionPath> out;
  out.reserve(sp->paths.size());
  // Named in chunks (a poll of `stop` between them), each chunk's steps in
  // one DescribePaths: a holder shared by many paths (one list holding all
  // the targets) is scanned once per chunk, and there are at most eight
  // chunks of more than 4096 paths, so naming stays linear in the paths.
  const size_t total = sp->paths.size();
  const size_t chunk = std::max<size_t>(4096, (total + 7) / 8);
  std::vector<std::string> roots;
  std::vector<std::vector<PyObject*>> objects;
  for (size_t first = 0; first < total; first += chunk) {
    if (options.stop != nullptr && options.stop->Check()) {
      return options.stop->status();
    }
    const size_t end = std::min(total, first + chunk);
    roots.clear();
    objects.clear();
    for (size_t i = first; i < end; ++i) {
      const NodePath& p = sp->paths[i];
      roots.push_back(options.sources != nullptr ? std::string()
                                                 : graph.root_names[p.root]);
      std::vector<PyObject*>& o = objects.emplace_back();
      o.reserve(p.nodes.size());
      for (uint32_t v : p.nodes) {
        o.push_back(reinterpret_cast<PyObject*>(graph.addresses[v]));
      }
    }
    std::vector<Path> named = DescribePaths(roots, objects);
    for (size_t i = first; i < end; ++i) {
      NodePath& p = sp->paths[i];
      Path& n = named[i - first];
      RetentionPath r;
      r.start = p.root;
      if (options.sources != nullptr) {
        // From a given object: no root name; the text is the steps alone.
        for (const Edge& e : n.edges) r.text += e.text;
      } else {
        n.root_edge = graph.root_edge(p.root);
        r.text = FormatPath(n);
      }
      r.root_name = std::move(n.root_name);
      r.root_edge = std::move(n.root_edge);
      r.edges = std::move(n.edges);
      r.nodes = std::move(p.nodes);
      out.push_back(std::move(r));
    }
  }
  return out;
}

namespace {

PyObject* ObjectAt(const HeapGraph& graph, uint32_t v) {
  return reinterpret_cast<PyObject*>(graph.addresses[v]);
}

// Names `edges`, all in one DescribeEdges (a holder of many of them, such
// as the list holding a set's members for pathsin, is scanned once).
// Where: GIL held since the walk that built `graph`.
std::vector<NamedEdge> Name(const HeapGraph& graph,
                            const std::vector<EdgeRef>& edges) {
  std::vector<std::pair<PyObject*, PyObject*>> pairs;
  pairs.reserve(edges.size());
  for (const EdgeRef& e : edges) {
    pairs.emplace_back(ObjectAt(graph, e.from), ObjectAt(graph, e.to));
  }
  std::vector<Edge> named = DescribeEdges(pairs);
  std::vector<NamedEdge> out;
  out.reserve(edges.size());
  for (size_t i = 0; i < edges.size(); ++i) {
    out.push_back({edges[i].from, edges[i].to, std::move(named[i])});
  }
  return out;
}

absl::Status CheckSet(const HeapGraph& graph, const NodeSet& set) {
  if (absl::Status s = CheckShape(graph); !s.ok()) return s;
  for (uint32_t v : set) {
    if (v >= graph.size())
      return absl::InvalidArgumentError("node out of range");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<NamedEdge>> NamedEdgesIn(const HeapGraph& graph,
                                                    const ReverseIndex& reverse,
                                                    const NodeSet& set) {
  if (absl::Status s = CheckSet(graph, set); !s.ok()) return s;
  if (reverse.in_begin.size() != static_cast<size_t>(graph.size()) + 1) {
    return absl::InvalidArgumentError("reverse index of another graph");
  }
  return Name(graph, EdgesIn(graph, reverse, set));
}

absl::StatusOr<std::vector<NamedEdge>> NamedEdgesOut(const HeapGraph& graph,
                                                     const NodeSet& set) {
  if (absl::Status s = CheckSet(graph, set); !s.ok()) return s;
  return Name(graph, EdgesOut(graph, set));
}

absl::StatusOr<uint64_t> RetainedSize(const HeapGraph& graph,
                                      const NodeSet& set) {
  if (absl::Status s = CheckShape(graph); !s.ok()) return s;
  for (uint32_t v : set) {
    if (v >= graph.size())
      return absl::InvalidArgumentError("node out of range");
  }
  uint64_t total = 0;
  for (uint32_t v : set) total += graph.sizes[v];
  for (uint32_t v : UnreachableWithout(graph, set)) total += graph.sizes[v];
  return total;
}

}  // namespace annex::heap

// Paths to the growing kinds. See growth_paths.h.
#include "glue/growth_paths.h"

#include <Python.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glue/json.h"
#include "monitor/heap/edge_names.h"
#include "monitor/heap/paths.h"

namespace annex::glue {
namespace {

struct Growing {
  std::string kind;
  KindTotal now;
  KindTotal before;
  int64_t size_growth() const { return now.bytes - before.bytes; }
};

// The objects at `nodes` of `graph`, in order.
std::vector<PyObject*> Objects(const heap::HeapGraph& graph,
                               const std::vector<uint32_t>& nodes, size_t from,
                               size_t to) {
  std::vector<PyObject*> out;
  out.reserve(to - from);
  for (size_t i = from; i < to; ++i) {
    out.push_back(reinterpret_cast<PyObject*>(graph.addresses[nodes[i]]));
  }
  return out;
}

// The named path along `p`, its middle left out past 2 * end_edges edges.
// Where: as GrowthPathsJson.
std::string NamePath(const heap::HeapGraph& graph, const heap::NodePath& p,
                     size_t end_edges) {
  const size_t edges = p.nodes.empty() ? 0 : p.nodes.size() - 1;
  heap::Path named;
  if (edges <= 2 * end_edges) {
    named = heap::DescribePath(graph.root_names[p.root],
                               Objects(graph, p.nodes, 0, p.nodes.size()));
  } else {
    named = heap::DescribePath(graph.root_names[p.root],
                               Objects(graph, p.nodes, 0, end_edges + 1));
    heap::Path tail = heap::DescribePath(
        "", Objects(graph, p.nodes, p.nodes.size() - end_edges - 1,
                    p.nodes.size()));
    heap::Edge gap;
    gap.text = absl::StrCat("...(", edges - 2 * end_edges, " more edges)...");
    named.edges.push_back(std::move(gap));
    for (heap::Edge& e : tail.edges) named.edges.push_back(std::move(e));
  }
  named.root_edge = graph.root_edge(p.root);
  return heap::FormatPath(named);
}

}  // namespace

GrowthBaseline MakeGrowthBaseline(const heap::HeapGraph& graph,
                                  const std::vector<uint32_t>& kinds,
                                  const std::vector<std::string>& kind_names) {
  std::vector<KindTotal> by_index(kind_names.size());
  for (uint32_t v = 0; v < graph.size() && v < kinds.size(); ++v) {
    if (kinds[v] >= by_index.size()) continue;
    ++by_index[kinds[v]].count;
    by_index[kinds[v]].bytes += static_cast<int64_t>(graph.sizes[v]);
  }
  GrowthBaseline out;
  for (size_t k = 0; k < by_index.size(); ++k) {
    if (by_index[k].count == 0) continue;
    KindTotal& t = out.totals[kind_names[k]];
    t.count += by_index[k].count;
    t.bytes += by_index[k].bytes;
  }
  out.addresses = graph.addresses;
  return out;
}

std::string GrowthPathsJson(const heap::HeapGraph& graph,
                            const std::vector<uint32_t>& kinds,
                            const std::vector<std::string>& kind_names,
                            const GrowthBaseline& now,
                            const GrowthBaseline& before,
                            GrowthPathOptions options) {
  if (before.empty() || options.max_kinds == 0) return "[]";
  std::vector<Growing> growing;
  for (const auto& [kind, total] : now.totals) {
    auto was = before.totals.find(kind);
    Growing g{kind, total,
              was == before.totals.end() ? KindTotal() : was->second};
    if (g.size_growth() > 0) growing.push_back(std::move(g));
  }
  std::sort(growing.begin(), growing.end(),
            [](const Growing& a, const Growing& b) {
              if (a.size_growth() != b.size_growth()) {
                return a.size_growth() > b.size_growth();
              }
              return a.kind < b.kind;
            });
  if (growing.size() > options.max_kinds) growing.resize(options.max_kinds);

  if (growing.empty()) return "[]";

  // Which nodes are new: not at their address in `before` (both sorted).
  std::vector<bool> is_new(graph.size(), true);
  size_t b = 0;
  for (uint32_t v = 0; v < graph.size(); ++v) {
    while (b < before.addresses.size() &&
           before.addresses[b] < graph.addresses[v]) {
      ++b;
    }
    is_new[v] = b == before.addresses.size() ||
                before.addresses[b] != graph.addresses[v];
  }

  std::string out = "[";
  for (size_t g = 0; g < growing.size(); ++g) {
    const Growing& kind = growing[g];
    // The graph's nodes of this kind (a name may have several indexes).
    std::vector<bool> wanted(kind_names.size());
    for (size_t k = 0; k < kind_names.size(); ++k) {
      wanted[k] = kind_names[k] == kind.kind;
    }
    heap::NodeSet targets, fresh;
    for (uint32_t v = 0; v < graph.size() && v < kinds.size(); ++v) {
      if (kinds[v] < wanted.size() && wanted[kinds[v]]) {
        targets.push_back(v);
        if (is_new[v]) fresh.push_back(v);
      }
    }
    const bool to_new = !fresh.empty();
    if (to_new) targets = std::move(fresh);
    heap::ShortestPathOptions sp_options;
    sp_options.max_paths = 1;
    sp_options.stop = options.stop;
    const bool stopped = options.stop != nullptr && options.stop->Check();
    absl::StatusOr<heap::ShortestPaths> sp =
        targets.empty() || stopped
            ? absl::StatusOr<heap::ShortestPaths>()
            : heap::FindShortestPaths(graph, targets, sp_options);
    absl::StrAppend(&out, g == 0 ? "" : ",", "{\"kind\":");
    AppendJsonString(&out, kind.kind);
    absl::StrAppend(&out, ",\"count\":", kind.now.count,
                    ",\"size\":", kind.now.bytes,
                    ",\"count_growth\":", kind.now.count - kind.before.count,
                    ",\"size_growth\":", kind.size_growth(),
                    ",\"new\":", to_new ? "true" : "false");
    if (sp.ok() && !sp->paths.empty()) {
      absl::StrAppend(&out, ",\"length\":", sp->length, ",\"path\":");
      AppendJsonString(&out,
                       NamePath(graph, sp->paths.front(), options.end_edges));
    } else {
      out.append(",\"length\":null,\"path\":null");
      if (stopped || (options.stop != nullptr && options.stop->stopped())) {
        out.append(",\"stopped\":true");
      }
    }
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

}  // namespace annex::glue

// Node set construction and graph validation.
#include "monitor/heap/node_set.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace annex::heap {

absl::StatusOr<NodeSet> MakeNodeSet(const HeapGraph& graph,
                                    absl::Span<const uint32_t> nodes) {
  NodeSet set(nodes.begin(), nodes.end());
  std::sort(set.begin(), set.end());
  set.erase(std::unique(set.begin(), set.end()), set.end());
  if (!set.empty() && set.back() >= graph.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "node ", set.back(), " is not in a graph of ", graph.size(), " nodes"));
  }
  return set;
}

absl::Status ValidateGraph(const HeapGraph& graph) {
  const uint32_t n = graph.size();
  if (graph.sizes.size() != n) {
    return absl::InvalidArgumentError("sizes and addresses differ in length");
  }
  if (graph.out_begin.size() != static_cast<size_t>(n) + 1) {
    return absl::InvalidArgumentError("out_begin must have size() + 1 entries");
  }
  if (graph.out_begin[0] != 0 ||
      graph.out_begin[n] != graph.out_targets.size()) {
    return absl::InvalidArgumentError("out_begin does not span out_targets");
  }
  for (uint32_t v = 0; v < n; ++v) {
    if (graph.out_begin[v] > graph.out_begin[v + 1]) {
      return absl::InvalidArgumentError(
          absl::StrCat("out_begin decreases at node ", v));
    }
  }
  for (uint32_t t : graph.out_targets) {
    if (t >= n) {
      return absl::InvalidArgumentError(
          absl::StrCat("edge to node ", t, " out of range"));
    }
  }
  if (graph.root_names.size() != graph.root_nodes.size()) {
    return absl::InvalidArgumentError("root_names and root_nodes differ");
  }
  if ((!graph.root_aliases.empty() &&
       graph.root_aliases.size() != graph.root_names.size()) ||
      (!graph.root_uses.empty() &&
       graph.root_uses.size() != graph.root_names.size())) {
    return absl::InvalidArgumentError(
        "root_uses or root_aliases and root_names differ");
  }
  for (uint32_t r : graph.root_nodes) {
    if (r >= n) {
      return absl::InvalidArgumentError(
          absl::StrCat("root node ", r, " out of range"));
    }
  }
  return absl::OkStatus();
}

}  // namespace annex::heap

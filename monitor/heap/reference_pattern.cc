// Reference pattern: breadth of referrer kinds, depth first in output.
#include "monitor/heap/reference_pattern.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"

namespace annex::heap {
namespace {

struct Builder {
  const HeapGraph& graph;
  const ReverseIndex& reverse;
  const std::function<std::string(uint32_t)>& classify;
  const RpOptions& options;
  std::vector<RpNode> nodes;
  std::map<NodeSet, int> seen;

  void Expand(int index) {
    // Iterative preorder: a stack of node indices whose children are
    // still to be made.
    std::vector<int> stack = {index};
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      if (nodes[i].depth >= options.depth || nodes[i].same_as >= 0) continue;
      if (options.stop && nodes[i].depth > 0 &&
          std::all_of(nodes[i].nodes.begin(), nodes[i].nodes.end(),
                      options.stop)) {
        nodes[i].stopped = true;
        continue;
      }
      NodeSet referrers = Referrers(graph, reverse, nodes[i].nodes);
      std::map<std::string, NodeSet> groups;
      for (uint32_t v : referrers) groups[classify(v)].push_back(v);
      std::vector<std::pair<std::string, NodeSet>> sorted(groups.begin(),
                                                          groups.end());
      std::stable_sort(sorted.begin(), sorted.end(),
                       [](const auto& a, const auto& b) {
                         return a.second.size() > b.second.size();
                       });
      if (sorted.size() > options.max_children) {
        nodes[i].dropped = sorted.size() - options.max_children;
        sorted.resize(options.max_children);
      }
      std::vector<int> made;
      for (auto& [kind, set] : sorted) {
        RpNode child;
        child.kind = kind;
        child.depth = nodes[i].depth + 1;
        child.parent = i;
        auto it = seen.find(set);
        if (it != seen.end()) child.same_as = it->second;
        child.nodes = std::move(set);
        const int c = static_cast<int>(nodes.size());
        if (child.same_as < 0) seen.emplace(child.nodes, c);
        nodes.push_back(std::move(child));
        nodes[i].children.push_back(c);
        made.push_back(c);
      }
      for (auto it = made.rbegin(); it != made.rend(); ++it)
        stack.push_back(*it);
    }
  }
};

}  // namespace

std::vector<RpNode> ReferencePattern(
    const HeapGraph& graph, const ReverseIndex& reverse, const NodeSet& set,
    const std::function<std::string(uint32_t node)>& classify,
    const RpOptions& options) {
  Builder b{graph, reverse, classify, options, {}, {}};
  RpNode root;
  root.nodes = set;
  for (uint32_t v : set) {
    std::string kind = classify(v);
    if (root.kind.empty()) {
      root.kind = kind;
    } else if (root.kind != kind) {
      root.kind = "<mixed>";
      break;
    }
  }
  b.seen.emplace(set, 0);
  b.nodes.push_back(std::move(root));
  b.Expand(0);
  // Expand() appends children in breadth order per node; renumber into
  // preorder so the printed tree reads top-down.
  std::vector<int> order;
  std::vector<int> stack = {0};
  while (!stack.empty()) {
    const int i = stack.back();
    stack.pop_back();
    order.push_back(i);
    const auto& ch = b.nodes[i].children;
    for (auto it = ch.rbegin(); it != ch.rend(); ++it) stack.push_back(*it);
  }
  std::vector<int> new_index(b.nodes.size());
  for (size_t k = 0; k < order.size(); ++k)
    new_index[order[k]] = static_cast<int>(k);
  std::vector<RpNode> out;
  out.reserve(order.size());
  for (int i : order) {
    RpNode n = std::move(b.nodes[i]);
    if (n.parent >= 0) n.parent = new_index[n.parent];
    if (n.same_as >= 0) n.same_as = new_index[n.same_as];
    for (int& c : n.children) c = new_index[c];
    out.push_back(std::move(n));
  }
  return out;
}

std::string FormatReferencePattern(const std::vector<RpNode>& pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const RpNode& n = pattern[i];
    absl::StrAppend(&out, i, ": ", n.nodes.size(), " ",
                    std::string(2 * n.depth, ' '), n.kind);
    if (n.same_as >= 0) absl::StrAppend(&out, " [^ ", n.same_as, "]");
    if (n.stopped) absl::StrAppend(&out, " [stop]");
    absl::StrAppend(&out, "\n");
    if (n.dropped > 0) {
      absl::StrAppend(&out, std::string(2 * n.depth + 2, ' '), "... ",
                      n.dropped, " more\n");
    }
  }
  return out;
}

}  // namespace annex::heap

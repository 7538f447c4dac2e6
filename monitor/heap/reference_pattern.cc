// Reference pattern: rows of referrer kinds, numbered as they are made.
#include "monitor/heap/reference_pattern.h"

#include <algorithm>
#include <deque>
#include <map>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

namespace annex::heap {
namespace {

// A row still to be made: its set, where it hangs and its name's path.
struct Pending {
  std::string kind;
  NodeSet nodes;
  int parent = -1;
  std::vector<int> path;
};

uint64_t TotalSize(const HeapGraph& graph, const NodeSet& nodes) {
  uint64_t total = 0;
  for (uint32_t v : nodes) total += graph.sizes[v];
  return total;
}

// `a` less the members of `b` (both sorted).
NodeSet Without(const NodeSet& a, const NodeSet& b) {
  NodeSet out;
  out.reserve(a.size());
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(),
                      std::back_inserter(out));
  return out;
}

}  // namespace

std::string RpLabel(const std::vector<int>& path) {
  if (path.empty()) return "_";
  std::string out;
  for (size_t i = 0; i < path.size();) {
    size_t j = i + 1;
    while (j < path.size() && path[j] == path[i]) ++j;
    const char letter = static_cast<char>('a' + path[i]);
    if (j - i > 2) {
      absl::StrAppend(&out, std::string(1, letter), j - i);
    } else {
      out.append(j - i, letter);
    }
    i = j;
  }
  return out;
}

absl::StatusOr<RpResult> ReferencePattern(const HeapGraph& graph,
                                          const ReverseIndex& reverse,
                                          const NodeSet& set,
                                          const RpOptions& options) {
  if (options.depth < 0) {
    return absl::InvalidArgumentError("depth must be >= 0");
  }
  if (options.max_children < 1 || options.max_children > 26) {
    return absl::InvalidArgumentError(
        "max_children must be between 1 and 26 (one letter per kind)");
  }
  if (!options.classify) {
    return absl::InvalidArgumentError("a reference pattern needs a classifier");
  }
  auto relate = [&](const NodeSet& nodes) {
    return options.relate ? options.relate(nodes)
                          : Referrers(graph, reverse, nodes);
  };
  RpResult result;
  // Rows made so far by the hash of their set: an equal set later is a
  // repeat ([^ n]) and is not followed again.
  absl::flat_hash_map<size_t, std::vector<int>> by_hash;
  std::deque<Pending> work;
  {
    Pending root;
    root.nodes = set;
    absl::StatusOr<std::vector<std::string>> kinds = options.classify(set);
    if (!kinds.ok()) return kinds.status();
    for (const std::string& k : *kinds) {
      if (root.kind.empty()) {
        root.kind = k;
      } else if (root.kind != k) {
        root.kind = "<mixed>";
        break;
      }
    }
    if (root.kind.empty()) root.kind = "<Nothing>";
    work.push_back(std::move(root));
  }
  while (!work.empty()) {
    if (result.rows.size() >= options.max_rows) {
      result.truncated = true;
      break;
    }
    if (options.question_stop != nullptr && options.question_stop->Check()) {
      return options.question_stop->status();
    }
    Pending p;
    if (options.breadth_first) {
      p = std::move(work.front());
      work.pop_front();
    } else {
      p = std::move(work.back());
      work.pop_back();
    }
    const int index = static_cast<int>(result.rows.size());
    RpRow row;
    row.kind = std::move(p.kind);
    row.nodes = std::move(p.nodes);
    row.size = TotalSize(graph, row.nodes);
    row.parent = p.parent;
    row.depth = static_cast<int>(p.path.size());
    row.label = RpLabel(p.path);
    const size_t hash = absl::HashOf(row.nodes);
    std::vector<int>& same_hash = by_hash[hash];
    for (int earlier : same_hash) {
      if (result.rows[earlier].nodes == row.nodes) {
        row.seen = earlier;
        break;
      }
    }
    if (row.seen >= 0) {
      row.mark = RpMark::kSeen;
      result.rows.push_back(std::move(row));
      continue;
    }
    same_hash.push_back(index);
    NodeSet next = relate(row.nodes);
    if (options.nocyc) {
      next = Without(next, row.nodes);
      for (int a = row.parent; a >= 0 && !next.empty();
           a = result.rows[a].parent) {
        next = Without(next, result.rows[a].nodes);
      }
    }
    if (next.empty()) {
      row.mark = RpMark::kRoot;
    } else if (row.depth > 0 && options.stop && options.stop(row.nodes)) {
      row.mark = RpMark::kStop;
    } else if (row.depth >= options.depth) {
      row.mark = RpMark::kDeeper;
    } else {
      row.mark = RpMark::kExpanded;
      absl::StatusOr<std::vector<std::string>> kinds = options.classify(next);
      if (!kinds.ok()) return kinds.status();
      std::map<std::string, NodeSet> groups;
      for (size_t i = 0; i < next.size(); ++i) {
        groups[(*kinds)[i]].push_back(next[i]);
      }
      struct Group {
        uint64_t size;
        std::string kind;
        NodeSet nodes;
      };
      std::vector<Group> sorted;
      sorted.reserve(groups.size());
      for (auto& [kind, nodes] : groups) {
        sorted.push_back({TotalSize(graph, nodes), kind, std::move(nodes)});
      }
      // Largest total size first, as partition tables order their rows.
      std::sort(sorted.begin(), sorted.end(),
                [](const Group& a, const Group& b) {
                  return std::make_tuple(b.size, b.nodes.size(), a.kind) <
                         std::make_tuple(a.size, a.nodes.size(), b.kind);
                });
      if (sorted.size() > options.max_children) {
        row.dropped = sorted.size() - options.max_children;
        sorted.resize(options.max_children);
      }
      std::vector<Pending> children;
      for (size_t c = 0; c < sorted.size(); ++c) {
        Pending child;
        child.kind = std::move(sorted[c].kind);
        child.nodes = std::move(sorted[c].nodes);
        child.parent = index;
        child.path = p.path;
        child.path.push_back(static_cast<int>(c));
        children.push_back(std::move(child));
      }
      if (options.breadth_first) {
        for (Pending& c : children) work.push_back(std::move(c));
      } else {
        for (auto it = children.rbegin(); it != children.rend(); ++it) {
          work.push_back(std::move(*it));
        }
      }
    }
    result.rows.push_back(std::move(row));
  }
  return result;
}

}  // namespace annex::heap

// The dominator tree's top retainers. See retainers.h.
#include "glue/retainers.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "glue/json.h"

namespace annex::glue {
namespace {

class Builder {
 public:
  Builder(const heap::HeapGraph& graph, const heap::DominatorTree& tree,
          const std::vector<uint32_t>& kinds,
          const std::vector<std::string>& kind_names, RetainerOptions options)
      : graph_(graph),
        tree_(tree),
        kinds_(kinds),
        kind_names_(kind_names),
        options_(options) {
    const uint32_t n = graph.size();
    // Children in the dominator tree, as CSR; slot n is the super-root.
    begin_.assign(static_cast<size_t>(n) + 2, 0);
    for (uint32_t v = 0; v < n; ++v) {
      const uint32_t p = Parent(v);
      if (p != kNone) ++begin_[p + 1];
    }
    for (size_t i = 1; i < begin_.size(); ++i) begin_[i] += begin_[i - 1];
    children_.resize(begin_.back());
    std::vector<uint32_t> at(begin_.begin(), begin_.end() - 1);
    for (uint32_t v = 0; v < n; ++v) {
      const uint32_t p = Parent(v);
      if (p != kNone) children_[at[p]++] = v;
    }
    root_of_.assign(n, -1);
    for (size_t r = 0; r < graph.root_nodes.size(); ++r) {
      const uint32_t v = graph.root_nodes[r];
      if (v < n && root_of_[v] < 0) root_of_[v] = static_cast<int32_t>(r);
    }
  }

  std::string Json() {
    uint64_t total = 0;  // every reachable byte: the super-root's children
    const uint32_t n = graph_.size();
    for (uint32_t i = begin_[n]; i < begin_[n + 1]; ++i) {
      total += tree_.RetainedSize(children_[i]);
    }
    min_retained_ =
        static_cast<uint64_t>(static_cast<double>(total) * options_.min_part);
    std::string out;
    Level({n}, 0, &out);
    return out;
  }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;

  uint32_t Parent(uint32_t v) const {
    const uint32_t d = tree_.idom(v);
    if (d == heap::DominatorTree::kUnreachable) return kNone;
    return d == heap::DominatorTree::kSuperRoot ? graph_.size() : d;
  }

  std::string Name(int64_t key) const {
    if (key < 0) {
      const size_t r = static_cast<size_t>(-key - 1);
      const uint32_t v = graph_.root_nodes[r];
      const uint32_t k = v < kinds_.size() ? kinds_[v] : UINT32_MAX;
      return absl::StrCat(graph_.root_names[r], " (",
                          k < kind_names_.size() ? kind_names_[k] : "?", ")");
    }
    return static_cast<size_t>(key) < kind_names_.size()
               ? kind_names_[static_cast<size_t>(key)]
               : "?";
  }

  struct Entry {
    int64_t key = 0;  // a kind, or -(root index + 1)
    int64_t count = 0;
    uint64_t retained = 0;
    std::vector<uint32_t> nodes;
  };

  // The children of `parents`, merged by kind, as a JSON array.
  void Level(const std::vector<uint32_t>& parents, size_t depth,
             std::string* out) {
    std::vector<Entry> entries;
    std::unordered_map<int64_t, size_t> entry_of;
    for (uint32_t p : parents) {
      for (uint32_t i = begin_[p]; i < begin_[p + 1]; ++i) {
        const uint32_t v = children_[i];
        const int64_t key =
            root_of_[v] >= 0    ? -(static_cast<int64_t>(root_of_[v]) + 1)
            : v < kinds_.size() ? static_cast<int64_t>(kinds_[v])
                                : static_cast<int64_t>(kind_names_.size());
        auto [it, added] = entry_of.emplace(key, entries.size());
        if (added) entries.push_back({key, 0, 0, {}});
        Entry& e = entries[it->second];
        ++e.count;
        e.retained += tree_.RetainedSize(v);
        e.nodes.push_back(v);
      }
    }
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) {
                return a.retained != b.retained ? a.retained > b.retained
                                                : a.key < b.key;
              });
    out->push_back('[');
    size_t kept = std::min(entries.size(), options_.max_children);
    while (kept > 0 && entries[kept - 1].retained < min_retained_) --kept;
    for (size_t i = 0; i < kept; ++i) {
      Entry& e = entries[i];
      if (i > 0) out->push_back(',');
      out->append("{\"kind\":");
      AppendJsonString(out, Name(e.key));
      absl::StrAppend(out, ",\"count\":", e.count, ",\"retained\":", e.retained,
                      ",\"children\":");
      if (depth + 1 < options_.max_depth) {
        Level(e.nodes, depth + 1, out);
      } else {
        out->append("[]");
      }
      out->push_back('}');
    }
    if (entries.size() > kept) {
      int64_t count = 0;
      uint64_t retained = 0;
      for (size_t i = kept; i < entries.size(); ++i) {
        count += entries[i].count;
        retained += entries[i].retained;
      }
      absl::StrAppend(out, kept > 0 ? "," : "",
                      "{\"kind\":\"<Other>\",\"count\":", count,
                      ",\"retained\":", retained, ",\"children\":[]}");
    }
    out->push_back(']');
  }

  const heap::HeapGraph& graph_;
  const heap::DominatorTree& tree_;
  const std::vector<uint32_t>& kinds_;
  const std::vector<std::string>& kind_names_;
  RetainerOptions options_;
  uint64_t min_retained_ = 0;
  std::vector<uint32_t> begin_;
  std::vector<uint32_t> children_;
  std::vector<int32_t> root_of_;
};

}  // namespace

std::string RetainersJson(const heap::HeapGraph& graph,
                          const heap::DominatorTree& tree,
                          const std::vector<uint32_t>& kinds,
                          const std::vector<std::string>& kind_names,
                          RetainerOptions options) {
  if (graph.size() == 0) return "[]";
  return Builder(graph, tree, kinds, kind_names, options).Json();
}

}  // namespace annex::glue

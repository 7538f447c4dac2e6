// Lengauer-Tarjan dominators, iterative, in DFS-number space.
#include "monitor/heap/dominators.h"

#include <algorithm>

namespace annex::heap {
namespace {

constexpr uint32_t kNone = UINT32_MAX;

// Working state of one Lengauer-Tarjan run. Vertices are DFS preorder
// numbers; 0 is the virtual super-root.
class LengauerTarjan {
 public:
  explicit LengauerTarjan(const HeapGraph& graph) : graph_(graph) {}

  void Run() {
    Dfs();
    BuildPredecessors();
    ComputeIdoms();
  }

  uint32_t count() const { return k_; }
  std::vector<uint32_t>& vertex() { return vertex_; }
  std::vector<uint32_t>& idom() { return idom_; }
  std::vector<uint32_t>& dfn() { return dfn_; }

 private:
  void Dfs() {
    const uint32_t n = graph_.size();
    dfn_.assign(n, kNone);
    vertex_.reserve(static_cast<size_t>(n) + 1);
    parent_.reserve(static_cast<size_t>(n) + 1);
    vertex_.push_back(kNone);  // the super-root
    parent_.push_back(kNone);
    std::vector<std::pair<uint32_t, uint32_t>> stack;  // (node, edge cursor)
    // Every edge of a reached node is scanned exactly once here, with both
    // ends numbered: record it (in DFS numbers) for the predecessor lists.
    dfs_edges_.reserve(graph_.out_targets.size() + graph_.root_nodes.size());
    pred_count_.assign(static_cast<size_t>(n) + 2, 0);
    for (uint32_t r : graph_.root_nodes) {
      const bool fresh = dfn_[r] == kNone;
      if (fresh) Number(r, 0);
      dfs_edges_.emplace_back(dfn_[r], 0);
      ++pred_count_[dfn_[r] + 1];
      if (!fresh) continue;
      stack.emplace_back(r, graph_.out_begin[r]);
      while (!stack.empty()) {
        auto& [v, cursor] = stack.back();
        if (cursor == graph_.out_begin[v + 1]) {
          stack.pop_back();
          continue;
        }
        // The next edge's DFS number is a random read: start it now.
        if (cursor + 1 < graph_.out_begin[v + 1]) {
          __builtin_prefetch(&dfn_[graph_.out_targets[cursor + 1]]);
        }
        const uint32_t w = graph_.out_targets[cursor++];
        const uint32_t from = dfn_[v];
        if (dfn_[w] == kNone) {
          Number(w, from);
          const uint32_t first = graph_.out_begin[w];
          if (first < graph_.out_begin[w + 1]) {
            __builtin_prefetch(&dfn_[graph_.out_targets[first]]);
          }
          stack.emplace_back(w, first);
        }
        dfs_edges_.emplace_back(dfn_[w], from);
        ++pred_count_[dfn_[w] + 1];
      }
    }
    k_ = static_cast<uint32_t>(vertex_.size());
  }

  void Number(uint32_t v, uint32_t parent) {
    dfn_[v] = static_cast<uint32_t>(vertex_.size());
    vertex_.push_back(v);
    parent_.push_back(parent);
  }

  // Predecessors in DFS-number space, CSR, from the edges the DFS recorded
  // (the super-root precedes every root node).
  void BuildPredecessors() {
    pred_count_.resize(static_cast<size_t>(k_) + 1);
    pred_begin_.swap(pred_count_);
    for (uint32_t i = 0; i < k_; ++i) pred_begin_[i + 1] += pred_begin_[i];
    preds_.resize(pred_begin_[k_]);
    std::vector<uint32_t> cursor(pred_begin_.begin(), pred_begin_.end() - 1);
    for (const auto& [to, from] : dfs_edges_) preds_[cursor[to]++] = from;
    dfs_edges_.clear();
    dfs_edges_.shrink_to_fit();
  }

  // Per DFS number, what EVAL and LINK touch, side by side so that one
  // step up an ancestor chain costs one cache line instead of three or
  // four: the forest ancestor, the label (the vertex of least semi on the
  // compressed path) and that label's semi, cached so comparisons need no
  // second indirection. `semi` is the vertex's own semidominator.
  struct Slot {
    uint32_t ancestor;
    uint32_t label;
    uint32_t label_semi;
    uint32_t semi;
  };

  // EVAL with path compression, iteratively: compress the ancestor chain of
  // v from its top down; returns the label's semi (the label itself in
  // *label when asked for).
  uint32_t Eval(uint32_t v, uint32_t* label = nullptr) {
    Slot* s = slots_.data();
    if (s[v].ancestor == kNone) {
      if (label != nullptr) *label = v;
      return s[v].semi;
    }
    uint32_t x = v;
    while (s[s[x].ancestor].ancestor != kNone) {
      chain_.push_back(x);
      x = s[x].ancestor;
    }
    while (!chain_.empty()) {
      const uint32_t y = chain_.back();
      chain_.pop_back();
      const uint32_t a = s[y].ancestor;
      if (s[a].label_semi < s[y].label_semi) {
        s[y].label = s[a].label;
        s[y].label_semi = s[a].label_semi;
      }
      s[y].ancestor = s[a].ancestor;
    }
    if (label != nullptr) *label = s[v].label;
    return s[v].label_semi;
  }

  void ComputeIdoms() {
    slots_.resize(k_);
    for (uint32_t i = 0; i < k_; ++i) slots_[i] = Slot{kNone, i, i, i};
    idom_.assign(k_, 0);
    std::vector<uint32_t> bucket_head(k_, kNone);
    std::vector<uint32_t> bucket_next(k_, kNone);
    for (uint32_t w = k_; w-- > 1;) {
      uint32_t semi = slots_[w].semi;
      for (uint32_t p = pred_begin_[w]; p < pred_begin_[w + 1]; ++p) {
        semi = std::min(semi, Eval(preds_[p]));
      }
      slots_[w].semi = semi;
      slots_[w].label_semi = semi;  // label(w) is w until compressed
      bucket_next[w] = bucket_head[semi];
      bucket_head[semi] = w;
      const uint32_t p = parent_[w];
      slots_[w].ancestor = p;  // LINK(parent, w)
      for (uint32_t v = bucket_head[p]; v != kNone; v = bucket_next[v]) {
        uint32_t u;
        const uint32_t u_semi = Eval(v, &u);
        idom_[v] = u_semi < slots_[v].semi ? u : p;
      }
      bucket_head[p] = kNone;
    }
    for (uint32_t w = 1; w < k_; ++w) {
      if (idom_[w] != slots_[w].semi) idom_[w] = idom_[idom_[w]];
    }
  }

  const HeapGraph& graph_;
  uint32_t k_ = 0;
  std::vector<uint32_t> dfn_;
  std::vector<uint32_t> vertex_;
  std::vector<uint32_t> parent_;
  std::vector<std::pair<uint32_t, uint32_t>> dfs_edges_;  // (to, from)
  std::vector<uint32_t> pred_count_;
  std::vector<uint32_t> pred_begin_;
  std::vector<uint32_t> preds_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> idom_;
  std::vector<uint32_t> chain_;
};

}  // namespace

DominatorTree DominatorTree::Build(const HeapGraph& graph) {
  LengauerTarjan lt(graph);
  lt.Run();
  const uint32_t k = lt.count();
  DominatorTree tree;
  tree.reachable_ = k - 1;
  // Everything stays in DFS-number space: only dfn_ is indexed by node id,
  // so building the result needs no random writes over per-node arrays.
  tree.dfn_ = std::move(lt.dfn());
  tree.vertex_ = std::move(lt.vertex());
  tree.idom_ = std::move(lt.idom());
  const std::vector<uint32_t>& idom = tree.idom_;
  // Subtree counts and retained sizes: an immediate dominator always has a
  // smaller DFS number, so one pass in decreasing order accumulates them.
  tree.count_.assign(k, 1);
  tree.retained_.assign(k, 0);
  for (uint32_t i = 1; i < k; ++i) {
    tree.retained_[i] = graph.sizes[tree.vertex_[i]];
  }
  for (uint32_t i = k; i-- > 1;) {
    tree.count_[idom[i]] += tree.count_[i];
    tree.retained_[idom[i]] += tree.retained_[i];
  }
  // Preorder numbers of the dominator tree, parents first (increasing DFS
  // number visits every idom before its children), each child taking the
  // next free slot of its parent's range. The super-root takes slot 0.
  tree.pre_.assign(k, 0);
  std::vector<uint32_t> next_free(k, 0);
  next_free[0] = 1;
  for (uint32_t i = 1; i < k; ++i) {
    tree.pre_[i] = next_free[idom[i]];
    next_free[idom[i]] += tree.count_[i];
    next_free[i] = tree.pre_[i] + 1;
  }
  tree.node_at_pre_.assign(k, kNone);
  for (uint32_t i = 1; i < k; ++i)
    tree.node_at_pre_[tree.pre_[i]] = tree.vertex_[i];
  return tree;
}

uint32_t DominatorTree::idom(uint32_t v) const {
  const uint32_t i = dfn_[v];
  if (i == kNone) return kUnreachable;
  return idom_[i] == 0 ? kSuperRoot : vertex_[idom_[i]];
}

uint64_t DominatorTree::RetainedSize(uint32_t v) const {
  const uint32_t i = dfn_[v];
  return i == kNone ? 0 : retained_[i];
}

uint32_t DominatorTree::tree_order(uint32_t v) const {
  const uint32_t i = dfn_[v];
  return i == kNone ? kNone : pre_[i];
}

bool DominatorTree::Dominates(uint32_t a, uint32_t b) const {
  const uint32_t i = dfn_[a], j = dfn_[b];
  if (i == kNone || j == kNone) return false;
  return pre_[i] <= pre_[j] && pre_[j] < pre_[i] + count_[i];
}

NodeSet DominatorTree::DominatedBy(uint32_t v) const {
  const uint32_t i = dfn_[v];
  if (i == kNone) return {};
  NodeSet out(node_at_pre_.begin() + pre_[i],
              node_at_pre_.begin() + pre_[i] + count_[i]);
  std::sort(out.begin(), out.end());
  return out;
}

NodeSet UnreachableWithout(const HeapGraph& graph, const NodeSet& removed) {
  const uint32_t n = graph.size();
  // 0 = unseen, 1 = reachable with `removed` in place, 2 = also without.
  std::vector<uint8_t> state(n, 0);
  std::vector<uint32_t> queue;
  auto bfs = [&](uint8_t mark) {
    queue.clear();
    for (uint32_t r : graph.root_nodes) {
      if (state[r] < mark) {
        state[r] = mark;
        queue.push_back(r);
      }
    }
    for (size_t head = 0; head < queue.size(); ++head) {
      // Queue order is random in memory: fetch a few nodes ahead.
      if (head + 16 < queue.size()) {
        __builtin_prefetch(&graph.out_begin[queue[head + 16]]);
      }
      if (head + 8 < queue.size()) {
        __builtin_prefetch(
            &graph.out_targets[graph.out_begin[queue[head + 8]]]);
      }
      const uint32_t v = queue[head];
      for (uint32_t e = graph.out_begin[v]; e < graph.out_begin[v + 1]; ++e) {
        const uint32_t w = graph.out_targets[e];
        if (state[w] < mark) {
          state[w] = mark;
          queue.push_back(w);
        }
      }
    }
  };
  bfs(1);
  // Removed nodes are marked as if already seen by the second pass.
  for (uint32_t x : removed) state[x] = 3;
  bfs(2);
  NodeSet out;
  for (uint32_t v = 0; v < n; ++v) {
    if (state[v] == 1) out.push_back(v);
  }
  return out;
}

absl::StatusOr<NodeSet> Dominated(const HeapGraph& graph,
                                  const DominatorTree& tree, const NodeSet& x) {
  for (uint32_t v : x) {
    if (v >= graph.size())
      return absl::InvalidArgumentError("node out of range");
  }
  // The members no other member dominates. In dominator-tree preorder each
  // subtree is contiguous and follows its top, so one sweep finds them; a
  // second top means the general case.
  std::vector<uint32_t> reachable;
  for (uint32_t v : x) {
    if (tree.idom(v) != DominatorTree::kUnreachable) reachable.push_back(v);
  }
  std::sort(reachable.begin(), reachable.end(), [&](uint32_t a, uint32_t b) {
    return tree.tree_order(a) < tree.tree_order(b);
  });
  std::vector<uint32_t> tops;
  for (uint32_t v : reachable) {
    if (tops.empty() || !tree.Dominates(tops.back(), v)) tops.push_back(v);
    if (tops.size() > 1) break;
  }
  NodeSet out;
  if (tops.size() <= 1) {
    if (!tops.empty()) out = tree.DominatedBy(tops[0]);
  } else {
    out = UnreachableWithout(graph, x);
  }
  // Members of x always belong to their own dominated set.
  NodeSet merged;
  merged.reserve(out.size() + x.size());
  std::set_union(out.begin(), out.end(), x.begin(), x.end(),
                 std::back_inserter(merged));
  return merged;
}

absl::StatusOr<uint64_t> RetainedSize(const HeapGraph& graph,
                                      const DominatorTree& tree,
                                      const NodeSet& x) {
  absl::StatusOr<NodeSet> set = Dominated(graph, tree, x);
  if (!set.ok()) return set.status();
  uint64_t total = 0;
  for (uint32_t v : *set) total += graph.sizes[v];
  return total;
}

}  // namespace annex::heap

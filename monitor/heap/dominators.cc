// Lengauer-Tarjan dominators, iterative, in DFS-number space.
#include "monitor/heap/dominators.h"

#include <algorithm>
#include <new>
#include <utility>

namespace annex::heap {
namespace {

constexpr uint32_t kNone = UINT32_MAX;

// Working state of one Lengauer-Tarjan run. Vertices are DFS preorder
// numbers; 0 is the virtual super-root.
class LengauerTarjan {
 public:
  LengauerTarjan(const HeapGraph& graph, QuestionStop* stop)
      : graph_(graph), stop_(stop), pool_(graph.pool.get()) {}
  // Gives what the result did not take back to the graph's pool.
  ~LengauerTarjan() {
    GiveTo(pool_, dfn_);
    GiveTo(pool_, vertex_);
    GiveTo(pool_, parent_);
    GiveTo(pool_, low_);
    GiveTo(pool_, dfs_edges_);
    GiveTo(pool_, pred_begin_);
    GiveTo(pool_, preds_);
    GiveTo(pool_, idom_);
  }
  LengauerTarjan(const LengauerTarjan&) = delete;
  LengauerTarjan& operator=(const LengauerTarjan&) = delete;

  // False when `stop` said stop (the state is then unfinished).
  bool Run() {
    Dfs();
    if (Stopped()) return false;
    BuildPredecessors();
    ComputeIdoms();
    return !Stopped();
  }

  uint32_t count() const { return k_; }
  bool Stopped() const { return stop_ != nullptr && stop_->stopped(); }
  std::vector<uint32_t>& vertex() { return vertex_; }
  std::vector<uint32_t>& idom() { return idom_; }
  std::vector<uint32_t>& dfn() { return dfn_; }

 private:
  // Lengauer and Tarjan's semidominator of w is the least of: its
  // predecessors v numbered below w, and EVAL(v) of those numbered above.
  // A predecessor below w is still unlinked when w is processed (vertices
  // are processed in decreasing order), so EVAL(v) = v there and the DFS
  // can fold it in at once: the tree edge gives the parent, a forward edge
  // (to a descendant already numbered) its source. Only the edges that
  // point back to a smaller number (back and cross edges) are kept for the
  // EVAL phase. On heaps about half of all edges are tree edges, so this
  // halves the edges recorded, sorted and evaluated.
  void Dfs() {
    const uint32_t n = graph_.size();
    dfn_ = FilledFrom(pool_, n, kNone);
    vertex_ = TakeFrom<uint32_t>(pool_, static_cast<size_t>(n) + 1);
    parent_ = TakeFrom<uint32_t>(pool_, static_cast<size_t>(n) + 1);
    low_ = TakeFrom<uint32_t>(pool_, static_cast<size_t>(n) + 1);
    vertex_.push_back(kNone);  // the super-root
    parent_.push_back(kNone);
    low_.push_back(0);
    // (node, DFS number of the node whose edge reached it). A node's edges
    // are scanned all at once when it is numbered, so the DFS numbers of
    // its targets are read together (independent loads the CPU overlaps)
    // rather than one per descent; targets numbered by then are non-tree
    // edges at once, the others are pushed, last edge first, and popped in
    // edge order: exactly a recursive DFS. A pushed node found numbered
    // when popped was reached meanwhile from below its pusher: a forward
    // edge. The stack holds at most one entry per edge.
    std::vector<std::pair<uint32_t, uint32_t>> stack;
    // Untouched pages cost nothing: reserve for the worst case.
    dfs_edges_ = TakeFrom<std::pair<uint32_t, uint32_t>>(
        pool_, graph_.out_targets.size() + graph_.root_nodes.size());
    // An edge from `from` to the numbered `to` that is not a tree edge.
    auto non_tree_edge = [&](uint32_t to, uint32_t from) {
      if (from < to) {  // forward edge: `to` descends from `from`
        if (from < low_[to]) low_[to] = from;
      } else {  // back or cross edge
        dfs_edges_.emplace_back(to, from);
      }
    };
    for (uint32_t r : graph_.root_nodes) {
      stack.emplace_back(r, 0);  // from the super-root
      while (!stack.empty()) {
        if (stop_ != nullptr && stop_->Poll()) return;
        const auto [v, from] = stack.back();
        stack.pop_back();
        if (dfn_[v] != kNone) {
          non_tree_edge(dfn_[v], from);
          continue;
        }
        // Most heap objects are leaves: the next node is likely the one
        // below on the stack. Its out_begin was prefetched when it was
        // pushed; start fetching its edges too.
        if (!stack.empty()) {
          __builtin_prefetch(
              &graph_.out_targets[graph_.out_begin[stack.back().first]]);
        }
        Number(v, from);
        const uint32_t me = dfn_[v];
        const uint32_t begin = graph_.out_begin[v];
        const uint32_t end = graph_.out_begin[v + 1];
        // Ask for all the targets' DFS numbers first: the loop below
        // branches on each, and a mispredicted branch would cancel the
        // loads issued after it.
        for (uint32_t e = begin; e < end; ++e) {
          __builtin_prefetch(&dfn_[graph_.out_targets[e]]);
        }
        for (uint32_t e = end; e-- > begin;) {
          const uint32_t w = graph_.out_targets[e];
          const uint32_t to = dfn_[w];
          if (to != kNone) {
            non_tree_edge(to, me);
          } else {
            // Popped soon (most heap objects have few referents): start
            // fetching where its edges are.
            __builtin_prefetch(&graph_.out_begin[w]);
            stack.emplace_back(w, me);
          }
        }
      }
    }
    k_ = static_cast<uint32_t>(vertex_.size());
  }

  void Number(uint32_t v, uint32_t parent) {
    dfn_[v] = static_cast<uint32_t>(vertex_.size());
    vertex_.push_back(v);
    parent_.push_back(parent);
    low_.push_back(parent);
  }

  // Back and cross predecessors in DFS-number space, CSR, from the edges
  // the DFS recorded.
  void BuildPredecessors() {
    // Counted here rather than in the DFS: a tight loop of independent
    // increments the CPU overlaps.
    pred_begin_ = FilledFrom(pool_, static_cast<size_t>(k_) + 1, uint32_t{0});
    for (const auto& [to, from] : dfs_edges_) ++pred_begin_[to + 1];
    for (uint32_t i = 0; i < k_; ++i) pred_begin_[i + 1] += pred_begin_[i];
    preds_ = FilledFrom(pool_, pred_begin_[k_], uint32_t{0});
    std::vector<uint32_t> cursor = TakeFrom<uint32_t>(pool_, k_);
    cursor.assign(pred_begin_.begin(), pred_begin_.end() - 1);
    for (const auto& [to, from] : dfs_edges_) preds_[cursor[to]++] = from;
    GiveTo(pool_, cursor);
    GiveTo(pool_, dfs_edges_);
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
    idom_ = FilledFrom(pool_, k_, uint32_t{0});
    std::vector<uint32_t> bucket_head = FilledFrom(pool_, k_, kNone);
    std::vector<uint32_t> bucket_next = FilledFrom(pool_, k_, kNone);
    ComputeIdoms(bucket_head, bucket_next);
    GiveTo(pool_, bucket_head);
    GiveTo(pool_, bucket_next);
  }

  void ComputeIdoms(std::vector<uint32_t>& bucket_head,
                    std::vector<uint32_t>& bucket_next) {
    // Vertices go by in decreasing order, so what a later one will read is
    // known ahead, in two stages: 16 vertices ahead, its predecessors'
    // slots and its parent's bucket; 8 ahead, the slots of those
    // predecessors' forest ancestors (where EVAL goes next). Without this
    // the EVALs wait for memory one slot at a time.
    constexpr uint32_t kAhead = 8;
    for (uint32_t w = k_; w-- > 1;) {
      if (stop_ != nullptr && stop_->Poll()) return;
      if (w > 2 * kAhead) {
        const uint32_t later = w - 2 * kAhead;
        for (uint32_t p = pred_begin_[later]; p < pred_begin_[later + 1]; ++p) {
          __builtin_prefetch(&slots_[preds_[p]]);
        }
        __builtin_prefetch(&bucket_head[parent_[later]]);
      }
      if (w > kAhead) {
        const uint32_t later = w - kAhead;
        for (uint32_t p = pred_begin_[later]; p < pred_begin_[later + 1]; ++p) {
          const uint32_t a = slots_[preds_[p]].ancestor;
          if (a != kNone) __builtin_prefetch(&slots_[a]);
        }
      }
      uint32_t semi = low_[w];  // parent and forward-edge sources
      for (uint32_t p = pred_begin_[w]; p < pred_begin_[w + 1]; ++p) {
        semi = std::min(semi, Eval(preds_[p]));
      }
      slots_[w].semi = semi;
      slots_[w].label_semi = semi;  // label(w) is w until compressed
      const uint32_t p = parent_[w];
      if (semi == p) {
        // The path from semi(w) to w is the tree edge alone: idom(w) is
        // its parent (LT's first case, without the bucket and EVAL).
        idom_[w] = p;
      } else {
        bucket_next[w] = bucket_head[semi];
        bucket_head[semi] = w;
      }
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
  QuestionStop* const stop_;
  BufferPool* const pool_;  // the graph's (may be null)
  uint32_t k_ = 0;
  std::vector<uint32_t> dfn_;
  std::vector<uint32_t> vertex_;
  std::vector<uint32_t> parent_;
  // Least predecessor numbered below each vertex (its semidominator
  // candidates that need no EVAL).
  std::vector<uint32_t> low_;
  std::vector<std::pair<uint32_t, uint32_t>> dfs_edges_;  // (to, from)
  std::vector<uint32_t> pred_begin_;
  std::vector<uint32_t> preds_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> idom_;
  std::vector<uint32_t> chain_;
};

}  // namespace

DominatorTree DominatorTree::Build(const HeapGraph& graph, QuestionStop* stop) {
  LengauerTarjan lt(graph, stop);
  DominatorTree tree;
  tree.pool_ = graph.pool;
  BufferPool* pool = graph.pool.get();
  if (!lt.Run()) return tree;  // stopped: the caller reads stop->status()
  const uint32_t k = lt.count();
  tree.reachable_ = k - 1;
  // Everything stays in DFS-number space: only dfn_ is indexed by node id,
  // so building the result needs no random writes over per-node arrays.
  tree.dfn_ = std::move(lt.dfn());
  tree.vertex_ = std::move(lt.vertex());
  tree.idom_ = std::move(lt.idom());
  const std::vector<uint32_t>& idom = tree.idom_;
  // Subtree counts and retained sizes: an immediate dominator always has a
  // smaller DFS number, so one pass in decreasing order accumulates them.
  tree.count_ = FilledFrom(pool, k, uint32_t{1});
  tree.retained_ = FilledFrom(pool, k, uint64_t{0});
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
  tree.pre_ = FilledFrom(pool, k, uint32_t{0});
  std::vector<uint32_t> next_free = FilledFrom(pool, k, uint32_t{0});
  next_free[0] = 1;
  for (uint32_t i = 1; i < k; ++i) {
    tree.pre_[i] = next_free[idom[i]];
    next_free[idom[i]] += tree.count_[i];
    next_free[i] = tree.pre_[i] + 1;
  }
  GiveTo(pool, next_free);
  tree.node_at_pre_ = FilledFrom(pool, k, kNone);
  for (uint32_t i = 1; i < k; ++i)
    tree.node_at_pre_[tree.pre_[i]] = tree.vertex_[i];
  return tree;
}

DominatorTree& DominatorTree::operator=(DominatorTree&& other) noexcept {
  if (this != &other) {
    this->~DominatorTree();
    new (this) DominatorTree(std::move(other));
  }
  return *this;
}

DominatorTree::~DominatorTree() {
  BufferPool* pool = pool_.get();
  GiveTo(pool, dfn_);
  GiveTo(pool, vertex_);
  GiveTo(pool, idom_);
  GiveTo(pool, retained_);
  GiveTo(pool, pre_);
  GiveTo(pool, count_);
  GiveTo(pool, node_at_pre_);
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
  BufferPool* pool = graph.pool.get();
  std::vector<uint8_t> state = FilledFrom(pool, n, uint8_t{0});
  std::vector<uint32_t> queue = TakeFrom<uint32_t>(pool, n);
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
  GiveTo(pool, state);
  GiveTo(pool, queue);
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

// Dominators of a HeapGraph and the retained ("dominated") sets and sizes
// they give: Heapy's `dominos` / `domisize`, pure C++.
//
// The graph is rooted at a virtual super-root with an edge to every named
// root node. Node a dominates node b when every path from the super-root to
// b passes through a; then removing a (its last reference) frees b.
//
//   DominatorTree dom = DominatorTree::Build(graph);
//   uint64_t kept_alive_by_leak = dom.RetainedSize(leak);
//   absl::StatusOr<NodeSet> freed = Dominated(graph, dom, {a, b});
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "monitor/heap/buffer_pool.h"
#include "monitor/heap/graph.h"
#include "monitor/heap/node_set.h"
#include "monitor/heap/question_stop.h"

namespace annex::heap {

class DominatorTree {
 public:
  // idom() of a node whose only dominator is the virtual super-root.
  static constexpr uint32_t kSuperRoot = UINT32_MAX - 1;
  // idom() of a node that no root reaches.
  static constexpr uint32_t kUnreachable = UINT32_MAX;

  DominatorTree() = default;
  // Gives the arrays back to the graph's pool (HeapGraph::pool) they came
  // from, when it had one.
  ~DominatorTree();
  DominatorTree(DominatorTree&&) = default;
  // Gives this tree's arrays back before taking `other`'s.
  DominatorTree& operator=(DominatorTree&& other) noexcept;

  // Lengauer-Tarjan with path compression ("simple" variant, O(m log n)),
  // iterative throughout: a DFS with an explicit stack, and EVAL compressing
  // with an explicit stack, so million-deep chains are fine. `graph` must be
  // valid (ValidateGraph). Memory: about 10 words per node plus up to 5 per
  // edge while building (2 for the DFS stack, 3 for the back and cross
  // edges it records); the result keeps 8 words per reachable node. The
  // arrays come from graph.pool when it is set.
  // Pure C++, any thread; the result is immutable and shareable. `stop`
  // (may be null) is polled: once it says stop, the result is an empty
  // tree that must not be used.
  static DominatorTree Build(const HeapGraph& graph,
                             QuestionStop* stop = nullptr);

  // Immediate dominator of `v`: a node id, kSuperRoot or kUnreachable.
  uint32_t idom(uint32_t v) const;
  // Whether `a` dominates `b` (reflexive: a dominates a). O(1). False when
  // either is unreachable.
  bool Dominates(uint32_t a, uint32_t b) const;
  // Nodes dominated by `v`, `v` included, sorted; empty when unreachable.
  NodeSet DominatedBy(uint32_t v) const;
  // Total size of DominatedBy(v): what freeing v would free. O(1).
  uint64_t RetainedSize(uint32_t v) const;
  // Position of v in a preorder of the dominator tree (each subtree is a
  // contiguous range starting at its top); UINT32_MAX when unreachable.
  uint32_t tree_order(uint32_t v) const;
  // Number of nodes some root reaches.
  uint32_t reachable() const { return reachable_; }

 private:
  // DFS number of each node (UINT32_MAX when unreachable); every other
  // array is indexed by DFS number, 0 being the virtual super-root.
  std::vector<uint32_t> dfn_;
  std::vector<uint32_t> vertex_;  // DFS number -> node id
  std::vector<uint32_t> idom_;    // in DFS numbers
  std::vector<uint64_t> retained_;
  // Dominator tree preorder: the subtree of DFS number i is
  // node_at_pre_[pre_[i] .. pre_[i] + count_[i]).
  std::vector<uint32_t> pre_;
  std::vector<uint32_t> count_;
  std::vector<uint32_t> node_at_pre_;
  uint32_t reachable_ = 0;
  std::shared_ptr<BufferPool> pool_;
};

// Heapy's dominos for a SET x: x itself plus every node reachable from the
// roots that becomes unreachable once all members of x are removed. Exact.
// When the members of x that no other member dominates come down to one
// node a, this is x plus the dominator subtree of a (O(answer)); otherwise
// (several independent members, which may jointly cut off nodes that none
// of them dominates alone) it is one BFS from the roots avoiding x, O(nodes
// + edges). Members of x that no root reaches count as themselves only.
// Pure C++, any thread.
absl::StatusOr<NodeSet> Dominated(const HeapGraph& graph,
                                  const DominatorTree& tree, const NodeSet& x);

// Sum of graph.sizes over Dominated(graph, tree, x): Heapy's domisize, the
// retained size of x. Pure C++, any thread.
absl::StatusOr<uint64_t> RetainedSize(const HeapGraph& graph,
                                      const DominatorTree& tree,
                                      const NodeSet& x);

// Nodes that become unreachable from the roots when `removed` is removed,
// by plain BFS (members of `removed` excluded). The definition, used as the
// naive reference in tests and as the general case above.
// Pure C++, any thread.
NodeSet UnreachableWithout(const HeapGraph& graph, const NodeSet& removed);

}  // namespace annex::heap

// Reference pattern (Heapy's `rp`): the tree of referrer kinds of a node
// set, to a depth. The root is the set; each child groups the referrers of
// its parent's set that a classifier puts in one kind. Pure C++: the
// classifier is a callback, so the Python side decides what a kind is.
//
//   std::vector<RpNode> rp = ReferencePattern(graph, rev, leaks, by_type, {});
//   std::cout << FormatReferencePattern(rp);
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "monitor/heap/graph.h"
#include "monitor/heap/node_set.h"
#include "monitor/heap/referrers.h"

namespace annex::heap {

struct RpOptions {
  // Levels of referrers below the root (the root is depth 0).
  int depth = 4;
  // Kinds shown per node, largest groups first; the rest are dropped and
  // counted in RpNode::dropped.
  size_t max_children = 10;
  // When set, the referrers of a group whose every node it returns true
  // for are not followed (Heapy's stopkind; hp stops at modules and types
  // by default). The group itself is shown, marked `stopped`.
  std::function<bool(uint32_t node)> stop;
};

struct RpNode {
  std::string kind;
  NodeSet nodes;
  int depth = 0;
  int parent = -1;
  std::vector<int> children;
  // Index of an earlier node with exactly this set; the pattern is not
  // expanded again below a repeat (cycles end here).
  int same_as = -1;
  // Referrer kinds left out by max_children.
  size_t dropped = 0;
  // Not expanded because RpOptions::stop holds for all of `nodes`.
  bool stopped = false;
};

// The nodes in preorder; [0] is the root, whose kind is the classifier's
// kind when all of `set` share it and "<mixed>" otherwise.
// Calls `classify` once per referrer examined. Pure C++, the calling thread
// (the classifier decides any further constraint).
std::vector<RpNode> ReferencePattern(
    const HeapGraph& graph, const ReverseIndex& reverse, const NodeSet& set,
    const std::function<std::string(uint32_t node)>& classify,
    const RpOptions& options = {});

// One line per node: "<index>: <count> <indent><kind>", a repeat as
// "[^ <index>]" after the kind, a stopped group as "[stop]", dropped kinds
// as "... <n> more".
// Pure C++, any thread.
std::string FormatReferencePattern(const std::vector<RpNode>& pattern);

}  // namespace annex::heap

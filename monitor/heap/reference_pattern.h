// Reference pattern (Heapy's `rp`): the tree of referrer kinds of a node
// set, to a depth. Row 0 is the set; each child of a row groups the
// referrers of the row's set (or, with RpOptions::relate, another relation
// such as immediate dominators) that a classifier puts in one kind. Rows
// are numbered depth first (breadth first on request) and named as Heapy
// names them: "_" the set, "a", "b", ... its groups, "aa", "ab", ... theirs
// (a letter repeated more than twice written once with the count: "a3b" is
// "aaab"). Pure C++: the classifier, the relation and the stop test are
// callbacks, so the caller decides what a kind is.
//
//   RpOptions options;
//   options.classify = [&](const NodeSet& s) { return KindsOf(s); };
//   absl::StatusOr<RpResult> rp = ReferencePattern(graph, rev, leaks, options);
//   rp->rows[1].label;   // "a"
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "monitor/heap/graph.h"
#include "monitor/heap/node_set.h"
#include "monitor/heap/question_stop.h"
#include "monitor/heap/referrers.h"

namespace annex::heap {

struct RpOptions {
  // Levels of rows below row 0 (Heapy's depth; its default is 7).
  int depth = 7;
  // Kinds made into rows per row, largest total size first; the rest are
  // counted in RpRow::dropped. At most 26 (one letter each).
  size_t max_children = 10;
  // At most this many rows; RpResult::truncated says more were due.
  size_t max_rows = 1000;
  // Rows numbered level by level instead of depth first (Heapy's bf).
  bool breadth_first = false;
  // A row's next level leaves out the sets of the row and its ancestors
  // (Heapy's nocyc): cycles back up the tree make no rows.
  bool nocyc = false;
  // The kind of each node of a set (parallel to it). Required.
  std::function<absl::StatusOr<std::vector<std::string>>(const NodeSet&)>
      classify;
  // The next level of a set; empty: its referrers (through `reverse`).
  std::function<NodeSet(const NodeSet&)> relate;
  // A row below row 0 whose set this returns true for is not followed
  // (Heapy's stopkind); empty: none stops.
  std::function<bool(const NodeSet&)> stop;
  // Polled between rows (pause limit, cancellation); may be null.
  QuestionStop* question_stop = nullptr;
};

// How a row ends, as Heapy marks it.
enum class RpMark : char {
  kExpanded = '-',  // its next level is the rows below it
  kDeeper = '+',    // it has a next level, past the depth
  kStop = 'S',      // not followed: RpOptions::stop
  kSeen = '^',      // an earlier row has this set (RpRow::seen)
  kRoot = 'R',      // it has no next level (nothing refers to it)
};

struct RpRow {
  std::string kind;
  NodeSet nodes;
  uint64_t size = 0;  // total of the graph's sizes of `nodes`
  int depth = 0;
  int parent = -1;
  // Heapy's row name: "_" for row 0, else one letter per level.
  std::string label;
  RpMark mark = RpMark::kRoot;
  // With kSeen: the index of the earlier row with the same set.
  int seen = -1;
  // Kinds of the next level left out by max_children.
  size_t dropped = 0;
};

struct RpResult {
  std::vector<RpRow> rows;
  // True when max_rows cut the pattern short.
  bool truncated = false;
};

// The pattern of `set` (a NodeSet of `graph`; row 0 even when empty).
// Row 0's kind is the kind all of `set` share, or "<mixed>". Errors: the
// classifier's, InvalidArgument for max_children outside 1..26 or a
// negative depth, or question_stop's status. Pure C++, the calling thread
// (the callbacks decide any further constraint).
absl::StatusOr<RpResult> ReferencePattern(const HeapGraph& graph,
                                          const ReverseIndex& reverse,
                                          const NodeSet& set,
                                          const RpOptions& options);

// Heapy's row name for the child indexes `path` from row 0 (empty: "_"):
// letters 'a' + index, a run of more than two equal letters written as
// the letter and the run's length. Pure C++, any thread.
std::string RpLabel(const std::vector<int>& path);

}  // namespace annex::heap

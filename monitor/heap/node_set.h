// Node sets over a HeapGraph: sorted, duplicate-free vectors of node ids,
// and the checks every retention entry point applies to its inputs.
//
//   absl::StatusOr<NodeSet> set = MakeNodeSet(graph, {7, 3, 7});  // {3, 7}
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "monitor/heap/graph.h"

namespace annex::heap {

// A set of node ids, sorted ascending without duplicates.
using NodeSet = std::vector<uint32_t>;

// Sorts and deduplicates `nodes`; InvalidArgument when one is not a node of
// `graph`. Pure C++, any thread.
absl::StatusOr<NodeSet> MakeNodeSet(const HeapGraph& graph,
                                    absl::Span<const uint32_t> nodes);

// OK when the CSR arrays of `graph` are consistent (sizes match, offsets
// monotone, targets in range); InvalidArgument naming the first problem
// otherwise. O(nodes + edges). Pure C++, any thread.
absl::Status ValidateGraph(const HeapGraph& graph);

}  // namespace annex::heap

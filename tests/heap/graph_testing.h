// Test support: HeapGraphs from edge lists and random graphs with cycles.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "monitor/heap/graph.h"

namespace annex::heap::testing {

// A graph of `n` nodes (addresses 16 * (id + 1), size id + 1 bytes) with the
// given edges, kept in the given order per source, and roots named "r0",
// "r1", ... at `roots`.
HeapGraph MakeGraph(uint32_t n,
                    const std::vector<std::pair<uint32_t, uint32_t>>& edges,
                    const std::vector<uint32_t>& roots);

// A random graph: `n` nodes, about `avg_degree` edges per node to uniformly
// random targets (so cycles abound) plus, when `chain` is set, a spine
// 0 -> 1 -> ... so that most nodes are reachable; `roots` random roots.
HeapGraph RandomGraph(uint32_t n, double avg_degree, uint32_t roots, bool chain,
                      uint64_t seed);

}  // namespace annex::heap::testing

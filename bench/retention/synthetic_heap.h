// Synthetic object graphs shaped like a Python heap, for benchmarks: most
// objects hang off one earlier object (allocation locality: usually a near
// address), a few hubs (sys.modules, module dicts, one big list, classes
// that most instances point to), long linked chains, back edges that make
// cycles, many leaves, about 2.5 edges per node, and a dozen named roots.
#pragma once

#include <cstdint>

#include "monitor/heap/graph.h"

namespace annex::bench {

// Deterministic for a given (nodes, seed). Pure C++, any thread.
heap::HeapGraph SyntheticHeap(uint32_t nodes, uint64_t seed);

}  // namespace annex::bench

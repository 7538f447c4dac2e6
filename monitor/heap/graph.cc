// Lookups in a heap graph snapshot.
#include "monitor/heap/graph.h"

#include <algorithm>

namespace annex::heap {

int64_t HeapGraph::Find(uintptr_t address) const {
  auto it = std::lower_bound(addresses.begin(), addresses.end(), address);
  if (it == addresses.end() || *it != address) return -1;
  return it - addresses.begin();
}

}  // namespace annex::heap

// Lookups in a heap graph snapshot.
#include "monitor/heap/graph.h"

#include <algorithm>
#include <new>
#include <utility>

namespace annex::heap {

HeapGraph::~HeapGraph() {
  if (pool == nullptr) return;
  pool->Give(std::move(addresses));
  pool->Give(std::move(sizes));
  pool->Give(std::move(out_begin));
  pool->Give(std::move(out_targets));
}

HeapGraph& HeapGraph::operator=(HeapGraph&& other) noexcept {
  if (this != &other) {
    this->~HeapGraph();
    new (this) HeapGraph(std::move(other));
  }
  return *this;
}

int64_t HeapGraph::Find(uintptr_t address) const {
  auto it = std::lower_bound(addresses.begin(), addresses.end(), address);
  if (it == addresses.end() || *it != address) return -1;
  return it - addresses.begin();
}

}  // namespace annex::heap
